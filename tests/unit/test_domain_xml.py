"""Spec <-> libvirt domain XML: what libvirt is given, and what we read back from it."""

import pathlib
import string
import xml.etree.ElementTree as ET

import libvirt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saltext_xen.core import connection
from saltext_xen.guests import domain_xml, guest_spec
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
    nic = ET.fromstring(
        domain_xml.nic_xml(
            {"mac": "00:16:3e:00:00:01", "bridge": "xenbr0", "network": None, "model": None, "script": "vif-bridge"}
        )
    )
    assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "xenbr0"
    assert nic.find("script").get("path") == "vif-bridge"
    nic = ET.fromstring(
        domain_xml.nic_xml({"mac": None, "bridge": None, "network": "default", "model": "e1000", "script": None})
    )
    assert nic.get("type") == "network" and nic.find("mac") is None and nic.find("model").get("type") == "e1000"


def test_seeded_vm02_reads_as_the_tutorial_guest(conn):
    spec = domain_xml.parse(conn.lookupByName("vm02").XMLDesc(0))
    assert spec["memory"] == 512 and spec["vcpus"] == 2 and spec["type"] == "pv"
    assert spec["boot"]["bootloader"] == "/usr/bin/pygrub"
    assert spec["nics"] == [
        {"mac": "00:16:3e:02:00:01", "bridge": "xenbr0", "network": None, "model": None, "script": "vif-bridge"}
    ]
    assert spec["graphics"] == {"type": "vnc", "display": 1, "listen": "127.0.0.1", "password": None, "keymap": "en-us"}


def test_password_only_with_secure_flag(conn):
    spec = guest_spec.fill_new(_spec("vm09", {"graphics": {"password": "123", "listen": "0.0.0.0"}}))
    dom = conn.defineXML(domain_xml.render(spec))
    assert domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["graphics"]["password"] is None
    assert (
        domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))["graphics"][
            "password"
        ]
        == "123"
    )


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


# --------------------------------------------------------------------------- other tools' <metadata>
CLONE_XML = """
<domain type='xen'>
  <name>newvm05</name>
  <uuid>2aa1fae5-8550-affd-866f-27a9d6977d16</uuid>
  <metadata>
    <saltclone:origin xmlns:saltclone="https://github.com/saltext-xen/clone/1"
                      name="vm05" uuid="5e4d3c2b-0000-4000-8000-000000000005"/>
    <other:note xmlns:other="https://example.org/other/1" level="2">
      <item>backups &amp; snapshots</item>
    </other:note>
  </metadata>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <bootloader>/usr/bin/pygrub</bootloader>
  <os><type arch='x86_64' machine='xenpv'>linux</type></os>
  <on_crash>restart</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/xen/images/newvm05.img'/>
      <target dev='xvda' bus='xen'/>
    </disk>
  </devices>
</domain>
"""


def _kept(xml_text):
    """{tag: element} of the <metadata> children but this project's own."""
    holder = ET.fromstring(xml_text).find("metadata")
    return {el.tag: el for el in holder if el.tag != f"{{{domain_xml.META_NS}}}guest"}


def test_a_clone_keeps_its_record_and_other_tools_metadata_when_rendered_from_a_new_spec():
    from saltext_xen.guests import clone

    current = domain_xml.parse(CLONE_XML)
    assert len(current[domain_xml.KEPT_METADATA]) == 2
    # what the guest states do: the pillar's spec, with what it leaves open taken from the guest
    wanted = guest_spec.adopt(_spec("newvm05", {"memory": 768, "disks": ["/var/lib/xen/images/newvm05.img"]}), current)
    assert set(guest_spec.diff(current, wanted)) == {"memory", "maxmem"}  # the kept metadata is no change
    xml = domain_xml.render(wanted)
    assert clone.origin(xml) == {"name": "vm05", "uuid": "5e4d3c2b-0000-4000-8000-000000000005"}
    note = _kept(xml)["{https://example.org/other/1}note"]
    assert note.get("level") == "2" and note.findtext("item") == "backups & snapshots"
    assert domain_xml.parse(xml) == wanted


def test_kept_metadata_sits_next_to_this_projects_own():
    spec = domain_xml.parse(CLONE_XML)
    spec["disks"][0]["size"] = 8192  # travels in this project's own <metadata> element
    xml = domain_xml.render(spec)
    assert ET.fromstring(xml).find(f"metadata/{{{domain_xml.META_NS}}}guest") is not None
    assert len(_kept(xml)) == 2
    assert domain_xml.parse(xml) == spec


def test_a_guest_without_other_metadata_has_no_private_key():
    spec = _spec("vm09", {"disks": [{"source": "/var/lib/xen/images/vm09.img", "size": 1024}]})
    assert domain_xml.KEPT_METADATA not in domain_xml.parse(domain_xml.render(spec))


def test_private_keys_are_not_shown_as_pillar_nor_diffed():
    spec = domain_xml.parse(CLONE_XML)
    assert domain_xml.KEPT_METADATA not in guest_spec.masked(spec)
    bare = {k: v for k, v in spec.items() if k != domain_xml.KEPT_METADATA}
    assert guest_spec.diff(spec, bare) == {} and guest_spec.diff(None, spec) == guest_spec.diff(None, bare)


def test_kept_metadata_that_is_not_xml_is_a_plain_error():
    spec = dict(domain_xml.parse(CLONE_XML), **{domain_xml.KEPT_METADATA: ["<broken"]})
    with pytest.raises(domain_xml.XmlError, match="not XML"):
        domain_xml.render(spec)


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " &<>\"'-_.:/äé", max_size=12)
_NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)


@st.composite
def foreign_metadata(draw):
    """A <metadata> child of another tool (its own namespace), as parse gives it: XML text."""
    ns = draw(
        st.sampled_from(
            [
                "https://github.com/saltext-xen/clone/1",
                "https://example.org/other/1",
                "http://libosinfo.org/xmlns/libvirt/domain/1.0",
            ]
        )
    )
    el = ET.Element(f"{{{ns}}}{draw(_NAME)}", draw(st.dictionaries(_NAME, _TEXT, max_size=3)))
    el.text = draw(st.none() | _TEXT)
    for _ in range(draw(st.integers(0, 2))):
        child = ET.SubElement(el, draw(_NAME), draw(st.dictionaries(_NAME, _TEXT, max_size=2)))
        child.text = draw(st.none() | _TEXT)
        child.tail = draw(st.none() | st.sampled_from(["\n  ", " "]))
    # as parse gives it: serialised alone, after a read
    return ET.tostring(ET.fromstring(ET.tostring(el, encoding="unicode")), encoding="unicode")


@settings(max_examples=200, deadline=None)
@given(specs(), st.lists(foreign_metadata(), min_size=1, max_size=3))
def test_render_then_parse_keeps_other_metadata(spec, kept):
    spec = dict(spec, **{domain_xml.KEPT_METADATA: kept})
    assert domain_xml.parse(domain_xml.render(spec), autostart=spec["autostart"]) == spec


def test_libvirt_keeps_the_kept_metadata_and_a_second_define_changes_nothing(conn):
    from saltext_xen.guests import clone

    spec = domain_xml.parse(CLONE_XML)
    dom = conn.defineXML(domain_xml.render(spec))
    try:
        first = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        back = domain_xml.parse(first)
        assert guest_spec.diff(spec, back) == {}
        assert clone.origin(first)["name"] == "vm05"
        assert _kept(first)["{https://example.org/other/1}note"].findtext("item") == "backups & snapshots"
        conn.defineXML(domain_xml.render(back))
        assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == first
    finally:
        dom.undefine()
