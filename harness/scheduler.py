"""Ray Tune scheduling: the only harness module that imports Ray.

Every trial runs as its own Tune trial. Each experiment holds the trials of one backend only, and of one set of
process-wide settings (XLA, torch.compile, determinism, device: :func:`worker_groups`), so Tune can hand a
finished trial's worker process to the next trial (``reuse_actors``: warm workers, no second import of the
framework), each process still imports exactly one framework, and no trial runs in a process that an earlier
trial's XLA pools or determinism switch changed; ``fresh_workers`` starts a new process per trial instead, as
does a fractional GPU share for a backend that keeps a trial's GPU memory (:func:`warm_workers`). A
trial that raised or whose process died never hands its process on (Tune does not cache it); nor does one that
diverged: Tune has no per-trial veto on reuse, so its worker raises :class:`WorkerRetired` after the diverged
trial's rows are reported, and the driver records the trial as diverged (not failed, never retried).
Rows travel back to the driver through ``tune.report`` and are handed to the
caller's :class:`TrialEvents` as they arrive, stamped with the stage and the
attempt (retries under ``max_failures``).

Two kinds of experiment: a fixed list of trials (:func:`run_trials`) and a
search over one base trial (:func:`run_search`, one experiment per backend so
no scheduler ever compares one framework's trials with the other's).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness.backend import declarations
from harness.config import TrialConfig
from harness.data.registry import Dataset
from harness.errors import InputError
from harness.provenance import MachineInfo, usable_cpus
from harness.scoped_env import restored_environment, scoped_environment
from harness.search import (
    Choice,
    IntRange,
    LogUniform,
    SearchSpace,
    Uniform,
    drawn_point,
    optuna_missing,
    sample_points,
    search_trial,
    tpe_startup_samples,
)
from harness.tpe_search import TpeSearch
from harness.trial import RunInfo, failure_row, format_exception, run_trial

ROW_KEY = "xfbench_row_json"
REPLAYED_KEY = "xfbench_replayed"
# The columns a worker fills in for itself (its config_json holds the threads its CPUs gave it), which the driver
# copies onto the row it writes for that worker's death
WORKER_COLUMNS = (
    "host", "node", "cpu", "gpu", "threads", "config_json", "worker_pid", "worker_frameworks", "python_version",
    "framework_version", "framework_env",
)  # fmt: skip
EPOCH_INDEX = "epoch_index"  # epochs reported so far in the trial, across phases: ASHA's time axis


class TrialEvents(Protocol):
    def on_row(self, row: dict[str, Any]) -> None: ...

    def on_trial_end(self, trial_id: str) -> None: ...

    def on_replayed_row(self, row: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class SchedulerSettings:
    storage_dir: Path  # absolute: Tune's trials change directory
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    max_concurrent: int | None = None
    max_failures: int = 0  # retries of a trial that raised or whose worker died
    fresh_workers: bool = False  # a new worker process per trial instead of reusing the backend's warm ones
    ship_data: str = "auto"  # --ship-data, what harness.preflight.datasets_to_ship decides by
    verbose: bool = False

    def __post_init__(self) -> None:
        if not self.storage_dir.is_absolute():
            raise ValueError(f"Expected an absolute storage_dir. Received: {self.storage_dir}.")
        if self.max_failures < 0:
            raise ValueError(f"Expected max_failures >= 0. Received: {self.max_failures}.")


@dataclass(frozen=True)
class AshaSettings:
    grace_period: int = 1  # epochs every trial gets before it can be stopped
    reduction_factor: int = 3  # keep the best 1/reduction_factor at each rung

    def __post_init__(self) -> None:
        for flag, value, least in (
            ("--grace-period", self.grace_period, 1),
            ("--reduction-factor", self.reduction_factor, 2),
        ):
            if value < least:
                raise InputError(
                    f"Expected {flag} >= {least}. Received: {flag} {value}. To fix, give a value of {least} or more."
                )


@dataclass(frozen=True)
class SearchExperiment:
    """One backend's search: samples of ``space`` applied to ``base``."""

    base: TrialConfig
    space: SearchSpace
    algorithm: str = "random"  # random | grid | optuna
    sampling_seed: int = 0
    num_samples: int = 8  # random/optuna: trials in all; grid: samples per grid point
    metric: str = "val_acc"
    asha: AshaSettings | None = None
    tpe_startup: int | None = None  # optuna: random samples before TPE models them (None: tpe_startup_samples)

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"


@dataclass(frozen=True)
class Delivery:
    """What travels to the workers through Ray's object store instead of each node's disk (:func:`delivery_of`)."""

    # Each shipped dataset's ObjectRef, by name: put once per Ray session. The Datasets themselves in here were put
    # again with the delivery by every experiment's tune.with_parameters, and Tune holds each such object until Ray
    # shuts down: a copy of every dataset per experiment (CIFAR-10, 0.7 GB each, four times in a transfer run).
    datasets: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # finished trials' rows, by trial id


def delivery_of(datasets: Mapping[str, Dataset], replay: dict[str, list[dict[str, Any]]] | None = None) -> Delivery:
    """The run's delivery, inside its Ray session: each dataset put in the object store once, whatever the number
    of experiments; a trial fetches its own dataset's alone."""
    import ray

    return Delivery({name: ray.put(dataset) for name, dataset in datasets.items()}, replay or {})


RETIRED_MARK = "xfbench worker retired"


class WorkerRetired(RuntimeError):
    """Raised by a worker after a diverged trial has reported every row. Tune caches the process of any trial that
    ends without an error for the next trial and offers no veto, so ending with this error is how a diverged
    trial's process is kept from the next trial. The driver recognises it: the trial stays ``diverged``, is not
    recorded as failed and is not retried."""


