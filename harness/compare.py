"""Regression verdicts between two runs: size *and* significance, for epoch time and accuracy.

Per (suite, strategy, model, dataset, backend):

- epoch time: ratio of steady-state medians new/base with a hierarchical bootstrap interval (each run's
  trials resampled, then each drawn trial's epochs: :func:`harness.statistics.ratio_interval`); a regression
  when the whole interval lies above the threshold (default 1.10) **and** a one-sided Mann-Whitney U test over
  the per-epoch times says new > base with p < alpha (default 0.01); an improvement symmetrically (interval below
  1/threshold, new < base, p < alpha), each only with two trials or more a side and where Welch's test on the
  trials' log median epoch times agrees (:func:`_confirmed_by_trials`; one trial on a side decides no time change:
  the noise between trials is unknown). That test's level and the interval's
  confidence follow alpha (:attr:`Thresholds.trials_alpha`: 0.05 and 95 % at the default). Either is
  *marked* (:data:`harness.statistics.SIGNIFICANT_MARK`). A ratio beyond the band these do not decide is ``n/a``,
  noted; so is every time between runs timed on other machines (CPU model or GPU) or with other thread counts
  unless ``Thresholds.times_across_machines`` (:func:`_across_machines`).
  Why a band and not 1: the interval sees the noise within each run (epochs, seeds, drift over the run) but
  not the offset between two runs (another load on the machine, another turbo state), which two runs alone
  cannot measure; the band (measured in docs/measurements.md) is the allowance for it;
- accuracy: difference of the mean final test accuracy over seeds; a regression when it drops by more
  than the threshold (default 1 percentage point) **and** the 95 % interval of the difference lies entirely
  below zero (over the seeds ok in both runs, the t interval of the per-seed differences; runs without a common
  seed: Welch's t interval of the two runs' seeds, two or more a side: :func:`welch_diff_ci`; common seeds without
  spread, the runs having others: unchanged only where both views are within the threshold, else undecided);
  an improvement symmetrically. Each standard deviation is at least one test image
  (:func:`harness.statistics.one_image_pp`): seeds that all differ alike still get an interval.

With a single seed on a side the noise between seeds is unknown, for accuracy (no interval) and for epoch time
(one trial's epochs move together: :func:`_one_seed_change`): a change within the threshold is unchanged, one beyond
it is not decided (``n/a``, noted), never marked on its size alone. A case whose settings
or runtime options differ between the runs says which (:func:`config_change`, :func:`runtime_change`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from scipy.stats import t as student_t

from harness.backend import REFERENCE_BACKEND
from harness.config import DEFAULT_CASE_EPOCHS, OptimizerConfig, TrialConfig, case_label, model_label, recorded_runtime
from harness.data.registry import FULL_CONTENT
from harness.errors import InputError
from harness.seeds import BOOTSTRAP_SEED
from harness.statistics import (
    ALIKE_PP,
    ALIKE_SEEDS,
    StatsSettings,
    alike_differences,
    epochs_by_trial,
    one_image_pp,
    paired_accuracy,
    ratio_interval,
    shared_epochs,
    training_spans,
    trials_test,
)
from harness.strategy_options import unread_option_paths
from harness.summary import (
    compared_rows,
    final_rows,
    in_timed_phase,
    phase_names,
    steady_rows,
    timed_phase,
    trained_rows,
)

CASE_COLUMNS = ["suite", "strategy", "model", "variant", "dataset", "backend"]


# The trials' Welch test (and the bootstrap interval) sit at this multiple of --alpha: 0.05 and 95 % at the default
# 0.01, as before they followed it. At alpha itself two or three trials a side (Welch's one to four degrees of
# freedom) would rarely decide a real change; at a fixed 0.05 the documented remedy for a large suite, a stricter
# --alpha, changed nothing (review 167).
TRIALS_ALPHA_FACTOR = 5.0
MAX_TRIALS_ALPHA = 0.5  # an --alpha of 0.1 or more: an interval of 50 % at least


@dataclass(frozen=True)
class Thresholds:
    time_ratio: float = 1.10
    accuracy_pp: float = 1.0
    alpha: float = 0.01
    bootstrap_samples: int = 2000
    bootstrap_seed: int = BOOTSTRAP_SEED
    # decide epoch-time changes between runs on other machines or thread counts too (--times-across-machines): by
    # default n/a
    times_across_machines: bool = False

    @property
    def trials_alpha(self) -> float:
        """The level of Welch's test on the trials' log medians (:func:`_confirmed_by_trials`), which follows
        ``alpha`` (:data:`TRIALS_ALPHA_FACTOR`): fixed at 0.05, a stricter --alpha left a suite's false time
        regressions as they were, since an interval beyond the band has its epochs apart and Mann-Whitney's p far
        below any alpha."""
        return min(TRIALS_ALPHA_FACTOR * self.alpha, MAX_TRIALS_ALPHA)

    @property
    def time_confidence(self) -> float:
        """The confidence of the epoch-time ratio's bootstrap interval: 1 - :attr:`trials_alpha` (95 % at the
        default alpha)."""
        return 1.0 - self.trials_alpha

    def __post_init__(self) -> None:
        if self.time_ratio <= 1.0:
            raise InputError(
                f"Expected a time-ratio threshold > 1. Received: {self.time_ratio}. To fix, give one such as 1.10."
            )
        if self.accuracy_pp <= 0:
            raise InputError(
                f"Expected an accuracy threshold > 0 pp. Received: {self.accuracy_pp}. To fix, give one such as 1.0."
            )
        if not 0 < self.alpha < 1:
            raise InputError(
                f"Expected a significance level between 0 and 1. Received: {self.alpha}. To fix, give one such as 0.01."
            )


@dataclass(frozen=True)
class CaseComparison:
    case: str
    backend: str
    base_time_s: float
    new_time_s: float
    time_ratio: float
    time_p: float
    time_verdict: str  # regression | improvement | unchanged | n/a
    base_acc: float
    new_acc: float
    acc_diff_pp: float
    acc_ci_pp: tuple[float, float]
    acc_verdict: str
    note: str
    time_ci: tuple[float, float] = (math.nan, math.nan)  # hierarchical bootstrap interval of time_ratio
    time_confidence: float = 0.95  # time_ci's (Thresholds.time_confidence)
    only_in: str = ""  # "base" | "new" for a case one run lacks (its verdicts n/a); "" when both ran it
    trials_verdict: str = "unchanged"  # regression: a larger share of new's trials failed, diverged or was skipped
    # its time n/a: the runs timed it on other machines or thread counts (--times-across-machines)
    other_machines: bool = False

    @property
    def in_both(self) -> bool:
        """Both runs have the case (else its verdicts are n/a and only_in says which run has it)."""
        return not self.only_in

    @property
    def regressed(self) -> bool:
        return "regression" in (self.time_verdict, self.acc_verdict, self.trials_verdict)

    @property
    def time_marked(self) -> bool:
        """The epoch-time change is significant (interval beyond the band, Mann-Whitney agreeing)."""
        return self.time_verdict in ("regression", "improvement")


def steady_epoch_times(frame: pd.DataFrame) -> np.ndarray:
    return steady_rows(frame)["epoch_time_s"].astype(float).dropna().to_numpy()


def final_accuracies(frame: pd.DataFrame) -> np.ndarray:
    return np.array(list(_seed_accuracies(final_rows(frame)).values()), dtype=float)


def _seed_accuracies(finals: pd.DataFrame) -> dict[int, float]:
    """Seed -> the final test accuracy of the trial that ended ok with that seed (``finals``: final rows)."""
    ok = finals[(finals["status"] == "ok") & finals["test_acc"].notna()] if len(finals) else finals
    return {int(seed): float(acc) for seed, acc in zip(ok["seed"], ok["test_acc"], strict=True)} if len(ok) else {}


@dataclass(frozen=True)
class SeedAccuracies:
    """Each side's final test accuracies and whether they are paired: the same seeds, in the same order (a seed
    is the same initial weights, batch order and dropout masks in both runs)."""

    base: np.ndarray
    new: np.ndarray
    paired: bool
    note: str
    # each run's own accuracies, where the paired seeds give no spread and the runs have others
    own: tuple[np.ndarray, np.ndarray] | None = None


def _common_seed_accuracies(base: pd.DataFrame, new: pd.DataFrame) -> SeedAccuracies:
    """Each side's final accuracies (``base``, ``new``: final rows) over the seeds that ended ok in both, where the
    two differ in the seeds they ran or that ended ok (an average over other seeds differs by which seeds were
    drawn, not by the code), and a note saying so. With no seed ok in both, each side's own seeds, unpaired, noted;
    where the common seeds' differences have no spread and each side has others, those too (``own``)."""
    ran = [{int(s) for s in finals["seed"].dropna()} if len(finals) else set() for finals in (base, new)]
    b, n = _seed_accuracies(base), _seed_accuracies(new)
    notes = [f"seeds differ: {_seeds(ran[0])}→{_seeds(ran[1])}"] if ran[0] != ran[1] else []
    # trials that ended ok without a test accuracy (a row lacking it): said, else an n/a read as nothing to compare
    untested = [s for s, f, a in (("base", base, b), ("new", new, n)) if not a and f["status"].eq("ok").any()]
    if untested:
        notes.append(f"accuracy not compared: no test accuracy recorded in {' and '.join(untested)}")
    common = sorted(set(b) & set(n))
    if not common:
        if b and n:
            notes.append("no seed ended ok in both: accuracy over each run's own")
        return SeedAccuracies(np.array(list(b.values())), np.array(list(n.values())), False, "; ".join(notes))
    if set(b) != set(n):
        notes.append(f"accuracy over the seeds ok in both, {_seeds(common)}")
    # The seeds in common give no spread (one of them, or differences all alike but not all nil: only the floor of one
    # test image's) while each run has two or more of its own, not all shared: each run's own seeds are kept beside
    # the pairs (``own``), for a verdict
    # that holds in both views (_beside_own_seeds). Neither alone will do: a mean over each run's own seeds reads
    # their other seeds as a change (each shared seed 0.28 pp down read -1.03 pp), and the one pair alike hid the
    # others' drop (0.00 pp on seed 3 beside seeds 4-6 each 5 pp down).
    diffs = 100.0 * np.array([n[s] - b[s] for s in common])
    no_spread = len(common) < 2 or float(np.ptp(diffs)) < ALIKE_PP
    nil = len(common) >= 2 and no_spread and abs(float(diffs.mean())) < ALIKE_PP  # alike on every seed: unchanged
    beside = no_spread and not nil and min(len(b), len(n)) >= 2 and set(b) != set(n)
    own = (np.array(list(b.values())), np.array(list(n.values()))) if beside else None
    paired = np.array([b[s] for s in common]), np.array([n[s] for s in common])
    return SeedAccuracies(*paired, True, "; ".join(notes), own)


