"""A run with one backend deliberately slowed: the check that `xfbench compare` flags a real slowdown and marks
its epoch-time ratio, where two honest runs are not marked (docs/regressions.md, docs/measurements.md).

    .venv/bin/python benchmarks/slowed_run.py --slow torch=0.005 -- --suite quick --results-dir results

Everything after ``--`` is what ``xfbench run`` takes; ``--slow BACKEND=SECONDS`` sleeps that long per training
step in that backend's trials (the test-only ``RuntimeOptions.inject_step_delay_s``, which the command line does
not offer: a slowed trial is not a benchmark). The run is planned, checked and executed as ``xfbench run`` does,
``--no-report`` included. A backend with no trial in the run, or a delay that is not a finite number >= 0, is
refused with exit 2 before anything runs (a backend name the run lacks slowed nothing, silently).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    from unittest import mock

    from harness import cli

    own = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    own.add_argument("--slow", required=True, metavar="BACKEND=SECONDS", help="per-step delay of one backend")
    own.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then the arguments of `xfbench run`")
    mine = own.parse_args(argv)
    backend, _, given = mine.slow.partition("=")
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        own.error(f"Expected --slow BACKEND=SECONDS, SECONDS a number >= 0. Received: {mine.slow!r}.")
    run_args = [a for a in mine.run_args if a != "--"]
    if "--resume" in run_args:  # cli.main would resume it unslowed
        own.error("Expected a new run. Received: --resume. To fix, start the slowed run afresh.")

    def slowed_start(args: argparse.Namespace) -> int:
        return _start_slowed(args, backend, seconds, own, ["benchmarks/slowed_run.py", *argv])

    # cli.main's handling, not a copy of it: bad input exits 2 with one line, Ctrl-C with one line, and the
    # folders a refused run created are removed, as for `xfbench run`
    with mock.patch.object(cli, "_start", slowed_start):
        return cli.main(["run", *run_args])


def _start_slowed(
    args: argparse.Namespace, backend: str, seconds: float, own: argparse.ArgumentParser, command: list[str]
) -> int:
    from harness import cli

    planned = sorted({t.backend for t in cli.plan_from_args(args).trials})
    if backend not in planned:  # before _prepare, which may claim the run's folder
        own.error(f"Expected --slow's backend among the run's backends: {planned}. Received: {backend!r}.")
    with cli._no_empty_folders_left_on_failure(Path(args.results_dir).expanduser().resolve()):
        outcome = _execute_slowed(cli._prepare(args), args, backend, seconds, command)
    return cli._finish(outcome, args)


def _execute_slowed(prepared: Any, args: argparse.Namespace, backend: str, seconds: float, command: list[str]) -> Any:
    from harness.reporting import RichProgress
    from harness.runner import execute

    trials = tuple(
        replace(t, runtime=replace(t.runtime, inject_step_delay_s=seconds)) if t.backend == backend else t
        for t in prepared.plan.trials
    )
    return execute(
        replace(prepared.plan, trials=trials),
        results_dir=prepared.results_dir,
        run_id=prepared.run_id,
        settings=prepared.settings,
        progress=RichProgress(),
        command=command,
        data_provenance=prepared.provenance,
        weights_keys=prepared.weights_keys,  # the conversions the preflight checked, as `xfbench run` passes them
        ship=prepared.ship,
        reference=args.reference,
        html_report=args.html_report,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
