{#- Xen networking from pillar: host bridges (xen:bridges) and libvirt networks (xen:networks).
    See pillar/xen/networks.sls for an example.

    Per bridge:  ensure: present (default) | absent
                 present: every other key goes to xen_net.bridge_present (nic, vlan, stp,
                 forward_delay, mtu, addresses, dhcp, netns, persist, config_root), so a
                 misspelt one is reported with its key path; force and restore_nic are
                 kept for ensure: absent and xen.networks.clean;
                 absent: force, netns, dhcp, restore_nic, persist, config_root are used.
    Per network: ensure: running (default) | defined | absent
                 running/defined: every other key goes to xen_net.network_running or
                 network_defined (forward, bridge, ipv4, autostart, ..., restart with running),
                 but force, kept for ensure: absent and xen.networks.clean;
                 absent: force is used.
    Defaults (map.jinja): xen:ensure:bridges / xen:ensure:networks; how bridges persist
    across reboots, network:persist / network:config_root / network:packages from
    parameters/os_family/*.yaml, overridden by pillar xen:network:*.
    Values go to the states as they are, with pillar_path; the states check them and name
    each problem by its key path (xen:bridges:xenbr1:stp: expected true or false, ...), a
    misspelt or retired key too (xen:bridges:xenbr0:absent: unknown key). This SLS checks
    only shapes: xen:bridges, xen:networks and each entry are mappings, and ensure is one
    of its words (it picks the state).
    State IDs: xen-net-bridge-NAME-present|absent, xen-net-network-NAME-running|defined|absent;
    xen-net-bridge-NAME-checked / xen-net-network-NAME-checked for an entry of the wrong
    shape, xen-net-bridges-checked / xen-net-networks-checked for a whole section.
    Names and keys that are numbers and text alike are sorted and passed as text.
    Undo: xen.networks.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys with context %}
{%- set net = xen.network %}
{%- set bridges = salt["pillar.get"]("xen:bridges", {}) %}
{%- set networks = salt["pillar.get"]("xen:networks", {}) %}
{%- set bridge_ensures = ("present", "absent") %}
{%- set network_ensures = ("running", "defined", "absent") %}

{#- the ensure word of an entry in lower case, or none when the entry is not a mapping #}
{%- macro ensure_of(entry, default) -%}
{%-   set entry = {} if entry is none else entry %}
{%-   if entry is mapping %}{{ entry.get("ensure", default) | string | lower }}{% endif %}
{%- endmacro %}

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

{%- set packages = net.packages %}
{%- set wanted = namespace(bridge=False) %}
{%- for name, bridge in bridges | dictsort if ensure_of(bridge, xen.ensure.bridges) == "present" %}
{%-   set wanted.bridge = True %}
{%- endfor %}
{%- if packages and wanted.bridge %}
xen-net-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{%- for name, bridge in bridges | dictsort %}
{%-   set bridge = {} if bridge is none else bridge %}
{%-   set path = "xen:bridges:" ~ name %}
{%-   set ensure = ensure_of(bridge, xen.ensure.bridges) %}
{%-   if bridge is not mapping %}
{{ refused("xen-net-bridge-" ~ name ~ "-checked", path, "a mapping of settings", bridge) }}
{%-     continue %}
{%-   elif ensure not in bridge_ensures %}
{{ refused("xen-net-bridge-" ~ name ~ "-checked", path ~ ":ensure", "one of " ~ bridge_ensures | join(", "), bridge.ensure) }}
{%-     continue %}
{%-   endif %}
{%-   set persist = bridge.get("persist", net.persist) %}
{%-   set config_root = bridge.get("config_root", net.config_root) %}
{%-   if ensure == "absent" %}
{{ ("xen-net-bridge-" ~ name ~ "-absent") | json }}:
  xen_net.bridge_absent:
    - name: {{ name | json }}
    - force: {{ bridge.get("force", False) | json }}
    - persist: {{ persist | json }}
    - config_root: {{ config_root | json }}
{%-     for key in ("netns", "dhcp", "restore_nic") if bridge.get(key) is not none %}
    - {{ key }}: {{ bridge[key] | json }}
{%-     endfor %}
    - pillar_path: xen:bridges
{%-   else %}
{{ ("xen-net-bridge-" ~ name ~ "-present") | json }}:
  xen_net.bridge_present:
    - name: {{ name | json }}
{#-     every key goes to the state, so a misspelt one is reported with its path #}
{%-     set settings = {} %}
{{-     text_keys(bridge, settings, path) }}
{%-     for key, value in settings | dictsort if key not in ("ensure", "persist", "config_root", "force", "restore_nic") %}
    - {{ key | json }}: {{ value | json }}
{%-     endfor %}
    - persist: {{ persist | json }}
    - config_root: {{ config_root | json }}
    - pillar_path: xen:bridges
{%-     if packages %}
    - require:
      - pkg: xen-net-packages-installed
{%-     endif %}
{%-   endif %}
{%- endfor %}

{%- for name, network in networks | dictsort %}
{%-   set network = {} if network is none else network %}
{%-   set path = "xen:networks:" ~ name %}
{%-   set ensure = ensure_of(network, xen.ensure.networks) %}
{%-   if network is not mapping %}
{{ refused("xen-net-network-" ~ name ~ "-checked", path, "a mapping of settings", network) }}
{%-     continue %}
{%-   elif ensure not in network_ensures %}
{{ refused("xen-net-network-" ~ name ~ "-checked", path ~ ":ensure", "one of " ~ network_ensures | join(", "), network.ensure) }}
{%-     continue %}
{%-   endif %}
{%-   if ensure == "absent" %}
{{ ("xen-net-network-" ~ name ~ "-absent") | json }}:
  xen_net.network_absent:
    - name: {{ name | json }}
    - force: {{ network.get("force", False) | json }}
    - pillar_path: xen:networks
{%-   else %}
{{ ("xen-net-network-" ~ name ~ "-" ~ ensure) | json }}:
  xen_net.network_{{ ensure }}:
    - name: {{ name | json }}
{#-     every key goes to the state (restart only to a running one), so a misspelt one is reported #}
{%-     set settings = {} %}
{{-     text_keys(network, settings, path) }}
{%-     for key, value in settings | dictsort if key not in ("ensure", "force") and (ensure == "running" or key != "restart") %}
    - {{ key | json }}: {{ value | json }}
{%-     endfor %}
    - pillar_path: xen:networks
{%-     set host_bridge = network.get("bridge") %}
{%-     if network.get("forward") == "bridge" and host_bridge is string and host_bridge in bridges
          and ensure_of(bridges[host_bridge], xen.ensure.bridges) == "present" %}
    - require:
      - xen_net: {{ ("xen-net-bridge-" ~ host_bridge ~ "-present") | json }}
{%-     endif %}
{%-   endif %}
{%- endfor %}
