"""Move a guest's disk between image files and block devices (p2v / v2v).

The tutorial's ``lvcreate`` + ``dd if=newvm.img of=/dev/mapper/vol0-lv_for_newvm``
+ edit the config, in one step that cannot leave a guest half-moved:

1. plan: find the disk (by target like ``xvda`` or by its current path), check
   the guest may be stopped, the destination is free and big enough;
2. stop the guest if asked (``shutdown=True``), else refuse while it runs;
3. copy with :mod:`saltext_xen.disks.disk_copy` (holes skipped, verified);
4. only then switch the persistent definition to the new path;
5. start the guest again if it was running; remove the source only if asked.

Any failure before the switch removes the partial target (and an LV made for
the move), puts the definition back if it was changed, starts the guest again
if it was stopped here, and leaves the source untouched.

A qcow2 image moved onto a block device (LV) is converted to raw with
``qemu-img convert`` (the LV made at least the image's virtual size), checked
with ``qemu-img compare``, and the definition switched to a raw ``phy`` disk;
``fmt="qcow2"`` converts the other way into a new file. A qcow2 image with a
backing file comes out whole (the backing data is copied in).

Block devices (LVs) are made and removed by callables from the caller
(``make_block(path, size_bytes)``, ``drop_block(path)``) because that is LVM's
business, done through Salt's ``lvm`` module in the Salt layer.
"""

import contextlib
import json
import logging
import os
import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import commands, protect
from saltext_xen.core.errors import InvalidState, XenError
from saltext_xen.disks import disk_copy, disk_image
from saltext_xen.guests import disk_users, domain_xml, guest_spec, lifecycle

log = logging.getLogger(__name__)


class MoveError(disk_image.DiskError):
    """The move did not happen; the guest is as it was."""


def inactive_xml(dom):
    """The persistent definition (what the guest boots with next time)."""
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def find_disk(spec, disk):
    """The disk of ``spec`` named by target (``xvda``) or by its current source path."""
    for item in spec["disks"]:
        if disk in (item["target"], item["source"]):
            return item
    known = ", ".join(f"{d['target']} ({d['source']})" for d in spec["disks"]) or "none"
    raise MoveError(f"{spec['name']} has no disk '{disk}'; its disks are: {known}")


def replace_disk(xml_text, target, new_disk, gtype="pv"):
    """``xml_text`` with the ``<disk>`` whose target is ``target`` replaced by ``new_disk``.

    Everything else in the definition is kept as libvirt gave it.
    """
    root = ET.fromstring(xml_text)
    devices = root.find("devices")
    for index, el in enumerate(list(devices)):
        tgt = el.find("target")
        if el.tag == "disk" and tgt is not None and tgt.get("dev") == target:
            new_el = ET.fromstring(domain_xml.disk_xml(new_disk, gtype))
            new_el.tail = el.tail
            devices.remove(el)
            devices.insert(index, new_el)
            return ET.tostring(root, encoding="unicode")
    raise MoveError(f"no disk with target {target} in the definition")


def backing_file(path, run=commands.run_local):
    """The backing file a qcow2 image names (as written in it), or None (also when qemu-img cannot say)."""
    res = run(["qemu-img", "info", "-U", "--output=json", path])
    if res.get("retcode"):
        return None
    try:
        return json.loads(res.get("stdout") or "{}").get("backing-filename")
    except ValueError:
        return None


