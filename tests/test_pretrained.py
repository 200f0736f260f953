"""Pretrained weights (harness.pretrained): files written by the real frameworks (random weights), converted in the
source framework's process, reproducing its logits in both backends, then trained; bad files name the tensor; a
zoo's weights missing from an empty cache stop the run before Ray with the fetch command. No network: the
weights home is a temporary folder.

Where a test checks what a conversion or verification computes, each framework's step runs in the session's
long-lived probe worker of that framework (``runner``: the same worker code and answer files as a fresh process);
the runs through ``xfbench``'s ``main`` (in this process, on the session's Ray) start a fresh process per step, as
a user's run does."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import backend_probes
import h5py
import numpy as np
import pytest
import weight_file_probes as probes
from conftest import assert_logits_match_source, on_each

from harness.config import TransferOptions, TrialConfig
from harness.input_pipeline import InputConfig
from harness.models import build_spec
from harness.pretrained import (
    HUB_HASH_REGEX,
    cached_weights,
    parse_pretrained,
    prepare_weights,
    preprocessing,
    verify,
    weights_ref,
    with_weight_preprocessing,
)
from harness.results import read_results
from harness.spec import canonical_form
from harness.weight_files import BadWeightsError, read_safetensors, write_safetensors
from harness.weights_fit import TORCHVISION_TWINS

SHAPE = (32, 32, 3)
BOTH = ("torch", "tensorflow")


@pytest.fixture(autouse=True)
def weights_home(tmp_path, monkeypatch):
    """Never the user's cache: every test gets an empty weights home."""
    monkeypatch.setenv("XFBENCH_WEIGHTS", str(tmp_path / "weights-home"))
    return tmp_path / "weights-home"


