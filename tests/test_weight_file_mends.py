"""Weight files the conversion let through, or refused with the wrong words (a review's cases): weights holding NaN
passed the verification; an edited spec file reused the old conversion; a neutral .npz ran as another network with
the same tensor shapes; a python: factory's file took torchvision's ImageNet preprocessing, and --normalize caffe
folded nothing into a torch file; RGB weights fed one channel ended in a developer's advice; a file of another
width was told to pass the matching --model, not the width (review 177).

Each framework's step runs in the session's probe worker of that framework (tests/weight_file_probes.py), or, where
the .npz is refused before any framework is imported, in this process."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import weight_file_probes as probes
from test_pretrained import BOTH, SHAPE, _trial, weights_home  # noqa: F401 (weights_home: autouse, no user cache)

from harness import weights_worker
from harness.checkpoints import load_checkpoint, save_checkpoint
from harness.input_pipeline import InputConfig
from harness.models import ModelOptions, build_spec
from harness.pretrained import (
    Preprocessing,
    WeightsRef,
    prepare_weights,
    preprocessing,
    run_worker,
    verify,
    weights_read_bgr,
    weights_ref,
)
from harness.pretrained import with_weight_preprocessing as with_preprocessing
from harness.spec import Activation, spec_to_dict
from harness.weight_files import BadWeightsError
from harness.weights import initial_weights

NARROW = ModelOptions(width_multiplier=0.25)
FACTORY = "python:weight_file_probes:small_net"
SMALL_NET = {"0.weight": (4, 3, 3, 3), "0.bias": (4,), "4.weight": (10, 4), "4.bias": (10,)}


@pytest.fixture(scope="module")
def runner(workers):
    return probes.probe_runner(workers)


def _in_this_process(argv: list[str]) -> tuple[int, str]:
    return weights_worker.main(argv), ""  # a refused .npz stops before any framework is imported


def _here() -> object:
    """A runner of each step in this process (an .npz it refuses, it refuses before importing a framework)."""
    return functools.partial(run_worker, call=_in_this_process)


def _cnn_small_npz(folder: Path, name: str = "cnn_small.npz", **options) -> Path:
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions(**options))
    path = folder / name
    save_checkpoint(path, spec, initial_weights(spec, "he_normal", 0), {})
    return path


@pytest.fixture(scope="module")
def narrow_pth(workers, tmp_path_factory) -> Path:
    """torchvision's mobilenet_v2 at width 0.25 (random weights, 10 classes) as a .pth."""
    path = tmp_path_factory.mktemp("narrow") / "mobilenet_v2_narrow.pth"
    workers["torch"](probes.write_torchvision, "mobilenet_v2", str(path), 10, 0, 0.25)
    return path


@pytest.fixture(scope="module")
def keras_file(workers, tmp_path_factory) -> Path:
    """Keras' MobileNetV2 (random weights, 10 classes) as a .weights.h5."""
    path = tmp_path_factory.mktemp("keras") / "MobileNetV2.weights.h5"
    workers["tensorflow"](probes.write_keras, "MobileNetV2", str(path), SHAPE, 10)
    return path


# 1. NaN in the weights


def test_an_npz_holding_nan_is_refused_naming_the_tensor(tmp_path):
    """The review's case: one NaN in a kernel passed the verification (a NaN gap compares false against the bound)
    and the trial 'diverged' at its first epoch."""
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    weights = initial_weights(spec, "he_normal", 0)
    weights["conv2/kernel"] = weights["conv2/kernel"].copy()
    weights["conv2/kernel"][0, 0, 0, 0] = np.nan
    save_checkpoint(tmp_path / "nan.npz", spec, weights, {})
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("cnn_small", tmp_path / "nan.npz"), (8, 8, 1), tmp_path / "c", (), _here())
    message = str(error.value)
    assert "Expected finite values in every tensor of nan.npz. Received: NaN in tensor 'conv2/kernel'" in message
    assert "(1 of 9216 values)" in message and "export the weights again" in message, message
    assert not list((tmp_path / "c").rglob("*.npz"))


