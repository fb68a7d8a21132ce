{#- Clones from pillar xen:clones: the tutorial's `virt-clone -o vm03 -n newvm03 -f IMG`, as data.
    See pillar/xen/clones.sls for an example. One entry per new guest, keyed by its name:
      source: vm03                  the guest to copy (required); shut off or paused, unless
      crash_consistent: true        copies a running source's disks as they are at that moment
      disks: {xvda: PATH}           where each writable disk is copied (default: next to the
                                    source's image, the name swapped)
      memory (1024, 2G) / vcpus / bridge  what the clone gets instead of the source's
      ensure: defined (default) | running | absent
                                    defined: made and left shut off; running: started once
                                    made (keeping it running is xen:guests' job: give it an
                                    entry there too); absent: undefined (xen_guest.absent)
      force: true                   copy onto an existing device (LV) that holds data
      remove_disks: true / timeout  with ensure: absent and xen.clones.clean: delete the clone's
                                    disk copies too / how long its graceful shutdown may take
    Defaults (map.jinja): ensure from xen:ensure:clones, timeout from guest:timeout.
    State IDs: xen-clone-NAME-cloned (xen_guest.cloned), xen-clone-NAME-absent.
    An existing clone is never cloned again: memory, vcpus and bridge that differ are
    changed, its disks never touched.
    Every entry is checked first, while this SLS renders, by the library (xen_guest.check_clones:
    unknown keys, ensure, source, chains of clones back to themselves, memory and vcpus as under
    xen:guests, bridge, disk paths, booleans, clashes with xen:guests); a mistake is reported
    with its key path (xen:clones:newvm03:memory: ...) in xen-clone-NAME-checked, also under
    test=True, and nothing is done for that clone. The state names what goes wrong at run time
    by the same path (xen:clones:newvm03: ...). Entries are taken in the order of their names'
    text; a name YAML reads as a number (123:) is taken as its text, as in xen:guests.
    Ordering: a clone runs after its source's state when the source is also in xen:guests
    (xen-guest-vm03-stopped, ...) or in xen:clones (xen-clone-vm03-cloned), and before the
    guest state of its own name when that is in xen:guests too.
    Undo: xen.clones.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys, module_missing with context %}
{%- set clones = salt["pillar.get"]("xen:clones", {}) %}
{%- set clones = {} if clones is none else clones %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}

{%- if clones is not mapping %}
{{ refused("xen-clones-checked", "xen:clones", "a mapping of new guest names to clone settings (source, disks, ...)", clones) }}
{%- else %}
{%-   set by_name, guests_by_name = {}, {} %}
{{-   text_keys(clones, by_name, "xen:clones") }}
{{-   text_keys(guests, guests_by_name, "xen:guests") }}
{%-   set clones = by_name %}
{%-   if clones and "xen_guest.check_clones" not in salt %}
{{ module_missing("xen-clones-checked", "xen:clones", "xen_guest.check_clones") }}
{%-     do clones.clear() %}
{%-   endif %}
{%-   set checked = salt["xen_guest.check_clones"](clones, guests_by_name, xen.ensure.clones, xen.ensure.guests)
                      if clones else {"include_guests": False, "clones": []} %}
{%-   if checked.include_guests %}
include:
  - {{ tplroot }}.guests
{%-   endif %}

{%-   for item in checked.clones %}
{%-     set name, clone = item.name, clones[item.name] %}
{%-     if item.problems %}
{{ refused("xen-clone-" ~ name ~ "-checked", item.path, none, none, item.problems | join("; ")) }}
{%-     elif item.ensure == "absent" %}
{{ ("xen-clone-" ~ name ~ "-absent") | json }}:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ clone.get("remove_disks", False) | json }}
    - timeout: {{ clone.get("timeout", xen.guest.timeout) | json }}
    - pillar_path: xen:clones
{%-     else %}
{{ ("xen-clone-" ~ name ~ "-cloned") | json }}:
  xen_guest.cloned:
    - name: {{ name | json }}
    - source: {{ clone.source | json }}
{%-       for key in ("disks", "memory", "vcpus", "bridge") if clone.get(key) is not none %}
    - {{ key }}: {{ clone[key] | json }}
{%-       endfor %}
    - start: {{ (item.ensure == "running") | json }}
    - crash_consistent: {{ clone.get("crash_consistent", False) | json }}
    - force: {{ clone.get("force", False) | json }}
    - pillar_path: {{ item.path | json }}
{%-       for requisite in ("require", "require_in") if item[requisite] %}
    - {{ requisite }}:
{%-         for req in item[requisite] %}
      - {{ req | json }}
{%-         endfor %}
{%-       endfor %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
