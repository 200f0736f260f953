"""The layers real CNNs need, each checked in both backends against a numpy reference of the neutral definition
(harness/spec.py): grouped and depthwise convs (the channel order included), padded max pooling, adaptive average
pooling, zero padding, ReLU6, and BatchNorm's decay and epsilon per layer. Training parity for specs using all of
them is in test_parity.py (tests/cnn_specs.py)."""

from __future__ import annotations

import backend_probes as probes
import numpy as np
import pytest
from cnn_specs import mobile_block_spec
from conftest import max_abs_diff

from harness.config import OptimizerConfig, RegularizationConfig
from harness.data.batching import epoch_batches
from harness.errors import InputError
from harness.shapes import adaptive_windows
from harness.spec import (
    Activation,
    AdaptiveAvgPool2D,
    Add,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ModelSpec,
    ZeroPad2D,
)
from harness.weights import initial_weights

TOLERANCE = 1e-5
BACKENDS = ("torch", "tensorflow")


def np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, layer: Conv2D) -> np.ndarray:
    """Grouped convolution as the spec defines it: output channel o reads its group's input channels."""
    (pt, pb), (pl, pr) = layer.padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    in_per_group, out_per_group = kernel.shape[2], layer.filters // layer.groups
    out = np.zeros((len(x), oh, ow, layer.filters))
    for g in range(layer.groups):
        xs = xp[..., g * in_per_group : (g + 1) * in_per_group]
        ks = kernel[..., g * out_per_group : (g + 1) * out_per_group]
        for i in range(kh):
            for j in range(kw):
                window = xs[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
                out[..., g * out_per_group : (g + 1) * out_per_group] += np.einsum("nhwc,co->nhwo", window, ks[i, j])
    return out + (0.0 if bias is None else bias)


def np_max_pool(x: np.ndarray, layer: MaxPool2D) -> np.ndarray:
    (pt, pb), (pl, pr) = layer.padding
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    (kh, kw), (sh, sw) = layer.pool_size, layer.strides or layer.pool_size
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    windows = [
        xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] for i in range(kh) for j in range(kw)
    ]
    return np.max(windows, axis=0)


def np_adaptive_avg_pool(x: np.ndarray, layer: AdaptiveAvgPool2D) -> np.ndarray:
    rows, cols = (adaptive_windows(size, out) for size, out in zip(x.shape[1:3], layer.output_size, strict=True))
    return np.stack(
        [np.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in cols], axis=1) for r0, r1 in rows], axis=1
    )


def _probe_spec(layer: Layer, channels: int) -> ModelSpec:
    return ModelSpec(
        "probe", (8, 8, channels), 3, (layer, Flatten(name="flat", group="f"), Dense(name="logits", group="c", units=3))
    )


def _reference(layer: Layer, x: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(layer, Conv2D):
        return np_conv(x, weights[f"{layer.name}/kernel"], weights.get(f"{layer.name}/bias"), layer)
    if isinstance(layer, MaxPool2D):
        return np_max_pool(x, layer)
    if isinstance(layer, AdaptiveAvgPool2D):
        return np_adaptive_avg_pool(x, layer)
    if isinstance(layer, ZeroPad2D):
        return np.pad(x, ((0, 0), *layer.padding, (0, 0)))
    assert isinstance(layer, Activation) and layer.kind == "relu6"
    return np.clip(x, 0.0, 6.0)


P1 = ((1, 1), (1, 1))
LAYERS = {
    "grouped_g2": Conv2D(name="x", group="f", filters=6, kernel_size=(3, 3), padding=P1, groups=2),
    "grouped_g2_strided_asymmetric": Conv2D(
        name="x",
        group="f",
        filters=4,
        kernel_size=(2, 3),
        strides=(2, 1),
        padding=((1, 0), (0, 2)),
        groups=2,
        use_bias=False,
    ),
    "depthwise": Conv2D(name="x", group="f", filters=4, kernel_size=(3, 3), padding=P1, groups=4),
    "depthwise_multiplier3_strided": Conv2D(
        name="x", group="f", filters=12, kernel_size=(3, 3), strides=(2, 2), padding=((0, 1), (0, 1)), groups=4
    ),
    "maxpool_resnet_stem": MaxPool2D(name="x", group="f", pool_size=(3, 3), strides=(2, 2), padding=P1),
    "maxpool_asymmetric": MaxPool2D(name="x", group="f", pool_size=(2, 2), padding=((0, 1), (1, 0))),
    "maxpool_wide_padding": MaxPool2D(name="x", group="f", pool_size=(3, 3), strides=(1, 1), padding=((2, 2), (0, 0))),
    **{
        f"adaptive_{h}x{w}": AdaptiveAvgPool2D(name="x", group="f", output_size=(h, w))
        for h, w in ((1, 1), (2, 2), (8, 8), (3, 3), (3, 5), (11, 11))
    },
    "zeropad": ZeroPad2D(name="x", group="f", padding=((2, 0), (1, 3))),
    "relu6": Activation(name="x", group="f", kind="relu6"),
}


@pytest.mark.parametrize("case", LAYERS)
def test_layer_matches_the_neutral_definition_in_both_backends(workers, case):
    layer = LAYERS[case]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 8, 8, 4)) * 4.0).astype(np.float32)  # relu6: both ends of the range are hit
    spec = _probe_spec(layer, channels=4)
    weights = initial_weights(spec, "torch_default", 1)  # non-zero biases
    expected = _reference(layer, x, weights)
    exact = isinstance(layer, (MaxPool2D, ZeroPad2D)) or (isinstance(layer, Activation) and layer.kind == "relu6")
    for backend in BACKENDS:
        got = workers[backend](probes.features, spec, weights, x, "x")
        assert got.shape == expected.shape, backend
        gap = float(np.max(np.abs(got - expected)))
        # pooling by max, padding and relu6 select or clip float32 inputs: exact; sums round (1e-5 is ~25x that)
        bound = 0.0 if exact else TOLERANCE * max(1.0, float(np.abs(expected).max()))
        assert gap <= bound, f"{case}, {backend}: {gap:.2e}"


