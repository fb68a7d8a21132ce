"""Xen guests as data: define, run, stop, pause and remove guests described in pillar.

A guest is described as under pillar ``xen:guests:NAME`` (see
``pillar/xen/guests.sls``); pass the same keys to a state, or ``spec:`` with a
mapping, or nothing to use the pillar entry:

.. code-block:: yaml

    xen-guest-vm02-running:
      xen_guest.running:
        - name: vm02
        - memory: 512
        - vcpus: 2
        - disks:
          - source: /var/lib/xen/images/vm02.img
            size: 8G
        - nics:
          - bridge: xenbr0
        - install:
            location: ftp://192.168.0.254/pub
            kickstart: ftp://192.168.0.254/pub/ks.cfg

Every problem in the spec is reported at once, with its key path, before
anything is touched. ``test=True`` shows exactly the changes a real run makes.
A running guest gets memory and vcpus changes live (within maxmem/maxvcpus);
other changes wait for a restart, which happens only with
``restart_on_change: True``. VNC passwords never appear in changes or comments.

A change that needs a restart is reported as pending on the run that writes it
and on every later run until the guest is restarted: those runs compare the
running guest's live definition with the wanted spec, report nothing as changed
(``changes`` empty, ``result: True``) and say in the comment what waits;
``restart_on_change: True`` restarts the guest then.

Cost per guest, in libvirt calls: within a state run the host's guests are
listed once (two calls for the whole run: handles and run states, and autostart
marks; listed again only after another state of the run changed something), so
a guest's read is its definition (one call) and, when it runs, its persistent
definition (one more). A no-op re-apply costs 1 call for a shut-off guest and 2
for a running one, pending changes or not (``bench/guests_apply.py``); more only
when something is to change. Called outside a state run (no ``__running__``), a
lookup, an ``autostart()`` and, for the run-state states, an ``info()`` are added.
"""

import logging
import time

import salt.utils.data

from saltext_xen import saltglue
from saltext_xen.core import connection, errors
from saltext_xen.guests import guest_apply, guest_spec, install

log = logging.getLogger(__name__)

__virtualname__ = "xen_guest"

# Keys of a pillar guest that tell salt/xen/guests.sls how to apply it.
PILLAR_STATE_KEYS = ("ensure", "restart_on_change", "remove_disks", "timeout", "force")
# State arguments that are not part of the guest spec.
_STATE_ARGS = ("name", "spec", "restart_on_change", "timeout", "force", "boot_dir", "pillar_path")


def __virtual__():
    if not connection.available():
        return False, f"xen_guest: {connection.MISSING_REASON}"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _wanted(name, spec, kwargs, pillar_path):
    """The spec data from ``spec``, state keywords, or pillar, in that order; (data, path)."""
    data = {k: v for k, v in kwargs.items() if not k.startswith("__") and k not in _STATE_ARGS}
    if spec is not None:
        if not isinstance(spec, dict):
            return None, f"{pillar_path}:{name}"
        merged = dict(spec)
        merged.update(data)
        return merged or None, pillar_path
    if data:
        return data, pillar_path
    # __pillar__ itself: pillar.get masks every value (Salt 3008) outside templates
    from_pillar = salt.utils.data.traverse_dict_and_list(__pillar__, f"{pillar_path}:{name}", None)
    if isinstance(from_pillar, dict):
        # how the formula applies a guest, not what the guest is; an entry with nothing
        # else (``vm03: {ensure: stopped}``) manages the run state and leaves the definition alone
        from_pillar = {k: v for k, v in from_pillar.items() if k not in PILLAR_STATE_KEYS} or None
    return from_pillar, pillar_path


def _validate(name, spec, kwargs, pillar_path, required=True):
    data, path = _wanted(name, spec, kwargs, pillar_path)
    if data is None:
        if not required:
            return None, []
        return None, [
            f"{path}:{name}: no spec for this guest: give its keys (memory, disks, ...) to the state, "
            f"spec: with a mapping, or pillar {path}:{name}"
        ]
    spec, problems = guest_spec.validate(name, data, path)
    if spec is not None:
        others = salt.utils.data.traverse_dict_and_list(__pillar__, path, None)
        problems = guest_spec.mac_clashes(name, spec, others if isinstance(others, dict) else {}, path)
        if problems:
            spec = None
    return spec, problems


