"""Both ways Salt users install the extension work with a real master and minion."""

import os

from tests.conftest import ROOT


def test_master_file_roots_route_after_sync_all(salt_cli, sync_minion, synced):
    for kind in ("modules", "states"):
        shipped = {f"{kind}.{path.stem}" for path in (ROOT / f"_{kind}").glob("*.py")}
        assert shipped <= set(synced[kind]), f"every _{kind} file reaches the minion"

    listed = salt_cli.run("xen_guest.list", minion_tgt=sync_minion.id)
    assert listed.returncode == 0, listed
    # the seeded guests; other tests of the session may have added their own
    assert {"vm02", "vm03"} <= set(listed.data)


def test_consecutive_jobs_see_each_others_work(salt_cli, sync_minion, synced):
    paused = salt_cli.run("xen_guest.pause", "vm02", minion_tgt=sync_minion.id)
    assert paused.data == {"vm02": {"old": "running", "new": "paused"}}
    assert salt_cli.run("xen_guest.list", "state=paused", minion_tgt=sync_minion.id).data == ["vm02"]
    resumed = salt_cli.run("xen_guest.resume", "vm02", minion_tgt=sync_minion.id)
    assert resumed.data == {"vm02": {"old": "paused", "new": "running"}}


def test_unknown_guest_is_a_clear_error_not_a_traceback(salt_cli, sync_minion, synced):
    ret = salt_cli.run("xen_guest.info", "vm9", minion_tgt=sync_minion.id)
    assert ret.returncode != 0
    text = str(ret.data) + ret.stdout
    assert "no guest named 'vm9'" in text
    assert "Traceback" not in text


def test_pip_installed_entry_points_without_sync(salt_cli, pip_minion):
    listed = salt_cli.run("xen_guest.list", minion_tgt=pip_minion.id)
    assert listed.returncode == 0, listed
    assert listed.data == ["vm02", "vm03"]
    funcs = salt_cli.run("sys.list_functions", "xen_guest", minion_tgt=pip_minion.id).data
    assert "xen_guest.shutdown" in funcs and "xen_guest.list" in funcs


def test_pip_installed_salt_call_local(pip_minion, wheel_dir):
    cli = pip_minion.salt_call_cli(timeout=120)
    cli.environ = dict(os.environ, PYTHONPATH=str(wheel_dir))
    ret = cli.run("--local", "xen_guest.list", "state=running")
    assert ret.returncode == 0, ret
    assert ret.data == ["vm02"]


def test_both_routes_give_the_xen_grain(salt_cli, sync_minion, synced, pip_minion):
    assert "grains.xen" in synced["grains"], "saltutil.sync_all brings _grains/xen.py"
    for minion in (sync_minion, pip_minion):
        grain = salt_cli.run("grains.get", "xen", minion_tgt=minion.id)
        assert grain.returncode == 0, grain
        # this test host is no dom0; the lab checks the grain on real Xen
        assert grain.data["dom0"] is False and "reboot_required" in grain.data, (minion.id, grain.data)
