"""Persistent bridge config for each OS family, written atomically under a test root."""

import os

import pytest

from saltext_xen.networks import bridge_persist as bp
from saltext_xen.networks import bridges


def spec(**data):
    out, problems = bridges.validate(dict({"name": "xenbr0", "nic": "eth0", "addresses": ["192.168.0.10/24"]}, **data))
    assert problems == []
    return out


def test_debian_ifupdown_stanza():
    files = bp.render("ifupdown", spec(), gateway="192.168.0.254")
    ((path, (text, mode)),) = files.items()
    assert path == "/etc/network/interfaces.d/xenbr0" and mode == 0o644
    assert text.splitlines()[1:] == [
        "",
        "auto xenbr0",
        "iface xenbr0 inet static",
        "    address 192.168.0.10/24",
        "    gateway 192.168.0.254",
        "    bridge_ports eth0",
        "    bridge_stp off",
        "    bridge_fd 0",
        "    bridge_maxwait 0",
    ]


def test_debian_vlan_dhcp_and_ipv6():
    files = bp.render(
        "ifupdown", spec(nic="eth1", vlan=10, addresses=["fd00:1::5/64"], mtu=9000), gateway6="fd00:1::1", dhcp=True
    )
    text = files["/etc/network/interfaces.d/xenbr0"][0]
    assert "auto eth1.10\niface eth1.10 inet manual\n    vlan-raw-device eth1\n    mtu 9000\n" in text
    assert "iface xenbr0 inet dhcp\n    bridge_ports eth1.10\n" in text
    assert "iface xenbr0 inet6 static\n    address fd00:1::5/64\n    gateway fd00:1::1\n" in text


def test_rhel_ifcfg_pair():
    files = bp.render("ifcfg-rhel", spec(stp=True, forward_delay=4), gateway="192.168.0.254")
    bridge = files["/etc/sysconfig/network-scripts/ifcfg-xenbr0"][0]
    port = files["/etc/sysconfig/network-scripts/ifcfg-eth0"][0]
    for line in (
        "DEVICE=xenbr0",
        "TYPE=Bridge",
        "BOOTPROTO=none",
        "STP=yes",
        "DELAY=4",
        "IPADDR0=192.168.0.10",
        "PREFIX0=24",
        "GATEWAY=192.168.0.254",
    ):
        assert line in bridge.splitlines()
    assert "BRIDGE=xenbr0" in port.splitlines()


def test_networkmanager_keyfiles_are_private_and_name_the_port():
    files = bp.render("nm-keyfile", spec(vlan=20), gateway="192.168.0.254")
    bridge, mode = files["/etc/NetworkManager/system-connections/xenbr0.nmconnection"]
    assert mode == 0o600
    assert "[bridge]\nstp=false\n" in bridge
    assert "[ipv4]\nmethod=manual\naddress1=192.168.0.10/24,192.168.0.254\n" in bridge
    port, _ = files["/etc/NetworkManager/system-connections/xenbr0-port-eth0.20.nmconnection"]
    assert "type=vlan" in port and "master=xenbr0" in port and "[vlan]\nparent=eth0\nid=20\n" in port


def test_networkmanager_keyfiles_have_fixed_uuids_bring_their_port_and_keep_the_nic_mac():
    files = bp.render("nm-keyfile", dict(spec(), mac="00:1e:c9:aa:bb:cc"))
    bridge, _ = files["/etc/NetworkManager/system-connections/xenbr0.nmconnection"]
    port, _ = files["/etc/NetworkManager/system-connections/xenbr0-port-eth0.nmconnection"]
    assert f"uuid={bp.nm_uuid('xenbr0')}\n" in bridge
    assert f"uuid={bp.nm_uuid('xenbr0-port-eth0')}\n" in port
    assert bp.nm_uuid("xenbr0") == bp.nm_uuid("xenbr0") != bp.nm_uuid("xenbr1"), "same name, same UUID"
    assert "autoconnect-slaves=1\n" in bridge, "bringing the bridge up brings its port up"
    assert "[bridge]\nstp=false\nmac-address=00:1E:C9:AA:BB:CC\n" in bridge
    host_only = bp.render("nm-keyfile", spec(nic=None))["/etc/NetworkManager/system-connections/xenbr0.nmconnection"]
    assert "autoconnect-slaves" not in host_only[0] and "mac-address" not in host_only[0]


