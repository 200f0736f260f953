"""The report's pictures, drawn with matplotlib (Agg: no display): each function takes result rows (or the
statistics) and returns ``(name, title, figure)`` entries, or none when the run has nothing to draw.

matplotlib is an optional extra (``pip install 'xfbench[report]'``) imported inside each function, so
``import harness`` and a run without the extra do not need it.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.backend import BACKENDS
from harness.errors import InputError
from harness.reporting import HISTORY_VALUES
from harness.results import safe_name
from harness.seeds import PLOT_JITTER_STREAM
from harness.summary import (
    CASE_KEYS,
    WARMUP_ONLY,
    case_title,
    in_timed_phase,
    last_attempts,
    several_suites,
    steady_rows,
    timed_phase,
    trained_rows,
    with_suite,
)

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Plot:
    name: str  # file stem of the PNG and SVG beside the report
    title: str
    figure: Any  # a matplotlib Figure


# What the report's plots change from matplotlib's defaults: SVG text as text, SVG ids the same from run to run, and
# text.parse_math off: a case or model name holding `$` is a label, not mathtext (`$^$` raised and failed the whole
# report, `$a_1$` drew a subscript).
HOUSE_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "xfbench",
    "figure.dpi": 100,
    "text.parse_math": False,
}


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Inside: matplotlib's own defaults with HOUSE_STYLE, whatever the user's matplotlibrc or the process's
    rcParams say; after: the process's rcParams as they were. A report's plots are drawn and saved inside
    (report_html.write_report): a matplotlibrc with text.usetex failed the report where LaTeX is missing, and the
    settings, once made for the whole process, changed the user's own plots in a process that wrote a report (the
    pytest plugin's)."""
    _pyplot()  # matplotlib on Agg, or the InputError that says how to install it
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        params: Any = matplotlib.rcParams  # typed by its literal keys, which a dict of str keys does not match
        params.update(HOUSE_STYLE)
        yield


def _pyplot() -> Any:
    """matplotlib's pyplot, drawing off screen (Agg, chosen before pyplot is imported)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        # bad input to `xfbench report`: one line and exit 2, not a traceback; a run's own report.html stays a
        # warning (runner.write_report), its results already written
        raise InputError(
            f"Expected matplotlib for the report's plots. Received: it cannot be imported ({exc}). "
            "To fix, install it: pip install 'xfbench[report]' (or pip install matplotlib)."
        ) from None
    return plt


def _rank(backend: str, backends: Sequence[str]) -> int:
    """A backend's place in the palette: the registry's order (torch, then tensorflow) whichever backends a plot
    holds, so a backend keeps its colour and line from plot to plot and from report to report (ranked among the
    plot's backends, torch was orange beside TensorFlow's blue, blue in a torch-only report, and a page whose plots
    held different backends gave one backend two colours); names the registry lacks come after it, sorted."""
    order = list(BACKENDS) + sorted(set(backends) - set(BACKENDS))
    return order.index(backend)


def _colour(backend: str, backends: Sequence[str]) -> str:
    return COLOURS[_rank(backend, backends) % len(COLOURS)]


def _line_style(backend: str, backends: Sequence[str]) -> dict[str, Any]:
    """A backend's line: its colour, and a marker, marker size and dash pattern of its own, so that two backends
    that agree draw one line inside the other (two solid lines of one marker: the one drawn last hid the other)."""
    rank = _rank(backend, backends)
    return {
        "color": _colour(backend, backends),
        "marker": "osD^v"[rank % 5],
        "markersize": 6 / (1 + 0.6 * rank),
        "linestyle": ("-", "--", ":", "-.")[rank % 4],
        "zorder": 2 + 0.01 * rank,  # the smaller markers drawn over the larger, whatever order the lines came in
    }


# A log axis labels its minor ticks at 2 and 5 times each decade while it spans this many decades or fewer (beyond,
# they crowd): data from 0.15 to 3.3 s had the one label "1" between its unlabelled ticks.
LABELLED_MINOR_DECADES = 3.0


def _plain_log_ticks(axis: Any) -> None:
    """Label a log axis's decades as plain numbers (0.01, 1, 1e-05), and its minor ticks at 2 and 5 (0.2, 0.5) where
    it spans few decades (:data:`LABELLED_MINOR_DECADES`). matplotlib's log labels are mathtext, which
    text.parse_math (off, see _pyplot) showed raw as `$\\mathdefault{10^{-2}}$`; every minor tick labelled ran into
    one unreadable string."""
    from matplotlib.ticker import FuncFormatter

    def minor(value: float, _: int) -> str:
        low, high = sorted(axis.get_view_interval())
        if value <= 0 or low <= 0 or math.log10(high / low) > LABELLED_MINOR_DECADES:
            return ""
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
        return f"{value:g}" if any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (2.0, 5.0)) else ""

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


# Times whose largest is more than this many times the smallest are drawn on a log axis: on a linear one, mlp's 5 ms
# epochs beside cnn_small's 120 ms (the quick suite) drew boxes a pixel wide against 0.
LOG_AXIS_SPREAD = 20


def _log_if_spread(ax: Any, axis: str, values: np.ndarray) -> bool:
    """Put ``axis`` ("x" or "y") of ``ax`` on a log scale with plain labels where the positive ``values`` spread
    over more than :data:`LOG_AXIS_SPREAD` times; whether it did."""
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size or positive.max() / positive.min() <= LOG_AXIS_SPREAD:
        return False
    getattr(ax, f"set_{axis}scale")("log")
    _plain_log_ticks(getattr(ax, f"{axis}axis"))
    return True


def _case(keys: tuple, named: bool) -> str:
    """A case's label (its CASE_KEYS ``keys``), after its suite where ``named`` (the rows hold several suites:
    ``several_suites``, decided once per plot)."""
    case = dict(zip(CASE_KEYS, (str(k) if isinstance(k, str) else "" for k in keys), strict=True))
    return case_title(case | {"suite_shown": case["suite"] if named else ""})


def _ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last attempts' ok rows: a search trial's line up to where it ended, whatever ended it."""
    rows = last_attempts(with_suite(frame))
    return rows[rows["status"] == "ok"]


