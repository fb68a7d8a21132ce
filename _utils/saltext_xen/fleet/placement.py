"""Choose a host for a guest, and say why every other host was turned down.

Input is what the hosts told the runner: ``{host: facts}`` (see
:mod:`saltext_xen.fleet.facts`), a host that did not answer or could not read
its facts being an error text instead. :class:`Fleet` keeps, per host, the
memory it can still give (``room``), the memory its guests hold (``load``),
its bridges, networks, storage paths and anti-affinity groups, and changes
them as a plan places guests, so one plan sees its own earlier moves.

A host is turned down, with the first reason that applies, when it:
did not answer; is excluded or not among the pinned hosts; already has the
guest; lacks a bridge, network or storage path the guest needs; holds another
guest of the guest's anti-affinity group; has too little memory; or would
leave the fleet without N+1 redundancy. Among the hosts left, the one with the
most memory left after the placement wins (ties go to the first by name).

N+1 redundancy means the guests of any one host can be started on the others:
their memory together fits in the others' room, and the largest of them fits
in one other host. Only guests that hold memory (running, paused) count.
"""

import heapq
import os

from saltext_xen.fleet import needs


def _under(path, roots):
    """True when ``path`` is one of ``roots`` or inside one of them."""
    path = os.path.normpath(path)
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


class Host:
    """One answering host as the planner sees it (mutable while a plan is made)."""

    def __init__(self, name, facts):
        self.name = name
        memory = facts.get("memory") or {}
        self.room = int(memory.get("available") or 0)
        self.cpus = facts.get("cpus")
        networks = facts.get("networks") or {}
        self.networks = {net for net, info in networks.items() if info.get("active", True)}
        self.bridges = set(facts.get("bridges") or ()) | {
            info["bridge"] for info in networks.values() if info.get("bridge") and info.get("active", True)
        }
        self.bridges_known = facts.get("bridges") is not None
        self.storage = sorted(
            os.path.normpath(info["path"])
            for info in (facts.get("pools") or {}).values()
            if info.get("path") and info.get("active", True)
        )
        self._groups_of = {name: info.get("group") for name, info in (facts.get("pillar_guests") or {}).items()}
        # the guests' full needs are made only when asked (a plan reads those of few hosts)
        self._raw = facts.get("guests") or {}
        self._guests = None
        self.names = set(self._raw)
        self.load, self.largest, self.groups = 0, 0, {}
        for gname, record in self._raw.items():
            self._count(gname, record.get("memory") or 0, record.get("active", True), self._groups_of.get(gname))

    def _count(self, name, memory, active, group):
        if active:
            self.load += memory
            self.largest = max(self.largest, memory)
        if group:
            self.groups.setdefault(group, set()).add(name)

    @property
    def guests(self):
        """``{name: needs}`` of the guests on this host now."""
        if self._guests is None:
            self._guests = {
                name: needs.needs_of(name, record, self._groups_of.get(name)) for name, record in self._raw.items()
            }
        return self._guests

    def add(self, guest):
        self.guests[guest["name"]] = guest
        self.names.add(guest["name"])
        self._count(guest["name"], guest["memory"], guest["active"], guest["group"])
        if guest["active"]:
            self.room -= guest["memory"]

    def remove(self, name):
        guest = self.guests.pop(name)
        self.names.discard(name)
        if guest["group"]:
            self.groups.get(guest["group"], set()).discard(name)
        if guest["active"]:
            self.load -= guest["memory"]
            self.room += guest["memory"]
            self.largest = max((g["memory"] for g in self.guests.values() if g["active"]), default=0)
        return guest

    def group_members(self, group, but=None):
        return sorted(n for n in self.groups.get(group, ()) if n != but) if group else []

    def missing(self, guest):
        """What ``guest`` needs that this host lacks, in words (empty when nothing)."""
        lacks = []
        for bridge in guest["bridges"]:
            if bridge not in self.bridges:
                unknown = "" if self.bridges_known else " (its bridges could not be read)"
                lacks.append(f"bridge {bridge}{unknown}")
        lacks += [f"network {net}" for net in guest["networks"] if net not in self.networks]
        lacks += [f"storage for {path}" for path in guest["disks"] if not _under(path, self.storage)]
        return lacks


