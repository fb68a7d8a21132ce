"""libvirt networks through the loader against the test driver (seeded with 'default' on virbr0)."""

import libvirt
import pytest
from salt.exceptions import CommandExecutionError

from saltext_xen.networks import network_xml

VIRBR1 = {
    "bridge": "virbr1",
    "ipv4": {"address": "192.168.123.1/24", "dhcp": ["192.168.123.2-192.168.123.254"]},
}


@pytest.fixture
def conn(test_uri):
    from saltext_xen.core import connection

    return connection.connect(test_uri)


def run_state(states, func, name, test=False, **kwargs):
    ret = getattr(states.xen_net, func)(name, test=test, **kwargs)
    return ret.raw[next(iter(ret.raw))] if hasattr(ret, "raw") and "result" not in ret.raw else ret.raw


def test_tutorial_virbr1_is_defined_started_and_autostarted(states, conn):
    ret = run_state(states, "network_running", "virbr1", test=True, autostart=True, **VIRBR1)
    assert ret["result"] is None
    predicted = ret["changes"]
    assert predicted == {
        "defined": {"old": False, "new": True},
        "autostart": {"old": False, "new": True},
        "running": {"old": False, "new": True},
    }
    with pytest.raises(libvirt.libvirtError):
        conn.networkLookupByName("virbr1")

    ret = run_state(states, "network_running", "virbr1", autostart=True, **VIRBR1)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted
    assert ret["comment"] == "Network virbr1 was defined, set to start with libvirtd, started."
    net = conn.networkLookupByName("virbr1")
    assert net.isActive() and net.autostart() and net.bridgeName() == "virbr1"

    again = run_state(states, "network_running", "virbr1", autostart=True, **VIRBR1)
    assert again["result"] is True and again["changes"] == {}
    assert again["comment"] == "Network virbr1 is already as wanted."


def test_dhcp_range_and_static_host_change_live_without_restart(states, conn):
    assert run_state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    changed = dict(
        VIRBR1,
        ipv4={
            "address": "192.168.123.1/24",
            "dhcp": ["192.168.123.100-192.168.123.200"],
            "hosts": [{"mac": "00:16:3e:02:00:01", "ip": "192.168.123.10", "name": "vm02"}],
        },
        dns={"hosts": [{"ip": "192.168.123.10", "names": ["vm02"]}]},
    )
    ret = run_state(states, "network_running", "virbr1", test=True, **changed)
    assert ret["result"] is None and set(ret["changes"]) == {"ipv4", "dns"}
    assert (
        ret["comment"] == "Network virbr1 would be changed (ipv4, dns). The running network takes the change at once."
    )
    ret = run_state(states, "network_running", "virbr1", **changed)
    assert ret["result"] is True, ret["comment"]
    live = network_xml.parse(conn.networkLookupByName("virbr1").XMLDesc(0))
    assert live["ipv4"]["dhcp"] == [{"start": "192.168.123.100", "end": "192.168.123.200"}]
    assert live["ipv4"]["hosts"] == [{"mac": "00:16:3e:02:00:01", "name": "vm02", "ip": "192.168.123.10"}]
    assert live["dns"]["hosts"] == [{"ip": "192.168.123.10", "names": ["vm02"]}]
    assert run_state(states, "network_running", "virbr1", **changed)["changes"] == {}


def test_change_that_needs_a_restart_waits_for_it_or_restarts(states, conn):
    assert run_state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    moved = dict(VIRBR1, domain="lab.example")
    ret = run_state(states, "network_running", "virbr1", test=True, **moved)
    assert ret["result"] is None
    assert ret["changes"] == {"domain": {"old": None, "new": "lab.example"}}
    assert "running with its old settings until it restarts" in ret["comment"]

    ret = run_state(states, "network_running", "virbr1", test=True, restart=True, **moved)
    assert set(ret["changes"]) == {"domain", "restarted"}
    ret = run_state(states, "network_running", "virbr1", restart=True, **moved)
    assert ret["result"] is True and set(ret["changes"]) == {"domain", "restarted"}, ret
    assert network_xml.parse(conn.networkLookupByName("virbr1").XMLDesc(0))["domain"] == "lab.example"
    assert conn.networkLookupByName("virbr1").isActive()
    assert run_state(states, "network_running", "virbr1", restart=True, **moved)["changes"] == {}


