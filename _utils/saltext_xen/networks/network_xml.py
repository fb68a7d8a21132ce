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
from saltext_xen.core import validate as vocab

FORWARD_MODES = ("nat", "route", "isolated", "bridge")
NAME_MAX = 50
_KEYS = ("forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns", "autostart", "uuid")
# keys compared by diff (autostart and uuid are handled apart)
COMPARED = ("forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns")


def _range(item, family, subnet, path, problems):
    if isinstance(item, str) and "-" in item:
        start, _, end = item.partition("-")
        item = {"start": start.strip(), "end": end.strip()}
    if not isinstance(item, dict) or set(item) != {"start", "end"}:
        problems.expected(path, "{start: ..., end: ...} or 'START-END'", item)
        return None
    start = vocab.ip_address(str(item["start"]), vocab.key_path(path, "start"), problems, version=family)
    end = vocab.ip_address(str(item["end"]), vocab.key_path(path, "end"), problems, version=family)
    if start is None or end is None:
        return None
    start, end = ipaddress.ip_address(start), ipaddress.ip_address(end)
    if start > end:
        problems.add(path, f"start {start} comes after end {end}")
        return None
    if subnet is not None and (start not in subnet or end not in subnet):
        problems.add(path, f"range {start} - {end} is not inside the network {subnet}")
        return None
    return {"start": str(start), "end": str(end)}


def _address(addr, family, path, problems):
    """The network's own address with its prefix (``192.168.123.1/24``) and its subnet, or (None, None)."""
    found = vocab.cidr(addr if isinstance(addr, str) else str(addr), path, problems, version=family, host=True)
    if found is None:
        return None, None
    iface = ipaddress.ip_interface(found)
    subnet = iface.network
    if family == 4 and subnet.prefixlen < 31 and iface.ip in (subnet.network_address, subnet.broadcast_address):
        which = "network" if iface.ip == subnet.network_address else "broadcast"
        problems.add(
            path, f"expected an address for the host, got {found} ({iface.ip} is the network's {which} address)"
        )
        return None, None
    return found, subnet


def _host(host, family, subnet, hpath, problems):
    entry = {}
    vocab.unknown_keys(host, ("mac", "name", "ip", "id"), hpath, problems)
    ip = vocab.ip_address(str(host.get("ip")), vocab.key_path(hpath, "ip"), problems, version=family)
    if ip is not None and subnet is not None and ipaddress.ip_address(ip) not in subnet:
        problems.add(vocab.key_path(hpath, "ip"), f"{ip} is outside the network {subnet}")
        ip = None
    if ip is not None:
        entry["ip"] = ip
    if host.get("mac") is not None:
        if family == 6:
            problems.add(vocab.key_path(hpath, "mac"), "IPv6 DHCP hosts are matched by name or id, not MAC")
        else:
            mac = vocab.mac(host["mac"], vocab.key_path(hpath, "mac"), problems)
            if mac is not None:
                entry["mac"] = mac
    for key in ("name", "id"):
        if host.get(key) is not None:
            entry[key] = str(host[key])
    if family == 4 and "mac" not in entry and "name" not in entry and host.get("mac") is None:
        problems.add(hpath, "give a mac (or a name) for the host")
    if family == 6 and "name" not in entry and "id" not in entry:
        problems.add(hpath, "give a name or id for the IPv6 host")
    return entry


def _ip_block(data, family, path, problems):
    data = vocab.mapping(data, path, problems, what="a mapping with address, dhcp, hosts", allow_none=False)
    if data is None:
        return None
    vocab.unknown_keys(data, ("address", "dhcp", "hosts"), path, problems)
    block = {"address": None, "dhcp": [], "hosts": []}
    block["address"], subnet = _address(data.get("address"), family, vocab.key_path(path, "address"), problems)
    own = ipaddress.ip_interface(block["address"]).ip if block["address"] else None
    for i, item in enumerate(_as_list(data.get("dhcp"), vocab.key_path(path, "dhcp"), problems)):
        rpath = vocab.key_path(path, "dhcp", i)
        rng = _range(item, family, subnet, rpath, problems)
        if rng is None:
            continue
        lo, hi = ipaddress.ip_address(rng["start"]), ipaddress.ip_address(rng["end"])
        if own is not None and lo <= own <= hi:
            problems.add(rpath, f"range {lo} - {hi} holds the network's own address {own}")
        for j, other in enumerate(block["dhcp"]):
            if lo <= ipaddress.ip_address(other["end"]) and ipaddress.ip_address(other["start"]) <= hi:
                problems.add(
                    rpath,
                    f"range {lo} - {hi} overlaps {vocab.key_path(path, 'dhcp', j)} ({other['start']} - {other['end']})",
                )
        block["dhcp"].append(rng)
    seen_ip, seen_mac = {}, {}
    for i, host in enumerate(_as_list(data.get("hosts"), vocab.key_path(path, "hosts"), problems)):
        hpath = vocab.key_path(path, "hosts", i)
        if not isinstance(host, dict):
            problems.expected(hpath, "a mapping with mac/name and ip", host)
            continue
        entry = _host(host, family, subnet, hpath, problems)
        for key, seen, words in (("ip", seen_ip, "given to"), ("mac", seen_mac, "used by")):
            if entry.get(key) in seen:
                problems.add(vocab.key_path(hpath, key), f"{entry[key]} is also {words} {seen[entry[key]]}")
            elif entry.get(key):
                seen[entry[key]] = hpath
        block["hosts"].append(entry)
    return block


