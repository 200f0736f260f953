"""One trace per compiled function, whatever the batch size.

A ``tf.function`` traces again for every new input shape; ``reduce_retracing`` only relaxes the shape on the
second trace. An epoch whose last batch is smaller (1,257 training digits in batches of 64 end with 41) therefore traced
and graph-optimised a step twice, and evaluation twice more: for a 121-layer DenseNet that was half of a trial's
warm-up. Tracing first with the batch dimension left open gives one graph that every later call reuses (the
dispatcher picks the traced signature that matches), with the same ops, so the same numbers. The plain train step
reads its batch from the epoch's variables (modes.EpochInputs) and has no batch shape to trace for; the augmented
step, evaluation, prediction and feature extraction do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends.tensorflow.framework import tf


def traced(function: Callable[..., Any], jit_compile: bool = False, reduce_retracing: bool = True) -> Any:
    """``function`` as a tf.function, as this backend compiles every function it traces.

    Autograph off: the traced code's control flow on tensors is explicit (tf.cond, tf.while_loop, tf.where), so
    autograph had nothing to convert, but converting the harness's and Keras' Python on a process's first trace cost
    about 0.8 s of its first warm-up (cnn_small 1.41 -> 0.58 s, same losses; docs/measurements.md)."""
    return tf.function(function, jit_compile=jit_compile, reduce_retracing=reduce_retracing, autograph=False)


def feature_extractor(submodel: Any, dtype: tf.DType, average_maps: bool, jit_compile: bool) -> Any:
    """``submodel``'s output in inference mode, cast to the variable type ``dtype`` (float32 for float32 and mixed
    runs, float64 for float64), traced as evaluation is (XLA with ``jit_compile``); with ``average_maps``, a batch of
    NHWC feature maps as each channel's mean over H, W (N, C), computed where the maps are (``--feature-pool avg``)."""

    def extract(x: tf.Tensor) -> tf.Tensor:
        features = tf.cast(submodel(x, training=False), dtype)
        return tf.reduce_mean(features, axis=(1, 2)) if average_maps and features.shape.rank == 4 else features

    return traced(extract, jit_compile=jit_compile)


def any_batch(tensor: tf.Tensor | np.ndarray) -> tf.TensorSpec:
    """``tensor``'s spec with its first (batch) dimension open."""
    return tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype)


def exactly(tensor: tf.Tensor) -> tf.TensorSpec:
    return tf.TensorSpec(tensor.shape, tensor.dtype)


def trace_for_any_batch(function: Any, *specs: tf.TensorSpec | int) -> None:
    """Trace ``function`` (a ``tf.function``; a plain Python function, as eager mode runs, is left alone) for
    ``specs`` (Python values, such as a crop's padding, as they will be passed) unless a trace for them exists
    already."""
    if hasattr(function, "get_concrete_function"):
        function.get_concrete_function(*specs)
