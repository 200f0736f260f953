"""What benchmarks/gpu_checks.sh's runs measured, read from its work folder (gpu_checks.sh runs this at its end and
keeps the output as summary.txt), so docs/gpu.md's figures come from a script rather than by hand:

    PYTHONPATH=. .venv/bin/python benchmarks/gpu_summary.py WORK_DIR
    PYTHONPATH=. .venv/bin/python benchmarks/gpu_summary.py --facts

1. Per run and trial: backend, variant, seed, the worker process and how many trials it ran before, the warm-up
   epoch's seconds, the median samples/s of the steady epochs, gpu_peak_mib (the most the framework held in
   tensors), test accuracy; and where WORK_DIR/nvidia-smi.csv holds samples over the trial's span (its first row's
   time less that epoch's seconds, to its last row's time), the GPU's largest memory.used (every process on it, the
   CUDA contexts and the allocators' reserves included) and the range of utilization.gpu.
2. Runs named <step>-r<round> (gpu_checks.sh's alternating rounds): per step and backend, each round's samples/s and
   the median over rounds.
3. Issue 12's GPU side: a worker process that ran a configuration (the seed aside) a second time must start it with
   the earlier trial's tensors released: torch resets its peak to what is allocated at the model's build, so a
   later trial's gpu_peak_mib holds whatever an earlier trial left allocated. Exit 1 if a later trial's is more than
   1 MiB above the earlier one's.

--facts prints the machine facts docs/gpu.md quotes from Python: its version, Ray's, and per framework (each in its
own process: one framework per process) its version, CUDA, cuDNN and whether it sees a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from harness.results import read_results
from harness.summary import final_rows, steady_rows

GROWTH_MIB = 1.0  # more than allocator rounding: a tensor left behind
ROUND = re.compile(r"^(?P<step>.+)-r(?P<round>\d+)$")
FRAMEWORK_FACTS = {
    "torch": "import torch\n"
    "print('torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(),"
    " '| sees a GPU:', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')",
    "tensorflow": "import tensorflow as tf\n"
    "info = tf.sysconfig.get_build_info()\n"
    "print('tensorflow', tf.__version__, '| CUDA', info.get('cuda_version'), '| cuDNN', info.get('cudnn_version'),"
    " '| sees a GPU:', tf.config.list_physical_devices('GPU'))",
}


def facts() -> list[str]:
    lines = [f"python {sys.version.split()[0]}"]
    try:
        import ray

        lines.append(f"ray {ray.__version__}")
    except ImportError:
        lines.append("ray: not installed")
    for name, code in FRAMEWORK_FACTS.items():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        said = done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or ["(nothing)"]
        lines.append(said[-1] if done.returncode == 0 else f"{name}: {said[-1]}")
    return lines


def gpu_samples(path: Path) -> pd.DataFrame:
    """nvidia-smi.csv's samples: time (UTC), utilization.gpu (%), memory.used (MiB); empty where there is none.
    nvidia-smi writes its timestamps in the machine's local time."""
    if not path.is_file():
        return pd.DataFrame(columns=["time", "util", "mib"])
    raw = pd.read_csv(path, skipinitialspace=True, on_bad_lines="skip")
    raw.columns = [c.split(" ")[0] for c in raw.columns]
    if not {"timestamp", "utilization.gpu", "memory.used"} <= set(raw.columns):
        return pd.DataFrame(columns=["time", "util", "mib"])
    local = datetime.now().astimezone().tzinfo
    time = pd.to_datetime(raw["timestamp"], format="%Y/%m/%d %H:%M:%S.%f", errors="coerce").dt.tz_localize(local)

    def number(column: str) -> pd.Series:
        return pd.to_numeric(raw[column].astype(str).str.extract(r"([\d.]+)")[0], errors="coerce")

    samples = pd.DataFrame({"time": time.dt.tz_convert("UTC"), "util": number("utilization.gpu")})
    return samples.assign(mib=number("memory.used")).dropna()


