"""What one host tells the fleet planner, read in one libvirt pass.

:func:`read` returns a plain dict (memory in MiB)::

    {"hypervisor": "Xen", "xen_version": "4.17.3", "cpus": 8,
     "memory": {"total", "free", "dom0", "reserved", "used", "available"},
     "guests": {name: {"uuid", "state", "active", "autostart", "persistent", "memory",
                       "vcpus", "macs", "bridges", "networks", "disks": [{"path", "exists"}]}},
     "bridges": [...] or None, "networks": {name: {"active", "bridge"}},
     "pools": {name: {"type", "path", "active"}}, "errors": [...]}

``reserved`` is what dom0 keeps for itself: the pillar's ``xen:host:dom0_mem``
when given, else dom0's actual memory (0 where there is no dom0, on the test
driver). ``used`` is the memory of the guests that hold some (running, paused);
``available`` is what the planner may still give to guests: ``total - reserved -
used``, and never more than the hypervisor's own free memory on Xen.
"""

import os
import shutil

import libvirt

from saltext_xen.core.errors import XenError
from saltext_xen.disks import pools
from saltext_xen.guests import domain_xml, lifecycle
from saltext_xen.host import xl
from saltext_xen.networks import bridges, libvirt_networks

MIB = 1024 * 1024
#: states in which a guest holds memory on its host
ACTIVE_STATES = ("running", "paused", "shutting down", "suspended", "nostate")


def _guest(dom, hypervisor, path_exists):
    """One guest's record, or ``("dom0", MiB)`` for Xen's Domain-0."""
    code, maxmem_kib, mem_kib, vcpus, _cpu = dom.info()
    if hypervisor == "Xen" and dom.ID() == 0:
        return "dom0", mem_kib // 1024
    spec = domain_xml.parse(dom.XMLDesc(0))
    state = lifecycle.state_name(code)
    active = state in ACTIVE_STATES
    persistent = bool(dom.isPersistent())
    disks = [
        {"path": disk["source"], "exists": bool(path_exists(disk["source"]))}
        for disk in spec["disks"]
        if disk["source"]
    ]
    return dom.name(), {
        "uuid": dom.UUIDString(),
        "state": state,
        "active": active,
        "autostart": bool(dom.autostart()) if persistent else False,
        "persistent": persistent,
        "memory": (mem_kib // 1024) if active else spec["memory"],
        "maxmem": maxmem_kib // 1024,
        "vcpus": vcpus if active else spec["vcpus"],
        "macs": sorted(nic["mac"] for nic in spec["nics"] if nic["mac"]),
        "bridges": sorted({nic["bridge"] for nic in spec["nics"] if nic["bridge"]}),
        "networks": sorted({nic["network"] for nic in spec["nics"] if nic["network"]}),
        "disks": disks,
    }


def _pools(conn, errors):
    found = {}
    try:
        for pool in conn.listAllStoragePools(0):
            spec = pools.parse(pool.XMLDesc(0), autostart=pool.autostart(), active=pool.isActive())
            found[spec["name"]] = {"type": spec["type"], "path": spec["path"], "active": spec["active"]}
    except libvirt.libvirtError as exc:
        errors.append(f"cannot list storage pools: {exc.get_error_message()}")
    return found


def _networks(conn, errors):
    try:
        listed = libvirt_networks.list_all(conn)
    except XenError as exc:
        errors.append(str(exc))
        return {}
    return {name: {"active": info["active"], "bridge": info["bridge"]} for name, info in listed.items()}


def _bridges(runner, netns, errors):
    if runner is None:
        return None
    try:
        return sorted(bridges.bridges(bridges.read(runner, netns)))
    except (XenError, ValueError, OSError) as exc:
        errors.append(f"cannot read the host's bridges: {exc}")
        return None


def _xen_version(hypervisor, run, errors):
    if hypervisor != "Xen" or run is None or shutil.which("xl") is None:
        return None
    try:
        info = xl.info(run)
    except XenError as exc:
        errors.append(str(exc))
        return None
    major, minor = info.get("xen_major"), info.get("xen_minor")
    if major is None or minor is None:
        return info.get("xen_version")
    return f"{major}.{minor}{info.get('xen_extra', '')}"


def read(conn, run=None, runner=None, netns=None, dom0_mem=None, path_exists=os.path.exists):
    """This host's capacity facts (see the module's docstring) in one pass.

    ``run`` runs ``xl`` (Xen's version), ``runner`` runs ``ip`` (the host's
    bridges, inside ``netns`` when given); either may be None to skip it.
    ``dom0_mem`` (MiB) is the pillar's reservation for dom0.
    """
    errors = []
    _model, total, cpus, *_rest = conn.getInfo()
    hypervisor = conn.getType()
    try:
        free = conn.getFreeMemory() // MIB
    except libvirt.libvirtError:
        free = None
    guests, dom0 = {}, None
    for dom in conn.listAllDomains():
        try:
            name, record = _guest(dom, hypervisor, path_exists)
        except libvirt.libvirtError:
            continue  # the guest went away while we read it
        if name == "dom0" and not isinstance(record, dict):
            dom0 = record
        else:
            guests[name] = record
    reserved = int(dom0_mem) if dom0_mem is not None else (dom0 or 0)
    used = sum(g["memory"] for g in guests.values() if g["active"])
    available = max(0, total - reserved - used)
    if hypervisor == "Xen" and free is not None:
        available = min(available, free)
    return {
        "hypervisor": hypervisor,
        "xen_version": _xen_version(hypervisor, run, errors),
        "cpus": cpus,
        "memory": {
            "total": total,
            "free": free,
            "dom0": dom0,
            "reserved": reserved,
            "used": used,
            "available": available,
        },
        "guests": dict(sorted(guests.items())),
        "bridges": _bridges(runner, netns, errors),
        "networks": _networks(conn, errors),
        "pools": _pools(conn, errors),
        "errors": errors,
    }


def guests(conn):
    """``{name: {"uuid", "state"}}`` of this host's guests (Domain-0 left out), in one pass:
    what the host publishes through the Salt mine so others never start a second copy."""
    hypervisor = conn.getType()
    found = {}
    for dom in conn.listAllDomains():
        try:
            if hypervisor == "Xen" and dom.ID() == 0:
                continue
            found[dom.name()] = {"uuid": dom.UUIDString(), "state": lifecycle.state_name(dom.state()[0])}
        except libvirt.libvirtError:
            continue  # the guest went away while we read it
    return dict(sorted(found.items()))
