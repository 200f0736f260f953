"""Real Ray Tune on tiny data: searches with ASHA per backend, retries, failures, killed workers, resume,
shipped data."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.config import FaultInjection, OptimizerConfig, RuntimeOptions, TransferOptions, TrialConfig
from harness.models import ModelOptions
from harness.plan import RunPlan
from harness.preflight import datasets_to_ship
from harness.results import read_results
from harness.runner import execute
from harness.scheduler import SchedulerSettings, tune_error_summary
from harness.summary import final_rows

pytestmark = pytest.mark.ray

XFBENCH = str(Path(sys.executable).with_name("xfbench"))
TINY = ["--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--hidden", "16"]


def _cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [XFBENCH, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, "COLUMNS": "200"}
    )
    return proc


def _in_process_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``xfbench ARGS`` in this process, joining the session's Ray (the ``shared_ray`` fixture) instead of starting
    its own: the process boundary is not what these tests are about (the killed-driver tests start real drivers,
    then resume here). Returns what ``_cli`` returns: the exit code, stdout and stderr."""
    from harness.cli import main

    capsys.readouterr()
    code = main(args)
    printed = capsys.readouterr()
    return subprocess.CompletedProcess(["xfbench", *args], code, printed.out, printed.err)


def _in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``_in_process_run``'s exit code and stdout."""
    done = _in_process_run(args, capsys)
    return done.returncode, done.stdout


def _experiment_trials(path: Path) -> list[dict]:
    """The trial configs Tune itself recorded for one experiment."""
    from ray.tune import ExperimentAnalysis

    return [t.config for t in ExperimentAnalysis(str(path)).trials]


