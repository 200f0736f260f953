"""benchmarks/scheduling.py's own arithmetic and argument checks (the benchmark runs Ray; these do not)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "scheduling.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("scheduling_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(run_id: str, trial: str, before: int, epochs: list[float], status: str = "ok") -> list[dict]:
    return [
        {
            "run_id": run_id,
            "trial_id": trial,
            "worker_trials_before": before,
            "warmup": n == 0,
            "epoch_time_s": t,
            "status": status,
        }  # fmt: skip
        for n, t in enumerate(epochs)
    ]


def test_warm_up_is_grouped_into_processes_first_trials_and_later_ones():
    """The docs' first-trial warm-up figure had no script behind it and did not reproduce (review 155): the script
    groups each trial's warm-up epoch and median steady epoch by worker_trials_before, the two runs' trials (one
    warm worker, fresh workers) told apart by run as well as trial id, and a failed trial left out."""
    frame = pd.DataFrame(
        _rows("warm", "s0", 0, [0.30, 0.05, 0.07])
        + _rows("warm", "s1", 1, [0.10, 0.04, 0.04])
        + _rows("warm", "s2", 2, [0.12, 0.06, 0.06])
        + _rows("warm", "s3", 3, [0.14, 0.05, 0.05])
        + _rows("fresh", "s0", 0, [0.50, 0.08, 0.08])  # the same trial id as the warm run's first
        + _rows("fresh", "s1", 0, [9.0, 9.0, 9.0], status="failed")
    )
    figures = _benchmark().warmup_by_trials_before(frame)
    assert figures == {
        "first_trials": 2,
        "first_warmup_s_median": 0.4,
        "first_warmup_s_range": [0.3, 0.5],
        "first_steady_s_median": 0.07,
        "later_trials": 3,
        "later_warmup_s_median": 0.12,
        "later_warmup_s_range": [0.1, 0.14],
        "later_steady_s_median": 0.05,
    }


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--warmup-trials", "1", "Expected --warmup-trials >= 2."),
        ("--warmup-fresh-trials", "-1", "Expected --warmup-fresh-trials >= 0."),
    ],
)
def test_the_scheduling_benchmark_refuses_too_few_warm_up_trials_before_starting_anything(flag, value, expected):
    """A warm worker's warm-up needs its first trial and a later one to compare."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), flag, value],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 2 and f"{expected} Received: {value}." in done.stderr, done.stderr
