"""Build a Keras functional model from a neutral ModelSpec; neutral weights map 1:1 to Keras' layouts."""

from __future__ import annotations

import keras
import numpy as np

from harness.spec import (
    Activation, Add, AvgPool2D, BatchNorm, Concat, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, Layer,
    MaxPool2D, ModelSpec,
)
from harness.weights import NeutralWeights, check_weights

_PARAM_ORDER = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNorm": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _activation(layer: Activation) -> keras.layers.Layer:
    if layer.kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=layer.alpha if layer.alpha is not None else 0.01, name=layer.name)
    if layer.kind == "elu":
        return keras.layers.ELU(alpha=layer.alpha if layer.alpha is not None else 1.0, name=layer.name)
    return keras.layers.Activation(layer.kind, name=layer.name)


def _conv(layer: Conv2D, x):
    (pt, pb), (pl, pr) = layer.padding
    kh, kw = layer.kernel_size
    symmetric_same = layer.strides == (1, 1) and (pt, pb) == (kh // 2, kh // 2) and (pl, pr) == (kw // 2, kw // 2) and kh % 2 and kw % 2
    padding = "valid"
    if symmetric_same:
        padding = "same"  # identical to explicit symmetric padding at stride 1 with odd kernels
    elif any((pt, pb, pl, pr)):
        # TF's "same" pads asymmetrically at stride > 1; explicit zero padding keeps the neutral meaning.
        x = keras.layers.ZeroPadding2D(((pt, pb), (pl, pr)), name=f"{layer.name}__pad")(x)
    return keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides, padding=padding,
                               use_bias=layer.use_bias, name=layer.name)(x)


def _apply(layer: Layer, inputs: list, seed: int):
    if isinstance(layer, Conv2D):
        return _conv(layer, inputs[0])
    if isinstance(layer, Add):
        return keras.layers.Add(name=layer.name)(inputs)
    if isinstance(layer, Concat):
        return keras.layers.Concatenate(axis=-1, name=layer.name)(inputs)
    (x,) = inputs
    if isinstance(layer, Dense):
        return keras.layers.Dense(layer.units, use_bias=layer.use_bias, name=layer.name)(x)
    if isinstance(layer, Activation):
        return _activation(layer)(x)
    if isinstance(layer, MaxPool2D):
        return keras.layers.MaxPooling2D(layer.pool_size, strides=layer.strides or layer.pool_size, padding="valid", name=layer.name)(x)
    if isinstance(layer, AvgPool2D):
        return keras.layers.AveragePooling2D(layer.pool_size, strides=layer.strides or layer.pool_size, padding="valid", name=layer.name)(x)
    if isinstance(layer, GlobalAvgPool2D):
        return keras.layers.GlobalAveragePooling2D(name=layer.name)(x)
    if isinstance(layer, Flatten):
        return keras.layers.Flatten(name=layer.name)(x)
    if isinstance(layer, Dropout):
        return keras.layers.Dropout(layer.rate, seed=seed, name=layer.name)(x)
    if isinstance(layer, BatchNorm):
        # Keras' momentum is the decay of the running statistics (torch's momentum = 1 - decay).
        return keras.layers.BatchNormalization(momentum=layer.decay, epsilon=layer.epsilon, name=layer.name)(x)
    raise ValueError(f"Expected a layer type the tensorflow backend knows. Received: {type(layer).__name__}.")


def build_model(spec: ModelSpec, seed: int) -> keras.Model:
    inputs = keras.Input(shape=spec.input_shape, name="input")
    values = {"input": inputs}
    for index, layer in enumerate(spec.layers):
        # Each dropout layer gets its own seed derived from the trial seed: reproducible, never global.
        values[layer.name] = _apply(layer, [values[s] for s in spec.inputs_of(index)], seed * 1000 + index)
    return keras.Model(inputs, values[spec.output_name], name=spec.name)


def load_weights(model: keras.Model, spec: ModelSpec, weights: NeutralWeights) -> None:
    check_weights(spec, weights)
    for layer in spec.layers:
        kind = type(layer).__name__
        if kind not in _PARAM_ORDER:
            continue
        arrays = [weights[f"{layer.name}/{p}"] for p in _PARAM_ORDER[kind] if f"{layer.name}/{p}" in weights]
        model.get_layer(layer.name).set_weights(arrays)


def export_weights(model: keras.Model, spec: ModelSpec) -> NeutralWeights:
    out: NeutralWeights = {}
    for layer in spec.layers:
        kind = type(layer).__name__
        if kind not in _PARAM_ORDER:
            continue
        arrays = model.get_layer(layer.name).get_weights()
        names = [p for p in _PARAM_ORDER[kind] if p != "bias" or getattr(layer, "use_bias", True)]
        for name, array in zip(names, arrays):
            out[f"{layer.name}/{name}"] = np.asarray(array, dtype=np.float32).copy()
    return out
