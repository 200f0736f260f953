"""Shape inference for neutral model specs.

Besides each tensor's shape, inference records where a flat vector came from
(``flattened_from``): the backends need it to convert the first dense kernel
after a conv stack between the neutral H,W,C feature order and PyTorch's C,H,W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.backend import BACKENDS, backend_capabilities
from harness.errors import InputError
from harness.spec import (
    Activation,
    AdaptiveAvgPool2D,
    Add,
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    ModelSpec,
    Normalize,
    RepeatChannels,
    Resize2D,
    ZeroPad2D,
)


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]  # without batch axis
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) before a Flatten


class LayerShapeError(InputError):
    """A layer of a spec that cannot take what reaches it. ``fault``: the refusal without its fix, for a caller whose
    model is no spec of the user's to edit (a built-in model, whose fix is the input size alone)."""

    def __init__(self, message: str, fault: str) -> None:
        super().__init__(message)
        self.fault = fault


def _spec_error(spec: ModelSpec, layer: Layer, expected: str, received: object) -> InputError:
    where = f"in layer {layer.name!r} ({type(layer).__name__}) of model {spec.name!r}"
    return LayerShapeError(
        f"Expected {expected} {where}. Received: {received}. To fix, edit the spec, or give an input shape that fits.",
        fault=f"Expected {expected} {where}. Received: {received}.",
    )


