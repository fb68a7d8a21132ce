"""Fixtures shared by every tier."""

import logging
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NODE_XML = ROOT / "tests" / "data" / "node.xml"
TEST_URI = f"test://{NODE_XML}"


@pytest.fixture
def test_uri():
    """A libvirt test-driver URI seeded with the tutorial's host (vm02 running, vm03 shut off).

    The test driver keeps its state inside the connection; the library keeps one
    connection per URI and process, and this fixture drops it before and after
    the test so every test starts again from the seed.
    """
    from saltext_xen.core import connection

    connection.forget(TEST_URI)
    yield TEST_URI
    connection.forget(TEST_URI)


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory):
    """Journals of copies onto devices go under this session's temporary folder, not /var/lib/saltext-xen
    (set in the environment, so processes the tests start use it too)."""
    from saltext_xen.core import protect

    path = tmp_path_factory.mktemp("saltext-xen-state")
    before = os.environ.get(protect.STATE_DIR_ENV)
    os.environ[protect.STATE_DIR_ENV] = str(path)
    yield path
    if before is None:
        os.environ.pop(protect.STATE_DIR_ENV, None)
    else:
        os.environ[protect.STATE_DIR_ENV] = before


def pytest_unconfigure(config):
    # Salt's log handlers outlive pytest's streams; without this they print
    # "--- Logging error ---" tracebacks after the summary line.
    logging.raiseExceptions = False


def pytest_collection_modifyitems(items):
    """The real-Xen lab tier (tests/lab) runs last, after the fast tiers."""
    items.sort(key=lambda item: "tests/lab/" in item.nodeid.replace("\\", "/"))
