"""The input pipeline's layers (harness.input_pipeline) in PyTorch, on NCHW batches."""

from __future__ import annotations

import torch
from torch import nn

from harness.input_pipeline import bilinear_taps


class Resize(nn.Module):
    """Bilinear resize with the harness's taps: rows, then columns, each x[low] * w_low + x[high] * w_high."""

    # Buffers, registered in __init__ (declared here for the type checker: a Module's attributes are untyped).
    h_low: torch.Tensor
    h_high: torch.Tensor
    h_w_low: torch.Tensor
    h_w_high: torch.Tensor
    w_low: torch.Tensor
    w_high: torch.Tensor
    w_w_low: torch.Tensor
    w_w_high: torch.Tensor

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int], resized: tuple[int, int] | None = None) -> None:
        super().__init__()
        for index, (axis, size_in, size_out) in enumerate(zip("hw", in_hw, out_hw, strict=True)):
            low, high, w_low, w_high = bilinear_taps(size_in, size_out, resized[index] if resized else None)
            self.register_buffer(f"{axis}_low", torch.from_numpy(low), persistent=False)
            self.register_buffer(f"{axis}_high", torch.from_numpy(high), persistent=False)
            self.register_buffer(f"{axis}_w_low", torch.from_numpy(w_low), persistent=False)
            self.register_buffer(f"{axis}_w_high", torch.from_numpy(w_high), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wl, wh = self.h_w_low.view(1, 1, -1, 1), self.h_w_high.view(1, 1, -1, 1)
        rows = x.index_select(2, self.h_low) * wl + x.index_select(2, self.h_high) * wh
        wl, wh = self.w_w_low.view(1, 1, 1, -1), self.w_w_high.view(1, 1, 1, -1)
        return rows.index_select(3, self.w_low) * wl + rows.index_select(3, self.w_high) * wh


class RepeatChannels(nn.Module):
    def __init__(self, repeats: int) -> None:
        super().__init__()
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, self.repeats, 1, 1)


class Normalize(nn.Module):
    mean: torch.Tensor  # buffers, registered in __init__
    inv_std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], inv_std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("inv_std", torch.tensor(inv_std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std
