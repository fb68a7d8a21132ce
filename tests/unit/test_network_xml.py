"""libvirt network specs: validation with key paths, XML out, XML back in, diff."""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.networks import network_xml as nx

VIRBR1 = {
    "forward": "nat",
    "bridge": "virbr1",
    "autostart": True,
    "ipv4": {"address": "192.168.123.1/24", "dhcp": [{"start": "192.168.123.2", "end": "192.168.123.254"}]},
}


def valid(name, data):
    spec, problems = nx.validate(name, data)
    assert problems == []
    return spec


def test_tutorial_virbr1_renders_like_the_hand_written_file():
    xml = nx.to_xml(valid("virbr1", VIRBR1))
    assert xml == (
        "<network>\n"
        "  <name>virbr1</name>\n"
        '  <forward mode="nat" />\n'
        '  <bridge name="virbr1" stp="on" delay="0" />\n'
        '  <ip address="192.168.123.1" netmask="255.255.255.0">\n'
        "    <dhcp>\n"
        '      <range start="192.168.123.2" end="192.168.123.254" />\n'
        "    </dhcp>\n"
        "  </ip>\n"
        "</network>"
    )


def test_short_range_form_and_autostart_are_accepted():
    spec = valid("virbr1", dict(VIRBR1, ipv4={"address": "192.168.123.1/24", "dhcp": "192.168.123.2-192.168.123.254"}))
    assert spec["ipv4"]["dhcp"] == [{"start": "192.168.123.2", "end": "192.168.123.254"}]
    assert spec["autostart"] is True


def test_overlapping_ranges_and_range_outside_subnet_are_named_by_path():
    _, problems = nx.validate(
        "virbr1",
        {
            "ipv4": {
                "address": "192.168.123.1/24",
                "dhcp": [
                    "192.168.123.2-192.168.123.100",
                    "192.168.123.50-192.168.123.150",
                    "192.168.124.2-192.168.124.9",
                ],
            }
        },
    )
    assert problems == [
        "xen:networks:virbr1:ipv4:dhcp:1: range 192.168.123.50 - 192.168.123.150 overlaps "
        "xen:networks:virbr1:ipv4:dhcp:0 (192.168.123.2 - 192.168.123.100)",
        "xen:networks:virbr1:ipv4:dhcp:2: range 192.168.124.2 - 192.168.124.9 is not inside the network "
        "192.168.123.0/24",
    ]


def test_bridge_taken_by_another_network_is_refused():
    _, problems = nx.validate("virbr1", {"bridge": "virbr0"}, others={"default": "virbr0", "virbr1": "virbr0"})
    assert problems == ["xen:networks:virbr1:bridge: virbr0 is already the bridge of network default"]


def test_host_bridge_cannot_be_taken_by_a_nat_network():
    _, problems = nx.validate(
        "lan",
        {"forward": "nat", "bridge": "xenbr0", "ipv4": {"address": "10.0.0.1/24"}},
        host_bridges=["xenbr0", "xenbr1"],
    )
    assert problems == [
        "xen:networks:lan:bridge: xenbr0 is a host bridge (xen:bridges); a nat network makes a "
        "bridge of its own, so name another one, or use forward: bridge to put guests on xenbr0"
    ]
    assert nx.validate("lan", {"forward": "bridge", "bridge": "xenbr0"}, host_bridges=["xenbr0"])[1] == []


def test_many_problems_at_once():
    _, problems = nx.validate(
        "lan", {"forward": "bridge", "ipv4": {"address": "10.0.0.1/24"}, "dev": "eth0", "colour": "red"}
    )
    text = "\n".join(problems)
    assert "xen:networks:lan:colour: unknown key" in text
    assert "xen:networks:lan:bridge: a bridge-backed network needs the host bridge's name" in text
    assert "xen:networks:lan:ipv4: a bridge-backed network has no addresses" in text
    assert "xen:networks:lan:dev: only nat and route networks" in text


def test_static_hosts_checked():
    _, problems = nx.validate(
        "n",
        {
            "ipv4": {
                "address": "10.0.0.1/24",
                "dhcp": ["10.0.0.1-10.0.0.9"],
                "hosts": [
                    {"mac": "00:16:3e:00:00:01", "ip": "10.0.0.20"},
                    {"mac": "00:16:3E:00:00:01", "ip": "10.0.1.20"},
                    {"mac": "01:00:5e:00:00:01", "ip": "10.0.0.20"},
                ],
            }
        },
    )
    assert problems == [
        "xen:networks:n:ipv4:dhcp:0: range 10.0.0.1 - 10.0.0.9 holds the network's own address 10.0.0.1",
        "xen:networks:n:ipv4:hosts:1:ip: 10.0.1.20 is outside the network 10.0.0.0/24",
        "xen:networks:n:ipv4:hosts:1:mac: 00:16:3e:00:00:01 is also used by xen:networks:n:ipv4:hosts:0",
        "xen:networks:n:ipv4:hosts:2:mac: '01:00:5e:00:00:01' is a multicast address "
        "(lowest bit of the first octet is set)",
        "xen:networks:n:ipv4:hosts:2:ip: 10.0.0.20 is also given to xen:networks:n:ipv4:hosts:0",
    ]


