"""Keras models (keras.applications or a user's functional / Sequential model) as neutral specs and weights.

Implements harness.importers.FrameworkImporter from the model's config (layers and their inbound tensors) and the
layers' weights. Keras' layouts are the neutral ones (NHWC, HWIO, (in, out), H,W,C flattening), so kernels move
unchanged but for depthwise kernels; "same" padding becomes TensorFlow's explicit per-side padding; a layer's
``activation`` (a name, or an activation layer such as ReLU(max_value=6.0)) becomes its own Activation layer; a
final softmax is dropped (the spec outputs logits), as the torch importer drops a final nn.Softmax; any other final
activation (a sigmoid) is refused. What the spec cannot hold is refused, naming the layer: per-layer training
settings (regularizers, constraints, a Dropout noise_shape, trainable=False on a layer or one of its variables, LoRA),
a layer applied more than once, a nested model, several inputs (backends/tensorflow/import_checks.py). An Identity
layer converts as nothing; AlphaDropout as the spec's alpha Dropout.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from typing import Any

import numpy as np

from backends.tensorflow import import_checks
from backends.tensorflow.framework import keras
from harness.importers import (
    ModelInputError,
    UnsupportedModelError,
    check_converted_weights,
    closest_names,
    layer_settings_checked,
)
from harness.spec import (
    MODEL_INPUT,
    Activation,
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
from harness.weights import NeutralWeights

SUPPORTED = (
    "InputLayer",
    "Conv2D (dilation 1)",
    "DepthwiseConv2D",
    "Dense",
    "BatchNormalization (last axis)",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU (one slope per channel)",
    "Activation",
    "MaxPooling2D",
    "AveragePooling2D (valid)",
    "GlobalAveragePooling2D",
    "ZeroPadding2D",
    "Flatten",
    "Dropout",
    "AlphaDropout",
    "Identity",
    "Add",
    "Concatenate (last axis)",
    "a final softmax or log_softmax (activation or Softmax layer: dropped, the spec outputs logits)",
)
# keras.applications' models whose conversion benchmarks/import_parity.py measures (docs/measurements.md)
CONVERTING_MODELS = ("keras:MobileNetV2", "keras:ResNet50", "keras:DenseNet121", "keras:VGG16")
_ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "elu": "elu",
    "selu": "selu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "leaky_relu": "leaky_relu",
    "linear": "linear",
}

Size = tuple[int, int] | None  # a layer's input height and width for the trial (None: the layer's own shape)


def application_names() -> list[str]:
    """The models keras.applications builds (MobileNetV2, ResNet50, ...), sorted."""
    return sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))


def load_reference(name: str, input_shape: tuple[int, int, int], num_classes: int, seed: int) -> keras.Model:
    factory = getattr(keras.applications, name, None)
    if not callable(factory):
        raise ModelInputError(
            f"Expected a keras.applications model name. Received: {name!r}. {closest_names(name, application_names())}"
        )
    keras.utils.set_random_seed(seed)  # the applications draw their initial weights from Keras' global seed
    return build_application(factory, name, input_shape, num_classes)


def build_application(factory: Any, name: str, input_shape: tuple[int, ...], classes: int) -> keras.Model:
    """keras.applications' ``name`` with random weights for ``input_shape``; ModelInputError (exit 2) for a shape
    it refuses (InceptionV3 below 75x75: a ValueError that ended the worker with a traceback)."""
    try:
        model = factory(weights=None, input_shape=tuple(input_shape), classes=classes, classifier_activation=None)
    except ValueError as exc:
        raise ModelInputError(
            f"Expected an input shape keras.applications.{name} can be built for. Received: {tuple(input_shape)}, "
            f"which Keras refuses ({str(exc).strip()}). To fix, pass an --input-size it takes."
        ) from None
    _refuse_built_in_preprocessing(model, name)
    return model


def _refuse_built_in_preprocessing(model: keras.Model, name: str) -> None:
    """EfficientNet*, EfficientNetV2*, MobileNetV3* and ConvNeXt* scale and normalise their own input in their first
    layers. The conversion refused the first of them telling the user to remove it, which no one can do to a
    published architecture: the application as a whole is what the spec cannot take."""
    kinds = (keras.layers.Rescaling, keras.layers.Normalization)
    layer = next((layer for layer in model.layers if isinstance(layer, kinds)), None)
    if layer is not None:
        raise UnsupportedModelError(
            "Keras",
            f"keras.applications.{name}'s built-in preprocessing ({type(layer).__name__})",
            layer.name,
            SUPPORTED,
            f"To fix, use an application without them ({', '.join(CONVERTING_MODELS)}) or a zoo model (xfbench "
            f"list models): keras:{name} is not supported, as xfbench feeds pixels already scaled (to [0, 1] for "
            "the image datasets) and normalises them in its input pipeline (--normalize imagenet|tf|caffe), alike in "
            "both backends, and the application's own preprocessing layers cannot be taken out of it.",
        )


def _declared_inputs(model: keras.Model) -> list | None:
    """A functional model's inputs; None for a Sequential built without an input (it takes the trial's shape) and
    a subclassed model (no layer graph): Keras raises AttributeError on ``inputs`` for both."""
    try:
        return list(model.inputs)
    except AttributeError:
        return None


def input_channels(model: keras.Model) -> int | None:
    """The channels of the model's image input (None for an input that is not an image, or not declared)."""
    inputs = _declared_inputs(model)
    shape = tuple(inputs[0].shape) if inputs else ()
    return int(shape[-1]) if len(shape) == 4 and shape[-1] is not None else None


