"""`xfbench history`, `baseline save` and the report's history: what a trend marks and how runs are ordered."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from harness.baselines import history, run_directories
from harness.cli import main
from harness.report_html import run_dirs
from harness.results import to_frame

CASE = "s:scratch-mlp-digits"


def _rows(accs: list[float], threads: int = 1, cpu: str = "CPU A", version: str = "2.0") -> pd.DataFrame:
    """Two epochs per seed (the second steady), torch and tensorflow alike, as a worker records them."""
    rows = [
        {
            "run_id": "r",
            "trial_id": f"t-{backend}-{seed}",
            "suite": "s",
            "strategy": "scratch",
            "model": "mlp",
            "dataset": "digits",
            "backend": backend,
            "framework_version": version,
            "cpu": cpu,
            "gpu": "",
            "threads": threads,
            "seed": seed,
            "phase": "train",
            "epoch": epoch,
            "epoch_time_s": 1.0,
            "samples_per_s": 1.0,
            "warmup": epoch == 1,
            "status": "ok",
            "test_acc": acc if epoch == 2 else float("nan"),
            "config_json": "{}",
        }
        for backend in ("torch", "tensorflow")
        for seed, acc in enumerate(accs)
        for epoch in (1, 2)
    ]
    return to_frame(rows)


def _save(root: Path, name: str, frame: pd.DataFrame, started: str | None) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    frame.assign(run_id=name).to_parquet(run_dir / "results.parquet", index=False)
    if started is not None:
        info = {"run_id": name, "started": started, "status": "finished", "git_commit": "abc"}
        (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


OTHER_TIMES = (
    "epoch times differ by the machines as much as by the code (compare leaves the time verdicts of cases timed on "
    "other machines n/a unless given --times-across-machines)"
)
OTHER_THREADS = (
    "(compare leaves the time verdicts of cases run with other thread counts n/a unless given --times-across-machines)"
)


def test_history_marks_a_case_run_on_other_threads_another_machine_or_framework_version(tmp_path, capsys, monkeypatch):
    """Two runs with 1 and 2 threads trended 0.047 → 0.024 s with no mark: compare warns of threads, machines and
    versions run-wide, history said nothing of them."""
    monkeypatch.setenv("COLUMNS", "200")
    accs = [0.9, 0.91]
    _save(tmp_path, "1", _rows(accs), "2026-12-01")
    _save(tmp_path, "2", _rows(accs, threads=2), "2026-12-02")
    newer_torch = _rows(accs, threads=2)
    newer_torch.loc[newer_torch["backend"] == "torch", "framework_version"] = "2.1"
    _save(tmp_path, "3", newer_torch, "2026-12-03")
    _save(tmp_path, "4", newer_torch.assign(cpu="CPU B"), "2026-12-04")
    found = history(tmp_path, "epoch_time_s")
    changes = {(c.run_id, c.backend): c.what for c in found.changes}
    assert changes == {
        ("2", "tensorflow"): f"different thread counts: previous 1, new 2 {OTHER_THREADS}",
        ("2", "torch"): f"different thread counts: previous 1, new 2 {OTHER_THREADS}",
        ("3", "torch"): "different torch versions: previous 2.0, new 2.1",
        (
            "4",
            "tensorflow",
        ): f"different machines: previous ran on 'CPU A' no GPU, new on 'CPU B' no GPU; {OTHER_TIMES}",
        ("4", "torch"): f"different machines: previous ran on 'CPU A' no GPU, new on 'CPU B' no GPU; {OTHER_TIMES}",
    }
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    torch_row = next(line for line in out.splitlines() if line.startswith(CASE) and "torch" in line)
    assert torch_row.split()[2:] == ["1", "1", "†", "1", "†", "1", "†"], torch_row
    assert "different thread counts: previous 1, new 2" in out


def test_history_says_how_many_trials_a_value_covers_and_compares_the_seeds_that_ended_ok(
    tmp_path, capsys, monkeypatch
):
    """A seed that diverged left the mean of the other two, 0.935 → 0.936 up, unmarked; compare called it a trials
    regression. The seeds were compared as run, so the dropped seed got no † either."""
    monkeypatch.setenv("COLUMNS", "200")
    _save(tmp_path, "1", _rows([0.90, 0.93, 0.96]), "2026-12-01")
    diverged = _rows([0.90, 0.93, 0.96])
    last = diverged.index[(diverged["trial_id"] == "t-torch-0") & (diverged["epoch"] == 2)]
    diverged.loc[last, "status"] = "diverged"
    diverged.loc[last, "test_acc"] = float("nan")
    _save(tmp_path, "2", diverged, "2026-12-02")
    found = history(tmp_path, "test_acc")
    assert found.partly_ok == {(CASE, "torch", "2"): "2/3"}
    assert [(c.run_id, c.backend, c.what) for c in found.changes] == [("2", "torch", "seeds 0,1,2→1,2")]
    assert history(tmp_path, "epoch_time_s").partly_ok == {(CASE, "torch", "2"): "2/3"}  # times of the ok trials
    assert main(["history", "--results-dir", str(tmp_path), "--metric", "test_acc"]) == 0
    torch_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(CASE) and "torch" in line)
    assert torch_row.rstrip().endswith("0.945 (2/3 ok) †"), torch_row


def test_a_run_without_run_json_is_ordered_by_its_id_then_by_when_its_results_were_written(tmp_path, capsys):
    """A run without run.json sorted as the oldest: history drew it first, `baseline save` passed over it for an older
    run, and the report put it first."""
    frame = _rows([0.9, 0.91])
    _save(tmp_path, "20261205-090000-first", frame, "2026-12-05T09:00:00+00:00")
    _save(tmp_path, "20261205-110000-norunjson", frame, None)  # its id says 11:00
    copied = _save(tmp_path, "copied", frame, None)  # neither: its results were written at 10:00
    written = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()
    os.utime(copied / "results.parquet", (written, written))
    order = ["20261205-090000-first", "copied", "20261205-110000-norunjson"]
    assert [p.name for p in run_directories(tmp_path)] == order
    assert [p.name for p in run_dirs([tmp_path])] == order
    assert [r.run_id for r in history(tmp_path, "test_acc").runs] == order
    assert main(["baseline", "save", "latest", "--results-dir", str(tmp_path)]) == 0
    assert "from " + str(tmp_path / "20261205-110000-norunjson") in capsys.readouterr().out


def test_a_seed_that_failed_in_every_run_is_no_change_of_seeds(tmp_path):
    """The seeds compared are those that ended ok: one failed alike in both runs leaves the same mean's seeds."""
    for index in (1, 2):
        rows = _rows([0.9, 0.91, 0.92])
        rows.loc[rows["trial_id"] == "t-torch-2", ["status", "test_acc"]] = ["failed", float("nan")]
        _save(tmp_path, str(index), rows, f"2026-12-0{index}")
    found = history(tmp_path, "test_acc")
    assert not found.changes and found.partly_ok == {(CASE, "torch", "1"): "2/3", (CASE, "torch", "2"): "2/3"}