def test_tune_searches_each_backend_in_its_own_experiment_with_asha_and_reruns_each_best(
    tmp_path, shared_ray, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")
    code, stdout = _in_process(
        [
            "tune",
            *TINY,
            "--epochs",
            "3",
            "--space",
            "lr=choice:0.3,0.003,0.0003",
            "--search",
            "grid",
            "--num-samples",
            "1",
            "--asha",
            "--grace-period",
            "1",
            "--reduction-factor",
            "2",
            "--final-seeds",
            "2",
            "--reference",
            "tensorflow",
            "--results-dir",
            str(tmp_path),
            "--run-id",
            "tune-e2e",
        ],
        capsys,
    )
    assert code == 0, stdout[-3000:]
    frame = read_results(tmp_path / "tune-e2e")
    search = frame[frame["stage"] == "search"]
    assert search.groupby("backend")["trial_id"].nunique().to_dict() == {"tensorflow": 3, "torch": 3}
    # picked by validation, a sample scores no test split; the re-runs of each pick do
    assert search["test_acc"].isna().all()
    finals = frame[frame["stage"] == "final"]
    assert finals.groupby("trial_id")["test_acc"].last().notna().all()
    # the terminal shows the search too: every sampled lr per backend, and which one each backend picked
    searched = stdout.split("Search: val_acc")[1].split("Per backend")[0]
    assert all(f" {lr} " in searched for lr in ("0.3", "0.003", "0.0003")), searched
    picks = [line for line in searched.splitlines() if line.startswith("scratch") and line.rstrip().endswith("best")]
    assert len(picks) == 2, searched

    # One Tune experiment per backend, holding only that backend's trials: no scheduler saw the other framework.
    experiments = sorted(p.name for p in (tmp_path / "_ray").iterdir())
    assert experiments == [
        "tune-e2e-final-tensorflow",
        "tune-e2e-final-torch",
        "tune-e2e-search-0-torch",
        "tune-e2e-search-1-tensorflow",
    ]
    for name, backend in (("tune-e2e-search-0-torch", "torch"), ("tune-e2e-search-1-tensorflow", "tensorflow")):
        configs = _experiment_trials(tmp_path / "_ray" / name)
        assert len(configs) == 3 and {c["job"]["base"]["backend"] for c in configs} == {backend}

    # The same grid (and seed) gives both backends the same sampled learning rates per sample index.
    lrs = (
        search.assign(
            lr_cfg=search["config_json"].map(lambda c: json.loads(c)["optimizer"]["lr"]), sample=search["variant"]
        )
        .groupby(["backend", "sample"])["lr_cfg"]
        .first()
        .unstack(0)
    )
    assert (lrs["torch"] == lrs["tensorflow"]).all() and sorted(set(lrs["torch"])) == [0.0003, 0.003, 0.3]

    # ASHA stopped trials, each only below a same-backend trial that reached its epoch first.
    epochs = search.dropna(subset=["epoch"]).groupby("trial_id")["epoch"].max()
    stopped = epochs[epochs < 3]
    assert len(stopped) >= 1, epochs.to_dict()
    for trial_id, last_epoch in stopped.items():
        own = search[search["trial_id"] == trial_id]
        peers = search[
            (search["backend"] == own["backend"].iloc[0])
            & (search["epoch"] == last_epoch)
            & (search["trial_id"] != trial_id)
        ]
        assert own[own["epoch"] == last_epoch]["val_acc"].iloc[0] < peers["val_acc"].max()

    finals = frame[frame["stage"] == "final"]
    assert finals.groupby("backend")["seed"].unique().map(sorted).to_dict() == {"tensorflow": [1, 2], "torch": [1, 2]}
    assert set(finals["variant"]) == {"tuned"}
    # each backend re-ran the learning rate of its search trial with the highest val_acc at its last epoch
    last = search.dropna(subset=["val_acc"]).sort_values("epoch").groupby("trial_id").last()
    last = last.assign(lr=last["config_json"].map(lambda c: json.loads(c)["optimizer"]["lr"]))
    best = last.sort_values("val_acc", ascending=False, kind="stable").groupby("backend")["lr"].first().to_dict()
    picked = {
        b: json.loads(c)["optimizer"]["lr"] for b, c in zip(finals["backend"], finals["config_json"], strict=True)
    }
    assert picked == best, (picked, last[["backend", "lr", "epoch", "val_acc"]])
    summary = (tmp_path / "tune-e2e" / "summary.md").read_text()
    assert "## Search" in summary and "| scratch | mlp+tuned | digits |" in summary and "**best**" in summary
    # --reference reaches the files, not only the terminal
    assert "## tensorflow vs torch" in summary and "Statistics vs tensorflow" in stdout
    report = tmp_path / "tune-e2e" / "report.html"  # drawn whenever matplotlib (the report extra) is installed
    if importlib.util.find_spec("matplotlib") is not None:
        page = report.read_text()
        assert "Statistics vs tensorflow" in page
        assert "Search: val_acc at each trial" in page and ">best<" in page  # the search table, as in summary.md
    # --format json carries the search too: every sampled point per backend, one pick each
    from harness.plan import read_run_file
    from harness.reporting import machine_summary
    from harness.summary import summarize

    plan = read_run_file(tmp_path / "tune-e2e").plan.search
    outcome = SimpleNamespace(status="finished", run_id="tune-e2e", run_dir=tmp_path, frame=frame, wall_time_s=1.0)
    machine = machine_summary(summarize(frame), outcome, "json", plan)  # type: ignore[arg-type]
    points = json.loads(machine)["tables"]["search"]
    assert len(points) == 6 and sorted(p["backend"] for p in points if p["best"]) == ["tensorflow", "torch"]
    info = json.loads((tmp_path / "tune-e2e" / "run.json").read_text())
    assert info["kind"] == "tune" and info["tune"]["algorithm"] == "grid" and info["status"] == "finished"
    if importlib.util.find_spec("mlflow") is not None:  # MLflow shows the picks and ASHA's stops as the table does
        from mlflow.tracking import MlflowClient

        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        # a tune recorded before samples stopped scoring the test split: their test accuracy is not exported
        recorded = tmp_path / "tune-e2e" / "results.parquet"
        frame.assign(test_acc=frame["test_acc"].where(frame["stage"] != "search", 0.5)).to_parquet(recorded)
        code, _ = _in_process(["export", "tune-e2e", "--results-dir", str(tmp_path), "--mlflow", uri], capsys)
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("xfbench").experiment_id
        scored = {(r.data.tags["xfbench.stage"], "test_acc" in r.data.metrics) for r in client.search_runs([experiment])
                  if "xfbench.trial_id" in r.data.tags}  # fmt: skip
        assert scored == {("search", False), ("final", True)}, scored
        tags = {r.data.tags["xfbench.trial_id"]: r.data.tags for r in client.search_runs([experiment], "")
                if "xfbench.trial_id" in r.data.tags}  # fmt: skip
        assert code == 0 and len(tags) == frame["trial_id"].nunique()
        assert sorted(t["xfbench.backend"] for t in tags.values() if t.get("xfbench.search_best")) == [
            "tensorflow",
            "torch",
        ]
        assert {i for i, t in tags.items() if t.get("xfbench.stopped_early")} == set(stopped.index)
        # the parent run holds the search, for MLflow's table of runs to set tunes side by side
        (parent,) = [r for r in client.search_runs([experiment], "") if "xfbench.trial_id" not in r.data.tags]
        searched = parent.data.params
        assert searched["search.algorithm"] == "grid" and searched["search.metric"] == "val_acc"
        assert json.loads(searched["search.space.optimizer.lr.values"]) == [0.3, 0.003, 0.0003]
        assert searched["search.num_samples"] == str(info["tune"]["num_samples"])
        assert not any(key.startswith("search.bases") for key in searched)


def _tiny_trial(suite: str, epochs: int) -> TrialConfig:
    """A 16-unit mlp on digits in torch, seed 0: the trial the fault tests vary."""
    return TrialConfig(
        strategy="scratch",
        model="mlp",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=epochs,
        model_options=ModelOptions(hidden=(16,)),
        suite=suite,
    )


def test_failed_diverged_killed_and_retried_trials_are_recorded_while_the_others_finish(tmp_path, shared_ray):
    base = _tiny_trial("faults", epochs=2)
    marker = tmp_path / "raised-once"
    trials = [
        base,
        replace(base, seed=1, runtime=RuntimeOptions(inject_fault=FaultInjection("raise-once", 1, str(marker)))),
        replace(base, seed=2, runtime=RuntimeOptions(inject_fault=FaultInjection("kill", 1))),
        replace(base, seed=3, optimizer=OptimizerConfig("sgd", lr=1e30)),
    ]
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=1)
    outcome = execute(RunPlan.of_trials(trials), results_dir=tmp_path, run_id="faults", settings=settings)
    frame = outcome.frame
    by_trial = {t: g for t, g in frame.groupby("trial_id")}
    ok, retried, killed, diverged = (by_trial[t.trial_id] for t in trials)

    assert ok["status"].tolist() == ["ok", "ok"] and ok["attempt"].tolist() == [0, 0]
    # raised once, then the retry finished: the failed attempt stays as history, the tables use the retry
    assert retried[retried["attempt"] == 0]["status"].tolist() == ["ok", "failed"]
    assert "injected fault" in retried[retried["status"] == "failed"]["error"].iloc[0]
    assert retried[retried["attempt"] == 1]["status"].tolist() == ["ok", "ok"]
    # SIGKILLed after its first epoch, twice (one retry): the epoch it reported survives, each death is recorded
    assert killed["attempt"].tolist() == [0, 0, 1, 1] and killed["status"].tolist() == ["ok", "failed", "ok", "failed"]
    # Tune's own words for the death, not a generic placeholder
    assert all("actor died unexpectedly" in e for e in killed[killed["status"] == "failed"]["error"]), killed["error"]
    # the killed worker's rows come from the driver, not its own machine: they say what that attempt's worker said
    # in its last row (they were empty, and threads the planned count, not the CPUs Ray granted)
    for attempt in (0, 1):
        rows = killed[killed["attempt"] == attempt].set_index("status")
        columns = ["host", "node", "worker_pid", "worker_frameworks", "threads", "config_json"]
        assert rows.loc["failed", columns].tolist() == rows.loc["ok", columns].tolist()
        assert rows.loc["failed", "host"] == socket.gethostname() and rows.loc["failed", "worker_pid"] > 0
    failure = retried[retried["status"] == "failed"].iloc[0]  # the worker's own failure row names its process
    assert failure["worker_pid"] == retried[retried["attempt"] == 0]["worker_pid"].iloc[0] > 0
    assert failure["worker_frameworks"] == "torch"
    assert diverged["status"].tolist() == ["diverged"] and diverged["epoch"].tolist() == [1]
    finals = final_rows(frame).set_index("trial_id")["status"].to_dict()
    assert finals == {
        trials[0].trial_id: "ok",
        trials[1].trial_id: "ok",
        trials[2].trial_id: "failed",
        trials[3].trial_id: "diverged",
    }
    row = outcome.summary.per_backend.iloc[0]
    assert (row["trials"], row["ok"], row["failed"], row["diverged"]) == (4, 2, 1, 1)
    assert not outcome.all_ok


