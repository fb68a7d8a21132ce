"""Guest spec <-> libvirt domain XML for the Xen driver (``<domain type='xen'>``).

``render(spec)`` makes the XML to define; ``parse(xml)`` reads a persistent or
live definition back into a spec, ignoring what libvirt adds by itself (ids,
clock, video, controllers, device addresses, interface target names, listen
children, autoport ports). What the XML has no element for -- disk sizes to
create and the install recipe -- travels in ``<metadata>`` under this project's
namespace so that ``parse(render(spec)) == spec`` (autostart is not part of a
definition: pass it to ``parse``).

Other children of ``<metadata>`` belong to other tools (a clone's record of its
source, virt-manager's, ...): ``parse`` keeps each as it is, as XML text, in the
spec's private key :data:`KEPT_METADATA`, and ``render`` writes them back, so a
definition rebuilt from a spec read from libvirt keeps them. Private keys (a
leading ``_``) are no part of a guest's pillar: ``guest_spec.diff`` ignores
them and ``guest_spec.adopt`` carries them from the existing definition to the
wanted spec.

Disk backends: block devices and LVs (``/dev/...``) use ``phy`` (blkback);
raw image files and qcow2 use ``qemu`` (qdisk) with the matching type.
"""

import json
import xml.etree.ElementTree as ET

from saltext_xen.core.errors import XenError
from saltext_xen.guests import guest_spec

META_NS = "https://github.com/saltext-xen/guest/1"
ET.register_namespace("saltext", META_NS)
_OWN_META = f"{{{META_NS}}}guest"
#: spec key holding the other ``<metadata>`` children, each as XML text, in their order
KEPT_METADATA = "_metadata"

_OS_TYPE = {"pv": ("xenpv", "linux"), "hvm": ("xenfv", "hvm"), "pvh": ("xenpvh", "xenpvh")}
_BUS = {"xvd": "xen", "hd": "ide", "sd": "scsi", "vd": "virtio"}


class XmlError(XenError):
    """A definition libvirt gave us that cannot be read as a Xen guest."""


