"""Cost of shared dropout masks (harness.dropout_rng, the default) against each framework's own dropout.

    .venv/bin/python benchmarks/dropout_masks.py [--backend B]... [--workload W]... [--epochs 5] [--repeats 4]
        [--threads 1]

For each backend (its own subprocess: one framework per process) and each workload — cnn_small on digits
(dropout 0.25 on the pooled map, 0.5 after the dense layer) and the two-layer FC (4000 hidden units) with
dropout 0.5 — whole trials alternate between ``--dropout-rng shared`` and ``framework`` (ABBA order, so drift
hits both alike). The figure per setting is the median over repeats of the median steady (non-first) epoch time.
``--backend`` and ``--workload`` (each repeatable) measure a part alone, e.g. TensorFlow on the FC workload: 15 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

WORKLOADS: dict[str, dict[str, Any]] = {
    "cnn_small": {"model": "cnn_small", "hidden": None},
    "mlp_dropout0.5": {"model": "mlp", "hidden": (4000,)},
}


def _epoch_time(backend: str, workload: str, dropout_rng: str, epochs: int, threads: int, seed: int) -> float:
    from harness.config import RuntimeOptions, TrialConfig
    from harness.models import ModelOptions
    from harness.trial import RunInfo, run_trial

    spec = WORKLOADS[workload]
    options = ModelOptions(hidden=spec["hidden"], dropout=0.5) if spec["hidden"] else ModelOptions()
    config = TrialConfig(
        strategy="scratch",
        model=spec["model"],
        dataset="digits",
        backend=backend,
        seed=seed,
        epochs=epochs,
        model_options=options,
        runtime=RuntimeOptions(threads=threads, dropout_rng=dropout_rng),
    )
    rows: list[dict] = []
    status = run_trial(config, RunInfo("dropout-benchmark", "n/a"), rows.append)
    if status != "ok":  # a diverged trial's epochs are not the step's speed
        raise SystemExit(f"dropout_masks.py: a {workload} trial ended {status}: {rows[-1].get('error', '')}")
    return statistics.median(r["epoch_time_s"] for r in rows if not r["warmup"])


def worker(args: argparse.Namespace) -> list[dict]:
    results = []
    for workload in args.workloads or WORKLOADS:
        times: dict[str, list[float]] = {"shared": [], "framework": []}
        for repeat in range(args.repeats):
            order = ("shared", "framework") if repeat % 2 == 0 else ("framework", "shared")
            for setting in order:
                times[setting].append(_epoch_time(args.worker, workload, setting, args.epochs, args.threads, repeat))
        shared, native = statistics.median(times["shared"]), statistics.median(times["framework"])
        results.append(
            {
                "backend": args.worker,
                "workload": workload,
                "shared_epoch_s": shared,
                "framework_epoch_s": native,
                "ratio": shared / native,
                "runs": times,
            }
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", dest="backends", choices=("torch", "tensorflow"))
    parser.add_argument("--workload", action="append", dest="workloads", choices=tuple(WORKLOADS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    for option, value, least in (
        ("--epochs", args.epochs, 2),
        ("--repeats", args.repeats, 1),
        ("--threads", args.threads, 1),
    ):
        if value < least:  # the first epoch is warm-up: one epoch timed nothing, a traceback after training
            parser.error(f"expected {option} >= {least}; received {value}")
    rows = []
    for backend in args.backends or ("torch", "tensorflow"):
        command = [
            sys.executable,
            __file__,
            "--worker",
            backend,
            "--epochs",
            str(args.epochs),
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
            *(f"--workload={w}" for w in args.workloads or ()),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:  # captured, the worker's error was lost
            print(done.stderr, file=sys.stderr)
            return 1
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'backend':<11} {'workload':<15} {'shared s/epoch':>15} {'framework s/epoch':>18} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['backend']:<11} {r['workload']:<15} {r['shared_epoch_s']:>15.4f} {r['framework_epoch_s']:>18.4f} "
            f"{r['ratio']:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
