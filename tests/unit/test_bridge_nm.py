"""The NetworkManager way for bridges, from a described host and nmcli output: read, plan, roll back."""

import re

import pytest

from saltext_xen.networks import bridge_nm, bridge_persist, bridges

BR_UUID = bridge_persist.nm_uuid("xenbr0")
PORT_UUID = bridge_persist.nm_uuid("xenbr0-port-eth0")
WIRED = "0f6b1c2e-0000-4000-8000-000000000001"


def link(kind=None, master=None, mac="52:54:00:aa:bb:cc", **extra):
    entry = {"kind": kind, "master": master, "mtu": 1500, "up": True, "carrier": True, "mac": mac}
    if kind == "bridge":
        entry.update(stp=False, forward_delay=15)  # NetworkManager's own default delay
    entry.update(extra)
    return entry


def before():
    return {
        "links": {"lo": link(mac="00:00:00:00:00:00"), "eth0": link(), "eth1": link(mac="52:54:00:aa:bb:cd")},
        "addrs": {"eth0": ["192.168.0.10/24"]},
        "routes": [{"family": 4, "dst": "default", "dev": "eth0", "gateway": "192.168.0.254"}],
    }


def after():
    return {
        "links": {
            "lo": link(mac="00:00:00:00:00:00"),
            "eth0": link(master="xenbr0"),
            "xenbr0": link(kind="bridge"),
            "eth1": link(mac="52:54:00:aa:bb:cd"),
        },
        "addrs": {"eth0": [], "xenbr0": ["192.168.0.10/24"]},
        "routes": [{"family": 4, "dst": "default", "dev": "xenbr0", "gateway": "192.168.0.254", "metric": 425}],
    }


NM_BEFORE = bridge_nm.parse(
    "lo:unmanaged:\neth0:connected:Wired connection 1\neth1:unmanaged:\n",
    f"Wired connection 1:{WIRED}:802-3-ethernet:eth0:yes:/etc/NetworkManager/system-connections/w.nmconnection\n",
)
NM_AFTER = bridge_nm.parse(
    "lo:unmanaged:\nxenbr0:connected:xenbr0\neth0:connected:xenbr0-port-eth0\neth1:unmanaged:\n",
    f"xenbr0:{BR_UUID}:bridge:xenbr0:yes:/etc/NetworkManager/system-connections/xenbr0.nmconnection\n"
    f"xenbr0-port-eth0:{PORT_UUID}:802-3-ethernet:eth0:yes:/x/xenbr0-port-eth0.nmconnection\n"
    f"Wired connection 1:{WIRED}:802-3-ethernet::no:/etc/NetworkManager/system-connections/w.nmconnection\n",
)


def spec(**data):
    out, problems = bridges.validate(dict({"name": "xenbr0", "nic": "eth0"}, **data))
    assert problems == []
    return out


def test_terse_output_escapes_colons_and_backslashes():
    assert bridge_nm.split_terse(r"Wired\: office:abc\\d:") == ["Wired: office", "abc\\d", ""]
    nm = bridge_nm.parse("eth0:connected:Wired\\: office\nlo:unmanaged:--\n", "")
    assert nm["devices"] == {
        "eth0": {"state": "connected", "connection": "Wired: office"},
        "lo": {"state": "unmanaged", "connection": None},
    }


def test_networkmanager_way_only_for_a_nic_it_manages():
    assert bridge_nm.manages(NM_BEFORE, spec()) is True
    assert bridge_nm.manages(NM_BEFORE, spec(nic="eth1")) is False, "unmanaged"
    assert bridge_nm.manages(None, spec()) is False, "NetworkManager not running"
    assert bridge_nm.manages(NM_BEFORE, spec(nic=None, addresses=["10.0.0.1/24"])) is False, "host-only"
    watching = bridge_nm.parse("eth0:connected (externally):eth0\n", "")
    assert bridge_nm.manages(watching, spec()) is False, "NetworkManager only watches eth0"
    assert bridge_nm.manages(NM_BEFORE, spec(vlan=10)) is True, "a VLAN goes by its parent NIC"


