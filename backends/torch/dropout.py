"""Dropout whose masks come from harness.dropout_rng: the same units dropped as in every other backend."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.dropout_rng import drop_threshold, keep_mask, mask_factors


class DropoutKeys:
    """This step's key per dropout layer, shared by the model's dropout modules and set by the adapter.

    ``keys`` is an int64 tensor on the device (one entry per dropout layer, in spec order); ``offset`` is the
    index of the batch's first sample (non-zero only when a pass is split into several batches)."""

    def __init__(self, device: torch.device, slots: int) -> None:
        self.device = device
        self.keys = torch.zeros(max(slots, 1), dtype=torch.int64, device=device)
        self.offset = 0

    def set(self, keys: list[int] | torch.Tensor, offset: int = 0) -> None:
        """``keys`` from the host (copied to the device), or already on the device (used as is: a training step's
        row of its epoch's keys, uploaded once); empty: the keys stay (a model without shared dropout layers)."""
        if len(keys):
            self.keys = (
                keys if isinstance(keys, torch.Tensor) else torch.tensor(keys, dtype=torch.int64, device=self.device)
            )
        self.offset = offset


class SharedDropout(nn.Module):
    """Standard or alpha dropout in training mode (or always, ``always_on``: MC dropout), masks from the keys."""

    def __init__(self, rate: float, kind: str, slot: int, hashed: np.ndarray, keys: DropoutKeys) -> None:
        super().__init__()
        self.rate, self.kind, self.slot, self.keys = rate, kind, slot, keys
        self.threshold = drop_threshold(rate)
        self.register_buffer("hashed", torch.from_numpy(hashed), persistent=False)  # not a weight: never exported
        self.always_on = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training or self.always_on) or self.rate == 0:
            return x
        offset = self.keys.offset
        samples = torch.arange(offset, offset + x.shape[0], dtype=torch.int64, device=x.device)
        samples = samples.view((-1,) + (1,) * (x.dim() - 1))
        kept = keep_mask(self.keys.keys[self.slot], samples, self.hashed, self.threshold).to(x.dtype)
        factor, offset = mask_factors(kept, self.rate, self.kind)
        return x * factor if offset is None else x * factor + offset
