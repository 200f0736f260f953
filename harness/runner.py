"""A run: check inputs, schedule the trials, write the results directory, summarise.

Shared by the CLI and the pytest plugin. Everything that can fail on bad
input (unknown names, missing data) fails in :func:`preflight`, before Ray
starts.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.backbone import NEEDS_BACKBONE, pretrain_trials
from harness.backend import check_capabilities
from harness.config import SHIP_LIMIT_MB, SHIP_POLICIES, TrialConfig
from harness.data.registry import Dataset, check_data_dir, load_dataset
from harness.data.tasks import TaskSpec, derive
from harness.input_pipeline import check_input, transformed_shape
from harness.model_import import model_spec, share_python_path
from harness.provenance import MachineInfo, git_commit, utc_now
from harness.results import ResultsWriter, read_parts, rewrite_csv, safe_name, write_run_json
from harness.scheduler import (
    Delivery,
    RunInterrupted,
    SchedulerSettings,
    cluster_nodes,
    ray_session,
    run_search,
    run_trials,
)
from harness.spec import Dense, Dropout, ModelSpec
from harness.strategies import get_strategy
from harness.summary import Summary, final_rows, last_attempts, summarize, to_markdown
from harness.trial import RunInfo
from harness.tuning import TunePlan, final_trials, tune_markdown
from harness.weights import initializer


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    run_dir: Path
    frame: pd.DataFrame
    summary: Summary
    summary_markdown: str
    wall_time_s: float
    status: str = "finished"  # or "interrupted": resume with --resume RUN_ID

    @property
    def all_ok(self) -> bool:
        return (
            self.status == "finished"
            and bool(len(self.frame))
            and set(final_rows(self.frame)["status"].dropna()) <= {"ok"}
        )


class Progress:
    """What a run tells its caller as it goes (the CLI draws it; tests may record it)."""

    def start(self, total_trials: int) -> None: ...

    def extend(self, more_trials: int) -> None: ...

    def row(self, row: dict[str, Any]) -> None: ...

    def trial_done(self, trial_id: str) -> None: ...

    def stop(self) -> None: ...


def new_run_id(label: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{label}"


def preflight(
    trials: list[TrialConfig],
    data_dir: str | None,
    download: bool = True,
    loaded: dict[str, Dataset] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, dict[str, str]]:
    """Validate every trial and make sure its data is present (downloading if allowed): whatever would fail
    inside a worker fails here, before Ray starts. The CLI and the pytest plugin both call it.

    Returns each dataset's provenance (where its files were found, how they were verified) for run.json;
    raises ValueError / FileNotFoundError on bad input.
    """
    if not trials:
        raise ValueError("Expected at least one trial. Received none: pick a suite or --strategy/--model/--dataset.")
    check_data_dir(data_dir)
    share_python_path([t.model for t in trials])
    check_capabilities(trials)
    datasets: dict[str, Dataset] = loaded if loaded is not None else {}
    provenance: dict[str, dict[str, str]] = {}
    for trial in trials:
        get_strategy(trial.strategy)
        initializer(trial.init)
        trial.optimizer.resolved()
        if trial.dataset not in datasets:
            dataset = load_dataset(trial.dataset, data_dir, download=download)
            datasets[trial.dataset] = dataset
            provenance[trial.dataset] = {
                **dataset.provenance,
                "normalization": dataset.normalization,
                "sizes": f"{len(dataset.y_train)}/{len(dataset.y_val)}/{len(dataset.y_test)}",
            }
        for task in (trial.task, trial.transfer.source_task):
            derived = derive(datasets[trial.dataset], task)
            if len(derived.y_train) == 0:
                raise ValueError(
                    f"Expected training samples in task {task.label if task else 'all'} of {trial.dataset}. Received: none."
                )
            _check_classes(task, datasets[trial.dataset])
            check_input(trial.input, derived.input_shape, datasets[trial.dataset].normalization)
            # Converts framework and user models here (cached for the trials): an unsupported op stops the run
            # before Ray starts.
            spec = model_spec(
                trial.model,
                transformed_shape(trial.input, derived.input_shape),
                derived.num_classes,
                trial.model_options,
                trial.cache_dir or cache_dir,
            )
            if task is trial.task:
                _check_against_model(trial, spec)
    return provenance


def _check_classes(task: TaskSpec | None, dataset: Dataset) -> None:
    if task is not None and task.classes is not None and not set(task.classes) <= set(range(dataset.num_classes)):
        raise ValueError(
            f"Expected classes among 0..{dataset.num_classes - 1} of {dataset.name}. Received: "
            f"classes={task.classes}. Pick --classes / --source-classes from that range."
        )


def _check_against_model(trial: TrialConfig, spec: ModelSpec) -> None:
    """What the strategies would only find out in a worker: options that do not fit the model of the target task."""
    t = trial.transfer
    if trial.strategy in NEEDS_BACKBONE and not isinstance(spec.layers[-1], Dense):
        raise ValueError(
            f"Expected {trial.model}'s last layer to be a Dense head for strategy {trial.strategy}. "
            f"Received: {type(spec.layers[-1]).__name__} {spec.layers[-1].name!r}. Use a model whose "
            "output layer is Dense, or the scratch strategy."
        )
    groups = list(spec.groups())
    if trial.strategy == "freeze_early" and t.freeze_groups >= len(groups):
        raise ValueError(
            f"Expected --freeze-groups < {len(groups)} for {trial.model} (its layer groups are {groups}). "
            f"Received: freeze_groups={t.freeze_groups}, which would leave nothing to train."
        )
    names = [layer.name for layer in spec.layers]
    if trial.strategy == "deep_features" and t.feature_layer is not None and t.feature_layer not in names:
        raise ValueError(
            f"Expected --feature-layer to be a layer of {trial.model}. Received: feature_layer="
            f"{t.feature_layer!r}. Valid names: {names}"
        )
    if trial.mc_dropout_passes:
        if not any(isinstance(layer, Dropout) and layer.rate > 0 for layer in spec.layers):
            raise ValueError(
                f"Expected a model with dropout for --mc-dropout. Received: {trial.model} has no dropout "
                "layer with a rate > 0. Add --dropout RATE, or use a model with dropout (cnn_small)."
            )
        if spec.num_classes < 2:
            raise ValueError(
                "Expected a multi-class task for --mc-dropout (its metrics average softmax "
                f"probabilities). Received: a binary task ({trial.task.label if trial.task else ''}). "
                "Drop --binary-positive or --mc-dropout."
            )


@dataclass
class _RunContext:
    """A run while it executes: where rows go and how stages are named."""

    run: RunInfo
    run_dir: Path
    settings: SchedulerSettings
    writer: ResultsWriter
    progress: Progress
    delivery: Delivery
    suffix: str = ""  # "-resume<n>" when resuming: every Tune experiment of a run has its own name

    def events(self) -> Any:
        writer, progress = self.writer, self.progress

        class Events:
            def on_row(self, row: dict[str, Any]) -> None:
                writer.add_row(row)
                progress.row(row)

            def on_trial_end(self, trial_id: str) -> None:
                writer.finish_trial(trial_id)
                progress.trial_done(trial_id)

        return Events()

    def schedule(
        self, trials: list[TrialConfig], stage: str, schedule: Callable[..., None], label: str | None = None
    ) -> None:
        """One Tune experiment, ``<run_id>-<label or stage>[-resume<n>]``, whose rows carry ``stage``."""
        if trials:
            self.progress.extend(len(trials))
            schedule(
                trials,
                self.run,
                self.settings,
                self.events(),
                stage=stage,
                delivery=self.delivery,
                experiment=f"{self.run.run_id}-{label or stage}{self.suffix}",
            )

    def pretrain_then(
        self, trials: list[TrialConfig], stage: str, schedule: Callable[..., None], finished: set[str]
    ) -> None:
        """Missing shared backbones first (trained once), then the trials that start from them."""
        label = "pretrain" if stage == "trials" else f"pretrain-{stage}"
        self.schedule([t for t in pretrain_trials(trials) if t.trial_id not in finished], "pretrain", schedule, label)
        self.schedule([t for t in trials if t.trial_id not in finished], stage, schedule)


def datasets_to_ship(
    trials: list[TrialConfig],
    policy: str,
    address: str | None,
    limit_mb: float = SHIP_LIMIT_MB,
    loaded: dict[str, Dataset] | None = None,
) -> dict[str, Dataset]:
    """Datasets that travel through Ray's object store: ``always``, ``never``, or ``auto`` (on a cluster, when
    the arrays are at most ``limit_mb``; larger ones are read on each node from a path valid there).
    ``loaded``: datasets the caller already holds (preflight's), so nothing is read twice."""
    if policy not in SHIP_POLICIES:
        raise ValueError(f"Expected --ship-data in {list(SHIP_POLICIES)}. Received: {policy!r}.")
    if policy == "never" or (policy == "auto" and not address):
        return {}
    shipped: dict[str, Dataset] = {}
    for trial in trials:
        if trial.dataset in shipped:
            continue
        dataset = (loaded or {}).get(trial.dataset) or load_dataset(trial.dataset, trial.data_dir, download=False)
        if policy == "always" or dataset.nbytes <= limit_mb * 2**20:
            shipped[trial.dataset] = dataset
    return shipped


def execution_settings(
    results_dir: Path, recorded: dict[str, Any], given: dict[str, Any], verbose: bool = False
) -> SchedulerSettings:
    """Scheduler settings from the options ``given`` (None: not given), else the ``recorded`` ones (a run's
    run.json ``scheduler``, or the defaults of a new run): a resumed run honours what is given, 0 included."""

    def pick(name: str, fallback: Any = None) -> Any:
        return given[name] if given.get(name) is not None else recorded.get(name, fallback)

    return SchedulerSettings(
        storage_dir=(results_dir / "_ray").resolve(),
        cpus_per_trial=pick("cpus_per_trial", 1),
        gpus_per_trial=pick("gpus_per_trial", 0.0),
        address=pick("address"),
        max_concurrent=pick("max_concurrent"),
        max_failures=pick("max_failures", 0),
        verbose=verbose,
    )


def _cache_dir(trials: list[TrialConfig], results_dir: Path) -> list[TrialConfig]:
    # Shared backbones and features live in one cache beside the runs, so later runs reuse them too.
    cache_dir = str((results_dir / "_cache").resolve())
    return [t if t.cache_dir else replace(t, cache_dir=cache_dir) for t in trials]


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
    ship: dict[str, Dataset] | None = None,
    plan: TunePlan | None = None,
) -> RunOutcome:
    """Run ``trials`` (or, with ``plan``, a search per case and backend and then each backend's best config)."""
    trials = _cache_dir(trials, results_dir)
    if plan is not None:
        plan = replace(plan, bases=tuple(_cache_dir(list(plan.bases), results_dir)))
    run_dir = (results_dir / run_id).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"Expected a new run id. Received: {run_id!r}, whose directory {run_dir} already holds results."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunInfo(run_id=run_id, git_commit=git_commit())
    machine = MachineInfo.current()
    info: dict[str, Any] = {
        "run_id": run_id,
        "kind": "tune" if plan else "run",
        "status": "running",
        "started": utc_now(),
        "command": command or sys.argv,
        "title": title,
        "git_commit": run.git_commit,
        "driver_host": machine.host,
        "driver_cpu": machine.cpu,
        "python_version": machine.python_version,
        "datasets": data_provenance or {},
        "data_delivery": {name: "object store" for name in (ship or {})},
        "trials": [t.to_dict() for t in trials],
        "pretrain_trials": [t.to_dict() for t in pretrain_trials(trials)],
        "tune": plan.to_dict() if plan else None,
        "scheduler": {
            "cpus_per_trial": settings.cpus_per_trial,
            "gpus_per_trial": settings.gpus_per_trial,
            "address": settings.address,
            "max_concurrent": settings.max_concurrent,
            "max_failures": settings.max_failures,
        },
    }
    write_run_json(run_dir, info)
    ctx = _RunContext(
        run, run_dir, settings, ResultsWriter(run_dir), progress or Progress(), Delivery(datasets=dict(ship or {}))
    )
    return _carry_out(ctx, info, trials, plan, schedule, title, finished=set())


