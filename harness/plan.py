"""A run as typed data: what it will run (:class:`RunPlan`), how (:class:`ExecutionOptions`), what happened
(:class:`RunRecord`), and ``run.json``, which is the three of them (:class:`RunFile`).

The planner (:mod:`harness.planner`) makes plans; the runner executes a plan's unfinished stages; ``--resume``
reads the plan back from ``run.json`` with :func:`read_run_file`, the one place that file is parsed.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.backbone import pretrain_trials
from harness.backend import BACKENDS, REFERENCE_BACKEND
from harness.config import TrialConfig
from harness.errors import FileProblemError, InputError, unknown_name
from harness.option_types import SHIP_POLICIES
from harness.tuning import TunePlan
from harness.user_files import JsonObjectError, read_json_object
from harness.whole_files import write_text_whole

KINDS = ("run", "tune")
RUN_STATUSES = ("running", "finished", "interrupted")
# run.json's states of a run whose trials stop where it did: still running (or its driver killed), or interrupted
UNFINISHED_STATUSES = ("running", "interrupted")
# The remedy of a run.json this version cannot read; an export, which cannot start a run, words its own (RunFileError)
NEW_RUN_FIX = "To fix, start a new run."


def resume_command(kind: str, run_dir: Path) -> str:
    """The command that finishes the run in ``run_dir`` (``kind``: run or tune), quoted for a POSIX shell: a results
    folder with a space in its path pastes as one argument (a plain path prints unchanged)."""
    return f"xfbench {kind} --resume {shlex.quote(run_dir.name)} --results-dir {shlex.quote(str(run_dir.parent))}"


def recorded_resume_command(info: Mapping[str, Any], run_dir: Path) -> str:
    """:func:`resume_command` for a run whose run.json reads ``info``: a tune resumes as a tune."""
    return resume_command("tune" if info.get("kind") == "tune" else "run", run_dir)


LOCAL_ADDRESS = "local"  # Ray's spelling of a fresh instance of one's own, as --address
RUN_TITLE, TUNE_TITLE = "xfbench comparison", "xfbench tune: each backend at its best config"


# `--max-concurrent auto`: as many trials at once as the cores allow, which ExecutionOptions holds as None; given,
# it is 0, since None among the given options means "not given" (a resume could not return to it otherwise).
AS_THE_CORES_ALLOW = 0


@dataclass(frozen=True)
class ExecutionOptions:
    """How the trials are scheduled; a resumed run may change these (and only these)."""

    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    address: str | None = None
    max_concurrent: int | None = None
    max_failures: int = 0
    fresh_workers: bool = False  # a new worker process per trial (the pre-warm-worker behaviour)
    # --ship-data: datasets sent to the workers through Ray's object store (auto: up to 256 MB on a cluster, 1 GB
    # in a local run).
    # Recorded so a resume ships as the run did: a cluster whose nodes lack the files needs it again.
    ship_data: str = "auto"

    def __post_init__(self) -> None:
        # Ray's address "local" starts an instance of this run's own: that is a local run (no address), with this
        # machine's memory and CPU checks, its data read in place, and workers that inherit their environment.
        if self.address == LOCAL_ADDRESS:
            object.__setattr__(self, "address", None)
        if self.max_concurrent == AS_THE_CORES_ALLOW:
            object.__setattr__(self, "max_concurrent", None)
        if self.ship_data not in SHIP_POLICIES:
            raise unknown_name("ship_data", self.ship_data, list(SHIP_POLICIES))

    def updated(self, given: dict[str, Any]) -> ExecutionOptions:
        """These options with every value that was ``given`` (None: not given; 0 counts as given)."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})


