"""Host bridges for Xen guests: read what is, plan the `ip` steps, run them with rollback.

Three parts, kept apart so the plan can be tested and printed on its own:

* :func:`read` asks ``ip -j`` for links, addresses and routes and returns a plain
  *state* dict (see :func:`parse`).
* :func:`plan` (pure) takes that state and the wanted bridge and returns the
  ordered steps, each with the command that undoes it.
* :func:`apply` runs the steps through a *runner*, checks the bridge came up,
  and undoes what it did, newest first, when a step fails or the check does not pass.

A runner is any callable taking an argv list and returning a dict with
``retcode``, ``stdout`` and ``stderr`` -- the shape of Salt's ``cmd.run_all``;
:func:`subprocess_runner` is one without Salt. ``netns`` runs every command
inside ``ip netns exec NS`` (the tests use it; on a host it is None).

Moving a NIC under a bridge keeps the host reachable by doing it in this order:
create the bridge (with the NIC's MAC, so ARP caches and DHCP leases stay
valid), bring it up, put the NIC's addresses on the bridge as well, enslave the
NIC, switch each route from the NIC to the bridge with ``ip route replace``
(one atomic swap per route), and only then take the addresses off the NIC.
"""

import json
import re
import subprocess
import time

from saltext_xen.core import validate as vocab
from saltext_xen.core.errors import XenError

VIF_NAME = re.compile(r"^(vif\d+\.\d+(-emu)?|tap\d+\.\d+|vnet\d+)$")
_SKIP_ROUTE_PROTOCOLS = {"kernel", "ra"}


class BridgeError(XenError):
    """A bridge could not be planned or set up; the message says why in plain words."""


class BridgeInUse(BridgeError):
    """The bridge still carries guest NICs."""

    def __init__(self, name, guests):
        super().__init__(
            f"bridge {name} is still used by {', '.join(sorted(guests))}; "
            "move or stop those guests first, or pass force=True"
        )
        self.name = name
        self.guests = sorted(guests)


# ---------------------------------------------------------------- running commands


def subprocess_runner(argv):
    """Run ``argv`` without a shell; same return shape as Salt's ``cmd.run_all``."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def _prefix(netns):
    return ["ip", "netns", "exec", netns] if netns else []


def _run(runner, argv, netns=None):
    return runner(_prefix(netns) + list(argv))


def _json(runner, argv, netns=None):
    res = _run(runner, argv, netns)
    if res["retcode"] != 0:
        raise BridgeError(f"'{' '.join(argv)}' failed: {res['stderr'].strip() or res['stdout'].strip()}")
    out = res["stdout"].strip()
    return json.loads(out) if out else []


# ---------------------------------------------------------------- reading the host


def read(runner, netns=None):
    """The host's links, addresses and routes as a state dict (see :func:`parse`)."""
    links = _json(runner, ["ip", "-j", "-d", "link", "show"], netns)
    addrs = _json(runner, ["ip", "-j", "addr", "show"], netns)
    routes = _json(runner, ["ip", "-j", "-4", "route", "show", "table", "main"], netns)
    routes6 = _json(runner, ["ip", "-j", "-6", "route", "show", "table", "main"], netns)
    return parse(links, addrs, routes, routes6)


