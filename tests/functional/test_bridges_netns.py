"""Real bridges, veth pairs and routes inside network namespaces these tests create.

Layout per test (nothing of this machine's own interfaces is touched)::

    netns HOST (a dom0 stand-in)          netns LAN (the switch and gateway)
      eth0 10.77.0.2/24, fd00:77::2/64  ==  peer0 10.77.0.1/24, fd00:77::1/64
        default via 10.77.0.1
      eth1 (no address)                 ==  peer1

Every command of the module and states runs as ``ip netns exec HOST ...``
through the ``netns`` argument.
"""

import shutil
import subprocess
import sys
import time

import pytest

from tests.functional.netns_lab import PROBE, sh, state

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed")


def test_xenbr0_over_eth0_moves_address_and_route_and_is_idempotent(states, lab, tmp_path):
    args = {"nic": "eth0", "netns": lab.host, "persist": "ifupdown", "config_root": str(tmp_path)}
    assert lab.ping()
    predicted = state(states, "bridge_present", "xenbr0", test=True, **args)
    assert predicted["result"] is None, predicted["comment"]
    assert lab.link("xenbr0") is None, "test=True changed nothing"
    assert not (tmp_path / "etc/network/interfaces.d/xenbr0").exists()

    ret = state(states, "bridge_present", "xenbr0", **args)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"]
    assert ret["comment"] == (
        "Bridge xenbr0 was created over eth0 in 8 steps and kept across reboots in /etc/network/interfaces.d/xenbr0."
    )
    assert lab.link("eth0")["master"] == "xenbr0"
    assert lab.link("xenbr0")["address"] == lab.link("eth0")["address"]
    assert lab.addrs("xenbr0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.addrs("eth0") == []
    assert lab.default_dev() == ["xenbr0"]
    assert lab.ping(), "the host still reaches its gateway through the bridge"
    assert lab.ping("fd00:77::1")
    text = (tmp_path / "etc/network/interfaces.d/xenbr0").read_text()
    assert "iface xenbr0 inet static\n    address 10.77.0.2/24\n    gateway 10.77.0.1\n" in text
    assert "    bridge_ports eth0\n" in text
    assert "iface xenbr0 inet6 static\n    address fd00:77::2/64\n" in text

    again = state(states, "bridge_present", "xenbr0", **args)
    assert again["result"] is True and again["changes"] == {}
    assert again["comment"] == "Bridge xenbr0 is already as wanted."


def test_connectivity_holds_while_the_nic_moves(modules, lab):
    prober = subprocess.Popen(
        ["ip", "netns", "exec", lab.host, sys.executable, "-c", PROBE, "10.77.0.1", "150"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)
        modules.xen_net.bridge_create("xenbr0", nic="eth0", netns=lab.host)
    finally:
        out, err = prober.communicate(timeout=120)
    answered, lost = (int(x) for x in out.split())
    assert lab.link("eth0")["master"] == "xenbr0"
    assert lost == 0, f"{lost} of {answered + lost} probes of the gateway went unanswered while eth0 moved ({err})"


def test_exercise_xenbr1_over_eth1_host_only_stp_mtu(states, lab):
    ret = state(
        states,
        "bridge_present",
        "xenbr1",
        nic="eth1",
        stp=True,
        forward_delay=2,
        mtu=9000,
        netns=lab.host,
        persist=False,
    )
    assert ret["result"] is True, ret["comment"]
    br = lab.link("xenbr1")
    assert br["mtu"] == 9000 and lab.link("eth1")["mtu"] == 9000
    assert br["linkinfo"]["info_data"]["stp_state"] == 1
    assert br["linkinfo"]["info_data"]["forward_delay"] == 200
    assert "LOWER_UP" in br["flags"], "the state waited for the STP port to forward"

    ret = state(states, "bridge_present", "xenbr1", nic="eth1", mtu=9000, netns=lab.host, persist=False)
    assert ret["changes"]["steps"]["new"][0].startswith("turn STP off on xenbr1")
    assert lab.link("xenbr1")["linkinfo"]["info_data"]["stp_state"] == 0
    assert lab.link("xenbr1")["linkinfo"]["info_data"]["forward_delay"] == 0

    ret = state(states, "bridge_present", "br-hostonly", addresses=["10.88.0.1/24"], netns=lab.host, persist=False)
    assert ret["result"] is True, ret["comment"]
    assert "created (host-only)" in ret["comment"]
    assert lab.addrs("br-hostonly") == ["10.88.0.1/24"]


def test_bridge_that_does_not_come_up_in_time_is_rolled_back(modules, lab):
    from salt.exceptions import CommandExecutionError

    before = (lab.addrs("eth0"), lab.default_dev())
    # with STP on, the port needs 2 x 2 s before it forwards: a 0.5 s wait fails on purpose
    with pytest.raises(CommandExecutionError, match=r"did not come up.*everything done before was undone"):
        modules.xen_net.bridge_create("xenbr0", nic="eth0", stp=True, forward_delay=2, netns=lab.host, timeout=0.5)
    assert lab.link("xenbr0") is None
    assert lab.link("eth0").get("master") is None
    assert (lab.addrs("eth0"), lab.default_dev()) == before
    assert lab.ping()


@pytest.mark.lab  # the lab's dom0 kernel has 802.1q: there the VLAN branch runs
def test_vlan_sub_interface_or_clean_rollback(modules, lab):
    probe = sh(
        "ip", "-n", lab.host, "link", "add", "link", "eth1", "name", "probe.5", "type", "vlan", "id", "5", check=False
    )
    if probe.returncode == 0:
        sh("ip", "-n", lab.host, "link", "del", "probe.5")
        modules.xen_net.bridge_create("xenbr10", nic="eth1", vlan=10, netns=lab.host)
        assert lab.link("eth1.10")["master"] == "xenbr10"
        assert lab.link("eth1.10")["linkinfo"]["info_data"]["id"] == 10
    else:
        # this kernel has no 802.1q support: the failed step is undone, no half-made bridge stays
        from salt.exceptions import CommandExecutionError

        with pytest.raises(CommandExecutionError, match="type vlan id 10' failed"):
            modules.xen_net.bridge_create("xenbr10", nic="eth1", vlan=10, netns=lab.host)
        assert lab.link("xenbr10") is None


def test_removal_is_refused_while_guests_use_it_then_forced(states, modules, lab, tmp_path):
    args = {"netns": lab.host, "persist": "ifupdown", "config_root": str(tmp_path)}
    assert state(states, "bridge_present", "xenbr0", nic="eth0", **args)["result"] is True
    # vm02 and vm03 of the test driver have their NIC on xenbr0
    ret = state(states, "bridge_absent", "xenbr0", **args)
    assert ret["result"] is False
    assert "xenbr0 is still used by vm02, vm03" in ret["comment"]
    assert lab.link("xenbr0") is not None

    predicted = state(states, "bridge_absent", "xenbr0", force=True, test=True, **args)
    assert predicted["result"] is None and lab.link("xenbr0") is not None
    ret = state(states, "bridge_absent", "xenbr0", force=True, **args)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"]
    assert {key: change for key, change in ret["changes"].items() if key != "steps"} == {
        "/etc/network/interfaces.d/xenbr0": {"old": "present", "new": "removed"},
        "/etc/network/interfaces.d/eth0": {"old": None, "new": "created"},
    }
    eth0 = (tmp_path / "etc/network/interfaces.d/eth0").read_text()
    assert "iface eth0 inet static\n    address 10.77.0.2/24\n    gateway 10.77.0.1\n" in eth0
    assert lab.link("xenbr0") is None
    assert lab.addrs("eth0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.default_dev() == ["eth0"]
    assert lab.ping()
    assert state(states, "bridge_absent", "xenbr0", force=True, **args)["changes"] == {}


def test_unused_bridge_is_removed_without_force(modules, lab):
    modules.xen_net.bridge_create("xenbr1", nic="eth1", netns=lab.host)
    assert modules.xen_net.bridge_users("xenbr1") == []
    steps = modules.xen_net.bridge_delete("xenbr1", netns=lab.host)
    assert steps[-1] == "delete bridge xenbr1: ip link del xenbr1"
    assert lab.link("xenbr1") is None


def test_topology_shows_guest_vif_bridge_and_physical_nic(modules, lab):
    modules.xen_net.bridge_create("xenbr0", nic="eth0", netns=lab.host)
    # the test driver names vm02's running NIC 'testnet0' (on Xen: vif1.0); give it a port on xenbr0
    sh("ip", "-n", lab.host, "link", "add", "testnet0", "type", "veth", "peer", "name", "guest-eth0")
    sh("ip", "-n", lab.host, "link", "set", "testnet0", "master", "xenbr0")
    topo = modules.xen_net.topology(netns=lab.host)
    assert "vm02 nic0 00:16:3e:02:00:01 -> testnet0 -> xenbr0 -> eth0" in topo["lines"]
    assert "vm03 nic0 00:16:3e:03:00:01 -> (not running) -> xenbr0 -> eth0" in topo["lines"]
    assert topo["bridges"]["xenbr0"]["nics"] == ["eth0"]
    assert topo["bridges"]["xenbr0"]["vifs"] == ["testnet0"]
    info = modules.xen_net.bridge_info("xenbr0", netns=lab.host)
    assert info["nics"] == ["eth0", "testnet0"] and info["vifs"] == []


def test_plan_is_printed_without_changing_anything(modules, lab):
    plan = modules.xen_net.bridge_plan("xenbr1", nic="eth1", netns=lab.host)
    assert plan[0].startswith("create bridge xenbr1: ip link add name xenbr1 address ")
    assert plan[-1] == "make eth1 a port of xenbr1: ip link set dev eth1 master xenbr1"
    assert lab.link("xenbr1") is None
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError, match="NIC eth7 does not exist"):
        modules.xen_net.bridge_plan("xenbr7", nic="eth7", netns=lab.host)
    with pytest.raises(CommandExecutionError, match=r"xenbr1:vlan: expected a VLAN id"):
        modules.xen_net.bridge_plan("xenbr1", nic="eth1", vlan=5000, netns=lab.host)


def test_bridge_config_shows_the_files_per_style(modules):
    files = modules.xen_net.bridge_config(
        "xenbr1", "ifcfg-suse", nic="eth1", addresses=["10.1.0.5/24"], gateway="10.1.0.1"
    )
    assert sorted(files) == [
        "/etc/sysconfig/network/ifcfg-eth1",
        "/etc/sysconfig/network/ifcfg-xenbr1",
        "/etc/sysconfig/network/ifroute-xenbr1",
    ]
    assert "BRIDGE_PORTS='eth1'" in files["/etc/sysconfig/network/ifcfg-xenbr1"]
