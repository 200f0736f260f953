from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.reporting import run_markdown
from harness.results import COLUMNS, ResultsWriter, read_parts, read_results, schema_markdown, to_frame
from harness.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = (
    "run_id trial_id suite strategy model dataset backend framework_version seed phase epoch train_loss train_acc "
    "val_loss val_acc test_acc epoch_time_s samples_per_s warmup status config_json git_commit host cpu gpu threads "
    "python_version timestamp params forward_macs"
).split()


def test_schema_has_every_column_design_md_requires():
    assert set(REQUIRED) <= set(COLUMNS)


def test_schema_document_matches_the_code():
    doc = (ROOT / "docs" / "results-schema.md").read_text()
    between = doc.split("<!-- schema:start -->")[1].split("<!-- schema:end -->")[0].strip()
    assert between == schema_markdown()


def test_the_schema_names_every_phase_each_strategy_writes():
    """The phase entry said "train; later strategies add more" while feature_extraction wrote `frozen`, fine_tune
    `fine_tune` and freeze_early `freeze_early`: the phases come from the constants the strategies write them with."""
    from harness.results import SCHEMA
    from harness.strategies import describe_strategies, strategy_phases

    (meaning,) = [meaning for name, _, meaning in SCHEMA if name == "phase"]
    phases = strategy_phases()
    assert set(phases) == set(describe_strategies()), "a strategy without its phases in strategy_phases()"
    for strategy, names in phases.items():
        assert strategy in meaning and all(f"`{name}`" in meaning for name in names), (strategy, names, meaning)


def _row(
    trial: str, backend: str, seed: int, epoch: int, acc: float, time_s: float, status: str = "ok", last: bool = False
) -> dict:
    return {
        "run_id": "r",
        "trial_id": trial,
        "suite": "s",
        "strategy": "scratch",
        "model": "m",
        "dataset": "d",
        "backend": backend,
        "framework_version": "1",
        "seed": seed,
        "phase": "train",
        "epoch": epoch,
        "train_loss": 1.0,
        "train_acc": 0.5,
        "val_loss": 1.0,
        "val_acc": 0.5,
        "test_acc": acc if last else math.nan,
        "epoch_time_s": time_s,
        "samples_per_s": 100 / time_s,
        "eval_time_s": 0.1,
        "warmup": epoch == 1,
        "status": status,
        "error": "",
        "config_json": "{}",
        "git_commit": "c",
        "host": "h",
        "cpu": "c",
        "gpu": "",
        "device": "cpu",
        "threads": 1,
        "python_version": "3.11",
        "timestamp": "t",
    }


def test_writer_keeps_rows_of_unfinished_trials_and_rejects_unknown_columns(tmp_path):
    writer = ResultsWriter(tmp_path)
    writer.add_row(_row("a", "torch", 0, 1, 0, 1.0))
    writer.add_row(_row("a", "torch", 0, 2, 0.9, 0.5, last=True))
    writer.finish_trial("a")
    writer.add_row(_row("b", "torch", 1, 1, 0, 1.0))  # trial b never finishes: a crash here
    csv_rows = pd.read_csv(tmp_path / "results.csv")
    assert list(csv_rows.columns) == list(COLUMNS) and len(csv_rows) == 3
    # the crash-surviving copy holds the rows' values, each in its column: 0, 0.0 and False are values, not empty
    assert csv_rows["trial_id"].tolist() == ["a", "a", "b"] and csv_rows["epoch"].tolist() == [1, 2, 1]
    assert csv_rows["warmup"].tolist() == [True, False, True] and csv_rows["seed"].tolist() == [0, 0, 1]
    assert csv_rows["test_acc"].isna().tolist() == [True, False, True] and csv_rows["test_acc"][1] == 0.9
    assert csv_rows["epoch_time_s"].tolist() == [1.0, 0.5, 1.0] and csv_rows["threads"].tolist() == [1, 1, 1]
    partial = read_results(tmp_path)
    assert list(partial["trial_id"]) == ["a", "a"]
    with pytest.raises(ValueError, match="unknown columns"):
        writer.add_row({**_row("c", "torch", 0, 1, 0, 1.0), "surprise": 1})
    with pytest.raises(ValueError, match="status"):
        writer.add_row(_row("c", "torch", 0, 1, 0, 1.0, status="great"))
    final = writer.finalize()
    assert len(final) == 3 and (tmp_path / "results.parquet").is_file()
    assert final.dtypes["epoch"] == "Int64" and final.dtypes["warmup"] == "boolean"


