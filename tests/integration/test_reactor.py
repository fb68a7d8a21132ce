"""Guest events end to end: beacon on the host, reactor on the master, the guest started again.

The session master in conftest.py has no ``reactor:`` setting, so this module
runs a master of its own with the two reactor SLS files of the formula, and one
minion with the ``xen_guest_events`` beacon (1 s interval) on libvirt's test
driver. Its modules reach it by ``saltutil.sync_all``, as with the sync route.

A crash is real as far as libvirt goes: ``xen_guest.dump_core crash=True``
(``xm dump-core --crash``) leaves the guest shut off with reason "crashed",
what libxl shows after a crash with ``on_crash=destroy``. The beacon reads that
state itself; no event is faked. Only the minion-start event for the autostart
reactor is sent by hand (``event.fire_master``), because restarting the minion
would also reset the test driver's host to its seed. The crash-loop limit is
pillar ``xen:reactor:crashloop`` (2 restarts within 10 minutes here).
"""

import copy
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, TEST_URI
from tests.integration.conftest import MINION_DEFAULTS

PILLAR_TOP = "base:\n  '*':\n    - reactor_test\n"
PILLAR = "xen:\n  reactor:\n    restart:\n      - vm03\n    crashloop:\n      restarts: 2\n      minutes: 10\n"


@pytest.fixture(scope="module")
def reactor_master(salt_factories, tmp_path_factory, extension_root):
    pillar_dir = tmp_path_factory.mktemp("reactor-pillar")
    (pillar_dir / "top.sls").write_text(PILLAR_TOP)
    (pillar_dir / "reactor_test.sls").write_text(PILLAR)
    master = salt_factories.salt_master_daemon(
        "xen-reactor-master",
        defaults={
            "file_roots": {"base": [str(extension_root), str(ROOT / "salt")]},
            "pillar_roots": {"base": [str(pillar_dir)]},
            "reactor": [
                {"salt/beacon/*/xen_guest_events/xen/guest/*/crashed": ["salt://xen/reactor/restart_crashed.sls"]},
                {"xen/guest/*/crashed": ["salt://xen/reactor/restart_crashed.sls"]},
                {"salt/minion/*/start": ["salt://xen/reactor/autostart.sls"]},
            ],
        },
    )
    with master.started():
        yield master


@pytest.fixture(scope="module")
def reactor_cli(reactor_master):
    return reactor_master.salt_cli(timeout=300)


@pytest.fixture(scope="module")
def xen_host(reactor_master, reactor_cli, event_listener):
    defaults = copy.deepcopy(MINION_DEFAULTS)
    defaults["xen"] = {"libvirt": {"uri": TEST_URI}}
    # Beacon intervals count minion loops of loop_interval seconds (salt-factories makes it 0.05).
    defaults["loop_interval"] = 1
    # emit_at_start: the first pass sends every guest's state, which tells the test the baseline is taken.
    defaults["beacons"] = {"xen_guest_events": [{"interval": 1}, {"emit_at_start": True}]}
    minion = reactor_master.salt_minion_daemon("xen-reactor-host", defaults=defaults)
    with minion.started():
        since = time.time()
        ret = reactor_cli.run("saltutil.sync_all", minion_tgt=minion.id)
        assert ret.returncode == 0, ret
        assert "beacons.xen_guest_events" in ret.data["beacons"]
        _wait(event_listener, reactor_master, minion, "vm02", "running", since)
        yield minion


def _run(cli, host, *args):
    ret = cli.run(*args, minion_tgt=host.id)
    assert ret.returncode == 0, ret
    return ret.data


def _wait(event_listener, master, host, guest, state, since, timeout=60):
    """The beacon's event for ``guest`` reaching ``state`` after ``since``."""
    tag = f"salt/beacon/{host.id}/xen_guest_events/xen/guest/{guest}/{state}"
    found = event_listener.wait_for_events([(master.id, tag)], timeout=timeout, after_time=since)
    assert found.found_all_events, f"no {tag} event within {timeout} s"
    return next(iter(found.matches)).data


def test_crashed_autostart_guest_is_started_again(reactor_master, reactor_cli, xen_host, event_listener, tmp_path):
    _run(reactor_cli, xen_host, "xen_guest.autostart", "vm02")
    since = time.time()
    crashed = _run(reactor_cli, xen_host, "xen_guest.dump_core", "vm02", str(tmp_path / "vm02.core"), "crash=True")
    assert crashed["vm02"]["new"] == "crashed"

    event = _wait(event_listener, reactor_master, xen_host, "vm02", "crashed", since)
    assert (event["old"], event["new"], event["autostart"], event["restart"]) == ("running", "crashed", True, True)
    _wait(event_listener, reactor_master, xen_host, "vm02", "running", since)
    assert _run(reactor_cli, xen_host, "xen_guest.states")["vm02"] == {"state": "running", "autostart": True}


