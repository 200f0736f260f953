"""The inputs a network needs, from the images a dataset has: resize, grayscale -> 3 channels, normalisation.

One implementation for every backend: the pipeline is a prefix of neutral layers (Resize2D, RepeatChannels,
Normalize) put in front of the model's spec, so each batch is transformed on the device inside the same step
that trains or evaluates it (the dataset stays at its stored size: CIFAR-10 at 227x227 in float32 would be
31 GB), and the resize arithmetic is fixed here, in :func:`bilinear_taps`, so the backends produce identical
pixels. The model itself is built and initialised for the transformed shape, so its weights do not depend on
whether a pipeline runs in front of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness.data.registry import Dataset, unit_range_pixels
from harness.errors import InputError
from harness.shapes import infer_shapes
from harness.spec import Layer, ModelSpec, Normalize, RepeatChannels, Resize2D

# Per-channel statistics of ImageNet's training images (pixels in [0, 1]): what torchvision's pretrained weights
# expect, and Keras' applications in their matching preprocessing mode.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # keras.applications' preprocess_input modes: "tf" scales to [-1, 1]; "caffe" subtracts ImageNet's means on
    # 0..255 (RGB order here: the converted Caffe-convention weights take RGB, harness.pretrained); "torch" is imagenet
    "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "caffe": ((123.68 / 255, 116.779 / 255, 103.939 / 255), (1 / 255, 1 / 255, 1 / 255)),
}
UNIT_RANGE_DATASETS = ("pixels / 255", "pixels / 16")  # dataset normalisations that leave pixels in [0, 1]
# How images reach --input-size: "stretch" resizes them to it; "resize-crop" resizes the shorter side to
# ``resize_side`` and keeps the centred square (torchvision's Resize(256) + CenterCrop(224), how its ImageNet
# weights are evaluated).
RESIZE_MODES = ("stretch", "resize-crop")
CROP_RATIO = 224 / 256  # torchvision's usual crop of the resized image, for a resize-crop without a weight set's side


@dataclass(frozen=True)
class InputConfig:
    size: int | None = None  # square side the images are resized to; None keeps the dataset's
    channels: int | None = None  # 3 replicates a grayscale image; None keeps the dataset's channels
    normalize: str = "none"  # a key of NORMALIZATIONS, applied after resizing and channel replication
    resize_mode: str = "stretch"  # one of RESIZE_MODES
    resize_side: int | None = None  # resize-crop: the shorter side before the crop (None: size / CROP_RATIO)

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise InputError(
                f"Expected resize_mode in {list(RESIZE_MODES)}. Received: {self.resize_mode!r}. To fix, give one of "
                "them (--resize-mode)."
            )
        if self.resize_side is not None and self.size is not None and self.resize_side < self.size:
            raise InputError(
                f"Expected resize_side >= size (the crop is taken from the resized image). Received: "
                f"resize_side={self.resize_side}, size={self.size}. To fix, give a resize_side of {self.size} or more, "
                "or leave it out for size / 0.875 (torchvision's ratio of Resize(256) to CenterCrop(224))."
            )
        if self.size is not None and self.size < 1:
            raise InputError(
                f"Expected an input size >= 1. Received: size={self.size}. To fix, give 1 or more (--input-size N), "
                "or leave it out to keep the dataset's image size."
            )
        if self.channels is not None and self.channels < 1:
            raise InputError(
                f"Expected input channels >= 1. Received: channels={self.channels}. To fix, give 1 or more "
                "(--input-channels N), or leave it out to keep the dataset's channels."
            )
        if self.normalize not in NORMALIZATIONS:
            raise InputError(
                f"Expected normalize in {list(NORMALIZATIONS)}. Received: normalize={self.normalize!r}. To fix, give "
                "one of them (--normalize)."
            )

    @property
    def is_identity(self) -> bool:
        return self.size is None and self.channels is None and self.normalize == "none"


def bilinear_taps(
    in_size: int, out_size: int, resized: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output index along one axis: the two input neighbours (low, high) and their float32 weights.

    Half-pixel centres, PyTorch's rule: source = (i + 0.5) * in / out - 0.5, clamped below at 0; low = floor,
    high = min(low + 1, in - 1), weight_high = source - low. Out = x[low] * w_low + x[high] * w_high, in that order.
    ``resized``: the taps of a resize to ``resized``, of which the centred ``out_size`` are kept (torchvision's
    CenterCrop offset, round((resized - out) / 2)): resize-and-crop is the same gather as a plain resize.
    """
    full = out_size if resized is None else resized
    scale = np.float32(in_size) / np.float32(full)
    offset = 0 if resized is None else int(round((resized - out_size) / 2.0))
    index = np.arange(offset, offset + out_size, dtype=np.float32)
    source = np.maximum((index + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0.0))
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    w_high = (source - low.astype(np.float32)).astype(np.float32)
    return low, high, (np.float32(1.0) - w_high).astype(np.float32), w_high


