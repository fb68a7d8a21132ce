"""salt/xen/disks.sls driven by pillar xen:disks, through state.sls (real images, loop devices)."""

import os

import pytest

from tests.functional.disk_helpers import define_guest, disk_sources

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root, parted and loop devices"
)


def apply(modules, pillar, test=False):
    return apply_sls(modules, "xen.disks", pillar, test=test)


def apply_sls(modules, sls, pillar, test=False):
    ret = modules.state.sls(sls, pillar=pillar, test=test)
    assert isinstance(ret.raw, dict), ret.raw
    return {key.split("_|-")[1]: value for key, value in ret.raw.items()}


def test_tutorial_disk_pillar_applies_then_changes_nothing(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    img = str(tmp_path / "newvm-1.img")
    moved = str(tmp_path / "newvm-moved.img")
    pillar = {
        "xen": {
            "disks": {
                "newvm-data": {
                    "path": img,
                    "size": "2TB",
                    "label": "gpt",
                    "partitions": [{"start": 0, "end": 100}, {"start": 100, "end": -1}],
                    "filesystems": {1: "ext3", 2: {"fs_type": "ext4", "label": "data"}},
                    "attach": {"guest": "newvm", "target": "xvdb"},
                },
                "newvm-root": {"path": moved, "move": {"guest": "newvm", "disk": "xvda"}},
            }
        }
    }
    predicted = apply(modules, pillar, test=True)
    assert set(predicted) == {
        "xen-disk-newvm-data-present",
        "xen-disk-newvm-data-partitioned",
        "xen-disk-newvm-data-part1-formatted",
        "xen-disk-newvm-data-part2-formatted",
        "xen-disk-newvm-data-attached",
        "xen-disk-newvm-root-moved",
    }
    for sid, ret in predicted.items():
        assert ret["result"] is None and ret["changes"], (sid, ret["comment"])
    assert not os.path.exists(img)
    first = apply(modules, pillar)
    for sid, ret in first.items():
        assert ret["changes"] == predicted[sid]["changes"], sid
    for sid, ret in first.items():
        assert ret["result"] is True, (sid, ret["comment"])
        assert ret["changes"], sid
    assert disk_sources(test_uri, "newvm") == {"xvda": moved, "xvdb": img}
    assert modules.xen_disk.filesystem(img, partition=2)["fstype"] == "ext4"
    second = apply(modules, pillar)
    for sid, ret in second.items():
        assert ret["result"] is True and ret["changes"] == {}, (sid, ret)


def test_misspelt_key_is_reported_and_nothing_done(modules, tmp_path):
    img = str(tmp_path / "x.img")
    ret = apply(modules, {"xen": {"disks": {"x": {"path": img, "sise": "1G"}}}})
    (only,) = ret.values()
    assert only["result"] is False
    assert only["comment"].startswith("xen:disks:x:sise: unknown key (did you mean size?"), only["comment"]
    assert not os.path.exists(img)


def test_absent_needs_delete(modules, tmp_path):
    img = tmp_path / "old.img"
    img.write_bytes(b"data")
    ret = apply(modules, {"xen": {"disks": {"old": {"path": str(img), "ensure": "absent"}}}})
    assert ret["xen-disk-old-absent"]["result"] is False and img.exists()
    ret = apply(modules, {"xen": {"disks": {"old": {"path": str(img), "absent": True}}}})
    assert "xen:disks:old:absent: no longer a key; say ensure: absent" in ret["xen-disk-old-checked"]["comment"]
    assert img.exists()
    ret = apply(modules, {"xen": {"disks": {"old": {"path": str(img), "ensure": "absent", "delete": True}}}})
    assert ret["xen-disk-old-absent"]["result"] is True and not img.exists()


def test_clean_detaches_and_deletes_only_what_says_delete(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    kept, gone = str(tmp_path / "kept.img"), str(tmp_path / "gone.img")
    pillar = {
        "xen": {
            "disks": {
                "kept": {"path": kept, "size": "8M", "filesystems": {"whole": "ext4"}, "attach": "newvm"},
                "gone": {"path": gone, "size": "8M", "attach": {"guest": "newvm", "target": "xvdc"}, "delete": True},
            }
        }
    }
    assert all(r["result"] is True for r in apply(modules, pillar).values())
    assert set(disk_sources(test_uri, "newvm").values()) >= {kept, gone}

    predicted = apply_sls(modules, "xen.disks.clean", pillar, test=True)
    assert set(predicted) == {"xen-disk-kept-detached", "xen-disk-gone-detached", "xen-disk-gone-absent"}
    # test=True does not detach, so xen_disk.absent still sees the guest using the disk
    refused = predicted.pop("xen-disk-gone-absent")
    assert refused["result"] is False and "still used by newvm (xvdc)" in refused["comment"]
    assert all(r["result"] is None for r in predicted.values()), predicted
    cleaned = apply_sls(modules, "xen.disks.clean", pillar)
    assert all(r["result"] is True for r in cleaned.values()), {k: r["comment"] for k, r in cleaned.items()}
    for sid, ret in predicted.items():
        assert cleaned[sid]["changes"] == ret["changes"], sid
    assert cleaned["xen-disk-gone-absent"]["changes"]
    assert not {kept, gone} & set(disk_sources(test_uri, "newvm").values())
    assert os.path.exists(kept) and modules.xen_disk.filesystem(kept)["fstype"] == "ext4"  # data kept
    assert not os.path.exists(gone)
    again = apply_sls(modules, "xen.disks.clean", pillar)
    assert all(r["result"] is True and r["changes"] == {} for r in again.values()), again


def test_pools_from_pillar(modules, test_uri, tmp_path):
    folder = str(tmp_path / "images")
    pillar = {"xen": {"pools": {"scratch": {"path": folder}, "vol0": {"type": "logical", "ensure": "present"}}}}
    first = apply(modules, pillar)
    assert {sid: r["result"] for sid, r in first.items()} == {
        "xen-disk-pool-scratch-present": True,
        "xen-disk-pool-vol0-present": True,
    }
    assert os.path.isdir(folder)
    second = apply(modules, pillar)
    assert all(r["changes"] == {} for r in second.values())
    pillar["xen"]["pools"]["vol0"]["ensure"] = "absent"
    bad = apply(modules, pillar)["xen-disk-pool-vol0-checked"]
    assert bad["result"] is False and "xen:pools:vol0:ensure: expected present, got 'absent'" in bad["comment"]


def test_a_bad_entry_is_refused_with_the_librarys_words_and_the_others_go_on(modules, tmp_path):
    bad, good = str(tmp_path / "bad.img"), str(tmp_path / "good.img")
    pillar = {
        "xen": {
            "disks": {
                "bad": {
                    "path": bad,
                    "size": "8M",
                    "partitions": [{"start": 200, "end": 100}],
                    "filesystems": {3: "ext4"},
                },
                "good": {"path": good, "size": "8M"},
            }
        }
    }
    for test in (True, False):
        ret = apply(modules, pillar, test=test)
        assert set(ret) == {"xen-disk-bad-checked", "xen-disk-good-present"}
        checked = ret["xen-disk-bad-checked"]
        assert (checked["result"], checked["changes"]) == (False, {})
        assert checked["comment"] == (
            "xen:disks:bad:partitions:0: start 200 is after end 100; "
            "xen:disks:bad:filesystems:3: the entry makes 1 partition, not 3; nothing was changed"
        )
    assert not os.path.exists(bad) and os.path.exists(good)


def test_an_attach_to_a_guest_xen_guests_defines_in_the_same_run_is_accepted_and_runs_after_it(
    modules, test_uri, tmp_path
):
    img = str(tmp_path / "data.img")
    disks = {"data": {"path": img, "size": "8M", "attach": {"guest": "vm9", "target": "xvdb"}}}
    alone = apply(modules, {"xen": {"disks": disks}}, test=True)
    assert alone["xen-disk-data-checked"]["comment"] == (
        "xen:disks:data:attach:guest: no guest vm9 is defined on this host; nothing was changed"
    )
    pillar = {"xen": {"guests": {"vm9": {"memory": 256, "ensure": "defined"}}, "disks": disks}}
    ret = apply_sls(modules, "xen.disks,xen.guests", pillar)
    assert {sid: (r["result"], r["comment"]) for sid, r in ret.items()} == {
        "xen-disk-data-present": (True, ret["xen-disk-data-present"]["comment"]),
        "xen-guest-vm9-defined": (True, ret["xen-guest-vm9-defined"]["comment"]),
        "xen-disk-data-attached": (True, ret["xen-disk-data-attached"]["comment"]),
    }
    assert disk_sources(test_uri, "vm9") == {"xvdb": img}


def test_a_state_names_its_problem_by_the_pillar_key_test_mode_too(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    img = str(tmp_path / "x.img")
    pillar = {"xen": {"disks": {"x": {"path": img, "size": "8M", "attach": {"guest": "newvm", "target": "sdz9"}}}}}
    for test in (True, False):
        attached = apply(modules, pillar, test=test)["xen-disk-x-attached"]
        assert (attached["result"], attached["changes"]) == (False, {})
        assert (
            attached["comment"] == "xen:disks:x:attach:target: expected a disk name like xvda, hda or sda, got 'sdz9'"
        )


def test_only_an_attach_to_a_guest_not_defined_yet_waits_for_the_guest_states(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    guests = {"newvm": {"ensure": "running"}, "vm9": {"memory": 256}}
    disks = {name: {"path": str(tmp_path / f"{name}.img"), "size": "8M", "attach": name} for name in guests}
    high = modules.state.show_sls("xen.disks", pillar={"xen": {"guests": guests, "disks": disks}})
    assert isinstance(high, dict), high
    orders = {sid: high[sid]["xen_disk"] for sid in ("xen-disk-newvm-attached", "xen-disk-vm9-attached")}
    assert {"order": "last"} in orders["xen-disk-vm9-attached"]
    assert {"order": "last"} not in orders["xen-disk-newvm-attached"]
