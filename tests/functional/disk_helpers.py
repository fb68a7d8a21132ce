"""Helpers for the disk and clone functional tests: guests whose disks are real files."""

import contextlib
import os
import select
import shutil
import signal
import subprocess

import pytest

from saltext_xen.core import connection
from saltext_xen.disks import disk_image

MIB = 1024 * 1024

GUEST = """
<domain type="xen">
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit="MiB">512</memory>
  <currentMemory unit="MiB">512</currentMemory>
  <vcpu>2</vcpu>
  <bootloader>/usr/bin/pygrub</bootloader>
  <os><type arch="x86_64" machine="xenpv">linux</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>restart</on_crash>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="{disk}"/>
      <target dev="xvda" bus="xen"/>
    </disk>
    <interface type="bridge">
      <mac address="00:16:36:88:76:d4"/>
      <source bridge="xenbr0"/>
      <script path="vif-bridge"/>
    </interface>
  </devices>
</domain>
"""


def define_guest(uri, tmp_path, name="newvm", running=False, size=64 * MIB, data=b"root filesystem"):
    """Define ``name`` on the test driver with a real sparse ``xvda`` image in tmp_path."""
    disk = str(tmp_path / f"{name}.img")
    disk_image.create(disk, size)
    with open(disk, "r+b") as fh:
        fh.write(data)
        fh.seek(size // 2)
        fh.write(data)
    conn = connection.connect(uri)
    dom = conn.defineXML(GUEST.format(name=name, uuid="2aa1fae5-8550-affd-866f-27a9d6977d16", disk=disk))
    if running:
        dom.create()
    return dom, disk


def disk_sources(uri, name, live=False):
    import libvirt

    from saltext_xen.guests import domain_xml

    dom = connection.connect(uri).lookupByName(name)
    flags = 0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE
    return {d["target"]: d["source"] for d in domain_xml.parse(dom.XMLDesc(flags))["disks"]}


@contextlib.contextmanager
def loop_device(backing):
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


HAS_DM = os.path.exists("/dev/mapper/control") and shutil.which("lvcreate")


@contextlib.contextmanager
def scratch_vg(tmp_path, prefix, size=512 * MIB):
    """A throw-away volume group on a loop device over a sparse file; skips without device-mapper."""
    if not HAS_DM:
        pytest.skip("LVM needs device-mapper, which this kernel lacks (no /dev/mapper/control)")
    backing = tmp_path / "pv.img"
    disk_image.create(str(backing), size)
    vg = f"{prefix}{os.getpid()}"
    with loop_device(backing) as dev:
        subprocess.run(["pvcreate", "-q", "-y", dev], check=True, capture_output=True)
        subprocess.run(["vgcreate", "-q", vg, dev], check=True, capture_output=True)
        try:
            yield vg
        finally:
            subprocess.run(["vgremove", "-q", "-f", vg], check=False, capture_output=True)
            subprocess.run(["pvremove", "-q", "-y", dev], check=False, capture_output=True)


def kill_once_copying(proc, timeout):
    """Wait until the child ``proc`` prints "copying", then ``kill -9`` it (no cleanup runs in it)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    proc.kill()
    proc.wait()
    err = proc.stderr.read()
    assert line.strip() == "copying", f"the child did not reach its copy: {line!r} {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
