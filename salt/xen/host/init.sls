{#- Prepare a Xen host, as the tutorial did by hand: check the CPU and the settings, add
    the package repository the distribution needs (RHEL family), install Xen, the dom0
    tools and libvirt, make the image, save and boot directories, make GRUB boot Xen by
    default with dom0's memory and CPUs, enable the services (those that need Xen are
    started only once the host runs as dom0), set what happens to the guests when dom0
    shuts down (libvirt-guests for libvirt's guests, xendomains for xl configs in
    /etc/xen/auto only), say when a reboot is needed and reboot when pillar asks for it.
    Settings: map.jinja (parameters/, pillar xen:lookup or xen:host); with
    xen:host:manage: false, xen (init.sls) leaves this part out. What it does on each
    family, the reboot and the guests across a dom0 shutdown: docs/host.md.
    Undo: xen.host.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import text_keys with context %}
{%- set host = xen.host %}
{%- set grub = host.grub %}
{%- set dirs = {"images": xen.disk.image_dir, "save": xen.guest.save_dir, "boot": xen.install.boot_dir} %}
{%- set flags = grains.get("cpu_flags", []) %}
{%- set missing = host.require_cpu_flags | reject("in", flags) | list %}
{%- set facts = grains.get("xen") or {} %}
{%- set dom0 = facts.get("dom0") is sameas true %}

