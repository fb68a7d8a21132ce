"""xen_guest.info's view of a guest: the spec's disks and NICs plus what only the live definition has."""

import pytest

from saltext_xen.core import connection
from saltext_xen.guests import domain_xml, lifecycle

HVM = """<domain type='xen'><name>vmx</name><memory unit='KiB'>262144</memory>
<os><type arch='x86_64' machine='xenfv'>hvm</type></os>
<devices>
 <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/x.iso'/>
   <target dev='hdc' bus='ide'/><readonly/></disk>
 <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a.qcow2'/>
   <target dev='xvda' bus='xen'/></disk>
 <interface type='network'><mac address='00:16:3E:AA:00:01'/><source network='default' bridge='virbr0'/>
   <target dev='vif3.0'/></interface>
 <interface type='ethernet'><mac address='00:16:3e:aa:00:03'/></interface>
 <graphics type='vnc' port='5907' autoport='yes' listen='0.0.0.0'/>
 <graphics type='sdl'/>
</devices></domain>"""


def test_live_parts_has_vifs_bridges_and_the_ports_displays_have_now():
    live = domain_xml.live_parts(HVM)
    assert live["os_type"] == "hvm"
    assert live["interfaces"] == [{"vif": "vif3.0", "bridge": "virbr0"}, {"vif": None, "bridge": None}]
    assert live["graphics"] == [
        {"type": "vnc", "port": 5907, "display": 7, "listen": "0.0.0.0", "autoport": True},
        {"type": "sdl", "port": None, "display": None, "listen": None, "autoport": False},
    ]


def test_live_parts_names_a_definition_that_is_not_a_domain():
    with pytest.raises(domain_xml.XmlError, match="expected a <domain> definition, got <network>"):
        domain_xml.live_parts("<network/>")


def test_info_joins_the_spec_and_the_live_parts(test_uri):
    dom = connection.connect(test_uri).lookupByName("vm02")
    info = lifecycle.info(dom, uptimes={"vm02": 12.5})
    assert info["os_type"] == "linux" and info["uptime"] == 12.5
    assert info["disks"] == [
        {"device": "disk", "source": "/var/lib/xen/images/vm02.img", "target": "xvda", "readonly": False}
    ]
    assert info["nics"] == [{"mac": "00:16:3e:02:00:01", "bridge": "xenbr0", "network": None, "vif": "testnet0"}]
    assert info["graphics"] == [{"type": "vnc", "port": 5901, "display": 1, "listen": "127.0.0.1", "autoport": False}]


def test_info_of_a_network_nic_names_the_network_and_disks_come_in_spec_order(test_uri):
    conn = connection.connect(test_uri)
    conn.defineXML(HVM)
    info = lifecycle.info(conn.lookupByName("vmx"))
    assert [d["target"] for d in info["disks"]] == ["xvda", "hdc"]
    assert info["disks"][1]["device"] == "cdrom" and info["disks"][1]["readonly"] is True
    assert info["nics"][0]["mac"] == "00:16:3e:aa:00:01"
    assert info["nics"][0]["network"] == "default"
    assert info["id"] is None and info["state"] == "shutoff"
