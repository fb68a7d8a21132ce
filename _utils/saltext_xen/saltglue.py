"""The one place where the library meets Salt: URI lookup, error translation, the Salt mine."""

import functools

from salt.exceptions import CommandExecutionError

from saltext_xen.core import connection
from saltext_xen.core.errors import XenError
from saltext_xen.fleet import guard

#: what every Xen host publishes through the Salt mine (pillar or minion config ``mine_functions``)
MINE_FUNCTION = "xen_host.guests"


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


def mine_guests(salt_funcs, context, run):
    """``{host: {guest: {"uuid", "state"}}}`` as the Salt mine has it, asked once per state
    run ``run`` (afresh outside one); ``{}`` when the mine has nothing."""
    cached = context.get("saltext_xen.mine_guests")
    if run is None or cached is None or cached[0] != run:
        reported = salt_funcs["mine.get"]("*", MINE_FUNCTION)
        cached = context["saltext_xen.mine_guests"] = (run, reported if isinstance(reported, dict) else {})
    return cached[1]


def second_copy(salt_funcs, context, run, name, want, current, wanted, path):
    """A guest state's refusals (``saltext_xen.fleet.guard``) when it would define or start guest
    ``name`` while the mine shows it on another host; the mine is asked only then."""
    if (wanted is None and current is None) or not guard.would_add(want, current):
        return []
    uuid = (wanted or {}).get("uuid") or (current.spec["uuid"] if current is not None else None)
    reported = mine_guests(salt_funcs, context, run)
    return guard.refusals(name, uuid, reported, salt_funcs["config.get"]("id"), path)
