"""One way to a bridge for every caller: NetworkManager's where it runs the NIC, else ``ip``.

A running NetworkManager that manages the NIC (the parent NIC for a VLAN) would
fight a bridge made with ``ip`` behind its back, so there the bridge is made and
taken away through NetworkManager (:mod:`saltext_xen.networks.bridge_nm`);
host-only bridges, NICs NetworkManager leaves alone and hosts without it take the
``ip`` way (:mod:`saltext_xen.networks.bridges`), with the files of
:mod:`saltext_xen.networks.bridge_persist` for reboots.

The states ``xen_net.bridge_present`` / ``bridge_absent`` and the functions
``xen_net.bridge_plan`` / ``bridge_create`` / ``bridge_delete`` all call
:func:`plan_present` / :func:`plan_absent` and then :func:`apply`, so they all
take the same way. A plan holds its ``changes`` in the states' shape,
``{key: {"old": .., "new": ..}}``: ``steps`` (the commands, as an operator reads
them) and one key per config file, its path.
"""

import shutil

from saltext_xen.core import state_pattern
from saltext_xen.core import validate as vocab
from saltext_xen.networks import bridge_nm, bridge_persist, bridges

_FILE_CHANGE = {
    "created": {"old": None, "new": "created"},
    "updated": {"old": "other content", "new": "updated"},
    "removed": {"old": "present", "new": "removed"},
}


def spec(name, nic=None, vlan=None, stp=False, forward_delay=None, mtu=None, addresses=None, dhcp=False, path=None):
    """The checked bridge from the arguments the states and functions take: ``(spec, [problem])``.

    ``path`` is the key path the problems are named by (``xen:bridges:xenbr0`` from the
    formula; default the bridge's name).
    """
    path = path or (name if isinstance(name, str) and name else "bridge")
    data = {"name": name, "nic": nic, "vlan": vlan, "stp": stp, "forward_delay": forward_delay, "mtu": mtu}
    found, problems = bridges.validate(dict(data, addresses=addresses), path=path)
    problems = vocab.Problems(problems)
    dhcp = vocab.boolean(dhcp, vocab.key_path(path, "dhcp"), problems)
    if dhcp and addresses:
        problems.add(vocab.key_path(path, "dhcp"), "give either addresses or dhcp: true, not both")
    found["dhcp"] = bool(dhcp)
    return found, list(problems)


def removal(name, force=False, restore_nic=True, dhcp=False, path=None):
    """The checked arguments of a bridge removal: ``({"name", "force", "restore_nic", "dhcp"}, [problem])``."""
    path = path or (name if isinstance(name, str) and name else "bridge")
    problems = vocab.Problems()
    found = {"name": vocab.interface_name(name, vocab.key_path(path, "name"), problems)}
    for key, value in (("force", force), ("restore_nic", restore_nic), ("dhcp", dhcp)):
        found[key] = vocab.boolean(value, vocab.key_path(path, key), problems)
    return found, list(problems)


def choose_style(persist, configured=None, os_family=None, os_major=None):
    """The persistence style and its problems: ``(style or None, [problem])``.

    ``persist`` is the argument (``false``: live only; None/``true``/``auto``: what
    ``configured`` says, the pillar/config ``xen:network:persist``, else the usual one
    for ``os_family`` and its release).
    """
    if persist is False:
        return None, []
    if persist in (None, True, "auto"):
        persist = configured
    if persist in (None, True, "", "auto"):
        persist = bridge_persist.style_for(os_family, os_major)
        if persist is None:
            return None, [
                f"persist: no known network configuration style for os_family {os_family!r}; set persist to "
                f"one of {', '.join(bridge_persist.STYLES)} or to false"
            ]
    if persist not in bridge_persist.STYLES:
        return None, [f"persist: expected one of {', '.join(bridge_persist.STYLES)} or false, got {persist!r}"]
    return persist, []


def read_nm(runner, netns=None):
    """What NetworkManager has (see :func:`saltext_xen.networks.bridge_nm.read`); None without nmcli."""
    return bridge_nm.read(runner, netns) if shutil.which("nmcli") else None


def file_changes(pending):
    """``{path: "created"|"updated"|"removed"}`` as changes: ``{path: {"old": .., "new": ..}}``."""
    return {path: dict(_FILE_CHANGE[what]) for path, what in sorted(pending.items())}


