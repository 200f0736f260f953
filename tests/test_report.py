"""Results people look at: statistics on every comparison, tables that fit 80 columns or print for machines, the
offline HTML report with its plots, the MLflow export, and the report in a real browser.

Result rows are written by the tests (no Ray, no framework): two cases on two backends, three seeds, four epochs,
with a backend slowed on demand, so each check runs in seconds.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import reporting
from harness.cli import main
from harness.config import TrialConfig
from harness.report_html import build_report
from harness.results import to_frame
from harness.runner import write_report
from harness.statistics import (
    NO_PAIRED_SEED,
    TOO_FEW_SEEDS,
    StatsSettings,
    case_statistics,
    paired_accuracy,
    ratio_interval,
)
from harness.summary import summarize

EPOCHS, SEEDS, MODELS = 4, 3, ("mlp", "convnet3")
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs xfbench[report]")


@pytest.fixture(autouse=True)
def report_style() -> Iterator[None]:
    """The tests that call a plot function themselves draw in the report's style, as build_report draws them."""
    if importlib.util.find_spec("matplotlib") is None:
        yield
        return
    from harness.plots import house_style

    with house_style():
        yield


def _trial_rows(run_id: str, backend: str, model: str, seed: int, epoch_time_s: float, noise: int) -> list[dict]:
    rng = np.random.default_rng([noise, seed, len(backend), len(model)])
    rows = []
    for epoch in range(1, EPOCHS + 1):
        rows.append(
            {
                "run_id": run_id,
                "trial_id": f"t-scratch-{model}-digits-{backend}-{seed}",
                "suite": "t",
                "stage": "trials",
                "strategy": "scratch",
                "model": model,
                "dataset": "digits",
                "variant": "",
                "backend": backend,
                "framework_version": "1.0",
                "seed": seed,
                "phase": "train",
                "epoch": epoch,
                "train_loss": 1.0 / epoch,
                "train_acc": 0.9,
                "val_loss": 1.1 / epoch,
                "val_acc": 0.95 - 0.1 / epoch + rng.normal(0, 0.005),
                "test_acc": 0.95 + rng.normal(0, 0.003) if epoch == EPOCHS else math.nan,
                "epoch_time_s": 3 * epoch_time_s if epoch == 1 else epoch_time_s * (1 + rng.normal(0, 0.02)),
                "eval_time_s": 0.01,
                "samples_per_s": 1000 / epoch_time_s,
                "warmup": epoch == 1,
                "status": "ok",
                "params": 1000,
                "forward_macs": 10**6,
                "config_json": json.dumps({"epochs": EPOCHS, "optimizer": {"lr": 0.01, "name": "momentum"}}),
                "timestamp": f"2026-01-01T00:00:{epoch:02d}+00:00",
            }
        )
    return rows


def _frame(run_id: str = "r", torch_slowdown: float = 1.0, seeds: int = SEEDS, noise: int = 0) -> pd.DataFrame:
    rows = []
    for model in MODELS:
        for seed in range(seeds):
            rows += _trial_rows(run_id, "torch", model, seed, 0.2 * torch_slowdown, noise)
            rows += _trial_rows(run_id, "tensorflow", model, seed, 0.2, noise + 1)
    return to_frame(rows)


def _write_run(root: Path, run_id: str, started: str, **frame_options: float) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    _frame(run_id, **frame_options).to_parquet(run_dir / "results.parquet")  # type: ignore[arg-type]
    info = {"run_id": run_id, "started": started, "status": "finished", "git_commit": "abc", "command": ["xfbench"]}
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


# ---------------------------------------------------------------------------------------------------- statistics


def test_a_slowed_backend_has_a_ratio_interval_excluding_one_and_the_mark():
    stats = case_statistics(_frame(torch_slowdown=1.5))
    assert len(stats) == len(MODELS) and set(stats["backend"]) == {"tensorflow"}
    assert (stats["time_ci_low"] > 1.3).all() and stats["time_significant"].all()
    cells = reporting.stats_cells(stats.iloc[0])
    assert cells[4].startswith("1.") and "*" in cells[4]


def test_seeds_ok_in_one_backend_only_are_named_beside_the_paired_difference():
    """torch's seeds 0-2 against TensorFlow's 1-3: each backend's mean held its own seeds, the difference those of
    both, and nothing said so (compare did)."""
    frame = _frame(seeds=4)
    frame = frame[~((frame["backend"] == "torch") & (frame["seed"] == 3))]
    frame = frame[~((frame["backend"] == "tensorflow") & (frame["seed"] == 0))]
    stats = case_statistics(frame)
    assert set(stats["paired_seeds"]) == {2}
    assert all("seeds paired 1,2 (torch also 0; tensorflow also 3)" in note for note in stats["note"]), stats["note"]
    assert not case_statistics(_frame(seeds=2))["note"].str.contains("seeds paired").any()  # the same seeds: no note


def test_one_trial_a_side_is_not_marked_and_unequal_sharing_of_the_cores_is_noted():
    """One seed a side: the interval holds that trial's epochs only, not the variation between trials, so a 1.5x
    slowdown is shown but not marked. Torch's trials side by side and TensorFlow's one at a time: the ratio holds
    the contention too, and the row says so with the shares."""
    single = case_statistics(_frame(torch_slowdown=1.5, seeds=1))
    assert not single["time_significant"].any() and (single["time_ci_low"] > 1.3).all()
    assert single["note"].str.contains("1 trial a side: time interval over its epochs only, not marked").all()
    lopsided = _frame(seeds=3)  # three torch trials, one TensorFlow: the note said "1 trial a side"
    lopsided = lopsided[~((lopsided["backend"] == "tensorflow") & (lopsided["seed"] > 0))]
    notes = case_statistics(lopsided)["note"]
    assert notes.str.contains("1 trial of tensorflow: time interval over its epochs only").all(), notes
    frame = _frame(seeds=2)
    minute = {(m, s): 1 + 2 * i + s for i, m in enumerate(MODELS) for s in range(2)}  # one tensorflow trial at a time
    tensorflow = frame["backend"] == "tensorflow"
    frame.loc[tensorflow, "timestamp"] = [
        f"2026-01-01T00:{minute[(m, s)]:02d}:{e:02d}.000+00:00"
        for m, s, e in zip(
            frame[tensorflow]["model"], frame[tensorflow]["seed"], frame[tensorflow]["epoch"], strict=True
        )
    ]
    stats = case_statistics(frame)  # torch's trials all at minute 0, side by side
    expected = "steady epochs that shared the cores with another trial: torch 6/6, tensorflow 0/6"
    assert stats["note"].str.contains(expected, regex=False).all(), stats["note"].tolist()
    assert not case_statistics(_frame(seeds=2))["note"].str.contains("shared the cores").any()  # alike: no note


def test_two_trials_a_side_are_marked_only_when_the_trials_themselves_differ():
    """Two one-epoch trials a side give the bootstrap three medians a side, every ratio of them above 1 here: the
    interval excluded 1 and was marked, as it was for a third of equal backends. Welch on the trials' log medians
    (p 0.18 here) keeps the mark off; trials that differ clearly keep it."""
    from harness.statistics import StatsSettings, _time_ratio, trials_test

    ref, other = [np.array([1.0]), np.array([1.1])], [np.array([0.9]), np.array([0.95])]
    ratio, low, high, marked, notes, missing = _time_ratio(ref, other, StatsSettings())
    assert low > 1 and not marked and 0.05 < trials_test(ref, other) < 0.5 and missing == ""
    assert notes == ["time not marked: the trials' medians (2 and 2) do not decide it (Welch p 0.18)"]
    slowed = [np.array([1.5, 1.51]), np.array([1.49, 1.5]), np.array([1.52, 1.5])]
    steady = [np.array([1.0, 1.01]), np.array([0.99, 1.0]), np.array([1.01, 1.0])]
    assert _time_ratio(slowed, steady, StatsSettings())[3:] == (True, [], "")


def test_the_comparison_differences_accuracy_over_the_seeds_ok_in_both_backends():
    """A seed that diverged on one backend leaves the other backend's mean over one more seed: the comparison's
    Δ acc pp is the paired mean over the seeds ok in both, as the statistics table's."""
    frame = _frame(seeds=3)
    lost = (frame["backend"] == "tensorflow") & (frame["seed"] == 2)
    frame.loc[lost, "status"], frame.loc[lost, "test_acc"] = "diverged", math.nan
    summary = summarize(frame)
    finals = frame[frame["test_acc"].notna()].set_index(["model", "backend", "seed"])["test_acc"]
    for model in MODELS:
        paired = [100 * (finals[(model, "torch", s)] - finals[(model, "tensorflow", s)]) for s in (0, 1)]
        row = summary.comparison[summary.comparison["model"] == model].iloc[0]
        assert row["acc_diff_pp"] == pytest.approx(np.mean(paired))


def test_equal_backends_are_not_marked():
    stats = case_statistics(_frame(torch_slowdown=1.0))
    assert ((stats["time_ci_low"] < 1) & (stats["time_ci_high"] > 1)).all()
    assert not stats["time_significant"].any() and not stats["acc_significant"].any()


def test_the_time_interval_resamples_trials_then_epochs():
    """Two of three trials 40 % slower, one not (a burst of load, or a seed that differs): resampling the pooled
    epochs alone gives a tight interval far above 1; drawing trials first lets the unslowed trial pull the low
    end back to 1, as a third run could."""
    rng = np.random.default_rng(0)
    epochs = lambda level: level * (1 + rng.normal(0, 0.01, 30))  # noqa: E731
    base = [epochs(1.0) for _ in range(3)]
    new = [epochs(1.4), epochs(1.4), epochs(1.0)]
    settings = StatsSettings()
    ratio, low, high = ratio_interval(new, base, settings)
    _, pooled_low, _ = ratio_interval([np.concatenate(new)], [np.concatenate(base)], settings)
    assert ratio == pytest.approx(1.4, rel=0.02) and pooled_low > 1.3
    assert low < 1.05 and high == pytest.approx(1.4, rel=0.03)
    assert (ratio, low, high) == ratio_interval(new, base, settings)  # a fixed bootstrap seed: reproducible
    assert np.isnan(ratio_interval([np.array([1.0])], base, settings)[1])  # one epoch: no interval


def test_the_paired_accuracy_interval_is_students_t_over_seed_differences():
    ref, other = pd.Series([0.90, 0.92, 0.94]), pd.Series([0.89, 0.90, 0.91])
    n, mean, low, high = paired_accuracy(ref, other, 0.95)
    diffs = np.array([1.0, 2.0, 3.0])  # pp
    half = 4.302652729911275 * diffs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert n == 3 and mean == pytest.approx(2.0) and (low, high) == pytest.approx((2.0 - half, 2.0 + half))


def test_one_seed_says_too_few_to_say():
    stats = case_statistics(_frame(seeds=1))
    assert (stats["paired_seeds"] == 1).all() and stats["note"].str.contains(TOO_FEW_SEEDS).all()
    assert stats["acc_ci_low_pp"].isna().all() and not stats["acc_significant"].any()


def test_seeds_ok_in_neither_backend_alike_give_no_accuracy_difference_and_say_so():
    frame = _frame(seeds=2)
    last = frame["epoch"] == EPOCHS
    frame.loc[last & (frame["backend"] == "torch") & (frame["seed"] == 1), "status"] = "failed"
    frame.loc[last & (frame["backend"] == "tensorflow") & (frame["seed"] == 0), "status"] = "failed"
    summary = summarize(frame)
    assert (
        summary.statistics["note"].str.contains(NO_PAIRED_SEED).all()
        and (summary.statistics["paired_seeds"] == 0).all()
    )
    assert summary.comparison["acc_diff_pp"].isna().all()  # not torch's seed 0 against tensorflow's seed 1


def test_seeds_that_differ_alike_get_the_interval_of_one_test_images_spread_not_one_of_width_zero():
    """Accuracy moves by whole test images: differences all alike took no interval at all, so that a backend 50 pp
    below the reference on five seeds was never marked (review 167, finding 1)."""
    from harness.statistics import ACCURACY_FLOOR_PP, ALIKE_SEEDS, one_image_pp

    # the same 4 of 360 test images apart on both seeds: float differences that part in their last bits
    n, mean, low, high = paired_accuracy(pd.Series([356 / 360, 350 / 360]), pd.Series([352 / 360, 346 / 360]), 0.95)
    half = 12.706204736174698 * (100 / 180) / math.sqrt(2)  # t(0.975, 1), one image of the 180 their fractions tell
    assert n == 2 and mean == pytest.approx(100 * 4 / 360) and (low, high) == pytest.approx((mean - half, mean + half))
    assert paired_accuracy(pd.Series([0.9, 0.95]), pd.Series([0.9, 0.95]), 0.95) == (2, 0.0, 0.0, 0.0)  # agree: no mark
    assert one_image_pp([1.0, 0.5]) == ACCURACY_FLOOR_PP  # a test set of 2 images fits: the size is not told
    assert one_image_pp([359 / 360, 1.0]) == pytest.approx(100 / 360)
    frame = _frame(seeds=2)
    last = frame["epoch"] == EPOCHS
    frame.loc[last, "test_acc"] = np.where(frame.loc[last, "backend"] == "torch", 0.95, 0.94)
    stats = case_statistics(frame)  # 1 pp alike on two seeds: within the interval of one image's spread
    assert not stats["acc_significant"].any() and stats["note"].str.contains(ALIKE_SEEDS).all()
    collapse = _frame(seeds=5)
    last = collapse["epoch"] == EPOCHS
    collapse.loc[last, "test_acc"] = np.where(collapse.loc[last, "backend"] == "torch", 1.0, 0.5)
    stats = case_statistics(collapse)
    assert stats["acc_significant"].all() and (stats["acc_diff_pp"] == 50.0).all(), stats
    half = 2.7764451051977987 * ACCURACY_FLOOR_PP / math.sqrt(5)  # t(0.975, 4)
    assert stats["acc_ci_low_pp"].tolist() == pytest.approx([50 - half] * len(stats))
    assert stats["note"].str.contains(ALIKE_SEEDS).all()


def test_welch_on_trials_whose_medians_do_not_spread_warns_of_nothing_and_stays_right():
    """Each side's trials with one median printed scipy's "Precision loss" RuntimeWarning into the run's output."""
    import warnings

    from scipy.stats import ttest_ind

    from harness.statistics import trials_test

    alike, twice = [np.array([1.3]), np.array([1.3]), np.array([1.3])], [np.array([2.6]), np.array([2.6])]
    spread = [np.array([2.0]), np.array([2.2]), np.array([2.1])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trials_test(alike, twice) == 0.0  # no variance and the sides differ: beyond doubt
        assert math.isnan(trials_test(alike, alike))  # nothing to tell apart
        one_flat = trials_test(alike, spread)
        assert trials_test(spread, alike) == pytest.approx(one_flat)
    # Welch with that side's variance 0, computed without the rounding noise scipy takes as its variance
    assert 0 < one_flat < 0.05
    logs = np.log([2.0, 2.2, 2.1])
    t = (logs.mean() - math.log(1.3)) / (logs.std(ddof=1) / math.sqrt(3))
    assert one_flat == pytest.approx(2 * student_t_sf(abs(t), 2))
    with warnings.catch_warnings():  # scipy's own figure, rounding noise and all, agrees
        warnings.simplefilter("ignore")
        assert one_flat == pytest.approx(ttest_ind(np.log([1.3] * 3), logs, equal_var=False).pvalue, rel=1e-6)


def student_t_sf(value: float, df: int) -> float:
    from scipy.stats import t

    return float(t.sf(value, df))


def test_summary_markdown_has_the_statistics():
    markdown = reporting.run_markdown(summarize(_frame(torch_slowdown=1.5)), "t")
    statistics = markdown[markdown.index("## Statistics") :]
    ratios = [float(r) for r in re.findall(r"\| (\d\.\d{3})\* \[", statistics)]  # time ratios marked significant
    assert len(ratios) == 2 and all(1.4 < r < 1.6 for r in ratios), statistics  # torch made 1.5x slower


# ---------------------------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("width", [60, 80, 100])
def test_terminal_tables_fit_the_width(width):
    tables = reporting.run_tables(summarize(_frame(torch_slowdown=1.5)))
    text = "\n".join(reporting.render_text(t, width) for t in tables)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "0.9" in text and "tensorflow" in text


def test_a_wide_terminal_gets_aligned_columns():
    table = reporting.run_tables(summarize(_frame()))[1]
    lines = reporting.render_text(table, 200).splitlines()
    widths = [len(dash) for dash in lines[2].split("  ")]
    assert [lines[1][sum(widths[:i]) + 2 * i :][: widths[i]].strip() for i in range(len(widths))] == list(table.header)
    assert set(lines[2]) <= {"-", " "} and len(widths) == len(table.header)


def test_machine_formats_carry_numbers_and_where_the_run_is(tmp_path, capsys):
    """json and csv are read by programs: numbers as numbers (no thousands separators, intervals in their own
    fields), and the run's folder, where results.parquet is; md is the tables people read."""
    from types import SimpleNamespace

    summary = summarize(_frame(torch_slowdown=1.5))
    outcome = SimpleNamespace(status="finished", run_id="r", run_dir=tmp_path, summary=summary, wall_time_s=1.0)
    reporting.print_run_summary(outcome, "json")  # type: ignore[arg-type]
    data = json.loads(capsys.readouterr().out)
    assert (data["run_id"], data["run_dir"], data["reference"]) == ("r", str(tmp_path), "torch")
    assert list(data["tables"]) == ["per_backend", "comparison", "statistics", "phases"]
    per_backend = data["tables"]["per_backend"]
    assert len(per_backend) == len(summary.per_backend) and isinstance(per_backend[0]["samples_per_s_median"], float)
    assert isinstance(per_backend[0]["params"], int) and isinstance(per_backend[0]["forward_macs"], int)  # as csv
    stats = data["tables"]["statistics"][0]
    assert stats["time_ci_low"] < stats["time_ratio"] < stats["time_ci_high"] and stats["time_ci_low"] > 1.3
    reporting.print_run_summary(outcome, "csv")  # type: ignore[arg-type]
    text = capsys.readouterr().out
    flat = pd.read_csv(io.StringIO(text))
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    cells = dict(zip(header, first, strict=True))
    assert cells["params"].isdigit() and cells["forward_macs"].isdigit(), cells  # whole numbers, not 27370.0
    assert len(flat) == len(summary.per_backend) and set(flat["run_dir"]) == {str(tmp_path)}
    assert flat["samples_per_s_median"].dtype == float and flat["time_ratio"].notna().sum() == len(summary.statistics)
    assert flat.loc[flat["backend"] == "torch", "time_ratio"].isna().all()  # the reference has no ratio to itself
    reporting.print_run_summary(outcome, "md")  # type: ignore[arg-type]
    markdown = capsys.readouterr().out
    assert markdown.count("## ") == len(reporting.run_tables(summary)) and "| case |" in markdown
    assert markdown.rstrip().endswith(f"results: {tmp_path}")  # where results.parquet is, as json and csv say
    # an interrupted run's tables hold the trials that ended: read on stdout alone, they looked like a whole run's
    stopped = SimpleNamespace(**{**vars(outcome), "status": "interrupted"})
    reporting.print_run_summary(stopped, "json")  # type: ignore[arg-type]
    assert data["status"] == "finished" and json.loads(capsys.readouterr().out)["status"] == "interrupted"
    reporting.print_run_summary(stopped, "csv")  # type: ignore[arg-type]
    assert set(pd.read_csv(io.StringIO(capsys.readouterr().out))["run_status"]) == {"interrupted"}
    assert set(flat["run_status"]) == {"finished"}
    reporting.print_run_summary(stopped)  # type: ignore[arg-type]
    said = " ".join(capsys.readouterr().out.split())
    assert said.startswith("xfbench — run r — interrupted: the tables hold the trials that ended before it stopped")


# ---------------------------------------------------------------------------------------------------- report


def _offline(page: str) -> bool:
    """Nothing the page would fetch: no src/href to another place (SVG namespace URIs are names, not fetched)."""
    return not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page) and "<script" not in page


