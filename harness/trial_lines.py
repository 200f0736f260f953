"""Progress as plain lines, one per ended trial (and per failed attempt): what a run prints where no terminal
redraws a live bar (a CI log, a file, pytest's terminal). There rich's bar drew once, at the end, cut to 80
columns, and said nothing while the run trained."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from harness.summary import why_not_ok

# Seconds without a line after which an epoch's row is written too: a CI job that stops a step printing nothing for
# a while stopped long trials (a GPU trial's epochs run for minutes), with lines only as trials ended
QUIET_S = 60.0

# Marks a row the progress sees from a search sample a resume replays to its searcher: recorded before the resume
REPLAYED_ROW = "replayed"


def retried(row: dict[str, Any], max_failures: int) -> bool:
    """Whether Tune runs this failed attempt's trial again (--max-failures)."""
    return row["status"] == "failed" and int(row.get("attempt") or 0) < max_failures


def retry_note(row: dict[str, Any], max_failures: int) -> str:
    """Which attempt failed, where --max-failures retries it: a trial whose retry ends ok was said "failed"."""
    if row["status"] != "failed" or not max_failures:
        return ""
    then = "retried" if retried(row, max_failures) else "no retry left"
    return f" (attempt {int(row.get('attempt') or 0) + 1} of {max_failures + 1}, {then})"


class TrialLines:
    """The runner's Progress as lines: ``[ended/scheduled, seconds into the run] trial_id: status, test accuracy``;
    a trial that did not end ok says why (its error's first line); under --max-failures each failed attempt says
    whether Tune retries it; after QUIET_S seconds without a line, the next epoch's row is written too."""

    def __init__(
        self, write_line: Callable[[str], None], max_failures: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_failures = max_failures
        self._clock = clock
        self._scheduled = 0
        self._ended = 0
        self._last_rows: dict[str, dict[str, Any]] = {}
        self._start = self._last_line = clock()
        self._silenced = False

        def write(line: str) -> None:
            if self._silenced:
                return
            try:
                write_line(line)
            except OSError:  # stderr's reader gone (`| head`, a log collector): the run goes on, unsaid
                self._silenced = True  # raised into Tune's callbacks it failed the trial that was ending
            self._last_line = clock()

        self._write = write

    def start(self, total_trials: int) -> None:
        self._scheduled, self._start = total_trials, self._clock()
        self._last_line = self._start

    def extend(self, more_trials: int) -> None:
        self._scheduled += more_trials

    def row(self, row: dict[str, Any]) -> None:
        self._last_rows[str(row.get("trial_id"))] = row
        if retried(row, self._max_failures):  # the attempt's end; the trial's is said when it ends
            note = retry_note(row, self._max_failures)
            self._write(f"xfbench {row['trial_id']} failed{note}: {why_not_ok(row)}")
        elif row.get("epoch") is not None and self._clock() - self._last_line >= QUIET_S and not row.get(REPLAYED_ROW):
            val = row.get("val_acc")
            said = f", validation accuracy {val:.4f}" if isinstance(val, float) and math.isfinite(val) else ""
            self._write(f"{self._prefix()} {row['trial_id']}: epoch {row['epoch']}{said}")

    def _prefix(self) -> str:
        """``xfbench [ended/scheduled, seconds into the run]``."""
        return f"xfbench [{self._ended}/{self._scheduled}, {self._clock() - self._start:.0f} s]"

    def trial_done(self, trial_id: str) -> None:
        self._ended += 1
        row = self._last_rows.pop(trial_id, {})
        status = str(row.get("status") or "ended")
        # a search sample scores no test split: its validation accuracy is what the search picks it by
        key, label = (
            ("val_acc", "validation accuracy") if row.get("stage") == "search" else ("test_acc", "test accuracy")
        )
        accuracy = row.get(key)
        said = f", {label} {accuracy:.4f}" if isinstance(accuracy, float) and math.isfinite(accuracy) else ""
        why = why_not_ok(row) if status != "ok" and row else ""
        said += retry_note(row, self._max_failures) if row else ""  # the last attempt: "no retry left"
        said += f": {why}" if why else ""
        if row.get(REPLAYED_ROW):
            said += " (replayed: it ended before the resume)"
        self._write(f"{self._prefix()} {trial_id}: {status}{said}")

    def stop(self) -> None: ...

    def warn(self, text: str) -> None:
        self._write(text)
