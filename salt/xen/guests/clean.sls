{#- Undo xen.guests: every guest in pillar xen:guests is stopped and undefined.

    A running guest is shut down (destroyed when still up after its timeout, 120 s
    unless the pillar guest says `timeout`). Disk images are kept unless the pillar
    guest says `remove_disks: true`; block devices and LVs are always kept (remove
    them with xen_disk). A guest that is not defined is left as it is, so a second
    run changes nothing. #}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}

{%- for name, guest in guests | dictsort %}
{%-   set guest = guest or {} %}
xen-guest-{{ name }}-absent:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
    - timeout: {{ guest.get("timeout", 120) | json }}
{%- endfor %}
