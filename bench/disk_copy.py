#!/usr/bin/env python3
"""Benchmark: clone a 10 GiB sparse guest image holding 1 GiB of data.

Compares saltext_xen.disks.disk_copy.copy (verified) with the tutorial's
``dd if=SRC of=DST`` and with ``cp --sparse=always``, in the same run, and
prints the wall time and allocated bytes of each, plus the time to create the
tutorial's 2 TB sparse image. Every copy is flushed to disk (fsync) inside its
timing, so page-cache tricks do not flatter anyone.

    .venv/bin/python bench/disk_copy.py [--dir DIR] [--size-gib 10] [--data-gib 1]

Targets (issue 5): clone allocation == source allocation, clone at least 5x
faster than dd, 2 TB sparse image in under 50 ms. Exit status 1 if missed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "_utils"))

from saltext_xen.disks import (
    disk_copy,
    disk_image,
)

GIB = 1024**3
MIB = 1024**2


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_source(path, size, data):
    """``size`` bytes, ``data`` bytes of random data spread over 8 places."""
    disk_image.create(path, size)
    pieces = 8
    each = data // pieces
    block = os.urandom(16 * MIB)
    with open(path, "r+b") as fh:
        for i in range(pieces):
            fh.seek(i * (size // pieces))
            left = each
            while left > 0:
                n = min(left, len(block))
                fh.write(block[:n])
                left -= n
        fh.flush()
        os.fsync(fh.fileno())


def timed(label, func, dst):
    start = time.perf_counter()
    func()
    fsync_path(dst)
    elapsed = time.perf_counter() - start
    return {"label": label, "seconds": elapsed, "allocated": disk_image.allocated(dst)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--dir", default=None, help="where to put the images (default: a temp dir)")
    parser.add_argument("--size-gib", type=float, default=10)
    parser.add_argument("--data-gib", type=float, default=1)
    parser.add_argument("--skip-dd", action="store_true", help="leave out dd (slow)")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="xen-disk-bench-", dir=args.dir)
    try:
        src = os.path.join(work, "vm03.img")
        size, data = int(args.size_gib * GIB), int(args.data_gib * GIB)
        print(f"source: {disk_image.human(size)} sparse image with {disk_image.human(data)} of data in {work}")
        make_source(src, size, data)
        src_alloc = disk_image.allocated(src)
        print(f"{'source':28} {'':>9} allocated {src_alloc:>14,} B")

        rows = []
        dst = os.path.join(work, "clone.img")
        rows.append(timed("saltext_xen disk_copy.copy", lambda: disk_copy.copy(src, dst), dst))
        os.unlink(dst)
        rows.append(timed("  same, without verifying", lambda: disk_copy.copy(src, dst, check=False), dst))
        os.unlink(dst)
        dst = os.path.join(work, "cp.img")
        rows.append(
            timed("cp --sparse=always", lambda: subprocess.run(["cp", "--sparse=always", src, dst], check=True), dst)
        )
        os.unlink(dst)
        if not args.skip_dd:
            dst = os.path.join(work, "dd.img")
            rows.append(
                timed(
                    "dd if=SRC of=DST",
                    lambda: subprocess.run(["dd", f"if={src}", f"of={dst}"], check=True, stderr=subprocess.DEVNULL),
                    dst,
                )
            )
            os.unlink(dst)

        for row in rows:
            print(f"{row['label']:28} {row['seconds']:8.2f}s allocated {row['allocated']:>14,} B")

        big = os.path.join(work, "newvm-1.img")
        start = time.perf_counter()
        disk_image.create(big, 2 * 1000**4)
        create_ms = (time.perf_counter() - start) * 1000
        print(f"{'create 2 TB sparse image':28} {create_ms:8.2f}ms allocated {disk_image.allocated(big):>11,} B")

        ours = rows[0]
        ok = ours["allocated"] <= src_alloc and create_ms < 50
        if not args.skip_dd:
            speedup = rows[-1]["seconds"] / ours["seconds"]
            print(f"clone is {speedup:.1f}x faster than dd (target: at least 5x)")
            ok = ok and speedup >= 5
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
