"""States for Xen networking: bridges over physical NICs and libvirt networks.

.. code-block:: yaml

    xen-net-bridge-xenbr0-present:
      xen_net.bridge_present:
        - name: xenbr0
        - nic: eth0

    xen-net-network-virbr1-running:
      xen_net.network_running:
        - name: virbr1
        - bridge: virbr1
        - autostart: true
        - ipv4:
            address: 192.168.123.1/24
            dhcp:
              - 192.168.123.2-192.168.123.254
"""

import salt.utils.path

from saltext_xen import saltglue
from saltext_xen.core import connection, state_pattern
from saltext_xen.core.errors import XenError
from saltext_xen.networks import bridge_nm, bridge_persist, bridges, libvirt_networks
from saltext_xen.networks import network_xml as netspec

__virtualname__ = "xen_net"


def __virtual__():
    if not connection.available():
        return False, f"xen_net: {connection.MISSING_REASON}"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _conclude(ret, changes, **how):
    """Hand the planned ``changes`` to the shared state ending (nothing to do / test=True / apply)."""
    return state_pattern.conclude(ret, changes, test=__opts__["test"], errors=(XenError,), **how)


def _runner(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="quiet")


def _style(persist, problems):
    """The persistence style: the argument, else ``xen:network:persist``, else the OS family's usual one."""
    if persist is False:
        return None
    if persist in (None, True, "auto"):
        persist = __salt__["config.get"]("xen:network:persist", None)
    if persist in (None, True, "", "auto"):
        persist = bridge_persist.style_for(__grains__.get("os_family"), __grains__.get("osmajorrelease"))
        if persist is None:
            problems.append(
                f"persist: no known network configuration style for os_family "
                f"{__grains__.get('os_family')!r}; set persist to one of "
                f"{', '.join(bridge_persist.STYLES)} or to false"
            )
            return None
    if persist not in bridge_persist.STYLES:
        problems.append(f"persist: expected one of {', '.join(bridge_persist.STYLES)} or false, got {persist!r}")
        return None
    return persist


def _unknown(path, kwargs):
    """Problems for keyword arguments no state here takes (a misspelt pillar key)."""
    return [f"{path}.{key}: unknown key" for key in sorted(kwargs) if not key.startswith("__")]


def _nm_reload(style, config_root):
    """Tell a running NetworkManager about changed keyfiles (it reads them only on reload or boot)."""
    if style == "nm-keyfile" and config_root in ("/", "", None) and salt.utils.path.which("nmcli"):
        __salt__["cmd.run_all"](["nmcli", "connection", "reload"], python_shell=False, ignore_retcode=True)


def _files_text(files):
    return ", ".join(sorted(files))


def _bridge_changes(steps, file_changes):
    """The changes of a bridge state: the ``ip`` steps as an operator reads them, and the config files."""
    changes = {"steps": bridges.describe(steps)} if steps else {}
    if file_changes:
        changes["files"] = file_changes
    return changes


def _without_files(changes):
    """What happened when the live steps worked but the config files could not be written."""
    return {key: value for key, value in changes.items() if key != "files"}


# ---------------------------------------------------------------- bridges


