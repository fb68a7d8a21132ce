{#- Undo xen.guests: every guest in pillar xen:guests is shut down and undefined.

    Removes: the definition of each pillar guest (a guest that is not defined is left
    as it is, so a second run changes nothing), and its image files only where the
    pillar guest says remove_disks: true.
    Keeps: image files (without remove_disks: true), block devices and LVs (always;
    remove them with xen_disk), and every guest pillar does not name.
    A running guest is shut down gracefully first (waiting guest:timeout seconds, 120
    unless the pillar guest says timeout); when it is still up after that, or paused, it
    is left as it is and the clean fails for it, unless the pillar guest says
    force: true: then it is destroyed. One state per guest (xen_guest.absent), so
    test=True predicts exactly what the run does.
    Values are passed as they are; the states check them with their key paths. A section or
    entry of the wrong shape is one failing state (xen-guests-checked, xen-guest-NAME-checked).
    Names that are numbers and text alike (101, vm02) are sorted and passed as text. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys with context %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}

{%- if guests is not none and guests is not mapping %}
{{ refused("xen-guests-checked", "xen:guests", "a mapping of guest names to specs", guests) }}
{%- else %}
{%-   set guests_by_name = {} %}
{{-   text_keys(guests, guests_by_name, "xen:guests") }}
{%-   for name, guest in guests_by_name | dictsort %}
{%-     set guest = {} if guest is none else guest %}
{%-     if guest is not mapping %}
{{ refused("xen-guest-" ~ name ~ "-checked", "xen:guests:" ~ name, "a mapping of spec keys (memory, disks, ...)", guest) }}
{%-       continue %}
{%-     endif %}
{{ ("xen-guest-" ~ name ~ "-absent") | json }}:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
    - timeout: {{ guest.get("timeout", xen.guest.timeout) | json }}
    - force: {{ guest.get("force", False) | json }}
    - pillar_path: xen:guests
{%-   endfor %}
{%- endif %}