class Fleet:
    """The answering hosts (``hosts``) and those that did not answer (``down``: host -> reason)."""

    def __init__(self, facts_by_host, leaving=()):
        self.hosts, self.down = {}, {}
        for name, facts in sorted(facts_by_host.items()):
            if isinstance(facts, dict) and "memory" in facts:
                if name not in leaving:
                    self.hosts[name] = Host(name, facts)
            else:
                self.down[name] = str(facts) if facts else "did not answer"
        self._tops = None

    # -------------------------------------------------------------- N+1

    def _refresh(self):
        if self._tops is None:
            hosts = list(self.hosts.values())
            self._tops = {
                "room": heapq.nlargest(3, ((h.room, h.name) for h in hosts)),
                "largest": heapq.nlargest(4, ((h.largest, h.name) for h in hosts)),
                "capacity": max(((h.load + h.room, h.name) for h in hosts), default=(0, None)),
                "spare": sum(h.room for h in hosts),
            }
        return self._tops

    def changed(self):
        self._tops = None

    def n_plus_one_problem(self, target=None, memory=0):
        """Why placing ``memory`` MiB on ``target`` breaks N+1 (None when it holds after it).

        With no target, whether N+1 holds now. Constant time per call: only the
        three hosts with most room and the four with the largest guests matter.
        """
        if len(self.hosts) < 2:
            return "N+1 needs at least two answering hosts"
        tops = self._refresh()
        spare = tops["spare"] - memory
        cap, worst = tops["capacity"]
        if target is not None and self.hosts[target].load + self.hosts[target].room == cap:
            worst = target  # of the hosts binding N+1, name the one the guest would go to
        if cap > spare:
            worst_host = self.hosts[worst]
            load = worst_host.load + (memory if worst == target else 0)
            others = spare - (worst_host.room - (memory if worst == target else 0))
            return (
                f"N+1 would break: the guests of {worst} ({load} MiB) would not fit "
                f"in the memory left on the other hosts ({others} MiB)"
            )
        rooms = tops["room"]
        target_room = self.hosts[target].room - memory if target is not None else None

        def room_without(host):
            """Most room on a host other than ``host`` once the target has taken the guest."""
            best = next((room for room, name in rooms if name not in (host, target)), 0)
            return best if target is None or host == target else max(best, target_room)

        found = []
        if target is not None:
            found.append((target, max(self.hosts[target].largest, memory)))
        # hosts with the most room see less room elsewhere; any other host sees the same best room,
        # so the one with the largest guest among them speaks for all of them
        special = {name for _room, name in rooms[:2]} | {target}
        found += [(name, self.hosts[name].largest) for name in sorted(special - {target, None})]
        found += [(name, big) for big, name in tops["largest"] if name not in special][:1]
        for name, big in found:
            room = room_without(name)
            if big > room:
                return (
                    f"N+1 would break: the largest guest of {name} ({big} MiB) "
                    f"would fit on no other host (most room elsewhere: {room} MiB)"
                )
        return None

    # -------------------------------------------------------------- placement

    def reject(self, host, guest, pin=(), exclude=(), n_plus_one=True):
        """Why ``host`` cannot take ``guest``, or None when it can."""
        if host.name in exclude:
            return "excluded"
        if pin and host.name not in pin:
            return f"not among the pinned hosts ({', '.join(sorted(pin))})"
        if guest["name"] in host.names:
            return f"already has {guest['name']}"
        lacks = host.missing(guest)
        if lacks:
            return "lacks " + ", ".join(lacks)
        mates = host.group_members(guest["group"], but=guest["name"])
        if mates:
            return f"holds {', '.join(mates)} of anti-affinity group {guest['group']}"
        need = guest["memory"] if guest["active"] else 0
        if need > host.room:
            return f"has {host.room} MiB free for guests, {guest['name']} needs {need} MiB"
        if n_plus_one and need:
            return self.n_plus_one_problem(host.name, need)
        return None

    def choose(self, guest, pin=(), exclude=(), n_plus_one=True, explain=True):
        """``{"guest", "host", "why", "rejected": {host: reason}}``; ``host`` None when none fits.

        ``explain=False`` (for plans placing many guests) tries the hosts from the
        most room down and stops at the first that fits: the same choice, with
        only the hosts tried before it in ``rejected``.
        """
        need = guest["memory"] if guest["active"] else 0
        if not explain:
            rejected = dict(self.down)
            for host in sorted(self.hosts.values(), key=lambda h: (-h.room, h.name)):
                reason = self.reject(host, guest, pin, exclude, n_plus_one)
                if not reason:
                    why = f"{host.name} has the most memory left after taking {guest['name']} ({host.room - need} MiB)"
                    return {"guest": guest["name"], "host": host.name, "why": why, "rejected": rejected}
                rejected[host.name] = reason
            return {"guest": guest["name"], "host": None, "why": _why_none(guest, rejected), "rejected": rejected}
        rejected = dict(self.down)
        fits = []
        for host in self.hosts.values():
            reason = self.reject(host, guest, pin, exclude, n_plus_one)
            if reason:
                rejected[host.name] = reason
            else:
                fits.append((-(host.room - need), host.name))
        if not fits:
            return {"guest": guest["name"], "host": None, "why": _why_none(guest, rejected), "rejected": rejected}
        left, name = min(fits)
        why = f"{name} has the most memory left after taking {guest['name']} ({-left} MiB)"
        if len(fits) > 1:
            why += f" of the {len(fits)} hosts that can take it"
        return {"guest": guest["name"], "host": name, "why": why, "rejected": rejected}

    def place(self, guest, host):
        """Record ``guest`` on ``host`` (after :meth:`choose`)."""
        self.hosts[host].add(guest)
        self.changed()

    def move(self, name, source, target):
        """Record a move of guest ``name`` between two answering hosts."""
        guest = self.hosts[source].remove(name)
        self.hosts[target].add(guest)
        self.changed()
        return guest