def bridge_present(
    name,
    nic=None,
    vlan=None,
    stp=False,
    forward_delay=None,
    mtu=None,
    addresses=None,
    dhcp=False,
    persist=None,
    config_root="/",
    netns=None,
    **kwargs,
):
    """
    Bridge ``name`` exists now and after a reboot, over physical NIC ``nic`` (or
    host-only when no NIC is given).

    The NIC's addresses and default route move to the bridge in an order that
    keeps the host reachable; if a step fails or the bridge does not come up,
    all is undone and the state fails.

    name
        the bridge, like ``xenbr0``
    nic
        the physical NIC under it, like ``eth0``
    vlan
        a VLAN id: the bridge goes over the sub-interface ``NIC.VLAN``
    stp / forward_delay
        spanning tree (default off) and forward delay in seconds (default 0; 15 with STP)
    mtu
        MTU of the NIC and the bridge
    addresses
        the bridge's addresses (``[192.168.0.10/24]``); default: what the NIC has
    dhcp
        write a config that asks DHCP for the bridge's IPv4 address at boot
    persist
        how to keep it across reboots: ``ifupdown``, ``ifcfg-rhel``, ``nm-keyfile``,
        ``ifcfg-suse``, or ``false`` for a live-only bridge. Default (or ``auto``):
        pillar/config ``xen:network:persist`` (the formula sets it from
        ``map.jinja``), else the usual one for the OS family and release.
    config_root
        where ``/etc`` is (default ``/``)
    netns
        run the ``ip`` commands inside this network namespace

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.bridge_present xenbr0 nic=eth0 test=True
    """
    ret = _ret(name)
    spec, problems = bridges.validate(
        {
            "name": name,
            "nic": nic,
            "vlan": vlan,
            "stp": stp,
            "forward_delay": forward_delay,
            "mtu": mtu,
            "addresses": addresses,
        },
        path=name or "bridge",
    )
    problems = list(problems) + _unknown(f"xen:bridges:{name}", kwargs)
    if not isinstance(dhcp, bool):
        problems.append(f"{name}.dhcp: expected true or false, got {dhcp!r}")
    elif dhcp and addresses:
        problems.append(f"{name}.dhcp: give either addresses or dhcp: true, not both")
    style = _style(persist, problems)
    if problems:
        ret.update(result=False, comment="Bridge not changed, the settings have problems:\n" + "\n".join(problems))
        return ret
    nmplan = None
    try:
        state = bridges.read(_runner, netns)
        nm = bridge_nm.read(_runner, netns) if spec["nic"] and salt.utils.path.which("nmcli") else None
        if bridge_nm.manages(nm, spec):  # NetworkManager runs the NIC: keyfiles + nmcli, not ip behind its back
            # dhcp=None: a bridge over a NIC on DHCP asks DHCP too, instead of freezing today's lease
            files = bridge_nm.keyfiles(state, spec, dhcp=dhcp or None, persist=bool(style), nm=nm)
            nmplan = bridge_nm.plan(state, nm, spec, files, config_root)
            steps = nmplan["steps"]
        else:
            steps = bridges.plan(state, spec)
    except XenError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    files, file_changes, warnings = {}, {}, []
    if nmplan is not None:
        files, file_changes = nmplan["files"], nmplan["file_changes"]
    elif style:
        keep = dict(spec)
        gw4, gw6 = bridges.gateways_after(state, spec)
        keep["addresses"] = [a for a in bridges.addresses_after(state, spec) if not (dhcp and ":" not in a)]
        files = bridge_persist.render(style, keep, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp)
        file_changes = bridge_persist.pending(files, config_root)
        warnings = bridge_persist.conflicts(style, spec, config_root)
    exists = name in state["links"]
    over = f" over {bridges.port_of(spec)}" if spec["nic"] else " (host-only)"
    changes = _bridge_changes(steps, file_changes)
    what = []
    if steps:
        what.append(
            f"{'adjusted' if exists else 'created'}{'' if exists else over} in {len(steps)} steps"
            + (" through NetworkManager" if nmplan is not None else "")
        )
    if file_changes:
        what.append(
            f"kept across reboots in {_files_text(file_changes)}"
            if style
            else f"known to NetworkManager until the next boot from {_files_text(file_changes)}"
        )
    what = " and ".join(what)

    def apply():
        timeout = 2 * spec["forward_delay"] + 5 if spec["stp"] else 5
        if nmplan is not None:  # writes the keyfiles itself, before nmcli; rolls them back on failure
            bridge_nm.apply(nmplan, _runner, netns=netns, root=config_root, timeout=timeout)
            return "\n".join([f"Bridge {name} was {what}."] + warnings)
        if steps:
            bridges.apply(
                steps,
                _runner,
                netns=netns,
                timeout=timeout,
                verify=lambda: bridges.check(bridges.read(_runner, netns), spec),
            )
        if file_changes:
            try:
                bridge_persist.write(files, config_root)
                _nm_reload(style, config_root)
            except OSError as exc:
                raise state_pattern.Failed(
                    f"Bridge {name} is up now but its config could not be written, "
                    f"so it will not come back after a reboot: {exc}",
                    _without_files(changes),
                ) from None
        return "\n".join([f"Bridge {name} was {what}."] + warnings)

    return _conclude(
        ret,
        changes,
        unchanged="\n".join([f"Bridge {name} is already as wanted."] + warnings),
        would="\n".join([f"Bridge {name} would be {what}."] + warnings),
        apply=apply,
        failed=lambda exc: f"Bridge {name} was not changed: {exc}",
    )


