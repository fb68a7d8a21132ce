"""Keep a bridge across reboots in the host's own network configuration.

:func:`render` turns a validated bridge spec (see :mod:`saltext_xen.networks.bridges`)
plus its addressing into ``{path: (text, mode)}`` for one of four styles:

``ifupdown``   Debian: ``/etc/network/interfaces.d/BRIDGE`` (needs bridge-utils, and vlan for VLANs)
``ifcfg-rhel`` RHEL/CentOS up to 8: ``/etc/sysconfig/network-scripts/ifcfg-*``
``nm-keyfile`` NetworkManager (RHEL 9+, Fedora): ``/etc/NetworkManager/system-connections/*.nmconnection``
``ifcfg-suse`` SUSE wicked: ``/etc/sysconfig/network/ifcfg-*`` and ``ifroute-BRIDGE``

:func:`pending` says which files would change, :func:`write` writes them
atomically (temporary file in the same directory, then rename), and
:func:`owned_paths` / :func:`remove` take a bridge's files away again. Every path
is taken relative to ``root`` so tests (and chroots) can use another tree.
"""

import ipaddress
import os
import tempfile
import uuid

STYLES = ("ifupdown", "ifcfg-rhel", "nm-keyfile", "ifcfg-suse")
HEADER = "Managed by Salt (saltext-xen) for bridge {name}; edits here are overwritten."
_BY_FAMILY = {"Debian": "ifupdown", "RedHat": "ifcfg-rhel", "Suse": "ifcfg-suse"}
_NM_NAMESPACE = uuid.UUID("5a1e7e4e-0b1d-4c3e-9d6a-7865e6e5a1e7")  # saltext-xen's keyfile UUIDs


class PersistError(ValueError):
    """The style is unknown or the config cannot be written."""


def style_for(os_family, os_major=None):
    """The usual style for an OS family (RHEL 9 and later: NetworkManager keyfiles)."""
    if os_family == "RedHat":
        try:
            if int(os_major) >= 9:
                return "nm-keyfile"
        except (TypeError, ValueError):
            pass
    return _BY_FAMILY.get(os_family)


def _port(spec):
    if not spec.get("nic"):
        return None
    return f"{spec['nic']}.{spec['vlan']}" if spec.get("vlan") else spec["nic"]


def _split(addresses):
    v4 = [a for a in addresses or [] if ipaddress.ip_interface(a).version == 4]
    v6 = [a for a in addresses or [] if ipaddress.ip_interface(a).version == 6]
    return v4, v6


def render(style, spec, gateway=None, gateway6=None, dhcp=False):
    """``{path: (text, mode)}`` that bring up bridge ``spec`` at boot with these addresses.

    ``spec["addresses"]`` are the bridge's static addresses; ``gateway`` /
    ``gateway6`` the default routes; ``dhcp=True`` asks DHCP for the IPv4 address instead.
    ``spec["mac"]`` (optional, ``nm-keyfile`` only) gives the bridge that MAC address.
    """
    if style not in STYLES:
        raise PersistError(f"unknown persistence style {style!r} (known: {', '.join(STYLES)})")
    return {"ifupdown": _ifupdown, "ifcfg-rhel": _rhel, "nm-keyfile": _nm, "ifcfg-suse": _suse}[style](
        spec, gateway, gateway6, dhcp
    )


def owned_paths(style, name, port=None):
    """The files :func:`render` writes for bridge ``name`` (with port ``port``)."""
    if style == "ifupdown":
        return [f"/etc/network/interfaces.d/{name}"]
    if style == "ifcfg-rhel":
        return [f"/etc/sysconfig/network-scripts/ifcfg-{n}" for n in (name, port) if n]
    if style == "nm-keyfile":
        base = "/etc/NetworkManager/system-connections"
        return [f"{base}/{name}.nmconnection"] + ([f"{base}/{name}-port-{port}.nmconnection"] if port else [])
    if style == "ifcfg-suse":
        return [f"/etc/sysconfig/network/ifcfg-{n}" for n in (name, port) if n] + [
            f"/etc/sysconfig/network/ifroute-{name}"
        ]
    raise PersistError(f"unknown persistence style {style!r} (known: {', '.join(STYLES)})")


