"""The one definition of which samples form which batch, shared by every backend."""

from __future__ import annotations

import numpy as np

from harness.errors import InputError
from harness.seeds import EPOCH_ORDER_STREAM


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The sample permutation of one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, EPOCH_ORDER_STREAM]).permutation(num_samples)


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of one epoch's batches; the last batch keeps the remainder (no sample is dropped), and a
    remainder of one sample joins the batch before it: training-mode BatchNorm cannot normalise one sample (PyTorch
    refuses it; TensorFlow's unbiased variance divides by zero and its moving variance turns NaN)."""
    if batch_size < 1:
        raise InputError(f"Expected batch_size >= 1. Received: batch_size={batch_size}. To fix, give 1 or more.")
    order = epoch_order(num_samples, seed, epoch)
    starts = list(range(0, num_samples, batch_size))[: steps_per_epoch(num_samples, batch_size)]
    return [order[start : starts[i + 1] if i + 1 < len(starts) else None] for i, start in enumerate(starts)]


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """How many batches ``epoch_batches`` makes of ``num_samples``: a remainder of one is no batch of its own."""
    full, remainder = divmod(num_samples, batch_size)
    return full + (1 if remainder > 1 or (remainder == 1 and full == 0) else 0)
