"""Saved baselines, run lookup and history.

A baseline is a copy of a run's table and provenance under
``results/baselines/<machine key>/<name>/``; the machine key (CPU, GPU, threads) keeps numbers from
different machines apart, and ``baseline.json`` records the framework versions so a comparison across
machines or versions can warn loudly.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import case_label
from harness.errors import InputError
from harness.plan import UNFINISHED_STATUSES, recorded_resume_command
from harness.provenance import cpu_model, short_commit, utc_now
from harness.summary import WARMUP_ONLY, compared_rows, final_rows, framework_versions, in_timed_phase, steady_rows
from harness.user_files import read_json_object, read_run_json, read_run_rows, read_run_table

BASELINES = "baselines"
BASELINE_FILE = "baseline.json"  # beside a saved baseline's rows: its source run and framework versions
BASELINE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


@dataclass(frozen=True)
class SettingsChange:
    """A case whose settings or runtime options differ from the run before it in a history: its change in the
    metric may be theirs, not the code's (as ``xfbench compare`` notes it)."""

    run_id: str
    case: str
    backend: str
    what: str  # "config differs: epochs 3→5; runtime differs: …"


@dataclass(frozen=True)
class HistoryRun:
    """One run of a history, as its runs table lists it."""

    run_id: str
    started: str
    git_commit: str  # the first 12 characters, "+dirty" kept (harness.provenance.short_commit)
    status: str  # running | finished | interrupted | unknown (not recorded) | UNREADABLE
    trials: int


UNREADABLE = "unreadable"  # a history's run whose run.json or results table cannot be read (History.unreadable)


@dataclass(frozen=True)
class History:
    """``xfbench history``: the runs shown (newest last), the metric per (case, backend) with one column per run,
    and each case whose settings changed from the previous run that ran it."""

    runs: tuple[HistoryRun, ...]
    table: pd.DataFrame
    changes: tuple[SettingsChange, ...] = ()
    not_ok: frozenset[tuple[str, str, str]] = frozenset()  # (case, backend, run id) where no trial ended ok
    # (case, backend, run id) -> why trials that ended ok left a time's cell empty: WARMUP_ONLY (one-epoch trials,
    # no steady epoch) or NOT_TIMED (steady rows without a time: deep features read from the cache)
    untimed: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    # (case, backend, run id) -> "2/3" where some trials ended ok and others did not: the value is the ok ones'
    partly_ok: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    unreadable: tuple[tuple[str, str], ...] = ()  # (run id, why): runs in the window whose files cannot be read


@dataclass(frozen=True)
class Environment:
    cpu: str
    gpu: str
    threads: str
    framework_versions: dict[str, str]
    # the rows' framework_env values, ","-joined ("" none set); None: rows from before the column, unknown
    framework_env: str | None = None

    @property
    def machine_key(self) -> str:
        parts = [self.cpu, self.gpu or "nogpu", f"t{self.threads}"]
        return "-".join(_slug(p) for p in parts)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Environment:
        ok = frame[~frame["status"].isin(["failed", "skipped"])] if len(frame) else frame  # rows a worker wrote
        pick = lambda col: ",".join(sorted({str(v) for v in ok[col].dropna() if str(v)})) if len(ok) else ""  # noqa: E731
        return cls(
            cpu=pick("cpu"),
            gpu=pick("gpu"),
            threads=pick("threads"),
            framework_versions=framework_versions(ok),
            framework_env=pick("framework_env")
            if "framework_env" in ok and ok["framework_env"].notna().any()
            else None,
        )


@dataclass(frozen=True)
class LoadedRun:
    label: str
    path: Path
    frame: pd.DataFrame
    environment: Environment


def is_run_dir(path: Path) -> bool:
    """A run's folder: its rows (results.parquet, or the parts of one still running or stopped), run.json or not."""
    return path.is_dir() and ((path / "results.parquet").is_file() or (path / "parts").is_dir())


