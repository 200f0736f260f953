"""Probes for tests/test_augment.py, run inside a per-backend worker process."""

from __future__ import annotations

import numpy as np

from harness.augment import EpochAugment
from harness.backend import load_backend
from harness.config import OptimizerConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def crop_flip(name: str, x: np.ndarray, augment: EpochAugment, batch: np.ndarray) -> np.ndarray:
    """The backend's own augmentation of ``x[batch]`` (NHWC in and out), as its train step applies it."""
    view = augment.view(batch, x.shape[1], x.shape[2])
    if name == "torch":
        import torch

        from backends.torch.augment import crop_flip as torch_crop_flip

        xb = torch.from_numpy(np.ascontiguousarray(x[batch].transpose(0, 3, 1, 2)))
        return torch_crop_flip(xb, view).numpy().transpose(0, 2, 3, 1)
    import tensorflow as tf

    from backends.tensorflow.augment import crop_flip as tf_crop_flip

    step = tf.function(lambda xb, rows, cols: tf_crop_flip(xb, rows, cols, view.padding, view.fill))
    return step(tf.constant(x[batch]), view.rows, view.cols).numpy()


def train_augmented(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    data: tuple[np.ndarray, np.ndarray],
    batches: list[np.ndarray],
    augment: EpochAugment | None,
) -> NeutralWeights:
    """One epoch of ``batches`` with momentum SGD under ``runtime`` (a TensorFlow mode), augmented as given."""
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=0)
    optimizer = OptimizerConfig("momentum", lr=0.02)
    backend.set_optimizer(optimizer.resolved())
    backend.set_data("train", *data)
    backend.train_epoch(
        "train", batches, np.full(len(batches), optimizer.lr, np.float32), augment=augment, first_step=0
    )
    return backend.export_weights()
