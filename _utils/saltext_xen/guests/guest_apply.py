"""Make a guest as its spec says: read once, plan, apply -- the engine behind the xen_guest states.

``read(conn, name)`` reads the guest's definition (``XMLDesc``: for a shut-off
guest that is its persistent definition; for a running one its live definition,
and then a second read for the persistent one) and its autostart mark; its run
state (``info()``) only when a caller asks for it; each definition is parsed once.
With a ``Host`` (the host's guests listed once per state run: handles, run states
and autostart marks by name, two calls for the whole host) a guest costs only its
definitions:

    guest       with a Host      without (one lookup and autostart() more,
    shut off    1 call           and info() when the run state is asked for)
    running     2 calls

``plan(wanted, current)`` decides, without touching anything, what a run would
change, and what waits for a restart: changes written to the definition on this
run, and every difference between the running guest's live definition and the
wanted spec that only a restart brings in (reported on every run until the guest
is restarted). ``apply(conn, plan)`` does it and reports what really happened.
The states call ``plan`` for ``test=True`` and ``plan`` + ``apply`` otherwise, so
the prediction and the real run share one code path.
"""

import hashlib
import os
import random
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import commands, macs, protect, validate
from saltext_xen.core.errors import XenError
from saltext_xen.disks import disk_image
from saltext_xen.guests import devices, domain_xml, guest_spec, install, lifecycle, xlcfg
from saltext_xen.networks import bridges as host_bridges
from saltext_xen.networks import libvirt_networks

LIVE_FLAGS = libvirt.VIR_DOMAIN_XML_SECURE
READ_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
UUID_NAMESPACE = uuidlib.UUID("8f4b9d0e-5c1a-4e7b-9a43-2f6d1c0b7e55")
ACTIVE_STATES = ("running", "paused", "shutting down", "crashed", "suspended")


class Host:
    """The host's guests, listed once: domain handles and run states by name, autostart marks.

    Two libvirt calls for the whole host (``getAllDomainStats`` for the state,
    ``listAllDomains`` for the autostart marks) instead of a lookup, an
    ``info()`` and an ``autostart()`` per guest. A handle is only a pointer to a
    guest's UUID: ``read`` checks that the definition it gets back still carries
    the name it asked for, and looks the guest up again when it does not
    (renamed, or undefined and defined again); a listed run state is used only
    while the guest's fresh definition agrees on whether it is running. After
    changing a guest, call ``forget(name)``: it is read afresh from then on. The
    caller decides how long a listing is good for (the states: one state run,
    and only while no other state of that run changed anything).
    """

    def __init__(self, conn):
        self.conn = conn
        self._states = {}
        try:
            try:
                listed = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
                self._handles = {dom.name(): dom for dom, _stats in listed}
                self._states = {dom.name(): lifecycle.state_name(stats.get("state.state")) for dom, stats in listed}
            except (libvirt.libvirtError, AttributeError) as exc:
                if isinstance(exc, libvirt.libvirtError) and not _unsupported(exc):
                    raise
                # a driver (or binding) without domain stats: handles only, run states read per guest
                self._handles = {dom.name(): dom for dom in conn.listAllDomains(0)}
            marked = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        except libvirt.libvirtError as exc:
            raise XenError(f"cannot list the guests on {conn.getURI()}: {exc.get_error_message()}") from None
        self._autostart = {dom.UUIDString().lower() for dom in marked}
        self._stale = set()

    def handle(self, name):
        """The listed handle of ``name``, or None (not listed, or forgotten)."""
        if name in self._stale:
            return None
        return self._handles.get(name)

    def state(self, name):
        """The listed run state word of ``name``, or None."""
        return None if name in self._stale else self._states.get(name)

    def autostart(self, name, uuid):
        """The autostart mark of guest ``name`` with ``uuid``; None when it must be read afresh."""
        if name in self._stale or not uuid:
            return None
        return str(uuid).lower() in self._autostart

    def forget(self, name):
        """``name`` was changed (defined, undefined, started, marked): read it afresh from now on."""
        self._stale.add(name)
        self._handles.pop(name, None)


