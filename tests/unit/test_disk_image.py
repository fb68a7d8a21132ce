"""Disk images: what an operator sees when making and growing them (real files)."""

import os
import shutil
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saltext_xen.disks import disk_image

TB2 = 2 * 1000**4  # the tutorial's "2TB" disk

needs_qemu_img = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img (Debian package qemu-utils) is not installed"
)


def test_two_terabyte_sparse_image_takes_kilobytes_and_milliseconds(tmp_path):
    path = str(tmp_path / "newvm-1.img")
    start = time.perf_counter()
    got = disk_image.create(path, TB2)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05
    assert got["size"] == TB2 == os.path.getsize(path)
    assert got["allocated"] < 1024 * 1024
    assert got["format"] == "raw" and got["kind"] == "file"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_full_allocation_really_allocates(tmp_path):
    path = str(tmp_path / "full.img")
    got = disk_image.create(path, 8 * 1024 * 1024, allocation="full")
    assert got["allocated"] >= 8 * 1024 * 1024


def test_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "vm.img"
    path.write_bytes(b"guest data")
    with pytest.raises(disk_image.AlreadyExists, match="already exists"):
        disk_image.create(str(path), TB2)
    assert path.read_bytes() == b"guest data"


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(disk_image.DiskError, match="does not exist"):
        disk_image.create(str(tmp_path / "nope" / "vm.img"), 1024)


def test_bad_format_and_allocation_are_named(tmp_path):
    with pytest.raises(disk_image.DiskError, match="vmdk"):
        disk_image.create(str(tmp_path / "a.img"), 1024, fmt="vmdk")
    with pytest.raises(disk_image.DiskError, match="thick"):
        disk_image.create(str(tmp_path / "a.img"), 1024, allocation="thick")
    assert not (tmp_path / "a.img").exists()


def test_grow_keeps_data_and_stays_sparse(tmp_path):
    path = str(tmp_path / "vm.img")
    disk_image.create(path, 1024 * 1024)
    with open(path, "r+b") as fh:
        fh.write(b"boot sector")
    assert disk_image.grow(path, TB2) == (1024 * 1024, TB2)
    assert os.path.getsize(path) == TB2
    assert disk_image.allocated(path) < 1024 * 1024
    with open(path, "rb") as fh:
        assert fh.read(11) == b"boot sector"


def test_grow_to_same_size_changes_nothing(tmp_path):
    path = str(tmp_path / "vm.img")
    disk_image.create(path, 4096)
    assert disk_image.grow(path, 4096) == (4096, 4096)


def test_shrink_is_refused_with_both_sizes(tmp_path):
    path = str(tmp_path / "vm.img")
    disk_image.create(path, 2 * 1024**3)
    with pytest.raises(disk_image.ShrinkRefused, match=r"refusing to shrink .* 2\.0 GiB to 1\.0 GiB"):
        disk_image.grow(path, 1024**3)
    assert os.path.getsize(path) == 2 * 1024**3


@needs_qemu_img
def test_qcow2_is_made_by_qemu_img_and_read_back(tmp_path):
    path = str(tmp_path / "vm.qcow2")
    got = disk_image.create(path, TB2, fmt="qcow2")
    assert got["format"] == "qcow2"
    assert got["size"] == TB2
    assert got["allocated"] < 4 * 1024 * 1024
    old, new = disk_image.grow(path, TB2 + 1024**3)
    assert (old, new) == (TB2, TB2 + 1024**3)
    with pytest.raises(disk_image.ShrinkRefused):
        disk_image.grow(path, 1024**3)


@needs_qemu_img
def test_qcow2_failure_leaves_no_file(tmp_path):
    path = tmp_path / "vm.qcow2"

    def failing(argv):
        path.write_bytes(b"half")  # as if qemu-img died half-way
        return {"retcode": 1, "stdout": "", "stderr": "no space left"}

    with pytest.raises(disk_image.DiskError, match="no space left"):
        disk_image.create(str(path), 1024**3, fmt="qcow2", run=failing)
    assert not path.exists()


def test_info_of_missing_path(tmp_path):
    assert disk_image.info(str(tmp_path / "x"))["exists"] is False


@pytest.mark.parametrize(
    "text,expected",
    [
        (10, 10 * 1024**2),
        ("2T", 2 * 1024**4),
        ("2TB", 2 * 1000**4),
        ("10GiB", 10 * 1024**3),
        ("512M", 512 * 1024**2),
        ("4096b", 4096),
        ("1.5G", int(1.5 * 1024**3)),
    ],
)
def test_sizes_read_like_operators_write_them(text, expected):
    assert disk_image.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["ten gigs", "-1G", "", None, True, "5Q"])
def test_bad_sizes_name_the_value(bad):
    with pytest.raises(ValueError, match="expected a size"):
        disk_image.parse_size(bad)


@given(st.integers(min_value=0, max_value=2**40), st.sampled_from(["b", "K", "M", "G", "T", "GiB"]))
def test_parse_size_integer_units(number, unit):
    assert disk_image.parse_size(f"{number}{unit}") == number * disk_image._UNITS[unit.lower()]


@needs_qemu_img
def test_qcow2_full_allocation_reserves_space(tmp_path):
    path = str(tmp_path / "full.qcow2")
    got = disk_image.create(path, 32 * 1024 * 1024, fmt="qcow2", allocation="full")
    assert got["format"] == "qcow2" and got["allocated"] >= 32 * 1024 * 1024
