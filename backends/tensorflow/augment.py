"""Random crop and flip of a training batch (harness.augment) in TensorFlow: padding with each channel's constant
and two batched gathers, so the pixels are the harness's reference bit for bit."""

from __future__ import annotations

from backends.tensorflow.framework import tf


def crop_flip(xb: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, padding: int, fill: tuple[float, ...] = ()) -> tf.Tensor:
    """``xb`` (N, H, W, C) padded with ``padding`` pixels of ``fill`` (one value per channel; (): zeros) per side;
    sample k's output is rows ``rows[k]`` and columns ``cols[k]`` of its padded image (a CropFlip's arrays).
    ``padding`` and ``fill`` are Python values: fixed per traced step."""
    if padding:
        xb = _padded(xb, padding, fill)
    picked = tf.gather(xb, rows, axis=1, batch_dims=1)
    return tf.gather(picked, cols, axis=2, batch_dims=1)


def _padded(xb: tf.Tensor, padding: int, fill: tuple[float, ...]) -> tf.Tensor:
    sides = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    if not any(fill):
        return tf.pad(xb, sides)
    # tf.pad takes one constant: each channel is padded with its own, a copy of the value, no arithmetic on the pixels
    channels = [tf.pad(xb[..., k : k + 1], sides, constant_values=value) for k, value in enumerate(fill)]
    return tf.concat(channels, axis=-1)
