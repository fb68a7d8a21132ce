"""Bridge plans from a described host: order of steps, undo, validation, removal, topology."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.networks import bridges


def link(kind=None, master=None, mtu=1500, up=True, carrier=True, mac="52:54:00:00:00:01", **extra):
    entry = {"kind": kind, "master": master, "mtu": mtu, "up": up, "carrier": carrier, "mac": mac}
    if kind == "bridge":
        entry.setdefault("stp", False)
        entry.setdefault("forward_delay", 0)
    entry.update(extra)
    return entry


def host(links, addrs=None, routes=None):
    return {"links": links, "addrs": addrs or {}, "routes": routes or []}


def tutorial_host():
    """dom0 before: eth0 holds 192.168.0.10/24 and the default route."""
    return host(
        {
            "lo": link(mac="00:00:00:00:00:00"),
            "eth0": link(mac="00:1e:c9:aa:bb:cc"),
            "eth1": link(mac="00:1e:c9:aa:bb:cd"),
        },
        {"eth0": ["192.168.0.10/24"], "eth1": []},
        [{"family": 4, "dst": "default", "dev": "eth0", "gateway": "192.168.0.254"}],
    )


def spec(**data):
    out, problems = bridges.validate(data)
    assert problems == []
    return out


def cmds(steps):
    return [" ".join(s["cmd"]) for s in steps]


def test_bridge_over_nic_keeps_connectivity_order():
    steps = bridges.plan(tutorial_host(), spec(name="xenbr0", nic="eth0"))
    assert cmds(steps) == [
        "ip link add name xenbr0 address 00:1e:c9:aa:bb:cc type bridge stp_state 0 forward_delay 0",
        "ip link set dev xenbr0 up",
        "ip addr add 192.168.0.10/24 dev xenbr0",
        "ip link set dev eth0 master xenbr0",
        "ip -4 route replace default via 192.168.0.254 dev xenbr0",
        "ip addr del 192.168.0.10/24 dev eth0",
    ]


def test_every_step_but_bring_up_of_a_new_bridge_has_an_undo():
    steps = bridges.plan(tutorial_host(), spec(name="xenbr0", nic="eth0"))
    undos = [" ".join(s["undo"]) if s["undo"] else None for s in steps]
    assert undos == [
        "ip link del xenbr0",
        None,
        "ip addr del 192.168.0.10/24 dev xenbr0",
        "ip link set dev eth0 nomaster",
        "ip -4 route replace default via 192.168.0.254 dev eth0",
        "ip addr add 192.168.0.10/24 dev eth0",
    ]


def test_bridge_already_as_wanted_plans_nothing():
    state = host(
        {"eth0": link(master="xenbr0"), "xenbr0": link(kind="bridge")},
        {"xenbr0": ["192.168.0.10/24"], "eth0": []},
        [{"family": 4, "dst": "default", "dev": "xenbr0", "gateway": "192.168.0.254"}],
    )
    assert bridges.plan(state, spec(name="xenbr0", nic="eth0")) == []


def test_host_only_bridge_with_address_stp_and_mtu():
    steps = bridges.plan(
        tutorial_host(), spec(name="xenbr9", stp=True, forward_delay=4, mtu=9000, addresses=["10.99.0.1/24"])
    )
    assert cmds(steps) == [
        "ip link add name xenbr9 type bridge stp_state 1 forward_delay 400",
        "ip link set dev xenbr9 up",
        "ip addr add 10.99.0.1/24 dev xenbr9",
        "ip link set dev xenbr9 mtu 9000",
    ]


def test_vlan_sub_interface_is_created_and_bridged():
    steps = bridges.plan(tutorial_host(), spec(name="xenbr10", nic="eth1", vlan=10))
    assert cmds(steps) == [
        "ip link add name xenbr10 address 00:1e:c9:aa:bb:cd type bridge stp_state 0 forward_delay 0",
        "ip link add link eth1 name eth1.10 type vlan id 10",
        "ip link set dev xenbr10 up",
        "ip link set dev eth1.10 up",
        "ip link set dev eth1.10 master xenbr10",
    ]


def test_turning_stp_off_sets_the_delay_after_stp_is_off():
    state = host({"xenbr0": link(kind="bridge", stp=True, forward_delay=15)})
    steps = bridges.plan(state, spec(name="xenbr0"))
    assert cmds(steps) == [
        "ip link set dev xenbr0 type bridge stp_state 0",
        "ip link set dev xenbr0 type bridge forward_delay 0",
    ]
    steps = bridges.plan(host({"xenbr0": link(kind="bridge")}), spec(name="xenbr0", stp=True, forward_delay=2))
    assert cmds(steps) == [
        "ip link set dev xenbr0 type bridge forward_delay 200",
        "ip link set dev xenbr0 type bridge stp_state 1",
    ]


def test_nic_in_another_bridge_is_refused():
    state = tutorial_host()
    state["links"]["eth0"]["master"] = "br-other"
    state["links"]["br-other"] = link(kind="bridge")
    with pytest.raises(bridges.BridgeError, match="eth0 is already a port of br-other"):
        bridges.plan(state, spec(name="xenbr0", nic="eth0"))


def test_missing_nic_is_named():
    with pytest.raises(bridges.BridgeError, match="NIC eth7 does not exist"):
        bridges.plan(tutorial_host(), spec(name="xenbr0", nic="eth7"))


def test_validation_names_every_problem_with_its_key_path():
    _, problems = bridges.validate(
        {
            "name": "a-name-far-too-long",
            "vlan": 5000,
            "stp": "yes",
            "forward_delay": 99,
            "mtu": 10,
            "addresses": ["10.0.0.1", "bogus"],
            "colour": "blue",
        },
        path="xen:bridges:x",
    )
    text = "\n".join(problems)
    for key in (
        "xen:bridges:x:name",
        "xen:bridges:x:vlan",
        "xen:bridges:x:stp",
        "xen:bridges:x:forward_delay",
        "xen:bridges:x:mtu",
        "xen:bridges:x:addresses:0",
        "xen:bridges:x:addresses:1",
        "xen:bridges:x:colour",
    ):
        assert key in text
    _, problems = bridges.validate({"name": "xenbr0", "stp": True, "forward_delay": 0})
    assert problems == ["bridge:forward_delay: with stp on the kernel needs 2 to 30 seconds, got 0"]


def test_removal_refused_while_guests_use_the_bridge_unless_forced():
    state = host(
        {"eth0": link(master="xenbr0"), "vif3.0": link(master="xenbr0"), "xenbr0": link(kind="bridge")},
        {"xenbr0": ["192.168.0.10/24"]},
        [{"family": 4, "dst": "default", "dev": "xenbr0", "gateway": "192.168.0.254"}],
    )
    with pytest.raises(bridges.BridgeInUse) as err:
        bridges.plan_remove(state, "xenbr0", guests=["vm03"])
    assert err.value.guests == ["vif3.0", "vm03"]
    steps = bridges.plan_remove(state, "xenbr0", guests=["vm03"], force=True)
    assert cmds(steps) == [
        "ip addr add 192.168.0.10/24 dev eth0",
        "ip link set dev eth0 nomaster",
        "ip -4 route replace default via 192.168.0.254 dev eth0",
        "ip link set dev vif3.0 nomaster",
        "ip link del xenbr0",
    ]
    assert bridges.plan_remove(state, "xenbr7") == []


class FakeRunner:
    """Records commands; fails the ones containing ``fail_on``."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, argv):
        self.calls.append(" ".join(argv))
        if self.fail_on and self.fail_on in " ".join(argv):
            return {"retcode": 2, "stdout": "", "stderr": "RTNETLINK answers: Operation not permitted"}
        return {"retcode": 0, "stdout": "", "stderr": ""}


