"""The cross-backend comparison: per case and backend, accuracy over seeds and steady-state speed, and every
backend against the reference backend. Tables are drawn by :mod:`harness.reporting`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.backbone import backbone_variant
from harness.backend import BACKENDS, REFERENCE_BACKEND
from harness.config import TUNED, case_label
from harness.model_cost import FLOPS_PER_MAC, TRAINING_PASSES, achieved_gflops
from harness.stages import STAGE_SEARCH

# A case is a suite's: two suites of one run may name the same (strategy, model, variant, dataset) with other
# settings (s1_alexnet_quick and zoo_quick both train scratch-alexnet-fashion_mnist), and must not be pooled.
CASE_KEYS = ["suite", "strategy", "model", "variant", "dataset"]
WARMUP_ONLY = "warm-up only"  # a case's timing_basis when no steady epoch ran: its figures time the warm-up
# MC dropout's final metrics (harness.mc_dropout), averaged over a case's seeds as ``<column>_mean``.
MC_COLUMNS = ("mc_test_acc", "mc_mean_prob", "mc_pred_std")


def with_suite(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a suite column (rows written without one belong to no suite)."""
    return frame if "suite" in frame.columns else frame.assign(suite="")


def several_suites(frame: pd.DataFrame) -> bool:
    """Whether ``frame``'s rows hold more than one suite: then tables and plots name each case's suite."""
    return frame["suite"].nunique(dropna=False) > 1


def suite_shown(row: pd.Series | Mapping[str, Any]) -> str:
    """A summary row's ``suite_shown``: its suite where the run holds several, else ''."""
    shown = row.get("suite_shown")
    return shown if isinstance(shown, str) else ""


def case_title(row: pd.Series | Mapping[str, Any]) -> str:
    """A summary row's case as tables and plots name it: strategy-model[+variant]-dataset, as in trial ids, after
    ``suite:`` where the run holds several suites (the row's ``suite_shown``)."""
    label = case_label(str(row["strategy"]), str(row["model"]), str(row["variant"] or ""), str(row["dataset"]))
    return f"{suite_shown(row)}:{label}" if suite_shown(row) else label


@dataclass(frozen=True)
class Summary:
    per_backend: pd.DataFrame  # one row per (case, backend)
    comparison: pd.DataFrame  # one row per (case, backend other than the reference) where both ran
    reference: str = REFERENCE_BACKEND  # the backend every other one is compared with
    # per (case, backend other than the reference): paired accuracy difference and time ratio with intervals
    statistics: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per (case, backend, phase) of the cases that train in more than one phase: steady epoch time and samples/s
    phases: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the final row of each trial whose last attempt did not end ok (failed, diverged, skipped): which, and why
    not_ok: pd.DataFrame = field(default_factory=pd.DataFrame)


def compared_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows two runs are compared and trended on: not a tune run's search samples, which would pair unrelated
    configurations by their sample number (its final stage is each backend's best, the head-to-head)."""
    if "stage" not in frame:
        return frame
    return frame[~frame["stage"].eq(STAGE_SEARCH).fillna(False).astype(bool)]  # rows without a stage are kept


def recorded_text(value: Any) -> str:
    """A value a row recorded, as text ('' where none was recorded); a whole number without a '.0' (parquet reads
    an int column holding a gap back as floats)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def last_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    """Each trial's rows from its last attempt only: a retried trial's earlier attempts stay in the table as history."""
    if frame.empty or "attempt" not in frame.columns:
        return frame
    attempt = frame["attempt"].astype("Int64").fillna(0)
    return frame[attempt == attempt.groupby(frame["trial_id"]).transform("max")]


def why_not_ok(final: Mapping[Any, Any] | pd.Series) -> str:
    """Why a trial did not end ok, from its final row: its error's first line, or for a diverged trial (whose row
    holds no error) the epoch and the loss that stopped being finite."""
    error = final.get("error")
    why = str(error).strip().splitlines()[0] if isinstance(error, str) and error.strip() else ""
    epoch = final.get("epoch")
    if not why and final.get("status") == "diverged" and epoch is not None and pd.notna(epoch):
        # None where a row came through JSON without the value (a search sample a resume replays)
        losses = (final.get(c) for c in ("train_loss", "val_loss"))
        train, val = (math.nan if value is None else float(value) for value in losses)
        why = f"at epoch {int(epoch)}, training loss {train:.4g}"
        if math.isfinite(train):  # the validation loss stopped being finite
            why = f"at epoch {int(epoch)}, validation loss {val:.4g} (training loss {train:.4g})"
    return why


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last row of each trial's last attempt (carries test_acc and the final status)."""
    frame = last_attempts(frame)
    if frame.empty:
        return frame
    ordered = frame.assign(_order=np.arange(len(frame)))
    return (
        ordered.sort_values(["trial_id", "_order"]).groupby("trial_id", as_index=False).tail(1).drop(columns="_order")
    )