def _ifupdown(spec, gateway, gateway6, dhcp):
    name, port = spec["name"], _port(spec)
    v4, v6 = _split(spec.get("addresses"))
    out = [f"# {HEADER.format(name=name)}"]
    if port and spec.get("vlan"):
        out += ["", f"auto {port}", f"iface {port} inet manual", f"    vlan-raw-device {spec['nic']}"]
        if spec.get("mtu"):
            out.append(f"    mtu {spec['mtu']}")
    bridge_opts = [
        f"    bridge_ports {port or 'none'}",
        f"    bridge_stp {'on' if spec['stp'] else 'off'}",
        f"    bridge_fd {spec['forward_delay']}",
        "    bridge_maxwait 0",
    ]
    if spec.get("mtu"):
        bridge_opts.append(f"    mtu {spec['mtu']}")
    out += ["", f"auto {name}"]
    if dhcp:
        out += [f"iface {name} inet dhcp"] + bridge_opts
    elif v4:
        out += [f"iface {name} inet static", f"    address {v4[0]}"]
        if gateway:
            out.append(f"    gateway {gateway}")
        out += bridge_opts
        for extra in v4[1:]:
            out.append(f"    up ip addr add {extra} dev {name}")
    else:
        out += [f"iface {name} inet manual"] + bridge_opts
    for i, addr in enumerate(v6):
        out += ["", f"iface {name} inet6 static", f"    address {addr}"]
        if gateway6 and i == 0:
            out.append(f"    gateway {gateway6}")
    return {f"/etc/network/interfaces.d/{name}": ("\n".join(out) + "\n", 0o644)}


def _kv(pairs, quote=False):
    lines = []
    for key, value in pairs:
        if value is None:
            continue
        lines.append(f"{key}='{value}'" if quote else f"{key}={value}")
    return "\n".join(lines) + "\n"


def _rhel(spec, gateway, gateway6, dhcp):
    name, port = spec["name"], _port(spec)
    v4, v6 = _split(spec.get("addresses"))
    base = "/etc/sysconfig/network-scripts"
    pairs = [
        ("DEVICE", name),
        ("TYPE", "Bridge"),
        ("ONBOOT", "yes"),
        ("BOOTPROTO", "dhcp" if dhcp else "none"),
        ("STP", "yes" if spec["stp"] else "no"),
        ("DELAY", spec["forward_delay"]),
        ("MTU", spec.get("mtu")),
    ]
    if not dhcp:
        for i, addr in enumerate(v4):
            iface = ipaddress.ip_interface(addr)
            pairs += [(f"IPADDR{i}", iface.ip), (f"PREFIX{i}", iface.network.prefixlen)]
        pairs.append(("GATEWAY", gateway))
    if v6 or gateway6:
        pairs += [
            ("IPV6INIT", "yes"),
            ("IPV6ADDR", v6[0] if v6 else None),
            ("IPV6ADDR_SECONDARIES", " ".join(v6[1:]) or None),
            ("IPV6_DEFAULTGW", gateway6),
        ]
    pairs.append(("NM_CONTROLLED", "no"))
    files = {f"{base}/ifcfg-{name}": (f"# {HEADER.format(name=name)}\n" + _kv(pairs), 0o644)}
    if port:
        port_pairs = [("DEVICE", port), ("ONBOOT", "yes"), ("BOOTPROTO", "none"), ("BRIDGE", name)]
        if spec.get("vlan"):
            port_pairs += [("VLAN", "yes"), ("PHYSDEV", spec["nic"])]
        port_pairs += [("MTU", spec.get("mtu")), ("NM_CONTROLLED", "no")]
        files[f"{base}/ifcfg-{port}"] = (f"# {HEADER.format(name=name)}\n" + _kv(port_pairs), 0o644)
    return files


def _ini(sections):
    out = []
    for title, pairs in sections:
        out.append(f"[{title}]")
        out += [f"{k}={v}" for k, v in pairs if v is not None]
        out.append("")
    return "\n".join(out)