def bridge_absent(name, force=False, persist=None, config_root="/", netns=None, restore_nic=True, dhcp=False):
    """
    Bridge ``name`` is gone now and after a reboot; its NIC gets its addresses
    and routes back. Refused while guests use it (they are named) unless ``force``.

    Where NetworkManager runs the bridge (bridge_present made it through
    NetworkManager), it goes through NetworkManager too: the NIC's own connection
    (the one it had before the bridge) comes up again first, then the bridge
    connection goes down, its keyfiles and its port's are removed and
    NetworkManager reloads. If the NIC does not get its addresses back, the
    bridge comes back and the state fails saying so.

    persist / config_root / netns
        as in ``bridge_present``; the bridge's config files there are removed
        (through NetworkManager: its keyfiles in /etc and /run, whatever ``persist`` says)
    restore_nic
        write a config that gives the NIC the bridge's addresses (and default
        route) at boot (default true); with ``ifupdown`` it is skipped when
        ``/etc/network/interfaces`` configures the NIC already; through
        NetworkManager only when the NIC has no connection of its own to go back to
    dhcp
        that config asks DHCP for the NIC's IPv4 address instead

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.bridge_absent xenbr1 test=True
    """
    ret = _ret(name)
    problems = []
    style = _style(persist, problems)
    if problems:
        ret.update(result=False, comment="\n".join(problems))
        return ret
    try:
        state = bridges.read(_runner, netns)
        guests = [] if force else libvirt_networks.guests_using(saltglue.conn_from(__salt__), name)
        nm = bridge_nm.read(_runner, netns) if salt.utils.path.which("nmcli") else None
        if bridge_nm.manages_bridge(nm, state, name, config_root):
            return _bridge_absent_nm(ret, state, nm, name, guests, force, style, config_root, netns, restore_nic, dhcp)
        steps = bridges.plan_remove(state, name, guests=guests, force=force)
    except XenError as exc:
        ret.update(result=False, comment=f"Bridge {name} was not removed: {exc}")
        return ret
    info = bridges.bridges(state).get(name)
    ports = (info or {}).get("ports") or []
    paths, nic_files = [], {}
    if style:
        for port in ports or [None]:
            paths += [p for p in bridge_persist.owned_paths(style, name, port) if p not in paths]
        if restore_nic and ports and not bridge_persist.configured_elsewhere(style, ports[0], config_root):
            gw4, gw6 = bridges.gateways_after(state, {"name": name, "nic": None})
            addrs = [a for a in state["addrs"].get(name, []) if not (dhcp and ":" not in a)]
            nic_files = bridge_persist.render_nic(
                style, ports[0], name, addrs, gateway=None if dhcp else gw4, gateway6=gw6, dhcp=dhcp
            )
    gone = [p for p in bridge_persist.existing(paths, config_root) if p not in nic_files]
    file_changes = dict.fromkeys(gone, "removed")
    file_changes.update(bridge_persist.pending(nic_files, config_root))
    changes = _bridge_changes(steps, file_changes)
    words = "removed" + (f" and its config files changed ({_files_text(file_changes)})" if file_changes else "")

    def apply():
        if steps:
            bridges.apply(steps, _runner, netns=netns)
        try:
            bridge_persist.remove(gone, config_root)
            bridge_persist.write(nic_files, config_root)
            _nm_reload(style, config_root)
        except OSError as exc:
            raise state_pattern.Failed(
                f"Bridge {name} is gone now but its config could not be changed, so it "
                f"may come back after a reboot: {exc}",
                _without_files(changes),
            ) from None
        return f"Bridge {name} was {words}."

    return _conclude(
        ret,
        changes,
        unchanged=f"Bridge {name} is already absent.",
        would=f"Bridge {name} would be {words}.",
        apply=apply,
        failed=lambda exc: f"Bridge {name} was not removed: {exc}",
    )


def _bridge_absent_nm(ret, state, nm, name, guests, force, style, config_root, netns, restore_nic, dhcp):
    """bridge_absent where NetworkManager runs the bridge: the NIC's own connection back, then the bridge goes."""
    rmplan = bridge_nm.plan_remove(
        state,
        nm,
        name,
        guests=guests,
        force=force,
        root=config_root,
        restore_nic=restore_nic,
        dhcp=dhcp,
        persist=bool(style),
    )
    steps, file_changes = rmplan["steps"], rmplan["file_changes"]
    changes = _bridge_changes(steps, file_changes)

    def words(verb):
        text = "removed" + (" through NetworkManager" if steps else "")
        if rmplan["original"] and steps:
            text += f" ({rmplan['port']} {verb} back on its connection '{rmplan['original']['name']}')"
        return text + (f" and its config files changed ({_files_text(file_changes)})" if file_changes else "")

    def apply():
        timeout = 20 if rmplan["expect"]["dhcp"] else 5  # a lease may take a moment
        bridge_nm.apply_remove(rmplan, _runner, netns=netns, root=config_root, timeout=timeout)
        return f"Bridge {name} was {words('is')}."

    return _conclude(
        ret,
        changes,
        unchanged=f"Bridge {name} is already absent.",
        would=f"Bridge {name} would be {words('would be')}.",
        apply=apply,
        failed=lambda exc: f"Bridge {name} was not removed: {exc}",
    )


