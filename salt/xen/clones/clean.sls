{#- Undo xen.clones: every clone of pillar xen:clones is shut down and undefined.

    Removes: the definition of each clone (one that is not defined is left as it is),
    and its disk copies only where the entry says remove_disks: true.
    Keeps: the clones' disk copies (without remove_disks: true), their sources, and
    clones whose name is also in xen:guests (xen.guests.clean handles those).
    A running clone is shut down gracefully first (waiting its timeout, guest:timeout
    by default); one still up after that, or paused, is left as it is and the clean
    fails for it: a clone is never destroyed by this SLS. One state per clone
    (xen_guest.absent), so test=True predicts exactly what the run does.
    State IDs: xen-clone-NAME-absent; xen-clones-checked when xen:clones is not a mapping. An entry that is not a mapping is left to xen.clones to report. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys, module_missing with context %}
{%- set clones = salt["pillar.get"]("xen:clones", {}) %}
{%- if clones is not none and clones is not mapping %}
{{ refused("xen-clones-checked", "xen:clones", "a mapping of new guest names to clone settings (source, disks, ...)", clones) }}
{%- endif %}
{%- set clones_by_name, guests = {}, {} %}
{{- text_keys(clones, clones_by_name, "xen:clones") }}
{{- text_keys(salt["pillar.get"]("xen:guests", {}), guests, "xen:guests") }}
{%- set clones = clones_by_name %}
{#- in the order of the names' text, as xen.clones takes them #}
{%- if clones and "xen_guest.check_clones" not in salt %}
{{ module_missing("xen-clones-checked", "xen:clones", "xen_guest.check_clones") }}
{%-   do clones.clear() %}
{%- endif %}
{%- for item in (salt["xen_guest.check_clones"](clones, guests).clones if clones else []) if item.name not in guests %}
{%-   set name = item.name %}
{%-   set clone = clones[name] if clones[name] is mapping else {} %}
{{ ("xen-clone-" ~ name ~ "-absent") | json }}:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ clone.get("remove_disks", False) | json }}
    - timeout: {{ clone.get("timeout", xen.guest.timeout) | json }}
    - force: false
    - pillar_path: xen:clones
{%- endfor %}