def _trials_ended_ok(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the trials that ended ok, as the tables count them ("ok 2/4"): a trial that failed or diverged
    at epoch 3 kept its first epochs' ok rows, which joined the mean over seeds up to there, and left it after."""
    return trained_rows(with_suite(frame))


def _none_ended_ok(case: pd.DataFrame) -> dict[str, int]:
    """A case's backends none of whose trials ended ok, each with its number of trials (the tables' "0/2, 2
    failed"): the plots name them, as they name a backend some of whose trials did not end ok ("1 of 2 ok")."""
    ended_ok = set(trained_rows(case)["backend"].dropna().astype(str))
    counts = case.groupby("backend")["trial_id"].nunique()
    return {str(b): int(n) for b, n in counts.items() if str(b) not in ended_ok}


# characters of a learning-curve figure's title a line (9 in wide, matplotlib's default title font)
SUPTITLE_WIDTH = 90


def learning_curves(frame: pd.DataFrame) -> Iterator[Plot]:
    """Per case: validation accuracy and loss per epoch, per backend the mean over seeds with a ±1 std band; a
    backend none of whose trials ended ok is named in the legend ("0 of 2 ok"), a case of such backends alone has its
    figure too. Nothing where no trial of the run ended ok. One figure at a time: the caller saves and closes each
    before the next is drawn (a run may have hundreds)."""
    plt, everything = _pyplot(), with_suite(frame)
    if _trials_ended_ok(frame).empty:  # nothing to draw in any figure: the tables say what happened
        return
    backends, named = sorted(everything["backend"].dropna().astype(str).unique()), several_suites(everything)
    for keys, case in everything.groupby(CASE_KEYS, sort=True, dropna=False):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        ended_ok = trained_rows(case)
        for backend, group in ended_ok.groupby("backend"):
            # each line's trials out of its case's: a mean over 2 of 3 seeds (one diverged) read as over all 3
            of = case.loc[case["backend"] == backend, "trial_id"].nunique()
            _draw_curves(axes, group, str(backend), backends, of)
        for ax, label in zip(axes, ("val accuracy", "val loss"), strict=True):
            # whole epochs only, also for a one-epoch run (min_n_ticks 2 would tick 0.96 ... 1.04 around its one)
            ax.xaxis.get_major_locator().set_params(integer=True, min_n_ticks=1)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if not ax.get_lines():  # said, so an empty panel does not read as a plot that failed
                said = "no trial ended ok" if ended_ok.empty else "no such metric in these rows"
                ax.text(0.5, 0.5, said, ha="center", va="center", transform=ax.transAxes)
        # a backend that drew no line is still named, with its count: the figure alone read as a one-backend case
        handles = axes[0].get_legend_handles_labels()[0] + [
            plt.Line2D([], [], label=f"{b} (0 of {n} ok)", **_line_style(b, backends))
            for b, n in _none_ended_ok(case).items()
        ]
        if handles:
            axes[0].legend(handles=handles)
        name = _case(keys, named)
        # wrapped, as accuracy_vs_time's panel titles: a suite:case name ran past both edges of the figure
        title = f"{name}: mean over the trials that ended ok, band ±1 std"
        fig.suptitle("\n".join(textwrap.wrap(title, SUPTITLE_WIDTH, break_on_hyphens=False)))
        fig.tight_layout()
        # the file's name: no ':' (suite:case, torchvision:...), which CI artefact uploads and Windows refuse
        yield Plot(safe_name(f"curves-{name}"), f"Learning curves: {name}", fig)


def _draw_curves(axes: Sequence[Any], group: pd.DataFrame, backend: str, backends: Sequence[str], of: int) -> None:
    """One backend's mean line and ±1 std band (the sample std, n − 1) of validation accuracy and loss, over its
    ``group`` of trials that ended ok, out of ``of`` it ran."""
    # the step is the row's position within its trial: phases follow each other on one axis
    steps = group.assign(step=group.groupby("trial_id").cumcount() + 1)
    ok = group["trial_id"].nunique()
    for ax, metric in zip(axes, ("val_acc", "val_loss"), strict=True):
        stats = steps.groupby("step")[metric].agg(["mean", "std"]).astype(float)
        # no mean (deep_features rows have no validation metrics): nothing to draw, not a 0; no std (one seed): no band
        stats = stats[stats["mean"].notna()].fillna(0.0)
        if stats.empty:
            continue
        style = _line_style(backend, backends)
        ax.plot(stats.index, stats["mean"], label=f"{backend} ({ok}{f' of {of}' if of > ok else ''} ok)", **style)
        ax.fill_between(
            stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=style["color"], alpha=0.2
        )


def _untimed_row(group: pd.DataFrame, steady: pd.DataFrame) -> str:
    """Why a case's backend has no steady epoch time to draw, as its row of the epoch-time plot says it."""
    trials = group["trial_id"].nunique()
    if trained_rows(group).empty:
        return f"0 of {trials} ok, none timed"
    return "warm-up epochs only, none steady" if steady.empty else "no epoch time recorded"


def epoch_times(frame: pd.DataFrame) -> list[Plot]:
    """Steady-state epoch times per case and backend as box plots with every epoch drawn as a point: of the phase
    the tables time (summary.timed_phase), named beside the case. Both phases of a transfer case pooled had put
    medians between its frozen and its unfrozen epochs, figures no table showed. A case's backend with nothing to
    draw keeps its row, saying why (none of its trials ended ok: "0 of 2 ok"). Cases top-down in the tables' order."""
    plt, rows = _pyplot(), with_suite(frame)
    timed: list[tuple[str, str, np.ndarray]] = []  # (row label, backend, its steady epoch times)
    named = several_suites(rows)
    for keys, group in rows.groupby(CASE_KEYS + ["backend"], sort=True, dropna=False):
        steady, phase = steady_rows(in_timed_phase(group)), timed_phase(group)
        times = steady["epoch_time_s"].astype(float).dropna().to_numpy()
        label = f"{_case(tuple(keys[:-1]), named)} · {keys[-1]}"
        label += (f" ({phase})" if phase else "") if len(times) else f": {_untimed_row(group, steady)}"
        timed.append((label, str(keys[-1]), times))
    if not any(len(times) for _, _, times in timed):
        return []
    backends = sorted({backend for _, backend, _ in timed})
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(timed)))
    for position, (_, backend, times) in enumerate(timed):  # grouped in order: each case's backends together
        if not len(times):  # its row's label says why
            continue
        # a black median: matplotlib's default orange is a backend's colour here
        ax.boxplot(
            times, positions=[position], orientation="horizontal", widths=0.6, showfliers=False,
            medianprops={"color": "black"},
        )  # fmt: skip
        jitter = np.random.default_rng([PLOT_JITTER_STREAM, position]).uniform(-0.15, 0.15, len(times))
        ax.scatter(times, position + jitter, s=8, color=_colour(backend, backends), alpha=0.7)
    ax.set_yticks(range(len(timed)), [label for label, _, _ in timed], fontsize=8)
    ax.set_ylim(len(timed) - 0.5, -0.5)  # the first case on top, as the tables list it
    logged = _log_if_spread(ax, "x", np.concatenate([times for _, _, times in timed]))
    ax.set_xlabel("steady epoch time (s, log scale)" if logged else "steady epoch time (s)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return [Plot("epoch-times", "Steady epoch time per case and backend (every epoch a point)", fig)]


def accuracy_vs_time(frame: pd.DataFrame) -> list[Plot]:
    """Per case, validation accuracy against cumulative training time, one line a trial. Evaluation is left out: a
    trial's last row's evaluation time also holds its test evaluation and MC-dropout passes, which come after the
    validation accuracy it reports (summed in, they moved the last point by up to 3x its epoch). A backend none of
    whose trials ended ok is named in its case's panel ("tensorflow: 0 of 2 ok")."""
    plt, everything = _pyplot(), with_suite(frame)
    rows = _trials_ended_ok(frame)
    if rows.empty:
        return []
    cases = list(everything.groupby(CASE_KEYS, sort=True, dropna=False))
    backends, named = sorted(everything["backend"].dropna().astype(str).unique()), several_suites(everything)
    columns = min(3, len(cases))
    fig, axes = plt.subplots(
        math.ceil(len(cases) / columns), columns, figsize=(3.3 * columns + 1.3, 2.8 * math.ceil(len(cases) / columns))
    )
    axes = np.atleast_1d(axes).ravel()
    for ax, (keys, case) in zip(axes, cases, strict=False):
        _time_panel(ax, case, backends)
        # wrapped: a suite:case name is wider than its panel, and ran into the next one's
        ax.set_title("\n".join(textwrap.wrap(_case(keys, named), 42, break_on_hyphens=False)), fontsize=8)
    for ax in axes[len(cases) :]:
        ax.axis("off")
    drawn = sorted(rows["backend"].dropna().astype(str).unique())
    handles = [plt.Line2D([], [], label=b, **_line_style(b, backends)) for b in drawn]
    # the legend goes in a right margin 1.3 inches wide, clear of the curves
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 1))
    fig.legend(handles=handles, loc="center right")
    title = "Validation accuracy against training time, evaluation left out (one line per trial)"
    return [Plot("accuracy-vs-time", title, fig)]


