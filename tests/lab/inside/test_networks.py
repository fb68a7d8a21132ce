"""xen_net on real Xen, the tutorial's network chapter: ``xenbr1`` over dom0's second NIC,
the libvirt NAT network ``virbr1`` (192.168.123.1/24, DHCP .2-.254, autostart) from the
state, a PV guest that takes a lease from it (busybox udhcpc over xen-netfront, libvirt's
dnsmasq), a second NIC plugged into the running guest and taken out again, the topology
in between, and a network change that waits for a restart.

The tests run in order and build on each other, as an operator's session would.
The lab's NICs sit on QEMU hubs that lead nowhere: nothing leaves the machine.
"""

import contextlib
import json
import pathlib
import subprocess

import pytest
from labhelpers import console_log, landed, pv_xml, remove_guest, state, wait_console
from salt.exceptions import CommandExecutionError

SECOND_NIC_MAC = "52:54:00:1a:b0:02"  # set by tests/lab/run
BRIDGED = "labnet-br"
NATTED = "labnet-nat"
NATTED_MAC = "00:16:3e:12:31:01"
HOST_ONLY = "xenbr-lab"
VIRBR1 = {
    "forward": "nat",
    "bridge": "virbr1",
    "autostart": True,
    "ipv4": {"address": "192.168.123.1/24", "dhcp": ["192.168.123.2-192.168.123.254"]},
}


def nic_by_mac(mac):
    for dev in pathlib.Path("/sys/class/net").iterdir():
        try:
            if (dev / "address").read_text().strip() == mac:
                return dev.name
        except OSError:
            continue
    return None


def master_of(ifname):
    out = subprocess.run(["ip", "-j", "link", "show", ifname], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)[0].get("master")


@pytest.fixture(scope="module")
def net_ready(caller, conn):
    landed(caller, "xen_net")
    yield
    for guest in (BRIDGED, NATTED):
        remove_guest(conn, guest)
    for fun, name, kwargs in (
        ("xen_net.network_absent", "virbr1", {"force": True}),
        ("xen_net.bridge_absent", HOST_ONLY, {"force": True, "persist": False}),
        ("xen_net.bridge_absent", "xenbr1", {"force": True, "persist": False}),
    ):
        # teardown goes on past a failed removal, so the next ones still run
        with contextlib.suppress(Exception):
            state(caller, fun, name, **kwargs)


def test_xenbr1_over_the_second_nic(caller, conn, net_ready):
    """bridge_create makes xenbr1 with dom0's second NIC in it; a guest's vif joins it."""
    nic = nic_by_mac(SECOND_NIC_MAC)
    assert nic, "dom0 has no NIC with the lab's second MAC"
    caller.cmd("xen_net.bridge_create", "xenbr1", nic=nic)
    assert master_of(nic) == "xenbr1"
    info = caller.cmd("xen_net.bridge_info", "xenbr1")
    assert info, info
    assert "xenbr1" in str(caller.cmd("xen_net.bridge_list"))
    remove_guest(conn, BRIDGED)
    conn.defineXML(pv_xml(BRIDGED, devices="<interface type='bridge'><source bridge='xenbr1'/></interface>"))
    caller.cmd("xen_guest.start", BRIDGED)
    wait_console(BRIDGED)
    assert master_of(f"vif{conn.lookupByName(BRIDGED).ID()}.0") == "xenbr1"
    assert BRIDGED in str(caller.cmd("xen_net.bridge_users", "xenbr1"))
    remove_guest(conn, BRIDGED)  # one guest at a time: dom0 has little to spare under TCG


def test_virbr1_from_the_state_with_dhcp_leases_to_a_guest(caller, conn, net_ready):
    """network_running makes virbr1 (NAT, DHCP .2-.254, autostart), a second apply changes
    nothing, and a guest on it gets a lease from libvirt's dnsmasq."""
    predicted = state(caller, "xen_net.network_running", "virbr1", test=True, **VIRBR1)
    assert predicted["result"] is None and predicted["changes"], predicted
    ret = state(caller, "xen_net.network_running", "virbr1", **VIRBR1)
    assert ret["result"] is True, ret["comment"]
    assert set(ret["changes"]) == set(predicted["changes"]), (predicted, ret)
    assert state(caller, "xen_net.network_running", "virbr1", **VIRBR1)["changes"] == {}
    net = conn.networkLookupByName("virbr1")
    assert net.isActive() and net.autostart()
    assert pathlib.Path("/sys/class/net/virbr1/bridge").is_dir()

    remove_guest(conn, NATTED)
    conn.defineXML(
        pv_xml(
            NATTED,
            devices=(f"<interface type='network'><mac address='{NATTED_MAC}'/><source network='virbr1'/></interface>"),
        )
    )
    caller.cmd("xen_guest.start", NATTED)
    wait_console(NATTED)
    assert master_of(f"vif{conn.lookupByName(NATTED).ID()}.0") == "virbr1"
    wait_console(NATTED, text="LABGUEST-LEASE eth0 192.168.123.", timeout=240)
    assert "LABGUEST-NOLEASE" not in console_log(NATTED)


