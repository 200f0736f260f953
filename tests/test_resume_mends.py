"""Resume mends (review of 2026-12-05): a results folder moved or without its _cache, run ids from model names with
':' or ' ', a tune stopped as its final stage began, a run whose driver is still alive, and the no-GPU advice of a
resume. Ray is replaced by fakes that write rows as workers would: these test the runner's decisions, not Tune."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import harness.runner as runner
import harness.scheduler as scheduler
from harness.backbone import checkpoint_path
from harness.config import TransferOptions, TrialConfig
from harness.errors import InputError
from harness.models import ModelOptions
from harness.plan import DriverProcess, ExecutionOptions, RunFile, RunPlan, RunRecord, read_run_file, write_run_file
from harness.provenance import MachineInfo
from harness.run_lock import process_start
from harness.scheduler import NoNodeFits, RunInterrupted, SchedulerSettings, replayable_rows
from harness.search import parse_space, search_trial
from harness.trial import RunInfo, failure_row
from harness.tuning import TunePlan

BASE = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=1)
FINE_TUNE = replace(BASE, strategy="fine_tune", transfer=TransferOptions(source_epochs=1))


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """The run's Ray session and its node check are not started: a node that fits, until a test says otherwise."""
    monkeypatch.setattr(runner, "ray_session", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(runner, "cluster_nodes", lambda: [{"address": "192.0.2.2", "cpus": 2, "gpus": 0}])
    monkeypatch.setattr(scheduler, "cluster_nodes", lambda: [{"address": "192.0.2.2", "cpus": 2, "gpus": 0}])


def _settings(tmp_path: Path, **options: Any) -> SchedulerSettings:
    return SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1, **options)


def _row(trial: TrialConfig, run: RunInfo, stage: str, status: str = "ok", val_acc: float = 0.9) -> dict[str, Any]:
    row = failure_row(trial, run, "" if status == "ok" else "boom", status=status, machine=MachineInfo.unknown())
    return {**row, "stage": stage, "attempt": 0, "epoch": 1, "phase": "train", "val_acc": val_acc, "test_acc": 0.9}


class Workers:
    """A stand-in for run_trials: each trial ends ok (a pretrain trial writes its checkpoint), except that the
    trials named in ``stop_at`` interrupt the run (Ctrl-C) before they end."""

    def __init__(self, stop_at: tuple[str, ...] = ()) -> None:
        self.ran: list[TrialConfig] = []
        self.stop_at = stop_at

    def __call__(self, trials: list[TrialConfig], run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        for trial in trials:
            if trial.strategy in self.stop_at:
                raise RunInterrupted("stopped")
            self.ran.append(trial)
            if trial.strategy == "pretrain":
                checkpoint_path(trial).parent.mkdir(parents=True, exist_ok=True)
                checkpoint_path(trial).write_bytes(b"weights")
            events.on_row(_row(trial, run, kw["stage"]))
            events.on_trial_end(trial.trial_id)


def _interrupted_fine_tune(results: Path) -> Path:
    """A run whose backbone trained and whose fine_tune trial was cut short."""
    outcome = runner.execute(
        RunPlan.of_trials([FINE_TUNE]),
        results_dir=results,
        run_id="f1",
        settings=_settings(results),
        schedule=Workers(stop_at=("fine_tune",)),
        html_report=False,
    )
    assert outcome.status == "interrupted" and (results / "_cache" / "backbones").is_dir()
    return outcome.run_dir


@pytest.mark.parametrize("cache", ["moved with the folder", "deleted"])
def test_a_moved_results_folder_resumes_from_its_own_cache_and_retrains_a_backbone_it_lacks(tmp_path, cache):
    """run.json recorded each trial's cache_dir as an absolute path, which resume kept: the fine_tune trial looked
    for its backbone in the old folder ("no such checkpoint in <old path>") on every resume, and a finished
    pretrain trial whose checkpoint was gone was never trained again."""
    _interrupted_fine_tune(tmp_path / "old")
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "old", moved)
    if cache == "deleted":
        shutil.rmtree(moved / "_cache")
    workers = Workers()
    outcome = runner.resume(moved, "f1", _settings(moved), schedule=workers, html_report=False)
    assert outcome.status == "finished" and outcome.all_ok
    cache_dirs = {t.cache_dir for t in workers.ran}
    assert cache_dirs == {str((moved / "_cache").resolve())}, cache_dirs
    ran = sorted(t.strategy for t in workers.ran)
    assert ran == (["fine_tune"] if cache == "moved with the folder" else ["fine_tune", "pretrain"])
    recorded = read_run_file(moved / "f1")
    assert {t.cache_dir for t in recorded.plan.trials + recorded.pretrain} == cache_dirs  # the next resume's too
    if cache == "deleted":
        (why,) = [w for t, w in recorded.record.resumes[-1].rerun_errors.items() if "pretrain" in t]
        assert why.startswith("ok, but its backbone ") and why.endswith("is gone: trained again"), why


