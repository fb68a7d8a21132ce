"""
The ``xen`` grain: what this host is for Xen, so targeting and states can ask.

.. code-block:: yaml

    xen:
      hypervisor: xen          # from /sys/hypervisor/type; null on bare metal
      dom0: true               # this kernel is Xen's control domain
      version: 4.17.3          # the running Xen
      capabilities: [hvm, pv, pvh]
      toolstack: xl            # null when xl is not installed
      installed: "4.17"        # newest Xen image in /boot, null when none
      reboot_required: false   # true when the installed Xen is not the running one
      reboot_reason: null      # why, in plain words

Target with it: ``salt -G 'xen:dom0:true' xen_guest.list``.
"""

import logging

from saltext_xen.host import facts

log = logging.getLogger(__name__)


def xen():
    """
    Xen facts of this host under the grain ``xen``.

    CLI Example:

    .. code-block:: bash

        salt '*' grains.get xen
    """
    try:
        return {"xen": facts.read()}
    except Exception as exc:  # a grain must never stop the minion's other grains from loading
        log.warning("xen grain: cannot read this host's Xen facts: %s", exc)
        return {}
