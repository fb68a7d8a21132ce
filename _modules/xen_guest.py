"""Look at and drive Xen guests: what ``xm``/``virsh`` did, as Salt functions.

The hypervisor is reached through libvirt at ``xen:libvirt:uri`` (minion config
or pillar; default ``xen:///system``). Functions that act return what changed,
``{"vm02": {"old": "running", "new": "paused"}}``, or ``{}`` when nothing had to.
"""

from saltext_xen import saltglue
from saltext_xen.core import connection, errors
from saltext_xen.guests import lifecycle
from saltext_xen.host import xl

__virtualname__ = "xen_guest"
__func_alias__ = {"list_": "list"}


def __virtual__():
    if not connection.available():
        return False, f"xen_guest: {connection.MISSING_REASON}"
    return __virtualname__


def _conn():
    return saltglue.conn_from(__salt__)


def _dom(name):
    return lifecycle.lookup(_conn(), name)


def _run(args):
    return __salt__["cmd.run_all"](args, python_shell=False, ignore_retcode=True)


def _on_xen(conn):
    try:
        xl.require(conn.getType(), conn.getURI(), "xl")
    except errors.NotAvailable:
        return False
    return True


@saltglue.plain_errors
def list_(state="all"):
    """
    Names of the guests on this host, like ``xm list``.

    state
        ``all`` (default), ``active`` (running or paused), ``running``,
        ``paused`` or ``inactive`` (defined but shut off).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.list
        salt '*' xen_guest.list state=inactive
    """
    return lifecycle.list_guests(_conn(), state)


@saltglue.plain_errors
def info(name):
    """
    Everything about one guest: state, domain id, memory, maxmem, vcpus, CPU time,
    uptime, autostart, persistence, disks, NICs and VNC display.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.info vm02
    """
    conn = _conn()
    dom = lifecycle.lookup(conn, name)
    uptimes = xl.uptimes(_run) if dom.isActive() and _on_xen(conn) else None
    return lifecycle.info(dom, uptimes)


@saltglue.plain_errors
def host_info():
    """
    The host as ``xm info`` showed it: hypervisor and version, CPUs, total and
    free memory (MiB), and the guest types it can run. On Xen, ``xl info`` is
    added under ``xen``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.host_info
    """
    conn = _conn()
    result = lifecycle.host_info(conn)
    if _on_xen(conn):
        result["xen"] = xl.info(_run)
    return result


@saltglue.plain_errors
def top(interval=1.0):
    """
    A snapshot of each running guest's CPU % and memory, sampled over
    ``interval`` seconds, like one screen of ``xm top``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.top
        salt '*' xen_guest.top interval=3
    """
    return lifecycle.top(_conn(), float(interval))


@saltglue.plain_errors
def uptime(name=None):
    """
    Seconds each running guest (or just ``name``) has been up, from ``xl uptime``.
    Needs Xen; elsewhere the error says it is not available.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.uptime
        salt '*' xen_guest.uptime vm02
    """
    conn = _conn()
    xl.require(conn.getType(), conn.getURI(), "uptime")
    times = xl.uptimes(_run)
    if name is None:
        return times
    lifecycle.lookup(conn, name)
    return {name: times.get(name)}


@saltglue.plain_errors
def start(name):
    """
    Boot a defined guest that is shut off (``xm create``/``virsh start``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.start vm02
    """
    return lifecycle.start(_dom(name))


@saltglue.plain_errors
def shutdown(name, timeout=120, force=False):
    """
    Shut a guest down gracefully and wait up to ``timeout`` seconds. With
    ``force=True`` a guest still up after the timeout is destroyed; the result
    says which happened under ``via``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.shutdown vm02
        salt '*' xen_guest.shutdown vm02 timeout=30 force=True
    """
    return lifecycle.shutdown(_dom(name), timeout=float(timeout), force=bool(force))


