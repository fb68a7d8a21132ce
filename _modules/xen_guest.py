"""Look at and drive Xen guests: what ``xm``/``virsh`` did, as Salt functions.

The hypervisor is reached through libvirt at ``xen:libvirt:uri`` (minion config or pillar; default
``xen:///system``). Functions that act return what changed, ``{"vm02": {"old": "running", "new":
"paused"}}``, or ``{}`` when nothing had to. The work is done by the library (``saltext_xen.guests``,
``saltext_xen.events``); this module handles arguments, pillar and the minion's command runner.
"""

import logging
import os

import salt.utils.data

from saltext_xen import saltglue
from saltext_xen.core import connection, errors
from saltext_xen.events import autostart as boot
from saltext_xen.events import crashloop, guest_events
from saltext_xen.guests import clone as guest_clone
from saltext_xen.guests import clone_entry, devices, guest_apply, guest_spec, lifecycle

_log = logging.getLogger(__name__)

__virtualname__ = "xen_guest"
__func_alias__ = {"list_": "list"}

DEFAULT_CONFIG_DIR = "/etc/xen"


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


def _seed(name):
    return f"{__opts__.get('id', 'minion')}/{name}"


@saltglue.plain_errors
def list_(state="all"):
    """Names of the guests on this host, like ``xm list``; ``state`` is ``all`` (default),
    ``active`` (running or paused), ``running``, ``paused`` or ``inactive`` (shut off).

    CLI Example: ``salt '*' xen_guest.list state=inactive``
    """
    return lifecycle.list_guests(_conn(), state)


@saltglue.plain_errors
def info(name):
    """Everything about one guest: state, domain id, memory, maxmem, vcpus, CPU time,
    uptime, autostart, persistence, disks, NICs and VNC display.

    CLI Example: ``salt '*' xen_guest.info vm02``
    """
    return lifecycle.guest_info(_conn(), name, _run)


@saltglue.plain_errors
def host_info():
    """The host as ``xm info`` showed it: hypervisor and version, CPUs, memory (MiB)
    and the guest types it can run; on Xen, ``xl info`` under ``xen``.

    CLI Example: ``salt '*' xen_guest.host_info``
    """
    return lifecycle.host_info_xl(_conn(), _run)


@saltglue.plain_errors
def top(interval=1.0):
    """Each running guest's CPU % and memory over ``interval`` seconds, like ``xm top``.

    CLI Example: ``salt '*' xen_guest.top interval=3``
    """
    return lifecycle.top(_conn(), guest_spec.arguments(interval=interval)["interval"])


@saltglue.plain_errors
def uptime(name=None):
    """Seconds each running guest (or just ``name``) has been up, from ``xl uptime`` (Xen only).

    CLI Example: ``salt '*' xen_guest.uptime vm02``
    """
    return lifecycle.uptime(_conn(), _run, name)


def _crash_history():
    return os.path.join(__opts__["cachedir"], crashloop.HISTORY_FILE)


@saltglue.plain_errors
def start(name):
    """Boot a defined guest that is shut off (``xm create``/``virsh start``); a person starting
    it clears its crash-loop count (see ``restart_crashed``).

    CLI Example: ``salt '*' xen_guest.start vm02``
    """
    changes = lifecycle.start(_dom(name))
    crashloop.forget(_crash_history(), name)
    return changes


@saltglue.plain_errors
def restart_crashed(name):
    """Start a guest that crashed, as the crash reactor asks, unless it is in a crash loop: past
    pillar ``xen:reactor:crashloop`` (default 3 restarts in 10 minutes) it is left down, the event
    ``xen/guest/NAME/crashloop`` is sent and ``{"started": False, "reason": ...}`` returned.

    CLI Example: ``salt '*' xen_guest.restart_crashed vm03``
    """
    setting = salt.utils.data.traverse_dict_and_list(__pillar__, crashloop.SETTING, None)
    dom = _dom(name)  # an unknown guest is said before anything is counted
    result = crashloop.restart(name, setting, _crash_history(), lambda: lifecycle.start(dom))
    if not result["started"]:
        __salt__["event.send"](crashloop.tag(name), result)
    return result


