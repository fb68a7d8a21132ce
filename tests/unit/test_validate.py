"""The validation vocabulary: what an operator sees when a key is wrong."""

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saltext_xen.core import validate
from saltext_xen.core.errors import XenError

P = "xen:guests:vm02"


def run(checker, value, *args, **kwargs):
    problems = validate.Problems()
    got = checker(value, "k", problems, *args, **kwargs)
    return got, problems


def only(checker, value, *args, **kwargs):
    """The one problem ``value`` gives, without its key path."""
    got, problems = run(checker, value, *args, **kwargs)
    assert got is None
    assert len(problems) == 1, problems
    return problems[0].removeprefix("k: ")


# ---------------------------------------------------------------- problems and key paths


def test_key_path_joins_parts_with_colons_and_list_indexes():
    assert validate.key_path("xen", "guests", "vm02", "disks", 0, "size") == "xen:guests:vm02:disks:0:size"
    assert validate.key_path(P, "memory") == "xen:guests:vm02:memory"
    assert validate.key_path("", "force") == "force"


def test_every_problem_is_raised_at_once_each_on_its_own_line():
    problems = validate.Problems()
    validate.size_mib("5l2", validate.key_path(P, "memory"), problems)
    validate.boolean("no", validate.key_path(P, "remove_disks"), problems)
    validate.integer(0, validate.key_path(P, "timeout"), problems, minimum=1)
    with pytest.raises(validate.InvalidSpec) as err:
        problems.raise_if_any()
    assert isinstance(err.value, XenError)
    assert str(err.value).splitlines() == [
        "xen:guests:vm02:memory: expected a size in MiB like 512, 512M or 2G, got '5l2'",
        "xen:guests:vm02:remove_disks: expected true or false, got 'no'",
        "xen:guests:vm02:timeout: expected a whole number of at least 1, got 0",
    ]
    assert err.value.problems == list(problems)


def test_no_problem_raises_nothing():
    validate.Problems().raise_if_any()


def test_check_runs_one_check_alone():
    assert validate.check("2G", validate.size_bytes) == 2 * 1024**3
    with pytest.raises(validate.InvalidSpec, match=r"^timeout: expected a whole number of at least 1, got '-3'$"):
        validate.check("-3", validate.integer, "timeout", minimum=1)


# ---------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    "value, want", [(True, True), (False, False), ("true", True), ("False", False), (" TRUE ", True)]
)
def test_booleans_are_true_or_false_only(value, want):
    assert run(validate.boolean, value) == (want, [])


@pytest.mark.parametrize("value", ["no", "yes", "1", "0", "on", "off", "sometimes", "", 1, 0, None, [], {}])
def test_ambiguous_booleans_are_refused(value):
    assert only(validate.boolean, value) == f"expected true or false, got {validate.describe(value)}"


def test_remove_disks_no_as_a_string_is_refused_not_taken_as_true():
    problems = validate.Problems()
    assert validate.boolean("no", "xen:guests:vm02:remove_disks", problems) is None
    assert problems == ["xen:guests:vm02:remove_disks: expected true or false, got 'no'"]


# ---------------------------------------------------------------- integers, text, choices


def test_integers_with_ranges():
    assert run(validate.integer, 30, minimum=1) == (30, [])
    assert run(validate.integer, " 30 ", minimum=1) == (30, [])
    assert only(validate.integer, 0, minimum=1) == "expected a whole number of at least 1, got 0"
    assert only(validate.integer, 9, minimum=1, maximum=8) == "expected a whole number from 1 to 8, got 9"
    assert only(validate.integer, 5, maximum=4, what="vcpus") == "expected vcpus of at most 4, got 5"
    assert only(validate.integer, True) == "expected a whole number, got True"
    assert only(validate.integer, 2.5) == "expected a whole number, got 2.5"
    assert only(validate.integer, "30s") == "expected a whole number, got '30s'"
    # only ASCII digits, spaces and tabs: int() itself takes other digits and refuses other spaces
    assert only(validate.integer, "0\x1f") == "expected a whole number, got '0\\x1f'"
    assert only(validate.integer, "\u0663") == "expected a whole number, got '\u0663'"


