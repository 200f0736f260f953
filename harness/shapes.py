"""Shape inference for neutral model specs.

Besides each tensor's shape, inference records where a flat vector came from
(``flattened_from``): the backends need it to convert the first dense kernel
after a conv stack between the neutral H,W,C feature order and PyTorch's C,H,W.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _spec_error(spec: ModelSpec, layer: Layer, expected: str, received: object) -> ValueError:
    return ValueError(
        f"Model {spec.name!r}, layer {layer.name!r} ({type(layer).__name__}): expected {expected}. "
        f"Received: {received}. Fix the spec or choose an input shape that fits."
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
    if len(ins) != 1:
        raise _spec_error(spec, layer, "exactly one input", len(ins))
    info = ins[0]
    shape = info.shape
    if isinstance(layer, Conv2D):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) input", shape)
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
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) input", shape)
        strides = layer.strides or layer.pool_size
        (pt, pb), (pl, pr) = layer.padding if isinstance(layer, MaxPool2D) else ((0, 0), (0, 0))
        h = _pool_out(shape[0] + pt + pb, layer.pool_size[0], strides[0])
        w = _pool_out(shape[1] + pl + pr, layer.pool_size[1], strides[1])
        if h < 1 or w < 1:
            raise _spec_error(spec, layer, "a pool window that fits the input", shape)
        return TensorInfo((h, w, shape[2]))
    if isinstance(layer, GlobalAvgPool2D):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) input", shape)
        return TensorInfo((shape[2],))
    if isinstance(layer, AdaptiveAvgPool2D):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) input; pool before the Flatten", shape)
        return TensorInfo((*layer.output_size, shape[2]))
    if isinstance(layer, ZeroPad2D):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) input; pad before the Flatten", shape)
        (pt, pb), (pl, pr) = layer.padding
        return TensorInfo((shape[0] + pt + pb, shape[1] + pl + pr, shape[2]))
    if isinstance(layer, (Resize2D, RepeatChannels, Normalize)):
        if len(shape) != 3:
            raise _spec_error(spec, layer, "an (H, W, C) image input", shape)
        if isinstance(layer, Resize2D):
            return TensorInfo((*layer.output_size, shape[2]))
        if isinstance(layer, RepeatChannels):
            return TensorInfo((shape[0], shape[1], shape[2] * layer.repeats))
        if len(layer.mean) != shape[2]:
            raise _spec_error(spec, layer, f"{len(layer.mean)} channels (one mean/std each)", shape)
        return info
    if isinstance(layer, Flatten):
        size = 1
        for d in shape:
            size *= d
        origin = tuple(shape) if len(shape) == 3 else info.flattened_from
        return TensorInfo((size,), origin)  # type: ignore[arg-type]
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise _spec_error(spec, layer, "a flat (D,) input; add a Flatten layer before it", shape)
        return TensorInfo((layer.units,))
    if isinstance(layer, (Activation, Dropout, BatchNorm)):
        return info  # shape-preserving; a flat vector keeps its origin
    raise _spec_error(spec, layer, "a known layer type", type(layer).__name__)


def output_shape(spec: ModelSpec) -> tuple[int, ...]:
    return infer_shapes(spec)[spec.output_name].shape
