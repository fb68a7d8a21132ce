"""Xen guests as data: define, run, stop, pause, remove and clone guests described in pillar.

A guest is described as under pillar ``xen:guests:NAME`` (see
``pillar/xen/guests.sls``); pass the same keys to a state, or ``spec:`` with a
mapping, or nothing to use the pillar entry:

.. code-block:: yaml

    xen-guest-vm02-running:
      xen_guest.running:
        - name: vm02
        - memory: 512
        - disks:
          - source: /var/lib/xen/images/vm02.img
            size: 8G
        - nics:
          - bridge: xenbr0
        - install:
            location: ftp://192.168.0.254/pub
            kickstart: ftp://192.168.0.254/pub/ks.cfg

Every problem in the spec is reported at once, with its key path, before
anything is touched: the state's own arguments too (``restart_on_change``, ``force``
``true``/``false`` only, ``timeout`` at least 1, as ``<pillar_path>:<name>:<key>``) and
clashes with the host (a MAC another guest has, a missing bridge or libvirt network,
more memory or vCPUs than the host has, another guest's disk), and a guest another host
has (the Salt mine's ``xen_host.guests``) is never defined or started here. A state manages the keys
it is given and keeps the others (``memory=256`` alone changes only memory); removing
every disk or NIC is said explicitly (``disks: []``). ``test=True`` shows exactly the
changes a real run makes.
A running guest gets memory and vcpus changes live (within maxmem/maxvcpus);
other changes wait for a restart, said in the comment (with no changes) on every
run until it happens; ``restart_on_change: True`` restarts the guest then. VNC
passwords never appear in changes or comments.

Every state reports ``changes`` in one shape, ``{key: {"old": .., "new": ..}}``
(some entries add ``applied``, ``why`` or ``via`` in plain words): spec keys as
key paths (``memory``, ``disks:xvdb``, ``nics:0:bridge``), ``state`` for the run
state, ``defined`` for a guest made or removed, ``cloned_from``, ``uuid`` and
``started`` for a new clone.

``xen_guest.running`` acts on ``watch:``: when a watched state changed and the
guest needed nothing else, a running guest is restarted (shut down gracefully
within ``timeout``, or destroyed with ``force: True``, then started), changes
``{"state": {"old": "running", "new": "restarted"}}``; a guest that is not
running is started, ``{"state": {"old": "shutoff", "new": "running"}}``.

Cost: within a state run the host's guests are listed once (two libvirt calls for
the run, again only after another state changed something), and what they use (MACs,
disks, bridges) is read once when a state changes any of it; a no-op re-apply costs 1
call for a shut-off guest and 2 for a running one (``bench/guests_apply.py``). Outside
a state run a lookup, an ``autostart()`` and, for run-state states, an ``info()`` are added.
"""

import salt.utils.data
from salt.exceptions import CommandExecutionError

from saltext_xen import saltglue
from saltext_xen.core import connection, errors
from saltext_xen.guests import clone as guest_clone
from saltext_xen.guests import clone_entry, guest_apply, guest_spec

__virtualname__ = "xen_guest"

# State arguments that are not part of the guest spec.
_STATE_ARGS = ("name", "spec", "restart_on_change", "timeout", "force", "boot_dir", "pillar_path")


def __virtual__():
    if not connection.available():
        return False, f"xen_guest: {connection.MISSING_REASON}"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _fail(ret, comment):
    ret.update(result=False, comment=comment)
    return ret


def _wanted(name, spec, kwargs, pillar_path):
    """The spec data from ``spec``, state keywords, or pillar, in that order; (data, path)."""
    data = {k: v for k, v in kwargs.items() if not k.startswith("__") and k not in _STATE_ARGS}
    if spec is not None:
        if not isinstance(spec, dict):
            return spec, pillar_path  # guest_spec says what it should be
        return dict(spec, **data) or None, pillar_path
    if data:
        return data, pillar_path
    # __pillar__ itself: pillar.get masks every value (Salt 3008) outside templates
    from_pillar = salt.utils.data.traverse_dict_and_list(__pillar__, f"{pillar_path}:{name}", None)
    if isinstance(from_pillar, dict):
        # formula keys are no part of the guest; ``vm03: {ensure: stopped}`` manages the run state only
        from_pillar = {k: v for k, v in from_pillar.items() if k not in guest_spec.OPTION_CHECKS} or None
    return from_pillar, pillar_path


def _run_marks():
    """``(run id, __running__)`` inside a state run, ``(None, None)`` when called directly."""
    try:
        return __instance_id__, __running__
    except NameError:
        return None, None


