"""The speed matrix's modes measured per backend, without Ray: each variant of the speed_matrix suite
(harness/suites.py SPEED_VARIANTS) that the backend declares, configured as the suite configures it but for the
epochs: 4 by default (the suite trains 3), for one more steady epoch per figure.

    PYTHONPATH=. .venv/bin/python benchmarks/speed_modes.py --backend tensorflow [--model convnet3] [--epochs 4]
        [--variant default --variant fit ...] [--repeats 3] [--bn-statistics float64] [--process-per-variant]

Prints per model and variant the median samples/s of the steady epochs (2..N), the warm-up epoch's seconds and the
ratio to the default mode. The variants run in the order --variant gives them (without --variant, SPEED_VARIANTS'
order). With --repeats N (default 3; until 2026-12-07 it was 1) every variant runs N times, in ABBA order: the
first round in that order, the second reversed, the third forward again, and so on, so drift over the run hits every
variant alike; each figure is the median over the rounds (the machine's noise moves single trials by 10-20 %), and
the spread printed is the lowest and highest round. A trial that does not end ok (diverged: its epochs are not the
step's speed) stops the script.

By default every trial runs in this one process, one after the other (configure_runtime's thread settings hold from
the first). XLA (and torch.compile) leave process-wide state behind: a default-mode trial after an XLA trial in the
same process ran 11-35 % slower (docs/measurements.md, "Worker groups"). In one process, then, every trial after
the first XLA or torch.compile trial is measured in a process they changed: in the first round the variants after
it in the --variant order, from the second round on all of them. With --process-per-variant each trial runs in a
fresh process of its own (this script with one --variant, its figures read back as JSON), in the same ABBA order:
nothing one variant leaves in a process touches another's. Each trial's warm-up epoch then also holds the
framework's first-trial costs, which in one process only the first trial pays (warm-up is kept out of samples/s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.config import BN_STATISTICS, OptimizerConfig, TrialConfig
from harness.data import load_dataset
from harness.suites import SPEED_MODELS, SPEED_VARIANTS, backends_able, speed_variant_applies
from harness.trial import RunInfo, run_trial

MODELS = dict(SPEED_MODELS)  # mlp (256), convnet3, cnn_small, resnet20 (width 0.5): as the suite configures them
ROOT = Path(__file__).resolve().parents[1]


def round_order(labels: Sequence[str], round_index: int) -> list[str]:
    """The variants' order in round ``round_index`` (0-based): as given in even rounds, reversed in odd ones (ABBA)."""
    return list(labels) if round_index % 2 == 0 else list(reversed(labels))


def trial_order(labels: Sequence[str], repeats: int) -> list[str]:
    """Every trial of ``repeats`` rounds, in the order they run."""
    return [label for r in range(repeats) for label in round_order(labels, r)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--model", action="append", choices=tuple(MODELS))
    parser.add_argument("--variant", action="append", help="only these SPEED_VARIANTS labels, in this order")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--repeats", type=int, help="rounds of every variant, in ABBA order (default 3; with --trial-json 1)"
    )
    parser.add_argument("--bn-statistics", choices=BN_STATISTICS, default="float32", help="as xfbench run's")
    parser.add_argument(
        "--process-per-variant", action="store_true", help="run each trial in a fresh process of its own"
    )
    parser.add_argument("--trial-json", action="store_true", help=argparse.SUPPRESS)  # one trial, as JSON
    args = parser.parse_args(argv)
    if args.repeats is None:  # one round was the default, and single trials of a noisy machine became doc tables
        args.repeats = 1 if args.trial_json else 3
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
    args.variants = list(dict.fromkeys(args.variant or declared))  # the order given, each once
    if args.trial_json and (len(args.variants) != 1 or len(args.model or ()) != 1 or args.repeats != 1):
        parser.error("Expected --trial-json with one --model, one --variant and --repeats 1.")
    return args