def parse(links, addrs, routes4, routes6):
    """Turn ``ip -j`` output into ``{"links": {...}, "addrs": {...}, "routes": [...]}``.

    ``links[name]`` holds ``kind`` (bridge, veth, vlan, None for plain NICs),
    ``master``, ``mtu``, ``up`` (admin), ``carrier``, ``mac``, and for bridges
    ``stp`` and ``forward_delay`` (seconds), for VLANs ``vlan`` and ``parent``.
    ``addrs[name]`` lists global addresses as ``"10.0.0.2/24"``.
    ``routes`` lists the routes that are not made by the kernel, each a dict with
    ``family``, ``dst``, ``dev`` and optional ``gateway``, ``metric``, ``src``, ``protocol``.
    """
    state = {"links": {}, "addrs": {}, "routes": []}
    for link in links:
        info = link.get("linkinfo") or {}
        data = info.get("info_data") or {}
        flags = link.get("flags") or []
        entry = {
            "kind": info.get("info_kind"),
            "master": link.get("master"),
            "mtu": link.get("mtu"),
            "up": "UP" in flags,
            "carrier": "LOWER_UP" in flags,
            "mac": link.get("address"),
        }
        if entry["kind"] == "bridge":
            entry["stp"] = bool(data.get("stp_state", 0))
            entry["forward_delay"] = int(data.get("forward_delay", 0)) // 100
        if entry["kind"] == "vlan":
            entry["vlan"] = data.get("id")
            entry["parent"] = link.get("link")
        state["links"][link["ifname"]] = entry
    for link in addrs:
        found = []
        for info in link.get("addr_info") or []:
            if info.get("scope") != "global" or info.get("family") not in ("inet", "inet6"):
                continue
            found.append(f"{info['local']}/{info['prefixlen']}")
        state["addrs"][link["ifname"]] = found
    for family, table in ((4, routes4), (6, routes6)):
        for route in table:
            if route.get("protocol") in _SKIP_ROUTE_PROTOCOLS or route.get("type") not in (None, "unicast"):
                continue
            if "dev" not in route or "nexthops" in route:
                continue
            entry = {"family": family, "dst": route["dst"], "dev": route["dev"]}
            for key, name in (
                ("gateway", "gateway"),
                ("metric", "metric"),
                ("prefsrc", "src"),
                ("protocol", "protocol"),
            ):
                if route.get(key) not in (None, ""):
                    entry[name] = route[key]
            state["routes"].append(entry)
    return state


def bridges(state):
    """``{bridge: {"nics": [...], "vifs": [...], "stp": .., ...}}`` from a state dict.

    ``nics`` are the physical NICs (or their VLAN sub-interfaces) under the bridge,
    ``vifs`` the guests' ports (``vifD.N`` and the like).
    """
    found = {}
    for name, link in state["links"].items():
        if link["kind"] == "bridge":
            found[name] = {
                "nics": [],
                "vifs": [],
                "stp": link["stp"],
                "forward_delay": link["forward_delay"],
                "mtu": link["mtu"],
                "up": link["up"],
                "carrier": link["carrier"],
                "addresses": list(state["addrs"].get(name, [])),
            }
    for name, link in sorted(state["links"].items()):
        master = link.get("master")
        if master in found:
            key = "vifs" if VIF_NAME.match(name) else "nics"
            found[master][key].append(name)
    return found


def need(state, name):
    """Bridge ``name`` as :func:`bridges` gives it, or :class:`BridgeError` saying the host has none."""
    found = bridges(state)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise BridgeError(f"no bridge named {name} on this host (its bridges: {known})")
    return found[name]


# ---------------------------------------------------------------- the wanted bridge


