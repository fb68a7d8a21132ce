"""Moving a guest between hosts: its definition handed over (shut off), or live migration.

Each function runs on one host. A cold move of a shut-off guest is three calls:
:func:`definition` on the source (persistent XML, UUID, state, autostart mark),
:func:`take_over` on the target (every check named, then the guest is defined
there with its autostart mark), :func:`let_go` on the source (the definition
removed; disks are never touched). :func:`migrate` moves a running guest live
through libvirt, defining it on the target and removing it from the source.
The master carries out a planned move through these calls
(:func:`saltext_xen.fleet.plans.carry_out`).
"""

import os

import libvirt

from saltext_xen.core.errors import XenError
from saltext_xen.fleet import facts as fleet_facts
from saltext_xen.fleet import placement
from saltext_xen.guests import domain_xml, lifecycle

LIVE_FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
DEFAULT_MIGRATE_URI = "xen+ssh://{target}/system"


def _libvirt(what, exc):
    return XenError(f"{what}: {exc.get_error_message()}")


def definition(conn, name):
    """``{"name", "uuid", "state", "autostart", "xml"}`` of guest ``name`` (its persistent XML)."""
    dom = lifecycle.lookup(conn, name)
    try:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
        return {
            "name": name,
            "uuid": dom.UUIDString(),
            "state": lifecycle.state_name(dom.state()[0]),
            "autostart": bool(dom.autostart()) if dom.isPersistent() else False,
            "xml": dom.XMLDesc(flags),
        }
    except libvirt.libvirtError as exc:
        raise _libvirt(f"cannot read guest '{name}'", exc) from None


def problems(found, spec, path_exists=os.path.exists):
    """Why a host (its ``found`` facts, :func:`saltext_xen.fleet.facts.read`) cannot take the guest
    of ``spec`` (:func:`domain_xml.parse`): each failed check named by its key; ``[]`` when it can."""
    name, guests = spec["name"], found.get("guests") or {}
    host = placement.Host("here", found)
    wrong = []
    if name in guests:
        wrong.append(f"name: {name} is already defined here")
    wrong += [
        f"uuid: {spec['uuid']} is guest {other}'s here"
        for other, record in guests.items()
        if spec["uuid"] and other != name and str(record.get("uuid", "")).lower() == spec["uuid"].lower()
    ]
    owners = {mac.lower(): other for other, record in guests.items() for mac in record.get("macs") or ()}
    for nic in spec["nics"]:
        mac = (nic["mac"] or "").lower()
        if mac in owners:
            wrong.append(f"mac: {mac} is used by {owners[mac]} here")
        if nic["bridge"] and nic["bridge"] not in host.bridges:
            unknown = "" if host.bridges_known else " (the host's bridges could not be read)"
            wrong.append(f"bridge: {nic['bridge']} is missing here{unknown}")
        if nic["network"] and nic["network"] not in host.networks:
            wrong.append(f"network: libvirt network {nic['network']} is missing or not active here")
    wrong += [
        f"disk: {disk['source']} is missing here"
        for disk in spec["disks"]
        if disk["source"] and disk["device"] == "disk" and not path_exists(disk["source"])
    ]
    if spec["memory"] > host.room:
        wrong.append(f"memory: {name} needs {spec['memory']} MiB, the host has {host.room} MiB free for guests")
    return wrong


def take_over(conn, xml, autostart=False, test=False, runner=None, path_exists=os.path.exists):
    """Define the guest of ``xml`` on this host, marked autostart when ``autostart``, after checking
    that it can (:func:`problems`; all failures at once in one XenError). ``test``: check only.
    Returns ``{name: {"old": "absent", "new": "shutoff", "autostart": bool}}``.
    """
    spec = domain_xml.parse(xml)
    wrong = problems(fleet_facts.read(conn, runner=runner), spec, path_exists)
    if wrong:
        raise XenError(f"this host cannot take {spec['name']}: " + "; ".join(wrong))
    changes = {spec["name"]: {"old": "absent", "new": "shutoff", "autostart": bool(autostart)}}
    if test:
        return changes
    try:
        dom = conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        raise _libvirt(f"cannot define {spec['name']}", exc) from None
    try:
        if autostart:
            dom.setAutostart(1)
    except libvirt.libvirtError as exc:
        try:
            dom.undefine()
        except libvirt.libvirtError:
            raise _libvirt(f"{spec['name']} is defined here but not marked autostart", exc) from None
        raise _libvirt(f"{spec['name']} was not taken over: cannot mark it autostart", exc) from None
    return changes


def let_go(conn, name, uuid=None, test=False):
    """Remove the definition of shut-off guest ``name`` from this host, its disks untouched;
    refused for a guest that runs, or whose UUID is not ``uuid`` (when given).
    Returns ``{name: {"old": state, "new": "absent"}}``."""
    dom = lifecycle.lookup(conn, name)
    try:
        state, own = lifecycle.state_name(dom.state()[0]), dom.UUIDString()
        if uuid is not None and own.lower() != str(uuid).lower():
            raise XenError(f"{name} here has UUID {own}, not {uuid}: it is another guest; left as it is")
        if dom.isActive():
            raise XenError(f"{name} is {state} here: shut it down first, or migrate it live; left as it is")
        if not test:
            dom.undefine()
    except libvirt.libvirtError as exc:
        raise _libvirt(f"cannot undefine {name}", exc) from None
    return {name: {"old": state, "new": "absent"}}


def migrate(conn, name, target, uri=DEFAULT_MIGRATE_URI):
    """Move running guest ``name`` live to host ``target`` (libvirt ``migrateToURI3`` to ``uri``,
    ``{target}`` filled in): defined there, removed here. Returns ``{name: {"old", "new"}}``."""
    dom = lifecycle.lookup(conn, name)
    dest = uri.format(target=target)
    try:
        if not dom.isActive():
            raise XenError(f"{name} is not running: move its definition instead (salt-run xen.migrate)")
        dom.migrateToURI3(dest, {}, LIVE_FLAGS)
    except libvirt.libvirtError as exc:
        raise _libvirt(f"live migration of {name} to {dest} failed (libvirt keeps it here then)", exc) from None
    return {name: {"old": "running here", "new": f"running on {target}"}}