def test_a_nan_gap_is_no_pass(tmp_path):
    """verify() compared `gap > bound`, false for NaN, and wrote the pass marker."""
    checkpoint = tmp_path / "k.npz"

    def nan_gap(backend: str, mode: str, request: dict, out: Path) -> dict:
        return {"gap": float("nan"), "bound": 1e-4, "first_layer": "logits", "layer_gap": float("nan")}

    with pytest.raises(BadWeightsError, match="Received: a gap of nan"):
        verify(checkpoint, "torch", nan_gap)
    assert not list(tmp_path.glob("k.verified-*"))


def test_a_pth_holding_inf_is_refused_naming_the_tensor(workers, runner, narrow_pth, tmp_path):
    state = workers["torch"](probes.read_torch_state, str(narrow_pth))
    state["features.3.conv.0.1.running_var"] = state["features.3.conv.0.1.running_var"].copy()
    state["features.3.conv.0.1.running_var"][2] = np.inf
    path = tmp_path / "inf.pth"
    workers["torch"](probes.write_torch_state, str(path), state)
    trial = _trial("mobilenet_v2", path, model_options=NARROW)
    with pytest.raises(BadWeightsError, match=r"Received: inf in tensor 'features.3.conv.0.1.running_var' \(1 of"):
        prepare_weights(trial, SHAPE, tmp_path / "cache", (), runner)


def test_a_keras_file_holding_nan_is_refused_naming_the_variable(runner, keras_file, tmp_path):
    path = tmp_path / "nan.weights.h5"
    path.write_bytes(keras_file.read_bytes())
    with h5py.File(path, "r+") as handle:
        kernel = handle["layers/conv2d/vars/0"]
        values = kernel[()]
        values[0, 0, 0, 0] = np.nan
        kernel[...] = values
    with pytest.raises(BadWeightsError, match=r"Received: NaN in tensor '[\w/]*kernel' \(1 of 864 values\)"):
        prepare_weights(_trial("keras:MobileNetV2", path), SHAPE, tmp_path / "cache", (), runner)


# 2. and 3. A spec file edited, an .npz of another network


def _write_spec(path: Path, spec) -> Path:
    path.write_text(json.dumps(spec_to_dict(spec)))
    return path


def test_an_edited_spec_file_converts_again(runner, tmp_path):
    """The review's case: the key held a spec file by its path, so the old conversion (its spec) served the edited
    file. Here the edit renames the groups (which the strategies freeze by), as the weights allow."""
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    npz = _cnn_small_npz(tmp_path)
    model = _write_spec(tmp_path / "net.json", spec)
    trial = _trial(str(model), npz)
    first = prepare_weights(trial, (8, 8, 1), tmp_path / "cache", (), runner)
    assert set(load_checkpoint(first)[0].groups()) == {"features", "classifier"}
    renamed = tuple(replace(layer, group="stem" if layer.group == "features" else "head") for layer in spec.layers)
    _write_spec(model, replace(spec, layers=renamed))
    second = prepare_weights(trial, (8, 8, 1), tmp_path / "cache", (), runner)
    assert second != first and set(load_checkpoint(second)[0].groups()) == {"stem", "head"}


def test_a_spec_file_edited_into_another_network_is_refused_not_served_the_old_conversion(runner, tmp_path):
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    npz = _cnn_small_npz(tmp_path)
    model = _write_spec(tmp_path / "net.json", spec)
    trial = _trial(str(model), npz)
    prepare_weights(trial, (8, 8, 1), tmp_path / "cache", (), runner)
    tanh = tuple(replace(layer, kind="tanh") if isinstance(layer, Activation) else layer for layer in spec.layers)
    _write_spec(model, replace(spec, layers=tanh))
    with pytest.raises(BadWeightsError, match=r"layer 'act1' \(Activation\) has kind='relu' in the file"):
        prepare_weights(trial, (8, 8, 1), tmp_path / "cache", (), runner)


@pytest.mark.parametrize(
    ("options", "found"),
    [
        ({"activation": "tanh"}, "layer 'act1' (Activation) has kind='relu' in the file, kind='tanh' in --model's"),
        ({"activation": "elu"}, "layer 'act1' (Activation) has kind='relu' in the file, kind='elu' in --model's"),
    ],
)
def test_an_npz_of_another_network_with_the_same_tensors_is_refused_naming_layer_and_field(
    runner, tmp_path, options, found
):
    """The review's case: a ReLU cnn_small's .npz loaded with --activation tanh: only the tensors' shapes were
    compared, not the spec the file holds. Another dropout rate is the trial's choice, not another network (taken:
    converted in the workers, as the conversion imports a framework)."""
    npz = _cnn_small_npz(tmp_path)
    prepare_weights(
        _trial("cnn_small", npz, model_options=ModelOptions(dropout=0.9)), (8, 8, 1), tmp_path / "d", (), runner
    )
    trial = _trial("cnn_small", npz, model_options=ModelOptions(**options))
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(trial, (8, 8, 1), tmp_path / "cache", (), _here())
    message = str(error.value)
    assert message.startswith("Expected the weights in cnn_small.npz to be of --model cnn_small's network") and (
        found in message
    ), message
    assert "pass the model options the file was trained with" in message


