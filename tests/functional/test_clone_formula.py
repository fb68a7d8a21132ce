"""salt/xen/clones.sls driven by pillar xen:clones (the tutorial's virt-clone), through state.sls
on libvirt's test driver with real image files."""

from pathlib import Path

import libvirt
import yaml

from saltext_xen.core import connection
from saltext_xen.guests import clone
from tests.conftest import ROOT
from tests.functional.disk_helpers import define_guest, disk_sources


def _by_id(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def _apply(modules, pillar, test=False, sls="xen.clones"):
    return _by_id(modules.state.sls(sls, pillar=pillar, test=test))


def _guest(uri, name):
    try:
        return connection.connect(uri).lookupByName(name)
    except libvirt.libvirtError:
        return None


def _example_pillar(tmp_path):
    """pillar/xen/clones.sls as shipped, the clone's image under tmp_path."""
    pillar = yaml.safe_load((ROOT / "pillar" / "xen" / "clones.sls").read_text())
    pillar["xen"]["clones"]["newvm03"]["disks"]["xvda"] = str(tmp_path / "newvm03.img")
    return pillar


def _vm03_with_a_real_disk(uri, tmp_path):
    """The seeded vm03 (shut off) has no image on this machine: define it again with one."""
    connection.connect(uri).lookupByName("vm03").undefine()
    _, disk = define_guest(uri, tmp_path, name="vm03")
    return disk


def _vm05_spec(tmp_path):
    """disk_helpers' vm05 as a pillar guest spec, kept shut off (the tutorial saved the source first)."""
    return {
        "ensure": "stopped",
        "uuid": "2aa1fae5-8550-affd-866f-27a9d6977d16",
        "memory": 512,
        "vcpus": 2,
        "bootloader": "/usr/bin/pygrub",
        "disks": [{"source": str(tmp_path / "vm05.img"), "target": "xvda", "format": "raw"}],
        "nics": [{"mac": "00:16:36:88:76:d4", "bridge": "xenbr0", "script": "vif-bridge"}],
    }


def test_example_pillar_clones_newvm03_predicts_exactly_then_changes_nothing(modules, test_uri, tmp_path):
    source_disk = _vm03_with_a_real_disk(test_uri, tmp_path)
    pillar = _example_pillar(tmp_path)
    dest = str(tmp_path / "newvm03.img")

    predicted = _apply(modules, pillar, test=True)
    assert set(predicted) == {"xen-clone-newvm03-cloned"}
    assert predicted["xen-clone-newvm03-cloned"]["result"] is None
    assert _guest(test_uri, "newvm03") is None and not (tmp_path / "newvm03.img").exists()  # test=True touched nothing

    applied = _apply(modules, pillar)
    ret = applied["xen-clone-newvm03-cloned"]
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["xen-clone-newvm03-cloned"]["changes"]
    assert ret["changes"]["disks:xvda"] == {"old": None, "new": dest}
    assert disk_sources(test_uri, "newvm03") == {"xvda": dest}
    assert Path(dest).read_bytes()[:15] == Path(source_disk).read_bytes()[:15]
    xml = _guest(test_uri, "newvm03").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert clone.origin(xml)["name"] == "vm03"
    assert _guest(test_uri, "newvm03").state()[0] == libvirt.VIR_DOMAIN_SHUTOFF  # start: false by default

    again = _apply(modules, pillar)
    assert {sid: (r["result"], r["changes"]) for sid, r in again.items()} == {"xen-clone-newvm03-cloned": (True, {})}
    assert "already as wanted" in again["xen-clone-newvm03-cloned"]["comment"]

    # a changed setting in pillar: predicted, applied to the existing clone, then settled
    pillar["xen"]["clones"]["newvm03"].update(memory=1024, vcpus=3, bridge="xenbr1")
    predicted = _apply(modules, pillar, test=True)["xen-clone-newvm03-cloned"]
    assert predicted["result"] is None and {"memory", "vcpus", "nics:0:bridge"} <= set(predicted["changes"])
    changed = _apply(modules, pillar)["xen-clone-newvm03-cloned"]
    assert changed["result"] is True and changed["changes"] == predicted["changes"], changed
    assert _apply(modules, pillar)["xen-clone-newvm03-cloned"]["changes"] == {}


def test_clone_runs_after_its_source_guest_state_and_xen_applies_it(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)  # xen:guests stops it before the copy
    pillar = {
        "xen": {
            "host": {"manage": False},
            "guests": {"vm05": _vm05_spec(tmp_path)},
            "clones": {
                "newvm05": {"source": "vm05", "disks": {"xvda": str(tmp_path / "newvm05.img")}, "memory": 768},
                # a clone of a clone: made after it
                "newvm06": {"source": "newvm05", "disks": {"xvda": str(tmp_path / "newvm06.img")}, "ensure": "running"},
            },
        }
    }
    shown = modules.state.show_sls("xen", pillar=pillar)
    assert isinstance(shown, dict), shown
    assert {"xen_guest": "xen-guest-vm05-stopped"} in _arg(shown["xen-clone-newvm05-cloned"], "require")
    assert {"xen_guest": "xen-clone-newvm05-cloned"} in _arg(shown["xen-clone-newvm06-cloned"], "require")
    # applied alone, xen.clones brings in the guest state its clone waits for
    assert "xen-guest-vm05-stopped" in modules.state.show_sls("xen.clones", pillar=pillar)

    applied = _apply(modules, pillar, sls="xen")
    order = sorted(applied, key=lambda sid: applied[sid]["__run_num__"])
    assert order == ["xen-guest-vm05-stopped", "xen-clone-newvm05-cloned", "xen-clone-newvm06-cloned"]
    assert all(r["result"] is True for r in applied.values()), {k: r["comment"] for k, r in applied.items()}
    assert applied["xen-clone-newvm06-cloned"]["changes"]["started"] == {"old": False, "new": True}
    assert _guest(test_uri, "newvm06").state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert _guest(test_uri, "newvm05").info()[1] == 768 * 1024
    assert clone.origin(_guest(test_uri, "newvm06").XMLDesc(0))["name"] == "newvm05"

    again = _apply(modules, pillar, sls="xen")
    assert {sid: r["changes"] for sid, r in again.items()} == {sid: {} for sid in applied}
    assert all(r["result"] is True for r in again.values())


def test_a_clone_also_in_xen_guests_is_made_before_its_guest_state(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    pillar = {
        "xen": {"guests": {"newvm05": {"ensure": "defined", "memory": 512}}, "clones": {"newvm05": {"source": "vm05"}}}
    }
    shown = modules.state.show_sls("xen.clones", pillar=pillar)
    assert isinstance(shown, dict), shown
    assert {"xen_guest": "xen-guest-newvm05-defined"} in _arg(shown["xen-clone-newvm05-cloned"], "require_in")


def test_bad_pillar_is_named_with_its_path_and_nothing_is_cloned(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    pillar = {
        "xen": {
            "guests": {"vm06": {"ensure": "absent"}},
            "clones": {
                "newvm05": {
                    "source": "vm05",
                    "memory": "lots",
                    "vcpus": 0,
                    "sise": 1,
                    "start": "yes",
                    "disks": {"xvda": "newvm05.img"},
                    "bridge": "",
                },
                "nosource": {"disks": {"xvda": str(tmp_path / "x.img")}},
                "gone": {"source": "vm06"},
                "loop1": {"source": "loop2"},
                "loop2": {"source": "loop1"},
                "ok": {"source": "vm05", "disks": {"xvda": str(tmp_path / "ok.img")}},
            },
        }
    }
    for test in (True, False):
        ret = _apply(modules, pillar, test=test)
        comment = ret["xen-clone-newvm05-checked"]["comment"]
        for expected in (
            "xen:clones:newvm05:memory: expected MiB as an integer, got 'lots'",
            "xen:clones:newvm05:vcpus: expected a whole number of at least 1, got 0",
            "xen:clones:newvm05:sise: unknown key",
            "xen:clones:newvm05:start: no longer a key; say ensure: running",
            "xen:clones:newvm05:disks:xvda: expected an absolute path",
            "xen:clones:newvm05:bridge: expected a bridge name",
        ):
            assert expected in comment, (expected, comment)
        assert comment.endswith("; nothing was changed")
        assert (
            "xen:clones:nosource:source: expected the name of the guest to clone"
            in ret["xen-clone-nosource-checked"]["comment"]
        )
        assert (
            "xen:clones:gone:source: vm06 is removed by xen:guests:vm06:ensure: absent"
            in ret["xen-clone-gone-checked"]["comment"]
        )
        assert (
            "xen:clones:loop1:source: loop2 is itself (through xen:clones) a clone of loop1"
            in ret["xen-clone-loop1-checked"]["comment"]
        )
        for sid, r in ret.items():
            assert r["result"] is (None if test and sid == "xen-clone-ok-cloned" else sid == "xen-clone-ok-cloned"), sid
            if sid.endswith("-checked"):
                assert r["changes"] == {}
    for name in ("newvm05", "nosource", "gone", "loop1", "loop2"):
        assert _guest(test_uri, name) is None, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.img", "vm05.img"]  # only the good entry cloned

    whole = _apply(modules, {"xen": {"clones": ["newvm05"]}})
    assert whole["xen-clones-checked"]["result"] is False
    assert whole["xen-clones-checked"]["comment"].startswith("xen:clones: expected a mapping")


def test_names_yaml_reads_as_numbers_render_beside_the_others(modules, test_uri, tmp_path):
    """Mixed number and text keys render, taken in the order of their text, a number as its text (as in xen:guests)."""
    define_guest(test_uri, tmp_path, name="vm05")
    clones = {
        123: {"source": "vm05", "disks": {"xvda": str(tmp_path / "123.img")}},
        "456": {"source": "vm05", "disks": {"xvda": str(tmp_path / "456.img")}},
        "web1": {"source": "vm05", "disks": {"xvda": str(tmp_path / "web1.img")}, "memory": "1G"},
    }
    ret = _apply(modules, {"xen": {"clones": clones}})
    assert set(ret) == {"xen-clone-123-cloned", "xen-clone-456-cloned", "xen-clone-web1-cloned"}, ret
    order = sorted(ret, key=lambda sid: ret[sid]["__run_num__"])
    assert order == ["xen-clone-123-cloned", "xen-clone-456-cloned", "xen-clone-web1-cloned"]
    assert all(r["result"] is True for r in ret.values()), ret
    assert _guest(test_uri, "123") is not None and _guest(test_uri, "456") is not None
    assert _guest(test_uri, "web1").info()[1] == 1024 * 1024  # memory: 1G, the size grammar of xen:guests
    cleaned = _apply(modules, {"xen": {"clones": clones}}, sls="xen.clones.clean")
    assert set(cleaned) == {"xen-clone-123-absent", "xen-clone-456-absent", "xen-clone-web1-absent"}


def test_run_time_errors_of_a_clone_are_named_by_its_key_path(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    pillar = {"xen": {"clones": {"newvm05": {"source": "vm05", "disks": {"xvda": str(tmp_path / "n.img")}}}}}
    for test in (True, False):
        ret = _apply(modules, pillar, test=test)["xen-clone-newvm05-cloned"]
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith("xen:clones:newvm05: vm05 is running: shut it off or pause it"), ret
    assert _guest(test_uri, "newvm05") is None and not (tmp_path / "n.img").exists()


def test_clean_undefines_the_clones_and_keeps_their_disks(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    pillar = {
        "xen": {
            "clones": {
                "newvm05": {"source": "vm05", "disks": {"xvda": str(tmp_path / "newvm05.img")}, "ensure": "running"},
                "newvm06": {"source": "vm05", "disks": {"xvda": str(tmp_path / "newvm06.img")}, "remove_disks": True},
            }
        }
    }
    assert all(r["result"] is True for r in _apply(modules, pillar).values())
    assert _guest(test_uri, "newvm05").state()[0] == libvirt.VIR_DOMAIN_RUNNING

    predicted = _apply(modules, pillar, test=True, sls="xen.clones.clean")
    assert set(predicted) == {"xen-clone-newvm05-absent", "xen-clone-newvm06-absent"}
    assert all(r["result"] is None for r in predicted.values()), predicted
    assert _guest(test_uri, "newvm05") is not None

    cleaned = _apply(modules, pillar, sls="xen.clones.clean")
    assert all(r["result"] is True for r in cleaned.values()), {k: r["comment"] for k, r in cleaned.items()}
    assert cleaned["xen-clone-newvm05-absent"]["changes"]["state"]["old"] == "running"
    for sid, ret in cleaned.items():
        assert ret["changes"] == predicted[sid]["changes"], sid  # test=True predicted exactly this
    assert _guest(test_uri, "newvm05") is None and _guest(test_uri, "newvm06") is None
    assert _guest(test_uri, "vm05") is not None  # the source stays
    assert (tmp_path / "newvm05.img").exists() and not (tmp_path / "newvm06.img").exists()

    again = _apply(modules, pillar, sls="xen.clones.clean")
    assert {sid: (r["result"], r["changes"]) for sid, r in again.items()} == {
        "xen-clone-newvm05-absent": (True, {}),
        "xen-clone-newvm06-absent": (True, {}),
    }


def test_ensure_absent_removes_a_clone(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    pillar = {"xen": {"clones": {"newvm05": {"source": "vm05", "disks": {"xvda": str(tmp_path / "newvm05.img")}}}}}
    assert _apply(modules, pillar)["xen-clone-newvm05-cloned"]["result"] is True
    pillar["xen"]["clones"]["newvm05"]["ensure"] = "absent"
    ret = _apply(modules, pillar)
    assert set(ret) == {"xen-clone-newvm05-absent"} and ret["xen-clone-newvm05-absent"]["result"] is True
    assert _guest(test_uri, "newvm05") is None and (tmp_path / "newvm05.img").exists()
    pillar["xen"]["clones"]["newvm05"]["ensure"] = "gone"
    bad = _apply(modules, pillar)["xen-clone-newvm05-checked"]
    assert (
        bad["result"] is False
        and "xen:clones:newvm05:ensure: expected one of defined, running, absent" in bad["comment"]
    )


def test_no_clones_in_pillar_is_a_quiet_no_op(modules):
    assert getattr(modules.state.sls("xen.clones", pillar={"xen": {}}), "raw", None) == {}


def _arg(chunk, key):
    """The value of argument ``key`` of a state in show_sls output."""
    for value in chunk.values():
        if isinstance(value, list):
            for arg in value:
                if isinstance(arg, dict) and key in arg:
                    return arg[key]
    raise AssertionError((key, chunk))