def test_failed_step_rolls_back_newest_first():
    steps = bridges.plan(tutorial_host(), spec(name="xenbr0", nic="eth0"))
    runner = FakeRunner(fail_on="route replace default via 192.168.0.254 dev xenbr0")
    with pytest.raises(bridges.BridgeError, match="everything done before was undone"):
        bridges.apply(steps, runner, netns="t1")
    assert runner.calls[-3:] == [
        "ip netns exec t1 ip link set dev eth0 nomaster",
        "ip netns exec t1 ip addr del 192.168.0.10/24 dev xenbr0",
        "ip netns exec t1 ip link del xenbr0",
    ]


def test_bridge_that_does_not_come_up_is_rolled_back():
    steps = bridges.plan(tutorial_host(), spec(name="xenbr0", nic="eth0"))
    runner = FakeRunner()
    with pytest.raises(bridges.BridgeError, match="did not come up: no carrier"):
        bridges.apply(steps, runner, verify=lambda: "no carrier", timeout=0, sleep=lambda _s: None)
    assert runner.calls[len(steps) :] == [
        "ip addr add 192.168.0.10/24 dev eth0",
        "ip -4 route replace default via 192.168.0.254 dev eth0",
        "ip link set dev eth0 nomaster",
        "ip addr del 192.168.0.10/24 dev xenbr0",
        "ip link del xenbr0",
    ]


