"""Evacuate, failover and balance plans over host facts (plain data in, plain data out).

Every plan is a dict with ``moves`` (``{"guest", "from", "to", "how", "memory",
"why"}`` in the order they would run), ``feasible`` and ``refused`` (None, or
why the plan cannot be carried out), and ``note``. The runner (``xen.migrate``,
``xen.evacuate``) carries a plan out with :func:`carry_out`, which calls the steps of
:mod:`moves` on the hosts. Nothing here needs libvirt: the master plans and moves without it.
Each plan places guests one after the other in one
:class:`~saltext_xen.fleet.placement.Fleet`, so a later guest sees the memory an earlier
one took.
"""

from saltext_xen.core.errors import XenError
from saltext_xen.fleet import placement

PLAN_ONLY = "plan only: nothing was moved (salt-run xen.migrate moves one guest)"
LIVE = "live migration"
COLD = "move the definition (shut off)"
RESTART = "start from shared storage"
#: run states a guest moves from by live migration (the others: its definition moves)
MOVING_LIVE = ("running", "paused")


def _order(guests):
    """Guests holding memory first, largest first (hardest to fit), then by name."""
    return sorted(guests, key=lambda g: (not g["active"], -g["memory"], g["name"]))


def _plan(fleet, guests, source, how, n_plus_one):
    moves, unplaced = [], {}
    for guest in _order(guests):
        choice = fleet.choose(guest, n_plus_one=n_plus_one, explain=False)
        if choice["host"] is None:
            unplaced[guest["name"]] = choice["rejected"]
            continue
        fleet.place(guest, choice["host"])
        moves.append(
            {
                "guest": guest["name"],
                "from": source,
                "to": choice["host"],
                "how": how(guest),
                "memory": guest["memory"] if guest["active"] else 0,
                "why": choice["why"],
            }
        )
    return moves, unplaced


def _refusal(source, unplaced, n_plus_one, verb):
    if not unplaced:
        return None
    names = ", ".join(sorted(unplaced))
    text = f"the rest of the fleet cannot hold the guests of {source}: no host can take {names}"
    if n_plus_one and any("N+1" in reason for reasons in unplaced.values() for reason in reasons.values()):
        text += " while keeping N+1 redundancy (n_plus_one=False plans without it)"
    return f"cannot {verb} {source}: {text}"


def evacuate(facts_by_host, source, n_plus_one=True):
    """The plan moving every guest off ``source`` (live for running ones, definitions for the others)."""
    facts = facts_by_host.get(source)
    if not isinstance(facts, dict) or "guests" not in facts:
        reason = facts if isinstance(facts, str) else "it is not among the answering Xen hosts"
        return _result(source, [], {}, f"cannot evacuate {source}: {reason}")
    fleet = placement.Fleet(facts_by_host, leaving={source})
    own = placement.Host(source, facts)
    moves, unplaced = _plan(
        fleet, list(own.guests.values()), source, lambda g: LIVE if g["active"] else COLD, n_plus_one
    )
    return _result(source, moves, unplaced, _refusal(source, unplaced, n_plus_one, "evacuate"))


def move(facts_by_host, name, target=None, n_plus_one=True):
    """The plan moving guest ``name`` off the one host that has it, to ``target`` or where placement
    chooses (running guests live, the others by their definition); refused when two hosts have it,
    none does, or the target cannot take it.
    """
    holders = sorted(h for h, f in facts_by_host.items() if isinstance(f, dict) and name in (f.get("guests") or {}))
    if len(holders) != 1:
        where = f"is defined on {', '.join(holders)}: make sure it runs on one only" if holders else "is on no host"
        return _result(None, [], {}, f"cannot move {name}: it {where} (salt-run xen.verify)")
    source = holders[0]
    fleet = placement.Fleet(facts_by_host, leaving={source})
    guest = placement.Host(source, facts_by_host[source]).guests[name]
    if target is None:
        choice = fleet.choose(guest, n_plus_one=n_plus_one)
    elif target == source:
        choice = {"host": None, "why": f"{name} is on {target} already"}
    elif target not in fleet.hosts:
        choice = {"host": None, "why": f"{target}: {fleet.down.get(target, 'not among the answering Xen hosts')}"}
    else:
        reason = fleet.reject(fleet.hosts[target], guest, n_plus_one=n_plus_one)
        choice = {
            "host": None if reason else target,
            "why": f"{target}: {reason}" if reason else f"{target} was asked for",
        }
    if choice["host"] is None:
        return _result(source, [], {name: choice.get("rejected", {})}, f"cannot move {name}: {choice['why']}")
    how = LIVE if guest["active"] else COLD
    memory = guest["memory"] if guest["active"] else 0
    step = {"guest": name, "from": source, "to": choice["host"], "how": how, "memory": memory, "why": choice["why"]}
    return _result(source, [step], {}, None)


