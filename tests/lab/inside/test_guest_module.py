"""xen_guest execution functions on real Xen 4.17 (xen:///system) with a tiny PV guest.

The tests in this file run in order on one guest, ``labpv1`` (128 MiB, dom0's
kernel + a busybox initrd, no disk): each step starts from where the one before
left the guest, as an operator's session would.
"""

import inspect
import json
import os

import pytest
from labhelpers import console_log, pv_xml, remove_guest, wait_console, wait_for, xl, xl_state
from salt.exceptions import CommandExecutionError

NAME = "labpv1"


def ensure_running(conn, name):
    """Start the guest if an earlier step left it off (one failure should not fail the rest)."""
    dom = conn.lookupByName(name)
    if not dom.isActive():
        dom.create()
    elif "p" in (xl_state(name) or ""):
        dom.resume()


@pytest.fixture(scope="module")
def guest(conn):
    remove_guest(conn, NAME)
    remove_guest(conn, NAME + "-renamed")
    log = f"/var/log/xen/console/guest-{NAME}.log"
    if os.path.exists(log):
        os.unlink(log)
    conn.defineXML(pv_xml(NAME))
    yield NAME
    remove_guest(conn, NAME)
    remove_guest(conn, NAME + "-renamed")


def test_modules_come_from_the_installed_wheel(caller):
    """Salt found xen_guest through the project's salt.loader entry point, not a source tree."""
    funcs = caller.sminion.functions
    assert "xen_guest.list" in funcs
    func = funcs["xen_guest.list"]
    path = inspect.getfile(inspect.unwrap(getattr(func, "func", func)))  # past saltglue.plain_errors
    assert "site-packages/saltext_xen/modules" in path, path


def test_salt_call_cli_lists_guests(salt_call_list_bg):
    """``salt-call --local xen_guest.list`` works as an operator types it, against xen:///system
    (started in the background when the session began, with guest ``labcli`` defined)."""
    cmd, proc = salt_call_list_bg
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{out}\n{err}"
    assert "labcli" in json.loads(out)["local"], out


def test_host_info_is_real_xen_417(caller):
    """host_info reports the Xen hypervisor via libvirt plus xl info; PV only under TCG (no HVM)."""
    host = caller.cmd("xen_guest.host_info")
    assert host["uri"] == "xen:///system"
    assert host["hypervisor"] == "Xen"
    assert host["xen"]["xen_version"].startswith("4.17"), host["xen"]
    assert any(t.startswith("xen-") for t in host["guest_types"]), host["guest_types"]
    # The lab's QEMU (TCG) has no VMX/SVM: HVM guests cannot exist here, only PV.
    assert not any(t.startswith("hvm-") for t in host["guest_types"]), host["guest_types"]
    assert host["total_memory"] > 1024


def test_start_boots_the_guest(caller, guest):
    """start boots a shut-off PV guest; its busybox init reaches the console."""
    assert caller.cmd("xen_guest.start", guest) == {guest: {"old": "shutoff", "new": "running"}}
    assert caller.cmd("xen_guest.start", guest) == {}
    wait_console(guest)
    assert guest in caller.cmd("xen_guest.list", state="running")


def test_info_reads_the_running_guest(caller, conn, guest):
    """info reports state, domain id, memory and vcpus as Xen has them, uptime from xl."""
    ensure_running(conn, guest)
    info = caller.cmd("xen_guest.info", guest)
    assert info["state"] == "running"
    assert isinstance(info["id"], int) and info["id"] > 0
    assert (info["memory"], info["maxmem"], info["vcpus"]) == (128, 128, 1)
    assert info["os_type"] == "linux"
    assert info["persistent"] is True
    assert info["uptime"] is not None and info["uptime"] >= 0
    assert str(info["id"]) in xl("domid", guest)


def test_uptime_and_top(caller, conn, guest):
    """uptime (xl uptime) and top (libvirt CPU sampling) see the running guest."""
    ensure_running(conn, guest)
    up = caller.cmd("xen_guest.uptime", guest)
    assert isinstance(up[guest], int) and up[guest] >= 0
    assert guest in caller.cmd("xen_guest.uptime")
    rows = caller.cmd("xen_guest.top", interval=1)
    assert guest in rows
    assert rows[guest]["memory"] == 128


def test_pause_and_resume(caller, conn, guest):
    """pause freezes the domain (xl shows 'p'), resume lets it run again."""
    ensure_running(conn, guest)
    assert caller.cmd("xen_guest.pause", guest) == {guest: {"old": "running", "new": "paused"}}
    assert "p" in xl_state(guest)
    assert caller.cmd("xen_guest.pause", guest) == {}
    assert caller.cmd("xen_guest.list", state="paused") == [guest]
    assert caller.cmd("xen_guest.resume", guest) == {guest: {"old": "paused", "new": "running"}}
    assert "p" not in xl_state(guest)


def test_save_and_restore(caller, conn, guest, tmp_path):
    """save writes the guest's memory to a file and stops it; restore brings the same guest back."""
    ensure_running(conn, guest)
    path = str(tmp_path / f"{guest}.save")
    before = caller.cmd("xen_guest.info", guest)["uuid"]
    result = caller.cmd("xen_guest.save", guest, path=path)
    assert result == {guest: {"old": "running", "new": "saved", "path": path}}
    assert os.path.getsize(path) > 64 * 1024 * 1024 // 2  # the guest's RAM is in there
    assert xl_state(guest) is None  # no longer a running domain
    with pytest.raises(CommandExecutionError):
        caller.cmd("xen_guest.save", guest, path=path)  # not running: nothing to save
    result = caller.cmd("xen_guest.restore", path=path)
    assert result[guest]["new"] == "running"
    assert not os.path.exists(path)  # removed after restore unless keep=True
    info = caller.cmd("xen_guest.info", guest)
    assert info["state"] == "running" and info["uuid"] == before


