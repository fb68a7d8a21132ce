{#- Guest disks from pillar xen:disks (and libvirt storage pools from xen:pools): images/LVs,
    partitions, filesystems, attachment, moves. See pillar/xen/disks.sls for an example.

    Per disk, keyed by a short name used in the state IDs:
      path                      the image file or LV (required)
      ensure: present (default) | absent
      present: size (made when missing; format, allocation), label + partitions, filesystems,
               attach, move (a move entry's keys but guest and disk, that is shutdown,
               remove_source, force, timeout, format: raw|qcow2, go to xen_disk.moved as they are)
      absent:  the image or LV is deleted, only with delete: true (refused while a guest uses it)
      delete: true              the data may be destroyed: now with ensure: absent, otherwise
                                by xen.disks.clean
    State IDs: xen-disk-NAME-present, -partitioned, -partN-formatted, -whole-formatted,
    -attached, -moved, -absent; xen-disk-pool-NAME-present.
    Per pool: ensure: present (the only state; a pool definition is removed with virsh
    pool-undefine); every other key goes to xen_disk.pool_present.
    Defaults (map.jinja): format, allocation and label from disk:*, ensure from xen:ensure:disks
    and xen:ensure:pools; packages (disk:packages, pillar xen:disk:packages) installed first.
    Nothing is deleted, shrunk or repartitioned unless the entry says so (delete, force).
    Each entry is checked whole while rendering, by the library (xen_disk.check_entry,
    xen_disk.check_pool), before any of its states runs. An attach or move may name a guest
    defined on this host or by xen:guests or xen:clones of the same run; for a guest not
    defined yet, it runs last, after xen.guests and xen.clones made the guest. An entry with
    problems is one failing xen-disk-NAME-checked (xen-disk-pool-NAME-checked) listing each
    with its key path (xen:disks:NAME:size: expected ...), under test=True too, and nothing
    of it runs; xen-disks-checked / xen-disk-pools-checked when a section is not a mapping.
    Values go to the xen_disk states as they are (| json), with pillar_path xen:disks:NAME
    (xen:pools:NAME), so an error at run time names its entry too. Keys of a section or of
    filesystems may be numbers and text alike (101, vm02): they are sorted and passed as text.
    Undo: xen.disks.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys, module_missing with context %}
{%- set disks = salt["pillar.get"]("xen:disks", {}) %}
{%- set pools = salt["pillar.get"]("xen:pools", {}) %}
{%- if disks is not none and disks is not mapping %}
{{ refused("xen-disks-checked", "xen:disks", "a mapping of short disk names to settings (path, size, ...)", disks) }}
{%- endif %}
{%- if pools is not none and pools is not mapping %}
{{ refused("xen-disk-pools-checked", "xen:pools", "a mapping of pool names to settings", pools) }}
{%- endif %}
{%- set disks_by_key, pools_by_name = {}, {} %}
{{- text_keys(disks, disks_by_key, "xen:disks") }}
{{- text_keys(pools, pools_by_name, "xen:pools") }}
{%- if (disks_by_key or pools_by_name) and "xen_disk.check_entry" not in salt %}
{{ module_missing("xen-disk-module-checked", "xen:disks", "xen_disk.check_entry") }}
{%-   do disks_by_key.clear() %}
{%-   do pools_by_name.clear() %}
{%- endif %}
{%- set packages = xen.disk.packages %}

