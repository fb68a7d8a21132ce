"""Copy a guest disk without writing its holes: reflink first, then extent by extent.

Order of attempts for a new file target:

1. ``FICLONE`` (reflink): on XFS/btrfs the copy shares the source's blocks,
   constant time, no extra space.
2. Extent copy: walk the source's data extents with ``SEEK_DATA``/``SEEK_HOLE``
   and copy only them with ``os.copy_file_range`` (in-kernel; may itself share
   blocks), falling back to ``os.sendfile`` and then read/write. Holes stay
   holes; the target is sized with ``ftruncate``.

Block devices as source (an LV) have no hole map: they are read in chunks and
all-zero chunks are skipped, so a file target stays sparse. Block devices as
target (an LV) get holes by ``fallocate(PUNCH_HOLE)`` (thin LVs and loop
devices deallocate), else ``ZERO_RANGE``, else explicit zeros (a thick device is
fully allocated anyway), because an LV's old contents must not show through.

The copy is verified by comparing the bytes of both sides where either side
holds data (holes on both sides are equal by definition). Into a new file the
data extents are copied through user space in small chunks, each read back
and compared as it is written, so every byte is read once from each side;
otherwise (a reflink, a device on either side) both are compared afterwards. The source is only ever opened read-only.

A new file target is written whole or not at all (``core.protect``): the copy
goes to ``.NAME.saltext-xen-partial-PID`` in the target's directory, is
fsynced and verified there, and only then appears as NAME. A killed run
leaves only that temporary, which the next copy to NAME removes (and reports
under ``leftovers_removed``). A block device target cannot be renamed: an LV
carries the LV tag ``saltext-xen-partial`` from before the first byte is
written until the copy is verified; a :func:`copy` onto any other device (a
disk, a partition, a loop device) keeps a journal under
``protect.state_dir()/copies`` instead (a :func:`convert` does not),
written before the first byte and removed once the copy is verified. Either
way :func:`is_partial` recognises what a killed copy left, so the next clone
or move writes over it without ``force``. The journal names the device (its number,
size and, for a loop device, its backing file), the source (its inode, size
and modification time) and how the device's first and last MiB (where
signatures and partition tables live) looked before the copy: the device
counts as an unfinished copy only while every 4 KiB block there still holds
either what it held before or the source's bytes, so a device someone has
written to since is data again.

:func:`convert` changes the format on the way (qcow2 -> raw file or LV, raw ->
qcow2 file) with ``qemu-img convert``, which skips zero clusters and writes
zeros as holes (``fallocate``/``BLKZEROOUT``, never byte by byte), and checks
the result with ``qemu-img compare``.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

from saltext_xen.core import commands, protect
from saltext_xen.disks import disk_image

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
CHUNK = 16 * 1024 * 1024
CHECK_CHUNK = 256 * 1024  # copied and compared while it is still in the CPU cache
PARTIAL_TAG = "saltext-xen-partial"
JOURNAL_BLOCK = 4096
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF, errno.EPERM}

_libc = None


def _too_small(dst_path, dsize, src_path, size):
    return f"{dst_path} ({disk_image.human(dsize)}) is smaller than {src_path} ({disk_image.human(size)})"


class CopyError(disk_image.DiskError):
    """The copy failed; the partial target has been removed."""


class VerifyError(CopyError):
    """Target and source differ after the copy."""


def _fallocate(fd, mode, offset, length):
    global _libc  # noqa: PLW0603 - libc is loaded once, on first use, and kept for the process
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def data_extents(fd, size):
    """``(start, end)`` byte ranges holding data in the open file ``fd``, up to ``size``.

    Uses SEEK_DATA/SEEK_HOLE; where the filesystem or device has no hole map the
    whole range is one extent.
    """
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after pos
                return
            if exc.errno in _NOT_SUPPORTED:
                yield pos, size
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def _kind(path_or_stat):
    st = path_or_stat if isinstance(path_or_stat, os.stat_result) else os.stat(path_or_stat)
    if stat.S_ISBLK(st.st_mode):
        return "block"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def _size(fd):
    return os.lseek(fd, 0, os.SEEK_END)


class _Progress:
    """Calls ``callback(done, total)`` at most every ``interval`` seconds, and at the end."""

    def __init__(self, callback, total, interval=1.0):
        self.callback = callback
        self.total = total
        self.done = 0
        self.interval = interval
        self.last = 0.0

    def add(self, nbytes):
        self.done += nbytes
        now = time.monotonic()
        if self.callback and now - self.last >= self.interval:
            self.last = now
            self.callback(self.done, self.total)

    def finish(self):
        if self.callback:
            self.callback(self.done, self.total)


def _copy_range(src, dst, start, end, progress, state):
    """Copy bytes [start, end) from fd src to fd dst at the same offsets."""
    pos = start
    while pos < end:
        count = min(CHUNK, end - pos)
        done = 0
        if state["method"] == "copy_file_range":
            try:
                done = os.copy_file_range(src, dst, count, pos, pos)
            except OSError as exc:
                if exc.errno not in _NOT_SUPPORTED:
                    raise
                state["method"] = "sendfile"
        if not done and state["method"] == "sendfile":
            try:
                os.lseek(dst, pos, os.SEEK_SET)
                done = os.sendfile(dst, src, pos, count)
            except OSError as exc:
                if exc.errno not in _NOT_SUPPORTED:
                    raise
                state["method"] = "read/write"
        if not done:
            buf = os.pread(src, count, pos)
            if not buf:
                raise CopyError(f"the source ended early at byte {pos}")
            done = os.pwrite(dst, buf, pos)
        pos += done
        progress.add(done)


def _copy_skipping_zeros(src, dst, start, end, progress, dst_kind):
    """Read [start, end) in chunks; write non-zero chunks, turn zero chunks into holes."""
    zeros = bytes(CHUNK)
    pos = start
    while pos < end:
        count = min(CHUNK, end - pos)
        buf = os.pread(src, count, pos)
        if not buf:
            raise CopyError(f"the source ended early at byte {pos}")
        if buf == zeros[: len(buf)]:
            if dst_kind == "block":
                _make_hole(dst, pos, len(buf))
        else:
            os.pwrite(dst, buf, pos)
        pos += len(buf)
        progress.add(len(buf))


def _make_hole(fd, offset, length):
    """Make [offset, offset+length) of a block device read as zeros, deallocating if it can."""
    for mode in (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE):
        try:
            _fallocate(fd, mode, offset, length)
            return
        except OSError as exc:
            if exc.errno not in _NOT_SUPPORTED:
                raise
    zeros = bytes(min(CHUNK, length))
    pos, end = offset, offset + length
    while pos < end:
        pos += os.pwrite(fd, zeros[: min(len(zeros), end - pos)], pos)


def _holes(extents, size):
    pos = 0
    for start, end in extents:
        if start > pos:
            yield pos, start
        pos = end
    if pos < size:
        yield pos, size


def _read_into(fd, buf, count, pos):
    """Read ``count`` bytes at ``pos`` into the start of ``buf``; the number read."""
    return os.preadv(fd, [memoryview(buf)[:count]], pos)


def verify(src_path, dst_path, size=None, progress=None):
    """Raise :class:`VerifyError` naming the first differing byte range, else return bytes compared.

    Only ranges holding data on either side are read (the two extent maps are
    merged first); ranges that are holes on both sides are equal by
    definition, so a sparse 2 TB image verifies quickly. Each byte is read
    once into a reused buffer and compared with ``memcmp`` speed.
    """
    src = os.open(src_path, os.O_RDONLY)
    try:
        dst = os.open(dst_path, os.O_RDONLY)
        try:
            if size is None:
                size = _size(src)
            if _size(dst) < size:
                raise VerifyError(f"{dst_path} is smaller than {src_path}")
            ranges = _merge(list(data_extents(src, size)) + list(data_extents(dst, size)))
            prog = _Progress(progress, sum(e - s for s, e in ranges))
            buf_a, buf_b = bytearray(CHUNK), bytearray(CHUNK)
            compared = 0
            for start, end in ranges:
                pos = start
                while pos < end:
                    count = min(CHUNK, end - pos)
                    got_a = _read_into(src, buf_a, count, pos)
                    got_b = _read_into(dst, buf_b, count, pos)
                    same = buf_a == buf_b if count == CHUNK else buf_a[:count] == buf_b[:count]
                    if got_a != count or got_b != count or not same:
                        raise VerifyError(f"{dst_path} differs from {src_path} between bytes {pos} and {pos + count}")
                    pos += count
                    compared += count
                    prog.add(count)
            prog.finish()
            return compared
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _merge(ranges):
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [tuple(r) for r in out]


def is_device_mapper(path):
    """True when ``path`` is a device-mapper device (every LV is one; loop devices and disks are not)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISBLK(st.st_mode):
        return False
    return os.path.isdir(f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/dm")


def lv_tags(path, run=commands.run_local):
    """The LVM tags of the LV ``path``, or None when ``path`` is not an LV (or LVM cannot say)."""
    if not is_device_mapper(path):
        return None
    res = run(["lvs", "--noheadings", "-o", "lv_tags", path])
    if res.get("retcode"):
        return None
    return [tag for tag in (res.get("stdout") or "").strip().split(",") if tag]


def _mark_partial(path, run):
    """Tag the LV ``path`` as being written; False when it is no LV (a loop device, a disk)."""
    return is_device_mapper(path) and run(["lvchange", "--addtag", PARTIAL_TAG, path]).get("retcode") == 0


def _unmark_partial(path, run):
    res = run(["lvchange", "--deltag", PARTIAL_TAG, path])
    if res.get("retcode"):
        raise CopyError(
            f"{path} was copied and verified but its tag {PARTIAL_TAG} could not be removed: "
            f"{(res.get('stderr') or '').strip()}"
        )


def is_partial(path, run=commands.run_local):
    """True when a copy to ``path`` was started and has not finished (or was killed).

    A file is never partial under its own name: a copy killed on its way left
    only a temporary beside it (``.NAME.saltext-xen-partial-PID``), so a
    missing ``path`` with such a temporary is partial. An LV is partial while
    it carries the LV tag ``saltext-xen-partial``; another block device while
    its journal matches it (:func:`unfinished_copy`).
    """
    if os.path.lexists(path):
        if _kind(path) != "block":
            return False
        if is_device_mapper(path):
            return PARTIAL_TAG in (lv_tags(path, run) or [])
        return unfinished_copy(path) is not None
    return bool(protect.leftovers(path, include_running=True))


# ---------------------------------------------------------------- journals of copies onto devices


def journal_path(dev_path):
    """The journal of a copy onto the block device ``dev_path`` (named by its device number)."""
    rdev = os.stat(dev_path).st_rdev
    return os.path.join(protect.state_dir(), "copies", f"{os.major(rdev)}-{os.minor(rdev)}.json")


def _loop_backing(dev_path):
    """``"FILE@OFFSET"`` behind a loop device, None for any other device."""
    rdev = os.stat(dev_path).st_rdev
    where = f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/loop"
    try:
        with open(f"{where}/backing_file", encoding="utf-8") as fh, open(f"{where}/offset", encoding="ascii") as off:
            return f"{fh.read().strip()}@{off.read().strip()}"
    except OSError:
        return None


def _source_id(path):
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _ends(size):
    """``(start, end)`` of the first and the last MiB of a device of ``size`` bytes."""
    first = (0, min(size, protect.MIB))
    return [first] + ([(max(first[1], size - protect.MIB), size)] if size > first[1] else [])


def _digest(block):
    return hashlib.sha256(block).hexdigest()[:16]


def _digests(fd, start, end):
    return [_digest(os.pread(fd, JOURNAL_BLOCK, pos)) for pos in range(start, end, JOURNAL_BLOCK)]


def _journal_start(src_path, dst_path, dst_fd, dsize):
    """Write the journal of a copy onto the device ``dst_path``; its path, or None where it cannot be
    written (the copy then goes on unmarked, and what a killed run leaves counts as data)."""
    record = {
        "device": dst_path,
        "size": dsize,
        "backing": _loop_backing(dst_path),
        "source": os.path.abspath(src_path),
        "source_id": _source_id(src_path),
        "pid": os.getpid(),
        "before": [[start, end, _digests(dst_fd, start, end)] for start, end in _ends(dsize)],
    }
    path = journal_path(dst_path)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        protect.write_whole(path, json.dumps(record), overwrite=True)
    except (OSError, protect.WouldLoseData):
        return None
    return path


def _journal_end(path):
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        protect.clean_leftovers(os.path.dirname(path))


def unfinished_copy(dev_path):
    """The journal (a dict) of an unfinished copy that the block device ``dev_path`` still holds, or None.

    It holds one when its journal names this device (number, size, loop backing
    file), the source is unchanged, and each 4 KiB block of the device's first
    and last MiB holds either what it held before the copy or the source's bytes.
    """
    try:
        with open(journal_path(dev_path), encoding="utf-8") as fh:
            record = json.load(fh)
        dev = os.open(dev_path, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if _size(dev) != record.get("size") or _loop_backing(dev_path) != record.get("backing"):
            return None
        if _source_id(record["source"]) != record.get("source_id"):
            return None
        src = os.open(record["source"], os.O_RDONLY | os.O_CLOEXEC)
        try:
            return record if all(_unchanged_or_copied(dev, src, *end) for end in record["before"]) else None
        finally:
            os.close(src)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    finally:
        os.close(dev)


def _unchanged_or_copied(dev, src, start, end, before):
    for index, pos in enumerate(range(start, end, JOURNAL_BLOCK)):
        block = os.pread(dev, JOURNAL_BLOCK, pos)
        if index < len(before) and _digest(block) == before[index]:
            continue
        copied = os.pread(src, len(block), pos)
        if not copied or block[: len(copied)] != copied:
            return False
    return True


def _clean_leftovers(dst_path):
    """Remove what killed copies to ``dst_path`` left; the paths removed."""
    return protect.clean_leftovers(dst_path)["removed"]


def copy(src_path, dst_path, progress=None, check=True, reflink=True, run=commands.run_local):
    """Copy the disk ``src_path`` to ``dst_path`` without filling holes; return what was done.

    ``dst_path`` must not exist (a new file is made, mode of the source,
    written whole under a temporary name and renamed once verified), or be an
    existing block device at least as large as the source (an LV made for the
    purpose, tagged ``saltext-xen-partial`` while it is written; another
    device journalled, see the module's notes). The caller decides whether
    the device may be written over (:func:`is_partial`, ``protect``).
    ``progress(done_bytes, total_bytes)`` is called about once a second.
    Returns ``{"method", "size", "copied", "seconds", "verified",
    "leftovers_removed"}``, the last what killed copies to ``dst_path`` had
    left: the temporaries removed first, or the device itself when it held
    an unfinished copy, now written over.
    """
    started = time.monotonic()
    try:
        src_st = os.stat(src_path)
    except FileNotFoundError:
        raise CopyError(f"cannot copy {src_path}: it does not exist") from None
    src_kind = _kind(src_st)
    if src_kind == "other":
        raise CopyError(f"cannot copy {src_path}: it is neither a file nor a block device")
    dst_kind = _existing_kind(dst_path)
    if dst_kind == "block" and os.path.samefile(src_path, dst_path):
        raise CopyError(f"{src_path} and {dst_path} are the same device")
    if dst_kind == "block":
        cleaned = [dst_path] if is_partial(dst_path, run=run) else []  # written over: the killed copy's own bytes
    else:
        cleaned = _clean_leftovers(dst_path)
    src = os.open(src_path, os.O_RDONLY)
    try:
        size = _size(src)
        if dst_kind == "block":
            method, verified = _copy_to_block(src, src_path, src_kind, dst_path, size, progress, check, run)
        else:
            mode = stat.S_IMODE(src_st.st_mode) if src_kind == "file" else 0o600
            method, verified = _copy_to_file(src, src_path, src_kind, dst_path, size, mode, progress, check, reflink)
    finally:
        os.close(src)
    return dict(_result(method, size, started, verified), leftovers_removed=cleaned)


def _existing_kind(dst_path):
    """None when ``dst_path`` is free, ``"block"`` for a device; CopyError for anything else there."""
    if not os.path.lexists(dst_path):
        return None
    if _kind(dst_path) != "block":
        raise CopyError(f"{dst_path} already exists; it is not overwritten")
    return "block"


def _new_whole_file(dst_path, mode):
    """A :class:`protect.WholeFile` for ``dst_path``, its refusals as :class:`CopyError`."""
    try:
        return protect.WholeFile(dst_path, mode=mode)
    except protect.WouldLoseData as exc:
        raise CopyError(str(exc)) from None
    except OSError as exc:
        raise CopyError(f"cannot create {dst_path}: {exc.strerror}") from None


def _copy_to_file(src, src_path, src_kind, dst_path, size, mode, progress, check, reflink):
    out = _new_whole_file(dst_path, mode)
    check_fd = None
    try:
        if check and src_kind == "file":
            check_fd = os.open(out.path, os.O_RDONLY | os.O_CLOEXEC)
        method = _do_copy(src, out.file.fileno(), src_kind, "file", size, progress, reflink, check_fd)
        needs_verify = check and (check_fd is None or method[0] == "reflink")  # not compared while copied
        out.finish(verify=(lambda tmp: verify(src_path, tmp, size)) if needs_verify else None)
    except BaseException as exc:
        out.discard()
        _failed(exc, f"copying {src_path} to {dst_path}", removed=True)
        raise
    finally:
        if check_fd is not None:
            os.close(check_fd)
    return method, check


def _copy_to_block(src, src_path, src_kind, dst_path, size, progress, check, run):
    dst = os.open(dst_path, os.O_RDWR | os.O_EXCL)  # read too: the journal keeps how its ends looked
    try:
        dsize = _size(dst)
        if dsize < size:
            raise CopyError(_too_small(dst_path, dsize, src_path, size))
        tagged = _mark_partial(dst_path, run)
        journal = None if tagged else _journal_start(src_path, dst_path, dst, dsize)
        method = _do_copy(src, dst, src_kind, "block", size, progress, False)
        os.fsync(dst)
    except BaseException as exc:
        _failed(exc, f"copying {src_path} to {dst_path}")
        raise
    finally:
        os.close(dst)
    try:
        if check:
            verify(src_path, dst_path, size)
    except OSError as exc:
        _failed(exc, f"verifying {dst_path}")
        raise
    if tagged:
        _unmark_partial(dst_path, run)
    _journal_end(journal)
    return method, check


def _failed(exc, doing, removed=False):
    """On ``exc`` while ``doing`` (``"copying A to B"``): raise an OS error or a refusal as a
    :class:`CopyError` in words; the caller re-raises anything else."""
    if isinstance(exc, protect.WouldLoseData):
        raise CopyError(str(exc)) from None
    if isinstance(exc, OSError) and not isinstance(exc, CopyError):
        raise CopyError(
            f"{doing} failed: {exc.strerror or exc}" + ("; the partial copy was removed" if removed else "")
        ) from None


def _result(method, size, started, verified):
    name, copied = method
    return {
        "method": name,
        "size": size,
        "copied": copied,
        "seconds": round(time.monotonic() - started, 3),
        "verified": verified,
    }


def _do_copy(src, dst, src_kind, dst_kind, size, progress, reflink, check_fd=None):
    """Returns ``(method name, bytes moved)``.

    With ``check_fd`` (the new file target opened for reading) the extents of a
    file source are copied through user space and each chunk is read back and
    compared as it is written.
    """
    if reflink and src_kind == "file" and dst_kind == "file":
        try:
            fcntl.ioctl(dst, FICLONE, src)
            prog = _Progress(progress, size)
            prog.done = size  # all of it shared at once
            prog.finish()
            return "reflink", 0
        except OSError as exc:
            if exc.errno not in _NOT_SUPPORTED:
                raise
    if dst_kind == "file":
        os.ftruncate(dst, size)
    if src_kind == "block":
        prog = _Progress(progress, size)
        _copy_skipping_zeros(src, dst, 0, size, prog, dst_kind)
        prog.finish()
        return "read, zeros skipped", prog.done
    extents = list(data_extents(src, size))
    prog = _Progress(progress, sum(e - s for s, e in extents))
    if check_fd is not None:
        bufs = (bytearray(CHECK_CHUNK), bytearray(CHECK_CHUNK))
        for start, end in extents:
            _copy_range_checked(src, dst, check_fd, start, end, prog, bufs)
        prog.finish()
        return "extents (read/write)", prog.done
    state = {"method": "copy_file_range"}
    for start, end in extents:
        _copy_range(src, dst, start, end, prog, state)
    if dst_kind == "block":
        for start, end in _holes(extents, size):
            _make_hole(dst, start, end - start)
    prog.finish()
    return f"extents ({state['method']})", prog.done


def _copy_range_checked(src, dst, check_fd, start, end, progress, bufs):
    """Copy [start, end) in small chunks, reading each back from ``check_fd`` and comparing it with what was read.

    Each byte is read once from the source and once from the target; the
    chunks are small enough to stay in the CPU cache between write, read-back
    and comparison.
    """
    buf_a, buf_b = bufs
    pos = start
    while pos < end:
        count = min(CHECK_CHUNK, end - pos)
        got = _read_into(src, buf_a, count, pos)
        if not got:
            raise CopyError(f"the source ended early at byte {pos}")
        view = memoryview(buf_a)[:got]
        written = 0
        while written < got:
            written += os.pwrite(dst, view[written:], pos + written)
        back = _read_into(check_fd, buf_b, got, pos)
        same = buf_a == buf_b if got == CHECK_CHUNK else buf_a[:got] == buf_b[:got]
        if back != got or not same:
            raise VerifyError(f"the copy differs from its source between bytes {pos} and {pos + got}")
        pos += got
        progress.add(got)


_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def _dying_with_parent(argv):
    """``argv`` run so that it is killed with the process that started it (``setpriv --pdeathsig``),
    so that a killed run stops writing its temporary; ``argv`` itself where setpriv is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def _qemu_img(argv, what, progress=None, total=0):
    """Run ``qemu-img`` with ``-p``, feeding its percentages to ``progress(done, total)``.

    Run directly rather than through Salt's ``cmd.run_all``, because the
    progress of a copy that takes minutes has to be read while it runs.
    Returns the exit code; raises :class:`CopyError` when qemu-img cannot run.
    """
    prog = _Progress(progress, total)
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(_dying_with_parent(argv), stdout=subprocess.PIPE, stderr=err)
        except OSError as exc:
            raise CopyError(f"{what}: cannot run {argv[0]} ({exc.strerror}); it comes with qemu-utils") from None
        out = b""
        tail = b""
        try:
            while True:
                block = proc.stdout.read1(4096)
                if not block:
                    break
                out += block
                tail = (tail + block)[-64:]
                found = _PERCENT.findall(tail)
                if found:
                    done = int(total * float(found[-1]) / 100) if total else 0
                    if done > prog.done:
                        prog.add(done - prog.done)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    if code == 0:
        prog.done = total
        prog.finish()
    text = _PERCENT.sub(b"", out).decode(errors="replace").strip()
    return code, (message + "\n" + text).strip()


def _zero_tail(path, start):
    """Make everything of the block device ``path`` after ``start`` read as zeros (old data must not show)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        end = _size(fd)
        if end > start:
            _make_hole(fd, start, end - start)
        os.fsync(fd)
    finally:
        os.close(fd)


def convert(
    src_path,
    src_format,
    dst_path,
    dst_format,
    size=None,
    progress=None,
    check=True,
    in_use=False,
    run=commands.run_local,
):
    """Copy the disk ``src_path`` to ``dst_path`` changing its format, with ``qemu-img convert``.

    ``src_format``/``dst_format`` are ``raw`` or ``qcow2`` (an LV is raw). The
    target is a new file (written whole under a temporary name, renamed once
    checked; never an existing file) or an existing block device at least
    ``size`` bytes (the source's virtual size) large, tagged
    ``saltext-xen-partial`` while it is written; a device's bytes past the
    copy are zeroed so nothing old shows through. Zeros become holes: a new
    raw file stays sparse, a thin LV or loop device is deallocated. ``check``
    runs ``qemu-img compare``. ``progress(done_bytes, total_bytes)`` follows
    the copy and the comparison. ``in_use``: the source is open in a paused or
    running guest (a crash-consistent clone), so qemu-img reads it without
    taking its lock (``-U``). Returns the same dict as :func:`copy`.
    """
    started = time.monotonic()
    for fmt in (src_format, dst_format):
        if fmt not in ("raw", "qcow2"):
            raise CopyError(f"cannot convert to or from {fmt!r}: expected raw or qcow2")
    try:
        src_st = os.stat(src_path)
    except FileNotFoundError:
        raise CopyError(f"cannot convert {src_path}: it does not exist") from None
    if size is None:
        size = disk_image.info(src_path)["size"]
    dst_kind = _existing_kind(dst_path)
    if dst_kind == "block":
        if dst_format != "raw":
            raise CopyError(f"{dst_path} is a block device: it holds raw data, not {dst_format}")
        if os.path.samefile(src_path, dst_path):
            raise CopyError(f"{src_path} and {dst_path} are the same device")
        dsize = disk_image.info(dst_path)["size"]
        if dsize < size:
            raise CopyError(_too_small(dst_path, dsize, src_path, size))
    argv = ["qemu-img", "convert", "-p"] + (["-U"] if in_use else []) + ["-f", src_format, "-O", dst_format]
    how = (src_path, src_format, dst_format, size, progress, check, in_use)
    if dst_kind == "block":
        verified = _convert_to_block(argv, dst_path, how, run)
        copied = None
        cleaned = []
    else:
        cleaned = _clean_leftovers(dst_path)
        mode = stat.S_IMODE(src_st.st_mode) if _kind(src_st) == "file" else 0o600
        verified = _convert_to_file(argv, dst_path, mode, how)
        copied = disk_image.allocated(dst_path)
    result = _result((f"qemu-img convert ({src_format} -> {dst_format})", copied), size, started, verified)
    return dict(result, leftovers_removed=cleaned)


def _run_convert(argv, dst_path, how, then=None):
    """Run the conversion into ``dst_path``, ``then(dst_path)`` if given, and the check."""
    src_path, src_format, dst_format, size, progress, check, in_use = how
    code, message = _qemu_img(argv + [src_path, dst_path], f"converting {src_path}", progress, size)
    if code != 0:
        raise CopyError(f"qemu-img convert {src_path} -> {dst_path} failed: {message or f'exit code {code}'}")
    if then is not None:
        then(dst_path)
    if check:
        compare(src_path, src_format, dst_path, dst_format, progress=progress, size=size, in_use=in_use)
    return check


def _convert_to_file(argv, dst_path, mode, how):
    """Convert into a temporary beside ``dst_path``, check it there, then rename it into place."""
    src_path, _, dst_format, size = how[:4]
    out = _new_whole_file(dst_path, mode)
    try:
        if dst_format == "raw":
            os.ftruncate(out.file.fileno(), size)  # sparse and sized: qemu-img then writes only the data
            argv = argv + ["-n", "--target-is-zero"]
        out.file.close()
        verified = _run_convert(argv, out.path, how)
        os.chmod(out.path, mode)  # qemu-img may have made the qcow2 file anew
        out.finish()
    except BaseException as exc:
        out.discard()
        _failed(exc, f"converting {src_path} to {dst_path}", removed=True)
        raise
    return verified


def _convert_to_block(argv, dst_path, how, run):
    """Convert onto the existing device ``dst_path`` (tagged while written) and zero what lies past the copy."""
    src_path, size = how[0], how[3]
    try:
        tagged = _mark_partial(dst_path, run)
        # -n: the LV exists; zeros in the source become discards/zeroed ranges, not writes
        verified = _run_convert(argv + ["-n"], dst_path, how, then=lambda dev: _zero_tail(dev, size))
    except BaseException as exc:
        _failed(exc, f"converting {src_path} to {dst_path}")
        raise
    if tagged:
        _unmark_partial(dst_path, run)
    return verified


def compare(src_path, src_format, dst_path, dst_format, progress=None, size=None, in_use=False):
    """``qemu-img compare`` the two images (as the guest sees them); :class:`VerifyError` if they differ."""
    if size is None:
        size = disk_image.info(src_path)["size"]
    argv = (
        ["qemu-img", "compare", "-p"]
        + (["-U"] if in_use else [])
        + ["-f", src_format, "-F", dst_format, src_path, dst_path]
    )
    code, message = _qemu_img(argv, f"comparing {dst_path} with {src_path}", progress, size)
    if code == 1:
        where = message.splitlines()[-1] if message else "their contents differ"
        raise VerifyError(f"{dst_path} differs from {src_path}: {where}")
    if code != 0:
        raise CopyError(f"qemu-img compare {src_path} {dst_path} failed: {message or f'exit code {code}'}")