def test_a_trials_error_is_the_last_failures_meaningful_lines_of_tunes_error_text():
    # Tune appends one block per failure to error.txt; the row gets the last one, without Ray's indented details
    died = (
        "The actor died unexpectedly before finishing this task.\n\tclass_name: ImplicitFunc\n\tpid: 25846\n"
        "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR\n"
    )
    raised = (
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1, ip=192.0.2.2)\n"
        '  File "harness/scheduler.py", line 180, in _trainable\n    raise RuntimeError("x")\n'
        "RuntimeError: injected fault 'raise-once' at epoch 1 (its end)\n"
    )
    text = (
        f"Failure # 1 (occurred at 2026-12-03_22-59-28)\n{raised}Failure # 2 (occurred at 2026-12-03_22-59-30)\n{died}"
    )
    assert tune_error_summary(text) == (
        "The actor died unexpectedly before finishing this task. The actor is dead because its worker process has "
        "died. Worker exit type: SYSTEM_ERROR"
    )
    assert tune_error_summary(f"Failure # 1 (occurred at 2026-12-03_22-59-28)\n{raised}") == (
        "RuntimeError: injected fault 'raise-once' at epoch 1 (its end)"
    )
    assert len(tune_error_summary("x" * 5000)) == 400
    assert tune_error_summary("") == "trial process died without reporting an error"
    assert (
        tune_error_summary("\tpid: 1\n\tclass_name: ImplicitFunc\n") == "trial process died without reporting an error"
    )


def test_trials_whose_backbone_did_not_train_are_recorded_skipped_without_starting_a_worker(
    tmp_path, shared_ray, capsys
):
    """The backbone's pretrain trial diverges (SGD at lr 1e30): the two trials that start from it get one
    ``skipped`` row each from the driver, naming it, instead of each failing in a worker; the rest of the run
    finishes, and run.json holds the workers' framework version, not the skipped rows' empty one. A resume takes the
    skipped trials up again (a failed pretrain trial would run again; this diverged one is kept: skipped again)."""
    from harness.backbone import pretrain_trial
    from harness.plan import read_run_file, write_run_file
    from harness.runner import resume

    fine_tune = TrialConfig(
        strategy="fine_tune",
        model="mlp",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=1,
        model_options=ModelOptions(hidden=(16,)),
        suite="skips",
        transfer=TransferOptions(source_epochs=1, source_optimizer=OptimizerConfig("sgd", lr=1e30)),
    )
    # the second target is another suite's: one pretrain trial (named after the first) trains both their backbone
    other_suite = replace(fine_tune, strategy="feature_extraction", suite="skips_b")
    trials = [fine_tune, other_suite, replace(fine_tune, strategy="scratch")]
    from harness.data.registry import data_fingerprint, load_dataset

    # as the run keys its trials: by what its data and model hold (the backbone's recipe, so its name, holds them)
    digits = data_fingerprint(load_dataset("digits", None, download=False))
    pretrain_id = pretrain_trial(replace(fine_tune, data_key=digits, model_key="")).trial_id
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=1)
    outcome = execute(RunPlan.of_trials(trials), results_dir=tmp_path, run_id="skips", settings=settings)

    finals = final_rows(outcome.frame).set_index("trial_id")
    assert list(outcome.frame[outcome.frame["stage"] == "pretrain"]["trial_id"].unique()) == [pretrain_id]
    assert finals.loc[pretrain_id, "status"] == "diverged"
    for target in trials[:2]:
        rows = outcome.frame[outcome.frame["trial_id"] == target.trial_id]
        assert rows["status"].tolist() == ["skipped"] and rows["stage"].tolist() == ["trials"]
        assert rows["error"].iloc[0] == f"its backbone's pretrain trial {pretrain_id} ended diverged"
        # written by the driver: no worker ran it, so no process, machine or framework version is known
        assert rows["worker_pid"].isna().all() and set(rows["host"]) == {""} and set(rows["framework_version"]) == {""}
    assert finals.loc[trials[2].trial_id, "status"] == "ok"
    per_case = outcome.summary.per_backend.set_index("strategy")
    for strategy in ("fine_tune", "feature_extraction"):
        assert per_case.loc[strategy, ["trials", "ok", "failed", "skipped"]].tolist() == [1, 0, 0, 1]
    assert outcome.summary_markdown.count("0/1 ok, 1 skipped") == 2
    assert not outcome.all_ok
    recorded = json.loads((outcome.run_dir / "run.json").read_text())
    assert recorded["trial_status"] == {"diverged": 1, "ok": 1, "skipped": 2}
    # the skipped rows (first by trial id) hold no version: the one the workers recorded stands for torch
    assert recorded["framework_versions"] == {"torch": outcome.frame["framework_version"].max()} != {"torch": ""}

    # Finished with no failed trial: a resume would skip them again (the diverged backbone is a result, kept), so
    # it is refused and the run names no resume command.
    from harness.cli import _say_how_to_rerun_failures
    from harness.errors import InputError

    with pytest.raises(InputError, match="with none \\(a diverged trial, and one skipped for a diverged backbone"):
        resume(tmp_path, "skips", settings)
    _say_how_to_rerun_failures(outcome, "run")
    assert "--resume" not in capsys.readouterr().err
    # Resumed as if interrupted: the skipped trials are up again; the diverged pretrain trial is kept, so they are
    # skipped again, without a worker; the finished trials are not re-run.
    run_file = read_run_file(outcome.run_dir)
    write_run_file(outcome.run_dir, replace(run_file, record=replace(run_file.record, status="interrupted")))
    resumed = resume(tmp_path, "skips", settings)
    again = read_run_file(outcome.run_dir).record.resumes[-1]
    assert sorted(again.failed_trials_rerun) == sorted(t.trial_id for t in trials[:2])
    statuses = final_rows(resumed.frame).set_index("trial_id")["status"].to_dict()
    assert statuses == final_rows(outcome.frame).set_index("trial_id")["status"].to_dict()
    assert (resumed.frame["status"] == "skipped").sum() == 2
    kept = outcome.frame["trial_id"].isin([pretrain_id, trials[2].trial_id])
    kept_again = resumed.frame["trial_id"].isin([pretrain_id, trials[2].trial_id])
    assert resumed.frame[kept_again]["timestamp"].tolist() == outcome.frame[kept]["timestamp"].tolist()  # not re-run


