"""PyTorch modules (torchvision's or a user's) as neutral specs and weights, through a torch.fx trace.

Implements harness.importers.FrameworkImporter. Layer names are the module paths ('.' written '_'; a module
without parameters used twice gets '_1', as torch.fx names it: one with parameters is refused, see
import_refusals), functional ops are named by the module they run in (``layer1_0_add``), so torchvision's models
import with the zoo's names (but for F.adaptive_avg_pool2d's node, ``adaptive_avg_pool2d`` where the zoo says
``avgpool``). Groups are the top-level children; the group of the final dense layer is called ``classifier``, as
the strategies expect. Weights for a zoo name (its torchvision twin) take the zoo's layer names and groups after
conversion (backends/torch/weight_files.convert, harness.models.as_zoo_twin).
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from backends.torch.import_refusals import (
    ending_activation_refusal,
    not_flat_refusal,
    refuse_frozen_parameters,
    refuse_in_place_overwrites,
    refuse_modules_kept_in_eval,
    refuse_reparametrised_modules,
    refuse_shared_prelu_slope,
    refuse_shared_weights,
    refuse_unused_layers,
)
from backends.torch.layout import (
    BATCHNORM_TENSORS,
    conv_kernel_from_torch,
    dense_kernel_from_torch,
    flat_features_from_torch,
    images_to_torch,
)
from backends.torch.model import flat_origin, module_tensor
from harness.errors import InputError
from harness.importers import (
    ModelInputError,
    UnsupportedModelError,
    check_converted_weights,
    closest_names,
    layer_settings_checked,
)
from harness.shapes import TensorInfo, infer_shapes
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
    ZeroPad2D,
)
from harness.user_code import describe_exception, describe_frame, user_frame
from harness.weights import NeutralWeights

SUPPORTED = (
    "Conv2d (zero padding as numbers, 'valid' or 'same'; dilation 1)",
    "Linear",
    "BatchNorm1d/2d (affine, running statistics)",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "Tanh",
    "Sigmoid",
    "PReLU",
    "MaxPool2d",
    "AvgPool2d (no padding, ceil_mode or divisor_override)",
    "AdaptiveAvgPool2d",
    "Flatten / torch.flatten(x, 1) / x.view(x.size(0), -1) / x.reshape(x.shape[0], -1)",
    "Dropout",
    "Identity",
    "ZeroPad2d",
    "+ / torch.add",
    "torch.cat(dim=1)",
    "F.relu / F.relu6 / F.leaky_relu / F.elu / F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d / F.dropout",
    "F.pad(x, (left, right[, top, bottom])) with zeros",
    "x.relu() / x.sigmoid() / x.tanh()",
    "x.mean((2, 3)) (a global average pool)",
    "a final Softmax / LogSoftmax over the classes (dropped: the spec outputs logits, as for Keras)",
)
# torchvision's models whose conversion benchmarks/import_parity.py measures (docs/measurements.md)
CONVERTING_MODELS = (
    "torchvision:resnet18",
    "torchvision:resnet50",
    "torchvision:vgg11_bn",
    "torchvision:alexnet",
    "torchvision:mobilenet_v2",
    "torchvision:densenet121",
)
_ACTIVATIONS: dict[type, str] = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.SELU: "selu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.LeakyReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.PReLU: "prelu",
}
_FUNCTION_ACTIVATIONS: dict[object, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu6: "relu6",
    torch.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    F.selu: "selu",
}
_METHOD_ACTIVATIONS = ("relu", "sigmoid", "tanh")  # x.relu(), x.sigmoid(), x.tanh(): the spec's kinds of the same names


def load_reference(name: str, input_shape: tuple[int, int, int], num_classes: int, seed: int) -> nn.Module:
    import torchvision

    names = sorted(torchvision.models.list_models(module=torchvision.models))
    if name not in names:
        raise ModelInputError(
            f"Expected a torchvision classification model name. Received: {name!r}. {closest_names(name, names)}"
        )
    torch.manual_seed(seed)  # torchvision's builders draw their initial weights from the global generator
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes).eval()


def check_form(model: object) -> None:
    """A model in float64 or bfloat16, or on another device (meta, cuda), failed in the conversion's forward, and the
    user was told to change the input size, channels or classes; so did a factory returning a tensor."""
    if not isinstance(model, nn.Module):
        raise ModelInputError(
            f"Expected the factory to return a torch nn.Module. Received: {type(model).__module__}."
            f"{type(model).__qualname__}, not a module. To fix, return the nn.Module the factory builds "
            "(an instance of your module class, e.g. Net(num_classes)), not a tensor or what it computes."
        )
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and (tensor.dtype != torch.float32 or tensor.device.type != "cpu"):
            raise ModelInputError(
                f"Expected a model with float32 parameters and buffers on the CPU (xfbench sets each trial's "
                f"precision and device itself, alike in both backends). Received: {name!r} as {tensor.dtype} on "
                f"{tensor.device}. To fix, return the model as built, without .double(), .half(), .to(dtype) or "
                ".cuda(), and choose the precision with --precision and a GPU with --gpus-per-trial."
            )


def input_channels(model: nn.Module) -> int | None:
    """The channels the model's first applied convolution takes (None without one: a flat model takes any input;
    None too when fx cannot trace the model: convert says why). First applied, not first registered: a module may
    register its head before its stem."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception:  # convert reports what fx could not trace, with the supported ops
        return None
    modules = dict(model.named_modules())
    convs = (modules[str(n.target)] for n in graph.nodes if n.op == "call_module")
    first = next((m for m in convs if isinstance(m, nn.Conv2d)), None)
    return None if first is None else int(first.in_channels)


