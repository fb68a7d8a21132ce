base:
  '*':
    - xen.networks
    - xen.disks
    - xen.guests
    - xen.events
