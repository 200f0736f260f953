"""How often the within-run time ratio is marked (`*`, the Statistics table) when nothing differs, and when one
backend is 1.3x slower: the bootstrap interval alone against the interval with Welch's test on the trials' log
medians beside it (harness.statistics; figures in docs/regressions.md). With --between-runs, the same for
`xfbench compare`'s time verdict between two runs (harness.compare: the interval beyond the 1.10 band and the
Mann-Whitney test over the epochs, with and without Welch's test on the trials beside them; one seed on a side
decides nothing beyond the band, whatever the epochs say).

    .venv/bin/python benchmarks/time_mark_rule.py [--pairs 300] [--seed 1] [--between-runs [--slowdowns 1,2,5]]

Each side is drawn from one distribution: per trial a level exp(N(0, spread)), per epoch 3 % noise around it
(2 % between runs, as a review measured the quick suite's steady epochs).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from harness.compare import Thresholds, _time_verdict
from harness.statistics import StatsSettings, ratio_interval, trials_test

# (trials a side, steady epochs a trial, spread between trials)
SHAPES = ((2, 1, 0.0), (2, 3, 0.1), (2, 9, 0.1), (3, 5, 0.1), (3, 1, 0.0), (4, 3, 0.05))


def _side(
    rng: np.random.Generator, trials: int, epochs: int, spread: float, level: float, epoch_noise: float = 0.03
) -> list[np.ndarray]:
    return [level * np.exp(rng.normal(0, spread)) * (1 + rng.normal(0, epoch_noise, epochs)) for _ in range(trials)]


def marked_rates(
    rng: np.random.Generator, shape: tuple[int, int, float], slowdown: float, pairs: int
) -> tuple[float, float]:
    """(share marked by the bootstrap interval alone, share marked by the interval and Welch's test)."""
    settings = StatsSettings()  # the product's 2,000 resamples, so the rates are those of the rule summary.md applies
    alone = both = 0
    for _ in range(pairs):
        slow, base = _side(rng, *shape, slowdown), _side(rng, *shape, 1.0)
        _, low, high = ratio_interval(slow, base, settings)
        excluded = low > 1 or high < 1
        alone += excluded
        both += excluded and trials_test(slow, base) < 1 - settings.confidence
    return alone / pairs, both / pairs


# (trials a side, steady epochs a trial, spread between trials): two and three seeds of the quick suite's shape, and
# one seed of nine steady epochs (a one-seed catalogue suite's: what its epochs alone called a regression)
RUN_SHAPES = ((2, 4, 0.05), (2, 4, 0.1), (2, 4, 0.15), (3, 4, 0.1), (3, 4, 0.15), (1, 9, 0.1))


def _run_rows(sides: list[np.ndarray]) -> pd.DataFrame:
    """One run's steady rows of one case: what harness.compare reads of them."""
    return pd.DataFrame(
        [{"trial_id": f"t{i}", "epoch_time_s": float(t)} for i, times in enumerate(sides) for t in times]
    )


def verdict_rates(
    rng: np.random.Generator, shape: tuple[int, int, float], slowdown: float, pairs: int
) -> tuple[float, float]:
    """(share the epochs alone call a regression: the interval above the band and Mann-Whitney's p below alpha,
    share compare calls one): compare's own verdict, the product's thresholds. What the epochs decided and compare
    did not is held back by the trials' test (two trials a side or more) or by one seed on a side."""
    t = Thresholds()
    without = with_trials = 0
    for _ in range(pairs):
        base = _side(rng, *shape, 1.0, epoch_noise=0.02)
        new = _side(rng, *shape, slowdown, epoch_noise=0.02)
        change = _time_verdict(_run_rows(base), _run_rows(new), t)
        with_trials += change.verdict == "regression"
        # p is the test of the ratio's direction: above 1, new slower (NaN bounds compare False)
        without += change.ratio > 1.0 and change.ci[0] > t.time_ratio and change.p < t.alpha
    return without / pairs, with_trials / pairs


def _slowdowns(text: str) -> tuple[float, ...]:
    """--slowdowns: ratios new/base, comma-separated."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not value > 0 for value in values):
        raise argparse.ArgumentTypeError(
            f"Expected --slowdowns: positive ratios separated by commas. Received: {text!r}. To fix, give e.g. 1,2,5."
        )
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="simulated pairs of sides per row (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1)")
    parser.add_argument("--between-runs", action="store_true", help="xfbench compare's verdict, not the mark")
    parser.add_argument(
        "--slowdowns",
        type=_slowdowns,
        default=(1.0, 1.3, 1.5),
        help="with --between-runs: new/base (default 1,1.3,1.5)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.between_runs:
        print("trials  epochs  spread  slowdown  regression: Mann-Whitney and band  compare's verdict")
        for slowdown in args.slowdowns:
            for shape in RUN_SHAPES:
                without, with_trials = verdict_rates(rng, shape, slowdown, args.pairs)
                row = f"{shape[0]:>6}  {shape[1]:>6}  {shape[2]:>6.2f}  {slowdown:>8.1f}"
                print(f"{row}  {without:>34.1%}  {with_trials:>17.1%}", flush=True)
        return
    print("trials  epochs  spread  slowdown  interval alone  with Welch")
    for slowdown in (1.0, 1.3):
        for shape in SHAPES:
            alone, both = marked_rates(rng, shape, slowdown, args.pairs)
            print(f"{shape[0]:>6}  {shape[1]:>6}  {shape[2]:>6.2f}  {slowdown:>8.1f}  {alone:>14.1%}  {both:>10.1%}")


if __name__ == "__main__":
    main()
