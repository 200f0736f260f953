"""Size limits that keep the code readable: no function over 60 lines in harness/ or backends/, and no
backend adapter module over 350 lines (issue 16). Read with ast, so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60
MAX_ADAPTER_LINES = 350


def _functions_over(limit: int, path: Path, root: Path = ROOT) -> list[str]:
    """``path:line name (n lines)`` for each function or method longer than ``limit`` lines, counted from its
    ``def`` to its last line (decorators left out, docstring and comments in)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    too_long = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                too_long.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return too_long


def test_no_function_is_over_60_lines():
    sources = sorted(p for package in ("harness", "backends") for p in (ROOT / package).rglob("*.py"))
    assert sources, "found no sources under harness/ and backends/"
    too_long = [entry for path in sources for entry in _functions_over(MAX_FUNCTION_LINES, path)]
    assert not too_long, f"Functions over {MAX_FUNCTION_LINES} lines (split them):\n" + "\n".join(too_long)


def test_no_adapter_module_is_over_350_lines():
    adapters = sorted((ROOT / "backends").glob("*/adapter.py"))
    assert adapters, "found no backends/*/adapter.py"
    too_long = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in adapters
        if (n := len(path.read_text().splitlines())) > MAX_ADAPTER_LINES
    ]
    assert not too_long, f"Adapter modules over {MAX_ADAPTER_LINES} lines (move code to harness/):\n" + "\n".join(
        too_long
    )


def test_the_count_reports_a_61_line_method_and_not_a_60_line_function(tmp_path):
    def lines(indent: str, count: int) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(count))

    source = tmp_path / "probe.py"
    # def + 59 statements = 60 lines; def + 60 statements = 61 lines
    source.write_text(f"def short():\n{lines('    ', 59)}\n\nclass C:\n    def long(self):\n{lines('        ', 60)}")
    assert _functions_over(MAX_FUNCTION_LINES, source, tmp_path) == ["probe.py:64 long (61 lines)"]
