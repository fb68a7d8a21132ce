"""Disk copies under faults, with real processes: ``kill -9`` in the middle of a copy, and a full filesystem.

Each killed operation runs in a child Python process whose progress hook
tells the parent the copy has begun (and then holds the copy there), so the
kill lands mid-copy every time. After each fault: the source is intact (same
hash), nothing that looks complete sits under the target's name, and the next
run converges or says what went wrong.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from saltext_xen.core import connection, protect
from saltext_xen.disks import disk_copy, disk_image
from tests.functional.disk_helpers import MIB, define_guest, disk_sources, kill_once_copying, loop_device, scratch_vg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 256 * MIB
DATA = 64 * MIB  # four of disk_copy's 16 MiB chunks: the hook runs after the first

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, loop devices)")
needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices"
)
needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="needs qemu-img (qemu-utils)")

CHILD = textwrap.dedent(
    """
    import sys, time
    from saltext_xen.disks import disk_copy
    from saltext_xen.guests import disk_move
    import libvirt

    def hold(done, total):
        if done:
            print("copying", flush=True)
            time.sleep(600)

    op, src, dst = sys.argv[1:4]
    if op == "copy":
        disk_copy.copy(src, dst, progress=hold)
    elif op == "convert":
        disk_copy.convert(src, "qcow2", dst, "raw", progress=hold)
    elif op == "move":
        conn = libvirt.open("test:///default")
        conn.defineXML(sys.argv[4])
        step = disk_move.plan(conn, "newvm", "xvda", dst)
        disk_move.execute(conn, step, progress=hold)
    print("finished", flush=True)
    """
)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def image_with_data(path, size=SIZE, data=DATA):
    """A sparse raw image of ``size`` with ``data`` bytes of random data in two places."""
    disk_image.create(str(path), size)
    with open(path, "r+b") as fh:
        fh.write(os.urandom(data // 2))
        fh.seek(size // 2)
        fh.write(os.urandom(data // 2))
    return str(path)


def qcow2_with_data(tmp_path):
    raw = image_with_data(tmp_path / "data.raw")
    image = str(tmp_path / "vm.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image], check=True)
    os.unlink(raw)
    return image


def kill_mid_copy(*args):
    """Run the child with ``args``, wait until its copy has begun, ``kill -9`` it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "_utils"), ROOT]))
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    ) as proc:
        kill_once_copying(proc, 120)


def nothing_complete_at(dst):
    """The target's name is free and the only trace is a recognisable temporary of a dead process."""
    assert not os.path.lexists(dst)
    left = protect.leftovers(dst)
    assert len(left) == 1 and left[0]["target"] == dst and not left[0]["running"]
    assert disk_copy.is_partial(dst)
    return left[0]["path"]


def test_killed_clone_copy_leaves_only_a_temporary_and_the_next_copy_cleans_it(tmp_path):
    """A clone's disk copy (disk_copy.copy) killed half-way; the next clone run copies afresh."""
    src = image_with_data(tmp_path / "vm03.img")
    before = sha256(src)
    dst = str(tmp_path / "vm03-clone.img")
    kill_mid_copy("copy", src, dst)
    assert sha256(src) == before
    temp = nothing_complete_at(dst)
    again = disk_copy.copy(src, dst)
    assert again["verified"] and again["leftovers_removed"] == [temp]
    assert not os.path.exists(temp) and not disk_copy.is_partial(dst)
    disk_copy.verify(src, dst)
    assert sha256(src) == before


@needs_qemu_img
def test_killed_qcow2_conversion_leaves_only_a_temporary_and_the_next_one_cleans_it(tmp_path):
    src = qcow2_with_data(tmp_path)
    before = sha256(src)
    dst = str(tmp_path / "vm.img")
    kill_mid_copy("convert", src, dst)
    assert sha256(src) == before
    temp = nothing_complete_at(dst)
    again = disk_copy.convert(src, "qcow2", dst, "raw")
    assert again["verified"] and again["leftovers_removed"] == [temp]
    assert protect.leftovers(str(tmp_path)) == []
    disk_copy.compare(src, "qcow2", dst, "raw")
    assert sha256(src) == before


