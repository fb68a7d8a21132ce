"""
Report Xen guest state changes the moment they happen, from libvirt's lifecycle events.

The engine sends the same events as the ``xen_guest_events`` beacon, without
its polling interval: tag ``xen/guest/NAME/STATE`` (sent to the master with
``event.send``, which adds the minion's ``id``), data ``{"name", "old", "new",
"autostart", "restart"}``. ``restart`` is true when the guest is marked
autostart or listed in pillar ``xen:reactor:restart``. libvirt's event loop runs
in a thread of the engine; when libvirtd restarts, the engine connects again and
reports what changed meanwhile. Use the engine or the beacon on a host, not
both: each would report every change.

Configuration (minion config):

.. code-block:: yaml

    engines:
      - xen_guest_events:
          states: [crashed, shutoff, running]   # optional: only these new states
          guests: [vm02, vm03]                   # optional: only these guests
          emit_at_start: false                   # optional

Reactor (master config):

.. code-block:: yaml

    reactor:
      - 'xen/guest/*/crashed':
        - salt://xen/reactor/restart_crashed.sls
"""

import logging

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.events import guest_events, listener

log = logging.getLogger(__name__)

__virtualname__ = "xen_guest_events"


def __virtual__():
    if not connection.available():
        return False, f"xen_guest_events: {connection.MISSING_REASON}"
    return __virtualname__


def start(states=None, guests=None, emit_at_start=False):
    """
    Listen to libvirt's lifecycle events and send one Salt event per guest state change.

    Salt starts it from the minion's ``engines`` setting; it runs until the minion stops.

    CLI Example:

    .. code-block:: bash

        salt-run state.event 'xen/guest/*' pretty=True
    """
    config = [{"states": states}] if states is not None else []
    config += [{"guests": guests}] if guests is not None else []
    config += [{"emit_at_start": emit_at_start}]
    problems = guest_events.validate_config(config)
    if problems:
        log.error("xen_guest_events engine not started: %s", "; ".join(problems))
        return
    restart = __salt__["config.get"]("xen:reactor:restart", []) or []
    listener.Listener(
        saltglue.uri_from(__salt__),
        fire=__salt__["event.send"],
        restart=restart,
        states=states,
        guests=guests,
        emit_at_start=emit_at_start,
    ).run()