def nm_uuid(connection_id):
    """The fixed UUID of the NetworkManager connection written for ``connection_id`` (same name, same UUID)."""
    return str(uuid.uuid5(_NM_NAMESPACE, connection_id))


def _nm(spec, gateway, gateway6, dhcp):
    name, port = spec["name"], _port(spec)
    v4, v6 = _split(spec.get("addresses"))
    base = "/etc/NetworkManager/system-connections"
    bridge = [("stp", "true" if spec["stp"] else "false")]
    if spec["stp"]:  # NetworkManager only takes 2-30 s, which is what STP needs anyway
        bridge.append(("forward-delay", spec["forward_delay"]))
    if spec.get("mac"):  # the NIC's MAC, so ARP caches and DHCP leases stay valid
        bridge.append(("mac-address", spec["mac"].upper()))
    ipv4 = [("method", "auto" if dhcp else ("manual" if v4 else "disabled"))]
    if not dhcp:
        for i, addr in enumerate(v4, start=1):
            ipv4.append((f"address{i}", f"{addr},{gateway}" if gateway and i == 1 else addr))
    ipv6 = [("method", "manual" if v6 else "ignore")]
    for i, addr in enumerate(v6, start=1):
        ipv6.append((f"address{i}", f"{addr},{gateway6}" if gateway6 and i == 1 else addr))
    sections = [
        # autoconnect-slaves: bringing the bridge up brings its port up too, taking the NIC from its old connection
        (
            "connection",
            [
                ("id", name),
                ("uuid", nm_uuid(name)),
                ("type", "bridge"),
                ("interface-name", name),
                ("autoconnect", "true"),
                ("autoconnect-slaves", "1" if port else None),
            ],
        ),
        ("ethernet", [("mtu", spec.get("mtu"))]) if spec.get("mtu") else None,
        ("bridge", bridge),
        ("ipv4", ipv4),
        ("ipv6", ipv6),
    ]
    files = {
        f"{base}/{name}.nmconnection": (f"# {HEADER.format(name=name)}\n" + _ini([s for s in sections if s]), 0o600)
    }
    if port:
        conn = [
            ("id", f"{name}-port-{port}"),
            ("uuid", nm_uuid(f"{name}-port-{port}")),
            ("type", "vlan" if spec.get("vlan") else "ethernet"),
            ("interface-name", port),
            ("master", name),
            ("slave-type", "bridge"),
            ("autoconnect", "true"),
            ("autoconnect-priority", "10"),
        ]
        port_sections = [("connection", conn)]
        if spec.get("vlan"):
            port_sections.append(("vlan", [("parent", spec["nic"]), ("id", spec["vlan"])]))
        if spec.get("mtu"):
            port_sections.append(("ethernet", [("mtu", spec["mtu"])]))
        files[f"{base}/{name}-port-{port}.nmconnection"] = (
            f"# {HEADER.format(name=name)}\n" + _ini(port_sections),
            0o600,
        )
    return files


def _suse(spec, gateway, gateway6, dhcp):
    name, port = spec["name"], _port(spec)
    v4, v6 = _split(spec.get("addresses"))
    base = "/etc/sysconfig/network"
    head = f"# {HEADER.format(name=name)}\n"
    pairs = [
        ("STARTMODE", "auto"),
        ("BOOTPROTO", "dhcp4" if dhcp else "static"),
        ("BRIDGE", "yes"),
        ("BRIDGE_PORTS", port or ""),
        ("BRIDGE_STP", "on" if spec["stp"] else "off"),
        ("BRIDGE_FORWARDDELAY", spec["forward_delay"]),
        ("MTU", spec.get("mtu")),
    ]
    addrs = ([] if dhcp else v4) + v6
    for i, addr in enumerate(addrs):
        pairs.append(("IPADDR" if i == 0 else f"IPADDR_{i}", addr))
    files = {f"{base}/ifcfg-{name}": (head + _kv(pairs, quote=True), 0o644)}
    if port:
        port_pairs = [("STARTMODE", "auto"), ("BOOTPROTO", "none")]
        if spec.get("vlan"):
            port_pairs += [("ETHERDEVICE", spec["nic"]), ("VLAN_ID", spec["vlan"])]
        port_pairs.append(("MTU", spec.get("mtu")))
        files[f"{base}/ifcfg-{port}"] = (head + _kv(port_pairs, quote=True), 0o644)
    routes = []
    if gateway and not dhcp:
        routes.append(f"default {gateway} - {name}")
    if gateway6:
        routes.append(f"default {gateway6} - {name}")
    files[f"{base}/ifroute-{name}"] = (head + "".join(r + "\n" for r in routes), 0o644)
    return files


