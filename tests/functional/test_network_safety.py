"""Wrong input to the xen_net states and functions is refused with its key path, and nothing changes.

What a user sees: every mistake of a bridge or network named by its ``xen:...`` key path
(``pillar_path`` from the formula), under ``test=True`` as in a real run; no config file
written, no link made, no network defined. Bridges run inside the netns lab the tests
create; networks on libvirt's test driver (seeded with ``default``, 192.168.122.0/24 on virbr0).
"""

import shutil

import pytest
from salt.exceptions import CommandExecutionError

from tests.functional.netns_lab import state

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed")

VIRBR1 = {"bridge": "virbr1", "ipv4": {"address": "192.168.123.1/24", "dhcp": ["192.168.123.2-192.168.123.254"]}}


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def networks(modules):
    return sorted(modules.xen_net.network_list())


@pytest.fixture
def bridge_args(lab, tmp_path):
    return {"netns": lab.host, "persist": "ifupdown", "config_root": str(tmp_path)}


@pytest.mark.parametrize("test", [True, False])
def test_bridge_named_like_an_option_is_refused_before_any_file_is_written(states, lab, tmp_path, bridge_args, test):
    ret = state(states, "bridge_present", "-h", nic="eth1", test=test, **bridge_args)
    assert ret["result"] is False and ret["changes"] == {}
    assert "xen:bridges:-h:name: expected a bridge name starting with a letter or digit, got '-h'" in ret["comment"]
    assert files_under(tmp_path) == [] and lab.link("-h") is None
    assert lab.link("eth1").get("master") is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("xenbr-too-long-1", "xen:bridges:xenbr-too-long-1:name: expected a bridge name of at most 15 characters"),
        ("xen br0", "xen:bridges:xen br0:name: expected a bridge name of letters, digits and _ . -"),
        ("../xenbr0", "xen:bridges:../xenbr0:name: expected a bridge name of letters, digits and _ . -"),
    ],
)
def test_unsafe_bridge_names_are_refused_with_the_rule_they_break(states, lab, tmp_path, bridge_args, name, words):
    ret = state(states, "bridge_present", name, **bridge_args)
    assert ret["result"] is False and words in ret["comment"]
    assert files_under(tmp_path) == []


def test_nic_name_and_addresses_go_through_the_vocabulary(states, lab, tmp_path, bridge_args):
    for test in (True, False):
        ret = state(states, "bridge_present", "xenbr1", nic="-eth1", addresses=["10.9.0.1"], test=test, **bridge_args)
        assert ret["result"] is False and ret["changes"] == {}
        assert (
            "xen:bridges:xenbr1:nic: expected a NIC name starting with a letter or digit, got '-eth1'"
            in (ret["comment"])
        )
        assert (
            "xen:bridges:xenbr1:addresses:0: expected an IP address with its prefix like 192.168.100.1/24"
            in (ret["comment"])
        )
    assert files_under(tmp_path) == [] and lab.link("xenbr1") is None


@pytest.mark.parametrize("test", [True, False])
def test_bridge_booleans_and_numbers_are_strict_and_all_named_at_once(states, lab, tmp_path, bridge_args, test):
    ret = state(
        states,
        "bridge_present",
        "xenbr1",
        nic="eth1",
        stp="yes",
        vlan=5000,
        mtu=10,
        forward_delay="15s",
        dhcp="no",
        test=test,
        **bridge_args,
    )
    assert ret["result"] is False and ret["changes"] == {}
    for line in (
        "xen:bridges:xenbr1:stp: expected true or false, got 'yes'",
        "xen:bridges:xenbr1:vlan: expected a VLAN id from 1 to 4094, got 5000",
        "xen:bridges:xenbr1:mtu: expected an MTU from 68 to 65535, got 10",
        "xen:bridges:xenbr1:forward_delay: expected seconds from 0 to 30, got '15s'",
        "xen:bridges:xenbr1:dhcp: expected true or false, got 'no'",
    ):
        assert line in ret["comment"].splitlines()
    assert files_under(tmp_path) == [] and lab.link("xenbr1") is None