def subnets(spec):
    """The networks (``192.168.122.0/24``) a network spec's ipv4/ipv6 addresses are in."""
    found = []
    for family in (4, 6):
        block = (spec or {}).get(f"ipv{family}")
        if block and block.get("address"):
            found.append(str(ipaddress.ip_interface(block["address"]).network))
    return found


def overlaps(spec, path, others=None, host_addrs=None, own_bridge=None):
    """Problems for a subnet of ``spec`` that another libvirt network or a host interface has already.

    ``others`` maps the other networks to ``{"bridge", "subnets"}``; ``host_addrs`` maps
    interface names to their addresses (``10.0.0.2/24``); the network's own bridge
    (``spec``'s or ``own_bridge``, the one it runs on now) and the other networks' bridges
    are left out of the host's interfaces, so each clash is said once.
    """
    problems = vocab.Problems()
    others = {k: v for k, v in (others or {}).items() if isinstance(v, dict)}
    skip = {spec.get("bridge"), own_bridge} | {info.get("bridge") for info in others.values()}
    for family in (4, 6):
        block = spec.get(f"ipv{family}")
        if not block or not block.get("address"):
            continue
        mine = ipaddress.ip_interface(block["address"]).network
        where = vocab.key_path(path, f"ipv{family}", "address")
        for other, info in sorted(others.items()):
            for theirs in info.get("subnets") or []:
                net = ipaddress.ip_network(theirs, strict=False)
                if net.version == mine.version and net.overlaps(mine):
                    problems.add(where, f"{mine} overlaps network '{other}' ({net})")
        for ifname, addrs in sorted((host_addrs or {}).items()):
            if ifname in skip:
                continue
            for addr in addrs:
                iface = ipaddress.ip_interface(addr)
                if iface.version == mine.version and iface.network.overlaps(mine):
                    problems.add(where, f"{mine} overlaps the address {addr} of host interface '{ifname}'")
    return list(problems)


