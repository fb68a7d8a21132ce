"""Fleet checks: each problem a sentence, under the check that found it."""

from saltext_xen.fleet import verify
from tests.unit.fleet_data import guest, host


def _clean():
    return {
        "xen1": host(guests={"a": guest(1024, uuid="u-a", macs=["00:16:3e:00:00:0a"])}, pillar={"a": {}}),
        "xen2": host(guests={"b": guest(1024, uuid="u-b", macs=["00:16:3e:00:00:0b"])}, pillar={"b": {}}),
    }


def test_a_healthy_fleet_has_nothing_to_say():
    assert verify.check(_clean()) == {}


def test_hosts_that_did_not_answer():
    assert verify.check(dict(_clean(), xen3="did not answer")) == {"down": ["xen3: did not answer"]}


def test_a_guest_on_two_hosts_running_on_both_is_split_brain():
    fleet = _clean()
    fleet["xen2"]["guests"]["a"] = guest(1024, uuid="u-a", macs=["00:16:3e:00:00:0a"])
    found = verify.check(fleet)
    assert found["duplicates"] == ["a runs on 2 hosts at once: xen1, xen2 (split brain)"]
    assert "uuid_clashes" not in found, "one guest defined twice is a duplicate, not a UUID clash"


def test_a_guest_defined_on_two_hosts_and_running_on_one():
    fleet = _clean()
    fleet["xen2"]["guests"]["a"] = guest(1024, active=False, uuid="u-a")
    assert verify.check(fleet)["duplicates"] == ["a is defined on 2 hosts: xen1, xen2; it runs on xen1"]


def test_uuid_and_mac_clashes_across_hosts():
    fleet = _clean()
    fleet["xen2"]["guests"]["b"]["uuid"] = "u-a"
    fleet["xen2"]["guests"]["b"]["macs"] = ["00:16:3e:00:00:0a"]
    found = verify.check(fleet)
    assert found["uuid_clashes"] == ["UUID u-a is used by a on xen1, b on xen2"]
    assert found["mac_clashes"] == ["MAC 00:16:3e:00:00:0a is used by a on xen1, b on xen2"]


def test_missing_bridge_network_and_disk_on_the_guests_host():
    fleet = _clean()
    record = guest(512, bridges=("xenbr7",), networks=("lan",), disks=["/srv/xen/c.img"])
    record["disks"][0]["exists"] = False
    fleet["xen1"]["guests"]["c"] = record
    assert verify.check(fleet)["missing"] == ["c on xen1: missing bridge xenbr7, network lan, disk /srv/xen/c.img"]


def test_autostart_guests_that_are_down():
    fleet = _clean()
    fleet["xen1"]["guests"]["c"] = guest(512, active=False, autostart=True)
    assert verify.check(fleet)["autostart_down"] == ["c on xen1 is marked autostart but is shutoff"]


def test_n_plus_one_broken():
    fleet = _clean()
    fleet["xen1"]["guests"]["big"] = guest(7500)
    assert verify.check(fleet)["n_plus_one"] == ["if xen1 fails, big cannot be started on the other hosts"]


def test_pillar_naming_a_guest_held_by_another_host_or_two_pillars():
    fleet = _clean()
    fleet["xen2"]["pillar_guests"]["a"] = {}
    fleet["xen1"]["pillar_guests"]["z"] = {}
    fleet["xen2"]["guests"]["z"] = guest(256)
    found = verify.check(fleet)["pillar"]
    assert found == [
        "a is in the pillar of xen1, xen2: a highstate of each would define it",
        "z is in the pillar of xen1 but defined on xen2: "
        "a highstate there defines a second copy, or fails where the mine guard knows",
    ]
