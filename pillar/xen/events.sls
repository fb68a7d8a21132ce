# Example pillar for guest events: what the xendomains script and watching `xm list` did.
# Copy it into your pillar tree (for your Xen hosts only) and edit.
#
# The beacon runs on each Xen host and sends an event for every guest state change:
#   salt/beacon/<host>/xen_guest_events/xen/guest/<guest>/<state>
#   data: {name, old, new, autostart, restart}
# States: running, paused, shutting down (tag: shutting_down), shutoff, crashed, suspended,
# absent (guest defined/undefined). A guest shut off by a crash (on_crash: destroy) is "crashed".
#
# The master needs the reactors (master config, not pillar):
#   reactor:
#     - 'salt/beacon/*/xen_guest_events/xen/guest/*/crashed':   # the beacon's tag
#       - salt://xen/reactor/restart_crashed.sls
#     - 'xen/guest/*/crashed':                                  # the engine's tag (engine xen_guest_events)
#       - salt://xen/reactor/restart_crashed.sls
#     - 'salt/minion/*/start':              # narrow to your Xen hosts, e.g. 'salt/minion/xen*/start'
#       - salt://xen/reactor/autostart.sls
# Fleet view from the master: salt-run xen.guests ; salt-run xen.find vm02
beacons:
  xen_guest_events:
    - interval: 10                  # seconds between passes (one libvirt call per guest each)
    # - states: [crashed, shutoff]  # only report these new states (default: all)
    # - guests: [vm02, winxp]       # only watch these guests (default: all)
    # - emit_at_start: false        # report every guest's state on the first pass

xen:
  reactor:
    # Guests started again after a crash even though they are not marked autostart.
    # Guests marked autostart (autostart: true in xen:guests) are always restarted.
    restart:
      - vm02
    # A guest that keeps crashing is started at most `restarts` times within `minutes`; after
    # that it stays down and the host sends xen/guest/NAME/crashloop to the master.
    # A start by hand (xen_guest.start NAME) clears its count. These are the defaults.
    crashloop:
      restarts: 3
      minutes: 10
