"""Guest lifecycle on a libvirt connection: look up, describe and drive domains.

Every action returns what changed in the vocabulary shared with the states:
``{"vm02": {"old": "running", "new": "paused"}}``, or ``{}`` when the guest was
already where it was asked to be.
"""

import os
import time
import xml.etree.ElementTree as ET

import libvirt

from saltext_xen.core import protect
from saltext_xen.core.errors import GuestNotFound, InvalidState, NotAvailable, XenError
from saltext_xen.guests import domain_xml
from saltext_xen.host import xl

DEFAULT_SAVE_DIR = "/var/lib/xen/save"

_STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # xm's "b": running, waiting for work
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}
LIST_FILTERS = ("all", "active", "running", "paused", "inactive")


def state_name(code):
    """The operator's word for a libvirt domain state code."""
    return _STATE_NAMES.get(code, "unknown")


def lookup(conn, name):
    """The domain called ``name``, or GuestNotFound naming the URI."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise GuestNotFound(name, conn.getURI()) from None
        raise XenError(f"cannot look up guest '{name}': {exc.get_error_message()}") from None


def state_of(dom):
    """Current state word of ``dom`` (one libvirt call)."""
    return state_name(dom.state()[0])


def list_guests(conn, state="all"):
    """Sorted guest names, filtered by ``state`` (one of LIST_FILTERS)."""
    if state not in LIST_FILTERS:
        raise XenError(f"state filter must be one of {', '.join(LIST_FILTERS)}, got '{state}'")
    names = []
    for dom in conn.listAllDomains():
        word = state_of(dom) if state in ("running", "paused") else None
        active = dom.isActive()
        if state == "all" or (state == "active" and active) or (state == "inactive" and not active) or word == state:
            names.append(dom.name())
    return sorted(names)


def definitions(conn):
    """``(dom, root)`` for the live and the persistent definition of every guest on the host."""
    for dom in conn.listAllDomains():
        for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
            try:
                yield dom, ET.fromstring(dom.XMLDesc(flags))
            except libvirt.libvirtError:
                continue  # the guest went away, or has no persistent definition


def host_macs(conn):
    """Every MAC of every guest NIC on the host, live or defined (to pick a unique new one)."""
    return {
        mac.get("address").lower()
        for _, root in definitions(conn)
        for mac in root.findall("./devices/interface/mac")
        if mac.get("address")
    }


def host_disk_sources(conn):
    """Every disk source path (file or device) in any guest's live or persistent definition."""
    found = set()
    for _, root in definitions(conn):
        for src in root.findall("./devices/disk/source"):
            path = src.get("file") or src.get("dev")
            if path:
                found.add(path)
    return found


def host_disk_users(conn):
    """``{disk source: [guests]}`` over every guest's live and persistent definition (cdroms left out)."""
    found = {}
    for dom, root in definitions(conn):
        for disk in root.findall("./devices/disk"):
            src = disk.find("source")
            path = src is not None and (src.get("file") or src.get("dev"))
            if path and disk.get("device", "disk") == "disk" and dom.name() not in found.get(path, []):
                found.setdefault(path, []).append(dom.name())
    return found


def parse_vcpu_list(text):
    """How many vCPUs ``xl vcpu-list NAME`` shows online (state without ``p``), or None if none are listed."""
    rows = [line.split() for line in text.splitlines()[1:] if line.strip()]
    states = [row[4] for row in rows if len(row) >= 5 and len(row[4]) == 3]
    return sum(1 for state in states if state[2] != "p") if states else None


def online_vcpus(dom, run=None, wait=2.0, want=None, poll=0.2):
    """How many vCPUs the running guest has online, or None when nothing can tell.

    libvirt's ``vcpus()`` (a vCPU the guest has not brought online shows as
    offline; the libxl driver has it), else ``getVcpusFlags`` with
    ``VIR_DOMAIN_VCPU_GUEST`` (drivers with a guest agent), else ``xl vcpu-list``
    through ``run``. Waits up to ``wait`` seconds for ``want`` vCPUs to come online:
    a guest's kernel brings a new vCPU online a moment after it is offered.
    """
    deadline = time.monotonic() + wait
    while True:
        online = _online_vcpus_now(dom, run)
        if online is None or want is None or online >= want or time.monotonic() >= deadline:
            return online
        time.sleep(poll)


def _online_vcpus_now(dom, run):
    try:
        return sum(1 for vcpu in dom.vcpus()[0] if vcpu[1] != libvirt.VIR_VCPU_OFFLINE)
    except libvirt.libvirtError:
        pass
    try:
        return dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_VCPU_GUEST)
    except (libvirt.libvirtError, AttributeError):
        pass
    if run is None:
        return None
    res = run(["xl", "vcpu-list", dom.name()])
    return parse_vcpu_list(res.get("stdout") or "") if res.get("retcode") == 0 else None