def test_a_finished_runs_failed_trial_is_rerun_alone_by_resume_and_then_there_is_nothing_to_resume(
    tmp_path, shared_ray, capsys
):
    """A worker that raised (killed, out of memory) leaves a finished run with a failed trial: the run says how to
    rerun it, `--resume` runs that trial alone, and a run whose trials all ended is refused with exit 2."""
    from harness.cli import _say_how_to_rerun_failures
    from harness.plan import read_run_file

    base = _tiny_trial("reruns", epochs=1)
    marker = tmp_path / "raised-once"
    flaky = replace(base, seed=1, runtime=RuntimeOptions(inject_fault=FaultInjection("raise-once", 0, str(marker))))
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=0)
    outcome = execute(RunPlan.of_trials([base, flaky]), results_dir=tmp_path, run_id="reruns", settings=settings)
    assert final_rows(outcome.frame).set_index("trial_id")["status"].to_dict() == {
        base.trial_id: "ok",
        flaky.trial_id: "failed",
    }
    capsys.readouterr()
    _say_how_to_rerun_failures(outcome, "run")
    resume_command = f"xfbench run --resume reruns --results-dir {tmp_path.resolve()}"
    assert f"1 trial(s) failed: rerun them alone (and any skipped for them) with `{resume_command}`" in (
        capsys.readouterr().err
    )

    code, _ = _in_process(["run", "--resume", "reruns", "--results-dir", str(tmp_path)], capsys)
    assert code == 0
    resumed = read_results(outcome.run_dir)
    assert final_rows(resumed).set_index("trial_id")["status"].to_dict() == {base.trial_id: "ok", flaky.trial_id: "ok"}
    kept = resumed["trial_id"] == base.trial_id
    assert (
        resumed[kept]["timestamp"].tolist()
        == outcome.frame[outcome.frame["trial_id"] == base.trial_id]["timestamp"].tolist()
    )  # not re-run
    record = read_run_file(outcome.run_dir).record
    assert record.status == "finished" and record.resumes[-1].failed_trials_rerun == (flaky.trial_id,)
    assert record.resumes[-1].partial_rows_discarded == 0  # the failed trial's rows were whole, not cut short
    # why it had failed, its rows now replaced by the rerun's, stays in run.json
    assert list(record.resumes[-1].rerun_errors) == [flaky.trial_id]
    assert record.resumes[-1].rerun_errors[flaky.trial_id].startswith("failed: ")
    assert "injected fault" in record.resumes[-1].rerun_errors[flaky.trial_id]
    assert record.trial_status == {"ok": 2}

    from harness.cli import main

    assert main(["run", "--resume", "reruns", "--results-dir", str(tmp_path)]) == 2
    assert "finished one with failed trials. Received: 'reruns' finished at" in capsys.readouterr().err


def test_a_finished_tunes_failed_final_trial_is_rerun_alone_by_resume_without_reopening_the_search(
    tmp_path, shared_ray, capsys
):
    """A final-stage trial whose worker raised leaves a finished tune with a failed trial after its search: the tune
    says how to rerun it, and `--resume` runs that trial alone on the same best config, the search's rows (a diverged
    sample's too) kept as they were and no search experiment started; then there is nothing to resume."""
    from harness.cli import _say_how_to_rerun_failures, main
    from harness.plan import read_run_file
    from harness.search import parse_space
    from harness.tuning import TunePlan

    marker = tmp_path / "raised-once"
    failing = FaultInjection("raise-once", 0, str(marker), seed=1)  # the samples run seed 0, the final stage 1 and 2
    base = replace(_tiny_trial("final-fails", epochs=1), runtime=RuntimeOptions(inject_fault=failing))
    search = TunePlan(
        bases=(base,), space=parse_space(["lr=choice:0.1,1e30"]), algorithm="grid", num_samples=1, final_seeds=2
    )
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=0)
    plan = RunPlan("tune", "tune", "tune", search=search)
    outcome = execute(plan, results_dir=tmp_path, run_id="final-fails", settings=settings)
    before = read_results(outcome.run_dir)
    statuses = final_rows(before).groupby(["stage", "status"])["trial_id"].nunique().to_dict()
    assert statuses == {("search", "diverged"): 1, ("search", "ok"): 1, ("final", "failed"): 1, ("final", "ok"): 1}
    capsys.readouterr()
    _say_how_to_rerun_failures(outcome, "tune")
    command = f"xfbench tune --resume final-fails --results-dir {tmp_path.resolve()}"
    assert (
        "1 trial(s) failed outside the search: rerun them alone (and any skipped for them, the samples that ran kept "
        f"as they ended) with `{command}`" in capsys.readouterr().err
    )

    code, _ = _in_process(["tune", "--resume", "final-fails", "--results-dir", str(tmp_path)], capsys)
    assert code == 0
    after = read_results(outcome.run_dir)
    assert set(final_rows(after[after["stage"] == "final"])["status"]) == {"ok"}
    rerun = final_rows(before[before["status"] == "failed"])["trial_id"].tolist()
    kept = ~after["trial_id"].isin(rerun)
    assert after[kept]["timestamp"].tolist() == before[~before["trial_id"].isin(rerun)]["timestamp"].tolist()
    assert read_run_file(outcome.run_dir).record.resumes[-1].failed_trials_rerun == tuple(rerun)
    assert not list((tmp_path / "_ray").glob("final-fails-search-*-resume1"))  # no search experiment ran again
    assert list((tmp_path / "_ray").glob("final-fails-final-resume1*"))

    assert main(["tune", "--resume", "final-fails", "--results-dir", str(tmp_path)]) == 2
    assert "or a finished one whose final stage has failed trials. Received: 'final-fails'" in capsys.readouterr().err


