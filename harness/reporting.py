"""Every table xfbench shows, in one place: rich tables for the terminal, markdown tables for files.

The numbers come from elsewhere (:mod:`harness.summary` summarises a run, :mod:`harness.compare` compares two,
:mod:`harness.baselines` lists history, :mod:`harness.tuning` tabulates a search); this module only turns them
into cells, so the terminal and summary.md show the same cells. Rich is imported inside the terminal
functions: writing a summary.md must not need it, and ``xfbench --help`` should not pay for it.

A run's comparison sets every backend against the reference backend (``harness.backend.REFERENCE_BACKEND``):
one table per other backend, accuracy differences reference − backend, time ratios reference / backend.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.backend import BACKENDS
from harness.compare import CASE_COLUMNS, CaseComparison, Thresholds, percent
from harness.config import TUNED, model_label
from harness.plan import UNFINISHED_STATUSES, DriverProcess, RunPlan, resume_command
from harness.search import tpe_startup_samples
from harness.statistics import SIGNIFICANT_MARK
from harness.suites import SPEED_VARIANTS
from harness.summary import WARMUP_ONLY, Summary, case_title, suite_shown, why_not_ok
from harness.trial_lines import TrialLines, retry_note
from harness.tuning import TunePlan, best_trials, search_table

if TYPE_CHECKING:
    from harness.baselines import History, LoadedRun, SavedBaseline
    from harness.runner import RunOutcome

PER_BACKEND_HEADER = [
    "strategy",
    "model",
    "dataset",
    "backend",
    "trials",
    "test acc (mean ± std over seeds)",
    "val acc (mean, last epoch)",
    "epoch time s (median)",
    "warm-up epoch s (median)",
    "samples/s (median)",
    "params",
    "forward MMACs / sample",
    "training GFLOP/s",
]
REGRESSION_HEADER = [
    "case",
    "backend",
    "epoch s base → new",
    "ratio new/base [95 % CI]",  # at the default --alpha: regression_header
    "p (MWU)",
    "time",
    "test acc base → new",
    "Δ pp new − base [95 % CI]",
    "accuracy",
    "note",
]


def regression_header(t: Thresholds) -> list[str]:
    """The comparison table's columns (markdown), the time ratio's interval at the thresholds' confidence."""
    return [*REGRESSION_HEADER[:3], f"ratio new/base [{percent(t.time_confidence)} CI]", *REGRESSION_HEADER[4:]]


# the same columns in the terminal, where the title carries the units
REGRESSION_SHORT_HEADER = ("case", "backend", "epoch s", "ratio", "p", "time", "test acc", "Δ pp", "accuracy", "note")
HISTORY_RUNS_HEADER = ["run_id", "started", "git_commit", "status", "trials"]
# what one value of history's trend is (baselines.metric_per_case), in its title
HISTORY_VALUES = {
    "epoch_time_s": "median of the steady epochs (warm-up left out) of the timed phase",
    "samples_per_s": "median of the steady epochs (warm-up left out) of the timed phase",
    "test_acc": "mean final test accuracy of the trials that ended ok",
}
# Whole numbers among the summary's columns, which a missing value (NaN) turns into floats.
COUNT_COLUMNS = frozenset({"params", "forward_macs", "paired_seeds"})
SETTINGS_MARK = "†"  # history: the case's settings differ from the run before
UNFINISHED = "unfinished"  # history: a run column whose run is still running or was interrupted
TRANSFER_HEADER = ["dataset", "backend", "B test acc", "B-on-A test acc", "error reduction (error_B / error_BonA)"]
# "epochs timed": a phase of one epoch per trial has no steady epoch, and its warm-up is what its figures time
# (marked "(warm-up)"): headed "steady epochs", its count read as steady ones
PHASE_HEADER = ("case", "backend", "phase", "epochs timed", "epoch s", "samples/s", "GFLOP/s")
PHASE_NOTE = (
    "Cases that train in more than one phase (S4: the reused layers frozen, then unfrozen), each phase apart: medians "
    "over the seeds' steady epochs (each phase's first epoch is warm-up; '(warm-up)' marks a phase that had no "
    "other, whose figures then time its warm-up). The frozen phase is expected to be the faster (no weight "
    "gradients for the frozen layers). GFLOP/s counts each phase's own training step (2 x its MACs x samples/s): "
    "equal GFLOP/s in both phases means the frozen one is faster by exactly the work it skips. The case's own epoch "
    "time, samples/s, GFLOP/s and time ratios elsewhere are of one phase, named beside its epoch time: the one with "
    "the most steady epochs (on a tie the later), as its benchmark records it. An S4 transfer case "
    "lists first the source phase that trained its backbone in this run, in the framework named (`--source-backend`, "
    "torch unless given): one backbone serves both backends. A backbone taken from the cache trained in an earlier "
    "run: no source row."
)
INEXACT_NOTE = (
    "These cases' backends compute something different by design, so their figures may part beyond float rounding "
    "order (every row says why in its `inexact` column); every other case computes the same arithmetic in both, "
    "up to the order of float rounding."
)
MC_HEADER = ("case", "backend", "test acc", "MC acc of the mean", "mean prob", "its std over passes")
MC_NOTE = (
    "Monte Carlo dropout: N stochastic passes over the test set with dropout active (BatchNorm in inference mode). "
    "MC acc of the mean: accuracy of the mean probability over the passes; mean prob: the mean probability of the "
    "class it predicts, and its std over passes, both averaged over test samples; each a mean over seeds."
)
RUN_NOTE = (
    "Test accuracy is the mean over a case's seeds that ended ok, ± their sample standard deviation (n − 1; none "
    "for one seed). Epoch time and samples/s are medians over steady-state epochs (the first epoch of each phase is "
    "warm-up and excluded; '(warm-up)' marks cases that had no other epoch, and ratios with such a case on either "
    "side). The warm-up epoch's own seconds (the median over the case's trials) stand beside them: what a first epoch "
    "pays for tracing, compiling (torch.compile, XLA) and first-touch caches; imports, done before a trial's first "
    "epoch starts, are not in it (deep_features, which has no epochs: its extractor's untimed warm-up batches). "
    "{comparison} A case with several training phases (transfer: frozen, then unfrozen), which do different work, is "
    "timed here by one, named beside its figures (the phase with the most steady epochs, the later on a tie), and its "
    "warm-up seconds are the median over each phase's first epoch: the phase table gives each phase. Training GFLOP/s "
    "= 2 × a step's MACs per sample × samples/s, the median over the steady epochs; a step's MACs: every layer's "
    "forward pass, and each trainable layer's weight gradient and, where a trainable layer lies below it, input "
    "gradient, each costing the layer's forward MACs (convolutions and dense layers only), so a frozen layer costs its "
    "forward pass alone (feature_extraction, freeze_early, transfer's frozen phase) and deep_features counts the "
    "forward pass to its feature layer, its samples/s being that extraction."
)
# RUN_NOTE's {comparison}: how to read the comparisons, or why there is none
COMPARED_NOTE = (
    "Each comparison sets a backend against the reference backend, {reference}: accuracy differences are "
    "{reference} − backend over the seeds ok in both, ratios {reference} / backend, so ratios above 1 mean "
    "{reference} takes longer (epoch time) or processes more samples per second (samples/s)."
)
UNCOMPARED_NOTE = (
    "Nothing is compared ({why}). A run of several backends sets each against the reference backend ({reference} "
    "here, `--reference` names another) over the cases both ran."
)
SETTINGS_NOTE = (
    "What each case ran with away from xfbench's defaults (`xfbench run --help` names them), runtime options last: "
    "the case name alone does not say that a trial ran Keras fit, torch.compile or float16. Values as run.json and "
    "config_json record them; the threads a case's trials ran with when not 1 (1/2: some with each, as after a "
    "resume under another --cpus-per-trial); the framework variables its workers had set (results column "
    "`framework_env`, docs/fairness.md); a --weights file by its name and the first 12 hex digits of its sha256."
)
MARKED_VERDICTS = ("regression", "improvement")
STATS_HEADER = ["case", "backend", "seeds", "Δ acc pp [95 % CI]", "time ratio [95 % CI]", "note"]
STATS_NOTE = (
    "Per case, {reference} against each backend: the paired difference of final test accuracy over seeds "
    "({reference} − backend, percentage points, mean with a 95 % Student-t interval) and the steady epoch-time "
    "ratio ({reference} / backend, medians, 95 % hierarchical bootstrap interval: trials, then their epochs). `*` "
    "marks an interval that leaves out 0 pp or a ratio of 1: a difference the seeds' noise does not explain; a "
    "time ratio is marked only if Welch's test on the trials' log medians agrees (p < 0.05), never with one trial "
    "a side. An accuracy difference's standard deviation is at least one test image (at most 1 pp where the "
    "accuracies do not tell the test set's size): seeds that all differ alike get an interval of that spread. The "
    "note says where one backend's steady epochs shared the "
    "cores with another trial more than the other's did (trials side by side, `--max-concurrent`): the ratio then "
    "holds that contention as well as the frameworks' speed; `--max-concurrent 1` times each trial alone. For a "
    "tune it also names the options in which the backends' picks differ: the ratio then compares different "
    "workloads."
)


