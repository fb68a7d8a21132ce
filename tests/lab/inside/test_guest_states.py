"""Guest states from pillar on real Xen (xen:///system): the formula salt/xen/guests.sls.

One PV guest ``labst1`` described in pillar ``xen:guests``: test=True predicts,
the first apply defines and boots it, the second changes nothing, a memory change
within maxmem is made live (same domain, no restart), a disk and a NIC added to the
pillar are plugged into the running guest, and a change that needs a restart (more
vcpus than the running domain's maximum) is reported on every run until
``restart_on_change`` restarts the guest. Then a hand-written ``/etc/xen/NAME``-style
config is imported. Then what the state says is checked against what Xen runs: a live vCPU
change names the vCPUs the guest has not brought online (``xl vcpu-list``), a state given only
``memory`` keeps the rest, a missing bridge and a formula key like ``remove_disks: "no"`` are
refused naming their key path before anything is touched, and a forced stop of a paused guest
is reported as destroyed.
"""

import pytest
from labhelpers import GUEST_INITRD, GUEST_KERNEL, remove_guest, sh, state, wait_console, xl

NAME = "labst1"
HOST_ONLY = "xenbr-st"
ROOT_IMAGE = "/var/lib/xen/images/labst1-root.img"


def pillar(memory=128, **more):
    """labst1 with a root image (made sparse by the state): a PV guest booted with an image
    file has Xen's qdisk backend running, which later image files are plugged into live."""
    more = dict(more)
    disks = [{"source": ROOT_IMAGE, "target": "xvda", "size": "32M"}] + more.pop("disks", [])
    guest = {
        "type": "pv",
        "memory": memory,
        "maxmem": 192,
        "vcpus": 1,
        "kernel": GUEST_KERNEL,
        "ramdisk": GUEST_INITRD,
        "cmdline": "console=hvc0 quiet",
        "on_poweroff": "destroy",
        "on_reboot": "restart",
        "on_crash": "destroy",
        "disks": disks,
    }
    guest.update(more)
    return {"xen": {"guests": {NAME: guest}}}


def comments(ret):
    return " ".join(r["comment"] for r in ret.values())


def apply(caller, **kwargs):
    ret = caller.cmd("state.apply", "xen.guests", **kwargs)
    assert isinstance(ret, dict), ret  # a list means the SLS did not render
    return ret


def changes_of(ret):
    return {sid: r["changes"] for sid, r in ret.items() if r["changes"]}


def failed(ret):
    return {sid: r["comment"] for sid, r in ret.items() if r["result"] is False}


@pytest.fixture(scope="module")
def cleanup(conn):
    remove_guest(conn, NAME)
    sh("mkdir -p /var/lib/xen/images")
    yield
    remove_guest(conn, NAME)
    remove_guest(conn, "labimp")
    sh(f"ip link del {HOST_ONLY}", check=False)
    sh(f"rm -f {ROOT_IMAGE}", check=False)


@pytest.fixture(scope="module")
def extra_devices(tmp_path_factory):
    """A data disk and a NIC on a host-only bridge (made here, not by the code under test)."""
    sh(f"ip link add {HOST_ONLY} type bridge && ip link set {HOST_ONLY} up")
    data = tmp_path_factory.mktemp("st") / "labst1-data.img"
    return {
        "disks": [{"source": str(data), "target": "xvdb", "size": "64M"}],
        "nics": [{"bridge": HOST_ONLY, "mac": "00:16:3e:5b:00:01"}],
    }


def test_test_mode_predicts_the_new_guest(caller, cleanup):
    """test=True says the guest would be defined and started, and touches nothing."""
    ret = apply(caller, pillar=pillar(), test=True)
    assert not failed(ret), ret
    ((_sid, result),) = ret.items()
    assert result["result"] is None, result
    assert "would be" in result["comment"], result["comment"]
    assert NAME not in caller.cmd("xen_guest.list")


def test_first_apply_defines_and_boots_the_guest(caller, cleanup):
    """the formula defines labst1 from pillar and boots it; its initrd reaches the console."""
    ret = apply(caller, pillar=pillar())
    assert not failed(ret), ret
    assert changes_of(ret), ret
    info = caller.cmd("xen_guest.info", NAME)
    assert info["state"] == "running"
    assert (info["memory"], info["maxmem"], info["vcpus"]) == (128, 192, 1)
    wait_console(NAME)


