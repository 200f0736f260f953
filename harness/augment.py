"""Training-batch augmentation as the lessons' CIFAR training uses it: a random crop of the image padded with black,
and a random horizontal flip (torchvision's ``RandomCrop(size, padding=p)`` then ``RandomHorizontalFlip()``).

The harness draws every random choice, in numpy, from the trial seed: one crop offset and one flip per training
sample per epoch (:func:`epoch_draws`), so a sample's augmentation does not depend on the batch it lands in. Each
batch's choices become two index arrays (:class:`CropFlip`): the rows and the columns of the padded image that make
up the output, a flipped sample's columns in reverse. Every backend applies them the same way, by padding each
channel with its constant and two gathers (no arithmetic), so the augmented pixels are identical bit for bit;
:func:`augment_reference` is that computation in numpy, the tests' reference.

The padding is black, as torchvision pads the pixels before ``Normalize``: in the dataset's stored values that is
0 for pixels scaled to [0, 1] (digits, MNIST, Fashion-MNIST), and -mean / std per channel for CIFAR-10, stored
standardised (``Dataset.black_pixel``; zeros would be the training set's mean colour there).

Augmentation is applied to the images as the dataset stores them (before the input pipeline's resize, channel
replication and normalisation, as torchvision's transforms run on the stored image before ``Normalize``), to
training batches only: evaluation, prediction and feature extraction see the images unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError
from harness.seeds import AUGMENT_CROP_STREAM, AUGMENT_FLIP_STREAM

DEFAULT_CROP_PADDING = 4  # the lessons' CIFAR-10 value (32x32 images)


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 0  # > 0: pad each side with this many black pixels, crop back to the size at a random offset
    flip: bool = False  # mirror left-right with probability 1/2

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise InputError(
                f"Expected a crop padding >= 0 (0: no random crop). Received: crop_padding={self.crop_padding}. "
                "To fix, give 0 for no random crop, or a padding of 1 or more (--augment crop:N)."
            )

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def describe(self) -> str:
        parts = ([f"crop:{self.crop_padding}"] if self.crop_padding else []) + (["flip"] if self.flip else [])
        return ",".join(parts) or "none"


def parse_augment(text: str) -> dict[str, int | bool]:
    """``--augment`` as the AugmentConfig fields it sets: ``crop`` (padding 4), ``crop:N``, ``flip``, ``none``,
    comma-separated (``crop,flip``); every field is set, so the option replaces a suite's augmentation whole."""
    fields: dict[str, int | bool] = {"crop_padding": 0, "flip": False}
    parts = [p.strip() for p in text.split(",")]
    names = [part.partition(":")[0] for part in parts]
    for part, name in zip(parts, names, strict=True):
        value = part.partition(":")[2]
        if part == "crop" or (name == "crop" and value.isdigit() and int(value) > 0):  # "crop:" is no padding
            fields["crop_padding"] = int(value) if value else DEFAULT_CROP_PADDING
        elif part == "flip":
            fields["flip"] = True
        elif part != "none":
            raise InputError(
                f"Expected --augment as comma-separated crop, crop:PADDING (a padding >= 1), flip or none (e.g. "
                f"crop,flip). Received: {text!r}. To fix, give those words only, such as --augment crop:4,flip, or "
                "--augment none for no augmentation."
            )
    if len(set(names)) < len(names) or ("none" in names and len(names) > 1):
        raise InputError(
            f"Expected each of crop and flip at most once, or none alone. Received: --augment {text!r}. To fix, "
            "give each once (crop:4,flip), or none for no augmentation."
        )
    return fields


def check_augment(config: AugmentConfig, data_shape: tuple[int, ...]) -> None:
    """Preflight: augmentation needs images (H, W, C) at least as large as the padding (InputError otherwise)."""
    if not config.active:
        return
    if len(data_shape) != 3:
        raise InputError(
            f"Expected image data (H, W, C) for --augment {config.describe()}. Received: data of shape "
            f"{tuple(data_shape)}. To fix, use an image dataset, or drop --augment."
        )
    side = min(data_shape[:2])
    if config.crop_padding >= side:
        # from the image's side on, crops at the extreme offsets hold padding only: blank images with their labels
        # (per axis 2 (p - side + 1) of the 2 p + 1 offsets)
        padding = config.crop_padding
        blank = 1 - (1 - 2 * (padding - side + 1) / (2 * padding + 1)) ** 2
        raise InputError(
            f"Expected a crop padding below the image side {side}. Received: crop_padding={config.crop_padding}, "
            f"whose crops would hold no pixel of the image for {blank:.0%} of the samples. To fix, "
            f"{_smaller_crop_fix(side)}."
        )


