"""The two backends must compute the same numbers from the same neutral weights and batches."""

from __future__ import annotations

import dataclasses
import math

import backend_probes as probes
import numpy as np
import pytest
from cnn_specs import CNN_SPECS
from conftest import assert_parameters_agree, max_abs_diff

from harness.config import OPTIMIZERS, OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.data.batching import epoch_batches
from harness.models import CORE_MODELS, ModelOptions, build_spec
from harness.spec import (
    BN_RUNNING_VARIANCES,
    Activation,
    Add,
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ModelSpec,
)
from harness.weights import initial_weights

# What fp32 allows: logits agree to 1e-5 of their magnitude, parameters after 20 steps to 1e-5 (measured gaps are
# around 1e-7 to 1e-6; a real difference in what the backends compute shows up orders of magnitude above).
LOGIT_TOLERANCE = 1e-5
TRAIN_TOLERANCE = 1e-5
STEPS = 20


def logit_gap(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to the logits' magnitude where it exceeds 1."""
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(a))))


def branching_spec(input_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    """Every layer type at once: strided and asymmetrically padded conv, BN, residual Add, Concat, pools."""
    return ModelSpec(
        name="branching",
        input_shape=input_shape,
        num_classes=num_classes,
        layers=(
            Conv2D(
                name="stem", group="features", filters=8, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False
            ),
            BatchNorm(name="stem_bn", group="features", decay=0.9, epsilon=1e-3),
            Activation(name="stem_act", group="features", kind="relu"),
            Conv2D(name="branch_a", group="features", filters=8, kernel_size=(3, 3), padding=((1, 1), (1, 1))),
            Activation(name="branch_a_act", group="features", kind="elu"),
            Add(name="residual", group="features", inputs=("stem_act", "branch_a_act")),
            Conv2D(
                name="branch_b",
                group="features",
                filters=4,
                kernel_size=(2, 2),
                strides=(1, 1),
                padding=((0, 1), (0, 1)),
                inputs=("stem_act",),
            ),
            Concat(name="merge", group="features", inputs=("residual", "branch_b")),
            Conv2D(
                name="down", group="features", filters=6, kernel_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1))
            ),
            Activation(name="down_act", group="features", kind="leaky_relu", alpha=0.1),
            AvgPool2D(name="avg", group="features", pool_size=(2, 2), inputs=("merge",)),
            MaxPool2D(name="max", group="features", pool_size=(2, 2), inputs=("down_act",)),
            Flatten(name="flat_avg", group="features", inputs=("avg",)),
            GlobalAvgPool2D(name="gap", group="features", inputs=("max",)),
            Dense(name="proj", group="features", units=6, inputs=("flat_avg",)),
            Activation(name="proj_act", group="features", kind="selu"),
            Concat(name="head_in", group="classifier", inputs=("proj_act", "gap")),
            Dense(name="logits", group="classifier", units=num_classes),
        ),
    )


def specs(digits) -> dict[str, ModelSpec]:
    out = {name: build_spec(name, digits.input_shape, digits.num_classes) for name in CORE_MODELS}
    out["mlp_tanh_nobias"] = build_spec(
        "mlp", digits.input_shape, digits.num_classes, ModelOptions(hidden=(64, 32), activation="tanh", use_bias=False)
    )
    out["branching"] = branching_spec(digits.input_shape, digits.num_classes)
    out.update({name: build(digits.input_shape, digits.num_classes) for name, build in CNN_SPECS.items()})
    return out


SPEC_NAMES = [*CORE_MODELS, "mlp_tanh_nobias", "branching", *CNN_SPECS]