def _changes(steps, pending):
    changes = {"steps": {"old": None, "new": bridges.describe(steps)}} if steps else {}
    changes.update(file_changes(pending))
    return changes


def _files_text(pending):
    return ", ".join(sorted(pending))


def timeout_for(spec):
    """Seconds to wait for a bridge to forward: twice the forward delay plus 5 with STP, else 5."""
    return 2 * spec["forward_delay"] + 5 if spec["stp"] else 5


def plan_present(runner, spec, netns=None, style=None, dhcp=False, root="/"):
    """What it takes to have bridge ``spec`` (validated by :func:`bridges.validate`) now and, with a
    ``style``, after a reboot; the NetworkManager way where it manages the NIC, else ``ip``.

    Returns ``{"way", "spec", "changes", "steps", "words", "warnings", ...}``: ``changes`` is
    empty when there is nothing to do, ``words`` says what is done ("created over eth0 in
    5 steps and kept across reboots in ..."). Raises :class:`bridges.BridgeError` when the
    wish cannot be met.
    """
    state = bridges.read(runner, netns)
    nm = read_nm(runner, netns) if spec["nic"] else None
    plan = {"kind": "present", "spec": spec, "style": style, "root": root, "warnings": [], "files": {}}
    if bridge_nm.manages(nm, spec):
        # dhcp None: a bridge over a NIC on DHCP asks DHCP too, instead of freezing today's lease
        keyfiles = bridge_nm.keyfiles(state, spec, dhcp=dhcp or None, persist=bool(style), nm=nm)
        plan["nmplan"] = bridge_nm.plan(state, nm, spec, keyfiles, root)
        plan.update(way="networkmanager", steps=plan["nmplan"]["steps"], pending=plan["nmplan"]["file_changes"])
    else:
        plan.update(way="ip", steps=bridges.plan(state, spec), pending={})
        if style:
            keep = dict(spec)
            gw4, gw6 = bridges.gateways_after(state, spec)
            keep["addresses"] = [a for a in bridges.addresses_after(state, spec) if not (dhcp and ":" not in a)]
            plan["files"] = bridge_persist.render(style, keep, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp)
            plan["pending"] = bridge_persist.pending(plan["files"], root)
            plan["warnings"] = bridge_persist.conflicts(style, spec, root)
    plan["changes"] = _changes(plan["steps"], plan["pending"])
    exists = spec["name"] in state["links"]
    over = f" over {bridges.nic_of(spec)}" if spec["nic"] else " (host-only)"
    words = []
    if plan["steps"]:
        words.append(
            f"{'adjusted' if exists else 'created' + over} in {len(plan['steps'])} steps"
            + (" through NetworkManager" if plan["way"] == "networkmanager" else "")
        )
    if plan["pending"]:
        words.append(
            f"kept across reboots in {_files_text(plan['pending'])}"
            if style
            else f"known to NetworkManager until the next boot from {_files_text(plan['pending'])}"
        )
    plan["words"] = " and ".join(words)
    return plan


def plan_absent(runner, name, netns=None, guests=(), force=False, style=None, root="/", restore_nic=True, dhcp=False):
    """What it takes to have bridge ``name`` gone, now and (with a ``style``) after a reboot;
    through NetworkManager where it runs the bridge, else ``ip``. ``guests`` (from libvirt)
    and guest ports on the bridge make it refuse unless ``force``.

    Returns the plan as :func:`plan_present` does; ``words(tense)`` of the NetworkManager way
    also says which connection the NIC goes back on.
    """
    state = bridges.read(runner, netns)
    nm = read_nm(runner, netns)
    plan = {"kind": "absent", "name": name, "style": style, "root": root, "warnings": []}
    if bridge_nm.manages_bridge(nm, state, name, root):
        rmplan = bridge_nm.plan_remove(
            state,
            nm,
            name,
            guests=guests,
            force=force,
            root=root,
            restore_nic=restore_nic,
            dhcp=dhcp,
            persist=bool(style),
        )
        plan.update(way="networkmanager", rmplan=rmplan, steps=rmplan["steps"], pending=rmplan["file_changes"])
    else:
        plan.update(way="ip", steps=bridges.plan_remove(state, name, guests=guests, force=force))
        nics = (bridges.bridges(state).get(name) or {}).get("nics") or []
        paths, nic_files = [], {}
        if style:
            for nic in nics or [None]:
                paths += [p for p in bridge_persist.owned_paths(style, name, nic) if p not in paths]
            if restore_nic and nics and not bridge_persist.configured_elsewhere(style, nics[0], root):
                gw4, gw6 = bridges.gateways_after(state, {"name": name, "nic": None})
                addrs = [a for a in state["addrs"].get(name, []) if not (dhcp and ":" not in a)]
                nic_files = bridge_persist.render_nic(
                    style, nics[0], name, addrs, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp
                )
        plan["gone"] = [p for p in bridge_persist.existing(paths, root) if p not in nic_files]
        plan["files"] = nic_files
        plan["pending"] = dict.fromkeys(plan["gone"], "removed")
        plan["pending"].update(bridge_persist.pending(nic_files, root))
    plan["changes"] = _changes(plan["steps"], plan["pending"])
    return plan


