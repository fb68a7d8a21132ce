"""salt/xen/host.sls renders what each OS family needs, and refuses a CPU that cannot run Xen."""

import pytest


@pytest.fixture
def grains(loaders, monkeypatch):
    grains = loaders.opts["grains"]
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "pae", "vmx"])
    return grains


def _ids(modules):
    rendered = modules.state.show_sls("xen.host")
    assert isinstance(rendered, dict), rendered
    return rendered


@pytest.mark.parametrize(
    "family, services, mkconfig",
    [
        ("Debian", ["xen", "xendomains", "libvirtd"], "update-grub"),
        ("RedHat", ["xencommons", "xendomains", "libvirtd"], "grub2-mkconfig -o /boot/grub2/grub.cfg"),
        ("Suse", ["xencommons", "xendomains", "libvirtd"], "grub2-mkconfig -o /boot/grub2/grub.cfg"),
    ],
)
def test_each_family_gets_its_services_and_grub_command(modules, grains, monkeypatch, family, services, mkconfig):
    monkeypatch.setitem(grains, "os_family", family)
    states = _ids(modules)
    assert sorted(s for s in states if s.startswith("xen-host-service-")) == sorted(
        f"xen-host-service-{name}-enabled" for name in services
    )
    assert states["xen-host-grub-config-rebuilt"]["cmd"][0] == {"name": mkconfig}
    assert "xen-host-cpu-hvm-noted" not in states


def test_cpu_without_pae_installs_nothing(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "vmx"])
    states = _ids(modules)
    assert list(states) == ["xen-host-cpu-checked"]
    assert "lacks pae" in states["xen-host-cpu-checked"]["test"][0]["name"]


def test_cpu_without_vmx_or_svm_is_told_hvm_guests_cannot_run(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "pae"])
    assert "xen-host-cpu-hvm-noted" in _ids(modules)


@pytest.mark.parametrize("family, removed", [("Debian", True), ("RedHat", False), ("Suse", False)])
def test_clean_removes_only_the_formulas_own_grub_file(modules, grains, monkeypatch, family, removed):
    monkeypatch.setitem(grains, "os_family", family)
    states = modules.state.show_sls("xen.host.clean")
    assert isinstance(states, dict), states
    if removed:
        assert states["xen-host-grub-dropin-absent"]["file"][0] == {"name": "/etc/default/grub.d/zz-salt-xen.cfg"}
        assert set(states) == {"xen-host-grub-dropin-absent", "xen-host-grub-config-rebuilt-without-xen"}
    else:
        assert states == {}  # /etc/default/grub is the distribution's own file: kept


def test_directories_come_from_the_map_and_pillar_overrides_them(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "os_family", "Debian")
    states = modules.state.show_sls("xen.host", pillar={"xen": {"install": {"boot_dir": "/srv/xen/boot"}}})
    assert states["xen-host-dir-boot-present"]["file"][0] == {"name": "/srv/xen/boot"}
    assert states["xen-host-dir-images-present"]["file"][0] == {"name": "/var/lib/xen/images"}
    assert states["xen-host-dir-save-present"]["file"][0] == {"name": "/var/lib/xen/save"}