def _cache():
    """The guest listing and MACs this state run shares (``guest_apply.RunCache``)."""
    cache = __context__.get("xen_guest.run_cache")
    if cache is None:
        cache = __context__["xen_guest.run_cache"] = guest_apply.RunCache()
    return cache


def _host(conn):
    return _cache().host(conn, *_run_marks())


def _seed(name):
    return f"{__opts__.get('id', 'minion')}/{name}"


def _converge(name, spec, kwargs, want, given, boot_dir, pillar_path, spec_required):
    ret = _ret(name)
    opts, problems = guest_spec.options(name, given, pillar_path)
    if not guest_spec.is_guest_name(name):  # before pillar is looked up by it
        return _fail(ret, f"{pillar_path}:{name}: not a guest name (letters, digits, _ . + -; nothing changed)")
    data, path = _wanted(name, spec, kwargs, pillar_path)
    if data is None and spec_required:
        problems.append(
            f"{path}:{name}: no spec for this guest: give its keys (memory, disks, ...) to the state, "
            f"spec: with a mapping, or pillar {path}:{name}"
        )
    if problems:
        return _fail(ret, "The spec has problems; nothing was changed:\n" + "\n".join(problems))
    try:
        conn = saltglue.conn_from(__salt__)
        current = guest_apply.read(conn, name, host=_host(conn))
        others = salt.utils.data.traverse_dict_and_list(__pillar__, path, None)
        owners = _cache().pillar_macs(others if isinstance(others, dict) else {}, _run_marks()[0])
        wanted, problems = guest_apply.wanted_spec(name, data, current, path, owners)
        if not problems:
            problems = guest_apply.host_check(wanted, current, lambda: _cache().index(conn, *_run_marks()), path)
            problems += saltglue.second_copy(__salt__, __context__, _run_marks()[0], name, want, current, wanted, path)
    except errors.XenError as exc:
        return _fail(ret, str(exc))
    if problems:
        return _fail(ret, "The spec has problems; nothing was changed:\n" + "\n".join(problems))
    if wanted is None and current is None:
        return _fail(ret, f"{name} is not defined and no spec says how to define it (pillar {pillar_path}:{name})")

    try:
        plan, changes, notes, transition, installing = guest_apply.state_plan(
            wanted,
            current,
            _seed(name),
            want,
            restart_on_change=opts.get("restart_on_change", False),
            boot_dir=boot_dir,
            taken=lambda: _cache().macs(conn, *_run_marks()),
        )
    except errors.XenError as exc:
        return _fail(ret, str(exc))
    if not changes:
        ret["comment"] = guest_apply.unchanged_comment(name, plan, notes)
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = guest_apply.comment(name, changes, plan, True, notes)
        return ret

    done, problems = guest_apply.converge(
        conn,
        plan,
        current,
        changes,
        transition,
        want,
        install=installing,
        boot_dir=boot_dir,
        timeout=opts.get("timeout", 120),
        force=opts.get("force", False),
    )
    if plan is not None and plan.new_spec is not None and done:
        _cache().remember_macs(plan.new_spec)
    _cache().forget(name)  # read it afresh if another state of this run looks at it
    ret["changes"] = done
    if problems:
        ret["result"] = False
        ret["comment"] = f"{name}: " + "; ".join(problems)
        if done:
            ret["comment"] += f" (done before that: {guest_apply.changed_keys(done) or ', '.join(done)})"
        return ret
    ret["comment"] = guest_apply.comment(name, done, plan, False, notes)
    return ret


def defined(name, spec=None, restart_on_change=False, timeout=120, pillar_path="xen:guests", **kwargs):
    """Guest ``name`` is defined exactly as its spec says; it is not started or stopped.
    A running guest gets memory/vcpus live; other changes wait for a restart (done only
    with ``restart_on_change: True``). Missing image files with a ``size`` are made sparse.

    CLI Example: ``salt '*' state.single xen_guest.defined vm02 memory=512 vcpus=2``
    """
    given = {"restart_on_change": restart_on_change, "timeout": timeout}
    return _converge(name, spec, kwargs, None, given, None, pillar_path, True)


