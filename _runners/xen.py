"""
The fleet view of Xen guests, from the master: which host runs which guest.

Every Xen host (minion with this extension) is asked once for all its guests'
states (``xen_guest.states``, one libvirt pass per host).
"""

import logging

import salt.client

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
