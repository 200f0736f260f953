"""Functions the mode tests run inside a per-backend worker process (tests/conftest.py's BackendWorker): they use
only the backend protocol, with the RuntimeOptions under test."""

from __future__ import annotations

import time

import numpy as np

from harness.backend import StepStats, load_backend
from harness.config import OptimizerConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def train(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    seed: int = 0,
) -> tuple[NeutralWeights, StepStats, list[float]]:
    """``batches`` as one epoch at the optimizer's learning rate; the weights, the epoch's stats, the lr trace."""
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=seed)
    backend.set_optimizer(optimizer.resolved())
    backend.set_data("train", x, y)
    backend.record_lr_trace = True
    lrs = np.linspace(optimizer.lr, optimizer.lr / 2, len(batches)).astype(np.float32)  # a schedule, per step
    stats = backend.train_epoch("train", batches, lrs)
    return backend.export_weights(), stats, list(backend.lr_trace)


def test_accuracy(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: list[list[np.ndarray]],
) -> tuple[float, float]:
    """Train epoch by epoch, then the test accuracy; and the training seconds."""
    x_train, y_train, x_test, y_test = data
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=0)
    backend.set_optimizer(optimizer.resolved())
    backend.set_data("train", x_train, y_train)
    backend.set_data("test", x_test, y_test)
    start = time.perf_counter()
    for batches in epochs:
        backend.train_epoch("train", batches, np.full(len(batches), optimizer.lr, np.float32))
    seconds = time.perf_counter() - start
    return backend.evaluate("test", batch_size=500).accuracy, seconds
