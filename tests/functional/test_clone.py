"""xen_guest.clone: the tutorial's virt-clone, through Salt's loader and libvirt's test driver."""

import os

import pytest

from saltext_xen.core import connection
from saltext_xen.disks import disk_copy, disk_image
from saltext_xen.guests import domain_xml
from tests.functional.disk_helpers import MIB, define_guest, disk_sources, scratch_vg


def spec_of(uri, name):
    dom = connection.connect(uri).lookupByName(name)
    return domain_xml.parse(dom.XMLDesc(2))


def test_clone_shut_off_guest(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, name="vm05")
    got = modules.xen_guest.clone("vm05", "newvm05")
    dest = str(tmp_path / "newvm05.img")
    assert got["name"] == "newvm05" and got["disks"] == {"xvda": dest}
    old, new = spec_of(test_uri, "vm05"), spec_of(test_uri, "newvm05")
    assert new["uuid"] != old["uuid"]
    assert new["nics"][0]["mac"] != old["nics"][0]["mac"]
    assert new["nics"][0]["mac"][:8] == "00:16:36"  # vendor prefix kept, as the tutorial says
    assert new["memory"] == old["memory"] and new["vcpus"] == old["vcpus"]
    assert disk_sources(test_uri, "newvm05") == {"xvda": dest}
    disk_copy.verify(src, dest)
    assert disk_image.allocated(dest) <= disk_image.allocated(src)
    assert connection.connect(test_uri).lookupByName("newvm05").state()[0] == 5  # defined, shut off


