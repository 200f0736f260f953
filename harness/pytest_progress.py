"""What the pytest plugin prints while the session's run trains, inside the first suite test's setup: one line per
ended trial. A session of the quick or full tier trains for minutes to hours there; silent, it looked hung, and CI
jobs that stop a step printing nothing for a while stopped it."""

from __future__ import annotations

from typing import Any

import pytest

from harness.trial_lines import TrialLines


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

    return TrialLines(write_line, config.getoption("xfbench_max_failures") or 0)
