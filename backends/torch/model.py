"""Build a torch.nn.Module from a neutral ModelSpec and move weights in and out of it."""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backends.torch import input_layers
from backends.torch.dropout import DropoutKeys, SharedDropout
from backends.torch.layout import (
    BATCHNORM_TENSORS,
    conv_kernel_from_torch,
    conv_kernel_to_torch,
    dense_kernel_from_torch,
    dense_kernel_to_torch,
    flat_features_from_torch,
    flat_features_to_torch,
)
from harness.dropout_rng import dropout_layer_indices, layout_hashes
from harness.shapes import TensorInfo, channels_first_order_differs, check_flattened_merges, infer_shapes
from harness.spec import (
    ACTIVATIONS,
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
    normalize_factors,
)
from harness.weights import NeutralWeights, check_weights, host_array


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class MergeAdd(nn.Module):
    """A graph's Add, as a module of its own (no parameters) so that a hook reads its output as at any layer
    (features at a MobileNetV2 block's output are features at its Add). Sums in the spec's input order."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = inputs[0]
        for other in inputs[1:]:
            out = out + other
        return out


class MergeConcat(nn.Module):
    """A graph's Concat along channels (NCHW), as a module of its own, like :class:`MergeAdd`."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class GraphModule(nn.Module):
    """Runs a non-chain spec (residual, branching) in spec order: ``plan`` holds each layer's name and the names of
    its inputs ("input": the model's), in that order."""

    def __init__(self, layers: dict[str, nn.Module], plan: list[tuple[str, tuple[str, ...]]]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {"input": x}
        out = x
        for name, sources in self.plan:
            out = values[name] = self.layers[name](*(values[s] for s in sources))
        return out


def _activation(layer: Activation, channels: int) -> nn.Module:
    kind = layer.kind
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)  # slopes are loaded from the neutral weights
    if kind == "relu":
        return nn.ReLU()
    if kind == "relu6":
        return nn.ReLU6()
    if kind == "leaky_relu":
        return nn.LeakyReLU(negative_slope=layer.alpha if layer.alpha is not None else 0.01)
    if kind == "elu":
        return nn.ELU(alpha=layer.alpha if layer.alpha is not None else 1.0)
    if kind == "selu":
        return nn.SELU()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "linear":
        return nn.Identity()
    raise ValueError(f"Expected a known activation. Received: {kind!r}. To fix, give one of {list(ACTIVATIONS)}.")


