"""The metric columns a refactor must not change, and how they are compared with a golden file.

The golden run is the main job in float64 (``GOLDEN_ARGS``). In float32 the frameworks' kernels, chosen by the CPU,
decide the quick suite's numbers past the sixth digit and, where a pre-activation lies within rounding of zero,
whole trajectories: the float32 file recorded on a Xeon with AVX-512 failed on an AMD EPYC with AVX2, and the one
recorded on the EPYC with every kernel library capped at AVX2 failed on a Xeon under the same cap (cnn_small seed 0
parts at epoch 4 on both CPUs, on opposite backends; docs/measurements.md, "The main job"). In float64 the same
kernels' rounding differences are about 1e-16: on that Xeon the quick suite capped at AVX2 and uncapped
(AVX-512) gave the same accuracies and losses within 3.7e-16 (relative), and both backends the same accuracies.
So the loss sums are compared at ``SUM_RTOL`` 1e-12 (2,700 times that gap; a change that computes any of them
differently, or in float32, fails) and every count, accuracy and status exactly. Checked so on that Xeon only.
The float32 path is held by the parity tests (each backend against the other, and against float64), at float32's
tolerances, not by a golden file.

Re-record (only when a change is meant to alter numbers, and say so in the commit):
``python tests/golden_metrics.py RUN_DIR`` on the results of ``xfbench run --precision float64``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

GOLDEN_DIR = Path(__file__).with_name("golden")
# `xfbench run` with no selection (the quick suite on digits, both backends: what `make quick` runs), in float64.
GOLDEN_ARGS = ("--precision", "float64")
# The columns that are sums of float64 terms, and so carry the kernels' summation order; the rest are counts
# (accuracies are correct predictions over a set size), settings and labels.
SUMS = ["train_loss", "train_reg_loss", "val_loss"]
SUM_RTOL = 1e-12
KEY = ["trial_id", "stage", "phase", "epoch"]
# Everything a trial computes, without timing or provenance: identical for fixed seeds on the same machine.
METRICS = [
    "backend",
    "model",
    "seed",
    "params",
    "forward_macs",
    "trainable_params",
    "frozen_params",
    "lr",
    "train_loss",
    "train_acc",
    "train_reg_loss",
    "val_loss",
    "val_acc",
    "test_acc",
    "mc_test_acc",
    "mc_pred_std",
    "warmup",
    "status",
]


def metric_table(frame: pd.DataFrame) -> pd.DataFrame:
    table = frame[KEY + METRICS].sort_values(KEY, kind="stable").reset_index(drop=True)
    text = ("trial_id", "stage", "phase", "backend", "model", "status")
    types = {c: "object" if c in text else "bool" if c == "warmup" else "float64" for c in table.columns}
    return table.astype(types)


def write_golden(frame: pd.DataFrame, name: str) -> Path:
    path = GOLDEN_DIR / f"{name}.csv"
    metric_table(frame).to_csv(path, index=False, float_format="%.17g")  # 17 digits: every float64 round-trips
    return path


def read_golden(name: str) -> pd.DataFrame:
    return metric_table(pd.read_csv(GOLDEN_DIR / f"{name}.csv", keep_default_na=True))


def assert_matches_golden(frame: pd.DataFrame, name: str) -> None:
    """``frame``'s metric columns equal the golden file's: ``SUMS`` within ``SUM_RTOL``, everything else exactly."""
    table, golden = metric_table(frame), read_golden(name)
    exact = [c for c in table.columns if c not in SUMS]
    pd.testing.assert_frame_equal(table[exact], golden[exact], check_exact=True)
    pd.testing.assert_frame_equal(table[SUMS], golden[SUMS], check_exact=False, rtol=SUM_RTOL, atol=0.0)


if __name__ == "__main__":
    from harness.results import read_results

    if len(sys.argv) != 2:
        sys.exit("usage: python tests/golden_metrics.py RUN_DIR  (made by: xfbench run --precision float64)")
    print(write_golden(read_results(Path(sys.argv[1])), "quick_suite"))
