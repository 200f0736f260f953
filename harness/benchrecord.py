"""Hand measured epoch times to pytest-benchmark without re-running anything.

pytest-benchmark measures a callable with a timer. In pedantic mode we give it a no-op target and a
*replay clock* whose ticks reproduce the recorded steady-state epoch durations, one round per epoch, so its
statistics (min, median, IQR, ...) are those of the real epochs and ``--benchmark-autosave``,
``--benchmark-compare`` and ``--benchmark-compare-fail=median:10%`` work on them as on any benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EpochReplayClock:
    """A timer whose consecutive (start, end) ticks are 0, d1, d1, d1+d2, ... for durations d1, d2, ..."""

    __name__ = "xfbench.epoch_replay_clock"

    def __init__(self, durations: Sequence[float]) -> None:
        ticks: list[float] = []
        now = 0.0
        for duration in durations:
            ticks += [now, now + duration]
            now += duration
        self._ticks = iter(ticks)

    def __call__(self) -> float:
        return next(self._ticks)


def record_epochs(benchmark: Any, durations: Sequence[float], group: str, extra_info: dict[str, Any]) -> None:
    """Record ``durations`` (seconds, one per epoch) as the benchmark's rounds."""
    if not durations:
        return
    benchmark.group = group
    benchmark.extra_info.update(extra_info)
    benchmark._timer = EpochReplayClock(durations)  # the documented --benchmark-timer hook, set per test
    benchmark.pedantic(lambda: None, rounds=len(durations), iterations=1, warmup_rounds=0)
