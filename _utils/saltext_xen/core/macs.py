"""MAC address policy: parse, validate, and make host-unique addresses.

Xen's OUI is ``00:16:3e``; a clone keeps its source's first three octets (the
vendor prefix) and gets new low bytes, as operators did by hand.
"""

import random
import re

XEN_OUI = "00:16:3e"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalise(mac):
    """Lower-case, colon-separated form of ``mac`` (accepts ``-`` separators)."""
    return str(mac).strip().lower().replace("-", ":")


def problem(mac):
    """Why ``mac`` is not usable for a guest NIC, or None when it is fine."""
    norm = normalise(mac)
    if not _MAC.match(norm):
        return f"expected a MAC like 00:16:3e:12:34:56, got '{mac}'"
    if int(norm[:2], 16) & 1:
        return f"'{mac}' is a multicast address (lowest bit of the first octet is set)"
    if norm == "00:00:00:00:00:00":
        return f"'{mac}' is the all-zero address"
    return None


def generate(prefix=XEN_OUI, taken=(), rng=None):
    """A new MAC starting with ``prefix`` (first three octets) not in ``taken``."""
    rng = rng or random.SystemRandom()
    prefix = normalise(prefix)[:8]
    taken = {normalise(m) for m in taken}
    for _ in range(10000):
        low = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        mac = f"{prefix}:{low}"
        if mac not in taken:
            return mac
    raise RuntimeError(f"no free MAC left under {prefix}")


def keep_vendor(mac, taken=(), rng=None):
    """A new MAC with the same vendor prefix (first three octets) as ``mac``."""
    return generate(prefix=normalise(mac)[:8], taken=taken, rng=rng)
