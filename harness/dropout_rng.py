"""Dropout masks from one counter-based generator, so every backend drops the same units at every step.

A unit's fate is a pure function of (trial seed, stream, step, layer, sample, element): nothing is drawn from a
framework's random state and no mask travels from the host. The hash is written once here, over whatever integer
tensors the caller passes (numpy here and in the tests, torch and TensorFlow inside their backends); a backend
supplies only its right shift and its multiply mod 2**32 (:class:`IntegerOps`).

Every value is below 2**32, so the hash is arithmetic mod 2**32, computed in either of two ways that give the same
integers. In int64 (:data:`INT64_OPS`: numpy, torch): a multiplier above 2**31 is used as its negative twin
(c - 2**32, the same residue mod 2**32), so every product lies strictly between -2**63 and 2**63, and masking with
2**32 - 1 in two's complement gives the product mod 2**32. In uint32 (TensorFlow): the multiply wraps mod 2**32 by
itself, and no mask is needed. The masks are identical bit for bit either way.

How the counter is laid out (each ``mix`` hashes the xor of its two arguments, the second already hashed):

    step_key   = mix(mix(mix(hash(seed), stream), step), layer)     # a Python int, once per step and layer
    sample_key = mix(step_key, offset + sample index in the batch)  # one per sample
    u          = hash(sample_key ^ hash(element))                   # one per element, in the neutral layout

``element`` is the unit's index in the neutral layout (NHWC, H,W,C flatten order), whatever layout the framework
computes in, so a feature map's unit keeps its fate across backends. A unit is dropped when the top 24 bits of
``u`` fall below ``round(rate * 2**24)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harness.errors import InputError
from harness.seeds import DROPOUT_STREAM_MC, DROPOUT_STREAM_TRAIN
from harness.spec import Dropout, ModelSpec

MASK32 = 0xFFFFFFFF
UNIFORM_BITS = 24  # the top 24 of 32 bits decide; float32 could represent them exactly, but integers compare
_C1, _C2 = 0x7FEB352D, 0x846CA68B  # lowbias32 (C. Wellons' hash-prospector): a well-mixing 32-bit integer hash

# Streams keep the randomness of different uses apart (named with the other seed offsets in harness.seeds).
STREAM_TRAIN = DROPOUT_STREAM_TRAIN
STREAM_MC = DROPOUT_STREAM_MC


@dataclass(frozen=True)
class IntegerOps:
    """What the hash needs of a tensor type beyond ``^``: a right shift, and x * constant mod 2**32 for a constant in
    [0, 2**32)."""

    shift: Callable[[Any, int], Any]
    mul32: Callable[[Any, int], Any]


def _int64_mul32(x: Any, constant: int) -> Any:
    """x * constant mod 2**32 for 0 <= x < 2**32: |x * c| < 2**63 with c in [-2**31, 2**31), so int64 never wraps."""
    signed = constant - 2**32 if constant >= 2**31 else constant
    return (x * signed) & MASK32


# int64 values in [0, 2**32): numpy (the reference) and torch, whose tensors have ``>>``.
INT64_OPS = IntegerOps(shift=lambda x, bits: x >> bits, mul32=_int64_mul32)


def hash32(x: Any, ops: IntegerOps = INT64_OPS) -> Any:
    """lowbias32 on values in [0, 2**32), element-wise on numpy, torch and TensorFlow tensors."""
    x = x ^ ops.shift(x, 16)
    x = ops.mul32(x, _C1)
    x = x ^ ops.shift(x, 15)
    x = ops.mul32(x, _C2)
    return x ^ ops.shift(x, 16)


def mix(key: Any, value: Any, ops: IntegerOps = INT64_OPS) -> Any:
    return hash32(key ^ hash32(value, ops), ops)


def _int_hash(value: int) -> int:
    return int(hash32(value & MASK32))  # plain Python integers: exact, and fast enough for once per step


def step_key(seed: int, stream: int, step: int, layer: int) -> int:
    """The key of one dropout layer at one step (host-side: plain integers, microseconds)."""
    key = _int_hash(seed)
    for value in (stream, step, layer):
        key = _int_hash(key ^ _int_hash(value))
    return key


def dropout_layer_indices(spec: ModelSpec) -> list[int]:
    """Spec indices of the dropout layers, in spec order: a layer's position in this list is its key slot."""
    return [i for i, layer in enumerate(spec.layers) if isinstance(layer, Dropout)]


