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
    State IDs: xen-net-bridge-NAME-present|absent, xen-net-network-NAME-running|defined|absent.
    Undo: xen.networks.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set net = xen.network %}
{%- set bridges = salt["pillar.get"]("xen:bridges", {}) or {} %}
{%- set networks = salt["pillar.get"]("xen:networks", {}) or {} %}
{%- set bridge_ensures = ("present", "absent") %}
{%- set network_ensures = ("running", "defined", "absent") %}
{#- words older pillars used for the wanted state, each pointed at its ensure: #}
{%- set renamed = {"absent": "ensure: absent", "running": "ensure: running or ensure: defined"} %}

{#- what each entry asks for, or why it cannot be done #}
{%- macro checked(kind, name, entry, ensures, default) -%}
{%-   set found = [] %}
{%-   set path = "xen:" ~ kind ~ ":" ~ name %}
{%-   if entry is not mapping %}
{%-     do found.append(path ~ ": expected a mapping of settings, got " ~ (entry | json)) %}
{%-   else %}
{%-     if entry.get("ensure", default) not in ensures %}
{%-       do found.append(path ~ ":ensure: expected one of " ~ ensures | join(", ") ~ ", got " ~ (entry.ensure | json)) %}
{%-     endif %}
{%-     for old, new in renamed | dictsort if old in entry %}
{%-       do found.append(path ~ ":" ~ old ~ ": no longer a key; say " ~ new) %}
{%-     endfor %}
{%-   endif %}
{{- found | join("; ") }}
{%- endmacro %}

{%- set packages = net.packages %}
{%- set wanted = namespace(bridge=False) %}
{%- for name, bridge in bridges | dictsort if (bridge or {}) is mapping
      and (bridge or {}).get("ensure", xen.ensure.bridges) == "present" %}
{%-   set wanted.bridge = True %}
{%- endfor %}
{%- if packages and wanted.bridge %}
xen-net-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{%- for name, bridge in bridges | dictsort %}
{%-   set bridge = {} if bridge is none else bridge %}
{%-   set problems = checked("bridges", name, bridge, bridge_ensures, xen.ensure.bridges) %}
{%-   if problems %}
xen-net-bridge-{{ name }}-checked:
  test.fail_without_changes:
    - name: {{ ("xen:bridges:" ~ name) | json }}
    - comment: {{ (problems ~ "; nothing was changed for this bridge") | json }}
{%-     continue %}
{%-   endif %}
{%-   set ensure = bridge.get("ensure", xen.ensure.bridges) %}
{%-   set persist = bridge.get("persist", net.persist) %}
{%-   set config_root = bridge.get("config_root", net.config_root) %}
{%-   if ensure == "absent" %}
xen-net-bridge-{{ name }}-absent:
  xen_net.bridge_absent:
    - name: {{ name | json }}
    - force: {{ bridge.get("force", False) | json }}
    - persist: {{ persist | json }}
    - config_root: {{ config_root | json }}
{%-     for key in ("netns", "dhcp", "restore_nic") if bridge.get(key) is not none %}
    - {{ key }}: {{ bridge[key] | json }}
{%-     endfor %}
{%-   else %}
xen-net-bridge-{{ name }}-present:
  xen_net.bridge_present:
    - name: {{ name | json }}
{#-     every key goes to the state, so a misspelt one is reported with its path #}
{%-     for key, value in bridge | dictsort if key not in ("ensure", "persist", "config_root", "force", "restore_nic") %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
    - persist: {{ persist | json }}
    - config_root: {{ config_root | json }}
{%-     if packages %}
    - require:
      - pkg: xen-net-packages-installed
{%-     endif %}
{%-   endif %}
{%- endfor %}

{%- for name, network in networks | dictsort %}
{%-   set network = {} if network is none else network %}
{%-   set problems = checked("networks", name, network, network_ensures, xen.ensure.networks) %}
{%-   if problems %}
xen-net-network-{{ name }}-checked:
  test.fail_without_changes:
    - name: {{ ("xen:networks:" ~ name) | json }}
    - comment: {{ (problems ~ "; nothing was changed for this network") | json }}
{%-     continue %}
{%-   endif %}
{%-   set ensure = network.get("ensure", xen.ensure.networks) %}
{%-   if ensure == "absent" %}
xen-net-network-{{ name }}-absent:
  xen_net.network_absent:
    - name: {{ name | json }}
    - force: {{ network.get("force", False) | json }}
{%-   else %}
xen-net-network-{{ name }}-{{ ensure }}:
  xen_net.network_{{ ensure }}:
    - name: {{ name | json }}
{#-     every key goes to the state (restart only to a running one), so a misspelt one is reported #}
{%-     for key, value in network | dictsort if key not in ("ensure", "force") and (ensure == "running" or key != "restart") %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
{%-     set host_bridge = network.get("bridge") %}
{%-     if network.get("forward") == "bridge" and host_bridge in bridges
          and (bridges[host_bridge] or {}) is mapping
          and (bridges[host_bridge] or {}).get("ensure", xen.ensure.bridges) == "present"
          and not checked("bridges", host_bridge, bridges[host_bridge] or {}, bridge_ensures, xen.ensure.bridges) %}
    - require:
      - xen_net: xen-net-bridge-{{ host_bridge }}-present
{%-     endif %}
{%-   endif %}
{%- endfor %}