class Current:
    """What the hypervisor has for one guest.

    ``spec`` is the persistent definition (autostart filled in); ``live`` the
    running guest's live definition, None when the guest is shut off. Run state
    and memory held (``dom.info()``) are read only when first needed.
    """

    def __init__(self, dom, spec, autostart, live=None, listed_state=None):
        self.dom = dom
        self.spec = spec  # persistent definition, autostart filled in
        self.autostart = autostart
        self.live = live  # live definition of the running guest, or None
        self._info = None
        # a run state from a Host listing, trusted while it agrees with the fresh definition
        if listed_state is not None and (listed_state in ACTIVE_STATES) == (live is not None):
            self._listed_state = listed_state
        else:
            self._listed_state = None

    def _load(self):
        if self._info is None:
            try:
                state, maxmem_kib, mem_kib, vcpus, _cpu = self.dom.info()
            except libvirt.libvirtError as exc:
                raise XenError(f"cannot read guest '{self.spec['name']}': {exc.get_error_message()}") from None
            self._info = (lifecycle.state_name(state), mem_kib // 1024, maxmem_kib // 1024, vcpus)
        return self._info

    @property
    def state(self):
        if self._info is None and self._listed_state is not None:
            return self._listed_state
        return self._load()[0]

    @property
    def live_memory(self):
        """Memory the running guest holds right now (``info()``)."""
        return self._load()[1]

    @property
    def live_vcpus(self):
        return self._load()[3]

    @property
    def live_memory_target(self):
        """The running guest's balloon target (live ``currentMemory``).

        ``info()`` reports the memory the guest holds right now, which follows a
        new target only as fast as the guest's balloon driver gives or takes
        pages; the target is what was asked for.
        """
        return self.live["memory"] if self.live else self.live_memory

    @property
    def live_maxmem(self):
        return self.live["maxmem"] if self.live else self._load()[2]

    @property
    def live_maxvcpus(self):
        return self.live["maxvcpus"] if self.live else self.spec["maxvcpus"]

    @property
    def active(self):
        return self.live is not None


def _parsed(xml):
    """``(spec, running)`` of domain definition text ``xml``, parsed once (XmlError when it is none).

    ``running``: the definition is a running guest's live one (it carries the domain's id).
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return domain_xml.parse(xml), False  # says why it is not a definition
    return domain_xml.parse(root), root.get("id") not in (None, "", "-1")


def _lookup(conn, name):
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise XenError(f"cannot look up guest '{name}': {exc.get_error_message()}") from None


def _listed(host, name):
    """``(dom, spec, running)`` from the Host's handle of ``name`` (:func:`_parsed` of its live definition)
    when it still is that guest, else Nones."""
    dom = host.handle(name) if host is not None else None
    if dom is None:
        return None, None, None
    try:
        spec, running = _parsed(dom.XMLDesc(LIVE_FLAGS))
    except (libvirt.libvirtError, XenError):
        host.forget(name)  # undefined since the listing, or gone: look it up
        return None, None, None
    if spec["name"] != name:
        host.forget(name)  # renamed since the listing
        return None, None, None
    return dom, spec, running


def read(conn, name, host=None):
    """The guest's ``Current``, or None when no guest has that name (see the module doc for the cost)."""
    dom, spec, running = _listed(host, name)
    try:
        if dom is None:
            dom = _lookup(conn, name)
            if dom is None:
                return None
            spec, running = _parsed(dom.XMLDesc(LIVE_FLAGS))
        live = None
        if running:
            live = spec
            spec, _running = _parsed(dom.XMLDesc(READ_FLAGS))
        autostart = host.autostart(name, spec["uuid"]) if host is not None else None
        if autostart is None:
            autostart = bool(dom.autostart())
    except libvirt.libvirtError as exc:
        raise XenError(f"cannot read guest '{name}': {exc.get_error_message()}") from None
    spec["autostart"] = autostart
    if live is not None:
        live["autostart"] = autostart
    return Current(dom, spec, autostart, live=live, listed_state=host.state(name) if host is not None else None)


def needs_macs(wanted, current):
    """Whether planning will give out a MAC (a NIC without one that the guest does not have yet)."""
    have = len(current.spec["nics"]) if current is not None else 0
    return any(nic["mac"] is None for nic in wanted["nics"][have:])


def host_macs(conn):
    """Every MAC on this host's guests (read only when a new MAC is to be given out)."""
    return lifecycle.host_macs(conn)


def fill_new(spec, seed, taken_macs=()):
    """uuid and MACs for a guest defined for the first time, derived from ``seed``.

    Derived (not random) so that ``test=True`` shows exactly what the real run
    will define; the seed is the minion id and guest name.
    """
    spec = guest_spec.copy_data(spec)
    if spec["uuid"] is None:
        spec["uuid"] = str(uuidlib.uuid5(UUID_NAMESPACE, seed))
    if all(nic["mac"] for nic in spec["nics"]):
        return spec
    rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest(), 16))
    taken = set(taken_macs) | {n["mac"] for n in spec["nics"] if n["mac"]}
    for nic in spec["nics"]:
        if nic["mac"] is None:
            nic["mac"] = macs.generate(taken=taken, rng=rng)
            taken.add(nic["mac"])
    return spec


class Plan:
    """What a run will do; ``changes`` is what the state reports."""

    def __init__(self, name):
        self.name = name
        self.new_spec = None  # spec to (re)define, or None
        self.create = False  # guest does not exist yet
        self.changes = {}
        self.live_ops = []  # (key, value) to set on the running guest
        self.pending = []  # keys that wait for a restart
        self.set_autostart = None
        self.new_disks = []  # disks to create (path, MiB, format)
        self.run_state = None  # (old, new) run-state transition
        self.restart = False
        self.notes = []
        self.dom = None  # the domain handle after apply()
        self.attach = []  # (key, disk or nic) to plug into the running guest
        self.gtype = None
        self.waiting = []  # keys the running guest waits for from earlier runs (subset of pending)
        self.why = {}  # pending key -> the sentence that says it and why (named there only)

    @property
    def noop(self):
        return not self.changes


ATTACH_NOTE = "in the definition; plugged into the running guest where the hypervisor can"


def _attachable(key, change):
    """A disk or NIC that is new (not a changed one) can be hot-plugged into a running guest."""
    return (
        key.startswith(("disks:", "nics:"))
        and not key.endswith(":image")
        and change["old"] is None
        and change["new"] is not None
    )


def _unsupported(exc):
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED)


def _size_words(disk):
    """``8192 MiB`` for a whole number of MiB (as before), else the exact size: ``1953125000KiB``."""
    if disk["size"] == int(disk["size"]):
        return f"{int(disk['size'])} MiB"
    return validate.format_size(guest_spec.disk_bytes(disk))


def _missing_disks(spec):
    out = []
    for disk in spec["disks"]:
        is_file = (
            disk["device"] == "disk" and disk["size"] and disk["source"] and not guest_spec.is_block(disk["source"])
        )
        if is_file and not os.path.lexists(disk["source"]):
            out.append(disk)
    return out


def _live_gap(live, spec):
    """Keys where the running guest (live definition) differs from ``spec``, but memory/vcpus/autostart.

    Those three are compared apart (a running guest's memory and vcpus can
    change live within its maximum; autostart is no part of a running guest).
    """
    return {key: change for key, change in guest_spec.diff(live, spec).items() if key not in guest_spec.LIVE_KEYS}


