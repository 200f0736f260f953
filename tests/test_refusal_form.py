"""Every refusal under harness/ and backends/ names its fix once, in the standard form "Expected ... Received: ...
To fix, ...": one scan of the whole tree (tests/refusal_scan.py), where two scans each read a few modules (the
data layer's, and the comparison, history, report and export modules': review 167, finding 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from refusal_scan import ROOT, Refusal, scan, scanned_files, stale, unmended

# Internal errors: a programming error of harness code (an invariant, a protocol misused), which no input, option
# or file of the user's can cause. {"path::function": why the user cannot cause it}
INTERNAL = {
    "backends/tensorflow/adapter.py::TensorFlowBackend.train_epoch": "the trainer calls set_optimizer() first",
    "harness/backbone.py::cache_root": "the runner sets every trial's cache_dir",
    "harness/plan.py::RunPlan.__post_init__": "the planner builds plans; a damaged run.json's reaches the user "
    "through read_run_file, which names the file and the fix",
    "harness/plan.py::RunRecord.__post_init__": "as RunPlan's: read_run_file wraps a damaged run.json's",
    "harness/preflight.py::_prepare_pretrained": "the CLI and the runner give the preflight a cache directory",
    "harness/pretrained.py::prepare_weights": "called only for trials that use pretrained weights",
    "harness/results.py::normalise_row": "rows are built by the harness, never read from the user",
    "harness/scheduler.py::SchedulerSettings.__post_init__": "the harness sets storage_dir; the CLI refuses a "
    "negative --max-failures first",
    "harness/scheduler.py::tune_domain": "harness.search parses every domain first",
    "harness/scheduler.py::search_algorithm": "SearchExperiment refuses another --search first",
    "harness/tpe_search.py::optuna_distribution": "harness.search parses every domain first",
    "harness/weights_worker.py::run": "the harness names the worker's mode",
}
# Refusals whose fix another refusal names, where the scan cannot follow it: {"path::function": where it comes from}
FIX_GIVEN_ELSEWHERE = {
    "harness/errors.py::FileProblemError.of": "its callers give the fix (each SomeError.of(...) is a refusal the "
    "scan reads); a caller giving none catches it and composes its own refusal from .problem",
    "harness/user_files.py::_not_an_object": "as FileProblemError.of: read_json_object's callers give the fix",
    "harness/preflight.py::_check_search_points": "each fills in the refusal of the point that fails (exc, or "
    "_plateau_never_reduces's text), which names the fix (test below)",
    "harness/data/locate.py::download_file": "locate() fills its md5 mismatch into the refusal of the missing "
    "files, which names the fix (tests/test_data_refusal_form.py)",
}
# User-reachable refusals still lacking a fix: debt, which may shrink and may not grow (none now)
KNOWN_WITHOUT_FIX: dict[str, str] = {}
LISTS = {"INTERNAL": INTERNAL, "FIX_GIVEN_ELSEWHERE": FIX_GIVEN_ELSEWHERE, "KNOWN_WITHOUT_FIX": KNOWN_WITHOUT_FIX}


@pytest.fixture(scope="module")
def found() -> list[Refusal]:
    return scan()


def test_every_refusal_under_harness_and_backends_names_its_fix_once(found):
    allowed = [key for entries in LISTS.values() for key in entries]
    assert unmended(found, allowed) == []


def test_each_listed_refusal_still_lacks_its_fix_and_is_listed_once(found):
    assert {name: stale(entries, found) for name, entries in LISTS.items()} == {name: [] for name in LISTS}
    keys = [key for entries in LISTS.values() for key in entries]
    assert len(keys) == len(set(keys))


def test_the_scan_reads_the_whole_tree(found):
    """Every module under harness/ and backends/ is parsed, and the refusals of each area are read: a scan that read
    nothing would pass."""
    files = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    assert {"harness/cli.py", "harness/data/locate.py", "backends/torch/adapter.py"} <= files
    areas = {r.path.split("/")[0] + "/" + r.path.split("/")[1] for r in found}
    assert {"harness/data", "backends/torch", "backends/tensorflow", "harness/compare.py"} <= areas
    assert len(found) > 400


# ------------------------------------------------------------------ the scan itself


def _scan(tmp_path: Path, source: str) -> list[Refusal]:
    path = tmp_path / "harness" / "m.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    return scan(tmp_path, [path])


def _defects(tmp_path: Path, source: str) -> list[str]:
    return [text.split(":", 1)[0] for text in unmended(_scan(tmp_path, source), [])]


# each source, and the defects the scan finds in it
SOURCES = {
    "old": (  # advice without the marker
        """
