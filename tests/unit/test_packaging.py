"""The wheel holds every package of the library: a package left out of setup.cfg loads from the
master's file roots but breaks every module that imports it under the pip install."""

import configparser

from tests.conftest import ROOT


def test_every_library_package_is_in_the_wheel():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    library = ROOT / "_utils" / "saltext_xen"
    packages = {
        ".".join(("saltext_xen", *init.parent.relative_to(library).parts))
        for init in library.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert packages - listed == set(), "library packages missing from setup.cfg [options] packages"