def step_keys(seed: int, stream: int, step: int, layers: list[int]) -> list[int]:
    """One key per dropout layer (spec indices ``layers``) for one step: all a backend needs from the host."""
    return [step_key(seed, stream, step, layer) for layer in layers]


def epoch_step_keys(seed: int, stream: int, first_step: int, steps: int, layers: Sequence[int]) -> np.ndarray:
    """:func:`step_keys` of steps ``first_step`` to ``first_step + steps - 1``, one row per step ((steps, layers)
    int64), hashed over numpy arrays: the same integers, bit for bit, in 0.1 ms an 860-step epoch where the per-step
    Python loop took 9 ms with two dropout layers and 14 ms with three (measured on this project's CPU)."""
    key = _int_hash(_int_hash(seed) ^ _int_hash(stream))
    per_step = hash32(key ^ hash32(np.arange(first_step, first_step + steps, dtype=np.int64) & MASK32))
    layer_hashes = np.array([_int_hash(layer) for layer in layers], np.int64)
    return hash32(per_step[:, None] ^ layer_hashes[None, :])


@dataclass(frozen=True)
class TrainingKeys:
    """What a model's training-step dropout keys derive from: the seed it was built with and the spec indices of
    its dropout layers (:func:`dropout_layer_indices`), their masks shared (--dropout-rng shared)."""

    seed: int
    layers: tuple[int, ...]

    def epoch(self, first_step: int, steps: int) -> np.ndarray:
        """The keys of training steps ``first_step`` on, one (steps, layers) row per step."""
        return epoch_step_keys(self.seed, STREAM_TRAIN, first_step, steps, self.layers)

    def rows(self, first_step: int, steps: int, given: np.ndarray | None) -> np.ndarray:
        """``given`` (the harness's, hashed before the epoch's timer started), checked; computed when None."""
        if given is None:
            return self.epoch(first_step, steps)
        if given.shape != (steps, len(self.layers)):
            raise ValueError(
                f"Expected one dropout key per dropout layer and step, shape {(steps, len(self.layers))}. Received: "
                f"{given.shape}. To fix, pass TrainingKeys.epoch(first_step, len(batches)) of this model's keys."
            )
        return np.ascontiguousarray(given, np.int64)


def training_keys(shared: bool, seed: int, layers: Sequence[int]) -> TrainingKeys | None:
    """A built model's TrainingKeys (``shared``: --dropout-rng shared); None when no step reads a key: masks drawn
    by the framework, or no dropout layer."""
    return TrainingKeys(seed, tuple(layers)) if shared and layers else None


def key_rows(
    source: TrainingKeys | None, first_step: int, steps: int, given: np.ndarray | None, layers: Sequence[int]
) -> np.ndarray:
    """An epoch's keys for a step that takes a row whatever the masks (TensorFlow's EpochInputs): ``source``'s rows,
    else (steps, max(len(layers), 1)) zeros, which no step reads: hashing them cost every epoch's timer."""
    if source is None:
        return np.zeros((steps, max(len(layers), 1)), np.int64)
    return source.rows(first_step, steps, given)


@runtime_checkable
class KeyedDropout(Protocol):
    """A backend whose training steps read shared dropout masks' keys: the harness hashes each epoch's before the
    epoch's timer starts (TrainingKeys.epoch) and passes them to train_epoch as ``dropout_keys``."""

    def training_dropout_keys(self) -> TrainingKeys | None:
        """None when no step reads a key: masks drawn by the framework (--dropout-rng framework), or no dropout."""


def drop_threshold(rate: float) -> int:
    """A unit is dropped when its top 24 bits are below this: P(drop) = threshold / 2**24."""
    if not 0 <= rate < 1:
        raise InputError(f"Expected a dropout rate in [0, 1). Received: rate={rate}. To fix, give a rate such as 0.5.")
    return int(round(rate * 2**UNIFORM_BITS))