def resize_reference(x: np.ndarray, size: tuple[int, int], resized: tuple[int, int] | None = None) -> np.ndarray:
    """The Resize2D layer in numpy (NHWC, float32): what every backend must reproduce bit for bit."""
    lo, hi, wl, wh = bilinear_taps(x.shape[1], size[0], resized[0] if resized else None)
    rows = x[:, lo] * wl[None, :, None, None] + x[:, hi] * wh[None, :, None, None]
    lo, hi, wl, wh = bilinear_taps(x.shape[2], size[1], resized[1] if resized else None)
    return rows[:, :, lo] * wl[None, None, :, None] + rows[:, :, hi] * wh[None, None, :, None]


def transformed_shape(config: InputConfig, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape the model is built for."""
    if config.is_identity:
        return tuple(data_shape)
    if len(data_shape) != 3:
        raise InputError(
            f"Expected image data (H, W, C) for --input-size/--input-channels/--normalize. "
            f"Received: data of shape {tuple(data_shape)}. To fix, use an image dataset, or drop those options."
        )
    h, w, c = data_shape
    side = config.size
    return (side or h, side or w, config.channels or c)


def pipeline_data(config: InputConfig, dataset: Dataset) -> Dataset:
    """The dataset as the pipeline's normalisation takes it: one for pretrained weights (ImageNet's statistics and
    the like) expects pixels in [0, 1], so a dataset stored standardised (CIFAR-10, as the notebooks train from
    scratch) returns to its pixels / 255 first; the two normalisations are never stacked."""
    if NORMALIZATIONS[config.normalize] is None or dataset.normalization in UNIT_RANGE_DATASETS:
        return dataset
    return unit_range_pixels(dataset)


def check_input(
    config: InputConfig, data_shape: tuple[int, ...], dataset_normalization: str, has_unit_pixels: bool = False
) -> None:
    """Preflight: the pipeline fits the data (raises InputError saying what was expected). ``has_unit_pixels``:
    the dataset can return to pixels in [0, 1] (:func:`pipeline_data`) whatever its own normalisation."""
    shape = transformed_shape(config, data_shape)
    if (
        config.channels is not None
        and config.channels != data_shape[-1]
        and (data_shape[-1] != 1 or config.channels % data_shape[-1])
    ):
        raise InputError(
            f"Expected --input-channels equal to the data's {data_shape[-1]} (grayscale data may be replicated to "
            f"any count). Received: {config.channels}, from --input-channels or, for a torchvision: or keras: "
            "model, the RGB input it takes. To fix, drop --input-channels, or use data the model's channels fit."
        )
    stats = NORMALIZATIONS[config.normalize]
    if stats is not None:
        if len(stats[0]) != shape[-1]:
            raise InputError(
                f"Expected {len(stats[0])}-channel inputs for --normalize {config.normalize}. Received: "
                f"{shape[-1]} channels. To fix, {_normalize_channels_fix(len(stats[0]), data_shape[-1])}."
            )
        if dataset_normalization not in UNIT_RANGE_DATASETS and not has_unit_pixels:
            raise InputError(
                f"Expected pixels in [0, 1] for --normalize {config.normalize}. Received: a dataset "
                f"normalised by {dataset_normalization!r}. To fix, use --normalize none to train on the dataset's own "
                "normalisation."
            )


def resized_size(config: InputConfig, hw: tuple[int, int]) -> tuple[int, int] | None:
    """resize-crop: the size the image is resized to before its centred (size x size) crop, the shorter side
    becoming ``resize_side`` (torchvision's Resize(int): the longer one int(side * long / short)); else None."""
    if config.resize_mode != "resize-crop" or config.size is None:
        return None
    side = config.resize_side or int(round(config.size / CROP_RATIO))
    h, w = hw
    return (side, int(side * w / h)) if h <= w else (int(side * h / w), side)


def input_layers(config: InputConfig, data_shape: tuple[int, ...], group: str) -> tuple[Layer, ...]:
    """The prefix that turns data of ``data_shape`` into the model's input (empty when nothing changes)."""
    if config.is_identity:
        return ()
    h, w, c = data_shape
    out_h, out_w, out_c = transformed_shape(config, data_shape)
    layers: list[Layer] = []
    resized = resized_size(config, (h, w))
    if (out_h, out_w) != (h, w) or resized is not None:
        layers.append(Resize2D(name="input_resize", group=group, output_size=(out_h, out_w), resized=resized))
    if out_c != c:
        layers.append(RepeatChannels(name="input_channels", group=group, repeats=out_c // c))
    stats = NORMALIZATIONS[config.normalize]
    if stats is not None:
        layers.append(Normalize(name="input_normalize", group=group, mean=stats[0], std=stats[1]))
    return tuple(layers)


def without_input_pipeline(spec: ModelSpec) -> ModelSpec:
    """``spec`` without the layers :func:`with_input_pipeline` (or a spec file) put in front of the network
    (resize, channel repeat, normalisation), the first of the rest reading the model input: the network a
    checkpoint trained behind an input pipeline holds. Its input shape is left as it was."""
    count = 0
    while count < len(spec.layers) and isinstance(spec.layers[count], (Resize2D, RepeatChannels, Normalize)):
        count += 1
    if count == 0:
        return spec
    fed = spec.layers[count - 1].name
    layers = tuple(
        dataclasses.replace(l, inputs=tuple("input" if s == fed else s for s in l.inputs)) if fed in l.inputs else l
        for l in spec.layers[count:]
    )
    return dataclasses.replace(spec, layers=layers)


def pipeline_of(spec: ModelSpec) -> InputConfig:
    """The input pipeline at the front of ``spec`` (:func:`with_input_pipeline`'s prefix) as the options that build
    it: a backbone xfbench trained behind --input-size, --input-channels or --normalize saves its spec with it, and
    its weights expect their data so. A normalisation no option names reads as none."""
    size, channels, normalize, mode, side = None, None, "none", "stretch", None
    for layer in spec.layers:
        if isinstance(layer, Resize2D):
            size = layer.output_size[0]
            if layer.resized is not None:
                mode, side = "resize-crop", min(layer.resized)
        elif isinstance(layer, RepeatChannels):
            channels = spec.input_shape[-1] * layer.repeats
        elif isinstance(layer, Normalize):
            stats = (tuple(map(float, layer.mean)), tuple(map(float, layer.std)))
            normalize = next((name for name, known in NORMALIZATIONS.items() if known == stats), "none")
        else:
            break
    return InputConfig(size=size, channels=channels, normalize=normalize, resize_mode=mode, resize_side=side)


def network_behind_pipeline(spec: ModelSpec) -> ModelSpec:
    """The network ``spec``'s input pipeline feeds, built for the pipeline's output shape: initial weights drawn for
    it do not depend on the pipeline (they are keyed by layer index, which the pipeline's layers would shift)."""
    network = without_input_pipeline(spec)
    if network is spec:
        return spec
    fed = spec.layers[len(spec.layers) - len(network.layers) - 1].name
    return dataclasses.replace(network, input_shape=tuple(infer_shapes(spec)[fed].shape))


def with_input_pipeline(spec: ModelSpec, config: InputConfig, data_shape: tuple[int, ...]) -> ModelSpec:
    """``spec`` fed by the pipeline: the prefix layers in the model's first group, and every layer that read the
    model input reading the prefix's output instead (the first layer does so implicitly, as the next in line);
    the input shape becomes the data's."""
    prefix = input_layers(config, data_shape, spec.layers[0].group)
    if not prefix:
        return spec
    fed = prefix[-1].name
    layers = tuple(
        dataclasses.replace(l, inputs=tuple(fed if s == "input" else s for s in l.inputs)) if "input" in l.inputs else l
        for l in spec.layers
    )
    return dataclasses.replace(spec, input_shape=tuple(data_shape), layers=prefix + layers)


def _normalize_channels_fix(wanted: int, data_channels: int) -> str:
    """The fix for a normalisation whose statistics have another channel count than the inputs: grayscale data can
    be repeated to that count; data of other channels can only go without the normalisation."""
    if data_channels == 1:
        return (
            f"give --input-channels {wanted} (the grayscale channel repeated, as RGB models take it), or use "
            "--normalize none"
        )
    return f"use --normalize none, or data of {wanted} channels"
