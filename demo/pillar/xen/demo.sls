# The demo's host (scripts/demo): the tutorial's chapters, made safe for any machine.
# Guests and libvirt networks live in libvirt's test driver; disk images, install
# files and bridge configs go under the demo's scratch directory; bridges are made
# in the network namespace "xendemo" (veth eth0/eth1 stand in for the NICs).
# The real example pillar for a Xen host is ../../pillar/xen/*.sls.
{%- set work = salt["config.get"]("xen_demo:workdir") %}
xen:
  host:
    manage: false                     # no packages, GRUB or services on a demo machine
  network:
    persist: ifupdown
    config_root: {{ work }}/root      # /etc/network/interfaces.d/xenbrN lands here
  install:
    boot_dir: {{ work }}/boot

  bridges:
    xenbr0:
      ensure: present
      nic: eth0
      netns: xendemo
    xenbr1:
      nic: eth1
      netns: xendemo

  networks:
    virbr1:
      ensure: running
      forward: nat
      bridge: virbr1
      autostart: true
      ipv4:
        address: 192.168.123.1/24
        dhcp:
          - 192.168.123.2-192.168.123.254

  disks:
    newvm-data:
      ensure: present
      path: {{ work }}/images/newvm-1.img
      size: 2TB
      label: gpt
      partitions:
        - {start: 0, end: 100}
        - {start: 100, end: -1}
      filesystems:
        1: ext3
        2: ext4

  guests:
    vm02:
      type: pv
      memory: 512
      vcpus: 2
      bootloader: pygrub
      disks:
        - source: {{ work }}/images/vm02.img
          size: 8G
      nics:
        - bridge: xenbr0
      install:
        location: file://{{ work }}/tree
        kickstart: file://{{ work }}/tree/ks.cfg
    newvm:
      uuid: 2aa1fae5-8550-affd-866f-27a9d6977d16
      memory: 512
      maxmem: 512
      vcpus: 2
      bootloader: /usr/bin/pygrub
      autostart: true
      disks:
        - source: {{ work }}/images/newvm.img
          target: xvda
          size: 10G
        - source: {{ work }}/images/newvm-1.img
          target: xvdb
      nics:
        - mac: "00:16:36:88:76:d4"
          bridge: xenbr0
          script: vif-bridge
        # on xenbr0 like the tutorial's newvm: on libvirt's test driver a guest can only
        # name the bridges its made-up host knows (those of libvirt networks and guests)
        - mac: "00:16:36:77:66:d5"
          bridge: xenbr0
          script: vif-bridge
      graphics:
        keymap: en-us
    # the seeded vm03, given an image here and kept shut off: the tutorial saved it before cloning
    vm03:
      ensure: stopped
      memory: 512
      vcpus: 1
      bootloader: /usr/bin/pygrub
      disks:
        - source: {{ work }}/images/vm03.img
          size: 8G
      nics:
        - bridge: xenbr0

  # virt-clone -o vm03 -n newvm03 -f IMG: made after vm03's state, then only checked
  clones:
    newvm03:
      ensure: defined
      source: vm03
      disks:
        xvda: {{ work }}/images/newvm03.img