@pytest.fixture(scope="module")
def files(tmp_path_factory, workers) -> dict[str, Path]:
    """The weight files the tests load, written by torchvision and Keras themselves (random weights)."""
    folder = tmp_path_factory.mktemp("weight-files")
    paths = {
        "resnet18.pth": folder / "resnet18.pth",
        "resnet18.safetensors": folder / "resnet18.safetensors",
        "mobilenet_v2.pth": folder / "mobilenet_v2.pth",
        "mobilenet_v2.safetensors": folder / "mobilenet_v2.safetensors",
        "mobilenet_v2_narrow.pth": folder / "mobilenet_v2_narrow.pth",
        "MobileNetV2.weights.h5": folder / "MobileNetV2.weights.h5",
        # the legacy weights-only format keras.applications downloads (weights="imagenet")
        "MobileNetV2.h5": folder / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    }
    keras = [
        workers["tensorflow"].submit(probes.write_keras, "MobileNetV2", str(paths[key]), SHAPE, 1000)
        for key in ("MobileNetV2.weights.h5", "MobileNetV2.h5")
    ]
    for key, path in paths.items():  # in the torch process meanwhile
        if not key.endswith(".h5"):
            name = key.split(".")[0].removesuffix("_narrow")
            width = 0.25 if "narrow" in key else 1.0
            workers["torch"](probes.write_torchvision, name, str(path), 1000, 0, width)
    for written in keras:
        written.result(timeout=600)
    return paths


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """The module's results folder: the runs through ``main`` write here (each its own run id) and share its cache."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def cache(results) -> Path:
    """One conversion cache for the module, the runs' own (RESULTS/_cache): a file converted and verified once
    serves every test and run that reads it (each conversion or verification is a framework's step)."""
    return results / "_cache"


@pytest.fixture(scope="module")
def runner(workers):
    """Each framework's conversion / verification step in the session's probe worker of that framework."""
    return probes.probe_runner(workers)


def _trial(model: str, weights: Path | None = None, pretrained: str | None = None, **kw) -> TrialConfig:
    transfer = TransferOptions(weights_file=str(weights) if weights else None, pretrained=pretrained)
    return TrialConfig("fine_tune", model, "digits", "torch", 0, 1, transfer=transfer, **kw)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """``xfbench ARGS`` in this process: exit status, stdout, stderr."""
    from harness.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_checkpoint_reproduces_its_source(workers, checkpoint: Path):
    """Every backend verified the checkpoint once (one marker each), and, recomputed here rather than read from the
    markers (whose verdict the code under test drew), each backend's network from the checkpoint reproduces the
    source framework's logits stored beside it (the probe batch, on which the source ran the file). Returns the
    checkpoint's spec and metadata."""
    from harness.checkpoints import load_checkpoint

    for backend in BOTH:
        assert len(list(checkpoint.parent.glob(f"{checkpoint.stem}.verified-{backend}-*.json"))) == 1, backend
    spec, weights, meta = load_checkpoint(checkpoint)
    with np.load(checkpoint.with_suffix(".probe.npz"), allow_pickle=False) as stored:
        x, reference = stored["x"], stored["logits"]
    assert_logits_match_source(on_each(workers, backend_probes.logits, spec, weights, x), reference)
    return spec, meta


@pytest.mark.parametrize(
    "model, key",
    [
        ("resnet18", "resnet18.pth"),
        ("torchvision:resnet18", "resnet18.safetensors"),
        ("mobilenet_v2", "mobilenet_v2.pth"),
        ("mobilenet_v2", "mobilenet_v2.safetensors"),
        ("keras:MobileNetV2", "MobileNetV2.weights.h5"),
        ("keras:MobileNetV2", "MobileNetV2.h5"),
    ],
)
def test_a_weight_file_reproduces_the_source_logits_in_both_backends(workers, files, cache, runner, model, key):
    checkpoint = prepare_weights(_trial(model, files[key]), SHAPE, cache, BOTH, runner)
    spec, meta = _assert_checkpoint_reproduces_its_source(workers, checkpoint)
    if not model.startswith("keras:"):
        zoo = model.partition(":")[2] or model
        assert canonical_form(spec) == canonical_form(build_spec(zoo, SHAPE, 1000))  # torchvision's names = zoo's
        assert meta["weights"] == key and len(meta["sha256"]) == 64


def test_the_same_file_content_converts_once(files, cache, runner):
    first = prepare_weights(_trial("resnet18", files["resnet18.pth"]), SHAPE, cache, ("torch",), runner)
    stamp = first.stat().st_mtime_ns
    again = prepare_weights(_trial("resnet18", files["resnet18.pth"]), SHAPE, cache, ("torch",), runner)
    assert again == first and first.stat().st_mtime_ns == stamp


def test_outputs_that_part_name_the_first_layer(files, cache, runner, tmp_path):
    converted = prepare_weights(_trial("resnet18", files["resnet18.pth"]), SHAPE, cache, (), runner)
    checkpoint = tmp_path / converted.name  # a copy to tamper with: the module's cache stays as converted
    shutil.copy(converted, checkpoint)
    probe = checkpoint.with_suffix(".probe.npz")
    shutil.copy(converted.with_suffix(".probe.npz"), probe)
    with np.load(probe) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["layer::layer2_0_conv1"] = arrays["layer::layer2_0_conv1"] + 1.0  # as if that layer converted wrongly
    arrays["logits"] = arrays["logits"] + 1.0
    np.savez(probe, **arrays)
    with pytest.raises(BadWeightsError, match=r"first part at layer 'layer2_0_conv1'"):
        verify(checkpoint, "torch", runner)


def _state(workers, path: Path) -> dict[str, np.ndarray]:
    return workers["torch"](probes.read_torch_state, str(path))


def _bad_files(files, workers, folder: Path) -> dict[str, tuple[Path, str, str]]:
    """case -> (file, --model, what the error must say)."""
    state = _state(workers, files["resnet18.pth"])
    cases: dict[str, tuple[Path, str, str]] = {}
    cut = folder / "truncated.pth"
    cut.write_bytes(files["resnet18.pth"].read_bytes()[:1_000_000])
    cases["truncated pth"] = (cut, "resnet18", r"tensor '[\w.]+' \(storage data/\d+\): expected \d+ bytes, received")
    cut_st = folder / "truncated.safetensors"
    cut_st.write_bytes(files["resnet18.safetensors"].read_bytes()[:20_000_000])
    cases["truncated safetensors"] = (cut_st, "resnet18", r"tensor '[\w.]+' \(bytes .*\): expected \d+ bytes, received")
    cases["wrong architecture"] = (files["mobilenet_v2.pth"], "resnet18", r"Expected tensor 'conv1.weight' of shape")
    missing = {k: v for k, v in state.items() if k != "layer4.1.bn2.running_var"}
    extra = {**state, "layer5.0.conv1.weight": np.zeros((4, 4, 3, 3), np.float32)}
    wrong = {**state, "layer3.0.conv2.weight": np.zeros((256, 256, 1, 1), np.float32)}
    for case, tensors, says in (
        ("missing tensor", missing, r"Expected tensor 'layer4.1.bn2.running_var' of shape \(512,\).*no such tensor"),
        ("extra tensor", extra, r"unexpected tensor 'layer5.0.conv1.weight' of shape \(4, 4, 3, 3\)"),
        (
            "wrong shape",
            wrong,
            r"'layer3.0.conv2.weight' of shape \(256, 256, 3, 3\).*Received: shape \(256, 256, 1, 1\)",
        ),
    ):
        path = folder / f"{case.replace(' ', '_')}.pth"
        workers["torch"](probes.write_torch_state, str(path), tensors)
        cases[case] = (path, "resnet18", says)
    deeper = folder / "resnet34.pth"  # a deeper network of resnet18's family: resnet18's tensors and more
    workers["torch"](probes.write_torchvision, "resnet34", str(deeper), 1000)
    cases["deeper sibling"] = (
        deeper,
        "resnet18",
        r"unexpected tensor 'layer1.2.conv1.weight' .*\(80 unexpected\): every tensor of the file fits "
        r"torchvision's resnet34\. To fix, pass --model resnet34\.$",  # not "drop those tensors"
    )
    pickled = folder / "module.pth"
    workers["torch"](probes.write_torch_module, str(pickled))
    cases["pickled module"] = (pickled, "resnet18", r"weights_only")
    keras_missing = folder / "missing.weights.h5"
    keras_missing.write_bytes(files["MobileNetV2.weights.h5"].read_bytes())
    with h5py.File(keras_missing, "r+") as handle:
        del handle["layers/conv2d/vars/0"]
    cases["keras missing tensor"] = (
        keras_missing,
        "keras:MobileNetV2",
        r"Expected tensor 'Conv1/kernel \(layers/conv2d",
    )
    return cases


BAD_CASES = (
    "truncated pth",
    "truncated safetensors",
    "wrong architecture",
    "missing tensor",
    "extra tensor",
    "deeper sibling",
    "wrong shape",
    "pickled module",
    "keras missing tensor",
)


@pytest.fixture(scope="module")
def bad_files(files, workers, tmp_path_factory):
    return _bad_files(files, workers, tmp_path_factory.mktemp("bad-weights"))


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_weight_file_is_refused_naming_the_tensor(bad_files, runner, tmp_path, case):
    path, model, says = bad_files[case]
    with pytest.raises(BadWeightsError, match=says):
        prepare_weights(_trial(model, path), SHAPE, tmp_path / "cache", BOTH, runner)


def test_a_bad_weight_file_exits_2_before_ray(bad_files, tmp_path, capsys):
    """Through ``main`` with its own fresh conversion process: the worker's error file crosses the process boundary
    and becomes exit 2 before any run starts."""
    path, _, _ = bad_files["wrong shape"]
    args = ["run", "--strategy", "fine_tune", "--model", "resnet18", "--dataset", "digits", "--weights", str(path)]
    code, out, err = _cli(capsys, *args, "--input-size", "32", "--results-dir", str(tmp_path / "r"))
    assert code == 2, err[-2000:]
    assert "'layer3.0.conv2.weight' of shape (256, 256, 3, 3)" in err and "(256, 256, 1, 1)" in err
    assert not any((tmp_path / "r").glob("2*")) and "trials" not in out  # no run directory: nothing started


@pytest.mark.parametrize(
    "ref, wanted",
    [
        ("torchvision:resnet18", "resnet18-f37072fd.pth"),
        ("keras:MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    ],
)
def test_a_zoos_weights_missing_from_an_empty_cache_exit_2_with_the_fetch_command(
    tmp_path, weights_home, capsys, ref, wanted
):
    """The file is looked up by a fresh process of the zoo's framework (its own download mechanism's layout), before
    the preflight converts any architecture or reads any data."""
    model = "resnet18" if ref.startswith("torchvision") else "keras:MobileNetV2"
    args = ["run", "--strategy", "feature_extraction", "--model", model, "--dataset", "digits", "--pretrained", ref]
    code, out, err = _cli(capsys, *args, "--results-dir", str(tmp_path / "r"))
    assert code == 2, err[-2000:]
    assert f"`xfbench weights fetch {ref}" in err and wanted in err
    assert str(weights_home) in err  # where to put it
    assert not (tmp_path / "r").exists() and "trials" not in out  # before Ray: no run, no progress, no conversion


@pytest.mark.parametrize(
    "args, wanted",
    [
        (("--strategy", "scratch", "--model", "resnet18"), "strategy='scratch', which trains from the initial"),
        (("--strategy", "fine_tune", "--model", "resnet20"), "torchvision twin (alexnet_tv, vgg11"),
        (("--model", "resnet18", "--width-multiplier", "0.25"), "Received: --width-multiplier 0.25. To fix, drop"),
        (("--model", "alexnet"), "Received: --model alexnet."),  # the lessons' AlexNet is not torchvision's
        # an option the strategy does not read with weights (it trains no backbone): it asked for a fetch first
        (("--model", "resnet18", "--source-epochs", "3"), "Expected only options that strategy fine_tune reads"),
    ],
)
def test_weights_the_run_could_not_use_are_refused_before_the_weights_home_is_searched(tmp_path, capsys, args, wanted):
    """An offline user with an empty weights home is told what is wrong with the command, not to fetch weights
    for a run that would then be refused."""
    base = ["run", "--strategy", "fine_tune", "--dataset", "digits", "--pretrained", "torchvision:resnet18"]
    code, out, err = _cli(capsys, *base, *args, "--results-dir", str(tmp_path / "r"))
    assert code == 2, err[-2000:]
    assert wanted in err and "weights fetch" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (
            ("--model", "resnet18", "--pretrained", "torchvision:resnet50"),
            "Expected --model to be the architecture of the weights torchvision:resnet50 (torchvision's resnet50). "
            "Received: --model resnet18 (torchvision's resnet18). To fix, pass --model resnet50 or "
            "torchvision:resnet50, or --pretrained torchvision:resnet18.",
        ),
        (
            ("--model", "torchvision:vgg11", "--pretrained", "torchvision:alexnet"),
            "Received: --model torchvision:vgg11 (torchvision's vgg11). To fix, pass --model alexnet_tv or "
            "torchvision:alexnet, or --pretrained torchvision:vgg11.",
        ),
        (
            ("--model", "keras:MobileNetV2", "--pretrained", "keras:ResNet50"),
            "Expected --model keras:ResNet50, the architecture of the weights keras:ResNet50:imagenet. Received: "
            "--model keras:MobileNetV2. To fix, pass --model keras:ResNet50, or --pretrained keras:MobileNetV2.",
        ),
        (
            ("--model", "mobilenet_v2", "--width-multiplier", "0.5", "--pretrained", "torchvision:mobilenet_v2"),
            "Expected --width-multiplier 1 with the weights torchvision:mobilenet_v2: torchvision publishes "
            "mobilenet_v2's weights at width 1 only. Received: --width-multiplier 0.5. To fix, drop "
            "--width-multiplier, or start from a file of your own at that width (--weights FILE).",
        ),
    ],
)
def test_a_zoo_weight_set_of_another_architecture_or_width_is_refused_before_any_fetch_advice(
    tmp_path, capsys, args, wanted
):
    """The review's cases: each was told to run `xfbench weights fetch`, and the weights it fetched were then
    refused (a tensor of another shape, or Keras' load). Both architectures are named, with no weight file."""
    base = ["run", "--strategy", "fine_tune", "--dataset", "digits", "--input-size", "32"]
    code, _, err = _cli(capsys, *base, *args, "--results-dir", str(tmp_path / "r"))
    assert code == 2, err[-2000:]
    assert wanted in err and "weights fetch" not in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("model", "pretrained", "wanted"),
    [
        (  # sizes as xfbench feeds them, but Caffe's normalisation on 0..255 and no trained classifier
            "vgg16",
            "torchvision:vgg16:IMAGENET1K_FEATURES",
            (
                "Expected torchvision weights trained on inputs normalised with ImageNet's mean",
                "Received: torchvision:vgg16:IMAGENET1K_FEATURES, trained with mean (0.4824, 0.4588, 0.4078) and std "
                "(0.003922, 0.003922, 0.003922)",
                "To fix, pick a set of vgg16 that xfbench feeds as trained: --pretrained "
                "torchvision:vgg16:IMAGENET1K_V1.",
            ),
        ),
        (  # 300 px crops of 320, but what stops it is a layer no spec holds
            "torchvision:efficientnet_b3",
            "torchvision:efficientnet_b3",
            ("Received: SiLU at 'features.0.2'.", "To fix, choose another model: torchvision:efficientnet_b3 cannot"),
        ),
    ],
)
def test_a_zoo_set_xfbench_cannot_feed_as_trained_exits_2_naming_its_own_cause(
    tmp_path, capsys, model, pretrained, wanted
):
    """The review's cases: each was told the sizes differ (vgg16's do not) and to add the model to
    harness.pretrained's tables, a developer's fix. The preflight asks torchvision's enum (its meta: nothing is
    downloaded, the weights home is empty) before it looks for the file."""
    base = ["run", "--strategy", "feature_extraction", "--dataset", "digits", "--input-size", "32"]
    code, _, err = _cli(capsys, *base, "--model", model, "--pretrained", pretrained, "--results-dir", str(tmp_path))
    assert code == 2, err[-2000:]
    assert all(part in err for part in wanted), err
    assert "harness.pretrained" not in err and "crop" not in err and "weights fetch" not in err, err


