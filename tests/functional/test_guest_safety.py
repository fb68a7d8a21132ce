"""Guests refuse wrong input with its key path, and lose nothing: what an operator sees.

libvirt's test driver host (tests/data/node.xml): vm02 running and vm03 shut off, both on
xenbr0, 8 GiB of memory and 4 CPUs, the libvirt network ``default`` on virbr0.
"""

import libvirt
import pytest
from salt.exceptions import CommandExecutionError

from saltext_xen.core import connection
from saltext_xen.guests import guest_apply


def _run(states, fn, name, **kwargs):
    return dict(getattr(states.xen_guest, fn)(name, **kwargs).full_return)


def _spec(conn, name):
    return guest_apply.current_spec(conn, name)


@pytest.fixture
def conn(test_uri):
    return connection.connect(test_uri)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "vm03.img"
    path.write_bytes(b"\x01" * 4096)
    return path


# ---- 1. formula keys are strict


@pytest.mark.parametrize("test", [False, True])
def test_remove_disks_no_is_refused_naming_its_key_and_deletes_nothing(states, conn, test):
    ret = _run(states, "absent", "vm03", remove_disks="no", pillar_path="xen:guests", test=test)
    assert ret["result"] is False and ret["changes"] == {}
    assert "xen:guests:vm03:remove_disks: expected true or false, got 'no'" in ret["comment"]
    assert conn.lookupByName("vm03")  # still defined


@pytest.mark.parametrize("test", [False, True])
def test_restart_on_change_sometimes_restarts_nothing(states, conn, test):
    before = conn.lookupByName("vm02").ID()
    ret = _run(states, "running", "vm02", on_crash="destroy", restart_on_change="sometimes", test=test)
    assert ret["result"] is False and ret["changes"] == {}
    assert "xen:guests:vm02:restart_on_change: expected true or false, got 'sometimes'" in ret["comment"]
    assert conn.lookupByName("vm02").ID() == before
    assert _spec(conn, "vm02")["on_crash"] != "destroy"


@pytest.mark.parametrize(
    ("fn", "kwargs", "message"),
    [
        ("stopped", {"timeout": "x"}, "xen:guests:vm02:timeout: expected a whole number of at least 1, got 'x'"),
        ("stopped", {"timeout": 0}, "xen:guests:vm02:timeout: expected a whole number of at least 1, got 0"),
        ("stopped", {"force": "yes"}, "xen:guests:vm02:force: expected true or false, got 'yes'"),
        ("defined", {"memory": "abc"}, "xen:guests:vm02:memory: expected MiB as an integer, got 'abc'"),
    ],
)
def test_bad_state_arguments_are_plain_errors(states, conn, fn, kwargs, message):
    ret = _run(states, fn, "vm02", **kwargs)
    assert ret["result"] is False and ret["changes"] == {}
    assert message in ret["comment"]
    assert conn.lookupByName("vm02").isActive()


def test_a_formula_key_from_another_pillar_path_is_named_by_it(states):
    ret = _run(states, "stopped", "vm02", force="on", pillar_path="site:xen:guests")
    assert "site:xen:guests:vm02:force: expected true or false, got 'on'" in ret["comment"]


# ---- 2. the one vocabulary


