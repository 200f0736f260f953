"""The cross-backend comparison: per case and backend, accuracy over seeds and steady-state speed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.model_cost import training_gflops

CASE_KEYS = ["strategy", "model", "variant", "dataset"]


@dataclass(frozen=True)
class Summary:
    per_backend: pd.DataFrame  # one row per (case, backend)
    comparison: pd.DataFrame  # one row per case present in both backends


def last_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    """Each trial's rows from its last attempt only: a retried trial's earlier attempts stay in the table as history."""
    if frame.empty or "attempt" not in frame.columns:
        return frame
    attempt = frame["attempt"].astype("Int64").fillna(0)
    return frame[attempt == attempt.groupby(frame["trial_id"]).transform("max")]


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last row of each trial's last attempt (carries test_acc and the final status)."""
    frame = last_attempts(frame)
    if frame.empty:
        return frame
    ordered = frame.assign(_order=np.arange(len(frame)))
    return (
        ordered.sort_values(["trial_id", "_order"]).groupby("trial_id", as_index=False).tail(1).drop(columns="_order")
    )


def steady_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count for steady-state speed: the last attempt, not a phase's warm-up epoch, and status ok."""
    frame = last_attempts(frame)
    return frame[(frame["warmup"] == False) & (frame["status"] == "ok")]  # noqa: E712 (nullable booleans)


def summarize(frame: pd.DataFrame) -> Summary:
    rows = []
    finals = final_rows(frame)
    for keys, group in frame.groupby(CASE_KEYS + ["backend"], sort=True, dropna=False):
        trial_finals = finals[finals["trial_id"].isin(group["trial_id"].unique())]
        ok = trial_finals[trial_finals["status"] == "ok"]
        accs = ok["test_acc"].astype(float).dropna().to_numpy()
        steady = steady_rows(group)
        timing = steady if len(steady) else group[group["status"] == "ok"]
        samples_per_s = float(timing["samples_per_s"].median()) if len(timing) else math.nan
        macs = _first(group, "forward_macs")
        rows.append(
            {
                **dict(zip(CASE_KEYS + ["backend"], keys)),
                "trials": int(trial_finals["trial_id"].nunique()),
                "ok": int(len(ok)),
                "failed": int((trial_finals["status"] == "failed").sum()),
                "diverged": int((trial_finals["status"] == "diverged").sum()),
                "test_acc_mean": float(accs.mean()) if len(accs) else math.nan,
                "test_acc_std": float(accs.std(ddof=1)) if len(accs) > 1 else (0.0 if len(accs) else math.nan),
                "epoch_time_s_median": float(timing["epoch_time_s"].median()) if len(timing) else math.nan,
                "samples_per_s_median": samples_per_s,
                "params": _first(group, "params"),
                "forward_macs": macs,
                "train_gflops": training_gflops(macs, samples_per_s),
                "timing_basis": "steady" if len(steady) else ("warm-up only" if len(timing) else "none"),
            }
        )
    per_backend = pd.DataFrame(rows)
    return Summary(per_backend=per_backend, comparison=_compare(per_backend))


def _first(group: pd.DataFrame, column: str) -> float:
    """The case's value of a per-model column (the same in every row that has it), NaN when no row has it."""
    values = group[column].dropna() if column in group.columns else pd.Series(dtype=float)
    return float(values.iloc[0]) if len(values) else math.nan


def _compare(per_backend: pd.DataFrame) -> pd.DataFrame:
    if per_backend.empty:
        return pd.DataFrame()
    out = []
    for keys, group in per_backend.groupby(CASE_KEYS, sort=True):
        by_backend = {r["backend"]: r for _, r in group.iterrows()}
        if "torch" not in by_backend or "tensorflow" not in by_backend:
            continue
        t, f = by_backend["torch"], by_backend["tensorflow"]
        out.append(
            {
                **dict(zip(CASE_KEYS, keys)),
                "acc_diff_pp": 100.0 * (t["test_acc_mean"] - f["test_acc_mean"]),
                "epoch_time_ratio": t["epoch_time_s_median"] / f["epoch_time_s_median"],
                "samples_per_s_ratio": t["samples_per_s_median"] / f["samples_per_s_median"],
            }
        )
    return pd.DataFrame(out)


