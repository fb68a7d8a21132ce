"""Clone a guest: what ``virt-clone -o vm03 -n newvm03 -f IMG`` and the manual recipe did.

``plan`` works out everything first, without touching anything: the new name,
a new UUID, new MACs that keep each source MAC's first three octets (the vendor
prefix, as the tutorial insists) and are unique on the host, and where each
writable disk is copied. ``execute`` copies the disks (reflink or sparse-aware,
verified, see :mod:`saltext_xen.disks.disk_copy`) and defines the new guest; if
anything fails, the copies made so far are removed and no guest is left
defined.

The UUID and MACs are derived from the source UUID and the new name, so the
plan shown by ``test=True`` is exactly what a real run does; a MAC already on
the host is skipped.

The source must be shut off, or paused (``xm pause``; ``virsh save`` leaves it
shut off), unless ``crash_consistent=True`` accepts copying a running guest's
disks as they are at that moment.

The clone's definition records where it came from (``<metadata>``, element
``origin`` in :data:`ORIGIN_NS`: the source's name and UUID). :func:`compare`
uses that record, the derived UUID and the MACs to tell whether an existing
guest is a clone of a given source, and what of the asked-for memory, vcpus
and bridge differs; :func:`converge` changes those in the persistent
definition, never the disks.
"""

import contextlib
import copy
import functools
import logging
import os
import random
import uuid as uuidlib
import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import commands, macs, protect, validate
from saltext_xen.core.errors import InvalidState, XenError
from saltext_xen.disks import disk_copy, disk_image
from saltext_xen.disks.disk_image import DiskError
from saltext_xen.guests import clone_entry, disk_move, domain_xml, guest_spec, lifecycle

_log = logging.getLogger(__name__)

_CLONE_NS = uuidlib.UUID("6f1d5c1e-1f8e-4c4e-9d7a-2b8e5a0c0e11")
ORIGIN_NS = "https://github.com/saltext-xen/clone/1"
ET.register_namespace("saltclone", ORIGIN_NS)
_ORIGIN = f"{{{ORIGIN_NS}}}origin"


class CloneError(DiskError):
    """The clone was not made; nothing of it is left behind."""


def default_path(source_path, source_name, new_name, target):
    """Where a disk copy goes when not told: next to the source, the guest's name swapped.

    ``/var/lib/xen/images/vm03.img`` -> ``/var/lib/xen/images/newvm03.img``; a
    file not named after the guest gets ``NEWNAME-TARGET`` plus its extension.
    """
    folder, base = os.path.split(source_path)
    if source_name in base:
        return os.path.join(folder, base.replace(source_name, new_name, 1))
    ext = os.path.splitext(base)[1]
    return os.path.join(folder, f"{new_name}-{target}{ext}")


def clone_uuid(source_uuid, name):
    """The UUID a clone named ``name`` of the guest with ``source_uuid`` gets (the same every time)."""
    return str(uuidlib.uuid5(_CLONE_NS, f"{source_uuid}:{name}"))


def with_settings(spec, memory=None, vcpus=None, bridge=None):
    """A copy of ``spec`` with the optional clone settings applied (None leaves a setting as it is).

    ``memory`` (MiB) raises ``maxmem`` when above it, ``vcpus`` raises
    ``maxvcpus``; ``bridge`` puts every NIC on that bridge.
    """
    new = copy.deepcopy(spec)
    if memory is not None:
        new["memory"] = int(memory)
        new["maxmem"] = max(int(memory), new["maxmem"]) if new["maxmem"] else int(memory)
    if vcpus is not None:
        new["vcpus"] = int(vcpus)
        new["maxvcpus"] = max(int(vcpus), new["maxvcpus"] or 0)
    if bridge:
        for nic in new["nics"]:
            nic["bridge"], nic["network"] = bridge, None
    return new


