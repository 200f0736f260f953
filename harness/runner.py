"""Execute a :class:`~harness.plan.RunPlan`: its unfinished stages through the scheduler, rows into the results
directory, then the summary. Shared by the CLI and the pytest plugin; their input was checked by
:func:`harness.preflight.preflight` before Ray starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from harness.backend import REFERENCE_BACKEND
from harness.baselines import BASELINES
from harness.config import TrialConfig
from harness.data.registry import Dataset, check_content, data_fingerprint, load_dataset
from harness.errors import InputError
from harness.model_import import python_model_sources
from harness.plan import (
    DriverProcess,
    ExecutionOptions,
    ResumeRecord,
    RunFile,
    RunPlan,
    RunRecord,
    read_run_file,
    write_run_file,
)
from harness.preflight import (
    check_distinct_trial_ids,
    check_execution,
    datasets_to_ship,
    local_environ,
    local_memory_bytes,
    preflight,
)
from harness.provenance import MachineInfo, git_commit, host_name, utc_now
from harness.reporting import run_markdown, search_markdown, unfinished_notice
from harness.results import ResultsWriter, read_parts, rewrite_csv, safe_name
from harness.run_lock import driver_alive, driving, process_start
from harness.scheduler import (
    Delivery,
    RunInterrupted,
    SchedulerSettings,
    check_a_node_fits,
    cluster_nodes,
    delivery_of,
    planned_sample,
    ray_session,
    replayable_rows,
    run_search,
    run_trials,
    signals_held,
    warn_on_stderr,
)
from harness.stages import STAGE_FINAL, STAGE_PRETRAIN, STAGE_SEARCH, STAGE_TRIALS
from harness.summary import (
    Summary,
    compared_rows,
    final_rows,
    framework_versions,
    last_attempts,
    summarize,
    why_not_ok,
)
from harness.trial import RunInfo, skipped_row
from harness.trial_lines import REPLAYED_ROW
from harness.tuning import (
    TunePlan,
    best_trials,
    final_trials,
    samples_to_rerun,
    search_table,
    unsearched_bases,
)

Schedule = Callable[..., None]


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    run_dir: Path
    frame: pd.DataFrame
    summary: Summary
    summary_markdown: str
    wall_time_s: float
    status: str = "finished"  # or "interrupted": resume with --resume RUN_ID
    search: TunePlan | None = None  # a tune's search (its table leads the end-of-run output)
    report_problem: str | None = None  # why report.html was not drawn (matplotlib missing, a plot failing)

    @property
    def all_ok(self) -> bool:
        """Every trial ended ok. Of a tune's samples, one that diverged is one of its findings (an lr search's), which
        the pick passes over; one that failed is not, and every backend of every case must have had an ok sample,
        re-run in the final stage."""
        frame = self.frame
        if self.search is not None and "stage" in frame:
            samples = final_rows(frame[frame["stage"] == STAGE_SEARCH])
            if samples["status"].eq("failed").any() or self.searches_not_rerun():
                return False
            frame = frame[frame["stage"] != STAGE_SEARCH]
            if not frame["stage"].eq(STAGE_FINAL).any():  # no sample ended ok: nothing was re-run
                return False
        ok = set(final_rows(frame)["status"].dropna()) <= {"ok"}
        return self.status == "finished" and bool(len(frame)) and ok

    def searches_not_rerun(self) -> list[tuple[str, str]]:
        """A tune's (case, backend) searches of which no sample ended ok: the final stage could re-run none."""
        if self.search is None or "stage" not in self.frame:
            return []
        table = search_table(self.frame, self.search)
        if table.empty:
            return []
        searched = {(str(case), str(backend)) for case, backend in zip(table["case"], table["backend"], strict=True)}
        return sorted(searched - best_trials(table, self.search).keys())


class Progress(Protocol):
    """What a run tells its caller as it goes (the CLI draws it; tests may record it)."""

    def start(self, total_trials: int) -> None: ...

    def extend(self, more_trials: int) -> None: ...

    def row(self, row: dict[str, Any]) -> None: ...

    def trial_done(self, trial_id: str) -> None: ...

    def stop(self) -> None: ...

    def warn(self, text: str) -> None: ...


class SilentProgress:
    """A run that tells nobody: programmatic runs, and the pytest plugin in a pytest-xdist worker (no terminal)."""

    def start(self, total_trials: int) -> None: ...

    def extend(self, more_trials: int) -> None: ...

    def row(self, row: dict[str, Any]) -> None: ...

    def trial_done(self, trial_id: str) -> None: ...

    def stop(self) -> None: ...

    def warn(self, text: str) -> None:
        warn_on_stderr(text)


RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
# A default id's label, at most this long: the time before it (16 characters) and a number after it ("-2") fit in
# RUN_ID_PATTERN's 200
MAX_ID_LABEL = 176


def new_run_id(label: str, results_dir: Path) -> str:
    """``<UTC time to the second>-<label>``, numbered ``-2``, ``-3``… when a run started in the same second (two CI
    jobs, say) holds the name in ``results_dir``. The name is claimed by creating its (empty) directory, so two
    processes never get the same one. The label is cleaned to what ``--resume`` takes (check_run_id): a case of a
    ``python:mod:fn``, ``torchvision:NAME`` or ``keras:NAME`` model, or of a spec file with a space in its name,
    gave an id with ':' or ' ' that the printed resume command then refused."""
    base = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{id_label(label)}"
    results_dir.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        candidate = base if number == 1 else f"{base}-{number}"
        try:
            (results_dir / candidate).mkdir()
            return candidate
        except FileExistsError:
            number += 1