# ---------------------------------------------------------------------------------------------------- cells


SPEED_NOTE = (
    "Each mode of the speed_matrix suite (harness/suites.py SPEED_VARIANTS): samples/s is the median over steady "
    "epochs, ÷ fastest its ratio to the model's fastest mode, and warm-up s the first epoch's training seconds "
    "(tracing, compiling; the median over each phase's first epoch where a case has several phases), kept out of "
    "samples/s. '(warm-up)' marks a mode that had no other epoch (a one-epoch run), whose samples/s then includes "
    "them, and every ratio it takes part in."
)


def fmt(value: Any, spec: str) -> str:
    """A number formatted with ``spec``; missing (None, NaN) as ``n/a``."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def fmt_seconds(value: Any, spec: str) -> str:
    """A time formatted with ``spec``, or to two significant digits where ``spec`` would round it to zero: torch's
    warm-up of 0.0041 s read 0.00 beside TensorFlow's 0.10, as if it had none."""
    shown = fmt(value, spec)
    return format(value, ".2g") if shown != "n/a" and value > 0 and float(shown) == 0 else shown


def fmt_rate(value: Any) -> str:
    """Samples/s as a whole number with thousands separators, or to three significant digits below 10: a full-size
    VGG-16 on a CPU trains about 0.2 samples/s, which read 0 beside a GFLOP/s that was not."""
    shown = fmt(value, ",.0f")
    return format(value, ".3g") if shown != "n/a" and abs(value) < 10 else shown


def unfinished_notice(
    plan: RunPlan, status: str, frame: pd.DataFrame, run_dir: Path, running: DriverProcess | None = None
) -> tuple[str, str]:
    """(headline, text) for a run that did not finish, as summary.md and report.html open with: its tables hold
    what ended before the stop, and read alone they look like a finished run's. ``running``: its driver, where
    that is known to run still (a resume refuses such a run: the notice gave its command)."""
    # a run's own trials; the backbones it trains for them (stage pretrain) apart
    began = backbones = 0
    if len(frame):
        pretrain = frame["stage"].eq("pretrain") if "stage" in frame else pd.Series(False, index=frame.index)
        began, backbones = frame.loc[~pretrain, "trial_id"].nunique(), frame.loc[pretrain, "trial_id"].nunique()
    also = f" (and {backbones} backbone pretrain trial(s))" if backbones else ""
    counted = f"{began} of the {len(plan.trials)} planned trials" if plan.search is None else f"{began} trials"
    counted += also
    if running is not None:
        return (
            f"Still running (driver pid {running.pid} on host {running.host})",
            f"{counted} have rows so far, and the tables below hold those only. Draw the report again when it ends.",
        )
    # run.json says running after a driver killed outright, or while the run goes on (on another host: not known)
    headline = "Interrupted" if status == "interrupted" else "Not finished (still running, or its driver was killed)"
    text = (
        f"{counted} have rows, and the tables below hold those only. Finish the run with "
        f"`{resume_command(plan.kind, run_dir)}`."
    )
    return headline, text


def p_cell(p: float) -> str:
    """A p-value; one under double precision's resolution near 1 (the Mann-Whitney normal tail over a thousand
    epochs a side underflows to 0) as ``<1e-16``, not a p of 0."""
    return "<1e-16" if p < 1e-16 else fmt(p, ".2g")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table, each cell escaped (:func:`markdown_cell`)."""
    lines = ["| " + " | ".join(map(markdown_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(markdown_cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def markdown_cell(text: str) -> str:
    """A cell's text that stays one cell and reads as written: a failed trial's error with a ``|`` split its row
    into more cells, ``<b>`` or ``<class 'NoneType'>`` was taken for HTML (bold, or nothing shown), and a newline
    ended the table; an error quoting ``&lt;i&gt;`` showed as ``<i>``. Pipes escaped, ampersands and angle brackets
    as entities, line breaks as spaces."""
    return markdown_prose(text).replace("|", "\\|")


def markdown_prose(text: str) -> str:
    """Text of a run (a case name, a label, a warning) written into markdown outside a table: as written, not as
    HTML (``<img ...>`` in a suite's variant rendered in a pull request's comment), on one line."""
    flat = " ".join(str(text).splitlines())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _strategy_cell(row: pd.Series) -> str:
    """The strategy, after the case's suite where a run holds several (``Summary`` rows' ``suite_shown``)."""
    return f"{suite_shown(row)}: {row['strategy']}" if suite_shown(row) else str(row["strategy"])


def _model_cell(row: pd.Series) -> str:
    return model_label(str(row["model"])) + (f"+{row['variant']}" if row["variant"] else "")


def _status_cell(row: pd.Series, ok_word: str = " ok") -> str:
    return (
        f"{row['ok']}/{row['trials']}{ok_word}"
        + (f", {row['failed']} failed" if row["failed"] else "")
        + (f", {row['diverged']} diverged" if row["diverged"] else "")
        + (f", {row['skipped']} skipped" if row["skipped"] else "")
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _warmup_mark(warmup_only: bool) -> str:
    return " (warm-up)" if warmup_only else ""


def _ratio_cell(ratio: float, warmup_only: bool) -> str:
    return fmt(ratio, ".3f") + _warmup_mark(warmup_only and ratio == ratio)  # no mark beside n/a (NaN)


def _timed_cell(row: pd.Series, column: str, spec: str) -> str:
    """A figure timed by the case's epochs, marked where only warm-up epochs timed it."""
    value = row[column]
    shown = (
        fmt_seconds(value, spec)
        if column.startswith("epoch_time")
        else fmt_rate(value)
        if column.startswith("samples_per_s")
        else fmt(value, spec)
    )
    return shown + _warmup_mark(row["timing_basis"] == WARMUP_ONLY and value == value)


def _epoch_time_cell(row: pd.Series) -> str:
    """The epoch time, and for a case of several phases the one it times (summary.timed_phase)."""
    phase = str(row.get("timed_phase", "") or "")
    return _timed_cell(row, "epoch_time_s_median", ".3f") + (f" ({phase})" if phase else "")


def _accuracy_cell(row: pd.Series) -> str:
    """Mean ± std over seeds; one seed has no spread to show (0 would claim one)."""
    mean, std = row["test_acc_mean"], row["test_acc_std"]
    if _one_seed(row):
        return f"{fmt(mean, '.4f')} (1 seed)"
    return f"{fmt(mean, '.4f')} ± {fmt(std, '.4f')}"


def _one_seed(row: pd.Series) -> bool:
    """A mean test accuracy without a spread: one seed (NaN std)."""
    mean, std = row["test_acc_mean"], row["test_acc_std"]
    return isinstance(std, float) and math.isnan(std) and not (isinstance(mean, float) and math.isnan(mean))


def per_backend_cells(row: pd.Series) -> list[str]:
    """One row of ``Summary.per_backend``, as the terminal and summary.md show it."""
    return [
        _strategy_cell(row),
        _model_cell(row),
        str(row["dataset"]),
        str(row["backend"]),
        _status_cell(row),
        _accuracy_cell(row),
        fmt(row["val_acc_mean"], ".4f"),
        _epoch_time_cell(row),
        fmt_seconds(row["warmup_time_s"], ".3f"),
        _timed_cell(row, "samples_per_s_median", ",.0f"),
        fmt(row["params"], ",.0f"),
        mmac_cell(row["forward_macs"]),
        _timed_cell(row, "train_gflops", ",.2f"),
    ]


def pair_header(reference: str, backend: str) -> list[str]:
    """Header of the table that sets ``backend`` against ``reference``."""
    return [
        "strategy",
        "model",
        "dataset",
        f"test acc {reference} − {backend} (pp)",
        f"epoch time {reference} / {backend}",
        f"samples/s {reference} / {backend}",
    ]