def test_an_npz_of_the_same_network_under_other_layer_names_loads(runner, tmp_path):
    """Layer names and groups are not the network: a spec file naming its activations otherwise takes the file."""
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    renamed = tuple(
        replace(layer, name=f"{layer.name}_x") if isinstance(layer, Activation) else layer for layer in spec.layers
    )
    model = _write_spec(tmp_path / "net.json", replace(spec, layers=renamed))
    checkpoint = prepare_weights(_trial(str(model), _cnn_small_npz(tmp_path)), (8, 8, 1), tmp_path / "c", (), runner)
    assert load_checkpoint(checkpoint)[0].layers[1].name == "act1_x"


# 4. and 5. A python: factory's file


def test_a_python_factorys_file_follows_no_preprocessing_convention(tmp_path):
    """The review's case: it got torchvision's ImageNet convention (224 px, ImageNet mean/std, resize-crop 256)."""
    path = tmp_path / "net.pth"
    path.write_bytes(b"a state dict")
    trial = _trial(FACTORY, path)
    ref = weights_ref(trial)
    assert ref is not None and preprocessing(ref, FACTORY) == Preprocessing(None, "none", "stretch", channels=None)
    assert with_preprocessing(trial).input == InputConfig()  # the data as it is, stretched if --input-size says
    given = _trial(FACTORY, path, input=InputConfig(size=16, normalize="caffe"))
    assert with_preprocessing(given, ("input.size", "input.normalize")).input == InputConfig(16, None, "caffe")
    # a zoo's weights in the factory's network keep the zoo's convention, and are never read as BGR
    zoo = WeightsRef("torchvision", "resnet18", "")
    assert preprocessing(zoo, FACTORY) == preprocessing(zoo, "torchvision:resnet18")
    assert preprocessing(zoo, FACTORY).normalize == "imagenet"
    assert not weights_read_bgr(zoo, replace(given, input=InputConfig(normalize="caffe")))


