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
