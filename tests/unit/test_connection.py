"""One libvirt connection per process and URI, reopened when it has dropped."""

import pytest

from saltext_xen.core import connection
from saltext_xen.core.errors import HypervisorUnreachable
from tests.conftest import ROOT

URI = "test:///default"


@pytest.fixture(autouse=True)
def fresh():
    connection.forget(URI)
    yield
    connection.forget(URI)


def test_the_same_connection_serves_every_call():
    assert connection.connect(URI) is connection.connect(URI)


def test_a_dropped_connection_is_reopened():
    first = connection.connect(URI)
    first.close()
    second = connection.connect(URI)
    assert second is not first
    assert second.isAlive()


def test_unreachable_uri_names_the_setting():
    with pytest.raises(HypervisorUnreachable, match=r"cannot connect to libvirt at bogus:///x: .*xen:libvirt:uri"):
        connection.connect("bogus:///x")


def test_virtual_says_why_when_libvirt_python_is_missing(monkeypatch):
    """libvirt-python is installed here; hiding it is the only way to see this branch."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("xen_guest_mod", str(ROOT / "_modules" / "xen_guest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(connection, "libvirt", None)
    ok, reason = module.__virtual__()
    assert ok is False
    assert "libvirt-python" in reason
