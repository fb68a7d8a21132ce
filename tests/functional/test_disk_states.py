"""xen_disk states: test=True predicts exactly, second apply changes nothing, nothing destroyed unasked."""

import os

import pytest

from saltext_xen.core import connection
from tests.functional.disk_helpers import MIB, define_guest, disk_sources, loop_device
from tests.functional.test_disk_move import disk_formats, qcow2_guest, same_image

TB2 = 2 * 1000**4
needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root, parted and loop devices"
)


def run(states, fn, name, test=False, **kwargs):
    return dict(getattr(states.xen_disk, fn)(name, test=test, **kwargs).full_return)


def apply_three_times(states, fn, name, **kwargs):
    """test=True, real, real again: prediction equals the real changes; the second real run is empty."""
    predicted = run(states, fn, name, test=True, **kwargs)
    real = run(states, fn, name, **kwargs)
    again = run(states, fn, name, **kwargs)
    assert predicted["result"] is None, predicted
    assert real["result"] is True, real
    assert predicted["changes"] == real["changes"]
    assert again["result"] is True and again["changes"] == {}, again
    return predicted, real, again


def test_present_creates_tutorial_disk_then_nothing(states, tmp_path):
    path = str(tmp_path / "newvm-1.img")
    predicted, real, again = apply_three_times(states, "present", path, size="2TB")
    assert not predicted["comment"].startswith("/") or "would be created" in predicted["comment"]
    assert real["changes"]["size"] == {"old": None, "new": TB2}
    assert os.path.getsize(path) == TB2 and os.stat(path).st_blocks * 512 < MIB
    assert "already there" in again["comment"]


def test_present_grows_but_never_shrinks(states, tmp_path):
    path = str(tmp_path / "vm.img")
    run(states, "present", path, size="1G")
    _, real, _ = apply_three_times(states, "present", path, size="2G")
    assert real["changes"] == {"size": {"old": 1024**3, "new": 2 * 1024**3}}
    smaller = run(states, "present", path, size="1G")
    assert smaller["result"] is True and smaller["changes"] == {}
    assert os.path.getsize(path) == 2 * 1024**3


def test_present_reports_every_problem(states, tmp_path):
    ret = run(states, "present", "relative.img", size="lots", format="vmdk", allocation="thick", colour="red")
    assert ret["result"] is False
    for words in ("size:", "format:", "allocation:", "name:", "colour: unknown argument"):
        assert words in ret["comment"]
    assert not os.path.exists("relative.img")


def test_pillar_path_names_argument_problems_and_run_time_errors_test_mode_alike(states, tmp_path):
    path = str(tmp_path / "newvm-1.img")
    entry = "xen:disks:newvm-1"
    for test in (True, False):
        bad = run(states, "present", path, test=test, size="lots", pillar_path=entry)
        assert bad["result"] is False and bad["changes"] == {}
        assert bad["comment"].startswith(f"{entry}:size: expected a size"), bad["comment"]
    assert not os.path.exists(path)
    run(states, "present", path, size=10)
    for test in (True, False):
        other = run(states, "present", path, test=test, size=10, format="qcow2", pillar_path=entry)
        assert other["result"] is False and other["changes"] == {}
        assert other["comment"] == f"{entry}: {path} exists as raw, not qcow2; it is not converted or replaced"
    refused = run(states, "absent", path, pillar_path=entry)
    assert refused["comment"].startswith(f"{entry}: {path} exists; removing it destroys its data")
    ghost = run(states, "attached", path, guest="ghost", pillar_path=entry)
    assert ghost["result"] is False and ghost["comment"].startswith(f"{entry}: "), ghost["comment"]


def test_present_refuses_other_format(states, tmp_path):
    path = str(tmp_path / "vm.img")
    run(states, "present", path, size=10)
    ret = run(states, "present", path, size=10, format="qcow2")
    assert ret["result"] is False and "not converted or replaced" in ret["comment"]


def test_absent_needs_delete_flag(states, test_uri, tmp_path):
    path = str(tmp_path / "old.img")
    run(states, "present", path, size=10)
    refused = run(states, "absent", path)
    assert refused["result"] is False and "delete: true" in refused["comment"]
    assert os.path.exists(path)
    apply_three_times(states, "absent", path, delete=True)
    assert not os.path.exists(path)