def _resolve_fed_otherwise(_backend: str, name: str, weight_set: str, side: int) -> str:
    """The torch worker's refusal of torchvision's ``name`` set, were xfbench to feed its sets images resized to
    ``side`` (no set of an architecture that converts has other sizes in torchvision 0.29)."""
    from unittest import mock

    from backends.torch import weight_files

    with mock.patch.object(weight_files, "torchvision_resize_side", lambda *_: side):
        try:
            weight_files.resolve({"name": name, "weight_set": weight_set}, Path("unused"))
        except ValueError as refused:
            return str(refused)
    return ""


def test_a_zoo_set_evaluated_at_other_sizes_is_told_its_sizes_and_a_set_that_fits(workers):
    refused = workers["torch"](_resolve_fed_otherwise, "resnet50", "IMAGENET1K_V2", 256)
    assert refused == (
        "Expected torchvision weights evaluated as xfbench feeds resnet50's sets: 224 px crops of images resized to "
        "256 px. Received: torchvision:resnet50:IMAGENET1K_V2, evaluated at 224 px crops of images resized to 232 "
        "px. To fix, pick a set of resnet50 that xfbench feeds as trained: --pretrained "
        "torchvision:resnet50:IMAGENET1K_V1."
    )
    refused = workers["torch"](_resolve_fed_otherwise, "alexnet", "", 300)
    assert "To fix, pick another model's weights (torchvision publishes none of alexnet's" in refused, refused


def test_every_zoo_twin_is_a_torchvision_model(workers):
    """The neutral list the preflight judges --model by (harness imports no torchvision) names torchvision's own."""
    assert set(TORCHVISION_TWINS.values()) <= set(workers["torch"](probes.torchvision_models))


def test_keras_weights_for_a_model_keras_cannot_build_are_refused_before_the_weights_home_is_searched(tmp_path, capsys):
    args = ["run", "--strategy", "fine_tune", "--model", "resnet18", "--dataset", "digits"]
    code, _, err = _cli(capsys, *args, "--pretrained", "keras:MobileNetV2", "--results-dir", str(tmp_path / "r"))
    assert code == 2 and "Expected --model keras:NAME for Keras weights. Received: --model resnet18." in err
    assert "weights fetch" not in err


def test_preprocessing_follows_the_weights():
    assert preprocessing(parse_pretrained("torchvision:resnet18"), "resnet18") == preprocessing(
        parse_pretrained("torchvision:alexnet:IMAGENET1K_V1"), "alexnet_tv"
    )
    got = {
        name: preprocessing(parse_pretrained(f"keras:{name}"), f"keras:{name}")
        for name in ("MobileNetV2", "ResNet50", "DenseNet121", "InceptionV3")
    }
    assert {k: (v.size, v.normalize) for k, v in got.items()} == {
        "MobileNetV2": (224, "tf"),
        "ResNet50": (224, "caffe"),
        "DenseNet121": (224, "imagenet"),
        "InceptionV3": (299, "tf"),
    }
    trial = with_weight_preprocessing(_trial("resnet18", pretrained="torchvision:resnet18"))
    assert trial.input == InputConfig(224, 3, "imagenet", "resize-crop", 256)  # Resize(256) + CenterCrop(224)
    given = with_weight_preprocessing(
        _trial("keras:MobileNetV2", pretrained="keras:MobileNetV2", input=InputConfig(64))
    )
    assert given.input == InputConfig(64, 3, "tf")  # --input-size wins, the normalisation follows the weights
    assert weights_ref(_trial("resnet18")) is None


