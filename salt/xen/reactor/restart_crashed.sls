{#- Start a Xen guest again after it crashed: the xen_guest_events beacon reported it.

    Master config:
      reactor:
        - 'salt/beacon/*/xen_guest_events/xen/guest/*/crashed':
          - salt://xen/reactor/restart_crashed.sls

    Only guests marked autostart (xen_guest.autostart, autostart: true in xen:guests) or listed in
    the host's pillar xen:reactor:restart are started; the beacon, which runs on the host and can
    read its pillar, says so in the event as "restart". Others stay down for a person to look at
    (xen_guest.log NAME, the core from on_crash: coredump-destroy).
    An event sent by hand with `salt-call event.fire_master` carries its data one level down,
    under "data"; both shapes are understood. -#}
{%- set ev = data if "name" in data else data.get("data", {}) %}
{%- set host = data.get("id") or ev.get("id") %}
{%- if host and ev.get("name") and ev.get("new", "crashed") == "crashed"
      and (ev.get("restart") or ev.get("autostart")) %}
xen-guest-{{ ev.name }}-started-after-crash:
  local.xen_guest.start:
    - tgt: {{ host | json }}
    - args:
      - name: {{ ev.name | json }}
{%- endif %}