def _weights_with_bn_statistics(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Initial weights, with non-trivial BatchNorm statistics so inference mode is really exercised."""
    weights = initial_weights(spec, "he_normal", seed)
    rng = np.random.default_rng(seed)
    for key in weights:
        if key.endswith(("moving_mean", "beta")):
            weights[key] = rng.normal(0, 0.5, weights[key].shape).astype(np.float32)
        elif key.endswith(("moving_variance", "gamma")):
            weights[key] = rng.uniform(0.5, 2.0, weights[key].shape).astype(np.float32)
    return weights


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
def test_logits_agree_in_eval_mode(workers, digits, spec_name):
    spec = specs(digits)[spec_name]
    weights = _weights_with_bn_statistics(spec, seed=3)
    x = digits.x_test[:128]
    torch_logits = workers["torch"](probes.logits, spec, weights, x)
    tf_logits = workers["tensorflow"](probes.logits, spec, weights, x)
    assert torch_logits.shape == tf_logits.shape == (128, digits.num_classes)
    diff = logit_gap(torch_logits, tf_logits)
    assert diff <= LOGIT_TOLERANCE, f"{spec_name}: max |logit diff| {diff:.2e} > {LOGIT_TOLERANCE} (scaled)"
    assert np.std(torch_logits) > 1e-3  # not a degenerate all-equal output


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("spec_name", SPEC_NAMES)
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_weights_round_trip_exactly(workers, digits, spec_name, backend, precision):
    """Weights go in and come out bit for bit; in a float64 run, float64 weights that float32 cannot hold (a float64
    run's checkpoint or backbone) too: torch once loaded them into its float32 module before casting it to float64,
    rounding every weight to float32 (a float64 backbone's features then parted across backends by 1.1e-7)."""
    spec = specs(digits)[spec_name]
    weights = _weights_with_bn_statistics(spec, seed=1)
    if precision == "float64":  # one part in 2**40 more: not a float32 number
        weights = {key: value.astype(np.float64) * (1 + 2.0**-40) for key, value in weights.items()}
        assert all(np.any(v != v.astype(np.float32)) for v in weights.values() if np.any(v != 0))
    exported = workers[backend](probes.roundtrip, spec, weights, RuntimeOptions(precision=precision))
    assert exported.keys() == weights.keys()
    for key in weights:
        assert exported[key].dtype == weights[key].dtype, f"{backend} returned {key} as {exported[key].dtype}"
        assert np.array_equal(exported[key], weights[key]), f"{backend} changed {key} on the way in and out"


def _train_both(workers, digits, spec: ModelSpec, optimizer: OptimizerConfig, seed: int = 0, multipliers=None):
    weights = initial_weights(spec, "he_normal", seed)
    batches = epoch_batches(len(digits.y_train), 32, seed, 1)[:STEPS]
    assert len(batches) == STEPS
    args = (
        spec,
        weights,
        optimizer,
        digits.x_train,
        digits.y_train,
        batches,
        None,
        None,
        RegularizationConfig(),
        multipliers,
    )
    (w_torch, s_torch, _), (w_tf, s_tf, _) = (workers[b](probes.train, *args) for b in ("torch", "tensorflow"))
    moved = max_abs_diff(w_torch, weights)
    return weights, w_torch, w_tf, s_torch, s_tf, moved, args


# Every model trains alike, dropout (shared masks) and BatchNorm (one running-variance definition) included.
@pytest.mark.parametrize("spec_name", SPEC_NAMES)
def test_parameters_agree_after_20_sgd_steps(request, workers, digits, spec_name):
    spec = specs(digits)[spec_name]
    _, w_torch, w_tf, s_torch, s_tf, moved, args = _train_both(
        workers, digits, spec, OptimizerConfig("momentum", lr=0.01)
    )
    assert moved > 1e-3, "training did not move the weights; the comparison would be vacuous"
    assert_parameters_agree(request, args, {"torch": w_torch, "tensorflow": w_tf}, TRAIN_TOLERANCE)
    assert s_torch.count == s_tf.count == STEPS * 32
    assert abs(s_torch.loss - s_tf.loss) < 1e-5 and s_torch.correct == s_tf.correct


@pytest.mark.parametrize("definition", BN_RUNNING_VARIANCES)
def test_batchnorm_running_variance_follows_one_definition_in_both_backends(workers, digits, definition):
    spec = branching_spec(digits.input_shape, digits.num_classes)
    spec = dataclasses.replace(
        spec,
        layers=tuple(
            dataclasses.replace(l, running_variance=definition) if isinstance(l, BatchNorm) else l for l in spec.layers
        ),
    )
    weights, w_torch, w_tf, *_ = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.01))
    assert max_abs_diff(w_torch, w_tf) <= TRAIN_TOLERANCE
    # The running variance after one update from 1 is decay + (1 - decay) * var; check which var it tracked. On two
    # images (128 values per channel) the definitions differ by n / (n - 1), 0.8 %, far beyond float32 rounding; on
    # 32 images (2,048 values) they parted by only 4e-6 to 2e-5 after the decay, too close to tell at 1e-5.
    one = initial_weights(spec, "he_normal", 0)
    one_step = {
        b: workers[b](
            probes.train, spec, one, OptimizerConfig("sgd", lr=1e-12), digits.x_train, digits.y_train, [np.arange(2)]
        )[0]
        for b in ("torch", "tensorflow")
    }
    stem = _conv_same(digits.x_train[:2], one["stem/kernel"]).reshape(-1, 8)
    track = {
        d: 0.9 * one["stem_bn/moving_variance"] + 0.1 * stem.var(axis=0, ddof=int(d == "unbiased"))
        for d in BN_RUNNING_VARIANCES
    }
    (other,) = set(BN_RUNNING_VARIANCES) - {definition}
    for backend, w in one_step.items():
        assert np.allclose(w["stem_bn/moving_variance"], track[definition], rtol=1e-5), backend
        assert not np.allclose(w["stem_bn/moving_variance"], track[other], rtol=1e-4), backend


def _conv_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3x3 stride-1 convolution with zero padding 1, in numpy (the BN test's independent reference)."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,co->nhwo", padded[:, i : i + x.shape[1], j : j + x.shape[2]], kernel[i, j])
    return out


def test_decoupled_weight_decay_uses_each_groups_own_learning_rate(workers, digits):
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes)
    backbone = {l.name: 0.1 for l in spec.layers if l.name != "logits"}
    config = OptimizerConfig("momentum", lr=0.05, weight_decay=0.5, decoupled=True)
    weights, w_torch, w_tf, *_ = _train_both(workers, digits, spec, config, multipliers=backbone)
    diff = max_abs_diff(w_torch, w_tf)
    assert diff <= TRAIN_TOLERANCE, f"decoupled decay under per-group rates: parameters differ by {diff:.2e}"
    # With a learning rate near zero only the decay moves the weights: w (1 - lr_g wd)^steps, group by group.
    tiny = OptimizerConfig("sgd", lr=1e-3, weight_decay=50.0, decoupled=True)
    batches = [np.arange(8)]
    for backend in ("torch", "tensorflow"):
        w = workers[backend](
            probes.train,
            spec,
            weights,
            tiny,
            digits.x_train,
            digits.y_train,
            batches,
            None,
            None,
            RegularizationConfig(),
            backbone,
        )[0]
        conv_shrink = np.median(w["conv1/kernel"] / weights["conv1/kernel"])
        head_shrink = np.median(w["logits/kernel"] / weights["logits/kernel"])
        assert conv_shrink == pytest.approx(1 - 1e-4 * 50, abs=2e-4), backend
        assert head_shrink == pytest.approx(1 - 1e-3 * 50, abs=2e-3), backend


@pytest.mark.parametrize("layer", ["flatten", "act2", "logits"])
def test_features_of_every_layer_come_back_in_the_neutral_layout(workers, digits, layer):
    spec = build_spec("convnet3", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 2)
    x = digits.x_test[:50]
    got = {b: workers[b](probes.features, spec, weights, x, layer) for b in ("torch", "tensorflow")}
    assert got["torch"].shape == got["tensorflow"].shape
    assert logit_gap(got["torch"], got["tensorflow"]) <= LOGIT_TOLERANCE, layer
    if layer == "flatten":  # H, W, C order: the flattened map equals the neutral (NHWC) map reshaped
        maps = workers["torch"](probes.features, spec, weights, x, "act2")
        assert np.array_equal(got["torch"], maps.reshape(len(x), -1))


def test_averaged_feature_maps_are_each_channels_mean_over_the_map_in_both_backends(workers, digits):
    """--feature-pool avg: the backends average each batch's maps where they computed them, so a split's maps are
    never held whole on the host (deep_features averaged them in numpy after the whole split's maps were joined:
    20 GB for vgg11_bn's fourth pool over CIFAR-10 at 224x224). The mean of the NHWC maps, as float32 sums it."""
    spec = build_spec("convnet3", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 2)
    x = digits.x_test[:250]  # three batches of 100, the last short
    averaged = {}
    for backend in ("torch", "tensorflow"):
        maps = workers[backend](probes.features, spec, weights, x, "act2")
        expected = maps.astype(np.float64).mean(axis=(1, 2))  # of the backend's own maps, in float64
        got = averaged[backend] = workers[backend](probes.features, spec, weights, x, "act2", True)
        assert got.shape == (len(x), maps.shape[-1]) and got.dtype == np.float32, backend
        # ReLU maps, so non-negative terms: float32 summation of 64 of them errs by at most 63 roundings, relative
        np.testing.assert_allclose(got, expected, rtol=64 * np.finfo(np.float32).eps, atol=0, err_msg=backend)
    assert logit_gap(averaged["torch"], averaged["tensorflow"]) <= LOGIT_TOLERANCE
    for backend in ("torch", "tensorflow"):  # features that are rows already stay as they are
        flat = workers[backend](probes.features, spec, weights, x, "flatten", True)
        assert np.array_equal(flat, workers[backend](probes.features, spec, weights, x, "flatten")), backend


def test_features_at_a_residual_add_and_a_concat_agree_across_backends(workers, digits):
    """A merge's output is a layer's output too (a MobileNetV2 block ends in its Add): both backends extract it,
    in the neutral layout, with the values the branches sum or stack to."""
    spec = branching_spec(digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 0)
    x = digits.x_test[:50]
    for layer, parts in (("residual", ("stem_act", "branch_a_act")), ("merge", ("residual", "branch_b"))):
        got = {b: workers[b](probes.features, spec, weights, x, layer) for b in ("torch", "tensorflow")}
        assert got["torch"].shape == got["tensorflow"].shape
        assert logit_gap(got["torch"], got["tensorflow"]) <= LOGIT_TOLERANCE, layer
        inputs = [workers["torch"](probes.features, spec, weights, x, part) for part in parts]
        expected = inputs[0] + inputs[1] if layer == "residual" else np.concatenate(inputs, axis=-1)
        assert np.array_equal(got["torch"], expected), layer


@pytest.mark.parametrize(
    ("model", "options", "layer"),
    [
        ("convnet3", ModelOptions(), "act1"),
        ("resnet20", ModelOptions(width_multiplier=0.25), "layer2_0_add"),
        # the shortcut: the block's main branch, earlier in spec order, is no input of it
        ("resnet20", ModelOptions(width_multiplier=0.25), "layer2_0_downsample_1"),
    ],
)
def test_torch_extraction_runs_only_the_layers_the_feature_layer_depends_on(workers, digits, model, options, layer):
    """deep_features times extract_features against the work up to the layer (forward_macs_to), as TensorFlow's
    submodel to the layer does it: no later layer (the head) runs, and the features are the full forward's."""
    spec = build_spec(model, digits.input_shape, digits.num_classes, options)
    weights = initial_weights(spec, "he_normal", 0)
    x = digits.x_test[:150]  # two batches of 100
    ran, got, full = workers["torch"](probes.layers_run_by_extraction, spec, weights, x, layer)
    index = {l.name: i for i, l in enumerate(spec.layers)}
    needed, stack = set(), [layer]
    while stack:
        name = stack.pop()
        if name in index and name not in needed:
            needed.add(name)
            stack.extend(spec.inputs_of(index[name]))
    assert spec.layers[-1].name not in ran
    assert sorted(ran) == sorted(list(needed) * 2)  # each once per batch
    assert np.array_equal(got, full)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_gives_the_same_parameters(workers, digits, optimizer):
    spec = build_spec("mlp", digits.input_shape, digits.num_classes, ModelOptions(hidden=(32,)))
    lr = {"adadelta": 1.0, "sgd": 0.05}.get(optimizer, 0.01)
    config = OptimizerConfig(optimizer, lr=lr, weight_decay=1e-3)
    _, w_torch, w_tf, _, _, moved, _ = _train_both(workers, digits, spec, config)
    diff = max_abs_diff(w_torch, w_tf)
    assert moved > 1e-4
    assert diff <= TRAIN_TOLERANCE, f"{optimizer}: parameters differ by {diff:.2e} after {STEPS} steps"


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_gives_the_same_parameters_on_a_convnet_in_float64(workers, digits, optimizer):
    """On a convnet the float32 parameters of the adaptive optimizers part by up to lr (docs/fairness.md: a gradient
    element that is rounding noise around zero becomes a full step), so the MLP above holds them in float32 and
    this holds every rule on cnn_small with BatchNorm, coupled or decoupled decay and a slower backbone rate, where
    each framework's rounding is 5*10^8 times smaller: the same update, element for element."""
    lr = {"adadelta": 1.0, "sgd": 0.05}.get(optimizer, 0.01)
    _assert_one_update_in_float64(workers, digits, OptimizerConfig(optimizer, lr=lr, weight_decay=1e-3))


# Every setting an optimizer reads, away from its default: a backend that wrote a default into its rule (or put
# eps inside the square root where the other puts it outside) would pass the test above, whose eps and betas are
# the defaults (measured in float32: such rules part by 6e-8 to 2e-7 after 20 steps, under its tolerance).
NON_DEFAULT = {
    "momentum": OptimizerConfig("momentum", lr=0.01, momentum=0.5),
    "nesterov": OptimizerConfig("nesterov", lr=0.01, momentum=0.7, weight_decay=1e-3),
    "rmsprop": OptimizerConfig("rmsprop", lr=0.01, momentum=0.9, rho=0.9, eps=1e-3, weight_decay=1e-3),
    "adam": OptimizerConfig("adam", lr=0.01, beta1=0.8, beta2=0.99, eps=1e-3),
    "adamw": OptimizerConfig("adamw", lr=0.01, beta1=0.8, beta2=0.99, eps=1e-3, weight_decay=0.05),
    "adagrad": OptimizerConfig("adagrad", lr=0.01, eps=1e-3),
    "adadelta": OptimizerConfig("adadelta", lr=1.0, rho=0.95, eps=1e-4),
}


@pytest.mark.parametrize("optimizer", sorted(NON_DEFAULT))
def test_every_optimizer_setting_away_from_its_default_gives_the_same_parameters_in_float64(workers, digits, optimizer):
    _assert_one_update_in_float64(workers, digits, NON_DEFAULT[optimizer])


def _assert_one_update_in_float64(workers, digits, config: OptimizerConfig) -> None:
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes, ModelOptions(batchnorm="before"))
    weights = initial_weights(spec, "he_normal", 0)
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)[:STEPS]
    multipliers = {layer.name: 0.1 for layer in spec.layers if layer.group != "classifier"}
    runtime = RuntimeOptions(threads=1, precision="float64")
    args = (spec, weights, config, digits.x_train, digits.y_train, batches, None, None, RegularizationConfig())
    trained = {b: workers[b](probes.train, *args, multipliers, runtime)[0] for b in ("torch", "tensorflow")}
    assert max_abs_diff(trained["torch"], weights) > 1e-3, "training did not move the weights"
    gap = max_abs_diff(trained["torch"], trained["tensorflow"])
    assert gap <= 1e-11, f"{config}: float64 parameters differ by {gap:.2e} after {STEPS} steps"


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adams_first_step_is_torchs_length_not_shorter_by_a_float32_bias_correction(workers, digits, optimizer):
    """TensorFlow's Adam took 1 - beta2^t in float32 from beta2 rounded to float32, 1.3e-5 smaller than torch's
    Python double: every step 6.4e-6 shorter, for thousands of steps, a bias the 20-step tolerance cannot see. Over
    the elements of one step (about lr each), the median ratio of the steps is 1: rounding differs both ways. The
    mean holds beta1's correction to the float32 beta1 of the moment update: measured 7.5e-8, and 2.3e-7 with
    torch's double 0.9 in TensorFlow's correction alone (its moment takes 1 - beta1 in float32, 2.4e-7 above 0.1)."""
    spec = build_spec("mlp", digits.input_shape, digits.num_classes, ModelOptions(hidden=(32,)))
    weights = initial_weights(spec, "he_normal", 0)
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)[:1]
    config = OptimizerConfig(optimizer, lr=0.01)
    args = (spec, weights, config, digits.x_train, digits.y_train, batches, None, None, RegularizationConfig(), None)
    steps = {b: workers[b](probes.train, *args)[0] for b in ("torch", "tensorflow")}
    ratios = []
    for name, start in weights.items():
        torch_step, tf_step = (np.asarray(steps[b][name], np.float64) - start for b in ("torch", "tensorflow"))
        full = np.abs(torch_step) > 0.5 * config.lr  # Adam's first step: lr * g / (|g| + eps), lr where g is not tiny
        ratios.append(tf_step[full] / torch_step[full] - 1.0)
    ratio = np.concatenate(ratios)
    assert len(ratio) > 1000
    assert abs(float(np.median(ratio))) < 5e-7, f"{optimizer}: TensorFlow's steps {np.median(ratio):+.2e} of torch's"
    assert abs(float(np.mean(ratio))) < 1.5e-7, (
        f"{optimizer}: TensorFlow's steps {np.mean(ratio):+.2e} longer on average"
    )


