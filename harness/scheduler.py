"""Ray Tune scheduling: the only harness module that imports Ray.

Every trial runs as its own Tune trial in a fresh Ray worker process
(``reuse_actors=False``), so each process imports exactly one framework.
Rows travel back to the driver through ``tune.report`` and are handed to the
caller's :class:`TrialEvents` as they arrive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from harness.config import TrialConfig
from harness.trial import RunInfo, failure_row, format_exception, run_trial

ROW_KEY = "xfbench_row_json"


class TrialEvents(Protocol):
    def on_row(self, row: dict[str, Any]) -> None: ...

    def on_trial_end(self, trial_id: str) -> None: ...


@dataclass(frozen=True)
class SchedulerSettings:
    storage_dir: Path  # absolute: Tune's trials change directory
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    max_concurrent: int | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        if not self.storage_dir.is_absolute():
            raise ValueError(f"Expected an absolute storage_dir. Received: {self.storage_dir}.")


def _trainable(config: dict[str, Any]) -> None:
    from ray import tune

    trial = TrialConfig.from_dict(config["job"]["trial"])
    run = RunInfo(**config["run"])

    def report(row: dict[str, Any]) -> None:
        tune.report({ROW_KEY: json.dumps(row), "epoch": row["epoch"] or 0, "val_acc": row.get("val_acc")})

    try:
        run_trial(trial, run, report)
    except Exception as exc:
        # Record the error text as a row before Tune marks the trial failed.
        report(failure_row(trial, run, format_exception(exc)))
        raise


def _make_callback(events: TrialEvents, configs: dict[str, TrialConfig], run: RunInfo):
    from ray import tune

    class RowForwarder(tune.Callback):
        """Forwards each reported row to the driver's sinks. The sinks are instance state, not closure
        variables, because Tune pickles its callbacks into the experiment state; they stay behind."""

        def __init__(self, sinks: TrialEvents, trial_configs: dict[str, TrialConfig], run_info: RunInfo) -> None:
            self.sinks: TrialEvents | None = sinks
            self.configs = trial_configs
            self.run_info = run_info
            self.failed_with_row: set[str] = set()

        def __getstate__(self) -> dict[str, Any]:
            return {**self.__dict__, "sinks": None}

        def _events(self) -> TrialEvents:
            assert self.sinks is not None, "callback restored without its event sink"
            return self.sinks

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            row = json.loads(result[ROW_KEY])
            if row["status"] == "failed":
                self.failed_with_row.add(row["trial_id"])
            self._events().on_row(row)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._events().on_trial_end(trial.config["job"]["trial_id"])

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            trial_id = trial.config["job"]["trial_id"]
            if trial_id not in self.failed_with_row:  # killed process: no row reached us, record one here
                message = str(getattr(trial, "error_message", None) or "").strip()
                summary = message.splitlines()[-1] if message else "trial process died without reporting an error"
                self._events().on_row(failure_row(self.configs[trial_id], self.run_info, summary))
            self._events().on_trial_end(trial_id)

    return RowForwarder(events, configs, run)


@contextlib.contextmanager
def _tune_environment(verbose: bool) -> Iterator[None]:
    """Scoped env for Tune in the driver: no CSV/JSON/TensorBoard loggers, quiet unless verbose."""
    saved = {k: os.environ.get(k) for k in ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "RAY_AIR_NEW_OUTPUT", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S")}
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
    if not verbose:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_trials(trials: list[TrialConfig], run: RunInfo, settings: SchedulerSettings, events: TrialEvents, stage: str = "trials") -> None:
    """Run every trial through one Ray Tune experiment (named ``<run_id>-<stage>``); returns when all have finished or failed."""
    import ray
    from ray import tune

    configs = {t.trial_id: t for t in trials}
    if len(configs) != len(trials):
        raise ValueError("Expected unique trial ids. Received duplicates: check suites for repeated (model, dataset, backend, seed).")
    started_here = not ray.is_initialized()
    if started_here:
        worker_env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        init_args: dict[str, Any] = dict(
            include_dashboard=False, log_to_driver=settings.verbose, configure_logging=True,
            logging_level=logging.INFO if settings.verbose else logging.ERROR,
            runtime_env={"env_vars": worker_env},
        )
        if settings.address:
            ray.init(address=settings.address, **init_args)
        else:
            ray.init(num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **init_args)
    try:
        resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
        param_space = {
            "job": tune.grid_search([{"trial": t.to_dict(), "trial_id": t.trial_id} for t in trials]),
            "run": asdict(run),
        }
        with _tune_environment(settings.verbose):
            tuner = tune.Tuner(
                tune.with_resources(_trainable, resources),
                param_space=param_space,
                tune_config=tune.TuneConfig(max_concurrent_trials=settings.max_concurrent, reuse_actors=False,
                                            trial_name_creator=lambda t: t.config["job"]["trial_id"],
                                            trial_dirname_creator=lambda t: t.config["job"]["trial_id"]),
                run_config=tune.RunConfig(
                    name=f"{run.run_id}-{stage}", storage_path=str(settings.storage_dir),
                    callbacks=[_make_callback(events, configs, run)], verbose=1 if settings.verbose else 0,
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
            tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