def running(name, spec=None, restart_on_change=False, timeout=120, boot_dir=None, pillar_path="xen:guests", **kwargs):
    """Guest ``name`` is defined as its spec says and running; a new guest with ``install``
    settings is installed (network tree + kickstart for pv, ISO for hvm). Without a spec an
    existing guest is only started or resumed. Acts on ``watch:`` (see ``mod_watch``;
    ``force: True`` there destroys the guest instead of shutting it down).

    CLI Example: ``salt '*' state.single xen_guest.running vm02``
    """
    given = {"restart_on_change": restart_on_change, "timeout": timeout}
    return _converge(name, spec, kwargs, "running", given, boot_dir, pillar_path, False)


def stopped(name, spec=None, timeout=120, force=False, pillar_path="xen:guests", **kwargs):
    """Guest ``name`` is shut off: graceful shutdown within ``timeout`` seconds; ``force: True``
    destroys it if still up then. With a spec the definition is made right as well.

    CLI Example: ``salt '*' state.single xen_guest.stopped vm02 timeout=60 force=True``
    """
    given = {"timeout": timeout, "force": force}
    return _converge(name, spec, kwargs, "stopped", given, None, pillar_path, False)


def paused(name, spec=None, pillar_path="xen:guests", **kwargs):
    """Guest ``name`` is paused (``xm pause``), started first if it is shut off.

    CLI Example: ``salt '*' state.single xen_guest.paused vm02``
    """
    return _converge(name, spec, kwargs, "paused", {}, None, pillar_path, False)


def absent(name, remove_disks=False, timeout=120, force=False, pillar_path="xen:guests"):
    """Guest ``name`` is not defined: a running guest is shut down gracefully and undefined; one
    still up after ``timeout`` seconds (or paused) is destroyed only with ``force: True``, else the
    state fails leaving it running. Image files are kept unless ``remove_disks: True``; devices
    always. ``remove_disks``/``force`` are ``true``/``false`` only: ``"no"`` is refused.

    CLI Example: ``salt '*' state.single xen_guest.absent vm03 remove_disks=True``
    """
    ret = _ret(name)
    given = {"remove_disks": remove_disks, "timeout": timeout, "force": force}
    opts, problems = guest_spec.options(name, given, pillar_path)
    if problems:
        return _fail(ret, "Nothing was changed:\n" + "\n".join(problems))
    remove_disks, timeout, force = opts["remove_disks"], opts["timeout"], opts["force"]
    try:
        conn = saltglue.conn_from(__salt__)
        current = guest_apply.read(conn, name, host=_host(conn))
    except errors.XenError as exc:
        return _fail(ret, str(exc))
    if current is None:
        ret["comment"] = f"{name} is already absent"
        return ret
    kept = "" if remove_disks else " (its disks kept)"
    if __opts__["test"]:
        try:
            changes, how = guest_apply.removal(current, remove_disks=remove_disks, force=force)
        except errors.XenError as exc:
            return _fail(ret, str(exc))
        ret.update(result=None, changes=changes, comment=f"{name} would be {how}{kept}")
        return ret
    _cache().forget(name)
    try:
        ret["changes"], how = guest_apply.remove(conn, current, remove_disks, timeout=timeout, force=force)
    except errors.XenError as exc:
        return _fail(ret, str(exc))
    ret["comment"] = f"{name} was {how}{kept}"
    return ret


