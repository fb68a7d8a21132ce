"""xen_guest states on libvirt's test driver: what an operator sees on the first and second run."""

import os
import stat

import libvirt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saltext_xen.core import connection
from saltext_xen.guests import guest_apply, guest_spec
from tests.unit.test_guest_spec import guest_data


def _conn(test_uri):
    return connection.connect(test_uri)


def _run(states, fn, name, **kwargs):
    # the full state return: result, changes, comment
    return dict(getattr(states.xen_guest, fn)(name, **kwargs).full_return)


@pytest.fixture
def images(tmp_path):
    path = tmp_path / "images"
    path.mkdir()
    return path


def _vm10(images, **extra):
    spec = {
        "memory": 512,
        "maxmem": 1024,
        "vcpus": 1,
        "maxvcpus": 2,
        "disks": [{"source": str(images / "vm10.img"), "size": "8G"}],
        "nics": [{"bridge": "xenbr0", "script": "vif-bridge"}],
        "graphics": {"password": "s3cret", "keymap": "en-us"},
    }
    spec.update(extra)
    return spec


def test_defined_creates_then_second_apply_changes_nothing(states, images, test_uri):
    ret = _run(states, "defined", "vm10", spec=_vm10(images))
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["memory"] == {"old": None, "new": 512}
    assert ret["changes"]["disks:xvda:image"]["new"].startswith(str(images / "vm10.img"))
    assert (images / "vm10.img").stat().st_size == 8 * 1024**3
    assert (images / "vm10.img").stat().st_blocks == 0  # sparse
    assert ret["changes"]["graphics:password"] == {"old": None, "new": "********"}
    assert "s3cret" not in repr(ret)
    dom = _conn(test_uri).lookupByName("vm10")
    assert not dom.isActive()

    again = _run(states, "defined", "vm10", spec=_vm10(images))
    assert again["result"] is True and again["changes"] == {}, again
    assert again["comment"] == "vm10 is already as wanted"


def test_test_mode_predicts_exactly_and_touches_nothing(states, images, test_uri):
    predicted = _run(states, "defined", "vm10", spec=_vm10(images), test=True)
    assert predicted["result"] is None
    assert not (images / "vm10.img").exists()
    with pytest.raises(libvirt.libvirtError):
        _conn(test_uri).lookupByName("vm10")
    real = _run(states, "defined", "vm10", spec=_vm10(images), test=False)
    assert real["result"] is True
    assert real["changes"] == predicted["changes"]  # the generated uuid and MAC included


def test_bad_spec_reports_every_problem_and_touches_nothing(states, images, test_uri):
    ret = _run(states, "running", "vm10", spec=_vm10(images, memory="5l2", nics=[{"mac": "01:00:00:00:00:01"}]))
    assert ret["result"] is False and ret["changes"] == {}
    assert "xen:guests:vm10:memory: expected MiB as an integer, got '5l2'" in ret["comment"]
    assert "xen:guests:vm10:nics:0:mac:" in ret["comment"]
    assert not (images / "vm10.img").exists()


def test_existing_guest_keeps_its_uuid_and_mac(states, test_uri):
    # vm02 of the seed: 512 MiB, 2 vcpus, pygrub, one disk, one NIC, VNC on :1
    spec = {
        "memory": 512,
        "vcpus": 2,
        "disks": ["/var/lib/xen/images/vm02.img"],
        "nics": [{"bridge": "xenbr0", "script": "vif-bridge"}],
        "graphics": {"display": 1, "keymap": "en-us"},
        "on_crash": "restart",
    }
    ret = _run(states, "running", "vm02", spec=spec)
    assert ret["result"] is True and ret["changes"] == {}, ret
    assert _conn(test_uri).lookupByName("vm02").UUIDString() == "5c9d6d60-6f2b-4a39-9a47-30b3f3c3a002"


def test_running_guest_gets_memory_live_and_disk_pending(states, images, test_uri):
    assert _run(states, "running", "vm10", spec=_vm10(images))["result"] is True
    dom = _conn(test_uri).lookupByName("vm10")
    assert dom.isActive()
    extra_disk = {"source": str(images / "vm10-1.img"), "size": 1024}
    ret = _run(states, "running", "vm10", spec=_vm10(images, memory=768, disks=_vm10(images)["disks"] + [extra_disk]))
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["memory"] == {"old": 512, "new": 768, "applied": "live and in the definition"}
    # the test driver cannot hot-plug: said so, and not reported as plugged in
    assert (
        ret["changes"]["disks:xvdb"]["applied"]
        == "in the definition; waits for a restart (this hypervisor cannot hot-plug it)"
    )
    assert dom.info()[2] == 768 * 1024
    again = _run(states, "running", "vm10", spec=_vm10(images, memory=768, disks=_vm10(images)["disks"] + [extra_disk]))
    assert again["changes"] == {}, again