def _installer_gap(live, spec):
    """Like ``_live_gap``, against the definition the installer of ``spec`` runs with; None if unknown."""
    recipe = spec.get("install") or live.get("install")
    kernel = live["boot"].get("kernel")
    try:
        boot_dir = os.path.dirname(kernel) if kernel else install.DEFAULT_BOOT_DIR
        return _live_gap(live, install.install_spec(dict(spec, install=recipe), boot_dir))
    except (KeyError, TypeError, AttributeError, XenError):
        return None


def plan(wanted, current, seed, restart_on_change=False, live=True, taken_macs=(), pending=True):
    """Compare ``wanted`` (validated spec) with ``current`` (from ``read``, or None).

    ``live``: also make the running guest's memory/vcpus as the spec says (the
    run-state states do; ``defined`` changes the running guest only when its
    definition changes). ``pending``: report what the running guest still waits
    for from earlier runs (every difference between its live definition and the
    spec that only a restart brings in); ``stopped`` does not ask, the guest is
    about to stop.
    """
    p = Plan(wanted["name"])
    for disk in _missing_disks(wanted):
        p.new_disks.append(disk)
        p.changes[f"disks:{disk['target']}:image"] = {
            "old": None,
            "new": f"{disk['source']} ({_size_words(disk)} {disk['format']}, sparse)",
        }
    if current is None:
        spec = fill_new(wanted, seed, taken_macs)
        p.create = True
        p.new_spec = spec
        for key, change in guest_spec.diff(None, spec).items():
            p.changes[key] = change
        p.changes.pop("autostart", None)
        if spec["autostart"]:
            p.set_autostart = True
            p.changes["autostart"] = {"old": None, "new": True}
        return p
    p.gtype = wanted["type"]
    # uuid and MACs already given out stay; a NIC added without a MAC gets one now
    spec = fill_new(guest_spec.adopt(wanted, current.spec), seed, taken_macs)
    if spec["uuid"] != current.spec["uuid"]:
        raise XenError(
            f"{wanted['name']} is defined with uuid {current.spec['uuid']} but the spec asks for {spec['uuid']}; "
            "a guest's uuid cannot change in place (remove the uuid from the spec, or undefine the guest first)"
        )
    config = guest_spec.diff(current.spec, spec)
    if "autostart" in config:
        p.set_autostart = spec["autostart"]
    if set(config) - {"autostart"}:
        p.new_spec = spec
    p.changes.update(config)
    if current.active:
        act = live or bool(config)
        for key in ("memory", "vcpus"):
            # what the running guest was last given (its live definition): the memory it
            # holds follows a new balloon target only as fast as its balloon driver goes
            have = current.live[key]
            if have == spec[key]:
                continue
            limit = current.live_maxmem if key == "memory" else current.live_maxvcpus
            if spec[key] <= limit:
                if act:
                    p.live_ops.append((key, spec[key]))
                    p.changes[key] = {"old": have, "new": spec[key], "applied": "live and in the definition"}
            else:
                what = "MiB" if key == "memory" else "vcpus"
                why = f"above the running guest's maximum of {limit} {what}"
                p.pending.append(key)
                if key in p.changes:
                    p.changes[key]["applied"] = f"in the definition; waits for a restart ({why})"
                else:
                    p.why[key] = f"{key} {spec[key]} waits for a restart ({why}; the running guest has {have})"
        gap = _live_gap(current.live, spec)
        for key in config:
            if key in guest_spec.LIVE_KEYS:
                continue
            if key not in gap:
                config[key]["applied"] = "in the definition; the running guest has it already"
            elif _attachable(key, config[key]):
                p.attach.append((key, config[key]["new"]))
                config[key]["applied"] = ATTACH_NOTE
            elif guest_spec.needs_restart(key):
                p.pending.append(key)
                config[key]["applied"] = "in the definition; waits for a restart"
        if pending:
            waiting = [key for key in gap if key not in config]
            if waiting and current.live.get("install"):
                installer = _installer_gap(current.live, spec)
                if installer is not None and len(installer) < len(gap):
                    waiting = [key for key in installer if key not in config]
                    p.notes.append("its installer is running; it boots as defined from its next start")
            p.waiting = waiting
            p.pending.extend(waiting)
        if p.pending and restart_on_change:
            p.restart = True
            # a guest whose poweroff means restart never shuts off by itself: it is destroyed
            hard = current.state == "paused" or current.spec["on_poweroff"] in ("restart", "rename-restart")
            p.changes["restarted"] = {
                "old": current.state,
                "new": "running",
                "why": ", ".join(sorted(set(p.pending))),
                "via": "destroy and start" if hard else "shutdown and start",
            }
            for key, _device in p.attach:
                p.changes[key]["applied"] = "in the definition; the restart brings it in"
    return p


def _create_disks(p, run=commands.run_local):
    done = []
    for disk in p.new_disks:
        disk_image.create(disk["source"], guest_spec.disk_bytes(disk), fmt=disk["format"], allocation="sparse", run=run)
        done.append(f"disks:{disk['target']}:image")
    return done


def vcpus_taken(dom, change, value, run=None):
    """The vcpus change as the running guest took it: a vCPU offered to a PV guest is online
    only once the guest's kernel brings it up; one still offline is said, not reported as done."""
    online = lifecycle.online_vcpus(dom, run=run, want=value)
    if online is None or online >= value:
        return change
    missing = list(range(online, value))
    which = f"vCPU {missing[0]}" if len(missing) == 1 else "vCPUs " + ", ".join(str(n) for n in missing)
    pending = f"the guest has not brought {which} online (it runs {online} of {value})"
    return dict(change, applied=f"in the definition and offered live; {pending}", pending=pending)