def test_parse_reads_ip_json():
    links = [
        {
            "ifname": "eth0",
            "flags": ["BROADCAST", "UP", "LOWER_UP"],
            "mtu": 1500,
            "master": "xenbr0",
            "address": "00:1e:c9:aa:bb:cc",
            "linkinfo": {"info_slave_kind": "bridge"},
        },
        {
            "ifname": "xenbr0",
            "flags": ["UP", "LOWER_UP"],
            "mtu": 1500,
            "address": "00:1e:c9:aa:bb:cc",
            "linkinfo": {"info_kind": "bridge", "info_data": {"stp_state": 1, "forward_delay": 1500}},
        },
        {
            "ifname": "eth1.10",
            "flags": [],
            "mtu": 1500,
            "link": "eth1",
            "address": "00:1e:c9:aa:bb:cd",
            "linkinfo": {"info_kind": "vlan", "info_data": {"id": 10}},
        },
    ]
    addrs = [
        {
            "ifname": "xenbr0",
            "addr_info": [
                {"family": "inet", "local": "192.168.0.10", "prefixlen": 24, "scope": "global"},
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
            ],
        }
    ]
    routes = [
        {"dst": "default", "gateway": "192.168.0.254", "dev": "xenbr0", "flags": []},
        {"dst": "192.168.0.0/24", "dev": "xenbr0", "protocol": "kernel", "scope": "link"},
    ]
    state = bridges.parse(links, addrs, routes, [])
    assert state["links"]["xenbr0"]["stp"] is True and state["links"]["xenbr0"]["forward_delay"] == 15
    assert state["links"]["eth1.10"]["vlan"] == 10 and state["links"]["eth1.10"]["parent"] == "eth1"
    assert state["addrs"] == {"xenbr0": ["192.168.0.10/24"]}
    assert state["routes"] == [{"family": 4, "dst": "default", "dev": "xenbr0", "gateway": "192.168.0.254"}]


def test_topology_reads_like_the_tutorial():
    state = host(
        {
            "peth0": link(master="xenbr0"),
            "vif1.0": link(master="xenbr0"),
            "vif1.1": link(master="virbr0"),
            "xenbr0": link(kind="bridge"),
            "virbr0": link(kind="bridge"),
        }
    )
    guests = [
        {
            "name": "vm02",
            "domid": 1,
            "nics": [
                {"mac": "00:16:3e:02:00:01", "bridge": "xenbr0"},
                {"mac": "00:16:3e:02:00:02", "network": "default"},
            ],
        },
        {"name": "vm03", "domid": None, "nics": [{"mac": "00:16:3e:03:00:01", "bridge": "xenbr0"}]},
    ]
    topo = bridges.topology(state, guests, networks={"default": "virbr0"})
    assert topo["lines"] == [
        "vm02 nic0 00:16:3e:02:00:01 -> vif1.0 -> xenbr0 -> peth0",
        "vm02 nic1 00:16:3e:02:00:02 -> vif1.1 -> virbr0 [network default] -> (no physical NIC)",
        "vm03 nic0 00:16:3e:03:00:01 -> (not running) -> xenbr0 -> peth0",
    ]
    assert topo["bridges"]["xenbr0"]["nics"] == ["peth0"]
    assert [g["guest"] for g in topo["bridges"]["xenbr0"]["guests"]] == ["vm02", "vm03"]