def test_reboot_restarts_the_guest(caller, conn, guest):
    """reboot asks the guest; busybox init reboots it and Xen starts it again (new domain id)."""
    ensure_running(conn, guest)
    old_id = caller.cmd("xen_guest.info", guest)["id"]
    ups = console_log(guest).count("LABGUEST-UP")
    assert caller.cmd("xen_guest.reboot", guest) == {guest: {"old": "running", "new": "rebooted"}}
    wait_for(
        lambda: (caller.cmd("xen_guest.info", guest)["id"] or old_id) != old_id,
        timeout=180,
        what=f"{guest} to come back with a new domain id",
    )
    wait_console(guest, count=ups + 1)


def test_graceful_shutdown(caller, conn, guest):
    """shutdown asks the guest's kernel to power off (no force) and waits until it is off."""
    ensure_running(conn, guest)
    result = caller.cmd("xen_guest.shutdown", guest, timeout=180)
    assert result == {guest: {"old": "running", "new": "shutoff", "via": "graceful shutdown"}}
    assert "LABGUEST-DOWN" in console_log(guest)
    assert caller.cmd("xen_guest.shutdown", guest) == {}


def test_rename_a_shut_off_guest(caller, conn, guest):
    """rename changes the name of a shut-off guest, and back."""
    caller.cmd("xen_guest.shutdown", guest, timeout=120, force=True)  # off, whatever came before
    new = guest + "-renamed"
    assert caller.cmd("xen_guest.rename", guest, new) == {guest: {"old": guest, "new": new}}
    names = caller.cmd("xen_guest.list")
    assert new in names and guest not in names
    assert caller.cmd("xen_guest.rename", new, guest) == {new: {"old": new, "new": guest}}
    assert guest in caller.cmd("xen_guest.list", state="inactive")


def test_autostart_on_and_off(caller, guest):
    """autostart sets and clears libvirt's autostart flag for the guest."""
    assert caller.cmd("xen_guest.autostart", guest) == {
        guest: {"old": {"autostart": False}, "new": {"autostart": True}}
    }
    assert caller.cmd("xen_guest.info", guest)["autostart"] is True
    assert caller.cmd("xen_guest.autostart", guest) == {}
    caller.cmd("xen_guest.autostart", guest, enable=False)
    assert caller.cmd("xen_guest.info", guest)["autostart"] is False


def test_destroy_a_running_guest(caller, guest):
    """destroy stops a running guest at once."""
    caller.cmd("xen_guest.start", guest)
    assert caller.cmd("xen_guest.destroy", guest) == {guest: {"old": "running", "new": "shutoff"}}
    assert xl_state(guest) is None
    assert caller.cmd("xen_guest.destroy", guest) == {}


def test_forced_shutdown_of_a_paused_guest(caller, guest):
    """a paused guest cannot hear a shutdown request: refused without force, destroyed with it."""
    caller.cmd("xen_guest.start", guest)
    caller.cmd("xen_guest.pause", guest)
    with pytest.raises(CommandExecutionError, match="resume it first, or use force"):
        caller.cmd("xen_guest.shutdown", guest)
    result = caller.cmd("xen_guest.shutdown", guest, force=True)
    assert result[guest]["new"] == "shutoff" and "destroy" in result[guest]["via"]


def test_console_dmesg_and_logs(caller, guest):
    """console names the xl command; dmesg is Xen's buffer; log includes the guest's console log."""
    assert caller.cmd("xen_guest.console", guest) == f"xl console {guest}"
    assert "Xen version 4.17" in caller.cmd("xen_guest.dmesg")
    logs = caller.cmd("xen_guest.log", guest, lines=50)
    console = f"/var/log/xen/console/guest-{guest}.log"
    assert console in logs, list(logs)
    assert "LABGUEST-UP" in logs[console]
    assert caller.cmd("xen_guest.log")  # all of /var/log/xen


def test_unknown_guest_is_a_plain_error(caller):
    """a missing guest is reported by name and URI, not with a traceback."""
    with pytest.raises(CommandExecutionError, match="no guest named 'nosuchguest' on xen:///system"):
        caller.cmd("xen_guest.info", "nosuchguest")


def test_export_and_save_never_write_over_data(caller, conn, guest, tmp_path):
    """export_config refuses a file holding data; save refuses a defined guest's disk even with
    overwrite=True; both leave the file as it was."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(CommandExecutionError, match="holds data and is not an xl config of labpv1"):
        caller.cmd("xen_guest.export_config", guest, path=str(notes))
    assert notes.read_text() == "my notes\n"
    disk = tmp_path / "labsafe.img"
    disk.write_bytes(b"\x01" * 4096)
    remove_guest(conn, "labsafe")
    try:
        caller.cmd("xen_guest.define", "labsafe", memory=64, disks=[str(disk)], nics=[])
        ensure_running(conn, guest)
        with pytest.raises(CommandExecutionError, match=f"{disk} is a disk of labsafe"):
            caller.cmd("xen_guest.save", guest, path=str(disk), overwrite=True)
        assert disk.read_bytes() == b"\x01" * 4096
        assert xl_state(guest) is not None  # still running
    finally:
        remove_guest(conn, "labsafe")


def test_bad_arguments_are_plain_errors(caller, guest):
    with pytest.raises(CommandExecutionError, match="timeout: expected a whole number of at least 1, got 'x'"):
        caller.cmd("xen_guest.shutdown", guest, timeout="x")
