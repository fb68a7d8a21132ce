"""xen_disk on real Xen: the tutorial's 2 TB sparse disk, attached live to a running PV guest,
partitioned GPT and formatted, then detached. (File -> LV moves, grow and clone are the
project's own needs_dm / needs_xen tests, run in this lab too.)
"""
import os
import subprocess

import pytest

from labhelpers import landed, pv_xml, remove_guest, wait_console

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
    """the 2 TB disk is attached to the running guest as xvdb (Xen's backend has it), then detached."""
    name, root = running_guest
    path = str(root / "newvm-1.img")
    before = block_targets(name)
    caller.cmd("xen_disk.attach", name, path, target="xvdb")
    after = block_targets(name)
    assert len(after) == len(before) + 1, (before, after)
    assert any(d["target"] == "xvdb" for d in caller.cmd("xen_guest.info", name)["disks"])
    caller.cmd("xen_disk.detach", name, "xvdb")
    assert len(block_targets(name)) == len(before)
    assert not any(d["target"] == "xvdb" for d in caller.cmd("xen_guest.info", name)["disks"])
