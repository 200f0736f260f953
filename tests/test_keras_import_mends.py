"""A user's Keras model whose layers the neutral spec cannot hold as written is refused, naming the layer and the
fix, or converted to the network Keras runs: an activation given as a layer object was dropped (the network became
linear in both backends), per-layer training settings were dropped, a layer applied twice failed with a KeyError
and the advice to choose an input size, a model declared for any input size failed with a TypeError, a sigmoid
output was said not to end in a Dense layer, several inputs were merged into one and a nested model was refused
with no hint.

The importer's cases run in one TensorFlow process (tests import keras only in a process that imports no torch), as
tests/test_model_import.py runs the Keras importer's own code. What reaches the user through ``model_spec`` runs
``python -m harness.import_worker``'s own code in the session's TensorFlow probe worker (weight_file_probes.python_call)
rather than a fresh TensorFlow process per conversion: what is checked is the refusal. The tests of what the user's
$KERAS_BACKEND or keras.json does to a process start one of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_logits_match_source
from weight_file_probes import python_call

import harness.model_import
from harness.checkpoints import load_checkpoint
from harness.errors import InputError
from harness.model_import import model_spec
from harness.models import ModelOptions

ROOT = Path(__file__).resolve().parents[1]

_MODELS = """
import functools

import keras
from keras import constraints, layers, regularizers


def _chain(*body, num_classes=10, shape=(8, 8, 1)):
    return keras.Sequential([keras.Input(shape), *body, layers.Flatten(), layers.Dense(num_classes, name="out")])


def act_layers():
    return _chain(
        layers.Conv2D(8, 3, padding="same", activation=layers.ReLU(max_value=6.0), name="c1"),
        layers.Flatten(),
        layers.Dense(32, activation=layers.LeakyReLU(negative_slope=0.1), name="h"),
    )


def act_capped_at_3():
    return _chain(layers.Conv2D(8, 3, activation=layers.ReLU(max_value=3.0), name="c1"))


class Capped:  # an activation object without a __name__, which Keras can serialize

    def __call__(self, x):
        return keras.activations.relu(x, max_value=6.0)

    def get_config(self):
        return {}


def act_nameless():
    return _chain(layers.Conv2D(8, 3, activation=Capped(), name="c1"))


def act_partial():
    return _chain(layers.Conv2D(8, 3, activation=functools.partial(keras.activations.relu, max_value=6.0), name="c1"))


def any_size():
    inputs = keras.Input((None, None, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, name="out")(x))


def shared(num_classes=10):
    inputs = keras.Input((8, 8, 1))
    block = layers.Conv2D(8, 3, padding="same", activation="relu", name="block")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    x = layers.Flatten()(block(block(x)))
    return keras.Model(inputs, layers.Dense(10)(x))


def binary():
    return keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(1, activation="sigmoid", name="p")])


def two_inputs():
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    return keras.Model([a, b], layers.Dense(10)(layers.Flatten()(layers.Add()([a, b]))))


def two_outputs():  # an auxiliary head beside the classifier
    inputs = keras.Input((8, 8, 1))
    x = layers.Flatten()(inputs)
    return keras.Model(inputs, [layers.Dense(10)(x), layers.Dense(10)(x)])


def flat_bn_axis_1():  # axis 1 of a flat (N, C) tensor is its last axis
    return keras.Sequential(
        [keras.Input((8, 8, 1)), layers.Flatten(), layers.BatchNormalization(axis=1), layers.Dense(10)]
    )


def nested():
    base = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu")], name="base")
    return keras.Sequential([keras.Input((8, 8, 1)), base, layers.Flatten(), layers.Dense(10)])


def dense_on_map():  # a per-pixel projection: Keras applies the Dense to each pixel's channels
    return _chain(layers.Conv2D(4, 3, name="c1"), layers.Dense(6, activation="relu", name="proj"))


def named_input():  # the spec's layers call the model's input "input"
    return _chain(layers.Conv2D(4, 3, name="input"))


