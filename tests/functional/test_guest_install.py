"""Installing new guests as virt-install did, from a tiny install tree on a loopback HTTP server."""

import libvirt
import pytest

from saltext_xen.core import connection
from saltext_xen.guests import domain_xml


def _run(states, fn, name, **kwargs):
    return dict(getattr(states.xen_guest, fn)(name, **kwargs).full_return)


def _vm02(tmp_path, url):
    # virt-install -p -n vm02 -f IMG -s 8 -r 512 --vcpus=2 -b xenbr0 -l URL -x "ks=URL"
    return {
        "type": "pv",
        "memory": 512,
        "vcpus": 2,
        "disks": [{"source": str(tmp_path / "vm02.img"), "size": "8G"}],
        "nics": [{"bridge": "xenbr0"}],
        "install": {"location": url, "kickstart": f"{url}/ks.cfg"},
    }


def test_pv_network_install_boots_tree_kernel_once_then_pygrub(states, tmp_path, tree, test_uri):
    url = tree + "/"
    boot_dir = tmp_path / "boot"
    spec = _vm02(tmp_path, url.rstrip("/"))
    ret = _run(states, "running", "vm99", spec=spec, boot_dir=str(boot_dir))
    assert ret["result"] is True, ret["comment"]
    assert "installed" in ret["changes"]
    assert (tmp_path / "vm02.img").stat().st_size == 8 * 1024**3
    assert (tmp_path / "vm02.img").stat().st_blocks == 0
    assert (boot_dir / "vm99-vmlinuz").read_bytes() == b"\x7fELF fake xen kernel"
    assert (boot_dir / "vm99-initrd.img").read_bytes() == b"fake initrd"

    dom = connection.connect(test_uri).lookupByName("vm99")
    assert dom.isActive()
    live = domain_xml.parse(dom.XMLDesc(0))
    assert live["boot"]["kernel"] == str(boot_dir / "vm99-vmlinuz")
    assert live["boot"]["cmdline"] == f"method={url.rstrip('/')} ks={url.rstrip('/')}/ks.cfg"
    assert live["on_reboot"] == "destroy"  # the installer's last reboot ends it
    persistent = domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert persistent["boot"]["bootloader"] == "/usr/bin/pygrub" and persistent["boot"]["kernel"] is None
    assert persistent["on_reboot"] == "restart"

    assert _run(states, "running", "vm99", spec=spec, boot_dir=str(boot_dir))["changes"] == {}

    dom.destroy()  # the installer finished and rebooted
    ret = _run(states, "running", "vm99", spec=spec, boot_dir=str(boot_dir))
    assert ret["changes"] == {"state": {"old": "shutoff", "new": "running"}}
    assert domain_xml.parse(dom.XMLDesc(0))["boot"]["bootloader"] == "/usr/bin/pygrub"


def test_test_mode_says_what_the_install_would_do(states, tmp_path, tree, test_uri):
    boot_dir = tmp_path / "boot"
    ret = _run(states, "running", "vm99", spec=_vm02(tmp_path, tree), boot_dir=str(boot_dir), test=True)
    assert ret["result"] is None
    assert ret["changes"]["installed"]["new"].startswith(f"network install from {tree}")
    assert not boot_dir.exists() and not (tmp_path / "vm02.img").exists()


def test_missing_kernel_in_tree_is_named(states, tmp_path, tree, test_uri):
    spec = _vm02(tmp_path, tree + "/nothing-here")
    ret = _run(states, "running", "vm99", spec=spec, boot_dir=str(tmp_path / "boot"))
    assert ret["result"] is False
    assert f"cannot fetch {tree}/nothing-here/images/xen/vmlinuz" in ret["comment"]
    with pytest.raises(libvirt.libvirtError):
        connection.connect(test_uri).lookupByName("vm99")


def test_hvm_from_iso_cdrom_first_with_vnc_then_disk_boot(states, tmp_path, test_uri):
    iso = tmp_path / "win.iso"
    iso.write_bytes(b"CD001")
    spec = {
        "type": "hvm",
        "memory": 1024,
        "disks": [{"source": str(tmp_path / "win.img"), "size": 2048}],
        "nics": [{"bridge": "xenbr0", "model": "e1000"}],
        "install": {"iso": str(iso)},
    }
    ret = _run(states, "running", "win", spec=spec)
    assert ret["result"] is True, ret["comment"]
    dom = connection.connect(test_uri).lookupByName("win")
    live = domain_xml.parse(dom.XMLDesc(0))
    assert live["boot"]["order"] == ["cdrom", "hd"]
    assert any(d["device"] == "cdrom" and d["source"] == str(iso) for d in live["disks"])
    assert live["graphics"]["listen"] == "127.0.0.1"
    persistent = domain_xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert persistent["boot"]["order"] == ["hd"]
    assert [d["device"] for d in persistent["disks"]] == ["disk"]
    assert persistent["graphics"] is None
    assert _run(states, "running", "win", spec=spec)["changes"] == {}


