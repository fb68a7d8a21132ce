"""Events: guest state changes for the beacon, and what xendomains did at boot.

Uses ``core`` and ``guests``.
"""
