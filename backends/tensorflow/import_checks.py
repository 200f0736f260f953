"""What a Keras model holds that the neutral spec cannot, found before conversion (backends/tensorflow/importer.py).

The spec is the layers' arithmetic alone: how a layer trains (penalties, constraints, freezing) is xfbench's to set,
alike in both backends, and a layer's weights are its own. Each finding is (what, how to fix), for the importer's
UnsupportedModelError, which names the layer; none is dropped in silence, as they were, training another network.
"""

from __future__ import annotations

from typing import Any

from backends.tensorflow.framework import keras

_REGULARIZERS = tuple(
    f"{weight}_regularizer" for weight in ("kernel", "bias", "depthwise", "pointwise", "gamma", "beta", "alpha")
)
_CONSTRAINTS = tuple(
    f"{weight}_constraint" for weight in ("kernel", "bias", "depthwise", "pointwise", "gamma", "beta", "alpha")
)
_FREEZING = (
    "To fix, leave the layer trainable and use the feature_extraction strategy, freeze_early with --freeze-groups N, "
    "or transfer (--frozen-epochs): xfbench freezes layer groups itself, alike in both backends."
)
NESTED_MODEL_HINT = (
    "To fix, flatten the nested model's layers into the outer one (call each layer of the inner model on the outer "
    "model's tensors, or list them in the outer keras.Sequential): xfbench converts one flat layer graph."
)
SHARED_WEIGHTS_HINT = (
    "To fix, create a separate layer for each use: shared weights (a layer applied more than once) are not "
    "supported, as the neutral spec gives each layer its own weights."
)
FINAL_ACTIVATION_HINT = (
    "To fix, end the model with Dense(num_classes) and no activation (a final softmax is dropped, as the loss holds "
    "it); for a binary task, Dense(1) and no activation, with --classes A,B --binary-positive B: xfbench's loss "
    "applies the softmax (or, for a binary task, the sigmoid) to the model's logits."
)


def training_setting(layer: keras.layers.Layer) -> tuple[str, str] | None:
    """A per-layer training setting of ``layer`` the spec cannot hold, as (what, how to fix); None where none."""
    for attribute in _REGULARIZERS:
        if (value := getattr(layer, attribute, None)) is not None:
            return (
                f"{attribute}={type(value).__name__}",
                "To fix, remove it and pass xfbench's --l1 / --l2 (on every kernel).",
            )
    if (value := getattr(layer, "activity_regularizer", None)) is not None:
        return (
            f"activity_regularizer={type(value).__name__}",
            "To fix, remove it: xfbench has no activity penalty (--l1 / --l2 penalise the kernels).",
        )
    for attribute in _CONSTRAINTS:
        if (value := getattr(layer, attribute, None)) is not None:
            return (
                f"{attribute}={type(value).__name__}",
                "To fix, remove it and pass xfbench's --max-norm (a max-norm constraint on each unit's incoming "
                "kernel).",
            )
    if type(layer).__name__ in ("Dropout", "AlphaDropout") and layer.noise_shape is not None:
        return (
            f"{type(layer).__name__} with noise_shape {tuple(layer.noise_shape)} (a mask shared across axes)",
            "To fix, remove noise_shape (--dropout sets the rate): the spec's Dropout drops each element on its own.",
        )
    if type(layer).__name__ == "BatchNormalization" and getattr(layer, "renorm", False):
        return (
            "BatchNormalization with renorm=True (batch renormalisation)",
            "To fix, remove renorm=True: the spec's BatchNorm normalises by each batch's own statistics.",
        )
    if not layer.trainable:
        return "trainable=False", _FREEZING
    return _frozen_part(layer)


def _frozen_part(layer: keras.layers.Layer) -> tuple[str, str] | None:
    """Part of a trainable layer frozen, as torch's requires_grad=False on one parameter is refused: LoRA (the
    kernel frozen, low-rank factors trained beside it) or a variable set trainable=False. They converted as a plain,
    fully trained layer. BatchNorm's moving mean and variance are statistics, not trained weights: they pass."""
    if getattr(layer, "lora_enabled", False):
        return (
            f"lora_rank={getattr(layer, 'lora_rank', None)} (LoRA: the kernel frozen, low-rank factors trained)",
            _FREEZING,
        )
    statistics = [getattr(layer, name, None) for name in ("moving_mean", "moving_variance")]
    frozen = [w for w in layer.non_trainable_weights if not any(w is s for s in statistics)]
    if frozen:
        return f"{frozen[0].name}.trainable=False (variable {frozen[0].path!r} frozen)", _FREEZING
    return None


def shared_layer(config: dict[str, Any]) -> str | None:
    """The first layer of a functional config called on more than one input (its weights shared by the calls)."""
    return next((e["name"] for e in config["layers"] if len(e.get("inbound_nodes", [])) > 1), None)


def input_sizes(
    model: keras.Model, inbound: dict[str, list[str]], input_shape: tuple[int, int, int]
) -> dict[str, tuple[int, int]]:
    """Each layer's input height and width for the trial's input, where the model was declared for any size
    (keras.Input((None, None, C))): "same" padding is set by them, and Keras' graph holds None. Empty for a model
    of a declared size, whose layers hold theirs. Propagation stops at a layer Keras cannot size; the importer
    refuses a padding it then cannot compute."""
    declared = [tuple(tensor.shape) for tensor in model.inputs]
    if all(None not in shape[1:] for shape in declared):
        return {}
    outputs: dict[str, tuple] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for layer in model.operations:  # a + b and keras.ops calls too: the layers after them need their sizes
        if type(layer).__name__ == "InputLayer":
            outputs[layer.name] = (None, *input_shape)
            continue
        shapes = [outputs[source] for source in inbound[layer.name] if source in outputs]
        if len(shapes) != len(inbound[layer.name]) or not shapes:
            continue
        if len(shapes[0]) == 4 and None not in shapes[0][1:3]:
            sizes[layer.name] = (int(shapes[0][1]), int(shapes[0][2]))
        if not isinstance(layer, keras.layers.Layer):
            # an operation the importer converts (an Add, a Concatenate, an activation) keeps its first input's
            # height and width and gives the channels its graph holds; it refuses any other
            channels = tuple(layer.output.shape)[-1:]
            outputs[layer.name] = (*shapes[0][:-1], *channels) if len(shapes[0]) == 4 else tuple(layer.output.shape)
            continue
        try:
            outputs[layer.name] = tuple(layer.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes))
        except Exception:  # noqa: BLE001 - a layer Keras cannot size: those after it keep no size (see above)
            continue
    return sizes
