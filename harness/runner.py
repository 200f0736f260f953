"""A run: check inputs, schedule the trials, write the results directory, summarise.

Shared by the CLI and the pytest plugin. Everything that can fail on bad
input (unknown names, missing data) fails in :func:`preflight`, before Ray
starts.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from harness.config import TrialConfig
from harness.backbone import pretrain_trials
from harness.data.registry import Dataset, check_data_dir, load_dataset
from harness.data.tasks import derive
from harness.models import build_model
from harness.provenance import MachineInfo, git_commit, utc_now
from harness.results import ResultsWriter, write_run_json
from harness.scheduler import SchedulerSettings, run_trials
from harness.strategies import get_strategy
from harness.summary import Summary, summarize, to_markdown
from harness.trial import RunInfo
from harness.weights import initializer


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    run_dir: Path
    frame: pd.DataFrame
    summary: Summary
    summary_markdown: str
    wall_time_s: float

    @property
    def all_ok(self) -> bool:
        return bool(len(self.frame)) and set(self.frame["status"].dropna()) <= {"ok"}


class Progress:
    """What a run tells its caller as it goes (the CLI draws it; tests may record it)."""

    def start(self, total_trials: int) -> None: ...

    def row(self, row: dict[str, Any]) -> None: ...

    def trial_done(self, trial_id: str) -> None: ...

    def stop(self) -> None: ...


def new_run_id(label: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{label}"


def preflight(trials: list[TrialConfig], data_dir: str | None, download: bool = True) -> dict[str, dict[str, str]]:
    """Validate every trial and make sure its data is present (downloading if allowed).

    Returns each dataset's provenance (where its files were found, how they were verified) for run.json;
    raises ValueError / FileNotFoundError on bad input.
    """
    if not trials:
        raise ValueError("Expected at least one trial. Received none: pick a suite or --strategy/--model/--dataset.")
    check_data_dir(data_dir)
    datasets: dict[str, Dataset] = {}
    provenance: dict[str, dict[str, str]] = {}
    for trial in trials:
        get_strategy(trial.strategy)
        initializer(trial.init)
        trial.optimizer.resolved()
        if trial.dataset not in datasets:
            dataset = load_dataset(trial.dataset, data_dir, download=download)
            datasets[trial.dataset] = dataset
            provenance[trial.dataset] = {**dataset.provenance, "normalization": dataset.normalization,
                                         "sizes": f"{len(dataset.y_train)}/{len(dataset.y_val)}/{len(dataset.y_test)}"}
        for task in (trial.task, trial.transfer.source_task):
            derived = derive(datasets[trial.dataset], task)
            if len(derived.y_train) == 0:
                raise ValueError(f"Expected training samples in task {task.label if task else 'all'} of {trial.dataset}. Received: none.")
            build_model(trial.model, derived.input_shape, derived.num_classes, trial.model_options)
    return provenance


def execute(
    trials: list[TrialConfig],
    *,
    results_dir: Path,
    run_id: str,
    settings: SchedulerSettings,
    progress: Progress | None = None,
    title: str = "xfbench comparison",
    command: list[str] | None = None,
    data_provenance: dict[str, dict[str, str]] | None = None,
    schedule: Callable[..., None] = run_trials,
) -> RunOutcome:
    progress = progress or Progress()
    # Shared backbones and features live in one cache beside the runs, so later runs reuse them too.
    cache_dir = str((results_dir / "_cache").resolve())
    trials = [t if t.cache_dir else replace(t, cache_dir=cache_dir) for t in trials]
    pretrain = pretrain_trials(trials)
    run_dir = (results_dir / run_id).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"Expected a new run id. Received: {run_id!r}, whose directory {run_dir} already holds results.")
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunInfo(run_id=run_id, git_commit=git_commit())
    machine = MachineInfo.current()
    info: dict[str, Any] = {
        "run_id": run_id, "status": "running", "started": utc_now(), "command": command or sys.argv,
        "git_commit": run.git_commit, "driver_host": machine.host, "driver_cpu": machine.cpu,
        "python_version": machine.python_version, "datasets": data_provenance or {},
        "trials": [t.to_dict() for t in trials], "pretrain_trials": [t.to_dict() for t in pretrain],
        "scheduler": {"cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial,
                      "address": settings.address, "max_concurrent": settings.max_concurrent},
    }
    write_run_json(run_dir, info)
    writer = ResultsWriter(run_dir)

    class Events:
        def on_row(self, row: dict[str, Any]) -> None:
            writer.add_row(row)
            progress.row(row)

        def on_trial_end(self, trial_id: str) -> None:
            writer.finish_trial(trial_id)
            progress.trial_done(trial_id)

    start = time.perf_counter()
    progress.start(len(pretrain) + len(trials))
    try:
        if pretrain:  # first every missing backbone, trained once, then the trials that start from them
            schedule(pretrain, run, settings, Events(), stage="pretrain")
        schedule(trials, run, settings, Events(), stage="trials")
    finally:
        progress.stop()
        frame = writer.finalize()
    wall = time.perf_counter() - start
    summary = summarize(frame)
    markdown = to_markdown(summary, f"{title} — run {run_id}")
    (run_dir / "summary.md").write_text(markdown)
    versions = frame.groupby("backend")["framework_version"].first().to_dict() if len(frame) else {}
    info.update(status="finished", finished=utc_now(), wall_time_s=round(wall, 3), framework_versions=versions,
                rows=len(frame), trial_status=frame.groupby("status")["trial_id"].nunique().to_dict() if len(frame) else {})
    write_run_json(run_dir, info)
    return RunOutcome(run_id, run_dir, frame, summary, markdown, wall)
