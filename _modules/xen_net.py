"""Networking for Xen hosts: bridges over physical NICs, libvirt networks, and who sits where.

Bridges are made through NetworkManager where it manages the NIC, else with
``ip`` (iproute2), the same way as the ``xen_net`` states; commands run through
``cmd.run_all``, and ``netns`` runs them inside ``ip netns exec NETNS`` (for trying
things out, and for the tests). libvirt networks use the connection at ``xen:libvirt:uri``.
"""

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.core import validate as vocab
from saltext_xen.networks import bridge_persist, bridge_way, bridges, libvirt_networks
from saltext_xen.networks import network_xml as netspec

__virtualname__ = "xen_net"


def __virtual__():
    if not connection.available():
        return False, f"xen_net: {connection.MISSING_REASON}"
    return __virtualname__


def _conn():
    return saltglue.conn_from(__salt__)


def _wanted(conn, name, spec, netns=None):
    """The checked spec of network ``name`` from keyword arguments, or InvalidSpec naming every problem.

    Its subnets may not overlap another libvirt network's or an address on a host interface
    (inside ``netns`` when given).
    """
    spec = {k: v for k, v in spec.items() if not k.startswith("__")}
    wanted, problems = libvirt_networks.checked(conn, name, spec, _runner, netns, path=str(name))
    vocab.Problems(problems).raise_if_any()
    return wanted


def _flag(value, key):
    """A strict boolean argument (``true``/``false``), or InvalidSpec naming it."""
    return vocab.check(value, vocab.boolean, key)


def _runner(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="quiet")


def _bridge_spec(name, nic, vlan, stp, forward_delay, mtu, addresses, dhcp=False):
    spec, problems = bridge_way.spec(name, nic, vlan, stp, forward_delay, mtu, addresses, dhcp)
    vocab.Problems(problems).raise_if_any()
    return spec


@saltglue.plain_errors
def bridge_list(netns=None):
    """
    The host's bridges with their physical NICs (``nics``: NICs or their VLAN
    sub-interfaces), the guests' ports (``vifs``: vifD.N), STP, forward delay, MTU
    and addresses.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_list
    """
    return bridges.bridges(bridges.read(_runner, netns))


@saltglue.plain_errors
def bridge_info(name, netns=None):
    """
    One bridge as in ``bridge_list``; an error names a bridge the host does not have.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_info xenbr0
    """
    name = vocab.check(name, vocab.interface_name, "name")
    return bridges.need(bridges.read(_runner, netns), name)


@saltglue.plain_errors
def bridge_plan(
    name, nic=None, vlan=None, stp=False, forward_delay=None, mtu=None, addresses=None, netns=None, config_root="/"
):
    """
    The steps that would make bridge ``name`` as asked, in the order they would
    run, without running them: ``nmcli`` ones where NetworkManager manages the NIC,
    else ``ip`` ones. An empty list: nothing to do.

    name
        the bridge, like ``xenbr0``
    nic
        the physical NIC to put under it (its addresses and routes move to the
        bridge); leave out for a host-only bridge
    vlan
        VLAN id: the bridge goes over the sub-interface ``NIC.VLAN``
    stp / forward_delay
        spanning tree (default off) and forward delay in seconds (default 0, 15 with STP)
    mtu
        MTU for the NIC and the bridge
    addresses
        list of ``address/prefix`` for the bridge (default: what the NIC has)
    netns / config_root
        run the commands inside this network namespace; where ``/etc`` and ``/run`` are (default ``/``)

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_plan xenbr1 nic=eth1
    """
    spec = _bridge_spec(name, nic, vlan, stp, forward_delay, mtu, addresses)
    return bridges.describe(bridge_way.plan_present(_runner, spec, netns=netns, root=config_root)["steps"])


@saltglue.plain_errors
def bridge_create(
    name,
    nic=None,
    vlan=None,
    stp=False,
    forward_delay=None,
    mtu=None,
    addresses=None,
    netns=None,
    timeout=None,
    config_root="/",
):
    """
    Make (or adjust) bridge ``name`` now, moving the NIC's addresses and routes
    to it without cutting the host off; if a step fails or the bridge does not
    come up, everything done is undone. Where NetworkManager manages the NIC it
    is done through NetworkManager, with keyfiles under /run that it forgets at
    reboot. Not persistent: use the ``xen_net.bridge_present`` state for that.
    Same arguments as ``bridge_plan``, plus ``timeout``: seconds to wait for the
    bridge to forward (default 5, or twice the forward delay plus 5 with STP).
    Returns the steps done.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_create xenbr1 nic=eth1
    """
    spec = _bridge_spec(name, nic, vlan, stp, forward_delay, mtu, addresses)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        vocab.Problems([f"timeout: expected a number of seconds above 0, got {vocab.describe(timeout)}"]).raise_if_any()
    plan = bridge_way.plan_present(_runner, spec, netns=netns, root=config_root)
    return bridge_way.apply(plan, _runner, netns=netns, timeout=timeout)


@saltglue.plain_errors
def bridge_users(name):
    """
    The guests with a NIC on bridge ``name`` (directly or through a libvirt network).

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_users xenbr0
    """
    return libvirt_networks.guests_using(_conn(), vocab.check(name, vocab.interface_name, "name"))