def validate(name, data, path=None, others=None, host_bridges=(), host_addrs=None, own_bridge=None):
    """Normalise a wanted network; returns ``(spec, problems)``.

    ``others`` maps the names of the host's other networks to their bridge
    names (or to ``{"bridge", "subnets"}``), so a bridge or a subnet taken by
    another network is reported; ``host_bridges`` names the bridges the host
    makes itself (pillar ``xen:bridges``), which a nat/route/isolated network
    cannot take over; ``host_addrs`` (``{interface: [address/prefix]}``) the
    addresses on the host's interfaces, which the network's subnet may not
    overlap (see :func:`overlaps`). Problems are named by key path
    (``xen:networks:virbr1:ipv4:dhcp:0``).
    """
    path = path or vocab.key_path("xen", "networks", name)
    problems = vocab.Problems()
    data = vocab.mapping(data, path, problems, what="a mapping of network settings") or {}
    vocab.name(name, path, problems, what="a network name", max_length=NAME_MAX)
    vocab.unknown_keys(data, _KEYS, path, problems)
    spec = {"name": str(name)}
    forward = data.get("forward", "nat")
    if forward in (None, "none", False):
        forward = "isolated"
    forward = vocab.choice(forward, vocab.key_path(path, "forward"), problems, FORWARD_MODES) or "nat"
    spec["forward"] = forward
    bridge = data.get("bridge")
    if bridge is not None:
        bridge = vocab.interface_name(bridge, vocab.key_path(path, "bridge"), problems)
    if forward == "bridge" and not bridge and data.get("bridge") is None:
        problems.add(
            vocab.key_path(path, "bridge"), "a bridge-backed network needs the host bridge's name (like xenbr0)"
        )
    spec["bridge"] = bridge or None
    for other, info in sorted((others or {}).items()):
        other_bridge = info.get("bridge") if isinstance(info, dict) else info
        if other != name and bridge and other_bridge == bridge:
            problems.add(vocab.key_path(path, "bridge"), f"{bridge} is already the bridge of network {other}")
    if bridge and forward in ("nat", "route", "isolated") and bridge in set(host_bridges):
        problems.add(
            vocab.key_path(path, "bridge"),
            f"{bridge} is a host bridge (xen:bridges); a {forward} network makes a "
            f"bridge of its own, so name another one, or use forward: bridge to put guests on {bridge}",
        )
    dev = data.get("dev")
    if dev is not None:
        dev = vocab.interface_name(dev, vocab.key_path(path, "dev"), problems, what="a NIC name")
        if dev is not None and forward not in ("nat", "route"):
            problems.add(
                vocab.key_path(path, "dev"), f"only nat and route networks leave through a NIC, this one is {forward}"
            )
    spec["dev"] = dev or None
    managed = forward != "bridge"
    stp = data.get("stp", True if managed else None)
    if stp is not None:
        stp = vocab.boolean(stp, vocab.key_path(path, "stp"), problems)
    delay = data.get("delay", 0 if managed else None)
    if delay is not None:
        delay = vocab.integer(delay, vocab.key_path(path, "delay"), problems, 0, 30, what="seconds")
    if not managed and ("stp" in data or "delay" in data):
        problems.add(
            vocab.key_path(path, "stp"), "a bridge-backed network uses the host bridge as it is; set STP on the bridge"
        )
    spec["stp"], spec["delay"] = stp, delay
    mtu = data.get("mtu")
    if mtu is not None:
        mtu = vocab.integer(mtu, vocab.key_path(path, "mtu"), problems, 68, 65535, what="an MTU")
    spec["mtu"] = mtu
    domain = data.get("domain")
    if domain is not None and (not isinstance(domain, str) or not re.match(r"^[A-Za-z0-9.-]{1,253}$", domain)):
        problems.expected(vocab.key_path(path, "domain"), "a DNS domain like lab.example", domain)
        domain = None
    spec["domain"] = domain or None
    for family in (4, 6):
        key = f"ipv{family}"
        if data.get(key) is None:
            spec[key] = None
            continue
        if not managed:
            problems.add(
                vocab.key_path(path, key),
                "a bridge-backed network has no addresses of its own; the LAN behind the bridge hands them out",
            )
        spec[key] = _ip_block(data[key], family, vocab.key_path(path, key), problems)
    if forward == "route" and not (spec["ipv4"] or spec["ipv6"]):
        problems.add(path, "a routed network needs an ipv4 or ipv6 address to route to")
    spec["dns"] = _dns(data.get("dns"), vocab.key_path(path, "dns"), problems, managed)
    autostart = data.get("autostart")
    if autostart is not None:
        autostart = vocab.boolean(autostart, vocab.key_path(path, "autostart"), problems)
    spec["autostart"] = bool(autostart)
    spec["uuid"] = str(data["uuid"]) if data.get("uuid") else None
    problems += overlaps(spec, path, others, host_addrs, own_bridge)
    return spec, list(problems)


def _as_list(value, path, problems):
    """``value`` as a list: None is empty, a single mapping or string is one item, anything else a problem."""
    if isinstance(value, (dict, str)):
        return [value]
    return vocab.sequence(value, path, problems) or []


def _dns(data, path, problems, managed):
    if data is None:
        return None
    if not managed:
        problems.add(path, "a bridge-backed network has no DNS server of its own")
    data = vocab.mapping(data, path, problems, what="a mapping with hosts and forwarders", allow_none=False)
    if data is None:
        return None
    vocab.unknown_keys(data, ("hosts", "forwarders"), path, problems)
    dns = {"hosts": [], "forwarders": []}
    for i, host in enumerate(_as_list(data.get("hosts"), vocab.key_path(path, "hosts"), problems)):
        hpath = vocab.key_path(path, "hosts", i)
        if not isinstance(host, dict):
            problems.expected(hpath, "{ip: ..., names: [...]}", host)
            continue
        ip = vocab.ip_address(str(host.get("ip")), vocab.key_path(hpath, "ip"), problems)
        if ip is None:
            continue
        names = host.get("names") or ([host["name"]] if host.get("name") else [])
        if isinstance(names, (str, int)):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
            problems.expected(vocab.key_path(hpath, "names"), "a list of one or more host names", names)
            continue
        dns["hosts"].append({"ip": ip, "names": [str(n) for n in names]})
    for i, fwd in enumerate(_as_list(data.get("forwarders"), vocab.key_path(path, "forwarders"), problems)):
        ip = vocab.ip_address(str(fwd), vocab.key_path(path, "forwarders", i), problems)
        if ip is not None:
            dns["forwarders"].append(ip)
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
