"""What waits for a restart, and what a no-op re-apply costs, on libvirt's test driver.

A change that a running guest gets only by a restart is reported as pending on
every run until the guest restarts, with nothing reported as changed; a no-op
re-apply through a state run reads each guest with at most 3 libvirt calls.
"""

import collections
import functools

import libvirt
import pytest

from saltext_xen.core import connection


def _run(states, fn, name, **kwargs):
    return dict(getattr(states.xen_guest, fn)(name, **kwargs).full_return)


def _by_id(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


@pytest.fixture
def images(tmp_path):
    path = tmp_path / "images"
    path.mkdir()
    return path


def _spec(images, name="vm20", **extra):
    spec = {
        "memory": 512,
        "maxmem": 1024,
        "vcpus": 1,
        "maxvcpus": 2,
        "disks": [{"source": str(images / f"{name}.img"), "size": 64}],
        "nics": [{"bridge": "xenbr0", "script": "vif-bridge"}],
        "graphics": {"password": "s3cret", "keymap": "en-us"},
        "on_crash": "restart",
    }
    spec.update(extra)
    return spec


def test_a_change_for_the_next_boot_stays_pending_until_the_guest_restarts(states, images, test_uri):
    assert _run(states, "running", "vm20", spec=_spec(images))["result"] is True
    changed = _spec(images, on_crash="destroy", vcpus=4, maxvcpus=4)
    first = _run(states, "running", "vm20", spec=changed)
    assert first["result"] is True, first["comment"]
    assert first["changes"]["on_crash"]["applied"] == "in the definition; waits for a restart"
    assert "vcpus" in first["changes"] and "maxvcpus" in first["changes"]

    for fn in ("running", "defined", "running"):  # every later run says so, and changes nothing
        later = _run(states, fn, "vm20", spec=changed)
        assert later["result"] is True
        assert later["changes"] == {}, later
        assert (
            "maxvcpus, on_crash wait for a restart (the running guest does not have them yet); "
            "vcpus 4 waits for a restart (above the running guest's maximum of 2 vcpus; the running guest has 1)"
            in later["comment"]
        )
        assert later["comment"].count("vcpus 4") == 1 and "on_crash, vcpus" not in later["comment"]  # named once
        assert "restart_on_change: True restarts it" in later["comment"]
        assert "s3cret" not in repr(later)

    predicted = _run(states, "running", "vm20", spec=changed, restart_on_change=True, test=True)
    assert predicted["result"] is None
    assert predicted["changes"]["restarted"]["why"] == "maxvcpus, on_crash, vcpus"
    dom = connection.connect(test_uri).lookupByName("vm20")
    assert dom.info()[3] == 1  # test=True restarted nothing

    restarted = _run(states, "running", "vm20", spec=changed, restart_on_change=True)
    assert restarted["changes"] == predicted["changes"]
    assert dom.info()[3] == 4
    settled = _run(states, "running", "vm20", spec=changed, restart_on_change=True)
    assert settled["changes"] == {} and settled["comment"] == "vm20 is already as wanted"


def test_a_definition_changed_by_hand_is_pending_too(states, images, test_uri):
    """Not only what the state wrote: any difference between the running guest and its spec."""
    assert _run(states, "running", "vm20", spec=_spec(images))["result"] is True
    conn = connection.connect(test_uri)
    xml = conn.lookupByName("vm20").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    conn.defineXML(xml.replace("<on_crash>restart</on_crash>", "<on_crash>destroy</on_crash>"))
    # the spec wants on_crash: destroy as well: the definition is right, the running guest is not
    ret = _run(states, "running", "vm20", spec=_spec(images, on_crash="destroy"))
    assert ret["changes"] == {}
    assert "on_crash waits for a restart (the running guest does not have it yet)" in ret["comment"]


def test_a_shut_off_guest_has_nothing_pending(states, images, test_uri):
    _run(states, "running", "vm20", spec=_spec(images))
    _run(states, "running", "vm20", spec=_spec(images, on_crash="destroy"))
    stopped = _run(states, "stopped", "vm20", spec=_spec(images, on_crash="destroy"), timeout=2, force=True)
    assert stopped["changes"] == {"state": {"old": "running", "new": "shutoff"}}
    assert "restart" not in stopped["comment"]
    ret = _run(states, "defined", "vm20", spec=_spec(images, on_crash="destroy"))
    assert ret["changes"] == {} and ret["comment"] == "vm20 is already as wanted"


@pytest.mark.parametrize("how", ["iso", "network"])
def test_a_running_installer_is_not_a_pending_change(states, images, tmp_path, test_uri, how):
    if how == "iso":
        iso = tmp_path / "inst.iso"
        iso.write_bytes(b"CD001")
        spec = {
            "type": "hvm",
            "memory": 1024,
            "disks": [{"source": str(images / "inst.img"), "size": 64}],
            "nics": [{"bridge": "xenbr0"}],
            "install": {"iso": str(iso)},
        }
    else:
        tree = tmp_path / "tree"
        (tree / "images" / "xen").mkdir(parents=True)
        (tree / "images" / "xen" / "vmlinuz").write_bytes(b"k")
        (tree / "images" / "xen" / "initrd.img").write_bytes(b"i")
        spec = {
            "disks": [{"source": str(images / "inst.img"), "size": 64}],
            "nics": [{"bridge": "xenbr0"}],
            "install": {"location": str(tree), "extra_args": "console=hvc0"},
        }
    kwargs = {"boot_dir": str(tmp_path / "boot")}
    assert _run(states, "running", "inst", spec=spec, **kwargs)["result"] is True
    again = _run(states, "running", "inst", spec=spec, restart_on_change=True, **kwargs)
    assert again["changes"] == {}, again  # the installer is not restarted
    assert "installer is running" in again["comment"]
    assert "wait" not in again["comment"]
    # a real change during the install is still seen
    busy = _run(states, "running", "inst", spec=dict(spec, on_crash="preserve"), **kwargs)
    assert busy["changes"]["on_crash"]["applied"] == "in the definition; waits for a restart"


# --------------------------------------------------------------------------- libvirt calls
LOCAL = {"name", "UUID", "UUIDString", "ID", "connect", "c_pointer", "getURI", "isAlive"}


@pytest.fixture
def calls(monkeypatch):
    """Every libvirt connection/domain method that goes to libvirtd, counted."""
    counter = collections.Counter()
    for cls in (libvirt.virConnect, libvirt.virDomain):
        for attr in dir(cls):
            func = getattr(cls, attr)
            if attr.startswith("_") or attr in LOCAL or not callable(func):
                continue

            def wrapper(*args, __func=func, __name=attr, **kwargs):
                counter[__name] += 1
                return __func(*args, **kwargs)

            monkeypatch.setattr(cls, attr, functools.wraps(func)(wrapper))
    return counter


def _pillar(images, n, ensure, **extra):
    return {"xen": {"guests": {f"b{i}": dict(_spec(images, name=f"b{i}", **extra), ensure=ensure) for i in range(n)}}}


@pytest.mark.parametrize("ensure", ["defined", "running"])
def test_a_no_op_re_apply_costs_at_most_3_libvirt_calls_per_guest(modules, images, test_uri, calls, ensure):
    n = 5
    assert all(r["result"] for r in _by_id(modules.state.sls("xen.guests", pillar=_pillar(images, n, ensure))).values())
    calls.clear()
    again = _by_id(modules.state.sls("xen.guests", pillar=_pillar(images, n, ensure)))
    assert {sid: r["changes"] for sid, r in again.items()} == {sid: {} for sid in again}
    # per guest: its definition(s); per run: the host listed once (state + autostart marks)
    assert calls["lookupByName"] == 0 and calls["autostart"] == 0, calls
    assert calls["getAllDomainStats"] + calls["listAllDomains"] == 2, calls
    assert sum(calls.values()) - 2 <= 3 * n, calls
    if ensure == "running":
        # pending changes cost nothing more: the live definition is read anyway
        modules.state.sls("xen.guests", pillar=_pillar(images, n, ensure, on_crash="destroy"))
        calls.clear()
        pending = _by_id(modules.state.sls("xen.guests", pillar=_pillar(images, n, ensure, on_crash="destroy")))
        assert all(r["changes"] == {} and "on_crash waits for a restart" in r["comment"] for r in pending.values()), (
            pending
        )
        assert sum(calls.values()) - 2 <= 3 * n, calls


def test_the_host_listing_follows_another_state_changing_autostart(modules, states, images, test_uri):
    """One run: vm21 as wanted (the host is listed), marked autostart by module.run, then asked for again."""
    spec = _spec(images, name="vm21", autostart=False)  # a state manages the keys it is given
    assert _run(states, "defined", "vm21", spec=spec)["result"] is True
    sls = f"""
vm21-defined:
  xen_guest.defined:
    - name: vm21
    - spec: {spec!r}
vm21-marked-by-hand:
  module.run:
    - xen_guest.autostart:
      - name: vm21
      - enable: true
    - require:
      - xen_guest: vm21-defined
vm21-defined-again:
  xen_guest.defined:
    - name: vm21
    - spec: {spec!r}
    - require:
      - module: vm21-marked-by-hand
"""
    ret = _by_id(modules.state.template_str(sls))
    assert ret["vm21-defined"]["changes"] == {}, ret["vm21-defined"]
    assert ret["vm21-marked-by-hand"]["changes"], ret["vm21-marked-by-hand"]
    assert ret["vm21-defined-again"]["changes"] == {"autostart": {"old": True, "new": False}}, ret["vm21-defined-again"]
    assert connection.connect(test_uri).lookupByName("vm21").autostart() == 0


def test_a_driver_without_domain_stats_costs_one_call_more_per_guest(modules, images, test_uri, calls, monkeypatch):
    """Run states are then read per guest (info()): still at most 3 calls for a running guest."""
    monkeypatch.delattr(libvirt.virConnect, "getAllDomainStats")
    n = 4
    pillar = _pillar(images, n, "running")
    assert all(r["result"] for r in _by_id(modules.state.sls("xen.guests", pillar=pillar)).values())
    calls.clear()
    again = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert {sid: r["changes"] for sid, r in again.items()} == {sid: {} for sid in again}
    assert calls["listAllDomains"] == 2 and calls["info"] == n, calls
    assert sum(calls.values()) - 2 <= 3 * n, calls
