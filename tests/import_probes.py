"""Probes for tests/test_model_import.py that run a framework's own model (in that framework's worker only)."""

from __future__ import annotations

import importlib

import numpy as np

IMPORTERS = {"torch": "torchvision", "tensorflow": "keras"}


def reference_logits(
    name: str, model: str, input_shape: tuple[int, int, int], num_classes: int, seed: int, x: np.ndarray
) -> np.ndarray:
    """The source framework's own eval forward of model NAME built with random weights from ``seed``."""
    importer = importlib.import_module(f"backends.{name}.importer")
    return importer.reference_logits(importer.load_reference(model, input_shape, num_classes, seed), x)


def worker_main(name: str, module: str, argv: list[str]) -> tuple[int, str]:
    """``python -m MODULE ARGV`` (a worker entry point of harness/) inside this long-lived worker instead of a fresh
    process: its exit status and, on a crash, the traceback. Keras' global state (layer auto-names, the graph) is
    cleared first, as a fresh process would start."""
    import traceback

    if name == "tensorflow":
        import keras

        keras.backend.clear_session()
    try:
        return importlib.import_module(module).main(argv), ""
    except Exception:  # a fresh process would die with this traceback; the parent reports its last line
        return 1, traceback.format_exc()


def import_main(name: str, argv: list[str]) -> tuple[int, str]:
    """``python -m harness.import_worker ARGV`` in this worker (``worker_main``)."""
    return worker_main(name, "harness.import_worker", argv)