@needs_matplotlib
def test_the_report_of_a_run_is_one_offline_page_with_its_plots(tmp_path):
    run_dir = _write_run(tmp_path, "run-a", "2026-01-01", torch_slowdown=1.5)
    report = build_report([run_dir], run_dir / "report.html")
    page = report.path.read_text()
    assert report.size_bytes < 5 * 1024 * 1024 and _offline(page)
    assert "Provenance" in page and "git_commit" in page and "Statistics vs torch" in page
    expected = {"curves-scratch-mlp-digits", "curves-scratch-convnet3-digits", "epoch-times", "accuracy-vs-time"}
    assert expected | {"time-ratios"} == set(report.plots)
    assert page.count("<svg") == len(report.plots)
    for name in report.plots:
        assert (report.plot_dir / f"{name}.png").stat().st_size > 1000
        assert (report.plot_dir / f"{name}.svg").read_text().lstrip().startswith("<?xml")


@needs_matplotlib
def test_a_report_stopped_while_it_writes_its_page_leaves_the_earlier_page_whole(tmp_path, monkeypatch):
    """report.html was a plain write: a report stopped mid-way (Ctrl-C, a full disk) left half a page where a
    browser or a CI artefact upload would read it. It is written beside and renamed (harness.whole_files)."""
    import harness.whole_files as whole_files

    run_dir = _write_run(tmp_path, "run-a", "2026-01-01", torch_slowdown=1.5)
    (run_dir / "report.html").write_text("the earlier page")

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(whole_files.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        build_report([run_dir], run_dir / "report.html")
    monkeypatch.undo()
    assert (run_dir / "report.html").read_text() == "the earlier page"
    assert not [p.name for p in run_dir.rglob("*") if p.name.endswith(".partial")]


@needs_matplotlib
def test_the_report_draws_in_its_own_style_and_leaves_the_processs_settings_as_they_were(tmp_path):
    """A matplotlibrc with text.usetex failed the report where LaTeX is missing, and the report's settings, made for
    the whole process, stayed: a user's own plots in a process that wrote a report (the pytest plugin's) changed."""
    import matplotlib

    run_dir = _write_run(tmp_path, "run-a", "2026-01-01", torch_slowdown=1.5)
    with matplotlib.rc_context({"text.usetex": True, "lines.linewidth": 7.0, "text.parse_math": True}):
        report = build_report([run_dir], run_dir / "report.html")
        assert matplotlib.rcParams["text.usetex"] and matplotlib.rcParams["lines.linewidth"] == 7.0
        assert matplotlib.rcParams["text.parse_math"]
    assert "curves-scratch-mlp-digits" in report.plots
    curves = (report.plot_dir / "curves-scratch-mlp-digits.svg").read_text()
    assert "stroke-width: 1.5" in curves and "stroke-width: 7" not in curves  # matplotlib's default line width


@needs_matplotlib
def test_a_history_of_three_runs_flags_the_regression(tmp_path):
    for index, slowdown in enumerate((1.0, 1.0, 1.6)):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=slowdown, noise=index)
    rows = pd.read_parquet(tmp_path / "run-1" / "results.parquet")  # run-1 trained with another batch size
    rows["config_json"] = rows["config_json"].map(lambda c: json.dumps(json.loads(c) | {"batch_size": 128}))
    rows.to_parquet(tmp_path / "run-1" / "results.parquet")
    # the newest run stopped before a trial finished: nothing to draw, so the page is about run-2
    (tmp_path / "run-3" / "parts").mkdir(parents=True)
    (tmp_path / "run-3" / "run.json").write_text(json.dumps({"run_id": "run-3", "started": "2026-01-04"}))
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = out.read_text()
    assert "History" in page and "run-2 and 2 earlier" in page and _offline(page)
    # left out without a word, where `xfbench history` of the same folder lists it
    assert "Left out, no trial finished: run-3 (no status recorded)" in page
    assert "t:scratch-mlp-digits [torch]" in page  # the slowed run's regression, listed against it
    # the ratio against the previous run with its interval: marked for the slowed backend only
    rows = re.findall(r"<tr><td>(run-\d)</td><td>[^<]+</td><td>(\w+)</td><td>([^<]+)</td>", page)
    ratios = [(run, backend, cell) for run, backend, cell in rows if " [" in cell]  # not the runs listing
    marked = {(run, backend) for run, backend, cell in ratios if "*" in cell}
    assert len(ratios) == 8 and marked == {("run-2", "torch")}  # 2 runs after the first × 2 cases × 2 backends
    assert page.count("config differs: batch_size 64→128") == 4  # compare's note, on run-1's rows
    assert (tmp_path / "history_plots" / "history.png").is_file()
    assert "<code>xfbench run --resume RUN_ID</code>" in page  # it named an `xfbench resume` there is none of
    # a run without run.json, ordered by its id's time: its started cell says so, as `xfbench history` does (empty)
    (tmp_path / "run-0" / "run.json").unlink()
    os.utime(tmp_path / "run-0" / "results.parquet", (1767225600, 1767225600))  # 2026-01-01 00:00 UTC
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    assert "<td>run-0</td><td>2026-01-01T00:00:00+00:00 (from its files&#x27; time)</td>" in out.read_text()


@needs_matplotlib
def test_a_damaged_run_in_a_folder_is_left_out_of_its_report_and_said_and_one_named_itself_is_refused(tmp_path, capsys):
    """One damaged run stopped a folder's whole report, telling a user who had named the folder to "pick another
    run", where `xfbench history` of the same folder lists it as unreadable and goes on."""
    for index in range(2):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", noise=index)
    (tmp_path / "run-0" / "results.parquet").write_bytes(b"not parquet")
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = out.read_text()
    assert "Left out, unreadable: run-0: Expected the results table of the run in" in page
    assert "xfbench report: run-1" in page and "and 1 earlier" not in page
    capsys.readouterr()
    assert main(["report", str(tmp_path / "run-0"), "-o", str(tmp_path / "one.html")]) == 2
    assert "Expected the results table of the run in" in capsys.readouterr().err
    (tmp_path / "run-1" / "results.parquet").write_bytes(b"not parquet either")
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "none.html")]) == 2
    said = capsys.readouterr().err
    assert "Expected at least one readable run in" in said and "Received: 2 run(s), none readable" in said


@needs_matplotlib
def test_the_history_plot_circles_a_regression_of_the_metric_it_draws_and_the_listing_names_each_kind(tmp_path):
    """An accuracy drop was circled on the epoch-time plot (any regression of the case was), and the runs table did
    not say what had regressed."""
    from harness.report_html import _history_section, load

    for index in range(2):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", noise=index)
    rows = pd.read_parquet(tmp_path / "run-1" / "results.parquet")
    dropped = (rows["backend"] == "torch") & (rows["model"] == MODELS[0])
    drop = 0.10 + 0.01 * rows.loc[dropped, "seed"].astype(float)  # every seed 10-12 pp down
    rows.loc[dropped, "test_acc"] = rows.loc[dropped, "test_acc"].astype(float) - drop
    rows.to_parquet(tmp_path / "run-1" / "results.parquet")
    runs = [load(tmp_path / f"run-{index}") for index in range(2)]
    circles = {}
    for metric in ("epoch_time_s", "test_acc"):
        text, (plot,) = _history_section(runs, metric)
        circles[metric] = len(plot.figure.axes[0].collections)
        assert f"t:scratch-{MODELS[0]}-digits [torch] (accuracy)" in text
    assert circles == {"epoch_time_s": 0, "test_acc": 1}


@needs_matplotlib
def test_the_history_plot_marks_equal_backends_failed_cases_partial_values_and_unfinished_runs(tmp_path):
    """Both backends at one accuracy drew one solid line of one marker (the one drawn last hid the other); a case
    whose every trial failed was a gap, as if the run had not had it; a value of 2 of 3 trials, an unfinished run and
    a fall in the trials that ended ok went unmarked, all of which `xfbench history` marks."""
    from harness.report_html import _history_section, load

    for index in range(3):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", noise=index)
    rows = pd.read_parquet(tmp_path / "run-1" / "results.parquet")
    mlp = rows["model"] == "mlp"
    failed = mlp & ((rows["backend"] == "tensorflow") | (rows["seed"] == 2))  # tensorflow's three, torch's seed 2
    rows.loc[failed, "status"], rows.loc[failed, "test_acc"] = "failed", math.nan
    rows.to_parquet(tmp_path / "run-1" / "results.parquet")
    info = json.loads((tmp_path / "run-2" / "run.json").read_text())
    (tmp_path / "run-2" / "run.json").write_text(json.dumps(info | {"status": "interrupted"}))
    runs = [load(tmp_path / f"run-{index}") for index in range(3)]
    _, (plot,) = _history_section(runs, "test_acc")
    ax = plot.figure.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label().startswith("t:scratch-mlp-digits · ")]
    first, last = sorted(lines, key=lambda line: line.get_zorder())  # matplotlib's drawing order
    assert first.get_color() == last.get_color()  # one case, one colour; the line drawn last, inside the first
    assert first.get_markersize() > last.get_markersize() and first.get_linestyle() != last.get_linestyle()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["run-0", "run-1", "run-2 (unfinished)"]
    assert [t.get_text() for t in ax.texts] == ["2/3"]  # torch's mlp in run-1
    marks = sorted(c.get_label() for c in ax.collections)
    assert marks == ["_not ok", "_trials regressed", "_trials regressed"], marks  # tensorflow's mlp in run-1
    import matplotlib.pyplot as plt

    plt.close(plot.figure)
    # a time's cell whose trials ended ok after one epoch, their warm-up: `xfbench history`'s "warm-up only"
    rows = pd.read_parquet(tmp_path / "run-2" / "results.parquet")
    one_epoch = rows[(rows["model"] != "convnet3") | (rows["epoch"] == 1)].copy()
    one_epoch.loc[one_epoch["model"] == "convnet3", "test_acc"] = 0.9
    one_epoch.to_parquet(tmp_path / "run-2" / "results.parquet")
    _, (timed,) = _history_section([load(tmp_path / f"run-{index}") for index in range(3)], "epoch_time_s")
    assert sorted(c.get_label() for c in timed.figure.axes[0].collections).count("_warm-up only") == 2  # both backends
    plt.close(timed.figure)


@needs_matplotlib
def test_the_reports_history_decides_regressions_with_the_thresholds_compare_is_given(tmp_path, capsys):
    """The history always used the default thresholds: with --time-threshold 1.5, compare called a 1.3x slowdown
    unchanged where the report of the same runs circled and listed it."""
    for index, slowdown in enumerate((1.0, 1.3)):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=slowdown, noise=index)
    listed = "t:scratch-mlp-digits [torch] (time)"
    for options, regressed in (([], True), (["--time-threshold", "1.5"], False)):
        out = tmp_path / f"history{len(options)}.html"
        assert main(["report", str(tmp_path), "-o", str(out), *options]) == 0
        assert (listed in out.read_text()) is regressed, options
        compare = ["compare", str(tmp_path / "run-0"), str(tmp_path / "run-1"), *options]
        assert main(compare) == 0 and (f"{'2' if regressed else '0'} regression(s)" in capsys.readouterr().out)
    with pytest.raises(SystemExit) as refused:  # compare's option types: a usage error before any work
        main(["report", str(tmp_path), "-o", str(tmp_path / "x.html"), "--alpha", "1.5"])
    assert refused.value.code == 2 and "Expected --alpha: a probability" in capsys.readouterr().err


@needs_matplotlib
def test_a_history_lists_a_ratio_too_few_epochs_could_not_decide_with_the_reason(tmp_path):
    """One seed of 3 steady epochs a side, 1.6x slower: one trial a side leaves the noise between trials unknown, so no
    time change is decided (review 179). The ratio is listed, undecided (n/a) with compare's reason, not dropped from
    the table as if the case had no timing."""
    for index, slowdown in enumerate((1.0, 1.6)):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=slowdown, seeds=1)
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    rows = re.findall(
        r"<tr><td>run-1</td><td>[^<]+</td><td>torch</td><td>(1\.[56]\d\d) \[[^<]+</td>.*?</tr>", out.read_text()
    )
    assert len(rows) == len(MODELS), rows
    assert out.read_text().count("noise between trials unknown (1 seed a side)") == len(MODELS)


def test_a_report_that_fails_loses_nothing(tmp_path, capsys):
    run_dir = tmp_path / "broken"
    run_dir.mkdir()
    (run_dir / "results.parquet").write_text("not parquet")  # unreadable rows: the report cannot be drawn
    (run_dir / "summary.md").write_text("kept")
    problem = write_report(run_dir)
    assert problem is not None and problem.startswith("no report.html (")  # returned too, for the pytest plugin
    assert f"warning: {problem}" in capsys.readouterr().err and (run_dir / "summary.md").read_text() == "kept"


