"""--model torchvision:NAME / python:module:function / spec.json: converted in the source framework's process,
the same logits in every backend as the source framework's own forward, unsupported ops refused before training.

The tests of what a conversion computes run the conversion worker's code in the session's long-lived process of
the source framework (``import_call``); the runs of a user's module start a fresh conversion process, as a
user's run does."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
from importlib.machinery import ModuleSpec
from pathlib import Path

import backend_probes as probes
import import_probes
import numpy as np
import pytest
from conftest import assert_logits_match_source, on_each
from weight_file_probes import import_call, python_call

from harness.errors import InputError
from harness.importers import UnsupportedModelError
from harness.model_import import (
    ModelRef,
    check_python_module,
    imported_model,
    model_spec,
    parse_model_ref,
    python_model_sources,
    user_model_key,
)
from harness.models import ModelOptions, build_spec
from harness.spec import canonical_form, spec_to_dict
from harness.weights import count_parameters

XFBENCH = str(Path(sys.executable).with_name("xfbench"))


def test_every_reference_form_parses_and_a_bad_one_lists_them(tmp_path):
    spec_file = tmp_path / "m.json"
    spec_file.write_text(json.dumps(spec_to_dict(build_spec("convnet3", (8, 8, 1), 10))))
    assert parse_model_ref("resnet18") == ModelRef("zoo", "resnet18")
    assert parse_model_ref("torchvision:resnet18") == ModelRef("torchvision", "resnet18")
    assert parse_model_ref("keras:ResNet50") == ModelRef("keras", "ResNet50")
    assert parse_model_ref("python:pkg.mod:make") == ModelRef("python", "pkg.mod:make")
    assert parse_model_ref(str(spec_file)) == ModelRef("spec", str(spec_file.resolve()))
    with pytest.raises(InputError, match="torchvision:NAME, keras:NAME, python:package.module:function"):
        parse_model_ref("nomodel")
    with pytest.raises(InputError, match="Expected python:MODULE:FUNCTION.*e.g. python:nomodule:build"):
        parse_model_ref("python:nomodule")
    # a file's path or an empty module was answered "Name the function too"
    with pytest.raises(
        InputError, match="To fix, name the module as Python imports it, without its folder: python:nets:make, run"
    ):
        parse_model_ref("python:models/nets.py:make")
    with pytest.raises(InputError, match="To fix, name the module before the function, e.g. python:my_nets:make"):
        parse_model_ref("python::make")
    with pytest.raises(InputError, match=r"no module 'nets.py'.*without .py: python:nets:make\."):
        check_python_module(parse_model_ref("python:nets.py:make"))
    # a review's spellings, answered with the zoo's names or a wrong example
    for given, said in (
        ("nets.py", "name your own model's factory with the python: prefix, its module as Python imports it: "
                    "python:nets:FUNCTION"),
        ("nets:make", "with the python: prefix, its module as Python imports it: python:nets:make"),
        ("python:nets.make", "To fix, separate the function with a colon, e.g. python:nets:make (or python:nets.make:"),
        ("python:nets:make:x", "To fix, give one module and one function, e.g. python:nets:make"),
        ("python:nets.py", "without .py, and its function: python:nets:build"),
        ("nets.py:make", "python:nets:make (docs/zoo.md"),
        ("pkg/nets.py", "python:nets:FUNCTION, run from pkg (or with it on PYTHONPATH)"),
        # a misspelt prefix or a zoo name given a suffix was told to write python:torchvison:resnet18
        ("torchvison:resnet18", "To fix, spell its prefix torchvision: --model torchvision:resnet18."),
        ("Keras:ResNet50", "To fix, spell its prefix keras: --model keras:ResNet50."),
        ("resnet18:x", "To fix, give --model resnet18 (zoo names take no ':x')"),
    ):  # fmt: skip
        with pytest.raises(InputError) as refused:
            parse_model_ref(given)
        assert said in str(refused.value), str(refused.value)
    with pytest.raises(InputError, match="does not exist"):
        parse_model_ref(str(tmp_path / "missing.json"))
    # a saved model was answered with the zoo's names alone: the factory that loads it is what to write
    with pytest.raises(
        InputError,
        match=r"a saved \.keras model file\. To fix, give a python:MODULE:FUNCTION factory "
        r"that loads it \(def build\(\): return keras\.models\.load_model\(PATH\)\); the model it returns gives "
        r"the architecture, its weights only check the conversion.*model\.save_weights\('w\.weights\.h5'\)",
    ):
        parse_model_ref("tutorial.keras")
    with pytest.raises(InputError, match=r"a saved \.pth model file.*--weights PATH"):
        parse_model_ref("runs/net.pth")
    # Keras weights with the user's own Keras model: the advice named keras:MobileNetV2 alone
    from harness.weights_fit import keras_name

    with pytest.raises(InputError, match=r"your own Keras model \(python:\) cannot start from one"):
        keras_name("python:nets:build")


def _assert_every_backend_matches_the_source(workers, source: str, name: str, spec, weights) -> None:
    """Eval logits of the converted spec in every backend within 1e-4 x max(1, max |logit|) and 2e-5 x max |logit| of
    the source framework's own forward of the same model (random weights, seed 0), on 2 images."""
    shape = spec.input_shape
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    source_run = workers[source].submit(import_probes.reference_logits, name, shape, spec.num_classes, 0, x)
    ours = on_each(workers, probes.logits, spec, weights, x)  # each backend's process at once with the source's
    assert_logits_match_source(ours, source_run.result(timeout=600))


@pytest.mark.parametrize(
    "name, zoo", [("resnet18", "resnet18"), ("mobilenet_v2", "mobilenet_v2"), ("alexnet", "alexnet_tv")]
)
def test_torchvision_models_convert_to_the_zoos_spec_and_run_alike_in_both_backends(workers, tmp_path, name, zoo):
    shape = (64, 64, 3)
    spec, weights = imported_model(ModelRef("torchvision", name), shape, 10, tmp_path, call=import_call(workers))
    assert canonical_form(spec) == canonical_form(build_spec(zoo, shape, 10))
    assert count_parameters(spec) == count_parameters(build_spec(zoo, shape, 10))
    _assert_every_backend_matches_the_source(workers, "torch", name, spec, weights)


