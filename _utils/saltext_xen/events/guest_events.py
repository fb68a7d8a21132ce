"""Guest state changes as events: what watching ``xm list`` and the xendomains script did.

A *snapshot* maps guest names to the operator's state word (``running``,
``paused``, ``shutoff``, ``crashed``, ...). Two snapshots taken one beacon
interval apart are diffed into changes, and each change becomes one event
``xen/guest/NAME/STATE``. A guest that appears or disappears between two
snapshots changes from or to ``absent``.

``read_states`` is the only function here that talks to libvirt: one list call
plus one state call per guest. Everything else is plain data, tested alone.
"""

try:
    import libvirt
except ImportError:  # pragma: no cover - the Salt layer's __virtual__ reports it
    libvirt = None

from saltext_xen.guests import lifecycle

TAG_PREFIX = "xen/guest"
ABSENT = "absent"
# The words an event's state can take (the tag's last part, data "new"/"old").
STATES = ("running", "paused", "shutting down", "shutoff", "crashed", "suspended", "nostate", "unknown", ABSENT)
# Salt's own beacon options, accepted next to ours.
SALT_OPTIONS = ("interval", "enabled", "run_once", "disable_during_state_run", "beacon_module", "_beacon_name")
OPTIONS = ("states", "guests", "emit_at_start")


def read_states(conn):
    """``({name: state word}, {name: domain})`` for every guest, in one pass.

    A guest that vanishes between the list and its state call is left out
    (it will show as ``absent`` if it stays away).
    """
    states, doms = {}, {}
    for dom in conn.listAllDomains():
        try:
            state, reason = dom.state()[:2]
        except libvirt.libvirtError:
            continue
        name = dom.name()
        states[name] = lifecycle.word_of(state, reason)
        doms[name] = dom
    return states, doms


def autostart_reader(doms):
    """A callable name -> autostart mark for the domains of ``read_states`` (False if the guest went away)."""

    def ask(name):
        try:
            return bool(doms[name].autostart())
        except (KeyError, libvirt.libvirtError):
            return False

    return ask


def diff(old, new):
    """Changes between two snapshots, sorted by name: ``[(name, old word, new word)]``.

    ``old`` None means there is no earlier snapshot: nothing has changed yet.
    """
    if old is None:
        return []
    changes = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, ABSENT), new.get(name, ABSENT)
        if before != after:
            changes.append((name, before, after))
    return changes


def tag(name, state):
    """``xen/guest/NAME/STATE`` (a space in a state word becomes ``_``)."""
    return f"{TAG_PREFIX}/{name}/{state.replace(' ', '_')}"


def events(changes, autostart_of, restart=()):
    """One event per change, as Salt beacons return them: ``[{"tag": .., ...data}]``.

    autostart_of
        callable name -> bool (asked only for guests that changed and still exist)
    restart
        names the operator wants restarted after a crash even without autostart
        (pillar ``xen:reactor:restart``)

    Each event's data: ``name``, ``old``, ``new``, ``autostart`` and ``restart``
    (autostart or listed: what the crash reactor acts on).
    """
    restart = {restart} if isinstance(restart, str) else set(restart or ())
    out = []
    for name, old, new in changes:
        autostart = False if new == ABSENT else bool(autostart_of(name))
        out.append(
            {
                "tag": tag(name, new),
                "name": name,
                "old": old,
                "new": new,
                "autostart": autostart,
                "restart": autostart or name in restart,
            }
        )
    return out


def wanted(event_list, states=None, names=None):
    """Only the events whose new state is in ``states`` and guest in ``names`` (None = all)."""
    return [
        ev for ev in event_list if (states is None or ev["new"] in states) and (names is None or ev["name"] in names)
    ]


def validate_config(config):
    """Problems in a beacon config (Salt's list of one-key dicts), as a list of plain sentences.

    Options: ``states`` (list of state words to report, default all),
    ``guests`` (list of guest names to watch, default all), ``emit_at_start``
    (report every guest's state on the first pass, default False).
    """
    if not isinstance(config, list):
        return ["the configuration must be a list of options, like '- interval: 10'"]
    problems = []
    merged = {}
    for i, item in enumerate(config):
        if not isinstance(item, dict):
            problems.append(f"item {i}: expected an option like '- states: [crashed]', got {item!r}")
            continue
        merged.update(item)
    for key, value in merged.items():
        if key in SALT_OPTIONS:
            continue
        if key not in OPTIONS:
            problems.append(f"{key}: unknown option; known are {', '.join(OPTIONS + SALT_OPTIONS[:4])}")
        elif key == "emit_at_start":
            if not isinstance(value, bool):
                problems.append(f"emit_at_start: expected true or false, got {value!r}")
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{key}: expected a list of names, got {value!r}")
        elif key == "states":
            bad = [v for v in value if v not in STATES]
            if bad:
                problems.append(f"states: unknown state {', '.join(map(repr, bad))}; known are {', '.join(STATES)}")
    return problems


def merged_config(config):
    """The beacon's list of one-key dicts as one dict."""
    merged = {}
    for item in config or ():
        if isinstance(item, dict):
            merged.update(item)
    return merged


def first_pass(states):
    """Changes reported on the first pass with ``emit_at_start``: every guest from ``absent``."""
    return diff({}, states)
