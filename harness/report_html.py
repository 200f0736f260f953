"""``xfbench report``: one self-contained HTML page per run or history of runs, offline by construction.

The page holds the run's provenance (run.json, each resume's too), the end-of-run tables
(:func:`harness.reporting.run_tables`, the cells the terminal prints; summary.md lays them out wider and gives some
numbers to more digits), and the plots of :mod:`harness.plots` inlined as
SVG: no script, no style sheet, font or image is fetched, so it opens from a CI artefact or an e-mail. Each plot is also
written as PNG and SVG into ``<report stem>_plots/`` beside the page. Given several runs (or a results directory), the
page shows the newest run in full and the history of all of them, with the regressions ``xfbench compare`` flags
circled: each run's case against the last earlier run that ran it (a run of other cases in between is passed over).
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.backend import BACKENDS, REFERENCE_BACKEND
from harness.baselines import BASELINE_FILE
from harness.compare import CaseComparison, Thresholds, compare_frames, compared_cases, percent
from harness.errors import InputError
from harness.plan import UNFINISHED_STATUSES
from harness.provenance import short_commit
from harness.reporting import (
    TableData,
    comparison_rules,
    regression_cells,
    run_tables,
    search_results_table,
    unfinished_notice,
)
from harness.statistics import SIGNIFICANT_MARK
from harness.summary import compared_rows, summarize
from harness.tuning import TunePlan
from harness.user_files import read_run_json, read_run_table, with_rows
from harness.whole_files import write_text_whole

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 1em 0 2em; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
.note { color: #555; font-size: 0.85em; }
.warning { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 0.8em; }
"""
PROVENANCE_KEYS = (
    "run_id",
    "kind",
    "title",
    "status",
    "error",  # what stopped the driver (an interrupted run), as run.json records it
    "started",
    "finished",
    "wall_time_s",
    "git_commit",
    "command",
    "driver_host",
    "driver_cpu",
    "python_version",
    "framework_versions",
    "scheduler",
    "datasets",
    "trial_status",
    "reference",
)
# Provenance of one session where a run was resumed: run.json keeps the first session's (each resume's own code and
# command are in its `resumes` entry), or the last session's (a resume replaces them).
FIRST_SESSION = frozenset({"git_commit", "command", "driver_host", "driver_cpu", "python_version"})
LAST_SESSION = frozenset({"scheduler", "wall_time_s"})
# A resume's columns first (the rest: harness.plan.ResumeRecord's other fields, as run.json records them)
RESUME_LEADING = ("at", "git_commit", "command")


@dataclass(frozen=True)
class LoadedRunDir:
    path: Path
    frame: pd.DataFrame
    info: dict[str, Any]  # run.json as written (empty when the directory has none)

    @property
    def run_id(self) -> str:
        """The run's id; a saved baseline (results/baselines/<machine>/<name>) by its name, since it holds a copy of
        its run's run.json: a report of the baseline and that run gave both one label, and one history column."""
        if (self.path / BASELINE_FILE).is_file():  # written by `xfbench baseline save` alone
            return f"baseline {self.path.parent.name}/{self.path.name}"  # its machine too: names repeat across them
        return str(self.info.get("run_id", self.path.name))


@dataclass(frozen=True)
class Report:
    path: Path
    size_bytes: int
    plots: tuple[str, ...]  # names of the plots drawn (each also NAME.png and NAME.svg in plot_dir)
    plot_dir: Path


def run_dirs(paths: list[Path]) -> list[Path]:
    """The run directories named by ``paths`` (a run directory, or a directory of runs), oldest first."""
    from harness.baselines import is_run_dir, run_directories, run_started

    found: list[Path] = []
    for path in paths:
        runs = [path] if is_run_dir(path) else run_directories(path)
        if not runs:
            raise InputError(
                f"Expected a run directory (results.parquet or parts/) or a directory of runs. Received: {path}. "
                "To fix, give results/<run_id> or the results directory."
            )
        found += [r.resolve() for r in runs if r.resolve() not in found]
    started = {r: run_started(r) for r in found}  # as history orders them: a run without run.json is not the oldest
    return sorted(found, key=lambda r: (started[r], r.name))


def _info(run_dir: Path) -> dict[str, Any]:
    return read_run_json(run_dir)


PLOT_MANIFEST = ".xfbench-plots.json"  # in a report's plot folder: the plots xfbench drew there last