def test_a_trial_whose_rows_a_resume_kept_is_never_written_again(tmp_path):
    """A resumed search's kept sample had its part replaced by a one-row failure (review 154): the writer that a
    resume makes refuses any row of a kept trial, leaving its part and results.csv as they were."""
    first = ResultsWriter(tmp_path)
    first.add_row(_row("kept", "torch", 0, 1, 0.9, 1.0, last=True))
    first.finish_trial("kept")
    part = tmp_path / "parts" / "kept.parquet"
    before, csv_before = part.read_bytes(), (tmp_path / "results.csv").read_text()
    resumed = ResultsWriter(tmp_path, kept=frozenset({"kept"}))
    with pytest.raises(ValueError, match=re.escape("Expected no new rows for trial kept: the resume kept its")):
        resumed.add_row({**_row("kept", "torch", 0, 0, math.nan, 1.0), "status": "failed", "error": "boom"})
    resumed.finish_trial("kept")
    resumed.add_row(_row("other", "torch", 1, 1, 0.8, 1.0, last=True))
    resumed.finalize()
    assert part.read_bytes() == before
    assert (tmp_path / "results.csv").read_text().startswith(csv_before)
    assert read_results(tmp_path)["trial_id"].tolist() == ["kept", "other"]


def test_a_part_write_that_fails_keeps_the_trials_rows_for_the_next_try(tmp_path, monkeypatch):
    """finish_trial dropped a trial's rows before writing them: a write that failed (a full disk) lost them, and
    the part written next held only what came after (review 157, finding 1)."""
    import errno

    import harness.results as results

    real, calls = results._write_atomically, []

    def full_once(frame: pd.DataFrame, path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        real(frame, path)

    monkeypatch.setattr(results, "_write_atomically", full_once)
    writer = ResultsWriter(tmp_path)
    writer.add_row(_row("t", "torch", 0, 1, 0, 1.0))
    writer.add_row(_row("t", "torch", 0, 2, 0.9, 0.5, last=True))
    with pytest.raises(OSError, match="No space left"):
        writer.finish_trial("t")
    assert not (tmp_path / "parts" / "t.parquet").exists()
    writer.finish_trial("t")
    assert read_parts(tmp_path)[["epoch", "status"]].values.tolist() == [[1, "ok"], [2, "ok"]]


def test_a_fault_of_the_drivers_sinks_is_the_drivers_not_the_trials():
    """An exception of the driver's own sinks as a trial ended (its part not written, progress to a closed pipe)
    escaped into Tune's stop_trial, which failed the trial for it: a driver failed row over its ok part, or a
    retrain (review 157, finding 1). The forwarder keeps it and raises it at Tune's next step, out of its loop."""
    from types import SimpleNamespace

    from harness.config import TrialConfig
    from harness.scheduler import ROW_KEY, DriverFault, _make_callback
    from harness.trial import RunInfo

    class Events:
        def __init__(self) -> None:
            self.rows: list[dict] = []

        def on_row(self, row: dict) -> None:
            self.rows.append(row)

        def on_trial_end(self, trial_id: str) -> None:
            raise OSError(28, "No space left on device")

        def on_replayed_row(self, row: dict) -> None: ...

    trial = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=1)
    tune_trial = SimpleNamespace(config={"job": {"trial": trial.to_dict()}}, error_file=None)
    events = Events()
    forwarder = _make_callback(events, RunInfo("r", "c"), "trials")
    forwarder.on_step_begin(0, [])  # no fault yet: Tune's loop goes on
    row = {"trial_id": trial.trial_id, "status": "ok", "epoch": 1}
    forwarder.on_trial_result(0, [], tune_trial, {ROW_KEY: json.dumps(row)})
    forwarder.on_trial_complete(0, [], tune_trial)  # raised into Tune before: the trial failed for it
    assert isinstance(forwarder.fault, DriverFault) and isinstance(forwarder.fault.__cause__, OSError)
    assert f"could not record trial {trial.trial_id}'s results (OSError" in str(forwarder.fault)
    with pytest.raises(DriverFault):
        forwarder.on_step_begin(1, [])
    assert [r["status"] for r in events.rows] == ["ok"]


