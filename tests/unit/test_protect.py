"""Data protection: what counts as data, refusals, whole-file writes and leftovers of killed runs."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from saltext_xen.core import commands, protect, validate

MIB = 1024 * 1024
UTILS = pathlib.Path(__file__).resolve().parents[2] / "_utils"

needs_loop = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("losetup") and os.path.exists("/dev/loop-control")),
    reason="needs root and loop devices (losetup, /dev/loop-control)",
)
needs_mkfs = pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None, reason="mkfs.ext4 (Debian package e2fsprogs) is not installed"
)


def sparse(path, size, chunks=None):
    """A sparse file of ``size`` bytes with ``{offset: bytes}`` written into it."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, data in (chunks or {}).items():
            fh.seek(offset)
            fh.write(data)
    return str(path)


def mkfs_ext4(target):
    subprocess.run(["mkfs.ext4", "-q", "-F", str(target)], check=True, capture_output=True)


def no_tools(argv):
    """A runner on a host without wipefs and blkid."""
    return {"retcode": 127, "stdout": "", "stderr": f"{argv[0]}: command not found"}


def only_blkid(argv):
    """A host without wipefs: blkid -p answers alone."""
    return no_tools(argv) if argv[0] == "wipefs" else commands.run_local(argv)


# ---------------------------------------------------------------- what holds data


def test_nothing_there_holds_no_data(tmp_path):
    assert protect.holds_data(str(tmp_path / "none.img")) is None


def test_a_fresh_two_terabyte_sparse_file_holds_no_data_and_is_judged_fast(tmp_path):
    path = sparse(tmp_path / "new.img", 2 * 1000**4)
    start = time.perf_counter()
    assert protect.holds_data(path) is None
    assert time.perf_counter() - start < 1.0


def test_an_empty_file_holds_no_data(tmp_path):
    assert protect.holds_data(sparse(tmp_path / "empty.img", 0)) is None


def test_a_byte_in_the_first_mib_is_data(tmp_path):
    path = sparse(tmp_path / "a.img", 64 * MIB, {MIB - 1: b"\x01"})
    assert protect.holds_data(path) == "non-zero bytes in its first MiB"


def test_a_byte_in_the_last_mib_of_a_huge_sparse_file_is_data(tmp_path):
    size = 2 * 1000**4
    path = sparse(tmp_path / "b.img", size, {size - MIB: b"backup gpt"})
    start = time.perf_counter()
    assert protect.holds_data(path) == "non-zero bytes in its last MiB"
    assert time.perf_counter() - start < 1.0


def test_only_the_first_and_last_mib_are_read(tmp_path):
    path = sparse(tmp_path / "c.img", 64 * MIB, {32 * MIB: b"middle"})
    assert protect.holds_data(path) is None


def test_a_small_file_with_text_is_data(tmp_path):
    path = tmp_path / "notes"
    path.write_text("keep me\n")
    assert protect.holds_data(str(path)) == "non-zero bytes in its first MiB"


@needs_mkfs
def test_a_filesystem_is_named_by_its_signature(tmp_path):
    path = sparse(tmp_path / "fs.img", 64 * MIB)
    mkfs_ext4(path)
    assert protect.signatures(path) == ["ext4"]
    assert protect.holds_data(path) == "ext4 signature"


@needs_mkfs
def test_blkid_answers_when_wipefs_is_missing(tmp_path):
    path = sparse(tmp_path / "fs.img", 64 * MIB)
    assert protect.signatures(path, run=only_blkid) == []
    mkfs_ext4(path)
    assert protect.holds_data(path, run=only_blkid) == "ext4 signature"


@needs_mkfs
def test_without_any_tool_the_bytes_still_tell(tmp_path):
    path = sparse(tmp_path / "fs.img", 64 * MIB)
    mkfs_ext4(path)
    assert protect.signatures(path, run=no_tools) is None
    assert protect.holds_data(path, run=no_tools) == "non-zero bytes in its first MiB"


def test_a_directory_is_never_written_over(tmp_path):
    with pytest.raises(protect.WouldLoseData, match="neither a regular file nor a block device"):
        protect.holds_data(str(tmp_path))


