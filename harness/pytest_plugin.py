"""pytest plugin: run xfbench suites as pytest tests.

A suite module marks itself with ``pytest.mark.xfbench(suites={scale: suite_name})``
and defines tests taking the ``xfbench_case`` fixture. The plugin parametrizes
them over (backend, case) for the chosen ``--scale``; at the first such test it
runs *every* collected trial in one Ray Tune session, keeps the outcome in
``config.stash`` and lets each test check its own bar and its agreement with
the other backends. With ``--baseline`` the run is compared with the baseline once it
has its rows, and a case that regressed fails its own test (:func:`pytest_runtest_call`);
the session fails on what no test owns. The comparison table ends the session.

Under pytest-xdist (``-n N --dist loadgroup``) every case carries one ``xdist_group``, so one worker runs them all in
one Ray run while the other workers take the remaining tests; that worker fails its own tests of regressed cases and
sends its comparison (and what the baseline gate found) to the controller, which prints it and fails the session on
what no test owns as without xdist.

Before Ray starts, the trials go through the CLI's checks: the planner's overrides and capability fit at
collection; the session's data folder, results folder, baseline and execution options once the cases are selected
(bad input there is a usage error, exit 4, before any test runs; under xdist the controller checks the data folder
when the session starts, the worker running the suites the rest); :func:`harness.preflight.preflight` before the run,
over all the trials, or where that fails case by case (a bad case fails with its reason, the others run once they
pass it together; a session whose every case is refused exits 4, as the CLI's bad input).
"""

from __future__ import annotations