def reference_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's own eval forward up to its logits: a final softmax, which the conversion drops, is left out here
    too, so a converted network is checked against what it computes (a weight file's probe compared logits with
    probabilities and blamed the last Linear)."""
    with torch.no_grad():
        return _logits_module(model.eval())(nchw_batch(x)).numpy()


def nchw_batch(x: np.ndarray) -> torch.Tensor:
    """An NHWC numpy batch as the (N, C, H, W) tensor a DataLoader gives a user's model, with the standard strides:
    numpy gives a one-channel batch stride 1 on its channel axis, which torch also reads as channels_last, so a
    convolution returned a channels_last output and a user's `x.view(x.size(0), -1)` after it failed."""
    return torch.from_numpy(images_to_torch(x))


def _logits_module(model: nn.Module) -> nn.Module:
    """``model`` without its final softmax (_is_final_softmax), or ``model`` itself where it ends in none."""
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # convert reports what fx could not trace
        return model
    output = next(n for n in traced.graph.nodes if n.op == "output")
    last = output.args[0]
    if not (isinstance(last, fx.Node) and _is_final_softmax(dict(traced.named_modules()), last)):
        return model
    output.args = (last.args[0],)  # the softmax's input: the logits
    traced.graph.eliminate_dead_code()
    traced.recompile()
    return traced


def _arg(node: fx.Node, index: int, keyword: str, default: Any) -> Any:
    """A call's argument, given by position or by keyword (an fx argument: a number here, typed loosely)."""
    return node.args[index] if len(node.args) > index else node.kwargs.get(keyword, default)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _adaptive_size(c: _Converter, node: fx.Node, value: Any) -> tuple[int, int]:
    """An adaptive pool's output size, where torch's None keeps the input's size on that axis (it failed as int(None)
    in a message that said to change the input size)."""
    sizes = (value, value) if value is None or isinstance(value, int) else tuple(value)
    if None not in sizes:
        return _pair(value)
    shape = c.map_shape(c.produced[c.tensor_args(node)[0]])
    if shape is None or len(shape) != 3:
        raise c.unsupported(
            "an adaptive pool keeping a size (None) of an input whose size is not known",
            node,
            "To fix, give the pool's output size as numbers.",
        )
    return (int(sizes[0] if sizes[0] is not None else shape[0]), int(sizes[1] if sizes[1] is not None else shape[1]))


