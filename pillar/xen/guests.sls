# Example pillar for salt/xen/guests.sls: the tutorial's guests as data.
# Copy it into your pillar tree and edit. Every key is checked before anything
# changes; a mistake is reported with its path, like xen:guests:vm02:memory.
#
# Keys of a guest (all optional except what a guest needs to boot):
#   type: pv | hvm | pvh              (pv)
#   uuid: ...                         made once and then kept when left out
#   memory / maxmem: MiB or 1G        (512; maxmem = memory)
#   vcpus / maxvcpus                  (1; maxvcpus = vcpus)
#   bootloader: pygrub | kernel/ramdisk/cmdline | boot: {order: [cdrom, hd]} for hvm
#   disks: - source: PATH (image file, /dev/... block device or LV)
#            target: xvda | sda | hda ...  format: raw | qcow2  readonly: false
#            size: 8G (created sparse when the image file is missing)  device: disk | cdrom
#   nics:  - bridge: xenbr0 | network: default    mac: ...  model: ...  script: vif-bridge
#   graphics: {display: 1 | unset (any free), listen: 127.0.0.1, password: ..., keymap: en-us}
#             listening on anything but 127.0.0.1 needs a password (at most 8 characters)
#   on_poweroff / on_reboot / on_crash: destroy | restart | preserve | rename-restart
#   autostart: true                   (virsh autostart; /etc/xen/auto)
#   install: network tree (pv) or ISO (hvm), used when the guest is first made
# and for the formula: ensure (running | defined | stopped | paused | absent; default
# running), restart_on_change, remove_disks (with absent, and for xen.guests.clean /
# xen.clean, which shut down and undefine every guest below: image files are kept
# unless true), timeout (graceful shutdown wait, default 120 s) and force (destroy the
# guest when still up after timeout: with stopped, and for the clean SLS; without it
# the clean leaves a guest that does not shut down running).
xen:
  install:
    boot_dir: /var/lib/xen/boot       # where the install tree's kernel and initrd are fetched to
  # Other defaults from the formula's map.jinja, uncomment to override:
  # guest:
  #   timeout: 120                    # seconds a guest gets to shut down
  #   save_dir: /var/lib/xen/save     # made by xen.host; restored from at minion start
  # ensure:                           # the ensure of an entry that leaves it out
  #   guests: running

  guests:
    # virt-install -p -n vm02 -f /var/lib/xen/images/vm02.img -s 8 -r 512 --vcpus=2 -b xenbr0
    #   -l ftp://192.168.0.254/pub -x "ks=ftp://192.168.0.254/pub/ks.cfg"
    vm02:
      ensure: running                 # the default
      type: pv
      memory: 512
      vcpus: 2
      bootloader: pygrub              # after the install: the guest's own grub
      disks:
        - source: /var/lib/xen/images/vm02.img
          size: 8G
      nics:
        - bridge: xenbr0
      install:
        location: ftp://192.168.0.254/pub     # images/xen/vmlinuz and initrd.img are booted once
        kickstart: ftp://192.168.0.254/pub/ks.cfg
        # extra_args: "console=hvc0"

    # A full-virtual guest (Windows) installed from an ISO, watched over VNC.
    winxp:
      type: hvm
      memory: 1024
      vcpus: 1
      disks:
        - source: /var/lib/xen/images/winxp.img
          target: hda
          size: 10G
      nics:
        - bridge: xenbr0
          model: rtl8139
      graphics:
        display: 2                    # port 5902
        listen: 127.0.0.1             # ssh -L 5902:127.0.0.1:5902 dom0 to watch the install
        keymap: en-us
        # listen: 0.0.0.0             # reachable from the LAN: then a password is required
        # password: "123"
      install:
        iso: /srv/iso/winxp.iso       # cdrom first while installing; later boots from hda

    # The hand-cloned newvm at the end of the tutorial: its image moved to an LV,
    # a second (2 TB sparse) disk, two NICs on xenbr0.
    newvm:
      uuid: 2aa1fae5-8550-affd-866f-27a9d6977d16
      memory: 512
      maxmem: 512
      vcpus: 2
      bootloader: /usr/bin/pygrub
      on_poweroff: destroy
      on_reboot: restart
      on_crash: restart
      autostart: true
      restart_on_change: false        # changes that need a restart wait for one
      disks:
        - source: /dev/mapper/vol0-lv_for_newvm   # block device: Xen's phy backend
          target: xvda
        - source: /var/lib/xen/images/newvm-1.img
          target: xvdb
          size: 2T
      nics:
        - mac: "00:16:36:88:76:d4"    # a copy keeps the first three octets, as the tutorial says
          bridge: xenbr0
          script: vif-bridge
        - mac: "00:16:36:77:66:d5"
          bridge: xenbr0
          script: vif-bridge
      # graphics: {keymap: en-us}     # the tutorial's vfb line, commented out there too

    # vm03:
    #   ensure: absent
    #   remove_disks: false