def test_read_says_none_when_networkmanager_is_not_running_or_nmcli_is_missing():
    def not_running(argv):
        return {"retcode": 8, "stdout": "", "stderr": "Error: NetworkManager is not running."}

    def missing(argv):
        raise FileNotFoundError(2, "No such file or directory: 'nmcli'")

    assert bridge_nm.read(not_running) is None
    assert bridge_nm.read(missing) is None


def test_plan_on_a_fresh_host_writes_both_keyfiles_reloads_and_brings_the_bridge_up(tmp_path):
    files = bridge_nm.keyfiles(before(), spec())
    planned = bridge_nm.plan(before(), NM_BEFORE, spec(), files, str(tmp_path))
    assert bridges.describe(planned["steps"]) == [
        "make NetworkManager read the keyfiles: nmcli connection reload",
        f"bring xenbr0 up through NetworkManager with eth0 as its port: nmcli connection up uuid {BR_UUID}",
    ]
    assert set(planned["file_changes"].values()) == {"created"}
    assert planned["previous"] == {"name": "Wired connection 1", "uuid": WIRED}
    assert planned["addresses"] == ["192.168.0.10/24"] and planned["gateways"] == ("192.168.0.254", None)
    text = files["/etc/NetworkManager/system-connections/xenbr0.nmconnection"][0]
    assert "address1=192.168.0.10/24,192.168.0.254\n" in text and "mac-address=52:54:00:AA:BB:CC\n" in text


def test_plan_on_the_finished_host_is_empty_and_notices_what_drifted(tmp_path):
    files = bridge_nm.keyfiles(after(), spec())
    assert files == bridge_nm.keyfiles(before(), spec()), "the same keyfiles before and after"
    bridge_persist.write(files, str(tmp_path))
    planned = bridge_nm.plan(after(), NM_AFTER, spec(), files, str(tmp_path))
    assert planned["steps"] == [] and planned["file_changes"] == {}
    assert planned["bridge_active"] is True and planned["previous"] is None

    not_loaded = {"devices": NM_AFTER["devices"], "connections": {}}
    assert [s["cmd"][2] for s in bridge_nm.plan(after(), not_loaded, spec(), files, str(tmp_path))["steps"]] == [
        "reload",
        "up",
    ], "NetworkManager has not read the keyfiles"
    external = bridge_nm.parse(
        "xenbr0:connected (externally):xenbr0\neth0:connected:Wired connection 1\n",
        f"xenbr0:{BR_UUID}:bridge::no:/k\nxenbr0-port-eth0:{PORT_UUID}:e::no:/k\n",
    )
    assert [s["cmd"][2] for s in bridge_nm.plan(after(), external, spec(), files, str(tmp_path))["steps"]] == ["up"], (
        "the bridge was made behind NetworkManager's back (the ip way): hand it over"
    )
    lost = after()
    lost["addrs"]["xenbr0"] = []
    assert [s["cmd"][2] for s in bridge_nm.plan(lost, NM_AFTER, spec(), files, str(tmp_path))["steps"]] == ["up"]


def test_plan_refuses_what_the_ip_way_refuses(tmp_path):
    with pytest.raises(bridges.BridgeError, match="NIC eth7 does not exist"):
        bridge_nm.plan(before(), NM_BEFORE, spec(nic="eth7"), {}, str(tmp_path))


class FakeNM:
    """A runner answering nmcli: ``fail`` maps a command prefix to its failure."""

    def __init__(self, host, fail=(), once=False):
        self.host, self.fail, self.once, self.calls = host, dict(fail), once, []

    def __call__(self, argv):
        if argv[:2] == ["ip", "-j"]:
            return {"retcode": 0, "stdout": "[]", "stderr": ""}
        self.calls.append(" ".join(argv))
        for prefix, err in self.fail.items():
            if " ".join(argv).startswith(prefix):
                if self.once:
                    del self.fail[prefix]
                return {"retcode": 4, "stdout": "", "stderr": err}
        return {"retcode": 0, "stdout": "", "stderr": ""}