def test_a_batchnorm_and_prelu_after_a_flatten_import_in_the_neutral_feature_order(workers):
    """PyTorch's BatchNorm1d and PReLU after nn.Flatten hold their per-feature vectors in C,H,W order; the importer
    reorders them to the spec's H,W,C, so both backends reproduce torch's own forward."""
    x = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype(np.float32)
    spec, weights, reference = workers["torch"](import_probes.torch_flat_batchnorm_module, x)
    assert_logits_match_source(on_each(workers, probes.logits, spec, weights, x), reference)


def test_the_conversion_check_refuses_a_wrong_network_whose_logits_are_far_below_one(workers):
    """The check's bound, 1e-4 x max(1, max |logit|), was an absolute 1e-4 where a random deep network's logits
    are far smaller (torchvision's mobilenet_v2: 3e-10), so a conversion with every weight zero passed it; its
    relative part, 1e-3 until 2026-12-07, let a gap of 1e-3 of the logits through where float32 leaves 3.4e-6."""
    from harness.weights_worker import tolerance

    assert workers["torch"](import_probes.torch_check_of_a_tiny_network, False) == ""  # the right weights pass
    refused = workers["torch"](import_probes.torch_check_of_a_tiny_network, True)
    assert "Expected xfbench's network converted from model tiny to compute the model's own logits within " in refused
    assert "(2e-5 x max |logit|) on a probe batch, in torch" in refused
    assert tolerance(np.array([-3e-10, 1e-10])) == pytest.approx(6e-15)
    assert tolerance(np.array([0.5])) == pytest.approx(1e-5) and tolerance(np.array([-20.0])) == pytest.approx(4e-4)
    assert tolerance(np.array([200.0])) == pytest.approx(4e-3)


@pytest.mark.parametrize(
    "source, probe, forms",
    [
        ("torch", import_probes.torch_softmax_heads, ("module", "functional", "method")),
        ("tensorflow", import_probes.keras_softmax_heads, ("activation", "layer", "layer_axis_1", "log")),
    ],
)
def test_a_final_softmax_is_dropped_alike_from_torch_and_keras_models_and_one_inside_is_refused(
    workers, source, probe, forms
):
    """The spec outputs logits and the loss applies the softmax: a final nn.Softmax, F.log_softmax or .softmax(),
    and Keras' final softmax activation or Softmax layer, convert to the network without it (the weights
    unchanged); a softmax anywhere else is refused, naming the final one as supported."""
    out = workers[source](probe)
    plain_spec, plain_weights = out["plain"]
    for form in forms:
        spec, weights = out[form]
        assert canonical_form(spec) == canonical_form(plain_spec), form
        assert all(np.array_equal(a, b) for a, b in zip(weights.values(), plain_weights.values(), strict=True)), form
    assert out["inside"] is not None and "oftmax at " in out["inside"] and "a final " in out["inside"], out["inside"]
    if "logits" in out:  # the source's own forward a converted network is checked against: its logits too
        assert all(np.array_equal(out["logits"][form], out["logits"]["plain"]) for form in forms)


