{#- Every guest in pillar xen:guests, made as its spec says (see pillar/xen/guests.sls).

    Per guest, besides the spec keys:
      ensure: running (default) | defined | stopped | paused | absent
      restart_on_change: true   restart a running guest for changes that cannot be made live
      remove_disks: true        with ensure: absent (and xen.guests.clean), delete the image files too
      timeout / force           with ensure: stopped (and xen.guests.clean): the graceful shutdown
                                wait, and whether the guest is destroyed when still up after it
    The states read the spec from pillar xen:guests (their pillar_path default) themselves, so a
    VNC password never appears in the rendered SLS, and check every key (the formula keys above too, passed as they are), each
    problem named by its key path (xen:guests:vm02:remove_disks: expected true or false, ...).
    This SLS checks only shapes: xen:guests must be a mapping of names to specs, each spec a
    mapping, and ensure one of the words above (it picks the state).
    Defaults (map.jinja): ensure from xen:ensure:guests, timeout from guest:timeout, install
    kernels fetched to install:boot_dir (pillar xen:install:boot_dir).
    A change a running guest gets only by a restart is said on every run until it restarts.
    State IDs: xen-guest-NAME-ENSURE (xen-guest-vm02-running); xen-guest-NAME-checked for an
    entry of the wrong shape, xen-guests-checked for the whole section. Names that are
    numbers and text alike (101, vm02) are sorted and passed as text.
    Undo: xen.guests.clean (or xen.clean for every part of the formula). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- from tplroot ~ "/shapes.jinja" import refused, text_keys with context %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}
{%- set ensures = ("running", "defined", "stopped", "paused", "absent") %}

{%- if guests is not none and guests is not mapping %}
{{ refused("xen-guests-checked", "xen:guests", "a mapping of guest names to specs", guests) }}
{%- else %}
{%-   set guests_by_name = {} %}
{{-   text_keys(guests, guests_by_name, "xen:guests") }}
{%-   for name, guest in guests_by_name | dictsort %}
{%-     set path = "xen:guests:" ~ name %}
{%-     set guest = {} if guest is none else guest %}
{%-     set ensure = guest.get("ensure", xen.ensure.guests) if guest is mapping else none %}
{%-     set ensure = ensure | lower if ensure is string else ensure %}
{%-     if guest is not mapping %}
{{ refused("xen-guest-" ~ name ~ "-checked", path, "a mapping of spec keys (memory, disks, ...)", guest) }}
{%-     elif ensure not in ensures %}
{{ refused("xen-guest-" ~ name ~ "-checked", path ~ ":ensure", "one of " ~ ensures | join(", "), guest.ensure) }}
{%-     elif ensure == "absent" %}
{{ ("xen-guest-" ~ name ~ "-absent") | json }}:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
    - timeout: {{ guest.get("timeout", xen.guest.timeout) | json }}
    - pillar_path: xen:guests
{%-     else %}
{{ ("xen-guest-" ~ name ~ "-" ~ ensure) | json }}:
  xen_guest.{{ ensure }}:
    - name: {{ name | json }}
{%-       if ensure in ("running", "defined") and "restart_on_change" in guest %}
    - restart_on_change: {{ guest.restart_on_change | json }}
{%-       endif %}
{%-       if ensure == "running" %}
    - boot_dir: {{ xen.install.boot_dir | json }}
{%-       endif %}
{%-       if ensure == "stopped" %}
    - timeout: {{ guest.get("timeout", xen.guest.timeout) | json }}
    - force: {{ guest.get("force", False) | json }}
{%-       endif %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
