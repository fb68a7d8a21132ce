"""A guest's devices attached and detached, live and in its persistent definition.

The one place where devices of a guest change. ``change`` plugs a device in or
out with one libvirt call for the scopes asked (``live``: the running guest,
``config``: its persistent definition). Drivers without device hot-plug calls
(libvirt's test driver, some Xen setups) cannot do that; then the persistent
definition is edited and defined again, and a live change is either reported
as waiting for the next start (``change`` returns False) or refused.

NICs are attached and detached here; each result says which scopes changed.
"""

import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import macs
from saltext_xen.core.errors import XenError
from saltext_xen.guests import disk_move, domain_xml, guest_spec, lifecycle
from saltext_xen.networks import libvirt_networks

LIVE = "live"
CONFIG = "config"
_SCOPE_FLAGS = {LIVE: libvirt.VIR_DOMAIN_AFFECT_LIVE, CONFIG: libvirt.VIR_DOMAIN_AFFECT_CONFIG}
_UNSUPPORTED = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED)

NO_LIVE = (
    "not applied live: this libvirt driver cannot change devices of a running guest; it takes effect at the next start"
)


def definition(dom):
    """The persistent (inactive) domain XML of ``dom``."""
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def live_definition(dom):
    """The live domain XML of ``dom``, or None when it is not running."""
    return dom.XMLDesc(0) if dom.isActive() else None


def edit_devices(edit):
    """A definition editor (XML text in, XML text out) calling ``edit(devices_element)``."""

    def edited(text):
        root = ET.fromstring(text)
        edit(root.find("devices"))
        return ET.tostring(root, encoding="unicode")

    return edited


def redefine(conn, dom, edit_definition, failed):
    """Define ``dom`` again from its persistent XML passed through ``edit_definition``."""
    try:
        conn.defineXML(edit_definition(definition(dom)))
    except libvirt.libvirtError as exc:
        raise XenError(f"{failed}: {exc.get_error_message()}") from None


def change(conn, dom, verb, xml, scopes, edit_definition, failed, live_may_wait=True):
    """
    Attach or detach (``verb``) the device ``xml`` in ``scopes`` (``LIVE``
    and/or ``CONFIG``) with one libvirt call.

    When the driver has no device hot-plug: a ``CONFIG``-only change edits the
    persistent definition with ``edit_definition`` (XML text in, text out) and
    defines it again; a ``LIVE``-only change returns False (it takes effect at
    the next start) when ``live_may_wait``, else fails; a change of both fails.
    Any failure raises XenError ``"{failed}: <libvirt's message>"``.
    Returns True when done.
    """
    flags = 0
    for scope in scopes:
        flags |= _SCOPE_FLAGS[scope]
    call = dom.attachDeviceFlags if verb == "attach" else dom.detachDeviceFlags
    try:
        call(xml, flags)
        return True
    except libvirt.libvirtError as exc:
        cannot_wait = LIVE in scopes and (CONFIG in scopes or not live_may_wait)
        if exc.get_error_code() not in _UNSUPPORTED or cannot_wait:
            raise XenError(f"{failed}: {exc.get_error_message()}") from None
    if LIVE in scopes:
        return False
    redefine(conn, dom, edit_definition, failed)
    return True


def find_nics(devices, mac=None, bridge=None, network=None):
    """``[(element, mac)]`` of the ``<interface>`` elements under ``devices`` that match."""
    found = []
    for el in devices.findall("interface"):
        mac_el, source = el.find("mac"), el.find("source")
        have_mac = macs.normalise(mac_el.get("address")) if mac_el is not None else None
        if mac is not None and have_mac != macs.normalise(mac):
            continue
        if bridge is not None and (source is None or source.get("bridge") != bridge):
            continue
        if network is not None and (source is None or source.get("network") != network):
            continue
        found.append((el, have_mac))
    return found