def _asha_letting_diverged_trials_end() -> type:
    """ASHA that lets a trial whose row diverged (or failed) go on: stopped there (at a rung, or at its last epoch,
    where ASHA stops every trial), its worker sat in that report until Tune handed the process to the next trial
    (Tune caches the actor of a trial it stops), so WorkerRetired never ran and the diverged trial's process was
    reused; a failed one's error would never reach Tune, which would neither retry it nor retire its process."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class LetDivergedTrialsEnd(ASHAScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
            decision = super().on_trial_result(tune_controller, trial, result)
            ending = json.loads(result.get(ROW_KEY, "{}")).get("status") in ("diverged", "failed")
            return TrialScheduler.CONTINUE if ending else decision

    return LetDivergedTrialsEnd


# What the schedulers rank a diverged epoch by: last. Its latest finite loss was an earlier epoch's, better than where
# the trial went, so under --metric val_loss a sample that diverged outranked one that merely got worse at that rung,
# and could stop it. Not infinity: numpy's percentile of a rung holding two (inf - inf) is NaN, and nothing stops.
DIVERGED_PROGRESS = {"val_acc": 0.0, "val_loss": 1e30}


def fresh_progress() -> dict[str, float]:
    """A trial's progress before its first row (:func:`advance`)."""
    return {EPOCH_INDEX: 0, "val_acc": 0.0, "val_loss": float("inf")}


def advance(progress: dict[str, float], row: dict[str, Any]) -> None:
    """``progress`` (what every result of a trial tells its scheduler and searcher: the epochs so far, a number for
    each metric) after ``row``: the latest finite value of each metric, the worst for a diverged epoch."""
    if row.get("epoch") is not None and row.get("status") != "failed":
        progress[EPOCH_INDEX] += 1
    if row.get("status") == "diverged":
        progress.update(DIVERGED_PROGRESS)
        return
    for metric in ("val_acc", "val_loss"):  # schedulers need a number in every result: keep the latest finite one
        value = row.get(metric)
        if isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
            progress[metric] = float(value)


def _trial_config(tune_trial: Any) -> TrialConfig:
    """Driver side: the TrialConfig a Tune trial runs."""
    return _config_of(tune_trial.config)


def _config_of(config: dict[str, Any]) -> TrialConfig:
    """The TrialConfig of a Tune trial's config, in the driver and in the worker alike: a run's trial as it is,
    a search's base with the sampled point applied, the sample number read from the config's own field."""
    job = config["job"]
    if "trial" in job:
        return TrialConfig.from_dict(job["trial"])
    point = job["point"] if "point" in job else config.get("point", {})  # drawn up front, or Optuna's suggestion
    return search_trial(TrialConfig.from_dict(job["base"]), point, int(job["sample"]))


def _trainable(config: dict[str, Any], delivery: Delivery | None = None) -> None:
    import ray
    from ray import tune

    delivery = delivery or Delivery()
    trial = _config_of(config)
    # Threads follow the CPUs Ray granted this trial, so concurrent trials never oversubscribe the cores.
    granted = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if granted:
        trial = replace(trial, runtime=replace(trial.runtime, threads=max(1, int(granted))))
    run = RunInfo(**config["run"])
    node = ray.get_runtime_context().get_node_id()
    progress = fresh_progress()
    diverged = [False]  # set by report(): a diverged trial retires its worker process

    def report(row: dict[str, Any], replayed: bool = False) -> None:
        diverged[0] = diverged[0] or (row.get("status") == "diverged" and not replayed)
        advance(progress, row)
        tune.report({ROW_KEY: json.dumps(row), REPLAYED_KEY: replayed, **progress})

    recorded = replayable_rows(trial, delivery.replay)
    if recorded:  # finished before an interruption: its searcher and scheduler see it again, it is not re-run
        for row in recorded:
            report(row, replayed=True)
        if any(row.get("status") == "diverged" for row in recorded):  # ends as it did live: an error to Optuna
            raise WorkerRetired(f"{RETIRED_MARK}: trial {trial.trial_id} diverged (replayed)")
        return
    try:
        _apply_fault(trial, 0)
        run_trial(
            trial,
            run,
            lambda row: _after_row(trial, report, {**row, "node": node}),
            dataset=ray.get(delivery.datasets[trial.dataset]) if trial.dataset in delivery.datasets else None,
        )
    except Exception as exc:
        # Record the error text as a row before Tune marks the trial failed.
        report({**failure_row(trial, run, format_exception(exc)), "node": node})
        raise
    if diverged[0]:
        raise WorkerRetired(f"{RETIRED_MARK}: trial {trial.trial_id} diverged; its worker process is not reused")


def replayable_rows(trial: TrialConfig, replay: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows this very trial recorded before an interruption, or none if it must run. The recorded configuration
    is read back through :meth:`TrialConfig.from_dict` and compared as a configuration, not as JSON text: rows
    written before a field was added or renamed read as what they ran, as everywhere else, so a search resumed
    across such a change still replays its finished samples instead of re-running them."""
    recorded = replay.get(trial.trial_id, [])
    if not recorded:
        return []
    ran = TrialConfig.from_dict(json.loads(recorded[0]["config_json"]))
    # The threads follow the CPUs Ray grants (_trainable), which a resume's --cpus-per-trial may change: the sample
    # is the same, and it ran with the threads its rows record. Compared with them, it trained again, its rows twice.
    if replace(ran, runtime=replace(ran.runtime, threads=trial.runtime.threads)) == trial:
        return recorded
    return []


def _after_row(trial: TrialConfig, report: Any, row: dict[str, Any]) -> None:
    report(row)
    if row.get("epoch") is not None:
        _apply_fault(trial, row["epoch"])


def _apply_fault(trial: TrialConfig, epoch: int) -> None:
    """Test-only fault injection (``RuntimeOptions.inject_fault``): raise, or SIGKILL this worker, at the trial's
    start (``epoch`` 0) or after epoch ``epoch``'s row."""
    fault = trial.runtime.inject_fault
    if fault is None or fault.epoch != epoch or fault.seed not in (None, trial.seed):
        return
    if fault.action == "raise-once":
        marker = Path(fault.marker)
        if marker.exists():
            return
        marker.touch()
    if fault.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"injected fault {fault.action!r} at epoch {epoch} ({'start' if epoch == 0 else 'its end'})")