def _span(rows: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    stamps = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce").reset_index(drop=True)
    seconds = pd.to_numeric(rows["epoch_time_s"], errors="coerce").fillna(0.0).reset_index(drop=True)
    valid = stamps.dropna()
    if valid.empty:
        return None
    first = int(valid.argmin())  # a position among the valid stamps
    start = valid.iloc[first] - pd.Timedelta(seconds=float(seconds[valid.index[first]]))
    return start, valid.max()


def trial_table(frame: pd.DataFrame, samples: pd.DataFrame) -> list[dict]:
    """One entry per trial of a run (its last attempt), in the order its workers started them."""
    steady = steady_rows(frame)
    trials = []
    for _, final in final_rows(frame).iterrows():
        rows = frame[frame["trial_id"] == final["trial_id"]]
        warm = rows[rows["warmup"] == True]  # noqa: E712 (nullable booleans)
        mine = steady[steady["trial_id"] == final["trial_id"]]["samples_per_s"].dropna()
        entry = {
            "trial": str(final["trial_id"]),
            "backend": str(final["backend"]),
            "variant": str(final["variant"]) or "default",
            "seed": final["seed"],
            "status": str(final["status"]),
            "worker": None if pd.isna(final["worker_pid"]) else f"{final['node']}:{final['worker_pid']}",
            "before": final["worker_trials_before"],
            "warmup_s": float(warm["epoch_time_s"].iloc[0]) if len(warm) else math.nan,
            "samples_per_s": float(mine.median()) if len(mine) else math.nan,
            "gpu_peak_mib": float(rows["gpu_peak_mib"].max()),
            "test_acc": float(final["test_acc"]) if pd.notna(final["test_acc"]) else math.nan,
            "config": _config_but_seed(str(final["config_json"])),
            "smi_mib": math.nan,
            "smi_util": "",
        }
        span = _span(rows)
        inside = samples[(samples["time"] >= span[0]) & (samples["time"] <= span[1])] if span else samples[:0]
        if len(inside):
            entry["smi_mib"] = float(inside["mib"].max())
            entry["smi_util"] = f"{inside['util'].min():.0f}-{inside['util'].max():.0f} %"
        trials.append(entry)
    return sorted(trials, key=lambda t: (t["worker"] or "", -1 if pd.isna(t["before"]) else int(t["before"])))


def _config_but_seed(text: str) -> str:
    try:
        config = json.loads(text)
    except ValueError:
        return text
    if isinstance(config, dict):
        config.pop("seed", None)
    return json.dumps(config, sort_keys=True)


def memory_growth(trials: list[dict]) -> list[str]:
    """For each trial that a worker ran after an earlier trial of the same configuration: what it found."""
    said = []
    for earlier_index, earlier in enumerate(trials):
        for later in trials[earlier_index + 1 :]:
            same = later["worker"] is not None and (later["worker"], later["config"]) == (
                earlier["worker"],
                earlier["config"],
            )
            if not same or math.isnan(later["gpu_peak_mib"] + earlier["gpu_peak_mib"]):
                continue
            grown = later["gpu_peak_mib"] - earlier["gpu_peak_mib"]
            verdict = "GREW" if grown > GROWTH_MIB else "released"
            said.append(
                f"{verdict}: {later['backend']} trial {later['trial']} (the worker's trial {later['before']}) "
                f"{later['gpu_peak_mib']:,.0f} MiB against {earlier['trial']}'s {earlier['gpu_peak_mib']:,.0f} MiB"
            )
            break
    return said


def _fmt(value: float, spec: str) -> str:
    return "" if isinstance(value, float) and math.isnan(value) else format(value, spec)


def print_run(name: str, trials: list[dict]) -> None:
    print(f"\n## {name}\n")
    head = ("backend", "variant", "seed", "worker's trial", "warm-up s", "samples/s", "gpu_peak_mib")
    print("| " + " | ".join((*head, "nvidia-smi MiB", "GPU busy", "test acc", "status")) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in trials:
        print(
            f"| {t['backend']} | {t['variant']} | {t['seed']} | {t['before']} | {_fmt(t['warmup_s'], '.2f')} | "
            f"{_fmt(t['samples_per_s'], ',.0f')} | {_fmt(t['gpu_peak_mib'], ',.0f')} | {_fmt(t['smi_mib'], ',.0f')} | "
            f"{t['smi_util']} | {_fmt(t['test_acc'], '.4f')} | {t['status']} |"
        )


def print_rounds(runs: dict[str, list[dict]]) -> None:
    """Per step run in rounds and backend: each round's samples/s (the median over its trials) and their median."""
    measured: dict[tuple[str, str], dict[int, list[float]]] = {}
    for name, trials in runs.items():
        match = ROUND.match(name)
        if match is None:
            continue
        for t in trials:
            if t["status"] == "ok" and not math.isnan(t["samples_per_s"]):
                key = (match["step"], t["backend"])
                measured.setdefault(key, {}).setdefault(int(match["round"]), []).append(t["samples_per_s"])
    if not measured:
        return
    rounds = {key: {r: statistics.median(each) for r, each in got.items()} for key, got in measured.items()}
    print("\n## Alternating rounds: samples/s per round and the median\n")
    print("| step | backend | rounds | median samples/s |")
    print("|---|---|---|---|")
    for (step, backend), figures in rounds.items():
        each = ", ".join(f"{figures[r]:,.0f}" for r in sorted(figures))
        print(f"| {step} | {backend} | {each} | {statistics.median(figures.values()):,.0f} |")


def summarize(work: Path) -> int:
    samples = gpu_samples(work / "nvidia-smi.csv")
    runs = {}
    run_dirs = [p for p in (work / "runs").glob("*/") if not p.name.startswith("_")]  # not xfbench's _ray, _cache
    for run_dir in sorted(run_dirs, key=lambda p: p.stat().st_mtime):
        frame = read_results(run_dir)
        runs[run_dir.name] = trial_table(frame, samples) if len(frame) else []
        if runs[run_dir.name]:
            print_run(run_dir.name, runs[run_dir.name])
        else:
            print(f"\n## {run_dir.name}\n\nno rows (see its log)")
    print_rounds(runs)
    print("\n## GPU memory between trials of one warm worker (issue 12)\n")
    said = [line for trials in runs.values() for line in memory_growth(trials)]
    print("\n".join(said) or "Nothing to compare: no worker ran a configuration twice on a GPU.")
    return 1 if any(line.startswith("GREW") for line in said) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", nargs="?", type=Path, help="gpu_checks.sh's WORK_DIR")
    parser.add_argument("--facts", action="store_true", help="print the machine facts instead")
    args = parser.parse_args()
    if args.facts:
        print("\n".join(facts()))
        return 0
    if args.work is None or not (args.work / "runs").is_dir():
        parser.error(
            f"Expected WORK_DIR, gpu_checks.sh's work folder (with runs/). Received: {args.work}. To fix, give the "
            "folder gpu_checks.sh was given first."
        )
    return summarize(args.work)


if __name__ == "__main__":
    sys.exit(main())
