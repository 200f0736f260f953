"""Regression tracking: `xfbench compare`, baselines and history on real trials."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import backend_probes as probes
import numpy as np
import pandas as pd
import pytest

from harness import compare
from harness.augment import AugmentConfig
from harness.cli import main
from harness.compare import Thresholds, _epochs_a_side_reaching, _smallest_p, compare_frames, welch_diff_ci
from harness.config import RuntimeOptions, TransferOptions, TrialConfig
from harness.data.tasks import TaskSpec
from harness.reporting import comparison_count, comparison_rules, p_cell, regression_cells
from harness.results import ResultsWriter, read_results, to_frame
from harness.summary import final_rows

EPOCHS = 5  # with 2 seeds: eight steady epochs per run, enough for a one-sided Mann-Whitney p < 0.01
SEEDS = (0, 1)


def _config(backend: str, seed: int, delay: float = 0.0) -> TrialConfig:
    return TrialConfig(
        strategy="scratch",
        model="convnet3",
        dataset="digits",
        backend=backend,
        seed=seed,
        epochs=EPOCHS,
        suite="cmp",
        runtime=RuntimeOptions(threads=1, inject_step_delay_s=delay),
    )


def _finish(writer: ResultsWriter, run_dir: Path) -> Path:
    writer.finalize()
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": run_dir.name, "started": run_dir.name, "status": "finished", "git_commit": "test"})
    )
    return run_dir


@pytest.fixture(scope="module")
def runs(workers, tmp_path_factory):
    """Two honest runs of the same config. On a shared machine the first trial of a fresh process runs much
    slower and load drifts over seconds, so a throw-away trial warms each worker first and the trials are
    ordered A B B A per backend (seed 0 then seed 1): drift then falls on both runs alike."""
    root = tmp_path_factory.mktemp("results")
    dirs = {name: root / name for name in ("a-honest", "b-honest")}
    writers = {name: ResultsWriter(path) for name, path in dirs.items()}
    for backend in ("torch", "tensorflow"):
        workers[backend](probes.trial_rows, _config(backend, 99).to_dict(), "warm-up")
        for seed, order in zip(SEEDS, (("a-honest", "b-honest"), ("b-honest", "a-honest")), strict=True):
            for name in order:
                config = _config(backend, seed)
                for row in workers[backend](probes.trial_rows, config.to_dict(), name):
                    writers[name].add_row(row)
                writers[name].finish_trial(config.trial_id)
    return root, _finish(writers["a-honest"], dirs["a-honest"]), _finish(writers["b-honest"], dirs["b-honest"])


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_an_artificially_slower_run_is_a_regression_naming_the_case(workers, runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    root, honest_a, _ = runs
    # Slowed by 100 ms per step (20 steps: +2 s on an epoch of 0.1-0.2 s, x10-x20), torch only. The trials' test
    # (two trials a side: df 1, |t| > 12.7 for p < 0.05) decides a ratio r only where the base's two trials' log
    # medians differ by less than ln(r) / 6.35: x2 and x5 (5 and 25 ms a step) were each left undecided once
    # (2026-12-07, the Xeon), x20 allows the honest trials to differ by 60 %.
    writer = ResultsWriter(root / "c-slow")
    for seed in SEEDS:
        for row in workers["torch"](probes.trial_rows, _config("torch", seed, delay=0.1).to_dict(), "c-slow"):
            writer.add_row(row)
    _finish(writer, root / "c-slow")
    code = main(
        ["compare", str(honest_a), str(root / "c-slow"), "--fail-on-regression", "--markdown", str(root / "cmp.md")]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "regression: cmp:scratch-convnet3-digits [torch] time regression" in out
    markdown = (root / "cmp.md").read_text()
    assert "**1 regression(s)**: cmp:scratch-convnet3-digits [torch]" in markdown
    assert "only in base" in markdown  # the slow run has no tensorflow trial: reported, not a regression
    # yet a backend gone from a finished run is warned of, and fails the gate: it checked torch alone
    warned = f"WARNING: the new run {root / 'c-slow'} has no case of tensorflow, which the base ran (1 case(s)): " \
        "not compared; --fail-on-regression fails on it"  # fmt: skip
    assert warned in " ".join(out.split()), out
    # the ratio's hierarchical interval excludes 1 (and the 10 % band) and carries the mark, in every rendering
    rows = compare_frames(read_results(honest_a), read_results(root / "c-slow"))
    torch = next(c for c in rows if c.backend == "torch")
    assert torch.backend == "torch" and torch.time_ci[0] > 1.10 and torch.time_marked
    cell = regression_cells(torch)[3]
    assert cell.startswith(f"{torch.time_ratio:.3f}* [") and cell in markdown and cell in out.replace("\n  ", " ")
    assert _widest(out) <= 80


def test_every_training_row_records_the_cpus_other_processes_kept_busy(runs):
    _, honest_a, _ = runs
    trained = read_results(honest_a).dropna(subset=["epoch"])
    others = trained["other_cpus"].astype(float)
    assert len(trained) and others.notna().all() and (others >= 0).all(), others


def test_two_honest_runs_are_not_flagged(runs, capsys):
    _, honest_a, honest_b = runs
    assert main(["compare", str(honest_a), str(honest_b), "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "0 regression(s) in 2 case(s) run by both" in out
    rows = compare_frames(read_results(honest_a), read_results(honest_b))
    assert len(rows) == 2 and not any(c.time_marked for c in rows)
    assert all("*" not in regression_cells(c)[3] and "[" in regression_cells(c)[3] for c in rows)


def test_baseline_save_compare_by_name_and_history(runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    root, honest_a, honest_b = runs
    assert main(["baseline", "save", "nightly", "--run", str(honest_a), "--results-dir", str(root)]) == 0
    saved = list((root / "baselines").glob("*/nightly/baseline.json"))
    assert len(saved) == 1
    meta = json.loads(saved[0].read_text())
    assert meta["threads"] == "1" and set(meta["framework_versions"]) == {"torch", "tensorflow"}
    assert meta["machine_key"] in str(saved[0])
    capsys.readouterr()  # the "saved baseline" line names long paths: not a table
    assert main(["compare", "nightly", "b-honest", "--results-dir", str(root), "--fail-on-regression"]) == 0
    assert _widest(capsys.readouterr().out) <= 80
    assert main(["baseline", "list", "--results-dir", str(root)]) == 0
    listed = capsys.readouterr().out
    assert "nightly" in listed and "from run a-honest" in listed and _widest(listed) <= 80  # stacked at 80 columns
    assert main(["baseline", "save", "nightly", "--run", str(honest_b), "--results-dir", str(root)]) == 0
    replaced = capsys.readouterr().out  # said, not silent, with the run it held before
    assert replaced.startswith(f"replaced baseline 'nightly', which held {root / 'a-honest'}, with {honest_b}"), (
        replaced
    )
    # the baseline as its own source: removing the old one first would lose the run it copies from
    assert main(["baseline", "save", "nightly", "--run", "nightly", "--results-dir", str(root)]) == 2
    assert "which is that baseline itself" in capsys.readouterr().err
    assert main(["compare", "nightly", "b-honest", "--results-dir", str(root)]) == 0  # still whole
    capsys.readouterr()
    # one name, one run: a baseline may not take a run's id, nor a new run a baseline's, and a clash made by hand is
    # refused rather than resolved to the run (the baseline was silently bypassed)
    assert main(["baseline", "save", "a-honest", "--run", str(honest_b), "--results-dir", str(root)]) == 2
    assert "Expected a baseline name that no run in" in capsys.readouterr().err
    assert main(["run", "--suite", "quick", "--run-id", "nightly", "--results-dir", str(root)]) == 2
    assert "Expected a --run-id that no saved baseline goes by. Received: 'nightly'" in capsys.readouterr().err
    shutil.copytree(honest_a, root / "nightly")
    assert main(["compare", "nightly", "b-honest", "--results-dir", str(root)]) == 2
    assert "Received: the run" in (err := capsys.readouterr().err) and "both go by it" in err, err
    assert main(["compare", str(root / "nightly"), "b-honest", "--results-dir", str(root)]) == 0  # by its path
    shutil.rmtree(root / "nightly")
    capsys.readouterr()
    assert main(["history", "--results-dir", str(root), "--metric", "test_acc", "--case", "convnet3"]) == 0
    out = capsys.readouterr().out
    assert "a-honest" in out and "b-honest" in out and "cmp:scratch-convnet3-digits" in out
    assert _widest(out) <= 80
    # before, a filter that matched nothing, or a directory that is not there, printed empty tables and exited 0
    assert main(["history", "--results-dir", str(root), "--case", "resnet"]) == 2
    assert "Received: 'resnet', which is part of none of their 1 cases: cmp:scratch-convnet3-digits." in (
        capsys.readouterr().err
    )
    assert main(["history", "--results-dir", str(root / "missing")]) == 2
    assert f"Received: {root / 'missing'}, which does not exist." in capsys.readouterr().err


def test_a_run_that_did_not_finish_is_not_saved_as_a_baseline(runs, capsys, tmp_path):
    """An interrupted run holds only the trials it got to; saved as a baseline (the newest run, by default) it was
    "saved baseline" with exit 0, and every later compare measured against that part."""
    root, honest_a, _ = runs
    results = tmp_path / "results"
    for status in ("interrupted", "running"):
        stopped = results / f"stopped-{status}"
        shutil.copytree(honest_a, stopped)
        info = json.loads((stopped / "run.json").read_text())
        (stopped / "run.json").write_text(json.dumps({**info, "status": status}))
        assert main(["baseline", "save", "partial", "--run", stopped.name, "--results-dir", str(results)]) == 2
        err = capsys.readouterr().err
        assert f"Received: {stopped}, {status} (run.json): it holds only the trials it got to." in err, err
        assert f"`xfbench run --resume {stopped.name} --results-dir {results}`" in err
        # a running run may still be going: resuming it then would run its trials a second time beside it
        assert ("To fix, wait for it to end (or, if its driver was killed, finish it with" in err) == (
            status == "running"
        )
    assert not (results / "baselines").exists()


def test_runs_with_no_case_in_common_compare_nothing_and_a_gate_on_them_fails(runs, capsys, tmp_path):
    """Another suite (or selection) than the baseline's: every case is only in one run. A regression gate must not
    pass on that as "0 regressions"; each side's figures still show."""
    from types import SimpleNamespace

    from harness.pytest_plugin import _against_baseline

    root, honest_a, _ = runs
    renamed = tmp_path / "renamed"
    shutil.copytree(honest_a, renamed)
    frame = pd.read_parquet(renamed / "results.parquet")
    frame["suite"] = "other"
    frame.to_parquet(renamed / "results.parquet", index=False)
    markdown = tmp_path / "compare.md"
    for flags, code in (([], 0), (["--fail-on-regression"], 1)):
        command = ["compare", str(honest_a), str(renamed), "--results-dir", str(root), "--markdown", str(markdown)]
        assert main([*command, *flags]) == code
        out, err = capsys.readouterr()
        assert "WARNING: nothing compared: no case ran in both" in " ".join(err.split()) and ("fails" in err) == bool(
            flags
        )
        # the markdown a CI job posts said "**0 regression(s)**." with no word of it
        page = markdown.read_text()
        assert "**Nothing compared**: no case ran in both" in page and "regression(s)" not in page
    rows = compare_frames(read_results(honest_a), frame)
    assert {r.only_in for r in rows} == {"base", "new"} and not any(r.in_both for r in rows)
    acc = final_rows(read_results(honest_a)).groupby("backend")["test_acc"].mean()
    assert {r.backend: r.base_acc for r in rows if r.only_in == "base"} == pytest.approx(acc.to_dict())
    options = {"xfbench_results_dir": str(root), "xfbench_baseline_time_threshold": 1.1}  # the session's options
    options |= {"xfbench_baseline_accuracy_threshold": 1.0, "xfbench_baseline_alpha": 0.01}
    options |= {"xfbench_baseline_times_across_machines": False}
    config = SimpleNamespace(getoption=options.__getitem__)
    session = SimpleNamespace(frame=frame, run_id="renamed")
    gate = _against_baseline(config, session, str(honest_a), False)  # type: ignore[arg-type]
    message, usable = gate.report, gate.usable
    assert not usable and "ran none of this session's cases, so nothing was compared" in message
    # a baseline saved from a run that did not finish is said to be one, as `compare` says it
    interrupted = tmp_path / "interrupted"
    shutil.copytree(honest_a, interrupted)
    info = json.loads((interrupted / "run.json").read_text())
    (interrupted / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    session = SimpleNamespace(frame=read_results(runs[2]), run_id="b-honest", run_dir=runs[2])
    gate = _against_baseline(config, session, str(interrupted), False)  # type: ignore[arg-type]
    message, usable = gate.report, gate.usable
    assert usable and f"the base run {interrupted} is interrupted, not finished" in message


def test_runs_without_a_steady_epoch_say_their_time_was_not_compared(runs, capsys):
    """One-epoch trials have no steady epoch: time read n/a with no word, and a gate passed without saying that
    time went uncompared (history says "warm-up only")."""
    _, honest_a, _ = runs
    first = read_results(honest_a)
    first = first[first["epoch"] == 1]
    rows = compare_frames(first, read_results(honest_a))
    assert rows and all(r.time_verdict == "n/a" for r in rows)
    expected = "epoch time not compared: no steady epoch in base (no trial that ended ok ran past a phase's first"
    assert all(expected in r.note for r in rows), [r.note for r in rows]
    assert all("in base and new" in r.note for r in compare_frames(first, first))


def test_a_tune_runs_search_samples_are_neither_compared_nor_trended(runs, capsys, tmp_path):
    """Sample 0 of one search and sample 0 of another are unrelated configurations: history and compare use a tune
    run's final stage (each backend's best, re-run over seeds) only."""
    from harness.baselines import history

    _, honest_a, _ = runs
    root = tmp_path / "results"
    tuned = root / "tuned"
    shutil.copytree(honest_a, tuned)
    frame = pd.read_parquet(tuned / "results.parquet")
    search = frame.assign(stage="search", variant="search000", trial_id=frame["trial_id"] + "-search")
    pd.concat([search, frame.assign(stage="final")]).to_parquet(tuned / "results.parquet", index=False)
    table = history(root, "test_acc").table
    assert not any("search000" in case for case, _ in table.index) and len(table) == 2
    assert all(r.in_both and "search" not in r.case for r in compare_frames(read_results(tuned), frame))
    # and a folder with no runs, or a run given as the folder of runs, is said to be one (it printed empty tables)
    assert main(["history", "--results-dir", str(tuned)]) == 2
    assert f"Received: {tuned}, a run itself. To fix, give its folder: --results-dir {root}." in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["history", "--results-dir", str(tmp_path / "empty")]) == 2
    assert "Received: none there." in capsys.readouterr().err