@saltglue.plain_errors
def shutdown(name, timeout=120, force=False):
    """Shut a guest down gracefully, waiting up to ``timeout`` seconds; ``force=True``
    destroys it if still up then. ``via`` in the result says which happened.

    CLI Example: ``salt '*' xen_guest.shutdown vm02 timeout=30 force=True``
    """
    return lifecycle.shutdown(_dom(name), **guest_spec.arguments(timeout=timeout, force=force))


@saltglue.plain_errors
def reboot(name):
    """Ask a running guest to reboot (``xm reboot``).

    CLI Example: ``salt '*' xen_guest.reboot vm02``
    """
    return lifecycle.reboot(_dom(name))


@saltglue.plain_errors
def destroy(name):
    """Stop a guest at once, like pulling its power cord (``xm destroy``).

    CLI Example: ``salt '*' xen_guest.destroy vm02``
    """
    return lifecycle.destroy(_dom(name))


@saltglue.plain_errors
def pause(name):
    """Freeze a running guest in memory (``xm pause``).

    CLI Example: ``salt '*' xen_guest.pause vm02``
    """
    return lifecycle.pause(_dom(name))


@saltglue.plain_errors
def resume(name):
    """Let a paused guest run again (``xm unpause``).

    CLI Example: ``salt '*' xen_guest.resume vm02``
    """
    return lifecycle.resume(_dom(name))


@saltglue.plain_errors
def save(name, path=None, overwrite=False):
    """Save a running guest's memory and stop it (``xm save``), to ``path`` (default
    ``/var/lib/xen/save/NAME``); an existing file is replaced only with ``overwrite=True``,
    and a disk of a defined guest never, ``overwrite`` or not.

    CLI Example: ``salt '*' xen_guest.save vm02 path=/srv/save/vm02 overwrite=True``
    """
    conn = _conn()
    overwrite = guest_spec.arguments(overwrite=overwrite)["overwrite"]
    return lifecycle.save(lifecycle.lookup(conn, name), path, overwrite, in_use=lifecycle.host_disk_users(conn))


@saltglue.plain_errors
def restore(path=None, name=None, keep=False):
    """Bring back a saved guest (``xm restore``) from ``path`` or ``/var/lib/xen/save/NAME``;
    the save file is removed afterwards, as xendomains does, unless ``keep=True``.

    CLI Example: ``salt '*' xen_guest.restore name=vm02``
    """
    if not path and not name:
        raise errors.XenError("restore needs path= (a save file) or name= (a guest saved to the default place)")
    keep = guest_spec.arguments(keep=keep)["keep"]
    return lifecycle.restore(_conn(), path or lifecycle.save_path(name), keep=keep, name=name)


@saltglue.plain_errors
def rename(name, new_name):
    """Rename a guest that is shut off (``xm rename``).

    CLI Example: ``salt '*' xen_guest.rename vm03 newvm03``
    """
    return lifecycle.rename(_dom(name), new_name)


@saltglue.plain_errors
def autostart(name, enable=True):
    """Start the guest when the host boots, or stop doing so with ``enable=False``
    (``virsh autostart [--disable]``, the ``/etc/xen/auto`` link).

    CLI Example: ``salt '*' xen_guest.autostart vm02 enable=False``
    """
    return lifecycle.set_autostart(_dom(name), **guest_spec.arguments(enable=enable))


@saltglue.plain_errors
def console(name):
    """The command that attaches to the guest's console on the host (a Salt job cannot
    be interactive: run it in a shell there).

    CLI Example: ``salt '*' xen_guest.console vm02``
    """
    return lifecycle.console_command(_conn(), name)


@saltglue.plain_errors
def dmesg():
    """The Xen hypervisor's message buffer (``xm dmesg``/``xl dmesg``).

    CLI Example: ``salt '*' xen_guest.dmesg``
    """
    return lifecycle.dmesg(_conn(), _run)


