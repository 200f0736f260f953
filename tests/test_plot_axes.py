"""The report's plots: the scale of their axes, their titles, and the encoding of the files they are saved as.

Fake result rows stand in for trials; matplotlib (the report extra) draws off screen.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.results import to_frame
from harness.statistics import case_statistics

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


def _rows(backend: str, model: str, steady_s: tuple[float, ...], seeds: int = 2) -> list[dict]:
    """One trial per seed: a warm-up epoch (3x the first steady one), then an epoch per ``steady_s``."""
    rows = []
    for seed in range(seeds):
        for epoch, seconds in enumerate((3 * steady_s[0], *steady_s), start=1):
            last = epoch == len(steady_s) + 1
            rows.append(
                {
                    "run_id": "r",
                    "trial_id": f"{model}-{backend}-{seed}",
                    "suite": "s",
                    "strategy": "scratch",
                    "model": model,
                    "dataset": "digits",
                    "backend": backend,
                    "seed": seed,
                    "phase": "train",
                    "epoch": epoch,
                    "val_acc": 0.9,
                    "test_acc": 0.9 if last else math.nan,
                    "epoch_time_s": seconds * (1 + 0.01 * seed),
                    "samples_per_s": 1000 / seconds,
                    "warmup": epoch == 1,
                    "status": "ok",
                    "config_json": "{}",
                }
            )
    return rows


def _pixels(ax: Any, xs: Any) -> np.ndarray:
    """Where data x values lie across the figure, in pixels."""
    return ax.transData.transform([(x, 0) for x in xs])[:, 0]


# mlp's epochs about 5 ms, cnn_small's about 120 ms: the quick suite's spread
QUICK = {"mlp": (0.0045, 0.005, 0.0055), "cnn_small": (0.11, 0.12, 0.13)}


def test_epoch_times_far_apart_are_drawn_on_a_log_axis_where_each_case_spreads():
    """On a linear axis mlp's 5 ms epochs beside cnn_small's 120 ms drew boxes about a pixel wide against 0."""
    from harness.plots import epoch_times, house_style

    rows = [r for model, times in QUICK.items() for b in ("torch", "tensorflow") for r in _rows(b, model, times)]
    with house_style():
        (plot,) = epoch_times(to_frame(rows))
        ax = plot.figure.axes[0]
        plot.figure.canvas.draw()
        assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
        spreads = [np.ptp(_pixels(ax, points.get_offsets()[:, 0])) for points in ax.collections]
        assert len(spreads) == 4 and min(spreads) > 15, spreads  # each row's points (±10 %) over many pixels
        labels = [t.get_text() for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels() if t.get_text()]
        assert "$" not in "".join(labels) and {"0.01", "0.1"} <= set(labels), labels  # plain numbers
        plot.figure.clf()


def test_epoch_times_close_together_keep_a_linear_axis():
    from harness.plots import epoch_times, house_style

    rows = [r for b in ("torch", "tensorflow") for r in _rows(b, "mlp", QUICK["cnn_small"])]
    with house_style():
        (plot,) = epoch_times(to_frame(rows))
        assert plot.figure.axes[0].get_xscale() == "linear"
        assert plot.figure.axes[0].get_xlabel() == "steady epoch time (s)"
        plot.figure.clf()


@pytest.mark.parametrize("slowdown", [1.5, 0.4, 8.0])
def test_the_time_ratio_plot_is_log_with_one_halfway_between_a_half_and_two(slowdown):
    """A ratio of 2 and one of 0.5 (either backend twice as fast) are equally far from 1: on the linear axis 2 lay
    twice as far from 1 as 0.5 did. The axis is centred on 1 and reaches past every ratio and interval."""
    from harness.plots import house_style, time_ratios

    times = {"torch": tuple(0.2 * slowdown * f for f in (0.9, 1.0, 1.1)), "tensorflow": (0.18, 0.2, 0.22)}
    rows = [r for backend, steady in times.items() for r in _rows(backend, "mlp", steady, seeds=3)]
    statistics = case_statistics(to_frame(rows), reference="torch")
    with house_style():
        (plot,) = time_ratios(statistics)
        ax = plot.figure.axes[0]
        plot.figure.canvas.draw()
        assert ax.get_xscale() == "log"
        half, one, two = _pixels(ax, (0.5, 1.0, 2.0))
        assert one - half == pytest.approx(two - one) and two - one > 50
        low, high = ax.get_xlim()
        assert low * high == pytest.approx(1.0)  # 1 in the middle of the axis
        drawn = statistics[["time_ratio", "time_ci_low", "time_ci_high"]].to_numpy(float).ravel()
        assert low < drawn.min() and drawn.max() < high and drawn[0] == pytest.approx(slowdown, rel=0.1)
        labels = {t.get_text() for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels()}
        assert {"0.5", "1", "2"} <= labels, labels
        plot.figure.clf()


@pytest.mark.parametrize(("metric", "kind"), [("epoch_time_s", "time"), ("test_acc", "accuracy")])
def test_the_history_plot_title_says_what_one_value_is(metric, kind):
    """ "History: epoch_time_s over runs per case" did not say median or mean, of which epochs; the terminal's trend
    title does (reporting.HISTORY_VALUES)."""
    from harness.plots import HistoryMarks, history, house_style
    from harness.reporting import HISTORY_VALUES

    index = pd.MultiIndex.from_tuples([("scratch-mlp-digits", "torch"), ("scratch-cnn-digits", "torch")])
    series = pd.DataFrame({"run-1": [0.5, 0.9], "run-2": [0.6, 0.8]}, index=index)
    with house_style():
        (plot,) = history(series, HistoryMarks(), metric, kind)
        assert HISTORY_VALUES[metric] in plot.title and plot.title.startswith(f"History: {metric}")
        plot.figure.clf()


def test_a_plot_is_saved_as_utf_8_whatever_the_locale(tmp_path):
    """The SVG was written in the locale's encoding while its prolog and the page declare utf-8: under LC_ALL=C
    (ASCII) a title holding ±, − or → could not be written and the report failed."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from harness.plots import Plot, _pyplot, house_style, save\n"
        "with house_style():\n"
        "    figure = _pyplot().figure()\n"
        "    figure.suptitle('\\u00b1\\u2212\\u2192')\n"
        "    save(Plot('signs', 'signs', figure), Path(sys.argv[1]))\n"
    )
    env = os.environ | {"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    encoding = subprocess.run(
        [sys.executable, "-c", "import locale; print(locale.getpreferredencoding(False))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert encoding.lower() in ("ascii", "ansi_x3.4-1968"), encoding  # the locale this test is about
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    svg = (tmp_path / "signs.svg").read_bytes().decode("utf-8")
    assert "\u00b1\u2212\u2192" in svg and 'encoding="utf-8"' in svg[:100]
