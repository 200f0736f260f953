"""Warm workers: each backend's worker processes run many trials, one framework per process, and nothing of one
trial reaches the next (real Ray Tune, tiny data)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from golden_metrics import metric_table

from harness.config import RuntimeOptions, TrialConfig
from harness.models import ModelOptions
from harness.plan import RunPlan
from harness.runner import execute
from harness.scheduler import SchedulerSettings

pytestmark = pytest.mark.ray

BASE = TrialConfig(strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=2,
                   suite="warm", model_options=ModelOptions())  # fmt: skip


def _trials() -> list[TrialConfig]:
    # cnn_small has dropout: its masks, the batch order and the initial weights all come from the trial's seed.
    return [replace(BASE, backend=b, seed=s) for b in ("torch", "tensorflow") for s in (0, 1)]


def _run(tmp_path, name: str, trials: list[TrialConfig], fresh: bool) -> pd.DataFrame:
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_concurrent=1, fresh_workers=fresh)
    return execute(RunPlan.of_trials(trials), results_dir=tmp_path, run_id=name, settings=settings).frame


def test_warm_workers_keep_one_framework_each_and_change_no_number(tmp_path):
    # A torch trial that raises comes first: its process must not run the next trial.
    failing = replace(BASE, seed=9, runtime=RuntimeOptions(inject_fault="raise@epoch1"))
    warm = _run(tmp_path, "warm", [failing, *_trials()], fresh=False)
    fresh = _run(tmp_path, "fresh", _trials(), fresh=True)

    trials_per_pid = warm.groupby("worker_pid")["trial_id"].nunique()
    assert trials_per_pid.max() >= 2, "no worker was reused"
    for pid, rows in warm.groupby("worker_pid"):
        assert rows["backend"].nunique() == 1, f"process {pid} ran trials of {sorted(rows['backend'].unique())}"
        assert set(rows["worker_frameworks"]) == {rows["backend"].iloc[0]}, f"process {pid} imported two frameworks"
    failed_pids = set(warm.loc[warm["trial_id"] == failing.trial_id, "worker_pid"].dropna())
    later_torch = warm[(warm["backend"] == "torch") & (warm["trial_id"] != failing.trial_id)]
    assert failed_pids and not failed_pids & set(later_torch["worker_pid"]), "a failed worker ran another trial"
    assert fresh.groupby("worker_pid")["trial_id"].nunique().max() == 1, "--fresh-workers reused a process"

    ok = warm[warm["trial_id"] != failing.trial_id]
    pd.testing.assert_frame_equal(metric_table(ok), metric_table(fresh), check_exact=True)
