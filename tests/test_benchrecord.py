"""What a suite test records with pytest-benchmark (docs/regressions.md, "pytest-benchmark"): the steady epochs of one
workload, or an xfbench warning that says why there are none.

Pure pandas: fake result rows stand in for trials, and stubs for pytest's request and pytest-benchmark's fixture.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace
from typing import Any

import pytest

from harness.backend import REFERENCE_BACKEND
from harness.benchrecord import NO_EPOCHS_TO_RECORD, EpochReplayClock, accuracies_by_seed, epoch_rounds, record_epochs
from harness.pytest_plugin import _benchmark_case
from harness.results import to_frame


def _rows(strategy: str, phases: dict[str, int], seeds: int = 2, status: str = "ok", time: float = 1.0):
    """Result rows of ``seeds`` trials training ``phases`` (name -> epochs) in order: each phase's first epoch is
    its warm-up; epoch times are ``time`` + phase index + epoch / 100, so each phase's times are told apart."""
    rows: list[dict[str, Any]] = []
    for seed in range(seeds):
        epoch = 0
        for index, (phase, epochs) in enumerate(phases.items()):
            for n in range(epochs):
                epoch += 1
                rows.append(
                    {
                        "trial_id": f"{strategy}-s{seed}",
                        "attempt": 1,
                        "status": status,
                        "strategy": strategy,
                        "backend": REFERENCE_BACKEND,
                        "seed": seed,
                        "phase": phase,
                        "epoch": epoch,
                        "warmup": n == 0,
                        "epoch_time_s": time + index + epoch / 100,
                        "samples_per_s": 1000.0 * (index + 1),
                        "framework_version": "1.0",
                    }
                )
        rows[-1]["test_acc"] = 0.9
    return to_frame(rows)


def _deep_features_rows(cached: bool):
    """deep_features' one row per trial: warmup False, its time the feature extraction, empty when cached."""
    frame = _rows("deep_features", {"sklearn": 1}, time=math.nan if cached else 2.5)
    frame["warmup"] = False
    return frame


class _Benchmark:
    """pytest-benchmark's fixture as the recording uses it: pedantic mode reads the timer around each round, and keeps
    the rounds in ``stats.stats.data``; ``timer``: a release that reads another timer than ``_timer``."""

    def __init__(self, timer: Any = None) -> None:
        self.group: str | None = None
        self.extra_info: dict[str, Any] = {}
        self._timer: Any = None
        self._own_timer = timer
        self.rounds: list[float] = []
        self.stats: Any = None

    def pedantic(self, target, rounds, iterations, warmup_rounds):
        timer = self._own_timer or self._timer
        for _ in range(rounds):
            start = timer()
            target()
            self.rounds.append(timer() - start)
        self.stats = SimpleNamespace(stats=SimpleNamespace(data=self.rounds))


