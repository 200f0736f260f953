"""A zoo name started from torchvision weights (its torchvision twin) trains the network the preflight checked:
the converted spec takes the zoo's layer groups and names (harness.models.as_zoo_twin), so --freeze-groups and
--feature-layer, checked against the zoo's spec before Ray starts, mean the same in the trial.

The weight files are written by torchvision itself (random weights, tests/weight_file_probes.py); each framework's
step runs in the session's long-lived probe worker of that framework, as in tests/test_pretrained.py."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import backend_probes
import numpy as np
import pytest
import weight_file_probes as probes
import zoo_probes

from harness.checkpoints import load_checkpoint
from harness.config import TrialConfig
from harness.errors import InputError
from harness.models import ModelOptions, as_zoo_twin, build_spec
from harness.pretrained import checkpoint_for, prepare_weights
from harness.shapes import infer_shapes
from harness.spec import Conv2D, renamed_layers, structure_difference, with_names_of
from harness.suites import _FREEZE_EARLY
from harness.weights import count_parameters, is_trainable_param, parameter_shapes
from harness.weights_fit import TORCHVISION_TWINS

SHAPE = (32, 32, 3)
# zoo name -> its weight file's width (mobilenet_v2 narrow, as the tests' other files) and the file's name
TWINS = {"resnet18": (1.0, "resnet18.pth"), "mobilenet_v2": (0.25, "mobilenet_v2_narrow.pth")}


@pytest.fixture(autouse=True)
def weights_home(tmp_path, monkeypatch):
    """Never the user's cache."""
    monkeypatch.setenv("XFBENCH_WEIGHTS", str(tmp_path / "weights-home"))


@pytest.fixture(scope="module")
def files(tmp_path_factory, workers) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("twin-files")
    paths = {}
    for zoo, (width, name) in TWINS.items():
        paths[zoo] = folder / name
        workers["torch"](probes.write_torchvision, zoo, str(paths[zoo]), 1000, 0, width)
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("twin-results") / "_cache"


@pytest.fixture(scope="module")
def runner(workers):
    return probes.probe_runner(workers)


def _zoo_spec(zoo: str, classes: int = 1000):
    return build_spec(zoo, SHAPE, classes, ModelOptions(width_multiplier=TWINS[zoo][0]))


def _trial(cache: Path, runner, zoo: str, weights: Path, *extra: str) -> TrialConfig:
    """The trial ``xfbench run --model ZOO --weights FILE EXTRA`` runs, with its weights converted into ``cache``."""
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser

    width = ["--width-multiplier", str(TWINS[zoo][0])] if TWINS[zoo][0] != 1.0 else []
    args = build_parser().parse_args(
        [
            *("run", "--model", zoo, "--dataset", "digits", "--weights", str(weights), *extra, *width),
            *("--input-size", "32", "--train-limit", "64", "--lr", "0.001", "--epochs", "1"),
        ]
    )
    trial = next(t for t in plan_from_args(args).trials if t.strategy != "pretrain")
    trial = replace(trial, cache_dir=str(cache))
    prepare_weights(trial, SHAPE, cache, ("torch",), runner)  # verified in torch: the renamed probe matches
    return trial


@pytest.mark.parametrize("zoo", sorted(TWINS))
def test_a_zoo_twins_converted_weights_take_the_zoos_groups_and_names(files, cache, runner, zoo):
    trial = _trial(cache, runner, zoo, files[zoo], "--strategy", "fine_tune")
    checkpoint = checkpoint_for(trial, SHAPE, cache)
    spec, weights, _ = load_checkpoint(checkpoint)
    zoo_spec = _zoo_spec(zoo)
    assert list(spec.groups()) == list(zoo_spec.groups())
    assert spec.groups() == zoo_spec.groups()  # every layer in the zoo's group, under the zoo's name
    assert spec.layers == zoo_spec.layers
    names = {layer.name for layer in spec.layers}
    assert {key.split("/")[0] for key in weights} <= names
    with np.load(checkpoint.with_suffix(".probe.npz")) as stored:
        probed = {key.split("::", 1)[1] for key in stored.files if key.startswith("layer::")}
    assert probed and probed <= names  # the source's per-layer outputs, under the zoo's names too
    if zoo == "mobilenet_v2":
        assert "avgpool" in names and "adaptive_avg_pool2d" not in names and "avgpool" in probed


@pytest.mark.parametrize("zoo", sorted(TWINS))
def test_freeze_early_with_the_suites_k_freezes_the_zoos_first_k_groups(files, cache, runner, workers, zoo):
    """The imagenet_transfer suites' k (harness.suites._FREEZE_EARLY): resnet18's 3 froze torchvision's conv1, bn1
    and relu; mobilenet_v2's 4 failed in the worker (its converted network had 2 groups)."""
    k = dict(_FREEZE_EARLY)[zoo]
    trial = _trial(cache, runner, zoo, files[zoo], "--strategy", "freeze_early", "--freeze-groups", str(k))
    rows, _ = workers["torch"](backend_probes.run_strategy, trial.to_dict())
    epoch = next(r for r in rows if r.get("epoch") == 1)
    zoo_spec = _zoo_spec(zoo, 10)
    groups = zoo_spec.groups()
    assert json.loads(epoch["details_json"])["frozen_groups"] == list(groups)[:k]
    frozen = {name for group in list(groups)[:k] for name in groups[group]}
    sizes = {key: int(np.prod(shape)) for key, shape in parameter_shapes(zoo_spec).items() if is_trainable_param(key)}
    trainable = sum(size for key, size in sizes.items() if key.split("/")[0] not in frozen)
    assert (epoch["trainable_params"], epoch["frozen_params"]) == (trainable, sum(sizes.values()) - trainable)


