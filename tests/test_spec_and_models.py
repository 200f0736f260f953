from __future__ import annotations

import json
import re

import pytest
from cnn_specs import CNN_SPECS, P1

from harness.errors import InputError
from harness.models import CORE_MODELS, ModelOptions, build_spec
from harness.shapes import adaptive_is_uniform, adaptive_windows, infer_shapes, output_shape
from harness.spec import (
    Activation,
    AdaptiveAvgPool2D,
    Add,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
    ZeroPad2D,
    same_padding,
    spec_from_dict,
    spec_to_dict,
)


def test_convnet3_matches_the_notebook_layers():
    spec = build_spec("convnet3", (32, 32, 3), 10)
    conv1, _, conv2, _, _, dense = spec.layers
    assert (conv1.filters, conv1.kernel_size, conv1.padding) == (32, (5, 5), ((2, 2), (2, 2)))
    assert (conv2.filters, conv2.kernel_size, conv2.padding) == (16, (3, 3), ((1, 1), (1, 1)))
    assert isinstance(dense, Dense) and dense.units == 10 and dense.use_bias
    infos = infer_shapes(spec)
    assert infos["conv2"].shape == (32, 32, 16)
    assert infos["flatten"].flattened_from == (32, 32, 16)
    assert spec.groups() == {"features": ("conv1", "act1", "conv2", "act2", "flatten"), "classifier": ("logits",)}


def test_cnn_small_groups_and_shapes_on_mnist_sized_input():
    spec = build_spec("cnn_small", (28, 28, 1), 5)
    infos = infer_shapes(spec)
    assert infos["pool"].shape == (12, 12, 32)
    assert infos["flatten"].shape == (12 * 12 * 32,)
    assert infos["drop2"].flattened_from is None
    assert output_shape(spec) == (5,)
    assert spec.groups()["classifier"] == ("fc1", "act3", "drop2", "logits")
    assert [l.rate for l in spec.layers if isinstance(l, Dropout)] == [0.25, 0.5]


def test_mlp_hidden_sizes_activation_and_bias_are_options():
    spec = build_spec("mlp", (32, 32, 3), 10, ModelOptions(hidden=(300, 100), activation="selu", use_bias=False))
    dense = [l for l in spec.layers if isinstance(l, Dense)]
    assert [d.units for d in dense] == [300, 100, 10]
    assert [d.use_bias for d in dense] == [False, False, False]  # the low-level TwoLayerFC: no bias anywhere
    assert infer_shapes(spec)["flatten"].flattened_from == (32, 32, 3)


def test_every_model_builds_for_every_embedded_input_shape():
    for name in CORE_MODELS:
        for shape in ((8, 8, 1), (28, 28, 1), (32, 32, 3)):
            assert output_shape(build_spec(name, shape, 10)) == (10,)


def test_the_specs_and_model_options_own_refusals_name_the_fix_in_the_standard_form():
    """Reached from suites, the Python API, a weight file's zoo twin and the importers (nn.Dropout(p=1.0)): these
    said what was expected and received, and nothing of what to do."""
    cases = [
        lambda: ModelOptions(width_multiplier=0),
        lambda: ModelOptions(batchnorm="between"),
        lambda: ModelOptions(bn_running_variance="Biased"),
        lambda: ModelOptions(dropout_kind="gaussian"),
        lambda: ModelOptions(hidden=(0,)),
        lambda: ModelSpec("empty", (8, 8, 1), 2, ()),
        lambda: Dropout(name="d", group="f", rate=1.0),
        lambda: Activation(name="a", group="f", kind="swish"),
        lambda: BatchNorm(name="b", group="f", decay=1.5),
        lambda: same_padding((2, 2)),
        lambda: spec_from_dict({"name": "m", "input_shape": [8, 8, 1], "num_classes": 2, "layers": [{"type": "Up"}]}),
    ]
    for case in cases:
        with pytest.raises(InputError) as refused:
            case()
        assert re.fullmatch(r"Expected .+\. Received: .+\. To fix, [a-z].+\.", str(refused.value), re.S), refused.value


def test_bad_names_and_sizes_are_reported_with_choices():
    with pytest.raises(InputError, match="To fix, give one of the zoo's"):
        build_spec("resnet9000", (8, 8, 1), 10)
    with pytest.raises(InputError, match="activation"):
        ModelOptions(activation="swishy")
    too_small = ModelSpec("tiny", (2, 2, 1), 2, (Conv2D(name="c", group="f", filters=1, kernel_size=(3, 3)),))
    with pytest.raises(InputError, match="fits the padded input"):
        infer_shapes(too_small)


