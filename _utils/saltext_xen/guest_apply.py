"""Make a guest as its spec says: read once, plan, apply -- the engine behind the xen_guest states.

``read(conn, name)`` costs one lookup plus three reads (persistent XML with
secrets, ``info()`` for run state and live memory/vcpus, ``autostart()``).
``plan(wanted, current)`` decides, without touching anything, what a run would
change; ``apply(conn, plan)`` does it and reports what really happened. The
states call ``plan`` for ``test=True`` and ``plan`` + ``apply`` otherwise, so
the prediction and the real run share one code path.
"""
import copy
import hashlib
import os
import random
import uuid as uuidlib

import libvirt

from saltext_xen import disk_image, domain_xml, guest_spec, guests, macs
from saltext_xen.errors import XenError

READ_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
UUID_NAMESPACE = uuidlib.UUID("8f4b9d0e-5c1a-4e7b-9a43-2f6d1c0b7e55")
ACTIVE_STATES = ("running", "paused", "shutting down", "crashed", "suspended")


class Current:
    """What the hypervisor has for one guest.

    The persistent definition and autostart are read at once; run state and
    live memory/vcpus (``dom.info()``) only when first needed, so a guest whose
    definition already matches costs a lookup and two reads.
    """

    def __init__(self, dom, spec, autostart):
        self.dom = dom
        self.spec = spec  # persistent definition, autostart filled in
        self.autostart = autostart
        self._info = None
        self._maxvcpus = None
        self._target = None

    def _load(self):
        if self._info is None:
            try:
                state, maxmem_kib, mem_kib, vcpus, _cpu = self.dom.info()
            except libvirt.libvirtError as exc:
                raise XenError(f"cannot read guest '{self.spec['name']}': {exc.get_error_message()}") from None
            self._info = (guests.state_name(state), mem_kib // 1024, maxmem_kib // 1024, vcpus)
        return self._info

    @property
    def state(self):
        return self._load()[0]

    @property
    def live_memory(self):
        return self._load()[1]

    @property
    def live_maxmem(self):
        return self._load()[2]

    @property
    def live_vcpus(self):
        return self._load()[3]

    @property
    def live_memory_target(self):
        """The running guest's balloon target (live XML ``currentMemory``).

        ``info()`` reports the memory the guest holds right now, which follows a
        new target only as fast as the guest's balloon driver gives or takes
        pages; the target is what was asked for. Read (one more call) only when
        the held memory differs from the spec.
        """
        if self._target is None:
            try:
                self._target = domain_xml.parse(self.dom.XMLDesc(0))["memory"]
            except (libvirt.libvirtError, XenError):
                self._target = self.live_memory
        return self._target

    @property
    def live_maxvcpus(self):
        """The running guest's vcpu maximum (one more call, made only when vcpus differ)."""
        if self._maxvcpus is None:
            try:
                self._maxvcpus = self.dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_MAXIMUM | libvirt.VIR_DOMAIN_AFFECT_LIVE)
            except libvirt.libvirtError:
                self._maxvcpus = self.spec["maxvcpus"]
        return self._maxvcpus

    @property
    def active(self):
        return self.state in ACTIVE_STATES


def read(conn, name):
    """The guest's ``Current``, or None when no guest has that name (lookup + 2 reads)."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise XenError(f"cannot look up guest '{name}': {exc.get_error_message()}") from None
    try:
        xml = dom.XMLDesc(READ_FLAGS)
        autostart = bool(dom.autostart())
    except libvirt.libvirtError as exc:
        raise XenError(f"cannot read guest '{name}': {exc.get_error_message()}") from None
    return Current(dom, domain_xml.parse(xml, autostart=autostart), autostart)


def needs_macs(wanted, current):
    """Whether planning will give out a MAC (a NIC without one that the guest does not have yet)."""
    have = len(current.spec["nics"]) if current is not None else 0
    return any(nic["mac"] is None for nic in wanted["nics"][have:])


def host_macs(conn):
    """Every MAC on this host's guests (read only when a new MAC is to be given out)."""
    return guests.host_macs(conn)


def fill_new(spec, seed, taken_macs=()):
    """uuid and MACs for a guest defined for the first time, derived from ``seed``.

    Derived (not random) so that ``test=True`` shows exactly what the real run
    will define; the seed is the minion id and guest name.
    """
    spec = copy.deepcopy(spec)
    if spec["uuid"] is None:
        spec["uuid"] = str(uuidlib.uuid5(UUID_NAMESPACE, seed))
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

    @property
    def noop(self):
        return not self.changes


ATTACH_NOTE = "in the definition; plugged into the running guest where the hypervisor can"


def _attachable(key, change):
    """A disk or NIC that is new (not a changed one) can be hot-plugged into a running guest."""
    return key.startswith(("disks:", "nics:")) and not key.endswith(":image") and change["old"] is None and change["new"] is not None


def _unsupported(exc):
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED)


def _missing_disks(spec):
    out = []
    for disk in spec["disks"]:
        if disk["device"] == "disk" and disk["size"] and disk["source"] and not guest_spec.is_block(disk["source"]):
            if not os.path.lexists(disk["source"]):
                out.append(disk)
    return out


