"""Moving a guest's disk (tutorial's lvcreate + dd + config edit) through xen_disk.move.

A loop device over a sparse file stands in for the LV here (a block device the
move does not have to create); real LV creation needs device-mapper and is in
the needs_dm tests at the end.
"""

import os
import re
import subprocess

import pytest

from saltext_xen.core import connection
from saltext_xen.disks import disk_copy, disk_image
from tests.functional import disk_helpers
from tests.functional.disk_helpers import GUEST, MIB, define_guest, disk_sources, loop_device

needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices"
)
needs_dm = pytest.mark.needs_dm


def state(uri, name):
    return connection.connect(uri).lookupByName(name).state()[0]


def test_file_to_file_move_switches_definition_and_keeps_source(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path)
    (tmp_path / "new").mkdir()
    dest = str(tmp_path / "new" / "newvm.img")
    got = modules.xen_disk.move("newvm", "xvda", dest)
    assert got["xvda"]["old"] == src and got["xvda"]["new"] == dest and got["xvda"]["verified"]
    assert disk_sources(test_uri, "newvm")["xvda"] == dest
    assert os.path.exists(src)  # kept unless remove_source
    assert disk_image.allocated(dest) <= disk_image.allocated(src)
    disk_copy.verify(src, dest)
    # again: already there
    assert modules.xen_disk.move("newvm", "xvda", dest) == {}


def test_running_guest_is_refused_without_shutdown(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, running=True)
    dest = str(tmp_path / "moved.img")
    with pytest.raises(Exception, match="running: shut it off first, or pass shutdown=True"):
        modules.xen_disk.move("newvm", "xvda", dest)
    assert not os.path.exists(dest)
    assert disk_sources(test_uri, "newvm")["xvda"] == src
    assert state(test_uri, "newvm") == 1  # still running


def test_shutdown_true_stops_moves_and_starts_again(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, running=True)
    dest = str(tmp_path / "moved.img")
    got = modules.xen_disk.move("newvm", "xvda", dest, shutdown=True, remove_source=True)
    assert got["xvda"]["restarted"] and got["xvda"]["source_removed"]
    assert state(test_uri, "newvm") == 1
    assert disk_sources(test_uri, "newvm")["xvda"] == dest
    assert not os.path.exists(src)


def test_existing_destination_file_is_refused(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path)
    dest = tmp_path / "taken.img"
    dest.write_bytes(b"other guest")
    with pytest.raises(Exception, match="already exists"):
        modules.xen_disk.move("newvm", "xvda", str(dest))
    assert dest.read_bytes() == b"other guest"
    assert disk_sources(test_uri, "newvm")["xvda"] == src