@needs_loop
def test_killed_move_into_a_block_device_keeps_the_guest_and_the_next_move_converges(modules, test_uri, tmp_path):
    """File -> loop device (the LV of the tutorial) killed mid-copy: the definition never pointed at the copy,
    and the next move knows the device's bytes as its own unfinished copy (its journal), so it needs no force."""
    _, src = define_guest(test_uri, tmp_path, size=SIZE, data=os.urandom(DATA // 2))
    with open(src, "r+b") as fh:
        fh.seek(SIZE - DATA // 2)
        fh.write(os.urandom(DATA // 2))
    before = sha256(src)
    xml = connection.connect(test_uri).lookupByName("newvm").XMLDesc(0)  # the same guest in the child
    backing = tmp_path / "lv_for_newvm"
    disk_image.create(str(backing), SIZE + 16 * MIB)
    with loop_device(backing) as dev:
        kill_mid_copy("move", src, dev, xml)
        assert sha256(src) == before
        assert disk_sources(test_uri, "newvm")["xvda"] == src
        assert disk_copy.is_partial(dev) and os.path.exists(disk_copy.journal_path(dev))
        got = modules.xen_disk.move("newvm", "xvda", dev)
        assert got["xvda"]["verified"] and disk_sources(test_uri, "newvm")["xvda"] == dev
        assert not disk_copy.is_partial(dev) and not os.path.exists(disk_copy.journal_path(dev))
        disk_copy.verify(src, dev, size=SIZE)
    assert sha256(src) == before


@needs_loop
def test_killed_copy_onto_a_plain_device_is_recognised_until_someone_else_writes_to_it(tmp_path):
    """The journal of a copy onto a device that is no LV: the next copy writes over the killed copy's bytes
    without force and says so; once anything else is written to the device's ends, its bytes are data again."""
    src = image_with_data(tmp_path / "vm03.img")
    before = sha256(src)
    backing = tmp_path / "disk"
    disk_image.create(str(backing), SIZE + 16 * MIB)
    with loop_device(backing) as dev:
        kill_mid_copy("copy", src, dev)
        assert sha256(src) == before
        record = disk_copy.unfinished_copy(dev)
        assert record is not None and record["source"] == src and record["device"] == dev
        again = disk_copy.copy(src, dev)
        assert again["verified"] and again["leftovers_removed"] == [dev]
        assert not disk_copy.is_partial(dev) and not os.path.exists(disk_copy.journal_path(dev))
        disk_copy.verify(src, dev, size=SIZE)

        kill_mid_copy("copy", src, dev)
        assert disk_copy.is_partial(dev)
        subprocess.run(["parted", "-s", dev, "mklabel", "gpt"], check=True, capture_output=True)  # someone else's
        assert not disk_copy.is_partial(dev)
        assert protect.holds_data(dev)  # so a clone or move onto it asks for force again
        assert protect.overwrite_problem(dev).endswith("say force: true to write over it")
    assert sha256(src) == before


@pytest.fixture
def full_fs(tmp_path):
    """A 32 MiB tmpfs, too small for the 64 MiB of data copied into it; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(where)], check=False, capture_output=True
    )
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_copy_onto_a_full_filesystem_fails_cleanly(tmp_path, full_fs):
    src = image_with_data(tmp_path / "vm03.img")
    before = sha256(src)
    dst = str(full_fs / "vm03-clone.img")
    with pytest.raises(disk_copy.CopyError, match="No space left on device"):
        disk_copy.copy(src, dst)
    assert os.listdir(full_fs) == []  # neither the target nor its temporary
    assert sha256(src) == before


@needs_qemu_img
def test_conversion_onto_a_full_filesystem_fails_cleanly(tmp_path, full_fs):
    src = qcow2_with_data(tmp_path)
    before = sha256(src)
    dst = str(full_fs / "vm.img")
    with pytest.raises(disk_copy.CopyError, match=r"qemu-img convert .* failed"):
        disk_copy.convert(src, "qcow2", dst, "raw")
    assert os.listdir(full_fs) == []
    assert sha256(src) == before


@needs_loop
def test_move_onto_a_device_whose_storage_is_full_leaves_the_guest_as_it_was(modules, test_uri, tmp_path, full_fs):
    """The loop device's backing file lives on the full tmpfs: writes to the device fail half-way."""
    _, src = define_guest(test_uri, tmp_path, size=SIZE, data=os.urandom(DATA // 2))
    with open(src, "r+b") as fh:
        fh.seek(SIZE - DATA // 2)
        fh.write(os.urandom(DATA // 2))
    before = sha256(src)
    backing = full_fs / "lv_for_newvm"
    disk_image.create(str(backing), SIZE)
    with loop_device(backing) as dev, pytest.raises(Exception, match=r"failed|error"):
        modules.xen_disk.move("newvm", "xvda", dev)
    assert disk_sources(test_uri, "newvm")["xvda"] == src
    assert sha256(src) == before


@pytest.fixture
def scratch_lv(tmp_path):
    """An LV in a throw-away volume group on a loop device (needs device-mapper)."""
    with scratch_vg(tmp_path, "xenfault") as vg:
        subprocess.run(["lvcreate", "-q", "-n", "clone", "-L", f"{SIZE}b", vg], check=True, capture_output=True)
        yield f"/dev/{vg}/clone"


@pytest.mark.needs_dm
def test_killed_copy_into_an_lv_leaves_it_tagged_partial(tmp_path, scratch_lv):
    """An LV cannot be renamed into place: the tag saltext-xen-partial marks it until the copy is verified."""
    src = image_with_data(tmp_path / "vm03.img")
    before = sha256(src)
    kill_mid_copy("copy", src, scratch_lv)
    assert sha256(src) == before
    assert disk_copy.is_partial(scratch_lv)
    assert disk_copy.PARTIAL_TAG in disk_copy.lv_tags(scratch_lv)
    again = disk_copy.copy(src, scratch_lv)
    assert again["verified"] and not disk_copy.is_partial(scratch_lv)
    disk_copy.verify(src, scratch_lv, size=SIZE)


def test_a_killed_moves_leftover_is_shown_by_the_plan_and_removed_by_the_next_move(modules, test_uri, tmp_path):
    """File -> file: the killed copy left a temporary beside the destination; test=True says so, the move cleans it."""
    _, src = define_guest(test_uri, tmp_path, size=SIZE, data=os.urandom(DATA // 2))
    before = sha256(src)
    dest = str(tmp_path / "moved.img")
    kill_mid_copy("copy", src, dest)
    temp = nothing_complete_at(dest)
    plan = modules.xen_disk.move_plan("newvm", "xvda", dest)
    assert plan["leftovers"] == [temp]
    got = modules.xen_disk.move("newvm", "xvda", dest)
    assert got["xvda"]["verified"] and got["xvda"]["leftovers_removed"] == [temp]
    assert not os.path.exists(temp) and disk_sources(test_uri, "newvm")["xvda"] == dest
    assert sha256(src) == before and sha256(dest) == before


def test_a_symlink_to_a_guests_disk_counts_as_that_disk(modules, test_uri, tmp_path):
    _, root = define_guest(test_uri, tmp_path)
    alias = tmp_path / "alias.img"
    alias.symlink_to(root)
    assert modules.xen_disk.users(str(alias)) == [["newvm", "xvda", False]]
    with pytest.raises(Exception, match="is a disk of newvm"):
        modules.xen_disk.format(str(alias), "ext4", force=True)
