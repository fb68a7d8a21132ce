"""``xen_net.bridge_present`` / ``bridge_absent`` on a host whose NIC NetworkManager manages, through Salt's loader.

Real bridges, veths, addresses and routes in network namespaces the test creates;
``nmcli`` is the stand-in of nmcli_standin.py (this machine has no NetworkManager
and must not get one), which reads the keyfiles and does ``connection up`` with ``ip``.
"""

import os
import shutil

import pytest

from saltext_xen.networks import bridge_persist
from tests.functional.netns_lab import KEYDIR, WIRED_UUID, state

pytestmark = [
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed"),
]


def test_state_predicts_applies_through_networkmanager_and_then_changes_nothing(states, lab, nm):
    args = {"nic": "eth0", "netns": lab.host, "persist": "nm-keyfile", "config_root": str(nm.root)}
    uuid = bridge_persist.nm_uuid("xenbr0")
    predicted = state(states, "bridge_present", "xenbr0", test=True, **args)
    assert predicted["result"] is None, predicted["comment"]
    assert predicted["changes"] == {
        "steps": {
            "old": None,
            "new": [
                "make NetworkManager read the keyfiles: nmcli connection reload",
                f"bring xenbr0 up through NetworkManager with eth0 as its port: nmcli connection up uuid {uuid}",
            ],
        },
        f"/{KEYDIR}/xenbr0.nmconnection": {"old": None, "new": "created"},
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": {"old": None, "new": "created"},
    }
    assert lab.link("xenbr0") is None and nm.calls() == [], "test=True changed nothing"

    ret = state(states, "bridge_present", "xenbr0", **args)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"]
    assert ret["comment"].startswith(
        "Bridge xenbr0 was created over eth0 in 2 steps through NetworkManager and kept across reboots in "
    )
    assert nm.calls() == ["connection reload", f"connection up uuid {uuid}"], "no ip behind NetworkManager's back"
    assert lab.link("eth0")["master"] == "xenbr0" and lab.addrs("eth0") == []
    assert lab.addrs("xenbr0") == ["10.77.0.2/24", "fd00:77::2/64"] and lab.default_dev() == ["xenbr0"]
    assert nm.device("eth0") == ("connected", "xenbr0-port-eth0")
    assert lab.ping()

    nm.forget_calls()
    again = state(states, "bridge_present", "xenbr0", **args)
    assert again["result"] is True and again["changes"] == {}, again["comment"]
    assert again["comment"] == "Bridge xenbr0 is already as wanted."
    assert nm.calls() == []


def test_state_rolls_back_to_the_nics_connection_when_the_port_does_not_attach(states, lab, nm, monkeypatch):
    monkeypatch.setenv("NMCLI_STANDIN_FAIL", "port")
    ret = state(
        states, "bridge_present", "xenbr0", nic="eth0", netns=lab.host, persist="nm-keyfile", config_root=str(nm.root)
    )
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("xen:bridges:xenbr0: Bridge xenbr0 was not changed: 'nmcli connection up uuid ")
    assert "eth0 is back on its connection 'Wired connection 1'" in ret["comment"]
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"]
    assert lab.link("xenbr0") is None and lab.default_dev() == ["eth0"]
    assert nm.device("eth0") == ("connected", "Wired connection 1")
    assert f"connection up uuid {WIRED_UUID}" in nm.calls()
    assert lab.ping()


def test_state_keeps_the_ip_way_for_a_nic_networkmanager_leaves_alone(states, lab, nm, monkeypatch):
    monkeypatch.setenv("NMCLI_STANDIN_UNMANAGED", "eth1")
    ret = state(states, "bridge_present", "xenbr1", nic="eth1", netns=lab.host, persist=False)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["steps"]["new"][0].startswith("create bridge xenbr1: ip link add")
    assert nm.calls() == []