def test_unknown_disk_lists_the_guests_disks(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    with pytest.raises(Exception, match="has no disk 'xvdq'; its disks are: xvda"):
        modules.xen_disk.move("newvm", "xvdq", str(tmp_path / "x.img"))


def test_failure_after_copy_leaves_guest_as_before(modules, test_uri, tmp_path, monkeypatch):
    """libvirt refusing the new definition: no partial target, old definition, guest running again."""
    _, src = define_guest(test_uri, tmp_path, running=True)
    before = connection.connect(test_uri).lookupByName("newvm").XMLDesc(2)
    dest = str(tmp_path / "moved.img")
    from saltext_xen.guests import disk_move

    def broken(*args, **kwargs):
        raise disk_move.MoveError("simulated: libvirt refused the new definition")

    monkeypatch.setattr(disk_move, "replace_disk", broken)
    with pytest.raises(Exception, match="simulated"):
        modules.xen_disk.move("newvm", "xvda", dest, shutdown=True)
    assert not os.path.exists(dest)
    assert connection.connect(test_uri).lookupByName("newvm").XMLDesc(2) == before
    assert state(test_uri, "newvm") == 1
    assert os.path.getsize(src) == 64 * MIB


@needs_loop
def test_file_into_block_device_and_back(modules, test_uri, tmp_path):
    """p2v/v2v: image -> block device (as the tutorial's LV) -> image again, holes kept."""
    _, src = define_guest(test_uri, tmp_path)
    backing = tmp_path / "lv_for_newvm"
    disk_image.create(str(backing), 80 * MIB)
    with open(backing, "r+b") as fh:
        fh.write(b"\xee" * MIB)  # old contents of the "LV"
    with loop_device(backing) as dev:
        with pytest.raises(Exception, match="holds data"):
            modules.xen_disk.move("newvm", "xvda", dev)  # the old contents are data: not without force
        assert disk_sources(test_uri, "newvm")["xvda"] == src
        got = modules.xen_disk.move("newvm", "xvda", dev, force=True)
        assert got["xvda"]["new"] == dev and got["xvda"]["verified"]
        assert disk_sources(test_uri, "newvm")["xvda"] == dev
        xml = connection.connect(test_uri).lookupByName("newvm").XMLDesc(2)
        assert f"<source dev='{dev}'" in xml and "phy" in xml
        assert disk_image.allocated(str(backing)) < 8 * MIB  # the holes were punched, not written
        back = str(tmp_path / "back.img")
        got = modules.xen_disk.move("newvm", "xvda", back)
        assert got["xvda"]["old"] == dev
    assert disk_sources(test_uri, "newvm")["xvda"] == back
    disk_copy.verify(src, back, size=64 * MIB)
    assert disk_image.allocated(back) <= 2 * disk_copy.CHUNK


@needs_loop
def test_block_device_too_small_is_refused(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path)
    backing = tmp_path / "small"
    disk_image.create(str(backing), 32 * MIB)
    with loop_device(backing) as dev, pytest.raises(Exception, match="is smaller than"):
        modules.xen_disk.move("newvm", "xvda", dev)
    assert disk_sources(test_uri, "newvm")["xvda"] == src


@pytest.fixture
def scratch_vg(tmp_path):
    """A throw-away volume group on a loop device over a sparse file (needs device-mapper)."""
    with disk_helpers.scratch_vg(tmp_path, "xentest") as vg:
        yield vg


@needs_dm
def test_move_into_new_lv_and_back(modules, test_uri, tmp_path, scratch_vg):
    """The tutorial's lvcreate -n lv_for_newvm + dd + config edit, with the LV made by the move."""
    _, src = define_guest(test_uri, tmp_path)
    dest = f"/dev/{scratch_vg}/lv_for_newvm"
    got = modules.xen_disk.move("newvm", "xvda", dest)
    assert got["xvda"]["new"] == dest and got["xvda"]["verified"]
    assert disk_sources(test_uri, "newvm")["xvda"] == dest
    disk_copy.verify(src, dest, size=64 * MIB)
    back = str(tmp_path / "back.img")
    got = modules.xen_disk.move("newvm", "xvda", back, remove_source=True)
    assert got["xvda"]["source_removed"]
    assert not os.path.exists(dest)  # the LV was removed as asked


@needs_dm
def test_failed_move_removes_the_lv_it_made(modules, test_uri, tmp_path, scratch_vg, monkeypatch):
    _, src = define_guest(test_uri, tmp_path)
    dest = f"/dev/{scratch_vg}/lv_half"
    from saltext_xen.guests import disk_move

    def broken(*args, **kwargs):
        raise disk_move.MoveError("simulated failure after the copy")

    monkeypatch.setattr(disk_move, "replace_disk", broken)
    with pytest.raises(Exception, match="simulated"):
        modules.xen_disk.move("newvm", "xvda", dest)
    assert not os.path.exists(dest)
    assert disk_sources(test_uri, "newvm")["xvda"] == src


@needs_dm
def test_grow_lv_refuses_shrink(modules, scratch_vg):
    path = f"/dev/{scratch_vg}/lv_grow"
    modules.xen_disk.create(path, "64M")
    got = modules.xen_disk.grow(path, "128M")
    assert got["new"] >= 128 * MIB
    with pytest.raises(Exception, match="refusing to shrink"):
        modules.xen_disk.grow(path, "64M")
    modules.xen_disk.delete(path, delete=True)
    assert not os.path.exists(path)


def test_another_guests_disk_is_never_a_destination(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path)
    with pytest.raises(Exception, match="already a disk of a guest"):
        modules.xen_disk.move("newvm", "xvda", "/var/lib/xen/images/vm02.img")
    assert disk_sources(test_uri, "newvm")["xvda"] == src


@needs_loop
def test_block_device_with_a_filesystem_needs_force(modules, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path)
    backing = tmp_path / "used-lv"
    disk_image.create(str(backing), 80 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True)
    with loop_device(backing) as dev:
        with pytest.raises(Exception, match=r"holds data \(ext4 signature\); say force: true to write over it"):
            modules.xen_disk.move("newvm", "xvda", dev)
        assert disk_sources(test_uri, "newvm")["xvda"] == src
        got = modules.xen_disk.move("newvm", "xvda", dev, force=True)
        assert got["xvda"]["new"] == dev


# --------------------------------------------------------------------------- qcow2 <-> raw (qemu-img convert)
def qcow2_guest(uri, tmp_path, name="newvm", running=False):
    """``name`` with a qcow2 ``xvda`` made by real qemu-img; returns (dom, qcow2 path, raw reference)."""
    _, reference = define_guest(uri, tmp_path, name=f"{name}-seed")
    connection.connect(uri).lookupByName(f"{name}-seed").undefine()
    image = str(tmp_path / f"{name}.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", reference, image], check=True)
    xml = GUEST.format(name=name, uuid="2aa1fae5-8550-affd-866f-27a9d6977d16", disk=image)
    dom = connection.connect(uri).defineXML(xml.replace('type="raw"', 'type="qcow2"'))
    if running:
        dom.create()
    return dom, image, reference


