"""Spec files (``--model net.json``) are JSON written by hand: each layer field's value is checked against its
dataclass annotation and range, and unknown top-level keys are refused, before Ray. Field names alone were checked:
a leaky_relu slope of "0.2" passed the preflight and failed in every worker (exit 1), a use_bias of "false" built
a bias while the recorded config said false, and a top-level "dropout": 0.5 was silently ignored."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import InputError
from harness.models import MODELS, ModelOptions, build_spec
from harness.spec import spec_from_dict, spec_to_dict


def _net() -> dict[str, Any]:
    """The reviewer's small net: conv, activation, flatten, dense, for 8x8x1 digits and 10 classes."""
    conv = {"type": "Conv2D", "name": "c", "group": "features", "filters": 4, "kernel_size": [3, 3]}
    return {
        "name": "s",
        "input_shape": [8, 8, 1],
        "num_classes": 10,
        "layers": [
            {**conv, "padding": [[1, 1], [1, 1]]},
            {"type": "Activation", "name": "a", "group": "features", "kind": "leaky_relu", "alpha": 0.2},
            {"type": "Flatten", "name": "f", "group": "classifier"},
            {"type": "Dense", "name": "d", "group": "classifier", "units": 10},
        ],
    }


def _with(index: int, **fields: Any) -> dict[str, Any]:
    data = _net()
    data["layers"][index].update(fields)
    return data


def _with_layer(layer: dict[str, Any]) -> dict[str, Any]:
    """The net with ``layer`` inserted as layer 1, after the conv."""
    data = _net()
    data["layers"].insert(1, layer)
    return data


_ALPHA_TEXT = "Expected alpha as a number (or null) in layer 'a' (Activation, layer 1). Received: alpha='0.2' (text)."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(1, alpha="0.2"), re.escape(_ALPHA_TEXT) + r" To fix, write alpha as a number \(or null\); .*quotes"),
        (_with(1, alpha=float("nan")), r"alpha as a number.*'a' \(Activation, layer 1\).*alpha=nan \(not a finite"),
        (
            _with(0, use_bias="false"),
            r"Expected use_bias as true or false in layer 'c' \(Conv2D, layer 0\)\. Received: use_bias='false' "
            r"\(text\)\. To fix, write use_bias as true or false; .*without quotes",
        ),
        (_with(3, use_bias=0), r"use_bias as true or false in layer 'd' \(Dense, layer 3\).*use_bias=0 \(a whole"),
        (
            _with(0, groups=True),
            r"Expected groups >= 1 \(a whole number\) in layer 'c' \(Conv2D, layer 0\)\. Received: groups=True "
            r"\(a boolean\)\. To fix, write groups as a whole number >= 1\.",
        ),
        (_with(0, kernel_size=[3, True]), r"kernel_size as a list of 2 whole numbers >= 1.*kernel_size=\[3, True\]"),
        (_with(0, padding=[[1, True], [1, 1]]), r"padding as a list of 2 lists of 2 whole numbers >= 0.*'c'"),
        (
            _with_layer({"type": "Dropout", "name": "dr", "group": "features", "rate": False}),
            r"Expected 0 <= rate < 1 \(a number\) in layer 'dr' \(Dropout, layer 1\)\. Received: rate=False "
            r"\(a boolean\)\. To fix, write rate as a number in \[0, 1\)\.",
        ),
        (
            _with_layer({"type": "RepeatChannels", "name": "r", "group": "features", "repeats": 0}),
            r"Expected repeats >= 1 \(a whole number\) in layer 'r' \(RepeatChannels, layer 1\)\. Received: "
            r"repeats=0 \(a whole number\)\.",
        ),
        (
            _with_layer({"type": "Normalize", "name": "n", "group": "features", "mean": ["0.5"], "std": [0.2]}),
            r"Expected mean as a list of numbers in layer 'n' \(Normalize, layer 1\)\. Received: mean=\['0\.5'\]",
        ),
    ],
    ids=["alpha text", "alpha nan", "use_bias text", "use_bias number", "groups true", "kernel bool", "padding bool",
         "rate false", "repeats 0", "mean text"],
)  # fmt: skip
def test_a_layer_field_of_the_wrong_type_or_range_is_refused_naming_layer_field_and_fix(data, message):
    with pytest.raises(InputError, match=message):
        spec_from_dict(json.loads(json.dumps(data)))