def test_memory_above_running_maximum_is_not_reported_as_done(states, images, test_uri):
    assert _run(states, "running", "vm10", spec=_vm10(images))["result"] is True
    bigger = _vm10(images, memory=2048, maxmem=2048)
    ret = _run(states, "running", "vm10", spec=bigger)
    assert ret["result"] is True
    assert ret["changes"]["memory"]["applied"].startswith(
        "in the definition; waits for a restart (above the running guest's maximum of 1024 MiB"
    )
    dom = _conn(test_uri).lookupByName("vm10")
    assert dom.info()[2] == 512 * 1024  # the running guest did not change
    again = _run(states, "running", "vm10", spec=bigger)
    assert again["changes"] == {}
    assert "memory 2048 waits for a restart" in again["comment"]  # the difference is still seen
    restarted = _run(states, "running", "vm10", spec=bigger, restart_on_change=True)
    assert restarted["changes"]["restarted"]["new"] == "running"
    assert dom.info()[2] == 2048 * 1024
    assert _run(states, "running", "vm10", spec=bigger)["changes"] == {}


def test_stopped_paused_running_cycle(states, images, test_uri):
    spec = _vm10(images)
    assert _run(states, "defined", "vm10", spec=spec)["result"]
    ret = _run(states, "paused", "vm10", spec=spec)
    assert ret["changes"] == {"state": {"old": "shutoff", "new": "paused"}}
    ret = _run(states, "running", "vm10")
    assert ret["changes"] == {"state": {"old": "paused", "new": "running"}}
    ret = _run(states, "stopped", "vm10", timeout=5, force=True)
    assert ret["changes"] == {"state": {"old": "running", "new": "shutoff"}}
    assert _run(states, "stopped", "vm10")["changes"] == {}


def test_autostart_is_a_change_of_its_own(states, images, test_uri):
    _run(states, "defined", "vm10", spec=_vm10(images))
    ret = _run(states, "defined", "vm10", spec=_vm10(images, autostart=True))
    assert ret["changes"] == {"autostart": {"old": False, "new": True}}
    assert _conn(test_uri).lookupByName("vm10").autostart() == 1


def test_absent_keeps_disks_unless_asked(states, images, test_uri):
    _run(states, "running", "vm10", spec=_vm10(images))
    ret = _run(states, "absent", "vm10")
    assert ret["changes"] == {"state": {"old": "running", "new": "shutoff"}, "defined": {"old": True, "new": False}}
    assert (images / "vm10.img").exists()
    assert _run(states, "absent", "vm10")["changes"] == {}
    _run(states, "defined", "vm10", spec=_vm10(images))
    ret = _run(states, "absent", "vm10", remove_disks=True)
    assert ret["changes"]["disks:xvda"] == {"old": str(images / "vm10.img"), "new": None}
    assert not (images / "vm10.img").exists()


def test_uuid_change_is_refused_in_plain_words(states, test_uri):
    ret = _run(
        states,
        "defined",
        "vm03",
        spec={
            "uuid": "2aa1fae5-8550-affd-866f-27a9d6977d16",
            "disks": ["/var/lib/xen/images/vm03.img"],
            "nics": [{"bridge": "xenbr0"}],
        },
    )
    assert ret["result"] is False
    assert "uuid cannot change in place" in ret["comment"]


CONFIGS = os.path.join(os.path.dirname(__file__), "..", "data", "xen-configs")