def disk_formats(uri, name):
    from saltext_xen.guests import domain_xml

    dom = connection.connect(uri).lookupByName(name)
    return {d["target"]: d["format"] for d in domain_xml.parse(dom.XMLDesc(2))["disks"]}


def same_image(a, a_fmt, b, b_fmt):
    return subprocess.run(["qemu-img", "compare", "-q", "-f", a_fmt, "-F", b_fmt, a, b], check=False).returncode == 0


def test_qcow2_to_raw_file_is_converted_sparse_and_switched(modules, test_uri, tmp_path):
    _, image, reference = qcow2_guest(test_uri, tmp_path)
    dest = str(tmp_path / "newvm.img")
    got = modules.xen_disk.move("newvm", "xvda", dest, format="raw")
    assert got["xvda"]["format"] == {"old": "qcow2", "new": "raw"} and got["xvda"]["verified"]
    assert got["xvda"]["copied"].startswith("qemu-img convert")
    assert disk_sources(test_uri, "newvm")["xvda"] == dest and disk_formats(test_uri, "newvm")["xvda"] == "raw"
    assert os.path.getsize(dest) == 64 * MIB  # the qcow2's virtual size
    disk_copy.verify(reference, dest)  # byte for byte what the guest saw
    assert disk_image.allocated(dest) < 4 * MIB  # zeros were not written
    assert os.path.exists(image)  # source kept
    assert modules.xen_disk.move("newvm", "xvda", dest) == {}  # already there


def test_move_plan_says_it_converts_to_the_virtual_size(modules, test_uri, tmp_path):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    step = modules.xen_disk.move_plan("newvm", "xvda", str(tmp_path / "x.img"), format="raw")
    assert step["convert"] and step["format"] == "qcow2" and step["dest_format"] == "raw"
    assert step["size"] == 64 * MIB and os.path.getsize(image) < 64 * MIB


def test_qcow2_is_not_converted_in_place_nor_written_as_qcow2_onto_a_device(modules, test_uri, tmp_path):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    with pytest.raises(Exception, match="not converted in place"):
        modules.xen_disk.move("newvm", "xvda", image, format="raw")
    with pytest.raises(Exception, match="holds raw data, not qcow2"):
        modules.xen_disk.move("newvm", "xvda", "/dev/vol0/lv_for_newvm", format="qcow2")
    with pytest.raises(Exception, match="expected raw or qcow2"):
        modules.xen_disk.move("newvm", "xvda", str(tmp_path / "x.img"), format="vmdk")
    assert disk_sources(test_uri, "newvm")["xvda"] == image


