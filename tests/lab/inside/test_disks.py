"""xen_disk on real Xen: the tutorial's 2 TB sparse disk, partitioned GPT and formatted,
attached live to a running PV guest and detached; a running guest's disk grown; a guest
cloned with a new UUID and MACs that keep the source's vendor prefix. (File <-> LV moves
are the project's own needs_dm tests, run in this lab too.)
"""

import os
import subprocess

import pytest
from labhelpers import landed, pv_xml, remove_guest, wait_console, wait_for
from salt.exceptions import CommandExecutionError

NAME = "labdisk1"
TB = 1024**4


@pytest.fixture(scope="module")
def running_guest(conn, caller, tmp_path_factory):
    landed(caller, "xen_disk")
    root = tmp_path_factory.mktemp("disks")
    boot = root / "boot.img"
    with open(boot, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    remove_guest(conn, NAME)
    disk = f"""<disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{boot}'/>
      <target dev='xvda' bus='xen'/>
    </disk>"""
    conn.defineXML(pv_xml(NAME, devices=disk))
    caller.cmd("xen_guest.start", NAME)
    wait_console(NAME)
    yield NAME, root
    remove_guest(conn, NAME)


def block_targets(name):
    """Virtual devices of the guest as Xen's backend lists them (``xl block-list``)."""
    out = subprocess.run(["xl", "block-list", name], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]


def test_sparse_2tb_image_costs_nothing(caller, running_guest):
    """xen_disk.create makes a 2 TB raw image at once, sparse: no real space used."""
    _, root = running_guest
    path = str(root / "newvm-1.img")
    caller.cmd("xen_disk.create", path, "2T")
    st = os.stat(path)
    assert st.st_size == 2 * TB
    assert st.st_blocks * 512 < 16 * 1024 * 1024
    info = caller.cmd("xen_disk.info", path)
    assert info, info


def test_gpt_and_mkfs_on_the_2tb_image(caller, running_guest):
    """xen_disk.partition writes a GPT with one partition; xen_disk.format_ puts XFS on it."""
    _, root = running_guest
    path = str(root / "newvm-1.img")
    changes = caller.cmd("xen_disk.partition", path, label="gpt")
    assert changes, changes
    assert caller.cmd("xen_disk.partition", path, label="gpt") == {}  # second time: nothing to do
    parts = caller.cmd("xen_disk.partitions", path)
    assert parts, parts
    caller.cmd("xen_disk.format", path, fs_type="xfs", partition=1)
    fs = caller.cmd("xen_disk.filesystem", path, partition=1)
    assert "xfs" in str(fs), fs
    assert os.stat(path).st_blocks * 512 < 2 * 1024**3  # still sparse: only metadata and the 1 GiB XFS log written


def test_attach_live_and_detach(caller, running_guest):
    """the 2 TB disk is attached to the running guest as xvdb, live and in its definition
    (Xen's backend has it), then detached the same way."""
    name, root = running_guest
    path = str(root / "newvm-1.img")
    before = block_targets(name)
    got = caller.cmd("xen_disk.attach", name, path, target="xvdb")
    assert got["xvdb"]["applied"] == ["config", "live"], got
    after = block_targets(name)
    assert len(after) == len(before) + 1, (before, after)
    assert any(d["target"] == "xvdb" for d in caller.cmd("xen_guest.info", name)["disks"])
    got = caller.cmd("xen_disk.detach", name, "xvdb")
    assert got["xvdb"]["applied"] == ["config", "live"], got
    wait_for(lambda: len(block_targets(name)) == len(before), timeout=60, what="xvdb to leave Xen's backend")
    assert not any(d["target"] == "xvdb" for d in caller.cmd("xen_guest.info", name)["disks"])


def test_grow_the_disk_of_a_running_guest(caller, running_guest):
    """grow makes the running guest's image bigger and says whether the guest saw it live."""
    name, root = running_guest
    got = caller.cmd("xen_disk.grow", str(root / "boot.img"), "64M")
    assert got["new"] == 64 * 1024 * 1024, got
    assert name in got["live"], got  # either "resized live" or when the guest will see it
    with pytest.raises(CommandExecutionError, match="shrink"):
        caller.cmd("xen_disk.grow", str(root / "boot.img"), "16M")


def test_clone_a_shut_off_guest(caller, conn, running_guest):
    """clone copies a shut-off guest: new name, new UUID, its disk copied, MACs with the
    source's first three octets."""
    _, root = running_guest
    source, copy = "labdisk-src", "labdisk-src-clone"
    disk = root / f"{source}.img"  # the clone's copy is named after it: labdisk-src-clone.img
    with open(disk, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    for name in (source, copy):
        remove_guest(conn, name)
    devices = f"""<disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{disk}'/><target dev='xvda' bus='xen'/></disk>
      <interface type='bridge'><mac address='00:16:36:88:76:d4'/><source bridge='xenbr0'/></interface>"""
    src = conn.defineXML(pv_xml(source, devices=devices))
    try:
        got = caller.cmd("xen_guest.clone", source, copy)
        assert got["macs"][0].startswith("00:16:36:") and got["macs"][0] != "00:16:36:88:76:d4", got
        clone_disk = got["disks"]["xvda"]
        assert os.path.exists(clone_disk) and clone_disk != str(disk)
        assert conn.lookupByName(copy).UUIDString() != src.UUIDString()
    finally:
        for name in (source, copy):
            remove_guest(conn, name)