class _Converter:
    def __init__(self, model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
        self.name = name
        self.input_shape = input_shape
        self.modules = dict(model.named_modules())
        self.layers: list[Layer] = []
        self.sources: dict[str, nn.Module] = {}  # spec layer -> the module holding its weights
        self.produced: dict[fx.Node, str] = {}  # fx node -> the spec layer (or "input") whose output it is
        self.returned: str | None = None  # the spec layer whose output forward returns
        # fx nodes of a tensor's shape ("size": x.size(), x.shape) or batch size ("batch": x.size(0), x.shape[0]),
        # which only a flattening view or reshape may use
        self.shape_nodes: dict[fx.Node, str] = {}
        # spec layer (or "input") -> the rank of its output without the batch axis: 3 for a map, 1 once flat
        self.ranks: dict[str, int] = {"input": len(input_shape)}
        self.never_dropping: set[str] = set()  # F.dropout(..., training=False): identities (fx node names)

    def unsupported(self, op: str, node: fx.Node, hint: str = "") -> UnsupportedModelError:
        where = node.target if node.op == "call_module" else f"{_scope(node) or self.name} ({node.name})"
        return UnsupportedModelError("PyTorch", op, str(where), SUPPORTED, hint)

    def add(self, node: fx.Node, layer: Layer, inputs: list[fx.Node], source: nn.Module | None = None) -> None:
        names = tuple(self.produced[i] for i in inputs)
        previous = self.layers[-1].name if self.layers else "input"
        if isinstance(layer, Dense) and self.ranks[names[0]] != 1:  # no input size fixes an unflattened map
            raise not_flat_refusal(str(node.target), names[0], self.map_shape(names[0]), self.name)
        layer = replace(layer, inputs=() if names == (previous,) else names)
        self.layers.append(layer)
        self.ranks[layer.name] = 1 if isinstance(layer, (Flatten, Dense, GlobalAvgPool2D)) else self.ranks[names[0]]
        self.produced[node] = layer.name
        if source is not None:
            self.sources[layer.name] = source

    def map_shape(self, produced: str) -> tuple[int, ...] | None:
        """The (H, W, C) shape of a converted layer's output (or the input), for a refusal to state; None where
        the layers so far do not fit the input (the refusal stands without it)."""
        if produced == "input":
            return tuple(self.input_shape)
        try:
            return infer_shapes(ModelSpec(self.name, tuple(self.input_shape), 1, tuple(self.layers)))[produced].shape
        except InputError:
            return None

    def alias(self, node: fx.Node, source: fx.Node) -> None:
        self.produced[node] = self.produced[source]

    def tensor_args(self, node: fx.Node) -> list[fx.Node]:
        return [a for a in node.args if isinstance(a, fx.Node)]


def _traced_subclass_hint(c: _Converter, node: fx.Node) -> str:
    """A user's subclass of a torch layer (``class MyConv(nn.Conv2d)``): torch.fx keeps only torch.nn's own classes
    whole and traces a subclass through its code, whose parameter reads were refused with no word of the layer."""
    path = str(node.target).rpartition(".")[0] if node.op == "get_attr" else _scope(node)
    module = c.modules.get(path) if path else None
    if module is None or type(module).__module__.startswith("torch."):
        return ""
    base = next((b for b in type(module).__mro__[1:] if b.__module__.startswith("torch.nn.modules.")), None)
    if base is None or base is nn.Module:
        return ""
    return (
        f"To fix, use nn.{base.__name__} itself at {path!r}: {type(module).__name__} there, a subclass of "
        f"nn.{base.__name__}, is traced through its own Python code (torch.fx keeps only torch.nn's own classes whole)."
    )


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _function_name(node: fx.Node, taken: set[str]) -> str:
    base = getattr(node.target, "__name__", str(node.target)).strip("_")
    scope = _scope(node).replace(".", "_")
    name = f"{scope}_{base}" if scope else base
    candidate, count = name, 1
    while candidate in taken:
        candidate, count = f"{name}_{count}", count + 1
    return candidate


def _module_layer(c: _Converter, node: fx.Node, module: nn.Module, name: str, group: str) -> Layer | None:
    if isinstance(module, nn.Conv2d):
        if _pair(module.dilation) != (1, 1):
            raise c.unsupported("Conv2d with dilation", node, "To fix, use dilation=1.")
        if module.padding_mode != "zeros":
            hint = "To fix, pad with zeros: padding_mode='zeros'."
            raise c.unsupported(f"Conv2d with padding_mode={module.padding_mode!r}", node, hint)
        return Conv2D(
            name=name,
            group=group,
            filters=module.out_channels,
            kernel_size=_pair(module.kernel_size),
            strides=_pair(module.stride),
            padding=_conv_padding(module),
            use_bias=module.bias is not None,
            groups=module.groups,
        )
    if isinstance(module, nn.Linear):
        return Dense(name=name, group=group, units=module.out_features, use_bias=module.bias is not None)
    if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        if not (module.affine and module.track_running_stats) or module.momentum is None:
            raise c.unsupported(
                "BatchNorm without affine parameters, running statistics or a momentum",
                node,
                "To fix, build it with affine=True, track_running_stats=True and a momentum (its defaults).",
            )
        return BatchNorm(name=name, group=group, decay=1.0 - module.momentum, epsilon=module.eps)
    if isinstance(module, nn.ZeroPad2d):  # (left, right, top, bottom), as F.pad takes it
        left, right, top, bottom = (int(p) for p in module.padding)
        if min(left, right, top, bottom) < 0:  # torch crops there; the spec's padding cannot
            raise c.unsupported("ZeroPad2d with a negative padding (a crop)", node, "To fix, pad by 0 or more.")
        return ZeroPad2D(name=name, group=group, padding=((top, bottom), (left, right)))
    if type(module) in _ACTIVATIONS:
        slope = "negative_slope" if isinstance(module, nn.LeakyReLU) else "alpha"
        alpha = getattr(module, slope, None)
        return Activation(
            name=name,
            group=group,
            kind=_ACTIVATIONS[type(module)],
            alpha=float(alpha) if alpha is not None and not isinstance(module, nn.PReLU) else None,
        )
    return _shape_module_layer(c, node, module, name, group)


def _shape_module_layer(c: _Converter, node: fx.Node, module: nn.Module, name: str, group: str) -> Layer | None:
    """The modules without weights that pool, flatten, drop or pass their input on."""
    if isinstance(module, nn.MaxPool2d):
        if module.ceil_mode or _pair(module.dilation) != (1, 1):
            raise c.unsupported(
                "MaxPool2d with ceil_mode or dilation", node, "To fix, use ceil_mode=False, dilation=1."
            )
        ph, pw = _pair(module.padding)
        return MaxPool2D(
            name=name,
            group=group,
            pool_size=_pair(module.kernel_size),
            strides=_pair(module.stride),
            padding=((ph, ph), (pw, pw)),
        )
    if isinstance(module, nn.AvgPool2d):
        return _avg_pool(c, node, module, name, group)
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return AdaptiveAvgPool2D(name=name, group=group, output_size=_adaptive_size(c, node, module.output_size))
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise c.unsupported(
                "Flatten other than from dimension 1 to the end",
                node,
                "To fix, flatten each sample whole: nn.Flatten().",
            )
        return Flatten(name=name, group=group)
    if isinstance(module, nn.Dropout):
        return Dropout(name=name, group=group, rate=float(module.p))
    if isinstance(module, nn.Identity):
        return None
    raise c.unsupported(type(module).__name__, node)


def _conv_padding(module: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int]]:
    """Per side. "valid" is none; "same" (stride 1 only, torch's rule) pads kernel - 1 in all, the odd pixel at the
    bottom / right, as torch pads it."""
    if module.padding == "valid":
        return ((0, 0), (0, 0))
    if module.padding == "same":
        totals = [k - 1 for k in _pair(module.kernel_size)]
        return cast(tuple[tuple[int, int], tuple[int, int]], tuple((t // 2, t - t // 2) for t in totals))
    ph, pw = _pair(module.padding)
    return ((ph, ph), (pw, pw))


def _avg_pool(c: _Converter, node: fx.Node, module: nn.AvgPool2d, name: str, group: str) -> AvgPool2D:
    # The spec's AvgPool2D divides each whole window by its size: padding (with count_include_pad either way),
    # ceil_mode's partial windows and divisor_override (another divisor: a sum for 1) compute other values.
    if module.ceil_mode or _pair(module.padding) != (0, 0) or module.divisor_override is not None:
        raise c.unsupported(
            "AvgPool2d with padding, ceil_mode or divisor_override",
            node,
            "To fix, use nn.AvgPool2d(kernel_size, stride) with padding=0, ceil_mode=False and divisor_override=None.",
        )
    return AvgPool2D(name=name, group=group, pool_size=_pair(module.kernel_size), strides=_pair(module.stride))


# A functional pooling call's parameters in its signature's order, with their defaults (None: required), as the
# keywords of the module that computes the same (PyTorch's MNIST example pools with F.max_pool2d(x, 2)).
_MAX_POOL_PARAMETERS = (
    ("kernel_size", None),
    ("stride", None),
    ("padding", 0),
    ("dilation", 1),
    ("ceil_mode", False),
    ("return_indices", False),
)
_AVG_POOL_PARAMETERS = (
    ("kernel_size", None),
    ("stride", None),
    ("padding", 0),
    ("ceil_mode", False),
    ("count_include_pad", True),
    ("divisor_override", None),
)


def _pooling_call(c: _Converter, node: fx.Node, name: str, group: str) -> Layer | None:
    """F.max_pool2d / F.avg_pool2d as the module with the same arguments (and its refusals); a mean over the
    spatial dimensions, x.mean((2, 3)), as a global average pool (keepdim: an adaptive pool to 1x1); None for any
    other call."""
    target = node.target
    if target in (F.max_pool2d, torch.max_pool2d, F.avg_pool2d):
        maximum = target in (F.max_pool2d, torch.max_pool2d)
        parameters = _MAX_POOL_PARAMETERS if maximum else _AVG_POOL_PARAMETERS
        given = {key: _arg(node, i + 1, key, default) for i, (key, default) in enumerate(parameters)}
        if given.get("return_indices"):
            hint = "To fix, pool without return_indices: F.max_pool2d(x, kernel_size)."
            raise c.unsupported("max_pool2d with return_indices", node, hint)
        module = nn.MaxPool2d(**given) if maximum else nn.AvgPool2d(**given)
        return cast(Layer, _module_layer(c, node, module, name, group))
    if target is torch.mean or (node.op == "call_method" and target == "mean"):
        dims = _arg(node, 1, "dim", None)
        spatial = isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]
        if not spatial or node.kwargs.get("dtype") is not None:
            raise c.unsupported(
                "mean other than over the spatial dimensions (2, 3)",
                node,
                "To fix, average over the spatial dimensions alone: x.mean((2, 3)), or nn.AdaptiveAvgPool2d(1).",
            )
        if _arg(node, 2, "keepdim", False):
            return AdaptiveAvgPool2D(name=name, group=group, output_size=(1, 1))
        return GlobalAvgPool2D(name=name, group=group)
    return None


def _zero_pad(c: _Converter, node: fx.Node, name: str, group: str) -> Layer:
    """F.pad(x, (left, right[, top, bottom])) with zeros: a ZeroPad2d (a third pair pads the channels, which the
    spec's padding cannot)."""
    pad, mode, value = _arg(node, 1, "pad", ()), _arg(node, 2, "mode", "constant"), _arg(node, 3, "value", None)
    if mode != "constant" or value not in (None, 0, 0.0):
        raise c.unsupported(f"F.pad with mode={mode!r}, value={value!r}", node, "To fix, pad with zeros.")
    if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) or not all(isinstance(p, int) for p in pad):
        raise c.unsupported(f"F.pad of {pad!r}", node, "To fix, pad width and height: (left, right, top, bottom).")
    left, right, top, bottom = (*pad, 0, 0)[:4]
    if min(left, right, top, bottom) < 0:  # torch crops there; the spec's padding cannot
        raise c.unsupported("F.pad with a negative padding (a crop)", node, "To fix, pad by 0 or more.")
    return ZeroPad2D(name=name, group=group, padding=((top, bottom), (left, right)))


def _activation_call(c: _Converter, node: fx.Node, name: str, group: str) -> Activation | None:
    """An activation applied as a function (F.relu, F.leaky_relu) or a tensor's method (x.relu()); None for another
    call."""
    target = node.target
    if target in (F.leaky_relu, F.elu):  # their slope or alpha read as the modules' are
        kind, slope = (
            ("leaky_relu", _arg(node, 1, "negative_slope", 0.01))
            if target is F.leaky_relu
            else ("elu", _arg(node, 1, "alpha", 1.0))
        )
        return Activation(name=name, group=group, kind=kind, alpha=float(slope))
    if target in _FUNCTION_ACTIVATIONS or (node.op == "call_method" and target in _METHOD_ACTIVATIONS):
        kind = _FUNCTION_ACTIVATIONS[target] if node.op == "call_function" else str(target)
        return Activation(name=name, group=group, kind=kind)
    if node.op == "call_method" and str(target).endswith("_") and str(target).rstrip("_") in _METHOD_ACTIVATIONS:
        # the tensor it changes in place is read on by the graph's other nodes: the converted layer's output would not
        raise c.unsupported(
            f"the in-place x.{target}()", node, f"To fix, use its result: x = x.{str(target).rstrip('_')}()."
        )
    return None


def _addition(c: _Converter, node: fx.Node, name: str, group: str) -> Add:
    """a + b, torch.add(a, b), as the spec's Add of two tensors; what else an addition holds, refused as what it is."""
    alpha = node.kwargs.get("alpha", 1)
    if alpha != 1:  # torch.add(a, b, alpha=2) is a + 2b: no constant, but a scale the spec's Add has not
        raise c.unsupported(
            f"torch.add with alpha={alpha!r} (a + alpha * b)",
            node,
            "To fix, add the tensors alone (a + b): the spec's Add has no scale.",
        )
    if len(c.tensor_args(node)) != 2:
        raise c.unsupported(
            "addition of a constant",
            node,
            "To fix, add two tensors (a + b); a learned offset is a layer's bias (nn.Conv2d, nn.Linear).",
        )
    if set(node.kwargs) - {"alpha"}:
        raise c.unsupported(f"torch.add with {', '.join(sorted(set(node.kwargs) - {'alpha'}))}", node)
    return Add(name=name, group=group)


def _function_layer(c: _Converter, node: fx.Node, name: str, group: str) -> Layer:
    target = node.target
    flattens = _flattens(c, node)
    if flattens:
        return Flatten(name=name, group=group)
    if flattens is None and c.shape_nodes.keys() & set(node.all_input_nodes):
        what = f"{getattr(target, '__name__', target)} of a tensor's shape"
        hint = "To fix, read a shape only to flatten each sample: x.view(x.size(0), -1)."
        raise c.unsupported(what, node, hint)
    if target in (operator.add, operator.iadd, torch.add):
        return _addition(c, node, name, group)
    if target is torch.cat:
        dim = _arg(node, 1, "dim", 0)
        if dim not in (1, -3):
            hint = "To fix, concatenate the channels: torch.cat(tensors, dim=1)."
            raise c.unsupported(f"torch.cat along dimension {dim}", node, hint)
        return Concat(name=name, group=group)
    if target is torch.flatten or (node.op == "call_method" and target == "flatten"):
        if _arg(node, 1, "start_dim", 0) != 1:
            raise c.unsupported(
                "flatten from a dimension other than 1", node, "To fix, flatten each sample whole: torch.flatten(x, 1)."
            )
        if _arg(node, 2, "end_dim", -1) not in (-1, c.ranks[c.produced[c.tensor_args(node)[0]]]):
            # flatten(x, 1, 2) keeps the last axis: converted as a whole flatten, its weights then misread
            raise c.unsupported(
                "flatten to a dimension other than the last",
                node,
                "To fix, flatten each sample whole: torch.flatten(x, 1).",
            )
        return Flatten(name=name, group=group)
    if flattens is not None:  # a view or reshape that does not flatten each sample
        what = f"{getattr(target, '__name__', target)} other than a flatten of each sample"
        hint = "To fix, flatten with torch.flatten(x, 1), nn.Flatten() or x.view(x.size(0), -1)."
        raise c.unsupported(what, node, hint)
    activation = _activation_call(c, node, name, group)
    if activation is not None:
        return activation
    if target is F.pad:
        return _zero_pad(c, node, name, group)
    if target is F.adaptive_avg_pool2d:
        size = _adaptive_size(c, node, _arg(node, 1, "output_size", None))
        return AdaptiveAvgPool2D(name=name, group=group, output_size=size)
    pooled = _pooling_call(c, node, name, group)
    if pooled is not None:
        return pooled
    if target is F.dropout and _arg(node, 2, "training", True) is True:  # traced in eval: self.training is False
        raise c.unsupported(
            "F.dropout without training=self.training (its default, training=True, drops at inference too)",
            node,
            "To fix, write F.dropout(x, p, training=self.training), or use nn.Dropout(p).",
        )
    if target is F.dropout:
        return Dropout(name=name, group=group, rate=float(_arg(node, 1, "p", 0.5)))
    raise c.unsupported(getattr(target, "__name__", str(target)), node)


def _convert_graph(c: _Converter, graph: fx.Graph) -> None:
    # every module's layer takes its fx node's name: a functional op's own name must not be one of them (F.relu in
    # a block that applies its self.relu too, both "block_relu", made a spec with a duplicate name)
    taken = {n.name for n in graph.nodes if n.op == "call_module"}
    calls = Counter(str(n.target) for n in graph.nodes if n.op == "call_module")
    for node in graph.nodes:
        if node.op == "placeholder":
            if c.produced:
                raise c.unsupported("a second model input", node, "To fix, take one input: the image batch.")
            c.produced[node] = "input"
        elif node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise c.unsupported("several model outputs", node, "To fix, return one output: the logits.")
            c.returned = c.produced.get(node.args[0])
        elif _is_final_softmax(
            c.modules, node
        ):  # the loss applies the softmax: a Keras model's final one is dropped too
            c.alias(node, c.tensor_args(node)[0])
        elif node.op == "call_module":
            module = c.modules[node.target]
            group = node.target.split(".")[0]
            # a module without weights applied in several places (the tutorial's one self.pool after each conv)
            # joins the group of the layer before it at each, as a functional op does: as a group of its own it sat
            # between the others (freeze_early refused the model) and counted in --freeze-groups, freezing nothing
            if calls[node.target] > 1 and c.layers and next(module.parameters(), None) is None:
                group = c.layers[-1].group
            layer = _module_layer(c, node, module, node.name, group)
            inputs = c.tensor_args(node)
            if layer is None:
                c.alias(node, inputs[0])
            else:
                c.add(node, layer, inputs[:1], module)
            taken.add(node.name)
        elif node.op in ("call_function", "call_method") and _shape_node(c, node):
            continue
        elif node.op in ("call_function", "call_method"):
            _convert_call(c, node, taken)
        else:
            raise c.unsupported(f"{node.op} {node.target}", node, _traced_subclass_hint(c, node))


_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
_SOFTMAX_FUNCTIONS = (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax)


def _is_final_softmax(modules: dict[str, nn.Module], node: fx.Node) -> bool:
    """A softmax or log-softmax over the classes (dimension 1 of the (N, classes) output; None: torch's implicit
    choice, 1 for it) whose result is the model's output and goes nowhere else. Anywhere else it stays unsupported:
    the spec has no softmax layer."""
    if not node.users or any(user.op != "output" for user in node.users):
        return False
    if node.op == "call_module":
        module = modules[str(node.target)]
        return isinstance(module, _SOFTMAX_MODULES) and module.dim in (None, 1, -1)
    if node.op == "call_function" and node.target in _SOFTMAX_FUNCTIONS:
        return _arg(node, 1, "dim", None) in (None, 1, -1)
    if node.op == "call_method" and node.target in ("softmax", "log_softmax"):
        return _arg(node, 1, "dim", None) in (None, 1, -1)
    return False


def _shape_node(c: _Converter, node: fx.Node) -> bool:
    """Notes a node that reads a shape or the batch size (the idiom x.view(x.size(0), -1) flattens with them):
    True when ``node`` is one, which produces no layer."""
    target, args = node.target, node.args
    if node.op == "call_method" and target == "size":
        c.shape_nodes[node] = "batch" if _arg(node, 1, "dim", None) == 0 else "size"
    elif node.op == "call_function" and target is getattr and args[1] == "shape":
        c.shape_nodes[node] = "size"
    elif (
        node.op == "call_function"
        and target is operator.getitem
        and c.shape_nodes.get(cast(fx.Node, args[0])) == "size"
    ):
        c.shape_nodes[node] = "batch" if args[1] == 0 else "size"
    return node in c.shape_nodes


def _flattens(c: _Converter, node: fx.Node) -> bool | None:
    """Whether a view or reshape flattens each sample, as x.view(x.size(0), -1) does; None when ``node`` is not a
    view or reshape."""
    method = node.op == "call_method" and node.target in ("view", "reshape")
    if not (method or (node.op == "call_function" and node.target is torch.reshape)):
        return None
    dims = node.args[1:]  # after the tensor, as x.view(...) and torch.reshape(x, ...) both pass it
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    batch = len(dims) == 2 and isinstance(dims[0], fx.Node) and c.shape_nodes.get(dims[0]) == "batch"
    return bool(batch and isinstance(dims[1], int) and dims[1] == -1)


def _convert_call(c: _Converter, node: fx.Node, taken: set[str]) -> None:
    if node.name in c.never_dropping:  # training=False whatever the mode: it never drops
        c.alias(node, c.tensor_args(node)[0])
        return
    if node.target is torch.cat:
        parts = cast(Any, node.args[0])  # a Node, or a list of Nodes
        if isinstance(parts, fx.Node) or len(parts) == 1:  # torchvision's DenseNet concatenates a lone input
            c.alias(node, parts if isinstance(parts, fx.Node) else parts[0])
            return
        inputs = list(parts)
    else:
        inputs = (
            c.tensor_args(node)[:2]
            if node.target in (operator.add, operator.iadd, torch.add)
            else c.tensor_args(node)[:1]
        )
    name = _function_name(node, taken)
    group = _scope(node).split(".")[0] or (c.layers[-1].group if c.layers else "features")
    layer = _function_layer(c, node, name, group)
    taken.add(name)
    c.add(node, layer, inputs)


def _weights(c: _Converter, spec: ModelSpec, infos: dict[str, TensorInfo]) -> NeutralWeights:
    out: NeutralWeights = {}

    def host(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32, copy=True)

    for index, layer in enumerate(spec.layers):
        module = c.sources.get(layer.name)
        if module is None:
            continue  # a functional op (add, cat, F.relu, ...): no weights
        origin = flat_origin(spec, infos, index)  # on a flattened map, PyTorch's vectors are in C,H,W order
        if isinstance(layer, Conv2D):
            out[f"{layer.name}/kernel"] = conv_kernel_from_torch(host(module_tensor(module, "weight")))
        elif isinstance(layer, Dense):
            out[f"{layer.name}/kernel"] = dense_kernel_from_torch(host(module_tensor(module, "weight")), origin)
        elif isinstance(layer, BatchNorm):
            for param, attribute in BATCHNORM_TENSORS:
                out[f"{layer.name}/{param}"] = flat_features_from_torch(host(module_tensor(module, attribute)), origin)
        elif isinstance(layer, Activation) and layer.kind == "prelu":
            channels = infos[layer.name].shape[-1]
            alpha = np.broadcast_to(host(module_tensor(module, "weight")), (channels,)).copy()
            out[f"{layer.name}/alpha"] = flat_features_from_torch(alpha, origin)
        if isinstance(layer, (Conv2D, Dense)) and layer.use_bias:
            out[f"{layer.name}/bias"] = host(module_tensor(module, "bias"))
    return out


def _refuse_shared_prelu_slopes(c: _Converter, spec: ModelSpec, infos: dict[str, TensorInfo]) -> None:
    paths = {module: path for path, module in c.modules.items()}
    for layer in spec.layers:
        if isinstance(layer, Activation) and layer.kind == "prelu":
            module = c.sources[layer.name]
            refuse_shared_prelu_slope(module, infos[layer.name], c.name, paths.get(module, layer.name))


def _trace(model: nn.Module, name: str) -> fx.Graph:
    try:
        return fx.symbolic_trace(model).graph
    except Exception as exc:  # data-dependent control flow and the like: fx says what it could not trace
        # or a fault in the user's forward (a NameError): either way the line of theirs it arose at is what to see
        frame = user_frame(exc)
        at = f", raised at {describe_frame(frame)}" if frame is not None else ""
        hint = "To fix, write the forward without data-dependent Python control flow, or correct the code there."
        raise UnsupportedModelError(
            "PyTorch", f"code torch.fx cannot trace ({describe_exception(exc)}{at})", name, SUPPORTED, hint
        ) from None


_ONE_NETWORK = (
    "To fix, remove what `if self.training:` guards, or make it a layer xfbench converts (nn.Dropout): xfbench "
    "converts one network for both modes, whose Dropout and BatchNorm layers switch themselves."
)


def _trace_in_training(model: nn.Module, name: str) -> fx.Graph:
    """A second trace, in training mode: traced in evaluation alone, code under ``if self.training:`` vanished from
    the converted network without a word, and F.dropout(x, p, training=False) became a dropout. A BatchNorm or
    Dropout that the model's train() leaves in evaluation mode is refused here (an eval-mode probe cannot see it)."""
    try:
        graph = _trace(model.train(), name)
        refuse_modules_kept_in_eval(graph, dict(model.named_modules()), name)  # while train()'s flags stand
        return graph
    except UnsupportedModelError as refused:  # the evaluation trace passed: say which one failed
        raise UnsupportedModelError(
            "PyTorch", f"{refused.op} in training mode (model.train())", name, SUPPORTED, refused.hint
        ) from None
    finally:
        model.eval()


def _never_dropping(training: fx.Graph) -> set[str]:
    """The F.dropout calls (by fx node name) that never drop: training=False in the training-mode trace."""
    return {n.name for n in training.nodes if n.target is F.dropout and _arg(n, 2, "training", True) is False}


def _refuse_mode_branches(graph: fx.Graph, training: fx.Graph, name: str) -> None:
    """The training-mode trace must run the ops of the evaluation trace ``graph``, on the same inputs (checked after
    the layers are, so that a layer the spec cannot hold is refused as that)."""

    def ops(traced: fx.Graph) -> list[tuple[fx.Node, tuple]]:
        return [(n, (n.op, n.target, [a.name for a in n.all_input_nodes])) for n in traced.nodes]

    for (_, evaluated), (node, trained) in itertools.zip_longest(ops(graph), ops(training), fillvalue=(None, None)):
        if evaluated == trained:
            continue
        runs = (
            "ops in evaluation only (`if not self.training:`)"
            if node is None
            else f"other ops in training than in evaluation (first: {node.op} "
            f"{getattr(node.target, '__name__', node.target)}, {_scope(node) or name} ({node.name}), in training)"
        )
        raise UnsupportedModelError("PyTorch", f"a forward that runs {runs}", name, SUPPORTED, _ONE_NETWORK)


def convert(model: nn.Module, input_shape: tuple[int, int, int], name: str) -> tuple[ModelSpec, NeutralWeights]:
    model = model.eval()
    graph = _trace(model, name)
    c = _Converter(model, name, input_shape)
    training = _trace_in_training(model, name)
    c.never_dropping = _never_dropping(training)
    # weights the spec would silently copy apart or train: refused before anything is converted
    refuse_shared_weights(graph, c.modules, name)
    refuse_frozen_parameters(graph, c.modules, name)
    refuse_reparametrised_modules(graph, c.modules, name)
    refuse_in_place_overwrites(graph, c.modules, name)
    with layer_settings_checked():
        _convert_graph(c, graph)
    _refuse_mode_branches(graph, training, name)
    refuse_unused_layers(c.layers, c.returned, name)
    head = c.layers[-1] if c.layers else None
    if isinstance(head, Activation):
        raise ending_activation_refusal(head, name)
    if not isinstance(head, Dense):
        found = type(head).__name__ if head is not None else "nothing"
        raise UnsupportedModelError(
            "PyTorch",
            f"a model ending in {found}",
            name,
            SUPPORTED,
            "To fix, end the model with a Linear layer giving the logits: xfbench trains classifiers.",
        )
    layers = tuple(replace(l, group="classifier") if l.group == head.group else l for l in c.layers)
    spec = ModelSpec(name=name, input_shape=tuple(input_shape), num_classes=head.units, layers=layers)
    infos = infer_shapes(spec)
    _refuse_shared_prelu_slopes(c, spec, infos)
    weights = _weights(c, spec, infos)
    check_converted_weights(spec, weights)
    return spec, weights
