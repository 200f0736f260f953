"""Random crop and flip of a training batch (harness.augment) in TensorFlow: zero padding and two batched gathers,
so the pixels are the harness's reference bit for bit."""

from __future__ import annotations

from backends.tensorflow.framework import tf


def crop_flip(xb: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, padding: int) -> tf.Tensor:
    """``xb`` (N, H, W, C) padded with ``padding`` zeros per side; sample k's output is rows ``rows[k]`` and columns
    ``cols[k]`` of its padded image (a CropFlip's arrays). ``padding`` is a Python int: fixed per traced step."""
    if padding:
        xb = tf.pad(xb, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    picked = tf.gather(xb, rows, axis=1, batch_dims=1)
    return tf.gather(picked, cols, axis=2, batch_dims=1)
