"""Data protection: what counts as data, when writing over it is refused, whole-file writes.

The rules, for users, are in ``docs/safety.md``:

- a file or block device *holds data* when ``wipefs``/``blkid -p`` find a
  signature on it (a filesystem, partition table, LVM or RAID member...) or
  when any byte of its first or last MiB is not zero;
- a path a defined guest uses as a disk is never written over, ``force`` or
  not (the caller reads the disks in use from libvirt; this module does not);
- a path that holds data is written over only when the call says
  ``force: true``;
- whole files are written under a temporary name in the target's directory,
  ``.NAME.saltext-xen-partial-<pid>``, flushed and fsynced, checked, then
  renamed into place; a killed run leaves only the temporary, never a
  half-written NAME, and :func:`clean_leftovers` removes temporaries whose
  process is gone;
- what must outlive a killed run (the journal of a copy onto a block device)
  is kept under :func:`state_dir`.
"""

import contextlib
import errno
import os
import re
import stat

from saltext_xen.core import commands, validate
from saltext_xen.core.errors import XenError

MIB = 1024 * 1024
PARTIAL = ".saltext-xen-partial-"
STATE_DIR = "/var/lib/saltext-xen"
STATE_DIR_ENV = "SALTEXT_XEN_STATE_DIR"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)" + re.escape(PARTIAL) + r"(?P<pid>\d+)(?:-(?P<n>\d+))?$")
_CLAIM_TRIES = 100


class WouldLoseData(XenError):
    """Refused: going on would write over data, or over a disk a guest uses."""


class VerifyFailed(XenError):
    """A whole-file write was checked before being put in place and was wrong."""


def absolute(path, key=""):
    """``path`` normalised, or :class:`validate.InvalidSpec` (named by ``key``) if it is not absolute.

    Relative paths, ``..`` components, NUL and other control characters are refused.
    """
    return validate.check(path, validate.absolute_path, key)


# ---------------------------------------------------------------- what holds data


def signatures(path, run=commands.run_local):
    """Signature names on ``path`` (``["ext4"]``, ``["gpt", "PMBR"]``), or None if no tool could tell.

    ``wipefs --no-act`` lists every signature; ``blkid -p`` is asked when
    wipefs is missing or fails.
    """
    res = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", path])
    if res.get("retcode") == 0:
        return [line.strip() for line in (res.get("stdout") or "").splitlines() if line.strip()]
    res = run(["blkid", "-p", "-o", "export", path])
    if res.get("retcode") == 2:  # blkid: nothing recognised
        return []
    if res.get("retcode") == 0:
        found = dict(line.split("=", 1) for line in (res.get("stdout") or "").splitlines() if "=" in line)
        return [found[k] for k in ("PTTYPE", "TYPE") if k in found] or ["unnamed"]
    return None


def _nonzero(fd, start, end, sparse):
    """True if any byte in ``[start, end)`` is not zero; holes of sparse files are skipped."""
    pos = start
    while pos < end:
        if sparse:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole from here to the end of the file
                    return False
                sparse = False
                continue
            if pos >= end:
                return False
            stop = min(end, os.lseek(fd, pos, os.SEEK_HOLE))
        else:
            stop = end
        while pos < stop:
            chunk = os.pread(fd, min(stop - pos, MIB), pos)
            if not chunk:
                return False
            if chunk.count(0) != len(chunk):
                return True
            pos += len(chunk)
    return False


def nonzero_region(path):
    """``"first MiB"``/``"last MiB"`` when that region of ``path`` has a non-zero byte, else None."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sparse = stat.S_ISREG(os.fstat(fd).st_mode) and hasattr(os, "SEEK_DATA")
        size = os.lseek(fd, 0, os.SEEK_END)
        if _nonzero(fd, 0, min(size, MIB), sparse):
            return "first MiB"
        if size > MIB and _nonzero(fd, max(MIB, size - MIB), size, sparse):
            return "last MiB"
        return None
    finally:
        os.close(fd)


def holds_data(path, run=commands.run_local):
    """Why ``path`` holds data (``"ext4 signature"``, ``"non-zero bytes in its first MiB"``), or None.

    None too when nothing is at ``path``. Directories and other kinds of file
    are refused with :class:`WouldLoseData`: they are never written over.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise WouldLoseData(f"{path} is neither a regular file nor a block device")
    found = signatures(path, run=run)
    if found:
        return f"{', '.join(found)} signature{'s' if len(found) > 1 else ''}"
    region = nonzero_region(path)
    if region:
        return f"non-zero bytes in its {region}"
    return None


