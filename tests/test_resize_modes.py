"""--resize-mode: stretch, or torchvision's evaluation transform Resize(side) + CenterCrop(size), folded into the
input pipeline's one bilinear gather so both backends compute the same pixels; --normalize overrides a weight set's
normalisation, and both are recorded with the trial."""

from __future__ import annotations

import backend_probes as probes
import numpy as np
import pytest
import resize_probes

from harness.cli_options import build_parser, overrides_from_args
from harness.config import TransferOptions, TrialConfig
from harness.errors import InputError
from harness.input_pipeline import InputConfig, resize_reference, resized_size, transformed_shape, with_input_pipeline
from harness.pretrained import with_weight_preprocessing
from harness.spec import Dense, Flatten, ModelSpec, Resize2D, spec_from_dict, spec_to_dict
from harness.weights import initial_weights


@pytest.mark.parametrize("in_size, side, crop", [(32, 256, 224), (32, 232, 224), (8, 37, 32), (28, 342, 299)])
def test_resize_crop_is_the_resize_then_the_centred_crop_bit_for_bit(in_size, side, crop):
    x = np.random.default_rng(0).uniform(0, 1, size=(2, in_size, in_size, 3)).astype(np.float32)
    top = int(round((side - crop) / 2.0))  # torchvision's CenterCrop offset
    full = resize_reference(x, (side, side))[:, top : top + crop, top : top + crop]
    assert np.array_equal(resize_reference(x, (crop, crop), (side, side)), full)


def test_the_resized_side_follows_torchvisions_resize_of_the_shorter_side():
    crop = InputConfig(size=224, resize_mode="resize-crop")
    assert resized_size(crop, (32, 32)) == (256, 256)
    assert resized_size(crop, (32, 48)) == (256, 384)  # Resize(256): the shorter side to 256, the other in ratio
    assert resized_size(InputConfig(size=224, resize_mode="resize-crop", resize_side=232), (32, 32)) == (232, 232)
    assert resized_size(InputConfig(size=224), (32, 32)) is None
    with pytest.raises(InputError, match="resize_mode"):
        InputConfig(size=224, resize_mode="crop")


def _pipeline(config: InputConfig, data_shape: tuple[int, ...]) -> ModelSpec:
    model = ModelSpec(
        "probe",
        transformed_shape(config, data_shape),
        2,
        (Flatten(name="flat", group="f"), Dense(name="out", group="c", units=2)),
    )
    return with_input_pipeline(model, config, data_shape)


def test_both_backends_compute_the_same_resize_crop_pixels_as_torchvision(workers):
    config = InputConfig(size=56, channels=3, resize_mode="resize-crop", resize_side=64)
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 8, 8, 3)).astype(np.float32)
    spec = _pipeline(config, (8, 8, 3))
    assert spec.layers[0] == Resize2D(name="input_resize", group="f", output_size=(56, 56), resized=(64, 64))
    assert spec_from_dict(spec_to_dict(spec)) == spec
    weights = initial_weights(spec, "he_normal", 0)
    expected = resize_reference(x, (56, 56), (64, 64))
    for backend in ("torch", "tensorflow"):
        pixels = workers[backend](probes.features, spec, weights, x, "input_resize")
        assert np.array_equal(pixels, expected), backend  # identical pixels: one gather in both backends
    theirs = workers["torch"](resize_probes.torchvision_eval_transform, x, 64, 56)
    assert np.max(np.abs(theirs - expected)) <= 1e-6  # torchvision's own Resize + CenterCrop, to float32 rounding


def _with_weights(given: tuple[str, ...] = (), **input_options) -> InputConfig:
    transfer = TransferOptions(pretrained="torchvision:mobilenet_v2")
    trial = TrialConfig(
        "fine_tune", "mobilenet_v2", "digits", "torch", 0, 1, transfer=transfer, input=InputConfig(**input_options)
    )
    return with_weight_preprocessing(trial, given).input


def test_a_weight_sets_preprocessing_is_the_default_and_given_options_override_it():
    assert _with_weights() == InputConfig(224, 3, "imagenet", "resize-crop", 232)  # mobilenet_v2's DEFAULT (V2)
    assert _with_weights(size=32).resize_side == 33  # the weight set's ratio 232/224 at any size
    assert _with_weights(("input.normalize",)).normalize == "none"  # --normalize none overrides the weights'
    assert _with_weights(("input.resize_mode",)).resize_mode == "stretch"
    assert _with_weights(("input.normalize",), normalize="tf").normalize == "tf"


def _overrides(*args: str) -> dict:
    case = ["run", "--strategy", "fine_tune", "--model", "resnet18", "--dataset", "digits"]
    return overrides_from_args(build_parser().parse_args([*case, *args]))


def test_the_options_reach_the_trial_and_are_recorded():
    given = _overrides("--normalize", "none", "--resize-mode", "resize-crop")
    assert given["input.normalize"] == "none" and given["input.resize_mode"] == "resize-crop"
    # the weight set decides, as by default (without weights the option is refused: tests/test_cli.py)
    assert "input.normalize" not in _overrides("--normalize", "weights", "--pretrained", "torchvision:resnet18")
    trial = TrialConfig("scratch", "convnet3", "digits", "torch", 0, 1, input=InputConfig(32, 3, "none", "resize-crop"))
    assert '"resize_mode": "resize-crop"' in trial.to_json()