def framework_versions(frame: pd.DataFrame) -> dict[str, str]:
    """backend -> the framework versions its workers recorded (several: joined by commas). Rows the driver writes
    (a dead worker's failure, a skipped trial) hold none and are left out, so they never stand for a backend's
    version."""
    if not len(frame):
        return {}
    recorded = frame[frame["framework_version"].fillna("").astype(str) != ""]
    # every version a backend's workers recorded: a run resumed after an upgrade, or a cluster's nodes, may mix them
    versions = {
        str(backend): ",".join(sorted({str(v) for v in rows}))
        for backend, rows in recorded.groupby("backend")["framework_version"]
    }
    # deep_features' heads are scikit-learn's in every backend: its version decides their accuracy too
    learn = sorted({str(v) for v in detail_values(frame, "scikit_learn_version")})
    return versions | ({"scikit-learn": ",".join(learn)} if learn else {})


def detail_values(frame: pd.DataFrame, key: str) -> list[Any]:
    """``key``'s value in each row's ``details_json`` that has it (a deep_features row's scikit-learn version, its
    extractor's warm-up seconds)."""
    if "details_json" not in frame.columns or not len(frame):
        return []
    values = []
    for text in frame["details_json"].dropna():
        try:
            details = json.loads(text) if text else {}
        except (TypeError, ValueError):  # an edited table's: it tells nothing
            continue
        if isinstance(details, dict) and key in details:
            values.append(details[key])
    return values


def trained_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Every epoch row that may time a case, warm-up included: the last attempt's ok rows of a trial that ended ok.
    A trial that failed or diverged later kept its earlier epochs' ok rows: they timed the case beside "ok 1/2,
    1 failed" as if it had run, and compare drew it as one of the case's trials."""
    frame = last_attempts(frame)
    if frame.empty:
        return frame
    ended = frame.groupby("trial_id")["status"].transform("last")  # the status of the trial's last row
    return frame[frame["status"].eq("ok").fillna(False).astype(bool) & (ended == "ok")]


def steady_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count for steady-state speed: :func:`trained_rows` that are not a phase's warm-up epoch."""
    trained = trained_rows(frame)
    return trained[trained["warmup"] == False] if len(trained) else trained  # noqa: E712 (nullable booleans)


def phase_names(rows: pd.DataFrame) -> pd.Series:
    """Each row's phase as text ('' where none was recorded)."""
    return rows["phase"].fillna("").astype(str) if "phase" in rows else pd.Series("", index=rows.index)


def timed_phase(rows: pd.DataFrame) -> str | None:
    """The phase a case's one epoch time stands for, where it trains in several (transfer's frozen then unfrozen
    layers: two workloads, whose pooled epochs have two peaks, a median between them and an interval from one to the
    other): the phase with the most steady epochs, on a tie the later one (the one the case ends in, training the
    most layers), as its benchmark records it (harness.benchrecord). None for a case of one phase. ``rows``: one
    case's."""
    trained = trained_rows(rows)
    phases = list(dict.fromkeys(phase_names(trained))) if len(trained) else []
    if len(phases) < 2:
        return None
    steady = steady_rows(rows)
    counts = phase_names(steady).value_counts() if len(steady) else pd.Series(dtype=int)
    return max(phases, key=lambda p: (int(counts.get(p, 0)), phases.index(p)))


