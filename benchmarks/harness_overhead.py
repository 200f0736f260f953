r"""Harness overhead: the same model, data, batch size and optimizer through the xfbench trial path and
through a bare hand-written loop in the same framework, per backend; prints harness ÷ bare samples/s.

    .venv/bin/python benchmarks/harness_overhead.py [--dataset digits] [--epochs 6] [--repeats 3]
    .venv/bin/python benchmarks/harness_overhead.py --dataset fashion_mnist --optimizer nesterov --threads 2 \
        --train-limit 6400 --epochs 6

``--workload both`` runs the two workloads the acceptance names one after the other: convnet3 on digits with SGD
momentum and one thread, and convnet3 on real Fashion-MNIST (28x28 images) with SGD Nesterov and two threads (its
training split cut to ``--train-limit`` images so a run stays short; the step is the same).

Each backend runs in its own subprocess (one framework per process). Within it the two paths alternate
(harness, bare, bare, harness, ...) so slow drift on a shared machine hits both alike. Both paths time
training steps only, with the same thread count; the figure per path is the median over repeats of the
median steady-state (non-first) epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def worker(args: argparse.Namespace) -> dict:
    from bare_loops import BARE_LOOPS

    from harness.config import OptimizerConfig, RuntimeOptions, TrialConfig
    from harness.data import load_dataset
    from harness.trial import RunInfo, run_trial

    data = load_dataset(args.dataset, args.data_dir, download=False)
    if args.train_limit:  # the same images, fewer of them: the step costs what it costs on the whole split
        n = args.train_limit
        data = dataclasses.replace(
            data,
            x_train=data.x_train[:n],
            y_train=data.y_train[:n],
            x_val=data.x_val[:1000],
            y_val=data.y_val[:1000],
            x_test=data.x_test[:1000],
            y_test=data.y_test[:1000],
        )
    harness_runs, bare_runs = [], []

    def harness_once(seed: int) -> float:
        rows: list[dict] = []
        config = TrialConfig(
            strategy="scratch",
            model="convnet3",
            dataset=args.dataset,
            backend=args.worker,
            seed=seed,
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=OptimizerConfig(args.optimizer, lr=args.lr),
            runtime=RuntimeOptions(threads=args.threads),
            data_dir=args.data_dir,
        )
        status = run_trial(config, RunInfo("overhead-benchmark", "n/a"), rows.append, dataset=data)
        if status != "ok":  # a diverged trial's epochs are not the step's speed
            raise SystemExit(f"harness_overhead.py: the harness's trial ended {status}: {rows[-1].get('error', '')}")
        return statistics.median(r["samples_per_s"] for r in rows if not r["warmup"])

    def bare_once() -> float:
        times = BARE_LOOPS[args.worker](
            data.x_train,
            data.y_train,
            data.num_classes,
            args.epochs,
            args.batch_size,
            args.lr,
            args.threads,
            nesterov=args.optimizer == "nesterov",
        )
        return statistics.median(len(data.y_train) / t for t in times[1:])

    for repeat in range(args.repeats):
        if repeat % 2 == 0:
            harness_runs.append(harness_once(repeat))
            bare_runs.append(bare_once())
        else:
            bare_runs.append(bare_once())
            harness_runs.append(harness_once(repeat))
    harness_sps, bare_sps = statistics.median(harness_runs), statistics.median(bare_runs)
    return {
        "backend": args.worker,
        "dataset": args.dataset,
        "train_images": len(data.y_train),
        "optimizer": args.optimizer,
        "threads": args.threads,
        "epochs": args.epochs,
        "harness_samples_per_s": harness_sps,
        "bare_samples_per_s": bare_sps,
        "ratio": harness_sps / bare_sps,
        # each repeat's harness / bare, the two run side by side: how far the ratio moves from draw to draw
        "paired_ratios": [h / b for h, b in zip(harness_runs, bare_runs, strict=True)],
        "harness_runs": harness_runs,
        "bare_runs": bare_runs,
    }


# The two workloads the acceptance names: (dataset, optimizer, threads, train_limit, epochs).
WORKLOADS = {
    "digits": ("digits", "momentum", 1, 0, 20),  # 20 epochs: a digits epoch lasts only 20-30 ms
    # 6 epochs: with 2 threads on 2 cores an epoch's speed moves by up to 15 % from one to the next (3 epochs, the
    # median of 2 per repeat, let single repeats' ratios part from 0.86 to 1.38)
    "fashion_mnist": ("fashion_mnist", "nesterov", 2, 6400, 6),
}


def _missing_data(datasets: list[str], data_dir: str | None) -> str:
    """What the workloads' data lack on this machine, said as the loader says it ('' when all is there)."""
    from harness.data import load_dataset
    from harness.data.locate import DataNotFoundError
    from harness.errors import InputError

    for dataset in dict.fromkeys(datasets):
        try:
            load_dataset(dataset, data_dir, download=False)
        except (DataNotFoundError, InputError) as error:  # missing files, or a name no loader has
            return str(error)
    return ""


