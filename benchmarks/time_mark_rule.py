"""How often the within-run time ratio is marked (`*`, the Statistics table) when nothing differs, and when one
backend is 1.3x slower: the bootstrap interval alone against the interval with Welch's test on the trials' log
medians beside it (harness.statistics; figures in docs/regressions.md).

    .venv/bin/python benchmarks/time_mark_rule.py [--pairs 300] [--seed 1]

Each side is drawn from one distribution: per trial a level exp(N(0, spread)), per epoch 3 % noise around it.
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.statistics import StatsSettings, ratio_interval, trials_test

# (trials a side, steady epochs a trial, spread between trials)
SHAPES = ((2, 1, 0.0), (2, 3, 0.1), (2, 9, 0.1), (3, 5, 0.1), (3, 1, 0.0), (4, 3, 0.05))


def _side(rng: np.random.Generator, trials: int, epochs: int, spread: float, level: float) -> list[np.ndarray]:
    return [level * np.exp(rng.normal(0, spread)) * (1 + rng.normal(0, 0.03, epochs)) for _ in range(trials)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="simulated pairs of sides per row (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("trials  epochs  spread  slowdown  interval alone  with Welch")
    for slowdown in (1.0, 1.3):
        for shape in SHAPES:
            alone, both = marked_rates(rng, shape, slowdown, args.pairs)
            print(f"{shape[0]:>6}  {shape[1]:>6}  {shape[2]:>6.2f}  {slowdown:>8.1f}  {alone:>14.1%}  {both:>10.1%}")


if __name__ == "__main__":
    main()