def in_timed_phase(rows: pd.DataFrame) -> pd.DataFrame:
    """One case's ``rows`` of its :func:`timed_phase` (all of them for a case of one phase)."""
    phase = timed_phase(rows)
    return rows if phase is None else rows[phase_names(rows) == phase]


def timing_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows a case's epoch time and samples/s come from, and their basis: the steady epochs, or where every
    phase had one epoch, the trained rows' warm-up epochs (:data:`WARMUP_ONLY`, said wherever the figure shows)."""
    steady = steady_rows(frame)
    return (steady, "steady") if len(steady) else (trained_rows(frame), WARMUP_ONLY)


def summarize(frame: pd.DataFrame, reference: str = REFERENCE_BACKEND) -> Summary:
    rows = []
    frame = with_suite(frame)
    named = several_suites(frame)
    finals = final_rows(frame)
    for keys, group in frame.groupby(CASE_KEYS + ["backend"], sort=True, dropna=False):
        trial_finals = finals[finals["trial_id"].isin(group["trial_id"].unique())]
        ok = trial_finals[trial_finals["status"] == "ok"]
        accs = ok["test_acc"].astype(float).dropna().to_numpy()
        timing, basis = timing_rows(in_timed_phase(group))
        samples_per_s = float(timing["samples_per_s"].median()) if len(timing) else math.nan
        macs = _first(group, "forward_macs")
        case = dict(zip(CASE_KEYS + ["backend"], keys, strict=True))
        rows.append(
            {
                **case,
                "suite_shown": case["suite"] if named else "",
                "trials": int(trial_finals["trial_id"].nunique()),
                "ok": int(len(ok)),
                "failed": int((trial_finals["status"] == "failed").sum()),
                "diverged": int((trial_finals["status"] == "diverged").sum()),
                "skipped": int((trial_finals["status"] == "skipped").sum()),
                "test_acc_mean": float(accs.mean()) if len(accs) else math.nan,
                "test_acc_std": float(accs.std(ddof=1)) if len(accs) > 1 else math.nan,  # one seed: no spread known
                # the last epoch's: the notebooks' bars (S1's "val accuracy > 40 %") are on the validation split
                "val_acc_mean": _mean(ok, "val_acc"),
                "epoch_time_s_median": float(timing["epoch_time_s"].median()) if len(timing) else math.nan,
                "samples_per_s_median": samples_per_s,
                "params": _first(group, "params"),
                "forward_macs": macs,
                "train_gflops": _median_gflops(timing, str(case["strategy"]), macs),
                "timing_basis": basis if len(timing) else "none",
                "timed_phase": timed_phase(group) or "",
                "warmup_time_s": _warmup_seconds(group),
                **{f"{c}_mean": _mean(ok, c) for c in MC_COLUMNS},
                "inexact": _text(group, "inexact"),
                "settings": case_settings(group),
                "gpu": _text(group, "gpu"),
                "gpu_peak_mib": _most(group, "gpu_peak_mib"),
            }
        )
    per_backend = pd.DataFrame(rows)
    from harness.statistics import case_statistics  # it reads rows with this module's helpers: import when used

    statistics = case_statistics(frame, reference)
    comparison = _with_pick_notes(_paired(_compare(per_backend, reference), statistics), frame)
    return Summary(per_backend, comparison, reference, statistics, phase_times(frame), _not_ok(finals, named))


