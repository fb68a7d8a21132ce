"""Spec <-> libvirt domain XML: what libvirt is given, and what we read back from it."""
import pathlib
import xml.etree.ElementTree as ET

import libvirt
import pytest
from hypothesis import HealthCheck, given, settings

from saltext_xen import connection, domain_xml, guest_spec
from tests.unit.test_guest_spec import specs

NODE_XML = pathlib.Path(__file__).resolve().parent.parent / "data" / "node.xml"


@pytest.fixture
def conn():
    uri = f"test://{NODE_XML}"
    connection.forget(uri)
    yield connection.connect(uri)
    connection.forget(uri)


def _spec(name, data):
    spec, problems = guest_spec.validate(name, data)
    assert problems == []
    return spec


def test_block_devices_use_phy_and_images_use_qdisk():
    lv = ET.fromstring(domain_xml.disk_xml(_spec("g", {"disks": ["/dev/vol0/lv_for_newvm"]})["disks"][0]))
    assert lv.get("type") == "block" and lv.find("driver").get("name") == "phy"
    assert lv.find("source").get("dev") == "/dev/vol0/lv_for_newvm"
    img = ET.fromstring(domain_xml.disk_xml(_spec("g", {"disks": ["/var/lib/xen/images/g.img"]})["disks"][0]))
    assert img.get("type") == "file" and img.find("driver").attrib == {"name": "qemu", "type": "raw"}
    q = ET.fromstring(domain_xml.disk_xml(_spec("g", {"disks": ["/var/lib/xen/images/g.qcow2"]})["disks"][0]))
    assert q.find("driver").attrib == {"name": "qemu", "type": "qcow2"}


def test_nic_xml_for_bridge_and_network():
    nic = ET.fromstring(domain_xml.nic_xml({"mac": "00:16:3e:00:00:01", "bridge": "xenbr0", "network": None, "model": None, "script": "vif-bridge"}))
    assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "xenbr0"
    assert nic.find("script").get("path") == "vif-bridge"
    nic = ET.fromstring(domain_xml.nic_xml({"mac": None, "bridge": None, "network": "default", "model": "e1000", "script": None}))
    assert nic.get("type") == "network" and nic.find("mac") is None and nic.find("model").get("type") == "e1000"


def test_seeded_vm02_reads_as_the_tutorial_guest(conn):
    spec = domain_xml.parse(conn.lookupByName("vm02").XMLDesc(0))
    assert spec["memory"] == 512 and spec["vcpus"] == 2 and spec["type"] == "pv"
    assert spec["boot"]["bootloader"] == "/usr/bin/pygrub"
    assert spec["nics"] == [{"mac": "00:16:3e:02:00:01", "bridge": "xenbr0", "network": None, "model": None, "script": "vif-bridge"}]
    assert spec["graphics"] == {"type": "vnc", "display": 1, "listen": "127.0.0.1", "password": None, "keymap": "en-us"}


def test_password_only_with_secure_flag(conn):
    spec = guest_spec.fill_new(_spec("vm09", {"graphics": {"password": "123", "listen": "0.0.0.0"}}))
    dom = conn.defineXML(domain_xml.render(spec))
    assert domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["graphics"]["password"] is None
    assert domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))["graphics"]["password"] == "123"


@settings(max_examples=200, deadline=None)
@given(specs())
def test_render_then_parse_loses_nothing(spec):
    assert domain_xml.parse(domain_xml.render(spec), autostart=spec["autostart"]) == spec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs())
def test_libvirt_keeps_what_we_define(conn, spec):
    """Through libvirt's Xen-type test driver: normalising what it adds, the spec comes back."""
    spec = guest_spec.fill_new(spec)
    dom = conn.defineXML(domain_xml.render(spec))
    try:
        for flags in (libvirt.VIR_DOMAIN_XML_INACTIVE, 0):
            back = domain_xml.parse(dom.XMLDesc(flags | libvirt.VIR_DOMAIN_XML_SECURE), autostart=spec["autostart"])
            assert guest_spec.diff(spec, back) == {}
            assert back == spec
    finally:
        dom.undefine()


def test_not_xml_is_a_plain_error():
    with pytest.raises(domain_xml.XmlError, match="not valid XML"):
        domain_xml.parse("<domain")