def test_under_asha_a_sample_that_diverged_in_its_last_epoch_does_not_hand_its_worker_on(tmp_path, shared_ray, capsys):
    """ASHA stops every trial at its last epoch (and at a rung): a diverged sample stopped there never reached the
    WorkerRetired that ends its process, and Tune handed that process to the next sample."""
    # one at a time: 0.1 sets the rung's cutoff, 1e30 diverges in epoch 1 and is stopped there, then 0.03 starts
    args = [*TINY, "--backend", "torch", "--epochs", "2", "--space", "lr=choice:0.1,1e30,0.03", "--search", "grid"]
    args += ["--asha", "--grace-period", "1", "--reduction-factor", "2", "--max-concurrent", "1", "--final-seeds", "1"]
    code, out = _in_process(["tune", *args, "--results-dir", str(tmp_path), "--run-id", "asha-div"], capsys)
    assert code == 0, out[-3000:]
    frame = read_results(tmp_path / "asha-div")
    samples = final_rows(frame[frame["stage"] == "search"]).sort_values("trial_id")  # +search000, 001, 002
    assert samples["status"].tolist() == ["ok", "diverged", "ok"]
    pids = samples["worker_pid"].tolist()
    assert pids[0] == pids[1] != pids[2]  # warm workers, but none after the divergence


def test_a_replayed_diverged_sample_ends_in_error_to_its_searcher_as_it_did_live(
    tmp_path, shared_ray, capsys, monkeypatch
):
    """A tune whose driver died between its search and its final stage replays its samples on resume: a diverged
    one had ended without an error, so Optuna recorded it COMPLETE (live: FAIL) and TPE's later points moved. And
    the replayed samples count as done in the progress (a finished resume showed "1/3 trials")."""
    from ray.tune import ExperimentAnalysis

    import harness.reporting
    from harness.trial_lines import TrialLines

    counted = {"total": 0, "done": 0}

    class Counting(TrialLines):
        def extend(self, more_trials: int) -> None:
            counted["total"] += more_trials
            super().extend(more_trials)

        def trial_done(self, trial_id: str) -> None:
            counted["done"] += 1
            super().trial_done(trial_id)

    lines: list[str] = []
    monkeypatch.setattr(harness.reporting, "run_progress", lambda max_failures: Counting(lines.append))

    from harness.results import safe_name
    from harness.search import parse_space
    from harness.tuning import TunePlan

    base = _tiny_trial("replayed", epochs=1)
    search = TunePlan(
        bases=(base,), space=parse_space(["lr=choice:1e30,0.1"]), algorithm="grid", num_samples=1, final_seeds=1
    )
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=1)
    outcome = execute(
        RunPlan("tune", "tune", "tune", search=search), results_dir=tmp_path, run_id="r", settings=settings
    )
    statuses = {}
    for name in ("r-search-0-torch", "r-search-0-torch-resume1"):
        if name.endswith("resume1"):  # as a driver killed before the final stage left the run
            finals = outcome.frame[outcome.frame["stage"] == "final"]["trial_id"].unique()
            for trial_id in finals:
                (outcome.run_dir / "parts" / f"{safe_name(trial_id)}.parquet").unlink()
            run_json = outcome.run_dir / "run.json"
            # the final stage had not begun (a run records when it begins: a resume then keeps the search)
            recorded = {**json.loads(run_json.read_text()), "status": "running", "final_began": None}
            run_json.write_text(json.dumps(recorded))
            code, out = _in_process(["tune", "--resume", "r", "--results-dir", str(tmp_path)], capsys)
            assert code == 0, out[-3000:]
            assert counted == {"total": 3, "done": 3}  # two samples replayed, the final trial run again
            # the replayed samples' lines say so, with their recorded status (they read a bare "ended" before)
            replayed = [line for line in lines if line.endswith("(replayed: it ended before the resume)")]
            assert len(replayed) == 2 and any(": diverged" in line for line in replayed), lines
        trials = ExperimentAnalysis(str(tmp_path / "_ray" / name)).trials
        statuses[name] = sorted((t.config["job"]["sample"], t.status) for t in trials)
    assert statuses["r-search-0-torch"] == statuses["r-search-0-torch-resume1"] == [(0, "ERROR"), (1, "TERMINATED")]
    frame = read_results(outcome.run_dir)
    samples = final_rows(frame[frame["stage"] == "search"])
    assert sorted(samples["status"]) == ["diverged", "ok"] and len(frame[frame["stage"] == "search"]) == 2


def test_a_search_whose_backbone_did_not_train_is_skipped_not_run(tmp_path, shared_ray, capsys, monkeypatch):
    """A search pins the backbone's optimizer to the base's (lr 1e30: its pretrain trial diverges): the backend's
    search experiment is not run, its base gets one ``skipped`` row, there is nothing to re-run, and tune exits 1."""
    monkeypatch.setenv("COLUMNS", "200")
    args = ["--strategy", "fine_tune", "--model", "mlp", "--dataset", "digits", "--hidden", "16", "--lr", "1e30"]
    code, stdout = _in_process(
        [
            "tune",
            *args,
            *("--backend", "torch", "--epochs", "1", "--source-epochs", "1", "--space", "lr=choice:0.1,0.01"),
            *("--search", "grid", "--final-seeds", "1", "--results-dir", str(tmp_path), "--run-id", "tune-skip"),
        ],
        capsys,
    )
    assert code == 1, stdout[-3000:]
    frame = read_results(tmp_path / "tune-skip")
    assert sorted(set(frame["stage"])) == ["pretrain", "search"]
    assert final_rows(frame[frame["stage"] == "pretrain"])["status"].tolist() == ["diverged"]
    search = frame[frame["stage"] == "search"]
    assert search["status"].tolist() == ["skipped"] and search["error"].iloc[0].endswith("ended diverged")
    assert sorted(p.name for p in (tmp_path / "_ray").iterdir()) == ["tune-skip-pretrain-torch"]
    summary = (tmp_path / "tune-skip" / "summary.md").read_text()
    assert "| fine_tune-mlp-digits | torch | none |  | 0 | n/a | skipped |  |" in summary