def _time_panel(ax: Any, case: pd.DataFrame, backends: Sequence[str]) -> None:
    """One case's panel: a line per trial that ended ok, and what is not drawn said (trials not timed, backends none
    of whose trials ended ok)."""
    untimed = 0
    for _, trial in trained_rows(case).groupby("trial_id"):
        took = trial["epoch_time_s"].astype(float)
        if took.isna().all():  # features read from the cache: no training was timed, none is drawn at 0 s
            untimed += int(trial["val_acc"].astype(float).notna().any())  # said only where there was a metric
            continue
        backend = str(trial["backend"].iloc[0])
        ax.plot(took.fillna(0).cumsum(), trial["val_acc"].astype(float), alpha=0.8, **_line_style(backend, backends))
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("val accuracy")
    ax.grid(alpha=0.3)
    not_ok = [f"{backend}: 0 of {n} ok" for backend, n in _none_ended_ok(case).items()]
    if not any(np.isfinite(np.asarray(line.get_ydata(), float)).any() for line in ax.get_lines()):
        # deep_features rows have no validation accuracy: said, as the learning curves say it
        said = f"not timed: {untimed} trial(s) from the cache" if untimed else "no such metric in these rows"
        said = "no trial ended ok" if trained_rows(case).empty else said
        ax.text(0.5, 0.5, "\n".join([said, *not_ok]), ha="center", va="center", transform=ax.transAxes)
        return
    # drawn beside trials that were timed, they would vanish without a word
    notes = [f"{untimed} trial(s) not timed (from the cache)"] * bool(untimed) + not_ok
    if notes:
        ax.text(0.98, 0.02, "\n".join(notes), ha="right", va="bottom", fontsize=7, transform=ax.transAxes)


