"""What every part of the library shares: the libvirt connection, errors, MAC policy, the state pattern.

Nothing in ``core`` imports another package of the library.
"""
