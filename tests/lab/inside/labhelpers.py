"""Helpers for the inner lab suite (runs inside dom0): guest XML, consoles, xl."""

import contextlib
import os
import pathlib
import re
import subprocess
import sys
import time
import uuid

import pytest

URI = "xen:///system"
GUEST_KERNEL = "/var/lib/lab/guest-vmlinuz"
GUEST_INITRD = "/var/lib/lab/guest-initrd.gz"
CONSOLE_LOG_DIR = pathlib.Path("/var/log/xen/console")
SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
GUEST_UP = "LABGUEST-UP"


def pv_xml(name, memory=128, maxmem=None, vcpus=1, devices="", uuid_=None):
    """A minimal PV guest: dom0's kernel, the lab's busybox initrd, no disk unless ``devices``."""
    maxmem = maxmem or memory
    return f"""<domain type='xen'>
  <name>{name}</name>
  <uuid>{uuid_ or uuid.uuid4()}</uuid>
  <memory unit='MiB'>{maxmem}</memory>
  <currentMemory unit='MiB'>{memory}</currentMemory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>{GUEST_KERNEL}</kernel>
    <initrd>{GUEST_INITRD}</initrd>
    <cmdline>console=hvc0 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <console type='pty'><target type='xen' port='0'/></console>
    {devices}
  </devices>
</domain>"""


def remove_guest(conn, name):
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
    if dom.isPersistent():
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefine()


def console_log(name):
    path = CONSOLE_LOG_DIR / f"guest-{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_console(name, text=GUEST_UP, count=1, timeout=300):
    """Wait until the guest's console log (xenconsoled --log=guest) shows ``text`` ``count`` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if console_log(name).count(text) >= count:
            return
        time.sleep(1)
    path = CONSOLE_LOG_DIR / f"guest-{name}.log"
    state = subprocess.run(["xl", "list", name], capture_output=True, text=True, check=False).stdout.strip()
    raise AssertionError(
        f"guest {name}: {text!r} x{count} not on its console within {timeout}s; "
        f"{path} {'exists' if path.exists() else 'does not exist'}; xl list: {state!r}; console log:\n"
        + console_log(name)[-2000:]
    )


def wait_for(predicate, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def xl(*args):
    return subprocess.run(["xl", *args], capture_output=True, text=True, check=True).stdout


def xl_state(name):
    """The state letters column of ``xl list NAME`` (``r-----``, ``--p---``), or None."""
    proc = subprocess.run(["xl", "list", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    fields = proc.stdout.splitlines()[-1].split()
    return fields[4] if len(fields) > 4 else None


def figure(text):
    """Keep a measured figure for the lab's summary (results/figures.txt) and print it."""
    print(f"figure: {text}")
    results = pathlib.Path("/lab/results")
    if results.is_dir():
        with (results / "figures.txt").open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=check)


def landed(caller, module):
    """Skip (naming it) a test for a module that has not been written yet."""
    if not any(f.startswith(module + ".") for f in caller.sminion.functions):
        pytest.skip(f"{module} is not in the installed project yet")


def safe_name(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def state(caller, fun, name, test=False, **kwargs):
    """Apply one state (``state.single``) through the Caller and return its result dict."""
    ret = caller.cmd("state.single", fun, name, test=test, **kwargs)
    assert isinstance(ret, dict) and len(ret) == 1, f"state.single {fun} {name}: {ret}"
    (only,) = ret.values()
    return only
