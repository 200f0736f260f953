"""The input pipeline: one resize / channel / normalisation implementation, identical pixels in every backend."""

from __future__ import annotations

import backend_probes as probes
import input_probes
import numpy as np
import pytest

from harness.config import RuntimeOptions, TrialConfig
from harness.errors import InputError
from harness.input_pipeline import (
    InputConfig,
    bilinear_taps,
    check_input,
    pipeline_data,
    resize_reference,
    transformed_shape,
    with_input_pipeline,
)
from harness.models import ModelOptions, build_spec
from harness.spec import Dense, Flatten, ModelSpec, Normalize, RepeatChannels, Resize2D, spec_from_dict, spec_to_dict
from harness.weights import initial_weights

IMAGENET = InputConfig(size=20, channels=3, normalize="imagenet")


@pytest.mark.parametrize("in_size, out_size", [(8, 32), (28, 227), (32, 224), (7, 7), (10, 4)])
def test_taps_reproduce_pytorchs_and_tensorflows_bilinear_resize(workers, in_size, out_size):
    x = np.random.default_rng(0).uniform(0, 1, size=(2, in_size, in_size, 2)).astype(np.float32)
    ours = resize_reference(x, (out_size, out_size))
    for backend in ("torch", "tensorflow"):
        theirs = workers[backend](input_probes.framework_resize, x, (out_size, out_size))
        assert theirs.shape == ours.shape
        # Pixels in [0, 1]: a few float32 ulps (6e-8 each) of rounding order and of the weights, computed in float32
        # by each framework from the same formula, separate them.
        assert np.max(np.abs(theirs - ours)) <= 1e-6, backend


def test_taps_clamp_at_the_borders_and_weights_sum_to_one():
    low, high, w_low, w_high = bilinear_taps(8, 32)
    assert low.min() == 0 and high.max() == 7 and np.all(high - low <= 1)
    assert np.allclose(w_low + w_high, 1.0) and w_high[0] == 0.0  # source clamped at 0 for the first rows


def _pipeline_spec(data_shape: tuple[int, ...]) -> ModelSpec:
    model = ModelSpec(
        "probe",
        transformed_shape(IMAGENET, data_shape),
        2,
        (Flatten(name="flat", group="f"), Dense(name="out", group="c", units=2)),
    )
    return with_input_pipeline(model, IMAGENET, data_shape)


def test_the_pipeline_is_a_prefix_of_neutral_layers_that_round_trips():
    spec = _pipeline_spec((8, 8, 1))
    assert [type(l) for l in spec.layers[:3]] == [Resize2D, RepeatChannels, Normalize]
    assert spec.input_shape == (8, 8, 1) and spec.layers[0].group == "f"
    assert spec_from_dict(spec_to_dict(spec)) == spec