def test_unknown_top_level_keys_and_a_name_that_is_not_text_are_refused():
    """A top-level "dropout": 0.5 was read by nothing; the legacy "options" (the builder's options that specs
    stored before 2026-12-02 hold, in files, checkpoints and import caches) still reads back."""
    pattern = (
        r"Expected only the top-level fields name, input_shape, num_classes, layers in a model spec\. Received also: "
        r"'dropout', which no layer reads\. .*move it there, or remove it\."
    )
    with pytest.raises(InputError, match=pattern):
        spec_from_dict(_net() | {"dropout": 0.5})
    with pytest.raises(InputError, match=r"Expected the spec's name as text\. Received: name=\['x'\]"):
        spec_from_dict(_net() | {"name": ["x"]})
    assert spec_from_dict(_net() | {"options": {"hidden": [32]}}) == spec_from_dict(_net())


# Options that set what the zoo's defaults leave alone (alpha, BatchNorm's and dropout's fields), where taken.
_OPTIONS = {
    "mlp": ModelOptions(activation="elu", activation_alpha=1.0, batchnorm="after", dropout=0.25, dropout_kind="alpha"),
    "cnn_small": ModelOptions(activation="leaky_relu", activation_alpha=0.1, batchnorm="before", bn_epsilon=1e-3),
    "convnet3": ModelOptions(use_bias=False, bn_running_variance="biased", batchnorm="after", bn_decay=0.99),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_zoo_model_reads_back_and_a_quoted_boolean_in_it_is_refused(name):
    """The stricter reading holds for what xfbench itself stores (exports, checkpoints and import caches all go
    through spec_to_dict): every zoo model reads back equal; the same file with a layer's use_bias quoted is
    refused."""
    size = 224 if name.startswith("alexnet") else 32  # its pools need the ImageNet size
    spec = build_spec(name, (size, size, 3), 10, _OPTIONS.get(name, ModelOptions()))
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert spec_from_dict(data) == spec
    index, layer = next((i, layer) for i, layer in enumerate(data["layers"]) if "use_bias" in layer)
    layer["use_bias"] = "false"
    with pytest.raises(InputError, match=rf"use_bias as true or false in layer '{layer['name']}' .*layer {index}\)"):
        spec_from_dict(data)


def _write(path: Path, data: dict[str, Any] | None) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_xfbench_run_refuses_the_reviewers_spec_files_before_ray(tmp_path, monkeypatch, capsys):
    """The reproduction: `xfbench run --model alpha_str.json` passed the preflight and both trials failed inside
    Ray with bare TypeErrors (exit 1); now the preflight refuses it, exit 2. `xfbench model` refuses it too."""

    def reached_ray(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the run reached the scheduler: the preflight let the spec file through")

    monkeypatch.setattr("harness.runner.execute", reached_ray)
    alpha = _write(tmp_path / "alpha_str.json", _with(1, alpha="0.2"))
    run = ["run", "--strategy", "scratch", "--model", alpha, "--dataset", "digits", "--epochs", "1", "--seeds", "1"]
    assert main([*run, "--cpus-per-trial", "1", "--results-dir", str(tmp_path / "results")]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    assert re.search(r"Received: alpha='0\.2' \(text\)\..*\(in the spec file .*alpha_str\.json\)", said), said
    extra = _write(tmp_path / "extra.json", _net() | {"dropout": 0.5})
    assert main(["model", extra]) == 2
    assert "Received also: 'dropout', which no layer reads" in capsys.readouterr().err.replace("\n", " ")


def _merged_flat_maps() -> dict[str, Any]:
    """The review's spec: one conv's 6x6x4 map flattened twice, the two vectors concatenated into the head."""
    data = _net()
    conv, _, _, dense = data["layers"]
    flat_a = {"type": "Flatten", "name": "flat_a", "group": "features", "inputs": ["c"]}
    flat_b = {"type": "Flatten", "name": "flat_b", "group": "features", "inputs": ["c"]}
    merge = {"type": "Concat", "name": "merge", "group": "features", "inputs": ["flat_a", "flat_b"]}
    data["layers"] = [{**conv, "padding": [[0, 0], [0, 0]]}, flat_a, flat_b, merge, dense]
    return data


def test_a_merge_of_flattened_maps_is_refused_for_torch_before_ray_and_runs_on_tensorflow(
    tmp_path, monkeypatch, capsys
):
    """It passed the preflight, Ray started, and every torch trial failed in its worker (torch flattens in C,H,W
    order, so the layers after the merge cannot be converted): now `xfbench run` exits 2 before the scheduler, in
    the Expected/Received/To fix form. TensorFlow, which flattens in H,W,C order, still takes it."""
    from harness.config import TrialConfig
    from harness.preflight import preflight

    def reached_ray(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the run reached the scheduler: the preflight let the spec file through")

    monkeypatch.setattr("harness.runner.execute", reached_ray)
    merged = _write(tmp_path / "merged.json", _merged_flat_maps())
    run = ["run", "--strategy", "scratch", "--model", merged, "--dataset", "digits", "--epochs", "1", "--seeds", "1"]
    assert main([*run, "--cpus-per-trial", "1", "--results-dir", str(tmp_path / "results")]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    expected = (
        "Expected no Add or Concat of vectors flattened from feature maps on the torch backend: it flattens a map in "
        "C,H,W order, and after the merge the layers that follow could not be converted to the neutral H,W,C order. "
        "Received: layer 'merge' (Concat) of model 's' merges 'flat_a' (flattened from (6, 6, 4)) and 'flat_b' "
        "(flattened from (6, 6, 4)). To fix, merge the maps before the Flatten, put a Dense between the Flatten and "
        "the merge, or run it with --backend tensorflow."
    )
    assert expected in said, said
    tensorflow = TrialConfig(strategy="scratch", model=merged, dataset="digits", backend="tensorflow", seed=0, epochs=1)
    preflight([tensorflow], None, download=False)
    with pytest.raises(InputError, match=re.escape(expected)):
        preflight([dataclasses.replace(tensorflow, backend="torch")], None, download=False)


def test_a_merge_of_vectors_flattened_without_reordering_passes_the_preflight_for_torch():
    """A map with one position (or one channel) flattens in the same order either way: nothing to refuse."""
    from harness.shapes import check_flattened_merges

    data = _merged_flat_maps()
    data["layers"][0]["kernel_size"] = [8, 8]  # a 1x1x4 map
    check_flattened_merges(spec_from_dict(data), "torch")
    data["layers"][0].update(kernel_size=[3, 3], filters=1)  # a 6x6x1 map
    check_flattened_merges(spec_from_dict(data), "torch")


def test_an_alpha_on_an_activation_that_reads_none_is_refused_not_ignored():
    """An alpha on a relu (or tanh, sigmoid, ...) was accepted and ignored: the file said a slope the network never
    had. leaky_relu's slope and elu's alpha are still taken."""
    with pytest.raises(
        InputError, match=r"alpha only on a leaky_relu .* Received: alpha=0.2 on relu, which reads none"
    ):
        spec_from_dict(_with(1, kind="relu"))
    for kind in ("leaky_relu", "elu"):
        spec_from_dict(_with(1, kind=kind))


def test_a_layer_named_input_is_refused_as_the_name_of_the_models_input():
    """It shadowed the model's input: `xfbench model` counted 40,506 parameters for convnet3's 15,706 (the conv read
    its own output as its input), and a run failed in both workers after Ray had started."""
    pattern = r"Expected layer names other than 'input' .*Received: layer 0 named 'input'\. To fix, rename that layer"
    with pytest.raises(InputError, match=pattern):
        spec_from_dict(_with(0, name="input"))


def test_a_spec_file_that_is_not_an_object_or_holds_layers_that_reach_no_output_is_refused(tmp_path, capsys):
    """null gave a bare TypeError; a layer whose output no later layer read was built, counted in params and MACs
    and trained."""
    assert main(["model", _write(tmp_path / "null.json", None)]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    assert "Expected a model spec: a JSON object" in said and "Received: null at the top level" in said, said
    unused = _with_layer({"type": "Conv2D", "name": "side", "group": "features", "filters": 2, "kernel_size": [3, 3]})
    unused["layers"][2]["inputs"] = ["c"]  # the activation reads the first conv: "side" reaches nothing
    assert main(["model", _write(tmp_path / "unused.json", unused)]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    assert "Received: 'side', whose output no later layer reads. To fix, remove them" in said, said


def test_a_spec_file_that_cannot_be_read_exits_2_saying_so(tmp_path, monkeypatch, capsys):
    """A PermissionError (root reads every file, so it is raised here for this one) gave a traceback."""
    import pathlib

    spec = _write(tmp_path / "locked.json", _net())
    real = pathlib.Path.read_text

    def locked(self: pathlib.Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "locked.json":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", locked)
    assert main(["model", spec]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    assert "Received: " in said and "which cannot be read (PermissionError: Permission denied). To fix, make it" in said
