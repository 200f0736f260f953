"""Reading the files a user points xfbench at (a run's table and run.json, a baseline, the weights home's index)
and checking where it will write for them: a damaged or unreadable file is bad input naming the file and what to
do, not a traceback from the parser underneath. pandas and pyarrow are imported only to read a table, so the
processes that read JSON alone (the weights workers) stay light.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import FileProblemError, InputError

if TYPE_CHECKING:
    import pandas as pd

RUN_FIX = "To fix, repair or delete that run's folder."


class JsonObjectError(FileProblemError):
    """A JSON file xfbench writes that does not read back as an object (``problem``: what it holds instead)."""


def _not_an_object(path: Path, problem: str, fix: str) -> JsonObjectError:
    return JsonObjectError.of(path, f"{path} to hold a JSON object as xfbench writes it", problem, fix)


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """``path``'s JSON object; {} when the file is absent (older runs lack some files)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_an_object(path, f"{type(exc).__name__}: {exc}", fix) from None
    if not isinstance(data, dict):
        raise _not_an_object(path, f"a JSON {type(data).__name__}", fix)
    return data


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """A run's run.json as the reports read it (what they show of it; ``plan.read_run_file`` reads the plan)."""
    return read_json_object(run_dir / "run.json", RUN_FIX)


def read_run_table(run_dir: Path) -> pd.DataFrame:
    """The run's results (:func:`harness.results.read_results`); a table that cannot be read is bad input."""
    import pyarrow

    from harness.results import missing_columns, read_results

    try:
        frame = read_results(run_dir)
    except (OSError, pyarrow.ArrowException) as exc:  # a file cut short or not Parquet
        raise InputError(
            f"Expected the results table of the run in {run_dir} as xfbench writes it. Received: a table that cannot "
            f"be read ({type(exc).__name__}: {exc}). To fix, pick another run, or run it again."
        ) from None
    # Older tables gain the columns added since, empty; one without the identifying columns is not xfbench's.
    unnamed = [c for c in ("trial_id", "backend", "model") if len(frame) and frame[c].isna().all()]
    if unnamed:
        raise InputError(
            f"Expected the results table of the run in {run_dir} as xfbench writes it. Received: rows without "
            f"{', '.join(unnamed)}, so its trials cannot be told apart. To fix, pick another run, or run it again."
        )
    wrong = _mistyped_columns(frame)
    if wrong:
        raise InputError(
            f"Expected the results table of the run in {run_dir} as xfbench writes it (docs/results-schema.md). "
            f"Received: {'; '.join(wrong)}. To fix, pick another run, or run it again."
        )
    missing = missing_columns(run_dir) if len(frame) else []
    if missing:
        raise InputError(
            f"Expected the results table of the run in {run_dir} as xfbench writes it (docs/results-schema.md). "
            f"Received: a table without the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which the "
            "reports and comparisons read. To fix, pick another run, or run it again."
        )
    return frame


def _mistyped_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose values the readers could not use: text in a numeric column, config_json that is not a JSON
    object, a status outside the schema's, rows written twice (a table edited or written by something else, or two
    copies concatenated; every report, comparison and export reads these)."""
    import pandas as pd

    from harness.results import DTYPES, STATUSES

    wrong = []
    for name, dtype in DTYPES.items():
        column = frame[name]
        if dtype not in ("float64", "Int64") or pd.api.types.is_numeric_dtype(column) or column.isna().all():
            continue
        unread = (column.notna() & pd.to_numeric(column, errors="coerce").isna()).to_numpy().nonzero()[0]
        if len(unread):
            first = f"the first {column.iloc[unread[0]]!r} in row {unread[0] + 1} of {len(column)}"
            wrong.append(f"column {name} holds values that are not numbers, {first}")
        else:  # every value reads as a number: text (or a mix of types) that xfbench would have written as one
            given = column.dropna()
            kind = "numbers written as text" if isinstance(given.iloc[0], str) else "values of mixed types"
            wrong.append(f"column {name} holds {kind} (such as {given.iloc[0]!r}), not {dtype} values")
    odd = sorted({str(s) for s in frame["status"].dropna().unique()} - set(STATUSES))
    if odd:
        wrong.append(f"status {', '.join(map(repr, odd))}, not one of {', '.join(STATUSES)}")
    twice = int(frame.duplicated().sum())
    if twice:  # each would count again: epochs doubled, p-values more significant than the data
        wrong.append(f"{twice} row(s) that repeat another row whole (two copies of a table put together?)")
    for text in frame["config_json"].dropna().unique():
        try:
            config = json.loads(text) if isinstance(text, str) else None
        except json.JSONDecodeError:
            config = None
        if not isinstance(config, dict):
            wrong.append(f"a config_json that is not a JSON object ({str(text)[:60]!r})")
            break
    return wrong


def read_run_rows(run_dir: Path) -> pd.DataFrame:
    """:func:`read_run_table` for a command that needs rows to work on (compare, baseline, report, export)."""
    return with_rows(read_run_table(run_dir), run_dir)


def with_rows(frame: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """``frame``, the table of ``run_dir``, if it has rows: a run that finished no trial is bad input to a command
    that works on rows, named with how to get some."""
    if frame.empty:
        from harness.plan import resume_command  # it reads run files through this module

        kind = read_run_json(run_dir).get("kind", "run") if (run_dir / "run.json").is_file() else "run"
        raise InputError(
            f"Expected a run with results rows. Received: {run_dir}, whose table has none (no trial of it finished). "
            "To fix, pick another run, or finish this one: "
            f"{resume_command('tune' if kind == 'tune' else 'run', run_dir)}."
        )
    return frame


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing ancestor: what decides whether it can be made."""
    return next(p for p in (path, *path.parents) if p.exists())