def test_failed_conversion_check_leaves_guest_as_before(modules, test_uri, tmp_path, monkeypatch):
    """qemu-img compare finding a difference: no target left, old definition, guest running again."""
    dom, image, _ = qcow2_guest(test_uri, tmp_path, running=True)
    before = dom.XMLDesc(2)
    dest = str(tmp_path / "newvm.img")

    def differs(*args, **kwargs):
        raise disk_copy.VerifyError("simulated: Content mismatch at offset 0!")

    monkeypatch.setattr(disk_copy, "compare", differs)
    with pytest.raises(Exception, match="simulated: Content mismatch"):
        modules.xen_disk.move("newvm", "xvda", dest, format="raw", shutdown=True)
    assert not os.path.exists(dest)
    assert connection.connect(test_uri).lookupByName("newvm").XMLDesc(2) == before
    assert state(test_uri, "newvm") == 1
    assert os.path.exists(image)


@needs_loop
def test_qcow2_into_block_device_and_back_to_qcow2(modules, test_uri, tmp_path):
    """The tutorial's file -> LV move for a qcow2 image: converted to raw, phy backend; then back."""
    _, image, reference = qcow2_guest(test_uri, tmp_path, running=True)
    backing = tmp_path / "lv_for_newvm"
    disk_image.create(str(backing), 80 * MIB)
    with open(backing, "r+b") as fh:
        fh.write(b"\xee" * MIB)  # old contents of the "LV"
        fh.seek(70 * MIB)
        fh.write(b"\xee" * MIB)  # ... also past the end of the guest's disk
    with loop_device(backing) as dev:
        got = modules.xen_disk.move("newvm", "xvda", dev, shutdown=True, force=True)  # over the old contents
        assert got["xvda"]["new"] == dev and got["xvda"]["verified"] and got["xvda"]["restarted"]
        assert got["xvda"]["format"] == {"old": "qcow2", "new": "raw"}
        assert state(test_uri, "newvm") == 1
        xml = connection.connect(test_uri).lookupByName("newvm").XMLDesc(2)
        assert f"<source dev='{dev}'" in xml and "name='phy'" in xml and "qcow2" not in xml
        assert same_image(image, "qcow2", dev, "raw")
        with open(dev, "rb") as fh:
            assert fh.read(len(b"root filesystem")) == b"root filesystem"
            fh.seek(70 * MIB)
            assert fh.read(MIB) == bytes(MIB)  # nothing old shows through
        assert disk_image.allocated(str(backing)) < 8 * MIB  # zeros became holes, not writes
        back = str(tmp_path / "back.qcow2")
        got = modules.xen_disk.move("newvm", "xvda", back, format="qcow2", shutdown=True)
        assert got["xvda"]["format"] == {"old": "raw", "new": "qcow2"} and got["xvda"]["old"] == dev
    assert disk_sources(test_uri, "newvm")["xvda"] == back and disk_formats(test_uri, "newvm")["xvda"] == "qcow2"
    assert disk_image.info(back)["format"] == "qcow2"
    assert same_image(reference, "raw", back, "qcow2")
    assert disk_image.allocated(back) < 8 * MIB


@needs_loop
def test_failed_conversion_removes_the_block_device_the_move_made(test_uri, tmp_path, monkeypatch):
    """The library's undo: an LV made for the move is dropped again (a loop device stands in for it)."""
    from saltext_xen.guests import disk_move

    dom, image, _ = qcow2_guest(test_uri, tmp_path)
    before = dom.XMLDesc(2)
    backing = tmp_path / "lv"
    disk_image.create(str(backing), 64 * MIB)
    calls = []
    conn = connection.connect(test_uri)
    with loop_device(backing) as dev:
        step = disk_move.plan(conn, "newvm", "xvda", dev)
        assert step["convert"] and step["dest_format"] == "raw"
        step["make_block"] = True  # as if the LV had been missing

        def differs(*args, **kwargs):
            raise disk_copy.VerifyError("simulated: Content mismatch at offset 0!")

        monkeypatch.setattr(disk_copy, "compare", differs)
        with pytest.raises(disk_copy.VerifyError):
            disk_move.execute(
                conn,
                step,
                make_block=lambda p, n: calls.append(("make", p, n)),
                drop_block=lambda p: calls.append(("drop", p)),
            )
    assert calls == [("make", dev, 64 * MIB), ("drop", dev)]
    assert conn.lookupByName("newvm").XMLDesc(2) == before
    assert os.path.exists(image)


