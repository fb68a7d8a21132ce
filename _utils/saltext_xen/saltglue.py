"""The one place where the library meets Salt: URI lookup and error translation."""

import functools

from salt.exceptions import CommandExecutionError

from saltext_xen.core import connection
from saltext_xen.core.errors import XenError


def uri_from(salt_funcs):
    """The libvirt URI from minion config, grains or pillar (``xen:libvirt:uri``)."""
    return salt_funcs["config.get"](connection.URI_SETTING, connection.DEFAULT_URI)


def conn_from(salt_funcs):
    """Open (or reuse) the connection for the configured URI."""
    return connection.connect(uri_from(salt_funcs))


def plain_errors(func):
    """Turn library errors into CommandExecutionError so Salt prints the message, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except XenError as exc:
            raise CommandExecutionError(str(exc)) from None

    return wrapper
