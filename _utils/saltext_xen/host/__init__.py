"""The Xen host itself: Xen's own toolstack (``xl``) and logs.

Uses ``core`` only.
"""
