"""The epoch-time rules of `xfbench compare` side by side on real runs: why the interval resamples trials and
why the mark needs the band (docs/regressions.md, figures in docs/measurements.md).

    .venv/bin/python benchmarks/compare_rules.py RESULTS_DIR BASE NEW [BASE NEW ...]

Per pair and (case, backend): the ratio new/base of steady medians; the old rule (ratio > 1.10 and one-sided
Mann-Whitney p < 0.01, pooled epochs); a 95 % bootstrap interval over pooled epochs alone and whether it
excludes 1; the hierarchical interval (trials, then epochs) and whether it excludes 1; and the verdict
`xfbench compare` gives: the hierarchical interval beyond the 1.10 band, Mann-Whitney agreeing, and Welch's test
on the trials' log median epoch times agreeing, with two trials or more a side (one seed on a side decides no time
change: the noise between trials is unknown; harness/compare.py's docstring).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from harness.compare import CASE_COLUMNS, Thresholds, _case_rows, comparable, compare_frames
from harness.results import read_results
from harness.statistics import StatsSettings, epochs_by_trial, ratio_interval
from harness.summary import steady_rows


def _outside(low: float, high: float, value: float) -> str:
    return "yes" if low > value or high < value else "no"


def compare_pair(results: Path, base_id: str, new_id: str) -> None:
    base, new = comparable(read_results(results / base_id)), comparable(read_results(results / new_id))
    t, settings = Thresholds(), StatsSettings()
    verdicts = compare_frames(base, new, t)
    print(f"\n{base_id} -> {new_id}")
    print("case · backend | ratio | old rule | epochs-only CI (excl. 1) | hierarchical CI (excl. 1) | compare")
    # the order compare_frames gives its rows in
    keys = sorted(
        set(map(tuple, base[CASE_COLUMNS].drop_duplicates().to_numpy()))
        | set(map(tuple, new[CASE_COLUMNS].drop_duplicates().to_numpy()))
    )
    for key, verdict in zip(keys, verdicts, strict=True):
        b, n = epochs_by_trial(steady_rows(_case_rows(base, key))), epochs_by_trial(steady_rows(_case_rows(new, key)))
        if not b or not n:
            continue
        pooled_b, pooled_n = np.concatenate(b), np.concatenate(n)
        ratio, flat_low, flat_high = ratio_interval([pooled_n], [pooled_b], settings)
        _, low, high = ratio_interval(n, b, settings)
        slower = mannwhitneyu(pooled_n, pooled_b, alternative="greater").pvalue
        faster = mannwhitneyu(pooled_n, pooled_b, alternative="less").pvalue
        old = (ratio > t.time_ratio and slower < t.alpha) or (ratio < 1 / t.time_ratio and faster < t.alpha)
        print(
            f"{verdict.case} · {verdict.backend} | {ratio:.3f} | {'flagged' if old else '-'} | "
            f"[{flat_low:.3f}, {flat_high:.3f}] ({_outside(flat_low, flat_high, 1.0)}) | "
            f"[{low:.3f}, {high:.3f}] ({_outside(low, high, 1.0)}) | {verdict.time_verdict}"
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """RESULTS_DIR and the BASE NEW pairs, checked before any run is read: --help was taken for RESULTS_DIR (no
    output, exit 0), no arguments ended in an IndexError, an odd count in zip's ValueError."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the folder that holds the runs")
    parser.add_argument("runs", nargs="+", metavar="BASE NEW", help="run ids, in pairs: each base, then its new run")
    args = parser.parse_args(argv)
    if len(args.runs) % 2:
        parser.error(
            f"Expected BASE NEW pairs of run ids. Received: {len(args.runs)} run id(s) ({' '.join(args.runs)}). "
            "To fix, give an even number of run ids, each base followed by its new run."
        )
    absent = [run for run in args.runs if not (args.results / run).is_dir()]
    if absent:
        parser.error(
            f"Expected run folders under RESULTS_DIR. Received: {', '.join(absent)}, not folders in {args.results}. "
            "To fix, give the --results-dir the runs were written to and their run ids (xfbench history lists them)."
        )
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for base_id, new_id in zip(args.runs[::2], args.runs[1::2], strict=True):
        compare_pair(args.results, base_id, new_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
