"""Ray Tune scheduling costs on this machine (a benchmark, not a test; figures go to docs/measurements.md).

1. Per-trial overhead: N trivial trials (a 4-unit MLP, 64 digits samples, one epoch) through the real path
   (runner -> Tune -> a fresh worker process per trial -> framework import -> rows back to the driver).
   Reported: wall seconds per trial, the seconds per trial spent training and evaluating (from the rows), and
   the rest, which is the scheduling overhead (process start, imports, data load, reporting).
2. Concurrency scaling: the same M small real trials with at most 1, then at most 2, concurrent trials.

    .venv/bin/python benchmarks/scheduling.py [--trials 100] [--backend torch] [--scaling-trials 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import TrialConfig  # noqa: E402
from harness.data.tasks import TaskSpec  # noqa: E402
from harness.models import ModelOptions  # noqa: E402
from harness.plan import RunPlan  # noqa: E402
from harness.runner import execute  # noqa: E402
from harness.scheduler import SchedulerSettings  # noqa: E402


def _run(trials: list[TrialConfig], root: Path, run_id: str, max_concurrent: int) -> tuple[float, float]:
    """Wall seconds of the run and total in-trial compute seconds (training + evaluation) from its rows."""
    settings = SchedulerSettings(storage_dir=root / "_ray", cpus_per_trial=1, max_concurrent=max_concurrent)
    start = time.perf_counter()
    outcome = execute(RunPlan.of_trials(trials), results_dir=root, run_id=run_id, settings=settings)
    wall = time.perf_counter() - start
    if not outcome.all_ok:
        raise SystemExit(f"{run_id}: not every trial finished ok: {outcome.frame['status'].value_counts().to_dict()}")
    compute = float(outcome.frame["epoch_time_s"].sum() + outcome.frame["eval_time_s"].sum())
    return wall, compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--scaling-trials", type=int, default=8)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    report: dict[str, object] = {"cpus": cpus, "backend": args.backend}
    with tempfile.TemporaryDirectory(prefix="xfbench-sched-") as tmp:
        root = Path(tmp)
        trivial = TrialConfig(
            strategy="scratch",
            model="mlp",
            dataset="digits",
            backend=args.backend,
            seed=0,
            epochs=1,
            model_options=ModelOptions(hidden=(4,)),
            task=TaskSpec(train_limit=64),
            suite="bench",
        )
        trials = [replace(trivial, seed=s) for s in range(args.trials)]
        wall, compute = _run(trials, root, "trivial", max_concurrent=cpus)
        per_trial = wall / args.trials
        report["trivial"] = {
            "trials": args.trials,
            "concurrent": cpus,
            "wall_s": round(wall, 1),
            "wall_s_per_trial": round(per_trial, 3),
            "compute_s_per_trial": round(compute / args.trials, 3),
            "overhead_s_per_trial_slot": round(per_trial * cpus - compute / args.trials, 3),
        }
        small = TrialConfig(
            strategy="scratch",
            model="convnet3",
            dataset="digits",
            backend=args.backend,
            seed=0,
            epochs=3,
            suite="bench",
        )
        scaling = {}
        for concurrent in (1, 2):
            batch = [replace(small, seed=s) for s in range(args.scaling_trials)]
            wall, compute = _run(batch, root, f"scaling-{concurrent}", max_concurrent=concurrent)
            scaling[concurrent] = {"wall_s": round(wall, 1), "compute_s": round(compute, 1)}
        scaling["speedup_2_over_1"] = round(scaling[1]["wall_s"] / scaling[2]["wall_s"], 2)
        report["scaling"] = {"trials": args.scaling_trials, **{str(k): v for k, v in scaling.items()}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