def resume(
    results_dir: Path,
    run_id: str,
    settings: SchedulerSettings | None = None,
    progress: Progress | None = None,
    schedule: Callable[..., None] = run_trials,
    ship_policy: str = "auto",
) -> RunOutcome:
    """Finish an interrupted run: trials whose rows are complete are kept (not re-run); a search replays them to
    its searcher and scheduler; interrupted trials lose their partial rows and run again."""
    run_dir = (results_dir / run_id).resolve()
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise ValueError(
            f"Expected a run directory with run.json to resume. Received: {run_dir} has none. Check --results-dir and the run id."
        )
    info = json.loads(info_path.read_text())
    if info.get("status") == "finished":
        raise ValueError(
            f"Expected an interrupted run. Received: {run_id!r} finished at {info.get('finished')}. Nothing to resume."
        )
    settings = settings or execution_settings(results_dir, info["scheduler"], {})
    trials = [TrialConfig.from_dict(t) for t in info["trials"]]
    plan = TunePlan.from_dict(info["tune"]) if info.get("tune") else None
    kept = read_parts(run_dir)
    # Failed trials run again: Ctrl-C reaches the workers too, so a failure may be the interruption itself.
    failed = sorted(final_rows(kept).query("status == 'failed'")["trial_id"]) if len(kept) else []
    for trial_id in failed:
        (run_dir / "parts" / f"{safe_name(trial_id)}.parquet").unlink(missing_ok=True)
    kept = kept[~kept["trial_id"].isin(failed)]
    discarded = rewrite_csv(run_dir, kept)
    finished = set(kept["trial_id"].unique()) if len(kept) else set()
    resumes = info.setdefault("resumes", [])
    resumes.append(
        {
            "at": utc_now(),
            "finished_trials_kept": len(finished),
            "failed_trials_rerun": failed,
            "partial_rows_discarded": discarded,
            "command": sys.argv,
        }
    )
    info["status"] = "running"
    write_run_json(run_dir, info)
    run = RunInfo(run_id=run_id, git_commit=git_commit())
    ship = datasets_to_ship(trials + list(plan.bases if plan else ()), ship_policy, settings.address)
    ctx = _RunContext(
        run,
        run_dir,
        settings,
        ResultsWriter(run_dir),
        progress or Progress(),
        Delivery(datasets=ship),
        suffix=f"-resume{len(resumes)}",
    )
    return _carry_out(
        ctx, info, trials, plan, schedule, info.get("title", "xfbench comparison"), finished=finished, kept=kept
    )


