"""Functional tier: the project's modules through Salt's real loader.

The loaders are built once per session (building them costs seconds); each
test still starts from the seeded test-driver host because ``modules`` and
``states`` depend on the function-scoped ``test_uri`` fixture.
"""

import pytest
from saltfactories.utils.functional import Loaders

from tests.conftest import ROOT, TEST_URI
from tests.functional.install_tree import served_tree
from tests.functional.netns_lab import NM, Lab


@pytest.fixture(scope="session")
def minion_opts(tmp_path_factory):
    """Minion options that load _modules/_states/_utils from this checkout."""
    import salt.config

    tmp = tmp_path_factory.mktemp("minion")
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "xen-functional",
            "file_client": "local",
            "cachedir": str(tmp / "cache"),
            "pki_dir": str(tmp / "pki"),
            "sock_dir": str(tmp / "sock"),
            "extension_modules": str(tmp / "extmods"),
            "module_dirs": [str(ROOT)],
            "file_roots": {"base": [str(ROOT / "salt")]},
            "xen": {"libvirt": {"uri": TEST_URI}},
        }
    )
    return opts


@pytest.fixture(scope="session")
def loaders(minion_opts):
    """Salt's loaders (``loaders.modules``, ``loaders.states``) for this checkout."""
    loaders = Loaders(minion_opts)
    yield loaders
    loaders.reset_state()


@pytest.fixture
def modules(loaders, test_uri):
    return loaders.modules


@pytest.fixture
def states(loaders, test_uri):
    return loaders.states


@pytest.fixture
def lab():
    """A dom0 stand-in (netns HOST: eth0 with address and default route, eth1) and its LAN, removed afterwards."""
    lab = Lab().up()
    yield lab
    lab.down()


@pytest.fixture
def nm(lab, tmp_path, monkeypatch):
    """The stand-in nmcli on PATH, running the lab's eth0 with 'Wired connection 1'."""
    return NM(lab, tmp_path, monkeypatch)


@pytest.fixture
def tree(tmp_path):
    """A RHEL-style install tree with a Xen kernel, initrd and kickstart, served on 127.0.0.1."""
    with served_tree(tmp_path) as url:
        yield url
