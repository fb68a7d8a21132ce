"""On real Xen 4.17: the xen grain, the engine's events the moment a guest starts and crashes, and the
crash reactor's action (``xen_guest.restart_crashed``) starting the guest again."""

import threading
import time

from labhelpers import URI, figure, pv_xml, remove_guest, wait_console, wait_for, xl

from saltext_xen.events import listener

NAME = "labev1"


def test_xen_grain_sees_a_dom0_running_xen_417(caller):
    grain = caller.cmd("grains.get", "xen")
    assert grain["hypervisor"] == "xen" and grain["dom0"] is True, grain
    assert grain["version"].startswith("4.17"), grain
    assert "pv" in grain["capabilities"], grain
    assert grain["toolstack"] == "xl", grain
    assert grain["reboot_required"] is False, grain["reboot_reason"]


def test_engine_reports_a_start_and_a_crash_as_they_happen_and_the_restart_follows(conn, caller):
    remove_guest(conn, NAME)
    # sysrq_always_enabled lets `xl sysrq NAME c` crash the guest's kernel
    conn.defineXML(pv_xml(NAME).replace("quiet</cmdline>", "quiet sysrq_always_enabled</cmdline>"))
    fired = []
    stop = threading.Event()
    listening = listener.Listener(URI, fire=lambda tag, data: fired.append((time.monotonic(), tag, data)))
    thread = threading.Thread(target=listening.run, kwargs={"stop": stop, "tick": 0.2}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: listening.seen is not None, timeout=60, what="the listener to connect")
        conn.lookupByName(NAME).create()
        wait_for(lambda: any(tag == f"xen/guest/{NAME}/running" for _t, tag, _d in fired), what="the running event")
        wait_console(NAME)
        crashed_at = time.monotonic()
        xl("sysrq", NAME, "c")
        wait_for(
            lambda: any(tag == f"xen/guest/{NAME}/crashed" for _t, tag, _d in fired), timeout=120, what="the crash"
        )
        # what the reactor runs on the host for this event (the master's dispatch is not in this figure)
        restarted = caller.cmd("xen_guest.restart_crashed", NAME)
        running_at = time.monotonic()
        assert restarted["started"] is True, restarted
        wait_console(NAME, count=2)
    finally:
        stop.set()
        thread.join(timeout=30)
        remove_guest(conn, NAME)
    (when, _tag, data), *_ = [event for event in fired if event[1] == f"xen/guest/{NAME}/crashed"]
    assert data == {"name": NAME, "old": "running", "new": "crashed", "autostart": False, "restart": False}
    figure(f"engine: {when - crashed_at:.2f} s from `xl sysrq {NAME} c` to the crashed event (beacon: its interval)")
    figure(f"restart: {running_at - when:.2f} s from the crashed event to {NAME} running (xen_guest.restart_crashed)")