def test_failed_activation_rolls_back_connectivity_first_and_restores_old_keyfiles(tmp_path, monkeypatch):
    files = bridge_nm.keyfiles(before(), spec())
    old = "/etc/NetworkManager/system-connections/xenbr0.nmconnection"
    bridge_persist.write({old: ("[connection]\nid=xenbr0\n", 0o600)}, str(tmp_path))
    planned = bridge_nm.plan(before(), NM_BEFORE, spec(), files, str(tmp_path))
    assert planned["file_changes"][old] == "updated"
    runner = FakeNM(before(), fail={"nmcli connection up uuid " + BR_UUID: "Error: Connection activation failed"})
    with pytest.raises(
        bridges.BridgeError,
        match="activation failed; everything done before was undone "
        r"\(eth0 is back on its connection 'Wired connection 1'",
    ):
        bridge_nm.apply(planned, runner, root=str(tmp_path))
    assert runner.calls == [
        "nmcli connection reload",
        f"nmcli connection up uuid {BR_UUID}",
        f"nmcli connection up uuid {WIRED}",
        f"nmcli connection down uuid {BR_UUID}",
        "nmcli connection reload",
    ]
    assert (tmp_path / old.lstrip("/")).read_text() == "[connection]\nid=xenbr0\n", "the old keyfile is back"
    assert not (tmp_path / "etc/NetworkManager/system-connections/xenbr0-port-eth0.nmconnection").exists()


def test_rollback_that_fails_says_the_host_needs_a_hand(tmp_path):
    planned = bridge_nm.plan(before(), NM_BEFORE, spec(), bridge_nm.keyfiles(before(), spec()), str(tmp_path))
    runner = FakeNM(before(), fail={"nmcli connection up": "Error: Connection activation failed"})
    with pytest.raises(
        bridges.BridgeError,
        match=f"rolling back also failed, the host may need a hand: 'nmcli connection up uuid {WIRED}'",
    ):
        bridge_nm.apply(planned, runner, root=str(tmp_path))


def test_bridge_that_never_gets_its_addresses_is_rolled_back(tmp_path):
    planned = bridge_nm.plan(before(), NM_BEFORE, spec(), bridge_nm.keyfiles(before(), spec()), str(tmp_path))
    half = after()
    half["addrs"]["xenbr0"] = []
    assert bridge_nm.check(half, planned) == "xenbr0 does not hold 192.168.0.10/24 yet"
    no_route = after()
    no_route["routes"] = []
    assert bridge_nm.check(no_route, planned) == "the default route via 192.168.0.254 is not on xenbr0 yet"
    assert bridge_nm.check(after(), planned) is None


def test_keyfiles_that_cannot_be_written_leave_networkmanager_alone(tmp_path):
    planned = bridge_nm.plan(before(), NM_BEFORE, spec(), bridge_nm.keyfiles(before(), spec()), str(tmp_path))
    (tmp_path / "etc").write_text("not a directory")
    runner = FakeNM(before())
    with pytest.raises(
        bridges.BridgeError,
        match="the keyfiles could not be written: .*everything done before "
        r"was undone \(the keyfiles are as they were\)",
    ):
        bridge_nm.apply(planned, runner, root=str(tmp_path))
    assert runner.calls == [], "no nmcli call: NetworkManager saw nothing"