def op_graph():  # Keras 3 operations, not layers: a residual written a + b, keras.ops and keras.activations calls
    inputs = keras.Input((8, 8, 1))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    x = keras.ops.relu(a + b)
    x = keras.activations.relu(x, max_value=6.0)
    x = keras.ops.leaky_relu(x, negative_slope=0.1)
    x = keras.ops.concatenate([x, keras.ops.sigmoid(a)], axis=-1)
    return keras.Model(inputs, layers.Dense(10, name="out")(layers.Flatten()(x)))


def op_any_size():  # a residual a + b in a model declared for any input size: the layers after it are padded
    inputs = keras.Input((None, None, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same", name="a")(inputs) + layers.Conv2D(4, 1, strides=2)(inputs)
    x = layers.Conv2D(4, 3, strides=2, padding="same", name="c")(x)
    return keras.Model(inputs, layers.Dense(10, name="out")(layers.GlobalAveragePooling2D()(x)))


def op_scale():
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    return keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x * 2.0)))


def op_broadcast():  # (8, 8, 4) + (1, 1, 4): numpy broadcasting
    inputs = keras.Input((8, 8, 1))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    return keras.Model(inputs, layers.Dense(10)(layers.Flatten()(a + layers.Conv2D(4, 8, name="b")(inputs))))


def alpha_dropout():  # SELU's dropout: the spec's alpha Dropout
    flat = [keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(16, activation="selu")]
    return keras.Sequential([*flat, layers.AlphaDropout(0.1, name="ad"), layers.Dense(10)])


def alpha_dropout_shared_mask():
    flat = [keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(16, activation="selu")]
    return keras.Sequential([*flat, layers.AlphaDropout(0.1, noise_shape=(1, 16), name="ad"), layers.Dense(10)])


def identity():  # a placeholder layer: passes its input on
    inputs = keras.Input((8, 8, 1))
    x = layers.Identity(name="idn")(layers.Conv2D(4, 3, name="c1")(inputs))
    return keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)))


def bn_no_scale():
    return _chain(layers.Conv2D(4, 3), layers.BatchNormalization(scale=False, name="c1"))


def relu_threshold():
    return _chain(layers.Conv2D(4, 3), layers.ReLU(threshold=0.5, name="c1"))


def concat_flat():  # axis 1 of flat (N, F) tensors is their last
    inputs = keras.Input((8, 8, 1))
    x = layers.Flatten()(inputs)
    x = layers.Concatenate(axis=1, name="cat")([layers.Dense(4)(x), layers.Dense(3)(x)])
    return keras.Model(inputs, layers.Dense(10)(x))


def concat_rows():  # axis 1 of maps is their height
    inputs = keras.Input((8, 8, 1))
    x = layers.Concatenate(axis=1, name="cat")([layers.Conv2D(4, 3)(inputs), layers.Conv2D(4, 3)(inputs)])
    return keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)))


def _conv(**settings):
    return lambda: _chain(layers.Conv2D(4, 3, name="c1", **settings))


def _frozen():
    model = _chain(layers.Conv2D(4, 3, name="c1"))
    model.get_layer("c1").trainable = False
    return model


def _frozen_kernel():  # one variable frozen, the layer trainable
    model = _chain(layers.Conv2D(4, 3, name="c1"))
    model.get_layer("c1").kernel.trainable = False
    return model


def _lora():  # LoRA: the kernel frozen, two low-rank factors trained beside it
    return keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(16, lora_rank=2, name="c1"),
                             layers.Dense(10)])


SETTINGS = {
    "kernel_regularizer": _conv(kernel_regularizer=regularizers.l2(1e-2)),
    "bias_regularizer": _conv(bias_regularizer=regularizers.l1(1e-2)),
    "activity_regularizer": _conv(activity_regularizer=regularizers.l2(1e-2)),
    "kernel_constraint": _conv(kernel_constraint=constraints.MaxNorm(2.0)),
    "bias_constraint": _conv(bias_constraint=constraints.NonNeg()),
    "noise_shape": lambda: _chain(layers.Conv2D(4, 3), layers.Dropout(0.5, noise_shape=(None, 1, 1, 4), name="c1")),
    "trainable=False": _frozen,
    "kernel.trainable=False": _frozen_kernel,
    "lora_rank=2": _lora,
    "renorm=True": lambda: _chain(layers.BatchNormalization(renorm=True, name="c1")),
}
"""

_SCRIPT = """
import json
import sys

