{#- Rolling maintenance of one Xen host, run on the master:

      salt-run state.orchestrate xen.orch.maintenance pillar='{host: xen02}'
      salt-run state.orchestrate xen.orch.maintenance pillar='{host: xen02, reboot: true}'

    1. evacuate: every guest of the host moves to the others (salt-run xen.evacuate; running
       guests live, shut-off ones by their definition). Nothing else runs when a guest cannot
       move: the host is not touched while it still has guests.
    2. apply xen.host on the host (packages, GRUB, services).
    3. with reboot: true only, reboot it (one minute later) and wait for its minion to start
       again (wait: seconds, default 900). Use this rather than the host's xen:host:reboot,
       which reboots without anyone waiting for it.
    4. verify the fleet (salt-run xen.verify).

    Orchestrate pillar: host (the minion id, required), reboot (true/false, default false),
    fleet and fleet_type (the Xen hosts the runner asks, default every minion), wait.
    The guests stay where evacuate put them: bring them back with salt-run xen.migrate or
    xen.balance. docs/fleet.md. #}
{%- set host = pillar.get("host") %}
{%- set reboot = pillar.get("reboot", false) %}
{%- set fleet = pillar.get("fleet", "*") %}
{%- set fleet_type = pillar.get("fleet_type", "glob") %}
{%- set wait = pillar.get("wait", 900) %}
{%- set problems = [] %}
{%- if host is not string or not host %}
{%-   do problems.append("host: expected the minion id of the Xen host to maintain, got " ~ host | json) %}
{%- endif %}
{%- if reboot is not sameas true and reboot is not sameas false %}
{%-   do problems.append("reboot: expected true or false, got " ~ reboot | json) %}
{%- endif %}
{%- if wait is not number or wait is sameas true or wait is sameas false or wait < 1 %}
{%-   do problems.append("wait: expected a whole number of seconds of at least 1, got " ~ wait | json) %}
{%- endif %}

{%- if problems %}
{%-   set said = problems | join("; ") ~ "; nothing was done" %}
xen-maintenance-settings-checked:
  test.configurable_test_state:
    - name: {{ said | json }}
    - comment: {{ said | json }}
    - changes: false
    - result: false
    - allow_test_mode_failure: true
{%- else %}
xen-maintenance-{{ host }}-evacuated:
  salt.runner:
    - name: xen.evacuate
    - host: {{ host | json }}
    - tgt: {{ fleet | json }}
    - tgt_type: {{ fleet_type | json }}

xen-maintenance-{{ host }}-host-applied:
  salt.state:
    - tgt: {{ host | json }}
    - sls: xen.host
    - require:
      - salt: xen-maintenance-{{ host }}-evacuated
{%-   set last = "xen-maintenance-" ~ host ~ "-host-applied" %}
{%-   if reboot %}

xen-maintenance-{{ host }}-rebooted:
  salt.function:
    - name: system.reboot
    - tgt: {{ host | json }}
    - kwarg:
        at_time: 1
    - require:
      - salt: {{ last }}

xen-maintenance-{{ host }}-back:
  salt.wait_for_event:
    - name: salt/minion/{{ host }}/start
    - id_list:
      - {{ host | json }}
    - timeout: {{ wait | int }}
    - require:
      - salt: xen-maintenance-{{ host }}-rebooted
{%-     set last = "xen-maintenance-" ~ host ~ "-back" %}
{%-   endif %}

xen-maintenance-{{ host }}-fleet-verified:
  salt.runner:
    - name: xen.verify
    - tgt: {{ fleet | json }}
    - tgt_type: {{ fleet_type | json }}
    - require:
      - salt: {{ last }}
{%- endif %}
