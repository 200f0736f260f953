"""The training loss and the hit count, as every TensorFlow mode computes them."""

from __future__ import annotations

from backends.tensorflow.framework import tf


def loss_and_hits(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample softmax cross-entropy, or binary cross-entropy on one sigmoid output; and the hit count."""
    if logits.shape[-1] == 1:
        z = logits[:, 0]
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y, z.dtype), logits=z)
        return losses, tf.reduce_sum(tf.cast(tf.equal(tf.cast(z > 0, tf.int64), y), tf.int64))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return losses, tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.int64))
