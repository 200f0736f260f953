"""``xfbench export RUN --mlflow URI``: a run's trials as MLflow runs, through MLflow's own client.

One parent MLflow run per xfbench run (its provenance as tags, summary.md and report.html as artefacts) and one
nested MLflow run per trial, tagged with what identifies it (a spec-file model by its file name, as the tables
name it): its config flattened into parameters (``optimizer.lr``, ...), its per-epoch metrics
with step = the epoch's position in the trial (phases follow each other, so a second phase does not overwrite
the first's epochs; each step's ``epoch`` and ``phase_index`` into the tag ``xfbench.phases`` say which it was),
its final test accuracy, its sizes as numbers and its steady-state medians as summary.md reports them. Every results
column leaves as a tag, a parameter or a metric, or is named in :data:`NOT_EXPORTED` with the reason.
MLflow is an optional extra (``pip install 'xfbench[mlflow]'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harness.config import model_label
from harness.errors import InputError
from harness.mlflow_uri import (
    artifact_problem,
    check_tracking_uri,
    database_server,
    normalised_uri,
    one_line,
    sqlite_file,
    store_errors,
    tracking_client,
    unusable_uri,
    without_password,
)
from harness.plan import UNFINISHED_STATUSES, RunFileError
from harness.summary import in_timed_phase, last_attempts, recorded_text, steady_rows, timed_phase, why_not_ok
from harness.user_files import read_run_json, read_run_rows

# per step, where the row holds a finite value; warmup as 1/0 (True/False), so MLflow's charts show which epochs'
# time holds tracing and compilation
EPOCH_METRICS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "train_reg_loss",
    "lr",
    "epoch_time_s",
    "samples_per_s",
    "eval_time_s",
    "gpu_peak_mib",
    "other_cpus",
    "warmup",
    "epoch",
)
# the step's phase as its position in the tag xfbench.phases (0: the first): a transfer trial's frozen and unfrozen
# epochs are steps 1..2N, and nothing else said which step was which
PHASE_INDEX = "phase_index"
FINAL_METRICS = ("test_acc", "mc_test_acc", "mc_mean_prob", "mc_pred_std")
# the test accuracy of the backbone xfbench trained for the trial, on its source task: its pretrain trial measured it,
# whatever this trial's end (suites put a bar on it, SuiteCase.min_backbone_acc)
BACKBONE_METRICS = ("backbone_test_acc",)
# the attempt tells a retried trial's run (its last attempt's rows) from one that ran once
TRIAL_TAGS = (
    "trial_id", "stage", "attempt", "suite", "strategy", "model", "variant", "dataset", "backend", "seed",
    "framework_version",
)  # fmt: skip
# Where, on what and by which commit a trial ran (a resume may run another commit than run.json's, the parent run's),
# in which worker process (a warm worker's later trials skip its imports), with which framework variables set, and
# what its network and weights are: MLflow's runs are filtered and grouped by them as the results' own columns are;
# tagged where recorded
RECORD_TAGS = (
    "host", "node", "cpu", "gpu", "device", "threads", "python_version", "params", "forward_macs", "weights",
    "weights_sha256", "inexact", "framework_env", "git_commit", "worker_pid", "worker_trials_before",
    "worker_frameworks",
)  # fmt: skip
# What a phase trains and what its step costs (step_macs reads samples/s as GFLOP/s): one value, or where the trial's
# phases differ, each phase's ("frozen 1,000; unfrozen 5,000" as "frozen: 1000, unfrozen: 5000")
PHASE_TAGS = ("trainable_params", "frozen_params", "step_macs")
# Sizes also logged as metrics (tags are text: MLflow could not filter `params > 1e6` nor chart them), one value each
# at the trial's last step; the phase sizes per phase where the phases differ (trainable_params.frozen, ...)
SIZE_METRICS = ("params", "forward_macs", "threads")
# The trial's steady-state epoch time and samples/s, as summary.md reports a case's (harness.summary: the medians of
# the epochs after each phase's warm-up, of its timed phase): MLflow's table of runs shows a metric's last step, the
# last epoch's time alone
STEADY_METRICS = {"epoch_time_s": "steady_epoch_time_s_median", "samples_per_s": "steady_samples_per_s_median"}
DETAIL_TAG = "xfbench.details."  # a tag per key of the rows' details_json (xfbench.details.backbone, ...)
# The results columns (harness.results.COLUMNS) that leave under another name than the tag xfbench.<column> or the
# metric <column>: a tag, or a family of tags by its prefix
EXPORTED_AS = {"phase": "xfbench.phases", "details_json": DETAIL_TAG}
CONFIG_COLUMN = "config_json"  # the trial's parameters: its settings flattened (optimizer.lr, ...)
# The results columns that are no tag, parameter or metric of the export, and why
NOT_EXPORTED = {
    "timestamp": "no value of its own: it stamps each metric step (MLflow's wall-time axis), and the trial's run "
    "starts and ends when its rows say",
}
PARAM_LIMIT = 6000  # MLflow's longest parameter value
TAG_LIMIT = 5000  # of a tag's text, under MLflow's limit (its tag values hold 8000 characters)
ERROR_TAG_LIMIT = TAG_LIMIT  # of a trial's error text
EXPERIMENT_NAME_LIMIT = 500  # MLflow's longest experiment name, where its constant cannot be read
ARTIFACTS = ("summary.md", "report.html", "run.json")  # the run's files the parent run carries


@dataclass(frozen=True)
class Exported:
    experiment_id: str
    parent_run_id: str
    trial_runs: dict[str, str]  # trial id -> MLflow run id
    outcome: Literal["exported", "unchanged", "updated", "replaced"] = "exported"
    run_status: str = "unknown"  # run.json's: running | finished | interrupted | unknown (not recorded)
    artifact_location: str = ""  # the experiment's, where the run's files went ("" where the store gives none)


@dataclass(frozen=True)
class EarlierExport:
    """What the experiment already holds of this run: the MLflow runs tagged with its key, parent first."""

    parent_run_id: str
    parent_run_ids: tuple[str, ...]  # more than one: exports of the run written at once (two CI jobs)
    run_ids: tuple[str, ...]  # the parent and every trial's run
    trial_runs: dict[str, str]
    complete: bool  # the parent was marked complete after its last trial was logged
    rows_sha256: str
    run_status: str  # the run's status when it was exported (tag xfbench.run_status); "" before it was tagged


def run_key(info: dict[str, Any], run_dir: Path) -> str:
    """Which xfbench run an MLflow run came from: its id, when it started and on which host (two machines' nightly
    runs may share an id). Hex only, so it can be searched for without quoting. A run without run.json (an older
    run's) is known by its folder: every such run's empty fields once made one key, and --replace deleted another
    run's export."""
    fields = ("run_id", "started", "driver_host")
    identity = "\n".join(str(info.get(k, "")) for k in fields) if any(info.get(k) for k in fields) else ""
    identity = identity or f"folder:{run_dir.resolve()}"  # the keys of runs with a run.json are as they were
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def rows_fingerprint(frame: pd.DataFrame) -> str:
    """What the export holds of the run's rows: a resumed run, with more rows, exports differently. Only the columns
    that hold a value, in the order of their names: reading adds the columns the schema gained since a table was
    written, empty, and hashing those made an unchanged run's earlier export read as changed."""
    held = sorted(str(c) for c in frame.columns if _holds_values(frame[c]))
    return hashlib.sha256(frame[held].to_csv(index=False).encode()).hexdigest()


def _holds_values(column: pd.Series) -> bool:
    """Whether any row has a value in ``column`` (an empty text is none: reading fills absent text keys with it)."""
    return bool((column.notna() & column.astype("string").ne("").fillna(False)).any())


def _earlier_fingerprint(frame: pd.DataFrame) -> str:
    """:func:`rows_fingerprint` as exports before 2026-12-05 took it, of every column: their unchanged runs stay
    unchanged while the schema has not grown since."""
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def _earlier_export(client: Any, experiment_id: str, key: str) -> EarlierExport | None:
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [experiment_id], f"tags.`xfbench.run_key` = '{key}'", run_view_type=ViewType.ACTIVE_ONLY, max_results=50_000
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if not parents:
        return None
    parent = parents[0]
    trials = {r.data.tags.get("xfbench.trial_id", ""): r.info.run_id for r in runs if r not in parents}
    return EarlierExport(
        parent_run_id=parent.info.run_id,
        parent_run_ids=tuple(r.info.run_id for r in parents),
        run_ids=tuple(r.info.run_id for r in runs),
        trial_runs=trials,
        complete=parent.data.tags.get("xfbench.export") == "complete" and len(parents) == 1,
        rows_sha256=parent.data.tags.get("xfbench.rows_sha256", ""),
        run_status=parent.data.tags.get("xfbench.run_status", ""),
    )


def _check_replaceable(earlier: EarlierExport, replace: bool, run_id: str, experiment: str, uri: str) -> None:
    if replace:
        return
    parents = earlier.parent_run_ids
    if len(parents) > 1:  # not one export that stopped: several wrote the same run at once (two CI jobs)
        found, them = (
            f"{len(parents)} exports of it, written at once (parent runs {', '.join(parents)})",
            "them and write this one once",
        )
    else:
        why = (
            "it is incomplete (an export that stopped)" if not earlier.complete else "the run's rows have changed since"
        )
        found, them = (
            f"an earlier export of it (parent run {earlier.parent_run_id}), and {why}",
            "that export and write this one",
        )
    raise InputError(
        f"Expected run {run_id} in MLflow experiment {experiment!r} at {uri} as it is now, or not at all. Received: "
        f"{found}. To fix, pass --replace to delete {them} (MLflow keeps deleted runs until `mlflow gc`), or give "
        "another --experiment."
    )


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config dict -> {"optimizer.lr": "0.01", ...}; lists as JSON."""
    out: dict[str, str] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = (json.dumps(value) if isinstance(value, list | tuple) else str(value))[:PARAM_LIMIT]
    return out


# The tests' fault injection (a trial that sets none records 0.0 / None) and the run's own cache folder: not
# settings a user chose, and only clutter MLflow's comparison of runs' parameters.
_UNSET_INJECTION = ("0.0", "None")


def _machinery(key: str, value: str) -> bool:
    return key == "cache_dir" or (key.startswith("runtime.inject_") and value in _UNSET_INJECTION)


def _milliseconds(timestamp: Any) -> int:
    """A row's ISO 8601 UTC time as MLflow's metric timestamp (ms since the epoch); 0 where the row has none."""
    when = pd.to_datetime(timestamp, utc=True, errors="coerce") if isinstance(timestamp, str) else pd.NaT
    return 0 if pd.isna(when) else int(when.timestamp() * 1000)


def _metrics(trial: pd.DataFrame) -> list[Any]:
    """Each epoch's metrics at step = its position in the trial, stamped with the time its row was written (so
    MLflow's wall-time axis shows when the epochs ran), with its phase's index (:func:`_phases`). Finite values only,
    but for a diverged epoch's loss, logged as it is (MLflow's SQL stores keep NaN, and store infinity as the
    largest double): it shows the divergence."""
    from mlflow.entities import Metric

    metrics = []
    phases = _phases(trial)
    for step, (_, row) in enumerate(trial.iterrows(), start=1):
        stamp = _milliseconds(row.get("timestamp"))
        diverged = row.get("status") == "diverged"
        for name in EPOCH_METRICS:
            value = row.get(name)
            if value is None:
                continue
            number = float(value) if not pd.isna(value) else math.nan
            if math.isfinite(number) or (diverged and name in ("train_loss", "val_loss")):
                metrics.append(Metric(name, number, stamp, step))
        phase = recorded_text(row.get("phase"))
        if phase and not pd.isna(row.get("epoch")):  # a skipped trial's row trained no epoch
            metrics.append(Metric(PHASE_INDEX, float(phases.index(phase)), stamp, step))
    return metrics + _final_metrics(trial) + _size_metrics(trial) + _steady_metrics(trial)


def _final_metrics(trial: pd.DataFrame) -> list[Any]:
    """The trial's test accuracy (and MC-dropout figures) where it ended ok, and its backbone's test accuracy where
    recorded, at the trial's last step."""
    from mlflow.entities import Metric

    final, metrics = trial.iloc[-1], []
    stamp = _milliseconds(final.get("timestamp"))
    # a diverged trial's test accuracy was measured on a NaN model: the tables say "n/a", MLflow showed a figure
    # a search sample's, recorded before samples stopped scoring the test split, is left out: picked by validation
    scored = final.get("status") == "ok" and final.get("stage") != "search"
    for name in FINAL_METRICS if scored else ():
        if name in final and not pd.isna(final[name]):
            metrics.append(Metric(name, float(final[name]), stamp, len(trial)))
    for name in (n for n in BACKBONE_METRICS if n in trial):
        recorded = pd.to_numeric(trial[name], errors="coerce").dropna()
        if len(recorded):
            metrics.append(Metric(name, float(recorded.iloc[-1]), stamp, len(trial)))
    return metrics


