"""What this Xen host offers to the fleet: memory, CPUs, guests, bridges, networks, storage.

:func:`guests` is what every host publishes through the Salt mine (``mine_functions:
{xen_host.guests: []}``), so that no host defines or starts a guest another host has.
:func:`definition`, :func:`take_over`, :func:`let_go` and :func:`migrate` are the steps the
runner's ``xen.migrate`` and ``xen.evacuate`` run on the hosts to move a guest.

The ``xen`` runner on the master asks every host for :func:`facts` once and plans
placement, evacuation, failover and balance from the answers. The work is done
by the library (``saltext_xen.fleet.facts``); this module hands it the libvirt
connection at ``xen:libvirt:uri``, the minion's command runner, and the pillar.
"""

import salt.utils.data

from saltext_xen import saltglue
from saltext_xen.core import connection
from saltext_xen.fleet import facts as fleet_facts
from saltext_xen.fleet import moves, needs
from saltext_xen.guests import guest_spec

__virtualname__ = "xen_host"


def __virtual__():
    if not connection.available():
        return False, f"xen_host: {connection.MISSING_REASON}"
    return __virtualname__


def _run(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="quiet")


def _pillar(key):
    # read __pillar__ itself: pillar.get masks every value (Salt 3008) outside templates
    return salt.utils.data.traverse_dict_and_list(__pillar__, key, None)


@saltglue.plain_errors
def facts(netns=None):
    """
    This host's capacity facts in one pass, for the fleet runner (``salt-run xen.hosts``):
    memory in MiB (``total``, hypervisor's ``free``, ``dom0``'s, ``reserved`` for dom0
    from pillar ``xen:host:dom0_mem`` or dom0's actual memory, ``used`` by running
    guests, ``available`` for more guests), CPUs, Xen version (from ``xl info``), every
    guest with its state, autostart, memory, vCPUs, UUID, MACs, bridges, networks and
    disks (and whether each disk exists), the host's bridges, libvirt networks and
    storage pools, and ``pillar_guests``: the guests this host's pillar ``xen:guests``
    names, with what they need and their anti-affinity ``group``.

    netns
        read bridges inside this network namespace (for trying things out)

    CLI Example:

    .. code-block:: bash

        salt '*' xen_host.facts
    """
    dom0_mem = needs.dom0_mem(_pillar("xen:host:dom0_mem"))
    found = fleet_facts.read(saltglue.conn_from(__salt__), run=_run, runner=_run, netns=netns, dom0_mem=dom0_mem)
    wanted, problems = needs.pillar_guests(_pillar("xen:guests"))
    found["pillar_guests"] = wanted
    found["errors"] += list(problems)
    return found


@saltglue.plain_errors
def guests():
    """
    This host's guests with their UUID and run state, in one libvirt pass:
    ``{"vm02": {"uuid": "...", "state": "running"}}``. Publish it through the Salt
    mine (pillar or minion config ``mine_functions: {xen_host.guests: []}``): the
    guest states then refuse to define or start a guest another host reports.

    CLI Example:

    .. code-block:: bash

        salt '*' xen_host.guests
        salt '*' mine.get '*' xen_host.guests
    """
    return fleet_facts.guests(saltglue.conn_from(__salt__))


@saltglue.plain_errors
def definition(name):
    """
    Guest ``name``'s persistent definition, as a move hands it to another host:
    ``{"name", "uuid", "state", "autostart", "xml"}``. Changes nothing.

    CLI Example:

    .. code-block:: bash

        salt xen1 xen_host.definition vm03
    """
    return moves.definition(saltglue.conn_from(__salt__), name)


@saltglue.plain_errors
def take_over(xml, autostart=False, test=False):
    """
    Define the guest of domain XML ``xml`` on this host (the target of a move),
    marked autostart when ``autostart=True``, after checking that the name, UUID
    and MACs are free here, its bridges, libvirt networks and disk paths are
    present and it fits in the memory left; every failed check is named, and
    nothing is defined then. ``test=True`` checks only.
    Returns ``{name: {"old": "absent", "new": "shutoff", "autostart": ...}}``.

    CLI Example:

    .. code-block:: bash

        salt xen2 xen_host.take_over "$(cat vm03.xml)" autostart=True test=True
    """
    flags = guest_spec.arguments(autostart=autostart, test=test)
    return moves.take_over(saltglue.conn_from(__salt__), xml, runner=_run, **flags)


@saltglue.plain_errors
def let_go(name, uuid=None, test=False):
    """
    Remove shut-off guest ``name``'s definition from this host (the source of a
    move) without touching its disks; refused while it runs, or when its UUID is
    not ``uuid``. Returns ``{name: {"old": "shutoff", "new": "absent"}}``.

    CLI Example:

    .. code-block:: bash

        salt xen1 xen_host.let_go vm03
    """
    return moves.let_go(saltglue.conn_from(__salt__), name, uuid=uuid, **guest_spec.arguments(test=test))


@saltglue.plain_errors
def migrate(name, target):
    """
    Move running guest ``name`` live to host ``target`` through libvirt (defined
    there, removed here), to the URI of pillar ``xen:fleet:migrate_uri`` (default
    ``xen+ssh://{target}/system``; ``{target}`` is filled in). Needs two real Xen
    hosts that reach each other; the runner's ``xen.migrate`` runs it on the source.

    CLI Example:

    .. code-block:: bash

        salt xen1 xen_host.migrate vm02 xen2
    """
    uri = _pillar("xen:fleet:migrate_uri") or moves.DEFAULT_MIGRATE_URI
    return moves.migrate(saltglue.conn_from(__salt__), name, target, uri=str(uri))
