"""A ``xen:clones`` entry checked before any of its states runs, and what ``xen.clones`` makes of it.

:func:`settings` checks the arguments of one clone (the execution function's
and the state's), :func:`problems` a whole pillar entry, each problem named by
its key path in the words of :mod:`saltext_xen.core.validate`. Both read
nothing but what they are given, so they answer the same with ``test=True``
and without. :func:`formula` is what the SLS renders: every entry in the order
of its name's text (so names that YAML reads as numbers mix with the others),
its problems, its ensure and the requisites of its state.
"""

from saltext_xen.core import validate
from saltext_xen.guests import guest_spec

KNOWN = (
    "source",
    "ensure",
    "disks",
    "memory",
    "vcpus",
    "bridge",
    "crash_consistent",
    "force",
    "remove_disks",
    "timeout",
)
ENSURES = ("defined", "running", "absent")
FLAGS = ("crash_consistent", "force", "start", "remove_disks")
RENAMED = {"start": "no longer a key; say ensure: running"}


def settings(name, source, given, path=""):
    """The arguments of a clone of ``source`` named ``name``, checked: ``(values, problems)``.

    ``given`` holds any of ``disks``, ``memory``, ``vcpus``, ``bridge`` (None:
    the source's) and the booleans ``crash_consistent``, ``force``, ``start``
    (None: false). ``memory`` is read as under ``xen:guests`` (``1024``,
    ``"2G"``) and comes back in MiB; paths come back tidied. Problems are
    named ``<path>:<key>`` (``path`` is where the arguments came from, such as
    ``xen:clones:newvm03``), the new name's by ``path`` itself.
    """
    found = validate.Problems()
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        found.expected(path or "name", f"a guest name (a name of digits is quoted: '{name}')", name)
    else:
        validate.guest_name(name, path or "name", found)
    where = validate.key_path(path, "source")
    if not isinstance(source, str) or not source:
        found.expected(where, "the name of the guest to clone", source)
    elif validate.guest_name(source, where, found) is not None and source == name:
        found.add(where, f"a guest cannot be a clone of itself ({name})")
    values = dict.fromkeys(("disks", "memory", "vcpus", "bridge"))
    for key in ("memory", "vcpus"):
        if given.get(key) is not None:
            values[key] = guest_spec.LEADER_CHECKS[key](given[key], validate.key_path(path, key), found)
    if given.get("bridge") is not None:
        values["bridge"] = validate.interface_name(given["bridge"], validate.key_path(path, "bridge"), found)
    if given.get("disks") is not None:
        values["disks"] = _disks(given["disks"], validate.key_path(path, "disks"), found)
    for key in FLAGS:
        if key in given:
            value = given[key]
            values[key] = False if value is None else validate.boolean(value, validate.key_path(path, key), found)
    return values, list(found)


def _disks(disks, path, found):
    """``{target: path}`` of the copies, each target a disk name and each path absolute."""
    disks = validate.mapping(disks, path, found, "a mapping of disk targets to paths (xvda: /srv/xen/NAME.img)")
    checked = {}
    for target, where in (disks or {}).items():
        at = validate.key_path(path, target)
        if not isinstance(target, str) or guest_spec.target_index(target) is None:
            found.add(at, "not a disk target (expected a name like xvda, hda, sda or vdb)")
            continue
        checked[target] = validate.absolute_path(where, at, found)
    return checked


def guest_state(entry, default):
    """The state ``xen.guests`` makes of a ``xen:guests`` entry: its ensure, or ``"checked"`` for
    an entry it refuses instead (not a mapping, or an ensure that is none of its words)."""
    entry = {} if entry is None else entry
    if not isinstance(entry, dict):
        return "checked"
    ensure = entry.get("ensure", default)
    ensure = ensure.lower() if isinstance(ensure, str) else ensure
    return ensure if ensure in guest_spec.ENSURES else "checked"


def _ensure(entry, default):
    """An entry's ensure in its documented spelling, or None when it is not one of :data:`ENSURES`."""
    value = entry.get("ensure", default) if isinstance(entry, dict) else None
    return validate.choice(value, "", validate.Problems(), ENSURES)