def run_workload(args: argparse.Namespace, worker_args: list[str]) -> list[dict] | None:
    """Each backend in its own subprocess; None if one failed (its stderr is printed)."""
    results = []
    for backend in args.backends or ("torch", "tensorflow"):
        cmd = [sys.executable, __file__, "--worker", backend, *worker_args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return None
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"convnet3 on {results[0]['dataset']} ({results[0]['train_images']} training images), batch "
        f"{args.batch_size}, SGD {results[0]['optimizer']}, {results[0]['threads']} thread(s), "
        f"{results[0]['epochs']} epochs x {args.repeats} repeats"
    )
    print(f"{'backend':<11} {'harness samples/s':>18} {'bare samples/s':>15} {'ratio':>7}  each repeat's ratio")
    for r in results:
        print(
            f"{r['backend']:<11} {r['harness_samples_per_s']:>18,.0f} {r['bare_samples_per_s']:>15,.0f} "
            f"{r['ratio']:>7.3f}  {' '.join(f'{p:.3f}' for p in r['paired_ratios'])}"
        )
    return results


WORKLOAD_OPTIONS = {"dataset": "digits", "epochs": 6, "optimizer": "momentum", "threads": 1, "train_limit": 0}


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 before anything runs: a workload sets these options itself (given beside it, they were dropped
    unsaid), and counts the timing cannot use ended in a StatisticsError traceback, some after training."""
    given = [f"--{name.replace('_', '-')}" for name in WORKLOAD_OPTIONS if getattr(args, name) is not None]
    if args.workload and given:
        parser.error(
            f"--workload {args.workload} sets {', '.join(given)} itself: drop {', '.join(given)}, or --workload"
        )
    for name, default in WORKLOAD_OPTIONS.items():
        setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    for option, value, least in (
        ("--epochs", args.epochs, 2),  # the first epoch is warm-up, never timed
        ("--repeats", args.repeats, 1),
        ("--batch-size", args.batch_size, 1),
        ("--threads", args.threads, 1),
        ("--train-limit", args.train_limit, 0),
    ):
        if value < least:
            parser.error(f"expected {option} >= {least}; received {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", dest="backends", choices=("torch", "tensorflow"))
    parser.add_argument(
        "--workload",
        choices=(*WORKLOADS, "both"),
        help="a named workload's dataset, epochs, optimizer, threads and train limit (those options are then refused)",
    )
    # None: not given (a workload's, or the default below)
    parser.add_argument("--dataset", help="default: digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, help="at least 2: the first is warm-up (default 6)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--optimizer", choices=("momentum", "nesterov"), help="default: momentum")
    parser.add_argument("--threads", type=int, help="default 1")
    parser.add_argument("--train-limit", type=int, help="use the first N training images (0, the default: all)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    _check_options(parser, args)
    common = ["--repeats", str(args.repeats), "--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    common += ["--data-dir", args.data_dir] if args.data_dir else []
    if args.workload is None:
        runs = [[*common, "--dataset", args.dataset, "--epochs", str(args.epochs), "--optimizer", args.optimizer]]
        runs[0] += ["--threads", str(args.threads), "--train-limit", str(args.train_limit)]
    else:
        names = list(WORKLOADS) if args.workload == "both" else [args.workload]
        runs = []
        for dataset, optimizer, threads, limit, epochs in (WORKLOADS[n] for n in names):
            runs.append([*common, "--dataset", dataset, "--optimizer", optimizer, "--threads", str(threads)])
            runs[-1] += ["--train-limit", str(limit), "--epochs", str(epochs)]
    missing = _missing_data([run[run.index("--dataset") + 1] for run in runs], args.data_dir)
    if missing:  # before any workload: `make benchmark` without Fashion-MNIST ran digits, then a traceback
        print(f"harness_overhead.py: {missing}", file=sys.stderr)
        return 2
    results: list[dict] = []
    failed = False
    for worker_args in runs:
        got = run_workload(args, worker_args)
        if got is None:  # the workloads that finished are still written
            failed = True
            break
        results += got
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