def test_graph_specs_resolve_named_inputs_and_check_them():
    layers = (
        Flatten(name="flat", group="f"),
        Dense(name="a", group="f", units=4),
        Dense(name="b", group="f", units=4, inputs=("flat",)),
        Add(name="sum", group="f", inputs=("a", "b")),
        Dense(name="logits", group="c", units=2),
    )
    spec = ModelSpec("graph", (3, 3, 1), 2, layers)
    assert not spec.is_chain()
    assert spec.inputs_of(2) == ("flat",) and spec.inputs_of(4) == ("sum",)
    assert infer_shapes(spec)["sum"].shape == (4,)
    bad = ModelSpec("graph", (3, 3, 1), 2, layers[:3] + (Add(name="sum", group="f", inputs=("a", "missing")),))
    with pytest.raises(InputError, match="defined earlier"):
        infer_shapes(bad)
    with pytest.raises(InputError, match="unique layer names"):
        ModelSpec("dup", (3,), 2, (Dense(name="x", group="f", units=2), Dense(name="x", group="f", units=2)))


def test_same_padding_requires_odd_kernels():
    assert same_padding((5, 3)) == ((2, 2), (1, 1))
    with pytest.raises(InputError, match="odd"):
        same_padding((2, 2))


@pytest.mark.parametrize("name", CNN_SPECS)
def test_specs_with_the_cnn_layers_survive_a_json_round_trip(name):
    spec = CNN_SPECS[name]((8, 8, 1), 10)
    back = spec_from_dict(json.loads(json.dumps(spec_to_dict(spec))))
    assert back == spec  # tuples (padding pairs, output_size) come back as tuples, groups as an int
    assert back.layer("pool").padding == spec.layer("pool").padding


def test_cnn_layer_shapes():
    infos = infer_shapes(CNN_SPECS["mobile_block"]((8, 8, 1), 10))
    assert infos["pad"].shape == (11, 11, 1)
    assert infos["stem"].shape == (5, 5, 8)
    assert infos["dw"].shape == (5, 5, 16)
    assert infos["pool"].shape == (3, 3, 12)  # (5 + 1 + 1 - 3) // 2 + 1
    assert infos["adapt"].shape == (2, 2, 12)
    assert infos["flatten"].flattened_from == (2, 2, 12)
    assert infer_shapes(CNN_SPECS["pooled_branches"]((8, 8, 1), 10))["gap"].shape == (1, 1, 12)


def test_adaptive_windows_follow_pytorchs_floor_and_ceil():
    assert adaptive_windows(6, 3) == [(0, 2), (2, 4), (4, 6)]  # divisible: a plain 2x2 pool
    assert adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]  # unequal, overlapping
    assert adaptive_windows(7, 7) == [(i, i + 1) for i in range(7)]  # identity (VGG at 224 px)
    assert adaptive_windows(2, 3) == [(0, 1), (0, 2), (1, 2)]  # larger than the input: cells repeat
    assert adaptive_is_uniform(224, 7) and not adaptive_is_uniform(5, 3)


def _one_layer(layer, input_shape=(8, 8, 4)):
    return ModelSpec("m", input_shape, 2, (layer, Flatten(name="flat", group="f"), Dense(name="d", group="c", units=2)))