{#- The settings, all checked before anything is rendered: each problem with its key path. #}
{%- set problems = [] %}
{%- set mem = host.dom0_mem | string | trim %}
{%- set mem_mib = none %}
{%- if mem | regex_match("^([0-9]+)(M|MiB)?$", ignorecase=True) %}
{%-   set mem_mib = mem | regex_replace("[^0-9]", "") | int %}
{%- elif mem | regex_match("^([0-9]+)(G|GiB)$", ignorecase=True) %}
{%-   set mem_mib = (mem | regex_replace("[^0-9]", "") | int) * 1024 %}
{%- endif %}
{%- if not mem_mib %}
{%-   do problems.append("xen:host:dom0_mem: expected a size in MiB above 0 (1024) or with M or G (2G), got " ~ host.dom0_mem | json) %}
{%- endif %}
{%- if host.dom0_max_vcpus is not integer or host.dom0_max_vcpus is boolean or host.dom0_max_vcpus < 1 %}
{%-   do problems.append("xen:host:dom0_max_vcpus: expected a whole number of at least 1, got " ~ host.dom0_max_vcpus | json) %}
{%- endif %}
{%- if host.reboot is not sameas true and host.reboot is not sameas false %}
{%-   do problems.append("xen:host:reboot: expected true or false, got " ~ host.reboot | json) %}
{%- endif %}
{%- if host.on_shutdown not in ["save", "shutdown"] %}
{%-   do problems.append("xen:host:on_shutdown: expected one of save, shutdown, got " ~ host.on_shutdown | json) %}
{%- endif %}

{#- Guests that must be shut down, not saved, when dom0 shuts down: their own choice, or
    PCI devices (a guest holding a host device cannot be saved). #}
{#- names as text, so numbers and text (101, vm02) sort together #}
{%- set guests = {} %}
{{- text_keys(salt["pillar.get"]("xen:guests", {}), guests, "xen:guests") }}
{%- set shut_down = [] %}
{%- for name, guest in guests | dictsort %}
{%-   if guest is mapping %}
{%-     set choice = guest.get("on_host_shutdown") %}
{%-     if choice is not none and choice not in ["save", "shutdown"] %}
{%-       do problems.append("xen:guests:" ~ name ~ ":on_host_shutdown: expected one of save, shutdown, got " ~ choice | json) %}
{%-     elif guest.get("pci") %}
{%-       do shut_down.append(name ~ " (PCI devices)") %}
{%-     elif choice == "shutdown" %}
{%-       do shut_down.append(name ~ " (on_host_shutdown: shutdown)") %}
{%-     endif %}
{%-   endif %}
{%- endfor %}
{%- set on_shutdown = "shutdown" if host.on_shutdown == "shutdown" or shut_down else "suspend" %}
{#- A libvirt guest with an xl config in /etc/xen/auto would be handled by both
    libvirt-guests and xendomains: found by file name (NAME or NAME.cfg). #}
{%- set both = [] %}
{%- for name in guests | sort %}
{%-   for file in [name, name ~ ".cfg"] %}
{%-     set path = host.xendomains.auto_dir ~ "/" ~ file %}
{%-     if salt["file.file_exists"](path) %}
{%-       do both.append(path) %}
{%-     endif %}
{%-   endfor %}
{%- endfor %}

{%- if problems %}
{#- a failure under test=True too (fail_without_changes would say None there) #}
{%-   set said = problems | join("; ") ~ "; nothing was installed" %}
xen-host-settings-checked:
  test.configurable_test_state:
    - name: {{ said | json }}
    - comment: {{ said | json }}
    - changes: false
    - result: false
    - allow_test_mode_failure: true
{%- elif missing %}
{%-   set said = "this CPU lacks " ~ missing | join(", ") ~ ": Xen cannot run here; nothing was installed" %}
xen-host-cpu-checked:
  test.configurable_test_state:
    - name: {{ said | json }}
    - comment: {{ said | json }}
    - changes: false
    - result: false
    - allow_test_mode_failure: true
{%- else %}
{%-   if not (host.hvm_cpu_flags | select("in", flags) | list) %}
xen-host-cpu-hvm-noted:
  test.show_notification:
    - text: "no vmx/svm CPU flag: HVM (full-virtual) guests cannot run here; PV guests can"
{%-   endif %}

{%-   if host.repo %}
xen-host-repo-present:
  pkgrepo.managed:
{%-     set repo = {} %}
{{-     text_keys(host.repo, repo, "xen:host:repo") }}
{%-     for key, value in repo | dictsort %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
    - require_in:
      - pkg: xen-host-packages-installed
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

{#- GRUB: Xen as the default entry, dom0's share on Xen's command line. #}
{%-   set xen_cmdline = ("dom0_mem=" ~ mem_mib ~ "M,max:" ~ mem_mib ~ "M dom0_max_vcpus=" ~ host.dom0_max_vcpus
                         ~ (" " ~ grub.xen_cmdline_extra if grub.xen_cmdline_extra else "")) %}
{%-   set grub_keys = {"GRUB_CMDLINE_XEN_DEFAULT": '"' ~ xen_cmdline ~ '"'} %}
{%-   if grub.default_entry %}
{#-     a plain word (saved, 0) as the distribution writes it, a title in quotes #}
{%-     set entry = grub.default_entry | string %}
{%-     do grub_keys.update({"GRUB_DEFAULT": entry if entry | regex_match("^[A-Za-z0-9_.>-]+$") else '"' ~ entry ~ '"'}) %}
{%-   endif %}
{%-   if grub.dropin_is_own %}
xen-host-grub-boots-xen:
  file.managed:
    - name: {{ grub.dropin | json }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (xen.host): boot Xen by default, with dom0's share of the host.
        # Edit pillar xen:host (dom0_mem, dom0_max_vcpus), not this file.
{%-     for key, value in grub_keys | dictsort %}
        {{ key }}={{ value }}
{%-     endfor %}
    - require:
      - pkg: xen-host-packages-installed
{%-   else %}
xen-host-grub-boots-xen:
  file.keyvalue:
    - name: {{ grub.dropin | json }}
    - key_values: {{ grub_keys | json }}
    - separator: "="
    - append_if_not_found: true
    - require:
      - pkg: xen-host-packages-installed
{%-   endif %}

xen-host-grub-config-rebuilt:
  cmd.run:
    - name: {{ grub.mkconfig | json }}
    - onchanges:
      - file: xen-host-grub-boots-xen
      - pkg: xen-host-packages-installed
{%-   if grub.set_default %}

xen-host-grub-default-is-xen:
  cmd.run:
    - name: {{ grub.set_default | json }}
{%-     if grub.set_default_unless %}
    - unless: {{ grub.set_default_unless | json }}
{%-     endif %}
    - require:
      - cmd: xen-host-grub-config-rebuilt
{%-   endif %}

{#- Services: enabled now; those that need the hypervisor are started once it runs. #}
{%-   for service in host.services.now %}
xen-host-service-{{ service }}-running:
  service.running:
    - name: {{ service | json }}
    - enable: true
    - require:
      - pkg: xen-host-packages-installed
{%-   endfor %}
{%-   for service in host.services.under_xen %}
{%-     if dom0 %}
xen-host-service-{{ service }}-running:
  service.running:
    - name: {{ service | json }}
    - enable: true
{%-     else %}
xen-host-service-{{ service }}-enabled:
  service.enabled:
    - name: {{ service | json }}
{%-     endif %}
    - require:
      - pkg: xen-host-packages-installed
      - file: xen-host-guests-on-shutdown-libvirt
      - file: xen-host-guests-on-shutdown-xendomains
{%-   endfor %}

{#- Guests across a dom0 shutdown: libvirt-guests saves (or shuts down) libvirt's guests
    and brings the saved ones back at boot; libvirtd starts the autostart ones; xendomains
    acts only on the xl configs in /etc/xen/auto, and never saves, so no guest is handled
    by both. #}
{%-   if shut_down and host.on_shutdown == "save" %}
xen-host-guests-on-shutdown-noted:
  test.show_notification:
    - text: {{ ("libvirt-guests treats every guest alike and these must be shut down, not saved: "
                ~ shut_down | join(", ") ~ "; so every guest is shut down when dom0 shuts down") | json }}
{%-   endif %}

{%-   if both %}
{%-     set said = ("libvirt-guests and xendomains would both act on these guests of xen:guests: "
                   ~ both | join(", ") ~ "; remove their xl configs from " ~ host.xendomains.auto_dir
                   ~ " (libvirt's autostart is its own mark)") %}
xen-host-guests-one-keeper-checked:
  test.configurable_test_state:
    - name: {{ said | json }}
    - comment: {{ said | json }}
    - changes: false
    - result: false
    - allow_test_mode_failure: true
{%-   endif %}

xen-host-guests-on-shutdown-libvirt:
  file.managed:
    - name: {{ host.libvirt_guests.file | json }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (xen.host): what libvirt-guests does with libvirt's Xen guests when
        # dom0 shuts down and boots. Edit pillar xen:host:on_shutdown, not this file.
{%-   if shut_down %}
        # Shut down, not saved, because of: {{ shut_down | join(", ") }}
{%-   endif %}
        URIS={{ host.libvirt_guests.uri }}
        ON_SHUTDOWN={{ on_shutdown }}
        ON_BOOT={{ "start" if on_shutdown == "suspend" else "ignore" }}
        START_DELAY=0
        PARALLEL_SHUTDOWN={{ host.libvirt_guests.parallel_shutdown }}
        SHUTDOWN_TIMEOUT={{ host.libvirt_guests.shutdown_timeout }}
        BYPASS_CACHE=0
        SYNC_TIME=1
    - require:
      - pkg: xen-host-packages-installed

xen-host-guests-on-shutdown-xendomains:
  file.managed:
    - name: {{ host.xendomains.file | json }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (xen.host): xendomains starts and shuts down only the xl guests
        # configured in {{ host.xendomains.auto_dir }}; it never saves or restores (libvirt's
        # guests are libvirt-guests'). Do not put a libvirt guest's config there.
        XENDOMAINS_AUTO={{ host.xendomains.auto_dir }}
        XENDOMAINS_AUTO_ONLY=true
        XENDOMAINS_SAVE=
        XENDOMAINS_RESTORE=false
        XENDOMAINS_MIGRATE=
        XENDOMAINS_SHUTDOWN="--wait"
        XENDOMAINS_SHUTDOWN_ALL=
        XENDOMAINS_STOP_MAXWAIT={{ host.xendomains.stop_maxwait }}
        XENDOMAINS_SYSRQ=
        XENDOMAINS_USLEEP=100000
        XENDOMAINS_CREATE_USLEEP=5000000
    - require:
      - pkg: xen-host-packages-installed

{#- Reboot: a change a machine can read. Always while the host does not run the installed
    Xen (grain xen), else when this run changed GRUB. #}
{%-   if facts.get("reboot_required") %}
{%-     set reason = facts.get("reboot_reason") or "the installed Xen is not the running one" %}
{%-   elif not dom0 %}
{%-     set reason = "this host does not run under the Xen hypervisor yet" %}
{%-   else %}
{%-     set reason = none %}
{%-   endif %}
{%-   set said = {"changed": true, "reboot_required": {"old": false, "new": true},
                  "reason": reason or "GRUB changed: Xen's command line or default entry",
                  "comment": "reboot needed: " ~ (reason or "GRUB changed: Xen's command line or default entry")} %}
xen-host-reboot-required:
  cmd.run:
    - name: printf '%s\n' "$XEN_HOST_REBOOT"
    - env:
      - XEN_HOST_REBOOT: {{ said | json | json }}
    - stateful:
      - test_name: printf '%s\n' "$XEN_HOST_REBOOT"
{%-   if not reason %}
    - onchanges:
      - cmd: xen-host-grub-config-rebuilt
{%-     if grub.set_default %}
      - cmd: xen-host-grub-default-is-xen
{%-     endif %}
{%-   endif %}
{%-   if host.reboot %}

xen-host-rebooted:
  module.run:
    - system.reboot:
      - at_time: {{ host.reboot_delay_minutes | int }}
    - onchanges:
      - cmd: xen-host-reboot-required
    - order: last
{%-   endif %}
{%- endif %}
