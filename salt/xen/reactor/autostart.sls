{#- When a Xen host's minion starts, bring its guests up as the xendomains script did at boot:
    restore the guests saved under /var/lib/xen/save, then start the guests marked autostart
    that are still off (xen_guest.start_autostart).

    Master config (narrow the glob to your Xen hosts, e.g. 'salt/minion/xen*/start', so other
    minions are not asked):
      reactor:
        - 'salt/minion/*/start':
          - salt://xen/reactor/autostart.sls

    libvirtd's own autostart may have started the guests already; then this changes nothing. -#}
{%- set host = data.get("id") %}
{%- if host %}
xen-guests-autostarted-on-{{ host }}:
  local.xen_guest.start_autostart:
    - tgt: {{ host | json }}
{%- endif %}
