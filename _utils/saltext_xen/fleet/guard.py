"""No second copy of a guest: what a host must not define or start because another host has it.

Every host publishes its guests through the Salt mine (``xen_host.guests``:
``{name: {"uuid", "state"}}``). Before a guest state defines a guest that is not
on its host, or starts one that is shut off there, it asks :func:`refusals` with
what the mine reports of the other hosts: a guest another host reports by name or
by UUID is refused, since a second copy would share its disks (on shared storage
two running copies destroy its filesystem). Where the mine has no data, nothing
is refused. Plain data in, plain data out.
"""

#: run states a guest state starts a guest towards
STARTING = ("running", "paused")


def would_add(want, current):
    """Whether a guest state with run state ``want`` defines the guest (``current`` None) or starts it."""
    if current is None:
        return True
    return want in STARTING and current.live is None


def elsewhere(name, uuid, reported, here):
    """``[(host, name there, state)]`` of the hosts other than ``here`` reporting ``name`` or ``uuid``.

    ``reported`` is ``{host: {guest: {"uuid", "state"}}}`` as the mine has it; a host
    whose entry is not a mapping (the function failed there) is skipped.
    """
    uuid = str(uuid).lower() if uuid else None
    found = []
    for host, guests in sorted((reported or {}).items()):
        if host == here or not isinstance(guests, dict):
            continue
        for other, listed in sorted(guests.items()):
            record = listed if isinstance(listed, dict) else {}
            same_uuid = uuid is not None and str(record.get("uuid") or "").lower() == uuid
            if other == name or same_uuid:
                found.append((host, other, record.get("state") or "unknown"))
    return found


def _where(name, host, other, state):
    where = f"runs on {host}" if state == "running" else f"is defined on {host} ({state})"
    if other == name:
        return f"{name} {where} (mine)"
    return f"{name}'s UUID is that of guest {other}, which {where} (mine)"


def refusals(name, uuid, reported, here, path="xen:guests"):
    """Why host ``here`` must not define or start guest ``name`` (UUID ``uuid``, may be None):
    one problem per other host the mine says has it, named by ``path``; ``[]`` when none does.
    """
    return [
        f"{path}:{name}: {_where(name, host, other, state)}: a second copy here would share its disks; "
        "move its pillar entry or run salt-run xen.verify"
        for host, other, state in elsewhere(name, uuid, reported, here)
    ]
