"""Host facts as ``xen_host.facts`` returns them, made small for the planner's tests."""


def guest(memory=512, active=True, bridges=("xenbr0",), networks=(), disks=None, uuid=None, macs=(), autostart=False):
    return {
        "uuid": uuid,
        "state": "running" if active else "shutoff",
        "active": active,
        "autostart": autostart,
        "persistent": True,
        "memory": memory,
        "vcpus": 1,
        "macs": list(macs),
        "bridges": list(bridges),
        "networks": list(networks),
        "disks": [{"path": p, "exists": True} for p in (disks or [])],
    }


def host(total=8192, reserved=0, guests=None, bridges=("xenbr0",), networks=None, storage=("/srv/xen",), pillar=None):
    guests = guests or {}
    used = sum(g["memory"] for g in guests.values() if g["active"])
    return {
        "hypervisor": "Xen",
        "xen_version": "4.17.3",
        "cpus": 8,
        "memory": {
            "total": total,
            "free": total - reserved - used,
            "dom0": reserved,
            "reserved": reserved,
            "used": used,
            "available": total - reserved - used,
        },
        "guests": guests,
        "bridges": list(bridges),
        "networks": networks or {},
        "pools": {f"p{i}": {"type": "dir", "path": p, "active": True} for i, p in enumerate(storage)},
        "errors": [],
        "pillar_guests": pillar or {},
    }