@pytest.mark.parametrize("data_shape", [(8, 8, 1), (7, 9, 3)], ids=["grayscale", "rgb"])
def test_every_backend_computes_the_same_pixels_bit_for_bit(workers, data_shape):
    """RGB data has nothing between the resize's last sum and the normalisation's subtraction, where TensorFlow's
    graph optimiser once reassociated them (other pixels than torch's); grayscale has the channel tile there."""
    x = np.random.default_rng(1).uniform(0, 1, size=(6, *data_shape)).astype(np.float32)
    spec = _pipeline_spec(data_shape)
    weights = initial_weights(spec, "he_normal", 0)
    mean, inv_std = np.float32([0.485, 0.456, 0.406]), np.float32(1) / np.float32([0.229, 0.224, 0.225])
    expected = (np.repeat(resize_reference(x, (20, 20)), 3 // data_shape[-1], axis=-1) - mean) * inv_std
    for backend in ("torch", "tensorflow"):
        pixels = workers[backend](probes.features, spec, weights, x, "input_normalize")
        assert pixels.shape == (6, 20, 20, 3) and np.array_equal(pixels, expected), backend


@pytest.mark.parametrize(
    ("backend", "runtime"),
    [
        ("torch", {}),
        ("torch", {"channels_last": True}),
        ("tensorflow", {}),
        ("tensorflow", {"tf_mode": "fit"}),
        ("tensorflow", {"tf_mode": "eager"}),
        ("tensorflow", {"jit_compile": True}),
    ],
)
def test_the_training_step_feeds_the_network_the_reference_pixels(workers, backend, runtime):
    """The pixels were pinned on the evaluation path alone; the training step's only through losses at a tolerance
    that hides a float32 step in every pixel. Read back exactly (a zero network's first SGD step writes 0.5 x each
    pixel into its kernel), with and without crop/flip, on grayscale and RGB data. Under XLA, which fuses the
    resize's multiply-adds into FMAs, a pixel may be a float32 step off, scaled by normalisation (docs/zoo.md)."""
    for shape, augmented in (((8, 8, 1), False), ((8, 8, 1), True), ((7, 9, 3), True)):
        got, reference = workers[backend](input_probes.training_step_pixels, runtime, shape, augmented)
        if runtime.get("jit_compile"):
            assert np.max(np.abs(got - reference)) <= 7.2e-7 * 1.01, (shape, augmented)
        else:
            assert np.array_equal(got, reference), (shape, augmented, np.max(np.abs(got - reference)))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_leaves_the_pipelines_pixels_in_float32(workers, precision):
    """Torch's autocast runs the pipeline's gathers, multiplies and subtractions in float32 and rounds only the first
    layer's input; a global Keras mixed policy would build the pipeline in bfloat16 / float16 too (other pixels)."""
    x = np.random.default_rng(2).uniform(0, 1, size=(6, 8, 8, 1)).astype(np.float32)
    spec = _pipeline_spec((8, 8, 1))
    weights = initial_weights(spec, "he_normal", 0)
    pixels = {
        (b, p): workers[b](input_probes.pipeline_pixels, spec, weights, x, p)
        for b in ("torch", "tensorflow")
        for p in ("float32", precision)
    }
    for backend in ("torch", "tensorflow"):
        mixed = pixels[backend, precision]
        assert mixed.dtype == np.float32 and np.array_equal(mixed, pixels[backend, "float32"]), backend
    assert np.array_equal(pixels["torch", precision], pixels["tensorflow", precision])


def test_a_resized_trial_gives_the_same_rows_in_both_backends(workers):
    base = dict(
        strategy="scratch", model="convnet3", dataset="digits", seed=0, epochs=2, input=InputConfig(size=16, channels=3)
    )
    rows = {
        b: workers[b](probes.trial_rows, TrialConfig(backend=b, **base).to_dict(), "resized")
        for b in ("torch", "tensorflow")
    }
    last = {b: r[-1] for b, r in rows.items()}
    assert last["torch"]["test_acc"] == last["tensorflow"]["test_acc"] > 0.8
    # The first epoch's loss agrees to float32 rounding; later epochs drift apart by the chaotic amplification of
    # fp32 summation-order differences that any training shows (measured 1.3e-4 relative after epoch 2 here).
    first = {b: r[0]["train_loss"] for b, r in rows.items()}
    assert first["torch"] == pytest.approx(first["tensorflow"], rel=1e-6)
    assert '"size": 16' in last["torch"]["config_json"]


def test_cifar10_reaches_pretrained_weights_as_its_pixels_and_scratch_training_standardised(tmp_path):
    """The full imagenet_transfer tier (S2/S3 on CIFAR-10 from ImageNet weights) normalises for the weights: the
    standardisation the notebooks train from scratch with is undone first, never stacked under ImageNet's."""
    from test_data import write_cifar_folder

    from harness.backend import BACKENDS
    from harness.data import load_dataset
    from harness.data.tasks import derive
    from harness.suites import case_trials, suite

    write_cifar_folder(tmp_path / "cifar10")
    cifar = load_dataset("cifar10", tmp_path, download=False)
    trials = [t for c in suite("imagenet_transfer").cases for t in case_trials(c, "imagenet_transfer", BACKENDS, 1)]
    assert {t.dataset for t in trials} == {"cifar10"} and {t.input.normalize for t in trials} == {"imagenet"}
    for trial in trials:  # preflight's check: each case's pipeline fits CIFAR-10
        check_input(trial.input, derive(cifar, trial.task).input_shape, cifar.normalization, True)
    pixels = pipeline_data(trials[0].input, cifar)
    assert pixels.normalization == "pixels / 255" and 0.0 <= pixels.x_train.min() and pixels.x_train.max() <= 1.0
    assert pipeline_data(InputConfig(), cifar) is cifar  # scratch training keeps the notebooks' standardisation
    digits = load_dataset("digits")
    assert pipeline_data(InputConfig(size=32, channels=3, normalize="imagenet"), digits) is digits  # in [0, 1]


def test_a_trial_normalising_for_pretrained_weights_trains_on_cifar10s_pixels_not_its_standardisation(
    tmp_path, workers
):
    """A worker's trial (torch; the pipeline is backend-neutral) on CIFAR-10 as its files give it, standardised,
    trains exactly as on the pixels / 255 shipped to it: the standardisation is undone before ImageNet's statistics
    apply. Stacking both (the standardised arrays taken as pixels) trains on other inputs: another loss."""
    from dataclasses import replace

    from test_data import write_cifar_folder

    from harness.data import load_dataset
    from harness.data.registry import unit_range_pixels

    write_cifar_folder(tmp_path / "cifar10")
    cifar = load_dataset("cifar10", tmp_path, download=False)
    config = TrialConfig(
        strategy="scratch", model="mlp", dataset="cifar10", backend="torch", seed=0, epochs=1, data_dir=str(tmp_path),
        input=InputConfig(normalize="imagenet"), runtime=RuntimeOptions(threads=1),
    )  # fmt: skip

    def losses(*dataset: object) -> list[float]:
        rows = workers["torch"](probes.trial_rows, config.to_dict(), "cifar-pixels", *dataset)
        assert {r["status"] for r in rows} == {"ok"}, rows
        return [r["train_loss"] for r in rows if r.get("epoch") is not None]

    from_files = losses()
    assert from_files == losses(unit_range_pixels(cifar))
    stacked = replace(cifar, normalization="pixels / 255", pixel_stats=None)  # standardised arrays, taken as pixels
    assert from_files != losses(stacked)


def test_preflight_refuses_pipelines_that_do_not_fit_the_data():
    assert transformed_shape(InputConfig(size=32, channels=3), (28, 28, 1)) == (32, 32, 3)
    with pytest.raises(InputError, match="--input-channels 3"):
        check_input(InputConfig(normalize="imagenet"), (28, 28, 1), "pixels / 255")
    with pytest.raises(InputError, match=r"pixels in \[0, 1\]"):
        check_input(InputConfig(normalize="imagenet"), (32, 32, 3), "per-channel standardisation (train mean/std)")
    # a standardised dataset that can return to its pixels (CIFAR-10) is taken: pipeline_data restores them
    check_input(InputConfig(normalize="imagenet"), (32, 32, 3), "per-channel standardisation (train mean/std)", True)
    with pytest.raises(InputError, match="input-channels"):
        check_input(InputConfig(channels=2), (32, 32, 3), "pixels / 255")
    with pytest.raises(InputError, match="normalize"):
        InputConfig(normalize="zscore")


def test_a_fresh_head_is_drawn_alike_whatever_input_pipeline_feeds_the_backbone():
    """The head a reuse strategy puts on a backbone was drawn with the pipeline's layers counted in its layer index:
    the same seed gave another head once --normalize or --input-channels was added."""
    from types import SimpleNamespace

    from harness.strategies.reuse import with_target_head

    ctx = SimpleNamespace(config=SimpleNamespace(init="glorot_uniform", seed=3))
    network = build_spec("convnet3", (8, 8, 3), 10, ModelOptions())
    weights = initial_weights(network, "glorot_uniform", 0)
    _, plain, _ = with_target_head(ctx, network, weights, 5, always_new=True)
    for config, data_shape in ((InputConfig(normalize="imagenet"), (8, 8, 3)), (InputConfig(channels=3), (8, 8, 1))):
        piped = with_input_pipeline(network, config, data_shape)
        assert len(piped.layers) == len(network.layers) + 1
        _, drawn, _ = with_target_head(ctx, piped, weights, 5, always_new=True)
        assert all(np.array_equal(drawn[k], plain[k]) for k in plain), config


def test_a_backbone_xfbench_trained_behind_a_pipeline_is_fed_as_it_was_when_given_as_weights(tmp_path):
    """A neutral .npz was always fed the data as it is: a backbone trained behind --normalize imagenet, --input-size
    and --input-channels 3 (its spec holds that prefix) got raw 8x8 grayscale pixels through --weights."""
    from dataclasses import replace

    from harness.checkpoints import save_checkpoint
    from harness.config import TransferOptions
    from harness.input_pipeline import pipeline_of, with_input_pipeline
    from harness.pretrained import with_weight_preprocessing

    trained_as = InputConfig(size=16, channels=3, normalize="imagenet")
    network = build_spec("convnet3", (16, 16, 3), 5, ModelOptions())
    spec = with_input_pipeline(network, trained_as, (8, 8, 1))
    assert pipeline_of(spec) == trained_as and pipeline_of(network) == InputConfig()
    path, plain = tmp_path / "backbone.npz", tmp_path / "plain.npz"
    save_checkpoint(path, spec, initial_weights(spec, "glorot_uniform", 0), {})
    save_checkpoint(plain, network, initial_weights(network, "glorot_uniform", 0), {})
    trial = TrialConfig(
        "fine_tune", "convnet3", "digits", "torch", 0, 1, transfer=TransferOptions(weights_file=str(path))
    )
    assert with_weight_preprocessing(trial).input == trained_as
    # what the command line gives still wins: --normalize none feeds the data as it is
    given = replace(trial, input=InputConfig(normalize="none"))
    assert with_weight_preprocessing(given, {"input.normalize"}).input.normalize == "none"
    unpiped = replace(trial, transfer=TransferOptions(weights_file=str(plain)))
    assert with_weight_preprocessing(unpiped) == unpiped  # a checkpoint without a pipeline: the data as it is
