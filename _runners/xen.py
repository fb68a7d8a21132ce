"""
The fleet of Xen hosts, from the master: which host runs which guest, what each
host can take, where a guest should go, and plans to empty, replace or even out
hosts (what Ganeti's ``hail``, ``gnt-node evacuate``, ``gnt-instance failover``,
``hbal`` and ``gnt-cluster verify`` did).

Every Xen host (minion with this extension) is asked once: ``xen_guest.states``
for the guest lists, ``xen_host.facts`` for capacity (one libvirt pass per
host). Hosts that do not answer are listed as such. Planning is done by the
library (``saltext_xen.fleet``) on those answers. ``migrate`` and ``evacuate``
carry out their moves through execution functions on the hosts (``xen_host.definition``,
``take_over``, ``let_go``, ``migrate``); failover and balance only plan.
"""

import logging

import salt.client
import salt.utils.minions
from salt.exceptions import CommandExecutionError

# xen.guests and xen.find need only Salt; the planning functions need the library on the
# master too (salt-run saltutil.sync_all, or the pip install), so a master that has synced
# only its runners still loads this module.
try:
    from saltext_xen.core import errors, validate
    from saltext_xen.fleet import needs, placement, plans
    from saltext_xen.fleet import verify as fleet_verify
except ImportError:
    errors = validate = needs = placement = plans = fleet_verify = None

log = logging.getLogger(__name__)

__virtualname__ = "xen"


def __virtual__():
    return __virtualname__


def _ask(tgt, tgt_type, timeout):
    """``{minion: {guest: {"state", "autostart"}}}`` from the hosts that answered; errors as text."""
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        replies = client.cmd(tgt, "xen_guest.states", tgt_type=tgt_type, timeout=timeout, full_return=True)
    hosts = {}
    for minion, reply in sorted(replies.items()):
        ret = reply.get("ret") if isinstance(reply, dict) else reply
        if isinstance(reply, dict) and reply.get("retcode", 0) == 0 and isinstance(ret, dict):
            hosts[minion] = ret
        else:
            hosts[minion] = f"cannot list guests: {ret}"
    return hosts


def guests(tgt="*", tgt_type="glob", timeout=None):
    """
    Every guest on every Xen host, with its state and autostart mark, like
    ``xm list`` run on each host:
    ``{host: {guest: {"state": "running", "autostart": True}}}``. A host that
    answered with an error (no libvirt, extension missing) shows the error
    text instead of its guests; hosts that did not answer are left out.

    tgt / tgt_type
        which minions to ask (default every minion)

    CLI Example:

    .. code-block:: bash

        salt-run xen.guests
        salt-run xen.guests tgt='xen*'
        salt-run xen.guests tgt='G@virtual:xen' tgt_type=compound
    """
    return _ask(tgt, tgt_type, timeout)


def find(name, tgt="*", tgt_type="glob", timeout=None):
    """
    Where guest ``name`` is defined, and its state there:
    ``{host: {"state": "running", "autostart": True}}``; ``{}`` when no host
    knows it. More than one host means the guest is defined on several
    (after a migration, or a copied config): make sure it runs on one only.

    CLI Example:

    .. code-block:: bash

        salt-run xen.find vm02
        salt-run xen.find vm02 tgt='xen*'
    """
    found = {}
    for host, listed in _ask(tgt, tgt_type, timeout).items():
        if isinstance(listed, dict) and name in listed:
            found[host] = listed[name]
    return found


def _need_library():
    if plans is None:
        raise CommandExecutionError(
            "the saltext_xen library is not on the master: run 'salt-run saltutil.sync_all' "
            "(it syncs _utils as well as _runners) or pip install saltext-xen"
        )


def _facts(tgt, tgt_type, timeout):
    """``{minion: facts}``, an error text for a host that failed, "did not answer" for a silent one."""
    _need_library()
    expected = salt.utils.minions.CkMinions(__opts__).check_minions(tgt, tgt_type).get("minions", [])
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        replies = client.cmd(tgt, "xen_host.facts", tgt_type=tgt_type, timeout=timeout, full_return=True)
    hosts = dict.fromkeys(expected, "did not answer")
    for minion, reply in replies.items():
        ret = reply.get("ret") if isinstance(reply, dict) else reply
        if isinstance(reply, dict) and reply.get("retcode", 0) == 0 and isinstance(ret, dict):
            hosts[minion] = ret
        else:
            hosts[minion] = f"cannot read facts: {ret}"
    return dict(sorted(hosts.items()))