def validate(data, path="bridge"):
    """Normalise a wanted bridge; returns ``(spec, problems)`` with key paths in the problems.

    Keys: ``name``; ``nic`` (the physical NIC to put under it; none = host-only);
    ``vlan`` (VLAN id 1-4094: the bridge goes over the sub-interface ``nic.vlan``);
    ``stp`` (default False); ``forward_delay`` seconds (0-30, default 0; 15 with STP);
    ``mtu`` (68-65535); ``addresses`` (list of ``ip/prefix``; default: whatever the NIC has).
    Names, numbers, booleans and addresses are checked with :mod:`saltext_xen.core.validate`,
    each problem as ``<path>:<key>: expected ...``.
    """
    problems = vocab.Problems()
    data = dict(data or {})
    spec = {}
    name = data.pop("name", None)
    spec["name"] = vocab.interface_name(name, vocab.key_path(path, "name"), problems)
    given_nic = data.pop("nic", None)
    nic = None
    if given_nic is not None:
        nic = vocab.interface_name(given_nic, vocab.key_path(path, "nic"), problems, what="a NIC name")
    spec["nic"] = nic
    vlan = data.pop("vlan", None)
    if vlan is not None:
        if given_nic is None:
            problems.add(vocab.key_path(path, "vlan"), "a VLAN needs a nic to run over")
        vlan = vocab.integer(vlan, vocab.key_path(path, "vlan"), problems, 1, 4094, what="a VLAN id")
    spec["vlan"] = vlan
    if spec["nic"] and vlan and len(f"{spec['nic']}.{vlan}") > vocab.INTERFACE_NAME_MAX:
        problems.add(
            vocab.key_path(path, "vlan"),
            f"the sub-interface name {spec['nic']}.{vlan} is longer than {vocab.INTERFACE_NAME_MAX} characters",
        )
    stp = vocab.boolean(data.pop("stp", False), vocab.key_path(path, "stp"), problems)
    spec["stp"] = bool(stp)
    delay = data.pop("forward_delay", None)
    if delay is None:
        delay = 15 if spec["stp"] else 0
    delay_path = vocab.key_path(path, "forward_delay")
    delay = vocab.integer(delay, delay_path, problems, 0, 30, what="seconds")
    if delay is not None and spec["stp"] and delay < 2:
        problems.add(delay_path, f"with stp on the kernel needs 2 to 30 seconds, got {delay}")
    spec["forward_delay"] = delay
    mtu = data.pop("mtu", None)
    if mtu is not None:
        mtu = vocab.integer(mtu, vocab.key_path(path, "mtu"), problems, 68, 65535, what="an MTU")
    spec["mtu"] = mtu
    addresses = data.pop("addresses", None)
    if addresses is not None:
        if isinstance(addresses, str):
            addresses = [addresses]
        addresses = vocab.sequence(
            addresses, vocab.key_path(path, "addresses"), problems, what="a list like [192.168.0.10/24]"
        )
        clean = []
        for i, addr in enumerate(addresses or []):
            found = vocab.cidr(addr, vocab.key_path(path, "addresses", i), problems, host=True)
            if found is not None:
                clean.append(found)
        addresses = clean
    spec["addresses"] = addresses
    vocab.unknown_keys(data, ("name", "nic", "vlan", "stp", "forward_delay", "mtu", "addresses"), path, problems)
    return spec, list(problems)


def nic_of(spec):
    """The NIC as it sits under the bridge: the NIC itself, or its VLAN sub-interface ``NIC.VLAN``."""
    if not spec.get("nic"):
        return None
    return f"{spec['nic']}.{spec['vlan']}" if spec.get("vlan") else spec["nic"]


# ---------------------------------------------------------------- planning


def _step(why, cmd, undo=None):
    return {"why": why, "cmd": list(cmd), "undo": list(undo) if undo else None}


def _family(addr):
    return 6 if ":" in addr else 4


def _addr_add(addr, dev):
    cmd = ["ip", "addr", "add", addr, "dev", dev]
    if _family(addr) == 6:
        cmd.append("nodad")  # the same host's address moving over: no duplicate to detect
    return cmd


def _route_cmd(route, dev, verb="replace"):
    cmd = ["ip", f"-{route['family']}", "route", verb, route["dst"]]
    if route.get("gateway"):
        cmd += ["via", route["gateway"]]
    cmd += ["dev", dev]
    for key, word in (("metric", "metric"), ("src", "src"), ("protocol", "proto")):
        if route.get(key) not in (None, ""):
            cmd += [word, str(route[key])]
    return cmd


def _route_text(route):
    via = f" via {route['gateway']}" if route.get("gateway") else ""
    return f"{route['dst']}{via}"


