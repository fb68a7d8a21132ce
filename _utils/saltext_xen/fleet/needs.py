"""What a guest needs from a host, as the planner reads it, from facts or from pillar.

A guest's needs: ``{"name", "memory" (MiB), "active" (holds memory now),
"bridges", "networks", "disks" (paths), "group" (anti-affinity, or None)}``.
No libvirt here: the master's runner reads pillar with it too.
"""

from saltext_xen.core import validate


def needs_of(name, record, group=None):
    """A guest's needs from a facts record (its ``disks`` being paths or ``{"path"}`` dicts)."""
    disks = [d["path"] if isinstance(d, dict) else d for d in record.get("disks") or ()]
    return {
        "name": name,
        "memory": int(record.get("memory") or 0),
        "active": bool(record.get("active", True)),
        "bridges": sorted(record.get("bridges") or ()),
        "networks": sorted(record.get("networks") or ()),
        "disks": sorted(p for p in disks if p),
        "group": group if group is not None else record.get("group"),
    }


def dom0_mem(value, path="xen:host:dom0_mem"):
    """The pillar's dom0 reservation in MiB (``2048``, ``2G``), None when unset; InvalidSpec if wrong."""
    if value is None:
        return None
    return validate.check(value, validate.size_mib, path)


def _pillar_guest(name, data, path, problems):
    if not isinstance(data, dict):
        problems.expected(path, "a mapping of keys to values", data)
        return None
    memory = data.get("memory", 512)
    memory = validate.size_mib(memory, validate.key_path(path, "memory"), problems)
    vcpus = validate.integer(data.get("vcpus", 1), validate.key_path(path, "vcpus"), problems, minimum=1)
    group = data.get("group")
    if group is not None:
        group = validate.text(group, validate.key_path(path, "group"), problems, what="a group name")
    nics = data.get("nics") or []
    disks = data.get("disks") or []
    if not isinstance(nics, list):
        problems.expected(validate.key_path(path, "nics"), "a list", nics)
        nics = []
    if not isinstance(disks, list):
        problems.expected(validate.key_path(path, "disks"), "a list", disks)
        disks = []
    nics = [nic for nic in nics if isinstance(nic, dict)]
    disks = [disk for disk in disks if isinstance(disk, dict)]
    return {
        "memory": memory,
        "vcpus": vcpus,
        "group": group,
        "bridges": sorted({str(nic["bridge"]) for nic in nics if nic.get("bridge")}),
        "networks": sorted({str(nic["network"]) for nic in nics if nic.get("network")}),
        "disks": sorted({str(d.get("source") or d.get("path")) for d in disks if d.get("source") or d.get("path")}),
        "macs": sorted({str(nic["mac"]).lower() for nic in nics if nic.get("mac")}),
        "autostart": data.get("autostart") is True,
        "ensure": data.get("ensure", "running"),
    }


def pillar_guests(data, path="xen:guests"):
    """``({name: needs}, problems)`` from pillar ``xen:guests`` (None or a mapping)."""
    problems = validate.Problems()
    found = {}
    if data is None:
        return found, problems
    if not isinstance(data, dict):
        problems.expected(path, "a mapping of guest names to guests", data)
        return found, problems
    for name, guest in sorted(data.items()):
        record = _pillar_guest(name, guest, validate.key_path(path, name), problems)
        if record is not None:
            found[str(name)] = record
    return found, problems


def _names(value, path, problems):
    """A list of names from a list or a comma-separated string (CLI arguments)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        problems.expected(path, "a list of names", value)
        return None
    return sorted({str(item) for item in value})


def wanted(name, pillar=None, **given):
    """A guest's needs for placement: its pillar entry (or None) with ``given`` keys over it.

    ``given`` may hold ``memory`` (MiB or ``2G``), ``bridges``, ``networks``,
    ``disks`` (lists or comma-separated) and ``group``; InvalidSpec names every
    wrong one. Without pillar or ``memory`` there is nothing to place.
    """
    problems = validate.Problems()
    base = dict(pillar or {})
    if given.get("memory") is not None:
        base["memory"] = validate.size_mib(given["memory"], "memory", problems)
    elif not pillar:
        problems.add("memory", f"{name} is in no host's pillar xen:guests: say how much memory it needs (memory=)")
    for key in ("bridges", "networks", "disks"):
        names = _names(given.get(key), key, problems)
        if names is not None:
            base[key] = names
    if given.get("group") is not None:
        base["group"] = validate.text(given["group"], "group", problems, what="a group name")
    problems.raise_if_any()
    base["active"] = True
    return needs_of(name, base)
