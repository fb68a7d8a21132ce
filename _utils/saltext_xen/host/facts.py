"""What a host is, for the ``xen`` grain: dom0 or not, Xen's version and capabilities, reboot needed.

Everything is read from files under ``root`` (``/`` on a real host) and from
``xl info`` through a ``run`` callable, so a grain costs one command at most.

- ``dom0``: this kernel runs as Xen's control domain (``control_d`` in
  ``/proc/xen/capabilities``); ``hypervisor``: the one it runs under, from
  ``/sys/hypervisor/type`` (``xen``), or ``None`` on bare metal.
- ``version``: the running Xen's version (``/sys/hypervisor/version``).
- ``capabilities``: guest types this host can run: ``pv`` where Xen runs,
  ``hvm`` and ``pvh`` where ``xl info`` lists ``hvm-*`` (or, when Xen does not
  run yet, the CPU has ``vmx``/``svm``).
- ``toolstack``: ``xl`` when the command is installed, else ``None``.
- ``installed``: the newest Xen hypervisor image in ``/boot`` (its version as
  in the file name), or ``None``.
- ``reboot_required`` and ``reboot_reason``: Xen is installed but this host did
  not boot it, or the installed Xen is not the running one.
"""

import os
import re
import shutil

from saltext_xen.core import commands
from saltext_xen.host import xl

_BOOT_IMAGE = re.compile(r"^xen-(\d+\.\d+(?:\.\d+)?)(?:[-.][\w.-]*)?\.(?:gz|efi)$")
_HVM_FLAGS = ("vmx", "svm")


def _read(root, path):
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def hypervisor(root="/"):
    """``"xen"`` (or another hypervisor's name) from /sys/hypervisor/type; None on bare metal."""
    return _read(root, "/sys/hypervisor/type") or None


def is_dom0(root="/"):
    """True when this kernel is Xen's control domain."""
    return "control_d" in (_read(root, "/proc/xen/capabilities") or "")


def running_version(root="/"):
    """``4.17.3`` from /sys/hypervisor/version/{major,minor,extra}; None when Xen does not run."""
    major = _read(root, "/sys/hypervisor/version/major")
    minor = _read(root, "/sys/hypervisor/version/minor")
    if major is None or minor is None:
        return None
    extra = _read(root, "/sys/hypervisor/version/extra") or ""
    return f"{major}.{minor}{extra}"


def installed_version(root="/"):
    """The newest Xen hypervisor image in /boot, by the version in its file name; None when there is none."""
    try:
        names = os.listdir(os.path.join(root, "boot"))
    except OSError:
        return None
    versions = [m.group(1) for m in map(_BOOT_IMAGE.match, names) if m]
    if not versions:
        return None
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def cpu_flags(root="/"):
    """The CPU flags of /proc/cpuinfo's first processor."""
    for line in (_read(root, "/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return set(value.split())
    return set()


def capabilities(xen_caps, flags, xen_running):
    """Guest types this host can run: from ``xl info``'s xen_caps, else from the CPU flags."""
    caps = set()
    if xen_caps is not None:
        words = xen_caps.split()
        if any(w.startswith("xen-") for w in words):
            caps.add("pv")
        if any(w.startswith("hvm-") for w in words):
            caps.update(("hvm", "pvh"))
        return sorted(caps)
    if xen_running:
        caps.add("pv")
    if flags & set(_HVM_FLAGS):
        caps.update(("hvm", "pvh"))
    return sorted(caps)


def _same_release(installed, running):
    """True when ``running`` (4.17.3) is the release ``installed`` (4.17 or 4.17.3) names."""
    return running == installed or running.startswith((installed + ".", installed + "-"))


def reboot_reason(installed, running, xen_running):
    """Why this host needs a reboot to run the installed Xen, or None."""
    if installed is None:
        return None
    if not xen_running:
        return f"Xen {installed} is installed but this host did not boot it"
    if running is not None and not _same_release(installed, running):
        return f"Xen {installed} is installed but Xen {running} is running"
    return None


def xl_info(run):
    """``xl info`` as a dict, or None when it cannot be had (no xl, not dom0, xencommons down)."""
    if shutil.which("xl") is None:
        return None
    out = run(["xl", "info"])
    if out["retcode"] != 0:
        return None
    return xl.parse_info(out["stdout"])


def read(run=commands.run_local, root="/"):
    """Every fact of the ``xen`` grain, as one dict."""
    kind = hypervisor(root)
    xen_running = kind == "xen"
    dom0 = xen_running and is_dom0(root)
    info = xl_info(run) if dom0 else None
    running = running_version(root) if xen_running else None
    installed = installed_version(root)
    reason = reboot_reason(installed, running, xen_running)
    return {
        "hypervisor": kind,
        "dom0": dom0,
        "version": running,
        "capabilities": capabilities(info.get("xen_caps") if info else None, cpu_flags(root), xen_running),
        "toolstack": "xl" if shutil.which("xl") else None,
        "installed": installed,
        "reboot_required": reason is not None,
        "reboot_reason": reason,
    }
