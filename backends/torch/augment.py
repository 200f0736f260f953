"""Random crop and flip of a training batch (harness.augment) in PyTorch: padding with each channel's constant and
two gathers, so the pixels are the harness's reference bit for bit."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.augment import CropFlip


def crop_flip(xb: torch.Tensor, view: CropFlip) -> torch.Tensor:
    """``xb`` (N, C, H, W) padded with ``view.padding`` pixels of ``view.fill`` per side, then rows and columns
    gathered per sample."""
    n, c, h, w = xb.shape
    padded = _padded(xb, view) if view.padding else xb
    rows = torch.from_numpy(view.rows).to(xb.device, non_blocking=True)
    cols = torch.from_numpy(view.cols).to(xb.device, non_blocking=True)
    picked = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return picked.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def _padded(xb: torch.Tensor, view: CropFlip) -> torch.Tensor:
    sides = (view.padding,) * 4
    if view.fills_zeros:
        return F.pad(xb, sides)
    # F.pad takes one value: each channel is padded with its own, a copy of the value, no arithmetic on the pixels
    return torch.cat([F.pad(xb[:, k : k + 1], sides, value=fill) for k, fill in enumerate(view.fill)], dim=1)