def check_form(model: object) -> None:
    """A channels_first model had its channels read off the wrong axis (the user was told to feed it its image width
    as channels); a float64 one trained in float32 unsaid, a mixed-precision one was called a converter's fault; a
    layer (or another Keras object) was told to change the input size."""
    if not isinstance(model, keras.Model):
        layer = " (a layer, not a model)" if isinstance(model, keras.layers.Layer) else ""
        raise ModelInputError(
            f"Expected the factory to return a keras.Model. Received: {type(model).__module__}."
            f"{type(model).__qualname__}{layer}. To fix, return the model the layers make up: "
            "keras.Sequential([keras.Input(shape), ...layers]) or keras.Model(inputs, outputs)."
        )
    first = next((layer for layer in model.layers if getattr(layer, "data_format", None) == "channels_first"), None)
    if first is not None:
        raise ModelInputError(
            f"Expected a Keras model laid out channels_last: xfbench feeds both backends images as (height, width, "
            f"channels). Received: layer {first.name!r} ({type(first).__name__}) with data_format='channels_first' "
            f"(the default where keras.json or keras.config.set_image_data_format says channels_first). To fix, build "
            f"its layers with data_format='channels_last', or set image_data_format to channels_last before building."
        )
    computing = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]  # computes nothing
    other = next((layer for layer in computing if _policy_name(layer) not in ("float32", "")), None)
    if other is not None:
        raise ModelInputError(
            f"Expected a Keras model in float32 (xfbench sets each trial's precision itself, alike in both backends). "
            f"Received: layer {other.name!r} ({type(other).__name__}) with dtype policy {_policy_name(other)!r}. To "
            "fix, build the model in float32 (no dtype= on its layers, keras.config.set_dtype_policy('float32')) "
            "and choose the precision with --precision (float64, mixed_bfloat16, mixed_float16)."
        )


def _policy_name(layer: keras.layers.Layer) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return str(getattr(policy, "name", "") or "")


def reference_logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's own inference forward up to its logits: a final softmax, which the conversion drops (as a
    Softmax layer, or as the last layer's activation), is left out here too, as torch's reference_logits does."""
    last = model.layers[-1]
    if _is_softmax_layer_over_classes(last):
        if isinstance(model, keras.Sequential):  # which has no model.input to end a sub-model at
            y = x
            for layer in model.layers[:-1]:
                y = layer(y, training=False)
            return np.asarray(y, dtype=np.float32)
        return np.asarray(keras.Model(model.inputs, last.input)([x], training=False), dtype=np.float32)
    activation = getattr(last, "activation", None)
    if not _is_softmax(activation):
        return np.asarray(model(x, training=False), dtype=np.float32)
    last.activation = keras.activations.linear  # the layer's own computation without it, restored below
    try:
        return np.asarray(model(x, training=False), dtype=np.float32)
    finally:
        last.activation = activation


def _is_softmax_layer_over_classes(layer: keras.layers.Layer) -> bool:
    """A Softmax layer over the classes' axis: the last, or axis 1 of an (N, classes) output."""
    over_classes = (-1, [-1]) + ((1, [1]) if len(layer.output.shape) == 2 else ())
    return type(layer).__name__ == "Softmax" and layer.axis in over_classes