# ---------------------------------------------------------------- in use by a guest


def _identity(path):
    """What makes two paths the same disk: the device number, the inode, or the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    if stat.S_ISBLK(st.st_mode):
        return ("block", st.st_rdev)
    return ("file", st.st_dev, st.st_ino)


def used_by(path, in_use):
    """Guests using ``path`` as a disk, sorted; ``[]`` when none.

    ``in_use`` is ``{disk path: guest name or names}`` as the caller read it
    from libvirt, or a plain collection of paths (then the answer is
    ``["a defined guest"]``). Symlinks, ``/dev/mapper`` aliases and hard links
    of the same disk count as the same path.
    """
    if not in_use:
        return []
    wanted = _identity(path)
    users = set()
    items = in_use.items() if isinstance(in_use, dict) else ((p, None) for p in in_use)
    for disk, guests in items:
        if disk and _identity(disk) == wanted:
            if guests is None:
                users.add("a defined guest")
            elif isinstance(guests, str):
                users.add(guests)
            else:
                users.update(guests)
    return sorted(users)


def _judge(path, in_use, force, run):
    """``(refusal or None, what data is there or None)`` for writing over ``path``."""
    path = absolute(path)
    users = used_by(path, in_use)
    if users:
        refusal = (
            f"{path} is a disk of {', '.join(users)}; detach it or undefine the guest first "
            "(force does not write over a disk a guest uses)"
        )
        return refusal, None
    reason = holds_data(path, run=run)
    if reason and not force:
        return f"{path} holds data ({reason}); say force: true to write over it", reason
    return None, reason


def overwrite_problem(path, in_use=(), force=False, run=commands.run_local):
    """Why writing over ``path`` is refused, in plain words, or None when it may go on.

    A disk a defined guest uses is refused even with ``force``; a path that
    holds data is refused unless ``force`` is true; a missing path is fine.
    """
    return _judge(path, in_use, force, run)[0]


def refuse_overwrite(path, in_use=(), force=False, run=commands.run_local):
    """Raise :class:`WouldLoseData` when :func:`overwrite_problem` refuses; else what data is there.

    The return value (``"ext4 signature"`` when forced over data, else None)
    lets a forced call say what it wrote over.
    """
    refusal, reason = _judge(path, in_use, force, run)
    if refusal:
        raise WouldLoseData(refusal)
    return reason


# ---------------------------------------------------------------- whole-file writes


def partial_name(target, pid=None, n=0):
    """The temporary name of a whole-file write of ``target`` by process ``pid``."""
    directory, base = os.path.split(target)
    suffix = f"-{n}" if n else ""
    return os.path.join(directory, f".{base}{PARTIAL}{pid or os.getpid()}{suffix}")


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WholeFile:
    """A whole-file write in progress: write to ``file`` (or let a tool write to ``path``).

    ``target`` is the final name, ``path`` the temporary one. Made by
    :func:`whole_file`; nothing is at ``target`` until the write is finished.
    """

    def __init__(self, target, overwrite=False, mode=None, text=False):
        self.target = absolute(target)
        self.directory = os.path.dirname(self.target) or "/"
        self.overwrite = overwrite
        if not os.path.isdir(self.directory):
            raise WouldLoseData(f"cannot write {self.target}: directory {self.directory} does not exist")
        if os.path.lexists(self.target):
            if not overwrite:
                raise WouldLoseData(f"{self.target} already exists and this write does not replace it")
            if not os.path.isfile(self.target):
                raise WouldLoseData(f"{self.target} is not a regular file; it is not replaced")
            if mode is None:
                mode = stat.S_IMODE(os.stat(self.target).st_mode)
        self.mode = 0o600 if mode is None else mode
        fd = self._claim()
        try:
            os.fchmod(fd, self.mode)
            self.file = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(self.path)
            raise

    def _claim(self):
        for n in range(_CLAIM_TRIES):
            self.path = partial_name(self.target, n=n)
            try:
                return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
        raise WouldLoseData(f"cannot write {self.target}: {_CLAIM_TRIES} temporaries of this process are in the way")

    def write(self, data):
        return self.file.write(data)

    def finish(self, verify=None):
        """Flush and fsync, run ``verify(path)``, rename into place, fsync the directory."""
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        else:
            _fsync_path(self.path)  # a tool wrote to self.path on its own
        if verify is not None and verify(self.path) is False:
            raise VerifyFailed(f"{self.target}: the new content did not pass its check; nothing was replaced")
        if self.overwrite:
            os.replace(self.path, self.target)
        else:
            self._publish_new()
        _fsync_dir(self.directory)

    def _publish_new(self):
        """Put the file in place only if the target is still absent (a hard link cannot replace)."""
        try:
            os.link(self.path, self.target)
        except FileExistsError as exc:
            raise WouldLoseData(f"{self.target} appeared while it was being written; it is not replaced") from exc
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            if os.path.lexists(self.target):  # a filesystem without hard links: check, then rename
                raise WouldLoseData(f"{self.target} appeared while it was being written; it is not replaced") from exc
            os.rename(self.path, self.target)
            return
        os.unlink(self.path)

    def discard(self):
        """Close and remove the temporary; the target is left as it was."""
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@contextlib.contextmanager
def whole_file(target, overwrite=False, mode=None, text=False, verify=None):
    """Write ``target`` whole or not at all::

        with protect.whole_file("/etc/xen/vm02", overwrite=True, text=True) as out:
            out.write(config)

    Inside the block write to ``out`` (or have a tool write to ``out.path``,
    after ``out.file.close()``). On leaving it the data is flushed and fsynced,
    ``verify(temporary path)`` runs if given (returning False or raising stops
    the write), the temporary is renamed to ``target`` and the directory is
    fsynced. On any error the temporary is removed and ``target`` is as it was.
    Without ``overwrite`` an existing ``target`` is refused; with it, its mode
    is kept unless ``mode`` is given (a new file gets 0600).
    """
    out = WholeFile(target, overwrite=overwrite, mode=mode, text=text)
    try:
        yield out
        out.finish(verify=verify)
    except BaseException:
        out.discard()
        raise


def write_whole(target, data, overwrite=False, mode=None, verify=None):
    """Write ``data`` (bytes or str) to ``target`` as :func:`whole_file` does."""
    with whole_file(target, overwrite=overwrite, mode=mode, text=isinstance(data, str), verify=verify) as out:
        out.write(data)


# ---------------------------------------------------------------- leftovers of killed runs


def state_dir():
    """Where this extension keeps what must outlive a run: ``$SALTEXT_XEN_STATE_DIR``, else ``/var/lib/saltext-xen``."""
    return os.environ.get(STATE_DIR_ENV) or STATE_DIR


def running(pid):
    """True while process ``pid`` exists on this host and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(where, include_running=False):
    """Temporaries of whole-file writes in a directory, or of one target file.

    Each is ``{"path", "target", "pid", "size", "running"}``; those whose
    process still runs (a write in progress) are left out unless
    ``include_running``.
    """
    where = absolute(where)
    if os.path.isdir(where):
        directory, only = where, None
    else:
        directory, only = os.path.split(where)
    found = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if not match or (only is not None and match.group("name") != only):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            size = entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
        pid = int(match.group("pid"))
        alive = running(pid)
        if alive and not include_running:
            continue
        found.append(
            {
                "path": entry.path,
                "target": os.path.join(directory, match.group("name")),
                "pid": pid,
                "size": size,
                "running": alive,
            }
        )
    return found


def clean_leftovers(where):
    """Remove temporaries whose process is gone: ``{"removed": [paths], "kept": [{"path", "reason"}]}``."""
    report = {"removed": [], "kept": []}
    for item in leftovers(where, include_running=True):
        if item["running"]:
            report["kept"].append(
                {"path": item["path"], "reason": f"process {item['pid']} still runs; its write may be in progress"}
            )
            continue
        try:
            os.unlink(item["path"])
        except FileNotFoundError:
            continue
        except OSError as exc:
            report["kept"].append({"path": item["path"], "reason": f"could not remove it: {exc.strerror}"})
            continue
        report["removed"].append(item["path"])
    return report