def test_text():
    assert run(validate.text, "console=hvc0") == ("console=hvc0", [])
    assert run(validate.text, 42) == ("42", [])
    assert only(validate.text, "  ") == "expected text, got '  '"
    assert only(validate.text, ["a"]) == "expected text, got a list"
    assert run(validate.text, "", allow_empty=True) == ("", [])


def test_choices_ignore_case_and_give_the_canonical_spelling():
    assert run(validate.choice, "Running", choices=("running", "stopped")) == ("running", [])
    assert only(validate.choice, "up", choices=("running", "stopped")) == "expected one of running, stopped, got 'up'"
    assert only(validate.choice, None, choices=("running", "stopped")) == "expected one of running, stopped, got None"


# ---------------------------------------------------------------- sizes

GIB = 1024**3


@pytest.mark.parametrize(
    "value, nbytes",
    [
        (512, 512 * 1024**2),  # a bare number is MiB
        ("512", 512 * 1024**2),
        (1.5, 3 * 512 * 1024),
        ("2G", 2 * GIB),
        ("2g", 2 * GIB),
        ("2GiB", 2 * GIB),
        ("2 gib", 2 * GIB),
        ("2GB", 2 * 1000**3),
        ("2TB", 2 * 1000**4),  # the tutorial's 2 TB disk, as the disk vendor means it
        ("2T", 2 * 1024**4),
        ("2TiB", 2 * 1024**4),
        ("1.5G", 3 * 512 * 1024**2),
        ("4096B", 4096),
        ("4k", 4096),
        ("4KB", 4000),
        ("1P", 1024**5),
        ("0", 0),
    ],
)
def test_size_grammar_has_one_meaning(value, nbytes):
    assert validate.to_bytes(value) == nbytes


@pytest.mark.parametrize(
    "value", ["5l2", "2X", "2 G B", "-1G", "G", "", True, None, [], float("inf"), "0.5B", "\u0663G"]
)
def test_bad_sizes_name_the_value(value):
    with pytest.raises(ValueError, match="expected a"):
        validate.to_bytes(value)


def test_size_bytes_and_its_limits():
    assert run(validate.size_bytes, "10G") == (10 * GIB, [])
    assert only(validate.size_bytes, "0") == "expected a size of more than 0 bytes, got '0'"
    assert only(validate.size_bytes, "1M", minimum=GIB) == "expected a size of at least 1GiB, got '1M'"
    assert only(validate.size_bytes, "3T", maximum=2 * 1024**4) == "expected a size of at most 2TiB, got '3T'"
    assert only(validate.size_bytes, "2 parsecs") == (
        "expected a size like 20G, 512M or 2TiB (a bare number is MiB), got '2 parsecs'"
    )


def test_size_mib_for_memory():
    assert run(validate.size_mib, 512) == (512, [])
    assert run(validate.size_mib, "2G") == (2048, [])
    assert run(validate.size_mib, "2GiB") == (2048, [])
    assert only(validate.size_mib, "5l2") == "expected a size in MiB like 512, 512M or 2G, got '5l2'"
    assert only(validate.size_mib, "5l2", what="MiB as an integer") == "expected MiB as an integer, got '5l2'"
    assert only(validate.size_mib, 0) == "expected a number of MiB of at least 1, got 0"
    assert only(validate.size_mib, "2GB") == (
        "expected a whole number of MiB, got '2GB' (2000000000 bytes; "
        "KB, MB, GB and TB are powers of 1000, K, M, G and T of 1024)"
    )


def test_format_size_is_exact_and_short():
    assert validate.format_size(2 * 1024**4) == "2TiB"
    assert validate.format_size(512 * 1024**2) == "512MiB"
    assert validate.format_size(2 * 1000**4) == "1953125000KiB"
    assert validate.format_size(1000) == "1000B"
    assert validate.format_size(0) == "0B"


@given(st.integers(min_value=0, max_value=2**62))
def test_size_round_trip_through_format(nbytes):
    assert validate.to_bytes(validate.format_size(nbytes)) == nbytes


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(sorted(validate.SIZE_UNITS)),
    st.booleans(),
    st.sampled_from(["", " "]),
)
def test_every_unit_in_any_case_means_its_factor(amount, unit, upper, space):
    spelled = unit.upper() if upper else unit
    assert validate.to_bytes(f"{amount}{space}{spelled}") == amount * validate.SIZE_UNITS[unit]


