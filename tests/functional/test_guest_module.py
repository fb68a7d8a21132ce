"""xen_guest execution functions through Salt's loader, against libvirt's test driver."""

import pytest
from salt.exceptions import CommandExecutionError


def test_list_filters_by_state(modules):
    assert modules.xen_guest.list() == ["vm02", "vm03"]
    assert modules.xen_guest.list(state="running") == ["vm02"]
    assert modules.xen_guest.list(state="inactive") == ["vm03"]


def test_list_rejects_an_unknown_filter(modules):
    with pytest.raises(CommandExecutionError, match="state filter must be one of"):
        modules.xen_guest.list(state="sleeping")


def test_info_describes_disks_nics_and_vnc(modules):
    info = modules.xen_guest.info("vm02")
    assert info["state"] == "running"
    assert info["id"] is not None
    assert (info["memory"], info["maxmem"], info["vcpus"]) == (512, 512, 2)
    assert info["disks"][0]["source"] == "/var/lib/xen/images/vm02.img"
    assert info["disks"][0]["target"] == "xvda"
    assert info["nics"][0] == {
        "mac": "00:16:3e:02:00:01",
        "bridge": "xenbr0",
        "network": None,
        "vif": info["nics"][0]["vif"],
    }
    assert info["graphics"][0]["display"] == 1
    assert info["autostart"] is False and info["persistent"] is True


def test_unknown_guest_is_named_with_the_uri(modules, test_uri):
    with pytest.raises(CommandExecutionError) as err:
        modules.xen_guest.info("vm9")
    assert str(err.value) == f"no guest named 'vm9' on {test_uri}"


def test_host_info_reports_cpus_memory_and_guest_types(modules):
    host = modules.xen_guest.host_info()
    assert host["cpus"] == 4
    assert host["total_memory"] == 8192
    assert "xen-i686" in host["guest_types"]


def test_top_samples_running_guests_only(modules):
    rows = modules.xen_guest.top(interval=0.05)
    assert list(rows) == ["vm02"]
    assert rows["vm02"]["memory"] == 512


def test_pause_resume_report_old_and_new(modules):
    assert modules.xen_guest.pause("vm02") == {"vm02": {"old": "running", "new": "paused"}}
    assert modules.xen_guest.pause("vm02") == {}
    assert modules.xen_guest.resume("vm02") == {"vm02": {"old": "paused", "new": "running"}}


def test_shutdown_then_start(modules):
    assert modules.xen_guest.shutdown("vm02", timeout=5) == {
        "vm02": {"old": "running", "new": "shutoff", "via": "graceful shutdown"}
    }
    assert modules.xen_guest.shutdown("vm02") == {}
    assert modules.xen_guest.start("vm02") == {"vm02": {"old": "shutoff", "new": "running"}}
    assert modules.xen_guest.start("vm02") == {}


def test_paused_guest_is_destroyed_only_with_force(modules):
    modules.xen_guest.pause("vm02")
    with pytest.raises(CommandExecutionError, match="resume it first, or use force"):
        modules.xen_guest.shutdown("vm02")
    assert modules.xen_guest.list(state="paused") == ["vm02"]
    result = modules.xen_guest.shutdown("vm02", force=True)
    assert result["vm02"]["new"] == "shutoff"
    assert "destroy" in result["vm02"]["via"]


def test_destroy_and_reboot(modules):
    assert modules.xen_guest.reboot("vm02") == {"vm02": {"old": "running", "new": "rebooted"}}
    assert modules.xen_guest.destroy("vm02") == {"vm02": {"old": "running", "new": "shutoff"}}
    assert modules.xen_guest.destroy("vm02") == {}
    with pytest.raises(CommandExecutionError, match="only a running guest can reboot"):
        modules.xen_guest.reboot("vm02")


def test_save_restore_and_refusal_to_overwrite(modules, tmp_path):
    path = tmp_path / "save" / "vm02"
    saved = modules.xen_guest.save("vm02", path=str(path))
    assert saved == {"vm02": {"old": "running", "new": "saved", "path": str(path)}}
    assert path.is_file()
    assert modules.xen_guest.list(state="inactive") == ["vm02", "vm03"]

    modules.xen_guest.start("vm02")
    before = path.read_bytes()
    with pytest.raises(CommandExecutionError, match="already exists: not overwriting"):
        modules.xen_guest.save("vm02", path=str(path))
    assert path.read_bytes() == before
    assert modules.xen_guest.list(state="running") == ["vm02"]

    modules.xen_guest.destroy("vm02")
    restored = modules.xen_guest.restore(path=str(path))
    assert restored == {"vm02": {"old": "saved", "new": "running", "path": str(path)}}
    assert not path.exists()


def test_restore_needs_a_save_file(modules, tmp_path):
    with pytest.raises(CommandExecutionError, match="no saved guest at"):
        modules.xen_guest.restore(path=str(tmp_path / "nothing"))


def test_rename_only_when_shut_off(modules):
    with pytest.raises(CommandExecutionError, match="vm02 is running: shut it off before renaming"):
        modules.xen_guest.rename("vm02", "web")
    assert modules.xen_guest.rename("vm03", "newvm03") == {"vm03": {"old": "vm03", "new": "newvm03"}}
    assert modules.xen_guest.list() == ["newvm03", "vm02"]


def test_autostart_on_and_off(modules):
    assert modules.xen_guest.autostart("vm02") == {"vm02": {"old": {"autostart": False}, "new": {"autostart": True}}}
    assert modules.xen_guest.autostart("vm02") == {}
    assert modules.xen_guest.info("vm02")["autostart"] is True
    assert modules.xen_guest.autostart("vm02", enable=False)["vm02"]["new"] == {"autostart": False}


def test_console_gives_the_command_to_run(modules, test_uri):
    assert modules.xen_guest.console("vm02") == f"virsh -c {test_uri} console vm02"


@pytest.mark.parametrize("func", ["dmesg", "log", "uptime"])
def test_xen_only_functions_say_they_need_xen(modules, func, test_uri):
    with pytest.raises(CommandExecutionError, match=r"not available on this hypervisor \(test://"):
        getattr(modules.xen_guest, func)()


def test_unreachable_uri_names_the_uri_and_the_setting(modules, loaders, monkeypatch):
    monkeypatch.setitem(loaders.opts, "xen", {"libvirt": {"uri": "xen+ssh://nohost.invalid/system?no_tty=1"}})
    with pytest.raises(CommandExecutionError) as err:
        modules.xen_guest.list()
    message = str(err.value)
    assert "cannot connect to libvirt at xen+ssh://nohost.invalid/system" in message
    assert "xen:libvirt:uri" in message