def _phases(trial: pd.DataFrame) -> list[str]:
    """The trial's phases in the order it trained them ('' left out): the tag xfbench.phases, which each step's
    phase_index points into."""
    return [p for p in dict.fromkeys(map(recorded_text, trial["phase"] if "phase" in trial else ())) if p]


def _phase_tags(trial: pd.DataFrame) -> dict[str, str]:
    """``xfbench.phases`` and each of :data:`PHASE_TAGS` the rows recorded: its one value, or each phase's where they
    differ (a transfer trial's frozen phase trains fewer parameters, at a cheaper step)."""
    phases = _phases(trial)
    tags = {"xfbench.phases": ",".join(phases)} if phases else {}
    for key in (k for k in PHASE_TAGS if k in trial):
        per_phase = _phase_values(trial, key)
        if set(per_phase) == {""}:
            tags[f"xfbench.{key}"] = per_phase[""]
        elif per_phase:
            tags[f"xfbench.{key}"] = ", ".join(f"{phase}: {value}" for phase, value in per_phase.items())
    timed = timed_phase(trial)  # the phase the steady medians time, where the trial trained in several
    return tags | ({"xfbench.timed_phase": timed} if timed else {})


def _phase_values(trial: pd.DataFrame, key: str) -> dict[str, str]:
    """Each phase's last recorded ``key`` (as text) in the order the trial trained them, or ``{"": value}`` where
    every phase recorded the same; empty where none did."""
    names = trial["phase"].map(recorded_text) if "phase" in trial else pd.Series("", index=trial.index)
    per_phase = {
        phase: values[-1]
        for phase in dict.fromkeys(names)
        if (values := [v for v in map(recorded_text, trial.loc[names == phase, key]) if v])
    }
    return {"": next(iter(per_phase.values()))} if len(set(per_phase.values())) == 1 else per_phase