def test_a_relative_image_path_is_refused_and_not_made(states, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ret = _run(states, "defined", "vm30", disks=[{"source": "vm30.img", "size": "1G"}])
    assert ret["result"] is False
    assert "xen:guests:vm30:disks:0:source: expected the absolute path" in ret["comment"]
    assert not (tmp_path / "vm30.img").exists()


def test_2tb_means_decimal_terabytes_as_under_xen_disks(states, tmp_path, conn):
    path = tmp_path / "vm31.img"
    ret = _run(states, "defined", "vm31", disks=[{"source": str(path), "size": "2TB"}])
    assert ret["result"] is True, ret["comment"]
    assert path.stat().st_size == 2 * 1000**4
    assert "1953125000KiB" in ret["changes"]["disks:xvda:image"]["new"]
    again = _run(states, "defined", "vm31", disks=[{"source": str(path), "size": "2TB"}])
    assert again["changes"] == {}, again


def test_memory_2gb_is_refused_with_the_reason(states):
    ret = _run(states, "defined", "vm32", memory="2GB")
    assert "xen:guests:vm32:memory: expected a whole number of MiB, got '2GB'" in ret["comment"]


# ---- 3. partial specs


@pytest.mark.parametrize("test", [False, True])
def test_memory_alone_changes_memory_and_keeps_the_rest(states, conn, test):
    before = _spec(conn, "vm02")
    ret = _run(states, "running", "vm02", memory=256, test=test)
    assert ret["result"] is (None if test else True), ret["comment"]
    assert set(ret["changes"]) == {"memory"}, ret["changes"]
    after = _spec(conn, "vm02")
    for key in ("disks", "nics", "graphics", "vcpus", "maxmem", "boot", "on_crash"):
        assert after[key] == before[key], key
    assert after["memory"] == (before["memory"] if test else 256)


def test_removing_every_disk_is_said_explicitly(states, conn):
    ret = _run(states, "defined", "vm03", disks=[])
    assert ret["result"] is True, ret["comment"]
    assert _spec(conn, "vm03")["disks"] == []


# ---- 4. host-level conflicts, before anything is touched


@pytest.mark.parametrize("test", [False, True])
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"nics": [{"bridge": "xenbr9"}]}, "xen:guests:vm40:nics:0:bridge: no bridge 'xenbr9' on this host"),
        ({"nics": [{"network": "nowhere"}]}, "xen:guests:vm40:nics:0:network: no libvirt network 'nowhere'"),
        (
            {"nics": [{"mac": "00:16:3e:02:00:01"}]},
            "xen:guests:vm40:nics:0:mac: 00:16:3e:02:00:01 is already a NIC of guest vm02 on this host",
        ),
        ({"memory": "16G"}, "xen:guests:vm40:memory: 16384 MiB is more than this host has (8192 MiB)"),
        ({"vcpus": 5}, "xen:guests:vm40:vcpus: 5 is more than this host has (4)"),
        (
            {"disks": ["/var/lib/xen/images/vm03.img"]},
            "xen:guests:vm40:disks:0:source: /var/lib/xen/images/vm03.img is a disk of vm03",
        ),
    ],
)
def test_a_conflict_with_the_host_is_refused_naming_its_key(states, conn, given, message, test):
    ret = _run(states, "running", "vm40", test=test, **given)
    assert ret["result"] is False and ret["changes"] == {}
    assert message in ret["comment"], ret["comment"]
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName("vm40")


def test_a_guest_already_on_a_gone_bridge_is_not_refused_for_it(states, conn):
    """Only what the state changes is checked against the host."""
    assert _run(states, "running", "vm02", memory=256)["result"] is True


def test_bridges_of_libvirt_networks_and_guests_count(states, conn):
    ok = _run(states, "defined", "vm41", nics=[{"bridge": "virbr0"}, {"bridge": "xenbr0"}, {"network": "default"}])
    assert ok["result"] is True, ok["comment"]


def test_the_host_is_read_once_per_state_run(modules, conn, calls_counter):
    pillar = {"xen": {"guests": {f"vm5{i}": {"ensure": "defined", "memory": 128} for i in range(4)}}}
    ret = modules.state.sls("xen.guests", pillar=pillar)
    assert all(r["result"] for r in ret.raw.values()), ret.raw
    assert calls_counter["getInfo"] == 1, calls_counter


@pytest.fixture
def calls_counter(monkeypatch):
    counted = {"getInfo": 0}
    real = libvirt.virConnect.getInfo

    def get_info(self):
        counted["getInfo"] += 1
        return real(self)

    monkeypatch.setattr(libvirt.virConnect, "getInfo", get_info)
    return counted


# ---- 5. nothing written over


