"""One trial, framework-free: load data, create the backend, run the strategy, emit rows.

This runs inside a Ray worker process (or any process: tests call it
directly); the backend's framework is imported here, one per process.
"""

from __future__ import annotations

import gc
import math
import os
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.backend import frameworks_imported, load_backend
from harness.config import TrialConfig
from harness.data.registry import Dataset, check_content, load_dataset
from harness.exactness import inexact_text
from harness.input_pipeline import pipeline_data
from harness.model_cost import model_cost
from harness.model_import import check_model_content
from harness.provenance import MachineInfo, framework_env, utc_now
from harness.spec import ModelSpec
from harness.strategies import StrategyContext, get_strategy
from harness.training import EpochRecord

RowSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    git_commit: str


def base_row(config: TrialConfig, run: RunInfo, machine: MachineInfo) -> dict[str, Any]:
    """The columns every row of a trial shares (framework fields are filled once the backend exists)."""
    return {
        "run_id": run.run_id,
        "trial_id": config.trial_id,
        "suite": config.suite,
        "strategy": config.strategy,
        "model": config.model,
        "dataset": config.dataset,
        "variant": config.variant_label,  # the sample or `tuned` after the case's variant
        "backend": config.backend,
        "framework_version": "",
        "seed": config.seed,
        "config_json": config.to_json(),
        "git_commit": run.git_commit,
        "host": machine.host,
        "cpu": machine.cpu,
        "gpu": "",
        "device": config.runtime.device,
        "threads": config.runtime.threads,
        "python_version": machine.python_version,
        "framework_env": framework_env(config.backend),  # as this process has them: a worker's, its trial's
        "error": "",
    }


def failure_row(
    config: TrialConfig, run: RunInfo, error: str, status: str = "failed", machine: MachineInfo | None = None
) -> dict[str, Any]:
    """A row recording a trial that produced no epochs (or stopped), with its error text; written on the worker
    (``machine`` None: this one) or by the driver for a worker that died (``MachineInfo.unknown()``)."""
    row = base_row(config, run, machine or MachineInfo.current())
    row.update(
        status=status,
        error=error,
        phase="",
        epoch=None,
        warmup=False,
        timestamp=utc_now("milliseconds"),
        test_acc=math.nan,
    )
    if machine is None:  # this worker's: which process failed, with what imported (as its epoch rows say)
        row.update(worker_pid=os.getpid(), worker_frameworks=",".join(frameworks_imported()))
    return row


def skipped_row(config: TrialConfig, run: RunInfo, reason: str) -> dict[str, Any]:
    """The one row of a trial the driver did not start because what it needs cannot exist (its backbone's pretrain
    trial failed or diverged): no worker ran it, so no machine or framework version is known."""
    return failure_row(config, run, reason, status="skipped", machine=MachineInfo.unknown())


def run_trial(config: TrialConfig, run: RunInfo, sink: RowSink, dataset: Dataset | None = None) -> str:
    """Run one trial; every epoch record becomes a row sent to ``sink``. Returns the final status.

    ``dataset``: the run's own data, shipped with the trial by its driver (Ray's object store), which checked it
    against the trial's data_key; None reads it from this node's files and checks them here.
    """
    try:
        return _run_trial(config, run, sink, dataset)
    finally:
        # The trial's backend (model, optimizer, data splits) must not outlive it in a warm worker. Reference
        # counting alone does not free it: torch's first use_deterministic_algorithms imports
        # torch._inductor.config, which leaves a reference cycle holding the frames of the backend's __init__
        # and of this trial, so the first trial's backend stayed alive until a full collection, which nothing
        # forced on CPU. Here, after the strategy's last timed epoch, with _run_trial's locals gone.
        gc.collect()


def _run_trial(config: TrialConfig, run: RunInfo, sink: RowSink, dataset: Dataset | None) -> str:
    common = base_row(config, run, MachineInfo.current())
    if dataset is None:  # this node's own files must hold what the run began with; a shipped dataset is the driver's
        dataset = load_dataset(config.dataset, config.data_dir, download=False)
        check_content(dataset, config.data_key)
    check_model_content(config.model, config.model_key)
    backend = load_backend(config.backend, config.runtime)
    # Which process ran the trial, and what it had imported: a warm worker runs many trials of one backend.
    common.update(worker_pid=os.getpid(), worker_frameworks=",".join(frameworks_imported()))
    common["framework_version"] = backend.framework_version()
    common["gpu"] = backend.device_name() if config.runtime.device == "gpu" else ""

    def emit(record: EpochRecord) -> None:
        fields = asdict(record)
        extra = fields.pop("extra")
        memory = {"gpu_peak_mib": backend.peak_memory_mib()}
        sink({**common, **fields, **extra, **memory, "timestamp": utc_now("milliseconds")})

    def on_model(spec: ModelSpec, timed_macs: int) -> None:
        cost = model_cost(spec)
        common.update(
            params=cost.params, forward_macs=cost.forward_macs, step_macs=timed_macs, inexact=inexact_text(config, spec)
        )

    strategy = get_strategy(config.strategy)
    data = pipeline_data(config.input, dataset)  # CIFAR-10 for pretrained weights: its pixels, not standardised
    return strategy(StrategyContext(config=config, backend=backend, dataset=data, sink=emit, on_model=on_model))


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