def _last_recorded(trial: pd.DataFrame, key: str) -> str:
    """The trial's last row's ``key`` that recorded one, as text ('' where none did): a last attempt whose worker
    died ends in the driver's row, which records no machine."""
    values = [v for v in map(recorded_text, trial[key]) if v] if key in trial else []
    return values[-1] if values else ""


def _size_metrics(trial: pd.DataFrame) -> list[Any]:
    """:data:`SIZE_METRICS` and :data:`PHASE_TAGS` as numbers where recorded, at the trial's last step: one value
    each, the phase sizes each phase's where the phases differ (``trainable_params.frozen``)."""
    from mlflow.entities import Metric

    values = {key: _last_recorded(trial, key) for key in SIZE_METRICS}
    for key in (k for k in PHASE_TAGS if k in trial):
        values |= {f"{key}.{phase}" if phase else key: v for phase, v in _phase_values(trial, key).items()}
    stamp = _milliseconds(trial.iloc[-1].get("timestamp"))
    numbers = {name: pd.to_numeric(text, errors="coerce") for name, text in values.items() if text}
    return [Metric(name, float(n), stamp, len(trial)) for name, n in numbers.items() if math.isfinite(n)]


def _steady_metrics(trial: pd.DataFrame) -> list[Any]:
    """:data:`STEADY_METRICS`: the medians of the trial's steady epochs in its timed phase, with the rows and the
    functions summary.md's figures come from (none where no epoch after a warm-up ended ok), at its last step."""
    from mlflow.entities import Metric

    steady = steady_rows(in_timed_phase(trial))
    stamp = _milliseconds(trial.iloc[-1].get("timestamp"))
    medians = {name: float(steady[c].astype(float).median()) for c, name in STEADY_METRICS.items() if len(steady)}
    return [Metric(name, value, stamp, len(trial)) for name, value in medians.items() if math.isfinite(value)]


