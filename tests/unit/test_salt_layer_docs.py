"""Every public function of the Salt-facing layer tells a user how to call it."""

import ast

import pytest

from tests.conftest import ROOT

# Salt calls these hooks itself; nobody types them on a command line.
HOOKS = {"validate"}


def _public_functions():
    for folder in ("_modules", "_states", "_beacons", "_runners"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.name not in HOOKS:
                    yield pytest.param(node, id=f"{folder}/{path.stem}.{node.name}")


@pytest.mark.parametrize("func", list(_public_functions()))
def test_public_function_has_a_cli_example(func):
    doc = ast.get_docstring(func) or ""
    assert doc, "no docstring"
    assert "CLI Example:" in doc, "docstring has no 'CLI Example:'"