def test_a_tune_whose_backbone_pretrain_failed_resumes_that_pretrain_then_its_search(tmp_path, shared_ray, capsys):
    """A pretrain trial that failed (a worker killed or out of memory) skips the search experiments that need its
    backbone; the final stage then began with no trial, so the tune counted as ended with nothing to rerun: exit 1
    without a resume command, and `--resume` refused with exit 2. The resume reruns the pretrain trial, then that
    experiment's search and its final trial."""
    from harness.cli import _say_how_to_rerun_failures
    from harness.plan import read_run_file
    from harness.search import parse_space
    from harness.tuning import TunePlan, search_base

    fault = FaultInjection("raise-once", 0, str(tmp_path / "raised-once"))  # the pretrain trial starts first
    base = replace(
        _tiny_trial("pretrain-fails", epochs=1),
        strategy="fine_tune",
        transfer=TransferOptions(source_epochs=1),
        runtime=RuntimeOptions(inject_fault=fault),
    )
    search = TunePlan(
        bases=(search_base(base),),
        space=parse_space(["lr=choice:0.1,0.01"]),
        algorithm="grid",
        num_samples=1,
        final_seeds=1,
    )
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_failures=0)
    plan = RunPlan("tune", "tune", "tune", search=search)
    outcome = execute(plan, results_dir=tmp_path, run_id="pretrain-fails", settings=settings)
    count = lambda frame: final_rows(frame).groupby(["stage", "status"])["trial_id"].nunique().to_dict()  # noqa: E731
    assert count(outcome.frame) == {("pretrain", "failed"): 1, ("search", "skipped"): 1}
    capsys.readouterr()
    _say_how_to_rerun_failures(outcome, "tune")
    assert "1 trial(s) failed outside the search: rerun them alone" in capsys.readouterr().err
    code, _ = _in_process(["tune", "--resume", "pretrain-fails", "--results-dir", str(tmp_path)], capsys)
    assert code == 0
    after = read_results(outcome.run_dir)
    # the final trial (seed 1) trains from a backbone of its own seed: a second pretrain trial
    assert count(after) == {("pretrain", "ok"): 2, ("search", "ok"): 2, ("final", "ok"): 1}
    rerun = read_run_file(outcome.run_dir).record.resumes[-1].failed_trials_rerun
    assert sorted(rerun) == sorted(final_rows(outcome.frame)["trial_id"])  # the pretrain and the skipped base


def _signal_when(proc: subprocess.Popen, parts: Path, finished: int, sig: int, timeout: float = 300) -> int:
    """Send ``sig`` to the run's process group once ``finished`` trials have ended (SIGTERM: to the driver alone, as
    `kill PID` does); its exit status."""
    deadline = time.monotonic() + timeout
    while len(list(parts.glob("*.parquet"))) < finished:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted (this poll was starved: rerun)"
    if sig == signal.SIGTERM:
        proc.send_signal(sig)  # the Ray processes it started are left for the driver to end
    else:
        os.killpg(proc.pid, sig)  # the driver and the Ray processes it started: a dead terminal, or a terminal's Ctrl-C
    return proc.wait(timeout=60)


def _interrupted_then_resumed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
    run_id: str,
    finished: int,
    sig: int = signal.SIGKILL,
) -> tuple[dict, pd.DataFrame]:
    """Start ``xfbench <command>``, send ``sig`` once ``finished`` trials have ended (SIGKILL: the driver dies
    mid-run, run.json still says running; SIGINT: Ctrl-C, and SIGTERM: `kill`, `timeout`, the run ends interrupted,
    exit 130), resume it; the parts kept before the resume. The driver is a real process, since it is what the
    signal ends; the resume runs in this process on the session's Ray (``shared_ray``), which spares each test a
    cold Ray, CLI import and trial worker: it reads only what the dead driver left on disk either way."""
    results = tmp_path / "interrupted"
    with (tmp_path / "driver.err").open("w") as driver_err:
        proc = subprocess.Popen(
            [XFBENCH, command, *args, "--max-concurrent", "1", "--results-dir", str(results), "--run-id", run_id],
            stdout=subprocess.DEVNULL,
            stderr=driver_err,
            start_new_session=True,
            cwd=tmp_path,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal has it, even under nohup
        )
        code = _signal_when(proc, results / run_id / "parts", finished, sig)
    status = json.loads((results / run_id / "run.json").read_text())["status"]
    expected = (-9, "running") if sig == signal.SIGKILL else (130, "interrupted")
    assert (code, status) == expected, (tmp_path / "driver.err").read_text()[-3000:]
    before = {p.name: p.read_bytes() for p in (results / run_id / "parts").glob("*.parquet")}
    # Ctrl-C's run drew its report of what it had; a resume under --no-report must not leave that page beside
    # results it no longer shows
    no_report = ["--no-report"] if sig != signal.SIGKILL else []
    assert (results / run_id / "report.html").is_file() == bool(no_report)
    if sig != signal.SIGKILL:  # its summary.md says it stopped, not only run.json
        assert "**Interrupted**: " in (results / run_id / "summary.md").read_text()
    resumed = _in_process_run([command, "--resume", run_id, "--results-dir", str(results), *no_report], capsys)
    assert not no_report or not (results / run_id / "report.html").exists()
    assert "**Interrupted**" not in (results / run_id / "summary.md").read_text()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    if command == "run":  # said, not left to run.json
        assert f"kept {len(before)} finished trial(s) without re-running them" in resumed.stderr, resumed.stderr
    return before, read_results(results / run_id)


