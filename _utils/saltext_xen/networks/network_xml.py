"""libvirt virtual networks: validate a wanted network, render its XML, read XML back, diff.

A network spec (what ``xen:networks:NAME`` holds in pillar)::

    forward: nat | route | isolated | bridge      (default nat, like libvirt's 'default')
    bridge: virbr1            the bridge libvirt makes (nat/route/isolated) or uses (bridge)
    dev: eth0                 nat/route: the host NIC traffic leaves through (optional)
    stp: true                 nat/route/isolated bridges (libvirt's default: on)
    delay: 0                  forward delay in seconds (libvirt's default: 0)
    mtu: 1500
    domain: lab.example       DNS domain handed out by DHCP
    ipv4:
      address: 192.168.123.1/24
      dhcp:
        - start: 192.168.123.2      (or the short form "192.168.123.2-192.168.123.254")
          end: 192.168.123.254
      hosts:
        - {mac: 00:16:3e:12:34:56, ip: 192.168.123.10, name: vm02}
    ipv6:
      address: fd00:123::1/64
      dhcp: [...]
      hosts: [{name: vm02, ip: fd00:123::10}]    (IPv6 hosts match by name or id, not MAC)
    dns:
      hosts: [{ip: 192.168.123.10, names: [vm02]}]
      forwarders: [192.168.0.1]
    autostart: true           (not part of the XML; the state handles it)

:func:`validate` returns the normalised spec and every problem with its key path;
:func:`to_xml` renders it, :func:`parse` reads libvirt's XML back into the same
shape, and :func:`diff` compares the two on the keys the spec sets.
"""

import ipaddress
import re
import xml.etree.ElementTree as ET

from saltext_xen.core import macs

