"""Evacuate, failover and balance plans, with tables and properties that hold for any fleet."""

from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.fleet import needs, placement, plans
from tests.unit.fleet_data import guest, host


def _fleet():
    return {
        "xen1": host(guests={"a": guest(2048), "b": guest(1024), "off": guest(4096, active=False)}),
        "xen2": host(guests={"c": guest(1024)}),
        "xen3": host(guests={"d": guest(1024)}),
    }


def test_evacuate_moves_every_guest_largest_first_and_says_it_is_a_plan():
    plan = plans.evacuate(_fleet(), "xen1")
    assert plan["feasible"] and plan["refused"] is None
    assert [(m["guest"], m["how"]) for m in plan["moves"]] == [
        ("a", "live migration"),
        ("b", "live migration"),
        ("off", "move the definition (shut off)"),
    ]
    assert {m["to"] for m in plan["moves"]} <= {"xen2", "xen3"}
    assert plan["moves"][2]["memory"] == 0
    assert plan["note"] == "plan only: nothing was moved (salt-run xen.migrate moves one guest)"


def test_a_move_goes_where_placement_chooses_or_where_asked_when_that_host_can_take_it():
    fleet = _fleet()
    fleet["xen3"]["memory"]["available"] -= 512
    plan = plans.move(fleet, "off")
    assert plan["feasible"] and plan["host"] == "xen1"
    (step,) = plan["moves"]
    assert (step["from"], step["to"], step["how"]) == ("xen1", "xen2", "move the definition (shut off)")
    assert plans.move(fleet, "a", target="xen3")["moves"][0]["how"] == "live migration"
    fleet["xen3"]["bridges"] = []
    assert plans.move(fleet, "a", target="xen3")["refused"] == "cannot move a: xen3: lacks bridge xenbr0"


def test_a_move_is_refused_for_a_guest_on_no_host_or_on_two_and_for_a_silent_target():
    fleet = _fleet()
    assert plans.move(fleet, "zz")["refused"] == "cannot move zz: it is on no host (salt-run xen.verify)"
    fleet["xen2"]["guests"]["a"] = guest(2048)
    assert plans.move(fleet, "a")["refused"] == (
        "cannot move a: it is defined on xen1, xen2: make sure it runs on one only (salt-run xen.verify)"
    )
    fleet["xen4"] = "did not answer"
    assert plans.move(fleet, "b", target="xen4")["refused"] == "cannot move b: xen4: did not answer"
    assert plans.move(fleet, "b", target="xen1")["refused"] == "cannot move b: b is on xen1 already"


def test_evacuate_is_refused_with_the_reason_when_the_rest_cannot_hold_the_guests():
    fleet = _fleet()
    fleet["xen1"]["guests"]["a"]["bridges"] = ["xenbr9"]
    plan = plans.evacuate(fleet, "xen1")
    assert not plan["feasible"]
    assert (
        plan["refused"]
        == "cannot evacuate xen1: the rest of the fleet cannot hold the guests of xen1: no host can take a"
    )
    assert plan["unplaced"]["a"] == {"xen2": "lacks bridge xenbr9", "xen3": "lacks bridge xenbr9"}


def test_evacuate_refusal_for_n_plus_one_says_how_to_plan_without_it():
    fleet = {"xen1": host(guests={"a": guest(4096)}), "xen2": host(guests={"b": guest(4096)})}
    plan = plans.evacuate(fleet, "xen1")
    assert not plan["feasible"] and "n_plus_one=False" in plan["refused"]
    assert plans.evacuate(fleet, "xen1", n_plus_one=False)["moves"][0]["to"] == "xen2"


def test_evacuate_of_an_unknown_or_silent_host_is_refused():
    assert (
        plans.evacuate(_fleet(), "xen9")["refused"] == "cannot evacuate xen9: it is not among the answering Xen hosts"
    )
    fleet = dict(_fleet(), xen4="did not answer")
    assert plans.evacuate(fleet, "xen4")["refused"] == "cannot evacuate xen4: did not answer"


def test_failover_starts_the_dead_hosts_guests_elsewhere_and_skips_those_already_defined():
    fleet = dict(_fleet(), xen4="did not answer")
    guests = [needs.needs_of("e", {"memory": 1024}), needs.needs_of("c", {"memory": 1024})]
    plan = plans.failover(fleet, "xen4", guests)
    assert plan["feasible"]
    assert [(m["guest"], m["how"]) for m in plan["moves"]] == [("e", "start from shared storage")]
    assert plan["skipped"] == {"c": "already defined on xen2"}


def test_failover_of_a_host_that_answers_is_refused():
    plan = plans.failover(_fleet(), "xen1", [])
    assert plan["refused"] == "cannot fail over xen1: it answers, so it is not down (no split brain)"


def test_balance_moves_from_the_fullest_to_the_emptiest():
    fleet = {
        "xen1": host(guests={"a": guest(2048), "b": guest(2048), "c": guest(1024)}),
        "xen2": host(guests={}),
        "xen3": host(guests={"d": guest(1024)}),
    }
    plan = plans.balance(fleet)
    assert plan["moves"][0]["from"] == "xen1" and plan["moves"][0]["to"] == "xen2"
    assert max(plan["use_after"].values()) - min(plan["use_after"].values()) < 0.2
    assert plan["note"] == plans.PLAN_ONLY
    assert (
        plans.balance({"xen1": host(guests={"a": guest(1024)}), "xen2": host(guests={"b": guest(1024)})})["moves"] == []
    )