# ---------------------------------------------------------------------------------------------------- mlflow


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_mlflow_carries_each_steps_phase_and_epoch_the_backbones_accuracy_the_load_and_each_phases_size(tmp_path):
    """Review 167, finding 3: a transfer trial's frozen and unfrozen epochs were steps 1..2N with nothing to say which
    was which, and backbone_test_acc, other_cpus, trainable_params, frozen_params and step_macs never reached
    MLflow."""
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-p", "2026-01-01")
    rows = pd.read_parquet(run_dir / "results.parquet")
    transfer = rows["trial_id"] == rows["trial_id"].iloc[0]
    frozen = transfer & (rows["epoch"] <= 2)
    rows.loc[transfer, "phase"] = np.where(frozen[transfer], "frozen", "unfrozen")
    rows.loc[transfer, "epoch"] = np.where(
        frozen[transfer], rows.loc[transfer, "epoch"], rows.loc[transfer, "epoch"] - 2
    )
    rows.loc[transfer, "backbone_test_acc"] = 0.9149
    rows.loc[frozen, ["trainable_params", "frozen_params", "step_macs"]] = [100, 900, 2_000_000]
    rows.loc[transfer & ~frozen, ["trainable_params", "frozen_params", "step_macs"]] = [1000, 0, 3_000_000]
    rows.loc[~transfer, ["trainable_params", "frozen_params", "step_macs"]] = [1000, 0, 3_000_000]
    rows = rows.assign(other_cpus=0.25)
    rows.to_parquet(run_dir / "results.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "p"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("p").experiment_id], "tags.`xfbench.trial_id` != ''")
    by_trial = {r.data.tags["xfbench.trial_id"]: r for r in runs}

    def steps(run, name):
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]

    moved = by_trial[rows["trial_id"].iloc[0]]
    assert moved.data.tags["xfbench.phases"] == "frozen,unfrozen"
    assert sorted(steps(moved, "phase_index")) == [(1, 0.0), (2, 0.0), (3, 1.0), (4, 1.0)]
    assert sorted(steps(moved, "epoch")) == [(1, 1.0), (2, 2.0), (3, 1.0), (4, 2.0)]
    assert moved.data.metrics["backbone_test_acc"] == pytest.approx(0.9149)
    assert [v for _, v in steps(moved, "other_cpus")] == [0.25] * EPOCHS
    assert moved.data.tags["xfbench.trainable_params"] == "frozen: 100, unfrozen: 1000"
    assert moved.data.tags["xfbench.frozen_params"] == "frozen: 900, unfrozen: 0"
    assert moved.data.tags["xfbench.step_macs"] == "frozen: 2000000, unfrozen: 3000000"
    plain = by_trial[rows["trial_id"].iloc[-1]]  # one phase: one value a tag, no backbone
    assert plain.data.tags["xfbench.phases"] == "train" and plain.data.tags["xfbench.trainable_params"] == "1000"
    assert plain.data.tags["xfbench.step_macs"] == "3000000" and "backbone_test_acc" not in plain.data.metrics
    assert sorted(steps(plain, "phase_index")) == [(e, 0.0) for e in range(1, EPOCHS + 1)]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_mlflow_reads_back_every_trial_with_its_epochs(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-m", "2026-01-01")
    (run_dir / "summary.md").write_text("# summary")
    spec_file = str(tmp_path / "specs" / "net.json")  # rows carry a spec file's absolute path; its tag, the name
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows["model"] = rows["model"].replace(MODELS[0], spec_file)
    # one trial's config as a worker records it, whole: its settings become parameters
    real = TrialConfig(
        strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=4, cache_dir="/c"
    )
    rows.loc[rows["trial_id"] == rows["trial_id"].iloc[0], "config_json"] = real.to_json()
    rows = rows.assign(
        host="box", cpu="AMD EPYC", gpu="", device="cpu", threads=1, python_version="3.11.9", framework_env=""
    )
    rows.loc[rows["backend"] == "tensorflow", "framework_env"] = "TF_ENABLE_ONEDNN_OPTS=0"
    rows.loc[rows.index[-1], ["host", "cpu"]] = ["", ""]  # a last row the driver wrote for a worker that died
    rows.to_parquet(run_dir / "results.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "t"]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("t")
    runs = client.search_runs([experiment.experiment_id], "tags.`xfbench.trial_id` != ''")
    frame = _frame("run-m")
    starts = []
    assert {r.data.tags["xfbench.trial_id"] for r in runs} == set(frame["trial_id"])
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "val_acc")
        trial = frame[frame["trial_id"] == run.data.tags["xfbench.trial_id"]]
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        assert [m.timestamp for m in history] == [1767225600_000 + 1000 * e for e in range(1, EPOCHS + 1)]  # row times
        # the run spans its training (the first epoch's start, before its training and evaluation, to the last row),
        # not the moment of the export
        first_epoch_ms = round(1000 * float(trial["epoch_time_s"].iloc[0] + trial["eval_time_s"].iloc[0]))
        assert abs(run.info.start_time - (history[0].timestamp - first_epoch_ms)) <= 1
        starts.append(run.info.start_time)
        assert run.info.end_time == history[-1].timestamp and run.data.tags["xfbench.status"] == "ok"
        assert [m.value for m in history] == pytest.approx(trial["val_acc"].tolist())
        assert run.data.params["optimizer.lr"] == "0.01" and "test_acc" in run.data.metrics
        # the machine and the model's size, by which MLflow's runs are filtered and grouped; no tag for no GPU
        recorded = {k: run.data.tags.get(f"xfbench.{k}") for k in ("host", "cpu", "device", "threads", "params")}
        assert recorded == {"host": "box", "cpu": "AMD EPYC", "device": "cpu", "threads": "1", "params": "1000"}
        assert run.data.tags["xfbench.forward_macs"] == "1000000" and "xfbench.gpu" not in run.data.tags
        # the framework variables its worker had set, which change what the framework ran; no tag where none was set
        set_env = trial["backend"].iloc[0] == "tensorflow"
        assert run.data.tags.get("xfbench.framework_env") == ("TF_ENABLE_ONEDNN_OPTS=0" if set_env else None)
        if run.data.tags["xfbench.trial_id"] == rows["trial_id"].iloc[0]:  # without the tests' unset fault injection
            assert run.data.params["runtime.threads"] == "1" and run.data.params["dataset"] == "digits"
            assert not [k for k in run.data.params if k.startswith("runtime.inject_") or k == "cache_dir"]
        expected_model = "net.json" if trial["model"].iloc[0] == MODELS[0] else trial["model"].iloc[0]
        assert run.data.tags["xfbench.model"] == expected_model
    parent = client.search_runs([experiment.experiment_id], "tags.`xfbench.trial_id` = ''") or [
        r for r in client.search_runs([experiment.experiment_id]) if "xfbench.trial_id" not in r.data.tags
    ]
    assert {a.path for a in client.list_artifacts(parent[0].info.run_id)} >= {"summary.md", "run.json"}
    assert parent[0].data.tags["mlflow.source.git.commit"] == "abc"  # run.json's git_commit, in the tag MLflow shows
    assert parent[0].info.start_time == min(starts)  # the run began with its earliest trial, whichever it is
    client.delete_experiment(experiment.experiment_id)  # MLflow keeps a deleted experiment's name: not reused
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "t"]) == 2
    assert f"Received: it is deleted (id {experiment.experiment_id}). To fix, restore it" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_a_sqlite_uri_in_capitals_or_with_a_query_is_the_database_it_names(tmp_path, capsys):
    """SQLITE:/// was a traceback (SQLAlchemy has no dialect of that name), and a query became part of the file."""
    run_dir = _write_run(tmp_path, "run-q", "2026-01-01")
    database = tmp_path / "m.db"
    assert main(["export", str(run_dir), "--mlflow", f"SQLITE:///{database}?timeout=5"]) == 0
    assert f"?timeout=5 ({database}) (experiment" in capsys.readouterr().out and database.is_file()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_a_new_experiment_keeps_its_files_where_artifact_location_says_and_a_database_server_needs_one(
    tmp_path, capsys, monkeypatch
):
    """Only a SQLite store had its experiments' files placed beside it: in a PostgreSQL or MySQL store MLflow put
    them in ./mlruns under the working directory, recorded in the shared database where no other machine reads."""
    from mlflow.tracking import MlflowClient

    from harness.mlflow_uri import database_server

    run_dir = _write_run(tmp_path, "run-a", "2026-01-01")
    (run_dir / "summary.md").write_text("# summary")
    uri, files = f"sqlite:///{tmp_path / 'm.db'}", (tmp_path / "shared" / "artifacts").as_uri()
    assert main(["export", str(run_dir), "--mlflow", uri, "--artifact-location", files]) == 0
    assert f", files in {files})" in capsys.readouterr().out
    assert list((tmp_path / "shared" / "artifacts").rglob("summary.md"))
    assert MlflowClient(uri).get_experiment_by_name("xfbench").artifact_location == files
    # an existing experiment keeps the location it was made with
    assert main(["export", str(run_dir), "--mlflow", uri, "--artifact-location", (tmp_path / "x").as_uri()]) == 2
    assert f"where it keeps {files}. To fix, drop --artifact-location" in capsys.readouterr().err
    # the same location given as a folder reads as the URI MLflow keeps; a relative one is refused (it resolved
    # against the working directory, the ./mlruns problem the option is for)
    folder = str(tmp_path / "shared" / "artifacts")
    assert (
        main(["export", str(run_dir), "--mlflow", uri, "--artifact-location", folder, "--experiment", "xfbench"]) == 0
    )
    assert "is already in" in capsys.readouterr().out
    assert main(["export", str(run_dir), "--mlflow", uri, "--artifact-location", "artifacts"]) == 2
    assert "Received: 'artifacts', relative to this machine's working directory" in capsys.readouterr().err
    assert [database_server(u) for u in ("postgresql+psycopg2://h/db", "mysql://h/db", uri, "http://h:5000")] == [
        True,
        True,
        False,
        False,
    ]
    # a database server's store (the URI's kind, simulated on this SQLite file: no server runs here)
    monkeypatch.setattr("harness.mlflow_export.database_server", lambda uri: True)
    monkeypatch.setattr("harness.mlflow_export.sqlite_file", lambda uri: None)
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "team"]) == 2
    assert "Expected --artifact-location for the new MLflow experiment 'team'" in capsys.readouterr().err
    assert MlflowClient(uri).get_experiment_by_name("team") is None and not (tmp_path / "mlruns").exists()


def test_a_tracking_server_that_accepts_but_never_answers_is_refused_in_seconds(tmp_path, monkeypatch, capsys):
    """A process that accepts connections and never replies held the export for minutes."""
    import socket

    monkeypatch.setattr("harness.mlflow_uri.ANSWER_TIMEOUT_S", 0.5)
    run_dir = _write_run(tmp_path, "run-s", "2026-01-01")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the connection; nothing ever reads or answers
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert main(["export", str(run_dir), "--mlflow", uri]) == 2
    assert "Received: a connection, but no answer to GET /health within 0.5 s" in capsys.readouterr().err


def test_a_database_server_that_refuses_connections_is_refused_in_seconds_without_its_password(
    tmp_path, capsys, monkeypatch
):
    """MLflow retried a PostgreSQL store that refused connections for about 100 s, printing a retry warning each
    time, before its exit 2. (A missing driver is said first, by MLflow's client: tests/test_cli.py. No database
    driver is installed here, so this test takes them as found.)"""
    import socket

    monkeypatch.setattr("harness.mlflow_uri._driver_missing", lambda uri: False)
    run_dir = _write_run(tmp_path, "run-p", "2026-01-01")
    with socket.socket() as closed:  # a port nothing listens on once it is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for scheme in ("postgresql", "postgresql+psycopg2", "mysql+pymysql"):
        uri = f"{scheme}://me:secret@127.0.0.1:{port}/mlflow"
        assert main(["export", str(run_dir), "--mlflow", uri]) == 2
        err = capsys.readouterr().err
        assert f"Expected a database server taking connections at 127.0.0.1:{port}" in err, err
        assert f"{scheme}://me:***@127.0.0.1:{port}/mlflow" in err and "secret" not in err, err


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_no_message_of_an_export_shows_the_password_in_its_uri(tmp_path, capsys, monkeypatch):
    """Only the database-server check hid a URI's password: a missing database driver, a tracking server that
    refused the connection, and the line of an export that worked printed it, into CI logs. (No database server
    runs here: the export that worked is MLflow's part stood in for, the line xfbench prints about it real.)"""
    import socket

    from harness.mlflow_uri import without_password

    run_dir = _write_run(tmp_path, "run-w", "2026-01-01")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr("harness.mlflow_uri._driver_missing", lambda uri: True)  # none installed: said first
    for uri, said in (
        (f"postgresql://alice:s3cret@127.0.0.1:{port}/mlflow", "Received: --mlflow 'postgresql://alice:***@127.0"),
        (f"http://alice:s3cret@127.0.0.1:{port}", f"server answering at --mlflow http://alice:***@127.0.0.1:{port}."),
    ):
        assert main(["export", str(run_dir), "--mlflow", uri]) == 2
        err = capsys.readouterr().err
        assert said in err and "s3cret" not in err, err
    assert without_password("at sqlite://u:pw@/x.db and :pw@ again", "sqlite://u:pw@/x.db") == (
        "at sqlite://u:***@/x.db and :***@ again"
    )
    assert without_password("http://[::1:80", "http://[::1:80") == "http://[::1:80"  # urllib cannot split it
    # a password in the query (libpq, SQLAlchemy) and a token as an https user name are credentials too
    query = "postgresql://alice@db:5432/mlflow?sslmode=require&password=s3cret"
    assert without_password(f"at {query}", query) == "at postgresql://alice@db:5432/mlflow?sslmode=require&password=***"
    assert without_password("to https://tok3n@mlflow.example", "https://tok3n@mlflow.example") == (
        "to https://***@mlflow.example"
    )
    plain = "postgresql://alice@db/mlflow"  # a user name alone (peer or .pgpass authentication) is no secret
    assert without_password(plain, plain) == plain
    from harness.mlflow_export import Exported

    done = Exported("1", "parent", {"trial": "run"}, "exported", "finished")  # what a store took: MLflow's part
    monkeypatch.setattr("harness.mlflow_export.export_run", lambda *args: done)
    assert main(["export", str(run_dir), "--mlflow", f"postgresql://alice:s3cret@127.0.0.1:{port}/mlflow"]) == 0
    out = capsys.readouterr().out
    assert f"to postgresql://alice:***@127.0.0.1:{port}/mlflow (experiment 'xfbench'" in out and "s3cret" not in out