def plan(state, spec):
    """Ordered steps that turn ``state`` into the wanted bridge ``spec`` (validated).

    Each step is ``{"why": text, "cmd": argv, "undo": argv or None}``. An empty
    list means the bridge is already as wanted. Raises :class:`BridgeError` when
    the wish cannot be met (the NIC is missing, or already in another bridge).
    """
    links = state["links"]
    name = spec["name"]
    nic = spec.get("nic")
    port = nic_of(spec)
    steps = []
    bridge = links.get(name)
    if bridge is not None and bridge["kind"] != "bridge":
        raise BridgeError(f"{name} exists but is a {bridge['kind'] or 'plain'} interface, not a bridge")
    if nic:
        if nic not in links:
            raise BridgeError(f"NIC {nic} does not exist on this host")
        if nic in links and links[nic]["kind"] == "bridge":
            raise BridgeError(f"{nic} is itself a bridge; name the physical NIC to put under {name}")
        holder = links.get(port, {}).get("master")
        if holder and holder != name:
            raise BridgeError(f"{port} is already a port of {holder}; take it out of {holder} first")
        if port != nic and port in links and links[port]["kind"] != "vlan":
            raise BridgeError(f"{port} exists but is not a VLAN sub-interface of {nic}")
        if port != nic and port in links and links[port].get("vlan") not in (None, spec["vlan"]):
            raise BridgeError(f"{port} exists with VLAN id {links[port].get('vlan')}, not {spec['vlan']}")
    delay_cs = str(spec["forward_delay"] * 100)
    stp = "1" if spec["stp"] else "0"

    if bridge is None:
        create = ["ip", "link", "add", "name", name]
        if nic and port in links:
            create += ["address", links[port]["mac"]]
        elif nic:
            create += ["address", links[nic]["mac"]]
        create += ["type", "bridge", "stp_state", stp, "forward_delay", delay_cs]
        steps.append(_step(f"create bridge {name}", create, ["ip", "link", "del", name]))
    else:
        # the kernel refuses a delay under 2 s while STP is on: change the delay while
        # STP is off (before turning it on, after turning it off); undo runs in reverse
        set_br = ["ip", "link", "set", "dev", name, "type", "bridge"]
        delay_step = None
        if bridge["forward_delay"] != spec["forward_delay"]:
            delay_step = _step(
                f"set forward delay {spec['forward_delay']}s on {name}",
                set_br + ["forward_delay", delay_cs],
                set_br + ["forward_delay", str(bridge["forward_delay"] * 100)],
            )
        stp_step = None
        if bridge["stp"] != spec["stp"]:
            stp_step = _step(
                f"turn STP {'on' if spec['stp'] else 'off'} on {name}",
                set_br + ["stp_state", stp],
                set_br + ["stp_state", "1" if bridge["stp"] else "0"],
            )
        order = [delay_step, stp_step] if spec["stp"] else [stp_step, delay_step]
        steps.extend(step for step in order if step)

    if nic and port != nic and port not in links:
        if not links[nic]["up"]:
            steps.append(
                _step(
                    f"bring {nic} up",
                    ["ip", "link", "set", "dev", nic, "up"],
                    ["ip", "link", "set", "dev", nic, "down"],
                )
            )
        steps.append(
            _step(
                f"create VLAN {spec['vlan']} sub-interface {port} on {nic}",
                ["ip", "link", "add", "link", nic, "name", port, "type", "vlan", "id", str(spec["vlan"])],
                ["ip", "link", "del", port],
            )
        )

    if bridge is None or not bridge["up"]:
        steps.append(
            _step(
                f"bring {name} up",
                ["ip", "link", "set", "dev", name, "up"],
                ["ip", "link", "set", "dev", name, "down"] if bridge is not None else None,
            )
        )

    bridge_addrs = list(state["addrs"].get(name, [])) if bridge is not None else []
    port_addrs = list(state["addrs"].get(port, [])) if port and port in links else []
    enslaved = bool(port) and links.get(port, {}).get("master") == name
    wanted_addrs = spec["addresses"] if spec.get("addresses") is not None else None
    moving = [] if enslaved or not port else port_addrs
    # addresses the bridge should carry: the explicit list, else the bridge's own plus the NIC's
    target = wanted_addrs if wanted_addrs is not None else bridge_addrs + [a for a in moving if a not in bridge_addrs]

    for addr in target:
        if addr not in bridge_addrs:
            steps.append(
                _step(f"put {addr} on {name}", _addr_add(addr, name), ["ip", "addr", "del", addr, "dev", name])
            )

    if port and not enslaved:
        if port != nic or not links[port]["up"]:
            steps.append(
                _step(
                    f"bring {port} up",
                    ["ip", "link", "set", "dev", port, "up"],
                    ["ip", "link", "set", "dev", port, "down"] if port in links else None,
                )
            )
        steps.append(
            _step(
                f"make {port} a port of {name}",
                ["ip", "link", "set", "dev", port, "master", name],
                ["ip", "link", "set", "dev", port, "nomaster"],
            )
        )
        for route in state["routes"]:
            if route["dev"] == port:
                steps.append(
                    _step(
                        f"send {_route_text(route)} through {name} instead of {port}",
                        _route_cmd(route, name),
                        _route_cmd(route, port),
                    )
                )
        for addr in port_addrs:
            steps.append(
                _step(f"take {addr} off {port}", ["ip", "addr", "del", addr, "dev", port], _addr_add(addr, port))
            )
    elif port and enslaved:
        for addr in port_addrs:  # a bridge port should not hold addresses of its own
            if addr in target:
                steps.append(
                    _step(f"take {addr} off {port}", ["ip", "addr", "del", addr, "dev", port], _addr_add(addr, port))
                )

    if wanted_addrs is not None:
        for addr in bridge_addrs:
            if addr not in wanted_addrs:
                steps.append(
                    _step(f"take {addr} off {name}", ["ip", "addr", "del", addr, "dev", name], _addr_add(addr, name))
                )

    if spec.get("mtu") is not None:
        if port and links.get(port, {}).get("mtu") != spec["mtu"]:
            if port != nic and links[nic]["mtu"] < spec["mtu"]:
                steps.append(
                    _step(
                        f"set MTU {spec['mtu']} on {nic}",
                        ["ip", "link", "set", "dev", nic, "mtu", str(spec["mtu"])],
                        ["ip", "link", "set", "dev", nic, "mtu", str(links[nic]["mtu"])],
                    )
                )
            old = links.get(port, {}).get("mtu") or links[nic]["mtu"]
            steps.append(
                _step(
                    f"set MTU {spec['mtu']} on {port}",
                    ["ip", "link", "set", "dev", port, "mtu", str(spec["mtu"])],
                    ["ip", "link", "set", "dev", port, "mtu", str(old)],
                )
            )
        if bridge is None or bridge["mtu"] != spec["mtu"]:
            undo = ["ip", "link", "set", "dev", name, "mtu", str(bridge["mtu"])] if bridge is not None else None
            steps.append(
                _step(
                    f"set MTU {spec['mtu']} on {name}",
                    ["ip", "link", "set", "dev", name, "mtu", str(spec["mtu"])],
                    undo,
                )
            )
    return steps


