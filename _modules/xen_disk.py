"""Guest disks on a Xen host: images, attach/detach, partitions, filesystems, moves.

What the tutorial did with ``dd ... seek=``, ``vim /etc/xen/newvm``, ``parted``,
``mkfs.ext3`` and ``lvcreate`` + ``dd``, as Salt functions. Sizes are MiB when
given as numbers, or strings like ``2T``, ``10G``, ``512M``. Partitions and
filesystems go through Salt's own ``partition``, ``disk`` and ``extfs``
modules; LVs through Salt's ``lvm`` module.
"""

import logging
import os
import time
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.disks import disk_image, disk_parts

try:
    import libvirt

    from saltext_xen.disks import pools
    from saltext_xen.guests import disk_move, domain_xml, guest_spec, lifecycle

    _MISSING = None
except ImportError as _exc:  # pragma: no cover - exercised through __virtual__
    _MISSING = str(_exc)

log = logging.getLogger(__name__)

__virtualname__ = "xen_disk"
__func_alias__ = {"format_": "format"}


def __virtual__():
    if not connection.available():
        return False, f"xen_disk: {connection.MISSING_REASON}"
    if _MISSING:
        return False, f"xen_disk: a library module is missing: {_MISSING}"
    return __virtualname__


def _run(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)


def _conn():
    return saltglue.conn_from(__salt__)


def _bytes(size):
    try:
        return disk_image.parse_size(size)
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from None


def _progress(label):
    def report(done, total):
        pct = 100.0 * done / total if total else 100.0
        log.info(
            "%s: %d of %d bytes (%s of %s, %.0f%%)",
            label,
            done,
            total,
            disk_image.human(done),
            disk_image.human(total),
            pct,
        )

    return report


# --------------------------------------------------------------------------- LVs
def _lv_names(path):
    """``/dev/vol0/lv`` or ``/dev/mapper/vol0-lv`` -> ("vol0", "lv")."""
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "dev" and parts[2] == "mapper":
        vg, _, lv = parts[3].replace("--", "\0").partition("-")
        return vg.replace("\0", "-"), lv.replace("\0", "-")
    if len(parts) == 4 and parts[1] == "dev":
        return parts[2], parts[3]
    raise CommandExecutionError(f"{path} does not name an LV (expected /dev/VG/LV or /dev/mapper/VG-LV)")


def _make_lv(path, size_bytes):
    vg, lv = _lv_names(path)
    if "lvm.lvcreate" not in __salt__:
        raise CommandExecutionError(f"cannot create {path}: Salt's lvm module is not available here")
    # force: wipe signatures an earlier LV left where the new one is (its data must not show through)
    out = __salt__["lvm.lvcreate"](lv, vg, size=f"{size_bytes}b", force=True)
    if not os.path.exists(path):
        raise CommandExecutionError(f"lvcreate did not make {path}: {out}")


def _drop_lv(path):
    vg, lv = _lv_names(path)
    __salt__["lvm.lvremove"](lv, vg)


def _refresh_pools(path):
    """Let libvirt storage pools over ``path``'s directory (dir pool) or VG (logical pool) see the change."""
    folder = os.path.dirname(path)
    refreshed = []
    try:
        pools = _conn().listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    except libvirt.libvirtError:
        return refreshed
    for pool in pools:
        try:
            target = ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
            if target and os.path.normpath(target) == folder:
                pool.refresh(0)
                refreshed.append(pool.name())
        except libvirt.libvirtError as exc:
            log.debug("could not refresh pool %s: %s", pool.name(), exc.get_error_message())
    return refreshed


# --------------------------------------------------------------------------- images
@saltglue.plain_errors
def info(path):
    """
    What is at ``path``: kind (file/block), format (raw/qcow2), virtual size
    and allocated bytes (a sparse 2 TB image shows a few KiB).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.info /var/lib/xen/images/newvm-1.img
    """
    return disk_image.info(path)