_NO_ERROR_TEXT = "trial process died without reporting an error"
_ERROR_SUMMARY_CHARS = 400
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _tune_error_text(trial: Any) -> str:
    """The error text Tune stored for the trial: its local error.txt, written before the failure callbacks run (the
    copy get_error() reads in the storage directory is synced later, so a first death would find it missing); empty
    when there is none or it cannot be read, so a recording problem never hides the death itself."""
    try:
        local = trial.error_file
        return (
            Path(local).read_text(errors="replace") if local and Path(local).is_file() else str(trial.get_error() or "")
        )
    except Exception:  # noqa: BLE001 - storage trouble must not stop the failure row
        return ""


def tune_error_summary(text: str) -> str:
    """The meaningful line(s) of the last failure in Tune's error text: a traceback's exception line, or the
    unindented sentences of Ray's message (a dead actor's "died unexpectedly ... Worker exit detail: ..."), without
    its indented details (actor id, pid) and cut to a few hundred characters: a row's error, not the page."""
    failures = re.split(r"(?m)^Failure # \d+ \(occurred at [^)]*\)\n", _ANSI_ESCAPE.sub("", text))
    lines = [line.rstrip() for line in failures[-1].splitlines() if line.strip()]
    if not lines:
        return _NO_ERROR_TEXT
    if any(line.lstrip().startswith('File "') for line in lines):  # a traceback: its last line names the error
        summary = lines[-1].strip()
    else:
        summary = " ".join(line.strip() for line in lines if not line[0].isspace()) or _NO_ERROR_TEXT
    if len(summary) > _ERROR_SUMMARY_CHARS:
        summary = summary[: _ERROR_SUMMARY_CHARS - 1].rstrip() + "…"
    return summary


def _death_row(trial: Any, config: TrialConfig, run: RunInfo) -> dict[str, Any]:
    """The failed row the driver writes for a trial whose worker died without one, from Tune's error text."""
    summary = tune_error_summary(_tune_error_text(trial))
    return failure_row(config, run, summary, machine=MachineInfo.unknown())  # the driver's machine is not the worker's


class _Delivering:
    """What a Tune callback sends the driver's sinks goes through ``_deliver``: an exception there (a part that
    cannot be written, a full disk) raised into Tune's stop_trial, which blamed the trial that was ending (a failed
    row over its ok part, or a retrain). The first is kept and raised at Tune's next step, out of its loop; _fit
    raises it as the run's fault."""

    sinks: TrialEvents | None
    fault: DriverFault | None = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks into the experiment state
        return {**self.__dict__, "sinks": None, "fault": None}

    def _events(self) -> TrialEvents:
        assert self.sinks is not None, "callback restored without its event sink"
        return self.sinks

    def _deliver(self, trial_id: str, send: Callable[[TrialEvents], None]) -> None:
        try:
            send(self._events())
        except Exception as exc:  # noqa: BLE001 - any sink fault: none is the trial's
            if self.fault is None:
                self.fault = DriverFault(trial_id, exc)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.fault is not None:
            raise self.fault


def _make_callback(
    events: TrialEvents, run: RunInfo, stage: str, replayed: frozenset[str] = frozenset()
) -> _Delivering:
    from ray import tune

    class RowForwarder(_Delivering, tune.Callback):
        """Forwards each reported row to the driver's sinks (held as instance state), with stage and attempt."""

        def __init__(self, sinks: TrialEvents) -> None:
            self.sinks: TrialEvents | None = sinks
            self.ended_with_row: set[tuple[str, int]] = set()
            # kept by a resume (Delivery.replay): an error in a replay is no death (its row replaced the kept rows)
            self.replayed: set[str] = set(replayed)
            self.attempts: dict[str, int] = {}
            # (trial, attempt) -> the worker's columns of the last row it sent: a row for its death says the same
            self.workers: dict[tuple[str, int], dict[str, Any]] = {}

        def _record_death(self, trial: Any, config: TrialConfig) -> None:
            """A worker that died (SIGKILL, lost node) sent no failure row: record one from Tune's error."""
            attempt = self.attempts.get(config.trial_id, 0)
            if (config.trial_id, attempt) in self.ended_with_row or config.trial_id in self.replayed:
                return
            worker = self.workers.pop((config.trial_id, attempt), {})  # empty: it died before it sent a row
            row = {**_death_row(trial, config, run), **worker, "stage": stage, "attempt": attempt}
            self._deliver(config.trial_id, lambda sinks: sinks.on_row(row))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            row = json.loads(result[ROW_KEY])
            attempt = self.attempts.get(row["trial_id"], 0)
            if row["status"] in ("failed", "diverged"):
                self.ended_with_row.add((row["trial_id"], attempt))
            if row["status"] == "diverged":  # its worker ends it with WorkerRetired: a divergence would only repeat
                trial.max_failures = 0  # Tune reads the retry budget from this attribute when the error arrives
            if result.get(REPLAYED_KEY):  # written in the session that ran it: shown, not written again
                self.replayed.add(row["trial_id"])
                full = {**row, "stage": stage, "attempt": attempt}
                return self._deliver(row["trial_id"], lambda sinks: sinks.on_replayed_row(full))
            self.workers[(row["trial_id"], attempt)] = {k: row[k] for k in WORKER_COLUMNS if row.get(k) is not None}
            self._deliver(row["trial_id"], lambda sinks: sinks.on_row({**row, "stage": stage, "attempt": attempt}))

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            config = _trial_config(trial)
            self._record_death(trial, config)
            self.attempts[config.trial_id] = self.attempts.get(config.trial_id, 0) + 1

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            # a replayed sample ends too (the progress counts it; its rows, written already, are not pending)
            trial_id = _trial_config(trial).trial_id
            self.workers.pop((trial_id, self.attempts.get(trial_id, 0)), None)
            self._deliver(trial_id, lambda sinks: sinks.on_trial_end(trial_id))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            config = _trial_config(trial)
            self._record_death(trial, config)
            self._deliver(
                config.trial_id, lambda sinks: sinks.on_trial_end(config.trial_id)
            )  # a replayed diverged sample's rows are written already

    return RowForwarder(events)


