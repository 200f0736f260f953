"""Conversions between the neutral weight layout (NHWC, HWIO, (in, out)) and PyTorch's (NCHW, OIHW, (out, in))."""

from __future__ import annotations

import numpy as np


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


def dense_kernel_from_torch(weight: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    kernel = weight.T
    if flattened_from is not None:
        h, w, c = flattened_from
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel)


def images_to_torch(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x
