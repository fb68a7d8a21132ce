"""Guests: the spec, its libvirt XML and xl.cfg forms, lifecycle, install, apply, clone and disk moves.

Uses ``core``, ``disks`` and ``networks``; never ``events`` or ``host``.
"""