def time_ratios(statistics: pd.DataFrame) -> list[Plot]:
    """The epoch-time ratio (reference / backend) per case with its hierarchical bootstrap 95 % interval (trials,
    then their epochs); 1 = equally fast. A case without a ratio keeps its row, saying why (the statistics' note);
    nothing where no case has one. Cases top-down in the tables' order."""
    if not len(statistics) or statistics["time_ratio"].astype(float).isna().all():
        return []  # no steady epochs on a side: the tables say n/a, an empty plot would say nothing
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(statistics)))
    labels = []
    for position, (_, row) in enumerate(statistics.iterrows()):
        labels.append(f"{case_title(row)} · {row['reference']} / {row['backend']}")
        ratio, low, high = (float(row[c]) for c in ("time_ratio", "time_ci_low", "time_ci_high"))
        if math.isnan(ratio):  # left out of the points, not of the plot
            said = f"no ratio: {row['time_missing']}" if row["time_missing"] else "no ratio"
            ax.text(0.01, position, said, transform=ax.get_yaxis_transform(), va="center", fontsize=8, color="#555555")
            continue
        err = [[ratio - low], [high - ratio]] if not math.isnan(low) else None
        colour = "#d62728" if row["time_significant"] else "#333333"  # a pair's point: no one backend's colour
        ax.errorbar([ratio], [position], xerr=err, fmt="o", color=colour, capsize=4)
    ax.axvline(1.0, color="grey", linestyle="--")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first case on top, as the tables list it
    _ratio_axis(ax, statistics)
    ax.set_xlabel("epoch-time ratio, log scale (red: marked)")  # the caption says when; at length it ran off
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    caption = (
        "Epoch-time ratio per case (first-named backend / second: above 1, the first is slower) with its 95 % "
        "hierarchical bootstrap interval; red: marked (the interval leaves "
        "out 1 and the trials' medians differ; never with one trial a side); a case without a ratio says why"
    )
    return [Plot("time-ratios", caption, fig)]


