"""States for guest disks: images and LVs, attachment, partitions, filesystems, moves.

The tutorial's 2 TB disk for newvm, partitioned GPT and formatted, then the
root disk moved into an LV:

.. code-block:: yaml

    xen-disk-newvm-1-present:
      xen_disk.present:
        - name: /var/lib/xen/images/newvm-1.img
        - size: 2TB

    xen-disk-newvm-1-partitioned:
      xen_disk.partitioned:
        - name: /var/lib/xen/images/newvm-1.img
        - label: gpt
        - partitions:
          - {start: 0, end: 100}
          - {start: 100, end: -1}

    xen-disk-newvm-1-part1-formatted:
      xen_disk.formatted:
        - name: /var/lib/xen/images/newvm-1.img
        - partition: 1
        - fs_type: ext3

    xen-disk-newvm-1-attached:
      xen_disk.attached:
        - name: /var/lib/xen/images/newvm-1.img
        - guest: newvm
        - target: xvdb

    xen-disk-newvm-xvda-moved:
      xen_disk.moved:
        - name: newvm
        - disk: xvda
        - to: /dev/vol0/lv_for_newvm
        - shutdown: true

Nothing is deleted, shrunk, overwritten or repartitioned unless a flag says so
(``delete: true``, ``force: true``, ``remove_source: true``).
"""

from salt.exceptions import CommandExecutionError

from saltext_xen.core import connection, state_pattern
from saltext_xen.core.errors import XenError
from saltext_xen.disks import disk_image, disk_parts, pools
from saltext_xen.guests import guest_spec

__virtualname__ = "xen_disk"


def __virtual__():
    if not connection.available():
        return False, f"xen_disk: {connection.MISSING_REASON}"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _fail(ret, problems):
    ret["result"] = False
    ret["comment"] = "\n".join(problems) if isinstance(problems, list) else str(problems)
    return ret


def _unknown(kwargs):
    return [f"{key}: unknown argument" for key in sorted(kwargs) if not key.startswith("__")]


def _test():
    return bool(__opts__.get("test"))


def _conclude(ret, changes, **how):
    """Hand the planned ``changes`` to the shared state ending (nothing to do / test=True / apply)."""
    return state_pattern.conclude(ret, changes, test=_test(), errors=(CommandExecutionError,), **how)


# --------------------------------------------------------------------------- present / absent
def present(name, size, format="raw", allocation="sparse", **kwargs):  # pylint: disable=redefined-builtin
    """
    The image file (or LV, for ``/dev/VG/LV``) ``name`` exists and is at least
    ``size`` big (MiB, or like ``2TB``, ``10G``). A missing one is created
    (sparse in constant time, or ``allocation: full``); a smaller one is grown;
    a bigger one is left alone (never shrunk), an existing one never replaced.

    .. code-block:: yaml

        xen-disk-newvm-1-present:
          xen_disk.present:
            - name: /var/lib/xen/images/newvm-1.img
            - size: 2TB

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.present /var/lib/xen/images/newvm-1.img size=2TB
    """
    ret = _ret(name)
    problems = _unknown(kwargs)
    wanted = None
    try:
        wanted = disk_image.parse_size(size)
    except ValueError as exc:
        problems.append(f"size: {exc}")
    if format not in disk_image.FORMATS:
        problems.append(f"format: expected one of {', '.join(disk_image.FORMATS)}, got {format!r}")
    if allocation not in disk_image.ALLOCATIONS:
        problems.append(f"allocation: expected sparse or full, got {allocation!r}")
    if not str(name).startswith("/"):
        problems.append(f"name: expected an absolute path, got {name!r}")
    if guest_spec.is_block(name) and format != "raw":
        problems.append(f"format: an LV holds raw data, got {format!r}")
    if problems:
        return _fail(ret, problems)
    try:
        cur = __salt__["xen_disk.info"](name)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    human = disk_image.human
    if not cur["exists"]:
        made = f"({human(wanted)}, {format}, {allocation})"

        def create():
            __salt__["xen_disk.create"](name, f"{wanted}b", format=format, allocation=allocation)
            return f"{name} was created {made}"

        return _conclude(
            ret,
            {"size": {"old": None, "new": wanted}, "format": {"old": None, "new": format}},
            would=f"{name} would be created {made}",
            apply=create,
        )
    if cur["format"] != format:
        return _fail(ret, f"{name} exists as {cur['format']}, not {format}; it is not converted or replaced")

    def grow():
        grown = __salt__["xen_disk.grow"](name, f"{wanted}b", allocation=allocation)
        live = "; ".join(f"{g} {how}" for g, how in grown["live"].items())
        return (
            {"size": {"old": grown["old"], "new": grown["new"]}},
            f"{name} grew from {human(grown['old'])} to {human(grown['new'])}" + (f"; {live}" if live else ""),
        )

    return _conclude(
        ret,
        {} if cur["size"] >= wanted else {"size": {"old": cur["size"], "new": wanted}},
        unchanged=f"{name} is already there ({human(cur['size'])}, at least {human(wanted)})",
        would=f"{name} would grow from {human(cur['size'])} to {human(wanted)}",
        apply=grow,
    )