_HOST_KEY = "xen_guest.host"
# The states of this module that keep the Host listing up to date themselves (they
# forget the guests they change); a change reported by any other state of the run
# (module.run xen_guest.autostart, xen_guest.cloned, ...) makes the next guest list
# the host again.
_KEEP_HOST = ("defined", "running", "stopped", "paused", "absent")


def _run_marks():
    """``(run id, __running__)`` inside a state run, ``(None, None)`` when called directly."""
    try:
        return __instance_id__, __running__
    except NameError:
        return None, None


def _others_changed(running):
    count = 0
    for tag, ret in (running or {}).items():
        if not getattr(ret, "get", None) or not ret.get("changes"):  # frozen mappings, not dicts
            continue
        parts = str(tag).split("_|-")
        if parts[0] == "xen_guest" and parts[-1] in _KEEP_HOST:
            continue
        count += 1
    return count


def _host(conn):
    """The host's guests listed once per state run (``guest_apply.Host``), or None outside a run."""
    run, running = _run_marks()
    if run is None:
        return None
    others = _others_changed(running)
    cached = __context__.get(_HOST_KEY)
    if cached is None or cached[0] != run or cached[1] is not conn or cached[2] != others:
        cached = (run, conn, others, guest_apply.Host(conn))
        __context__[_HOST_KEY] = cached
    return cached[3]


def _forget(name):
    cached = __context__.get(_HOST_KEY)
    if cached is not None:
        cached[3].forget(name)


_MACS_KEY = "xen_guest.host_macs"
_MACS_TTL = 60.0


def _host_macs(conn):
    """The host's guest MACs, read once per state run rather than per guest.

    Read again when another state of the run changed something (a clone brings
    new MACs), or, outside a state run, after a minute.
    """
    run, running = _run_marks()
    mark = (run, id(conn), _others_changed(running)) if run is not None else None
    cached = __context__.get(_MACS_KEY)
    if cached is None or cached[2] != mark or (mark is None and time.monotonic() - cached[0] > _MACS_TTL):
        cached = (time.monotonic(), set(guest_apply.host_macs(conn)), mark)
        __context__[_MACS_KEY] = cached
    return cached[1]


def _remember_macs(spec):
    cached = __context__.get(_MACS_KEY)
    if cached is not None and spec is not None:
        cached[1].update(nic["mac"] for nic in spec["nics"] if nic["mac"])


def _seed(name):
    return f"{__opts__.get('id', 'minion')}/{name}"


def _summary(changes):
    keys = [k for k in changes if k not in ("state", "restarted", "installed", "defined")]
    return ", ".join(keys)