def _unclaimed_name(plot: Any, names: list[str]) -> Any:
    """``plot``, renamed ``<name>-2``, ``-3`` ... where an earlier plot of the page took its file name: two cases
    whose names differ only in characters a file name leaves out (a/b and a_b) wrote one file, the second
    overwriting the first that the page also showed."""
    from dataclasses import replace

    name, number = plot.name, 1
    while name in names:
        number += 1
        name = f"{plot.name}-{number}"
    return replace(plot, name=name) if name != plot.name else plot


def _forget_earlier_plots(plot_dir: Path, drawn: list[str]) -> None:
    """Remove the plots an earlier report drew into ``plot_dir`` that this one did not (a report of another run
    into the same folder left them beside the new ones), as its manifest lists them: nothing else in the folder
    is touched. Then list this report's plots."""
    manifest = plot_dir / PLOT_MANIFEST
    try:
        earlier = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        earlier = []  # a damaged manifest: leave the folder as it is
    for name in earlier if isinstance(earlier, list) else []:
        for suffix in (".png", ".svg"):
            stale = plot_dir / f"{name}{suffix}"
            if isinstance(name, str) and name not in drawn and stale.is_file() and stale.parent == plot_dir:
                stale.unlink()
    if plot_dir.is_dir():
        write_text_whole(manifest, json.dumps(sorted(set(drawn))))


def _recorded_reference(run: LoadedRunDir) -> str:
    """The backend the run's summary.md compared with (run.json's ``reference``; runs before it was recorded used
    the default)."""
    recorded = run.info.get("reference", REFERENCE_BACKEND)
    if recorded not in BACKENDS:
        raise InputError(
            f"Expected run.json's reference to be one of {list(BACKENDS)}. Received: {recorded!r} in "
            f"{run.path / 'run.json'}. To fix, give --reference, or correct the file."
        )
    return str(recorded)


def load(run_dir: Path) -> LoadedRunDir:
    return LoadedRunDir(run_dir, read_run_table(run_dir), _info(run_dir))


def _load_runs(paths: list[Path]) -> tuple[list[LoadedRunDir], list[tuple[str, str]]]:
    """The runs ``paths`` name, oldest first, and (run id, why) for each one found by listing a folder whose files
    cannot be read: left out and said, as ``xfbench history`` does (one damaged run stopped the whole report, saying
    "pick another run" to a user who had named a folder). A run named itself, or a folder of none readable, is
    refused."""
    from harness.baselines import is_run_dir

    named = {path.resolve() for path in paths if is_run_dir(path)}
    loaded: list[LoadedRunDir] = []
    unreadable: list[tuple[str, str]] = []
    for run_dir in run_dirs(paths):
        try:
            loaded.append(load(run_dir))
        except InputError as exc:
            if run_dir in named:
                raise
            unreadable.append((run_dir.name, str(exc)))
    if not loaded:
        said = "; ".join(f"{run}: {why}" for run, why in unreadable)
        raise InputError(
            f"Expected at least one readable run in {', '.join(map(str, paths))}. Received: {len(unreadable)} run(s), "
            f"none readable ({said}). To fix, run again, or pass the folder that holds the runs you mean."
        )
    return loaded, unreadable


def _check_history_options(given: Sequence[str], runs: list[LoadedRunDir], loaded: int) -> None:
    if given and len(runs) == 1:  # refused, as other options that change nothing are
        alone = f" (the only one with rows of the {loaded} runs given)" if loaded > 1 else ""
        raise InputError(
            f"Expected {', '.join(h.split()[0] for h in given)} with several runs or a folder of runs: they pick the "
            f"history's metric and what it marks as a regression. Received: {', '.join(given)} for the one run "
            f"{runs[0].path}{alone}, which has no history. To fix, drop them, or add runs."
        )


def _left_out_note(loaded: list[LoadedRunDir], drawn: list[LoadedRunDir], unreadable: list[tuple[str, str]]) -> str:
    """The runs left out of the report, for want of rows or of readable files, said where ``xfbench history``
    lists them too."""
    shown = {id(run) for run in drawn}  # by identity: a run's frame has no truth value to compare by
    left_out = [
        f"{run.run_id} ({run.info.get('status', 'no status recorded')})" for run in loaded if id(run) not in shown
    ]
    notes = []
    if left_out:
        notes.append(
            f"<p class='note'>Left out, no trial finished: {html.escape(', '.join(left_out))} (<code>xfbench "
            "history</code> lists them; <code>xfbench run --resume RUN_ID</code>, a search's <code>xfbench tune "
            "--resume RUN_ID</code>, goes on with an interrupted one).</p>"
        )
    if unreadable:
        said = "; ".join(f"{run}: {why}" for run, why in unreadable)
        notes.append(f"<p class='note'>Left out, unreadable: {html.escape(said)}</p>")
    return "\n".join(notes)


