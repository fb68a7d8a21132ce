"""States for guest disks: images and LVs, attachment, partitions, filesystems, moves, pools.

Each state checks its arguments, reads what is through ``xen_disk.*``, has the
library work out the changes (``{key: {"old": .., "new": ..}}``) and hands them
to ``state_pattern.conclude``. Nothing is deleted, shrunk, overwritten or
repartitioned unless a flag says so (``delete: true``, ``force: true``,
``remove_source: true``). ``docs/disks.md`` maps the tutorial's commands to them.

Every state takes ``pillar_path``, the pillar entry its arguments come from
(``xen:disks:newvm-1``, ``xen:pools:images``); given, it names each problem
(``xen:disks:newvm-1:size: expected ...``) and error (``xen:disks:newvm-1: ...``).
"""

from salt.exceptions import CommandExecutionError

from saltext_xen.core import connection, errors, state_pattern
from saltext_xen.disks import disk_image, disk_parts, pools, volumes
from saltext_xen.guests import devices, disk_move, disk_users, guest_spec

__virtualname__ = "xen_disk"

# what a read through xen_disk.* or a library plan raises when the state cannot go on
_READ_ERRORS = (CommandExecutionError, errors.XenError)


def __virtual__():
    if not connection.available():
        return False, f"xen_disk: {connection.MISSING_REASON}"
    return __virtualname__


def _test():
    return bool(__opts__.get("test"))


def _conclude(ret, changes, path, **how):
    """Hand the planned ``changes`` to the shared state ending (nothing to do / test=True / apply)."""
    return state_pattern.conclude(ret, changes, test=_test(), errors=_READ_ERRORS, path=path, **how)


_guarded = state_pattern.guarded(_READ_ERRORS)


@_guarded
def present(name, size, format="raw", allocation="sparse", pillar_path=None, **kwargs):
    """
    Image file or LV (``/dev/VG/LV``) ``name`` exists, at least ``size`` big (MiB, or
    like ``2TB``): created if missing (sparse, or ``allocation: full``), grown if
    smaller, never shrunk or replaced.

    .. code-block:: yaml

        xen-disk-newvm-1-present:
          xen_disk.present:
            - name: /var/lib/xen/images/newvm-1.img
            - size: 2TB

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.present /var/lib/xen/images/newvm-1.img size=2TB
    """
    wanted, problems = volumes.validate(name, size, format, allocation)
    ret = state_pattern.checked(name, kwargs, problems)
    cur = __salt__["xen_disk.info"](name)
    changes = volumes.present_changes(name, cur, wanted, format)
    human = disk_image.human
    if not cur["exists"]:
        made = f"({human(wanted)}, {format}, {allocation})"

        def create():
            __salt__["xen_disk.create"](name, f"{wanted}b", format=format, allocation=allocation)
            return f"{name} was created {made}"

        return _conclude(ret, changes, pillar_path, would=f"{name} would be created {made}", apply=create)

    def grow():
        return disk_users.grown_words(__salt__["xen_disk.grow"](name, f"{wanted}b", allocation=allocation))

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"{name} is already there ({human(cur['size'])}, at least {human(wanted)})",
        would=f"{name} would grow from {human(cur['size'])} to {human(wanted)}",
        apply=grow,
    )


@_guarded
def absent(name, delete=False, pillar_path=None, **kwargs):
    """
    Image file or LV ``name`` is gone: only with ``delete: true`` (its data is
    destroyed), and never while a guest definition uses it.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.absent /var/lib/xen/images/old.img delete=True
    """
    ret = state_pattern.checked(name, kwargs)
    exists = __salt__["xen_disk.info"](name)["exists"]
    if exists and delete is not True:
        raise errors.XenError(f"{name} exists; removing it destroys its data, so set delete: true to do it")
    if users := __salt__["xen_disk.users"](name) if exists else []:
        names = ", ".join(f"{g} ({t})" for g, t, _ in users)
        raise errors.XenError(f"{name} is still used by {names}; detach it before removing it")

    def delete_it():
        __salt__["xen_disk.delete"](name, delete=True)
        return f"{name} was deleted"

    return _conclude(
        ret,
        {name: {"old": "present", "new": "deleted"}} if exists else {},
        pillar_path,
        unchanged=f"{name} is already absent",
        would=f"{name} would be deleted",
        apply=delete_it,
    )


