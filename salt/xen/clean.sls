{#- Undo the whole formula, part by part in the reverse order of xen (init.sls):
    clones, guests, disks, networks, then host (left out with xen:host:manage: false).
    No data is lost: images, LVs and filesystems are kept and no running guest is
    destroyed unless the pillar entry says so (remove_disks, delete, force); each
    xen.PART.clean says in its header what it removes and what it keeps. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
include:
  - .clones.clean
  - .guests.clean
  - .disks.clean
  - .networks.clean
{%- if xen.host.manage %}
  - .host.clean
{%- endif %}
