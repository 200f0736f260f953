"""The training-loop policy, written once for every backend: epochs, batch order, timing, metrics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from harness.backend import Backend
from harness.data.batching import epoch_batches
from harness.data.registry import Dataset


@dataclass(frozen=True)
class EpochRecord:
    phase: str
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    epoch_time_s: float  # training steps only; evaluation is timed separately
    samples_per_s: float
    eval_time_s: float
    warmup: bool
    status: str = "ok"
    test_acc: float = math.nan


EpochSink = Callable[[EpochRecord], None]


def prepare_data(backend: Backend, dataset: Dataset) -> None:
    for split in ("train", "val", "test"):
        backend.set_data(split, *dataset.split(split))


def train_phase(
    backend: Backend,
    num_train: int,
    *,
    phase: str,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    sink: EpochSink,
    evaluate_test_at_end: bool = False,
    epoch_offset: int = 0,
    inject_step_delay_s: float = 0.0,
) -> str:
    """Train ``epochs`` epochs; send one record per epoch to ``sink``; return the final status.

    The first epoch of a phase carries tracing/compilation and cache warm-up,
    so it is marked ``warmup`` and kept out of steady-state figures. A
    non-finite training loss stops the phase with status ``diverged``.
    """
    for local_epoch in range(1, epochs + 1):
        epoch = epoch_offset + local_epoch
        batches = epoch_batches(num_train, batch_size, seed, epoch)
        start = time.perf_counter()
        train = backend.train_epoch("train", batches)
        if inject_step_delay_s:  # test-only slowdown (RuntimeOptions.inject_step_delay_s)
            time.sleep(inject_step_delay_s * len(batches))
        elapsed = time.perf_counter() - start
        eval_start = time.perf_counter()
        val = backend.evaluate("val", eval_batch_size)
        last = local_epoch == epochs
        diverged = not math.isfinite(train.loss)
        test_acc = backend.evaluate("test", eval_batch_size).accuracy if (last or diverged) and evaluate_test_at_end else math.nan
        eval_elapsed = time.perf_counter() - eval_start
        sink(EpochRecord(
            phase=phase, epoch=epoch, train_loss=train.loss, train_acc=train.accuracy,
            val_loss=val.loss, val_acc=val.accuracy, epoch_time_s=elapsed,
            samples_per_s=train.count / elapsed if elapsed > 0 else math.nan,
            eval_time_s=eval_elapsed, warmup=local_epoch == 1,
            status="diverged" if diverged else "ok", test_acc=test_acc,
        ))
        if diverged:
            return "diverged"
    return "ok"