def test_export_config_refuses_a_file_holding_data(modules, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("my notes\n")
    with pytest.raises(CommandExecutionError, match="holds data and is not an xl config of vm02"):
        modules.xen_guest.export_config("vm02", path=str(target))
    assert target.read_text() == "my notes\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "notes.txt"]  # no temporary left


def test_export_config_refuses_another_guests_config_and_replaces_its_own(modules, tmp_path):
    mine, theirs = tmp_path / "vm02.cfg", tmp_path / "vm03.cfg"
    modules.xen_guest.export_config("vm03", path=str(theirs))
    before = theirs.read_text()
    with pytest.raises(CommandExecutionError, match="not an xl config of vm02"):
        modules.xen_guest.export_config("vm02", path=str(theirs))
    assert theirs.read_text() == before
    mine.write_text('name = "vm02"\nmemory = 1\n')
    assert modules.xen_guest.export_config("vm02", path=str(mine))["changed"] is True
    assert modules.xen_guest.export_config("vm02", path=str(mine))["changed"] is False


def test_export_config_never_writes_over_a_guests_disk(modules, tmp_path, states):
    disk = tmp_path / "vm44.img"
    disk.write_bytes(b"")  # empty: only being in use protects it
    assert _run(states, "defined", "vm44", disks=[str(disk)])["result"] is True
    with pytest.raises(CommandExecutionError, match=f"{disk} is a disk of vm44"):
        modules.xen_guest.export_config("vm02", path=str(disk))
    assert disk.read_bytes() == b""


def test_save_over_another_guests_disk_is_refused_even_with_overwrite(modules, states, tmp_path, conn):
    disk = tmp_path / "vm45.img"
    disk.write_bytes(b"\x01" * 4096)
    assert _run(states, "defined", "vm45", disks=[str(disk)])["result"] is True
    with pytest.raises(CommandExecutionError, match=f"{disk} is a disk of vm45"):
        modules.xen_guest.save("vm02", path=str(disk), overwrite=True)
    assert disk.read_bytes() == b"\x01" * 4096
    assert conn.lookupByName("vm02").isActive()


def test_clone_onto_a_file_holding_data_is_refused(modules, tmp_path, conn):
    dest = tmp_path / "copy.img"
    dest.write_bytes(b"\x01" * 4096)
    source = tmp_path / "vm46.img"
    source.write_bytes(b"\x00" * 4096)
    modules.xen_guest.define("vm46", disks=[str(source)], nics=[])
    with pytest.raises(CommandExecutionError, match="already exists; it is not overwritten"):
        modules.xen_guest.clone("vm46", "copy46", disks={"xvda": str(dest)})
    assert dest.read_bytes() == b"\x01" * 4096


# ---- 7. plain errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m.xen_guest.shutdown("vm02", timeout="x"),
            "timeout: expected a whole number of at least 1, got 'x'",
        ),
        (lambda m: m.xen_guest.define("vm02", memory="abc"), "xen:guests:vm02:memory: expected MiB as an integer"),
        (lambda m: m.xen_guest.save("vm02", overwrite="yes"), "overwrite: expected true or false, got 'yes'"),
        (lambda m: m.xen_guest.log("vm02", lines="many"), "lines: expected a whole number of at least 1"),
        (lambda m: m.xen_guest.top(interval="soon"), "interval: expected a number of seconds above 0"),
    ],
)
def test_bad_arguments_are_plain_errors_not_tracebacks(modules, conn, call, message):
    with pytest.raises(CommandExecutionError, match=message):
        call(modules)
    assert conn.lookupByName("vm02").isActive()


def test_importing_a_garbage_file_names_the_file(modules, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CommandExecutionError, match=f"{junk} cannot be imported"):
        modules.xen_guest.import_config(str(junk))


def test_export_config_into_a_missing_directory_names_it(modules, tmp_path):
    with pytest.raises(CommandExecutionError, match=f"directory {tmp_path / 'nowhere'} does not exist"):
        modules.xen_guest.export_config("vm02", path=str(tmp_path / "nowhere" / "vm02.cfg"))


def test_define_with_some_keys_keeps_the_others(modules, conn):
    before = _spec(conn, "vm03")
    assert set(modules.xen_guest.define("vm03", memory=256)) == {"memory"}
    after = _spec(conn, "vm03")
    assert (after["disks"], after["nics"], after["vcpus"]) == (before["disks"], before["nics"], before["vcpus"])
    assert (after["memory"], after["maxmem"]) == (256, before["maxmem"])


