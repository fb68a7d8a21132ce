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

from saltext_xen import saltglue
from saltext_xen.core import connection, errors, state_pattern
from saltext_xen.core import validate as vocab
from saltext_xen.networks import bridge_way, libvirt_networks

__virtualname__ = "xen_net"


def __virtual__():
    if not connection.available():
        return False, f"xen_net: {connection.MISSING_REASON}"
    return __virtualname__


def _ret(name, **how):
    return dict({"name": name, "result": True, "changes": {}, "comment": ""}, **how)


def _conclude(ret, changes, **how):
    """Hand the planned ``changes`` to the shared state ending (nothing to do / test=True / apply)."""
    return state_pattern.conclude(ret, changes, test=__opts__["test"], errors=(errors.XenError,), **how)


def _runner(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="quiet")


def _style(persist, problems, path):
    """The persistence style: the argument, else ``xen:network:persist``, else the OS family's usual one."""
    configured = __salt__["config.get"]("xen:network:persist", None) if persist in (None, True, "auto") else None
    style, found = bridge_way.choose_style(
        persist, configured, __grains__.get("os_family"), __grains__.get("osmajorrelease")
    )
    problems += [f"{path}:{problem}" for problem in found]
    return style


def _unknown(path, kwargs):
    """Problems for keyword arguments no state here takes (a misspelt pillar key)."""
    return [f"{vocab.key_path(path, key)}: unknown key" for key in sorted(kwargs) if not key.startswith("__")]


def _refused(name, what, problems):
    why = "\n".join(problems)
    return _ret(name, result=False, comment=f"{what} {name} not changed, the settings have problems:\n{why}")


def _at(path, func, *args, **kwargs):
    """Run an apply step; a failure part way is named by the key path too."""
    try:
        return func(*args, **kwargs)
    except state_pattern.Failed as exc:
        raise state_pattern.Failed(f"{path}: {exc.comment}", exc.changes) from None


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
    pillar_path="xen:bridges",
    **kwargs,
):
    """
    Bridge ``name`` exists now and after a reboot, over physical NIC ``nic`` (or
    host-only when no NIC is given).

    The NIC's addresses and default route move to the bridge in an order that
    keeps the host reachable; if a step fails or the bridge does not come up,
    all is undone and the state fails. Where NetworkManager manages the NIC, the
    bridge is made through NetworkManager (keyfiles, ``nmcli``), as everywhere in xen_net.

    name / nic / vlan
        the bridge (``xenbr0``), the physical NIC under it (``eth0``), a VLAN id 1-4094
        (the bridge goes over the sub-interface ``NIC.VLAN``)
    stp / forward_delay / mtu
        spanning tree (default off), forward delay in seconds (default 0; 15 with STP), MTU
    addresses / dhcp
        the bridge's addresses (``[192.168.0.10/24]``; default: what the NIC has), or
        ``dhcp: true``: a config that asks DHCP for the bridge's IPv4 address at boot
    persist
        how to keep it across reboots: ``ifupdown``, ``ifcfg-rhel``, ``nm-keyfile``,
        ``ifcfg-suse``, or ``false`` for a live-only bridge. Default (or ``auto``):
        pillar/config ``xen:network:persist`` (the formula sets it from
        ``map.jinja``), else the usual one for the OS family and release.
    config_root / netns
        where ``/etc`` is (default ``/``); run the ``ip`` commands inside this network namespace
    pillar_path
        where the settings come from, naming errors by key path (``xen:bridges:NAME:vlan``)

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.bridge_present xenbr0 nic=eth0 test=True
    """
    ret, path = _ret(name), vocab.key_path(pillar_path, name)
    spec, problems = bridge_way.spec(name, nic, vlan, stp, forward_delay, mtu, addresses, dhcp, path=path)
    problems += _unknown(path, kwargs)
    style = _style(persist, problems, path)
    if problems:
        return _refused(name, "Bridge", problems)
    try:
        plan = bridge_way.plan_present(_runner, spec, netns=netns, style=style, dhcp=spec["dhcp"], root=config_root)
    except errors.XenError as exc:
        return _ret(name, result=False, comment=f"{path}: {exc}")
    warnings = plan["warnings"]

    def apply():
        _at(path, bridge_way.apply, plan, _runner, netns=netns)
        return "\n".join([f"Bridge {name} was {plan['words']}."] + warnings)

    return _conclude(
        ret,
        plan["changes"],
        unchanged="\n".join([f"Bridge {name} is already as wanted."] + warnings),
        would="\n".join([f"Bridge {name} would be {plan['words']}."] + warnings),
        apply=apply,
        failed=lambda exc: f"{path}: Bridge {name} was not changed: {exc}",
    )