def saved_baseline_dir(
    name: str, results_dir: Path, machine_key: str | None = None, choose: bool = True
) -> Path | None:
    """The baseline saved as ``name``, or None: the one saved under ``machine_key`` (the run it is compared with:
    its CPU, GPU and threads), else the only one saved on this machine's CPU, else the only one. Several left to
    choose from are refused, naming them: the first in alphabetical order had been taken, a baseline of other
    thread counts or another machine's beside this one's. ``choose`` False: whether one is there, before the run it
    is compared with can say which (a session on GPUs or a cluster: their key is the workers')."""
    if not re.fullmatch(BASELINE_NAME, name):
        return None
    matches = [m for m in sorted((results_dir / BASELINES).glob(f"*/{name}")) if is_run_dir(m)]
    exact = [m for m in matches if m.parent.name == machine_key]
    here = [m for m in matches if _saved_cpu(m) == cpu_model()]
    candidates = exact or here or matches
    if len(candidates) > 1 and choose:
        keys = ", ".join(m.parent.name for m in candidates)
        wanted = f"saved under {machine_key}" if machine_key else "saved on this machine"
        raise InputError(
            f"Expected one baseline {name!r} {wanted}. Received: {len(candidates)} that could be meant ({keys}). "
            f"To fix, give the one you mean by its path, e.g. {candidates[0]}."
        )
    return next(iter(candidates), None)