@saltglue.plain_errors
def reboot(name):
    """
    Ask a running guest to reboot (``xm reboot``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.reboot vm02
    """
    return lifecycle.reboot(_dom(name))


@saltglue.plain_errors
def destroy(name):
    """
    Stop a guest at once, like pulling its power cord (``xm destroy``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.destroy vm02
    """
    return lifecycle.destroy(_dom(name))


@saltglue.plain_errors
def pause(name):
    """
    Freeze a running guest in memory (``xm pause``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.pause vm02
    """
    return lifecycle.pause(_dom(name))


@saltglue.plain_errors
def resume(name):
    """
    Let a paused guest run again (``xm unpause``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.resume vm02
    """
    return lifecycle.resume(_dom(name))


@saltglue.plain_errors
def save(name, path=None, overwrite=False):
    """
    Save a running guest's memory to disk and stop it (``xm save``). The file
    defaults to ``/var/lib/xen/save/NAME``; an existing file is not replaced
    unless ``overwrite=True``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.save vm02
        salt '*' xen_guest.save vm02 path=/srv/save/vm02 overwrite=True
    """
    return lifecycle.save(_dom(name), path, overwrite=bool(overwrite))


@saltglue.plain_errors
def restore(path=None, name=None, keep=False):
    """
    Bring back a saved guest (``xm restore``), from ``path`` or from
    ``/var/lib/xen/save/NAME``. The save file is removed afterwards, as
    xendomains does, unless ``keep=True``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.restore name=vm02
        salt '*' xen_guest.restore path=/srv/save/vm02 keep=True
    """
    if not path and not name:
        raise errors.XenError("restore needs path= (a save file) or name= (a guest saved to the default place)")
    return lifecycle.restore(_conn(), path or lifecycle.save_path(name), keep=bool(keep), name=name)


@saltglue.plain_errors
def rename(name, new_name):
    """
    Rename a guest that is shut off (``xm rename``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.rename vm03 newvm03
    """
    return lifecycle.rename(_dom(name), new_name)


@saltglue.plain_errors
def autostart(name, enable=True):
    """
    Start the guest when the host boots, or stop doing so with ``enable=False``
    (``virsh autostart [--disable]``, the ``/etc/xen/auto`` link).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.autostart vm02
        salt '*' xen_guest.autostart vm02 enable=False
    """
    return lifecycle.set_autostart(_dom(name), enable=bool(enable))


@saltglue.plain_errors
def console(name):
    """
    The command that attaches to the guest's console on the host. A Salt job
    cannot be interactive, so run the returned command in a shell there.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.console vm02
    """
    conn = _conn()
    lifecycle.lookup(conn, name)
    if _on_xen(conn):
        return f"xl console {name}"
    return f"virsh -c {conn.getURI()} console {name}"


@saltglue.plain_errors
def dmesg():
    """
    The Xen hypervisor's message buffer (``xm dmesg``/``xl dmesg``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.dmesg
    """
    conn = _conn()
    xl.require(conn.getType(), conn.getURI(), "dmesg")
    return xl.dmesg(_run)


@saltglue.plain_errors
def log(name=None, lines=100):
    """
    The last ``lines`` lines of Xen's log files under ``/var/log/xen``: the
    toolstack, device-model and console logs of guest ``name``, or all logs.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.log
        salt '*' xen_guest.log vm02 lines=50
    """
    conn = _conn()
    xl.require(conn.getType(), conn.getURI(), "log")
    if name is not None:
        lifecycle.lookup(conn, name)
    return {path: xl.tail(path, int(lines)) for path in xl.log_files(name)}


# --------------------------------------------------------------------------- clone (issue 5)
import logging as _logging  # noqa: E402  pylint: disable=wrong-import-position

from saltext_xen.guests import clone as guest_clone  # noqa: E402  pylint: disable=wrong-import-position

_clone_log = _logging.getLogger(__name__)