@pytest.mark.parametrize(
    ("name", "application"), [("MobileNetV2", "mobilenet_v2"), ("ResNet50", "resnet50"), ("DenseNet121", "densenet")]
)
def test_keras_weights_are_fed_as_keras_own_preprocess_input_feeds_them(workers, name, application):
    """The review's gap: the tf and caffe constants (harness.input_pipeline.NORMALIZATIONS) and each application's
    mode (KERAS_PREPROCESS) were compared with nothing Keras computes; caffe's means written in BGR order passed every
    test. One application per mode (tf, caffe, Keras' torch = imagenet): xfbench's normalisation of RGB images in
    [0, 1], its channels reversed where the weights read BGR (the fold reverses the first kernel's input channels
    instead), is Keras' preprocess_input of the same images in 0..255."""
    from harness.input_pipeline import NORMALIZATIONS
    from harness.pretrained import weights_read_bgr

    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype(np.float32)
    trial = with_weight_preprocessing(_trial(f"keras:{name}", pretrained=f"keras:{name}"))
    ref = weights_ref(trial)
    assert ref is not None
    mean, std = NORMALIZATIONS[trial.input.normalize] or ((0.0,) * 3, (1.0,) * 3)
    ours = (pixels.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    if weights_read_bgr(ref, trial):
        ours = ours[..., ::-1]
    keras = workers["tensorflow"](probes.keras_preprocessed, application, pixels)
    # Keras computes in float32: up to 1.1e-5 measured on caffe's values of up to 152 (two ulps there: 3e-5); a
    # mean in the wrong channel is off by 19.7
    np.testing.assert_allclose(keras, ours, rtol=0, atol=3e-5)


def test_safetensors_round_trip_and_list(tmp_path, weights_home):
    tensors = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.n": np.array(3, np.int64)}
    write_safetensors(tmp_path / "t.safetensors", tensors)
    back = read_safetensors(tmp_path / "t.safetensors")
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in tensors.items())
    folder = weights_home / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "resnet18-f37072fd.pth").write_bytes(b"x")
    assert [(c.framework, c.path.name) for c in cached_weights()] == [("torchvision", "resnet18-f37072fd.pth")]


def test_a_file_written_by_the_safetensors_library_reads_exactly():
    """tests/golden/written_by_safetensors_0.8.0.safetensors: written by the safetensors library itself
    (safetensors.torch.save_file, metadata {"format": "pt"}), not by xfbench's writer, so the reader is held to the
    real format (its header's order and padding, every dtype a state dict holds, bfloat16 widened to float32)."""
    back = read_safetensors(Path(__file__).parent / "golden" / "written_by_safetensors_0.8.0.safetensors")
    expected = {
        "features.0.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / np.float32(7),
        "features.1.num_batches_tracked": np.array(5, np.int64),
        "half": np.array([0.5, -1.25, 3.0], np.float16),
        "brain": np.array([1.5, -2.0, 0.25], np.float32),  # bfloat16 in the file: these values exactly
        "mask": np.array([True, False]),
        "scalar": np.array(0.1, np.float64),
    }
    assert sorted(back) == sorted(expected)
    for name, value in expected.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
        assert np.array_equal(back[name], value), name


def _final_rows(run_dir: Path):
    frame = read_results(run_dir)
    return frame[frame["test_acc"].notna()].sort_values(["backend", "seed"])


def _converted_beforehand(cache: Path, runner, workers, *args: str) -> None:
    """What the preflight of ``xfbench run ARGS`` converts and verifies, done in the probe workers into the module's
    cache: the run then finds it there (the tests that leave it to fresh processes: a bad file's exit 2, a zoo's
    missing file, the resnet18 feature-extraction run)."""
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser
    from harness.model_import import FRAMEWORK_PREFIXES, imported_model, parse_model_ref

    trial = plan_from_args(build_parser().parse_args(["run", *args])).trials[0]
    shape = (trial.input.size, trial.input.size, 3)
    ref = parse_model_ref(trial.model)
    if ref.kind in FRAMEWORK_PREFIXES:  # the architecture the preflight converts to check the model
        imported_model(ref, shape, 10, cache, call=probes.import_call(workers))
    prepare_weights(trial, shape, cache, BOTH, runner)


def _run(capsys, results: Path, run_id: str, *args: str):
    """``xfbench run ARGS --epochs 1`` in this process on the session's Ray, into the module's results folder (its
    cache: a file another test converted is not converted again; one no test did is, in a fresh process)."""
    code, out, err = _cli(capsys, "run", *args, "--epochs", "1", "--results-dir", str(results), "--run-id", run_id)
    assert code == 0, out[-3000:] + err[-3000:]
    return _final_rows(results / run_id)


@pytest.mark.ray
@pytest.mark.parametrize(
    "model, key",
    [
        ("mobilenet_v2", "mobilenet_v2_narrow.pth"),
        ("keras:MobileNetV2", "MobileNetV2.weights.h5"),
        ("resnet18", "resnet18.safetensors"),
    ],
)
def test_fine_tune_from_a_weight_file_gives_each_seed_the_same_result_in_both_backends(
    files, results, cache, runner, workers, shared_ray, capsys, model, key
):
    """``xfbench run --strategy fine_tune --weights FILE`` for two seeds: each seed's test accuracy is the same in
    both backends and its epoch's losses agree to 1e-9. In float64: in float32 these networks' rounding differences
    grow over the epoch until how far the backends part depends on the CPU's kernels (see the next test)."""
    width = ["--width-multiplier", "0.25"] if "narrow" in key else []
    args = (
        *("--strategy", "fine_tune", "--model", model, "--dataset", "digits", "--weights", str(files[key])),
        *("--input-size", "32", "--train-limit", "256", "--seeds", "2", "--lr", "0.001", *width),
        *("--precision", "float64"),
    )
    _converted_beforehand(cache, runner, workers, *args)
    rows = _run(capsys, results, f"fine-tune-{key}", *args)
    assert (rows["status"] == "ok").all() and len(rows) == 4
    assert set(rows["weights"]) == {key} and rows["weights_sha256"].str.len().eq(64).all()
    assert {json.loads(c)["runtime"]["precision"] for c in rows["config_json"]} == {"float64"}
    # each trial loaded the conversion of the content its preflight converted (TrialConfig.weights_key)
    assert {json.loads(c)["weights_key"] for c in rows["config_json"]} == set(rows["weights_sha256"])
    by_seed = rows.pivot(index="seed", columns="backend", values="test_acc")
    assert (by_seed["torch"] == by_seed["tensorflow"]).all(), by_seed
    frame = read_results(results / f"fine-tune-{key}")
    epochs = frame[frame["epoch"].eq(1) & frame["train_loss"].notna()]
    for column in ("train_loss", "val_loss"):
        losses = epochs.pivot(index="seed", columns="backend", values=column)
        gap = ((losses["torch"] - losses["tensorflow"]).abs() / losses["torch"]).max()
        assert gap <= 1e-9, f"{column} parts by {gap:.1e} (relative): {losses}"


def _fine_tune_trial(cache: Path, runner, model: str, key: str, weights: Path, train_limit: int) -> TrialConfig:
    """The trial the CLI test runs (seed 0), with its weights converted into ``cache``."""
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser

    width = ["--width-multiplier", "0.25"] if "narrow" in key else []
    args = build_parser().parse_args(
        [
            *("run", "--strategy", "fine_tune", "--model", model, "--dataset", "digits", "--weights", str(weights)),
            *("--input-size", "32", "--train-limit", str(train_limit), "--lr", "0.001", "--epochs", "1", *width),
        ]
    )
    trial = next(t for t in plan_from_args(args).trials if t.strategy == "fine_tune")
    trial = replace(trial, cache_dir=str(cache))
    prepare_weights(trial, SHAPE, cache, (), runner)
    return trial


