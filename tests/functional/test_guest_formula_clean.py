"""salt/xen/guests/clean.sls and salt/xen/clean.sls: undo xen.guests for the example pillar.

Apply the shipped example pillar (tests.functional.test_guest_install does the
same), then clean: test=True predicts what the real run does, the real run shuts
down gracefully and undefines every pillar guest, keeps disks unless the guest says
remove_disks: true, destroys nothing unless the guest says force: true, and a
second clean changes nothing.
"""

import libvirt
import pytest

from saltext_xen.core import connection
from tests.functional.test_guest_install import _example_pillar


def _by_id(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def _defined(test_uri, name):
    try:
        connection.connect(test_uri).lookupByName(name)
    except libvirt.libvirtError:
        return False
    return True


def _example(tmp_path, tree_url):
    pillar = _example_pillar(tmp_path, tree_url)
    pillar["xen"]["host"] = {"manage": False}  # xen.clean: no GRUB file of this machine
    return pillar


@pytest.mark.parametrize("sls", ["xen.guests.clean", "xen.clean"])
def test_clean_undoes_the_example_pillar_predicts_and_settles(modules, tmp_path, tree, test_uri, sls):
    pillar = _example(tmp_path, tree)
    pillar["xen"]["guests"]["winxp"]["remove_disks"] = True
    pillar["xen"]["guests"]["newvm"]["force"] = True  # may be destroyed: removed in one state
    applied = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert all(r["result"] is True for r in applied.values()), {k: r["comment"] for k, r in applied.items()}
    assert (tmp_path / "winxp.img").exists() and (tmp_path / "vm02.img").exists()

    predicted = _by_id(modules.state.sls(sls, pillar=pillar, test=True))
    assert set(predicted) == {"xen-guest-vm02-absent", "xen-guest-winxp-absent", "xen-guest-newvm-absent"}
    assert all(r["result"] is None for r in predicted.values()), predicted
    assert _defined(test_uri, "winxp") and (tmp_path / "winxp.img").exists()  # test=True touched nothing

    cleaned = _by_id(modules.state.sls(sls, pillar=pillar))
    assert all(r["result"] is True for r in cleaned.values()), {k: r["comment"] for k, r in cleaned.items()}
    for sid, ret in cleaned.items():
        assert ret["changes"] == predicted[sid]["changes"], sid  # test=True predicted exactly this
    assert cleaned["xen-guest-vm02-absent"]["changes"]["state"]["old"] == "running"
    assert "shut down first" in cleaned["xen-guest-vm02-absent"]["comment"]
    assert cleaned["xen-guest-newvm-absent"]["changes"]["state"]["old"] == "running"
    assert cleaned["xen-guest-winxp-absent"]["changes"]["disks:hda"] == {
        "old": str(tmp_path / "winxp.img"),
        "new": None,
    }
    for name in ("vm02", "winxp", "newvm"):
        assert not _defined(test_uri, name), name
    assert _defined(test_uri, "vm03")  # not in the pillar: left alone
    assert not (tmp_path / "winxp.img").exists()  # remove_disks: true
    assert (tmp_path / "vm02.img").exists() and (tmp_path / "newvm-1.img").exists()  # kept by default
    assert "disks:xvda" not in cleaned["xen-guest-newvm-absent"]["changes"]

    again = _by_id(modules.state.sls(sls, pillar=pillar))
    assert {k: r["changes"] for k, r in again.items()} == {k: {} for k in again}
    assert all(r["result"] is True and r["comment"].endswith("is already absent") for r in again.values())


def test_block_devices_are_kept_even_with_remove_disks(modules, tmp_path, tree, test_uri):
    pillar = _example(tmp_path, tree)
    pillar["xen"]["guests"] = {"newvm": dict(pillar["xen"]["guests"]["newvm"], remove_disks=True)}
    assert all(r["result"] for r in _by_id(modules.state.sls("xen.guests", pillar=pillar)).values())
    ret = _by_id(modules.state.sls("xen.clean", pillar=pillar))["xen-guest-newvm-absent"]
    assert ret["changes"]["disks:xvda"]["new"].startswith("kept (block device or LV")
    assert ret["changes"]["disks:xvdb"] == {"old": str(tmp_path / "newvm-1.img"), "new": None}


def test_clean_includes_every_part_in_the_reverse_order_of_xen(modules, tmp_path):
    pillar = {
        "xen": {
            "host": {"manage": True},
            "bridges": {"xenbr9": {"nic": "eth9"}},
            "networks": {"net9": {"forward": "isolated"}},
            "disks": {"d9": {"path": str(tmp_path / "d9.img"), "size": "1M", "delete": True}},
            "guests": {"g1": {}},
            "clones": {"c9": {"source": "g1"}},
        }
    }
    shown = modules.state.show_sls("xen.clean", pillar=pillar)
    assert isinstance(shown, dict), shown
    assert shown["xen-guest-g1-absent"]["__sls__"] == "xen.guests.clean"
    assert sorted(shown, key=lambda sid: _order(shown[sid])) == [
        "xen-clone-c9-absent",
        "xen-guest-g1-absent",
        "xen-disk-d9-absent",
        "xen-net-network-net9-absent",
        "xen-net-bridge-xenbr9-absent",
        "xen-host-grub-dropin-absent",
        "xen-host-grub-config-rebuilt-without-xen",
    ]
    pillar["xen"]["host"]["manage"] = False
    assert not [sid for sid in modules.state.show_sls("xen.clean", pillar=pillar) if sid.startswith("xen-host-")]


def test_a_guest_that_does_not_shut_down_is_left_running_unless_force(modules, tmp_path, tree, test_uri):
    """Without force: true the clean only asks the guest to shut down; it is never destroyed."""
    pillar = _example(tmp_path, tree)
    pillar["xen"]["guests"] = {"vm02": dict(pillar["xen"]["guests"]["vm02"], timeout=1)}
    assert all(r["result"] for r in _by_id(modules.state.sls("xen.guests", pillar=pillar)).values())
    shown = modules.state.show_sls("xen.guests.clean", pillar=pillar)
    assert set(shown) == {"xen-guest-vm02-absent"}
    assert {"force": False} in shown["xen-guest-vm02-absent"]["xen_guest"]
    assert {"timeout": 1} in shown["xen-guest-vm02-absent"]["xen_guest"]
    pillar["xen"]["guests"]["vm02"]["force"] = True
    shown = modules.state.show_sls("xen.guests.clean", pillar=pillar)
    assert {"force": True} in shown["xen-guest-vm02-absent"]["xen_guest"]


def _order(chunk):
    """The order Salt gives a state of show_sls output (the {"order": N} in its argument list)."""
    for value in chunk.values():
        if isinstance(value, list):
            for arg in value:
                if isinstance(arg, dict) and "order" in arg:
                    return arg["order"]
    raise AssertionError(chunk)


def test_no_guests_in_pillar_is_a_quiet_no_op(modules):
    pillar = {"xen": {"host": {"manage": False}}}  # a managed host's clean removes the GRUB drop-in
    assert getattr(modules.state.sls("xen.clean", pillar=pillar), "raw", None) == {}
