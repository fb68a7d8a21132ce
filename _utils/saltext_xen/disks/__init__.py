"""Disks without a guest: images, copies, partitions and filesystems, storage pools.

Uses ``core`` only.
"""