def test_vcpus_above_maxvcpus_raise_it_when_maxvcpus_was_not_given(modules, conn):
    assert set(modules.xen_guest.define("vm03", vcpus=2)) == {"vcpus", "maxvcpus"}


# ---- 6. what the state says is what happened


def test_a_forced_stop_is_reported_as_destroyed(states, conn, monkeypatch):
    """The test driver's guests never shut down by themselves in time: force destroys vm02."""
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda self: 0)  # a guest that ignores the request
    ret = _run(states, "stopped", "vm02", timeout=1, force=True)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["state"]["via"] == "destroyed: it did not shut down within 1 s"
    assert "vm02 was destroyed: it did not shut down within 1 s (was running)" in ret["comment"]
    assert not conn.lookupByName("vm02").isActive()


def test_a_vcpu_the_guest_has_not_brought_online_is_pending_not_done(states, conn, monkeypatch):
    assert _run(states, "defined", "vm03", vcpus=1, maxvcpus=2)["result"] is True
    conn.lookupByName("vm03").create()
    # a PV guest whose kernel does not bring a hot-added vCPU online: libvirt lists it offline
    monkeypatch.setattr(
        libvirt.virDomain,
        "vcpus",
        lambda self: ([(0, libvirt.VIR_VCPU_RUNNING, 0, 0), (1, libvirt.VIR_VCPU_OFFLINE, 0, -1)], []),
    )
    ret = _run(states, "running", "vm03", vcpus=2)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["vcpus"]["pending"] == "the guest has not brought vCPU 1 online (it runs 1 of 2)"
    assert "vcpus 2 is pending: the guest has not brought vCPU 1 online" in ret["comment"]


def test_vcpu_list_of_xl_is_read_for_online_vcpus():
    from saltext_xen.guests import lifecycle

    text = (
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n"
        "labst1                               3     0    1   -b-       1.2  all / all\n"
        "labst1                               3     1    -   --p       0.0  all / all\n"
    )
    assert lifecycle.parse_vcpu_list(text) == 1


def test_cloned_takes_true_or_false_only(states, conn, tmp_path):
    ret = _run(states, "cloned", "copy03", source="vm03", force="yes", disks={"xvda": str(tmp_path / "c.img")})
    assert ret["result"] is False and ret["changes"] == {}
    assert "xen:clones:copy03:force: expected true or false, got 'yes'" in ret["comment"]
    assert not (tmp_path / "c.img").exists()


def test_keys_other_parts_read_are_no_unknown_keys_to_the_guest_states(modules, conn):
    """``group`` (the fleet runner's anti-affinity) and ``on_host_shutdown`` (xen.host) sit beside the spec."""
    guest = {"ensure": "defined", "memory": 128, "group": "web", "on_host_shutdown": "shutdown"}
    ret = modules.state.sls("xen.guests", pillar={"xen": {"guests": {"vm61": guest}}})
    assert all(r["result"] for r in ret.raw.values()), ret.raw
    assert _spec(conn, "vm61")["memory"] == 128


@pytest.mark.parametrize("test", [True, False])
def test_absent_destroys_a_paused_guest_only_with_force(states, modules, conn, test):
    modules.xen_guest.pause("vm02")
    refused = _run(states, "absent", "vm02", test=test)
    assert refused["result"] is False and "paused and cannot shut down by itself" in refused["comment"]
    assert conn.lookupByName("vm02").isActive(), "nothing was destroyed"
    forced = _run(states, "absent", "vm02", force=True, test=test)
    assert forced["result"] is (None if test else True)
    assert forced["changes"]["state"] == {"old": "paused", "new": "shutoff"}
    assert "destroyed first" in forced["comment"]


@pytest.mark.parametrize("test", [True, False])
def test_a_guest_name_with_a_colon_is_named_as_a_bad_name(states, test):
    ret = _run(states, "running", "vm:02", memory=128, test=test)
    assert ret["result"] is False and "xen:guests:vm:02: not a guest name" in ret["comment"], ret["comment"]