def plan(conn, name, disk, dest, shutdown=False, force=False, run=commands.run_local, fmt=None):
    """What the move would do, or MoveError/InvalidState saying why it cannot.

    ``fmt`` is the format wanted at ``dest`` (``raw`` or ``qcow2``); by default
    a file keeps its format and a block device (LV) gets raw. A change of format
    (qcow2 -> LV, or ``fmt="qcow2"`` on the way back) is a ``qemu-img convert``.

    Returns ``{"guest", "target", "source", "dest", "dest_kind", "size",
    "format", "dest_format", "convert", "state", "stop", "make_block",
    "nothing_to_do"}``; ``size`` is what the destination must hold (the
    virtual size when converting).
    """
    dom = lifecycle.lookup(conn, name)
    spec = domain_xml.parse(inactive_xml(dom))
    item = find_disk(spec, disk)
    src = item["source"]
    # the format the guest reads the disk as: its definition, never guessed from the bytes
    src_format = item["format"]
    result = {
        "guest": name,
        "target": item["target"],
        "source": src,
        "dest": dest,
        "format": src_format,
        "dest_format": src_format,
        "convert": False,
        "state": lifecycle.state_of(dom),
        "nothing_to_do": False,
        "stop": False,
        "make_block": False,
        "dest_kind": None,
        "size": None,
        "partial": False,
        "leftovers": [],
    }
    if not dest or not os.path.isabs(dest):
        raise MoveError(f"the destination must be an absolute path, got '{dest}'")
    if fmt not in (None, "raw", "qcow2"):
        raise MoveError(f"format: expected raw or qcow2, got {fmt!r}")
    block_dest = guest_spec.is_block(dest)
    if block_dest and fmt == "qcow2":
        raise MoveError(f"{dest} is a block device: it holds raw data, not qcow2")
    dest_format = "raw" if block_dest else (fmt or src_format)
    if src == dest:
        if dest_format != src_format:
            raise MoveError(f"{src} is {src_format}: it is not converted in place; move it to another path")
        result["nothing_to_do"] = True
        return result
    if item["device"] != "disk":
        raise MoveError(f"{item['target']} of {name} is a {item['device']}, not a disk")
    src_info = disk_image.info(src)
    if not src_info["exists"]:
        raise MoveError(f"the source {src} of {name}:{item['target']} does not exist on this host")
    result["dest_format"] = dest_format
    result["convert"] = dest_format != src_format
    if src_info["kind"] == "block":
        result["size"] = src_info["size"]
    elif result["convert"]:
        result["size"] = src_info["size"] if src_format == "qcow2" else os.path.getsize(src)  # virtual size
    else:
        result["size"] = os.path.getsize(src)
    result["dest_kind"] = "block" if block_dest else "file"
    if not result["convert"] and src_format == "qcow2" and src_info["kind"] == "file":
        backing = backing_file(src, run)
        if backing and not os.path.isabs(backing) and os.path.dirname(dest) != os.path.dirname(src):
            raise MoveError(
                f"{src} is a qcow2 overlay on {backing}, named relative to its folder: a copy in "
                f"{os.path.dirname(dest)} would not find it; move it within {os.path.dirname(src)}, "
                "or pass format=raw to copy it whole"
            )
    if result["convert"] and src_format == "qcow2" and src_info["kind"] == "file" and src_info["format"] != "qcow2":
        raise MoveError(f"{src} is defined as qcow2 for {name} but holds no qcow2 header; it is not converted")
    users = protect.used_by(dest, disk_users.in_use(conn))
    if users:
        raise MoveError(
            f"{dest} is already a disk of a guest on this host ({', '.join(users)}); it is not overwritten "
            "(force does not write over a disk a guest uses)"
        )
    dest_info = disk_image.info(dest)
    result["leftovers"] = [item["path"] for item in protect.leftovers(dest)] if not block_dest else []
    if block_dest:
        if dest_info["exists"]:
            if dest_info["kind"] != "block":
                raise MoveError(f"{dest} exists and is not a block device")
            if dest_info["size"] < result["size"]:
                have, need = disk_image.human(dest_info["size"]), disk_image.human(result["size"])
                raise MoveError(f"{dest} ({have}) is smaller than {src} ({need})")
            # an LV a killed copy left tagged as unfinished holds nothing worth keeping
            result["partial"] = disk_copy.is_partial(dest, run=run)
            problem = protect.overwrite_problem(dest, force=force or result["partial"], run=run)
            if problem:
                raise MoveError(problem)
        else:
            result["make_block"] = True
    else:
        if dest_info["exists"]:
            raise MoveError(f"{dest} already exists; it is not overwritten")
        parent = os.path.dirname(dest)
        if not os.path.isdir(parent):
            raise MoveError(f"cannot move to {dest}: the directory {parent} does not exist")
    if dom.isActive():
        if not shutdown:
            raise InvalidState(
                f"{name} is {result['state']}: shut it off first, or pass shutdown=True to let the "
                "move stop it and start it again"
            )
        result["stop"] = True
    return result