import numpy as np

from backends.tensorflow import importer
from harness.backend import load_backend
from harness.config import RuntimeOptions

namespace = {}
exec(sys.stdin.read(), namespace)
names = ("act_layers", "act_capped_at_3", "act_nameless", "act_partial", "any_size", "shared", "binary",
         "two_inputs", "two_outputs", "flat_bn_axis_1", "nested", "dense_on_map", "named_input", "op_graph",
         "op_any_size", "op_scale", "op_broadcast", "alpha_dropout", "alpha_dropout_shared_mask", "identity",
         "bn_no_scale", "relu_threshold", "concat_flat", "concat_rows")
cases = {name: namespace[name] for name in names}
cases.update(namespace["SETTINGS"])
backend = load_backend("tensorflow", RuntimeOptions(threads=1))
x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32) * 10
out = {}
for name, make in cases.items():
    model = make()
    try:
        spec, weights = importer.convert(model, (8, 8, 1), name)
    except Exception as exc:
        out[name] = {"error": type(exc).__name__, "message": str(exc)}
        continue
    out[name] = {"layers": [[layer.name, type(layer).__name__, getattr(layer, "kind", None),
                             getattr(layer, "alpha", None)] for layer in spec.layers]}
    try:  # what it computes, where it builds (a merged two-input model, accepted before, has no one-input forward)
        backend.build(spec, weights, seed=0)
        out[name]["ours"] = backend.predict_logits(x, 256).tolist()
        out[name]["keras"] = importer.reference_logits(model, x).tolist()
    except Exception as exc:
        out[name]["run_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def converted() -> dict:
    """Every case's conversion (or refusal) in one TensorFlow process, as the import worker runs the importer."""
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT)],
        input=_MODELS,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def in_tensorflow_worker(workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """model_spec's conversions (a user's Keras module, a keras: application) in the session's TensorFlow probe
    worker: about 6 s of imports each in a fresh process, under 1 s there."""
    monkeypatch.setattr(harness.model_import, "_fresh_process", python_call(workers, "tensorflow"))


def _refusal(converted: dict, case: str) -> str:
    outcome = converted[case]
    assert "error" in outcome, f"{case} converted: {outcome.get('layers')}"
    assert outcome["error"] in ("UnsupportedModelError", "ModelInputError"), outcome
    return outcome["message"]


def test_an_activation_given_as_a_layer_converts_as_that_layer_and_runs_as_keras_does(converted):
    outcome = converted["act_layers"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    activations = {
        name: (kind, alpha) for name, kind_name, kind, alpha in outcome["layers"] if kind_name == "Activation"
    }
    assert activations == {"c1_activation": ("relu6", None), "h_activation": ("leaky_relu", 0.1)}
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))


def test_an_activation_layer_the_spec_cannot_hold_and_a_nameless_callable_are_refused_not_made_linear(converted):
    capped = _refusal(converted, "act_capped_at_3")
    assert "ReLU capped at 3.0 given as the activation at 'c1'" in capped
    nameless = _refusal(converted, "act_nameless")
    assert "a callable without a __name__ at 'c1'" in nameless and 'activation="relu"' in nameless
    partial = _refusal(converted, "act_partial")  # Keras cannot write its config: the graph is read from it
    assert "get_config() fails" in partial and "give activations by name or as Keras layers" in partial


def test_a_model_declared_for_any_input_size_is_padded_for_the_trials_input(converted):
    outcome = converted["any_size"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))


def test_a_dense_on_a_feature_map_converts_as_the_1x1_convolution_keras_computes(converted):
    """It became a spec Dense on an unflattened map and failed shape inference, with advice to choose another input
    size; Keras applies it to each pixel's channels, which is exactly a 1x1 convolution."""
    outcome = converted["dense_on_map"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert ["proj", "Conv2D"] in [layer[:2] for layer in outcome["layers"]], outcome["layers"]
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))