@pytest.mark.parametrize(
    "model, key",
    [("mobilenet_v2", "mobilenet_v2_narrow.pth"), ("keras:MobileNetV2", "MobileNetV2.weights.h5")],
)
def test_fine_tune_from_a_weight_file_computes_the_same_in_both_backends(files, workers, cache, runner, model, key):
    """Both backends compute the same fine_tune step (per-group rates, BatchNorm in training mode, the imported
    dropout): in float32 the first step's loss agrees to 3e-5 relative (measured 1.2e-5 for torchvision's narrow
    mobilenet_v2 against 1.5e-6 within one framework: TensorFlow accumulates training-mode BatchNorm statistics in
    float32, ATen in double; docs/pretrained.md, "Which backend is off"); over the epoch (4 steps) float32 cannot
    be held, since this network's gradients (random weights, BatchNorm in training mode down to 1x1 maps) change by
    1-4 % in most layers from reordering float32 sums alone (docs/pretrained.md, "Loss gap"), and how far the
    backends then part depends on the CPU's kernels. With ``--precision float64`` the whole epoch is held: every
    parameter within 1e-8 and the epoch's loss to 1e-9 relative (measured, torchvision / Keras MobileNetV2:
    parameters 9.4e-11 / 1.6e-11 apart, losses 3.5e-12 / 5.3e-11 relative; a step rounded to float32 anywhere
    would part them by about 1e-7)."""
    from conftest import max_abs_diff

    one_step = _fine_tune_trial(cache, runner, model, key, files[key], 64).to_dict()
    rows = {b: result[0] for b, result in on_each(workers, backend_probes.run_strategy, one_step).items()}
    first = {b: next(r["train_loss"] for r in rows[b] if r.get("epoch") == 1) for b in BOTH}
    assert abs(first["torch"] - first["tensorflow"]) <= 3e-5 * first["torch"], first
    trial = _fine_tune_trial(cache, runner, model, key, files[key], 256)
    epoch = replace(trial, runtime=replace(trial.runtime, precision="float64")).to_dict()
    result = on_each(workers, backend_probes.run_strategy, epoch)
    losses = {b: next(r["train_loss"] for r in result[b][0] if r.get("epoch") == 1) for b in BOTH}
    gap = max_abs_diff(result["torch"][1], result["tensorflow"][1])
    assert gap <= 1e-8, f"float64 parameters differ by {gap:.2e}"
    assert abs(losses["torch"] - losses["tensorflow"]) <= 1e-9 * losses["torch"], losses


@pytest.mark.ray
def test_feature_extraction_trains_only_the_new_head(
    files, workers, results, cache, runner, shared_ray, capsys, tmp_path
):
    alexnet = tmp_path / "alexnet.pth"
    workers["torch"](probes.write_torchvision, "alexnet", str(alexnet), 10)
    common = ("--strategy", "feature_extraction", "--dataset", "digits", "--train-limit", "128")
    args = (*common, "--model", "alexnet_tv", "--weights", str(alexnet), "--input-size", "64")
    _converted_beforehand(cache, runner, workers, *args)  # the resnet18 run converts and verifies in fresh processes
    rows = _run(capsys, results, "fe-alexnet", *args)
    assert dict(zip(rows["backend"], rows["trainable_params"], strict=True)) == {"torch": 40_970, "tensorflow": 40_970}
    rows = _run(
        capsys,
        results,
        "fe-resnet18",
        *common,
        "--model",
        "resnet18",
        "--weights",
        str(files["resnet18.safetensors"]),
        "--input-size",
        "32",
    )
    assert dict(zip(rows["backend"], rows["trainable_params"], strict=True)) == {"torch": 5_130, "tensorflow": 5_130}


def test_weights_fetch_checks_every_name_before_downloading_and_list_shows_the_home(weights_home, capsys, monkeypatch):
    code, _, err = _cli(capsys, "weights", "fetch", "torchvision:resnet18", "resnet18")
    assert code == 2 and "Expected each name of `xfbench weights fetch` as torchvision:NAME[:WEIGHTS]" in err
    assert "--weights" not in err  # a flag of `run`, not of this command
    # a name the zoo does not have is found by its framework before the first download (here offline: a download
    # would fail with a network error instead)
    code, _, err = _cli(capsys, "weights", "fetch", "torchvision:resnet18", "torchvision:resnet18:NO_SUCH_SET")
    assert code == 2 and "Expected a weight set of torchvision's resnet18. Received: 'NO_SUCH_SET'" in err
    # an architecture the converter cannot express is refused before its weights download
    code, _, err = _cli(capsys, "weights", "fetch", "torchvision:vit_b_16")
    assert code == 2 and "Nothing was downloaded: a run could not use torchvision:vit_b_16." in err, err
    assert "Expected a PyTorch model built from layers xfbench's neutral spec supports" in err
    code, out, _ = _cli(capsys, "weights", "list")
    assert code == 0 and str(weights_home) in out and "no weights cached" in out
    weights_home.mkdir(exist_ok=True)
    (weights_home / "sets.json").write_text('{"torchvision:resnet18": 5}')  # an index damaged by hand
    for argv in (("weights", "list"), ("weights", "fetch", "torchvision:resnet18")):
        code, _, err = _cli(capsys, *argv)
        assert code == 2 and "sets.json to map each fetched weight set to its file's path. Received: {\"torch" in err
    shutil.rmtree(weights_home)
    # a file where the folder should be is named before any worker tries to read or download into it
    weights_home.parent.mkdir(parents=True, exist_ok=True)
    weights_home.write_text("not a folder")
    for argv in (("weights", "list"), ("weights", "fetch", "torchvision:resnet18")):
        code, _, err = _cli(capsys, *argv)
        assert code == 2 and f"Received: {weights_home}, and {weights_home} is not a folder." in err
    monkeypatch.setenv("XFBENCH_WEIGHTS", str(weights_home / "below"))  # a folder that could never be made
    code, _, err = _cli(capsys, "weights", "list")
    assert code == 2 and f"Received: {weights_home / 'below'}, and {weights_home} is not a folder." in err