def test_a_uri_urllib_cannot_split_is_refused_with_its_password_masked(tmp_path, capsys):
    """An unclosed IPv6 bracket or a port that is no number ended the export in urllib's ValueError traceback."""
    run_dir = _write_run(tmp_path, "run-w", "2026-01-01")
    for uri, said in (
        ("http://alice:s3cret@[::1:5000", "Received: 'http://***@[::1:5000', which urllib cannot read as one"),
        ("postgresql://alice:s3cret@db:54x2/m", "Received: 'postgresql://***@db:54x2/m', which urllib cannot"),
        # a raw password holding # or @: urllib read its start as the port, and its error quoted it
        ("postgresql://alice:s3cret#x@db:5432/m", "Received: 'postgresql://***@db:5432/m', which urllib cannot"),
        ("postgresql://alice:s3c@ret@db:54x2/m", "Received: 'postgresql://***@db:54x2/m', which urllib cannot"),
        ("https://s3cret@[::1:5000", "Received: 'https://***@[::1:5000', which urllib cannot"),
        ("postgresql://alice@db:54x2/m?password=s3cret", "Received: 'postgresql://***@db:54x2/m?password=***'"),
    ):
        assert main(["export", str(run_dir), "--mlflow", uri]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and "s3cret" not in err, err


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_a_percent_encoded_sqlite_path_is_the_file_sqlalchemy_opens(tmp_path, capsys):
    """sqlite:////.../my%20dir/m.db was refused as "not a folder that exists"; MLflow opens the file in "my dir"."""
    run_dir = _write_run(tmp_path, "run-e", "2026-01-01")
    (tmp_path / "my dir").mkdir()
    assert main(["export", str(run_dir), "--mlflow", f"sqlite:///{tmp_path}/my%20dir/m.db"]) == 0, capsys.readouterr()
    assert (tmp_path / "my dir" / "m.db").is_file()


def test_a_server_whose_tls_this_check_cannot_judge_is_left_to_mlflow():
    """A self-signed certificate MLflow is set to accept (MLFLOW_TRACKING_INSECURE_TLS) failed the health check as if
    the server had not answered; here a plain HTTP server spoken to in TLS stands for any such handshake error."""
    import http.server
    import threading

    from harness.mlflow_uri import _answer_problem

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _answer_problem(f"https://127.0.0.1:{server.server_address[1]}") is None
        assert _answer_problem(f"http://127.0.0.1:{server.server_address[1]}") is None  # it answered (501)
    finally:
        server.shutdown()


def test_runs_without_run_json_are_told_apart_by_their_folder(tmp_path):
    """Their empty fields once made one export key: exporting a second such run found the first's export, and
    --replace deleted it."""
    from harness.mlflow_export import run_key

    assert run_key({}, tmp_path / "a") != run_key({}, tmp_path / "b")
    info = {"run_id": "r", "started": "2026-01-01T00:00:00", "driver_host": "h"}
    assert run_key(info, tmp_path / "a") == run_key(info, tmp_path / "moved")  # a run.json's identity, wherever


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_two_exports_of_a_run_written_at_once_are_named_as_such_and_replace_keeps_one(tmp_path, capsys, monkeypatch):
    """Two exports at once (two CI jobs) each wrote a parent; every later export then said "it is incomplete (an
    export that stopped)", which is not what happened."""
    from harness import mlflow_export

    run_dir = _write_run(tmp_path, "run-t", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "t"]
    assert main(export) == 0
    with monkeypatch.context() as patched:  # the second started before the first had written its parent
        patched.setattr(mlflow_export, "_earlier_export", lambda *args: None)
        assert main(export) == 0
    capsys.readouterr()
    assert main(export) == 2
    err = capsys.readouterr().err
    assert "Received: 2 exports of it, written at once (parent runs " in err and "incomplete" not in err, err
    assert "To fix, pass --replace to delete them and write this one once" in err
    assert main([*export, "--replace"]) == 0
    parents = [r for r in _mlflow_runs(uri, "t") if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and main(export) == 0 and "nothing written" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_a_database_file_given_as_a_plain_path_is_told_to_name_it_sqlite_not_to_allow_a_file_store(tmp_path, capsys):
    """MLflow's advice for a plain path, MLFLOW_ALLOW_FILE_STORE=true, made a folder named plain.db a file store
    where the user meant a SQLite database."""
    import contextlib
    import sqlite3

    run_dir = _write_run(tmp_path, "run-p", "2026-01-01")
    with contextlib.closing(sqlite3.connect(tmp_path / "existing")) as database:  # a SQLite file without a suffix
        database.execute("create table t (x)")
    for given in (str(tmp_path / "plain.db"), f"file://{tmp_path / 'plain.sqlite'}", str(tmp_path / "existing")):
        assert main(["export", str(run_dir), "--mlflow", given]) == 2
        err = capsys.readouterr().err
        path = given.removeprefix("file://")
        assert err.rstrip().endswith(f"To fix, name it as a SQLite database: --mlflow sqlite:///{path}."), err
        assert "MLFLOW_ALLOW_FILE_STORE" not in err.split("To fix")[1]
    assert not (tmp_path / "plain.db").exists() and not (tmp_path / "mlruns").exists()
    assert main(["export", str(run_dir), "--mlflow", str(tmp_path / "store")]) == 2  # a folder: a file store, as said
    assert "set MLFLOW_ALLOW_FILE_STORE=true" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_a_trial_that_did_not_end_ok_exports_why_and_the_loss_that_diverged(tmp_path):
    """A failed or diverged trial's MLflow run was FAILED with no error text anywhere (a diverged row holds none: the
    tag gives summary.md's reason), and the diverged epoch's NaN loss, the figure that shows the divergence, was
    dropped."""
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-d", "2026-01-01")
    rows = pd.read_parquet(run_dir / "results.parquet")
    trials = sorted(rows["trial_id"].unique())
    last = rows.groupby("trial_id")["epoch"].transform("max") == rows["epoch"]
    diverged, failed = last & (rows["trial_id"] == trials[0]), last & (rows["trial_id"] == trials[1])
    rows.loc[diverged, ["status", "train_loss", "val_loss", "error"]] = ["diverged", math.nan, math.nan, ""]  # no error
    rows.loc[diverged, "test_acc"] = 0.0778  # measured on the NaN model: the tables say n/a
    rows.loc[failed, ["status", "error"]] = ["failed", "RuntimeError: out of memory"]
    ok_inf = (rows["trial_id"] == trials[2]) & (rows["epoch"] == 2)
    rows.loc[ok_inf, "val_loss"] = math.inf  # on an ok epoch: not logged (MLflow would store 1.8e308)
    # a skipped trial: one row, no epoch (its backbone's pretrain trial failed)
    skipped = rows[rows["trial_id"] == trials[3]].iloc[:1].assign(status="skipped", phase="", error="pretrain failed")
    skipped["epoch"] = pd.array([pd.NA], dtype=rows["epoch"].dtype)
    # a retried trial: its first attempt failed at epoch 2, its second (the rows above) ended ok
    retried = rows["trial_id"] == trials[4]
    first_attempt = rows[retried & (rows["epoch"] <= 2)].assign(attempt=0, val_acc=0.01)
    first_attempt.loc[first_attempt.index[-1], ["status", "error"]] = ["failed", "worker died"]
    rows.loc[retried, "attempt"] = 1
    rows = pd.concat([first_attempt, rows[rows["trial_id"] != trials[3]], skipped], ignore_index=True)
    rows.to_parquet(run_dir / "results.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "d"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("d").experiment_id], "tags.`xfbench.trial_id` != ''")
    by_trial = {r.data.tags["xfbench.trial_id"]: r for r in runs}
    assert by_trial[trials[0]].data.tags["xfbench.error"] == f"at epoch {EPOCHS}, training loss nan"  # summary.md's
    assert by_trial[trials[1]].data.tags["xfbench.error"] == "RuntimeError: out of memory"
    assert "xfbench.error" not in by_trial[trials[2]].data.tags
    assert "test_acc" not in by_trial[trials[0]].data.metrics and "test_acc" in by_trial[trials[2]].data.metrics
    losses = [m.value for m in client.get_metric_history(by_trial[trials[0]].info.run_id, "train_loss")]
    assert len(losses) == EPOCHS and math.isnan(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    val_losses = [m.value for m in client.get_metric_history(by_trial[trials[0]].info.run_id, "val_loss")]
    assert len(val_losses) == EPOCHS and math.isnan(val_losses[-1])  # a validation loss that diverged, kept too
    assert len(client.get_metric_history(by_trial[trials[2]].info.run_id, "val_loss")) == EPOCHS - 1
    # each trial's MLflow run ends as the trial did: FAILED where it failed or diverged, KILLED ("did not run") where
    # it was skipped, FINISHED where it ended ok
    ended = {trial: by_trial[trial].info.status for trial in trials[:5]}
    assert ended == dict(zip(trials[:5], ["FAILED", "FAILED", "FINISHED", "KILLED", "FINISHED"], strict=True))
    assert by_trial[trials[3]].data.tags["xfbench.status"] == "skipped"
    # the retried trial's run holds its last attempt alone: its epochs at steps 1..EPOCHS, the first attempt's none
    history = client.get_metric_history(by_trial[trials[4]].info.run_id, "val_acc")
    last = rows[(rows["trial_id"] == trials[4]) & (rows["attempt"] == 1)]
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert [m.value for m in history] == pytest.approx(last["val_acc"].tolist())
    assert (
        by_trial[trials[4]].data.tags["xfbench.status"] == "ok" and "xfbench.error" not in by_trial[trials[4]].data.tags
    )


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_exporting_a_run_again_adds_nothing_and_a_changed_run_replaces_its_export_only_when_asked(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-x", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "t"]
    assert main(export) == 0
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("t").experiment_id

    def active_runs() -> dict[str, str]:  # MLflow run id -> trial id ("" for the parent)
        return {r.info.run_id: r.data.tags.get("xfbench.trial_id", "") for r in client.search_runs([experiment_id])}

    first = active_runs()
    trials = set(_frame("run-x")["trial_id"])
    assert sorted(first.values()) == sorted({"", *trials})
    capsys.readouterr()
    assert main(export) == 0  # the same rows again: nothing written
    assert active_runs() == first and "nothing written" in capsys.readouterr().out
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows.loc[rows.index[-1], "test_acc"] = 0.5  # the run changed (as a resume would change it)
    rows.to_parquet(run_dir / "results.parquet")
    assert main(export) == 2
    err = capsys.readouterr().err
    assert "Received: an earlier export of it" in err and "the run's rows have changed since" in err, err
    assert "To fix, pass --replace" in err and active_runs() == first
    assert main([*export, "--replace"]) == 0
    second = active_runs()
    assert "replaced the earlier export" in capsys.readouterr().out
    assert sorted(second.values()) == sorted(first.values()) and not set(second) & set(first)
    changed = client.get_run(next(r for r, t in second.items() if t == rows["trial_id"].iloc[-1]))
    assert changed.data.metrics["test_acc"] == 0.5
    parent = next(r for r, t in second.items() if t == "")
    client.set_tag(parent, "xfbench.export", "incomplete")  # as an export that stopped half-way leaves it
    assert main(export) == 2 and "it is incomplete" in capsys.readouterr().err
    other = _write_run(tmp_path / "elsewhere", "run-x", "2026-01-02")  # another machine's run of the same id
    assert main(["export", str(other), "--mlflow", uri, "--experiment", "t"]) == 0
    assert len(active_runs()) == 2 * len(second)


needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")


def _error_lines(err: str) -> list[str]:
    """stderr less MLflow's own log lines (it logs creating a database's tables)."""
    return [line for line in err.strip().splitlines() if not re.match(r"\d{4}/\d\d/\d\d [\d:]+ INFO ", line)]


def _mlflow_runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


@needs_mlflow
def test_an_experiment_whose_artefacts_this_uri_cannot_write_is_refused_before_anything_is_written(tmp_path, capsys):
    """`mlflow server` gives its experiments mlflow-artifacts: locations, which only the server's http:// address
    reaches: exporting into one through its database failed at the first artefact, with a traceback, and left the
    parent run RUNNING."""
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-a", "2026-01-01")  # its run.json is an artefact of the parent run
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("srv", artifact_location="mlflow-artifacts:/srv")
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "srv"]) == 2
    err = capsys.readouterr().err
    assert len(_error_lines(err)) == 1 and "Received: its artifact location mlflow-artifacts:/srv (" in err
    assert "give the tracking server's http:// address as --mlflow" in err and not _mlflow_runs(uri, "srv")
    (tmp_path / "a-file").write_text("")
    MlflowClient(uri).create_experiment("file", artifact_location=(tmp_path / "a-file" / "artefacts").as_uri())
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "file"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a-file'} is not a folder" in err and "make that location writable" in err, err
    assert not _mlflow_runs(uri, "file")


@needs_mlflow
def test_an_mlflow_error_while_writing_ends_the_export_failed_in_one_line_and_replace_writes_it_again(
    tmp_path, capsys, monkeypatch
):
    """An error MLflow raised while the runs were written was a traceback, and left the parent run RUNNING."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-w", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "w"]

    def refuse(self, run_id, metrics=(), params=(), tags=()):
        raise MlflowException("the store refused the batch\nand said more on other lines")

    monkeypatch.setattr(MlflowClient, "log_batch", refuse)
    assert main(export) == 2
    err = capsys.readouterr().err
    assert len(_error_lines(err)) == 1, err
    assert "Received: MlflowException while writing it (the store refused the batch ...); its parent run" in err
    assert "ended FAILED" in err and "with --replace" in err
    runs = _mlflow_runs(uri, "w")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED" and parent.data.tags["xfbench.export"] == "incomplete"
    assert {r.info.status for r in runs} == {"FAILED"}  # the trial it was writing, too: none left RUNNING
    monkeypatch.undo()
    assert main(export) == 2 and "it is incomplete" in capsys.readouterr().err
    assert main([*export, "--replace"]) == 0
    runs = _mlflow_runs(uri, "w")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED" and parent.data.tags["xfbench.export"] == "complete"
    assert len(runs) == 1 + len(_frame("run-w")["trial_id"].unique())


@needs_mlflow
def test_an_export_stopped_by_ctrl_c_ends_its_mlflow_runs_killed_not_running(tmp_path, capsys, monkeypatch):
    """Ctrl-C (or a cancelled CI job's) while the runs were written left the parent and the trial being written
    RUNNING for good; the next export must still find it incomplete."""
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-c", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "c"]
    written = MlflowClient.log_batch

    def stopped_at_the_third(self, run_id, metrics=(), params=(), tags=()):
        if len(_mlflow_runs(uri, "c")) == 3:  # the parent and two trials: a third is being written
            raise KeyboardInterrupt
        return written(self, run_id, metrics=metrics, params=params, tags=tags)

    monkeypatch.setattr(MlflowClient, "log_batch", stopped_at_the_third)
    assert main(export) == 130 and "xfbench: interrupted" in capsys.readouterr().err
    runs = _mlflow_runs(uri, "c")
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FINISHED", "KILLED", "KILLED"], statuses  # a trial written, the one cut short, the parent
    monkeypatch.undo()
    assert main(export) == 2 and "it is incomplete" in capsys.readouterr().err


@needs_mlflow
def test_a_tune_run_whose_plan_cannot_be_read_is_refused_before_anything_is_written(tmp_path, capsys):
    """The search plan (for the search_best and stopped_early tags) was read after the parent run was written: a
    run.json this version cannot read exited 2 with MLflow runs left behind, advising to start a new run."""
    run_dir = tmp_path / "tune-p"
    run_dir.mkdir()
    _tune_rows("tune-p").to_parquet(run_dir / "results.parquet")
    info = {"run_id": "tune-p", "started": "2026-01-01", "status": "finished", "kind": "tune", "git_commit": "abc"}
    (run_dir / "run.json").write_text(json.dumps({**info, "tune": {"metric": "val_acc"}}))  # an older plan
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "p"]) == 2
    err = capsys.readouterr().err
    assert "start a new run" not in err.lower() and len(_error_lines(err)) == 1, err
    assert (
        "Nothing was written to MLflow. To fix, export the run with the xfbench version that ran it (commit abc)" in err
    )
    assert not _mlflow_runs(uri, "p")


@needs_mlflow
def test_a_tune_run_json_holding_a_refused_value_is_refused_in_one_well_formed_sentence(tmp_path, capsys):
    """The export cut run.json's refusal on its first "Received: ": a value RunFile refuses (its own refusal nested
    inside) came out with two "Received:", no fix, and the nested one's text spliced in."""
    from harness.plan import ExecutionOptions, RunFile, RunRecord, write_run_file
    from harness.planner import SearchRequest, Selection, plan_tune

    run_dir = tmp_path / "tune-v"
    run_dir.mkdir()
    _tune_rows("tune-v").to_parquet(run_dir / "results.parquet")
    plan = plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest(num_samples=2, final_seeds=2))
    record = RunRecord("tune-v", "2026-01-01", ("xfbench", "tune"), "abc", "h", "c", "3.11", status="finished")
    write_run_file(run_dir, RunFile(plan, ExecutionOptions(), record))
    data = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**data, "reference": "jax"}))  # a backend this version lacks
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "v"]) == 2
    (said,) = _error_lines(capsys.readouterr().err)
    assert said.count("Expected ") == 1 and said.count("Received: ") == 1 and said.count("To fix,") == 1, said
    assert said.index("Expected ") < said.index("Received: ") < said.index("To fix,"), said
    assert f"Received: {run_dir / 'run.json'}, whose key reference holds 'jax', a value this version of" in said, said
    assert "start a new run" not in said.lower() and not _mlflow_runs(uri, "v")


def test_a_too_long_experiment_name_is_refused_as_such_not_as_a_bad_tracking_uri(tmp_path, capsys):
    run_dir = _write_run(tmp_path, "run-n", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "x" * 501]) == 2
    err = capsys.readouterr().err
    assert "Expected --experiment of at most 500 characters (MLflow's limit). Received: a name of 501" in err
    assert "tracking URI" not in err and "To fix, give a shorter --experiment." in err


@needs_mlflow
def test_mlflow_logs_each_epochs_regularisation_loss_peak_memory_and_warm_up(tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-g", "2026-01-01")
    rows = pd.read_parquet(run_dir / "results.parquet")
    on_gpu = rows["trial_id"] == rows["trial_id"].iloc[0]
    rows["train_reg_loss"] = 0.01 * rows["epoch"]
    rows["gpu_peak_mib"] = np.where(on_gpu, 100.0 + rows["epoch"], np.nan)  # empty on the CPU
    rows.to_parquet(run_dir / "results.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "g"]) == 0
    client = MlflowClient(uri)
    by_trial = {
        r.data.tags["xfbench.trial_id"]: r.info.run_id
        for r in _mlflow_runs(uri, "g")
        if "xfbench.trial_id" in r.data.tags
    }
    gpu, cpu = by_trial[rows["trial_id"].iloc[0]], by_trial[rows.loc[~on_gpu, "trial_id"].iloc[0]]

    def steps(run_id: str, name: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))

    assert steps(cpu, "train_reg_loss") == [(e, pytest.approx(0.01 * e)) for e in range(1, EPOCHS + 1)]
    assert steps(cpu, "warmup") == [(1, 1.0)] + [(e, 0.0) for e in range(2, EPOCHS + 1)]
    assert steps(gpu, "gpu_peak_mib") == [(e, 100.0 + e) for e in range(1, EPOCHS + 1)]
    assert steps(cpu, "gpu_peak_mib") == []


@needs_mlflow
def test_an_unchanged_run_stays_unchanged_after_the_schema_gains_a_column(tmp_path, capsys, monkeypatch):
    """The rows' hash took every column reading gives, the empty ones the schema gained since the run included: an
    unchanged run's export read as changed, and exited 2 asking for --replace."""
    from harness import results

    run_dir = _write_run(tmp_path, "run-c", "2026-01-01")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "c"]
    assert main(export) == 0
    monkeypatch.setattr(results, "COLUMNS", (*results.COLUMNS, "later_metric", "later_note"))
    monkeypatch.setattr(results, "DTYPES", {**results.DTYPES, "later_metric": "float64", "later_note": "string"})
    capsys.readouterr()
    assert main(export) == 0 and "nothing written" in capsys.readouterr().out
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows[list(reversed(rows.columns))].to_parquet(run_dir / "results.parquet")  # the same rows, stored otherwise
    assert main(export) == 0 and "nothing written" in capsys.readouterr().out
    rows.loc[rows.index[-1], "val_acc"] = 0.5  # a changed row still reads as changed
    rows.to_parquet(run_dir / "results.parquet")
    assert main(export) == 2 and "the run's rows have changed since" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@needs_matplotlib