def id_label(label: str) -> str:
    """``label`` as part of a run id: every character outside ASCII letters, digits, '.', '_' and '-' becomes '_'
    (results.safe_name keeps any Unicode letter, which RUN_ID_PATTERN refuses), cut to MAX_ID_LABEL."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)[:MAX_ID_LABEL]


def check_run_id(run_id: str, flag: str = "--run-id") -> None:
    """A run id names a directory directly under the results directory, which history, compare and baseline list:
    letters, digits, '.', '_' and '-', not starting with '.' or '_' (the results directory's own entries)."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        path = Path(run_id)
        fix = (  # a run's folder given as a path, as report, compare and export take it
            f"give its id with the folder holding it: `{flag} {path.name} --results-dir {path.parent}`"
            if flag == "--resume" and RUN_ID_PATTERN.fullmatch(path.name) and str(path.parent) != "."
            else "pick a name such as 'baseline-2026-12' (the run's directory under --results-dir)"
        )
        raise InputError(
            f"Expected {flag} as letters, digits, '.', '_' and '-' (at most 200, starting with a letter or digit). "
            f"Received: {run_id!r}. To fix, {fix}."
        )
    if run_id == BASELINES:
        raise InputError(
            f"Expected {flag} other than {BASELINES!r}. Received: {run_id!r}, the folder of --results-dir that holds "
            "the saved baselines (history, compare and report would not see the run). To fix, pick another name."
        )


def scheduler_settings(results_dir: Path, options: ExecutionOptions, verbose: bool = False) -> SchedulerSettings:
    return SchedulerSettings(storage_dir=(results_dir / "_ray").resolve(), verbose=verbose, **asdict(options))


def _recorded_options(settings: SchedulerSettings) -> ExecutionOptions:
    return ExecutionOptions(**{f.name: getattr(settings, f.name) for f in fields(ExecutionOptions)})


@dataclass
class _RunContext:
    """A run while it executes: its plan, where rows go, and how Tune experiments are named."""

    run_file: RunFile
    run_dir: Path
    settings: SchedulerSettings
    writer: ResultsWriter
    progress: Progress
    delivery: Delivery
    finished: set[str]  # trials whose rows are complete (resume): not run again
    suffix: str = ""  # "-resume<n>" when resuming: every Tune experiment of a run has its own name
    reference: str = REFERENCE_BACKEND  # summary.md and report.html compare every backend with it (--reference)
    html_report: bool = True  # report.html beside summary.md (--no-report: its plots take ~0.2 s per case)
    search_ended: bool = False  # resuming a tune whose final stage began: its search is not run again
    unsearched: frozenset[str] = frozenset()  # ...but for these bases, skipped for a backbone that did not train
    # the trials each worker process (node, pid) started, in order, this session: each row's worker_trials_before
    worker_trials: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    @property
    def run(self) -> RunInfo:
        """What each row records of its run: a resumed session's rows the code that session ran, not the run's first
        commit (rows of new code read as the old run's after a `git pull`)."""
        resumes = self.run_file.record.resumes
        commit = resumes[-1].git_commit if resumes and resumes[-1].git_commit else self.run_file.record.git_commit
        return RunInfo(run_id=self.run_file.record.run_id, git_commit=commit)

    def save(self, **changes: Any) -> None:
        self.run_file = replace(self.run_file, record=replace(self.run_file.record, **changes))
        write_run_file(self.run_dir, self.run_file)

    def events(self) -> Any:
        writer, progress, worker_trials = self.writer, self.progress, self.worker_trials

        class Events:
            def on_row(self, row: dict[str, Any]) -> None:
                writer.add_row(with_worker_trials_before(row, worker_trials))
                progress.row(row)

            def on_trial_end(self, trial_id: str) -> None:
                writer.finish_trial(trial_id)
                progress.trial_done(trial_id)

            def on_replayed_row(self, row: dict[str, Any]) -> None:
                progress.row({**row, REPLAYED_ROW: True})

        return Events()

    def schedule(self, trials: list[TrialConfig], stage: str, schedule: Schedule, label: str | None = None) -> None:
        """The unfinished ``trials`` as Tune experiments ``<run_id>-<label or stage>[-resume<n>]-<worker group>``
        (scheduler.worker_groups)."""
        todo = [t for t in trials if t.trial_id not in self.finished]
        if todo:
            self.progress.extend(len(todo))
            experiment = f"{self.run.run_id}-{label or stage}{self.suffix}"
            schedule(
                todo, self.run, self.settings, self.events(), stage=stage, delivery=self.delivery, experiment=experiment
            )

    def pretrain_then(self, trials: list[TrialConfig], stage: str, schedule: Schedule) -> None:
        """Missing shared backbones first (trained once), then the trials that start from them; a trial whose
        backbone's pretrain trial did not end ok is recorded as skipped instead of started (it could only fail)."""
        from harness.backbone import pretrain_trials

        label = STAGE_PRETRAIN if stage == STAGE_TRIALS else f"{STAGE_PRETRAIN}-{stage}"
        untrained = self.pretrain(pretrain_trials(trials) + self._cut_short_pretrains(trials), schedule, label)
        skipped = {t.trial_id: untrained[k] for t in trials if (k := _backbone_key(t)) in untrained}
        self.skip([t for t in trials if t.trial_id in skipped], stage, skipped)
        self.schedule([t for t in trials if t.trial_id not in skipped], stage, schedule)

    def _cut_short_pretrains(self, trials: list[TrialConfig]) -> list[TrialConfig]:
        """The run's recorded pretrain trials for ``trials`` that left no rows though their backbone is cached: one
        cut short after it saved its checkpoint (before its rows reached the driver) would otherwise never run
        again, its source phase missing from the run (pretrain_trials takes the backbones the cache lacks)."""
        from harness.backbone import checkpoint_path, recipe_for

        needed = {_backbone_key(t) for t in trials} - {None}
        parts = self.run_dir / "parts"  # a trial's part is written when it ends, in this session or one before
        return [
            p
            for p in self.run_file.pretrain
            if recipe_for(p).key in needed
            and checkpoint_path(p).is_file()
            and not (parts / f"{safe_name(p.trial_id)}.parquet").is_file()
        ]

    def pretrain(self, pretrains: list[TrialConfig], schedule: Schedule, label: str = STAGE_PRETRAIN) -> dict[str, str]:
        """Run the unfinished ``pretrains``; returns why each that left no backbone did (by the backbone's key)."""
        self.schedule(pretrains, STAGE_PRETRAIN, schedule, label)
        return _untrained_backbones(pretrains, read_parts(self.run_dir)) if pretrains else {}

    def skip(self, trials: list[TrialConfig], stage: str, reasons: dict[str, str]) -> None:
        """One ``skipped`` row each for the unfinished ``trials``, written by the driver: no worker starts them."""
        todo = [t for t in trials if t.trial_id not in self.finished]
        self.progress.extend(len(todo))
        events = self.events()
        for trial in todo:
            events.on_row({**skipped_row(trial, self.run, reasons[trial.trial_id]), "stage": stage, "attempt": 0})
            events.on_trial_end(trial.trial_id)


def _backbone_key(trial: TrialConfig) -> str | None:
    """The key of the backbone a pretrain trial of the run trains for ``trial`` (targets of several suites or
    searches share one pretrain trial per key), or None when it starts from none."""
    from harness.backbone import needs_trained_backbone, recipe_for

    return recipe_for(trial).key if needs_trained_backbone(trial) else None


def _untrained_backbones(pretrains: list[TrialConfig], frame: pd.DataFrame) -> dict[str, str]:
    """Why each of ``pretrains`` left no backbone, by the key of the backbone it trains: it ended failed or
    diverged (in this run or, when resumed, before), or recorded nothing. Pretrain trials that ended ok are absent."""
    from harness.backbone import recipe_for

    finals = final_rows(frame).set_index("trial_id") if len(frame) else pd.DataFrame()
    reasons = {}
    for trial in pretrains:
        key, trial_id = recipe_for(trial).key, trial.trial_id
        if trial_id not in finals.index:
            reasons[key] = f"its backbone's pretrain trial {trial_id} recorded no rows"
            continue
        final = finals.loc[trial_id]
        if final["status"] != "ok":
            error = f": {final['error']}" if isinstance(final["error"], str) and final["error"] else ""
            reasons[key] = f"its backbone's pretrain trial {trial_id} ended {final['status']}{error}"
    return reasons


def execute(
    plan: RunPlan,
    *,
    results_dir: Path,
    run_id: str,
    settings: SchedulerSettings,
    progress: Progress | None = None,
    command: list[str] | None = None,
    data_provenance: dict[str, dict[str, str]] | None = None,
    schedule: Schedule = run_trials,
    ship: dict[str, Dataset] | None = None,
    reference: str | None = None,
    html_report: bool = True,
    weights_keys: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Run every stage of ``plan`` in a new run directory ``results_dir/run_id``; its summary.md and report.html
    compare every backend with ``reference``. ``weights_keys``: each pretrained trial's weights as preflight
    converted them (its ``weights_keys`` out-argument)."""
    plan = _keyed(plan, results_dir, data_provenance or {}).with_weights_keys(weights_keys or {})
    run_dir = (results_dir / run_id).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise _not_new(run_id, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # a default id's is there already, claimed empty by new_run_id
    with driving(run_dir, "start a new run"):  # another driver's (RunBeingDriven) is left as it is
        try:
            if any(run_dir.iterdir()):  # another driver wrote here between the check above and the lock
                raise _not_new(run_id, run_dir)
            return _execute_held(plan, run_dir, settings, progress, command, data_provenance, schedule, ship,
                                 reference, html_report)  # fmt: skip
        except BaseException:  # refused (no node fits, no cluster, no token) or stopped before run.json was written
            if not any(run_dir.iterdir()):
                run_dir.rmdir()  # still empty, and held by this process: a run that never began leaves nothing
            raise


def _not_new(run_id: str, run_dir: Path) -> InputError:
    return InputError(
        f"Expected a new run id. Received: {run_id!r}, whose directory {run_dir} holds results. To fix, pick "
        "another --run-id (or leave it out for a time-stamped one); to finish that run, use --resume with its id."
    )


def _execute_held(
    plan: RunPlan,
    run_dir: Path,
    settings: SchedulerSettings,
    progress: Progress | None,
    command: list[str] | None,
    data_provenance: dict[str, dict[str, str]] | None,
    schedule: Schedule,
    ship: dict[str, Dataset] | None,
    reference: str | None,
    html_report: bool,
) -> RunOutcome:
    """execute's run, its directory held by this process (run_lock.driving)."""
    run_id = run_dir.name
    machine = MachineInfo.current()
    record = RunRecord(
        run_id=run_id,
        started=utc_now(),
        command=tuple(command or sys.argv),
        git_commit=git_commit(),
        driver_host=machine.host,
        driver_cpu=machine.cpu,
        python_version=machine.python_version,
        datasets=data_provenance or {},
        data_delivery={name: "object store" for name in (ship or {})},
        reference=reference or REFERENCE_BACKEND,
        driver_process=this_driver(),
    )
    run_file = RunFile(plan, _recorded_options(settings), record, tuple(plan.pretrain()))
    progress = progress or SilentProgress()
    with _ray_for(plan, settings, warn=progress.warn):
        write_run_file(run_dir, run_file)
        ctx = _RunContext(
            run_file,
            run_dir,
            settings,
            ResultsWriter(run_dir),
            progress,
            delivery_of(ship or {}),
            finished=set(),
            reference=record.reference,
            html_report=html_report,
        )
        return _carry_out(ctx, schedule)


def _keyed(plan: RunPlan, results_dir: Path, provenance: dict[str, dict[str, str]]) -> RunPlan:
    """``plan``'s trials with the run's cache (backbones and features beside the runs, for later runs to reuse) and
    what their data and model files hold now (the data's content as preflight read it: its provenance's
    ``content``), which a shared backbone's recipe holds and each trial checks before it trains."""
    data_keys = {name: found["content"] for name, found in provenance.items() if "content" in found}
    for trial in plan.planned_trials:  # a caller without preflight's provenance (a benchmark script): read here
        if trial.dataset not in data_keys and trial.data_key is None:
            try:
                data_keys[trial.dataset] = data_fingerprint(load_dataset(trial.dataset, trial.data_dir, download=False))
            except InputError:  # not here: the trials say so where they run, as before (no key, nothing to check)
                continue
    return plan.with_cache_dir(results_dir / "_cache").with_data_keys(data_keys).with_model_keys()


@contextlib.contextmanager
def _ray_for(
    plan: RunPlan, settings: SchedulerSettings, resumed: bool = False, warn: Callable[[str], None] = warn_on_stderr
) -> Iterator[None]:
    """Ray for a run's stages (users' ``python:`` modules shipped to its workers), and the check only a started Ray
    can make, before anything of the run is written: some node offers a trial's CPUs and GPUs (NoNodeFits).
    ``warn``: the run's progress's, so that a warning reaches the user where the progress does."""
    with ray_session(settings, python_model_sources(t.model for t in plan.planned_trials), warn):
        check_a_node_fits(settings, resumed, warn)
        yield


def resumable(results_dir: Path, run_id: str, kind: str, given: dict[str, Any]) -> ExecutionOptions:
    """The execution options a resume of ``run_id`` runs with (what is given now wins, 0 included; the rest as
    recorded); InputError (MissingInputFile for data) when the run cannot be resumed that way, checked before
    Ray starts as for a new run."""
    run_file = read_run_file((results_dir / run_id).resolve()).in_cache(results_dir / "_cache")
    plan = run_file.plan
    if plan.kind != kind:
        raise InputError(
            f"Expected a run made by `xfbench {kind}` for `xfbench {kind} --resume`. Received: {run_id!r}, made by "
            f"`xfbench {plan.kind}`. To fix, use `xfbench {plan.kind} --resume`."
        )
    check_something_to_resume(run_file, results_dir / run_id)
    recorded_gpus = run_file.execution.gpus_per_trial
    if given.get("gpus_per_trial") is not None and (given["gpus_per_trial"] > 0) != (recorded_gpus > 0):
        raise InputError(
            f"Expected --gpus-per-trial to keep the recorded device ({'gpu' if recorded_gpus else 'cpu'}: the run's "
            f"trials are configured for it). Received: {given['gpus_per_trial']}. To fix, leave --gpus-per-trial "
            "out, or start a new run."
        )
    # The same preflight as a new run: the recorded trials' data must still be there, their models convertible.
    trials = list(plan.planned_trials)
    check_distinct_trial_ids(trials, "This run was recorded so and cannot be resumed. To fix, start a new run instead.")
    # the cluster and CPUs first, as for a new run: the preflight may convert models for minutes before it
    options = check_execution(run_file.execution.updated(given))
    cache_dir = results_dir / "_cache"
    preflight(
        trials,
        trials[0].data_dir,
        download=False,
        cache_dir=cache_dir,
        memory_bytes=local_memory_bytes(options),
        search=plan.search,
        resumed=True,
        environ=local_environ(options),
    )
    return options


def trials_to_rerun(frame: pd.DataFrame) -> list[str]:
    """The trials of a run's rows whose last attempt ended ``failed`` or ``skipped``: a resume runs them again (a
    diverged trial would diverge again from the same weights and batches, so it is a result, kept)."""
    finals = final_rows(frame)
    return sorted(finals[finals["status"].isin(["failed", "skipped"])]["trial_id"]) if len(finals) else []


def failed_trials(frame: pd.DataFrame) -> list[str]:
    """The trials whose last attempt ended ``failed`` (raised, or its worker died): what makes a finished run worth
    resuming. The trials skipped for a failed backbone rerun with it (trials_to_rerun)."""
    finals = final_rows(frame)
    return sorted(finals[finals["status"] == "failed"]["trial_id"]) if len(finals) else []


def search_ended(frame: pd.DataFrame, final_began: bool = False) -> bool:
    """A tune's search ended once its final stage began (it starts after every search experiment): a resume keeps
    every sample as recorded, a failed one too, since its searcher and ASHA decided on them, and does not reopen it.
    ``final_began``: run.json says so (RunRecord.final_began), which holds before any final trial has finished: a
    tune killed then would otherwise rerun its failed samples and might change its pick. Rows of the final stage
    say so too (a run.json from before that was recorded)."""
    return final_began or (bool(len(frame)) and bool(frame["stage"].eq(STAGE_FINAL).any()))


def rerun_after_search(frame: pd.DataFrame, search: TunePlan) -> list[str]:
    """A tune whose search ended (search_ended): the final stage's trials that ended failed or skipped, and, while
    some final trial has not ended ok or diverged, the failed or skipped pretrain trials of the backbones the final
    trials need (a tune stopped in the final stage's pretrain has no final rows yet). The search's samples stand,
    and so do the pretrains only its samples needed (nothing would use them: the search is not run again), but
    for the bases whose experiment was skipped for a backbone that did not train, or whose search a resume of it
    left cut short (unsearched_bases): their skipped rows, failed samples and backbone's pretrain trial run again,
    and so does their search (a worker killed in the pretrain left a tune that could never be resumed)."""
    from harness.backbone import pretrain_trials

    final = frame[frame["stage"] == STAGE_FINAL] if len(frame) else frame
    finals = trials_to_rerun(final)
    wanted = final_trials(frame, search) if len(frame) else []
    unsearched = unsearched_bases(frame, search)
    needs = [e.base for e in search.experiments() if e.base.trial_id in unsearched]
    ended = set(final_rows(final)["trial_id"]) - set(finals) if len(final) else set()
    if any(t.trial_id not in ended for t in wanted):  # some final trial has not ended ok or diverged
        needs += wanted
    needed = {t.trial_id for t in pretrain_trials(needs)}
    pretrains = trials_to_rerun(frame[frame["stage"] == STAGE_PRETRAIN]) if len(frame) else []
    samples = samples_to_rerun(frame, search, unsearched)
    return sorted({*finals, *unsearched, *samples, *(t for t in pretrains if t in needed)})


def stale_pretrains(plan: RunPlan, frame: pd.DataFrame, ended_search: TunePlan | None) -> dict[str, str]:
    """The pretrain trials that ended ok but whose backbone checkpoint is gone from the (current) cache, which the
    trials a resume runs still need (a ``_cache`` deleted, or a results folder copied without it): their rows stand
    for a backbone that is not there, so the resume trains it again, by their id with why."""
    from harness.backbone import checkpoint_path, pretrain_trials

    if not len(frame):
        return {}
    finals = final_rows(frame)
    ok = set(finals[finals["status"] == "ok"]["trial_id"])
    if ended_search is not None:  # only the final stage runs, and the search of the experiments never searched
        unsearched = unsearched_bases(frame, ended_search)
        targets = [t for t in final_trials(frame, ended_search) if t.trial_id not in ok]
        targets += [e.base for e in ended_search.experiments() if e.base.trial_id in unsearched]
    else:  # a search's samples start from its bases' backbones (_tune_stages); a run's unfinished trials
        targets = [t for t in plan.planned_trials if plan.search is not None or t.trial_id not in ok]
    return {
        t.trial_id: f"ok, but its backbone {checkpoint_path(t)} is gone: trained again"
        for t in pretrain_trials(targets)  # the backbones the cache lacks
        if t.trial_id in ok
    }


def changed_samples(search: TunePlan, frame: pd.DataFrame, cache_dir: Path) -> dict[str, str]:
    """The samples of a search still going on that ended (ok or diverged) under another configuration than the one
    this resume gives their ids (the code's defaults changed between run and resume, say), by id with why: not
    replayed (scheduler.replayable_rows), they train again, so their rows go as a failed trial's do. Kept,
    results.csv held both configurations' rows under one id, and the resume said it kept them without re-running."""
    searched = frame[frame["stage"] == STAGE_SEARCH] if len(frame) else frame
    if not len(searched):
        return {}
    rows = _rows_by_trial(searched, cache_dir)
    ended = final_rows(searched).set_index("trial_id")["status"].to_dict()
    changed: dict[str, str] = {}
    for trial_id, recorded in rows.items():
        ran = TrialConfig.from_dict(json.loads(recorded[0]["config_json"]))
        planned = [t for e in search.experiments() if (t := planned_sample(e, ran)) is not None]
        if ended.get(trial_id) in ("ok", "diverged") and planned and not replayable_rows(planned[0], rows):
            fields = sorted(k for k, v in planned[0].to_dict().items() if ran.to_dict().get(k) != v)
            changed[trial_id] = (
                f"{ended[trial_id]}, but under another configuration than this resume's (it differs in "
                f"{', '.join(fields)}): trained again"
            )
    return changed


def resumable_failures(frame: pd.DataFrame, search: TunePlan | None) -> list[str]:
    """The failed trials that make a finished run worth resuming, which its resume reruns alone (and the trials
    skipped for them): a run's; a tune's among those it reruns after its search (rerun_after_search)."""
    if not len(frame):
        return []
    rerun = set(rerun_after_search(frame, search)) if search is not None else None
    return [t for t in failed_trials(frame) if rerun is None or t in rerun]


def check_something_to_resume(run_file: RunFile, run_dir: Path) -> None:
    """InputError unless ``run_dir`` was interrupted, or finished with failed trials a resume reruns alone
    (resumable_failures: a worker killed or out of memory)."""
    record, run_id = run_file.record, run_dir.name
    if record.status == "running" and driver_alive(record.driver_process):
        pid = record.driver_process.pid if record.driver_process else 0
        raise InputError(
            f"Expected a run whose driver has stopped, for --resume. Received: {run_id!r}, still running under "
            f"pid {pid} on this host. To fix, wait for it to end, or stop it first (Ctrl-C in its terminal, or "
            f"`kill {pid}`: it is then recorded interrupted) and resume it then."
        )
    frame = read_parts(run_dir)  # an unreadable part is refused here, before Ray starts or the run changes
    if record.status != "finished":
        return
    if resumable_failures(frame, run_file.plan.search):
        return
    if run_file.plan.search is not None:
        raise InputError(
            f"Expected an interrupted search, or a finished one whose final stage has failed trials. Received: "
            f"{run_id!r} finished at {record.finished} with none, its best configs chosen from the samples that "
            "ended; nothing to resume (a finished search is not reopened). To fix, start a new `xfbench tune` to "
            "search again."
        )
    raise InputError(
        f"Expected an interrupted run, or a finished one with failed trials. Received: {run_id!r} finished at "
        f"{record.finished} with none (a diverged trial, and one skipped for a diverged backbone, would end so "
        "again); nothing to resume. To fix, start a new run to measure again."
    )


def _shipped_as_recorded(trials: list[TrialConfig], settings: SchedulerSettings) -> dict[str, Dataset]:
    """The datasets a resume ships, each checked against its trials' data key: read again after the preflight's
    check (Ray started in between), and a worker trusts a shipped dataset as the run's own."""
    ship = datasets_to_ship(trials, settings.ship_data, settings.address)
    for name, key in sorted({(t.dataset, t.data_key) for t in trials if t.dataset in ship and t.data_key}):
        check_content(ship[name], key)  # every key its trials recorded, whatever their order
    return ship


def resume(
    results_dir: Path,
    run_id: str,
    settings: SchedulerSettings | None = None,
    progress: Progress | None = None,
    schedule: Schedule = run_trials,
    reference: str | None = None,
    html_report: bool = True,
) -> RunOutcome:
    """Finish an interrupted run, or rerun a finished run's failed and skipped trials: trials whose rows are complete
    are kept (not re-run); a search replays them to its searcher and scheduler, unless its final stage began (then
    the search stands as it ended); interrupted trials lose their partial rows and run again. Its summary compares
    with ``reference``, by default the backend the run was started with."""
    run_dir = (results_dir / run_id).resolve()
    read_run_file(run_dir)  # a missing or unreadable run says so before the lock is tried
    with driving(run_dir, "resume"):  # read and checked again under it: another resume may just have ended
        run_file = read_run_file(run_dir).in_cache(results_dir / "_cache")  # a moved results folder: its own _cache
        check_something_to_resume(run_file, run_dir)
        return _resume_held(run_file, run_dir, settings, progress, schedule, reference, html_report)


def _resume_held(
    run_file: RunFile,
    run_dir: Path,
    settings: SchedulerSettings | None,
    progress: Progress | None,
    schedule: Schedule,
    reference: str | None,
    html_report: bool,
) -> RunOutcome:
    """resume's work, its directory held by this process (run_lock.driving)."""
    results_dir = run_dir.parent
    settings = settings or scheduler_settings(results_dir, run_file.execution)
    progress = progress or SilentProgress()
    with _ray_for(run_file.plan, settings, resumed=True, warn=progress.warn):  # before the run changes: refused
        frame = read_parts(run_dir)  # leaves it as is
        began = run_file.record.final_began is not None
        ended_search = run_file.plan.search if search_ended(frame, began) else None
        again = stale_pretrains(run_file.plan, frame, ended_search)
        if ended_search is None and run_file.plan.search is not None:  # the search goes on
            again.update(changed_samples(run_file.plan.search, frame, results_dir / "_cache"))
        commit = _say_the_commit(run_file)
        ship = _shipped_as_recorded(list(run_file.plan.planned_trials), settings)
        # "running" under this driver before any row is removed (a finished run whose failed trials' rows were gone
        # read as one with nothing to resume, and lost them); stopped before its trials begin, "interrupted"
        driven = replace(run_file, record=_driven_by_this(run_file.record))
        write_run_file(run_dir, driven)
        try:
            kept, resumed = _kept_and_recorded(run_dir, ended_search, again, commit, run_file.execution)
            record = replace(
                driven.record,
                data_delivery={name: "object store" for name in ship},  # this session's: a resume may ship otherwise
                resumes=(*run_file.record.resumes, resumed),
                reference=reference or run_file.record.reference,
            )
            run_file = replace(run_file, execution=_recorded_options(settings), record=record)
            write_run_file(run_dir, run_file)
            replay = _rows_by_trial(kept[kept["stage"] == STAGE_SEARCH], results_dir / "_cache") if len(kept) else {}
        except BaseException as exc:
            why = None if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            write_run_file(run_dir, replace(driven, record=replace(driven.record, status="interrupted", error=why)))
            raise
        finished = set(kept["trial_id"].unique()) if len(kept) else set()
        ctx = _RunContext(
            run_file,
            run_dir,
            settings,
            ResultsWriter(run_dir, kept=frozenset(finished)),
            progress,
            delivery_of(ship, replay),
            finished,
            suffix=f"-resume{len(record.resumes)}",
            reference=record.reference,
            html_report=html_report,
            search_ended=ended_search is not None,
            unsearched=unsearched_bases(frame, ended_search) if ended_search is not None else frozenset(),
        )
        return _carry_out(ctx, schedule)


def with_worker_trials_before(row: dict[str, Any], started: dict[tuple[str, int], list[str]]) -> dict[str, Any]:
    """``row`` with how many trials its worker process had started before its own (``started``: each process's
    trials so far, by node and pid, updated here): a warm worker's later trials leave the process's one-off costs to
    its first, so their warm-up epochs are shorter than a fresh process's. Rows no worker wrote (a dead worker's,
    a skipped trial's) have none."""
    pid = row.get("worker_pid")
    if pid is None or pd.isna(pid):
        return row
    trials = started.setdefault((str(row.get("node") or row.get("host") or ""), int(pid)), [])
    if row["trial_id"] not in trials:
        trials.append(row["trial_id"])
    return {**row, "worker_trials_before": trials.index(row["trial_id"])}


def _kept_and_recorded(
    run_dir: Path, ended_search: TunePlan | None, again: dict[str, str], commit: str, before: ExecutionOptions
) -> tuple[pd.DataFrame, ResumeRecord]:
    """The finished trials' rows a resume keeps (the others' removed: _keep_finished_rows), and its record."""
    kept, failed, discarded = _keep_finished_rows(run_dir, ended_search, again)
    finished = kept["trial_id"].nunique() if len(kept) else 0
    resumed = ResumeRecord(utc_now(), finished, tuple(failed), discarded, tuple(sys.argv), failed)
    return kept, replace(resumed, git_commit=commit, execution_before=before)


def _say_the_commit(run_file: RunFile) -> str:
    """The commit this resume runs, noted on stderr where it is not the one the run began on."""
    commit = git_commit()
    if commit != run_file.record.git_commit:
        print(
            f"note: this resume runs commit {commit}, the run began on {run_file.record.git_commit}; the rows of "
            "each session record the commit that ran them",
            file=sys.stderr,
        )
    return commit


def _driven_by_this(record: RunRecord) -> RunRecord:
    return replace(record, status="running", error=None, driver_process=this_driver())


def _keep_finished_rows(
    run_dir: Path, ended_search: TunePlan | None, again: dict[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, str], int]:
    """The rows of finished trials; failed and skipped trials' parts are removed: they run again (an interrupted
    run's workers end mid-trial too, by Ray's shutdown as the driver stops, not by the Ctrl-C or SIGTERM itself,
    which their process groups of their own do not receive: a failure may be the interruption itself; a skipped
    trial's backbone may train this time); after a search that ended (``ended_search``), only those
    rerun_after_search names. So are the parts of the trials in ``again`` that ended ok but run again (why, by id):
    pretrain trials whose backbone is gone (stale_pretrains), samples whose configuration changed (changed_samples).
    Returns (kept, why each trial run again ended so by its id, partial rows of interrupted trials dropped: not the
    rows of those run again)."""
    kept = read_parts(run_dir)
    rerun = set(rerun_after_search(kept, ended_search) if ended_search is not None else trials_to_rerun(kept))
    finals = final_rows(kept).to_dict("records") if len(kept) else []
    why = {str(r["trial_id"]): f"{r['status']}: {why_not_ok(r)}" for r in finals if r["trial_id"] in rerun}
    failed = dict(sorted({**why, **(again or {})}.items()))
    for trial_id in failed:
        (run_dir / "parts" / f"{safe_name(trial_id)}.parquet").unlink(missing_ok=True)
    ended = int(kept["trial_id"].isin(failed).sum()) if len(kept) else 0  # whole trials, not cut short
    kept = kept[~kept["trial_id"].isin(failed)] if len(kept) else kept
    # the finished table no longer holds the run: until the resume writes it again, readers (compare, history, a
    # baseline) take the parts, as of a running run, not the rows the resume is replacing
    (run_dir / "results.parquet").unlink(missing_ok=True)
    return kept, failed, max(0, rewrite_csv(run_dir, kept) - ended)


def _finalize(ctx: _RunContext, status: str) -> pd.DataFrame:
    ctx.progress.stop()
    return ctx.writer.finalize(interrupted=status == "interrupted")


def _run_stages(ctx: _RunContext, schedule: Schedule) -> None:
    plan = ctx.run_file.plan
    if plan.search is None:
        ctx.pretrain_then(list(plan.trials), STAGE_TRIALS, schedule)
    else:
        _tune_stages(ctx, plan.search)


def _carry_out(ctx: _RunContext, schedule: Schedule) -> RunOutcome:
    start = time.perf_counter()
    ctx.progress.start(0)
    status = "finished"
    try:
        ctx.save(ray_nodes=ctx.run_file.record.joined_nodes(cluster_nodes()))  # in execute / resume's Ray session
        _run_stages(ctx, schedule)
    except (KeyboardInterrupt, RunInterrupted):
        status = "interrupted"
    except Exception as exc:  # a fault of the driver: the run is left resumable, saying what stopped it
        status = "interrupted"
        ctx.save(status=status, error=f"{type(exc).__name__}: {str(exc)[:1000]}")
        with signals_held():
            _finalize(ctx, status)
        raise
    with signals_held() as held:  # Ctrl-C now would leave run.json "running" beside trials that all ended
        frame = _finalize(ctx, status)
        wall = time.perf_counter() - start
        summary, markdown = _summary(ctx, frame)
        if status == "interrupted":
            markdown = _interrupted_notice(ctx, frame, markdown)
        (ctx.run_dir / "summary.md").write_text(markdown, encoding="utf-8")  # whatever the locale (non-ASCII signs)
        trial_status = final_rows(frame).groupby("status")["trial_id"].nunique().to_dict() if len(frame) else {}
        ctx.save(
            status=status,
            finished=utc_now() if status == "finished" else None,
            wall_time_s=round(wall, 3),
            framework_versions=framework_versions(frame),
            rows=len(frame),
            trial_status=trial_status,
        )
    # a Ctrl-C while the run was written leaves out the page's seconds of plotting; a run with no row has no page
    report_problem = _report_page(ctx, drawn=ctx.html_report and not held and len(frame) > 0)
    plan = ctx.run_file.plan
    return RunOutcome(ctx.run.run_id, ctx.run_dir, frame, summary, markdown, wall, status, plan.search, report_problem)


def _report_page(ctx: _RunContext, drawn: bool) -> str | None:
    """The run's report.html, drawn anew (``drawn``) or removed; why it is missing where it was to be drawn. A page
    drawn before (a resume's) no longer shows these results: gone before a new one is drawn, so a page cut short
    leaves none (a resume stopped while drawing left the interrupted session's page beside a finished run)."""
    (ctx.run_dir / "report.html").unlink(missing_ok=True)
    if not drawn:  # --no-report, or stopped
        shutil.rmtree(ctx.run_dir / "report_plots", ignore_errors=True)
        return None
    try:
        return write_report(ctx.run_dir)  # compared with the reference run.json records: ctx.reference
    except KeyboardInterrupt:  # the run's files are whole by now: a finished run ended as interrupted (exit 130)
        problem = f"no report.html (stopped while it was drawn); `xfbench report {ctx.run_dir}` draws it"
        print(f"xfbench: {problem}", file=sys.stderr)
        return problem


def write_report(run_dir: Path, reference: str | None = None) -> str | None:
    """report.html beside summary.md, compared with ``reference`` (None: the run's own); None once written. A
    report that cannot be drawn (matplotlib missing, a plot failing) is a warning, which this returns too (the
    pytest plugin repeats it in its summary, where a passing case's stderr is never shown): the run's results are
    already written and must not be lost to it."""
    from harness.report_html import build_report

    try:
        build_report([run_dir], run_dir / "report.html", reference)
    except Exception as exc:  # any failure of the report leaves the run's results as they are
        problem = f"no report.html ({type(exc).__name__}: {exc})"
        print(f"xfbench: warning: {problem}", file=sys.stderr)
        return problem
    return None


def _interrupted_notice(ctx: _RunContext, frame: pd.DataFrame, markdown: str) -> str:
    """summary.md of an interrupted run says so under its title: its tables hold what ended before the stop, and
    read alone they looked like a finished run's (a backend that never ran: "no other backend ran")."""
    notice = unfinished_notice(ctx.run_file.plan, "interrupted", frame, ctx.run_dir)
    title, _, rest = markdown.partition("\n")
    return f"{title}\n\n**{notice[0]}**: {notice[1]}\n{rest}"


def _summary(ctx: _RunContext, frame: pd.DataFrame) -> tuple[Summary, str]:
    """A run's table; a search's from its final stage (and the pretrain trials that trained its backbones: an S4
    case's source phase) without its samples, followed by the search section."""
    plan = ctx.run_file.plan
    summary = summarize(compared_rows(frame), ctx.reference)
    markdown = run_markdown(summary, f"{plan.title} — run {ctx.run.run_id}")
    if plan.search is not None:
        markdown += "\n" + search_markdown(frame, plan.search)
    return summary, markdown


def _tune_stages(ctx: _RunContext, search: TunePlan) -> None:
    """Backbones, then one search experiment per (case, backend), then every backend's best config with K seeds. An
    experiment whose backbone did not train is not run: its base gets one ``skipped`` row in the search stage."""
    if not ctx.search_ended:  # else the samples, and the backbones they trained from, stand as they ended
        _search_stage(ctx, search, ctx.pretrain(ctx.run_file.plan.pretrain(), run_trials))
    elif ctx.unsearched:  # but for the experiments a backbone that did not train kept from running: they run now
        from harness.backbone import pretrain_trials

        bases = [e.base for e in search.experiments() if e.base.trial_id in ctx.unsearched]
        _search_stage(ctx, search, ctx.pretrain(pretrain_trials(bases), run_trials), only=ctx.unsearched)
    finals = final_trials(read_parts(ctx.run_dir), search)
    if ctx.run_file.record.final_began is None:  # before its first trial: a resume from now on keeps the search
        ctx.save(final_began=utc_now())
    ctx.pretrain_then(finals, STAGE_FINAL, run_trials)


def _search_stage(
    ctx: _RunContext, search: TunePlan, untrained: dict[str, str], only: frozenset[str] | None = None
) -> None:
    """One Tune experiment per (case, backend), or for the bases in ``only``; ``untrained``: why each backbone the
    samples need did not train."""
    for index, experiment in enumerate(search.experiments()):
        base = experiment.base
        if only is not None and base.trial_id not in only:
            continue
        if (key := _backbone_key(base)) in untrained:  # every sample could only fail
            ctx.skip([base], STAGE_SEARCH, {base.trial_id: untrained[key]})
            continue
        ctx.progress.extend(search.trials_per_experiment)
        name = f"{ctx.run.run_id}-{STAGE_SEARCH}-{index}-{experiment.base.backend}{ctx.suffix}"
        run_search(
            experiment,
            ctx.run,
            ctx.settings,
            ctx.events(),
            stage=STAGE_SEARCH,
            delivery=ctx.delivery,
            experiment_name=name,
        )


def _rows_by_trial(frame: pd.DataFrame, cache_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The recorded rows of each finished trial (last attempt), as the worker reported them, for replay; their
    configuration with ``cache_dir``, as the resumed trials have it (RunFile.in_cache): a sample recorded in a
    results folder since moved is the same sample (scheduler.replayable_rows compares the configurations)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for record in last_attempts(frame).to_dict("records"):
        row = {str(k): _plain(v) for k, v in record.items()}
        if isinstance(row.get("config_json"), str):
            row["config_json"] = json.dumps({**json.loads(row["config_json"]), "cache_dir": str(cache_dir.resolve())})
        rows.setdefault(str(record["trial_id"]), []).append(row)
    return rows


def this_driver() -> DriverProcess:
    """The process now driving a run, as run.json records it (RunRecord.driver_process)."""
    return DriverProcess(host_name(), os.getpid(), process_start(os.getpid()))


def _plain(value: Any) -> Any:
    """Missing values to None, numpy scalars to Python ones: replayed rows travel as JSON."""
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