def test_import_tutorial_newvm_then_state_agrees(modules, states, test_uri):
    changes = modules.xen_guest.import_config(os.path.join(CONFIGS, "newvm"))
    assert changes["uuid"] == {"old": None, "new": "2aa1fae5-8550-affd-866f-27a9d6977d16"}
    dom = _conn(test_uri).lookupByName("newvm")
    xml = dom.XMLDesc(0)
    assert "<driver name='phy'/>" in xml and "/dev/mapper/vol0-lv_for_newvm" in xml
    assert "00:16:36:77:66:d5" in xml
    assert modules.xen_guest.import_config(os.path.join(CONFIGS, "newvm")) == {}
    # the same guest written as pillar data: nothing to change
    pillar_newvm = {
        "uuid": "2aa1fae5-8550-affd-866f-27a9d6977d16",
        "memory": 512,
        "maxmem": 512,
        "vcpus": 2,
        "bootloader": "/usr/bin/pygrub",
        "disks": [
            {"source": "/dev/mapper/vol0-lv_for_newvm", "target": "xvda"},
            {"source": "/var/lib/xen/p_w_picpaths/newvm-1.img", "target": "xvdb"},
        ],
        "nics": [
            {"mac": "00:16:36:88:76:d4", "bridge": "xenbr0", "script": "vif-bridge"},
            {"mac": "00:16:36:77:66:d5", "bridge": "xenbr0", "script": "vif-bridge"},
        ],
    }
    assert _run(states, "defined", "newvm", spec=pillar_newvm)["changes"] == {}


def test_import_names_the_settings_it_has_no_place_for(modules, tmp_path, test_uri, caplog):
    from tests.unit.test_xlcfg import TUTORIAL_ERA

    cfg = tmp_path / "oldvm"
    cfg.write_text(TUTORIAL_ERA)
    changes = modules.xen_guest.import_config(str(cfg))
    assert changes["memory"] == {"old": None, "new": 256}
    assert changes["ignored"] == {
        "localtime": 0,
        "vncpasswd": "********",
        "vfb:0:xauthority": "/root/.Xauthority",
        "vif:0:vifname": "oldvm.0",
    }
    assert "123" not in repr(changes) and "abc" not in repr(changes)
    assert "localtime" in caplog.text and "123" not in caplog.text
    # a second import changes nothing, and still says what it leaves out
    assert modules.xen_guest.import_config(str(cfg)) == {"ignored": changes["ignored"]}


def test_import_reports_every_problem(modules, tmp_path):
    bad = tmp_path / "bad"
    bad.write_text('name = "bad"\nmemory = "5l2"\nvfb = [ "type=vnc,vnclisten=0.0.0.0" ]\n')
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError) as info:
        modules.xen_guest.import_config(str(bad))
    assert f"{bad}:bad:memory: expected MiB as an integer, got '5l2'" in str(info.value)
    assert f"{bad}:bad:graphics:listen:" in str(info.value)


def test_export_writes_0600_when_a_password_is_there(modules, states, images, tmp_path):
    _run(states, "defined", "vm10", spec=_vm10(images))
    ret = modules.xen_guest.export_config("vm10", config_dir=str(tmp_path))
    path = tmp_path / "vm10.cfg"
    assert ret == {"path": str(path), "changed": True, "mode": "0600"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert modules.xen_guest.export_config("vm10", config_dir=str(tmp_path))["changed"] is False
    from saltext_xen.guests import xlcfg

    spec, problems = xlcfg.parse(path.read_text())
    assert problems == [] and spec["graphics"]["password"] == "s3cret"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    shown = modules.xen_guest.spec("vm10")
    assert shown["graphics"]["password"] == "********"


def test_new_nic_on_running_guest_gets_a_mac_and_test_mode_agrees(states, images, test_uri):
    assert _run(states, "running", "vm10", spec=_vm10(images))["result"] is True
    two_nics = _vm10(images, nics=[{"bridge": "xenbr0", "script": "vif-bridge"}, {"network": "default"}])
    predicted = _run(states, "running", "vm10", spec=two_nics, test=True)
    assert predicted["changes"]["nics:1"]["new"]["mac"].startswith("00:16:3e:")
    ret = _run(states, "running", "vm10", spec=two_nics)
    assert ret["result"] is True
    assert ret["changes"]["nics:1"]["new"] == predicted["changes"]["nics:1"]["new"]
    assert ret["changes"]["nics:1"]["applied"].startswith("in the definition; waits for a restart")
    assert _run(states, "running", "vm10", spec=two_nics)["changes"] == {}


def _no_sizes(data):
    for disk in data["disks"]:
        disk.pop("size", None)
    data.pop("uuid", None)
    data.pop("install", None)
    return data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=guest_data(), second=guest_data(), running=st.booleans(), restart=st.booleans())