def plan_remove(state, name, guests=(), force=False):
    """Steps that take bridge ``name`` away and give its addresses and routes back to its NIC.

    ``guests`` names the guests using the bridge (from libvirt); guest ports
    (``vifD.N``) on the bridge count too. Refused with :class:`BridgeInUse`
    unless ``force``. Returns ``[]`` when there is no such bridge.
    """
    links = state["links"]
    if name not in links:
        return []
    if links[name]["kind"] != "bridge":
        raise BridgeError(f"{name} is a {links[name]['kind'] or 'plain'} interface, not a bridge; not removing it")
    info = bridges(state)[name]
    users = set(guests) | set(info["vifs"])
    if users and not force:
        raise BridgeInUse(name, users)
    steps = []
    nic = info["nics"][0] if info["nics"] else None
    addrs = list(state["addrs"].get(name, []))
    if nic:
        for addr in addrs:
            steps.append(
                _step(f"put {addr} back on {nic}", _addr_add(addr, nic), ["ip", "addr", "del", addr, "dev", nic])
            )
        steps.append(
            _step(
                f"take {nic} out of {name}",
                ["ip", "link", "set", "dev", nic, "nomaster"],
                ["ip", "link", "set", "dev", nic, "master", name],
            )
        )
        for route in state["routes"]:
            if route["dev"] == name:
                steps.append(
                    _step(
                        f"send {_route_text(route)} through {nic} instead of {name}",
                        _route_cmd(route, nic),
                        _route_cmd(route, name),
                    )
                )
    for port in info["nics"][1:] + info["vifs"]:
        steps.append(
            _step(
                f"take {port} out of {name}",
                ["ip", "link", "set", "dev", port, "nomaster"],
                ["ip", "link", "set", "dev", port, "master", name],
            )
        )
    steps.append(_step(f"delete bridge {name}", ["ip", "link", "del", name], None))
    return steps


