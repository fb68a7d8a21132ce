"""Entry point for ``pip install``: tells Salt's loader where the modules are."""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def loader_dirs():
    """Map each Salt loader type to the package directories that hold it."""
    found = {}
    for ext_type in ("modules", "states", "beacons", "engines", "grains", "runners"):
        path = os.path.join(_HERE, ext_type)
        if os.path.isdir(path):
            found[ext_type] = [path]
    return found
