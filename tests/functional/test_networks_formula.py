"""salt/xen/networks.sls with the example pillar: bridges in a network namespace, networks on the test driver."""

import copy

import pytest
import yaml

from tests.conftest import ROOT
from tests.functional.netns_lab import Lab


@pytest.fixture(scope="module")
def formula_loaders(minion_opts, tmp_path_factory):
    """Loaders of their own, as on a Debian host (the persistence style comes from os_family)."""
    from saltfactories.utils.functional import Loaders

    opts = copy.deepcopy(minion_opts)
    opts["cachedir"] = str(tmp_path_factory.mktemp("formula-cache"))
    opts["grains"] = dict(opts.get("grains") or {}, os_family="Debian")
    loaders = Loaders(opts)
    yield loaders
    loaders.reset_state()


@pytest.fixture
def modules(formula_loaders, test_uri):
    return formula_loaders.modules


@pytest.fixture
def lab():
    lab = Lab().up()
    yield lab
    lab.down()


def example_pillar(lab, root):
    """pillar/xen/networks.sls as shipped, pointed at the namespace and a scratch /etc."""
    pillar = yaml.safe_load((ROOT / "pillar" / "xen" / "networks.sls").read_text())
    for bridge in pillar["xen"]["bridges"].values():
        bridge["netns"] = lab.host
    pillar["xen"]["network"] = {"config_root": str(root), "packages": []}
    return pillar


def results(ret):
    raw = getattr(ret, "raw", ret)
    assert isinstance(raw, dict), raw
    return {value["__id__"]: value for value in raw.values()}


def test_example_pillar_applies_predicts_and_settles(modules, lab, tmp_path):
    pillar = example_pillar(lab, tmp_path)
    predicted = results(modules.state.sls("xen.networks", pillar=pillar, test=True))
    assert set(predicted) == {
        "xen-net-bridge-xenbr0-present",
        "xen-net-bridge-xenbr1-present",
        "xen-net-network-default-running",
        "xen-net-network-virbr1-running",
    }
    assert all(r["result"] is None for r in predicted.values()), predicted
    assert predicted["xen-net-network-default-running"]["changes"] == {"autostart": {"old": False, "new": True}}
    assert lab.link("xenbr0") is None

    applied = results(modules.state.sls("xen.networks", pillar=pillar))
    assert all(r["result"] is True for r in applied.values()), applied
    for sid, ret in applied.items():
        assert ret["changes"] == predicted[sid]["changes"], sid
    assert lab.link("eth0")["master"] == "xenbr0" and lab.link("eth1")["master"] == "xenbr1"
    assert (tmp_path / "etc/network/interfaces.d/xenbr1").read_text().count("bridge_ports eth1") == 1
    assert lab.ping()

    again = results(modules.state.sls("xen.networks", pillar=pillar))
    assert {sid: r["changes"] for sid, r in again.items()} == {sid: {} for sid in again}


def test_misspelt_pillar_key_is_named(modules, lab, tmp_path):
    pillar = example_pillar(lab, tmp_path)
    pillar["xen"]["bridges"]["xenbr1"]["stpp"] = True
    pillar["xen"]["networks"]["virbr1"]["ipv4"]["dhcp"] = [{"start": "192.168.123.2", "end": "192.168.124.9"}]
    ret = results(modules.state.sls("xen.networks", pillar=pillar))
    assert ret["xen-net-bridge-xenbr1-present"]["result"] is False
    assert "xen:bridges:xenbr1:stpp: unknown key" in ret["xen-net-bridge-xenbr1-present"]["comment"]
    bad = ret["xen-net-network-virbr1-running"]
    assert bad["result"] is False
    assert "xen:networks:virbr1:ipv4:dhcp:0: range 192.168.123.2 - 192.168.124.9 is not inside" in bad["comment"]
    assert lab.link("xenbr1") is None


