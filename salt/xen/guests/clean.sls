{#- Undo xen.guests: every guest in pillar xen:guests is shut down and undefined.

    Removes: the definition of each pillar guest (a guest that is not defined is left
    as it is, so a second run changes nothing), and its image files only where the
    pillar guest says remove_disks: true.
    Keeps: image files (without remove_disks: true), block devices and LVs (always;
    remove them with xen_disk), and every guest pillar does not name.
    A running or paused guest is shut down gracefully first (xen-guest-NAME-stopped,
    waiting guest:timeout seconds, 120 unless the pillar guest says timeout); when it
    is still up after that, it is left running and the clean fails for it, unless the
    pillar guest says force: true: then it is destroyed. With test=True the shutdown
    shows in the prediction of both states of that guest. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) or {} %}
{%- set active = salt["xen_guest.list"]("active") if guests and "xen_guest.list" in salt else [] %}

{%- for name, guest in guests | dictsort %}
{%-   set guest = guest if guest is mapping else {} %}
{%-   set timeout = guest.get("timeout", xen.guest.timeout) %}
{%-   set graceful = name in active and guest.get("force") is not sameas true %}
{%-   if graceful %}
xen-guest-{{ name }}-stopped:
  xen_guest.stopped:
    - name: {{ name | json }}
    - spec: {}
    - timeout: {{ timeout | json }}
    - force: false
{%-   endif %}
xen-guest-{{ name }}-absent:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
    - timeout: {{ timeout | json }}
{%-   if graceful %}
    - require:
      - xen_guest: xen-guest-{{ name }}-stopped
{%-   endif %}
{%- endfor %}
