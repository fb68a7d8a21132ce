"""Integration tier: a real salt-master and salt-minions (pytest-salt-factories).

Two minions prove the two ways users install the extension:
- ``sync-minion`` gets the modules from the master's file roots (this checkout)
  through ``saltutil.sync_all``;
- ``pip-minion`` has the wheel built from this checkout installed (pip
  ``--target`` a directory on its PYTHONPATH) and finds the modules through the
  ``salt.loader`` entry points, with no sync.

The test venv itself does not have the project installed, so neither route can
borrow from the other. Minions run jobs in threads (``multiprocessing: False``)
so consecutive jobs share one libvirt test-driver connection, as they would
share one real hypervisor.
"""

import copy
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_URI

MINION_DEFAULTS = {
    "multiprocessing": False,
    "xen": {"libvirt": {"uri": TEST_URI}},
}


@pytest.fixture(scope="session")
def extension_root(tmp_path_factory):
    """A file root holding only the extension's directories, as an operator would serve them.

    Serving the whole checkout (its .venv and lab images) would make every sync take minutes.
    """
    root = tmp_path_factory.mktemp("file-root")
    for kind in ("_modules", "_states", "_beacons", "_engines", "_grains", "_runners", "_utils"):
        (root / kind).symlink_to(ROOT / kind)
    return root


@pytest.fixture(scope="session")
def salt_master(salt_factories, tmp_path_factory, extension_root):
    # Pillar comes from each test (pillar=...), so the master's own pillar is empty.
    pillar_root = tmp_path_factory.mktemp("pillar")
    master = salt_factories.salt_master_daemon(
        "xen-master",
        defaults={
            "file_roots": {"base": [str(extension_root), str(ROOT / "salt")]},
            "pillar_roots": {"base": [str(pillar_root)]},
        },
    )
    with master.started():
        yield master


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory):
    """This checkout built into a wheel and pip-installed into a target directory."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (wheel,) = out.glob("saltext_xen-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    return target


@pytest.fixture(scope="session")
def sync_minion(salt_master):
    minion = salt_master.salt_minion_daemon("sync-minion", defaults=copy.deepcopy(MINION_DEFAULTS))
    with minion.started():
        yield minion


@pytest.fixture(scope="session")
def pip_minion(salt_master, wheel_dir):
    minion = salt_master.salt_minion_daemon("pip-minion", defaults=copy.deepcopy(MINION_DEFAULTS))
    minion.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(wheel_dir), os.environ.get("PYTHONPATH")]))
    with minion.started():
        yield minion


@pytest.fixture(scope="session")
def salt_cli(salt_master):
    return salt_master.salt_cli(timeout=300)


@pytest.fixture(scope="session")
def synced(salt_cli, sync_minion):
    """What ``saltutil.sync_all`` reported, run once for the session."""
    before = salt_cli.run("sys.list_modules", "xen_*", minion_tgt=sync_minion.id)
    assert "xen_guest" not in before.data, "modules must come from the sync, not from an install"
    ret = salt_cli.run("saltutil.sync_all", minion_tgt=sync_minion.id)
    assert ret.returncode == 0, ret
    return ret.data