def _example_pillar(tmp_path, tree):
    """pillar/xen/guests.sls as shipped, with paths under tmp_path and the loopback tree."""
    import yaml

    from tests.conftest import ROOT

    pillar = yaml.safe_load((ROOT / "pillar" / "xen" / "guests.sls").read_text())
    guests = pillar["xen"]["guests"]
    pillar["xen"]["install"]["boot_dir"] = str(tmp_path / "boot")
    guests["vm02"]["disks"][0]["source"] = str(tmp_path / "vm02.img")
    guests["vm02"]["install"] = {"location": tree, "kickstart": f"{tree}/ks.cfg"}
    guests["winxp"]["disks"][0]["source"] = str(tmp_path / "winxp.img")
    iso = tmp_path / "winxp.iso"
    iso.write_bytes(b"CD001")
    guests["winxp"]["install"]["iso"] = str(iso)
    guests["newvm"]["disks"][1]["source"] = str(tmp_path / "newvm-1.img")
    return pillar


def _by_id(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def test_formula_applies_the_example_pillar_and_then_changes_nothing(modules, tmp_path, tree, test_uri):
    pillar = _example_pillar(tmp_path, tree)
    predicted = _by_id(modules.state.sls("xen.guests", pillar=pillar, test=True))
    assert set(predicted) == {"xen-guest-newvm-running", "xen-guest-vm02-running", "xen-guest-winxp-running"}
    assert all(r["result"] is None for r in predicted.values()), predicted
    applied = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert all(r["result"] is True for r in applied.values()), {k: r["comment"] for k, r in applied.items()}
    for key in predicted:
        assert applied[key]["changes"] == predicted[key]["changes"]
    assert (tmp_path / "newvm-1.img").stat().st_size == 2 * 1024**4  # 2 TB, sparse
    conn = connection.connect(test_uri)
    assert conn.lookupByName("newvm").autostart() == 1
    again = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert {k: r["changes"] for k, r in again.items()} == {k: {} for k in again}


def test_formula_reports_a_bad_pillar_key_with_its_path(modules, tmp_path, tree, test_uri):
    pillar = _example_pillar(tmp_path, tree)
    pillar["xen"]["guests"]["newvm"]["memory"] = "5l2"
    ret = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert ret["xen-guest-newvm-running"]["result"] is False
    assert "xen:guests:newvm:memory: expected MiB as an integer, got '5l2'" in ret["xen-guest-newvm-running"]["comment"]


def test_formula_names_a_mac_shared_by_two_guests(modules, tmp_path, tree, test_uri):
    pillar = _example_pillar(tmp_path, tree)
    pillar["xen"]["guests"]["vm02"]["nics"][0]["mac"] = "00:16:36:88:76:d4"  # newvm's first NIC
    ret = _by_id(modules.state.sls("xen.guests", pillar=pillar))
    assert ret["xen-guest-vm02-running"]["result"] is False
    assert (
        "xen:guests:vm02:nics:0:mac: 00:16:36:88:76:d4 is also given to guest newvm"
        in ret["xen-guest-vm02-running"]["comment"]
    )
    assert ret["xen-guest-newvm-running"]["result"] is False


def test_install_tree_in_a_local_directory_or_file_url(states, tmp_path, test_uri):
    root = tmp_path / "tree"
    (root / "images" / "xen").mkdir(parents=True)
    (root / "images" / "xen" / "vmlinuz").write_bytes(b"k")
    (root / "images" / "xen" / "initrd.img").write_bytes(b"i")
    for name, location in (("loc1", str(root)), ("loc2", f"file://{root}")):
        spec = {
            "disks": [{"source": str(tmp_path / f"{name}.img"), "size": 64}],
            "install": {"location": location, "extra_args": "text console=hvc0"},
        }
        ret = _run(states, "running", name, spec=spec, boot_dir=str(tmp_path / "boot"))
        assert ret["result"] is True, ret["comment"]
        assert (tmp_path / "boot" / f"{name}-vmlinuz").read_bytes() == b"k"
        live = domain_xml.parse(connection.connect(test_uri).lookupByName(name).XMLDesc(0))
        expected = "text console=hvc0" if name == "loc1" else f"method=file://{root} text console=hvc0"
        assert live["boot"]["cmdline"] == expected
