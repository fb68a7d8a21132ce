{#- Every guest in pillar xen:guests, made as its spec says (see pillar/xen/guests.sls).

    Per guest, besides the spec keys:
      ensure: running (default) | defined | stopped | paused | absent
      restart_on_change: true   restart a running guest for changes that cannot be made live
      remove_disks: true        with ensure: absent, delete the image files too
      timeout / force           with ensure: stopped, graceful shutdown wait and destroy after it
    The states read the spec from pillar themselves, so a VNC password never appears in the
    rendered SLS. Fetched install kernels go to pillar xen:install:boot_dir (/var/lib/xen/boot).
    A change a running guest gets only by a restart is said on every run until it restarts.
    Undo it all with xen.guests-clean (or xen.clean for every part of the formula). #}
{%- set guests = salt["pillar.get"]("xen:guests", {}) %}
{%- set boot_dir = salt["pillar.get"]("xen:install:boot_dir", "/var/lib/xen/boot") %}
{%- set ensures = ("running", "defined", "stopped", "paused", "absent") %}

{%- for name, guest in guests | dictsort %}
{%-   set guest = guest or {} %}
{%-   set ensure = guest.get("ensure", "running") %}
{%-   if ensure not in ensures %}
xen-guest-{{ name }}-ensure-is-wrong:
  test.fail_without_changes:
    - name: "xen:guests:{{ name }}:ensure: expected one of {{ ensures | join(', ') }}, got '{{ ensure }}'"
{%-   elif ensure == "absent" %}
xen-guest-{{ name }}-absent:
  xen_guest.absent:
    - name: {{ name | json }}
    - remove_disks: {{ guest.get("remove_disks", False) | json }}
{%-   else %}
xen-guest-{{ name }}-{{ ensure }}:
  xen_guest.{{ ensure }}:
    - name: {{ name | json }}
    - pillar_path: xen:guests
{%-     if ensure in ("running", "defined") %}
    - restart_on_change: {{ guest.get("restart_on_change", False) | json }}
{%-     endif %}
{%-     if ensure == "running" %}
    - boot_dir: {{ boot_dir | json }}
{%-     endif %}
{%-     if ensure == "stopped" %}
    - timeout: {{ guest.get("timeout", 120) | json }}
    - force: {{ guest.get("force", False) | json }}
{%-     endif %}
{%-   endif %}
{%- endfor %}
