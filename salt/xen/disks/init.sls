{#- Guest disks from pillar xen:disks (and libvirt storage pools from xen:pools): images/LVs, partitions, filesystems, attachment, moves.
    See pillar/xen/disks.sls for an example. One entry per disk, keyed by a short name used in
    the state IDs (xen-disk-NAME-present, -partitioned, -partN-formatted, -attached, -moved).
    A move entry's keys but guest and disk (shutdown, remove_source, force, timeout, format: raw|qcow2)
    go to xen_disk.moved as they are.
    Nothing is deleted, shrunk or repartitioned unless the entry says so (delete, force). #}
{%- set disks = salt["pillar.get"]("xen:disks", {}) %}
{%- set packages = salt["pillar.get"]("xen:disk:packages", []) %}
{%- set known = ["path", "size", "format", "allocation", "label", "partitions", "force",
                 "filesystems", "attach", "move", "absent", "delete"] %}

{%- if packages %}
xen-disk-packages-installed:
  pkg.installed:
    - pkgs: {{ packages | json }}
{%- endif %}

{#- libvirt storage pools (xen:pools), so virsh vol-list and virt-manager see the disks #}
{%- for pool, spec in salt["pillar.get"]("xen:pools", {}) | dictsort %}
xen-disk-pool-{{ pool }}-present:
  xen_disk.pool_present:
    - name: {{ pool | json }}
{%-   for pkey, value in (spec or {}) | dictsort %}
    - {{ pkey }}: {{ value | json }}
{%-   endfor %}
{%- endfor %}

{%- for key, disk in disks | dictsort %}
{%-   set disk = disk or {} %}
{%-   set path = disk.get("path") %}
{%-   set unknown = disk | reject("in", known) | list %}
{%-   if unknown or not path %}
xen-disk-{{ key }}-checked:
  test.fail_without_changes:
    - name: xen:disks:{{ key }}
    - comment: >-
        xen:disks:{{ key }}:
        {%- if not path %} path: the image file or LV path is missing;{% endif %}
        {%- for bad in unknown %} {{ bad }}: unknown key (expected one of {{ known | join(", ") }});{% endfor %}
        nothing was changed for this disk
{%-     continue %}
{%-   endif %}

{%-   if disk.get("absent") %}
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
    - format: {{ disk.get("format", "raw") | json }}
    - allocation: {{ disk.get("allocation", "sparse") | json }}
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
    - label: {{ disk.get("label", "gpt") | json }}
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
