from __future__ import annotations

import pytest

from harness.models import MODELS, ModelOptions, build_model
from harness.shapes import infer_shapes, output_shape
from harness.spec import Add, Conv2D, Dense, Dropout, Flatten, ModelSpec, same_padding


def test_convnet3_matches_the_notebook_layers():
    spec = build_model("convnet3", (32, 32, 3), 10)
    conv1, _, conv2, _, _, dense = spec.layers
    assert (conv1.filters, conv1.kernel_size, conv1.padding) == (32, (5, 5), ((2, 2), (2, 2)))
    assert (conv2.filters, conv2.kernel_size, conv2.padding) == (16, (3, 3), ((1, 1), (1, 1)))
    assert isinstance(dense, Dense) and dense.units == 10 and dense.use_bias
    infos = infer_shapes(spec)
    assert infos["conv2"].shape == (32, 32, 16)
    assert infos["flatten"].flattened_from == (32, 32, 16)
    assert spec.groups() == {"features": ("conv1", "act1", "conv2", "act2", "flatten"), "classifier": ("logits",)}


def test_cnn_small_groups_and_shapes_on_mnist_sized_input():
    spec = build_model("cnn_small", (28, 28, 1), 5)
    infos = infer_shapes(spec)
    assert infos["pool"].shape == (12, 12, 32)
    assert infos["flatten"].shape == (12 * 12 * 32,)
    assert infos["drop2"].flattened_from is None
    assert output_shape(spec) == (5,)
    assert spec.groups()["classifier"] == ("fc1", "act3", "drop2", "logits")
    assert [l.rate for l in spec.layers if isinstance(l, Dropout)] == [0.25, 0.5]


def test_mlp_hidden_sizes_activation_and_bias_are_options():
    spec = build_model("mlp", (32, 32, 3), 10, ModelOptions(hidden=(300, 100), activation="selu", use_bias=False))
    dense = [l for l in spec.layers if isinstance(l, Dense)]
    assert [d.units for d in dense] == [300, 100, 10]
    assert [d.use_bias for d in dense] == [False, False, True]
    assert infer_shapes(spec)["flatten"].flattened_from == (32, 32, 3)


def test_every_model_builds_for_every_embedded_input_shape():
    for name in MODELS:
        for shape in ((8, 8, 1), (28, 28, 1), (32, 32, 3)):
            assert output_shape(build_model(name, shape, 10)) == (10,)


def test_bad_names_and_sizes_are_reported_with_choices():
    with pytest.raises(ValueError, match="Valid choices"):
        build_model("resnet9000", (8, 8, 1), 10)
    with pytest.raises(ValueError, match="activation"):
        ModelOptions(activation="swishy")
    too_small = ModelSpec("tiny", (2, 2, 1), 2, (Conv2D(name="c", group="f", filters=1, kernel_size=(3, 3)),))
    with pytest.raises(ValueError, match="fits the padded input"):
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
    with pytest.raises(ValueError, match="defined earlier"):
        infer_shapes(bad)
    with pytest.raises(ValueError, match="unique layer names"):
        ModelSpec("dup", (3,), 2, (Dense(name="x", group="f", units=2), Dense(name="x", group="f", units=2)))


def test_same_padding_requires_odd_kernels():
    assert same_padding((5, 3)) == ((2, 2), (1, 1))
    with pytest.raises(ValueError, match="odd"):
        same_padding((2, 2))