def _stop_on_ctrl_c(ctrl_c: threading.Event) -> Any:
    """A Tune callback that ends the experiment at the next step of Tune's loop once Ctrl-C was noted."""
    from ray import tune

    class StopOnCtrlC(tune.Callback):
        def __init__(self, noted: threading.Event | None) -> None:
            self.noted = noted

        def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks; an Event does not pickle
            return {"noted": None}

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            if self.noted is not None and self.noted.is_set():  # its KeyboardInterrupt was lost: stop here
                raise KeyboardInterrupt

    return StopOnCtrlC(ctrl_c)


@contextlib.contextmanager
def _ctrl_c_noted() -> Iterator[threading.Event]:
    """Ctrl-C during an experiment, raised as KeyboardInterrupt and noted: one raised while the main thread runs a
    finalizer (Ray's object references have them) is printed and lost, and the experiment would go on to its end,
    recorded finished. The note stops it at the next step of Tune's loop (_stop_on_ctrl_c's callback), and _fit
    reports it. SIGTERM (`timeout`, `kill`, a cancelled CI job) is taken as Ctrl-C: it killed the driver mid-run,
    leaving run.json "running" and no summary. An ignored signal (a background job's Ctrl-C) stays ignored."""
    noted = threading.Event()

    def on_ctrl_c(signum: int, frame: Any) -> None:
        noted.set()
        raise KeyboardInterrupt

    with _signals_handled((signal.SIGINT, signal.SIGTERM), on_ctrl_c):
        yield noted


@contextlib.contextmanager
def signals_held(doing: str = "writing the run's results first") -> Iterator[list[int]]:
    """The first Ctrl-C or SIGTERM in the block is noted in the list it gives, and said (what xfbench is ``doing``),
    not raised: the run's files (results table, summary.md, run.json's status) are written whole; Ray starts or
    shuts down whole (ray_session). One that reached the run as its last trial
    ended escaped as a bare "interrupted", run.json left "running" with no summary.md, though every trial had ended.
    A second one raises KeyboardInterrupt: reading a large run's parts and its statistics can take minutes."""
    held: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        held.append(signum)
        if len(held) > 1:
            raise KeyboardInterrupt
        print(f"xfbench: {doing}; Ctrl-C again stops now", file=sys.stderr, flush=True)

    with _signals_handled((signal.SIGINT, signal.SIGTERM), on_signal):
        yield held


