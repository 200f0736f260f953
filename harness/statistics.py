"""Statistics on every comparison of a backend with the reference backend, per case.

- accuracy: the paired difference of final test accuracy over seeds (reference − backend, seeds paired: the
  same seed gives both backends the same data order and initial weights by design), its mean and 95 % Student-t
  interval, the differences' standard deviation floored at one test image (:func:`one_image_pp`); significant when
  the interval excludes 0. One paired seed gives no interval: the row says so.
- epoch time: the ratio of steady-state medians (reference / backend) with a 95 % hierarchical bootstrap interval
  (:func:`ratio_interval`: each backend's trials resampled, then each drawn trial's steady epochs); significant
  when the interval excludes 1, each side has two trials or more (one trial's epochs say nothing of the
  variation between trials) and Welch's test on the trials' log median epoch times agrees (:func:`trials_test`:
  with two or three trials a side the bootstrap alone is far too narrow). Within one run each backend's trials
  run in their own experiment, the backends one after the other, up to ``--max-concurrent`` trials side by side:
  a backend whose epochs shared the cores with another trial more than the other's did is noted with the shares,
  as the ratio then holds that contention too. Between two runs the machine's drift falls on one side only, and
  :mod:`harness.compare` adds a band.

Numbers only; :mod:`harness.reporting` turns them into cells and :mod:`harness.plots` into pictures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from scipy.stats import ttest_1samp, ttest_ind

from harness.backend import BACKENDS, REFERENCE_BACKEND
from harness.seeds import BOOTSTRAP_SEED
from harness.summary import (
    CASE_KEYS,
    detail_values,
    final_rows,
    phase_names,
    picks_note,
    several_suites,
    steady_rows,
    timed_phase,
    with_suite,
)

SIGNIFICANT_MARK = "*"  # beside a figure whose 95 % interval excludes "no difference"
TOO_FEW_SEEDS = "1 seed: too few to say"
NO_PAIRED_SEED = "no seed ok in both: no accuracy difference"
ALIKE_SEEDS = "every seed differs alike: the interval takes one test image as their spread"
# differences in pp closer than this are alike: the same count of test images apart gives differences that part in
# the last bits of a float (356/360 - 352/360 against 350/360 - 346/360)
ALIKE_PP = 1e-9
# The accuracy interval's smallest standard deviation where the accuracies do not tell the test set's size (1.0 and
# 0.5 fit a test set of two images): one image of a 100-image test set. Neither the rows nor run.json record a case's
# test-set size (run.json's split sizes come before a task's class subset), and xfbench's test sets hold 360
# (digits) to 10,000 images, so this is at least one image for any of them that is not a subset of under 100.
ACCURACY_FLOOR_PP = 1.0
# the largest test set :func:`one_image_pp` looks for: fractions of whole images up to it are told apart from a
# float's rounding (two of them differ by at least 1e-12)
_LARGEST_TEST_SET = 10**6
# log median epoch times closer than this are alike (a relative 1e-12, far below any clock's resolution): scipy's
# variance of alike values warns of precision loss and is rounding noise
ALIKE_LOG = 1e-12


@dataclass(frozen=True)
class NoTimeRatio:
    """Why a case has no time ratio: the reason (the plots' label and the ``time_missing`` column) and what to do."""

    reason: str
    remedy: str = ""

    @property
    def note(self) -> str:
        """The statistics note's wording: the reason, that it leaves no ratio, and the remedy."""
        return f"{self.reason}: no time ratio" + (f"; {self.remedy}" if self.remedy else "")


NO_STEADY_EPOCH = NoTimeRatio("no steady epoch (a phase's first is warm-up)", "run 2 epochs or more")
# deep_features reads another run's extracted features from the cache and times no extraction
FROM_FEATURE_CACHE = NoTimeRatio(
    "features came from the cache (no extraction timed)",
    "delete <results-dir>/_cache/features and run again to time it",
)


@dataclass(frozen=True)
class StatsSettings:
    bootstrap_samples: int = 2000
    bootstrap_seed: int = BOOTSTRAP_SEED  # fixed: the same run always gives the same interval
    confidence: float = 0.95


STATS_COLUMNS = [
    *CASE_KEYS,
    "suite_shown",
    "backend",
    "reference",
    "paired_seeds",
    "acc_diff_pp",
    "acc_ci_low_pp",
    "acc_ci_high_pp",
    "acc_significant",
    "time_ratio",
    "time_ci_low",
    "time_ci_high",
    "time_significant",
    "time_missing",
    "note",
]


def one_image_pp(*accuracies: Iterable[float]) -> float:
    """One test image in percentage points: 100 / n, n the smallest test set whose whole images give every accuracy
    in ``accuracies`` (the common denominator of their fractions), at most :data:`ACCURACY_FLOOR_PP` (where they do
    not tell the size). Accuracy moves by whole test images, so seeds whose accuracies (or differences) are all
    alike have a spread of under one image that their own figures cannot show: a zero spread gave alike differences
    no interval, and a 50 pp collapse on five seeds was never decided while one image of noise decided it."""
    images = 1
    for value in (float(a) for side in accuracies for a in side):
        if math.isfinite(value):
            images = math.lcm(images, Fraction(value).limit_denominator(_LARGEST_TEST_SET).denominator)
    return min(100.0 / images, ACCURACY_FLOOR_PP)


def alike_differences(ref: pd.Series, other: pd.Series) -> bool:
    """Whether the paired seeds' differences (two or more) are all alike and not all nil: their interval takes one
    test image as their spread (:func:`paired_accuracy`)."""
    diffs = 100.0 * (ref - other).dropna().to_numpy(dtype=float)
    return len(diffs) >= 2 and float(np.ptp(diffs)) < ALIKE_PP and abs(float(diffs.mean())) >= ALIKE_PP


def paired_accuracy(ref: pd.Series, other: pd.Series, confidence: float) -> tuple[int, float, float, float]:
    """(paired seeds, mean difference in pp, interval low, high) of ref − other, both indexed by seed. The
    differences' standard deviation is at least one test image (:func:`one_image_pp`)."""
    paired = pd.concat([ref, other], axis=1).dropna()
    diffs = 100.0 * (paired.iloc[:, 0] - paired.iloc[:, 1]).to_numpy(dtype=float)
    n = len(diffs)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(diffs.mean())
    if n >= 2 and np.ptp(diffs) < ALIKE_PP and abs(mean) < ALIKE_PP:
        return n, 0.0, 0.0, 0.0  # the backends agree on every seed: no difference, no mark
    if n < 2:  # one seed has no spread
        return n, mean, math.nan, math.nan
    # differences alike (std 0) take one image's spread: a t interval of width 0 would mark one image moved alike
    sd = max(float(diffs.std(ddof=1)), one_image_pp(paired.iloc[:, 0], paired.iloc[:, 1]))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))
    return n, mean, mean - half, mean + half


