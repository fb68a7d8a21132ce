#!/usr/bin/env python3
"""Define and start N guests through the formula (salt/xen/guests/init.sls) and time it.

Prints, for each step: the time, and the libvirt calls per guest (total calls of
the run divided by N, so the two listings a state run makes for the whole host
count too). Steps on the same 100 guests:

  defined   first apply, then a no-op re-apply             (ensure: defined)
  running   first apply (starts them), then a no-op re-apply (ensure: running)
  pending   on_crash changed on every running guest: the apply writes it to the
            definitions, the re-apply changes nothing and reports it as pending

Runs on libvirt's test driver (tests/data/node.xml) through Salt's real loader
(``state.sls``, as a minion does), the same way the functional tests do; nothing
outside a temporary directory is written.

Salt's own floor is measured in the same process: one ``state.sls`` of as many
``test.succeed_without_changes`` states as there are guests. Each no-op re-apply
is printed beside it with the ratio.

    .venv/bin/python bench/guests_apply.py            # 100 guests, every step
    .venv/bin/python bench/guests_apply.py -n 100 -n 1000 --ensure running
    .venv/bin/python bench/guests_apply.py -n 100 -n 1000 --ensure running --json

Targets: a no-op re-apply within 2.5x Salt's floor for the same number of states,
at most 3 libvirt round trips per guest, and (with two or more -n) the cost per
guest at the largest count within 1.3x of that at the smallest.
"""

import argparse
import collections
import functools
import json
import pathlib
import sys
import tempfile
import time

import libvirt

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_utils"))
sys.path.insert(0, str(ROOT))

from saltext_xen.core import connection  # noqa: E402  (found through the sys.path lines above)

# Methods answered from the local handle, without a trip to libvirtd.
LOCAL = {"name", "UUID", "UUIDString", "ID", "connect", "c_pointer", "getURI"}
# The connection layer's keep-alive check (saltext_xen.core.connection.connect, once per
# state call): virConnectIsAlive is answered by the client library itself (the
# remote driver asks its socket, not libvirtd), so it is shown but not counted.
CONNECTION = {"virConnect.isAlive"}
CALLS = collections.Counter()


def count_calls():
    """Wrap every libvirt connection/domain method that goes to the daemon with a counter."""
    for cls in (libvirt.virConnect, libvirt.virDomain):
        for attr in dir(cls):
            if attr.startswith("_") or attr in LOCAL:
                continue
            func = getattr(cls, attr)
            if not callable(func):
                continue

            def wrapper(*args, __func=func, __name=f"{cls.__name__}.{attr}", **kwargs):
                CALLS[__name] += 1
                return __func(*args, **kwargs)

            setattr(cls, attr, functools.wraps(func)(wrapper))


def guests_pillar(n, images, ensure, on_crash="restart"):
    guests = {}
    for i in range(n):
        name = f"bench{i:03d}"
        guests[name] = {
            "ensure": ensure,
            "memory": 512,
            "maxmem": 1024,
            "vcpus": 2,
            "bootloader": "pygrub",
            "disks": [{"source": str(images / f"{name}.img"), "size": "8G"}],
            "nics": [{"bridge": "xenbr0", "script": "vif-bridge"}],
            "graphics": {"keymap": "en-us", "password": "s3cret"},
            "on_crash": on_crash,
        }
    return {"xen": {"guests": guests}}


def steps(ensure):
    """(label, ensure, on_crash) for each run, in order."""
    out = []
    if ensure in ("all", "defined"):
        out += [("defined: first apply", "defined", "restart"), ("defined: no-op re-apply", "defined", "restart")]
    if ensure in ("all", "running"):
        out += [("running: first apply", "running", "restart"), ("running: no-op re-apply", "running", "restart")]
    if ensure == "all":
        out += [("pending: apply", "running", "destroy"), ("pending: no-op re-apply", "running", "destroy")]
    if ensure == "stopped":
        out += [("stopped: first apply", "stopped", "restart"), ("stopped: no-op re-apply", "stopped", "restart")]
    return out


FLOOR_SLS = """{%- for i in range(pillar["count"]) %}
floor-{{ i }}:
  test.succeed_without_changes
{%- endfor %}
"""
FLOOR_RATIO = 2.5
SCALING_RATIO = 1.3
MAX_CALLS = 3


def minion_opts(tmp):
    import salt.config

    floor_root = tmp / "floor"
    floor_root.mkdir()
    (floor_root / "bench_floor.sls").write_text(FLOOR_SLS)
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "xen-bench",
            "file_client": "local",
            "cachedir": str(tmp / "cache"),
            "pki_dir": str(tmp / "pki"),
            "sock_dir": str(tmp / "sock"),
            "extension_modules": str(tmp / "extmods"),
            "module_dirs": [str(ROOT)],
            "utils_dirs": [str(ROOT / "_utils")],
            "file_roots": {"base": [str(ROOT / "salt"), str(floor_root)]},
            "xen": {"libvirt": {"uri": f"test://{ROOT / 'tests' / 'data' / 'node.xml'}"}},
            "log_level": "error",
        }
    )
    return opts


