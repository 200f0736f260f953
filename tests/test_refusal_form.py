"""Every refusal of the comparison, history, report and export modules names its fix in the standard form."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"
# the modules of compare, history, baselines, report and export (review 167, finding 6: about 30 of their refusals
# gave "Give …", "Pass …", "Start it …" or no fix at all)
MODULES = ("baselines", "report_html", "user_files", "mlflow_uri", "mlflow_export", "compare", "plots")


def _texts(node: ast.AST) -> str:
    """The literal text of a string, f-string or concatenation (``{…}`` for what is filled in)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_texts(v) if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    if isinstance(node, ast.BinOp):
        return _texts(node.left) + _texts(node.right)
    return ""


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _assigned(scope: ast.AST) -> dict[str, str]:
    """Each name a scope assigns a text to -> the texts it may hold (both sides of a conditional)."""
    out: dict[str, str] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            parts = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
            out[node.targets[0].id] = out.get(node.targets[0].id, "") + " ".join(_texts(p) for p in parts)
    return out


def _refusals(module: str) -> list[tuple[int, str]]:
    """(line, its text with the texts of the names it fills in) of each ``...Error("Expected ...")`` it raises."""
    tree = ast.parse((HARNESS / f"{module}.py").read_text())
    constants = _assigned(ast.Module(body=[n for n in tree.body if isinstance(n, ast.Assign)], type_ignores=[]))
    found = []
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        local = constants | _assigned(function)
        for call in [n for n in ast.walk(function) if isinstance(n, ast.Call) and n.args]:
            name = getattr(call.func, "id", getattr(call.func, "attr", ""))
            text = _texts(call.args[0])
            if name.endswith("Error") and text.startswith("Expected"):
                filled = " ".join(local.get(n, "") for n in _names(call.args[0]))
                found.append((call.lineno, f"{text} {filled}"))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_refusal_names_its_fix_after_to_fix(module):
    refusals = _refusals(module)
    assert refusals, f"no refusal found in harness/{module}.py: the sweep reads nothing"
    assert not [(line, text) for line, text in refusals if "To fix," not in text], module


def test_a_search_point_that_fails_names_the_fix_once(tmp_path, capsys):
    """The point's own refusal carries its fix; the search's said "To fix the search, ..." after it, a second."""
    from harness.cli import main

    argv = ["tune", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--backend", "torch"]
    argv += ["--space", "hidden=choice:64,1000000000", "--no-download", "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "which fails: Expected a trial that fits in this machine's memory" in err, err
    assert err.count("To fix") == 1, err
    assert err.rstrip().endswith("Or narrow the search's space so that every point fits."), err