# ---------------------------------------------------------------- properties

GROUPS = ("web", "db", None, None)


@st.composite
def fleets(draw):
    """2 to 6 hosts, each with up to 5 guests; a group appears at most once per host."""
    count = draw(st.integers(2, 6))
    fleet = {}
    serial = 0
    for index in range(count):
        guests, pillar, used = {}, {}, 0
        total = draw(st.sampled_from([4096, 8192, 16384]))
        bridges = draw(st.sampled_from([("xenbr0",), ("xenbr0", "xenbr1"), ("xenbr1",)]))
        for group in draw(st.lists(st.sampled_from(GROUPS), max_size=5)):
            memory = draw(st.sampled_from([256, 512, 1024, 2048]))
            if group and any(p.get("group") == group for p in pillar.values()):
                continue
            if used + memory > total:
                break
            name = f"g{serial}"
            serial += 1
            active = draw(st.booleans())
            guests[name] = guest(memory, active=active, bridges=(draw(st.sampled_from(bridges)),))
            pillar[name] = {"group": group}
            used += memory if active else 0
        fleet[f"xen{index}"] = host(total=total, guests=guests, bridges=bridges, pillar=pillar)
    return fleet


def _after(fleet, moves, source=None):
    """{host: [(guest, memory, active, group)]} once the moves are done (the source left out)."""
    known = {
        g: (rec["memory"], rec["active"], facts["pillar_guests"].get(g, {}).get("group"))
        for facts in fleet.values()
        for g, rec in facts["guests"].items()
    }
    home = {g: h for h, facts in fleet.items() for g in facts["guests"]}
    for move in moves:
        home[move["guest"]] = move["to"]
    where = {name: [] for name in fleet if name != source}
    for g, h in home.items():
        if h != source:
            where[h].append((g, *known[g]))
    return where


def _room(fleet, where):
    return {h: fleet[h]["memory"]["total"] - sum(m for _, m, a, _ in guests if a) for h, guests in where.items()}


def _n_plus_one_holds(fleet, where):
    room = _room(fleet, where)
    for name, guests in where.items():
        running = [m for _, m, a, _ in guests if a]
        others = [r for h, r in room.items() if h != name]
        if sum(running) > sum(others) or (running and max(running) > max(others, default=0)):
            return False
    return True


def _check_plan(fleet, plan, source):
    where = _after(fleet, plan["moves"], source)
    assert all(r >= 0 for r in _room(fleet, where).values()), "a host is overcommitted"
    for guests in where.values():
        groups = [group for _, _, _, group in guests if group]
        assert len(groups) == len(set(groups)), "two guests of one group on one host"
    for rejected in plan["unplaced"].values():
        assert all(isinstance(reason, str) and reason for reason in rejected.values())
    return where


@settings(max_examples=150, deadline=None)
@given(fleets(), st.data())
def test_evacuate_never_overcommits_never_joins_a_group_and_keeps_n_plus_one(fleet, data):
    source = data.draw(st.sampled_from(sorted(fleet)))
    plan = plans.evacuate(fleet, source)
    where = _check_plan(fleet, plan, source)
    if plan["feasible"] and len(where) > 1:
        assert _n_plus_one_holds(fleet, where)
    if plan["feasible"]:
        assert sorted(m["guest"] for m in plan["moves"]) == sorted(fleet[source]["guests"])
    else:
        assert plan["refused"] and plan["unplaced"]


@settings(max_examples=150, deadline=None)
@given(fleets(), st.sampled_from([256, 1024, 4096]), st.sampled_from(GROUPS))
def test_placement_gives_every_rejected_host_a_reason_and_keeps_n_plus_one(fleet, memory, group):
    guest_needs = needs.wanted("new", None, memory=memory, group=group, bridges="xenbr0")
    chosen = placement.place(fleet, guest_needs)
    assert set(chosen["rejected"]) | ({chosen["host"]} if chosen["host"] else set()) <= set(fleet)
    assert all(isinstance(reason, str) and reason for reason in chosen["rejected"].values())
    if chosen["host"] is None:
        assert set(chosen["rejected"]) == set(fleet)
        return
    target = fleet[chosen["host"]]
    assert target["memory"]["available"] >= memory
    assert group is None or all(p.get("group") != group for p in target["pillar_guests"].values())
    where = _after(fleet, [])
    where[chosen["host"]].append(("new", memory, True, group))
    assert _n_plus_one_holds(fleet, where)


@settings(max_examples=100, deadline=None)
@given(fleets())
def test_balance_never_overcommits_and_keeps_n_plus_one_when_it_held(fleet):
    held = placement.Fleet(fleet).n_plus_one_problem() is None
    plan = plans.balance(fleet)
    where = _check_plan(fleet, dict(plan, unplaced={}), None)
    if held:
        assert _n_plus_one_holds(fleet, where)
