"""DESIGN.md's boundaries: the harness imports no framework; Ray lives in one module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tensorflow", "keras", "ray", "jax")


def test_import_harness_loads_no_framework():
    code = (
        "import sys, harness, harness.cli, harness.runner, harness.summary, harness.results, harness.suites\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_scheduler_imports_ray_and_no_harness_module_imports_a_framework():
    offenders = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        roots = _imported_roots(path)
        allowed = {"ray"} if path.name == "scheduler.py" else set()
        bad = (roots & set(FRAMEWORKS)) - allowed
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
    assert "ray" in _imported_roots(ROOT / "harness" / "scheduler.py")


def test_each_backend_imports_only_its_own_framework():
    own = {"torch": {"torch"}, "tensorflow": {"tensorflow", "keras"}}
    for backend, allowed in own.items():
        for path in (ROOT / "backends" / backend).rglob("*.py"):
            foreign = (_imported_roots(path) & set(FRAMEWORKS)) - allowed
            assert not foreign, f"{path} imports {foreign}"
