"""Bridges over a NIC that NetworkManager manages: keyfiles first, then NetworkManager brings them up.

On a host where NetworkManager runs and manages the NIC, moving the NIC into a
bridge with ``ip`` behind NetworkManager's back makes the two fight (it takes
the NIC back, drops addresses). There the bridge is made the way NetworkManager
wants it, so what runs now and what comes back after a reboot are the same thing:

1. write the keyfiles (bridge connection + the NIC as its port), atomically, mode 0600
2. ``nmcli connection reload``
3. ``nmcli connection up uuid BRIDGE-UUID`` (the bridge keyfile has ``autoconnect-slaves=1``,
   so its port comes up with it and leaves the NIC's old connection)
4. check that the bridge forwards over the NIC and holds the addresses and default route

If step 2 or 3 fails or the check does not pass in time, the NIC's previous
connection is brought up again, the new bridge connection is taken down, the
keyfiles are put back as they were (new ones removed) and NetworkManager reloads.

:func:`read` asks ``nmcli`` what NetworkManager has (None when it is not there or
not running), :func:`manages` says whether the NM way applies, :func:`plan`
(pure apart from reading the keyfiles under ``root``) returns what would be done,
and :func:`apply` does it. Runners and ``netns`` are as in :mod:`saltext_xen.bridges`.
"""
import os
import time

from saltext_xen import bridge_persist
from saltext_xen import bridges

KEYFILE_DIR = "/etc/NetworkManager/system-connections"
RUNTIME_DIR = "/run/NetworkManager/system-connections"  # NetworkManager forgets these at reboot
_UNMANAGED = ("unmanaged", "connected (externally)")


# ---------------------------------------------------------------- reading NetworkManager


def split_terse(line):
    """Split one line of ``nmcli -t`` output at unescaped colons (``\\:`` and ``\\\\`` are escapes)."""
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _none(value):
    return None if value in ("", "--") else value


def parse(devices_text, connections_text):
    """``{"devices": {dev: {"state", "connection"}}, "connections": {uuid: {...}}}`` from ``nmcli -t`` output.

    ``devices_text`` is ``nmcli -t -f DEVICE,STATE,CONNECTION device``;
    ``connections_text`` is ``nmcli -t -f NAME,UUID,TYPE,DEVICE,ACTIVE,FILENAME connection show``.
    """
    found = {"devices": {}, "connections": {}}
    for line in devices_text.splitlines():
        if not line.strip():
            continue
        dev, state, conn = (split_terse(line) + ["", ""])[:3]
        found["devices"][dev] = {"state": state, "connection": _none(conn)}
    for line in connections_text.splitlines():
        if not line.strip():
            continue
        name, uuid, kind, dev, active, filename = (split_terse(line) + [""] * 5)[:6]
        found["connections"][uuid] = {"name": name, "type": kind, "device": _none(dev),
                                      "active": active == "yes", "filename": _none(filename)}
    return found


def read(runner, netns=None):
    """What NetworkManager has, as :func:`parse` returns it; None when nmcli is missing or NM is not running."""
    argv_dev = ["nmcli", "-t", "-f", "DEVICE,STATE,CONNECTION", "device"]
    argv_con = ["nmcli", "-t", "-f", "NAME,UUID,TYPE,DEVICE,ACTIVE,FILENAME", "connection", "show"]
    try:
        devs = _run(runner, argv_dev, netns)
        if devs["retcode"] != 0:  # 8: NetworkManager is not running
            return None
        cons = _run(runner, argv_con, netns)
    except Exception:  # pylint: disable=broad-except  # no nmcli at all (OSError, or Salt's wrapper of it)
        return None
    if cons["retcode"] != 0:
        return None
    return parse(devs["stdout"], cons["stdout"])


