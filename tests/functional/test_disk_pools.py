"""libvirt storage pools for guest disks (directory and volume group), through the loader."""

import os

from saltext_xen.core import connection
from saltext_xen.disks import pools


def run(states, name, test=False, **kwargs):
    return dict(states.xen_disk.pool_present(name, test=test, **kwargs).full_return)


def test_dir_pool_made_with_its_directory(states, test_uri, tmp_path):
    folder = str(tmp_path / "images")
    predicted = run(states, "scratch", path=folder, test=True)
    assert predicted["result"] is None and not os.path.exists(folder)
    real = run(states, "scratch", path=folder)
    assert real["result"] is True and real["changes"] == predicted["changes"]
    assert set(real["changes"]) == {"defined", "active", "autostart", "directory"}
    assert os.path.isdir(folder)
    pool = connection.connect(test_uri).storagePoolLookupByName("scratch")
    assert pool.isActive() and pool.autostart()
    again = run(states, "scratch", path=folder)
    assert again["result"] is True and again["changes"] == {}


def test_seeded_images_pool_is_not_redefined(states, tmp_path):
    ret = run(states, "images", path=str(tmp_path))
    assert ret["result"] is False
    assert "exists with path '/var/lib/xen/images'" in ret["comment"] and "not redefined" in ret["comment"]


def test_logical_pool_for_the_tutorials_vg(states, test_uri):
    real = run(states, "vol0", type="logical")
    assert real["result"] is True and real["changes"]["defined"] == {"old": False, "new": True}
    have = pools.current(connection.connect(test_uri), "vol0")
    assert (have["type"], have["vg"], have["path"]) == ("logical", "vol0", "/dev/vol0")
    assert run(states, "vol0", type="logical")["changes"] == {}


def test_autostart_off_and_on(states, test_uri, tmp_path):
    run(states, "scratch", path=str(tmp_path))
    ret = run(states, "scratch", path=str(tmp_path), autostart=False)
    assert ret["changes"] == {"autostart": {"old": True, "new": False}}


def test_pool_problems_with_paths(states):
    ret = run(states, "bad", type="zfs", path="relative", autostart="yes", colour=1)
    assert ret["result"] is False
    for words in ("type: expected", "path: expected", "autostart: expected", "colour: unknown argument"):
        assert words in ret["comment"]


def test_pool_problems_named_by_pillar_path(states):
    ret = run(states, "bad", type="zfs", path="/srv/bad", pillar_path="xen:pools:bad")
    assert ret["result"] is False
    assert ret["comment"] == "xen:pools:bad:type: expected dir or logical, got 'zfs'"
    ret = run(states, "images", path="/srv/elsewhere", pillar_path="xen:pools:images", test=True)
    assert ret["result"] is False and ret["comment"].startswith("xen:pools:images: pool images exists with path")