def progress_log(step):
    """A progress callback for :func:`execute` logging how far the copy of ``step`` is."""
    if step["convert"]:
        label = f"converting {step['source']} ({step['format']}) to {step['dest']} ({step['dest_format']})"
    else:
        label = f"moving {step['source']} to {step['dest']}"

    def report(done, total):
        pct = 100.0 * done / total if total else 100.0
        human = disk_image.human
        log.info("%s: %d of %d bytes (%s of %s, %.0f%%)", label, done, total, human(done), human(total), pct)

    return report


def execute(
    conn,
    step,
    remove_source=False,
    make_block=None,
    drop_block=None,
    progress=None,
    timeout=120,
    gtype=None,
    run=commands.run_local,
):
    """Carry out a :func:`plan`; returns the changes dict. See the module doc for failure handling."""
    if step["nothing_to_do"]:
        return {}
    name, dest, src = step["guest"], step["dest"], step["source"]
    dom = lifecycle.lookup(conn, name)
    old_xml = inactive_xml(dom)
    spec = domain_xml.parse(old_xml)
    item = find_disk(spec, step["target"])
    made_block = False
    stopped = False
    switched = False
    copied_file = False
    changes = {}
    try:
        if step["make_block"]:
            if make_block is None:
                raise MoveError(f"{dest} does not exist and no way to create it was given")
            make_block(dest, step["size"])
            made_block = True
        if step["stop"]:
            lifecycle.shutdown(dom, timeout=timeout, force=False)
            stopped = True
        if step.get("convert"):
            copied = disk_copy.convert(
                src, step["format"], dest, step["dest_format"], size=step["size"], progress=progress, run=run
            )
        else:
            copied = disk_copy.copy(src, dest, progress=progress, run=run)
        copied_file = step["dest_kind"] == "file"
        new_disk = dict(item, source=dest, format=step.get("dest_format") or item["format"])
        new_xml = replace_disk(old_xml, item["target"], new_disk, gtype or spec["type"])
        try:
            conn.defineXML(new_xml)
        except libvirt.libvirtError as exc:
            raise MoveError(f"libvirt refused the new definition: {exc.get_error_message()}") from None
        switched = True
        if stopped:
            lifecycle.start(lifecycle.lookup(conn, name))
            stopped = False
    except BaseException as exc:
        _undo(
            conn,
            name,
            old_xml if switched else None,
            dest,
            made_block,
            copied_file,
            drop_block,
            stopped or (switched and step["stop"]),
        )
        if isinstance(exc, (XenError, KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, libvirt.libvirtError):
            raise MoveError(f"moving {src} to {dest} failed: {exc.get_error_message()}") from None
        raise
    changes[item["target"]] = {
        "old": src,
        "new": dest,
        "copied": copied["method"],
        "verified": copied["verified"],
    }
    if copied.get("leftovers_removed"):
        changes[item["target"]]["leftovers_removed"] = copied["leftovers_removed"]
    if step.get("convert"):
        changes[item["target"]]["format"] = {"old": step["format"], "new": step["dest_format"]}
    if step["stop"]:
        changes[item["target"]]["restarted"] = True
    if remove_source:
        if step["source"].startswith("/dev/"):
            if drop_block is not None:
                drop_block(src)
                changes[item["target"]]["source_removed"] = True
        else:
            os.unlink(src)
            changes[item["target"]]["source_removed"] = True
    return changes


def _undo(conn, name, old_xml, dest, made_block, copied_file, drop_block, restart):
    """Put things back after a failed move; each step is tried even when an earlier one failed."""
    if old_xml is not None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.defineXML(old_xml)
    if copied_file:
        # disk_copy removes its own partial file; this covers a failure after the copy
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
    elif made_block and drop_block is not None:
        # an LV that cannot be removed is left; the move's own error is what the caller sees
        with contextlib.suppress(Exception):
            drop_block(dest)
    if restart:
        with contextlib.suppress(libvirt.libvirtError, XenError):
            dom = lifecycle.lookup(conn, name)
            if not dom.isActive():
                dom.create()


def add_disk(xml_text, disk, gtype="pv"):
    """``xml_text`` with ``disk`` appended after the last ``<disk>`` (for drivers without attachDeviceFlags)."""
    root = ET.fromstring(xml_text)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    new_el = ET.fromstring(domain_xml.disk_xml(disk, gtype))
    children = list(devices)
    last = max((i for i, el in enumerate(children) if el.tag == "disk"), default=-1)
    devices.insert(last + 1, new_el)
    return ET.tostring(root, encoding="unicode")


def remove_disk(xml_text, target):
    """``xml_text`` without the ``<disk>`` whose target is ``target``."""
    root = ET.fromstring(xml_text)
    devices = root.find("devices")
    for el in list(devices if devices is not None else []):
        tgt = el.find("target")
        if el.tag == "disk" and tgt is not None and tgt.get("dev") == target:
            devices.remove(el)
            return ET.tostring(root, encoding="unicode")
    raise MoveError(f"no disk with target {target} in the definition")


def request_problems(dest, fmt=None):
    """Problems with a move's destination ``dest`` and wanted format ``fmt``, found without reading anything."""
    problems = []
    if not isinstance(dest, str) or not dest.startswith("/"):
        problems.append(f"to: expected an absolute path of a file or LV, got {dest!r}")
    if fmt not in (None, "raw", "qcow2"):
        problems.append(f"format: expected raw or qcow2, got {fmt!r}")
    elif fmt == "qcow2" and isinstance(dest, str) and guest_spec.is_block(dest):
        problems.append(f"format: {dest} is a block device (LV): it holds raw data, not qcow2")
    return problems


def planned_changes(step, remove_source=False):
    """The changes a :func:`plan` step will make, one ``{"old", "new"}`` per fact; ``{}`` when nothing is to do.

    ``TARGET`` (the path), ``TARGET:format`` when converted,
    ``TARGET:source_removed`` and ``restarted`` when so.
    """
    if step["nothing_to_do"]:
        return {}
    target = step["target"]
    changes = {target: {"old": step["source"], "new": step["dest"]}}
    if step["convert"]:
        changes[f"{target}:format"] = {"old": step["format"], "new": step["dest_format"]}
    if remove_source:
        changes[f"{target}:source_removed"] = {"old": False, "new": True}
    if step["stop"]:
        changes["restarted"] = {"old": step["state"], "new": "restarted"}
    return changes


def plan_words(step):
    """`` (creating /dev/vol0/lv, stopping newvm and starting it again)``: how a step will be done, or ''."""
    how = []
    if step.get("leftovers"):
        how.append(f"removing what a killed run left: {', '.join(step['leftovers'])}")
    if step.get("partial"):
        how.append(f"writing over the unfinished copy a killed run left on {step['dest']}")
    if step["make_block"]:
        how.append(f"creating {step['dest']}")
    if step["convert"]:
        how.append(f"converting {step['format']} to {step['dest_format']}")
    if step["stop"]:
        how.append(f"stopping {step['guest']} and starting it again")
    return f" ({', '.join(how)})" if how else ""


def done_words(step, done):
    """``(changes, comment)`` of an :func:`execute` result ``done`` in the shape of :func:`planned_changes`."""
    target = step["target"]
    got = done.get(target, {})
    changes = {target: {"old": got.get("old"), "new": got.get("new")}}
    if "format" in got:
        changes[f"{target}:format"] = dict(got["format"])
    if got.get("source_removed"):
        changes[f"{target}:source_removed"] = {"old": False, "new": True}
    if got.get("restarted"):
        changes["restarted"] = {"old": step["state"], "new": "restarted"}
    converted = f", {got['format']['old']} converted to {got['format']['new']}" if "format" in got else ""
    cleaned = got.get("leftovers_removed") or []
    left = f"; removed what a killed run left: {', '.join(cleaned)}" if cleaned else ""
    return (
        changes,
        f"{target} of {step['guest']} moved from {step['source']} to {step['dest']} "
        f"(copied by {got.get('copied')}{converted}, verified){left}",
    )