def info(dom, uptimes=None):
    """What ``xm list -l`` told about one guest, as a plain dict.

    Disks, MACs and networks come from the guest's spec (``domain_xml.parse``);
    the vif names, the bridges NICs are on and the display ports are what the
    live definition adds. ``uptimes`` maps guest names to seconds (from ``xl
    uptime``) where Xen is there.
    """
    code, maxmem_kib, mem_kib, vcpus, cpu_ns = dom.info()
    xml = dom.XMLDesc(0)
    spec, live = domain_xml.parse(xml), domain_xml.live_parts(xml)
    dom_id = dom.ID()
    return {
        "name": dom.name(),
        "uuid": dom.UUIDString(),
        "state": state_name(code),
        "id": dom_id if dom_id >= 0 else None,
        "os_type": live["os_type"],
        "memory": mem_kib // 1024,
        "maxmem": maxmem_kib // 1024,
        "vcpus": vcpus,
        "cpu_time": round(cpu_ns / 1e9, 3),
        "uptime": (uptimes or {}).get(dom.name()),
        "autostart": bool(dom.autostart()),
        "persistent": bool(dom.isPersistent()),
        "disks": [{key: disk[key] for key in ("device", "source", "target", "readonly")} for disk in spec["disks"]],
        "nics": [
            {"mac": nic["mac"], "bridge": wire["bridge"], "network": nic["network"], "vif": wire["vif"]}
            for nic, wire in zip(spec["nics"], live["interfaces"], strict=False)
        ],
        "graphics": live["graphics"],
    }


def host_info(conn):
    """What ``xm info`` gave: hypervisor, CPUs, memory, guest capabilities."""
    model, mem_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    caps = ET.fromstring(conn.getCapabilities())
    guest_types = sorted(
        {
            f"{guest.findtext('os_type')}-{arch.get('name')}"
            for guest in caps.findall("./guest")
            for arch in guest.findall("arch")
        }
    )
    return {
        "uri": conn.getURI(),
        "hypervisor": conn.getType(),
        "hypervisor_version": _version(conn.getVersion()),
        "libvirt_version": _version(conn.getLibVersion()),
        "hostname": conn.getHostname(),
        "cpu_model": model,
        "cpus": cpus,
        "cpu_mhz": mhz,
        "numa_nodes": nodes,
        "sockets": sockets,
        "cores_per_socket": cores,
        "threads_per_core": threads,
        "total_memory": mem_mib,
        "free_memory": conn.getFreeMemory() // (1024 * 1024),
        "guest_types": guest_types,
    }


def _version(number):
    return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"


def top(conn, interval=1.0):
    """Per-guest CPU % and memory, sampled over ``interval`` seconds (like ``xm top``)."""
    doms = [d for d in conn.listAllDomains() if d.isActive()]
    first = {d.name(): d.info() for d in doms}
    start = time.monotonic()
    time.sleep(interval)
    elapsed_ns = (time.monotonic() - start) * 1e9
    rows = {}
    for dom in doms:
        name = dom.name()
        try:
            code, maxmem_kib, mem_kib, vcpus, cpu_ns = dom.info()
        except libvirt.libvirtError:
            continue  # the guest went away between the two samples
        used = max(cpu_ns - first[name][4], 0)
        rows[name] = {
            "state": state_name(code),
            "cpu_percent": round(100.0 * used / elapsed_ns, 1),
            "vcpus": vcpus,
            "memory": mem_kib // 1024,
            "maxmem": maxmem_kib // 1024,
        }
    return rows


def _change(name, old, new):
    return {name: {"old": old, "new": new}}


def start(dom):
    """Boot a shut-off guest (``xm create``)."""
    old = state_of(dom)
    if old in ("running", "shutting down"):
        return {}
    if old == "paused":
        raise InvalidState(f"{dom.name()} is paused: resume it instead of starting it")
    dom.create()
    return _change(dom.name(), old, state_of(dom))


def shutdown(dom, timeout=120, force=False, poll=0.5):
    """Ask the guest to shut down and wait; destroy it after ``timeout`` only if ``force``."""
    name = dom.name()
    old = state_of(dom)
    if old == "shutoff":
        return {}
    if old == "paused":
        if not force:
            raise InvalidState(f"{name} is paused and cannot shut down by itself: resume it first, or use force")
        dom.destroy()
        return {name: {"old": old, "new": state_of(dom), "via": "destroy (guest was paused)"}}
    dom.shutdown()
    deadline = time.monotonic() + timeout
    # libxl reports "shutoff" a moment before the domain is gone: wait until it is inactive
    while dom.isActive():
        if time.monotonic() >= deadline:
            if not force:
                raise XenError(
                    f"{name} did not shut down within {timeout} s; it is still {state_of(dom)} "
                    "(force=True destroys it after the timeout)"
                )
            dom.destroy()
            return {name: {"old": old, "new": state_of(dom), "via": f"destroy after {timeout} s timeout"}}
        time.sleep(poll)
    return {name: {"old": old, "new": "shutoff", "via": "graceful shutdown"}}


