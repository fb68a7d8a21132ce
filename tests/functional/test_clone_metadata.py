"""A clone made by xen_guest.clone keeps the record of its source (and other tools' <metadata>)
when the guest states later rebuild its definition from a spec, on libvirt's test driver."""

import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import connection
from saltext_xen.guests import clone
from tests.functional.disk_helpers import define_guest

OTHER_NS = "https://example.org/other-tool/1"


def _running(states, spec, test=False):
    return dict(states.xen_guest.running("newvm05", spec=spec, test=test).full_return)


def _definition(uri):
    return connection.connect(uri).lookupByName("newvm05").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def test_guest_states_keep_a_clones_record_and_other_metadata(modules, states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    source_uuid = connection.connect(test_uri).lookupByName("vm05").UUIDString()
    modules.xen_guest.clone("vm05", "newvm05")
    dom = connection.connect(test_uri).lookupByName("newvm05")
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        '<note owner="ops">keep me</note>',
        "other",
        OTHER_NS,
        libvirt.VIR_DOMAIN_AFFECT_CONFIG,
    )
    spec = {
        "memory": 768,
        "maxmem": 1024,
        "vcpus": 2,
        "disks": [str(tmp_path / "newvm05.img")],
        "nics": [{"bridge": "xenbr0", "script": "vif-bridge"}],
    }

    predicted = _running(states, spec, test=True)
    real = _running(states, spec)
    assert real["result"] is True, real["comment"]
    assert predicted["changes"] == real["changes"]
    assert real["changes"]["memory"] == {"old": 512, "new": 768}  # the definition was rebuilt from the spec
    assert not any(key.startswith("_") for key in real["changes"])  # the kept metadata is no change

    xml = _definition(test_uri)
    assert clone.origin(xml) == {"name": "vm05", "uuid": source_uuid}
    note = ET.fromstring(xml).find(f"metadata/{{{OTHER_NS}}}note")
    assert note is not None and note.get("owner") == "ops" and note.text == "keep me"
    assert ET.fromstring(xml).findtext("currentMemory") == str(768 * 1024)

    again = _running(states, spec)
    assert again["result"] is True and again["changes"] == {}, again
    # and xen_guest.cloned still knows it for a clone of vm05
    cloned = dict(states.xen_guest.cloned("newvm05", source="vm05").full_return)
    assert cloned["result"] is True and cloned["changes"] == {}, cloned
    assert modules.xen_guest.spec("newvm05").keys().isdisjoint({"_metadata"})  # pillar's shape