def _record(frame, recording: bool = True):
    """Run the plugin's recording on ``frame``: the benchmark asked for (None if it was not), and the warnings."""
    asked: list[_Benchmark] = []

    def fixture(name):
        asked.append(_Benchmark())
        return asked[-1]

    config = SimpleNamespace(_benchmarksession=SimpleNamespace(disabled=False) if recording else None)
    request = SimpleNamespace(config=config, getfixturevalue=fixture)
    handle = SimpleNamespace(
        rows=lambda: frame,
        backend=REFERENCE_BACKEND,
        suite_name="transfer_smoke",
        case=SimpleNamespace(case_id="the-case"),
        trial_ids=tuple(frame["trial_id"].unique()),
        state=SimpleNamespace(outcome=SimpleNamespace(run_id="run-1", status="finished"), execution=None),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _benchmark_case(request, handle)  # type: ignore[arg-type]
    return (asked[0] if asked else None), [str(w.message) for w in caught]


def test_two_one_epoch_phases_record_nothing_and_the_warning_speaks_of_phases():
    """transfer frozen 1 + unfrozen 1: two epochs, each a phase's warm-up; "one epoch each ... give it 2 or more
    epochs" told a user whose case had two to add what it had."""
    benchmark, said = _record(_rows("transfer", {"frozen": 1, "unfrozen": 1}))
    assert benchmark is None
    assert said == [
        f"[{REFERENCE_BACKEND}] the-case: no benchmark recorded: its trials ran no steady-state epoch: each phase's "
        "first epoch is warm-up, and each of its phases (frozen, unfrozen) ran one epoch. Give each phase 2 or more "
        "epochs to benchmark it."
    ]


def test_a_one_phase_one_epoch_case_keeps_its_warning():
    benchmark, said = _record(_rows("scratch", {"scratch": 1}))
    assert benchmark is None
    assert len(said) == 1 and said[0].endswith(
        "no benchmark recorded: its trials ran no steady-state epoch (one epoch each, its warm-up). Give the case 2 "
        "or more epochs to benchmark it."
    )


@pytest.mark.parametrize("cached", [False, True])
def test_deep_features_record_no_epoch_and_say_why(cached):
    """Its one row timed the feature extraction and went in as an "epoch" round; with the features cached its time
    is empty and nothing but pytest-benchmark's "fixture was not used" said why."""
    benchmark, said = _record(_deep_features_rows(cached))
    assert benchmark is None  # not asked for: pytest-benchmark would warn that it was unused
    assert said == [f"[{REFERENCE_BACKEND}] the-case: no benchmark recorded: {NO_EPOCHS_TO_RECORD}"]
    assert epoch_rounds(_deep_features_rows(cached)).durations == ()


def test_a_case_without_an_ok_trial_records_nothing_and_says_why():
    benchmark, said = _record(_rows("scratch", {"scratch": 3}, status="failed"))
    assert benchmark is None
    assert len(said) == 1 and "2 of its 2 trials did not end ok (scratch-s0, scratch-s1)" in said[0]


def test_steady_epochs_without_a_time_record_nothing_and_say_why():
    frame = _rows("scratch", {"scratch": 3})
    frame.loc[~frame["warmup"].astype(bool), "epoch_time_s"] = math.nan
    benchmark, said = _record(frame)
    assert benchmark is None
    assert len(said) == 1 and "its steady-state epochs recorded no time" in said[0]


def test_no_warning_where_pytest_benchmark_records_nothing():
    """--benchmark-disable, xdist, or no pytest-benchmark: a missing benchmark is expected there."""
    assert _record(_deep_features_rows(cached=True), recording=False) == (None, [])


def test_a_two_phase_case_records_one_phase_not_both_pooled():
    """frozen 2 + unfrozen 3 epochs, two seeds: the unfrozen phase's 4 steady epochs (2 a seed), not them pooled
    with the frozen phase's, another workload; the group and extra_info name the phase."""
    benchmark, said = _record(_rows("transfer", {"frozen": 2, "unfrozen": 3}))
    assert said == [] and benchmark is not None
    assert benchmark.rounds == pytest.approx([2.04, 2.05, 2.04, 2.05])
    assert benchmark.group == "transfer_smoke:the-case:unfrozen"
    info = benchmark.extra_info
    assert (info["phase"], info["phases"], info["epochs_recorded"]) == ("unfrozen", ["frozen", "unfrozen"], 4)
    assert info["steady_epoch_time_s_median_per_phase"] == pytest.approx({"frozen": 1.02, "unfrozen": 2.045})
    assert info["samples_per_s_median"] == 2000.0


def test_a_tie_between_phases_records_the_later_one_and_more_epochs_win():
    tie = epoch_rounds(_rows("transfer", {"frozen": 2, "unfrozen": 2}, seeds=1))
    assert (tie.phase, tie.durations) == ("unfrozen", pytest.approx((2.04,)))
    more_frozen = epoch_rounds(_rows("transfer", {"frozen": 4, "unfrozen": 2}, seeds=1))
    assert (more_frozen.phase, more_frozen.durations) == ("frozen", pytest.approx((1.02, 1.03, 1.04)))


def test_a_one_phase_case_records_its_steady_epochs_under_the_case_group():
    benchmark, said = _record(_rows("scratch", {"scratch": 3}))
    assert said == [] and benchmark is not None
    assert benchmark.rounds == pytest.approx([1.02, 1.03, 1.02, 1.03])
    assert benchmark.group == "transfer_smoke:the-case"
    assert (benchmark.extra_info["phase"], benchmark.extra_info["timing_basis"]) == ("", "steady")


def test_the_replay_clock_reproduces_the_durations_exactly():
    """Its ticks were a running sum: 0.6 after 0.5 came back 0.6000000000000001."""
    clock = EpochReplayClock([0.5, 0.6, 0.25])
    ticks = [clock() for _ in range(6)]
    assert [ticks[1] - ticks[0], ticks[3] - ticks[2], ticks[5] - ticks[4]] == [0.5, 0.6, 0.25]


def test_rounds_pytest_benchmark_did_not_time_with_the_replay_clock_are_refused():
    """The clock is set on the fixture's private _timer: a pytest-benchmark that reads another timer timed the no-op
    target, and the benchmark saved microseconds as the case's epoch time, silently."""
    lambda_times = iter([0.0, 2e-7, 1.0, 1.0000003])
    benchmark = _Benchmark(timer=lambda: next(lambda_times))
    with pytest.raises(RuntimeError) as raised:
        record_epochs(benchmark, [0.5, 0.6], group="smoke:the-case", extra_info={})
    said = str(raised.value)
    assert said.startswith(
        "Expected pytest-benchmark to record the 2 epoch times of smoke:the-case as its rounds ([0.5, 0.6] s). "
        "Received: [2e-07, 3e-07] s from pytest-benchmark "
    ), said
    assert (
        "did not time its rounds with xfbench's replay clock" in said and "To fix, install a pytest-benchmark" in said
    )
    recorded = _Benchmark()  # the clock read: no refusal
    record_epochs(recorded, [0.5, 0.6], group="smoke:the-case", extra_info={})
    assert recorded.rounds == [0.5, 0.6]
    disabled = _Benchmark(timer=lambda: 0.0)  # --benchmark-disable: pytest-benchmark records nothing, not refused
    disabled.disabled = True  # type: ignore[attr-defined]
    record_epochs(disabled, [0.5], group="smoke:the-case", extra_info={})


def test_twelve_seeds_accuracies_are_keyed_by_seed_in_the_seeds_order():
    """extra_info's per-seed accuracies were a list in the trial ids' text order, s10 and s11 before s2, unlabelled:
    [0.0, 0.01, 0.1, 0.11, 0.02, ...]."""
    frame = _rows("scratch", {"scratch": 2}, seeds=12)
    final = frame["test_acc"].notna()
    frame.loc[final, "test_acc"] = frame.loc[final, "seed"].astype(float) / 100
    by_seed = accuracies_by_seed(frame.sort_values("trial_id", kind="stable"))  # s0, s1, s10, s11, s2, ...
    assert list(by_seed) == [str(seed) for seed in range(12)]
    assert by_seed == {str(seed): pytest.approx(seed / 100) for seed in range(12)}
    benchmark, said = _record(frame.sort_values("trial_id", kind="stable"))  # as the case's benchmark saves them
    assert said == [] and benchmark is not None
    assert list(benchmark.extra_info["test_acc_by_seed"]) == [str(seed) for seed in range(12)]
    assert "test_acc_per_seed" not in benchmark.extra_info
    frame.loc[frame["trial_id"] == "scratch-s3", "status"] = "failed"  # a trial not ok has no accuracy
    assert "3" not in accuracies_by_seed(frame) and len(accuracies_by_seed(frame)) == 11
