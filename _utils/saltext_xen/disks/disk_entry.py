"""A whole ``xen:disks`` entry checked before any of its states runs.

The formula turns one entry into several states (present, partitioned,
formatted, attached, moved) that run one after the other; a mistake in a later
part (a partition starting after its end, an unknown filesystem, a guest that
is not defined) must stop the entry before the first state makes the image.
:func:`problems` reads nothing but the names of the defined guests it is
given, so it answers the same with ``test=True`` and without.
"""

from saltext_xen.core import validate
from saltext_xen.disks import disk_image, disk_parts, filesystems, volumes

KNOWN = (
    "path",
    "ensure",
    "size",
    "format",
    "allocation",
    "label",
    "partitions",
    "force",
    "filesystems",
    "attach",
    "move",
    "delete",
)
ENSURES = ("present", "absent")
WHOLE = (0, "0", "disk", "whole")
FS_KEYS = ("fs_type", "label", "force")
ATTACH_KEYS = ("guest", "target", "format", "readonly", "live")
MOVE_KEYS = ("guest", "disk", "shutdown", "remove_source", "force", "timeout", "format")


def _guest(value, where, problems, guests):
    name = validate.guest_name(value, where, problems)
    if name is not None and guests is not None and name not in {str(g) for g in guests}:
        problems.add(where, f"no guest {name} is defined on this host")


def _partitions(entry, base, problems):
    """The number of wanted partitions (None: no table is asked for)."""
    if entry.get("partitions") is None and not entry.get("label"):
        return None
    parts = entry.get("partitions")
    _, wanted, found = disk_parts.validate(
        entry.get("label", "gpt"), parts if parts is not None else [{"start": 0, "end": -1}], path=f"{base}:partitions"
    )
    problems.extend(f"{base}:{p}" if p.startswith("label:") else p for p in found)
    return len(wanted)


def _filesystems(entry, base, problems, count):
    fss = validate.mapping(
        entry.get("filesystems"),
        f"{base}:filesystems",
        problems,
        "a mapping of partition numbers (or whole) to filesystems",
    )
    for part, given in (fss or {}).items():
        where = f"{base}:filesystems:{part}"
        fs = given if isinstance(given, dict) else {"fs_type": given}
        validate.unknown_keys(fs, FS_KEYS, where, problems)
        if fs.get("fs_type", "ext4") not in filesystems.FILESYSTEMS:
            problems.expected(f"{where}:fs_type", "one of " + ", ".join(filesystems.FILESYSTEMS), fs.get("fs_type"))
        if "force" in fs:
            validate.boolean(fs["force"], f"{where}:force", problems)
        if part in WHOLE:
            continue
        number = validate.integer(part, where, problems, minimum=1, what="a partition number (or whole)")
        if number is not None and count is not None and number > count:
            problems.add(where, f"the entry makes {count} partition{'s' if count != 1 else ''}, not {number}")
        if number is not None and count is None:
            problems.add(where, "a partition of a disk without label or partitions in this entry")


def _attach(entry, base, problems, guests):
    attach = entry.get("attach")
    if attach is None:
        return
    if not isinstance(attach, (dict, str)):
        problems.expected(f"{base}:attach", "a guest name or a mapping like {guest: newvm, target: xvdb}", attach)
        return
    attach = attach if isinstance(attach, dict) else {"guest": attach}
    validate.unknown_keys(attach, ATTACH_KEYS, f"{base}:attach", problems)
    _guest(attach.get("guest"), f"{base}:attach:guest", problems, guests)
    for key in ("readonly", "live"):
        if key in attach:
            validate.boolean(attach[key], f"{base}:attach:{key}", problems)


def _move(entry, base, path, problems, guests):
    move = validate.mapping(entry.get("move"), f"{base}:move", problems, "a mapping like {guest: newvm, disk: xvda}")
    if not move:
        return
    validate.unknown_keys(move, MOVE_KEYS, f"{base}:move", problems)
    _guest(move.get("guest"), f"{base}:move:guest", problems, guests)
    fmt = move.get("format")
    if fmt is not None and fmt not in disk_image.FORMATS:
        problems.expected(f"{base}:move:format", "raw or qcow2", fmt)
    elif fmt == "qcow2" and volumes.is_block_path(path):
        problems.add(f"{base}:move:format", f"{path} is a block device (LV): it holds raw data, not qcow2")
    for key in ("shutdown", "remove_source", "force"):
        if key in move:
            validate.boolean(move[key], f"{base}:move:{key}", problems)
    if "timeout" in move:
        validate.integer(move["timeout"], f"{base}:move:timeout", problems, minimum=1)


def problems(key, entry, guests=None):
    """Every problem with the ``xen:disks`` entry ``key``, each named by its key path; ``[]`` when none.

    ``guests``: the names of the guests defined on this host or by this run
    (pillar ``xen:guests``, ``xen:clones``), for ``attach`` and ``move`` (None: not checked).
    """
    base = f"xen:disks:{key}"
    found = validate.Problems()
    entry = validate.mapping(entry, base, found, "a mapping of settings (path, size, ...)")
    if entry is None:
        return list(found)
    if "absent" in entry:
        found.add(f"{base}:absent", "no longer a key; say ensure: absent")
    validate.unknown_keys({k: v for k, v in entry.items() if k != "absent"}, KNOWN, base, found)
    path = validate.absolute_path(entry.get("path"), f"{base}:path", found, "an absolute path of an image or LV")
    ensure = validate.choice(entry.get("ensure", "present"), f"{base}:ensure", found, ENSURES)
    for flag in ("force", "delete"):
        if flag in entry:
            validate.boolean(entry[flag], f"{base}:{flag}", found)
    if ensure == "absent":
        return list(found)
    if entry.get("size") is not None:
        validate.size_bytes(entry["size"], f"{base}:size", found)
        fmt = validate.choice(entry.get("format", "raw"), f"{base}:format", found, disk_image.FORMATS)
        validate.choice(entry.get("allocation", "sparse"), f"{base}:allocation", found, disk_image.ALLOCATIONS)
        if fmt == "qcow2" and path and volumes.is_block_path(path):
            found.add(f"{base}:format", f"{path} is an LV: it holds raw data, not qcow2")
    count = _partitions(entry, base, found)
    _filesystems(entry, base, found, count)
    _attach(entry, base, found, guests)
    _move(entry, base, path or "", found, guests)
    return list(found)
