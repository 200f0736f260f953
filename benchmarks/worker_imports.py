"""What a fresh trial worker spends importing, per backend (a benchmark, not a test; figures go to
docs/measurements.md, "Worker start-up").

A worker imports Ray Tune (the trainable's module), the harness's trial code and its backend's adapter, which
imports the framework. For TensorFlow the adapter imports TensorFlow and Keras through
backends/tensorflow/framework.py, which keeps Keras from importing scikit-learn and matplotlib at start; the
``tensorflow-keras-first`` variant imports Keras before the adapter, as every worker did before, so the two are
measured in one run, in ABBA order (each repeat runs the variants in the reverse of the one before, so drift over
the run hits them alike), and the medians compared.

    .venv/bin/python benchmarks/worker_imports.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = "import ray.tune\nimport harness.scheduler, harness.trial\nfrom harness.backend import load_backend\n"
LOAD = "from harness.config import RuntimeOptions\nload_backend({name!r}, RuntimeOptions())\n"
VARIANTS = {
    "torch": WORKER + LOAD.format(name="torch"),
    "tensorflow": WORKER + LOAD.format(name="tensorflow"),
    "tensorflow-keras-first": WORKER + "import keras\n" + LOAD.format(name="tensorflow"),
}


def _seconds(code: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:  # captured, the worker's error was lost
        print(done.stderr, file=sys.stderr)
        done.check_returncode()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for i in range(args.repeats):
        for name in list(VARIANTS) if i % 2 == 0 else reversed(VARIANTS):  # ABBA
            times[name].append(_seconds(VARIANTS[name]))
    for name, values in times.items():
        print(f"{name:24s} median {statistics.median(values):6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