def test_feature_layer_avgpool_names_mobilenet_v2s_pooling_in_the_trial(files, cache, runner, workers):
    """--feature-layer avgpool, a layer of the zoo's mobilenet_v2 (the preflight's check), is one of the trial's."""
    trial = _trial(cache, runner, "mobilenet_v2", files["mobilenet_v2"], "--strategy", "deep_features")
    trial = replace(trial, transfer=replace(trial.transfer, feature_layer="avgpool"))
    features = workers["torch"](backend_probes.backbone_features, trial.to_dict())
    pooled = infer_shapes(_zoo_spec("mobilenet_v2"))["avgpool"].shape
    assert features.shape == (64, *pooled)


@pytest.mark.ray
def test_xfbench_run_freeze_early_on_a_narrow_mobilenet_v2_file_passes_preflight_and_trains(
    files, cache, runner, shared_ray, capsys
):
    """The reviewer's run: ``xfbench run --strategy freeze_early --model mobilenet_v2 --weights FILE
    --freeze-groups 4`` (the suites' k): the preflight accepted it and the trial failed in the worker; now the
    trial freezes the zoo's first 4 groups. Its weights were converted into the run's cache beforehand (the test
    above's conversion serves it: the same file, model, options and input shape)."""
    from harness.cli import main
    from harness.results import read_results

    k = dict(_FREEZE_EARLY)["mobilenet_v2"]
    _trial(cache, runner, "mobilenet_v2", files["mobilenet_v2"], "--strategy", "freeze_early")
    args = [
        *("run", "--strategy", "freeze_early", "--model", "mobilenet_v2", "--width-multiplier", "0.25"),
        *("--weights", str(files["mobilenet_v2"]), "--freeze-groups", str(k), "--backend", "torch"),
        *("--dataset", "digits", "--input-size", "32", "--train-limit", "64", "--epochs", "1"),
        *("--results-dir", str(cache.parent), "--run-id", "freeze-early-mobilenet-v2"),
    ]
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.out[-3000:] + out.err[-3000:]
    frame = read_results(cache.parent / "freeze-early-mobilenet-v2")
    rows = frame[frame["test_acc"].notna()]
    assert list(rows["status"]) == ["ok"]
    frozen = json.loads(rows["details_json"].iloc[0])["frozen_groups"]
    assert frozen == list(_zoo_spec("mobilenet_v2").groups())[:k] == ["stem", "stage1", "stage2", "stage3"]


@pytest.mark.parametrize("zoo", sorted(TORCHVISION_TWINS))
def test_every_torchvision_twin_converts_to_the_zoos_network_layer_by_layer(workers, zoo):
    """Each zoo name that claims torchvision's architecture (the weights of the torchvision model it names are read
    into it) is that architecture: torchvision's model, converted by the torch importer, takes the zoo's names and
    groups (as_zoo_twin) and is then the zoo's spec, parameter for parameter. Only resnet18, mobilenet_v2 and
    alexnet_tv were checked: a torchvision change to another twin would have surfaced as a user's preflight
    refusal. At a small input (AlexNet's pooling needs 64 px), without weight files."""
    shape = (64, 64, 3) if zoo == "alexnet_tv" else (32, 32, 3)
    spec, torchvision_params = workers["torch"](zoo_probes.torchvision_spec, TORCHVISION_TWINS[zoo], shape, 10)
    twin, _ = as_zoo_twin(zoo, {}, spec)  # InputError naming the first layer where the structures part
    zoo_spec = build_spec(zoo, shape, 10)
    assert twin.layers == zoo_spec.layers
    assert count_parameters(spec) == count_parameters(zoo_spec) == torchvision_params


def test_a_twin_whose_structure_is_not_the_zoos_is_refused_naming_where_they_part():
    zoo = build_spec("resnet18", SHAPE, 10)
    first = zoo.layers[0]
    assert isinstance(first, Conv2D)
    other = replace(zoo, layers=(replace(first, kernel_size=(3, 3)), *zoo.layers[1:]))
    assert structure_difference(other, zoo) == "layer 0, Conv2D 'conv1' against Conv2D 'conv1' (kernel_size differ)"
    with pytest.raises(ValueError, match="kernel_size differ"):
        with_names_of(other, zoo)
    with pytest.raises(InputError, match=r"Expected the network converted .* --model resnet18 .* Received: another"):
        as_zoo_twin("resnet18", {}, other)
    shorter = replace(zoo, layers=zoo.layers[:-1])
    assert structure_difference(shorter, zoo) == f"{len(zoo.layers) - 1} layers against {len(zoo.layers)}"


def test_only_a_zoo_name_is_relabelled():
    spec = build_spec("resnet18", SHAPE, 10)
    renamed = replace(spec, layers=tuple(replace(l, group="elsewhere") for l in spec.layers))
    assert as_zoo_twin("torchvision:resnet18", {}, renamed) == (renamed, {})
    relabelled, renames = as_zoo_twin("resnet18", {"hidden": [4000]}, renamed)
    assert relabelled.layers == spec.layers and renames == {}
    assert renamed_layers({"a/kernel": 1, "a": 2, "b/bias": 3}, {"a": "z"}) == {"z/kernel": 1, "z": 2, "b/bias": 3}
