"""GPT labels, partitions and filesystems on images, through loop devices and Salt's parted/extfs."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("parted") or not os.path.exists("/dev/loop-control"),
    reason="needs root, parted and loop devices",
)


def loops_of(path):
    out = subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True, check=False).stdout
    return out.strip()


def test_tutorial_gpt_on_two_terabyte_image(modules, tmp_path):
    img = str(tmp_path / "newvm-1.img")
    modules.xen_disk.create(img, "2TB")
    parts = [{"start": 0, "end": 100}, {"start": 100, "end": 200}, {"start": 200, "end": -1}]
    got = modules.xen_disk.partition(img, "gpt", parts)
    assert got == {img: {"old": "no partition table", "new": "gpt with 3 partitions"}}
    listing = modules.xen_disk.partitions(img)
    assert listing["info"]["partition table"] == "gpt"
    last = listing["partitions"]["3"]
    assert int(last["end"].rstrip("B")) > 1.99e12  # beyond what MBR could address
    assert loops_of(img) == ""  # loop device detached
    # second run: nothing to do
    assert modules.xen_disk.partition(img, "gpt", parts) == {}
    assert os.stat(img).st_blocks * 512 < 4 * 1024 * 1024


def test_different_table_is_not_replaced_without_force(modules, tmp_path):
    img = str(tmp_path / "d.img")
    modules.xen_disk.create(img, 300)
    modules.xen_disk.partition(img, "gpt", [{"start": 0, "end": -1}])
    with pytest.raises(Exception, match="already has gpt with 1 partition; not repartitioning it without force=True"):
        modules.xen_disk.partition(img, "gpt", [{"start": 0, "end": 100}, {"start": 100, "end": -1}])
    assert len(modules.xen_disk.partitions(img)["partitions"]) == 1
    got = modules.xen_disk.partition(img, "gpt", [{"start": 0, "end": 100}, {"start": 100, "end": -1}], force=True)
    assert got[img]["new"] == "gpt with 2 partitions"
    assert loops_of(img) == ""


def test_bad_partition_entries_are_all_named(modules, tmp_path):
    img = str(tmp_path / "d.img")
    modules.xen_disk.create(img, 300)
    with pytest.raises(Exception) as err:
        modules.xen_disk.partition(img, "bsd", [{"start": "lots", "end": -5}, {"size": 3}])
    text = str(err.value)
    assert "label: expected one of gpt, msdos" in text
    assert "partitions:0:start" in text and "partitions:0:end" in text and "partitions:1:size" in text


def test_format_partition_ext3_then_nothing_to_do(modules, tmp_path):
    img = str(tmp_path / "newvm-1.img")
    modules.xen_disk.create(img, 300)
    modules.xen_disk.partition(img, "gpt", [{"start": 0, "end": 100}, {"start": 100, "end": -1}])
    got = modules.xen_disk.format(img, "ext3", partition=1)
    assert got == {f"{img}:1": {"old": None, "new": "ext3"}}
    assert modules.xen_disk.format(img, "ext3", partition=1) == {}
    with pytest.raises(Exception, match="already holds ext3; not formatting it without force=True"):
        modules.xen_disk.format(img, "ext4", partition=1)
    assert modules.xen_disk.format(img, "ext4", partition=1, force=True)[f"{img}:1"]["new"] == "ext4"
    assert loops_of(img) == ""


def test_filesystem_on_whole_disk_blocks_partitioning(modules, tmp_path):
    img = str(tmp_path / "whole.img")
    modules.xen_disk.create(img, 100)
    modules.xen_disk.format(img, "ext4")
    with pytest.raises(Exception, match="filesystem on the whole disk"):
        modules.xen_disk.partition(img, "gpt")


@pytest.mark.skipif(not shutil.which("mkfs.xfs"), reason="mkfs.xfs (xfsprogs) is not installed")
def test_format_xfs(modules, tmp_path):
    img = str(tmp_path / "x.img")
    modules.xen_disk.create(img, 400)
    assert modules.xen_disk.format(img, "xfs")[img]["new"] == "xfs"


def test_missing_partition_is_named(modules, tmp_path):
    img = str(tmp_path / "d.img")
    modules.xen_disk.create(img, 100)
    with pytest.raises(Exception, match="has no partition 2"):
        modules.xen_disk.format(img, "ext4", partition=2)
    assert loops_of(img) == ""


def test_data_without_a_signature_is_not_written_over_without_force(modules, tmp_path):
    """Non-zero bytes in the first MiB count as data (protect.holds_data), with no filesystem to name."""
    img = str(tmp_path / "d.img")
    modules.xen_disk.create(img, 300)
    with open(img, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"someone's data")
    with pytest.raises(Exception, match=rf"{img} holds data \(non-zero bytes in its first MiB\); say force: true"):
        modules.xen_disk.format(img, "ext4")
    with pytest.raises(Exception, match=rf"{img} holds data \(non-zero bytes in its first MiB\); say force: true"):
        modules.xen_disk.partition(img, "gpt", [{"start": 0, "end": -1}])
    assert modules.xen_disk.format(img, "ext4", force=True) == {img: {"old": None, "new": "ext4"}}


def test_a_disk_of_a_defined_guest_is_never_written_over(modules, test_uri, tmp_path):
    from tests.functional.disk_helpers import define_guest

    _, root = define_guest(test_uri, tmp_path)  # shut off, only defined
    for call in (
        lambda: modules.xen_disk.format(root, "ext4", force=True),
        lambda: modules.xen_disk.partition(root, "gpt", [{"start": 0, "end": -1}], force=True),
    ):
        with pytest.raises(Exception, match=rf"{root} is a disk of newvm; detach it or undefine the guest first"):
            call()
    with open(root, "rb") as fh:
        assert fh.read(15) == b"root filesystem"


def test_formatted_state_says_the_same_refusal_under_test(states, tmp_path):
    img = str(tmp_path / "d.img")
    with open(img, "wb") as fh:
        fh.write(b"\x01" * 4096)
    os.truncate(img, 64 * 1024 * 1024)
    for test in (True, False):
        ret = dict(states.xen_disk.formatted(img, fs_type="ext4", test=test).full_return)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"] == f"{img} holds data (non-zero bytes in its first MiB); say force: true to write over it"
    bad = dict(states.xen_disk.partitioned(img, partitions=[{"start": 200, "end": 100}], test=True).full_return)
    assert bad["result"] is False and bad["comment"] == "partitions:0: start 200 is after end 100"
    rel = dict(states.xen_disk.formatted("d.img", fs_type="zfs", test=True).full_return)
    assert (
        rel["result"] is False and "name: expected an absolute path" in rel["comment"] and "fs_type" in rel["comment"]
    )


def test_formatted_and_partitioned_states_refuse_a_guests_disk_even_with_force(states, test_uri, tmp_path):
    from tests.functional.disk_helpers import define_guest

    _, root = define_guest(test_uri, tmp_path)
    for test in (True, False):
        fmt = dict(states.xen_disk.formatted(root, fs_type="ext4", force=True, test=test).full_return)
        part = dict(states.xen_disk.partitioned(root, force=True, test=test).full_return)
        for ret in (fmt, part):
            assert ret["result"] is False and ret["changes"] == {}
            assert ret["comment"].startswith(f"{root} is a disk of newvm; detach it or undefine the guest first")