def test_a_damaged_run_in_the_window_is_listed_unreadable_and_the_others_are_shown(tmp_path, capsys):
    """One run whose table had lost a column stopped `xfbench history` for the whole folder, advising to "pick
    another run", which history cannot do."""
    _save(tmp_path, "a", _rows([0.90]), "2026-01-01T00:00:00")
    damaged = _save(tmp_path, "b", _rows([0.91]), "2026-01-02T00:00:00")
    pd.read_parquet(damaged / "results.parquet").drop(columns=["epoch_time_s"]).to_parquet(damaged / "results.parquet")
    _save(tmp_path, "c", _rows([0.92]), "2026-01-03T00:00:00")
    found = history(tmp_path, "test_acc")
    assert [(r.run_id, r.status) for r in found.runs] == [("a", "finished"), ("b", "unreadable"), ("c", "finished")]
    assert list(found.table.columns) == ["a", "c"] and found.table.loc[(CASE, "torch"), "c"] == 0.92
    ((run_id, why),) = found.unreadable
    assert run_id == "b" and "a table without the column epoch_time_s" in why
    assert main(["history", "--results-dir", str(tmp_path), "--metric", "test_acc"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "runs left out, their files unreadable (move them out of the folder to leave them out of the list)" in out
    assert "a table without the column epoch_time_s" in out


def test_history_marks_a_run_that_mixed_framework_versions_and_says_where_a_start_time_came_from(
    tmp_path, capsys, monkeypatch
):
    """A run whose seeds ran on torch 2.0 and 2.1 (resumed after an upgrade) read as 2.0, its first row's, so it got
    no †; a run without run.json, ordered by its id's time, showed an empty ``started``."""
    monkeypatch.setenv("COLUMNS", "250")
    accs = [0.9, 0.91, 0.92]
    _save(tmp_path, "20261201-090000-a", _rows(accs), "2026-12-01T09:00:00+00:00")
    _save(tmp_path, "20261201-100000-b", _rows(accs), started=None)
    mixed = _rows(accs)
    mixed.loc[(mixed["backend"] == "torch") & (mixed["seed"] == 2), "framework_version"] = "2.1"
    _save(tmp_path, "20261201-110000-c", mixed, "2026-12-01T11:00:00+00:00")
    found = history(tmp_path, "epoch_time_s")
    assert [(r.run_id, r.started) for r in found.runs] == [
        ("20261201-090000-a", "2026-12-01T09:00:00+00:00"),
        ("20261201-100000-b", "2026-12-01T10:00:00+00:00 (from its id)"),
        ("20261201-110000-c", "2026-12-01T11:00:00+00:00"),
    ]
    assert [(c.run_id, c.backend, c.what) for c in found.changes] == [
        ("20261201-110000-c", "torch", "different torch versions: previous 2.0, new 2.0,2.1")
    ]
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch_time_s per case, median of the steady epochs (warm-up left out) of the timed phase" in out
    assert "(from its id)" in out and "a tune's search samples too" in out