# ---------------------------------------------------------------- a model of `ip`, for properties


def _opt(argv, word, default=None):
    return argv[argv.index(word) + 1] if word in argv else default


def simulate(state, argvs):
    """Apply the `ip` commands a plan uses to a state dict, as the kernel would (enough for plans)."""
    state = copy.deepcopy(state)
    links, addrs, routes = state["links"], state["addrs"], state["routes"]
    for argv in argvs:
        assert argv[0] == "ip", argv
        if argv[1:3] == ["link", "add"] and "bridge" in argv:
            name = _opt(argv, "name")
            assert name not in links, argv
            links[name] = link(
                kind="bridge",
                up=False,
                mac=_opt(argv, "address", "02:00:00:00:00:99"),
                stp=_opt(argv, "stp_state") == "1",
                forward_delay=int(_opt(argv, "forward_delay")) // 100,
            )
            addrs[name] = []
        elif argv[1:3] == ["link", "add"] and "vlan" in argv:
            name, parent = _opt(argv, "name"), _opt(argv[3:], "link")
            assert parent in links and name not in links, argv
            links[name] = link(
                kind="vlan", up=False, vlan=int(_opt(argv, "id")), parent=parent, mtu=links[parent]["mtu"]
            )
            addrs[name] = []
        elif argv[1:3] == ["link", "del"]:
            name = argv[3]
            del links[name]
            addrs.pop(name, None)
            routes[:] = [r for r in routes if r["dev"] != name]
            for other in links.values():
                if other.get("master") == name:
                    other["master"] = None
        elif argv[1:4] == ["link", "set", "dev"]:
            dev, rest = argv[4], argv[5:]
            entry = links[dev]
            if rest == ["up"] or rest == ["down"]:
                entry["up"] = rest == ["up"]
            elif rest[0] == "master":
                assert links[rest[1]]["kind"] == "bridge"
                entry["master"] = rest[1]
            elif rest == ["nomaster"]:
                entry["master"] = None
            elif rest[0] == "mtu":
                entry["mtu"] = int(rest[1])
            elif rest[:2] == ["type", "bridge"]:
                if "forward_delay" in rest:
                    delay = int(_opt(rest, "forward_delay")) // 100
                    assert not entry["stp"] or delay >= 2, f"kernel refuses {argv} while STP is on"
                    entry["forward_delay"] = delay
                if "stp_state" in rest:
                    entry["stp"] = _opt(rest, "stp_state") == "1"
                    assert not entry["stp"] or entry["forward_delay"] >= 2, f"kernel refuses {argv}"
            else:
                raise AssertionError(argv)
        elif argv[1:3] in (["addr", "add"], ["addr", "del"]):
            addr, dev = argv[3], _opt(argv, "dev")
            have = addrs.setdefault(dev, [])
            if argv[2] == "add":
                assert addr not in have, f"{argv}: address exists"
                have.append(addr)
            else:
                have.remove(addr)
        elif argv[2:4] == ["route", "replace"]:
            family = int(argv[1][1:])
            new = {"family": family, "dst": argv[4], "dev": _opt(argv, "dev")}
            for key, word in (("gateway", "via"), ("metric", "metric"), ("src", "src"), ("protocol", "proto")):
                if word in argv:
                    new[key] = _opt(argv, word)
            key = (family, new["dst"], str(new.get("metric")))
            routes[:] = [r for r in routes if (r["family"], r["dst"], str(r.get("metric"))) != key] + [new]
        else:
            raise AssertionError(f"the model does not know {argv}")
    return state