def attach_nic(conn, name, data):
    """
    Give guest ``name`` the NIC ``data`` (``bridge``/``network``, ``mac``,
    ``model``, ``script``): live when it runs, and in its definition always.
    A MAC is generated (Xen prefix, unique on the host) when not given.
    Returns ``{"name", "mac", "bridge", "network", "live", "persistent"}``.
    """
    dom = lifecycle.lookup(conn, name)
    nic, problems = guest_spec.validate_nic(data, f"{name}:nic")
    if problems:
        raise XenError("; ".join(problems))
    if nic["network"] and libvirt_networks.lookup(conn, nic["network"]) is None:
        raise XenError(f"no libvirt network named {nic['network']}; define it first (xen_net.network_define)")
    taken = lifecycle.host_macs(conn)
    if nic["mac"] is None:
        nic["mac"] = macs.generate(taken=taken)
    elif nic["mac"] in taken:
        raise XenError(
            f"MAC {nic['mac']} is already used by a guest NIC on this host; pick another or "
            "leave mac out to get a new one"
        )
    xml = domain_xml.nic_xml(nic)
    live = bool(dom.isActive())
    change(
        conn,
        dom,
        "attach",
        xml,
        (CONFIG, LIVE) if live else (CONFIG,),
        edit_devices(lambda devices: devices.append(ET.fromstring(xml))),
        f"could not add the NIC to {name}",
    )
    return {
        "name": name,
        "mac": nic["mac"],
        "bridge": nic["bridge"],
        "network": nic["network"],
        "live": live,
        "persistent": True,
    }


def detach_nic(conn, name, mac=None, bridge=None, network=None):
    """
    Take the NIC of guest ``name`` named by ``mac`` (or the only one on
    ``bridge``/``network``) out: live when it runs, and from its definition.
    Returns ``{"name", "mac", "live", "persistent"}``; ``{}`` when there is no such NIC.
    """
    if mac is None and bridge is None and network is None:
        raise XenError("name the NIC to take out: mac=..., bridge=... or network=...")
    if mac is not None and macs.problem(mac):
        raise XenError(f"mac: {macs.problem(mac)}")
    dom = lifecycle.lookup(conn, name)
    config = ET.fromstring(definition(dom)).find("devices")
    live_xml = live_definition(dom)
    live_devs = ET.fromstring(live_xml).find("devices") if live_xml is not None else None
    in_config = find_nics(config, mac, bridge, network)
    in_live = find_nics(live_devs, mac, bridge, network) if live_devs is not None else []
    macs_found = sorted({m for _el, m in in_config + in_live})
    if not macs_found:
        return {}
    if len(macs_found) > 1:
        raise XenError(f"{name} has several NICs that match: {', '.join(macs_found)}; name one by mac=...")
    the_mac = macs_found[0]

    def drop(devices):
        for el, _m in find_nics(devices, the_mac):
            devices.remove(el)

    done = {"name": name, "mac": the_mac, "live": False, "persistent": False}
    for where, matches, scope in (("live", in_live, LIVE), ("persistent", in_config, CONFIG)):
        if not matches:
            continue
        change(
            conn,
            dom,
            "detach",
            ET.tostring(matches[0][0], encoding="unicode"),
            (scope,),
            edit_devices(drop),
            f"could not take NIC {the_mac} out of {name} ({where})",
            live_may_wait=False,
        )
        done[where] = True
    return done


def disks_of(dom):
    """``(config, live)``: ``{target: disk}`` of the persistent and (None when not running) live definitions."""
    config = {d["target"]: d for d in domain_xml.parse(definition(dom))["disks"]}
    live_xml = live_definition(dom)
    live = {d["target"]: d for d in domain_xml.parse(live_xml)["disks"]} if live_xml is not None else None
    return config, live


def guest_disks(conn, name):
    """Guest ``name``'s disks by target: ``{"config": {..}, "live": {..} or None}``."""
    config, live = disks_of(lifecycle.lookup(conn, name))
    return {"config": config, "live": live}


def free_target(used, prefix="xvd"):
    """The first ``xvdX`` not in ``used``."""
    index = 0
    while guest_spec.target_name(prefix, index) in used:
        index += 1
    return guest_spec.target_name(prefix, index)


def attach_disk_plan(disks, guest, source, target=None, scopes=(CONFIG, LIVE)):
    """``(target, [scope, ...])``: where disk ``source`` goes on ``guest`` and the scopes still without it.

    ``disks`` is :func:`guest_disks`; the target defaults to the one ``source``
    already has, else the first free ``xvdX``. A target holding another disk
    in one of ``scopes`` raises XenError.
    """
    have = {CONFIG: disks["config"], LIVE: disks["live"]}
    if target is None:
        target = next(
            (tgt for where in (have[CONFIG], have[LIVE] or {}) for tgt, d in where.items() if d["source"] == source),
            None,
        )
    if target is None:
        target = free_target(set(have[CONFIG]) | set(have[LIVE] or {}))
    todo = []
    for scope in (CONFIG, LIVE):
        if scope not in scopes or have[scope] is None:
            continue
        cur = have[scope].get(target)
        if cur is not None and cur["source"] != source:
            raise XenError(
                f"{guest} already has {cur['source']} as {target} ({scope}); detach it first or pick another target"
            )
        if cur is None:
            todo.append(scope)
    return target, todo