def absent(name, delete=False, **kwargs):
    """
    The image file or LV ``name`` is gone. Its data is destroyed, so this only
    acts with ``delete: true``; and never while a guest definition uses it.

    .. code-block:: yaml

        xen-disk-old-absent:
          xen_disk.absent:
            - name: /var/lib/xen/images/old.img
            - delete: true

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.absent /var/lib/xen/images/old.img delete=True
    """
    ret = _ret(name)
    problems = _unknown(kwargs)
    if problems:
        return _fail(ret, problems)
    try:
        exists = __salt__["xen_disk.info"](name)["exists"]
        if exists and delete is not True:
            return _fail(ret, f"{name} exists; removing it destroys its data, so set delete: true to do it")
        users = __salt__["xen_disk.users"](name) if exists else []
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    if users:
        names = ", ".join(f"{g} ({t})" for g, t, _ in users)
        return _fail(ret, f"{name} is still used by {names}; detach it before removing it")

    def delete_it():
        __salt__["xen_disk.delete"](name, delete=True)
        return f"{name} was deleted"

    return _conclude(
        ret,
        {name: {"old": "present", "new": "deleted"}} if exists else {},
        unchanged=f"{name} is already absent",
        would=f"{name} would be deleted",
        apply=delete_it,
    )


# --------------------------------------------------------------------------- attached / detached
def _attach_plan(name, guest, target, disks):
    """(target, changes) for attaching ``name``; raises XenError when the target is taken."""
    cfg, live = disks["config"], disks["live"]
    if target is None:
        for where in (cfg, live or {}):
            for tgt, disk in where.items():
                if disk["source"] == name:
                    target = tgt
                    break
            if target:
                break
    if target is None:
        used = set(cfg) | set(live or {})
        index = 0
        while guest_spec.target_name("xvd", index) in used:
            index += 1
        target = guest_spec.target_name("xvd", index)
    changes = {}
    for scope, have in (("config", cfg), ("live", live)):
        if have is None:
            continue
        cur = have.get(target)
        if cur is not None and cur["source"] != name:
            raise XenError(
                f"{guest} already has {cur['source']} as {target} ({scope}); detach it first or pick another target"
            )
        if cur is None:
            changes[scope] = True
    return target, changes