# The ratio axis reaches at least from 1/2 to 2 (both labelled), and past the farthest ratio or bound by a tenth.
RATIO_AXIS_REACH = 2.0


def _ratio_axis(ax: Any, statistics: pd.DataFrame) -> None:
    """The ratio plot's x axis: log, centred on 1, so that a backend twice as fast (0.5) and one twice as slow (2) lie
    equally far from 1 (on a linear axis 2 lay twice as far, and every ratio below 1 was squeezed into [0, 1])."""
    bounds = statistics[["time_ratio", "time_ci_low", "time_ci_high"]].to_numpy(dtype=float).ravel()
    bounds = bounds[np.isfinite(bounds) & (bounds > 0)]
    reach = max([RATIO_AXIS_REACH, *(1.1 * max(value, 1 / value) for value in bounds)])
    ax.set_xscale("log")
    ax.set_xlim(1 / reach, reach)
    _plain_log_ticks(ax.xaxis)


def search_points(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    paths: Sequence[str],
    metric: str,
    log_paths: Collection[str] = (),
    case: str = "",
) -> list[Plot]:
    """A search of one case: each sampled value against the metric (hollow: stopped early by ASHA), and every
    search trial's metric per epoch, ending where it stopped. ``log_paths``: options drawn on a log axis (sampled
    log-uniformly, or chosen among values decades apart). Each backend has its own marker and size, so equal points
    of two backends show one inside the other rather than one hiding the other. ``case``: named in the plot's file
    and title where a tune searched several (each its own plot: one plot of them all drew every case's samples as
    one search's)."""
    if table.empty:
        return []
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    search = _ok_rows(frame[frame["stage"] == "search"])
    backends = sorted(set(table["backend"]) | set(search["backend"]))
    fig, axes = plt.subplots(1, len(paths) + 1, figsize=(3.6 * (len(paths) + 1), 3.2))
    axes = np.atleast_1d(axes)
    for ax, path in zip(axes, paths, strict=False):
        _sampled_values(ax, table, path, metric, backends)
        if path in log_paths:
            ax.set_xscale("log")
            _plain_log_ticks(ax.xaxis)
        ax.set_xlabel(path)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for _, trial in search.groupby("trial_id"):
        backend = str(trial["backend"].iloc[0])
        curve = trial[metric].astype(float).to_numpy()
        axes[-1].plot(np.arange(1, len(curve) + 1), curve, color=_colour(backend, backends), alpha=0.6)
        axes[-1].scatter([len(curve)], [curve[-1]], color=_colour(backend, backends), marker="x")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs: 1, 2, 3, not 1.2, 1.4
    axes[-1].set_xlabel("epoch (x: where the trial ended)")
    axes[-1].set_ylabel(metric)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    title = "Search: sampled values against the metric (hollow: stopped early)"
    if case:
        return [Plot(safe_name(f"search-{case}"), f"{title}: {case}", fig)]
    return [Plot("search", title, fig)]