def _seeds(seeds: Iterable[int]) -> str:
    return ",".join(str(s) for s in sorted(seeds))


def _trials_change(base: pd.DataFrame, new: pd.DataFrame) -> tuple[str, str]:
    """The regression verdict on the trials that did not end ok (failed, diverged, skipped) and a note naming them
    per side (``base``, ``new``: final rows): a run whose trials diverged has no accuracy or time to compare, and
    that must not pass as no change."""
    shares, parts = [], []
    for side, finals in (("base", base), ("new", new)):
        bad = finals[finals["status"] != "ok"]["status"].value_counts() if len(finals) else pd.Series(dtype=int)
        shares.append(bad.sum() / max(len(finals), 1))
        if len(bad):
            counts = ", ".join(f"{n} {status}" for status, n in sorted(bad.items()))
            parts.append(f"{side}: {counts} of {len(finals)} trials")
    return ("regression" if shares[1] > shares[0] else "unchanged"), "; ".join(parts)


def welch_diff_ci(base: np.ndarray, new: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Welch's t interval of mean(new) - mean(base), for runs whose seeds do not pair up (paired seeds take the t
    interval of their differences, :func:`_accuracy_verdict`); two seeds or more a side. A bootstrap of two seeds a
    side has three distinct means, so its interval was far too narrow to call a drop. Each side's standard deviation
    is at least one test image (:func:`harness.statistics.one_image_pp`): accuracy moves by whole test images, and
    seeds alike on both sides had no interval, so that no drop of theirs was ever decided."""
    floor = one_image_pp(base, new) / 100.0
    vb, vn = (max(float(side.var(ddof=1)), floor**2) / len(side) for side in (base, new))
    squared_error = vb + vn
    dof = squared_error**2 / (vb**2 / (len(base) - 1) + vn**2 / (len(new) - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(squared_error)
    diff = float(new.mean() - base.mean())
    return diff - half, diff + half


@dataclass(frozen=True)
class TimeChange:
    base_s: float
    new_s: float
    ratio: float
    ci: tuple[float, float]
    p: float
    verdict: str
    note: str = ""
    other_machines: bool = False  # not decided: the sides were timed on other machines or threads (_across_machines)


def _untimed_note(sides: list[tuple[str, pd.DataFrame, bool]]) -> str:
    """Why the sides without steady epoch times have none, each side ``(base or new, its steady rows, whether any
    of its trials ended ok)``. Said: an n/a time with no word read as a time compared and found unremarkable; and a
    side whose every trial failed or diverged was told to "run 2 epochs or more", which it may well have run."""
    not_ok = " and ".join(side for side, _, ended_ok in sides if not ended_ok)
    untimed = " and ".join(side for side, rows, ended_ok in sides if ended_ok and len(rows))  # yet no time recorded
    unsteady = " and ".join(side for side, rows, ended_ok in sides if ended_ok and not len(rows))
    notes = [f"epoch time not compared: no trial in {not_ok} ended ok, so no time ratio"] if not_ok else []
    notes += [f"epoch time not compared: no epoch time recorded in {untimed}"] if untimed else []
    if unsteady:
        notes.append(
            f"epoch time not compared: no steady epoch in {unsteady} (no trial that ended ok ran past a phase's "
            "first, warm-up, epoch); run 2 epochs or more"
        )
    return "; ".join(notes)


def _time_verdict(
    base: pd.DataFrame, new: pd.DataFrame, t: Thresholds, ended_ok: tuple[bool, bool] = (True, True)
) -> TimeChange:
    """Steady epochs of the two runs (rows of :func:`steady_rows`), per trial for the interval; ``ended_ok``:
    whether any trial of base, of new, ended ok (a side without has no steady rows, whatever its epochs)."""
    base_times, new_times = epochs_by_trial(base), epochs_by_trial(new)
    if not base_times or not new_times:  # the side that has steady epochs still shows its median
        base_s, new_s = (float(np.median(np.concatenate(t))) if t else math.nan for t in (base_times, new_times))
        sides = [
            (side, rows, ok)
            for side, rows, times, ok in (("base", base, base_times, ended_ok[0]), ("new", new, new_times, ended_ok[1]))
            if not times
        ]
        return TimeChange(base_s, new_s, math.nan, (math.nan, math.nan), math.nan, "n/a", _untimed_note(sides))
    b, n = np.concatenate(base_times), np.concatenate(new_times)
    settings = StatsSettings(t.bootstrap_samples, t.bootstrap_seed, t.time_confidence)
    ratio, low, high = ratio_interval(new_times, base_times, settings)
    slower_p = float(mannwhitneyu(n, b, alternative="greater").pvalue)
    faster_p = float(mannwhitneyu(n, b, alternative="less").pvalue)
    # p of the test in the ratio's direction: the smaller of the two read "new slower" beside a ratio below 1
    side_p = slower_p if ratio > 1.0 else faster_p
    change = TimeChange(float(np.median(b)), float(np.median(n)), ratio, (low, high), side_p, "")
    within = 1.0 / t.time_ratio <= ratio <= t.time_ratio
    # The point ratio beyond the band is enough: few epochs give a wide interval, which reaches into the band where
    # the change is large (1.36x at [1.046, 2.232] over 3 and 3 epochs read "unchanged", counted no regression)
    beyond = not within or low > t.time_ratio or high < 1.0 / t.time_ratio
    # One trial on a side (the only way to under two epochs there, whose interval has no bounds): not decided
    if min(len(base_times), len(new_times)) < 2:
        return _one_seed_change(change, (len(base_times), len(new_times)), beyond)
    if low > t.time_ratio and slower_p < t.alpha:
        return _confirmed_by_trials(replace(change, p=slower_p, verdict="regression"), base_times, new_times, t)
    if high < 1.0 / t.time_ratio and faster_p < t.alpha:
        return _confirmed_by_trials(replace(change, p=faster_p, verdict="improvement"), base_times, new_times, t)
    # A change beyond the band that the test could never confirm is undecided, not unchanged: the one-sided exact
    # Mann-Whitney test's smallest p is every epoch of one side beyond every epoch of the other.
    if beyond and _smallest_p(len(b), len(n)) >= t.alpha:
        enough = _epochs_a_side_reaching(t.alpha)
        note = (
            f"epoch time not decided: {len(b)} and {len(n)} steady epochs cannot reach p < {t.alpha:g} in the "
            f"Mann-Whitney test, however far apart; run more epochs or seeds ({enough} a side can)"
        )
        return replace(change, verdict="n/a", note=note)
    if beyond:  # the test could decide, yet did not: beyond the band is not "unchanged" (1.519 [0.944, 1.950] read so)
        return replace(change, verdict="n/a", note=_time_undecided_note(ratio, (low, high), side_p, t))
    return replace(change, verdict="unchanged")


def _one_seed_change(change: TimeChange, trials: tuple[int, int], beyond: bool) -> TimeChange:
    """``change`` where a side has one trial (``trials``: base's and new's count): unchanged within the band, else
    (``beyond``, as :func:`_time_verdict` reads it) not decided. One trial's epochs move together (its seed, the
    load of its minutes), so the interval and the Mann-Whitney test over them see no noise between trials: with one
    seed a side of nine steady epochs, 10 % spread between trials, identical runs were called a regression 15 % of
    the time (docs/regressions.md); within a run the same case is never marked, and one seed's accuracy is not
    decided either. One epoch on a side: no interval (NaN bounds), the point ratio alone says whether it lies beyond
    the band."""
    if not beyond:
        return replace(change, verdict="unchanged")
    where = "a side" if trials == (1, 1) else "in base" if trials[0] == 1 else "in new"
    note = (
        f"epoch time not decided: ratio {change.ratio:.3f} lies beyond the band, but noise between trials unknown "
        f"(1 seed {where}); run 2 seeds or more"
    )
    return replace(change, verdict="n/a", note=note)


# The trials are the units that vary independently (a seed, the load of its minutes); one trial's epochs move
# together, so the pooled epochs' test with a bootstrap over two trials a side called 3.7 % of equal runs (two
# seeds of four steady epochs, 10 % spread between trials) a time change at alpha 0.01: a six-case gate failed one
# identical commit in five. As within a run (harness.statistics), the trials' medians must differ too, at
# Thresholds.trials_alpha.
def _confirmed_by_trials(
    change: TimeChange, base_times: list[np.ndarray], new_times: list[np.ndarray], t: Thresholds
) -> TimeChange:
    """``change``, a regression or improvement its epochs decided over two trials or more a side, where Welch's
    test on the trials' log medians agrees (p < ``t.trials_alpha``) or has nothing to test (every trial's median
    alike on both sides); else undecided. One trial on a side never gets here (:func:`_one_seed_change`)."""
    trials_p = trials_test(new_times, base_times)
    if math.isnan(trials_p) or trials_p < t.trials_alpha:
        return change
    note = (
        f"epoch time not decided: ratio {change.ratio:.3f} lies beyond the band, but the trials' medians "
        f"({len(base_times)} and {len(new_times)}) do not decide it (Welch p {trials_p:.2g}, not below "
        f"{t.trials_alpha:g}); run more seeds"
    )
    return replace(change, verdict="n/a", note=note)


def percent(confidence: float) -> str:
    """A confidence as the tables name it: 95 %, 99.5 %."""
    return f"{100 * confidence:.4g} %"


def _time_undecided_note(ratio: float, ci: tuple[float, float], p: float, t: Thresholds) -> str:
    """Why a ratio beyond the band that enough epochs could decide was not: its interval reaches back into the band
    (or across it), or the one-sided Mann-Whitney ``p`` (the test of the ratio's direction) is not below alpha."""
    low, high = ci
    reasons = []
    if (low <= t.time_ratio) if ratio > 1.0 else (high >= 1.0 / t.time_ratio):
        reasons.append(f"its {percent(t.time_confidence)} interval [{low:.3f}, {high:.3f}] reaches into the band")
    if p >= t.alpha:
        reasons.append(f"the Mann-Whitney p {p:.2g} is not below {t.alpha:g}")
    return (
        f"epoch time not decided: ratio {ratio:.3f} lies beyond the band, but {' and '.join(reasons)}; run more "
        "epochs or seeds"
    )


# Other processes' CPUs (harness.host_load) a case's steady epochs may differ by between two runs before it is said:
# the kernel counts busy time in 10 ms ticks, so a short epoch's figure is coarse; the medians of its epochs a side
# differing by half a CPU is other work, not rounding.
OTHER_WORK_CPUS = 0.5


def other_work_change(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """Where a case's steady epochs ran beside much more (or less) work of other processes in one run than in the
    other (another job on a shared machine, the run's own trials beside them): its time change holds that load too,
    which two runs cannot otherwise tell from slower code. ``base``, ``new``: its steady rows."""
    medians = [rows["other_cpus"].astype(float).median() if "other_cpus" in rows else math.nan for rows in (base, new)]
    if any(math.isnan(m) for m in medians) or abs(medians[1] - medians[0]) < OTHER_WORK_CPUS:
        return ""
    return (
        f"other processes kept {medians[0]:.1f} CPUs busy beside its steady epochs in base, {medians[1]:.1f} in new "
        "(median; other jobs, or the run's own trials): its time change holds that load too"
    )


def _sharing_change(base: pd.DataFrame, new: pd.DataFrame, spans: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    """Where a case's steady epochs shared the cores with other trials in one run far more than in the other (one
    run at --max-concurrent 1, the other two at a time): its time change holds that contention too. ``base``,
    ``new``: its steady rows; ``spans``: each run's epoch spans."""
    if any(_whole_seconds(rows) for rows in (base, new)):  # rows before 2026-12-03: short epochs seemed to overlap
        return ""
    shares = [shared_epochs(rows, every) for rows, every in zip((base, new), spans, strict=True)]
    if shares[0] is None or shares[1] is None:
        return ""
    (was, of_was), (now, of_now) = shares[0], shares[1]
    if abs(was / of_was - now / of_now) < 0.25:
        return ""
    return (
        f"steady epochs that shared the cores with another trial: base {was}/{of_was}, new {now}/{of_now} (its "
        "trials overlapped others differently in the two runs, at other --max-concurrent or by timing at the same; "
        "--max-concurrent 1 times each trial alone)"
    )


def _whole_seconds(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` are stamped to the whole second only (runs before 2026-12-03, or none stamped): their epochs'
    spans are too coarse to tell trials side by side from trials one after the other."""
    if "timestamp" not in rows:
        return True
    stamps = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce", format="ISO8601").dropna()
    return bool(stamps.empty or (stamps.dt.microsecond == 0).all())


def _phase_time_verdict(
    base: pd.DataFrame,
    new: pd.DataFrame,
    steady: tuple[pd.DataFrame, pd.DataFrame],
    t: Thresholds,
    ended_ok: tuple[bool, bool],
) -> TimeChange:
    """:func:`_time_verdict` of a case's rows, each phase apart where it trains in several (transfer's frozen then
    unfrozen layers: pooled, their epochs have two peaks, and a frozen phase 1.5x slower read "unchanged" within an
    interval of [0.45, 3.3]). The figure is the timed phase's (summary.timed_phase), unless another phase regressed,
    or moved beyond the band undecided: then that phase's, named; every phase's ratio is in the note. Only the phases
    both runs trained are compared: none in common (rows without a phase beside rows of one) is one pooled figure,
    as before phases were told apart. ``steady``: each side's steady rows."""
    ran = [list(dict.fromkeys(phase_names(trained_rows(side)))) for side in (base, new)]
    phases = [phase for phase in ran[0] if phase in ran[1]]
    if not phases or (len(phases) == 1 and len(ran[0]) == len(ran[1]) == 1):
        return _time_verdict(*steady, t, ended_ok)
    changes = {
        phase: _time_verdict(
            steady[0][phase_names(steady[0]) == phase], steady[1][phase_names(steady[1]) == phase], t, ended_ok
        )
        for phase in phases
    }
    regressed = [p for p in phases if changes[p].verdict == "regression"]
    undecided = [p for p in phases if changes[p].verdict == "n/a" and changes[p].ratio == changes[p].ratio]
    timed = timed_phase(base)
    # the largest change either way: by ratio alone, of two undecided speed-ups the smaller one was shown
    moved = lambda p: abs(math.log(changes[p].ratio))  # noqa: E731
    shown = max(regressed or undecided, key=moved) if regressed or undecided else None
    shown = shown or (timed if timed in phases else phases[-1])
    ratios = {p: f"{changes[p].ratio:.3f}x" if changes[p].ratio == changes[p].ratio else "n/a" for p in phases}
    listed = ", ".join(f"{p} {ratios[p]} {changes[p].verdict}" for p in phases)
    notes = [f"epoch time of the {shown} phase (phases: {listed})", changes[shown].note]
    return replace(changes[shown], note="; ".join(note for note in notes if note))


def _machines(steady: pd.DataFrame) -> set[str]:
    """The machines (CPU model, GPU) whose workers timed ``steady``'s epochs."""
    if "cpu" not in steady:
        return set()
    gpus = steady["gpu"].fillna("") if "gpu" in steady else pd.Series("", index=steady.index)
    pairs = zip(steady["cpu"].fillna(""), gpus, strict=True)
    return {f"{cpu!r} {gpu or 'no GPU'}" for cpu, gpu in pairs if cpu}  # rows that name none tell nothing


def _threads(steady: pd.DataFrame) -> set[int]:
    """The intra-op thread counts ``steady``'s epochs ran with (none where the rows do not record them)."""
    return {int(t) for t in steady["threads"].dropna()} if "threads" in steady else set()


def thread_change(steady: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    """ "threads 1→4" where the two sides' steady epochs ran with other thread counts (--cpus-per-trial), else "":
    four threads change an epoch's time as much as another CPU does, yet were decided with a run-wide warning
    only, so a slowdown per thread read as an improvement (review 167)."""
    base, new = (_threads(rows) for rows in steady)
    if not base or not new or base == new:
        return ""
    return f"threads {'/'.join(map(str, sorted(base)))}→{'/'.join(map(str, sorted(new)))}"


def _across_machines(change: TimeChange, steady: tuple[pd.DataFrame, pd.DataFrame], t: Thresholds) -> TimeChange:
    """``change`` undecided where the two sides' epochs were timed on other machines (CPU model or GPU) or with other
    thread counts, unless asked (``t.times_across_machines``): the ratio is the machines' (threads') as much as the
    code's. Until 2026-12-07 compare warned "epoch times are not comparable" and then failed the gate on them. The
    thread change is noted either way."""
    base, new = (_machines(rows) for rows in steady)
    threads = thread_change(steady)
    if math.isnan(change.ratio) or (base == new and not threads):
        return change
    if t.times_across_machines:
        noted = f"{threads}: the time change holds theirs too" if threads else ""
        return replace(change, note="; ".join(part for part in (change.note, noted) if part))
    named = lambda machines: ", ".join(sorted(machines)) or "no machine recorded"  # noqa: E731  (rows without cpu)
    notes = [change.note] if change.note else []
    if base != new:
        notes.append(
            f"epoch time not decided: base timed on {named(base)}, new on {named(new)}; another machine's times are "
            "not the code's alone (--times-across-machines decides them)"
        )
    if threads:
        notes.append(
            f"epoch time not decided: {threads}; other thread counts' times are not the code's alone "
            "(--times-across-machines decides them)"
        )
    return replace(change, verdict="n/a", note="; ".join(notes), other_machines=True)


def _smallest_p(m: int, n: int) -> float:
    """The smallest one-sided p of scipy's Mann-Whitney test for m against n epochs (every epoch of one side beyond
    every epoch of the other), by the method it picks for those sizes: exact (1/C(m+n, m)) while small, else the
    normal approximation, whose floor is far above the exact one (3.4e-8 at 20 a side, against 7e-12): from the
    exact floor, a 3x slowdown over 20 epochs a side read "unchanged" under --alpha 1e-10."""
    return float(mannwhitneyu(np.arange(n) + m, np.arange(m), alternative="greater").pvalue)


def _epochs_a_side_reaching(alpha: float) -> int:
    """The fewest epochs a side whose smallest p is below ``alpha`` > 0 (it falls as they grow, to 0.0 by about a
    thousand a side, where the normal tail underflows): a doubling, then a bisection, each step one test of made-up
    epochs. A count loop on 1/alpha had run for ever once 1/alpha was infinite (--alpha 1e-310)."""
    high = 1
    while _smallest_p(high, high) >= alpha:
        high *= 2
    low = high // 2  # its p is >= alpha, or it is 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _smallest_p(middle, middle) < alpha else (middle, high)
    return high


def _beside_own_seeds(
    accuracies: SeedAccuracies, own: tuple[np.ndarray, np.ndarray], diff_pp: float, t: Thresholds
) -> tuple[float, float, float, tuple[float, float], str, str]:
    """The verdict where the seeds in common give no spread and each run has others: unchanged where both the pairs'
    difference and each run's own seeds' are within the threshold; a regression (improvement) where both are beyond
    it the same way and Welch's interval over each run's own seeds leaves out 0 (one shared seed made a -12 pp drop
    undecided that no shared seed made a regression); else undecided, with the own seeds' difference and Welch's
    interval in the note. No interval mixes the two: one pair's size with all the seeds' spread marked a one-seed
    drop as more seeds ran beside it."""
    own_diff = round(100.0 * float(own[1].mean() - own[0].mean()), 9)
    means = float(accuracies.base.mean()), float(accuracies.new.mean())
    if abs(diff_pp) <= t.accuracy_pp and abs(own_diff) <= t.accuracy_pp:
        return *means, diff_pp, (math.nan, math.nan), "unchanged", ""
    low, high = welch_diff_ci(*own)
    ci = (100.0 * low, 100.0 * high)
    if min(diff_pp, own_diff) > t.accuracy_pp and ci[0] > 0:
        return (
            *means,
            diff_pp,
            ci,
            "improvement",
            "the seeds ok in both give no spread: Welch's interval of each run's own",
        )
    if max(diff_pp, own_diff) < -t.accuracy_pp and ci[1] < 0:
        return (
            *means,
            diff_pp,
            ci,
            "regression",
            "the seeds ok in both give no spread: Welch's interval of each run's own",
        )
    interval = f", Welch's interval [{100 * low:+.2f}, {100 * high:+.2f}]" if low == low else ""
    note = (
        f"accuracy not decided: the seeds ok in both give no spread ({len(accuracies.base)} pair(s), {diff_pp:+.2f} "
        f"pp), and each run's own seeds differ by {own_diff:+.2f} pp{interval}; run the same seeds in both runs"
    )
    return *means, diff_pp, (math.nan, math.nan), "n/a", note


def _accuracy_verdict(
    accuracies: SeedAccuracies, t: Thresholds
) -> tuple[float, float, float, tuple[float, float], str, str]:
    base, new = accuracies.base, accuracies.new
    if len(base) == 0 or len(new) == 0:  # the side that has accuracies still shows their mean
        base_mean, new_mean = (float(side.mean()) if len(side) else math.nan for side in (base, new))
        return base_mean, new_mean, math.nan, (math.nan, math.nan), "n/a", ""
    # rounded: a drop of exactly the threshold (100 of 10,000 test images) came out as -1.000000000000012 pp and
    # was called "more than" the threshold
    diff_pp = round(100.0 * float(new.mean() - base.mean()), 9)
    note = "noise unknown (1 seed)" if min(len(base), len(new)) < 2 else ""
    if accuracies.own is not None:
        return _beside_own_seeds(accuracies, accuracies.own, diff_pp, t)
    if min(len(base), len(new)) < 2:
        # One seed has no spread: a bootstrap of it spans only the other side's seeds, and one against one gave a
        # zero-width interval beside "noise unknown".
        ci = (math.nan, math.nan)
    elif accuracies.paired:
        # A seed is the same start in both runs: the t interval of the paired differences, as the run's statistics
        # table gives it. A bootstrap of two or three differences spans only their range, so any drop every seed
        # shared was marked; differences all alike take one test image as their spread (noted).
        _, _, ci_low, ci_high = paired_accuracy(pd.Series(new), pd.Series(base), 0.95)
        ci = (ci_low, ci_high)
        note = ALIKE_SEEDS if alike_differences(pd.Series(new), pd.Series(base)) else ""
    else:
        low, high = welch_diff_ci(base, new)
        ci = (100.0 * low, 100.0 * high)
        flat = all(float(np.ptp(side)) < ALIKE_PP / 100.0 for side in (base, new))
        note = "neither run's seeds differ in accuracy: the interval takes one test image as each run's spread"
        note = note if flat else ""
    if math.isnan(ci[0]):  # one seed on a side
        # No spread to measure noise by: one seed's accuracy moves by a few test images from run to run, so a
        # size alone would fail a --seeds 1 gate on chance (and contradict the run's own "too few to say").
        if abs(diff_pp) <= t.accuracy_pp:
            return float(base.mean()), float(new.mean()), diff_pp, ci, "unchanged", note
        undecided = f"accuracy not decided: {note}; run 2 seeds or more"
        return float(base.mean()), float(new.mean()), diff_pp, ci, "n/a", undecided
    if diff_pp < -t.accuracy_pp and ci[1] < 0:
        verdict = "regression"
    elif diff_pp > t.accuracy_pp and ci[0] > 0:
        verdict = "improvement"
    elif abs(diff_pp) > t.accuracy_pp:  # beyond the band, its interval reaching 0: not decided, never "unchanged"
        # (two seeds' paired interval has one degree of freedom: -20 and -30 pp gave [-88.5, +38.5] and read unchanged)
        verdict = "n/a"
        note = (
            f"accuracy not decided: {diff_pp:+.2f} pp lies beyond the band, but its 95 % interval [{ci[0]:+.2f}, "
            f"{ci[1]:+.2f}] pp reaches 0; run more seeds"
        )
    else:
        verdict = "unchanged"
    return float(base.mean()), float(new.mean()), diff_pp, ci, verdict, note


# Runtime settings that are the run's own circumstances, not what the case computes (thread counts are compared
# run-wide by harness.baselines.environment_warnings).
_RUN_CIRCUMSTANCES = frozenset({"threads"})


def _runtime_settings(frame: pd.DataFrame, spell: Callable[[Any], str] = str) -> dict[str, set[str]]:
    """Each runtime option (config_json's "runtime") -> the values the case's rows ran with, each spelt by
    ``spell`` (words for compare's notes, JSON beside the settings). An option one run's version of xfbench did not
    record yet counts at its default, as that version ran it (else every case of an older baseline noted
    "runtime differs: tf32 -→False")."""
    defaults = _default_config().to_dict()["runtime"]
    settings: dict[str, set[str]] = {}
    for text in frame["config_json"].dropna().unique() if "config_json" in frame else ():
        config = json.loads(text)
        recorded = config.get("runtime", {})
        # before tf32 was recorded neither backend set it: on a GPU each ran its framework's own default (TensorFlow
        # on), which today's default (off) would misstate
        unknown = {"tf32"} if recorded.get("device") == "gpu" else set()
        filled = {name: value for name, value in defaults.items() if name not in unknown}
        runtime = recorded_runtime(filled | recorded, config.get("backend", ""))
        for name, value in runtime.items():
            if name not in _RUN_CIRCUMSTANCES:
                settings.setdefault(name, set()).add(spell(value))
    return settings


def _differences(base: dict[str, set[str]], new: dict[str, set[str]], unset: str = "-") -> list[str]:
    """Each setting whose values differ, as "name base→new" (``unset``: the run did not set it)."""
    b, n = ({name: side.get(name, {unset}) for name in set(base) | set(new)} for side in (base, new))
    return [
        f"{name} {'/'.join(sorted(b[name]))}→{'/'.join(sorted(n[name]))}" for name in sorted(b) if b[name] != n[name]
    ]


def runtime_change(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """The runtime options (speed and arithmetic: --bn-statistics, --jit-compile, …) that differ between the two
    runs of a case, as "name base→new": a time or accuracy change may be theirs, not the code's."""
    changed = _differences(_runtime_settings(base), _runtime_settings(new))
    return "runtime differs: " + ", ".join(changed) if changed else ""


def network_change(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """The network's size where it differs between the two runs of a case (``params``, ``forward_macs``): the same
    settings can build another network when the code that builds it changed (a bias dropped, a layer added), and
    the change in time or accuracy is then that network's."""
    changed = []
    for column in ("params", "forward_macs"):
        sides = [set(side[column].dropna().astype(int)) if column in side else set() for side in (base, new)]
        if all(sides) and sides[0] != sides[1]:
            shown = ["/".join(f"{v:,}" for v in sorted(side)) for side in sides]
            changed.append(f"{column} {shown[0]}→{shown[1]}")
    return "network differs: " + ", ".join(changed) if changed else ""


# Config fields that are not settings of what a case computes: the case's own keys, its seeds (the accuracy
# verdict pairs them), where its data, caches and weight file lie (the rows carry the weights' hash, as weights_key
# does), the content of
# its data and model (data_change names them, where both runs recorded one), and the runtime options (runtime_change).
_NOT_SETTINGS = frozenset(
    {"suite", "strategy", "model", "variant", "dataset", "backend", "sample", "tuned", "seed", "cache_dir", "data_dir"}
    | {"runtime", "transfer.weights_file", "data_key", "model_key", "weights_key"}
)


def data_change(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """ "data differs: content a→b" where the two runs of a case read other data under the dataset's name (each
    trial's data_key, preflight's fingerprint of what it read): their accuracies are of other images; "model
    differs: …" where its spec file or python: module held other content (model_key). A run recorded before the keys
    were is silent on them: nothing to say, nor is a data key of every pixel against an older, sampled one (other
    hashes of the same images: harness.data.registry.data_fingerprint)."""
    changed = []
    for field, what in (("data_key", "data"), ("model_key", "model")):
        keys = [
            {json.loads(text).get(field) for text in side["config_json"].dropna().unique()} - {None}
            if "config_json" in side
            else set()
            for side in (base, new)
        ]
        kinds = [{key.startswith(FULL_CONTENT) for key in side} for side in keys]
        if all(keys) and kinds[0] == kinds[1] and keys[0] != keys[1]:
            changed.append(f"{what} differs: content {'/'.join(sorted(keys[0]))}→{'/'.join(sorted(keys[1]))}")
    return "; ".join(changed)


def _flat(config: dict, whole: frozenset[str] = frozenset(), prefix: str = "") -> dict[str, str]:
    """Dotted path -> the value as JSON, for every leaf of a config; a config at a path in ``whole`` (an optional
    one: unset is null) is one value, its unset fields left out: ``task`` null→{"classes": [0, 1]}."""
    out: dict[str, str] = {}
    for name, value in config.items():
        path = prefix + name
        if path in _NOT_SETTINGS:
            continue
        if isinstance(value, dict) and path not in whole:
            out |= _flat(value, whole, f"{path}.")
        else:
            shown = {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value
            out[path] = json.dumps(shown, sort_keys=True)
    return out


def _default_config(optimizer: str = OptimizerConfig().name) -> TrialConfig:
    """A single case's defaults: its epochs are the planner's (with TrialConfig's 1, every run's Settings table said
    "epochs 5", a value the user never gave)."""
    return TrialConfig(
        "scratch", "m", "d", REFERENCE_BACKEND, 0, DEFAULT_CASE_EPOCHS, optimizer=OptimizerConfig(optimizer)
    )


def _default_settings() -> tuple[dict[str, str], frozenset[str]]:
    """Every setting at its default (what a run of a version that did not record a field yet ran with), and the
    paths of the optional configs (null by default)."""
    defaults = _flat(_default_config().to_dict())
    return defaults, frozenset(path for path, value in defaults.items() if value == "null")


def _config_settings(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Each setting the case's rows recorded -> its values, the settings its strategy does not read left out."""
    defaults, optional = _default_settings()
    settings: dict[str, set[str]] = {}
    for text in frame["config_json"].dropna().unique() if "config_json" in frame else ():
        config = json.loads(text)
        transfer = config.get("transfer") or {}
        pretrained = bool(transfer.get("pretrained") or transfer.get("weights_file"))
        unread = unread_option_paths(str(frame["strategy"].iloc[0]), pretrained)  # one case: one strategy
        recorded = defaults | _flat(config, optional)
        for path, value in recorded.items():
            if not any(path == u or path.startswith(u + ".") for u in unread):
                settings.setdefault(path, set()).add(value)
    return settings


def config_change(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """The settings of a case (epochs, batch size, optimizer, …) that differ between the two runs, as "name
    base→new": the same case name with other settings is another experiment, and its change is not the code's. A
    field one run's version of xfbench did not record yet counts at its default, as that version ran it."""
    changed = _differences(_config_settings(base), _config_settings(new))
    return "config differs: " + ", ".join(changed) if changed else ""


def case_settings(frame: pd.DataFrame) -> str:
    """What one (case, backend) ran with away from the defaults, settings then runtime options, as "name value"
    (values as recorded, JSON): the case name alone does not say that a trial ran Keras fit, or in float16."""
    recorded = [json.loads(t) for t in frame["config_json"].dropna().unique()] if "config_json" in frame else []
    optimizer = str((recorded[0].get("optimizer") or {}).get("name", "momentum")) if recorded else "momentum"
    # the defaults of the optimizer it ran (adam has no momentum: its recorded 0 is no choice of the user's)
    default_config = _default_config(optimizer).to_dict()
    defaults = _flat(default_config) | {"optimizer.name": json.dumps(OptimizerConfig().name)}
    default_runtime = {k: {_json(v)} for k, v in recorded_runtime(default_config["runtime"], "").items()}
    changed = [
        f"{path} {'/'.join(sorted(values))}"
        for path, values in sorted(_config_settings(frame).items())
        if values != {defaults.get(path)}
    ]
    changed += [
        f"{name} {'/'.join(sorted(values))}"
        for name, values in sorted(_runtime_settings(frame, _json).items())
        if values != default_runtime.get(name)
    ]
    return ", ".join(
        changed + _thread_setting(frame) + _framework_env_setting(frame) + _weight_file_setting(frame, recorded)
    )


def _json(value: Any) -> str:
    """A recorded runtime value as config_json holds it (a test-only fault injection as its fields)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, sort_keys=True)


def _thread_setting(frame: pd.DataFrame) -> list[str]:
    """The threads the case's trials ran with, when not 1 or not all alike: a resume under another --cpus-per-trial
    runs the rest of a case with other threads, which change its epoch times and, through summation order, its
    numbers."""
    threads = sorted({int(t) for t in frame["threads"].dropna().unique()}) if "threads" in frame else []
    return [f"threads {'/'.join(map(str, threads))}"] if threads and threads != [1] else []


def _framework_env_setting(frame: pd.DataFrame) -> list[str]:
    """The framework variables the case's workers had set (results column framework_env), when any had: they change
    what the framework runs (its kernels, its compilation) while the recorded options stay as they are. "none" where
    some of its trials ran without them (a resume in another shell); rows from before the column say nothing."""
    values = {str(v) for v in frame["framework_env"].dropna()} if "framework_env" in frame else set()
    if values <= {""}:
        return []
    return [f"framework_env {'/'.join(sorted(v or 'none' for v in values))}"]


def _weight_file_setting(frame: pd.DataFrame, recorded: list[dict]) -> list[str]:
    """A --weights file the case started from, by its name and the hash the rows carry: its path is where it lies,
    not a setting (_NOT_SETTINGS), but which weights a case started from is one."""
    names = {Path(f).name for c in recorded if (f := (c.get("transfer") or {}).get("weights_file"))}
    if not names:
        return []
    hashes = set(frame["weights_sha256"].dropna()) - {""} if "weights_sha256" in frame else set()
    digest = f" (sha256 {'/'.join(sorted(h[:12] for h in hashes))})" if hashes else ""
    return [f"weights file {'/'.join(sorted(names))}{digest}"]


def _case_rows(frame: pd.DataFrame, key: tuple) -> pd.DataFrame:
    return frame[(frame[CASE_COLUMNS] == pd.Series(key, index=CASE_COLUMNS)).all(axis=1)]


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s compared rows (not a search's samples) with each model named as cases are
    (:func:`harness.config.model_label`), so that the same spec file run from two directories is one case."""
    frame = compared_rows(frame)
    return frame.assign(model=frame["model"].map(model_label)) if "model" in frame else frame


def _one_sided(case: str, backend: str, base: pd.DataFrame, new: pd.DataFrame) -> CaseComparison:
    """A case only one run has: its figures on its side, nothing to compare them with."""
    side = new if base.empty else base
    # the timed phase's epochs, as the summary and history give the case (pooled, transfer's frozen and unfrozen
    # epochs made another figure)
    times, accuracies = steady_epoch_times(in_timed_phase(side)), final_accuracies(side)
    time_s = float(np.median(times)) if len(times) else math.nan
    acc = float(np.mean(accuracies)) if len(accuracies) else math.nan
    base_t, new_t, base_a, new_a = (
        (math.nan, time_s, math.nan, acc) if base.empty else (time_s, math.nan, acc, math.nan)
    )
    nan, where = math.nan, "new" if base.empty else "base"
    return CaseComparison(case, backend, base_t, new_t, nan, nan, "n/a", base_a, new_a, nan, (nan, nan), "n/a",
                          f"only in {where}", only_in=where)  # fmt: skip


def _case_keys(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
    return set(map(tuple, frame[CASE_COLUMNS].drop_duplicates().to_numpy()))


def _case_name(key: tuple[Any, ...]) -> str:
    return f"{key[0]}:{case_label(key[1], key[2], key[3], key[4])}"


def compared_cases(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """(case, backend) of every case :func:`compare_frames` would compare in ``frame``, named as it names them."""
    return {(_case_name(key), str(key[5])) for key in _case_keys(comparable(frame))}


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, thresholds: Thresholds | None = None) -> list[CaseComparison]:
    t = thresholds or Thresholds()
    spans = training_spans(base), training_spans(new)  # each run's every epoch: which trials trained side by side
    base, new = comparable(base), comparable(new)
    out: list[CaseComparison] = []
    for key in sorted(_case_keys(base) | _case_keys(new)):
        b, n = _case_rows(base, key), _case_rows(new, key)
        case = _case_name(key)
        if b.empty or n.empty:
            out.append(_one_sided(case, key[5], b, n))
            continue
        base_finals, new_finals = final_rows(b), final_rows(n)
        ended_ok = (bool(base_finals["status"].eq("ok").any()), bool(new_finals["status"].eq("ok").any()))
        steady = steady_rows(b), steady_rows(n)
        tc = _across_machines(_phase_time_verdict(b, n, steady, t, ended_ok), steady, t)
        accuracies = _common_seed_accuracies(base_finals, new_finals)
        base_a, new_a, diff, ci, acc_verdict, note = _accuracy_verdict(accuracies, t)
        trials_verdict, trials_note = _trials_change(base_finals, new_finals)
        sharing, other_work = _sharing_change(*steady, spans), other_work_change(*steady)
        changes = (
            config_change(b, n),
            data_change(b, n),
            network_change(b, n),
            runtime_change(b, n),
            sharing,
            other_work,
        )
        parts = (trials_note, *changes, accuracies.note, note, tc.note)
        note = "; ".join(part for part in parts if part)
        out.append(
            CaseComparison(
                case,
                key[5],
                tc.base_s,
                tc.new_s,
                tc.ratio,
                tc.p,
                tc.verdict,
                base_a,
                new_a,
                diff,
                ci,
                acc_verdict,
                note,
                tc.ci,
                time_confidence=t.time_confidence,
                trials_verdict=trials_verdict,
                other_machines=tc.other_machines,
            )
        )
    return out