@saltglue.plain_errors
def clone(
    name, new_name, disks=None, memory=None, vcpus=None, bridge=None, crash_consistent=False, start=False, force=False
):
    """
    Clone guest ``name`` as ``new_name``, like ``virt-clone -o vm03 -n newvm03
    -f /var/lib/xen/images/newvm03.img``: a new UUID, new MACs keeping the
    source's vendor prefix (first three octets) and unique on this host, and a
    copy of every writable disk (reflink where the filesystem can, else only
    the data, holes kept; verified). ``disks`` maps targets to copy paths
    (``{xvda: /var/lib/xen/images/newvm03.img}``); by default copies go next
    to the source with the guest's name swapped. The source must be shut off
    or paused unless ``crash_consistent=True``. ``memory`` (MiB), ``vcpus``
    and ``bridge`` change the copy. A copy onto an existing device (LV) that
    holds a filesystem or partition table needs ``force=True``; a missing LV
    is created. A failed clone leaves nothing behind. The clone records its
    source (name and UUID) in its definition's ``<metadata>``, which
    ``xen_guest.cloned`` checks on later runs. Progress of each disk copy is
    logged at INFO (bytes done of total).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.clone vm03 newvm03
        salt '*' xen_guest.clone vm03 newvm03 disks='{xvda: /var/lib/xen/images/newvm03.img}' memory=1024
    """
    conn = _conn()
    step = guest_clone.plan(
        conn,
        name,
        new_name,
        disks=disks,
        memory=memory,
        vcpus=vcpus,
        bridge=bridge,
        crash_consistent=bool(crash_consistent),
        force=bool(force),
        run=_run,
    )

    def progress(target, done, total):
        _clone_log.info("cloning %s %s: %d of %d bytes", name, target, done, total)

    result = guest_clone.execute(
        conn,
        step,
        progress=progress,
        make_block=lambda path, size: __salt__["xen_disk.create"](path, f"{size}b"),
        drop_block=lambda path: __salt__["xen_disk.delete"](path, delete=True),
    )
    if start:
        result["started"] = bool(lifecycle.start(_dom(new_name)))
    return result


# ---------------------------------------------------------------------------
# Guests as data (issue 4): define from a spec, adopt and write xl.cfg files.
# Imported here, at module level, to keep this section apart from the lifecycle
# functions above.
import logging as _import_logging  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order
import os as _os  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

import salt.utils.data as _salt_data  # noqa: E402  pylint: disable=wrong-import-position

from saltext_xen.guests import (
    guest_apply,
    guest_spec,
    xlcfg,
)

DEFAULT_CONFIG_DIR = "/etc/xen"
_import_log = _import_logging.getLogger(__name__)


def _seed(name):
    return f"{__opts__.get('id', 'minion')}/{name}"


def _checked(name, data, path="xen:guests"):
    spec, problems = guest_spec.validate(name, data, path)
    if problems:
        raise errors.XenError("the spec has problems; nothing was changed:\n" + "\n".join(problems))
    return spec


@saltglue.plain_errors
def define(name, spec=None, **kwargs):
    """
    Define (or update the definition of) guest ``name`` from a spec: the keys
    of pillar ``xen:guests:NAME`` given as ``spec`` or as keyword arguments, or,
    with neither, that pillar entry. Does not start or stop the guest. Returns
    what changed, ``{key: {"old": .., "new": ..}}``, VNC password masked.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.define vm02
        salt '*' xen_guest.define vm05 memory=1024 vcpus=2 disks='["/var/lib/xen/images/vm05.img"]'
    """
    data = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    if spec is not None:
        data = dict(spec, **data)
    if not data:
        # __pillar__ itself: pillar.get masks every value (Salt 3008) outside templates
        data = _salt_data.traverse_dict_and_list(__pillar__, f"xen:guests:{name}", None)
        if isinstance(data, dict):
            data = {
                k: v
                for k, v in data.items()
                if k not in ("ensure", "restart_on_change", "remove_disks", "timeout", "force")
            }
        if data is None:
            raise errors.XenError(f"no spec given and no pillar xen:guests:{name}")
    changes, problems = guest_apply.define(_conn(), _checked(name, data), _seed(name))
    if problems:
        raise errors.XenError("; ".join(problems))
    return changes


