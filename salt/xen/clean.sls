{#- Undo the whole formula: the clean SLS of every part that has one, in the
    reverse order of xen (init.sls): guests first, then disks, networks, host.
    Only the clean files that exist in this formula are included, so a part
    gains its clean SLS without this file changing. #}
{%- set present = salt["cp.list_master"](saltenv=saltenv, prefix=tpldir ~ "/") %}
{%- set parts = [] %}
{%- for part in ("guests", "disks", "networks", "host") %}
{%-   if (tpldir ~ "/" ~ part ~ "-clean.sls") in present %}
{%-     do parts.append(part) %}
{%-   endif %}
{%- endfor %}
include:
{%- for part in parts %}
  - .{{ part }}-clean
{%- endfor %}
{%- if not parts %}
  []
{%- endif %}
