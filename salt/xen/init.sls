{#- The whole Xen host from pillar: host preparation, networks, disks, guests, clones.
    Each part can also be applied alone: xen.host, xen.networks, xen.disks, xen.guests, xen.clones. #}
include:
{%- if salt["pillar.get"]("xen:host:manage", True) %}
  - .host
{%- endif %}
  - .networks
  - .disks
  - .guests
  - .clones