{#- the guests this run defines (xen:guests, xen:clones, but those it removes): an attach or
    move may name one; for one not defined yet it runs last, once xen.guests or xen.clones made it #}
{%- set planned = [] %}
{%- for section, default in (("xen:guests", xen.ensure.guests), ("xen:clones", xen.ensure.clones)) %}
{%-   set entries = salt["pillar.get"](section, {}) %}
{%-   for name, entry in (entries if entries is mapping else {}).items()
        if not (entry is mapping and (entry.get("ensure", default) | string | lower) == "absent") %}
{%-     do planned.append(name | string) %}
{%-   endfor %}
{%- endfor %}
{%- set defined = salt["xen_guest.list"]() if planned and disks_by_key else [] %}

{%- if packages %}
xen-disk-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{#- libvirt storage pools (xen:pools), so virsh vol-list and virt-manager see the disks #}
{%- for pool, spec in pools_by_name | dictsort %}
{%-   set spec = {} if spec is none else spec %}
{%-   set entry = dict(spec, ensure=spec.get("ensure", xen.ensure.pools)) if spec is mapping else spec %}
{%-   set problems = salt["xen_disk.check_pool"](pool, entry) %}
{%-   if problems %}
{{ refused("xen-disk-pool-" ~ pool ~ "-checked", "xen:pools:" ~ pool, none, none, problems | join("; ")) }}
{%-     continue %}
{%-   endif %}
{{ ("xen-disk-pool-" ~ pool ~ "-present") | json }}:
  xen_disk.pool_present:
    - name: {{ pool | json }}
{%-   for pkey, value in spec | dictsort if pkey != "ensure" %}
    - {{ pkey | json }}: {{ value | json }}
{%-   endfor %}
    - pillar_path: {{ ("xen:pools:" ~ pool) | json }}
{%- endfor %}

{%- for key, disk in disks_by_key | dictsort %}
{%-   set disk = {} if disk is none else disk %}
{%-   set entry = dict(disk, ensure=disk.get("ensure", xen.ensure.disks)) if disk is mapping else disk %}
{%-   set problems = salt["xen_disk.check_entry"](key, entry, planned) %}
{%-   if problems %}
{{ refused("xen-disk-" ~ key ~ "-checked", "xen:disks:" ~ key, none, none, problems | join("; ")) }}
{%-     continue %}
{%-   endif %}
{#-   the entry is as the library wants it: its parts read here are of the right shape #}
{%-   set path = disk.path %}
{%-   set ensure = entry.ensure | trim | lower %}
{%-   set where = ("xen:disks:" ~ key) | json %}
{%-   set filesystems = {} %}
{{-   text_keys(disk.get("filesystems"), filesystems, "xen:disks:" ~ key ~ ":filesystems") }}

{%-   if ensure == "absent" %}
{{ ("xen-disk-" ~ key ~ "-absent") | json }}:
  xen_disk.absent:
    - name: {{ path | json }}
    - delete: {{ disk.get("delete", False) | json }}
    - pillar_path: {{ where }}
{%-     continue %}
{%-   endif %}

{#-   a move makes its own target (an LV at least as large as the source) #}
{%-   set move = disk.get("move") %}
{%-   if move %}
{{ ("xen-disk-" ~ key ~ "-moved") | json }}:
  xen_disk.moved:
    - name: {{ move.get("guest") | json }}
    - disk: {{ move.get("disk", "xvda") | json }}
    - to: {{ path | json }}
{%-     for mkey, value in move | dictsort if mkey not in ("guest", "disk") %}
    - {{ mkey | json }}: {{ value | json }}
{%-     endfor %}
    - pillar_path: {{ where }}
{%-     if move.guest in planned and move.guest not in defined %}
    - order: last
{%-     endif %}
{%-   elif disk.get("size") is not none %}
{{ ("xen-disk-" ~ key ~ "-present") | json }}:
  xen_disk.present:
    - name: {{ path | json }}
    - size: {{ disk.size | json }}
    - format: {{ disk.get("format", xen.disk.format) | json }}
    - allocation: {{ disk.get("allocation", xen.disk.allocation) | json }}
    - pillar_path: {{ where }}
{%-     if packages %}
    - require:
      - pkg: xen-disk-packages-installed
{%-     endif %}
{%-   endif %}
{%-   set made = ("xen_disk: " ~ (("xen-disk-" ~ key ~ ("-moved" if move else "-present")) | json)) if (move or disk.get("size") is not none) else None %}

{%-   if disk.get("partitions") is not none or disk.get("label") %}
{{ ("xen-disk-" ~ key ~ "-partitioned") | json }}:
  xen_disk.partitioned:
    - name: {{ path | json }}
    - label: {{ disk.get("label", xen.disk.label) | json }}
{%-     if disk.get("partitions") is not none %}
    - partitions: {{ disk.partitions | json }}
{%-     endif %}
    - force: {{ disk.get("force", False) | json }}
    - pillar_path: {{ where }}
{%-     if made %}
    - require:
      - {{ made }}
{%-     endif %}
{%-   endif %}

{%-   for part, fs in filesystems | dictsort %}
{%-     set fs = fs if fs is mapping else {"fs_type": fs} %}
{%-     set part_id = "whole" if part in ("0", "disk", "whole") else "part" ~ part %}
{{ ("xen-disk-" ~ key ~ "-" ~ part_id ~ "-formatted") | json }}:
  xen_disk.formatted:
    - name: {{ path | json }}
{%-     if part_id != "whole" %}
    - partition: {{ part | int }}
{%-     endif %}
{%-     for fkey, value in fs | dictsort %}
    - {{ fkey | json }}: {{ value | json }}
{%-     endfor %}
    - pillar_path: {{ where }}
{%-     if disk.get("partitions") is not none or disk.get("label") %}
    - require:
      - xen_disk: {{ ("xen-disk-" ~ key ~ "-partitioned") | json }}
{%-     elif made %}
    - require:
      - {{ made }}
{%-     endif %}
{%-   endfor %}

{%-   set attach = disk.get("attach") %}
{%-   if attach %}
{%-     set attach = attach if attach is mapping else {"guest": attach} %}
{{ ("xen-disk-" ~ key ~ "-attached") | json }}:
  xen_disk.attached:
    - name: {{ path | json }}
{%-     for akey, value in attach | dictsort %}
    - {{ akey | json }}: {{ value | json }}
{%-     endfor %}
    - pillar_path: {{ where }}
{%-     if attach.guest in planned and attach.guest not in defined %}
    - order: last
{%-     endif %}
{%-     if made or filesystems %}
    - require:
{%-       if made %}
      - {{ made }}
{%-       endif %}
{%-       for part in filesystems | sort %}
      - xen_disk: {{ ("xen-disk-" ~ key ~ "-" ~ ("whole" if part in ("0", "disk", "whole") else "part" ~ part) ~ "-formatted") | json }}
{%-       endfor %}
{%-     endif %}
{%-   endif %}
{%- endfor %}