FORWARD_MODES = ("nat", "route", "isolated", "bridge")
_NAME = re.compile(r"^[A-Za-z0-9_.:+-]{1,50}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_KEYS = ("forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns", "autostart", "uuid")
# keys compared by diff (autostart and uuid are handled apart)
COMPARED = ("forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns")


def _range(item, family, subnet, path, problems):
    if isinstance(item, str) and "-" in item:
        start, _, end = item.partition("-")
        item = {"start": start.strip(), "end": end.strip()}
    if not isinstance(item, dict) or set(item) != {"start", "end"}:
        problems.append(f"{path}: expected {{start: ..., end: ...}} or 'START-END', got {item!r}")
        return None
    try:
        start = ipaddress.ip_address(str(item["start"]))
        end = ipaddress.ip_address(str(item["end"]))
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return None
    if start.version != family or end.version != family:
        problems.append(f"{path}: expected IPv{family} addresses, got {start} - {end}")
        return None
    if start > end:
        problems.append(f"{path}: start {start} comes after end {end}")
        return None
    if subnet is not None and (start not in subnet or end not in subnet):
        problems.append(f"{path}: range {start} - {end} is not inside the network {subnet}")
        return None
    return {"start": str(start), "end": str(end)}


def _ip_block(data, family, path, problems):
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping with address, dhcp, hosts; got {data!r}")
        return None
    unknown = set(data) - {"address", "dhcp", "hosts"}
    for key in sorted(unknown):
        problems.append(f"{path}.{key}: unknown key (known: address, dhcp, hosts)")
    block = {"address": None, "dhcp": [], "hosts": []}
    subnet = None
    addr = data.get("address")
    try:
        iface = ipaddress.ip_interface(str(addr))
        if iface.version != family:
            raise ValueError(f"expected an IPv{family} address")
        if "/" not in str(addr):
            raise ValueError("needs a prefix length")
        subnet = iface.network
        if family == 4 and subnet.prefixlen < 31 and iface.ip in (subnet.network_address, subnet.broadcast_address):
            which = "network" if iface.ip == subnet.network_address else "broadcast"
            raise ValueError(f"{iface.ip} is the network's {which} address")
        block["address"] = str(iface)
    except ValueError as exc:
        example = "192.168.123.1/24" if family == 4 else "fd00:123::1/64"
        problems.append(f"{path}.address: expected an address with prefix like {example}, got {addr!r} ({exc})")
    dhcp = _as_list(data.get("dhcp"), f"{path}.dhcp", problems)
    for i, item in enumerate(dhcp):
        rng = _range(item, family, subnet, f"{path}.dhcp[{i}]", problems)
        if rng is None:
            continue
        lo, hi = ipaddress.ip_address(rng["start"]), ipaddress.ip_address(rng["end"])
        if block["address"] and lo <= ipaddress.ip_interface(block["address"]).ip <= hi:
            problems.append(
                f"{path}.dhcp[{i}]: range {lo} - {hi} holds the network's own address "
                f"{ipaddress.ip_interface(block['address']).ip}"
            )
        for j, other in enumerate(block["dhcp"]):
            if lo <= ipaddress.ip_address(other["end"]) and ipaddress.ip_address(other["start"]) <= hi:
                problems.append(
                    f"{path}.dhcp[{i}]: range {lo} - {hi} overlaps {path}.dhcp[{j}] ({other['start']} - {other['end']})"
                )
        block["dhcp"].append(rng)
    hosts = _as_list(data.get("hosts"), f"{path}.hosts", problems)
    seen_ip, seen_mac = {}, {}
    for i, host in enumerate(hosts):
        hpath = f"{path}.hosts[{i}]"
        if not isinstance(host, dict):
            problems.append(f"{hpath}: expected a mapping with mac/name and ip, got {host!r}")
            continue
        entry = {}
        for key in sorted(set(host) - {"mac", "name", "ip", "id"}):
            problems.append(f"{hpath}.{key}: unknown key (known: mac, name, ip, id)")
        try:
            ip = ipaddress.ip_address(str(host.get("ip")))
            if ip.version != family:
                raise ValueError(f"expected IPv{family}")
            if subnet is not None and ip not in subnet:
                raise ValueError(f"outside the network {subnet}")
            entry["ip"] = str(ip)
            if str(ip) in seen_ip:
                problems.append(f"{hpath}.ip: {ip} is also given to {path}.hosts[{seen_ip[str(ip)]}]")
            seen_ip[str(ip)] = i
        except ValueError as exc:
            problems.append(f"{hpath}.ip: {host.get('ip')!r} is not usable ({exc})")
        if host.get("mac") is not None:
            if family == 6:
                problems.append(f"{hpath}.mac: IPv6 DHCP hosts are matched by name or id, not MAC")
            elif macs.problem(host["mac"]):
                problems.append(f"{hpath}.mac: {macs.problem(host['mac'])}")
            else:
                entry["mac"] = macs.normalise(host["mac"])
                if entry["mac"] in seen_mac:
                    problems.append(
                        f"{hpath}.mac: {entry['mac']} is also used by {path}.hosts[{seen_mac[entry['mac']]}]"
                    )
                seen_mac[entry["mac"]] = i
        for key in ("name", "id"):
            if host.get(key) is not None:
                entry[key] = str(host[key])
        if family == 4 and "mac" not in entry and "name" not in entry and host.get("mac") is None:
            problems.append(f"{hpath}: give a mac (or a name) for the host")
        if family == 6 and "name" not in entry and "id" not in entry:
            problems.append(f"{hpath}: give a name or id for the IPv6 host")
        block["hosts"].append(entry)
    return block


def validate(name, data, path=None, others=None, host_bridges=()):
    """Normalise a wanted network; returns ``(spec, problems)``.

    ``others`` maps the names of the host's other networks to their bridge
    names, so a bridge taken by another network is reported; ``host_bridges``
    names the bridges the host makes itself (pillar ``xen:bridges``), which a
    nat/route/isolated network cannot take over.
    """
    path = path or f"xen:networks:{name}"
    problems = []
    data = dict(data or {})
    if not name or not _NAME.match(str(name)):
        problems.append(f"{path}: network name {name!r} is not usable (letters, digits and _ . : + - only)")
    for key in sorted(set(data) - set(_KEYS)):
        problems.append(f"{path}.{key}: unknown key (known: {', '.join(_KEYS)})")
    spec = {"name": str(name)}
    forward = data.get("forward", "nat")
    if forward in (None, "none", False):
        forward = "isolated"
    if not isinstance(forward, str) or forward not in FORWARD_MODES:
        problems.append(f"{path}.forward: expected one of {', '.join(FORWARD_MODES)}, got {forward!r}")
        forward = "nat"
    spec["forward"] = forward
    bridge = data.get("bridge")
    if bridge is not None and (not isinstance(bridge, str) or not _IFNAME.match(bridge)):
        problems.append(f"{path}.bridge: expected an interface name of at most 15 characters, got {bridge!r}")
        bridge = None
    if forward == "bridge" and not bridge and data.get("bridge") is None:
        problems.append(f"{path}.bridge: a bridge-backed network needs the host bridge's name (like xenbr0)")
    spec["bridge"] = str(bridge) if bridge else None
    for other, other_bridge in sorted((others or {}).items()):
        if other != name and bridge and other_bridge == bridge:
            problems.append(f"{path}.bridge: {bridge} is already the bridge of network {other}")
    if bridge and forward in ("nat", "route", "isolated") and bridge in set(host_bridges):
        problems.append(
            f"{path}.bridge: {bridge} is a host bridge (xen:bridges); a {forward} network makes a "
            f"bridge of its own, so name another one, or use forward: bridge to put guests on {bridge}"
        )
    dev = data.get("dev")
    if dev is not None and not isinstance(dev, str):
        problems.append(f"{path}.dev: expected an interface name, got {dev!r}")
        dev = None
    if dev is not None:
        if forward not in ("nat", "route"):
            problems.append(f"{path}.dev: only nat and route networks leave through a NIC, this one is {forward}")
        elif not _IFNAME.match(str(dev)):
            problems.append(f"{path}.dev: expected an interface name, got {dev!r}")
    spec["dev"] = str(dev) if dev else None
    managed = forward != "bridge"
    stp = data.get("stp", True if managed else None)
    if stp is not None and not isinstance(stp, bool):
        problems.append(f"{path}.stp: expected true or false, got {stp!r}")
    delay = data.get("delay", 0 if managed else None)
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 30):
        problems.append(f"{path}.delay: expected seconds from 0 to 30, got {delay!r}")
    if not managed and ("stp" in data or "delay" in data):
        problems.append(f"{path}.stp: a bridge-backed network uses the host bridge as it is; set STP on the bridge")
    spec["stp"], spec["delay"] = stp, delay
    mtu = data.get("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535):
        problems.append(f"{path}.mtu: expected a number from 68 to 65535, got {mtu!r}")
    spec["mtu"] = mtu
    domain = data.get("domain")
    if domain is not None and (not isinstance(domain, str) or not re.match(r"^[A-Za-z0-9.-]{1,253}$", domain)):
        problems.append(f"{path}.domain: expected a DNS domain like lab.example, got {domain!r}")
        domain = None
    spec["domain"] = domain or None
    for family in (4, 6):
        key = f"ipv{family}"
        if data.get(key) is None:
            spec[key] = None
            continue
        if not managed:
            problems.append(
                f"{path}.{key}: a bridge-backed network has no addresses of its own; "
                "the LAN behind the bridge hands them out"
            )
        spec[key] = _ip_block(data[key], family, f"{path}.{key}", problems)
    if forward == "route" and not (spec["ipv4"] or spec["ipv6"]):
        problems.append(f"{path}: a routed network needs an ipv4 or ipv6 address to route to")
    spec["dns"] = _dns(data.get("dns"), f"{path}.dns", problems, managed)
    spec["autostart"] = bool(data.get("autostart", False))
    if data.get("autostart") is not None and not isinstance(data.get("autostart"), bool):
        problems.append(f"{path}.autostart: expected true or false, got {data.get('autostart')!r}")
    spec["uuid"] = str(data["uuid"]) if data.get("uuid") else None
    return spec, problems


def _as_list(value, path, problems):
    """``value`` as a list: None is empty, a single mapping or string is one item, anything else a problem."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, (dict, str)):
        return [value]
    problems.append(f"{path}: expected a list, got {value!r}")
    return []


def _dns(data, path, problems, managed):
    if data is None:
        return None
    if not managed:
        problems.append(f"{path}: a bridge-backed network has no DNS server of its own")
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping with hosts and forwarders, got {data!r}")
        return None
    for key in sorted(set(data) - {"hosts", "forwarders"}):
        problems.append(f"{path}.{key}: unknown key (known: hosts, forwarders)")
    dns = {"hosts": [], "forwarders": []}
    for i, host in enumerate(_as_list(data.get("hosts"), f"{path}.hosts", problems)):
        if not isinstance(host, dict):
            problems.append(f"{path}.hosts[{i}]: expected {{ip: ..., names: [...]}}, got {host!r}")
            continue
        try:
            ip = str(ipaddress.ip_address(str(host.get("ip"))))
        except ValueError:
            problems.append(f"{path}.hosts[{i}].ip: expected an IP address, got {host.get('ip')!r}")
            continue
        names = host.get("names") or ([host["name"]] if host.get("name") else [])
        if isinstance(names, (str, int)):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
            problems.append(f"{path}.hosts[{i}].names: give a list of one or more host names, got {names!r}")
            continue
        dns["hosts"].append({"ip": ip, "names": [str(n) for n in names]})
    for i, fwd in enumerate(_as_list(data.get("forwarders"), f"{path}.forwarders", problems)):
        try:
            dns["forwarders"].append(str(ipaddress.ip_address(str(fwd))))
        except ValueError:
            problems.append(f"{path}.forwarders[{i}]: expected an IP address, got {fwd!r}")
    return dns


# ---------------------------------------------------------------- XML


def to_xml(spec):
    """libvirt network XML for a validated spec."""
    net = ET.Element("network")
    ET.SubElement(net, "name").text = spec["name"]
    if spec.get("uuid"):
        ET.SubElement(net, "uuid").text = spec["uuid"]
    if spec["forward"] != "isolated":
        fwd = ET.SubElement(net, "forward", mode=spec["forward"])
        if spec.get("dev"):
            fwd.set("dev", spec["dev"])
    if spec["forward"] == "bridge":
        ET.SubElement(net, "bridge", name=spec["bridge"])
    else:
        attrs = {}
        if spec.get("bridge"):
            attrs["name"] = spec["bridge"]
        attrs["stp"] = "on" if spec.get("stp", True) else "off"
        attrs["delay"] = str(spec.get("delay") or 0)
        ET.SubElement(net, "bridge", **attrs)
    if spec.get("mtu"):
        ET.SubElement(net, "mtu", size=str(spec["mtu"]))
    if spec.get("domain"):
        ET.SubElement(net, "domain", name=spec["domain"])
    dns = spec.get("dns")
    if dns and (dns["hosts"] or dns["forwarders"]):
        el = ET.SubElement(net, "dns")
        for fwd in dns["forwarders"]:
            ET.SubElement(el, "forwarder", addr=fwd)
        for host in dns["hosts"]:
            h = ET.SubElement(el, "host", ip=host["ip"])
            for hostname in host["names"]:
                ET.SubElement(h, "hostname").text = hostname
    for family in (4, 6):
        block = spec.get(f"ipv{family}")
        if not block:
            continue
        iface = ipaddress.ip_interface(block["address"])
        attrs = {"address": str(iface.ip)}
        if family == 4:
            attrs["netmask"] = str(iface.network.netmask)
        else:
            attrs["family"] = "ipv6"
            attrs["prefix"] = str(iface.network.prefixlen)
        ip = ET.SubElement(net, "ip", **attrs)
        if block["dhcp"] or block["hosts"]:
            dhcp = ET.SubElement(ip, "dhcp")
            for rng in block["dhcp"]:
                ET.SubElement(dhcp, "range", start=rng["start"], end=rng["end"])
            for host in block["hosts"]:
                ET.SubElement(dhcp, "host", **{k: host[k] for k in ("mac", "id", "name", "ip") if k in host})
    ET.indent(net)
    return ET.tostring(net, encoding="unicode")


def parse(xml):
    """The spec of a libvirt network XML (as libvirt returns it), in :func:`validate`'s shape."""
    root = ET.fromstring(xml)
    spec = {"name": root.findtext("name"), "uuid": root.findtext("uuid")}
    fwd = root.find("forward")
    spec["forward"] = "isolated" if fwd is None else fwd.get("mode", "nat")
    spec["dev"] = fwd.get("dev") if fwd is not None else None
    br = root.find("bridge")
    spec["bridge"] = br.get("name") if br is not None else None
    if spec["forward"] == "bridge":
        spec["stp"] = spec["delay"] = None
    else:
        spec["stp"] = (br.get("stp", "on") != "off") if br is not None else True
        spec["delay"] = int(br.get("delay", "0")) if br is not None else 0
    mtu = root.find("mtu")
    spec["mtu"] = int(mtu.get("size")) if mtu is not None else None
    dom = root.find("domain")
    spec["domain"] = dom.get("name") if dom is not None else None
    spec["ipv4"] = spec["ipv6"] = None
    for ip in root.findall("ip"):
        family = 6 if ip.get("family") == "ipv6" or ":" in ip.get("address", "") else 4
        if ip.get("prefix"):
            prefix = ip.get("prefix")
        elif ip.get("netmask"):
            prefix = ipaddress.ip_network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
        else:
            prefix = 24 if family == 4 else 64
        block = {"address": str(ipaddress.ip_interface(f"{ip.get('address')}/{prefix}")), "dhcp": [], "hosts": []}
        for rng in ip.findall("dhcp/range"):
            block["dhcp"].append({"start": rng.get("start"), "end": rng.get("end")})
        for host in ip.findall("dhcp/host"):
            entry = {k: host.get(k) for k in ("mac", "id", "name", "ip") if host.get(k) is not None}
            if "mac" in entry:
                entry["mac"] = macs.normalise(entry["mac"])
            block["hosts"].append(entry)
        if spec[f"ipv{family}"] is None:
            spec[f"ipv{family}"] = block
    dns_el = root.find("dns")
    spec["dns"] = None
    if dns_el is not None:
        dns = {"hosts": [], "forwarders": []}
        for fwd_el in dns_el.findall("forwarder"):
            if fwd_el.get("addr"):
                dns["forwarders"].append(fwd_el.get("addr"))
        for host in dns_el.findall("host"):
            dns["hosts"].append({"ip": host.get("ip"), "names": [h.text for h in host.findall("hostname")]})
        if dns["hosts"] or dns["forwarders"]:
            spec["dns"] = dns
    return spec


def _empty(value):
    return value in (None, [], {}) or (isinstance(value, dict) and not any(value.values()))


def diff(old, new):
    """``{key: {"old": .., "new": ..}}`` for the keys where ``new`` (validated) differs from ``old`` (parsed).

    A key the wanted spec leaves unset (None) is left to libvirt, e.g. the bridge
    name libvirt picks when none is given.
    """
    changes = {}
    for key in COMPARED:
        want = new.get(key)
        have = old.get(key) if old else None
        if want is None and key in ("bridge", "dev", "mtu", "domain", "stp", "delay"):
            continue
        if _empty(want) and _empty(have):
            continue
        if want != have:
            changes[key] = {"old": have, "new": want}
    return changes


# ---------------------------------------------------------------- changes a running network takes live

# libvirt's virNetworkUpdate sections (numbers from libvirt's API, stable)
SECTION_IP_DHCP_HOST = 4
SECTION_IP_DHCP_RANGE = 5
SECTION_DNS_HOST = 10
COMMAND_DELETE = 2
COMMAND_ADD_LAST = 3


def _host_xml(host):
    el = ET.Element("host", **{k: host[k] for k in ("mac", "id", "name", "ip") if k in host})
    return ET.tostring(el, encoding="unicode")


def _dns_host_xml(host):
    el = ET.Element("host", ip=host["ip"])
    for hostname in host["names"]:
        ET.SubElement(el, "hostname").text = hostname
    return ET.tostring(el, encoding="unicode")


def _list_ops(old, new, section, index, render):
    ops = [(COMMAND_DELETE, section, index, render(item)) for item in old if item not in new]
    ops += [(COMMAND_ADD_LAST, section, index, render(item)) for item in new if item not in old]
    return ops


def live_updates(old, new):
    """``[(command, section, ip index, xml)]`` that bring a running network from ``old`` to
    ``new`` without a restart, or None when a change needs one.

    libvirt (``virNetworkUpdate``) can add and remove DHCP ranges, DHCP static
    hosts and DNS host entries of a running network; anything else (forward mode,
    bridge, addresses, ...) only takes effect when the network restarts.
    """
    changes = diff(old, new)
    if not changes or set(changes) - {"ipv4", "ipv6", "dns"}:
        return None
    ops = []
    for family in (4, 6):
        key = f"ipv{family}"
        if key not in changes:
            continue
        have, want = changes[key]["old"], changes[key]["new"]
        if not have or not want or have["address"] != want["address"]:
            return None
        index = 0 if family == 4 or not old.get("ipv4") else 1
        ranges = _list_ops(
            have["dhcp"],
            want["dhcp"],
            SECTION_IP_DHCP_RANGE,
            index,
            lambda r: ET.tostring(ET.Element("range", start=r["start"], end=r["end"]), encoding="unicode"),
        )
        if (not have["dhcp"] and not have["hosts"]) or (not want["dhcp"] and not want["hosts"]):
            return None  # adding or dropping the whole <dhcp> element needs a restart
        # hosts go first when removing (a range may not vanish under a host), last when adding
        hosts = _list_ops(have["hosts"], want["hosts"], SECTION_IP_DHCP_HOST, index, _host_xml)
        ops += (
            [op for op in hosts if op[0] == COMMAND_DELETE] + ranges + [op for op in hosts if op[0] != COMMAND_DELETE]
        )
    if "dns" in changes:
        have, want = changes["dns"]["old"] or {"hosts": [], "forwarders": []}, changes["dns"]["new"]
        want = want or {"hosts": [], "forwarders": []}
        if have["forwarders"] != want["forwarders"]:
            return None
        ops += _list_ops(have["hosts"], want["hosts"], SECTION_DNS_HOST, -1, _dns_host_xml)
    return ops
