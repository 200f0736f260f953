"""The user's own code a ``python:`` model is built from, found by reading import statements, never by importing
(the driver must not import a framework, and a user's module may do anything when imported).

A ``python:module:function`` model is its module and the user's files that module imports, and theirs in turn: a
helper edited is another model as much as the module edited. Each is found where Python would import it from the
driver (the current directory first, then ``sys.path``); what the environment installs and xfbench's own packages
are not the user's (harness.user_code.is_user_source). The unit of a top-level package is its whole directory (a
submodule imports its package first, and relative imports stay inside it). The units are what a run ships to a
cluster's nodes (Ray's ``py_modules``) and what the cache keys hash, by names relative to each unit, so a node's
copy hashes as the driver's does. Imports made at run time (``importlib.import_module`` of a computed name) are not
seen: what they import must be installed, as a third-party package is.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.user_code import file_digest, is_user_source


def module_file(module: str) -> Path | None:
    """Where ``module`` would be imported from (the current directory first, as for ``python -m``), without
    importing it or its packages."""
    search: list[str] = [os.getcwd(), *sys.path]
    found = None
    for part in module.split("."):
        found = importlib.machinery.PathFinder.find_spec(part, search)
        if found is None:
            return None
        search = list(found.submodule_search_locations or [])
    return Path(found.origin) if found is not None and found.origin else None


def _user_unit(top: str) -> Path | None:
    """The user's file of top-level module ``top``, or its package's directory; None when ``top`` is not the user's
    (installed, xfbench's own, built in, a namespace package) or not found."""
    found = module_file(top)
    if found is None or not is_user_source(str(found)):
        return None
    found = found.resolve()
    return found.parent if found.name == "__init__.py" else found


def unit_files(unit: Path) -> list[Path]:
    return sorted(unit.rglob("*.py")) if unit.is_dir() else [unit]


def _imported_tops(path: Path) -> list[str]:
    """The top-level names of ``path``'s absolute imports (relative ones stay inside its package, a unit already).
    A file that does not parse adds none: importing it reports the fault at its line (harness.user_code)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return sorted(tops)


def user_units(module: str) -> tuple[Path, ...]:
    """The units of the user's code ``module`` is built from: its own top-level module or package first, then each
    user unit its files import, and theirs in turn, in the order found; () for a module that is not the user's."""
    first = _user_unit(module.split(".")[0])
    units = [first] if first is not None else []
    for unit in units:  # grows as it goes: each unit found is read in turn
        for path in unit_files(unit):
            for top in _imported_tops(path):
                found = _user_unit(top)
                if found is not None and found not in units:
                    units.append(found)
    return tuple(units)


def units_digest(units: Iterable[Path]) -> str:
    """One digest of the units' files, each by its name relative to its unit's folder and its content: a node's
    shipped copy lies elsewhere and hashes the same."""
    digest = hashlib.sha256()
    for unit in units:
        for path in unit_files(unit):
            digest.update(f"{path.relative_to(unit.parent).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]