def manages(nm, spec):
    """True when NetworkManager runs and manages the NIC under ``spec`` (its parent for a VLAN).

    A host-only bridge, a NIC NetworkManager leaves alone (``unmanaged``) or only
    watches (``connected (externally)``): False, and the ``ip`` way of
    :mod:`saltext_xen.bridges` applies as before.
    """
    if nm is None or not spec.get("nic"):
        return False
    device = nm["devices"].get(spec["nic"])
    return device is not None and device["state"] not in _UNMANAGED


# ---------------------------------------------------------------- the keyfiles


def _sections(text):
    """A keyfile as ``{section: {key: value}}`` (enough for NetworkManager's own files)."""
    found, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = found.setdefault(line[1:-1], {})
        elif section is not None and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            section[key.strip()] = value.strip()
    return found


def connection_method(nm, uuid):
    """How connection ``uuid`` gets its IPv4 address (``auto`` = DHCP, ``manual``, ...), read from
    its file (keyfile, or ifcfg on RHEL 8); None when NetworkManager does not say where it is."""
    conn = (nm or {}).get("connections", {}).get(uuid) or {}
    filename = conn.get("filename")
    if not filename:
        return None
    try:
        with open(filename, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    if os.path.basename(filename).startswith("ifcfg-"):
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "BOOTPROTO":
                return "auto" if value.strip().strip("'\"") in ("dhcp", "bootp") else "manual"
        return None
    return _sections(text).get("ipv4", {}).get("method")


def uses_dhcp(nm, spec):
    """True when the NIC's connection now (or the bridge's own, once it runs) takes IPv4 from DHCP."""
    prev = previous(nm, spec) if nm else None
    uuid = prev["uuid"] if prev else bridge_persist.nm_uuid(spec["name"])
    return connection_method(nm, uuid) == "auto"


def keyfiles(state, spec, dhcp=False, persist=True, nm=None):
    """``{path: (text, 0o600)}`` of the bridge and port connections for the bridge as it ends up.

    Addresses and gateways are the ones the bridge ends up with (the NIC's, unless
    ``spec`` names them); the bridge gets the port's MAC. ``dhcp=None``: DHCP when
    the NIC's connection in ``nm`` uses it (and ``spec`` names no addresses), so a
    leased address is not frozen into the bridge. ``persist=False`` puts the files
    in NetworkManager's runtime directory, which it forgets at reboot.
    """
    if dhcp is None:
        dhcp = spec.get("addresses") is None and uses_dhcp(nm, spec)
    keep = dict(spec)
    gw4, gw6 = bridges.gateways_after(state, spec)
    keep["addresses"] = [a for a in bridges.addresses_after(state, spec) if not (dhcp and ":" not in a)]
    port = bridges.port_of(spec)
    link = state["links"].get(port) or state["links"].get(spec["nic"]) or {}
    if link.get("mac"):
        keep["mac"] = link["mac"]
    files = bridge_persist.render("nm-keyfile", keep, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp)
    if not persist:
        files = {RUNTIME_DIR + path[len(KEYFILE_DIR):]: value for path, value in files.items()}
    return files


# ---------------------------------------------------------------- planning


def _ids(spec):
    name, port = spec["name"], bridges.port_of(spec)
    return {"bridge": name, "bridge_uuid": bridge_persist.nm_uuid(name),
            "port": f"{name}-port-{port}", "port_uuid": bridge_persist.nm_uuid(f"{name}-port-{port}")}


def _connected(nm, device, uuid):
    dev = nm["devices"].get(device) or {}
    conn = nm["connections"].get(uuid) or {}
    return dev.get("state") == "connected" and conn.get("active") and conn.get("device") == device


def previous(nm, spec):
    """The connection the bridge's port device has now, when it is not ours: ``{"name", "uuid"}`` or None."""
    port = bridges.port_of(spec)
    ours = set(_ids(spec).values())
    for uuid, conn in sorted(nm["connections"].items()):
        if conn["active"] and conn["device"] == port and uuid not in ours:
            return {"name": conn["name"], "uuid": uuid}
    return None


def plan(state, nm, spec, files, root="/"):
    """What it takes to have bridge ``spec`` through NetworkManager, from the host's ``state`` and ``nm``.

    Returns ``{"steps": [...], "files": files, "file_changes": {path: "created"|"updated"},
    "previous": {...} or None, "addresses": [...], "gateways": (gw4, gw6)}``; ``steps``
    (shaped like :func:`saltext_xen.bridges.plan`'s, without undo: :func:`apply` rolls back)
    is empty and ``file_changes`` too when the keyfiles are as wanted, NetworkManager has
    loaded them, both connections are active and the live bridge is as wanted.
    Raises :class:`saltext_xen.bridges.BridgeError` for the same reasons as
    :func:`saltext_xen.bridges.plan` (missing NIC, NIC in another bridge, ...).
    """
    ids = _ids(spec)
    name, port = spec["name"], bridges.port_of(spec)
    live_spec = dict(spec)
    if not spec["stp"] and name in state["links"]:  # NM sets its own delay (15 s); without STP it means nothing
        live_spec["forward_delay"] = state["links"][name].get("forward_delay", spec["forward_delay"])
    live = bridges.plan(state, live_spec)  # raises for an impossible wish; non-empty when the live bridge differs
    file_changes = bridge_persist.pending(files, root)
    loaded = all(ids[key] in nm["connections"] for key in ("bridge_uuid", "port_uuid"))
    active = _connected(nm, name, ids["bridge_uuid"]) and _connected(nm, port, ids["port_uuid"])
    wanted = {"addresses": [], "gateways": [None, None], "dhcp": False}  # what the bridge keyfile says
    for path, (text, _mode) in files.items():
        if path.endswith(f"/{name}.nmconnection"):
            ini = _sections(text)
            wanted["dhcp"] = ini.get("ipv4", {}).get("method") == "auto"
            for index, family in enumerate(("ipv4", "ipv6")):
                for key, value in sorted(ini.get(family, {}).items()):
                    if key.startswith("address") and key[7:].isdigit():
                        addr, _, gateway = value.partition(",")
                        wanted["addresses"].append(addr)
                        wanted["gateways"][index] = wanted["gateways"][index] or gateway or None
    found = {"steps": [], "files": files, "file_changes": file_changes, "previous": previous(nm, spec),
             "addresses": wanted["addresses"], "gateways": tuple(wanted["gateways"]), "dhcp": wanted["dhcp"],
             "ids": ids, "spec": dict(spec), "bridge_active": _connected(nm, name, ids["bridge_uuid"])}
    if file_changes or not loaded:
        found["steps"].append(_step("make NetworkManager read the keyfiles", ["nmcli", "connection", "reload"]))
    if file_changes or not loaded or not active or live or check(state, found):
        found["steps"].append(_step(f"bring {name} up through NetworkManager with {port} as its port",
                                    ["nmcli", "connection", "up", "uuid", ids["bridge_uuid"]]))
    return found


def _step(why, cmd):
    return {"why": why, "cmd": list(cmd), "undo": None}


def _run(runner, argv, netns):
    return runner((["ip", "netns", "exec", netns] if netns else []) + list(argv))


# ---------------------------------------------------------------- checking and applying


def check(state, nmplan):
    """Why the bridge in ``state`` is not yet as planned, or None: up, forwarding, addresses and default route."""
    spec = nmplan["spec"]
    reason = bridges.check(state, spec)
    if reason:
        return reason
    name = spec["name"]
    have = state["addrs"].get(name, [])
    missing = [a for a in nmplan["addresses"] if a not in have]
    if missing:
        return f"{name} does not hold {', '.join(missing)} yet"
    if nmplan.get("dhcp") and not any(":" not in a for a in have):
        return f"{name} has no IPv4 address from DHCP yet"
    for family, gateway in zip((4, 6), nmplan["gateways"]):
        if gateway and not any(r["dst"] == "default" and r["dev"] == name and r["family"] == family
                               for r in state["routes"]):
            return f"the default route via {gateway} is not on {name} yet"
    return None


def _snapshot(paths, root):
    """``{path: (text, mode) or None}`` of the files as they are now (None: no such file)."""
    saved = {}
    for path in paths:
        full = os.path.join(root, path.lstrip("/"))
        try:
            with open(full, encoding="utf-8") as handle:
                saved[path] = (handle.read(), os.stat(full).st_mode & 0o777)
        except (FileNotFoundError, NotADirectoryError):
            saved[path] = None
    return saved


def _restore(saved, root):
    bridge_persist.remove([p for p, old in saved.items() if old is None], root)
    bridge_persist.write({p: old for p, old in saved.items() if old is not None}, root)


def apply(nmplan, runner, netns=None, root="/", timeout=5, sleep=time.sleep):
    """Write the keyfiles, run the ``nmcli`` steps and wait until :func:`check` passes.

    Returns the descriptions of the steps done. On a failure (a file, a step, or the
    check still failing after ``timeout`` seconds) it rolls back: the NIC's previous
    connection up again, the new bridge connection down, the keyfiles as they were,
    NetworkManager reloaded. Raises :class:`saltext_xen.bridges.BridgeError` saying
    what failed and whether the rollback worked.
    """
    steps = nmplan["steps"]
    if not steps and not nmplan["file_changes"]:
        return []
    saved = _snapshot(nmplan["files"], root)
    failure, done, tried = None, [], []
    try:
        bridge_persist.write(nmplan["files"], root)
    except OSError as exc:
        failure = f"the keyfiles could not be written: {exc}"
    for step in steps if failure is None else []:
        tried.append(step["cmd"][2])  # reload / up: what the rollback has to answer
        res = _run(runner, step["cmd"], netns)
        if res["retcode"] != 0:
            failure = f"'{' '.join(step['cmd'])}' failed: {(res['stderr'] or res['stdout']).strip()}"
            break
        done.append(step)
    if failure is None and steps:
        deadline = time.monotonic() + timeout
        while True:
            reason = check(bridges.read(runner, netns), nmplan)
            if reason is None:
                break
            if time.monotonic() >= deadline:
                failure = f"the bridge did not come up: {reason}"
                break
            sleep(0.2)
    if failure is None:
        return bridges.describe(done)
    errors, words = _rollback(nmplan, saved, runner, netns, root, tried)
    if errors:
        raise bridges.BridgeError(f"{failure}; rolling back also failed, the host may need a hand: "
                                  + "; ".join(errors))
    raise bridges.BridgeError(f"{failure}; everything done before was undone ({'; '.join(words)})")


def _rollback(nmplan, saved, runner, netns, root, tried):
    """Undo :func:`apply`, connectivity first; returns ``(what could not be undone, what was undone)``.

    ``tried`` names the nmcli steps that ran (``reload``, ``up``); only their effects are undone.
    """
    errors, words = [], []
    ids, spec = nmplan["ids"], nmplan["spec"]

    def nmcli(*argv, quiet=False):
        res = _run(runner, ["nmcli"] + list(argv), netns)
        if res["retcode"] != 0 and not quiet:
            errors.append(f"'nmcli {' '.join(argv)}': {(res['stderr'] or res['stdout']).strip()}")

    if "up" in tried and nmplan["previous"]:  # the NIC, its addresses and routes back first: the host stays reachable
        nmcli("connection", "up", "uuid", nmplan["previous"]["uuid"])
        words.append(f"{bridges.port_of(spec)} is back on its connection '{nmplan['previous']['name']}'")
    if "up" in tried and not nmplan["bridge_active"]:  # it may not have come up at all: no complaint
        nmcli("connection", "down", "uuid", ids["bridge_uuid"], quiet=True)
    try:
        _restore(saved, root)
        words.append("the keyfiles are as they were")
    except OSError as exc:
        errors.append(f"the keyfiles could not be put back: {exc}")
    if tried:
        nmcli("connection", "reload")
    if "up" in tried and nmplan["bridge_active"]:
        nmcli("connection", "up", "uuid", ids["bridge_uuid"])
        words.append(f"{spec['name']} runs with its old settings")
    return errors, words
