"""The batch loop of every inference pass (evaluate, predict, MC dropout, feature extraction), for every backend.

Samples are taken in their stored order in consecutive slices of ``batch_size``; the last slice keeps the
remainder. An adapter supplies what one batch computes and how the per-batch results are joined (on the
device or in numpy), so both backends see the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from harness.errors import InputError

R = TypeVar("R")


def batch_slices(num_samples: int, batch_size: int) -> list[slice]:
    """[0, b), [b, 2b), ... covering ``num_samples`` samples."""
    if batch_size < 1:
        raise InputError(f"Expected batch_size >= 1. Received: batch_size={batch_size}. To fix, give 1 or more.")
    return [slice(start, start + batch_size) for start in range(0, num_samples, batch_size)]


def over_batches(num_samples: int, batch_size: int, per_batch: Callable[[slice], R]) -> list[R]:
    """``per_batch`` of each slice, in order."""
    return [per_batch(s) for s in batch_slices(num_samples, batch_size)]


def concat_batches(num_samples: int, batch_size: int, per_batch: Callable[[slice], np.ndarray]) -> np.ndarray:
    """The per-batch arrays joined along the sample axis."""
    return np.concatenate(over_batches(num_samples, batch_size, per_batch))