@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (make chromium installs it as root)")
def test_the_report_opens_in_headless_chromium(tmp_path):
    for index, slowdown in enumerate((1.0, 1.0, 1.6)):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=slowdown, noise=index)
    report = build_report([tmp_path], tmp_path / "report.html")
    shot = tmp_path / "report.png"
    # offline: every host name resolves to nothing, so a fetch would fail and log to the console
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"]
    flags += ["--enable-logging=stderr", "--v=0", "--window-size=1200,4000"]
    url = report.path.as_uri()
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    subprocess.run([_chromium(), *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    figures = re.findall(r'<figure id="plot-([^"]+)">.*?<svg', dom.stdout, flags=re.S)
    assert set(figures) == set(report.plots) and len(report.plots) >= 6
    assert shot.stat().st_size > 50_000  # kept in tmp_path: a picture of the page as a browser draws it
    print(f"screenshot: {shot}")


@needs_matplotlib
def test_a_report_of_a_baseline_is_written_in_the_working_directory_not_in_the_tracked_baselines(
    tmp_path, monkeypatch, capsys
):
    results = tmp_path / "results"
    _write_run(results, "run-b", "2026-01-01")
    assert main(["baseline", "save", "keep", "--run", "run-b", "--results-dir", str(results)]) == 0
    [saved] = (results / "baselines").glob("*/keep")
    before = sorted(p.name for p in saved.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["report", "keep", "--results-dir", str(results)]) == 0
    assert (tmp_path / "report.html").is_file() and sorted(p.name for p in saved.iterdir()) == before
    # the baseline beside the run it was saved from: two labels, two history columns (both read run-b)
    assert main(["report", "keep", "run-b", "--results-dir", str(results), "-o", str(tmp_path / "both.html")]) == 0
    page = (tmp_path / "both.html").read_text()
    history = page.split("<h2>History</h2>")[1].split("<h2>Run")[0]
    assert f"<td>baseline {saved.parent.name}/keep</td>" in history and "<td>run-b</td>" in history


@needs_matplotlib
def test_a_report_of_a_run_without_run_json_lands_in_the_run_not_the_working_directory(tmp_path, monkeypatch):
    """Rows copied without run.json (or from a run whose driver died first) are still one run: its report goes
    beside them, as any run's, not into whatever folder the command was started in."""
    run_dir = _write_run(tmp_path / "results", "run-j", "2026-01-01")
    (run_dir / "run.json").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file() and not (tmp_path / "report.html").exists()


@needs_matplotlib
def test_the_reference_reaches_the_report_beside_summary_md(tmp_path):
    run_dir = _write_run(tmp_path, "run-r", "2026-01-01", torch_slowdown=1.5)
    assert write_report(run_dir, "tensorflow") is None  # drawn: no problem to tell
    page = (run_dir / "report.html").read_text()
    assert "Statistics vs tensorflow" in page and "tensorflow vs torch" in page and "Statistics vs torch" not in page
    # how to read the tables, as summary.md says it: which way the differences and ratios go
    assert "(tensorflow − backend, percentage points" in page and "ratio (tensorflow / backend" in page
    assert "ratios tensorflow / backend, so ratios above 1 mean tensorflow takes longer" in page
    rows = pd.read_parquet(run_dir / "results.parquet")  # a TensorFlow-only run keeps the default reference, torch:
    rows[rows["backend"] == "tensorflow"].to_parquet(run_dir / "results.parquet")  # nothing to compare, still drawn
    assert write_report(run_dir) is None


@needs_matplotlib
def test_a_later_report_compares_with_the_runs_reference_and_keeps_only_its_own_plots(tmp_path, capsys):
    run_dir = _write_run(tmp_path, "run-t", "2026-01-01", torch_slowdown=1.5)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps(info | {"reference": "tensorflow"}))  # as `run --reference` records
    out = tmp_path / "page.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    assert "Statistics vs tensorflow" in out.read_text() and "Statistics vs torch" not in out.read_text()
    assert main(["report", str(run_dir), "-o", str(out), "--reference", "torch"]) == 0  # the flag still wins
    torch_only = _write_run(tmp_path, "run-o", "2026-01-02")
    rows = pd.read_parquet(torch_only / "results.parquet")
    rows[rows["backend"] == "torch"].to_parquet(torch_only / "results.parquet")
    capsys.readouterr()
    assert main(["report", str(torch_only), "-o", str(out), "--reference", "tensorflow"]) == 2
    assert "Received: 'tensorflow'; it ran ['torch']" in capsys.readouterr().err
    assert "Statistics vs torch" in out.read_text()
    plots = tmp_path / "page_plots"
    two_backends = {p.name for p in plots.iterdir()}
    (plots / "mine.png").write_bytes(b"a picture of the user's")  # not xfbench's: never touched
    (plots / "epoch-times-marked.svg").write_text("<svg/>")
    assert main(["report", str(torch_only), "-o", str(out)]) == 0  # another run into the same folder
    left = {p.name for p in plots.iterdir()} - {"mine.png", "epoch-times-marked.svg"}
    assert left == {f"{name}.{kind}" for name in build_report([torch_only], out).plots for kind in ("png", "svg")} | {
        ".xfbench-plots.json"
    }
    assert "time-ratios.png" in two_backends and "time-ratios.png" not in left  # the first report's, removed
    assert (plots / "mine.png").is_file() and (plots / "epoch-times-marked.svg").is_file()
    (run_dir / "run.json").write_text(json.dumps(info | {"reference": "jax"}))
    capsys.readouterr()
    assert main(["report", str(run_dir), "-o", str(out)]) == 2
    assert (
        "Expected run.json's reference to be one of ['torch', 'tensorflow']. Received: 'jax'" in capsys.readouterr().err
    )


@needs_matplotlib
def test_report_finds_a_run_id_as_compare_does_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    _write_run(tmp_path / "results", "run-x", "2026-01-01")
    (tmp_path / "elsewhere" / "run-x").mkdir(parents=True)  # an unrelated folder named like the run
    monkeypatch.chdir(tmp_path / "elsewhere")
    out = tmp_path / "x.html"
    assert main(["report", "run-x", "--results-dir", str(tmp_path / "results"), "-o", str(out)]) == 0
    assert "xfbench report: run-x" in out.read_text()
    assert main(["report", str(tmp_path / "results"), "-o", str(out)]) == 0  # a folder of runs is still one


def test_run_and_tune_take_format_and_reference(capsys, tmp_path):
    from types import SimpleNamespace

    from harness.cli_options import build_parser

    args = build_parser().parse_args(["run", "--suite", "quick", "--format", "json", "--reference", "tensorflow"])
    assert (args.format, args.reference) == ("json", "tensorflow")
    frame = _frame(torch_slowdown=1.5)
    outcome = SimpleNamespace(
        status="finished", run_id="r", run_dir=tmp_path, summary=summarize(frame), wall_time_s=1.0
    )
    reporting.print_run_summary(outcome, args.format, summary=summarize(frame, args.reference))
    data = json.loads(capsys.readouterr().out)
    assert data["reference"] == "tensorflow"
    assert {row["backend"] for row in data["tables"]["statistics"]} == {"torch"}


@needs_matplotlib
def test_learning_curves_draw_no_line_for_a_metric_the_rows_do_not_have():
    """deep_features rows have no validation metrics: their curves were drawn at 0 % accuracy and 0 loss."""
    from harness.plots import learning_curves

    rows = [
        {
            "trial_id": f"t-{b}",
            "suite": "s",
            "strategy": s,
            "model": "cnn_small",
            "dataset": "digits",
            "variant": "",
            "backend": b,
            "seed": 0,
            "phase": "sklearn" if s == "deep_features" else "train",
            "epoch": 1,
            "status": "ok",
            "val_acc": math.nan if s == "deep_features" else 0.9,
            "val_loss": math.nan if s == "deep_features" else 0.3,
            "epoch_time_s": 0.1,
        }
        for b in ("torch", "tensorflow")
        for s in ("deep_features", "scratch")
    ]
    import matplotlib.pyplot as plt

    lines, ticks = {}, {}
    for plot in learning_curves(to_frame(rows)):
        lines[plot.name] = [[list(line.get_ydata()) for line in ax.get_lines()] for ax in plot.figure.axes]
        plot.figure.canvas.draw()
        ticks[plot.name] = [
            [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]] for ax in plot.figure.axes
        ]
        plt.close(plot.figure)
    assert lines["curves-deep_features-cnn_small-digits"] == [[], []]
    assert lines["curves-scratch-cnn_small-digits"] == [[[0.9], [0.9]], [[0.3], [0.3]]]
    assert ticks["curves-scratch-cnn_small-digits"] == [[1.0], [1.0]]  # one epoch: one tick, not 0.96 ... 1.04
    from harness.plots import accuracy_vs_time

    [timed] = accuracy_vs_time(to_frame(rows))
    said = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in timed.figure.axes if ax.get_title()}
    plt.close(timed.figure)
    assert said == {"deep_features-cnn_small-digits": ["no such metric in these rows"], "scratch-cnn_small-digits": []}


@needs_matplotlib
def test_learning_curves_and_accuracy_against_time_leave_out_a_trial_that_did_not_end_ok():
    """A seed that failed at its last epoch kept its first epochs' ok rows: they joined the mean over seeds up to
    there, beside tables that count it out ("ok 2/3")."""
    import matplotlib.pyplot as plt

    from harness.plots import accuracy_vs_time, learning_curves

    frame = _frame(seeds=3)
    lost = (frame["backend"] == "tensorflow") & (frame["seed"] == 2)
    frame.loc[lost & (frame["epoch"] == EPOCHS), "status"] = "failed"
    ok = frame[(frame["backend"] == "tensorflow") & (frame["seed"] < 2) & (frame["model"] == MODELS[0])]
    expected = ok.groupby("epoch")["val_acc"].mean().tolist()[: EPOCHS - 1]
    curves = {plot.name: plot.figure for plot in learning_curves(frame)}
    [tensorflow] = [
        line
        for line in curves[f"curves-scratch-{MODELS[0]}-digits"].axes[0].get_lines()
        if line.get_label() == "tensorflow (2 of 3 ok)"  # the figure said "mean over seeds", not over which
    ]
    assert list(tensorflow.get_ydata())[: EPOCHS - 1] == pytest.approx(expected)
    labels = [line.get_label() for line in curves[f"curves-scratch-{MODELS[0]}-digits"].axes[0].get_lines()]
    assert "torch (3 ok)" in labels
    [timed] = accuracy_vs_time(frame)
    assert len(timed.figure.axes[0].get_lines()) == 3 + 2  # torch's 3 trials, tensorflow's 2 that ended ok
    for figure in [*curves.values(), timed.figure]:
        plt.close(figure)


@needs_matplotlib
def test_trials_read_from_the_cache_are_not_drawn_at_zero_seconds_of_training():
    """A trial whose features came from the cache has no epoch time: it was drawn at 0 s, as if it trained in no
    time; a panel of such trials alone now says they were not timed."""
    import matplotlib.pyplot as plt

    from harness.plots import accuracy_vs_time

    frame = _frame(seeds=2)
    cached = (frame["model"] == MODELS[0]) & (frame["backend"] == "tensorflow") | (frame["model"] == MODELS[1])
    frame.loc[cached, "epoch_time_s"] = math.nan
    (plot,) = accuracy_vs_time(frame)
    second, first = plot.figure.axes[:2]  # convnet3 (all from the cache) drawn first, then mlp
    assert len(first.get_lines()) == 2 and all(min(line.get_xdata()) > 0 for line in first.get_lines())
    assert [t.get_text() for t in first.texts] == ["2 trial(s) not timed (from the cache)"]  # not gone unsaid
    assert not second.get_lines() and [t.get_text() for t in second.texts] == ["not timed: 4 trial(s) from the cache"]
    plt.close(plot.figure)


@needs_matplotlib
def test_case_names_holding_dollar_signs_are_drawn_as_written_not_as_mathtext(tmp_path):
    """matplotlib read a label between two `$` as mathtext: a model named cost$^$net failed the whole report
    (ValueError), and one named $a_1$ was drawn as a subscript."""
    run_dir = _write_run(tmp_path, "run-a", "2026-01-01", torch_slowdown=1.5)
    frame = pd.read_parquet(run_dir / "results.parquet")
    names = {MODELS[0]: "cost$^$net", MODELS[1]: "$a_1$"}
    frame["trial_id"] = [
        tid.replace(f"-{m}-", f"-{names[m]}-") for tid, m in zip(frame["trial_id"], frame["model"], strict=True)
    ]
    frame["model"] = frame["model"].map(names)
    frame.to_parquet(run_dir / "results.parquet")
    report = build_report([run_dir], run_dir / "report.html")
    assert "time-ratios" in report.plots and "epoch-times" in report.plots
    drawn = "".join((report.plot_dir / f"{name}.svg").read_text() for name in report.plots)
    assert "cost$^$net" in drawn and "$a_1$" in drawn  # SVG text as written (svg.fonttype none)


@needs_matplotlib
def test_plot_files_are_named_without_characters_artefact_uploads_refuse(tmp_path):
    """Two suites in one report name cases suite:case, and a torchvision model keeps its prefix: curves-t:scratch-...
    .png could not be uploaded as a CI artefact, nor held on Windows."""
    import matplotlib.pyplot as plt

    from harness.plots import learning_curves

    frame = _frame(seeds=1)
    other = frame[frame["model"] == MODELS[0]].assign(suite="other", model="torchvision:resnet18")
    frame = pd.concat([frame, other], ignore_index=True)
    names = []
    for plot in learning_curves(frame):
        names.append(plot.name)
        plt.close(plot.figure)
    assert len(names) == len(MODELS) + 1 and all(re.fullmatch(r"[\w.-]+", name) for name in names), names


@needs_matplotlib
def test_a_report_without_plots_names_no_plot_folder(tmp_path, capsys):
    """Every trial diverged: nothing to draw, and the line named a PNG and SVG folder that was never made."""
    run_dir = _write_run(tmp_path, "run-0", "2026-01-01")
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows.assign(status="diverged").to_parquet(run_dir / "results.parquet")
    assert main(["report", str(run_dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 plots)" in out and "PNG and SVG" not in out and not (run_dir / "report_plots").exists()


def test_the_transfer_table_gives_no_error_reduction_without_an_error_or_an_accuracy():
    def per_backend(b_scratch: float, b_on_a: float) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"dataset": "digits", "backend": "torch", "variant": v, "test_acc_mean": a}
                for v, a in (("B_scratch", b_scratch), ("B_on_A", b_on_a))
            ]
        )

    assert "| digits | torch | 0.9000 | 0.9500 | 2.00 |" in reporting.transfer_markdown(per_backend(0.9, 0.95))
    assert "| digits | torch | 0.9000 | 1.0000 | unbounded (no B-on-A error) |" in reporting.transfer_markdown(
        per_backend(0.9, 1.0)
    )
    assert "| digits | torch | 1.0000 | 1.0000 | n/a |" in reporting.transfer_markdown(per_backend(1.0, 1.0))
    assert "| digits | torch | 0.9500 | n/a | n/a |" in reporting.transfer_markdown(per_backend(0.95, math.nan))
    # two suites of one run are two comparisons, not one row overwriting the other
    smoke, full = per_backend(0.9, 0.95).assign(suite="s", suite_shown="s"), per_backend(0.8, 0.9).assign(suite="f")
    two = reporting.transfer_markdown(pd.concat([smoke, full.assign(suite_shown="f")]))
    assert (
        "| s: digits | torch | 0.9000 | 0.9500 | 2.00 |" in two
        and "| f: digits | torch | 0.8000 | 0.9000 | 2.00 |" in two
    )


@needs_matplotlib
def test_the_reports_history_gives_an_accuracy_regression_its_difference_verdict_and_note(tmp_path):
    """The history's table held epoch-time ratios only: an accuracy regression read "(accuracy)" in the run list,
    with no Δ pp, no verdict and no note of what changed (compare and `xfbench history` give them)."""
    _write_run(tmp_path, "run-0", "2026-01-01")
    run_dir = _write_run(tmp_path, "run-1", "2026-01-02")
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows["test_acc"] = rows["test_acc"] - 0.05 - 0.004 * rows["seed"]  # seeds that differ unalike: an interval
    rows["config_json"] = rows["config_json"].str.replace('"lr": 0.01', '"lr": 0.5')
    rows.to_parquet(run_dir / "results.parquet")
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out), "--metric", "test_acc"]) == 0
    table = out.read_text().split("<h2>History</h2>")[1].split("<h2>Run")[0]
    assert "Δ acc pp" in table and "test accuracy (mean over seeds" in table
    changes = table.split("<h3>Against")[1]
    row = next(r for r in changes.split("<tr>") if f"scratch-{MODELS[0]}-digits</td>" in r and "<td>run-1</td>" in r)
    assert "<td>regression</td>" in row and "-5.40*" in row and "optimizer.lr 0.01→0.5" in row, row


def test_a_metric_for_the_history_of_one_run_is_refused_as_changing_nothing(tmp_path, capsys):
    """One run has no history: --metric was accepted and changed nothing in its page; so were the history's
    regression thresholds (the page byte for byte the same)."""
    run_dir = _write_run(tmp_path, "run-0", "2026-01-01")
    assert main(["report", str(run_dir), "--metric", "test_acc"]) == 2
    said = capsys.readouterr().err
    assert "Expected --metric with several runs or a folder of runs" in said
    assert f"Received: --metric test_acc for the one run {run_dir}, which has no history. To fix, drop them" in said
    assert main(["report", str(run_dir), "--time-threshold", "1.05", "--alpha", "0.05"]) == 2
    said = capsys.readouterr().err
    assert "Expected --time-threshold, --alpha with several runs" in said and "Received: --time-threshold 1.05" in said
    assert not (run_dir / "report.html").exists()
    # a folder whose one run with rows makes no history either: --metric was ignored there, exit 0
    (tmp_path / "run-1" / "parts").mkdir(parents=True)
    assert main(["report", str(tmp_path), "--metric", "test_acc", "-o", str(tmp_path / "r.html")]) == 2
    said = capsys.readouterr().err
    assert (
        f"Received: --metric test_acc for the one run {run_dir} (the only one with rows of the 2 runs given), " in said
    )
    assert not (tmp_path / "r.html").exists()