def test_failed_change_of_a_running_bridge_brings_it_back_with_its_old_settings(tmp_path):
    old_files = bridge_nm.keyfiles(after(), spec())
    bridge_persist.write(old_files, str(tmp_path))
    planned = bridge_nm.plan(
        after(), NM_AFTER, spec(mtu=1400), bridge_nm.keyfiles(after(), spec(mtu=1400)), str(tmp_path)
    )
    assert planned["bridge_active"] is True and planned["previous"] is None
    runner = FakeNM(after(), fail={"nmcli connection up": "Error: Connection activation failed"}, once=True)
    with pytest.raises(
        bridges.BridgeError,
        match=r"undone \(the keyfiles are as they were; xenbr0 runs with its "
        r"old settings\)",
    ):
        bridge_nm.apply(planned, runner, root=str(tmp_path))
    assert runner.calls == [
        "nmcli connection reload",
        f"nmcli connection up uuid {BR_UUID}",
        "nmcli connection reload",
        f"nmcli connection up uuid {BR_UUID}",
    ]
    assert bridge_persist.pending(old_files, str(tmp_path)) == {}, "the old keyfiles are back"


def test_nic_on_dhcp_gives_a_bridge_on_dhcp_not_a_frozen_lease(tmp_path):
    wired = tmp_path / "Wired connection 1.nmconnection"
    wired.write_text("[connection]\nid=Wired connection 1\n\n[ipv4]\nmethod=auto\n")
    nm = bridge_nm.parse(
        "eth0:connected:Wired connection 1\n", f"Wired connection 1:{WIRED}:802-3-ethernet:eth0:yes:{wired}\n"
    )
    files = bridge_nm.keyfiles(before(), spec(), dhcp=None, nm=nm)
    text = files["/etc/NetworkManager/system-connections/xenbr0.nmconnection"][0]
    assert "[ipv4]\nmethod=auto\n" in text and "192.168.0.10" not in text
    planned = bridge_nm.plan(before(), nm, spec(), files, str(tmp_path))
    assert planned["dhcp"] is True and planned["addresses"] == [] and planned["gateways"] == (None, None)
    leased = after()
    leased["addrs"]["xenbr0"] = []
    assert bridge_nm.check(leased, planned) == "xenbr0 has no IPv4 address from DHCP yet"
    assert bridge_nm.check(after(), planned) is None

    # second run: the NIC runs the port connection now; the bridge's own keyfile says DHCP
    bridge_persist.write(files, str(tmp_path))
    keydir = tmp_path / "etc/NetworkManager/system-connections"
    nm_after = bridge_nm.parse(
        "xenbr0:connected:xenbr0\neth0:connected:xenbr0-port-eth0\n",
        f"xenbr0:{BR_UUID}:bridge:xenbr0:yes:{keydir}/xenbr0.nmconnection\n"
        f"xenbr0-port-eth0:{PORT_UUID}:802-3-ethernet:eth0:yes:{keydir}/xenbr0-port-eth0.nmconnection\n",
    )
    again = bridge_nm.keyfiles(after(), spec(), dhcp=None, nm=nm_after)
    assert again == files
    assert bridge_nm.plan(after(), nm_after, spec(), again, str(tmp_path))["steps"] == []
    assert bridge_nm.keyfiles(before(), spec(addresses=["192.168.0.10/24"]), dhcp=None, nm=nm) != files, (
        "addresses given: static, whatever the NIC did"
    )


def test_rhel8_ifcfg_connection_on_dhcp_counts_too(tmp_path):
    ifcfg = tmp_path / "ifcfg-eth0"
    ifcfg.write_text('DEVICE=eth0\nBOOTPROTO="dhcp"\n')
    nm = bridge_nm.parse("eth0:connected:System eth0\n", f"System eth0:{WIRED}:802-3-ethernet:eth0:yes:{ifcfg}\n")
    assert bridge_nm.uses_dhcp(nm, spec()) is True
    ifcfg.write_text("DEVICE=eth0\nBOOTPROTO=none\nIPADDR=192.168.0.10\n")
    assert bridge_nm.uses_dhcp(nm, spec()) is False
    assert bridge_nm.uses_dhcp(NM_BEFORE, spec()) is False, "a file NetworkManager names but that is not there"


