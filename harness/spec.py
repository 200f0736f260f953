"""Framework-neutral model specification.

A model is a directed acyclic graph of layers. Each layer names its inputs; an
empty ``inputs`` means "the previous layer" (or the model input for the first
layer), so plain chains stay short to write while residual and branching
networks (``Add``, ``Concat``) need no redesign.

Layouts are fixed here once so both backends convert to them:
images are NHWC, conv kernels are (kh, kw, in / groups, out) (plain convs:
groups = 1), dense kernels are (in, out) and a ``Flatten`` of an (H, W, C)
tensor orders features as H, W, C.

Padding is always explicit, per side: ``((top, bottom), (left, right))``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.errors import InputError

Pair = tuple[int, int]
Padding2D = tuple[Pair, Pair]  # ((top, bottom), (left, right))

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "tanh", "sigmoid", "linear")
BN_RUNNING_VARIANCES = ("unbiased", "biased")
DROPOUT_KINDS = ("standard", "alpha")
PRELU_INIT = 0.25  # PyTorch's default slope; Keras' default is 0, so it is always set explicitly


@dataclass(frozen=True)
class Allowed:
    """The values a layer field may hold beyond its annotated type, kept in the field's metadata so that one
    checker (:func:`_check_layer_values`) reads a spec file's every field from the dataclass itself: numbers (each
    one, in a tuple) between ``low`` and ``high`` (``*_open``: that end excluded), text among ``kinds``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    kinds: tuple[str, ...] = ()

    def admits(self, value: object) -> bool:
        if isinstance(value, str):
            return not self.kinds or value in self.kinds
        number = typing.cast(float, value)
        above = self.low is None or (number > self.low if self.low_open else number >= self.low)
        return above and (self.high is None or (number < self.high if self.high_open else number <= self.high))

    def bounds(self, what: str) -> str:
        """The range as a condition on ``what``, a field's name: "0 <= rate < 1", "filters >= 1"; "" if none."""
        low = "" if self.low is None else f"{self.low:g} {'<' if self.low_open else '<='} "
        high = "" if self.high is None else f" {'<' if self.high_open else '<='} {self.high:g}"
        if low and not high:  # "filters >= 1" reads better than "1 <= filters"
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return f"{low}{what}{high}" if low or high else ""

    def interval(self) -> str:
        """The range after a noun: ">= 1", "> 0", "in [0, 1)"; "" if none."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return self.bounds("").strip()


def _allowed(**limits: Any) -> dict[str, Allowed]:
    return {"allowed": Allowed(**limits)}


_COUNT = _allowed(low=1)  # units, filters, kernel sizes, strides, pool and output sizes, repeats, groups
_PADS = _allowed(low=0)  # padding per side


@dataclass(frozen=True, kw_only=True)
class Layer:
    name: str
    group: str
    inputs: tuple[str, ...] = ()


def _is_int_pair(value: object, minimum: int) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and int(v) >= minimum for v in value)
    )


def _check_padding(layer: Layer, padding: Padding2D, limit: Pair | None = None) -> None:
    """Per-side padding: two (before, after) pairs of ints >= 0, each below ``limit`` on its axis when given."""
    if not (isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int_pair(p, 0) for p in padding)):
        raise InputError(
            f"Expected padding ((top, bottom), (left, right)) of ints >= 0 in layer {layer.name!r} "
            f"({type(layer).__name__}). Received: padding={padding!r}. To fix, write it per side, e.g. "
            "((1, 1), (1, 1))."
        )
    if limit is not None and any(p >= size for pair, size in zip(padding, limit, strict=True) for p in pair):
        raise InputError(
            f"Expected each side's padding below the pool size {limit} in layer {layer.name!r} "
            f"({type(layer).__name__}), so every window holds at least one input element. "
            f"Received: padding={padding!r}. To fix, pad less, or add a ZeroPad2D layer before the pool if zeros are "
            "meant."
        )


def _check_sizes(layer: Layer, counts: dict[str, object], pairs: dict[str, object]) -> None:
    """Sizes a layer cannot run without: ``counts`` whole numbers >= 1, ``pairs`` (height, width) pairs of them
    (``None``: the field's default). A spec file or a user's model is checked here, when the spec is built, not
    inside a worker."""
    wrong = [(name, value, "a whole number >= 1") for name, value in counts.items() if not _is_count(value)]
    wrong += [
        (name, value, "a pair of whole numbers >= 1")
        for name, value in pairs.items()
        if value is not None and not _is_int_pair(value, 1)
    ]
    if wrong:
        name, value, expected = wrong[0]
        raise InputError(
            f"Expected {name} as {expected} in layer {layer.name!r} ({type(layer).__name__}). "
            f"Received: {name}={value!r}. To fix, give {name} as {expected} in the model or the spec file."
        )


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


@dataclass(frozen=True, kw_only=True)
class Conv2D(Layer):
    """2-D convolution; zero padding per side is part of the layer.

    ``groups`` (PyTorch's ``groups``; not the layer *group* above) splits the input channels and the filters
    into that many equal groups, each convolved on its own: output channel o belongs to group
    g = o // (filters / groups) and reads input channels [g·in/groups, (g+1)·in/groups). Both the input
    channels and ``filters`` must be divisible by ``groups``. Depthwise convolution is groups = input channels;
    filters = groups·k gives a channel multiplier k, with output channel c·k + m the m-th filter on input
    channel c (the order of both PyTorch's grouped conv and tf.nn.depthwise_conv2d).

    The kernel is (kh, kw, in / groups, filters) for every ``groups``, so fan-in is (in / groups)·kh·kw, as in
    PyTorch and Keras' Conv2D(groups=...); Keras' DepthwiseConv2D stores (kh, kw, in, k) and counts fan-in as
    in·kh·kw, which only matters to framework-side initializers (the harness generates the weights).
    """

    filters: int = field(metadata=_COUNT)
    kernel_size: Pair = field(metadata=_COUNT)
    strides: Pair = field(default=(1, 1), metadata=_COUNT)
    padding: Padding2D = field(default=((0, 0), (0, 0)), metadata=_PADS)
    use_bias: bool = True
    groups: int = field(default=1, metadata=_COUNT)

    def __post_init__(self) -> None:
        _check_sizes(self, {"filters": self.filters}, {"kernel_size": self.kernel_size, "strides": self.strides})
        _check_padding(self, self.padding)
        if not isinstance(self.groups, numbers.Integral) or self.groups < 1 or self.filters % self.groups:
            raise InputError(
                f"Expected groups >= 1 dividing filters in layer {self.name!r} (Conv2D). "
                f"Received: groups={self.groups!r}, filters={self.filters}. "
                "To fix, choose filters as a multiple of groups (depthwise: filters = input channels × multiplier)."
            )


@dataclass(frozen=True, kw_only=True)
class Dense(Layer):
    units: int = field(metadata=_COUNT)
    use_bias: bool = True

    def __post_init__(self) -> None:
        _check_sizes(self, {"units": self.units}, {})


@dataclass(frozen=True, kw_only=True)
class Activation(Layer):
    kind: str = field(metadata=_allowed(kinds=ACTIVATIONS))
    alpha: float | None = None  # negative slope for leaky_relu, alpha for elu; prelu learns one slope per channel

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATIONS:
            raise InputError(
                f"Expected an activation in {list(ACTIVATIONS)} in layer {self.name!r} (Activation). "
                f"Received: kind={self.kind!r}. To fix, give one of those kinds."
            )
        if self.alpha is not None and self.kind not in ("leaky_relu", "elu"):  # it would be ignored, silently
            raise InputError(
                f"Expected alpha only on a leaky_relu (its slope) or an elu in layer {self.name!r} (Activation). "
                f"Received: alpha={self.alpha!r} on {self.kind}, which reads none. To fix, drop alpha "
                "(--activation-alpha), or make the layer leaky_relu or elu."
            )


@dataclass(frozen=True, kw_only=True)
class MaxPool2D(Layer):
    """Max pooling; ``padding`` pads with -inf, PyTorch's MaxPool2d(padding=...) meaning: padded cells never
    win a window. Each side's padding must be below the pool size, so every window holds an input element."""

    pool_size: Pair = field(metadata=_COUNT)
    strides: Pair | None = field(default=None, metadata=_COUNT)  # None: same as pool_size
    padding: Padding2D = field(default=((0, 0), (0, 0)), metadata=_PADS)

    def __post_init__(self) -> None:
        _check_sizes(self, {}, {"pool_size": self.pool_size, "strides": self.strides})
        _check_padding(self, self.padding, self.pool_size)


@dataclass(frozen=True, kw_only=True)
class AvgPool2D(Layer):
    pool_size: Pair = field(metadata=_COUNT)
    strides: Pair | None = field(default=None, metadata=_COUNT)

    def __post_init__(self) -> None:
        _check_sizes(self, {}, {"pool_size": self.pool_size, "strides": self.strides})


@dataclass(frozen=True, kw_only=True)
class GlobalAvgPool2D(Layer):
    pass


@dataclass(frozen=True, kw_only=True)
class AdaptiveAvgPool2D(Layer):
    """Average pooling to a fixed (out_h, out_w), exactly PyTorch's AdaptiveAvgPool2d: output row i averages
    input rows floor(i·H/out_h) .. ceil((i+1)·H/out_h) − 1, and likewise for columns
    (:func:`harness.shapes.adaptive_windows`). Where H and W are multiples of the output size the windows are
    those of AvgPool2D(pool = stride = H/out_h, W/out_w): (1, 1) is the global average, an input already of
    the output size passes unchanged (VGG's (7, 7) at 224 px). Other sizes give windows of unequal size that
    may overlap (an output larger than the input repeats cells); both backends compute those too."""

    output_size: Pair = field(metadata=_COUNT)

    def __post_init__(self) -> None:
        if not _is_int_pair(self.output_size, 1):
            raise InputError(
                f"Expected output_size (out_h, out_w) of ints >= 1 in layer {self.name!r} (AdaptiveAvgPool2D). "
                f"Received: output_size={self.output_size!r}. To fix, give two sizes, e.g. (1, 1) for the global "
                "average."
            )


@dataclass(frozen=True, kw_only=True)
class ZeroPad2D(Layer):
    """Zero padding on its own, ((top, bottom), (left, right)), as models put before strided convs and pools."""

    padding: Padding2D = field(metadata=_PADS)

    def __post_init__(self) -> None:
        _check_padding(self, self.padding)


@dataclass(frozen=True, kw_only=True)
class Resize2D(Layer):
    """Bilinear resize to ``output_size`` (out_h, out_w) with half-pixel centres and no antialiasing: PyTorch's
    F.interpolate(mode="bilinear", align_corners=False) and tf.image.resize(method="bilinear", antialias=False).
    Its arithmetic is written once (harness.input_pipeline.bilinear_taps): per axis, two gathered neighbours
    and their weights, combined by elementwise multiply-adds in a fixed order, so every backend computes the same
    float32 pixels. Part of the input pipeline: applied to each batch on the device, never to the whole set.

    ``resized``: resize to this size first and keep the centred ``output_size`` window of it (torchvision's
    Resize + CenterCrop, how its ImageNet weights evaluate); the crop is folded into the same taps."""

    output_size: Pair = field(metadata=_COUNT)
    resized: Pair | None = field(default=None, metadata=_COUNT)

    def __post_init__(self) -> None:
        if not _is_int_pair(self.output_size, 1):
            raise InputError(
                f"Expected output_size (out_h, out_w) of ints >= 1 in layer {self.name!r} (Resize2D). "
                f"Received: output_size={self.output_size!r}. To fix, give the height and width to resize to."
            )
        if self.resized is not None and not (
            _is_int_pair(self.resized, 1) and all(r >= o for r, o in zip(self.resized, self.output_size, strict=True))
        ):
            raise InputError(
                f"Expected resized (h, w) >= output_size {self.output_size} in layer {self.name!r} (Resize2D). "
                f"Received: resized={self.resized!r}. To fix, resize to at least output_size (the crop is taken "
                "from it), or leave resized out."
            )


@dataclass(frozen=True, kw_only=True)
class RepeatChannels(Layer):
    """The channels repeated ``repeats`` times (grayscale -> 3 channels for models that want RGB)."""

    repeats: int = field(metadata=_COUNT)

    def __post_init__(self) -> None:
        _check_sizes(self, {"repeats": self.repeats}, {})


@dataclass(frozen=True, kw_only=True)
class Normalize(Layer):
    """(x - mean) / std per channel (e.g. ImageNet's mean and std), computed as (x - mean) * inv_std with
    inv_std = 1 / std rounded once to float32 (:func:`normalize_factors`): TensorFlow rewrites a division by a
    constant into that multiplication, so every backend multiplies, and the pixels stay identical."""

    mean: tuple[float, ...]
    std: tuple[float, ...] = field(metadata=_allowed(low=0, low_open=True))

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean or any(s <= 0 for s in self.std):
            raise InputError(
                f"Expected one mean and one std > 0 per channel in layer {self.name!r} (Normalize). "
                f"Received: mean={self.mean!r}, std={self.std!r}. To fix, give as many means as stds, each std "
                "above 0."
            )


@dataclass(frozen=True, kw_only=True)
class Flatten(Layer):
    pass


@dataclass(frozen=True, kw_only=True)
class Dropout(Layer):
    rate: float = field(metadata=_allowed(low=0, high=1, high_open=True))
    # "standard" | "alpha" (alpha dropout keeps SELU's self-normalisation)
    kind: str = field(default="standard", metadata=_allowed(kinds=DROPOUT_KINDS))

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, numbers.Real) and 0 <= self.rate < 1) or self.kind not in DROPOUT_KINDS:
            raise InputError(
                f"Expected a dropout rate in [0, 1) and a kind in {list(DROPOUT_KINDS)} in layer {self.name!r} "
                f"(Dropout). Received: rate={self.rate!r}, kind={self.kind!r}. To fix, give a rate below 1 (1 "
                "would drop every unit) and one of those kinds."
            )


@dataclass(frozen=True, kw_only=True)
class BatchNorm(Layer):
    """Batch normalisation over the last (channel) axis.

    ``decay`` is the fraction of the running statistic kept at each update
    (Keras' ``momentum``); PyTorch's ``momentum`` is ``1 - decay``.  Both are
    set explicitly by the backends, never left to framework defaults.
    """

    decay: float = field(default=0.9, metadata=_allowed(low=0, high=1))
    epsilon: float = field(default=1e-5, metadata=_allowed(low=0, low_open=True))
    # "unbiased" (PyTorch's) or "biased" (Keras'): what the running estimate tracks
    running_variance: str = field(default="unbiased", metadata=_allowed(kinds=BN_RUNNING_VARIANCES))

    def __post_init__(self) -> None:
        # Checked, not read leniently: each backend tested running_variance against a different one of its two
        # names, so a typo ("Biased") trained biased statistics in one framework and unbiased in the other.
        decay, epsilon = self.decay, self.epsilon
        real = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (decay, epsilon))
        if (
            not (real and 0 <= decay <= 1 and 0 < epsilon < math.inf)
            or self.running_variance not in BN_RUNNING_VARIANCES
        ):
            raise InputError(
                f"Expected 0 <= decay <= 1 (the share of the running statistics kept at each update), epsilon > 0 "
                f"and running_variance in {list(BN_RUNNING_VARIANCES)} in layer {self.name!r} (BatchNorm). "
                f"Received: decay={decay!r}, epsilon={epsilon!r}, running_variance={self.running_variance!r}. To "
                "fix, give values in those ranges (PyTorch's momentum m is a decay of 1 - m)."
            )


