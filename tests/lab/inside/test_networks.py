"""xen_net on real Xen: ``xenbr1`` over dom0's second NIC, a libvirt NAT network with DHCP
(``virbr1``), and a PV guest on each: its vif joins the bridge, and on the libvirt
network the guest's own DHCP client (busybox udhcpc over xen-netfront) gets a lease
from libvirt's dnsmasq.

The lab's NICs sit on QEMU hubs that lead nowhere: nothing leaves the machine.
"""
import json
import pathlib
import subprocess

import pytest

from labhelpers import console_log, landed, pv_xml, remove_guest, wait_console

SECOND_NIC_MAC = "52:54:00:1a:b0:02"  # set by tests/lab/run
NET = "labnet1"
NET_BRIDGE = "virbr1"


def nic_by_mac(mac):
    for dev in pathlib.Path("/sys/class/net").iterdir():
        try:
            if (dev / "address").read_text().strip() == mac:
                return dev.name
        except OSError:
            continue
    return None


def master_of(ifname):
    out = subprocess.run(["ip", "-j", "link", "show", ifname], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)[0].get("master")


def vif_of(name, conn):
    """The backend interface name of the guest's first NIC: vif<domid>.0."""
    return f"vif{conn.lookupByName(name).ID()}.0"


@pytest.fixture(scope="module")
def net_ready(caller, conn):
    landed(caller, "xen_net")
    yield
    for guest in ("labnet-br", "labnet-nat"):
        remove_guest(conn, guest)
    try:
        caller.cmd("xen_net.network_undefine", NET)
    except Exception:  # pylint: disable=broad-except
        pass
    try:
        caller.cmd("xen_net.bridge_delete", "xenbr1", force=True)
    except Exception:  # pylint: disable=broad-except
        pass


def test_xenbr1_over_the_second_nic(caller, conn, net_ready):
    """bridge_create makes xenbr1 with dom0's second NIC in it; a guest's vif joins it."""
    nic = nic_by_mac(SECOND_NIC_MAC)
    assert nic, "dom0 has no NIC with the lab's second MAC"
    caller.cmd("xen_net.bridge_create", "xenbr1", nic=nic)
    assert master_of(nic) == "xenbr1"
    info = caller.cmd("xen_net.bridge_info", "xenbr1")
    assert info, info
    assert "xenbr1" in str(caller.cmd("xen_net.bridge_list"))
    remove_guest(conn, "labnet-br")
    conn.defineXML(pv_xml("labnet-br", devices="<interface type='bridge'><source bridge='xenbr1'/></interface>"))
    caller.cmd("xen_guest.start", "labnet-br")
    wait_console("labnet-br")
    assert master_of(vif_of("labnet-br", conn)) == "xenbr1"
    assert "labnet-br" in str(caller.cmd("xen_net.bridge_users", "xenbr1"))


def test_libvirt_nat_network_with_dhcp_leases_to_a_guest(caller, conn, net_ready):
    """network_define makes virbr1 (NAT, DHCP 192.168.123.10-20); a guest on it gets a lease."""
    info = caller.cmd(
        "xen_net.network_define",
        NET,
        start=True,
        forward="nat",
        bridge=NET_BRIDGE,
        ipv4={"address": "192.168.123.1/24", "dhcp": ["192.168.123.10-192.168.123.20"]},
    )
    assert info, info
    assert NET in caller.cmd("xen_net.network_list")
    assert pathlib.Path(f"/sys/class/net/{NET_BRIDGE}/bridge").is_dir()
    remove_guest(conn, "labnet-nat")
    conn.defineXML(pv_xml("labnet-nat", devices=f"<interface type='network'><source network='{NET}'/></interface>"))
    caller.cmd("xen_guest.start", "labnet-nat")
    wait_console("labnet-nat")
    assert master_of(vif_of("labnet-nat", conn)) == NET_BRIDGE
    wait_console("labnet-nat", text="LABGUEST-LEASE eth0 192.168.123.", timeout=180)
    assert "LABGUEST-NOLEASE" not in console_log("labnet-nat")