def describe(steps):
    """The steps as lines an operator can read (and type)."""
    return [f"{step['why']}: {' '.join(step['cmd'])}" for step in steps]


# ---------------------------------------------------------------- applying


def check(state, spec):
    """Why the bridge in ``state`` is not up as ``spec`` wants, or None when it is."""
    name = spec["name"]
    link = state["links"].get(name)
    if link is None or link["kind"] != "bridge":
        return f"{name} does not exist"
    if not link["up"]:
        return f"{name} is down"
    port = nic_of(spec)
    if port:
        if state["links"].get(port, {}).get("master") != name:
            return f"{port} is not a port of {name}"
        if state["links"][port]["carrier"] and not link["carrier"]:
            return f"{name} has no carrier although {port} has one (its port is not forwarding)"
    return None


def run_step(runner, cmd, netns=None, undo=False):
    """Run one command of a plan; None when it worked, else what went wrong, in words.

    ``'CMD' failed: ERROR`` for a step, ``'CMD': ERROR`` for an ``undo`` command
    (a rollback lists those after saying what failed).
    """
    res = _run(runner, cmd, netns)
    if res["retcode"] == 0:
        return None
    return f"'{' '.join(cmd)}'{'' if undo else ' failed'}: {(res['stderr'] or res['stdout']).strip()}"


def wait_until(verify, timeout, sleep=time.sleep):
    """Call ``verify()`` every 0.2 s until it returns None or ``timeout`` seconds have passed.

    Returns its last answer: None when all is well, else the reason it still gives.
    """
    deadline = time.monotonic() + timeout
    while True:
        reason = verify()
        if reason is None or time.monotonic() >= deadline:
            return reason
        sleep(0.2)


def rollback_error(failure, errors, undone=()):
    """The :class:`BridgeError` for ``failure`` once rolled back: ``errors`` (what could not be
    undone) when there are any, else that all was undone (``undone``: what, in words)."""
    if errors:
        return BridgeError(f"{failure}; rolling back also failed, the host may need a hand: " + "; ".join(errors))
    return BridgeError(f"{failure}; everything done before was undone" + (f" ({'; '.join(undone)})" if undone else ""))


def apply(steps, runner, netns=None, verify=None, timeout=None, sleep=time.sleep):
    """Run ``steps`` in order; on a failure undo the finished ones, newest first.

    ``verify`` (optional) is called with no argument after the last step and
    returns None when all is well or a reason; it is retried until ``timeout``
    seconds have passed, and if it still fails everything is undone.
    Returns the list of step descriptions done. Raises :class:`BridgeError`
    with what failed and whether the rollback worked.
    """
    done = []
    failure = None
    for step in steps:
        failure = run_step(runner, step["cmd"], netns)
        if failure is not None:
            break
        done.append(step)
    if failure is None and verify is not None and steps:
        reason = wait_until(verify, timeout if timeout is not None else 5, sleep)
        if reason is not None:
            failure = f"the bridge did not come up: {reason}"
    if failure is None:
        return describe(done)
    undo_errors = []
    for step in reversed(done):
        if step["undo"]:
            error = run_step(runner, step["undo"], netns, undo=True)
            if error is not None:
                undo_errors.append(error)
    raise rollback_error(failure, undo_errors)


