"""A whole xen:disks entry is checked before any of its states runs (saltext_xen.disks.disk_entry)."""

from saltext_xen.disks import disk_entry, pools


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
    assert disk_entry.problems("gone", "x") == [
        "xen:disks:gone: expected a mapping of settings (path, size, ...), got 'x'"
    ]


def test_a_retired_key_says_what_to_write_instead():
    found = disk_entry.problems("old", {"path": "/srv/xen/old.img", "absent": True})
    assert found == ["xen:disks:old:absent: no longer a key; say ensure: absent"]


def test_a_guest_the_same_run_defines_counts_as_known():
    entry = {"path": "/srv/xen/d.img", "size": 10, "attach": "newvm"}
    assert disk_entry.problems("d", entry, guests=["vm02"]) == [
        "xen:disks:d:attach:guest: no guest newvm is defined on this host"
    ]
    assert disk_entry.problems("d", entry, guests=["vm02", "newvm"]) == []


def test_a_pool_entry_is_checked_with_its_key_path():
    assert pools.entry_problems("images", {"path": "/var/lib/xen/images", "ensure": "Present"}) == []
    assert pools.entry_problems("vol0", None) == [
        "xen:pools:vol0:path: expected the directory of the images, like /var/lib/xen/images"
    ]
    assert pools.entry_problems("vol0", {"type": "logical", "ensure": "absent", "colour": 1}) == [
        "xen:pools:vol0:ensure: expected present, got 'absent'",
        "xen:pools:vol0:colour: unknown key (expected one of type, path, vg, autostart)",
    ]
    assert pools.entry_problems(101, "x") == ["xen:pools:101: expected a mapping of settings, got 'x'"]