def test_a_failed_fetch_leaves_no_folder_it_made_empty(tmp_path):
    """torch hub and Keras make their download folder before downloading: offline, a fetch left torch/hub/checkpoints
    (and a new weights home) empty, as if it held something. Folders that were there before stay, empty or not."""
    from harness.pretrained import _folders, _remove_new_empty_folders

    home = tmp_path / "weights"
    (home / "mine").mkdir(parents=True)
    before = _folders(home)
    (home / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    (home / "keras" / "models").mkdir(parents=True)
    (home / "keras" / "models" / "a.h5").write_bytes(b"weights")
    _remove_new_empty_folders(home, before)
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == [
        "keras",
        "keras/models",
        "keras/models/a.h5",
        "mine",
    ]
    fresh = tmp_path / "new-home"
    (fresh / "torch" / "hub").mkdir(parents=True)
    _remove_new_empty_folders(fresh, _folders(tmp_path / "absent"))
    assert not fresh.exists()


def test_a_hub_file_whose_content_does_not_match_the_hash_in_its_name_is_dropped_before_a_fetch(workers, tmp_path):
    """torch hub checks the sha256 prefix in a file's name only while downloading: a cut or replaced file already
    there would be loaded as it is, so fetch drops it and downloads again."""
    content = b"the weights"
    good = tmp_path / f"net-{hashlib.sha256(content).hexdigest()[:8]}.pth"
    bad = tmp_path / "net-0123abcd.pth"
    for path in (good, bad):
        path.write_bytes(content)
    assert workers["torch"](probes.drop_damaged_download, str(good)) is False and good.is_file()
    assert workers["torch"](probes.drop_damaged_download, str(bad)) is True and not bad.exists()
    unnamed = tmp_path / "mine.pth"  # no hash in the name: nothing to check it against
    unnamed.write_bytes(content)
    assert workers["torch"](probes.drop_damaged_download, str(unnamed)) is False and unnamed.is_file()
    assert workers["torch"](probes.hub_hash_pattern) == HUB_HASH_REGEX.pattern  # the copy a run and `list` use


def _hub_file(home: Path, name: str) -> Path:
    """Where torch hub keeps a download of ``name`` in the weights home (its folder made)."""
    folder = home / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_zoo_file_whose_content_does_not_match_the_hash_in_its_name_stops_the_run_before_training(
    workers, weights_home, tmp_path, capsys
):
    """The user review's case: a randomly initialised resnet18 saved under torchvision's file name ran as
    torchvision:resnet18 (exit 0, below chance, rows saying weights=torchvision:resnet18). The preflight checks the
    sha256 it computes for the cache key against the prefix in the name and exits 2 before Ray, naming both and the
    fetch that replaces the file."""
    path = _hub_file(weights_home, "resnet18-f37072fd.pth")
    workers["torch"](probes.write_torchvision, "resnet18", str(path), 1000)
    received = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    args = (
        *("--strategy", "feature_extraction", "--model", "resnet18", "--dataset", "digits"),
        *("--pretrained", "torchvision:resnet18", "--epochs", "2", "--seeds", "1", "--input-size", "32"),
        *("--train-limit", "128", "--backend", "torch", "--results-dir", str(tmp_path / "r")),
    )
    code, out, err = _cli(capsys, "run", *args)
    assert code == 2, err[-2000:]
    assert str(path) in err and "sha256 starting f37072fd" in err and f"Received: sha256 {received}" in err, err
    assert "`xfbench weights fetch torchvision:resnet18` (it replaces the file" in err, err
    assert not any((tmp_path / "r").glob("2*")) and "trials" not in out  # no run directory: nothing started


def test_a_keras_zoo_file_that_fails_its_applications_hash_is_refused(weights_home, runner, tmp_path):
    """keras.applications passes get_file the md5 of most weight files (ResNet50's here; MobileNet and MobileNetV2
    pass none): the run checks it in the same pass over the file as its sha256."""
    folder = weights_home / "keras" / "models"
    folder.mkdir(parents=True)
    path = folder / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    path.write_bytes(b"not the weights")
    trial = _trial("keras:ResNet50", pretrained="keras:ResNet50")
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(trial, SHAPE, tmp_path / "cache", BOTH, runner)
    message = str(error.value)
    assert "md5 2cb95161c43110f7111970584f804107 (the md5 keras.applications.ResNet50 passes" in message, message
    assert f"Received: md5 {hashlib.md5(b'not the weights').hexdigest()}" in message, message
    assert "`xfbench weights fetch keras:ResNet50:imagenet` (it replaces the file" in message, message
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing converted


def test_weights_list_flags_a_hub_file_whose_content_does_not_match_the_hash_in_its_name(weights_home, capsys):
    content = b"the weights"
    good = _hub_file(weights_home, f"net-{hashlib.sha256(content).hexdigest()[:8]}.pth")
    fetched, copied = _hub_file(weights_home, "resnet18-f37072fd.pth"), _hub_file(weights_home, "alexnet-7be5be79.pth")
    for path in (good, fetched, copied):
        path.write_bytes(content)
    (weights_home / "sets.json").write_text(json.dumps({"torchvision:resnet18": str(fetched)}))
    received = hashlib.sha256(content).hexdigest()[:8]
    code, out, err = _cli(capsys, "weights", "list")  # reads no file whole without --verify (gigabytes)
    assert code == 0 and "does not match" not in out, err
    code, out, err = _cli(capsys, "weights", "list", "--verify")
    assert code == 1, err  # flagged files: a script checking the home sees it in the exit status
    flags = [line for line in out.splitlines() if "does not match" in line]
    assert len(flags) == 2, out
    assert f"sha256 {received}, not f37072fd" in flags[1] and "`xfbench weights fetch torchvision:resnet18`" in flags[1]
    assert f"sha256 {received}, not 7be5be79" in flags[0] and "torchvision:NAME" in flags[0], out
    problems = {entry.path.name: entry.problem for entry in cached_weights(verify=True)}
    assert problems[good.name] == "" and problems[fetched.name] and problems[copied.name]


def test_a_neutral_checkpoint_loads_as_weights(files, cache, runner, tmp_path):
    converted = prepare_weights(_trial("resnet18", files["resnet18.pth"]), SHAPE, cache, (), runner)
    neutral = tmp_path / "resnet18-neutral.npz"
    neutral.write_bytes(converted.read_bytes())
    checkpoint = prepare_weights(_trial("resnet18", neutral), SHAPE, tmp_path / "cache", BOTH, runner)
    from harness.checkpoints import load_checkpoint

    assert load_checkpoint(checkpoint)[2]["trained_by"] == "xfbench"
    assert len(list(checkpoint.parent.glob(f"{checkpoint.stem}.verified-*.json"))) == 2


@pytest.fixture(scope="module")
def resnet50_keras(workers, tmp_path_factory) -> Path:
    """Keras' ResNet50 (Caffe convention: BGR) with random weights, 10 classes, as a .weights.h5."""
    path = tmp_path_factory.mktemp("resnet50") / "ResNet50.weights.h5"
    workers["tensorflow"](probes.write_keras, "ResNet50", str(path), SHAPE, 10)
    return path


def test_caffe_convention_weights_take_rgb_after_conversion(workers, runner, cache, resnet50_keras):
    """Keras' ResNet50 reads BGR minus ImageNet's means: the source's logits on BGR images are reproduced by the
    converted network on RGB images (the order folded into the first convolution's kernel)."""
    path = resnet50_keras
    trial = with_weight_preprocessing(_trial("keras:ResNet50", path))
    assert trial.input.normalize == "caffe"
    checkpoint = prepare_weights(trial, SHAPE, cache, BOTH, runner)  # the module's: the next test reuses it
    _assert_checkpoint_reproduces_its_source(workers, checkpoint)


def test_a_bgr_files_failed_verification_names_the_layer_that_differs(cache, runner, tmp_path, resnet50_keras):
    """Review 166: the source's outputs ahead of the folded convolution (conv1_pad) were kept as recorded on the BGR
    batch, so a verification that failed at any depth blamed conv1_pad. Only a deep layer is mis-converted here."""
    from harness.checkpoints import load_checkpoint, save_checkpoint

    converted = prepare_weights(
        with_weight_preprocessing(_trial("keras:ResNet50", resnet50_keras)), SHAPE, cache, (), runner
    )
    spec, weights, meta = load_checkpoint(converted)
    checkpoint = tmp_path / converted.name  # a copy to tamper with: the module's cache stays as converted
    deep = "conv5_block3_3_conv"
    save_checkpoint(checkpoint, spec, {**weights, f"{deep}/kernel": weights[f"{deep}/kernel"] * 1.5}, meta)
    shutil.copy(converted.with_suffix(".probe.npz"), checkpoint.with_suffix(".probe.npz"))
    with pytest.raises(BadWeightsError, match=rf"first part at layer '{deep}'"):
        verify(checkpoint, "torch", runner)


def test_a_legacy_keras_h5_that_does_not_fit_is_refused_in_xfbenchs_words_with_the_fix(
    workers, files, runner, tmp_path
):
    """Review 166: Keras' own text was passed on ("Expected weights that fit mobilenetv2_1.00_32 in FILE. Received:
    Shape mismatch in layer #104 ..."), naming Keras' model rather than --model, with no fix; a legacy .h5 holds the
    1000-class head keras.applications saves, and the way out for another class count (.weights.h5) went unsaid."""
    ten = tmp_path / "mnv2_ten_classes.h5"
    workers["tensorflow"](probes.write_keras, "MobileNetV2", str(ten), SHAPE, 10)
    with pytest.raises(BadWeightsError) as refused:
        prepare_weights(_trial("keras:MobileNetV2", ten), SHAPE, tmp_path / "cache", (), runner)
    message = str(refused.value)
    assert "that fits --model keras:MobileNetV2 in mnv2_ten_classes.h5. Received: a head of 10 classes" in message
    assert "To fix, load the file into its network in Keras and save it with model.save_weights(" in message
    assert "'mnv2_ten_classes.weights.h5') (a .weights.h5 loads with any number of classes)." in message, message
    other = files["MobileNetV2.h5"]  # a legacy .h5 of another application
    with pytest.raises(BadWeightsError) as refused:
        prepare_weights(_trial("keras:ResNet50", other), SHAPE, tmp_path / "cache", (), runner)
    message = str(refused.value)
    assert f"that fits --model keras:ResNet50 in {other.name}. Received: Keras refused it: " in message, message
    assert "To fix, pass the --model keras:NAME the file was saved from, or save it" in message, message


def test_weights_fetch_of_a_misspelt_model_names_the_nearest_ones(capsys):
    """A misspelt name was answered with four fixed Keras names, or the first twelve torchvision ones."""
    for name, nearest in (("keras:MobileNetv2", "the closest: MobileNetV2"), ("torchvision:resnet", "resnet18")):
        code, _, err = _cli(capsys, "weights", "fetch", name)
        assert code == 2 and nearest in err, err


def _first_kernels(checkpoint: Path, keras_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first convolution's kernel in a converted checkpoint, and as the Keras file holds it (both HWIO)."""
    from harness.checkpoints import load_checkpoint
    from harness.spec import Conv2D

    spec, weights, _ = load_checkpoint(checkpoint)
    first = next(layer.name for layer in spec.layers if isinstance(layer, Conv2D))
    with h5py.File(keras_file, "r") as handle:
        return weights[f"{first}/kernel"], handle["layers/conv2d/vars/0"][()]


def test_the_bgr_fold_follows_the_weights_whatever_normalize_says(files, runner, tmp_path, resnet50_keras):
    """The review's case: the fold followed the trial's --normalize, and the conversion's key left it out. Keras'
    ResNet50 reads BGR whatever the pipeline subtracts (--normalize imagenet: R and B were swapped), MobileNetV2
    reads RGB (--normalize caffe: its kernel was reversed); each converted first was reused for the other."""
    imagenet = InputConfig(normalize="imagenet")
    resnet = with_weight_preprocessing(_trial("keras:ResNet50", resnet50_keras, input=imagenet), ("input.normalize",))
    assert resnet.input.normalize == "imagenet"
    checkpoint = prepare_weights(resnet, SHAPE, tmp_path / "cache", (), runner)
    converted, source = _first_kernels(checkpoint, resnet50_keras)
    assert np.array_equal(converted, source[:, :, ::-1, :]) and not np.array_equal(converted, source)
    as_weights = with_weight_preprocessing(_trial("keras:ResNet50", resnet50_keras))  # the key names no --normalize
    assert prepare_weights(as_weights, SHAPE, tmp_path / "cache", (), runner) == checkpoint
    path = files["MobileNetV2.weights.h5"]
    caffe = InputConfig(normalize="caffe")
    mobilenet = with_weight_preprocessing(_trial("keras:MobileNetV2", path, input=caffe), ("input.normalize",))
    assert mobilenet.input.normalize == "caffe"
    converted, source = _first_kernels(prepare_weights(mobilenet, SHAPE, tmp_path / "cache", (), runner), path)
    assert np.array_equal(converted, source)


def test_a_python_factorys_weights_read_bgr_when_the_trial_says_caffe(resnet50_keras):
    """A python: factory's weights follow no convention xfbench knows: --normalize caffe is the user saying they
    read BGR (the fold followed the named weights alone, so a factory wrapping Keras' ResNet50 trained on swapped
    channels). Named weights keep their own convention whatever --normalize says."""
    from harness.pretrained import weights_read_bgr, weights_ref

    caffe, imagenet = InputConfig(normalize="caffe"), InputConfig(normalize="imagenet")
    for model, given, bgr in (
        ("python:my_nets:resnet", caffe, True),
        ("python:my_nets:resnet", imagenet, False),
        ("keras:ResNet50", imagenet, True),
        ("keras:MobileNetV2", caffe, False),
    ):
        trial = _trial(model, resnet50_keras, input=given)
        ref = weights_ref(trial)
        assert ref is not None and weights_read_bgr(ref, trial) == bgr, (model, given)


def test_a_torchvision_densenet_file_with_its_legacy_key_names_loads(workers, runner, tmp_path):
    """torchvision's DenseNet files name 'denselayer1.norm.1.weight' what the module calls 'denselayer1.norm1.weight'
    (torchvision renames them as it loads its own): such a file was refused as '580 missing'."""
    current = tmp_path / "densenet121-current.pth"
    workers["torch"](probes.write_torchvision, "densenet121", str(current), 10)
    legacy = {}
    for key, value in _state(workers, current).items():
        if not key.endswith("num_batches_tracked"):  # torchvision's files predate it
            legacy[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)] = value
    old_name = "features.denseblock1.denselayer1.norm.1.running_var"
    assert old_name in legacy
    path = tmp_path / "densenet121.pth"
    workers["torch"](probes.write_torch_state, str(path), legacy)
    checkpoint = prepare_weights(_trial("densenet121", path), SHAPE, tmp_path / "cache", ("torch",), runner)
    from harness.checkpoints import load_checkpoint

    converted = load_checkpoint(checkpoint)[1]
    assert any(v.shape == legacy[old_name].shape and np.array_equal(v, legacy[old_name]) for v in converted.values())


def test_model_options_the_converted_network_would_not_apply_are_refused(files, runner, tmp_path, capsys):
    """The review's case: --dropout, --alpha-dropout, --bn-variance with a torch file were recorded in config_json
    as applied, while the network converted from the file kept its own. Refused before the weights are looked at
    (exit 2), and by prepare_weights itself."""
    from harness.errors import InputError
    from harness.models import ModelOptions

    opts = ModelOptions(width_multiplier=0.25, dropout=0.5, dropout_kind="alpha")
    trial = _trial("mobilenet_v2", files["mobilenet_v2_narrow.pth"], model_options=opts)
    with pytest.raises(InputError, match=r"Received: --dropout 0.5, --alpha-dropout, which"):
        prepare_weights(trial, SHAPE, tmp_path / "cache", (), runner)
    base = ["run", "--strategy", "fine_tune", "--dataset", "digits", "--input-size", "32"]
    narrow = ("--model", "mobilenet_v2", "--width-multiplier", "0.25", "--weights", str(trial.transfer.weights_file))
    options = ("--dropout", "0.5", "--bn-variance", "biased")
    code, out, err = _cli(capsys, *base, *narrow, *options, "--results-dir", str(tmp_path / "r"))
    assert code == 2, err[-2000:]
    assert "Expected no model options but --width-multiplier with torchvision weights" in err, err
    assert "Received: --dropout 0.5, --bn-variance biased, which it would not apply." in err, err
    keras = ("--model", "keras:MobileNetV2", "--weights", str(files["MobileNetV2.weights.h5"]), "--dropout", "0.2")
    code, out, err = _cli(capsys, *base, *keras, "--results-dir", str(tmp_path / "r"))
    assert code == 2 and "Expected no model options with Keras weights" in err, err
    assert not (tmp_path / "r").exists()


def test_a_search_that_varies_model_options_of_a_pretrained_trial_is_refused(files):
    """A sample with other model options than its base found no converted weights (FileNotFoundError in the
    worker): the weights convert once, for the base's options."""
    from harness.errors import InputError
    from harness.weights_fit import check_searched_options

    trial = _trial("mobilenet_v2", files["mobilenet_v2.pth"])
    check_searched_options(trial, ["optimizer.lr"])
    check_searched_options(_trial("mobilenet_v2"), ["model_options.dropout"])  # a backbone xfbench trains
    with pytest.raises(InputError, match=r"Received: model_options.dropout in --space. To fix, drop it"):
        check_searched_options(trial, ["optimizer.lr", "model_options.dropout"])
    # a searched weights reference: its samples' files were never found, converted or checked (the worker failed)
    from harness.search import parse_space, validate_space

    for base in (trial, _trial("mobilenet_v2")):
        for path, values in (
            ("transfer.weights_file", "/a.npz,/b.npz"),
            ("transfer.pretrained", "torchvision:resnet18,keras:MobileNetV2"),
        ):
            space = f"{path}=choice:{values}"
            with pytest.raises(InputError, match=rf"Expected a search space without {path} for .*To fix, drop it"):
                validate_space(base, parse_space([space]))
    # the tune's preflight asks it, before any weights convert
    from harness.preflight import preflight
    from harness.search import parse_space
    from harness.tuning import TunePlan

    search = TunePlan(bases=(trial,), space=parse_space(["model_options.dropout=choice:0.1,0.2"]))
    with pytest.raises(InputError, match=r"Received: model_options.dropout in --space. To fix, drop it"):
        preflight([trial], None, download=False, search=search)


def test_an_edited_python_factory_converts_again(workers, tmp_path, monkeypatch):
    """The review's case: after the user's factory changed (ReLU -> Tanh), the same file and --model reused the
    conversion (and verification) of the old network. The key holds the factory module's source digest."""
    from harness.checkpoints import load_checkpoint
    from harness.spec import Activation

    monkeypatch.chdir(tmp_path)  # where the driver and the fresh worker processes find the module
    source = (
        "from torch import nn\n\n\ndef build(num_classes=10):\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.{act}(), nn.Flatten(), nn.Linear(4 * 30 * 30, num_classes))\n"
    )
    module = tmp_path / "edited_factory_net.py"
    module.write_text(source.format(act="ReLU"))
    rng = np.random.default_rng(0)
    shapes = {"0.weight": (4, 3, 3, 3), "0.bias": (4,), "3.weight": (10, 3600), "3.bias": (10,)}
    path = tmp_path / "net.pth"
    workers["torch"](
        probes.write_torch_state, str(path), {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    )
    trial = _trial("python:edited_factory_net:build", path)

    def kinds(checkpoint: Path) -> list[str]:
        return [layer.kind for layer in load_checkpoint(checkpoint)[0].layers if isinstance(layer, Activation)]

    first = prepare_weights(trial, SHAPE, tmp_path / "cache", ())  # fresh processes: they import the module anew
    assert kinds(first) == ["relu"]
    module.write_text(source.format(act="Tanh"))
    second = prepare_weights(trial, SHAPE, tmp_path / "cache", ())
    assert second != first and kinds(second) == ["tanh"]


def _write_training_checkpoint(_backend: str, path: str, tensors: dict[str, np.ndarray]) -> None:
    """A training loop's checkpoint: the state dict under 'model', beside the epoch (in the torch worker)."""
    import torch

    torch.save({"model": {k: torch.from_numpy(v) for k, v in tensors.items()}, "epoch": 3}, path)


def test_a_training_checkpoint_names_its_entry_and_the_state_dict_to_save(workers, runner, tmp_path):
    path = tmp_path / "checkpoint.pth"
    workers["torch"](_write_training_checkpoint, str(path), {"conv1.weight": np.zeros((4, 3, 3, 3), np.float32)})
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("resnet18", path), SHAPE, tmp_path / "cache", (), runner)
    message = str(error.value)
    assert "Received: a dict whose entry 'model' is of type dict (itself a state dict), not a tensor." in message
    assert "To fix, save the state dict alone: torch.save(checkpoint['model'], path)." in message, message


def test_a_safetensors_header_entry_without_data_offsets_is_bad_weights(runner, tmp_path):
    """It raised a bare KeyError (a traceback) before any framework read the file."""
    header = json.dumps({"conv1.weight": {"dtype": "F32", "shape": [1]}}).encode()
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(BadWeightsError, match=r"Expected whole-number data_offsets \(two\) for tensor 'conv1.weight'"):
        prepare_weights(_trial("resnet18", path), SHAPE, tmp_path / "cache", (), runner)


def test_a_weights_home_copied_to_another_machine_keeps_the_sets_it_was_fetched_as(tmp_path):
    """sets.json recorded absolute paths: in the copy the docs' workflow makes (fetch where there is network, copy
    the folder), every file read as "(copied in)", its set's name lost."""
    import shutil

    from harness.pretrained import _in_home

    home = tmp_path / "fetched"
    hub = home / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(b"the weights")
    recorded = _in_home(hub / "resnet18-f37072fd.pth", home)
    assert recorded == "torch/hub/checkpoints/resnet18-f37072fd.pth"
    (home / "sets.json").write_text(json.dumps({"torchvision:resnet18": recorded}))
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(home, copy)
    shutil.rmtree(home)
    assert [(w.label, w.path.name) for w in cached_weights(copy)] == [("torchvision:resnet18", "resnet18-f37072fd.pth")]
    (copy / "sets.json").write_text(json.dumps({"torchvision:resnet18": str(copy / recorded)}))  # an older index
    assert [w.label for w in cached_weights(copy)] == ["torchvision:resnet18"]


def test_a_trial_loads_the_conversion_of_the_content_its_run_recorded(files, cache, runner, tmp_path):
    """Trials found their converted weights through an index named after the file's path, which every preflight
    rewrote: a run beside (or a resume after) one that converted the edited file under that path handed its later
    trials other weights. Each content's conversion now has an index entry of its own; a trial loads its run's
    (weights_key)."""
    from harness.checkpoints import load_checkpoint, save_checkpoint
    from harness.errors import InputError
    from harness.pretrained import check_weights_unchanged, checkpoint_for, prepared_sha256
    from harness.weight_files import file_sha256

    spec, weights, meta = load_checkpoint(
        prepare_weights(_trial("resnet18", files["resnet18.pth"]), SHAPE, cache, (), runner)
    )
    path, own = tmp_path / "backbone.npz", tmp_path / "cache"
    trial = _trial("resnet18", path)
    converted = {}
    for scale in (1.0, 0.5):  # the file, then the file edited in place
        save_checkpoint(path, spec, {k: v * np.float32(scale) for k, v in weights.items()}, meta)
        checkpoint = prepare_weights(trial, SHAPE, own, (), runner)
        assert prepared_sha256(checkpoint) == file_sha256(path)
        converted[file_sha256(path)] = checkpoint
    (first, a), (second, b) = converted.items()
    assert a != b
    assert checkpoint_for(replace(trial, weights_key=first), SHAPE, own) == a  # the run that began with it
    assert checkpoint_for(replace(trial, weights_key=second), SHAPE, own) == b
    assert checkpoint_for(trial, SHAPE, own) == b  # a trial recorded without a key: the latest, as before
    with pytest.raises(FileNotFoundError, match="To fix, restore the file the run began with"):
        checkpoint_for(replace(trial, weights_key="0" * 64), SHAPE, own)
    with pytest.raises(InputError, match=r"to hold what it held when the run began \(sha256 "):
        check_weights_unchanged(replace(trial, weights_key=first), second)
    check_weights_unchanged(trial, second)  # a new run's trial has no key yet