def _fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def per_backend_cells(row: pd.Series) -> list[str]:
    """Display cells shared by the markdown and terminal tables."""
    acc = f"{_fmt(row['test_acc_mean'], '.4f')} ± {_fmt(row['test_acc_std'], '.4f')}"
    time_cell = _fmt(row["epoch_time_s_median"], ".3f") + (
        " (warm-up)" if row["timing_basis"] == "warm-up only" else ""
    )
    status = (
        f"{row['ok']}/{row['trials']} ok"
        + (f", {row['failed']} failed" if row["failed"] else "")
        + (f", {row['diverged']} diverged" if row["diverged"] else "")
    )
    return [
        row["strategy"],
        _model_cell(row),
        row["dataset"],
        row["backend"],
        status,
        acc,
        time_cell,
        _fmt(row["samples_per_s_median"], ",.0f"),
        _fmt(row["params"], ",.0f"),
        _fmt(row["forward_macs"] / 1e6, ",.2f"),
        _fmt(row["train_gflops"], ".2f"),
    ]


def _model_cell(row: pd.Series) -> str:
    return row["model"] + (f"+{row['variant']}" if row["variant"] else "")


PER_BACKEND_HEADER = [
    "strategy",
    "model",
    "dataset",
    "backend",
    "trials",
    "test acc (mean ± std over seeds)",
    "epoch time s (median)",
    "samples/s (median)",
    "params",
    "forward MMACs / sample",
    "training GFLOP/s",
]
COMPARISON_HEADER = [
    "strategy",
    "model",
    "dataset",
    "test acc torch − tensorflow (pp)",
    "epoch time torch / tensorflow",
    "samples/s torch / tensorflow",
]


def comparison_cells(row: pd.Series) -> list[str]:
    return [
        row["strategy"],
        _model_cell(row),
        row["dataset"],
        _fmt(row["acc_diff_pp"], "+.2f"),
        _fmt(row["epoch_time_ratio"], ".3f"),
        _fmt(row["samples_per_s_ratio"], ".3f"),
    ]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(summary: Summary, title: str) -> str:
    parts = [f"# {title}", "", "## Per backend", ""]
    parts.append(_markdown_table(PER_BACKEND_HEADER, [per_backend_cells(r) for _, r in summary.per_backend.iterrows()]))
    parts += ["", "## torch vs tensorflow", ""]
    if summary.comparison.empty:
        parts.append("(no case ran on both backends)")
    else:
        parts.append(
            _markdown_table(COMPARISON_HEADER, [comparison_cells(r) for _, r in summary.comparison.iterrows()])
        )
    ab = ab_report(summary.per_backend)
    if ab:
        parts += ["", "## Transfer A → B (S4b)", "", ab]
    parts += [
        "",
        "Epoch time and samples/s are medians over steady-state epochs (the first epoch of each phase is warm-up and "
        "excluded; '(warm-up)' marks cases that had no other epoch). Ratios above 1 mean torch takes longer "
        "(epoch time) or processes more samples per second (samples/s). Training GFLOP/s = 3 × 2 × forward MACs per "
        "sample × samples/s (forward and two backward passes; convolutions and dense layers only).",
        "",
    ]
    return "\n".join(parts)


def ab_report(per_backend: pd.DataFrame) -> str:
    """B from scratch vs B-on-A per (dataset, backend), with the error-rate reduction factor error_B / error_BonA."""
    if per_backend.empty or not {"B_scratch", "B_on_A"} <= set(per_backend["variant"]):
        return ""
    rows = []
    for (dataset, backend), group in per_backend.groupby(["dataset", "backend"], sort=True):
        by_variant = {r["variant"]: r for _, r in group.iterrows()}
        if "B_scratch" not in by_variant or "B_on_A" not in by_variant:
            continue
        acc_b, acc_ba = by_variant["B_scratch"]["test_acc_mean"], by_variant["B_on_A"]["test_acc_mean"]
        factor = (1 - acc_b) / (1 - acc_ba) if acc_ba < 1 else math.inf
        rows.append([dataset, backend, _fmt(acc_b, ".4f"), _fmt(acc_ba, ".4f"), _fmt(factor, ".2f")])
    return _markdown_table(
        ["dataset", "backend", "B test acc", "B-on-A test acc", "error reduction (error_B / error_BonA)"], rows
    )
