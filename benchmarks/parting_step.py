"""Where two backends' training trajectories part: one model trained step by step from the same initial weights
on the same batches (and the same shared dropout masks) in each backend, one process per backend, no Ray; the
parameters are exported after every step and compared.

    PYTHONPATH=. .venv/bin/python benchmarks/parting_step.py --model alexnet_tv --width-multiplier 0.25 \
        --input-size 96 --dataset fashion_mnist --steps 20 [--optimizer momentum] [--lr 0.01] [--batch-size 32] \
        [--bn-statistics float64] [--precision float64] [--every N]

Prints per step the largest parameter difference between the backends (scaled by the parameter's magnitude where
that exceeds 1, as the parity tests' tolerance) and the parameter that holds it, and the first step where that
difference grows more than 10x in one step: a discrete event (a pre-activation within float32 rounding of zero
landing on opposite sides of a ReLU in the two backends) or BatchNorm's fast amplification, not rounding
differences adding up. docs/zoo.md, "Parity, and where float32 stops it", reads such runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.backend import load_backend
from harness.config import BN_STATISTICS, OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.data import load_dataset
from harness.input_pipeline import resize_reference
from harness.models import ModelOptions, build_spec
from harness.spec import ModelSpec
from harness.weights import initial_weights

BACKENDS = ("torch", "tensorflow")
JUMP = 10.0  # a one-step growth of the gap beyond this is an event or fast amplification, not rounding adding up


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a zoo model (xfbench list)")
    p.add_argument("--width-multiplier", type=float, default=1.0)
    p.add_argument("--input-size", type=int, help="images resized to this square side (as --input-size does)")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--optimizer", default="momentum")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn-statistics", choices=BN_STATISTICS, default="float32", help="as xfbench run's")
    p.add_argument("--precision", choices=("float32", "float64"), default="float32", help="as xfbench run's")
    p.add_argument("--every", type=int, default=1, help="compare the parameters after every N-th step only")
    p.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)  # internal: train in this backend
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p


def inputs(args: argparse.Namespace) -> tuple[ModelSpec, np.ndarray, np.ndarray]:
    data = load_dataset(args.dataset, None, download=False)
    count = args.steps * args.batch_size
    if count > len(data.x_train):
        raise SystemExit(
            f"Expected at most {len(data.x_train)} training samples in {args.dataset}. Received: {args.steps} steps "
            f"of {args.batch_size} = {count} samples. To fix, lower --steps or --batch-size."
        )
    x = data.x_train[:count].astype(np.float32)
    if args.input_size:
        x = resize_reference(x, (args.input_size, args.input_size))
    spec = build_spec(args.model, x.shape[1:], data.num_classes, ModelOptions(width_multiplier=args.width_multiplier))
    return spec, x, data.y_train[:count]


def train_steps(args: argparse.Namespace) -> None:
    """Worker: train in ``args.worker``, one batch per call, and save the parameters after every step."""
    spec, x, y = inputs(args)
    runtime = RuntimeOptions(threads=1, bn_statistics=args.bn_statistics, precision=args.precision)
    backend = load_backend(args.worker, runtime)
    backend.build(spec, initial_weights(spec, "he_normal", args.seed), seed=args.seed)
    backend.set_optimizer(OptimizerConfig(args.optimizer, lr=args.lr).resolved(), RegularizationConfig(), None)
    backend.set_data("train", x, y)
    saved: dict[str, Any] = {}  # Any: savez's stubs type a key named allow_pickle as bool
    for step in range(args.steps):
        batch = np.arange(step * args.batch_size, (step + 1) * args.batch_size)
        backend.train_epoch("train", [batch], np.full(1, args.lr, np.float32), None, first_step=step)
        if (step + 1) % args.every == 0:
            saved.update({f"{step + 1}/{name}": value for name, value in backend.export_weights().items()})
    np.savez(args.out, **saved)


def scaled_gap(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, divided by max |a| where that exceeds 1 (BatchNorm's running variances grow large)."""
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))


def main() -> None:
    args = parser().parse_args()
    if args.worker:
        train_steps(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = {b: Path(tmp) / f"{b}.npz" for b in BACKENDS}
        for backend, path in files.items():
            subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--worker", backend, "--out", str(path)], check=True
            )
        torch_w, tf_w = (np.load(files[b]) for b in BACKENDS)
        previous, parted = None, None
        print(f"{'step':>4}  {'largest scaled gap':>18}  parameter")
        for step in range(args.every, args.steps + 1, args.every):
            names = [k for k in torch_w.files if k.startswith(f"{step}/")]
            gap, name = max((scaled_gap(torch_w[k], tf_w[k]), k) for k in names)
            print(f"{step:>4}  {gap:>18.3e}  {name.split('/', 1)[1]}")
            if parted is None and previous is not None and gap > JUMP * previous and gap > 0:
                parted = step
            previous = gap
        print(f"first jump by more than {JUMP:.0f}x in one step: " + (f"step {parted}" if parted else "none"))


if __name__ == "__main__":
    main()
