"""The xen_guest_events beacon and the boot/crash functions, through Salt's loader on libvirt's test driver."""

import pytest
import salt.beacons
import salt.loader
from salt.exceptions import CommandExecutionError


@pytest.fixture
def beacons(loaders, modules):
    """The beacon loader as the minion builds it; a fresh context, so a fresh baseline."""
    return salt.loader.beacons(loaders.opts, loaders.modules, context={})


def _pass(beacons, *options):
    return beacons["xen_guest_events.beacon"]([{"interval": 1}, *options])


def test_first_pass_is_the_baseline_then_a_crash_is_one_event(beacons, modules, tmp_path):
    assert _pass(beacons) == []
    modules.xen_guest.autostart("vm02")
    assert _pass(beacons) == [], "an autostart mark is not a state change"

    done = modules.xen_guest.dump_core("vm02", str(tmp_path / "vm02.core"), crash=True)
    assert done == {"vm02": {"old": "running", "new": "crashed", "path": str(tmp_path / "vm02.core")}}
    assert _pass(beacons) == [
        {
            "tag": "xen/guest/vm02/crashed",
            "name": "vm02",
            "old": "running",
            "new": "crashed",
            "autostart": True,
            "restart": True,
        }
    ]
    assert _pass(beacons) == [], "a guest that stays crashed is reported once"


def test_start_and_destroy_are_reported_with_their_words(beacons, modules):
    _pass(beacons)
    modules.xen_guest.start("vm03")
    modules.xen_guest.destroy("vm02")
    events = _pass(beacons)
    assert [(e["tag"], e["old"], e["new"], e["restart"]) for e in events] == [
        ("xen/guest/vm02/shutoff", "running", "shutoff", False),
        ("xen/guest/vm03/running", "shutoff", "running", False),
    ]


def test_states_filter_and_restart_list_from_pillar_or_config(beacons, loaders, modules, tmp_path):
    _pass(beacons)
    modules.xen_guest.start("vm03")
    modules.xen_guest.dump_core("vm03", str(tmp_path / "core"), crash=True)
    loaders.opts["xen"]["reactor"] = {"restart": ["vm03"]}  # what config.get reads before pillar
    try:
        events = _pass(beacons, {"states": ["crashed"]})
    finally:
        del loaders.opts["xen"]["reactor"]
    assert [(e["name"], e["new"], e["autostart"], e["restart"]) for e in events] == [("vm03", "crashed", False, True)]


def test_emit_at_start_reports_every_guest(beacons):
    events = _pass(beacons, {"emit_at_start": True})
    assert [(e["tag"], e["old"]) for e in events] == [
        ("xen/guest/vm02/running", "absent"),
        ("xen/guest/vm03/shutoff", "absent"),
    ]


def test_validate_names_every_problem(beacons):
    ok, comment = beacons["xen_guest_events.validate"]([{"interval": 10}, {"states": ["crashed"]}])
    assert ok, comment
    ok, comment = beacons["xen_guest_events.validate"]([{"states": ["crashd"]}, {"colour": "red"}])
    assert not ok
    assert "unknown state 'crashd'" in comment and "colour: unknown option" in comment


def test_salt_beacon_machinery_prefixes_the_tag(loaders, modules, tmp_path):
    """What reaches the master: salt/beacon/<id>/xen_guest_events/xen/guest/NAME/STATE."""
    beacon = salt.beacons.Beacon(loaders.opts, loaders.modules)
    config = {"xen_guest_events": [{"states": ["crashed"]}]}
    assert beacon.process(config, {}) == []
    modules.xen_guest.dump_core("vm02", str(tmp_path / "core"), crash=True)
    (event,) = beacon.process(config, {})
    assert event["tag"] == "salt/beacon/xen-functional/xen_guest_events/xen/guest/vm02/crashed"
    assert event["data"]["name"] == "vm02" and event["data"]["id"] == "xen-functional"


def test_states_lists_every_guest_with_crash_and_autostart(modules, tmp_path):
    modules.xen_guest.autostart("vm03")
    modules.xen_guest.dump_core("vm02", str(tmp_path / "core"), crash=True)
    assert modules.xen_guest.states() == {
        "vm02": {"state": "crashed", "autostart": False},
        "vm03": {"state": "shutoff", "autostart": True},
    }


def test_dump_core_of_a_shut_off_guest_is_refused(modules, tmp_path):
    with pytest.raises(CommandExecutionError, match="vm03 is shutoff: only a running or paused guest"):
        modules.xen_guest.dump_core("vm03", str(tmp_path / "core"))


def test_boot_starts_autostart_guests_and_restores_saved_ones(modules, tmp_path):
    """xendomains at boot: vm02 comes back from its save file, autostart vm03 is started."""
    save_dir = tmp_path / "save"
    modules.xen_guest.save("vm02", path=str(save_dir / "vm02"))
    modules.xen_guest.autostart("vm03")
    changes = modules.xen_guest.start_autostart(save_dir=str(save_dir))
    assert changes == {
        "vm02": {"old": "saved", "new": "running", "path": str(save_dir / "vm02")},
        "vm03": {"old": "shutoff", "new": "running"},
    }
    assert not (save_dir / "vm02").exists(), "the save file is used up, as xendomains did"
    assert modules.xen_guest.start_autostart(save_dir=str(save_dir)) == {}, "a second run changes nothing"


def test_boot_restarts_a_crashed_autostart_guest_but_not_others(modules, tmp_path):
    modules.xen_guest.dump_core("vm02", str(tmp_path / "core"), crash=True)
    assert modules.xen_guest.start_autostart(save_dir=str(tmp_path / "none")) == {}
    modules.xen_guest.autostart("vm02")
    changes = modules.xen_guest.start_autostart(save_dir=str(tmp_path / "none"), restore=False)
    assert changes == {"vm02": {"old": "shutoff", "new": "running"}}


def test_example_pillar_beacon_config_is_valid(beacons):
    """pillar/xen/events.sls, as a user copies it, passes the beacon's validation."""
    import yaml

    from tests.conftest import ROOT

    example = yaml.safe_load((ROOT / "pillar" / "xen" / "events.sls").read_text())
    ok, comment = beacons["xen_guest_events.validate"](example["beacons"]["xen_guest_events"])
    assert ok, comment
    assert example["xen"]["reactor"]["restart"] == ["vm02"]