def problems(name, entry, clones=None, guests=None, ensure="defined", guest_ensure="running"):
    """Every problem with the ``xen:clones`` entry ``name``, each named by its key path; ``[]`` when none.

    ``clones`` and ``guests`` are pillar ``xen:clones`` and ``xen:guests`` (for
    the source's and the name's place in them), ``ensure`` and
    ``guest_ensure`` the formula's defaults (``xen:ensure:clones``,
    ``xen:ensure:guests``).
    """
    clones = clones if isinstance(clones, dict) else {}
    guests = guests if isinstance(guests, dict) else {}
    path = validate.key_path("xen", "clones", name)
    found = validate.Problems()
    entry = validate.mapping(entry, path, found, "a mapping with at least source: GUEST")
    if entry is None:
        return list(found)
    for key, words in RENAMED.items():
        if key in entry:
            found.add(validate.key_path(path, key), words)
    validate.unknown_keys({k: v for k, v in entry.items() if k not in RENAMED}, KNOWN, path, found)
    where = validate.key_path(path, "ensure") if "ensure" in entry else "xen:ensure:clones"
    wanted = validate.choice(entry.get("ensure", ensure), where, found, ENSURES)
    given = {key: entry[key] for key in KNOWN if key in entry and key not in ("source", "ensure", "timeout")}
    found.extend(settings(name, entry.get("source"), given, path)[1])
    if entry.get("timeout") is not None:
        validate.integer(entry["timeout"], validate.key_path(path, "timeout"), found, minimum=1)
    source = entry.get("source")
    if isinstance(source, str) and source and source != name:
        found.extend(_source_problems(name, source, clones, guests, ensure, guest_ensure))
    if name in guests and guest_state(guests[name], guest_ensure) == "absent" and wanted != "absent":
        found.add(path, f"xen:guests:{name}:ensure: absent removes the guest this clone makes")
    return list(found)


def _source_problems(name, source, clones, guests, ensure, guest_ensure):
    """A source that ``xen:guests`` or ``xen:clones`` removes, or a chain of clones back to ``name``."""
    where = validate.key_path("xen", "clones", name, "source")
    if source in guests and guest_state(guests[source], guest_ensure) == "absent":
        return [f"{where}: {source} is removed by xen:guests:{source}:ensure: absent"]
    if source in clones and _ensure(clones[source], ensure) == "absent":
        return [f"{where}: {source} is removed by xen:clones:{source}:ensure: absent"]
    at, seen = source, set()
    while at in clones and isinstance(clones[at], dict) and at not in seen:
        seen.add(at)
        at = clones[at].get("source")
        if at == name:
            return [f"{where}: {source} is itself (through xen:clones) a clone of {name}"]
    return []


def _guest_requisite(gname, guests, guest_ensure):
    state = guest_state(guests[gname], guest_ensure)
    return {"test" if state == "checked" else "xen_guest": f"xen-guest-{gname}-{state}"}


def _requisites(name, source, refused, guests, guest_ensure):
    """``(require, require_in)`` of the state of clone ``name`` (``refused``: every entry's problems)."""
    require, require_in = [], []
    if source in guests:
        require.append(_guest_requisite(source, guests, guest_ensure))
    elif source in refused:
        word, end = ("test", "checked") if refused[source] else ("xen_guest", "cloned")
        require.append({word: f"xen-clone-{source}-{end}"})
    if name in guests:
        require_in.append(_guest_requisite(name, guests, guest_ensure))
    return require, require_in


def formula(clones, guests=None, ensure="defined", guest_ensure="running"):
    """What ``xen.clones`` renders of pillar ``xen:clones`` (and ``xen:guests``).

    ``{"problems": [...], "clones": [...], "include_guests": bool}``: the
    section's own problems (not a mapping), then one item per entry in the
    order of its name's text, ``{"name", "path", "problems", "ensure",
    "require", "require_in"}``. A clone requires its source's guest state
    when the source is in ``xen:guests``, else its source's clone state (or
    the source entry's refusal), and is required by the guest state of its
    own name. ``include_guests``: some clone waits for a state of
    ``xen.guests``.
    """
    found = validate.Problems()
    what = "a mapping of new guest names to clone settings (source, disks, ...)"
    clones = validate.mapping(clones, "xen:clones", found, what)
    if clones is None:
        return {"problems": list(found), "clones": [], "include_guests": False}
    guests = guests if isinstance(guests, dict) else {}
    names = sorted(clones, key=lambda key: (str(key), type(key).__name__))
    refused = {name: problems(name, clones[name], clones, guests, ensure, guest_ensure) for name in names}
    items, include = [], False
    for name in names:
        item = {"name": name, "path": validate.key_path("xen", "clones", name), "problems": refused[name]}
        item.update(ensure=None, require=[], require_in=[])
        if not refused[name]:
            item["ensure"] = _ensure(clones[name], ensure)
            source = clones[name]["source"]
            include = include or source in guests or name in guests
            if item["ensure"] != "absent":
                item["require"], item["require_in"] = _requisites(name, source, refused, guests, guest_ensure)
        items.append(item)
    return {"problems": [], "clones": items, "include_guests": include}
