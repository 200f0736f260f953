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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.errors import InputError

Pair = tuple[int, int]
Padding2D = tuple[Pair, Pair]  # ((top, bottom), (left, right))

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "tanh", "sigmoid", "linear")
BN_RUNNING_VARIANCES = ("unbiased", "biased")
DROPOUT_KINDS = ("standard", "alpha")
PRELU_INIT = 0.25  # PyTorch's default slope; Keras' default is 0, so it is always set explicitly


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
            f"({type(layer).__name__}). Received: padding={padding!r}. Write it per side, e.g. ((1, 1), (1, 1))."
        )
    if limit is not None and any(p >= size for pair, size in zip(padding, limit, strict=True) for p in pair):
        raise InputError(
            f"Expected each side's padding below the pool size {limit} in layer {layer.name!r} "
            f"({type(layer).__name__}), so every window holds at least one input element. "
            f"Received: padding={padding!r}. Pad less, or add a ZeroPad2D layer before the pool if zeros are meant."
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
            f"Received: {name}={value!r}. Fix the model or the spec file."
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

    filters: int
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding2D = ((0, 0), (0, 0))
    use_bias: bool = True
    groups: int = 1

    def __post_init__(self) -> None:
        _check_sizes(self, {"filters": self.filters}, {"kernel_size": self.kernel_size, "strides": self.strides})
        _check_padding(self, self.padding)
        if not isinstance(self.groups, numbers.Integral) or self.groups < 1 or self.filters % self.groups:
            raise InputError(
                f"Expected groups >= 1 dividing filters in layer {self.name!r} (Conv2D). "
                f"Received: groups={self.groups!r}, filters={self.filters}. "
                "Choose filters as a multiple of groups (depthwise: filters = input channels × multiplier)."
            )


@dataclass(frozen=True, kw_only=True)
class Dense(Layer):
    units: int
    use_bias: bool = True

    def __post_init__(self) -> None:
        _check_sizes(self, {"units": self.units}, {})


@dataclass(frozen=True, kw_only=True)
class Activation(Layer):
    kind: str
    alpha: float | None = None  # negative slope for leaky_relu, alpha for elu; prelu learns one slope per channel

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATIONS:
            raise InputError(
                f"Expected an activation in {list(ACTIVATIONS)} in layer {self.name!r} (Activation). "
                f"Received: kind={self.kind!r}."
            )


@dataclass(frozen=True, kw_only=True)
class MaxPool2D(Layer):
    """Max pooling; ``padding`` pads with -inf, PyTorch's MaxPool2d(padding=...) meaning: padded cells never
    win a window. Each side's padding must be below the pool size, so every window holds an input element."""

    pool_size: Pair
    strides: Pair | None = None  # None: same as pool_size
    padding: Padding2D = ((0, 0), (0, 0))

    def __post_init__(self) -> None:
        _check_sizes(self, {}, {"pool_size": self.pool_size, "strides": self.strides})
        _check_padding(self, self.padding, self.pool_size)


@dataclass(frozen=True, kw_only=True)
class AvgPool2D(Layer):
    pool_size: Pair
    strides: Pair | None = None

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

    output_size: Pair

    def __post_init__(self) -> None:
        if not _is_int_pair(self.output_size, 1):
            raise InputError(
                f"Expected output_size (out_h, out_w) of ints >= 1 in layer {self.name!r} (AdaptiveAvgPool2D). "
                f"Received: output_size={self.output_size!r}. Use e.g. (1, 1) for the global average."
            )


@dataclass(frozen=True, kw_only=True)
class ZeroPad2D(Layer):
    """Zero padding on its own, ((top, bottom), (left, right)), as models put before strided convs and pools."""

    padding: Padding2D

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

    output_size: Pair
    resized: Pair | None = None

    def __post_init__(self) -> None:
        if not _is_int_pair(self.output_size, 1):
            raise InputError(
                f"Expected output_size (out_h, out_w) of ints >= 1 in layer {self.name!r} (Resize2D). "
                f"Received: output_size={self.output_size!r}."
            )
        if self.resized is not None and not (
            _is_int_pair(self.resized, 1) and all(r >= o for r, o in zip(self.resized, self.output_size, strict=True))
        ):
            raise InputError(
                f"Expected resized (h, w) >= output_size {self.output_size} in layer {self.name!r} (Resize2D). "
                f"Received: resized={self.resized!r}."
            )


@dataclass(frozen=True, kw_only=True)
class RepeatChannels(Layer):
    """The channels repeated ``repeats`` times (grayscale -> 3 channels for models that want RGB)."""

    repeats: int


@dataclass(frozen=True, kw_only=True)
class Normalize(Layer):
    """(x - mean) / std per channel (e.g. ImageNet's mean and std), computed as (x - mean) * inv_std with
    inv_std = 1 / std rounded once to float32 (:func:`normalize_factors`): TensorFlow rewrites a division by a
    constant into that multiplication, so every backend multiplies, and the pixels stay identical."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean or any(s <= 0 for s in self.std):
            raise InputError(
                f"Expected one mean and one std > 0 per channel in layer {self.name!r} (Normalize). "
                f"Received: mean={self.mean!r}, std={self.std!r}."
            )


@dataclass(frozen=True, kw_only=True)
class Flatten(Layer):
    pass


@dataclass(frozen=True, kw_only=True)
class Dropout(Layer):
    rate: float
    kind: str = "standard"  # "standard" | "alpha" (alpha dropout keeps SELU's self-normalisation)

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, numbers.Real) and 0 <= self.rate < 1) or self.kind not in DROPOUT_KINDS:
            raise InputError(
                f"Expected a dropout rate in [0, 1) and a kind in {list(DROPOUT_KINDS)} in layer {self.name!r} "
                f"(Dropout). Received: rate={self.rate!r}, kind={self.kind!r}."
            )


@dataclass(frozen=True, kw_only=True)
class BatchNorm(Layer):
    """Batch normalisation over the last (channel) axis.

    ``decay`` is the fraction of the running statistic kept at each update
    (Keras' ``momentum``); PyTorch's ``momentum`` is ``1 - decay``.  Both are
    set explicitly by the backends, never left to framework defaults.
    """

    decay: float = 0.9
    epsilon: float = 1e-5
    running_variance: str = "unbiased"  # "unbiased" (PyTorch's) or "biased" (Keras'): what the running estimate tracks

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
                f"Received: decay={decay!r}, epsilon={epsilon!r}, running_variance={self.running_variance!r}."
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
                f"Received duplicates: {duplicates}. Rename the repeated layers."
            )
        if not self.layers:
            raise InputError(f"Expected at least one layer in model spec {self.name!r}. Received none.")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(
            f"Expected a layer name of model {self.name!r}. Received: {name!r}. "
            f"Valid names: {[l.name for l in self.layers]}"
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
        raise InputError(f"Expected odd kernel sizes for symmetric 'same' padding. Received: kernel={kernel}.")
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


def spec_from_dict(data: dict) -> ModelSpec:
    missing = [name for name in _SPEC_FIELDS if name not in data]
    if missing:
        raise InputError(
            f"Expected a stored spec with the fields {', '.join(_SPEC_FIELDS)}. Received: one without "
            f"{', '.join(missing)}. Export it again with `xfbench model NAME --export-spec FILE` or add them."
        )
    _check_stored_types(data)
    types = {cls.__name__: cls for cls in LAYER_TYPES}
    layers = []
    for index, entry in enumerate(data["layers"]):
        fields = dict(entry)
        kind = fields.pop("type", None)
        if kind not in types:
            raise InputError(
                f"Expected a known layer type in a stored spec. Received: {kind!r} (layer {index}). "
                f"Known: {sorted(types)}"
            )
        _check_layer_fields(types[kind], fields, index)
        _check_layer_texts(fields, index)
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
            f"num_classes a whole number >= 1. Received: input_shape={shape!r}, num_classes={classes!r}."
        )
    if not (isinstance(layers, (list, tuple)) and all(isinstance(entry, dict) for entry in layers)):
        raise InputError(
            f"Expected layers as a list of objects, one per layer with its type and fields. Received: {layers!r:.200}."
        )


def _check_layer_texts(entry: dict[str, Any], index: int) -> None:
    """A stored layer's name, group and inputs (after its type and field names are known good) as the builders
    write them."""
    inputs = entry.get("inputs", [])
    texts = [entry.get("name"), entry.get("group", "")]
    if not (all(isinstance(t, str) for t in texts) and isinstance(inputs, (list, tuple))):
        raise InputError(
            f"Expected each layer's name and group as text and its inputs as a list of layer names. Received: "
            f"name={entry.get('name')!r}, group={entry.get('group')!r}, inputs={inputs!r} (layer {index})."
        )
    if not all(isinstance(i, str) for i in inputs):
        raise InputError(f"Expected layer names as inputs. Received: inputs={inputs!r} (layer {index}).")


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
        f"Received: {'; '.join(received)}. Fix the spec file or export it again."
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
