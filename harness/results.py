"""The results table: schema, incremental writing, reading back.

One row per (trial, phase, epoch). Rows are appended to ``results.csv`` the
moment the driver receives them and each finished trial is also written as a
Parquet part; ``results.parquet`` is assembled from the parts at the end. A
crash therefore loses nothing already measured: ``read_results`` falls back to
the parts (finished trials only); the rows of a trial cut short are in
``results.csv`` alone, which no reader takes (``--resume`` runs that trial
again).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import InputError
from harness.whole_files import PARTIAL, written_whole

# (column, pandas dtype, meaning) — docs/results-schema.md is generated from this list and a test pins both.
SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("run_id", "string", "identifier of the run (directory name under results/)"),
    (
        "trial_id",
        "string",
        "{suite}-{strategy}-{model}[+{variant}]-{dataset}-{backend}-s{seed}; a spec file's model by its file name",
    ),
    (
        "stage",
        "string",
        "scheduling stage: pretrain (shared backbones), trials (a run), search (a tune search), "
        "final (a tune's best configs re-run)",
    ),
    (
        "attempt",
        "Int64",
        "0 for a trial's first attempt, n for its n-th retry under --max-failures; "
        "tables use each trial's last attempt",
    ),
    ("suite", "string", "suite name, or 'adhoc' for a single --strategy/--model/--dataset run"),
    ("strategy", "string", "strategy name (scratch, ...)"),
    (
        "model",
        "string",
        "--model as the trial ran it: a zoo name, a torchvision:/keras:/python: reference, or a spec file's "
        "absolute path (tables name it by its file name)",
    ),
    ("params", "Int64", "parameters of the model the trial trains (from its spec: trainable and frozen alike)"),
    (
        "forward_macs",
        "Int64",
        "forward multiply-accumulates per sample, convolutions and dense layers (harness.model_cost)",
    ),
    (
        "step_macs",
        "Int64",
        "multiply-accumulates per sample of the work the row's samples/s times: one training step with the phase's "
        "frozen layers (forward, and backward where a trainable layer needs it), or deep_features' forward pass to "
        "its feature layer (harness.model_cost.step_macs)",
    ),
    ("dataset", "string", "dataset name"),
    (
        "variant",
        "string",
        "label of a technique/option variant of the case ('' for the plain case), then a search trial's sample "
        "(`.search003`) or `.tuned` for a tune run's re-runs of the best config; part of the case's identity",
    ),
    ("backend", "string", "torch | tensorflow"),
    ("framework_version", "string", "torch.__version__ or tf.__version__ in the worker"),
    (
        "seed",
        "Int64",
        "trial seed: initial weights (a new head's too), batch order, augmentation draws, dropout masks; "
        "never the splits",
    ),
    (
        "phase",
        "string",
        "the part of the trial the row belongs to, by strategy: `train` (scratch), `source` (pretrain), `frozen` "
        "(feature_extraction), `fine_tune` (fine_tune), `freeze_early` (freeze_early), `frozen` then `unfrozen` "
        "(transfer, unfrozen after --frozen-epochs) and `sklearn` (deep_features' one row); empty on a failed or "
        "skipped trial's row",
    ),
    ("epoch", "Int64", "1-based epoch number within the trial"),
    ("train_loss", "float64", "mean training cross-entropy over the epoch's batches, weighted by batch size"),
    ("train_acc", "float64", "training accuracy over the epoch (model in training mode, as it was updated)"),
    ("val_loss", "float64", "validation loss after the epoch (inference mode)"),
    ("val_acc", "float64", "validation accuracy after the epoch"),
    ("test_acc", "float64", "test accuracy; set on the last epoch row of a trial, NaN elsewhere"),
    (
        "train_reg_loss",
        "float64",
        "mean L1/L2 penalty of the trainable kernels over the epoch's steps (not included in train_loss)",
    ),
    ("lr", "float64", "learning rate of the epoch's last step (schedules are evaluated per step)"),
    ("mc_test_acc", "float64", "MC dropout: test accuracy of the mean probability over the passes (last row only)"),
    (
        "mc_mean_prob",
        "float64",
        "MC dropout: mean over test samples of the mean probability, over passes, of the class the mean predicts",
    ),
    (
        "mc_pred_std",
        "float64",
        "MC dropout: mean over test samples of the std, across passes, of the predicted class's probability",
    ),
    ("epoch_time_s", "float64", "wall time of the epoch's training steps only (device synchronised; no evaluation)"),
    ("samples_per_s", "float64", "training samples / epoch_time_s"),
    (
        "other_cpus",
        "float64",
        "CPUs that other processes (other trials of the run, other jobs) kept busy during the epoch's training steps "
        "(deep_features: during its timed feature extraction), on average: Linux's /proc/stat busy time of the CPUs "
        "the trial may run on (its affinity: a cpuset container's or taskset's CPUs, not the host's others) less the "
        "trial's own CPU time, over the wall time; empty elsewhere, and where deep_features' features came from the "
        "cache",
    ),
    (
        "eval_time_s",
        "float64",
        "wall time of the evaluation after the epoch; on the row that holds test_acc (a trial's last epoch, or the "
        "one that diverged) it also covers the test evaluation and any MC-dropout passes",
    ),
    ("warmup", "boolean", "first epoch of a phase (tracing, compilation, caches); excluded from steady-state figures"),
    ("trainable_params", "Int64", "trainable parameters as the backend counts them (strategies that freeze layers)"),
    ("frozen_params", "Int64", "frozen parameters (BatchNorm running statistics excluded)"),
    (
        "details_json",
        "string",
        "strategy facts: backbone hash, recipe and trainer, source/target task, head, feature size, ...",
    ),
    (
        "weights",
        "string",
        "pretrained weights the backbone started from (torchvision:NAME[:SET], keras:NAME:imagenet, or the --weights "
        "file's name); empty for a backbone xfbench trained",
    ),
    ("weights_sha256", "string", "sha256 of that weights file (what the converted checkpoint is keyed by)"),
    (
        "backbone_test_acc",
        "float64",
        "test accuracy on its source task of the backbone xfbench trained for this trial (its pretrain trial's, kept "
        "in the shared checkpoint); empty for pretrained weights and trials without a backbone",
    ),
    (
        "status",
        "string",
        "ok | failed | diverged | skipped (not started: its backbone's pretrain trial did not end ok; the row's "
        "error says which). A trial ASHA stopped early is ok, with fewer epochs",
    ),
    ("error", "string", "error text of a failed trial, the reason a trial was skipped, else empty"),
    (
        "inexact",
        "string",
        "why this trial's backends cannot compute exactly alike beyond float rounding order ('; '-joined; empty: "
        "they can; harness.exactness)",
    ),
    ("config_json", "string", "the full resolved TrialConfig as JSON"),
    ("git_commit", "string", "commit of the harness that produced the row (+dirty if modified)"),
    (
        "host",
        "string",
        "hostname of the worker that ran the trial (on the row the driver writes for a dead worker, as its last row "
        "said; empty where it sent none, and on a skipped trial's)",
    ),
    ("node", "string", "Ray node id of the worker that ran the trial (tells the nodes of one host apart)"),
    ("cpu", "string", "CPU model of that worker"),
    ("gpu", "string", "device name when the trial ran on a GPU, else empty"),
    ("device", "string", "cpu | gpu"),
    (
        "gpu_peak_mib",
        "float64",
        "most GPU memory the framework held in tensors from the model's build to the end of this epoch, MiB (its "
        "allocator reserves more); empty on the CPU",
    ),
    ("threads", "Int64", "intra-op threads of the trial (from its CPU allocation)"),
    ("worker_pid", "Int64", "process id of the worker that ran the trial (a warm worker runs many trials)"),
    (
        "worker_trials_before",
        "Int64",
        "trials of this driver session that process had started before this one (0: the process's first, whose "
        "warm-up epoch also holds one-off costs of a new process beyond the imports; --fresh-workers: 0), told "
        "apart by node and pid (a new worker given a finished one's pid after the pids wrap counts on from it); "
        "replayed samples of a resumed search not counted",
    ),
    ("worker_frameworks", "string", "backends whose framework that process had imported (one, by design)"),
    (
        "framework_env",
        "string",
        "the environment variables of the trial's backend that change what it runs, as its worker had them set "
        "(backends/<name>/capabilities.py FRAMEWORK_ENV: TF_ENABLE_ONEDNN_OPTS, TF_XLA_FLAGS, XLA_FLAGS, "
        "TORCHDYNAMO_DISABLE, TORCH_COMPILE_DISABLE): 'NAME=value; ...' by name, empty when none is set",
    ),
    ("python_version", "string", "worker's Python version"),
    ("timestamp", "string", "UTC time the row was produced (ISO 8601, milliseconds)"),
)

COLUMNS = tuple(name for name, _, _ in SCHEMA)
DTYPES = {name: dtype for name, dtype, _ in SCHEMA}
STATUSES = ("ok", "failed", "diverged", "skipped")


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Check a row has exactly the schema's columns; fill absent optional ones with empty values."""
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ValueError(f"Expected only schema columns in a results row. Received unknown columns: {unknown}.")
    if row.get("status") not in STATUSES:
        raise ValueError(f"Expected status in {STATUSES}. Received: {row.get('status')!r}.")
    return {c: row.get(c) for c in COLUMNS}


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([normalise_row(r) for r in rows], columns=list(COLUMNS))
    frame["variant"] = frame["variant"].fillna("")
    for column, dtype in DTYPES.items():
        if dtype == "float64":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            frame[column] = frame[column].astype(pd.api.types.pandas_dtype(dtype))  # as astype(name) does; typed
    return frame