def with_origin(xml_text, source, source_uuid):
    """``xml_text`` with the clone's origin (source name and UUID) recorded in ``<metadata>``."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return xml_text  # libvirt says what is wrong with it
    meta = root.find("metadata")
    if meta is None:
        meta = ET.Element("metadata")
        after = root.find("uuid") if root.find("uuid") is not None else root.find("name")
        root.insert(list(root).index(after) + 1 if after is not None else 0, meta)
    for old in meta.findall(_ORIGIN):
        meta.remove(old)
    ET.SubElement(meta, _ORIGIN, {"name": source, "uuid": source_uuid or ""})
    return ET.tostring(root, encoding="unicode")


def origin(xml_text):
    """``{"name", "uuid"}`` of the guest this definition was cloned from, or None when it records none."""
    try:
        el = ET.fromstring(xml_text).find(f"metadata/{_ORIGIN}")
    except ET.ParseError:
        return None
    if el is None:
        return None
    return {"name": el.get("name"), "uuid": el.get("uuid") or None}


def plan(
    conn,
    source,
    name,
    disks=None,
    memory=None,
    vcpus=None,
    bridge=None,
    crash_consistent=False,
    force=False,
    run=commands.run_local,
):
    """Everything the clone will do, as a dict; CloneError/InvalidState if it cannot be done.

    ``disks`` maps a disk target (``xvda``) to the path of its copy; others go
    next to their source (:func:`default_path`). Block-device disks (LVs) need
    an explicit path: an existing device at least as large as the source and
    holding no filesystem or partition table (unless ``force``), or one to create.
    A qcow2 disk copied onto a block device is converted to raw (``qemu-img
    convert``, checked with ``qemu-img compare``) and the clone reads it as raw.
    """
    problems = []
    if not guest_spec.is_guest_name(name):
        raise CloneError(f"'{name}' is not a usable guest name")
    dom = lifecycle.lookup(conn, source)
    try:
        conn.lookupByName(name)
        raise CloneError(f"a guest named {name} already exists on {conn.getURI()}")
    except libvirt.libvirtError:
        pass
    state = lifecycle.state_of(dom)
    if state not in ("shutoff", "paused") and not crash_consistent:
        raise InvalidState(
            f"{source} is {state}: shut it off or pause it before cloning (as virt-clone needs), "
            "or pass crash_consistent=True to copy its disks as they are right now"
        )
    spec = domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    disks = dict(disks or {})
    for key in disks:
        if not any(d["target"] == key for d in spec["disks"]):
            problems.append(f"disks:{key}: {source} has no disk {key}")
    new = with_settings(spec, memory=memory, vcpus=vcpus, bridge=bridge)
    new["name"] = name
    seed = f"{spec['uuid']}:{name}"
    new["uuid"] = clone_uuid(spec["uuid"], name)
    rng = random.Random(seed)
    taken = lifecycle.host_macs(conn)
    used = lifecycle.host_disk_users(conn)
    for nic in new["nics"]:
        mac = macs.keep_vendor(nic["mac"] or macs.XEN_OUI + ":00:00:00", taken=taken, rng=rng)
        taken.add(mac)
        nic["mac"] = mac
    copies = []
    for disk in new["disks"]:
        if disk["device"] != "disk" or disk["readonly"] or not disk["source"]:
            continue  # cdroms and read-only disks are shared, not copied
        src = disk["source"]
        if disk["target"] in disks:
            dest = disks[disk["target"]]
        elif guest_spec.is_block(src):
            problems.append(
                f"disks:{disk['target']}: {src} is a block device; give the path of "
                "the device (e.g. a new LV) to copy it to"
            )
            continue
        else:
            dest = default_path(src, source, name, disk["target"])
        item = {"target": disk["target"], "source": src, "dest": dest, "make_block": False, "size": None}
        item["leftovers"] = _leftovers(dest, run)
        src_info = disk_image.info(src)
        if not src_info["exists"]:
            problems.append(f"disks:{disk['target']}: the source {src} does not exist on this host")
        else:
            item["size"] = src_info["size"] if src_info["kind"] == "block" else os.path.getsize(src)
        users = protect.used_by(dest, used) if os.path.isabs(dest) else []
        if users:
            problems.append(
                f"disks:{disk['target']}: {dest} is a disk of another guest ({', '.join(users)}); "
                "it is not overwritten (force does not write over a disk a guest uses)"
            )
        elif not guest_spec.is_block(dest):
            if os.path.lexists(dest):
                problems.append(f"disks:{disk['target']}: {dest} already exists; it is not overwritten")
            elif not os.path.isdir(os.path.dirname(dest) or "/"):
                problems.append(f"disks:{disk['target']}: the directory of {dest} does not exist")
            if disk["format"] == "qcow2" and src_info["exists"] and os.path.dirname(dest) != os.path.dirname(src):
                backing = disk_move.backing_file(src, run)
                if backing and not os.path.isabs(backing):
                    problems.append(
                        f"disks:{disk['target']}: {src} is a qcow2 overlay on {backing}, named "
                        f"relative to its folder; a copy in {os.path.dirname(dest)} would not find it"
                    )
        else:
            if disk["format"] == "qcow2":
                # an LV holds raw data: qemu-img convert, the LV at least the image's virtual size
                if src_info["exists"] and src_info["kind"] == "file" and src_info["format"] != "qcow2":
                    problems.append(f"disks:{disk['target']}: {src} is defined as qcow2 but holds no qcow2 header")
                elif src_info["exists"]:
                    item["size"] = src_info["size"]
                item["convert"] = {"old": "qcow2", "new": "raw"}
                disk["format"] = "raw"
            dest_info = disk_image.info(dest)
            if not dest_info["exists"]:
                item["make_block"] = True  # an LV made at least as large as the source
            elif item["size"] is not None and dest_info["size"] < item["size"]:
                problems.append(f"disks:{disk['target']}: {dest} is smaller than {src}")
            elif not force and not item["leftovers"]:  # a killed clone's own device is no data
                held = disk_image.signature(dest, run=run) or protect.holds_data(dest, run=run)
                if held:
                    problems.append(
                        f"disks:{disk['target']}: {dest} already holds {held}; it is not overwritten unless force=True"
                    )
        if dest in [c["dest"] for c in copies]:
            problems.append(f"disks:{disk['target']}: {dest} is used for two disks")
        copies.append(item)
        disk["source"] = dest
    if problems:
        raise CloneError(f"cannot clone {source} to {name}: " + "; ".join(problems))
    return {
        "source": source,
        "source_uuid": spec["uuid"],
        "name": name,
        "state": state,
        "uuid": new["uuid"],
        "macs": [n["mac"] for n in new["nics"]],
        "disks": copies,
        "spec": new,
    }


def summary(step):
    """The plan in the shape of a state's ``changes``."""
    return {
        "name": step["name"],
        "cloned_from": step["source"],
        "uuid": step["uuid"],
        "macs": step["macs"],
        "disks": {c["target"]: c["dest"] for c in step["disks"]},
    }


