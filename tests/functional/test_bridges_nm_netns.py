"""Bridges on a host whose NIC NetworkManager manages: keyfiles, ``nmcli connection up``, rollback.

The bridges, veth pairs, addresses and routes are real, inside network namespaces
these tests create (the layout of test_bridges_netns.py: eth0 10.77.0.2/24 with the
default route via 10.77.0.1 in the LAN namespace). NetworkManager is NOT real: this
machine has none and must not get one, so ``nmcli`` on PATH is the stand-in in
nmcli_standin.py, which reads the keyfiles on ``connection reload`` and performs
``connection up/down`` with the equivalent ``ip`` commands, and records every call.
What these tests show is the library's side: what it reads from nmcli, which keyfiles
it writes, which nmcli calls it makes in which order, and how it rolls back. How the
real NetworkManager carries out ``connection up`` is for the lab tier (RHEL-like dom0).
"""

import os
import re
import shutil
import stat

import pytest

from saltext_xen.networks import bridge_nm, bridge_persist, bridges
from tests.functional.netns_lab import KEYDIR, WIRED_UUID

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 'ip' is not installed")


def spec(**data):
    out, problems = bridges.validate(dict({"name": "xenbr0", "nic": "eth0"}, **data))
    assert problems == []
    return out


run = bridges.subprocess_runner  # the commands without Salt, as the state's cmd.run_all runs them


def nm_plan(lab, nm, wish, **how):
    """What the state reads and plans on an NM host (the test=True half)."""
    state = bridges.read(run, lab.host)
    have = bridge_nm.read(run, lab.host)
    assert bridge_nm.manages(have, wish), "NetworkManager manages eth0 here"
    files = bridge_nm.keyfiles(state, wish, **how)
    return bridge_nm.plan(state, have, wish, files, str(nm.root))