import argparse
import html
import math
import re
import shlex
import warnings
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Light modules only: pytest loads this plugin in every run of the environment (a project's that never uses xfbench
# too). The configs, the planner, the suites and pandas are imported where a suite module needs them.
from harness.backend import BACKENDS
from harness.errors import InputError, closest_text
from harness.option_types import (
    ADDRESS_HELP,
    SHIP_POLICIES,
    add_threshold_options,
    changed_threshold_options,
    concurrency,
    expected_received,
    gpu_share,
    non_negative_int,
    positive_int,
    user_path,
)

if TYPE_CHECKING:
    import pandas as pd

    from harness.benchrecord import EpochRounds
    from harness.config import TrialConfig
    from harness.data.locate import DataNotFoundError
    from harness.suites import Suite, SuiteCase

SCALES = ("smoke", "quick", "full")


@dataclass
class SessionState:
    """Everything the plugin keeps for one pytest session (in config.stash, never in globals)."""

    wanted: dict[str, TrialConfig] = field(default_factory=dict)  # trial_id -> config, from collection
    deselected: dict[str, TrialConfig] = field(default_factory=dict)  # collected, then left out by -k, node ids, -m
    # backends with collected cases and not one test selected (--lf, node ids, -k, -m, --deselect): the user left
    # them out, which the --baseline gate says rather than fails on (one left out by --backend was never collected)
    unselected_backends: set[str] = field(default_factory=set)
    suites: dict[str, Suite] = field(default_factory=dict)  # name -> the suite collected (a user's own among them)
    case_groups: set[tuple[str, ...]] = field(default_factory=set)  # each (case, backend)'s trial ids, for preflight
    case_errors: dict[str, str] = field(default_factory=dict)  # trial_id -> why its case was not run (bad input)
    missing_data: dict[str, str] = field(default_factory=dict)  # dataset -> reason ("" when present)
    loaded: dict[str, Any] = field(default_factory=dict)  # dataset -> Dataset, read once for presence and preflight
    data_provenance: dict[str, dict[str, str]] = field(default_factory=dict)
    weights_keys: dict[str, str] = field(default_factory=dict)  # by trial id, as preflight converted them
    execution: Any = None  # the session's ExecutionOptions, checked once the cases are selected
    outcome: Any = None
    error: str | None = None
    reports: list[SessionReport] = field(default_factory=list)  # how the run ended (an xdist controller: its workers')
    baseline_unused: str | None = None  # why --baseline compared nothing where no case ran
    baseline_left_out: str | None = None  # the same, said as a warning: pytest's selection left out every case
    # xfbench_case tests made at collection (a module's one skipped test too), deselected or not
    collected_cases: int = 0
    # the session's pytest selection, where it left out every xfbench case collected (or --lf every suite module):
    # the user chose to run none, which the --baseline gate says rather than fails on
    left_out_by_selection: str = ""
    usage_error: bool = False  # the session stopped on bad input before any test ran (pytest says why)
    # the run was refused as bad input once the tests began: preflight refused every case or the whole run, the
    # session's checks or --dist under pytest-xdist, or what only Ray could judge (no node offers a trial's CPUs or
    # GPUs, the cluster is gone): every case fails with it, and the session exits 4, as the CLI exits 2, not 1 as if
    # a test had failed
    run_refused: bool = False
    gate: BaselineGate | None = None  # what --baseline found, decided once the run has its rows


@dataclass(frozen=True)
class BaselineGate:
    """The session's run against --baseline (:func:`_against_baseline`): the comparison's markdown, whether the
    baseline could be used, what fails the gate (each regressed ``case [backend]``, each ``[backend] not run``), and
    each regressed (case, backend), as compare names it, with its figures: what fails that case's test."""

    report: str
    usable: bool
    failing: tuple[str, ...] = ()
    regressed: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionReport:
    """How the session's run ends, for the terminal: built where the run ran, sent by an xdist worker to the
    controller as plain values (``as_message``: what execnet carries)."""

    summary_markdown: str
    run_dir: str
    baseline_report: str | None
    baseline_usable: bool
    regressions: tuple[str, ...]
    report_problem: str | None = None  # why the run's report.html was not drawn

    def as_message(self) -> dict[str, Any]:
        return {**asdict(self), "regressions": list(self.regressions)}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> SessionReport:
        return cls(**{**message, "regressions": tuple(message["regressions"])})


STATE_KEY = pytest.StashKey[SessionState]()
# Every case of a session in one pytest-xdist group: the first case runs every trial, so they belong to one worker.
XDIST_GROUP = "xfbench-suites"
WORKER_OUTPUT_KEY = "xfbench_session_report"
WORKER_ERROR_KEY = "xfbench_session_error"  # why a worker's run measured nothing, for the controller's gate
WORKER_REFUSED_KEY = "xfbench_run_refused"  # SessionState.run_refused, for the controller's exit status
WORKER_LEFT_OUT_KEY = "xfbench_left_out_by_selection"  # SessionState.left_out_by_selection, for the controller's gate


@dataclass(frozen=True)
class CaseHandle:
    """What a suite test receives: its case, backend and (after the run) its measured rows."""

    case: SuiteCase
    suite_name: str
    backend: str
    trial_ids: tuple[str, ...]
    state: SessionState

    def __repr__(self) -> str:
        """The test's parameter as pytest-benchmark saves it (``params``, with --benchmark-json and -autosave): the
        default repr held the whole session state, its run's table included, in every benchmark entry."""
        return f"CaseHandle({self.suite_name}:{self.case.case_id} [{self.backend}])"

    def rows(self) -> pd.DataFrame:
        """The case's rows, each trial's last attempt only (as summary.md, compare and the benchmark read them): a
        trial retried under --max-failures and then ok failed its test on the earlier attempt's failed row."""
        from harness.summary import last_attempts

        frame = self.state.outcome.frame
        return last_attempts(frame[frame["trial_id"].isin(self.trial_ids)])

    def mean_test_accuracy(self) -> float:
        rows = self.rows()
        finals = rows.dropna(subset=["test_acc"])
        return float(finals["test_acc"].mean()) if len(finals) else math.nan

    def mean_final_validation_accuracy(self) -> float:
        """The validation accuracy after each trial's last epoch (its final row), averaged over seeds."""
        from harness.summary import final_rows

        finals = final_rows(self.rows()).dropna(subset=["val_acc"])
        return float(finals["val_acc"].mean()) if len(finals) else math.nan

    def mean_backbone_accuracy(self) -> float:
        """The test accuracy its backbone reached on the source task, averaged over the case's trials (one value per
        trial, on each of its rows); NaN where no row holds one (a backbone from a checkpoint that recorded none: a
        case that trains no backbone is refused its bar when it is built)."""
        rows = self.rows()
        if "backbone_test_acc" not in rows:
            return math.nan
        per_trial = rows.dropna(subset=["backbone_test_acc"]).groupby("trial_id")["backbone_test_acc"].first()
        return float(per_trial.mean()) if len(per_trial) else math.nan

    def check_bar(self) -> float:
        """Fail unless every trial of this case finished ok with a test accuracy, the means are at least the case's
        bars (test and/or final validation accuracy, the backbone's source test accuracy), and every seed agrees
        with the other backends' within the case's ``max_backend_gap``."""
        where = f"[{self.backend}] {self.case.case_id}"
        outcome = self.state.outcome
        if outcome.status != "finished":
            pytest.fail(
                f"{where}: the run was {outcome.status}, so its results are partial; {_resume_hint(outcome)}",
                pytrace=False,
            )
        rows = self.rows()
        bad = rows[rows["status"] != "ok"]
        if len(bad):
            from harness.plan import resume_command
            from harness.runner import resumable_failures

            # the failed trials a resume runs again alone, as the CLI says (one skipped for a diverged backbone, or
            # a diverged one, would end so again: its resume refuses)
            rerun = set(resumable_failures(outcome.frame, None)) & set(bad["trial_id"])
            again = f" (re-run those alone: `{resume_command('run', Path(outcome.run_dir))}`)" if rerun else ""
            pytest.fail(
                f"{where}: trials not ok: " + "; ".join(_not_ok(r) for r in bad.itertuples()) + again,
                pytrace=False,
            )
        measured_trials = set(rows.dropna(subset=["test_acc"])["trial_id"])
        unmeasured = [t for t in self.trial_ids if t not in measured_trials]
        if unmeasured:
            pytest.fail(
                f"{where}: measured nothing: no ok row with a test accuracy for {', '.join(unmeasured)}", pytrace=False
            )
        self.check_agreement()
        measured, c = self.mean_test_accuracy(), self.case
        bars = (
            ("test accuracy", measured, c.min_test_acc),
            ("validation accuracy", self.mean_final_validation_accuracy(), c.min_val_acc),
            ("its backbone's test accuracy on the source task", self.mean_backbone_accuracy(), c.min_backbone_acc),
        )
        for what, value, bar in bars:
            if bar is not None and not value >= bar:
                source = f" ({self.case.bar_source})" if self.case.bar_source else ""
                said = f"{what} {value:.4f} is below the bar" if value == value else f"no row holds {what} for the bar"
                pytest.fail(
                    f"[{self.backend}] {self.case.case_id}: {said} {bar:.4f}{source}; "
                    f"mean over {rows['trial_id'].nunique()} seed(s)",
                    pytrace=False,
                )
        return measured

    def regression(self) -> str:
        """What fails this case's test against --baseline, with the figures ('' where nothing does): its (case,
        backend) regressed in the session's gate."""
        gate = self.state.gate
        if gate is None or not gate.regressed:
            return ""
        from harness.compare import compared_cases

        found = [gate.regressed[key] for key in sorted(compared_cases(self.rows())) if key in gate.regressed]
        return f"[{self.backend}] {self.case.case_id}: {'; '.join(found)}" if found else ""

    def _ok_rows_of_case(self, frame: Any) -> Any:
        """Every backend's ok rows of this case in ``frame``."""
        from harness.model_import import trial_model

        c = self.case
        return frame[
            (frame["suite"] == self.suite_name)
            & (frame["strategy"] == c.strategy)
            & (frame["model"] == trial_model(c.model))
            & (frame["dataset"] == c.dataset)
            & (frame["variant"].fillna("") == c.variant)
            & (frame["status"] == "ok")
        ]

    def seed_accuracies(self, frame: Any) -> dict[str, dict[int, float]]:
        """backend -> seed -> final test accuracy, for every backend's trials of this case in ``frame``."""
        from harness.summary import final_rows

        same_case = self._ok_rows_of_case(final_rows(frame))
        out: dict[str, dict[int, float]] = {}
        for r in same_case.dropna(subset=["test_acc"]).itertuples():
            out.setdefault(str(r.backend), {})[int(r.seed)] = float(r.test_acc)
        return out

    def _where_trajectories_part(self, seed: int, others: list[str]) -> str:
        """The first epoch whose training loss differs between the backends by more than fp32 rounding explains: on
        small data, from the first epoch on, a difference in what they compute; later, or within an epoch of hundreds
        of steps, possibly a rounding-level gap that grew (a --precision float64 rerun tells: docs/fairness.md)."""
        rows = self._ok_rows_of_case(self.state.outcome.frame)
        rows = rows[rows["seed"] == seed]
        rows = rows.dropna(subset=["epoch", "train_loss"])  # deep_features' one row: a scikit-learn fit, no loss
        losses = {b: dict(zip(g["epoch"], g["train_loss"], strict=True)) for b, g in rows.groupby("backend")}
        mine = losses.get(self.backend, {})
        if not any(epoch in losses.get(other, {}) for epoch in mine for other in others):
            return " (no epoch's training loss recorded by both: with a scikit-learn head, its features or fit differ)"
        for epoch in sorted(mine):
            for other in others:
                theirs = losses.get(other, {}).get(epoch)
                if theirs is not None and abs(mine[epoch] - theirs) > 1e-5 * max(1.0, abs(theirs)):
                    return f" (training losses part at epoch {epoch}: {mine[epoch]:.6g} vs {other} {theirs:.6g})"
        return " (training losses agree at every epoch)"

    def check_agreement(self) -> None:
        """Fail when, on some seed, another backend's test accuracy differs from this one's by more than the
        case's ``max_backend_gap`` (0: exact agreement). Backends or seeds absent from the run are not compared."""
        by_backend = self.seed_accuracies(self.state.outcome.frame)
        mine = by_backend.get(self.backend, {})
        gap = self.case.max_backend_gap
        apart: dict[int, str] = {}
        for seed, acc in sorted(mine.items()):
            others = {b: accs[seed] for b, accs in sorted(by_backend.items()) if b != self.backend and seed in accs}
            if any(abs(acc - other) > gap + 1e-9 for other in others.values()):  # 1e-9: float noise in a - b
                apart[seed] = ", ".join(f"{b} {a:.4f}" for b, a in {self.backend: acc, **others}.items())
                apart[seed] += self._where_trajectories_part(seed, list(others))
        self._warn_of_deselected_backends(by_backend)
        if apart:
            pytest.fail(
                f"[{self.backend}] {self.case.case_id}: backends disagree by more than max_backend_gap "
                f"{gap:.4f} on seed(s) {sorted(apart)}: "
                + "; ".join(f"seed {seed}: {values}" for seed, values in apart.items())
                + self._why_inexact(),
                pytrace=False,
            )
        self._check_first_epoch_losses()

    def _check_first_epoch_losses(self) -> None:
        """Fail when, on some seed, another backend's training loss of the first epoch differs from this one's by more
        than the case's ``max_first_epoch_loss_gap``, relative to the larger (not checked where it is None). Two
        networks at chance pass the accuracy gap whatever they computed; their first epoch's loss still tells."""
        gap = self.case.max_first_epoch_loss_gap
        if gap is None:
            return
        rows = self._ok_rows_of_case(self.state.outcome.frame).dropna(subset=["epoch", "train_loss"])
        firsts = rows.sort_values("epoch").groupby(["backend", "seed"])["train_loss"].first()
        losses: dict[int, dict[str, float]] = {}
        for (backend, seed), loss in firsts.items():
            losses.setdefault(int(seed), {})[str(backend)] = float(loss)
        apart = {
            seed: by_backend
            for seed, by_backend in sorted(losses.items())
            if self.backend in by_backend
            and any(
                abs(by_backend[self.backend] - other) > gap * max(abs(by_backend[self.backend]), abs(other))
                for backend, other in by_backend.items()
                if backend != self.backend
            )
        }
        if apart:
            said = "; ".join(  # this backend's loss first, as the accuracy gap's failure names them
                f"seed {seed}: "
                + ", ".join(
                    f"{b} {by_backend[b]:.6g}" for b in sorted(by_backend, key=lambda name: name != self.backend)
                )
                for seed, by_backend in apart.items()
            )
            pytest.fail(
                f"[{self.backend}] {self.case.case_id}: the backends' training losses of the first epoch differ by "
                f"more than max_first_epoch_loss_gap {gap:g} (relative) on seed(s) {sorted(apart)}: {said}"
                + self._why_inexact(),
                pytrace=False,
            )

    def _warn_of_deselected_backends(self, by_backend: dict[str, dict[int, float]]) -> None:
        """Re-running a case that failed for a disagreement by its node id (or a -k or -m that matched it in one
        backend) trained this backend alone: with nothing to compare, its test passed while the disagreement stood.
        Say so."""
        from harness.model_import import trial_model

        c = self.case
        untrained = sorted(
            {
                t.backend
                for t in self.state.deselected.values()
                if (t.suite, t.strategy, t.model, t.dataset, t.variant)
                == (self.suite_name, c.strategy, trial_model(c.model), c.dataset, c.variant)
                and t.backend != self.backend
                and t.backend not in by_backend
            }
        )
        if untrained:
            warnings.warn(
                pytest.PytestWarning(
                    f"[{self.backend}] {c.case_id}: agreement with {', '.join(untrained)} not checked: its test of "
                    f"this case was deselected (a node id, -k or -m), so it did not train. To check it, select the "
                    f"case in every backend: its node ids, or -k '{c.case_id}' (which also selects a case whose name "
                    "holds that one)."
                ),
                stacklevel=2,
            )

    def _why_inexact(self) -> str:
        """What the case's rows say makes its backends compute differently by design (the ``inexact`` column)."""
        rows = self._ok_rows_of_case(self.state.outcome.frame)
        reasons = sorted({str(r) for r in rows["inexact"].dropna() if str(r)}) if "inexact" in rows else []
        return f". Not computed exactly alike by design: {'; '.join(reasons)}" if reasons else ""


def _not_ok(row: Any) -> str:
    """A trial's row that is not ok, in words: its status, the epoch it stopped at and its error, where known."""
    import pandas as pd

    epoch = f" at epoch {int(row.epoch)}" if pd.notna(row.epoch) else ""  # a trial that failed before its first: none
    loss = ""
    if row.status == "diverged":  # the loss that stopped being finite: training's, or validation's after it
        train, val = float(row.train_loss), float(row.val_loss)
        loss = (
            f" (training loss {train})" if not math.isfinite(train) else f" (validation loss {val}, training {train})"
        )
    error = f": {row.error}" if isinstance(row.error, str) and row.error else ""
    return f"{row.trial_id}: {row.status}{epoch}{loss}{error}"


def _worded_options(addoption: Callable[..., Any]) -> Callable[..., Any]:
    """``addoption`` whose options refuse a bad value as the CLI does, Expected / Received / To fix with the closest
    choice: pytest prints argparse's own "invalid choice: 'pytorch' (choose from ...)" or a type's bare "expected a
    number >= 1, received 0", which only the CLI's parser rewrites (cli_options.OneLineErrorParser)."""

    def add(*flags: str, **kwargs: Any) -> Any:
        flag = flags[0]
        if "choices" in kwargs:
            valid = tuple(kwargs.pop("choices"))
            kwargs.update(type=_one_of(valid, flag), metavar="{" + ",".join(valid) + "}")
        elif "type" in kwargs:
            kwargs["type"] = _worded(kwargs["type"], flag)
        return addoption(*flags, **kwargs)

    return add


def _one_of(valid: tuple[str, ...], flag: str) -> Callable[[str], str]:
    def one_of(text: str) -> str:
        if text not in valid:
            close = closest_text(text, valid, flag)
            raise argparse.ArgumentTypeError(
                f"Expected {flag} to be one of {list(valid)}. Received: {text!r}. To fix, {close}pick one of those."
            )
        return text

    return one_of


def _worded(kind: Callable[[str], Any], flag: str) -> Callable[[str], Any]:
    def worded(text: str) -> Any:
        try:
            return kind(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{expected_received(f'argument {flag}: {exc}').rstrip('.')}.") from None

    return worded


def pytest_addoption(parser: pytest.Parser) -> None:
    add = _worded_options(parser.getgroup("xfbench", "xfbench suites").addoption)
    add(
        "--backend",
        action="append",
        dest="xfbench_backends",
        choices=BACKENDS,
        help="backend to run (repeat; default both)",
    )
    add("--scale", dest="xfbench_scale", choices=SCALES, default="smoke", help="suite size (default smoke)")
    add("--seeds", dest="xfbench_seeds", type=positive_int, default=None, help="seeds per case (default: the suite's)")
    add("--ray-address", dest="xfbench_ray_address", default=None, help=ADDRESS_HELP)
    # the CLI's option types: a count or share that is not one is refused when pytest parses its options
    add(
        "--cpus-per-trial",
        dest="xfbench_cpus",
        type=positive_int,
        default=1,
        help="CPUs (and threads) per trial (default 1)",
    )
    add(
        "--gpus-per-trial",
        dest="xfbench_gpus",
        type=gpu_share,
        default=None,
        help="GPUs per trial, fractional allowed (default none: the trials train on the CPU; a suite sized for GPUs "
        "then needs --gpus-per-trial 0 to train there on purpose)",
    )
    _add_scheduling_options(add)
    _add_data_and_results_options(add)


def _add_scheduling_options(add: Callable[..., Any]) -> None:
    """The CLI's scheduling options: the session's trials share one run, so without them a case's timings depended
    on which other modules the session held, and the comparison's advice (--max-concurrent 1) was refused."""
    add(
        "--max-concurrent",
        dest="xfbench_max_concurrent",
        type=concurrency,
        default=None,
        help="at most this many trials at once, or auto: as many as the cores allow (default auto; a speed suite: 1)",
    )
    add(
        "--max-failures",
        dest="xfbench_max_failures",
        type=non_negative_int,
        default=None,
        help="retry a trial that raised or whose worker died up to N times (default 0; not pytest's --maxfail)",
    )
    add(
        "--fresh-workers",
        dest="xfbench_fresh_workers",
        action="store_true",
        help="start a new worker process for every trial (default: reuse each backend's warm workers)",
    )


def _add_data_and_results_options(add: Callable[..., Any]) -> None:
    """Where the data comes from and goes to, and what the session's run is compared with."""
    add(
        "--results-dir",
        dest="xfbench_results_dir",
        default="results",
        type=user_path,
        help="where the session's run directory goes, and --baseline names are looked up (default ./results)",
    )
    add(
        "--data-dir",
        dest="xfbench_data_dir",
        default=None,
        type=user_path,
        help="directory with dataset files (also $XFBENCH_DATA, user cache, /usr/share/datasets); "
        "a case whose files are missing is skipped, never downloaded",
    )
    add(
        "--ship-data",
        dest="xfbench_ship_data",
        choices=SHIP_POLICIES,
        default="auto",
        help="send datasets to the trials through Ray's object store: auto (<= 256 MB with --ray-address, <= 1 GB "
        "locally; default), always, never (each node then reads its own files)",
    )
    # on by default, as a CLI run (DESIGN: a run writes summary.md and report.html); it was off
    add(
        "--xfbench-report",
        dest="xfbench_report",
        action="store_true",
        default=True,
        help="write report.html beside the session run's summary.md (default)",
    )
    add(
        "--no-xfbench-report",
        dest="xfbench_report",
        action="store_false",
        help="no report.html (its plots take a fraction of a second per case; xfbench report RUN draws it later)",
    )
    add(
        "--baseline",
        dest="xfbench_baseline",
        default=None,
        type=user_path,
        help="run directory or saved baseline name to compare with; a case that regressed fails its test",
    )
    # what --baseline counts as a regression, as xfbench compare's options say it
    add_threshold_options(add, flag="--baseline-", dest="xfbench_baseline_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "xfbench(suites): an xfbench suite module; suites maps --scale to a suite name or Suite"
    )
    if not config.pluginmanager.hasplugin("xdist"):  # the cases carry its mark; --strict-markers must know it
        config.addinivalue_line("markers", "xdist_group(name): pytest-xdist runs a group's tests in one worker")
    config.stash[STATE_KEY] = SessionState()
    _check_thresholds_have_a_baseline(config)


def _check_thresholds_have_a_baseline(config: pytest.Config) -> None:
    """--baseline-time-threshold and the like change only the --baseline gate: without it a CI command that lost
    its --baseline would run on and never fail, as if the thresholds were in force."""
    changed = [
        option.split()[0]
        for option in changed_threshold_options(
            lambda name: config.getoption(f"xfbench_baseline_{name}"), "--baseline-"
        )
    ]
    if changed and not config.getoption("xfbench_baseline"):
        raise pytest.UsageError(
            f"Expected --baseline with {', '.join(changed)} (they set what the baseline gate counts as a regression). "
            "Received: no --baseline, so nothing would be compared. To fix, add --baseline RUN_OR_NAME, or drop "
            f"{', '.join(changed)}."
        )


def _collection_error(message: str) -> BaseException:
    """Bad input found while collecting, as pytest shows a collection error: the message alone (a UsageError raised
    here came with twenty lines of pluggy's and pytest's frames before it), exit 2 (interrupted)."""
    return pytest.fail.Exception(message, pytrace=False)


def _suite_for(metafunc: pytest.Metafunc) -> Suite | None:
    """The module's suite for --scale: the marker maps each scale to a suite name or a Suite object."""
    from harness.planner import check_runnable_suite
    from harness.suites import Suite, suite

    marker = metafunc.definition.get_closest_marker("xfbench")
    if marker is None:
        raise _collection_error(
            f"{metafunc.definition.nodeid}: Expected a pytest.mark.xfbench(suites={{scale: suite}}) marker on a test "
            "that takes xfbench_case: it says which suite each --scale runs. Received: no such marker on the test, its "
            "class or its module. To fix, mark the module, e.g. "
            '`pytestmark = pytest.mark.xfbench(suites={"smoke": "smoke", "quick": "quick"})`.'
        )
    suites = marker.kwargs.get("suites")
    unknown = sorted(set(suites) - set(SCALES)) if isinstance(suites, dict) else []
    bad_value = isinstance(suites, dict) and not all(isinstance(s, (str, Suite)) for s in suites.values())
    if not isinstance(suites, dict) or unknown or bad_value or marker.args:
        shown = lambda v: f"Suite {v.name!r}" if isinstance(v, Suite) else repr(v)  # noqa: E731  (not its cases)
        given = [*map(shown, marker.args)] + [
            f"suites={{{', '.join(f'{k!r}: {shown(s)}' for k, s in v.items())}}}"
            if k == "suites" and isinstance(v, dict)
            else f"{k}={shown(v)}"
            for k, v in marker.kwargs.items()
        ]
        raise _collection_error(
            f"{metafunc.definition.nodeid}: Expected pytest.mark.xfbench(suites={{scale: suite}}) with scales among "
            f"{list(SCALES)} and each suite a name or a Suite. Received: pytest.mark.xfbench({', '.join(given)})"
            + (f", whose scales {unknown} are none of those" if unknown else "")
            + ". To fix, write it so: each key one of those scales, each value a suite's name (`xfbench list`) or a "
            "Suite."
        )
    chosen = suites.get(metafunc.config.getoption("xfbench_scale"))
    try:
        found = suite(chosen) if isinstance(chosen, str) else chosen
        if found is not None:
            check_runnable_suite(found)  # a search suite: the plugin, as `xfbench run`, would train its base only
        return found
    except InputError as exc:
        raise _collection_error(f"{metafunc.definition.nodeid}: {exc}") from None


def _gpu_refusal(chosen: Suite, metafunc: pytest.Metafunc) -> str:
    """The CLI's refusal of a suite sized for GPUs without --gpus-per-trial (harness.preflight.check_gpu_suites),
    as the reason its cases are skipped: on a CPU machine ``--scale full`` still runs the suites a CPU can. The
    CPU tier is named as the ``--scale`` that selects it in this module (the CLI's suite name is no pytest option)."""
    from harness.preflight import check_gpu_suites

    marker = metafunc.definition.get_closest_marker("xfbench")
    suites = marker.kwargs.get("suites", {}) if marker is not None else {}
    scales = {s if isinstance(s, str) else s.name: scale for scale, s in suites.items()}
    tier_option = lambda tier: f"--scale {scales[tier]}" if tier in scales else tier  # noqa: E731
    try:
        check_gpu_suites([chosen], metafunc.config.getoption("xfbench_gpus"), tier_option)
    except InputError as exc:
        return str(exc)
    return ""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xfbench_case" not in metafunc.fixturenames:
        return
    from harness.planner import check_suite_size
    from harness.variant_overrides import check_variant_overrides

    config = metafunc.config
    chosen = _suite_for(metafunc)
    skipped = (
        f"no suite at scale {config.getoption('xfbench_scale')}" if chosen is None else _gpu_refusal(chosen, metafunc)
    )
    if skipped:  # the module's one skipped test says why; the session's other modules run
        marks = pytest.mark.skip(reason=skipped)
        metafunc.parametrize("xfbench_case", [pytest.param(None, marks=marks)], ids=["none"], indirect=True)
        config.stash[STATE_KEY].collected_cases += 1
        return
    assert chosen is not None
    backends = tuple(dict.fromkeys(config.getoption("xfbench_backends") or BACKENDS))
    seeds = config.getoption("xfbench_seeds") or chosen.seeds
    data_dir = config.getoption("xfbench_data_dir")
    # The CLI's override paths: threads and device from the execution options, the data directory.
    overrides: dict[str, Any] = {
        "runtime.threads": config.getoption("xfbench_cpus"),
        "runtime.device": "gpu" if (config.getoption("xfbench_gpus") or 0) > 0 else "cpu",
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
    }
    try:
        check_suite_size(chosen, backends, seeds)  # before any trial is built: --seeds 10**11 would take hours
        check_variant_overrides(chosen, backends, overrides)  # the CLI's refusal of an option that erases variants
    except InputError as exc:
        raise _collection_error(f"{metafunc.definition.nodeid}: {exc}") from None
    params = [
        _case_param(metafunc, chosen, case, backend, backends, seeds, overrides)
        for backend in backends
        for case in chosen.cases
    ]
    metafunc.parametrize("xfbench_case", params, indirect=True)
    config.stash[STATE_KEY].collected_cases += len(params)


def _case_param(
    metafunc: pytest.Metafunc,
    chosen: Suite,
    case: SuiteCase,
    backend: str,
    selected: tuple[str, ...],
    seeds: int,
    overrides: dict[str, Any],
) -> Any:
    """One (backend, case) test: its trials wanted by the session's run, or a skip mark saying why none are.
    ``selected``: the session's backends, against which the case's speed options are judged, as the CLI does."""
    from harness.data.registry import found_in, read_elsewhere
    from harness.planner import suite_case_trials

    state = metafunc.config.stash[STATE_KEY]
    where = f"{metafunc.definition.nodeid} [{backend}-{case.case_id}]"
    data_dir = metafunc.config.getoption("xfbench_data_dir")
    try:
        reason = _data_missing(state, case.dataset, data_dir)
        # The trials read the files found here, at collection, wherever the environment points later (a conftest
        # that isolates the data paths for its tests, say): what was checked is what trains. With --data-dir too
        # where that folder held none of the files and the search went on to another root's copy.
        loaded = state.loaded.get(case.dataset) if not reason else None
        pinned = loaded is not None and (not data_dir or read_elsewhere(data_dir, loaded) is not None)
        found = found_in(loaded) if pinned and loaded is not None else None
        trials = suite_case_trials(
            chosen, case, (backend,), seeds, {**overrides, "data_dir": found} if found else overrides, selected
        )
    except InputError as exc:  # a dataset xfbench does not know, an override that does not fit the case
        raise _collection_error(f"{where}: {_as_suite_fields(str(exc))}") from None
    if not trials and not reason:  # a case for some backends only (SuiteCase.only_backends): none here
        reason = f"{case.case_id} runs on {', '.join(case.only_backends) or 'other backends'} only"
    marks = [pytest.mark.xdist_group(XDIST_GROUP), *([pytest.mark.skip(reason=reason)] if reason else [])]
    for trial in trials if not reason else ():  # the same case wanted by several tests runs once
        if state.wanted.setdefault(trial.trial_id, trial) != trial:  # another case's id must differ
            from harness.preflight import DISTINCT_IDS_FIX

            raise _collection_error(
                f"{where}: Expected every trial to have its own id. Received: two different trials as "
                f"{trial.trial_id}. {DISTINCT_IDS_FIX}"
            )
    state.suites[chosen.name] = chosen  # its max_concurrent limits the session's run
    handle = CaseHandle(case, chosen.name, backend, tuple(t.trial_id for t in trials), state)
    return pytest.param(handle, id=f"{backend}-{case.case_id}", marks=marks)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --benchmark-only the cases still run: each records a benchmark, and pytest-benchmark (whose hook runs
    after this one) skips the tests that do not ask for its fixture."""
    if _benchmarks(config) == "only":
        for item in items:
            names = getattr(item, "fixturenames", [])
            if "xfbench_case" not in names:
                continue
            if "benchmark" not in names:
                names.append("benchmark")
            # a case that records nothing says why itself (_benchmark_case); pytest-benchmark's "fixture was not
            # used at all", in the teardown of the fixture asked for here, said it a second time
            item.add_marker(pytest.mark.filterwarnings("ignore:Benchmark fixture was not used at all"))


def _benchmarks(config: pytest.Config) -> str:
    """pytest-benchmark's mode as it resolved its options ("only", "skip" or ""): given both, --benchmark-only wins
    there, so the raw options alone would mislead."""
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's own state; absent without it
    if session is None:
        return ""
    return "only" if getattr(session, "only", False) else "skip" if getattr(session, "skip", False) else ""


def pytest_collection_finish(session: pytest.Session) -> None:
    """The run trains the trials of the cases the session will run, no others: a node id, -k or -m that selects
    one case, or a mark that keeps a test from running (:func:`_skipped_by_mark`), leaves the other cases untrained
    (all of them trained before)."""
    state = session.config.stash[STATE_KEY]
    kept: set[str] = set()
    datasets: set[str] = set()  # of the xfbench cases selected, skipped ones included
    selected: set[str] = set()  # the backends of those cases
    any_selected = False  # an xfbench_case test selected, a skipped one included
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        handle = callspec.params.get("xfbench_case") if callspec is not None else None
        any_selected = any_selected or (callspec is not None and "xfbench_case" in callspec.params)
        datasets.update([handle.case.dataset] if isinstance(handle, CaseHandle) else [])
        selected.update([handle.backend] if isinstance(handle, CaseHandle) else [])
        if isinstance(handle, CaseHandle) and not _skipped_by_mark(item):
            kept.update(handle.trial_ids)
            state.case_groups.add(handle.trial_ids)
    state.deselected = {trial_id: trial for trial_id, trial in state.wanted.items() if trial_id not in kept}
    state.unselected_backends = {trial.backend for trial in state.wanted.values()} - selected
    state.wanted = {trial_id: trial for trial_id, trial in state.wanted.items() if trial_id in kept}
    if not any_selected and (state.collected_cases or _last_failed_narrowed(session.config)):
        state.left_out_by_selection = _pytest_selection(session.config)
    # a worker checks the session's options at its run (an exit there would crash it); its controller checked
    # --data-dir at the session's start (pytest_sessionstart), since a worker whose cases are all skipped never runs
    if _xdist_worker(session.config):
        return
    try:
        if datasets:  # every case skipped too: a mistyped --data-dir left them "data not found" (exit 0)
            _check_data_dir(session.config)
            _check_data_found(session.config, state, datasets)
        # a listing (--collect-only) contacts no cluster
        if state.wanted and not session.config.option.collectonly:
            state.execution = _session_checks(session.config, list(state.wanted.values()))
    except InputError as exc:  # before any test runs: `pytest tests suites` ran tests/ for 20 minutes first
        state.usage_error = True  # said by pytest alone: no "no case ran" section for --baseline before it
        raise pytest.UsageError(f"bad input, nothing was run: {_as_pytest_options(str(exc))}") from None


def _last_failed_narrowed(config: pytest.Config) -> bool:
    """Whether --lf collected only the files of the last failures (pytest's cache holds some): a session that ran a
    failed test of tests/ again collected no suite module, by the user's choice, not for a path that holds none."""
    last_failed = config.pluginmanager.get_plugin("lfplugin")
    return bool(config.getoption("lf", False) and getattr(last_failed, "lastfailed", None))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own (trylast) starts the workers
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest-xdist's controller collects nothing, and its workers check the session's options only when one runs a
    case: with every case skipped for its data (what a mistyped --data-dir does), none did, and the session passed
    (exit 0). The controller checks --data-dir here instead, as a usage error before any worker starts, whichever
    tests the workers go on to select: it cannot see which they are."""
    if session.config.pluginmanager.get_plugin("dsession") is None:  # not an xdist controller
        return
    try:
        _check_data_dir(session.config)
    except InputError as exc:
        raise pytest.UsageError(f"bad input, nothing was run: {_as_pytest_options(str(exc))}") from None


def _check_data_found(config: pytest.Config, state: SessionState, datasets: set[str]) -> None:
    """A --data-dir given, yet no data file of the selected cases found anywhere: an empty or unmounted folder, a
    cache not restored, the wrong folder named. Every case needing files was skipped and the session passed (exit 0)
    where `xfbench run --data-dir` exits 2. Without --data-dir, or with some case's files found, the cases whose
    data this machine lacks are skipped as before (a session over suites of several datasets)."""
    from harness.data.registry import found_in

    data_dir = config.getoption("xfbench_data_dir")
    missing = sorted(d for d in datasets if state.missing_data.get(d))
    if not data_dir or not missing or any(d in state.loaded and found_in(state.loaded[d]) for d in datasets):
        return
    raise InputError(
        f"Expected the data of the selected cases in --data-dir {data_dir} (or another data folder). Received: no "
        f"file of {', '.join(missing)} there or elsewhere. To fix, point --data-dir at the folder that holds them, "
        f"or leave --data-dir out to skip the cases whose data this machine lacks ({state.missing_data[missing[0]]})"
    )


def _check_data_dir(config: pytest.Config) -> None:
    """The CLI's check of --data-dir (and $XFBENCH_DATA): a folder. At collection a mistyped one only made the search
    go on to the other roots (digits, built in, loaded anyway), and each case's preflight failed later, after the
    session's other tests had run; a case whose data lay nowhere else was skipped as not found."""
    from harness.data.registry import check_data_dir

    check_data_dir(config.getoption("xfbench_data_dir"))


def _session_checks(config: pytest.Config, trials: list[TrialConfig]) -> Any:
    """The CLI's checks of what the whole session's run needs, before any case: the results folder, the baseline
    (there, and its table readable with rows where the session's machine says which one it is), the number of trials
    and the execution options (cluster, CPUs); --data-dir was checked before them (:func:`_check_data_dir`). The
    checked ExecutionOptions."""
    from harness.baselines import expected_machine_key, is_baseline_dir, is_run_dir, resolve
    from harness.plan import ExecutionOptions
    from harness.planner import check_trial_count
    from harness.preflight import check_execution
    from harness.suites import suites_max_concurrent
    from harness.user_files import read_run_rows, writable_results_dir

    results_dir = writable_results_dir(_results_dir(config))
    if config.getoption("xfbench_baseline"):  # named before the run, not after it
        key = expected_machine_key(
            config.getoption("xfbench_cpus"),
            config.getoption("xfbench_gpus") or 0.0,
            config.getoption("xfbench_ray_address"),
        )
        # which baseline of the name fits: decided here when the session's key is known, after the run otherwise
        reference = config.getoption("xfbench_baseline")
        found = resolve(reference, results_dir, key, choose=key is not None)
        # the run the gate will read (one named, or chosen by this machine's key): its table too; a damaged or
        # empty one was refused only after the session had trained
        if key is not None or is_run_dir(Path(reference).expanduser()) or not is_baseline_dir(found, results_dir):
            read_run_rows(found)
    check_trial_count(len(trials), "the session's suites")  # each was counted alone at collection
    options = ExecutionOptions(
        cpus_per_trial=config.getoption("xfbench_cpus"),
        gpus_per_trial=config.getoption("xfbench_gpus") or 0.0,
        address=config.getoption("xfbench_ray_address"),
        ship_data=config.getoption("xfbench_ship_data"),
        # as the CLI: a speed suite's own limit, a user's Suite's as well as a catalogue one's, unless given
        max_concurrent=suites_max_concurrent([_suite_of(config, name) for name in {t.suite for t in trials}]),
    ).updated(
        {
            "max_concurrent": config.getoption("xfbench_max_concurrent"),
            "max_failures": config.getoption("xfbench_max_failures"),
            "fresh_workers": config.getoption("xfbench_fresh_workers"),
        }
    )
    return check_execution(options)


def _suite_of(config: pytest.Config, name: str) -> Suite | str:
    return config.stash[STATE_KEY].suites.get(name, name)


def _results_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("xfbench_results_dir")).resolve()


def _skipped_by_mark(item: pytest.Item) -> bool:
    """Whether a mark keeps ``item`` from running: skip, skipif, or an xfail with run=False (without --runxfail),
    which pytest reports "[NOTRUN]" (pytest's own evaluation; a condition that fails to evaluate counts as not
    skipped: pytest reports that error at the test). Such a case trained all its trials before."""
    try:
        from _pytest.skipping import evaluate_skip_marks, evaluate_xfail_marks
    except ImportError:  # pytest's internals moved: the plain skip mark still says it
        return item.get_closest_marker("skip") is not None
    try:
        if evaluate_skip_marks(item) is not None:
            return True
        xfailed = evaluate_xfail_marks(item)
    except (Exception, pytest.fail.Exception):  # a bad condition fails through pytest.fail, a BaseException
        return False
    return xfailed is not None and not xfailed.run and not item.config.option.runxfail


def _data_missing(state: SessionState, dataset: str, data_dir: str | None) -> str | None:
    if dataset not in state.missing_data:
        from harness.data.locate import DataNotFoundError, PartialDatasetFolder
        from harness.data.registry import load_dataset, read_elsewhere

        try:
            state.loaded[dataset] = load_dataset(dataset, data_dir, download=False)
            state.missing_data[dataset] = ""
            note = read_elsewhere(data_dir, state.loaded[dataset])
            if note:  # the CLI's note on stderr; here a warning in pytest's summary, once per dataset
                warnings.warn(pytest.PytestWarning(note), stacklevel=2)
        except PartialDatasetFolder:  # a folder that lost a file: an error, as a truncated file is
            raise
        except DataNotFoundError as exc:  # only files this machine lacks; an embedded dataset failing is an error
            # its parts, the download advice the plugin's own (a bare DataNotFoundError has no parts: its text)
            parts = (exc.found, exc.fix, _download_advice(exc), exc.note)
            why = " ".join(p for p in parts if p) if exc.found else str(exc)
            state.missing_data[dataset] = f"data for {dataset} not found: {why}"
    return state.missing_data[dataset] or None


def _download_advice(missing: DataNotFoundError) -> str:
    """How a download gets the files, said for pytest: the plugin never downloads and has no --no-download to drop
    (the CLI's advice, ``missing.online``), while `xfbench run` downloads what a case of the dataset lacks into the
    user cache."""
    command = (
        f"`xfbench run --strategy scratch --model mlp --dataset {missing.dataset} --epochs 1 --backend torch` "
        "(xfbench run downloads missing files; this pytest plugin never does)"
    )
    if missing.cut_short:
        return (
            f"To fix, complete {missing.cache_folder} once online with {command}, or delete that folder to read a "
            "complete copy further on."
        )
    return f"Or, online, {command} downloads them into {missing.cache_folder}." if missing.downloadable else ""


@pytest.fixture
def xfbench_case(request: pytest.FixtureRequest) -> CaseHandle:
    handle: CaseHandle = request.param
    state = request.config.stash[STATE_KEY]
    if state.outcome is None and state.error is None:
        _run_all(request.config, state, request.getfixturevalue("tmp_path_factory"))
    errors = [state.case_errors[t] for t in handle.trial_ids if t in state.case_errors]
    if errors or state.error is not None:
        pytest.fail(f"[{handle.backend}] {handle.case.case_id}: {errors[0] if errors else state.error}", pytrace=False)
    if state.outcome.status == "interrupted":  # Ctrl-C, which the run caught to record what it had: stop as pytest does
        pytest.exit(
            f"the xfbench run was interrupted, so no case was checked; {_resume_hint(state.outcome)}",
            returncode=pytest.ExitCode.INTERRUPTED,
        )
    _decided_gate(request.config, state, interrupted=False)  # its regressions fail their tests (pytest_runtest_call)
    if _benchmarks(request.config) != "skip":  # the case still trains and checks its bars
        _benchmark_case(request, handle)
    return handle


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A case's test passes only if its (case, backend) did not regress against --baseline: once the test's own
    checks pass, the gate's finding fails it, with its figures. The gate failed the session alone (exit 1 beside
    "4 passed"): JUnit XML showed every test green, --lf had nothing to re-run."""
    result = yield
    callspec = getattr(item, "callspec", None)
    handle = callspec.params.get("xfbench_case") if callspec is not None else None
    if isinstance(handle, CaseHandle) and (regression := handle.regression()):
        pytest.fail(regression, pytrace=False)
    return result


def _resume_hint(outcome: Any) -> str:
    """How to finish a run that did not: summary.md's own command, with the run's --results-dir."""
    from harness.plan import resume_command

    return f"finish it with `{resume_command('run', Path(outcome.run_dir))}` or run the session again"


def _benchmark_case(request: pytest.FixtureRequest, handle: CaseHandle) -> None:
    """Record the case's steady-state epochs as its benchmark rounds. A case without any (one epoch per phase, whose
    warm-up epochs of tracing and compilation are not what a benchmark compares; deep_features, which trains no
    epoch), or with a trial that did not end ok, records none, and a warning says why: pytest-benchmark alone would
    only say that its fixture was not used, or nothing where the fixture is never asked for."""
    from harness.benchrecord import EpochRounds, epoch_rounds

    unfinished = _trials_not_ended_ok(handle)
    rounds = EpochRounds(why_none=unfinished) if unfinished else epoch_rounds(handle.rows())
    if not rounds.durations:
        if _benchmark_session_records(request.config):
            message = f"[{handle.backend}] {handle.case.case_id}: no benchmark recorded: {rounds.why_none}"
            warnings.warn(pytest.PytestWarning(message), stacklevel=1)
        return
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:  # pytest-benchmark not installed, or disabled with -p no:benchmark
        return
    _record_benchmark(benchmark, handle, rounds)


def _trials_not_ended_ok(handle: CaseHandle) -> str:
    """Why the case's epoch times are not the whole case's ('' when they are): the run stopped short, or a trial did
    not end ok. The fixture records before the test checks the case, and pytest-benchmark saves a failed test's
    benchmark as any other: the ok trials' epochs alone were saved by --benchmark-autosave and judged by
    --benchmark-compare-fail as the case's time, beside the test's failure."""
    from harness.summary import final_rows

    outcome = handle.state.outcome
    if outcome.status != "finished":
        return f"the run was {outcome.status}, so its epoch times are partial. Finish the run to benchmark the case."
    finals = final_rows(handle.rows())
    ended_ok = set(finals[finals["status"] == "ok"]["trial_id"])
    not_ok = [t for t in handle.trial_ids if t not in ended_ok]
    if not not_ok:
        return ""
    return (
        f"{len(not_ok)} of its {len(handle.trial_ids)} trials did not end ok ({', '.join(not_ok)}), so its epoch "
        "times would stand for a part of the case (the test's failure, or summary.md, says why). Fix the failing "
        "trials to benchmark it."
    )


def _benchmark_session_records(config: pytest.Config) -> bool:
    """Whether pytest-benchmark is present and records benchmarks in this session (not with --benchmark-disable,
    nor under xdist, where it switches itself off)."""
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not getattr(session, "disabled", False)


def _record_benchmark(benchmark: Any, handle: CaseHandle, rounds: EpochRounds) -> None:
    """A case of several phases records one of them (pytest-benchmark keeps one benchmark per test), named in its
    group and ``extra_info``: pooled, its rounds mixed two workloads (a frozen backbone's steps and a whole one's)."""
    from harness.benchrecord import accuracies_by_seed, record_epochs
    from harness.compare import final_accuracies
    from harness.summary import framework_versions, trained_rows

    rows = handle.rows()
    accs = final_accuracies(rows)
    # as summary.md times and names the case: the last attempt of each trial that ended ok (an earlier attempt's
    # warm-up, or a driver-written row of a dead worker, which holds no version, is not the case's)
    trained = trained_rows(rows)
    warmups = trained[trained["warmup"] == True]["epoch_time_s"]  # noqa: E712 (nullable booleans)
    group = f"{handle.suite_name}:{handle.case.case_id}"
    record_epochs(
        benchmark,
        list(rounds.durations),
        group=f"{group}:{rounds.phase}" if rounds.phase else group,
        extra_info={
            "backend": handle.backend,
            "suite": handle.suite_name,
            "case": handle.case.case_id,
            "timing_basis": "steady",
            "phase": rounds.phase,
            "phases": list(rounds.phases),
            "steady_epoch_time_s_median_per_phase": rounds.medians,
            "epochs_recorded": len(rounds.durations),
            "warmup_epoch_time_s": [float(t) for t in warmups],
            "test_acc_mean": float(accs.mean()) if len(accs) else None,
            "test_acc_by_seed": accuracies_by_seed(rows),  # seed -> accuracy, in the seeds' numeric order
            "samples_per_s_median": rounds.samples_per_s_median,
            "framework_version": framework_versions(trained).get(handle.backend, ""),
            "run_id": handle.state.outcome.run_id,
            # what a timing depends on beyond the code, which pytest-benchmark's compare cannot see otherwise
            "threads": _recorded(trained, "threads"),
            "device": _recorded(trained, "device"),
            "max_concurrent": getattr(handle.state.execution, "max_concurrent", None) or "auto",
        },
    )


def _recorded(rows: Any, column: str) -> str:
    """The values ``rows`` recorded in ``column``, as text: one, or several joined by ', ' ('' where none)."""
    if column not in rows:
        return ""
    from harness.summary import recorded_text

    return ", ".join(sorted({recorded_text(v) for v in rows[column].dropna()}))


def _run_all(config: pytest.Config, state: SessionState, temp: pytest.TempPathFactory) -> None:
    from harness.plan import RunPlan
    from harness.preflight import datasets_to_ship
    from harness.pytest_progress import terminal_progress
    from harness.runner import execute, new_run_id, scheduler_settings

    if not _xdist_groups_kept(config):
        state.error = (
            f"Expected --dist loadgroup with pytest-xdist: one worker runs every case of the session in one Ray run "
            f"(each case is in xdist group {XDIST_GROUP!r}); spread over the workers, each would run every trial. "
            f"Received: -n with --dist {_dist_given(config)}. To fix, add --dist loadgroup to the command."
        )
        state.run_refused = True  # bad input on the command line: exit 4, as the other usage errors
        return
    if _xdist_worker(config):
        # pytest's base temporary folder of the session, which xdist's workers share (theirs lie inside it).
        state.error = _claim_the_suites(config, temp.getbasetemp().parent)
        if state.error:
            return
    trials, results_dir = list(state.wanted.values()), _results_dir(config)
    try:  # the CLI's checks: whatever would fail inside a worker fails here, before Ray starts
        # first, as in the CLI: the preflight may convert models for minutes (checked at collection outside xdist)
        options = state.execution or _session_checks(config, trials)
    except InputError as exc:  # under pytest-xdist: the checks a session without it makes before any test runs
        state.error = f"bad input, nothing was run: {_as_pytest_options(str(exc))}"
        state.run_refused = True
        return
    trials = _preflight_each_case(config, state, trials, results_dir, options)
    if not trials:  # each case fails with its own reason, or the whole run's: bad input, nothing trained (exit 4)
        state.error = "bad input in every case, nothing was run"
        state.run_refused = True
        return
    settings = scheduler_settings(results_dir, options)
    try:
        scale = config.getoption("xfbench_scale")
        state.outcome = execute(
            RunPlan.of_trials(trials, label=f"pytest-{scale}", title="xfbench suites (pytest)"),
            results_dir=results_dir,
            run_id=new_run_id(f"pytest-{scale}", results_dir),
            settings=settings,
            command=["pytest", *config.invocation_params.args],
            progress=terminal_progress(config),
            data_provenance=state.data_provenance,
            weights_keys=state.weights_keys,
            # as the CLI ships them: on a cluster, nodes without the files get the arrays through Ray
            ship=datasets_to_ship(trials, options.ship_data, options.address, loaded=state.loaded),
            html_report=config.getoption("xfbench_report"),
        )
    except InputError as exc:  # no node fits a trial, the cluster went away: found by Ray, still the user's to fix
        state.error = f"bad input, nothing was run: {_as_pytest_options(str(exc))}"
        state.run_refused = True
    except Exception as exc:  # recorded once; every case then fails with this text instead of re-running
        why = _as_pytest_options(str(exc))  # NoNodeFits names the cluster's option
        state.error = f"the xfbench run failed before this case could be measured: {type(exc).__name__}: {why}"


def _preflight_each_case(
    config: pytest.Config, state: SessionState, trials: list[TrialConfig], results_dir: Path, options: Any
) -> list[TrialConfig]:
    """The trials whose case passed the CLI's preflight. All of them at once first, as the CLI checks a run (each
    weight file hashed and converted once, the options' use judged over the whole run); only where that fails is
    each (case, backend) checked on its own, so a bad case fails with its own reason and the others run (one bad
    case failed every case with its message). A failure no case shows alone fails them all with it."""
    from harness.preflight import local_environ, local_memory_bytes, preflight

    def checked(chosen: list[TrialConfig]) -> None:
        state.data_provenance.update(
            preflight(
                chosen,
                config.getoption("xfbench_data_dir"),
                download=False,
                loaded=state.loaded,
                cache_dir=results_dir / "_cache",
                memory_bytes=local_memory_bytes(options),
                environ=local_environ(options),
                weights_keys=state.weights_keys,
            )
        )

    try:
        checked(trials)
        return trials
    except InputError as exc:
        whole = f"bad input, nothing was run: {_as_suite_fields(str(exc))}"
    wanted = {t.trial_id for t in trials}
    for group in sorted(state.case_groups):
        case_trials = [state.wanted[t] for t in group if t in wanted]
        try:
            if case_trials:
                checked(case_trials)
        except InputError as exc:
            reason = f"bad input, this case was not run: {_as_suite_fields(str(exc))}"
            state.case_errors.update(dict.fromkeys(group, reason))
    kept = [t for t in trials if t.trial_id not in state.case_errors]
    if len(kept) == len(trials):
        state.case_errors.update(dict.fromkeys(wanted, whole))
        return []
    # Each case passed alone, which the checks across trials cannot judge (distinct results file names, one shared
    # backbone for a case's backends, the options' use over the run): the cases kept run together only if they pass
    # them together. Two variants that make one file name beside a bad case both trained, and one's rows were lost.
    try:
        if kept:
            checked(kept)
    except InputError as exc:
        together = f"bad input, nothing was run: {_as_suite_fields(str(exc))}"
        state.case_errors.update(dict.fromkeys((t.trial_id for t in kept), together))
        return []
    return kept


def _as_suite_fields(message: str) -> str:
    """Preflight speaks the CLI's language; a suite sets SuiteCase fields, and pytest has no such flags: each flag
    that sets a trial field is named by that field's path instead (--classes: task.classes)."""
    from harness.cli_options import OVERRIDE_OPTIONS

    paths = {option.flag: option.path for _, options in OVERRIDE_OPTIONS for option in options}
    # a case's own names, which the CLI's refusals give as flags: "did you mean --model mlp?" as the suite's field,
    # model='mlp', as the other names' refusals say theirs (errors.unknown_name)
    names = r"--(model|dataset|strategy|suite) ([\w:.+/-]+)(?=\?| or )"
    paths |= {"--model": "model", "--dataset": "dataset", "--strategy": "strategy", "--suite": "suite"}

    def as_fields(text: str) -> str:
        text = re.sub(names, r"\1='\2'", text)
        return re.sub(r"--[a-z][a-z0-9-]*", lambda m: paths.get(m.group(), m.group()), text)

    # a command in backticks (`xfbench run --strategy ...`, a fix to paste) keeps the CLI's flags
    parts = message.split("`")
    return _as_pytest_options("`".join(as_fields(part) if i % 2 == 0 else part for i, part in enumerate(parts)))