class ResultsWriter:
    """Writes rows as they arrive; safe to call from Tune callbacks in the driver. ``kept``: the trials whose parts a
    resume kept, never written again (scheduler's RowForwarder sends none of their rows)."""

    def __init__(self, run_dir: Path, kept: frozenset[str] = frozenset()) -> None:
        self.run_dir = run_dir
        self.kept = kept
        self.parts_dir = run_dir / "parts"
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = run_dir / "results.csv"
        self._pending: dict[str, list[dict[str, Any]]] = {}
        # a driver killed mid-write left its temporary file (the run lock, held by this driver, keeps out others)
        for stale in [*self.parts_dir.glob("*" + PARTIAL), run_dir / ("results.parquet" + PARTIAL)]:
            stale.unlink(missing_ok=True)
        if not self.csv_path.exists():
            with self.csv_path.open("w", newline="") as handle:
                csv.writer(handle).writerow(COLUMNS)

    def add_row(self, row: dict[str, Any]) -> None:
        row = normalise_row(row)
        if row["trial_id"] in self.kept:  # its part would be replaced by this row's, its finished rows lost
            raise ValueError(
                f"Expected no new rows for trial {row['trial_id']}: the resume kept its finished rows. Received: a "
                f"{row['status']} row (error: {row.get('error')}). To fix, report this: a kept trial is replayed, "
                "never run or recorded again."
            )
        with self.csv_path.open("a", newline="") as handle:
            csv.writer(handle).writerow(_csv_cells(row))
        self._pending.setdefault(row["trial_id"], []).append(row)

    def finish_trial(self, trial_id: str) -> None:
        rows = self._pending.get(trial_id, [])
        if rows:  # dropped once written: a write that fails (a full disk) leaves them for another try
            _write_atomically(to_frame(rows), self.parts_dir / f"{safe_name(trial_id)}.parquet")
        self._pending.pop(trial_id, None)

    def finalize(self, interrupted: bool = False) -> pd.DataFrame:
        """results.parquet from the trials' parts. A trial still pending when the run was interrupted was cut
        short: it gets no part (its rows stay in results.csv), so --resume runs it again and no table counts its
        last epoch as its end."""
        for trial_id in list(self._pending):
            if interrupted:
                self._pending.pop(trial_id)
            else:
                self.finish_trial(trial_id)
        frame = read_parts(self.run_dir)
        _write_atomically(frame, self.run_dir / "results.parquet")
        return frame


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write beside the target, then rename: never a truncated Parquet file that a resume could not read
    (parts/*.parquet is what a resume keeps)."""
    with written_whole(path) as partial:
        frame.to_parquet(partial, index=False)


def rewrite_csv(run_dir: Path, frame: pd.DataFrame) -> int:
    """results.csv as exactly ``frame`` (a resumed run drops interrupted trials' partial rows); returns how many
    rows the old CSV had beyond it."""
    path = run_dir / "results.csv"
    before = 0
    if path.is_file():
        with path.open(newline="") as handle:
            before = max(0, sum(1 for _ in csv.reader(handle)) - 1)
    # written whole, then renamed: truncated in place, a resume stopped mid-write left results.csv short
    with written_whole(path) as partial, partial.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        for row in frame.to_dict("records"):
            out.writerow(_csv_cells(row))
    return max(0, before - len(frame))


def read_parts(run_dir: Path) -> pd.DataFrame:
    parts = sorted((run_dir / "parts").glob("*.parquet"))
    if not parts:
        return to_frame([])
    frame = with_current_columns(pd.concat([_read_part(p) for p in parts], ignore_index=True))
    return frame.sort_values(["trial_id", "attempt", "epoch"], kind="stable", na_position="last").reset_index(drop=True)


def _read_part(path: Path) -> pd.DataFrame:
    """One trial's part; one that cannot be read (cut short by a power loss or a copy, a disk error) is refused
    naming it and the way out: a resume died in pyarrow's traceback, and a report said to run the whole run again."""
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (OSError, pyarrow.ArrowException) as exc:
        raise InputError(
            f"Expected each trial's part in {path.parent} readable as xfbench writes it. Received: {path.name}, which "
            f"cannot be read ({type(exc).__name__}: {str(exc)[:300]}). To fix, move that file out of parts/ and "
            "resume the run (--resume): that trial runs again (its rows are also in results.csv)."
        ) from None


# The columns every reader needs, in xfbench's table from its first version (older tables lack only later ones):
# a table without one is not xfbench's, and read as if the column were empty it crashed the reports (no status)
# or passed a regression gate that compared nothing.
NEEDED_COLUMNS = (
    "trial_id", "strategy", "model", "dataset", "backend", "seed", "phase", "epoch", "warmup", "status", "test_acc",
    "epoch_time_s", "samples_per_s", "config_json",
)  # fmt: skip


def missing_columns(run_dir: Path) -> list[str]:
    """The NEEDED_COLUMNS that the run's stored table (results.parquet, else each part) lacks, in that order."""
    import pyarrow.parquet as pq

    final = run_dir / "results.parquet"
    files = [final] if final.is_file() else sorted((run_dir / "parts").glob("*.parquet"))
    stored = [set(pq.read_schema(f).names) for f in files]
    return [c for c in NEEDED_COLUMNS if any(c not in names for names in stored)]


def read_results(run_dir: Path) -> pd.DataFrame:
    """The run's table: results.parquet if the run finished, else whatever the parts hold."""
    final = run_dir / "results.parquet"
    if final.is_file():
        return with_current_columns(pd.read_parquet(final))
    return read_parts(run_dir)


_TEXT_KEYS = ("suite", "variant")  # parts of a case's key that are text, "" when unset


def with_current_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Tables written before a column existed (saved baselines) gain it, empty, so old and new compare. A missing
    suite or variant is "" (no suite, the default variant), as a run without them has: NA dropped the case from
    groupings (no backend comparison, history's "<NA>" cases) and crashed compare's sorting."""
    for column in COLUMNS:
        if column in _TEXT_KEYS:
            frame[column] = frame[column].fillna("") if column in frame.columns else ""
        elif column not in frame.columns:
            if DTYPES[column] == "float64":  # numpy floats have no NA: missing is NaN
                frame[column] = np.full(len(frame), np.nan)
            else:
                frame[column] = pd.Series([pd.NA] * len(frame), dtype=DTYPES[column], index=frame.index)
    return frame[list(COLUMNS)]


def schema_markdown() -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {meaning} |" for name, dtype, meaning in SCHEMA]
    return "\n".join(lines)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _csv_cells(row: Mapping[str, Any] | Mapping[Hashable, Any]) -> list[Any]:
    """One CSV line's cells; ``row`` is a normalised row or a frame's record (pandas types its keys Hashable)."""
    return ["" if _is_missing(row[c]) else row[c] for c in COLUMNS]


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
