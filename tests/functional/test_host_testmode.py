"""xen.host with test=True on this machine (Debian 12, no Xen): every step is predicted, none fails,
nothing is installed, written or run, and the reboot waits as a change a machine can read.

Only test=True runs here: the formula installs packages, rewrites GRUB and reboots for real."""

import os

import pytest

# what xen.host would write or make on a Debian host
TOUCHED = (
    "/etc/default/grub.d/zz-salt-xen.cfg",
    "/etc/default/libvirt-guests",
    "/etc/default/xendomains",
    "/var/lib/xen/images",
    "/var/lib/xen/save",
    "/var/lib/xen/boot",
)


@pytest.fixture
def debian(loaders, monkeypatch):
    grains = loaders.opts["grains"]
    if grains.get("os_family") != "Debian":
        pytest.skip("predicts a Debian host's xen.host: this machine is not of the Debian family")
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "pae", "vmx"])
    monkeypatch.setitem(grains, "xen", {"dom0": False, "reboot_required": False, "reboot_reason": None})
    return grains


def _predict(modules, pillar=None):
    before = {path: os.path.lexists(path) for path in TOUCHED}
    ret = modules.state.sls("xen.host", pillar=pillar, test=True)
    assert isinstance(ret.raw, dict), ret.raw
    assert {path: os.path.lexists(path) for path in TOUCHED} == before, "test=True wrote to the host"
    return {key.split("_|-")[1]: value for key, value in ret.raw.items()}


def test_a_fresh_host_is_predicted_without_a_failure(modules, debian):
    states = _predict(modules)
    failed = {sid: s["comment"] for sid, s in states.items() if s["result"] is False}
    assert failed == {}
    grub = states["xen-host-grub-boots-xen"]
    if not os.path.exists("/etc/default/grub.d/zz-salt-xen.cfg"):
        assert grub["result"] is None
        assert grub["changes"] == {"newfile": "/etc/default/grub.d/zz-salt-xen.cfg"}
    assert states["xen-host-grub-config-rebuilt"]["comment"] == 'Command "update-grub" would have been executed'
    for name in ("xen", "xendomains", "libvirt-guests"):
        assert f"xen-host-service-{name}-enabled" in states
        assert f"xen-host-service-{name}-running" not in states


def test_the_reboot_is_a_change_with_its_reason(modules, debian):
    reboot = _predict(modules)["xen-host-reboot-required"]
    assert reboot["result"] is None
    assert reboot["changes"]["reboot_required"] == {"old": False, "new": True}
    assert reboot["changes"]["reason"] == "this host does not run under the Xen hypervisor yet"
    assert reboot["comment"] == "reboot needed: this host does not run under the Xen hypervisor yet"


def test_the_reboot_asked_for_in_pillar_is_only_predicted(modules, debian):
    states = _predict(modules, pillar={"xen": {"host": {"reboot": True}}})
    rebooted = states["xen-host-rebooted"]
    assert rebooted["result"] is None
    assert rebooted["comment"] == "Function system.reboot to be executed."
    assert rebooted["__run_num__"] == max(s["__run_num__"] for s in states.values())


def test_wrong_settings_fail_under_test_true_before_anything_is_predicted(modules, debian):
    states = _predict(modules, pillar={"xen": {"host": {"dom0_mem": "lots"}}})
    assert list(states) == ["xen-host-settings-checked"]
    assert states["xen-host-settings-checked"]["result"] is False
    assert "xen:host:dom0_mem: expected a size" in states["xen-host-settings-checked"]["comment"]


def test_a_cpu_xen_cannot_run_on_fails_under_test_true(modules, debian, monkeypatch):
    monkeypatch.setitem(debian, "cpu_flags", ["fpu", "vmx"])
    states = _predict(modules)
    assert list(states) == ["xen-host-cpu-checked"]
    assert states["xen-host-cpu-checked"]["result"] is False
    assert "this CPU lacks pae" in states["xen-host-cpu-checked"]["comment"]