def _is_softmax(activation: object) -> bool:
    """A softmax (or log-softmax) over the last axis, by name, as a Softmax layer or as an Activation layer."""
    if isinstance(activation, keras.layers.Layer):
        kind = type(activation).__name__
        if kind == "Activation":
            return _is_softmax(activation.activation)
        return kind == "Softmax" and activation.axis in (-1, [-1])
    return getattr(activation, "__name__", None) in ("softmax", "log_softmax")


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME: output ceil(size / stride), the odd pixel of padding at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padding(layer: keras.layers.Layer, kernel: tuple[int, int], strides: tuple[int, int], size: Size) -> tuple:
    """Explicit padding; ``size`` is the layer's input height and width for the trial's input where the model was
    declared for any size (None: the layer's own input shape holds them)."""
    if layer.padding == "valid":
        return ((0, 0), (0, 0))
    if layer.padding != "same":
        raise _unsupported(f"padding {layer.padding!r}", layer)
    h, w = size if size is not None else layer.input.shape[1:3]
    if h is None or w is None:
        raise _unsupported(
            "'same' padding on an input of unknown height and width",
            layer,
            "To fix, declare the input's size: keras.Input((H, W, C)).",
        )
    return (_same_padding(h, kernel[0], strides[0]), _same_padding(w, kernel[1], strides[1]))


def _unsupported(op: str, layer: keras.layers.Layer, hint: str = "") -> UnsupportedModelError:
    return UnsupportedModelError("Keras", op, layer.name, SUPPORTED, hint)


# A layer group is the whole leading name part of keras.applications' layers: conv2 of conv2_block1_1_conv, Conv1
# (MobileNetV2's stem), block_3, pool2 (DenseNet's transitions), stage4, stem, expanded_conv; block2 of EfficientNet's
# block2a and block2b. Keras' default names conv2d, conv2d_1 are no group "conv2".
_GROUP_NAME = re.compile(r"(block_?\d+)[a-z]?(?=_|$)|(conv\d+|pool\d+|stage\d+|stem|expanded_conv)(?=_|$)", re.I)


def _group(name: str) -> str:
    """The group ``name`` gives, '' where it gives none (bn_Conv1, zero_padding2d, post_bn, fc1): _filled_groups
    puts such a layer in the group around it."""
    found = _GROUP_NAME.match(name)
    return (found.group(1) or found.group(2)) if found else ""


def _filled_groups(layers: list[Layer]) -> list[Layer]:
    """A layer whose name gives no group joins the group of the layer before it, and those before the first named
    layer join its group; "features" where no name gives one. They were all one group "features", wherever they
    sat: first in order, so --freeze-groups 1 froze DenseNet121's padding and final BatchNorm and trained its stem,
    and MobileNetV2's stem with its last convolution."""
    current = next((layer.group for layer in layers if layer.group), "features")
    out = []
    for layer in layers:
        current = layer.group or current
        out.append(replace(layer, group=current))
    return out


def _activation(name: str, group: str, kind: str, layer: keras.layers.Layer) -> Activation | None:
    if kind == "linear":
        return None
    if kind not in _ACTIVATIONS:
        raise _unsupported(f"activation {kind!r}", layer)
    alpha = _function_slope(layer) if kind == "leaky_relu" else None
    return Activation(name=name, group=group, kind=_ACTIVATIONS[kind], alpha=alpha)


def _function_slope(layer: keras.layers.Layer) -> float:
    """The negative slope of a layer's ``activation="leaky_relu"``: the function's own default (Keras 3's
    keras.activations.leaky_relu takes 0.2), read from it; the spec's default is torch's 0.01."""
    try:
        parameter = inspect.signature(layer.activation).parameters.get("negative_slope")
    except (TypeError, ValueError):  # a callable without a signature: nothing to read the slope from
        parameter = None
    if parameter is None or isinstance(parameter.default, bool) or not isinstance(parameter.default, (int, float)):
        raise _unsupported(
            "activation 'leaky_relu' without a numeric negative_slope default",
            layer,
            "To fix, use a LeakyReLU layer (its negative_slope is read) or keras.activations.leaky_relu.",
        )
    return float(parameter.default)