@dataclass(frozen=True)
class RunPlan:
    """Fully resolved trial configs and the stages they run in.

    ``run``: the shared backbones its trials need (stage ``pretrain``), then the trials (``trials``).
    ``tune``: the backbones, one search per (case, backend) (``search``), then each backend's best config with
    K seeds (``final``, resolved from the search's results when the search has finished).
    """

    kind: str
    label: str
    title: str
    trials: tuple[TrialConfig, ...] = ()
    search: TunePlan | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Expected a plan kind in {list(KINDS)}. Received: {self.kind!r}.")
        if (self.kind == "tune") != (self.search is not None) or (self.kind == "tune" and self.trials):
            raise InputError(
                "Expected a run plan with trials and no search, or a tune plan with a search only. Received: a "
                f"{self.kind} plan with {len(self.trials)} trials and {'a' if self.search else 'no'} search."
            )
        if not self.planned_trials:
            raise InputError(
                "Expected at least one trial. Received: none. To fix, pick a suite or --strategy/--model/--dataset."
            )

    @classmethod
    def of_trials(cls, trials: Sequence[TrialConfig], label: str = "trials", title: str = RUN_TITLE) -> RunPlan:
        return cls("run", label, title, trials=tuple(trials))

    @property
    def planned_trials(self) -> tuple[TrialConfig, ...]:
        """The configs known before anything runs: a run's trials, or a search's bases."""
        return self.search.bases if self.search is not None else self.trials

    def pretrain(self) -> list[TrialConfig]:
        return pretrain_trials(list(self.planned_trials))

    def with_cache_dir(self, cache_dir: Path, *, every: bool = False) -> RunPlan:
        """Every trial without a cache directory gets ``cache_dir`` (shared backbones and features); with ``every``,
        every trial (a resume: the results folder may have moved since run.json recorded its absolute path)."""

        return self._each_trial(
            lambda t: t if t.cache_dir and not every else replace(t, cache_dir=str(cache_dir.resolve()))
        )

    def with_data_keys(self, keys: Mapping[str, str]) -> RunPlan:
        """Every trial without a data key gets its dataset's from ``keys`` (name -> content, as preflight read it:
        the run's provenance); a trial with one keeps it (a resume's, recorded when the run began)."""
        return self._each_trial(
            lambda t: t if t.data_key or t.dataset not in keys else replace(t, data_key=keys[t.dataset])
        )

    def with_model_keys(self) -> RunPlan:
        """Every trial without a model key gets what its model's own files hold now (user_model_key); a trial with
        one keeps it (a resume's, recorded when the run began)."""
        from harness.model_import import user_model_key

        return self._each_trial(
            lambda t: t if t.model_key is not None else replace(t, model_key=user_model_key(t.model))
        )

    def with_weights_keys(self, keys: Mapping[str, str]) -> RunPlan:
        """Every trial without a weights key gets the sha256 of its weights as preflight converted them (``keys``,
        by trial id); a trial with one keeps it (a resume's, recorded when the run began)."""
        return self._each_trial(
            lambda t: t if t.weights_key or t.trial_id not in keys else replace(t, weights_key=keys[t.trial_id])
        )

    def _each_trial(self, change: Callable[[TrialConfig], TrialConfig]) -> RunPlan:
        """This plan with ``change`` applied to each of its trials, or of its search's bases."""
        search = replace(self.search, bases=tuple(map(change, self.search.bases))) if self.search is not None else None
        return replace(self, trials=tuple(map(change, self.trials)), search=search)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "title": self.title,
            "trials": [t.to_dict() for t in self.trials],
            "tune": self.search.to_dict() if self.search is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        return cls(
            kind=data["kind"],
            label=data.get("label", data["kind"]),
            title=data["title"],
            trials=tuple(TrialConfig.from_dict(t) for t in data["trials"]),
            search=TunePlan.from_dict(data["tune"]) if data.get("tune") else None,
        )


@dataclass(frozen=True)
class ResumeRecord:
    at: str
    finished_trials_kept: int
    failed_trials_rerun: tuple[str, ...]
    partial_rows_discarded: int
    command: tuple[str, ...]
    # why each rerun trial had ended so ("failed: <its error's first line>"): its rows are replaced by the rerun's
    rerun_errors: dict[str, str] = field(default_factory=dict)
    # the code this session ran, which its rows carry ("": a resume recorded before 2026-12-05, whose rows carried the
    # run's first commit); after a `git pull` it differs from the run's own git_commit
    git_commit: str = ""
    # The execution options the run's trials ran under until this resume, which may change them (run.json's
    # `scheduler` then holds the new ones): which rows ran so is told by this record's `at`. None: a resume
    # recorded before 2026-12-05.
    execution_before: ExecutionOptions | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumeRecord:
        before = data.get("execution_before")
        return cls(
            **{
                **data,
                "failed_trials_rerun": tuple(data["failed_trials_rerun"]),
                "command": tuple(data["command"]),
                "execution_before": ExecutionOptions.from_dict(before) if before is not None else None,
            }
        )

    def changed_execution(self, now: ExecutionOptions) -> dict[str, tuple[Any, Any]]:
        """Each execution option this resume changed: name -> (before, now); empty when unknown (an older record)."""
        if self.execution_before is None:
            return {}
        before = dataclasses.asdict(self.execution_before)
        return {k: (before[k], v) for k, v in dataclasses.asdict(now).items() if before[k] != v}