@needs_matplotlib
def test_the_history_plot_of_many_series_keeps_its_legend_inside_the_figure_and_off_the_data():
    """Sixty series of a real history: the legend covered the data and ran off the figure's top, and past nine
    series colours repeated with the same marker."""
    import warnings

    import matplotlib.pyplot as plt

    from harness.plots import HistoryMarks, history

    keys = [
        (f"transfer_smoke:feature_extraction-cnn_small+5-9to0-4-digits-{i}", b)
        for i in range(30)
        for b in ("torch", "tensorflow")
    ]
    index = pd.MultiIndex.from_tuples(keys, names=["case", "backend"])
    series = pd.DataFrame({"run-0": np.linspace(0.01, 2.6, 60), "run-1": np.linspace(0.011, 2.5, 60)}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Tight layout not applied" among them
        [plot] = history(series, HistoryMarks(), "epoch_time_s", "time")
        plot.figure.canvas.draw()
    figure_box = plot.figure.bbox
    [legend] = plot.figure.legends
    legend_box, axes_box = legend.get_window_extent(), plot.figure.axes[0].get_window_extent()
    assert figure_box.x0 <= legend_box.x0 and legend_box.x1 <= figure_box.x1 and figure_box.y0 <= legend_box.y0
    assert legend_box.y1 <= axes_box.y0  # below the plot, not over its data
    styles = {(line.get_color(), line.get_marker(), line.get_linestyle()) for line in plot.figure.axes[0].get_lines()}
    assert len(styles) == 60 and plot.figure.axes[0].get_yscale() == "log"
    plt.close(plot.figure)


@needs_matplotlib
def test_a_log_axis_of_a_few_decades_labels_2_and_5_and_a_learning_curves_long_title_is_wrapped():
    """Review 167, finding 7: the history's log axis over 0.15 to 3.3 s read the one label "1"; and a learning-curve
    figure's title with a suite prefix ran past both edges of the figure."""
    import matplotlib.pyplot as plt

    from harness.plots import SUPTITLE_WIDTH, HistoryMarks, history, learning_curves

    index = pd.MultiIndex.from_tuples([("s:scratch-m-d", "torch")], names=["case", "backend"])
    [plot] = history(pd.DataFrame({"run-0": [0.15], "run-1": [3.3]}, index=index), HistoryMarks(), "epoch_time_s", "t")
    plot.figure.canvas.draw()
    ax = plot.figure.axes[0]
    low, high = ax.get_ylim()
    shown = [
        t.get_text()
        for t in [*ax.yaxis.get_majorticklabels(), *ax.yaxis.get_minorticklabels()]
        if t.get_text() and low <= t.get_position()[1] <= high
    ]
    assert ax.get_yscale() == "log" and {"0.2", "0.5", "1", "2"} <= set(shown), shown
    assert not {"0.3", "0.4", "3"} & set(shown)  # the other minor ticks stay unlabelled
    plt.close(plot.figure)
    frame = _frame(seeds=2).assign(suite="imagenet_transfer_smoke_with_a_long_suite_name", model="alexnet_tv_long")
    frame = pd.concat([frame, frame.assign(suite="other")])
    curves = next(iter(learning_curves(frame)))
    title = curves.figure._suptitle.get_text()
    assert "\n" in title and max(map(len, title.splitlines())) <= SUPTITLE_WIDTH, title
    curves.figure.canvas.draw()
    box, figure_box = curves.figure._suptitle.get_window_extent(), curves.figure.bbox
    assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1  # within the figure's edges
    plt.close(curves.figure)


@needs_matplotlib
def test_the_reports_history_trends_no_search_samples(tmp_path):
    """As `xfbench history`: a tune's search samples would join unrelated configurations by their sample number."""
    for index in range(2):
        run_dir = _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}")
        rows = pd.read_parquet(run_dir / "results.parquet")
        samples = rows.assign(stage="search", variant=".search000", trial_id=rows["trial_id"] + ".search000")
        pd.concat([rows.assign(stage="trials"), samples]).to_parquet(run_dir / "results.parquet")
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = out.read_text()
    history = (
        page.split("<h2>History")[1].split("<h2>Run")[0] + page.split('id="plot-history"')[1].split("</figure>")[0]
    )
    assert "scratch-mlp-digits" in history and "search000" not in history


@needs_matplotlib
def test_the_reports_history_compares_a_case_with_the_last_run_that_ran_it(tmp_path):
    """A run of another case in between hid a regression: each run was compared with the one just before only."""
    for index, slowdown in enumerate((1.0, 1.0, 1.6)):
        _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=slowdown, noise=index)
    rows = pd.read_parquet(tmp_path / "run-1" / "results.parquet")
    rows[rows["model"] != MODELS[0]].to_parquet(tmp_path / "run-1" / "results.parquet")  # run-1 lacks MODELS[0]
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = out.read_text()
    assert f"t:scratch-{MODELS[0]}-digits [torch]" in page  # the slowed run's regression, against run-0
    assert page.count("against run-0, the last run that ran it") == 2  # both backends of that case


@needs_matplotlib
def test_accuracy_is_drawn_against_training_time_and_a_run_without_ratios_draws_no_ratio_plot():
    """The last row's evaluation time holds the test evaluation and MC passes, after the validation accuracy it
    plots: summed in, it moved the last point; and a run of warm-up epochs only drew an empty ratio plot."""
    import matplotlib.pyplot as plt

    from harness.plots import accuracy_vs_time, time_ratios

    frame = _frame(seeds=1)
    frame.loc[frame["epoch"] == EPOCHS, "eval_time_s"] = 100.0  # the test evaluation and MC passes
    (plot,) = accuracy_vs_time(frame)
    trial = frame[frame["trial_id"] == frame["trial_id"].iloc[0]]
    ends = {float(line.get_xdata()[-1]) for ax in plot.figure.axes for line in ax.get_lines()}
    plt.close(plot.figure)
    assert any(end == pytest.approx(float(trial["epoch_time_s"].sum())) for end in ends) and max(ends) < 100
    one_epoch = case_statistics(_frame(seeds=1)[lambda f: f["epoch"] == 1])
    assert one_epoch["time_ratio"].isna().all() and time_ratios(one_epoch) == []


@needs_matplotlib
def test_a_search_plot_draws_a_backend_whose_every_sample_failed_as_nothing_instead_of_failing():
    """A searched text option (init) whose samples all failed on one backend: no metric to draw. Scattered as NaN
    on a category axis, matplotlib's legend raised TypeError, and the tune's report was lost."""
    import matplotlib.pyplot as plt

    from harness.plots import search_points

    table = pd.DataFrame(
        {
            "backend": ["torch", "torch", "tensorflow", "tensorflow"],
            "init": ["he_normal", "bogus", "he_normal", "bogus"],
            "stopped_early": [False] * 4,
            "val_acc": [0.8, math.nan, math.nan, math.nan],
        }
    )
    frame = _frame(seeds=1).assign(stage="search")
    (plot,) = search_points(frame, table, ["init"], "val_acc")
    plot.figure.savefig(io.BytesIO(), format="png")
    points = [c.get_offsets() for c in plot.figure.axes[0].collections]
    plt.close(plot.figure)
    assert len(points) == 1 and len(points[0]) == 1  # torch's one sample with a metric


@needs_matplotlib
def test_a_search_plot_keeps_both_backends_visible_on_readable_axes():
    """The search plot drew equal points of two backends in one marker (one hid the other), labelled the log
    axis's minor ticks into one unreadable string, read epochs as 1.2, 1.4, and took a log axis for paths ending
    in "lr" only."""
    import matplotlib.pyplot as plt

    from harness.plots import search_points
    from harness.report_html import log_scaled
    from harness.search import Choice, IntRange, LogUniform, SearchSpace
    from harness.tuning import TunePlan

    table = pd.DataFrame(
        {
            "backend": ["torch", "torch", "tensorflow", "tensorflow"],
            "optimizer.lr": [0.003, 0.03, 0.003, 0.03],
            "stopped_early": [False] * 4,
            "val_acc": [0.8, 0.9, 0.8, 0.9],  # the backends agree on every sample
        }
    )
    frame = _frame(seeds=1).assign(stage="search")
    (plot,) = search_points(frame, table, ["optimizer.lr"], "val_acc", ["optimizer.lr"])
    plot.figure.savefig(io.BytesIO(), format="png")
    ax, epochs = plot.figure.axes
    markers = [(c.get_paths()[0].vertices.tobytes(), float(c.get_sizes()[0])) for c in ax.collections]
    assert len(markers) == 2 and markers[0] != markers[1] and markers[0][1] != markers[1][1]
    # the minor ticks labelled at 2 and 5 of each decade alone (0.003 to 0.03: 0.005 and 0.02), not each one
    minor = [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    assert ax.get_xscale() == "log" and set(minor) <= {"0.002", "0.005", "0.02", "0.05"} and minor, minor
    assert all(float(t).is_integer() for t in epochs.get_xticks())
    plt.close(plot.figure)
    space = SearchSpace(
        (
            ("optimizer.lr", LogUniform(1e-4, 1e-1)),
            ("optimizer.momentum", Choice((0.0, 0.9))),
            ("batch_size", Choice((16, 64, 2048))),
            ("epochs", IntRange(1, 4)),
        )
    )
    plan = TunePlan(bases=(), space=space, num_samples=2)
    assert log_scaled(plan) == ["batch_size", "optimizer.lr"]  # the space holds its options in order of path


def test_history_says_warm_up_only_where_a_run_had_no_steady_epoch_to_time(tmp_path, capsys, monkeypatch):
    """One-epoch trials that ended ok have no steady epoch time: the cell was empty, as for a case the run lacked."""
    monkeypatch.setenv("COLUMNS", "200")
    _write_run(tmp_path, "run-0", "2026-01-01")
    run_dir = _write_run(tmp_path, "run-1", "2026-01-02")
    rows = pd.read_parquet(run_dir / "results.parquet")
    first = rows[rows["epoch"] == 1].assign(test_acc=0.9)
    first.to_parquet(run_dir / "results.parquet")
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    trend = [line for line in capsys.readouterr().out.splitlines() if "scratch-mlp-digits" in line]
    assert trend and all(line.rstrip().endswith("warm-up only") for line in trend), trend


def test_history_says_not_timed_where_a_run_read_its_features_from_the_cache(tmp_path, capsys, monkeypatch):
    """deep_features reading its features from the cache records no time (compare says so): history's cell was
    empty, which it says means the run did not have the case; the report's plot marks it too."""
    monkeypatch.setenv("COLUMNS", "200")
    _write_run(tmp_path, "run-0", "2026-01-01")
    run_dir = _write_run(tmp_path, "run-1", "2026-01-02")
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows[["epoch_time_s", "samples_per_s"]] = float("nan")
    rows["details_json"] = json.dumps({"features_cached": True})
    rows.to_parquet(run_dir / "results.parquet")
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    trend = [line for line in capsys.readouterr().out.splitlines() if "scratch-mlp-digits" in line]
    assert trend and all(line.rstrip().endswith("not timed (features from the cache)") for line in trend), trend
    assert main(["history", "--results-dir", str(tmp_path), "--metric", "test_acc"]) == 0
    assert "not timed" not in capsys.readouterr().out  # the accuracy was measured
    from harness.report_html import _history_section, load  # the report's plot marks the cells

    _, (timed,) = _history_section([load(tmp_path / f"run-{index}") for index in range(2)], "epoch_time_s")
    labels = [c.get_label() for c in timed.figure.axes[0].collections]
    assert labels == ["_not timed"] * 4 and "nothing timed" in timed.figure.axes[0].get_title()  # 2 cases x 2 backends


def test_history_keeps_the_mark_of_a_run_from_uncommitted_code(tmp_path, capsys, monkeypatch):
    """run.json records 4895ba6623a7…+dirty; cut at 12 characters, history showed the clean commit."""
    monkeypatch.setenv("COLUMNS", "200")
    for index, commit in enumerate(("0123456789abcdef0123", "fedcba9876543210fedc+dirty")):
        run_dir = _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}")
        info = json.loads((run_dir / "run.json").read_text())
        (run_dir / "run.json").write_text(json.dumps({**info, "git_commit": commit}))
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fedcba987654+dirty" in out and "0123456789ab " in out and "0123456789ab+" not in out
    # thousands as whole numbers, not 5e+03 beside 987.6
    assert main(["history", "--results-dir", str(tmp_path), "--metric", "samples_per_s"]) == 0
    out = capsys.readouterr().out
    assert "5,000" in out and "e+0" not in out, out


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs xfbench[mlflow]")
def test_an_interrupted_run_exports_as_stopped_with_a_warning(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-i", "2026-01-01")
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(run_dir), "--mlflow", uri, "--experiment", "i"]) == 0
    err = capsys.readouterr().err
    assert "warning: run-i is interrupted, not finished: its trials stop where it did" in err
    # the command that finishes it, its results folder included (a tune's: `xfbench tune --resume`)
    assert f"`xfbench run --resume run-i --results-dir {tmp_path}`" in err, err
    client = MlflowClient(uri)
    (parent,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("i").experiment_id])
        if "mlflow.parentRunId" not in r.data.tags
    ]
    assert parent.data.tags["xfbench.run_status"] == "interrupted" and parent.info.status == "KILLED"


@needs_mlflow
def test_an_export_of_a_run_that_finished_since_with_the_same_rows_is_brought_up_to_date(tmp_path, capsys):
    """A run stopped after its last trial ended (or whose driver was killed before it finished) resumes with nothing
    to run: its rows stay the same, and an export made before then read as unchanged, its parent KILLED and
    "running" for good; --replace, which the warning advised, wrote nothing either."""
    from mlflow.tracking import MlflowClient

    run_dir = _write_run(tmp_path, "run-f", "2026-01-01")
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "running"}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = ["export", str(run_dir), "--mlflow", uri, "--experiment", "f"]
    assert main(export) == 0
    assert "Export it again once it finished" in capsys.readouterr().err
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("f").experiment_id

    def runs() -> tuple[Any, dict[str, str]]:  # the parent run, and each trial's MLflow run id
        found = client.search_runs([experiment_id])
        (parent,) = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
        return parent, {r.data.tags["xfbench.trial_id"]: r.info.run_id for r in found if r is not parent}

    before, trials = runs()
    assert (before.info.status, before.data.tags["xfbench.run_status"]) == ("KILLED", "running")
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "finished"}))  # resumed: nothing left to run
    assert main(export) == 0
    out, err = capsys.readouterr()
    assert "updated its parent run to the run's status, finished, and its files" in out and "warning" not in err
    after, same = runs()
    assert (after.info.status, after.data.tags["xfbench.run_status"]) == ("FINISHED", "finished")
    assert after.info.run_id == before.info.run_id and same == trials and after.info.end_time == before.info.end_time
    shipped = Path(client.download_artifacts(after.info.run_id, "run.json", str(tmp_path / "got")))
    assert json.loads(shipped.read_text())["status"] == "finished"  # the run's files as they are now
    assert main(export) == 0 and "nothing written" in capsys.readouterr().out
    client.delete_tag(after.info.run_id, "xfbench.run_status")  # as an export before the tag was written left it
    assert main(export) == 0 and "nothing written" in capsys.readouterr().out
    assert main([*export, "--replace"]) == 0  # --replace always replaces, an unchanged export too
    assert "replaced the earlier export" in capsys.readouterr().out
    replaced, again = runs()
    assert replaced.info.run_id != after.info.run_id and set(again) == set(trials)
    assert not set(again.values()) & set(trials.values()) and replaced.data.tags["xfbench.run_status"] == "finished"


def test_the_report_of_a_run_that_did_not_finish_says_so_under_its_title(tmp_path):
    """summary.md opened with "Interrupted: 2 of the 6 planned trials have rows"; report.html showed only `status
    interrupted` deep in the provenance, and its tables read like a finished run's."""
    from harness.plan import ExecutionOptions, RunFile, RunRecord, write_run_file
    from harness.planner import Selection, plan_run

    plan = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits"), {})
    pages = {}
    for status in ("interrupted", "running", "finished"):
        run_dir = tmp_path / "results" / f"run-{status}"
        run_dir.mkdir(parents=True)
        record = RunRecord(f"run-{status}", "2026-11-23T00:00:00Z", ("xfbench",), "", "", "", "", status=status)
        write_run_file(run_dir, RunFile(plan, ExecutionOptions(), record))
        frame = _frame(f"run-{status}", seeds=1)
        frame[frame["model"] == MODELS[0]].to_parquet(run_dir / "results.parquet")
        pages[status] = build_report([run_dir], tmp_path / f"{status}.html").path.read_text()
    began = f"2 of the {len(plan.trials)} planned trials have rows, and the tables below hold those only"
    resume = f"xfbench run --resume run-interrupted --results-dir {tmp_path / 'results'}"
    assert "<strong>Interrupted</strong>: " + began in pages["interrupted"] and resume in pages["interrupted"]
    assert "<strong>Not finished (still running, or its driver was killed)</strong>: " + began in pages["running"]
    assert "class='warning'" not in pages["finished"]


def test_the_report_of_a_run_whose_driver_still_runs_says_so_and_gives_no_resume_command(tmp_path):
    """The banner of a run still running told the user to --resume it, which refuses a run whose driver runs."""
    import sys

    from harness.plan import DriverProcess, ExecutionOptions, RunFile, RunRecord, write_run_file
    from harness.planner import Selection, plan_run
    from harness.provenance import host_name
    from harness.run_lock import process_start

    plan = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits"), {})
    run_dir = tmp_path / "results" / "run-live"
    run_dir.mkdir(parents=True)
    _frame("run-live", seeds=1).query(f"model == '{MODELS[0]}'").to_parquet(run_dir / "results.parquet")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as driver:
        try:
            alive = DriverProcess(host_name(), driver.pid, process_start(driver.pid))
            record = RunRecord("run-live", "2026-11-23T00:00:00Z", ("xfbench",), "", "", "", "", status="running")
            write_run_file(run_dir, RunFile(plan, ExecutionOptions(), replace(record, driver_process=alive)))
            page = build_report([run_dir], tmp_path / "live.html").path.read_text()
        finally:
            driver.kill()
    headline = f"<strong>Still running (driver pid {driver.pid} on host {html.escape(host_name())})</strong>: "
    assert headline + f"2 of the {len(plan.trials)} planned trials have rows so far" in page, page
    assert "Draw the report again when it ends" in page and "--resume" not in page
    ended = build_report([run_dir], tmp_path / "ended.html").path.read_text()  # the driver is gone: resume it
    assert "Not finished (still running, or its driver was killed)" in ended and "--resume run-live" in ended


