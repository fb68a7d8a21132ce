"""The guest spec speaks the one validation vocabulary (docs/safety.md): what a user sees."""

import pytest

from saltext_xen.guests import guest_spec


def _problems(data, name="vm02"):
    return guest_spec.validate(name, data)[1]


@pytest.mark.parametrize("word", ["yes", "no", "on", 1, 0, "1", ""])
def test_ambiguous_booleans_are_refused(word):
    assert _problems({"autostart": word}) == [f"xen:guests:vm02:autostart: expected true or false, got {word!r}"]


@pytest.mark.parametrize(("word", "value"), [(True, True), ("TRUE", True), ("false", False)])
def test_true_and_false_in_any_case(word, value):
    spec, problems = guest_spec.validate("vm02", {"autostart": word})
    assert problems == [] and spec["autostart"] is value


def test_disk_sizes_use_the_one_grammar():
    spec = guest_spec.check(
        "vm02", {"disks": [{"source": "/a.img", "size": "2TB"}, {"source": "/b.img", "size": "2T"}, "/c.img"]}
    )
    a, b, c = spec["disks"]
    assert guest_spec.disk_bytes(a) == 2 * 1000**4
    assert guest_spec.disk_bytes(b) == 2 * 1024**4 and b["size"] == 2 * 1024**2
    assert guest_spec.disk_bytes(c) is None


def test_memory_2gb_is_not_rounded():
    assert _problems({"memory": "2GB"})[0].startswith(
        "xen:guests:vm02:memory: expected a whole number of MiB, got '2GB' (2000000000 bytes"
    )
    assert guest_spec.check("vm02", {"memory": "2G", "maxmem": "2GiB"})["maxmem"] == 2048


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"disks": ["vm02.img"]}, "disks:0:source"),
        ({"disks": ["/srv/../etc/shadow"]}, "disks:0:source"),
        ({"kernel": "vmlinuz"}, "boot:kernel"),
        ({"type": "hvm", "install": {"iso": "boot.iso"}}, "install:iso"),
    ],
)
def test_paths_must_be_absolute(data, key):
    assert any(p.startswith(f"xen:guests:vm02:{key}: expected") for p in _problems(data)), _problems(data)


def test_paths_are_tidied():
    assert guest_spec.check("vm02", {"disks": ["//srv//xen/./vm02.img"]})["disks"][0]["source"] == "/srv/xen/vm02.img"


def test_a_typo_gets_a_suggestion():
    assert _problems({"memroy": 512})[0].startswith("xen:guests:vm02:memroy: unknown key (did you mean memory?")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"remove_disks": "no"}, "xen:guests:vm03:remove_disks: expected true or false, got 'no'"),
        ({"restart_on_change": "sometimes"}, "xen:guests:vm03:restart_on_change: expected true or false"),
        ({"timeout": 0}, "xen:guests:vm03:timeout: expected a whole number of at least 1, got 0"),
        ({"ensure": "gone"}, "xen:guests:vm03:ensure: expected one of running, defined, stopped, paused, absent"),
    ],
)
def test_formula_keys_are_strict(given, message):
    values, problems = guest_spec.options("vm03", given)
    assert problems and problems[0].startswith(message) and set(values) == set(given)


def test_formula_keys_come_back_normalised():
    values, problems = guest_spec.options("vm03", {"remove_disks": "True", "timeout": "30", "ensure": "Absent"})
    assert problems == [] and values == {"remove_disks": True, "timeout": 30, "ensure": "absent"}