def _paired(comparison: pd.DataFrame, statistics: pd.DataFrame) -> pd.DataFrame:
    """The comparison's accuracy difference over the seeds that ended ok in both backends (the statistics' paired
    mean), where there are any: a seed that failed or diverged on one side would otherwise leave the other side's
    mean over more seeds, and the difference would be partly which seeds were averaged."""
    if comparison.empty or statistics.empty:
        return comparison
    keys = [*CASE_KEYS, "backend"]
    paired = statistics[[*keys, "acc_diff_pp"]].rename(columns={"acc_diff_pp": "_paired"})
    merged = comparison.merge(paired, on=keys, how="left", indicator=True)
    # no seed ok in both: no difference (n/a, the statistics' note says why), not the unpaired means'
    both = merged["_merge"].eq("both")
    merged["acc_diff_pp"] = merged["_paired"].astype(float).where(both, merged["acc_diff_pp"])
    return merged.drop(columns=["_paired", "_merge"])


# A tune's head-to-head pairs each backend's re-runs of its own pick: where the picks differ, the speed figures set
# one workload against another (batch size, width, optimizer), which the comparison and statistics rows say.
PICKS_DIFFER = "each backend's pick differs in {paths}: the time and samples/s ratios compare different workloads"


def picks_differ(case: pd.DataFrame, reference: str, backend: str) -> list[str]:
    """The searchable options (harness.search) whose values differ between the two backends' tuned trials of a
    case (a tune's final stage: each backend's re-runs of its best sample), by path; [] for a case of other trials,
    or one where a backend has no tuned trial, or a frame without configs (rows of a run recorded before them)."""
    if "config_json" not in case.columns:
        return []
    values = []
    for side in (reference, backend):
        texts = case.loc[case["backend"] == side, "config_json"].dropna()
        config = json.loads(texts.iloc[0]) if len(texts) else {}
        if not config.get("tuned"):
            return []
        values.append(_searchable_values(config))
    mine, theirs = values
    return sorted(path for path in mine.keys() | theirs.keys() if mine.get(path) != theirs.get(path))


def _searchable_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded config's value at each path a search may vary (``optimizer.lr``, ``batch_size``)."""
    from harness.search import SEARCHABLE_GROUPS, SEARCHABLE_SCALARS  # search reads configs: import when used

    values = {name: config.get(name) for name in SEARCHABLE_SCALARS}
    for group in SEARCHABLE_GROUPS:
        values.update({f"{group}.{name}": value for name, value in (config.get(group) or {}).items()})
    return values


def picks_note(case: pd.DataFrame, reference: str, backend: str) -> str:
    """:data:`PICKS_DIFFER` for a case whose backends' tuned configs differ, else ''."""
    paths = picks_differ(case, reference, backend)
    return PICKS_DIFFER.format(paths=", ".join(paths)) if paths else ""