def test_bad_pillar_is_refused_with_key_paths_and_nothing_defined(states, conn):
    ret = run_state(
        states,
        "network_defined",
        "virbr1",
        bridge="virbr0",
        ipv4={"address": "192.168.123.1/24", "dhcp": ["192.168.123.2-192.168.123.100", "192.168.123.50-192.168.124.9"]},
    )
    assert ret["result"] is False
    assert "xen:networks:virbr1:bridge: virbr0 is already the bridge of network default" in ret["comment"]
    assert "xen:networks:virbr1:ipv4:dhcp:1: range 192.168.123.50 - 192.168.124.9 is not inside" in ret["comment"]
    assert "virbr1" not in [n.name() for n in conn.listAllNetworks(0)]


@pytest.mark.parametrize(
    "name,data",
    [
        (
            "routed",
            {
                "forward": "route",
                "bridge": "virbr2",
                "ipv4": {"address": "10.20.0.1/24"},
                "ipv6": {"address": "fd00:20::1/64", "dhcp": ["fd00:20::100-fd00:20::1ff"]},
            },
        ),
        (
            "isolated",
            {
                "forward": "isolated",
                "bridge": "virbr3",
                "ipv4": {
                    "address": "10.30.0.1/24",
                    "dhcp": ["10.30.0.10-10.30.0.20"],
                    "hosts": [{"mac": "00:16:3e:00:30:01", "ip": "10.30.0.5", "name": "vm03"}],
                },
                "dns": {"hosts": [{"ip": "10.30.0.5", "names": ["vm03"]}], "forwarders": ["192.0.2.53"]},
            },
        ),
        ("lan", {"forward": "bridge", "bridge": "xenbr0"}),
        (
            "natdev",
            {
                "forward": "nat",
                "bridge": "virbr4",
                "dev": "eth0",
                "mtu": 1400,
                "domain": "lab.example",
                "stp": False,
                "delay": 3,
                "ipv4": {"address": "10.40.0.1/24"},
            },
        ),
    ],
)
def test_every_kind_is_accepted_by_libvirt_and_idempotent(states, conn, name, data):
    ret = run_state(states, "network_defined", name, **data)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"defined": {"old": False, "new": True}}
    # the XML passed libvirt's schema check (VIR_NETWORK_DEFINE_VALIDATE) and reads back the same
    again = run_state(states, "network_defined", name, **data)
    assert again["changes"] == {}, again


def test_network_absent_refuses_while_a_guest_uses_it(states, modules, conn):
    assert run_state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    dom = conn.lookupByName("vm03")
    xml = dom.XMLDesc(0).replace(
        "</devices>",
        "<interface type='network'><mac address='00:16:3e:03:00:09'/><source network='virbr1'/></interface></devices>",
    )
    conn.defineXML(xml)
    ret = run_state(states, "network_absent", "virbr1")
    assert ret["result"] is False and "vm03" in ret["comment"]
    ret = run_state(states, "network_absent", "virbr1", test=True, force=True)
    assert ret["result"] is None
    assert ret["changes"] == {"defined": {"old": True, "new": False}, "running": {"old": True, "new": False}}
    ret = run_state(states, "network_absent", "virbr1", force=True)
    assert ret["result"] is True and ret["comment"] == "Network virbr1 was stopped and removed."
    assert run_state(states, "network_absent", "virbr1")["changes"] == {}


def test_module_functions(modules, conn):
    assert modules.xen_net.network_list()["default"] == {
        "active": True,
        "autostart": False,
        "bridge": "virbr0",
        "forward": "nat",
    }
    xml = modules.xen_net.network_xml("virbr1", **VIRBR1)
    assert '<range start="192.168.123.2" end="192.168.123.254" />' in xml
    info = modules.xen_net.network_define("virbr1", start=True, autostart=True, **VIRBR1)
    assert info["active"] and info["autostart"] and info["bridge"] == "virbr1"
    assert modules.xen_net.network_autostart("virbr1", enable=False) is True
    assert modules.xen_net.network_stop("virbr1") is True
    assert modules.xen_net.network_start("virbr1") is True
    assert modules.xen_net.bridge_users("xenbr0") == ["vm02", "vm03"]
    assert modules.xen_net.network_undefine("virbr1") is True
    with pytest.raises(CommandExecutionError, match="no libvirt network named virbr1"):
        modules.xen_net.network_info("virbr1")