def attached(name, guest, target=None, format=None, readonly=False, live=True, **kwargs):  # pylint: disable=redefined-builtin
    """
    Disk ``name`` (an image or block device path) is attached to ``guest``, in
    its persistent definition and, when it runs, live: the tutorial's second
    entry in ``disk = [...]``. ``target`` (``xvdb``, ``sda``) defaults to the
    target it already has, else the first free ``xvdX``.

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
    ret = _ret(name)
    data = {"source": name, "readonly": readonly}
    if target is not None:
        data["target"] = target
    if format is not None:
        data["format"] = format
    _, problems = guest_spec.validate_disk(data, "disk")
    problems = list(problems) + _unknown(kwargs)
    if problems:
        return _fail(ret, problems)
    try:
        exists = __salt__["xen_disk.info"](name)["exists"]
        if not exists and not _test():
            return _fail(ret, f"{name} does not exist; create it first (xen_disk.present)")
        disks = __salt__["xen_disk.guest_disks"](guest)
        target, todo = _attach_plan(name, guest, target, disks)
    except (CommandExecutionError, XenError) as exc:
        return _fail(ret, str(exc))
    if not live:
        todo.pop("live", None)
    key = target if "config" in todo else f"{target} (live)"
    changes = {key: {"old": None, "new": name}} if todo else {}

    def attach():
        done = __salt__["xen_disk.attach"](
            guest, name, target=target, format=format, readonly=readonly, live=live, config=True
        )
        applied = done.get(target, {}).get("applied", [])
        pending = done.get(target, {}).get("pending")
        made = changes
        if "config" not in applied:
            made = {f"{target} (live)": {"old": None, "new": name}} if applied else {}
        if not applied:
            return made, (
                f"{name} is in {guest}'s definition as {target}; the running guest could not be "
                "changed live and sees it after its next start"
            )
        return made, f"{name} was attached to {guest} as {target} ({', '.join(applied)})" + (
            f"; {pending}" if pending else ""
        )

    return _conclude(
        ret,
        changes,
        unchanged=f"{name} is already attached to {guest} as {target}",
        would=f"{name} would be attached to {guest} as {target} ({', '.join(sorted(todo))})",
        apply=attach,
    )


def detached(name, guest, live=True, **kwargs):
    """
    Disk ``name`` (a target like ``xvdb`` or the image path) is not attached
    to ``guest``, persistently and live. The image itself is kept.

    .. code-block:: yaml

        xen-disk-newvm-xvdb-detached:
          xen_disk.detached:
            - name: xvdb
            - guest: newvm

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.detached xvdb guest=newvm
    """
    ret = _ret(name)
    problems = _unknown(kwargs)
    if problems:
        return _fail(ret, problems)
    try:
        disks = __salt__["xen_disk.guest_disks"](guest)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    found = {}
    for scope in ("config", "live"):
        have = disks[scope]
        if have is None or (scope == "live" and not live):
            continue
        cur = have.get(name) or next((d for d in have.values() if d["source"] == name), None)
        if cur is not None:
            found[scope] = cur
    cur = found.get("config") or found.get("live") or {"target": name, "source": None}
    target = cur["target"]
    key = target if "config" in found else f"{target} (live)"
    changes = {key: {"old": cur["source"], "new": None}} if found else {}

    def detach():
        done = __salt__["xen_disk.detach"](guest, name, live=live, config=True)
        info = done.get(target, {})
        comment = f"{target} was detached from {guest} ({', '.join(info.get('applied', [])) or 'nothing'})"
        return changes if info.get("applied") else {}, comment + (f"; {info['pending']}" if info.get("pending") else "")

    return _conclude(
        ret,
        changes,
        unchanged=f"{name} is already not attached to {guest}",
        would=f"{target} would be detached from {guest} ({', '.join(sorted(found))})",
        apply=detach,
    )


# --------------------------------------------------------------------------- partitions / filesystems
def partitioned(name, label="gpt", partitions=None, force=False, **kwargs):
    """
    Image or block device ``name`` has the wanted partition table, as the
    tutorial's ``parted``: ``mklabel gpt``, then ``mkpart primary START END``
    per entry (MB, or sizes like ``2TB``; ``end: -1`` is the rest of the
    disk). A disk with another table or a filesystem is only repartitioned
    with ``force: true``. Default: one partition over the whole disk.

    .. code-block:: yaml

        xen-disk-newvm-1-partitioned:
          xen_disk.partitioned:
            - name: /var/lib/xen/images/newvm-1.img
            - label: gpt
            - partitions:
              - {start: 0, end: 100}
              - {start: 100, end: 200}
              - {start: 200, end: -1}

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.partitioned /var/lib/xen/images/newvm-1.img label=gpt partitions='[{start: 0, end: 100}, {start: 100, end: -1}]'
    """
    ret = _ret(name)
    wanted_parts = partitions if partitions is not None else [{"start": 0, "end": -1}]
    label, wanted, problems = disk_parts.validate(label, wanted_parts)
    problems += _unknown(kwargs)
    if problems:
        return _fail(ret, problems)
    after = f"{label} with {len(wanted)} partition{'s' if len(wanted) != 1 else ''}"
    if _test() and not __salt__["xen_disk.info"](name)["exists"]:
        return state_pattern.predicted(
            ret,
            {name: {"old": "no partition table", "new": after}},
            f"{name} does not exist yet; once made it would be partitioned: {after}",
        )
    try:
        listing = __salt__["xen_disk.partitions"](name)
        as_wanted = disk_parts.matches(listing, label, wanted)
        probe = None if as_wanted else __salt__["xen_disk.filesystem"](name)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    before = None if as_wanted else disk_parts.describe(listing)
    if not as_wanted and not probe["blank"] and not force:
        return _fail(ret, f"{name} already has {before}; it is not repartitioned unless force: true")

    def partition():
        done = __salt__["xen_disk.partition"](name, label, wanted_parts, force=bool(force))
        return done, f"{name} was partitioned: {after}"

    return _conclude(
        ret,
        {} if as_wanted else {name: {"old": before, "new": after}},
        unchanged=f"{name} already has the wanted {label} table",
        would=f"{name} would be partitioned: {after}",
        apply=partition,
    )


def formatted(name, fs_type="ext4", partition=None, force=False, label=None, **kwargs):
    """
    Image/block device ``name`` (or its partition number ``partition``)
    holds a ``fs_type`` filesystem (ext2, ext3, ext4, xfs), like the
    tutorial's ``mkfs.ext3``. Another filesystem is only replaced with
    ``force: true``.

    .. code-block:: yaml

        xen-disk-newvm-1-part1-formatted:
          xen_disk.formatted:
            - name: /var/lib/xen/images/newvm-1.img
            - partition: 1
            - fs_type: ext3

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.formatted /var/lib/xen/images/newvm-1.img partition=1 fs_type=ext3
    """
    ret = _ret(name)
    problems = _unknown(kwargs)
    if fs_type not in disk_parts.FILESYSTEMS:
        problems.append(f"fs_type: expected one of {', '.join(disk_parts.FILESYSTEMS)}, got {fs_type!r}")
    if partition is not None and (isinstance(partition, bool) or not str(partition).isdigit() or int(partition) < 1):
        problems.append(f"partition: expected a partition number like 1, got {partition!r}")
    if problems:
        return _fail(ret, problems)
    where = f"{name}:{partition}" if partition else name
    if _test() and not __salt__["xen_disk.info"](name)["exists"]:
        return state_pattern.predicted(
            ret,
            {where: {"old": None, "new": fs_type}},
            f"{name} does not exist yet; once made {where} would be formatted {fs_type}",
        )
    try:
        probe = __salt__["xen_disk.filesystem"](name, partition=partition)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    if probe.get("missing"):
        return _fail(ret, f"{name} has no partition {partition} ({probe['table']})")
    current = probe["fstype"]
    if current and current != fs_type and not force:
        return _fail(ret, f"{where} already holds {current}; it is not reformatted unless force: true")
    if not partition and probe["table"] not in ("no partition table",) and not current and not force:
        return _fail(
            ret, f"{name} has {probe['table']}; format a partition, or set force: true to format the whole disk"
        )

    def make_fs():
        done = __salt__["xen_disk.format"](name, fs_type, partition=partition, force=bool(force), label=label)
        return done, f"{where} was formatted {fs_type}"

    return _conclude(
        ret,
        {} if current == fs_type else {where: {"old": current, "new": fs_type}},
        unchanged=f"{where} already holds {fs_type}",
        would=f"{where} would be formatted {fs_type}",
        apply=make_fs,
    )


# --------------------------------------------------------------------------- moved
def moved(name, disk, to, shutdown=False, remove_source=False, timeout=120, force=False, format=None, **kwargs):  # pylint: disable=invalid-name,redefined-builtin
    """
    Guest ``name``'s disk ``disk`` (target like ``xvda``, or its current path)
    lives at ``to``: an image file or an LV (``/dev/VG/LV``, created at least
    as large as the source when missing). The guest must be shut off, or
    ``shutdown: true`` stops it and starts it again. The copy skips holes and
    is verified before the definition is switched; the source is kept unless
    ``remove_source: true``. An existing device holding a filesystem or
    partition table is only written over with ``force: true``. A failure
    leaves the guest as it was.

    ``format`` (``raw`` or ``qcow2``) is the format the disk has at ``to``: by
    default a file keeps its format and an LV holds raw data (a qcow2 image
    moved into an LV is converted). A change of format is a ``qemu-img
    convert`` checked with ``qemu-img compare``, shown as ``format`` in the
    changes; an LV cannot hold qcow2.

    .. code-block:: yaml

        xen-disk-newvm-xvda-moved:
          xen_disk.moved:
            - name: newvm
            - disk: xvda
            - to: /dev/vol0/lv_for_newvm
            - shutdown: true

        xen-disk-newvm-xvda-back-to-qcow2:
          xen_disk.moved:
            - name: newvm
            - disk: xvda
            - to: /var/lib/xen/images/newvm.qcow2
            - format: qcow2

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.moved newvm disk=xvda to=/dev/vol0/lv_for_newvm shutdown=True
        salt '*' state.single xen_disk.moved newvm disk=xvda to=/var/lib/xen/images/newvm.img format=raw
    """
    ret = _ret(name)
    problems = _unknown(kwargs)
    if not isinstance(to, str) or not to.startswith("/"):
        problems.append(f"to: expected an absolute path of a file or LV, got {to!r}")
    if format not in (None, "raw", "qcow2"):
        problems.append(f"format: expected raw or qcow2, got {format!r}")
    elif format == "qcow2" and isinstance(to, str) and guest_spec.is_block(to):
        problems.append(f"format: {to} is a block device (LV): it holds raw data, not qcow2")
    if problems:
        return _fail(ret, problems)
    try:
        step = __salt__["xen_disk.move_plan"](name, disk, to, shutdown=bool(shutdown), force=bool(force), format=format)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    target, source = step["target"], step["source"]
    change = {"old": source, "new": to}
    if step["convert"]:
        change["format"] = {"old": step["format"], "new": step["dest_format"]}
    if remove_source:
        change["source_removed"] = True
    if step["stop"]:
        change["restarted"] = True
    how = []
    if step["make_block"]:
        how.append(f"creating {to}")
    if step["convert"]:
        how.append(f"converting {step['format']} to {step['dest_format']}")
    if step["stop"]:
        how.append(f"stopping {name} and starting it again")
    how = f" ({', '.join(how)})" if how else ""

    def move():
        done = __salt__["xen_disk.move"](
            name,
            disk,
            to,
            shutdown=bool(shutdown),
            remove_source=bool(remove_source),
            timeout=timeout,
            force=bool(force),
            format=format,
        )
        got = done.get(target, {})
        made = {k: got[k] for k in ("old", "new", "format", "source_removed", "restarted") if k in got}
        converted = f", {got['format']['old']} converted to {got['format']['new']}" if "format" in got else ""
        return (
            {target: made},
            f"{target} of {name} moved from {source} to {to} (copied by {got.get('copied')}{converted}, verified)",
        )

    return _conclude(
        ret,
        {} if step["nothing_to_do"] else {target: change},
        unchanged=f"{target} of {name} is already at {to}",
        would=f"{target} of {name} would move from {source} to {to}{how}",
        apply=move,
        failed=lambda exc: f"{exc}; {name} was left as it was",
    )


# --------------------------------------------------------------------------- pools
def pool_present(name, type="dir", path=None, vg=None, autostart=True, **kwargs):  # pylint: disable=redefined-builtin
    """
    libvirt storage pool ``name`` is defined, running and (by default)
    autostarted: a directory of images, or an existing volume group, so that
    ``virsh vol-list`` and virt-manager see the disks. A pool defined with
    another type, path or volume group is reported, not redefined.

    .. code-block:: yaml

        xen-disk-pool-images-present:
          xen_disk.pool_present:
            - name: images
            - path: /var/lib/xen/images

        xen-disk-pool-vol0-present:
          xen_disk.pool_present:
            - name: vol0
            - type: logical

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_disk.pool_present images path=/var/lib/xen/images
    """
    ret = _ret(name)
    data = {"type": type, "autostart": autostart}
    data.update({k: v for k, v in (("path", path), ("vg", vg)) if v is not None})
    _, problems = pools.validate(name, data, path="pool")
    problems += _unknown(kwargs)
    if problems:
        return _fail(ret, problems)
    try:
        changes = __salt__["xen_disk.pool_plan"](name, type=type, path=path, vg=vg, autostart=autostart)
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))

    def define():
        done = __salt__["xen_disk.pool_define"](name, type=type, path=path, vg=vg, autostart=autostart)
        return done, f"pool {name} was changed: {', '.join(sorted(done))}"

    return _conclude(
        ret,
        changes,
        unchanged=f"pool {name} is already as wanted",
        would=f"pool {name} would be changed: {', '.join(sorted(changes))}",
        apply=define,
    )
