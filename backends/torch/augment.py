"""Random crop and flip of a training batch (harness.augment) in PyTorch: zero padding and two gathers, so the
pixels are the harness's reference bit for bit."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.augment import CropFlip


def crop_flip(xb: torch.Tensor, view: CropFlip) -> torch.Tensor:
    """``xb`` (N, C, H, W) padded with ``view.padding`` zeros per side, then rows and columns gathered per sample."""
    n, c, h, w = xb.shape
    p = view.padding
    padded = F.pad(xb, (p, p, p, p)) if p else xb
    rows = torch.from_numpy(view.rows).to(xb.device, non_blocking=True)
    cols = torch.from_numpy(view.cols).to(xb.device, non_blocking=True)
    picked = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return picked.gather(3, cols[:, None, None, :].expand(n, c, h, w))