def detach_disk_plan(disks, disk, scopes=(LIVE, CONFIG)):
    """``{scope: disk}`` of the scopes where ``disk`` (a target or a source path) is attached."""
    found = {}
    for scope, have in ((LIVE, disks["live"]), (CONFIG, disks["config"])):
        if scope not in scopes or have is None:
            continue
        cur = have.get(disk) or next((d for d in have.values() if d["source"] == disk), None)
        if cur is not None:
            found[scope] = cur
    return found


def _disk_result(target, old, new, applied, pending):
    if not applied:
        return {}
    done = {target: {"old": old, "new": new, "applied": sorted(applied)}}
    if pending:
        done[target]["pending"] = NO_LIVE
    return done


def attach_disk(conn, name, source, target=None, fmt=None, readonly=False, live=True, config=True):
    """
    Attach disk ``source`` to guest ``name`` as ``target`` (default: the one it
    has, else the first free ``xvdX``) in the scopes asked. Returns
    ``{target: {"old": None, "new": source, "applied": [..], "pending"?}}``,
    or ``{}`` when it was already attached there.
    """
    dom = lifecycle.lookup(conn, name)
    config_disks, live_disks = disks_of(dom)
    disks = {"config": config_disks, "live": live_disks}
    scopes = [scope for scope, wanted in ((CONFIG, config), (LIVE, live)) if wanted]
    target, todo = attach_disk_plan(disks, name, source, target, scopes)
    data = {"source": source, "readonly": readonly, "device": "disk", "target": target}
    if fmt:
        data["format"] = fmt
    disk, problems = guest_spec.validate_disk(data, f"{name}:disks:{target}")
    if problems:
        raise XenError("; ".join(str(p) for p in problems))
    gtype = domain_xml.parse(definition(dom))["type"]
    applied, pending = [], False
    for scope in todo:
        if change(
            conn,
            dom,
            "attach",
            domain_xml.disk_xml(disk, gtype),
            (scope,),
            lambda text: disk_move.add_disk(text, disk, gtype),
            f"cannot attach the disk ({scope})",
        ):
            applied.append(scope)
        else:
            pending = True
    return _disk_result(target, None, source, applied, pending)


def detach_disk(conn, name, disk, live=True, config=True):
    """
    Detach ``disk`` (a target like ``xvdb`` or its path) from guest ``name`` in
    the scopes asked; the image is kept. Returns ``{target: {"old": source,
    "new": None, "applied": [..], "pending"?}}``, or ``{}`` when it was not attached.
    """
    dom = lifecycle.lookup(conn, name)
    scopes = [scope for scope, wanted in ((LIVE, live), (CONFIG, config)) if wanted]
    config_disks, live_disks = disks_of(dom)
    found = detach_disk_plan({"config": config_disks, "live": live_disks}, disk, scopes)
    gtype = domain_xml.parse(definition(dom))["type"]
    applied, pending, old = [], False, None
    for scope, cur in found.items():
        old = cur
        if change(
            conn,
            dom,
            "detach",
            domain_xml.disk_xml(cur, gtype),
            (scope,),
            lambda text, tgt=cur["target"]: disk_move.remove_disk(text, tgt),
            f"cannot detach the disk ({scope})",
        ):
            applied.append(scope)
        else:
            pending = True
    return _disk_result(old["target"], old["source"], None, applied, pending) if old else {}


def disk_change_key(target, scopes):
    """The changes key of a disk change: ``xvdb``, or ``xvdb (live)`` when only the running guest changes."""
    return target if CONFIG in scopes else f"{target} (live)"


def disk_done(done, guest, target, source, verb):
    """``(changes, comment)`` of :func:`attach_disk`/:func:`detach_disk`'s result (``verb``: attached/detached)."""
    info = done.get(target, {})
    applied = info.get("applied", [])
    pending = f"; {info['pending']}" if info.get("pending") else ""
    old, new = (None, source) if verb == "attached" else (source, None)
    if not applied and verb == "attached":
        return {}, (
            f"{source} is in {guest}'s definition as {target}; the running guest could not be "
            "changed live and sees it after its next start"
        )
    if not applied:
        return {}, f"{target} was detached from {guest} (nothing){pending}"
    made = {disk_change_key(target, applied): {"old": old, "new": new}}
    if verb == "attached":
        return made, f"{source} was attached to {guest} as {target} ({', '.join(applied)}){pending}"
    return made, f"{target} was detached from {guest} ({', '.join(applied)}){pending}"