def element_hashes(neutral_shape: tuple[int, ...], framework_order: tuple[int, ...] | None = None) -> np.ndarray:
    """hash(element index) for one sample, laid out as the framework holds it.

    ``neutral_shape`` is the per-sample shape in the neutral layout (e.g. (H, W, C)); ``framework_order`` the
    axis permutation that gives the framework's layout (torch: (2, 0, 1) for C, H, W), None when identical.
    """
    index = np.arange(int(np.prod(neutral_shape)), dtype=np.int64).reshape(neutral_shape)
    if framework_order is not None:
        index = index.transpose(framework_order)
    return hash32(np.ascontiguousarray(index))


def keep_mask(key: Any, sample_indices: Any, hashed_elements: Any, threshold: int, ops: IntegerOps = INT64_OPS) -> Any:
    """Boolean keep mask of shape (n, *element shape).

    ``sample_indices``: shape (n, 1, ..., 1) with one axis per element axis, so it broadcasts against
    ``hashed_elements`` (from :func:`element_hashes`); ``key`` from :func:`step_key`; all three of the integer type
    ``ops`` works in.
    """
    u = hash32(mix(key, sample_indices, ops) ^ hashed_elements, ops)
    return ops.shift(u, 32 - UNIFORM_BITS) >= threshold


# The two dropout kinds as PyTorch and Keras both define them; every backend computes them as mask_factors does.
SELU_ALPHA_PRIME = -1.7580993408473766  # -scale * alpha of SELU: the value alpha dropout drops units to


def standard_scale(rate: float) -> float:
    return 1.0 / (1.0 - rate)


def alpha_coefficients(rate: float) -> tuple[float, float]:
    """(a, b) of alpha dropout: out = a * (kept ? x : alpha') + b keeps SELU's zero mean and unit variance."""
    a = ((1.0 - rate) * (1.0 + rate * SELU_ALPHA_PRIME**2)) ** -0.5
    return a, -a * SELU_ALPHA_PRIME * rate


def reference_dropout(x: np.ndarray, key: int, rate: float, kind: str, offset: int = 0) -> np.ndarray:
    """What every backend must compute for a batch ``x`` in the neutral layout (the tests' reference)."""
    x = np.asarray(x, np.float32)
    hashed = element_hashes(x.shape[1:])
    samples = np.arange(offset, offset + len(x), dtype=np.int64).reshape((-1,) + (1,) * (x.ndim - 1))
    keep = keep_mask(key, samples, hashed, drop_threshold(rate))
    return apply_mask(x, keep, rate, kind)


def mask_factors(kept: Any, rate: float, kind: str) -> tuple[Any, Any]:
    """(factor, offset): dropout's output is x * factor (+ offset, alpha dropout only; None for standard dropout).

    ``kept`` is the mask as 0.0 / 1.0 floats.

    Computed from the mask alone, so autograd sees one multiply and one add. Kept units give x·scale (standard)
    or x·a + b (alpha); dropped ones 0, or alpha dropout's constant a·alpha' + b (rounded once to float32).
    """
    if kind == "alpha":
        a, b = alpha_coefficients(rate)
        return kept * a, (1.0 - kept) * (a * SELU_ALPHA_PRIME + b) + kept * b
    return kept * standard_scale(rate), None


def apply_mask(x: np.ndarray, keep: np.ndarray, rate: float, kind: str) -> np.ndarray:
    factor, offset = mask_factors(keep.astype(np.float32), rate, kind)
    return x * factor if offset is None else x * factor + offset


def layout_hashes(
    shape: tuple[int, ...], flattened_from: tuple[int, int, int] | None, channels_first: bool
) -> np.ndarray:
    """:func:`element_hashes` for a tensor as a backend holds it: ``shape`` is the neutral per-sample shape;
    channels-first backends hold feature maps as (C, H, W) and vectors flattened from a map in C,H,W order."""
    if not channels_first:
        return element_hashes(shape)
    if len(shape) == 3:
        return element_hashes(shape, (2, 0, 1))
    if len(shape) == 1 and flattened_from is not None:
        return element_hashes(flattened_from, (2, 0, 1)).reshape(-1)
    return element_hashes(shape)