def test_any_change_is_predicted_exactly_and_then_settled(test_uri, first, second, running, restart):
    """From any guest A to any guest B: the plan (test=True) equals what apply does; a re-plan is empty."""
    conn = _conn(test_uri)
    a, problems = guest_spec.validate("prop", _no_sizes(first))
    assert problems == []
    b, problems = guest_spec.validate("prop", _no_sizes(second))
    assert problems == []
    try:
        done, problems = guest_apply.define(conn, a, "seed/prop")
        assert problems == [] and done
        if running:
            conn.lookupByName("prop").create()
        current = guest_apply.read(conn, "prop")
        plan = guest_apply.plan(b, current, "seed/prop", restart_on_change=restart, live=True)
        predicted = plan.changes
        done, problems = guest_apply.apply(conn, plan, current)
        assert problems == []
        # identical except where the hypervisor's answer decides (hot-plug on this driver)
        for key, change in done.items():
            if change.get("applied", "").startswith("in the definition; waits for a restart (this hypervisor"):
                assert predicted[key]["applied"] == guest_apply.ATTACH_NOTE
                predicted[key] = change
        assert done == predicted
        again = guest_apply.plan(b, guest_apply.read(conn, "prop"), "seed/prop", live=True)
        assert again.changes == {}
        if restart or not running:
            assert again.pending == []  # nothing waits: the guest was restarted or is off
    finally:
        dom = conn.lookupByName("prop")
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def test_define_function_reports_changes_then_nothing(modules, images, test_uri):
    changes = modules.xen_guest.define(
        "vm11", spec={"memory": 256, "disks": [str(images / "vm11.img")], "graphics": {"password": "pw"}}
    )
    assert changes["memory"] == {"old": None, "new": 256}
    assert changes["graphics:password"] == {"old": None, "new": "********"}
    assert (
        modules.xen_guest.define(
            "vm11", spec={"memory": 256, "disks": [str(images / "vm11.img")], "graphics": {"password": "pw"}}
        )
        == {}
    )
    assert modules.xen_guest.define(
        "vm11", memory=384, maxmem=384, disks=[str(images / "vm11.img")], graphics={"password": "pw"}
    ) == {
        "memory": {"old": 256, "new": 384},
        "maxmem": {"old": 256, "new": 384},
    }


def test_absent_in_test_mode_predicts_and_keeps_everything(states, images, test_uri):
    _run(states, "running", "vm10", spec=_vm10(images))
    predicted = _run(states, "absent", "vm10", remove_disks=True, test=True)
    assert predicted["result"] is None
    assert _conn(test_uri).lookupByName("vm10").isActive()
    assert (images / "vm10.img").exists()
    real = _run(states, "absent", "vm10", remove_disks=True)
    assert real["changes"] == predicted["changes"]
    assert not (images / "vm10.img").exists()


def test_block_device_disks_are_never_removed(states, test_uri):
    ret = _run(states, "defined", "lvguest", spec={"disks": ["/dev/vol0/lv_for_lvguest"]})
    assert ret["result"] is True
    assert "<driver name='phy'/>" in _conn(test_uri).lookupByName("lvguest").XMLDesc(0)
    ret = _run(states, "absent", "lvguest", remove_disks=True)
    assert ret["changes"]["disks:xvda"]["new"].startswith("kept (block device or LV")


def test_a_new_mac_is_never_one_the_host_already_has(states, test_uri):
    wanted, _ = guest_spec.validate("vmz", {"nics": [{"bridge": "xenbr0"}]})
    first_choice = guest_apply.fill_new(wanted, "xen-functional/vmz")["nics"][0]["mac"]
    _run(states, "defined", "other", spec={"nics": [{"mac": first_choice}]})
    ret = _run(states, "defined", "vmz", spec={"nics": [{"bridge": "xenbr0"}]})
    assert ret["result"] is True
    got = ret["changes"]["nics:0"]["new"]["mac"]
    assert got != first_choice and got.startswith("00:16:3e:")


def test_a_pillar_guest_with_only_ensure_keeps_its_definition(modules, test_uri):
    """``vm02: {ensure: stopped}`` stops vm02 and leaves its disks, NICs and vcpus as they are
    (no spec keys: the definition is not rebuilt from an empty spec)."""
    before = _conn(test_uri).lookupByName("vm02").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    pillar = {"xen": {"guests": {"vm02": {"ensure": "stopped", "force": True, "timeout": 5}}}}
    ret = modules.state.sls("xen.guests", pillar=pillar)
    (result,) = ret.raw.values()
    assert result["result"] is True, result
    assert result["changes"] == {"state": {"old": "running", "new": "shutoff"}}, result
    after = _conn(test_uri).lookupByName("vm02").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert after == before