def failover(facts_by_host, dead, guests, n_plus_one=True):
    """The plan starting ``guests`` (needs, from the dead host's pillar) of host ``dead`` elsewhere.

    Guests already defined on an answering host are left out (said in ``skipped``):
    starting a second copy is what a failover must never do.
    """
    if isinstance(facts_by_host.get(dead), dict):
        return _result(dead, [], {}, f"cannot fail over {dead}: it answers, so it is not down (no split brain)")
    fleet = placement.Fleet({h: f for h, f in facts_by_host.items() if h != dead})
    skipped, wanted = {}, []
    for guest in guests:
        where = sorted(h.name for h in fleet.hosts.values() if guest["name"] in h.names)
        if where:
            skipped[guest["name"]] = f"already defined on {', '.join(where)}"
        else:
            wanted.append(dict(guest, active=True))
    moves, unplaced = _plan(fleet, wanted, dead, lambda g: RESTART, n_plus_one)
    result = _result(dead, moves, unplaced, _refusal(dead, unplaced, n_plus_one, "fail over"))
    result["skipped"] = skipped
    return result


def _result(host, moves, unplaced, refused):
    return {
        "host": host,
        "feasible": refused is None,
        "refused": refused,
        "moves": moves,
        "unplaced": unplaced,
        "note": PLAN_ONLY,
    }


def _use(host):
    total = host.load + host.room
    return host.load / total if total > 0 else 0.0


def balance(facts_by_host, max_moves=10, n_plus_one=True, min_gain=0.01):
    """Moves of running guests from the fullest host to the emptiest while that evens memory use.

    Use is load / (load + room) per host; a move is taken when it lowers the
    difference between the fullest and the emptiest host by at least ``min_gain``,
    and the target takes the guest as placement would (needs, groups); N+1, when it
    holds before a move, must hold after it.
    """
    fleet = placement.Fleet(facts_by_host)
    moves = []
    while len(moves) < max_moves and len(fleet.hosts) > 1:
        ranked = sorted(fleet.hosts.values(), key=lambda h: (_use(h), h.name))
        low, high = ranked[0], ranked[-1]
        spread = _use(high) - _use(low)
        middle = [_use(h) for h in ranked[1:-1]]
        options = []
        for guest in high.guests.values():
            if not guest["active"] or fleet.reject(low, guest, n_plus_one=False):
                continue
            m = guest["memory"]
            after_uses = [(high.load - m) / (high.load + high.room), (low.load + m) / (low.load + low.room), *middle]
            after = max(after_uses) - min(after_uses)
            if spread - after >= min_gain:
                options.append((after, guest["name"]))
        taken = None
        held = n_plus_one and fleet.n_plus_one_problem() is None
        for after, name in sorted(options):
            fleet.move(name, high.name, low.name)
            if not held or fleet.n_plus_one_problem() is None:
                taken = (after, fleet.hosts[low.name].guests[name])
                break
            fleet.move(name, low.name, high.name)
        if taken is None:
            break
        after, guest = taken
        moves.append(
            {
                "guest": guest["name"],
                "from": high.name,
                "to": low.name,
                "how": LIVE,
                "memory": guest["memory"],
                "why": f"memory use spread {spread:.0%} -> {after:.0%}",
            }
        )
    uses = {h.name: round(_use(h), 3) for h in fleet.hosts.values()}
    return {"moves": moves, "use_after": uses, "down": dict(fleet.down), "note": PLAN_ONLY}


def carry_out(name, source, target, call, test=False):
    """Move guest ``name`` from ``source`` to ``target`` through ``call(host, function, *args, **kwargs)``
    (an execution function run on a host; raises XenError with its error). The target's checks
    come first; ``test``: only them. Returns ``{"guest", "from", "to", "how", "autostart"}``.
    """
    found = call(source, "xen_host.definition", name)
    live = found["state"] in MOVING_LIVE
    call(target, "xen_host.take_over", xml=found["xml"], autostart=found["autostart"], test=True)
    done = {"guest": name, "from": source, "to": target, "how": "live migration" if live else "definition moved"}
    done["autostart"] = found["autostart"]
    if test:
        return done
    if live:
        call(source, "xen_host.migrate", name, target)
        try:
            if found["autostart"]:
                call(target, "xen_guest.autostart", name)
        except XenError as exc:
            raise XenError(f"{name} moved live to {target}, but is not marked autostart there: {exc}") from None
        return done
    call(target, "xen_host.take_over", xml=found["xml"], autostart=found["autostart"])
    try:
        call(source, "xen_host.let_go", name, uuid=found["uuid"])
    except XenError as exc:
        try:
            call(target, "xen_host.let_go", name, uuid=found["uuid"])
            undone = f"its definition on {target} was removed again"
        except XenError:
            undone = f"it is now defined on both: remove one (xen_host.let_go {name}) before starting it"
        raise XenError(f"{name} could not be removed from {source} ({exc}); {undone}") from None
    return done