def _layers_of(layer: keras.layers.Layer, group: str, last: bool, size: Size) -> list[Layer]:
    """The spec layers one Keras layer becomes (none for an identity, two for a layer with an activation)."""
    name, kind = layer.name, type(layer).__name__
    if last and _is_softmax_layer_over_classes(layer):
        return []  # a Softmax layer over the classes: the spec outputs logits, the softmax is part of the loss
    if kind in ("Conv2D", "DepthwiseConv2D"):
        main: Layer = _conv_layer(layer, name, kind, group, size)
    elif kind == "Dense" and len(layer.input.shape) == 4:
        # Keras applies a Dense on a feature map to each pixel's channels: exactly a 1x1 convolution (its kernel
        # (C, U) is the conv's (1, 1, C, U)); read as a Dense, it failed shape inference with advice to change the
        # input size
        main = Conv2D(name=name, group=group, filters=layer.units, kernel_size=(1, 1), use_bias=layer.use_bias)
    elif kind == "Dense":
        main = Dense(name=name, group=group, units=layer.units, use_bias=layer.use_bias)
    elif kind == "BatchNormalization":
        axis = layer.axis[0] if isinstance(layer.axis, (list, tuple)) and len(layer.axis) == 1 else layer.axis
        rank = len(layer.input.shape)  # axis 1 of a flat (N, C) tensor is its last, as axis 3 of a map
        if not isinstance(axis, int) or axis % rank != rank - 1 or not (layer.center and layer.scale):
            raise _unsupported(
                "BatchNormalization off the last axis or without center/scale",
                layer,
                "To fix, use axis=-1, center=True, scale=True (their defaults): the spec's BatchNorm normalises the "
                "channels (last) axis and learns a scale and an offset.",
            )
        return [
            BatchNorm(
                name=name,
                group=group,
                decay=float(layer.momentum),
                epsilon=float(layer.epsilon),
                running_variance="biased",
            )
        ]
    elif kind in ("ReLU", "LeakyReLU", "ELU", "PReLU"):
        return [_activation_layer(layer, name, kind, group)]
    elif kind == "Activation":
        return _activation_of(layer, name, group, last)
    else:
        return _shape_layers(layer, name, kind, group, size)
    return [main] + _activation_of(layer, f"{name}_activation", group, last)