def reboot(dom):
    """Ask a running guest to reboot (``xm reboot``)."""
    old = state_of(dom)
    if old != "running":
        raise InvalidState(f"{dom.name()} is {old}: only a running guest can reboot")
    dom.reboot(0)
    return _change(dom.name(), old, "rebooted")


def destroy(dom):
    """Pull the plug (``xm destroy``)."""
    old = state_of(dom)
    if not dom.isActive():
        return {}
    dom.destroy()
    return _change(dom.name(), old, state_of(dom))


def _flip(dom, need, goal, act, done_word):
    """Move ``dom`` from state ``need`` to ``goal`` by calling ``act``; nothing when it is there already."""
    old = state_of(dom)
    if old == goal:
        return {}
    if old != need:
        raise InvalidState(f"{dom.name()} is {old}: only a {need} guest can be {done_word}")
    act()
    return _change(dom.name(), old, state_of(dom))


def pause(dom):
    """Freeze a running guest in memory (``xm pause``)."""
    return _flip(dom, "running", "paused", dom.suspend, "paused")


def resume(dom):
    """Let a paused guest run again (``xm unpause``)."""
    return _flip(dom, "paused", "running", dom.resume, "resumed")


def save_path(name, path=None):
    """Where a guest's saved state goes by default, like xendomains did."""
    return path or os.path.join(DEFAULT_SAVE_DIR, name)


def save(dom, path=None, overwrite=False, in_use=()):
    """Write the running guest's memory to ``path`` and stop it (``xm save``).

    ``in_use``: the host's disks (``{path: guests}``, see :func:`host_disk_users`); a path a
    defined guest uses as a disk is never written over, ``overwrite`` or not. ``path`` must be
    absolute; its directory is made (mode 0700) when missing.
    """
    name = dom.name()
    path = protect.absolute(save_path(name, path), "path")
    old = state_of(dom)
    if old not in ("running", "paused"):
        raise InvalidState(f"{name} is {old}: only a running or paused guest can be saved")
    users = protect.used_by(path, in_use)
    if users:
        raise XenError(
            f"{path} is a disk of {', '.join(users)}: not saving {name} over it (overwrite does not write over a "
            "disk a guest uses)"
        )
    if os.path.lexists(path) and not os.path.isfile(path):
        raise XenError(f"{path} is not a regular file: not saving {name} over it")
    if os.path.exists(path) and not overwrite:
        raise XenError(f"{path} already exists: not overwriting a saved guest (overwrite=True replaces it)")
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise XenError(f"cannot save {name} to {path}: cannot make directory {directory}: {exc.strerror}") from None
    try:
        dom.save(path)
    except libvirt.libvirtError as exc:
        raise XenError(f"cannot save {name} to {path}: {exc.get_error_message()}") from None
    return {name: {"old": old, "new": "saved", "path": path}}


