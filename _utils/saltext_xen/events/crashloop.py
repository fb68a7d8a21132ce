"""How often a crashed guest is started again before it is left down for a person.

The crash reactor asks the guest's host to start it after each crash. A guest
that crashes again right after every start would be started for ever; so each
host keeps, per guest, the times it started it after a crash (a small JSON file
in the minion's cache) and refuses the next restart once ``restarts`` of them
fall within ``minutes``. The refusal is the event ``xen/guest/NAME/crashloop``;
the guest stays down until a person starts it, and a start by hand
(:func:`forget`) clears the guest's record.

Pillar ``xen:reactor:crashloop`` sets the limit: ``{restarts: 3, minutes: 10}``
by default.
"""

import json
import os
import time

from saltext_xen.core import protect, validate

DEFAULTS = {"restarts": 3, "minutes": 10}
SETTING = "xen:reactor:crashloop"
HISTORY_FILE = "xen-crash-restarts.json"


def tag(name):
    """``xen/guest/NAME/crashloop``."""
    return f"xen/guest/{name}/crashloop"


def settings(data, path=SETTING):
    """The limit from pillar data: ``{"restarts": int >= 1, "minutes": int >= 1}``; InvalidSpec if wrong."""
    problems = validate.Problems()
    given = validate.fields(
        {} if data is None else data,
        {
            "restarts": lambda value, key, found: validate.integer(value, key, found, minimum=1),
            "minutes": lambda value, key, found: validate.integer(value, key, found, minimum=1),
        },
        path,
        problems,
    )
    problems.raise_if_any()
    return {**DEFAULTS, **given}


def decide(times, now, restarts, minutes):
    """``(allowed, recent)``: may the guest be restarted at ``now``, and the restart times still inside the window.

    ``times`` are the earlier restarts (epoch seconds). ``recent`` includes
    ``now`` when the restart is allowed.
    """
    recent = sorted(t for t in times if now - t < minutes * 60)
    if len(recent) >= restarts:
        return False, recent
    return True, [*recent, now]


def load(path):
    """``{guest: [restart times]}`` from the history file; empty when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        name: [float(t) for t in times if isinstance(t, (int, float))]
        for name, times in data.items()
        if isinstance(times, list)
    }


def save(path, history):
    """Write the history file whole (a temporary name, then renamed), readable by root only."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    protect.write_whole(path, json.dumps(history, sort_keys=True), overwrite=True, mode=0o600)


def record(path, name, now, limit):
    """Decide one restart of ``name`` at ``now`` and keep the result: ``(allowed, recent times)``."""
    history = load(path)
    allowed, recent = decide(history.get(name, []), now, limit["restarts"], limit["minutes"])
    history[name] = recent
    save(path, history)
    return allowed, recent


def forget(path, name):
    """Clear ``name``'s restart record (a person started it); True if there was one."""
    history = load(path)
    if history.pop(name, None) is None:
        return False
    save(path, history)
    return True


def restart(name, setting, history, start, now=None):
    """Start crashed guest ``name`` with ``start()`` unless the limit says it is in a crash loop.

    ``setting``: pillar ``xen:reactor:crashloop`` (None for the default);
    ``history``: the history file. Returns ``{"name", "started": True, "changes",
    "restarts"}`` or, past the limit, ``{"name", "started": False, "reason"}``
    (the guest is left as it is; the caller sends :func:`tag`).
    """
    limit = settings(setting)
    allowed, recent = record(history, name, time.time() if now is None else now, limit)
    if not allowed:
        reason = (
            f"{name} crashed again after {len(recent)} restarts within {limit['minutes']} minutes "
            f"(the limit of {SETTING}); it is left down for a person to look at (xen_guest.log {name}); "
            f"xen_guest.start {name} starts it and clears the count"
        )
        return {"name": name, "started": False, "reason": reason}
    return {"name": name, "started": True, "changes": start(), "restarts": len(recent)}