def test_summary_statistics_and_ratio():
    rows = []
    for backend, accs, times in (
        ("torch", (0.90, 0.92), (1.0, 2.0, 2.2)),
        ("tensorflow", (0.91, 0.95), (3.0, 1.0, 1.2)),
    ):
        for seed, acc in enumerate(accs):
            trial = f"{backend}-{seed}"
            for epoch, t in enumerate(times, start=1):
                rows.append(_row(trial, backend, seed, epoch, acc, t, last=epoch == len(times)))
    rows.append({**_row("tensorflow-9", "tensorflow", 9, 1, math.nan, 1.0, status="failed"), "val_acc": 0.1})
    summary = summarize(to_frame(rows))
    t = summary.per_backend.set_index("backend").loc["torch"]
    f = summary.per_backend.set_index("backend").loc["tensorflow"]
    assert t["test_acc_mean"] == pytest.approx(0.91) and t["test_acc_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert t["epoch_time_s_median"] == pytest.approx(2.1)  # warm-up epochs (1.0) excluded
    assert f["epoch_time_s_median"] == pytest.approx(1.1) and f["failed"] == 1 and f["ok"] == 2
    assert f["val_acc_mean"] == pytest.approx(0.5)  # the trials that ended ok: not the failed one's 0.1
    cmp = summary.comparison.iloc[0]
    assert (cmp["backend"], cmp["reference"]) == ("tensorflow", "torch")
    assert cmp["acc_diff_pp"] == pytest.approx(-2.0)
    assert cmp["epoch_time_ratio"] == pytest.approx(2.1 / 1.1)
    text = run_markdown(summary, "t")
    assert "0.9100 ± 0.0141" in text and "1.909" in text and "2/3 ok, 1 failed" in text
    one_seed = summarize(to_frame([r for r in rows if r["seed"] == 0]))  # no spread to show: not ± 0
    assert one_seed.per_backend["test_acc_std"].isna().all()
    assert "0.9000 (1 seed)" in run_markdown(one_seed, "t") and "± 0.0000" not in run_markdown(one_seed, "t")
    assert "## torch vs tensorflow" in text and "epoch time torch / tensorflow" in text
    # the warm-up figure is the median of the trials' warm-up epochs: one slow first trial (10 s) does not move it
    warm = [_row(f"w{s}", "torch", s, e, 0.9, t if e == 1 else 0.5, last=e == 2) for s, t in enumerate((1, 1, 10))
            for e in (1, 2)]  # fmt: skip
    assert summarize(to_frame(warm)).per_backend["warmup_time_s"].tolist() == [1.0]


def test_parts_are_written_whole_so_a_kill_mid_write_cannot_leave_an_unreadable_part(tmp_path, monkeypatch):
    """A part is written beside its target and renamed: a write stopped mid-way (a full disk, Ctrl-C) leaves the
    old part or none, and no temporary file (each one left filled the disk further); a driver killed outright
    leaves one, which the next writer of the run removes (review 157, finding 7)."""
    import harness.whole_files as whole_files

    writer = ResultsWriter(tmp_path)
    writer.add_row(_row("t1", "torch", 0, 1, 0.9, 1.0, last=True))
    writer.finish_trial("t1")
    parts = tmp_path / "parts"
    before = (parts / "t1.parquet").read_bytes()

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(whole_files.os, "replace", stopped)  # the file is written, the rename never happens
    writer.add_row(_row("t2", "torch", 1, 1, 0.8, 1.0, last=True))
    with pytest.raises(KeyboardInterrupt):
        writer.finish_trial("t2")
    monkeypatch.undo()
    assert sorted(p.name for p in parts.iterdir()) == ["t1.parquet"]
    assert (parts / "t1.parquet").read_bytes() == before
    assert read_parts(tmp_path)["trial_id"].tolist() == ["t1"]
    (parts / "t3.parquet.partial").write_bytes(b"PAR1 truncated")  # what a SIGKILL mid-write leaves
    ResultsWriter(tmp_path)  # a resume's writer, under the run's lock
    assert sorted(p.name for p in parts.iterdir()) == ["t1.parquet"]


def test_a_resume_stopped_while_it_rewrites_results_csv_leaves_it_whole(tmp_path, monkeypatch):
    """rewrite_csv truncated results.csv in place: a resume stopped mid-write (Ctrl-C, a full disk) left the kept
    trials' rows missing from it (review 157, finding 4). It is written beside and renamed."""
    import harness.results as results

    writer = ResultsWriter(tmp_path)
    for trial in ("a", "b"):
        writer.add_row(_row(trial, "torch", 0, 1, 0.9, 1.0, last=True))
    before = (tmp_path / "results.csv").read_text()
    cells, written = results._csv_cells, []

    def full_disk(row: dict) -> list:
        if written:
            raise OSError(28, "No space left on device")
        written.append(row)
        return cells(row)

    monkeypatch.setattr(results, "_csv_cells", full_disk)
    with pytest.raises(OSError, match="No space left"):
        results.rewrite_csv(tmp_path, to_frame([_row(t, "torch", 0, 1, 0.9, 1.0, last=True) for t in "ab"]))
    assert (tmp_path / "results.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts", "results.csv"]


def test_a_table_written_before_columns_were_added_reads_with_them_empty(tmp_path):
    """Saved baselines and older runs lack later columns (a float, an integer, a string): they read as NaN / NA."""
    frame = to_frame([_row("a", "torch", 0, 1, 0.9, 1.0, last=True)])
    old = frame.drop(columns=["mc_mean_prob", "params", "inexact", "variant"])
    old.to_parquet(tmp_path / "results.parquet")
    back = read_results(tmp_path)
    assert list(back.columns) == list(COLUMNS)
    assert back["mc_mean_prob"].isna().all() and back["mc_mean_prob"].dtype == "float64"
    assert back["params"].isna().all() and str(back["params"].dtype) == "Int64"
    assert back["inexact"].isna().all() and back["variant"].tolist() == [""]
    assert back["test_acc"].tolist() == [0.9]


def test_a_table_written_before_the_suite_column_compares_its_backends_and_with_later_runs(tmp_path):
    """A table without a suite column read it as NA: the backend comparison dropped every case (groupby skips NA),
    and compare crashed sorting its case keys. It reads as no suite (""), as a run without one does."""
    from harness.compare import compare_frames

    rows = [
        _row(f"{backend}-{seed}", backend, seed, epoch, 0.9 + seed / 100, 1.0, last=epoch == 3)
        for backend in ("torch", "tensorflow")
        for seed in (0, 1)
        for epoch in (1, 2, 3)
    ]
    to_frame(rows).drop(columns=["suite"]).to_parquet(tmp_path / "results.parquet")
    old = read_results(tmp_path)
    assert set(old["suite"]) == {""}
    assert len(summarize(old).comparison) == 1
    assert [case.backend for case in compare_frames(old, old)] == ["tensorflow", "torch"]


def test_a_resume_removes_the_finished_table_so_readers_take_the_parts_it_keeps(tmp_path):
    """A resume reruns a finished run's failed trial: results.parquet, which read_results prefers, still held the
    failed rows until the resume ended (and forever when its driver was killed)."""
    from harness.runner import _keep_finished_rows

    writer = ResultsWriter(tmp_path)
    for trial, status in (("ok-trial", "ok"), ("failed-trial", "failed")):
        writer.add_row(_row(trial, "torch", 0, 1, 0.9, 1.0, status=status, last=True))
        writer.finish_trial(trial)
    writer.finalize()
    assert set(read_results(tmp_path)["trial_id"]) == {"ok-trial", "failed-trial"}
    kept, rerun, _ = _keep_finished_rows(tmp_path, ended_search=None)
    assert list(rerun) == ["failed-trial"] and read_results(tmp_path)["trial_id"].tolist() == ["ok-trial"]


def test_one_epoch_trials_say_why_their_statistics_have_no_time_ratio():
    """A one-epoch run's Statistics row read "time ratio n/a" noted only "1 seed: too few to say", beside the pair
    table's warm-up ratio: its one epoch is warm-up, so there is no steady epoch to compare."""
    from harness.statistics import case_statistics

    rows = [_row(f"{b}-{s}", b, s, 1, 0.9, 1.0, last=True) for b in ("torch", "tensorflow") for s in (0, 1)]
    (note,) = case_statistics(to_frame(rows))["note"]
    assert "no steady epoch (a phase's first is warm-up): no time ratio; run 2 epochs or more" in note


def test_deep_features_whose_features_came_from_the_cache_say_so_not_to_run_more_epochs():
    """A deep_features case whose features another run extracted times nothing (its one row's epoch_time_s is empty,
    details_json has the cached run's figure): its note said to run 2 epochs or more, which times nothing either."""
    import json

    from harness.statistics import case_statistics

    details = json.dumps({"features_cached": True, "cached_extraction_samples_per_s": 5000.0, "fit_time_s": 0.1})
    rows = [
        {**_row(f"{b}-{s}", b, s, 1, 0.9, 1.0, last=True), "strategy": "deep_features", "phase": "sklearn"}
        | {"epoch_time_s": None, "samples_per_s": None, "warmup": False, "details_json": details}
        for b in ("torch", "tensorflow")
        for s in (0, 1)
    ]
    (note,) = case_statistics(to_frame(rows))["note"]
    assert "features came from the cache (no extraction timed): no time ratio" in note, note
    assert "run 2 epochs" not in note
