"""The ``xfbench`` command line: parse, hand to the planner / runner / reports, render, exit.

Bad input (:class:`harness.errors.InputError`) exits with status 2 and a one-line message before any trial runs;
any other exception is a fault and keeps its traceback. A run with a trial that did not end ok (failed, diverged,
skipped) exits 1 after printing the table; an interrupted run (Ctrl-C, SIGTERM) exits 130; a clean run exits 0.
The options are declared in :mod:`harness.cli_options`, the tables drawn by :mod:`harness.reporting`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli_options import (
    PATH_PREFIX,
    build_parser,
    given_execution,
    given_search_options,
    model_options_from_args,
    new_run_execution,
    override_flags,
    overrides_from_args,
    search_request_from_args,
    selection_from_args,
)
from harness.errors import InputError
from harness.model_import import parse_model_ref
from harness.model_table import ModelRequest, describe_model
from harness.models import ModelOptions
from harness.option_types import changed_threshold_options
from harness.plan import ExecutionOptions, RunPlan, resume_command
from harness.planner import plan_run, plan_tune
from harness.search import optuna_missing
from harness.suites import SUITES
from harness.user_files import check_output_file, missing_folders, remove_if_left_empty, writable_results_dir

if TYPE_CHECKING:  # compare is imported where it is used: it brings scipy, which `xfbench run` does not need
    from harness.compare import Thresholds

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130
EXIT_CLOSED_PIPE = 141  # as a shell reports a process that a closed pipe ended (128 + SIGPIPE)


def plan_from_args(args: argparse.Namespace) -> RunPlan:
    selection, overrides = selection_from_args(args), overrides_from_args(args)
    if args.command == "run":
        plan = plan_run(selection, overrides)
    else:
        request = search_request_from_args(args)
        if request.algorithm == "optuna" and importlib.util.find_spec("optuna") is None:
            raise optuna_missing()
        plan = plan_tune(selection, overrides, request)
    _check_normalize_weights_applies(args, plan)
    return plan


def _check_normalize_weights_applies(args: argparse.Namespace, plan: RunPlan) -> None:
    """--normalize weights with --suite: overrides_from_args leaves it to each case's weights, which a suite of no
    pretrained case lacks; it was dropped without a word, where a single case without weights exits 2."""
    if vars(args).get(f"{PATH_PREFIX}input.normalize") != "weights" or not getattr(args, "suite", None):
        return
    if not any(t.transfer.pretrained or t.transfer.weights_file for t in plan.planned_trials):
        raise InputError(
            "Expected --normalize weights only where a case loads pretrained weights (the weight set's own "
            f"normalisation). Received: --suite {args.suite}, none of whose selected cases does, so it "
            "would change nothing. To fix, drop --normalize weights."
        )


def _checked_execution(options: ExecutionOptions) -> ExecutionOptions:
    from harness.preflight import check_execution

    return check_execution(options)


def _check_reference(reference: str | None, plan: RunPlan, fix: str) -> None:
    """--reference among the backends ``plan`` trains: a reference no trial ran on, its tables would compare
    nothing (a new run's plan, or the plan a resumed run recorded)."""
    planned = sorted({t.backend for t in plan.planned_trials})
    if reference is not None and reference not in planned:
        raise InputError(
            f"Expected --reference to be one of the backends this run trains, {planned}. Received: "
            f"{reference!r}. {fix.format(reference=reference)}"
        )


@dataclass(frozen=True)
class _Prepared:
    plan: RunPlan
    run_id: str
    results_dir: Path
    provenance: dict[str, dict[str, str]]
    ship: dict[str, Any]
    settings: Any
    weights_keys: dict[
        str, str
    ]  # each pretrained trial's weights as preflight converted them (TrialConfig.weights_key)


def _how_to_finish(run_dir: Path) -> str:
    """For a refused --run-id: the resume that finishes the run it names (a user retyping an interrupted run's
    command), as its run.json records its kind; "" for a run that ended or a folder that is not a run."""
    from harness.plan import recorded_resume_command
    from harness.user_files import read_run_json

    if not (run_dir / "run.json").is_file():
        return ""
    try:
        info = read_run_json(run_dir)
    except InputError:  # damaged: the name is still taken, and nothing says how it would resume
        return ""
    if info.get("status") == "finished":
        return ""
    return f"; to finish that run, `{recorded_resume_command(info, run_dir)}`"


def _prepare(args: argparse.Namespace) -> _Prepared:
    """Everything that can fail on bad input, before Ray: plan, run id, data present, what ships to the workers."""
    from harness.baselines import saved_baseline_dir
    from harness.preflight import check_gpu_suites, datasets_to_ship, local_environ, local_memory_bytes, preflight
    from harness.runner import check_run_id, new_run_id, scheduler_settings

    plan = plan_from_args(args)
    _check_reference(args.reference, plan, "To fix, pass one of those, or add --backend {reference}.")
    results_dir = writable_results_dir(Path(args.results_dir).expanduser().resolve())
    if args.run_id is not None:
        check_run_id(args.run_id)
        if (results_dir / args.run_id).exists():
            finish = _how_to_finish(results_dir / args.run_id)
            raise InputError(
                f"Expected a new --run-id. Received: {args.run_id!r}, which already exists in {results_dir}. "
                f"To fix, pick another name (or leave --run-id out for a time-stamped one){finish}."
            )
        baseline = saved_baseline_dir(args.run_id, results_dir, choose=False)
        if baseline is not None:  # compare, report and export look both up by name
            raise InputError(
                f"Expected a --run-id that no saved baseline goes by. Received: {args.run_id!r}, the baseline "
                f"{baseline}. To fix, pick another name."
            )
    # The execution options first: they need no data, and preflight may download or convert for minutes.
    options = _checked_execution(new_run_execution(args))
    loaded: dict[str, Any] = {}
    weights_keys: dict[str, str] = {}
    trials = list(plan.planned_trials)
    check_gpu_suites((SUITES[n] for n in {t.suite for t in trials} if n in SUITES), args.gpus_per_trial)
    provenance = preflight(
        trials,
        args.data_dir,
        download=not args.no_download,
        loaded=loaded,
        cache_dir=results_dir / "_cache",
        memory_bytes=local_memory_bytes(options),
        search=plan.search,
        environ=local_environ(options),
        weights_keys=weights_keys,
    )
    ship = datasets_to_ship(trials, options.ship_data, options.address, loaded=loaded)
    settings = scheduler_settings(results_dir, options, verbose=args.verbose)
    run_id = args.run_id or new_run_id(plan.label, results_dir)  # last: a default id claims its directory
    return _Prepared(plan, run_id, results_dir, provenance, ship, settings, weights_keys)


def _start(args: argparse.Namespace) -> int:
    """A new run: plan and preflight (exit 2 on bad input, before Ray), execute, render."""
    from harness.reporting import run_progress
    from harness.runner import execute

    with _no_empty_folders_left_on_failure(Path(args.results_dir).expanduser().resolve()):
        p = _prepare(args)
        outcome = execute(
            p.plan,
            results_dir=p.results_dir,
            run_id=p.run_id,
            settings=p.settings,
            progress=run_progress(p.settings.max_failures),
            command=["xfbench", *sys.argv[1:]],
            data_provenance=p.provenance,
            weights_keys=p.weights_keys,
            ship=p.ship,
            reference=args.reference,
            html_report=args.html_report,
        )
    return _finish(outcome, args)


@contextlib.contextmanager
def _no_empty_folders_left_on_failure(results_dir: Path) -> Iterator[None]:
    """Inside: a command that may create folders before it writes a file (the results folder; the folders of an
    imported model's conversion and of a weight file's, which a refused name or file left behind empty in a results
    folder already in use); each it created and left empty is removed if it fails (bad input, no node offering the
    GPUs)."""
    cache = results_dir / "_cache"
    created = [missing_folders(folder) for folder in (cache / "imports", cache / "pretrained", results_dir)]
    try:
        yield
    except BaseException:
        for folder in created:
            remove_if_left_empty(folder)
        raise


def _resume_settings(args: argparse.Namespace) -> Any:
    from harness.runner import check_run_id, resumable, scheduler_settings

    changes_trials = overrides_from_args(args).keys() - {"runtime.threads", "runtime.device"}
    if getattr(args, f"{PATH_PREFIX}schedule.name") is None:  # --piecewise alone implies it: not typed
        changes_trials -= {"schedule.name"}
    given = _plan_options_given(args) + override_flags(sorted(changes_trials))
    given += ["--no-download"] if getattr(args, "no_download", False) else []  # a resume never downloads
    if given == ["--data-dir"]:  # the trials record their folder: a run whose data moved is resumed from the old path
        raise InputError(
            "Expected --resume without --data-dir: a resumed run reads its data from the folder its trials recorded. "
            "Received: --data-dir. To fix, leave it out; where that folder moved, link its old path to the new one "
            "(ln -s NEW OLD: the files are checked against the content the run began with), or start a new run."
        )
    if given:
        raise InputError(
            "Expected --resume with execution options only (the run keeps its recorded trials and search). "
            f"Received: {given}. To fix, leave them out to finish the run as planned, or start a new run with them."
        )
    results_dir = Path(args.results_dir).expanduser().resolve()
    check_run_id(args.resume, "--resume")
    if not (results_dir / args.resume / "run.json").is_file():
        raise InputError(
            f"Expected a run to resume in {results_dir}. Received: {args.resume!r}, which has no "
            "run.json there. To fix, give --results-dir the folder that holds the run (`xfbench history` lists the "
            "runs of a folder), or the id of a run there."
        )
    if args.reference is not None:  # before Ray starts, as for a new run
        from harness.plan import read_run_file

        recorded = read_run_file(results_dir / args.resume).plan
        _check_reference(
            args.reference, recorded, "To fix, pass one of those: a resumed run trains the backends it recorded."
        )
    options = resumable(results_dir, args.resume, args.command, given_execution(args))  # execution checked first
    return scheduler_settings(results_dir, options, verbose=args.verbose)


def _plan_options_given(args: argparse.Namespace) -> list[str]:
    """The selection and search options given on the command line: a resumed run keeps its recorded ones, so each
    is refused rather than silently ignored."""
    selection = {"suite": "--suite", "strategy": "--strategy", "model": "--model", "dataset": "--dataset"}
    selection |= {"run_id": "--run-id", "backends": "--backend", "seeds": "--seeds"}
    return [flag for name, flag in selection.items() if getattr(args, name, None)] + given_search_options(args)


def _resume(args: argparse.Namespace) -> int:
    """``--resume RUN_ID``: the run's own recorded plan; only execution options may change."""
    from harness.reporting import run_progress
    from harness.runner import resume

    settings = _resume_settings(args)
    results_dir = Path(args.results_dir).expanduser().resolve()
    outcome = resume(
        results_dir,
        args.resume,
        settings=settings,
        progress=run_progress(settings.max_failures),
        reference=args.reference,
        html_report=args.html_report,
    )
    _say_what_resume_kept(outcome.run_dir)
    return _finish(outcome, args)


def _say_what_resume_kept(run_dir: Path) -> None:
    """What the resume took from before (run.json records it): finished trials kept, not re-run; failed ones and
    the cut one's partial rows run again."""
    from harness.plan import read_run_file

    run_file = read_run_file(run_dir)
    last = run_file.record.resumes[-1]
    failed = (
        f", re-ran {len(last.failed_trials_rerun)} that had failed, been skipped, lost their backbone file or ran "
        "another configuration (run.json: resumes, rerun_errors)"
        if last.failed_trials_rerun
        else ""
    )
    print(
        f"resumed {run_dir.name}: kept {last.finished_trials_kept} finished trial(s) without re-running them{failed}, "
        f"discarded {last.partial_rows_discarded} partial row(s) of trials cut short (run again)",
        file=sys.stderr,
    )
    changed = last.changed_execution(run_file.execution)
    if changed:  # the rows before it ran otherwise: run.json -> resumes -> execution_before keeps how
        options = ", ".join(
            f"{_flag(name, now)} (was {_shown(name, before)})" for name, (before, now) in changed.items()
        )
        print(f"resumed {run_dir.name} under {options}; its earlier rows ran as before", file=sys.stderr)


def _flag(name: str, value: Any) -> str:
    """An execution option as given on the command line: ``--cpus-per-trial 2``, ``--no-fresh-workers``."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else flag.replace("--", "--no-", 1)
    return f"{flag} {_shown(name, value)}"


def _shown(name: str, value: Any) -> str:
    """A recorded option's value as the command line takes it (None: Ray's local instance; as the cores allow)."""
    if value is None:
        return {"address": "local", "max_concurrent": "auto"}.get(name, "none")
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _finish(outcome: Any, args: argparse.Namespace) -> int:
    from harness.reporting import print_run_summary

    kind = args.command
    print_run_summary(outcome, args.format, search=outcome.search)  # compared with --reference, as summary.md
    if outcome.status == "interrupted":
        print(
            f"interrupted: finish it with `{resume_command(kind, outcome.run_dir)}`",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    _say_how_to_rerun_failures(outcome, kind)
    return 0 if outcome.all_ok else 1


def _say_how_to_rerun_failures(outcome: Any, kind: str) -> None:
    """A finished run's failed trials (a worker killed or out of memory), a tune's outside its search, can be run
    again alone: say how."""
    from harness.runner import resumable_failures

    searched = outcome.search is not None
    if searched and "stage" in outcome.frame:
        _say_which_samples_were_not_ok(outcome)
    failed = resumable_failures(outcome.frame, outcome.search)
    if failed:
        print(
            f"{len(failed)} trial(s) failed{' outside the search' if searched else ''}: rerun them alone (and any "
            f"skipped for them{', the samples that ran kept as they ended' if searched else ''}) with "
            f"`{resume_command(kind, outcome.run_dir)}`",
            file=sys.stderr,
        )


def _say_which_samples_were_not_ok(outcome: Any) -> None:
    """A tune's samples that diverged or failed, counted, so a user knows what the Search table holds and why a tune
    exits 1 (a failed sample, or a backend with no ok sample to re-run), or 0 with diverged samples."""
    from harness.stages import STAGE_SEARCH
    from harness.summary import final_rows

    samples = final_rows(outcome.frame[outcome.frame["stage"] == STAGE_SEARCH])
    counts = samples["status"].value_counts()
    not_ok = {str(status): int(n) for status, n in counts.items() if status != "ok"}
    if not not_ok:
        return
    said = ", ".join(f"{n} {status}" for status, n in sorted(not_ok.items()))
    missed = outcome.searches_not_rerun()
    rerun = (
        "no ok sample to re-run for " + ", ".join(f"{case} [{backend}]" for case, backend in missed)
        if missed
        else "the best ok sample of each backend was re-run"
    )
    print(f"search: {said} of {len(samples)} sample(s) (the Search table above); {rerun}", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from harness.reporting import print_catalogue

    print_catalogue(args.kinds)
    return 0


def _thresholds(args: argparse.Namespace) -> Thresholds:
    """compare's and the report's thresholds (option_types.add_threshold_options)."""
    from harness.compare import Thresholds

    return Thresholds(
        time_ratio=args.time_threshold,
        accuracy_pp=args.accuracy_threshold,
        alpha=args.alpha,
        times_across_machines=args.times_across_machines,
    )


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.baselines import (
        environment_warnings,
        missing_backends_warning,
        run_state_warnings,
        unseen_cases_warning,
    )
    from harness.compare import compare_frames
    from harness.reporting import comparison_markdown, nothing_compared, print_comparison

    results_dir = Path(args.results_dir).expanduser()
    if args.markdown:
        check_output_file(Path(args.markdown), "--markdown")
    thresholds = _thresholds(args)
    base, new = _load_compared_runs(args.base, args.new, results_dir)
    warnings = environment_warnings(base.environment, new.environment) + run_state_warnings(base, new)
    rows = compare_frames(base.frame, new.frame, thresholds)
    unseen = unseen_cases_warning(
        new, [(r.case, r.backend) for r in rows if r.only_in == "base"], args.fail_on_regression
    )
    missing = missing_backends_warning(new, rows, args.fail_on_regression)
    warnings += [w for w in (unseen, missing) if w]
    print_comparison(base, new, rows, warnings, thresholds)
    if args.markdown:
        Path(args.markdown).write_text(comparison_markdown(rows, base.label, new.label, warnings, thresholds))
    regressed = any(r.regressed for r in rows)
    if not any(r.in_both for r in rows):  # a gate that compared nothing must not pass as "no regression"
        warning = f"WARNING: nothing compared: {nothing_compared(base.label, new.label)}" + (
            "; --fail-on-regression fails" if args.fail_on_regression else ""
        )
        print(textwrap.fill(warning, shutil.get_terminal_size().columns, break_on_hyphens=False), file=sys.stderr)
        return 1 if args.fail_on_regression else 0
    return 1 if (regressed or unseen or missing) and args.fail_on_regression else 0


def _load_compared_runs(base: str, new: str, results_dir: Path) -> tuple[Any, Any]:
    """BASE as the baseline saved for NEW's machine (a name saved under several machine keys); BASE's error said
    first when both are bad, as they are read."""
    from harness.baselines import load_run

    try:
        loaded_new = load_run(new, results_dir)
    except InputError as new_error:
        load_run(base, results_dir, choose=False)  # BASE's own fault first (missing, damaged), not an ambiguity
        raise new_error from None  # that NEW's machine would have settled
    return load_run(base, results_dir, loaded_new.environment.machine_key), loaded_new


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.baselines import list_baselines, resolve, run_directories, save_baseline

    results_dir = Path(args.results_dir).expanduser()
    if args.baseline_command == "list":
        from harness.reporting import print_baselines

        print_baselines(list_baselines(results_dir), results_dir)
        return 0
    writable_results_dir(results_dir.resolve())
    if args.run:
        run_dir = resolve(args.run, results_dir)
    else:
        runs = run_directories(results_dir)
        if not runs:
            raise InputError(
                f"Expected a run to save. Received: no runs in {results_dir}. To fix, pass --run, or run `xfbench run` "
                "first."
            )
        run_dir = runs[-1]
    outcome = save_baseline(run_dir, args.name, results_dir)
    if outcome.replaced:
        held = f", which held {outcome.previous_run}," if outcome.previous_run else ""
        print(f"replaced baseline {args.name!r}{held} with {run_dir} in {outcome.path}")
    else:
        print(f"saved baseline {args.name!r} from {run_dir} in {outcome.path}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from harness.baselines import history
    from harness.reporting import print_history

    found = history(Path(args.results_dir).expanduser(), args.metric, args.case, args.last)
    print_history(found, args.metric, args.results_dir)
    return 0


def _report_source(given: str, results_dir: Path) -> Path:
    """A run (directory, id or baseline name, as compare and export look them up), else a folder of runs."""
    from harness.baselines import resolve

    try:
        return resolve(given, results_dir)
    except InputError:
        if Path(given).is_dir():  # a results directory: its runs, newest last
            return Path(given)
        raise


def cmd_report(args: argparse.Namespace) -> int:
    from harness.baselines import is_baseline_dir, is_run_dir
    from harness.report_html import build_report

    results_dir = Path(args.results_dir).expanduser()
    paths = [_report_source(r, results_dir) for r in args.runs]
    single_run = len(paths) == 1 and is_run_dir(paths[0])  # its rows, with or without run.json beside them
    baseline = single_run and is_baseline_dir(paths[0], results_dir)  # git tracks baselines/: nothing drawn there
    default = paths[0] / "report.html" if single_run and not baseline else Path("report.html")
    out = check_output_file(args.output or default, "--output", own=default if single_run and not baseline else None)
    if out.suffix.lower() not in (".html", ".htm"):  # the page is HTML whatever its name; a .txt would mislead
        raise InputError(
            f"Expected --output to name an HTML file (.html). Received: {out}. To fix, name it e.g. "
            f"{out.with_suffix('.html')} (summary.md beside each run is the text version)."
        )
    history_only = [f"--metric {args.metric}"] if args.metric is not None else []
    history_only += changed_threshold_options(lambda name: getattr(args, name))
    metric = args.metric or "epoch_time_s"
    with _held_if_inside(paths[0] if single_run else None, out):
        report = build_report(paths, out, args.reference, metric, _thresholds(args), history_only)
    files = f"; PNG and SVG in {report.plot_dir}" if report.plots else ""  # no plot, no folder
    print(f"wrote {report.path} ({report.size_bytes / 1024:,.0f} KiB, {len(report.plots)} plots{files})")
    return 0


def _held_if_inside(run_dir: Path | None, out: Path) -> contextlib.AbstractContextManager[None]:
    """The run's lock while a report is drawn into its folder: a driver ending draws report.html and report_plots/
    there too, and two writers removed each other's plots and could leave a finished run's page "still running"."""
    from harness.run_lock import driving

    if run_dir is None or not out.resolve().is_relative_to(run_dir.resolve()):
        return contextlib.nullcontext()
    fix = "To fix, let it end: it draws report.html itself; or give --output to draw this report elsewhere."
    return driving(run_dir, f"draw {out.name}", fix)


def cmd_export(args: argparse.Namespace) -> int:
    from harness.baselines import resolve
    from harness.mlflow_export import export_run
    from harness.mlflow_uri import normalised_uri, sqlite_file, without_password
    from harness.plan import UNFINISHED_STATUSES, recorded_resume_command
    from harness.user_files import read_run_json

    run_dir = resolve(args.run, Path(args.results_dir).expanduser())
    exported = export_run(run_dir, args.mlflow, args.experiment, args.replace, args.artifact_location)
    database = sqlite_file(
        normalised_uri(args.mlflow)
    )  # sqlite:///x.db is relative to the working directory: say which file
    shown = without_password(args.mlflow, args.mlflow)
    store = f"{shown} ({database})" if database else shown
    files = f", files in {exported.artifact_location}" if exported.artifact_location else ""
    where = f"{store} (experiment {args.experiment!r}, parent run {exported.parent_run_id}{files})"
    if exported.outcome == "unchanged":
        print(f"{run_dir.name} is already in {where}, its {len(exported.trial_runs)} trials as they are now: "
              "nothing written")  # fmt: skip
    elif exported.outcome == "updated":  # exported before it finished; finished since with the same trials
        print(f"{run_dir.name} is already in {where}, its {len(exported.trial_runs)} trials as they are now: "
              f"updated its parent run to the run's status, {exported.run_status}, and its files")  # fmt: skip
    else:
        verb = "replaced the earlier export with" if exported.outcome == "replaced" else "exported"
        print(f"{verb} {len(exported.trial_runs)} trials of {run_dir.name} to {where}")
    if exported.run_status in UNFINISHED_STATUSES:
        print(
            f"warning: {run_dir.name} is {exported.run_status}, not finished: its trials stop where it did (tag "
            "xfbench.run_status; its parent run ended KILLED). Export it again once it finished (a run whose driver "
            f"stopped: `{recorded_resume_command(read_run_json(run_dir), run_dir)}`): with the same trials it updates "
            "this export's parent run; after a resume that ran trials it needs --replace.",
            file=sys.stderr,
        )
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """A model's table; a torchvision:, keras: or python: model converted in a worker into the results folder's
    cache, which a refused name (torchvision:nosuch) left behind empty: removed, as a refused run's is."""
    with _no_empty_folders_left_on_failure(Path(args.results_dir).expanduser().resolve()):
        return _describe_model(args)


