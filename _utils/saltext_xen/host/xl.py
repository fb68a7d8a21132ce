"""Xen's own toolstack (``xl``) and log files, for what libvirt does not tell.

Commands run through a ``run(cmd) -> {"retcode", "stdout", "stderr"}`` callable
(Salt's ``cmd.run_all`` in the Salt layer), so this stays testable alone.
"""

import os
import re
import shutil

from saltext_xen.core.errors import NotAvailable, XenError

LOG_DIR = "/var/log/xen"
# libvirt's libxl driver logs each guest here instead of xl's /var/log/xen/xl-NAME.log
LIBXL_LOG_DIR = "/var/log/libvirt/libxl"
_UPTIME = re.compile(r"^(?:(\d+) days?,\s*)?(?:(\d+):)?(\d+):(\d+)$")


def require(conn_type, uri, what):
    """Raise NotAvailable unless this host is a Xen dom0 with ``xl``."""
    if conn_type != "Xen" or shutil.which("xl") is None:
        raise NotAvailable(f"{what} is not available on this hypervisor ({uri}): it needs Xen's xl toolstack")


def _run(run, args):
    out = run(args)
    if out["retcode"] != 0:
        raise XenError(f"{' '.join(args)} failed: {(out.get('stderr') or out.get('stdout') or '').strip()}")
    return out["stdout"]


def parse_uptime(text):
    """``xl uptime`` output -> {guest name: seconds}."""
    result = {}
    for line in text.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        match = _UPTIME.match(parts[2].strip())
        if match:
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            result[parts[0]] = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return result


def parse_info(text):
    """``xl info`` output -> dict of its ``key : value`` lines."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    return info


def uptimes(run):
    """Seconds each guest has been up, from ``xl uptime``."""
    return parse_uptime(_run(run, ["xl", "uptime"]))


def info(run):
    """``xl info`` as a dict."""
    return parse_info(_run(run, ["xl", "info"]))


def dmesg(run):
    """The hypervisor's message buffer (``xl dmesg``)."""
    return _run(run, ["xl", "dmesg"])


def log_files(name=None, log_dir=LOG_DIR, libxl_log_dir=LIBXL_LOG_DIR):
    """Xen's log files for guest ``name`` (toolstack, device model, console) or all of them."""
    if name is None:
        return [
            os.path.join(folder, f)
            for folder in (log_dir, libxl_log_dir)
            if os.path.isdir(folder)
            for f in sorted(os.listdir(folder))
            if f.endswith(".log")
        ]
    candidates = [
        os.path.join(log_dir, f"xl-{name}.log"),
        os.path.join(libxl_log_dir, f"{name}.log"),
        os.path.join(log_dir, f"qemu-dm-{name}.log"),
        os.path.join(log_dir, "console", f"guest-{name}.log"),
    ]
    return [path for path in candidates if os.path.isfile(path)]


def tail(path, lines=100):
    """The last ``lines`` lines of a text file, read from its end."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        block, data = 8192, b""
        while size > 0 and data.count(b"\n") <= lines:
            step = min(block, size)
            size -= step
            handle.seek(size)
            data = handle.read(step) + data
    return b"\n".join(data.splitlines()[-lines:]).decode("utf-8", "replace")
