"""The one definition of which samples form which batch, shared by every backend."""

from __future__ import annotations

import numpy as np

from harness.errors import InputError
from harness.seeds import EPOCH_ORDER_STREAM


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The sample permutation of one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, EPOCH_ORDER_STREAM]).permutation(num_samples)


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of one epoch's batches; the last batch keeps the remainder (no sample is dropped)."""
    if batch_size < 1:
        raise InputError(f"Expected batch_size >= 1. Received: batch_size={batch_size}.")
    order = epoch_order(num_samples, seed, epoch)
    return [order[start : start + batch_size] for start in range(0, num_samples, batch_size)]
