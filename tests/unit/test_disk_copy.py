"""Disk copies: holes stay holes, the copy is checked, failures leave nothing behind.

Real sparse files, real loop devices (as stand-ins for LVs: a loop device over a
sparse file deallocates on hole punching like a thin LV), a real XFS for reflink.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.disks import disk_copy, disk_image
from tests.functional.disk_helpers import loop_device

MIB = 1024 * 1024
is_root = os.geteuid() == 0
needs_loop = pytest.mark.skipif(
    not (is_root and shutil.which("losetup") and os.path.exists("/dev/loop-control")),
    reason="needs root and loop devices (losetup, /dev/loop-control)",
)


def write_at(path, offset, data):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def sparse_image(path, size, chunks):
    """A sparse file of ``size`` bytes with ``{offset: bytes}`` written into it."""
    disk_image.create(str(path), size)
    for offset, data in chunks.items():
        write_at(path, offset, data)
    return str(path)


@contextlib.contextmanager
def mounted(fstype, image, mountpoint, size="300M", mkfs=None):
    """Mount ``image`` (a loop-mounted file made here) or, for tmpfs, no image at all."""
    if image is not None:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
    if mkfs:
        subprocess.run(mkfs + [str(image)], check=True, capture_output=True)
    os.makedirs(mountpoint, exist_ok=True)
    args = ["mount", "-o", "loop", str(image), str(mountpoint)]
    if fstype == "tmpfs":
        args = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)]
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    if res.returncode:
        pytest.skip(f"cannot mount {fstype} here: {res.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


def test_sparse_copy_keeps_holes_and_bytes(tmp_path):
    src = sparse_image(
        tmp_path / "vm03.img", 1024 * MIB, {0: b"MBR" * 1000, 300 * MIB: os.urandom(3 * MIB), 1024 * MIB - 5: b"tail!"}
    )
    dst = str(tmp_path / "newvm03.img")
    seen = []
    got = disk_copy.copy(src, dst, progress=lambda done, total: seen.append((done, total)))
    assert got["verified"] is True
    assert got["size"] == os.path.getsize(dst) == 1024 * MIB
    assert got["method"] in ("reflink", "extents (copy_file_range)", "extents (sendfile)", "extents (read/write)")
    assert disk_image.allocated(dst) <= disk_image.allocated(src) + 64 * 1024
    assert disk_image.allocated(dst) < 8 * MIB
    assert subprocess.run(["cmp", src, dst], check=False).returncode == 0
    assert seen and seen[-1][0] == seen[-1][1]


def test_two_terabyte_sparse_image_copies_in_kilobytes(tmp_path):
    src = sparse_image(tmp_path / "newvm-1.img", 2 * 1000**4, {1000**4: b"data in the middle"})
    dst = str(tmp_path / "copy.img")
    got = disk_copy.copy(src, dst)
    assert got["verified"]
    assert os.path.getsize(dst) == 2 * 1000**4
    assert disk_image.allocated(dst) < MIB


def test_existing_target_is_refused_and_both_untouched(tmp_path):
    src = sparse_image(tmp_path / "a.img", MIB, {0: b"source"})
    dst = tmp_path / "b.img"
    dst.write_bytes(b"someone's data")
    with pytest.raises(disk_copy.CopyError, match="already exists"):
        disk_copy.copy(src, str(dst))
    assert dst.read_bytes() == b"someone's data"
    with open(src, "rb") as fh:
        assert fh.read(6) == b"source"


def test_missing_source_is_named(tmp_path):
    with pytest.raises(disk_copy.CopyError, match="does not exist"):
        disk_copy.copy(str(tmp_path / "nope.img"), str(tmp_path / "b.img"))
    assert not (tmp_path / "b.img").exists()


def test_interrupted_copy_removes_partial_target(tmp_path):
    src = sparse_image(tmp_path / "a.img", 64 * MIB, {0: os.urandom(40 * MIB)})
    dst = tmp_path / "b.img"

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        disk_copy.copy(src, str(dst), progress=interrupt)
    assert not dst.exists()
    assert os.path.getsize(src) == 64 * MIB


@pytest.mark.skipif(not is_root, reason="mounting a small tmpfs needs root")
def test_full_target_filesystem_fails_cleanly(tmp_path):
    src = sparse_image(tmp_path / "a.img", 64 * MIB, {0: os.urandom(8 * MIB)})
    with mounted("tmpfs", None, tmp_path / "small", size="2M") as mnt:
        dst = mnt / "b.img"
        with pytest.raises(disk_copy.CopyError, match="No space left") as err:
            disk_copy.copy(src, str(dst))
        assert "partial copy was removed" in str(err.value)
        assert not dst.exists()


def test_verify_names_the_differing_range(tmp_path):
    a = sparse_image(tmp_path / "a.img", 32 * MIB, {MIB: b"x" * 100})
    b = sparse_image(tmp_path / "b.img", 32 * MIB, {MIB: b"x" * 99 + b"y"})
    with pytest.raises(disk_copy.VerifyError, match=r"differs .* between bytes"):
        disk_copy.verify(a, b)
    c = sparse_image(tmp_path / "c.img", 32 * MIB, {20 * MIB: b"only here"})
    with pytest.raises(disk_copy.VerifyError):
        disk_copy.verify(a, c)


def test_data_extents_skip_holes(tmp_path):
    src = sparse_image(tmp_path / "a.img", 100 * MIB, {10 * MIB: b"z" * MIB})
    fd = os.open(src, os.O_RDONLY)
    try:
        extents = list(disk_copy.data_extents(fd, 100 * MIB))
    finally:
        os.close(fd)
    assert sum(e - s for s, e in extents) <= 2 * MIB
    assert all(s <= 10 * MIB and e >= 11 * MIB for s, e in extents)


@needs_loop
def test_copy_into_block_device_punches_holes_and_hides_old_data(tmp_path):
    src = sparse_image(tmp_path / "vm.img", 64 * MIB, {0: b"boot", 40 * MIB: b"data" * 1000})
    backing = tmp_path / "lv-backing.img"
    backing.write_bytes(b"\xee" * (80 * MIB))  # an "LV" full of old data, larger than the source
    with loop_device(backing) as dev:
        got = disk_copy.copy(src, dev)
        assert got["verified"]
        with open(dev, "rb") as fh:
            assert fh.read(4) == b"boot"
            fh.seek(20 * MIB)
            assert fh.read(MIB) == bytes(MIB)  # old data is gone where the source has a hole
    # The loop device passed the hole punching to its backing file: it became sparse.
    assert disk_image.allocated(str(backing)) < 40 * MIB


@needs_loop
def test_block_device_source_to_file_skips_zero_chunks(tmp_path):
    backing = sparse_image(tmp_path / "lv.img", 128 * MIB, {64 * MIB: os.urandom(MIB)})
    dst = str(tmp_path / "vm.img")
    with loop_device(backing) as dev:
        got = disk_copy.copy(dev, dst)
    assert got["verified"] and got["method"] == "read, zeros skipped"
    assert os.path.getsize(dst) == 128 * MIB
    assert disk_image.allocated(dst) <= 2 * disk_copy.CHUNK
    with open(dst, "rb") as a, open(backing, "rb") as b:
        assert a.read() == b.read()


@needs_loop
def test_block_target_smaller_than_source_is_refused(tmp_path):
    src = sparse_image(tmp_path / "vm.img", 64 * MIB, {0: b"x"})
    backing = sparse_image(tmp_path / "small.img", 32 * MIB, {0: b"keep me"})
    with loop_device(backing) as dev, pytest.raises(disk_copy.CopyError, match="is smaller than"):
        disk_copy.copy(src, dev)
    with open(backing, "rb") as fh:
        assert fh.read(7) == b"keep me"


@pytest.mark.skipif(not (is_root and shutil.which("mkfs.xfs")), reason="needs root and mkfs.xfs")
def test_reflink_on_xfs_shares_blocks(tmp_path):
    with mounted("xfs", tmp_path / "xfs.img", tmp_path / "xfs", mkfs=["mkfs.xfs", "-q"]) as mnt:
        src = sparse_image(mnt / "vm.img", 512 * MIB, {0: os.urandom(50 * MIB)})
        before = os.statvfs(mnt)
        got = disk_copy.copy(src, str(mnt / "clone.img"))
        after = os.statvfs(mnt)
        assert got["method"] == "reflink" and got["verified"]
        used = (before.f_bfree - after.f_bfree) * before.f_frsize
        assert used < 5 * MIB  # shared blocks, not another 50 MiB


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.binary(min_size=1, max_size=5000)), max_size=6))
def test_any_layout_round_trips(writes):
    with tempfile.TemporaryDirectory() as tmp:
        src = sparse_image(os.path.join(tmp, "a.img"), 64 * 65536, {block * 65536: data for block, data in writes})
        dst = os.path.join(tmp, "b.img")
        disk_copy.copy(src, dst)
        with open(src, "rb") as a, open(dst, "rb") as b:
            assert a.read() == b.read()


@pytest.mark.skipif(not is_root, reason="mounting a tmpfs needs root")
def test_copy_across_filesystems_keeps_holes(tmp_path):
    src = sparse_image(tmp_path / "a.img", 512 * MIB, {0: b"a" * 5000, 300 * MIB: os.urandom(2 * MIB)})
    with mounted("tmpfs", None, tmp_path / "other", size="64M") as mnt:
        dst = str(mnt / "b.img")
        got = disk_copy.copy(src, dst)
        assert got["verified"] and got["method"].startswith("extents")
        assert disk_image.allocated(dst) < 8 * MIB


# --------------------------------------------------------------------------- convert (qemu-img)
needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="needs qemu-img (qemu-utils)")


def qcow2_image(tmp_path, size=256 * MIB, chunks=None):
    """A qcow2 image (real qemu-img) holding ``chunks``; returns (qcow2 path, raw reference path)."""
    ref = sparse_image(tmp_path / "ref.img", size, chunks or {0: b"boot sector", 200 * MIB: os.urandom(MIB)})
    image = str(tmp_path / "vm.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", ref, image], check=True)
    return image, ref


@needs_qemu_img
def test_convert_qcow2_to_sparse_raw_file(tmp_path):
    image, ref = qcow2_image(tmp_path)
    dst = str(tmp_path / "vm.img")
    seen = []
    got = disk_copy.convert(image, "qcow2", dst, "raw", progress=lambda d, t: seen.append((d, t)))
    assert got["verified"] and got["size"] == 256 * MIB == os.path.getsize(dst)
    assert subprocess.run(["cmp", ref, dst], check=False).returncode == 0
    assert disk_image.allocated(dst) < 4 * MIB  # only the data was written
    assert seen and seen[-1] == (256 * MIB, 256 * MIB)
    assert stat_mode(dst) == stat_mode(image)


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


@needs_qemu_img
def test_convert_raw_to_qcow2_file(tmp_path):
    ref = sparse_image(tmp_path / "lv.img", 128 * MIB, {5 * MIB: b"data", 100 * MIB: os.urandom(MIB)})
    dst = str(tmp_path / "back.qcow2")
    got = disk_copy.convert(ref, "raw", dst, "qcow2")
    assert got["verified"] and disk_image.info(dst)["format"] == "qcow2"
    assert disk_image.info(dst)["size"] == 128 * MIB
    assert disk_image.allocated(dst) < 4 * MIB


@needs_qemu_img
def test_convert_never_writes_over_an_existing_file(tmp_path):
    image, _ = qcow2_image(tmp_path)
    dst = tmp_path / "taken.img"
    dst.write_bytes(b"someone's data")
    with pytest.raises(disk_copy.CopyError, match="already exists; it is not overwritten"):
        disk_copy.convert(image, "qcow2", str(dst), "raw")
    assert dst.read_bytes() == b"someone's data"


@needs_qemu_img
def test_failed_convert_removes_its_partial_file(tmp_path):
    bad = tmp_path / "broken.qcow2"
    bad.write_bytes(b"QFI\xfb" + b"\0" * 60)  # a qcow2 header qemu-img cannot read
    dst = tmp_path / "out.img"
    with pytest.raises(disk_copy.CopyError, match=r"qemu-img convert .* failed"):
        disk_copy.convert(str(bad), "qcow2", str(dst), "raw", size=MIB)
    assert not dst.exists()


@needs_qemu_img
def test_convert_check_failure_removes_the_copy(tmp_path, monkeypatch):
    image, _ = qcow2_image(tmp_path)
    dst = tmp_path / "vm.img"
    real_run = disk_copy._qemu_img

    def corrupt_then_compare(argv, *args, **kwargs):
        if "compare" in argv:
            write_at(argv[-1], 200 * MIB, b"bit rot")  # the copy being checked, still under its temporary name
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(disk_copy, "_qemu_img", corrupt_then_compare)
    with pytest.raises(disk_copy.VerifyError, match=r"differs from .*mismatch at offset"):
        disk_copy.convert(image, "qcow2", str(dst), "raw")
    assert not dst.exists()


@needs_qemu_img
@needs_loop
def test_convert_onto_block_device_punches_holes_and_zeroes_the_rest(tmp_path):
    image, ref = qcow2_image(tmp_path, size=64 * MIB, chunks={0: b"boot", 40 * MIB: os.urandom(MIB)})
    backing = tmp_path / "lv"
    with open(backing, "wb") as fh:
        fh.write(os.urandom(80 * MIB))  # an old LV's contents, all of it allocated
    with loop_device(backing) as dev:
        with pytest.raises(disk_copy.CopyError, match="holds raw data, not qcow2"):
            disk_copy.convert(image, "qcow2", dev, "qcow2")
        got = disk_copy.convert(image, "qcow2", dev, "raw")
        assert got["verified"] and got["copied"] is None
        with open(dev, "rb") as fh:
            assert fh.read(4) == b"boot"
            fh.seek(64 * MIB)
            assert fh.read(16 * MIB) == bytes(16 * MIB)  # past the disk: old data gone too
    assert disk_image.allocated(str(backing)) < 8 * MIB  # holes punched, not zeros written
    assert subprocess.run(["cmp", "-n", str(64 * MIB), ref, str(backing)], check=False).returncode == 0


@needs_qemu_img
@needs_loop
def test_convert_refuses_a_block_device_smaller_than_the_virtual_size(tmp_path):
    image, _ = qcow2_image(tmp_path, size=64 * MIB)
    backing = tmp_path / "small"
    disk_image.create(str(backing), 32 * MIB)
    with loop_device(backing) as dev, pytest.raises(disk_copy.CopyError, match="is smaller than"):
        disk_copy.convert(image, "qcow2", dev, "raw")


@needs_qemu_img
def test_convert_of_an_image_in_use_reads_it_without_its_lock(tmp_path):
    """A crash-consistent clone: a qemu process holds the image's write lock, qemu-img -U still reads it."""
    image, ref = qcow2_image(tmp_path, size=64 * MIB, chunks={0: b"boot", 10 * MIB: b"data"})
    holder = subprocess.Popen(
        ["qemu-io", "-f", "qcow2", image], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)  # qemu-io has opened (and locked) the image
        if holder.poll() is not None:
            pytest.skip("qemu-io could not hold the image open")
        with pytest.raises(disk_copy.CopyError, match="lock"):
            disk_copy.convert(image, "qcow2", str(tmp_path / "locked.img"), "raw")
        assert not (tmp_path / "locked.img").exists()
        got = disk_copy.convert(image, "qcow2", str(tmp_path / "shared.img"), "raw", in_use=True)
        assert got["verified"]
    finally:
        holder.communicate(b"quit\n", timeout=10)
    assert subprocess.run(["cmp", ref, str(tmp_path / "shared.img")], check=False).returncode == 0


