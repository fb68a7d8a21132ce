"""Installing a new guest, as ``virt-install`` did in the tutorial.

PV network install (``virt-install -p -n vm02 -f IMG -s 8 -r 512 --vcpus=2 -b xenbr0
-l URL -x "ks=URL"``):

1. create the guest's disk images that are missing (sparse),
2. fetch the install tree's Xen kernel and initrd (``images/xen/vmlinuz`` and
   ``images/xen/initrd.img`` in RHEL-style trees) into ``boot_dir``,
3. define the guest booting that kernel with ``method=URL ks=URL`` and the extra
   arguments, ``on_reboot: destroy`` so the installer's final reboot ends it,
   and start it,
4. redefine it at once with its own boot (pygrub): the running installer keeps
   its kernel, every later boot uses the guest's bootloader.

HVM install from an ISO: the same, with the ISO as a cdrom booted first and VNC
on (local only unless the spec says otherwise); the persistent definition
boots from disk.
"""

import contextlib
import copy
import os
import shutil
import tempfile
import urllib.parse
import urllib.request

import libvirt

from saltext_xen.core.errors import XenError
from saltext_xen.guests import domain_xml, guest_spec

DEFAULT_BOOT_DIR = "/var/lib/xen/boot"
FETCH_TIMEOUT = 60


class InstallError(XenError):
    """The install could not start; the message says which step and why."""


def _join(location, rel):
    if location.startswith("/"):
        return os.path.join(location, rel)
    return location.rstrip("/") + "/" + rel.lstrip("/")


def fetch(url, dest, timeout=FETCH_TIMEOUT):
    """Copy ``url`` (http, https, ftp, file:// or a local path) to ``dest`` atomically."""
    directory = os.path.dirname(dest) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {directory} for the install kernel: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as out:
            if url.startswith("/"):
                with open(url, "rb") as src:
                    shutil.copyfileobj(src, out)
            else:
                with urllib.request.urlopen(url, timeout=timeout) as src:
                    shutil.copyfileobj(src, out)
        if os.path.getsize(tmp) == 0:
            raise InstallError(f"{url} is empty")
        os.replace(tmp, dest)
    except InstallError:
        _unlink(tmp)
        raise
    except (OSError, ValueError) as exc:
        _unlink(tmp)
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise InstallError(f"cannot fetch {url}: {reason}") from None
    return dest


def _unlink(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def kernel_args(install):
    """The installer's command line: ``method=URL ks=URL`` and the extra arguments."""
    args = []
    if install.get("location") and not install["location"].startswith("/"):
        args.append(f"method={install['location']}")
    if install.get("kickstart"):
        args.append(f"ks={install['kickstart']}")
    if install.get("extra_args"):
        args.append(install["extra_args"])
    return " ".join(args)


def boot_files(name, boot_dir):
    return os.path.join(boot_dir, f"{name}-vmlinuz"), os.path.join(boot_dir, f"{name}-initrd.img")


def describe(spec, boot_dir=DEFAULT_BOOT_DIR):
    """One line saying what ``start`` will do (for changes and test=True)."""
    install = spec["install"]
    if install["method"] == "network":
        kernel, _ = boot_files(spec["name"], boot_dir)
        return (
            f"network install from {install['location']} (kernel {install['kernel_path']} -> {kernel}, "
            f"arguments '{kernel_args(install)}'), then boot with {spec['boot']['bootloader'] or 'its bootloader'}"
        )
    return f"install from ISO {install['iso']} (cdrom first, VNC on), then boot from disk"


def install_spec(spec, boot_dir=DEFAULT_BOOT_DIR):
    """The spec the guest runs its installer with (not the one it keeps)."""
    install = spec["install"]
    inst = copy.deepcopy(spec)
    inst["on_reboot"] = "destroy"
    if install["method"] == "network":
        kernel, initrd = boot_files(spec["name"], boot_dir)
        inst["boot"] = dict(
            guest_spec.empty_boot(), kernel=kernel, ramdisk=initrd, cmdline=kernel_args(install) or None
        )
    else:
        cdroms = [d for d in inst["disks"] if d["device"] == "cdrom" and d["source"] == install["iso"]]
        if not cdroms:
            disk = {
                "source": install["iso"],
                "target": None,
                "format": "raw",
                "readonly": True,
                "size": None,
                "device": "cdrom",
            }
            inst["disks"].append(disk)
            guest_spec.assign_targets(inst["disks"], inst["type"])
            inst["disks"].sort(key=guest_spec.disk_order)
        order = [d for d in inst["boot"]["order"] or ["hd"] if d != "cdrom"]
        inst["boot"] = dict(inst["boot"], order=["cdrom"] + (order or ["hd"]))
        if inst["graphics"] is None:
            inst["graphics"] = {"type": "vnc", "display": None, "listen": "127.0.0.1", "password": None, "keymap": None}
    return inst


def start(conn, spec, boot_dir=DEFAULT_BOOT_DIR):
    """Run the install of a new guest (``spec`` with uuid/MACs already fixed). Returns the domain.

    Disks must exist already (the caller creates missing images first).
    """
    install = spec["install"]
    if install is None:
        raise InstallError(f"{spec['name']} has no install settings")
    if install["method"] == "network":
        kernel, initrd = boot_files(spec["name"], boot_dir)
        fetch(_join(install["location"], install["kernel_path"]), kernel)
        fetch(_join(install["location"], install["initrd_path"]), initrd)
    else:
        iso = install["iso"]
        if not os.path.exists(iso):
            raise InstallError(f"the install ISO {iso} does not exist on this host")
    inst = install_spec(spec, boot_dir)
    try:
        dom = conn.defineXML(domain_xml.render(inst))
        dom.create()
    except libvirt.libvirtError as exc:
        raise InstallError(f"{spec['name']}: the installer could not start: {exc.get_error_message()}") from None
    try:
        # the running installer keeps its boot; every later boot uses the guest's own
        dom = conn.defineXML(domain_xml.render(spec))
    except libvirt.libvirtError as exc:
        raise InstallError(
            f"{spec['name']}: the installer runs, but switching its definition to its own boot failed: "
            f"{exc.get_error_message()}"
        ) from None
    return dom