def _write_user_module(directory: Path) -> None:
    (directory / "user_nets.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn


        class Residual(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.conv = nn.Conv2d(1, 8, 3, padding=1)
                self.bn = nn.BatchNorm2d(8)
                self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
                self.pool = nn.MaxPool2d(2)
                self.fc = nn.Linear(8 * 4 * 4, num_classes)

            def forward(self, x):
                x = torch.relu(self.bn(self.conv(x)))
                x = x + self.conv2(x)
                return self.fc(torch.flatten(self.pool(x), 1))


        class Recurrent(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(8, 8)
                self.fc = nn.Linear(8, 10)

            def forward(self, x):
                return self.fc(self.lstm(x)[0])


        def residual(num_classes):
            return Residual(num_classes)


        def recurrent():
            return Recurrent()
    """)
    )


def test_an_unsupported_op_is_named_with_where_it_sits(tmp_path, monkeypatch):
    _write_user_module(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedModelError, match="LSTM at 'lstm'") as refused:
        model_spec("python:user_nets:recurrent", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    # the standard form's "To fix, ..." (it ended "Replace that layer, ..."), and a refusal that pickles: Ray and
    # process pools carry exceptions so, and one with its own __init__ raised TypeError when unpickled
    assert str(refused.value).endswith(
        ". To fix, replace that layer with a supported one, or express it with the supported ones."
    )
    again = pickle.loads(pickle.dumps(refused.value))
    assert type(again) is UnsupportedModelError and str(again) == str(refused.value)
    assert (again.op, again.location, again.hint) == ("LSTM", "lstm", "")


def test_the_run_ships_users_modules_and_packages_but_not_what_the_environment_installs(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("def make(num_classes): ...\n")
    (tmp_path / "pkg").mkdir()
    for name in ("__init__.py", "nets.py"):
        (tmp_path / "pkg" / name).write_text("")
    monkeypatch.chdir(tmp_path)
    models = ["python:mine:make", "python:pkg.nets:make", "resnet18", "python:mine:other", "python:json:loads"]
    models += ["python:numpy.random:default_rng", "torchvision:resnet18"]
    assert python_model_sources(models) == (tmp_path.resolve() / "mine.py", tmp_path.resolve() / "pkg")


def test_a_namespace_packages_module_is_shipped_and_keyed_by_the_helpers_it_imports(tmp_path, monkeypatch):
    """A folder without __init__.py: nothing of it was shipped to Ray's nodes, and an edited helper left the key
    that --resume, compare and shared backbones read unchanged."""
    package = tmp_path / "nspkg"
    package.mkdir()
    (package / "nets.py").write_text("from nspkg import helper\n\ndef make(num_classes): ...\n")
    (package / "helper.py").write_text("WIDTH = 4\n")
    monkeypatch.chdir(tmp_path)
    assert python_model_sources(["python:nspkg.nets:make"]) == (tmp_path.resolve() / "nspkg",)
    before = user_model_key("python:nspkg.nets:make")
    (package / "helper.py").write_text("WIDTH = 8\n")
    assert user_model_key("python:nspkg.nets:make") != before


class _EditableFinder(importlib.abc.MetaPathFinder):
    """What setuptools' editable install of a flat-layout project puts on sys.meta_path: its packages mapped to
    their source folders, found by no entry of sys.path."""

    def __init__(self, packages: dict[str, Path]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        folder = self.packages.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def test_a_module_an_editable_install_maps_is_found_shipped_and_keyed(tmp_path, monkeypatch):
    """It was refused as "no module" although Python imports it."""
    source = tmp_path / "src" / "mynets"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "small.py").write_text("def build(num_classes): ...\n")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _EditableFinder({"mynets": source})])
    monkeypatch.chdir(tmp_path)
    assert python_model_sources(["python:mynets.small:build"]) == (source,)
    assert user_model_key("python:mynets.small:build").startswith("source ")


def test_a_conversion_process_that_ends_without_a_report_is_not_told_to_change_the_input_size(tmp_path, monkeypatch):
    """A module that ends its process at import was told to choose another input size; a process killed (as the
    out-of-memory killer does) is told of memory, whatever the model's form. A factory that ends it when called
    was told of its import alone, where `python -c 'import ...'` runs to its end."""
    (tmp_path / "hard_exit.py").write_text("import os\n\nos._exit(0)\n")
    (tmp_path / "exit_in_factory.py").write_text("import os\n\n\ndef make(num_classes):\n    os._exit(0)\n")
    (tmp_path / "killed.py").write_text("import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGKILL)\n")
    monkeypatch.chdir(tmp_path)
    for module in ("hard_exit", "exit_in_factory"):
        with pytest.raises(InputError) as ended:
            model_spec(f"python:{module}:make", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
        message = str(ended.value)
        assert "the conversion process ended without a report (exit status 0; its last output: no output)" in message
        assert f"python -c 'import {module}'` runs to its end and that the factory returns its model" in message
        assert "exits or ends its process when imported or when its factory runs" in message, message
        assert "input size" not in message
    with pytest.raises(InputError) as killed:
        model_spec("python:killed:make", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(killed.value)
    assert "ended without a report (killed by signal 9;" in message and "To fix, free memory" in message


def test_a_users_module_runs_on_digits_with_both_backends_agreeing_and_an_lstm_exits_2(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    _write_user_module(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    # The refused module through main in this process (run from the module's folder, as a user does; the fresh
    # conversion process finds the module there).
    monkeypatch.chdir(tmp_path)
    args = ["run", "--strategy", "scratch", "--model", "python:user_nets:recurrent", "--dataset", "digits"]
    assert main([*args, "--results-dir", str(tmp_path / "r")]) == 2
    assert "LSTM at 'lstm'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before any run: the folder it created to convert in is gone
    # The run itself in a fresh process that starts its own Ray, which ships the module to its workers
    # (harness.model_import.python_model_sources; tests/test_cluster.py runs one on nodes that lack it).
    run = subprocess.run(
        [
            XFBENCH,
            "run",
            "--strategy",
            "scratch",
            "--model",
            "python:user_nets:residual",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--precision",
            "float64",
            "--results-dir",
            str(tmp_path / "r"),
            "--run-id",
            "user",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    from harness.results import read_results
    from harness.summary import final_rows

    rows = read_results(tmp_path / "r" / "user")
    finals = final_rows(rows)
    accuracy = finals.pivot(index="seed", columns="backend", values="test_acc")
    assert (accuracy["torch"] == accuracy["tensorflow"]).all() and (accuracy["torch"] > 0.8).all()
    _assert_every_epoch_agrees(rows, seeds=2, epochs=2)
    assert set(finals["params"]) == {8 * 9 + 8 + 16 + 8 * 8 * 9 + 128 * 10 + 10}


def test_imagenet_architectures_take_grayscale_replicated_and_a_users_channel_mismatch_is_named(tmp_path, monkeypatch):
    """A torchvision or keras.applications model is the published RGB network: grayscale data is fed as three
    identical channels unless --input-channels says otherwise; zoo models are built for the data's channels. A
    user's module that takes other channels than its inputs have is refused naming both counts and the fix."""
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser

    def channels(*args: str) -> set[int | None]:
        argv = ["run", "--strategy", "scratch", "--dataset", "digits", "--input-size", "32", *args]
        return {t.input.channels for t in plan_from_args(build_parser().parse_args(argv)).trials}

    assert channels("--model", "torchvision:resnet18") == {3}
    assert channels("--model", "keras:MobileNetV2") == {3}
    assert channels("--model", "torchvision:resnet18", "--input-channels", "1") == {1}
    assert channels("--model", "resnet18") == {None}
    (tmp_path / "rgb_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn


        def rgb(num_classes):
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, num_classes))


        def wide(num_classes, width):
            return rgb(num_classes)


        def positional(num_classes, /, *layers, width=4, **options):  # called with the classes, nothing else
            return rgb(num_classes)


        NOT_A_FACTORY = 3
        """)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:rgb_nets:rgb", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    assert str(refused.value) == (
        "Expected inputs with the 3 channels that model rgb_nets:rgb takes. Received: inputs with 1. To fix, feed it "
        "3 (--input-channels 3, for xfbench run and xfbench model: grayscale images are replicated), or "
        "build the model for 1."
    )
    # channels other than one are the data's in a run, --input-channels' in xfbench model: both are named
    with pytest.raises(InputError, match=r"use data with 3 channels \(xfbench model: --input-channels 3\), or build"):
        model_spec("python:rgb_nets:rgb", (8, 8, 2), 10, ModelOptions(), tmp_path / "cache")
    spec = model_spec("python:rgb_nets:rgb", (8, 8, 3), 10, ModelOptions(), tmp_path / "cache")
    assert spec.input_shape == (8, 8, 3)
    # the channels are the first *applied* convolution's: this module registers its 8-channel head first
    (tmp_path / "head_first.py").write_text(
        textwrap.dedent("""
        from torch import nn


        class Net(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.head = nn.Conv2d(4, 4, 1)
                self.stem = nn.Conv2d(1, 4, 3)
                self.fc = nn.Linear(4 * 6 * 6, num_classes)

            def forward(self, x):
                return self.fc(self.head(self.stem(x)).flatten(1))


        def make(num_classes):
            return Net(num_classes)
        """)
    )
    assert model_spec("python:head_first:make", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache").input_shape[-1] == 1
    # a published architecture cannot be rebuilt for other channels; a factory that is not one is named as such
    with pytest.raises(InputError) as refused:
        model_spec("torchvision:resnet18", (32, 32, 1), 10, ModelOptions(), tmp_path / "cache")
    assert str(refused.value).endswith("grayscale images are replicated), or choose a model built for 1.")
    with pytest.raises(InputError) as refused:
        model_spec("python:rgb_nets:missing", (8, 8, 3), 10, ModelOptions(), tmp_path / "cache")
    assert str(refused.value).startswith("Expected a function 'missing' in module 'rgb_nets'. Received: the module has")
    with pytest.raises(InputError) as refused:
        model_spec("python:rgb_nets:NOT_A_FACTORY", (8, 8, 3), 10, ModelOptions(), tmp_path / "cache")
    assert "Received: int 3." in str(refused.value)
    # a factory needing more than num_classes is named before it is called (it used to read as a bad input size)
    with pytest.raises(InputError) as refused:
        model_spec("python:rgb_nets:wide", (8, 8, 3), 10, ModelOptions(), tmp_path / "cache")
    assert "Received: a callable that also requires width." in str(refused.value)
    assert model_spec("python:rgb_nets:positional", (8, 8, 3), 4, ModelOptions(), tmp_path / "cache").num_classes == 4


@pytest.mark.ray
def test_a_spec_file_written_by_xfbench_model_trains_like_the_zoo_model(tmp_path, capsys, monkeypatch, shared_ray):
    """Given by a path relative to where xfbench runs: the trials, which Tune runs in directories of their own, get
    the file's absolute path (before, every trial failed with 'which does not exist' after the preflight passed)."""
    from harness.cli import main
    from harness.results import read_results
    from harness.summary import final_rows

    path = tmp_path / "convnet3.json"
    assert main(["model", "convnet3", "--classes", "10", "--export-spec", str(path)]) == 0
    assert model_spec(str(path), (8, 8, 1), 10, ModelOptions(), None) == build_spec("convnet3", (8, 8, 1), 10)
    with pytest.raises(InputError, match="inputs"):
        model_spec(str(path), (28, 28, 1), 10, ModelOptions(), None)
    monkeypatch.chdir(tmp_path)
    args = ["run", "--strategy", "scratch", "--model", "convnet3.json", "--dataset", "digits", "--epochs", "1"]
    code = main([*args, "--train-limit", "256", "--results-dir", str(tmp_path / "r"), "--run-id", "spec"])
    assert code == 0, capsys.readouterr().err[-2000:]
    finals = final_rows(read_results(tmp_path / "r" / "spec"))
    assert set(finals["model"]) == {str(path)} and (finals["status"] == "ok").all() and len(finals) == 2
    assert set(finals["params"]) == {count_parameters(build_spec("convnet3", (8, 8, 1), 10))}


@pytest.mark.parametrize("name", ["MobileNetV2"])
def test_keras_applications_convert_and_run_alike_in_both_backends(workers, tmp_path, name):
    shape = (32, 32, 3)
    spec, weights = imported_model(ModelRef("keras", name), shape, 10, tmp_path, call=import_call(workers))
    _assert_every_backend_matches_the_source(workers, "tensorflow", name, spec, weights)
    # groups in model order, each in one piece: the stem (Conv1, bn_Conv1) first, the last convolution (Conv_1,
    # out_relu) in the last block's group; they were one group "features", first, so freeze_early froze both
    groups = spec.groups()
    assert list(groups)[:3] == ["Conv1", "expanded_conv", "block_1"] and list(groups)[-2:] == ["block_16", "classifier"]
    assert groups["Conv1"] == ("Conv1", "bn_Conv1", "Conv1_relu") and groups["block_16"][-3:] == (
        "Conv_1",
        "Conv_1_bn",
        "out_relu",
    )
    assert sum(len(layers) for layers in groups.values()) == len(spec.layers)
    assert [layer.group for layer in spec.layers] == [g for g, layers in groups.items() for _ in layers]


def test_a_users_keras_model_runs_on_digits_with_both_backends_agreeing(tmp_path):
    (tmp_path / "keras_nets.py").write_text(
        textwrap.dedent("""
        import keras


        def small(num_classes):
            inputs = keras.Input((8, 8, 1))
            x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
            y = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=1)(x)
            y = keras.layers.BatchNormalization()(y)
            x = keras.layers.Add()([x, keras.layers.ReLU()(y)])
            x = keras.layers.MaxPooling2D(2)(x)
            x = keras.layers.Flatten()(x)
            return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
    """)
    )
    run = subprocess.run(
        [
            XFBENCH,
            "run",
            "--strategy",
            "scratch",
            "--model",
            "python:keras_nets:small",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--precision",
            "float64",
            "--results-dir",
            str(tmp_path / "r"),
            "--run-id",
            "keras",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    from harness.results import read_results
    from harness.summary import final_rows

    rows = read_results(tmp_path / "r" / "keras")
    accuracy = final_rows(rows).pivot(index="seed", columns="backend", values="test_acc")
    assert (accuracy["torch"] == accuracy["tensorflow"]).all() and (accuracy["torch"] > 0.5).all()  # chance: 0.1
    _assert_every_epoch_agrees(rows, seeds=2, epochs=2)


def _assert_every_epoch_agrees(rows, seeds: int, epochs: int) -> None:
    """A user's model converted for both backends computes the same thing: under --precision float64 each seed's
    losses agree epoch by epoch to 1e-9 of their size (the frameworks' rounding there is near 1e-15; float32 parts
    the torch module's BatchNorm net's validation loss by 5.6e-4 after two epochs, so equal test accuracy was all it
    could hold, and that cannot see a difference that flips no prediction among 360 test images)."""
    trained = rows[rows["phase"] == "train"]
    for column in ("train_loss", "val_loss"):
        losses = trained.pivot_table(index=["seed", "epoch"], columns="backend", values=column, aggfunc="first")
        assert len(losses) == seeds * epochs and losses.notna().all().all(), losses
        gap = ((losses["torch"] - losses["tensorflow"]).abs() / losses["torch"].abs()).max()
        assert gap <= 1e-9, f"{column}: relative gap {gap:.2e}\n{losses}"


def test_keras_layers_whose_names_give_no_group_join_the_group_around_them(tmp_path, monkeypatch, capsys):
    """Layers named as keras.applications name them: DenseNet121's leading zero_padding2d and final bn and relu, and
    VGG16's dense layers fc1 and fc2 between its last block and its predictions. The first three were one group
    "features" ahead of conv1, so --freeze-groups 1 froze them and trained the stem; fc1 and fc2 were frozen by
    transfer, which trains torchvision's vgg16 dense layers (its classifier)."""
    (tmp_path / "app_names.py").write_text(
        textwrap.dedent("""
        import keras


        def make(num_classes):
            layers = keras.layers
            inputs = keras.Input((8, 8, 1))
            x = layers.ZeroPadding2D(1, name="zero_padding2d")(inputs)
            x = layers.Conv2D(4, 3, name="conv1_conv")(x)
            x = layers.BatchNormalization(name="conv1_bn")(x)
            x = layers.MaxPooling2D(2, name="pool1")(x)
            x = layers.Conv2D(4, 3, padding="same", name="block2a_conv")(x)
            x = layers.Conv2D(4, 3, padding="same", name="block2b_conv")(x)
            x = layers.BatchNormalization(name="bn")(x)
            x = layers.ReLU(name="relu")(x)
            x = layers.Flatten(name="flatten")(x)
            x = layers.Dense(8, activation="relu", name="fc1")(x)
            x = layers.Dropout(0.5, name="drop")(x)
            return keras.Model(inputs, layers.Dense(num_classes, activation="softmax", name="predictions")(x))
    """)
    )
    monkeypatch.chdir(tmp_path)
    from harness.cli import main

    argv = ["model", "python:app_names:make", "--input-size", "8", "--input-channels", "1", "--classes", "10"]
    assert main([*argv, "--json", "--results-dir", str(tmp_path / "r")]) == 0
    groups = [(layer["name"], layer["group"]) for layer in json.loads(capsys.readouterr().out)["layers"]]
    assert groups == [
        ("zero_padding2d", "conv1"),
        ("conv1_conv", "conv1"),
        ("conv1_bn", "conv1"),
        ("pool1", "pool1"),
        ("block2a_conv", "block2"),
        ("block2b_conv", "block2"),
        ("bn", "block2"),
        ("relu", "block2"),
        ("flatten", "classifier"),
        ("fc1", "classifier"),
        ("fc1_activation", "classifier"),
        ("drop", "classifier"),
        ("predictions", "classifier"),
    ], groups


def test_keras_default_layer_names_are_no_layer_group(tmp_path, monkeypatch, capsys):
    """Keras names layers conv2d, conv2d_1, ... by default: their group was "conv2", as if they were ResNet50's
    conv2_block layers, and --freeze-groups counted a group the model does not have."""
    (tmp_path / "default_names.py").write_text(
        textwrap.dedent("""
        import keras


        def make(num_classes):
            inputs = keras.Input((8, 8, 1))
            x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
            x = keras.layers.Conv2D(4, 3, activation="relu")(x)
            return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(x)))
    """)
    )
    monkeypatch.chdir(tmp_path)
    from harness.cli import main

    argv = ["model", "python:default_names:make", "--input-size", "8", "--input-channels", "1", "--classes", "10"]
    assert main([*argv, "--json", "--results-dir", str(tmp_path / "r")]) == 0
    groups = {layer["name"]: layer["group"] for layer in json.loads(capsys.readouterr().out)["layers"]}
    assert groups["conv2d"] == groups["conv2d_1"] == "features" and groups["dense"] == "classifier", groups


def test_a_model_name_that_is_not_there_is_answered_with_the_nearest_ones():
    from harness.importers import closest_names

    names = ["MobileNet", "MobileNetV2", "ResNet50", "VGG16"]
    # its twin in case first
    assert (
        closest_names("mobilenetv2", names)
        == "To fix, give a name it knows, such as the closest: MobileNetV2, MobileNet."
    )
    assert (
        closest_names("Zzz", names)
        == "To fix, give a name it knows, such as MobileNet, MobileNetV2, ResNet50, VGG16 (4 in all)."
    )


def test_a_cached_user_model_is_converted_again_when_a_module_it_imports_changes(tmp_path, monkeypatch):
    """The cache entry of a python: model records the user's own source files its conversion imported (not the
    environment's, not xfbench's) with their digests: a change to any of them, or one that vanishes, is a new
    conversion, not the stale network (a helper's WIDTH changed and the run trained the old width)."""
    from harness.fresh_process import run_worker_module

    (tmp_path / "uses_helper.py").write_text(
        textwrap.dedent("""
        from torch import nn

        import helper


        def make(num_classes):
            width = helper.WIDTH
            return nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.ReLU(), nn.Linear(width, num_classes))
        """)
    )
    helper = tmp_path / "helper.py"
    helper.write_text("WIDTH = 16\n")
    monkeypatch.chdir(tmp_path)
    conversions = []

    def convert(argv: list[str]) -> tuple[int, str]:
        conversions.append(argv)
        return run_worker_module("harness.import_worker", argv)

    def params() -> int:
        spec, _ = imported_model(ModelRef("python", "uses_helper:make"), (4, 4, 1), 10, tmp_path / "c", call=convert)
        return count_parameters(spec)

    assert params() == params() == 16 * 16 + 16 + 16 * 10 + 10
    assert len(conversions) == 1  # unchanged sources: the cached entry, no second conversion
    helper.write_text("WIDTH = 8  # narrower\n")
    assert params() == 16 * 8 + 8 + 8 * 10 + 10
    assert len(conversions) == 2
    helper.unlink()  # gone: the entry is not served; the conversion says where the import failed
    with pytest.raises(InputError, match=r"ModuleNotFoundError: No module named 'helper'.*uses_helper\.py:4"):
        params()


def _write_broken_modules(directory: Path) -> None:
    """Modules that fail in the user's own code (no framework imported: the failure comes first)."""
    modules = {
        "broken_syntax": "def make(num_classes)\n    return None\n",
        "broken_name": "def make(num_classes):\n    return num_clases\n",
        "broken_import": "import nonexistent_pkg_xyz\n\n\ndef make(num_classes):\n    return None\n",
        "broken_factory": "def make(num_classes):\n    raise ValueError(f'no model for {num_classes} classes')\n",
        "broken_helper": "import broken_name\n\n\ndef make(num_classes):\n    return broken_name.make(num_classes)\n",
    }
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(source)


@pytest.mark.parametrize(
    "module, received, line",
    [
        ("broken_syntax", "SyntaxError: expected ':'", "broken_syntax.py:1"),
        ("broken_name", "NameError: name 'num_clases' is not defined", "broken_name.py:2"),
        ("broken_import", "ModuleNotFoundError: No module named 'nonexistent_pkg_xyz'", "broken_import.py:1"),
        ("broken_factory", "ValueError: no model for 10 classes", "broken_factory.py:2"),
        ("broken_helper", "NameError: name 'num_clases' is not defined", "broken_name.py:2"),  # innermost user frame
    ],
)
def test_an_error_in_the_users_own_code_names_its_file_and_line(tmp_path, monkeypatch, module, received, line):
    """A factory's module that fails to import or build is the user's code to fix: the error names the exception,
    the file and line (a SyntaxError's own; else the innermost frame in the user's files), and no input size."""
    _write_broken_modules(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec(f"python:{module}:make", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert received in message and f"{tmp_path.resolve() / line}" in message, message
    assert "To fix, correct" in message and "--input-size" not in message, message
    assert "\n" not in message


def test_a_factory_that_returns_nothing_is_told_to_return_its_model(tmp_path, monkeypatch):
    (tmp_path / "forgot.py").write_text("def make(num_classes):\n    layers = [num_classes]\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="Received: builtins.NoneType \\(does the function end with `return model`"):
        model_spec("python:forgot:make", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")


def test_a_factory_returning_a_tensor_or_a_class_is_told_to_return_an_instance_not_to_change_the_input_size(
    tmp_path, monkeypatch
):
    """A tensor (torch's class, so the torch importer) failed on `.named_parameters` and the user was told to choose
    another input size; the class itself was "builtins.type", not told to call it."""
    (tmp_path / "wrong_returns.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.fc = nn.Linear(64, num_classes)

            def forward(self, x):
                return self.fc(x.flatten(1))


        def tensor(num_classes):
            return torch.zeros(num_classes)


        def the_class(num_classes):
            return Net


        def not_a_model_class(num_classes):
            return dict
        """)
    )
    monkeypatch.chdir(tmp_path)
    refusals = {}
    for factory in ("tensor", "the_class", "not_a_model_class"):
        with pytest.raises(InputError) as refused:
            model_spec(f"python:wrong_returns:{factory}", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
        refusals[factory] = str(refused.value)
        assert "--input-size" not in refusals[factory], refusals[factory]
    assert refusals["tensor"].startswith(
        "Expected the factory to return a torch nn.Module. Received: torch.Tensor, not a module. To fix, return the "
        "nn.Module the factory builds (an instance of your module class, e.g. Net(num_classes))"
    ), refusals["tensor"]
    assert (
        "Received: the class wrong_returns.Net itself, not an instance. To fix, return an instance of it: "
        in (refusals["the_class"])
    )
    assert "Net(num_classes), or Net() where it takes no arguments." in refusals["the_class"], refusals["the_class"]
    assert (
        "the class builtins.dict itself, not an instance. To fix, return the model the function builds."
        in (refusals["not_a_model_class"])
    )


def test_a_users_module_found_on_the_drivers_path_converts_from_another_directory(tmp_path, monkeypatch):
    """pytest puts a test file's folder on sys.path: a model module beside a suite's test file was found there by
    the driver's check, then not importable in the conversion process, which had the current directory only."""
    beside = tmp_path / "tests_of_mine"
    beside.mkdir()
    (beside / "beside_suite.py").write_text(
        "from torch import nn\n\ndef make(num_classes):\n    return nn.Sequential(nn.Flatten(), "
        "nn.Linear(16, num_classes))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.syspath_prepend(str(beside))
    spec = model_spec("python:beside_suite:make", (4, 4, 1), 10, ModelOptions(), tmp_path / "cache")
    assert spec.num_classes == 10


def test_a_keras_sequential_without_an_input_is_built_for_the_trial_and_a_subclassed_model_is_told_why_not(
    tmp_path, monkeypatch
):
    """A Sequential of layers alone has no inputs until built, and a subclassed keras.Model has no layer graph: both
    failed with Keras' AttributeError and the advice to choose another input size, which fixes neither."""
    (tmp_path / "keras_forms.py").write_text(
        "import keras\n\n"
        "def layers_only(num_classes):\n"
        "    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(num_classes)])\n\n"
        "class Sub(keras.Model):\n"
        "    def __init__(self, num_classes):\n"
        "        super().__init__()\n"
        "        self.flat, self.dense = keras.layers.Flatten(), keras.layers.Dense(num_classes)\n\n"
        "    def call(self, x):\n"
        "        return self.dense(self.flat(x))\n\n"
        "def subclassed(num_classes):\n"
        "    return Sub(num_classes)\n"
    )
    monkeypatch.chdir(tmp_path)
    spec = model_spec("python:keras_forms:layers_only", (4, 4, 1), 10, ModelOptions(), tmp_path / "cache")
    assert spec.input_shape == (4, 4, 1) and [type(layer).__name__ for layer in spec.layers] == ["Flatten", "Dense"]
    with pytest.raises(InputError, match=r"a subclass of keras.Model \(Sub\).*To fix, build it with the functional"):
        model_spec("python:keras_forms:subclassed", (4, 4, 1), 10, ModelOptions(), tmp_path / "cache")


def test_the_usual_torch_flatten_idioms_import_as_a_flatten_and_another_view_is_told_how(tmp_path, monkeypatch):
    """x.view(x.size(0), -1), the most common flatten of PyTorch code, was refused as an unsupported 'size' with
    no word of how to write it; x.shape[0], reshape and torch.reshape alike."""
    forms = {
        "flatten": "torch.flatten(x, 1)",
        "view": "x.view(x.size(0), -1)",
        "view_size": "x.view(x.size()[0], -1)",
        "reshape": "x.reshape(x.shape[0], -1)",
        "torch_reshape": "torch.reshape(x, (x.size(0), -1))",
        "other_view": "x.view(-1, 4 * 3 * 3)",
        "shape_sum": "x.view(x.size(0), -1) * (x.size(2) + x.size(3))",
    }
    (tmp_path / "flat_forms.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, num_classes, form):\n"
        "        super().__init__()\n"
        "        torch.manual_seed(0)\n"
        "        self.conv, self.fc, self.form = nn.Conv2d(1, 4, 2), nn.Linear(36, num_classes), form\n\n"
        "    def forward(self, x):\n"
        "        x = self.conv(x)\n"
        + "".join(f"        if self.form == {name!r}:\n            x = {code}\n" for name, code in forms.items())
        + "        return self.fc(x)\n\n"
        + "".join(f"def {name}(num_classes):\n    return Net(num_classes, {name!r})\n\n" for name in forms)
    )
    monkeypatch.chdir(tmp_path)
    converted = {}
    for name in [n for n in forms if n not in ("other_view", "shape_sum")]:
        spec, weights = imported_model(ModelRef("python", f"flat_forms:{name}"), (4, 4, 1), 10, tmp_path / "cache")
        converted[name] = ([type(layer).__name__ for layer in spec.layers], weights)
    kinds, weights = converted["flatten"]
    assert kinds == ["Conv2D", "Flatten", "Dense"]
    for name, (other_kinds, other_weights) in converted.items():
        assert other_kinds == kinds and other_weights.keys() == weights.keys(), name
        assert all(np.array_equal(other_weights[k], weights[k]) for k in weights), name
    with pytest.raises(
        InputError, match=r"view other than a flatten of each sample.*To fix, flatten with torch.flatten"
    ):
        imported_model(ModelRef("python", "flat_forms:other_view"), (4, 4, 1), 10, tmp_path / "cache")
    # any other use of a shape is named as such (an addition of two sizes ended in a KeyError)
    with pytest.raises(InputError, match=r"add of a tensor's shape.*To fix, read a shape only to flatten each sample"):
        imported_model(ModelRef("python", "flat_forms:shape_sum"), (4, 4, 1), 10, tmp_path / "cache")


def test_a_torch_conv_net_built_for_another_input_size_names_its_layer_and_the_size(tmp_path, monkeypatch):
    """A Linear after a flatten holds the features of the input size it was written for: its kernel cannot be
    reordered from C,H,W for another size, and the refusal says so in the user's terms (the layer, the shapes it
    holds and needs, --input-size with the size it was built for), as a Keras model's does; also where the sizes
    happened to divide (1000 classes) and for a BatchNorm1d on the flattened map."""
    (tmp_path / "for_28.py").write_text(
        textwrap.dedent("""
        from torch import nn


        def stem():
            return [nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]


        def make(num_classes):
            return nn.Sequential(*stem(), nn.Linear(8 * 14 * 14, num_classes))


        def normed(num_classes):
            return nn.Sequential(*stem(), nn.BatchNorm1d(8 * 14 * 14), nn.Linear(8 * 14 * 14, num_classes))
        """)
    )
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    for classes in (10, 1000):
        with pytest.raises(InputError) as refused:
            model_spec("python:for_28:make", (8, 8, 1), classes, ModelOptions(), cache)
        assert str(refused.value) == (
            "Expected model for_28:make to take inputs of 8x8x1. Received: its layer '_4' holds weights of shape "
            f"(1568, {classes}) (_4/kernel), where an input of 8x8x1 needs (128, {classes}). To fix, give the input "
            "size the model was built for: --input-size 28 (28x28x1 gives the weights it holds)."
        )
    with pytest.raises(InputError, match=r"layer '_4' holds weights of shape \(1568,\) .* --input-size 28 "):
        model_spec("python:for_28:normed", (8, 8, 1), 10, ModelOptions(), cache)
    assert model_spec("python:for_28:normed", (28, 28, 1), 10, ModelOptions(), cache).input_shape == (28, 28, 1)


def test_a_failing_forward_is_named_at_its_line_and_a_shape_failure_keeps_the_input_size_advice(tmp_path, monkeypatch):
    """Past the factory, torch.fx runs the user's forward: a fault there is named at its line (it read as code fx
    cannot trace, with no line). A model the requested input is too small for is the request: that advice stays."""
    (tmp_path / "late_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn


        class Faulty(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)

            def forward(self, x):
                return self.fc(x.flatten(1)) + undefined_bias


        def faulty():
            return Faulty()


        def big_kernel(num_classes):
            return nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten(), nn.Linear(4, num_classes))
        """)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        model_spec("python:late_nets:faulty", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    where = f"raised at {tmp_path.resolve() / 'late_nets.py'}:11 in forward (`return self.fc(x.flatten(1)) + undefined_"
    assert f"NameError: name 'undefined_bias' is not defined, {where}" in str(refused.value)
    with pytest.raises(InputError) as refused:
        model_spec("python:late_nets:big_kernel", (3, 3, 1), 10, ModelOptions(), tmp_path / "cache")
    message = str(refused.value)
    assert "kernel (5, 5)" in message and "(--input-size, --input-channels" in message
    # the shape failure's own fix, "edit the spec", came beside that one: the spec is the conversion's, not the user's
    assert message.count("To fix") == 1 and "edit the spec" not in message, message


def test_only_library_folders_count_as_installed_not_the_prefixes_above_them():
    """With the interpreter's prefixes among the installed roots, a user's module beside a venv in the project
    folder (or anywhere under /usr with Debian's Python) counted as installed: not shipped to Ray's nodes, not
    tracked for the cache, its errors without file and line."""
    import json as stdlib_module
    import sys

    from harness.user_code import is_installed

    assert is_installed(Path(stdlib_module.__file__).resolve()) and is_installed(Path(np.__file__).resolve())
    for prefix in {sys.prefix, sys.base_prefix}:
        assert not is_installed(Path(prefix).resolve() / "my_nets.py")


def test_a_torch_avgpool_with_a_divisor_override_or_padding_is_refused_and_a_plain_one_converts(tmp_path, monkeypatch):
    """nn.AvgPool2d(2, divisor_override=1) sums each window: it converted as the spec's plain average (a
    quarter of torch's output). The spec divides every whole window by its size, so another divisor, padding
    (count_include_pad either way) and ceil_mode are refused, naming the option; count_include_pad without
    padding changes nothing and converts."""
    (tmp_path / "pools.py").write_text(
        textwrap.dedent("""
        from torch import nn


        def net(pool, num_classes):
            return nn.Sequential(pool, nn.Flatten(), nn.Linear(16, num_classes))


        def summed(num_classes):
            return net(nn.AvgPool2d(2, divisor_override=1), num_classes)


        def padded(num_classes):
            return net(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), num_classes)


        def plain(num_classes):
            return net(nn.AvgPool2d(2, count_include_pad=False), num_classes)
        """)
    )
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    for name in ("summed", "padded"):
        with pytest.raises(UnsupportedModelError) as refused:
            model_spec(f"python:pools:{name}", (8, 8, 1), 10, ModelOptions(), cache)
        assert "AvgPool2d with padding, ceil_mode or divisor_override at '0'" in str(refused.value), name
        assert "divisor_override=None" in str(refused.value), name
    spec = model_spec("python:pools:plain", (8, 8, 1), 10, ModelOptions(), cache)
    assert [type(layer).__name__ for layer in spec.layers] == ["AvgPool2D", "Flatten", "Dense"]


def test_a_subclass_of_a_torch_layer_is_refused_naming_the_layer_it_subclasses(tmp_path, monkeypatch):
    """torch.fx traces a user's subclass through its code: it was refused as "get_attr 0.weight", which named no
    layer the user wrote."""
    (tmp_path / "sub_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn


        class MyConv(nn.Conv2d):
            pass


        def sub(num_classes):
            return nn.Sequential(MyConv(1, 4, 3), nn.Flatten(), nn.Linear(144, num_classes))
        """)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedModelError) as refused:
        model_spec("python:sub_nets:sub", (8, 8, 1), 10, ModelOptions(), tmp_path / "cache")
    said = str(refused.value)
    assert "To fix, use nn.Conv2d itself at '0': MyConv there, a subclass of nn.Conv2d, is traced through" in said


def test_a_keras_leaky_relu_activation_imports_with_keras_slope(tmp_path):
    """activation="leaky_relu" is keras.activations.leaky_relu, whose negative slope defaults to 0.2: it imported
    with the spec's default 0.01 (torch's), and the TensorFlow backend's logits were not the Keras model's."""
    script = textwrap.dedent("""
        import json

        import keras
        import numpy as np

        from backends.tensorflow import importer
        from harness.backend import load_backend
        from harness.config import RuntimeOptions

        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.Activation("leaky_relu", name="act")(x)
        x = keras.layers.Flatten(name="flat")(x)
        x = keras.layers.Dense(16, activation="leaky_relu", name="hidden")(x)
        model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
        spec, weights = importer.convert(model, (8, 8, 1), "python:leaky:make")
        x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
        backend = load_backend("tensorflow", RuntimeOptions(threads=1))
        backend.build(spec, weights, seed=0)
        print(json.dumps({
            "ours": backend.predict_logits(x, 256).tolist(),
            "keras": importer.reference_logits(model, x).tolist(),
            "alphas": {layer.name: layer.alpha for layer in spec.layers if type(layer).__name__ == "Activation"},
        }))
    """)
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["alphas"] == {"act": 0.2, "hidden_activation": 0.2}
    assert_logits_match_source({"tensorflow": np.array(out["ours"])}, np.array(out["keras"]))


def test_model_command_shows_a_users_factory_at_its_own_default_class_count_under_its_python_name(
    workers, tmp_path, monkeypatch, capsys
):
    """`xfbench model python:nets:make` showed a `make(num_classes=10)` model with 1000 classes, and its header
    dropped the python: prefix. Without --classes the factory is called with its own default; one whose num_classes
    has no default is given 1000 (docs/zoo.md)."""
    import harness.model_import
    from harness.cli import main

    (tmp_path / "default_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn


        def make(num_classes=10):
            return nn.Sequential(nn.Flatten(), nn.Linear(16, num_classes))


        def required(num_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(16, num_classes))
        """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(harness.model_import, "_fresh_process", python_call(workers, "torch"))
    shape = ["--input-size", "4", "--input-channels", "1", "--results-dir", str(tmp_path / "r")]
    assert main(["model", "python:default_nets:make", *shape]) == 0
    assert capsys.readouterr().out.startswith("python:default_nets:make: input 4×4×1, 10 classes\n")
    assert main(["model", "python:default_nets:make", *shape, "--classes", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["model"], shown["num_classes"]) == ("python:default_nets:make", 3)
    assert main(["model", "python:default_nets:required", *shape]) == 0
    assert capsys.readouterr().out.startswith("python:default_nets:required: input 4×4×1, 1000 classes\n")