# ---------------------------------------------------------------- bridge_absent through NetworkManager

KEYDIR = "etc/NetworkManager/system-connections"
WIRED_TEXT = (
    "[connection]\nid=Wired connection 1\nuuid=" + WIRED + "\ntype=ethernet\ninterface-name=eth0\n\n"
    "[ipv4]\nmethod=manual\naddress1=192.168.0.10/24\ngateway=192.168.0.254\n"
)


def nm_host(tmp_path, wired=WIRED_TEXT, wired_name="Wired connection 1.nmconnection"):
    """The host after bridge_present: both keyfiles under tmp_path, the NIC's own connection inactive."""
    bridge_persist.write(bridge_nm.keyfiles(after(), spec()), str(tmp_path))
    keydir = tmp_path / KEYDIR
    (keydir / wired_name).write_text(wired)
    return bridge_nm.parse(
        "lo:unmanaged:\nxenbr0:connected:xenbr0\neth0:connected:xenbr0-port-eth0\n",
        f"xenbr0:{BR_UUID}:bridge:xenbr0:yes:{keydir}/xenbr0.nmconnection\n"
        f"xenbr0-port-eth0:{PORT_UUID}:802-3-ethernet:eth0:yes:{keydir}/xenbr0-port-eth0.nmconnection\n"
        f"Wired connection 1:{WIRED}:802-3-ethernet::no:{keydir}/{wired_name}\n",
    )


def gone():
    state = after()
    del state["links"]["xenbr0"]
    state["links"]["eth0"]["master"] = None
    state["addrs"] = {"eth0": ["192.168.0.10/24"]}
    state["routes"] = [{"family": 4, "dst": "default", "dev": "eth0", "gateway": "192.168.0.254"}]
    return state


def test_removal_plan_brings_the_nics_own_connection_back_first_then_the_bridge_goes(tmp_path, monkeypatch):
    nm = nm_host(tmp_path)
    assert bridge_nm.manages_bridge(nm, after(), "xenbr0", str(tmp_path)) is True
    planned = bridge_nm.plan_remove(after(), nm, "xenbr0", root=str(tmp_path))
    assert [s["cmd"] for s in planned["steps"]] == [
        ["nmcli", "connection", "up", "uuid", WIRED],
        ["nmcli", "connection", "down", "uuid", BR_UUID],
        ["ip", "link", "del", "xenbr0"],
        ["nmcli", "connection", "reload"],
    ]
    assert planned["file_changes"] == {
        f"/{KEYDIR}/xenbr0.nmconnection": "removed",
        f"/{KEYDIR}/xenbr0-port-eth0.nmconnection": "removed",
    }
    assert planned["original"] == {"name": "Wired connection 1", "uuid": WIRED}
    assert planned["expect"] == {"dhcp": False, "addresses": ["192.168.0.10/24"], "gateways": ("192.168.0.254", None)}
    assert bridge_nm.check_removed(after(), planned) == "xenbr0 still exists"
    half = gone()
    half["routes"] = []
    assert bridge_nm.check_removed(half, planned) == "the default route via 192.168.0.254 is not on eth0 yet"
    assert bridge_nm.check_removed(gone(), planned) is None

    runner = FakeNM(after())
    monkeypatch.setattr(bridges, "read", lambda runner, netns=None: gone())  # the host once NetworkManager is done
    assert bridge_nm.apply_remove(planned, runner, root=str(tmp_path)) == bridges.describe(planned["steps"])
    assert runner.calls == [
        f"nmcli connection up uuid {WIRED}",
        f"nmcli connection down uuid {BR_UUID}",
        "nmcli connection reload",
    ], "a bridge NetworkManager deleted needs no ip link del"
    assert sorted(p.name for p in (tmp_path / KEYDIR).iterdir()) == ["Wired connection 1.nmconnection"]