def _sampled_values(ax: Any, table: pd.DataFrame, path: str, metric: str, backends: Sequence[str]) -> None:
    """One searched option's panel: each backend's sampled values against the metric, hollow where ASHA stopped the
    sample early, each backend in its own marker and size."""
    for backend, group in table.groupby("backend"):
        # a sample that failed or diverged has no metric: nothing to draw (matplotlib's legend failed on a backend
        # whose every sample of a text-valued option had none)
        group = group[pd.to_numeric(group[metric], errors="coerce").notna()]
        if group.empty:
            continue
        values = [v if isinstance(v, int | float) else str(v) for v in group[path]]
        full = [not s for s in group["stopped_early"]]
        colour, rank = _colour(str(backend), backends), _rank(str(backend), backends)
        ax.scatter(
            values,
            group[metric],
            edgecolors=colour,
            facecolors=[colour if f else "none" for f in full],
            label=backend,
            marker="osD^v"[rank % 5],
            s=90 / (1 + 1.5 * rank),
            linewidths=1.5,
        )


Cell = tuple[str, str, str]  # (case, backend, run label)


@dataclass(frozen=True)
class HistoryMarks:
    """What the history plot marks beside the values: regressions as ``xfbench compare`` decides them (each cell's
    kinds: the plot's own kind circled, a fall in the trials that ended ok boxed), cells whose run had the case but
    no trial ended ok, values that cover only some trials ("2/3"), and the runs that did not finish."""

    regressed: Mapping[Cell, frozenset[str]] = field(default_factory=dict)
    not_ok: frozenset[Cell] = frozenset()
    # a time's cells whose trials ended ok with nothing timed -> why (baselines.cell_states: "warm-up only", ...)
    untimed: Mapping[Cell, str] = field(default_factory=dict)
    partly_ok: Mapping[Cell, str] = field(default_factory=dict)
    unfinished: frozenset[str] = frozenset()


