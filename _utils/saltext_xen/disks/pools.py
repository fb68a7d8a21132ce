"""libvirt storage pools for guest disks: a directory (``/var/lib/xen/images``) or a volume group.

A pool lets libvirt (``virsh vol-list``, virt-manager) see the images and LVs
this extension makes; the extension itself works on plain paths either way.

Spec: ``{"name", "type": "dir" | "logical", "path", "vg", "autostart"}`` --
``path`` is the directory of a dir pool, ``/dev/VG`` for a logical pool (made
from ``vg`` when not given). A logical pool uses an existing volume group; it
is never built (that would run ``vgcreate`` on devices).
"""

import logging
import os
import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import validate as vocab
from saltext_xen.core.errors import XenError

TYPES = ("dir", "logical")
KEYS = ("type", "path", "vg", "autostart")


log = logging.getLogger(__name__)


class PoolError(XenError):
    """A storage pool could not be read or changed."""


def validate(name, data, where=None):
    """``(spec, problems)`` for pool ``name``; each problem named by its key under ``where``
    (``xen:pools:images``; None: the key alone)."""
    problems = []
    data = dict(data or {})
    for key in sorted(data, key=str):
        if key not in KEYS:
            problems.append(f"{vocab.key_path(where, key)}: unknown key (expected one of {', '.join(KEYS)})")
    ptype = data.get("type", "dir")
    if ptype not in TYPES:
        problems.append(f"{vocab.key_path(where, 'type')}: expected dir or logical, got {ptype!r}")
    vg = data.get("vg")
    target = data.get("path")
    if ptype == "logical":
        vg = vg or name
        target = target or f"/dev/{vg}"
        if target != f"/dev/{vg}":
            problems.append(f"{vocab.key_path(where, 'path')}: a logical pool's path is /dev/{vg}, got {target!r}")
    else:
        if vg is not None:
            problems.append(f"{vocab.key_path(where, 'vg')}: only a logical pool has a volume group")
        if not target:
            problems.append(
                f"{vocab.key_path(where, 'path')}: expected the directory of the images, like /var/lib/xen/images"
            )
    if target is not None and not str(target).startswith("/"):
        problems.append(f"{vocab.key_path(where, 'path')}: expected an absolute path, got {target!r}")
    autostart = data.get("autostart", True)
    if not isinstance(autostart, bool):
        problems.append(f"{vocab.key_path(where, 'autostart')}: expected true or false, got {autostart!r}")
    spec = {
        "name": name,
        "type": ptype,
        "path": os.path.normpath(target) if target else None,
        "vg": vg if ptype == "logical" else None,
        "autostart": bool(autostart),
    }
    return spec, problems


def render(spec):
    """The pool XML for ``storagePoolDefineXML``."""
    root = ET.Element("pool", {"type": spec["type"]})
    ET.SubElement(root, "name").text = spec["name"]
    if spec["type"] == "logical":
        source = ET.SubElement(root, "source")
        ET.SubElement(source, "name").text = spec["vg"]
        ET.SubElement(source, "format", {"type": "lvm2"})
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "path").text = spec["path"]
    return ET.tostring(root, encoding="unicode")


def parse(xml_text, autostart=False, active=False):
    """A pool's XML (as libvirt returns it) -> spec, plus ``active``."""
    root = ET.fromstring(xml_text)
    ptype = root.get("type")
    path = root.findtext("target/path")
    return {
        "name": (root.findtext("name") or "").strip(),
        "type": ptype,
        "path": os.path.normpath(path) if path else None,
        "vg": (root.findtext("source/name") or "").strip() or None if ptype == "logical" else None,
        "autostart": bool(autostart),
        "active": bool(active),
    }


def current(conn, name):
    """The pool's spec (with ``active``), or None when no such pool is defined."""
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise PoolError(f"cannot read pool {name}: {exc.get_error_message()}") from None
    return parse(pool.XMLDesc(0), autostart=pool.autostart(), active=pool.isActive())


