"""What the pytest plugin prints while the session's run trains, inside the first suite test's setup: one line per
ended trial. A session of the quick or full tier trains for minutes to hours there; silent, it looked hung, and CI
jobs that stop a step printing nothing for a while stopped it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest


class TrialLines:
    """The runner's Progress as lines: ``[ended/scheduled, seconds into the run] trial_id: status, test accuracy``;
    a trial that did not end ok says why (its error's first line)."""

    def __init__(self, write_line: Callable[[str], None]) -> None:
        self._write = write_line
        self._scheduled = 0
        self._ended = 0
        self._last_rows: dict[str, dict[str, Any]] = {}
        self._start = time.monotonic()

    def start(self, total_trials: int) -> None:
        self._scheduled, self._start = total_trials, time.monotonic()

    def extend(self, more_trials: int) -> None:
        self._scheduled += more_trials

    def row(self, row: dict[str, Any]) -> None:
        self._last_rows[str(row.get("trial_id"))] = row

    def trial_done(self, trial_id: str) -> None:
        from harness.summary import why_not_ok

        self._ended += 1
        row = self._last_rows.pop(trial_id, {})
        status = str(row.get("status") or "ended")
        accuracy = row.get("test_acc")
        said = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, float) and math.isfinite(accuracy) else ""
        why = why_not_ok(row) if status != "ok" and row else ""
        said += f": {why}" if why else ""
        elapsed = time.monotonic() - self._start
        self._write(f"xfbench [{self._ended}/{self._scheduled}, {elapsed:.0f} s] {trial_id}: {status}{said}")

    def stop(self) -> None: ...


def terminal_progress(config: pytest.Config) -> Any:
    """Lines on pytest's terminal, written past its output capture (the run happens inside a fixture), or None
    where there is no terminal: a pytest-xdist worker, or ``-p no:terminal``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or hasattr(config, "workerinput"):
        return None

    def write_line(line: str) -> None:
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return TrialLines(write_line)
