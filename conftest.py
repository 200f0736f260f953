"""The checkout's pytest-xdist schedule, for ``pytest suites -n N --dist loadgroup`` and ``pytest tests suites ...``.

Each test module goes to one worker as a whole, so its module fixtures (weight files the frameworks write,
checkpoints converted once) are built once, and every suite case goes to one worker, which runs them all in one Ray
run. Decided here by path because, with pytest 9.2, pytest-xdist 3.8's loadgroup drops the ``xdist_group`` marks
the xfbench plugin gives the cases before they reach its scheduler (pytest-xdist issue 1386). ``make test`` runs
without xdist: on this project's 2-core machine two workers gained about nothing (docs/measurements.md, "Test
suite").
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndSuites(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return "suites" if path.startswith("suites/") else path

    return ModulesAndSuites(config, log)
