"""Build a Keras functional model from a neutral ModelSpec; neutral weights map 1:1 to Keras' layouts."""

from __future__ import annotations

import re

import numpy as np

from backends.tensorflow import input_layers
from backends.tensorflow.dropout import DropoutKeys, SharedDropout
from backends.tensorflow.framework import keras, tf
from harness.dropout_rng import layout_hashes
from harness.seeds import native_dropout_seed
from harness.shapes import adaptive_is_uniform, adaptive_windows, infer_shapes
from harness.spec import (
    PRELU_INIT,
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

SharedDropoutPlan = tuple[DropoutKeys, int, np.ndarray]  # the keys, the layer's slot, its element hashes

_PARAM_ORDER = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNorm": ("gamma", "beta", "moving_mean", "moving_variance"),
}


class TorchPReLU(keras.layers.PReLU):
    """PReLU as PyTorch computes it, where(x > 0, x, a·x): its derivative at x = 0 is a. Keras' form,
    relu(x) − a·relu(−x), has derivative 0 there, and exact zeros are common (zero biases on blank pixels)."""

    def call(self, inputs):
        return keras.ops.where(inputs > 0, inputs, self.alpha * inputs)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _torch_selu(x):
    # PyTorch's SELU takes the negative branch at x = 0 (derivative scale·alpha ≈ 1.758); tf.nn.selu takes the
    # positive one (derivative scale ≈ 1.051). Writing it with where() on x > 0 gives PyTorch's derivative.
    return _SELU_SCALE * keras.ops.where(x > 0, x, _SELU_ALPHA * (keras.ops.exp(keras.ops.minimum(x, 0.0)) - 1.0))


def _activation(layer: Activation, spatial: bool) -> keras.layers.Layer:
    if layer.kind == "selu":
        return keras.layers.Activation(_torch_selu, name=layer.name)
    if layer.kind == "prelu":
        # One slope per channel: shared over H and W for feature maps, as PyTorch's PReLU(num_parameters=C).
        return TorchPReLU(
            alpha_initializer=keras.initializers.Constant(PRELU_INIT),
            shared_axes=[1, 2] if spatial else None,
            name=layer.name,
        )
    if layer.kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=layer.alpha if layer.alpha is not None else 0.01, name=layer.name)
    if layer.kind == "elu":
        return keras.layers.ELU(alpha=layer.alpha if layer.alpha is not None else 1.0, name=layer.name)
    return keras.layers.Activation(layer.kind, name=layer.name)