def test_removal_is_refused_while_guests_use_the_bridge(tmp_path):
    nm = nm_host(tmp_path)
    with_guest = after()
    with_guest["links"]["vif1.0"] = link(master="xenbr0", mac="fe:ff:ff:ff:ff:ff")
    with pytest.raises(bridges.BridgeInUse, match=re.escape("xenbr0 is still used by vif1.0, vm02")):
        bridge_nm.plan_remove(with_guest, nm, "xenbr0", guests=["vm02"], root=str(tmp_path))
    assert bridge_nm.plan_remove(with_guest, nm, "xenbr0", guests=["vm02"], force=True, root=str(tmp_path))["steps"], (
        "force: it goes all the same"
    )


def test_only_leftovers_are_cleaned_and_then_nothing_is_left_to_do(tmp_path):
    nm = nm_host(tmp_path)
    nm["connections"][BR_UUID].update(active=False, device=None)
    nm["connections"][PORT_UUID].update(active=False, device=None)
    assert bridge_nm.manages_bridge(nm, gone(), "xenbr0", str(tmp_path)), "its keyfiles and connections are left"
    planned = bridge_nm.plan_remove(gone(), nm, "xenbr0", root=str(tmp_path))
    assert bridges.describe(planned["steps"]) == [
        "make NetworkManager forget xenbr0 and its port, whose keyfiles are removed: nmcli connection reload"
    ]
    bridge_nm.apply_remove(planned, FakeNM(gone()), root=str(tmp_path))
    clean = bridge_nm.parse(
        "eth0:connected:Wired connection 1\n", f"Wired connection 1:{WIRED}:802-3-ethernet:eth0:yes:/k\n"
    )
    assert bridge_nm.manages_bridge(clean, gone(), "xenbr0", str(tmp_path)) is False
    assert bridge_nm.manages_bridge(None, after(), "xenbr0", str(tmp_path)) is False, "no NetworkManager: ip way"
    made_by_ip = bridge_nm.parse("xenbr0:connected (externally):xenbr0\n", "")
    assert bridge_nm.manages_bridge(made_by_ip, after(), "xenbr0", str(tmp_path)) is False


def test_original_connection_by_name_or_mac_never_a_port_and_rhel8_ifcfg(tmp_path):
    def conns(*rows):
        lines = []
        for index, (name, kind, text, filename) in enumerate(rows):
            path = tmp_path / (filename or f"c{index}.nmconnection")
            path.write_text(text)
            lines.append(f"{name}:uuid-{index}:{kind}::no:{path}")
        return bridge_nm.parse("", "\n".join(lines) + "\n")

    port_of_other = "[connection]\nid=p\ninterface-name=eth0\nmaster=br9\nslave-type=bridge\n"
    by_mac = "[connection]\nid=m\n\n[ethernet]\nmac-address=52:54:00:AA:BB:CC\n\n[ipv4]\nmethod=auto\n"
    by_name = "[connection]\nid=n\ninterface-name=eth0\n\n[ipv4]\nmethod=manual\naddress1=10.0.0.2/24,10.0.0.1\n"
    assert bridge_nm.original(conns(("p", "802-3-ethernet", port_of_other, None)), "eth0") is None
    found = bridge_nm.original(
        conns(("m", "802-3-ethernet", by_mac, None), ("n", "802-3-ethernet", by_name, None)),
        "eth0",
        "52:54:00:aa:bb:cc",
    )
    assert found["name"] == "n", "bound to the interface name beats bound to the MAC"
    assert found["ip"] == {"dhcp": False, "addresses": ["10.0.0.2/24"], "gateways": ("10.0.0.1", None)}
    assert (
        bridge_nm.original(conns(("m", "802-3-ethernet", by_mac, None)), "eth0", "52:54:00:aa:bb:cc")["ip"]["dhcp"]
        is True
    )
    ifcfg = 'DEVICE=eth0\nBOOTPROTO=none\nIPADDR=10.0.0.2\nNETMASK=255.255.255.0\nGATEWAY="10.0.0.1"\n'
    found = bridge_nm.original(conns(("System eth0", "802-3-ethernet", ifcfg, "ifcfg-eth0")), "eth0")
    assert found["ip"] == {"dhcp": False, "addresses": ["10.0.0.2/24"], "gateways": ("10.0.0.1", None)}
    bridged = "DEVICE=eth0\nBRIDGE=xenbr0\n"
    assert bridge_nm.original(conns(("System eth0", "802-3-ethernet", bridged, "ifcfg-eth0")), "eth0") is None


