"""The second-copy guard: what a host must not define or start because the mine shows it elsewhere."""

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.fleet import facts, guard
from saltext_xen.guests import guest_apply

UUID = "6e3e1f6a-6a4e-4b5b-9d3c-0a1b2c3d4e5f"
MINE = {
    "xen1": {"vm02": {"uuid": "11111111-2222-3333-4444-555555555555", "state": "running"}},
    "xen2": {"vm02": {"uuid": "11111111-2222-3333-4444-555555555555", "state": "running"}},
    "xen3": {"web9": {"uuid": UUID, "state": "shutoff"}},
    "xen4": "'xen_host.guests' is not available.",
}


def test_a_guest_running_elsewhere_is_refused_with_where_and_what_to_do():
    assert guard.refusals("vm02", None, MINE, "xen1") == [
        "xen:guests:vm02: vm02 runs on xen2 (mine): a second copy here would share its disks; "
        "move its pillar entry or run salt-run xen.verify"
    ]


def test_a_guest_with_the_uuid_of_another_hosts_guest_is_refused_naming_both():
    (problem,) = guard.refusals("web3", UUID.upper(), MINE, "xen1", path="xen:clones")
    assert problem.startswith(
        "xen:clones:web3: web3's UUID is that of guest web9, which is defined on xen3 (shutoff) (mine)"
    )


def test_nothing_is_refused_where_the_mine_has_nothing_or_only_this_host():
    assert guard.refusals("vm02", None, {}, "xen1") == []
    assert guard.refusals("vm02", None, None, "xen1") == []
    assert guard.refusals("vm02", None, {"xen1": MINE["xen1"]}, "xen1") == []
    assert guard.refusals("newvm", None, MINE, "xen1") == []


def test_the_guard_asks_only_for_a_guest_about_to_be_defined_or_started(test_uri):
    conn = connection.connect(test_uri)
    running, shut_off = guest_apply.read(conn, "vm02"), guest_apply.read(conn, "vm03")
    assert guard.would_add(None, None) and guard.would_add("stopped", None)
    assert guard.would_add("running", shut_off) and guard.would_add("paused", shut_off)
    assert not guard.would_add("running", running)
    assert not guard.would_add(None, shut_off) and not guard.would_add("stopped", shut_off)


def test_a_host_publishes_its_guests_uuid_and_state(test_uri):
    published = facts.guests(connection.connect(test_uri))
    assert sorted(published) == ["vm02", "vm03"]
    assert published["vm02"]["state"] == "running" and published["vm03"]["state"] == "shutoff"
    assert all(len(g["uuid"]) == 36 for g in published.values())


def test_the_mine_is_asked_once_per_state_run_and_afresh_outside_one():
    asked = []
    salt_funcs = {"mine.get": lambda tgt, fun: asked.append((tgt, fun)) or MINE}
    context = {}
    for run in ("run-1", "run-1", "run-2", None, None):
        assert saltglue.mine_guests(salt_funcs, context, run) == MINE
    assert asked == [("*", "xen_host.guests")] * 4


def test_a_mine_answer_that_is_no_mapping_refuses_nothing():
    salt_funcs = {"mine.get": lambda tgt, fun: "", "config.get": lambda key: "xen1"}
    assert saltglue.mine_guests(salt_funcs, {}, None) == {}
    assert saltglue.second_copy(salt_funcs, {}, None, "vm02", "running", None, {"uuid": None}, "xen:guests") == []