def _pool_out(size: int, pool: int, stride: int) -> int:
    return (size - pool) // stride + 1


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """[start, end) of each output cell's window along one axis: PyTorch's AdaptiveAvgPool rule."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]  # floor, ceil in integers


def adaptive_is_uniform(size: int, out: int) -> bool:
    """True when the windows along this axis are a plain pool: equal, adjacent, pool = stride = size / out."""
    return size % out == 0


def infer_shapes(spec: ModelSpec) -> dict[str, TensorInfo]:
    """Map ``"input"`` and every layer name to its output tensor info."""
    infos: dict[str, TensorInfo] = {"input": TensorInfo(tuple(spec.input_shape))}
    for index, layer in enumerate(spec.layers):
        sources = spec.inputs_of(index)
        missing = [s for s in sources if s not in infos]
        if missing:
            raise _spec_error(spec, layer, "inputs that are defined earlier in the spec", missing)
        ins = [infos[s] for s in sources]
        infos[layer.name] = _infer_one(spec, layer, ins)
    return infos


def _infer_one(spec: ModelSpec, layer: Layer, ins: list[TensorInfo]) -> TensorInfo:
    if isinstance(layer, (Add, Concat)):
        return _infer_merge(spec, layer, ins)
    if len(ins) != 1:
        raise _spec_error(spec, layer, "exactly one input", len(ins))
    info = ins[0]
    if isinstance(layer, Flatten):
        shape = info.shape
        size = 1
        for d in shape:
            size *= d
        origin = (shape[0], shape[1], shape[2]) if len(shape) == 3 else info.flattened_from
        return TensorInfo((size,), origin)
    if isinstance(layer, Dense):
        if len(info.shape) != 1:
            raise _spec_error(spec, layer, "a flat (D,) input; add a Flatten layer before it", info.shape)
        return TensorInfo((layer.units,))
    if isinstance(layer, (Activation, Dropout, BatchNorm)):
        return info  # shape-preserving; a flat vector keeps its origin
    if isinstance(layer, _IMAGE_LAYERS):
        return _infer_image(spec, layer, info)
    raise _spec_error(spec, layer, "a known layer type", type(layer).__name__)


def _infer_merge(spec: ModelSpec, layer: Add | Concat, ins: list[TensorInfo]) -> TensorInfo:
    if len(ins) < 2:
        raise _spec_error(spec, layer, "at least two inputs", len(ins))
    shapes = [i.shape for i in ins]
    if isinstance(layer, Add):
        if len(set(shapes)) != 1:
            raise _spec_error(spec, layer, "inputs of equal shape", shapes)
        return TensorInfo(shapes[0])
    if len({s[:-1] for s in shapes}) != 1:
        raise _spec_error(spec, layer, "inputs equal in all but the channel axis", shapes)
    return TensorInfo(shapes[0][:-1] + (sum(s[-1] for s in shapes),))


# Layers that take an (H, W, C) input; where a layer's error says more than that, the hint is here.
_IMAGE_LAYERS = (
    Conv2D,
    MaxPool2D,
    AvgPool2D,
    GlobalAvgPool2D,
    AdaptiveAvgPool2D,
    ZeroPad2D,
    Resize2D,
    RepeatChannels,
    Normalize,
)
_IMAGE_INPUT_EXPECTED: dict[type[Layer], str] = {
    AdaptiveAvgPool2D: "an (H, W, C) input; pool before the Flatten",
    ZeroPad2D: "an (H, W, C) input; pad before the Flatten",
    Resize2D: "an (H, W, C) image input",
    RepeatChannels: "an (H, W, C) image input",
    Normalize: "an (H, W, C) image input",
}


def _infer_image(spec: ModelSpec, layer: Layer, info: TensorInfo) -> TensorInfo:
    shape = info.shape
    if len(shape) != 3:
        raise _spec_error(spec, layer, _IMAGE_INPUT_EXPECTED.get(type(layer), "an (H, W, C) input"), shape)
    channels = shape[2]
    if isinstance(layer, Conv2D):
        return _infer_conv(spec, layer, shape)
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        return _infer_pool(spec, layer, shape)
    if isinstance(layer, GlobalAvgPool2D):
        return TensorInfo((channels,))
    if isinstance(layer, (AdaptiveAvgPool2D, Resize2D)):
        return TensorInfo((*layer.output_size, channels))
    if isinstance(layer, ZeroPad2D):
        (pt, pb), (pl, pr) = layer.padding
        return TensorInfo((shape[0] + pt + pb, shape[1] + pl + pr, channels))
    if isinstance(layer, RepeatChannels):
        return TensorInfo((shape[0], shape[1], channels * layer.repeats))
    if isinstance(layer, Normalize):
        if len(layer.mean) != channels:
            raise _spec_error(spec, layer, f"{len(layer.mean)} channels (one mean/std each)", shape)
        return info
    raise _spec_error(spec, layer, "a known layer type", type(layer).__name__)


def _infer_conv(spec: ModelSpec, layer: Conv2D, shape: tuple[int, ...]) -> TensorInfo:
    if shape[2] % layer.groups:
        raise _spec_error(
            spec,
            layer,
            f"input channels divisible by groups={layer.groups}",
            f"{shape[2]} input channels (depthwise: set groups to the input channels)",
        )
    (pt, pb), (pl, pr) = layer.padding
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    h = (shape[0] + pt + pb - kh) // sh + 1
    w = (shape[1] + pl + pr - kw) // sw + 1
    if h < 1 or w < 1:
        raise _spec_error(
            spec, layer, "a kernel that fits the padded input", f"input {shape}, kernel {layer.kernel_size}"
        )
    return TensorInfo((h, w, layer.filters))


def _infer_pool(spec: ModelSpec, layer: MaxPool2D | AvgPool2D, shape: tuple[int, ...]) -> TensorInfo:
    strides = layer.strides or layer.pool_size
    (pt, pb), (pl, pr) = layer.padding if isinstance(layer, MaxPool2D) else ((0, 0), (0, 0))
    h = _pool_out(shape[0] + pt + pb, layer.pool_size[0], strides[0])
    w = _pool_out(shape[1] + pl + pr, layer.pool_size[1], strides[1])
    if h < 1 or w < 1:
        raise _spec_error(spec, layer, "a pool window that fits the input", shape)
    return TensorInfo((h, w, shape[2]))


def output_shape(spec: ModelSpec) -> tuple[int, ...]:
    return infer_shapes(spec)[spec.output_name].shape


# What a backend declares (backends/<name>/capabilities.py) when it can merge vectors flattened from feature maps: one
# that flattens in the neutral H,W,C order. One that flattens channels first (C,H,W) cannot (check_flattened_merges).
MERGE_FLATTENED_MAPS = "merge_flattened_maps"


def channels_first_order_differs(origin: tuple[int, int, int]) -> bool:
    """Whether a vector flattened from the (H, W, C) map ``origin`` holds its features in another order when the map
    is flattened channels first (C,H,W): only a map with both spatial extent and several channels does."""
    return origin[0] * origin[1] != 1 and origin[2] != 1


def check_flattened_merges(spec: ModelSpec, backend: str, infos: dict[str, TensorInfo] | None = None) -> None:
    """Refuse an Add or Concat of vectors flattened from feature maps on a backend that does not declare
    MERGE_FLATTENED_MAPS: it flattens in C,H,W order, and the merged vector no longer says where its features came
    from, so the layers after the merge could not be converted to and from the neutral H,W,C order. The preflight
    calls it before Ray starts, the torch backend again when it builds the model (``infos``: its shapes, if known)."""
    if MERGE_FLATTENED_MAPS in backend_capabilities(backend):
        return
    infos = infer_shapes(spec) if infos is None else infos
    for index, layer in enumerate(spec.layers):
        sources = spec.inputs_of(index)
        origins = [infos[source].flattened_from for source in sources]
        if isinstance(layer, (Add, Concat)) and any(o is not None and channels_first_order_differs(o) for o in origins):
            raise InputError(
                f"Expected no Add or Concat of vectors flattened from feature maps on the {backend} backend: it "
                "flattens a map in C,H,W order, and after the merge the layers that follow could not be converted "
                f"to the neutral H,W,C order. Received: layer {layer.name!r} ({type(layer).__name__}) of model "
                f"{spec.name!r} merges {_merge_inputs(sources, origins)}. To fix, merge the maps before the Flatten, "
                f"put a Dense between the Flatten and the merge{_other_backends(backend)}."
            )


def _merge_inputs(sources: Sequence[str], origins: Sequence[tuple[int, int, int] | None]) -> str:
    pairs = zip(sources, origins, strict=True)
    said = [f"{s!r} (flattened from {o})" if o is not None else repr(s) for s, o in pairs]
    return ", ".join(said[:-1]) + " and " + said[-1]


def _other_backends(backend: str) -> str:
    able = [b for b in BACKENDS if b != backend and MERGE_FLATTENED_MAPS in backend_capabilities(b)]
    return f", or run it with {' or '.join(f'--backend {b}' for b in able)}" if able else ""
