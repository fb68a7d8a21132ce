"""Placement: which host takes a guest, and a reason for every host turned down."""

import pytest

from saltext_xen.core.validate import InvalidSpec
from saltext_xen.fleet import needs, placement
from tests.unit.fleet_data import guest, host


def _want(name="new", memory=1024, **given):
    return needs.wanted(name, None, memory=memory, **given)


def _three(**over):
    fleet = {
        "xen1": host(guests={"a": guest(2048)}),
        "xen2": host(guests={"b": guest(1024)}),
        "xen3": host(guests={"c": guest(4096)}),
    }
    fleet.update(over)
    return fleet


def test_the_host_with_most_memory_left_wins_and_the_choice_is_explained():
    chosen = placement.place(_three(), _want())
    assert chosen["host"] == "xen2"
    assert "most memory left" in chosen["why"] and "of the 3 hosts" in chosen["why"]
    assert chosen["rejected"] == {}


@pytest.mark.parametrize(
    ("given", "host_name", "reason"),
    [
        ({"bridges": "xenbr1"}, "xen2", "lacks bridge xenbr1"),
        ({"networks": "lan"}, "xen2", "lacks network lan"),
        ({"disks": "/data/new.img"}, "xen2", "lacks storage for /data/new.img"),
    ],
)
def test_a_host_lacking_what_the_guest_needs_is_turned_down_with_what_it_lacks(given, host_name, reason):
    chosen = placement.place(_three(), _want(**given))
    assert chosen["host"] is None
    assert chosen["rejected"][host_name] == reason
    assert "no host can take new" in chosen["why"]


def test_a_libvirt_network_bridge_counts_as_a_bridge_of_the_host():
    fleet = _three(xen1=host(bridges=(), networks={"lan": {"active": True, "bridge": "br-lan"}}))
    chosen = placement.place(fleet, _want(bridges="br-lan", networks="lan"))
    assert chosen["host"] == "xen1"
    assert chosen["rejected"]["xen2"] == "lacks bridge br-lan, network lan"


def test_storage_is_found_under_a_pool_path():
    assert placement.place(_three(), _want(disks="/srv/xen/images/new.img"))["host"] == "xen2"


def test_anti_affinity_keeps_a_group_apart():
    pillar = {"b": {"group": "web"}}
    fleet = _three(xen2=host(guests={"b": guest(1024)}, pillar=pillar))
    chosen = placement.place(fleet, _want(group="web"))
    assert chosen["rejected"]["xen2"] == "holds b of anti-affinity group web"
    assert chosen["host"] == "xen1"


def test_pins_and_exclusions():
    chosen = placement.place(_three(), _want(), pin=["xen3"])
    assert chosen["host"] == "xen3"
    assert chosen["rejected"]["xen1"] == "not among the pinned hosts (xen3)"
    chosen = placement.place(_three(), _want(), exclude=["xen2"])
    assert chosen["rejected"]["xen2"] == "excluded" and chosen["host"] == "xen1"


def test_too_little_memory_is_said_in_mib():
    chosen = placement.place(_three(), _want(memory="7G"), n_plus_one=False)
    assert chosen["rejected"]["xen3"] == "has 4096 MiB free for guests, new needs 7168 MiB"
    assert chosen["host"] == "xen2"


def test_n_plus_one_turns_down_a_placement_that_leaves_no_room_for_a_failed_host():
    # two hosts of 8 GiB: each must be able to hold the other's guests
    fleet = {"xen1": host(guests={"a": guest(3072)}), "xen2": host(guests={"b": guest(3072)})}
    assert placement.place(fleet, _want(memory=1024))["host"] == "xen1"
    assert placement.place(fleet, _want(memory=2048))["host"] == "xen1"  # xen2 can still hold all of xen1
    chosen = placement.place(fleet, _want(memory=2560))
    assert chosen["host"] is None
    assert chosen["rejected"]["xen1"] == (
        "N+1 would break: the guests of xen1 (5632 MiB) would not fit in the memory left on the other hosts (5120 MiB)"
    )
    assert placement.place(fleet, _want(memory=2560), n_plus_one=False)["host"] == "xen1"


def test_n_plus_one_checks_the_largest_guest_fits_one_other_host():
    # plenty of memory together, but only xen2 can hold xen1's 5 GiB guest: it must keep that room
    fleet = {
        "xen1": host(guests={"big": guest(5120)}),
        "xen2": host(guests={"b": guest(2048)}),
        "xen3": host(guests={"c": guest(3584)}),
    }
    assert placement.Fleet(fleet).n_plus_one_problem() is None
    chosen = placement.place(fleet, _want(memory=1536))
    assert chosen["rejected"]["xen2"] == (
        "N+1 would break: the largest guest of xen1 (5120 MiB) would fit on no other host "
        "(most room elsewhere: 4608 MiB)"
    )
    assert chosen["host"] == "xen3"


def test_hosts_that_did_not_answer_are_named_as_such():
    chosen = placement.place(_three(xen4="did not answer", xen5="cannot read facts: no libvirt"), _want())
    assert chosen["rejected"]["xen4"] == "did not answer"
    assert chosen["rejected"]["xen5"] == "cannot read facts: no libvirt"


def test_a_guest_already_on_a_host_is_not_placed_there_again():
    chosen = placement.place(_three(), needs.needs_of("a", guest(512)))
    assert chosen["rejected"]["xen1"] == "already has a"


def test_needs_come_from_pillar_and_arguments_win():
    entry, problems = needs.pillar_guests({"web1": {"memory": "2G", "nics": [{"bridge": "xenbr1"}], "group": "web"}})
    assert not problems
    wanted = needs.wanted("web1", entry["web1"])
    assert (wanted["memory"], wanted["bridges"], wanted["group"]) == (2048, ["xenbr1"], "web")
    assert needs.wanted("web1", entry["web1"], memory=512, bridges=["xenbr0"])["bridges"] == ["xenbr0"]


def test_wrong_needs_are_named_by_key():
    with pytest.raises(InvalidSpec, match="memory: expected a size"):
        needs.wanted("x", None, memory="lots")
    with pytest.raises(InvalidSpec, match="x is in no host's pillar"):
        needs.wanted("x", None)
    _found, problems = needs.pillar_guests({"vm": {"memory": "5l2"}})
    assert problems == ["xen:guests:vm:memory: expected a size in MiB like 512, 512M or 2G, got '5l2'"]


def test_capacity_summary():
    summary = placement.capacity(host(guests={"a": guest(1024), "b": guest(512, active=False)}))
    assert (summary["guests"], summary["running"], summary["guest_memory"]) == (2, ["a"], 1024)
    assert placement.capacity("did not answer") == "did not answer"