def pair_cells(row: pd.Series) -> list[str]:
    """One row of ``Summary.comparison`` (a case, a backend against the reference)."""
    return [
        _strategy_cell(row),
        _model_cell(row),
        str(row["dataset"]),
        fmt(row["acc_diff_pp"], "+.2f"),
        _ratio_cell(row["epoch_time_ratio"], row["warmup_only"]),
        _ratio_cell(row["samples_per_s_ratio"], row["warmup_only"]),
    ]


def regression_cells(c: CaseComparison) -> list[str]:
    """One case of a base → new comparison (``xfbench compare``); the ratio marked when its change is real."""
    return [
        c.case,
        c.backend,
        f"{fmt(c.base_time_s, '.4f')} → {fmt(c.new_time_s, '.4f')}",
        _interval(c.time_ratio, c.time_ci[0], c.time_ci[1], ".3f", c.time_marked),
        p_cell(c.time_p),
        c.time_verdict,
        f"{fmt(c.base_acc, '.4f')} → {fmt(c.new_acc, '.4f')}",
        _interval(c.acc_diff_pp, c.acc_ci_pp[0], c.acc_ci_pp[1], "+.2f", c.acc_verdict in MARKED_VERDICTS),
        c.acc_verdict,
        c.note,
    ]


def case_name(row: pd.Series) -> str:
    """strategy-model[+variant]-dataset, as in trial ids; ``suite:`` before it where a run holds several suites."""
    return case_title(row)


def _interval(value: float, low: float, high: float, spec: str, significant: bool) -> str:
    mark = SIGNIFICANT_MARK if significant else ""
    if math.isnan(low):
        return fmt(value, spec) + mark
    return f"{fmt(value, spec)}{mark} [{fmt(low, spec)}, {fmt(high, spec)}]"


def stats_cells(row: pd.Series) -> list[str]:
    """One row of ``Summary.statistics``: the accuracy difference and the time ratio with their intervals."""
    return [
        case_name(row),
        str(row["backend"]),
        str(row["paired_seeds"]),
        _interval(row["acc_diff_pp"], row["acc_ci_low_pp"], row["acc_ci_high_pp"], "+.2f", row["acc_significant"]),
        _interval(row["time_ratio"], row["time_ci_low"], row["time_ci_high"], ".3f", row["time_significant"]),
        str(row["note"]),
    ]


def compared_backends(summary: Summary) -> list[str]:
    """The backends set against the reference: registry order, then any other name alphabetically."""
    present = set(summary.per_backend["backend"]) if len(summary.per_backend) else set()
    present.discard(summary.reference)
    return [b for b in BACKENDS if b in present] + sorted(present - set(BACKENDS))


def _noted(pairs: pd.DataFrame) -> bool:
    """Whether a comparison's rows hold a note (summary.picks_note): only then is its note column shown."""
    return "note" in pairs and bool(pairs["note"].fillna("").astype(str).ne("").any())


def _pair_rows(summary: Summary, backend: str) -> pd.DataFrame:
    comparison = summary.comparison
    return comparison[comparison["backend"] == backend] if len(comparison) else comparison


def uncompared(summary: Summary, backend: str | None = None) -> str:
    """Why the reference has no comparison row against ``backend`` (None: against no other backend), as summary.md,
    the terminal, ``--format md`` and report.html say it: the last three dropped the comparison without a word."""
    if backend is None:
        return "no other backend ran"
    ran = set(summary.per_backend["backend"]) if len(summary.per_backend) else set()
    if summary.reference not in ran:  # a TensorFlow-only run compared with torch, which it did not train
        return f"no case ran on both backends; {summary.reference}, the reference backend, did not run"
    return "no case ran on both backends"


def run_note(summary: Summary) -> str:
    """RUN_NOTE for ``summary``: how to read its comparisons, or, where nothing was compared, why (it told a
    TensorFlow-only run how its comparisons with torch read)."""
    reference = summary.reference
    if len(summary.comparison):
        return RUN_NOTE.format(comparison=COMPARED_NOTE.format(reference=reference))
    others = compared_backends(summary)
    why = "; ".join(dict.fromkeys(uncompared(summary, backend) for backend in others)) or uncompared(summary)
    return RUN_NOTE.format(comparison=UNCOMPARED_NOTE.format(why=why, reference=reference))


# ---------------------------------------------------------------------------------------------------- markdown


def run_markdown(summary: Summary, title: str) -> str:
    """A run's summary.md: the per-backend table, one table per backend against the reference, transfer A → B."""
    reference = summary.reference
    parts = [f"# {title}", "", "## Per backend", ""]
    parts.append(markdown_table(PER_BACKEND_HEADER, [per_backend_cells(r) for _, r in summary.per_backend.iterrows()]))
    settings = settings_rows(summary.per_backend)
    if settings:
        parts += ["", "## Settings", "", SETTINGS_NOTE, "", markdown_table(("case", "backend", "settings"), settings)]
    gpus = gpu_rows(summary.per_backend)
    if gpus:
        parts += ["", "## GPU", "", GPU_NOTE, "", markdown_table(GPU_HEADER, gpus)]
    others = compared_backends(summary)
    if not others:
        parts += ["", f"## Against the reference backend ({reference})", "", f"({uncompared(summary)})"]
    for backend in others:
        rows = _pair_rows(summary, backend)
        parts += ["", f"## {reference} vs {backend}", ""]
        if rows.empty:
            parts.append(f"({uncompared(summary, backend)})")
        else:
            noted = _noted(rows)
            header = [*pair_header(reference, backend), *(["note"] if noted else [])]
            cells = [[*pair_cells(r), *([str(r["note"])] if noted else [])] for _, r in rows.iterrows()]
            parts.append(markdown_table(header, cells))
    if len(summary.statistics):
        parts += ["", "## Statistics", "", STATS_NOTE.format(reference=reference), ""]
        parts.append(markdown_table(STATS_HEADER, [stats_cells(r) for _, r in summary.statistics.iterrows()]))
    speed = speed_mode_rows(summary.per_backend)
    if speed:
        parts += ["", "## Speed modes", "", SPEED_NOTE, ""]
        parts.append(markdown_table(("model", "backend mode", "samples/s", "÷ fastest", "warm-up s"), speed))
    phases = phase_rows(summary.phases)
    if phases:
        parts += ["", "## Epoch time per phase", "", PHASE_NOTE, "", markdown_table(PHASE_HEADER, phases)]
    mc = mc_dropout_rows(summary.per_backend)
    if mc:
        parts += ["", "## MC dropout", "", MC_NOTE, "", markdown_table(MC_HEADER, mc)]
    inexact = inexact_rows(summary.per_backend)
    if inexact:
        parts += ["", "## Not computed exactly alike", "", INEXACT_NOTE, "", markdown_table(("case", "why"), inexact)]
    not_ok = not_ok_rows(summary.not_ok)
    if not_ok:
        parts += ["", "## Trials not ok", "", NOT_OK_NOTE, "", markdown_table(NOT_OK_HEADER, not_ok)]
    transfer = transfer_markdown(summary.per_backend)
    if transfer:
        parts += ["", "## Transfer A → B (S4b)", "", transfer]
    parts += ["", run_note(summary), ""]
    return "\n".join(parts)


def settings_rows(per_backend: pd.DataFrame) -> tuple[tuple[str, str, str], ...]:
    """Each (case, backend) with what it ran with away from the defaults."""
    if "settings" not in per_backend:
        return ()
    return tuple(
        (case_title(r), str(r["backend"]), str(r["settings"]) or "defaults") for _, r in per_backend.iterrows()
    )


GPU_HEADER = ("case", "backend", "GPU", "peak MiB")
GPU_NOTE = (
    "The cases that ran on a GPU: its name, and the most memory the framework held in tensors from a model's build to "
    "an epoch's end, the largest over the case's trials (results column `gpu_peak_mib`). The process holds more: the "
    "CUDA context, and what the framework's allocator keeps in reserve."
)


