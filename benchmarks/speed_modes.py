"""The speed matrix's modes measured in one process per backend, without Ray: each variant of the speed_matrix
suite (harness/suites.py SPEED_VARIANTS) that the backend declares, configured as the suite configures it but for
the epochs: 4 by default (the suite trains 3), for one more steady epoch per figure.

    PYTHONPATH=. .venv/bin/python benchmarks/speed_modes.py --backend tensorflow [--model convnet3] [--epochs 4]
        [--variant default --variant fit ...] [--repeats 3] [--bn-statistics float64]

Prints per model and variant the median samples/s of the steady epochs (2..N), the warm-up epoch's seconds and the
ratio to the default mode. Trials run one after the other in this process (configure_runtime's thread settings
hold from the first). With --repeats N every variant runs N times, the variants alternating within each round, and
each figure is the median over the rounds (the machine's noise moves single trials by 10-20 %); the spread printed
is the lowest and highest round. All variants share this one process, so from the second round every variant runs
after an XLA (or torch.compile) trial, which slowed later default-mode trials by 11-35 % (docs/measurements.md,
"Worker groups"): compare XLA-free variants with --variant, or one process per variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from harness.config import BN_STATISTICS, OptimizerConfig, TrialConfig
from harness.data import load_dataset
from harness.suites import SPEED_MODELS, SPEED_VARIANTS, backends_able
from harness.trial import RunInfo, run_trial

MODELS = dict(SPEED_MODELS)  # mlp (256), convnet3, cnn_small, resnet20 (width 0.5): as the suite configures them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--model", action="append", choices=tuple(MODELS))
    parser.add_argument("--variant", action="append", help="only these SPEED_VARIANTS labels")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every variant, alternating")
    parser.add_argument("--bn-statistics", choices=BN_STATISTICS, default="float32", help="as xfbench run's")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"Expected --repeats >= 1. Received: {args.repeats}.")
    if args.epochs < 2:  # the first epoch is warm-up: one epoch leaves no steady figure
        parser.error(f"Expected --epochs >= 2 (epoch 1 is warm-up, kept out of samples/s). Received: {args.epochs}.")
    declared = [label for label, runtime in SPEED_VARIANTS if args.backend in backends_able(runtime)]
    unknown = sorted(set(args.variant or ()) - set(declared))
    if unknown:  # they were filtered out, printing nothing
        parser.error(
            f"Expected --variant among the speed matrix's modes that {args.backend} declares: {declared}. "
            f"Received: {unknown}."
        )
    data = load_dataset("digits", None, download=False)
    for model in args.model or MODELS:
        variants = {}
        for label, variant in SPEED_VARIANTS:
            runtime = dataclasses.replace(variant, bn_statistics=args.bn_statistics)
            if args.backend in backends_able(runtime) and (not args.variant or label in args.variant):
                variants[label] = runtime
        rounds: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
        for _ in range(args.repeats):
            for label, runtime in variants.items():
                config = TrialConfig(
                    strategy="scratch",
                    model=model,
                    dataset="digits",
                    backend=args.backend,
                    seed=0,
                    epochs=args.epochs,
                    optimizer=OptimizerConfig("nesterov", lr=0.01),
                    model_options=MODELS[model],
                    runtime=runtime,
                )
                rows: list[dict] = []
                run_trial(config, RunInfo("speed-modes", "n/a"), rows.append, dataset=data)
                steady = statistics.median(r["samples_per_s"] for r in rows if not r["warmup"])
                rounds[label].append((steady, rows[0]["epoch_time_s"]))
                if args.repeats > 1:
                    print(f"  round {len(rounds[label])} {label}: {steady:,.0f} samples/s", flush=True)
        base = statistics.median(s for s, _ in rounds["default"]) if "default" in rounds else None
        for label, measured in rounds.items():
            speeds = [s for s, _ in measured]
            sps, warm = statistics.median(speeds), statistics.median(w for _, w in measured)
            ratio = f"{sps / base:5.2f}x" if base else "(no default measured)"  # --variant without default
            print(
                f"{args.backend} {model:9s} {label:14s} {sps:10,.0f} samples/s ({min(speeds):,.0f}-{max(speeds):,.0f})"
                f"  warm-up {warm:6.2f} s  {ratio}"
            )


if __name__ == "__main__":
    main()
