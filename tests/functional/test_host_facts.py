"""``xen_host.facts`` through Salt's loader on the test driver: what the fleet runner gets from a host."""

import pytest

PILLAR = {
    "xen": {
        "host": {"dom0_mem": "1G"},
        "guests": {
            "vm02": {"memory": 512, "nics": [{"bridge": "xenbr0"}], "group": "web"},
            "web2": {"memory": "2G", "nics": [{"network": "default"}], "disks": [{"source": "/srv/web2.img"}]},
        },
    }
}


@pytest.fixture
def with_pillar(modules):
    """The host's pillar as the master would compile it (the loader's own pillar dict, for this test)."""
    pillar = modules.pack["__pillar__"]
    before = dict(pillar)
    pillar.update(PILLAR)
    yield modules
    pillar.clear()
    pillar.update(before)


def test_facts_tell_memory_cpus_and_every_guest_in_one_call(modules):
    facts = modules.xen_host.facts()
    # the seed: an 8 GiB, 4-CPU host; vm02 running (512 MiB), vm03 shut off
    assert facts["hypervisor"] == "TEST" and facts["cpus"] == 4 and facts["xen_version"] is None
    assert facts["memory"]["total"] == 8192
    assert facts["memory"]["used"] == 512
    assert facts["memory"]["available"] == 8192 - facts["memory"]["reserved"] - 512
    vm02, vm03 = facts["guests"]["vm02"], facts["guests"]["vm03"]
    assert (vm02["state"], vm02["active"], vm02["memory"], vm02["vcpus"]) == ("running", True, 512, 2)
    assert (vm03["state"], vm03["active"]) == ("shutoff", False)
    assert vm02["uuid"] == "5c9d6d60-6f2b-4a39-9a47-30b3f3c3a002"
    assert vm02["macs"] == ["00:16:3e:02:00:01"] and vm02["bridges"] == ["xenbr0"]
    assert vm02["disks"] == [{"path": "/var/lib/xen/images/vm02.img", "exists": False}]
    assert facts["networks"] == {"default": {"active": True, "bridge": "virbr0"}}
    assert facts["pools"] == {"images": {"type": "dir", "path": "/var/lib/xen/images", "active": True}}
    assert isinstance(facts["bridges"], list), facts["errors"]


def test_facts_see_what_changed_on_the_host(modules):
    modules.xen_guest.start("vm03")
    facts = modules.xen_host.facts()
    assert facts["guests"]["vm03"]["active"] is True
    assert facts["memory"]["used"] == 1024


def test_dom0_reservation_and_pillar_guests_come_from_pillar(with_pillar):
    facts = with_pillar.xen_host.facts()
    assert facts["memory"]["reserved"] == 1024
    assert facts["memory"]["available"] == 8192 - 1024 - 512
    assert facts["pillar_guests"]["vm02"]["group"] == "web"
    web2 = facts["pillar_guests"]["web2"]
    assert (web2["memory"], web2["networks"], web2["disks"]) == (2048, ["default"], ["/srv/web2.img"])
    assert facts["errors"] == []