def test_a_run_resumed_after_its_driver_was_killed_matches_an_uninterrupted_run_without_rerunning(
    tmp_path, shared_ray, capsys
):
    # Trials long enough (about a second each in a warm worker) that the kill lands while some are still to run.
    args = [*TINY, "--hidden", "256,256", "--backend", "torch", "--epochs", "20", "--seeds", "3"]
    before, frame = _interrupted_then_resumed(tmp_path, capsys, "run", args, "killed", finished=1)
    run_dir = tmp_path / "interrupted" / "killed"
    # finished trials were neither re-run nor rewritten
    assert 1 <= len(before) < 3 and all(
        (run_dir / "parts" / name).read_bytes() == data for name, data in before.items()
    )
    # no trial twice, none missing
    assert frame.groupby("trial_id")["epoch"].apply(list).tolist() == [list(range(1, 21))] * 3
    assert set(frame["attempt"]) == {0} and set(frame["status"]) == {"ok"}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["resumes"][0]["finished_trials_kept"] == len(before)
    assert info["reference"] == "torch"  # recorded at the start (the default), kept by the resume
    resumed_experiment = _experiment_trials(tmp_path / "interrupted" / "_ray" / "killed-trials-resume1-torch")
    assert len(resumed_experiment) == 3 - len(before)

    code, out = _in_process(["run", *args, "--results-dir", str(tmp_path / "reference"), "--run-id", "whole"], capsys)
    assert code == 0, out[-3000:]
    whole = read_results(tmp_path / "reference" / "whole")
    accuracy = lambda f: final_rows(f).set_index("trial_id")["test_acc"].sort_index()  # noqa: E731
    pd.testing.assert_series_equal(accuracy(frame), accuracy(whole))
    table = lambda d: (d / "summary.md").read_text().split("## Per backend")[1].split("## torch vs tensorflow")[0]  # noqa: E731
    strip_times = lambda text: [line.split("|")[1:7] for line in text.splitlines() if line.startswith("| scratch")]  # noqa: E731
    assert strip_times(table(run_dir)) == strip_times(table(tmp_path / "reference" / "whole"))


def test_a_run_stopped_by_sigterm_ends_interrupted_as_by_ctrl_c_and_resumes(tmp_path, shared_ray, capsys):
    """`kill`, `timeout` or a cancelled CI job: Ray's SIGTERM handler in the driver exited at once (exit 15 and a C++
    stack dump), leaving run.json "running", no summary.md and no word of how to resume."""
    args = [*TINY, "--hidden", "256,256", "--backend", "torch", "--epochs", "20", "--seeds", "2"]
    before, frame = _interrupted_then_resumed(tmp_path, capsys, "run", args, "termed", finished=1, sig=signal.SIGTERM)
    assert len(before) == 1 and set(final_rows(frame)["status"]) == {"ok"} and frame["trial_id"].nunique() == 2
    assert json.loads((tmp_path / "interrupted" / "termed" / "run.json").read_text())["status"] == "finished"