@given(st.integers(min_value=1, max_value=2**20), st.sampled_from(["k", "m", "g", "t"]))
def test_binary_and_iec_spellings_agree(amount, letter):
    assert validate.to_bytes(f"{amount}{letter}") == validate.to_bytes(f"{amount}{letter}iB")


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("value", ["vm02", "newvm03", "web.example.com", "db_1", "a+b", "x" * 64])
def test_guest_names(value):
    assert run(validate.guest_name, value) == (value, [])


def test_bad_guest_names_say_what_is_wrong():
    assert only(validate.guest_name, "-rf") == "expected a guest name starting with a letter or digit, got '-rf'"
    assert only(validate.guest_name, ".hidden") == (
        "expected a guest name starting with a letter or digit, got '.hidden'"
    )
    assert only(validate.guest_name, "vm 02/x") == (
        "expected a guest name of letters, digits and _ . + -, got 'vm 02/x' (' ' '/' not allowed)"
    )
    assert only(validate.guest_name, "x" * 65).endswith("at most 64 characters, got '" + "x" * 65 + "' (65)")
    assert only(validate.guest_name, 42) == "expected a guest name, got 42"
    assert only(validate.guest_name, "") == "expected a guest name, got ''"


def test_bridge_names_are_linux_interface_names():
    assert run(validate.interface_name, "xenbr0") == ("xenbr0", [])
    assert run(validate.interface_name, "br-" + "x" * 12) == ("br-" + "x" * 12, [])
    assert only(validate.interface_name, "xenbr-too-long-1") == (
        "expected a bridge name of at most 15 characters, got 'xenbr-too-long-1' (16)"
    )
    assert only(validate.interface_name, "eth0:1") == (
        "expected a bridge name of letters, digits and _ . -, got 'eth0:1' (':' not allowed)"
    )
    assert only(validate.interface_name, "-x") == "expected a bridge name starting with a letter or digit, got '-x'"


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "value, want",
    [
        ("/srv/xen/vm02.img", "/srv/xen/vm02.img"),
        ("//srv//xen/./vm02.img", "/srv/xen/vm02.img"),
        ("/srv/xen/", "/srv/xen"),
        ("/dev/vg0/vm02-disk", "/dev/vg0/vm02-disk"),
    ],
)
def test_absolute_paths_are_normalised(value, want):
    assert run(validate.absolute_path, value) == (want, [])


def test_bad_paths_are_refused():
    assert only(validate.absolute_path, "vm02.img") == "expected an absolute path (starting with /), got 'vm02.img'"
    assert only(validate.absolute_path, "/srv/../etc/shadow") == (
        "expected an absolute path without '..' components, got '/srv/../etc/shadow'"
    )
    assert only(validate.absolute_path, "/srv/a\x00b") == (
        "expected an absolute path without NUL or other control characters, got '/srv/a\\x00b'"
    )
    assert only(validate.absolute_path, "/srv/a\nb").startswith("expected an absolute path without NUL")
    assert only(validate.absolute_path, None) == "expected an absolute path, got None"


# ---------------------------------------------------------------- MACs, addresses, networks


def test_macs_reuse_the_mac_policy():
    assert run(validate.mac, "00-16-3E-12-34-56") == ("00:16:3e:12:34:56", [])
    assert only(validate.mac, "00:16:3e:12:34") == "expected a MAC like 00:16:3e:12:34:56, got '00:16:3e:12:34'"
    assert "multicast" in only(validate.mac, "01:00:5e:00:00:01")
    assert only(validate.mac, 42) == "expected a MAC like 00:16:3e:12:34:56, got 42"


def test_ip_addresses():
    assert run(validate.ip_address, "192.168.100.1") == ("192.168.100.1", [])
    assert run(validate.ip_address, "2001:db8:0::1") == ("2001:db8::1", [])
    assert only(validate.ip_address, "192.168.100.256") == (
        "expected an IP address like 192.168.100.1, got '192.168.100.256'"
    )
    assert only(validate.ip_address, "2001:db8::1", version=4) == (
        "expected an IPv4 address like 192.168.100.1, got '2001:db8::1'"
    )