def test_state_removes_the_bridge_through_networkmanager_predicts_and_then_changes_nothing(states, lab, nm):
    args = {"netns": lab.host, "persist": "nm-keyfile", "config_root": str(nm.root)}
    assert state(states, "bridge_present", "xenbr0", nic="eth0", **args)["result"] is True
    nm.forget_calls()
    uuid = bridge_persist.nm_uuid("xenbr0")
    # vm02 and vm03 of the test driver have their NIC on xenbr0
    refused = state(states, "bridge_absent", "xenbr0", **args)
    assert refused["result"] is False and refused["changes"] == {}
    assert "xenbr0 is still used by vm02, vm03" in refused["comment"]
    assert nm.calls() == [] and lab.link("eth0")["master"] == "xenbr0", "refused: nothing touched"

    predicted = state(states, "bridge_absent", "xenbr0", force=True, test=True, **args)
    assert predicted["result"] is None, predicted["comment"]
    assert predicted["changes"] == {
        "steps": {
            "old": None,
            "new": [
                f"bring eth0 back on its connection 'Wired connection 1': nmcli connection up uuid {WIRED_UUID}",
                f"take xenbr0 down through NetworkManager: nmcli connection down uuid {uuid}",
                "delete bridge xenbr0 if NetworkManager left it: ip link del xenbr0",
                "make NetworkManager forget xenbr0 and its port, whose keyfiles are removed: nmcli connection reload",
            ],
        },
        f"/{KEYDIR}/xenbr0.nmconnection": {"old": "present", "new": "removed"},
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": {"old": "present", "new": "removed"},
    }
    assert predicted["comment"].startswith(
        "Bridge xenbr0 would be removed through NetworkManager (eth0 would be "
        "back on its connection 'Wired connection 1') and its config files "
    )
    assert nm.calls() == [] and lab.link("xenbr0") is not None, "test=True changed nothing"

    ret = state(states, "bridge_absent", "xenbr0", force=True, **args)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"]
    assert ret["comment"].startswith(
        "Bridge xenbr0 was removed through NetworkManager (eth0 is back on its connection 'Wired connection 1')"
    )
    assert nm.calls() == [f"connection up uuid {WIRED_UUID}", f"connection down uuid {uuid}", "connection reload"]
    assert lab.link("xenbr0") is None and lab.addrs("eth0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.default_dev() == ["eth0"] and lab.ping()
    assert nm.device("eth0") == ("connected", "Wired connection 1")
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"]

    nm.forget_calls()
    again = state(states, "bridge_absent", "xenbr0", force=True, **args)
    assert again["result"] is True and again["changes"] == {}, again["comment"]
    assert again["comment"] == "Bridge xenbr0 is already absent."
    assert nm.calls() == []


def test_state_brings_the_bridge_back_when_the_nic_does_not_get_its_addresses(states, lab, nm, monkeypatch):
    args = {"netns": lab.host, "persist": "nm-keyfile", "config_root": str(nm.root)}
    assert state(states, "bridge_present", "xenbr0", nic="eth0", **args)["result"] is True
    monkeypatch.setenv("NMCLI_STANDIN_FAIL", "addresses")
    ret = state(states, "bridge_absent", "xenbr0", force=True, **args)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith(
        "xen:bridges:xenbr0: Bridge xenbr0 was not removed: eth0 did not get its addresses back on its "
        "connection 'Wired connection 1': eth0 does not hold "
    )
    assert ret["comment"].endswith(
        "(the keyfiles are as they were; xenbr0 is up again through NetworkManager with eth0 as its port)"
    )
    assert lab.link("eth0")["master"] == "xenbr0" and lab.default_dev() == ["xenbr0"]
    assert nm.device("eth0") == ("connected", "xenbr0-port-eth0")
    assert sorted(nm.keyfiles()) == [
        "Wired connection 1.nmconnection",
        "xenbr0-port-eth0.nmconnection",
        "xenbr0.nmconnection",
    ]
    assert lab.ping()


def test_state_removes_a_bridge_networkmanager_does_not_run_the_ip_way(states, lab, nm, monkeypatch):
    monkeypatch.setenv("NMCLI_STANDIN_UNMANAGED", "eth1")
    assert state(states, "bridge_present", "xenbr1", nic="eth1", netns=lab.host, persist=False)["result"] is True
    ret = state(states, "bridge_absent", "xenbr1", netns=lab.host, persist=False)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["steps"]["new"][-1] == "delete bridge xenbr1: ip link del xenbr1"
    assert nm.calls() == [] and lab.link("xenbr1") is None


def test_functions_take_the_networkmanager_way_like_the_states(modules, lab, nm):
    uuid = bridge_persist.nm_uuid("xenbr0")
    how = {"netns": lab.host, "config_root": str(nm.root)}
    planned = modules.xen_net.bridge_plan("xenbr0", nic="eth0", **how)
    assert planned == [
        "make NetworkManager read the keyfiles: nmcli connection reload",
        f"bring xenbr0 up through NetworkManager with eth0 as its port: nmcli connection up uuid {uuid}",
    ]
    assert modules.xen_net.bridge_create("xenbr0", nic="eth0", **how) == planned
    assert nm.calls() == ["connection reload", f"connection up uuid {uuid}"], "no ip behind NetworkManager's back"
    assert lab.link("eth0")["master"] == "xenbr0" and lab.default_dev() == ["xenbr0"] and lab.ping()
    runtime = nm.root / "run/NetworkManager/system-connections"
    assert sorted(os.listdir(runtime)) == ["xenbr0-port-eth0.nmconnection", "xenbr0.nmconnection"], "gone at reboot"
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"], "nothing kept across reboots"
    info = modules.xen_net.bridge_info("xenbr0", netns=lab.host)
    assert info["nics"] == ["eth0"] and info["vifs"] == []

    nm.forget_calls()
    steps = modules.xen_net.bridge_delete("xenbr0", force=True, **how)
    assert steps[0] == f"bring eth0 back on its connection 'Wired connection 1': nmcli connection up uuid {WIRED_UUID}"
    assert nm.calls()[:2] == [f"connection up uuid {WIRED_UUID}", f"connection down uuid {uuid}"]
    assert lab.link("xenbr0") is None and lab.default_dev() == ["eth0"] and lab.ping()
    assert os.listdir(runtime) == []
    assert nm.device("eth0") == ("connected", "Wired connection 1")
