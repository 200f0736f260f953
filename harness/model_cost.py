"""What a model costs, from its spec alone: parameters and forward multiply-accumulates per layer and in total.

MACs follow the convention of torchvision's published figures (the weights' ``_ops`` meta, called GFLOPS there)
and fvcore: the multiply-accumulates of convolutions and dense layers, per sample. A conv output element costs
(in_channels / groups) x kh x kw MACs, a dense output in_features. BatchNorm, activations, pooling, adds and
concatenations are left out: they are memory-bound, and well under 1 % of the conv MACs of the zoo's networks.
Training costs about three forward passes (the backward pass computes gradients for inputs and for weights),
less what frozen layers and the first layer's input gradient spare (:func:`step_macs`); achieved training FLOP/s
= 2 x step MACs x samples/s (:func:`achieved_gflops`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from harness.shapes import infer_shapes
from harness.spec import Conv2D, Dense, ModelSpec
from harness.weights import is_trainable_param, parameter_shapes

FLOPS_PER_MAC = 2
TRAINING_PASSES = 3  # forward + backward with respect to inputs + backward with respect to weights


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # the spec layer type
    group: str
    output_shape: tuple[int, ...]  # without the batch axis
    params: int  # trainable parameters
    macs: int  # forward multiply-accumulates per sample


@dataclass(frozen=True)
class ModelCost:
    layers: tuple[LayerCost, ...]
    # BatchNorm's moving means and variances: variables, not parameters (torchvision's count leaves them out, Keras'
    # count_params() adds them), so the table can say why its total is below Keras'
    statistics: int = 0

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def forward_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def model_cost(spec: ModelSpec) -> ModelCost:
    infos = infer_shapes(spec)
    params: dict[str, int] = {}
    statistics = 0
    for key, shape in parameter_shapes(spec).items():
        if is_trainable_param(key):
            layer_name = key.split("/")[0]
            params[layer_name] = params.get(layer_name, 0) + int(np.prod(shape))
        else:
            statistics += int(np.prod(shape))
    rows = []
    for index, layer in enumerate(spec.layers):
        out = infos[layer.name].shape
        in_channels = infos[spec.inputs_of(index)[0]].shape[-1]
        macs = 0
        if isinstance(layer, Conv2D):
            macs = math.prod(out) * (in_channels // layer.groups) * math.prod(layer.kernel_size)
        elif isinstance(layer, Dense):
            macs = in_channels * layer.units
        rows.append(
            LayerCost(layer.name, type(layer).__name__, layer.group, tuple(out), params.get(layer.name, 0), macs)
        )
    return ModelCost(tuple(rows), statistics)


def step_macs(spec: ModelSpec, frozen: Collection[str] = ()) -> int:
    """Multiply-accumulates per sample of one training step with the layers ``frozen`` (names) frozen: the forward
    pass through every layer; the gradient with respect to a layer's input wherever a trainable layer lies below it
    (the work a step needs: autograd computes no gradient that no trainable weight needs, nor does a traced
    TensorFlow step once pruned, so a frozen backbone under a new head costs its forward pass only); the gradient
    with respect to the weights of each trainable layer. Each backward product costs what the layer's forward pass
    does. With nothing frozen: three forward passes less the first layer's input gradient."""
    cost = model_cost(spec)
    frozen = set(frozen)
    carries_gradient: dict[str, bool] = {}  # a layer's output depends on a trainable weight
    total = 0
    for index, (layer, layer_cost) in enumerate(zip(spec.layers, cost.layers, strict=True)):
        trainable = layer_cost.params > 0 and layer.name not in frozen
        below = any(carries_gradient.get(name, False) for name in spec.inputs_of(index))
        carries_gradient[layer.name] = trainable or below
        total += layer_cost.macs * (1 + int(below) + int(trainable))
    return total


def forward_macs_to(spec: ModelSpec, layer: str) -> int:
    """Multiply-accumulates per sample of the forward pass up to ``layer``'s output: the layers it depends on."""
    cost = {c.name: c.macs for c in model_cost(spec).layers}
    index = {l.name: i for i, l in enumerate(spec.layers)}
    if layer not in index:
        raise ValueError(
            f"Expected a layer of {spec.name}. Received: {layer!r}. To fix, give one of its layers: {list(index)}."
        )
    needed: set[str] = set()
    stack = [layer]
    while stack:
        name = stack.pop()
        if name in index and name not in needed:
            needed.add(name)
            stack.extend(spec.inputs_of(index[name]))
    return sum(cost[name] for name in needed)


def achieved_gflops(macs_per_sample: float, samples_per_s: float) -> float:
    """Achieved GFLOP/s of work costing ``macs_per_sample`` multiply-accumulates per sample."""
    return FLOPS_PER_MAC * macs_per_sample * samples_per_s / 1e9


def training_memory_floor(spec: ModelSpec, batch_size: int, variable_bytes: int, activation_bytes: int) -> int:
    """Bytes below which no framework can train ``spec`` on batches of ``batch_size``: every parameter and buffer
    once, and one batch's input and largest layer output. A floor, not an estimate: the frameworks also hold
    gradients, optimizer state and the activations the backward pass needs, often ten times as much."""
    infos = infer_shapes(spec)
    variables = sum(math.prod(shape) for shape in parameter_shapes(spec).values())
    largest = max(math.prod(infos[layer.name].shape) for layer in spec.layers)
    return variable_bytes * variables + activation_bytes * batch_size * (math.prod(spec.input_shape) + largest)