def test_true_and_false_as_words_are_taken(states, lab, bridge_args):
    ret = state(states, "bridge_present", "xenbr1", nic="eth1", stp="true", vlan="10", test=True, **bridge_args)
    assert ret["result"] is None, ret["comment"]
    assert "create bridge xenbr1" in ret["changes"]["steps"]["new"][0]


def test_force_no_on_removal_is_refused_and_the_bridge_stays(states, lab, tmp_path, bridge_args):
    assert state(states, "bridge_present", "xenbr0", nic="eth0", **bridge_args)["result"] is True
    before = files_under(tmp_path)
    for test in (True, False):
        ret = state(states, "bridge_absent", "xenbr0", force="no", restore_nic="0", test=test, **bridge_args)
        assert ret["result"] is False and ret["changes"] == {}
        assert "xen:bridges:xenbr0:force: expected true or false, got 'no'" in ret["comment"]
        assert "xen:bridges:xenbr0:restore_nic: expected true or false, got '0'" in ret["comment"]
    assert lab.link("xenbr0") is not None and lab.link("eth0")["master"] == "xenbr0"
    assert files_under(tmp_path) == before


def test_run_time_errors_carry_the_key_path_the_formula_passes(states, lab, tmp_path, bridge_args):
    for test in (True, False):
        ret = state(
            states, "bridge_present", "xenbr1", nic="eth7", pillar_path="xen:lab:bridges", test=test, **bridge_args
        )
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"] == "xen:lab:bridges:xenbr1: NIC eth7 does not exist on this host"
    assert files_under(tmp_path) == []


def test_bridge_functions_refuse_bad_names_and_unknown_bridges(modules, lab):
    with pytest.raises(CommandExecutionError, match=r"-h:name: expected a bridge name starting with a letter"):
        modules.xen_net.bridge_create("-h", nic="eth1", netns=lab.host)
    assert lab.link("-h") is None
    with pytest.raises(CommandExecutionError, match=r"xenbr1:stp: expected true or false, got 'on'"):
        modules.xen_net.bridge_plan("xenbr1", nic="eth1", stp="on", netns=lab.host)
    with pytest.raises(CommandExecutionError, match=r"timeout: expected a number of seconds above 0, got '5s'"):
        modules.xen_net.bridge_create("xenbr1", nic="eth1", timeout="5s", netns=lab.host)
    assert lab.link("xenbr1") is None
    with pytest.raises(CommandExecutionError, match=r"name: expected a bridge name starting with a letter"):
        modules.xen_net.bridge_users("-xenbr0")
    with pytest.raises(CommandExecutionError, match=r"no bridge named nosuch on this host"):
        modules.xen_net.bridge_info("nosuch", netns=lab.host)
    with pytest.raises(CommandExecutionError, match=r"no bridge named nosuch on this host"):
        modules.xen_net.bridge_delete("nosuch", netns=lab.host)
    with pytest.raises(CommandExecutionError, match=r"force: expected true or false, got 'no'"):
        modules.xen_net.bridge_delete("xenbr0", force="no", netns=lab.host)
    with pytest.raises(CommandExecutionError, match=r"style: expected one of ifupdown"):
        modules.xen_net.bridge_config("xenbr0", "debian", nic="eth0")
    with pytest.raises(CommandExecutionError, match=r"gateway: expected an IP address"):
        modules.xen_net.bridge_config("xenbr0", "ifupdown", nic="eth0", gateway="router")


@pytest.mark.parametrize("test", [True, False])
def test_network_overlapping_another_network_is_refused_with_both_names(states, modules, test):
    wanted = {"bridge": "virbr1", "ipv4": {"address": "192.168.122.1/24"}}
    ret = state(states, "network_running", "virbr1", test=test, **wanted)
    assert ret["result"] is False and ret["changes"] == {}
    assert (
        "xen:networks:virbr1:ipv4:address: 192.168.122.0/24 overlaps network 'default' (192.168.122.0/24)"
        in ret["comment"].splitlines()
    )
    assert networks(modules) == ["default"]