def salt_floor(loaders, count):
    """Seconds for one state.sls of ``count`` states that do nothing: Salt's own cost."""
    best = None
    for _ in range(2):
        started = time.perf_counter()
        ret = loaders.modules.state.sls("bench_floor", pillar={"count": count})
        elapsed = time.perf_counter() - started
        raw = getattr(ret, "raw", ret)
        assert len(raw) == count and all(r["result"] is True for r in raw.values()), raw
        best = elapsed if best is None else min(best, elapsed)
    return best


def measure(loaders, n, ensure, images):
    """Every step for ``n`` guests: (label, seconds, libvirt calls, detail, changed, pending, failed)."""
    runs = []
    for label, step_ensure, on_crash in steps(ensure):
        pillar = guests_pillar(n, images, step_ensure, on_crash)
        CALLS.clear()
        started = time.perf_counter()
        ret = loaders.modules.state.sls("xen.guests", pillar=pillar)
        elapsed = time.perf_counter() - started
        raw = getattr(ret, "raw", ret)
        failed = [r["comment"] for r in raw.values() if r["result"] is not True]
        changed = sum(1 for r in raw.values() if r["changes"])
        pending = sum(1 for r in raw.values() if "wait" in r["comment"] and "restart" in r["comment"])
        guest_calls = sum(v for k, v in CALLS.items() if k not in CONNECTION)
        runs.append((label, elapsed, guest_calls, dict(CALLS), changed, pending, failed))
    return runs


def rows_for(n, runs, floor):
    """The bench table's rows for one guest count."""
    rows = []
    for label, elapsed, calls, _detail, changed, _pending, failed in runs:
        if "no-op" not in label:
            continue
        rows.append(
            {
                "measure": f"{label}, {n} guests",
                "figure": f"{elapsed:.2f} s",
                "floor": f"{floor:.2f} s (Salt, {n} states)",
                "ratio": elapsed / floor,
                "target": f"<= {FLOOR_RATIO}x floor, 0 changed",
                "met": elapsed <= FLOOR_RATIO * floor and changed == 0 and not failed,
            }
        )
        rows.append(
            {
                "measure": f"{label}, {n} guests: libvirt calls per guest",
                "figure": f"{calls / n:g}",
                "floor": "",
                "ratio": None,
                "target": f"<= {MAX_CALLS}",
                "met": calls / n <= MAX_CALLS,
            }
        )
    return rows


def scaling_rows(per_guest):
    """Cost per guest at the largest count against the smallest, for every no-op step."""
    counts = sorted(per_guest)
    if len(counts) < 2:
        return []
    low, high = counts[0], counts[-1]
    rows = []
    for label, high_cost in per_guest[high].items():
        low_cost = per_guest[low][label]
        rows.append(
            {
                "measure": f"{label}: per guest at {high} vs {low} guests",
                "figure": f"{high_cost * 1000:.2f} ms",
                "floor": f"{low_cost * 1000:.2f} ms",
                "ratio": high_cost / low_cost,
                "target": f"<= {SCALING_RATIO}x",
                "met": high_cost <= SCALING_RATIO * low_cost,
            }
        )
    return rows


def print_runs(n, runs, floor):
    print(f"{n} guests, libvirt test driver; Salt's floor for {n} states: {floor:.2f} s")
    for label, elapsed, calls, detail, changed, pending, failed in runs:
        print(
            f"  {label:24s} {elapsed:6.2f} s  {calls / n:5.2f} libvirt calls/guest  "
            f"{changed} changed  {pending} pending  {len(failed)} failed"
        )
        print("      " + ", ".join(f"{k.split('.', 1)[1]}={v / n:g}" for k, v in sorted(detail.items())))
        for comment in failed[:3]:
            print(f"      failed: {comment}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, action="append", help="number of guests (100); repeat for several")
    parser.add_argument("--ensure", default="all", choices=("all", "defined", "running", "stopped"))
    parser.add_argument("--json", action="store_true", help="print the bench table's rows as JSON only")
    args = parser.parse_args()
    counts = args.n or [100]

    from saltfactories.utils.functional import Loaders

    rows, per_guest, any_failed = [], {}, False
    with tempfile.TemporaryDirectory(prefix="xen-bench-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
        loaders = Loaders(minion_opts(tmp))
        count_calls()
        for n in counts:
            images = tmp / f"images-{n}"
            images.mkdir()
            runs = measure(loaders, n, args.ensure, images)
            floor = salt_floor(loaders, n)
            # every count starts again from the seed: the next count's guests are all new
            connection.forget()
            if not args.json:
                print_runs(n, runs, floor)
            rows += rows_for(n, runs, floor)
            per_guest[n] = {label: elapsed / n for label, elapsed, *_ in runs if "no-op" in label}
            any_failed = any_failed or any(run[6] for run in runs)
        loaders.reset_state()
    rows += scaling_rows(per_guest)
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
            print(
                f"  target, {row['measure']}: {row['figure']} (floor {row['floor'] or '-'}, {ratio}); "
                f"{row['target']} -> {'met' if row['met'] else 'missed'}"
            )
    return 1 if any_failed or not all(row["met"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