def _prose_html(text: str) -> str:
    """Escaped prose whose `code` spans (written for summary.md's markdown) become <code>: shown as backticks, a
    note's `xfbench compare` read as markdown source."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _table_html(table: TableData) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f"\n<p class='note'>{_prose_html(table.note)}</p>" if table.note else ""
    return f"<h3>{html.escape(table.title)}</h3>\n<table><tr>{head}</tr>{body}</table>{note}"


def _command_text(value: Any) -> str:
    """The run's command as a shell line that can be pasted back: arguments with spaces, quotes, <, & or $ quoted
    (joined with plain spaces, `--title 'my run'` was read back as two arguments)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    return value if isinstance(value, str) else json.dumps(value)  # a hand-edited run.json: shown as it is


def _cell_text(value: Any) -> str:
    """A run.json value as one cell: text as it is, a list of names joined, a mapping as ``key: value`` pairs."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in value.items())
    return json.dumps(value)


def _resumes(info: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's resumes, oldest first (a hand-edited entry that is not a record left out)."""
    resumes = info.get("resumes")
    return [r for r in resumes if isinstance(r, dict)] if isinstance(resumes, list) else []


def _session_label(key: str, resumed: bool) -> str:
    """``key``, saying which session its value is of where the run was resumed: the first one's commit and command
    read as the code that produced every row, the last one's wall time as the whole run's."""
    if resumed and key in FIRST_SESSION:
        return f"{key} (first session)"
    return f"{key} (last session)" if resumed and key in LAST_SESSION else key


