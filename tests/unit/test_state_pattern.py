"""The shared end of a state: nothing to do, test=True, apply, and the ways applying fails."""

import pytest

from saltext_xen.core import state_pattern
from saltext_xen.core.errors import XenError

PLAN = {"size": {"old": 1, "new": 2}}


def fresh():
    return {"name": "d", "result": True, "changes": {}, "comment": ""}


def must_not_run():
    raise AssertionError("apply ran")


def conclude(changes, test=False, apply=must_not_run, **how):
    how.setdefault("unchanged", "d is already as wanted")
    return state_pattern.conclude(fresh(), changes, test=test, would="d would grow", apply=apply, **how)


def test_nothing_to_do_is_true_with_no_changes_and_applies_nothing():
    assert conclude({}) == {"name": "d", "result": True, "changes": {}, "comment": "d is already as wanted"}


def test_test_mode_predicts_the_planned_changes_and_applies_nothing():
    assert conclude(PLAN, test=True) == {"name": "d", "result": None, "changes": PLAN, "comment": "d would grow"}


def test_nothing_to_do_under_test_mode_is_still_true():
    assert conclude({}, test=True)["result"] is True


def test_apply_returning_a_comment_keeps_the_planned_changes():
    ret = conclude(PLAN, apply=lambda: "d grew")
    assert ret == {"name": "d", "result": True, "changes": PLAN, "comment": "d grew"}


def test_apply_returning_changes_reports_what_was_really_done():
    done = {"size": {"old": 1, "new": 3}}
    ret = conclude(PLAN, apply=lambda: (done, "d grew to 3"))
    assert (ret["result"], ret["changes"], ret["comment"]) == (True, done, "d grew to 3")


def test_an_expected_error_fails_with_no_changes_and_the_error_in_words():
    def boom():
        raise XenError("disk full")

    ret = conclude(PLAN, apply=boom, errors=(XenError,))
    assert ret == {"name": "d", "result": False, "changes": {}, "comment": "disk full"}
    ret = conclude(PLAN, apply=boom, errors=(XenError,), failed=lambda exc: f"{exc}; d was left as it was")
    assert ret["comment"] == "disk full; d was left as it was"


def test_failed_part_way_keeps_only_what_happened():
    def half():
        raise state_pattern.Failed("d grew but its label was not written", {"size": PLAN["size"]})

    ret = conclude({**PLAN, "label": {"old": None, "new": "x"}}, apply=half)
    assert ret == {"name": "d", "result": False, "changes": PLAN, "comment": "d grew but its label was not written"}


def test_an_unexpected_error_is_not_swallowed():
    def bug():
        raise KeyError("oops")

    with pytest.raises(KeyError):
        conclude(PLAN, apply=bug, errors=(XenError,))


def test_predicted_sets_result_none_changes_and_comment():
    assert state_pattern.predicted(fresh(), PLAN, "d would be made") == {
        "name": "d",
        "result": None,
        "changes": PLAN,
        "comment": "d would be made",
    }


def test_a_failure_is_named_by_the_key_path_when_given():
    def boom():
        raise XenError("disk full")

    ret = conclude(PLAN, apply=boom, errors=(XenError,), path="xen:disks:d")
    assert ret["comment"] == "xen:disks:d: disk full"


@state_pattern.guarded((XenError,))
def grow(name, size=None, pillar_path=None, **kwargs):
    ret = state_pattern.checked(name, kwargs, [] if size else ["size: expected a size, got None"])
    if size == "full":
        raise XenError(f"{name} cannot be read")
    return ret


def test_guarded_refuses_naming_each_problem_by_its_key_and_each_error_by_the_entry():
    assert grow("d", size=1) == fresh()
    refused = grow("d", colour=1, pillar_path="xen:disks:d")
    assert refused == {
        "name": "d",
        "result": False,
        "changes": {},
        "comment": "xen:disks:d:size: expected a size, got None\nxen:disks:d:colour: unknown argument",
    }
    assert grow("d", size="full", pillar_path="xen:disks:d")["comment"] == "xen:disks:d: d cannot be read"
    assert grow("d", size="full")["comment"] == "d cannot be read"
