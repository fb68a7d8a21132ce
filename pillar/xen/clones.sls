# Example pillar for salt/xen/clones.sls: the tutorial's virt-clone, as data.
# Copy it into your pillar tree and edit. Each entry is a new guest, keyed by its
# name (state ID xen-clone-NAME-cloned). Every key is checked before anything
# changes; a mistake is reported with its path, like xen:clones:newvm03:memory.
#
# The clone gets a new UUID and new MACs (the source's first three octets kept),
# and copies of the source's writable disks (reflink or sparse copy, verified).
# It is made once: on later runs an existing clone is only checked, and memory,
# vcpus and bridge that differ are changed in its definition; its disks are
# never touched. xen.clones.clean (part of xen.clean) undefines the clones and keeps
# their disk copies unless an entry says remove_disks: true; a running clone is shut
# down gracefully, never destroyed.
#
# The source must be shut off or paused while it is copied, as the tutorial saved
# it first (salt-call xen_guest.save vm03, or vm03: {ensure: stopped} in xen:guests:
# no spec keys needed, the definition is left alone), unless crash_consistent: true. When the source is in
# xen:guests, the clone runs after the source's guest state; when the clone's own
# name is in xen:guests too (to manage it from a spec afterwards), its guest state
# runs after the clone.
xen:
  clones:
    # virt-clone -o vm03 -n newvm03 -f /var/lib/xen/images/newvm03.img
    newvm03:
      source: vm03
      # ensure: defined               # defined (default: made, left shut off) | running
                                      # (started once made) | absent (undefined)
      disks:                          # target: where its copy goes; default: next to
        xvda: /var/lib/xen/images/newvm03.img   # the source's image, the name swapped
      # memory: 1024                  # MiB, or 2G; default: the source's
      # vcpus: 2                      # default: the source's
      # bridge: xenbr1                # every NIC on this bridge; default: the source's bridges
      # crash_consistent: true        # copy a running source's disks as they are
      # force: true                   # copy onto a device (LV) that already holds data
      # remove_disks: true            # ensure: absent and xen.clones.clean delete the copies too
