"""Conversions between the neutral layout (NHWC, HWIO, (in, out)) and PyTorch's (NCHW, OIHW, (out, in)): weights,
images and features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

# A BatchNorm's neutral tensors and the nn.BatchNorm attributes that hold them.
BATCHNORM_TENSORS = (
    ("gamma", "weight"),
    ("beta", "bias"),
    ("moving_mean", "running_mean"),
    ("moving_variance", "running_var"),
)


def conv_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)


def conv_kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def dense_kernel_to_torch(kernel: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    """(in, out) -> (out, in); rows reordered from H,W,C to C,H,W when the input is a flattened feature map."""
    if flattened_from is not None:
        h, w, c = flattened_from
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel.T)


def _fits(size: int, flattened_from: tuple[int, int, int]) -> bool:
    h, w, c = flattened_from
    return size == h * w * c


def dense_kernel_from_torch(weight: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    """(out, in) -> (in, out); rows reordered from C,H,W to H,W,C on a flattened feature map. A kernel whose inputs
    are not that map's features (a Linear written for another input size) is returned unordered, for
    harness.importers.check_converted_weights to name with the layer and the size it was written for."""
    kernel = weight.T
    if flattened_from is not None and _fits(kernel.shape[0], flattened_from):
        h, w, c = flattened_from
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel)


def flat_features_to_torch(values: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    """A per-feature vector (BatchNorm's, PReLU's) on a flattened feature map: H,W,C order -> C,H,W."""
    if flattened_from is None:
        return values
    h, w, c = flattened_from
    return np.ascontiguousarray(values.reshape(h, w, c).transpose(2, 0, 1).reshape(-1))


def flat_features_from_torch(values: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    if flattened_from is None or not _fits(values.size, flattened_from):  # another size's: as for a dense kernel
        return values
    h, w, c = flattened_from
    return np.ascontiguousarray(values.reshape(c, h, w).transpose(1, 2, 0).reshape(-1))


def images_to_torch(x: np.ndarray) -> np.ndarray:
    """NHWC images as (N, C, H, W) with the standard strides a DataLoader's batches have. Not
    np.ascontiguousarray: numpy calls a one-channel transposition contiguous already and keeps its stride 1 on the
    channel axis, which torch reads as channels_last too, so oneDNN ran channels_last convolutions for 1-channel data
    without --channels-last (13 % slower epochs of convnet3 on digits here, docs/measurements.md)."""
    return x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x


def features_to_neutral(
    out: torch.Tensor, flattened_from: Callable[[], tuple[int, int, int] | None], average_maps: bool = False
) -> torch.Tensor:
    """A batch of features in torch's layout -> the neutral one, on the device: NCHW maps -> NHWC (or, with
    ``average_maps``, each channel's mean over H, W: (N, C)), and a flattened map's C,H,W order -> H,W,C
    (``flattened_from``, asked only for 2-D features, gives the map's shape or None)."""
    if out.ndim == 4:
        return out.mean(dim=(2, 3)) if average_maps else out.permute(0, 2, 3, 1).contiguous()
    if out.ndim == 2 and (flattened := flattened_from()) is not None:
        h, w, c = flattened
        return out.reshape(len(out), c, h, w).permute(0, 2, 3, 1).reshape(len(out), -1)
    return out