def history(series: pd.DataFrame, marks: HistoryMarks, metric: str, kind: str) -> list[Plot]:
    """The metric over runs per (case, backend): ``series`` has index (case, backend) and one column per run; a case
    keeps one colour, each backend its own marker size and dash (_line_style), so that two backends with equal
    values draw one line inside the other (a solid line of one marker each: the one drawn last hid the other);
    ``kind`` is the regression the metric shows (time, accuracy)."""
    if series.empty:
        return []
    plt = _pyplot()
    # The legend goes below the plot, in columns, and the figure grows with it: inside, sixty series of a real
    # history covered the data and ran off the figure.
    widest = max(len(" · ".join(map(str, key if isinstance(key, tuple) else (key,)))) for key in series.index)
    # about 160 characters of 7-point text fit across the 9-inch figure, a marker and a gap per entry
    columns = max(1, min(3, len(series) // 5 + 1, 160 // (widest + 8)))
    legend_rows = math.ceil(len(series) / columns)
    fig, ax = plt.subplots(figsize=(9, 3.6 + 0.17 * legend_rows), layout="constrained")
    runs = [str(c) for c in series.columns]
    keys = [key if isinstance(key, tuple) else (key, "") for key in series.index]
    cases = list(dict.fromkeys(str(case) for case, _ in keys))
    backends = sorted({str(backend) for _, backend in keys})
    # a colour per case (no red, the colour of the regression marks), past nine cases another marker; a backend's
    # own marker size and dash (_line_style)
    palette = [colour for index, colour in enumerate(plt.get_cmap("tab10").colors) if index != 3]
    floor = ax.get_xaxis_transform()  # x in runs, y in the axes' height: where a cell without a value is marked
    for (case, backend), (_, values) in zip(keys, series.iterrows(), strict=True):
        number = cases.index(str(case))
        cycle = number // len(palette)
        style = _line_style(str(backend), backends) | {
            "color": palette[number % len(palette)],
            "marker": ("o", "s", "^", "D", "v", "P")[cycle % 6],
        }
        line = ax.plot(range(len(runs)), values.to_numpy(dtype=float), label=f"{case} · {backend}", **style)
        line[0].set_alpha(0.8)
        for i, run in enumerate(runs):
            cell = (str(case), str(backend), run)
            _mark_cell(ax, floor, (i, values.iloc[i]), cell, marks, kind, style["color"])
    ticks = [f"{r} (unfinished)" if r in marks.unfinished else r for r in runs]
    ax.set_xticks(range(len(runs)), ticks, rotation=20, fontsize=7, ha="right")
    ax.set_ylabel(metric)
    if metric != "test_acc":  # times from 0.01 to 2.6 s: on one linear axis the fast cases lay flat on the floor
        _log_if_spread(ax, "y", series.to_numpy(dtype=float))
    fig.legend(fontsize=7, loc="outside lower center", ncols=columns)
    ax.grid(alpha=0.3)
    whys = set(marks.untimed.values())
    warmup = "+: its trials ran one epoch, warm-up, nothing steady to time; " if WARMUP_ONLY in whys else ""
    # "not timed" or "not timed (features from the cache)": the reason in brackets where the cells give one
    untimed = sorted(why.removeprefix("not timed").strip() for why in whys - {WARMUP_ONLY})
    said = " ".join(["◇: its trials ended ok with nothing timed", " or ".join(u for u in untimed if u)]).strip()
    warmup += f"{said}; " if untimed else ""
    title = (
        f"red circle: the case's {kind} regressed, as xfbench compare decides against the last run that ran it; red "
        f"square: fewer of its trials ended ok; ×: it ran, no trial ended ok; {warmup}2/3: the value covers the "
        "trials that ended ok"
    )
    ax.set_title("\n".join(textwrap.wrap(title, 150)), fontsize=7)
    # what one value is, as `xfbench history` titles its trend: "epoch_time_s" alone did not say median or mean
    return [Plot("history", f"History: {metric} over runs per case, {HISTORY_VALUES[metric]}", fig)]


def _mark_cell(
    ax: Any, floor: Any, point: tuple[int, float], cell: Cell, marks: HistoryMarks, kind: str, colour: Any
) -> None:
    """One run's marks for one (case, backend): × on the floor where no trial ended ok (a gap alone read as a run
    that did not have the case), "2/3" beside a value of some trials only, and the regressions of ``cell``."""
    x, value = point
    regressed = marks.regressed.get(cell, frozenset())
    drawn = value == value  # NaN: no value to draw at
    if not drawn and cell in marks.not_ok:
        ax.scatter([x], [0.03], marker="x", s=50, color=colour, transform=floor, clip_on=False, label="_not ok")
    why = marks.untimed.get(cell)
    if not drawn and why:  # `xfbench history`'s "warm-up only" / "not timed": ran, nothing to time
        marker = {"marker": "+", "color": colour} if why == WARMUP_ONLY else {"marker": "D", "facecolors": "none"}
        edge = {} if why == WARMUP_ONLY else {"edgecolors": colour}
        label = "_warm-up only" if why == WARMUP_ONLY else "_not timed"
        ax.scatter([x], [0.03], s=60, transform=floor, clip_on=False, label=label, **marker, **edge)
    if drawn and cell in marks.partly_ok:
        ax.annotate(marks.partly_ok[cell], (x, value), xytext=(4, 4), textcoords="offset points", fontsize=6)
    where = {"transform": floor} if not drawn else {}
    y = value if drawn else 0.03
    if kind in regressed and drawn:
        ax.scatter([x], [y], s=160, facecolors="none", edgecolors="red", linewidths=2, label=f"_{kind} regressed")
    if "trials" in regressed and (drawn or cell in marks.not_ok):
        square = {"marker": "s", "facecolors": "none", "edgecolors": "red", "label": "_trials regressed", **where}
        ax.scatter([x], [y], s=220, linewidths=1.5, **square)


def save(plot: Plot, directory: Path) -> str:
    """Write ``<name>.png`` and ``<name>.svg`` into ``directory``; return the SVG text (for inlining)."""
    import io

    directory.mkdir(parents=True, exist_ok=True)
    plot.figure.savefig(directory / f"{plot.name}.png", dpi=110)
    buffer = io.StringIO()
    plot.figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    # utf-8, as the SVG's prolog and the page declare: the titles hold plus-minus, minus and arrow signs, which the
    # locale's encoding (ASCII under LC_ALL=C) could not write
    (directory / f"{plot.name}.svg").write_text(svg, encoding="utf-8")
    _pyplot().close(plot.figure)
    return svg
