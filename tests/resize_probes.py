"""Probes for tests/test_resize_modes.py: torchvision's own evaluation transform (in the torch worker)."""

from __future__ import annotations

import numpy as np


def torchvision_eval_transform(_backend: str, x: np.ndarray, side: int, crop: int) -> np.ndarray:
    """torchvision.transforms.v2 Resize(side) + CenterCrop(crop) on float images (NHWC in and out), as its
    ImageNet weights' transforms() do before normalising."""
    import torch
    from torchvision.transforms import v2

    transform = v2.Compose([v2.Resize(side, interpolation=v2.InterpolationMode.BILINEAR), v2.CenterCrop(crop)])
    out = transform(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    return out.permute(0, 2, 3, 1).numpy()