def _converge(name, spec, kwargs, want, restart_on_change, timeout, force, boot_dir, pillar_path, spec_required):
    ret = _ret(name)
    wanted, problems = _validate(name, spec, kwargs, pillar_path, required=spec_required)
    if problems:
        ret["result"] = False
        ret["comment"] = "The spec has problems; nothing was changed:\n" + "\n".join(problems)
        return ret
    try:
        conn = saltglue.conn_from(__salt__)
        current = guest_apply.read(conn, name, host=_host(conn))
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    if wanted is None and current is None:
        ret["result"] = False
        ret["comment"] = f"{name} is not defined and no spec says how to define it (pillar {pillar_path}:{name})"
        return ret

    plan = None
    if wanted is not None:
        try:
            taken = _host_macs(conn) if guest_apply.needs_macs(wanted, current) else ()
            plan = guest_apply.plan(
                wanted,
                current,
                _seed(name),
                restart_on_change=bool(restart_on_change),
                live=want is not None,
                taken_macs=taken,
                pending=want != "stopped",
            )
        except errors.XenError as exc:
            ret["result"] = False
            ret["comment"] = str(exc)
            return ret
    changes = dict(plan.changes) if plan else {}
    notes = list(plan.notes) if plan else []
    installing = bool(plan and plan.create and want in ("running",) and wanted.get("install") is not None)
    if installing:
        changes["installed"] = {
            "old": None,
            "new": install.describe(plan.new_spec, boot_dir or install.DEFAULT_BOOT_DIR),
        }
    elif plan and plan.create and wanted.get("install") is not None:
        notes.append("the install settings are used by xen_guest.running; this state only defines the guest")
    transition = None
    if want is not None and not installing and not (plan is not None and plan.restart and want == "running"):
        transition = guest_apply.run_state_change("shutoff" if current is None else current.state, want)
        if transition:
            changes["state"] = {"old": transition[0], "new": transition[1]}

    if not changes:
        if plan and plan.pending:
            ret["comment"] = f"{name} is defined as wanted; " + _pending_comment(plan)
        else:
            ret["comment"] = f"{name} is already as wanted"
        if notes:
            ret["comment"] += "; " + "; ".join(notes)
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = _comment(name, changes, plan, would=True, notes=notes)
        return ret

    done = {}
    problems = []
    try:
        if plan is not None:
            if installing:
                for key in guest_apply._create_disks(plan):  # pylint: disable=protected-access
                    done[key] = changes[key]
                dom = install.start(conn, plan.new_spec, boot_dir or install.DEFAULT_BOOT_DIR)
                for key, change in changes.items():
                    if key not in done:
                        done[key] = change
                if plan.set_autostart:
                    dom.setAutostart(1)
            else:
                got, problems = guest_apply.apply(conn, plan, current, timeout=float(timeout))
                done.update(got)
        if transition and not problems:
            dom = (plan.dom if plan is not None else None) or current.dom
            guest_apply.drive(dom, transition[0], want, timeout=float(timeout), force=bool(force))
            done["state"] = changes["state"]
    except errors.XenError as exc:
        problems.append(str(exc))
    except Exception as exc:  # libvirt errors not foreseen: say so in plain words
        import libvirt  # pylint: disable=import-outside-toplevel

        if not isinstance(exc, libvirt.libvirtError):
            raise
        problems.append(exc.get_error_message())
    if plan is not None and plan.new_spec is not None and done:
        _remember_macs(plan.new_spec)
    _forget(name)  # read it afresh if another state of this run looks at it
    ret["changes"] = done
    if problems:
        ret["result"] = False
        ret["comment"] = f"{name}: " + "; ".join(problems)
        if done:
            ret["comment"] += f" (done before that: {_summary(done) or ', '.join(done)})"
        return ret
    ret["comment"] = _comment(name, done, plan, would=False, notes=notes)
    return ret


def _pending_comment(plan):
    """What the running guest gets only by a restart, in one sentence."""
    keys = sorted(set(plan.pending))
    one = len(keys) == 1
    text = f"{', '.join(keys)} wait{'s' if one else ''} for a restart"
    if plan.waiting:
        text += f" (the running guest does not have {'it' if one else 'them'} yet)"
    return text + "; restart_on_change: True restarts it"


def _comment(name, changes, plan, would, notes):
    verb = "would be" if would else "was"
    parts = []
    if "installed" in changes:
        parts.append(f"{name} {verb} installed: {changes['installed']['new']}")
    elif plan is not None and plan.create:
        parts.append(f"{name} {verb} defined")
    elif plan is not None and _summary(changes):
        parts.append(f"{name} {verb} updated: {_summary(changes)}")
    if "restarted" in changes:
        parts.append(f"{name} {verb} restarted to apply {changes['restarted']['why']}")
    elif plan is not None and plan.pending and not plan.create:
        parts.append(_pending_comment(plan))
    if "state" in changes:
        parts.append(f"{name} {verb} {changes['state']['new']} (was {changes['state']['old']})")
    parts.extend(notes)
    return "; ".join(parts)