# ---------------------------------------------------------------- libvirt networks


def _net_spec(name, kwargs):
    data = {k: v for k, v in kwargs.items() if v is not None and not k.startswith("__")}
    return data


def _network(name, data, autostart, running, restart, kwargs):
    ret = _ret(name)
    try:
        conn = saltglue.conn_from(__salt__)
        others = libvirt_networks.bridges_of_others(conn, name)
    except XenError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    host_bridges = __salt__["config.get"]("xen:bridges", {}) or {}
    wanted, problems = netspec.validate(name, data, others=others, host_bridges=list(host_bridges))
    problems += _unknown(f"xen:networks:{name}", kwargs)
    if autostart is not None and not isinstance(autostart, bool):
        problems.append(f"xen:networks:{name}.autostart: expected true or false, got {autostart!r}")
    if problems:
        ret.update(
            result=False, comment=f"Network {name} not changed, the settings have problems:\n" + "\n".join(problems)
        )
        return ret
    try:
        have = libvirt_networks.read(conn, name)
    except XenError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    changes = {}
    if have is None:
        changes["defined"] = {"old": False, "new": True}
        config = netspec.diff({}, wanted)
    else:
        config = netspec.diff(have["spec"], wanted)
    if have is not None:
        changes.update(config)
    if autostart is not None and (have is None or have["autostart"] != autostart):
        if have is not None or autostart:
            changes["autostart"] = {"old": have["autostart"] if have else False, "new": autostart}
    active = bool(have and have["active"])
    # defined as wanted already, but still running with older settings (changed without a restart)
    stale = bool(active and not config and have.get("live_spec") and netspec.diff(have["live_spec"], wanted))
    # DHCP ranges/hosts and DNS hosts of a running network change live, without a restart
    live_ops = netspec.live_updates(have["spec"], wanted) if active and config else None
    restarting = running and active and (bool(config) or stale) and restart and live_ops is None
    if running and not active:
        changes["running"] = {"old": False, "new": True}
    if restarting:
        changes["restarted"] = {"old": "old settings", "new": "new settings"}
    pending_restart = active and bool(config) and have is not None and not restarting and live_ops is None
    note = (
        " It is running with its old settings until it restarts (network_running with restart: true does that)."
        if pending_restart
        else " The running network takes the change at once."
        if live_ops
        else ""
    )

    def apply():
        try:
            if restarting:  # stopped first, so the new definition is the one that starts
                libvirt_networks.stop(conn, name)
            if live_ops is not None:
                libvirt_networks.update_live(conn, name, live_ops)
            elif have is None or config:
                libvirt_networks.define(conn, wanted)
            if "autostart" in changes:
                libvirt_networks.set_autostart(conn, name, autostart)
            if running:
                libvirt_networks.start(conn, name)
        except XenError as exc:
            raise state_pattern.Failed(f"Network {name}: {exc}", _network_changed(conn, name, have)) from None
        return f"Network {name} was {_net_words(changes)}.{note}"

    return _conclude(
        ret,
        changes,
        apply=apply,
        would=f"Network {name} would be {_net_words(changes)}.{note}",
        unchanged=f"Network {name} is already as wanted."
        + (
            " It still runs with older settings until it restarts (network_running with restart: true does that)."
            if stale
            else ""
        ),
    )


def _network_changed(conn, name, have):
    """What a network state that failed part way did change, read back from libvirt."""
    try:
        after = libvirt_networks.read(conn, name)
    except XenError:
        return {}
    if after is None:
        return {}
    return netspec.diff(have["spec"], after["spec"]) if have else {"defined": {"old": False, "new": True}}