def test_a_moved_tune_stopped_in_its_final_stage_resumes_from_its_own_cache(tmp_path, monkeypatch):
    """The final trials are rebuilt from the search rows, which record the old folder's cache: a moved tune's final
    fine_tunes and their pretrains looked for and wrote backbones in the old folder (retraining one the moved
    folder held, and recreating the old folder)."""
    calls: list[str] = []
    monkeypatch.setattr(runner, "run_search", _search(calls))
    search = TunePlan(
        bases=(FINE_TUNE,), space=parse_space(["lr=choice:0.1,1.0"]), algorithm="grid", num_samples=1, final_seeds=2
    )
    plan = RunPlan("tune", "tune", "tune", search=search)
    monkeypatch.setattr(runner, "run_trials", Workers(stop_at=("fine_tune",)))  # a tune's stages call it
    outcome = runner.execute(
        plan, results_dir=tmp_path / "old", run_id="t1", settings=_settings(tmp_path / "old"), html_report=False
    )
    assert outcome.status == "interrupted"
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "old", moved)
    workers = Workers()
    monkeypatch.setattr(runner, "run_trials", workers)
    resumed = runner.resume(moved, "t1", _settings(moved), html_report=False)
    assert resumed.status == "finished" and len(calls) == 1
    assert {t.cache_dir for t in workers.ran} == {str((moved / "_cache").resolve())}
    assert sorted(t.strategy for t in workers.ran).count("fine_tune") == 2
    assert not (tmp_path / "old").exists()


def test_replayed_samples_of_a_moved_results_folder_still_match_their_trials(tmp_path):
    """A search sample is replayed when its recorded configuration equals the trial's: with the old cache_dir in
    its rows, every sample of a moved results folder would have trained again."""
    old = replace(search_trial(BASE, {"optimizer.lr": 0.1}, 0), cache_dir=str(tmp_path / "old" / "_cache"))
    frame = pd.DataFrame([{**_row(old, RunInfo("r", "abc"), "search"), "config_json": old.to_json()}])
    rows = runner._rows_by_trial(frame, tmp_path / "new" / "_cache")
    assert replayable_rows(replace(old, cache_dir=str((tmp_path / "new" / "_cache").resolve())), rows)


@pytest.mark.parametrize(
    "label",
    ["scratch-python:my_nets:make-digits", "scratch-torchvision:resnet18-digits", "fine_tune-my net.json-digits"],
)
def test_a_default_run_id_is_one_that_resume_takes(tmp_path, label):
    """The id was built from the case label uncleaned: ':' or ' ' in it, and --resume refused the very id the
    interrupted run printed in its resume command."""
    run_id = runner.new_run_id(label, tmp_path)
    runner.check_run_id(run_id, "--resume")
    assert (tmp_path / run_id).is_dir() and ":" not in run_id and " " not in run_id
    long = runner.new_run_id("é" * 300, tmp_path)  # letters outside ASCII too, and no id over 200 characters
    runner.check_run_id(long, "--resume")


def _tune_plan() -> RunPlan:
    search = TunePlan(
        bases=(BASE,), space=parse_space(["lr=choice:0.1,1.0"]), algorithm="grid", num_samples=1, final_seeds=1
    )
    return RunPlan("tune", "tune", "tune", search=search)