def _two_batchnorms(decays: tuple[float, float], epsilons: tuple[float, float]) -> ModelSpec:
    """Two BatchNorms reading the same conv output, so each one's statistics are known from that output."""
    return ModelSpec(
        "two_bn",
        (8, 8, 1),
        10,
        (
            Conv2D(name="conv", group="f", filters=4, kernel_size=(3, 3), padding=P1),
            BatchNorm(name="bn_a", group="f", decay=decays[0], epsilon=epsilons[0]),
            BatchNorm(name="bn_b", group="f", decay=decays[1], epsilon=epsilons[1], inputs=("conv",)),
            Add(name="sum", group="f", inputs=("bn_a", "bn_b")),
            Flatten(name="flat", group="f"),
            Dense(name="logits", group="c", units=10),
        ),
    )


def test_batchnorm_decay_and_epsilon_are_honoured_per_layer(workers, digits):
    spec = _two_batchnorms(decays=(0.9, 0.6), epsilons=(1e-3, 0.5))
    weights = initial_weights(spec, "he_normal", 0)
    rng = np.random.default_rng(0)
    for name in ("bn_a", "bn_b"):  # small running variances, so epsilon moves the output a lot
        weights[f"{name}/moving_mean"] = rng.normal(0, 0.5, 4).astype(np.float32)
        weights[f"{name}/moving_variance"] = rng.uniform(0.01, 0.05, 4).astype(np.float32)
        weights[f"{name}/gamma"] = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    x = digits.x_train[:32]
    for backend in BACKENDS:
        conv = workers[backend](probes.features, spec, weights, x, "conv").astype(np.float64)
        # Inference: (x − running mean) / sqrt(running variance + this layer's epsilon) · gamma + beta.
        for name, eps in (("bn_a", 1e-3), ("bn_b", 0.5)):
            w = {k.split("/")[1]: v for k, v in weights.items() if k.startswith(f"{name}/")}
            expected = (conv - w["moving_mean"]) / np.sqrt(w["moving_variance"] + eps) * w["gamma"] + w["beta"]
            got = workers[backend](probes.features, spec, weights, x, name)
            assert np.allclose(got, expected, rtol=1e-5, atol=1e-5), f"{backend} {name}: epsilon {eps} not used"
        # Training: one update from the loaded statistics keeps this layer's decay of them.
        trained = workers[backend](
            probes.train,
            spec,
            weights,
            OptimizerConfig("sgd", lr=1e-12),
            digits.x_train,
            digits.y_train,
            [np.arange(32)],
        )[0]
        batch = conv.reshape(-1, 4)
        for name, decay in (("bn_a", 0.9), ("bn_b", 0.6)):
            mean = decay * weights[f"{name}/moving_mean"] + (1 - decay) * batch.mean(axis=0)
            var = decay * weights[f"{name}/moving_variance"] + (1 - decay) * batch.var(axis=0, ddof=1)
            assert np.allclose(trained[f"{name}/moving_mean"], mean, rtol=1e-5, atol=1e-6), f"{backend} {name}"
            assert np.allclose(trained[f"{name}/moving_variance"], var, rtol=1e-5, atol=1e-6), f"{backend} {name}"


