{#- Clones from pillar xen:clones: the tutorial's `virt-clone -o vm03 -n newvm03 -f IMG`, as data.
    See pillar/xen/clones.sls for an example. One entry per new guest, keyed by its name:
      source: vm03                  the guest to copy (required); shut off or paused, unless
      crash_consistent: true        copies a running source's disks as they are at that moment
      disks: {xvda: PATH}           where each writable disk is copied (default: next to the
                                    source's image, the name swapped)
      memory (MiB) / vcpus / bridge  what the clone gets instead of the source's
      ensure: defined (default) | running | absent
                                    defined: made and left shut off; running: started once
                                    made (keeping it running is xen:guests' job: give it an
                                    entry there too); absent: undefined (xen_guest.absent)
      force: true                   copy onto an existing LV that holds a filesystem
      remove_disks: true / timeout  with ensure: absent and xen.clones.clean: delete the clone's
                                    disk copies too / how long its graceful shutdown may take
    Defaults (map.jinja): ensure from xen:ensure:clones, timeout from guest:timeout.
    State IDs: xen-clone-NAME-cloned (xen_guest.cloned), xen-clone-NAME-absent.
    An existing clone is never cloned again: memory, vcpus and bridge that differ are
    changed, its disks never touched.
    Every entry is checked first; a mistake is reported with its key path
    (xen:clones:newvm03:memory: ...) and nothing is done for that clone.
    Ordering: a clone runs after its source's state when the source is also in xen:guests
    (xen-guest-vm03-stopped, ...) or in xen:clones (xen-clone-vm03-cloned), and before the
    guest state of its own name when that is in xen:guests too.
    Undo: xen.clones.clean. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused with context %}
{%- set clones = salt["pillar.get"]("xen:clones", {}) %}
{%- set clones = {} if clones is none else clones %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}
{%- set guests = guests if guests is mapping else {} %}
{%- set known = ["source", "ensure", "disks", "memory", "vcpus", "bridge", "crash_consistent", "force",
                 "remove_disks", "timeout"] %}
{%- set clone_ensures = ("defined", "running", "absent") %}
{%- set ensures = ("running", "defined", "stopped", "paused", "absent") %}

{#- what guests/init.sls makes of a pillar guest: its ensure (lower case), or "checked" when
    that SLS reports the entry instead (not a mapping, or an ensure that is not one of its words) #}
{%- macro guest_ensure(gname) -%}
{%-   set entry = {} if guests[gname] is none else guests[gname] %}
{%-   set ensure = entry.get("ensure", xen.ensure.guests) if entry is mapping else none %}
{%-   set ensure = ensure | lower if ensure is string else ensure %}
{{- ensure if ensure in ensures else "checked" }}
{%- endmacro %}

{#- the requisite for the state guests/init.sls makes for guest gname #}
{%- macro guest_requisite(gname) -%}
{%-   set ensure = guest_ensure(gname) %}
{{- ("test" if ensure == "checked" else "xen_guest") ~ ": " ~ (("xen-guest-" ~ gname ~ "-" ~ ensure) | json) }}
{%- endmacro %}

{%- if clones is not mapping %}
{{ refused("xen-clones-checked", "xen:clones", "a mapping of new guest names to clone settings (source, disks, ...)", clones) }}
{%- else %}

{#- pass 1: every entry's problems, each with its key path #}
{%-   set problems = {} %}
{%-   for name, clone in clones | dictsort %}
{%-     set path = "xen:clones:" ~ name %}
{%-     set found = [] %}
{%-     if clone is not mapping %}
{%-       do found.append(path ~ ": expected a mapping with at least source: GUEST, got " ~ (clone | json)) %}
{%-     else %}
{%-       if not (name is string and name | regex_match("^([A-Za-z0-9][A-Za-z0-9_.+-]{0,63})$")) %}
{%-         do found.append(path ~ ": '" ~ name ~ "' is not a usable guest name (letters, digits, _.+-; at most 64)") %}
{%-       endif %}
{%-       for bad in clone | reject("in", known) %}
{%-         if bad == "start" %}
{%-           do found.append(path ~ ":start: no longer a key; say ensure: running") %}
{%-         else %}
{%-           do found.append(path ~ ":" ~ bad ~ ": unknown key (expected one of " ~ known | join(", ") ~ ")") %}
{%-         endif %}
{%-       endfor %}
{%-       if clone.get("ensure", xen.ensure.clones) not in clone_ensures %}
{%-         do found.append(path ~ ":ensure: expected one of " ~ clone_ensures | join(", ") ~ ", got " ~ (clone.ensure | json)) %}
{%-       endif %}
{%-       set source = clone.get("source") %}
{%-       if not (source is string and source) %}
{%-         do found.append(path ~ ":source: expected the name of the guest to clone, got " ~ (source | json)) %}
{%-       elif source == name %}
{%-         do found.append(path ~ ":source: a guest cannot be a clone of itself") %}
{%-       elif source in guests and guest_ensure(source) == "absent" %}
{%-         do found.append(path ~ ":source: " ~ source ~ " is removed by xen:guests:" ~ source ~ ":ensure: absent") %}
{%-       elif source in clones and clones[source] is mapping
               and clones[source].get("ensure", xen.ensure.clones) == "absent" %}
{%-         do found.append(path ~ ":source: " ~ source ~ " is removed by xen:clones:" ~ source ~ ":ensure: absent") %}
{%-       else %}
{#-         a chain of clones must not come back to this one #}
{%-         set walk = namespace(at=source, cycle=False) %}
{%-         for _ in clones %}
{%-           if walk.at in clones and clones[walk.at] is mapping and not walk.cycle %}
{%-             set walk.at = clones[walk.at].get("source") %}
{%-             if walk.at == name %}
{%-               set walk.cycle = True %}
{%-             endif %}
{%-           endif %}
{%-         endfor %}
{%-         if walk.cycle %}
{%-           do found.append(path ~ ":source: " ~ source ~ " is itself (through xen:clones) a clone of " ~ name) %}
{%-         endif %}
{%-       endif %}
{%-       for key in ("memory", "vcpus") if clone.get(key) is not none %}
{%-         set value = clone[key] %}
{%-         set whole = value is integer or (value is float and value == (value | int))
                        or (value is string and value.strip().isdigit()) %}
{%-         if not (whole and (value | int) > 0) %}
{%-           do found.append(path ~ ":" ~ key ~ ": expected a whole number above 0" ~ (" (MiB)" if key == "memory" else "")
                             ~ ", got " ~ (value | json)) %}
{%-         endif %}
{%-       endfor %}
{%-       set bridge = clone.get("bridge") %}
{%-       if bridge is not none and not (bridge is string and bridge.strip()) %}
{%-         do found.append(path ~ ":bridge: expected a bridge name like xenbr0, got " ~ (bridge | json)) %}
{%-       endif %}
{%-       set disks = clone.get("disks") %}
{%-       if disks is not none %}
{%-         if disks is not mapping %}
{%-           do found.append(path ~ ":disks: expected a mapping of disk targets to paths (xvda: /var/lib/xen/images/"
                               ~ name ~ ".img), got " ~ (disks | json)) %}
{%-         else %}
{%-           for target, dpath in disks | dictsort %}
{%-             if not (dpath is string and dpath.startswith("/")) %}
{%-               do found.append(path ~ ":disks:" ~ target ~ ": expected an absolute path, got " ~ (dpath | json)) %}
{%-             endif %}
{%-           endfor %}
{%-         endif %}
{%-       endif %}
{%-       for key in ("crash_consistent", "force", "remove_disks") if clone.get(key) is not none %}
{%-         if clone[key] is not boolean %}
{%-           do found.append(path ~ ":" ~ key ~ ": expected true or false, got " ~ (clone[key] | json)) %}
{%-         endif %}
{%-       endfor %}
{%-       if name in guests and guest_ensure(name) == "absent" and clone.get("ensure", xen.ensure.clones) != "absent" %}
{%-         do found.append(path ~ ": xen:guests:" ~ name ~ ":ensure: absent removes the guest this clone makes") %}
{%-       endif %}
{%-     endif %}
{%-     do problems.update({name: found}) %}
{%-   endfor %}

{#-   pass 2: the requisite of each clone (its source's state) and whether xen.guests is needed #}
{%-   set needs_guests = namespace(value=False) %}
{%-   for name, clone in clones | dictsort if not problems[name] %}
{%-     if clone.source in guests or name in guests %}
{%-       set needs_guests.value = True %}
{%-     endif %}
{%-   endfor %}
{%-   if needs_guests.value %}
include:
  - {{ tplroot }}.guests
{%-   endif %}

{%-   for name, clone in clones | dictsort %}
{%-     if problems[name] %}
{{ refused("xen-clone-" ~ name ~ "-checked", "xen:clones:" ~ name, none, none, problems[name] | join("; ")) }}
{%-       continue %}
{%-     endif %}
{%-     set source = clone.source %}
{%-     if clone.get("ensure", xen.ensure.clones) == "absent" %}
{{ ("xen-clone-" ~ name ~ "-absent") | json }}:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ clone.get("remove_disks", False) | json }}
    - timeout: {{ clone.get("timeout", xen.guest.timeout) | json }}
    - pillar_path: xen:clones
{%-       continue %}
{%-     endif %}
{{ ("xen-clone-" ~ name ~ "-cloned") | json }}:
  xen_guest.cloned:
    - name: {{ name | json }}
    - source: {{ source | json }}
{%-     for key in ("disks", "memory", "vcpus", "bridge") if clone.get(key) is not none %}
    - {{ key }}: {{ clone[key] | json }}
{%-     endfor %}
    - start: {{ (clone.get("ensure", xen.ensure.clones) == "running") | json }}
    - crash_consistent: {{ clone.get("crash_consistent", False) | json }}
    - force: {{ clone.get("force", False) | json }}
{%-     if source in guests %}
    - require:
      - {{ guest_requisite(source) }}
{%-     elif source in clones %}
    - require:
{%-       if problems[source] %}
      - test: {{ ("xen-clone-" ~ source ~ "-checked") | json }}
{%-       else %}
      - xen_guest: {{ ("xen-clone-" ~ source ~ "-cloned") | json }}
{%-       endif %}
{%-     endif %}
{%-     if name in guests %}
    - require_in:
      - {{ guest_requisite(name) }}
{%-     endif %}
{%-   endfor %}
{%- endif %}