@contextlib.contextmanager
def _signals_handled(signals: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    """``handler`` for each of ``signals`` in the block, then the handler each had; in the main thread only (Python
    handles signals there), and not for a signal that is ignored (a background job's Ctrl-C) or handled outside
    Python. SIGTERM's handler is Ray's once ray.init has run: it exits at once, as SIG_DFL would."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}
    taken = [sig for sig, before in previous.items() if before not in (signal.SIG_IGN, None)]
    for sig in taken:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig in taken:
            signal.signal(sig, previous[sig])


class RunInterrupted(RuntimeError):
    """The experiment stopped before every trial ended (Ctrl-C): the run can be resumed."""


class DriverFault(RuntimeError):
    """The driver could not take in what a trial sent (its part not written: a full disk, an I/O error): the run
    stops as the driver's fault, resumable, and no trial is blamed (the trial's rows not written run it again)."""

    def __init__(self, trial_id: str, cause: BaseException) -> None:
        super().__init__(
            f"the driver could not record trial {trial_id}'s results ({type(cause).__name__}: {cause}). No trial "
            "failed for it; the trials whose results are not in parts/ run again. To fix, clear the cause (free "
            "disk space) and resume the run (--resume)."
        )
        self.__cause__ = cause


@contextlib.contextmanager
def _tune_environment(verbose: bool) -> Iterator[None]:
    """Scoped env for Tune in the driver: no CSV/JSON/TensorBoard loggers, quiet unless verbose, and Ctrl-C left to
    Python. Tune's own SIGINT handler ends the experiment "gracefully": fit() returns with the cut trials marked
    terminated, so the run looked finished (exit 0, trials cut at epoch 12 of 60 counted ok, nothing to resume);
    as a KeyboardInterrupt the run is recorded interrupted and --resume reruns the cut trials."""
    wanted = {
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
        "TUNE_DISABLE_SIGINT_HANDLER": "1",
    }
    if not verbose:
        wanted["RAY_AIR_NEW_OUTPUT"] = "0"
    # Tune logs every trial failure with its traceback; the run records the error text and the CLI prints one line.
    # Optuna announces each study it creates ("A new study created in memory") at INFO.
    quiet = {"ray.tune": logging.CRITICAL, "optuna": logging.WARNING}
    loggers = {logging.getLogger(name): level for name, level in quiet.items()}
    saved = {logger: logger.level for logger in loggers}
    if not verbose:
        for logger, level in loggers.items():
            logger.setLevel(level)
    try:
        with scoped_environment(wanted):
            yield
    finally:
        for logger, level in saved.items():
            logger.setLevel(level)


# What every trial worker runs with: TensorFlow's C++ start-up notes and Python's deprecation warnings kept out of
# the workers' logs.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::DeprecationWarning"}


# What ray.init sets in the driver's own environment and leaves set after ray.shutdown: a local start turns token
# authentication on (RAY_AUTH_MODE=token, Ray 2.60), so a later --address join from the same process (the pytest
# plugin's session, a Python caller of runner.execute) used the local run's token, told "this process's token".
SET_BY_RAY_INIT = ("RAY_AUTH_MODE",)


def warn_on_stderr(text: str) -> None:
    print(text, file=sys.stderr)


@contextlib.contextmanager
def ray_session(
    settings: SchedulerSettings, py_modules: tuple[Path, ...] = (), warn: Callable[[str], None] = warn_on_stderr
) -> Iterator[None]:
    """Ray for the stages of one run: joins ``settings.address`` or starts a local instance on 127.0.0.1
    without a dashboard; shuts down on exit (Ctrl-C included) only what it started. ``py_modules`` (the files and
    packages of users' ``python:`` models) go to every node's workers through the job's runtime environment; a Ray
    the caller already started keeps the environment it was started with. ``warn``: where a warning goes (the
    run's progress: under pytest, past its output capture, where stderr went unseen)."""
    import ray

    if ray.is_initialized():
        yield
        return
    init_args: dict[str, Any] = dict(
        include_dashboard=False,
        log_to_driver=settings.verbose,
        configure_logging=True,
        logging_level=logging.INFO if settings.verbose else logging.ERROR,
    )
    sigterm_before = signal.getsignal(signal.SIGTERM)  # ray.init puts its own in, an exit at once, and leaves it
    with _token_mode_as_before():
        try:
            with signals_held("Ray is starting; stopping once it has started") as noted:
                shipped = {"py_modules": [str(path) for path in py_modules]} if py_modules else {}
                _init(settings, init_args, shipped, warn)
        except (KeyboardInterrupt, SystemExit):  # a second Ctrl-C while Ray started, or a SIGTERM once ray.init put
            ray.shutdown()  # in its handler (a bare exit): what it started by then is ended too, as far as Ray knows
            raise KeyboardInterrupt from None
        if noted:  # stopped while Ray started: an interrupted ray.init left its agents running (180 MB, for good)
            _shut_down(sigterm_before)
            raise KeyboardInterrupt
        try:
            with _sigterm_as_ctrl_c():
                yield
        finally:
            _shut_down(sigterm_before)


@contextlib.contextmanager
def _token_mode_as_before() -> Iterator[None]:
    """The driver's token authentication as before the session: Ray's local start sets RAY_AUTH_MODE=token and
    also keeps token mode, and the token it made, inside the process (its C++ config and token cache), which a later
    join reads rather than the variable; so the variable is put back, then Ray made to read its settings again
    (what Ray's own tests do between sessions)."""
    try:
        with restored_environment(SET_BY_RAY_INIT):
            yield
    finally:
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # Cython, no stubs

        Config.initialize("")  # the config first: a worker thread still draining would reload the token under it
        AuthenticationTokenLoader.instance().reset_cache()


def _shut_down(sigterm_before: Any) -> None:
    """ray.shutdown, a Ctrl-C or SIGTERM meanwhile noted, not raised (the run's files are written by then: one
    during the shutdown of a finished run ended it as interrupted, exit 130 and no table); then SIGTERM's handler
    as it was before ray.init, whose own (an exit at once) silenced a later SIGTERM (exit 15, nothing said)."""
    import ray

    with signals_held("Ray is shutting down"):
        ray.shutdown()
    if threading.current_thread() is threading.main_thread() and sigterm_before is not None:
        signal.signal(signal.SIGTERM, sigterm_before)


def unjoinable(address: str, exc: Exception, environ: Mapping[str, str]) -> str:
    """Why joining the cluster at ``address`` failed, and what to do. Without RAY_AUTH_MODE=token, Ray joins an
    explicit address without a token, and a cluster that wants one refuses every call (its log says
    "Unauthenticated"), which reaches here as a plain connection failure: told only to start the cluster, the user
    could not see that. Ray 2.60 turns token authentication on wherever a token exists: a local run writes
    ~/.ray/auth_token, and a later `ray start --head` on that machine uses it. Another gRPC service on the port (Ray
    Client's, the dashboard agent's) passes the reachability preflight too and fails here the same way."""
    said = (
        f"Expected a Ray cluster at --address {address}. Received: Ray could not join it: {str(exc).rstrip('.')}. "
        "To fix, start it (`ray start --head` on the head node), check the address and the port (the head's GCS port, "
        '6379 unless `ray start --port` said otherwise; Ray\'s log says "Method not found" where the port is another '
        "service's, such as Ray Client's 10001 given without ray://), or leave --address out to run on this machine."
    )
    if environ.get("RAY_AUTH_MODE", "").lower() == "token":  # Ray 2.60 refuses a wrong token as a failed connection
        return (
            f"{said} If it is running, it may have refused this process's token (Ray's log then says "
            '"InvalidAuthToken"): use the head node\'s token (copy its ~/.ray/auth_token to this machine, or set '
            "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to it)."
        )
    if address == "auto":  # Ray turns token authentication on by itself for `auto` where a token exists
        return said
    return (
        f'{said} If it is running, it may use token authentication (Ray\'s log then says "Unauthenticated"; Ray '
        "2.60 turns it on where ~/.ray/auth_token exists, which a local run writes): join with RAY_AUTH_MODE=token "
        "and the head node's token (its ~/.ray/auth_token, or RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH), as "
        "docs/scheduling.md says."
    )


def ignored_ray_address(environ: Mapping[str, str]) -> str | None:
    """The warning for a local run started where RAY_ADDRESS names a cluster (`ray job submit` sets it for the job's
    driver, and Ray's own scripts join it): xfbench joins only --address, and ran on this machine without a word."""
    address = environ.get("RAY_ADDRESS", "").strip()
    if not address or address == "local":  # Ray's own word for a local instance: what the run starts anyway
        return None
    said = (
        f"xfbench: warning: RAY_ADDRESS={address} is set, but xfbench joins a Ray cluster only when given its address "
        "(xfbench's --address, the pytest plugin's --ray-address): this run starts its own Ray on this machine."
    )
    if "://" in address:  # a dashboard's http:// (Ray Jobs') or a Ray Client's ray://, which --address refuses
        return f"{said} To run on that cluster, give the head node's HOST:PORT (its GCS, port 6379 by default)."
    return f"{said} To run on that cluster, give {address}."


def _init(
    settings: SchedulerSettings, init_args: dict[str, Any], shipped: dict[str, Any], warn: Callable[[str], None]
) -> None:
    """ray.init: joins ``settings.address``, or starts a local instance (``shipped``: the job's py_modules)."""
    import ray

    if settings.address:
        # An instance at --address (a cluster, or one `ray start` left running) has raylets this process did not
        # start: the variables travel in the job's runtime environment.
        try:
            ray.init(address=settings.address, runtime_env={"env_vars": WORKER_ENV, **shipped}, **init_args)
        except ConnectionError as exc:  # `auto` with no cluster, one whose GCS never answered, or refused us
            raise ClusterUnreachable(unjoinable(settings.address, exc, os.environ)) from None
        except ray.exceptions.AuthenticationError as exc:  # token authentication: no token here, or another one
            raise ClusterUnreachable(
                f"Expected this process to hold the token of the Ray cluster at --address {settings.address}. "
                f"Received: Ray refused it: {str(exc).strip().split('. ')[0].rstrip('.')}. To fix, copy the head "
                "node's ~/.ray/auth_token to this machine (or set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH), with "
                "RAY_AUTH_MODE=token, as docs/scheduling.md says."
            ) from None
    else:
        if (ignored := ignored_ray_address(os.environ)) is not None:
            warn(ignored)
        # address="local": always a fresh instance of our own, never a cluster some `ray start` left running. Its
        # workers are children of the raylet it starts and inherit that environment, so WORKER_ENV is set while it
        # starts instead of in a runtime environment: a job's runtime environment, even one of variables only, kept
        # Ray from handing out its prestarted workers (1.9 s to a first task instead of 0.5 s).
        with scoped_environment(WORKER_ENV):
            ray.init(
                address="local",
                num_cpus=usable_cpus(),
                _node_ip_address="127.0.0.1",
                runtime_env=shipped or None,
                **init_args,
            )


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a cancelled CI job) raised as KeyboardInterrupt while the run's Ray session is
    open, so the run ends interrupted as on Ctrl-C, between experiments too (_ctrl_c_noted takes both signals during
    one). ray.init installs a handler that exits at once: run.json was left "running", with no summary.md."""

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with _signals_handled((signal.SIGTERM,), on_sigterm):
        yield


class ClusterUnreachable(InputError):
    """Ray could not join the cluster at --address: bad input, said in one line, not a traceback."""


class NoNodeFits(InputError):
    """No node of a local Ray offers what one trial asks for: Tune would wait for one forever, silently."""


def check_a_node_fits(
    settings: SchedulerSettings, resumed: bool = False, warn: Callable[[str], None] = warn_on_stderr
) -> None:
    """Some live node must offer a trial's CPUs and GPUs. Locally none ever will (NoNodeFits); a cluster may still
    grow one (an autoscaler adds nodes for pending trials), so there the user is told what the trials wait for.
    ``resumed``: a resume keeps the recorded device, so the fix is not to lower --gpus-per-trial to 0."""
    nodes = cluster_nodes()
    if any(n["cpus"] >= settings.cpus_per_trial and n["gpus"] >= settings.gpus_per_trial for n in nodes):
        return
    wanted = f"{settings.cpus_per_trial:g} CPU(s) and {settings.gpus_per_trial:g} GPU(s)"
    offered = "; ".join(f"{n['address']}: {n['cpus']:g} CPUs, {n['gpus']:g} GPUs" for n in nodes) or "no live node"
    if settings.address:
        warn(
            f"xfbench: warning: no node of the cluster at {settings.address} offers {wanted} for a trial yet "
            f"({offered}); the trials wait until one does: an autoscaler may add it, and without one they never "
            "start (Ctrl-C stops the run; a resume with a --cpus-per-trial and --gpus-per-trial that a node offers "
            "finishes it: `xfbench run --resume RUN_ID`, or `xfbench tune --resume RUN_ID` for a tune, a pytest "
            "session's run too)."
        )
        return
    each = "each trial of the resumed run" if resumed else "each trial"
    raise NoNodeFits(
        f"Expected this machine to offer {wanted} for {each} (--cpus-per-trial, --gpus-per-trial). Received: "
        f"Ray finds {offered}. To fix, {_no_node_fix(settings, nodes, resumed)}"
    )


def _no_node_fix(settings: SchedulerSettings, nodes: list[dict[str, Any]], resumed: bool) -> str:
    if not resumed:
        return "lower --gpus-per-trial / --cpus-per-trial, or run on a cluster with such nodes (--address)."
    if settings.gpus_per_trial > 0 and not any(n["gpus"] > 0 for n in nodes):
        return (
            "resume on a machine with GPUs, or on a cluster with such nodes (--address); or start a new run "
            "(without --gpus-per-trial, its trials run on the CPU)."
        )
    return (
        "lower --cpus-per-trial, or --gpus-per-trial (above 0: a resume keeps the recorded device), or resume on a "
        "cluster with such nodes (--address)."
    )


def cluster_nodes() -> list[dict[str, Any]]:
    """The live nodes of the connected cluster: id, address and CPUs (for run.json)."""
    import ray

    return [
        {
            "node": n["NodeID"],
            "address": n["NodeManagerAddress"],
            "cpus": n["Resources"].get("CPU", 0),
            "gpus": n["Resources"].get("GPU", 0),
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]


def _fit(
    trainable: Any,
    param_space: dict[str, Any],
    tune_config: Any,
    name: str,
    settings: SchedulerSettings,
    events: TrialEvents,
    run: RunInfo,
    stage: str,
    expected: int | None = None,
    delivery: Delivery | None = None,
) -> None:
    from ray import tune

    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    with ray_session(settings), _tune_environment(settings.verbose), _ctrl_c_noted() as ctrl_c:
        replayed = frozenset(delivery.replay) if delivery else frozenset()
        forwarder = _make_callback(events, run, stage, replayed)
        callbacks = [forwarder, _stop_on_ctrl_c(ctrl_c)]
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space=param_space,
            tune_config=tune_config,
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(settings.storage_dir),
                callbacks=callbacks,
                verbose=1 if settings.verbose else 0,
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            ),
        )
        try:
            grid = tuner.fit()
        except Exception:  # Tune wraps what its loop raised: the driver's fault, said as itself
            if forwarder.fault is not None:
                raise forwarder.fault from forwarder.fault.__cause__
            raise
    if forwarder.fault is not None:  # kept as the last trial ended: no step of Tune's came after it
        raise forwarder.fault
    if ctrl_c.is_set():
        raise RunInterrupted(f"{name}: Ctrl-C")
    ended = grid.num_terminated + grid.num_errors
    if ended < len(grid) or (expected is not None and len(grid) < expected):
        raise RunInterrupted(f"{name}: {ended} of {max(len(grid), expected or 0)} trials ended")


def _delivered(delivery: Delivery | None) -> Callable[..., None]:
    from ray import tune

    if delivery and (delivery.datasets or delivery.replay):
        # with_parameters puts the objects in Ray's object store once; every worker fetches them from there.
        return tune.with_parameters(_trainable, delivery=delivery)
    return _trainable


def run_trials(
    trials: list[TrialConfig],
    run: RunInfo,
    settings: SchedulerSettings,
    events: TrialEvents,
    stage: str = "trials",
    delivery: Delivery | None = None,
    experiment: str | None = None,
) -> None:
    """Run every trial, one Tune experiment per worker group (:func:`worker_groups`) so warm workers never cross
    frameworks or process-wide settings; returns when all have ended. Raises :class:`RunInterrupted` when an
    experiment stopped early (Ctrl-C)."""
    ids = [t.trial_id for t in trials]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValueError(
            f"Expected unique trial ids. Received duplicates: {duplicates}. To fix, remove the repeated "
            "(model, dataset, backend, seed) combinations from the suites."
        )
    name = experiment or f"{run.run_id}-{stage}"
    for suffix, group in worker_groups(trials).items():
        _run_backend_trials(group, run, settings, events, stage, delivery, f"{name}-{suffix}")


def worker_groups(trials: list[TrialConfig]) -> dict[str, list[TrialConfig]]:
    """The trials in the groups whose trials may share a warm worker process, in the order they first appear, each
    under its experiment name's suffix: the backend (``torch``), then the process-wide settings that are not at
    their default (``tensorflow-jit_compile``; RuntimeOptions.process_settings)."""
    groups: dict[str, list[TrialConfig]] = {}
    for trial in trials:
        suffix = "-".join((trial.backend, *trial.runtime.process_settings()))
        groups.setdefault(suffix, []).append(trial)
    return groups


def warm_workers(backend: str, settings: SchedulerSettings) -> bool:
    """Whether ``backend``'s trials reuse warm worker processes (Tune's ``reuse_actors``). Not with
    ``--fresh-workers``; nor on a fractional ``--gpus-per-trial`` for a backend that keeps a finished trial's GPU
    memory (``RELEASES_GPU_MEMORY`` in backends/<name>/capabilities.py: TensorFlow's allocator never gives it
    back), since the trial sharing the GPU could not use what the worker's earlier, larger trial grew."""
    if settings.fresh_workers:
        return False
    if 0 < settings.gpus_per_trial < 1:
        return declarations(backend).releases_gpu_memory
    return True


