"""
Report Xen guest state changes as events, instead of watching ``xm list``.

Each interval the beacon reads every guest's state in one pass (one libvirt
list call and one state call per guest), compares it with the previous pass and
sends one event per change. The event tag ends in ``xen/guest/NAME/STATE``:

.. code-block:: text

    salt/beacon/<minion id>/xen_guest_events/xen/guest/vm02/crashed

with data ``{"name": "vm02", "old": "running", "new": "crashed",
"autostart": true, "restart": true}``. ``restart`` is true when the guest is
marked autostart or listed in pillar ``xen:reactor:restart``: what
``salt://xen/reactor/restart_crashed.sls`` acts on. A guest shut off by a crash
(libxl's usual ``on_crash=destroy``) is reported as ``crashed``; a guest
defined or undefined between two passes changes from or to ``absent``.

The first pass is the baseline and sends nothing, unless ``emit_at_start``.

Configuration (minion config or pillar):

.. code-block:: yaml

    beacons:
      xen_guest_events:
        - interval: 10
        - states: [crashed, shutoff, running]   # optional: only these new states
        - guests: [vm02, vm03]                   # optional: only these guests
        - emit_at_start: false                   # optional
"""

import importlib
import logging
import os
import sys


def _import_library():
    """Make the saltext_xen library importable for this beacon.

    Salt's execution-module loader puts the synced ``_utils`` directory on
    sys.path while it loads; ``salt.loader.beacons()`` does not. A beacon synced
    from the master (``extmods/beacons``) or loaded from a checkout
    (``_beacons``) has the library in the sibling ``utils``/``_utils``
    directory; a pip install has it on sys.path already.
    """
    try:
        importlib.import_module("saltext_xen")
        return
    except ImportError:
        pass
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for sub in ("utils", "_utils"):
        path = os.path.join(base, sub)
        if os.path.isfile(os.path.join(path, "saltext_xen", "__init__.py")):
            sys.path.insert(0, path)
            try:
                importlib.import_module("saltext_xen")
            finally:
                sys.path.remove(path)
            return


_import_library()
try:
    from saltext_xen import saltglue
    from saltext_xen.core import connection, errors
    from saltext_xen.events import guest_events
except ImportError:  # pragma: no cover - __virtual__ says what to do
    connection = None

log = logging.getLogger(__name__)

__virtualname__ = "xen_guest_events"
_SNAPSHOT = "xen_guest_events.snapshot"


def __virtual__():
    if connection is None:
        return False, "xen_guest_events: the saltext_xen library is missing; run saltutil.sync_all (or pip install)"
    if not connection.available():
        return False, f"xen_guest_events: {connection.MISSING_REASON}"
    return __virtualname__


def validate(config):
    """
    Check the beacon configuration: a list of options, every problem named.
    """
    problems = guest_events.validate_config(config)
    if problems:
        return False, "xen_guest_events: " + "; ".join(problems)
    return True, "Valid beacon configuration"


def beacon(config):
    """
    Send an event for every guest whose state changed since the last pass.

    The minion runs the beacon itself; to watch its events on the master:

    CLI Example:

    .. code-block:: bash

        salt-run state.event 'salt/beacon/*/xen_guest_events/*' pretty=True
    """
    options = guest_events.merged_config(config)
    try:
        conn = saltglue.conn_from(__salt__)
        states, doms = guest_events.read_states(conn)
    except errors.XenError as exc:
        log.warning("xen_guest_events: cannot read the guests' states, trying again next pass: %s", exc)
        return []

    previous = __context__.get(_SNAPSHOT)
    __context__[_SNAPSHOT] = states
    if previous is None and options.get("emit_at_start"):
        changes = guest_events.first_pass(states)
    else:
        changes = guest_events.diff(previous, states)
    if not changes:
        return []

    restart = __salt__["config.get"]("xen:reactor:restart", []) or []
    found = guest_events.events(changes, autostart_of=guest_events.autostart_reader(doms), restart=restart)
    return guest_events.wanted(found, states=options.get("states"), names=options.get("guests"))