def test_cnn_layer_errors_say_what_was_expected_and_received():
    with pytest.raises(InputError, match=r"Expected groups >= 1 dividing filters.*Received: groups=3, filters=8"):
        Conv2D(name="c", group="f", filters=8, kernel_size=(3, 3), groups=3)
    with pytest.raises(InputError, match=r"Expected groups >= 1.*Received: groups=0"):
        Conv2D(name="c", group="f", filters=8, kernel_size=(3, 3), groups=0)
    with pytest.raises(
        InputError, match=r"Expected input channels divisible by groups=3 in layer 'c'.*\. Received: 4 input"
    ):
        infer_shapes(_one_layer(Conv2D(name="c", group="f", filters=6, kernel_size=(3, 3), groups=3)))
    with pytest.raises(InputError, match=r"Expected each side's padding below the pool size \(3, 3\).*Received: pad"):
        MaxPool2D(name="p", group="f", pool_size=(3, 3), padding=((3, 0), (0, 0)))
    pattern = r"Expected padding \(\(top, bottom\), \(left, right\)\).*Received: padding=\(1, 1\)"
    with pytest.raises(InputError, match=pattern):
        ZeroPad2D(name="z", group="f", padding=(1, 1))
    with pytest.raises(InputError, match=r"ints >= 0.*Received: padding=\(\(-1, 0\), \(0, 0\)\)"):
        ZeroPad2D(name="z", group="f", padding=((-1, 0), (0, 0)))
    pattern = r"Expected output_size \(out_h, out_w\) of ints >= 1.*Received: output_size=\(0, 2\)"
    with pytest.raises(InputError, match=pattern):
        AdaptiveAvgPool2D(name="a", group="f", output_size=(0, 2))
    flat_first = ModelSpec(
        "m", (8, 8, 4), 2, (Flatten(name="flat", group="f"), AdaptiveAvgPool2D(name="a", group="f", output_size=(1, 1)))
    )
    pattern = r"Expected an \(H, W, C\) input; pool before the Flatten in layer 'a'.*\. Received: \(256,\)"
    with pytest.raises(InputError, match=pattern):
        infer_shapes(flat_first)
    pad = ZeroPad2D(name="z", group="f", padding=P1)
    flat_pad = ModelSpec("m", (8, 8, 4), 2, (Flatten(name="flat", group="f"), pad))
    with pytest.raises(InputError, match=r"pad before the Flatten"):
        infer_shapes(flat_pad)
    with pytest.raises(
        InputError, match=r"stored spec.*To fix, give one of the known types: \[.*'AdaptiveAvgPool2D'.*'ZeroPad2D'"
    ):
        spec_from_dict({"name": "m", "input_shape": [8, 8, 1], "num_classes": 2, "layers": [{"type": "Upsample"}]})


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: Dense(name="d", group="c", units=0), "units=0"),
        (lambda: Dense(name="d", group="c", units=10.5), "units=10.5"),
        (lambda: Conv2D(name="c", group="f", filters=8, kernel_size=(3, 3), strides=(0, 0)), "strides=(0, 0)"),
        (lambda: Conv2D(name="c", group="f", filters=8, kernel_size="3"), "kernel_size='3'"),
        (lambda: Conv2D(name="c", group="f", filters=-1, kernel_size=(3, 3)), "filters=-1"),
        (lambda: MaxPool2D(name="p", group="f", pool_size=(0, 2)), "pool_size=(0, 2)"),
        (lambda: Dropout(name="x", group="c", rate=1.0), "rate=1.0"),
        (lambda: Dropout(name="x", group="c", rate=0.5, kind="gaussian"), "rate=0.5, kind='gaussian'"),
        (lambda: Activation(name="a", group="f", kind="swish"), "kind='swish'"),
        (lambda: Dense(name="d", group="c", units=(3, 3)), "units=(3, 3)"),
        (lambda: MaxPool2D(name="p", group="f", pool_size=2), "pool_size=2"),
    ],
)
def test_sizes_no_layer_could_run_with_are_refused_when_the_spec_is_built(build, named):
    """A spec file or a user's model with such a layer fails before Ray (exit 2), naming the layer and the value,
    not inside a worker with a division by zero."""
    with pytest.raises(InputError, match=f"in layer .*Received: {re.escape(named)}"):
        build()


@pytest.mark.parametrize(
    ("model", "options", "named"),
    [
        ("convnet3", ModelOptions(hidden=(64,)), "--hidden 64."),  # no hidden dense layer
        ("cnn_small", ModelOptions(hidden=(64,)), "--hidden 64."),  # its dense layer is 128 wide
        ("convnet3", ModelOptions(dropout=0.3), "--dropout 0.3."),  # no dropout layer
        ("convnet3", ModelOptions(dropout_kind="alpha"), "--alpha-dropout."),
        ("mlp", ModelOptions(activation="relu", activation_alpha=0.2), "--activation-alpha 0.2."),
    ],
)
def test_an_option_the_model_would_not_apply_with_these_settings_is_refused(model, options, named):
    """A result must not record a setting that changed nothing: each is refused, named. (BatchNorm's settings and
    the dropout kind are definitions a run sets for a whole suite: accepted here by a model with no such layer, and
    refused by the preflight only where no network of the run has one: test_strategy_options.)"""
    with pytest.raises(InputError, match=f"Received: {re.escape(named)}"):
        build_spec(model, (8, 8, 1), 10, options)


def test_the_options_that_do_apply_change_the_spec():
    assert build_spec("cnn_small", (8, 8, 1), 10, ModelOptions(dropout=0.3)).layer("drop2").rate == 0.3
    alpha = build_spec("mlp", (8, 8, 1), 10, ModelOptions(dropout=0.2, dropout_kind="alpha")).layer("drop1")
    assert alpha.kind == "alpha"
    bn = build_spec("convnet3", (8, 8, 1), 10, ModelOptions(batchnorm="before", bn_epsilon=1e-3)).layer("conv1_bn")
    assert bn.epsilon == 1e-3
    leaky = build_spec("convnet3", (8, 8, 1), 10, ModelOptions(activation="leaky_relu", activation_alpha=0.2))
    assert leaky.layer("act1").alpha == 0.2