@dataclass(frozen=True, kw_only=True)
class Add(Layer):
    pass


@dataclass(frozen=True, kw_only=True)
class Concat(Layer):
    pass  # concatenates along the channel (last) axis


LAYER_TYPES: tuple[type[Layer], ...] = (
    Conv2D,
    Dense,
    Activation,
    MaxPool2D,
    AvgPool2D,
    GlobalAvgPool2D,
    AdaptiveAvgPool2D,
    ZeroPad2D,
    Flatten,
    Dropout,
    BatchNorm,
    Add,
    Concat,
    Resize2D,
    RepeatChannels,
    Normalize,
)


MODEL_INPUT = "input"  # what a layer's inputs call the model's input: no layer may be named so


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: tuple[int, ...]  # without the batch axis: (H, W, C) or (D,)
    num_classes: int
    layers: tuple[Layer, ...]  # every setting the network computes with (the builder's options baked in)

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"Expected unique layer names in model spec {self.name!r}. "
                f"Received: duplicates {duplicates}. To fix, rename the repeated layers."
            )
        if not self.layers:
            raise InputError(
                f"Expected at least one layer in model spec {self.name!r}. Received: none. To fix, give its layers, "
                "ending in a Dense layer with one unit per class."
            )
        if MODEL_INPUT in names:  # layers name their inputs by it: the layer would shadow the model's input
            raise InputError(
                f"Expected layer names other than {MODEL_INPUT!r} in model spec {self.name!r}: a layer's inputs "
                f"name the model's input so. Received: layer {names.index(MODEL_INPUT)} named {MODEL_INPUT!r}. "
                "To fix, rename that layer (and the inputs that name it)."
            )

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(
            f"Expected a layer name of model {self.name!r}. Received: {name!r}. "
            f"To fix, give one of its layers' names: {[l.name for l in self.layers]}"
        )

    def inputs_of(self, index: int) -> tuple[str, ...]:
        """Resolved input names of layer ``index``; ``"input"`` is the model input."""
        layer = self.layers[index]
        if layer.inputs:
            return layer.inputs
        return ("input",) if index == 0 else (self.layers[index - 1].name,)

    @property
    def output_name(self) -> str:
        return self.layers[-1].name

    def unused_layers(self) -> tuple[str, ...]:
        """Layers whose output never reaches the model's output (computed, then dropped), in order."""
        used = {self.output_name}
        for index in range(len(self.layers) - 1, -1, -1):
            if self.layers[index].name in used:
                used.update(self.inputs_of(index))
        return tuple(layer.name for layer in self.layers if layer.name not in used)

    def is_chain(self) -> bool:
        """True when every layer consumes exactly the previous layer's output."""
        return all(
            self.inputs_of(i) == (("input",) if i == 0 else (self.layers[i - 1].name,)) for i in range(len(self.layers))
        )

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Layer group name -> layer names, in model order."""
        out: dict[str, list[str]] = {}
        for layer in self.layers:
            out.setdefault(layer.group, []).append(layer.name)
        return {k: tuple(v) for k, v in out.items()}

    def with_dropout_rate(self, rate: float) -> ModelSpec:
        """Same model with every dropout rate replaced (rate 0 makes training deterministic)."""
        layers = tuple(dataclasses.replace(l, rate=rate) if isinstance(l, Dropout) else l for l in self.layers)
        return dataclasses.replace(self, layers=layers)

    def describe(self) -> list[dict[str, object]]:
        """JSON-friendly description (for results' config_json and checkpoints)."""
        return [{"type": type(l).__name__, **dataclasses.asdict(l)} for l in self.layers]


def same_padding(kernel: Pair) -> Padding2D:
    """Symmetric zero padding that keeps H and W at stride 1 (odd kernels only)."""
    kh, kw = kernel
    if kh % 2 == 0 or kw % 2 == 0:
        raise InputError(
            f"Expected odd kernel sizes for symmetric 'same' padding. Received: kernel={kernel}. To fix, use an odd "
            "kernel, or give the padding per side."
        )
    return ((kh // 2, kh // 2), (kw // 2, kw // 2))


def normalize_factors(layer: Normalize) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, 1 / std) as float32 values: the constants every backend's Normalize uses."""
    import numpy as np

    return (
        tuple(float(v) for v in np.asarray(layer.mean, dtype=np.float32)),
        tuple(float(v) for v in np.float32(1.0) / np.asarray(layer.std, dtype=np.float32)),
    )


_TUPLE_FIELDS = ("inputs", "kernel_size", "strides", "padding", "pool_size", "output_size", "resized", "mean", "std")


def _as_tuple(value: object) -> object:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def spec_to_dict(spec: ModelSpec) -> dict[str, object]:
    """JSON-friendly form of a spec (checkpoints store it beside the weights)."""
    return {
        "name": spec.name,
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
        "layers": spec.describe(),
    }


_SPEC_FIELDS = ("name", "input_shape", "num_classes", "layers")
# Read and dropped: specs stored before 2026-12-02 (exported files, checkpoints, import caches) also hold the
# builder's options, which the layers already spell out.
_LEGACY_FIELDS = ("options",)


def spec_from_dict(data: dict) -> ModelSpec:
    """A spec from its stored form: a spec file (written by ``xfbench model --export-spec`` or by hand), or the one
    a checkpoint or an import cache holds. Every one is checked alike, each layer field against its annotation
    and :class:`Allowed` (:func:`_check_layer_values`): all are written by :func:`spec_to_dict` from specs whose
    layers hold such values, so a stored spec that fails is damaged or hand-edited, and is refused before any
    worker builds it rather than failing there or being read as something else."""
    missing = [name for name in _SPEC_FIELDS if name not in data]
    if missing:
        raise InputError(
            f"Expected a stored spec with the fields {', '.join(_SPEC_FIELDS)}. Received: one without "
            f"{', '.join(missing)}. To fix, export it again with `xfbench model NAME --export-spec FILE` or add them."
        )
    _check_top_level(data)
    _check_stored_types(data)
    types = {cls.__name__: cls for cls in LAYER_TYPES}
    layers = []
    for index, entry in enumerate(data["layers"]):
        fields = dict(entry)
        kind = fields.pop("type", None)
        if kind not in types:
            raise InputError(
                f"Expected a known layer type in a stored spec. Received: {kind!r} (layer {index}). "
                f"To fix, give one of the known types: {sorted(types)}."
            )
        _check_layer_fields(types[kind], fields, index)
        _check_layer_texts(fields, index)
        _check_layer_values(types[kind], fields, index)
        arguments: dict[str, Any] = {
            k: _as_tuple(v) if k in _TUPLE_FIELDS and v is not None else v for k, v in fields.items()
        }
        layers.append(types[kind](**arguments))
    return ModelSpec(
        name=data["name"],
        input_shape=tuple(data["input_shape"]),
        num_classes=int(data["num_classes"]),
        layers=tuple(layers),  # files written before 2026-12-02 also hold the builder's options: not needed
    )


def _whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


def _check_stored_types(data: dict) -> None:
    """A stored spec's shape, class count and layer list (each layer's name, group and inputs:
    :func:`_check_layer_texts`) of the types the builders give them: read as they came, 10.7 classes became 10, an
    input shape of 8.5 gave fractional MACs and ``"inputs": "conv1"`` five inputs named by its letters."""
    shape, classes, layers = data["input_shape"], data["num_classes"], data["layers"]
    if not (isinstance(shape, (list, tuple)) and shape and all(_whole(v) for v in shape)) or not _whole(classes):
        raise InputError(
            "Expected input_shape as a list of whole numbers >= 1 (height, width, channels; or features) and "
            f"num_classes a whole number >= 1. Received: input_shape={shape!r}, num_classes={classes!r}. To fix, write "
            "them so (e.g. input_shape [28, 28, 1], num_classes 10)."
        )
    if not (isinstance(layers, (list, tuple)) and all(isinstance(entry, dict) for entry in layers)):
        raise InputError(
            f"Expected layers as a list of objects, one per layer with its type and fields. Received: {layers!r:.200}."
            " To fix, write each layer as an object, as `xfbench model NAME --export-spec FILE` writes them."
        )


def _check_top_level(data: dict) -> None:
    """No top-level keys but a spec's: one such as ``"dropout": 0.5`` was ignored without a word, so the run
    trained a network other than the one its author meant."""
    unknown = sorted(set(data) - set(_SPEC_FIELDS) - set(_LEGACY_FIELDS), key=str)
    if unknown:
        raise InputError(
            f"Expected only the top-level fields {', '.join(_SPEC_FIELDS)} in a model spec. Received also: "
            f"{', '.join(map(repr, unknown))}, which no layer reads. A setting of the network belongs in its layers "
            "(a dropout rate in each Dropout layer's rate, say). To fix, move it there, or remove it."
        )
    if not isinstance(data["name"], str):
        raise InputError(
            f"Expected the spec's name as text. Received: name={data['name']!r}. To fix, write it in quotes, e.g. "
            '"my_net".'
        )


def _check_layer_texts(entry: dict[str, Any], index: int) -> None:
    """A stored layer's name, group and inputs (after its type and field names are known good) as the builders
    write them."""
    inputs = entry.get("inputs", [])
    texts = [entry.get("name"), entry.get("group", "")]
    if not (all(isinstance(t, str) for t in texts) and isinstance(inputs, (list, tuple))):
        raise InputError(
            f"Expected each layer's name and group as text and its inputs as a list of layer names. Received: "
            f"name={entry.get('name')!r}, group={entry.get('group')!r}, inputs={inputs!r} (layer {index}). To fix, "
            'write them so, e.g. "name": "conv1", "group": "features", "inputs": ["input"].'
        )
    if not all(isinstance(i, str) for i in inputs):
        raise InputError(
            f"Expected layer names as inputs. Received: inputs={inputs!r} (layer {index}). To fix, name each input "
            "as text: an earlier layer's name, or \"input\" for the model's input."
        )


def _check_layer_fields(layer_type: type, fields: dict[str, Any], index: int) -> None:
    """A stored layer's fields against its type's: a misspelt or missing field named as such, with the type's
    fields, rather than as the dataclass constructor's TypeError."""
    known = {f.name: f for f in dataclasses.fields(layer_type)}
    needed = {
        n for n, f in known.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    unknown, missing = sorted(set(fields) - set(known)), sorted(needed - set(fields))
    if not unknown and not missing:
        return
    kind = layer_type.__name__
    received = []
    if unknown:
        received.append(f"{', '.join(unknown)} (not a field of {kind})")
    if missing:
        received.append(f"no {', '.join(missing)}")
    raise InputError(
        f"Expected layer {fields.get('name', index)!r} ({kind}) with a {kind}'s fields: type, {', '.join(known)}. "
        f"Received: {'; '.join(received)}. To fix, correct the spec file or export it again."
    )


# A layer in canonical form: its type, its fields but name, group and inputs, its inputs as producer positions.
CanonicalLayer = tuple[str, tuple[tuple[str, Any], ...], tuple[int, ...]]


def canonical_form(spec: ModelSpec) -> tuple[object, ...]:
    """The spec's structure with layer names and groups left out: each layer as its type, its fields, and its
    inputs as producer positions (-1 the model input). Two specs with equal forms compute the same function of
    the same weights listed in the same order, whatever their layers are called (an imported model against the
    zoo builder of the same network)."""
    return (tuple(spec.input_shape), spec.num_classes, _canonical_layers(spec))


def _canonical_layers(spec: ModelSpec) -> tuple[CanonicalLayer, ...]:
    position = {"input": -1, **{layer.name: index for index, layer in enumerate(spec.layers)}}
    layers = []
    for index, layer in enumerate(spec.layers):
        fields = {k: v for k, v in dataclasses.asdict(layer).items() if k not in ("name", "group", "inputs")}
        sources = tuple(position[name] for name in spec.inputs_of(index))
        layers.append((type(layer).__name__, tuple(sorted(fields.items())), sources))
    return tuple(layers)


def structure_difference(spec: ModelSpec, like: ModelSpec) -> str:
    """Where ``spec``'s structure (:func:`canonical_form`) first parts from ``like``'s, in words; "" where the two
    are the same."""
    if canonical_form(spec) == canonical_form(like):
        return ""
    if (tuple(spec.input_shape), spec.num_classes) != (tuple(like.input_shape), like.num_classes):
        return (
            f"input {tuple(spec.input_shape)} and {spec.num_classes} classes against {tuple(like.input_shape)} and "
            f"{like.num_classes}"
        )
    layers, other = _canonical_layers(spec), _canonical_layers(like)
    for index, (mine, its) in enumerate(zip(layers, other, strict=False)):
        if mine != its:
            fields = [k for k, v in dict(mine[1]).items() if dict(its[1]).get(k) != v] if mine[0] == its[0] else []
            what = f" ({', '.join(fields)} differ)" if fields else " (inputs differ)" if mine[:2] == its[:2] else ""
            return (
                f"layer {index}, {mine[0]} {spec.layers[index].name!r} against {its[0]} {like.layers[index].name!r}"
                f"{what}"
            )
    return f"{len(layers)} layers against {len(other)}"


def with_names_of(spec: ModelSpec, like: ModelSpec) -> tuple[ModelSpec, dict[str, str]]:
    """``spec`` with the layer names and groups of ``like``, a spec of the same structure (:func:`canonical_form`),
    matched layer by layer, and the layer names that changed (``spec``'s -> ``like``'s). ValueError saying where the
    two part (:func:`structure_difference`) when the structures differ."""
    parted = structure_difference(spec, like)
    if parted:
        raise ValueError(parted)
    renames = {a.name: b.name for a, b in zip(spec.layers, like.layers, strict=True) if a.name != b.name}
    return dataclasses.replace(spec, layers=like.layers), renames  # equal forms: like's layers are spec's, renamed


Value = TypeVar("Value")


def renamed_layers(values: Mapping[str, Value], renames: Mapping[str, str]) -> dict[str, Value]:
    """``values`` keyed by layer name, or by ``layer/tensor`` as neutral weights are, with the layers renamed."""
    out: dict[str, Value] = {}
    for key, value in values.items():
        layer, slash, tensor = key.partition("/")
        out[f"{renames.get(layer, layer)}{slash}{tensor}"] = value
    return out


def _field_rules(layer_type: type[Layer]) -> dict[str, tuple[Any, Allowed]]:
    """Each field's resolved annotation (the module's annotations are strings) and its :class:`Allowed`."""
    if layer_type not in _RULES:
        hints = typing.get_type_hints(layer_type)
        fields = dataclasses.fields(layer_type)
        _RULES[layer_type] = {f.name: (hints[f.name], f.metadata.get("allowed", Allowed())) for f in fields}
    return _RULES[layer_type]


_RULES: dict[type[Layer], dict[str, tuple[Any, Allowed]]] = {}


def _check_layer_values(layer_type: type[Layer], fields: dict[str, Any], index: int) -> None:
    """A stored layer's values (its field names known good) against their annotations and limits. JSON is written
    by hand too: a leaky_relu slope of "0.2" passed the preflight and failed in every worker, and a use_bias of
    "false" built a bias while the recorded config said false."""
    rules = _field_rules(layer_type)
    for name, value in fields.items():
        hint, allowed = rules[name]
        if _fits(value, hint, allowed):
            continue
        scalar = hint in (int, float) and allowed.bounds(name)
        expected = (
            f"{allowed.bounds(name)} ({_describe(hint, Allowed())})"
            if scalar
            else f"{name} in {list(allowed.kinds)}"
            if hint is str and allowed.kinds
            else f"{name} as {_describe(hint, allowed)}"
        )
        unquoted = isinstance(value, str) and hint is not str
        unquote = "; numbers, true and false go without quotes in JSON" if unquoted else ""
        raise InputError(
            f"Expected {expected} in layer {fields['name']!r} ({layer_type.__name__}, layer {index}). Received: "
            f"{name}={value!r} ({_json_kind(value)}). To fix, write {name} as {_describe(hint, allowed)}{unquote}."
        )


def _fits(value: object, hint: Any, allowed: Allowed) -> bool:
    """Whether ``value``, as JSON gives it, is of the annotated type ``hint`` and within ``allowed``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option, allowed) for option in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if args[-1:] == (Ellipsis,) else args
        return len(value) == len(items) and all(_fits(v, item, allowed) for v, item in zip(value, items, strict=True))
    if hint is type(None):
        return value is None
    if hint is bool:  # not 0 or 1, not "false" (a non-empty text, so true wherever it is tested)
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str) and allowed.admits(value)
    if hint in (int, float):  # True is an int to Python, but no size or rate
        kind = numbers.Integral if hint is int else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool):
            return False
        whole = isinstance(value, numbers.Integral)  # a float field's 1 is 1.0; math.isfinite overflows on 10**400
        return (whole or math.isfinite(typing.cast(float, value))) and allowed.admits(value)
    raise TypeError(f"No check for a layer field annotated {hint!r}: teach harness.spec._fits that type.")


def _describe(hint: Any, allowed: Allowed, plural: bool = False) -> str:
    """What a value of the annotated type ``hint`` within ``allowed`` is, in the words of JSON."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        described = " or ".join(_describe(option, allowed, plural) for option in args if option is not type(None))
        return f"{described} (or null)" if type(None) in args else described
    if origin is tuple:  # the spec's fixed tuples (Pair, Padding2D) hold one type throughout
        count = "" if args[-1:] == (Ellipsis,) else f"{len(args)} "
        return f"{'lists' if plural else 'a list'} of {count}{_describe(args[0], allowed, plural=True)}"
    if hint is bool:
        return "true or false"
    if hint is str:
        return f"one of {list(allowed.kinds)}" if allowed.kinds else "text"
    noun = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers")}[hint][plural]
    return f"{noun} {allowed.interval()}".strip()


def _json_kind(value: object) -> str:
    if value is None or isinstance(value, (bool, str, list, tuple, dict)):
        kinds = {type(None): "null", bool: "a boolean", str: "text", list: "a list", tuple: "a list", dict: "an object"}
        return kinds[type(value)]
    if isinstance(value, numbers.Integral):
        return "a whole number"
    return "a number" if math.isfinite(typing.cast(float, value)) else "not a finite number"
