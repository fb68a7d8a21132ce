"""Pillar of the wrong shape through state.sls on libvirt's test driver: one failing state whose
comment names the key path, nothing changed, and test=True saying the same; names and keys holding
quotes, ``:`` or ``#`` stay data (no YAML or Jinja error) and reach the states, which check them."""

import libvirt
import pytest

from saltext_xen.core import connection


def _by_id(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def _guests(uri):
    conn = connection.connect(uri)
    return sorted(d.name() for d in conn.listAllDomains()), sorted(n.name() for n in conn.listAllNetworks())


def _both(modules, sls, pillar, uri):
    """The run with test=True then for real, each as {id: (result, changes, comment)}; nothing changed."""
    before = _guests(uri)
    runs = []
    for test in (True, False):
        ret = _by_id(modules.state.sls(sls, pillar=pillar, test=test))
        runs.append({sid: (r["result"], r["changes"], r["comment"]) for sid, r in ret.items()})
    assert _guests(uri) == before
    assert runs[0] == runs[1], runs
    return runs[1]


@pytest.mark.parametrize(
    ("sls", "pillar", "sid", "comment"),
    [
        (
            "xen.guests",
            {"guests": ["vm02"]},
            "xen-guests-checked",
            "xen:guests: expected a mapping of guest names to specs, got a list",
        ),
        (
            "xen.guests.clean",
            {"guests": "vm02"},
            "xen-guests-checked",
            "xen:guests: expected a mapping of guest names to specs, got 'vm02'",
        ),
        (
            "xen.guests",
            {"guests": {"vm02": "running"}},
            "xen-guest-vm02-checked",
            "xen:guests:vm02: expected a mapping of spec keys (memory, disks, ...), got 'running'",
        ),
        (
            "xen.guests.clean",
            {"guests": {"vm02": [512]}},
            "xen-guest-vm02-checked",
            "xen:guests:vm02: expected a mapping of spec keys (memory, disks, ...), got a list",
        ),
        (
            "xen.guests",
            {"guests": {"vm02": {"ensure": "runing"}}},
            "xen-guest-vm02-checked",
            "xen:guests:vm02:ensure: expected one of running, defined, stopped, paused, absent, got 'runing'",
        ),
        (
            "xen.networks",
            {"bridges": ["xenbr0"]},
            "xen-net-bridges-checked",
            "xen:bridges: expected a mapping of bridge names to settings, got a list",
        ),
        (
            "xen.networks.clean",
            {"networks": "default"},
            "xen-net-networks-checked",
            "xen:networks: expected a mapping of network names to settings, got 'default'",
        ),
        (
            "xen.networks",
            {"bridges": {"xenbr1": "eth1"}},
            "xen-net-bridge-xenbr1-checked",
            "xen:bridges:xenbr1: expected a mapping of settings, got 'eth1'",
        ),
        (
            "xen.networks",
            {"networks": {"virbr1": [1, 2]}},
            "xen-net-network-virbr1-checked",
            "xen:networks:virbr1: expected a mapping of settings, got a list",
        ),
        (
            "xen.networks",
            {"networks": {"virbr1": {"ensure": 5}}},
            "xen-net-network-virbr1-checked",
            "xen:networks:virbr1:ensure: expected one of running, defined, absent, got 5",
        ),
        (
            "xen.disks",
            {"disks": ["/srv/x.img"]},
            "xen-disks-checked",
            "xen:disks: expected a mapping of short disk names to settings (path, size, ...), got a list",
        ),
        (
            "xen.disks.clean",
            {"disks": "x"},
            "xen-disks-checked",
            "xen:disks: expected a mapping of short disk names to settings (path, size, ...), got 'x'",
        ),
        (
            "xen.disks",
            {"pools": ["images"]},
            "xen-disk-pools-checked",
            "xen:pools: expected a mapping of pool names to settings, got a list",
        ),
        (
            "xen.disks",
            {"disks": {"x": "/srv/x.img"}},
            "xen-disk-x-checked",
            "xen:disks:x: expected a mapping of settings (path, size, ...), got '/srv/x.img'",
        ),
        (
            "xen.disks",
            {"disks": {"x": {"path": "/srv/x.img", "move": "newvm", "filesystems": ["ext4"], "attach": [1]}}},
            "xen-disk-x-checked",
            "xen:disks:x:filesystems: expected a mapping of partition numbers (or whole) to filesystems, got a list; "
            "xen:disks:x:attach: expected a guest name or a mapping like {guest: newvm, target: xvdb}, got a list; "
            "xen:disks:x:move: expected a mapping like {guest: newvm, disk: xvda}, got 'newvm'",
        ),
        (
            "xen.clones",
            {"clones": ["newvm03"]},
            "xen-clones-checked",
            "xen:clones: expected a mapping of new guest names to clone settings (source, disks, ...), got a list",
        ),
        (
            "xen.clones.clean",
            {"clones": "newvm03"},
            "xen-clones-checked",
            "xen:clones: expected a mapping of new guest names to clone settings (source, disks, ...), got 'newvm03'",
        ),
    ],
)
def test_a_section_or_entry_of_the_wrong_shape_is_one_error_naming_its_key(
    modules, test_uri, sls, pillar, sid, comment
):
    ret = _both(modules, sls, {"xen": pillar}, test_uri)
    assert ret == {sid: (False, {}, comment + "; nothing was changed")}


def test_guest_formula_keys_go_to_the_state_which_names_them(modules, test_uri):
    pillar = {"xen": {"guests": {"vm03": {"ensure": "absent", "remove_disks": "no", "timeout": 0}}}}
    ret = _both(modules, "xen.guests", pillar, test_uri)
    (result, changes, comment) = ret["xen-guest-vm03-absent"]
    assert result is False and changes == {}
    assert "xen:guests:vm03:remove_disks: expected true or false, got 'no'" in comment
    assert "xen:guests:vm03:timeout: expected a whole number of at least 1, got 0" in comment


@pytest.mark.parametrize("name", ['vm"02', "vm:02", "vm #02", "vm'02", "- vm02"])
def test_odd_guest_names_stay_data_and_are_refused_by_the_state(modules, test_uri, name):
    pillar = {"xen": {"guests": {name: {"memory": 256, "ensure": "defined"}}}}
    ret = _both(modules, "xen.guests", pillar, test_uri)
    assert list(ret) == [f"xen-guest-{name}-defined"]
    result, changes, comment = ret[f"xen-guest-{name}-defined"]
    assert result is False and changes == {}, comment
    assert "xen:guests:" in comment, comment
    with pytest.raises(libvirt.libvirtError):
        connection.connect(test_uri).lookupByName(name)


@pytest.mark.parametrize("name", ['br"0', "br:0", "br #0", "-h"])
def test_odd_bridge_and_network_names_stay_data_and_are_refused_by_the_state(modules, test_uri, name):
    pillar = {
        "xen": {"network": {"packages": []}, "bridges": {name: {"stp": True}}, "networks": {name: {"forward": "nat"}}}
    }
    ret = _both(modules, "xen.networks", pillar, test_uri)
    assert set(ret) == {f"xen-net-bridge-{name}-present", f"xen-net-network-{name}-running"}
    for sid, (result, changes, comment) in ret.items():
        assert result is False and changes == {}, (sid, comment)
        assert comment.startswith(("xen:bridges:", "xen:networks:")) or "xen:" in comment, (sid, comment)


def test_keys_holding_quotes_colons_or_hashes_are_named_by_the_state(modules, test_uri):
    pillar = {"xen": {"network": {"packages": []}, "bridges": {"xenbr7": {'st"p': True, "a:b": 1, "#c": 2}}}}
    ret = _both(modules, "xen.networks", pillar, test_uri)
    result, changes, comment = ret["xen-net-bridge-xenbr7-present"]
    assert result is False and changes == {}
    for key in ('st"p', "a:b", "#c"):
        assert f"xen:bridges:xenbr7:{key}: unknown key" in comment, comment


def test_odd_disk_names_and_keys_stay_data(modules, test_uri, tmp_path):
    image = tmp_path / "x.img"
    pillar = {"xen": {"disks": {'a"b:c #d': {"path": str(image), "size": "8M", "filesystems": {"whole": {"f:s": 1}}}}}}
    ret = _both_disk(modules, pillar)
    assert list(ret) == ['xen-disk-a"b:c #d-checked']
    result, changes, comment = ret['xen-disk-a"b:c #d-checked']
    assert result is False and changes == {}, comment
    assert comment.startswith('xen:disks:a"b:c #d:filesystems:whole:f:s: unknown key'), comment
    pillar["xen"]["disks"]['a"b:c #d']["filesystems"] = {"whole": {"fs_type": "ext4"}}
    ret = _both_disk(modules, pillar)
    assert set(ret) == {'xen-disk-a"b:c #d-present', 'xen-disk-a"b:c #d-whole-formatted'}
    assert all(result is None for result, _, _ in ret.values()), ret
    assert not image.exists()


def _both_disk(modules, pillar):
    ret = _by_id(modules.state.sls("xen.disks", pillar=pillar, test=True))
    return {sid: (r["result"], r["changes"], r["comment"]) for sid, r in ret.items()}


MIXED = {
    "host": {"manage": False, "repo": {}},
    "network": {"packages": []},
    "guests": {101: {"memory": 256, "ensure": "defined"}, "vm02": {"memory": 256, "on_host_shutdown": "shutdown"}},
    "disks": {
        7: {
            "path": "/srv/xen/seven.img",
            "size": "8M",
            "partitions": [{"start": 0, "end": 4}, {"start": 4, "end": -1}],
            "filesystems": {1: "ext4", "2": "xfs"},
            "delete": True,
        },
        "data": {"path": "/srv/xen/data.img", "size": "8M", "attach": "vm02"},
    },
    "pools": {5: {"path": "/srv/xen/five"}, "images": {"path": "/srv/xen/images"}},
    "bridges": {0: {"stp": True}, "xenbr1": {"stp": False}},
    "networks": {1: {"forward": "nat"}, "virbr1": {"forward": "nat"}},
}


@pytest.mark.parametrize(
    "sls", ["xen.guests", "xen.guests.clean", "xen.disks", "xen.disks.clean", "xen.networks", "xen.networks.clean"]
)
def test_numeric_and_text_keys_in_one_section_render_and_names_reach_the_states_as_text(modules, sls):
    high = modules.state.show_sls(sls, pillar={"xen": MIXED})
    assert isinstance(high, dict), high
    names = {
        arg["name"]
        for body in high.values()
        for fun, args in body.items()
        if not fun.startswith("__")
        for arg in args
        if isinstance(arg, dict) and "name" in arg
    }
    assert names and all(isinstance(name, str) for name in names), names
    if sls.startswith("xen.guests"):
        assert {"101", "vm02"} <= names
    if sls == "xen.disks":
        assert "xen-disk-7-part1-formatted" in high and "xen-disk-pool-5-present" in high, sorted(high)


def test_the_host_sls_renders_with_numeric_and_text_guest_names(modules):
    high = modules.state.show_sls("xen.host", pillar={"xen": MIXED})
    assert isinstance(high, dict), high


def test_one_name_given_as_a_number_and_as_text_fails_the_render_naming_it(modules):
    pillar = {"xen": {"guests": {1: {"memory": 256}, "1": {"memory": 512}}}}
    ret = modules.state.show_sls("xen.guests", pillar=pillar)
    assert isinstance(ret, list), ret
    assert "xen:guests:1: given twice, as a number and as text; keep one" in "\n".join(ret), ret


@pytest.fixture
def without_xen_modules(minion_opts, tmp_path):
    """Loaders of a minion where the extension's execution modules did not load (no libvirt-python)."""
    from saltfactories.utils.functional import Loaders

    opts = dict(minion_opts, cachedir=str(tmp_path / "cache"), disable_modules=["xen_disk", "xen_guest"])
    loaders = Loaders(opts)
    yield loaders.modules
    loaders.reset_state()


@pytest.mark.parametrize(
    ("sls", "pillar", "sid", "path", "fun"),
    [
        (
            "xen.disks",
            {"disks": {"d": {"path": "/srv/xen/d.img", "size": "1G"}}},
            "xen-disk-module-checked",
            "xen:disks",
            "xen_disk.check_entry",
        ),
        (
            "xen.clones",
            {"clones": {"newvm": {"source": "vm"}}},
            "xen-clones-checked",
            "xen:clones",
            "xen_guest.check_clones",
        ),
        (
            "xen.clones.clean",
            {"clones": {"newvm": {"source": "vm"}}},
            "xen-clones-checked",
            "xen:clones",
            "xen_guest.check_clones",
        ),
    ],
)
def test_a_section_whose_check_module_is_missing_is_one_error_not_a_render_error(
    without_xen_modules, sls, pillar, sid, path, fun
):
    for test in (True, False):
        ret = _by_id(without_xen_modules.state.sls(sls, pillar={"xen": pillar}, test=test))
        assert ret[sid]["result"] is False, ret
        assert ret[sid]["comment"].startswith(f"{path}: {fun} is not available on this minion"), ret[sid]["comment"]
        assert all(r["result"] is False for r in ret.values() if r["__id__"] != "xen-disk-packages-installed"), ret