def _refused(result):
    """Mark the job failed (``success: False`` in its return event): a plan refused, or problems found."""
    __context__["retcode"] = 1
    return result


def _flags(**given):
    """``given`` as True/False, and a problem for each value that is neither: a typo such as
    ``test=ture`` must not turn a plan into moves, nor ``n_plus_one=no`` drop the redundancy."""
    _need_library()
    problems = validate.Problems()
    return {key: validate.boolean(value, key, problems) for key, value in given.items()}, problems


def hosts(tgt="*", tgt_type="glob", timeout=None):
    """
    Each Xen host's capacity, one call per host: memory in MiB (``total``, the
    hypervisor's ``free``, ``dom0``'s, ``reserved`` for dom0, ``used`` by running
    guests, ``available`` for more), CPUs, Xen version, how many guests and the
    memory of the running ones, bridges, libvirt networks and storage pools. A
    host that did not answer, or answered with an error, shows that text instead.

    CLI Example:

    .. code-block:: bash

        salt-run xen.hosts
        salt-run xen.hosts tgt='xen*'
    """
    return {host: placement.capacity(facts) for host, facts in _facts(tgt, tgt_type, timeout).items()}


def _pillar_entry(facts_by_host, name):
    for facts in facts_by_host.values():
        if isinstance(facts, dict) and name in (facts.get("pillar_guests") or {}):
            return facts["pillar_guests"][name]
    return None


def _names(value):
    if value is None:
        return ()
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)


def place(
    name,
    memory=None,
    bridges=None,
    networks=None,
    disks=None,
    group=None,
    pin=None,
    exclude=None,
    n_plus_one=True,
    tgt="*",
    tgt_type="glob",
    timeout=None,
):
    """
    Choose a host for guest ``name`` and say why, like Ganeti's ``hail``: the
    guest's needs come from pillar ``xen:guests:NAME`` as the hosts see it
    (memory, bridges and networks of its NICs, disk paths, anti-affinity
    ``group``), or from the arguments, which win over pillar. A host is turned
    down, with the reason, when it lacks a bridge, network or storage path the
    guest needs, holds another guest of its group, has too little memory, or
    would leave the fleet without N+1 redundancy (the guests of any one host must
    fit on the others); ``pin``/``exclude`` (lists or comma-separated) limit the
    hosts. The host with the most memory left after taking the guest wins.
    Returns ``{"guest", "host" (None when no host fits), "why", "rejected": {host: reason}}``.

    CLI Example:

    .. code-block:: bash

        salt-run xen.place vm02
        salt-run xen.place web3 memory=2G bridges=xenbr0 group=web
        salt-run xen.place vm02 exclude=xen1,xen2
    """
    flags, problems = _flags(n_plus_one=n_plus_one)
    if problems:
        return _refused({"guest": name, "host": None, "why": "; ".join(problems), "rejected": {}})
    facts = _facts(tgt, tgt_type, timeout)
    try:
        guest = needs.wanted(
            name,
            _pillar_entry(facts, name),
            memory=memory,
            bridges=bridges,
            networks=networks,
            disks=disks,
            group=group,
        )
    except errors.XenError as exc:
        return _refused({"guest": name, "host": None, "why": str(exc), "rejected": {}})
    chosen = placement.place(facts, guest, pin=_names(pin), exclude=_names(exclude), n_plus_one=flags["n_plus_one"])
    return chosen if chosen["host"] else _refused(chosen)


def _caller(timeout):
    """``call(host, function, *args, **kwargs)``: run an execution function on one host, its return
    or a XenError with the host's error."""

    def call(host, fun, *args, **kwargs):
        with salt.client.get_local_client(__opts__["conf_file"]) as client:
            replies = client.cmd(host, fun, arg=list(args), kwarg=kwargs, timeout=timeout, full_return=True)
        reply = replies.get(host)
        if not isinstance(reply, dict):
            raise errors.XenError(f"{host} did not answer {fun}")
        if reply.get("retcode", 0) != 0:
            raise errors.XenError(f"{host}: {fun}: {str(reply.get('ret')).removeprefix('ERROR: ')}")
        return reply.get("ret")

    return call