def _carry_out(
    ctx: _RunContext,
    info: dict[str, Any],
    trials: list[TrialConfig],
    plan: TunePlan | None,
    schedule: Callable[..., None],
    title: str,
    finished: set[str],
    kept: pd.DataFrame | None = None,
) -> RunOutcome:
    start = time.perf_counter()
    ctx.progress.start(0)
    status = "finished"
    try:
        with ray_session(ctx.settings):
            info["ray_nodes"] = cluster_nodes()
            write_run_json(ctx.run_dir, info)
            if plan is None:
                ctx.pretrain_then(trials, "trials", schedule, finished)
            else:
                _tune_stages(ctx, plan, finished, kept)
    except (KeyboardInterrupt, RunInterrupted):
        status = "interrupted"
    finally:
        ctx.progress.stop()
        frame = ctx.writer.finalize()
    wall = time.perf_counter() - start
    final_stage = frame[frame["stage"] == "final"] if plan is not None else frame
    summary = summarize(final_stage)
    markdown = to_markdown(summary, f"{title} — run {ctx.run.run_id}")
    if plan is not None:
        markdown += "\n" + tune_markdown(frame, plan)
    (ctx.run_dir / "summary.md").write_text(markdown)
    versions = frame.groupby("backend")["framework_version"].first().to_dict() if len(frame) else {}
    info.update(
        status=status,
        finished=utc_now() if status == "finished" else None,
        wall_time_s=round(wall, 3),
        framework_versions=versions,
        rows=len(frame),
        trial_status=final_rows(frame).groupby("status")["trial_id"].nunique().to_dict() if len(frame) else {},
    )
    write_run_json(ctx.run_dir, info)
    return RunOutcome(ctx.run.run_id, ctx.run_dir, frame, summary, markdown, wall, status)