def _run_backend_trials(
    trials: list[TrialConfig],
    run: RunInfo,
    settings: SchedulerSettings,
    events: TrialEvents,
    stage: str,
    delivery: Delivery | None,
    name: str,
) -> None:
    from ray import tune

    param_space = {"job": tune.grid_search([{"trial": t.to_dict()} for t in trials]), "run": asdict(run)}
    tune_config = tune.TuneConfig(
        max_concurrent_trials=settings.max_concurrent,
        reuse_actors=warm_workers(trials[0].backend, settings),  # a group holds one backend's trials
        trial_name_creator=lambda t: _trial_config(t).trial_id,
        trial_dirname_creator=lambda t: _trial_config(t).trial_id,
    )
    trainable = _delivered(delivery)
    _fit(trainable, param_space, tune_config, name, settings, events, run, stage, len(trials), delivery)


def tune_domain(domain: Any, grid: bool) -> Any:
    """A neutral domain as Ray Tune's: choices become grid axes under the grid algorithm."""
    from ray import tune

    if isinstance(domain, Choice):
        values = list(domain.values)
        return tune.grid_search(values) if grid else tune.choice(values)
    if isinstance(domain, Uniform):
        return tune.uniform(domain.low, domain.high)
    if isinstance(domain, LogUniform):
        return tune.loguniform(domain.low, domain.high)
    if isinstance(domain, IntRange):
        return tune.randint(domain.low, domain.high + 1)  # Tune's upper bound is exclusive
    raise TypeError(f"Expected a search domain. Received: {domain!r}.")


