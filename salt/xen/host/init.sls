{#- Prepare a Xen host, as the tutorial did by hand: check the CPU, install Xen,
    the dom0 tools and libvirt, make the image, save and boot directories, make GRUB
    boot Xen by default, and enable the Xen, xendomains and libvirtd services.
    Settings: map.jinja (parameters/, pillar xen:lookup or xen:host); with
    xen:host:manage: false, xen (init.sls) leaves this part out.
    Undo: xen.host.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set host = xen.host %}
{%- set dirs = {"images": xen.disk.image_dir, "save": xen.guest.save_dir, "boot": xen.install.boot_dir} %}
{%- set flags = grains.get("cpu_flags", []) %}
{%- set missing = host.require_cpu_flags | reject("in", flags) | list %}

{%- if missing %}
xen-host-cpu-checked:
  test.fail_without_changes:
    - name: {{ ("this CPU lacks " ~ missing | join(", ") ~ ": Xen cannot run here; nothing was installed") | json }}
{%- else %}
{%-   if not (host.hvm_cpu_flags | select("in", flags) | list) %}
xen-host-cpu-hvm-noted:
  test.show_notification:
    - text: "no vmx/svm CPU flag: HVM (full-virtual) guests cannot run here; PV guests can"
{%-   endif %}

xen-host-packages-installed:
  pkg.installed:
    - pkgs: {{ host.pkgs | json }}

{%-   for purpose, dir in dirs | dictsort %}
xen-host-dir-{{ purpose }}-present:
  file.directory:
    - name: {{ dir | json }}
    - mode: "0700"
    - makedirs: true
{%-   endfor %}

xen-host-grub-file-present:
  file.managed:
    - name: {{ host.grub.dropin | json }}
    - replace: false
    - makedirs: true
    - require:
      - pkg: xen-host-packages-installed

xen-host-grub-boots-xen:
  file.keyvalue:
    - name: {{ host.grub.dropin | json }}
    - key_values:
{%-   if host.grub.default_entry %}
        GRUB_DEFAULT: {{ ('"' ~ host.grub.default_entry ~ '"') | json }}
{%-   endif %}
        GRUB_CMDLINE_XEN_DEFAULT: {{ ('"' ~ host.grub.xen_cmdline ~ '"') | json }}
    - separator: "="
    - append_if_not_found: true
    - require:
      - file: xen-host-grub-file-present

xen-host-grub-config-rebuilt:
  cmd.run:
    - name: {{ host.grub.mkconfig | json }}
    - onchanges:
      - file: xen-host-grub-boots-xen

{%-   for service in host.services %}
xen-host-service-{{ service }}-enabled:
  service.enabled:
    - name: {{ service | json }}
    - require:
      - pkg: xen-host-packages-installed
{%-   endfor %}

{%-   if grains.get("virtual_subtype") != "Xen Dom0" %}
xen-host-reboot-noted:
  test.show_notification:
    - text: {{ ("this host is not running under the Xen hypervisor yet (kernel " ~ grains.get("kernelrelease")
                ~ "): reboot into the Xen entry GRUB now boots by default") | json }}
{%-   endif %}
{%- endif %}
