{#- Start a Xen guest again after it crashed, unless it keeps crashing.

    Master config: the beacon's tag, the engine's tag, or both (a host runs one of them):
      reactor:
        - 'salt/beacon/*/xen_guest_events/xen/guest/*/crashed':   # beacon xen_guest_events
          - salt://xen/reactor/restart_crashed.sls
        - 'xen/guest/*/crashed':                                  # engine xen_guest_events
          - salt://xen/reactor/restart_crashed.sls

    Only guests marked autostart (xen_guest.autostart, autostart: true in xen:guests) or listed in
    the host's pillar xen:reactor:restart are started; the beacon or engine, which runs on the host
    and can read its pillar, says so in the event as "restart". Others stay down for a person to
    look at (xen_guest.log NAME, the core from on_crash: coredump-destroy).

    The host starts the guest through xen_guest.restart_crashed, which keeps a crash loop from
    going on for ever: with pillar xen:reactor:crashloop {restarts: 3, minutes: 10} (the default)
    a guest started after 3 crashes within 10 minutes is not started a 4th time. The host leaves
    it down and sends the event xen/guest/NAME/crashloop to the master (its data names the guest
    and says why) for a person or another reactor to act on; a start by hand (xen_guest.start NAME) clears the count.

    An event sent by hand with `salt-call event.fire_master`, or by the engine with event.send,
    carries its data one level down, under "data"; both shapes are understood. -#}
{%- set ev = data if "name" in data else data.get("data", {}) %}
{%- set ev = ev if ev is mapping else {} %}
{%- set host = data.get("id") or ev.get("id") %}
{%- if host and ev.get("name") and ev.get("new", "crashed") == "crashed"
      and (ev.get("restart") or ev.get("autostart")) %}
{{ ("xen-guest-" ~ ev.name ~ "-restarted-after-crash") | json }}:
  local.xen_guest.restart_crashed:
    - tgt: {{ host | json }}
    - args:
      - name: {{ ev.name | json }}
{%- endif %}
