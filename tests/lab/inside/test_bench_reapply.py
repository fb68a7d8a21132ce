"""Bench on real Xen: a no-op re-apply of 10 running PV guests beside the raw libvirt floor.

The formula (``state.apply xen.guests``) runs in the lab's one ``salt.client.Caller``;
the floor is what any tool must pay to see the same guests: one ``listAllDomains``
and one ``XMLDesc`` per guest, measured in the same dom0 run. Two figures per guest go
to the lab's summary beside the floor: the guest states' own time (their ``duration``)
and the whole apply (with Salt rendering the SLS, which under TCG dominates). The
target is 4x the floor for the states' own time; the figure line says met or missed.
"""

import time

import libvirt
import pytest
from labhelpers import GUEST_INITRD, GUEST_KERNEL, URI, figure, remove_guest

COUNT = 10
NAMES = [f"labbench{i}" for i in range(COUNT)]
MAX_RATIO = 4.0


def pillar():
    guest = {
        "type": "pv",
        "memory": 128,
        "vcpus": 1,
        "kernel": GUEST_KERNEL,
        "ramdisk": GUEST_INITRD,
        "cmdline": "console=hvc0 quiet",
        "on_crash": "destroy",
    }
    return {"xen": {"guests": {name: dict(guest) for name in NAMES}}}


@pytest.fixture(scope="module")
def guests(conn):
    for name in NAMES:
        remove_guest(conn, name)
    yield NAMES
    for name in NAMES:
        remove_guest(conn, name)


def best_of(runs, func):
    best = None
    for _ in range(runs):
        started = time.perf_counter()
        func()
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def test_noop_reapply_per_guest_beside_the_raw_libvirt_floor(caller, guests):
    first = caller.cmd("state.apply", "xen.guests", pillar=pillar())
    assert isinstance(first, dict) and all(r["result"] is True for r in first.values()), first
    again = caller.cmd("state.apply", "xen.guests", pillar=pillar())
    assert not any(r["changes"] for r in again.values()), "the second apply changes nothing"

    runs = []
    for _ in range(3):
        started = time.perf_counter()
        ret = caller.cmd("state.apply", "xen.guests", pillar=pillar())
        runs.append((time.perf_counter() - started, sum(r["duration"] for r in ret.values()) / 1000))
    whole, states = min(runs)

    raw = libvirt.open(URI)
    try:

        def floor_pass():
            for dom in raw.listAllDomains():
                if dom.name() in NAMES:
                    dom.XMLDesc(0)

        floor = best_of(3, floor_pass) / COUNT
    finally:
        raw.close()

    per_state, per_apply = states / COUNT, whole / COUNT
    ratio = per_state / floor
    figure(
        f"no-op re-apply of {COUNT} running PV guests: the guest states {per_state * 1000:.1f} ms per guest, "
        f"{ratio:.2f}x the raw libvirt floor (listAllDomains + XMLDesc, {floor * 1000:.1f} ms per guest): "
        f"{'met' if ratio <= MAX_RATIO else 'MISSED'} (target <= {MAX_RATIO}x); the whole state.apply "
        f"{per_apply * 1000:.1f} ms per guest ({per_apply / floor:.1f}x)"
    )
    assert not any(r["changes"] for r in ret.values()), "a no-op re-apply changes nothing"
