"""Dropout whose masks come from harness.dropout_rng: the same units dropped as in every other backend."""

from __future__ import annotations

import numpy as np

from backends.tensorflow.framework import keras, tf
from harness.dropout_rng import IntegerOps, drop_threshold, keep_mask, mask_factors

# The hash in uint32, where the multiply wraps mod 2**32 by itself: the same bits as the int64 reference (tested),
# with half the memory traffic and no masking ``&`` after each multiply. In int64 the masks cost 23-29 % of the
# epoch on a 4000-unit dense layer (benchmarks/dropout_masks.py; docs/measurements.md). uint32, not int32:
# TensorFlow's int32 Mul and GreaterEqual on a GPU run in host memory.
UINT32_OPS = IntegerOps(
    shift=lambda x, bits: tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32)),  # tensors have no >> operator
    mul32=lambda x, constant: x * tf.constant(constant, tf.uint32),
)


class DropoutKeys:
    """This step's key per dropout layer, in variables the compiled steps assign before calling the model.

    A plain object on purpose: Keras does not track it, so the keys never appear among the model's weights."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.keys = tf.Variable(tf.zeros([max(slots, 1)], tf.int64), trainable=False, name="dropout_keys")
        self.offset = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="dropout_offset")

    def assign(self, keys: tf.Tensor, offset: tf.Tensor | int = 0) -> None:
        """Inside a tf.function: automatic control dependencies order these before the model's reads."""
        if self.slots:
            self.keys.assign(keys)
        self.offset.assign(tf.cast(offset, tf.int64))


class SharedDropout(keras.layers.Layer):
    """Standard or alpha dropout in training (or always, ``always_on``: MC dropout), masks from the keys."""

    def __init__(
        self,
        rate: float,
        kind: str,
        slot: int,
        hashed: np.ndarray,
        keys: DropoutKeys,
        always_on: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.rate, self.kind, self.slot, self.always_on = rate, kind, slot, always_on
        self.threshold = drop_threshold(rate)
        self._hashed = hashed.astype(np.uint32)  # every hash is below 2**32: exact
        self._keys = keys

    def call(self, inputs, training=None):
        if not (training or self.always_on) or self.rate == 0:
            return inputs
        samples = tf.range(tf.shape(inputs, out_type=tf.int64)[0], dtype=tf.int64) + self._keys.offset
        samples = tf.cast(tf.reshape(samples, [-1] + [1] * (len(inputs.shape) - 1)), tf.uint32)
        key = tf.cast(self._keys.keys[self.slot], tf.uint32)  # keys and sample indices are below 2**32: exact
        keep = keep_mask(key, samples, tf.constant(self._hashed), self.threshold, UINT32_OPS)
        factor, offset = mask_factors(tf.cast(keep, inputs.dtype), self.rate, self.kind)
        return inputs * factor if offset is None else inputs * factor + offset

    def compute_output_shape(self, input_shape):
        return input_shape
