"""Plain-Python core of the Salt extension for Xen hosts.

Nothing in this package imports Salt except :mod:`saltext_xen.saltglue`; the
Salt-facing modules in ``_modules``/``_states`` are thin layers over it.
"""