def _with_pick_notes(comparison: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The comparison with a ``note`` column: :func:`picks_note` of each row's case ('' where there is none)."""
    if comparison.empty:
        return comparison
    tuned = frame[frame["variant"].astype(str).str.endswith(TUNED)]  # a tune's final trials: the pick's re-runs
    cases = {tuple(keys): case for keys, case in tuned.groupby(CASE_KEYS, sort=False, dropna=False)}
    notes = []
    for _, row in comparison.iterrows():
        case = cases.get(tuple(row[key] for key in CASE_KEYS))
        notes.append(picks_note(case, row["reference"], row["backend"]) if case is not None else "")
    return comparison.assign(note=notes)


def case_settings(group: pd.DataFrame) -> str:
    """What a (case, backend) ran with away from the defaults (harness.compare.case_settings)."""
    from harness.compare import case_settings as settings  # compare reads rows with this module's helpers

    return settings(group)


def phase_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Steady epoch time, samples/s and achieved GFLOP/s per phase (medians over the seeds' steady epochs; a frozen
    phase's step costs fewer MACs, so its GFLOP/s says whether it is faster by the work it skips) of every (case,
    backend)
    that trains in more than one phase (S4's frozen then unfrozen layers), and of every S4 case (strategy
    ``transfer``): the table pools a trial's phases. An S4 case whose backbone was trained in this run gets that
    source phase first, named with the framework that trained it: one backbone serves both backends, so both rows
    show the same source epochs; one from the cache has no source row, its own phases still listed."""
    frame = with_suite(frame)
    rows: list[dict[str, Any]] = []
    if frame.empty or "phase" not in frame.columns:  # phases of warm-up epochs only still make rows, marked so
        return pd.DataFrame(rows)
    named = several_suites(frame)
    # every phase a trial trained, its warm-up-only ones too (a one-epoch frozen phase), in the order it ran them
    trained = trained_rows(frame)
    trained = trained[trained["epoch"].notna()] if len(trained) else trained
    for keys, group in trained.groupby(CASE_KEYS + ["backend"], sort=True, dropna=False):
        phases = [(phase, _phase_epochs(epochs)) for phase, epochs in group.groupby("phase", sort=False)]
        source = _source_phase(trained, group)
        if source is not None:
            phases.insert(0, source)
        # S4 asks for each phase's epoch time: a transfer case is listed whatever its phases (from a cached backbone,
        # frozen throughout, it had one, and the table lost S4's case on every run after the first)
        if len(phases) < 2 and set(group["strategy"]) != {"transfer"}:
            continue
        case = dict(zip(CASE_KEYS + ["backend"], keys, strict=True))
        for phase, (epochs, warmup_only) in phases:
            rows.append(
                {
                    **case,
                    "suite_shown": case["suite"] if named else "",
                    "phase": phase,
                    "epochs": int(len(epochs)),
                    "epoch_time_s_median": float(epochs["epoch_time_s"].median()),
                    "samples_per_s_median": float(epochs["samples_per_s"].median()),
                    "train_gflops": _median_gflops(epochs, str(case["strategy"]), _first(epochs, "forward_macs")),
                    "warmup_only": warmup_only,
                }
            )
    return pd.DataFrame(rows)


def _phase_epochs(epochs: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """A phase's steady epochs, or its warm-up epochs when it had no other (then True: its figures time warm-up)."""
    steady = epochs[epochs["warmup"].eq(False).fillna(False).astype(bool)]
    return (steady, False) if len(steady) else (epochs, True)


def _source_phase(trained: pd.DataFrame, group: pd.DataFrame) -> tuple[str, tuple[pd.DataFrame, bool]] | None:
    """The epochs of the pretrain trials that trained an S4 case's backbones in this run (one per seed), as phase
    ``source (trained by <backend>)``: their steady epochs, or their warm-up epochs when they trained one epoch each
    (marked so, as :func:`_phase_epochs` marks the other phases); None for other strategies and for backbones taken
    from the cache."""
    if "details_json" not in group.columns or set(group["strategy"]) != {"transfer"}:
        return None
    keys = {json.loads(text).get("backbone", "") for text in group["details_json"].dropna() if text}
    variants = {backbone_variant(key) for key in keys if key}
    epochs = trained[(trained["strategy"] == "pretrain") & trained["variant"].isin(variants)]
    if epochs.empty:
        return None
    return f"source (trained by {', '.join(sorted(epochs['backend'].unique()))})", _phase_epochs(epochs)


def _mean(finals: pd.DataFrame, column: str) -> float:
    """Mean over the trials' final rows of a final metric, NaN when none has it (a trial without MC passes)."""
    values = finals[column].astype(float).dropna() if column in finals.columns else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else math.nan


def _text(group: pd.DataFrame, column: str) -> str:
    """The case's value of a per-trial text column (the same in its rows that have it), '' when none has it."""
    values = group[column].dropna() if column in group.columns else pd.Series(dtype=str)
    values = values[values.astype(str) != ""]
    return str(values.iloc[0]) if len(values) else ""


def _most(group: pd.DataFrame, column: str) -> float:
    """The largest value of a numeric column over the case's rows, NaN when none has it (a CPU trial's memory)."""
    values = group[column].astype(float).dropna() if column in group.columns else pd.Series(dtype=float)
    return float(values.max()) if len(values) else math.nan


def _warmup_seconds(group: pd.DataFrame) -> float:
    """Median training seconds of the case's warm-up epochs (tracing, compiling, caches), NaN when none ran;
    deep_features (no epochs): the median of its extractor's warm-up seconds."""
    trained = trained_rows(group)
    warm = trained[trained["warmup"] == True] if len(trained) else trained  # noqa: E712 (nullable booleans)
    if len(warm):
        return float(warm["epoch_time_s"].median())
    extractions = [float(s) for s in detail_values(trained, "extraction_warmup_s") if s is not None]
    return float(np.median(extractions)) if extractions else math.nan


def _not_ok(finals: pd.DataFrame, named: bool) -> pd.DataFrame:
    """The trials that did not end ok, with their case: a count in the tables says how many, this says which."""
    if finals.empty:
        return finals
    not_ok = finals[~finals["status"].eq("ok").fillna(False).astype(bool)]
    return not_ok.assign(
        variant=not_ok["variant"].fillna("") if "variant" in not_ok else "",
        suite_shown=not_ok["suite"] if named else "",
    )


def _median_gflops(timing: pd.DataFrame, strategy: str, forward_macs: float) -> float:
    """The median over the timed epochs of 2 x step MACs x samples/s: each epoch at the cost of the step its phase
    trained (a frozen phase's step costs less than the unfrozen one after it). Rows recorded before the step's MACs
    were: three forward passes per sample, one for deep_features (its samples/s time a forward-only extraction)."""
    if "step_macs" in timing.columns and len(timing) and timing["step_macs"].notna().all():
        flops = FLOPS_PER_MAC * timing["step_macs"].astype(float) * timing["samples_per_s"].astype(float)
        return float((flops / 1e9).median())
    passes = 1 if strategy == "deep_features" else TRAINING_PASSES
    return achieved_gflops(passes * forward_macs, float(timing["samples_per_s"].median()) if len(timing) else math.nan)


def _first(group: pd.DataFrame, column: str) -> float:
    """The case's value of a per-model column (the same in every row that has it), NaN when no row has it."""
    values = group[column].dropna() if column in group.columns else pd.Series(dtype=float)
    return float(values.iloc[0]) if len(values) else math.nan


def _compare(per_backend: pd.DataFrame, reference: str) -> pd.DataFrame:
    """One row per (case, backend other than the reference) where both ran: accuracy difference in percentage
    points (reference − backend) and time ratios (reference / backend)."""
    if per_backend.empty:
        return pd.DataFrame()
    out = []
    for keys, group in per_backend.groupby(CASE_KEYS, sort=True):
        by_backend = {r["backend"]: r for _, r in group.iterrows()}
        if reference not in by_backend:
            continue
        ref = by_backend[reference]
        for backend in _in_registry_order(set(by_backend) - {reference}):
            other = by_backend[backend]
            out.append(
                {
                    **dict(zip(CASE_KEYS, keys, strict=True)),
                    "suite_shown": ref["suite_shown"],
                    "backend": backend,
                    "reference": reference,
                    "acc_diff_pp": 100.0 * (ref["test_acc_mean"] - other["test_acc_mean"]),
                    "epoch_time_ratio": ref["epoch_time_s_median"] / other["epoch_time_s_median"],
                    "samples_per_s_ratio": ref["samples_per_s_median"] / other["samples_per_s_median"],
                    # a side timed only by its warm-up epoch (tracing, compiling) gives a ratio of warm-ups
                    "warmup_only": WARMUP_ONLY in (ref["timing_basis"], other["timing_basis"]),
                }
            )
    return pd.DataFrame(out)


def _in_registry_order(backends: set[str]) -> list[str]:
    return [b for b in BACKENDS if b in backends] + sorted(backends - set(BACKENDS))
