"""salt/xen/disks.sls passes a move entry's format through to xen_disk.moved (qcow2 -> raw file)."""

from tests.functional.disk_helpers import disk_sources
from tests.functional.test_disk_move import disk_formats, qcow2_guest


def apply(modules, pillar, test=False):
    ret = modules.state.sls("xen.disks", pillar=pillar, test=test)
    return {key.split("_|-")[1]: value for key, value in ret.raw.items()}


def test_move_entry_with_format_converts_then_changes_nothing(modules, test_uri, tmp_path):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    dest = str(tmp_path / "newvm.img")
    pillar = {
        "xen": {"disks": {"newvm-root": {"path": dest, "move": {"guest": "newvm", "disk": "xvda", "format": "raw"}}}}
    }
    predicted = apply(modules, pillar, test=True)["xen-disk-newvm-root-moved"]
    assert predicted["result"] is None, predicted["comment"]
    first = apply(modules, pillar)["xen-disk-newvm-root-moved"]
    assert first["result"] is True, first["comment"]
    assert (
        first["changes"]
        == predicted["changes"]
        == {"xvda": {"old": image, "new": dest}, "xvda:format": {"old": "qcow2", "new": "raw"}}
    )
    assert disk_sources(test_uri, "newvm")["xvda"] == dest and disk_formats(test_uri, "newvm")["xvda"] == "raw"
    second = apply(modules, pillar)["xen-disk-newvm-root-moved"]
    assert second["result"] is True and second["changes"] == {}, second