def test_clean_removes_what_it_made_and_the_nic_gets_its_address_back(modules, lab, tmp_path):
    pillar = example_pillar(lab, tmp_path)
    pillar["xen"]["networks"]["virbr1"]["force"] = True  # a key for the clean, passed over by xen.networks
    assert all(r["result"] is True for r in results(modules.state.sls("xen.networks", pillar=pillar)).values())
    assert lab.addrs("eth0") == []

    # the test driver's seeded guests have NICs on xenbr0: refused, until the entry says force
    refused = results(modules.state.sls("xen.networks.clean", pillar=pillar, test=True))
    assert refused["xen-net-bridge-xenbr0-absent"]["result"] is False
    assert "still used by vm02" in refused["xen-net-bridge-xenbr0-absent"]["comment"]
    pillar["xen"]["bridges"]["xenbr0"]["force"] = True
    again = results(modules.state.sls("xen.networks", pillar=pillar))
    assert {sid: (r["result"], r["changes"]) for sid, r in again.items()} == {sid: (True, {}) for sid in again}

    predicted = results(modules.state.sls("xen.networks.clean", pillar=pillar, test=True))
    assert set(predicted) == {
        "xen-net-network-default-absent",
        "xen-net-network-virbr1-absent",
        "xen-net-bridge-xenbr0-absent",
        "xen-net-bridge-xenbr1-absent",
    }
    assert all(r["result"] is None for r in predicted.values()), predicted
    assert lab.link("xenbr0") is not None

    cleaned = results(modules.state.sls("xen.networks.clean", pillar=pillar))
    assert all(r["result"] is True for r in cleaned.values()), {k: r["comment"] for k, r in cleaned.items()}
    for sid, ret in cleaned.items():
        assert ret["changes"] == predicted[sid]["changes"], sid
    order = sorted(cleaned, key=lambda sid: cleaned[sid]["__run_num__"])
    assert order[:2] == ["xen-net-network-default-absent", "xen-net-network-virbr1-absent"]
    assert lab.link("xenbr0") is None and lab.link("xenbr1") is None
    assert "10.77.0.2/24" in lab.addrs("eth0") and lab.default_dev() == ["eth0"]
    assert lab.ping()
    assert not (tmp_path / "etc/network/interfaces.d/xenbr1").exists()

    again = results(modules.state.sls("xen.networks.clean", pillar=pillar))
    assert {sid: r["changes"] for sid, r in again.items()} == {sid: {} for sid in again}


def test_ensure_says_what_is_wanted_and_old_words_are_named(modules, lab, tmp_path):
    pillar = example_pillar(lab, tmp_path)
    pillar["xen"]["bridges"] = {
        "xenbr1": dict(pillar["xen"]["bridges"]["xenbr1"], ensure="absent"),
        "xenbr0": {"absent": True},
    }
    pillar["xen"]["networks"]["virbr1"]["ensure"] = "defined"
    pillar["xen"]["networks"]["default"] = {"running": False}
    pillar["xen"]["networks"]["other"] = {"ensure": "up"}
    shown = modules.state.show_sls("xen.networks", pillar=pillar)
    assert isinstance(shown, dict), shown
    assert set(shown) == {
        "xen-net-bridge-xenbr0-present",
        "xen-net-bridge-xenbr1-absent",
        "xen-net-network-default-running",
        "xen-net-network-other-checked",
        "xen-net-network-virbr1-defined",
    }
    ret = results(modules.state.sls("xen.networks", pillar=pillar))
    # retired keys reach the states, which refuse them by their key path and change nothing
    assert "xen:bridges:xenbr0:absent: unknown key" in ret["xen-net-bridge-xenbr0-present"]["comment"]
    assert ret["xen-net-bridge-xenbr0-present"]["result"] is False
    assert "xen:networks:default:running: unknown key" in ret["xen-net-network-default-running"]["comment"]
    assert ret["xen-net-network-default-running"]["result"] is False
    assert (
        "xen:networks:other:ensure: expected one of running, defined, absent, got 'up'"
        in ret["xen-net-network-other-checked"]["comment"]
    )
    assert ret["xen-net-bridge-xenbr1-absent"]["result"] is True
    assert ret["xen-net-network-virbr1-defined"]["result"] is True, ret["xen-net-network-virbr1-defined"]["comment"]


def test_no_networking_pillar_is_a_quiet_no_op(modules):
    ret = modules.state.sls("xen.networks", pillar={"xen": {}})
    assert getattr(ret, "raw", ret) == {}