@dataclass(frozen=True)
class DriverProcess:
    """The process that drives a run while run.json says ``running``: a resume refuses a run whose driver is still
    alive (it would run its trials twice). ``start``: the process's start time as Linux's /proc gives it (clock
    ticks since boot), which tells the driver from a later process given its pid; None where there is no /proc."""

    host: str
    pid: int
    start: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """What happened to a run: where and when it ran, its data, its resumes, how it ended."""

    run_id: str
    started: str
    command: tuple[str, ...]
    git_commit: str
    driver_host: str
    driver_cpu: str
    python_version: str
    status: str = "running"
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)  # provenance of each dataset
    data_delivery: dict[str, str] = field(default_factory=dict)  # dataset -> "object store" when shipped
    ray_nodes: tuple[dict[str, Any], ...] = ()
    resumes: tuple[ResumeRecord, ...] = ()
    finished: str | None = None
    wall_time_s: float | None = None
    framework_versions: dict[str, str] = field(default_factory=dict)
    rows: int | None = None
    trial_status: dict[str, int] = field(default_factory=dict)
    # the backend summary.md and report.html compare the others with (--reference); `xfbench report` reuses it
    reference: str = REFERENCE_BACKEND
    error: str | None = None  # what stopped the driver, when a fault did (the run is then "interrupted")
    # When a tune's final stage began (None: not yet, or a run.json from before it was recorded). From then on its
    # search stands as it ended, though no final trial has finished yet (runner.search_ended).
    final_began: str | None = None
    # The driver now (or last) running it: absent from a run.json written before it was recorded
    driver_process: DriverProcess | None = None

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"Expected a run status in {list(RUN_STATUSES)}. Received: {self.status!r}.")
        if self.reference not in BACKENDS:  # read_run_file names the file and how to fix it
            raise ValueError(f"Expected a reference backend in {list(BACKENDS)}. Received: {self.reference!r}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["command"] = tuple(values.get("command", ()))
        values["ray_nodes"] = tuple(values.get("ray_nodes") or ())
        values["resumes"] = tuple(ResumeRecord.from_dict(r) for r in values.get("resumes", ()))
        driver = values.get("driver_process")
        values["driver_process"] = DriverProcess(**driver) if driver else None
        return cls(**values)

    def joined_nodes(self, seen: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
        """``ray_nodes`` with the nodes a session (a resume's) ``seen``: the kept rows' ``node`` ids must stay in
        run.json, so a node already listed keeps its first record and a new one is appended (by node id; a node
        without one, as a test's stand-in, by its whole record)."""

        def key(node: dict[str, Any]) -> str:
            return str(node.get("node") or json.dumps(node, sort_keys=True))

        known = {key(n) for n in self.ray_nodes}
        return (*self.ray_nodes, *(n for n in seen if key(n) not in known))


@dataclass(frozen=True)
class RunFile:
    """``run.json``: the plan, the execution options, and the record, as one flat JSON object."""

    plan: RunPlan
    execution: ExecutionOptions
    record: RunRecord
    # The shared backbones the cache lacked when the run started (the pretrain stage is resolved at run time).
    pretrain: tuple[TrialConfig, ...] = ()

    def in_cache(self, cache_dir: Path) -> RunFile:
        """This run with every trial's cache directory ``cache_dir``: run.json records it as an absolute path, which
        names the old place once the results folder is moved or copied (its backbones would be looked for there)."""
        pretrain = tuple(replace(t, cache_dir=str(cache_dir.resolve())) for t in self.pretrain)
        return replace(self, plan=self.plan.with_cache_dir(cache_dir, every=True), pretrain=pretrain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pretrain_trials": [t.to_dict() for t in self.pretrain],
            **dataclasses.asdict(self.record),
            **self.plan.to_dict(),
            "scheduler": dataclasses.asdict(self.execution),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunFile:
        pretrain = tuple(TrialConfig.from_dict(t) for t in data.get("pretrain_trials", ()))
        return cls(
            RunPlan.from_dict(data), ExecutionOptions.from_dict(data["scheduler"]), RunRecord.from_dict(data), pretrain
        )


def write_run_file(run_dir: Path, run_file: RunFile) -> None:
    """Written whole (:mod:`harness.whole_files`): a driver killed mid-write leaves the previous run.json whole."""
    write_text_whole(run_dir / "run.json", json.dumps(run_file.to_dict(), indent=2, sort_keys=True, default=str) + "\n")


def recorded_search(run_dir: Path, info: dict[str, Any], rows: Any) -> TunePlan | None:
    """A tune run's search plan as run.json records it (``info``, its contents), or None for another run or one that
    sampled nothing (``rows``, its results table, holds no search stage)."""
    if info.get("tune") is None or "stage" not in rows or not (rows["stage"] == "search").any():
        return None
    return read_run_file(run_dir).plan.search


class RunFileError(FileProblemError):
    """run.json missing, or one this version cannot read (``problem``: what was found, naming the file where the
    expectation does not)."""


def read_run_file(run_dir: Path) -> RunFile:
    """The run in ``run_dir``; RunFileError saying what is missing or unreadable."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise RunFileError.of(
            path,
            "a run directory with run.json",
            f"{run_dir}, which has none",
            "To fix, check --results-dir and the run id.",
        )
    try:
        data = read_json_object(path, NEW_RUN_FIX)
    except JsonObjectError as exc:
        raise RunFileError.of(
            path, f"{path} to hold a JSON object as xfbench writes it", exc.problem, NEW_RUN_FIX
        ) from None
    try:
        return RunFile.from_dict(data)
    except _UNREADABLE as exc:
        raise RunFileError.of(
            path, "a run.json written by this version of xfbench", _unread(path, data, exc), NEW_RUN_FIX
        ) from exc


_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError)  # fields missing, or of another type


def _unread(path: Path, data: dict[str, Any], exc: Exception) -> str:
    """What run.json holds that RunFile.from_dict could not read, and where. A ValueError there is one of xfbench's
    own refusals of a value (an InputError among them), worded for a command line with its own Received and fix,
    which do not apply to a recorded file: the part, key and value are named instead of quoting it (the raise chains
    it, for a caller in Python)."""
    label, refused = _refused_part(data)
    key = f"key {refused[0]}" if refused is not None else ""
    where = " ".join(name for name in (label, key) if name) or "top level"  # a plan's kind and title lie there
    if not isinstance(exc, ValueError):
        return f"{path}, whose {where} cannot be read ({type(exc).__name__}: {exc})"
    value = "" if refused is None else f" {_short_repr(refused[1])},"
    return f"{path}, whose {where} holds{value} a value this version of xfbench refuses ({type(exc).__name__})"


def _parts(data: dict[str, Any]) -> list[tuple[str, Callable[[Any], object], Any]]:
    """run.json's parts that read on their own, in the order RunFile.from_dict reads them: (label, reader, part),
    the label "" for the top-level keys."""
    parts: list[tuple[str, Callable[[Any], object], Any]] = []
    tune = data.get("tune")
    for name, listed in (
        ("pretrain_trials", data.get("pretrain_trials")),
        ("trials", data.get("trials")),
        ("tune.bases", tune.get("bases") if isinstance(tune, dict) else None),
    ):
        if isinstance(listed, list):
            parts += [(f"{name}[{i}]", TrialConfig.from_dict, trial) for i, trial in enumerate(listed)]
    if tune:
        parts.append(("tune", TunePlan.from_dict, tune))
    return parts + [
        ("scheduler", ExecutionOptions.from_dict, data.get("scheduler")),
        ("", RunRecord.from_dict, data),  # status, reference, resumes, ...
        ("", RunPlan.from_dict, data),  # kind and title, and the trials with the search
    ]


def _refused_part(data: dict[str, Any]) -> tuple[str, tuple[str, object] | None]:
    """The first part of run.json that fails to read on its own, with the key (or key.subkey) whose value it refuses
    and that value: the key without which the part reads, its default taking its place; None where none (a required
    field is missing, or the refused value lies deeper)."""
    for label, read, section in _parts(data):
        try:
            read(section)
        except _UNREADABLE:
            return label, _refused_key(read, section)
    return "", None  # each part reads alone: only their combination is refused


def _refused_key(read: Callable[[Any], object], section: object) -> tuple[str, object] | None:
    if not isinstance(section, dict):
        return None
    candidates: list[tuple[tuple[str, ...], dict[str, Any]]]
    candidates = [((key,), {k: v for k, v in section.items() if k != key}) for key in section]
    candidates += [
        ((key, sub), {**section, key: {k: v for k, v in inner.items() if k != sub}})
        for key, inner in section.items()
        if isinstance(inner, dict)
        for sub in inner
    ]
    for keys, without in candidates:
        try:
            read(without)
        except _UNREADABLE:
            continue
        value = section[keys[0]] if len(keys) == 1 else section[keys[0]][keys[1]]
        return ".".join(map(str, keys)), value
    return None


def _short_repr(value: object, limit: int = 60) -> str:
    said = repr(value)
    return said if len(said) <= limit else f"{said[: limit - 3]}..."