@needs_matplotlib
def test_the_report_of_a_resumed_run_lists_each_sessions_commit_and_command_and_what_stopped_it(tmp_path):
    """report.html showed run.json's first git_commit and command only, the last session's scheduler and wall time
    as the run's, and never an interrupted run's error: a run resumed after a `git pull` read as one commit's."""
    from harness.plan import ExecutionOptions, ResumeRecord, RunFile, RunRecord, write_run_file
    from harness.planner import Selection, plan_run

    plan = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits"), {})
    run_dir = tmp_path / "results" / "run-r"
    run_dir.mkdir(parents=True)
    _frame("run-r", seeds=1).query(f"model == '{MODELS[0]}'").to_parquet(run_dir / "results.parquet")
    command = ("xfbench", "run", "--resume", "run-r", "--title", 'a<b & "c"')
    resume = ResumeRecord("2026-02-01T00:00:00Z", 1, ("t-1",), 3, command, {"t-1": "failed: boom <x>"})
    resume = replace(resume, git_commit="bbbbbbb222", execution_before=ExecutionOptions(cpus_per_trial=1))
    record = RunRecord("run-r", "2026-01-01T00:00:00Z", ("xfbench", "run"), "aaaaaaa111", "h", "c", "3.11")
    record = replace(record, status="interrupted", error="OSError: disk full", resumes=(resume,), wall_time_s=12.5)
    write_run_file(run_dir, RunFile(plan, ExecutionOptions(cpus_per_trial=2), record))
    page = build_report([run_dir], tmp_path / "r.html").path.read_text(encoding="utf-8")
    assert "<th>git commits (each session)</th><td>aaaaaaa111 (first session), bbbbbbb222 (resume 1)</td>" in page
    assert "<th>git_commit (first session)</th><td>aaaaaaa111</td>" in page
    assert "<th>wall_time_s (last session)</th><td>12.5</td>" in page and "<th>scheduler (last session)</th>" in page
    assert "<th>error</th><td>OSError: disk full</td>" in page
    assert "What stopped it: <code>OSError: disk full</code>" in page  # the banner under the title too
    resumed = (
        "<td>1</td><td>2026-02-01T00:00:00Z</td><td>bbbbbbb222</td><td>xfbench run --resume run-r --title "
        "&#x27;a&lt;b &amp; &quot;c&quot;&#x27;</td><td>1</td><td>t-1</td><td>3</td>"
        "<td>t-1: failed: boom &lt;x&gt;</td>"
        "<td>cpus_per_trial 1 -&gt; 2</td>"
    )
    assert resumed in page, page
    assert "<b " not in page and "<x>" not in page


def test_whole_files_are_written_in_utf8_whatever_the_locale(tmp_path):
    """write_text_whole wrote in the locale's encoding: under LC_ALL=C report.html (declared utf-8, holding +- and
    arrows) failed with UnicodeEncodeError, and in another 8-bit locale it was written in that encoding."""
    import sys

    script = "import sys; from pathlib import Path; from harness.whole_files import write_text_whole; "
    script += "write_text_whole(Path(sys.argv[1]), '\\u00b1\\u2212\\u2192')"
    env = {**os.environ, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "page.html")], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert (tmp_path / "page.html").read_bytes() == "\u00b1\u2212\u2192".encode()


def test_summary_md_is_written_in_utf8_whatever_the_locale(tmp_path):
    """summary.md was written in the locale's encoding: under LC_ALL=C its tables' non-ASCII signs failed the run as
    it ended."""
    import sys

    script = """
import contextlib, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import harness.runner as runner, harness.scheduler as scheduler
from harness.plan import RunPlan
from test_resume_mends import BASE, Workers, _settings
nodes = lambda: [{"address": "192.0.2.2", "cpus": 2, "gpus": 0}]
runner.ray_session = lambda *a, **k: contextlib.nullcontext()
runner.cluster_nodes = scheduler.cluster_nodes = nodes
root = Path(sys.argv[1])
runner.execute(RunPlan.of_trials([BASE]), results_dir=root, run_id="u", settings=_settings(root), schedule=Workers(),
               html_report=False)
"""
    env = {**os.environ, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C"}
    tests = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path), tests], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert "\u00b1" in (tmp_path / "u" / "summary.md").read_bytes().decode("utf-8")


def _svg_texts(svg: str) -> list[str]:
    return re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)


@needs_matplotlib
def test_an_inlined_plot_keeps_a_case_name_that_reads_like_an_id_or_a_reference(tmp_path):
    """The page prefixed every id="..." and url(#...) of an inlined SVG, its text too: a variant named
    `grid="wide" url(#x)` read `grid="fig0-wide" url(#fig0-x)` in the figures. Only the tags' attributes are."""
    variant = 'grid="wide" url(#x)'
    rows = [
        {**row, "variant": variant} for b in ("torch", "tensorflow") for row in _trial_rows("r", b, "mlp", 0, 0.2, 0)
    ]
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    to_frame(rows).to_parquet(run_dir / "results.parquet")
    report = build_report([run_dir], run_dir / "report.html")
    page = report.path.read_text(encoding="utf-8")
    inlined = re.findall(r"<svg\b.*?</svg>", page, re.S)
    assert len(inlined) == len(report.plots)
    for name, svg in zip(report.plots, inlined, strict=True):  # each figure's text as its SVG file holds it
        assert _svg_texts(svg) == _svg_texts((report.plot_dir / f"{name}.svg").read_text(encoding="utf-8")), name
    assert any(f"mlp+{variant}-digits" in text for text in _svg_texts(page))
    ids = set(re.findall(r'<[^>]*\sid="([^"]+)"', page))
    references = set(re.findall(r'<[^>]*(?:url\(#|href="#)([^)"]+)', page))
    assert references and references <= ids and all(i.startswith(("fig", "plot-")) for i in ids)


@needs_matplotlib
def test_user_names_are_escaped_everywhere_on_the_page(tmp_path):
    """A suite, a variant and a --title that hold markup are text on the page: in the tables, the provenance, the
    figure captions and the inlined SVG's text, never a tag."""
    import shlex

    evil = '<img src=x onerror=alert(1)>"&'
    rows = [{**row, "suite": evil} for b in ("torch", "tensorflow") for row in _trial_rows("r", b, "mlp", 0, 0.2, 0)]
    rows += [
        {**row, "suite": "s2", "variant": evil, "trial_id": row["trial_id"] + "-v"}
        for b in ("torch", "tensorflow")
        for row in _trial_rows("r", b, "mlp", 0, 0.2, 1)
    ]
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    to_frame(rows).to_parquet(run_dir / "results.parquet")
    command = ["xfbench", "run", "--title", evil]
    info = {"run_id": "r", "started": "2026-01-01", "status": "finished", "command": command, "title": evil}
    (run_dir / "run.json").write_text(json.dumps(info))
    page = build_report([run_dir], run_dir / "report.html").path.read_text(encoding="utf-8")
    escaped = html.escape(evil)
    assert "<img" not in page and "onerror=alert(1)>" not in page
    assert f"<td>{escaped}:scratch-mlp-digits</td>" in page and f"<td>s2:scratch-mlp+{escaped}-digits</td>" in page
    assert f"<th>title</th><td>{escaped}</td>" in page
    assert f"<th>command</th><td>{html.escape(shlex.join(command))}</td>" in page
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert any(f"{escaped}:scratch-mlp-digits" in c for c in captions)
    assert any(f"s2:scratch-mlp+{escaped}-digits" in c for c in captions)
    in_svg = evil.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # matplotlib leaves quotes be
    texts = _svg_texts(page)
    assert any(f"{in_svg}:scratch-mlp-digits" in t for t in texts) and any(f"mlp+{in_svg}-digits" in t for t in texts)


def test_history_of_a_case_lists_a_tune_that_ended_in_its_search(tmp_path, capsys, monkeypatch):
    """A tune stopped during its search has only search rows, none trended: `history --case` crashed on it (an
    AttributeError from the empty label column) instead of listing the run without a value."""
    monkeypatch.setenv("COLUMNS", "200")
    _write_run(tmp_path, "run-0", "2026-01-01")
    run_dir = _write_run(tmp_path, "run-1", "2026-01-02")
    rows = pd.read_parquet(run_dir / "results.parquet")
    rows.assign(stage="search", variant=".search000", trial_id=rows["trial_id"] + ".search000").to_parquet(
        run_dir / "results.parquet"
    )
    assert main(["history", "--results-dir", str(tmp_path), "--case", "mlp"]) == 0
    out = capsys.readouterr().out
    assert "run-1" in out and "scratch-mlp-digits" in out


@needs_matplotlib
def test_runs_of_one_id_from_two_results_folders_keep_a_history_column_each(tmp_path):
    """`--run-id nightly` in two results folders: the history keyed its columns by run id, so the plot drew one
    column and dropped the older run, which the runs table still listed. Each run's label tells them apart, the
    same in the runs table, the changes and the plot."""
    from harness.report_html import _history_section, load

    older = _write_run(tmp_path / "ci-a", "nightly", "2026-01-01")
    newer = _write_run(tmp_path / "ci-b", "nightly", "2026-01-02", torch_slowdown=1.6, noise=1)
    text, (plot,) = _history_section([load(older), load(newer)], "epoch_time_s")
    axes = plot.figure.axes[0]
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["nightly (ci-a)", "nightly (ci-b)"]
    assert all(len(line.get_xdata()) == 2 for line in axes.get_lines())  # both runs' points on every line
    assert len(axes.collections) == len(MODELS)  # the slowed torch cases circled, at the newer run
    assert "<tr><td>nightly (ci-a)</td>" in text and "<tr><td>nightly (ci-b)</td><td>2026-01-02</td>" in text
    assert f"t:scratch-{MODELS[0]}-digits [torch] (time)" in text.split("<td>nightly (ci-b)</td>")[1]
    # the same folder name in two places: when each started; started alike too: the whole path
    from harness.report_html import history_labels

    same = [load(_write_run(tmp_path / place / "ci", "nightly", "2026-01-0" + place)) for place in "12"]
    assert sorted(history_labels(same).values()) == ["nightly (ci, 2026-01-01)", "nightly (ci, 2026-01-02)"]
    alike = [load(_write_run(tmp_path / place / "ci", "n2", "2026-01-01")) for place in "12"]
    assert sorted(history_labels(alike).values()) == [f"n2 (ci, 2026-01-01, {r.path})" for r in alike]
    assert history_labels([load(older), *alike[:1]])[older] == "nightly"  # an id of its own keeps it alone


def test_report_without_matplotlib_says_how_to_install_it_and_a_runs_report_stays_a_warning(
    tmp_path, monkeypatch, capsys
):
    """`xfbench report` without matplotlib ended in a traceback (an ImportError the CLI does not catch, exit 1)."""
    import sys

    run_dir = _write_run(tmp_path, "run-m", "2026-01-01")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    capsys.readouterr()
    assert main(["report", str(run_dir), "-o", str(tmp_path / "m.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xfbench: error: Expected matplotlib for the report's plots. Received: it cannot be imported")
    assert "pip install 'xfbench[report]'" in err and len(err.strip().splitlines()) == 1
    problem = write_report(run_dir)  # a run's own report.html: a warning, its results kept
    assert problem is not None and problem.startswith("no report.html (InputError: Expected matplotlib")
    assert f"warning: {problem}" in capsys.readouterr().err


def _tune_rows(run_id: str) -> pd.DataFrame:
    """A tune's rows: two search samples (one seed, configurations unrelated across backends) and the final stage
    (each backend's pick re-run over the seeds), as `xfbench tune` names them."""
    rows = _frame(run_id)
    samples = [
        rows[rows["seed"] == 0].assign(
            stage="search", variant=f"search00{k}", trial_id=rows["trial_id"] + f"+search00{k}", test_acc=0.1 * k
        )
        for k in range(2)
    ]
    return pd.concat([*samples, rows.assign(stage="final", variant="tuned", trial_id=rows["trial_id"] + "+tuned")])


@needs_matplotlib
def test_a_tune_run_without_run_json_reports_its_final_stage_not_its_search_samples_as_cases(tmp_path):
    """Without run.json (copied rows, a driver that died first) a tune's search samples were summarised as cases,
    pairing torch's sample N with TensorFlow's sample N; the tables hold the final stage, as summary.md's do."""
    run_dir = tmp_path / "tune-x"
    run_dir.mkdir()
    _tune_rows("tune-x").to_parquet(run_dir / "results.parquet")
    page = build_report([run_dir], tmp_path / "t.html").path.read_text()
    assert "search00" not in page and "scratch-mlp+tuned-digits" in page
    assert f"{SEEDS}/{SEEDS}" in page  # the final stage's seeds, not a sample's one


@needs_matplotlib
def test_a_run_text_holding_page_size_keeps_it_and_the_page_size_note_is_filled(tmp_path):
    """The page-size placeholder was replaced everywhere, in a run's command (or error) holding the word too."""
    run_dir = _write_run(tmp_path, "run-p", "2026-01-01")
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps(info | {"command": ["xfbench", "run", "--title", "PAGE_SIZE"]}))
    page = build_report([run_dir], tmp_path / "p.html").path.read_text()
    assert "<td>xfbench run --title PAGE_SIZE</td>" in page
    assert re.search(r"page size: [\d,]+ KiB, self-contained", page) and page.count("PAGE_SIZE") == 1


@needs_matplotlib
def test_the_provenance_command_can_be_pasted_back_into_a_shell(tmp_path):
    """The command row joined the arguments with spaces: `--title my run` read back as two arguments, and `<`, `&`
    or quotes as shell syntax."""
    import html as html_module
    import shlex

    command = ["xfbench", "run", "--title", "my run", "--data-dir", "a&b<c>", "--note", 'it\'s "x" $HOME']
    run_dir = _write_run(tmp_path, "run-c", "2026-01-01")
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps(info | {"command": command}))
    page = build_report([run_dir], tmp_path / "c.html").path.read_text()
    (cell,) = re.findall(r"<tr><th>command</th><td>([^<]*)</td></tr>", page)
    assert shlex.split(html_module.unescape(cell)) == command


def _search_rows(models: tuple[str, ...]) -> pd.DataFrame:
    """A grid search's rows over ``models`` (a suite's cases): per case and backend two samples of the learning
    rate, two epochs each, as a tune's search stage records them."""
    from harness.config import OptimizerConfig

    rows = []
    for model in models:
        for backend in ("torch", "tensorflow"):
            for sample, lr in enumerate((0.001, 0.1)):
                config = TrialConfig(
                    "scratch",
                    model,
                    "digits",
                    backend,
                    seed=0,
                    epochs=2,
                    sample=sample,
                    optimizer=OptimizerConfig(lr=lr),
                )
                for epoch in (1, 2):
                    rows.append(
                        {
                            "run_id": "tune-s",
                            "trial_id": config.trial_id,
                            "stage": "search",
                            "suite": "adhoc",
                            "strategy": "scratch",
                            "model": model,
                            "dataset": "digits",
                            "variant": f"search{sample:03d}",
                            "backend": backend,
                            "seed": 0,
                            "phase": "train",
                            "epoch": epoch,
                            "val_acc": 0.5 + 0.1 * epoch + (0.2 if model == models[0] else 0.0),
                            "status": "ok",
                            "config_json": config.to_json(),
                        }
                    )
    return to_frame(rows)


@needs_matplotlib
def test_a_tune_of_several_cases_draws_each_cases_search_on_its_own_plot():
    """A tune of a suite searches each of its cases: the one search plot drew every case's samples and curves as
    one search's, eight points and curves where each case had four."""
    import matplotlib.pyplot as plt

    from harness.report_html import LoadedRunDir, _search_plots
    from harness.search import Choice, SearchSpace
    from harness.tuning import TunePlan

    plan = TunePlan(bases=(), space=SearchSpace((("optimizer.lr", Choice((0.001, 0.1))),)), num_samples=1)
    several = list(_search_plots(LoadedRunDir(Path("tune-s"), _search_rows(MODELS), {}), plan))
    one = list(_search_plots(LoadedRunDir(Path("tune-s"), _search_rows(MODELS[:1]), {}), plan))
    drawn = {}
    for plot in several + one:
        points, curves = plot.figure.axes
        drawn[plot.name] = (sum(len(c.get_offsets()) for c in points.collections), len(curves.get_lines()), plot.title)
        plt.close(plot.figure)
    assert {name: (n, lines) for name, (n, lines, _) in drawn.items()} == {
        f"search-scratch-{MODELS[0]}-digits": (4, 4),
        f"search-scratch-{MODELS[1]}-digits": (4, 4),
        "search": (4, 4),  # one case: the name a one-case tune's plot always had
    }
    assert all(
        title.endswith(name.removeprefix("search-")) for name, (_, _, title) in drawn.items() if name != "search"
    )


