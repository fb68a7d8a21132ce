{#- Xen networking from pillar: host bridges (xen:bridges) and libvirt networks (xen:networks).
    See pillar/xen/networks.sls for an example. How bridges persist across reboots comes from
    map.jinja (parameters/os_family/*.yaml, key network:persist); pillar xen:network:* overrides. #}
{%- set files = salt["cp.list_master"](prefix=tpldir ~ "/") %}
{%- if tpldir ~ "/map.jinja" in files %}
{%-   from tpldir ~ "/map.jinja" import mapdata as xen with context %}
{%- else %}
{#-   without map.jinja: the os_family parameter file alone #}
{%-   set osf = tpldir ~ "/parameters/os_family/" ~ grains.get("os_family", "") ~ ".yaml" %}
{%-   if osf in files %}
{%-     import_yaml osf as xen %}
{%-   else %}
{%-     set xen = {} %}
{%-   endif %}
{%- endif %}
{%- set net = xen.get("network", {}) %}
{%- set persist = salt["pillar.get"]("xen:network:persist", net.get("persist", "auto")) %}
{%- set config_root = salt["pillar.get"]("xen:network:config_root", net.get("config_root", "/")) %}
{%- set packages = salt["pillar.get"]("xen:network:packages", net.get("packages", [])) %}
{%- set bridges = salt["pillar.get"]("xen:bridges", {}) %}
{%- set networks = salt["pillar.get"]("xen:networks", {}) %}

{%- if packages and bridges %}
xen-net-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{%- for name, bridge in bridges | dictsort %}
{%-   set bridge = bridge or {} %}
{%-   if bridge.get("absent") %}
xen-net-bridge-{{ name }}-absent:
  xen_net.bridge_absent:
    - name: {{ name }}
    - force: {{ bridge.get("force", False) | json }}
    - persist: {{ bridge.get("persist", persist) | json }}
    - config_root: {{ bridge.get("config_root", config_root) | json }}
{%-     if bridge.get("netns") %}
    - netns: {{ bridge.netns | json }}
{%-     endif %}
{%-   else %}
xen-net-bridge-{{ name }}-present:
  xen_net.bridge_present:
    - name: {{ name }}
{#-     every key goes to the state, so a misspelt one is reported with its path #}
{%-     for key, value in bridge | dictsort if key not in ("persist", "config_root") %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
    - persist: {{ bridge.get("persist", persist) | json }}
    - config_root: {{ bridge.get("config_root", config_root) | json }}
{%-     if packages %}
    - require:
      - pkg: xen-net-packages-installed
{%-     endif %}
{%-   endif %}
{%- endfor %}

{%- for name, network in networks | dictsort %}
{%-   set network = network or {} %}
{%-   if network.get("absent") %}
xen-net-network-{{ name }}-absent:
  xen_net.network_absent:
    - name: {{ name }}
    - force: {{ network.get("force", False) | json }}
{%-   else %}
{%-     set running = network.get("running", True) %}
xen-net-network-{{ name }}-{{ "running" if running else "defined" }}:
  xen_net.{{ "network_running" if running else "network_defined" }}:
    - name: {{ name }}
{%-     for key, value in network | dictsort if key not in ("running",) and (running or key != "restart") %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
{%-     set host_bridge = network.get("bridge") %}
{%-     if network.get("forward") == "bridge" and host_bridge in bridges
          and not (bridges[host_bridge] or {}).get("absent") %}
    - require:
      - xen_net: xen-net-bridge-{{ host_bridge }}-present
{%-     endif %}
{%-   endif %}
{%- endfor %}
