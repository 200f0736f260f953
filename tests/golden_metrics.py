"""The metric columns a refactor must not change, how they are compared with a golden file, and the kernels they
are computed with.

A golden file holds what this code computes on one set of kernels. The frameworks choose their float32 kernels by
the CPU (oneDNN and MKL block and order their sums by instruction set), and such a choice alone moved the quick
suite's numbers: recorded on a Xeon with AVX-512, they differed on an AMD EPYC with AVX2 in the sixth digit of
some losses and, where a pre-activation lay within rounding of zero at step 61, by one test image of cnn_small
seed 0 (docs/measurements.md, "The main job"). So the golden run caps every kernel library at AVX2
(``PINNED_KERNELS``), which x86-64 CPUs since 2013 have, and the file is recorded under the same cap. The cap takes
the instruction set out; the libraries still size their blocks by the CPU's caches, and the capped record has been
checked on one CPU (an AMD EPYC): another family may need its own record.

Re-record (only when a change is meant to alter numbers, and say so in the commit):
``python tests/golden_metrics.py RUN_DIR`` on the results of ``xfbench run`` run with ``PINNED_KERNELS`` set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

GOLDEN_DIR = Path(__file__).with_name("golden")
# The kernel libraries' instruction-set caps: oneDNN (both frameworks' convolutions), MKL (torch's matrix products;
# CBWR also fixes its code path on non-Intel CPUs) and ATen's own vectorised loops.
PINNED_KERNELS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
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


def pinned_kernels_available() -> bool:
    """Whether this CPU has what ``PINNED_KERNELS`` caps the libraries at (AVX2 and FMA); Linux's /proc/cpuinfo."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return {"avx2", "fma"} <= set(flags.split())


def pinned_environment() -> dict[str, str]:
    """This process's environment with the kernels pinned, for the run whose numbers a golden file holds."""
    return {**os.environ, **PINNED_KERNELS}


if __name__ == "__main__":
    from harness.results import read_results

    if len(sys.argv) != 2:
        sys.exit("usage: python tests/golden_metrics.py RUN_DIR  (a quick-suite run made with PINNED_KERNELS set)")
    print(write_golden(read_results(Path(sys.argv[1])), "quick_suite"))