def test_network_overlapping_an_address_on_a_host_interface_is_refused(states, modules, lab):
    wanted = {"bridge": "virbr1", "ipv4": {"address": "10.77.0.200/25"}}
    for test in (True, False):
        ret = state(states, "network_defined", "virbr1", netns=lab.host, test=test, **wanted)
        assert ret["result"] is False and ret["changes"] == {}
        assert (
            "xen:networks:virbr1:ipv4:address: 10.77.0.128/25 overlaps the address 10.77.0.2/24 "
            "of host interface 'eth0'" in ret["comment"]
        )
    assert networks(modules) == ["default"]
    with pytest.raises(CommandExecutionError, match=r"virbr1:ipv4:address: 10.77.0.128/25 overlaps the address"):
        modules.xen_net.network_define("virbr1", netns=lab.host, **wanted)
    assert networks(modules) == ["default"]


def test_a_network_does_not_overlap_itself(states):
    assert state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    again = state(states, "network_running", "virbr1", **VIRBR1)
    assert again["result"] is True and again["changes"] == {}, again["comment"]


@pytest.mark.parametrize("test", [True, False])
def test_network_names_booleans_and_numbers_are_strict(states, modules, test):
    ret = state(states, "network_running", "-virbr1", bridge="-x", test=test, ipv4={"address": "192.168.123.1/24"})
    assert ret["result"] is False and ret["changes"] == {}
    assert (
        "xen:networks:-virbr1: expected a network name starting with a letter or digit, got '-virbr1'"
        in (ret["comment"])
    )
    assert (
        "xen:networks:-virbr1:bridge: expected a bridge name starting with a letter or digit, got '-x'"
        in (ret["comment"])
    )
    ret = state(
        states,
        "network_running",
        "virbr1",
        autostart="yes",
        restart="no",
        force=1,
        stp="on",
        delay="5s",
        mtu=70000,
        test=test,
        **VIRBR1,
    )
    assert ret["result"] is False and ret["changes"] == {}
    for line in (
        "xen:networks:virbr1:autostart: expected true or false, got 'yes'",
        "xen:networks:virbr1:restart: expected true or false, got 'no'",
        "xen:networks:virbr1:force: expected true or false, got 1",
        "xen:networks:virbr1:stp: expected true or false, got 'on'",
        "xen:networks:virbr1:delay: expected seconds from 0 to 30, got '5s'",
        "xen:networks:virbr1:mtu: expected an MTU from 68 to 65535, got 70000",
    ):
        assert line in ret["comment"].splitlines()
    ret = state(states, "network_absent", "default", force="yes", test=test)
    assert ret["result"] is False and "xen:networks:default:force: expected true or false, got 'yes'" in ret["comment"]
    assert networks(modules) == ["default"]


def test_network_run_time_errors_carry_the_key_path(states, modules, conn_uri_guest_on_virbr1):
    for test in (True, False):
        ret = state(states, "network_absent", "virbr1", pillar_path="xen:lab:networks", test=test)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith("xen:lab:networks:virbr1: Network virbr1 was not removed: guests vm03")
    assert "virbr1" in networks(modules)


def test_network_functions_name_unknown_networks(modules):
    for func in ("network_info", "network_start", "network_stop", "network_autostart", "network_undefine"):
        with pytest.raises(CommandExecutionError, match=r"no libvirt network named nosuch"):
            getattr(modules.xen_net, func)("nosuch")
    with pytest.raises(CommandExecutionError, match=r"enable: expected true or false, got 'no'"):
        modules.xen_net.network_autostart("default", enable="no")
    with pytest.raises(CommandExecutionError, match=r"start: expected true or false, got 'yes'"):
        modules.xen_net.network_define("virbr1", start="yes", **VIRBR1)
    assert networks(modules) == ["default"]


@pytest.fixture
def conn_uri_guest_on_virbr1(states, test_uri):
    """virbr1 defined and vm03 (shut off) with a NIC on it."""
    from saltext_xen.core import connection

    assert state(states, "network_running", "virbr1", **VIRBR1)["result"] is True
    conn = connection.connect(test_uri)
    dom = conn.lookupByName("vm03")
    conn.defineXML(
        dom.XMLDesc(0).replace(
            "</devices>",
            "<interface type='network'><mac address='00:16:3e:03:00:09'/><source network='virbr1'/></interface>"
            "</devices>",
        )
    )
