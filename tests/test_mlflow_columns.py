"""What of the results table reaches MLflow (``xfbench export --mlflow``): every column as a tag, a parameter or a
metric, or named in NOT_EXPORTED with the reason; the sizes as numbers; the steady-state medians summary.md reports.

Review finding 2: details_json, each trial's git_commit, worker_pid, worker_trials_before, worker_frameworks, attempt
and weights_sha256 reached MLflow nowhere, the sizes only as text tags, and the run table's epoch time was the last
epoch's, not the steady epochs' median.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_report import EPOCHS, _write_run

from harness import mlflow_export, results
from harness.cli import main
from harness.config import TrialConfig
from harness.summary import summarize
from harness.user_files import read_run_rows

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")

DETAILS = {"backbone": "deadbeef", "head": "svm", "feature_dim": 512, "scikit_learn_version": "1.5.0"}


def _export(run_dir: Path, rows: pd.DataFrame, experiment: str) -> dict[str, Any]:
    """``rows`` as the run's table, exported: each trial's MLflow run by its trial id."""
    from mlflow.tracking import MlflowClient

    rows.to_parquet(run_dir / "results.parquet")
    uri = f"sqlite:///{run_dir.parent / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", experiment]) == 0
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return {
        r.data.tags["xfbench.trial_id"]: r for r in client.search_runs([experiment_id], "tags.`xfbench.trial_id` != ''")
    }


def _two_phases(rows: pd.DataFrame, trial: pd.Series, times: list[float]) -> None:
    """``trial``'s rows as a transfer trial's: 3 frozen epochs, then 1 unfrozen (each phase's first a warm-up), with
    ``times`` as their epoch times and each phase's sizes."""
    frozen = trial & (rows["epoch"] <= 3)
    rows.loc[trial, "phase"] = np.where(frozen[trial], "frozen", "unfrozen")
    rows.loc[trial, "epoch"] = np.where(frozen[trial], rows.loc[trial, "epoch"], 1)
    rows.loc[trial, "warmup"] = rows.loc[trial, "epoch"] == 1
    rows.loc[trial, "epoch_time_s"] = times
    rows.loc[trial, "samples_per_s"] = [1000 / t for t in times]
    rows.loc[frozen, ["trainable_params", "frozen_params", "step_macs"]] = [100, 900, 2_000_000]
    rows.loc[trial & ~frozen, ["trainable_params", "frozen_params", "step_macs"]] = [1000, 0, 3_000_000]


def _every_column_held(rows: pd.DataFrame, trial_ids: list[str]) -> pd.DataFrame:
    """A value in every column of the schema somewhere: a transfer trial (its backbone's details, weights and each
    phase's size), a retried one run by another commit than run.json's, a failed one, MC dropout and the machine."""
    moved, retried, failed = (rows["trial_id"] == t for t in trial_ids)
    _two_phases(rows, moved, [0.9, 0.3, 0.4, 1.2])
    config = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=EPOCHS)
    rows.loc[moved, ["details_json", "weights", "weights_sha256", "backbone_test_acc", "inexact"]] = [
        json.dumps(DETAILS), "torchvision:resnet18", "ab" * 32, 0.91, "different conv algorithms",
    ]  # fmt: skip
    rows.loc[moved, "config_json"] = config.to_json()
    rows.loc[~moved, ["trainable_params", "frozen_params", "step_macs"]] = [1000, 0, 3_000_000]
    rows = rows.assign(
        attempt=np.where(retried, 1, 0), git_commit="abc", host="box", node="n1", cpu="AMD EPYC", gpu="H100",
        device="gpu", gpu_peak_mib=100.0, threads=4, worker_pid=4242, worker_trials_before=np.where(retried, 3, 0),
        worker_frameworks="torch", framework_env="TORCHDYNAMO_DISABLE=1", python_version="3.11.9",
        train_reg_loss=0.01, lr=0.1, other_cpus=0.5,
    )  # fmt: skip
    rows.loc[retried, ["git_commit", "variant"]] = ["def+dirty", "adam"]  # a resume ran it by another commit
    final = rows["test_acc"].notna()  # each trial's last row
    rows.loc[final, ["mc_test_acc", "mc_mean_prob", "mc_pred_std"]] = [0.9, 0.8, 0.05]
    rows.loc[failed & final, ["status", "error"]] = ["failed", "Expected a number. Received: NaN."]
    for column in results.COLUMNS:  # the test's premise: each column holds a value somewhere
        assert rows[column].astype("string").replace("", pd.NA).notna().any(), column
    return rows


