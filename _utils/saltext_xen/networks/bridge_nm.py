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
and :func:`apply` does it. Runners and ``netns`` are as in :mod:`saltext_xen.networks.bridges`.

Taking such a bridge away is the reverse (:func:`manages_bridge`, :func:`plan_remove`,
:func:`apply_remove`): the NIC's own connection (:func:`original`, the one it had before
the bridge) comes up again first, then the bridge goes down, its keyfiles and its port's
are removed and NetworkManager reloads; if the NIC does not get its addresses back,
the keyfiles come back and the bridge comes up again.
"""

import glob
import ipaddress
import os
import time

from saltext_xen.networks import bridge_persist, bridges

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
        found["connections"][uuid] = {
            "name": name,
            "type": kind,
            "device": _none(dev),
            "active": active == "yes",
            "filename": _none(filename),
        }
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
    except Exception:  # no nmcli at all (OSError, or Salt's wrapper of it)
        return None
    if cons["retcode"] != 0:
        return None
    return parse(devs["stdout"], cons["stdout"])


def manages(nm, spec):
    """True when NetworkManager runs and manages the NIC under ``spec`` (its parent for a VLAN).

    A host-only bridge, a NIC NetworkManager leaves alone (``unmanaged``) or only
    watches (``connected (externally)``): False, and the ``ip`` way of
    :mod:`saltext_xen.networks.bridges` applies as before.
    """
    if nm is None or not spec.get("nic"):
        return False
    device = nm["devices"].get(spec["nic"])
    return device is not None and device["state"] not in _UNMANAGED


# ---------------------------------------------------------------- the keyfiles


def _sections(text):
    """A keyfile as ``{section: {key: value}}`` (enough for NetworkManager's own files)."""
    found, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = found.setdefault(line[1:-1], {})
        elif section is not None and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            section[key.strip()] = value.strip()
    return found


def _ifcfg(text):
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _ifcfg_ip(text):
    values = _ifcfg(text)
    found = {"dhcp": values.get("BOOTPROTO") in ("dhcp", "bootp"), "addresses": []}
    for key in sorted(
        (k for k in values if k.startswith("IPADDR") and (k[6:].isdigit() or k == "IPADDR")),
        key=lambda k: int(k[6:] or -1),
    ):
        suffix = key[6:]
        prefix = values.get(f"PREFIX{suffix}")
        if not prefix and values.get(f"NETMASK{suffix}"):
            try:
                prefix = str(ipaddress.ip_network(f"0.0.0.0/{values[f'NETMASK{suffix}']}").prefixlen)
            except ValueError:
                prefix = None
        found["addresses"].append(f"{values[key]}/{prefix}" if prefix else values[key])  # bare: any prefix will do
    if values.get("IPV6INIT", "yes") != "no":
        found["addresses"] += [
            a for a in [values.get("IPV6ADDR")] + values.get("IPV6ADDR_SECONDARIES", "").split() if a
        ]
    found["gateways"] = (values.get("GATEWAY") or None, (values.get("IPV6_DEFAULTGW") or "").split("%")[0] or None)
    return found


def ip_settings(text, filename=""):
    """What a connection file gives its device: ``{"dhcp": IPv4 from DHCP, "addresses": [...],
    "gateways": (gw4, gw6)}``; a keyfile, or an ``ifcfg-*`` file (RHEL 8) when ``filename`` says so."""
    if os.path.basename(filename).startswith("ifcfg-"):
        return _ifcfg_ip(text)
    ini = _sections(text)
    found = {"dhcp": ini.get("ipv4", {}).get("method") == "auto", "addresses": []}
    gateways = [None, None]
    for index, family in enumerate(("ipv4", "ipv6")):
        section = ini.get(family, {})
        if section.get("method") in ("disabled", "ignore", "link-local"):
            continue
        keys = [k for k in section if k.startswith("address") and k[7:].isdigit()]
        for key in sorted(keys, key=lambda k: int(k[7:])):
            addr, _, gateway = section[key].partition(",")
            found["addresses"].append(addr.strip())
            gateways[index] = gateways[index] or gateway.strip() or None
        gateways[index] = gateways[index] or section.get("gateway") or None
    found["gateways"] = tuple(gateways)
    return found


def _connection_text(nm, uuid):
    """``(text, filename)`` of connection ``uuid``'s file, or ``(None, None)`` when there is none to read."""
    filename = ((nm or {}).get("connections", {}).get(uuid) or {}).get("filename")
    if not filename:
        return None, None
    try:
        with open(filename, encoding="utf-8") as handle:
            return handle.read(), filename
    except OSError:
        return None, None


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
    port = bridges.nic_of(spec)
    link = state["links"].get(port) or state["links"].get(spec["nic"]) or {}
    if link.get("mac"):
        keep["mac"] = link["mac"]
    files = bridge_persist.render("nm-keyfile", keep, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp)
    if not persist:
        files = {RUNTIME_DIR + path[len(KEYFILE_DIR) :]: value for path, value in files.items()}
    return files


# ---------------------------------------------------------------- planning


def _ids(spec):
    name, port = spec["name"], bridges.nic_of(spec)
    return {
        "bridge": name,
        "bridge_uuid": bridge_persist.nm_uuid(name),
        "port": f"{name}-port-{port}",
        "port_uuid": bridge_persist.nm_uuid(f"{name}-port-{port}"),
    }


def _connected(nm, device, uuid):
    dev = nm["devices"].get(device) or {}
    conn = nm["connections"].get(uuid) or {}
    return dev.get("state") == "connected" and conn.get("active") and conn.get("device") == device


def previous(nm, spec):
    """The connection the bridge's port device has now, when it is not ours: ``{"name", "uuid"}`` or None."""
    port = bridges.nic_of(spec)
    ours = set(_ids(spec).values())
    for uuid, conn in sorted(nm["connections"].items()):
        if conn["active"] and conn["device"] == port and uuid not in ours:
            return {"name": conn["name"], "uuid": uuid}
    return None


def plan(state, nm, spec, files, root="/"):
    """What it takes to have bridge ``spec`` through NetworkManager, from the host's ``state`` and ``nm``.

    Returns ``{"steps": [...], "files": files, "file_changes": {path: "created"|"updated"},
    "previous": {...} or None, "addresses": [...], "gateways": (gw4, gw6)}``; ``steps``
    (shaped like :func:`saltext_xen.networks.bridges.plan`'s, without undo: :func:`apply` rolls back)
    is empty and ``file_changes`` too when the keyfiles are as wanted, NetworkManager has
    loaded them, both connections are active and the live bridge is as wanted.
    Raises :class:`saltext_xen.networks.bridges.BridgeError` for the same reasons as
    :func:`saltext_xen.networks.bridges.plan` (missing NIC, NIC in another bridge, ...).
    """
    ids = _ids(spec)
    name, port = spec["name"], bridges.nic_of(spec)
    live_spec = dict(spec)
    if not spec["stp"] and name in state["links"]:  # NM sets its own delay (15 s); without STP it means nothing
        live_spec["forward_delay"] = state["links"][name].get("forward_delay", spec["forward_delay"])
    live = bridges.plan(state, live_spec)  # raises for an impossible wish; non-empty when the live bridge differs
    file_changes = bridge_persist.pending(files, root)
    loaded = all(ids[key] in nm["connections"] for key in ("bridge_uuid", "port_uuid"))
    active = _connected(nm, name, ids["bridge_uuid"]) and _connected(nm, port, ids["port_uuid"])
    wanted = {"addresses": [], "gateways": (None, None), "dhcp": False}  # what the bridge keyfile says
    for path, (text, _mode) in files.items():
        if path.endswith(f"/{name}.nmconnection"):
            wanted = ip_settings(text)
    found = {
        "steps": [],
        "files": files,
        "file_changes": file_changes,
        "previous": previous(nm, spec),
        "addresses": wanted["addresses"],
        "gateways": wanted["gateways"],
        "dhcp": wanted["dhcp"],
        "ids": ids,
        "spec": dict(spec),
        "bridge_active": _connected(nm, name, ids["bridge_uuid"]),
    }
    if file_changes or not loaded:
        found["steps"].append(_step("make NetworkManager read the keyfiles", ["nmcli", "connection", "reload"]))
    if file_changes or not loaded or not active or live or check(state, found):
        found["steps"].append(
            _step(
                f"bring {name} up through NetworkManager with {port} as its port",
                ["nmcli", "connection", "up", "uuid", ids["bridge_uuid"]],
            )
        )
    return found


def _step(why, cmd, key=None):
    return {"why": why, "cmd": list(cmd), "undo": None, "key": key or cmd[2]}


def _run(runner, argv, netns):
    return runner((["ip", "netns", "exec", netns] if netns else []) + list(argv))


# ---------------------------------------------------------------- checking and applying


def check(state, nmplan):
    """Why the bridge in ``state`` is not yet as planned, or None: up, forwarding, addresses and default route."""
    spec = nmplan["spec"]
    reason = bridges.check(state, spec)
    if reason:
        return reason
    return _not_held(state, spec["name"], nmplan)


def _not_held(state, dev, expect):
    """Why ``dev`` does not hold yet what ``expect`` says, or None.

    ``expect``: ``"addresses"`` (a bare address, from an ifcfg file without a prefix,
    is held under any prefix), ``"dhcp"`` (an IPv4 address, whatever it is) and
    ``"gateways"`` ``(gw4, gw6)``, each a default route on ``dev``.
    """
    have = state["addrs"].get(dev, [])
    bare = {a.split("/")[0] for a in have}
    missing = [a for a in expect["addresses"] if a not in have and not ("/" not in a and a in bare)]
    if missing:
        return f"{dev} does not hold {', '.join(missing)} yet"
    if expect.get("dhcp") and not any(":" not in a for a in have):
        return f"{dev} has no IPv4 address from DHCP yet"
    for family, gateway in zip((4, 6), expect["gateways"], strict=True):
        if gateway and not any(
            r["dst"] == "default" and r["dev"] == dev and r["family"] == family for r in state["routes"]
        ):
            return f"the default route via {gateway} is not on {dev} yet"
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


def _files_back(saved, root, errors, words):
    """Rollback: the files of ``saved`` (:func:`_snapshot`) as they were; said in ``words``, or in ``errors``."""
    try:
        _restore(saved, root)
        words.append("the keyfiles are as they were")
    except OSError as exc:
        errors.append(f"the keyfiles could not be put back: {exc}")


def _undo_nmcli(runner, netns, errors):
    """``nmcli(*argv, quiet=False)`` for a rollback: runs ``nmcli ARGV``, True when it worked;
    a failure goes into ``errors`` unless ``quiet`` (a step that may have nothing to undo)."""

    def nmcli(*argv, quiet=False):
        error = bridges.run_step(runner, ["nmcli", *argv], netns, undo=True)
        if error is not None and not quiet:
            errors.append(error)
        return error is None

    return nmcli


def apply(nmplan, runner, netns=None, root="/", timeout=5, sleep=time.sleep):
    """Write the keyfiles, run the ``nmcli`` steps and wait until :func:`check` passes.

    Returns the descriptions of the steps done. On a failure (a file, a step, or the
    check still failing after ``timeout`` seconds) it rolls back: the NIC's previous
    connection up again, the new bridge connection down, the keyfiles as they were,
    NetworkManager reloaded. Raises :class:`saltext_xen.networks.bridges.BridgeError` saying
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
        failure = bridges.run_step(runner, step["cmd"], netns)
        if failure is not None:
            break
        done.append(step)
    if failure is None and steps:
        reason = bridges.wait_until(lambda: check(bridges.read(runner, netns), nmplan), timeout, sleep)
        if reason is not None:
            failure = f"the bridge did not come up: {reason}"
    if failure is None:
        return bridges.describe(done)
    raise bridges.rollback_error(failure, *_rollback(nmplan, saved, runner, netns, root, tried))


def _rollback(nmplan, saved, runner, netns, root, tried):
    """Undo :func:`apply`, connectivity first; returns ``(what could not be undone, what was undone)``.

    ``tried`` names the nmcli steps that ran (``reload``, ``up``); only their effects are undone.
    """
    errors, words = [], []
    ids, spec = nmplan["ids"], nmplan["spec"]
    nmcli = _undo_nmcli(runner, netns, errors)
    if "up" in tried and nmplan["previous"]:  # the NIC, its addresses and routes back first: the host stays reachable
        nmcli("connection", "up", "uuid", nmplan["previous"]["uuid"])
        words.append(f"{bridges.nic_of(spec)} is back on its connection '{nmplan['previous']['name']}'")
    if "up" in tried and not nmplan["bridge_active"]:  # it may not have come up at all: no complaint
        nmcli("connection", "down", "uuid", ids["bridge_uuid"], quiet=True)
    _files_back(saved, root, errors, words)
    if tried:
        nmcli("connection", "reload")
    if "up" in tried and nmplan["bridge_active"]:
        nmcli("connection", "up", "uuid", ids["bridge_uuid"])
        words.append(f"{spec['name']} runs with its old settings")
    return errors, words


# ---------------------------------------------------------------- taking a bridge away again
#
# The reverse of apply, connectivity first:
#
# 1. ``nmcli connection up uuid ORIGINAL``: the NIC's own connection (the one it had
#    before the bridge, which stayed inactive as the way back) takes the NIC from the
#    bridge's port connection and puts the addresses and default route on it again
# 2. ``nmcli connection down uuid BRIDGE-UUID``: the bridge goes (NetworkManager deletes
#    the bridge device it made), then ``ip link del`` for a bridge device it left behind
# 3. the bridge's and port's keyfiles are removed (both before NetworkManager looks again)
#    and ``nmcli connection reload`` makes it forget both connections
# 4. check that the bridge is gone and the NIC holds its addresses and default route
#
# If a step fails or the check does not pass in time, the keyfiles come back and the
# bridge is brought up again through NetworkManager (the port takes the NIC back).


def _our_files(name, root):
    """The keyfiles bridge_present writes for bridge ``name``, in /etc and /run, that exist under ``root``."""
    found = []
    for directory in (KEYFILE_DIR, RUNTIME_DIR):
        full_dir = os.path.join(root, directory.lstrip("/"))
        bridge = f"{directory}/{name}.nmconnection"
        if os.path.exists(os.path.join(full_dir, f"{name}.nmconnection")):
            found.append(bridge)
        for full in sorted(glob.glob(os.path.join(glob.escape(full_dir), f"{glob.escape(name)}-port-*.nmconnection"))):
            try:
                with open(full, encoding="utf-8") as handle:
                    master = _sections(handle.read()).get("connection", {}).get("master")
            except OSError:
                continue
            if master == name:  # a port of this bridge, not of a bridge whose name starts like it
                found.append(f"{directory}/{os.path.basename(full)}")
    return found


def _runs(nm, device, uuid):
    """True when connection ``uuid`` is active on ``device`` (connected, or still waiting for a lease)."""
    conn = nm["connections"].get(uuid) or {}
    return bool(conn.get("active")) and conn.get("device") == device


def _our_connections(nm, name):
    """``{uuid: port or None}`` of the connections NetworkManager has loaded for bridge ``name`` (ours only)."""
    found = {}
    bridge_uuid = bridge_persist.nm_uuid(name)
    for uuid, conn in nm["connections"].items():
        if uuid == bridge_uuid:
            found[uuid] = None
        elif conn["name"].startswith(f"{name}-port-") and uuid == bridge_persist.nm_uuid(conn["name"]):
            found[uuid] = conn["name"][len(f"{name}-port-") :]
    return found


def manages_bridge(nm, state, name, root="/"):
    """True when taking bridge ``name`` away is NetworkManager's job.

    That is when NetworkManager runs it with the connection bridge_present wrote, or
    the bridge is gone already but NetworkManager still has its connections or their
    keyfiles are still there (then only they go). A bridge made with ``ip`` that
    NetworkManager does not run keeps the ``ip`` way.
    """
    if nm is None:
        return False
    if name in state["links"]:
        return _runs(nm, name, bridge_persist.nm_uuid(name))
    return bool(_our_connections(nm, name) or _our_files(name, root))


def original(nm, port, mac=None):
    """The NIC's own connection to go back to: ``{"name", "uuid", "filename", "ip"}`` or None.

    A connection NetworkManager has loaded for device ``port`` (by ``interface-name``,
    else by the MAC address it is bound to), that is nobody's port and none of the
    bridge's: the one the NIC had before bridge_present, left in place as the way back.
    Read from the connection files NetworkManager names (keyfiles, RHEL 8 ifcfg).
    """
    candidates = []
    for uuid, conn in sorted(nm["connections"].items()):
        if conn["type"] not in ("802-3-ethernet", "ethernet", "vlan"):
            continue
        text, filename = _connection_text(nm, uuid)
        if text is None:
            continue
        if os.path.basename(filename).startswith("ifcfg-"):
            values = _ifcfg(text)
            if values.get("BRIDGE") or values.get("MASTER") or values.get("TEAM_MASTER"):
                continue
            device, hwaddr, priority = values.get("DEVICE"), values.get("HWADDR"), 0
        else:
            ini = _sections(text)
            info = ini.get("connection", {})
            if info.get("master") or info.get("slave-type") or info.get("controller") or info.get("port-type"):
                continue
            device, hwaddr = info.get("interface-name"), ini.get("ethernet", {}).get("mac-address")
            try:
                priority = int(info.get("autoconnect-priority", 0))
            except ValueError:
                priority = 0
        if device == port:
            rank = 0
        elif not device and mac and hwaddr and hwaddr.lower() == mac.lower():
            rank = 1
        else:
            continue
        candidates.append(
            (
                (rank, -priority, conn["name"], uuid),
                {"name": conn["name"], "uuid": uuid, "filename": filename, "ip": ip_settings(text, filename)},
            )
        )
    return min(candidates, key=lambda item: item[0])[1] if candidates else None


def plan_remove(state, nm, name, guests=(), force=False, root="/", restore_nic=True, dhcp=False, persist=True):
    """What it takes to have bridge ``name`` gone through NetworkManager (see :func:`manages_bridge`).

    Refuses like :func:`saltext_xen.networks.bridges.plan_remove` while guests use it (unless
    ``force``). The NIC goes back on its :func:`original` connection; when it has none
    and ``restore_nic``, a keyfile for it is written from the bridge's addresses
    (``dhcp``: IPv4 from DHCP instead; ``persist=False``: under /run). Returns
    ``{"steps", "file_changes", "gone", "nic_files", "original", "port", "expect", ...}``;
    ``steps`` and ``file_changes`` are empty when there is nothing left to do.
    """
    bridges.plan_remove(state, name, guests=guests, force=force)  # the refusal (guests) and the sanity checks
    ids = {"bridge": name, "bridge_uuid": bridge_persist.nm_uuid(name)}
    loaded = _our_connections(nm, name)
    gone = _our_files(name, root)
    live = bridges.bridges(state).get(name)
    ours = [p for p in loaded.values() if p]
    nics = (live or {}).get("nics") or []
    port = next((p for p in nics if p in ours), nics[0] if nics else (ours[0] if ours else None))
    enslaved = bool(port) and state["links"].get(port, {}).get("master") == name
    link = state["links"].get(port or "", {})
    back = original(nm, port, link.get("mac")) if enslaved else None
    nic_files, expect = {}, {"dhcp": False, "addresses": [], "gateways": (None, None)}
    addrs = list(state["addrs"].get(name, [])) if live else []
    gw4, gw6 = bridges.gateways_after(state, {"name": name, "nic": None})
    if enslaved and back is None:
        kept = [a for a in addrs if not (dhcp and ":" not in a)]
        if restore_nic and (kept or dhcp):
            vlan = (link["parent"], link["vlan"]) if link.get("kind") == "vlan" and link.get("parent") else None
            nic_files = bridge_persist.render_nic(
                "nm-keyfile",
                port,
                name,
                kept,
                gateway=None if dhcp else gw4,
                gateway6=gw6,
                dhcp=dhcp,
                uuid=bridge_persist.nm_uuid(port),
                vlan=vlan,
            )
            if not persist:
                nic_files = {RUNTIME_DIR + p[len(KEYFILE_DIR) :]: v for p, v in nic_files.items()}
            back = {
                "name": port,
                "uuid": bridge_persist.nm_uuid(port),
                "filename": None,
                "ip": ip_settings(next(iter(nic_files.values()))[0]),
            }
        elif addrs:
            raise bridges.BridgeError(
                f"{port} has no NetworkManager connection of its own to go back to, so the host would lose "
                f"{', '.join(addrs)} with {name}; set restore_nic: true to have one written from {name}'s "
                "addresses, or give the NIC a connection first"
            )
    if back is not None:
        expect = back["ip"]
        if not (expect["addresses"] or expect["dhcp"]):  # a file that says nothing we can check: the bridge's
            expect = {"dhcp": False, "addresses": addrs, "gateways": (gw4, gw6)}
    file_changes = dict.fromkeys(gone, "removed")
    file_changes.update(bridge_persist.pending(nic_files, root))
    steps = []
    if bridge_persist.pending(nic_files, root) or (nic_files and back["uuid"] not in nm["connections"]):
        steps.append(_step(f"make NetworkManager read {port}'s new keyfile", ["nmcli", "connection", "reload"], "load"))
    if back is not None:
        steps.append(
            _step(
                f"bring {port} back on its connection '{back['name']}'",
                ["nmcli", "connection", "up", "uuid", back["uuid"]],
                "up",
            )
        )
    active = bool(live) and _runs(nm, name, ids["bridge_uuid"])
    if active:
        steps.append(
            _step(
                f"take {name} down through NetworkManager",
                ["nmcli", "connection", "down", "uuid", ids["bridge_uuid"]],
                "down",
            )
        )
    if live:
        steps.append(_step(f"delete bridge {name} if NetworkManager left it", ["ip", "link", "del", name], "delete"))
    if gone or loaded:
        steps.append(
            _step(
                f"make NetworkManager forget {name}"
                + (" and its port" if ours or port else "")
                + (", whose keyfiles are removed" if gone else ""),
                ["nmcli", "connection", "reload"],
                "forget",
            )
        )
    return {
        "steps": steps,
        "file_changes": file_changes,
        "gone": gone,
        "nic_files": nic_files,
        "original": None if back is None else {"name": back["name"], "uuid": back["uuid"]},
        "port": port,
        "expect": expect,
        "ids": ids,
        "bridge_active": active,
        "name": name,
    }


def check_removed(state, rmplan):
    """Why bridge removal is not done yet, or None: the bridge gone, the NIC free and holding its addresses."""
    name, port, expect = rmplan["name"], rmplan["port"], rmplan["expect"]
    if name in state["links"]:
        return f"{name} still exists"
    if rmplan["original"] is None:
        return None
    link = state["links"].get(port)
    if link is None:
        return f"{port} does not exist"
    if link.get("master"):
        return f"{port} is still a port of {link['master']}"
    return _not_held(state, port, expect)


def apply_remove(rmplan, runner, netns=None, root="/", timeout=5, sleep=time.sleep):
    """Run :func:`plan_remove`'s steps and wait until :func:`check_removed` passes.

    The NIC's new keyfile (if any) is written first; the bridge's keyfiles are removed
    right before the ``reload`` that makes NetworkManager forget them. Returns the
    descriptions of the steps done. On a failure (a file, a step, or the NIC without
    its addresses after ``timeout`` seconds) the keyfiles come back as they were and
    the bridge comes up again through NetworkManager; raises
    :class:`saltext_xen.networks.bridges.BridgeError` saying what failed and what was undone.
    """
    steps = rmplan["steps"]
    if not steps and not rmplan["file_changes"]:
        return []
    saved = _snapshot(list(rmplan["file_changes"]), root)
    failure, done, tried = None, [], []
    try:
        bridge_persist.write(rmplan["nic_files"], root)
    except OSError as exc:
        failure = f"the NIC's keyfile could not be written: {exc}"
    for step in steps if failure is None else []:
        key = step["key"]
        if key == "forget":
            try:
                bridge_persist.remove(rmplan["gone"], root)
            except OSError as exc:
                failure = f"the keyfiles could not be removed: {exc}"
                break
        if key == "delete" and rmplan["name"] not in bridges.read(runner, netns)["links"]:
            done.append(step)  # NetworkManager deleted the bridge it made: nothing left to do
            continue
        tried.append(key)
        failure = bridges.run_step(runner, step["cmd"], netns)
        if failure is not None:
            break
        done.append(step)
    if failure is None and steps:
        reason = bridges.wait_until(lambda: check_removed(bridges.read(runner, netns), rmplan), timeout, sleep)
        if reason is not None:
            back = rmplan["original"]
            failure = (
                f"{rmplan['port']} did not get its addresses back on its connection '{back['name']}': {reason}"
                if back
                else f"the bridge did not go: {reason}"
            )
    if failure is None:
        return bridges.describe(done)
    raise bridges.rollback_error(failure, *_rollback_remove(rmplan, saved, runner, netns, root, tried))


def _rollback_remove(rmplan, saved, runner, netns, root, tried):
    """Undo :func:`apply_remove`: the keyfiles back, the bridge up again with its port.

    Returns ``(what could not be undone, what was undone)``.
    """
    errors, words = [], []
    name, port, uuid = rmplan["name"], rmplan["port"], rmplan["ids"]["bridge_uuid"]
    nmcli = _undo_nmcli(runner, netns, errors)
    bring_back = rmplan["bridge_active"] and {"up", "down", "delete"} & set(tried)
    if "forget" in tried:  # NetworkManager forgot the bridge: it has to read its keyfiles again first
        _files_back(saved, root, errors, words)
        nmcli("connection", "reload")
    if bring_back and nmcli("connection", "up", "uuid", uuid):  # its port takes the NIC back
        words.append(f"{name} is up again through NetworkManager" + (f" with {port} as its port" if port else ""))
    if "forget" not in tried:
        _files_back(saved, root, errors, words)
        if tried:
            nmcli("connection", "reload")
    return errors, words
