"""Ray Tune scheduling costs on this machine (a benchmark, not a test; figures go to docs/measurements.md).

For each backend:
1. Per-trial overhead (part ``overhead``): N trivial trials (a 4-unit MLP, 64 digits samples, one epoch) through
   the real path (runner -> Tune -> the backend's warm worker processes -> rows back to the driver), 2 at a time:
   seconds per trial, and the same with ``fresh_workers`` (a new process, so a framework import, per trial) on fewer
   trials. Seconds per trial come from the driver's clock when each trial ends: (last end - first end) / (N - 2),
   the first two, started together, ending together. The run's fixed costs (ray.init, Tune's start-up, summary.md,
   Ray's shutdown) are their own figure, the wall less N times that: divided by the trials with the rest, as until
   2026-12-05, they made the 10 fresh-worker trials carry ten times the warm 100's fixed cost per trial.
2. Worker memory (part ``memory``): M cnn_small trials on the whole of digits (one epoch each) one at a time, so one
   warm worker runs them all: its resident set size (/proc/<pid>/status VmRSS) when the first and the last trial
   report, and the growth between. Until 2026-12-07 these were the trivial trials, which allocate next to nothing.
3. Warm-up by ``worker_trials_before`` (part ``warmup``): W cnn_small trials on digits (3 epochs, the first
   warm-up) one at a time in one warm worker, and F more with ``fresh_workers``, each a process's first: the
   median warm-up epoch of processes' first trials (``worker_trials_before`` 0) against later ones, and the median
   steady epoch of each, so the one-off costs of a new process that fall into its first trial's warm-up show.
And once:
4. Driver start-up (part ``driver``): importing the CLI (a fresh interpreter, its start included); in another fresh
   process the imports that planning needs (harness.cli, harness.preflight), then planning and the preflight of the
   quick suite, each timed apart (plan_and_preflight_quick_s is the two without the imports; until 2026-12-05 it
   held the imports too); importing Ray and starting it, apart; and the time from the run's start to its first row
   (scheduling plus the first worker's start and import), a trial of the first --backend given (torch by default).
5. The quick suite (part ``quick``: the main job, `xfbench run --suite quick`, both backends whatever --backend
   says), wall time of the whole command.

    .venv/bin/python benchmarks/scheduling.py [--part overhead|memory|warmup|driver|quick ...] [--trials 100]
        [--fresh-trials 10] [--memory-trials 200] [--warmup-trials 10] [--warmup-fresh-trials 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import TrialConfig  # noqa: E402
from harness.data.tasks import TaskSpec  # noqa: E402
from harness.models import ModelOptions  # noqa: E402
from harness.plan import RunPlan  # noqa: E402
from harness.provenance import usable_cpus  # noqa: E402
from harness.runner import execute  # noqa: E402
from harness.scheduler import SchedulerSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("overhead", "memory", "warmup", "driver", "quick")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RowClock:
    """A runner progress sink: when the first row arrived, and each worker's RSS at each trial's first row."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_row_s: float | None = None
        self.rss: list[tuple[str, int, float]] = []  # (trial id, worker pid, RSS MB) at each trial's first row
        self.ends: list[float] = []  # seconds from the start to each trial's end, as the driver learns of it
        self._seen: set[str] = set()

    def row(self, row: dict[str, Any]) -> None:
        if self.first_row_s is None:
            self.first_row_s = time.perf_counter() - self.started
        pid = row.get("worker_pid")
        if pid and row["trial_id"] not in self._seen and Path(f"/proc/{pid}").exists():
            self._seen.add(row["trial_id"])
            self.rss.append((row["trial_id"], int(pid), _rss_mb(int(pid))))

    def start(self, total_trials: int) -> None: ...

    def extend(self, more_trials: int) -> None: ...

    def trial_done(self, trial_id: str) -> None:
        self.ends.append(time.perf_counter() - self.started)

    def stop(self) -> None: ...

    def warn(self, text: str) -> None:
        print(text, file=sys.stderr)


def _trivial(backend: str, n: int) -> list[TrialConfig]:
    tiny = ModelOptions(hidden=(4,))
    base = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend=backend, seed=0, epochs=1,
                       model_options=tiny, task=TaskSpec(train_limit=64), suite="bench")  # fmt: skip
    return [replace(base, seed=s) for s in range(n)]


def _cnn_small(backend: str, n: int, epochs: int) -> list[TrialConfig]:
    """A real model on the whole of digits: it allocates what a trial does (the trivial MLP next to nothing)."""
    base = TrialConfig(strategy="scratch", model="cnn_small", dataset="digits", backend=backend, seed=0,
                       epochs=epochs, suite="bench")  # fmt: skip
    return [replace(base, seed=s) for s in range(n)]


class Timed(NamedTuple):
    wall: float
    clock: RowClock
    frame: pd.DataFrame  # the run's rows, worker_trials_before included (the progress sink sees rows without it)


