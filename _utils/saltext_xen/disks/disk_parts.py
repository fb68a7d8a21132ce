"""Partition tables and filesystems on guest disks, seen from dom0.

An image file is reached through a loop device (``losetup --find --show
--partscan``), always detached afterwards; a block device is used as it is.
parted itself is reached through :class:`Parted`, three callables the caller
hands in (Salt's ``partition`` module from the Salt layer); commands such as
``losetup`` and ``blkid`` through a ``run(argv)`` callable.

Wanted partitions are written as the tutorial's parted commands were::

    mkpart primary 0 100      ->  {"start": 0, "end": 100}     (MB, parted's default unit)
    mkpart primary 0 -1       ->  {"start": 0, "end": -1}      (-1: to the end of the disk)
    also "2TB", "512MiB", "100%" as start/end
"""

import collections
import contextlib
import os
import re
import stat

from saltext_xen.core import commands, protect
from saltext_xen.core.errors import XenError
from saltext_xen.disks import filesystems
from saltext_xen.disks.disk_image import DiskError

LABELS = ("gpt", "msdos")
FILESYSTEMS = filesystems.FILESYSTEMS
_BOUND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|B|kB|MB|MiB|GB|GiB|TB|TiB|%)?\s*$", re.ASCII)
_UNIT = {
    "B": 1,
    "kB": 1000,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
    "TB": 1000**4,
    "TiB": 1024**4,
    "s": 512,
}
END = "100%"


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def attached(path, run=commands.run_local):
    """Yield a block device for ``path``: itself, or a loop device detached on exit."""
    if is_block_device(path):
        yield path
        return
    if not os.path.isfile(path):
        raise DiskError(f"{path} is neither an image file nor a block device")
    res = run(["losetup", "--find", "--show", "--partscan", path])
    dev = (res.get("stdout") or "").strip()
    if res.get("retcode") or not dev:
        raise DiskError(f"cannot attach {path} to a loop device: {(res.get('stderr') or '').strip()}")
    try:
        # Kernels without a GPT parser (CONFIG_EFI_PARTITION) ignore --partscan for GPT;
        # partx reads the table in user space. Harmless (EBUSY) where the kernel already did.
        run(["partx", "--add", dev])
        yield dev
    finally:
        run(["losetup", "--detach", dev])


def partition_device(dev, number):
    """``/dev/loop0`` + 1 -> ``/dev/loop0p1``; ``/dev/sda`` + 1 -> ``/dev/sda1``."""
    sep = "p" if dev[-1].isdigit() else ""
    return f"{dev}{sep}{number}"


def normalise_bound(value, path, problems, is_end=False):
    """A parted boundary string from pillar data (numbers are MB); ``-1`` as end means "the rest"."""
    if isinstance(value, bool) or value is None:
        problems.append(f"{path}: expected a number of MB or a size like 2TB, got {value!r}")
        return None
    text = str(value).strip()
    if is_end and text in ("-1", "rest", "end"):
        return END
    if isinstance(value, (int, float)) and value < 0:
        problems.append(f"{path}: only -1 (to the end of the disk) may be negative, got {value}")
        return None
    if not _BOUND.match(text):
        problems.append(f"{path}: expected a number of MB or a size like 100MiB, 2TB or 100%, got {value!r}")
        return None
    return text


def validate(label, partitions, path="partitions"):
    """``(label, [{"start", "end"}], problems)``: the wanted table, every problem with its key path."""
    problems = []
    if label not in LABELS:
        problems.append(f"label: expected one of {', '.join(LABELS)}, got {label!r}")
    wanted = []
    if not isinstance(partitions, list):
        problems.append(f"{path}: expected a list of {{start, end}} entries")
        partitions = []
    for i, part in enumerate(partitions):
        where = f"{path}:{i}"
        if not isinstance(part, dict):
            problems.append(f"{where}: expected a mapping with start and end")
            continue
        unknown = set(part) - {"start", "end", "type"}
        for key in sorted(unknown):
            problems.append(f"{where}:{key}: unknown key (expected start, end, type)")
        start = normalise_bound(part.get("start", 0), f"{where}:start", problems)
        end = normalise_bound(part.get("end", -1), f"{where}:end", problems, is_end=True)
        ptype = part.get("type", "primary")
        if ptype not in ("primary", "logical", "extended"):
            problems.append(f"{where}:type: expected primary, logical or extended, got {ptype!r}")
        if (
            start
            and end
            and END not in (start, end)
            and "%" not in start + end
            and to_bytes(start, 0)[0] > to_bytes(end, 0)[0]
        ):
            problems.append(f"{where}: start {start} is after end {end}")
        wanted.append({"start": start, "end": end, "type": ptype})
    return label, wanted, problems


