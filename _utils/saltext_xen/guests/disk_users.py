"""Which guests use a disk, and the changes to a used disk that concern them: growing and deleting.

A guest grown a disk under it is told the new size where Xen allows it
(``blockResize``); a disk still in some guest's definition is not deleted.
"""

import libvirt

from saltext_xen.core import commands, protect
from saltext_xen.disks import disk_image, volumes
from saltext_xen.guests import domain_xml, lifecycle


def users(conn, path):
    """Guests whose definition (persistent or live) uses ``path``: ``[[guest, target, running], ...]``.

    The same disk under another name counts (a symlink, a ``/dev/mapper`` alias, a hard link).
    """
    found = []
    for dom in conn.listAllDomains():
        seen = set()
        for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
            for disk in domain_xml.parse(dom.XMLDesc(flags))["disks"]:
                same = disk["source"] == path or protect.used_by(path, [disk["source"]] if disk["source"] else [])
                if same and disk["target"] not in seen:
                    seen.add(disk["target"])
                    found.append([dom.name(), disk["target"], bool(dom.isActive())])
    return found


def guest_names(conn):
    """The names of the guests defined on this host (running or not), sorted."""
    return sorted(dom.name() for dom in conn.listAllDomains())


def in_use(conn):
    """Every disk of every defined guest, running or not: ``{path: [guest, ...]}`` (for ``protect.used_by``)."""
    found = {}
    for dom in conn.listAllDomains():
        for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
            for disk in domain_xml.parse(dom.XMLDesc(flags))["disks"]:
                if disk["source"] and dom.name() not in found.setdefault(disk["source"], []):
                    found[disk["source"]].append(dom.name())
    return found


def tell_running(conn, path, size):
    """Tell the running guests using ``path`` that it is now ``size`` bytes: ``{guest: what happened}``."""
    told = {}
    for name, target, active in users(conn, path):
        if not active:
            continue
        try:
            lifecycle.lookup(conn, name).blockResize(target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            told[name] = "resized live"
        except libvirt.libvirtError as exc:
            told[name] = f"sees the new size after a restart ({exc.get_error_message()})"
    return told


def grow(conn, path, size, allocation="sparse", run=commands.run_local):
    """Grow image file or LV ``path`` to ``size`` bytes and tell the guests using it.

    Returns ``{"path", "old", "new", "live": {guest: what happened}}``.
    Shrinking is refused; so is growing a qcow2 image a running guest uses.
    """
    cur = disk_image.info(path)
    if not cur["exists"]:
        raise disk_image.DiskError(f"cannot grow {path}: it does not exist")
    if cur["kind"] == "block":
        old, new = volumes.extend_lv(path, size, run=run)
    else:
        if cur["format"] == "qcow2" and size > cur["size"]:
            running = [g for g, _, active in users(conn, path) if active]
            if running:
                raise disk_image.DiskError(
                    f"{path} is a qcow2 image in use by running {', '.join(running)}; shut it off to grow it"
                )
        old, new = disk_image.grow(path, size, allocation=allocation, run=run)
    result = {"path": path, "old": old, "new": new, "live": {}}
    if new != old:
        result["live"] = tell_running(conn, path, new)
    return result


def delete(conn, path, run=commands.run_local, delete=True):
    """Delete image file or LV ``path`` unless a guest definition uses it; ``{}`` when it is not there.
    ``delete`` must be True: it says the data may go."""
    if delete is not True:
        raise disk_image.DiskError(f"not deleting {path}: pass delete=True to destroy its data")
    if not disk_image.info(path)["exists"]:
        return {}
    in_use = users(conn, path)
    if in_use:
        names = ", ".join(f"{g} ({t})" for g, t, _ in in_use)
        raise disk_image.DiskError(f"not deleting {path}: still used by {names}; detach it first")
    volumes.remove(conn, path, run=run)
    return {path: {"old": "present", "new": "deleted"}}


def grown_words(grown):
    """``(changes, comment)`` of a :func:`grow` result: the size change and who saw it live."""
    human = disk_image.human
    live = "; ".join(f"{guest} {how}" for guest, how in grown["live"].items())
    return (
        {"size": {"old": grown["old"], "new": grown["new"]}},
        f"{grown['path']} grew from {human(grown['old'])} to {human(grown['new'])}" + (f"; {live}" if live else ""),
    )
