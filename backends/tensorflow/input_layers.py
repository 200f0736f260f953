"""The input pipeline's layers (harness.input_pipeline) in Keras/TensorFlow, on NHWC batches."""

from __future__ import annotations

import numpy as np

from backends.tensorflow.framework import keras, tf
from harness.input_pipeline import bilinear_taps


class Resize(keras.layers.Layer):
    """Bilinear resize with the harness's taps: rows, then columns, each x[low] * w_low + x[high] * w_high."""

    def __init__(
        self, in_hw: tuple[int, int], out_hw: tuple[int, int], resized: tuple[int, int] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        sides = resized or (None, None)
        self.taps = [
            tuple(np.asarray(t) for t in bilinear_taps(i, o, r)) for i, o, r in zip(in_hw, out_hw, sides, strict=True)
        ]

    def call(self, x):
        (hl, hh, hwl, hwh), (wl, wh, wwl, wwh) = self.taps
        hwl, hwh, wwl, wwh = (tf.cast(w, x.dtype) for w in (hwl, hwh, wwl, wwh))  # float32 taps, exact in float64
        rows = tf.gather(x, hl, axis=1) * hwl[None, :, None, None] + tf.gather(x, hh, axis=1) * hwh[None, :, None, None]
        cols_low, cols_high = tf.gather(rows, wl, axis=2), tf.gather(rows, wh, axis=2)
        return cols_low * wwl[None, None, :, None] + cols_high * wwh[None, None, :, None]


class RepeatChannels(keras.layers.Layer):
    def __init__(self, repeats: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.repeats = repeats

    def call(self, x):
        return tf.tile(x, [1, 1, 1, self.repeats])


class Normalize(keras.layers.Layer):
    def __init__(self, mean: tuple[float, ...], inv_std: tuple[float, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean, self.inv_std = np.asarray(mean, np.float32), np.asarray(inv_std, np.float32)

    def call(self, x):
        # x - mean as a BiasAdd of -mean (the same float32 sum): grappler's constant folding rewrites a Sub of a
        # constant behind the resize's last Add, (p + q) - mean, into p + (q - mean) inside tf.function, which rounds
        # 40-50% of RGB pixels differently from torch and numpy; it leaves BiasAdd alone.
        return tf.nn.bias_add(x, tf.cast(-self.mean, x.dtype)) * tf.cast(self.inv_std, x.dtype)
