"""xen_guest.nic_attach / nic_detach against the test driver (vm02 running, vm03 shut off)."""

import libvirt
import pytest
from salt.exceptions import CommandExecutionError

from saltext_xen.guests import domain_xml


@pytest.fixture
def conn(test_uri):
    from saltext_xen.core import connection

    return connection.connect(test_uri)


def nics(conn, name):
    return domain_xml.parse(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["nics"]


def test_second_nic_like_the_tutorial_gets_a_unique_xen_mac(modules, conn):
    ret = modules.xen_guest.nic_attach("vm03", bridge="xenbr0", script="vif-bridge")
    assert ret["mac"].startswith("00:16:3e:") and ret["mac"] not in ("00:16:3e:02:00:01", "00:16:3e:03:00:01")
    assert ret == {
        "name": "vm03",
        "mac": ret["mac"],
        "bridge": "xenbr0",
        "network": None,
        "live": False,
        "persistent": True,
    }
    assert [(n["mac"], n["bridge"]) for n in nics(conn, "vm03")] == [
        ("00:16:3e:03:00:01", "xenbr0"),
        (ret["mac"], "xenbr0"),
    ]


def test_nic_on_a_libvirt_network_and_explicit_mac(modules, conn):
    ret = modules.xen_guest.nic_attach("vm03", network="default", mac="00:16:3E:77:66:D5")
    assert ret["mac"] == "00:16:3e:77:66:d5"
    assert nics(conn, "vm03")[-1]["network"] == "default"


def test_bad_requests_are_refused_in_plain_words(modules, conn):
    with pytest.raises(CommandExecutionError, match="00:16:3e:02:00:01 is already used"):
        modules.xen_guest.nic_attach("vm03", mac="00:16:3e:02:00:01")
    with pytest.raises(CommandExecutionError, match="vm03:nic:mac"):
        modules.xen_guest.nic_attach("vm03", mac="01:16:3e:00:00:01")
    with pytest.raises(CommandExecutionError, match="no libvirt network named virbr9"):
        modules.xen_guest.nic_attach("vm03", network="virbr9")
    with pytest.raises(CommandExecutionError, match="no guest named 'vm09'"):
        modules.xen_guest.nic_attach("vm09")
    assert len(nics(conn, "vm03")) == 1


def test_detach_by_mac_or_bridge(modules, conn):
    added = modules.xen_guest.nic_attach("vm03", bridge="xenbr1")["mac"]
    with pytest.raises(CommandExecutionError, match="name the NIC"):
        modules.xen_guest.nic_detach("vm03")
    assert modules.xen_guest.nic_detach("vm03", bridge="xenbr1") == {
        "name": "vm03",
        "mac": added,
        "live": False,
        "persistent": True,
    }
    assert [n["mac"] for n in nics(conn, "vm03")] == ["00:16:3e:03:00:01"]
    assert modules.xen_guest.nic_detach("vm03", mac=added) == {}
    modules.xen_guest.nic_attach("vm03", bridge="xenbr0")
    with pytest.raises(CommandExecutionError, match="several NICs that match"):
        modules.xen_guest.nic_detach("vm03", bridge="xenbr0")


def test_running_guest_needs_hotplug_which_the_test_driver_lacks(modules, conn):
    # On Xen, libvirt plugs the NIC into the running guest (LIVE|CONFIG); the test
    # driver has no hot-plug, and the error says so instead of half-doing it.
    with pytest.raises(CommandExecutionError, match=r"could not add the NIC to vm02: .*not supported"):
        modules.xen_guest.nic_attach("vm02", bridge="xenbr1")
    assert len(nics(conn, "vm02")) == 1