def _saved_cpu(baseline: Path) -> str:
    """The CPU a saved baseline ran on (baseline.json); "" when it does not say."""
    try:
        return str(json.loads((baseline / BASELINE_FILE).read_text()).get("cpu", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def expected_machine_key(threads: int, gpus: float, address: str | None) -> str | None:
    """The machine key a local run with ``threads`` per trial will be saved under; None with GPUs, whose name only
    the workers record, or on a cluster, whose nodes' CPUs are not this machine's."""
    return None if gpus or address else Environment(cpu_model(), "", str(threads), {}).machine_key


def is_baseline_dir(path: Path, results_dir: Path) -> bool:
    """``path`` is a saved baseline's folder (results/baselines/<machine>/<name>)."""
    return path.resolve().parent.parent == (results_dir / BASELINES).resolve()


def resolve(reference: str, results_dir: Path, machine_key: str | None = None, choose: bool = True) -> Path:
    """A run directory from a path, a run id under ``results_dir``, or a saved baseline name (``machine_key``: the
    machine of the run it is compared with, saved_baseline_dir); a bare name that is both a run id and a baseline
    name is refused rather than guessed."""
    run = next((p for p in (Path(reference).expanduser(), results_dir / reference) if is_run_dir(p)), None)
    baseline = saved_baseline_dir(reference, results_dir, machine_key, choose)
    if run is not None and baseline is not None and run.resolve() != baseline.resolve():
        raise InputError(
            f"Expected {reference!r} to name one run. Received: the run {run} and the baseline {baseline} both go by "
            "it. To fix, give the one you mean by its path, or save the baseline again under another name."
        )
    found = run or baseline
    if found is not None:
        return found.resolve()
    if not results_dir.is_dir():  # sending the user to `history` in the same folder sent them to another refusal
        raise InputError(
            f"Expected a run directory, or a run id or saved baseline name in --results-dir. Received: {reference!r}, "
            f"with --results-dir {results_dir}, which does not exist. To fix, give --results-dir the folder the runs "
            "were written to (default ./results), or the run's own folder."
        )
    raise InputError(
        f"Expected a run directory, a run id in {results_dir} or a saved baseline name. Received: {reference!r}. "
        f"Runs: see `xfbench history --results-dir {results_dir}`; baselines: `xfbench baseline list --results-dir "
        f"{results_dir}`. To fix, give one of those, or for runs kept elsewhere that folder as --results-dir."
    )


def load_run(reference: str, results_dir: Path, machine_key: str | None = None, choose: bool = True) -> LoadedRun:
    path = resolve(reference, results_dir, machine_key, choose)
    frame = read_run_rows(path)
    return LoadedRun(reference, path, frame, Environment.of(frame))


def environment_warnings(base: Environment, new: Environment, sides: tuple[str, str] = ("base", "new")) -> list[str]:
    """What differs between the machines, thread counts, framework versions and framework environment variables of
    two runs (or of two runs of one case: ``sides`` names them, history's ``previous`` and ``new``): their times are
    not those of the code alone."""
    was, now = sides
    warnings = []
    if (base.cpu, base.gpu) != (new.cpu, new.gpu):
        warnings.append(
            f"different machines: {was} ran on {base.cpu!r} {base.gpu or 'no GPU'}, {now} on {new.cpu!r} "
            f"{new.gpu or 'no GPU'}; epoch times differ by the machines as much as by the code (compare leaves the "
            "time verdicts of cases timed on other machines n/a unless given --times-across-machines)"
        )
    if base.threads != new.threads:
        warnings.append(
            f"different thread counts: {was} {base.threads}, {now} {new.threads} (compare leaves the time verdicts of "
            "cases run with other thread counts n/a unless given --times-across-machines)"
        )
    for backend in sorted(set(base.framework_versions) & set(new.framework_versions)):
        if base.framework_versions[backend] != new.framework_versions[backend]:
            warnings.append(
                f"different {backend} versions: {was} {base.framework_versions[backend]}, "
                f"{now} {new.framework_versions[backend]}"
            )
    if None not in (base.framework_env, new.framework_env) and base.framework_env != new.framework_env:
        warnings.append(
            f"different framework environment variables: {was} {base.framework_env or 'none set'}, {now} "
            f"{new.framework_env or 'none set'}; they change what the frameworks run, their kernels or compilation "
            "(results column framework_env)"
        )
    return warnings


def environment_change(before: pd.DataFrame, after: pd.DataFrame) -> str:
    """What :func:`environment_warnings` says of two runs of one case (its rows in each), as history notes it: compare
    warns of it run-wide, which history's trend and the report's history, one case beside another, had not. A side
    without a worker's row (every trial failed before one ran, or was skipped) recorded no machine: nothing to say."""
    was, now = Environment.of(before), Environment.of(after)
    if not all(env.cpu or env.threads for env in (was, now)):
        return ""
    return "; ".join(environment_warnings(was, now, sides=("previous", "new")))


def run_state_warnings(base: LoadedRun, new: LoadedRun) -> list[str]:
    """A run that did not finish (still running, or interrupted) has only the epochs and trials it got to. A run
    whose run.json is missing or unreadable says nothing of its state: no warning (compare needs only its rows)."""
    warnings = []
    for side, run in (("base", base), ("new", new)):
        status = unfinished_status(run)
        if status:
            warnings.append(f"the {side} run {run.label} is {status}, not finished: its figures stop where it did")
    return warnings


def unseen_cases_warning(new: LoadedRun, only_in_base: list[tuple[str, str]], failing: bool) -> str:
    """The warning for cases (case, backend) the base has and an unfinished new run never got to; "" when there are
    none. Not "no regression": the gate did not see them, so ``failing`` (--fail-on-regression) fails on them. A
    finished run that lacks a case left it out of its suite: only in base, as documented, not warned of here."""
    status = unfinished_status(new)
    if not status or not only_in_base:
        return ""
    named = sorted(f"{case} [{backend}]" for case, backend in only_in_base)
    said = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    info = read_run_json(new.path)
    finish = recorded_resume_command(info, new.path)
    return f"the new run {new.label} is {status} before {len(named)} case(s) the base has ({said}): not compared" + (
        f"; --fail-on-regression fails on them. Finish it with `{finish}`, then compare again" if failing else ""
    )


def missing_backends_warning(
    new: LoadedRun,
    rows: Sequence[Any],
    failing: bool,
    gate: str = "--fail-on-regression",
    left_out: Collection[str] = (),
    selection: str = "",
) -> str:
    """The warning for backends the base ran and a finished new run has no case of (a CI job now run with one
    --backend): "" when none. Its cases read "only in base", which a gate counted as no regression, so a gate that
    stopped checking one of the frameworks it exists to compare passed without a word; ``failing`` (``gate``: the
    CLI's --fail-on-regression, the pytest plugin's --baseline check) fails on it. An unfinished new run's missing
    cases are unseen_cases_warning's. ``left_out``: backends whose every test the pytest session's own ``selection``
    left out (--lf once a torch regression was fixed, -k torch): the user chose not to run them, so said, not failed
    on."""
    missing = missing_backends(rows)
    if not missing or unfinished_status(new):
        return ""

    def no_case_of(backends: list[str]) -> str:
        cases = sum(1 for r in rows if r.backend in backends)
        return f"the new run {new.label} has no case of {', '.join(backends)}, which the base ran ({cases} case(s))"

    gone = [b for b in missing if b not in left_out]
    unselected = [b for b in missing if b in left_out]
    fails = (
        f"; {gate} fails on it. Run those backends too, or compare with a baseline of the backends the new run trains"
    )
    said = [no_case_of(gone) + ": not compared" + (fails if failing else "")] if gone else []
    if unselected:
        said.append(
            no_case_of(unselected) + f": left out by this session's pytest selection ({selection}), so not compared "
            f"and {gate} does not fail on it. To compare it, run the session without that selection (where -k or -m "
            f"narrowed it, -k {shlex.quote(' or '.join(unselected))} selects its tests too; --lf and node ids cannot)"
        )
    return "; ".join(said)


def missing_backends(rows: Sequence[Any]) -> list[str]:
    """The backends of compared ``rows`` (CaseComparison) that only the base ran, sorted."""
    return sorted({r.backend for r in rows if r.only_in != "new"} - {r.backend for r in rows if r.only_in != "base"})


def unfinished_status(run: LoadedRun) -> str:
    """``running`` or ``interrupted`` for a run that did not finish; "" for one that did, or whose run.json is missing
    or unreadable (it says nothing of its state)."""
    try:
        status = read_run_json(run.path).get("status")
    except InputError:
        return ""
    return str(status) if status in UNFINISHED_STATUSES else ""


# What `history` and a report's history section can follow over runs (steady medians, mean test accuracy).
HISTORY_METRICS = ("epoch_time_s", "samples_per_s", "test_acc")


@dataclass(frozen=True)
class SavedBaseline:
    """What ``baseline.json`` says of a saved baseline, as ``xfbench baseline list`` shows it."""

    name: str
    machine_key: str
    saved: str
    framework_versions: dict[str, str]
    path: Path
    source_run: str = ""  # the run it was saved from ("" when baseline.json does not say)


@dataclass(frozen=True)
class SaveOutcome:
    path: Path
    replaced: bool  # a baseline of that name on this machine key was there before
    previous_run: str = ""  # the run it held then (its baseline.json's source_run; "" if unknown)


def _check_finished(run_dir: Path, name: str) -> None:
    """A baseline stands for every case a run planned: one that stopped early holds only the trials it got to, and
    every later compare would measure against that part. A run without run.json says nothing of its state (its rows
    are checked as any run's); a damaged one is bad input, as report and history take it: the baseline would copy
    it, and every compare against it would stop on it."""
    info = read_run_json(run_dir)  # {} when absent
    status = info.get("status")
    if status in UNFINISHED_STATUSES:
        command = recorded_resume_command(info, run_dir)
        # a running run may be the one still going (a resume would run its trials twice) or one whose driver died
        finish = (
            f"wait for it to end (or, if its driver was killed, finish it with `{command}`)"
            if status == "running"
            else f"finish it with `{command}`"
        )
        raise InputError(
            f"Expected a finished run to save as baseline {name!r}. Received: {run_dir}, {status} (run.json): it holds "
            f"only the trials it got to. To fix, {finish}, or pass a finished run: `xfbench baseline save {name} "
            "--run RUN_ID`."
        )


def save_baseline(run_dir: Path, name: str, results_dir: Path) -> SaveOutcome:
    if not re.fullmatch(BASELINE_NAME, name):
        raise InputError(
            f"Expected a baseline name of letters, digits, '.', '_' or '-', starting with a letter or digit. "
            f"Received: {name!r}. To fix, pick such a name, e.g. main-2026-12-03."
        )
    if is_run_dir(results_dir / name):
        raise InputError(
            f"Expected a baseline name that no run in {results_dir} goes by: compare, report and export look both up "
            f"by name. Received: {name!r}, the run {results_dir / name}. To fix, pick another name."
        )
    _check_finished(run_dir, name)
    frame = read_run_rows(run_dir)
    if not len(frame) or not frame["status"].eq("ok").any():
        statuses = ", ".join(sorted({str(s) for s in frame["status"].dropna()})) or "no status recorded"
        raise InputError(
            f"Expected a run with at least one trial that ended ok to save as a baseline. Received: {run_dir}, with "
            f"no ok trial ({statuses}). To fix, pick a run that finished (`xfbench history` lists them) and pass it: "
            f"`xfbench baseline save {name} --run RUN_ID`."
        )
    env = Environment.of(frame)
    target = results_dir / BASELINES / env.machine_key / name
    if target.resolve() == run_dir.resolve():
        raise InputError(
            f"Expected a run to save as baseline {name!r}. Received: --run {run_dir}, which is that baseline itself. "
            "To fix, give the run to save with --run, or another name."
        )
    replaced = target.exists()
    previous = ""
    if replaced:
        try:  # which run it held, for the message; a damaged record does not stop its replacement
            previous = str(read_json_object(target / BASELINE_FILE, "").get("source_run", ""))
        except InputError:
            previous = ""
        shutil.rmtree(target)
    target.mkdir(parents=True)
    frame.to_parquet(target / "results.parquet", index=False)
    for extra in ("run.json", "summary.md"):
        if (run_dir / extra).is_file():
            shutil.copy2(run_dir / extra, target / extra)
    (target / BASELINE_FILE).write_text(
        json.dumps(
            {
                "name": name,
                "saved": utc_now(),
                "source_run": str(run_dir),
                "machine_key": env.machine_key,
                "cpu": env.cpu,
                "gpu": env.gpu,
                "threads": env.threads,
                "framework_versions": env.framework_versions,
                "git_commit": sorted(frame["git_commit"].dropna().unique().tolist()),
            },
            indent=2,
        )
        + "\n"
    )
    return SaveOutcome(target, replaced, previous)


def list_baselines(results_dir: Path) -> list[SavedBaseline]:
    if not results_dir.is_dir():
        raise InputError(
            f"Expected --results-dir to be a directory that runs and baselines were saved into. Received: "
            f"{results_dir}, which {'is not a directory' if results_dir.exists() else 'does not exist'}. To fix, give "
            "the --results-dir `xfbench baseline save` used."
        )
    return [_saved_baseline(meta) for meta in sorted((results_dir / BASELINES).glob(f"*/*/{BASELINE_FILE}"))]


def _saved_baseline(meta: Path) -> SavedBaseline:
    fix = "To fix, save the baseline again (`xfbench baseline save`) or delete its folder."
    saved = read_json_object(meta, fix)
    texts = {key: saved.get(key, "?") for key in ("name", "machine_key", "saved")}
    versions = saved.get("framework_versions") or {}
    wrong = [f"{key}={value!r}" for key, value in texts.items() if not isinstance(value, str)]
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        wrong.append(f"framework_versions={versions!r}")
    if wrong:
        raise InputError(
            f"Expected {meta} to hold name, machine_key and saved as text and framework_versions as an object of "
            f"version strings, as `xfbench baseline save` writes them. Received: {', '.join(wrong)}. {fix}"
        )
    source = saved.get("source_run")
    return SavedBaseline(
        texts["name"],
        texts["machine_key"],
        texts["saved"],
        {str(k): v for k, v in versions.items()},
        meta.parent,
        Path(source).name if isinstance(source, str) else "",
    )


def run_directories(results_dir: Path) -> list[Path]:
    """Runs under ``results_dir`` (not baselines or Ray's storage), oldest first by start time (:func:`run_started`)."""
    runs = []
    for path in results_dir.iterdir() if results_dir.is_dir() else []:
        if path.name in (BASELINES, "_ray") or not is_run_dir(path):
            continue
        runs.append((run_started(path), path.name, path))
    return [p for _, _, p in sorted(runs)]


def run_started(run_dir: Path) -> str:
    """When the run started (:func:`start_and_source`'s time)."""
    return start_and_source(run_dir)[0]


def start_and_source(run_dir: Path) -> tuple[str, str]:
    """When the run started, and where that was read when not from run.json ("from its id", "from its files' time"), so
    history's runs table says why a run without one sits where it does. The start (UTC, ISO 8601) is the one order of
    runs for history, ``baseline save``'s newest run and the report: run.json's ``started``; where run.json is missing,
    damaged or silent on it, the UTC time its run id begins with (runner.new_run_id), else when its results were last
    written. A run without run.json (copied rows, a driver that died first) had sorted as the oldest: history drew it
    first, and ``baseline save`` passed over it. A damaged run.json orders this way too, so that one run outside
    history's window, or older than the run a baseline saves, does not stop them; a command that reads the damaged run
    still refuses it."""
    try:
        started = read_run_json(run_dir).get("started")
    except InputError:
        started = None
    if isinstance(started, str) and started:
        return started, ""
    try:
        return datetime.strptime(run_dir.name[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC).isoformat(), "from its id"
    except ValueError:  # not an id xfbench gave
        results = run_dir / "results.parquet"
        written = (results if results.is_file() else run_dir / "parts").stat().st_mtime
        return datetime.fromtimestamp(written, UTC).isoformat(timespec="seconds"), "from its files' time"


def started_cell(run_dir: Path) -> str:
    """History's ``started``: run.json's, or the time it was ordered by and where that came from."""
    started, source = start_and_source(run_dir)
    return f"{started} ({source})" if source else started


def _history_runs(results_dir: Path, metric: str) -> list[Path]:
    """The run folders of ``results_dir`` (oldest first) for :func:`history`, once ``metric`` and the folder are
    checked."""
    if metric not in HISTORY_METRICS:
        raise InputError(
            f"Expected --metric to be one of {list(HISTORY_METRICS)}. Received: {metric!r}. To fix, give one of those."
        )
    if not results_dir.is_dir():
        raise InputError(
            f"Expected --results-dir to be a directory that runs wrote into. Received: {results_dir}, which "
            f"{'is not a directory' if results_dir.exists() else 'does not exist'}. To fix, give the --results-dir "
            "the runs used."
        )
    if is_run_dir(results_dir):
        raise InputError(
            f"Expected --results-dir to be the folder that holds the runs. Received: {results_dir}, a run itself. "
            f"To fix, give its folder: --results-dir {results_dir.parent}."
        )
    directories = run_directories(results_dir)
    if not directories:
        raise InputError(
            f"Expected runs in --results-dir {results_dir}. Received: none there. To fix, give the --results-dir "
            "the runs used, or run one first (`xfbench run`)."
        )
    return directories


def history(results_dir: Path, metric: str, case_filter: str | None = None, last: int = 10) -> History:
    """Run list (newest last), a table: one row per (case, backend), one column per run, the metric's value, and
    the cases whose settings changed between two runs that ran them.

    ``epoch_time_s`` / ``samples_per_s`` are steady-state medians; ``test_acc`` is the mean over seeds.
    """
    directories = _history_runs(results_dir, metric)
    runs: list[HistoryRun] = []
    columns, cases, labelled = {}, set(), {}
    unreadable: list[tuple[str, str]] = []
    for path in directories[-last:]:
        try:
            info = read_run_json(path)
            frame = read_run_table(path)
        except InputError as exc:  # one damaged run stopped the whole history, advising to "pick another run"
            runs.append(HistoryRun(path.name, started_cell(path), "", UNREADABLE, 0))
            unreadable.append((path.name, str(exc)))
            continue
        compared = compared_rows(frame)  # a tune's search samples are not trended (its final stage is)
        trials = int(frame["trial_id"].nunique()) if len(frame) else 0
        status, commit = str(info.get("status", "unknown")), short_commit(info.get("git_commit", ""))
        runs.append(HistoryRun(path.name, started_cell(path), commit, status, trials))
        if compared.empty:  # no rows, or a tune's search samples alone: listed, without a value
            continue
        cases.update(_case_names(compared))
        labelled[path.name] = labelled_by_case(compared, case_filter)
        columns[path.name] = metric_per_case(labelled[path.name], metric)
    if unreadable and len(unreadable) == len(runs):  # nothing to show
        raise _none_readable(unreadable, results_dir, len(directories) > last, last)
    if case_filter and cases and not any(case_filter in case for case in cases):
        shown = sorted(cases)
        raise InputError(
            f"Expected --case to be part of a case name in the runs shown. Received: {case_filter!r}, which is part "
            f"of none of their {len(shown)} cases: {', '.join(shown[:8])}{', ...' if len(shown) > 8 else ''}. "
            "To fix, give part of one of them, or widen --last."
        )
    table = pd.DataFrame(columns)
    if not table.empty:
        table.index = pd.MultiIndex.from_tuples(table.index, names=["case", "backend"])
        table = table.sort_index()
    changes = settings_changes(labelled)
    return History(tuple(runs), table, changes, *cell_states(labelled, metric), unreadable=tuple(unreadable))


def _none_readable(unreadable: list[tuple[str, str]], results_dir: Path, more: bool, last: int) -> InputError:
    """No run of history's window can be read: the newest one's reason is the error. ``more``: older runs lie
    beyond the window."""
    older = f", or a --last above {last} for older runs" if more else ""
    return InputError(
        f"{unreadable[-1][1]} (no run of the {len(unreadable)} in history's window can be read: move them out of "
        f"{results_dir}{older})"
    )


Cell = tuple[str, str, str]  # (case, backend, run id)
# A time's cell of trials that ended ok with steady rows but no time: deep_features reading its features from the
# cache times no extraction (compare says "no epoch time recorded"); an edited table may have dropped the times.
NOT_TIMED = "not timed"
NOT_TIMED_CACHED = "not timed (features from the cache)"


def cell_states(
    labelled: dict[str, pd.DataFrame], metric: str
) -> tuple[frozenset[Cell], dict[Cell, str], dict[Cell, str]]:
    """The trend's cells that have no value though the run had the case: no trial ended ok; or, for a time, they
    ended ok with nothing timed, said why (WARMUP_ONLY: no steady epoch; NOT_TIMED: steady rows without a time, as
    deep features read from the cache leave). Then the cells whose value covers only some trials, the others failed,
    diverged or skipped, as "ok/all": a mean over the trials that survived read as the case's, and rose where a bad
    seed dropped out (compare calls that a trials regression)."""
    from harness.statistics import from_feature_cache

    not_ok, untimed, partly_ok = set(), {}, {}
    for run_id, frame in labelled.items():
        for (case, backend), group in frame.groupby(["case", "backend"]):
            cell = (str(case), str(backend), run_id)
            finals = final_rows(group)
            ok = int((finals["status"] == "ok").sum())
            steady = steady_rows(in_timed_phase(group)) if metric != "test_acc" else None
            if not ok:
                not_ok.add(cell)
            elif steady is not None and steady.empty:
                untimed[cell] = WARMUP_ONLY
            elif steady is not None and steady[metric].isna().all():
                untimed[cell] = NOT_TIMED_CACHED if from_feature_cache(group) else NOT_TIMED
            elif ok < len(finals):
                partly_ok[cell] = f"{ok}/{len(finals)}"
    return frozenset(not_ok), untimed, partly_ok


def settings_changes(frames: dict[str, pd.DataFrame]) -> tuple[SettingsChange, ...]:
    """Per (case, backend), each run (``frames``: run id -> its rows with a ``case`` column, oldest first) whose
    settings, runtime options, seeds ended ok, machine, threads or framework version differ from the previous run
    that ran the case (a mean over other seeds differs by which seeds were drawn, as compare notes)."""
    from harness.compare import config_change, data_change, runtime_change  # compare reads rows with summary's helpers

    last: dict[tuple[str, str], pd.DataFrame] = {}
    changes = []
    for run_id, frame in frames.items():
        for (case, backend), rows in frame.groupby(["case", "backend"]):
            key = (str(case), str(backend))
            if key in last:
                changed = (
                    config_change(last[key], rows),
                    data_change(last[key], rows),
                    runtime_change(last[key], rows),
                    _seed_change(last[key], rows),
                    environment_change(last[key], rows),
                )
                what = "; ".join(c for c in changed if c)
                if what:
                    changes.append(SettingsChange(run_id, *key, what))
            last[key] = rows
    return tuple(changes)


def _seed_change(before: pd.DataFrame, after: pd.DataFrame) -> str:
    """ "seeds 0,1→0" when the two runs of a case have other seeds that ended ok, else "" (also where a side has none:
    its cell has no value to compare). The trend's value covers the trials that ended ok: a seed that diverged in one
    run left its mean as a dropped seed would, though both runs had run it."""
    finals = [final_rows(rows) for rows in (before, after)]
    seeds = [
        ",".join(str(s) for s in sorted({int(s) for s in f[f["status"] == "ok"]["seed"].dropna()})) for f in finals
    ]
    return f"seeds {seeds[0]}→{seeds[1]}" if all(seeds) and seeds[0] != seeds[1] else ""


def _case_names(frame: pd.DataFrame) -> list[str]:
    """suite:case label of every row."""
    keys = ("suite", "strategy", "model", "variant", "dataset")
    rows: Iterable[tuple[str, ...]] = zip(*(frame[k].tolist() for k in keys), strict=True)
    return [
        f"{suite}:{case_label(strategy, model, variant, dataset)}" for suite, strategy, model, variant, dataset in rows
    ]


def labelled_by_case(frame: pd.DataFrame, case_filter: str | None) -> pd.DataFrame:
    """``frame`` with each row's suite:case label in a ``case`` column, only the cases ``case_filter`` is part of."""
    frame = frame.assign(case=_case_names(frame))
    return frame[frame["case"].str.contains(case_filter, regex=False)] if case_filter else frame


def metric_per_case(frame: pd.DataFrame, metric: str) -> dict[tuple[str, str], float]:
    """(case, backend) -> the metric over one run (rows labelled by :func:`labelled_by_case`): steady-state median of a
    time, mean final test accuracy."""
    values = {}
    for (case, backend), group in frame.groupby(["case", "backend"]):
        if metric == "test_acc":
            finals = final_rows(group)
            values[(str(case), str(backend))] = float(finals[finals["status"] == "ok"]["test_acc"].mean())
        else:
            steady = steady_rows(in_timed_phase(group))  # one phase of a case of several (summary.timed_phase)
            values[(str(case), str(backend))] = float(steady[metric].median()) if len(steady) else float("nan")
    return values


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
