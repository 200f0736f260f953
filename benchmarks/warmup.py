"""A trial's warm-up against its steady epochs, per model, in one process per call (a benchmark, not a test;
figures go to docs/measurements.md, "Warm-up").

The zoo_smoke suite's networks at its widths and input sides (resnet20 at width 0.5, mobilenet_v2 at 0.25 and
densenet121 at 0.125, both resized to 32; Adam 1e-3 on digits for --epochs, 3 by default), and cnn_small, each in
float32 (the suite now trains in float64, for exact parity: this times the default precision) and trained with
``run_trial``: the first epoch holds the model's tracing and graph optimisation (TensorFlow) or its first kernels'
set-up (PyTorch), the later ones are steady. To compare two commits, run this script from each checkout,
alternating, and compare the medians; the final loss is printed so the runs can be checked to compute the same.
A trial that does not end ok (diverged) stops the script: its epochs are not the model's speed.

    PYTHONPATH=. .venv/bin/python benchmarks/warmup.py --backend tensorflow [--model densenet121] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.config import OptimizerConfig, TrialConfig
from harness.data import Dataset, load_dataset
from harness.input_pipeline import InputConfig
from harness.models import ModelOptions
from harness.trial import RunInfo, run_trial

MODELS = {  # width multiplier, input side (None: the dataset's)
    "densenet121": (0.125, 32),
    "mobilenet_v2": (0.25, 32),
    "resnet20": (0.5, None),
    "cnn_small": (1.0, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--model", action="append", choices=tuple(MODELS))
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"Expected --epochs >= 2 (the first is warm-up). Received: {args.epochs}.")
    data = load_dataset("digits", None, download=False)
    for model in args.model or MODELS:
        width, side = MODELS[model]
        config = TrialConfig(
            strategy="scratch",
            model=model,
            dataset="digits",
            backend=args.backend,
            seed=0,
            epochs=args.epochs,
            optimizer=OptimizerConfig(args.optimizer, lr=1e-3),
            model_options=ModelOptions(width_multiplier=width),
            input=InputConfig(size=side),
        )
        start = time.perf_counter()
        rows = trial_rows(config, data)
        epochs = [r["epoch_time_s"] for r in rows]
        print(
            f"{args.backend} {model:12s} trial {time.perf_counter() - start:6.1f} s  warm-up epoch {epochs[0]:6.2f} s"
            f"  steady epoch {statistics.median(epochs[1:]):6.3f} s  final train loss {rows[-1]['train_loss']:.9f}",
            flush=True,
        )


def trial_rows(config: TrialConfig, data: Dataset | None) -> list[dict]:
    """The trial's epoch rows; a trial that did not end ok stops the script, as speed_modes.measure does."""
    rows: list[dict] = []
    status = run_trial(config, RunInfo("warmup", "n/a"), rows.append, dataset=data)
    if status != "ok":  # a diverged trial's epochs are not the model's speed
        error = rows[-1].get("error", "") if rows else ""
        raise SystemExit(f"warmup.py: the trial on {config.model} ended {status}: {error}")
    return rows


if __name__ == "__main__":
    main()
