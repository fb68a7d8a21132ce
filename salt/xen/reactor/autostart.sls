{#- When a Xen host's minion starts, bring its guests up as the xendomains script did at boot:
    restore the guests saved under the save directory (guest:save_dir of the formula's
    parameters/defaults.yaml, /var/lib/xen/save), then start the guests marked autostart
    that are still off (xen_guest.start_autostart). A reactor runs on the master, which
    knows neither the host's grains nor its pillar: the save directory is the formula's
    default, read from salt://xen/parameters/defaults.yaml.

    Master config (narrow the glob to your Xen hosts, e.g. 'salt/minion/xen*/start', so other
    minions are not asked):
      reactor:
        - 'salt/minion/*/start':
          - salt://xen/reactor/autostart.sls

    libvirtd's own autostart may have started the guests already; then this changes nothing. -#}
{%- import_yaml "xen/parameters/defaults.yaml" as defaults %}
{%- set host = data.get("id") %}
{%- if host %}
xen-guests-autostarted-on-{{ host }}:
  local.xen_guest.start_autostart:
    - tgt: {{ host | json }}
    - args:
      - save_dir: {{ defaults.guest.save_dir | json }}
{%- endif %}
