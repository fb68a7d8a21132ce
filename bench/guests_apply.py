#!/usr/bin/env python3
"""Define N guests through the formula (salt/xen/guests.sls) and time it.

Prints: first apply time, no-op re-apply time, and libvirt round trips per guest
for each run. Runs on libvirt's test driver (tests/data/node.xml) through Salt's
real loader, the same way the functional tests do; nothing outside a temporary
directory is written.

    .venv/bin/python bench/guests_apply.py            # 100 guests, ensure: defined
    .venv/bin/python bench/guests_apply.py -n 50 --ensure running

Targets (issue 4): no-op re-apply of 100 guests under 5 s, at most 3 libvirt
round trips per guest.
"""
import argparse
import collections
import functools
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_utils"))
sys.path.insert(0, str(ROOT))

import libvirt  # noqa: E402

# Methods answered from the local handle, without a trip to libvirtd.
LOCAL = {"name", "UUID", "UUIDString", "ID", "connect", "c_pointer", "getURI"}
# The connection layer's keep-alive check (saltext_xen.connection.connect, once per
# state call): counted and shown, but apart from the guest's own reads.
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


def guests_pillar(n, images, ensure):
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
        }
    return {"xen": {"guests": guests}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="number of guests (100)")
    parser.add_argument("--ensure", default="defined", choices=("defined", "running", "stopped"))
    args = parser.parse_args()

    import salt.config  # noqa: PLC0415
    from saltfactories.utils.functional import Loaders  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="xen-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        images = tmp / "images"
        images.mkdir()
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
                "file_roots": {"base": [str(ROOT / "salt")]},
                "xen": {"libvirt": {"uri": f"test://{ROOT / 'tests' / 'data' / 'node.xml'}"}},
                "log_level": "error",
            }
        )
        loaders = Loaders(opts)
        pillar = guests_pillar(args.n, images, args.ensure)
        count_calls()
        runs = []
        for label in ("first apply", "no-op re-apply"):
            CALLS.clear()
            started = time.perf_counter()
            ret = loaders.modules.state.sls("xen.guests", pillar=pillar)
            elapsed = time.perf_counter() - started
            raw = getattr(ret, "raw", ret)
            failed = [r["comment"] for r in raw.values() if r["result"] is not True]
            changed = sum(1 for r in raw.values() if r["changes"])
            guest_calls = sum(v for k, v in CALLS.items() if k not in CONNECTION)
            runs.append((label, elapsed, guest_calls, dict(CALLS), changed, failed))
        loaders.reset_state()

    print(f"{args.n} guests, ensure: {args.ensure}, libvirt test driver")
    for label, elapsed, calls, detail, changed, failed in runs:
        print(f"  {label:15s} {elapsed:7.2f} s  {calls / args.n:5.2f} libvirt calls/guest (+ keep-alive)  "
              f"{changed} guests changed  {len(failed)} failed")
        print("      " + ", ".join(f"{k.split('.', 1)[1]}={v / args.n:g}" for k, v in sorted(detail.items())))
        for comment in failed[:3]:
            print(f"      failed: {comment}")
    noop = runs[1]
    print(f"  target: no-op of 100 guests < 5 s -> {'met' if noop[1] * 100 / args.n < 5 else 'NOT met'}; "
          f"<= 3 libvirt calls/guest -> {'met' if noop[2] / args.n <= 3 else 'NOT met'} "
          f"({noop[2] / args.n:g} including the lookup by name)")
    return 1 if any(run[5] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