def _smaller_crop_fix(side: int) -> str:
    """The fix for a crop padding of the image's side or more: a padding the side allows, or no crop (a side of 1
    allows none)."""
    if side < 2:
        return "drop crop from --augment: images of side 1 allow no padding"
    return (
        f"give --augment crop:N with N below {side} (the lessons pad 32x32 images by {DEFAULT_CROP_PADDING}, an "
        "eighth of the side), or drop crop from --augment"
    )


@dataclass(frozen=True)
class CropFlip:
    """One batch's augmentation as index arrays into its padded images (int64: torch's gather needs them)."""

    padding: int
    rows: np.ndarray  # (n, H): output row i of sample k is row rows[k, i] of the padded image
    cols: np.ndarray  # (n, W): output column j of sample k is column cols[k, j] (reversed when flipped)
    fill: tuple[float, ...] = ()  # the padding's value per channel (float32 values); (): zeros

    @property
    def fills_zeros(self) -> bool:
        return not any(self.fill)


@dataclass(frozen=True)
class EpochAugment:
    """One epoch's draws for every training sample; backends ask for each batch's :class:`CropFlip`."""

    padding: int
    offsets: np.ndarray  # (N, 2) int64: the crop's top-left corner in the padded image, per sample
    flips: np.ndarray  # (N,) bool
    fill: tuple[float, ...] = ()  # the padding's value per channel: the stored black pixel; (): zeros

    def view(self, batch: np.ndarray, height: int, width: int) -> CropFlip:
        offsets, flips = self.offsets[batch], self.flips[batch]
        rows = offsets[:, :1] + np.arange(height, dtype=np.int64)[None, :]
        columns = np.where(flips[:, None], np.arange(width - 1, -1, -1), np.arange(width)[None, :])
        return CropFlip(self.padding, rows, offsets[:, 1:] + columns.astype(np.int64), self.fill)

    def views(self, batches: Sequence[np.ndarray], height: int, width: int) -> list[CropFlip]:
        return [self.view(b, height, width) for b in batches]


def epoch_draws(
    config: AugmentConfig, seed: int, epoch: int, num_samples: int, fill: tuple[float, ...] = ()
) -> EpochAugment | None:
    """The crop offsets and flips of one epoch, a pure function of (seed, epoch, sample index); None when off.
    ``fill``: the padding's value per channel, the data's black pixel (``Dataset.black_pixel``); (): zeros.

    Crops and flips come from separate streams, so turning one on or off leaves the other's draws unchanged."""
    if not config.active:
        return None
    span = 2 * config.crop_padding + 1
    offsets = np.random.default_rng([seed, epoch, AUGMENT_CROP_STREAM]).integers(0, span, size=(num_samples, 2))
    if config.flip:
        flips = np.random.default_rng([seed, epoch, AUGMENT_FLIP_STREAM]).random(num_samples) < 0.5
    else:
        flips = np.zeros(num_samples, dtype=bool)
    return EpochAugment(config.crop_padding, offsets.astype(np.int64), flips, tuple(fill))


def augment_reference(x: np.ndarray, view: CropFlip) -> np.ndarray:
    """A batch ``x`` (NHWC) augmented as every backend must do it: each channel padded with its fill, then gathering
    rows and columns."""
    p = view.padding
    fill = view.fill or (0.0,) * x.shape[3]
    padded = np.concatenate(
        [np.pad(x[..., c : c + 1], ((0, 0), (p, p), (p, p), (0, 0)), constant_values=f) for c, f in enumerate(fill)],
        axis=3,
    )
    samples = np.arange(len(x))[:, None, None]
    return padded[samples, view.rows[:, :, None], view.cols[:, None, :]]
