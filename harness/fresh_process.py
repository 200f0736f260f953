"""A harness worker module run in a fresh Python process: how the driver has a framework convert or check
something without importing that framework itself (one framework per process)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_worker_module(module: str, argv: list[str]) -> tuple[int, str]:
    """``python -m MODULE ARGV`` with the current directory first on its path, so it imports a ``python:`` model's
    module as the driver does: its exit status, and its error output (its standard output when that is empty)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env)
    return proc.returncode, proc.stderr or proc.stdout
