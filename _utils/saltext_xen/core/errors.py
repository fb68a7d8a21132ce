"""Exceptions of the library; the Salt layer turns them into CommandExecutionError."""


class XenError(Exception):
    """Base class: the message is meant for an operator, in plain words."""


class HypervisorUnreachable(XenError):
    """libvirt could not be reached at the configured URI."""


class GuestNotFound(XenError):
    """No guest by that name on the hypervisor."""

    def __init__(self, name, uri):
        super().__init__(f"no guest named '{name}' on {uri}")
        self.name = name
        self.uri = uri


class InvalidState(XenError):
    """The guest is not in a state that allows the requested action."""


class NotAvailable(XenError):
    """The hypervisor or host lacks what the request needs (e.g. xl on a non-Xen host)."""