def _run(trials: list[TrialConfig], root: Path, run_id: str, concurrent: int, fresh: bool) -> Timed:
    settings = SchedulerSettings(storage_dir=root / "_ray", cpus_per_trial=1, max_concurrent=concurrent,
                                 fresh_workers=fresh)  # fmt: skip
    clock = RowClock()
    # no report.html: its plots are no part of scheduling a trial
    outcome = execute(
        RunPlan.of_trials(trials), results_dir=root, run_id=run_id, settings=settings, progress=clock, html_report=False
    )
    wall = time.perf_counter() - clock.started
    if not outcome.all_ok:
        frame = outcome.frame
        first = next((str(e) for e in frame.loc[frame["status"] != "ok", "error"] if str(e)), "no error recorded")
        raise SystemExit(
            f"{run_id}: not every trial finished ok: {frame['status'].value_counts().to_dict()}; "
            f"the first error: {first}"
        )
    return Timed(wall, clock, outcome.frame)


def per_trial(wall: float, clock: RowClock, concurrent: int) -> tuple[float, float]:
    """(seconds per trial, fixed seconds) of a run of ``concurrent`` trials at a time. The first ``concurrent``
    trials start together and end together, so the trials after them ran from the first end to the last: their
    seconds each, the run's throughput without its fixed costs. Fixed: the wall less that for every trial."""
    ends = sorted(clock.ends)
    if len(ends) <= concurrent:
        raise SystemExit(f"Expected more trials than {concurrent} at a time to time one. Received: {len(ends)}.")
    seconds = (ends[-1] - ends[0]) / (len(ends) - concurrent)
    return seconds, wall - seconds * len(ends)


