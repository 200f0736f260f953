"""A harness worker module run in a fresh Python process: how the driver has a framework convert or check
something without importing that framework itself (one framework per process)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_worker_module(module: str, argv: list[str]) -> tuple[int, str]:
    """``python -m MODULE ARGV`` with the current directory first on its path, then the driver's own path, so it
    imports a ``python:`` model's module as the driver finds it (harness.model_import): pytest puts a test's folder
    on the path, and a model module beside the suite's test file was found there, then not importable here. Its
    exit status, and its error output (its standard output when that is empty). It sees no GPU."""
    path = [os.getcwd(), *(entry for entry in sys.path if entry), os.environ.get("PYTHONPATH", "")]
    # GPUs hidden: the workers (weights, model import) check a conversion against the source framework's own logits
    # computed here, and the backends' rebuilds they compare with run on the CPU. A source on a GPU computed them
    # there (TensorFlow with TF32 by default on Ampere and later; no trial's runtime settings apply before the
    # reference is taken), so every Keras conversion would part from its rebuild; and a TensorFlow that sees a GPU
    # takes all its memory. Set in the child's environment only: the driver's trials keep their GPUs.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "CUDA_VISIBLE_DEVICES": ""}
    # no input: a model module that asks for some (input(), a prompt) fails at once rather than waiting unseen
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    return proc.returncode, proc.stderr or proc.stdout
