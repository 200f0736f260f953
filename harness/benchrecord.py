"""Hand measured epoch times to pytest-benchmark without re-running anything.

pytest-benchmark measures a callable with a timer. In pedantic mode we give it a no-op target and a
*replay clock* whose ticks reproduce the recorded steady-state epoch durations, one round per epoch, so its
statistics (min, median, IQR, ...) are those of the real epochs and ``--benchmark-autosave``,
``--benchmark-compare`` and ``--benchmark-compare-fail=median:10%`` work on them as on any benchmark.
:func:`epoch_rounds` picks those epochs from a case's results rows, one phase of a case that has several, or says
why there are none (docs/regressions.md, "pytest-benchmark"), and :func:`accuracies_by_seed` the case's final test
accuracies by seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


class EpochReplayClock:
    """A timer whose consecutive (start, end) ticks are 0, d1, 0, d2, ... for durations d1, d2, ...: each round
    starts at 0, so its end less its start is the duration exactly (a running sum's, d1 + d2 - d1, was not: 0.6 came
    back 0.6000000000000001). Exhausted, it reads 0: a caller that reads it more often than twice a round gets rounds
    that differ from the durations, which :func:`record_epochs` refuses."""

    __name__ = "xfbench.epoch_replay_clock"

    def __init__(self, durations: Sequence[float]) -> None:
        self._ticks = iter([tick for duration in durations for tick in (0.0, float(duration))])

    def __call__(self) -> float:
        return next(self._ticks, 0.0)


def record_epochs(benchmark: Any, durations: Sequence[float], group: str, extra_info: dict[str, Any]) -> None:
    """Record ``durations`` (seconds, one per epoch) as the benchmark's rounds, and check that pytest-benchmark
    recorded them: the clock is set on the fixture's private ``_timer`` (pytest-benchmark has no public timer per
    test; ``--benchmark-timer`` sets the session's), which a pytest-benchmark release may rename or read otherwise,
    and then the rounds would time the no-op target, silently."""
    if not durations:
        return
    benchmark.group = group
    benchmark.extra_info.update(extra_info)
    benchmark._timer = EpochReplayClock(durations)  # read by pedantic's runner (pytest-benchmark 4 and 5)
    benchmark.pedantic(lambda: None, rounds=len(durations), iterations=1, warmup_rounds=0)
    if getattr(benchmark, "disabled", False):  # --benchmark-disable: pedantic ran the target once, records nothing
        return
    recorded = getattr(getattr(getattr(benchmark, "stats", None), "stats", None), "data", None)
    if recorded is None or not _same_times(recorded, durations):
        raise RuntimeError(
            f"Expected pytest-benchmark to record the {len(durations)} epoch times of {group} as its rounds "
            f"({_seconds(durations)}). Received: {_seconds(recorded) if recorded is not None else 'no rounds'} "
            f"from pytest-benchmark {_benchmark_version()}, which did not time its rounds with xfbench's replay "
            "clock (set as its fixture's _timer). To fix, install a pytest-benchmark release xfbench records with "
            "(4 or 5: pip install 'pytest-benchmark>=4,<6'), or pass -p no:benchmark, and report this."
        )


def _same_times(recorded: Sequence[float], durations: Sequence[float]) -> bool:
    return len(recorded) == len(durations) and all(
        math.isclose(float(r), float(d), rel_tol=1e-12, abs_tol=1e-15) for r, d in zip(recorded, durations, strict=True)
    )


def _seconds(times: Sequence[float]) -> str:
    shown = ", ".join(f"{float(t):.6g}" for t in list(times)[:5])
    return f"[{shown}{', ...' if len(times) > 5 else ''}] s"


def _benchmark_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-benchmark")
    except PackageNotFoundError:  # a fixture of another origin
        return "(version unknown)"


def accuracies_by_seed(rows: pd.DataFrame) -> dict[str, float]:
    """The final test accuracy of each trial of a case (``rows``: one case's, one backend's) whose last attempt
    ended ok, keyed by its seed (as text: JSON's keys are) in the seeds' numeric order: seed 10 after 9, not after
    1 (a list in the trial ids' text order put seeds 10 and 11 before 2, without saying which was which)."""
    from harness.summary import final_rows

    finals = final_rows(rows)
    ok = finals[(finals["status"] == "ok") & finals["test_acc"].notna()] if len(finals) else finals
    pairs = sorted((int(seed), float(acc)) for seed, acc in zip(ok["seed"], ok["test_acc"], strict=True))
    return {str(seed): acc for seed, acc in pairs}


# deep_features trains no epoch: scikit-learn fits a head on features the backbone extracted once (or read from the
# cache); its one row per trial times that extraction, and is empty when the features came from the cache. An
# extraction is not an epoch: recorded as one, it stood beside training epochs in pytest-benchmark's tables, and a
# later session (features cached) recorded nothing, with only pytest-benchmark's "fixture was not used" warning.
NO_EPOCHS_TO_RECORD = (
    "deep_features trains no epoch (scikit-learn fits a head on the backbone's deep features; its row times the "
    "feature extraction, or nothing where the features came from the cache), and an extraction is not an epoch "
    "time. Nothing to fix: summary.md shows the extraction's time; benchmark a training strategy to track speed."
)


@dataclass(frozen=True)
class EpochRounds:
    """The steady epochs a case's benchmark records (one round each), or ``why_none`` they are none."""

    durations: tuple[float, ...] = ()
    phase: str = ""  # the phase they time, where the case trains in several (frozen, unfrozen); '' otherwise
    phases: tuple[str, ...] = ()  # every phase the case's trials trained, in the order they ran them
    medians: dict[str, float] = field(default_factory=dict)  # phase -> median steady epoch time, each phase's
    samples_per_s_median: float | None = None  # over the recorded epochs
    why_none: str = ""


def epoch_rounds(rows: pd.DataFrame) -> EpochRounds:
    """A case's benchmark rounds from its results rows: the steady epochs (not a phase's first, its warm-up) of the
    trials that ended ok, as summary.md times the case. A case trained in several phases (transfer's frozen then
    unfrozen layers) runs two workloads, and pytest-benchmark keeps one benchmark per test: the phase with the most
    steady epochs is recorded, on a tie the later one (the one the case ends in, training the most layers)."""
    from harness.summary import phase_names, steady_rows, timed_phase, trained_rows

    if len(rows) and rows["strategy"].eq("deep_features").any():
        return EpochRounds(why_none=NO_EPOCHS_TO_RECORD)
    trained = trained_rows(rows)
    if not len(trained):
        return EpochRounds(
            why_none="none of its trials ended ok, so no epoch time stands for the case (the test's failure, or "
            "summary.md, says why). Fix the failing trials to benchmark it."
        )
    phases = tuple(dict.fromkeys(phase_names(trained)))
    steady = steady_rows(rows)
    steady = steady[steady["epoch_time_s"].notna()] if len(steady) else steady
    if not len(steady):
        return EpochRounds(phases=phases, why_none=_why_no_steady_epoch(trained, phases))
    by_phase = steady.groupby(phase_names(steady))
    phase = timed_phase(rows) or phases[0]
    timed = steady[phase_names(steady) == phase]
    return EpochRounds(
        durations=tuple(float(t) for t in timed["epoch_time_s"]),
        phase=phase if len(phases) > 1 else "",
        phases=phases,
        medians={str(p): float(group["epoch_time_s"].median()) for p, group in by_phase},
        samples_per_s_median=float(timed["samples_per_s"].median()),
    )


def _why_no_steady_epoch(trained: pd.DataFrame, phases: tuple[str, ...]) -> str:
    """Why trials that ended ok left no steady epoch time: one epoch per phase (each phase's first is warm-up), or
    steady epochs without a time."""
    if trained["warmup"].eq(False).fillna(False).astype(bool).any():
        return (
            "its steady-state epochs recorded no time (epoch_time_s is empty in their rows). Expected a time per "
            "epoch: run the case again, and report it if the times stay empty."
        )
    if len(phases) > 1:
        return (
            f"its trials ran no steady-state epoch: each phase's first epoch is warm-up, and each of its phases "
            f"({', '.join(phases)}) ran one epoch. Give each phase 2 or more epochs to benchmark it."
        )
    return (
        "its trials ran no steady-state epoch (one epoch each, its warm-up). Give the case 2 or more epochs to "
        "benchmark it."
    )
