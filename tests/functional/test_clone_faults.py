"""A whole ``xen_guest.clone`` killed with ``kill -9`` while its disk copy runs, in a real Salt process.

The child is Salt's own ``salt-call`` machinery (``salt.client.Caller``) with this checkout's
modules, on a libvirt test-driver host read from a node file whose source guest has a real
image holding data. A logging handler in the child waits at the clone's first progress line,
so the kill lands mid-copy every time; nothing of the clone itself is replaced. After the kill:
the source is intact (same hash), nothing sits under the target's final name, the leftover is
recognised; the next apply (another process, the ``xen_guest.cloned`` state) predicts cleaning
it, converges and says what it cleaned up.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from saltext_xen.core import connection, protect
from saltext_xen.disks import disk_copy, disk_image
from saltext_xen.guests import clone
from tests.conftest import ROOT
from tests.functional.disk_helpers import GUEST, MIB, kill_once_copying, loop_device

SIZE = 256 * MIB
DATA = 64 * MIB

needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices (losetup)"
)

CHILD = textwrap.dedent(
    """
    import json, logging, os, sys, time
    import salt.client, salt.config

    uri, root, work, mode, disks = sys.argv[1:6]

    class Hold(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("cloning vm05 xvda"):
                print("copying", flush=True)
                time.sleep(600)

    opts = salt.config.minion_config(None)
    opts.update(
        id="xen-clone-fault",
        file_client="local",
        cachedir=os.path.join(work, "cache"),
        pki_dir=os.path.join(work, "pki"),
        sock_dir=os.path.join(work, "sock"),
        extension_modules=os.path.join(work, "extmods"),
        module_dirs=[root],
        file_roots={"base": [os.path.join(root, "salt")]},
        xen={"libvirt": {"uri": uri}},
    )
    caller = salt.client.Caller(mopts=opts)
    disks = json.loads(disks)
    if mode == "hold":
        library = logging.getLogger("saltext_xen")
        library.setLevel(logging.INFO)
        library.addHandler(Hold())
        caller.cmd("xen_guest.clone", "vm05", "newvm05", disks=disks)
        print("finished", flush=True)
    else:
        runs = [
            caller.cmd("state.single", "xen_guest.cloned", "newvm05", source="vm05", disks=disks,
                       pillar_path="xen:clones:newvm05", test=test)
            for test in (True, False)
        ]
        print(json.dumps([list(run.values())[0] for run in runs]), flush=True)
    """
)

NODE = """<?xml version="1.0"?>
<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>4</cores>
  <threads>1</threads><active>4</active></cpu>
  <memory>8388608</memory>
  {domain}
</node>
"""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def host_with_vm05(tmp_path):
    """A test-driver host file whose shut-off vm05 has a sparse image with data at both ends; (uri, image)."""
    image = str(tmp_path / "vm05.img")
    disk_image.create(image, SIZE)
    with open(image, "r+b") as fh:
        fh.write(os.urandom(DATA // 2))
        fh.seek(SIZE - DATA // 2)
        fh.write(os.urandom(DATA // 2))
    domain = GUEST.format(name="vm05", uuid="2aa1fae5-8550-affd-866f-27a9d6977d16", disk=image)
    domain = domain.replace(
        '<domain type="xen">', '<domain type="xen" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">'
    ).replace("<uuid>", "<test:runstate>5</test:runstate>\n  <uuid>", 1)
    node = tmp_path / "node.xml"
    node.write_text(NODE.format(domain=domain))
    return f"test://{node}", image


def child(tmp_path, uri, mode, disks):
    """Start the Salt child process; its Popen, stdout and stderr piped."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "_utils"), str(ROOT)]))
    work = tmp_path / f"minion-{mode}"
    work.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", CHILD, uri, str(ROOT), str(work), mode, json.dumps(disks)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def kill_mid_clone(tmp_path, uri, disks):
    with child(tmp_path, uri, "hold", disks) as proc:
        kill_once_copying(proc, 180)


def apply_again(tmp_path, uri, disks):
    """``xen_guest.cloned`` with test=True, then for real, in a new process: both returns."""
    with child(tmp_path, uri, "apply", disks) as proc:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_killed_clone_into_a_file_leaves_only_a_temporary_and_the_next_apply_cleans_it(tmp_path):
    uri, image = host_with_vm05(tmp_path)
    before = sha256(image)
    dest = str(tmp_path / "newvm05.img")
    kill_mid_clone(tmp_path, uri, {"xvda": dest})

    assert sha256(image) == before
    assert not os.path.lexists(dest)
    left = protect.leftovers(dest)
    assert len(left) == 1 and not left[0]["running"] and left[0]["size"] == SIZE  # the half-written copy
    assert disk_copy.is_partial(dest)
    step = clone.plan(connection.connect(uri), "vm05", "newvm05", disks={"xvda": dest})
    assert step["disks"][0]["leftovers"] == [left[0]["path"]]

    predicted, applied = apply_again(tmp_path, uri, {"xvda": dest})
    assert predicted["result"] is None
    assert f"what a killed run left is cleaned up first: {left[0]['path']}" in predicted["comment"]
    assert applied["result"] is True, applied["comment"]
    assert applied["changes"] == predicted["changes"]
    assert f"what a killed run left was cleaned up: {left[0]['path']}" in applied["comment"]
    assert not os.path.exists(left[0]["path"]) and protect.leftovers(str(tmp_path)) == []
    disk_copy.verify(image, dest)
    assert sha256(image) == before


@pytest.fixture
def killed_onto_device(tmp_path):
    """vm05's clone killed while copying onto a loop device: (uri, image, its hash before, device)."""
    uri, image = host_with_vm05(tmp_path)
    before = sha256(image)
    backing = tmp_path / "disk"
    disk_image.create(str(backing), SIZE + 16 * MIB)
    with loop_device(backing) as dev:
        kill_mid_clone(tmp_path, uri, {"xvda": dev})
        yield uri, image, before, dev


@needs_loop
def test_killed_clone_onto_a_plain_device_is_recognised_and_the_next_apply_needs_no_force(tmp_path, killed_onto_device):
    uri, image, before, dev = killed_onto_device
    assert sha256(image) == before
    assert disk_copy.is_partial(dev) and protect.holds_data(dev)  # the copy's bytes, known as its own

    predicted, applied = apply_again(tmp_path, uri, {"xvda": dev})
    assert predicted["result"] is None and f"cleaned up first: {dev}" in predicted["comment"], predicted
    assert applied["result"] is True, applied["comment"]
    assert f"what a killed run left was cleaned up: {dev}" in applied["comment"]
    assert not disk_copy.is_partial(dev)
    disk_copy.verify(image, dev, size=SIZE)
    assert sha256(image) == before


@needs_loop
def test_a_device_written_to_after_a_killed_clone_is_data_again(tmp_path, killed_onto_device):
    uri, image, before, dev = killed_onto_device
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)  # someone else's data now
    predicted, applied = apply_again(tmp_path, uri, {"xvda": dev})
    for ret in (predicted, applied):
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith("xen:clones:newvm05: cannot clone vm05 to newvm05: disks:xvda:"), ret
        assert "already holds ext4; it is not overwritten unless force=True" in ret["comment"]
    assert sha256(image) == before