def defined(name, spec=None, restart_on_change=False, timeout=120, pillar_path="xen:guests", **kwargs):
    """
    Make sure guest ``name`` is defined exactly as its spec says, without
    starting or stopping it.

    A running guest gets memory/vcpus changes live; other changes go to its
    definition and wait for a restart (done only with ``restart_on_change: True``).
    What a running guest still waits for is said on every run until it restarts.
    Missing image files with a ``size`` are created sparse.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.defined vm02 memory=512 vcpus=2
    """
    return _converge(name, spec, kwargs, None, restart_on_change, timeout, False, None, pillar_path, True)


def running(name, spec=None, restart_on_change=False, timeout=120, boot_dir=None, pillar_path="xen:guests", **kwargs):
    """
    Make sure guest ``name`` is defined as its spec says and running. A new
    guest with ``install`` settings is installed (network tree + kickstart for
    pv, ISO for hvm). Without a spec (and no pillar entry) an existing guest is
    only started or resumed. A change the running guest gets only by a restart
    is said (as pending, with no changes) on every run until it restarts;
    ``restart_on_change: True`` restarts it.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.running vm02
    """
    return _converge(name, spec, kwargs, "running", restart_on_change, timeout, False, boot_dir, pillar_path, False)


def stopped(name, spec=None, timeout=120, force=False, pillar_path="xen:guests", **kwargs):
    """
    Make sure guest ``name`` is shut off: graceful shutdown, waiting up to
    ``timeout`` seconds; ``force: True`` destroys it if it is still up then.
    With a spec (or pillar entry) the definition is made right as well.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.stopped vm02 timeout=60 force=True
    """
    return _converge(name, spec, kwargs, "stopped", False, timeout, force, None, pillar_path, False)


def paused(name, spec=None, pillar_path="xen:guests", **kwargs):
    """
    Make sure guest ``name`` is paused (``xm pause``), starting it first if it
    is shut off.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.paused vm02
    """
    return _converge(name, spec, kwargs, "paused", False, 120, False, None, pillar_path, False)


def absent(name, remove_disks=False, timeout=120):
    """
    Make sure guest ``name`` is not defined: a running guest is shut down
    (destroyed after ``timeout`` seconds) and undefined. Its disk images are
    kept unless ``remove_disks: True``; block devices and LVs are always kept.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.absent vm03 remove_disks=True
    """
    ret = _ret(name)
    try:
        conn = saltglue.conn_from(__salt__)
        current = guest_apply.read(conn, name, host=_host(conn))
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    if current is None:
        ret["comment"] = f"{name} is already absent"
        return ret
    if __opts__["test"]:
        changes = {}
        if current.active:
            changes["state"] = {"old": current.state, "new": "shutoff"}
        changes["defined"] = {"old": True, "new": False}
        if remove_disks:
            changes.update(guest_apply.disks_to_remove(current))
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"{name} would be removed" + ("" if remove_disks else " (its disks kept)")
        return ret
    _forget(name)
    try:
        ret["changes"] = guest_apply.remove(conn, current, remove_disks=bool(remove_disks), timeout=float(timeout))
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = f"{name} was removed" + ("" if remove_disks else " (its disks kept)")
    return ret


# --------------------------------------------------------------------------- cloned (issue 5)
from saltext_xen.guests import clone as guest_clone  # noqa: E402  pylint: disable=wrong-import-position


