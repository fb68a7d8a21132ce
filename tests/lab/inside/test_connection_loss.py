"""libvirt's connection lost in the middle of an apply, on real Xen: libvirtd is killed
(SIGKILL) while ``state.apply xen.guests`` defines ten guests, and started again.

What must hold: the interrupted apply returns plain errors (no traceback) for what it
could not do, no guest is left half-made, and the next apply converges, the one after
it changing nothing. Guests are only defined (``ensure: defined``), so nothing boots.
"""

import subprocess
import threading
import time

import libvirt
import pytest
from labhelpers import GUEST_INITRD, GUEST_KERNEL, URI, remove_guest, wait_for

NAMES = [f"labcut{i}" for i in range(10)]
LIBXL_CONFIGS = "/etc/libvirt/libxl"


def pillar():
    guest = {
        "ensure": "defined",
        "type": "pv",
        "memory": 96,
        "vcpus": 1,
        "kernel": GUEST_KERNEL,
        "ramdisk": GUEST_INITRD,
        "cmdline": "console=hvc0 quiet",
    }
    return {"xen": {"guests": {name: dict(guest) for name in NAMES}}}


def libvirtd_answers():
    try:
        probe = libvirt.open(URI)
    except libvirt.libvirtError:
        return False
    probe.close()
    return True


@pytest.fixture
def cleanup():
    yield
    subprocess.run(["systemctl", "start", "libvirtd.service"], check=False)
    wait_for(libvirtd_answers, timeout=120, what="libvirtd to answer again")
    conn = libvirt.open(URI)
    try:
        for name in NAMES:
            remove_guest(conn, name)
    finally:
        conn.close()


def kill_libvirtd_when_defined(name, done):
    """Kill libvirtd as soon as ``name``'s definition is on disk, start it 2 s later."""
    path = f"{LIBXL_CONFIGS}/{name}.xml"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if subprocess.run(["test", "-e", path], check=False).returncode == 0:
            break
        time.sleep(0.05)
    else:
        return
    done["killed"] = time.monotonic()
    subprocess.run(["systemctl", "kill", "--signal=KILL", "libvirtd.service"], check=False)
    time.sleep(2)
    subprocess.run(["systemctl", "start", "libvirtd.service"], check=False)
    done["started"] = time.monotonic()


def test_an_apply_that_loses_libvirtd_converges_on_the_next_run(caller, cleanup):
    done = {}
    killer = threading.Thread(target=kill_libvirtd_when_defined, args=(NAMES[1], done), daemon=True)
    killer.start()
    cut = caller.cmd("state.apply", "xen.guests", pillar=pillar())
    returned = time.monotonic()
    killer.join(timeout=120)

    assert "killed" in done, f"{NAMES[1]} was never defined, so libvirtd was not killed: {cut}"
    assert done["killed"] < returned, "libvirtd was killed only after the apply had finished"
    assert isinstance(cut, dict), f"the interrupted apply returned no state results: {cut}"
    for sid, result in cut.items():
        assert "Traceback" not in result["comment"], f"{sid}: {result['comment']}"
        if result["result"] is False:
            assert result["comment"].strip(), f"{sid} failed without saying why"

    wait_for(libvirtd_answers, timeout=120, what="libvirtd to answer after its restart")
    again = caller.cmd("state.apply", "xen.guests", pillar=pillar())
    failed = {sid: r["comment"] for sid, r in again.items() if r["result"] is not True}
    assert not failed, f"the apply after the restart did not converge: {failed}"

    conn = libvirt.open(URI)
    try:
        for name in NAMES:
            dom = conn.lookupByName(name)
            assert dom.isPersistent() and not dom.isActive(), name
            assert dom.maxMemory() == 96 * 1024, f"{name}: {dom.maxMemory()} KiB"
    finally:
        conn.close()

    final = caller.cmd("state.apply", "xen.guests", pillar=pillar())
    assert not any(r["changes"] for r in final.values()), "a third apply changes nothing"
