# Example pillar for salt/xen/networks.sls: the tutorial's network chapter.
# Copy it into your pillar tree and edit. Every key is checked before anything
# changes; a mistake is reported with its path, like xen:networks:virbr1:ipv4:dhcp:0.
# ensure: says what is wanted of each entry (default: present for a bridge, running for
# a network). xen.networks.clean removes every bridge and network named here (not the
# ones with ensure: absent); a bridge's NIC gets its addresses back.
xen:
  # How bridges persist across reboots; defaults from the formula's map.jinja
  # (parameters/os_family/*.yaml), uncomment to override:
  # network:
  #   persist: ifupdown          # ifupdown | ifcfg-rhel | ifcfg-suse | nm-keyfile | auto
  #   config_root: /
  #   packages: [bridge-utils, vlan]

  bridges:
    # Guests bridged onto the LAN: eth0 goes under xenbr0; the host's address and
    # default route move from eth0 to xenbr0 without cutting the host off.
    xenbr0:
      ensure: present            # present (default) | absent
      nic: eth0
    # The tutorial's exercise: a second bridge over the second NIC.
    xenbr1:
      nic: eth1
    # More that a bridge can take (all optional):
    #   stp: true                # spanning tree, off by default
    #   forward_delay: 15        # seconds (2-30 with stp)
    #   mtu: 9000
    #   vlan: 10                 # bridge over eth1.10 instead of eth1
    #   addresses: [10.0.0.5/24] # instead of the NIC's own addresses
    #   dhcp: true               # the bridge asks DHCP for its address at boot
    #   ensure: absent           # remove the bridge (refused while guests use it)
    #   force: true              # ... even then (ensure: absent and xen.networks.clean)

  networks:
    # libvirt's private NAT network, as every libvirt host has it.
    default:
      ensure: running             # running (default) | defined | absent
      forward: nat
      bridge: virbr0
      autostart: true
      ipv4:
        address: 192.168.122.1/24
        dhcp:
          - 192.168.122.2-192.168.122.254
    # The tutorial's new NAT network; autostart replaces the symlink in
    # networks/autostart and the libvirtd restart.
    virbr1:
      forward: nat
      bridge: virbr1
      autostart: true
      ipv4:
        address: 192.168.123.1/24
        dhcp:
          - start: 192.168.123.2
            end: 192.168.123.254
        # hosts:                  # fixed addresses by MAC
        #   - {mac: "00:16:3e:12:34:56", ip: 192.168.123.10, name: vm02}
      # ipv6: {address: "fd00:123::1/64", dhcp: ["fd00:123::100-fd00:123::1ff"]}
      # dns: {hosts: [{ip: 192.168.123.10, names: [vm02]}], forwarders: [192.168.0.1]}
    # Other kinds (forward: route | isolated | bridge):
    # lan:                        # guests on the existing host bridge xenbr0
    #   forward: bridge
    #   bridge: xenbr0
    # Per network: ensure: defined only defines it; ensure: absent removes it (refused
    # while guests have a NIC on it, unless force: true); restart: true restarts a running
    # network whose settings changed. autostart: true starts it with libvirtd.