def bridge_absent(
    name,
    force=False,
    persist=None,
    config_root="/",
    netns=None,
    restore_nic=True,
    dhcp=False,
    pillar_path="xen:bridges",
):
    """
    Bridge ``name`` is gone now and after a reboot; its NIC gets its addresses
    and routes back. Refused while guests use it (they are named) unless ``force``.

    Where NetworkManager runs the bridge, it goes through NetworkManager too: the NIC's
    own connection comes up again first, then the bridge connection goes down and its
    keyfiles and its port's are removed. If the NIC does not get its addresses back,
    the bridge comes back and the state fails saying so.

    persist / config_root / netns / pillar_path
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
    ret, path = _ret(name), vocab.key_path(pillar_path, name)
    args, problems = bridge_way.removal(name, force, restore_nic, dhcp, path=path)
    style = _style(persist, problems, path)
    if problems:
        return _refused(name, "Bridge", problems)
    try:
        guests = [] if args["force"] else libvirt_networks.guests_using(saltglue.conn_from(__salt__), name)
        how = {k: args[k] for k in ("force", "restore_nic", "dhcp")}
        plan = bridge_way.plan_absent(_runner, name, netns=netns, guests=guests, style=style, root=config_root, **how)
    except errors.XenError as exc:
        return _ret(name, result=False, comment=f"{path}: Bridge {name} was not removed: {exc}")

    def apply():
        _at(path, bridge_way.apply, plan, _runner, netns=netns)
        return f"Bridge {name} was {bridge_way.absent_words(plan, 'was')}."

    return _conclude(
        ret,
        plan["changes"],
        unchanged=f"Bridge {name} is already absent.",
        would=f"Bridge {name} would be {bridge_way.absent_words(plan, 'would be')}.",
        apply=apply,
        failed=lambda exc: f"{path}: Bridge {name} was not removed: {exc}",
    )


_NET_KEYS = ("forward", "bridge", "dev", "stp", "delay", "mtu", "domain", "ipv4", "ipv6", "dns")


def _network(name, values, kwargs, pillar_path, running=False, restart=False, watch=False, **flags):
    """Validate, plan through the library, and conclude; ``values``: the network keys as given,
    ``flags``: ``autostart`` (None: leave it), ``force`` and ``netns`` (where host addresses are read)."""
    ret, path = _ret(name), vocab.key_path(pillar_path, name)
    data = {k: values[k] for k in _NET_KEYS if values.get(k) is not None}
    host_bridges = list(__salt__["config.get"]("xen:bridges", {}) or {})
    try:
        conn = saltglue.conn_from(__salt__)
        wanted, problems = libvirt_networks.checked(conn, name, data, _runner, flags.get("netns"), path, host_bridges)
    except errors.XenError as exc:
        return _ret(name, result=False, comment=f"{path}: {exc}")
    problems = vocab.Problems(problems + _unknown(path, kwargs))
    checked = {"restart": restart, "autostart": flags.get("autostart"), "force": flags.get("force", False)}
    for key, value in checked.items():
        checked[key] = None if value is None else vocab.boolean(value, vocab.key_path(path, key), problems)
    if problems:
        return _refused(name, "Network", problems)
    try:
        plan = libvirt_networks.plan(
            conn, name, wanted, running=running, watch=watch, **{k: v for k, v in checked.items() if v is not None}
        )
    except errors.XenError as exc:
        return _ret(
            name, result=False, comment=f"{path}: Network {name} was not {'restarted' if watch else 'changed'}: {exc}"
        )
    changes, note = plan["changes"], plan["note"]

    def apply():
        try:
            libvirt_networks.apply(conn, plan)
        except errors.XenError as exc:
            raise state_pattern.Failed(
                f"{path}: Network {name}: {exc}", libvirt_networks.changed_since(conn, plan)
            ) from None
        return f"Network {name} was {libvirt_networks.words(changes)}.{note}"

    stale = " It still runs with older settings until it restarts (network_running with restart: true does that)."
    return _conclude(
        ret,
        changes,
        apply=apply,
        would=f"Network {name} would be {libvirt_networks.words(changes)}.{note}",
        unchanged=f"Network {name} is already as wanted." + (stale if plan["stale"] else ""),
    )


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
    netns=None,
    pillar_path="xen:networks",
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
    netns / pillar_path
        the network namespace whose addresses the subnets may not overlap (default the
        host's); where the settings come from, for the key paths of errors (``xen:networks``)

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_defined virbr1 bridge=virbr1 ipv4='{address: 192.168.123.1/24}'
    """
    values = {"forward": forward, "bridge": bridge, "dev": dev, "stp": stp, "delay": delay, "mtu": mtu}
    values.update(domain=domain, ipv4=ipv4, ipv6=ipv6, dns=dns)
    return _network(name, values, kwargs, pillar_path, autostart=autostart, netns=netns)