def plan(wanted, current, seed, restart_on_change=False, live=True, taken_macs=()):
    """Compare ``wanted`` (validated spec) with ``current`` (from ``read``, or None).

    ``live``: also compare the running guest's memory/vcpus with the spec (the
    run-state states do; ``defined`` looks at the running guest only when its
    definition changes).
    """
    p = Plan(wanted["name"])
    for disk in _missing_disks(wanted):
        p.new_disks.append(disk)
        p.changes[f"disks:{disk['target']}:image"] = {
            "old": None,
            "new": f"{disk['source']} ({disk['size']} MiB {disk['format']}, sparse)",
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
    if (live or config) and current.active:
        for key, live_value in (("memory", current.live_memory), ("vcpus", current.live_vcpus)):
            if key == "memory" and live_value != spec[key]:
                live_value = current.live_memory_target  # ballooning may still be under way
            if live_value == spec[key]:
                continue
            limit = current.live_maxmem if key == "memory" else current.live_maxvcpus
            if spec[key] <= limit:
                p.live_ops.append((key, spec[key]))
                p.changes[key] = {"old": live_value, "new": spec[key], "applied": "live and in the definition"}
            else:
                what = "MiB" if key == "memory" else "vcpus"
                why = f"above the running guest's maximum of {limit} {what}"
                p.pending.append(key)
                if key in p.changes:
                    p.changes[key]["applied"] = f"in the definition; waits for a restart ({why})"
                else:
                    p.notes.append(f"{key} {spec[key]} waits for a restart ({why}; the running guest has {live_value})")
        for key in config:
            if _attachable(key, config[key]):
                p.attach.append((key, config[key]["new"]))
                config[key]["applied"] = ATTACH_NOTE
            elif guest_spec.needs_restart(key):
                p.pending.append(key)
                config[key]["applied"] = "in the definition; waits for a restart"
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


def _create_disks(p, run=disk_image.run_local):
    done = []
    for disk in p.new_disks:
        disk_image.create(disk["source"], disk["size"] * 1024 * 1024, fmt=disk["format"], allocation="sparse", run=run)
        done.append(f"disks:{disk['target']}:image")
    return done


def apply(conn, p, current, timeout=120, run=disk_image.run_local):
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
            if key in ("autostart", "restarted") or (key in dict(p.live_ops) and current is not None and current.active):
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
            else:
                dom.setVcpusFlags(value, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            done[key] = p.changes[key]
        except libvirt.libvirtError as exc:
            change = dict(p.changes[key])
            if p.new_spec is not None and key in guest_spec.diff(current.spec, p.new_spec):
                change["applied"] = "in the definition only"
                done[key] = change
            problems.append(
                f"the running guest refused {key} {value} ({exc.get_error_message()}); it still has "
                f"{current.live_memory if key == 'memory' else current.live_vcpus}"
            )
    for key, device in p.attach:
        if p.restart:
            break  # the restart brings it in
        if key.startswith("disks:"):
            disk = next(d for d in p.new_spec["disks"] if d["target"] == key.split(":", 1)[1])
            xml = domain_xml.disk_xml(disk, p.gtype)
        else:
            xml = domain_xml.nic_xml(p.new_spec["nics"][int(key.split(":", 1)[1])])
        change = dict(p.changes[key])
        try:
            dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            change["applied"] = "in the definition and plugged into the running guest"
        except libvirt.libvirtError as exc:
            if _unsupported(exc):
                change["applied"] = "in the definition; waits for a restart (this hypervisor cannot hot-plug it)"
            else:
                change["applied"] = "in the definition only"
                problems.append(f"the running guest refused {key} ({exc.get_error_message()}); it waits for a restart")
        done[key] = change
    p.dom = dom
    if p.restart:
        try:
            if p.changes["restarted"]["via"] == "destroy and start":
                dom.destroy()
            else:
                guests.shutdown(dom, timeout=timeout, force=True)
            dom.create()
            done["restarted"] = p.changes["restarted"]
        except (XenError, libvirt.libvirtError) as exc:
            msg = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else str(exc)
            problems.append(f"restart failed: {msg}")
    return done, problems


def define(conn, wanted, seed, timeout=120):
    """Plan and apply the definition of ``wanted``; ``(changes, problems)``, password masked."""
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
    """Move ``dom`` from run state ``old`` to ``want``; raises XenError in plain words."""
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
            guests.shutdown(dom, timeout=timeout, force=force)
    except libvirt.libvirtError as exc:
        raise XenError(f"{dom.name()} could not be made {want}: {exc.get_error_message()}") from None


def remove(conn, current, remove_disks=False, timeout=120):
    """Stop (destroying after ``timeout``) and undefine; image files too if asked. Returns changes."""
    changes = {}
    dom = current.dom
    if current.active:
        try:
            guests.shutdown(dom, timeout=timeout, force=True)
        except XenError:
            dom.destroy()
        changes["state"] = {"old": current.state, "new": "shutoff"}
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
                changes[f"disks:{disk['target']}"] = {"old": disk["source"], "new": "kept (block device or LV: remove it with xen_disk)"}
            elif os.path.exists(disk["source"]):
                os.remove(disk["source"])
                changes[f"disks:{disk['target']}"] = {"old": disk["source"], "new": None}
    return changes


def disks_to_remove(current):
    """What ``remove(remove_disks=True)`` would delete (for test=True)."""
    out = {}
    for disk in current.spec["disks"]:
        if disk["device"] != "disk" or not disk["source"]:
            continue
        if guest_spec.is_block(disk["source"]):
            out[f"disks:{disk['target']}"] = {"old": disk["source"], "new": "kept (block device or LV: remove it with xen_disk)"}
        elif os.path.exists(disk["source"]):
            out[f"disks:{disk['target']}"] = {"old": disk["source"], "new": None}
    return out
