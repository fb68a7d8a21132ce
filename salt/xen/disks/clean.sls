{#- Undo xen.disks without losing data.

    Removes: each attachment an entry of xen:disks made (attach:), from the guest's
    definition and the running guest (xen_disk.detached), unless that guest is in
    xen:guests (xen.guests.clean removes the whole guest); and the image file or LV of
    an entry that says delete: true (refused while a guest still uses it).
    Keeps: every other image and LV with its partitions and filesystems, the source
    and target of a move (the guest keeps the disk it was moved to), the storage pools
    of xen:pools (a pool definition holds no data; there is no state to remove one),
    and the packages.
    Entries with ensure: absent are left alone (already gone).
    With test=True a disk still attached shows its deletion as refused: the detach
    that comes first in the real run has not happened.
    State IDs: xen-disk-NAME-detached, xen-disk-NAME-absent; xen-disks-checked when
    xen:disks is not a mapping (entries of the wrong shape are left to xen.disks to report).
    The states get pillar_path xen:disks:NAME, so their errors name the entry; keys that are
    numbers and text alike (101, vm02) are sorted and passed as text. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys with context %}
{%- set disks = salt["pillar.get"]("xen:disks", {}) %}
{%- if disks is not none and disks is not mapping %}
{{ refused("xen-disks-checked", "xen:disks", "a mapping of short disk names to settings (path, size, ...)", disks) }}
{%- endif %}
{%- set disks_by_key, guests_by_name = {}, {} %}
{{- text_keys(disks, disks_by_key, "xen:disks") }}
{{- text_keys(salt["pillar.get"]("xen:guests", {}), guests_by_name, "xen:guests") }}

{%- for key, disk in disks_by_key | dictsort if disk is mapping and disk.get("path")
      and disk.get("ensure", xen.ensure.disks) == "present" %}
{%-   set attach = disk.get("attach") %}
{%-   set attach = (attach if attach is mapping else {"guest": attach}) if attach else {} %}
{%-   set detach = attach.get("guest") and attach.guest | string not in guests_by_name %}
{%-   if detach %}
{{ ("xen-disk-" ~ key ~ "-detached") | json }}:
  xen_disk.detached:
    - name: {{ disk.path | json }}
    - guest: {{ attach.guest | json }}
{%-     if attach.get("live") is not none %}
    - live: {{ attach.live | json }}
{%-     endif %}
    - pillar_path: {{ ("xen:disks:" ~ key) | json }}
{%-   endif %}
{%-   if disk.get("delete") is sameas true %}
{{ ("xen-disk-" ~ key ~ "-absent") | json }}:
  xen_disk.absent:
    - name: {{ disk.path | json }}
    - delete: true
    - pillar_path: {{ ("xen:disks:" ~ key) | json }}
{%-     if detach %}
    - require:
      - xen_disk: {{ ("xen-disk-" ~ key ~ "-detached") | json }}
{%-     endif %}
{%-   endif %}
{%- endfor %}
