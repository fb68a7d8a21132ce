"""``xen_net.bridge_present`` on a host whose NIC NetworkManager manages, through Salt's loader.

Real bridges, veths, addresses and routes in network namespaces the test creates;
``nmcli`` is the stand-in of nmcli_standin.py (this machine has no NetworkManager
and must not get one), which reads the keyfiles and does ``connection up`` with ``ip``.
"""
import shutil

import pytest

from saltext_xen import bridge_persist
from tests.functional.test_bridges_nm_netns import KEYDIR
from tests.functional.test_bridges_nm_netns import NM
from tests.functional.test_bridges_nm_netns import WIRED_UUID
from tests.functional.test_bridges_netns import Lab
from tests.functional.test_bridges_netns import state

pytestmark = [
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed"),
]


@pytest.fixture
def lab():
    lab = Lab().up()
    yield lab
    lab.down()


@pytest.fixture
def nm(lab, tmp_path, monkeypatch):
    return NM(lab, tmp_path, monkeypatch)


def test_state_predicts_applies_through_networkmanager_and_then_changes_nothing(states, lab, nm):
    args = dict(nic="eth0", netns=lab.host, persist="nm-keyfile", config_root=str(nm.root))
    uuid = bridge_persist.nm_uuid("xenbr0")
    predicted = state(states, "bridge_present", "xenbr0", test=True, **args)
    assert predicted["result"] is None, predicted["comment"]
    assert predicted["changes"] == {
        "steps": ["make NetworkManager read the keyfiles: nmcli connection reload",
                  f"bring xenbr0 up through NetworkManager with eth0 as its port: nmcli connection up uuid {uuid}"],
        "files": {f"/{KEYDIR}/xenbr0.nmconnection": "created", f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": "created"},
    }
    assert lab.link("xenbr0") is None and nm.calls() == [], "test=True changed nothing"

    ret = state(states, "bridge_present", "xenbr0", **args)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"]
    assert ret["comment"].startswith("Bridge xenbr0 was created over eth0 in 2 steps through NetworkManager and "
                                     "kept across reboots in ")
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
    ret = state(states, "bridge_present", "xenbr0", nic="eth0", netns=lab.host, persist="nm-keyfile",
                config_root=str(nm.root))
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("Bridge xenbr0 was not changed: 'nmcli connection up uuid ")
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
    assert ret["changes"]["steps"][0].startswith("create bridge xenbr1: ip link add")
    assert nm.calls() == []