def f():
    raise InputError(f"Expected a thing. Received: {x}; pick another.")
""",
        ["no fix"],
    ),
    "new": ('def f():\n    raise InputError(f"Expected a thing. Received: {x}. To fix, pick another.")\n', []),
    "built and raised by name": (
        """
def f():
    said = "Expected a thing. Received: x."
    return InputError(said)
""",
        ["no fix"],
    ),
    "built apart": ('def f(out):\n    out.append("Expected a thing. Received: x.")\n', ["no fix"]),
    "built apart, fixed in its function": (
        """
def f(out):
    out.append("Expected a thing. Received: x.")
    raise E("; ".join(out) + " To fix, y.")
""",
        [],
    ),
    "module constant": ('FIX = "To fix, y."\ndef f():\n    raise InputError(f"Expected a. Received: b. {FIX}")\n', []),
    "both sides of a conditional": (
        """
def f(c):
    fix = "To fix, y." if c else "To fix, z."
    raise ValueError(f"Expected a. Received: b. {fix}")
""",
        [],
    ),
    "one side of a conditional": (
        """
def f(c):
    fix = "To fix, y." if c else "pick z."
    raise ValueError(f"Expected a. Received: b. {fix}")
""",
        ["no fix"],
    ),
    "helper": (
        """
def _fix():
    return "To fix, y."
def f():
    raise InputError(f"Expected a. Received: b. {_fix()}")
""",
        [],
    ),
    "parameter": (
        """
def f(fix: str):
    raise InputError(f"Expected a. Received: b. {fix}")
def g():
    f("To fix, y.")
""",
        [],
    ),
    "parameter given no fix": (
        """
def f(fix: str):
    raise InputError(f"Expected a. Received: b. {fix}")
def g():
    f("pick y.")
""",
        ["no fix"],
    ),
    "or": (
        """
def f(fix: str | None = None):
    raise RunBeingDriven(f"Expected a. Received: b. {fix or 'To fix, y.'}")
""",
        [],
    ),
    "twice through a helper": (
        """
def _fix():
    return "To fix, y."
def f():
    raise E(f"Expected a. Received: b. To fix, z. {_fix()}")
""",
        ["two fixes"],
    ),
    "twice in Error.of": (
        """
F = "To fix, y."
def f():
    raise InputError.of(p, "a", "b", "To fix, z. " + F)
""",
        ["two fixes"],
    ),
}


@pytest.mark.parametrize("case", SOURCES)
def test_the_scan_reads_a_refusal_and_its_fix(tmp_path, case):
    source, defects = SOURCES[case]
    assert _defects(tmp_path, source) == defects


def test_an_allow_list_entry_is_stale_once_its_refusal_is_gone_or_names_its_fix(tmp_path):
    found = _scan(
        tmp_path,
        'def f():\n    raise ValueError("Expected a. Received: b.")\n'
        'def g():\n    raise ValueError("Expected a. Received: b. To fix, c.")\n',
    )
    entries = ["harness/m.py::f", "harness/m.py::g", "harness/m.py::gone"]
    assert stale(entries, found) == ["harness/m.py::g", "harness/m.py::gone"]
    assert unmended(found, ["harness/m.py::f"]) == []


# ------------------------------------------------------------------ what the scan cannot read: filled-in refusals


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