def test_suse_ifcfg_and_route():
    files = bp.render("ifcfg-suse", spec(), gateway="192.168.0.254")
    bridge = files["/etc/sysconfig/network/ifcfg-xenbr0"][0]
    assert "BRIDGE='yes'" in bridge and "BRIDGE_PORTS='eth0'" in bridge and "IPADDR='192.168.0.10/24'" in bridge
    assert files["/etc/sysconfig/network/ifroute-xenbr0"][0].endswith("default 192.168.0.254 - xenbr0\n")
    assert "STARTMODE='auto'" in files["/etc/sysconfig/network/ifcfg-eth0"][0]


def test_style_for_os_family():
    assert bp.style_for("Debian") == "ifupdown"
    assert bp.style_for("RedHat", 8) == "ifcfg-rhel"
    assert bp.style_for("RedHat", "9") == "nm-keyfile"
    assert bp.style_for("Suse") == "ifcfg-suse"
    assert bp.style_for("Windows") is None
    with pytest.raises(bp.PersistError, match="unknown persistence style"):
        bp.render("netplan", spec())


def test_every_style_writes_only_the_paths_it_owns():
    for style in bp.STYLES:
        files = bp.render(style, spec(), gateway="192.168.0.254")
        assert set(files) <= set(bp.owned_paths(style, "xenbr0", "eth0")), style


def test_write_is_atomic_reports_and_is_idempotent(tmp_path):
    files = bp.render("nm-keyfile", spec(), gateway="192.168.0.254")
    assert bp.pending(files, str(tmp_path)) == dict.fromkeys(files, "created")
    assert bp.write(files, str(tmp_path)) == dict.fromkeys(files, "created")
    path = tmp_path / "etc/NetworkManager/system-connections/xenbr0.nmconnection"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert bp.write(files, str(tmp_path)) == {}
    assert sorted(os.listdir(path.parent)) == ["xenbr0-port-eth0.nmconnection", "xenbr0.nmconnection"], (
        "no temporary files left"
    )
    changed = bp.render("nm-keyfile", spec(mtu=9000), gateway="192.168.0.254")
    assert bp.write(changed, str(tmp_path)) == dict.fromkeys(changed, "updated")
    assert bp.remove(bp.owned_paths("nm-keyfile", "xenbr0", "eth0"), str(tmp_path)) == dict.fromkeys(files, "removed")


def test_conflicting_main_interfaces_file_is_pointed_out(tmp_path):
    (tmp_path / "etc/network").mkdir(parents=True)
    (tmp_path / "etc/network/interfaces").write_text(
        "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"
    )
    warnings = bp.conflicts("ifupdown", spec(), str(tmp_path))
    assert warnings == [
        "/etc/network/interfaces line 5 still gives eth0 an address (iface eth0 inet dhcp); "
        "change it to 'iface eth0 inet manual' so the address lives on xenbr0 after a reboot",
        "/etc/network/interfaces does not read /etc/network/interfaces.d (add "
        "'source /etc/network/interfaces.d/*'), so the bridge will not come back after a reboot",
    ]
    (tmp_path / "etc/network/interfaces").write_text(
        "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n"
    )
    assert bp.conflicts("ifupdown", spec(), str(tmp_path)) == []


@pytest.mark.parametrize(
    "style,path,expect",
    [
        (
            "ifupdown",
            "/etc/network/interfaces.d/eth0",
            "iface eth0 inet static\n    address 192.168.0.10/24\n    gateway 192.168.0.254\n",
        ),
        (
            "ifcfg-rhel",
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "IPADDR0=192.168.0.10\nPREFIX0=24\nGATEWAY=192.168.0.254\n",
        ),
        (
            "nm-keyfile",
            "/etc/NetworkManager/system-connections/eth0.nmconnection",
            "[ipv4]\nmethod=manual\naddress1=192.168.0.10/24,192.168.0.254\n",
        ),
        ("ifcfg-suse", "/etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='static'\nIPADDR='192.168.0.10/24'\n"),
    ],
)
def test_nic_gets_its_address_back_after_the_bridge(style, path, expect):
    files = bp.render_nic(style, "eth0", "xenbr0", ["192.168.0.10/24"], gateway="192.168.0.254")
    assert expect in files[path][0]
    assert "BRIDGE" not in files[path][0] and "master" not in files[path][0]


def test_nic_in_main_interfaces_file_is_left_alone(tmp_path):
    (tmp_path / "etc/network").mkdir(parents=True)
    (tmp_path / "etc/network/interfaces").write_text("auto eth0\niface eth0 inet manual\n")
    assert bp.configured_elsewhere("ifupdown", "eth0", str(tmp_path)) is True
    assert bp.configured_elsewhere("ifupdown", "eth1", str(tmp_path)) is False
    assert bp.configured_elsewhere("nm-keyfile", "eth0", str(tmp_path)) is False