def test_a_gate_fails_on_cases_an_unfinished_new_run_never_got_to(runs, capsys, tmp_path):
    """An interrupted new run without the torch case read "0 regression(s)" and passed --fail-on-regression: the
    case is only in base, as a case a finished run left out of its suite is. A finished run without any torch case
    fails the gate too, for another reason: it stopped checking a backend the base ran."""
    root, honest_a, honest_b = runs
    partial = tmp_path / "partial"
    shutil.copytree(honest_b, partial)
    frame = pd.read_parquet(partial / "results.parquet")
    frame[frame["backend"] != "torch"].to_parquet(partial / "results.parquet", index=False)
    info = json.loads((partial / "run.json").read_text())
    argv = ["compare", str(honest_a), str(partial), "--results-dir", str(root)]
    gone = f"the new run {partial} has no case of torch, which the base ran (1 case(s)): not compared; --fail-on"
    for status in ("interrupted", "finished"):
        (partial / "run.json").write_text(json.dumps({**info, "status": status}))
        assert main([*argv, "--fail-on-regression"]) == 1
        out = " ".join(capsys.readouterr().out.split())
        assert "0 regression(s) in 1 case(s) run by both" in out and "only in base" in out
        unseen = f"the new run {partial} is interrupted before 1 case(s) the base has ("
        assert (unseen in out) == (status == "interrupted") and (gone in out) == (status == "finished"), out
    (partial / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    assert main(argv) == 0  # no gate asked for: said, not failed
    out = " ".join(capsys.readouterr().out.split())
    assert unseen in out and "[torch]): not compared" in out and "--fail-on-regression fails" not in out
    assert main([*argv, "--fail-on-regression"]) == 1
    finish = f"Finish it with `xfbench run --resume partial --results-dir {tmp_path}`, then compare again"
    assert finish in " ".join(capsys.readouterr().out.split())


def test_diverged_trials_regress_a_gate_and_other_seeds_are_compared_on_those_both_have(runs, capsys, tmp_path):
    """A new run whose trials diverged has no accuracy or epoch time to compare: it was `0 regression(s)`, exit 0
    under --fail-on-regression, with the base's figures hidden too. And an average over seeds 0 and 1 against one
    over seed 0 alone differs by the seeds drawn, not by the code: accuracy is compared over seed 0, said so."""
    root, honest_a, honest_b = runs
    diverged, one_seed = tmp_path / "diverged", tmp_path / "one-seed"
    for path in (diverged, one_seed):
        shutil.copytree(honest_b, path)
    frame = pd.read_parquet(diverged / "results.parquet")
    torch = frame["backend"] == "torch"
    frame.loc[torch, "status"], frame.loc[torch, "test_acc"] = "diverged", np.nan
    frame.to_parquet(diverged / "results.parquet", index=False)
    info = json.loads((diverged / "run.json").read_text())
    (diverged / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    assert main(["compare", str(honest_a), str(diverged), "--results-dir", str(root), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out.replace("\n", " ")
    assert f"WARNING: the new run {diverged} is interrupted, not finished: its figures stop where it did" in out
    assert "trials regression; new: 2 diverged of 2 trials" in out and "1 regression(s) in 2 case(s) run by both" in out
    (row,) = [r for r in compare_frames(read_results(honest_a), frame) if r.backend == "torch"]
    assert row.regressed and row.trials_verdict == "regression" and row.acc_verdict == "n/a"
    base_acc = final_rows(read_results(honest_a)).query("backend == 'torch'")["test_acc"].mean()
    assert row.base_acc == pytest.approx(base_acc) and math.isnan(row.new_acc)  # the base's figures still shown
    assert row.base_time_s > 0 and math.isnan(row.new_time_s)
    # history: the diverged case reads `not ok` (it was an empty cell, as for a case the run did not have), and the
    # interrupted run is marked unfinished
    trend = tmp_path / "trend"
    shutil.copytree(honest_a, trend / "1-a")
    shutil.copytree(diverged, trend / "2-diverged")
    (trend / "2-diverged" / "run.json").write_text(json.dumps({**info, "status": "interrupted", "started": "z"}))
    assert main(["history", "--results-dir", str(trend), "--metric", "test_acc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if "torch" in line and "convnet3" in line).rstrip().endswith("not ok"), lines
    assert any("2-diverged (unfinished)" in line for line in lines)
    # both ran seeds 0 and 1; new's seed 1 diverged on torch: accuracy over seed 0, and no "seeds differ"
    partly = pd.read_parquet(one_seed / "results.parquet")
    lost = (partly["backend"] == "torch") & (partly["seed"] == 1)
    partly.loc[lost, "status"], partly.loc[lost, "test_acc"] = "diverged", np.nan
    (row,) = [r for r in compare_frames(read_results(honest_a), partly) if r.backend == "torch"]
    assert row.note.startswith("new: 1 diverged of 2 trials; accuracy over the seeds ok in both, 0"), row.note
    assert row.trials_verdict == "regression" and "seeds differ" not in row.note
    seed_0 = pd.read_parquet(one_seed / "results.parquet").query("seed == 0")
    base_rows, new_rows = read_results(honest_a), seed_0
    for r in compare_frames(base_rows, new_rows):
        assert "seeds differ: 0,1→0; accuracy over the seeds ok in both, 0" in r.note, r.note
        finals = final_rows(base_rows).query(f"backend == '{r.backend}' and seed == 0")
        assert r.base_acc == pytest.approx(float(finals["test_acc"].iloc[0]))


def test_a_damaged_run_outside_historys_window_or_before_the_saved_run_stops_neither(runs, capsys, tmp_path):
    """A run.json that cannot be read stopped history even when --last left that run out, and `baseline save` of
    the latest run: runs are ordered by their start time, which is read from run.json."""
    _, honest_a, honest_b = runs
    root = tmp_path / "results"
    for name, source in (("20261201-090000-old", honest_a), ("20261203-090000-a", honest_a)):
        shutil.copytree(source, root / name)
        info = json.loads((root / name / "run.json").read_text())
        (root / name / "run.json").write_text(json.dumps({**info, "run_id": name, "started": "2026-12-0" + name[7:8]}))
    shutil.copytree(honest_b, root / "20261202-090000-damaged")
    (root / "20261202-090000-damaged" / "run.json").write_text("{")
    from harness.baselines import history, run_directories

    assert [p.name for p in run_directories(root)] == [
        "20261201-090000-old",
        "20261202-090000-damaged",
        "20261203-090000-a",
    ]
    assert [run.run_id for run in history(root, "test_acc", last=1).runs] == ["20261203-090000-a"]
    shown = history(root, "test_acc", last=2)  # the damaged run listed unreadable, with why; the other shown
    assert [(r.run_id, r.status) for r in shown.runs] == [("20261202-090000-damaged", "unreadable"),
                                                          ("20261203-090000-a", "finished")]  # fmt: skip
    assert "20261202-090000-damaged/run.json to hold a JSON object" in shown.unreadable[0][1]
    assert main(["baseline", "save", "latest", "--results-dir", str(root)]) == 0
    assert "from " + str(root / "20261203-090000-a") in capsys.readouterr().out


def test_history_marks_a_case_whose_settings_changed_from_the_run_before(runs, capsys, tmp_path, monkeypatch):
    """The same case name with another batch size is another experiment: history marks its value and says what
    changed, against the previous run that ran the case, for the backend whose settings changed only."""
    monkeypatch.setenv("COLUMNS", "200")
    _, honest_a, honest_b = runs
    root = tmp_path / "results"
    for name, source in (("1-a", honest_a), ("2-b", honest_b), ("3-c", honest_b)):
        shutil.copytree(source, root / name)
        info = json.loads((root / name / "run.json").read_text())
        (root / name / "run.json").write_text(json.dumps({**info, "run_id": name, "started": name}))
    frame = pd.read_parquet(root / "2-b" / "results.parquet")
    torch = frame["backend"] == "torch"
    frame.loc[torch, "config_json"] = [
        json.dumps({**json.loads(t), "batch_size": 32}) for t in frame[torch]["config_json"]
    ]
    frame.to_parquet(root / "2-b" / "results.parquet", index=False)
    from harness.baselines import history

    found = history(root, "test_acc")
    case = "cmp:scratch-convnet3-digits"
    assert not found.not_ok
    # 2-b changed torch's batch size from 1-a's, and 3-c changed it back; tensorflow never changed
    assert [(c.run_id, c.case, c.backend, c.what) for c in found.changes] == [
        ("2-b", case, "torch", "config differs: batch_size 64→32"),
        ("3-c", case, "torch", "config differs: batch_size 32→64"),
    ]
    assert main(["history", "--results-dir", str(root), "--metric", "test_acc"]) == 0
    out = capsys.readouterr().out
    torch_row = next(line for line in out.splitlines() if "torch" in line and case in line)
    tensorflow_row = next(line for line in out.splitlines() if "tensorflow" in line and case in line)
    assert torch_row.count("†") == 2 and "†" not in tensorflow_row, out
    assert "settings changed from the run before" in out and "config differs: batch_size 64→32" in out


def test_different_framework_versions_and_machines_warn_loudly(runs, capsys):
    _, honest_a, honest_b = runs
    import pandas as pd

    other = honest_b.parent / "d-other-machine"
    other.mkdir()
    frame = pd.read_parquet(honest_b / "results.parquet")
    frame["cpu"] = "Some Other CPU"
    frame.loc[frame["backend"] == "torch", "framework_version"] = "9.9.9"
    frame.to_parquet(other / "results.parquet", index=False)
    assert main(["compare", str(honest_a), str(other)]) == 0
    out = capsys.readouterr().out
    assert "WARNING" in out and "different machines" in out and "different torch versions" in out


def _frame(accs: list[float], times: list[float]):
    rows = []
    for seed, acc in enumerate(accs):
        for epoch, t in enumerate([1.0] + times, start=1):
            rows.append(
                {
                    "run_id": "r",
                    "trial_id": f"t{seed}",
                    "suite": "s",
                    "strategy": "scratch",
                    "model": "m",
                    "dataset": "d",
                    "backend": "torch",
                    "seed": seed,
                    "phase": "train",
                    "epoch": epoch,
                    "epoch_time_s": t,
                    "samples_per_s": 1 / t,
                    "warmup": epoch == 1,
                    "status": "ok",
                    "test_acc": acc if epoch == len(times) + 1 else float("nan"),
                }
            )
    return to_frame(rows)


def _two_phase_frame(frozen_s: float, unfrozen_s: float, backend: str = "torch", epochs: int = 5) -> pd.DataFrame:
    """A transfer case of 3 seeds trained ``epochs`` epochs frozen, then ``epochs`` unfrozen: each phase's first epoch
    is warm-up, the steady ones 1 % apart."""
    rows = []
    for seed in range(3):
        for phase, seconds in (("frozen", frozen_s), ("unfrozen", unfrozen_s)):
            for epoch in range(1, epochs + 1):
                t = seconds * (3.0 if epoch == 1 else 1 + 0.01 * ((epoch + seed) % 3 - 1))
                rows.append(
                    {
                        **dict(run_id="r", trial_id=f"{backend}{seed}", suite="s", strategy="transfer", model="m"),
                        **dict(dataset="d", backend=backend, seed=seed, phase=phase, epoch=epoch, epoch_time_s=t),
                        **dict(samples_per_s=1 / t, warmup=epoch == 1, status="ok"),
                        "test_acc": 0.9 if phase == "unfrozen" and epoch == epochs else float("nan"),
                    }
                )
    return to_frame(rows)


def test_a_case_of_two_phases_is_compared_phase_by_phase_and_a_slower_frozen_phase_is_a_regression():
    """Pooled, the frozen (0.3 s) and unfrozen (1.0 s) epochs had two peaks: the frozen phase 1.5x slower read
    "ratio 1.117 [0.449, 3.338] unchanged", and the within-run statistics' interval spanned both phases."""
    from harness.statistics import case_statistics
    from harness.summary import summarize

    base, slowed = _two_phase_frame(0.3, 1.0), _two_phase_frame(0.45, 1.0)
    (c,) = compare_frames(base, slowed, Thresholds())
    assert c.time_verdict == "regression" and c.time_ratio == pytest.approx(1.5, rel=0.02)
    assert c.note.startswith("epoch time of the frozen phase (phases: frozen 1.500x regression, unfrozen 1.000x")
    (same,) = compare_frames(base, _two_phase_frame(0.3, 1.0), Thresholds())
    assert same.time_verdict == "unchanged" and "epoch time of the unfrozen phase" in same.note  # the later, on a tie
    # a phase moved beyond the band with too few epochs to decide is the one shown (counted as undecided)
    from harness.reporting import undecided_times

    (short,) = compare_frames(_two_phase_frame(0.3, 1.0, epochs=2), _two_phase_frame(0.6, 1.0, epochs=2), Thresholds())
    assert short.time_verdict == "n/a" and short.time_ratio == pytest.approx(2.0, rel=0.02) and undecided_times([short])
    assert short.note.startswith("epoch time of the frozen phase")
    # of two undecided speed-ups the larger is shown (by ratio alone it was the smaller, the unfrozen 0.8x)
    (faster,) = compare_frames(
        _two_phase_frame(0.3, 1.0, epochs=2), _two_phase_frame(0.15, 0.8, epochs=2), Thresholds()
    )
    assert faster.note.startswith("epoch time of the frozen phase (phases: frozen 0.500x n/a, unfrozen 0.800x n/a)")
    # rows without a phase against rows of one (hand-made frames): one pooled figure, as before phases were told apart
    untold = _frame([0.9, 0.9], [1.0, 1.01, 0.99, 1.0, 1.02, 0.98])
    slowed = untold.assign(epoch_time_s=untold["epoch_time_s"] * 2, phase=pd.NA)
    (pooled,) = compare_frames(untold, slowed, Thresholds())
    assert pooled.time_verdict == "regression" and pooled.time_ratio == pytest.approx(2.0)
    # within a run: the backends' ratio of one phase (the timed one), not of both pooled
    both = pd.concat([_two_phase_frame(0.3, 1.0), _two_phase_frame(0.45, 1.0, backend="tensorflow")])
    (stats,) = case_statistics(both).to_dict("records")
    assert stats["time_ci_low"] > 0.97 and stats["time_ci_high"] < 1.03, stats
    per_backend = summarize(both).per_backend
    assert set(per_backend["timed_phase"]) == {"unfrozen"} and per_backend["epoch_time_s_median"].tolist() == [1.0, 1.0]
    from harness.reporting import _epoch_time_cell

    assert _epoch_time_cell(per_backend.iloc[0]) == "1.000 (unfrozen)"  # the tables name the phase they time
    # a case only one run has gives the timed phase's figure too, as the summary does (pooled, it read 0.3 s)
    rows = compare_frames(_two_phase_frame(0.3, 1.0), _two_phase_frame(0.3, 1.0, backend="tensorflow"), Thresholds())
    assert {(r.only_in, r.base_time_s if r.only_in == "base" else r.new_time_s) for r in rows} == {
        ("base", 1.0),
        ("new", 1.0),
    }


def test_an_undecided_accuracy_collapse_is_in_the_count_line_and_so_are_shared_seeds_without_spread():
    """One seed a side, 95 % to 10 %: "0 regression(s) in 1 case(s)" said nothing of it. Seeds 0,1,2 against 2,3,4,
    every seed 5 pp down: paired on seed 2 alone it read "noise unknown (1 seed); run 2 seeds or more" though each
    run had 3, and a seed alike hid the others' drop."""
    from harness.reporting import comparison_count, comparison_markdown

    times = [1.0, 1.01, 0.99, 1.0]
    (collapse,) = compare_frames(_frame([0.95], times), _frame([0.10], times), Thresholds())
    assert collapse.acc_verdict == "n/a" and not collapse.regressed
    said = "accuracy beyond the band but not decided (see the note) in s:scratch-m-d [torch]"
    assert comparison_count([collapse]).endswith(f"{said} -85.00 pp"), comparison_count([collapse])
    assert f"**0 regression(s)**; {said} -85.00 pp." in comparison_markdown([collapse], "a", "b", [], Thresholds())

    def seeds_from(first: int, accs: list[float]) -> pd.DataFrame:
        frame = _frame(accs, times)
        return frame.assign(seed=frame["seed"] + first, trial_id=frame["trial_id"] + f"+{first}")

    base = seeds_from(0, [0.90, 0.91, 0.92])
    shared = {
        first: compare_frames(base, seeds_from(first, [0.85, 0.86, 0.87]), Thresholds())[0] for first in (1, 2, 3)
    }
    # no seed in common: Welch's interval over each run's own; two or one in common, alike: both views beyond the
    # threshold the same way, and Welch's interval leaves out 0: a regression too, whatever the overlap
    assert {c.acc_verdict for c in shared.values()} == {"regression"}
    assert shared[1].acc_ci_pp == shared[2].acc_ci_pp == shared[3].acc_ci_pp == pytest.approx((-7.27, -2.73), abs=0.01)
    assert shared[1].acc_diff_pp == pytest.approx(-6.0) and shared[2].acc_diff_pp == pytest.approx(-7.0)  # the pairs'
    assert "the seeds ok in both give no spread: Welch's interval of each run's own" in shared[1].note
    # the views part: named undecided, with each run's own seeds' figure
    (parted,) = compare_frames(base, seeds_from(2, [0.85, 0.91, 0.92]), Thresholds())  # seed 2 -7 pp, own -1.67 pp
    assert parted.acc_verdict == "n/a" and "accuracy not decided: the seeds ok in both give no spread" in parted.note
    assert "each run's own seeds differ by -1.67 pp, Welch's interval [" in parted.note
    assert parted.note.endswith("run the same seeds in both runs")
    assert "accuracy beyond the band but not decided" in comparison_count([parted])
    # neither view alone decides: over each run's own seeds, the base's other seeds (3-5, 1.5 pp higher) read as a
    # drop where each shared seed is one test image down; and one shared seed alike hid the others' 5 pp drop
    wide = seeds_from(0, [0.900, 0.901, 0.902, 0.915, 0.916, 0.917])
    (subset,) = compare_frames(wide, seeds_from(0, [0.900 - 1 / 360, 0.901 - 1 / 360, 0.902 - 1 / 360]), Thresholds())
    assert subset.acc_verdict == "n/a" and subset.acc_diff_pp == pytest.approx(-100 / 360), subset
    (hidden,) = compare_frames(seeds_from(0, [0.900, 0.903, 0.907, 0.910]), seeds_from(3, [0.910, 0.85, 0.855, 0.86]))
    assert hidden.acc_verdict == "n/a" and hidden.acc_diff_pp == 0.0
    (alike,) = compare_frames(base, seeds_from(1, [0.912, 0.922, 0.905]), Thresholds())  # +0.2 pp on both pairs
    assert alike.acc_verdict == "unchanged" and alike.acc_diff_pp == pytest.approx(0.2)  # both views within 1 pp
    (itself,) = compare_frames(base, base, Thresholds())  # alike on every seed and nil: paired, unchanged
    assert itself.acc_verdict == "unchanged" and itself.acc_ci_pp == (0.0, 0.0)


def test_a_case_whose_epochs_shared_the_cores_in_one_run_and_not_the_other_says_so():
    """A baseline run at --max-concurrent 1 against a run of two trials at a time: the slowdown is the contention,
    and nothing said so (run.json records the setting; the rows' times show what happened)."""
    import datetime

    def run(side_by_side: bool, fraction: float = 0.25) -> pd.DataFrame:
        frame = _frame([0.9, 0.9], [1.0, 1.0, 1.0])
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        # each trial's epochs end 1 s apart (stamped to the microsecond); one after the other, or both at once
        offset = frame["seed"] * (0 if side_by_side else 10) + frame["epoch"] + fraction
        stamps = [(start + datetime.timedelta(seconds=float(s))).isoformat() for s in offset]
        return frame.assign(timestamp=stamps, eval_time_s=0.0)

    (alone,) = compare_frames(run(False), run(False), Thresholds())
    assert "shared the cores" not in alone.note
    # rows stamped to the whole second (before 2026-12-03): one after the other, short epochs would seem to overlap
    whole = run(True, fraction=0.0)
    assert "shared the cores" not in compare_frames(run(False), whole, Thresholds())[0].note
    untimed = run(True).drop(columns=["timestamp"])  # rows as a script may hold them, without their times
    assert "shared the cores" not in compare_frames(untimed, untimed, Thresholds())[0].note
    (shared,) = compare_frames(run(False), run(True), Thresholds())
    assert "steady epochs that shared the cores with another trial: base 0/6, new 6/6" in shared.note, shared.note
    # not said to be a setting's doing: two runs at the same --max-concurrent overlap their trials by timing too
    assert "by timing at the same; --max-concurrent 1 times each trial alone)" in shared.note


def test_accuracy_regression_needs_size_and_significance():
    times = [1.0, 1.01, 0.99, 1.0]
    base = _frame([0.90, 0.91, 0.90], times)
    clear_drop = _frame([0.85, 0.865, 0.845], times)  # each seed 4.5-5.5 pp down
    noisy_drop = _frame([0.80, 0.99, 0.84], times)  # mean drops 2.7 pp but the seeds disagree wildly
    small_drop = _frame([0.897, 0.905, 0.897], times)
    verdict = lambda new: compare_frames(base, new, Thresholds())[0].acc_verdict  # noqa: E731
    assert verdict(clear_drop) == "regression"
    (noisy,) = compare_frames(base, noisy_drop, Thresholds())  # beyond the band, not decided: never "unchanged"
    assert noisy.acc_verdict == "n/a" and not noisy.regressed and noisy.acc_ci_pp[0] < 0 < noisy.acc_ci_pp[1]
    assert noisy.note.startswith("accuracy not decided: -2.67 pp lies beyond the band, but its 95 % interval [")
    assert noisy.note.endswith("] pp reaches 0; run more seeds"), noisy.note
    assert verdict(small_drop) == "unchanged"
    assert verdict(_frame([0.95, 0.955, 0.945], times)) == "improvement"  # each seed 3.5-5 pp up


def test_accuracy_is_compared_seed_by_seed_so_a_second_seed_cannot_hide_a_drop():
    """Seed s is the same initial weights, batches and masks in both runs: the interval is the t interval of each
    seed's own difference (as the run's statistics table pairs backends). Resampling each run's seeds apart, a
    drop of about 5 pp on two seeds that differ by 7 pp read about [-12, +2] pp, unchanged, where one seed alone was
    a marked regression; and a run against itself showed +0.00 [-7.22, +7.22]."""
    times = [1.0, 1.01, 0.99, 1.0]
    base = _frame([0.8833, 0.8111], times)
    (drop,) = compare_frames(base, _frame([0.8333, 0.7555], times), Thresholds())  # -5.00 and -5.56 pp
    assert drop.acc_verdict == "regression" and -10 < drop.acc_ci_pp[0] < drop.acc_ci_pp[1] < -1, drop.acc_ci_pp
    (itself,) = compare_frames(base, base, Thresholds())
    assert itself.acc_verdict == "unchanged" and itself.acc_ci_pp == (0.0, 0.0)
    # differences all alike take one test image as their spread (their fractions tell 10,000 images): decided
    (alike,) = compare_frames(base, _frame([0.8333, 0.7611], times), Thresholds())
    assert alike.acc_verdict == "regression" and alike.acc_ci_pp == pytest.approx((-5.09, -4.91), abs=0.01)
    assert alike.note.startswith("every seed differs alike: the interval takes one test image as their spread")
    # 4 of 360 images down on both seeds: one image's spread over two seeds reaches 0, so not decided
    (few,) = compare_frames(_frame([356 / 360, 350 / 360], times), _frame([352 / 360, 346 / 360], times))
    assert few.acc_verdict == "n/a" and few.acc_ci_pp[0] < 0 < few.acc_ci_pp[1] and not few.regressed
    # two seeds that disagree (+1 and -11 pp) decide nothing, paired or not: beyond the band, so not "unchanged"
    (mixed,) = compare_frames(base, _frame([0.8933, 0.7011], times), Thresholds())
    assert mixed.acc_verdict == "n/a" and "accuracy not decided: -5.00 pp lies beyond the band" in mixed.note
    low, high = welch_diff_ci(np.array([0.8833, 0.8111]), np.array([0.8333, 0.7555]))
    assert low < -0.1 and high > 0  # the unpaired interval, for runs whose seeds differ


def test_a_collapse_alike_on_every_seed_is_decided_as_one_that_varies_by_an_image():
    """Review 167, finding 1: base 100 % on five seeds, new 50 % on each (a model collapsed to one class) had no
    interval and passed --fail-on-regression, while the same collapse with one base seed an image lower was a
    regression. The differences' spread is floored at one test image, so both are regressions, paired or not."""
    times = [1.0, 1.01, 0.99, 1.0]
    collapsed = _frame([0.5] * 5, times)
    (alike,) = compare_frames(_frame([1.0] * 5, times), collapsed, Thresholds())
    (varies,) = compare_frames(_frame([1.0, 0.9972, 1.0, 0.9972, 1.0], times), collapsed, Thresholds())
    assert alike.acc_verdict == varies.acc_verdict == "regression" and alike.regressed
    half = 2.7764451051977987 * 1.0 / math.sqrt(5)  # t(0.975, 4) × 1 pp (1.0 and 0.5 do not tell the test set)
    assert alike.acc_ci_pp == pytest.approx((-50 - half, -50 + half))
    unpaired = collapsed.assign(seed=collapsed["seed"] + 5)  # no seed in common: Welch's interval, floored alike
    (welch,) = compare_frames(_frame([1.0] * 5, times), unpaired, Thresholds())
    assert welch.acc_verdict == "regression" and welch.acc_ci_pp[1] < -40, welch


def test_one_seed_decides_no_accuracy_change_on_its_size_alone():
    """One seed has no spread to tell noise by: a 4 pp drop on one seed was a marked regression, and failed a
    --seeds 1 gate on a few test images, while the run's own statistics said "1 seed: too few to say"."""
    times = [1.0, 1.0, 1.0]
    (drop,) = compare_frames(_frame([0.9], times), _frame([0.86], times), Thresholds())
    assert drop.acc_verdict == "n/a" and not drop.regressed and drop.acc_diff_pp == pytest.approx(-4.0)
    assert drop.note.startswith("accuracy not decided: noise unknown (1 seed); run 2 seeds or more"), drop.note
    (small,) = compare_frames(_frame([0.9], times), _frame([0.895], times), Thresholds())
    assert small.acc_verdict == "unchanged" and small.note.startswith("noise unknown (1 seed)")
    # one seed against three (no seed in common: the bootstrap sees the three's spread only) decides nothing either
    three = _frame([0.80, 0.81, 0.79], times).assign(seed=lambda f: f["seed"] + 10)
    (mixed,) = compare_frames(_frame([0.9], times), three, Thresholds())
    assert mixed.acc_verdict == "n/a" and not mixed.regressed


def test_one_seed_on_a_side_has_no_accuracy_interval_in_any_table():
    """A bootstrap of one seed against one printed a zero-width "95 % CI" (+11.11 [+11.11, +11.11]) beside "noise
    unknown (1 seed)"; one against three showed the three's spread as if it were the change's. Compare's table, the
    plugin's --baseline markdown and the report all print regression_cells."""
    times = [1.0, 1.0, 1.0]
    three = _frame([0.80, 0.81, 0.79], times).assign(seed=lambda f: f["seed"] + 10)
    for base, new in ((_frame([0.8], times), _frame([0.9111], times)), (_frame([0.9], times), three)):
        (case,) = compare_frames(base, new, Thresholds())
        assert math.isnan(case.acc_ci_pp[0]) and math.isnan(case.acc_ci_pp[1]), case.acc_ci_pp
        cell = regression_cells(case)[7]
        assert "[" not in cell and cell == f"{case.acc_diff_pp:+.2f}", cell


def test_a_p_value_that_underflowed_prints_as_below_double_resolution():
    assert p_cell(0.0) == "<1e-16" and p_cell(3e-17) == "<1e-16" and p_cell(0.0123) == "0.012"
    assert p_cell(math.nan) == "n/a"


def test_a_change_beyond_the_band_that_is_not_decided_is_named_never_called_unchanged():
    """Two seeds' paired interval has one degree of freedom: 0.93 to 0.73 and 0.63 (-25 pp) gave [-88.5, +38.5] pp
    and read "accuracy unchanged", left out of the count line, while the same drop on every seed alike was named.
    A noisy 1.5x slowdown whose interval reached back into the band (p 0.002) read "time unchanged" too."""
    from harness.reporting import comparison_count

    (drop,) = compare_frames(_frame([0.93, 0.93], [1.0, 1.0]), _frame([0.73, 0.63], [1.0, 1.0]), Thresholds())
    assert drop.acc_diff_pp == pytest.approx(-25.0) and drop.acc_ci_pp == pytest.approx((-88.531, 38.531), abs=1e-3)
    assert drop.acc_verdict == "n/a" and not drop.regressed
    assert "accuracy not decided: -25.00 pp lies beyond the band, but its 95 % interval [-88.53, +38.53]" in drop.note
    assert comparison_count([drop]).endswith("accuracy beyond the band but not decided (see the note) in "
                                             "s:scratch-m-d [torch] -25.00 pp")  # fmt: skip
    steady = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.01, 0.99, 1.0]
    noisy = [0.95, 2.1, 1.0, 2.0, 1.52, 1.55, 1.5, 2.2, 0.9]
    (slow,) = compare_frames(_frame([0.9] * 3, steady), _frame([0.9] * 3, noisy), Thresholds())
    assert slow.time_ratio == pytest.approx(1.52) and slow.time_ci[0] < 1.10 and slow.time_p < 0.01
    assert slow.time_verdict == "n/a" and not slow.regressed
    assert "epoch time not decided: ratio 1.520 lies beyond the band, but its 95 % interval [1.000, 2.000] reaches " \
        "into the band; run more epochs or seeds" in slow.note  # fmt: skip
    assert comparison_count([slow]).endswith("epoch time beyond the band but not decided (see the note) in "
                                             "s:scratch-m-d [torch] x1.520")  # fmt: skip
    # p not below alpha, the interval wholly beyond the band: said that way
    (unsure,) = compare_frames(_frame([0.9] * 3, steady), _frame([0.9] * 3, noisy), Thresholds(alpha=0.001))
    assert "the Mann-Whitney p 0.0024 is not below 0.001" in unsure.note, unsure.note


def test_time_regression_needs_size_and_significance():
    accs = [0.9, 0.9]  # two trials a side: one seed decides no time change (below)
    base = _frame(accs, [1.0, 1.02, 0.98, 1.01, 0.99, 1.0])
    slower = _frame(accs, [1.2, 1.22, 1.18, 1.21, 1.19, 1.2])
    slightly = _frame(accs, [1.05, 1.07, 1.03, 1.06, 1.04, 1.05])  # significant but below the 10 % threshold
    mixed = _frame(accs, [0.8, 1.6, 0.9, 1.5, 1.0, 1.4])  # median up a lot, but not consistently
    verdict = lambda new: compare_frames(base, new, Thresholds())[0].time_verdict  # noqa: E731
    assert verdict(slower) == "regression"
    assert verdict(slightly) == "unchanged"
    assert verdict(mixed) == "n/a"  # beyond the band, not decided (it read "unchanged")
    assert verdict(_frame(accs, [0.8, 0.81, 0.79, 0.8, 0.8, 0.82])) == "improvement"


def test_one_seed_decides_no_time_change_beyond_the_band():
    """Review 179, finding 1: with one trial on a side the epochs decided alone, though one trial's epochs move
    together (its seed, the load of its minutes): a 1.2x change of one seed a side was a regression, and identical
    one-seed runs read so 1 time in 7 (test_one_seed_identical_runs_are_never_called_a_time_regression). As one
    seed's accuracy, and the same case within a run: unchanged within the band, else not decided, noted."""
    base = _frame([0.9], [1.0, 1.02, 0.98, 1.01, 0.99, 1.0])
    (slower,) = compare_frames(base, _frame([0.9], [1.2, 1.22, 1.18, 1.21, 1.19, 1.2]), Thresholds())
    assert slower.time_verdict == "n/a" and not slower.regressed and not slower.time_marked
    assert slower.time_ci[0] > 1.10 and slower.time_p < 0.01  # what decided it before
    said = "epoch time not decided: ratio 1.200 lies beyond the band, but noise between trials unknown (1 seed a side)"
    assert f"{said}; run 2 seeds or more" in slower.note, slower.note
    assert comparison_count([slower]).endswith("epoch time beyond the band but not decided (see the note) in "
                                               "s:scratch-m-d [torch] x1.200")  # fmt: skip
    (faster,) = compare_frames(base, _frame([0.9], [0.8, 0.81, 0.79, 0.8, 0.8, 0.82]), Thresholds())
    assert faster.time_verdict == "n/a" and "(1 seed a side)" in faster.note
    (slightly,) = compare_frames(base, _frame([0.9], [1.05, 1.07, 1.03, 1.06, 1.04, 1.05]), Thresholds())
    assert slightly.time_verdict == "unchanged" and "epoch time" not in slightly.note
    # one seed in base against two in new: the base's noise between trials is unknown still
    (mixed,) = compare_frames(base, _frame([0.9, 0.9], [1.2, 1.22, 1.18, 1.21, 1.19, 1.2]), Thresholds())
    assert mixed.time_verdict == "n/a" and "noise between trials unknown (1 seed in base)" in mixed.note, mixed.note


def test_a_case_whose_runtime_options_changed_says_which():
    """A slower case may be slower because of its options (--bn-statistics float64, --jit-compile), not the code:
    the comparison's note names every runtime option that differs; thread counts are warned about run-wide."""
    accs, times = [0.9], [1.0, 1.0, 1.0]

    def with_runtime(**settings):
        frame = _frame(accs, times)
        frame["config_json"] = json.dumps({"runtime": {**RuntimeOptions().__dict__, **settings}})
        return frame

    base = with_runtime()
    note = lambda new: compare_frames(base, new, Thresholds())[0].note  # noqa: E731
    assert note(with_runtime(bn_statistics="float64", threads=2)).startswith(
        "runtime differs: bn_statistics float32→float64;"
    )
    assert "runtime differs" not in note(with_runtime(threads=2)) and "runtime" not in note(with_runtime())
    # a baseline saved before tf32 and epoch_loop were recorded ran them at their defaults: no difference to note
    older = _frame(accs, times)
    recorded = {k: v for k, v in RuntimeOptions().__dict__.items() if k not in ("tf32", "epoch_loop")}
    older["config_json"] = json.dumps({"runtime": recorded})
    assert "runtime" not in compare_frames(older, base, Thresholds())[0].note
    # on a GPU an older run's TF32 was its framework's own default, not today's off: unknown, noted
    older_gpu, gpu = _frame(accs, times), with_runtime(device="gpu")
    older_gpu["config_json"] = json.dumps({"runtime": {**recorded, "device": "gpu"}})
    assert "runtime differs: tf32 -→False" in compare_frames(older_gpu, gpu, Thresholds())[0].note
    assert "runtime differs: tf32 False→True" in note(with_runtime(tf32=True))


def test_a_case_whose_network_changed_under_the_same_settings_says_so():
    """Code can build another network from the same settings (the output bias dropped with use_bias=False, 1cycle
    ending otherwise): config_json is alike, the parameter count is not."""
    base = _frame([0.9], [1.0, 1.0, 1.0]).assign(params=300_010, forward_macs=296_000)
    note = lambda new: compare_frames(base, new, Thresholds())[0].note  # noqa: E731
    assert note(base.assign(params=300_000)).startswith("network differs: params 300,010→300,000")
    assert "network" not in note(base) and "network" not in note(base.drop(columns=["params", "forward_macs"]))


def test_a_case_run_on_other_data_under_the_datasets_name_says_so_and_a_run_without_the_key_is_silent():
    """Two runs of one case on other files under the dataset's name (each trial's data_key: what preflight read) are
    of other images: compare says so. A run recorded before the key was, or one key alike, says nothing."""
    accs, times = [0.9], [1.0, 1.0, 1.0]

    def with_data(key: str | None, model_key: str | None = None) -> pd.DataFrame:
        frame = _frame(accs, times)
        config = TrialConfig("scratch", "m", "d", "torch", 0, 5, data_key=key, model_key=model_key)
        frame["config_json"] = config.to_json()
        return frame

    note = lambda base, new: compare_frames(base, new, Thresholds())[0].note  # noqa: E731
    assert note(with_data("aaa"), with_data("bbb")).startswith("data differs: content aaa→bbb")
    edited = note(with_data("aaa", "spec 1"), with_data("aaa", "spec 2"))
    assert edited.startswith("model differs: content spec 1→spec 2") and "config" not in edited
    assert "data" not in note(with_data(None), with_data("bbb")) and "config" not in note(
        with_data(None), with_data("b")
    )
    assert "data" not in note(with_data("aaa"), with_data("aaa"))
    # a key of every pixel against an older, sampled key of the same images: other hashes, not other data
    assert "data" not in note(with_data("4e455a286ad4"), with_data("sha256:4966f5d8041ae95a"))
    assert note(with_data("sha256:aaa"), with_data("sha256:bbb")).startswith("data differs: content sha256:aaa→")
    # the weights' sha256 a trial recorded (weights_key) is no setting: the rows' weights_sha256 say what it started
    # from; a run from before the key (null) and one after read as "config differs: weights_key null→…" before
    keyed = with_data("aaa")
    keyed["config_json"] = TrialConfig(
        "scratch", "m", "d", "torch", 0, 5, data_key="aaa", weights_key="ab" * 32
    ).to_json()
    assert "config" not in note(with_data("aaa"), keyed)


def test_a_case_whose_settings_changed_says_which_and_a_field_one_version_did_not_record_is_no_change():
    """The same case name run with other epochs or another batch size is another experiment: before, a 13 pp drop
    from 5 epochs to 2 read as an accuracy regression with nothing but "noise unknown" beside it."""
    accs, times = [0.9], [1.0, 1.0, 1.0]

    def with_config(**changes):
        frame = _frame(accs, times)
        config = replace(TrialConfig("scratch", "m", "d", "torch", 0, 5), **changes).to_dict()
        frame["config_json"] = json.dumps(config)
        return frame

    base = with_config()
    note = lambda new: compare_frames(base, new, Thresholds())[0].note  # noqa: E731
    assert note(with_config(epochs=2, batch_size=128)).startswith("config differs: batch_size 64→128, epochs 5→2;")
    changed_task = note(with_config(task=TaskSpec(classes=(0, 1))))  # an unset optional config, then set
    assert changed_task.startswith('config differs: task null→{"classes": [0, 1]};')
    assert "config" not in note(with_config(seed=1, data_dir="/elsewhere", cache_dir="/tmp/c"))
    # a run of a version that had no augment options yet ran without augmentation, their default
    older = _frame(accs, times)
    older["config_json"] = json.dumps({k: v for k, v in json.loads(base["config_json"][0]).items() if k != "augment"})
    assert "config" not in note(older)
    augmented = compare_frames(older, with_config(augment=AugmentConfig(flip=True)), Thresholds())[0].note
    assert augmented.startswith("config differs: augment.flip false→true;")
    # settings the strategy never reads (a source recipe beside pretrained weights) and where a weight file lies
    from_weights = with_config(transfer=TransferOptions(pretrained="torchvision:resnet18"))
    recipe = TransferOptions(pretrained="torchvision:resnet18", source_epochs=10, weights_file="/home/a/w.pt")
    fine_tune = lambda frame: frame.assign(strategy="fine_tune")  # noqa: E731
    same = compare_frames(fine_tune(from_weights), fine_tune(with_config(transfer=recipe)), Thresholds())[0].note
    assert "config" not in same
    trained = compare_frames(fine_tune(base), fine_tune(with_config(transfer=TransferOptions(source_epochs=10))))
    assert trained[0].note.startswith("config differs: transfer.source_epochs 5→10;")  # a backbone xfbench trains


def test_the_unpaired_interval_is_welchs_and_two_seeds_a_side_decide_no_drop_they_cannot_tell_from_noise():
    """Runs with no seed ok in both: two seeds a side (0.900, 0.905 against 0.885, 0.890) were a marked regression
    under a bootstrap of each side's seeds (three distinct means a side, interval [-2.0, -1.0] pp); Welch's 95 %
    interval is [-3.02, +0.02] pp (scipy's ttest_ind agrees), which decides nothing."""
    from scipy.stats import ttest_ind

    base, new = np.array([0.9, 0.91, 0.92]), np.array([0.8, 0.82, 0.81])
    low, high = welch_diff_ci(base, new)
    expected = ttest_ind(new, base, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-12) and high < 0
    times = [1.0, 1.0, 1.0]
    both = _frame([0.900, 0.905, 0.885, 0.890], times)
    failed = lambda frame, seeds: frame.assign(  # noqa: E731
        status=frame["status"].where(~frame["seed"].isin(seeds), "failed"),
        test_acc=frame["test_acc"].where(~frame["seed"].isin(seeds)),
    )
    (case,) = compare_frames(failed(both, [2, 3]), failed(both, [0, 1]), Thresholds())
    assert case.acc_diff_pp == pytest.approx(-1.5)
    # each side's two seeds 0.5 pp apart: a spread under the one test image (0.5 pp: their fractions tell 200
    # images) that the interval takes, so wider than scipy's [-3.02, +0.02]
    assert case.acc_ci_pp == pytest.approx((-1.5 - 4.302652729911275 * 0.5, -1.5 + 4.302652729911275 * 0.5))
    assert case.acc_verdict == "n/a" and "no seed ended ok in both" in case.note  # -1.5 pp: beyond, undecided
    assert "accuracy not decided: -1.50 pp lies beyond the band, but its 95 % interval [-3.65, +0.65]" in case.note
    # neither side's seeds differ: each side's spread is one test image (at most 1 pp where the accuracies do not
    # tell the test set's size), so a 10 pp drop is decided (it had no interval, and was never decided)
    alike = _frame([0.9, 0.9, 0.8, 0.8], times)
    (flat,) = compare_frames(failed(alike, [2, 3]), failed(alike, [0, 1]))
    half = 4.302652729911275 * 1.0  # t(0.975, 2) × the standard error of 1 pp a side over 2 seeds a side
    assert flat.acc_verdict == "regression" and flat.acc_ci_pp == pytest.approx((-10 - half, -10 + half))
    assert "neither run's seeds differ in accuracy: the interval takes one test image as each run's spread" in flat.note


def test_a_drop_of_exactly_the_threshold_is_not_more_than_it():
    """Per-seed drops of 90, 100 and 110 test images of 10,000: -1.00 pp on average, which float arithmetic made
    -1.000000000000012 and a regression although the threshold is a drop of more than 1 pp."""
    times = [1.0, 1.0, 1.0]
    base = [0.9812, 0.9790, 0.9805]
    (case,) = compare_frames(
        _frame(base, times), _frame([b - d for b, d in zip(base, (0.009, 0.01, 0.011), strict=True)], times)
    )
    assert case.acc_diff_pp == -1.0 and case.acc_ci_pp[1] < 0 and case.acc_verdict == "unchanged"


def test_a_tiny_significance_level_says_how_many_epochs_would_do_instead_of_crashing():
    times = [1.0] * 4
    (case,) = compare_frames(_frame([0.9, 0.9], times), _frame([0.9, 0.9], [3.0] * 4), Thresholds(alpha=1e-40))
    assert case.time_verdict == "n/a" and "(119 a side can)" in case.note
    (tiniest,) = compare_frames(_frame([0.9, 0.9], times), _frame([0.9, 0.9], [3.0] * 4), Thresholds(alpha=1e-320))
    assert "(947 a side can)" in tiniest.note  # 1/alpha is infinite: the count loop had run for ever


def test_the_mann_whitney_floor_is_that_of_the_method_scipy_uses_for_the_sizes():
    """20 steady epochs a side, the new run 3x slower: scipy's normal approximation (above 8 a side) cannot go
    below p = 3.4e-8, yet the exact floor 1/C(40, 20) = 7e-12 was taken, so --alpha 1e-10 read "unchanged"."""
    base = _frame([0.9, 0.9], [1.0 + i / 1000 for i in range(10)])
    slower = _frame([0.9, 0.9], [3.0 + i / 1000 for i in range(10)])
    (case,) = compare_frames(base, slower, Thresholds(alpha=1e-10))
    assert case.time_ratio == pytest.approx(3.0, rel=0.01) and case.time_verdict == "n/a"
    assert "20 and 20 steady epochs cannot reach p < 1e-10" in case.note and "(28 a side can)" in case.note
    assert compare_frames(base, slower, Thresholds(alpha=1e-7))[0].time_verdict == "regression"


def test_too_few_steady_epochs_to_test_are_not_called_unchanged():
    """Two steady epochs a side: the one-sided Mann-Whitney p is 1/6 at best, so no slowdown could ever be flagged;
    three times slower read 'time unchanged'. Five a side can reach p < 0.01. Two trials a side (seeds 0 and 1 of
    ``epochs`` epochs each): one seed decides no time change (test_one_seed_decides_no_time_change_beyond_the_band)."""

    def run(seconds: float, epochs: int, trials: int = 2) -> pd.DataFrame:
        return to_frame(
            [
                {
                    "run_id": "r",
                    "trial_id": f"t{seed}",
                    "suite": "s",
                    "strategy": "scratch",
                    "model": "mlp",
                    "dataset": "digits",
                    "variant": "",
                    "backend": "torch",
                    "seed": seed,
                    "phase": "train",
                    "epoch": e,
                    "warmup": e == 1,
                    "status": "ok",
                    "epoch_time_s": seconds * (1 + 0.01 * e),
                    "samples_per_s": 1.0,
                    "test_acc": 0.9 if e == epochs else math.nan,
                    "config_json": "{}",
                }
                for seed in range(trials)
                for e in range(1, epochs + 1)
            ]
        )

    (few,) = compare_frames(run(1.0, 2), run(3.0, 2))
    assert few.time_verdict == "n/a" and not few.regressed
    assert "epoch time not decided: 2 and 2 steady epochs cannot reach p < 0.01" in few.note
    assert "(5 a side can)" in few.note
    (enough,) = compare_frames(run(1.0, 4), run(3.0, 4))
    assert enough.time_verdict == "regression" and "not decided" not in enough.note
    # one steady epoch a side (one trial): no interval at all; 2.5x slower is undecided, not unchanged
    (single,) = compare_frames(run(1.0, 2, trials=1), run(2.5, 2, trials=1))
    assert single.time_verdict == "n/a" and math.isnan(single.time_ci[0])
    assert "epoch time not decided: ratio 2.500 lies beyond the band, but noise between trials unknown" in single.note
    (alike,) = compare_frames(run(1.0, 2), run(1.0, 2))  # within the band: unchanged, as the interval shows
    assert alike.time_verdict == "unchanged" and "not decided" not in alike.note
    # The count line and the gate's markdown say so: "0 regression(s)" alone read as a clean bill of health
    from harness.reporting import comparison_count, comparison_markdown

    undecided = "epoch time beyond the band but not decided (see the note) in s:scratch-mlp-digits"
    assert comparison_count([few]).endswith(f"{undecided} [torch] x3.000"), comparison_count([few])
    assert f"**0 regression(s)**; {undecided} [torch] x3.000." in comparison_markdown([few], "a", "b", [], Thresholds())
    assert comparison_count([alike]) == "0 regression(s) in 1 case(s) run by both"


def test_a_baseline_name_saved_for_several_thread_counts_is_the_one_of_the_compared_runs_machine(tmp_path, capsys):
    """The same name saved from a 1-thread and a 2-thread run: compare took the first in alphabetical order (t1),
    with only a thread-count warning, though a t2 baseline for the 2-thread run was there. It takes the baseline
    saved under the new run's machine key, and refuses to guess where several could be meant."""
    from harness.provenance import cpu_model

    def run(name: str, threads: int, acc: float) -> Path:
        frame = _frame([acc, acc + 0.01], [1.0, 1.0, 1.0]).assign(cpu=cpu_model(), gpu="", threads=threads)
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "results.parquet")
        return tmp_path / name

    for name, threads, acc in (("one", 1, 0.9), ("two", 2, 0.8), ("new-two", 2, 0.8), ("new-four", 4, 0.8)):
        run(name, threads, acc)
    for source in ("one", "two"):
        assert main(["baseline", "save", "gate", "--run", source, "--results-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["compare", "gate", "new-two", "--results-dir", str(tmp_path), "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "thread counts" not in out and "0 regression(s)" in out, out
    for args in (["compare", "gate", "new-four"], ["report", "gate", "-o", str(tmp_path / "r.html")]):
        assert main([*args, "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "Expected one baseline 'gate' saved" in err and "-t1, " in err and err.rstrip().endswith("/gate."), err
    # a typo in NEW is said, not the ambiguity its machine would have settled; a run id refused as a baseline's name
    assert main(["compare", "gate", "no-such-run", "--results-dir", str(tmp_path)]) == 2
    assert "Received: 'no-such-run'" in capsys.readouterr().err
    assert main(["run", "--suite", "smoke", "--run-id", "gate", "--results-dir", str(tmp_path)])
    assert "Expected a --run-id that no saved baseline goes by" in capsys.readouterr().err
    # a GPU or cluster session's key is its workers': the plugin checks that some baseline of the name is there
    from harness.baselines import expected_machine_key, resolve

    assert expected_machine_key(2, 1.0, None) is None and expected_machine_key(2, 0.0, "10.0.0.1:6379") is None
    assert resolve("gate", tmp_path, expected_machine_key(2, 0.0, None)).parent.name.endswith("-t2")
    assert resolve("gate", tmp_path, None, choose=False).name == "gate"


def test_steady_epochs_without_recorded_times_are_not_said_to_be_warm_up_only():
    """Rows of three epochs whose times are missing were noted "no trial ran past a phase's first, warm-up,
    epoch; run 2 epochs or more", which three epochs had."""
    times = [1.0, 1.0, 1.0]
    untimed = _frame([0.9, 0.91], times).assign(epoch_time_s=float("nan"))
    (case,) = compare_frames(_frame([0.9, 0.91], times), untimed)
    assert case.time_verdict == "n/a" and "epoch time not compared: no epoch time recorded in new" in case.note
    assert "warm-up" not in case.note
    (one_epoch,) = compare_frames(_frame([0.9, 0.91], times), _frame([0.9, 0.91], []))
    assert "no steady epoch in new" in one_epoch.note


def test_a_run_none_of_whose_trials_ended_ok_is_not_told_to_run_more_epochs():
    """Four-epoch trials that all diverged at their last epoch were noted "no steady epoch in new (no trial that
    ended ok ran past a phase's first, warm-up, epoch); run 2 epochs or more": they had run four."""
    times = [1.0, 1.0, 1.0]
    diverged = _frame([0.9, 0.91], times)
    diverged.loc[diverged["epoch"] == len(times) + 1, "status"] = "diverged"
    (case,) = compare_frames(_frame([0.9, 0.91], times), diverged)
    assert case.time_verdict == "n/a" and "epoch time not compared: no trial in new ended ok" in case.note
    assert "run 2 epochs" not in case.note and "warm-up" not in case.note
    (both,) = compare_frames(diverged, diverged)
    assert "no trial in base and new ended ok" in both.note and "run 2 epochs" not in both.note
    (mixed,) = compare_frames(_frame([0.9, 0.91], []), diverged)  # base ended ok after its warm-up epoch only
    assert "no trial in new ended ok" in mixed.note and "no steady epoch in base" in mixed.note


def test_the_rules_and_the_docstring_name_welchs_interval_for_runs_without_a_common_seed():
    """The accuracy interval of runs without a common seed is Welch's t (:func:`welch_diff_ci`); the printed rules
    and the module's docstring still said a bootstrap of each run's seeds, which was dropped."""
    rules = " ".join(comparison_rules(Thresholds()).split())
    docstring = " ".join((compare.__doc__ or "").split())
    for text in (rules, docstring):
        assert "Welch's t interval of the two runs' seeds" in text and "two or more a side" in text
        # the time mark's third condition (_confirmed_by_trials), which the rules and docstring left out
        assert "Welch's test on the trials' log median epoch times agrees" in text
        assert "one trial on a side decides no time change" in text
        assert "bootstrap of each run's seeds" not in text
    regressions = " ".join((Path(__file__).resolve().parents[1] / "docs" / "regressions.md").read_text().split())
    assert "Runs without a seed ok in both: Welch's t interval of the two runs' seeds" in regressions


def test_the_fewest_epochs_the_docs_say_reach_p_below_001_are_the_fewest_the_codes_test_reaches_it_with():
    """docs/regressions.md gave 4 against 6 and 3 against 10, where the code's one-sided test reaches p < 0.01 at 4
    against 5 (p 0.0079) and 3 against 7 (0.0083)."""
    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "regressions.md").read_text().split())
    claim = re.search(r"five a side when balanced, (.*?) otherwise", text)
    assert claim, "the sentence on the fewest epochs a side is gone"
    pairs = [(int(m), int(n)) for m, n in re.findall(r"(\d+) against (\d+)", claim.group(1))]
    assert pairs and _epochs_a_side_reaching(0.01) == 5 and _smallest_p(4, 4) >= 0.01
    for m, n in pairs:  # each the fewest: one epoch fewer on the larger side does not reach it
        assert _smallest_p(m, n) < 0.01 <= _smallest_p(m, n - 1), (m, n)


def test_history_marks_a_case_run_with_other_seeds_than_the_run_before():
    """A trend of mean accuracy over 2 seeds, then 1, then 3 moved by which seeds were drawn: compare noted it
    ("seeds differ"), history marked nothing."""
    from harness.baselines import labelled_by_case, settings_changes

    times = [1.0, 1.0]
    runs = {name: labelled_by_case(_frame(accs, times), None) for name, accs in (("1", [0.9, 0.91]), ("2", [0.9]))}
    runs["3"] = labelled_by_case(_frame([0.9], times), None)
    assert [(c.run_id, c.what) for c in settings_changes(runs)] == [("2", "seeds 0,1→0")]


def test_trials_that_ended_ok_without_a_test_accuracy_are_noted():
    times = [1.0, 1.0, 1.0]
    untested = _frame([0.9, 0.91], times).assign(test_acc=float("nan"))
    (case,) = compare_frames(_frame([0.9, 0.91], times), untested)
    assert case.acc_verdict == "n/a" and "accuracy not compared: no test accuracy recorded in new" in case.note
    failed = _frame([0.9, 0.91], times).assign(status="failed", test_acc=float("nan"))  # said by the trials' note
    assert "accuracy not compared" not in compare_frames(_frame([0.9, 0.91], times), failed)[0].note


def test_a_ratio_beyond_the_band_too_few_epochs_cannot_decide_is_undecided_though_its_interval_reaches_the_band():
    """3 against 3 steady epochs cannot reach p < 0.01; 1.36x slower at [1.046, 2.232] read "unchanged" with no note
    and "0 regression(s)", because only an interval wholly beyond the band counted as beyond it."""
    from harness.reporting import comparison_count

    def trials(*epochs: list[float]) -> pd.DataFrame:  # two trials a side: one seed decides no time change
        frames = [_frame([0.9], times).assign(trial_id=f"t{seed}", seed=seed) for seed, times in enumerate(epochs)]
        return pd.concat(frames, ignore_index=True)

    (case,) = compare_frames(trials([1.0, 1.01], [0.99]), trials([1.0, 1.4], [1.45]))
    assert case.time_ratio == pytest.approx(1.4) and case.time_ci[0] < 1.10 < case.time_ratio
    assert case.time_verdict == "n/a" and "epoch time not decided: 3 and 3 steady epochs cannot reach" in case.note
    assert comparison_count([case]).endswith("(see the note) in s:scratch-m-d [torch] x1.400")
    # where the test could decide (6 a side), an interval reaching into the band decides nothing either: not
    # "unchanged" (as it read until 2026-12-06), and the note says why
    (decidable,) = compare_frames(_frame([0.9, 0.9], [1.0, 1.01, 0.99]), _frame([0.9, 0.9], [1.0, 1.4, 1.45]))
    assert decidable.time_verdict == "n/a" and "lies beyond the band, but its 95 % interval" in decidable.note


def test_the_command_lines_threshold_defaults_are_compares_own():
    """The options' defaults live beside the parser (which must not import pandas and scipy to start), so this pins
    them to ``Thresholds``' defaults: compare, the report's history and the plugin's gate decide alike."""
    from harness.option_types import THRESHOLD_DEFAULTS

    defaults = Thresholds()
    assert THRESHOLD_DEFAULTS == {
        "time_threshold": defaults.time_ratio,
        "accuracy_threshold": defaults.accuracy_pp,
        "alpha": defaults.alpha,
        "times_across_machines": defaults.times_across_machines,
    }


def _trials(levels: list[float]) -> pd.DataFrame:
    """One trial per level, each of four steady epochs within 1 % of it (seeds 0, 1, ...)."""
    frames = [
        _frame([0.9], [level * f for f in (1.0, 1.01, 0.99, 1.005)]).assign(trial_id=f"t{seed}", seed=seed)
        for seed, level in enumerate(levels)
    ]
    return pd.concat(frames, ignore_index=True)


def test_a_time_change_the_trials_medians_do_not_decide_is_not_a_regression():
    """Every epoch of the new trials beyond every epoch of the base's, so the pooled epochs' Mann-Whitney test and
    the bootstrap over two trials a side called it a regression: yet the trials spread (1.0 and 1.1 against 1.3 and
    1.5) as a seed's minutes on the machine do, and two identical runs read so 3.7 % of the time. The trials must
    differ too (Welch on their log medians); where they do, the regression stands."""
    (spread,) = compare_frames(_trials([1.0, 1.1]), _trials([1.3, 1.5]), Thresholds())
    assert spread.time_ci[0] > 1.10 and spread.time_p < 0.01  # what decided it before
    assert spread.time_verdict == "n/a" and not spread.regressed
    assert re.search(
        r"epoch time not decided: ratio 1\.\d{3} lies beyond the band, but the trials' medians \(2 and 2\) do not "
        r"decide it \(Welch p 0\.\d+, not below 0\.05\); run more seeds",
        spread.note,
    ), spread.note
    (consistent,) = compare_frames(_trials([1.0, 1.02]), _trials([1.3, 1.32]), Thresholds())
    assert consistent.time_verdict == "regression" and consistent.regressed
    (faster,) = compare_frames(_trials([1.3, 1.5]), _trials([1.0, 1.1]), Thresholds())
    assert faster.time_verdict == "n/a" and "do not decide it" in faster.note
    # one trial a side has no Welch test: nothing decides it (test_one_seed_decides_no_time_change_beyond_the_band)


def test_a_case_whose_epochs_ran_beside_much_more_other_work_in_one_run_says_so():
    """Two quick runs 70 s apart read TensorFlow 2.0-2.4x slower, other work having started on the machine, and
    nothing said so: the rows now carry the CPUs other processes kept busy (harness.host_load)."""
    base = _trials([1.0, 1.02]).assign(other_cpus=0.1)
    new = _trials([1.3, 1.32]).assign(other_cpus=1.4)
    (loaded,) = compare_frames(base, new, Thresholds())
    assert "other processes kept 0.1 CPUs busy beside its steady epochs in base, 1.4 in new (median" in loaded.note
    (alike,) = compare_frames(base, new.assign(other_cpus=0.5), Thresholds())  # under half a CPU apart
    assert "other processes" not in alike.note
    (unrecorded,) = compare_frames(_trials([1.0, 1.02]), new, Thresholds())  # rows from before the column
    assert "other processes" not in unrecorded.note


def _save_run(root: Path, name: str, frame: pd.DataFrame) -> Path:
    run_dir = root / name
    run_dir.mkdir()
    frame.assign(run_id=name).to_parquet(run_dir / "results.parquet", index=False)
    info = {"run_id": name, "started": f"2026-12-07T0{len(list(root.iterdir()))}:00:00+00:00", "status": "finished"}
    (run_dir / "run.json").write_text(json.dumps({**info, "git_commit": "abc"}))
    return run_dir


def test_epoch_times_of_runs_on_other_machines_are_not_decided_unless_asked(tmp_path, capsys, monkeypatch):
    """compare warned "epoch times are not comparable" across machines, then called a 1.3x change on another CPU a
    regression and failed the gate on it. Now such a verdict is n/a, noted, unless --times-across-machines."""
    monkeypatch.setenv("COLUMNS", "250")
    base, new = _trials([1.0, 1.02]).assign(cpu="CPU A"), _trials([1.3, 1.32]).assign(cpu="CPU B")
    (elsewhere,) = compare_frames(base, new, Thresholds())
    assert elsewhere.time_verdict == "n/a" and not elsewhere.regressed and elsewhere.time_ratio > 1.25
    assert (
        "epoch time not decided: base timed on 'CPU A' no GPU, new on 'CPU B' no GPU; another machine's times are "
        "not the code's alone (--times-across-machines decides them)"
    ) in elsewhere.note
    (asked,) = compare_frames(base, new, Thresholds(times_across_machines=True))
    assert asked.time_verdict == "regression" and "CPU B" not in asked.note
    (same_machine,) = compare_frames(base, new.assign(cpu="CPU A"), Thresholds())
    assert same_machine.time_verdict == "regression"
    a, b = _save_run(tmp_path, "a", base), _save_run(tmp_path, "b", new)
    assert main(["compare", str(a), str(b), "--fail-on-regression"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "different machines" in out and "compare leaves the time verdicts of cases timed on other machines" in out
    assert "another machine's times" in out
    # not "beyond the band": it is not decided whatever it moved (one at x1.000 was listed so)
    said = "epoch time of other machines or thread counts, not decided (--times-across-machines) in"
    assert f"{said} s:scratch-m-d [torch] x1.2" in out
    assert "beyond the band but not decided" not in out
    (alike,) = compare_frames(base, base.assign(cpu="CPU B"), Thresholds())
    assert (
        alike.time_verdict == "n/a"
        and alike.other_machines
        and comparison_count([alike]).endswith(f"{said} {alike.case} [torch] x1.000")
    )
    # a side whose rows name no machine is not known to be this machine: not decided either, as the warning says
    (unknown,) = compare_frames(base.assign(cpu=None), new, Thresholds())
    assert unknown.time_verdict == "n/a" and "base timed on no machine recorded, new on 'CPU B' no GPU" in unknown.note
    assert main(["compare", str(a), str(b), "--fail-on-regression", "--times-across-machines"]) == 1
    assert "another machine's times" not in capsys.readouterr().out
    rules = " ".join(comparison_rules(Thresholds()).split())
    assert "so is any time between runs on other machines (CPU model or GPU) or thread counts (--times-across" in rules
    rules = " ".join(comparison_rules(Thresholds(times_across_machines=True)).split())
    assert "runs on other machines (CPU model or GPU) or thread counts are compared too (--times-across" in rules


def test_epoch_times_run_with_other_thread_counts_are_not_decided_unless_asked_and_the_case_names_them():
    """Review 167, finding 5: another CPU left the time n/a, another --cpus-per-trial was decided with a run-wide
    warning only and an empty case note: 1 thread against 4 that ran a slower code read an "improvement", and 4
    against 1 a "regression"."""
    base, new = _trials([1.0, 1.02]).assign(threads=1), _trials([0.8, 0.82]).assign(threads=4)
    (other,) = compare_frames(base, new, Thresholds())
    assert other.time_verdict == "n/a" and other.other_machines and other.time_ratio < 0.85
    assert "epoch time not decided: threads 1→4; other thread counts' times are not the code's alone" in other.note
    (slower,) = compare_frames(new.assign(threads=4), _trials([1.3, 1.32]).assign(threads=1), Thresholds())
    assert slower.time_verdict == "n/a" and not slower.regressed and "threads 4→1" in slower.note
    (asked,) = compare_frames(base, new, Thresholds(times_across_machines=True))
    assert asked.time_verdict == "improvement" and "threads 1→4: the time change holds theirs too" in asked.note
    (same,) = compare_frames(base, new.assign(threads=1), Thresholds())
    assert same.time_verdict == "improvement" and "threads" not in same.note
    said = "epoch time of other machines or thread counts, not decided (--times-across-machines) in"
    assert f"{said} {other.case} [torch] x0.8" in comparison_count([other])


def test_a_run_whose_trials_ran_on_two_framework_versions_is_told_from_one_that_ran_on_one(tmp_path, capsys):
    """framework_versions kept each backend's first row's version: a run whose last seed ran on torch 2.1 (resumed
    after an upgrade) read as 2.0 against an all-2.0 base, and compare warned of nothing."""
    from harness.summary import framework_versions

    base = _trials([1.0, 1.02, 1.01]).assign(framework_version="2.0", cpu="CPU A")
    new = base.assign(framework_version=np.where(base["seed"] == 2, "2.1", "2.0"))
    assert framework_versions(base) == {"torch": "2.0"} and framework_versions(new) == {"torch": "2.0,2.1"}
    a, b = _save_run(tmp_path, "a", base), _save_run(tmp_path, "b", new)
    assert main(["compare", str(a), str(b)]) == 0
    assert "different torch versions: base 2.0, new 2.0,2.1" in " ".join(capsys.readouterr().out.split())


def test_an_unchanged_times_p_is_the_test_of_the_ratios_direction():
    """The p column held the smaller of the two one-sided p: beside a ratio above 1, the test of "new faster"."""
    from scipy.stats import mannwhitneyu

    base_times, new_times = [1, 1, 1, 2, 2, 2], [1.6] * 4 + [0.5] * 3
    (row,) = compare_frames(_frame([0.9], base_times), _frame([0.9], new_times), Thresholds())
    slower = mannwhitneyu(new_times, base_times, alternative="greater").pvalue
    faster = mannwhitneyu(new_times, base_times, alternative="less").pvalue
    assert row.time_ratio > 1 and row.time_verdict == "unchanged" and faster < slower
    assert row.time_p == pytest.approx(slower)


def test_one_seed_identical_runs_are_never_called_a_time_regression():
    """Review 179, finding 1: identical runs of one trial a side (nine steady epochs, 10 % spread between trials, 2 %
    between epochs) were called a regression 15 % of the time, the interval and Mann-Whitney test over one trial's
    epochs blind to the spread between trials. The rule now decides no one-seed change beyond the band."""

    def side(rng: np.random.Generator) -> pd.DataFrame:
        times = np.exp(rng.normal(0, 0.1)) * (1 + rng.normal(0, 0.02, 9))
        return pd.DataFrame([{"trial_id": "t0", "epoch_time_s": float(t)} for t in times])

    rng = np.random.default_rng(0)
    t = Thresholds(bootstrap_samples=200)
    changes = [compare._time_verdict(side(rng), side(rng), t) for _ in range(120)]
    decided_before = [c for c in changes if c.ratio > 1 and c.ci[0] > t.time_ratio and c.p < t.alpha]
    assert len(decided_before) >= 6, len(decided_before)  # what the epochs alone called a regression
    assert not any(c.verdict in ("regression", "improvement") for c in changes)
    assert all(c.verdict == "n/a" and "(1 seed a side); run 2 seeds or more" in c.note for c in decided_before)


def test_a_stricter_alpha_lowers_the_false_time_regressions_of_identical_runs():
    """Review 167, finding 2: the trials' Welch test sat at 0.05 whatever --alpha, and an interval beyond the band
    has its epochs apart (Mann-Whitney's p 7.8e-5 at 8 against 8), so a stricter --alpha, docs/regressions.md's
    remedy for a large suite, left its false regressions as they were. Identical runs of two trials a side, 30 %
    spread between trials: the same pairs, judged at alpha 0.01 and 0.001."""

    def side(rng: np.random.Generator) -> pd.DataFrame:
        times = [np.exp(rng.normal(0, 0.3)) * (1 + rng.normal(0, 0.02, 4)) for _ in range(2)]
        return pd.DataFrame([{"trial_id": f"t{i}", "epoch_time_s": float(t)} for i, ts in enumerate(times) for t in ts])

    rng = np.random.default_rng(0)
    pairs = [(side(rng), side(rng)) for _ in range(120)]
    false = {
        alpha: sum(
            compare._time_verdict(base, new, Thresholds(alpha=alpha, bootstrap_samples=200)).verdict == "regression"
            for base, new in pairs
        )
        for alpha in (0.01, 0.001)
    }
    assert false[0.01] >= 3 and false[0.001] < false[0.01] / 2, false
    assert Thresholds().trials_alpha == pytest.approx(0.05) and Thresholds().time_confidence == pytest.approx(0.95)
    strict = Thresholds(alpha=0.001)
    assert strict.time_confidence == pytest.approx(0.995)
    rules = comparison_rules(strict)  # what the tables and the rules say follows it too
    assert "with a 99.5 % hierarchical bootstrap interval" in rules and "agrees (p < 0.005;" in rules, rules
    from harness.reporting import regression_header

    assert "ratio new/base [99.5 % CI]" in regression_header(strict)
    assert "ratio new/base [95 % CI]" in regression_header(Thresholds())


def test_the_time_rule_benchmark_counts_what_one_seeds_epochs_alone_called_a_regression():
    """benchmarks/time_mark_rule.py --between-runs: its first column (the epochs' verdict) read a regression only from
    the note the trials' test left, which one seed never gets, so it showed 0 % where the epochs alone called 15 % of
    identical one-seed runs a regression (docs/regressions.md quotes both columns). --slowdowns gives the power at
    other ratios (2x, 5x: the quick suite's shape, docs/regressions.md's "Verified here")."""
    import argparse
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "time_mark_rule.py"
    spec = importlib.util.spec_from_file_location("time_mark_rule_benchmark", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert (1, 9, 0.1) in bench.RUN_SHAPES
    without, decided = bench.verdict_rates(np.random.default_rng(7), (1, 9, 0.1), 1.0, 60)
    assert without > 0.05 and decided == 0.0, (without, decided)
    assert bench._slowdowns("1,2,5") == (1.0, 2.0, 5.0)
    with pytest.raises(argparse.ArgumentTypeError, match="Expected --slowdowns: positive ratios separated by commas"):
        bench._slowdowns("2,x")