def cloned(
    name, source, disks=None, memory=None, vcpus=None, bridge=None, crash_consistent=False, start=False, force=False
):
    """
    Guest ``name`` is a clone of ``source`` (the tutorial's ``virt-clone -o
    vm03 -n newvm03``), made when it does not exist: new UUID, new MACs with
    the source's vendor prefix, unique on the host, and copies of its writable
    disks (``disks`` maps targets to paths; default: next to the source, the
    name swapped). The source must be shut off or paused unless
    ``crash_consistent: true``. The clone records its source in its
    definition's ``<metadata>``.

    An existing ``name`` is checked, never cloned again: if it does not look
    like a clone of ``source`` (it records another source, or none and has not
    the UUID a clone of ``source`` gets, or it shares the source's UUID or a
    MAC) the state fails and says so, changing nothing. Otherwise ``memory``
    (MiB), ``vcpus`` and ``bridge`` that differ are changed in its definition
    (a running clone sees them at its next start). Its disks are never
    touched: a disk at another path than ``disks`` asks for is only mentioned.
    ``start: true`` starts a clone this state made (keeping it running is
    ``xen_guest.running``'s job).

    .. code-block:: yaml

        xen-guest-newvm03-cloned:
          xen_guest.cloned:
            - name: newvm03
            - source: vm03
            - disks:
                xvda: /var/lib/xen/images/newvm03.img

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_guest.cloned newvm03 source=vm03
        salt '*' state.single xen_guest.cloned newvm03 source=vm03 memory=1024 vcpus=2
    """
    ret = _ret(name)
    problems = guest_clone.validate(name, source, disks=disks, memory=memory, vcpus=vcpus, bridge=bridge)
    if problems:
        ret["result"] = False
        ret["comment"] = "Nothing was changed:\n" + "\n".join(problems)
        return ret
    settings = {"memory": memory, "vcpus": vcpus, "bridge": bridge}
    try:
        conn = saltglue.conn_from(__salt__)
        found = guest_clone.compare(conn, source, name, disks=disks, **settings)
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    if found is not None:
        return _cloned_existing(ret, conn, found, settings)
    try:
        step = guest_clone.plan(
            conn,
            source,
            name,
            disks=disks,
            memory=memory,
            vcpus=vcpus,
            bridge=bridge,
            crash_consistent=bool(crash_consistent),
            force=bool(force),
        )
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = guest_clone.summary(step)
    if start:
        ret["changes"]["started"] = True
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{name} would be cloned from {source}"
        return ret
    try:
        done = __salt__["xen_guest.clone"](
            source,
            name,
            disks=disks,
            memory=memory,
            vcpus=vcpus,
            bridge=bridge,
            crash_consistent=bool(crash_consistent),
            start=bool(start),
            force=bool(force),
        )
    except Exception as exc:  # pylint: disable=broad-except
        ret["changes"] = {}
        ret["result"] = False
        ret["comment"] = f"{exc}; nothing of {name} was left behind"
        return ret
    ret["changes"] = {k: done[k] for k in ret["changes"] if k in done}
    copied = ", ".join(f"{t} by {how}" for t, how in done.get("copied", {}).items())
    ret["comment"] = f"{name} was cloned from {source}" + (f" ({copied})" if copied else "")
    return ret


def _cloned_existing(ret, conn, found, settings):
    """``cloned`` for a guest that exists: check it is a clone of the source, converge its settings."""
    name, source, changes = found["name"], found["source"], found["changes"]
    notes = list(found["notes"])
    differing = ", ".join(f"{key} is {c['old']} (asked: {c['new']})" for key, c in changes.items())
    if found["problems"]:
        ret["result"] = False
        ret["comment"] = "; ".join(found["problems"]) + f". {name} was left as it is"
        if differing:
            ret["comment"] += f" (also differing: {differing})"
        return ret
    tail = ("; " + "; ".join(notes)) if notes else ""
    if not changes:
        ret["comment"] = f"{name} is already as wanted (a clone of {source})" + tail
        return ret
    keys = ", ".join(changes)
    later = "; the running guest sees it at its next start" if found["active"] else ""
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"{name} (a clone of {source}) would be updated: {keys}{later}" + tail
        return ret
    try:
        ret["changes"] = guest_clone.converge(conn, found, **settings)
    except errors.XenError as exc:
        ret["result"] = False
        ret["comment"] = f"{exc}; {name} was left as it was"
        return ret
    ret["comment"] = f"{name} (a clone of {source}) was updated: {keys}{later}" + tail
    return ret