def _biased_running_statistics(bn: nn.BatchNorm2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The running mean and variance after batch ``x``, the variance tracking the biased batch variance (Keras'
    definition), computed in float32 at least (float64 for a float64 ``x``): under Autocast ``x`` is bfloat16 or
    float16, and updating in its dtype rounded the float32 buffers to 8 or 11 bits every step (1.9e-2 off after
    200 bfloat16 steps, where torch's own BatchNorm, which accumulates in float32, stays within 4e-7)."""
    dims = [0, 2, 3] if x.dim() == 4 else [0]
    running_mean, running_var, momentum = bn.running_mean, bn.running_var, bn.momentum
    assert running_mean is not None and running_var is not None and momentum is not None  # built with them
    dtype = torch.promote_types(x.dtype, torch.float32)
    with torch.no_grad():
        x = x.to(dtype)  # a no-op for float32 and float64 inputs
        mean = running_mean.to(dtype).mul(1.0 - momentum).add(x.mean(dims), alpha=momentum)
        var = running_var.to(dtype).mul(1.0 - momentum).add(x.var(dims, unbiased=False), alpha=momentum)
    return mean, var


def _store_running_statistics(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
    """Into the buffers, in their own dtype (as torch's kernel stores them), counting the batch as it does."""
    assert bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None
    with torch.no_grad():
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.num_batches_tracked.add_(1)


class _FlatInput:
    """The 1-d variant of a BatchNorm2d subclass: (batch, features) inputs only."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() != 2:
            raise ValueError(
                f"Expected a 2-D input. Received: {input.dim()}-D. To fix, use BiasedBatchNorm2d on feature maps."
            )


class BiasedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose running variance tracks the biased batch variance (Keras' definition, an option)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        self._check_input_dim(x)
        out = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)  # refuses 1 value per channel
        _store_running_statistics(self, *_biased_running_statistics(self, x))
        return out


class BiasedBatchNorm1d(_FlatInput, BiasedBatchNorm2d):
    pass


class Float64BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training-mode statistics, normalisation and backward pass compute in float64, the output cast
    back (RuntimeOptions.bn_statistics="float64", as the TensorFlow backend's); inference is torch's own."""

    def __init__(self, *args, unbiased_running_variance: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unbiased_running_variance = unbiased_running_variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        self._check_input_dim(x)
        running_mean, running_var, momentum = self.running_mean, self.running_var, self.momentum
        assert running_mean is not None and running_var is not None and momentum is not None  # built with them
        x64, weight, bias = x.double(), self.weight.double(), self.bias.double()
        if self.unbiased_running_variance:  # torch's own update, on float64 copies of the running statistics
            mean64, var64 = running_mean.double(), running_var.double()
            out = F.batch_norm(x64, mean64, var64, weight, bias, True, momentum, self.eps)
        else:  # Keras' definition: the running variance tracks the biased batch variance
            out = F.batch_norm(x64, None, None, weight, bias, True, 0.0, self.eps)
            mean64, var64 = _biased_running_statistics(self, x64)
        _store_running_statistics(self, mean64, var64)
        return out.to(x.dtype)


class Float64BatchNorm1d(_FlatInput, Float64BatchNorm2d):
    pass


def _batchnorm(layer: BatchNorm, in_info: TensorInfo, statistics: str = "float32") -> nn.Module:
    # On a flattened feature map the features are in C,H,W order here: load/export reorder its vectors.
    spatial = len(in_info.shape) == 3
    if statistics == "float64":
        unbiased = layer.running_variance == "unbiased"
        f64 = Float64BatchNorm2d if spatial else Float64BatchNorm1d
        return f64(in_info.shape[-1], eps=layer.epsilon, momentum=1.0 - layer.decay, unbiased_running_variance=unbiased)
    if layer.running_variance == "biased":
        cls: type[nn.Module] = BiasedBatchNorm2d if spatial else BiasedBatchNorm1d
    else:  # torch's own: the running variance tracks the unbiased batch variance
        cls = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    return cls(in_info.shape[-1], eps=layer.epsilon, momentum=1.0 - layer.decay)


def _dropout(layer: Dropout, in_info: TensorInfo, keys: DropoutKeys | None, slot: int) -> nn.Module:
    if keys is None:  # the framework's own generator (--dropout-rng framework)
        return nn.AlphaDropout(layer.rate) if layer.kind == "alpha" else nn.Dropout(layer.rate)
    hashed = layout_hashes(in_info.shape, in_info.flattened_from, channels_first=True)
    return SharedDropout(layer.rate, layer.kind, slot, hashed, keys)


def _max_pool(layer: MaxPool2D) -> nn.Module:
    (pt, pb), (pl, pr) = layer.padding
    (kh, kw), strides = layer.pool_size, layer.strides or layer.pool_size
    if pt == pb and pl == pr and pt <= kh // 2 and pl <= kw // 2:  # what MaxPool2d's own (-inf) padding accepts
        return nn.MaxPool2d(layer.pool_size, strides, padding=(pt, pl))
    # Asymmetric or wider padding: pad with -inf explicitly, the same meaning (padded cells never win).
    return nn.Sequential(nn.ConstantPad2d((pl, pr, pt, pb), float("-inf")), nn.MaxPool2d(layer.pool_size, strides))


def _module(
    layer: Layer, in_info: TensorInfo, keys: DropoutKeys | None = None, slot: int = 0, bn_statistics: str = "float32"
) -> nn.Module:
    """The module for one layer."""
    if isinstance(layer, Conv2D):
        (pt, pb), (pl, pr) = layer.padding
        in_ch = in_info.shape[-1]
        if pt == pb and pl == pr:
            return nn.Conv2d(
                in_ch,
                layer.filters,
                layer.kernel_size,
                layer.strides,
                padding=(pt, pl),
                bias=layer.use_bias,
                groups=layer.groups,
            )
        return nn.Sequential(
            nn.ZeroPad2d((pl, pr, pt, pb)),
            nn.Conv2d(in_ch, layer.filters, layer.kernel_size, layer.strides, bias=layer.use_bias, groups=layer.groups),
        )
    if isinstance(layer, Dense):
        return nn.Linear(in_info.shape[-1], layer.units, bias=layer.use_bias)
    if isinstance(layer, Activation):
        return _activation(layer, in_info.shape[-1])
    if isinstance(layer, MaxPool2D):
        return _max_pool(layer)
    if isinstance(layer, AdaptiveAvgPool2D):
        if tuple(in_info.shape[:2]) == tuple(layer.output_size):  # each window one position: the map itself
            # AdaptiveAvgPool2d's CUDA backward refuses torch.use_deterministic_algorithms (deterministic mode on a GPU
            # failed alexnet_tv and VGG at 224 x 224, whose maps are already 6 x 6 and 7 x 7)
            return nn.Identity()
        return nn.AdaptiveAvgPool2d(layer.output_size)  # the reference the neutral definition is written from
    if isinstance(layer, ZeroPad2D):
        (pt, pb), (pl, pr) = layer.padding
        return nn.ZeroPad2d((pl, pr, pt, pb))
    if isinstance(layer, AvgPool2D):
        return nn.AvgPool2d(layer.pool_size, layer.strides or layer.pool_size)
    if isinstance(layer, GlobalAvgPool2D):
        return GlobalAvgPool()
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dropout):
        return _dropout(layer, in_info, keys, slot)
    if isinstance(layer, BatchNorm):
        return _batchnorm(layer, in_info, bn_statistics)
    if isinstance(layer, Resize2D):
        return input_layers.Resize((in_info.shape[0], in_info.shape[1]), layer.output_size, layer.resized)
    if isinstance(layer, RepeatChannels):
        return input_layers.RepeatChannels(layer.repeats)
    if isinstance(layer, Normalize):
        return input_layers.Normalize(*normalize_factors(layer))
    if isinstance(layer, Add):
        return MergeAdd()
    if isinstance(layer, Concat):
        return MergeConcat()
    raise ValueError(
        f"Expected a layer type the torch backend knows. Received: {type(layer).__name__}. To fix, build it in "
        "backends/torch/model.py, as every type in harness.spec.LAYER_TYPES is."
    )


def build_module(spec: ModelSpec, keys: DropoutKeys | None = None, bn_statistics: str = "float32") -> nn.Module:
    """The module of ``spec``; with ``keys``, dropout draws shared masks (else torch's own generator);
    ``bn_statistics``: what training-mode BatchNorm computes in (RuntimeOptions.bn_statistics)."""
    infos = infer_shapes(spec)
    slots = {spec.layers[index].name: slot for slot, index in enumerate(dropout_layer_indices(spec))}
    modules: dict[str, nn.Module] = {}
    check_flattened_merges(spec, "torch", infos)  # the preflight refuses it first; a guard for other callers
    for index, layer in enumerate(spec.layers):
        modules[layer.name] = _module(
            layer, infos[spec.inputs_of(index)[0]], keys, slots.get(layer.name, 0), bn_statistics
        )
    if spec.is_chain():
        return nn.Sequential(OrderedDict(modules))  # named children: export/load find layers by name
    return GraphModule(modules, [(l.name, spec.inputs_of(i)) for i, l in enumerate(spec.layers)])


def forward_to(model: nn.Module, layer: str) -> nn.Module:
    """A module that runs ``model`` (a :func:`build_module`) only as far as ``layer``'s output and returns it: the
    layers ``layer`` depends on, in the order ``model`` runs them, sharing its modules (parameters, buffers, modes).
    What Keras' submodel to the layer computes and what harness.model_cost.forward_macs_to counts."""
    children = dict(model.named_children())
    order = [name for name, _ in model.plan] if isinstance(model, GraphModule) else list(children)
    if layer not in order:
        raise ValueError(
            f"Expected a layer of the model. Received: {layer!r}. To fix, give one of its layers: {order}."
        )
    if not isinstance(model, GraphModule):  # a chain: every layer up to it
        return nn.Sequential(OrderedDict((name, children[name]) for name in order[: order.index(layer) + 1]))
    needed = {layer}
    for name, sources in reversed(model.plan[: order.index(layer) + 1]):  # inputs come earlier in the plan
        if name in needed:
            needed.update(sources)
    plan = [(name, sources) for name, sources in model.plan if name in needed]
    return GraphModule({name: model.layers[name] for name, _ in plan}, plan)


def module_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """A parameter or buffer of ``module`` by name (typed: a Module's attributes are Tensor | Module)."""
    tensor = getattr(module, name)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"Expected a tensor at {type(module).__name__}.{name}. Received: {type(tensor).__name__}. To fix, give "
            "the name of one of the module's parameters or buffers."
        )
    return tensor


def _copy_into(module: nn.Module, attribute: str, array: np.ndarray) -> None:
    module_tensor(module, attribute).copy_(torch.from_numpy(array))


def layer_module(model: nn.Module, name: str) -> nn.Module:
    module = model.layers[name] if isinstance(model, GraphModule) else getattr(model, name)
    if isinstance(module, nn.Sequential):  # explicit padding + the conv or pool that owns the layer's output
        return module[1]
    return module


def flat_origin(spec: ModelSpec, infos: dict[str, TensorInfo], index: int) -> tuple[int, int, int] | None:
    """The (H, W, C) map a layer's flat input was flattened from, where PyTorch's C,H,W order differs: a Dense
    kernel's rows and a BatchNorm's or PReLU's per-feature vectors are reordered between the layouts."""
    origin = infos[spec.inputs_of(index)[0]].flattened_from
    return origin if origin is not None and channels_first_order_differs(origin) else None


@torch.no_grad()
def load_weights(model: nn.Module, spec: ModelSpec, weights: NeutralWeights) -> None:
    check_weights(spec, weights)
    infos = infer_shapes(spec)
    for index, layer in enumerate(spec.layers):
        w = {k.split("/", 1)[1]: v for k, v in weights.items() if k.split("/", 1)[0] == layer.name}
        if not w:
            continue
        module = layer_module(model, layer.name)
        put = functools.partial(_copy_into, module)
        if isinstance(layer, Conv2D):
            put("weight", conv_kernel_to_torch(w["kernel"]))
        elif isinstance(layer, Dense):
            put("weight", dense_kernel_to_torch(w["kernel"], flat_origin(spec, infos, index)))
        elif isinstance(layer, Activation):  # prelu
            put("weight", flat_features_to_torch(w["alpha"], flat_origin(spec, infos, index)))
            continue
        elif isinstance(layer, BatchNorm):
            origin = flat_origin(spec, infos, index)
            for param, attribute in BATCHNORM_TENSORS:
                put(attribute, flat_features_to_torch(w[param], origin))
            continue
        if "bias" in w:
            put("bias", w["bias"])


@torch.no_grad()
def export_weights(model: nn.Module, spec: ModelSpec) -> NeutralWeights:
    infos = infer_shapes(spec)
    out: NeutralWeights = {}

    def host(module: nn.Module, attribute: str) -> np.ndarray:
        return host_array(module_tensor(module, attribute).detach().to("cpu").numpy())

    for index, layer in enumerate(spec.layers):
        if isinstance(layer, Activation) and layer.kind == "prelu":
            alpha = host(layer_module(model, layer.name), "weight")
            out[f"{layer.name}/alpha"] = flat_features_from_torch(alpha, flat_origin(spec, infos, index))
            continue
        if not isinstance(layer, (Conv2D, Dense, BatchNorm)):
            continue
        module = layer_module(model, layer.name)
        if isinstance(layer, Conv2D):
            out[f"{layer.name}/kernel"] = conv_kernel_from_torch(host(module, "weight"))
        elif isinstance(layer, Dense):
            out[f"{layer.name}/kernel"] = dense_kernel_from_torch(
                host(module, "weight"), flat_origin(spec, infos, index)
            )
        else:
            origin = flat_origin(spec, infos, index)
            for param, attribute in BATCHNORM_TENSORS:
                out[f"{layer.name}/{param}"] = flat_features_from_torch(host(module, attribute), origin)
            continue
        if module.bias is not None:
            out[f"{layer.name}/bias"] = host(module, "bias")
    return out
