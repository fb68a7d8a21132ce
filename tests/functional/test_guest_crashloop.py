"""xen_guest.restart_crashed on libvirt's test driver: a crash loop is left down with an event.

The minion's event bus runs only in a real minion (tests/integration/test_reactor.py sends
through it); here ``event.send`` is the one part stood in for, to see what would be sent.
"""

import inspect
import os

import pytest
from salt.exceptions import CommandExecutionError

from saltext_xen.events import crashloop


def _loaded(modules):
    """The loaded xen_guest module's namespace (read from a function: a loader may drop it from sys.modules)."""
    return inspect.unwrap(modules.xen_guest.start.func).__globals__


class _SaltWithEvents:
    """The loader's ``__salt__`` as the function sees it, but ``event.send`` recorded."""

    def __init__(self, real, events):
        self.real, self.events = real, events

    def __getitem__(self, key):
        if key == "event.send":
            return lambda tag, data=None, **_kw: self.events.append((tag, data)) or True
        return self.real.value()[key]


@pytest.fixture
def sent(modules, monkeypatch):
    events = []
    loaded = _loaded(modules)
    monkeypatch.setitem(loaded, "__salt__", _SaltWithEvents(loaded["__salt__"], events))
    return events


@pytest.fixture(autouse=True)
def fresh_history(minion_opts):
    """Each test starts without restart counts (the history lives in the minion's cachedir)."""
    path = os.path.join(minion_opts["cachedir"], crashloop.HISTORY_FILE)
    if os.path.exists(path):
        os.unlink(path)
    yield path
    if os.path.exists(path):
        os.unlink(path)


@pytest.fixture
def limit(modules, monkeypatch):
    def set_limit(value):
        monkeypatch.setitem(_loaded(modules), "__pillar__", {"xen": {"reactor": {"crashloop": value}}})

    return set_limit


def _crash(modules, tmp_path, n):
    modules.xen_guest.dump_core("vm02", str(tmp_path / f"core{n}"), crash=True)


def test_three_restarts_then_the_guest_is_left_down_with_an_event(modules, sent, tmp_path, fresh_history):
    for n in range(3):
        _crash(modules, tmp_path, n)
        done = modules.xen_guest.restart_crashed("vm02")
        assert done["started"] is True and done["restarts"] == n + 1, done
        assert modules.xen_guest.states()["vm02"]["state"] == "running"
    _crash(modules, tmp_path, 3)
    refused = modules.xen_guest.restart_crashed("vm02")
    assert refused["started"] is False
    assert "vm02 crashed again after 3 restarts within 10 minutes" in refused["reason"]
    assert modules.xen_guest.states()["vm02"]["state"] != "running"
    assert sent == [("xen/guest/vm02/crashloop", refused)]
    assert os.stat(fresh_history).st_mode & 0o777 == 0o600

    # a person starts it: the count starts again
    modules.xen_guest.start("vm02")
    _crash(modules, tmp_path, 4)
    assert modules.xen_guest.restart_crashed("vm02")["started"] is True
    assert len(sent) == 1


def test_the_limit_comes_from_pillar(modules, sent, tmp_path, limit):
    limit({"restarts": 1})
    _crash(modules, tmp_path, 0)
    assert modules.xen_guest.restart_crashed("vm02")["started"] is True
    _crash(modules, tmp_path, 1)
    assert modules.xen_guest.restart_crashed("vm02")["started"] is False
    assert [tag for tag, _data in sent] == ["xen/guest/vm02/crashloop"]


def test_a_wrong_limit_is_named_and_nothing_is_started(modules, sent, tmp_path, limit):
    limit({"restarts": "many"})
    _crash(modules, tmp_path, 0)
    with pytest.raises(CommandExecutionError, match="xen:reactor:crashloop:restarts: expected a whole number"):
        modules.xen_guest.restart_crashed("vm02")
    assert modules.xen_guest.states()["vm02"]["state"] != "running"
    assert sent == []
