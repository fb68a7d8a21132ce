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
    Undo: xen.disks.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set disks = salt["pillar.get"]("xen:disks", {}) or {} %}
{%- set pools = salt["pillar.get"]("xen:pools", {}) or {} %}
{%- set packages = xen.disk.packages %}
{%- set known = ["path", "ensure", "size", "format", "allocation", "label", "partitions", "force",
                 "filesystems", "attach", "move", "delete"] %}
{%- set ensures = ("present", "absent") %}

{%- if packages %}
xen-disk-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{#- libvirt storage pools (xen:pools), so virsh vol-list and virt-manager see the disks #}
{%- for pool, spec in pools | dictsort %}
{%-   set spec = {} if spec is none else spec %}
{%-   set ensure = spec.get("ensure", xen.ensure.pools) if spec is mapping else none %}
{%-   if spec is not mapping or ensure != "present" %}
{%-     if spec is mapping %}
{%-       set problem = "xen:pools:" ~ pool ~ ":ensure: expected present, got " ~ (ensure | json) %}
{%-     else %}
{%-       set problem = "xen:pools:" ~ pool ~ ": expected a mapping of settings, got " ~ (spec | json) %}
{%-     endif %}
xen-disk-pool-{{ pool }}-checked:
  test.fail_without_changes:
    - name: {{ ("xen:pools:" ~ pool) | json }}
    - comment: {{ (problem ~ "; nothing was changed for this pool") | json }}
{%-     continue %}
{%-   endif %}
xen-disk-pool-{{ pool }}-present:
  xen_disk.pool_present:
    - name: {{ pool | json }}
{%-   for pkey, value in spec | dictsort if pkey != "ensure" %}
    - {{ pkey }}: {{ value | json }}
{%-   endfor %}
{%- endfor %}

{%- for key, disk in disks | dictsort %}
{%-   set disk = disk if disk is mapping else {} %}
{%-   set path = disk.get("path") %}
{%-   set ensure = disk.get("ensure", xen.ensure.disks) %}
{%-   set unknown = disk | reject("in", known) | list %}
{%-   if unknown or not path or ensure not in ensures %}
{%-     set found = [] %}
{%-     if not path %}
{%-       do found.append("path: the image file or LV path is missing") %}
{%-     endif %}
{%-     if ensure not in ensures %}
{%-       do found.append("ensure: expected one of " ~ ensures | join(", ") ~ ", got " ~ (ensure | json)) %}
{%-     endif %}
{%-     for bad in unknown %}
{%-       do found.append(bad ~ (": no longer a key; say ensure: absent" if bad == "absent"
                               else ": unknown key (expected one of " ~ known | join(", ") ~ ")")) %}
{%-     endfor %}
xen-disk-{{ key }}-checked:
  test.fail_without_changes:
    - name: {{ ("xen:disks:" ~ key) | json }}
    - comment: {{ ("xen:disks:" ~ key ~ ": " ~ found | join("; ") ~ "; nothing was changed for this disk") | json }}
{%-     continue %}
{%-   endif %}

{%-   if ensure == "absent" %}
xen-disk-{{ key }}-absent:
  xen_disk.absent:
    - name: {{ path | json }}
    - delete: {{ disk.get("delete", False) | json }}
{%-     continue %}
{%-   endif %}

{#-   a move makes its own target (an LV at least as large as the source) #}
{%-   set move = disk.get("move") %}
{%-   if move %}
xen-disk-{{ key }}-moved:
  xen_disk.moved:
    - name: {{ move.get("guest") | json }}
    - disk: {{ move.get("disk", "xvda") | json }}
    - to: {{ path | json }}
{%-     for mkey, value in move | dictsort if mkey not in ("guest", "disk") %}
    - {{ mkey }}: {{ value | json }}
{%-     endfor %}
{%-   elif disk.get("size") is not none %}
xen-disk-{{ key }}-present:
  xen_disk.present:
    - name: {{ path | json }}
    - size: {{ disk.size | json }}
    - format: {{ disk.get("format", xen.disk.format) | json }}
    - allocation: {{ disk.get("allocation", xen.disk.allocation) | json }}
{%-     if packages %}
    - require:
      - pkg: xen-disk-packages-installed
{%-     endif %}
{%-   endif %}
{%-   set made = ("xen_disk: xen-disk-" ~ key ~ ("-moved" if move else "-present")) if (move or disk.get("size") is not none) else None %}

{%-   if disk.get("partitions") is not none or disk.get("label") %}
xen-disk-{{ key }}-partitioned:
  xen_disk.partitioned:
    - name: {{ path | json }}
    - label: {{ disk.get("label", xen.disk.label) | json }}
{%-     if disk.get("partitions") is not none %}
    - partitions: {{ disk.partitions | json }}
{%-     endif %}
    - force: {{ disk.get("force", False) | json }}
{%-     if made %}
    - require:
      - {{ made }}
{%-     endif %}
{%-   endif %}

{%-   for part, fs in (disk.get("filesystems") or {}) | dictsort %}
{%-     set fs = fs if fs is mapping else {"fs_type": fs} %}
{%-     set part_id = "whole" if part in (0, "0", "disk", "whole") else "part" ~ part %}
xen-disk-{{ key }}-{{ part_id }}-formatted:
  xen_disk.formatted:
    - name: {{ path | json }}
{%-     if part_id != "whole" %}
    - partition: {{ part | json }}
{%-     endif %}
{%-     for fkey, value in fs | dictsort %}
    - {{ fkey }}: {{ value | json }}
{%-     endfor %}
{%-     if disk.get("partitions") is not none or disk.get("label") %}
    - require:
      - xen_disk: xen-disk-{{ key }}-partitioned
{%-     elif made %}
    - require:
      - {{ made }}
{%-     endif %}
{%-   endfor %}

{%-   set attach = disk.get("attach") %}
{%-   if attach %}
{%-     set attach = attach if attach is mapping else {"guest": attach} %}
xen-disk-{{ key }}-attached:
  xen_disk.attached:
    - name: {{ path | json }}
{%-     for akey, value in attach | dictsort %}
    - {{ akey }}: {{ value | json }}
{%-     endfor %}
{%-     if made or disk.get("filesystems") %}
    - require:
{%-       if made %}
      - {{ made }}
{%-       endif %}
{%-       for part, fs in (disk.get("filesystems") or {}) | dictsort %}
      - xen_disk: xen-disk-{{ key }}-{{ "whole" if part in (0, "0", "disk", "whole") else "part" ~ part }}-formatted
{%-       endfor %}
{%-     endif %}
{%-   endif %}
{%- endfor %}
