"""The guest spec: one model of a Xen guest shared by pillar, libvirt XML and xl.cfg.

``validate(name, data)`` turns pillar data (``xen:guests:NAME``) into a
normalised spec and lists *every* problem at once, each with its key path::

    xen:guests:vm02:memory: expected MiB as an integer, got '5l2'

The normalised spec (all keys always present)::

    {"name": "vm02", "type": "pv" | "hvm" | "pvh", "uuid": str | None,
     "memory": MiB, "maxmem": MiB, "vcpus": int, "maxvcpus": int,
     "boot": {"bootloader", "kernel", "ramdisk", "cmdline", "order"},
     "disks": [{"source", "target", "format", "readonly", "size", "device"}],
     "nics": [{"mac", "bridge", "network", "model", "script"}],
     "graphics": None | {"type": "vnc", "display", "listen", "password", "keymap"},
     "on_poweroff", "on_reboot", "on_crash", "autostart": bool,
     "install": None | {"method", "location", "iso", "kickstart", "extra_args",
                        "kernel_path", "initrd_path"}}

``diff(old, new)`` compares two specs into ``{key: {"old": .., "new": ..}}`` with
flattened keys (``memory``, ``graphics:listen``, ``disks:xvdb``, ``nics:1``) and
VNC passwords masked. ``None`` in the wanted spec for ``uuid`` or a NIC's
``mac`` means "whatever it already is" (see ``adopt``).
"""

import re
import uuid as uuidlib

from saltext_xen.core import macs
from saltext_xen.core import validate as vocab
from saltext_xen.core.errors import XenError

TYPES = ("pv", "hvm", "pvh")
FORMATS = ("raw", "qcow2")
DEVICES = ("disk", "cdrom")
BOOT_DEVICES = ("hd", "cdrom", "network", "fd")
EVENT_ACTIONS = ("destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart")
# libvirt takes the coredump-* actions for on_crash only
EVENT_CHOICES = {
    "on_poweroff": EVENT_ACTIONS[:4],
    "on_reboot": EVENT_ACTIONS[:4],
    "on_crash": EVENT_ACTIONS,
}
LOCAL_LISTEN = ("127.0.0.1", "::1")
MASK = "********"
CHANGED = "changed"
PYGRUB = "/usr/bin/pygrub"

DEFAULTS = {
    "type": "pv",
    "memory": 512,
    "vcpus": 1,
    "on_poweroff": "destroy",
    "on_reboot": "restart",
    "on_crash": "restart",
    "autostart": False,
}
RHEL_XEN_KERNEL = "images/xen/vmlinuz"
RHEL_XEN_INITRD = "images/xen/initrd.img"

# Keys a caller (pillar or state arguments) may give; anything else is a typo.
TOP_KEYS = (
    "name",
    "type",
    "uuid",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "boot",
    "disks",
    "nics",
    "graphics",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "autostart",
    "install",
    # shortcuts accepted at the top level, as in xl.cfg
    "bootloader",
    "kernel",
    "ramdisk",
    "cmdline",
)
# Keys that describe how to make a guest, not what it is: never diffed.
NOT_DIFFED = ("install", "name")

