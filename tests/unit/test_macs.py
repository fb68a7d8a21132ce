"""MAC policy: what is refused, and what new addresses look like."""

import random

import pytest

from saltext_xen.core import macs


@pytest.mark.parametrize(
    "mac, fragment",
    [
        ("00:16:3e:12:34", "expected a MAC like"),
        ("00:16:3e:12:34:zz", "expected a MAC like"),
        ("01:16:3e:12:34:56", "multicast"),
        ("00:00:00:00:00:00", "all-zero"),
    ],
)
def test_bad_macs_are_explained(mac, fragment):
    assert fragment in macs.problem(mac)


def test_good_macs_pass_in_any_case_or_separator():
    assert macs.problem("00-16-3E-88-76-D4") is None
    assert macs.normalise("00-16-3E-88-76-D4") == "00:16:3e:88:76:d4"


def test_generated_macs_use_the_xen_oui_and_avoid_taken_ones():
    rng = random.Random(1)
    first = macs.generate(rng=random.Random(1))
    again = macs.generate(taken=[first], rng=rng)
    assert first.startswith("00:16:3e:") and macs.problem(first) is None
    assert again != first


def test_clone_mac_keeps_the_vendor_prefix():
    new = macs.keep_vendor("00:16:36:88:76:d4", taken=["00:16:36:88:76:d4"])
    assert new.startswith("00:16:36:") and new != "00:16:36:88:76:d4"
