{#- Every guest in pillar xen:guests, made as its spec says (see pillar/xen/guests.sls).

    Per guest, besides the spec keys:
      ensure: running (default) | defined | stopped | paused | absent
      restart_on_change: true   restart a running guest for changes that cannot be made live
      remove_disks: true        with ensure: absent (and xen.guests.clean), delete the image files too
      timeout / force           with ensure: stopped (and xen.guests.clean): the graceful shutdown
                                wait, and whether the guest is destroyed when still up after it
    The states read the spec from pillar themselves, so a VNC password never appears in the
    rendered SLS. Defaults (map.jinja): ensure from xen:ensure:guests, timeout from
    guest:timeout, install kernels fetched to install:boot_dir (pillar xen:install:boot_dir).
    A change a running guest gets only by a restart is said on every run until it restarts.
    State IDs: xen-guest-NAME-ENSURE (xen-guest-vm02-running).
    Undo: xen.guests.clean (or xen.clean for every part of the formula). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set guests = salt["pillar.get"]("xen:guests", {}) or {} %}
{%- set ensures = ("running", "defined", "stopped", "paused", "absent") %}

{%- for name, guest in guests | dictsort %}
{%-   set guest = guest if guest is mapping else {} %}
{%-   set ensure = guest.get("ensure", xen.ensure.guests) %}
{%-   if ensure not in ensures %}
xen-guest-{{ name }}-ensure-is-wrong:
  test.fail_without_changes:
    - name: {{ ("xen:guests:" ~ name ~ ":ensure: expected one of " ~ ensures | join(", ") ~ ", got " ~ (ensure | json)) | json }}
{%-   elif ensure == "absent" %}
xen-guest-{{ name }}-absent:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
    - timeout: {{ guest.get("timeout", xen.guest.timeout) | json }}
{%-   else %}
xen-guest-{{ name }}-{{ ensure }}:
  xen_guest.{{ ensure }}:
    - name: {{ name | json }}
    - pillar_path: xen:guests
{%-     if ensure in ("running", "defined") %}
    - restart_on_change: {{ guest.get("restart_on_change", False) | json }}
{%-     endif %}
{%-     if ensure == "running" %}
    - boot_dir: {{ xen.install.boot_dir | json }}
{%-     endif %}
{%-     if ensure == "stopped" %}
    - timeout: {{ guest.get("timeout", xen.guest.timeout) | json }}
    - force: {{ guest.get("force", False) | json }}
{%-     endif %}
{%-   endif %}
{%- endfor %}