def cloned(
    name,
    source,
    disks=None,
    memory=None,
    vcpus=None,
    bridge=None,
    crash_consistent=False,
    start=False,
    force=False,
    pillar_path=None,
):
    """Guest ``name`` is a clone of ``source`` (``virt-clone -o vm03 -n newvm03``), made when missing: new
    UUID, new MACs with the source's vendor prefix, copies of its writable disks (``disks`` maps targets to
    paths; default next to the source). The source must be shut off or paused unless ``crash_consistent:
    true``; ``start: true`` starts a new clone. An existing ``name`` is never cloned again: if it does not
    look like a clone of ``source`` (origin record, UUID, MACs) the state fails changing nothing; else
    differing ``memory``, ``vcpus`` and ``bridge`` are changed in its definition. Its disks are never
    touched. Problems and errors are named by ``pillar_path``, the entry's key path (``xen:clones:NAME``).

    CLI Example: ``salt '*' state.single xen_guest.cloned newvm03 source=vm03 memory=1024``
    """
    ret = _ret(name)
    given = {"disks": disks, "memory": memory, "vcpus": vcpus, "bridge": bridge, "force": force, "start": start}
    path = pillar_path or f"xen:clones:{name}"
    values, problems = clone_entry.settings(name, source, dict(given, crash_consistent=crash_consistent), path)
    if problems:
        return _fail(ret, "Nothing was changed:\n" + "\n".join(problems))
    named = f"{path}: "
    settings = {key: values[key] for key in ("memory", "vcpus", "bridge")}
    try:
        conn = saltglue.conn_from(__salt__)
        found = guest_clone.compare(conn, source, name, disks=values["disks"], **settings)
    except errors.XenError as exc:
        return _fail(ret, f"{named}{exc}")
    if found is not None:
        return _cloned_existing(ret, conn, found, settings, named)
    params = dict(settings, disks=values["disks"], crash_consistent=values["crash_consistent"], force=values["force"])
    try:
        step = guest_clone.plan(conn, source, name, **params)
    except errors.XenError as exc:
        return _fail(ret, f"{named}{exc}")
    ret["changes"] = guest_clone.state_changes(guest_clone.summary(step), started=values["start"])
    if __opts__["test"]:
        return dict(ret, result=None, comment=f"{name} would be cloned from {source}{guest_clone.leftovers_note(step)}")
    try:
        done = __salt__["xen_guest.clone"](source, name, start=values["start"], **params)
    except CommandExecutionError as exc:
        return _fail(dict(ret, changes={}), f"{named}{exc}; nothing of {name} was left behind")
    ret["changes"] = guest_clone.state_changes(done, started=bool(done.get("started")))
    copied = ", ".join(f"{t} by {how}" for t, how in done.get("copied", {}).items())
    ret["comment"] = f"{name} was cloned from {source}" + (f" ({copied})" if copied else "")
    ret["comment"] += guest_clone.leftovers_note(done)
    return ret


def _cloned_existing(ret, conn, found, settings, named):
    """``cloned`` for a guest that exists: check it is a clone of the source, converge its settings."""
    name, source, changes = found["name"], found["source"], found["changes"]
    notes = list(found["notes"])
    if found["problems"]:
        differing = ", ".join(f"{key} is {c['old']} (asked: {c['new']})" for key, c in changes.items())
        also = f" (also differing: {differing})" if differing else ""
        return _fail(ret, named + "; ".join(found["problems"]) + f". {name} was left as it is{also}")
    tail = ("; " + "; ".join(notes)) if notes else ""
    if not changes:
        ret["comment"] = f"{name} is already as wanted (a clone of {source})" + tail
        return ret
    keys = ", ".join(changes)
    later = "; the running guest sees it at its next start" if found["active"] else ""
    updated = f"updated: {keys}{later}{tail}"
    if __opts__["test"]:
        return dict(ret, result=None, changes=changes, comment=f"{name} (a clone of {source}) would be {updated}")
    try:
        ret["changes"] = guest_clone.converge(conn, found, **settings)
    except errors.XenError as exc:
        return _fail(ret, f"{named}{exc}; {name} was left as it was")
    ret["comment"] = f"{name} (a clone of {source}) was {updated}"
    return ret


def mod_watch(name, sfun=None, timeout=120, force=False, pillar_path="xen:guests", **kwargs):
    """Called by Salt for ``watch:`` when a watched state changed and ``xen_guest.running``
    had nothing to do: a running guest is restarted (graceful shutdown within ``timeout``,
    or destroyed with ``force: True``, then started), a guest that is not running is
    started. Other ``xen_guest`` states do nothing on a watch.

    CLI Example: ``salt '*' state.apply xen.guests`` (a ``xen_guest.running`` with ``watch:``)
    """
    ret = _ret(name)
    if sfun != "running":
        ret["comment"] = f"xen_guest.{sfun} does nothing on a watch"
        return ret
    opts, problems = guest_spec.options(name, {"timeout": timeout, "force": force}, pillar_path)
    if problems:
        return _fail(ret, "Nothing was changed:\n" + "\n".join(problems))
    timeout, force = opts["timeout"], opts["force"]
    try:
        conn = saltglue.conn_from(__salt__)
        current = guest_apply.read(conn, name, host=_host(conn))
    except errors.XenError as exc:
        return _fail(ret, str(exc))
    if current is None:
        return _fail(ret, f"{name} is not defined: there is nothing to restart")
    changes, how = guest_apply.watch_change(current, force=force)
    did = f"{how} and started again" if how != "started" else f"started (it was {current.state})"
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"{name} would be {did}: a watched state changed")
        return ret
    _cache().forget(name)
    try:
        guest_apply.watch_restart(current, how, timeout=float(timeout))
    except errors.XenError as exc:
        return _fail(ret, f"{name}: {exc}")
    ret.update(changes=changes, comment=f"{name} was {did}: a watched state changed")
    return ret