def test_bridge_comes_up_through_networkmanager_and_second_run_changes_nothing(lab, nm):
    wish = spec()
    uuid = bridge_persist.nm_uuid("xenbr0")
    planned = nm_plan(lab, nm, wish)
    assert bridges.describe(planned["steps"]) == [
        "make NetworkManager read the keyfiles: nmcli connection reload",
        f"bring xenbr0 up through NetworkManager with eth0 as its port: nmcli connection up uuid {uuid}",
    ]
    assert planned["file_changes"] == {
        f"/{KEYDIR}/xenbr0.nmconnection": "created",
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": "created",
    }
    assert planned["previous"] == {"name": "Wired connection 1", "uuid": WIRED_UUID}
    assert nm.calls() == [] and lab.link("xenbr0") is None, "planning (test=True) changed nothing"
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"]

    done = bridge_nm.apply(planned, run, netns=lab.host, root=str(nm.root))
    assert done == bridges.describe(planned["steps"]), "what was done is what test=True said"
    assert nm.calls() == ["connection reload", f"connection up uuid {uuid}"]
    assert lab.link("eth0")["master"] == "xenbr0"
    assert lab.link("xenbr0")["address"] == lab.link("eth0")["address"], "the bridge has the NIC's MAC"
    assert lab.addrs("xenbr0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.addrs("eth0") == []
    assert lab.default_dev() == ["xenbr0"]
    assert lab.ping(), "the host reaches its gateway through the bridge"
    assert nm.device("xenbr0") == ("connected", "xenbr0"), "NetworkManager runs the bridge: no fight"
    assert nm.device("eth0") == ("connected", "xenbr0-port-eth0")
    for name in ("xenbr0.nmconnection", "xenbr0-port-eth0.nmconnection"):
        assert stat.S_IMODE(os.stat(nm.root / KEYDIR / name).st_mode) == 0o600
    text = (nm.root / KEYDIR / "xenbr0.nmconnection").read_text()
    assert "address1=10.77.0.2/24,10.77.0.1\n" in text and "address1=fd00:77::2/64\n" in text

    nm.forget_calls()
    again = nm_plan(lab, nm, wish)
    assert again["steps"] == [] and again["file_changes"] == {}, "second run: nothing to do"
    assert bridge_nm.apply(again, run, netns=lab.host, root=str(nm.root)) == []
    assert nm.calls() == []


def test_changed_setting_rewrites_the_keyfile_and_reactivates(lab, nm):
    bridge_nm.apply(nm_plan(lab, nm, spec()), run, netns=lab.host, root=str(nm.root))
    nm.forget_calls()
    planned = nm_plan(lab, nm, spec(mtu=1400))
    assert planned["file_changes"] == {
        f"/{KEYDIR}/xenbr0.nmconnection": "updated",
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": "updated",
    }
    assert [s["cmd"][:3] for s in planned["steps"]] == [
        ["nmcli", "connection", "reload"],
        ["nmcli", "connection", "up"],
    ]
    assert planned["previous"] is None, "eth0 is already the bridge's port"
    bridge_nm.apply(planned, run, netns=lab.host, root=str(nm.root))
    assert lab.link("xenbr0")["mtu"] == 1400 and lab.link("eth0")["mtu"] == 1400
    assert lab.ping()
    assert nm_plan(lab, nm, spec(mtu=1400))["steps"] == []


def test_port_that_does_not_attach_rolls_back_to_the_old_connection(lab, nm, monkeypatch):
    before = (lab.addrs("eth0"), lab.default_dev())
    planned = nm_plan(lab, nm, spec())
    monkeypatch.setenv("NMCLI_STANDIN_FAIL", "port")
    with pytest.raises(bridges.BridgeError) as caught:
        bridge_nm.apply(planned, run, netns=lab.host, root=str(nm.root))
    message = str(caught.value)
    assert "connection up uuid" in message and "did not attach" in message
    assert (
        "everything done before was undone (eth0 is back on its connection 'Wired connection 1'; "
        "the keyfiles are as they were)"
    ) in message
    uuid = bridge_persist.nm_uuid("xenbr0")
    assert nm.calls() == [
        "connection reload",
        f"connection up uuid {uuid}",
        f"connection up uuid {WIRED_UUID}",
        f"connection down uuid {uuid}",
        "connection reload",
    ], "the NIC's connection comes back first, then the bridge goes"
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"], "the new keyfiles are gone"
    assert lab.link("xenbr0") is None
    assert (lab.addrs("eth0"), lab.default_dev()) == before
    assert nm.device("eth0") == ("connected", "Wired connection 1")
    assert lab.ping()


def test_bridge_that_does_not_forward_in_time_rolls_back(lab, nm):
    # with STP on, the port needs 2 x 2 s before it forwards: a 0.5 s wait fails on purpose
    planned = nm_plan(lab, nm, spec(stp=True, forward_delay=2))
    with pytest.raises(
        bridges.BridgeError, match=r"did not come up: xenbr0 has no carrier.*everything done before was undone"
    ):
        bridge_nm.apply(planned, run, netns=lab.host, root=str(nm.root), timeout=0.5)
    assert lab.link("xenbr0") is None and lab.link("eth0").get("master") is None
    assert lab.addrs("eth0") == ["10.77.0.2/24", "fd00:77::2/64"] and lab.default_dev() == ["eth0"]
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"]
    assert lab.ping()


def test_live_only_bridge_goes_to_networkmanagers_runtime_directory(lab, nm):
    planned = nm_plan(lab, nm, spec(), persist=False)
    assert sorted(planned["file_changes"]) == [
        "/run/NetworkManager/system-connections/xenbr0-port-eth0.nmconnection",
        "/run/NetworkManager/system-connections/xenbr0.nmconnection",
    ]
    bridge_nm.apply(planned, run, netns=lab.host, root=str(nm.root))
    assert lab.link("eth0")["master"] == "xenbr0" and lab.default_dev() == ["xenbr0"]
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"], "nothing under /etc: gone after a reboot"
    assert nm_plan(lab, nm, spec(), persist=False)["steps"] == []


def test_without_networkmanager_or_for_an_unmanaged_nic_the_ip_way_stays(lab, nm, monkeypatch):
    monkeypatch.setenv("NMCLI_STANDIN_UNMANAGED", "eth1")
    have = bridge_nm.read(run, lab.host)
    assert bridge_nm.manages(have, spec()) is True
    assert bridge_nm.manages(have, spec(name="xenbr1", nic="eth1")) is False, "eth1 is unmanaged"
    assert bridge_nm.manages(have, {"name": "br-lab", "nic": None}) is False, "host-only: no NIC to fight over"
    monkeypatch.setenv("NMCLI_STANDIN_DOWN", "1")
    assert bridge_nm.read(run, lab.host) is None, "NetworkManager not running"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert bridge_nm.read(bridges.subprocess_runner, None) is None, "no nmcli at all"


# ---------------------------------------------------------------- bridge_absent through NetworkManager


def made(lab, nm, wish=None):
    """The bridge as bridge_present leaves it on an NM host: xenbr0 over eth0, 'Wired connection 1' inactive."""
    bridge_nm.apply(nm_plan(lab, nm, wish or spec()), run, netns=lab.host, root=str(nm.root))
    assert nm.device("eth0") == ("connected", "xenbr0-port-eth0")
    nm.forget_calls()


def rm_plan(lab, nm, **how):
    """What bridge_absent reads and plans on an NM host (the test=True half)."""
    state = bridges.read(run, lab.host)
    have = bridge_nm.read(run, lab.host)
    assert bridge_nm.manages_bridge(have, state, "xenbr0", str(nm.root)), "NetworkManager runs xenbr0"
    return bridge_nm.plan_remove(state, have, "xenbr0", root=str(nm.root), **how)


def test_bridge_goes_through_networkmanager_and_the_nic_is_back_on_its_own_connection(lab, nm):
    made(lab, nm)
    uuid = bridge_persist.nm_uuid("xenbr0")
    planned = rm_plan(lab, nm)
    assert bridges.describe(planned["steps"]) == [
        f"bring eth0 back on its connection 'Wired connection 1': nmcli connection up uuid {WIRED_UUID}",
        f"take xenbr0 down through NetworkManager: nmcli connection down uuid {uuid}",
        "delete bridge xenbr0 if NetworkManager left it: ip link del xenbr0",
        "make NetworkManager forget xenbr0 and its port, whose keyfiles are removed: nmcli connection reload",
    ]
    assert planned["file_changes"] == {
        f"/{KEYDIR}/xenbr0.nmconnection": "removed",
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": "removed",
    }
    assert planned["original"] == {"name": "Wired connection 1", "uuid": WIRED_UUID}
    assert nm.calls() == [] and lab.link("xenbr0") is not None, "planning (test=True) changed nothing"

    done = bridge_nm.apply_remove(planned, run, netns=lab.host, root=str(nm.root))
    assert done == bridges.describe(planned["steps"]), "what was done is what test=True said"
    assert nm.calls() == [f"connection up uuid {WIRED_UUID}", f"connection down uuid {uuid}", "connection reload"], (
        "the NIC's own connection first, then the bridge goes"
    )
    assert lab.link("xenbr0") is None and lab.link("eth0").get("master") is None
    assert lab.addrs("eth0") == ["10.77.0.2/24", "fd00:77::2/64"] and lab.default_dev() == ["eth0"]
    assert lab.ping(), "the host reaches its gateway over eth0 again"
    assert nm.device("eth0") == ("connected", "Wired connection 1"), "NetworkManager runs eth0 again: no fight"
    assert nm.keyfiles() == ["Wired connection 1.nmconnection"], "the port keyfile does not sit beside the NIC's"
    assert "xenbr0" not in nm.nmcli("-t", "-f", "NAME,UUID,TYPE,DEVICE,ACTIVE,FILENAME", "connection", "show")

    nm.forget_calls()
    state, have = bridges.read(run, lab.host), bridge_nm.read(run, lab.host)
    assert not bridge_nm.manages_bridge(have, state, "xenbr0", str(nm.root)), "nothing of xenbr0 is left"
    again = bridge_nm.plan_remove(state, have, "xenbr0", root=str(nm.root))
    assert again["steps"] == [] and again["file_changes"] == {}, "second run: nothing to do"
    assert bridge_nm.apply_remove(again, run, netns=lab.host, root=str(nm.root)) == [] and nm.calls() == []
    assert nm_plan(lab, nm, spec())["previous"] == {"name": "Wired connection 1", "uuid": WIRED_UUID}, (
        "the bridge can be made again the same way"
    )


def test_nic_that_does_not_get_its_addresses_back_brings_the_bridge_back(lab, nm, monkeypatch):
    made(lab, nm)
    uuid = bridge_persist.nm_uuid("xenbr0")
    planned = rm_plan(lab, nm)
    monkeypatch.setenv("NMCLI_STANDIN_FAIL", "addresses")
    with pytest.raises(bridges.BridgeError) as caught:
        bridge_nm.apply_remove(planned, run, netns=lab.host, root=str(nm.root), timeout=0.5)
    assert str(caught.value) == (
        "eth0 did not get its addresses back on its connection 'Wired connection 1': eth0 does not hold "
        "10.77.0.2/24, fd00:77::2/64 yet; everything done before was undone (the keyfiles are as they were; "
        "xenbr0 is up again through NetworkManager with eth0 as its port)"
    )
    assert nm.calls() == [
        f"connection up uuid {WIRED_UUID}",
        f"connection down uuid {uuid}",
        "connection reload",
        "connection reload",
        f"connection up uuid {uuid}",
    ]
    assert nm.keyfiles() == ["Wired connection 1.nmconnection", "xenbr0-port-eth0.nmconnection", "xenbr0.nmconnection"]
    assert lab.link("eth0")["master"] == "xenbr0" and lab.addrs("xenbr0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.default_dev() == ["xenbr0"] and nm.device("eth0") == ("connected", "xenbr0-port-eth0")
    assert lab.ping(), "the host is reachable through the bridge again"


def test_nic_without_a_connection_of_its_own_gets_one_from_the_bridges_addresses(lab, nm):
    made(lab, nm)
    os.unlink(nm.root / KEYDIR / "Wired connection 1.nmconnection")
    nm.nmcli("connection", "reload")  # NetworkManager forgets the NIC's old connection
    nm.forget_calls()
    with pytest.raises(
        bridges.BridgeError,
        match=re.escape(
            "eth0 has no NetworkManager connection of its own to go back "
            "to, so the host would lose 10.77.0.2/24, fd00:77::2/64"
        ),
    ):
        rm_plan(lab, nm, restore_nic=False)
    planned = rm_plan(lab, nm)
    nic_uuid = bridge_persist.nm_uuid("eth0")
    assert [s["cmd"] for s in planned["steps"]][:2] == [
        ["nmcli", "connection", "reload"],
        ["nmcli", "connection", "up", "uuid", nic_uuid],
    ]
    assert planned["file_changes"][f"/{KEYDIR}/eth0.nmconnection"] == "created"
    bridge_nm.apply_remove(planned, run, netns=lab.host, root=str(nm.root))
    assert lab.link("xenbr0") is None and lab.addrs("eth0") == ["10.77.0.2/24", "fd00:77::2/64"]
    assert lab.default_dev() == ["eth0"] and lab.ping()
    assert nm.device("eth0") == ("connected", "eth0")
    assert nm.keyfiles() == ["eth0.nmconnection"]
    text = (nm.root / KEYDIR / "eth0.nmconnection").read_text()
    assert f"uuid={nic_uuid}\n" in text and "address1=10.77.0.2/24,10.77.0.1\n" in text
    state, have = bridges.read(run, lab.host), bridge_nm.read(run, lab.host)
    assert not bridge_nm.manages_bridge(have, state, "xenbr0", str(nm.root))