def test_penalties_and_max_norm_treat_grouped_kernels_alike(workers, digits):
    """Kernel penalties and max-norm reach grouped and depthwise kernels in both backends, with max-norm per
    output unit over its (in / groups)·kh·kw incoming weights."""
    spec = mobile_block_spec(digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 0)
    reg = RegularizationConfig(l1=1e-3, l2=1e-2, max_norm=0.5)
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)[:10]
    args = (
        spec,
        weights,
        OptimizerConfig("momentum", lr=0.01),
        digits.x_train,
        digits.y_train,
        batches,
        None,
        None,
        reg,
    )
    (w_t, s_t, _), (w_f, s_f, _) = (workers[b](probes.train, *args) for b in BACKENDS)
    assert max_abs_diff(w_t, w_f) <= TOLERANCE
    assert s_t.reg_loss > 0 and s_t.reg_loss == pytest.approx(s_f.reg_loss, rel=1e-5)

    def unit_norms(kernel: np.ndarray) -> np.ndarray:
        return np.sqrt((kernel**2).reshape(-1, kernel.shape[-1]).sum(axis=0))

    for key in ("dw/kernel", "grouped/kernel"):
        assert unit_norms(weights[key]).min() > 0.5, f"{key}: max-norm would have nothing to do"
        assert unit_norms(w_t[key]).max() <= 0.5 + 1e-5, key


def test_torch_refuses_to_merge_flattened_feature_maps_instead_of_computing_something_else(workers):
    from harness.spec import Concat, Conv2D, Dense, Flatten, ModelSpec

    spec = ModelSpec(
        "merge_flat",
        (4, 4, 1),
        3,
        (
            Conv2D(name="conv", group="f", filters=2, kernel_size=(1, 1)),
            Flatten(name="flat_a", group="f"),
            Flatten(name="flat_b", group="f", inputs=("conv",)),
            Concat(name="merge", group="f", inputs=("flat_a", "flat_b")),
            Dense(name="logits", group="c", units=3),
        ),
    )
    weights = initial_weights(spec, "he_normal", 0)
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(
        InputError, match=r"Expected no Add or Concat of vectors flattened from feature maps on the torch"
    ):
        workers["torch"](probes.logits, spec, weights, x)
    assert workers["tensorflow"](probes.logits, spec, weights, x).shape == (2, 3)


def test_batchnorm_and_prelu_on_a_flattened_feature_map_keep_the_neutral_feature_order(workers):
    """PyTorch flattens a feature map in C,H,W order, the spec in H,W,C: the per-feature vectors of a BatchNorm and
    a PReLU on a flattened map are reordered on load and export (the torch backend refused such a BatchNorm before).
    Every feature's values differ, so one out of place shows: eval logits against numpy's, the round trip exact,
    and five training steps alike in both backends, running statistics included."""
    spec = ModelSpec(
        "flat_bn",
        (3, 3, 2),
        3,
        (
            Conv2D(name="conv", group="f", filters=2, kernel_size=(1, 1)),
            Flatten(name="flat", group="f"),
            BatchNorm(name="bn", group="f"),
            Activation(name="act", group="f", kind="prelu"),
            Dense(name="logits", group="c", units=3),
        ),
    )
    rng = np.random.default_rng(0)
    weights = initial_weights(spec, "he_normal", 0)
    for key, low, high in (("bn/gamma", 0.5, 2), ("bn/beta", -1, 1), ("bn/moving_mean", -1, 1)):
        weights[key] = rng.uniform(low, high, 18).astype(np.float32)
    weights["bn/moving_variance"] = rng.uniform(0.5, 2, 18).astype(np.float32)
    weights["act/alpha"] = rng.uniform(0, 0.5, 18).astype(np.float32)
    x = rng.normal(size=(32, 3, 3, 2)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    flat = (x @ w["conv/kernel"][0, 0] + w["conv/bias"]).reshape(32, -1)  # H,W,C order
    normed = (flat - w["bn/moving_mean"]) / np.sqrt(w["bn/moving_variance"] + 1e-5) * w["bn/gamma"] + w["bn/beta"]
    expected = np.where(normed > 0, normed, w["act/alpha"] * normed) @ w["logits/kernel"] + w["logits/bias"]
    batches = [np.arange(i * 8, (i + 1) * 8) % 32 for i in range(5)]
    trained = {}
    for backend in BACKENDS:
        got = workers[backend](probes.logits, spec, weights, x)
        assert np.max(np.abs(got - expected)) <= TOLERANCE * np.max(np.abs(expected)), backend
        exported = workers[backend](probes.roundtrip, spec, weights)
        assert all(np.array_equal(exported[k], weights[k]) for k in weights), backend
        trained[backend] = workers[backend](probes.train, spec, weights, OptimizerConfig("sgd", lr=0.1), x, y, batches)[
            0
        ]
    assert max_abs_diff(trained["torch"], trained["tensorflow"]) <= TOLERANCE
    assert np.max(np.abs(trained["torch"]["bn/moving_mean"] - weights["bn/moving_mean"])) > 0.01  # statistics moved