def test_parse_of_libvirt_output_diffs_empty_against_the_spec():
    libvirt_xml = """<network>
  <name>default</name>
  <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0a:cd:21'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>"""
    have = nx.parse(libvirt_xml)
    want = valid(
        "default",
        {"bridge": "virbr0", "ipv4": {"address": "192.168.122.1/24", "dhcp": ["192.168.122.2-192.168.122.254"]}},
    )
    assert nx.diff(have, want) == {}
    want = valid("default", {"ipv4": {"address": "192.168.122.1/24", "dhcp": ["192.168.122.2-192.168.122.128"]}})
    assert nx.diff(have, want) == {
        "ipv4": {
            "old": {
                "address": "192.168.122.1/24",
                "dhcp": [{"start": "192.168.122.2", "end": "192.168.122.254"}],
                "hosts": [],
            },
            "new": {
                "address": "192.168.122.1/24",
                "dhcp": [{"start": "192.168.122.2", "end": "192.168.122.128"}],
                "hosts": [],
            },
        }
    }


@st.composite
def networks(draw):
    forward = draw(st.sampled_from(["nat", "route", "isolated", "bridge"]))
    data = {"forward": forward, "bridge": draw(st.from_regex(r"\Avirbr[0-9]{1,3}\Z"))}
    if forward == "bridge":
        return data
    data["stp"] = draw(st.booleans())
    data["delay"] = draw(st.integers(0, 30))
    third = draw(st.integers(0, 255))
    net = ipaddress.ip_network(f"10.{third}.0.0/24")
    data["ipv4"] = {"address": f"10.{third}.0.1/24"}
    cut = sorted(draw(st.lists(st.integers(2, 254), min_size=2, max_size=6, unique=True)))
    ranges = [{"start": str(net[cut[i]]), "end": str(net[cut[i + 1]])} for i in range(0, len(cut) - 1, 2)]
    data["ipv4"]["dhcp"] = ranges
    if draw(st.booleans()):
        data["ipv6"] = {"address": f"fd00:{third:x}::1/64", "hosts": [{"name": "vm02", "ip": f"fd00:{third:x}::10"}]}
    if draw(st.booleans()):
        data["dns"] = {"hosts": [{"ip": f"10.{third}.0.9", "names": ["a", "b"]}], "forwarders": ["192.0.2.53"]}
    return data


@settings(max_examples=60, deadline=None)
@given(networks())
def test_round_trip_spec_xml_spec(data):
    spec = valid("n1", data)
    assert nx.diff(nx.parse(nx.to_xml(spec)), spec) == {}


def test_live_updates_cover_dhcp_and_dns_hosts_only():
    old = valid(
        "n",
        {
            "ipv4": {
                "address": "10.0.0.1/24",
                "dhcp": ["10.0.0.10-10.0.0.20"],
                "hosts": [{"mac": "00:16:3e:00:00:01", "ip": "10.0.0.5"}],
            }
        },
    )
    new = valid(
        "n",
        {
            "ipv4": {
                "address": "10.0.0.1/24",
                "dhcp": ["10.0.0.10-10.0.0.30"],
                "hosts": [{"mac": "00:16:3e:00:00:02", "ip": "10.0.0.6"}],
            }
        },
    )
    ops = nx.live_updates(old, new)
    assert [(op[0], op[1]) for op in ops] == [
        (nx.COMMAND_DELETE, nx.SECTION_IP_DHCP_HOST),
        (nx.COMMAND_DELETE, nx.SECTION_IP_DHCP_RANGE),
        (nx.COMMAND_ADD_LAST, nx.SECTION_IP_DHCP_RANGE),
        (nx.COMMAND_ADD_LAST, nx.SECTION_IP_DHCP_HOST),
    ]
    assert ops[-1][3] == '<host mac="00:16:3e:00:00:02" ip="10.0.0.6" />'
    assert nx.live_updates(old, old) is None
    moved = valid("n", {"ipv4": {"address": "10.0.1.1/24", "dhcp": ["10.0.1.10-10.0.1.20"]}})
    assert nx.live_updates(old, moved) is None
    assert nx.live_updates(old, dict(new, domain="x.example")) is None


_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.text(max_size=20)
    | st.sampled_from(["10.0.0.1/24", "10.0.0.5", "fd00::1/64", "10.0.0.2-10.0.0.9", "00:16:3e:00:00:01"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["address", "dhcp", "hosts", "start", "end", "mac", "ip", "name", "names", "forwarders", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns", "autostart", "colour"]
        ),
        _junk,
        max_size=6,
    )
)
def test_any_pillar_gives_problems_not_a_traceback(data):
    spec, problems = nx.validate("n1", data)
    assert all(p.startswith("xen:networks:n1") for p in problems)
    if not problems:
        nx.to_xml(spec)