def measure(args: argparse.Namespace, model: str, label: str, data: Any) -> tuple[float, float]:
    """(steady samples/s, warm-up seconds) of one trial of ``label`` on ``model``, in this process."""
    runtime = dataclasses.replace(dict(SPEED_VARIANTS)[label], bn_statistics=args.bn_statistics)
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
    status = run_trial(config, RunInfo("speed-modes", "n/a"), rows.append, dataset=data)
    if status != "ok":  # a diverged trial's epochs are not the step's speed
        raise SystemExit(f"speed_modes.py: the {label} trial on {model} ended {status}: {rows[-1].get('error', '')}")
    steady = statistics.median(r["samples_per_s"] for r in rows if not r["warmup"])
    return steady, rows[0]["epoch_time_s"]


def child_command(args: argparse.Namespace, model: str, label: str) -> list[str]:
    """This script, for one trial of ``label`` on ``model`` in a fresh process."""
    return [
        sys.executable, str(Path(__file__).resolve()), "--backend", args.backend, "--model", model,
        "--variant", label, "--epochs", str(args.epochs), "--bn-statistics", args.bn_statistics, "--trial-json",
    ]  # fmt: skip


def measure_in_fresh_process(args: argparse.Namespace, model: str, label: str) -> tuple[float, float]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        child_command(args, model, label), capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
    )
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(f"The {label} trial on {model} failed in its own process (exit {done.returncode}).")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return got["samples_per_s"], got["warmup_s"]


def report(args: argparse.Namespace, model: str, rounds: dict[str, list[tuple[float, float]]]) -> None:
    base = statistics.median(s for s, _ in rounds["default"]) if "default" in rounds else None
    for label, measured in rounds.items():
        speeds = [s for s, _ in measured]
        sps, warm = statistics.median(speeds), statistics.median(w for _, w in measured)
        ratio = f"{sps / base:5.2f}x" if base else "(no default measured)"  # --variant without default
        print(
            f"{args.backend} {model:9s} {label:14s} {sps:10,.0f} samples/s ({min(speeds):,.0f}-{max(speeds):,.0f})"
            f"  warm-up {warm:6.2f} s  {ratio}"
        )


def _measured_after_compilers(variants: Sequence[str], repeats: int, models: int = 1) -> list[str]:
    """The variants some of whose trials run in one process after an XLA or torch.compile trial, ``models`` models
    one after another (each runs every variant's rounds: the second model's follow the first's compiler trials)."""
    compilers = {label for label, runtime in SPEED_VARIANTS if runtime.jit_compile or runtime.torch_compile}
    seen, after = False, []
    for label in trial_order(list(variants), repeats) * models:
        if seen and label not in after:
            after.append(label)
        seen = seen or label in compilers
    return [label for label in variants if label in after]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    data = None if args.process_per_variant else load_dataset("digits", None, download=False)
    if args.trial_json:
        steady, warm = measure(args, args.model[0], args.variants[0], data)
        print(json.dumps({"samples_per_s": steady, "warmup_s": warm}))
        return
    order = " -> ".join(args.variants) + (", then reversed (ABBA)" if args.repeats > 1 else "")
    runs = "each trial in a fresh process" if args.process_per_variant else "every trial in this process"
    print(f"{args.backend}: {args.repeats} round(s) of {order}; {runs}", flush=True)
    models = len(args.model or MODELS)
    if not args.process_per_variant and (changed := _measured_after_compilers(args.variants, args.repeats, models)):
        print(  # the default command gave biased figures without a word
            f"warning: {', '.join(changed)} run in this process after an XLA or torch.compile trial (after XLA, "
            "later trials ran 11-35 % slower here: docs/measurements.md): pass --process-per-variant for unbiased "
            "figures",
            flush=True,
        )
    for model in args.model or MODELS:
        variants = [label for label in args.variants if speed_variant_applies(model, dict(SPEED_VARIANTS)[label])]
        rounds: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
        for label in trial_order(variants, args.repeats):
            if args.process_per_variant:
                rounds[label].append(measure_in_fresh_process(args, model, label))
            else:
                rounds[label].append(measure(args, model, label, data))
            if args.repeats > 1:
                print(f"  round {len(rounds[label])} {label}: {rounds[label][-1][0]:,.0f} samples/s", flush=True)
        report(args, model, rounds)


if __name__ == "__main__":
    main()