@needs_matplotlib
def test_log_axes_label_their_decades_as_numbers_not_as_mathtext_source():
    """text.parse_math is off (a `$` in a case name is text), so matplotlib's log tick labels, written as mathtext,
    showed as `$\\mathdefault{10^{-2}}$` on the search plot's learning rate and the history's epoch time."""
    import matplotlib.pyplot as plt

    from harness.plots import HistoryMarks, history, search_points

    table = pd.DataFrame(
        {
            "backend": ["torch"] * 3,
            "optimizer.lr": [1e-4, 1e-3, 1e-2],
            "stopped_early": [False] * 3,
            "val_acc": [0.8] * 3,
        }
    )
    torch_rows = _frame(seeds=1).query("backend == 'torch'").assign(stage="search")
    (searched,) = search_points(torch_rows, table, ["optimizer.lr"], "val_acc", ["optimizer.lr"])
    series = pd.DataFrame(
        {"r1": [0.01, 2.6], "r2": [0.011, 2.5]},
        index=pd.MultiIndex.from_tuples([("a:fast", "torch"), ("a:slow", "torch")]),
    )
    (trend,) = history(series, HistoryMarks(), "epoch_time_s", "time")
    labels = []
    for plot, axis in ((searched, searched.figure.axes[0].xaxis), (trend, trend.figure.axes[0].yaxis)):
        plot.figure.canvas.draw()
        labels.append([t.get_text() for t in axis.get_ticklabels() if t.get_text()])
        svg = io.StringIO()
        plot.figure.savefig(svg, format="svg")
        assert "mathdefault" not in svg.getvalue()
        plt.close(plot.figure)
    assert {"0.0001", "0.001", "0.01"} <= set(labels[0]) and {"0.01", "0.1", "1"} <= set(labels[1]), labels


@needs_matplotlib
def test_two_backends_that_agree_draw_distinguishable_lines_and_medians_in_neither_colour():
    """Learning curves and accuracy against time drew both backends as solid lines of one marker: where they
    agree (digits at equal seeds), the one drawn last hid the other. The box plots' medians were matplotlib's
    orange, the colour of a backend's points."""
    import matplotlib.pyplot as plt

    from harness.plots import COLOURS, accuracy_vs_time, epoch_times, learning_curves

    frame = _frame(seeds=1)
    agreeing = frame.assign(val_acc=frame.groupby(["model", "epoch"])["val_acc"].transform("first"))
    curves = next(iter(learning_curves(agreeing)))
    (against_time,) = accuracy_vs_time(agreeing)
    (times,) = epoch_times(agreeing)
    for plot in (curves, against_time):
        lines = plot.figure.axes[0].get_lines()
        assert len({line.get_color() for line in lines}) == 2
        assert len({(line.get_marker(), line.get_linestyle(), line.get_markersize()) for line in lines}) == 2
    medians = [line for line in times.figure.axes[0].get_lines() if line.get_color() in COLOURS]
    assert not medians
    for plot in (curves, against_time, times):
        plt.close(plot.figure)


@needs_matplotlib
def test_a_backend_keeps_its_colour_and_line_whichever_backends_a_plot_holds():
    """Colours went by rank among a plot's backends: torch was orange beside TensorFlow and blue in a torch-only
    report of the same rows, and a page whose plots held different backends (one without steady epochs) gave one
    backend two colours. The ratio plot's unmarked points wore the first backend's blue."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from harness.plots import COLOURS, accuracy_vs_time, epoch_times, learning_curves

    frame = _frame(seeds=1)
    palette = {"torch": COLOURS[0], "tensorflow": COLOURS[1]}  # the registry's order
    for backends in (["torch", "tensorflow"], ["torch"], ["tensorflow"]):
        rows = frame[frame["backend"].isin(backends)]
        expected = {palette[b] for b in backends}
        curves = next(iter(learning_curves(rows)))
        (against_time,) = accuracy_vs_time(rows)
        (times,) = epoch_times(rows)
        for plot in (curves, against_time):
            lines = plot.figure.axes[0].get_lines()
            assert {to_hex(line.get_color()) for line in lines} == expected, backends
            styles = {(line.get_marker(), line.get_linestyle()) for line in lines}  # torch's o and -, TensorFlow's s --
            assert styles == {{"torch": ("o", "-"), "tensorflow": ("s", "--")}[b] for b in backends}, styles
            legends = [ax.get_legend() for ax in plot.figure.axes if ax.get_legend()] + list(plot.figure.legends)
            keys = {
                (t.get_text().removesuffix(" (1 ok)"), to_hex(h.get_color()))  # the curves' legend counts trials
                for leg in legends
                for t, h in zip(leg.get_texts(), leg.legend_handles, strict=True)
            }
            assert keys == {(b, palette[b]) for b in backends}, keys
        points = {to_hex(c.get_facecolors()[0]) for c in times.figure.axes[0].collections}
        assert points == expected, (backends, points)
        for plot in (curves, against_time, times):
            plt.close(plot.figure)


@needs_matplotlib
def test_the_epoch_time_plot_draws_the_phase_the_tables_time_and_names_it():
    """A transfer case's frozen and unfrozen epochs were pooled in one box: its median lay between the two
    workloads (0.0097 s against the table's 0.012 s in a review's run), a figure no table showed."""
    import matplotlib.pyplot as plt

    from harness.plots import epoch_times
    from harness.summary import summarize

    frame = _frame(seeds=1)
    frame["phase"] = np.where(frame["epoch"] <= 2, "frozen", "unfrozen")
    frame["warmup"] = frame["epoch"].isin([1, 3])
    frame["epoch_time_s"] = np.where(frame["phase"] == "frozen", 0.1, 0.3)
    (times,) = epoch_times(frame)
    ax = times.figure.axes[0]
    points = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections])
    assert np.allclose(points, 0.3), points  # the unfrozen phase's steady epochs, which the tables time
    assert all(t.get_text().endswith("(unfrozen)") for t in ax.get_yticklabels())
    assert set(summarize(frame).per_backend["timed_phase"]) == {"unfrozen"}
    plt.close(times.figure)


def _top_down(ax: Any) -> list[str]:
    """A horizontal plot's row labels as they read on the page, top first."""
    labels = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    ticks = [(ax.transData.transform((0, y))[1], label.get_text()) for y, label in labels]
    return [text for _, text in sorted(ticks, reverse=True)]


@needs_matplotlib
def test_plots_name_a_backend_none_of_whose_trials_ended_ok_and_a_case_left_without_a_ratio():
    """Both TensorFlow trials of mlp failed: the table said "0/2, 2 failed", while the learning curves drew torch
    alone ("torch (2 ok)"), the epoch-time plot had no row for it, the accuracy panel drew torch without a word, and
    the ratio plot left the case out: each read as a torch-only case."""
    import matplotlib.pyplot as plt

    from harness.plots import accuracy_vs_time, epoch_times, learning_curves, time_ratios

    frame = _frame(seeds=2)
    failed = (frame["backend"] == "tensorflow") & (frame["model"] == "mlp") & (frame["epoch"] == EPOCHS)
    frame.loc[failed, "status"] = "failed"
    curves = {plot.name: plot.figure for plot in learning_curves(frame)}
    mlp = curves["curves-scratch-mlp-digits"].axes[0]
    assert [t.get_text() for t in mlp.get_legend().get_texts()] == ["torch (2 ok)", "tensorflow (0 of 2 ok)"]
    assert [line.get_label() for line in mlp.get_lines()] == ["torch (2 ok)"]  # named, not drawn
    (times,) = epoch_times(frame)
    assert "scratch-mlp-digits · tensorflow: 0 of 2 ok, none timed" in _top_down(times.figure.axes[0])
    (against_time,) = accuracy_vs_time(frame)
    said = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in against_time.figure.axes if ax.get_title()}
    assert said == {"scratch-convnet3-digits": [], "scratch-mlp-digits": ["tensorflow: 0 of 2 ok"]}
    stats = case_statistics(frame, reference="torch")
    (ratios,) = time_ratios(stats)
    ax = ratios.figure.axes[0]
    assert _top_down(ax) == [f"scratch-{m}-digits · torch / tensorflow" for m in ("convnet3", "mlp")]
    assert [t.get_text() for t in ax.texts] == ["no ratio: no tensorflow trial ended ok"]
    assert len(ax.containers) == 1  # the convnet3 ratio alone is drawn
    assert stats.set_index("model")["time_missing"].to_dict() == {"convnet3": "", "mlp": "no tensorflow trial ended ok"}
    # the plot reads the reason from its own column, not back out of the note's wording
    (reworded,) = time_ratios(stats.assign(note="notes are for people"))
    assert [t.get_text() for t in reworded.figure.axes[0].texts] == ["no ratio: no tensorflow trial ended ok"]
    # a case none of whose trials ended ok keeps its learning curves, which say so
    frame.loc[(frame["model"] == "mlp") & (frame["epoch"] == EPOCHS), "status"] = "diverged"
    curves |= {f"all-{plot.name}": plot.figure for plot in learning_curves(frame)}
    lost = curves["all-curves-scratch-mlp-digits"].axes
    assert [[t.get_text() for t in ax.texts] for ax in lost] == [["no trial ended ok"], ["no trial ended ok"]]
    assert [t.get_text() for t in lost[0].get_legend().get_texts()] == ["tensorflow (0 of 2 ok)", "torch (0 of 2 ok)"]
    for figure in [*curves.values(), times.figure, against_time.figure, ratios.figure]:
        plt.close(figure)


@needs_matplotlib
def test_the_epoch_time_plot_leaves_out_warm_up_epochs_and_trials_that_did_not_end_ok():
    """Every steady epoch of the trials that ended ok, one point each, and nothing else: the warm-up epochs (3x the
    others in these rows) and the ok epochs of a trial that failed at its last are left out, as the tables leave
    them out. Its rows read top-down in the tables' order."""
    import matplotlib.pyplot as plt

    from harness.plots import epoch_times

    frame = _frame(seeds=2)
    lost = (frame["backend"] == "torch") & (frame["model"] == "mlp") & (frame["seed"] == 1)
    frame.loc[lost & (frame["epoch"] == EPOCHS), "status"] = "failed"
    (times,) = epoch_times(frame)
    ax = times.figure.axes[0]
    table = summarize(frame).per_backend
    shown = [f"scratch-{m}-digits · {b}" for m, b in zip(table["model"], table["backend"], strict=True)]
    assert _top_down(ax) == shown  # convnet3 first, as in the tables (it was drawn at the bottom)
    points = [collection.get_offsets()[:, 0] for collection in ax.collections]  # one scatter a row, in row order
    steady_epochs = EPOCHS - 1
    assert [len(p) for p in points] == [2 * steady_epochs] * 3 + [steady_epochs]  # mlp · torch: its ok trial alone
    assert max(np.concatenate(points)) < 0.3  # steady epochs take 0.2 s, warm-up ones 0.6 s
    plt.close(times.figure)


@needs_matplotlib
def test_the_time_ratio_plot_draws_each_ratio_and_interval_in_the_direction_its_label_names():
    """torch 1.5x slower than TensorFlow: a ratio torch / tensorflow of 1.5, drawn at 1.5 with its interval."""
    import matplotlib.pyplot as plt

    from harness.plots import time_ratios

    stats = case_statistics(_frame(torch_slowdown=1.5), reference="torch")
    (plot,) = time_ratios(stats)
    ax = plot.figure.axes[0]
    assert _top_down(ax) == [f"scratch-{m}-digits · torch / tensorflow" for m in ("convnet3", "mlp")]
    drawn = [container.lines[0].get_xdata()[0] for container in ax.containers]  # top-down, as the labels
    assert drawn == pytest.approx(stats["time_ratio"].tolist()) and min(drawn) > 1.3
    bars = np.array([container.lines[2][0].get_segments()[0][:, 0] for container in ax.containers])
    assert bars.ravel() == pytest.approx(stats[["time_ci_low", "time_ci_high"]].to_numpy(float).ravel())
    plt.close(plot.figure)


@needs_matplotlib
def test_the_learning_curves_band_is_one_sample_std_either_side_of_the_mean():
    """The band over the seeds is ±1 sample standard deviation (n − 1), as docs/results-schema.md says."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from harness.plots import COLOURS, learning_curves

    frame = _frame(seeds=3)
    figure = {plot.name: plot.figure for plot in learning_curves(frame)}[f"curves-scratch-{MODELS[0]}-digits"]
    for backend, colour in (("torch", COLOURS[0]), ("tensorflow", COLOURS[1])):
        rows = frame[(frame["backend"] == backend) & (frame["model"] == MODELS[0])]
        for ax, metric in zip(figure.axes, ("val_acc", "val_loss"), strict=True):
            stats = rows.groupby("epoch")[metric].agg(["mean", "std"])  # pandas' std: n − 1
            (band,) = [c for c in ax.collections if to_hex(c.get_facecolor()[0]) == colour]
            vertices = band.get_paths()[0].vertices
            at = [vertices[vertices[:, 0] == epoch, 1] for epoch in stats.index]
            assert [y.min() for y in at] == pytest.approx((stats["mean"] - stats["std"]).tolist(), rel=1e-9)
            assert [y.max() for y in at] == pytest.approx((stats["mean"] + stats["std"]).tolist(), rel=1e-9)
            assert metric == "val_loss" or (stats["std"] > 0).all()  # a band to see (these losses agree over seeds)
    plt.close(figure)


@needs_matplotlib
def test_cases_whose_names_make_one_file_name_get_a_plot_file_each(tmp_path):
    """Two models named a/b.json and a_b.json make one safe file name: the second case's learning curves
    overwrote the first's file, which the page also showed twice under one figure id."""
    run_dir = _write_run(tmp_path, "run-a", "2026-01-01")
    frame = pd.read_parquet(run_dir / "results.parquet")
    names = {MODELS[0]: "/p/a<b.json", MODELS[1]: "/q/a_b.json"}
    frame["trial_id"] = frame["trial_id"] + "-" + frame["model"]
    frame["model"] = frame["model"].map(names)
    frame.to_parquet(run_dir / "results.parquet")
    report = build_report([run_dir], tmp_path / "r.html")
    curves = [name for name in report.plots if name.startswith("curves-")]
    assert len(curves) == 2 and len(set(curves)) == 2, report.plots
    assert all((report.plot_dir / f"{name}.svg").is_file() for name in curves)
    page = report.path.read_text()
    assert len(re.findall(r'<figure id="plot-curves-', page)) == 2


@needs_matplotlib
def test_a_notes_code_spans_are_code_in_the_page_not_backticks(tmp_path):
    """The tables' notes are written for summary.md's markdown: the page showed their `--max-concurrent` and
    `xfbench run --help` with the backticks."""
    _write_run(tmp_path, "run-a", "2026-01-01")
    _write_run(tmp_path, "run-b", "2026-01-02")
    page = build_report([tmp_path], tmp_path / "r.html").path.read_text()
    prose = re.sub(r"<svg.*?</svg>", "", page, flags=re.S)
    assert "`" not in prose and "<code>" in prose


def test_the_reports_history_notes_a_case_run_on_other_threads_or_another_framework_version(tmp_path):
    """A 1-thread run then a 2-thread one: the history's table of changes called torch's halved epoch time an
    improvement with no word of the threads, which compare warns of run-wide."""
    for index in range(2):
        run_dir = _write_run(tmp_path, f"run-{index}", f"2026-01-0{index + 1}", torch_slowdown=1.0 - 0.5 * index)
        rows = pd.read_parquet(run_dir / "results.parquet").assign(threads=index + 1)
        if index:
            rows.loc[rows["backend"] == "torch", "framework_version"] = "1.1"
        rows.to_parquet(run_dir / "results.parquet")
    out = tmp_path / "history.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.count("different thread counts: previous 1, new 2") == 2 * len(MODELS)  # each case, both backends
    assert page.count("different torch versions: previous 1.0, new 1.1") == len(MODELS)


def test_the_database_check_leaves_sockets_dsns_and_named_instances_to_the_driver():
    """A review's cases, each refused as a refused TCP connection though MLflow would open it: MySQL on a Unix
    socket (unix_socket=, or localhost), PostgreSQL's host=/path, an ODBC DSN, an SQL Server named instance."""
    import urllib.parse

    from harness.mlflow_uri import _certainly_tcp

    def tcp(uri: str) -> bool:
        parts = urllib.parse.urlsplit(uri)
        return _certainly_tcp(parts, parts.scheme.partition("+")[0])

    for uri in (
        "mysql+mysqldb://u@db/mlflow?unix_socket=/run/mysqld/mysqld.sock",
        "mysql://u@localhost/mlflow",
        "postgresql://u@h/mlflow?host=/var/run/postgresql",
        "mssql+pyodbc://scott:tiger@my_dsn",
        "mssql+pyodbc://u@dbhost\\SQLEXPRESS/mlflow",
        "mssql+pyodbc://u@dbhost:1433/mlflow?odbc_connect=DRIVER%3D...",
    ):
        assert not tcp(uri), uri
    for uri in ("postgresql://u@h/mlflow", "mysql+pymysql://u@10.0.0.1/mlflow", "mssql+pyodbc://u@dbhost:1433/db"):
        assert tcp(uri), uri


def test_a_tracking_server_that_wants_credentials_is_told_which_variables_carry_them():
    """A server answering 401 to the store's calls was told to "give e.g. sqlite:///mlflow.db or the http:// address
    of a tracking server", where its address was right and only the credentials were missing."""
    from harness.mlflow_uri import unusable_uri

    for code in (401, 403):
        said = str(unusable_uri("http://10.0.0.5:5000", Exception(f"API request failed with error code {code} != 200")))
        assert said.endswith(
            "To fix, give the server's credentials in the environment: MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN."
        ), said
    other = str(unusable_uri("http://10.0.0.5:5000", Exception("API request failed with error code 500 != 200")))
    assert "MLFLOW_TRACKING_USERNAME" not in other
