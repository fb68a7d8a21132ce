"""The layering rules of docs/contributing.md, checked by reading the source.

Arrows go down only: Salt layer (_modules, _states, _beacons, _engines, ...) -> library
(_utils/saltext_xen) -> libvirt and the OS. Inside the library, packages import only
the packages below them, and nothing but saltglue.py imports Salt. Every failure names
the file, the line and the import or call that breaks the rule.
"""

import ast
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LIBRARY = ROOT / "_utils" / "saltext_xen"
# Salt-facing folders; a folder not made yet is simply empty.
SALT_LAYER = ("_modules", "_states", "_beacons", "_engines", "_grains", "_runners")
# Salt's loader reads these; they stay short enough to read in one sitting.
MAX_LINES = 400
LONG_FILE_FOLDERS = ("_modules", "_states")

# Library package -> the library packages its modules may import (besides its own).
ALLOWED = {
    "core": set(),
    "disks": {"core"},
    "networks": {"core"},
    "host": {"core"},
    "guests": {"core", "disks", "networks", "host"},
    "events": {"core", "guests"},
    "fleet": {"core", "guests", "disks", "networks", "host"},
}
# What only the Salt layer talks to through the library.
BACKENDS = ("libvirt", "subprocess")


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def _parse(path):
    return ast.parse(path.read_text(), filename=str(path))


def _library_files():
    return sorted(p for p in LIBRARY.rglob("*.py") if "__pycache__" not in p.parts)


def _salt_layer_files():
    return sorted(p for folder in SALT_LAYER for p in (ROOT / folder).glob("*.py"))


def _module_name(path):
    """saltext_xen.guests.lifecycle for _utils/saltext_xen/guests/lifecycle.py."""
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """(line, imported module, names, source text) for every import in a file.

    Relative imports are resolved against the file's own package, so
    ``from ..core import errors`` in guests/ reads as saltext_xen.core.
    """
    tree = _parse(path)
    package = _module_name(path).split(".") if path.is_relative_to(LIBRARY.parent) else []
    if package and path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, [], f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            dots = "." * node.level
            yield node.lineno, module, names, f"from {dots}{node.module or ''} import {', '.join(names)}"


def _library_package(module):
    """The library package an import lands in: 'core' for saltext_xen.core.errors,
    'saltglue' for saltext_xen.saltglue, None outside the library."""
    parts = module.split(".")
    if parts[0] != "saltext_xen":
        return None
    return parts[1] if len(parts) > 1 else ""


def _targets(module, names):
    """Every library package an import reaches (``from saltext_xen import core, guests``
    reaches two)."""
    package = _library_package(module)
    if package is None:
        return []
    if package == "":
        return names
    return [package]


def test_only_saltglue_imports_salt():
    problems = []
    for path in _library_files():
        if path.name == "saltglue.py" and path.parent == LIBRARY:
            continue
        for line, module, names, text in _imports(path):
            if module == "salt" or module.startswith("salt."):
                problems.append(f"{_rel(path)}:{line}: {text} (only saltglue.py may import Salt)")
            elif path.parent != LIBRARY and "saltglue" in _targets(module, names):
                problems.append(f"{_rel(path)}:{line}: {text} (saltglue imports Salt; library packages may not use it)")
    assert not problems, "library modules importing Salt:\n" + "\n".join(problems)


def test_library_packages_import_only_downwards():
    problems = []
    for path in _library_files():
        if path.parent == LIBRARY:
            continue
        own = path.relative_to(LIBRARY).parts[0]
        assert own in ALLOWED, f"{_rel(path)}: package '{own}' has no place in the layering rule (ALLOWED)"
        for line, module, names, text in _imports(path):
            for target in _targets(module, names):
                if target == own or target in ALLOWED[own] or target == "saltglue":
                    continue  # saltglue is test_only_saltglue_imports_salt's business
                allowed = ", ".join(sorted(ALLOWED[own])) or "nothing else of the library"
                problems.append(f"{_rel(path)}:{line}: {text} ({own}/ may import {allowed})")
    assert not problems, "library imports against the dependency direction:\n" + "\n".join(problems)


def test_salt_layer_does_not_import_or_call_backends():
    problems = []
    for path in _salt_layer_files():
        for line, module, _names, text in _imports(path):
            if module.split(".")[0] in BACKENDS:
                problems.append(f"{_rel(path)}:{line}: {text}")
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Call):
                base = node.func
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in BACKENDS:
                    problems.append(f"{_rel(path)}:{node.lineno}: calls {ast.unparse(node.func)}()")
    assert not problems, (
        "the Salt layer talks to libvirt/subprocess itself instead of through the library:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=_rel(p)) for folder in LONG_FILE_FOLDERS for p in sorted((ROOT / folder).glob("*.py"))],
)
def test_salt_module_is_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; at most {MAX_LINES} (move the work into the library)"


def _is_library_module(module, name):
    """True when saltext_xen.<...>.<name> is a module or package file of the library."""
    base = LIBRARY.parent.joinpath(*module.split("."), name)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_salt_layer_imports_library_modules_at_top_level():
    problems = []
    for path in _salt_layer_files():
        tree = _parse(path)
        nested = {
            id(node)
            for scope in ast.walk(tree)
            if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for node in ast.walk(scope)
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if not module or _library_package(module) is None:
                continue
            names = [alias.name for alias in node.names]
            text = (
                f"from {node.module} import {', '.join(names)}"
                if isinstance(node, ast.ImportFrom)
                else f"import {', '.join(names)}"
            )
            if id(node) in nested:
                problems.append(f"{_rel(path)}:{node.lineno}: {text} (import the library at module top level)")
            if isinstance(node, ast.ImportFrom):
                for name in names:
                    if not _is_library_module(module, name):
                        problems.append(
                            f"{_rel(path)}:{node.lineno}: {text} ('{name}' is not a module: Salt's loader "
                            "would expose it as a function of this module; import its module instead)"
                        )
    assert not problems, "Salt-layer imports of the library:\n" + "\n".join(problems)


def test_the_runner_needs_no_libvirt_on_the_master():
    """The ``xen`` runner's library modules (it plans and carries out moves) load where libvirt-python is missing."""
    runner = ROOT / "_runners" / "xen.py"
    imports = [
        ast.unparse(node)
        for node in ast.walk(_parse(runner))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("saltext_xen")
    ]
    assert imports, "the runner imports no library module"
    code = "\n".join(["import sys", "sys.modules['libvirt'] = None", *imports])
    env = dict(os.environ, PYTHONPATH=str(LIBRARY.parent))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"{_rel(runner)} needs libvirt on the master:\n{proc.stderr}"