def test_wrong_input_is_refused_with_its_key_path(caller, conn, net_ready):
    """A bridge named like an option writes no config and makes no link; a network over
    virbr1's subnet is refused naming both, under test=True too; an unknown network is an
    error, not null."""
    for test in (True, False):
        ret = state(caller, "xen_net.bridge_present", "-h", addresses=["10.124.0.1/24"], test=test)
        assert ret["result"] is False and ret["changes"] == {}, ret
        assert "xen:bridges:-h:name: expected a bridge name starting with a letter or digit" in ret["comment"], ret
    assert not pathlib.Path("/etc/network/interfaces.d/-h").exists()
    assert not pathlib.Path("/sys/class/net/-h").exists()
    for test in (True, False):
        ret = state(
            caller,
            "xen_net.network_defined",
            "labnet-overlap",
            bridge="virbr9",
            ipv4={"address": "192.168.123.1/24"},
            test=test,
        )
        assert ret["result"] is False and ret["changes"] == {}, ret
        assert (
            "xen:networks:labnet-overlap:ipv4:address: 192.168.123.0/24 overlaps network 'virbr1' (192.168.123.0/24)"
            in ret["comment"]
        ), ret
    assert "labnet-overlap" not in conn.listNetworks() + conn.listDefinedNetworks()
    with pytest.raises(CommandExecutionError, match="no libvirt network named nosuch"):
        caller.cmd("xen_net.network_info", "nosuch")


def test_live_second_nic_and_the_topology(caller, conn, net_ready):
    """nic_attach plugs a second NIC (host-only bridge) into the running guest, live and
    persistent; topology shows both vifs; the bridge cannot be removed while in use."""
    dom = conn.lookupByName(NATTED)
    assert dom.isActive(), "the guest of the test before is not running"
    ret = state(caller, "xen_net.bridge_present", HOST_ONLY, addresses=["10.123.0.1/24"], persist=False)
    assert ret["result"] is True, ret["comment"]
    added = caller.cmd("xen_guest.nic_attach", NATTED, bridge=HOST_ONLY)
    assert added["live"] and added["persistent"] and added["mac"].startswith("00:16:3e:"), added
    assert master_of(f"vif{dom.ID()}.1") == HOST_ONLY
    lines = caller.cmd("xen_net.topology")["lines"]
    assert any(line.startswith(f"{NATTED} nic1 {added['mac']} -> vif{dom.ID()}.1 -> {HOST_ONLY}") for line in lines), (
        lines
    )
    assert any(
        line.startswith(f"{NATTED} nic0 {NATTED_MAC} -> vif{dom.ID()}.0 -> virbr1 [network virbr1]") for line in lines
    ), lines

    refused = state(caller, "xen_net.bridge_absent", HOST_ONLY, persist=False)
    assert refused["result"] is False and NATTED in refused["comment"], refused

    gone = caller.cmd("xen_guest.nic_detach", NATTED, mac=added["mac"])
    assert gone == {"name": NATTED, "mac": added["mac"], "live": True, "persistent": True}
    remove_guest(conn, NATTED)


def test_network_change_waits_for_a_restart_and_says_so(caller, conn, net_ready):
    """A changed DNS domain goes into virbr1's definition; the running network keeps the old
    settings, which every later run reports, until ``restart: True`` restarts it."""
    changed = dict(VIRBR1, domain="lab.example")
    ret = state(caller, "xen_net.network_running", "virbr1", **changed)
    assert ret["changes"] == {"domain": {"old": None, "new": "lab.example"}}, ret
    again = state(caller, "xen_net.network_running", "virbr1", **changed)
    assert again["changes"] == {} and "still runs with older settings" in again["comment"], again
    ret = state(caller, "xen_net.network_running", "virbr1", restart=True, **changed)
    assert ret["changes"] == {"restarted": {"old": "old settings", "new": "new settings"}}, ret
    assert "lab.example" in conn.networkLookupByName("virbr1").XMLDesc(0)
    final = state(caller, "xen_net.network_running", "virbr1", restart=True, **changed)
    assert final["changes"] == {} and "older settings" not in final["comment"], final
