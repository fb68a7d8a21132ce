"""Plain-Python core of the Salt extension for Xen hosts.

Nothing in this package imports Salt except :mod:`saltext_xen.saltglue`; the
Salt-facing modules in ``_modules``/``_states`` are thin layers over it.
"""

# The one place the version is written; setup.cfg reads it (attr: saltext_xen.__version__).
__version__ = "0.1.0"
