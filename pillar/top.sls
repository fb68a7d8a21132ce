base:
  '*':
    - xen.networks
    - xen.disks
    - xen.guests