# ---------------------------------------------------------------- files


def _full(root, path):
    return os.path.join(root, path.lstrip("/"))


def pending(files, root="/"):
    """``{path: "created" | "updated"}`` for the files whose text or mode differ on disk."""
    changes = {}
    for path, (text, mode) in sorted(files.items()):
        full = _full(root, path)
        try:
            with open(full, encoding="utf-8") as handle:
                same = handle.read() == text
            same = same and (os.stat(full).st_mode & 0o777) == mode
            if not same:
                changes[path] = "updated"
        except FileNotFoundError:
            changes[path] = "created"
    return changes


def write(files, root="/"):
    """Write the files that differ, each atomically; returns what :func:`pending` said."""
    changes = pending(files, root)
    for path in changes:
        text, mode = files[path]
        full = _full(root, path)
        directory = os.path.dirname(full)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(full)}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, full)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return changes


def existing(paths, root="/"):
    """The paths among ``paths`` that exist under ``root``."""
    return [p for p in paths if os.path.exists(_full(root, p))]


def remove(paths, root="/"):
    """Remove those of ``paths`` that exist; returns ``{path: "removed"}``."""
    done = {}
    for path in existing(paths, root):
        os.unlink(_full(root, path))
        done[path] = "removed"
    return done


def conflicts(style, spec, root="/"):
    """Warnings about other configuration that also sets up the bridge's NIC at boot."""
    port = _port(spec)
    if style != "ifupdown" or not port:
        return []
    warnings = []
    main = _full(root, "/etc/network/interfaces")
    sourced = False
    try:
        with open(main, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                words = line.split()
                if words[:1] in (["source"], ["source-directory"]) and "interfaces.d" in line:
                    sourced = True
                if len(words) >= 4 and words[0] == "iface" and words[1] == port and words[3] in ("dhcp", "static"):
                    warnings.append(
                        f"/etc/network/interfaces line {number} still gives {port} an address "
                        f"({' '.join(words)}); change it to 'iface {port} inet manual' so the "
                        f"address lives on {spec['name']} after a reboot"
                    )
    except FileNotFoundError:
        return warnings
    if not sourced:
        warnings.append(
            "/etc/network/interfaces does not read /etc/network/interfaces.d (add "
            "'source /etc/network/interfaces.d/*'), so the bridge will not come back after a reboot"
        )
    return warnings


# ---------------------------------------------------------------- the NIC once the bridge is gone


def render_nic(style, nic, bridge, addresses=(), gateway=None, gateway6=None, dhcp=False, uuid=None, vlan=None):
    """``{path: (text, mode)}`` that give ``nic`` its own addresses at boot again after bridge ``bridge`` goes.

    For ``ifupdown`` this is ``/etc/network/interfaces.d/NIC``; callers should
    skip it when the main ``/etc/network/interfaces`` already configures the NIC
    (see :func:`configured_elsewhere`). ``nm-keyfile`` only: ``uuid`` fixes the
    connection's UUID (so nmcli can bring it up by UUID), ``vlan`` ``(parent, id)``
    makes it a VLAN connection.
    """
    head = f"Managed by Salt (saltext-xen) for {nic}, taken out of bridge {bridge}; edits here are overwritten."
    v4, v6 = _split(list(addresses))
    if style == "ifupdown":
        out = [f"# {head}", "", f"auto {nic}"]
        if dhcp:
            out.append(f"iface {nic} inet dhcp")
        elif v4:
            out += [f"iface {nic} inet static", f"    address {v4[0]}"]
            if gateway:
                out.append(f"    gateway {gateway}")
            out += [f"    up ip addr add {extra} dev {nic}" for extra in v4[1:]]
        else:
            out.append(f"iface {nic} inet manual")
        for i, addr in enumerate(v6):
            out += ["", f"iface {nic} inet6 static", f"    address {addr}"]
            if gateway6 and i == 0:
                out.append(f"    gateway {gateway6}")
        return {f"/etc/network/interfaces.d/{nic}": ("\n".join(out) + "\n", 0o644)}
    if style == "ifcfg-rhel":
        pairs = [("DEVICE", nic), ("ONBOOT", "yes"), ("BOOTPROTO", "dhcp" if dhcp else "none")]
        if not dhcp:
            for i, addr in enumerate(v4):
                iface = ipaddress.ip_interface(addr)
                pairs += [(f"IPADDR{i}", iface.ip), (f"PREFIX{i}", iface.network.prefixlen)]
            pairs.append(("GATEWAY", gateway))
        if v6:
            pairs += [
                ("IPV6INIT", "yes"),
                ("IPV6ADDR", v6[0]),
                ("IPV6ADDR_SECONDARIES", " ".join(v6[1:]) or None),
                ("IPV6_DEFAULTGW", gateway6),
            ]
        pairs.append(("NM_CONTROLLED", "no"))
        return {f"/etc/sysconfig/network-scripts/ifcfg-{nic}": (f"# {head}\n" + _kv(pairs), 0o644)}
    if style == "nm-keyfile":
        ipv4 = [("method", "auto" if dhcp else ("manual" if v4 else "disabled"))]
        if not dhcp:
            ipv4 += [(f"address{i}", f"{a},{gateway}" if gateway and i == 1 else a) for i, a in enumerate(v4, 1)]
        ipv6 = [("method", "manual" if v6 else "ignore")]
        ipv6 += [(f"address{i}", f"{a},{gateway6}" if gateway6 and i == 1 else a) for i, a in enumerate(v6, 1)]
        sections = [
            (
                "connection",
                [
                    ("id", nic),
                    ("uuid", uuid),
                    ("type", "vlan" if vlan else "ethernet"),
                    ("interface-name", nic),
                    ("autoconnect", "true"),
                ],
            )
        ]
        if vlan:
            sections.append(("vlan", [("parent", vlan[0]), ("id", vlan[1])]))
        text = _ini(sections + [("ipv4", ipv4), ("ipv6", ipv6)])
        return {f"/etc/NetworkManager/system-connections/{nic}.nmconnection": (f"# {head}\n" + text, 0o600)}
    if style == "ifcfg-suse":
        pairs = [("STARTMODE", "auto"), ("BOOTPROTO", "dhcp4" if dhcp else "static")]
        for i, addr in enumerate(([] if dhcp else v4) + v6):
            pairs.append(("IPADDR" if i == 0 else f"IPADDR_{i}", addr))
        files = {f"/etc/sysconfig/network/ifcfg-{nic}": (f"# {head}\n" + _kv(pairs, quote=True), 0o644)}
        routes = ([f"default {gateway} - {nic}"] if gateway and not dhcp else []) + (
            [f"default {gateway6} - {nic}"] if gateway6 else []
        )
        if routes:
            files[f"/etc/sysconfig/network/ifroute-{nic}"] = (f"# {head}\n" + "".join(r + "\n" for r in routes), 0o644)
        return files
    raise PersistError(f"unknown persistence style {style!r} (known: {', '.join(STYLES)})")


def configured_elsewhere(style, nic, root="/"):
    """True when the main ``/etc/network/interfaces`` already has an ``iface NIC`` stanza (ifupdown only)."""
    if style != "ifupdown":
        return False
    try:
        with open(_full(root, "/etc/network/interfaces"), encoding="utf-8") as handle:
            return any(line.split()[:2] == ["iface", nic] for line in handle)
    except FileNotFoundError:
        return False