@saltglue.plain_errors
def import_config(path, name=None, start=False):
    """
    Adopt a hand-written guest config (``xm``-era ``/etc/xen/NAME`` or an
    ``xl.cfg``) into libvirt: ``tap:aio:``/``file:``/``phy:`` disks, ``vif`` and
    ``vfb`` strings, commented-out lines are understood. Every problem in the
    file is reported at once. Returns the changes made to the definition,
    ``{key: {"old": .., "new": ..}}``, and, when the file has settings a guest
    spec has no place for (``device_model``, ``localtime``, a vif's ``vifname``,
    ...), ``"ignored": {setting: value}`` listing them: nothing is dropped
    without saying so. Passwords show as ``********``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.import_config /etc/xen/newvm
        salt '*' xen_guest.import_config /etc/xen/newvm start=True
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise errors.XenError(f"cannot read {path}: {exc.strerror}") from None
    spec, problems, ignored = xlcfg.read(text, name=name, path=path)
    if problems:
        raise errors.XenError(f"{path} cannot be imported:\n" + "\n".join(problems))
    conn = _conn()
    changes, problems = guest_apply.define(conn, spec, _seed(spec["name"]))
    if problems:
        raise errors.XenError("; ".join(problems))
    if start:
        changes.update(lifecycle.start(lifecycle.lookup(conn, spec["name"])))
    if ignored:
        _import_log.warning(
            "%s: settings a guest spec has no place for were not imported: %s", path, ", ".join(sorted(ignored))
        )
        changes["ignored"] = ignored
    return changes


@saltglue.plain_errors
def export_config(name, path=None, config_dir=DEFAULT_CONFIG_DIR):
    """
    Write guest ``name``'s definition as xl.cfg to ``path`` (default
    ``/etc/xen/NAME.cfg``), for ``xl create``. The file is replaced atomically,
    and is mode 0600 when it holds a VNC password (0644 otherwise). Returns
    ``{"path": .., "changed": True|False, "mode": ..}``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.export_config newvm
        salt '*' xen_guest.export_config newvm path=/root/newvm.cfg
    """
    spec = guest_apply.current_spec(_conn(), name)
    path = path or _os.path.join(config_dir, f"{name}.cfg")
    changed = xlcfg.write(path, spec)
    return {"path": path, "changed": changed, "mode": "0600" if xlcfg.has_secret(spec) else "0644"}


@saltglue.plain_errors
def spec(name):
    """
    Guest ``name``'s definition as a spec (the shape of pillar
    ``xen:guests:NAME``), VNC password masked: a starting point for pillar.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.spec vm02
    """
    return guest_spec.masked(guest_apply.current_spec(_conn(), name))


from saltext_xen.guests import devices  # noqa: E402  pylint: disable=wrong-import-position


@saltglue.plain_errors
def nic_attach(name, bridge=None, network=None, mac=None, model=None, script=None):
    """
    Give guest ``name`` another NIC, like a second ``vif`` entry in its config:
    plugged in now when the guest runs, and kept in its definition always.

    bridge / network
        the host bridge (default ``xenbr0``) or the libvirt network to join
    mac
        the NIC's MAC; default: a new one with the Xen prefix ``00:16:3e``,
        unique on this host
    model / script
        NIC model (HVM guests) and vif script (``vif-bridge``)

    Returns ``{"name", "mac", "bridge", "network", "live", "persistent"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.nic_attach vm02 bridge=xenbr1
        salt '*' xen_guest.nic_attach vm02 network=virbr1 mac=00:16:3e:77:66:d5
    """
    data = {
        k: v
        for k, v in (("bridge", bridge), ("network", network), ("mac", mac), ("model", model), ("script", script))
        if v is not None
    }
    return devices.attach_nic(_conn(), name, data)


@saltglue.plain_errors
def nic_detach(name, mac=None, bridge=None, network=None):
    """
    Take a NIC out of guest ``name``: unplugged now when the guest runs, and
    removed from its definition. Name the NIC by ``mac``, or by ``bridge`` /
    ``network`` when only one NIC of the guest is on it.

    Returns ``{"name", "mac", "live", "persistent"}``; ``{}`` when the guest has no such NIC.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.nic_detach vm02 mac=00:16:3e:77:66:d5
        salt '*' xen_guest.nic_detach vm02 bridge=xenbr1
    """
    return devices.detach_nic(_conn(), name, mac=mac, bridge=bridge, network=network)


# --------------------------------------------------------------------------- events and host boot (issue: events)
from saltext_xen.events import autostart as _boot  # noqa: E402  pylint: disable=wrong-import-position
from saltext_xen.events import guest_events as _guest_events  # noqa: E402  pylint: disable=wrong-import-position

try:
    import libvirt as _ev_libvirt
except ImportError:  # pragma: no cover - __virtual__ reports it
    _ev_libvirt = None


@saltglue.plain_errors
def states():
    """
    Every guest's state and autostart mark in one pass, as the
    ``xen_guest_events`` beacon sees them (a guest shut off by a crash is
    ``crashed``): ``{"vm02": {"state": "running", "autostart": True}}``.
    The ``xen.guests`` runner gathers this from every host.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.states
    """
    words, doms = _guest_events.read_states(_conn())
    marked = _guest_events.autostart_reader(doms)
    return {name: {"state": word, "autostart": marked(name)} for name, word in sorted(words.items())}


@saltglue.plain_errors
def dump_core(name, path, crash=False):
    """
    Write guest ``name``'s memory to ``path`` (``xm dump-core``). With
    ``crash=True`` the guest is then stopped as if it had crashed
    (``xm dump-core --crash``): it shows as ``crashed`` and the crash reactor
    sees it, which makes this the way to rehearse a crash.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.dump_core vm02 /var/lib/xen/dump/vm02.core
        salt '*' xen_guest.dump_core vm02 /var/lib/xen/dump/vm02.core crash=True
    """
    dom = _dom(name)
    old = _guest_events.state_word(*dom.state()[:2])
    if not dom.isActive():
        raise errors.InvalidState(f"{name} is {old}: only a running or paused guest has memory to dump")
    flags = _ev_libvirt.VIR_DUMP_CRASH if crash else 0
    try:
        dom.coreDumpWithFormat(path, _ev_libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_RAW, flags)
    except _ev_libvirt.libvirtError as exc:
        raise errors.XenError(f"could not dump {name} to {path}: {exc.get_error_message()}") from None
    new = _guest_events.state_word(*dom.state()[:2])
    return {name: {"old": old, "new": new, "path": path}}


@saltglue.plain_errors
def start_autostart(save_dir=lifecycle.DEFAULT_SAVE_DIR, restore=True):
    """
    What the xendomains script did at boot: restore every guest saved under
    ``save_dir`` (``/var/lib/xen/save/NAME``, the file removed afterwards) that
    is not up, then start every guest marked autostart that is still off.
    ``restore=False`` only starts. One guest failing does not stop the others;
    then the job fails naming each guest and why, after doing what it could.
    Returns the changes, ``{}`` when everything was already up.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.start_autostart
        salt '*' xen_guest.start_autostart restore=False
    """
    conn = _conn()
    words, doms = _guest_events.read_states(conn)
    marked = _guest_events.autostart_reader(doms)
    saved = _boot.save_files(save_dir) if restore else {}
    changes, problems = _boot.execute(conn, _boot.plan(words, {n for n in words if marked(n)}, saved))
    if problems:
        done = f"; done: {changes}" if changes else ""
        raise errors.XenError("not every guest came up: " + "; ".join(problems) + done)
    return changes