def apply(conn, p, current, timeout=120, run=commands.run_local):
    """Carry out ``p``; returns ``(changes_done, problems)``: only what really happened."""
    done = {}
    problems = []
    for key in _create_disks(p, run=run):
        done[key] = p.changes[key]
    dom = current.dom if current is not None else None
    if p.new_spec is not None:
        try:
            dom = conn.defineXML(domain_xml.render(p.new_spec))
        except libvirt.libvirtError as exc:
            problems.append(f"libvirt refused the definition: {exc.get_error_message()}")
            return done, problems
        for key, change in p.changes.items():
            if key.startswith("disks:") and key.endswith(":image"):
                continue
            if key in ("autostart", "restarted") or (
                key in dict(p.live_ops) and current is not None and current.active
            ):
                continue
            done[key] = change
    if p.set_autostart is not None:
        try:
            dom.setAutostart(1 if p.set_autostart else 0)
            done["autostart"] = p.changes["autostart"]
        except libvirt.libvirtError as exc:
            problems.append(f"autostart could not be set: {exc.get_error_message()}")
    for key, value in p.live_ops:
        try:
            if key == "memory":
                dom.setMemoryFlags(value * 1024, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                done[key] = p.changes[key]
            else:
                dom.setVcpusFlags(value, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                done[key] = vcpus_taken(dom, p.changes[key], value, run)
        except libvirt.libvirtError as exc:
            change = dict(p.changes[key])
            if p.new_spec is not None and key in guest_spec.diff(current.spec, p.new_spec):
                change["applied"] = "in the definition only"
                done[key] = change
            problems.append(
                f"the running guest refused {key} {value} ({exc.get_error_message()}); it still has "
                f"{current.live_memory if key == 'memory' else current.live_vcpus}"
            )
    for key, _device in p.attach:
        if p.restart:
            break  # the restart brings it in
        if key.startswith("disks:"):
            disk = next(d for d in p.new_spec["disks"] if d["target"] == key.split(":", 1)[1])
            xml = domain_xml.disk_xml(disk, p.gtype)
        else:
            xml = domain_xml.nic_xml(p.new_spec["nics"][int(key.split(":", 1)[1])])
        change = dict(p.changes[key])
        try:
            if devices.change(conn, dom, "attach", xml, (devices.LIVE,), None, f"the running guest refused {key}"):
                change["applied"] = "in the definition and plugged into the running guest"
            else:
                change["applied"] = "in the definition; waits for a restart (this hypervisor cannot hot-plug it)"
        except XenError as exc:
            change["applied"] = "in the definition only"
            problems.append(f"{exc}; it waits for a restart")
        done[key] = change
    p.dom = dom
    if p.restart:
        try:
            if p.changes["restarted"]["via"] == "destroy and start":
                dom.destroy()
            else:
                lifecycle.shutdown(dom, timeout=timeout, force=True)
            dom.create()
            done["restarted"] = p.changes["restarted"]
        except (XenError, libvirt.libvirtError) as exc:
            msg = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else str(exc)
            problems.append(f"restart failed: {msg}")
    return done, problems


def define(conn, wanted, seed, timeout=120, current=False):
    """Plan and apply the definition of ``wanted``; ``(changes, problems)``, password masked.

    ``current``: the guest as :func:`read` gave it, when the caller read it already.
    """
    if current is False:
        current = read(conn, wanted["name"])
    taken = host_macs(conn) if needs_macs(wanted, current) else ()
    p = plan(wanted, current, seed, live=False, taken_macs=taken)
    if p.noop:
        return {}, []
    return apply(conn, p, current, timeout=timeout)


def current_spec(conn, name):
    """The persistent spec of guest ``name`` (with its VNC password), or XenError."""
    current = read(conn, name)
    if current is None:
        raise XenError(f"no guest named '{name}' on {conn.getURI()}")
    return current.spec


# --------------------------------------------------------------------------- run states
def run_state_change(old, want):
    """(old, new) for moving a guest in run state ``old`` to ``want`` (running/stopped/paused), or None."""
    if want == "running" and old != "running":
        return old, "running"
    if want == "paused" and old != "paused":
        return old, "paused"
    if want == "stopped" and old != "shutoff":
        return old, "shutoff"
    return None


def drive(dom, old, want, timeout=120, force=False):
    """Move ``dom`` from run state ``old`` to ``want``; raises XenError in plain words.

    Returns how a guest was stopped when it was destroyed (``force`` after ``timeout``, or
    a paused guest), in words for the state's changes; else None.
    """
    try:
        if want == "running":
            if old == "paused":
                dom.resume()
            elif old not in ("running",):
                dom.create()
        elif want == "paused":
            if old not in ("running", "paused"):
                dom.create()
            if old != "paused":
                dom.suspend()
        elif want == "stopped":
            via = (lifecycle.shutdown(dom, timeout=timeout, force=force).get(dom.name()) or {}).get("via", "")
            if via.startswith("destroy after"):
                return f"destroyed: it did not shut down within {timeout} s"
            if via.startswith("destroy"):
                return "destroyed: a paused guest cannot shut down by itself"
    except libvirt.libvirtError as exc:
        raise XenError(f"{dom.name()} could not be made {want}: {exc.get_error_message()}") from None
    return None


def remove(conn, current, remove_disks=False, timeout=120, force=False):
    """Stop and undefine; image files too if asked. Returns ``(changes, how)`` (see :func:`removed_how`).

    A running guest is shut down gracefully; one still up after ``timeout`` (or a
    paused one) is destroyed only with ``force``, else XenError and nothing more is done.
    """
    changes, via = {}, ""
    dom = current.dom
    if current.active:
        was = current.state  # read before it changes
        done = lifecycle.shutdown(dom, timeout=timeout, force=force).get(current.spec["name"], {})
        via = done.get("via", "graceful shutdown")
        changes["state"] = {"old": was, "new": "shutoff"}
    try:
        dom.undefine()
    except libvirt.libvirtError as exc:
        raise XenError(f"{current.spec['name']} could not be undefined: {exc.get_error_message()}") from None
    changes["defined"] = {"old": True, "new": False}
    if remove_disks:
        for disk in current.spec["disks"]:
            if disk["device"] != "disk" or not disk["source"]:
                continue
            if guest_spec.is_block(disk["source"]):
                changes[f"disks:{disk['target']}"] = {
                    "old": disk["source"],
                    "new": "kept (block device or LV: remove it with xen_disk)",
                }
            elif os.path.exists(disk["source"]):
                os.remove(disk["source"])
                changes[f"disks:{disk['target']}"] = {"old": disk["source"], "new": None}
    return changes, removed_how(via)


def disks_to_remove(current):
    """What ``remove(remove_disks=True)`` would delete (for test=True)."""
    out = {}
    for disk in current.spec["disks"]:
        if disk["device"] != "disk" or not disk["source"]:
            continue
        if guest_spec.is_block(disk["source"]):
            out[f"disks:{disk['target']}"] = {
                "old": disk["source"],
                "new": "kept (block device or LV: remove it with xen_disk)",
            }
        elif os.path.exists(disk["source"]):
            out[f"disks:{disk['target']}"] = {"old": disk["source"], "new": None}
    return out


# --------------------------------------------------------------------------- the keys given
BOOT_GIVEN = ("boot", "bootloader", "kernel", "ramdisk", "cmdline")
# a maximum that was left at its own key's value follows that key when only the key is given
FOLLOWS = {"maxmem": "memory", "maxvcpus": "vcpus"}


def complete(data, current):
    """Spec ``data`` as given to a state, completed with what guest ``current`` already has.

    A state manages the keys it is given and keeps the others as they are:
    ``memory=256`` alone changes memory and keeps the guest's disks, NICs, VNC
    and vcpus. Removing every disk or NIC is said explicitly (``disks: []``).
    Boot settings come along unless a boot key is given or the guest type
    changes; ``maxmem``/``maxvcpus`` that equal memory/vcpus follow them up, never down.
    What comes from ``current`` is not copied: the result is to be read (``guest_spec.validate``).
    """
    if current is None or not isinstance(data, dict):
        return data
    have = current.spec  # the VNC password too
    merged = {
        key: value for key, value in have.items() if key in guest_spec.TOP_KEYS and key not in ("install", "name")
    }
    type_changes = "type" in data and str(data["type"]).strip().lower() != have.get("type")
    if type_changes or any(key in data for key in BOOT_GIVEN):
        merged.pop("boot", None)
    for follower, leader in FOLLOWS.items():
        if follower not in data and leader in data and have.get(follower) == have.get(leader):
            merged.pop(follower, None)  # follows the new value when that is above it, else stays
            value = guest_spec.LEADER_CHECKS[leader](data[leader], leader, validate.Problems())
            if value is None or value <= have[follower]:
                merged[follower] = have[follower]
    merged.update(data)
    return merged


def wanted_spec(name, data, current, path="xen:guests", pillar_macs=None):
    """``(spec, problems)`` for a state given ``data`` (None: run state only) for guest ``current``.

    ``pillar_macs``: ``{MAC: [guest names]}`` of pillar ``path`` (:func:`guest_spec.mac_owners`),
    MACs this guest must not take from another.
    """
    if data is None:
        return None, []
    spec, problems = guest_spec.validate(name, complete(data, current), path)
    if spec is not None:
        problems = guest_spec.mac_clashes(name, spec, pillar_macs or {}, path)
    return (None if problems else spec), problems


def host_check(wanted, current, index, path="xen:guests"):
    """:func:`host_problems`, asking ``index()`` for the host only when the state changes what is checked."""
    if wanted is None:
        return []
    if current is not None:
        changes = guest_spec.diff(current.spec, guest_spec.adopt(wanted, current.spec))
        if not any(key.split(":")[0] in ("memory", "vcpus", "nics", "disks") for key in changes):
            return []
    return host_problems(wanted, current, index(), path)


# --------------------------------------------------------------------------- what the host has
class HostIndex:
    """What the host has, read once (per state run): every guest's MACs and disks, the
    bridges and libvirt networks, memory (MiB) and CPUs (``conn.getInfo()``).

    On libvirt's test driver (``test://``) the host is made up, so its bridges are
    those of its libvirt networks and those its guests use; on a real host they
    are what ``ip link`` shows (``networks/bridges.read``), plus the networks'.
    """

    def __init__(self, conn, run=host_bridges.subprocess_runner):
        self.macs = {}  # mac -> guest
        self.disks = {}  # disk path -> {guest: writable}
        guest_bridges = set()
        try:
            for dom, root in lifecycle.definitions(conn):
                owner = dom.name()
                for mac in root.findall("./devices/interface/mac"):
                    if mac.get("address"):
                        self.macs.setdefault(mac.get("address").lower(), owner)
                for src in root.findall("./devices/interface/source"):
                    if src.get("bridge"):
                        guest_bridges.add(src.get("bridge"))
                for disk in root.findall("./devices/disk"):
                    src = disk.find("source")
                    path = src is not None and (src.get("file") or src.get("dev"))
                    if path and disk.get("device", "disk") == "disk":
                        users = self.disks.setdefault(path, {})
                        users[owner] = users.get(owner, False) or disk.find("readonly") is None
            info = conn.getInfo()
            self.memory, self.cpus = int(info[1]), int(info[2])
            uri = conn.getURI()
        except libvirt.libvirtError as exc:
            raise XenError(f"cannot read what the host has: {exc.get_error_message()}") from None
        self.networks = libvirt_networks.list_all(conn)
        self.bridges = {net["bridge"] for net in self.networks.values() if net.get("bridge")}
        if uri.startswith("test:"):
            self.bridges |= guest_bridges
        else:
            try:
                self.bridges |= set(host_bridges.bridges(host_bridges.read(run)))
            except XenError:
                self.bridges = None  # cannot tell: not checked

    def disk_users(self, path, but=None):
        """``{guest: writable}`` of the guests other than ``but`` using ``path`` as a disk."""
        found = {}
        for disk, users in self.disks.items():
            if protect.used_by(path, {disk: list(users)}):
                found.update({g: w for g, w in users.items() if g != but})
        return found


def host_problems(wanted, current, index, path="xen:guests"):
    """What in ``wanted`` clashes with the host (``index``): MACs, bridges, networks, memory, CPUs, disks.

    Only what the state changes is checked (new or changed NICs and disks; memory
    and vcpus when they change), so a guest that already runs as it is is never
    refused for the host it is on. Every problem names its key path.
    """
    name = wanted["name"]
    gpath = f"{path}:{name}"
    have = current.spec if current is not None else None
    problems = []
    for key, limit, unit in (("memory", index.memory, " MiB"), ("vcpus", index.cpus, "")):
        if (have is None or have[key] != wanted[key]) and wanted[key] > limit:
            problems.append(f"{gpath}:{key}: {wanted[key]}{unit} is more than this host has ({limit}{unit})")
    old_nics = have["nics"] if have else []
    for i, nic in enumerate(wanted["nics"]):
        old = old_nics[i] if i < len(old_nics) else {}
        owner = index.macs.get(nic["mac"]) if nic["mac"] else None
        if owner and owner != name:
            problems.append(f"{gpath}:nics:{i}:mac: {nic['mac']} is already a NIC of guest {owner} on this host")
        if nic["network"] and nic["network"] != old.get("network") and nic["network"] not in index.networks:
            problems.append(f"{gpath}:nics:{i}:network: no libvirt network '{nic['network']}' on this host")
        if (
            nic["bridge"]
            and nic["bridge"] != old.get("bridge")
            and index.bridges is not None
            and nic["bridge"] not in index.bridges
        ):
            problems.append(f"{gpath}:nics:{i}:bridge: no bridge '{nic['bridge']}' on this host")
    old_disks = {d["source"] for d in have["disks"]} if have else set()
    for i, disk in enumerate(wanted["disks"]):
        if disk["device"] != "disk" or not disk["source"] or disk["source"] in old_disks:
            continue
        users = index.disk_users(disk["source"], but=name)
        if users and (not disk["readonly"] or any(users.values())):
            problems.append(
                f"{gpath}:disks:{i}:source: {disk['source']} is a disk of {', '.join(sorted(users))}; "
                "a disk two guests write to is lost (detach it from the other guest, or make both readonly)"
            )
    return problems


# --------------------------------------------------------------------------- for the Salt layer
def checked(name, data, path="xen:guests"):
    """The validated spec of ``data``, or XenError listing every problem."""
    spec, problems = guest_spec.validate(name, data, path)
    if problems:
        raise XenError("the spec has problems; nothing was changed:\n" + "\n".join(problems))
    return spec


def given_data(name, spec, kwargs, entry, path="xen:guests"):
    """The spec data of ``xen_guest.define``: ``spec`` and keyword arguments, else pillar ``entry``
    (less the keys that tell the formula how to apply it); XenError when there is none."""
    data = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    if spec is not None:
        data = dict(spec, **data) if isinstance(spec, dict) else spec
    if data:
        return data
    if isinstance(entry, dict):
        return {k: v for k, v in entry.items() if k not in guest_spec.OPTION_CHECKS}
    if entry is None:
        raise XenError(f"no spec given and no pillar {path}:{name}")
    return entry


def define_from(conn, name, data, seed, path="xen:guests"):
    """Define (or update) guest ``name`` from spec ``data``; the changes, or XenError.

    Only the keys in ``data`` are managed: an existing guest keeps the others (see :func:`complete`).
    Conflicts with the host (MACs, bridges, memory, CPUs, disks in use) are refused first.
    """
    current = read(conn, name)
    wanted, problems = wanted_spec(name, data, current, path)
    if not problems:
        problems = host_check(wanted, current, lambda: HostIndex(conn), path)
    if problems:
        raise XenError("the spec has problems; nothing was changed:\n" + "\n".join(problems))
    changes, problems = define(conn, wanted, seed, current=current)
    if problems:
        raise XenError("; ".join(problems))
    return changes


def import_config(conn, path, name=None, seed=str, start=False):
    """Define the guest of the xl.cfg file ``path`` (``seed(name)`` seeds its uuid/MACs).

    Returns its changes and, under ``ignored``, the file's settings a spec has no place for.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(xlcfg.MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise XenError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise XenError(f"{path} cannot be imported: it is not a text file (not an xl or xm config)") from None
    if len(text) > xlcfg.MAX_CONFIG_BYTES:
        raise XenError(f"{path} cannot be imported: it is larger than any xl or xm config (over 1 MiB)")
    try:
        spec, problems, ignored = xlcfg.read(text, name=name, path=path)
    except XenError as exc:
        raise XenError(f"{path} cannot be imported: {exc}") from None
    if problems:
        raise XenError(f"{path} cannot be imported:\n" + "\n".join(problems))
    changes, problems = define(conn, spec, seed(spec["name"]))
    if problems:
        raise XenError("; ".join(problems))
    if start:
        changes.update(lifecycle.start(lifecycle.lookup(conn, spec["name"])))
    if ignored:
        changes["ignored"] = ignored
    return changes


def export_config(conn, name, path):
    """Write guest ``name``'s definition as xl.cfg to ``path``; ``{"path", "changed", "mode"}``."""
    spec = current_spec(conn, name)
    changed = xlcfg.write(path, spec, in_use=lifecycle.host_disk_users(conn))
    return {"path": path, "changed": changed, "mode": "0600" if xlcfg.has_secret(spec) else "0644"}


def converge(conn, p, current, changes, transition=None, want=None, **how):
    """Carry out a state's plan ``p`` (None: run state only) and run-state ``transition``.

    ``changes``: what the state predicted (``p.changes`` plus ``installed`` and
    ``state``). ``how``: ``install`` (install a new guest, booting from
    ``boot_dir``), ``timeout``, ``force``. Returns ``(done, problems)``: only
    what really happened, and what failed in plain words.
    """
    done, problems = {}, []
    timeout = how.get("timeout", 120)
    try:
        if p is not None and how.get("install"):
            for key in _create_disks(p):
                done[key] = changes[key]
            dom = install.start(conn, p.new_spec, how.get("boot_dir") or install.DEFAULT_BOOT_DIR)
            done.update({key: change for key, change in changes.items() if key not in done})
            if p.set_autostart:
                dom.setAutostart(1)
        elif p is not None:
            got, problems = apply(conn, p, current, timeout=timeout)
            done.update(got)
        if transition and not problems:
            dom = (p.dom if p is not None else None) or current.dom
            via = drive(dom, transition[0], want, timeout=timeout, force=bool(how.get("force")))
            done["state"] = dict(changes["state"], via=via) if via else changes["state"]
    except XenError as exc:
        problems.append(str(exc))
    except libvirt.libvirtError as exc:
        problems.append(exc.get_error_message())
    return done, problems


def removed_how(via):
    """``removed``, with how a running guest stopped (``via`` of lifecycle.shutdown, empty when it was off):
    ``removed (shut down first)``, ``removed (destroyed first)``."""
    if not via:
        return "removed"
    return "removed (destroyed first)" if via.startswith("destroy") else "removed (shut down first)"


def removal(current, remove_disks=False, force=False):
    """``(changes, how)`` :func:`remove` would give (for test=True); XenError where it would refuse."""
    changes, via = {}, ""
    if current.active:
        if current.state == "paused" and not force:
            raise XenError(
                f"{current.spec['name']} is paused and cannot shut down by itself: resume it first, or use force"
            )
        via = "destroy (guest was paused)" if current.state == "paused" else "graceful shutdown"
        changes["state"] = {"old": current.state, "new": "shutoff"}
    changes["defined"] = {"old": True, "new": False}
    if remove_disks:
        changes.update(disks_to_remove(current))
    return changes, removed_how(via)


def watch_change(current, force=False):
    """What a ``watch`` does to a guest: ``(changes, how)``.

    A running guest is restarted, ``{"state": {"old": "running", "new":
    "restarted"}}``, ``how`` ``"shut down"`` (gracefully) or ``"destroyed"``
    (``force``, or a paused guest, which cannot shut down by itself); a guest
    that is not running is started, ``{"state": {"old": "shutoff", "new": "running"}}``.
    """
    if current.active:
        how = "destroyed" if force or current.state == "paused" else "shut down"
        return {"state": {"old": current.state, "new": "restarted"}}, how
    return {"state": {"old": current.state, "new": "running"}}, "started"


def watch_restart(current, how, timeout=120):
    """Do what :func:`watch_change` said (``how``); XenError in plain words if it fails."""
    dom = current.dom
    try:
        if how == "destroyed":
            dom.destroy()
        elif how == "shut down":
            lifecycle.shutdown(dom, timeout=timeout, force=False)
        dom.create()
    except libvirt.libvirtError as exc:
        raise XenError(f"{current.spec['name']} could not be restarted: {exc.get_error_message()}") from None


def state_plan(wanted, current, seed, want=None, restart_on_change=False, boot_dir=None, taken=tuple):
    """What a guest state (``want``: None for ``defined``, else running/stopped/paused) would do.

    ``wanted``: the validated spec, or None to manage the run state only.
    ``taken()``: the host's MACs, asked for only when new MACs are needed.
    Returns ``(plan or None, changes, notes, transition, installing)``.
    """
    p = None
    if wanted is not None:
        p = plan(
            wanted,
            current,
            seed,
            restart_on_change=bool(restart_on_change),
            live=want is not None,
            taken_macs=taken() if needs_macs(wanted, current) else (),
            pending=want != "stopped",
        )
    changes = dict(p.changes) if p else {}
    notes = list(p.notes) if p else []
    installing = bool(p and p.create and want == "running" and wanted.get("install") is not None)
    if installing:
        changes["installed"] = {"old": None, "new": install.describe(p.new_spec, boot_dir or install.DEFAULT_BOOT_DIR)}
    elif p and p.create and wanted.get("install") is not None:
        notes.append("the install settings are used by xen_guest.running; this state only defines the guest")
    transition = None
    if want is not None and not installing and not (p is not None and p.restart and want == "running"):
        transition = run_state_change("shutoff" if current is None else current.state, want)
        if transition:
            changes["state"] = {"old": transition[0], "new": transition[1]}
    return p, changes, notes, transition, installing


# The xen_guest states that keep the Host listing up to date themselves (they forget the
# guests they change); a change reported by any other state of the run (module.run
# xen_guest.autostart, xen_guest.cloned, ...) makes the next guest list the host again.
KEEP_HOST = ("defined", "running", "stopped", "paused", "absent")
MACS_TTL = 60.0


def _changes_host(tag, ret):
    """True when state result ``ret`` (of ``__running__``) changed something the Host listing does not know."""
    if not getattr(ret, "get", None) or not ret.get("changes"):  # frozen mappings, not dicts
        return False
    parts = str(tag).split("_|-")
    return not (parts[0] == "xen_guest" and parts[-1] in KEEP_HOST)


class _Tally:
    """How many finished states of one state run changed what the Host listing knows.

    ``__running__`` only grows during a run, in order: each call looks at the
    states finished since the last one, so a guest costs the same at 10 and at
    1000 guests.
    """

    def __init__(self, run):
        self.run, self.seen, self.count = run, 0, 0

    def update(self, running):
        tags = list(running or ())
        if len(tags) < self.seen:  # not the run it counted
            self.seen, self.count = 0, 0
        for tag in tags[self.seen :]:
            self.count += _changes_host(tag, running[tag])
        self.seen = len(tags)
        return self.count


class RunCache:
    """What the guest states of a state run share: the host's guests (a :class:`Host`) and MACs.

    ``run``/``running`` are the state run's id and ``__running__`` (None outside a
    run). Both are read again when another state of the run changed something (a
    clone brings new MACs); outside a run there is no Host and MACs last a minute.
    """

    def __init__(self):
        self._host = None  # (run, conn, others changed, Host)
        self._macs = None  # (read at, MACs, (run, conn id, others changed))
        self._index = None  # ((run, conn id, others changed), HostIndex)
        self._tally = None  # _Tally of the current run
        self._pillar_macs = None  # ((run, id of the pillar guests), {MAC: names})

    def others_changed(self, run, running):
        """How many states of this run changed something the Host listing does not know."""
        if self._tally is None or self._tally.run != run:
            self._tally = _Tally(run)
        return self._tally.update(running)

    def pillar_macs(self, guests, run):
        """``{MAC: [guest names]}`` of pillar ``guests``, built once per state run (afresh outside one)."""
        key = (run, id(guests))
        if run is None or self._pillar_macs is None or self._pillar_macs[0] != key:
            self._pillar_macs = (key, guest_spec.mac_owners(guests))
        return self._pillar_macs[1]

    def index(self, conn, run, running):
        """The :class:`HostIndex`, read once per state run (afresh outside a run)."""
        mark = (run, id(conn), self.others_changed(run, running)) if run is not None else None
        if mark is None or self._index is None or self._index[0] != mark:
            self._index = (mark, HostIndex(conn))
        return self._index[1]

    def host(self, conn, run, running):
        if run is None:
            return None
        others = self.others_changed(run, running)
        cached = self._host
        if cached is None or cached[0] != run or cached[1] is not conn or cached[2] != others:
            cached = self._host = (run, conn, others, Host(conn))
        return cached[3]

    def forget(self, name):
        if self._host is not None:
            self._host[3].forget(name)

    def macs(self, conn, run, running):
        mark = (run, id(conn), self.others_changed(run, running)) if run is not None else None
        cached = self._macs
        if cached is None or cached[2] != mark or (mark is None and time.monotonic() - cached[0] > MACS_TTL):
            cached = self._macs = (time.monotonic(), set(host_macs(conn)), mark)
        return cached[1]

    def remember_macs(self, spec):
        if spec is None:
            return
        if self._macs is not None:
            self._macs[1].update(nic["mac"] for nic in spec["nics"] if nic["mac"])
        if self._index is not None:
            index = self._index[1]
            for nic in spec["nics"]:
                if nic["mac"]:
                    index.macs.setdefault(nic["mac"], spec["name"])
            for disk in spec["disks"]:
                if disk["device"] == "disk" and disk["source"]:
                    index.disks.setdefault(disk["source"], {})[spec["name"]] = not disk["readonly"]


# --------------------------------------------------------------------------- what the states say
def changed_keys(changes):
    """The spec keys among a state's ``changes``, for comments."""
    return ", ".join(k for k in changes if k not in ("state", "restarted", "installed", "defined"))


def pending_comment(p):
    """What the running guest gets only by a restart, each key named once."""
    keys = sorted(set(p.pending) - set(p.why))
    parts = []
    if keys:
        one = len(keys) == 1
        text = f"{', '.join(keys)} wait{'s' if one else ''} for a restart"
        if set(p.waiting) & set(keys):
            text += f" (the running guest does not have {'it' if one else 'them'} yet)"
        parts.append(text)
    parts.extend(p.why[key] for key in sorted(p.why))
    return "; ".join(parts + ["restart_on_change: True restarts it"])


def unchanged_comment(name, p, notes):
    """A state's comment when plan ``p`` changes nothing: as wanted, or what waits for a restart."""
    text = f"{name} is defined as wanted; {pending_comment(p)}" if p and p.pending else f"{name} is already as wanted"
    return "; ".join([text, *notes])


def comment(name, changes, p, would, notes):
    """A state's comment on ``changes`` made (``would``: to be made) by plan ``p``."""
    verb = "would be" if would else "was"
    parts = []
    if "installed" in changes:
        parts.append(f"{name} {verb} installed: {changes['installed']['new']}")
    elif p is not None and p.create:
        parts.append(f"{name} {verb} defined")
    elif p is not None and changed_keys(changes):
        parts.append(f"{name} {verb} updated: {changed_keys(changes)}")
    parts.extend(
        f"{key} {change['new']} is pending: {change['pending']}"
        for key, change in changes.items()
        if isinstance(change, dict) and change.get("pending")
    )
    if "restarted" in changes:
        parts.append(f"{name} {verb} restarted to apply {changes['restarted']['why']}")
    elif p is not None and p.pending and not p.create:
        parts.append(pending_comment(p))
    if "state" in changes and changes["state"].get("via", "").startswith("destroyed"):
        parts.append(f"{name} {verb} {changes['state']['via']} (was {changes['state']['old']})")
    elif "state" in changes:
        parts.append(f"{name} {verb} {changes['state']['new']} (was {changes['state']['old']})")
    parts.extend(notes)
    return "; ".join(parts)