def test_keras_operations_that_are_spec_layers_convert_and_compute_what_keras_does(converted):
    """a + b, keras.ops.relu and the like are Keras 3 operations, in the graph but not in model.layers: the
    conversion failed with KeyError: 'add' and the advice to choose another input size."""
    for case in ("op_graph", "op_any_size"):
        outcome = converted[case]
        assert "error" not in outcome and "run_error" not in outcome, outcome
        assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))
    assert [tuple(layer[1:]) for layer in converted["op_graph"]["layers"]] == [  # names depend on Keras' counters
        ("Conv2D", None, None),
        ("Conv2D", None, None),
        ("Add", None, None),
        ("Activation", "relu", None),
        ("Activation", "relu6", None),
        ("Activation", "leaky_relu", 0.1),
        ("Activation", "sigmoid", None),
        ("Concat", None, None),
        ("Flatten", None, None),
        ("Dense", None, None),
    ]


def test_a_keras_operation_the_spec_cannot_hold_is_refused_naming_it_and_the_layer_to_write(converted):
    scale = _refusal(converted, "op_scale")
    assert "Received: Multiply with 2.0 (a Keras operation, not a layer" in scale and "at 'multiply'" in scale
    assert "To fix, write it as the layer that computes it: layers.Add() for a + b" in scale
    assert "input size" not in scale
    broadcast = _refusal(converted, "op_broadcast")
    assert "Add of tensors of shapes (None, 8, 8, 4) and (None, 1, 1, 4) (broadcast) at 'add" in broadcast


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_keras_operation_reaches_the_user_named_without_the_input_size_advice(tmp_path, monkeypatch):
    (tmp_path / "op_nets.py").write_text(textwrap.dedent(_MODELS))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:op_nets:op_scale", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "Received: Multiply with 2.0" in message and "at 'multiply" in message, message
    assert "KeyError" not in message and "input size" not in message


def test_a_layer_applied_twice_is_refused_as_shared_weights(converted):
    message = _refusal(converted, "shared")
    assert "a layer applied more than once at 'block'" in message
    assert "To fix, create a separate layer for each use: shared weights (a layer applied more than once)" in message


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_shared_layer_reaches_the_user_without_the_input_size_advice(tmp_path, monkeypatch):
    """Through the import worker, as `xfbench run --model python:...` converts it."""
    (tmp_path / "shared_nets.py").write_text(textwrap.dedent(_MODELS))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:shared_nets:shared", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    assert "a layer applied more than once at 'block'" in str(refused.value)
    assert "input size" not in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "fix"),
    [
        ("kernel_regularizer", "--l1 / --l2"),
        ("bias_regularizer", "--l1 / --l2"),
        ("activity_regularizer", "no activity penalty"),
        ("kernel_constraint", "--max-norm"),
        ("bias_constraint", "--max-norm"),
        ("noise_shape", "remove noise_shape"),
        ("trainable=False", "--freeze-groups"),
        ("kernel.trainable=False", "--freeze-groups"),  # converted as a plain layer, the kernel then trained
        ("lora_rank=2", "--freeze-groups"),  # converted as a plain Dense, its factors dropped
        ("renorm=True", "remove renorm=True"),  # its 7 weights were zipped with BatchNorm's 4: a ValueError
    ],
)
def test_a_per_layer_training_setting_is_refused_naming_the_layer_and_xfbenchs_option(converted, setting, fix):
    message = _refusal(converted, setting)
    assert setting in message and "at 'c1'" in message and fix in message


def test_a_sigmoid_output_is_refused_as_such_with_the_classifier_it_needs(converted):
    message = _refusal(converted, "binary")
    assert "a final sigmoid activation at 'p'" in message
    assert "Dense(num_classes) and no activation" in message and "not ending in a Dense" not in message
    assert "Dense(1) and no activation, with --classes A,B --binary-positive B" in message  # as torch's says