def to_bytes(bound, disk_size):
    """Byte offset of a normalised boundary on a disk of ``disk_size`` bytes, and parted's fuzz."""
    match = _BOUND.match(bound)
    number, unit = float(match.group(1)), match.group(2) or "MB"
    if unit == "%":
        return int(disk_size * number / 100), max(disk_size // 100, 1024**2)
    scale = _UNIT[unit]
    # parted accepts anything within half a unit, then aligns to 1 MiB at most
    return int(number * scale), max(scale, 1024**2) + 64 * 1024


def matches(listing, label, wanted):
    """True when parted's listing (``partition.list DEV unit=B``) is the wanted table."""
    info = listing.get("info") or {}
    if info.get("partition table") != label:
        return False
    parts = listing.get("partitions") or {}
    if len(parts) != len(wanted):
        return False
    disk_size = int(str(info.get("size", "0")).rstrip("B") or 0)
    for number, want in enumerate(wanted, start=1):
        have = parts.get(str(number))
        if have is None:
            return False
        for key in ("start", "end"):
            got = int(str(have[key]).rstrip("B"))
            target, fuzz = to_bytes(want[key], disk_size)
            if abs(got - target) > fuzz:
                return False
    return True


def describe(listing):
    """Short words for what parted listed: ``gpt with 2 partitions`` or ``no partition table``."""
    info = listing.get("info") or {}
    table = info.get("partition table") or "unknown"
    if table == "unknown":
        return "no partition table"
    if table == "loop":
        return "a filesystem on the whole disk (no partition table)"
    count = len(listing.get("partitions") or {})
    return f"{table} with {count} partition{'s' if count != 1 else ''}"


def is_blank(listing, blkid):
    """No partition table and no filesystem signature: safe to label without force."""
    table = (listing.get("info") or {}).get("partition table")
    return table in (None, "", "unknown") and not blkid


Parted = collections.namedtuple("Parted", "listing mklabel mkpart")
Parted.__doc__ = """parted as callables: ``listing(dev)`` (the table in bytes, as Salt's
``partition.list DEV unit=B``), ``mklabel(dev, label)``, ``mkpart(dev, type, start, end)``."""


def table(path, parted, run=commands.run_local):
    """The partition table of image or block device ``path``, as parted lists it (bytes)."""
    with attached(path, run=run) as dev:
        listing = parted.listing(dev)
    listing["info"]["disk"] = path
    return listing


def write_table(path, label, parts, parted, force=False, run=commands.run_local, in_use=()):
    """Give ``path`` the wanted table (``parts`` None: one partition over the whole disk).

    Returns ``{}`` when it already has it, else ``{path: {"old", "new"}}`` in words.
    A disk with another table or a filesystem, or any data in its first or last
    MiB (``protect.holds_data``), is only relabelled with ``force``; a disk of a
    defined guest (``in_use``, ``{path: guests}`` from libvirt) never is.
    """
    label, wanted, problems = validate(label, parts if parts is not None else [{"start": 0, "end": -1}])
    if problems:
        raise DiskError("; ".join(problems))
    with attached(path, run=run) as dev:
        listing = parted.listing(dev)
        if matches(listing, label, wanted):
            return {}
        if not is_blank(listing, filesystems.fstype(dev, run)) and not force:
            raise DiskError(f"{path} already has {describe(listing)}; not repartitioning it without force=True")
        protect.refuse_overwrite(path, in_use, force=force, run=run)
        before = describe(listing)
        parted.mklabel(dev, label)
        for part in wanted:
            parted.mkpart(dev, part["type"], part["start"], part["end"])
        after = parted.listing(dev)
        if not matches(after, label, wanted):
            raise DiskError(f"parted did not make the wanted table on {path}; it now has {describe(after)}")
    return {path: {"old": before, "new": describe(after)}}


def _device_of(path, dev, partition):
    """The device holding ``partition`` of ``dev`` (``dev`` itself when None), once it is there."""
    if not partition:
        return dev
    target = partition_device(dev, int(partition))
    if not filesystems.wait_for(target):
        raise DiskError(f"the device {target} for {path} did not appear")
    return target


def probe(path, parted, partition=None, run=commands.run_local):
    """``{"fstype", "table", "blank", "missing"}`` of ``path`` or its partition number ``partition``."""
    with attached(path, run=run) as dev:
        listing = parted.listing(dev)
        if partition and str(int(partition)) not in listing["partitions"]:
            return {"fstype": None, "table": describe(listing), "blank": False, "missing": True}
        where = _device_of(path, dev, partition)
        fstype = filesystems.fstype(where, run)
        holds = protect.holds_data(where, run=run)
    return {
        "fstype": fstype,
        "holds": holds,
        "table": describe(listing),
        "blank": False if partition else is_blank(listing, fstype),
        "missing": False,
    }


def format_fs(path, fs_type, parted, partition=None, force=False, label=None, run=commands.run_local, in_use=()):
    """Make a ``fs_type`` filesystem on ``path`` or its partition number ``partition``.

    Returns ``{}`` when it is already there, else ``{where: {"old", "new"}}``;
    another filesystem, or any data where it goes (``protect.holds_data``), is
    only replaced with ``force``; a disk of a defined guest (``in_use``) never is.
    """
    if fs_type not in FILESYSTEMS:
        raise DiskError(f"fs_type: expected one of {', '.join(FILESYSTEMS)}, got '{fs_type}'")
    with attached(path, run=run) as dev:
        if partition and str(int(partition)) not in parted.listing(dev)["partitions"]:
            raise DiskError(f"{path} has no partition {partition}")
        target = _device_of(path, dev, partition)
        current = filesystems.fstype(target, run)
        if current == fs_type:
            return {}
        if current and not force:
            raise DiskError(
                f"{path}{' partition ' + str(partition) if partition else ''} already holds {current}; "
                "not formatting it without force=True"
            )
        _refuse_format(path, target, partition, in_use, force, run)
        made = filesystems.make(target, fs_type, label=label, run=run, what=path)
    where = f"{path}:{partition}" if partition else path
    return {where: {"old": current, "new": made}}


def _refuse_format(path, target, partition, in_use, force, run):
    """The data gate (``protect.refuse_overwrite``) before making a filesystem, naming ``path`` or ``path:N``."""
    if not partition:
        protect.refuse_overwrite(path, in_use, force=force, run=run)
        return
    protect.refuse_overwrite(path, in_use, force=True, run=run)  # a guest's disk: refused even with force
    problem = protect.overwrite_problem(target, force=force, run=run)
    if problem:
        raise protect.WouldLoseData(problem.replace(target, format_where(path, partition), 1))


def describe_wanted(label, wanted):
    """``gpt with 2 partitions``: the wanted table in the words :func:`describe` uses."""
    return f"{label} with {len(wanted)} partition{'s' if len(wanted) != 1 else ''}"


def table_changes(path, listing, label, wanted, probe=None, force=False):
    """``{path: {old, new}}`` to give ``path`` the wanted table, ``{}`` when it has it.

    ``probe`` (:func:`probe` of the whole disk) is needed when the table differs:
    a disk with a table or filesystem is only repartitioned with ``force``.
    """
    if matches(listing, label, wanted):
        return {}
    before = describe(listing)
    if not probe["blank"] and not force:
        raise DiskError(f"{path} already has {before}; it is not repartitioned unless force: true")
    if probe.get("holds") and not force:
        raise DiskError(f"{path} holds data ({probe['holds']}); say force: true to write over it")
    return {path: {"old": before, "new": describe_wanted(label, wanted)}}


def path_problems(path, key="name"):
    """Problems with the image or device path ``path`` (absolute, no ``..``), named by ``key``."""
    try:
        protect.absolute(path, key)
    except XenError as exc:
        return [str(exc)]
    return []


def in_use_problems(path, users):
    """The refusal for writing on ``path`` when ``users`` (``xen_disk.users``) is not empty, as a list."""
    if not users:
        return []
    names = ", ".join(sorted({guest for guest, _, _ in users}))
    return [
        f"{path} is a disk of {names}; detach it or undefine the guest first "
        "(force does not write over a disk a guest uses)"
    ]


def format_problems(fs_type, partition, path=None):
    """Problems with a wanted filesystem ``fs_type`` on partition number ``partition`` (None: the whole disk)."""
    problems = path_problems(path) if path is not None else []
    if fs_type not in FILESYSTEMS:
        problems.append(f"fs_type: expected one of {', '.join(FILESYSTEMS)}, got {fs_type!r}")
    if partition is not None and (isinstance(partition, bool) or not str(partition).isdigit() or int(partition) < 1):
        problems.append(f"partition: expected a partition number like 1, got {partition!r}")
    return problems


def format_where(path, partition=None):
    """The changes key of a filesystem: ``PATH`` or ``PATH:1``."""
    return f"{path}:{partition}" if partition else path


def format_changes(path, fs_type, probe, partition=None, force=False):
    """``{where: {old, new}}`` to have ``fs_type`` where :func:`probe` looked, ``{}`` when it is there.

    Another filesystem is only replaced with ``force``; a disk with a partition
    table is only formatted whole with ``force``.
    """
    where = format_where(path, partition)
    if probe.get("missing"):
        raise DiskError(f"{path} has no partition {partition} ({probe['table']})")
    current = probe["fstype"]
    if current and current != fs_type and not force:
        raise DiskError(f"{where} already holds {current}; it is not reformatted unless force: true")
    if not partition and probe["table"] != "no partition table" and not current and not force:
        raise DiskError(f"{path} has {probe['table']}; format a partition, or set force: true to format the whole disk")
    if current != fs_type and probe.get("holds") and not force:
        raise DiskError(f"{where} holds data ({probe['holds']}); say force: true to write over it")
    return {} if current == fs_type else {where: {"old": current, "new": fs_type}}