def test_only_guests_marked_or_listed_in_pillar_are_restarted(
    reactor_master, reactor_cli, xen_host, event_listener, tmp_path
):
    """vm02 (autostart mark removed) stays down; vm03, listed in xen:reactor:restart, comes back."""
    _run(reactor_cli, xen_host, "xen_guest.autostart", "vm02", "enable=False")
    _run(reactor_cli, xen_host, "xen_guest.start", "vm03")
    since = time.time()
    _run(reactor_cli, xen_host, "xen_guest.dump_core", "vm02", str(tmp_path / "vm02.core"), "crash=True")
    event = _wait(event_listener, reactor_master, xen_host, "vm02", "crashed", since)
    assert (event["autostart"], event["restart"]) == (False, False)

    # vm03 crashes after vm02: once the reactor has brought vm03 back, it has also passed over vm02
    _run(reactor_cli, xen_host, "xen_guest.dump_core", "vm03", str(tmp_path / "vm03.core"), "crash=True")
    event = _wait(event_listener, reactor_master, xen_host, "vm03", "crashed", since)
    assert (event["autostart"], event["restart"]) == (False, True)
    _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)

    time.sleep(3)
    states = _run(reactor_cli, xen_host, "xen_guest.states")
    assert states["vm02"]["state"] == "crashed", "a crashed guest nobody asked to restart stays down"
    assert states["vm03"]["state"] == "running"


def test_minion_start_brings_autostart_guests_up(reactor_master, reactor_cli, xen_host, event_listener):
    """What xendomains did at boot, on the minion-start event (sent as the minion sends it)."""
    _run(reactor_cli, xen_host, "xen_guest.autostart", "vm03")
    _run(reactor_cli, xen_host, "xen_guest.destroy", "vm03")
    since = time.time()
    _wait(event_listener, reactor_master, xen_host, "vm03", "shutoff", since)

    cli = xen_host.salt_call_cli(timeout=60)
    ret = cli.run("event.fire_master", "{}", f"salt/minion/{xen_host.id}/start")
    assert ret.returncode == 0, ret
    _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)
    assert _run(reactor_cli, xen_host, "xen_guest.states")["vm03"] == {"state": "running", "autostart": True}


def test_a_guest_in_a_crash_loop_is_left_down_with_an_event(
    reactor_master, reactor_cli, xen_host, event_listener, tmp_path
):
    """xen:reactor:crashloop {restarts: 2}: two crashes bring vm03 back, the third leaves it down
    and the master gets xen/guest/vm03/crashloop; a start by hand clears the count."""
    # each step waits for the beacon to see it: two changes within one pass would look like none
    if _run(reactor_cli, xen_host, "xen_guest.states")["vm03"]["state"] == "running":
        since = time.time()
        _run(reactor_cli, xen_host, "xen_guest.destroy", "vm03")
        _wait(event_listener, reactor_master, xen_host, "vm03", "shutoff", since)
    since = time.time()
    _run(reactor_cli, xen_host, "xen_guest.start", "vm03")  # a person started it: earlier restarts forgotten
    _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)
    for crash in range(3):
        since = time.time()
        _run(reactor_cli, xen_host, "xen_guest.dump_core", "vm03", str(tmp_path / f"vm03-{crash}.core"), "crash=True")
        _wait(event_listener, reactor_master, xen_host, "vm03", "crashed", since)
        if crash < 2:
            _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)
    tag = "xen/guest/vm03/crashloop"
    found = event_listener.wait_for_events([(reactor_master.id, tag)], timeout=60, after_time=since)
    assert found.found_all_events, f"no {tag} event on the master"
    time.sleep(3)
    assert _run(reactor_cli, xen_host, "xen_guest.states")["vm03"]["state"] == "crashed", "left down past the limit"

    since = time.time()
    _run(reactor_cli, xen_host, "xen_guest.start", "vm03")
    _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)  # the beacon saw it up
    since = time.time()
    _run(reactor_cli, xen_host, "xen_guest.dump_core", "vm03", str(tmp_path / "vm03-again.core"), "crash=True")
    _wait(event_listener, reactor_master, xen_host, "vm03", "crashed", since)
    _wait(event_listener, reactor_master, xen_host, "vm03", "running", since)  # counted afresh after the hand start


def test_runner_shows_which_host_runs_which_guest(reactor_master, xen_host):
    run = reactor_master.salt_run_cli(timeout=120)
    synced = run.run("saltutil.sync_runners")
    assert synced.returncode == 0, synced
    fleet = run.run("xen.guests")
    assert fleet.returncode == 0, fleet
    assert set(fleet.data) == {xen_host.id}
    assert set(fleet.data[xen_host.id]) == {"vm02", "vm03"}
    assert fleet.data[xen_host.id]["vm03"]["state"] == "running"

    found = run.run("xen.find", "vm03")
    assert found.data == {xen_host.id: fleet.data[xen_host.id]["vm03"]}
    assert run.run("xen.find", "vm9").data == {}


def test_pip_install_carries_the_beacon_and_the_runner(wheel_dir):
    package = wheel_dir / "saltext_xen"
    assert (package / "beacons" / "xen_guest_events.py").is_file()
    assert (package / "runners" / "xen.py").is_file()
    # and the salt.loader entry point hands them to Salt
    code = (
        "from saltext_xen import loader; d = loader.loader_dirs(); print(sorted(d), d['beacons'][0], d['runners'][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(wheel_dir)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[-2:] == [str(package / "beacons"), str(package / "runners")], out