def _net_words(changes):
    words = []
    if "defined" in changes:
        words.append("defined")
    settings = [k for k in changes if k not in ("defined", "autostart", "running", "restarted")]
    if settings and "defined" not in changes:
        words.append(f"changed ({', '.join(settings)})")
    if "autostart" in changes:
        words.append("set to start with libvirtd" if changes["autostart"]["new"] else "set not to start by itself")
    if "restarted" in changes:
        words.append("restarted")
    if "running" in changes:
        words.append("started")
    return ", ".join(words)


def network_defined(
    name,
    forward="nat",
    bridge=None,
    dev=None,
    stp=None,
    delay=None,
    mtu=None,
    domain=None,
    ipv4=None,
    ipv6=None,
    dns=None,
    autostart=None,
    **kwargs,
):
    """
    libvirt network ``name`` is defined as given (and starts with libvirtd when
    ``autostart`` is true, without restarting libvirtd). A running network keeps
    its old settings until it restarts; see ``network_running``.

    forward
        ``nat`` (default, like ``default``/virbr0), ``route``, ``isolated`` or
        ``bridge`` (guests go onto the existing host bridge named by ``bridge``)
    bridge
        the bridge libvirt makes (``virbr1``) or, for ``bridge``, the host bridge (``xenbr0``)
    dev
        the NIC nat/route traffic leaves through
    stp / delay / mtu / domain
        the bridge's STP (default on) and forward delay (default 0), MTU, DNS domain
    ipv4 / ipv6
        ``{address: 192.168.123.1/24, dhcp: [192.168.123.2-192.168.123.254], hosts: [{mac, ip, name}]}``
    dns
        ``{hosts: [{ip, names}], forwarders: [ip]}``
    autostart
        true/false; leave out to leave it as it is

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_defined virbr1 bridge=virbr1 ipv4='{address: 192.168.123.1/24, dhcp: [192.168.123.2-192.168.123.254]}'
    """
    data = _net_spec(
        name,
        {
            "forward": forward,
            "bridge": bridge,
            "dev": dev,
            "stp": stp,
            "delay": delay,
            "mtu": mtu,
            "domain": domain,
            "ipv4": ipv4,
            "ipv6": ipv6,
            "dns": dns,
        },
    )
    return _network(name, data, autostart, running=False, restart=False, kwargs=kwargs)


def network_running(
    name,
    forward="nat",
    bridge=None,
    dev=None,
    stp=None,
    delay=None,
    mtu=None,
    domain=None,
    ipv4=None,
    ipv6=None,
    dns=None,
    autostart=None,
    restart=False,
    **kwargs,
):
    """
    libvirt network ``name`` is defined as given and running. Same arguments as
    ``network_defined``; ``restart: true`` restarts a running network whose
    settings changed (guests on it lose their link for a moment).

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_running virbr1 bridge=virbr1 autostart=True ipv4='{address: 192.168.123.1/24, dhcp: [192.168.123.2-192.168.123.254]}'
    """
    data = _net_spec(
        name,
        {
            "forward": forward,
            "bridge": bridge,
            "dev": dev,
            "stp": stp,
            "delay": delay,
            "mtu": mtu,
            "domain": domain,
            "ipv4": ipv4,
            "ipv6": ipv6,
            "dns": dns,
        },
    )
    return _network(name, data, autostart, running=True, restart=restart, kwargs=kwargs)


def network_absent(name, force=False):
    """
    libvirt network ``name`` is stopped and gone. Refused while guests have a NIC
    on it (they are named) unless ``force``.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_absent virbr1
    """
    ret = _ret(name)
    try:
        conn = saltglue.conn_from(__salt__)
        have = libvirt_networks.read(conn, name)
        users = libvirt_networks.guests_on_network(conn, name) if have else []
    except XenError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if users and not force:
        ret.update(
            result=False,
            comment=f"Network {name} was not removed: guests {', '.join(users)} still have "
            "a NIC on it; move them first or set force: true",
        )
        return ret
    changes = {}
    if have is not None:
        changes["defined"] = {"old": True, "new": False}
        if have["active"]:
            changes["running"] = {"old": True, "new": False}
    words = f"{'stopped and ' if 'running' in changes else ''}removed"

    def apply():
        libvirt_networks.undefine(conn, name)
        return f"Network {name} was {words}."

    return _conclude(
        ret,
        changes,
        unchanged=f"Network {name} is already absent.",
        would=f"Network {name} would be {words}.",
        apply=apply,
        failed=lambda exc: f"Network {name} was not removed: {exc}",
    )