def test_a_python_factorys_torch_file_read_bgr_with_normalize_caffe_is_folded_and_verified(workers, runner, tmp_path):
    """The review's case: --normalize caffe promised the BGR fold, the torch converter ignored it. The first
    convolution's input channels are reversed, and each backend reproduces the source's logits on BGR images from
    the converted network on RGB ones."""
    rng = np.random.default_rng(0)
    state = {k: rng.normal(size=s).astype(np.float32) for k, s in SMALL_NET.items()}
    path = tmp_path / "net.pth"
    workers["torch"](probes.write_torch_state, str(path), state)
    caffe = with_preprocessing(_trial(FACTORY, path, input=InputConfig(normalize="caffe")), ("input.normalize",))
    checkpoint = prepare_weights(caffe, SHAPE, tmp_path / "cache", BOTH, runner)
    spec, weights, _ = load_checkpoint(checkpoint)
    kernel = weights[f"{spec.layers[0].name}/kernel"]
    source = state["0.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
    assert np.array_equal(kernel, source[:, :, ::-1, :]) and not np.array_equal(kernel, source)
    assert len(list(checkpoint.parent.glob(f"{checkpoint.stem}.verified-*.json"))) == 2
    plain = prepare_weights(_trial(FACTORY, path), SHAPE, tmp_path / "cache", (), runner)
    assert plain != checkpoint and np.array_equal(load_checkpoint(plain)[1][f"{spec.layers[0].name}/kernel"], source)


def test_a_torch_file_of_a_module_registering_its_head_first_reads_its_class_count_from_the_head(
    workers, runner, tmp_path
):
    """The class count came from the last Linear registered: a module that registers its head before a hidden
    Linear had the hidden layer's rows read as its classes, and its own correct file was refused as mismatched."""
    rng = np.random.default_rng(0)
    for factory, hidden in (("head_first_net", 8), ("head_first_wide_net", 1000)):  # 1000: an ImageNet head's width
        shapes = {"fc.weight": (10, hidden), "fc.bias": (10,), "conv.weight": (4, 3, 3, 3), "conv.bias": (4,)}
        shapes |= {"hidden.weight": (hidden, 4), "hidden.bias": (hidden,)}
        state = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
        path = tmp_path / f"{factory}.pth"
        workers["torch"](probes.write_torch_state, str(path), state)
        trial = _trial(f"python:weight_file_probes:{factory}", path)
        spec, weights, _ = load_checkpoint(prepare_weights(trial, SHAPE, tmp_path / "cache", (), runner))
        assert spec.num_classes == 10, factory
        assert np.array_equal(weights[f"{spec.layers[-1].name}/kernel"], state["fc.weight"].T), factory


def test_a_torch_networks_recorded_flatten_output_is_in_the_backends_order(workers):
    """Kept in torch's C,H,W order, a failed verification's first differing layer was the Flatten of every network
    whose map had several channels and pixels (AlexNet, VGG, most users' CNNs), not the layer at fault."""
    assert workers["torch"](probes.flatten_output_gap) == 0.0


def test_a_python_factory_read_for_a_torch_file_is_called_as_its_conversion_calls_it_and_must_be_a_module(
    workers, runner, tmp_path
):
    """The review's cases: the torch file's reader called every factory with num_classes=..., so a positional-only
    one (which the conversion calls positionally) crashed (exit 1); a Keras factory crashed on ``.eval()`` (exit 1)."""
    rng = np.random.default_rng(0)
    state = {k: rng.normal(size=s).astype(np.float32) for k, s in SMALL_NET.items()}
    path = tmp_path / "net.pth"
    workers["torch"](probes.write_torch_state, str(path), state)
    positional = _trial("python:weight_file_probes:small_net_positional_only", path)
    spec, weights, _ = load_checkpoint(prepare_weights(positional, SHAPE, tmp_path / "cache", (), runner))
    assert np.array_equal(weights[f"{spec.layers[0].name}/kernel"], state["0.weight"].transpose(2, 3, 1, 0))
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("python:weight_file_probes:not_a_torch_module", path), SHAPE, tmp_path / "c", (), runner)
    assert (
        "Expected python:weight_file_probes:not_a_torch_module to return a torch nn.Module, to read a PyTorch weight "
        "file (.pth, .pt, .safetensors) into. Received: weight_file_probes.NotAModule." in str(error.value)
    ), error.value


# 6. RGB weights fed one channel


def test_rgb_torch_weights_fed_one_channel_say_which_option_to_change(runner, narrow_pth, tmp_path):
    """The review's case: --input-channels 1 with RGB weights ended in 'Generate them with
    harness.weights.initial_weights', a developer's advice."""
    trial = _trial("mobilenet_v2", narrow_pth, model_options=NARROW, input=InputConfig(size=32, channels=1))
    trial = with_preprocessing(trial, ("input.size", "input.channels"))
    assert trial.input.channels == 1
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(trial, (32, 32, 1), tmp_path / "cache", (), runner)
    message = str(error.value)
    assert "Expected inputs with the 3 channels the weights in mobilenet_v2_narrow.pth take" in message, message
    assert "Received: inputs with 1. To fix, feed them 3: drop --input-channels 1" in message, message
    assert "initial_weights" not in message


def test_rgb_keras_weights_fed_one_channel_say_which_option_to_change(runner, keras_file, tmp_path):
    trial = _trial("keras:MobileNetV2", keras_file)
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(trial, (32, 32, 1), tmp_path / "cache", (), runner)
    message = str(error.value)
    assert "Expected inputs with the 3 channels the weights in MobileNetV2.weights.h5 take" in message, message
    assert "drop --input-channels 1" in message, message


