"""One validation vocabulary for every state, function, runner and SLS.

A caller collects every problem at once in a :class:`Problems` list, each with
its key path, then raises them together::

    problems = validate.Problems()
    path = validate.key_path("xen", "guests", "vm02")
    memory = validate.size_mib(spec.get("memory"), validate.key_path(path, "memory"), problems)
    force = validate.boolean(spec.get("force", False), validate.key_path(path, "force"), problems)
    problems.raise_if_any()        # InvalidSpec, one problem a line

    xen:guests:vm02:memory: expected a size in MiB like 512, 512M or 2G, got '5l2'

Every check takes ``(value, path, problems)`` (plus its own keywords), appends
a problem when the value is wrong and returns the normalised value, or None
when it is wrong. The rules, for users, are in ``docs/safety.md``:

- booleans are ``true``/``false`` only (Python bools, or those two words in any
  case, as Salt's CLI or a quoted Jinja value passes them); ``yes``, ``no``,
  ``on``, ``off``, ``1``, ``0`` are refused as ambiguous;
- sizes have one grammar: a bare number is MiB; ``K M G T P`` and ``KiB MiB
  GiB TiB PiB`` are binary (1024); ``KB MB GB TB PB`` are decimal (1000);
  ``B`` is bytes; the letters may be in any case;
- names are letters, digits and a few punctuation marks, start with a letter
  or digit and have a length limit (15 for Linux interface names);
- paths are absolute, without NUL or other control characters and without
  ``..`` components, and come back normalised.
"""

import difflib
import ipaddress
import math
import posixpath
import re
from fractions import Fraction

from saltext_xen.core import macs
from saltext_xen.core.errors import XenError

MIB = 1024 * 1024

