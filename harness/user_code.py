"""A user's own Python code, told apart from what the interpreter's environment installs and from xfbench's own.

A ``python:module:factory`` model is built by the user's code: the named module and whatever of theirs it imports.
Their conversion's cache entry records those files with their digests (a helper module's change is a new model,
not the cached one), and an error raised in that code is reported at the user's file and line, not at the
conversion process's. Framework-free: the conversion process and the driver both use it.
"""

from __future__ import annotations

import functools
import hashlib
import site
import sys
import sysconfig
import traceback
from collections.abc import Mapping
from pathlib import Path

from harness.cachekeys import PROJECT_ROOT, SOURCE_DIRS


@functools.cache
def installed_roots() -> tuple[Path, ...]:
    """Where the interpreter and its environment keep what they install: the standard library and site-packages,
    of the venv and of the base installation (the user's site too). What lies under them changes with the
    environment, which the cache keys hold by the frameworks' versions, not with the user's edits. Library folders
    only, never a bare prefix: Debian's Python has prefix /usr, and a venv inside the project folder has it as
    parent, so a prefix would take the user's own modules for installed ones."""
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    bases = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix, "installed_base": sys.base_prefix}
    found = [paths[k] for paths in (sysconfig.get_paths(), sysconfig.get_paths(vars=bases)) for k in keys if k in paths]
    found += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    roots = {Path(p).resolve() for p in found if p}
    return tuple(root for root in roots if root.parent != root)  # a prefix of "/" would swallow every file


@functools.cache
def _own_dirs() -> tuple[Path, ...]:
    # xfbench's own packages: their source is in every cache key already (harness.cachekeys.source_digest)
    return tuple((PROJECT_ROOT / folder).resolve() for folder in SOURCE_DIRS)


def is_installed(path: Path) -> bool:
    return any(path.is_relative_to(root) for root in installed_roots())


def is_user_source(filename: str) -> bool:
    """A real file (not ``<frozen ...>`` or ``<string>``) outside the environment and outside xfbench itself."""
    if not filename or filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    return path.is_file() and not is_installed(path) and not any(path.is_relative_to(d) for d in _own_dirs())


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def imported_user_sources() -> dict[str, str]:
    """Absolute path -> digest of every user source file among the modules this process has imported: run in the
    conversion process, after the factory built the model, these are the files the model came from."""
    sources: dict[str, str] = {}
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and is_user_source(filename):
            path = Path(filename).resolve()
            sources[str(path)] = file_digest(path)
    return sources


def changed_sources(recorded: Mapping[str, str]) -> list[str]:
    """The recorded files that changed or are gone since their digests were taken."""
    changed = []
    for name, digest in recorded.items():
        path = Path(name)
        if not path.is_file() or file_digest(path) != digest:
            changed.append(name)
    return changed


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """Where in the user's code ``exc`` arose: a SyntaxError's own file and line (its traceback is the importer's),
    else the innermost traceback frame in a user's file (a NameError in a helper the factory calls names the
    helper's line); None when no frame is the user's (a module installed in the environment)."""
    if isinstance(exc, SyntaxError) and exc.filename and is_user_source(exc.filename):
        return traceback.FrameSummary(exc.filename, exc.lineno, "<module>", line=(exc.text or "").strip())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_user_source(f.filename)]
    return frames[-1] if frames else None


def describe_exception(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line (a bad-input error is one line), long messages cut to ``limit`` characters.
    Python's own wording (its notes, and from 3.12 its "Did you mean" hints), but not a SyntaxError's caret
    drawing: its file, line and code are described apart (describe_frame)."""
    if isinstance(exc, SyntaxError):
        text = f"{type(exc).__name__}: {exc.msg}"
    else:
        text = " ".join(traceback.format_exception_only(type(exc), exc))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_frame(frame: traceback.FrameSummary) -> str:
    """``FILE:LINE in FUNCTION (`code`)``: what an editor jumps to, and the line itself."""
    where = f"{Path(frame.filename).resolve()}:{frame.lineno} in {frame.name}"
    code = " ".join((frame.line or "").split())
    return f"{where} (`{code}`)" if code else where