def test_second_apply_changes_nothing(caller, cleanup):
    """applying the same pillar again: zero changes, test=True predicts zero too."""
    assert changes_of(apply(caller, pillar=pillar(), test=True)) == {}
    ret = apply(caller, pillar=pillar())
    assert not failed(ret), ret
    assert changes_of(ret) == {}, ret


def test_memory_change_within_maxmem_is_live(caller, cleanup):
    """memory 128 -> 160 MiB (maxmem 192) is set on the running domain, no restart."""
    before = caller.cmd("xen_guest.info", NAME)["id"]
    ret = apply(caller, pillar=pillar(memory=160))
    assert not failed(ret), ret
    assert changes_of(ret), ret
    info = caller.cmd("xen_guest.info", NAME)
    assert info["id"] == before, "the guest was restarted"
    assert info["state"] == "running"
    assert info["memory"] == 160, info
    assert changes_of(apply(caller, pillar=pillar(memory=160))) == {}


def test_disk_and_nic_added_in_pillar_are_plugged_in_live(caller, cleanup, extra_devices):
    """a disk (created sparse) and a NIC added to the pillar reach the running guest
    without a restart: Xen's backends list them; the next apply changes nothing."""
    before = caller.cmd("xen_guest.info", NAME)["id"]
    ret = apply(caller, pillar=pillar(memory=160, **extra_devices))
    assert not failed(ret), ret
    assert changes_of(ret), ret
    assert caller.cmd("xen_guest.info", NAME)["id"] == before, "the guest was restarted"
    assert "51728" in xl("block-list", NAME), xl("block-list", NAME)  # xvdb = 202:16 = 51728
    assert len(xl("network-list", NAME).strip().splitlines()) == 2, xl("network-list", NAME)
    assert changes_of(apply(caller, pillar=pillar(memory=160, **extra_devices))) == {}


def test_change_needing_a_restart_is_reported_until_the_restart(caller, cleanup, extra_devices):
    """vcpus 1 -> 2 cannot reach the running domain (its maximum is 1): the definition
    changes, the state says a restart is pending, and says it again on the next run
    (with no changes); restart_on_change then restarts the guest with 2 vcpus."""
    wanted = pillar(memory=160, vcpus=2, **extra_devices)
    before = caller.cmd("xen_guest.info", NAME)["id"]
    ret = apply(caller, pillar=wanted)
    assert not failed(ret), ret
    assert changes_of(ret), ret
    assert "restart" in comments(ret), ret
    assert caller.cmd("xen_guest.info", NAME)["id"] == before
    again = apply(caller, pillar=wanted)
    assert not failed(again) and changes_of(again) == {}, again
    assert "restart" in comments(again), again
    wanted["xen"]["guests"][NAME]["restart_on_change"] = True
    ret = apply(caller, pillar=wanted)
    assert not failed(ret), ret
    info = caller.cmd("xen_guest.info", NAME)
    assert info["id"] != before and info["vcpus"] == 2, info
    final = apply(caller, pillar=wanted)
    assert changes_of(final) == {} and "pending" not in comments(final), final