class GroupedConv2D(keras.layers.Conv2D):
    """Keras' Conv2D(groups=...) with the same kernel, (kh, kw, in / groups, filters), computed without XLA.

    Keras 3 runs every grouped convolution through a tf.function(jit_compile=True) (its TensorFlow backend's
    conv(): "grouped convolutions are broken on CPU without XLA"); on CPU that measured 9 to 38 times slower
    than this layer (docs/design.md). So: depthwise (groups = input channels) is tf.nn.depthwise_conv2d, the op
    of Keras' DepthwiseConv2D, on the kernel reshaped (no transpose) to its (kh, kw, in, multiplier): both put
    output channel c·k + m after input channel c. Other groups are one plain convolution per group,
    concatenated. Being a Conv2D, the layer keeps one kernel layout for loading, penalties and max-norm."""

    def convolution_op(self, inputs, kernel):
        channels = inputs.shape[-1]
        kh, kw = self.kernel_size
        if self.groups == channels:
            depthwise = keras.ops.reshape(kernel, (kh, kw, channels, self.filters // channels))
            return keras.ops.depthwise_conv(inputs, depthwise, strides=self.strides, padding=self.padding)
        parts = zip(
            keras.ops.split(inputs, self.groups, axis=-1), keras.ops.split(kernel, self.groups, axis=-1), strict=True
        )
        return keras.ops.concatenate(
            [keras.ops.conv(x, k, strides=self.strides, padding=self.padding) for x, k in parts], axis=-1
        )


def _conv(layer: Conv2D, x):
    (pt, pb), (pl, pr) = layer.padding
    kh, kw = layer.kernel_size
    symmetric_same = (
        layer.strides == (1, 1)
        and (pt, pb) == (kh // 2, kh // 2)
        and (pl, pr) == (kw // 2, kw // 2)
        and kh % 2
        and kw % 2
    )
    padding = "valid"
    if symmetric_same:
        padding = "same"  # identical to explicit symmetric padding at stride 1 with odd kernels
    elif any((pt, pb, pl, pr)):
        # TF's "same" pads asymmetrically at stride > 1; explicit zero padding keeps the neutral meaning.
        x = keras.layers.ZeroPadding2D(((pt, pb), (pl, pr)), name=f"{layer.name}__pad")(x)
    cls = GroupedConv2D if layer.groups > 1 else keras.layers.Conv2D
    return cls(
        layer.filters,
        layer.kernel_size,
        strides=layer.strides,
        padding=padding,
        use_bias=layer.use_bias,
        groups=layer.groups,
        name=layer.name,
    )(x)


class MinusInfPadding2D(keras.layers.Layer):
    """Pads H and W with -inf: before a valid max pool, PyTorch's MaxPool2d(padding=...) (padded cells never win).
    Keras' own pools offer only TF's "same", which pads by the stride's arithmetic, not by a chosen amount."""

    def __init__(self, padding, **kwargs) -> None:
        super().__init__(**kwargs)
        self.padding = tuple(tuple(p) for p in padding)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.padding, (0, 0)), constant_values=float("-inf"))

    def compute_output_shape(self, input_shape):
        (pt, pb), (pl, pr) = self.padding
        n, h, w, c = input_shape
        return (n, None if h is None else h + pt + pb, None if w is None else w + pl + pr, c)


def _max_pool(layer: MaxPool2D, x):
    if any(p for pair in layer.padding for p in pair):
        x = MinusInfPadding2D(layer.padding, name=f"{layer.name}__pad")(x)
    return keras.layers.MaxPooling2D(
        layer.pool_size, strides=layer.strides or layer.pool_size, padding="valid", name=layer.name
    )(x)


class TorchAdaptiveAvgPool2D(keras.layers.Layer):
    """PyTorch's AdaptiveAvgPool2d where the windows are not a plain pool (unequal, overlapping or repeated cells).

    Averaging over a window of rows × a window of columns is separable: out = R · x · Cᵀ per channel, where row i
    of R holds 1/len over input rows [start_i, end_i) (harness.shapes.adaptive_windows). Exact, gradients
    included; the constant matrices are not weights. Keras' own AdaptiveAveragePooling2D computes the same windows
    (checked) but arrived in Keras 3.13, and TensorFlow 2.21 also runs with older Keras 3 releases."""

    def __init__(self, input_hw: tuple[int, int], output_size: tuple[int, int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.input_hw, self.output_size = tuple(input_hw), tuple(output_size)
        self._rows, self._cols = (
            _window_means(size, out) for size, out in zip(self.input_hw, self.output_size, strict=True)
        )

    def call(self, inputs):
        # float64 inputs average in float64; float32 and the mixed types in float32, as einsum promotes them
        dtype = "float64" if inputs.dtype == "float64" else "float32"
        rows, cols = (keras.ops.cast(m, dtype) for m in (self._rows, self._cols))
        x = keras.ops.einsum("ih,nhwc->niwc", rows, inputs)
        return keras.ops.einsum("jw,niwc->nijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])


def _window_means(size: int, out: int) -> np.ndarray:
    matrix = np.zeros((out, size), np.float64)  # rounded to float32 when cast for a float32 model
    for i, (start, end) in enumerate(adaptive_windows(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _adaptive_avg_pool(layer: AdaptiveAvgPool2D, x):
    (h, w), (oh, ow) = x.shape[1:3], layer.output_size
    if adaptive_is_uniform(h, oh) and adaptive_is_uniform(w, ow):  # equal adjacent windows: a plain pool
        return keras.layers.AveragePooling2D((h // oh, w // ow), padding="valid", name=layer.name)(x)
    return TorchAdaptiveAvgPool2D((h, w), layer.output_size, name=layer.name)(x)


class MCDropout(keras.layers.Dropout):
    """Dropout that stays on in inference: MC dropout while BatchNorm keeps its running statistics."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


class MCAlphaDropout(keras.layers.AlphaDropout):
    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


class TorchBatchNorm(keras.layers.BatchNormalization):
    """BatchNorm as PyTorch defines it in training mode: the running variance tracks the unbiased batch variance
    (the default; Keras' biased one with ``unbiased_running_variance=False``); the batch is normalised with the
    biased variance either way. The training path computes in ``statistics_dtype``: float32 (TensorFlow's own
    reductions, as Keras' BatchNorm) or float64 (RuntimeOptions.bn_statistics, the same in every backend).
    Inference uses the running statistics, as Keras does."""

    def __init__(self, unbiased_running_variance: bool, statistics_dtype: str = "float32", **kwargs) -> None:
        super().__init__(**kwargs)
        self.unbiased_running_variance = unbiased_running_variance
        self.statistics_dtype = tf.as_dtype(statistics_dtype)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        # float32 at least, as Keras' own BatchNorm computes under mixed precision; float64 in a float64 model
        compute_dtype = inputs.dtype
        dtype = compute_dtype if compute_dtype.size > self.statistics_dtype.size else self.statistics_dtype
        x = tf.cast(inputs, dtype)
        mean, variance = tf.nn.moments(x, self._reduction_axes)  # two-pass, as ATen's
        estimate = variance
        if self.unbiased_running_variance:
            count = tf.cast(tf.reduce_prod(tf.shape(x, out_type=tf.int64)[:-1]), dtype)  # int64: no overflow
            estimate = variance * (count / (count - 1.0))
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, estimate)):
            updated = tf.cast(moving, dtype) * self.momentum + tf.stop_gradient(batch) * (1.0 - self.momentum)
            moving.assign(tf.cast(updated, moving.dtype))
        beta, gamma = tf.cast(self.beta, dtype), tf.cast(self.gamma, dtype)
        outputs = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        return tf.cast(outputs, compute_dtype)


def _dropout(layer: Dropout, seed: int, mc: bool, shared: SharedDropoutPlan | None) -> keras.layers.Layer:
    if shared is not None:
        keys, slot, hashed = shared
        return SharedDropout(layer.rate, layer.kind, slot, hashed, keys, always_on=mc, name=layer.name)
    if layer.kind == "alpha":
        cls = MCAlphaDropout if mc else keras.layers.AlphaDropout
    else:
        cls = MCDropout if mc else keras.layers.Dropout
    return cls(layer.rate, seed=seed, name=layer.name)


def _pipeline_dtype() -> str:
    """The input pipeline's dtype: the global policy's variable dtype. Under a mixed policy the neutral pixels stay
    float32, as under torch's autocast (whose index_select, mul and sub run in float32), and the first real layer
    casts them, so both backends feed it the same pixels; --precision float64 keeps them float64, exactly."""
    return keras.config.dtype_policy().variable_dtype


def _apply(
    layer: Layer,
    inputs: list,
    seed: int,
    mc: bool = False,
    shared: SharedDropoutPlan | None = None,
    bn_statistics: str = "float32",
):
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
        return _activation(layer, spatial=len(x.shape) == 4)(x)
    if isinstance(layer, MaxPool2D):
        return _max_pool(layer, x)
    if isinstance(layer, AdaptiveAvgPool2D):
        return _adaptive_avg_pool(layer, x)
    if isinstance(layer, ZeroPad2D):
        return keras.layers.ZeroPadding2D(layer.padding, name=layer.name)(x)
    if isinstance(layer, AvgPool2D):
        return keras.layers.AveragePooling2D(
            layer.pool_size, strides=layer.strides or layer.pool_size, padding="valid", name=layer.name
        )(x)
    if isinstance(layer, GlobalAvgPool2D):
        return keras.layers.GlobalAveragePooling2D(name=layer.name)(x)
    if isinstance(layer, Flatten):
        return keras.layers.Flatten(name=layer.name)(x)
    if isinstance(layer, Resize2D):
        return input_layers.Resize(
            tuple(x.shape[1:3]), layer.output_size, layer.resized, name=layer.name, dtype=_pipeline_dtype()
        )(x)
    if isinstance(layer, RepeatChannels):
        return input_layers.RepeatChannels(layer.repeats, name=layer.name, dtype=_pipeline_dtype())(x)
    if isinstance(layer, Normalize):
        return input_layers.Normalize(*normalize_factors(layer), name=layer.name, dtype=_pipeline_dtype())(x)
    if isinstance(layer, Dropout):
        return _dropout(layer, seed, mc, shared)(x)
    if isinstance(layer, BatchNorm):
        # Keras' momentum is the decay of the running statistics (torch's momentum = 1 - decay).
        return TorchBatchNorm(
            layer.running_variance == "unbiased",
            bn_statistics,
            momentum=layer.decay,
            epsilon=layer.epsilon,
            name=layer.name,
        )(x)
    raise ValueError(
        f"Expected a layer type the tensorflow backend knows. Received: {type(layer).__name__}. To fix, build it in "
        "backends/tensorflow/model.py, as every type in harness.spec.LAYER_TYPES is."
    )


def build_keras_model(
    spec: ModelSpec, seed: int, mc: bool = False, keys: DropoutKeys | None = None, bn_statistics: str = "float32"
) -> keras.Model:
    """The Keras model of ``spec``; ``mc=True`` builds the MC-dropout twin whose dropout never switches off.

    With ``keys``, dropout draws shared masks (harness.dropout_rng); without, Keras' own seeded generator.
    ``bn_statistics``: the float type BatchNorm's batch statistics accumulate in (RuntimeOptions.bn_statistics)."""
    inputs = keras.Input(shape=spec.input_shape, name="input")
    values = {"input": inputs}
    infos = infer_shapes(spec)
    slot = 0
    for index, layer in enumerate(spec.layers):
        shared = None
        if keys is not None and isinstance(layer, Dropout):
            info = infos[spec.inputs_of(index)[0]]
            shared = (keys, slot, layout_hashes(info.shape, info.flattened_from, channels_first=False))
            slot += 1
        # Native dropout layers get their own seed derived from the trial seed: reproducible, never global.
        inputs_of = [values[s] for s in spec.inputs_of(index)]
        values[layer.name] = _apply(layer, inputs_of, native_dropout_seed(seed, index), mc, shared, bn_statistics)
    # Keras model names are TF name scopes: imported specs ("torchvision:resnet18", file paths) are made to fit.
    return keras.Model(inputs, values[spec.output_name], name=re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name))


def load_weights(model: keras.Model, spec: ModelSpec, weights: NeutralWeights) -> None:
    check_weights(spec, weights)
    for layer in spec.layers:
        kind = type(layer).__name__
        if f"{layer.name}/alpha" in weights:  # prelu: Keras keeps (1, 1, C) for feature maps
            target = model.get_layer(layer.name)
            target.set_weights([weights[f"{layer.name}/alpha"].reshape(target.get_weights()[0].shape)])
            continue
        if kind not in _PARAM_ORDER:
            continue
        arrays = [weights[f"{layer.name}/{p}"] for p in _PARAM_ORDER[kind] if f"{layer.name}/{p}" in weights]
        model.get_layer(layer.name).set_weights(arrays)


def export_weights(model: keras.Model, spec: ModelSpec) -> NeutralWeights:
    out: NeutralWeights = {}
    for layer in spec.layers:
        kind = type(layer).__name__
        if isinstance(layer, Activation) and layer.kind == "prelu":
            out[f"{layer.name}/alpha"] = host_array(model.get_layer(layer.name).get_weights()[0]).reshape(-1)
            continue
        if kind not in _PARAM_ORDER:
            continue
        arrays = model.get_layer(layer.name).get_weights()
        names = [p for p in _PARAM_ORDER[kind] if p != "bias" or getattr(layer, "use_bias", True)]
        for name, array in zip(names, arrays, strict=True):
            out[f"{layer.name}/{name}"] = host_array(array)
    return out