def test_an_npz_of_a_backbone_trained_behind_an_input_pipeline_is_its_network():
    """xfbench saves a backbone's spec with the input pipeline it trained behind (--input-channels 3 on digits: a
    channel repeat in front): the network check compared that layer with the model's first and refused the file."""
    from harness.input_pipeline import InputConfig, with_input_pipeline, without_input_pipeline
    from harness.weights_worker import check_same_network

    inner = build_spec("cnn_small", (8, 8, 3), 10, ModelOptions())
    saved = with_input_pipeline(inner, InputConfig(size=16, channels=3, normalize="imagenet"), (8, 8, 1))
    assert [type(layer).__name__ for layer in saved.layers[:3]] == ["Resize2D", "RepeatChannels", "Normalize"]
    assert without_input_pipeline(saved).layers == inner.layers and without_input_pipeline(inner) == inner
    check_same_network(saved, inner, "backbone.npz", "cnn_small")
    tanh = build_spec("cnn_small", (8, 8, 3), 10, ModelOptions(activation="tanh"))
    with pytest.raises(BadWeightsError, match="layer 'act1' \\(Activation\\) has kind='relu' in the file"):
        check_same_network(saved, tanh, "backbone.npz", "cnn_small")


# 7. Trials that share a weight file but not what its conversion follows (review 150)


def _prepared_by_preflight(trials, digits, cache: Path, runner, monkeypatch) -> dict[str, Path]:
    """Each trial's checkpoint as a run finds it: prepared by the preflight (harness.preflight._prepare_pretrained,
    its steps in the probe workers), then looked up as harness.strategies.reuse does, by the sha256 it recorded."""
    from harness import preflight
    from harness.input_pipeline import transformed_shape
    from harness.pretrained import checkpoint_for

    monkeypatch.setattr(preflight, "prepare_weights", functools.partial(prepare_weights, runner=runner))
    keys: dict[str, str] = {}
    preflight._prepare_pretrained(list(trials), {"digits": digits}, cache, keys)
    return {
        t.variant: checkpoint_for(
            replace(t, weights_key=keys[t.trial_id]), transformed_shape(t.input, (8, 8, 1)), cache
        )
        for t in trials
    }


def test_trials_of_one_npz_with_other_model_options_each_load_their_own_conversion(
    runner, digits, tmp_path, monkeypatch
):
    """The review's case: the preflight converted once per (weights, model, shape), without the model options, so
    the --dropout 0.3 case's trials found no conversion (FileNotFoundError inside Ray, not exit 2 before it)."""
    from harness.spec import Dropout

    npz = _cnn_small_npz(tmp_path)
    half = replace(_trial("cnn_small", npz, model_options=ModelOptions(dropout=0.5)), variant="d5")
    trials = (half, replace(half, variant="d3", model_options=ModelOptions(dropout=0.3)))
    found = _prepared_by_preflight(trials, digits, tmp_path / "cache", runner, monkeypatch)
    rates = {variant: [layer.rate for layer in load_checkpoint(path)[0].layers if isinstance(layer, Dropout)]
             for variant, path in found.items()}  # fmt: skip
    assert rates == {"d5": [0.5, 0.5], "d3": [0.3, 0.3]}, rates


@pytest.mark.parametrize("first", ["caffe", "plain"])
def test_trials_of_one_factory_file_with_and_without_normalize_caffe_each_load_their_own_fold(
    workers, runner, digits, tmp_path, monkeypatch, first
):
    """The review's case: the lookup key lacked the BGR fold, so whichever case converted first served the other:
    the plain case trained on a folded kernel (its channels swapped), or the caffe case on an unfolded one."""
    rng = np.random.default_rng(0)
    state = {k: rng.normal(size=s).astype(np.float32) for k, s in SMALL_NET.items()}
    path = tmp_path / "net.pth"
    workers["torch"](probes.write_torch_state, str(path), state)
    caffe = replace(_trial(FACTORY, path, input=InputConfig(channels=3, normalize="caffe")), variant="caffe")
    plain = replace(caffe, variant="plain", input=InputConfig(channels=3))
    trials = (caffe, plain) if first == "caffe" else (plain, caffe)
    found = _prepared_by_preflight(trials, digits, tmp_path / "cache", runner, monkeypatch)
    source = state["0.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
    for variant, wanted in (("caffe", source[:, :, ::-1, :]), ("plain", source)):
        spec, weights, _ = load_checkpoint(found[variant])
        assert np.array_equal(weights[f"{spec.layers[0].name}/kernel"], wanted), variant


# 8. Weights whose network overflows (review 150)


def test_weights_whose_network_overflows_are_refused_as_damaged_not_blamed_on_the_conversion(workers, runner, tmp_path):
    """The review's case: finite weights of 1e30 (a file with exponent bits flipped, or a diverged training) pass
    the finite check, yet the source's logits are inf; the verification then allowed a gap of inf ("within inf") and
    blamed the conversion of the first layer for its NaN."""
    state = {k: np.full(s, 1e30, np.float32) for k, s in SMALL_NET.items()}
    path = tmp_path / "overflows.pth"
    workers["torch"](probes.write_torch_state, str(path), state)
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial(FACTORY, path), SHAPE, tmp_path / "cache", ("torch",), runner)
    message = str(error.value)
    assert message.startswith(
        "Expected finite logits from the network in overflows.pth on the probe batch (2 standard-normal images). "
        "Received: inf in 20 of 20 logits: the weights make the network overflow, so the file is damaged, or comes "
        "from a training that diverged. To fix, export the weights again"
    ), message
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing converted for a later run to verify again
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    huge = {k: np.full_like(v, 1e30) for k, v in initial_weights(spec, "he_normal", 0).items()}
    save_checkpoint(tmp_path / "overflows.npz", spec, huge, {})
    with pytest.raises(BadWeightsError, match=r"^Expected finite logits from the network in overflows.npz on the"):
        prepare_weights(_trial("cnn_small", tmp_path / "overflows.npz"), (8, 8, 1), tmp_path / "c", ("torch",), runner)


