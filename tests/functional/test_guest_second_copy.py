"""The second-copy guard in the guest states, and what it costs: the mine is asked only for a
guest the state would define or start. The real mine of a master and two minions is in
tests/integration/test_fleet.py; here the mine's answer is the one part stood in for, to count
the calls and to report a guest on another host.
"""

import pytest

from saltext_xen import saltglue

OTHER = {"xen2": {"vm09": {"uuid": "6e3e1f6a-6a4e-4b5b-9d3c-0a1b2c3d4e5f", "state": "running"}}}


@pytest.fixture
def asked(monkeypatch):
    calls = []

    def mine_guests(salt_funcs, context, run):
        calls.append(run is not None)
        return OTHER

    monkeypatch.setattr(saltglue, "mine_guests", mine_guests)
    return calls


def _run(states, fn, name, **kwargs):
    return dict(getattr(states.xen_guest, fn)(name, **kwargs).full_return)


@pytest.mark.parametrize("test", [True, False])
def test_a_guest_another_host_runs_is_not_defined_here(states, asked, test, monkeypatch):
    monkeypatch.setitem(states.opts, "test", test)
    ret = _run(states, "running", "vm09", memory=256)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].endswith(
        "xen:guests:vm09: vm09 runs on xen2 (mine): a second copy here would share its disks; "
        "move its pillar entry or run salt-run xen.verify"
    )
    assert asked == [True]


def test_a_guest_already_here_costs_no_mine_call(states, asked):
    assert _run(states, "running", "vm02")["result"] is True
    assert _run(states, "stopped", "vm03")["result"] is True
    assert _run(states, "defined", "vm03", memory=512)["comment"] == "vm03 is already as wanted"
    assert asked == []


def test_a_guest_no_other_host_has_is_defined(states, asked):
    ret = _run(states, "defined", "vm10", memory=256)
    assert ret["result"] is True and ret["comment"] == "vm10 was defined", ret
    assert asked == [True]