@saltglue.plain_errors
def bridge_delete(name, force=False, netns=None, config_root="/"):
    """
    Remove bridge ``name``, giving its addresses and routes back to its NIC.
    Refused while guests use it (the error lists them) unless ``force=True``.
    A bridge NetworkManager runs goes through NetworkManager (its keyfiles too),
    the NIC back on its own connection. Otherwise not persistent: use the
    ``xen_net.bridge_absent`` state for that. ``netns`` / ``config_root`` as in
    ``bridge_plan``. Returns the steps done; an error names a bridge the host does not have.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_delete xenbr1
    """
    checked, problems = bridge_way.removal(name, force=force)
    vocab.Problems(problems).raise_if_any()
    guests = libvirt_networks.guests_using(_conn(), name)
    plan = bridge_way.plan_absent(_runner, name, netns=netns, guests=guests, force=checked["force"], root=config_root)
    if not plan["changes"]:
        bridges.need(bridges.read(_runner, netns), name)
    return bridge_way.apply(plan, _runner, netns=netns)


@saltglue.plain_errors
def bridge_config(
    name, style, nic=None, vlan=None, stp=False, forward_delay=None, mtu=None, addresses=None, gateway=None, dhcp=False
):
    """
    The files that keep bridge ``name`` across reboots, as text, without writing them.

    style
        ``ifupdown`` (Debian), ``ifcfg-rhel``, ``nm-keyfile`` (NetworkManager) or ``ifcfg-suse``
    gateway / dhcp
        the default gateway for static addresses, or ``dhcp=True`` for a bridge
        that asks DHCP for its address

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.bridge_config xenbr0 ifupdown nic=eth0 addresses='[192.168.0.10/24]' gateway=192.168.0.254
    """
    spec = _bridge_spec(name, nic, vlan, stp, forward_delay, mtu, addresses, dhcp)
    problems = vocab.Problems()
    style = vocab.choice(style, "style", problems, bridge_persist.STYLES)
    if gateway is not None:
        gateway = vocab.ip_address(gateway, "gateway", problems)
    problems.raise_if_any()
    files = bridge_persist.render(style, spec, gateway=gateway, dhcp=spec["dhcp"])
    return {path: text for path, (text, _mode) in files.items()}


@saltglue.plain_errors
def network_list():
    """
    The libvirt networks: running or not, autostart, bridge and forward mode.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_list
    """
    return libvirt_networks.list_all(_conn())


@saltglue.plain_errors
def network_info(name):
    """
    One libvirt network as a spec (forward, bridge, ipv4/ipv6 with DHCP ranges and
    hosts, dns) plus whether it runs and starts by itself; an error names a network libvirt does not have.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_info default
    """
    return libvirt_networks.need(_conn(), name)


@saltglue.plain_errors
def network_xml(name, netns=None, **spec):
    """
    The libvirt XML the given spec makes, after checking it (nothing is defined): wrong
    keys are named, and a subnet another libvirt network or a host interface (inside
    ``netns`` when given) has already is refused with both names.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_xml virbr1 bridge=virbr1 ipv4='{address: 192.168.123.1/24}'
    """
    return netspec.to_xml(_wanted(_conn(), name, spec, netns))


@saltglue.plain_errors
def network_define(name, start=False, netns=None, **spec):
    """
    Define (or redefine) libvirt network ``name`` from a spec; see
    ``xen_net.network_xml``. ``autostart=True`` makes it start with libvirtd,
    ``start=True`` starts it now; ``netns`` as in ``xen_net.network_xml``. Returns the
    network's new info.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_define virbr1 bridge=virbr1 start=True ipv4='{address: 192.168.123.1/24}'
    """
    conn = _conn()
    start = _flag(start, "start")
    wanted = _wanted(conn, name, spec, netns)
    libvirt_networks.define(conn, wanted)
    libvirt_networks.set_autostart(conn, name, wanted["autostart"])
    if start:
        libvirt_networks.start(conn, name)
    return libvirt_networks.read(conn, name)


@saltglue.plain_errors
def network_start(name):
    """
    Start libvirt network ``name``; True when it was stopped.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_start virbr1
    """
    return libvirt_networks.start(_conn(), name)


@saltglue.plain_errors
def network_stop(name):
    """
    Stop libvirt network ``name``; True when it was running.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_stop virbr1
    """
    return libvirt_networks.stop(_conn(), name)


@saltglue.plain_errors
def network_autostart(name, enable=True):
    """
    Make network ``name`` start with libvirtd (or not), without restarting libvirtd.
    True when that changed.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_autostart virbr1
        salt '*' xen_net.network_autostart virbr1 enable=False
    """
    return libvirt_networks.set_autostart(_conn(), name, _flag(enable, "enable"))


@saltglue.plain_errors
def network_undefine(name):
    """
    Stop and remove libvirt network ``name``; True when done, an error names a network
    libvirt does not have.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.network_undefine virbr1
    """
    conn = _conn()
    libvirt_networks.need(conn, name)
    return libvirt_networks.undefine(conn, name)


@saltglue.plain_errors
def topology(netns=None):
    """
    Which guest NIC (vifD.N) sits on which bridge and which physical NIC, like
    the tutorial's diagram. ``lines`` reads
    ``vm02 nic0 00:16:3e:02:00:01 -> vif1.0 -> xenbr0 -> eth0``; ``bridges``
    holds the same per bridge: ``nics`` (physical NICs), ``vifs`` (guests' ports)
    and ``guests``.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_net.topology
    """
    conn = _conn()
    return bridges.topology(
        bridges.read(_runner, netns), libvirt_networks.guest_nics(conn), libvirt_networks.network_bridges(conn)
    )