@saltglue.plain_errors
def create(path, size, format="raw", allocation="sparse"):  # pylint: disable=redefined-builtin
    """
    Create a disk image; never overwrites. ``allocation=sparse`` takes constant
    time and space (the tutorial's ``dd ... seek=``), ``full`` allocates it all.
    ``format`` is raw or qcow2 (made by ``qemu-img create``). An LV path
    (``/dev/VG/LV``) is created with Salt's lvm module.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.create /var/lib/xen/images/newvm-1.img 2TB
        salt '*' xen_disk.create /var/lib/xen/images/db.qcow2 20G format=qcow2
        salt '*' xen_disk.create /dev/vol0/lv_for_newvm 10G
    """
    nbytes = _bytes(size)
    if guest_spec.is_block(path):
        if os.path.exists(path):
            raise CommandExecutionError(f"{path} already exists; it is not overwritten")
        _make_lv(path, nbytes)
        made = disk_image.info(path)
    else:
        made = disk_image.create(path, nbytes, fmt=format, allocation=allocation, run=_run)
    _refresh_pools(path)
    return made


@saltglue.plain_errors
def grow(path, size, allocation="sparse"):
    """
    Grow an image file or LV to ``size``; shrinking is refused. Guests using
    the disk are told the new size where Xen allows it (blockResize); the
    result says which guests saw it live.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.grow /var/lib/xen/images/newvm-1.img 3T
    """
    nbytes = _bytes(size)
    cur = disk_image.info(path)
    if not cur["exists"]:
        raise CommandExecutionError(f"cannot grow {path}: it does not exist")
    if cur["kind"] == "block":
        if nbytes < cur["size"]:
            raise CommandExecutionError(
                f"refusing to shrink {path} from {disk_image.human(cur['size'])} to {disk_image.human(nbytes)}"
            )
        out = None
        if nbytes > cur["size"]:
            out = __salt__["lvm.lvextend"](size=f"{nbytes}b", lvpath=path)
        old, new = cur["size"], disk_image.info(path)["size"]
        if new < nbytes:
            raise CommandExecutionError(f"cannot grow {path} to {disk_image.human(nbytes)} (is it an LV?): {out}")
    else:
        if cur["format"] == "qcow2" and nbytes > cur["size"]:
            running = [g for g, _, active in users(path) if active]
            if running:
                raise CommandExecutionError(
                    f"{path} is a qcow2 image in use by running {', '.join(running)}; shut it off to grow it"
                )
        old, new = disk_image.grow(path, nbytes, allocation=allocation, run=_run)
    ret = {"path": path, "old": old, "new": new, "live": {}}
    if new != old:
        ret["live"] = _tell_guests(path, new)
    return ret


