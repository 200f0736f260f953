"""Reading the files a user points xfbench at (a run's table and run.json, a baseline, the weights home's index)
and the files it writes for them: a damaged or unreadable file is bad input naming the file and what to do, not a
traceback from the parser underneath.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import InputError
from harness.results import read_results


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """``path``'s JSON object; {} when the file is absent (older runs lack some files)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise InputError(
            f"Expected {path} to hold a JSON object as xfbench writes it. Received: {type(exc).__name__}: {exc}. {fix}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"Expected {path} to hold a JSON object as xfbench writes it. Received: a JSON {type(data).__name__}. {fix}"
        )
    return data


def read_run_table(run_dir: Path) -> pd.DataFrame:
    """The run's results (:func:`harness.results.read_results`); a table that cannot be read is bad input."""
    try:
        return read_results(run_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(
            f"Expected the results table of the run in {run_dir} as xfbench writes it. Received: a table that cannot "
            f"be read ({type(exc).__name__}: {exc}). Pick another run, or run it again."
        ) from None


def check_output_file(path: Path, flag: str) -> Path:
    """``path`` as a file xfbench may write: its folder exists and it is not a folder itself. Checked before the work
    whose result it would hold."""
    if path.is_dir():
        raise InputError(f"Expected {flag} to name a file. Received: {path}, a folder. Add a file name.")
    if not path.parent.is_dir():
        raise InputError(
            f"Expected {flag} in an existing folder. Received: {path}, whose folder {path.parent} does not exist. "
            "Create it first or pick another path."
        )
    return path


def writable_results_dir(results_dir: Path) -> Path:
    """``--results-dir`` checked, not created (bad input leaves nothing behind): a folder, or a path whose nearest
    existing folder this process may write into; anything else (a file in the way, no permission) is bad input."""
    existing = results_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "not a folder" if not existing.is_dir() else "not writable"
        raise InputError(
            f"Expected --results-dir to be a folder xfbench can write. Received: {results_dir} ({existing} is {what}). "
            "Pick another folder."
        )
    return results_dir
