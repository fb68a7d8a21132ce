"""Guest disks on a Xen host: images, attach/detach, partitions, filesystems, moves.

What the tutorial did with ``dd ... seek=``, ``vim /etc/xen/newvm``, ``parted``,
``mkfs.ext3`` and ``lvcreate`` + ``dd``, as Salt functions. Sizes are MiB when
given as numbers, or strings like ``2T``, ``10G``, ``512M``. The work is done by
the library (``saltext_xen.disks`` and ``saltext_xen.guests``); commands run
through Salt's ``cmd.run_all`` and partition tables through Salt's
``partition`` module.
"""

import functools

from salt.exceptions import CommandExecutionError

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.disks import disk_entry, disk_image, disk_parts

try:
    from saltext_xen.disks import pools, volumes
    from saltext_xen.guests import devices, disk_move, disk_users

    _MISSING = None
except ImportError as _exc:  # pragma: no cover - exercised through __virtual__
    _MISSING = str(_exc)

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


def _parted():
    """Salt's partition module (parted) as the library's Parted callables."""
    return disk_parts.Parted(
        listing=lambda dev: __salt__["partition.list"](dev, unit="B"),
        mklabel=__salt__["partition.mklabel"],
        mkpart=lambda dev, ptype, start, end: __salt__["partition.mkpart"](dev, ptype, start=start, end=end),
    )


def _conn():
    return saltglue.conn_from(__salt__)


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
def create(path, size, format="raw", allocation="sparse"):
    """
    Create a disk image; never overwrites. ``allocation=sparse`` takes constant
    time and space (the tutorial's ``dd ... seek=``), ``full`` allocates it all.
    ``format`` is raw or qcow2 (made by ``qemu-img create``). An LV path
    (``/dev/VG/LV``) is created with ``lvcreate``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.create /var/lib/xen/images/newvm-1.img 2TB
        salt '*' xen_disk.create /var/lib/xen/images/db.qcow2 20G format=qcow2
        salt '*' xen_disk.create /dev/vol0/lv_for_newvm 10G
    """
    return volumes.create(_conn(), path, disk_image.size_of(size), fmt=format, allocation=allocation, run=_run)


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
    return disk_users.grow(_conn(), path, disk_image.size_of(size), allocation=allocation, run=_run)


@saltglue.plain_errors
def users(path):
    """
    Guests whose definition (persistent or live) uses ``path``: a list of
    ``[guest, target, running]``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.users /var/lib/xen/images/vm03.img
    """
    return disk_users.users(_conn(), path)


@saltglue.plain_errors
def delete(path, delete=False):
    """
    Delete an image file or LV. Needs ``delete=True`` (the data is gone for
    good), and refuses while any guest definition still uses it.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.delete /var/lib/xen/images/old.img delete=True
    """
    return disk_users.delete(_conn(), path, run=_run, delete=delete)


@saltglue.plain_errors
def guest_disks(name):
    """
    A guest's disks by target, from its persistent definition (``config``)
    and, when it runs, its live one (``live``, else None).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.guest_disks newvm
    """
    return devices.guest_disks(_conn(), name)


@saltglue.plain_errors
def attach(name, source, target=None, format=None, readonly=False, live=True, config=True):
    """
    Attach a disk to a guest, live (when it runs) and in its persistent
    definition, like adding ``tap:aio:/var/lib/xen/images/newvm-1.img,xvdb,w``
    to the tutorial's ``disk = [...]``. ``target`` defaults to the first free
    ``xvdX``. Returns ``{}`` when it was already attached there.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.attach newvm /var/lib/xen/images/newvm-1.img target=xvdb
    """
    if not disk_image.info(source)["exists"]:
        raise CommandExecutionError(f"source: {source} does not exist; create it first (xen_disk.create)")
    return devices.attach_disk(
        _conn(), name, source, target=target, fmt=format, readonly=readonly, live=live, config=config
    )


@saltglue.plain_errors
def detach(name, disk, live=True, config=True):
    """
    Detach a disk (by target like ``xvdb`` or by path) from a guest, live and
    persistently. The image itself is kept. Returns ``{}`` when it was not attached.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.detach newvm xvdb
    """
    return devices.detach_disk(_conn(), name, disk, live=live, config=config)


@saltglue.plain_errors
def partitions(path):
    """
    The partition table of an image file (through a loop device) or block
    device, as parted lists it (bytes).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.partitions /var/lib/xen/images/newvm-1.img
    """
    return disk_parts.table(path, _parted(), run=_run)


