{#- The whole Xen host from pillar: host preparation, networks, disks, guests, clones.
    Each part can also be applied alone: xen.host, xen.networks, xen.disks, xen.guests,
    xen.clones; xen.clean (or xen.PART.clean) undoes them. xen.host is left out with
    xen:host:manage: false (map.jinja). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
include:
{%- if xen.host.manage %}
  - .host
{%- endif %}
  - .networks
  - .disks
  - .guests
  - .clones