def execute(conn, step, progress=None, make_block=None, drop_block=None):
    """Copy the disks and define the guest from a :func:`plan`; all or nothing.

    Block-device copies whose device does not exist yet (an LV) are made with
    ``make_block(path, size_bytes)`` and, on failure, removed with ``drop_block(path)``.
    The result is the :func:`summary` with ``copied`` (how each disk was copied) and
    ``leftovers_removed`` (what killed copies had left: temporaries removed, devices
    holding an unfinished copy written over).
    """
    made = []
    made_blocks = []
    results = {}
    cleaned = []
    try:
        for item in step["disks"]:
            if item.get("make_block"):
                if make_block is None:
                    raise CloneError(f"{item['dest']} does not exist and no way to create it was given")
                make_block(item["dest"], item["size"])
                made_blocks.append(item["dest"])
            cb = None if progress is None else functools.partial(_progress_of, progress, item["target"])
            if item.get("convert"):  # qcow2 -> raw LV; removes its own partial file
                res = disk_copy.convert(
                    item["source"],
                    item["convert"]["old"],
                    item["dest"],
                    item["convert"]["new"],
                    size=item["size"],
                    progress=cb,
                    in_use=step["state"] != "shutoff",
                )
            else:
                res = disk_copy.copy(item["source"], item["dest"], progress=cb)  # removes its own partial file
            if not guest_spec.is_block(item["dest"]):
                made.append(item["dest"])
            results[item["target"]] = res["method"]
            cleaned += res.get("leftovers_removed") or []
        try:
            conn.defineXML(with_origin(domain_xml.render(step["spec"]), step["source"], step.get("source_uuid")))
        except libvirt.libvirtError as exc:
            raise CloneError(f"libvirt refused the clone's definition: {exc.get_error_message()}") from None
    except BaseException as exc:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for path in made_blocks:
            with contextlib.suppress(Exception):  # a failed cleanup must not hide the clone's own error
                drop_block(path)
        if isinstance(exc, (XenError, KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, OSError):
            raise CloneError(f"cloning {step['source']} failed: {exc}") from None
        raise
    out = summary(step)
    out["copied"] = results
    out["leftovers_removed"] = cleaned
    return out


def _leftovers(dest, run):
    """What killed copies to ``dest`` left: their temporaries beside a file, or the device itself
    when it holds an unfinished copy (:func:`disk_copy.is_partial`)."""
    if not os.path.isabs(dest):
        return []
    if guest_spec.is_block(dest):
        return [dest] if os.path.exists(dest) and disk_copy.is_partial(dest, run=run) else []
    return [found["path"] for found in protect.leftovers(dest)]


def leftovers_note(step):
    """The tail of a state's comment naming what killed runs left: cleaned up first (a :func:`plan`)
    or cleaned up (an :func:`execute` result); empty when nothing was left."""
    if "copied" in step:
        paths = step.get("leftovers_removed") or []
        return f"; what a killed run left was cleaned up: {', '.join(paths)}" if paths else ""
    paths = [path for item in step["disks"] for path in item["leftovers"]]
    return f"; what a killed run left is cleaned up first: {', '.join(paths)}" if paths else ""


def _log_progress(source, target, done, total):
    _log.info("cloning %s %s: %d of %d bytes", source, target, done, total)


def _progress_of(progress, target, done, total):
    """A copy's progress callback (bytes done, total) told which disk it is about."""
    progress(target, done, total)


def clone(conn, source, name, settings, start=False, run=commands.run_local, **hooks):
    """Check the arguments, plan and execute the clone of ``source`` as ``name``, then start it if asked.

    ``settings``: the keyword arguments of :func:`plan` (``disks``, ``memory``,
    ``vcpus``, ``bridge``, ``crash_consistent``, ``force``) as a caller gives
    them, checked by :func:`clone_entry.settings` (``InvalidSpec`` naming
    each problem); ``hooks``: those of :func:`execute` (``progress``, ``make_block``,
    ``drop_block``); without ``progress`` the copies are logged at INFO about
    once a second. Returns the :func:`execute` result with ``started`` when
    ``start`` was asked.
    """
    values, problems = clone_entry.settings(name, source, dict(settings, start=start))
    validate.Problems(problems).raise_if_any()
    start = values.pop("start")
    hooks.setdefault("progress", functools.partial(_log_progress, source))
    result = execute(conn, plan(conn, source, name, run=run, **values), **hooks)
    if start:
        result["started"] = bool(lifecycle.start(lifecycle.lookup(conn, name)))
    return result


def state_changes(done, started=False):
    """A new clone (a :func:`summary` or :func:`execute` result) as a state's changes.

    ``{key: {"old": .., "new": ..}}``: ``defined``, ``cloned_from``, ``uuid``,
    ``nics:N:mac``, ``disks:TARGET`` (the copy's path) and, when started, ``started``.
    """
    changes = {
        "defined": {"old": False, "new": True},
        "cloned_from": {"old": None, "new": done["cloned_from"]},
        "uuid": {"old": None, "new": done["uuid"]},
    }
    for index, mac in enumerate(done["macs"]):
        changes[f"nics:{index}:mac"] = {"old": None, "new": mac}
    for target, dest in done["disks"].items():
        changes[f"disks:{target}"] = {"old": None, "new": dest}
    if started:
        changes["started"] = {"old": False, "new": True}
    return changes


# --------------------------------------------------------------------------- an existing clone
def compare(conn, source, name, disks=None, memory=None, vcpus=None, bridge=None):
    """How the existing guest ``name`` stands to being a clone of ``source`` with these settings.

    None when there is no guest ``name``. Otherwise ``{"name", "source",
    "problems", "changes", "notes", "active", "xml"}``: ``problems`` say why
    ``name`` is not (or cannot be told to be) a clone of ``source`` -- the
    same UUID or a MAC of the source, or a record naming another source;
    ``changes`` are what :func:`converge` would change (memory, vcpus,
    bridge, in the shape of a state's changes); ``notes`` what is left alone
    (disks at other paths than asked). One read of each guest.
    """
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise XenError(f"cannot look up guest '{name}': {exc.get_error_message()}") from None
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        active = bool(dom.isActive())
    except libvirt.libvirtError as exc:
        raise XenError(f"cannot read guest '{name}': {exc.get_error_message()}") from None
    spec = domain_xml.parse(xml)
    src_spec = None
    try:
        src_spec = domain_xml.parse(conn.lookupByName(source).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise XenError(f"cannot read guest '{source}': {exc.get_error_message()}") from None
    problems, notes = [], []
    record = origin(xml)
    if src_spec is not None:
        if spec["uuid"] and spec["uuid"] == src_spec["uuid"]:
            problems.append(f"{name} has the same UUID as {source} ({spec['uuid']}); a clone needs its own")
        shared = sorted({n["mac"] for n in spec["nics"] if n["mac"]} & {n["mac"] for n in src_spec["nics"] if n["mac"]})
        if shared:
            problems.append(
                f"{name} has the same MAC{'s' if len(shared) > 1 else ''} as {source} "
                f"({', '.join(shared)}); a clone needs its own"
            )
    if record is not None:
        same = record["name"] == source or (src_spec is not None and record["uuid"] == src_spec["uuid"])
        if not same:
            problems.append(
                f"{name} was cloned from {record['name']}"
                + (f" (uuid {record['uuid']})" if record["uuid"] else "")
                + f", not from {source}"
            )
        elif src_spec is None:
            notes.append(f"{source}, which {name} was cloned from, no longer exists")
    elif src_spec is None:
        problems.append(
            f"{name} exists, {source} does not, and {name} records no source: "
            f"it cannot be told to be a clone of {source}"
        )
    elif spec["uuid"] != clone_uuid(src_spec["uuid"], name):
        problems.append(
            f"{name} exists but does not look like a clone of {source}: its definition records "
            f"no source and its UUID is not the one a clone of {source} gets"
        )
    changes = _settings_diff(spec, with_settings(spec, memory=memory, vcpus=vcpus, bridge=bridge))
    if active:
        for change in changes.values():
            change["applied"] = "in the definition; the running guest sees it at its next start"
    have = {d["target"]: d["source"] for d in spec["disks"]}
    for target, path in sorted((disks or {}).items()):
        if target not in have:
            notes.append(
                f"{name} has no disk {target} (asked for at {path}); the disks of an existing clone are never touched"
            )
        elif have[target] != path:
            notes.append(
                f"{target} of {name} is at {have[target]}, not at {path}; the disks of an existing "
                "clone are never touched"
            )
    return {
        "name": name,
        "source": source,
        "problems": problems,
        "changes": changes,
        "notes": notes,
        "active": active,
        "xml": xml,
    }


def _settings_diff(spec, wanted):
    """``{key: {"old", "new"}}`` for memory/maxmem, vcpus/maxvcpus and ``nics:N:bridge``."""
    changes = {}
    for key in ("memory", "maxmem", "vcpus", "maxvcpus"):
        if spec[key] != wanted[key]:
            changes[key] = {"old": spec[key], "new": wanted[key]}
    for index, (have, want) in enumerate(zip(spec["nics"], wanted["nics"], strict=False)):
        if (have["bridge"], have["network"]) != (want["bridge"], want["network"]):
            old = have["bridge"] if not have["network"] else f"network {have['network']}"
            changes[f"nics:{index}:bridge"] = {"old": old, "new": want["bridge"]}
    return changes


def _set_settings(xml_text, wanted):
    """The definition ``xml_text`` with memory, vcpus and NIC bridges of ``wanted``; all else kept as it is."""
    root = ET.fromstring(xml_text)

    def element(tag):
        el = root.find(tag)
        if el is None:
            el = ET.SubElement(root, tag)
        return el

    for tag, mib in (("memory", wanted["maxmem"]), ("currentMemory", wanted["memory"])):
        el = element(tag)
        el.text = str(mib * 1024)
        el.attrib["unit"] = "KiB"
    vcpu = element("vcpu")
    vcpu.text = str(wanted["maxvcpus"])
    if wanted["vcpus"] != wanted["maxvcpus"]:
        vcpu.set("current", str(wanted["vcpus"]))
    else:
        vcpu.attrib.pop("current", None)
    for el, nic in zip(root.findall("devices/interface"), wanted["nics"], strict=False):
        if nic["bridge"] and not nic["network"]:
            el.set("type", "bridge")
            src = el.find("source")
            if src is None:
                src = ET.SubElement(el, "source")
            src.attrib.clear()
            src.set("bridge", nic["bridge"])
    return ET.tostring(root, encoding="unicode")


def converge(conn, found, memory=None, vcpus=None, bridge=None):
    """Give the existing clone ``found`` (from :func:`compare`, without problems) the asked-for settings.

    Changes the persistent definition only (a running clone sees it at its
    next start); disks, UUID, MACs and the origin record stay as they are.
    Returns the changes made, the same as ``found["changes"]``.
    """
    if found["problems"]:
        raise CloneError("; ".join(found["problems"]))
    if not found["changes"]:
        return {}
    wanted = with_settings(domain_xml.parse(found["xml"]), memory=memory, vcpus=vcpus, bridge=bridge)
    try:
        conn.defineXML(_set_settings(found["xml"], wanted))
    except libvirt.libvirtError as exc:
        raise CloneError(
            f"libvirt refused the changed definition of {found['name']}: {exc.get_error_message()}"
        ) from None
    return copy.deepcopy(found["changes"])
