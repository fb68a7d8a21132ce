"""Networking on real Xen (lab tier, marker needs_xen): the tutorial's chapter end to end.

Runs inside the lab's dom0 (tests/lab/run): a NAT network virbr1 192.168.123.1/24 with
DHCP .2-.254 that a PV guest takes a lease from, a host-only bridge, a second NIC
plugged into the running guest and taken out again, and the topology in between.
Skipped anywhere else, with the reason.
"""
import os
import pathlib
import time
import uuid

import pytest

from saltext_xen import connection
from tests.functional.conftest import XEN_URI

GUEST_KERNEL = "/var/lib/lab/guest-vmlinuz"
GUEST_INITRD = "/var/lib/lab/guest-initrd.gz"
CONSOLE_LOG_DIR = pathlib.Path("/var/log/xen/console")

GUEST = "lab-net"
BRIDGE = "xenbr-lab"

pytestmark = [
    pytest.mark.needs_xen,
    pytest.mark.skipif(
        not (os.path.exists("/proc/xen/capabilities") and os.path.exists(GUEST_INITRD)),
        reason="needs a Xen dom0 with the lab's guest kernel and initrd (tests/lab/run)",
    ),
]

VIRBR1 = {"forward": "nat", "bridge": "virbr1", "autostart": True,
          "ipv4": {"address": "192.168.123.1/24", "dhcp": ["192.168.123.2-192.168.123.254"]}}


def _remove(conn, name):
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


@pytest.fixture(scope="module")
def lab_net(xen_loaders):
    """virbr1 running, host-only bridge xenbr-lab, guest lab-net on virbr1; all removed afterwards."""
    conn = connection.connect(XEN_URI)
    states, modules = xen_loaders.states, xen_loaders.modules
    _remove(conn, GUEST)
    log = CONSOLE_LOG_DIR / f"guest-{GUEST}.log"
    if log.exists():
        log.unlink()
    yield states, modules, conn
    _remove(conn, GUEST)
    states.xen_net.network_absent("virbr1", force=True)
    states.xen_net.bridge_absent(BRIDGE, force=True, persist=False)


def _raw(ret):
    raw = ret.raw
    if "result" not in raw:
        (raw,) = raw.values()
    return raw


def _console(text, timeout=240):
    log = CONSOLE_LOG_DIR / f"guest-{GUEST}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = log.read_text(errors="replace") if log.exists() else ""
        if text in found:
            return found
        time.sleep(2)
    raise AssertionError(f"{text!r} not on {GUEST}'s console within {timeout}s:\n{found[-2000:]}")


def test_guest_takes_a_dhcp_lease_from_virbr1_then_gets_a_live_second_nic(lab_net):
    states, modules, conn = lab_net
    ret = _raw(states.xen_net.network_running("virbr1", **VIRBR1))
    assert ret["result"] is True, ret["comment"]
    assert _raw(states.xen_net.network_running("virbr1", **VIRBR1))["changes"] == {}
    net = conn.networkLookupByName("virbr1")
    assert net.isActive() and net.autostart()

    xml = f"""<domain type='xen'>
  <name>{GUEST}</name><uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>{GUEST_KERNEL}</kernel><initrd>{GUEST_INITRD}</initrd><cmdline>console=hvc0 quiet</cmdline></os>
  <devices>
    <console type='pty'><target type='xen' port='0'/></console>
    <interface type='network'><mac address='00:16:3e:12:31:01'/><source network='virbr1'/></interface>
  </devices>
</domain>"""
    dom = conn.defineXML(xml)
    dom.create()
    console = _console("LABGUEST-LEASE eth0 192.168.123.")
    assert "LABGUEST-NOLEASE" not in console

    ret = _raw(states.xen_net.bridge_present(BRIDGE, addresses=["10.123.0.1/24"], persist=False))
    assert ret["result"] is True, ret["comment"]
    added = modules.xen_guest.nic_attach(GUEST, bridge=BRIDGE)
    assert added["live"] and added["persistent"] and added["mac"].startswith("00:16:3e:")
    vif = f"vif{dom.ID()}.1"
    topo = modules.xen_net.topology()
    assert any(line.startswith(f"{GUEST} nic1 {added['mac']} -> {vif} -> {BRIDGE}") for line in topo["lines"]), topo
    assert any(line.startswith(f"{GUEST} nic0 00:16:3e:12:31:01 -> vif{dom.ID()}.0 -> virbr1 [network virbr1]")
               for line in topo["lines"]), topo

    refused = _raw(states.xen_net.bridge_absent(BRIDGE, persist=False))
    assert refused["result"] is False and GUEST in refused["comment"]

    gone = modules.xen_guest.nic_detach(GUEST, mac=added["mac"])
    assert gone == {"name": GUEST, "mac": added["mac"], "live": True, "persistent": True}


def test_change_needing_a_restart_is_reported_until_restarted(lab_net):
    states, _modules, conn = lab_net
    assert _raw(states.xen_net.network_running("virbr1", **VIRBR1))["result"] is True
    changed = dict(VIRBR1, domain="lab.example")
    ret = _raw(states.xen_net.network_running("virbr1", **changed))
    assert ret["changes"] == {"domain": {"old": None, "new": "lab.example"}}, ret
    again = _raw(states.xen_net.network_running("virbr1", **changed))
    assert again["changes"] == {}
    assert "still runs with older settings" in again["comment"]
    ret = _raw(states.xen_net.network_running("virbr1", restart=True, **changed))
    assert ret["changes"] == {"restarted": {"old": "old settings", "new": "new settings"}}, ret
    assert "lab.example" in conn.networkLookupByName("virbr1").XMLDesc(0)
    final = _raw(states.xen_net.network_running("virbr1", restart=True, **changed))
    assert final["changes"] == {} and "older settings" not in final["comment"]