def ensure(spec, runner, netns=None, test=False, timeout=None):
    """Read, plan and (unless ``test``) apply; returns ``{"steps": [...], "state": before}``.

    The wait for the bridge is ``2 * forward_delay + 5`` seconds with STP on, 5 without.
    """
    before = read(runner, netns)
    steps = plan(before, spec)
    if test or not steps:
        return {"steps": describe(steps), "state": before}
    if timeout is None:
        timeout = 2 * spec["forward_delay"] + 5 if spec["stp"] else 5

    def verify():
        return check(read(runner, netns), spec)

    done = apply(steps, runner, netns=netns, verify=verify, timeout=timeout)
    return {"steps": done, "state": before}


def remove(name, runner, netns=None, guests=(), force=False, test=False):
    """Read, plan the removal and (unless ``test``) run it; returns the step descriptions."""
    steps = plan_remove(read(runner, netns), name, guests=guests, force=force)
    if test or not steps:
        return describe(steps)
    return apply(steps, runner, netns=netns)


# ---------------------------------------------------------------- topology


def topology(state, guests, networks=None):
    """Which guest NIC sits on which bridge and which physical NIC.

    ``guests``: ``[{"name", "domid", "nics": [{"mac", "bridge", "network", "target"}]}]``
    (``domid`` None when the guest is not running); ``networks`` maps libvirt
    network names to their bridges. Returns ``{"bridges": {br: {"nics", "vifs", "guests"}}, "lines": [...]}``
    (``nics``: the physical NICs under the bridge, ``vifs``: the guests' ports on it)
    where each line reads like the tutorial: ``vm02 nic0 00:16:3e:.. -> vif1.0 -> xenbr0 -> eth0``.
    """
    networks = networks or {}
    found = bridges(state)
    targets = {nic.get("target") for guest in guests for nic in guest.get("nics") or [] if nic.get("target")}
    for info in found.values():  # a guest's port under a driver-specific name is no physical NIC either
        info["vifs"] += [p for p in info["nics"] if p in targets]
        info["nics"] = [p for p in info["nics"] if p not in targets]
    result = {br: {"nics": info["nics"], "vifs": info["vifs"], "guests": []} for br, info in found.items()}
    lines = []
    for guest in guests:
        for index, nic in enumerate(guest.get("nics") or []):
            bridge = nic.get("bridge") or networks.get(nic.get("network"))
            vif = nic.get("target")
            if not vif and guest.get("domid") not in (None, -1):
                vif = f"vif{guest['domid']}.{index}"
            entry = {
                "guest": guest["name"],
                "nic": index,
                "mac": nic.get("mac"),
                "vif": vif,
                "bridge": bridge,
                "network": nic.get("network"),
            }
            nics = found.get(bridge, {}).get("nics", []) if bridge else []
            if bridge:
                missing = {"nics": [], "vifs": [], "guests": [], "missing": True}
                result.setdefault(bridge, missing)["guests"].append(entry)
            hops = [
                f"{guest['name']} nic{index} {nic.get('mac') or ''}".rstrip(),
                vif or "(not running)",
                bridge or "(no bridge)",
            ]
            if nic.get("network"):
                hops[-1] += f" [network {nic['network']}]"
            hops.append(", ".join(nics) if nics else "(no physical NIC)")
            lines.append(" -> ".join(hops))
    return {"bridges": result, "lines": lines}


# ---------------------------------------------------------------- what the bridge ends up with


def addresses_after(state, spec):
    """The addresses the bridge holds once ``spec`` is applied (what persistence must write)."""
    if spec.get("addresses") is not None:
        return list(spec["addresses"])
    name, port = spec["name"], nic_of(spec)
    have = list(state["addrs"].get(name, [])) if name in state["links"] else []
    if port and port in state["links"]:
        have += [a for a in state["addrs"].get(port, []) if a not in have]
    return have


def gateways_after(state, spec):
    """``(ipv4 gateway, ipv6 gateway)`` of the default routes that end up on the bridge."""
    devs = {spec["name"], nic_of(spec)}
    found = {4: None, 6: None}
    for route in state["routes"]:
        if route["dst"] == "default" and route["dev"] in devs and route.get("gateway") and not found[route["family"]]:
            found[route["family"]] = route["gateway"]
    return found[4], found[6]