def _session_commits(info: dict[str, Any], resumes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A row of the commits the run's sessions ran, where they differ (a resume after a `git pull`); none else. A
    resume recorded before its commit was has none to list."""
    sessions = [("first session", info.get("git_commit"))]
    sessions += [(f"resume {n}", r.get("git_commit")) for n, r in enumerate(resumes, start=1)]
    known = [(session, commit) for session, commit in sessions if isinstance(commit, str) and commit]
    if len({commit for _, commit in known}) < 2:
        return []
    return [("git commits (each session)", ", ".join(f"{commit} ({session})" for session, commit in known))]


def _provenance_html(info: dict[str, Any]) -> str:
    resumes = _resumes(info)
    cells: list[tuple[str, str]] = []
    for key in PROVENANCE_KEYS:
        if key in info and info[key] not in (None, "", {}, []):
            value = info[key]
            text = _command_text(value) if key == "command" else value if isinstance(value, str) else json.dumps(value)
            cells.append((_session_label(key, bool(resumes)), str(text)))
            cells += _session_commits(info, resumes) if key == "git_commit" else []
    nodes = info.get("ray_nodes") or []
    if nodes:
        cells.append(("ray_nodes", json.dumps(nodes)))
    rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>" for key, text in cells)
    return f"<table>{rows}</table>" + _resumes_html(info, resumes)


def _options_changed(before: Any, after: Any) -> str:
    """The execution options a resume changed, ``before`` (its execution_before) -> ``after`` (the next session's,
    run.json's scheduler for the last)."""
    if not isinstance(before, dict):
        return "not recorded"  # a resume recorded before 2026-12-05
    if not isinstance(after, dict):
        return _cell_text(before)
    changed = [f"{k} {json.dumps(v)} -> {json.dumps(after[k])}" for k, v in before.items() if after.get(k, v) != v]
    return ", ".join(changed) or "none"


def _resumes_html(info: dict[str, Any], resumes: list[dict[str, Any]]) -> str:
    """Each resume as run.json records it (harness.plan.ResumeRecord): when, the code and command it ran, the trials
    it kept and reran, and the execution options it changed. Nothing for a run never resumed."""
    if not resumes:
        return ""
    from dataclasses import fields

    from harness.plan import ResumeRecord

    columns = [*RESUME_LEADING, *(f.name for f in fields(ResumeRecord) if f.name not in RESUME_LEADING)]
    afters = [*(r.get("execution_before") for r in resumes[1:]), info.get("scheduler")]
    rows = []
    for number, (resume, after) in enumerate(zip(resumes, afters, strict=True), start=1):
        cells = [
            _options_changed(resume.get(c), after) if c == "execution_before"
            else _command_text(resume[c]) if c == "command" and c in resume
            else _cell_text(resume.get(c, ""))
            for c in columns
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in [str(number), *cells]) + "</tr>")
    shown = ["resume", *("execution options changed" if c == "execution_before" else c for c in columns)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in shown)
    note = (
        f"<p class='note'>Resumed {len(resumes)} time(s): the rows above marked first session are the run's first "
        "start's, those marked last session the last resume's (started ... finished spans them all); each resume "
        "ran the code and command below.</p>"
    )
    return f"\n{note}\n<table><tr>{head}</tr>{''.join(rows)}</table>"


# A comment or a tag of the SVG: text between tags (a case's name in a title or legend) is neither. In matplotlib's
# SVG a comment holds no '>' and a tag's attribute values hold none either (both escaped as &gt;).
SVG_MARKUP = re.compile(r"<!--.*?-->|<[^>]*>", re.S)
SVG_ID = re.compile(r'(\sid=")([^"]+")')
SVG_REFERENCE = re.compile(r'(url\(#)([^)]+\))|(href="#)([^"]+")')


def _inline_svg(svg: str, prefix: str) -> str:
    """The SVG without its XML prolog, its ids prefixed: several inlined figures must not share clip-path ids. Only
    the tags' attributes are rewritten: a case named `grid="wide" url(#x)` keeps its name in the figure's text."""

    def prefixed(tag: re.Match[str]) -> str:
        markup = tag.group()
        if markup.startswith("<!--"):
            return markup
        markup = SVG_ID.sub(rf"\g<1>{prefix}-\g<2>", markup)
        return SVG_REFERENCE.sub(lambda m: f"{m[1] or m[3]}{prefix}-{m[2] or m[4]}", markup)

    return SVG_MARKUP.sub(prefixed, svg[svg.index("<svg") :])


def _search_plan(run: LoadedRunDir) -> TunePlan | None:
    """A tune run's search plan (run.json), or None for another run or one that sampled nothing."""
    from harness.plan import recorded_search

    return recorded_search(run.path, run.info, run.frame)


def log_scaled(plan: TunePlan) -> list[str]:
    """The searched options a log axis shows best: sampled log-uniformly, or chosen among positive numbers two
    decades or more apart (learning rates 0.1, 0.01, 0.001)."""
    from harness.search import Choice, LogUniform

    scaled = []
    for path, domain in plan.space.params:
        numbers = [v for v in domain.values if isinstance(v, int | float)] if isinstance(domain, Choice) else []
        spread = len(numbers) > 1 and min(numbers) > 0 and max(numbers) / min(numbers) >= 100
        if isinstance(domain, LogUniform) or spread:
            scaled.append(path)
    return scaled


def _search_plots(run: LoadedRunDir, plan: TunePlan | None) -> list[Any]:
    from harness import plots
    from harness.tuning import search_table

    if plan is None:
        return []
    table = search_table(run.frame, plan)
    sampled = table[table["sample"].notna()] if len(table) else table  # a skipped experiment's base sampled nothing
    if sampled.empty:
        return []
    paths, log_paths = list(plan.space.paths), log_scaled(plan)
    cases = list(sampled.groupby("case", sort=True))
    drawn = []
    for case, searched in cases:  # a tune of a suite searches each of its cases: one plot each
        rows = run.frame[run.frame["trial_id"].isin(searched["trial_id"])]
        name = str(case) if len(cases) > 1 else ""
        drawn += plots.search_points(rows, searched, paths, plan.metric, log_paths, case=name)
    return drawn


def _unfinished_banner(run: LoadedRunDir) -> list[str]:
    """Under the run's title, as summary.md: a run that did not finish holds only the trials that ended before the
    stop, and its tables alone read as a finished run's. Nothing for a run without a readable run.json."""
    from harness.plan import read_run_file
    from harness.run_lock import driver_alive

    status = run.info.get("status")
    if status not in UNFINISHED_STATUSES:
        return []
    try:
        run_file = read_run_file(run.path)
    except InputError:
        return []
    driver = run_file.record.driver_process
    running = driver if status == "running" and driver_alive(driver) else None  # not to be resumed: said so
    headline, text = unfinished_notice(run_file.plan, str(status), run.frame, run.path, running)
    error = run_file.record.error  # a fault of the driver's (None: Ctrl-C, SIGTERM, or a driver killed outright)
    why = f" What stopped it: <code>{html.escape(error)}</code>" if error else ""
    return [f"<p class='warning'><strong>{html.escape(headline)}</strong>: {_prose_html(text)}{why}</p>"]


def _head_to_head_rows(run: LoadedRunDir) -> pd.DataFrame:
    """The rows the run's tables and plots hold, as its summary.md: a tune run's final stage (each backend's best,
    re-run) and the pretrain trials that trained its backbones (an S4 case's source phase). A tune run is known by
    its rows, run.json or not (copied rows, a driver that died first): its search samples were summarised as cases,
    pairing unrelated configurations by their sample number."""
    return compared_rows(run.frame)


def _run_section(run: LoadedRunDir, reference: str) -> tuple[str, Iterator[Any]]:
    """Provenance, tables and the run's plots (not yet drawn to files)."""
    from harness import plots

    stage_final = _head_to_head_rows(run)
    summary = summarize(stage_final, reference)
    parts = [f"<h2>Run {html.escape(run.run_id)}</h2>", *_unfinished_banner(run), "<h3>Provenance</h3>"]
    parts.append(_provenance_html(run.info))
    plan = _search_plan(run)
    searched = search_results_table(run.frame, plan) if plan is not None else None
    # the search first: every sampled point and each backend's pick, re-run in the tables below (summary.md puts
    # its search section last, after those tables)
    parts += [_table_html(t) for t in ([searched] if searched else []) + run_tables(summary)]
    drawn = itertools.chain(
        plots.learning_curves(stage_final),
        plots.epoch_times(stage_final),
        plots.accuracy_vs_time(stage_final),
        plots.time_ratios(summary.statistics),
        _search_plots(run, plan),
    )
    return "\n".join(parts), drawn


def _against_previous(
    earlier: list[LoadedRunDir], after: LoadedRunDir, thresholds: Thresholds
) -> list[tuple[LoadedRunDir, CaseComparison]]:
    """Each (case, backend) of ``after`` compared with the last of the ``earlier`` runs that ran it, as the history's
    trend joins it (a run of another suite in between no more hides a change than it breaks the line)."""
    found: dict[tuple[str, str], tuple[LoadedRunDir, CaseComparison]] = {}
    pending = compared_cases(after.frame)
    for before in reversed(earlier):  # newest first; a run compared only where it holds a case still pending
        if not pending:
            break
        shared = pending & compared_cases(before.frame)
        if not shared:
            continue
        for c in compare_frames(before.frame, after.frame, thresholds):
            if (c.case, c.backend) in shared and c.in_both:
                found[(c.case, c.backend)] = (before, c)
        pending -= shared
    return [found[key] for key in sorted(found)]


# Which of compare's verdicts a history metric shows: the plot circles a regression of that kind only.
DRAWN_KIND = {"epoch_time_s": "time", "samples_per_s": "time", "test_acc": "accuracy"}


def regression_kinds(c: CaseComparison) -> list[str]:
    """What regressed in a comparison: epoch time, accuracy, the share of trials that ended ok."""
    verdicts = (("time", c.time_verdict), ("accuracy", c.acc_verdict), ("trials", c.trials_verdict))
    return [kind for kind, verdict in verdicts if verdict == "regression"]


def history_labels(runs: list[LoadedRunDir]) -> dict[Path, str]:
    """Each run's label in the history (runs table, changes, plot), by its path: its run id, and where runs share
    one (`--run-id nightly` in two results folders), as little more as tells them apart: ``nightly (ci-a)``. Keyed
    by the id alone, the plot drew one column for both and dropped the older run, which the runs table listed."""
    labels: dict[Path, str] = {}
    for run_id in dict.fromkeys(run.run_id for run in runs):
        same = [run for run in runs if run.run_id == run_id]
        for depth in range(4):  # the id alone, then with one, two or all three details of _told_apart
            named = {run.path: _told_apart(run, depth) for run in same}
            if len(set(named.values())) == len(same):
                break
        labels |= named
    return labels


def _told_apart(run: LoadedRunDir, depth: int) -> str:
    """The run id with the first ``depth`` of what tells runs apart: the folder of its folder, when it started, and
    last its whole path, which no two runs share."""
    details = [run.path.parent.name, str(run.info.get("started", "")), str(run.path)][:depth]
    shown = [text for text in details if text]
    return f"{run.run_id} ({', '.join(shown)})" if shown else run.run_id


def _history_changes(
    runs: list[LoadedRunDir], labels: dict[Path, str], named: dict[Path, pd.DataFrame], thresholds: Thresholds
) -> tuple[dict[tuple[str, str, str], frozenset[str]], dict[str, list[str]], list[tuple[str, ...]]]:
    """Each run's cases against the last earlier run that ran them: the kinds that regressed per (case, backend,
    run) (the plot marks those), every regression of a run with its kind, and the table of changes' rows; runs
    named by ``labels`` (:func:`history_labels`), their rows with the case named as compare names it by ``named``
    (for a case's machine, threads and versions)."""
    from harness.baselines import environment_change

    flagged: dict[tuple[str, str, str], frozenset[str]] = {}
    listed: dict[str, list[str]] = {}
    ratios: list[tuple[str, ...]] = []
    for index, after in enumerate(runs[1:], start=1):
        for before, c in _against_previous(runs[:index], after, thresholds):
            kinds = regression_kinds(c)
            if kinds:
                listed.setdefault(labels[after.path], []).append(f"{c.case} [{c.backend}] ({', '.join(kinds)})")
            if kinds:
                flagged[(c.case, c.backend, labels[after.path])] = frozenset(kinds)
            # a ratio or an accuracy difference, undecided ones too (verdict n/a: the note says why), and whatever
            # regressed (trials that failed or diverged): each with compare's note
            compared = not (math.isnan(c.time_ratio) and math.isnan(c.acc_diff_pp))
            if compared or kinds:
                last = labels[before.path]
                against = "" if before is runs[index - 1] else f"against {last}, the last run that ran it"
                # compare warns of these run-wide; here one case stands beside another, so its own row says so
                moved = environment_change(*(_rows_of(named[r.path], c) for r in (before, after)))
                note = "; ".join(part for part in (against, moved, c.note) if part)
                ratios.append((labels[after.path], c.case, c.backend, *regression_cells(c)[3:9], note))
    return flagged, listed, ratios


def _rows_of(labelled: pd.DataFrame, c: CaseComparison) -> pd.DataFrame:
    """The rows of ``c``'s case and backend in a run's rows labelled by ``harness.baselines.labelled_by_case``."""
    return labelled[(labelled["case"] == c.case) & (labelled["backend"] == c.backend)]


def _history_section(
    runs: list[LoadedRunDir], metric: str, thresholds: Thresholds | None = None
) -> tuple[str, list[Any]]:
    """The metric per (case, backend) over the runs; regressions against the last run that ran the case flagged."""
    from harness import plots
    from harness.baselines import cell_states, labelled_by_case, metric_per_case, started_cell

    labels = history_labels(runs)
    # as `xfbench history`: not a tune's search samples, which would join unrelated configurations by sample number
    named = {run.path: labelled_by_case(compared_rows(run.frame), None) for run in runs if len(run.frame)}
    labelled = {labels[path]: frame for path, frame in named.items()}
    series = pd.DataFrame({label: metric_per_case(frame, metric) for label, frame in labelled.items()})
    thresholds = thresholds or Thresholds()
    flagged, listed, ratios = _history_changes(runs, labels, named, thresholds)
    not_ok, untimed, partly_ok = cell_states(labelled, metric)
    unfinished = frozenset(labels[r.path] for r in runs if r.info.get("status") in UNFINISHED_STATUSES)
    listing = TableData(
        "runs",
        f"{len(runs)} runs, oldest first",
        ("run", "started", "commit", "status", "regressions (vs each case's last run)"),
        tuple(
            (
                labels[r.path],
                started_cell(r.path),  # as `xfbench history`: a run without run.json, where its time came from
                short_commit(r.info.get("git_commit", "")),
                str(r.info.get("status", "")),
                ", ".join(sorted(listed.get(labels[r.path], []))),
            )
            for r in runs
        ),
    )
    ratio_table = TableData(
        "ratios",
        "Against the last run that ran the case: epoch time (ratio new/previous of steady medians "
        f"[{percent(thresholds.time_confidence)} CI]) and "
        f"test accuracy (mean over seeds, Δ pp [95 % CI]) ({SIGNIFICANT_MARK}: the change is real, as xfbench "
        "compare decides)",
        (
            "run",
            "case",
            "backend",
            f"ratio [{percent(thresholds.time_confidence)} CI]",
            "p (MWU)",
            "time",
            "test acc previous → new",
            "Δ acc pp new − previous",
            "accuracy",
            "note (as xfbench compare prints it)",
        ),
        tuple(ratios),
    )
    text = "<h2>History</h2>\n" + _table_html(listing) + "\n" + _table_html(ratio_table)
    rules = comparison_rules(thresholds)
    marks = plots.HistoryMarks(flagged, not_ok, untimed, partly_ok, unfinished)
    return text + f"\n<p class='note'>{_prose_html(rules)}</p>", plots.history(
        series, marks, metric, DRAWN_KIND[metric]
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def build_report(
    paths: list[Path],
    out: Path,
    reference: str | None = None,
    metric: str = "epoch_time_s",
    thresholds: Thresholds | None = None,
    history_options: Sequence[str] = (),
) -> Report:
    """Write ``out`` (and its plots' PNG and SVG files) from the runs ``paths`` name; return what was written. The
    newest run's table compares with ``reference``, which must be a backend that run ran; None: the backend the
    run itself compared with (run.json). ``thresholds``: the history's, as compare's options give them;
    ``history_options``: those options as the user gave them (``--metric test_acc``), refused where one run has
    rows, which makes no history."""
    from harness import plots

    loaded, unreadable = _load_runs(paths)
    # A run that finished no trial has nothing to draw: left out (and said), unless it is all there is.
    runs = [run for run in loaded if not run.frame.empty] or [loaded[-1]]
    _check_history_options(history_options, runs, len(loaded))
    newest = runs[-1]
    with_rows(newest.frame, newest.path)
    ran = sorted(set(newest.frame["backend"].dropna()))
    if reference is not None and reference not in ran:
        raise InputError(
            f"Expected --reference to be a backend of the run {newest.run_id}. Received: {reference!r}; it ran "
            f"{ran}. To fix, give one of those, or leave --reference out (the run's own: "
            f"{newest.info.get('reference', REFERENCE_BACKEND)})."
        )
    with plots.house_style():  # matplotlib's defaults and xfbench's settings; the process's own left alone
        sections = [_left_out_note(loaded, runs, unreadable)] if len(runs) < len(loaded) or unreadable else []
        drawn: list[Iterable[Any]] = []
        if len(runs) > 1:
            text, figures = _history_section(runs, metric, thresholds)
            sections.append(text)
            drawn.append(figures)
        text, run_figures = _run_section(newest, reference or _recorded_reference(newest))
        sections.append(text)
        drawn.append(run_figures)
        plot_dir = out.parent / f"{out.stem}_plots"
        rendered: list[str] = []
        names: list[str] = []
        for index, plot in enumerate(itertools.chain.from_iterable(drawn)):  # drawn, saved and closed one by one
            plot = _unclaimed_name(plot, names)
            names.append(plot.name)
            svg = _inline_svg(plots.save(plot, plot_dir), f"fig{index}")
            caption = f"{html.escape(plot.title)} <span class='note'>({plot.name}.png, {plot.name}.svg)</span>"
            rendered.append(
                f'<figure id="plot-{html.escape(plot.name)}"><figcaption>{caption}</figcaption>{svg}</figure>'
            )
        _forget_earlier_plots(plot_dir, names)
        body = "\n".join([*sections, "<h2>Plots</h2>", *rendered, "<p class='note'>page size: PAGE_SIZE</p>"])
        earlier = f" and {len(runs) - 1} earlier" if len(runs) > 1 else ""
        page = _page(f"xfbench report: {newest.run_id}{earlier}", body)
        # the page's last PAGE_SIZE is the note's: a run's command or error text above may hold the word too
        before, _, after = page.rpartition("PAGE_SIZE")
        size = f"{len(page.encode()) / 1024:,.0f} KiB, self-contained (no script, nothing fetched)"
        page = before + size + after
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_whole(out, page)  # a browser or CI artefact upload never reads half a page
        return Report(out, out.stat().st_size, tuple(names), plot_dir)