@saltglue.plain_errors
def log(name=None, lines=100):
    """The last ``lines`` lines of Xen's logs under ``/var/log/xen``: the toolstack,
    device-model and console logs of guest ``name``, or all logs.

    CLI Example: ``salt '*' xen_guest.log vm02 lines=50``
    """
    return lifecycle.logs(_conn(), name, guest_spec.arguments(lines=lines)["lines"])


@saltglue.plain_errors
def clone(
    name, new_name, disks=None, memory=None, vcpus=None, bridge=None, crash_consistent=False, start=False, force=False
):
    """Clone guest ``name`` as ``new_name``, like ``virt-clone``: new UUID, new MACs with the
    source's vendor prefix, verified copies of its writable disks (``disks`` maps targets to
    paths; default: next to the source, the name swapped). The source must be shut off or
    paused unless ``crash_consistent=True``; ``memory`` (``1024``, ``2G``), ``vcpus``, ``bridge`` change
    the copy; a copy onto a device holding data needs ``force=True``, a missing LV is made.
    A failed clone leaves nothing behind; the clone records its source in ``<metadata>``.

    CLI Example: ``salt '*' xen_guest.clone vm03 newvm03 disks='{xvda: /var/lib/xen/images/newvm03.img}'``
    """
    settings = {"disks": disks, "memory": memory, "vcpus": vcpus, "bridge": bridge}
    settings.update(crash_consistent=crash_consistent, force=force)
    return guest_clone.clone(
        _conn(),
        name,
        new_name,
        settings,
        start=start,
        run=_run,
        make_block=lambda path, size: __salt__["xen_disk.create"](path, f"{size}b"),
        drop_block=lambda path: __salt__["xen_disk.delete"](path, delete=True),
    )


@saltglue.plain_errors
def check_clones(clones=None, guests=None, ensure="defined", guest_ensure="running"):
    """What SLS ``xen.clones`` makes of pillar ``xen:clones`` and ``xen:guests`` (default: this minion's).

    CLI Example: ``salt '*' xen_guest.check_clones``
    """
    clones = salt.utils.data.traverse_dict_and_list(__pillar__, "xen:clones", None) if clones is None else clones
    guests = salt.utils.data.traverse_dict_and_list(__pillar__, "xen:guests", None) if guests is None else guests
    return clone_entry.formula(clones, guests, ensure, guest_ensure)


@saltglue.plain_errors
def define(name, spec=None, **kwargs):
    """Define (or update) guest ``name`` from a spec: the keys of pillar ``xen:guests:NAME``
    as ``spec`` or keyword arguments, else that pillar entry. Does not start or stop it.
    Returns ``{key: {"old": .., "new": ..}}``, VNC password masked.

    CLI Example: ``salt '*' xen_guest.define vm05 memory=1024 vcpus=2``
    """
    # __pillar__ itself: pillar.get masks every value (Salt 3008) outside templates
    entry = salt.utils.data.traverse_dict_and_list(__pillar__, f"xen:guests:{name}", None)
    data = guest_apply.given_data(name, spec, kwargs, entry)
    return guest_apply.define_from(_conn(), name, data, _seed(name))


@saltglue.plain_errors
def import_config(path, name=None, start=False):
    """Adopt a hand-written ``xm``/``xl.cfg`` guest config into libvirt; every problem in the
    file is reported at once. Returns the changes, ``{key: {"old": .., "new": ..}}``, and
    under ``ignored`` the settings a guest spec has no place for. Passwords show masked.

    CLI Example: ``salt '*' xen_guest.import_config /etc/xen/newvm start=True``
    """
    start = guest_spec.arguments(start=start)["start"]
    changes = guest_apply.import_config(_conn(), path, name=name, seed=_seed, start=start)
    if "ignored" in changes:
        _log.warning(
            "%s: settings a guest spec has no place for were not imported: %s",
            path,
            ", ".join(sorted(changes["ignored"])),
        )
    return changes


