"""Disk images and block devices: sizes, formats, create and grow.

Creating a sparse raw image is one ``ftruncate`` (what the tutorial's
``dd if=/dev/zero of=newvm-1.img bs=512k count=1 seek=4000000`` did, without
writing the 512 KiB): a 2 TB image takes kilobytes and milliseconds. A fully
allocated image uses ``posix_fallocate``; qcow2 images are made by
``qemu-img create``. Nothing here overwrites an existing file or shrinks one.

Commands run through a ``run(argv) -> {"retcode", "stdout", "stderr"}`` callable
so the Salt layer can pass ``cmd.run_all``; the default runs them directly.
"""

import contextlib
import os
import stat
import struct

from saltext_xen.core import commands, validate
from saltext_xen.core.errors import XenError

FORMATS = ("raw", "qcow2")
ALLOCATIONS = ("sparse", "full")
QCOW2_MAGIC = b"QFI\xfb"
MIB = 1024 * 1024

# the units of the size grammar, for messages and tests (validate.SIZE_UNITS is the reference)
_UNITS = {
    "": MIB,  # a bare number is MiB, as the guest spec's "size"
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": MIB,
    "mb": 1000**2,
    "mib": MIB,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


class DiskError(XenError):
    """A disk or image operation could not be done; the message says why."""


class ShrinkRefused(DiskError):
    """Asked for a size below the current one: data would be lost."""


class AlreadyExists(DiskError):
    """The target file or volume is already there and will not be overwritten."""


def _check(run, argv, what):
    res = run(argv)
    if res.get("retcode"):
        msg = (res.get("stderr") or res.get("stdout") or "").strip()
        raise DiskError(f"{what} failed: {msg or 'exit code ' + str(res.get('retcode'))}")
    return res


def parse_size(value):
    """Bytes from ``value`` in the one size grammar (``validate.to_bytes``): a bare number is MiB,
    ``2T``/``2TiB`` binary (2 * 1024**4), ``2TB`` decimal (2 * 1000**4). ValueError naming the value."""
    return validate.to_bytes(value)


def size_of(value):
    """:func:`parse_size`, a wrong value raising DiskError."""
    try:
        return parse_size(value)
    except ValueError as exc:
        raise DiskError(str(exc)) from None


def human(nbytes):
    """``2.0 TiB``-style text for messages."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"  # pragma: no cover


def _qcow2_virtual_size(path):
    with open(path, "rb") as fh:
        head = fh.read(32)
    if len(head) < 32 or head[:4] != QCOW2_MAGIC:
        return None
    return struct.unpack(">Q", head[24:32])[0]


def info(path):
    """What is at ``path``: ``{"path", "exists", "kind", "format", "size", "allocated"}``.

    ``kind`` is ``file`` or ``block``; ``size`` is the virtual size the guest
    sees (qcow2 header, or the file/device length); ``allocated`` the bytes
    really used on the host (files only; None for block devices).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"path": path, "exists": False, "kind": None, "format": None, "size": None, "allocated": None}
    if stat.S_ISBLK(st.st_mode):
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return {"path": path, "exists": True, "kind": "block", "format": "raw", "size": size, "allocated": None}
    if not stat.S_ISREG(st.st_mode):
        raise DiskError(f"{path} is neither a regular file nor a block device")
    vsize = _qcow2_virtual_size(path)
    return {
        "path": path,
        "exists": True,
        "kind": "file",
        "format": "qcow2" if vsize is not None else "raw",
        "size": vsize if vsize is not None else st.st_size,
        "allocated": st.st_blocks * 512,
    }


def allocated(path):
    """Bytes a file really occupies on the host (``du``, not ``ls -l``)."""
    return os.stat(path).st_blocks * 512


def create(path, size, fmt="raw", allocation="sparse", mode=0o600, run=commands.run_local):
    """Create a new image of ``size`` bytes; refuses to touch an existing path.

    raw + sparse: ``ftruncate`` (constant time and space); raw + full:
    ``posix_fallocate``; qcow2: ``qemu-img create`` (``preallocation=falloc``
    when full). A half-made file is removed on any failure.
    """
    if fmt not in FORMATS:
        raise DiskError(f"unknown image format '{fmt}' (expected one of {', '.join(FORMATS)})")
    if allocation not in ALLOCATIONS:
        raise DiskError(f"unknown allocation '{allocation}' (expected sparse or full)")
    if size <= 0:
        raise DiskError(f"cannot create {path} with size {size}: the size must be positive")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DiskError(f"cannot create {path}: the directory {parent} does not exist")
    if os.path.lexists(path):
        raise AlreadyExists(f"{path} already exists; it is not overwritten")
    if fmt == "qcow2":
        argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
        if allocation == "full":
            argv += ["-o", "preallocation=falloc"]
        argv += [path, str(size)]
        try:
            _check(run, argv, f"creating {path} with qemu-img")
            os.chmod(path, mode)
        except BaseException:
            _remove_quietly(path)
            raise
        return info(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise AlreadyExists(f"{path} already exists; it is not overwritten") from None
    try:
        try:
            if allocation == "full":
                os.posix_fallocate(fd, 0, size)
            else:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)
    except OSError as exc:
        _remove_quietly(path)
        raise DiskError(f"cannot create {path} ({human(size)}): {exc.strerror}") from None
    except BaseException:
        _remove_quietly(path)
        raise
    return info(path)


def grow(path, size, allocation="sparse", run=commands.run_local):
    """Grow the image at ``path`` to ``size`` bytes; returns ``(old_size, new_size)``.

    Equal size is a no-op; a smaller size raises :class:`ShrinkRefused`. Block
    devices are not grown here (LVs go through LVM in the Salt layer).
    """
    cur = info(path)
    if not cur["exists"]:
        raise DiskError(f"cannot grow {path}: it does not exist")
    old = cur["size"]
    if size < old:
        raise ShrinkRefused(
            f"refusing to shrink {path} from {human(old)} to {human(size)}: data beyond the new end would be lost"
        )
    if size == old:
        return old, old
    if cur["kind"] == "block":
        raise DiskError(f"{path} is a block device; grow it with its volume manager")
    if cur["format"] == "qcow2":
        argv = ["qemu-img", "resize", "-q"]
        if allocation == "full":
            argv.append("--preallocation=falloc")
        _check(run, argv + ["-f", "qcow2", path, str(size)], f"growing {path} with qemu-img")
        return old, info(path)["size"]
    fd = os.open(path, os.O_WRONLY)
    try:
        if allocation == "full":
            os.posix_fallocate(fd, old, size - old)
        else:
            os.ftruncate(fd, size)
    except OSError as exc:
        raise DiskError(f"cannot grow {path} to {human(size)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return old, size


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def signature(path, run=commands.run_local):
    """What ``blkid -p`` finds on ``path`` (a filesystem or partition-table type), or None.

    Probed afresh, never from blkid's cache. Used to refuse writing over a device
    that already holds data unless the caller forces it.
    """
    res = run(["blkid", "-p", "-o", "export", path])
    if res.get("retcode"):
        return None  # 2: nothing found
    found = dict(line.split("=", 1) for line in (res.get("stdout") or "").splitlines() if "=" in line)
    kind = found.get("TYPE") or found.get("PTTYPE")
    if kind and found.get("PTTYPE") and not found.get("TYPE"):
        return f"a {kind} partition table"
    return kind
