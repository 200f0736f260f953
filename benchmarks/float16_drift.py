"""Why TensorFlow's XLA step parts from its plain step under ``--precision mixed_float16`` on a CPU
(docs/measurements.md, "Mixed float16, TF32, and XLA's per-step compilations").

    PYTHONPATH=. .venv/bin/python benchmarks/float16_drift.py [--steps 1 5 20] [--threads 1]

Part 1, one kernel: the sum of 4096 standard-normal float16 values, against float64, in TensorFlow's plain kernel,
TensorFlow under XLA and torch. Part 2, training: cnn_small with BatchNorm before each activation, Nesterov SGD
lr 0.02, batch 32 on digits, the same initial weights and batches, for each step count; the max |difference| of
every parameter between the variants. Each variant runs in its own subprocess (one framework per process).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = {  # label -> (backend, precision, XLA)
    "tf-custom fp16": ("tensorflow", "mixed_float16", False),
    "tf-xla fp16": ("tensorflow", "mixed_float16", True),
    "torch fp16": ("torch", "mixed_float16", False),
    "tf-custom fp32": ("tensorflow", "float32", False),
    "torch fp32": ("torch", "float32", False),
}
PAIRS = [
    ("tf-custom fp16", "tf-xla fp16"),
    ("tf-xla fp16", "torch fp16"),
    ("tf-custom fp16", "torch fp16"),
    ("tf-custom fp16", "tf-custom fp32"),
    ("tf-xla fp16", "tf-custom fp32"),
    ("torch fp16", "torch fp32"),
    ("tf-custom fp32", "torch fp32"),
]


def _sum_error(backend: str, xla: bool) -> float:
    """|float16 sum - float64 sum| of 4096 x 8 standard-normal values, worst column."""
    values = np.random.default_rng(0).normal(size=(4096, 8)).astype(np.float16)
    exact = values.astype(np.float64).sum(axis=0)
    if backend == "torch":
        import torch

        got = torch.from_numpy(values).sum(dim=0).numpy()
    else:
        import tensorflow as tf

        got = tf.function(lambda v: tf.reduce_sum(v, axis=0), jit_compile=xla)(tf.constant(values)).numpy()
    return float(np.abs(got.astype(np.float64) - exact).max())


def _worker(label: str, steps: list[int], threads: int, out: Path) -> None:
    from harness.backend import load_backend
    from harness.config import OptimizerConfig, RuntimeOptions
    from harness.data import load_dataset
    from harness.data.batching import epoch_batches
    from harness.models import ModelOptions, build_spec
    from harness.weights import initial_weights

    backend_name, precision, xla = VARIANTS[label]
    digits = load_dataset("digits")
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes, ModelOptions(batchnorm="before"))
    weights = initial_weights(spec, "he_normal", 0)
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)
    optimizer = OptimizerConfig("nesterov", lr=0.02).resolved()
    runtime = RuntimeOptions(threads=threads, precision=precision, jit_compile=xla)
    saved: dict[str, Any] = {}
    for count in steps:  # a fresh model per count: the same start, the first ``count`` batches
        backend = load_backend(backend_name, runtime)
        backend.build(spec, weights, seed=0)
        backend.set_optimizer(optimizer)
        backend.set_data("train", digits.x_train, digits.y_train)
        backend.train_epoch("train", batches[:count], np.full(count, optimizer.lr, np.float32), first_step=0)
        saved.update({f"{count}|{name}": value for name, value in backend.export_weights().items()})
    # After the backend set the threads: run first, the sum started TensorFlow's runtime on its default pools (all
    # cores), which the backend then cannot change, and every TensorFlow variant ignored --threads.
    saved["sum_error"] = np.array(_sum_error(backend_name, xla))
    np.savez(out, **saved)  # saved is dict[str, Any]: savez's stubs type a key named allow_pickle as bool


def _gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], count: int) -> tuple[float, str]:
    """The largest |difference| over every parameter after ``count`` steps, and the parameter that holds it."""
    keys = [k for k in a if k.startswith(f"{count}|")]
    return max((float(np.abs(a[k] - b[k]).max()), k.split("|", 1)[1]) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if any(count < 1 for count in args.steps) or args.threads < 1:
        parser.error(f"--steps and --threads take positive counts; received {args.steps} and {args.threads}")
    if args.worker:
        _worker(args.worker, args.steps, args.threads, args.out)
        return
    results: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, label in enumerate(VARIANTS):
            out = Path(scratch) / f"{number}.npz"
            command = [sys.executable, __file__, "--worker", label, "--out", str(out), "--threads", str(args.threads)]
            done = subprocess.run([*command, "--steps", *map(str, args.steps)], capture_output=True, text=True)
            if done.returncode:  # captured, the worker's error was lost behind CalledProcessError's traceback
                print(done.stderr, file=sys.stderr)
                raise SystemExit(1)
            with np.load(out) as loaded:
                results[label] = dict(loaded)
    print("float16 sum of 4096 x 8 normal values, max |error| against float64:")
    for label in ("tf-custom fp16", "tf-xla fp16", "torch fp16"):
        print(f"  {label:<16} {float(results[label]['sum_error']):.3g}")
    print("\ncnn_small + BatchNorm, max |parameter difference| after N steps:")
    # which parameter parts first tells which kernel's rounding differs (a dense kernel's, a BatchNorm's statistics)
    print("| pair | " + " | ".join(f"{n} steps" for n in args.steps) + f" | largest after {args.steps[0]} |")
    print("|---|" + "---|" * (len(args.steps) + 1))
    for a, b in PAIRS:
        gaps = [_gap(results[a], results[b], n) for n in args.steps]
        print(f"| {a} vs {b} | " + " | ".join(f"{gap:.2e}" for gap, _ in gaps) + f" | {gaps[0][1]} |")


if __name__ == "__main__":
    main()
