"""Guest disk volumes, image files or LVs, made and removed with the pools over them refreshed.

An LV is the tutorial's ``lvcreate -n lv_for_newvm -L 10G vol0``, named by its
device path, ``/dev/VG/LV`` or ``/dev/mapper/VG-LV``. Commands run through a
``run(argv) -> {"retcode", "stdout", "stderr"}`` callable (Salt's
``cmd.run_all`` from the Salt layer).
"""

import os

from saltext_xen.core import commands
from saltext_xen.disks import disk_image, pools


def is_block_path(path):
    """Block devices and LVs live under ``/dev/``; everything else is an image file."""
    return str(path or "").startswith("/dev/")


def lv_names(path):
    """``/dev/vol0/lv`` or ``/dev/mapper/vol0-lv`` -> ("vol0", "lv")."""
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "dev" and parts[2] == "mapper":
        vg, _, lv = parts[3].replace("--", "\0").partition("-")
        return vg.replace("\0", "-"), lv.replace("\0", "-")
    if len(parts) == 4 and parts[1] == "dev":
        return parts[2], parts[3]
    raise disk_image.DiskError(f"{path} does not name an LV (expected /dev/VG/LV or /dev/mapper/VG-LV)")


def _output(res):
    return (res.get("stderr") or res.get("stdout") or "").strip()


def create_lv(path, size, run=commands.run_local):
    """Create the LV ``path`` of ``size`` bytes; it must not exist yet."""
    vg, lv = lv_names(path)
    # --yes: wipe signatures an earlier LV left where the new one is (its data must not show through)
    res = run(["lvcreate", "-n", lv, vg, "-L", f"{size}b", "--yes"])
    if not os.path.exists(path):
        raise disk_image.DiskError(f"lvcreate did not make {path}: {_output(res)}")


def extend_lv(path, size, run=commands.run_local):
    """Grow the LV ``path`` to ``size`` bytes; returns (old, new) sizes. Shrinking is refused."""
    cur = disk_image.info(path)["size"]
    if size < cur:
        raise disk_image.DiskError(
            f"refusing to shrink {path} from {disk_image.human(cur)} to {disk_image.human(size)}"
        )
    out = ""
    if size > cur:
        out = _output(run(["lvextend", "--yes", "-L", f"{size}b", path]))
    new = disk_image.info(path)["size"]
    if new < size:
        raise disk_image.DiskError(f"cannot grow {path} to {disk_image.human(size)} (is it an LV?): {out}")
    return cur, new


def remove_lv(path, run=commands.run_local):
    """Remove the LV ``path`` (its data is gone)."""
    vg, lv = lv_names(path)
    res = run(["lvremove", f"{vg}/{lv}", "--yes"])
    if res.get("retcode"):
        raise disk_image.DiskError(f"cannot remove {path}: {_output(res)}")


def create(conn, path, size, fmt="raw", allocation="sparse", run=commands.run_local):
    """Create image file or LV ``path`` of ``size`` bytes, never over an existing one; returns its info."""
    if is_block_path(path):
        if os.path.exists(path):
            raise disk_image.DiskError(f"{path} already exists; it is not overwritten")
        create_lv(path, size, run=run)
        made = disk_image.info(path)
    else:
        made = disk_image.create(path, size, fmt=fmt, allocation=allocation, run=run)
    pools.refresh_over(conn, path)
    return made


def remove(conn, path, run=commands.run_local):
    """Delete image file or LV ``path``."""
    if disk_image.info(path)["kind"] == "block":
        remove_lv(path, run=run)
    else:
        os.unlink(path)
    pools.refresh_over(conn, path)


def validate(path, size, fmt="raw", allocation="sparse"):
    """``(size_bytes, problems)`` for an image file or LV ``path`` wanted at least ``size`` big."""
    problems = []
    wanted = None
    try:
        wanted = disk_image.parse_size(size)
    except ValueError as exc:
        problems.append(f"size: {exc}")
    if fmt not in disk_image.FORMATS:
        problems.append(f"format: expected one of {', '.join(disk_image.FORMATS)}, got {fmt!r}")
    if allocation not in disk_image.ALLOCATIONS:
        problems.append(f"allocation: expected sparse or full, got {allocation!r}")
    if not str(path).startswith("/"):
        problems.append(f"name: expected an absolute path, got {path!r}")
    if is_block_path(path) and fmt != "raw":
        problems.append(f"format: an LV holds raw data, got {fmt!r}")
    return wanted, problems


def present_changes(path, have, size, fmt="raw"):
    """What makes ``have`` (:func:`disk_image.info`) an image of at least ``size`` bytes: ``{key: {old, new}}``.

    A missing one is created, a smaller one grown, a bigger one left alone; one
    of another format raises DiskError (it is never converted or replaced).
    """
    if not have["exists"]:
        return {"size": {"old": None, "new": size}, "format": {"old": None, "new": fmt}}
    if have["format"] != fmt:
        raise disk_image.DiskError(f"{path} exists as {have['format']}, not {fmt}; it is not converted or replaced")
    return {} if have["size"] >= size else {"size": {"old": have["size"], "new": size}}