@saltglue.plain_errors
def partition(path, label="gpt", parts=None, force=False):
    """
    Write a partition table, as the tutorial's ``parted``: ``mklabel gpt`` then
    one ``mkpart primary START END`` per entry of ``parts`` (MB, or sizes like
    ``2TB``; ``end: -1`` is "the rest of the disk"). A disk that already has a
    different table, a filesystem or any data at its ends is only relabelled
    with ``force=True``; a disk a defined guest uses never is. Returns ``{}`` when the table is already as wanted.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.partition /var/lib/xen/images/newvm-1.img parts='[{start: 0, end: 100}, {start: 100}]'
    """
    in_use = disk_users.in_use(_conn())
    return disk_parts.write_table(path, label, parts, _parted(), force=force, run=_run, in_use=in_use)


@saltglue.plain_errors
def format_(path, fs_type="ext4", partition=None, force=False, label=None):
    """
    Make a filesystem (ext2/ext3/ext4/xfs) on an image, one of its partitions
    (``partition=1`` is the first), or a block device, like the tutorial's
    ``mkfs.ext3 -F /dev/sdb1``. A device that already holds another filesystem
    or any data at its ends is only overwritten with ``force=True``; a disk a
    defined guest uses never is. Returns ``{}`` when it already has ``fs_type``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.format /var/lib/xen/images/newvm-1.img ext3 partition=1
    """
    in_use = disk_users.in_use(_conn())
    return disk_parts.format_fs(
        path, fs_type, _parted(), partition=partition, force=force, label=label, run=_run, in_use=in_use
    )


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
    return disk_parts.probe(path, _parted(), partition=partition, run=_run)


@saltglue.plain_errors
def move(name, disk, dest, shutdown=False, remove_source=False, timeout=120, force=False, format=None, plan=None):
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
    ``plan``: the ``xen_disk.move_plan`` result to carry out as it is (the
    ``xen_disk.moved`` state passes the plan it showed).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.move newvm xvda /dev/vol0/lv_for_newvm
        salt '*' xen_disk.move newvm xvda /dev/vol0/lv_for_newvm shutdown=True
        salt '*' xen_disk.move newvm xvda /var/lib/xen/images/newvm.qcow2 format=qcow2
    """
    conn = _conn()
    step = plan or disk_move.plan(
        conn, name, disk, dest, shutdown=bool(shutdown), force=bool(force), run=_run, fmt=format
    )
    return disk_move.execute(
        conn,
        step,
        remove_source=bool(remove_source),
        make_block=functools.partial(volumes.create_lv, run=_run),
        drop_block=functools.partial(volumes.remove_lv, run=_run),
        progress=disk_move.progress_log(step),
        timeout=float(timeout),
        run=_run,
    )


@saltglue.plain_errors
def move_plan(name, disk, dest, shutdown=False, force=False, format=None):
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
def check_entry(key, entry, planned=None):
    """
    Every problem with the pillar ``xen:disks`` entry ``key`` (path, size,
    label and partitions, filesystems, the guest to attach to or move for),
    each named by its key path, found before anything is made; ``[]`` when none.
    ``planned``: names of guests the same run defines (``xen:guests``, ``xen:clones``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.check_entry newvm-1 '{path: /var/lib/xen/images/newvm-1.img, size: 2TB}'
    """
    return disk_entry.problems(key, entry, guests=[*disk_users.guest_names(_conn()), *(planned or [])])


def check_pool(name, entry):
    """
    Every problem with the pillar ``xen:pools`` entry ``name``, each named by
    its key path; ``[]`` when none. Reads nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.check_pool images '{path: /var/lib/xen/images}'
    """
    return pools.entry_problems(name, entry)


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


@saltglue.plain_errors
def pool_plan(name, type="dir", path=None, vg=None, autostart=True):
    """
    What ``pool_define`` would change for this pool, as ``{key: {old, new}}``;
    an error when the pool exists with another type, path or volume group.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_disk.pool_plan images path=/var/lib/xen/images
    """
    return pools.plan_on(_conn(), pools.checked_spec(name, type, path, vg, autostart))


@saltglue.plain_errors
def pool_define(name, type="dir", path=None, vg=None, autostart=True):
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
    spec = pools.checked_spec(name, type, path, vg, autostart)
    conn = _conn()
    changes = pools.plan_on(conn, spec)
    return pools.apply(conn, spec, changes) if changes else {}