_TARGET = re.compile(r"^(xvd|hd|sd|vd)([a-z]{1,2})$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


_Problems = vocab.Problems


def _mib(value, path, problems, what="MiB as an integer"):
    """A whole number of MiB in the one size grammar (``512``, ``"512M"``, ``"2G"``, ``"2GiB"``)."""
    return vocab.size_mib(value, path, problems, what=what)


def _disk_mib(value, path, problems):
    """A disk size in MiB, in the one size grammar: ``2TB`` is 2 * 1000**4 bytes, as under ``xen:disks``.

    A size that is no whole number of MiB comes back as an exact fraction of MiB (a float).
    """
    nbytes = vocab.size_bytes(value, path, problems)
    if nbytes is None:
        return None
    return nbytes // vocab.MIB if nbytes % vocab.MIB == 0 else nbytes / vocab.MIB


def disk_bytes(disk):
    """The bytes of a disk's ``size`` (MiB, maybe a fraction), or None."""
    return None if disk.get("size") is None else round(disk["size"] * vocab.MIB)


def _count(value, path, problems, what="a whole number"):
    return vocab.integer(value, path, problems, minimum=1, what=what)


# how memory and vcpus are read, for keys (maxmem, maxvcpus) that follow them
LEADER_CHECKS = {"memory": _mib, "vcpus": _count}


def _bool(value, path, problems):
    return vocab.boolean(value, path, problems)


def _text(value, path, problems, what="text"):
    if value is None:
        return None
    return vocab.text(value, path, problems, what=what, allow_empty=True)


def _path(value, path, problems, what="an absolute path"):
    """An absolute path (see ``vocab.absolute_path``), or None when not given."""
    if value in (None, ""):
        return None
    return vocab.absolute_path(value, path, problems, what=what)


def _choice(value, choices, path, problems):
    if value is None:
        return None
    return vocab.choice(value if isinstance(value, str) else str(value), path, problems, choices)


def _mapping(value, path, problems):
    return vocab.mapping(value, path, problems)


def _unknown(data, allowed, path, problems):
    vocab.unknown_keys(data, allowed, path, problems)


def is_guest_name(name):
    """Whether ``name`` is a usable guest name (``validate.guest_name``: letters, digits, ``_ . + -``)."""
    return vocab.guest_name(name, "", vocab.Problems()) is not None


def target_index(target):
    """0 for xvda/hda/sda, 25 for xvdz, 26 for xvdaa; None if not a disk name."""
    match = _TARGET.match(target or "")
    if not match:
        return None
    letters = match.group(2)
    if len(letters) == 1:
        return ord(letters) - 97
    return (ord(letters[0]) - 96) * 26 + ord(letters[1]) - 97


def disk_order(disk):
    """Canonical order of disks (libvirt reorders them by target, so the spec does too)."""
    target = disk["target"] or ""
    rank = next((i for i, p in enumerate(("xvd", "hd", "sd", "vd")) if target.startswith(p)), 9)
    return (rank, target_index(target) or 0, target)


def target_name(prefix, index):
    if index < 26:
        return prefix + chr(97 + index)
    return prefix + chr(96 + index // 26) + chr(97 + index % 26)


def guess_format(source):
    return "qcow2" if str(source or "").lower().endswith(".qcow2") else "raw"


def is_block(source):
    """Block devices and LVs (``/dev/...``) use Xen's native block backend."""
    return str(source or "").startswith("/dev/")


# --------------------------------------------------------------------------- disks
DISK_KEYS = ("source", "path", "target", "dev", "format", "readonly", "size", "device", "cdrom")


def validate_disk(data, path, guest_type="pv"):
    """One disk: ``(disk, problems)``; ``target`` may come back None (filled in by ``validate``)."""
    problems = _Problems()
    if isinstance(data, str):
        data = {"source": data}
    data = _mapping(data, path, problems)
    if data is None:
        return None, problems
    _unknown(data, DISK_KEYS, path, problems)
    device = (
        "cdrom"
        if data.get("cdrom")
        else (_choice(data.get("device", "disk"), DEVICES, f"{path}:device", problems) or "disk")
    )
    source = data.get("source", data.get("path"))
    if source in ("", None):
        source = None
        if device != "cdrom":
            problems.add(f"{path}:source", "expected the path of an image file, block device or LV")
    else:
        source = _path(source, f"{path}:source", problems, "the absolute path of an image file, block device or LV")
    target = data.get("target", data.get("dev"))
    if target is not None:
        target = str(target).strip().lower()
        if target_index(target) is None:
            problems.add(
                f"{path}:target",
                f"expected a disk name like xvda, hda or sda, got '{data.get('target', data.get('dev'))}'",
            )
            target = None
    fmt = data.get("format")
    fmt = _choice(fmt, FORMATS, f"{path}:format", problems) if fmt is not None else guess_format(source)
    readonly = data.get("readonly")
    readonly = (device == "cdrom") if readonly is None else _bool(readonly, f"{path}:readonly", problems)
    size = data.get("size")
    if size is not None:
        size = _disk_mib(size, f"{path}:size", problems)
        if size is not None and device == "cdrom":
            problems.add(f"{path}:size", "a cdrom has no size to create")
    disk = {
        "source": source,
        "target": target,
        "format": fmt or "raw",
        "readonly": bool(readonly),
        "size": size,
        "device": device,
    }
    return disk, problems


# --------------------------------------------------------------------------- nics
NIC_KEYS = ("mac", "bridge", "network", "model", "script")


def validate_nic(data, path):
    """One NIC: ``(nic, problems)``. Neither bridge nor network means bridge ``xenbr0``."""
    problems = _Problems()
    if isinstance(data, str):
        data = {"bridge": data}
    data = _mapping(data, path, problems)
    if data is None:
        return None, problems
    _unknown(data, NIC_KEYS, path, problems)
    mac = data.get("mac")
    if mac is not None:
        why = macs.problem(mac)
        if why:
            problems.add(f"{path}:mac", why)
            mac = None
        else:
            mac = macs.normalise(mac)
    bridge = _text(data.get("bridge"), f"{path}:bridge", problems, "a bridge name")
    network = _text(data.get("network"), f"{path}:network", problems, "a libvirt network name")
    if bridge and network:
        problems.add(path, f"give either bridge ('{bridge}') or network ('{network}'), not both")
    if not bridge and not network:
        bridge = "xenbr0"
    for key in ("bridge", "network", "model", "script"):
        value = data.get(key)
        if isinstance(value, str) and (set(value) & set(",=\"'") or not value.isprintable() or " " in value):
            problems.add(f"{path}:{key}", f"expected a name without spaces, commas, = or quotes, got {value!r}")
    nic = {
        "mac": mac,
        "bridge": bridge or None,
        "network": network or None,
        "model": _text(data.get("model"), f"{path}:model", problems, "a NIC model"),
        "script": _text(data.get("script"), f"{path}:script", problems, "a vif script"),
    }
    return nic, problems


# --------------------------------------------------------------------------- graphics
GRAPHICS_KEYS = ("type", "display", "listen", "password", "keymap", "port")


def _graphics(data, path, problems):
    if data in (None, False, "none"):
        return None
    if data is True or data == "vnc":
        data = {}
    data = _mapping(data, path, problems)
    if data is None:
        return None
    _unknown(data, GRAPHICS_KEYS, path, problems)
    _choice(data.get("type", "vnc"), ("vnc",), f"{path}:type", problems)
    display = data.get("display")
    if display is None and data.get("port") is not None:
        port = _count(data.get("port"), f"{path}:port", problems, "a TCP port")
        display = port - 5900 if port and port >= 5900 else None
        if port and port < 5900:
            problems.add(f"{path}:port", f"expected a VNC port of 5900 or above, got {port}")
    elif display is not None:
        if isinstance(display, str) and display.strip().isdigit():
            display = int(display)
        if isinstance(display, bool) or not isinstance(display, int) or not 0 <= display < 59636:
            problems.add(f"{path}:display", f"expected a VNC display number like 1 (port 5901), got '{display}'")
            display = None
    listen = str(data.get("listen") or "127.0.0.1")
    if listen == "localhost":
        listen = "127.0.0.1"
    password = data.get("password")
    if password is not None:
        password = str(password)
        if not password:
            password = None
        elif len(password) > 8:
            problems.add(f"{path}:password", "VNC uses only the first 8 characters of a password; give at most 8")
        elif any(ch in password for ch in ",=\"'\\") or not password.isprintable():
            problems.add(
                f"{path}:password",
                "a VNC password cannot hold , = quotes, backslashes or control characters (xl.cfg cannot write them)",
            )
    for key, value in (("listen", listen), ("keymap", data.get("keymap"))):
        if isinstance(value, str) and (set(value) & set(",=\"'") or not value.isprintable() or " " in value):
            problems.add(f"{path}:{key}", f"expected no spaces, commas, = or quotes, got {value!r}")
    if listen not in LOCAL_LISTEN and not password:
        problems.add(
            f"{path}:listen",
            f"VNC listening on '{listen}' (not only this host) needs a password; "
            "add graphics:password or listen on 127.0.0.1",
        )
    return {
        "type": "vnc",
        "display": display,
        "listen": listen,
        "password": password,
        "keymap": _text(data.get("keymap"), f"{path}:keymap", problems, "a keymap like en-us"),
    }


# --------------------------------------------------------------------------- boot
BOOT_KEYS = ("bootloader", "kernel", "ramdisk", "initrd", "cmdline", "extra", "order", "cdrom")


def _boot(data, gtype, path, problems):
    data = _mapping(data, path, problems)
    if data is None:
        return empty_boot(), None
    _unknown(data, BOOT_KEYS, path, problems)
    boot = empty_boot()
    bootloader = data.get("bootloader")
    if bootloader == "pygrub":
        bootloader = PYGRUB
    boot["bootloader"] = _text(bootloader, f"{path}:bootloader", problems, "a bootloader path") or None
    for key, alias in (("kernel", None), ("ramdisk", "initrd"), ("cmdline", "extra")):
        value = data.get(key, data.get(alias) if alias else None)
        if key == "cmdline":
            boot[key] = _text(value, f"{path}:{key}", problems) or None
        else:
            boot[key] = _path(value, f"{path}:{key}", problems)
    if boot["bootloader"] and boot["kernel"]:
        problems.add(path, "give either a bootloader or a kernel, not both")
    order = data.get("order")
    if order is not None:
        if isinstance(order, str):
            order = [w.strip() for w in order.replace(",", " ").split()]
        if not isinstance(order, list):
            problems.add(f"{path}:order", f"expected a list like [cdrom, hd], got {order!r}")
            order = None
        else:
            words = []
            for i, given in enumerate(order):
                word = {"disk": "hd", "net": "network", "floppy": "fd", "cd": "cdrom"}.get(
                    str(given).lower(), str(given).lower()
                )
                if word not in BOOT_DEVICES:
                    problems.add(f"{path}:order:{i}", f"expected one of {', '.join(BOOT_DEVICES)}, got '{order[i]}'")
                elif word not in words:
                    words.append(word)
            order = words or None
        if order and gtype != "hvm":
            problems.add(
                f"{path}:order", f"a boot order is for hvm guests; a {gtype} guest boots with a bootloader or kernel"
            )
            order = None
    if gtype == "hvm":
        if boot["bootloader"]:
            problems.add(
                f"{path}:bootloader", "an hvm guest boots from its virtual BIOS; drop bootloader or use type: pv"
            )
        boot["order"] = order or ["hd"]
    elif not boot["kernel"] and not boot["bootloader"]:
        if gtype == "pvh":
            problems.add(path, "a pvh guest needs a kernel (or pvgrub as kernel) or a bootloader")
        boot["bootloader"] = PYGRUB
    if boot["ramdisk"] and not boot["kernel"]:
        problems.add(f"{path}:ramdisk", "a ramdisk needs a kernel")
    cdrom = data.get("cdrom")
    return boot, _path(cdrom, f"{path}:cdrom", problems, "the absolute path of an ISO image")


def empty_boot():
    return {"bootloader": None, "kernel": None, "ramdisk": None, "cmdline": None, "order": None}


# --------------------------------------------------------------------------- install
INSTALL_KEYS = ("location", "iso", "cdrom", "kickstart", "ks", "extra_args", "kernel_path", "initrd_path", "method")


def _install(data, gtype, path, problems):
    if data in (None, False):
        return None
    data = _mapping(data, path, problems)
    if data is None:
        return None
    _unknown(data, INSTALL_KEYS, path, problems)
    location = _text(data.get("location"), f"{path}:location", problems, "a URL or directory")
    iso = _path(data.get("iso", data.get("cdrom")), f"{path}:iso", problems, "the absolute path of an ISO image")
    method = data.get("method") or ("cdrom" if iso else "network")
    method = _choice(method, ("network", "cdrom"), f"{path}:method", problems)
    if method == "network":
        if not location:
            problems.add(
                f"{path}:location",
                "a network install needs the install tree's URL (http://, ftp://, file:// or a directory)",
            )
        elif not re.match(r"^(https?|ftp|file)://|^/", location):
            problems.add(
                f"{path}:location",
                f"expected http://, https://, ftp://, file:// or an absolute directory, got '{location}'",
            )
        if gtype == "hvm":
            problems.add(
                f"{path}:method",
                "a network install boots the tree's Xen kernel and is for pv guests; "
                "install hvm guests from an ISO (install:iso)",
            )
    if method == "cdrom":
        if not iso and not data.get("iso", data.get("cdrom")):
            problems.add(f"{path}:iso", "an ISO install needs the path of the ISO image")
        if gtype != "hvm":
            problems.add(f"{path}:method", "installing from an ISO needs an hvm guest (type: hvm)")
    return {
        "method": method,
        "location": location if method == "network" else None,
        "iso": iso if method == "cdrom" else None,
        "kickstart": _text(data.get("kickstart", data.get("ks")), f"{path}:kickstart", problems, "a URL"),
        "extra_args": _text(data.get("extra_args"), f"{path}:extra_args", problems, "text"),
        "kernel_path": _text(data.get("kernel_path"), f"{path}:kernel_path", problems)
        or (RHEL_XEN_KERNEL if method == "network" else None),
        "initrd_path": _text(data.get("initrd_path"), f"{path}:initrd_path", problems)
        or (RHEL_XEN_INITRD if method == "network" else None),
    }


# --------------------------------------------------------------------------- guest
def validate(name, data, path="xen:guests"):
    """Pillar data for guest ``name`` -> ``(spec, problems)``; spec is None if there are problems."""
    problems = _Problems()
    gpath = f"{path}:{name}"
    vocab.guest_name(name, gpath, problems)
    data = _mapping(data, gpath, problems)
    if data is None:
        return None, list(problems)
    data = dict(data)
    _unknown(data, TOP_KEYS, gpath, problems)
    if data.get("name") not in (None, name):
        problems.add(f"{gpath}:name", f"the guest is called '{name}' here, but name says '{data['name']}'")

    gtype = _choice(data.get("type", DEFAULTS["type"]), TYPES, f"{gpath}:type", problems) or DEFAULTS["type"]

    uuid = data.get("uuid")
    if uuid is not None:
        text = str(uuid).strip().lower()
        if not _UUID.match(text):
            problems.add(f"{gpath}:uuid", f"expected a UUID like 2aa1fae5-8550-affd-866f-27a9d6977d16, got '{uuid}'")
            uuid = None
        else:
            uuid = str(uuidlib.UUID(text))

    memory = _mib(data.get("memory", DEFAULTS["memory"]), f"{gpath}:memory", problems)
    maxmem = data.get("maxmem")
    maxmem = memory if maxmem is None else _mib(maxmem, f"{gpath}:maxmem", problems)
    if memory and maxmem and maxmem < memory:
        problems.add(f"{gpath}:maxmem", f"maxmem ({maxmem} MiB) is below memory ({memory} MiB)")
    vcpus = _count(data.get("vcpus", DEFAULTS["vcpus"]), f"{gpath}:vcpus", problems)
    maxvcpus = data.get("maxvcpus")
    maxvcpus = vcpus if maxvcpus is None else _count(maxvcpus, f"{gpath}:maxvcpus", problems)
    if vcpus and maxvcpus and maxvcpus < vcpus:
        problems.add(f"{gpath}:maxvcpus", f"maxvcpus ({maxvcpus}) is below vcpus ({vcpus})")

    boot_data = data.get("boot") or {}
    if isinstance(boot_data, dict):
        boot_data = dict(boot_data)
        for key in ("bootloader", "kernel", "ramdisk", "cmdline"):
            if key in data:
                boot_data.setdefault(key, data[key])
    boot, boot_cdrom = _boot(boot_data, gtype, f"{gpath}:boot", problems)

    disks = []
    raw_disks = data.get("disks") or []
    if isinstance(raw_disks, dict):  # {xvda: {...}} form
        raw_disks = [
            dict(v or {}, target=k) if isinstance(v, dict) else {"source": v, "target": k} for k, v in raw_disks.items()
        ]
    if not isinstance(raw_disks, list):
        problems.add(f"{gpath}:disks", f"expected a list of disks, got {raw_disks!r}")
        raw_disks = []
    for i, item in enumerate(raw_disks):
        disk, more = validate_disk(item, f"{gpath}:disks:{i}", gtype)
        problems.extend(more)
        if disk is not None:
            disks.append(disk)
    if boot_cdrom and not any(d["device"] == "cdrom" and d["source"] == boot_cdrom for d in disks):
        disks.append(
            {"source": boot_cdrom, "target": None, "format": "raw", "readonly": True, "size": None, "device": "cdrom"}
        )
    if boot_cdrom and gtype == "hvm" and "cdrom" not in boot["order"]:
        boot["order"] = ["cdrom"] + boot["order"]
    assign_targets(disks, gtype)
    seen = {}
    for i, disk in enumerate(disks):
        # hvm: hda, sda and xvda are the same slot (emulated + PV pair); pv: distinct devices
        idx = target_index(disk["target"]) if gtype == "hvm" else disk["target"]
        if idx in seen:
            problems.add(
                f"{gpath}:disks:{i}:target", f"{disk['target']} is already used by disk {seen[idx][0]} ({seen[idx][1]})"
            )
        else:
            seen[idx] = (i, disk["target"])
    disks.sort(key=disk_order)

    nics = []
    raw_nics = data.get("nics") or []
    if not isinstance(raw_nics, list):
        problems.add(f"{gpath}:nics", f"expected a list of NICs, got {raw_nics!r}")
        raw_nics = []
    seen_macs = {}
    for i, item in enumerate(raw_nics):
        nic, more = validate_nic(item, f"{gpath}:nics:{i}")
        problems.extend(more)
        if nic is None:
            continue
        if nic["mac"] and nic["mac"] in seen_macs:
            problems.add(f"{gpath}:nics:{i}:mac", f"{nic['mac']} is already used by NIC {seen_macs[nic['mac']]}")
        elif nic["mac"]:
            seen_macs[nic["mac"]] = i
        nics.append(nic)

    graphics = _graphics(data.get("graphics"), f"{gpath}:graphics", problems)
    install = _install(data.get("install"), gtype, f"{gpath}:install", problems)
    if install and install["method"] == "network" and boot["kernel"]:
        problems.add(
            f"{gpath}:install",
            "a network install boots the tree's kernel once; the guest's own boot must be a bootloader (pygrub)",
        )

    spec = {
        "name": name,
        "type": gtype,
        "uuid": uuid,
        "memory": memory,
        "maxmem": maxmem,
        "vcpus": vcpus,
        "maxvcpus": maxvcpus,
        "boot": boot,
        "disks": disks,
        "nics": nics,
        "graphics": graphics,
        "on_poweroff": None,
        "on_reboot": None,
        "on_crash": None,
        "autostart": _bool(data.get("autostart", DEFAULTS["autostart"]), f"{gpath}:autostart", problems),
        "install": install,
    }
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        spec[event] = _choice(data.get(event, DEFAULTS[event]), EVENT_CHOICES[event], f"{gpath}:{event}", problems)
    if problems:
        return None, list(problems)
    return spec, []


def assign_targets(disks, gtype):
    """Give disks without a target the next free name (xvdX; hdc.. for hvm cdroms)."""
    used = {target_index(d["target"]) for d in disks if d["target"]}
    for disk in disks:
        if disk["target"]:
            continue
        if disk["device"] == "cdrom" and gtype == "hvm":
            prefix, start = "hd", 2
        else:
            prefix, start = "xvd", 0
        idx = start
        while idx in used:
            idx += 1
        used.add(idx)
        disk["target"] = target_name(prefix, idx)


def check(name, data, path="xen:guests"):
    """Like ``validate`` but raises SpecError with all problems joined."""
    spec, problems = validate(name, data, path)
    if problems:
        raise XenError("; ".join(problems))
    return spec


def copy_data(value):
    """A deep copy of spec data (dicts, lists and immutable values), much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: copy_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_data(item) for item in value]
    return value


def to_data(spec):
    """A spec back to pillar-shaped data that ``validate`` turns into the same spec."""
    return copy_data(spec)


def mac_owners(guests):
    """``{MAC: [guest names, sorted]}`` of the valid MACs in ``guests`` ({name: pillar data})."""
    owners = {}
    for name, data in sorted((guests or {}).items()):
        if not isinstance(data, dict) or not isinstance(data.get("nics"), list):
            continue
        for nic in data["nics"]:
            if isinstance(nic, dict) and nic.get("mac") and not macs.problem(nic["mac"]):
                owners.setdefault(macs.normalise(nic["mac"]), []).append(name)
    return owners


def mac_clashes(name, spec, owners, path="xen:guests"):
    """Problems for NICs of ``spec`` whose MAC another guest also has (``owners`` from :func:`mac_owners`)."""
    problems = []
    for i, nic in enumerate(spec["nics"]):
        others = [other for other in owners.get(nic["mac"], ()) if other != name] if nic["mac"] else []
        if others:
            problems.append(f"{path}:{name}:nics:{i}:mac: {nic['mac']} is also given to guest {others[0]}")
    return problems


# --------------------------------------------------------------------------- identity
def adopt(wanted, existing):
    """Fill what the wanted spec leaves open (uuid, NIC MACs) from the existing guest.

    A guest without a pillar uuid keeps the uuid it already has; a NIC without a
    MAC keeps the MAC of the NIC in the same position. Private keys (a leading
    ``_``, such as other tools' ``<metadata>`` from domain_xml.parse) come along.
    The spec is new down to its NICs; what it does not change it shares with
    ``wanted`` and ``existing`` (copy it before changing more).
    """
    spec = dict(wanted, nics=[dict(nic) for nic in wanted["nics"]])
    if existing is None:
        return spec
    for key in existing:
        if key.startswith("_") and key not in spec:
            spec[key] = existing[key]
    if spec["uuid"] is None:
        spec["uuid"] = existing.get("uuid")
    old_nics = existing.get("nics") or []
    for i, nic in enumerate(spec["nics"]):
        if nic["mac"] is None and i < len(old_nics):
            nic["mac"] = old_nics[i].get("mac")
    return spec


def fill_new(spec, taken_macs=()):
    """A uuid and MACs for a guest about to be defined for the first time."""
    spec = copy_data(spec)
    if spec["uuid"] is None:
        spec["uuid"] = str(uuidlib.uuid4())
    taken = set(taken_macs) | {n["mac"] for n in spec["nics"] if n["mac"]}
    for nic in spec["nics"]:
        if nic["mac"] is None:
            nic["mac"] = macs.generate(taken=taken)
            taken.add(nic["mac"])
    return spec


# --------------------------------------------------------------------------- diff
def _mask_graphics(value):
    if not value:
        return value
    value = dict(value)
    if value.get("password"):
        value["password"] = MASK
    return value


def _flatten(spec):
    """Spec -> {key: value} with the keys diff reports on."""
    flat = {}
    for key, value in spec.items():
        if key in NOT_DIFFED or key.startswith("_"):  # private keys are no part of what a guest is
            continue
        if key == "boot":
            for sub, subval in (value or {}).items():
                flat[f"boot:{sub}"] = subval
        elif key == "disks":
            for disk in value:
                flat[f"disks:{disk['target']}"] = {k: v for k, v in disk.items() if k != "size"}
        elif key == "nics":
            for i, nic in enumerate(value):
                flat[f"nics:{i}"] = dict(nic)
        elif key == "graphics":
            if value is None:
                flat["graphics"] = None
            else:
                for sub, subval in value.items():
                    flat[f"graphics:{sub}"] = subval
        else:
            flat[key] = value
    return flat


def diff(old, new):
    """``{key: {"old": .., "new": ..}}`` for what differs between two specs; secrets masked.

    ``old`` may be None (nothing defined yet). Keys are flattened; the VNC
    password shows as ``********`` and, when it changes, new reads ``changed``.
    """
    if old == new:  # the same spec: nothing to flatten and compare key by key
        return {}
    old_flat = _flatten(old) if old else {}
    new_flat = _flatten(new)
    changes = {}
    for key in list(new_flat) + [k for k in old_flat if k not in new_flat]:
        before = old_flat.get(key)
        after = new_flat.get(key)
        if before == after:
            continue
        if key == "graphics:password":
            before_m = MASK if before else None
            after_m = (CHANGED if before else MASK) if after else None
            changes[key] = {"old": before_m, "new": after_m}
            continue
        changes[key] = {"old": before, "new": after}
    return changes


def masked(spec):
    """A copy of ``spec`` safe to show or log (VNC password replaced by ``********``), in
    the shape of pillar (private keys left out)."""
    if spec is None:
        return None
    out = {key: copy_data(value) for key, value in spec.items() if not key.startswith("_")}
    out["graphics"] = _mask_graphics(out.get("graphics"))
    return out


LIVE_KEYS = ("memory", "vcpus", "autostart")


def needs_restart(key):
    """Whether a changed key reaches a running guest only by restarting it."""
    return key not in LIVE_KEYS


# --------------------------------------------------------------------------- how a state applies a guest
ENSURES = ("running", "defined", "stopped", "paused", "absent")
OPTION_CHECKS = {
    "ensure": lambda value, path, problems: vocab.choice(value, path, problems, ENSURES),
    "restart_on_change": vocab.boolean,
    "remove_disks": vocab.boolean,
    "force": vocab.boolean,
    "timeout": lambda value, path, problems: vocab.integer(value, path, problems, minimum=1),
    # read by others, not the guest states: the fleet runner's anti-affinity group, xen.host's
    # choice for this guest when dom0 shuts down
    "group": lambda value, path, problems: vocab.name(value, path, problems, what="a group name"),
    "on_host_shutdown": lambda value, path, problems: vocab.choice(value, path, problems, ("save", "shutdown")),
}


def _seconds(value, path, problems):
    try:
        seconds = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or not 0 < seconds < 86400:
        problems.expected(path, "a number of seconds above 0", value)
        return None
    return seconds


# arguments of the execution functions, checked with the same words
ARGUMENT_CHECKS = {
    **OPTION_CHECKS,
    **dict.fromkeys(
        ("overwrite", "keep", "enable", "crash_consistent", "start", "crash", "restore", "autostart", "test"),
        vocab.boolean,
    ),
    "lines": lambda value, path, problems: vocab.integer(value, path, problems, minimum=1),
    "interval": _seconds,
}


def arguments(**given):
    """The arguments of an execution function, checked: their values, or ``InvalidSpec`` naming each.

    ``arguments(timeout="x")`` -> ``timeout: expected a whole number of at least 1, got 'x'``.
    """
    problems = vocab.Problems()
    values = {key: ARGUMENT_CHECKS[key](value, key, problems) for key, value in given.items()}
    problems.raise_if_any()
    return values


def options(name, given, path="xen:guests"):
    """The formula keys of guest ``name`` (state arguments): ``(values, problems)``.

    ``given`` maps keys of :data:`ARGUMENT_CHECKS` to what the caller passed;
    booleans are ``true``/``false`` only and ``timeout`` a whole number of at
    least 1. Problems are named ``<path>:<name>:<key>``, as in pillar.
    """
    problems = vocab.Problems()
    values = {
        key: ARGUMENT_CHECKS[key](value, vocab.key_path(path, name, key), problems) for key, value in given.items()
    }
    return values, list(problems)
