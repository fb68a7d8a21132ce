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
    Values go to the xen_disk states as they are (| json) and the states check them. This SLS
    checks the shapes it reads (xen:disks, xen:pools, each entry, an entry's move and
    filesystems: mappings; attach: a guest name or a mapping) and, until the xen_disk states
    take a pillar_path and a whole entry, an entry's keys (a path, known keys, ensure):
    each a failing xen-disk-NAME-checked (xen-disks-checked, xen-disk-pools-checked for a
    section), naming the key path, under test=True too.
    Undo: xen.disks.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, got with context %}
{%- set disks = salt["pillar.get"]("xen:disks", {}) %}
{%- set pools = salt["pillar.get"]("xen:pools", {}) %}
{%- if disks is not none and disks is not mapping %}
{{ refused("xen-disks-checked", "xen:disks", "a mapping of short disk names to settings (path, size, ...)", disks) }}
{%-   set disks = {} %}
{%- endif %}
{%- if pools is not none and pools is not mapping %}
{{ refused("xen-disk-pools-checked", "xen:pools", "a mapping of pool names to settings", pools) }}
{%-   set pools = {} %}
{%- endif %}
{%- set disks = disks or {} %}
{%- set pools = pools or {} %}
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
{%-   set ensure = ensure | lower if ensure is string else ensure %}
{%-   if spec is not mapping %}
{{ refused("xen-disk-pool-" ~ pool ~ "-checked", "xen:pools:" ~ pool, "a mapping of settings", spec) }}
{%-     continue %}
{%-   elif ensure != "present" %}
{{ refused("xen-disk-pool-" ~ pool ~ "-checked", "xen:pools:" ~ pool ~ ":ensure", "present", spec.ensure) }}
{%-     continue %}
{%-   endif %}
{{ ("xen-disk-pool-" ~ pool ~ "-present") | json }}:
  xen_disk.pool_present:
    - name: {{ pool | json }}
{%-   for pkey, value in spec | dictsort if pkey != "ensure" %}
    - {{ pkey | json }}: {{ value | json }}
{%-   endfor %}
{%- endfor %}

{%- for key, disk in disks | dictsort %}
{%-   set disk = {} if disk is none else disk %}
{%-   if disk is not mapping %}
{{ refused("xen-disk-" ~ key ~ "-checked", "xen:disks:" ~ key, "a mapping of settings (path, size, ...)", disk) }}
{%-     continue %}
{%-   endif %}
{#-   the parts read here as mappings; their values go to the states as they are #}
{%-   set shapes = [] %}
{%-   for part, what in (("move", "a mapping like {guest: newvm, disk: xvda}"),
                          ("filesystems", "a mapping of partition numbers (or whole) to filesystems")) %}
{%-     if disk.get(part) is not none and disk[part] is not mapping %}
{%-       do shapes.append("xen:disks:" ~ key ~ ":" ~ part ~ ": expected " ~ what ~ ", got " ~ got(disk[part])) %}
{%-     endif %}
{%-   endfor %}
{%-   if disk.get("attach") is not none and not (disk.attach is mapping or disk.attach is string) %}
{%-     do shapes.append("xen:disks:" ~ key ~ ":attach: expected a guest name or a mapping like {guest: newvm, target: xvdb}, got " ~ got(disk.attach)) %}
{%-   endif %}
{%-   if shapes %}
{{ refused("xen-disk-" ~ key ~ "-checked", "xen:disks:" ~ key, none, none, shapes | join("; ")) }}
{%-     continue %}
{%-   endif %}
{%-   set path = disk.get("path") %}
{%-   set ensure = disk.get("ensure", xen.ensure.disks) %}
{%-   set ensure = ensure | lower if ensure is string else ensure %}
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
{{ refused("xen-disk-" ~ key ~ "-checked", "xen:disks:" ~ key, none, none, "xen:disks:" ~ key ~ ": " ~ found | join("; ")) }}
{%-     continue %}
{%-   endif %}

{%-   if ensure == "absent" %}
{{ ("xen-disk-" ~ key ~ "-absent") | json }}:
  xen_disk.absent:
    - name: {{ path | json }}
    - delete: {{ disk.get("delete", False) | json }}
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
{%-   elif disk.get("size") is not none %}
{{ ("xen-disk-" ~ key ~ "-present") | json }}:
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
{%-     if made %}
    - require:
      - {{ made }}
{%-     endif %}
{%-   endif %}

{%-   for part, fs in (disk.get("filesystems") or {}) | dictsort %}
{%-     set fs = fs if fs is mapping else {"fs_type": fs} %}
{%-     set part_id = "whole" if part in (0, "0", "disk", "whole") else "part" ~ part %}
{{ ("xen-disk-" ~ key ~ "-" ~ part_id ~ "-formatted") | json }}:
  xen_disk.formatted:
    - name: {{ path | json }}
{%-     if part_id != "whole" %}
    - partition: {{ part | json }}
{%-     endif %}
{%-     for fkey, value in fs | dictsort %}
    - {{ fkey | json }}: {{ value | json }}
{%-     endfor %}
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
{%-     if made or disk.get("filesystems") %}
    - require:
{%-       if made %}
      - {{ made }}
{%-       endif %}
{%-       for part, fs in (disk.get("filesystems") or {}) | dictsort %}
      - xen_disk: {{ ("xen-disk-" ~ key ~ "-" ~ ("whole" if part in (0, "0", "disk", "whole") else "part" ~ part) ~ "-formatted") | json }}
{%-       endfor %}
{%-     endif %}
{%-   endif %}
{%- endfor %}