def gpu_rows(per_backend: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    """Each (case, backend) that ran on a GPU; none for a run on CPUs (nor for rows recorded before the column)."""
    if "gpu" not in per_backend:
        return ()
    on_gpu = per_backend[per_backend["gpu"].astype(str) != ""]
    return tuple(
        (case_title(r), str(r["backend"]), str(r["gpu"]), fmt(r["gpu_peak_mib"], ",.0f")) for _, r in on_gpu.iterrows()
    )


def phase_rows(phases: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    """The per-phase table's rows: case, backend, phase, steady epochs counted, median epoch s, samples/s and GFLOP/s
    (n/a for rows written before the step's MACs were recorded and without forward MACs)."""
    return tuple(
        (
            case_title(r),
            str(r["backend"]),
            str(r["phase"]),
            str(r["epochs"]) + _warmup_mark(bool(r.get("warmup_only", False))),
            fmt_seconds(r["epoch_time_s_median"], ".3f"),
            fmt_rate(r["samples_per_s_median"]),
            fmt(r.get("train_gflops", math.nan), ",.2f"),
        )
        for _, r in phases.iterrows()
    )


NOT_OK_HEADER = ("case", "backend", "seed", "status", "why")
NOT_OK_NOTE = (
    "Each trial whose last attempt did not end ok: failed (it raised, or its worker died), diverged (its loss stopped "
    "being finite), or skipped (what it needs could not exist); the first line of its error. Every row of a trial "
    "is in results.parquet, its error in the `error` column."
)


def not_ok_rows(not_ok: pd.DataFrame, limit: int = 30) -> tuple[tuple[str, ...], ...]:
    """One row per trial that did not end ok: its case, backend, seed, status and the first line of why; past
    ``limit`` trials (a search whose samples diverged), one row saying how many more."""
    rows = []
    for _, r in not_ok.head(limit).iterrows():
        why = why_not_ok(r)
        seed = r.get("seed")
        rows.append(
            (case_title(r), str(r["backend"]), "" if pd.isna(seed) else str(int(seed)), str(r["status"]), _cut(why))
        )
    if len(not_ok) > limit:
        rows.append((f"… {len(not_ok) - limit} more", "", "", "", "every trial's status and error: results.parquet"))
    return tuple(rows)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inexact_rows(per_backend: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """Each case whose trials say their backends cannot compute exactly alike, with why (the ``inexact`` column)."""
    if per_backend.empty or "inexact" not in per_backend.columns:
        return ()
    flagged = per_backend[per_backend["inexact"].fillna("") != ""]
    seen: dict[str, str] = {}
    for _, r in flagged.iterrows():
        seen.setdefault(case_title(r), str(r["inexact"]))
    return tuple(seen.items())


def mc_dropout_rows(per_backend: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    """Per case and backend that ran MC dropout passes: test accuracy beside the passes' figures."""
    if per_backend.empty or "mc_test_acc_mean" not in per_backend.columns:
        return ()
    ran = per_backend[per_backend["mc_test_acc_mean"].notna()]
    return tuple(
        (
            case_title(r),
            str(r["backend"]),
            fmt(r["test_acc_mean"], ".4f"),
            fmt(r["mc_test_acc_mean"], ".4f"),
            fmt(r["mc_mean_prob_mean"], ".4f"),
            fmt(r["mc_pred_std_mean"], ".4f"),
        )
        for _, r in ran.iterrows()
    )


def transfer_markdown(per_backend: pd.DataFrame) -> str:
    """B from scratch vs B-on-A per (dataset, backend), with the error-rate reduction factor error_B / error_BonA."""
    rows = transfer_rows(per_backend)
    return markdown_table(TRANSFER_HEADER, rows) if rows else ""


def transfer_rows(per_backend: pd.DataFrame) -> list[list[str]]:
    """Per (suite, dataset, backend): two suites of one run (transfer_smoke and transfer) are two comparisons, the
    dataset cell naming the suite where the run holds several."""
    if per_backend.empty or not {"B_scratch", "B_on_A"} <= set(per_backend["variant"]):
        return []
    rows = []
    # rows written before the suite column read it as NA, which groupby would drop
    frame = per_backend.assign(suite=per_backend["suite"].fillna("") if "suite" in per_backend else "")
    for (_, dataset, backend), group in frame.groupby(["suite", "dataset", "backend"], sort=True):
        shown = suite_shown(group.iloc[0])
        dataset = f"{shown}: {dataset}" if shown else dataset
        by_variant = {r["variant"]: r for _, r in group.iterrows()}
        if "B_scratch" not in by_variant or "B_on_A" not in by_variant:
            continue
        acc_b, acc_ba = by_variant["B_scratch"]["test_acc_mean"], by_variant["B_on_A"]["test_acc_mean"]
        if math.isnan(acc_b) or math.isnan(acc_ba) or acc_b == acc_ba == 1:
            factor = math.nan  # a side without an accuracy, or no error on either: no factor to give
        else:
            factor = (1 - acc_b) / (1 - acc_ba) if acc_ba < 1 else math.inf
        # no B-on-A error: the factor is unbounded, which "inf" alone read like a fault of the table
        shown = "unbounded (no B-on-A error)" if math.isinf(factor) else fmt(factor, ".2f")
        rows.append([str(dataset), str(backend), fmt(acc_b, ".4f"), fmt(acc_ba, ".4f"), shown])
    return rows


def regressions(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    return [r for r in rows if r.regressed]


def undecided_times(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    """Cases whose epoch time moved beyond the band but was not decided (too few epochs, an interval reaching back
    into the band, or p not below alpha: its note says which): a count of regressions alone read "0" beside a
    15-fold slowdown of a two-epoch smoke run. A ratio with an n/a verdict comes only from that: a side without
    steady epochs has no ratio; and a time of runs on other machines, which is not decided whatever it moved (listed
    apart: :func:`other_machine_times`)."""
    return [
        r
        for r in rows
        if r.in_both and r.time_verdict == "n/a" and not math.isnan(r.time_ratio) and not r.other_machines
    ]


def other_machine_times(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    """Cases whose epoch time was not decided because the runs timed them on other machines: one at ratio 1.000
    was listed as "beyond the band but not decided"."""
    return [r for r in rows if r.in_both and r.other_machines]


def undecided_accuracies(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    """Cases whose accuracy moved beyond the band and was not decided (no spread to decide it by, or an interval
    reaching 0: its note says which): the count line read "0 regression(s)" beside a collapse from 95 % to 10 %.
    An accuracy difference with an n/a verdict comes only from that."""
    return [r for r in rows if r.in_both and r.acc_verdict == "n/a" and not math.isnan(r.acc_diff_pp)]


def _undecided_clause(rows: Sequence[CaseComparison]) -> str:
    times = [f"{r.case} [{r.backend}] x{r.time_ratio:.3f}" for r in undecided_times(rows)]
    accuracies = [f"{r.case} [{r.backend}] {r.acc_diff_pp:+.2f} pp" for r in undecided_accuracies(rows)]
    elsewhere = [f"{r.case} [{r.backend}] x{r.time_ratio:.3f}" for r in other_machine_times(rows)]
    clause = ""
    if times:
        clause += f"; epoch time beyond the band but not decided (see the note) in {', '.join(times)}"
    if elsewhere:
        clause += (
            "; epoch time of other machines or thread counts, not decided (--times-across-machines) in "
            + ", ".join(elsewhere)
        )
    if accuracies:
        clause += "; accuracy beyond the band but not decided (see the note) in " + ", ".join(accuracies)
    return clause


def comparison_markdown(
    rows: list[CaseComparison], base_label: str, new_label: str, warnings: list[str], thresholds: Thresholds
) -> str:
    """``xfbench compare --markdown`` (and the pytest plugin's baseline report): verdicts per case and backend."""
    t = thresholds
    lines = [markdown_prose(f"# xfbench compare: {base_label} → {new_label}"), ""]
    lines += [f"> **WARNING:** {markdown_prose(w)}" for w in warnings]
    if warnings:
        lines.append("")
    lines.append(markdown_table(regression_header(t), [regression_cells(r) for r in rows]))
    regressed = [f"{r.case} [{r.backend}]" for r in regressions(rows)]
    verdict = (
        f"**{len(regressed)} regression(s)**"
        + markdown_prose((": " + ", ".join(regressed) if regressed else "") + _undecided_clause(rows))
        + "."
        if any(r.in_both for r in rows)
        # not a pass: "0 regression(s)"
        else f"**Nothing compared**: {markdown_prose(nothing_compared(base_label, new_label))}."
    )
    lines += ["", comparison_rules(t), "", verdict, ""]
    return "\n".join(lines)


def nothing_compared(base_label: str, new_label: str) -> str:
    return f"no case ran in both {base_label} and {new_label} (another suite, selection or backend?)"


def comparison_rules(t: Thresholds) -> str:
    """How ``xfbench compare`` decides, in one paragraph (markdown, and the report's history)."""
    machines = (
        "runs on other machines (CPU model or GPU) or thread counts are compared too (--times-across-machines)."
        if t.times_across_machines
        else "so is any time between runs on other machines (CPU model or GPU) or thread counts "
        "(--times-across-machines decides them)."
    )
    return (
        f"Epoch time: ratio of the steady-epoch medians new/base with a {percent(t.time_confidence)} hierarchical "
        "bootstrap interval (each run's trials resampled, then their epochs). A regression when the whole interval "
        f"lies above {t.time_ratio:g}, a one-sided Mann-Whitney U test over the epochs agrees (p < {t.alpha:g}) and, "
        "each side having two trials or more, Welch's test on the trials' log median epoch times agrees (p < "
        f"{t.trials_alpha:g}; the interval's level and this one follow --alpha; one trial on a side decides no time "
        "change: the noise between trials is unknown); "
        f"an improvement when it lies below 1/{t.time_ratio:g}, alike; either is marked `{SIGNIFICANT_MARK}`. A "
        f"ratio beyond the band that these do not decide is n/a, its note saying why; {machines} The band "
        "around 1 allows for the drift between two runs, which no interval from two runs can see "
        f"(docs/regressions.md). Accuracy: a drop of more than {t.accuracy_pp:g} pp with the 95 % interval of the "
        "difference below zero (the t interval of the per-seed differences over the seeds ok in both runs; "
        "Welch's t interval of the two runs' seeds, two or more a side, where none is common; where those in common "
        "differ alike and the runs have others, unchanged only if both views are within the threshold, else "
        "undecided); each standard deviation is at least one test image (at most 1 pp where the accuracies do not "
        "tell the test set's size), so differences all alike get an interval; one seed gives none and decides "
        "nothing. Trials: a regression when a larger share of "
        "new's trials failed, diverged or was skipped than of base's."
    )


def _algorithm(plan: TunePlan) -> str:
    """The search's algorithm as summary.md names it; optuna's with how many samples TPE drew at random first."""
    if plan.algorithm != "optuna":
        return plan.algorithm
    return f"optuna (TPE after {_counted(plan.tpe_startup or tpe_startup_samples(plan.num_samples), 'random sample')})"


def search_markdown(frame: pd.DataFrame, plan: TunePlan) -> str:
    """The search section of summary.md: every sampled config per backend, and each backend's pick."""
    table = search_table(frame, plan)
    asha = (
        f"ASHA (grace {plan.asha.grace_period}, reduction {plan.asha.reduction_factor}) per backend"
        if plan.asha
        else "no early stopping"
    )
    lines = [
        "## Search",
        "",
        f"{_algorithm(plan)} search, sampling seed {plan.sampling_seed}, "
        f"{_counted(plan.trials_per_experiment, 'trial')} per backend and case, metric {plan.metric} at each trial's "
        f"last epoch, {asha}. Each backend's search is its own Tune experiment; its best trial among those that ran "
        "all their epochs (one stopped early is compared only where all were) is re-run with "
        f"{_counted(plan.final_seeds, 'seed')} after the search's (variant "
        f"`{TUNED}`, tables above).",
        "",
    ]
    if table.empty:
        return "\n".join(lines + ["No search trial finished.", ""])
    header, rows = _search_rows(table, plan, "**best**")
    return "\n".join([*lines, markdown_table(header, rows), ""])


def _search_rows(table: pd.DataFrame, plan: TunePlan, best_mark: str) -> tuple[tuple[str, ...], list[list[str]]]:
    """The search table's header and rows (case, backend, sample order); each backend's pick marked ``best_mark``."""
    best = set(best_trials(table, plan).values())
    header = ("case", "backend", "sample", *plan.space.paths, "epochs run", plan.metric, "status", "pick")
    ordered = table.sort_values(["case", "backend", "sample"])
    return header, [_search_cells(r, plan, best, best_mark) for _, r in ordered.iterrows()]


def _search_cells(r: pd.Series, plan: TunePlan, best: set[str], best_mark: str) -> list[str]:
    status = f"{r['status']} (stopped early)" if r["stopped_early"] else str(r["status"])
    sampled = not pd.isna(r["sample"])  # else a skipped experiment's base: nothing was sampled
    return [
        str(r["case"]),
        str(r["backend"]),
        str(r["sample"]) if sampled else "none",
        *[search_cell(r[p]) if sampled else "" for p in plan.space.paths],
        str(r["epochs_run"]),
        search_cell(r[plan.metric]),
        status,
        best_mark if r["trial_id"] in best else "",
    ]


def search_cell(value: Any) -> str:
    """A sampled value or metric: floats to 4 significant digits, tuples (hidden sizes) as 64/32."""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------------------------------------------- terminal


def _rich_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    # cells as Text: rich would read a description's "[batch, channels]" as markup and drop it
    table = Table(title=Text(title))
    for h in header:
        table.add_column(Text(h))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def search_results_table(frame: pd.DataFrame, plan: TunePlan) -> TableData | None:
    """A tune's search as a table: every sampled point per backend, its metric, and each backend's pick."""
    table = search_table(frame, plan)
    if table.empty:
        return None
    header, rows = _search_rows(table, plan, "best")
    rerun = "stage" in frame and frame["stage"].eq("final").any()  # a tune stopped during its search re-ran none
    after = "re-run over seeds below" if rerun else "not re-run: no final stage in this run (stopped, or no sample ok)"
    title = f"Search: {plan.metric} at each trial's last epoch; pick: each backend's best, {after}"
    return TableData("search", title, header, tuple(tuple(row) for row in rows))


def print_run_summary(
    outcome: RunOutcome,
    output_format: str = "table",
    width: int | None = None,
    summary: Summary | None = None,
    search: TunePlan | None = None,
) -> None:
    """A tune's search first (``search``: its plan), then the per-backend table, the comparisons against the
    reference and their statistics, then where the results are: as text that fits ``width`` columns (default: the
    terminal's), or markdown / CSV / JSON."""
    summary = summary or outcome.summary
    if output_format in ("json", "csv"):
        print(machine_summary(summary, outcome, output_format, search))
        return
    searched = search_results_table(outcome.frame, search) if search is not None else None
    tables = ([searched] if searched else []) + run_tables(summary)
    if output_format == "md":
        print(markdown_tables(tables) + f"\n\nresults: {outcome.run_dir}")
        return
    width = width or shutil.get_terminal_size().columns
    stopped = (
        " — interrupted: the tables hold the trials that ended before it stopped"
        if outcome.status != "finished"
        else ""
    )
    print("\n".join(textwrap.wrap(f"xfbench — run {outcome.run_id}{stopped}", width)) + "\n")
    print("\n\n".join(render_text(t, width) for t in tables))
    written = ("results.parquet", "results.csv", "run.json", "summary.md", "report.html")
    files = ", ".join(name for name in written if (outcome.run_dir / name).is_file())  # --no-report: no report.html
    where = f"results: {outcome.run_dir}{f' ({files})' if files else ''}; wall time {outcome.wall_time_s:.1f}s"
    where += worker_processes(getattr(outcome, "frame", None))
    print("\n".join(textwrap.wrap(where, width, break_on_hyphens=False)))


def worker_processes(frame: pd.DataFrame | None) -> str:
    """ "; <backend> N trial(s) in M worker process(es)" per backend: whether the workers were reused (warm: a process
    runs several trials, its imports paid once) or fresh (--fresh-workers: one each); "" without worker rows."""
    if frame is None or frame.empty or "worker_pid" not in frame:
        return ""
    ran = frame[frame["worker_pid"].notna()]
    process = [c for c in ("host", "worker_pid") if c in ran]
    parts = [
        f"{backend} {rows['trial_id'].nunique()} trial(s) in {len(rows[process].drop_duplicates())} worker process(es)"
        for backend, rows in ran.groupby("backend", sort=False)
    ]
    return f"; {', '.join(parts)}" if parts else ""


MACHINE_TABLES = ("per_backend", "comparison", "statistics", "phases")


def machine_summary(summary: Summary, outcome: RunOutcome, output_format: str, search: TunePlan | None = None) -> str:
    """``--format json``: the run (id, folder, status, reference, wall time) and each summary table's rows, numbers
    as numbers (NaN as null), and a tune's search (every sampled point, each backend's pick); ``--format csv``: one
    row per (case, backend), the per-backend figures with the statistics against the reference beside them (empty
    for the reference), and the run's id, folder and status (run_status; a tune's final stage: its search is in
    summary.md and JSON)."""
    frames = {name: _counts_as_ints(getattr(summary, name).drop(columns=["suite_shown"], errors="ignore"))
              for name in MACHINE_TABLES}  # fmt: skip
    if len(summary.not_ok):  # which trials did not end ok, and why (the tables count them)
        frames["not_ok"] = _counts_as_ints(summary.not_ok[[c for c in NOT_OK_COLUMNS if c in summary.not_ok]])
    if output_format == "json":
        # status: an interrupted run's tables hold the trials that ended, which read like a finished run's on stdout
        run = {"run_id": outcome.run_id, "run_dir": str(outcome.run_dir), "status": outcome.status,
               "reference": summary.reference, "wall_time_s": outcome.wall_time_s}  # fmt: skip
        tables = {name: json.loads(frame.to_json(orient="records")) for name, frame in frames.items()}
        searched = search_table(outcome.frame, search) if search is not None else pd.DataFrame()
        if len(searched):
            best = set(best_trials(searched, search).values()) if search is not None else set()
            points = searched.assign(best=searched["trial_id"].isin(best))
            tables["search"] = json.loads(points.to_json(orient="records"))
        return json.dumps({**run, "tables": tables})
    flat = frames["per_backend"]
    if not frames["statistics"].empty:
        flat = flat.merge(frames["statistics"], on=CASE_COLUMNS, how="left")
    flat = _counts_as_ints(flat.assign(run_id=outcome.run_id, run_dir=str(outcome.run_dir), run_status=outcome.status))
    return flat.to_csv(index=False).rstrip("\n")


NOT_OK_COLUMNS = ("trial_id", "suite", "strategy", "model", "variant", "dataset", "backend", "seed", "status", "epoch",
                  "error")  # fmt: skip


def _counts_as_ints(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts held as floats beside NaN, as whole numbers: 27370, not 27370.0."""
    frame = frame.copy()
    for column in (COUNT_COLUMNS | {"seed", "epoch"}) & set(frame.columns):
        frame[column] = pd.to_numeric(frame[column]).round().astype("Int64")
    return frame


def comparison_table(rows: Sequence[CaseComparison], base_label: str, new_label: str, t: Thresholds) -> TableData:
    """``xfbench compare`` as a table with short headers (the units and the rule in the title)."""
    title = (
        f"{base_label} → {new_label}: epoch s medians base → new; ratio new/base [{percent(t.time_confidence)} CI] "
        f"({SIGNIFICANT_MARK}: beyond {1 / t.time_ratio:.3g}–{t.time_ratio:g}, decided); p one-sided Mann-Whitney; "
        f"test acc means base → new; Δ pp new − base [95 % CI] ({SIGNIFICANT_MARK}: beyond ±{t.accuracy_pp:g} pp, "
        "decided)"
    )
    return TableData("compare", title, REGRESSION_SHORT_HEADER, tuple(tuple(regression_cells(r)) for r in rows))


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=True) or [""]


def print_comparison(
    base: LoadedRun,
    new: LoadedRun,
    rows: list[CaseComparison],
    warnings: list[str],
    thresholds: Thresholds | None = None,
    width: int | None = None,
) -> None:
    """``xfbench compare``: warnings first, the verdict table fitted to ``width`` columns (default: the
    terminal's; regressions red, improvements green), then each regression on its own line and the count."""
    from rich.console import Console
    from rich.text import Text

    width = width or shutil.get_terminal_size().columns
    console = Console(width=max(width, 1), highlight=False, soft_wrap=True)
    for warning in warnings:
        for index, line in enumerate(_wrap(f"WARNING: {warning}", width)):
            console.print(Text(line, style="bold red" if index == 0 else "red"))
    styles = [
        "red" if r.regressed else ("green" if "improvement" in (r.time_verdict, r.acc_verdict) else None) for r in rows
    ]
    table = comparison_table(rows, base.label, new.label, thresholds or Thresholds())
    for line, row in render_lines(table, width):
        console.print(Text(line, style=(styles[row] if row is not None else None) or ""))
    for r in regressions(rows):
        for line in _wrap(regression_line(r), width):
            console.print(Text(line, style="red"))
    for line in _wrap(comparison_count(rows), width):  # its clause of undecided cases can name dozens
        console.print(Text(line))


def regression_line(r: CaseComparison) -> str:
    """One regression in words: each verdict with its figures where it has any, then the case's note (the trials
    that did not end ok, settings that differ: a reader of the line alone must see them too)."""
    time = f"time {r.time_verdict}" + (
        f" (x{r.time_ratio:.3f}, p={p_cell(r.time_p)})" if not math.isnan(r.time_ratio) else ""
    )
    accuracy = f"accuracy {r.acc_verdict}" + (f" ({r.acc_diff_pp:+.2f} pp)" if not math.isnan(r.acc_diff_pp) else "")
    trials = ", trials regression" if r.trials_verdict == "regression" else ""
    return f"regression: {r.case} [{r.backend}] {time}, {accuracy}{trials}" + (f"; {r.note}" if r.note else "")


def regression_figures(r: CaseComparison) -> str:
    """A compared case's verdicts with the figures of its row in the comparison table, the regressed ones first:
    the accuracy difference with its 95 % interval, the time ratio with its interval and p, the trials, the note.
    What the pytest plugin's test of a case that regressed against --baseline fails with."""
    ci = r.acc_ci_pp
    accuracy = (
        f"test accuracy {fmt(r.base_acc, '.4f')} → {fmt(r.new_acc, '.4f')}, Δ {fmt(r.acc_diff_pp, '+.2f')} pp"
        + ("" if math.isnan(ci[0]) else f" [95 % CI {ci[0]:+.2f}, {ci[1]:+.2f}]")
        + f": {r.acc_verdict}"
    )
    time = f"epoch time: {r.time_verdict}"
    if not math.isnan(r.time_ratio):
        low, high = r.time_ci
        interval = "" if math.isnan(low) else f" [{percent(r.time_confidence)} CI {low:.3f}, {high:.3f}]"
        time = (
            f"epoch time {fmt(r.base_time_s, '.4f')} s → {fmt(r.new_time_s, '.4f')} s, ratio {r.time_ratio:.3f}"
            f"{interval}, p {p_cell(r.time_p)}: {r.time_verdict}"
        )
    verdicts = [(r.acc_verdict, accuracy), (r.time_verdict, time), (r.trials_verdict, f"trials: {r.trials_verdict}")]
    shown = [text for verdict, text in sorted(verdicts, key=lambda v: v[0] != "regression")]
    return "; ".join(shown) + (f" ({r.note})" if r.note else "")


def comparison_count(rows: Sequence[CaseComparison]) -> str:
    """The count line: regressions among the cases both runs ran, and how many cases only one run has."""
    compared = sum(r.in_both for r in rows)
    one_sided = len(rows) - compared
    return (
        f"{len(regressions(rows))} regression(s) in {compared} case(s) run by both"
        + (f"; {one_sided} in one run only" if one_sided else "")
        + _undecided_clause(rows)
    )


def print_baselines(baselines: list[SavedBaseline], results_dir: Path) -> None:
    """``xfbench baseline list``: one row per baseline, fitted to the terminal (stacked when narrow)."""
    if not baselines:
        print(f"no baselines saved in {results_dir}: `xfbench baseline save NAME` saves the newest run")
        return
    rows = tuple(
        (
            b.name,
            b.machine_key,
            b.saved,
            b.source_run or "?",
            ", ".join(f"{k} {v}" for k, v in sorted(b.framework_versions.items())),
        )
        for b in baselines
    )
    title = f"Baselines in {results_dir / 'baselines'} (machine: CPU, GPU, threads)"
    table = TableData("baselines", title, ("name", "machine", "saved", "from run", "versions"), rows, 1)
    print(render_text(table, shutil.get_terminal_size().columns))


def history_tables(history: History, metric: str, results_dir: str | Path) -> list[TableData]:
    """``xfbench history`` as tables: the runs, the metric per (case, backend), one column per run, a value
    marked where the case's settings changed from the run before, then what changed."""
    listing = tuple((r.run_id, r.started, r.git_commit, r.status, str(r.trials)) for r in history.runs)
    title = f"runs in {results_dir} (trials: each run's every trial, a tune's search samples too)"
    tables = [TableData("runs", title, tuple(HISTORY_RUNS_HEADER), listing, 1)]
    table = history.table
    if not table.empty:
        changed = {(c.case, c.backend, c.run_id) for c in history.changes}
        unfinished = {r.run_id for r in history.runs if r.status in UNFINISHED_STATUSES}
        # a run that did not finish has the epochs and trials it got to: its column says so
        header = ("case", "backend", *[f"{c} ({UNFINISHED})" if c in unfinished else str(c) for c in table.columns])
        # the index is (case, backend); a metric missing in a run (NaN) is an empty cell
        trend = tuple(
            (
                str(case),
                str(backend),
                *[
                    _trend_cell(
                        v, (case, backend, run) in history.not_ok, history.untimed.get((case, backend, run), "")
                    )
                    + _partly_ok_mark(history.partly_ok.get((case, backend, run), ""))
                    + (f" {SETTINGS_MARK}" if (case, backend, run) in changed else "")
                    for run, v in zip(table.columns, values, strict=True)
                ],
            )
            for (case, backend), values in zip(table.index, table.to_numpy().tolist(), strict=True)
        )
        note = _trend_note(bool(changed), bool(history.partly_ok))
        tables.append(
            TableData(
                "trend", f"{metric} per case, {HISTORY_VALUES[metric]} (oldest → newest)", header, trend, note=note
            )
        )
    if history.changes:
        rows = tuple((c.run_id, c.case, c.backend, c.what) for c in history.changes)
        title = (
            f"{SETTINGS_MARK} settings changed from the run before (or its machine, threads, framework version): the "
            "metric's change may be theirs, not the code's"
        )
        tables.append(TableData("settings_changes", title, ("run", "case", "backend", "what changed"), rows, 3))
    if history.unreadable:  # listed "unreadable" among the runs, and why here: the others are shown as ever
        title = "runs left out, their files unreadable (move them out of the folder to leave them out of the list)"
        tables.append(TableData("unreadable", title, ("run", "why"), tuple(history.unreadable), 1))
    return tables


def _trend_cell(value: float, not_ok: bool, untimed: str = "") -> str:
    """A history value; where the case has none, ``not ok`` if its trials ran and none ended ok (failed, diverged,
    skipped), ``untimed`` (why: ``warm-up only``, ``not timed (features from the cache)``) if they ended ok with
    nothing timed, else empty (the run did not have the case)."""
    if value == value:  # samples/s as whole numbers: .4g wrote 17250 as 1.725e+04 beside 9813
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "not ok" if not_ok else untimed


def _trend_note(changed: bool, partly_ok: bool) -> str:
    """What the trend's marks mean, those it has: † (a case that ran otherwise than in the run before), ``(2/3 ok)``."""
    notes = []
    if changed:
        notes.append(
            f"{SETTINGS_MARK}: the case ran with other settings, seeds, machine, threads or framework version than in "
            "the run before (listed below)"
        )
    if partly_ok:
        notes.append("(2/3 ok): the value is of the trials that ended ok; the others failed, diverged or were skipped")
    return "; ".join(notes)


def _partly_ok_mark(ok_of_all: str) -> str:
    """`` (2/3 ok)`` beside a value that covers only the trials that ended ok (the others failed, diverged or were
    skipped), else ""."""
    return f" ({ok_of_all} ok)" if ok_of_all else ""


def print_history(history: History, metric: str, results_dir: str | Path, width: int | None = None) -> None:
    """``xfbench history``: the runs, then the metric per (case, backend), fitted to ``width`` columns."""
    width = width or shutil.get_terminal_size().columns
    print("\n\n".join(render_text(t, width) for t in history_tables(history, metric, results_dir)))


def catalogue_rows() -> list[list[str]]:
    """(kind, name, description) of everything ``xfbench list`` shows."""
    from harness.config import OPTIMIZER_DESCRIPTIONS, OPTIMIZERS
    from harness.data.registry import DATASETS
    from harness.models import MODELS
    from harness.strategies import describe_strategies
    from harness.suites import SUITES
    from harness.weights import INITIALIZERS

    rows = [
        ["suite", n, f"{s.description} [{_counted(len(s.cases), 'case')} × {_counted(s.seeds, 'seed')}]"]
        for n, s in SUITES.items()
    ]
    rows += [["strategy", n, d] for n, d in describe_strategies().items()]
    rows += [["model", n, entry.description] for n, entry in MODELS.items()]
    rows += [["dataset", n, d] for n, (_, d) in DATASETS.items()]
    rows += [["backend", n, "adapter in backends/" + n] for n in BACKENDS]
    rows += [["optimizer", n, OPTIMIZER_DESCRIPTIONS[n]] for n in OPTIMIZERS]
    rows += [["initializer", n, init.description] for n, init in INITIALIZERS.items()]
    return rows


def print_catalogue(kinds: Sequence[str] = ()) -> None:
    """``xfbench list [KIND ...]``: suites, strategies, models, datasets, backends, optimizers, initializers, or
    the ``kinds`` (catalogue_rows' first column) only."""
    from rich.console import Console

    rows = [row for row in catalogue_rows() if not kinds or row[0] in kinds]
    Console().print(_rich_table("xfbench catalogue", ["kind", "name", "description"], rows))


class RichProgress:
    """Live display (harness.runner.Progress): trials done / total, elapsed time, the latest epoch seen."""

    def __init__(self, max_failures: int = 0, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)  # rich's Console: stderr's, or a test's
        self._progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", markup=False),  # a trial id holds a user suite's variant, verbatim
            console=self.console,
            transient=False,
        )
        self._task: Any = None  # rich's TaskID, once started
        self._max_failures = max_failures  # --max-failures: how often Tune retries a failed trial

    def start(self, total_trials: int) -> None:
        self._progress.start()
        # Ray is up by now (the run starts its progress inside its Ray session): what comes before the first row is
        # the workers' start and the frameworks' imports, or, on a cluster, a node that offers what a trial asks for
        self._task = self._progress.add_task("waiting for the first trial's first epoch…", total=total_trials)

    def extend(self, more_trials: int) -> None:
        self._progress.update(self._task, total=(self._progress.tasks[0].total or 0) + more_trials)

    def row(self, row: dict[str, Any]) -> None:
        if row["status"] in ("failed", "skipped"):
            from rich.text import Text

            note = retry_note(row, self._max_failures)
            # the error as plain text: as markup, "[batch, channels]" vanished and "[/home/u/w.pth]" raised in
            # Tune's callback, which ended the whole run
            self.console.print(
                Text.assemble((f"trial {row['trial_id']} {row['status']}{note}:", "red"), " ", row["error"])
            )
            return
        if row.get("val_acc") is None or row.get("epoch_time_s") is None:
            return
        desc = f"{row['trial_id']} epoch {row['epoch']}: val_acc {row['val_acc']:.3f}, {row['epoch_time_s']:.2f}s"
        self._progress.update(self._task, description=desc)

    def trial_done(self, trial_id: str) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()

    def warn(self, text: str) -> None:
        self.console.print(text, style="yellow", markup=False, highlight=False)


def run_progress(max_failures: int) -> RichProgress | TrialLines:
    """A run's progress: rich's live bar on a terminal; elsewhere (a CI log, output to a file) a line per ended
    trial, as the pytest plugin prints: rich drew its bar there once, at the end, cut to 80 columns."""
    if sys.stderr.isatty():
        return RichProgress(max_failures)
    return TrialLines(lambda line: print(line, file=sys.stderr, flush=True), max_failures)


# ---------------------------------------------------------------------------------------------------- text tables


@dataclass(frozen=True)
class TableData:
    """A table as cells: the terminal draws it to fit, ``--format md|csv|json`` prints it for machines."""

    name: str  # a short key (json, csv section)
    title: str  # units go here, so headers stay short
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    key_columns: int = 2  # the columns that name a row (the heading of a row in the stacked layout)
    note: str = ""  # how to read it (summary.md's paragraph): under the table in the HTML report and ``--format md``


def _per_backend_short(row: pd.Series) -> tuple[str, ...]:
    """The terminal's per-backend row (and report.html's, ``--format md``'s): the case in one cell, mean and std in
    two."""
    return (
        case_name(row),
        str(row["backend"]),
        _status_cell(row, ok_word=""),
        fmt(row["test_acc_mean"], ".4f"),
        "1 seed" if _one_seed(row) else fmt(row["test_acc_std"], ".4f"),  # as summary.md: one seed has no spread
        fmt(row["val_acc_mean"], ".4f"),  # as summary.md: the notebooks' bars are on validation accuracy
        _epoch_time_cell(row),
        fmt_seconds(row["warmup_time_s"], ".2f"),
        _timed_cell(row, "samples_per_s_median", ",.0f"),
        fmt(row["params"], ",.0f"),  # as summary.md: report.html, drawn from these rows, had no parameter count
        mmac_cell(row["forward_macs"]),
        _timed_cell(row, "train_gflops", ",.2f"),
    )


# the per-backend table's columns in the terminal, ``--format md`` and report.html (summary.md: PER_BACKEND_HEADER)
PER_BACKEND_SHORT_HEADER = (
    "case", "backend", "ok", "acc", "±", "val acc", "epoch s", "warm-up s", "samples/s", "params", "MMAC", "GFLOP/s",
)  # fmt: skip


def mmac_cell(macs: float) -> str:
    """Forward MACs in millions: two decimals, or two significant digits below 0.1 M (a small MLP's 0.0047 M read
    0.00)."""
    millions = macs / 1e6
    return fmt(millions, ",.2f" if not millions < 0.1 else ".2g")


def run_tables(summary: Summary) -> list[TableData]:
    """Every end-of-run table with short headers and the units in the titles."""
    reference = summary.reference
    tables = [
        TableData(
            "per_backend",
            "Per backend: test acc mean ± std over seeds; val acc mean over the ok trials' last epochs; epoch time s "
            "and samples/s medians over steady epochs, warm-up s over first epochs (deep_features: the extractor's "
            "warm-up); params: the model's parameters; MMAC: a forward pass's MACs per sample; GFLOP/s: 2 × the timed "
            "step's MACs per sample (step_macs: forward, and backward where weights train; deep_features: the forward "
            "pass to its layer) × samples/s",
            PER_BACKEND_SHORT_HEADER,
            tuple(_per_backend_short(r) for _, r in summary.per_backend.iterrows()),
            note=run_note(summary),
        )
    ]
    settings = settings_rows(summary.per_backend)
    if settings:
        title = "Settings: what each case ran with away from the defaults"
        tables.append(TableData("settings", title, ("case", "backend", "settings"), settings, note=SETTINGS_NOTE))
    gpus = gpu_rows(summary.per_backend)
    if gpus:
        title = "GPU: the device, and the most memory its trials' framework held in tensors"
        tables.append(TableData("gpu", title, GPU_HEADER, gpus, note=GPU_NOTE))
    tables += _comparison_tables(summary)
    speed = speed_mode_rows(summary.per_backend)
    if speed:
        title = "Speed modes: steady samples/s (median), ratio to the model's fastest mode, warm-up epoch s apart"
        header = ("model", "backend mode", "samples/s", "÷ fastest", "warm-up s")
        tables.append(TableData("speed_modes", title, header, speed, note=SPEED_NOTE))
    phases = phase_rows(summary.phases)
    if phases:
        title = "Epoch time per phase: medians over steady epochs, for cases that train in more than one phase"
        tables.append(TableData("phases", title, PHASE_HEADER, phases, note=PHASE_NOTE))
    mc = mc_dropout_rows(summary.per_backend)
    if mc:
        title = "MC dropout: test acc, the passes' mean-probability acc, its predicted class's mean prob and std"
        tables.append(TableData("mc_dropout", title, MC_HEADER, mc, note=MC_NOTE))
    if len(summary.statistics):
        rows = tuple(tuple(stats_cells(r)) for _, r in summary.statistics.iterrows())
        title = (
            f"Statistics vs {reference}: paired acc difference pp ({reference} − backend) and epoch-time ratio "
            f"({reference} / backend: above 1, {reference} is slower) with 95 % intervals ({SIGNIFICANT_MARK}: the "
            "interval leaves out 0 pp / ratio 1, and for time the trials differ)"
        )
        columns = ("case", "backend", "seeds", "Δ acc pp", "time ratio", "note")
        tables.append(TableData("statistics", title, columns, rows, note=STATS_NOTE.format(reference=reference)))
    return tables + _closing_tables(summary)


PAIR_SHORT_HEADER = ("case", "Δ acc pp", "time", "samples/s")


def _comparison_tables(summary: Summary) -> list[TableData]:
    """A table per backend against the reference; one without rows says why in its title, as summary.md says it
    (the terminal, ``--format md`` and report.html left it out without a word)."""
    reference = summary.reference
    others = compared_backends(summary)
    if not others:
        title = f"Against the reference backend ({reference}): {uncompared(summary)}"
        return [TableData(f"{reference}_vs_none", title, PAIR_SHORT_HEADER, (), 1)]
    tables = []
    for backend in others:
        pairs = _pair_rows(summary, backend)
        noted = _noted(pairs)
        rows = tuple(
            (case_name(r), *pair_cells(r)[3:], *([str(r["note"])] if noted else [])) for _, r in pairs.iterrows()
        )
        difference = f"{reference} − {backend}"
        title = f"{reference} vs {backend}: acc difference pp ({difference}); ratios {reference} / {backend}"
        title = title if rows else f"{reference} vs {backend}: {uncompared(summary, backend)}"
        columns = (*PAIR_SHORT_HEADER, *(("note",) if noted else ()))
        tables.append(TableData(f"{reference}_vs_{backend}", title, columns, rows, 1))
    return tables


def _closing_tables(summary: Summary) -> list[TableData]:
    """The tables summary.md ends with, for the terminal, ``--format`` and the HTML report alike."""
    tables = []
    inexact = inexact_rows(summary.per_backend)
    if inexact:
        tables.append(TableData("inexact", "Not computed exactly alike", ("case", "why"), inexact, 1, INEXACT_NOTE))
    not_ok = not_ok_rows(summary.not_ok)
    if not_ok:
        tables.append(TableData("not_ok", "Trials not ok: which, and why", NOT_OK_HEADER, not_ok, note=NOT_OK_NOTE))
    transfer = transfer_rows(summary.per_backend)
    if transfer:
        title = "Transfer A → B (S4b): B from scratch against B on A, error reduction error_B / error_BonA"
        tables.append(
            TableData("transfer", title, ("dataset", "backend", "B", "B on A", "error ÷"), tuple(map(tuple, transfer)))
        )
    return tables


SPEED_MODES = tuple(label for label, _ in SPEED_VARIANTS)


def speed_mode_rows(per_backend: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    """The speed matrix (variants named as the speed_matrix suite's modes): per model, each backend's mode with its
    steady samples/s, the ratio to the fastest mode of that model, and the warm-up epoch's seconds apart."""
    if per_backend.empty or "warmup_time_s" not in per_backend.columns:
        return ()
    modes = per_backend[per_backend["variant"].isin(SPEED_MODES)]
    if modes["variant"].nunique() < 2:
        return ()
    rows = []
    for (model, dataset), group in modes.groupby(["model", "dataset"], sort=True):
        ordered = group.sort_values("samples_per_s_median", ascending=False)
        fastest = ordered.iloc[0]
        for _, r in ordered.iterrows():
            # A mode with no steady epoch (a one-epoch run) has only its warm-up to give: marked, as the main tables
            # mark theirs, and so is any ratio with it on either side.
            warmup_only = WARMUP_ONLY in (r["timing_basis"], fastest["timing_basis"])
            ratio = r["samples_per_s_median"] / fastest["samples_per_s_median"]
            rows.append(
                (
                    f"{model_label(str(model))} · {dataset}",
                    f"{r['backend']} {r['variant']}",
                    _timed_cell(r, "samples_per_s_median", ",.0f"),
                    fmt(ratio, ".2f") + _warmup_mark(warmup_only and ratio == ratio),
                    fmt_seconds(r["warmup_time_s"], ".2f"),
                )
            )
    return tuple(rows)


_GLUE = "\x00"  # a space textwrap does not break at (it breaks at ASCII whitespace only)


def render_text(table: TableData, width: int) -> str:
    """Aligned columns when they fit ``width``; otherwise each row stacked as ``header value`` pairs under its
    name, wrapped to ``width``. No line is longer than ``width`` either way (long words are folded)."""
    return "\n".join(line for line, _ in render_lines(table, width))


def render_lines(table: TableData, width: int) -> list[tuple[str, int | None]]:
    """:func:`render_text` line by line, each with the index of the row it shows (None: title, header)."""
    lines: list[tuple[str, int | None]] = [(line, None) for line in _wrap(table.title, width)]
    widths = [max([len(h), *(len(r[i]) for r in table.rows)]) for i, h in enumerate(table.header)]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
        lines += [(line(table.header), None), ("  ".join("-" * w for w in widths), None)]
        return lines + [(line(r), index) for index, r in enumerate(table.rows)]
    for index, row in enumerate(table.rows):
        name = _wrap(" · ".join(row[: table.key_columns]), width)
        # a header stays on the line of its value's start, and a value (a run id) is not split at its hyphens
        pairs = [
            f"{h.replace(' ', _GLUE)}{_GLUE}{c}"
            for h, c in zip(table.header[table.key_columns :], row[table.key_columns :], strict=True)
            if c
        ]
        body = textwrap.wrap(
            "   ".join(pairs), width, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
        )
        lines += [(text.replace(_GLUE, " "), index) for text in name + body]
    return lines


def markdown_tables(tables: Sequence[TableData]) -> str:
    """``--format md``: each table under its title, the paragraph on how to read it below."""
    return "\n\n".join(
        f"## {t.title}\n\n" + markdown_table(t.header, t.rows) + (f"\n\n{t.note}" if t.note else "") for t in tables
    )
