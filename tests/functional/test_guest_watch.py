"""``watch:`` on xen_guest.running, as Salt users expect: a watched change restarts the guest.

A real file (``file.managed``) is the watched state; the guest runs on libvirt's
test driver, where a restart shows as a new domain id.
"""

from saltext_xen.core import connection
from tests.functional.disk_helpers import define_guest


def _high(path, contents, **running):
    args = [{key: value} for key, value in running.items()]
    return {
        "vm05-config": {
            "__sls__": "watch",
            "__env__": "base",
            "file": [{"name": str(path)}, {"contents": contents}, "managed"],
        },
        "vm05": {
            "__sls__": "watch",
            "__env__": "base",
            "xen_guest": ["running", {"watch": [{"file": "vm05-config"}]}, *args],
        },
    }


def _apply(modules, path, contents, test=False, **running):
    ret = modules.state.high(_high(path, contents, **running), test=test)
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def _dom(test_uri):
    return connection.connect(test_uri).lookupByName("vm05")


def test_watched_change_restarts_the_running_guest_and_no_change_does_not(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    config = tmp_path / "vm05.conf"
    first = _apply(modules, config, "one", timeout=30)
    assert first["vm05-config"]["changes"], first
    assert first["vm05"]["result"] is True, first["vm05"]
    assert first["vm05"]["changes"] == {"state": {"old": "running", "new": "restarted"}}
    assert "shut down and started again" in first["vm05"]["comment"]
    restarted_id = _dom(test_uri).ID()
    assert _dom(test_uri).isActive()

    again = _apply(modules, config, "one", timeout=30)
    assert again["vm05-config"]["changes"] == {}
    assert again["vm05"]["result"] is True and again["vm05"]["changes"] == {}, again["vm05"]
    assert _dom(test_uri).ID() == restarted_id  # nothing watched changed: not restarted


def test_test_mode_predicts_the_restart_and_changes_nothing(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    config = tmp_path / "vm05.conf"
    config.write_text("one")
    before = _dom(test_uri).ID()
    predicted = _apply(modules, config, "two", test=True)
    assert predicted["vm05"]["result"] is None, predicted["vm05"]
    assert predicted["vm05"]["changes"] == {"state": {"old": "running", "new": "restarted"}}
    assert "would be shut down and started again" in predicted["vm05"]["comment"]
    assert config.read_text() == "one" and _dom(test_uri).ID() == before

    real = _apply(modules, config, "two")
    assert real["vm05"]["result"] is True and real["vm05"]["changes"] == predicted["vm05"]["changes"]
    assert _dom(test_uri).ID() != before and _dom(test_uri).isActive()


def test_force_destroys_instead_of_shutting_down(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    before = _dom(test_uri).ID()
    ret = _apply(modules, tmp_path / "vm05.conf", "one", force=True)
    assert ret["vm05"]["result"] is True, ret["vm05"]
    assert ret["vm05"]["changes"] == {"state": {"old": "running", "new": "restarted"}}
    assert "destroyed and started again" in ret["vm05"]["comment"]
    assert "shut down" not in ret["vm05"]["comment"]
    assert _dom(test_uri).ID() != before and _dom(test_uri).isActive()


def test_a_shut_off_guest_is_started_once_not_restarted(modules, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    ret = _apply(modules, tmp_path / "vm05.conf", "one")
    # xen_guest.running starts it itself; Salt calls mod_watch only when the state changed nothing
    assert ret["vm05"]["result"] is True and ret["vm05"]["changes"] == {"state": {"old": "shutoff", "new": "running"}}
    assert _dom(test_uri).isActive()


def test_mod_watch_starts_a_guest_that_is_not_running(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05")
    predicted = dict(states.xen_guest.mod_watch("vm05", sfun="running", test=True).full_return)
    assert predicted["result"] is None
    assert predicted["changes"] == {"state": {"old": "shutoff", "new": "running"}}
    assert not _dom(test_uri).isActive()
    ret = dict(states.xen_guest.mod_watch("vm05", sfun="running").full_return)
    assert ret["result"] is True and ret["changes"] == predicted["changes"], ret
    assert "started (it was shutoff)" in ret["comment"]
    assert _dom(test_uri).isActive()


def test_other_guest_states_do_nothing_on_a_watch(states, test_uri, tmp_path):
    define_guest(test_uri, tmp_path, name="vm05", running=True)
    before = _dom(test_uri).ID()
    ret = dict(states.xen_guest.mod_watch("vm05", sfun="defined").full_return)
    assert ret["result"] is True and ret["changes"] == {}
    assert _dom(test_uri).ID() == before