@_guarded
def attached(name, guest, target=None, format=None, readonly=False, live=True, pillar_path=None, **kwargs):
    """
    Disk ``name`` (image or block device) is attached to ``guest``, persistently
    and, when it runs, live: a second entry in the tutorial's ``disk = [...]``.
    ``target`` defaults to the one it has, else the first free ``xvdX``.

    .. code-block:: yaml

        xen-disk-newvm-1-attached:
          xen_disk.attached:
            - name: /var/lib/xen/images/newvm-1.img
            - guest: newvm
            - target: xvdb

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.attached /var/lib/xen/images/newvm-1.img guest=newvm target=xvdb
    """
    data = {"source": name, "readonly": readonly}
    data.update({key: value for key, value in (("target", target), ("format", format)) if value is not None})
    ret = state_pattern.checked(name, kwargs, guest_spec.validate_disk(data, "attach" if pillar_path else "disk")[1])
    if not __salt__["xen_disk.info"](name)["exists"] and not _test():
        raise errors.XenError(f"{name} does not exist; create it first (xen_disk.present)")
    target, todo = devices.attach_disk_plan(__salt__["xen_disk.guest_disks"](guest), guest, name, target)
    if not live and devices.LIVE in todo:
        todo.remove(devices.LIVE)
    changes = {devices.disk_change_key(target, todo): {"old": None, "new": name}} if todo else {}

    def attach():
        done = __salt__["xen_disk.attach"](
            guest, name, target=target, format=format, readonly=readonly, live=live, config=True
        )
        return devices.disk_done(done, guest, target, name, "attached")

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"{name} is already attached to {guest} as {target}",
        would=f"{name} would be attached to {guest} as {target} ({', '.join(sorted(todo))})",
        apply=attach,
    )


@_guarded
def detached(name, guest, live=True, pillar_path=None, **kwargs):
    """
    Disk ``name`` (target like ``xvdb`` or image path) is not attached to
    ``guest``, persistently and live; the image is kept.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.detached xvdb guest=newvm
    """
    ret = state_pattern.checked(name, kwargs)
    disks = __salt__["xen_disk.guest_disks"](guest)
    scopes = (devices.CONFIG, devices.LIVE) if live else (devices.CONFIG,)
    found = devices.detach_disk_plan(disks, name, scopes)
    cur = found.get(devices.CONFIG) or found.get(devices.LIVE) or {"target": name, "source": None}
    target = cur["target"]
    changes = {devices.disk_change_key(target, found): {"old": cur["source"], "new": None}} if found else {}

    def detach():
        done = __salt__["xen_disk.detach"](guest, name, live=live, config=True)
        return devices.disk_done(done, guest, target, cur["source"], "detached")

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"{name} is already not attached to {guest}",
        would=f"{target} would be detached from {guest} ({', '.join(sorted(found))})",
        apply=detach,
    )


@_guarded
def partitioned(name, label="gpt", partitions=None, force=False, pillar_path=None, **kwargs):
    """
    Image or block device ``name`` has the wanted table, as the tutorial's
    ``parted mklabel gpt`` + ``mkpart primary START END`` per entry (MB or ``2TB``;
    ``end: -1``: the rest; default one partition over the disk). Another table
    or a filesystem is only replaced with ``force: true``.

    .. code-block:: yaml

        xen-disk-newvm-1-partitioned:
          xen_disk.partitioned:
            - name: /var/lib/xen/images/newvm-1.img
            - label: gpt
            - partitions: [{start: 0, end: 100}, {start: 100, end: -1}]

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.partitioned /var/lib/xen/images/newvm-1.img partitions='[{start: 0, end: -1}]'
    """
    wanted_parts = partitions if partitions is not None else [{"start": 0, "end": -1}]
    label, wanted, problems = disk_parts.validate(label, wanted_parts)
    ret = state_pattern.checked(name, kwargs, disk_parts.path_problems(name) + problems)
    after = disk_parts.describe_wanted(label, wanted)
    if _test() and not __salt__["xen_disk.info"](name)["exists"]:
        return state_pattern.predicted(
            ret,
            {name: {"old": "no partition table", "new": after}},
            f"{name} does not exist yet; once made it would be partitioned: {after}",
        )
    listing = __salt__["xen_disk.partitions"](name)
    same = disk_parts.matches(listing, label, wanted)
    if not same and (users := disk_parts.in_use_problems(name, __salt__["xen_disk.users"](name))):
        raise errors.XenError("\n".join(users))  # a guest's disk: before any talk of force, which does not help
    probe = None if same else __salt__["xen_disk.filesystem"](name)
    changes = disk_parts.table_changes(name, listing, label, wanted, probe, force=force)

    def partition():
        done = __salt__["xen_disk.partition"](name, label, wanted_parts, force=bool(force))
        return done, f"{name} was partitioned: {after}"

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"{name} already has the wanted {label} table",
        would=f"{name} would be partitioned: {after}",
        apply=partition,
    )


