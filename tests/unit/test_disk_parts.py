"""The partition-table logic of disk_parts and the definition edits of disk_move, alone."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saltext_xen.disks import disk_parts
from saltext_xen.guests import clone, disk_move

GB = 1000**3


def listing(table, parts, size=2 * 1000**4):
    return {
        "info": {"partition table": table, "size": f"{size}B"},
        "partitions": {
            str(i): {"number": str(i), "start": f"{s}B", "end": f"{e}B"} for i, (s, e) in enumerate(parts, 1)
        },
    }


def test_tutorial_mkpart_lines_validate():
    label, wanted, problems = disk_parts.validate(
        "gpt", [{"start": 0, "end": 100}, {"start": 100, "end": 200}, {"start": 0, "end": -1}]
    )
    assert problems == [] and label == "gpt"
    assert wanted[2] == {"start": "0", "end": "100%", "type": "primary"}


def test_every_problem_has_its_path():
    _, _, problems = disk_parts.validate("sun", [{"start": -3, "end": "lots"}, "x", {"start": 1, "colour": 2}])
    text = "\n".join(problems)
    for path in ("label:", "partitions:0:start", "partitions:0:end", "partitions:1:", "partitions:2:colour"):
        assert path in text


def test_parted_adjustments_still_match():
    # what parted made of "mkpart primary 0 100" and "mkpart primary 100 -1" on a 2 TB disk
    have = listing("gpt", [(17408, 100000255), (100000256, 2 * 1000**4 - 1048576 - 17408)])
    _, wanted, _ = disk_parts.validate("gpt", [{"start": 0, "end": 100}, {"start": 100, "end": -1}])
    assert disk_parts.matches(have, "gpt", wanted)


def test_other_table_does_not_match():
    have = listing("gpt", [(17408, 100000255)])
    _, two, _ = disk_parts.validate("gpt", [{"start": 0, "end": 100}, {"start": 100, "end": -1}])
    _, one_big, _ = disk_parts.validate("gpt", [{"start": 0, "end": 500}])
    assert not disk_parts.matches(have, "gpt", two)
    assert not disk_parts.matches(have, "gpt", one_big)
    assert not disk_parts.matches(have, "msdos", disk_parts.validate("msdos", [{"start": 0, "end": 100}])[1])


@given(st.integers(min_value=1, max_value=1000), st.integers(min_value=1, max_value=1000))
def test_units_agree_with_parted(start_mb, length_mb):
    end_mb = start_mb + length_mb
    have = listing("gpt", [(start_mb * 1000**2, end_mb * 1000**2 - 1)])
    assert disk_parts.matches(have, "gpt", [{"start": str(start_mb), "end": f"{end_mb}MB", "type": "primary"}])


def test_describe_and_blank():
    assert disk_parts.describe(listing("unknown", [])) == "no partition table"
    assert disk_parts.describe(listing("gpt", [(1, 2), (3, 4)])) == "gpt with 2 partitions"
    assert "whole disk" in disk_parts.describe(listing("loop", [(0, 10)]))
    assert disk_parts.is_blank(listing("unknown", []), None)
    assert not disk_parts.is_blank(listing("unknown", []), "ext4")


def test_partition_device_names():
    assert disk_parts.partition_device("/dev/loop3", 1) == "/dev/loop3p1"
    assert disk_parts.partition_device("/dev/sdb", 2) == "/dev/sdb2"


DOMAIN = """<domain type='xen'><name>newvm</name><devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/newvm.img'/>
<target dev='xvda' bus='xen'/></disk>
<interface type='bridge'><mac address='00:16:36:88:76:d4'/><source bridge='xenbr0'/></interface>
<console type='pty'/>
</devices></domain>"""


def test_replace_disk_keeps_everything_else():
    disk = {
        "source": "/dev/vol0/lv_for_newvm",
        "target": "xvda",
        "format": "raw",
        "readonly": False,
        "size": None,
        "device": "disk",
    }
    out = disk_move.replace_disk(DOMAIN, "xvda", disk)
    assert '<source dev="/dev/vol0/lv_for_newvm"' in out and "phy" in out
    assert "/img/newvm.img" not in out
    assert "00:16:36:88:76:d4" in out and "<console" in out


def test_add_and_remove_disk():
    disk = {
        "source": "/img/newvm-1.img",
        "target": "xvdb",
        "format": "raw",
        "readonly": False,
        "size": None,
        "device": "disk",
    }
    added = disk_move.add_disk(DOMAIN, disk)
    assert added.index("xvdb") < added.index("<interface")
    removed = disk_move.remove_disk(added, "xvdb")
    assert "xvdb" not in removed and "xvda" in removed
    with pytest.raises(disk_move.MoveError, match="no disk with target xvdq"):
        disk_move.remove_disk(DOMAIN, "xvdq")


@pytest.mark.parametrize(
    "src,expected",
    [
        ("/var/lib/xen/images/vm03.img", "/var/lib/xen/images/newvm03.img"),
        ("/var/lib/xen/images/data-disk.qcow2", "/var/lib/xen/images/newvm03-xvdb.qcow2"),
    ],
)
def test_default_clone_paths(src, expected):
    target = "xvda" if "vm03" in src else "xvdb"
    assert clone.default_path(src, "vm03", "newvm03", target) == expected
