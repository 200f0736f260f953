"""The metric columns a refactor must not change, and how they are compared with a golden file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

GOLDEN_DIR = Path(__file__).with_name("golden")
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