def test_nic_on_dhcp_waits_for_a_lease(tmp_path):
    nm = nm_host(
        tmp_path,
        wired=WIRED_TEXT.replace("method=manual\naddress1=192.168.0.10/24\ngateway=192.168.0.254\n", "method=auto\n"),
    )
    planned = bridge_nm.plan_remove(after(), nm, "xenbr0", root=str(tmp_path))
    assert planned["expect"]["dhcp"] is True
    no_lease = gone()
    no_lease["addrs"]["eth0"] = []
    assert bridge_nm.check_removed(no_lease, planned) == "eth0 has no IPv4 address from DHCP yet"
    assert bridge_nm.check_removed(gone(), planned) is None


def test_failed_removal_step_brings_the_bridge_back_and_keeps_the_keyfiles(tmp_path):
    nm = nm_host(tmp_path)
    planned = bridge_nm.plan_remove(after(), nm, "xenbr0", root=str(tmp_path))
    runner = FakeNM(after(), fail={f"nmcli connection down uuid {BR_UUID}": "Error: not an active connection"})
    with pytest.raises(
        bridges.BridgeError,
        match=r"down uuid .* failed: Error: not an active connection; everything "
        r"done before was undone \(xenbr0 is up again through "
        r"NetworkManager with eth0 as its port; the keyfiles are as",
    ):
        bridge_nm.apply_remove(planned, runner, root=str(tmp_path))
    assert runner.calls == [
        f"nmcli connection up uuid {WIRED}",
        f"nmcli connection down uuid {BR_UUID}",
        f"nmcli connection up uuid {BR_UUID}",
        "nmcli connection reload",
    ], "the bridge (still loaded) comes back first"
    assert bridge_persist.pending(bridge_nm.keyfiles(after(), spec()), str(tmp_path)) == {}


def test_nic_without_a_connection_gets_a_keyfile_written_first_and_removed_again_on_failure(tmp_path):
    nm = nm_host(tmp_path)
    del nm["connections"][WIRED]
    with pytest.raises(bridges.BridgeError, match="eth0 has no NetworkManager connection of its own"):
        bridge_nm.plan_remove(after(), nm, "xenbr0", root=str(tmp_path), restore_nic=False)
    planned = bridge_nm.plan_remove(after(), nm, "xenbr0", root=str(tmp_path), dhcp=True)
    nic = f"/{KEYDIR}/eth0.nmconnection"
    assert planned["file_changes"][nic] == "created" and planned["expect"]["dhcp"] is True
    assert "[ipv4]\nmethod=auto\n" in planned["nic_files"][nic][0]
    assert [s["key"] for s in planned["steps"]] == ["load", "up", "down", "delete", "forget"]
    runner = FakeNM(after(), fail={"nmcli connection up uuid " + bridge_persist.nm_uuid("eth0"): "Error: no"})
    with pytest.raises(bridges.BridgeError, match="undone"):
        bridge_nm.apply_remove(planned, runner, root=str(tmp_path))
    assert not (tmp_path / nic.lstrip("/")).exists(), "the NIC's new keyfile is gone again"
    assert runner.calls[-2:] == [f"nmcli connection up uuid {BR_UUID}", "nmcli connection reload"]