def _sub(parent, tag, text=None, **attrs):
    el = ET.SubElement(parent, tag, {k.rstrip("_"): str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = str(text)
    return el


def _disk_el(disk, gtype="pv"):
    block = guest_spec.is_block(disk["source"]) and disk["format"] == "raw"
    el = ET.Element("disk", {"type": "block" if block else "file", "device": disk["device"]})
    if block:
        _sub(el, "driver", name="phy")
    else:
        _sub(el, "driver", name="qemu", type_=disk["format"])
    if disk["source"]:
        _sub(el, "source", **({"dev": disk["source"]} if block else {"file": disk["source"]}))
    target = disk["target"]
    prefix = target.rstrip("abcdefghijklmnopqrstuvwxyz") or target[:-1]
    for p in ("xvd", "hd", "sd", "vd"):
        if target.startswith(p):
            prefix = p
            break
    bus = _BUS.get(prefix, "xen") if gtype == "hvm" else "xen"
    _sub(el, "target", dev=target, bus=bus)
    if disk["readonly"]:
        _sub(el, "readonly")
    return el


def _nic_el(nic):
    kind = "network" if nic.get("network") else "bridge"
    el = ET.Element("interface", {"type": kind})
    if nic.get("mac"):
        _sub(el, "mac", address=nic["mac"])
    _sub(el, "source", **({"network": nic["network"]} if kind == "network" else {"bridge": nic["bridge"]}))
    if nic.get("script"):
        _sub(el, "script", path=nic["script"])
    if nic.get("model"):
        _sub(el, "model", type_=nic["model"])
    return el


def _graphics_el(graphics):
    display = graphics["display"]
    attrs = {
        "type": "vnc",
        "port": str(5900 + display) if display is not None else "-1",
        "autoport": "no" if display is not None else "yes",
        "listen": graphics["listen"],
    }
    if graphics.get("keymap"):
        attrs["keymap"] = graphics["keymap"]
    if graphics.get("password"):
        attrs["passwd"] = graphics["password"]
    el = ET.Element("graphics", attrs)
    _sub(el, "listen", type_="address", address=graphics["listen"])
    return el


def _text_of(el):
    return ET.tostring(el, encoding="unicode")


def disk_xml(disk, gtype="pv"):
    """The ``<disk>`` element for attachDeviceFlags/detachDeviceFlags."""
    return _text_of(_disk_el(disk, gtype))


def nic_xml(nic):
    """The ``<interface>`` element for attachDeviceFlags/detachDeviceFlags."""
    return _text_of(_nic_el(nic))


def render(spec):
    """The libvirt definition of ``spec`` (a normalised spec from guest_spec.validate)."""
    root = ET.Element("domain", {"type": "xen"})
    _sub(root, "name", spec["name"])
    if spec.get("uuid"):
        _sub(root, "uuid", spec["uuid"])
    meta = _metadata(spec)
    kept = [_kept_el(text) for text in spec.get(KEPT_METADATA) or ()]
    holder = None
    if meta is not None or kept:
        holder = _sub(root, "metadata")
        if meta is not None:
            holder.append(meta)
    _sub(root, "memory", spec["maxmem"] * 1024, unit="KiB")
    _sub(root, "currentMemory", spec["memory"] * 1024, unit="KiB")
    vcpu_attrs = {"placement": "static"}
    if spec["vcpus"] != spec["maxvcpus"]:
        vcpu_attrs["current"] = spec["vcpus"]
    _sub(root, "vcpu", spec["maxvcpus"], **vcpu_attrs)
    boot = spec["boot"]
    if boot.get("bootloader"):
        _sub(root, "bootloader", boot["bootloader"])
    os_el = _sub(root, "os")
    machine, os_type = _OS_TYPE[spec["type"]]
    _sub(os_el, "type", os_type, arch="x86_64", machine=machine)
    if spec["type"] == "hvm":
        _sub(os_el, "loader", "/usr/lib/xen/boot/hvmloader", type_="rom")
    if boot.get("kernel"):
        _sub(os_el, "kernel", boot["kernel"])
        if boot.get("ramdisk"):
            _sub(os_el, "initrd", boot["ramdisk"])
        if boot.get("cmdline"):
            _sub(os_el, "cmdline", boot["cmdline"])
    if spec["type"] == "hvm":
        for dev in boot.get("order") or ["hd"]:
            _sub(os_el, "boot", dev=dev)
        features = _sub(root, "features")
        for name in ("acpi", "apic", "pae"):
            _sub(features, name)
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(root, event, spec[event])
    devices = _sub(root, "devices")
    for disk in spec["disks"]:
        devices.append(_disk_el(disk, spec["type"]))
    for nic in spec["nics"]:
        devices.append(_nic_el(nic))
    if spec.get("graphics"):
        if spec["type"] == "hvm":
            _sub(devices, "input", type_="tablet", bus="usb")
        devices.append(_graphics_el(spec["graphics"]))
    ET.indent(root)
    if kept:
        _append_kept(holder, kept)  # after indenting: their own text and whitespace stay as they were
    return _text_of(root)


def _kept_el(text):
    try:
        return ET.fromstring(text)
    except (ET.ParseError, TypeError) as exc:
        raise XmlError(f"{KEPT_METADATA}: a kept <metadata> child is not XML ({exc}): {text!r}") from None


def _append_kept(holder, kept, indent="  ", level=1):
    inner, outer = "\n" + indent * (level + 1), "\n" + indent * level
    if len(holder):
        holder[-1].tail = inner
    else:
        holder.text = inner
    for el in kept:
        el.tail = inner
        holder.append(el)
    holder[-1].tail = outer


def _foreign_metadata(holder):
    """The children of ``<metadata>`` but this project's own, each as XML text (tail left out)."""
    kept = []
    for child in holder if holder is not None else ():
        if child.tag == _OWN_META or not isinstance(child.tag, str):
            continue
        tail, child.tail = child.tail, None
        kept.append(ET.tostring(child, encoding="unicode"))
        child.tail = tail
    return kept


def _metadata(spec):
    extra = {}
    sizes = {d["target"]: d["size"] for d in spec["disks"] if d.get("size")}
    if sizes:
        extra["sizes"] = sizes
    if spec.get("install"):
        extra["install"] = spec["install"]
    if not extra:
        return None
    el = ET.Element(f"{{{META_NS}}}guest")
    el.text = json.dumps(extra, sort_keys=True)
    return el


def _int(text, default=None):
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return default


def _mib(el):
    if el is None:
        return None
    value = _int(el.text, 0)
    unit = (el.get("unit") or "KiB").lower()
    factor = {
        "b": 1 / 1048576,
        "bytes": 1 / 1048576,
        "k": 1 / 1024,
        "kib": 1 / 1024,
        "kb": 1000 / 1048576,
        "m": 1,
        "mib": 1,
        "mb": 1000000 / 1048576,
        "g": 1024,
        "gib": 1024,
        "gb": 1e9 / 1048576,
    }.get(unit, 1 / 1024)
    return round(value * factor)


def _domain_root(xml_text):
    """The ``<domain>`` element of a definition given as text or already parsed."""
    if isinstance(xml_text, ET.Element):
        root = xml_text
    else:
        try:
            root = ET.fromstring(xml_text)
        except ET.ParseError as exc:
            raise XmlError(f"the guest definition is not valid XML: {exc}") from None
    if root.tag != "domain":
        raise XmlError(f"expected a <domain> definition, got <{root.tag}>")
    return root


def _child(el, tag):
    """The first child ``tag`` of ``el`` (None when ``el`` is None or has none)."""
    return el.find(tag) if el is not None else None


def _children(el, tag):
    return el.findall(tag) if el is not None else []


def _text(el, tag):
    return el.findtext(tag) if el is not None else None


def parse(xml_text, autostart=False):
    """A libvirt definition (persistent or live; text, or its parsed root element) -> normalised spec."""
    root = _domain_root(xml_text)
    # one-tag lookups: a path ("os/type") goes through ElementPath, many times slower
    os_el = _child(root, "os")
    type_el = _child(os_el, "type")
    os_type = ((type_el.text if type_el is not None else None) or "linux").strip()
    machine = type_el.get("machine") if type_el is not None else None
    if os_type == "hvm":
        gtype = "hvm"
    elif os_type == "xenpvh" or machine == "xenpvh":
        gtype = "pvh"
    else:
        gtype = "pv"
    maxmem = _mib(root.find("memory"))
    memory = _mib(root.find("currentMemory")) or maxmem
    vcpu_el = root.find("vcpu")
    maxvcpus = _int(vcpu_el.text, 1) if vcpu_el is not None else 1
    vcpus = _int(vcpu_el.get("current"), maxvcpus) if vcpu_el is not None else 1
    boot = guest_spec.empty_boot()
    boot["bootloader"] = (root.findtext("bootloader") or "").strip() or None
    for key, tag in (("kernel", "kernel"), ("ramdisk", "initrd"), ("cmdline", "cmdline")):
        boot[key] = (_text(os_el, tag) or "").strip() or None
    if gtype == "hvm":
        boot["order"] = [b.get("dev") for b in _children(os_el, "boot")] or ["hd"]
    meta = {}
    meta_el = _child(root.find("metadata"), _OWN_META)
    if meta_el is not None and meta_el.text:
        try:
            meta = json.loads(meta_el.text)
        except ValueError:
            meta = {}
    sizes = meta.get("sizes") or {}
    devices = root.find("devices")
    disks = []
    for el in _children(devices, "disk"):
        disks.append(_parse_disk(el, sizes))
    disks.sort(key=guest_spec.disk_order)
    nics = [_parse_nic(el) for el in _children(devices, "interface")]
    graphics = None
    for el in _children(devices, "graphics"):
        if el.get("type") == "vnc":
            graphics = _parse_graphics(el)
            break
    uuid = (root.findtext("uuid") or "").strip() or None
    spec = {
        "name": (root.findtext("name") or "").strip(),
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
        "on_poweroff": (root.findtext("on_poweroff") or "destroy").strip(),
        "on_reboot": (root.findtext("on_reboot") or "restart").strip(),
        "on_crash": (root.findtext("on_crash") or "destroy").strip(),
        "autostart": bool(autostart),
        "install": meta.get("install"),
    }
    kept = _foreign_metadata(root.find("metadata"))
    if kept:
        spec[KEPT_METADATA] = kept
    return spec


def _parse_disk(el, sizes):
    source_el = el.find("source")
    source = None
    if source_el is not None:
        source = source_el.get("file") or source_el.get("dev") or source_el.get("volume")
    driver = el.find("driver")
    fmt = driver.get("type") if driver is not None else None
    if fmt not in guest_spec.FORMATS:
        fmt = guest_spec.guess_format(source) if fmt is None else "raw"
    target_el = el.find("target")
    target = target_el.get("dev") if target_el is not None else None
    device = el.get("device", "disk")
    return {
        "source": source,
        "target": target,
        "format": fmt,
        "readonly": el.find("readonly") is not None,
        "size": sizes.get(target),
        "device": device if device in guest_spec.DEVICES else "disk",
    }


def _parse_nic(el):
    kind = el.get("type")
    source = el.find("source")
    mac_el = el.find("mac")
    script = el.find("script")
    model = el.find("model")
    return {
        "mac": mac_el.get("address").lower() if mac_el is not None and mac_el.get("address") else None,
        "bridge": source.get("bridge") if source is not None and kind == "bridge" else None,
        "network": source.get("network") if source is not None and kind == "network" else None,
        "model": model.get("type") if model is not None else None,
        "script": script.get("path") if script is not None else None,
    }


def _parse_graphics(el):
    autoport = el.get("autoport", "yes") == "yes"
    port = _int(el.get("port"), -1)
    listen = el.get("listen")
    if not listen:
        child = el.find("listen")
        listen = child.get("address") if child is not None else None
    return {
        "type": "vnc",
        "display": None if autoport or port < 5900 else port - 5900,
        "listen": listen or "127.0.0.1",
        "password": el.get("passwd") or None,
        "keymap": el.get("keymap") or None,
    }


def live_parts(xml_text):
    """What a running guest's definition tells beyond its spec (which ``parse`` gives).

    ``os_type`` is libvirt's own word (``linux``, ``hvm``, ``xenpvh``);
    ``interfaces``, in the order of the spec's NICs, has the vif libvirt made for
    each NIC and the bridge it is on (a NIC on a libvirt network too);
    ``graphics`` has every display, VNC or not, with the port it has now (an
    autoport VNC display gets one only while the guest runs).
    """
    root = _domain_root(xml_text)
    interfaces = []
    for el in root.findall("devices/interface"):
        source, target = el.find("source"), el.find("target")
        interfaces.append(
            {
                "vif": target.get("dev") if target is not None else None,
                "bridge": source.get("bridge") if source is not None else None,
            }
        )
    graphics = []
    for el in root.findall("devices/graphics"):
        port = _int(el.get("port"), 0)
        port = port if port > 0 else None
        graphics.append(
            {
                "type": el.get("type"),
                "port": port,
                "display": port - 5900 if port and el.get("type") == "vnc" else None,
                "listen": el.get("listen"),
                "autoport": el.get("autoport") == "yes",
            }
        )
    return {"os_type": root.findtext("os/type"), "interfaces": interfaces, "graphics": graphics}
