"""A whole xen:disks entry is checked before any of its states runs (saltext_xen.disks.disk_entry)."""

from saltext_xen.disks import disk_entry


def test_a_good_entry_has_no_problems():
    entry = {
        "path": "/srv/xen/newvm-1.img",
        "size": "2TB",
        "label": "gpt",
        "partitions": [{"start": 0, "end": 100}, {"start": 100, "end": -1}],
        "filesystems": {1: "ext3", 2: {"fs_type": "ext4", "label": "data"}},
        "attach": {"guest": "newvm", "target": "xvdb"},
    }
    assert disk_entry.problems("newvm-1", entry, guests=["newvm"]) == []


def test_every_problem_is_named_by_its_key_path_at_once():
    entry = {
        "path": "rel.img",
        "size": "5l2",
        "label": "gpt",
        "partitions": [{"start": 200, "end": 100}],
        "filesystems": {1: "zfs", 3: "ext4"},
        "attach": "nosuch",
    }
    found = disk_entry.problems("d", entry, guests=["newvm"])
    assert any(p.startswith("xen:disks:d:path: expected an absolute path") for p in found)
    assert any(p.startswith("xen:disks:d:size: expected a size") for p in found)
    assert "xen:disks:d:partitions:0: start 200 is after end 100" in found
    assert any(p.startswith("xen:disks:d:filesystems:1:fs_type: expected one of ext2") for p in found)
    assert "xen:disks:d:filesystems:3: the entry makes 1 partition, not 3" in found
    assert "xen:disks:d:attach:guest: no guest nosuch is defined on this host" in found


def test_a_move_onto_an_lv_is_raw_and_its_flags_are_booleans():
    entry = {"path": "/dev/vg/lv", "move": {"guest": "newvm", "disk": "xvda", "format": "qcow2", "shutdown": "yes"}}
    found = disk_entry.problems("m", entry, guests=["newvm"])
    assert found == [
        "xen:disks:m:move:format: /dev/vg/lv is a block device (LV): it holds raw data, not qcow2",
        "xen:disks:m:move:shutdown: expected true or false, got 'yes'",
    ]


def test_an_absent_entry_needs_only_its_path():
    assert disk_entry.problems("gone", {"path": "/srv/xen/old.img", "ensure": "absent", "delete": True}) == []
    assert disk_entry.problems("gone", "x") == ["xen:disks:gone: expected a mapping of disk settings, got 'x'"]