def test_every_results_column_reaches_mlflow_as_a_tag_a_parameter_or_a_metric_or_is_named_with_a_reason(tmp_path):
    run_dir = _write_run(tmp_path, "run-c", "2026-01-01")
    rows = pd.read_parquet(run_dir / "results.parquet")
    trial_ids = list(dict.fromkeys(rows["trial_id"]))
    rows = _every_column_held(rows, [trial_ids[0], trial_ids[1], trial_ids[-1]])
    runs = _export(run_dir, rows, "c")
    names: set[str] = set()
    for run in runs.values():
        names |= set(run.data.tags) | set(run.data.params) | set(run.data.metrics)
    assert set(mlflow_export.NOT_EXPORTED) <= set(results.COLUMNS) and all(mlflow_export.NOT_EXPORTED.values())
    for column in results.COLUMNS:
        if column in mlflow_export.NOT_EXPORTED:
            continue
        if column == mlflow_export.CONFIG_COLUMN:  # the parameters: its settings flattened
            config = json.loads(rows.loc[rows["trial_id"] == trial_ids[0], column].iloc[0])
            settings = {k for k in mlflow_export.flatten(config) if k != "cache_dir" and "inject_" not in k}
            assert settings <= set(runs[trial_ids[0]].data.params), settings - set(runs[trial_ids[0]].data.params)
            continue
        where = mlflow_export.EXPORTED_AS.get(column)
        if where:  # a tag of another name, or a family of tags by its prefix
            assert any(n == where or (where.endswith(".") and n.startswith(where)) for n in names), (column, where)
        else:
            assert f"xfbench.{column}" in names or column in names, column
    moved, retried = runs[trial_ids[0]].data.tags, runs[trial_ids[1]].data.tags
    assert {k: moved[f"xfbench.details.{k}"] for k in DETAILS} == {k: str(v) for k, v in DETAILS.items()}
    assert (moved["xfbench.weights_sha256"], moved["xfbench.attempt"], moved["xfbench.git_commit"]) == (
        "ab" * 32, "0", "abc",
    )  # fmt: skip
    # the retried trial: its attempt, the commit and the warm worker that ran it, not the parent's run.json commit
    assert (retried["xfbench.attempt"], retried["xfbench.git_commit"]) == ("1", "def+dirty")
    assert (retried["xfbench.worker_pid"], retried["xfbench.worker_trials_before"]) == ("4242", "3")
    assert retried["xfbench.worker_frameworks"] == "torch"


def test_sizes_are_metrics_and_the_steady_medians_are_the_summarys(tmp_path):
    """One seed: each (case, backend) is one trial, so its MLflow run's steady medians are summary.md's figures, the
    transfer trial's those of its timed phase (the frozen one: 2 steady epochs, the unfrozen none)."""
    run_dir = _write_run(tmp_path, "run-s", "2026-01-01", seeds=1)
    rows = pd.read_parquet(run_dir / "results.parquet")
    moved = rows["trial_id"] == rows["trial_id"].iloc[0]
    _two_phases(rows, moved, [0.9, 0.3, 0.4, 1.2])
    rows.loc[~moved, ["trainable_params", "frozen_params", "step_macs"]] = [1000, 0, 3_000_000]
    rows = rows.assign(threads=4)
    runs = _export(run_dir, rows, "s")
    summary = summarize(read_run_rows(run_dir)).per_backend
    assert len(runs) == len(summary)
    for trial_id, run in runs.items():
        metrics, trial = run.data.metrics, rows[rows["trial_id"] == trial_id]
        # numbers MLflow filters and charts (params > 500), beside the text tags
        assert (metrics["params"], metrics["forward_macs"], metrics["threads"]) == (1000.0, 1e6, 4.0)
        assert run.data.tags["xfbench.params"] == "1000"
        case = summary[(summary["model"] == trial["model"].iloc[0]) & (summary["backend"] == trial["backend"].iloc[0])]
        assert metrics["steady_epoch_time_s_median"] == case["epoch_time_s_median"].item()
        assert metrics["steady_samples_per_s_median"] == case["samples_per_s_median"].item()
    two = runs[rows["trial_id"].iloc[0]]
    assert two.data.metrics["steady_epoch_time_s_median"] == pytest.approx(0.35)  # frozen epochs 2 and 3
    assert two.data.metrics["epoch_time_s"] == 1.2  # what MLflow's run table showed: the last epoch's, a warm-up
    assert two.data.tags["xfbench.timed_phase"] == "frozen"
    sizes = {k: v for k, v in two.data.metrics.items() if k.split(".")[0] in mlflow_export.PHASE_TAGS}
    assert sizes == {
        "trainable_params.frozen": 100.0, "trainable_params.unfrozen": 1000.0,
        "frozen_params.frozen": 900.0, "frozen_params.unfrozen": 0.0,
        "step_macs.frozen": 2e6, "step_macs.unfrozen": 3e6,
    }  # fmt: skip
    one = next(r for t, r in runs.items() if t != rows["trial_id"].iloc[0])  # the same in each phase: one value
    assert {k: v for k, v in one.data.metrics.items() if k.split(".")[0] in mlflow_export.PHASE_TAGS} == {
        "trainable_params": 1000.0, "frozen_params": 0.0, "step_macs": 3e6,
    }  # fmt: skip
    assert "xfbench.timed_phase" not in one.data.tags
