"""The fleet runner end to end: a master and three Xen hosts on libvirt's test driver.

Each host (minion) has a test-driver host file of its own, made from
``tests/data/node.xml`` with other guests (names, UUIDs, MACs, memory):

- ``fleet-a``: a1 (1 GiB, xenbr0, group web) and a2 (2 GiB, on xenbr1), both running;
- ``fleet-b``: b1 (1 GiB, group web) running, with a1's MAC on purpose; b2 shut off,
  its disk image missing;
- ``fleet-c``: c1 (512 MiB) running; no xenbr1 there.

Bridges are offered as libvirt networks in bridge mode (``lan`` on xenbr0,
``dmz`` on xenbr1), and every host has the pool ``shared`` over one directory,
as shared storage would look. Hosts have 8 GiB each. The master's pillar names
each host's guests (with their anti-affinity group) under ``xen:guests`` and has
every host publish its guests through the Salt mine (``xen_host.guests``).
"""

import copy
import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import NODE_XML, ROOT
from tests.integration.conftest import MINION_DEFAULTS

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
ET.register_namespace("test", TEST_NS)

HOSTS = {
    "fleet-a": {
        "guests": [
            ("a1", 1024, "xenbr0", "00:16:3e:0a:00:01", True),
            ("a2", 2048, "xenbr1", "00:16:3e:0a:00:02", True),
        ],
        "networks": {"lan": "xenbr0", "dmz": "xenbr1"},
    },
    "fleet-b": {
        "guests": [
            ("b1", 1024, "xenbr0", "00:16:3e:0a:00:01", True),
            ("b2", 512, "xenbr0", "00:16:3e:0b:00:02", False),
        ],
        "networks": {"lan": "xenbr0", "dmz": "xenbr1"},
    },
    "fleet-c": {
        "guests": [("c1", 512, "xenbr0", "00:16:3e:0c:00:01", True)],
        "networks": {"lan": "xenbr0"},
    },
}
GROUPS = {"a1": "web", "b1": "web"}
PLAN_ONLY = "plan only: nothing was moved (salt-run xen.migrate moves one guest)"
MISSING_DISK = "b2"


def _node_xml(host, images, serial):
    """node.xml with this host's guests, networks and the shared pool."""
    root = ET.parse(NODE_XML).getroot()
    template = root.find("domain")
    for el in root.findall("domain") + root.findall("network"):
        root.remove(el)
    spec = HOSTS[host]
    for index, (name, memory, bridge, mac, running) in enumerate(spec["guests"]):
        dom = copy.deepcopy(template)
        dom.find("name").text = name
        dom.find("uuid").text = f"5c9d6d60-6f2b-4a39-9a47-{serial:04d}{index:08d}"
        for tag in ("memory", "currentMemory"):
            dom.find(tag).text = str(memory)
        dom.find("devices/disk/source").set("file", str(images / f"{name}.img"))
        nic = dom.find("devices/interface")
        nic.find("mac").set("address", mac)
        nic.find("source").set("bridge", bridge)
        devices = dom.find("devices")
        for graphics in devices.findall("graphics"):
            devices.remove(graphics)
        if not running:
            state = ET.Element(f"{{{TEST_NS}}}runstate")
            state.text = "5"
            dom.insert(1, state)
        root.insert(len(root.findall("cpu")) + 1 + index, dom)
    for index, (net, bridge) in enumerate(sorted(spec["networks"].items())):
        network = ET.SubElement(root, "network")
        ET.SubElement(network, "name").text = net
        ET.SubElement(network, "uuid").text = f"dd8fe884-6c02-601e-7551-{serial:04d}{index:08d}"
        ET.SubElement(network, "forward", mode="bridge")
        ET.SubElement(network, "bridge", name=bridge)
    pool = root.find("pool")
    pool.find("name").text = "shared"
    pool.find("target/path").text = str(images)
    return ET.tostring(root, encoding="unicode")


def _pillar(host):
    guests = {}
    for name, memory, bridge, _mac, _running in HOSTS[host]["guests"]:
        guests[name] = {"memory": memory, "nics": [{"bridge": bridge}]}
        if name in GROUPS:
            guests[name]["group"] = GROUPS[name]
    return {"xen": {"guests": guests}, "mine_functions": {"xen_host.guests": []}}


