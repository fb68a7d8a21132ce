"""The crash-loop limit: at most N restarts of a guest in M minutes, then it stays down."""

import json
import os
import pathlib

import pytest

from saltext_xen.core.validate import InvalidSpec
from saltext_xen.events import crashloop


def test_the_default_limit_is_three_restarts_in_ten_minutes():
    assert crashloop.settings(None) == {"restarts": 3, "minutes": 10}
    assert crashloop.settings({"restarts": 5}) == {"restarts": 5, "minutes": 10}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"restarts": 0}, "xen:reactor:crashloop:restarts: expected"),
        ({"minutes": "ten"}, "xen:reactor:crashloop:minutes: expected"),
        ({"restart": 3}, "xen:reactor:crashloop:restart: unknown key (did you mean restarts?"),
        ([3, 10], "xen:reactor:crashloop: expected"),
    ],
)
def test_a_wrong_limit_names_its_key(data, message):
    with pytest.raises(InvalidSpec) as err:
        crashloop.settings(data)
    assert message in str(err.value)


def test_the_fourth_crash_within_the_window_is_refused_and_old_restarts_drop_out():
    times = []
    for minute in (0, 1, 2):
        allowed, times = crashloop.decide(times, minute * 60, restarts=3, minutes=10)
        assert allowed
    allowed, kept = crashloop.decide(times, 3 * 60, restarts=3, minutes=10)
    assert not allowed and kept == [0, 60, 120]
    allowed, kept = crashloop.decide(times, 10 * 60 + 1, restarts=3, minutes=10)
    assert allowed and kept == [60, 120, 601], "the restart at minute 0 left the window"


def test_record_keeps_the_history_in_a_root_only_file_and_forget_clears_it(tmp_path):
    path = str(tmp_path / "cache" / crashloop.HISTORY_FILE)
    limit = {"restarts": 1, "minutes": 10}
    assert crashloop.record(path, "vm02", 100.0, limit) == (True, [100.0])
    assert crashloop.record(path, "vm02", 160.0, limit) == (False, [100.0])
    assert json.loads(pathlib.Path(path).read_text()) == {"vm02": [100.0]}
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert crashloop.forget(path, "vm02") is True
    assert crashloop.forget(path, "vm02") is False
    assert crashloop.record(path, "vm02", 170.0, limit) == (True, [170.0])


def test_an_unreadable_history_starts_again_instead_of_failing(tmp_path):
    path = tmp_path / crashloop.HISTORY_FILE
    path.write_text("{not json")
    assert crashloop.load(str(path)) == {}
    assert crashloop.record(str(path), "vm02", 1.0, crashloop.DEFAULTS) == (True, [1.0])
