"""Optuna's TPE over a neutral search space, each sample a function of its number and of the results told before it.

A TPE sampler built once from the search's seed draws its random start-up points, and its later candidates, from
one generator in the order it was asked: a resumed search, which tells the sampler its finished samples instead of
asking for them again, restarted that generator and drew sample 0's point for the first sample it asked for,
sample 1's for the next, and so on (every sample starts from the same weights and batches, so the repeats trained
to the same numbers). Here sample ``n`` is asked with a sampler seeded from (seed, n), so its point depends on its
number and on the results told before it alone: a search run one sample at a time (``--asha``) draws the same
points resumed as uninterrupted, and one run concurrently draws from the results that had ended, as it did live.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.search import Choice, IntRange, LogUniform, SearchSpace, Uniform


def sample_seed(seed: int, sample: int) -> int:
    """The seed of sample ``sample``'s sampler: Optuna takes 0 to 2**32 - 1, and a search seed of any size (or a
    neighbouring one) spreads over that range."""
    return int(np.random.SeedSequence((seed, sample)).generate_state(1)[0])


def optuna_distribution(domain: Any) -> Any:
    """A neutral domain as Optuna's distribution (an int range includes both ends, as the neutral one does)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(domain, Choice):
        return CategoricalDistribution(domain.values)
    if isinstance(domain, Uniform):
        return FloatDistribution(domain.low, domain.high)
    if isinstance(domain, LogUniform):
        return FloatDistribution(domain.low, domain.high, log=True)
    if isinstance(domain, IntRange):
        return IntDistribution(int(domain.low), int(domain.high))
    raise TypeError(f"Expected a search domain. Received: {domain!r}.")


class TpeSearch:
    """One backend's Optuna search: :meth:`suggest` asks for sample ``n``'s point, :meth:`tell` gives a sample's
    result back (a sample it suggested, or a resumed search's finished sample with its recorded point)."""

    def __init__(self, space: SearchSpace, seed: int, startup: int, maximize: bool) -> None:
        self.space, self.seed, self.startup, self.maximize = space, seed, startup, maximize
        self.distributions = {path: optuna_distribution(domain) for path, domain in space.params}
        self.study: Any = None  # created at the first call (Optuna announces a new study): see _study
        self.asked: dict[int, Any] = {}  # sample number -> the Optuna trial it was asked as

    def _study(self) -> Any:
        import optuna

        if self.study is None:
            self.study = optuna.create_study(direction="maximize" if self.maximize else "minimize")
        return self.study

    def suggest(self, sample: int) -> dict[str, Any]:
        """Sample ``sample``'s point, by path: TPE over the results told so far (at random for the first
        ``startup`` samples), with a sampler seeded for this sample alone."""
        import optuna

        study = self._study()
        # TPE keeps no state between asks but its generators: a fresh sampler per sample is the same TPE
        study.sampler = optuna.samplers.TPESampler(seed=sample_seed(self.seed, sample), n_startup_trials=self.startup)
        trial = study.ask(self.distributions)
        self.asked[sample] = trial
        return {path: trial.params[path] for path, _ in self.space.params}

    def tell(self, sample: int, point: dict[str, Any], value: float | None, failed: bool) -> None:
        """A sample's result, as Ray Tune's Optuna searcher told it: the metric's last value; without one (or a
        non-finite one, which TPE cannot model) failed if the trial raised, else pruned."""
        from optuna.trial import TrialState, create_trial

        if value is not None and not math.isfinite(value):
            value, failed = None, True
        state = TrialState.COMPLETE if value is not None else TrialState.FAIL if failed else TrialState.PRUNED
        trial = self.asked.pop(sample, None)
        if trial is not None:
            self._study().tell(trial, value, state=state)
            return
        # A recorded value outside its domain (which scheduler.recorded_samples maps back) is left out of what the
        # sampler learns rather than raised: raised, it failed the replayed sample in Tune, a finished sample lost
        params = {path: point[path] for path, _ in self.space.params if within(self.distributions[path], point[path])}
        distributions = {path: self.distributions[path] for path in params}
        self._study().add_trial(create_trial(params=params, distributions=distributions, value=value, state=state))


def within(distribution: Any, value: Any) -> bool:
    """Whether ``value`` is one of ``distribution``'s: a choice among its values, a number between its bounds."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