@pytest.fixture(scope="module")
def fleet_master(salt_factories, tmp_path_factory, extension_root):
    pillar_dir = tmp_path_factory.mktemp("fleet-pillar")
    top = "base:\n" + "".join(f"  '{host}':\n    - {host.replace('-', '_')}\n" for host in HOSTS)
    (pillar_dir / "top.sls").write_text(top)
    for host in HOSTS:
        (pillar_dir / f"{host.replace('-', '_')}.sls").write_text(json.dumps(_pillar(host)))
    master = salt_factories.salt_master_daemon(
        "xen-fleet-master",
        defaults={
            "file_roots": {"base": [str(extension_root), str(ROOT / "salt")]},
            "pillar_roots": {"base": [str(pillar_dir)]},
        },
    )
    with master.started():
        yield master


@pytest.fixture(scope="module")
def fleet_hosts(fleet_master, tmp_path_factory):
    """The three hosts, started and synced, and the master's runners and library synced."""
    images = tmp_path_factory.mktemp("shared-images")
    for host in HOSTS.values():
        for name, *_ in host["guests"]:
            if name != MISSING_DISK:
                (images / f"{name}.img").write_bytes(b"")
    nodes = tmp_path_factory.mktemp("fleet-nodes")
    minions = []
    for serial, host in enumerate(HOSTS, start=1):
        node = nodes / f"{host}.xml"
        node.write_text(_node_xml(host, images, serial))
        defaults = copy.deepcopy(MINION_DEFAULTS)
        defaults["xen"] = {"libvirt": {"uri": f"test://{node}"}}
        minions.append(fleet_master.salt_minion_daemon(host, defaults=defaults))
    for minion in minions:
        minion.start()
    try:
        cli = fleet_master.salt_cli(timeout=300)
        ret = cli.run("saltutil.sync_all", minion_tgt="fleet-*")
        assert ret.returncode == 0, ret
        run = fleet_master.salt_run_cli(timeout=300)
        ret = run.run("saltutil.sync_all")
        assert ret.returncode == 0, ret
        yield run
    finally:
        for minion in minions:
            minion.terminate()


def _data(ret):
    assert ret.returncode == 0, ret
    return ret.data


def test_hosts_tells_each_hosts_capacity(fleet_hosts):
    hosts = _data(fleet_hosts.run("xen.hosts", "tgt=fleet-*"))
    assert sorted(hosts) == sorted(HOSTS)
    a = hosts["fleet-a"]
    assert (a["memory"]["total"], a["memory"]["used"], a["guests"], a["running"]) == (8192, 3072, 2, ["a1", "a2"])
    assert a["networks"] == ["dmz", "lan"]
    assert hosts["fleet-b"]["running"] == ["b1"] and hosts["fleet-c"]["networks"] == ["lan"]
    assert set(a["storage"]) == {"shared"}


def test_place_explains_the_choice_and_every_rejection(fleet_hosts):
    chosen = _data(fleet_hosts.run("xen.place", "web3", "memory=512", "bridges=xenbr0", "group=web", "tgt=fleet-*"))
    assert chosen["host"] == "fleet-c"
    assert chosen["rejected"] == {
        "fleet-a": "holds a1 of anti-affinity group web",
        "fleet-b": "holds b1 of anti-affinity group web",
    }
    chosen = _data(fleet_hosts.run("xen.place", "dmz2", "memory=512", "bridges=xenbr1", "tgt=fleet-*"))
    assert chosen["host"] == "fleet-b"
    assert chosen["rejected"] == {"fleet-c": "lacks bridge xenbr1"}
    # a guest of the pillar is placed with its pillar needs; it is on fleet-a already
    chosen = _data(fleet_hosts.run("xen.place", "a2", "tgt=fleet-*"))
    assert chosen["host"] == "fleet-b" and chosen["rejected"]["fleet-a"] == "already has a2"


def test_verify_reports_the_clash_made_on_purpose(fleet_hosts):
    found = _data(fleet_hosts.run("xen.verify", "tgt=fleet-*"))
    assert found["mac_clashes"] == ["MAC 00:16:3e:0a:00:01 is used by a1 on fleet-a, b1 on fleet-b"]
    assert any(line.startswith("b2 on fleet-b: missing disk") for line in found["missing"]), found
    assert "duplicates" not in found and "down" not in found and "n_plus_one" not in found