def normal(state):
    return {
        "links": {
            n: {k: v for k, v in link.items() if k not in ("carrier", "mac")} for n, link in state["links"].items()
        },
        "addrs": {n: sorted(a) for n, a in state["addrs"].items() if a},
        "routes": sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in state["routes"]),
    }


@st.composite
def hosts_and_wishes(draw):
    links = {
        "lo": link(),
        "eth0": link(mac="00:1e:c9:00:00:01"),
        "eth1": link(mac="00:1e:c9:00:00:02", up=draw(st.booleans())),
    }
    addrs = {"eth0": draw(st.sampled_from([[], ["192.168.0.10/24"], ["192.168.0.10/24", "fd00::10/64"]])), "eth1": []}
    routes = []
    if addrs["eth0"]:
        routes.append({"family": 4, "dst": "default", "dev": "eth0", "gateway": "192.168.0.254"})
        if len(addrs["eth0"]) > 1:
            routes.append({"family": 6, "dst": "default", "dev": "eth0", "gateway": "fd00::1", "metric": 1024})
    if draw(st.booleans()):  # a bridge already there, as some earlier run or hand left it
        stp = draw(st.booleans())
        links["xenbr0"] = link(
            kind="bridge",
            stp=stp,
            forward_delay=draw(st.integers(2 if stp else 0, 30)),
            mtu=draw(st.sampled_from([1500, 9000])),
            up=draw(st.booleans()),
        )
        addrs["xenbr0"] = draw(st.sampled_from([[], ["10.1.0.1/24"]]))
    nic = draw(st.sampled_from([None, "eth0", "eth1"]))
    stp = draw(st.booleans())
    wish = {
        "name": "xenbr0",
        "nic": nic,
        "stp": stp,
        "forward_delay": draw(st.integers(2 if stp else 0, 30)),
        "mtu": draw(st.sampled_from([None, 1500, 9000])),
        "vlan": draw(st.sampled_from([None, 10])) if nic else None,
        "addresses": draw(st.sampled_from([None, ["10.9.0.1/24"]])),
    }
    return host(links, addrs, routes), wish


@settings(max_examples=300, deadline=None)
@given(hosts_and_wishes())
def test_plan_reaches_the_wish_then_plans_nothing_and_undo_restores(case):
    before, wish = case
    wanted = spec(**wish)
    steps = bridges.plan(before, wanted)
    after = simulate(before, [s["cmd"] for s in steps])
    for entry in after["links"].values():
        entry["carrier"] = entry["up"]
    assert bridges.check(after, wanted) is None
    assert bridges.plan(after, wanted) == [], "second run changes nothing"
    bridge = after["links"]["xenbr0"]
    assert (bridge["stp"], bridge["forward_delay"]) == (wanted["stp"], wanted["forward_delay"])
    if wanted["mtu"]:
        assert bridge["mtu"] == wanted["mtu"]
    port = bridges.nic_of(wanted)
    if port:
        assert after["addrs"].get(port, []) == [], "the port keeps no address of its own"
        assert all(r["dev"] != port for r in after["routes"]), "no route is left on the port"
    assert sorted(after["addrs"]["xenbr0"]) == sorted(bridges.addresses_after(before, wanted))
    undone = simulate(after, [s["undo"] for s in reversed(steps) if s["undo"]])
    assert normal(undone) == normal(before), "rollback gives back the host as it was"


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "nic", "vlan", "stp", "forward_delay", "mtu", "addresses", "x"]),
        st.none()
        | st.booleans()
        | st.integers(-5, 70000)
        | st.text(max_size=20)
        | st.lists(st.text(max_size=12), max_size=3),
        max_size=6,
    )
)
def test_any_bridge_pillar_gives_problems_not_a_traceback(data):
    _, problems = bridges.validate(data, path="xen:bridges:b")
    assert all(p.startswith("xen:bridges:b:") for p in problems)