def recorded_samples(experiment: SearchExperiment, replay: dict[str, list[dict[str, Any]]]) -> dict[int, dict]:
    """The points of ``experiment``'s samples that finished before an interruption, by sample number: the samples
    whose recorded configuration is the base with that point applied (:func:`replayable_rows`)."""
    found: dict[int, dict] = {}
    for rows in replay.values():
        ran = TrialConfig.from_dict(json.loads(rows[0]["config_json"]))
        planned = planned_sample(experiment, ran)
        if planned is not None and planned.sample is not None and replayable_rows(planned, replay):
            found[planned.sample] = drawn_point(experiment.space, ran)
    return found


def planned_sample(experiment: SearchExperiment, ran: TrialConfig) -> TrialConfig | None:
    """The trial ``experiment`` runs as the sample ``ran`` recorded, on a resume: random and grid, with the point
    drawn for that number; optuna, with the point ``ran`` recorded (recorded_samples suggests it again). None when
    ``ran`` is not one of this experiment's samples (another case's or backend's, or a number past its budget)."""
    if ran.sample is None:
        return None
    if experiment.algorithm == "optuna":
        point = drawn_point(experiment.space, ran)
    else:
        points = sample_points(experiment.space, experiment.algorithm, experiment.num_samples, experiment.sampling_seed)
        if ran.sample >= len(points):
            return None
        point = points[ran.sample]
    trial = search_trial(experiment.base, point, ran.sample)
    return trial if trial.trial_id == ran.trial_id else None


