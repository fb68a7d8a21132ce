"""Functional tier: the project's modules through Salt's real loader."""
import pytest
from saltfactories.utils.functional import Loaders

from tests.conftest import ROOT


@pytest.fixture
def minion_opts(tmp_path, test_uri):
    """Minion options that load _modules/_states/_utils from this checkout."""
    import salt.config

    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "xen-functional",
            "file_client": "local",
            "cachedir": str(tmp_path / "cache"),
            "pki_dir": str(tmp_path / "pki"),
            "sock_dir": str(tmp_path / "sock"),
            "extension_modules": str(tmp_path / "extmods"),
            "module_dirs": [str(ROOT)],
            "utils_dirs": [str(ROOT / "_utils")],
            "file_roots": {"base": [str(ROOT / "salt")]},
            "xen": {"libvirt": {"uri": test_uri}},
        }
    )
    return opts


@pytest.fixture
def loaders(minion_opts):
    """Salt's loaders (``loaders.modules``, ``loaders.states``) for this checkout."""
    loaders = Loaders(minion_opts)
    yield loaders
    loaders.reset_state()


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states