def test_clone_with_changes_and_explicit_path(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    dest = str(tmp_path / "elsewhere.img")
    modules.xen_guest.clone("vm05", "web1", disks={"xvda": dest}, memory=1024, vcpus=4, bridge="xenbr1")
    new = spec_of(test_uri, "web1")
    assert new["memory"] == 1024 and new["vcpus"] == 4
    assert new["nics"][0]["bridge"] == "xenbr1"
    assert disk_sources(test_uri, "web1") == {"xvda": dest}


def test_running_source_is_refused_unless_crash_consistent(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    with pytest.raises(Exception, match="running: shut it off or pause it before cloning"):
        modules.xen_guest.clone("vm05", "newvm05")
    assert not (tmp_path / "newvm05.img").exists()
    got = modules.xen_guest.clone("vm05", "newvm05", crash_consistent=True)
    assert got["name"] == "newvm05"


def test_paused_source_is_fine(modules, test_uri, tmp_path):
    dom, _ = define_guest(test_uri, tmp_path, name="vm05", running=True)
    dom.suspend()
    assert modules.xen_guest.clone("vm05", "newvm05")["name"] == "newvm05"


def test_macs_unique_on_host(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    modules.xen_guest.clone("vm05", "a1")
    modules.xen_guest.clone("a1", "a2", disks={"xvda": str(tmp_path / "a2.img")})
    found = [spec_of(test_uri, n)["nics"][0]["mac"] for n in ("vm05", "a1", "a2")]
    assert len(set(found)) == 3
    assert all(m.startswith("00:16:36:") for m in found)


def test_existing_name_or_file_is_refused_and_nothing_made(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    with pytest.raises(Exception, match="a guest named vm02 already exists"):
        modules.xen_guest.clone("vm05", "vm02")
    (tmp_path / "newvm05.img").write_bytes(b"someone else's")
    with pytest.raises(Exception, match="already exists; it is not overwritten"):
        modules.xen_guest.clone("vm05", "newvm05")
    assert (tmp_path / "newvm05.img").read_bytes() == b"someone else's"
    assert "newvm05" not in modules.xen_guest.list()


def test_failed_define_leaves_no_half_guest_and_no_files(modules, test_uri, tmp_path, monkeypatch):
    define_guest(test_uri, tmp_path, name="vm05")
    from saltext_xen.guests import clone

    def broken(spec):
        return "<domain type='xen'><name>broken"  # libvirt refuses this

    monkeypatch.setattr(clone.domain_xml, "render", broken)
    with pytest.raises(Exception, match="libvirt refused the clone's definition"):
        modules.xen_guest.clone("vm05", "newvm05")
    assert not (tmp_path / "newvm05.img").exists()
    assert "newvm05" not in modules.xen_guest.list()


def test_missing_source_disk_is_named(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, name="vm05")
    os.unlink(src)
    with pytest.raises(Exception, match=r"disks:xvda: the source .* does not exist"):
        modules.xen_guest.clone("vm05", "newvm05")


def test_plan_is_deterministic_for_test_mode(test_uri, tmp_path):
    from saltext_xen.guests import clone

    define_guest(test_uri, tmp_path, name="vm05", size=8 * MIB)
    conn = connection.connect(test_uri)
    first = clone.summary(clone.plan(conn, "vm05", "newvm05"))
    second = clone.summary(clone.plan(conn, "vm05", "newvm05"))
    assert first == second
    done = clone.execute(conn, clone.plan(conn, "vm05", "newvm05"))
    assert {k: done[k] for k in first} == first


def _state(states, name, test=False, **kwargs):
    return dict(states.xen_guest.cloned(name, test=test, **kwargs).full_return)


def test_cloned_state_predicts_exactly_and_then_does_nothing(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    predicted = _state(states, "newvm05", source="vm05", test=True)
    assert predicted["result"] is None
    assert not (tmp_path / "newvm05.img").exists()
    real = _state(states, "newvm05", source="vm05")
    assert real["result"] is True, real
    assert real["changes"] == predicted["changes"]
    assert real["changes"]["nics:0:mac"]["new"].startswith("00:16:36:")
    again = _state(states, "newvm05", source="vm05")
    assert again["result"] is True and again["changes"] == {}


def test_cloned_state_refuses_running_source(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    ret = _state(states, "newvm05", source="vm05")
    assert ret["result"] is False and "crash_consistent" in ret["comment"]
    assert ret["comment"].startswith("xen:clones:newvm05: vm05 is running"), ret  # named as its pillar entry
    assert not (tmp_path / "newvm05.img").exists()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices")
def test_clone_onto_block_device(modules, test_uri, tmp_path):
    from tests.functional.disk_helpers import loop_device

    _, src = define_guest(test_uri, tmp_path, name="vm05")
    backing = tmp_path / "lv"
    disk_image.create(str(backing), 64 * MIB)
    with loop_device(backing) as dev:
        got = modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dev})
        assert got["disks"] == {"xvda": dev}
        assert disk_sources(test_uri, "newvm05") == {"xvda": dev}
        disk_copy.verify(src, dev)


def test_clone_refuses_another_guests_disk(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    # vm02's disk in the seeded host
    with pytest.raises(Exception, match="is a disk of another guest"):
        modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": "/var/lib/xen/images/vm02.img"})


@pytest.mark.needs_dm
def test_clone_into_new_lv(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, name="vm05")
    with scratch_vg(tmp_path, "xenclone", size=256 * MIB) as vg:
        dest = f"/dev/{vg}/newvm05"
        got = modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dest})
        assert got["disks"] == {"xvda": dest}
        disk_copy.verify(src, dest, size=64 * MIB)


def test_cloned_state_can_start_the_clone(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    ret = _state(states, "newvm05", source="vm05", start=True)
    assert ret["result"] is True and ret["changes"]["started"] == {"old": False, "new": True}
    assert connection.connect(test_uri).lookupByName("newvm05").isActive()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices")
def test_clone_onto_device_with_data_needs_force(modules, test_uri, tmp_path):
    import subprocess

    from tests.functional.disk_helpers import loop_device

    define_guest(test_uri, tmp_path, name="vm05")
    backing = tmp_path / "used"
    disk_image.create(str(backing), 64 * MIB)
    subprocess.run(["parted", "-s", str(backing), "mklabel", "gpt"], check=True, capture_output=True)
    with loop_device(backing) as dev:
        with pytest.raises(Exception, match="already holds a gpt partition table"):
            modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dev})
        assert modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dev}, force=True)["name"] == "newvm05"


# --------------------------------------------------------------------------- an existing clone
def test_clone_records_its_source_in_its_definition(modules, test_uri, tmp_path):
    from saltext_xen.guests import clone

    define_guest(test_uri, tmp_path, name="vm05")
    modules.xen_guest.clone("vm05", "newvm05")
    xml = connection.connect(test_uri).lookupByName("newvm05").XMLDesc(2)
    assert clone.origin(xml) == {"name": "vm05", "uuid": spec_of(test_uri, "vm05")["uuid"]}
    assert clone.ORIGIN_NS in xml


