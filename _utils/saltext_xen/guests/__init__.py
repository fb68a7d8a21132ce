"""Guests: the spec, its libvirt XML and xl.cfg forms, lifecycle, install, apply, clone and disk moves.

Uses ``core``, ``disks``, ``networks`` and ``host`` (``xl`` where libvirt does not tell); never ``events``.
"""