def _tell_guests(path, nbytes):
    told = {}
    for name, target, active in users(path):
        if not active:
            continue
        try:
            lifecycle.lookup(_conn(), name).blockResize(target, nbytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            told[name] = "resized live"
        except libvirt.libvirtError as exc:
            told[name] = f"sees the new size after a restart ({exc.get_error_message()})"
    return told


@saltglue.plain_errors
def users(path):
    """
    Guests whose definition (persistent or live) uses ``path``: a list of
    ``[guest, target, running]``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.users /var/lib/xen/images/vm03.img
    """
    found = []
    for dom in _conn().listAllDomains():
        seen = set()
        for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
            for disk in domain_xml.parse(dom.XMLDesc(flags))["disks"]:
                if disk["source"] == path and disk["target"] not in seen:
                    seen.add(disk["target"])
                    found.append([dom.name(), disk["target"], bool(dom.isActive())])
    return found


@saltglue.plain_errors
def delete(path, delete=False):  # pylint: disable=redefined-outer-name
    """
    Delete an image file or LV. Needs ``delete=True`` (the data is gone for
    good), and refuses while any guest definition still uses it.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.delete /var/lib/xen/images/old.img delete=True
    """
    if delete is not True:
        raise CommandExecutionError(f"not deleting {path}: pass delete=True to destroy its data")
    cur = disk_image.info(path)
    if not cur["exists"]:
        return {}
    in_use = users(path)
    if in_use:
        names = ", ".join(f"{g} ({t})" for g, t, _ in in_use)
        raise CommandExecutionError(f"not deleting {path}: still used by {names}; detach it first")
    if cur["kind"] == "block":
        _drop_lv(path)
    else:
        os.unlink(path)
    _refresh_pools(path)
    return {path: {"old": "present", "new": "deleted"}}


# --------------------------------------------------------------------------- attach
def _disks_of(dom):
    """``{target: disk}`` of the persistent and (when running) live definitions."""
    config = {d["target"]: d for d in domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["disks"]}
    live = {d["target"]: d for d in domain_xml.parse(dom.XMLDesc(0))["disks"]} if dom.isActive() else None
    return config, live


def _validated_disk(name, source, target=None, format=None, readonly=False, device="disk"):  # pylint: disable=redefined-builtin
    """Library disk dict for ``source`` on guest ``name`` (target chosen if not given)."""
    data = {"source": source, "readonly": readonly, "device": device}
    if target:
        data["target"] = target
    if format:
        data["format"] = format
    disk, problems = guest_spec.validate_disk(data, f"{name}:disks:{target or source}")
    if problems:
        raise CommandExecutionError("; ".join(str(p) for p in problems))
    return disk


def _free_target(used, prefix="xvd"):
    """The first ``xvdX`` not in ``used``."""
    index = 0
    while guest_spec.target_name(prefix, index) in used:
        index += 1
    return guest_spec.target_name(prefix, index)


@saltglue.plain_errors
def guest_disks(name):
    """
    A guest's disks by target, from its persistent definition (``config``)
    and, when it runs, its live one (``live``, else None).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.guest_disks newvm
    """
    cfg, live = _disks_of(lifecycle.lookup(_conn(), name))
    return {"config": cfg, "live": live}


@saltglue.plain_errors
def attach(name, source, target=None, format=None, readonly=False, live=True, config=True):  # pylint: disable=redefined-builtin
    """
    Attach a disk to a guest, live (when it runs) and in its persistent
    definition, like adding ``tap:aio:/var/lib/xen/images/newvm-1.img,xvdb,w``
    to the tutorial's ``disk = [...]``. ``target`` defaults to the first free
    ``xvdX``. Returns ``{}`` when it was already attached there.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.attach newvm /var/lib/xen/images/newvm-1.img target=xvdb
    """
    conn = _conn()
    dom = lifecycle.lookup(conn, name)
    cfg, live_disks = _disks_of(dom)
    for where in (cfg, live_disks or {}):
        for tgt, disk in where.items():
            if disk["source"] == source and (target is None or tgt == target):
                target = tgt
    if target is None:
        target = _free_target(set(cfg) | set(live_disks or {}))
    disk = _validated_disk(name, source, target, format, readonly)
    gtype = domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["type"]
    xml = domain_xml.disk_xml(disk, gtype)
    applied, pending = [], None
    for scope, have, flag in (("config", cfg, config), ("live", live_disks, live)):
        if not flag or have is None:
            continue
        cur = have.get(target)
        if cur is not None and cur["source"] == source:
            continue
        if cur is not None:
            raise CommandExecutionError(
                f"{name} already has {cur['source']} as {target} ({scope}); detach it first or pick another target"
            )
        done = _change_device(conn, dom, scope, "attach", xml, lambda x: disk_move.add_disk(x, disk, gtype))
        if done:
            applied.append(scope)
        else:
            pending = _NO_LIVE
    if not applied:
        return {}
    ret = {target: {"old": None, "new": source, "applied": sorted(applied)}}
    if pending:
        ret[target]["pending"] = pending
    return ret


_NO_LIVE = (
    "not applied live: this libvirt driver cannot change devices of a running guest; it takes effect at the next start"
)


def _change_device(conn, dom, scope, verb, xml, edit_definition):
    """attach/detach ``xml`` in ``scope``; True if done, False if the driver cannot do it live."""
    scope_flag = libvirt.VIR_DOMAIN_AFFECT_CONFIG if scope == "config" else libvirt.VIR_DOMAIN_AFFECT_LIVE
    call = dom.attachDeviceFlags if verb == "attach" else dom.detachDeviceFlags
    try:
        call(xml, scope_flag)
        return True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise CommandExecutionError(f"cannot {verb} the disk ({scope}): {exc.get_error_message()}") from None
    if scope == "live":
        return False
    # Drivers without device hot-plug (libvirt's test driver): edit the persistent definition.
    try:
        conn.defineXML(edit_definition(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
    except libvirt.libvirtError as exc:
        raise CommandExecutionError(f"cannot {verb} the disk ({scope}): {exc.get_error_message()}") from None
    return True


@saltglue.plain_errors
def detach(name, disk, live=True, config=True):
    """
    Detach a disk (by target like ``xvdb`` or by path) from a guest, live and
    persistently. The image itself is kept. Returns ``{}`` when it was not attached.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.detach newvm xvdb
    """
    conn = _conn()
    dom = lifecycle.lookup(conn, name)
    cfg, live_disks = _disks_of(dom)
    gtype = domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["type"]
    applied, pending, old = [], None, None
    for scope, have, flag in (("live", live_disks, live), ("config", cfg, config)):
        if not flag or have is None:
            continue
        cur = have.get(disk) or next((d for d in have.values() if d["source"] == disk), None)
        if cur is None:
            continue
        old = cur
        done = _change_device(
            conn,
            dom,
            scope,
            "detach",
            domain_xml.disk_xml(cur, gtype),
            lambda x, t=cur["target"]: disk_move.remove_disk(x, t),
        )
        if done:
            applied.append(scope)
        else:
            pending = _NO_LIVE
    if not applied:
        return {}
    ret = {old["target"]: {"old": old["source"], "new": None, "applied": sorted(applied)}}
    if pending:
        ret[old["target"]]["pending"] = pending
    return ret


# --------------------------------------------------------------------------- partitions
def _listing(dev):
    return __salt__["partition.list"](dev, unit="B")


@saltglue.plain_errors
def partitions(path):
    """
    The partition table of an image file (through a loop device) or block
    device, as parted lists it (bytes).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.partitions /var/lib/xen/images/newvm-1.img
    """
    with disk_parts.attached(path, run=_run) as dev:
        listing = _listing(dev)
    listing["info"]["disk"] = path
    return listing


@saltglue.plain_errors
def partition(path, label="gpt", parts=None, force=False):
    """
    Write a partition table, as the tutorial's ``parted``: ``mklabel gpt`` then
    one ``mkpart primary START END`` per entry of ``parts`` (MB, or sizes like
    ``2TB``; ``end: -1`` is "the rest of the disk"). A disk that already has a
    different table or a filesystem is only relabelled with ``force=True``.
    Returns ``{}`` when the table is already as wanted.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.partition /var/lib/xen/images/newvm-1.img parts='[{start: 0, end: 100}, {start: 100, end: -1}]'
    """
    label, wanted, problems = disk_parts.validate(label, parts if parts is not None else [{"start": 0, "end": -1}])
    if problems:
        raise CommandExecutionError("; ".join(problems))
    with disk_parts.attached(path, run=_run) as dev:
        listing = _listing(dev)
        if disk_parts.matches(listing, label, wanted):
            return {}
        blank = disk_parts.is_blank(listing, _fstype(dev))
        if not blank and not force:
            raise CommandExecutionError(
                f"{path} already has {disk_parts.describe(listing)}; not repartitioning it without force=True"
            )
        before = disk_parts.describe(listing)
        __salt__["partition.mklabel"](dev, label)
        for part in wanted:
            __salt__["partition.mkpart"](dev, part["type"], start=part["start"], end=part["end"])
        after = _listing(dev)
        if not disk_parts.matches(after, label, wanted):
            raise CommandExecutionError(
                f"parted did not make the wanted table on {path}; it now has {disk_parts.describe(after)}"
            )
    return {path: {"old": before, "new": disk_parts.describe(after)}}


def _fstype(dev):
    """The filesystem type on ``dev``, probed afresh.

    ``blkid -p`` rather than Salt's ``disk.blkid``: the latter reads blkid's
    cache, which keys on device names, and loop devices are reused for other
    images all the time.
    """
    res = _run(["blkid", "-p", "-s", "TYPE", "-o", "value", dev])
    if res.get("retcode"):
        return None
    return (res.get("stdout") or "").strip() or None


def _wait_for(path, seconds=5.0):
    """Partition nodes of a fresh loop device appear shortly after it (devtmpfs, no udev needed)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.path.exists(path)


@saltglue.plain_errors
def format_(path, fs_type="ext4", partition=None, force=False, label=None):  # pylint: disable=redefined-outer-name
    """
    Make a filesystem (ext2/ext3/ext4/xfs) on an image, one of its partitions
    (``partition=1`` is the first), or a block device, like the tutorial's
    ``mkfs.ext3 -F /dev/sdb1``. A device that already holds another filesystem
    is only overwritten with ``force=True``. Returns ``{}`` when it already has
    ``fs_type``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.format /var/lib/xen/images/newvm-1.img ext3 partition=1
    """
    if fs_type not in disk_parts.FILESYSTEMS:
        raise CommandExecutionError(f"fs_type: expected one of {', '.join(disk_parts.FILESYSTEMS)}, got '{fs_type}'")
    with disk_parts.attached(path, run=_run) as dev:
        target = disk_parts.partition_device(dev, int(partition)) if partition else dev
        if partition and str(int(partition)) not in _listing(dev)["partitions"]:
            raise CommandExecutionError(f"{path} has no partition {partition}")
        if not _wait_for(target):
            raise CommandExecutionError(f"the device {target} for {path} did not appear")
        current = _fstype(target)
        if current == fs_type:
            return {}
        if current and not force:
            raise CommandExecutionError(
                f"{path}{' partition ' + str(partition) if partition else ''} already holds {current}; "
                "not formatting it without force=True"
            )
        if fs_type.startswith("ext"):
            kwargs = {"label": label} if label else {}
            res = __salt__["extfs.mkfs"](target, fs_type, full_return=True, **kwargs)
        else:
            argv = ["mkfs.xfs", "-f", target] + (["-L", label] if label else [])
            res = _run(argv)
        if res.get("retcode"):
            raise CommandExecutionError(f"mkfs {fs_type} on {path} failed: {(res.get('stderr') or '').strip()}")
        made = _fstype(target)
    where = f"{path}:{partition}" if partition else path
    return {where: {"old": current, "new": made}}


# --------------------------------------------------------------------------- moves
@saltglue.plain_errors
def move(name, disk, dest, shutdown=False, remove_source=False, timeout=120, force=False, format=None):  # pylint: disable=redefined-builtin
    """
    Move a guest's disk to ``dest``: image file -> LV, LV -> file, or file ->
    file (the tutorial's ``lvcreate`` + ``dd`` + config edit). The guest must be
    shut off, or ``shutdown=True`` stops it and starts it again afterwards. An
    LV that does not exist is created at least as large as the source. The copy
    skips holes and is verified before the definition is switched; the source
    is kept unless ``remove_source=True``. An existing device that holds a
    filesystem or partition table is only written over with ``force=True``.
    On failure the guest is left as it was and the partial target removed.

    A qcow2 image moved into an LV is converted to raw (``qemu-img convert``,
    the LV at least the image's virtual size, checked with ``qemu-img
    compare``) and the guest then reads the LV as a raw ``phy`` disk.
    ``format=qcow2`` (or ``raw``) converts into a new image file the same way,
    e.g. an LV back to a qcow2 file; by default a file keeps its format.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.move newvm xvda /dev/vol0/lv_for_newvm
        salt '*' xen_disk.move newvm xvda /dev/vol0/lv_for_newvm shutdown=True
        salt '*' xen_disk.move newvm xvda /var/lib/xen/images/newvm.qcow2 format=qcow2
    """
    conn = _conn()
    step = disk_move.plan(conn, name, disk, dest, shutdown=bool(shutdown), force=bool(force), run=_run, fmt=format)
    verb = (
        f"converting {step['source']} ({step['format']}) to {dest} ({step['dest_format']})"
        if step["convert"]
        else f"moving {step['source']} to {dest}"
    )
    return disk_move.execute(
        conn,
        step,
        remove_source=bool(remove_source),
        make_block=_make_lv,
        drop_block=_drop_lv,
        progress=_progress(verb),
        timeout=float(timeout),
    )


@saltglue.plain_errors
def move_plan(name, disk, dest, shutdown=False, force=False, format=None):  # pylint: disable=redefined-builtin
    """
    What ``xen_disk.move`` would do, without doing it: source, destination,
    size, formats (``convert`` is true when ``qemu-img convert`` changes the
    format), whether the guest is stopped and an LV created; or the reason it
    cannot be done.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.move_plan newvm xvda /dev/vol0/lv_for_newvm
    """
    return disk_move.plan(_conn(), name, disk, dest, shutdown=bool(shutdown), force=bool(force), run=_run, fmt=format)


@saltglue.plain_errors
def filesystem(path, partition=None):
    """
    The filesystem type on an image, one of its partitions, or a block
    device (probed afresh with ``blkid -p``), or None. Also the partition
    table, as ``{"fstype": .., "table": .., "blank": True|False}``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.filesystem /var/lib/xen/images/newvm-1.img partition=1
    """
    with disk_parts.attached(path, run=_run) as dev:
        listing = _listing(dev)
        if partition:
            if str(int(partition)) not in listing["partitions"]:
                return {"fstype": None, "table": disk_parts.describe(listing), "blank": False, "missing": True}
            target = disk_parts.partition_device(dev, int(partition))
            if not _wait_for(target):
                raise CommandExecutionError(f"the device {target} for {path} did not appear")
        else:
            target = dev
        fstype = _fstype(target)
    return {
        "fstype": fstype,
        "table": disk_parts.describe(listing),
        "blank": False if partition else disk_parts.is_blank(listing, fstype),
        "missing": False,
    }


# --------------------------------------------------------------------------- pools
@saltglue.plain_errors
def pool_info(name):
    """
    A libvirt storage pool as a spec (type, path, vg, autostart, active), or
    None when it is not defined.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.pool_info images
    """
    return pools.current(_conn(), name)


def _pool_spec(name, type, path, vg, autostart):  # pylint: disable=redefined-builtin
    data = {"type": type, "autostart": autostart}
    if path is not None:
        data["path"] = path
    if vg is not None:
        data["vg"] = vg
    spec, problems = pools.validate(name, data, path="pool")
    if problems:
        raise CommandExecutionError("; ".join(problems))
    return spec


@saltglue.plain_errors
def pool_plan(name, type="dir", path=None, vg=None, autostart=True):  # pylint: disable=redefined-builtin
    """
    What ``pool_define`` would change for this pool, as ``{key: {old, new}}``;
    an error when the pool exists with another type, path or volume group.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.pool_plan images path=/var/lib/xen/images
    """
    spec = _pool_spec(name, type, path, vg, autostart)
    changes, problems = pools.plan(
        spec, pools.current(_conn(), name), os.path.isdir(spec["path"]) if spec["type"] == "dir" else True
    )
    if problems:
        raise CommandExecutionError("; ".join(problems))
    return changes


@saltglue.plain_errors
def pool_define(name, type="dir", path=None, vg=None, autostart=True):  # pylint: disable=redefined-builtin
    """
    Define, start and (by default) autostart a storage pool: a directory of
    images (``type=dir path=/var/lib/xen/images``, the directory is made if
    missing) or an existing volume group (``type=logical vg=vol0``). A pool
    defined differently is not redefined. Returns what changed.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.pool_define images path=/var/lib/xen/images
        salt '*' xen_disk.pool_define vol0 type=logical
    """
    spec = _pool_spec(name, type, path, vg, autostart)
    conn = _conn()
    changes, problems = pools.plan(
        spec, pools.current(conn, name), os.path.isdir(spec["path"]) if spec["type"] == "dir" else True
    )
    if problems:
        raise CommandExecutionError("; ".join(problems))
    return pools.apply(conn, spec, changes) if changes else {}
