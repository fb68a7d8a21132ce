"""Guest spec <-> xl.cfg text, and legacy xm configs (the tutorial's /etc/xen/NAME).

``load(text)`` reads an xl.cfg or an xm-era python-style config into a dict of
settings (strings, integers, lists; comments and commented-out lines dropped).
``to_data(settings)`` maps those settings onto pillar-shaped guest data that
``guest_spec.validate`` accepts -- so importing a config reports every problem
with its setting's name, like pillar does. ``parse(text)`` does both.
``render(spec)`` writes xl.cfg text that ``xl create`` accepts and that
``parse`` reads back into the same spec.

Understood: ``tap:aio:``, ``tap:qcow2:``, ``file:``, ``phy:`` disk prefixes and
``,hdc:cdrom`` devices; the positional (``target,format,vdev,access``) and
``key=value`` xl disk syntaxes; ``vif`` and ``vfb`` strings; top-level ``vnc*``
settings of HVM guests; ``builder = "hvm"`` and the hvmloader ``kernel`` of xm;
``boot = "dc"``; ``extra``/``root`` kernel arguments.

What xl.cfg has no setting for (a NIC on a libvirt network, disk sizes to
create, autostart, the install recipe) is kept in one comment line,
``#saltext-xen: {json}``, that xl ignores.

Nothing is dropped silently: ``read(text)`` also returns every setting the
spec has no place for (``device_model``, ``localtime``, a vif's ``vifname``,
top-level ``vnc*`` settings a ``vfb`` overrides, ...) as ``{key: value}``, with
keys like ``vif:0:vifname`` for parts of a device string. Passwords among them
show as ``********``.
"""

import json
import os
import re

from saltext_xen.core import protect
from saltext_xen.core.errors import XenError
from saltext_xen.guests import guest_spec

META_PREFIX = "#saltext-xen:"
MAX_CONFIG_BYTES = 1024 * 1024  # a longer file is no guest config
HVMLOADER_SUFFIX = "hvmloader"
_BOOT_LETTERS = {"c": "hd", "d": "cdrom", "n": "network", "a": "fd"}
_LETTER_OF = {v: k for k, v in _BOOT_LETTERS.items()}


SECRET_WORDS = ("passw", "secret")
# The top-level VNC settings graphics_from_settings understands.
_VNC_SETTINGS = ("vnc", "vncdisplay", "vncunused", "vnclisten", "vncpasswd", "keymap")
_VFB_KEYS = ("type",) + _VNC_SETTINGS
_NIC_KEYS = ("mac", "bridge", "model", "script")
# key=value disk settings disk_from_string reads; backendtype follows from the path (phy for
# block devices, qdisk for files), which is how render writes it
_DISK_KEYS = ("target", "vdev", "format", "access", "mode", "devtype", "cdrom", "backendtype")


class _Reads(dict):
    """Settings that remember which of them were read: what ``to_data`` does not read, it ignores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def _shown(key, value):
    """``value`` as it may be shown: passwords masked."""
    if any(word in str(key).lower() for word in SECRET_WORDS) and value not in (None, ""):
        return guest_spec.MASK
    return value


class ConfigError(XenError):
    """The config text cannot be read (bad syntax), with its line number."""


# --------------------------------------------------------------------------- lexer
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f]+|\\\n)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\"\"\"(?:.|\n)*?\"\"\")
  | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[=\[\],;(){}])
    """,
    re.X,
)