def test_evaluation_agrees(workers, digits):
    spec = specs(digits)["convnet3"]
    weights = initial_weights(spec, "he_normal", 5)
    a = workers["torch"](probes.evaluate, spec, weights, digits.x_test, digits.y_test)
    b = workers["tensorflow"](probes.evaluate, spec, weights, digits.x_test, digits.y_test)
    assert a.count == b.count == len(digits.y_test)
    assert a.correct == b.correct
    assert abs(a.loss - b.loss) < 1e-5


def test_torch_sums_each_samples_evaluation_loss_in_float64_as_tensorflow_does(workers, digits):
    """torch summed each evaluation batch's losses in float32 and only the batch sums in float64, while TensorFlow
    widens every sample's loss first: the same val_loss by other arithmetic. Now torch's loss sum is the float64 sum
    of its float32 per-sample losses, to float64 rounding, where the float32 sum is off by far more."""
    spec = specs(digits)["convnet3"]
    weights = initial_weights(spec, "he_normal", 5)
    x, y = np.concatenate([digits.x_train, digits.x_test]), np.concatenate([digits.y_train, digits.y_test])
    stats, losses = workers["torch"](probes.torch_evaluation_and_sample_losses, spec, weights, x, y, 1000)
    assert losses.dtype == np.float32 and len(losses) == stats.count == len(y) > 1000
    in_float64 = math.fsum(losses.astype(np.float64).tolist())
    in_float32 = float(np.cumsum(losses, dtype=np.float32)[-1])
    assert abs(in_float32 - in_float64) > 1e-9 * in_float64, "the batch's float32 sum would not tell the two apart"
    assert stats.loss_sum == pytest.approx(in_float64, rel=1e-12, abs=0)
    assert stats.loss == pytest.approx(in_float64 / len(y), rel=1e-12, abs=0)