def _search(calls: list[str]) -> Any:
    """A stand-in for run_search: sample 0 ends ok, sample 1 fails."""

    def run_search(experiment: Any, run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        calls.append(kw["experiment_name"])
        for index, (lr, status) in enumerate([(0.1, "ok"), (1.0, "failed")]):
            trial = search_trial(experiment.base, {"optimizer.lr": lr}, index)
            events.on_row({**_row(trial, run, "search", status), "config_json": trial.to_json()})
            events.on_trial_end(trial.trial_id)

    return run_search


def test_a_tune_stopped_as_its_final_stage_began_keeps_its_search_on_resume(tmp_path, monkeypatch):
    """search_ended looked only for rows of the final stage: a tune stopped after its final stage began but before
    a final trial ended was resumed as still searching, its failed sample run again (the pick could change)."""
    calls: list[str] = []
    monkeypatch.setattr(runner, "run_search", _search(calls))
    began: list[str | None] = []

    def stopped(trials: list[TrialConfig], *a: Any, **kw: Any) -> None:
        began.append(read_run_file(tmp_path / "t1").record.final_began)
        raise RunInterrupted("stopped")

    monkeypatch.setattr(runner, "run_trials", stopped)
    outcome = runner.execute(_tune_plan(), results_dir=tmp_path, run_id="t1", settings=_settings(tmp_path))
    assert outcome.status == "interrupted" and len(calls) == 1
    assert began and began[0] is not None  # recorded before the final stage's first trial started
    parts = sorted(p.name for p in (tmp_path / "t1" / "parts").iterdir())
    workers = Workers()
    monkeypatch.setattr(runner, "run_trials", workers)
    resumed = runner.resume(tmp_path, "t1", _settings(tmp_path), html_report=False)
    assert len(calls) == 1, calls  # no search experiment again
    assert [(t.tuned, t.optimizer.lr) for t in workers.ran] == [(True, 0.1)]
    assert sorted(p.name for p in (tmp_path / "t1" / "parts").iterdir())[: len(parts)] == parts  # the failed sample
    assert read_run_file(tmp_path / "t1").record.resumes[-1].failed_trials_rerun == ()
    assert resumed.status == "finished"


def test_a_finished_sample_recorded_under_another_configuration_trains_again_and_its_old_rows_go(tmp_path, monkeypatch):
    """A sample that ended under another configuration than the resume gives its id (another version's default) is
    not replayed and trains again: its old rows stayed in results.csv beside the new ones, two configurations under
    one id, and the resume said it had kept the sample without re-running it."""
    older = ModelOptions(bn_epsilon=1e-3)  # as a version with another default recorded it
    replays: list[set[str]] = []

    def interrupted(experiment: Any, run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        trial = search_trial(experiment.base, {"optimizer.lr": 0.1}, 0)
        recorded = replace(trial, model_options=older)
        events.on_row({**_row(trial, run, "search"), "config_json": recorded.to_json()})
        events.on_trial_end(trial.trial_id)
        raise RunInterrupted("stopped")

    def resumed(experiment: Any, run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        replays.append(set(kw["delivery"].replay))
        for index, lr in enumerate((0.1, 1.0)):
            trial = search_trial(experiment.base, {"optimizer.lr": lr}, index)
            events.on_row({**_row(trial, run, "search"), "config_json": trial.to_json()})
            events.on_trial_end(trial.trial_id)

    monkeypatch.setattr(runner, "run_search", interrupted)
    assert runner.execute(_tune_plan(), results_dir=tmp_path, run_id="t", settings=_settings(tmp_path)).status == (
        "interrupted"
    )
    monkeypatch.setattr(runner, "run_search", resumed)
    monkeypatch.setattr(runner, "run_trials", Workers())
    assert runner.resume(tmp_path, "t", _settings(tmp_path), html_report=False).status == "finished"
    sample = search_trial(BASE, {"optimizer.lr": 0.1}, 0).trial_id
    assert replays == [set()]  # not handed to the searcher as finished: it trains again
    rows = pd.read_csv(tmp_path / "t" / "results.csv")
    epsilons = [json.loads(c)["model_options"]["bn_epsilon"] for c in rows[rows["trial_id"] == sample]["config_json"]]
    assert epsilons == [ModelOptions().bn_epsilon]  # one configuration under one id, the resume's
    record = read_run_file(tmp_path / "t").record.resumes[-1]
    assert (record.finished_trials_kept, record.failed_trials_rerun) == (0, (sample,))
    assert record.rerun_errors[sample] == (
        "ok, but under another configuration than this resume's (it differs in model_options): trained again"
    )


def test_search_ended_reads_an_older_run_json_as_before(tmp_path):
    from harness.runner import search_ended

    search = pd.DataFrame([{"trial_id": "s", "stage": "search", "status": "ok"}])
    assert not search_ended(search) and search_ended(search, final_began=True)
    assert search_ended(pd.concat([search, search.assign(trial_id="f", stage="final")]))


def _running_run(results: Path, driver: DriverProcess | None) -> None:
    record = RunRecord(
        run_id="live", started="t0", command=("xfbench", "run"), git_commit="abc", driver_host="h", driver_cpu="c",
        python_version="3.11", status="running", driver_process=driver,
    )  # fmt: skip
    (results / "live").mkdir(parents=True)
    write_run_file(results / "live", RunFile(RunPlan.of_trials([BASE]), ExecutionOptions(), record))


def test_a_run_whose_driver_is_alive_is_not_resumed(tmp_path, capsys):
    """--resume of a `running` run took it for a killed driver even while that driver was running it: both would
    have run its trials. A driver recorded on this host whose process is alive refuses the resume (exit 2)."""
    from harness.cli import main

    host = MachineInfo.current().host
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            _running_run(tmp_path / "a", DriverProcess(host, other.pid, process_start(other.pid)))
            assert main(["run", "--resume", "live", "--results-dir", str(tmp_path / "a")]) == 2
            err = capsys.readouterr().err
            assert f"still running under pid {other.pid} on this host" in err and f"`kill {other.pid}`" in err, err
            assert "on this host. To fix, wait for it to end, or stop it first" in err, err  # the standard form
            _running_run(tmp_path / "b", DriverProcess(host, other.pid, "1"))  # the pid of a later process
            _running_run(tmp_path / "c", DriverProcess("another-host", other.pid, None))
        finally:
            other.kill()
    _running_run(tmp_path / "d", DriverProcess(host, other.pid, None))  # ended
    _running_run(tmp_path / "e", None)  # a run.json from before the driver was recorded
    for results in ("b", "c", "d", "e"):
        runner.check_something_to_resume(read_run_file(tmp_path / results / "live"), tmp_path / results / "live")


def test_a_resume_of_a_run_with_an_unreadable_part_is_refused_naming_the_file(tmp_path, capsys):
    """A part cut short (a power loss, a copy cut short, a disk error) made --resume, the one command that could
    recover the run, die in a pyarrow traceback (exit 1; review 157, finding 3): it is refused, naming the file and
    the way out, before Ray starts or the run changes."""
    from harness.cli import main

    _running_run(tmp_path, None)  # a driver killed: its run.json says running
    parts = tmp_path / "live" / "parts"
    parts.mkdir()
    (parts / "adhoc-s1.parquet").write_bytes(b"PAR1 cut short")
    run_json = (tmp_path / "live" / "run.json").read_bytes()
    assert main(["run", "--resume", "live", "--results-dir", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Expected each trial's part in" in err and "Received: adhoc-s1.parquet, which cannot be read" in err, err
    assert "To fix, move that file out of parts/ and resume the run (--resume): that trial runs again" in err
    assert (tmp_path / "live" / "run.json").read_bytes() == run_json


# Another driver holding a run directory: run_lock.driving itself, in another process (a lock of the test's own
# making passed a driving() that took a shared lock, with which two real drivers both got in).
HOLD_DIRECTORY = (
    "import sys, time; from pathlib import Path; from harness.run_lock import driving\n"
    "with driving(Path(sys.argv[1]), 'start a new run'):\n    print('held', flush=True); time.sleep(120)"
)


@contextlib.contextmanager
def _held_by_another_process(run_dir: Path) -> Any:
    root = str(Path(runner.__file__).resolve().parents[1])  # this checkout's harness, as the test imports it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", HOLD_DIRECTORY, str(run_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as other:
        try:
            assert other.stdout is not None and other.stdout.readline().strip() == "held"
            yield other
        finally:
            other.kill()


def test_a_run_directory_another_driver_holds_is_neither_started_nor_resumed(tmp_path, capsys):
    """run.json records its driver only once Ray is up, seconds in: two runs of one --run-id started a second apart
    both ran, and the second's table mixed in the first's trial rows (s2 at lr 0.1 beside s0, s1 at lr 0.01); two
    --resume of one run both trained its remaining trials (420 rows for a run of 240). The directory is now held
    for as long as a process drives it, and another process is refused at once, the directory left as it was."""
    from harness.cli import main
    from harness.run_lock import RunBeingDriven

    claimed = tmp_path / "new" / "nightly"
    claimed.mkdir(parents=True)  # as the first driver leaves it in that window: made, held, nothing written yet
    with _held_by_another_process(claimed):
        workers = Workers()
        with pytest.raises(RunBeingDriven, match="Expected no other xfbench process to drive 'nightly' while this "
                           "one would start a new run in it"):  # fmt: skip
            runner.execute(RunPlan.of_trials([BASE]), results_dir=tmp_path / "new", run_id="nightly",
                           settings=_settings(tmp_path), schedule=workers, html_report=False)  # fmt: skip
        assert workers.ran == [] and claimed.is_dir() and not any(claimed.iterdir())  # the other's, untouched
    run_dir = _interrupted_fine_tune(tmp_path / "old")
    before = (run_dir / "run.json").read_text()
    with _held_by_another_process(run_dir):
        results = str(tmp_path / "old")
        assert main(["run", "--resume", "f1", "--results-dir", results, "--no-report"]) == 2
        err = capsys.readouterr().err
        assert "Expected no other xfbench process to drive 'f1' while this one would resume in it" in err, err
        assert err.rstrip().endswith(
            "To fix, wait for it to end, then resume again if the run still has trials to finish."
        )
        assert (run_dir / "run.json").read_text() == before
    workers = Workers()  # once the other ended (its lock went with it), the resume runs
    assert runner.resume(tmp_path / "old", "f1", _settings(tmp_path), schedule=workers, html_report=False).all_ok
    assert [t.strategy for t in workers.ran] == ["fine_tune"]


def test_a_run_records_its_driver_process(tmp_path):
    runner.execute(RunPlan.of_trials([BASE]), results_dir=tmp_path, run_id="r", settings=_settings(tmp_path),
                   schedule=Workers(), html_report=False)  # fmt: skip
    driver = read_run_file(tmp_path / "r").record.driver_process
    assert driver is not None and driver.pid == os.getpid() and driver.host == MachineInfo.current().host


def test_a_resume_without_a_gpu_is_not_told_to_lower_gpus_per_trial(tmp_path):
    """A resume keeps the recorded device, so NoNodeFits's "Lower --gpus-per-trial" named what it refuses."""
    _interrupted_fine_tune(tmp_path)
    with pytest.raises(NoNodeFits) as refused:
        runner.resume(tmp_path, "f1", _settings(tmp_path, gpus_per_trial=1.0), schedule=Workers())
    said = str(refused.value)
    assert "lower --gpus-per-trial" not in said and "To fix, resume on a machine with GPUs" in said, said
    assert "Received: Ray finds 192.0.2.2: 2 CPUs, 0 GPUs" in said and "start a new run" in said
    assert read_run_file(tmp_path / "f1").record.status == "interrupted"  # refused before anything changed
    with pytest.raises(InputError, match="Expected a new run id.*To fix, pick another --run-id"):
        runner.execute(RunPlan.of_trials([BASE]), results_dir=tmp_path, run_id="f1", settings=_settings(tmp_path))


def test_a_tune_stopped_in_its_final_stages_pretrain_trains_that_backbone_again(tmp_path):
    """With the search kept as it ended, only rerun_after_search's trials run again: it named none while the final
    stage had no rows, so a pretrain trial that Ctrl-C failed there stood failed, and every final trial was skipped."""
    from harness.backbone import pretrain_trial
    from harness.runner import rerun_after_search
    from harness.tuning import final_trials

    base = replace(FINE_TUNE, cache_dir=str(tmp_path / "_cache"))
    plan = TunePlan(
        bases=(base,), space=parse_space(["lr=choice:0.1,1.0"]), algorithm="grid", num_samples=1, final_seeds=2
    )
    run, rows = RunInfo("t", "abc"), []
    for index, (lr, status) in enumerate([(0.1, "ok"), (1.0, "failed")]):
        trial = search_trial(base, {"optimizer.lr": lr}, index)
        rows.append({**_row(trial, run, "search", status), "config_json": trial.to_json()})
    frame = pd.DataFrame(rows)
    finals = final_trials(frame, plan)
    cut = pretrain_trial(finals[1])  # seed 1's backbone: the final stage's own pretrain
    frame = pd.concat([frame, pd.DataFrame([{**_row(cut, run, "pretrain", "failed"), "config_json": cut.to_json()}])])
    assert rerun_after_search(frame, plan) == [cut.trial_id]
    ended = [{**_row(t, run, "final"), "config_json": t.to_json()} for t in finals]
    assert rerun_after_search(pd.concat([frame, pd.DataFrame(ended)]), plan) == []  # every final trial ended ok


def test_a_resumes_rows_carry_the_code_it_ran(tmp_path, capsys, monkeypatch):
    """Rows of a resume carried the run's first commit: after a `git pull`, new code's rows read as the old run's.
    Its nodes joined run.json's by node id: they once replaced them, and the kept rows' `node` ids were nowhere."""
    run_dir = _interrupted_fine_tune(tmp_path)
    first = read_run_file(run_dir)
    old = {"node": "n-first", "address": "192.0.2.1", "cpus": 2, "gpus": 0}
    new = {"node": "n-resume", "address": "192.0.2.3", "cpus": 4, "gpus": 0}
    monkeypatch.setattr(runner, "cluster_nodes", lambda: [{**old, "cpus": 8}, new])
    record = replace(first.record, git_commit="0ld0c0de0000", wall_time_s=100.0, ray_nodes=(old,))
    write_run_file(run_dir, replace(first, record=record))
    outcome = runner.resume(tmp_path, "f1", _settings(tmp_path), schedule=Workers(), html_report=False)
    assert outcome.status == "finished"
    record = read_run_file(run_dir).record
    now = record.resumes[-1].git_commit
    assert now and now != "0ld0c0de0000" and record.git_commit == "0ld0c0de0000"  # the run's own stays as it began
    resumed = outcome.frame[outcome.frame["strategy"] == "fine_tune"]
    assert set(resumed["git_commit"]) == {now}
    assert record.wall_time_s is not None and record.wall_time_s < 100.0  # the last session's alone, as documented
    assert f"this resume runs commit {now}, the run began on 0ld0c0de0000" in capsys.readouterr().err
    assert record.ray_nodes == (old, new)  # first seen kept, the resume's new node appended


def test_a_resume_records_the_execution_options_the_rows_before_it_ran_under(tmp_path, capsys):
    """run.json's execution options were replaced by a resume's: nothing said that the rows before it ran with one
    CPU per trial in warm workers, and those after with two in fresh ones."""
    from harness.cli import _say_what_resume_kept

    run_dir = _interrupted_fine_tune(tmp_path)
    settings = replace(_settings(tmp_path), cpus_per_trial=2, fresh_workers=True, max_concurrent=1)
    outcome = runner.resume(tmp_path, "f1", settings, schedule=Workers(), html_report=False)
    assert outcome.status == "finished"
    recorded = read_run_file(run_dir)
    last = recorded.record.resumes[-1]
    assert last.execution_before == ExecutionOptions(cpus_per_trial=1)
    assert recorded.execution == ExecutionOptions(cpus_per_trial=2, fresh_workers=True, max_concurrent=1)
    assert last.changed_execution(recorded.execution) == {
        "cpus_per_trial": (1, 2),
        "max_concurrent": (None, 1),
        "fresh_workers": (False, True),
    }
    capsys.readouterr()
    _say_what_resume_kept(run_dir)
    said = capsys.readouterr().err
    assert (
        "resumed f1 under --cpus-per-trial 2 (was 1), --max-concurrent 1 (was auto), --fresh-workers (was no)" in said
    )


def test_a_resume_recorded_before_its_execution_options_were_kept_reads_as_unknown(tmp_path, capsys):
    from harness.cli import _say_what_resume_kept

    run_dir = _interrupted_fine_tune(tmp_path)
    runner.resume(tmp_path, "f1", replace(_settings(tmp_path), cpus_per_trial=2), schedule=Workers(), html_report=False)
    text = (run_dir / "run.json").read_text()
    data = json.loads(text)
    del data["resumes"][-1]["execution_before"]
    (run_dir / "run.json").write_text(json.dumps(data))
    last = read_run_file(run_dir).record.resumes[-1]
    assert last.execution_before is None and last.changed_execution(ExecutionOptions(cpus_per_trial=2)) == {}
    capsys.readouterr()
    _say_what_resume_kept(run_dir)
    assert " under " not in capsys.readouterr().err


class FailingFineTune(Workers):
    """Each trial ends, the fine_tune trial failed (its worker killed, say)."""

    def __call__(self, trials: list[TrialConfig], run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        for trial in trials:
            if trial.strategy == "fine_tune":
                events.on_row(_row(trial, run, kw["stage"], status="failed"))
                events.on_trial_end(trial.trial_id)
            else:
                super().__call__([trial], run, settings, events, **kw)


def test_a_resume_stopped_as_it_removes_failed_rows_leaves_a_run_that_resumes_them(tmp_path, monkeypatch):
    """The resume of a finished run removed its failed trial's rows before run.json said anything but `finished`:
    stopped in between (Ctrl-C), the run read as finished with nothing to resume, its failed trial gone for good."""
    outcome = runner.execute(
        RunPlan.of_trials([FINE_TUNE]),
        results_dir=tmp_path,
        run_id="f1",
        settings=_settings(tmp_path),
        schedule=FailingFineTune(),
        html_report=False,
    )
    assert outcome.status == "finished" and not outcome.all_ok

    def stopped(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    rewrite_csv = runner.rewrite_csv
    monkeypatch.setattr(runner, "rewrite_csv", stopped)  # after the failed trial's part is removed
    with pytest.raises(KeyboardInterrupt):
        runner.resume(tmp_path, "f1", _settings(tmp_path), schedule=Workers(), html_report=False)
    assert read_run_file(outcome.run_dir).record.status == "interrupted"  # resumable, even from this process
    monkeypatch.setattr(runner, "rewrite_csv", rewrite_csv)
    workers = Workers()
    again = runner.resume(tmp_path, "f1", _settings(tmp_path), schedule=workers, html_report=False)
    assert again.status == "finished" and again.all_ok
    assert [t.strategy for t in workers.ran] == ["fine_tune"]


def test_a_resume_checks_its_cluster_address_before_the_preflight(tmp_path, monkeypatch):
    """`--resume R --address HOST:PORT` ran the whole preflight (model conversions, minutes for imported models)
    before it found that nothing answered at the address; a new run checks its execution options first."""
    _interrupted_fine_tune(tmp_path)
    checked: list[str] = []
    monkeypatch.setattr(runner, "preflight", lambda *a, **k: checked.append("preflight"))
    with pytest.raises(InputError, match="127.0.0.1:1"):
        runner.resumable(tmp_path, "f1", "run", {"address": "127.0.0.1:1"})
    assert checked == []
    runner.resumable(tmp_path, "f1", "run", {})
    assert checked == ["preflight"]


def test_an_interrupted_runs_notice_counts_its_planned_trials_apart_from_their_backbones(tmp_path):
    """The notice counted backbone pretrain trials against the plan's own: "3 of the 2 planned trials have rows"."""
    run_dir = _interrupted_fine_tune(tmp_path)
    summary = " ".join((run_dir / "summary.md").read_text().split())
    assert "0 of the 1 planned trials (and 1 backbone pretrain trial(s)) have rows" in summary, summary[:400]


class CheckpointThenStop(Workers):
    """A pretrain trial that writes its backbone and is cut short before its rows reach the driver (run_pretrain
    saves the checkpoint after its last row, the driver writes the trial's part when it ends)."""

    def __call__(self, trials: list[TrialConfig], run: RunInfo, settings: Any, events: Any, **kw: Any) -> None:
        for trial in trials:
            checkpoint_path(trial).parent.mkdir(parents=True, exist_ok=True)
            checkpoint_path(trial).write_bytes(b"weights")
            raise RunInterrupted("stopped")


def test_a_pretrain_trial_cut_short_after_writing_its_backbone_runs_again_on_resume(tmp_path):
    """Its backbone was in the cache, so the resume's pretrain stage (backbones the cache lacks) left it out: its
    rows were dropped as partial, said to run again, and never did; the run's table lacked its source phase."""
    outcome = runner.execute(
        RunPlan.of_trials([FINE_TUNE]),
        results_dir=tmp_path,
        run_id="f2",
        settings=_settings(tmp_path),
        schedule=CheckpointThenStop(),
        html_report=False,
    )
    assert outcome.status == "interrupted" and not list((outcome.run_dir / "parts").glob("*"))
    workers = Workers()
    resumed = runner.resume(tmp_path, "f2", _settings(tmp_path), schedule=workers, html_report=False)
    assert resumed.status == "finished" and resumed.all_ok
    assert sorted(t.strategy for t in workers.ran) == ["fine_tune", "pretrain"]
    rows = pd.read_parquet(resumed.run_dir / "results.parquet")
    assert sorted(rows["strategy"]) == ["fine_tune", "pretrain"]


def test_ctrl_c_as_the_last_trial_ends_leaves_the_run_written_whole(tmp_path, monkeypatch):
    """Ctrl-C between the last trial's end and run.json's last save escaped as a bare "interrupted": run.json stayed
    "running" beside trials that had all ended, with no summary.md or results.parquet. It is held until they are
    written; the report's seconds of plotting are what it skips."""
    import signal

    summary = runner._summary

    def interrupted_while_summarising(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return summary(*args, **kwargs)

    monkeypatch.setattr(runner, "_summary", interrupted_while_summarising)
    outcome = runner.execute(
        RunPlan.of_trials([BASE]), results_dir=tmp_path, run_id="c1", settings=_settings(tmp_path), schedule=Workers()
    )
    assert outcome.status == "finished" and read_run_file(outcome.run_dir).record.status == "finished"
    assert (outcome.run_dir / "summary.md").is_file() and (outcome.run_dir / "results.parquet").is_file()
    assert not (outcome.run_dir / "report.html").exists()


def test_ctrl_c_while_a_resumes_report_is_drawn_ends_the_run_finished_without_the_old_page(
    tmp_path, monkeypatch, capsys
):
    """Ctrl-C (or SIGTERM, raised as it) while report.html was drawn, the run's files already whole: the finished run
    ended as interrupted (exit 130, no table, and a --resume then refused: nothing to resume), and a resume's
    interrupted session's page (its tables "Interrupted", 1 of 3 trials) stayed, byte for byte, beside the finished
    run. The run ends finished, saying why the page is missing and how to draw it; no stale page is left."""
    import signal

    run_dir = _interrupted_fine_tune(tmp_path)
    (run_dir / "report.html").write_text("the interrupted session's page")

    def stopped_while_drawing(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # as Python raises it: KeyboardInterrupt inside the drawing
        raise AssertionError("not reached")

    monkeypatch.setattr(runner, "write_report", stopped_while_drawing)
    outcome = runner.resume(tmp_path, "f1", _settings(tmp_path), schedule=Workers())
    assert outcome.status == "finished" and outcome.all_ok and read_run_file(run_dir).record.status == "finished"
    assert not (run_dir / "report.html").exists() and (run_dir / "summary.md").is_file()
    assert outcome.report_problem == f"no report.html (stopped while it was drawn); `xfbench report {run_dir}` draws it"
    assert f"xfbench: {outcome.report_problem}" in capsys.readouterr().err


def test_a_run_stopped_before_any_trial_ended_draws_no_page_and_warns_of_none(tmp_path, capsys):
    """It tried to draw report.html from no rows and warned "no report.html (InputError: Expected a run with results
    rows ...)", which the pytest plugin's summary then repeated."""
    outcome = runner.execute(RunPlan.of_trials([BASE]), results_dir=tmp_path, run_id="e", settings=_settings(tmp_path),
                             schedule=Workers(stop_at=("scratch",)))  # fmt: skip
    assert outcome.status == "interrupted" and outcome.frame.empty and outcome.report_problem is None
    assert not (outcome.run_dir / "report.html").exists() and "no report.html" not in capsys.readouterr().err


def test_a_second_ctrl_c_while_the_run_is_written_stops_it(tmp_path, monkeypatch, capsys):
    """Reading a large run's parts and its statistics can take minutes: the first Ctrl-C is said and held, a
    second one stops the run there (its parts are on disk: it resumes)."""
    import signal

    summary = runner._summary

    def interrupted_twice(*args: Any, **kwargs: Any) -> Any:
        # raise_signal, not os.kill: the signal reaches this thread, whose handler runs before the call returns; a
        # process-directed kill may land on another thread (Ray's), and two pending SIGINTs then merge into one
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        return summary(*args, **kwargs)

    monkeypatch.setattr(runner, "_summary", interrupted_twice)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(
            RunPlan.of_trials([BASE]),
            results_dir=tmp_path,
            run_id="c2",
            settings=_settings(tmp_path),
            schedule=Workers(),
        )
    assert "writing the run's results first; Ctrl-C again stops now" in capsys.readouterr().err
    assert list((tmp_path / "c2" / "parts").glob("*.parquet"))


def test_a_report_drawn_into_a_run_folder_another_driver_holds_is_refused(tmp_path, capsys):
    """`xfbench report RUN` drew report.html and report_plots/ into the run's folder while its driver, ending, drew
    them too: each removed the other's plots, and a finished run could keep a "still running" page (review 157,
    finding 6). It takes the run's lock; a report drawn elsewhere (--output) needs none."""
    from harness.cli import main
    from harness.results import ResultsWriter

    run_dir = tmp_path / "held"
    writer = ResultsWriter(run_dir)
    writer.add_row({**_row(BASE, RunInfo("held", "c"), "trials"), "test_acc": 0.9})
    writer.finish_trial(BASE.trial_id)
    with _held_by_another_process(run_dir):
        assert main(["report", str(run_dir)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "while this one would draw report.html in it" in err and "give --output to draw this" in err, err
        assert not (run_dir / "report.html").exists()
        assert main(["report", str(run_dir), "--output", str(tmp_path / "elsewhere.html")]) == 0, capsys.readouterr()


def test_ray_nodes_join_by_node_id_keeping_the_first_record():
    first = {"node": "a", "address": "192.0.2.1", "cpus": 2, "gpus": 0}
    record = RunRecord(
        run_id="r", started="s", command=(), git_commit="c", driver_host="h", driver_cpu="x", python_version="3"
    )
    record = replace(record, ray_nodes=(first,))
    later = {"node": "b", "address": "192.0.2.2", "cpus": 1, "gpus": 1}
    assert record.joined_nodes([{**first, "cpus": 16}, later]) == (first, later)
    assert replace(record, ray_nodes=()).joined_nodes([later]) == (later,)
    stand_in = {"address": "192.0.2.9", "cpus": 1, "gpus": 0}  # no id: a test's stand-in, joined by its record
    assert replace(record, ray_nodes=(stand_in,)).joined_nodes([stand_in, later]) == (stand_in, later)