def _resampled_medians(groups: Sequence[np.ndarray], samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` bootstrap medians of the pooled epochs of ``groups`` (one array of epoch times per trial):
    draw as many trials as there are, with replacement, then each drawn trial's epochs with replacement, afresh
    for every draw (a trial drawn twice in one sample gets two resamples of its epochs, not one copied)."""
    longest = max(len(g) for g in groups)
    drawn = rng.integers(0, len(groups), size=(samples, len(groups)))
    # per sample, one slot per drawn trial, each padded with NaN to the longest trial
    pooled = np.full((samples, len(groups), longest), np.nan)
    for slot in range(len(groups)):
        for index, group in enumerate(groups):
            rows = np.flatnonzero(drawn[:, slot] == index)
            pooled[rows, slot, : len(group)] = rng.choice(group, size=(len(rows), len(group)))
    return np.nanmedian(pooled.reshape(samples, -1), axis=1)


def ratio_interval(
    num: Sequence[np.ndarray], den: Sequence[np.ndarray], settings: StatsSettings
) -> tuple[float, float, float]:
    """(median(num) / median(den) over pooled epochs, hierarchical bootstrap interval low, high).

    ``num`` and ``den`` hold one array of steady epoch times per trial (seed). Resampling trials first, then
    epochs within each drawn trial, carries the variation between trials (seeds, and the machine's drift over
    the minutes between them) into the interval, which resampling pooled epochs alone hides. NaN interval when a
    side has fewer than two epochs."""
    num, den = [g for g in num if len(g)], [g for g in den if len(g)]
    if not num or not den:
        return math.nan, math.nan, math.nan
    ratio = float(np.median(np.concatenate(num)) / np.median(np.concatenate(den)))
    if min(sum(map(len, num)), sum(map(len, den))) < 2:
        return ratio, math.nan, math.nan
    rng = np.random.default_rng(settings.bootstrap_seed)
    ratios = _resampled_medians(num, settings.bootstrap_samples, rng) / _resampled_medians(
        den, settings.bootstrap_samples, rng
    )
    tail = 100 * (1 - settings.confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return ratio, float(low), float(high)


def trials_test(num: Sequence[np.ndarray], den: Sequence[np.ndarray]) -> float:
    """Welch's two-sided p-value for the two sides' trials (one array of steady epoch times each) having the same
    mean log median epoch time: the trial is the unit that varies independently (its seed, the load of its minutes),
    so with two or three trials a side this test is wide where the bootstrap of :func:`ratio_interval` is not (two
    trials a side give it three distinct draws each). NaN under two trials a side, or when every trial's median is
    the same on both sides; 0 when each side's medians are all alike but the sides differ."""
    num, den = [g for g in num if len(g)], [g for g in den if len(g)]
    if min(len(num), len(den)) < 2:
        return math.nan
    logs = [np.log([float(np.median(g)) for g in side]) for side in (num, den)]
    flat = [float(np.ptp(side)) < ALIKE_LOG for side in logs]
    if all(flat):  # no variance on either side: the sides differ beyond doubt, or not at all
        return math.nan if abs(float(logs[0][0] - logs[1][0])) < ALIKE_LOG else 0.0
    if any(flat):  # Welch with one side's variance 0 is the one-sample test of the other side against its value
        alike, spread = (logs[0], logs[1]) if flat[0] else (logs[1], logs[0])
        return float(ttest_1samp(spread, float(alike[0])).pvalue)
    return float(ttest_ind(*logs, equal_var=False).pvalue)


@dataclass(frozen=True)
class TimedSide:
    """One side of :func:`_time_ratio`, for the note on why it has no steady epoch time: its backend, whether its
    rows came from the feature cache (:func:`from_feature_cache`) and whether any of its trials ended ok."""

    backend: str
    cached: bool = False
    ended_ok: bool = True


def _untimed(untimed: Sequence[TimedSide]) -> list[NoTimeRatio]:
    """Why the sides without a steady epoch time have none. A side none of whose trials ended ok was told to "run 2
    epochs or more", which its failed or diverged trials may well have run."""
    reasons = [NoTimeRatio(f"no {side.backend} trial ended ok") for side in untimed if not side.ended_ok]
    cached = [side.cached for side in untimed if side.ended_ok]
    if cached:
        reasons.append(FROM_FEATURE_CACHE if all(cached) else NO_STEADY_EPOCH)
    return reasons


def _time_ratio(
    ref: Sequence[np.ndarray],
    other: Sequence[np.ndarray],
    settings: StatsSettings,
    sides: tuple[TimedSide, TimedSide] = (TimedSide("reference"), TimedSide("backend")),
) -> tuple[float, float, float, bool, list[str], str]:
    """(ratio, interval low, high, marked, notes, why no ratio: "" when there is one) of the reference's epoch times
    over the other's (one array per trial each); ``sides``: the reference's and the other's backend, as the notes
    name them."""
    ratio, low, high = ratio_interval(ref, other, settings)
    notes = ["under 2 steady epochs: no time interval"] if math.isnan(low) and not math.isnan(ratio) else []
    # said: a bare n/a beside the pair table's warm-up ratio read as a missing figure
    untimed = _untimed([side for times, side in zip((ref, other), sides, strict=True) if not times])
    notes += [reason.note for reason in untimed]
    # One trial a side: the interval sees that trial's epochs only, not the variation between trials (the minutes
    # between them, another load) that a second seed would show: shown, never marked.
    one_trial = min(len(ref), len(other)) < 2 and not math.isnan(low)
    if one_trial:
        one = [side.backend for times, side in zip((ref, other), sides, strict=True) if len(times) < 2]
        which = "a side" if len(one) == 2 else f"of {one[0]}"  # the other side's trials named it wrongly
        notes.append(f"1 trial {which}: time interval over its epochs only, not marked")
    # The bootstrap interval alone marked a third of equal backends at two one-epoch trials a side: the mark also
    # needs the trials themselves to differ (Welch on their log medians).
    trials_p = trials_test(ref, other)
    undecided = _excludes(low, high, 1.0) and not one_trial and not trials_p < 1 - settings.confidence
    if undecided:
        counts = f"{len(ref)} and {len(other)}"
        notes.append(f"time not marked: the trials' medians ({counts}) do not decide it (Welch p {trials_p:.2g})")
    marked = _excludes(low, high, 1.0) and not one_trial and not undecided
    return ratio, low, high, marked, notes, untimed[0].reason if untimed else ""


def epochs_by_trial(steady: pd.DataFrame) -> list[np.ndarray]:
    """The steady epoch times of each trial in ``steady`` (rows of :func:`harness.summary.steady_rows`)."""
    times = steady.assign(_t=steady["epoch_time_s"].astype(float)).dropna(subset=["_t"])
    return [group["_t"].to_numpy() for _, group in times.groupby("trial_id", sort=True)]


def _epoch_spans(rows: pd.DataFrame) -> pd.DataFrame:
    """Each training epoch's (trial_id, backend, start, end) in seconds, from its row's time (written after the
    epoch's evaluation) less the evaluation and the training time; rows without a parseable time are left out."""
    end = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce", format="ISO8601")
    eval_s = rows["eval_time_s"].astype(float).fillna(0.0) if "eval_time_s" in rows else 0.0
    train_end = (end - pd.Timestamp(0, tz="UTC")).dt.total_seconds() - eval_s  # whatever unit pandas holds it in
    spans = pd.DataFrame(
        {
            "trial_id": rows["trial_id"],
            "backend": rows["backend"],
            "start": train_end - rows["epoch_time_s"].astype(float),
            "end": train_end,
        }  # fmt: skip
    )
    return spans[end.notna().to_numpy() & spans["start"].notna().to_numpy()]


def training_spans(frame: pd.DataFrame) -> pd.DataFrame:
    """Every training epoch of the run as a span (:func:`_epoch_spans`); none where the rows lack the times."""
    if "timestamp" not in frame or "epoch_time_s" not in frame or "epoch" not in frame:
        return pd.DataFrame(columns=["trial_id", "backend", "start", "end"])
    return _epoch_spans(frame[frame["epoch"].notna() & frame["epoch_time_s"].notna()])


def shared_epochs(steady: pd.DataFrame, every: pd.DataFrame) -> tuple[int, int] | None:
    """How many of the ``steady`` epochs trained while another trial of the run trained (``every``: the run's epoch
    spans, :func:`training_spans`), of how many; None where their times are missing."""
    if every.empty or "timestamp" not in steady or "epoch_time_s" not in steady:  # rows written without the times
        return None
    mine = _epoch_spans(steady)
    if mine.empty:
        return None
    overlapped = [
        bool(((every["trial_id"] != span.trial_id) & (every["start"] < span.end) & (every["end"] > span.start)).any())
        for span in mine.itertuples()
    ]
    return sum(overlapped), len(overlapped)


def _shared_cores_note(case_steady: pd.DataFrame, every: pd.DataFrame, backends: tuple[str, str]) -> str:
    """Where the two backends' steady epochs shared the machine with another trial's training (``every``: the run's
    epoch spans) in unequal shares (trials side by side, ``--max-concurrent``), a note with the shares: their time
    ratio then holds the contention as well as the backends' speed. Empty where the shares are alike or the times
    are missing."""
    if every.empty:
        return ""
    shares = {}
    for backend in backends:
        share = shared_epochs(case_steady[case_steady["backend"] == backend], every)
        if share is None:
            return ""
        shares[backend] = share
    fractions = [done / total for done, total in shares.values()]
    if abs(fractions[0] - fractions[1]) < 0.25:
        return ""
    counts = ", ".join(f"{b} {done}/{total}" for b, (done, total) in shares.items())
    return f"steady epochs that shared the cores with another trial: {counts} (--max-concurrent 1 times them alone)"


def _excludes(low: float, high: float, value: float) -> bool:
    return not (math.isnan(low) or math.isnan(high)) and (low > value or high < value)


def from_feature_cache(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` (one backend's of a case) hold an untimed row whose features came from the cache
    (deep_features: its ``epoch_time_s`` is empty, its ``details_json`` has ``features_cached`` true and
    ``cached_extraction_samples_per_s``, the cached run's figure)."""
    untimed = rows[rows["epoch_time_s"].isna()]
    return any(cached is True for cached in detail_values(untimed, "features_cached")) or bool(
        detail_values(untimed, "cached_extraction_samples_per_s")
    )


def _ended_ok(finals: pd.DataFrame, backend: str) -> bool:
    """Whether any of ``backend``'s trials (``finals``: final rows) ended ok."""
    return bool(finals.loc[finals["backend"] == backend, "status"].eq("ok").any())


def _unpaired_seeds(accs: dict[str, pd.Series], reference: str, backend: str) -> list[str]:
    """A note naming the seeds ok in one backend only, which the difference leaves out (its mean is over the seeds
    ok in both, while each backend's own mean in the table above holds all of its own): [] when they match."""
    seeds = {b: {int(s) for s in accs[b].dropna().index} for b in (reference, backend)}
    both = seeds[reference] & seeds[backend]
    alone = [f"{b} also {','.join(map(str, sorted(seeds[b] - both)))}" for b in (reference, backend) if seeds[b] - both]
    if not alone or not both:  # no seed in both: NO_PAIRED_SEED says it
        return []
    return [f"seeds paired {','.join(map(str, sorted(both)))} ({'; '.join(alone)})"]


def _accuracy_by_seed(finals: pd.DataFrame) -> pd.Series:
    ok = finals[finals["status"] == "ok"]
    return ok.groupby("seed")["test_acc"].mean().astype(float)


def case_statistics(
    frame: pd.DataFrame, reference: str = REFERENCE_BACKEND, settings: StatsSettings | None = None
) -> pd.DataFrame:
    """One row per (case, backend other than the reference) where both ran (columns :data:`STATS_COLUMNS`)."""
    settings = settings or StatsSettings()
    if frame.empty:
        return pd.DataFrame(columns=STATS_COLUMNS)
    frame = with_suite(frame)
    named = several_suites(frame)
    finals, steady = final_rows(frame), steady_rows(frame)
    spans = training_spans(frame)
    out = []
    for keys, case in frame.groupby(CASE_KEYS, sort=True, dropna=False):
        backends = set(case["backend"].dropna())
        if reference not in backends:
            continue
        ids, phase = set(case["trial_id"]), timed_phase(case)
        case_finals, case_steady = finals[finals["trial_id"].isin(ids)], steady[steady["trial_id"].isin(ids)]
        if phase is not None:  # a case of several phases is timed by one (pooled, its interval spanned both)
            case_steady = case_steady[phase_names(case_steady) == phase]
        times = {b: epochs_by_trial(case_steady[case_steady["backend"] == b]) for b in backends}
        accs = {b: _accuracy_by_seed(case_finals[case_finals["backend"] == b]) for b in backends}
        sides = {
            b: TimedSide(b, from_feature_cache(case[case["backend"] == b]), _ended_ok(case_finals, b)) for b in backends
        }
        for backend in [b for b in BACKENDS if b in backends] + sorted(backends - set(BACKENDS)):
            if backend == reference:
                continue
            n, diff, low, high = paired_accuracy(accs[reference], accs[backend], settings.confidence)
            ratio, t_low, t_high, t_marked, time_notes, time_missing = _time_ratio(
                times[reference], times[backend], settings, (sides[reference], sides[backend])
            )
            notes = [NO_PAIRED_SEED] if n == 0 else [TOO_FEW_SEEDS] if n == 1 else []
            if alike_differences(accs[reference], accs[backend]):
                notes.append(ALIKE_SEEDS)
            notes += _unpaired_seeds(accs, reference, backend) + time_notes
            shared = _shared_cores_note(case_steady, spans, (reference, backend))
            picks = picks_note(case, reference, backend)
            notes += [note for note in (shared, picks) if note]
            out.append(
                {
                    **dict(zip(CASE_KEYS, keys, strict=True)),
                    "suite_shown": keys[0] if named else "",
                    "backend": backend,
                    "reference": reference,
                    "paired_seeds": n,
                    "acc_diff_pp": diff,
                    "acc_ci_low_pp": low,
                    "acc_ci_high_pp": high,
                    "acc_significant": _excludes(low, high, 0.0),
                    "time_ratio": ratio,
                    "time_ci_low": t_low,
                    "time_ci_high": t_high,
                    "time_significant": t_marked,
                    "time_missing": time_missing,
                    "note": "; ".join(notes),
                }
            )
    return pd.DataFrame(out, columns=STATS_COLUMNS)
