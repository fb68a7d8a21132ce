"""The xen_guest_events engine: libvirt's lifecycle events on the test driver become the beacon's events."""

import threading
import time

import pytest
import salt.loader

from saltext_xen.core import connection
from saltext_xen.events import listener


class Listening:
    """A Listener on the test driver in a thread; ``events`` holds what it fired, as (tag, data)."""

    def __init__(self, uri, **options):
        self.events = []
        self.stop = threading.Event()
        self.listener = listener.Listener(uri, fire=lambda tag, data: self.events.append((tag, data)), **options)
        self.thread = threading.Thread(target=self.listener.run, kwargs={"stop": self.stop, "tick": 0.2})

    def __enter__(self):
        self.thread.start()
        self.wait_until(lambda: self.listener.seen is not None, "the listener never connected")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)

    def wait_until(self, check, message, seconds=10.0):
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, message
            time.sleep(0.05)

    def wait_for(self, count):
        self.wait_until(lambda: len(self.events) >= count, f"expected {count} events, got {self.events}")
        time.sleep(0.3)  # and nothing more
        return self.events


def test_start_stop_crash_arrive_as_the_beacons_events(test_uri, modules, tmp_path):
    with Listening(test_uri) as on:
        assert on.events == [], "connecting reports nothing (no emit_at_start)"
        modules.xen_guest.autostart("vm02")
        modules.xen_guest.dump_core("vm02", str(tmp_path / "vm02.core"), crash=True)
        modules.xen_guest.start("vm03")
        events = on.wait_for(2)
    assert events == [
        (
            "xen/guest/vm02/crashed",
            {"name": "vm02", "old": "running", "new": "crashed", "autostart": True, "restart": True},
        ),
        (
            "xen/guest/vm03/running",
            {"name": "vm03", "old": "shutoff", "new": "running", "autostart": False, "restart": False},
        ),
    ]


def test_define_and_undefine_are_from_and_to_absent(test_uri, modules):
    with Listening(test_uri, restart=["vm04"]) as on:
        modules.xen_guest.define("vm04", {"memory": 256, "bootloader": "pygrub"})
        on.wait_for(1)
        modules.xen_guest.destroy("vm02")
        connection.connect(test_uri).lookupByName("vm04").undefine()
        events = on.wait_for(3)
    assert [(tag, data["old"], data["new"], data["restart"]) for tag, data in events] == [
        ("xen/guest/vm04/shutoff", "absent", "shutoff", True),
        ("xen/guest/vm02/shutoff", "running", "shutoff", False),
        ("xen/guest/vm04/absent", "shutoff", "absent", True),
    ]


def test_filters_and_emit_at_start(test_uri, modules):
    with Listening(test_uri, states=["running"], guests=["vm02", "vm03"], emit_at_start=True) as on:
        modules.xen_guest.start("vm03")
        modules.xen_guest.pause("vm02")
        events = on.wait_for(2)
    assert [tag for tag, _data in events] == ["xen/guest/vm02/running", "xen/guest/vm03/running"], (
        "the first pass reports running vm02; vm03's start is reported; vm02's pause is filtered out"
    )


def test_a_lost_connection_is_opened_again_and_what_changed_meanwhile_is_reported(test_uri, modules):
    with Listening(test_uri) as on:
        modules.xen_guest.destroy("vm02")
        on.wait_for(1)
        # libvirtd gone: the connection closes under the listener. The test driver's
        # new connection starts from its seed again, where vm02 runs.
        connection.connect(test_uri).close()
        events = on.wait_for(2)
    assert [(tag, data["old"]) for tag, data in events] == [
        ("xen/guest/vm02/shutoff", "running"),
        ("xen/guest/vm02/running", "shutoff"),
    ]


def test_engine_loads_through_salt(loaders, modules):
    engines = salt.loader.engines(loaders.opts, loaders.modules, {}, loaders.utils)
    assert "xen_guest_events.start" in engines


@pytest.mark.parametrize("bad", [{"states": ["exploded"]}, {"guests": "vm02"}, {"emit_at_start": "yes"}])
def test_engine_refuses_a_wrong_config_and_says_why(loaders, modules, caplog, bad):
    engines = salt.loader.engines(loaders.opts, loaders.modules, {}, loaders.utils)
    engines["xen_guest_events.start"](**bad)  # returns at once instead of listening
    assert "xen_guest_events engine not started" in caplog.text
