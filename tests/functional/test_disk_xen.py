"""Disks on real Xen (lab tier, marker needs_xen): live attach/detach, growing and cloning a PV guest.

Runs inside the lab's dom0 (tests/lab/run), where xen:///system, the lab's guest
kernel and busybox initrd exist; skipped anywhere else with the reason.
"""
import os
import time
import uuid

import pytest

from saltext_xen import connection, disk_image
from tests.functional.conftest import XEN_URI
from tests.functional.disk_helpers import MIB

GUEST_KERNEL = "/var/lib/lab/guest-vmlinuz"
GUEST_INITRD = "/var/lib/lab/guest-initrd.gz"

pytestmark = [
    pytest.mark.needs_xen,
    pytest.mark.skipif(
        not (os.path.exists("/proc/xen/capabilities") and os.path.exists(GUEST_INITRD)),
        reason="needs a Xen dom0 with the lab's guest kernel and initrd (tests/lab/run)",
    ),
]


@pytest.fixture
def modules(xen_loaders):
    """The execution modules, pointed at the real hypervisor instead of the test driver."""
    return xen_loaders.modules


def pv_guest(name, disk, nic=False):
    """A PV guest; with ``nic`` an interface on xenbr0 (only defined then, never started: the bridge may be absent)."""
    iface = ("<interface type='bridge'><mac address='00:16:36:88:76:d4'/><source bridge='xenbr0'/></interface>"
             if nic else "")
    return f"""<domain type='xen'>
  <name>{name}</name>
  <uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>{GUEST_KERNEL}</kernel>
    <initrd>{GUEST_INITRD}</initrd>
    <cmdline>console=hvc0 quiet</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='xvda' bus='xen'/>
    </disk>
    {iface}
    <console type='pty'><target type='xen' port='0'/></console>
  </devices>
</domain>"""


@pytest.fixture
def guest(tmp_path):
    """A defined PV guest 'lab-disk' with a 64 MiB sparse xvda in tmp_path; removed afterwards."""
    conn = connection.connect(XEN_URI)
    disk = str(tmp_path / "lab-disk.img")
    disk_image.create(disk, 64 * MIB)
    names = ["lab-disk", "lab-disk-clone"]
    dom = conn.defineXML(pv_guest("lab-disk", disk))
    yield dom, disk
    for name in names:
        try:
            other = conn.lookupByName(name)
        except Exception:  # pylint: disable=broad-except
            continue
        if other.isActive():
            other.destroy()
        other.undefine()


def live_targets(dom):
    from saltext_xen import domain_xml  # pylint: disable=import-outside-toplevel

    return {d["target"]: d["source"] for d in domain_xml.parse(dom.XMLDesc(0))["disks"]}


def test_live_attach_and_detach_on_running_guest(modules, guest, tmp_path):
    dom, _ = guest
    dom.create()
    img = str(tmp_path / "newvm-1.img")
    modules.xen_disk.create(img, "2TB")
    got = modules.xen_disk.attach("lab-disk", img, target="xvdb")
    assert got["xvdb"]["applied"] == ["config", "live"], got
    assert live_targets(dom)["xvdb"] == img
    got = modules.xen_disk.detach("lab-disk", "xvdb")
    assert got["xvdb"]["applied"] == ["config", "live"], got
    for _ in range(30):
        if "xvdb" not in live_targets(dom):
            break
        time.sleep(1)
    assert "xvdb" not in live_targets(dom)


def test_grow_tells_running_guest_or_says_when(modules, guest, tmp_path):
    dom, disk = guest
    dom.create()
    got = modules.xen_disk.grow(disk, "128M")
    assert got["new"] == 128 * MIB
    assert "lab-disk" in got["live"]  # either "resized live" or when it will see it


def test_clone_on_real_xen(modules, guest, tmp_path):
    old, _ = guest
    old.undefine()
    disk = str(tmp_path / "lab-disk.img")
    dom = connection.connect(XEN_URI).defineXML(pv_guest("lab-disk", disk, nic=True))
    got = modules.xen_guest.clone("lab-disk", "lab-disk-clone")
    assert got["macs"][0].startswith("00:16:36:")
    clone_disk = got["disks"]["xvda"]
    assert os.path.exists(clone_disk) and clone_disk != disk
    conn = connection.connect(XEN_URI)
    assert conn.lookupByName("lab-disk-clone").UUIDString() != dom.UUIDString()
