"""Guest state changes to events, and the xendomains boot plan, as plain data."""

import libvirt
from hypothesis import given
from hypothesis import strategies as st

from saltext_xen.events import autostart, guest_events
from saltext_xen.guests import lifecycle


def test_first_pass_reports_nothing_it_is_the_baseline():
    assert guest_events.diff(None, {"vm02": "running"}) == []


def test_crash_of_a_running_guest_is_one_change():
    old = {"vm02": "running", "vm03": "shutoff"}
    new = {"vm02": "crashed", "vm03": "shutoff"}
    assert guest_events.diff(old, new) == [("vm02", "running", "crashed")]


def test_guests_appearing_and_going_change_from_and_to_absent():
    changes = guest_events.diff({"vm02": "running"}, {"vm05": "shutoff"})
    assert changes == [("vm02", "running", "absent"), ("vm05", "absent", "shutoff")]


def test_shut_off_because_it_crashed_is_called_crashed():
    """libxl destroys a crashed guest (on_crash=destroy): shut off, reason crashed."""
    word = lifecycle.word_of(libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED)
    assert word == "crashed"
    assert lifecycle.word_of(libvirt.VIR_DOMAIN_CRASHED, 0) == "crashed"
    assert lifecycle.word_of(libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED) == "shutoff"
    assert lifecycle.word_of(libvirt.VIR_DOMAIN_BLOCKED, 0) == "running"


def test_event_tag_and_data_for_a_crash():
    (event,) = guest_events.events([("vm02", "running", "crashed")], autostart_of=lambda name: True)
    assert event == {
        "tag": "xen/guest/vm02/crashed",
        "name": "vm02",
        "old": "running",
        "new": "crashed",
        "autostart": True,
        "restart": True,
    }


def test_restart_is_autostart_or_listed_in_pillar():
    changes = [("vm02", "running", "crashed"), ("vm03", "running", "crashed"), ("vm04", "running", "crashed")]
    marked = {"vm02"}
    evs = guest_events.events(changes, autostart_of=marked.__contains__, restart=["vm03"])
    assert [(e["name"], e["autostart"], e["restart"]) for e in evs] == [
        ("vm02", True, True),
        ("vm03", False, True),
        ("vm04", False, False),
    ]


def test_a_guest_that_went_away_is_not_asked_for_autostart():
    def ask(name):
        raise AssertionError(f"asked libvirt about {name}, which is gone")

    (event,) = guest_events.events([("vm05", "shutoff", "absent")], autostart_of=ask)
    assert event["tag"] == "xen/guest/vm05/absent" and event["autostart"] is False


def test_state_words_with_a_space_make_one_tag_part():
    assert guest_events.tag("vm02", "shutting down") == "xen/guest/vm02/shutting_down"


def test_states_and_guests_filters():
    evs = guest_events.events(
        [("vm02", "running", "crashed"), ("vm03", "shutoff", "running")], autostart_of=lambda n: False
    )
    assert [e["name"] for e in guest_events.wanted(evs, states=["crashed"])] == ["vm02"]
    assert [e["name"] for e in guest_events.wanted(evs, names=["vm03"])] == ["vm03"]
    assert guest_events.wanted(evs) == evs


def test_emit_at_start_reports_every_guest_from_absent():
    assert guest_events.first_pass({"vm02": "running"}) == [("vm02", "absent", "running")]


def test_config_as_salt_3007_lists_it_is_valid():
    assert guest_events.validate_config([{"interval": 10}, {"states": ["crashed", "shutoff"]}]) == []
    assert guest_events.validate_config([]) == []


def test_config_problems_are_all_named():
    problems = guest_events.validate_config(
        [{"states": ["crashd"]}, {"guests": "vm02"}, {"emit_at_start": "yes"}, {"colour": 1}, "interval"]
    )
    text = "\n".join(problems)
    assert len(problems) == 5, problems
    assert "unknown state 'crashd'" in text
    assert "guests: expected a list" in text
    assert "emit_at_start: expected true or false" in text
    assert "colour: unknown option" in text
    assert "item 4" in text


def test_config_must_be_a_list():
    assert "must be a list" in guest_events.validate_config({"interval": 10})[0]


words = st.sampled_from(["running", "paused", "shutoff", "crashed"])
snapshots = st.dictionaries(st.sampled_from(["vm01", "vm02", "vm03", "vm04"]), words)


@given(snapshots, snapshots)
def test_replaying_the_changes_on_the_old_snapshot_gives_the_new_one(old, new):
    state = dict(old)
    for name, before, after in guest_events.diff(old, new):
        assert state.get(name, "absent") == before
        if after == "absent":
            del state[name]
        else:
            state[name] = after
    assert state == new
    assert guest_events.diff(new, new) == []


# --------------------------------------------------------------------------- boot plan (xendomains start)


def test_boot_starts_autostart_guests_that_are_off():
    states = {"vm02": "running", "vm03": "shutoff", "vm04": "crashed", "vm05": "shutoff"}
    steps = autostart.plan(states, autostart={"vm02", "vm03", "vm04"}, saved={})
    assert steps == [("start", "vm03", None), ("start", "vm04", None)]


def test_boot_restores_saved_guests_instead_of_starting_them():
    states = {"vm02": "shutoff", "vm03": "shutoff"}
    saved = {"vm02": "/save/vm02", "vm06": "/save/vm06"}
    steps = autostart.plan(states, autostart={"vm02", "vm03"}, saved=saved)
    assert steps == [("restore", "vm02", "/save/vm02"), ("restore", "vm06", "/save/vm06"), ("start", "vm03", None)]


def test_boot_leaves_a_running_guest_and_its_save_file_alone():
    steps = autostart.plan({"vm02": "running"}, autostart={"vm02"}, saved={"vm02": "/save/vm02"})
    assert steps == []


def test_save_files_are_found_by_guest_name(tmp_path):
    (tmp_path / "vm02").write_text("x")
    (tmp_path / ".partial").write_text("x")
    (tmp_path / "sub").mkdir()
    assert autostart.save_files(str(tmp_path)) == {"vm02": str(tmp_path / "vm02")}
    assert autostart.save_files(str(tmp_path / "missing")) == {}
