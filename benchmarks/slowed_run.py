"""A run with one backend deliberately slowed: the check that `xfbench compare` flags a real slowdown and marks
its epoch-time ratio, where two honest runs are not marked (docs/regressions.md, docs/measurements.md).

    .venv/bin/python benchmarks/slowed_run.py --slow torch=0.005 -- --suite quick --results-dir results

Everything after ``--`` is what ``xfbench run`` takes; ``--slow BACKEND=SECONDS`` sleeps that long per training
step in that backend's trials (the test-only ``RuntimeOptions.inject_step_delay_s``, which the command line does
not offer: a slowed trial is not a benchmark). The run is planned, checked and executed as ``xfbench run`` does.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def main(argv: list[str]) -> int:
    from harness import cli
    from harness.cli_options import build_parser
    from harness.reporting import RichProgress
    from harness.runner import execute

    own = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    own.add_argument("--slow", required=True, metavar="BACKEND=SECONDS", help="per-step delay of one backend")
    own.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then the arguments of `xfbench run`")
    mine = own.parse_args(argv)
    backend, seconds = mine.slow.split("=")
    args = build_parser().parse_args(["run", *[a for a in mine.run_args if a != "--"]])
    prepared = cli._prepare(args)
    trials = tuple(
        replace(t, runtime=replace(t.runtime, inject_step_delay_s=float(seconds))) if t.backend == backend else t
        for t in prepared.plan.trials
    )
    outcome = execute(
        replace(prepared.plan, trials=trials),
        results_dir=prepared.results_dir,
        run_id=prepared.run_id,
        settings=prepared.settings,
        progress=RichProgress(),
        command=["benchmarks/slowed_run.py", *argv],
        data_provenance=prepared.provenance,
        ship=prepared.ship,
        reference=args.reference,
    )
    return cli._finish(outcome, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
