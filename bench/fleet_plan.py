#!/usr/bin/env python3
"""Time the fleet planner alone (library code, no Salt, no libvirt) on a large fleet.

Builds the facts 1000 hosts x 30 guests would report (``xen_host.facts``), then
times, on them: one placement (``salt-run xen.place``) and one evacuation plan
(``salt-run xen.evacuate``: 30 guests placed one after the other, with N+1).
Each figure is the best of a few runs; the floor is reading the facts into the
planner (what every plan pays before it decides anything).

    .venv/bin/python bench/fleet_plan.py
    .venv/bin/python bench/fleet_plan.py --hosts 1000 --guests 30 --json

Target: placement and evacuation plan together in under 1 s.
"""

import argparse
import json
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_utils"))

from saltext_xen.fleet import needs, placement, plans  # noqa: E402  (found through the sys.path line above)

TARGET = 1.0
REPEAT = 3


def fleet(hosts, guests, seed=7):
    """Facts of ``hosts`` hosts of 256 GiB with ``guests`` guests each, bridges and groups varied."""
    rng = random.Random(seed)
    found = {}
    for h in range(hosts):
        records, pillar, used = {}, {}, 0
        for g in range(guests):
            name = f"h{h}g{g}"
            memory = rng.choice([512, 1024, 2048, 4096])
            active = rng.random() < 0.9
            records[name] = {
                "uuid": f"{h:08d}-0000-0000-0000-{g:012d}",
                "state": "running" if active else "shutoff",
                "active": active,
                "autostart": active,
                "persistent": True,
                "memory": memory,
                "vcpus": 2,
                "macs": [f"00:16:3e:{h >> 8:02x}:{h & 255:02x}:{g:02x}"],
                "bridges": ["xenbr0"] if g % 5 else ["xenbr1"],
                "networks": [],
                "disks": [{"path": f"/srv/xen/{name}.img", "exists": True}],
            }
            pillar[name] = {"group": f"group{(h + g) % 200}" if g % 3 == 0 else None}
            used += memory if active else 0
        total = 262144
        found[f"xen{h:04d}"] = {
            "hypervisor": "Xen",
            "xen_version": "4.17.3",
            "cpus": 64,
            "memory": {
                "total": total,
                "free": total - 4096 - used,
                "dom0": 4096,
                "reserved": 4096,
                "used": used,
                "available": total - 4096 - used,
            },
            "guests": records,
            "bridges": ["xenbr0", "xenbr1"] if h % 7 else ["xenbr0"],
            "networks": {},
            "pools": {"shared": {"type": "netfs", "path": "/srv/xen", "active": True}},
            "errors": [],
            "pillar_guests": pillar,
        }
    return found


def best_of(func):
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the bench table's rows as JSON only")
    args = parser.parse_args()

    facts = fleet(args.hosts, args.guests)
    wanted = needs.wanted("new", None, memory="8G", bridges="xenbr1", disks="/srv/xen/new.img", group="group0")
    source = sorted(facts)[len(facts) // 2]
    floor, _ = best_of(lambda: placement.Fleet(facts))
    place_time, chosen = best_of(lambda: placement.place(facts, wanted))
    evac_time, plan = best_of(lambda: plans.evacuate(facts, source))
    total = place_time + evac_time
    size = f"{args.hosts} hosts x {args.guests} guests"
    rows = [
        {
            "measure": f"fleet place + evacuate plan, {size}",
            "figure": f"{total:.3f} s",
            "floor": f"{floor:.3f} s",
            "ratio": total / floor if floor else None,
            "target": f"< {TARGET:g} s",
            "met": total < TARGET and chosen["host"] is not None and plan["feasible"],
        }
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{size}: reading the facts into the planner (floor) {floor:.3f} s")
    print(
        f"  place one guest      {place_time:.3f} s  -> {chosen['host']} ({len(chosen['rejected'])} hosts turned down)"
    )
    print(f"  evacuate {source}   {evac_time:.3f} s  -> {len(plan['moves'])} moves, feasible={plan['feasible']}")
    row = rows[0]
    print(
        f"  target, {row['measure']}: {row['figure']} (floor {row['floor']}, {row['ratio']:.2f}x); "
        f"{row['target']} -> {'met' if row['met'] else 'missed'}"
    )
    return 0 if row["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