def test_several_inputs_are_refused_and_a_nested_model_is_told_to_flatten(converted):
    assert converted["two_inputs"]["error"] == "ModelInputError"
    assert "with 2 inputs" in converted["two_inputs"]["message"]
    # several outputs: refused as "No such layer" or numpy's "inhomogeneous shape", each told to change the input size
    assert converted["two_outputs"]["error"] == "ModelInputError"
    assert "with 2 outputs ((None, 10), (None, 10))" in converted["two_outputs"]["message"]
    # BatchNormalization(axis=1) after a Flatten normalises the last axis: refused as "off the last axis"
    outcome = converted["flat_bn_axis_1"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert [kind for _, kind, _, _ in outcome["layers"]] == ["Flatten", "BatchNorm", "Dense"]
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))
    nested = _refusal(converted, "nested")
    assert "a nested model (Sequential) at 'base'" in nested and "flatten the nested model's layers" in nested


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_model_declared_for_another_image_size_is_refused_naming_the_input_size_it_needs(tmp_path, monkeypatch):
    """A keras.Input((9, 9, 1)) model trained on 8x8 digits in silence, its "same" padding set for 9x9 ((1, 1) where
    Keras pads 8x8 by (0, 1)): the network both backends trained was not the one Keras runs on those images."""
    (tmp_path / "sized_nets.py").write_text(
        textwrap.dedent(
            """
            import keras
            from keras import layers

            def nine():
                x = keras.Input((9, 9, 1))
                h = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, strides=2, padding="same")(x))
                return keras.Model(x, layers.Dense(10)(h))
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:sized_nets:nine", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "declared for the trial's 8x8 images" in message and "declared for 9x9" in message, message
    assert "pass --input-size 9, or declare the input for any size: keras.Input((None, None, C))" in message
    assert model_spec("python:sized_nets:nine", (9, 9, 1), 10, ModelOptions(), tmp_path / "cache").input_shape == (
        9,
        9,
        1,
    )


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_channels_first_or_not_float32_model_is_refused_as_such(tmp_path, monkeypatch):
    """The review's cases: a channels_first convnet on 8x8 digits was told to "feed it 8 channels (--input-channels
    8)", then, given them, that it was "declared for 1x8"; a float64 model converted to float32 in silence; a
    mixed_bfloat16 layer was refused as "the conversion of one of its layers is wrong: report it"."""
    (tmp_path / "first_nets.py").write_text(
        textwrap.dedent(
            """
            import keras
            from keras import layers

            def first():
                x = keras.Input((1, 8, 8))
                h = layers.Conv2D(4, 3, data_format="channels_first", name="conv")(x)
                h = layers.GlobalAveragePooling2D(data_format="channels_first")(h)
                return keras.Model(x, layers.Dense(10)(h))

            def wide():
                x = keras.Input((8, 8, 1))
                return keras.Model(x, layers.Dense(10, dtype="float64", name="head")(layers.Flatten()(x)))

            def flat():
                x = keras.Input((64,))
                return keras.Model(x, layers.Dense(10)(layers.Dense(16)(x)))

            def under_mixed():  # built under a global mixed policy, every layer that computes given float32
                keras.config.set_dtype_policy("mixed_bfloat16")
                try:
                    x = keras.Input((8, 8, 1))
                    h = layers.Flatten(dtype="float32")(x)
                    return keras.Model(x, layers.Dense(10, dtype="float32")(h))
                finally:
                    keras.config.set_dtype_policy("float32")

            def mixed():
                x = keras.Input((8, 8, 1))
                h = layers.Flatten()(x)
                return keras.Model(x, layers.Dense(10, dtype="mixed_bfloat16", name="head")(h))
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:first_nets:first", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "Expected a Keras model laid out channels_last" in message, message
    assert "Received: layer 'conv' (Conv2D) with data_format='channels_first'" in message, message
    assert "--input-channels" not in message
    # a flat input fed images: told to change the input size, in a message wrapping another
    with pytest.raises(InputError) as refused:
        model_spec("python:first_nets:flat", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "whose keras.Input is declared flat (shape (64,))" in message, message
    assert "declare keras.Input((8, 8, 1)) and put layers.Flatten() before its first Dense" in message, message
    assert message.count("Received:") == 1, message
    # a float64 model trained in float32 unsaid; a mixed-precision one was called a fault of the conversion
    for factory, policy in (("wide", "float64"), ("mixed", "mixed_bfloat16")):
        with pytest.raises(InputError) as refused:
            model_spec(f"python:first_nets:{factory}", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
        message = str(refused.value)
        assert "Expected a Keras model in float32" in message, message
        assert f"Received: layer 'head' (Dense) with dtype policy {policy!r}" in message, message
        assert "report it" not in message
    # its input layer took the global policy, and computes nothing: the model computes in float32
    assert (
        model_spec("python:first_nets:under_mixed", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache").num_classes == 10
    )


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_keras_application_below_its_minimum_input_size_is_bad_input_not_a_crash(tmp_path):
    """keras:InceptionV3 on 8x8 digits raised Keras' ValueError in the conversion process: a worker crash with a
    traceback (exit 1) for what --input-size fixes."""
    with pytest.raises(InputError) as refused:
        model_spec("keras:InceptionV3", (8, 8, 3), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "keras.applications.InceptionV3 can be built for. Received: (8, 8, 3)" in message, message
    assert "Input size must be at least 75x75" in message and "pass an --input-size it takes" in message


@pytest.mark.usefixtures("in_tensorflow_worker")
@pytest.mark.parametrize("name", ["EfficientNetB0", "MobileNetV3Small"])
def test_a_keras_application_with_its_own_preprocessing_is_refused_as_unsupported_not_told_to_remove_it(tmp_path, name):
    """keras:EfficientNetB0 and keras:MobileNetV3Small were refused at their Rescaling layer with "Remove it", which
    no user can do to a published architecture. Refused from the application's structure (no weights needed)."""
    with pytest.raises(InputError) as refused:
        model_spec(f"keras:{name}", (32, 32, 3), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert f"Received: keras.applications.{name}'s built-in preprocessing (Rescaling) at 'rescaling'" in message
    assert f"keras:{name} is not supported, as xfbench feeds pixels already scaled" in message, message
    assert "To fix, use an application without them (keras:MobileNetV2, keras:ResNet50" in message, message
    assert "Remove it" not in message


_KERAS_FACTORIES = """
import keras


def make(num_classes=10):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(x)))


def layer(num_classes=10):
    return keras.layers.Dense(num_classes)
"""

# The conversion process's main, then what that process imported and what $KERAS_BACKEND holds after it.
_CONVERT_IN_THIS_PROCESS = """
import json
import os
import sys

from harness import import_worker

request = {"ref": {"kind": "python", "name": "users_keras:make"}, "input_shape": [8, 8, 1], "num_classes": 10,
           "seed": 0}
code = import_worker.main([json.dumps(request), sys.argv[1]])
import keras

print(json.dumps([code, keras.backend.backend(), "torch" in sys.modules, os.environ.get("KERAS_BACKEND")]))
"""


@pytest.mark.parametrize("setting", ["KERAS_BACKEND", "keras.json"])
def test_a_users_keras_model_converts_on_tensorflow_whatever_backend_the_users_keras_names(tmp_path, setting):
    """A user's module imports keras before xfbench's TensorFlow backend does: with KERAS_BACKEND=torch (or
    keras.json's "backend": "torch") Keras ran on torch, the conversion failed with "Can't call numpy() on Tensor
    that requires grad" and the advice to change the input size, and the process imported torch beside TensorFlow."""
    (tmp_path / "users_keras.py").write_text(_KERAS_FACTORIES)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"PYTHONPATH": str(ROOT)}
    if setting == "KERAS_BACKEND":
        env["KERAS_BACKEND"] = "torch"
    else:
        home = tmp_path / "keras-home"
        home.mkdir()
        (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
        env["KERAS_HOME"] = str(home)
    out = tmp_path / "users_keras.npz"
    run = subprocess.run(
        [sys.executable, "-c", _CONVERT_IN_THIS_PROCESS, str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    code, backend, torch_imported, variable = json.loads(run.stdout.strip().splitlines()[-1])
    assert (code, backend, torch_imported) == (0, "tensorflow", False), run.stderr[-3000:]
    assert variable == env.get("KERAS_BACKEND")  # the user's own setting, as it was
    spec, _, _ = load_checkpoint(out)
    assert [type(layer).__name__ for layer in spec.layers] == ["Conv2D", "Activation", "Flatten", "Dense"]


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_factory_returning_a_keras_layer_is_told_to_return_a_model_not_to_change_the_input_size(
    tmp_path, monkeypatch
):
    """A Layer that is not a Model failed on `.layers` and the user was told to choose another input size."""
    (tmp_path / "users_keras.py").write_text(_KERAS_FACTORIES)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:users_keras:layer", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert message.startswith(
        "Expected the factory to return a keras.Model. Received: keras.src.layers.core.dense.Dense (a layer, not a "
        "model). To fix, return the model the layers make up: keras.Sequential([keras.Input(shape), ...layers]) or "
        "keras.Model(inputs, outputs)."
    ), message


_LOOKALIKE = """
import keras
from keras import layers


class Dense(layers.Dense):  # the user's own layer, named as Keras' and computing something else
    def call(self, inputs):
        return super().call(inputs) * 2.0


def lookalike():
    return keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), Dense(10, name="out")])
"""


@pytest.mark.usefixtures("in_tensorflow_worker")
def test_a_converted_network_that_does_not_compute_the_models_logits_is_refused(tmp_path, monkeypatch):
    """The import worker converted and cached a user's model without running it: a layer the converter took for
    Keras' Dense by its class name, whose call doubles the output, trained as another network in both backends.
    The converted network is now checked against the model's own logits on a probe batch, as weight files are."""
    (tmp_path / "lookalike_nets.py").write_text(_LOOKALIKE)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:lookalike_nets:lookalike", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert message.startswith("Expected xfbench's network converted from model lookalike_nets:lookalike to compute ")
    assert "on a probe batch, in tensorflow. Received: a gap of " in message, message
    assert "report it with the model" in message, message
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing cached to be served to the next run


def test_a_layer_named_input_is_refused_as_the_name_of_the_models_input(converted):
    """It shadowed the model's input: the tables counted its own output as its input, TensorFlow refused the name
    twice and torch a channel count, after Ray had started."""
    message = _refusal(converted, "named_input")
    assert "a Conv2D layer named 'input'" in message and "give that layer another name" in message


def test_alpha_dropout_converts_to_the_specs_alpha_dropout_and_computes_what_keras_does(converted):
    """Keras' AlphaDropout was refused, though the spec's alpha Dropout is the same layer (docs/fairness.md)."""
    outcome = converted["alpha_dropout"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert ["ad", "Dropout", "alpha", None] in outcome["layers"], outcome["layers"]
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))
    shared = _refusal(converted, "alpha_dropout_shared_mask")
    assert "AlphaDropout with noise_shape (1, 16)" in shared and "at 'ad'" in shared
    assert "To fix, remove noise_shape" in shared


def test_an_identity_layer_converts_as_nothing_and_computes_what_keras_does(converted):
    """keras.layers.Identity was refused where torch's nn.Identity converts."""
    outcome = converted["identity"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert [kind for _, kind, _, _ in outcome["layers"]] == ["Conv2D", "Flatten", "Dense"]
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))


def test_a_batchnorm_without_scale_and_a_relu_threshold_are_refused_with_the_settings_that_convert(converted):
    """Both were refused with the default "replace that layer", though one argument is all that differs."""
    bn = _refusal(converted, "bn_no_scale")
    assert "BatchNormalization off the last axis or without center/scale at 'c1'" in bn
    assert "To fix, use axis=-1, center=True, scale=True (their defaults)" in bn
    relu = _refusal(converted, "relu_threshold")
    assert "ReLU with a threshold at 'c1'" in relu and "To fix, use threshold=0 (its default)." in relu


def test_a_concatenate_on_the_last_axis_of_flat_tensors_converts_and_on_a_maps_height_is_refused(converted):
    """Concatenate(axis=1) on (N, F) vectors is their last axis, as keras.ops.concatenate is read: it was refused as
    "Concatenate along axis 1"."""
    outcome = converted["concat_flat"]
    assert "error" not in outcome and "run_error" not in outcome, outcome
    assert ["cat", "Concat", None, None] in outcome["layers"], outcome["layers"]
    assert_logits_match_source({"tensorflow": np.array(outcome["ours"])}, np.array(outcome["keras"]))
    rows = _refusal(converted, "concat_rows")
    assert "Concatenate along axis 1 at 'cat'" in rows and "To fix, concatenate the last axis: axis=-1." in rows