def restore(conn, path, keep=False, name=None):
    """Bring a saved guest back (``xm restore``); the save file is removed unless ``keep``.

    ``name`` is the saved guest's name when the caller knows it; otherwise it is read
    from the save file, or, where the driver cannot read save files (libxl), found
    as the guest that became active.
    """
    if not os.path.isfile(path):
        raise XenError(f"no saved guest at {path}")
    name = name or _saved_name(conn, path)
    if name is not None:
        try:
            active = conn.lookupByName(name).isActive()
        except libvirt.libvirtError:
            active = False
        if active:
            raise InvalidState(f"{name} is already running: not restoring {path} over it")
    before = {dom.name() for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
    try:
        conn.restore(path)
    except libvirt.libvirtError as exc:
        raise XenError(f"cannot restore {path}: {exc.get_error_message()}") from None
    if name is None:
        after = {dom.name() for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        name = next(iter(sorted(after - before)), None) or "unknown guest"
    if not keep:
        os.unlink(path)
    new = state_of(lookup(conn, name)) if name != "unknown guest" else "running"
    return {name: {"old": "saved", "new": new, "path": path}}


def _saved_name(conn, path):
    """The guest name recorded in a save file, or None where the driver cannot tell."""
    try:
        return ET.fromstring(conn.saveImageGetXMLDesc(path, 0)).findtext("name")
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return None
        raise XenError(f"{path} is not a saved guest: {exc.get_error_message()}") from None


def rename(dom, new_name):
    """Give a shut-off guest a new name (``xm rename``)."""
    old_name = dom.name()
    if dom.isActive() and not _gone_within(dom, 15):
        raise InvalidState(f"{old_name} is {state_of(dom)}: shut it off before renaming it")
    if old_name == new_name:
        return {}
    try:
        dom.rename(new_name, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise XenError(f"cannot rename {old_name} to {new_name}: {exc.get_error_message()}") from None
        _redefine_renamed(dom, new_name)
    return {old_name: {"old": old_name, "new": new_name}}


def _gone_within(dom, seconds, poll=0.5):
    """True once a domain that is going down (libxl: "shutoff" but still active) is inactive."""
    deadline = time.monotonic() + seconds
    while state_of(dom) == "shutoff" and time.monotonic() < deadline:
        if not dom.isActive():
            return True
        time.sleep(poll)
    return not dom.isActive()


def _redefine_renamed(dom, new_name):
    """Rename where the driver cannot (libxl): undefine, define under the new name, same UUID.

    If the new definition is refused, the old one is put back as it was.
    """
    conn = dom.connect()
    old_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    root = ET.fromstring(old_xml)
    root.find("name").text = new_name
    autostart = dom.autostart()
    dom.undefine()
    try:
        renamed = conn.defineXML(ET.tostring(root, encoding="unicode"))
    except libvirt.libvirtError as exc:
        conn.defineXML(old_xml).setAutostart(autostart)
        raise XenError(f"cannot rename {dom.name()} to {new_name}: {exc.get_error_message()}") from None
    renamed.setAutostart(autostart)


def set_autostart(dom, enable=True):
    """Mark the guest to start with the host, or unmark it (``virsh autostart [--disable]``)."""
    old = bool(dom.autostart())
    if old == bool(enable):
        return {}
    if not dom.isPersistent():
        raise InvalidState(f"{dom.name()} is transient: define it before marking it to autostart")
    dom.setAutostart(1 if enable else 0)
    return {dom.name(): {"old": {"autostart": old}, "new": {"autostart": bool(enable)}}}


# What needs Xen's xl toolstack: ``run`` runs an argv and returns Salt's cmd.run_all dict.
def require_xen(conn, what):
    """Raise NotAvailable unless ``conn`` is a Xen host with ``xl`` (``what`` names the request)."""
    xl.require(conn.getType(), conn.getURI(), what)


def on_xen(conn):
    """True when ``conn`` is a Xen host with ``xl``."""
    try:
        require_xen(conn, "xl")
    except NotAvailable:
        return False
    return True


def guest_info(conn, name, run):
    """:func:`info` of guest ``name``, with its uptime where Xen is there."""
    dom = lookup(conn, name)
    uptimes = xl.uptimes(run) if dom.isActive() and on_xen(conn) else None
    return info(dom, uptimes)


def host_info_xl(conn, run):
    """:func:`host_info`, with ``xl info`` under ``xen`` on a Xen host."""
    result = host_info(conn)
    if on_xen(conn):
        result["xen"] = xl.info(run)
    return result


def uptime(conn, run, name=None):
    """Seconds each running guest (or just ``name``) has been up, from ``xl uptime``."""
    require_xen(conn, "uptime")
    times = xl.uptimes(run)
    if name is None:
        return times
    lookup(conn, name)
    return {name: times.get(name)}


def console_command(conn, name):
    """The host command that attaches to guest ``name``'s console."""
    lookup(conn, name)
    if on_xen(conn):
        return f"xl console {name}"
    return f"virsh -c {conn.getURI()} console {name}"


def dmesg(conn, run):
    """The Xen hypervisor's message buffer."""
    require_xen(conn, "dmesg")
    return xl.dmesg(run)


def logs(conn, name=None, lines=100):
    """``{path: last lines}`` of Xen's log files of guest ``name``, or of all guests."""
    require_xen(conn, "log")
    if name is not None:
        lookup(conn, name)
    return {path: xl.tail(path, int(lines)) for path in xl.log_files(name)}


def word_of(code, reason):
    """The operator's word for libvirt's ``dom.state()`` pair: ``crashed`` for a guest shut off by a crash."""
    if code == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
        return "crashed"
    return state_name(code)


def state_word(dom):
    """:func:`state_of`, saying ``crashed`` for a guest shut off by a crash (the libxl default)."""
    return word_of(*dom.state()[:2])


def dump_core(dom, path, crash=False):
    """Write the guest's memory to ``path``; with ``crash`` stop it as if it had crashed."""
    old = state_word(dom)
    if not dom.isActive():
        raise InvalidState(f"{dom.name()} is {old}: only a running or paused guest has memory to dump")
    flags = libvirt.VIR_DUMP_CRASH if crash else 0
    try:
        dom.coreDumpWithFormat(path, libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_RAW, flags)
    except libvirt.libvirtError as exc:
        raise XenError(f"could not dump {dom.name()} to {path}: {exc.get_error_message()}") from None
    return {dom.name(): {"old": old, "new": state_word(dom), "path": path}}
