"""Fleet-wide checks over host facts, each problem said in one sentence (``gnt-cluster verify``).

:func:`check` returns ``{check name: [sentences]}`` holding only the checks that
found something:

- ``down``: hosts that did not answer, or answered without facts;
- ``duplicates``: a guest defined (or, worse, running) on more than one host;
- ``uuid_clashes`` / ``mac_clashes``: one UUID or MAC used by different guests or hosts;
- ``missing``: a guest whose bridge, network or disk is missing on its host;
- ``autostart_down``: a guest marked to start with its host that is not running;
- ``n_plus_one``: a host whose running guests could not be started on the others;
- ``pillar``: a guest named in the pillar of one host but defined on another, or
  in the pillars of two hosts (a highstate there defines a second copy, or fails
  where the second-copy guard knows the guest from the mine).
"""

import collections

from saltext_xen.fleet import placement, plans

CHECKS = ("down", "duplicates", "uuid_clashes", "mac_clashes", "missing", "autostart_down", "n_plus_one", "pillar")


def _answering(facts_by_host):
    return {h: f for h, f in sorted(facts_by_host.items()) if isinstance(f, dict) and "guests" in f}


def _duplicates(hosts):
    where = collections.defaultdict(list)
    for host, facts in hosts.items():
        for name, guest in facts["guests"].items():
            where[name].append((host, guest["active"]))
    found = []
    for name, places in sorted(where.items()):
        if len(places) < 2:
            continue
        running = [h for h, active in places if active]
        if len(running) > 1:
            found.append(f"{name} runs on {len(running)} hosts at once: {', '.join(running)} (split brain)")
        else:
            on = ", ".join(h for h, _ in places)
            found.append(
                f"{name} is defined on {len(places)} hosts: {on}" + (f"; it runs on {running[0]}" if running else "")
            )
    return found


def _clashes(hosts, key, word):
    users = collections.defaultdict(set)
    for host, facts in hosts.items():
        for name, guest in facts["guests"].items():
            values = guest.get(key)
            for value in [values] if isinstance(values, str) else values or ():
                users[value].add((name, host))
    found = []
    for value, who in sorted(users.items()):
        names = {name for name, _ in who}
        if len(names) > 1:
            listed = ", ".join(f"{name} on {host}" for name, host in sorted(who))
            found.append(f"{word} {value} is used by {listed}")
    return found


def _missing(hosts):
    found = []
    for host_name, facts in hosts.items():
        host = placement.Host(host_name, facts)
        for name, guest in facts["guests"].items():
            lacks = [f"bridge {b}" for b in guest.get("bridges") or () if b not in host.bridges]
            lacks += [f"network {n}" for n in guest.get("networks") or () if n not in host.networks]
            lacks += [f"disk {d['path']}" for d in guest.get("disks") or () if not d.get("exists", True)]
            if lacks:
                unknown = "" if host.bridges_known else " (the host's bridges could not be read)"
                found.append(f"{name} on {host_name}: missing {', '.join(lacks)}{unknown}")
    return found


def _autostart_down(hosts):
    return [
        f"{name} on {host} is marked autostart but is {guest['state']}"
        for host, facts in hosts.items()
        for name, guest in facts["guests"].items()
        if guest.get("autostart") and not guest["active"]
    ]


def _n_plus_one(facts_by_host, hosts):
    found = []
    for host, facts in hosts.items():
        running = {name: g for name, g in facts["guests"].items() if g["active"]}
        if not running:
            continue
        only_running = dict(facts, guests=running)
        plan = plans.evacuate(dict(facts_by_host, **{host: only_running}), host, n_plus_one=False)
        if plan["unplaced"]:
            names = ", ".join(sorted(plan["unplaced"]))
            found.append(f"if {host} fails, {names} cannot be started on the other hosts")
    return found


def _pillar(hosts):
    named = collections.defaultdict(list)
    defined = collections.defaultdict(list)
    for host, facts in hosts.items():
        for name in facts.get("pillar_guests") or ():
            named[name].append(host)
        for name in facts["guests"]:
            defined[name].append(host)
    found = []
    for name, in_pillar in sorted(named.items()):
        if len(in_pillar) > 1:
            found.append(f"{name} is in the pillar of {', '.join(in_pillar)}: a highstate of each would define it")
        elsewhere = [h for h in defined.get(name, ()) if h not in in_pillar]
        if elsewhere and not any(h in in_pillar for h in defined[name]):
            found.append(
                f"{name} is in the pillar of {', '.join(in_pillar)} but defined on {', '.join(elsewhere)}: "
                "a highstate there defines a second copy, or fails where the mine guard knows"
            )
    return found


def check(facts_by_host):
    """Every problem found across the fleet, by check (see the module's docstring)."""
    hosts = _answering(facts_by_host)
    found = {
        "down": [
            f"{h}: {f if isinstance(f, str) else 'no facts'}"
            for h, f in sorted(facts_by_host.items())
            if h not in hosts
        ],
        "duplicates": _duplicates(hosts),
        "uuid_clashes": _clashes(hosts, "uuid", "UUID"),
        "mac_clashes": _clashes(hosts, "macs", "MAC"),
        "missing": _missing(hosts),
        "autostart_down": _autostart_down(hosts),
        "n_plus_one": _n_plus_one(hosts, hosts),
        "pillar": _pillar(hosts),
    }
    return {key: found[key] for key in CHECKS if found[key]}