def _as_gate_options(text: str) -> str:
    """compare's threshold options, which its rules and notes name, as the plugin's gate spells them
    (--times-across-machines: --baseline-times-across-machines): pytest has no option by compare's name."""
    from harness.option_types import THRESHOLD_DEFAULTS

    names = "|".join(re.escape(name.replace("_", "-")) for name in THRESHOLD_DEFAULTS)
    return re.sub(rf"(?<![\w-])--({names})(?![\w-])", r"--baseline-\1", text)


def _as_pytest_options(message: str) -> str:
    """The CLI's session-wide flags under the names this plugin gives them (the rest are spelt alike)."""
    return re.sub(r"--address(?![a-z0-9-])", "--ray-address", message)


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _xdist_groups_kept(config: pytest.Config) -> bool:
    """Whether this process's cases arrive as pytest-xdist groups (--dist loadgroup) or one by one: true outside
    xdist. A worker sees the controller's choice only as the ``loadgroup`` option (xdist resets its --dist)."""
    return not _xdist_worker(config) or bool(config.getoption("loadgroup", False))


def _dist_given(config: pytest.Config) -> str:
    """The --dist of the controller's command line (a worker's own option is reset by xdist): "load" if none."""
    argv = [str(a) for a in config.workerinput["mainargv"]]  # type: ignore[attr-defined]
    for i, arg in enumerate(argv):
        if arg.startswith("--dist="):
            return arg.split("=", 1)[1]
        if arg == "--dist" and i + 1 < len(argv):
            return argv[i + 1]
    return "load"