@needs_loop
def test_a_block_device_is_judged_like_a_file(tmp_path):
    backing = sparse(tmp_path / "backing.img", 64 * MIB)
    dev = subprocess.run(
        ["losetup", "--find", "--show", backing], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        assert protect.holds_data(dev) is None
        fd = os.open(dev, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\x07" * 512, 64 * MIB - 512)
            os.fsync(fd)
        finally:
            os.close(fd)
        assert protect.holds_data(dev) == "non-zero bytes in its last MiB"
        if shutil.which("mkfs.ext4"):
            mkfs_ext4(dev)
            assert protect.holds_data(dev) == "ext4 signature"
        # a guest using the device by another name (a /dev/mapper or by-id style link) is found
        link = tmp_path / "by-id-disk"
        link.symlink_to(dev)
        assert protect.used_by(dev, {str(link): "vm02"}) == ["vm02"]
        with pytest.raises(protect.WouldLoseData, match=f"^{dev} is a disk of vm02"):
            protect.refuse_overwrite(dev, {str(link): "vm02"}, force=True)
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


# ---------------------------------------------------------------- in use, and the one gate


def test_used_by_sees_the_same_disk_under_other_names(tmp_path):
    image = sparse(tmp_path / "vm02.img", MIB)
    link = tmp_path / "link.img"
    link.symlink_to(image)
    hard = tmp_path / "hard.img"
    os.link(image, hard)
    assert protect.used_by(image, {str(link): "vm02"}) == ["vm02"]
    assert protect.used_by(str(hard), {image: ["vm03", "vm02"]}) == ["vm02", "vm03"]
    assert protect.used_by(image, {image}) == ["a defined guest"]
    assert protect.used_by(image, {str(tmp_path / "other.img"): "vm02"}) == []
    assert protect.used_by(image, ()) == []
    assert protect.used_by(str(tmp_path / "gone.img"), [str(tmp_path / "x" / ".." / "gone.img")]) == ["a defined guest"]


def test_a_disk_a_guest_uses_is_refused_even_with_force(tmp_path):
    image = sparse(tmp_path / "vm03.img", MIB)
    for force in (False, True):
        with pytest.raises(protect.WouldLoseData) as err:
            protect.refuse_overwrite(image, {image: "vm03"}, force=force)
        assert str(err.value) == (
            f"{image} is a disk of vm03; detach it or undefine the guest first "
            "(force does not write over a disk a guest uses)"
        )


@needs_mkfs
def test_data_is_written_over_only_with_force(tmp_path):
    image = sparse(tmp_path / "x.img", 64 * MIB)
    mkfs_ext4(image)
    with pytest.raises(protect.WouldLoseData) as err:
        protect.refuse_overwrite(image)
    assert str(err.value) == f"{image} holds data (ext4 signature); say force: true to write over it"
    assert protect.overwrite_problem(image) == str(err.value)
    assert protect.refuse_overwrite(image, force=True) == "ext4 signature"
    assert protect.overwrite_problem(image, force=True) is None


def test_empty_or_missing_targets_pass_the_gate(tmp_path):
    assert protect.refuse_overwrite(sparse(tmp_path / "empty.img", 8 * MIB)) is None
    assert protect.refuse_overwrite(str(tmp_path / "missing.img")) is None


def test_relative_paths_are_refused_before_anything_is_read(tmp_path):
    with pytest.raises(validate.InvalidSpec, match="expected an absolute path"):
        protect.refuse_overwrite("vm02.img")
    with pytest.raises(validate.InvalidSpec, match=r"'\.\.' components"):
        protect.absolute(f"{tmp_path}/../etc")
    assert protect.absolute("//srv//xen/") == "/srv/xen"


# ---------------------------------------------------------------- whole-file writes


def test_a_whole_file_write_puts_the_file_in_place_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "vm02.cfg"
    with protect.whole_file(str(target), text=True) as out:
        assert out.path == str(tmp_path / f".vm02.cfg.saltext-xen-partial-{os.getpid()}")
        out.write("name = 'vm02'\n")
        assert not target.exists()
    assert target.read_text() == "name = 'vm02'\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["vm02.cfg"]


def test_an_existing_file_is_replaced_only_when_the_call_says_so(tmp_path):
    target = tmp_path / "vm02"
    target.write_text("old\n")
    target.chmod(0o644)
    with pytest.raises(protect.WouldLoseData, match="already exists and this write does not replace it"):
        protect.write_whole(str(target), "new\n")
    assert target.read_text() == "old\n"
    protect.write_whole(str(target), "new\n", overwrite=True)
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"  # the mode is kept
    protect.write_whole(str(target), b"newer\n", overwrite=True, mode=0o640)
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert os.listdir(tmp_path) == ["vm02"]


def test_an_error_inside_the_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "vm02"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), protect.whole_file(str(target), overwrite=True) as out:
        out.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["vm02"]


def test_a_failed_check_stops_the_write(tmp_path):
    target = tmp_path / "vm02"
    target.write_text("old\n")
    seen = []

    def verify(path):
        seen.append(pathlib.Path(path).read_bytes())
        return False

    with pytest.raises(protect.VerifyFailed, match="did not pass its check; nothing was replaced"):
        protect.write_whole(str(target), b"bad\n", overwrite=True, verify=verify)
    assert seen == [b"bad\n"]  # the check read the flushed temporary
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["vm02"]


def test_a_tool_may_write_the_temporary_itself(tmp_path):
    target = tmp_path / "copy.img"
    with protect.whole_file(str(target)) as out:
        out.file.close()
        subprocess.run(["truncate", "-s", "8M", out.path], check=True)
    assert target.stat().st_size == 8 * MIB
    assert os.listdir(tmp_path) == ["copy.img"]


def test_a_target_that_appears_meanwhile_is_not_replaced(tmp_path):
    target = tmp_path / "new.img"
    with (
        pytest.raises(protect.WouldLoseData, match="appeared while it was being written"),
        protect.whole_file(str(target)) as out,
    ):
        out.write(b"mine")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["new.img"]


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(protect.WouldLoseData, match="does not exist"):
        protect.write_whole(str(tmp_path / "nope" / "vm02"), "x")


def test_two_writes_of_one_target_in_one_process_get_their_own_temporaries(tmp_path):
    target = str(tmp_path / "vm02")
    with protect.whole_file(target, overwrite=True) as first, protect.whole_file(target, overwrite=True) as second:
        assert first.path != second.path
        assert second.path.endswith(f"-{os.getpid()}-1")
        first.write(b"1")
        second.write(b"2")
    assert pathlib.Path(target).read_bytes() == b"1"  # the outer block finished last
    assert os.listdir(tmp_path) == ["vm02"]


# ---------------------------------------------------------------- leftovers of killed runs

WRITER = textwrap.dedent(
    """
    import sys, time
    from saltext_xen.core import protect
    with protect.whole_file(sys.argv[1]) as out:
        out.write(b"x" * (4 * 1024 * 1024))
        out.file.flush()
        print("writing", flush=True)
        time.sleep(120)
    """
)


def test_a_killed_write_leaves_only_its_temporary_and_the_next_run_cleans_it(tmp_path):
    target = tmp_path / "newvm.img"
    env = dict(os.environ, PYTHONPATH=str(UTILS))
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        partial = str(tmp_path / f".newvm.img.saltext-xen-partial-{child.pid}")
        # while the writer runs its temporary is not a leftover, and cleaning keeps it
        assert protect.leftovers(str(tmp_path)) == []
        assert protect.clean_leftovers(str(target)) == {
            "removed": [],
            "kept": [{"path": partial, "reason": f"process {child.pid} still runs; its write may be in progress"}],
        }
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert not target.exists()
    found = protect.leftovers(str(target))
    assert found == [{"path": partial, "target": str(target), "pid": child.pid, "size": 4 * MIB, "running": False}]
    assert protect.leftovers(str(tmp_path)) == found
    assert protect.clean_leftovers(str(tmp_path)) == {"removed": [partial], "kept": []}
    assert os.listdir(tmp_path) == []


def test_a_killed_but_unreaped_writer_counts_as_gone(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert protect.running(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while protect.running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not protect.running(child.pid)  # a zombie until reaped
    finally:
        child.kill()
        child.wait()


def test_leftovers_are_told_apart_by_target_and_other_files_are_ignored(tmp_path):
    gone = 2**22 + 12345  # above pid_max's usual default: no such process
    if protect.running(gone):
        pytest.skip(f"process {gone} exists on this host")
    (tmp_path / "vm02.img").write_bytes(b"real")
    (tmp_path / f".vm02.img.saltext-xen-partial-{gone}").write_bytes(b"half")
    (tmp_path / f".vm02.img.saltext-xen-partial-{gone}-2").write_bytes(b"half")
    (tmp_path / f"..hidden.saltext-xen-partial-{gone}").write_bytes(b"")
    (tmp_path / ".vm03.img.saltext-xen-partial-notapid").write_bytes(b"")
    (tmp_path / "vm02.img.saltext-xen-partial-1").write_bytes(b"")
    (tmp_path / f".dir.saltext-xen-partial-{gone}").mkdir()
    assert [(x["target"], x["size"]) for x in protect.leftovers(str(tmp_path / "vm02.img"))] == [
        (str(tmp_path / "vm02.img"), 4),
        (str(tmp_path / "vm02.img"), 4),
    ]
    assert [x["target"] for x in protect.leftovers(str(tmp_path / ".hidden"))] == [str(tmp_path / ".hidden")]
    report = protect.clean_leftovers(str(tmp_path))
    assert len(report["removed"]) == 3 and report["kept"] == []
    assert sorted(os.listdir(tmp_path)) == sorted(
        [
            "vm02.img",
            ".vm03.img.saltext-xen-partial-notapid",
            "vm02.img.saltext-xen-partial-1",
            f".dir.saltext-xen-partial-{gone}",
        ]
    )
    assert protect.leftovers(str(tmp_path / "no-such-dir" / "x")) == []