def unwritable_reason(folder: Path) -> str:
    """Why xfbench could not write into ``folder`` or create it (its nearest existing ancestor decides), else ''."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    # os.access grants root nearly everything: a file system that takes no new files (/proc, a read-only mount) is
    # found by making one, removed at once
    try:  # an unnamed file where the system has them (Linux' O_TMPFILE): nothing is left behind, even on Ctrl-C
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"{existing} takes no new files: {error.strerror or error}"
    return ""


# What xfbench writes in a run's folder (parts/ holds a Parquet file per trial): another command's output there
# would destroy the run it belongs to.
RUN_FILES = frozenset({"run.json", "results.parquet", "results.csv", "summary.md", "report.html", "baseline.json"})


def check_output_file(path: Path, flag: str, inputs: Sequence[Path] = (), own: Path | None = None) -> Path:
    """``path`` as a file xfbench may write: its folder exists and can be written, and it is not a folder itself,
    one of a run's own files (:data:`RUN_FILES`, parts/), or one of ``inputs``, the files the same command reads.
    ``own``: the one run file the command may write (report's report.html in the run it draws). Checked before the
    work whose result it would hold."""
    if path.is_dir():
        raise InputError(f"Expected {flag} to name a file. Received: {path}, a folder. To fix, add a file name.")
    _check_not_overwriting(path, flag, inputs, own)
    if not path.parent.is_dir():
        raise InputError(
            f"Expected {flag} in an existing folder. Received: {path}, whose folder {path.parent} does not exist. "
            "To fix, create it first or pick another path."
        )
    why = unwritable_reason(path.parent)
    if why:
        raise InputError(
            f"Expected {flag} in a folder xfbench can write. Received: {path} ({why}). To fix, pick another."
        )
    return path


def _check_not_overwriting(path: Path, flag: str, inputs: Sequence[Path], own: Path | None) -> None:
    target = path.expanduser().resolve()
    if any(target == given.expanduser().resolve() for given in inputs):
        raise InputError(
            f"Expected {flag} to name a new file. Received: {path}, which this command also reads: writing it would "
            "replace its own input. To fix, pick another file name."
        )
    if own is not None and target == own.expanduser().resolve():
        return
    folder = target.parent
    run = folder.parent if folder.name == "parts" else folder
    if is_run_folder(run) and (folder is not run or target.name in RUN_FILES):
        what = "a file in parts/ (its trials' rows)" if folder is not run else f"its {target.name}"
        raise InputError(
            f"Expected {flag} outside the files xfbench keeps for a run. Received: {path}, {what} of the run in "
            f"{run}: writing it would damage that run. To fix, pick a file name outside the run's files."
        )


def is_run_folder(folder: Path) -> bool:
    """A folder xfbench keeps a run (or a baseline) in: its run.json beside its rows (parts/, or the table). A
    run.json alone may be another tool's (a project's own, in a folder a results folder lies under)."""
    rows = ("parts", "results.parquet", "results.csv")
    return (folder / "run.json").is_file() and any((folder / name).exists() for name in rows)


def writable_results_dir(results_dir: Path) -> Path:
    """``--results-dir`` checked, not created (bad input leaves nothing behind): a folder, or a path whose nearest
    existing folder this process may write into; anything else (a file in the way, no permission) is bad input."""
    why = unwritable_reason(results_dir)
    if why:
        raise InputError(
            f"Expected --results-dir to be a folder xfbench can write. Received: {results_dir} ({why}). "
            "To fix, pick another folder."
        )
    run = next((f for f in (results_dir, *results_dir.parents) if is_run_folder(f)), None)
    if run is not None:  # its runs would nest in that run's files, where history, compare and baseline never look
        raise InputError(
            f"Expected --results-dir outside any run's folder. Received: {results_dir}, "
            f"{'the folder' if run == results_dir else 'inside the folder'} of the run in {run} (it holds run.json). "
            f"To fix, pick the folder that holds the runs, such as {run.parent}."
        )
    return results_dir


def missing_folders(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what creating ``path`` would create), else None."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    return missing[-1] if missing else None


def remove_if_left_empty(created: Path | None) -> None:
    """Remove ``created`` (:func:`missing_folders` before a command ran) if the command left no file in it: a run
    refused after it claimed its folder (no node offers its GPUs) leaves nothing behind, as bad input does. Folder
    by folder, deepest first, each only while empty: another run in the same results folder may be writing into one
    (a removal of the whole tree raised there, in place of the refusal it was cleaning up after)."""
    if created is None or not created.is_dir():
        return
    folders = sorted((p for p in created.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for folder in [*folders, created]:
        with contextlib.suppress(OSError):  # not empty (a file of this or another run), or removed already
            folder.rmdir()