def test_the_verification_bound_is_never_inf():
    """A reference that overflowed made the bound inf, which any gap but NaN passed."""
    assert weights_worker.tolerance(np.array([2.0, -np.inf, np.nan], np.float32)) == pytest.approx(4e-5)
    assert weights_worker.tolerance(np.array([np.inf], np.float32)) == 0.0


# 7. A file of another width (review 177)


@pytest.mark.parametrize(
    ("options", "expected"),
    [(ModelOptions(), "(32, 3, 3, 3)"), (ModelOptions(width_multiplier=0.5), "(16, 3, 3, 3)")],
)
def test_a_torch_file_of_another_width_names_the_width_it_fits(runner, narrow_pth, tmp_path, options, expected):
    """The review's case: a mobilenet_v2 file of another width was told "pass the matching --model (and its
    options)", which named neither the option nor its value; torchvision rounds the channels to multiples of 8, so
    the width is found by building the architecture at each width until every tensor fits."""
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("mobilenet_v2", narrow_pth, model_options=options), SHAPE, tmp_path, (), runner)
    assert str(error.value) == (
        f"Expected tensor 'features.0.0.weight' of shape {expected} in mobilenet_v2_narrow.pth for mobilenet_v2. "
        "Received: shape (8, 3, 3, 3): every tensor of the file fits mobilenet_v2 at width 0.25. To fix, pass "
        "--width-multiplier 0.25."
    )


def _write_keras_alpha(_backend: str, path: str, alpha: float) -> None:
    """Keras' MobileNetV2 at ``alpha`` (random weights, 10 classes) as a .weights.h5."""
    from backends.tensorflow.framework import keras

    keras.applications.MobileNetV2(weights=None, input_shape=SHAPE, alpha=alpha, classes=10).save_weights(path)


def test_a_keras_file_saved_at_another_alpha_is_told_xfbench_reads_alpha_1_only(workers, runner, tmp_path):
    """The review's case: a MobileNetV2 saved with alpha=0.5 was told to pass the matching --model and options,
    though no option reaches Keras' alpha (harness.weights_fit refuses --width-multiplier with a Keras file)."""
    path = tmp_path / "narrow.weights.h5"
    workers["tensorflow"](_write_keras_alpha, str(path), 0.5)
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("keras:MobileNetV2", path), SHAPE, tmp_path / "cache", (), runner)
    message = str(error.value)
    assert message.startswith("Expected tensor 'bn_Conv1/gamma (layers/batch_normalization/vars/0)' of shape (32,)")
    assert message.endswith(
        "Received: shape (16,): every tensor of the file fits keras.applications.MobileNetV2 saved with alpha=0.5, "
        "and xfbench builds the applications at alpha 1 only (no option reaches Keras' alpha). To fix, start from a "
        "MobileNetV2 file saved at alpha=1, or drop --weights and train the zoo's mobilenet_v2 at that width in "
        "xfbench (--model mobilenet_v2 --width-multiplier 0.5)."
    ), message