@saltglue.plain_errors
def export_config(name, path=None, config_dir=DEFAULT_CONFIG_DIR):
    """Write guest ``name``'s definition as xl.cfg to ``path`` (default ``/etc/xen/NAME.cfg``),
    whole or not at all, mode 0600 when it holds a VNC password. Returns ``{"path", "changed", "mode"}``.
    An existing file is replaced only when it is an xl config of this same guest (an earlier
    export, or the guest's hand-written config): anything else there -- another guest's config,
    a disk image, any file holding data, and above all a disk a defined guest uses -- is refused
    and left as it is; an empty file may be written. The directory must exist.

    CLI Example: ``salt '*' xen_guest.export_config newvm path=/root/newvm.cfg``
    """
    return guest_apply.export_config(_conn(), name, path or os.path.join(config_dir, f"{name}.cfg"))


@saltglue.plain_errors
def spec(name):
    """Guest ``name``'s definition as a spec (the shape of pillar ``xen:guests:NAME``),
    VNC password masked: a starting point for pillar.

    CLI Example: ``salt '*' xen_guest.spec vm02``
    """
    return guest_spec.masked(guest_apply.current_spec(_conn(), name))


@saltglue.plain_errors
def nic_attach(name, bridge=None, network=None, mac=None, model=None, script=None):
    """Give guest ``name`` another NIC on ``bridge`` (default ``xenbr0``) or libvirt ``network``:
    plugged in now when it runs, kept in its definition always. ``mac`` defaults to a new one
    (``00:16:3e``, unique on the host); ``model``/``script`` as in a ``vif`` entry.
    Returns ``{"name", "mac", "bridge", "network", "live", "persistent"}``.

    CLI Example: ``salt '*' xen_guest.nic_attach vm02 bridge=xenbr1``
    """
    given = (("bridge", bridge), ("network", network), ("mac", mac), ("model", model), ("script", script))
    return devices.attach_nic(_conn(), name, {k: v for k, v in given if v is not None})


@saltglue.plain_errors
def nic_detach(name, mac=None, bridge=None, network=None):
    """Take a NIC (by ``mac``, or the only one on ``bridge``/``network``) out of guest ``name``,
    live and in its definition. Returns ``{"name", "mac", "live", "persistent"}``, or ``{}``.

    CLI Example: ``salt '*' xen_guest.nic_detach vm02 mac=00:16:3e:77:66:d5``
    """
    return devices.detach_nic(_conn(), name, mac=mac, bridge=bridge, network=network)


@saltglue.plain_errors
def states():
    """Every guest's state and autostart mark in one pass, as the ``xen_guest_events`` beacon
    sees them: ``{"vm02": {"state": "running", "autostart": True}}``.

    CLI Example: ``salt '*' xen_guest.states``
    """
    words, doms = guest_events.read_states(_conn())
    marked = guest_events.autostart_reader(doms)
    return {name: {"state": word, "autostart": marked(name)} for name, word in sorted(words.items())}


@saltglue.plain_errors
def dump_core(name, path, crash=False):
    """Write guest ``name``'s memory to ``path`` (``xm dump-core``); ``crash=True`` then stops
    it as if it had crashed, which rehearses a crash for the reactor.

    CLI Example: ``salt '*' xen_guest.dump_core vm02 /var/lib/xen/dump/vm02.core crash=True``
    """
    return lifecycle.dump_core(_dom(name), path, **guest_spec.arguments(crash=crash))


@saltglue.plain_errors
def start_autostart(save_dir=lifecycle.DEFAULT_SAVE_DIR, restore=True):
    """What xendomains did at boot: restore the guests saved under ``save_dir`` that are not
    up (``restore=False`` skips that), then start every autostart guest still off. One guest
    failing does not stop the others; the job then fails naming each. Returns the changes.

    CLI Example: ``salt '*' xen_guest.start_autostart restore=False``
    """
    return boot.start_all(_conn(), save_dir, guest_spec.arguments(restore=restore)["restore"])