def plan(spec, have, dir_exists):
    """``(changes, problems)``: what making ``have`` into ``spec`` changes.

    A defined pool with another type, path or volume group is not redefined
    (it may be what guests' volumes are known by): that is a problem.
    """
    name = spec["name"]
    if have is None:
        changes = {
            "defined": {"old": False, "new": True},
            "active": {"old": False, "new": True},
            "autostart": {"old": False, "new": spec["autostart"]},
        }
        if not spec["autostart"]:
            del changes["autostart"]
        if spec["type"] == "dir" and not dir_exists:
            changes["directory"] = {"old": None, "new": spec["path"]}
        return changes, []
    problems = []
    for key in ("type", "path", "vg"):
        if have[key] != spec[key]:
            problems.append(
                f"pool {name} exists with {key} {have[key]!r}, not {spec[key]!r}; it is not redefined (remove it first)"
            )
    if problems:
        return {}, problems
    changes = {}
    if spec["type"] == "dir" and not dir_exists:
        changes["directory"] = {"old": None, "new": spec["path"]}
    if not have["active"]:
        changes["active"] = {"old": False, "new": True}
    if have["autostart"] != spec["autostart"]:
        changes["autostart"] = {"old": have["autostart"], "new": spec["autostart"]}
    return changes, []


def apply(conn, spec, changes):
    """Carry out :func:`plan`'s changes; returns those really made."""
    done = {}
    try:
        if "directory" in changes:
            os.makedirs(spec["path"], mode=0o755, exist_ok=True)
            done["directory"] = changes["directory"]
        if "defined" in changes:
            pool = conn.storagePoolDefineXML(render(spec), 0)
            done["defined"] = changes["defined"]
        else:
            pool = conn.storagePoolLookupByName(spec["name"])
        if "active" in changes:
            pool.create(0)
            done["active"] = changes["active"]
        if "autostart" in changes:
            pool.setAutostart(1 if spec["autostart"] else 0)
            done["autostart"] = changes["autostart"]
    except libvirt.libvirtError as exc:
        raise PoolError(
            f"pool {spec['name']}: {exc.get_error_message()} (done so far: {', '.join(done) or 'nothing'})"
        ) from None
    return done


def refresh_over(conn, path):
    """Let the active pools over ``path``'s directory (dir pool) or VG (logical pool) see a change there.

    Returns the names of the pools refreshed; a pool that cannot be read or
    refreshed is skipped (the disk itself is there either way).
    """
    folder = os.path.dirname(path)
    refreshed = []
    try:
        found = conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    except libvirt.libvirtError:
        return refreshed
    for pool in found:
        try:
            target = ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
            if target and os.path.normpath(target) == folder:
                pool.refresh(0)
                refreshed.append(pool.name())
        except libvirt.libvirtError as exc:
            log.debug("could not refresh pool %s: %s", pool.name(), exc.get_error_message())
    return refreshed


def spec_of(name, ptype="dir", path=None, vg=None, autostart=True):
    """``(spec, problems)`` from a function's arguments (``path``/``vg`` None: not given)."""
    data = {"type": ptype, "autostart": autostart}
    data.update({key: value for key, value in (("path", path), ("vg", vg)) if value is not None})
    return validate(name, data)


def checked_spec(name, ptype="dir", path=None, vg=None, autostart=True):
    """:func:`spec_of`'s spec; its problems raise PoolError."""
    spec, problems = spec_of(name, ptype, path, vg, autostart)
    if problems:
        raise PoolError(f"pool {name}: " + "; ".join(problems))
    return spec


def entry_problems(name, entry):
    """Every problem with the pillar ``xen:pools`` entry ``name`` (a mapping; ``ensure``
    only ``present``; the other keys as :func:`validate` takes them), each named by its
    key path; ``[]`` when none. Reads nothing."""
    where = vocab.key_path("xen:pools", name)
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        return [f"{where}: expected a mapping of settings, got {vocab.describe(entry)}"]
    ensure = entry.get("ensure", "present")
    problems = []
    if not (isinstance(ensure, str) and ensure.strip().lower() == "present"):
        problems.append(f"{where}:ensure: expected present, got {vocab.describe(ensure)}")
    return problems + validate(str(name), {k: v for k, v in entry.items() if k != "ensure"}, where)[1]


def plan_on(conn, spec):
    """:func:`plan` against pool ``spec["name"]`` as ``conn`` has it; a problem raises PoolError."""
    dir_exists = os.path.isdir(spec["path"]) if spec["type"] == "dir" else True
    changes, problems = plan(spec, current(conn, spec["name"]), dir_exists)
    if problems:
        raise PoolError("; ".join(problems))
    return changes
