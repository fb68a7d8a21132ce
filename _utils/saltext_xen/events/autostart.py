"""What the xendomains script did when the host booted, as a plan and its execution.

xendomains restored every guest saved under ``/var/lib/xen/save`` and then
started the guests linked in ``/etc/xen/auto`` that were not running. Here
"linked in /etc/xen/auto" is libvirt's autostart mark.

``plan`` is plain data: given the guests' states, their autostart marks and the
save files found, it lists the steps. ``execute`` carries them out with the
lifecycle functions of ``saltext_xen.guests.lifecycle``.
"""

import os

import libvirt

from saltext_xen.core.errors import XenError
from saltext_xen.events import guest_events
from saltext_xen.guests import lifecycle

# States in which a guest is off and may be started or restored.
OFF = ("shutoff", "crashed", "nostate")


def save_files(save_dir):
    """``{guest name: path}`` for the save files in ``save_dir`` (xendomains names them after the guest)."""
    try:
        entries = sorted(os.listdir(save_dir))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise XenError(f"cannot read the save directory {save_dir}: {exc.strerror}") from None
    found = {}
    for entry in entries:
        path = os.path.join(save_dir, entry)
        if os.path.isfile(path) and not entry.startswith("."):
            found[entry] = path
    return found


def plan(states, autostart, saved):
    """The steps, in order: ``[("restore", name, path) | ("start", name, None)]``.

    states
        ``{name: state word}`` of the defined guests
    autostart
        names of the guests marked to start with the host
    saved
        ``{name: save file}``

    A saved guest is restored when it is off or unknown to libvirt (a transient
    guest lives only in its save file); it is not started as well. An autostart
    guest that is off and has no save file is started. A guest that is already
    up is left alone, its save file too.
    """
    steps = []
    for name in sorted(saved):
        if states.get(name, "shutoff") in OFF:
            steps.append(("restore", name, saved[name]))
    restored = {name for _kind, name, _path in steps}
    for name in sorted(autostart):
        if name not in restored and states.get(name) in OFF:
            steps.append(("start", name, None))
    return steps


def execute(conn, steps):
    """Carry out ``steps``; returns ``(changes, errors)``.

    One guest failing does not stop the others (a host booting wants as many
    guests up as it can get); its error is reported in plain words.
    """
    changes, problems = {}, []
    for kind, name, path in steps:
        try:
            if kind == "restore":
                changes.update(lifecycle.restore(conn, path))
            else:
                changes.update(lifecycle.start(lifecycle.lookup(conn, name)))
        except XenError as exc:
            problems.append(f"{name}: {exc}")
        except libvirt.libvirtError as exc:
            problems.append(f"{name}: could not {kind} it: {exc.get_error_message()}")
    return changes, problems


def start_all(conn, save_dir, restore=True):
    """Restore the saved guests under ``save_dir`` that are off (unless ``restore`` is False), then
    start every autostart guest still off; the changes, or XenError naming each guest that failed."""
    words, doms = guest_events.read_states(conn)
    marked = guest_events.autostart_reader(doms)
    saved = save_files(save_dir) if restore else {}
    changes, problems = execute(conn, plan(words, {n for n in words if marked(n)}, saved))
    if problems:
        done = f"; done: {changes}" if changes else ""
        raise XenError("not every guest came up: " + "; ".join(problems) + done)
    return changes