def test_a_chunk_that_reads_back_different_fails_the_copy_and_leaves_nothing(tmp_path, monkeypatch):
    """The copy into a new file is compared chunk by chunk as it is written; a difference stops it."""
    src = tmp_path / "src.img"
    disk_image.create(str(src), 64 * MIB)
    write_at(src, 8 * MIB, os.urandom(MIB))
    dst = tmp_path / "dst.img"
    real_read = disk_copy._read_into
    calls = []

    def rotten_read_back(fd, buf, count, pos):
        got = real_read(fd, buf, count, pos)
        calls.append(pos)
        if len(calls) == 4:  # the second chunk's read-back
            buf[0] ^= 0xFF
        return got

    monkeypatch.setattr(disk_copy, "_read_into", rotten_read_back)
    with pytest.raises(disk_copy.VerifyError, match="differs from its source"):
        disk_copy.copy(str(src), str(dst), reflink=False)
    assert not dst.exists() and os.listdir(tmp_path) == ["src.img"]


@needs_loop
def test_a_device_mapper_target_is_tagged_while_written_and_keeps_the_tag_when_the_copy_fails(tmp_path, monkeypatch):
    """An LV cannot be renamed into place: lvchange --addtag before the first byte, --deltag once verified."""
    src = tmp_path / "src.img"
    disk_image.create(str(src), 32 * MIB)
    write_at(src, MIB, os.urandom(MIB))
    backing = tmp_path / "lv"
    disk_image.create(str(backing), 32 * MIB)
    calls = []

    def run(argv):
        calls.append(argv[:3])
        return {"retcode": 0, "stdout": "", "stderr": ""}

    monkeypatch.setattr(disk_copy, "is_device_mapper", lambda path: True)  # the loop device stands in for an LV
    with loop_device(backing) as dev:
        got = disk_copy.copy(str(src), dev, run=run)
        assert got["verified"]
        lookup = ["lvs", "--noheadings", "-o"]  # whether it holds a killed copy of its own, to report it
        assert calls == [
            lookup,
            ["lvchange", "--addtag", disk_copy.PARTIAL_TAG],
            ["lvchange", "--deltag", disk_copy.PARTIAL_TAG],
        ]
        calls.clear()
        monkeypatch.setattr(disk_copy, "verify", lambda *a, **k: (_ for _ in ()).throw(disk_copy.VerifyError("rot")))
        with pytest.raises(disk_copy.VerifyError):
            disk_copy.copy(str(src), dev, run=run)
        assert calls == [lookup, ["lvchange", "--addtag", disk_copy.PARTIAL_TAG]]  # still marked unfinished
        assert not os.path.exists(disk_copy.journal_path(dev))  # an LV has its tag, no journal