def _tokens(text):
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ConfigError(f"line {line}: cannot read {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "comment":
            yield ("comment", value, line)
        elif kind not in ("ws",):
            yield (kind, value, line)
        line += value.count("\n")
        pos = match.end()
    yield ("nl", "\n", line)
    yield ("eof", "", line)


def _unquote(token):
    body = token[3:-3] if token.startswith('"""') else token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def load(text):
    """Settings of an xl/xm config: ``({name: value}, meta)``; meta from ``#saltext-xen:``."""
    settings, meta = {}, {}
    toks = list(_tokens(text))
    i = 0

    def value_at(j):
        kind, val, line = toks[j]
        if kind == "eof":
            raise ConfigError(f"line {line}: the file ends where a value or ']' was expected")
        if kind == "string":
            return _unquote(val), j + 1
        if kind == "number":
            return (
                int(val, 16) if val.lower().startswith(("0x", "-0x")) else (float(val) if "." in val else int(val))
            ), j + 1
        if kind == "ident" and val in ("True", "False", "None"):
            return {"True": 1, "False": 0, "None": None}[val], j + 1
        if kind == "punct" and val in "[(":
            close = "]" if val == "[" else ")"
            items, j = [], j + 1
            while True:
                while toks[j][0] in ("nl", "comment"):
                    j += 1
                if toks[j][1] == close:
                    return items, j + 1
                item, j = value_at(j)
                items.append(item)
                while toks[j][0] in ("nl", "comment"):
                    j += 1
                if toks[j][1] == ",":
                    j += 1
                elif toks[j][1] != close:
                    raise ConfigError(f"line {toks[j][2]}: expected ',' or '{close}' in a list, got {toks[j][1]!r}")
        raise ConfigError(f'line {line}: expected a value ("text", a number or a [list]), got {val!r}')

    while toks[i][0] != "eof":
        kind, val, line = toks[i]
        if kind == "comment":
            if val.startswith(META_PREFIX):
                try:
                    meta = json.loads(val[len(META_PREFIX) :])
                except ValueError:
                    raise ConfigError(f"line {line}: the {META_PREFIX} comment is not valid JSON") from None
                if not isinstance(meta, dict):
                    raise ConfigError(f"line {line}: the {META_PREFIX} comment must hold a JSON object")
            i += 1
            continue
        if kind == "nl" or (kind == "punct" and val == ";"):
            i += 1
            continue
        if kind != "ident":
            raise ConfigError(f"line {line}: expected a setting name, got {val!r}")
        if toks[i + 1][1] != "=":
            raise ConfigError(f"line {line}: expected '=' after {val}")
        settings[val], i = value_at(i + 2)
        if toks[i][0] not in ("nl", "comment") and toks[i][1] != ";":
            raise ConfigError(f"line {toks[i][2]}: unexpected {toks[i][1]!r} after the value of {val}")
    return settings, meta


# --------------------------------------------------------------------------- pieces
def _split_kv(text):
    out = {}
    for raw in str(text).split(","):
        part = raw.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        out[key.strip().lower()] = value.strip()
    return out


_PREFIX_FORMAT = {
    "phy": "raw",
    "file": "raw",
    "aio": "raw",
    "raw": "raw",
    "tap:aio": "raw",
    "tap2:aio": "raw",
    "tap:tapdisk:aio": "raw",
    "tap2:tapdisk:aio": "raw",
    "tap:qcow2": "qcow2",
    "qcow2": "qcow2",
    "tap2:qcow2": "qcow2",
    "tap2:tapdisk:qcow2": "qcow2",
    "tap:tapdisk:qcow2": "qcow2",
}


def _strip_prefix(pdev):
    """``tap:aio:/path`` -> (``/path``, ``raw``); unknown or no prefix -> raw."""
    for prefix in sorted(_PREFIX_FORMAT, key=len, reverse=True):
        if pdev.startswith(prefix + ":"):
            return pdev[len(prefix) + 1 :], _PREFIX_FORMAT[prefix]
    return pdev, None


def disk_from_string(text):
    """One xl/xm disk string -> pillar-shaped disk data."""
    text = str(text).strip()
    data = {}
    parts = [p.strip() for p in text.split(",")]
    if "=" in parts[0] or any(p.startswith(("vdev=", "target=", "format=", "access=", "devtype=")) for p in parts):
        # key=value form; target= swallows the rest of the string
        head, sep, target = text.partition("target=")
        kv = _split_kv(head)
        positional = [p for p in head.split(",") if p.strip() and "=" not in p]
        if sep:
            kv["target"] = target.strip()
        source = kv.get("target") or None
        vdev = kv.get("vdev")
        fmt = kv.get("format")
        access = kv.get("access", kv.get("mode", "rw"))
        devtype = kv.get("devtype")
        if positional and not vdev:
            vdev = positional[0]
        if kv.get("cdrom") is not None:
            devtype = "cdrom"
    elif len(parts) == 4:
        source, fmt, vdev, access = parts
        devtype = None
    elif len(parts) == 3:
        source, vdev, access = parts
        fmt, devtype = None, None
    else:
        raise ConfigError(f"cannot read disk {text!r}: expected 'PATH,VDEV,MODE' or 'key=value,...,target=PATH'")
    if source:
        source, prefix_fmt = _strip_prefix(source)
        fmt = fmt or prefix_fmt
    if vdev and vdev.startswith("ioemu:"):  # xm HVM: emulated device name
        vdev = vdev[len("ioemu:") :]
    if vdev and ":" in vdev:
        vdev, _, kind = vdev.partition(":")
        if kind == "cdrom":
            devtype = "cdrom"
    data["source"] = source or None
    data["target"] = vdev
    if fmt:
        data["format"] = {"qcow": "qcow2"}.get(fmt, fmt)
    data["device"] = devtype or "disk"
    data["readonly"] = str(access).lower() in ("r", "ro", "read-only", "readonly")
    return data


def disk_to_string(disk):
    """A spec disk -> xl's key=value disk string (target last, as xl wants)."""
    parts = [f"format={disk['format']}", f"vdev={disk['target']}", f"access={'ro' if disk['readonly'] else 'rw'}"]
    if disk["device"] == "cdrom":
        parts.append("devtype=cdrom")
    if guest_spec.is_block(disk["source"]) and disk["format"] == "raw":
        parts.append("backendtype=phy")
    elif disk["source"]:
        parts.append("backendtype=qdisk")
    parts.append(f"target={disk['source'] or ''}")
    return ",".join(parts)


def nic_from_string(text):
    kv = _split_kv(text)
    data = {}
    for key in ("mac", "bridge", "model", "script"):
        if kv.get(key):
            data[key] = kv[key]
    return data


def nic_to_string(nic):
    parts = []
    for key in ("mac", "bridge", "model", "script"):
        if nic.get(key):
            parts.append(f"{key}={nic[key]}")
    return ",".join(parts)


def graphics_from_settings(kv):
    """vfb keys (or top-level vnc* keys) -> pillar-shaped graphics data, None if VNC is off."""
    kind = str(kv.get("type", "")).lower()
    vnc = str(kv.get("vnc", "")).strip()
    if kind and kind != "vnc":
        return None
    if not kind and vnc in ("", "0"):
        return None  # e.g. sdl=1 only, or vnc=0
    if vnc == "0":
        return None
    data = {}
    display = kv.get("vncdisplay")
    unused = str(kv.get("vncunused", "1")) not in ("0", "")
    if display not in (None, ""):
        data["display"] = int(str(display)) if str(display).strip().isdigit() else display
    elif not unused:
        data["display"] = 0
    if kv.get("vnclisten"):
        data["listen"] = str(kv["vnclisten"])
    if kv.get("vncpasswd") not in (None, ""):
        data["password"] = str(kv["vncpasswd"])
    if kv.get("keymap"):
        data["keymap"] = str(kv["keymap"])
    return data


def graphics_to_settings(graphics):
    out = {"type": "vnc", "vnclisten": graphics["listen"]}
    if graphics["display"] is None:
        out["vncunused"] = 1
    else:
        out["vncunused"] = 0
        out["vncdisplay"] = graphics["display"]
    if graphics.get("password"):
        out["vncpasswd"] = graphics["password"]
    if graphics.get("keymap"):
        out["keymap"] = graphics["keymap"]
    return out


# --------------------------------------------------------------------------- whole guest
def to_data(settings, meta=None, ignored=None):
    """xl/xm settings -> ``(name, data)`` for guest_spec.validate.

    ``ignored``: a dict to fill with the settings (and parts of device strings)
    that have no place in the spec, ``{key: value}``, passwords masked.
    """
    meta = meta or {}
    s = _Reads(settings)
    skipped = {}
    name = s.get("name")
    data = {}
    kernel = s.get("kernel")
    builder = str(s.get("type") or s.get("builder") or "").lower()
    if builder in ("generic", "linux", "xenpv"):
        builder = "pv"
    if not builder:
        builder = "hvm" if kernel and str(kernel).endswith(HVMLOADER_SUFFIX) else "pv"
    data["type"] = builder
    if builder == "hvm" and kernel and str(kernel).endswith(HVMLOADER_SUFFIX):
        kernel = None
    for key in ("uuid", "memory", "maxmem", "vcpus", "maxvcpus", "on_poweroff", "on_reboot", "on_crash"):
        if s.get(key) is not None:
            data[key] = s[key]
    boot = {}
    if s.get("bootloader"):
        boot["bootloader"] = s["bootloader"]
    if kernel:
        boot["kernel"] = kernel
    if s.get("ramdisk"):
        boot["ramdisk"] = s["ramdisk"]
    cmdline = s.get("cmdline")
    if cmdline is None:
        pieces = []
        if s.get("root"):
            pieces.append(f"root={s['root']}")
        if s.get("extra"):
            pieces.append(str(s["extra"]))
        cmdline = " ".join(pieces) or None
    if cmdline:
        boot["cmdline"] = cmdline
    if builder == "hvm" and s.get("boot"):
        boot["order"] = [_BOOT_LETTERS.get(ch, ch) for ch in str(s["boot"])]
    if boot:
        data["boot"] = boot
    disks = s.get("disk") or []
    data["disks"] = [disk_from_string(d) for d in (disks if isinstance(disks, list) else [disks])]
    if builder == "hvm" and s.get("cdrom"):
        data["disks"].append({"source": s["cdrom"], "target": "hdc", "device": "cdrom", "readonly": True})
    for i, text in enumerate(disks if isinstance(disks, list) else [disks]):
        head = str(text).partition("target=")[0]  # target= swallows the rest of the string
        if "=" not in head:
            continue  # the positional form: every part is read
        words = []
        for part in (p.strip() for p in head.split(",")):
            key, eq, value = part.partition("=")
            if eq and key.strip().lower() not in _DISK_KEYS:
                skipped[f"disk:{i}:{key.strip().lower()}"] = _shown(key, value.strip())
            elif part and not eq:
                words.append(part)
        has_vdev = any(p.strip().lower().startswith("vdev=") for p in head.split(","))
        for word in words[0 if has_vdev else 1 :]:  # the first bare word is the vdev
            skipped[f"disk:{i}:{word}"] = True
    vifs = s.get("vif") or []
    data["nics"] = []
    for i, text in enumerate(vifs if isinstance(vifs, list) else [vifs]):
        data["nics"].append(nic_from_string(text))
        kv = _split_kv(text)
        for key, value in kv.items():
            # type=ioemu: the emulated NIC an hvm guest gets anyway; vif/netfront: a pv guest's NIC
            understood = key in _NIC_KEYS or (
                key == "type" and value.lower() in (("ioemu",) if builder == "hvm" else ("vif", "netfront"))
            )
            if not understood:
                skipped[f"vif:{i}:{key}"] = _shown(key, value)
    graphics = None
    vfbs = s.get("vfb") or []
    vfbs = vfbs if isinstance(vfbs, list) else [vfbs]
    for i, vfb in enumerate(vfbs):
        kv = _split_kv(vfb)
        if graphics is None:
            graphics = graphics_from_settings(kv)
            if graphics is not None:
                for key, value in kv.items():
                    if key not in _VFB_KEYS:
                        skipped[f"vfb:{i}:{key}"] = _shown(key, value)
                continue
        skipped[f"vfb:{i}"] = ",".join(f"{k}={_shown(k, v)}" if v else k for k, v in kv.items())
    if graphics is None and str(s.get("vnc", "0")) not in ("0", ""):
        graphics = graphics_from_settings(dict({k: s[k] for k in _VNC_SETTINGS if k in s}, type="vnc"))
    if graphics is not None:
        data["graphics"] = graphics
    # what xl has no words for
    for i, extra in enumerate(meta.get("nics") or []):
        if i < len(data["nics"]) and isinstance(extra, dict) and extra:
            data["nics"][i].update(extra)
            if extra.get("network"):
                data["nics"][i].pop("bridge", None)
    sizes = meta.get("sizes") if isinstance(meta.get("sizes"), dict) else {}
    for target, size in sizes.items():
        for disk in data["disks"]:
            if disk.get("target") == target:
                disk["size"] = size
    if "autostart" in meta:
        data["autostart"] = meta["autostart"]
    if meta.get("install"):
        data["install"] = meta["install"]
    if ignored is not None:
        for key in settings:
            if key not in s.read:
                ignored[key] = _shown(key, settings[key])
        ignored.update(skipped)
    return name, data


def read(text, name=None, path="xen:guests"):
    """xl.cfg / xm config text -> ``(spec, problems, ignored)``.

    problems name the guest's keys; ``ignored`` holds the settings the spec has
    no place for, ``{key: value}``, passwords masked (see the module doc).
    """
    settings, meta = load(text)
    ignored = {}
    cfg_name, data = to_data(settings, meta, ignored=ignored)
    name = name or cfg_name
    if not name:
        return None, [f'{path}: the config has no name = "..." setting'], ignored
    spec, problems = guest_spec.validate(name, data, path)
    return spec, problems, ignored


def parse(text, name=None, path="xen:guests"):
    """xl.cfg / xm config text -> ``(spec, problems)`` (problems name the guest's keys)."""
    spec, problems, _ignored = read(text, name=name, path=path)
    return spec, problems


def _q(value):
    return json.dumps(str(value))


def render(spec):
    """xl.cfg text for ``spec``; contains the VNC password if there is one (write it 0600)."""
    lines = [f"# Xen guest {spec['name']}: written by saltext-xen from its spec.", ""]
    add = lines.append
    add(f"name = {_q(spec['name'])}")
    if spec.get("uuid"):
        add(f"uuid = {_q(spec['uuid'])}")
    add(f"type = {_q(spec['type'])}")
    add(f"memory = {spec['memory']}")
    add(f"maxmem = {spec['maxmem']}")
    add(f"vcpus = {spec['vcpus']}")
    add(f"maxvcpus = {spec['maxvcpus']}")
    boot = spec["boot"]
    if boot.get("bootloader"):
        add(f"bootloader = {_q(boot['bootloader'])}")
    if boot.get("kernel"):
        add(f"kernel = {_q(boot['kernel'])}")
    if boot.get("ramdisk"):
        add(f"ramdisk = {_q(boot['ramdisk'])}")
    if boot.get("cmdline"):
        add(f"cmdline = {_q(boot['cmdline'])}")
    if spec["type"] == "hvm":
        add(f"boot = {_q(''.join(_LETTER_OF[d] for d in boot.get('order') or ['hd']))}")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        add(f"{event} = {_q(spec[event])}")
    add("disk = [ " + ", ".join(_q(disk_to_string(d)) for d in spec["disks"]) + " ]")
    add("vif = [ " + ", ".join(_q(nic_to_string(n)) for n in spec["nics"]) + " ]")
    if spec.get("graphics"):
        kv = graphics_to_settings(spec["graphics"])
        if spec["type"] == "hvm":
            add("vnc = 1")
            for key, value in kv.items():
                if key != "type":
                    add(f"{key} = {value if isinstance(value, int) else _q(value)}")
        else:
            add("vfb = [ " + _q(",".join(f"{k}={v}" for k, v in kv.items())) + " ]")
    elif spec["type"] == "hvm":
        add("vnc = 0")
    meta = {}
    nic_meta = [{"network": n["network"]} if n.get("network") else {} for n in spec["nics"]]
    if any(nic_meta):
        meta["nics"] = nic_meta
    sizes = {d["target"]: d["size"] for d in spec["disks"] if d.get("size")}
    if sizes:
        meta["sizes"] = sizes
    if spec.get("autostart"):
        meta["autostart"] = True
    if spec.get("install"):
        meta["install"] = spec["install"]
    if meta:
        add("")
        add("# Settings xl has no words for, kept for saltext-xen:")
        add(META_PREFIX + " " + json.dumps(meta, sort_keys=True))
    return "\n".join(lines) + "\n"


def has_secret(spec):
    return bool(spec.get("graphics") and spec["graphics"].get("password"))


def same_guest_config(path, name):
    """True if ``path`` is a regular file holding an xl config of guest ``name`` (its ``name =``)."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_CONFIG_BYTES:
            return False
        with open(path, encoding="utf-8") as fh:
            settings, _meta = load(fh.read())
    except (OSError, UnicodeDecodeError, ValueError, XenError):
        return False
    return settings.get("name") == name


def write(path, spec, in_use=()):
    """Write ``render(spec)`` to ``path`` whole (``protect.whole_file``).

    Mode 0600 when the config holds a VNC password, else 0644. Returns True if
    the file changed, False if it already had exactly this content. An existing
    file is replaced only when it is an xl config of the same guest (or empty);
    a disk a defined guest uses (``in_use``: ``{path: guests}``) never is.
    """
    path = protect.absolute(path, "path")
    text = render(spec)
    mode = 0o600 if has_secret(spec) else 0o644
    if os.path.lexists(path):
        refusal = protect.overwrite_problem(path, in_use, force=True)  # a disk in use; data is judged below
        if refusal is None and not same_guest_config(path, spec["name"]) and protect.holds_data(path):
            refusal = (
                f"{path} holds data and is not an xl config of {spec['name']}; it is left as it is "
                "(remove it or choose another path)"
            )
        if refusal:
            raise protect.WouldLoseData(refusal)
    try:
        with open(path, encoding="utf-8") as fh:
            same = fh.read() == text
        if same and (os.stat(path).st_mode & 0o777) == mode:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    try:
        with protect.whole_file(path, overwrite=os.path.lexists(path), mode=mode, text=True) as out:
            out.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return True
