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
from saltext_xen.networks import bridges, network_xml


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


def neighbours(conn, name):
    """What network ``name`` must not clash with: ``(others, own bridge)``.

    ``others`` maps every other network to ``{"bridge", "subnets"}`` (its ipv4/ipv6
    networks, like ``192.168.122.0/24``), the shape :func:`network_xml.validate` takes;
    the own bridge is the one network ``name`` has now (None when it is not defined).
    """
    others, own = {}, None
    try:
        for net in conn.listAllNetworks(0):
            spec = network_xml.parse(net.XMLDesc(0))
            if net.name() == name:
                own = spec.get("bridge")
                continue
            others[net.name()] = {"bridge": spec.get("bridge"), "subnets": network_xml.subnets(spec)}
    except libvirt.libvirtError as exc:
        raise NetworkError(
            f"cannot list libvirt networks (is libvirt's network driver running?): {_msg(exc)}"
        ) from None
    return others, own


def checked(conn, name, data, runner, netns=None, path=None, host_bridges=()):
    """Network ``name`` as ``data`` asks, checked (:func:`network_xml.validate`) against the
    other networks and the addresses on the host's interfaces (inside ``netns`` when given)
    as ``runner`` reads them: ``(spec, [problem])``."""
    others, own = neighbours(conn, name)
    host_addrs = bridges.read(runner, netns)["addrs"]
    return network_xml.validate(name, data, path, others, host_bridges, host_addrs, own)


def need(conn, name):
    """Network ``name`` as :func:`read` gives it, or :class:`NetworkError` saying there is none."""
    found = read(conn, name)
    if found is None:
        raise NetworkError(f"no libvirt network named {name}")
    return found


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


def guests_running_on(conn, name, bridge=None):
    """Names of the running guests with a NIC on network ``name`` (or straight on its ``bridge``):
    the ones whose link a restart of the network cuts."""
    return sorted(
        {
            guest["name"]
            for guest in guest_nics(conn)
            if guest["domid"] not in (None, -1)
            for nic in guest["nics"]
            if nic["network"] == name or (bridge and nic["bridge"] == bridge)
        }
    )


def plan(conn, name, wanted, autostart=None, running=False, restart=False, watch=False, force=False):
    """What it takes to have network ``name`` as ``wanted`` (validated by :func:`network_xml.validate`).

    ``running``: started too; ``restart``: a running network whose settings changed (and
    cannot take them live) is restarted; ``watch`` (a watched state changed): a running
    network is restarted whatever changed, a stopped one started. A restart asked by
    ``watch`` is refused with :class:`NetworkError` naming the running guests on the
    network, whose link it cuts, unless ``force``.

    Returns ``{"changes", "have", "config", "live_ops", "restarting", "note", "stale", ...}``;
    ``changes`` (``{key: {"old": .., "new": ..}}``) is empty when there is nothing to do.
    """
    have = read(conn, name)
    changes = {"defined": {"old": False, "new": True}} if have is None else {}
    config = network_xml.diff(have["spec"] if have else {}, wanted)
    if have is not None:
        changes.update(config)
    if autostart is not None and (have is None or have["autostart"] != autostart) and (have is not None or autostart):
        changes["autostart"] = {"old": have["autostart"] if have else False, "new": autostart}
    active = bool(have and have["active"])
    # defined as wanted already, but still running with older settings (changed without a restart)
    stale = bool(active and not config and have.get("live_spec") and network_xml.diff(have["live_spec"], wanted))
    # DHCP ranges/hosts and DNS hosts of a running network change live, without a restart
    live_ops = network_xml.live_updates(have["spec"], wanted) if active and config and not watch else None
    restarting = running and active and (bool(config) or stale) and restart and live_ops is None
    if watch and active:
        restarting = True
    if running and not active:
        changes["running"] = {"old": False, "new": True}
    if restarting:
        changes["restarted"] = (
            {"old": "old settings", "new": "new settings"}
            if config or stale
            else {"old": "running", "new": "restarted"}
        )
        users = guests_running_on(conn, name, wanted.get("bridge") or (have or {}).get("bridge"))
        if watch and users and not force:
            raise NetworkError(
                f"restarting it would cut the link of the running guests {', '.join(users)}; "
                "stop or move them first, or set force: true"
            )
    pending_restart = active and bool(config) and not restarting and live_ops is None
    note = ""
    if pending_restart:
        note = " It is running with its old settings until it restarts (network_running with restart: true does that)."
    elif live_ops:
        note = " The running network takes the change at once."
    return {
        "name": name,
        "wanted": wanted,
        "have": have,
        "config": config,
        "changes": changes,
        "autostart": autostart,
        "running": running,
        "live_ops": live_ops,
        "restarting": restarting,
        "note": note,
        "stale": stale,
    }


def words(changes):
    """What a network state's ``changes`` do, in words: ``defined, set to start with libvirtd, started``."""
    said = []
    if "defined" in changes:
        said.append("defined")
    settings = [k for k in changes if k not in ("defined", "autostart", "running", "restarted")]
    if settings and "defined" not in changes:
        said.append(f"changed ({', '.join(settings)})")
    if "autostart" in changes:
        said.append("set to start with libvirtd" if changes["autostart"]["new"] else "set not to start by itself")
    if "restarted" in changes:
        said.append("restarted")
    if "running" in changes:
        said.append("started")
    return ", ".join(said)


def changed_since(conn, plan_):
    """What a network plan that failed part way did change, read back from libvirt."""
    try:
        after = read(conn, plan_["name"])
    except XenError:
        return {}
    if after is None:
        return {}
    have = plan_["have"]
    return network_xml.diff(have["spec"], after["spec"]) if have else {"defined": {"old": False, "new": True}}


def apply(conn, plan_):
    """Carry out a :func:`plan`: stop first for a restart (so the new definition is the one that
    starts), change live or define, set autostart, start. Raises :class:`NetworkError`."""
    name, changes = plan_["name"], plan_["changes"]
    if plan_["restarting"]:
        stop(conn, name)
    if plan_["live_ops"] is not None:
        update_live(conn, name, plan_["live_ops"])
    elif plan_["have"] is None or plan_["config"]:
        define(conn, plan_["wanted"])
    if "autostart" in changes:
        set_autostart(conn, name, plan_["autostart"])
    if plan_["running"]:
        start(conn, name)


def plan_absent(conn, name, force=False):
    """What it takes to have network ``name`` stopped and gone: ``{key: {"old": .., "new": ..}}``.

    Refused with :class:`NetworkError` naming the guests with a NIC on it, unless ``force``.
    """
    have = read(conn, name)
    if have is None:
        return {}
    users = guests_on_network(conn, name)
    if users and not force:
        raise NetworkError(f"guests {', '.join(users)} still have a NIC on it; move them first or set force: true")
    changes = {"defined": {"old": True, "new": False}}
    if have["active"]:
        changes["running"] = {"old": True, "new": False}
    return changes