def overhead(backend: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    concurrent = min(2, usable_cpus())
    warm_run = _run(_trivial(backend, args.trials), root, f"warm-{backend}", concurrent, fresh=False)
    fresh_run = _run(_trivial(backend, args.fresh_trials), root, f"fresh-{backend}", concurrent, fresh=True)
    warm, warm_fixed = per_trial(warm_run.wall, warm_run.clock, concurrent)
    fresh, fresh_fixed = per_trial(fresh_run.wall, fresh_run.clock, concurrent)
    return {
        "warm_s_per_trial": round(warm, 3),
        "warm_fixed_s": round(warm_fixed, 2),
        "fresh_s_per_trial": round(fresh, 3),
        "fresh_fixed_s": round(fresh_fixed, 2),
    }


def memory(backend: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    clock = _run(_cnn_small(backend, args.memory_trials, 1), root, f"memory-{backend}", 1, fresh=False).clock
    by_pid: dict[int, list[float]] = {}
    for _, pid, rss in clock.rss:
        by_pid.setdefault(pid, []).append(rss)
    # growth within one process: the first and last rows may come from two (a worker Tune replaced)
    longest = max(by_pid.values(), key=len)
    first, last = longest[0], longest[-1]
    return {
        "memory_model": "cnn_small on digits, 1 epoch",
        "memory_trials": args.memory_trials,
        "memory_worker_processes": len(by_pid),
        "memory_trials_in_longest_worker": len(longest),
        "worker_rss_mb_first_trial": round(first, 1),
        "worker_rss_mb_last_trial": round(last, 1),
        "worker_rss_growth_mb": round(last - first, 1),
    }


def warmup_by_trials_before(frame: pd.DataFrame) -> dict[str, Any]:
    """Each ok trial's warm-up epoch and median steady epoch, grouped into processes' first trials
    (``worker_trials_before`` 0) and later ones: for each group its count, the medians, and the warm-up's range (is
    a difference of medians more than the spread?). A group with no trial gives None."""
    ok = frame[frame["status"] == "ok"]
    keys = ["run_id", "trial_id"]
    warmup = ok["warmup"].astype(bool)
    trials = pd.DataFrame({
        "before": ok.groupby(keys)["worker_trials_before"].first(),
        "warmup_s": ok[warmup].groupby(keys)["epoch_time_s"].first(),
        "steady_s": ok[~warmup].groupby(keys)["epoch_time_s"].median(),
    })  # fmt: skip
    out: dict[str, Any] = {}
    for name, group in (("first", trials[trials["before"] == 0]), ("later", trials[trials["before"] > 0])):
        warm, steady = group["warmup_s"].dropna().tolist(), group["steady_s"].dropna().tolist()
        out[f"{name}_trials"] = len(group)
        out[f"{name}_warmup_s_median"] = round(statistics.median(warm), 4) if warm else None
        out[f"{name}_warmup_s_range"] = [round(min(warm), 4), round(max(warm), 4)] if warm else None
        out[f"{name}_steady_s_median"] = round(statistics.median(steady), 4) if steady else None
    return out


def warmup(backend: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One warm worker's trials one at a time (its first, then later ones), and first trials of fresh processes one
    at a time too (no other trial's import on the cores while one is timed)."""
    frames = [_run(_cnn_small(backend, args.warmup_trials, 3), root, f"warmup-{backend}", 1, fresh=False).frame]
    if args.warmup_fresh_trials:
        trials = _cnn_small(backend, args.warmup_fresh_trials, 3)
        frames.append(_run(trials, root, f"warmup-fresh-{backend}", 1, fresh=True).frame)
    return {"warmup_model": "cnn_small on digits, 3 epochs", **warmup_by_trials_before(pd.concat(frames))}


def _output(cmd: list[str]) -> str:
    """The command's stdout; on failure its stderr is printed before the error is raised (captured, it was lost)."""
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        done.check_returncode()
    return done.stdout


# The imports that planning and preflight need, then each of the two, timed apart in one fresh process: until
# 2026-12-05 one timer held all three, so "planning and preflight" was mostly the import of harness.cli.
PLAN = (
    "import time; t0 = time.perf_counter(); from harness.cli import build_parser, plan_from_args; "
    "from harness.preflight import preflight; t1 = time.perf_counter(); "
    "p = plan_from_args(build_parser().parse_args(['run'])); t2 = time.perf_counter(); "
    "preflight(list(p.planned_trials), None, download=False); t3 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1, t3 - t2)"
)


def driver_startup(root: Path, backend: str) -> dict[str, float]:
    python = sys.executable
    t = time.perf_counter()
    _output([python, "-c", "import harness.cli"])
    import_s = time.perf_counter() - t  # the interpreter's start included
    imports_s, plan_s, preflight_s = (float(v) for v in _output([python, "-c", PLAN]).split()[-3:])
    code = (
        "import time; t = time.perf_counter(); import ray; i = time.perf_counter() - t; t = time.perf_counter(); "
        "ray.init(address='local', include_dashboard=False); print(i, time.perf_counter() - t)"
    )
    ray_import_s, ray_s = (float(v) for v in _output([python, "-c", code]).split()[-2:])
    clock = _run(_trivial(backend, 1), root, "first-row", 1, fresh=False).clock
    return {
        "import_cli_s": round(import_s, 2),
        "plan_imports_s": round(imports_s, 3),  # harness.cli and harness.preflight, in the planning process
        "plan_quick_s": round(plan_s, 3),
        "preflight_quick_s": round(preflight_s, 3),
        "plan_and_preflight_quick_s": round(plan_s + preflight_s, 3),  # without the imports, since 2026-12-05
        "ray_import_s": round(ray_import_s, 2),  # the driver imports Ray before it starts it
        "ray_init_s": round(ray_s, 2),
        "run_start_to_first_row_s": round(clock.first_row_s or 0.0, 2),
    }


def quick_suite(root: Path) -> float:
    cmd = [str(Path(sys.executable).with_name("xfbench")), "run", "--results-dir", str(root), "--run-id", "quick"]
    t = time.perf_counter()
    _output(cmd)
    return round(time.perf_counter() - t, 1)


BACKEND_PARTS = {"overhead": overhead, "memory": memory, "warmup": warmup}
# flag: (least, an even count): 2 at a time, the trials after the first two end in pairs, so an even count of them,
# several pairs, is timed whole (3 trials timed the third alone, a whole slot for one trial: twice its share, and a
# negative fixed cost); a warm worker's warm-up needs its first trial and a later one
COUNTS = {"trials": (6, True), "fresh_trials": (6, True), "memory_trials": (1, False), "warmup_trials": (2, False),
          "warmup_fresh_trials": (0, False)}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", action="append", dest="parts", choices=PARTS, help="what to measure (all by default)")
    parser.add_argument("--trials", type=int, default=100, help="warm trivial trials per backend (even, >= 6)")
    parser.add_argument("--fresh-trials", type=int, default=10, help="with fresh workers (even, >= 6)")
    parser.add_argument("--memory-trials", type=int, default=200, help="one after another in one worker (>= 1)")
    parser.add_argument("--warmup-trials", type=int, default=10, help="cnn_small in one warm worker (>= 2)")
    parser.add_argument("--warmup-fresh-trials", type=int, default=4, help="cnn_small, each a new process's first")
    parser.add_argument("--backend", action="append", dest="backends", choices=("torch", "tensorflow"))
    args = parser.parse_args()
    for flag, (least, even) in COUNTS.items():
        if getattr(args, flag) < least or (even and getattr(args, flag) % 2):
            count = "an even count " if even else ""
            parser.error(f"Expected --{flag.replace('_', '-')} {count}>= {least}. Received: {getattr(args, flag)}.")
    return args


def main() -> None:
    args = parse_args()
    parts = args.parts or PARTS
    report: dict[str, Any] = {"cpus": usable_cpus()}
    with tempfile.TemporaryDirectory(prefix="xfbench-sched-") as tmp:
        root = Path(tmp)
        for backend in args.backends or ("torch", "tensorflow"):
            report[backend] = {}
            for part in (p for p in PARTS if p in parts and p in BACKEND_PARTS):
                figures = BACKEND_PARTS[part](backend, root, args)
                report[backend].update(figures)
                print(json.dumps({backend: {part: figures}}), flush=True)
        if "driver" in parts:
            report["driver"] = driver_startup(root, (args.backends or ["torch"])[0])
            print(json.dumps({"driver": report["driver"]}), flush=True)  # kept should the quick suite fail
        if "quick" in parts:
            report["quick_suite_wall_s"] = quick_suite(root)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