def test_cloned_converges_memory_vcpus_and_bridge_of_an_existing_clone(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    assert _state(states, "newvm05", source="vm05")["result"] is True
    disk = tmp_path / "newvm05.img"
    before_disk = (disk.stat().st_mtime_ns, disk_image.allocated(str(disk)))
    before = spec_of(test_uri, "newvm05")
    want = {"source": "vm05", "memory": 1024, "vcpus": 4, "bridge": "xenbr1"}
    predicted = _state(states, "newvm05", test=True, **want)
    assert predicted["result"] is None, predicted
    assert predicted["changes"] == {
        "memory": {"old": 512, "new": 1024},
        "maxmem": {"old": 512, "new": 1024},
        "vcpus": {"old": 2, "new": 4},
        "maxvcpus": {"old": 2, "new": 4},
        "nics:0:bridge": {"old": "xenbr0", "new": "xenbr1"},
    }
    assert "would be updated" in predicted["comment"]
    assert spec_of(test_uri, "newvm05") == before  # test=True changed nothing
    real = _state(states, "newvm05", **want)
    assert real["result"] is True and real["changes"] == predicted["changes"], real
    after = spec_of(test_uri, "newvm05")
    assert (after["memory"], after["vcpus"], after["nics"][0]["bridge"]) == (1024, 4, "xenbr1")
    assert (after["uuid"], after["nics"][0]["mac"], after["disks"]) == (
        before["uuid"],
        before["nics"][0]["mac"],
        before["disks"],
    )
    assert (disk.stat().st_mtime_ns, disk_image.allocated(str(disk))) == before_disk  # disks never touched
    from saltext_xen.guests import clone

    assert clone.origin(connection.connect(test_uri).lookupByName("newvm05").XMLDesc(2))["name"] == "vm05"
    again = _state(states, "newvm05", **want)
    assert again["result"] is True and again["changes"] == {}, again
    assert "already as wanted (a clone of vm05)" in again["comment"]


def test_cloned_changes_a_running_clone_for_its_next_start(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    _state(states, "newvm05", source="vm05", start=True)
    ret = _state(states, "newvm05", source="vm05", memory=256)
    assert ret["result"] is True, ret
    assert ret["changes"] == {
        "memory": {"old": 512, "new": 256, "applied": "in the definition; the running guest sees it at its next start"}
    }
    assert "next start" in ret["comment"]
    assert connection.connect(test_uri).lookupByName("newvm05").isActive()
    assert _state(states, "newvm05", source="vm05", memory=256)["changes"] == {}


def test_cloned_names_a_disk_elsewhere_but_never_touches_it(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    _state(states, "newvm05", source="vm05")
    other = str(tmp_path / "elsewhere.img")
    ret = _state(states, "newvm05", source="vm05", disks={"xvda": other})
    assert ret["result"] is True and ret["changes"] == {}
    assert f"is at {tmp_path / 'newvm05.img'}, not at {other}" in ret["comment"]
    assert "never touched" in ret["comment"]
    assert not os.path.exists(other)


def test_cloned_refuses_a_guest_that_is_not_a_clone_of_the_source(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    before = spec_of(test_uri, "vm03")
    ret = _state(states, "vm03", source="vm05", memory=2048)
    assert ret["result"] is False and ret["changes"] == {}
    assert "vm03 exists but does not look like a clone of vm05" in ret["comment"]
    assert "memory is 512 (asked: 2048)" in ret["comment"]  # the difference is named, not changed
    assert spec_of(test_uri, "vm03") == before


def test_cloned_refuses_a_clone_of_another_source(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    _state(states, "newvm05", source="vm05")
    ret = _state(states, "newvm05", source="vm03")
    assert ret["result"] is False
    assert "newvm05 was cloned from vm05" in ret["comment"] and "not from vm03" in ret["comment"]


def test_cloned_refuses_a_copy_sharing_the_sources_mac(states, test_uri, tmp_path):
    from saltext_xen.guests import clone

    dom, _ = define_guest(test_uri, tmp_path, name="vm05")
    xml = dom.XMLDesc(2).replace("<name>vm05</name>", "<name>copy05</name>")
    xml = xml.replace("2aa1fae5-8550-affd-866f-27a9d6977d16", "2aa1fae5-8550-affd-866f-27a9d6977d17")
    # even with a record saying it is a clone of vm05
    connection.connect(test_uri).defineXML(clone.with_origin(xml, "vm05", "2aa1fae5-8550-affd-866f-27a9d6977d16"))
    ret = _state(states, "copy05", source="vm05")
    assert ret["result"] is False
    assert "copy05 has the same MAC as vm05 (00:16:36:88:76:d4)" in ret["comment"]


def test_cloned_knows_a_clone_made_before_clones_recorded_their_source(states, test_uri, tmp_path):
    """No <metadata> record, but the UUID is the one a clone of the source gets."""
    import re

    define_guest(test_uri, tmp_path, name="vm05")
    _state(states, "newvm05", source="vm05")
    conn = connection.connect(test_uri)
    xml = re.sub(r"<metadata>.*</metadata>", "", conn.lookupByName("newvm05").XMLDesc(2), flags=re.S)
    conn.defineXML(xml)
    ret = _state(states, "newvm05", source="vm05", vcpus=1)
    assert ret["result"] is True and ret["changes"]["vcpus"] == {"old": 2, "new": 1}, ret


def test_cloned_keeps_a_clone_whose_source_is_gone(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    _state(states, "newvm05", source="vm05")
    connection.connect(test_uri).lookupByName("vm05").undefine()
    ret = _state(states, "newvm05", source="vm05")
    assert ret["result"] is True and ret["changes"] == {}
    assert "vm05, which newvm05 was cloned from, no longer exists" in ret["comment"]


def test_cloned_names_bad_arguments_and_touches_nothing(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    ret = _state(states, "newvm05", source="vm05", memory="lots", vcpus=0, bridge="", disks={"xvda": "rel.img"})
    assert ret["result"] is False
    for key in ("memory:", "vcpus:", "bridge:", "disks:xvda:"):
        assert key in ret["comment"], ret["comment"]
    named = _state(states, "newvm05", source="vm05", memory="2GB", pillar_path="xen:clones:newvm05")
    assert "xen:clones:newvm05:memory: expected a whole number of MiB, got '2GB'" in named["comment"], named
    assert "newvm05" not in [d.name() for d in connection.connect(test_uri).listAllDomains()]
    assert _state(states, "vm05", source="vm05")["comment"].endswith("a guest cannot be a clone of itself (vm05)")


def test_clone_progress_is_logged_at_info_with_bytes(modules, test_uri, tmp_path, caplog):
    import logging
    import re

    define_guest(test_uri, tmp_path, name="vm05")
    with caplog.at_level(logging.INFO):
        modules.xen_guest.clone("vm05", "newvm05")
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.getMessage().startswith("cloning vm05 xvda")
    ]
    assert lines, caplog.text
    done = re.search(r": (\d+) of (\d+) bytes", lines[-1])
    assert done and done.group(1) == done.group(2) and int(done.group(2)) > 0, lines


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices")
def test_clone_of_a_qcow2_guest_onto_a_block_device_is_converted_to_raw(modules, test_uri, tmp_path):
    import subprocess

    from tests.functional.disk_helpers import loop_device
    from tests.functional.test_disk_move import qcow2_guest

    _, image, reference = qcow2_guest(test_uri, tmp_path, name="vm05")
    backing = tmp_path / "lv"
    disk_image.create(str(backing), 80 * MIB)
    with loop_device(backing) as dev:
        got = modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dev})
        assert got["copied"]["xvda"] == "qemu-img convert (qcow2 -> raw)"
        new = spec_of(test_uri, "newvm05")
        assert new["disks"][0]["source"] == dev and new["disks"][0]["format"] == "raw"
        assert (
            subprocess.run(
                ["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", image, dev], check=False
            ).returncode
            == 0
        )
        disk_copy.verify(reference, dev, size=64 * MIB)
    assert spec_of(test_uri, "vm05")["disks"][0]["format"] == "qcow2"  # the source as it was


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices")
def test_failed_qcow2_conversion_leaves_no_clone(modules, test_uri, tmp_path, monkeypatch):
    from tests.functional.disk_helpers import loop_device
    from tests.functional.test_disk_move import qcow2_guest

    qcow2_guest(test_uri, tmp_path, name="vm05")
    backing = tmp_path / "lv"
    disk_image.create(str(backing), 80 * MIB)

    def differs(*args, **kwargs):
        raise disk_copy.VerifyError("simulated: Content mismatch at offset 0!")

    monkeypatch.setattr(disk_copy, "compare", differs)
    with loop_device(backing) as dev, pytest.raises(Exception, match="simulated"):
        modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": dev})
    assert "newvm05" not in modules.xen_guest.list()


def test_qcow2_overlay_is_cloned_next_to_its_base_not_elsewhere(modules, test_uri, tmp_path):
    import subprocess

    from tests.functional.test_disk_move import qcow2_guest

    _, image, _ = qcow2_guest(test_uri, tmp_path, name="vm05")
    os.rename(image, tmp_path / "base.qcow2")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", image], check=True, cwd=tmp_path
    )
    (tmp_path / "other").mkdir()
    with pytest.raises(Exception, match=r"qcow2 overlay on base.qcow2, named relative to its folder"):
        modules.xen_guest.clone("vm05", "newvm05", disks={"xvda": str(tmp_path / "other" / "newvm05.qcow2")})
    got = modules.xen_guest.clone("vm05", "newvm05")  # next to the source: finds the same base
    assert got["disks"] == {"xvda": str(tmp_path / "newvm05.qcow2")}