def _why_none(guest, rejected):
    if not rejected:
        return f"no host can take {guest['name']}: no answering Xen host"
    return f"no host can take {guest['name']}: " + "; ".join(f"{h}: {r}" for h, r in sorted(rejected.items()))


def place(facts_by_host, guest, pin=(), exclude=(), n_plus_one=True):
    """Choose a host for ``guest`` (as from :func:`needs.needs_of`) in a fleet of host facts."""
    return Fleet(facts_by_host).choose(guest, pin=pin, exclude=exclude, n_plus_one=n_plus_one)


def capacity(facts):
    """One host's facts shortened for ``salt-run xen.hosts``: memory, CPUs, guests, what it offers."""
    if not isinstance(facts, dict) or "memory" not in facts:
        return str(facts) if facts else "did not answer"
    guests = facts.get("guests") or {}
    return {
        "hypervisor": facts.get("hypervisor"),
        "xen_version": facts.get("xen_version"),
        "cpus": facts.get("cpus"),
        "memory": dict(facts["memory"]),
        "guests": len(guests),
        "running": sorted(name for name, g in guests.items() if g.get("active")),
        "guest_memory": sum(g.get("memory") or 0 for g in guests.values() if g.get("active")),
        "bridges": facts.get("bridges"),
        "networks": sorted(facts.get("networks") or ()),
        "storage": {name: pool.get("path") for name, pool in sorted((facts.get("pools") or {}).items())},
        "errors": list(facts.get("errors") or ()),
    }