def test_evacuate_with_test_true_plans_every_move_and_moves_nothing(fleet_hosts):
    plan = _data(fleet_hosts.run("xen.evacuate", "fleet-a", "test=True", "tgt=fleet-*"))
    assert plan["feasible"] and plan["note"] == PLAN_ONLY
    moves = {m["guest"]: (m["to"], m["how"]) for m in plan["moves"]}
    assert moves == {"a2": ("fleet-b", "live migration"), "a1": ("fleet-c", "live migration")}


def test_a_flag_that_is_not_true_or_false_is_refused_and_nothing_moves(fleet_hosts):
    """A typo such as test=ture must not turn evacuate's plan into moves."""
    refused = _data(fleet_hosts.run("xen.evacuate", "fleet-a", "test=ture", "tgt=fleet-*"))
    assert refused == {"host": "fleet-a", "feasible": False, "refused": "test: expected true or false, got 'ture'"}
    refused = _data(fleet_hosts.run("xen.migrate", "a1", "fleet-b", "n_plus_one=maybe", "tgt=fleet-*"))
    assert refused == {"guest": "a1", "moved": False, "refused": "n_plus_one: expected true or false, got 'maybe'"}
    refused = _data(fleet_hosts.run("xen.balance", "max_moves=lots", "tgt=fleet-*"))
    assert refused["refused"] == "max_moves: expected a whole number of at least 0, got 'lots'"
    assert "a1" in _data(fleet_hosts.run("xen.guests", "tgt=fleet-a"))["fleet-a"]


def test_balance_plans_moves_that_even_memory_use(fleet_hosts):
    plan = _data(fleet_hosts.run("xen.balance", "tgt=fleet-*"))
    assert plan["note"] == PLAN_ONLY
    assert plan["moves"] and plan["moves"][0]["from"] == "fleet-a"
    assert max(plan["use_after"].values()) < 3072 / 8192


def test_failover_is_refused_without_confirmation_or_while_the_host_answers(fleet_hosts):
    refused = _data(fleet_hosts.run("xen.failover", "fleet-b", "tgt=fleet-*"))
    assert not refused["feasible"] and "confirm_down=True" in refused["refused"]
    assert "no split brain" in refused["refused"]
    refused = _data(fleet_hosts.run("xen.failover", "fleet-b", "confirm_down=True", "tgt=fleet-*"))
    assert refused["refused"] == "cannot fail over fleet-b: it answers, so it is not down (no split brain)"


def test_a_host_refuses_to_define_a_guest_the_mine_shows_on_another(fleet_master, fleet_hosts):
    cli = fleet_master.salt_cli(timeout=300)
    assert _data(cli.run("mine.update", minion_tgt="fleet-*"))
    mine = _data(cli.run("mine.get", "*", "xen_host.guests", minion_tgt="fleet-b"))
    assert mine["fleet-a"]["a1"]["state"] == "running"
    for test in (True, False):
        ret = cli.run("state.single", "xen_guest.defined", "a1", "memory=1024", f"test={test}", minion_tgt="fleet-b")
        (result,) = ret.data.values()
        assert result["result"] is False, result
        assert (
            "xen:guests:a1: a1 runs on fleet-a (mine): a second copy here would share its disks; "
            "move its pillar entry or run salt-run xen.verify"
        ) in result["comment"]
    assert "a1" not in _data(cli.run("xen_host.guests", minion_tgt="fleet-b"))
    # a guest no other host has is not held back
    ret = cli.run("state.single", "xen_guest.defined", "b9", "memory=256", "test=True", minion_tgt="fleet-b")
    (result,) = ret.data.values()
    assert result["result"] is None, result


def _refusal(cli, host, name):
    """The comment of a ``xen_guest.running`` of ``name`` on ``host`` that must fail."""
    (result,) = cli.run("state.single", "xen_guest.running", name, "memory=512", minion_tgt=host).data.values()
    assert result["result"] is False, result
    return result["comment"]


