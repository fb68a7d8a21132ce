"""Guest state changes as they happen, from libvirt's lifecycle events: the engine's core.

The beacon reads every guest's state once per interval; here libvirt says the
moment a guest starts, stops, crashes, pauses, is defined or undefined. The
events sent are the beacon's (:func:`saltext_xen.events.guest_events.events`):
tag ``xen/guest/NAME/STATE``, data ``name``, ``old``, ``new``, ``autostart``,
``restart``.

libvirt's default event loop runs in a daemon thread. Its lifecycle callback
only notes which guest changed; :meth:`Listener.run` (the engine's thread) reads
that guest's state, compares it with the state it last saw and fires one event
per real change, so no libvirt call is made inside libvirt's callback and a
burst of events for one guest gives one event per change. When the connection
drops (libvirtd restarted), it is opened again after a pause that grows up to
``retry_max`` seconds, and every guest's state read then is compared with the
last ones seen: what changed while libvirtd was away is still reported.
"""

import contextlib
import logging
import queue
import threading
import time

try:
    import libvirt
except ImportError:  # pragma: no cover - the Salt layer's __virtual__ reports it
    libvirt = None

from saltext_xen.core import connection
from saltext_xen.core.errors import XenError
from saltext_xen.events import guest_events
from saltext_xen.guests import lifecycle

log = logging.getLogger(__name__)

_loop_lock = threading.Lock()
_loop_thread = None
# What the callback puts on the queue when the connection closed, instead of a guest name.
_CLOSED = object()


def start_event_loop():
    """libvirt's default event loop in a daemon thread, once per process.

    It must run before the connection whose events are wanted is opened.
    """
    global _loop_thread  # noqa: PLW0603 (one event loop per process, as libvirt requires)
    with _loop_lock:
        if _loop_thread is None:
            libvirt.virEventRegisterDefaultImpl()
            _loop_thread = threading.Thread(target=_run_loop, name="libvirt-events", daemon=True)
            _loop_thread.start()


def _run_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def read_one(conn, name):
    """``(state word, domain)`` of one guest; ``("absent", None)`` when libvirt no longer knows it."""
    try:
        dom = conn.lookupByName(name)
        state, reason = dom.state()[:2]
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return guest_events.ABSENT, None
        raise
    return lifecycle.word_of(state, reason), dom


class Listener:
    """Turn libvirt's lifecycle events on ``uri`` into guest events handed to ``fire(tag, data)``.

    restart
        guest names to mark ``restart`` after a crash even without autostart
    states, guests
        report only these new states / these guests (None: all)
    emit_at_start
        report every guest's state when the listener starts
    """

    def __init__(self, uri, fire, restart=(), states=None, guests=None, emit_at_start=False, retry_max=30.0):
        self.uri = uri
        self.fire = fire
        self.restart = restart
        self.states = states
        self.guests = guests
        self.emit_at_start = emit_at_start
        self.retry_max = retry_max
        self.seen = None
        self._queue = queue.Queue()
        self._conn = None
        self._callback_id = None

    def _on_lifecycle(self, _conn, dom, _event, _detail, _opaque):
        self._queue.put(dom.name())

    def _on_close(self, _conn, _reason, _opaque):
        self._queue.put(_CLOSED)

    def connect(self):
        """Open the connection, register for lifecycle events and read every guest's state.

        Returns the changes since the states last seen (none on the first
        connect, unless ``emit_at_start``).
        """
        start_event_loop()
        # a connection opened before the event loop ran (or one that dropped) delivers no events
        connection.forget(self.uri)
        conn = connection.connect(self.uri)
        self._callback_id = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
        )
        try:
            conn.registerCloseCallback(self._on_close, None)
        except libvirt.libvirtError:
            log.debug("xen_guest_events: %s has no close callback; its liveness is checked instead", self.uri)
        self._conn = conn
        states, _doms = guest_events.read_states(conn)
        if self.seen is None:
            changes = guest_events.first_pass(states) if self.emit_at_start else []
        else:
            changes = guest_events.diff(self.seen, states)
        self.seen = states
        return changes

    def disconnect(self):
        """Stop listening on the current connection (it stays open for others in this process)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(libvirt.libvirtError):
            if self._callback_id is not None:
                conn.domainEventDeregisterAny(self._callback_id)
            conn.unregisterCloseCallback()
        self._callback_id = None

    def changes_for(self, names):
        """``[(name, old, new)]`` for the guests named, read now."""
        changes = []
        for name in sorted(names):
            word, _dom = read_one(self._conn, name)
            old = self.seen.get(name, guest_events.ABSENT)
            if word == guest_events.ABSENT:
                self.seen.pop(name, None)
            else:
                self.seen[name] = word
            if word != old:
                changes.append((name, old, word))
        return changes

    def send(self, changes):
        """Fire one event per change that passes the ``states``/``guests`` filters."""
        conn = self._conn

        def autostart_of(name):
            try:
                return bool(conn.lookupByName(name).autostart())
            except libvirt.libvirtError:
                return False

        found = guest_events.events(changes, autostart_of=autostart_of, restart=self.restart)
        for event in guest_events.wanted(found, states=self.states, names=self.guests):
            data = {key: value for key, value in event.items() if key != "tag"}
            self.fire(event["tag"], data)

    def _alive(self):
        try:
            return self._conn is not None and self._conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def run(self, stop=None, tick=1.0):
        """Listen until ``stop`` (a threading.Event) is set; forever without one."""
        pause = 1.0
        while stop is None or not stop.is_set():
            if not self._alive():
                self.disconnect()
                try:
                    changes = self.connect()
                except (XenError, libvirt.libvirtError) as exc:
                    log.warning("xen_guest_events: cannot listen on %s, again in %.0f s: %s", self.uri, pause, exc)
                    (stop or threading.Event()).wait(pause)
                    pause = min(pause * 2, self.retry_max)
                    continue
                pause = 1.0
                self.send(changes)
            names = self._drain(tick)
            if _CLOSED in names:
                self.disconnect()
                continue
            if names:
                try:
                    self.send(self.changes_for(names))
                except libvirt.libvirtError as exc:
                    log.warning("xen_guest_events: lost %s while reading guests: %s", self.uri, exc)
                    self.disconnect()
        self.disconnect()

    def _drain(self, tick):
        """Guest names (and close marks) queued within ``tick`` seconds, gathered into one set."""
        names = set()
        deadline = time.monotonic() + tick
        with contextlib.suppress(queue.Empty):
            names.add(self._queue.get(timeout=tick))
            while True:
                names.add(self._queue.get(timeout=max(0.0, min(0.05, deadline - time.monotonic()))))
        return names