def network_running(name, autostart=None, restart=False, force=False, netns=None, pillar_path="xen:networks", **kwargs):
    """
    libvirt network ``name`` is defined as given and running. Same arguments as
    ``network_defined`` (``forward``, ``bridge``, ``ipv4``, ...); ``restart: true`` restarts a
    running network whose settings changed (guests on it lose their link for a moment).

    With ``watch:`` (``mod_watch``), when a watched state changed, a running network
    is restarted (destroy + create) so it runs with its new definition, and a stopped
    one is started. A restart cuts the link of the running guests with a NIC on the
    network, so it is refused while there are any (the comment names them) unless
    ``force: true``; ``test=True`` says the same.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_running virbr1 bridge=virbr1 ipv4='{address: 192.168.123.1/24}'
    """
    values = dict({"forward": "nat"}, **{k: kwargs.pop(k) for k in _NET_KEYS if k in kwargs})
    flags = {"autostart": autostart, "force": force, "netns": netns}
    return _network(name, values, kwargs, pillar_path, running=True, restart=restart, **flags)


def mod_watch(name, sfun=None, **kwargs):
    """
    Restart libvirt network ``name`` when a state it watches changed (``network_running``
    only): it is destroyed and created again so it takes its new definition, or started
    when it is not running. Refused while running guests have a NIC on it (they are
    named) unless ``force: true``, since the restart cuts their link.

    CLI Example:

    .. code-block:: yaml

        virbr1:
          xen_net.network_running:
            - watch:
              - file: /etc/xen/virbr1-hosts
    """
    if sfun != "network_running":
        return _ret(name, result=False, comment=f"xen_net.{sfun} does not act on watch; use it with network_running")
    values = dict({"forward": "nat"}, **{k: kwargs[k] for k in _NET_KEYS if k in kwargs})
    flags = {k: kwargs[k] for k in ("autostart", "force", "netns") if k in kwargs}  # restart: a watch restarts
    return _network(name, values, {}, kwargs.get("pillar_path", "xen:networks"), running=True, watch=True, **flags)


def network_absent(name, force=False, pillar_path="xen:networks"):
    """
    libvirt network ``name`` is stopped and gone. Refused while guests have a NIC
    on it (they are named) unless ``force``.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single xen_net.network_absent virbr1
    """
    ret, path = _ret(name), vocab.key_path(pillar_path, name)
    problems = vocab.Problems()
    vocab.name(name, path, problems, what="a network name")
    force = vocab.boolean(force, vocab.key_path(path, "force"), problems)
    if problems:
        return _refused(name, "Network", problems)
    try:
        conn = saltglue.conn_from(__salt__)
        changes = libvirt_networks.plan_absent(conn, name, force=force)
    except errors.XenError as exc:
        return _ret(name, result=False, comment=f"{path}: Network {name} was not removed: {exc}")
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
        failed=lambda exc: f"{path}: Network {name} was not removed: {exc}",
    )