def _activation_of(layer: keras.layers.Layer, name: str, group: str, last: bool) -> list[Layer]:
    """``layer.activation`` as a spec Activation named ``name``: none for linear, nor for a final softmax (the spec
    outputs logits; the softmax is part of the loss). One given as a layer object converts as that layer standing
    alone: it was read as "linear" (it has no __name__) and dropped, the network then linear in both backends."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return []
    if isinstance(activation, keras.layers.Layer):
        return _activation_object(activation, layer, name, group, last)
    kind = getattr(activation, "__name__", None)
    if not isinstance(kind, str):
        raise _unsupported(
            f"activation {activation!r}, a callable without a __name__",
            layer,
            'To fix, give the activation by name (activation="relu") or as a ReLU, LeakyReLU or ELU layer.',
        )
    if last and kind in ("softmax", "log_softmax"):
        return []
    act = _activation(name, group, kind, layer)
    return [act] if act is not None else []


def _activation_object(
    activation: keras.layers.Layer, owner: keras.layers.Layer, name: str, group: str, last: bool
) -> list[Layer]:
    """An activation layer given as ``owner``'s activation, converted as it would be on its own; what that
    refuses is refused at ``owner``, the layer the user wrote."""
    kind = type(activation).__name__
    if kind == "Activation":
        return _activation_of(activation, name, group, last)
    if last and kind == "Softmax" and activation.axis in (-1, [-1]):
        return []
    if kind not in ("ReLU", "LeakyReLU", "ELU"):  # a PReLU's slopes are weights of its own, which owner lacks
        raise _unsupported(
            f"activation given as a {kind} layer",
            owner,
            "To fix, give it by name, as a ReLU, LeakyReLU or ELU layer, or as its own layer after this one.",
        )
    try:
        return [_activation_layer(activation, name, kind, group)]
    except UnsupportedModelError as refused:
        raise _unsupported(f"{refused.op} given as the activation", owner, refused.hint) from None


def _conv_layer(layer: keras.layers.Layer, name: str, kind: str, group: str, size: Size) -> Conv2D:
    if tuple(layer.dilation_rate) != (1, 1):
        raise _unsupported(f"{kind} with dilation {layer.dilation_rate}", layer, "To fix, use dilation_rate=1.")
    kernel, strides = tuple(layer.kernel_size), tuple(layer.strides)
    channels = layer.input.shape[-1]
    filters = channels * layer.depth_multiplier if kind == "DepthwiseConv2D" else layer.filters
    groups = channels if kind == "DepthwiseConv2D" else layer.groups
    return Conv2D(
        name=name,
        group=group,
        filters=filters,
        kernel_size=kernel,
        strides=strides,
        padding=_padding(layer, kernel, strides, size),
        use_bias=layer.use_bias,
        groups=groups,
    )


def _activation_layer(layer: keras.layers.Layer, name: str, kind: str, group: str) -> Activation:
    """The activation layers with parameters: ReLU (capped, leaky), LeakyReLU, ELU, PReLU."""
    if kind == "ReLU":
        if float(layer.threshold or 0) != 0:
            raise _unsupported("ReLU with a threshold", layer, "To fix, use threshold=0 (its default).")
        if layer.max_value is not None and float(layer.max_value) != 6.0:
            raise _unsupported(
                f"ReLU capped at {layer.max_value}", layer, "To fix, cap it at 6.0 or leave it uncapped."
            )
        slope = float(layer.negative_slope or 0)
        if slope and layer.max_value is not None:
            raise _unsupported("ReLU with both a cap and a negative slope", layer)
        kind_name = "relu6" if layer.max_value is not None else ("leaky_relu" if slope else "relu")
        return Activation(name=name, group=group, kind=kind_name, alpha=slope or None)
    if kind == "LeakyReLU":
        return Activation(name=name, group=group, kind="leaky_relu", alpha=float(layer.negative_slope))
    if kind == "ELU":
        return Activation(name=name, group=group, kind="elu", alpha=float(layer.alpha))
    if len(layer.input.shape) == 4 and list(layer.shared_axes or []) != [1, 2]:  # PReLU
        raise _unsupported("PReLU with other than one slope per channel", layer, "To fix, use shared_axes=[1, 2].")
    return Activation(name=name, group=group, kind="prelu")


def _shape_layers(layer: keras.layers.Layer, name: str, kind: str, group: str, size: Size) -> list[Layer]:
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool, strides = tuple(layer.pool_size), tuple(layer.strides or layer.pool_size)
        if kind == "AveragePooling2D":
            if layer.padding != "valid":
                raise _unsupported("AveragePooling2D with 'same' padding", layer, "To fix, use padding='valid'.")
            return [AvgPool2D(name=name, group=group, pool_size=pool, strides=strides)]
        return [
            MaxPool2D(
                name=name, group=group, pool_size=pool, strides=strides, padding=_padding(layer, pool, strides, size)
            )
        ]
    if kind == "GlobalAveragePooling2D":
        if layer.keepdims:
            raise _unsupported(
                "GlobalAveragePooling2D(keepdims=True)", layer, "To fix, use keepdims=False (its default)."
            )
        return [GlobalAvgPool2D(name=name, group=group)]
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        return [ZeroPad2D(name=name, group=group, padding=((int(top), int(bottom)), (int(left), int(right))))]
    if kind == "Flatten":
        return [Flatten(name=name, group=group)]
    if kind == "Dropout":
        return [Dropout(name=name, group=group, rate=float(layer.rate))]
    if kind == "AlphaDropout":  # SELU's: the spec's alpha dropout, drawn by harness.dropout_rng in both backends
        return [Dropout(name=name, group=group, rate=float(layer.rate), kind="alpha")]
    if kind == "Identity":
        return []  # passes its input on, as torch's nn.Identity converts
    if kind == "Add":
        return [Add(name=name, group=group)]
    if kind == "Concatenate":
        rank = len(layer.input[0].shape)  # axis 1 of flat (N, F) tensors is their last, as axis 3 of maps
        if not isinstance(layer.axis, int) or layer.axis % rank != rank - 1:
            raise _unsupported(
                f"Concatenate along axis {layer.axis}", layer, "To fix, concatenate the last axis: axis=-1."
            )
        return [Concat(name=name, group=group)]
    if kind == "Rescaling":  # the first layer of most keras.io image examples
        raise _unsupported(
            kind,
            layer,
            "To fix, remove it: xfbench feeds pixels already scaled (to [0, 1] for the image datasets), and "
            "--normalize imagenet|tf|caffe scales them as a pretrained network expects, alike in both backends.",
        )
    raise _unsupported(kind, layer)


# keras.ops' activations (and keras.activations.relu's operation, "ReLU") that are the spec's activations as they
# stand; Elu and LeakyRelu carry their alpha and slope
_OPERATION_ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Selu": "selu"}
_OPERATION_HINT = (
    "To fix, write it as the layer that computes it: layers.Add() for a + b of two tensors of one shape, "
    "layers.Concatenate() for keras.ops.concatenate on the channels, an activation layer (layers.ReLU(), "
    "layers.Activation('sigmoid')) or keras.ops.relu, relu6, sigmoid, tanh, elu, selu, leaky_relu; a final "
    "softmax as the last Dense's activation (it is dropped: the loss applies it). xfbench's spec has no layer for "
    "other operations (scaling by a constant, subtraction, a product of tensors)."
)


def _operation_layers(operation: Any, entry: dict[str, Any], group: str) -> list[Layer]:
    """A Keras 3 operation the functional model applies to tensors without a layer (``a + b``, ``a * 2.0``,
    ``keras.ops.relu(a)``): the spec's Add, Concat or Activation where it is one (Keras' own operation, on tensors
    alone), refused naming it otherwise (a user's own Operation too, whatever its class is called)."""
    kind = type(operation).__name__
    node = (entry.get("inbound_nodes") or [{}])[0]  # an operation is applied once: each call makes a new one
    arguments = [node.get("args", []), node.get("kwargs", {})]
    shapes, constants = _tensor_shapes(arguments), _constants(arguments)
    keras_own = type(operation).__module__.startswith(("keras.src.ops.", "keras.src.activations."))
    converted = _keras_operation(operation, kind, group, shapes) if keras_own and not constants else None
    if converted is not None:
        return [converted]
    given = f" with {', '.join(map(repr, constants[:3]))}" if constants else ""
    what = f"{kind}{given} (a Keras operation, not a layer: a Python operator such as + or * on tensors, or keras.ops)"
    raise _unsupported(what, operation, _OPERATION_HINT)


def _keras_operation(operation: Any, kind: str, group: str, shapes: list[tuple]) -> Layer | None:
    """The spec layer Keras' own operation on the tensors of ``shapes`` (and no constant) computes, None for none."""
    if kind == "Add" and len(shapes) == 2:
        if shapes[0] != shapes[1]:  # numpy's broadcasting, which the spec's Add does not do
            raise _unsupported(
                f"Add of tensors of shapes {shapes[0]} and {shapes[1]} (broadcast)",
                operation,
                "To fix, add two tensors of one shape (layers.Add()).",
            )
        return Add(name=operation.name, group=group)
    if kind == "Concatenate" and len(shapes) > 1 and operation.axis in (-1, len(shapes[0]) - 1):
        return Concat(name=operation.name, group=group)
    return _operation_activation(operation, kind, group) if len(shapes) == 1 else None


def _operation_activation(operation: Any, kind: str, group: str) -> Activation | None:
    """The activation a keras.ops (or keras.activations) operation computes, None for another operation."""
    if kind in _OPERATION_ACTIVATIONS:
        return Activation(name=operation.name, group=group, kind=_OPERATION_ACTIVATIONS[kind])
    if kind == "Elu":
        return Activation(name=operation.name, group=group, kind="elu", alpha=float(operation.alpha))
    if kind == "LeakyRelu":
        return Activation(name=operation.name, group=group, kind="leaky_relu", alpha=float(operation.negative_slope))
    if kind == "ReLU":  # keras.activations.relu(x, ...): the ReLU layer's settings, refused as that layer's are
        return _activation_layer(operation, operation.name, "ReLU", group)
    return None


def _tensor_shapes(value: Any) -> list[tuple]:
    """The shapes of the Keras tensors a node's arguments hold, in order (None for a size declared any)."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [tuple(value["config"]["shape"])]
    if isinstance(value, dict):
        return [shape for item in value.values() for shape in _tensor_shapes(item)]
    if isinstance(value, (list, tuple)):
        return [shape for item in value for shape in _tensor_shapes(item)]
    return []


def _constants(value: Any) -> list[Any]:
    """What a node's arguments hold besides Keras tensors (the 2.0 of ``a * 2.0``); None counts as nothing."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return []
    if isinstance(value, dict):
        return [c for item in value.values() for c in _constants(item)]
    if isinstance(value, (list, tuple)):
        return [c for item in value for c in _constants(item)]
    return [] if value is None else [value]


def _inbound(config: dict[str, Any]) -> dict[str, list[str]]:
    """Layer name -> the names of the layers whose outputs it reads (from the functional config)."""
    return {
        entry["name"]: [name for node in entry.get("inbound_nodes", []) for name in _read_layers(node.get("args", []))]
        for entry in config["layers"]
    }


def _read_layers(value: Any) -> list[str]:
    """The layers whose outputs a node's arguments (Keras tensors in nested lists) read, in order."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [value["config"]["keras_history"][0]]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _read_layers(item)]
    return []


def _weights(model: keras.Model, spec: ModelSpec) -> NeutralWeights:
    out: NeutralWeights = {}
    for layer in spec.layers:
        if not isinstance(layer, (Conv2D, Dense, BatchNorm, Activation)) or layer.name not in _names(model):
            continue
        source = model.get_layer(layer.name)
        arrays = [np.asarray(a, np.float32) for a in source.get_weights()]
        if isinstance(layer, BatchNorm):
            for param, array in zip(("gamma", "beta", "moving_mean", "moving_variance"), arrays, strict=True):
                out[f"{layer.name}/{param}"] = array.copy()
        elif isinstance(layer, Activation) and layer.kind == "prelu":
            out[f"{layer.name}/alpha"] = arrays[0].reshape(-1).copy()
        elif isinstance(layer, (Conv2D, Dense)):
            kernel = arrays[0]
            if type(source).__name__ == "DepthwiseConv2D":  # (kh, kw, in, k) -> (kh, kw, 1, in·k): channel c·k + m
                kernel = kernel.reshape(*kernel.shape[:2], 1, -1)
            if isinstance(layer, Conv2D) and kernel.ndim == 2:  # a Dense on a feature map: a 1x1 convolution
                kernel = kernel.reshape(1, 1, *kernel.shape)
            out[f"{layer.name}/kernel"] = kernel.copy()
            if layer.use_bias:
                out[f"{layer.name}/bias"] = arrays[1].copy()
    return out


def _names(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers}


def convert(model: keras.Model, input_shape: tuple[int, int, int], name: str) -> tuple[ModelSpec, NeutralWeights]:
    model = _graph_model(model, input_shape, name)
    with layer_settings_checked():
        layers = _converted_layers(model, input_shape, name)
    if layers and isinstance(layers[-1], Activation):  # a final sigmoid, tanh, ...: not logits over the classes
        raise UnsupportedModelError(
            "Keras",
            f"a final {layers[-1].kind} activation",
            model.operations[-1].name,
            SUPPORTED,
            import_checks.FINAL_ACTIVATION_HINT,
        )
    if not layers or not isinstance(layers[-1], Dense):
        raise UnsupportedModelError(
            "Keras",
            "a model not ending in a Dense layer",
            name,
            SUPPORTED,
            "To fix, end the model with Dense(classes): xfbench trains classifiers.",
        )
    spec = ModelSpec(
        name=name,
        input_shape=tuple(input_shape),
        num_classes=layers[-1].units,
        layers=tuple(_with_classifier_group(_filled_groups(layers))),
    )
    weights = _weights(model, spec)
    check_converted_weights(spec, weights)
    return spec, weights


def _graph_model(model: keras.Model, input_shape: tuple[int, int, int], name: str) -> keras.Model:
    """``model`` as a functional model of one input, whose layer graph the conversion reads."""
    inputs = _declared_inputs(model)
    if inputs is None and isinstance(model, keras.Sequential):
        model.build((None, *input_shape))  # layers without a keras.Input: built for the trial's input, as a run would
        inputs = _declared_inputs(model)
    if inputs is None:
        raise ModelInputError(
            f"Expected a functional or Sequential Keras model, whose layer graph xfbench converts. Received: model "
            f"{name}, a subclass of keras.Model ({type(model).__name__}), whose call() is Python code with no layer "
            "graph. To fix, build it with the functional API (keras.Input, layers called on tensors, "
            "keras.Model(inputs, outputs)) or as keras.Sequential."
        )
    if len(inputs) != 1:  # every InputLayer became the spec's one "input": the inputs were merged in silence
        raise ModelInputError(
            f"Expected a Keras model with one input, the image batch xfbench feeds it. Received: model {name} with "
            f"{len(inputs)} inputs ({', '.join(str(tuple(t.shape)) for t in inputs)}). To fix, build the model on "
            "one keras.Input (the images)."
        )
    if len(model.outputs) != 1:  # read as one, the conversion failed on a layer name or numpy's shapes
        raise ModelInputError(
            f"Expected a Keras model with one output, the logits xfbench trains. Received: model {name} with "
            f"{len(model.outputs)} outputs ({', '.join(str(tuple(t.shape)) for t in model.outputs)}). To fix, build "
            "a model whose one output is the classifier's logits (an auxiliary head belongs in a model of its own)."
        )
    _check_declared_size(tuple(inputs[0].shape), input_shape, name)
    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs)  # a built Sequential is a chain: same graph, named inputs
    return model


def _check_declared_size(declared: tuple, input_shape: tuple[int, int, int], name: str) -> None:
    """ModelInputError for an image input declared for another height or width than the trial feeds: "same"
    padding, and every shape after it, were set for the declared size, so the network converted would not be the one
    Keras runs on the trial's images. A size declared None (keras.Input((None, None, C))) takes the trial's. A flat
    input fed images failed at its first Dense, its message wrapped in advice to change the input size."""
    if len(declared) == 2 and len(input_shape) == 3:
        height, width, channels = input_shape
        raise ModelInputError(
            f"Expected a Keras model whose input takes the images xfbench feeds, keras.Input(({height}, {width}, "
            f"{channels})). Received: model {name}, whose keras.Input is declared flat (shape {declared[1:]}). To fix, "
            f"declare keras.Input(({height}, {width}, {channels})) and put layers.Flatten() before its first Dense."
        )
    if len(declared) != 4:
        return
    height, width = input_shape[0], input_shape[1]
    if declared[1] in (None, height) and declared[2] in (None, width):
        return
    size = "x".join("any" if d is None else str(d) for d in declared[1:3])
    square = f"--input-size {declared[1]}" if declared[1] == declared[2] else "an input size the model was built for"
    raise ModelInputError(
        f"Expected a Keras model declared for the trial's {height}x{width} images. Received: model {name}, whose "
        f"keras.Input is declared for {size} (shape {declared[1:]}). To fix, pass {square}, or declare the input "
        "for any size: keras.Input((None, None, C))."
    )


def _converted_layers(model: keras.Model, input_shape: tuple[int, int, int], name: str) -> list[Layer]:
    """The spec layers of a functional model's graph, in its layers' order, before grouping."""
    try:
        config = model.get_config()
    except (TypeError, ValueError, NotImplementedError) as exc:  # an object Keras cannot serialize (a partial)
        raise ModelInputError(
            f"Expected a Keras model whose config Keras can write: xfbench reads the layer graph from it. Received: "
            f"model {name}, whose get_config() fails ({type(exc).__name__}: {exc}). To fix, give activations by "
            "name or as Keras layers, and give custom objects a get_config()."
        ) from None
    shared = import_checks.shared_layer(config)
    if shared is not None:  # its second call read its own output before it was produced: a KeyError
        raise _unsupported("a layer applied more than once", model.get_layer(shared), import_checks.SHARED_WEIGHTS_HINT)
    inbound = _inbound(config)
    sizes = import_checks.input_sizes(model, inbound, input_shape)
    entries = {entry["name"]: entry for entry in config["layers"]}
    produced: dict[str, str] = {}  # Keras layer or operation -> the spec layer holding its output
    layers: list[Layer] = []
    # every operation of the graph, a + b and keras.ops.relu(x) included: Keras 3 keeps those in model.operations
    # and the config, not in model.layers, and reading only the layers failed on their names with a KeyError
    final = model.operations[-1].name
    for operation in model.operations:
        if type(operation).__name__ == "InputLayer":
            produced[operation.name] = "input"
            continue
        _check_name(operation)
        sources = tuple(produced[s] for s in inbound[operation.name])
        group = _group(operation.name)
        if isinstance(operation, keras.layers.Layer):
            _check_layer(operation)
            converted = _layers_of(operation, group, operation.name == final, sizes.get(operation.name))
        else:
            converted = _operation_layers(operation, entries[operation.name], group)
        if not converted:  # linear activation: an identity
            produced[operation.name] = sources[0]
            continue
        previous = layers[-1].name if layers else "input"
        first = converted[0]
        if sources != (previous,):
            converted[0] = replace(first, inputs=sources)
        layers.extend(converted)
        produced[operation.name] = converted[-1].name
    return layers


def _check_name(operation: Any) -> None:
    """Refuses a layer (or operation) named as the spec names the model's input: it would shadow that input."""
    if operation.name == MODEL_INPUT:
        raise ModelInputError(
            f"Expected Keras layer names other than {MODEL_INPUT!r}, which xfbench's spec keeps for the model's "
            f"input. Received: a {type(operation).__name__} layer named {MODEL_INPUT!r}. To fix, give that layer "
            "another name (its name= argument)."
        )


def _check_layer(layer: keras.layers.Layer) -> None:
    """Refuses a nested model and a layer's training settings, which the spec cannot hold."""
    if isinstance(layer, keras.Model):
        raise _unsupported(f"a nested model ({type(layer).__name__})", layer, import_checks.NESTED_MODEL_HINT)
    setting = import_checks.training_setting(layer)
    if setting is not None:
        raise _unsupported(setting[0], layer, setting[1])


_DENSE_HEAD = (Dense, Activation, Dropout)


def _with_classifier_group(layers: list[Layer]) -> list[Layer]:
    """The ``classifier`` group: the dense head, from the last Flatten or global pooling on where only Dense,
    Activation and Dropout layers follow it and layers precede it (VGG16's fc1 and fc2 with the predictions, as
    torchvision's vgg16 holds them in its classifier); otherwise the final Dense and the pooling/flatten/dropout layers
    right before it."""
    out = list(layers)
    spatial_end = max((i for i, layer in enumerate(out) if isinstance(layer, (GlobalAvgPool2D, Flatten))), default=0)
    if spatial_end > 0 and all(isinstance(layer, _DENSE_HEAD) for layer in out[spatial_end + 1 :]):
        return out[:spatial_end] + [replace(layer, group="classifier") for layer in out[spatial_end:]]
    index = len(out) - 1
    while index >= 0 and (index == len(out) - 1 or isinstance(out[index], (GlobalAvgPool2D, Flatten, Dropout))):
        out[index] = replace(out[index], group="classifier")
        index -= 1
    return out
