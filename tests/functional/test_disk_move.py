"""Moving a guest's disk (tutorial's lvcreate + dd + config edit) through xen_disk.move.

A loop device over a sparse file stands in for the LV here (a block device the
move does not have to create); real LV creation needs device-mapper and is in
the needs_dm tests at the end.
"""
import os
import shutil
import subprocess

import pytest

from saltext_xen import connection, disk_copy, disk_image
from tests.functional.disk_helpers import MIB, define_guest, disk_sources, loop_device

needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices"
)
needs_dm = pytest.mark.needs_dm
has_dm = os.path.exists("/dev/mapper/control") and shutil.which("lvcreate")


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
    from saltext_xen import storage_move

    def broken(*args, **kwargs):
        raise storage_move.MoveError("simulated: libvirt refused the new definition")

    monkeypatch.setattr(storage_move, "replace_disk", broken)
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
        got = modules.xen_disk.move("newvm", "xvda", dev)
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
    with loop_device(backing) as dev:
        with pytest.raises(Exception, match="is smaller than"):
            modules.xen_disk.move("newvm", "xvda", dev)
    assert disk_sources(test_uri, "newvm")["xvda"] == src


@pytest.fixture
def scratch_vg(tmp_path):
    """A throw-away volume group on a loop device over a sparse file (needs device-mapper)."""
    if not has_dm:
        pytest.skip("LVM needs device-mapper, which this kernel lacks (no /dev/mapper/control)")
    backing = tmp_path / "pv.img"
    disk_image.create(str(backing), 512 * MIB)
    vg = f"xentest{os.getpid()}"
    with loop_device(backing) as dev:
        subprocess.run(["pvcreate", "-q", "-y", dev], check=True, capture_output=True)
        subprocess.run(["vgcreate", "-q", vg, dev], check=True, capture_output=True)
        try:
            yield vg
        finally:
            subprocess.run(["vgremove", "-q", "-f", vg], check=False, capture_output=True)
            subprocess.run(["pvremove", "-q", "-y", dev], check=False, capture_output=True)


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
    from saltext_xen import storage_move

    def broken(*args, **kwargs):
        raise storage_move.MoveError("simulated failure after the copy")

    monkeypatch.setattr(storage_move, "replace_disk", broken)
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
        with pytest.raises(Exception, match="already holds ext4; it is not overwritten unless force=True"):
            modules.xen_disk.move("newvm", "xvda", dev)
        assert disk_sources(test_uri, "newvm")["xvda"] == src
        got = modules.xen_disk.move("newvm", "xvda", dev, force=True)
        assert got["xvda"]["new"] == dev