def _describe_model(args: argparse.Namespace) -> int:
    options = ModelOptions(**model_options_from_args(args))
    results_dir = Path(args.results_dir).expanduser().resolve()
    if parse_model_ref(args.name).kind not in ("zoo", "spec"):  # converted in a worker, cached under results_dir
        writable_results_dir(results_dir)
    cache = results_dir / "_cache"
    request = ModelRequest(args.name, args.input_size, args.channels, args.classes, options, cache)
    if args.export_spec:
        ref = parse_model_ref(args.name)
        check_output_file(Path(args.export_spec), "--export-spec", [Path(ref.name)] if ref.kind == "spec" else [])
        if Path(args.export_spec).suffix != ".json":
            raise InputError(
                f"Expected --export-spec to name a .json file: --model reads a spec file by that ending. Received: "
                f"{args.export_spec}. To fix, name it e.g. {Path(args.export_spec).with_suffix('.json').name}."
            )
    print(describe_model(request, args.json, args.export_spec))
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from harness.pretrained import cached_weights, fetch_weights, weights_home

    if args.weights_command == "fetch":
        for label, path in fetch_weights(args.names):
            print(f"{label}: {path}")
        return 0
    cached = cached_weights(verify=args.verify)
    print(f"weights home: {weights_home()} (set $XFBENCH_WEIGHTS to move it)")
    for entry in cached:
        print(
            f"{entry.label or '(copied in)':<36} {entry.framework:<6} {entry.size_bytes / 2**20:8.1f} MiB  {entry.path}"
        )
        if entry.problem:  # listed, not raised: the rest of the home is still worth seeing
            fetch = (
                f"`xfbench weights fetch {entry.label}`"
                if entry.label
                else "`xfbench weights fetch torchvision:NAME` (its set)"
            )
            print(f"  ! {entry.problem}; a run refuses it: {fetch} replaces it")
    if not cached:
        print("no weights cached: `xfbench weights fetch torchvision:resnet18 keras:MobileNetV2` fetches some")
    return 1 if any(entry.problem for entry in cached) else 0  # a script's check of the home sees what was flagged


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list,
    "compare": cmd_compare,
    "baseline": cmd_baseline,
    "history": cmd_history,
    "model": cmd_model,
    "report": cmd_report,
    "export": cmd_export,
    "weights": cmd_weights,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "tune"):
            return _resume(args) if args.resume is not None else _start(args)
        return COMMANDS[args.command](args)
    except InputError as exc:  # bad input, wherever it was found; any other exception keeps its traceback
        print(f"xfbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM) outside a run's trials, which end a run interrupted themselves: while Ray started,
        # planning, a report or an export. One line, not a traceback of whatever Python was doing then.
        print("xfbench: interrupted (Ctrl-C or SIGTERM)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        if not _stdout_closed():  # another pipe (a server's connection, a subprocess): a fault, with its traceback
            raise
        # `xfbench model resnet50 | head`: the reader has what it wanted. The interpreter flushes stdout again at
        # exit: point it at nothing, or that flush raises once more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on its end, as Linux and macOS do)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no such fd or no poll here (Windows): not a pipe we can tell
        return False


if __name__ == "__main__":
    sys.exit(main())
