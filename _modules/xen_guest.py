"""Look at and drive Xen guests: what ``xm``/``virsh`` did, as Salt functions.

The hypervisor is reached through libvirt at ``xen:libvirt:uri`` (minion config
or pillar; default ``xen:///system``). Functions that act return what changed,
``{"vm02": {"old": "running", "new": "paused"}}``, or ``{}`` when nothing had to.
"""
from saltext_xen import connection
from saltext_xen import errors
from saltext_xen import guests
from saltext_xen import saltglue
from saltext_xen import xl

__virtualname__ = "xen_guest"
__func_alias__ = {"list_": "list"}


def __virtual__():
    if not connection.available():
        return False, f"xen_guest: {connection.MISSING_REASON}"
    return __virtualname__


def _conn():
    return saltglue.conn_from(__salt__)


def _dom(name):
    return guests.lookup(_conn(), name)


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
    return guests.list_guests(_conn(), state)


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
    dom = guests.lookup(conn, name)
    uptimes = xl.uptimes(_run) if dom.isActive() and _on_xen(conn) else None
    return guests.info(dom, uptimes)


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
    result = guests.host_info(conn)
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
    return guests.top(_conn(), float(interval))


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
    guests.lookup(conn, name)
    return {name: times.get(name)}


@saltglue.plain_errors
def start(name):
    """
    Boot a defined guest that is shut off (``xm create``/``virsh start``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.start vm02
    """
    return guests.start(_dom(name))


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
    return guests.shutdown(_dom(name), timeout=float(timeout), force=bool(force))


@saltglue.plain_errors
def reboot(name):
    """
    Ask a running guest to reboot (``xm reboot``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.reboot vm02
    """
    return guests.reboot(_dom(name))


@saltglue.plain_errors
def destroy(name):
    """
    Stop a guest at once, like pulling its power cord (``xm destroy``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.destroy vm02
    """
    return guests.destroy(_dom(name))


@saltglue.plain_errors
def pause(name):
    """
    Freeze a running guest in memory (``xm pause``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.pause vm02
    """
    return guests.pause(_dom(name))


@saltglue.plain_errors
def resume(name):
    """
    Let a paused guest run again (``xm unpause``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.resume vm02
    """
    return guests.resume(_dom(name))


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
    return guests.save(_dom(name), path, overwrite=bool(overwrite))


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
    return guests.restore(_conn(), path or guests.save_path(name), keep=bool(keep))


@saltglue.plain_errors
def rename(name, new_name):
    """
    Rename a guest that is shut off (``xm rename``).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.rename vm03 newvm03
    """
    return guests.rename(_dom(name), new_name)


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
    return guests.set_autostart(_dom(name), enable=bool(enable))


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
    guests.lookup(conn, name)
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
        guests.lookup(conn, name)
    return {path: xl.tail(path, int(lines)) for path in xl.log_files(name)}


# --------------------------------------------------------------------------- clone (issue 5)
import logging as _logging  # noqa: E402  pylint: disable=wrong-import-position

from saltext_xen import clone as guest_clone  # noqa: E402  pylint: disable=wrong-import-position

_clone_log = _logging.getLogger(__name__)


@saltglue.plain_errors
def clone(name, new_name, disks=None, memory=None, vcpus=None, bridge=None, crash_consistent=False,
          start=False):
    """
    Clone guest ``name`` as ``new_name``, like ``virt-clone -o vm03 -n newvm03
    -f /var/lib/xen/images/newvm03.img``: a new UUID, new MACs keeping the
    source's vendor prefix (first three octets) and unique on this host, and a
    copy of every writable disk (reflink where the filesystem can, else only
    the data, holes kept; verified). ``disks`` maps targets to copy paths
    (``{xvda: /var/lib/xen/images/newvm03.img}``); by default copies go next
    to the source with the guest's name swapped. The source must be shut off
    or paused unless ``crash_consistent=True``. ``memory`` (MiB), ``vcpus``
    and ``bridge`` change the copy. A failed clone leaves nothing behind.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_guest.clone vm03 newvm03
        salt '*' xen_guest.clone vm03 newvm03 disks='{xvda: /var/lib/xen/images/newvm03.img}' memory=1024
    """
    conn = _conn()
    step = guest_clone.plan(conn, name, new_name, disks=disks, memory=memory, vcpus=vcpus,
                            bridge=bridge, crash_consistent=bool(crash_consistent))

    def progress(target, done, total):
        _clone_log.info("cloning %s %s: %d of %d bytes", name, target, done, total)

    result = guest_clone.execute(conn, step, progress=progress)
    if start:
        result["started"] = bool(guests.start(_dom(new_name)))
    return result
