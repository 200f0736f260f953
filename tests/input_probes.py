"""Probes for tests/test_input_pipeline.py that call a framework's own resize (each in its own worker process)."""

from __future__ import annotations

import numpy as np


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