def _mine_update(hosts, timeout):
    """Have the hosts of a move publish their guests again, so the second-copy guard sees the move."""
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        client.cmd(sorted(hosts), "mine.update", tgt_type="list", timeout=timeout)


def _line(step):
    return f"{step['guest']}: {step['from']} -> {step['to']} ({step['how']})"


def migrate(name, target=None, test=False, copy_disks=False, n_plus_one=True, tgt="*", tgt_type="glob", timeout=None):
    """
    Move guest ``name`` to host ``target``, or to the host placement chooses
    (``xen.place``): a shut-off guest by moving its definition (the target
    defines it with its autostart mark, then the source undefines it, disks
    untouched), a running one by live migration through libvirt to pillar
    ``xen:fleet:migrate_uri`` (default ``xen+ssh://{target}/system``). The target
    checks first that the name, UUID and MACs are free there, its bridges,
    networks and disk paths are present and it has the memory; each failed check
    is named and nothing moves. ``test=True`` runs only those checks. The disks
    must be on storage both hosts see: ``copy_disks=True`` is not available.
    The hosts update their Salt mine afterwards, so the old host's highstate
    refuses a second copy.

    CLI Example:

    .. code-block:: bash

        salt-run xen.migrate vm03 xen2 test=True
        salt-run xen.migrate vm03
    """
    flags, problems = _flags(test=test, copy_disks=copy_disks, n_plus_one=n_plus_one)
    if problems:
        return _refused({"guest": name, "moved": False, "refused": "; ".join(problems)})
    if flags["copy_disks"]:
        return _refused(
            {
                "guest": name,
                "moved": False,
                "refused": "copy_disks=True (copying local disks along) is not available: put the guest's disks "
                "on storage both hosts share (NFS, iSCSI/FC, Ceph) and move it without it",
            }
        )
    plan = plans.move(_facts(tgt, tgt_type, timeout), name, target, n_plus_one=flags["n_plus_one"])
    if not plan["feasible"]:
        return _refused({"guest": name, "moved": False, "refused": plan["refused"], "rejected": plan["unplaced"]})
    step = plan["moves"][0]
    result = {key: step[key] for key in ("guest", "from", "to", "how", "why")}
    try:
        done = plans.carry_out(name, step["from"], step["to"], _caller(timeout), test=flags["test"])
    except errors.XenError as exc:
        return _refused(dict(result, moved=False, error=str(exc)))
    if flags["test"]:
        return dict(result, moved=False, note=f"test=True: {step['to']} passed every check; nothing was moved")
    _mine_update({step["from"], step["to"]}, timeout)
    return dict(result, moved=True, how=done["how"], autostart=done["autostart"])


def evacuate(host, test=False, n_plus_one=True, tgt="*", tgt_type="glob", timeout=None):
    """
    Move every guest off ``host`` (``gnt-node evacuate``): running guests by live
    migration, the others by moving their definitions (as ``xen.migrate``), each
    to the host placement chooses, largest first; refused with the reason, nothing
    moved, when the rest of the fleet cannot hold them (with N+1 redundancy,
    unless ``n_plus_one=False``). The moves run one by one and stop at the first
    that fails: the result says what ``moved``, what ``failed`` and why, and what
    was ``left``. ``test=True`` only shows the plan, why each host was chosen
    and, for a guest that fits nowhere, why every host was turned down.

    CLI Example:

    .. code-block:: bash

        salt-run xen.evacuate xen1 test=True
        salt-run xen.evacuate xen1
    """
    flags, problems = _flags(test=test, n_plus_one=n_plus_one)
    if problems:
        return _refused({"host": host, "feasible": False, "refused": "; ".join(problems)})
    plan = plans.evacuate(_facts(tgt, tgt_type, timeout), host, n_plus_one=flags["n_plus_one"])
    if flags["test"]:
        return plan if plan["feasible"] else _refused(plan)
    if not plan["feasible"]:
        plan["moves"] = [_line(step) for step in plan["moves"]]
        plan["unplaced"] = sorted(plan["unplaced"])
        return _refused(plan)
    call, moved, failed = _caller(timeout), [], {}
    for step in plan["moves"]:
        try:
            done = plans.carry_out(step["guest"], step["from"], step["to"], call)
        except errors.XenError as exc:
            failed[step["guest"]] = str(exc)
            break
        moved.append(_line(done))
    if moved:
        _mine_update({host} | {step["to"] for step in plan["moves"][: len(moved)]}, timeout)
    left = [step["guest"] for step in plan["moves"][len(moved) + len(failed) :]]
    result = {"host": host, "moved": moved, "failed": failed, "left": left}
    return _refused(result) if failed else result