def test_cidrs():
    assert run(validate.cidr, "192.168.100.0/24") == ("192.168.100.0/24", [])
    assert run(validate.cidr, "192.168.100.1/24", host=True) == ("192.168.100.1/24", [])
    assert only(validate.cidr, "192.168.100.1/24") == (
        "expected an IP network like 192.168.100.0/24, got '192.168.100.1/24' "
        "(host bits are set: the network is 192.168.100.0/24)"
    )
    assert only(validate.cidr, "192.168.100.1", host=True) == (
        "expected an IP address with its prefix like 192.168.100.1/24, got '192.168.100.1'"
    )
    assert only(validate.cidr, "10.0.0.0/33") == "expected an IP network like 192.168.100.0/24, got '10.0.0.0/33'"
    assert only(validate.cidr, "fd00::/64", version=4) == (
        "expected an IPv4 network like 192.168.100.0/24, got 'fd00::/64'"
    )


# ---------------------------------------------------------------- shapes


def test_mapping_and_sequence_shapes():
    what = "a mapping of guest names to specs"
    assert only(validate.mapping, ["vm02"], what=what) == "expected a mapping of guest names to specs, got a list"
    assert run(validate.mapping, None) == ({}, [])
    assert only(validate.mapping, None, allow_none=False) == "expected a mapping of keys to values, got None"
    assert run(validate.sequence, ("a", "b")) == (["a", "b"], [])
    assert only(validate.sequence, {"a": 1}, what="a list of disks") == "expected a list of disks, got a mapping"


def test_unknown_keys_are_listed_with_the_known_ones():
    problems = validate.Problems()
    validate.unknown_keys({"memroy": 512, "vcpus": 2, "colour": "red"}, ("memory", "vcpus"), P, problems)
    assert problems == [
        "xen:guests:vm02:memroy: unknown key (did you mean memory? expected one of memory, vcpus)",
        "xen:guests:vm02:colour: unknown key (expected one of memory, vcpus)",
    ]


FORMULA_GUEST = {
    "ensure": functools.partial(validate.choice, choices=("running", "stopped", "absent")),
    "remove_disks": validate.boolean,
    "restart_on_change": validate.boolean,
    "timeout": functools.partial(validate.integer, minimum=1),
    "force": validate.boolean,
}


def test_fields_checks_the_formula_keys_of_a_guest():
    problems = validate.Problems()
    got = validate.fields(
        {"ensure": "Running", "remove_disks": "false", "timeout": "120", "force": False}, FORMULA_GUEST, P, problems
    )
    assert problems == []
    assert got == {"ensure": "running", "remove_disks": False, "timeout": 120, "force": False}


def test_fields_reports_every_wrong_formula_key():
    problems = validate.Problems()
    validate.fields(
        {"ensure": "up", "remove_disks": "no", "timeout": 0, "restart_on_chagne": True},
        FORMULA_GUEST,
        P,
        problems,
        required=("ensure", "force"),
    )
    assert problems == [
        "xen:guests:vm02:restart_on_chagne: unknown key (did you mean restart_on_change? "
        "expected one of ensure, remove_disks, restart_on_change, timeout, force)",
        "xen:guests:vm02:force: missing (this key is required)",
        "xen:guests:vm02:ensure: expected one of running, stopped, absent, got 'up'",
        "xen:guests:vm02:remove_disks: expected true or false, got 'no'",
        "xen:guests:vm02:timeout: expected a whole number of at least 1, got 0",
    ]


def test_fields_of_a_list_says_so():
    problems = validate.Problems()
    assert (
        validate.fields(["vm02"], FORMULA_GUEST, "xen:guests", problems, what="a mapping of guest names to specs")
        is None
    )
    assert problems == ["xen:guests: expected a mapping of guest names to specs, got a list"]


def test_long_values_are_shortened_in_messages():
    shown = validate.describe("x" * 500)
    assert len(shown) == 80 and shown.endswith("...")
