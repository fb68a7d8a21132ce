#!/usr/bin/env python3
"""Define and start N guests through the formula (salt/xen/guests.sls) and time it.

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

    .venv/bin/python bench/guests_apply.py            # 100 guests, every step
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="number of guests (100)")
    parser.add_argument("--ensure", default="all", choices=("all", "defined", "running", "stopped"))
    args = parser.parse_args()

    import salt.config
    from saltfactories.utils.functional import Loaders

    runs = []
    with tempfile.TemporaryDirectory(prefix="xen-bench-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
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
        count_calls()
        for label, ensure, on_crash in steps(args.ensure):
            pillar = guests_pillar(args.n, images, ensure, on_crash)
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
        loaders.reset_state()

    print(f"{args.n} guests, libvirt test driver")
    for label, elapsed, calls, detail, changed, pending, failed in runs:
        print(
            f"  {label:24s} {elapsed:6.2f} s  {calls / args.n:5.2f} libvirt calls/guest  "
            f"{changed} changed  {pending} pending  {len(failed)} failed"
        )
        print("      " + ", ".join(f"{k.split('.', 1)[1]}={v / args.n:g}" for k, v in sorted(detail.items())))
        for comment in failed[:3]:
            print(f"      failed: {comment}")
    ok = True
    for label, elapsed, calls, _detail, changed, _pending, _failed in runs:
        if "no-op" not in label:
            continue
        fast = elapsed * 100 / args.n < 5
        few = calls / args.n <= 3
        ok = ok and fast and few and changed == 0
        print(
            f"  target, {label}: 100 guests < 5 s -> {'met' if fast else 'NOT met'} ({elapsed * 100 / args.n:.2f} s); "
            f"<= 3 libvirt calls/guest -> {'met' if few else 'NOT met'} ({calls / args.n:g}, isAlive not counted); "
            f"{changed} changed"
        )
    return 1 if any(run[6] for run in runs) or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