def failover(host, confirm_down=False, n_plus_one=True, tgt="*", tgt_type="glob", timeout=None):
    """
    The plan for starting the guests of dead host ``host`` on the others from
    shared storage (``gnt-instance failover``). Its guests are those its pillar
    ``xen:guests`` names, compiled by the master; a guest already defined on an
    answering host is left out. Never without ``confirm_down=True``: only the
    operator can know the host is really down (powered off or fenced), and two
    copies of a guest on one disk destroy it. Refused too when the host answers.
    Plan only: nothing is started.

    CLI Example:

    .. code-block:: bash

        salt-run xen.failover xen2 confirm_down=True
    """
    flags, problems = _flags(confirm_down=confirm_down, n_plus_one=n_plus_one)
    if problems:
        return _refused({"host": host, "feasible": False, "refused": "; ".join(problems), "moves": []})
    if not flags["confirm_down"]:
        return _refused(
            {
                "host": host,
                "feasible": False,
                "refused": (
                    f"failover of {host} needs confirm_down=True: starting its guests elsewhere while "
                    f"{host} still runs them would corrupt their disks (no split brain). Make sure {host} "
                    "is powered off or fenced first."
                ),
                "moves": [],
                "note": plans.PLAN_ONLY,
            }
        )
    facts = _facts(tgt, tgt_type, timeout)
    guests = []
    if not isinstance(facts.get(host), dict):
        pillar = __salt__["pillar.show_pillar"](host) or {}
        wanted, _problems = needs.pillar_guests((pillar.get("xen") or {}).get("guests"))
        guests = [needs.needs_of(name, dict(entry, active=True)) for name, entry in wanted.items()]
    plan = plans.failover(facts, host, guests, n_plus_one=flags["n_plus_one"])
    return plan if plan["feasible"] else _refused(plan)


def verify(tgt="*", tgt_type="glob", timeout=None):
    """
    Check the fleet like ``gnt-cluster verify``: hosts that did not answer, a
    guest defined or running on two hosts, UUID and MAC clashes across hosts,
    guests whose bridge, network or disk is missing on their host, autostart
    guests that are down, hosts whose running guests could not be started on the
    others (N+1 broken), and guests named in the pillar of a host other than the
    one holding them. Returns ``{check: [problems]}`` with only the checks that
    found something (``{}``: all well); the job is marked failed when there is a problem.

    CLI Example:

    .. code-block:: bash

        salt-run xen.verify
    """
    found = fleet_verify.check(_facts(tgt, tgt_type, timeout))
    return _refused(found) if found else found


def balance(max_moves=10, n_plus_one=True, tgt="*", tgt_type="glob", timeout=None):
    """
    A plan of live migrations that evens out memory use across the hosts (like
    Ganeti's ``hbal``): each move takes a running guest from the fullest host to
    the emptiest when that narrows the spread, keeping the guests' needs,
    anti-affinity groups and N+1 redundancy. At most ``max_moves`` moves. Plan
    only: nothing is moved (``xen.migrate`` carries out one move).

    CLI Example:

    .. code-block:: bash

        salt-run xen.balance
        salt-run xen.balance max_moves=3
    """
    flags, problems = _flags(n_plus_one=n_plus_one)
    max_moves = validate.integer(max_moves, "max_moves", problems, minimum=0)
    if problems:
        return _refused({"feasible": False, "refused": "; ".join(problems), "moves": []})
    return plans.balance(_facts(tgt, tgt_type, timeout), max_moves=max_moves, n_plus_one=flags["n_plus_one"])