def _tune_stages(ctx: _RunContext, plan: TunePlan, finished: set[str], kept: pd.DataFrame | None) -> None:
    """Backbones, then one search experiment per (case, backend), then every backend's best config with K seeds."""
    ctx.schedule([t for t in pretrain_trials(list(plan.bases)) if t.trial_id not in finished], "pretrain", run_trials)
    replay = _rows_by_trial(kept[kept["stage"] == "search"]) if kept is not None and len(kept) else {}
    for index, experiment in enumerate(plan.experiments()):
        ctx.progress.extend(plan.trials_per_experiment)
        delivery = replace(ctx.delivery, replay=replay)
        run_search(
            experiment,
            ctx.run,
            ctx.settings,
            ctx.events(),
            stage="search",
            delivery=delivery,
            experiment_name=f"{ctx.run.run_id}-search-{index}-{experiment.base.backend}{ctx.suffix}",
        )
    finals = final_trials(read_parts(ctx.run_dir), plan)
    ctx.pretrain_then(finals, "final", run_trials, finished)


def _rows_by_trial(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The recorded rows of each finished trial (last attempt), as the worker reported them, for replay."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for record in last_attempts(frame).to_dict("records"):
        clean = {k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v) for k, v in record.items()}
        rows.setdefault(record["trial_id"], []).append(_plain(clean))
    return rows


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars to Python ones: replayed rows travel as JSON."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