def search_algorithm(experiment: SearchExperiment, replay: dict[str, list[dict[str, Any]]] | None = None) -> Any:
    """Tune's adaptive searcher for the experiment, each suggestion numbered in its config (``sample``): sample
    n's point depends on the sampling seed, n and the results told before it (harness.tpe_search); None for random
    and grid, whose points are drawn up front. A resumed search's finished samples (in ``replay``) are suggested
    again at their numbers with their points, and Optuna learns their results as it did live."""
    if experiment.algorithm in ("random", "grid"):
        return None
    if experiment.algorithm == "optuna":
        try:
            import optuna  # noqa: F401  (the optional extra)
        except ImportError:
            raise optuna_missing() from None

        startup = experiment.tpe_startup or tpe_startup_samples(experiment.num_samples)
        search = TpeSearch(experiment.space, experiment.sampling_seed, startup, maximize=experiment.mode == "max")
        return _numbered(search, recorded_samples(experiment, replay or {}), experiment.metric, experiment.mode)
    raise ValueError(f"Expected a search algorithm in random, grid, optuna. Received: {experiment.algorithm!r}.")


def _numbered(search: TpeSearch, recorded: dict[int, dict], metric: str, mode: str) -> Any:
    """``search`` as Tune's searcher, each suggestion's number (0, 1, ...) added to its config as ``sample``. A
    number in ``recorded`` (a resumed search's finished samples) gets its recorded point, not a new suggestion:
    with trials running concurrently, which point a number gets depends on the order trials ended in, so a
    finished sample was trained again under its id at another point and its own result lost. The search learns a
    recorded sample's result when it ends (replayed), as it learned it live."""
    from ray.tune.search import Searcher

    class NumberedSearcher(Searcher):
        def __init__(self) -> None:
            super().__init__(metric=metric, mode=mode)
            self.search, self.recorded, self.suggested = search, recorded, 0
            self.samples: dict[str, tuple[int, dict]] = {}  # Tune trial id -> its sample number and point

        def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
            return True  # the experiment's own metric, mode and space (search_param_space mirrors the space)

        def suggest(self, trial_id: str) -> dict | None:
            number = self.suggested
            point = self.recorded.get(number)
            if point is None:
                point = self.search.suggest(number)
            self.samples[trial_id] = (number, dict(point))
            self.suggested += 1
            return {"point": dict(point), "job": {"sample": number}}  # the job's fields merge into the trial's

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            sample = self.samples.pop(trial_id, None)
            if sample is None:  # told twice (Tune's additional completion): the search knows its result already
                return
            self.search.tell(*sample, result.get(metric) if result else None, failed=error)

        def save(self, checkpoint_path: str) -> None:
            """Nothing to save: a resumed search replays its finished samples (``recorded``) into a new searcher,
            and Tune's own restore is never used. (Tune calls this at each experiment checkpoint; the base class
            raised, and Tune logged "save not implemented for Searcher".) Its get_state and set_state, kept
            until 2026-12-07, were called by nothing."""

    return NumberedSearcher()


def search_param_space(experiment: SearchExperiment, run: RunInfo) -> dict[str, Any]:
    """What Tune samples: every trial's job carries the base and its sample number as fields, and its point
    (random and grid: drawn up front, one trial per point; optuna: Tune's ``point`` domains)."""
    from ray import tune

    job = {"base": experiment.base.to_dict()}
    if experiment.algorithm == "optuna":
        point = {path: tune_domain(domain, grid=False) for path, domain in experiment.space.params}
        return {"job": job, "point": point, "run": asdict(run)}
    points = sample_points(experiment.space, experiment.algorithm, experiment.num_samples, experiment.sampling_seed)
    jobs = [{**job, "sample": index, "point": point} for index, point in enumerate(points)]
    return {"job": tune.grid_search(jobs), "run": asdict(run)}


def run_search(
    experiment: SearchExperiment,
    run: RunInfo,
    settings: SchedulerSettings,
    events: TrialEvents,
    stage: str,
    delivery: Delivery | None = None,
    experiment_name: str | None = None,
) -> None:
    """One backend's search as its own Tune experiment, with its own searcher and (optionally) its own ASHA."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    param_space = search_param_space(experiment, run)
    scheduler: TrialScheduler
    if experiment.asha:
        scheduler = _asha_letting_diverged_trials_end()(
            time_attr=EPOCH_INDEX,
            max_t=experiment.base.epochs,
            grace_period=experiment.asha.grace_period,
            reduction_factor=experiment.asha.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    tune_config = tune.TuneConfig(
        metric=experiment.metric,
        mode=experiment.mode,
        num_samples=experiment.num_samples if experiment.algorithm == "optuna" else 1,  # random/grid: drawn
        search_alg=search_algorithm(experiment, delivery.replay if delivery else None),
        scheduler=scheduler,
        max_concurrent_trials=settings.max_concurrent,
        reuse_actors=warm_workers(experiment.base.backend, settings),  # an experiment: one backend's trials
        trial_name_creator=lambda t: _trial_config(t).trial_id,
        trial_dirname_creator=lambda t: _trial_config(t).trial_id,
    )
    _fit(
        _delivered(delivery),
        param_space,
        tune_config,
        experiment_name or f"{run.run_id}-{stage}",
        settings,
        events,
        run,
        stage,
        delivery=delivery,
    )