def test_absent_refuses_disk_in_use(states, test_uri, tmp_path):
    _, disk = define_guest(test_uri, tmp_path)
    ret = run(states, "absent", disk, delete=True)
    assert ret["result"] is False and "still used by newvm (xvda)" in ret["comment"]
    assert os.path.exists(disk)


def test_attached_then_detached(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    img = str(tmp_path / "newvm-1.img")
    run(states, "present", img, size="2TB")
    _, real, _ = apply_three_times(states, "attached", img, guest="newvm", target="xvdb")
    assert real["changes"] == {"xvdb": {"old": None, "new": img}}
    assert disk_sources(test_uri, "newvm")["xvdb"] == img
    _, real, _ = apply_three_times(states, "detached", "xvdb", guest="newvm")
    assert real["changes"] == {"xvdb": {"old": img, "new": None}}
    assert "xvdb" not in disk_sources(test_uri, "newvm")
    assert os.path.exists(img)


def test_attached_to_running_guest_on_driver_without_hotplug(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, running=True)
    img = str(tmp_path / "newvm-1.img")
    run(states, "present", img, size=100)
    real = run(states, "attached", img, guest="newvm", target="xvdb")
    assert real["result"] is True and real["changes"] == {"xvdb": {"old": None, "new": img}}
    again = run(states, "attached", img, guest="newvm", target="xvdb")
    assert again["result"] is True and again["changes"] == {}
    assert "next start" in again["comment"]


def test_attached_refuses_taken_target(states, test_uri, tmp_path):
    _, root = define_guest(test_uri, tmp_path)
    img = str(tmp_path / "d.img")
    run(states, "present", img, size=10)
    ret = run(states, "attached", img, guest="newvm", target="xvda")
    assert ret["result"] is False and f"already has {root} as xvda" in ret["comment"]


@needs_loop
def test_partitioned_and_formatted_like_the_tutorial(states, tmp_path):
    img = str(tmp_path / "newvm-1.img")
    run(states, "present", img, size="2TB")
    parts = [{"start": 0, "end": 100}, {"start": 100, "end": -1}]
    _, real, _ = apply_three_times(states, "partitioned", img, label="gpt", partitions=parts)
    assert real["changes"] == {img: {"old": "no partition table", "new": "gpt with 2 partitions"}}
    _, real, _ = apply_three_times(states, "formatted", img, partition=1, fs_type="ext3")
    assert real["changes"] == {f"{img}:1": {"old": None, "new": "ext3"}}
    other = run(states, "partitioned", img, label="gpt", partitions=[{"start": 0, "end": -1}])
    assert other["result"] is False and "not repartitioned unless force: true" in other["comment"]
    refmt = run(states, "formatted", img, partition=1, fs_type="ext4")
    assert refmt["result"] is False and "already holds ext3" in refmt["comment"]
    whole = run(states, "formatted", img, fs_type="ext4")
    assert whole["result"] is False and "format a partition" in whole["comment"]


def test_moved_file_to_file(states, test_uri, tmp_path):
    _, src = define_guest(test_uri, tmp_path, running=True)
    dest = str(tmp_path / "moved.img")
    refused = run(states, "moved", "newvm", disk="xvda", to=dest)
    assert refused["result"] is False and "shutdown=True" in refused["comment"]
    _, real, _ = apply_three_times(states, "moved", "newvm", disk="xvda", to=dest, shutdown=True, remove_source=True)
    assert real["changes"] == {
        "xvda": {"old": src, "new": dest},
        "xvda:source_removed": {"old": False, "new": True},
        "restarted": {"old": "running", "new": "restarted"},
    }
    assert disk_sources(test_uri, "newvm")["xvda"] == dest
    assert connection.connect(test_uri).lookupByName("newvm").isActive()
    assert not os.path.exists(src)


def test_moved_qcow2_to_raw_file_with_format(states, test_uri, tmp_path):
    """format: raw converts the qcow2 image into a sparse raw file; the changes say so, test=True too."""
    _, image, reference = qcow2_guest(test_uri, tmp_path)
    dest = str(tmp_path / "newvm.img")
    predicted, real, again = apply_three_times(states, "moved", "newvm", disk="xvda", to=dest, format="raw")
    assert real["changes"] == {"xvda": {"old": image, "new": dest}, "xvda:format": {"old": "qcow2", "new": "raw"}}
    assert "converting qcow2 to raw" in predicted["comment"]
    assert "qcow2 converted to raw" in real["comment"] and "verified" in real["comment"]
    assert again["comment"] == f"xvda of newvm is already at {dest}"
    assert disk_sources(test_uri, "newvm")["xvda"] == dest and disk_formats(test_uri, "newvm")["xvda"] == "raw"
    assert same_image(reference, "raw", dest, "raw") and os.path.exists(image)


def test_moved_without_format_keeps_the_files_format(states, test_uri, tmp_path):
    _, image, _ = qcow2_guest(test_uri, tmp_path)
    dest = str(tmp_path / "elsewhere.qcow2")
    _, real, _ = apply_three_times(states, "moved", "newvm", disk="xvda", to=dest)
    assert real["changes"] == {"xvda": {"old": image, "new": dest}}  # a copy, no format key
    assert disk_formats(test_uri, "newvm")["xvda"] == "qcow2"


def test_moved_format_problems_are_named_before_anything_is_read(states, test_uri, tmp_path):
    qcow2_guest(test_uri, tmp_path)
    bad = run(states, "moved", "newvm", disk="xvda", to="relative.img", format="vmdk")
    assert bad["result"] is False and bad["changes"] == {}
    assert "to: expected an absolute path" in bad["comment"] and "format: expected raw or qcow2" in bad["comment"]
    onto_lv = run(states, "moved", "newvm", disk="xvda", to="/dev/vol0/lv_for_newvm", format="qcow2")
    assert onto_lv["result"] is False and "holds raw data, not qcow2" in onto_lv["comment"]
    in_place = run(states, "moved", "newvm", disk="xvda", to=str(tmp_path / "newvm.qcow2"), format="raw")
    assert in_place["result"] is False and "not converted in place" in in_place["comment"]
    assert disk_formats(test_uri, "newvm")["xvda"] == "qcow2"


@needs_loop
def test_moved_qcow2_into_block_device_converts_and_restarts(states, test_uri, tmp_path):
    """The tutorial's file -> LV move for a qcow2 image (a loop device stands in for the LV)."""
    _, image, _ = qcow2_guest(test_uri, tmp_path, running=True)
    backing = tmp_path / "lv_for_newvm"
    backing.write_bytes(b"")
    os.truncate(backing, 80 * MIB)
    with loop_device(backing) as dev:
        predicted, real, _ = apply_three_times(states, "moved", "newvm", disk="xvda", to=dev, shutdown=True)
        assert real["changes"] == {
            "xvda": {"old": image, "new": dev},
            "xvda:format": {"old": "qcow2", "new": "raw"},
            "restarted": {"old": "running", "new": "restarted"},
        }
        assert "converting qcow2 to raw" in predicted["comment"]
        assert disk_formats(test_uri, "newvm")["xvda"] == "raw"
        assert same_image(image, "qcow2", dev, "raw")
    assert connection.connect(test_uri).lookupByName("newvm").isActive()


def test_attached_refuses_a_missing_image(states, test_uri, tmp_path):
    _, root = define_guest(test_uri, tmp_path)
    missing = str(tmp_path / "nope.img")
    ret = run(states, "attached", missing, guest="newvm", target="xvdb")
    assert ret["result"] is False and "create it first" in ret["comment"]
    assert disk_sources(test_uri, "newvm") == {"xvda": root}


def test_check_entry_knows_the_guests_defined_here(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path)
    entry = {"path": str(tmp_path / "d.img"), "size": 10, "attach": {"guest": "newvm", "target": "xvdb"}}
    assert modules.xen_disk.check_entry("d", entry) == []
    ghost = modules.xen_disk.check_entry("d", dict(entry, attach="ghost"))
    assert ghost == ["xen:disks:d:attach:guest: no guest ghost is defined on this host"]
    assert not os.path.exists(entry["path"])  # checking makes nothing