def _details_tags(trial: pd.DataFrame) -> dict[str, str]:
    """The trial's last recorded details_json (its backbone's hash, head, feature size, scikit-learn version, ...)
    as a tag per key (nested keys joined by '.', lists as JSON), each within MLflow's tag limit."""
    text = _last_recorded(trial, "details_json")
    try:
        details = json.loads(text) if text else {}
    except ValueError:  # not a row xfbench wrote: kept whole, as far as a tag holds it
        return {DETAIL_TAG.rstrip("."): text[:TAG_LIMIT]}
    if not isinstance(details, dict):
        return {DETAIL_TAG.rstrip("."): text[:TAG_LIMIT]}
    return {f"{DETAIL_TAG}{key}": value[:TAG_LIMIT] for key, value in flatten(details).items()}


def _span(rows: pd.DataFrame) -> tuple[int | None, int | None]:
    """When the rows' training started and ended (ms since the epoch): a row is written as its epoch and its
    evaluation end, so a row's epoch began that much before its time, and the rows (of one trial, or of a whole run
    in any order) began with the earliest such start. None where the rows carry no time (MLflow then takes now)."""
    if "timestamp" not in rows:
        return None, None
    times = [_milliseconds(t) for t in rows["timestamp"]]
    took = pd.Series(0.0, index=rows.index)
    for column in ("epoch_time_s", "eval_time_s"):
        if column in rows:
            took = took + pd.to_numeric(rows[column], errors="coerce").fillna(0.0).to_numpy()
    starts = [t - int(s * 1000) for t, s in zip(times, took, strict=True) if t]
    if not starts:
        return None, None
    return min(starts), max(t for t in times if t)