@_guarded
def formatted(name, fs_type="ext4", partition=None, force=False, label=None, pillar_path=None, **kwargs):
    """
    Image or block device ``name`` (or its partition number ``partition``) holds
    a ``fs_type`` filesystem (ext2/3/4, xfs), like the tutorial's ``mkfs.ext3``;
    another filesystem is only replaced with ``force: true``.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.formatted /var/lib/xen/images/newvm-1.img partition=1 fs_type=ext3
    """
    ret = state_pattern.checked(name, kwargs, disk_parts.format_problems(fs_type, partition, path=name))
    where = disk_parts.format_where(name, partition)
    if _test() and not __salt__["xen_disk.info"](name)["exists"]:
        return state_pattern.predicted(
            ret,
            {where: {"old": None, "new": fs_type}},
            f"{name} does not exist yet; once made {where} would be formatted {fs_type}",
        )
    probe = __salt__["xen_disk.filesystem"](name, partition=partition)
    if probe["fstype"] != fs_type and (users := disk_parts.in_use_problems(name, __salt__["xen_disk.users"](name))):
        raise errors.XenError("\n".join(users))
    changes = disk_parts.format_changes(name, fs_type, probe, partition=partition, force=force)

    def make_fs():
        done = __salt__["xen_disk.format"](name, fs_type, partition=partition, force=bool(force), label=label)
        return done, f"{where} was formatted {fs_type}"

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"{where} already holds {fs_type}",
        would=f"{where} would be formatted {fs_type}",
        apply=make_fs,
    )


@_guarded
def moved(
    name,
    disk,
    to,
    shutdown=False,
    remove_source=False,
    timeout=120,
    force=False,
    format=None,
    pillar_path=None,
    **kwargs,
):
    """
    Guest ``name``'s disk ``disk`` (target or path) lives at ``to``, an image file
    or LV, moved as ``xen_disk.move`` does (``shutdown``, ``remove_source``,
    ``force``; ``format`` raw/qcow2 at ``to``, a change shown as ``format``).
    A failure leaves the guest as it was.

    .. code-block:: yaml

        xen-disk-newvm-xvda-moved:
          xen_disk.moved:
            - name: newvm
            - disk: xvda
            - to: /dev/vol0/lv_for_newvm
            - shutdown: true

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.moved newvm disk=xvda to=/dev/vol0/lv_for_newvm shutdown=True
        salt '*' state.single xen_disk.moved newvm disk=xvda to=/var/lib/xen/images/newvm.img format=raw
    """
    ret = state_pattern.checked(name, kwargs, disk_move.request_problems(to, format))
    step = __salt__["xen_disk.move_plan"](name, disk, to, shutdown=bool(shutdown), force=bool(force), format=format)
    target, source = step["target"], step["source"]

    def move():
        done = __salt__["xen_disk.move"](name, disk, to, remove_source=bool(remove_source), timeout=timeout, plan=step)
        return disk_move.done_words(step, done)

    return _conclude(
        ret,
        disk_move.planned_changes(step, remove_source=bool(remove_source)),
        pillar_path,
        unchanged=f"{target} of {name} is already at {to}",
        would=f"{target} of {name} would move from {source} to {to}{disk_move.plan_words(step)}",
        apply=move,
        failed=lambda exc: f"{exc}; {name} was left as it was",
    )


@_guarded
def pool_present(name, type="dir", path=None, vg=None, autostart=True, pillar_path=None, **kwargs):
    """
    libvirt storage pool ``name`` (a directory of images, or an existing volume
    group with ``type: logical``) is defined, running and by default autostarted;
    one defined otherwise is reported, not redefined.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.pool_present images path=/var/lib/xen/images
    """
    ret = state_pattern.checked(name, kwargs, pools.spec_of(name, type, path, vg, autostart)[1])
    changes = __salt__["xen_disk.pool_plan"](name, type=type, path=path, vg=vg, autostart=autostart)

    def define():
        done = __salt__["xen_disk.pool_define"](name, type=type, path=path, vg=vg, autostart=autostart)
        return done, f"pool {name} was changed: {', '.join(sorted(done))}"

    return _conclude(
        ret,
        changes,
        pillar_path,
        unchanged=f"pool {name} is already as wanted",
        would=f"pool {name} would be changed: {', '.join(sorted(changes))}",
        apply=define,
    )
