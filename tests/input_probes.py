"""Probes for tests/test_input_pipeline.py, each run in its own worker process: a framework's own resize, and the
pipeline's pixels under a precision."""

from __future__ import annotations

import numpy as np

from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def framework_resize(name: str, x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The framework's bilinear resize with half-pixel centres and no antialiasing, NHWC in and out."""
    if name == "torch":
        import torch
        import torch.nn.functional as F

        out = F.interpolate(
            torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False, antialias=False
        )
        return out.permute(0, 2, 3, 1).numpy()
    import tensorflow as tf

    return tf.image.resize(x, size, method="bilinear", antialias=False).numpy()


def pipeline_pixels(name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, precision: str) -> np.ndarray:
    """The input pipeline's output (its last layer, input_normalize) in a model built under ``precision``."""
    from harness.backend import load_backend
    from harness.config import RuntimeOptions

    backend = load_backend(name, RuntimeOptions(threads=1, precision=precision))
    backend.build(spec, weights, seed=0)
    return backend.extract_features(x, "input_normalize", batch_size=100)


def training_step_pixels(name: str, runtime: dict, shape: tuple[int, int, int], augmented: bool) -> tuple:
    """The pixels ``name``'s training step (under ``runtime``'s mode) feeds the network, read back exactly, and the
    numpy reference (crop/flip, resize, channel repeat, ImageNet normalisation). The network is the pipeline, a
    Flatten and a Dense(2) of zero weights; one plain SGD step at lr 1 on one sample of label 0: its logits are 0,
    their gradient (-0.5, 0.5), so the kernel's first column becomes 0.5 x each pixel, a product with nothing summed."""
    from harness.augment import AugmentConfig, augment_reference, epoch_draws
    from harness.backend import load_backend
    from harness.config import OptimizerConfig, RuntimeOptions
    from harness.input_pipeline import InputConfig, resize_reference, transformed_shape, with_input_pipeline
    from harness.spec import Dense, Flatten, ModelSpec
    from harness.weights import initial_weights

    config = InputConfig(size=20, channels=3, normalize="imagenet")
    x = np.random.default_rng(1).uniform(0, 1, size=(4, *shape)).astype(np.float32)
    layers = (Flatten(name="flat", group="features"), Dense(name="out", group="classifier", units=2))
    spec = with_input_pipeline(ModelSpec("probe", transformed_shape(config, shape), 2, layers), config, shape)
    zeros = {k: np.zeros_like(v) for k, v in initial_weights(spec, "he_normal", 0).items()}
    draws = epoch_draws(AugmentConfig(crop_padding=2, flip=True), 3, 1, len(x)) if augmented else None
    sample = np.array([2])
    seen = x[sample] if draws is None else augment_reference(x[sample], draws.view(sample, *shape[:2]))
    mean, inverse = np.float32([0.485, 0.456, 0.406]), np.float32(1) / np.float32([0.229, 0.224, 0.225])
    reference = (np.repeat(resize_reference(seen, (20, 20)), 3 // shape[-1], axis=-1) - mean) * inverse
    backend = load_backend(name, RuntimeOptions(threads=1, **runtime))
    backend.build(spec, zeros, seed=0)
    backend.set_optimizer(OptimizerConfig("sgd", lr=1.0).resolved())
    backend.set_data("train", x, np.array([0, 0, 0, 0], np.int64))
    backend.train_epoch("train", [sample], np.ones(1, np.float32), augment=draws, first_step=0)
    return backend.export_weights()["out/kernel"][:, 0] * np.float32(2), reference.reshape(-1)
