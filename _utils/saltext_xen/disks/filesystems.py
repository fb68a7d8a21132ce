"""Filesystems on a device: which one is there, and making one (the tutorial's ``mkfs.ext3``).

Commands run through a ``run(argv) -> {"retcode", "stdout", "stderr"}``
callable (Salt's ``cmd.run_all`` from the Salt layer).
"""

import os
import time

from saltext_xen.core import commands
from saltext_xen.disks.disk_image import DiskError

FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs")


def fstype(dev, run=commands.run_local):
    """The filesystem type on ``dev``, probed afresh, or None.

    ``blkid -p`` rather than blkid's cache, which keys on device names: loop
    devices are reused for other images all the time.
    """
    res = run(["blkid", "-p", "-s", "TYPE", "-o", "value", dev])
    if res.get("retcode"):
        return None
    return (res.get("stdout") or "").strip() or None


def wait_for(path, seconds=5.0):
    """True once ``path`` exists: partition nodes of a fresh loop device appear shortly after it."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.path.exists(path)


def mkfs_argv(dev, fs_type, label=None):
    """The command making a ``fs_type`` filesystem on ``dev`` (over whatever is there)."""
    if fs_type not in FILESYSTEMS:
        raise DiskError(f"fs_type: expected one of {', '.join(FILESYSTEMS)}, got '{fs_type}'")
    named = ["-L", label] if label else []
    if fs_type == "xfs":
        return ["mkfs.xfs", "-f", dev] + named
    return ["mke2fs", "-F", "-t", fs_type] + named + [dev]


def make(dev, fs_type, label=None, run=commands.run_local, what=None):
    """Make a ``fs_type`` filesystem on ``dev``; returns the type found there afterwards."""
    res = run(mkfs_argv(dev, fs_type, label))
    if res.get("retcode"):
        raise DiskError(f"mkfs {fs_type} on {what or dev} failed: {(res.get('stderr') or '').strip()}")
    return fstype(dev, run)
