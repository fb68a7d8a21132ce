"""salt/xen/guests-clean.sls and salt/xen/clean.sls: undo xen.guests for the example pillar.

Apply the shipped example pillar (tests.functional.test_guest_install does the
same), then clean: test=True predicts exactly, the real run stops and undefines
every pillar guest, keeps disks unless the guest says remove_disks: true, and a
second clean changes nothing.
"""

import libvirt
import pytest

from saltext_xen.core import connection
from tests.conftest import ROOT
from tests.functional.test_guest_install import (
    _example_pillar,
    tree,  # noqa: F401  pylint: disable=unused-import  (fixture)
)


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


@pytest.mark.parametrize("sls", ["xen.guests-clean", "xen.clean"])
def test_clean_undoes_the_example_pillar_predicts_and_settles(modules, tmp_path, tree, test_uri, sls):  # noqa: F811
    pillar = _example_pillar(tmp_path, tree)
    pillar["xen"]["guests"]["winxp"]["remove_disks"] = True
    applied = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert all(r["result"] is True for r in applied.values()), {k: r["comment"] for k, r in applied.items()}
    assert (tmp_path / "winxp.img").exists() and (tmp_path / "vm02.img").exists()

    predicted = _by_id(modules.state.sls(sls, pillar=pillar, test=True))
    assert set(predicted) == {"xen-guest-newvm-absent", "xen-guest-vm02-absent", "xen-guest-winxp-absent"}
    assert all(r["result"] is None for r in predicted.values()), predicted
    assert _defined(test_uri, "winxp") and (tmp_path / "winxp.img").exists()  # test=True touched nothing

    cleaned = _by_id(modules.state.sls(sls, pillar=pillar))
    assert all(r["result"] is True for r in cleaned.values()), {k: r["comment"] for k, r in cleaned.items()}
    for sid, ret in cleaned.items():
        assert ret["changes"] == predicted[sid]["changes"], sid
    assert cleaned["xen-guest-vm02-absent"]["changes"]["state"]["old"] == "running"
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


def test_block_devices_are_kept_even_with_remove_disks(modules, tmp_path, tree, test_uri):  # noqa: F811
    pillar = _example_pillar(tmp_path, tree)
    pillar["xen"]["guests"] = {"newvm": dict(pillar["xen"]["guests"]["newvm"], remove_disks=True)}
    assert all(r["result"] for r in _by_id(modules.state.sls("xen.guests", pillar=pillar)).values())
    ret = _by_id(modules.state.sls("xen.clean", pillar=pillar))["xen-guest-newvm-absent"]
    assert ret["changes"]["disks:xvda"]["new"].startswith("kept (block device or LV")
    assert ret["changes"]["disks:xvdb"] == {"old": str(tmp_path / "newvm-1.img"), "new": None}


def test_clean_includes_only_the_clean_files_that_exist(modules, minion_opts, tmp_path):
    shown = modules.state.show_sls("xen.clean", pillar={"xen": {"guests": {"g1": {}}}})
    assert set(shown) == {"xen-guest-g1-absent"}
    assert shown["xen-guest-g1-absent"]["__sls__"] == "xen.guests-clean"

    # a formula where networks-clean.sls exists too: included, after the guests
    import copy
    import shutil

    from saltfactories.utils.functional import Loaders

    roots = tmp_path / "roots"
    shutil.copytree(ROOT / "salt" / "xen", roots / "xen")
    (roots / "xen" / "networks-clean.sls").write_text("xen-net-cleaned:\n  test.nop: []\n")
    opts = copy.deepcopy(minion_opts)
    opts["file_roots"] = {"base": [str(roots)]}
    opts["cachedir"] = str(tmp_path / "cache")
    loaders = Loaders(opts)
    try:
        shown = loaders.modules.state.show_sls("xen.clean", pillar={"xen": {"guests": {"g1": {}}}})
    finally:
        loaders.reset_state()
    assert sorted(shown, key=lambda sid: _order(shown[sid])) == ["xen-guest-g1-absent", "xen-net-cleaned"]


def _order(chunk):
    """The order Salt gives a state of show_sls output (the {"order": N} in its argument list)."""
    for value in chunk.values():
        if isinstance(value, list):
            for arg in value:
                if isinstance(arg, dict) and "order" in arg:
                    return arg["order"]
    raise AssertionError(chunk)


def test_no_guests_in_pillar_is_a_quiet_no_op(modules):
    assert getattr(modules.state.sls("xen.clean", pillar={"xen": {}}), "raw", None) == {}
