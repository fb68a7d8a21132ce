# Example pillar for salt/xen/host (SLS xen.host): the Xen host itself. Copy it into your
# pillar tree (and list xen.host in your pillar top.sls) and edit. Every key below is
# optional: left out, the formula's parameters/defaults.yaml decides. A wrong value is
# reported with its path (xen:host:dom0_mem: expected ...) and nothing is installed.
# What xen.host does on each OS family, the reboot and the guests across a dom0
# shutdown: docs/host.md.
xen:
  host:
    # dom0's share of the host, on Xen's command line (GRUB_CMDLINE_XEN_DEFAULT):
    # dom0_mem=<MiB>M,max:<MiB>M dom0_max_vcpus=<n>. dom0_mem is also what
    # salt-run xen.hosts counts as dom0's reservation.
    dom0_mem: 1024                    # MiB, or 2G
    dom0_max_vcpus: 2

    # What happens to the running libvirt guests when dom0 shuts down (libvirt-guests):
    #   save      saved, and resumed when the host is back (the default)
    #   shutdown  shut down; at boot only the autostart guests are started
    # One guest with PCI devices or xen:guests:NAME:on_host_shutdown: shutdown makes it
    # shutdown for every guest: libvirt-guests treats all guests alike.
    on_shutdown: save

    # Reboot the host (one minute after the run, after every other state) when xen.host
    # says a reboot is needed: the state xen-host-reboot-required then has the change
    # reboot_required: {old: false, new: true}. false: reboot it yourself.
    reboot: false

    # manage: false               # a host prepared by hand: xen (init.sls) leaves xen.host out

  # Other settings from the formula's map.jinja, for one host or a group, e.g.:
  # lookup:
  #   host:
  #     repo:                      # RHEL family: the Xen repository, e.g. a local mirror
  #       baseurl: http://mirror.lan/centos-virt-xen/9/x86_64/
  #     grub:
  #       xen_cmdline_extra: "loglvl=all guest_loglvl=all"
  #     libvirt_guests:
  #       shutdown_timeout: 300    # seconds a guest gets to shut down, then it is destroyed

# Every Xen host publishes its guests (name, UUID, run state) through the Salt mine, so
# that a highstate never defines or starts a guest another host has (docs/fleet.md).
# How fresh the mine is: minion config mine_interval (minutes, default 60); the xen
# runner updates it itself after every move it makes.
mine_functions:
  xen_host.guests: []

# Where salt-run xen.migrate sends a running guest (live migration, run on the guest's host;
# {target} is the target's minion id). Default xen+ssh://{target}/system.
#   xen:
#     fleet:
#       migrate_uri: xen+ssh://{target}.lan/system