def _put_on_virbr1(conn, guest, mac):
    """A NIC on virbr1 for ``guest``; a running guest is restarted to run with it (the test driver cannot hot-plug)."""
    dom = conn.lookupByName(guest)
    xml = dom.XMLDesc(0).replace(
        "</devices>",
        f"<interface type='network'><mac address='{mac}'/><source network='virbr1'/></interface></devices>",
    )
    conn.defineXML(xml)
    if dom.isActive():
        dom.destroy()
        dom.create()


def test_watch_restarts_the_network_so_it_runs_its_new_definition(states, conn):
    assert run_state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    net = conn.networkLookupByName("virbr1")
    net.destroy()
    # stopped: a watch starts it
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", test=True, **VIRBR1)
    assert ret["result"] is None and ret["changes"] == {"running": {"old": False, "new": True}}
    assert not net.isActive(), "test=True changed nothing"
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", **VIRBR1)
    assert ret["result"] is True and ret["comment"] == "Network virbr1 was started."
    assert net.isActive()

    # running: a watch restarts it, also when its definition did not change
    predicted = run_state(states, "mod_watch", "virbr1", sfun="network_running", test=True, **VIRBR1)
    assert predicted["result"] is None
    assert predicted["changes"] == {"restarted": {"old": "running", "new": "restarted"}}
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", **VIRBR1)
    assert ret["result"] is True and ret["changes"] == predicted["changes"]
    assert ret["comment"] == "Network virbr1 was restarted."
    assert conn.networkLookupByName("virbr1").isActive()

    # a changed definition is defined and the network restarted with it
    moved = dict(VIRBR1, domain="lab.example")
    predicted = run_state(states, "mod_watch", "virbr1", sfun="network_running", test=True, **moved)
    assert predicted["changes"] == {
        "domain": {"old": None, "new": "lab.example"},
        "restarted": {"old": "old settings", "new": "new settings"},
    }
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", **moved)
    assert ret["result"] is True and ret["changes"] == predicted["changes"], ret["comment"]
    live = network_xml.parse(conn.networkLookupByName("virbr1").XMLDesc(0))
    assert live["domain"] == "lab.example", "it runs with its new definition"


def test_watch_refuses_to_cut_running_guests_unless_forced(states, conn):
    assert run_state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    _put_on_virbr1(conn, "vm02", "00:16:3e:02:00:09")  # running
    _put_on_virbr1(conn, "vm03", "00:16:3e:03:00:09")  # defined, not running: no link to cut
    for test in (True, False):
        ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", test=test, **VIRBR1)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"] == (
            "xen:networks:virbr1: Network virbr1 was not restarted: restarting it would cut the link of the "
            "running guests vm02; stop or move them first, or set force: true"
        )
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_running", force=True, **VIRBR1)
    assert ret["result"] is True and ret["changes"] == {"restarted": {"old": "running", "new": "restarted"}}


def test_watch_in_an_sls_restarts_the_network(modules, conn):
    assert modules.xen_net.network_define("virbr1", start=True, **VIRBR1)["active"]
    sls = """
something-changed:
  test.succeed_with_changes: []

virbr1:
  xen_net.network_running:
    - bridge: virbr1
    - ipv4:
        address: 192.168.123.1/24
        dhcp: [192.168.123.2-192.168.123.254]
    - watch:
      - test: something-changed
"""
    ret = modules.state.template_str(sls)
    (net,) = [r for key, r in ret.raw.items() if key.startswith("xen_net_")]
    assert net["result"] is True, net["comment"]
    assert net["changes"] == {"restarted": {"old": "running", "new": "restarted"}}


def test_watch_on_another_state_says_it_does_not_act(states):
    ret = run_state(states, "mod_watch", "virbr1", sfun="network_defined", **VIRBR1)
    assert ret["result"] is False and "use it with network_running" in ret["comment"]