def test_import_a_hand_written_xen_config(caller, cleanup, tmp_path):
    """xen_guest.import_config adopts an xm-era /etc/xen/NAME file (tap:aio disk, vif, comments)."""
    image = tmp_path / "labimp.img"
    with open(image, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    cfg = tmp_path / "labimp"
    cfg.write_text(
        f"""# written by hand, xm style
name = "labimp"
memory = 128
maxmem = 128
vcpus = 1
kernel = "{GUEST_KERNEL}"
ramdisk = "{GUEST_INITRD}"
extra = "console=hvc0 quiet"
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "destroy"
disk = [ 'tap:aio:{image},xvda,w' ]
# disk = [ 'phy:/dev/vg0/old,xvdb,w' ]
vif = [ 'mac=00:16:3e:5a:11:01,bridge=xenbr0' ]
"""
    )
    changes = caller.cmd("xen_guest.import_config", str(cfg))
    assert changes, changes
    info = caller.cmd("xen_guest.info", "labimp")
    assert info["state"] == "shutoff"
    assert info["disks"][0]["source"] == str(image)
    assert info["disks"][0]["target"] == "xvda"
    assert info["nics"][0]["mac"] == "00:16:3e:5a:11:01"
    assert info["nics"][0]["bridge"] == "xenbr0"
    assert caller.cmd("xen_guest.import_config", str(cfg)) == {}  # second import: nothing to change


def _online(name):
    """vCPUs ``xl vcpu-list`` shows online (state column without ``p``)."""
    rows = [line.split() for line in xl("vcpu-list", name).splitlines()[1:] if line.strip()]
    return sum(1 for row in rows if len(row) > 4 and not row[4].endswith("p"))


def test_a_live_vcpu_raise_says_what_the_guest_runs(caller, cleanup, extra_devices):
    """vcpus 1 -> 2 within maxvcpus 2 on the running PV guest: the result matches xl vcpu-list --
    done when the guest brought vCPU 1 online, else pending, naming it (never reported as done
    while xl shows it ``--p``)."""
    down = apply(caller, pillar=pillar(memory=160, vcpus=1, maxvcpus=2, **extra_devices))
    assert not failed(down), down
    before = caller.cmd("xen_guest.info", NAME)["id"]
    ret = apply(caller, pillar=pillar(memory=160, vcpus=2, maxvcpus=2, **extra_devices))
    assert not failed(ret), ret
    (change,) = [r["changes"]["vcpus"] for r in ret.values() if "vcpus" in r["changes"]]
    assert caller.cmd("xen_guest.info", NAME)["id"] == before, "the guest was restarted"
    online = _online(NAME)
    if online < 2:
        assert change.get("pending") == f"the guest has not brought vCPU 1 online (it runs {online} of 2)", change
        assert "is pending" in comments(ret), ret
    else:
        assert "pending" not in change, change


def test_a_state_given_only_memory_keeps_the_rest(caller, cleanup, extra_devices):
    """state.single xen_guest.running labst1 memory=144: memory changes live, disks and NICs stay."""
    before = caller.cmd("xen_guest.spec", NAME)
    ret = state(caller, "xen_guest.running", NAME, memory=144)
    assert ret["result"] is True and set(ret["changes"]) == {"memory"}, ret
    after = caller.cmd("xen_guest.spec", NAME)
    assert (after["disks"], after["nics"], after["vcpus"]) == (before["disks"], before["nics"], before["vcpus"])
    assert len(xl("network-list", NAME).strip().splitlines()) == 2  # header + the NIC, still plugged


@pytest.mark.parametrize("test", [True, False])
def test_a_nic_on_a_missing_bridge_is_refused_naming_its_key(caller, cleanup, test):
    ret = state(caller, "xen_guest.running", NAME, nics=[{"bridge": "xenbr9"}], test=test)
    assert ret["result"] is False and ret["changes"] == {}, ret
    assert "xen:guests:labst1:nics:0:bridge: no bridge 'xenbr9' on this host" in ret["comment"]
    assert len(xl("network-list", NAME).strip().splitlines()) == 2


def test_remove_disks_no_is_refused_and_deletes_nothing(caller, cleanup):
    wanted = pillar(memory=144)
    wanted["xen"]["guests"][NAME].update(ensure="absent", remove_disks="no")
    ret = apply(caller, pillar=wanted)
    assert "xen:guests:labst1:remove_disks: expected true or false, got 'no'" in " ".join(failed(ret).values()), ret
    assert NAME in caller.cmd("xen_guest.list")
    assert sh(f"test -f {ROOT_IMAGE}", check=False).returncode == 0


def test_a_forced_stop_of_a_paused_guest_is_reported_as_destroyed(caller, cleanup):
    caller.cmd("xen_guest.pause", NAME)
    ret = state(caller, "xen_guest.stopped", NAME, force=True, timeout=30)
    assert ret["result"] is True, ret
    assert ret["changes"]["state"]["via"] == "destroyed: a paused guest cannot shut down by itself", ret
    assert "labst1 was destroyed" in ret["comment"], ret
    assert caller.cmd("xen_guest.info", NAME)["state"] == "shutoff"