def _search_marks(run_dir: Path, info: dict[str, Any], frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """A tune run's search trials as its search table marks them: each backend's pick (re-run over seeds in the final
    stage) and the samples ASHA stopped early (ok, with fewer epochs and no test accuracy); nothing for another run."""
    from harness.plan import recorded_search
    from harness.tuning import best_trials, search_table

    try:
        plan = recorded_search(run_dir, info, frame)
    except RunFileError as exc:  # its fix starts a new run; an export reads it before writing anything
        commit = str(info.get("git_commit") or "")
        version = "the xfbench version that ran it" + (f" (commit {commit})" if commit else "")
        raise InputError(
            f"Expected {exc.path} to record the tune run's search as this xfbench reads it (the export tags each "
            f"backend's pick and the samples ASHA stopped from it). Received: {exc.problem}. Nothing was written to "
            f"MLflow. To fix, export the run with {version}, or pick another run."
        ) from None
    if plan is None:
        return {}
    table = search_table(frame, plan)
    marks: dict[str, dict[str, str]] = {}
    for trial_id in best_trials(table, plan).values():
        marks.setdefault(trial_id, {})["xfbench.search_best"] = "true"
    for trial_id in table.loc[table["stopped_early"], "trial_id"] if len(table) else ():
        marks.setdefault(str(trial_id), {})["xfbench.stopped_early"] = "true"
    return marks


def _log_trial(client: Any, experiment_id: str, trial_id: str, trial: pd.DataFrame, common: dict[str, str]) -> str:
    """One trial as a nested MLflow run: its case, provenance and details as tags (and its final status), its config
    as parameters, its epochs as metric steps, its sizes and steady medians as metrics, started and ended when it
    trained."""
    from mlflow.entities import Param

    first = trial.iloc[0]
    # recorded_text: a seed or attempt read back as a float (a column with a gap) is tagged "1", not "1.0"
    tags = {f"xfbench.{k}": recorded_text(first[k]) for k in TRIAL_TAGS if k in trial and not pd.isna(first[k])}
    # each as the trial's last row that recorded it ('' where none did: no tag)
    tags |= {f"xfbench.{key}": value for key in RECORD_TAGS if (value := _last_recorded(trial, key))}
    tags |= _phase_tags(trial) | _details_tags(trial)
    if "xfbench.model" in tags:  # a spec file by its name, as tables name it (the path is a parameter)
        tags["xfbench.model"] = model_label(tags["xfbench.model"])
    status = str(trial.iloc[-1]["status"])
    error = trial.iloc[-1].get("error")
    why = error if isinstance(error, str) and error else why_not_ok(trial.iloc[-1])  # a diverged row holds none
    if why and status != "ok":  # why it failed, diverged or was skipped: the status alone does not say
        tags["xfbench.error"] = why[:ERROR_TAG_LIMIT]
    start, end = _span(trial)
    child = client.create_run(
        experiment_id, run_name=trial_id, tags={**tags, **common, "xfbench.status": status}, start_time=start
    ).info.run_id
    params = flatten(json.loads(first[CONFIG_COLUMN])) if isinstance(first[CONFIG_COLUMN], str) else {}
    params = {k: v for k, v in params.items() if not _machinery(k, v)}
    ended = {"ok": "FINISHED", "skipped": "KILLED"}.get(status, "FAILED")  # KILLED: MLflow's "did not run"
    with _ended_if_stopped(client, child):  # not left RUNNING, as if it were still training
        client.log_batch(child, metrics=_metrics(trial), params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(child, ended, end_time=end)
    return str(child)


def _experiment(client: Any, name: str, uri: str, artifact_location: str | None) -> str:
    existing = client.get_experiment_by_name(name)
    if existing and existing.lifecycle_stage == "deleted":
        raise InputError(
            f"Expected the MLflow experiment {name!r} at {uri} to be active. Received: it is deleted (id "
            f"{existing.experiment_id}). To fix, restore it (`mlflow experiments restore --experiment-id "
            f"{existing.experiment_id}`, with MLFLOW_TRACKING_URI={uri}) or pass another --experiment."
        )
    artifact_location = _artifact_uri(artifact_location) if artifact_location else None
    if existing and artifact_location and _artifact_uri(existing.artifact_location) != artifact_location:
        raise InputError(
            f"Expected --artifact-location to be the artifact location of the existing MLflow experiment {name!r} "
            f"(MLflow fixes it when the experiment is made). Received: --artifact-location {artifact_location}, "
            f"where it keeps {existing.artifact_location}. To fix, drop --artifact-location, or give a new "
            "--experiment to make one with it."
        )
    if existing:
        return str(existing.experiment_id)
    # MLflow's default artefact root is ./mlruns under the current directory; beside a SQLite store is kinder
    database = sqlite_file(uri)
    location = artifact_location or ((database.parent / "mlartifacts").as_uri() if database else None)
    if location is None and database_server(uri):
        raise InputError(
            f"Expected --artifact-location for the new MLflow experiment {name!r} in the database store {uri}. "
            "Received: none, so MLflow would write the run's files (summary, report, run.json) into ./mlruns under "
            f"this machine's working directory ({Path.cwd()}), recorded in the shared database where no other "
            "machine can read them. Nothing was written. To fix, give --artifact-location URI (s3://BUCKET/PATH, "
            "or a folder every reader mounts: file:///shared/mlartifacts)."
        )
    return str(client.create_experiment(name, artifact_location=location))


def _artifact_uri(location: str) -> str:
    """``location`` as a URI (an absolute folder as file:///...), so that one location given twice reads the same as
    MLflow stores it; a relative folder is refused (MLflow resolved it against the working directory, the ./mlruns
    problem the option is for)."""
    if len(urllib.parse.urlsplit(location).scheme) > 1:  # s3://, file://, mlflow-artifacts:, not C:\
        return location.rstrip("/")
    if not Path(location).is_absolute():
        raise InputError(
            f"Expected --artifact-location as a URI (s3://BUCKET/PATH, file:///shared/mlartifacts) or an absolute "
            f"folder. Received: {location!r}, relative to this machine's working directory ({Path.cwd()}), where no "
            "other machine reads it. To fix, give the URI or absolute folder every reader of the store can reach."
        )
    return Path(location).as_uri()


def _write_errors() -> tuple[type[Exception], ...]:
    """What writing an export may raise: the store's errors, and a local artefact folder's (a full disk)."""
    return (*store_errors(), OSError)


@contextlib.contextmanager
def _ended_if_stopped(client: Any, mlflow_run: str) -> Iterator[None]:
    """``mlflow_run`` ended FAILED where writing it raises a store's error, KILLED on Ctrl-C (a cancelled export
    left it RUNNING for good), where the store still takes that (it may be what failed: the error raised is the
    first one, not this)."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, *_write_errors())):
            with contextlib.suppress(*_write_errors()):
                client.set_terminated(mlflow_run, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise


def _check_names(uri: str, experiment: str) -> None:
    if not uri.strip() or not experiment.strip():  # MLflow would take '' as ./mlflow.db, or refuse an empty name late
        raise InputError(
            f"Expected a tracking URI and an experiment name. Received: --mlflow {uri!r}, --experiment "
            f"{experiment!r}. To fix, give both, e.g. --mlflow sqlite:///mlflow.db --experiment xfbench."
        )
    try:
        from mlflow.utils import validation

        limit = int(getattr(validation, "MAX_EXPERIMENT_NAME_LENGTH", EXPERIMENT_NAME_LIMIT))
    except ImportError:  # the client, made later, says how to install MLflow
        limit = EXPERIMENT_NAME_LIMIT
    if len(experiment) > limit:  # MLflow refuses it when the experiment is created: read as a bad tracking URI
        raise InputError(
            f"Expected --experiment of at most {limit} characters (MLflow's limit). Received: a name of "
            f"{len(experiment)} characters ({experiment[:40]!r} ...). To fix, give a shorter --experiment."
        )


def _check_artifacts_writable(run_dir: Path, location: str, experiment: str, uri: str) -> None:
    if any((run_dir / name).is_file() for name in ARTIFACTS):  # the parent run logs them
        _check_artifact_location(location, experiment, uri)


def _check_artifact_location(location: str, experiment: str, uri: str) -> None:
    """The parent run's artefacts must be writable from ``uri`` before it is created: MLflow finds out at the first
    artefact, and that left the parent RUNNING with a traceback."""
    why = artifact_problem(location, uri) if location else None
    if not why:
        return
    if location.startswith("mlflow-artifacts:"):
        fix = (
            "give the tracking server's http:// address as --mlflow (e.g. http://localhost:5000 for `mlflow server` "
            "on this machine): only the server writes its mlflow-artifacts: store"
        )
    else:
        fix = "make that location writable, or give another --experiment (a new one keeps them beside a SQLite store)"
    raise InputError(
        f"Expected MLflow experiment {experiment!r} to keep artefacts where --mlflow {uri} can write the run's "
        f"({', '.join(ARTIFACTS)}). Received: its artifact location {location} ({why}). Nothing was written. "
        f"To fix, {fix}."
    )


def _write_error(exc: BaseException, run_id: str, experiment: str, uri: str, parent: str | None) -> InputError:
    stopped = f"; its parent run {parent} ended FAILED, tagged xfbench.export=incomplete" if parent else ""
    return InputError(
        f"Expected MLflow to take run {run_id} into experiment {experiment!r} at {uri}. Received: "
        f"{type(exc).__name__} while writing it ({one_line(exc)}){stopped}. To fix, mend what MLflow reports, then "
        "export again, with --replace if the run was exported before (it deletes the earlier or stopped export)."
    )


def search_params(info: dict[str, Any]) -> dict[str, str]:
    """A tune run's search as the parent run's parameters (``search.algorithm``, ``search.metric``,
    ``search.space.optimizer.lr.low`` ...), as run.json records it: in run.json alone, MLflow's table of runs could
    not set two tunes' searches side by side. The bases are left out: each trial's config is its own run's."""
    search = info.get("tune")
    if not isinstance(search, dict):
        return {}
    return flatten({key: value for key, value in search.items() if key != "bases"}, "search.")


def _write_parent(
    client: Any, experiment_id: str, run_dir: Path, frame: pd.DataFrame, tags: dict[str, str], params: dict[str, str]
) -> str:
    """The parent run, tagged ``xfbench.export=incomplete`` (ended by :func:`_write_trials`), with ``params`` and
    its artefacts; an MLflow error ends it FAILED, Ctrl-C KILLED."""
    from mlflow.entities import Param

    start, _ = _span(frame)
    parent = client.create_run(experiment_id, run_name=tags["xfbench.run_id"], tags=tags, start_time=start).info.run_id
    with _ended_if_stopped(client, parent):
        if params:  # a tune's search; another run has none
            client.log_batch(parent, params=[Param(key, value) for key, value in params.items()])
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                client.log_artifact(parent, str(run_dir / name))
    return str(parent)


def _write_trials(
    client: Any,
    parent: tuple[str, str, dict[str, str]],
    frame: pd.DataFrame,
    marks: dict[str, dict[str, str]],
    ended: str,
) -> dict[str, str]:
    """A nested run per trial of ``parent`` (experiment id, run id, tags), then the parent ended ``ended`` and marked
    complete, last: an export that stopped before is not taken as done (--replace deletes it). An MLflow error ends
    the parent FAILED, Ctrl-C KILLED."""
    experiment_id, parent_run, tags = parent
    common = {"mlflow.parentRunId": parent_run, **{k: tags[k] for k in ("xfbench.run_id", "xfbench.run_key")}}
    with _ended_if_stopped(client, parent_run):
        trial_runs = {
            str(trial_id): _log_trial(
                client, experiment_id, str(trial_id), trial, {**common, **marks.get(str(trial_id), {})}
            )
            for trial_id, trial in frame.groupby("trial_id", sort=True)
        }
        client.set_terminated(parent_run, ended, end_time=_span(frame)[1])
        client.set_tag(parent_run, "xfbench.export", "complete")
    return trial_runs


def _parent_end(status: str) -> str:
    """The parent run's MLflow end state for the run's ``status``: a run that did not finish (interrupted, or still
    running as it was read) ends KILLED, MLflow's "stopped"; one whose state was not recorded (no run.json, an older
    version's) says nothing of it."""
    return "KILLED" if status in UNFINISHED_STATUSES else "FINISHED"


def _update_status(client: Any, parent: str, run_dir: Path, status: str, end: int | None) -> None:
    """The parent run of an export whose rows are the run's as they are now, brought up to the run's ``status``:
    a run exported while it ran (or after its driver stopped) that then finished with no trial to add or rerun (a
    stop after its last trial ended, and a resume that ran nothing) stayed KILLED and "running" for good. Its files
    again (run.json, summary.md and report.html said it had not finished), then its end state; the status tag last,
    so an update that stopped half-way is done again by the next export."""
    for name in ARTIFACTS:
        if (run_dir / name).is_file():
            client.log_artifact(parent, str(run_dir / name))
    client.set_terminated(parent, _parent_end(status), end_time=end)
    client.set_tag(parent, "xfbench.run_status", status)


def export_run(
    run_dir: Path, uri: str, experiment: str = "xfbench", replace: bool = False, artifact_location: str | None = None
) -> Exported:
    """Log ``run_dir``'s trials (each trial's last attempt) under ``experiment`` at tracking ``uri``, once: an
    earlier complete export of the same rows is left as it is, its parent run brought up to the run's status where
    that changed (finished since); one whose rows differ is replaced only if ``replace``, which always replaces.
    ``artifact_location``: a new experiment's (needed in a database server's store). Everything that can be checked
    is checked before anything is written. No message shows the URI's password."""
    try:
        return _export(run_dir, uri, experiment, replace, artifact_location)
    except InputError as exc:
        raise type(exc)(without_password(str(exc), uri)) from None


def _export(run_dir: Path, uri: str, experiment: str, replace: bool, artifact_location: str | None) -> Exported:
    _check_names(uri, experiment)
    frame = last_attempts(read_run_rows(run_dir))  # the local checks first: the server's can take seconds
    info = read_run_json(run_dir)
    marks = _search_marks(run_dir, info, frame)  # reads the tune plan in run.json, which may be unreadable
    uri = normalised_uri(uri)
    check_tracking_uri(uri)
    client = tracking_client(uri)
    run_id = str(info.get("run_id", run_dir.name))
    key, fingerprint = run_key(info, run_dir), rows_fingerprint(frame)
    try:  # the first calls that reach the tracking store (the experiment, made if new): a bad URI fails here
        experiment_id = _experiment(client, experiment, uri, artifact_location)
        location = str(client.get_experiment(experiment_id).artifact_location or "")
        earlier = _earlier_export(client, experiment_id, key)
    except store_errors() as exc:  # a database store whose driver is missing already failed in tracking_client
        raise unusable_uri(uri, exc) from None
    status = str(info.get("status", "unknown"))
    same_rows = earlier is not None and earlier.rows_sha256 in (fingerprint, _earlier_fingerprint(frame))
    if earlier is not None and earlier.complete and same_rows and not replace:  # --replace always replaces
        # an export made before parents were tagged with the run's status (2026-12-03) ended FINISHED whatever it was
        if earlier.run_status in (status, ""):
            return Exported(experiment_id, earlier.parent_run_id, earlier.trial_runs, "unchanged", status, location)
        _check_artifacts_writable(run_dir, location, experiment, uri)
        try:  # exported before it finished, finished since with no trial to add or rerun
            _update_status(client, earlier.parent_run_id, run_dir, status, _span(frame)[1])
        except _write_errors() as exc:
            raise _write_error(exc, run_id, experiment, uri, None) from None
        return Exported(experiment_id, earlier.parent_run_id, earlier.trial_runs, "updated", status, location)
    if earlier:
        _check_replaceable(earlier, replace, run_id, experiment, uri)
    _check_artifacts_writable(run_dir, location, experiment, uri)
    commit = str(info.get("git_commit", ""))
    tags = {"xfbench.run_id": run_id, "xfbench.run_key": key, "git_commit": commit}
    if commit and commit != "unknown" and not commit.endswith("+dirty"):  # MLflow's UI shows it as the clean commit
        tags["mlflow.source.git.commit"] = commit
    tags |= {"xfbench.rows_sha256": fingerprint, "xfbench.export": "incomplete", "xfbench.run_status": status}
    ended = _parent_end(status)
    parent = None
    try:
        for mlflow_run in earlier.run_ids if earlier else ():
            client.delete_run(mlflow_run)
        parent = _write_parent(client, experiment_id, run_dir, frame, tags, search_params(info))
        trial_runs = _write_trials(client, (experiment_id, parent, tags), frame, marks, ended)
    except _write_errors() as exc:
        raise _write_error(exc, run_id, experiment, uri, parent) from None
    return Exported(experiment_id, parent, trial_runs, "replaced" if earlier else "exported", status, location)