def _claim_the_suites(config: pytest.Config, shared: Path) -> str | None:
    """None when this worker is the first of its session to run the suites; otherwise why it must not. The group
    mark alone does not guarantee it: with pytest 9.2, pytest-xdist 3.8's --dist loadgroup drops every
    ``xdist_group`` (pytest-xdist issue 1386) and spreads the cases, and each worker would run every trial. The claim
    lives in a folder only this session's workers share, and stays there: a worker that finishes early must not
    free the suites for another one."""
    claim = shared / "xfbench-suites.claim"
    me = config.workerinput["workerid"]  # type: ignore[attr-defined]
    try:
        with claim.open("x") as handle:
            handle.write(me)
        return None
    except FileExistsError:
        other = claim.read_text() or "another worker"
    return (
        f"Expected every xfbench case in one pytest-xdist worker (group {XDIST_GROUP!r}). Received: a case in {me} "
        f"while {other} runs the suites: pytest-xdist did not keep the group together (with pytest 9.2, pytest-xdist "
        "3.8's --dist loadgroup loses every xdist_group: pytest-xdist issue 1386). To fix, run the suites without -n, "
        "or schedule them as one unit with pytest_xdist_make_scheduler, as xfbench's tests/conftest.py does for "
        "`pytest tests suites -n N --dist loadgroup` in its checkout (docs/regressions.md, With pytest-xdist)."
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    reference = session.config.getoption("xfbench_baseline")
    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
    if state.outcome is not None:
        outcome, gate = state.outcome, _decided_gate(session.config, state, interrupted)
        state.reports.append(
            SessionReport(
                outcome.summary_markdown,
                str(outcome.run_dir),
                gate.report if gate else None,
                gate.usable if gate else True,
                gate.failing if gate else (),
                outcome.report_problem,
            )
        )
    if _xdist_worker(session.config):  # the controller prints it (xdist sends workeroutput after this hook)
        output = session.config.workeroutput  # type: ignore[attr-defined]
        output[WORKER_OUTPUT_KEY] = [r.as_message() for r in state.reports]
        output[WORKER_ERROR_KEY] = state.error
        output[WORKER_REFUSED_KEY] = state.run_refused
        output[WORKER_LEFT_OUT_KEY] = state.left_out_by_selection
        return
    if interrupted:  # pytest's own status (2) stands: the report says what the gate saw of the cases that ended
        return
    if state.run_refused:  # every case failed with the run's refusal, which says why: bad input, as the CLI's exit 2
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if session.config.option.collectonly or state.usage_error:  # a listing runs no case: no gate to fail; nor
        return  # does a session refused for bad input, whose one line says why (a --baseline that is not there)
    if reference and not state.reports and state.error is not None:  # the cases failed with it already
        state.baseline_unused = f"baseline not compared with {reference}: {state.error}"
    elif reference and not state.reports and state.left_out_by_selection:  # as a backend left out: said, not failed
        state.baseline_left_out = (
            f"baseline not compared with {reference}: this session's pytest selection "
            f"({state.left_out_by_selection}) left out every xfbench case, so the --baseline check compared nothing "
            "and does not fail on it. To compare them, run the session without that selection."
        )
    elif reference and not state.reports:  # none collected, or every one skipped: a gate that compared nothing fails
        state.baseline_unused = (
            f"baseline not usable: no xfbench case ran in this session (no suite module in the paths given, or "
            f"every case skipped), so nothing was compared with {reference}"
        )
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    for report in state.reports:
        if not report.baseline_usable:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        # each regressed case's test failed on it (pytest_runtest_call), so the session already exits 1; with every
        # test passed, the gate failed on what no test owns: a backend the baseline ran and the session did not, a
        # regressed case whose test was skipped at run time or xfailed
        elif report.regressions and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """pytest-xdist's controller: keep what the worker that ran the suites reported."""
    state = node.config.stash.get(STATE_KEY, None)
    output = getattr(node, "workeroutput", {})
    if state is not None:
        state.reports.extend(SessionReport.from_message(m) for m in output.get(WORKER_OUTPUT_KEY, []))
        state.error = state.error or output.get(WORKER_ERROR_KEY)
        state.run_refused = state.run_refused or bool(output.get(WORKER_REFUSED_KEY))
        # every worker collects every test and applies the same selection: any one of them says it
        state.left_out_by_selection = state.left_out_by_selection or output.get(WORKER_LEFT_OUT_KEY, "")


def _decided_gate(config: pytest.Config, state: SessionState, interrupted: bool) -> BaselineGate | None:
    """The --baseline gate of the session's run, decided once, when the run has its rows: at the first case's test,
    which the gate's finding may fail already, or at the session's end (a run interrupted, no case's test reached).
    None without --baseline or a run."""
    reference = config.getoption("xfbench_baseline")
    if state.gate is None and reference and state.outcome is not None:
        stopped = interrupted or state.outcome.status == "interrupted"
        state.gate = _against_baseline(config, state.outcome, reference, stopped, state.unselected_backends)
    return state.gate


def _against_baseline(
    config: pytest.Config, outcome: Any, reference: str, interrupted: bool, left_out: Collection[str] = ()
) -> BaselineGate:
    """The session's run against ``reference``. An interrupted session's gate compares the cases that ended and
    names those the base has that it never reached, as ``xfbench compare`` does. ``left_out``: the backends whose
    every test the session's pytest selection left out (SessionState.unselected_backends)."""
    from harness.baselines import (
        Environment,
        LoadedRun,
        environment_warnings,
        load_run,
        missing_backends,
        missing_backends_warning,
        run_state_warnings,
        unseen_cases_warning,
    )
    from harness.compare import Thresholds, compare_frames
    from harness.reporting import comparison_markdown, regression_figures

    try:
        base = load_run(reference, _results_dir(config), Environment.of(outcome.frame).machine_key)
    except InputError as exc:
        return BaselineGate(f"baseline not usable: {exc}", False)
    option = lambda name: config.getoption(f"xfbench_baseline_{name}")  # noqa: E731
    thresholds = Thresholds(
        option("time_threshold"),
        option("accuracy_threshold"),
        option("alpha"),
        times_across_machines=option("times_across_machines"),
    )
    rows = compare_frames(base.frame, outcome.frame, thresholds)
    if not any(r.in_both for r in rows) and interrupted:
        return BaselineGate(
            f"baseline not compared: the session was interrupted before any case that {reference} also ran had ended",
            False,
        )
    if not any(r.in_both for r in rows):  # a gate that compared nothing must not pass as "no regression"
        return BaselineGate(
            f"baseline not usable: {reference} ran none of this session's cases, so nothing was compared", False
        )
    session = LoadedRun(outcome.run_id, Path(outcome.run_dir), outcome.frame, Environment.of(outcome.frame))
    warnings = environment_warnings(base.environment, session.environment) + run_state_warnings(base, session)
    unseen = unseen_cases_warning(session, [(r.case, r.backend) for r in rows if r.only_in == "base"], False)
    # a backend the baseline ran and the session did not (--backend torch): the gate checked one framework; one whose
    # every test pytest's selection left out (--lf once a torch regression was fixed) the user chose not to run
    gate = "the session's --baseline check"  # it fails on a missing backend (failing below): said, as the CLI's
    selection = _pytest_selection(config) if left_out else ""
    missing = "" if interrupted else missing_backends_warning(session, rows, True, gate, left_out, selection)
    warnings += [w for w in (unseen, missing) if w]
    markdown = _as_gate_options(comparison_markdown(rows, reference, outcome.run_id, warnings, thresholds))
    gone = [b for b in missing_backends(rows) if b not in left_out] if missing else []
    failing = [f"{r.case} [{r.backend}]" for r in rows if r.regressed] + [f"[{b}] not run" for b in gone]
    # each with its figures, for its own test: the table is printed at the session's end, a CI's JUnit page never
    regressed = {
        (r.case, r.backend): f"regressed against --baseline {reference}: {_as_gate_options(regression_figures(r))}"
        for r in rows
        if r.regressed
    }
    return BaselineGate(markdown, True, tuple(failing), regressed)


def _pytest_selection(config: pytest.Config) -> str:
    """The session's own pytest options that select tests, as given (``-k 'torch', --lf``), for the gate's word on a
    backend they left out; the list of such options where none was given (another plugin deselected its tests)."""
    option = config.option
    given = [
        f"-k {shlex.quote(option.keyword)}" if getattr(option, "keyword", "") else "",
        f"-m {shlex.quote(option.markexpr)}" if getattr(option, "markexpr", "") else "",
        "--lf" if getattr(option, "lf", False) else "",
        "--sw" if getattr(option, "stepwise", False) else "",
        "--deselect" if getattr(option, "deselect", None) else "",
        "node ids" if any("::" in str(arg) for arg in config.args) else "",
    ]
    return ", ".join(g for g in given if g) or "-k, -m, --lf, --deselect or node ids"


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's, which raises on --benchmark-compare-fail
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.baseline_unused:
        terminalreporter.section("xfbench regressions against the baseline", red=True)
        terminalreporter.write_line(state.baseline_unused)
    if state is not None and state.baseline_left_out:
        terminalreporter.section("xfbench regressions against the baseline", yellow=True)
        terminalreporter.write_line(f"xfbench: warning: {state.baseline_left_out}", yellow=True)
    for report in state.reports if state is not None else []:
        terminalreporter.section("xfbench comparison")
        # the markdown's cells escape <, > and & for a markdown renderer; a terminal showed "p &lt; 0.01"
        terminalreporter.write_line(html.unescape(report.summary_markdown))
        terminalreporter.write_line(f"results: {report.run_dir}")
        if report.report_problem:  # printed on the first case's stderr, which pytest shows only if the case fails
            terminalreporter.write_line(f"xfbench: warning: {report.report_problem}", yellow=True)
        if report.baseline_report:
            terminalreporter.section("xfbench regressions against the baseline", red=bool(report.regressions))
            terminalreporter.write_line(html.unescape(report.baseline_report))
            if report.regressions:  # what fails the session: a backend not run is no "regression" in the table's count
                terminalreporter.write_line(
                    f"xfbench: the --baseline check fails this session: {'; '.join(report.regressions)}", red=True
                )
