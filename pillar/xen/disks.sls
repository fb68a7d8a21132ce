# Example pillar for salt/xen/disks.sls: the tutorial's storage chapter.
# Copy it into your pillar tree and edit. Each entry is one disk, keyed by a short
# name that shows in the state IDs (xen-disk-newvm-data-present, ...).
# Sizes: a number is MiB; or 10G, 2T (binary), 2TB (decimal, as disk vendors count).
# Nothing is deleted, shrunk, overwritten or repartitioned unless an entry says so.
# ensure: says what is wanted of each entry (default: present). xen.disks.clean
# detaches what attach: attached and deletes only the images and LVs whose entry
# says delete: true; everything else (partitions, filesystems, pools) is kept.
xen:
  # libvirt storage pools, so that virsh vol-list / virt-manager see the disks (optional)
  pools:
    images:
      ensure: present             # the only state a pool takes here
      path: /var/lib/xen/images   # a directory pool; the directory is made if missing
    vol0:
      type: logical               # the tutorial's volume group (must exist; never vgcreate'd)
      # autostart: false          # default true

  disks:
    # "Add a 2TB disk to newvm": dd if=/dev/zero of=newvm-1.img bs=512k count=1 seek=4000000,
    # then parted mklabel gpt / mkpart, mkfs.ext3, and a second entry in disk = [...].
    newvm-data:
      ensure: present            # present (default) | absent
      path: /var/lib/xen/images/newvm-1.img
      size: 2TB                  # sparse: takes a few KiB until the guest writes
      # format: raw              # or qcow2 (made with qemu-img)
      # allocation: sparse       # or full (fallocate: every byte reserved now)
      label: gpt                 # GPT: partitions beyond the 2 TB MBR limit
      partitions:                # parted's "mkpart primary START END", in MB
        - {start: 0, end: 100}
        - {start: 100, end: 200}
        - {start: 200, end: -1}  # -1: all the rest of the disk
      # force: true              # repartition even if another table or data is there
      filesystems:               # partition number: filesystem (ext2, ext3, ext4, xfs)
        1: ext3
        2: ext4
        3: {fs_type: ext4, label: data}
      attach:
        guest: newvm
        target: xvdb             # the tutorial used sda, then xvdb
        # live: false            # only in the definition, not into the running guest

    # p2v/v2v: "lvcreate -n lv_for_newvm -L 10G vol0; dd if=newvm.img of=/dev/mapper/vol0-lv_for_newvm",
    # then point newvm's xvda at the LV. The LV is made at least as large as the image;
    # the copy skips holes and is verified before the definition is switched.
    newvm-root:
      path: /dev/mapper/vol0-lv_for_newvm   # the same path newvm's xvda has in guests.sls
      move:
        guest: newvm
        disk: xvda
        shutdown: true           # stop newvm for the copy and start it again
        # remove_source: true    # delete the image afterwards (kept by default)
        # a qcow2 image is converted to raw on its way into the LV (qemu-img convert + compare)

    # Back from an LV into a file works the same way; format says what the file holds
    # (raw or qcow2; default: a file keeps its format, an LV's data comes out raw):
    #   newvm-root-file:
    #     path: /var/lib/xen/images/newvm.qcow2
    #     move: {guest: newvm, disk: xvda, format: qcow2}

    # A disk no longer wanted (refused while a guest still uses it):
    #   old-scratch:
    #     path: /var/lib/xen/images/scratch.img
    #     ensure: absent
    #     delete: true           # without it, the state refuses: the data would be lost
    # (delete: true on an entry that is present lets xen.disks.clean delete its data)

  # Defaults from the formula's map.jinja (parameters/defaults.yaml), uncomment to override:
  # disk:
  #   packages: [parted, e2fsprogs, xfsprogs, lvm2, qemu-utils]  # installed first when set
  #   format: raw                # of a new image that does not say
  #   allocation: sparse
  #   label: gpt
  #   image_dir: /var/lib/xen/images   # made by xen.host