@needs_dm
def test_qcow2_into_new_lv(modules, test_uri, tmp_path, scratch_vg):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    dest = f"/dev/{scratch_vg}/lv_for_newvm"
    got = modules.xen_disk.move("newvm", "xvda", dest)
    assert got["xvda"]["format"] == {"old": "qcow2", "new": "raw"} and got["xvda"]["verified"]
    assert disk_sources(test_uri, "newvm")["xvda"] == dest and disk_formats(test_uri, "newvm")["xvda"] == "raw"
    assert disk_image.info(dest)["size"] >= 64 * MIB
    assert same_image(image, "qcow2", dest, "raw")
    back = str(tmp_path / "back.qcow2")
    got = modules.xen_disk.move("newvm", "xvda", back, format="qcow2", remove_source=True)
    assert got["xvda"]["source_removed"] and not os.path.exists(dest)
    assert disk_formats(test_uri, "newvm")["xvda"] == "qcow2"


@needs_dm
def test_failed_qcow2_conversion_removes_the_lv_it_made(modules, test_uri, tmp_path, scratch_vg, monkeypatch):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    dest = f"/dev/{scratch_vg}/lv_half"

    def differs(*args, **kwargs):
        raise disk_copy.VerifyError("simulated: Content mismatch at offset 0!")

    monkeypatch.setattr(disk_copy, "compare", differs)
    with pytest.raises(Exception, match="simulated"):
        modules.xen_disk.move("newvm", "xvda", dest)
    assert not os.path.exists(dest)
    assert disk_sources(test_uri, "newvm")["xvda"] == image


def test_progress_is_logged_at_info_with_bytes_done_and_total(modules, test_uri, tmp_path, caplog):
    import logging

    define_guest(test_uri, tmp_path)
    dest = str(tmp_path / "moved.img")
    with caplog.at_level(logging.INFO):
        modules.xen_disk.move("newvm", "xvda", dest)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "moving" in r.getMessage()]
    assert lines, caplog.text
    # the data to copy (holes are not copied): the last line says all of it is done
    done = re.search(r": (\d+) of (\d+) bytes \(.* of .*, 100%\)$", lines[-1])
    assert done and done.group(1) == done.group(2) and int(done.group(2)) > 0, lines


def test_conversion_progress_is_logged_at_info(modules, test_uri, tmp_path, caplog):
    import logging

    qcow2_guest(test_uri, tmp_path)
    with caplog.at_level(logging.INFO):
        modules.xen_disk.move("newvm", "xvda", str(tmp_path / "newvm.img"), format="raw")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "converting" in r.getMessage()]
    assert lines and f"{64 * MIB} of {64 * MIB} bytes" in lines[-1], caplog.text


def test_qcow2_overlay_is_not_moved_away_from_its_relative_backing_file(modules, test_uri, tmp_path):
    _, image, reference = qcow2_guest(test_uri, tmp_path)
    base = tmp_path / "base.qcow2"
    os.rename(image, base)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", image], check=True, cwd=tmp_path
    )
    (tmp_path / "other").mkdir()
    with pytest.raises(Exception, match=r"qcow2 overlay on base\.qcow2, named relative to its folder"):
        modules.xen_disk.move("newvm", "xvda", str(tmp_path / "other" / "newvm.qcow2"))
    assert disk_sources(test_uri, "newvm")["xvda"] == image
    # within its folder it still finds its base; into a raw file it is copied whole
    same = str(tmp_path / "newvm-moved.qcow2")
    modules.xen_disk.move("newvm", "xvda", same)
    assert same_image(reference, "raw", same, "qcow2")
    whole = str(tmp_path / "other" / "newvm.img")
    modules.xen_disk.move("newvm", "xvda", whole, format="raw")
    disk_copy.verify(reference, whole)
