"""Clone a guest: what ``virt-clone -o vm03 -n newvm03 -f IMG`` and the manual recipe did.

``plan`` works out everything first, without touching anything: the new name,
a new UUID, new MACs that keep each source MAC's first three octets (the vendor
prefix, as the tutorial insists) and are unique on the host, and where each
writable disk is copied. ``execute`` copies the disks (reflink or sparse-aware,
verified, see :mod:`saltext_xen.disk_copy`) and defines the new guest; if
anything fails, the copies made so far are removed and no guest is left
defined.

The UUID and MACs are derived from the source UUID and the new name, so the
plan shown by ``test=True`` is exactly what a real run does; a MAC already on
the host is skipped.

The source must be shut off, or paused (``xm pause``; ``virsh save`` leaves it
shut off), unless ``crash_consistent=True`` accepts copying a running guest's
disks as they are at that moment.
"""
import copy
import os
import random
import uuid as uuidlib

import libvirt

from saltext_xen import disk_copy, disk_image, domain_xml, guest_spec, guests, macs
from saltext_xen.disk_image import DiskError
from saltext_xen.errors import InvalidState, XenError

_CLONE_NS = uuidlib.UUID("6f1d5c1e-1f8e-4c4e-9d7a-2b8e5a0c0e11")


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


def plan(conn, source, name, disks=None, memory=None, vcpus=None, bridge=None,
         crash_consistent=False, force=False, run=disk_image.run_local):
    """Everything the clone will do, as a dict; CloneError/InvalidState if it cannot be done.

    ``disks`` maps a disk target (``xvda``) to the path of its copy; others go
    next to their source (:func:`default_path`). Block-device disks (LVs) need
    an explicit path: an existing device at least as large as the source and
    holding no filesystem or partition table (unless ``force``), or one to create.
    """
    problems = []
    if not isinstance(name, str) or not guest_spec._NAME.match(name):  # pylint: disable=protected-access
        raise CloneError(f"'{name}' is not a usable guest name")
    dom = guests.lookup(conn, source)
    try:
        conn.lookupByName(name)
        raise CloneError(f"a guest named {name} already exists on {conn.getURI()}")
    except libvirt.libvirtError:
        pass
    state = guests.state_of(dom)
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
    new = copy.deepcopy(spec)
    new["name"] = name
    seed = f"{spec['uuid']}:{name}"
    new["uuid"] = str(uuidlib.uuid5(_CLONE_NS, seed))
    rng = random.Random(seed)
    taken = guests.host_macs(conn)
    used = guests.host_disk_sources(conn)
    for nic in new["nics"]:
        mac = macs.keep_vendor(nic["mac"] or macs.XEN_OUI + ":00:00:00", taken=taken, rng=rng)
        taken.add(mac)
        nic["mac"] = mac
        if bridge:
            nic["bridge"], nic["network"] = bridge, None
    if memory is not None:
        new["memory"] = int(memory)
        new["maxmem"] = max(int(memory), new["maxmem"]) if new["maxmem"] else int(memory)
    if vcpus is not None:
        new["vcpus"] = int(vcpus)
        new["maxvcpus"] = max(int(vcpus), new["maxvcpus"] or 0)
    copies = []
    for disk in new["disks"]:
        if disk["device"] != "disk" or disk["readonly"] or not disk["source"]:
            continue  # cdroms and read-only disks are shared, not copied
        src = disk["source"]
        if disk["target"] in disks:
            dest = disks[disk["target"]]
        elif guest_spec.is_block(src):
            problems.append(f"disks:{disk['target']}: {src} is a block device; give the path of "
                            "the device (e.g. a new LV) to copy it to")
            continue
        else:
            dest = default_path(src, source, name, disk["target"])
        item = {"target": disk["target"], "source": src, "dest": dest, "make_block": False, "size": None}
        src_info = disk_image.info(src)
        if not src_info["exists"]:
            problems.append(f"disks:{disk['target']}: the source {src} does not exist on this host")
        else:
            item["size"] = src_info["size"] if src_info["kind"] == "block" else os.path.getsize(src)
        if dest in used:
            problems.append(f"disks:{disk['target']}: {dest} is a disk of another guest; it is not overwritten")
        if not guest_spec.is_block(dest):
            if os.path.lexists(dest):
                problems.append(f"disks:{disk['target']}: {dest} already exists; it is not overwritten")
            elif not os.path.isdir(os.path.dirname(dest) or "/"):
                problems.append(f"disks:{disk['target']}: the directory of {dest} does not exist")
        else:
            if src_info["exists"] and src_info["format"] == "qcow2":
                problems.append(f"disks:{disk['target']}: {src} is qcow2; copy it to a file, not onto {dest}")
            dest_info = disk_image.info(dest)
            if not dest_info["exists"]:
                item["make_block"] = True  # an LV made at least as large as the source
            elif item["size"] is not None and dest_info["size"] < item["size"]:
                problems.append(f"disks:{disk['target']}: {dest} is smaller than {src}")
            elif not force and disk_image.signature(dest, run=run):
                problems.append(f"disks:{disk['target']}: {dest} already holds "
                                f"{disk_image.signature(dest, run=run)}; it is not overwritten unless force=True")
        if dest in [c["dest"] for c in copies]:
            problems.append(f"disks:{disk['target']}: {dest} is used for two disks")
        copies.append(item)
        disk["source"] = dest
    if problems:
        raise CloneError(f"cannot clone {source} to {name}: " + "; ".join(problems))
    return {
        "source": source,
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
    """
    made = []
    made_blocks = []
    results = {}
    try:
        for item in step["disks"]:
            if item.get("make_block"):
                if make_block is None:
                    raise CloneError(f"{item['dest']} does not exist and no way to create it was given")
                make_block(item["dest"], item["size"])
                made_blocks.append(item["dest"])
            cb = None
            if progress is not None:
                cb = lambda done, total, t=item["target"]: progress(t, done, total)  # noqa: E731
            res = disk_copy.copy(item["source"], item["dest"], progress=cb)  # removes its own partial file
            if not guest_spec.is_block(item["dest"]):
                made.append(item["dest"])
            results[item["target"]] = res["method"]
        try:
            conn.defineXML(domain_xml.render(step["spec"]))
        except libvirt.libvirtError as exc:
            raise CloneError(f"libvirt refused the clone's definition: {exc.get_error_message()}") from None
    except BaseException as exc:
        for path in made:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for path in made_blocks:
            try:
                drop_block(path)
            except Exception:  # pylint: disable=broad-except
                pass
        if isinstance(exc, (XenError, KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, OSError):
            raise CloneError(f"cloning {step['source']} failed: {exc}") from None
        raise
    out = summary(step)
    out["copied"] = results
    return out
