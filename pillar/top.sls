base:
  '*':
    - xen.host
    - xen.networks
    - xen.disks
    - xen.guests
    - xen.clones
    - xen.events