def absent_words(plan, tense="was"):
    """What :func:`plan_absent`'s plan does, in words: ``removed through NetworkManager (eth0 is back ...)``."""
    steps, pending = plan["steps"], plan["pending"]
    text = "removed"
    if plan["way"] == "networkmanager":
        text += " through NetworkManager" if steps else ""
        back = plan["rmplan"]["original"]
        if back and steps:
            verb = "is" if tense == "was" else "would be"
            text += f" ({plan['rmplan']['port']} {verb} back on its connection '{back['name']}')"
    return text + (f" and its config files changed ({_files_text(pending)})" if pending else "")


def _nm_reload(runner, style, root):
    """Tell a running NetworkManager about changed keyfiles (it reads them only on reload or boot)."""
    if style == "nm-keyfile" and root in ("/", "", None) and shutil.which("nmcli"):
        runner(["nmcli", "connection", "reload"])


def _without_files(changes):
    return {key: value for key, value in changes.items() if key == "steps"}


def apply(plan, runner, netns=None, timeout=None):
    """Carry out a plan of :func:`plan_present` or :func:`plan_absent`; returns the steps done.

    Raises :class:`bridges.BridgeError` when nothing was changed in the end (a step failed
    and all was rolled back), or :class:`state_pattern.Failed` with what happened when the
    live part worked but the config files could not be written.
    """
    root, style = plan["root"], plan["style"]
    if plan["way"] == "networkmanager":  # writes and rolls back the keyfiles itself, around nmcli
        if plan["kind"] == "present":
            wait = timeout if timeout is not None else timeout_for(plan["spec"])
            return bridge_nm.apply(plan["nmplan"], runner, netns=netns, root=root, timeout=wait)
        wait = (
            timeout if timeout is not None else (20 if plan["rmplan"]["expect"]["dhcp"] else 5)
        )  # leases take a while
        return bridge_nm.apply_remove(plan["rmplan"], runner, netns=netns, root=root, timeout=wait)
    done = []
    if plan["kind"] == "present":
        spec = plan["spec"]
        if plan["steps"]:
            done = bridges.apply(
                plan["steps"],
                runner,
                netns=netns,
                timeout=timeout if timeout is not None else timeout_for(spec),
                verify=lambda: bridges.check(bridges.read(runner, netns), spec),
            )
        if plan["pending"]:
            try:
                bridge_persist.write(plan["files"], root)
                _nm_reload(runner, style, root)
            except OSError as exc:
                raise state_pattern.Failed(
                    f"Bridge {spec['name']} is up now but its config could not be written, "
                    f"so it will not come back after a reboot: {exc}",
                    _without_files(plan["changes"]),
                ) from None
        return done
    if plan["steps"]:
        done = bridges.apply(plan["steps"], runner, netns=netns)
    try:
        bridge_persist.remove(plan["gone"], root)
        bridge_persist.write(plan["files"], root)
        if plan["pending"]:
            _nm_reload(runner, style, root)
    except OSError as exc:
        raise state_pattern.Failed(
            f"Bridge {plan['name']} is gone now but its config could not be changed, so it "
            f"may come back after a reboot: {exc}",
            _without_files(plan["changes"]),
        ) from None
    return done