def test_a_shut_off_guest_moves_with_its_autostart_mark_and_its_old_host_refuses_a_copy(fleet_master, fleet_hosts):
    cli = fleet_master.salt_cli(timeout=300)
    _data(cli.run("xen_guest.destroy", "c1", minion_tgt="fleet-c"))
    _data(cli.run("xen_guest.autostart", "c1", minion_tgt="fleet-c"))
    plan = _data(fleet_hosts.run("xen.evacuate", "fleet-c", "test=True", "tgt=fleet-*"))
    assert [(m["guest"], m["to"], m["how"]) for m in plan["moves"]] == [
        ("c1", "fleet-b", "move the definition (shut off)")
    ]
    done = _data(fleet_hosts.run("xen.evacuate", "fleet-c", "tgt=fleet-*"))
    assert done == {"host": "fleet-c", "moved": ["c1: fleet-c -> fleet-b (definition moved)"], "failed": {}, "left": []}
    assert "c1" not in _data(cli.run("xen_host.guests", minion_tgt="fleet-c"))
    moved = _data(cli.run("xen_host.definition", "c1", minion_tgt="fleet-b"))
    assert (moved["state"], moved["autostart"]) == ("shutoff", True)
    # the runner updated the mine: the host c1 left will not define it again
    assert "c1 is defined on fleet-b (shutoff) (mine): a second copy here" in _refusal(cli, "fleet-c", "c1")

    checked = _data(fleet_hosts.run("xen.migrate", "c1", "fleet-c", "test=True", "tgt=fleet-*"))
    assert (checked["moved"], checked["note"]) == (False, "test=True: fleet-c passed every check; nothing was moved")
    back = _data(fleet_hosts.run("xen.migrate", "c1", "fleet-c", "tgt=fleet-*"))
    assert (back["from"], back["to"], back["moved"], back["autostart"]) == ("fleet-b", "fleet-c", True, True)
    assert "c1" not in _data(cli.run("xen_host.guests", minion_tgt="fleet-b"))
    assert _data(cli.run("xen_host.definition", "c1", minion_tgt="fleet-c"))["autostart"] is True


def test_a_move_the_target_cannot_take_names_the_failed_check_and_moves_nothing(fleet_hosts):
    ret = fleet_hosts.run("xen.migrate", "b2", "fleet-a", "test=True", "tgt=fleet-*")
    assert ret.data["moved"] is False
    assert "fleet-a: xen_host.take_over: this host cannot take b2" in ret.data["error"]
    assert "this host cannot take b2: disk: " in ret.data["error"] and "b2.img is missing here" in ret.data["error"]
    ret = fleet_hosts.run("xen.migrate", "b2", "copy_disks=True", "tgt=fleet-*")
    assert "copy_disks=True (copying local disks along) is not available" in ret.data["refused"]


def test_evacuate_stops_at_the_first_move_that_fails_and_says_what_is_left(fleet_master, fleet_hosts):
    # libvirt's test driver cannot migrate live: the first move (a2, running) fails, a1 is not tried
    ret = fleet_hosts.run("xen.evacuate", "fleet-a", "tgt=fleet-*")
    assert (ret.data["moved"], ret.data["left"], list(ret.data["failed"])) == ([], ["a1"], ["a2"])
    assert "live migration of a2 to xen+ssh://fleet-b/system failed" in ret.data["failed"]["a2"]
    cli = fleet_master.salt_cli(timeout=300)
    assert _data(cli.run("xen_host.guests", minion_tgt="fleet-a"))["a2"]["state"] == "running"


def test_the_maintenance_orchestration_runs_its_steps_in_order_under_test_true(fleet_hosts):
    # test=True: applying xen.host for real would install Xen on this machine
    pillar = json.dumps({"host": "fleet-c", "fleet": "fleet-*"})
    ret = fleet_hosts.run("state.orchestrate", "xen.orch.maintenance", f"pillar={pillar}", "test=True")
    (steps,) = ret.data["data"].values()
    by_id = {step["__id__"]: step for step in sorted(steps.values(), key=lambda s: s["__run_num__"])}
    assert list(by_id) == [
        "xen-maintenance-fleet-c-evacuated",
        "xen-maintenance-fleet-c-host-applied",
        "xen-maintenance-fleet-c-fleet-verified",
    ]
    assert by_id["xen-maintenance-fleet-c-evacuated"]["comment"] == "Runner function 'xen.evacuate' would be executed."
    applied = by_id["xen-maintenance-fleet-c-host-applied"]["changes"]["ret"]["fleet-c"]
    assert any(step["__id__"] == "xen-host-packages-installed" for step in applied.values()), applied
    assert by_id["xen-maintenance-fleet-c-fleet-verified"]["result"] is None
