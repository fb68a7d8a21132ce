{#- Undo xen.networks: the bridges and libvirt networks pillar wants present are removed.

    Removes: each libvirt network of xen:networks that is not ensure: absent (stopped and
    undefined; refused while guests have a NIC on it, unless the entry says force: true),
    then each bridge of xen:bridges that is not ensure: absent, now and from the boot
    configuration; a bridge over a NIC gives the NIC its addresses and routes back
    (refused while guests use the bridge, unless force: true).
    Keeps: the NICs, libvirt networks and bridges that pillar does not name, and the
    packages. Note that a network named in pillar goes even if libvirt made it (default).
    Run after xen.guests.clean (xen.clean does), so no guest holds them.
    Entries that are not mappings, or whose ensure is not one of its words, are left to
    xen.networks to report; sections that are not mappings are reported here too.
    Names that are numbers and text alike are sorted and passed as text. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys with context %}
{%- set net = xen.network %}
{%- set bridges = salt["pillar.get"]("xen:bridges", {}) %}
{%- set networks = salt["pillar.get"]("xen:networks", {}) %}
{%- if bridges is not none and bridges is not mapping %}
{{ refused("xen-net-bridges-checked", "xen:bridges", "a mapping of bridge names to settings", bridges) }}
{%-   set bridges = {} %}
{%- endif %}
{%- if networks is not none and networks is not mapping %}
{{ refused("xen-net-networks-checked", "xen:networks", "a mapping of network names to settings", networks) }}
{%-   set networks = {} %}
{%- endif %}
{%- set bridges_by_name, networks_by_name = {}, {} %}
{{- text_keys(bridges, bridges_by_name, "xen:bridges") }}
{{- text_keys(networks, networks_by_name, "xen:networks") }}
{%- set bridges, networks = bridges_by_name, networks_by_name %}

{%- set removed = [] %}
{%- for name, network in networks | dictsort if (network or {}) is mapping
      and ((network or {}).get("ensure", xen.ensure.networks) | string | lower) != "absent" %}
{%-   do removed.append(name) %}
{{ ("xen-net-network-" ~ name ~ "-absent") | json }}:
  xen_net.network_absent:
    - name: {{ name | json }}
    - force: {{ (network or {}).get("force", False) | json }}
    - pillar_path: xen:networks
{%- endfor %}

{%- for name, bridge in bridges | dictsort if (bridge or {}) is mapping
      and ((bridge or {}).get("ensure", xen.ensure.bridges) | string | lower) != "absent" %}
{%-   set bridge = bridge or {} %}
{{ ("xen-net-bridge-" ~ name ~ "-absent") | json }}:
  xen_net.bridge_absent:
    - name: {{ name | json }}
    - force: {{ bridge.get("force", False) | json }}
    - persist: {{ bridge.get("persist", net.persist) | json }}
    - config_root: {{ bridge.get("config_root", net.config_root) | json }}
{%-   for key in ("netns", "dhcp", "restore_nic") if bridge.get(key) is not none %}
    - {{ key }}: {{ bridge[key] | json }}
{%-   endfor %}
    - pillar_path: xen:bridges
{%-   if removed %}
    - require:
{%-     for nname in removed %}
      - xen_net: {{ ("xen-net-network-" ~ nname ~ "-absent") | json }}
{%-     endfor %}
{%-   endif %}
{%- endfor %}