SIZE_UNITS = {
    "": MIB,  # a bare number is MiB, as xl.cfg's memory= and the guest spec's disk sizes
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
    "p": 1024**5,
    "pib": 1024**5,
    "pb": 1000**5,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$", re.ASCII)
SIZE_EXAMPLES = "20G, 512M or 2TiB (a bare number is MiB)"

TRUE_WORDS = ("true",)
FALSE_WORDS = ("false",)

GUEST_NAME_MAX = 64
INTERFACE_NAME_MAX = 15  # IFNAMSIZ - 1 in Linux
_NAME_CHARS = {
    "guest": "A-Za-z0-9_.+-",
    "interface": "A-Za-z0-9_.-",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LONG = 80


class InvalidSpec(XenError):
    """Input was refused before anything was touched; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------- key paths and problems


def key_path(*parts):
    """``xen:guests:vm02:disks:0:size`` from its parts; empty parts are left out."""
    return ":".join(str(part) for part in parts if part is not None and part != "")


def describe(value):
    """How a wrong value is shown in a message: strings quoted, containers by kind."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    text = repr(value)
    if len(text) > _LONG:
        text = text[: _LONG - 3] + "..."
    return text


class Problems(list):
    """Every problem found so far, as ``<key path>: <message>`` lines."""

    def add(self, path, message):
        self.append(f"{path}: {message}" if path else message)

    def expected(self, path, what, got):
        """The house form: ``<path>: expected <what>, got <value>``."""
        self.add(path, f"expected {what}, got {describe(got)}")

    def raise_if_any(self):
        """Raise :class:`InvalidSpec` holding every problem, or do nothing."""
        if self:
            raise InvalidSpec(self)


def check(value, checker, path="", **kwargs):
    """Run one check on its own: the normalised value, or :class:`InvalidSpec`."""
    problems = Problems()
    result = checker(value, path, problems, **kwargs)
    problems.raise_if_any()
    return result


# ---------------------------------------------------------------- scalars


def boolean(value, path, problems):
    """True or False; the strings ``true``/``false`` in any case; nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    problems.expected(path, "true or false", value)
    return None


def _range_words(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""


def integer(value, path, problems, minimum=None, maximum=None, what="a whole number"):
    """An int (or a string of digits) within ``minimum``..``maximum``; never a bool."""
    wanted = what + _range_words(minimum, maximum)
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[ \t]*[-+]?[0-9]+[ \t]*", value):
        number = int(value)
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        problems.expected(path, wanted, value)
        return None
    return number


def text(value, path, problems, what="text", allow_empty=False):
    """A string (numbers are turned into one); containers, bools and None are refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        problems.expected(path, what, value)
        return None
    return value


def choice(value, path, problems, choices):
    """One of ``choices`` (compared without case); returns the spelling in ``choices``."""
    if isinstance(value, str):
        for option in choices:
            if value.strip().lower() == str(option).lower():
                return option
    problems.expected(path, "one of " + ", ".join(str(c) for c in choices), value)
    return None


# ---------------------------------------------------------------- sizes


def to_bytes(value):
    """Bytes from a size in the one grammar; ValueError with the house message otherwise.

    A bare number (int, float or string) is MiB; ``K M G T P`` and ``KiB``..
    ``PiB`` are powers of 1024, ``KB``..``PB`` powers of 1000, ``B`` is bytes::

        512 -> 512 MiB    "2G" == "2GiB" -> 2 * 1024**3    "2GB" -> 2 * 1000**3
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a size like {SIZE_EXAMPLES}, got {describe(value)}")
    if isinstance(value, int):
        amount, unit = value, ""
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a size like {SIZE_EXAMPLES}, got {describe(value)}")
        amount, unit = Fraction(repr(value)), ""
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match or match.group(2).lower() not in SIZE_UNITS:
            raise ValueError(f"expected a size like {SIZE_EXAMPLES}, got {describe(value)}")
        number = match.group(1)
        # whole numbers (the usual case) without Fraction, which is slow; int and Fraction agree on them
        amount, unit = int(number) if number.isdecimal() else Fraction(number), match.group(2).lower()
    else:
        raise ValueError(f"expected a size like {SIZE_EXAMPLES}, got {describe(value)}")
    if amount < 0:
        raise ValueError(f"expected a size like {SIZE_EXAMPLES}, got {describe(value)} (negative)")
    nbytes = amount * SIZE_UNITS[unit]
    if nbytes.denominator != 1:
        raise ValueError(f"expected a whole number of bytes, got {describe(value)}")
    return int(nbytes)


def format_size(nbytes):
    """The shortest exact text for ``nbytes`` in binary units: ``2TiB``, ``512MiB``, ``1000B``."""
    nbytes = int(nbytes)
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB"):
        factor = SIZE_UNITS[unit.lower()]
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return f"{nbytes}B"


def size_bytes(value, path, problems, minimum=1, maximum=None):
    """A size in bytes (see :func:`to_bytes`) of at least ``minimum`` bytes."""
    try:
        nbytes = to_bytes(value)
    except ValueError as exc:
        problems.add(path, str(exc))
        return None
    if nbytes < minimum:
        words = "more than 0 bytes" if minimum == 1 else f"at least {format_size(minimum)}"
        problems.expected(path, f"a size of {words}", value)
        return None
    if maximum is not None and nbytes > maximum:
        problems.expected(path, f"a size of at most {format_size(maximum)}", value)
        return None
    return nbytes


def size_mib(value, path, problems, minimum=1, maximum=None, what="a size in MiB like 512, 512M or 2G"):
    """A whole number of MiB (memory, for example); ``2GB`` is refused with the reason."""
    try:
        nbytes = to_bytes(value)
    except ValueError:
        problems.expected(path, what, value)
        return None
    if nbytes % MIB:
        problems.add(
            path,
            f"expected a whole number of MiB, got {describe(value)} ({nbytes} bytes; "
            "KB, MB, GB and TB are powers of 1000, K, M, G and T of 1024)",
        )
        return None
    mib = nbytes // MIB
    if mib < minimum or (maximum is not None and mib > maximum):
        problems.expected(path, "a number of MiB" + _range_words(minimum, maximum), value)
        return None
    return mib


# ---------------------------------------------------------------- names, paths, addresses


def name(value, path, problems, what="a guest name", max_length=GUEST_NAME_MAX, chars=_NAME_CHARS["guest"]):
    """A name from a safe character set: letters, digits, ``chars``; starts with a letter or digit."""
    if not isinstance(value, str) or not value:
        problems.expected(path, what, value)
        return None
    allowed = chars.replace("A-Za-z0-9", "")
    if len(value) > max_length:
        problems.add(path, f"expected {what} of at most {max_length} characters, got {describe(value)} ({len(value)})")
        return None
    bad = sorted(set(re.sub(f"[{chars}]", "", value)))
    if bad:
        shown = " ".join(repr(c) for c in bad)
        problems.add(
            path,
            f"expected {what} of letters, digits and {' '.join(allowed)}, got {describe(value)} ({shown} not allowed)",
        )
        return None
    if not value[0].isalnum():
        problems.add(path, f"expected {what} starting with a letter or digit, got {describe(value)}")
        return None
    return value


def guest_name(value, path, problems):
    """A guest name: letters, digits, ``_ . + -``, at most 64 characters, no leading ``-``."""
    return name(value, path, problems)


def interface_name(value, path, problems, what="a bridge name"):
    """A Linux interface name (bridges, NICs): letters, digits, ``_ . -``, at most 15 characters."""
    return name(value, path, problems, what=what, max_length=INTERFACE_NAME_MAX, chars=_NAME_CHARS["interface"])


def absolute_path(value, path, problems, what="an absolute path"):
    """An absolute path without ``..`` components or control characters, normalised."""
    if not isinstance(value, str) or not value:
        problems.expected(path, what, value)
        return None
    if _CONTROL.search(value):
        problems.add(path, f"expected {what} without NUL or other control characters, got {describe(value)}")
        return None
    if not value.startswith("/"):
        problems.add(path, f"expected {what} (starting with /), got {describe(value)}")
        return None
    if ".." in value.split("/"):
        problems.add(path, f"expected {what} without '..' components, got {describe(value)}")
        return None
    normal = posixpath.normpath(value)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    return normal


def mac(value, path, problems):
    """A unicast MAC address, lower-case and colon-separated."""
    if not isinstance(value, str):
        problems.expected(path, "a MAC like 00:16:3e:12:34:56", value)
        return None
    problem = macs.problem(value)
    if problem:
        problems.add(path, problem)
        return None
    return macs.normalise(value)


def _version_words(version):
    return {4: "an IPv4 ", 6: "an IPv6 "}.get(version, "an IP ")


def ip_address(value, path, problems, version=None):
    """An IP address (``version`` 4 or 6 to insist on one), in its compressed form."""
    what = _version_words(version) + "address like " + ("2001:db8::1" if version == 6 else "192.168.100.1")
    try:
        address = ipaddress.ip_address(value.strip() if isinstance(value, str) else None)
    except ValueError:
        problems.expected(path, what, value)
        return None
    if version and address.version != version:
        problems.expected(path, what, value)
        return None
    return str(address)


def cidr(value, path, problems, version=None, host=False):
    """A network ``192.168.100.0/24`` or, with ``host=True``, an address with its prefix ``192.168.100.1/24``."""
    example = "192.168.100.1/24" if host else "192.168.100.0/24"
    what = _version_words(version) + ("address with its prefix" if host else "network") + f" like {example}"
    if not isinstance(value, str) or "/" not in value:
        problems.expected(path, what, value)
        return None
    try:
        parsed = ipaddress.ip_interface(value.strip()) if host else ipaddress.ip_network(value.strip())
    except ValueError:
        problems.expected(path, what, value)
        if not host:
            try:
                network = ipaddress.ip_network(value.strip(), strict=False)
                problems[-1] += f" (host bits are set: the network is {network})"
            except ValueError:
                pass
        return None
    if version and parsed.version != version:
        problems.expected(path, what, value)
        return None
    return str(parsed)


# ---------------------------------------------------------------- shapes


def mapping(value, path, problems, what="a mapping of keys to values", allow_none=True):
    """A dict; None gives ``{}`` unless ``allow_none`` is False."""
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        problems.expected(path, what, value)
        return None
    return value


def sequence(value, path, problems, what="a list", allow_none=True):
    """A list (or tuple, given back as a list); None gives ``[]`` unless ``allow_none`` is False."""
    if value is None and allow_none:
        return []
    if not isinstance(value, (list, tuple)):
        problems.expected(path, what, value)
        return None
    return list(value)


def unknown_keys(data, known, path, problems):
    """One problem per key of ``data`` not in ``known``, naming the known ones."""
    known = [str(k) for k in known]
    for key in data:
        if str(key) in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        problems.add(key_path(path, key), f"unknown key ({hint}expected one of {', '.join(known)})")


def fields(data, checks, path, problems, required=(), what="a mapping of keys to values"):
    """Check a mapping key by key: ``checks`` maps each known key to a check.

    A check is called as ``check(value, key_path, problems)`` (use
    ``functools.partial`` for its keywords). Unknown keys and missing
    ``required`` keys are problems. Returns the normalised values of the keys
    given, or None when ``data`` is not a mapping.
    """
    data = mapping(data, path, problems, what=what)
    if data is None:
        return None
    unknown_keys(data, checks, path, problems)
    for key in required:
        if key not in data:
            problems.add(key_path(path, key), "missing (this key is required)")
    return {key: checks[key](value, key_path(path, key), problems) for key, value in data.items() if key in checks}
