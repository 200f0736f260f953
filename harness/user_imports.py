"""The user's own code a ``python:`` model is built from, found by reading import statements, never by importing
(the driver must not import a framework, and a user's module may do anything when imported).

A ``python:module:function`` model is its module and the user's files that module imports, and theirs in turn: a
helper edited is another model as much as the module edited. Each is found where Python would import it from the
driver (the current directory first, then ``sys.path``); what the environment installs and xfbench's own packages
are not the user's (harness.user_code.is_user_source). The unit of a top-level package is its whole directory (a
submodule imports its package first, and relative imports stay inside it); of a namespace package (folders without
__init__.py), the folder of it that holds the file. The units are what a run ships to a
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
from importlib.machinery import ModuleSpec
from pathlib import Path

from harness.user_code import file_digest, is_user_source


def module_spec(module: str) -> ModuleSpec | None:
    """How ``module`` would be imported (the current directory first, as for ``python -m``), found without
    importing it or its packages."""
    search: list[str] = [os.getcwd(), *sys.path]
    found = None
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        # the path finder by the last part: a namespace package found under its dotted name looks its parent up in
        # sys.modules (a KeyError, as the driver imports none of them)
        found = importlib.machinery.PathFinder.find_spec(parts[depth - 1], search) or _installed_finder_spec(
            name, search, depth
        )
        if found is None:
            return None
        search = list(found.submodule_search_locations or [])
    return found


def _installed_finder_spec(name: str, search: list[str], depth: int) -> ModuleSpec | None:
    """``name`` as another finder on ``sys.meta_path`` finds it: an editable install (``pip install -e``) of a
    flat-layout project maps its packages through such a finder, not through the path. Only a module of files
    counts (built-in and frozen modules are no one's source); asking a finder does not import the module. A finder
    that fails on the name (one that blocks an optional import) finds nothing: the user hears "no module"."""
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder or not hasattr(finder, "find_spec"):
            continue
        try:
            found = finder.find_spec(name, search if depth > 1 else None)
        except (ImportError, AttributeError, TypeError, ValueError):
            continue
        if found is not None and (found.has_location or found.submodule_search_locations):
            return found
    return None


def module_file(module: str) -> Path | None:
    """The file ``module`` would be imported from; None for a namespace package (a folder without __init__.py)."""
    spec = module_spec(module)
    return Path(spec.origin) if spec is not None and spec.origin else None


def _user_unit(top: str, origin: Path) -> Path | None:
    """The unit of ``origin``, a file of top-level module ``top``: ``top``'s own file, its package's directory, or
    for a namespace package (folders without __init__.py, possibly several on the path) the one folder of it that
    holds ``origin``. None when ``top`` is not the user's (installed, xfbench's own, built in) or not found."""
    spec = module_spec(top)
    if spec is None:
        return None
    if spec.origin:
        found = Path(spec.origin)
        if not is_user_source(str(found)):
            return None
        return found.parent if found.name == "__init__.py" else found
    portions = (Path(location) for location in spec.submodule_search_locations or [])
    return next((p for p in portions if origin.is_relative_to(p) and is_user_source(str(origin))), None)


def _imported_names(path: Path, name: str) -> list[str]:
    """The dotted names ``path`` (module ``name``) imports, relative imports made absolute, and for ``from X import
    a`` also ``X.a`` (a submodule, or an attribute that resolves to no file). A file that does not parse adds none:
    importing it reports the fault at its line (harness.user_code)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".") if package else []
            if node.level and (not package or node.level - 1 >= len(base)):
                continue  # beyond the top-level package: Python refuses it too
            target = ".".join([*base[: len(base) - node.level + 1], *([node.module] if node.module else [])])
            target = target if node.level else node.module or ""
            names += [target, *(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")]
    return [n for n in names if n]


def user_files(module: str) -> list[tuple[Path, Path]]:
    """The user's files importing ``module`` runs, each with its unit: every package's ``__init__.py`` on the way
    to a module (a namespace package has none) and the module's own file, for ``module``
    and, in turn, for what those files import. A file reached under two names (a package's module, and the same
    file on the path by its own name) is listed under each: a node holds a copy for each."""
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    queue = [module]
    while queue:
        parts = queue.pop(0).split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            spec = module_spec(prefix)
            if spec is None:
                break
            if prefix in seen or not spec.origin:
                continue
            seen.add(prefix)
            unit = _user_unit(parts[0], Path(spec.origin))
            if unit is None:
                break
            found.append((Path(spec.origin), unit))
            queue += _imported_names(Path(spec.origin), prefix)
    return found


def user_units(module: str) -> tuple[Path, ...]:
    """What a run ships for ``module``: the units of the user's files it imports, its own first, in the order found
    (a package's whole directory: Ray copies folders, not single files of them). Each is named as the import finds
    it, links not followed: Ray ships a unit under its own name, and a node imports ``my_nets`` from ``my_nets.py``
    even where that is a link to ``real/nets_impl.py``."""
    return tuple(dict.fromkeys(Path(os.path.abspath(unit)) for _, unit in user_files(module)))


def user_source_digest(module: str) -> str:
    """One digest of the user's files ``module`` imports, each by its name relative to its unit's folder and its
    content: a node's shipped copy lies elsewhere and hashes the same. Only the files imported: a package's other
    files (scripts, tests, what its .gitignore keeps from Ray's copy) change no key. '' for a module that is not
    the user's (installed: the caller digests its file alone)."""
    # named as found, under the unit's folder (a file linked from elsewhere is named where the import finds it)
    files = sorted((path.relative_to(unit.parent).as_posix(), path) for path, unit in user_files(module))
    if not files:
        return ""
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]
