"""One libvirt connection per process and URI, reopened when it has dropped.

libvirt's ``test:///`` driver keeps its state inside the connection, so reusing
one connection per process is also what makes consecutive calls in one process
(``salt-call``, a minion with ``multiprocessing: False``) see each other's work.
"""

import contextlib
import threading

try:
    import libvirt
except ImportError:  # pragma: no cover - exercised through __virtual__
    libvirt = None

from saltext_xen.core.errors import HypervisorUnreachable

DEFAULT_URI = "xen:///system"
URI_SETTING = "xen:libvirt:uri"
MISSING_REASON = "the libvirt-python package is not installed (pip install libvirt-python)"

_lock = threading.Lock()
_connections = {}


def _quiet(_ctx, _err):
    """Keep libvirt from printing its own copy of every error on stderr."""


if libvirt is not None:
    libvirt.registerErrorHandler(_quiet, None)


def available():
    """True when libvirt-python can be imported."""
    return libvirt is not None


def connect(uri=None):
    """Return the process's open connection to ``uri``, opening it if needed."""
    uri = uri or DEFAULT_URI
    with _lock:
        conn = _connections.get(uri)
        if conn is not None and _alive(conn):
            return conn
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnreachable(
                f"cannot connect to libvirt at {uri}: {exc.get_error_message()}. "
                f"Set '{URI_SETTING}' in the minion config or pillar to use another URI."
            ) from None
        _connections[uri] = conn
        return conn


def _alive(conn):
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def forget(uri=None):
    """Drop cached connections (all, or the one for ``uri``); used by tests."""
    with _lock:
        for key in [uri] if uri else list(_connections):
            conn = _connections.pop(key, None)
            if conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()
