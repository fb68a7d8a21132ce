"""libvirt virtual networks and guest NICs as seen through one libvirt connection.

The XML is made and read by :mod:`saltext_xen.networks.network_xml`; this module only
talks to libvirt: look up, define (with libvirt's schema check), start, stop,
autostart, undefine, and find which guests use a bridge.
"""

import xml.etree.ElementTree as ET

try:
    import libvirt
except ImportError:  # pragma: no cover - the Salt layer's __virtual__ reports it
    libvirt = None

from saltext_xen.core.errors import XenError
from saltext_xen.networks import network_xml


class NetworkError(XenError):
    """A libvirt network could not be read or changed; the message says why."""


def _msg(exc):
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


def lookup(conn, name):
    """The virNetwork called ``name``, or None."""
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise NetworkError(f"cannot look up network {name}: {_msg(exc)}") from None


def config_xml(net):
    """The network's persistent (next start) XML; drivers without that flag give the live one."""
    if net.isPersistent():
        try:
            return net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                raise NetworkError(f"cannot read network {net.name()}: {_msg(exc)}") from None
    return net.XMLDesc(0)


def read(conn, name):
    """``{"spec", "live_spec", "active", "autostart", "persistent", "bridge"}`` for network ``name``, or None.

    ``spec`` is what the network starts with next time, ``live_spec`` what it runs with now.
    """
    net = lookup(conn, name)
    if net is None:
        return None
    spec = network_xml.parse(config_xml(net))
    return {
        "spec": spec,
        "live_spec": network_xml.parse(net.XMLDesc(0)) if net.isActive() else None,
        "active": bool(net.isActive()),
        "autostart": bool(net.autostart()) if net.isPersistent() else False,
        "persistent": bool(net.isPersistent()),
        "bridge": spec.get("bridge"),
    }


def list_all(conn):
    """``{name: {"active", "autostart", "bridge", "forward"}}`` for every network."""
    found = {}
    try:
        for net in conn.listAllNetworks(0):
            spec = network_xml.parse(net.XMLDesc(0))
            found[net.name()] = {
                "active": bool(net.isActive()),
                "autostart": bool(net.autostart()) if net.isPersistent() else False,
                "bridge": spec.get("bridge"),
                "forward": spec.get("forward"),
            }
    except libvirt.libvirtError as exc:
        raise NetworkError(
            f"cannot list libvirt networks (is libvirt's network driver running?): {_msg(exc)}"
        ) from None
    return found


def bridges_of_others(conn, name):
    """``{other network: its bridge}`` for every network but ``name``."""
    return {other: info["bridge"] for other, info in list_all(conn).items() if other != name}


def define(conn, spec):
    """Define (or redefine, keeping its UUID) the network; libvirt checks the XML against its schema."""
    existing = lookup(conn, spec["name"])
    spec = dict(spec)
    if existing is not None:
        spec["uuid"] = existing.UUIDString()
    xml = network_xml.to_xml(spec)
    try:
        return conn.networkDefineXMLFlags(xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        raise NetworkError(f"libvirt refused network {spec['name']}: {_msg(exc)}") from None


def update_live(conn, name, ops):
    """Apply ``network_xml.live_updates`` operations to the running network and its config."""
    net = _need(conn, name)
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    for command, section, index, xml in ops:
        try:
            net.update(command, section, index, xml, flags)
        except libvirt.libvirtError as exc:
            raise NetworkError(f"libvirt refused to change running network {name} ({xml}): {_msg(exc)}") from None


def _need(conn, name):
    net = lookup(conn, name)
    if net is None:
        raise NetworkError(f"no libvirt network named {name}")
    return net


def start(conn, name):
    """Start the network; True when it was not running before."""
    net = _need(conn, name)
    if net.isActive():
        return False
    try:
        net.create()
    except libvirt.libvirtError as exc:
        raise NetworkError(f"network {name} did not start: {_msg(exc)}") from None
    return True


def stop(conn, name):
    """Stop the network; True when it was running before."""
    net = _need(conn, name)
    if not net.isActive():
        return False
    try:
        net.destroy()
    except libvirt.libvirtError as exc:
        raise NetworkError(f"network {name} did not stop: {_msg(exc)}") from None
    return True


def set_autostart(conn, name, enable=True):
    """Mark the network to start with libvirtd (libvirt makes the autostart link itself)."""
    net = _need(conn, name)
    if bool(net.autostart()) == bool(enable):
        return False
    try:
        net.setAutostart(1 if enable else 0)
    except libvirt.libvirtError as exc:
        raise NetworkError(f"cannot change autostart of network {name}: {_msg(exc)}") from None
    return True


def undefine(conn, name):
    """Stop (if running) and forget the network; True when there was one."""
    net = lookup(conn, name)
    if net is None:
        return False
    try:
        if net.isActive():
            net.destroy()
        if net.isPersistent():
            net.undefine()
    except libvirt.libvirtError as exc:
        raise NetworkError(f"cannot remove network {name}: {_msg(exc)}") from None
    return True


def guest_nics(conn):
    """``[{"name", "domid", "nics": [{"mac", "bridge", "network", "target"}]}]`` for every guest."""
    found = []
    try:
        doms = [(dom, bool(dom.isActive()), dom.XMLDesc(0)) for dom in conn.listAllDomains(0)]
    except libvirt.libvirtError as exc:
        raise NetworkError(f"cannot list the guests: {_msg(exc)}") from None
    for dom, active, xml in doms:
        root = ET.fromstring(xml)
        nics = []
        for el in root.findall("./devices/interface"):
            mac = el.find("mac")
            source = el.find("source")
            target = el.find("target")
            nics.append(
                {
                    "mac": mac.get("address").lower() if mac is not None and mac.get("address") else None,
                    "bridge": source.get("bridge") if source is not None else None,
                    "network": source.get("network") if source is not None else None,
                    "target": target.get("dev") if target is not None and active else None,
                }
            )
        found.append({"name": dom.name(), "domid": dom.ID() if active else None, "nics": nics})
    return sorted(found, key=lambda g: g["name"])


def network_bridges(conn):
    """``{network: bridge}`` for every network."""
    return {name: info["bridge"] for name, info in list_all(conn).items()}


def guests_using(conn, bridge):
    """Names of the guests with a NIC on ``bridge``, directly or through a libvirt network."""
    nets = network_bridges(conn)
    users = set()
    for guest in guest_nics(conn):
        for nic in guest["nics"]:
            if nic["bridge"] == bridge or (nic["network"] and nets.get(nic["network"]) == bridge):
                users.add(guest["name"])
    return sorted(users)


def guests_on_network(conn, name):
    """Names of the guests with a NIC on libvirt network ``name``."""
    return sorted({g["name"] for g in guest_nics(conn) for nic in g["nics"] if nic["network"] == name})