def test_a_tune_stopped_by_ctrl_c_is_interrupted_and_its_resume_replays_finished_samples_instead_of_rerunning(
    tmp_path, shared_ray, capsys
):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it): exit 130 and run.json interrupted, and a trial
    it cut short is run again, not kept as finished. Tune's own SIGINT handler had ended the experiment
    "gracefully": exit 0, the run finished, the cut trials counted ok, nothing to resume."""
    args = [
        *TINY,
        "--backend",
        "torch",
        "--epochs",
        "2",
        "--space",
        "lr=choice:0.3,0.1,0.03,0.01",
        "--search",
        "grid",
        "--final-seeds",
        "1",
    ]
    before, frame = _interrupted_then_resumed(
        tmp_path, capsys, "tune", args, "tune-killed", finished=1, sig=signal.SIGINT
    )
    run_dir = tmp_path / "interrupted" / "tune-killed"
    assert all((run_dir / "parts" / name).read_bytes() == data for name, data in before.items())
    search = frame[frame["stage"] == "search"]
    assert search.groupby("trial_id")["epoch"].apply(list).tolist() == [[1, 2]] * 4
    assert sorted(json.loads(c)["optimizer"]["lr"] for c in search.groupby("trial_id")["config_json"].first()) == [
        0.01,
        0.03,
        0.1,
        0.3,
    ]
    # the resumed search experiment saw all four samples (two replayed from the records), and trained only the others
    resumed = _experiment_trials(tmp_path / "interrupted" / "_ray" / "tune-killed-search-0-torch-resume1")
    assert len(resumed) == 4
    finals = frame[frame["stage"] == "final"]
    assert finals["trial_id"].nunique() == 1 and finals["status"].eq("ok").all()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_an_optuna_tune_stopped_by_ctrl_c_resumes_drawing_the_points_an_uninterrupted_search_draws(
    tmp_path, shared_ray, capsys
):
    """A resumed Optuna tune restarted its sampler's generator: the first sample it asked for got sample 0's point
    again (the same numbers trained twice, the pick changed). Run one sample at a time, the resumed search's every
    point is the one its seed, its number and the results before it give (harness.tpe_search), as uninterrupted.
    And a sample that drew weight_decay=none (which its config records as the optimizer's default, 0.0: seed 0
    draws none for samples 0 and 1) is kept: the resume told Optuna 0.0, none of its choices, Optuna raised, and the
    kept sample turned "failed", its part replaced by that one row and the resume exiting 1 (review 154)."""
    pytest.importorskip("optuna")
    from harness.search import drawn_point, parse_space, tpe_startup_samples
    from harness.tpe_search import TpeSearch

    spaces = ["lr=loguniform:1e-3,0.5", "optimizer=choice:momentum,adam", "weight_decay=choice:0.001,none"]
    args = [*TINY, "--backend", "torch", "--epochs", "2", "--search", "optuna", "--num-samples", "4"]
    args += [arg for space in spaces for arg in ("--space", space)] + ["--final-seeds", "1"]
    before, frame = _interrupted_then_resumed(
        tmp_path, capsys, "tune", args, "optuna-cut", finished=1, sig=signal.SIGINT
    )
    assert 1 <= len(before) < 4
    parts = tmp_path / "interrupted" / "optuna-cut" / "parts"
    assert all((parts / name).read_bytes() == data for name, data in before.items())
    search = frame[frame["stage"] == "search"].sort_values(["trial_id", "epoch"])
    assert search.groupby("trial_id")["epoch"].apply(list).tolist() == [[1, 2]] * 4
    assert set(search["status"]) == {"ok"}
    space = parse_space(spaces)
    uninterrupted = TpeSearch(space, seed=0, startup=tpe_startup_samples(4), maximize=True)
    for number, (_, rows) in enumerate(search.groupby("trial_id", sort=True)):
        config = TrialConfig.from_dict(json.loads(rows["config_json"].iloc[0]))
        assert config.sample == number
        point = uninterrupted.suggest(number)
        assert drawn_point(space, config) == point, number
        assert number > 1 or point["optimizer.weight_decay"] is None  # drawn at random: none, kept or not
        uninterrupted.tell(number, point, float(rows["val_acc"].iloc[-1]), failed=False)
    assert frame[frame["stage"] == "final"]["status"].eq("ok").all()


def test_auto_ships_what_a_local_run_maps_from_shared_memory_and_what_a_cluster_carries_in_seconds():
    """--ship-data auto shipped nothing in a local run: every trial re-read, checked and standardised its files
    (CIFAR-10: 4 trials 20.3 s against 10.8 s shipped, docs/measurements.md). Locally it ships up to 1 GB (every
    registry dataset), on a cluster up to 256 MB; always ships any size, never none. The rows are the same either
    way (tests/test_warm_workers.py)."""
    trials = [TrialConfig("scratch", "mlp", name, "torch", seed=0, epochs=1) for name in ("small", "medium", "large")]
    sizes = {"small": 2**20, "medium": 300 * 2**20, "large": 2 * 2**30}  # 1 MB, 300 MB (over 256), 2 GB (over 1 GB)
    loaded = {name: SimpleNamespace(nbytes=size) for name, size in sizes.items()}

    def shipped(policy: str, address: str | None) -> list[str]:
        return sorted(datasets_to_ship(trials, policy, address, loaded=loaded))  # type: ignore[arg-type]

    assert shipped("auto", None) == ["medium", "small"]
    assert shipped("auto", "10.0.0.1:6379") == ["small"]
    assert shipped("always", None) == shipped("always", "10.0.0.1:6379") == ["large", "medium", "small"]
    assert shipped("never", None) == shipped("never", "10.0.0.1:6379") == []


def test_a_run_puts_each_shipped_dataset_in_the_object_store_once_whatever_its_experiments(shared_ray, digits):
    """Every experiment's tune.with_parameters put the whole delivery, its datasets inside, in the object store again,
    and Tune holds each such object until Ray shuts down: a copy of every dataset per experiment (a review: 150 MB
    then 300 MB of store after a run's torch and TensorFlow experiments). The delivery now holds references, each
    dataset put once; what an experiment puts is their ids."""
    import ray
    from ray import cloudpickle

    from harness.scheduler import delivery_of

    delivery = delivery_of({"digits": digits})
    (ref,) = delivery.datasets.values()
    assert isinstance(ref, ray.ObjectRef)
    assert len(cloudpickle.dumps(delivery)) < 2_000 < digits.nbytes, len(cloudpickle.dumps(delivery))
    assert np.array_equal(ray.get(ref).y_test, digits.y_test)


def test_shipped_data_reaches_workers_that_cannot_read_the_files(tmp_path, shared_ray):
    from test_data import write_mnist_like

    data_dir = tmp_path / "mnist"
    write_mnist_like(data_dir, n_train=5200, n_test=200)
    trial = TrialConfig(
        strategy="scratch",
        model="mlp",
        dataset="mnist",
        backend="torch",
        seed=0,
        epochs=1,
        model_options=ModelOptions(hidden=(8,)),
        data_dir=str(data_dir),
        suite="ship",
    )
    ship = datasets_to_ship([trial], "always", address=None)
    shutil.rmtree(data_dir)  # a node without the files: only the object store copy can serve the trial
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1)
    outcome = execute(RunPlan.of_trials([trial]), results_dir=tmp_path, run_id="shipped", settings=settings, ship=ship)
    assert outcome.frame["status"].tolist() == ["ok"], outcome.frame["error"].tolist()
    assert json.loads((outcome.run_dir / "run.json").read_text())["data_delivery"] == {"mnist": "object store"}


def test_optuna_searches_through_tunes_integration_with_a_seeded_sampler(tmp_path, shared_ray, capsys):
    pytest.importorskip("optuna")
    announced: list[logging.LogRecord] = []  # Optuna's INFO lines ("A new study created in memory"), without -v
    handler = logging.Handler()
    handler.emit = announced.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(handler)
    code, stdout = _in_process(
        [
            "tune",
            *TINY,
            "--backend",
            "torch",
            "--epochs",
            "1",
            "--space",
            "lr=loguniform:1e-3,0.5",
            "--space",
            "optimizer=choice:momentum,adam",
            "--search",
            "optuna",
            "--num-samples",
            "3",
            "--final-seeds",
            "1",
            "--results-dir",
            str(tmp_path),
            "--run-id",
            "optuna",
        ],
        capsys,
    )
    logging.getLogger("optuna").removeHandler(handler)
    assert code == 0, stdout[-3000:]
    assert not [r.getMessage() for r in announced if r.levelno < logging.WARNING]
    frame = read_results(tmp_path / "optuna")
    search = frame[frame["stage"] == "search"]
    configs = [json.loads(c) for c in search.groupby("variant")["config_json"].first()]
    assert sorted(search["variant"].unique()) == ["search000", "search001", "search002"]
    assert all(1e-3 <= c["optimizer"]["lr"] <= 0.5 and c["optimizer"]["name"] in ("momentum", "adam") for c in configs)
    assert frame[frame["stage"] == "final"]["status"].eq("ok").all()
