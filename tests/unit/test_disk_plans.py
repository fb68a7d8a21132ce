"""What the disk states plan, worked out by the library: every change is {key: {"old": .., "new": ..}}."""

import pytest

from saltext_xen.core.errors import XenError
from saltext_xen.disks import disk_image, disk_parts, volumes
from saltext_xen.guests import devices, disk_move

GIB = 1024**3


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/dev/vol0/lv_for_newvm", ("vol0", "lv_for_newvm")),
        ("/dev/mapper/vol0-lv_for_newvm", ("vol0", "lv_for_newvm")),
        ("/dev/mapper/my--vg-my--lv", ("my-vg", "my-lv")),
    ],
)
def test_lv_names_from_either_path(path, names):
    assert volumes.lv_names(path) == names


def test_a_path_that_is_no_lv_is_named_in_the_error():
    with pytest.raises(disk_image.DiskError, match="/dev/sda does not name an LV"):
        volumes.lv_names("/dev/sda")


def test_image_problems_are_all_named():
    wanted, problems = volumes.validate("relative.img", "lots", "vmdk", "thick")
    assert wanted is None
    assert [p.split(":")[0] for p in problems] == ["size", "format", "allocation", "name"]
    _, problems = volumes.validate("/dev/vol0/lv", "10G", "qcow2")
    assert problems == ["format: an LV holds raw data, got 'qcow2'"]


def test_present_creates_grows_and_never_shrinks():
    missing = {"exists": False}
    assert volumes.present_changes("/i.img", missing, 2 * GIB) == {
        "size": {"old": None, "new": 2 * GIB},
        "format": {"old": None, "new": "raw"},
    }
    have = {"exists": True, "format": "raw", "size": GIB}
    assert volumes.present_changes("/i.img", have, 2 * GIB) == {"size": {"old": GIB, "new": 2 * GIB}}
    assert volumes.present_changes("/i.img", have, GIB // 2) == {}
    with pytest.raises(disk_image.DiskError, match="not converted or replaced"):
        volumes.present_changes("/i.img", have, GIB, "qcow2")


def _listing(table, parts=()):
    return {
        "info": {"partition table": table, "size": f"{100 * 1000**2}B"},
        "partitions": {str(i): {"start": f"{s}B", "end": f"{e}B"} for i, (s, e) in enumerate(parts, 1)},
    }


def test_table_changes_need_force_over_a_table():
    label, wanted, _ = disk_parts.validate("gpt", [{"start": 0, "end": -1}])
    blank = _listing("unknown")
    assert disk_parts.table_changes("/d.img", blank, label, wanted, {"blank": True}) == {
        "/d.img": {"old": "no partition table", "new": "gpt with 1 partition"}
    }
    used = _listing("msdos", [(1024**2, 50 * 1000**2)])
    with pytest.raises(disk_image.DiskError, match="not repartitioned unless force"):
        disk_parts.table_changes("/d.img", used, label, wanted, {"blank": False})
    assert disk_parts.table_changes("/d.img", used, label, wanted, {"blank": False}, force=True)


def test_format_changes_and_refusals():
    probe = {"fstype": None, "table": "gpt with 1 partition", "missing": False}
    assert disk_parts.format_changes("/d.img", "ext3", probe, partition=1) == {"/d.img:1": {"old": None, "new": "ext3"}}
    with pytest.raises(disk_image.DiskError, match="format a partition"):
        disk_parts.format_changes("/d.img", "ext3", probe)
    with pytest.raises(disk_image.DiskError, match="already holds ext3"):
        disk_parts.format_changes("/d.img", "ext4", dict(probe, fstype="ext3"), partition=1)
    assert disk_parts.format_changes("/d.img", "ext3", dict(probe, fstype="ext3"), partition=1) == {}
    assert disk_parts.format_problems("zfs", 0) == [
        "fs_type: expected one of ext2, ext3, ext4, xfs, got 'zfs'",
        "partition: expected a partition number like 1, got 0",
    ]


def _disk(source, target):
    return {"source": source, "target": target}


def test_attach_plan_picks_the_target_it_has_else_the_first_free():
    disks = {"config": {"xvda": _disk("/a.img", "xvda")}, "live": None}
    assert devices.attach_disk_plan(disks, "newvm", "/b.img") == ("xvdb", ["config"])
    disks["config"]["xvdc"] = _disk("/b.img", "xvdc")
    assert devices.attach_disk_plan(disks, "newvm", "/b.img") == ("xvdc", [])
    with pytest.raises(XenError, match=r"already has /a\.img as xvda"):
        devices.attach_disk_plan(disks, "newvm", "/b.img", target="xvda")


def test_detach_plan_finds_by_target_or_path():
    disks = {"config": {"xvdb": _disk("/b.img", "xvdb")}, "live": {"xvdb": _disk("/b.img", "xvdb")}}
    assert set(devices.detach_disk_plan(disks, "xvdb")) == {"config", "live"}
    assert set(devices.detach_disk_plan(disks, "/b.img", scopes=("config",))) == {"config"}
    assert devices.detach_disk_plan(disks, "xvdq") == {}
    assert devices.disk_change_key("xvdb", ["live"]) == "xvdb (live)"


def test_move_changes_say_what_the_step_does():
    step = {
        "guest": "newvm",
        "target": "xvda",
        "source": "/i.qcow2",
        "dest": "/dev/vol0/lv",
        "format": "qcow2",
        "dest_format": "raw",
        "convert": True,
        "stop": True,
        "make_block": True,
        "nothing_to_do": False,
        "state": "running",
    }
    assert disk_move.planned_changes(step) == {
        "xvda": {"old": "/i.qcow2", "new": "/dev/vol0/lv"},
        "xvda:format": {"old": "qcow2", "new": "raw"},
        "restarted": {"old": "running", "new": "restarted"},
    }
    assert disk_move.plan_words(step) == (
        " (creating /dev/vol0/lv, converting qcow2 to raw, stopping newvm and starting it again)"
    )
    assert disk_move.planned_changes(dict(step, nothing_to_do=True)) == {}
    assert disk_move.request_problems("/dev/vol0/lv", "qcow2") == [
        "format: /dev/vol0/lv is a block device (LV): it holds raw data, not qcow2"
    ]
