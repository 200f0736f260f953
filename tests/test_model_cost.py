"""Parameters and MACs from the spec, the `xfbench model` table, and the cost columns of results and summaries."""

from __future__ import annotations

import json
import math
import re

import backend_probes as probes
import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.config import TrialConfig
from harness.model_cost import achieved_gflops, forward_macs_to, model_cost, step_macs, training_memory_floor
from harness.models import ModelOptions, build_spec
from harness.spec import Conv2D, Dense, Flatten, ModelSpec, spec_from_dict
from harness.summary import summarize
from harness.weights import count_parameters

# torchvision's published forward GMACs ("GFLOPS" in its weights' meta) at 224x224, 1000 classes
PUBLISHED_GMACS = {
    "resnet18": 1.81,
    "resnet50": 4.09,
    "mobilenet_v2": 0.30,
    "vgg16": 15.47,
    "alexnet_tv": 0.71,
    "densenet121": 2.83,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_forward_macs_are_within_two_percent_of_torchvisions_figures(name):
    """Issue 11's bound, 2 %, and the tighter one the published figures allow: they are given to two decimals (in
    GMACs), so a correct count lies within half a unit of the last digit, 0.005 G (0.03-1.7 % of these models)."""
    gmacs = model_cost(build_spec(name, (224, 224, 3), 1000)).forward_macs / 1e9
    assert abs(gmacs / PUBLISHED_GMACS[name] - 1) < 0.02
    assert abs(gmacs - PUBLISHED_GMACS[name]) <= 0.005, f"{gmacs:.4f} G does not round to {PUBLISHED_GMACS[name]}"


def test_convnet3_on_digits_by_hand():
    cost = model_cost(build_spec("convnet3", (8, 8, 1), 10))
    macs = {c.name: c.macs for c in cost.layers if c.macs}
    assert macs == {"conv1": 8 * 8 * 32 * 25, "conv2": 8 * 8 * 16 * 32 * 9, "logits": 8 * 8 * 16 * 10}
    assert cost.params == (25 * 32 + 32) + (9 * 32 * 16 + 16) + (1024 * 10 + 10) == 15_706
    assert cost.params == count_parameters(build_spec("convnet3", (8, 8, 1), 10))


def test_grouped_convolutions_count_only_their_groups_inputs():
    spec = ModelSpec(
        "dw",
        (6, 6, 8),
        2,
        (
            Conv2D(name="dw", group="f", filters=16, kernel_size=(3, 3), padding=((1, 1), (1, 1)), groups=8),
            Flatten(name="flat", group="f"),
            Dense(name="out", group="c", units=2),
        ),
    )
    macs = {c.name: c.macs for c in model_cost(spec).layers}
    assert macs["dw"] == 6 * 6 * 16 * 1 * 9 and macs["out"] == 6 * 6 * 16 * 2


def test_achieved_gflops_counts_two_flops_per_mac():
    assert achieved_gflops(3e9, 10.0) == pytest.approx(60.0)


def test_a_training_steps_macs_by_hand_count_no_gradient_that_no_trainable_weight_needs():
    spec = build_spec("mlp", (8, 8, 1), 10)  # 64 -> 4000 -> 10
    hidden, head = 64 * 4000, 4000 * 10
    # forward, the weight gradients of both, the head's input gradient; the first layer's input gradient feeds nothing
    assert step_macs(spec) == 3 * (hidden + head) - hidden
    frozen = [layer.name for layer in spec.layers[:-1]]
    assert step_macs(spec, frozen) == hidden + 2 * head  # a frozen backbone: its forward pass only
    assert forward_macs_to(spec, frozen[-1]) == hidden and forward_macs_to(spec, spec.layers[-1].name) == hidden + head


@pytest.mark.parametrize("name", ["cnn_small", "resnet20"])
def test_a_training_steps_macs_are_what_pytorchs_flop_counter_counts_with_every_freeze_the_strategies_make(
    workers, name
):
    """Against the FLOPs torch.utils.flop_counter counts as autograd runs one step of the torch backend: exactly, for
    a network trained whole, with all but its head frozen (feature_extraction), with its first group frozen
    (freeze_early) and with all but its classifier group frozen (transfer's first phase), resnet20's skip connections
    included. Not mobilenet_v2: that counter counts a grouped
    convolution's backward pass as if it were dense (17 times a depthwise 3x3 over 16 channels here)."""
    from harness.weights import initial_weights

    spec = build_spec(name, (8, 8, 1), 10)
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    y = np.arange(16) % 10
    groups = spec.groups()
    first_group = next(iter(groups.values()))
    all_but_classifier = [name for group, names in groups.items() if group != "classifier" for name in names]
    for frozen in ([], [layer.name for layer in spec.layers[:-1]], list(first_group), all_but_classifier):
        counted = workers["torch"](probes.step_flops, spec, initial_weights(spec, "glorot_uniform", 0), frozen, x, y)
        assert counted == 2 * step_macs(spec, frozen), (len(frozen), counted)


def test_the_memory_floor_is_the_parameters_and_one_batchs_input_and_largest_output_by_hand():
    spec = build_spec("mlp", (8, 8, 1), 10)  # 64 -> 4000 -> 10: 64*4000+4000 + 4000*10+10 parameters
    params = 64 * 4000 + 4000 + 4000 * 10 + 10
    assert training_memory_floor(spec, 32, 4, 4) == 4 * params + 4 * 32 * (64 + 4000)
    assert training_memory_floor(spec, 32, 8, 8) == 8 * params + 8 * 32 * (64 + 4000)  # float64
    assert training_memory_floor(spec, 32, 4, 2) == 4 * params + 2 * 32 * (64 + 4000)  # mixed: float32 variables
    # BatchNorm's running statistics are held too: a mean and a variance per channel (32, 32 and 128 here)
    normed = build_spec("cnn_small", (28, 28, 1), 10, ModelOptions(batchnorm="after"))
    variables = model_cost(normed).params + 2 * (32 + 32 + 128)
    largest = max(math.prod(layer.output_shape) for layer in model_cost(normed).layers)  # conv1: 26 x 26 x 32
    assert largest == 26 * 26 * 32
    assert training_memory_floor(normed, 1, 4, 4) == 4 * variables + 4 * (28 * 28 + largest)


def test_model_command_prints_the_table_and_totals(capsys):
    assert main(["model", "resnet18"]) == 0
    text = capsys.readouterr().out
    assert "layer4_1_conv2" in text and "total parameters: 11,689,512" in text and "1,814,073,344 (1.814 G;" in text
    assert main(["model", "convnet3"]) == 0  # a small network's count in M, not 0.000 G
    assert "forward MACs per sample: 356,352 (0.356 M;" in capsys.readouterr().out


def test_the_total_says_batchnorms_moving_statistics_are_left_out_and_gives_keras_count(capsys):
    """`xfbench model keras:MobileNetV2` read 2,236,682 parameters where Keras' count_params() reads 2,270,794:
    the total follows torchvision, without BatchNorm's moving statistics, and said nothing of it."""
    assert main(["model", "resnet18"]) == 0
    # resnet18's BatchNorm channels: 64 + 4 x 64 + 4 x 128 + 128 + 5 x 256 + 5 x 512 = 4,800, a mean and a variance each
    assert (
        "total parameters: 11,689,512 (torchvision's count; with BatchNorm's 9,600 moving means and variances, "
        "Keras' count_params(): 11,699,112)" in capsys.readouterr().out
    )
    assert main(["model", "mlp"]) == 0  # no BatchNorm, nothing to say
    assert "total parameters: 300,010\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    "model, input_shape, classes",
    [
        ("mlp", (8, 8, 1), 10),
        ("cnn_small", (8, 8, 1), 10),
        ("resnet20", (32, 32, 3), 10),
        ("alexnet", (227, 227, 3), 1000),
    ],
)
def test_model_command_shows_a_zoo_model_with_its_own_tasks_classes(capsys, model, input_shape, classes):
    """The digits models and the CIFAR ResNet-20 with 10 outputs, as they train; the ImageNet networks with 1000."""
    assert main(["model", model, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_classes"] == classes
    assert data["params"] == count_parameters(build_spec(model, input_shape, classes, ModelOptions()))


def test_model_command_json_and_exported_spec(capsys, tmp_path):
    out = tmp_path / "spec.json"
    assert (
        main(["model", "resnet20", "--width-multiplier", "0.5", "--classes", "10", "--json", "--export-spec", str(out)])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    spec = build_spec("resnet20", (32, 32, 3), 10, ModelOptions(width_multiplier=0.5))
    assert data["params"] == count_parameters(spec) and data["forward_macs"] == model_cost(spec).forward_macs
    assert [row["name"] for row in data["layers"]] == [layer.name for layer in spec.layers]
    assert spec_from_dict(json.loads(out.read_text())) == spec


def test_model_command_takes_the_model_options_run_takes(capsys):
    """The network `xfbench run --hidden 300,100 --batchnorm before --dropout 0.2 --activation selu` trains."""
    flags = ["--hidden", "300,100", "--batchnorm", "before", "--dropout", "0.2", "--activation", "selu"]
    assert main(["model", "mlp", *flags, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    options = ModelOptions(hidden=(300, 100), batchnorm="before", dropout=0.2, activation="selu")
    spec = build_spec("mlp", (8, 8, 1), 10, options)
    assert [row["name"] for row in data["layers"]] == [layer.name for layer in spec.layers]
    assert data["params"] == count_parameters(spec) == 51_010


def test_model_command_shows_an_imported_model_and_a_spec_file(capsys, tmp_path):
    """Any --model form: a torchvision model converted in a torch process (cached in the results folder's _cache,
    as a run's), and a spec file at its own shape."""
    cache = ["--results-dir", str(tmp_path)]
    assert main(["model", "torchvision:resnet18", "--input-size", "64", "--classes", "10", "--json", *cache]) == 0
    imported = json.loads(capsys.readouterr().out)
    zoo = build_spec("resnet18", (64, 64, 3), 10)
    assert imported["params"] == count_parameters(zoo) and imported["forward_macs"] == model_cost(zoo).forward_macs
    assert list((tmp_path / "_cache" / "imports").glob("*.npz"))
    path = tmp_path / "convnet3.json"
    assert main(["model", "convnet3", "--classes", "10", "--export-spec", str(path)]) == 0
    capsys.readouterr()
    assert main(["model", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["params"] == count_parameters(build_spec("convnet3", (8, 8, 1), 10))
    assert shown["model"] == "convnet3.json"  # by its file name, as tables name it
    assert main(["model", str(path), "--input-size", "32"]) == 2
    assert "Expected no --input-size with a spec file" in capsys.readouterr().err
    # a spec file's fixes are its own: --dropout applies to zoo models, and a class count is the task's
    run = ["run", "--strategy", "scratch", "--model", str(path), "--dataset", "digits", "--results-dir", str(tmp_path)]
    assert main([*run, "--mc-dropout", "3"]) == 2
    assert "To fix, add a dropout layer to the model's own definition" in capsys.readouterr().err
    assert main([*run, "--classes", "0,1,2"]) == 2
    err = capsys.readouterr().err
    assert "To fix, pick a task with 10 classes (--classes, --binary-positive)" in err and "--input-size" not in err
    assert main(["run", "--strategy", "scratch", "--model", "python:my_nets", "--dataset", "digits"]) == 2
    assert "Expected python:MODULE:FUNCTION" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["model", "resnet9000"], "Expected a model as"),
        (["model", "cnn_small", "--export-spec", "cnn.txt"], "Expected --export-spec to name a .json file"),
        (["model", "python:nets:make"], "Expected --input-size and --input-channels for python:nets:make"),
        # a module that is not there is said first (before, the input size was asked for, then the module)
        (["model", "python:nosuchmod:make"], "Expected an importable module for model python:nosuchmod:make."),
        (["model", "torchvision:resnet18", "--width-multiplier", "0.5"], "they apply to zoo models"),
        (["model", "alexnet", "--input-size", "32"], "designed for 227x227"),
        (
            ["model", "keras:ResNet50", "--input-size", "8"],
            "ResNet50 can be built for. Received: (8, 8, 3), which Keras",
        ),
    ],
)
def test_model_command_bad_input_exits_2(capsys, monkeypatch, tmp_path, argv, message):
    (tmp_path / "nets.py").write_text("def make(input_shape, num_classes):\n    raise AssertionError('not built')\n")
    monkeypatch.chdir(tmp_path)  # python:nets:make names a module here, found (never imported) from the directory
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_every_row_of_a_trial_carries_its_models_cost(workers, digits):
    config = TrialConfig(strategy="scratch", model="convnet3", dataset="digits", backend="torch", seed=0, epochs=1)
    rows = workers["torch"](probes.trial_rows, config.to_dict(), "cost")
    spec = build_spec("convnet3", digits.input_shape, digits.num_classes)
    assert rows and {(r["params"], r["forward_macs"], r["step_macs"]) for r in rows} == {
        (count_parameters(spec), model_cost(spec).forward_macs, step_macs(spec))
    }


def test_summary_reports_achieved_training_gflops_per_backend():
    rows = [
        {
            "trial_id": f"t-{b}",
            "strategy": "scratch",
            "model": "m",
            "variant": "",
            "dataset": "d",
            "backend": b,
            "seed": 0,
            "status": "ok",
            "warmup": epoch == 1,
            "epoch": epoch,
            "epoch_time_s": 1.0,
            "samples_per_s": sps,
            "test_acc": 0.9,
            "params": 100,
            "forward_macs": 2_000_000,
            "attempt": 0,
        }
        for b, sps in (("torch", 1000.0), ("tensorflow", 500.0))
        for epoch in (1, 2)
    ]
    # rows recorded before step_macs: three forward passes of two FLOPs per MAC
    per_backend = summarize(pd.DataFrame(rows)).per_backend.set_index("backend")
    assert per_backend.loc["torch", "train_gflops"] == pytest.approx(6 * 2e6 * 1000 / 1e9)
    assert per_backend.loc["tensorflow", "train_gflops"] == pytest.approx(6 * 2e6 * 500 / 1e9)
    assert per_backend.loc["torch", "params"] == 100
    # and deep_features' samples/s a forward-only extraction: one pass
    extraction = summarize(pd.DataFrame([r | {"strategy": "deep_features"} for r in rows])).per_backend
    assert extraction.set_index("backend").loc["torch", "train_gflops"] == pytest.approx(2 * 2e6 * 1000 / 1e9)
    # with each row's step MACs: the median over the steady epochs of what each epoch's step cost (a frozen phase's
    # steps are cheaper than the unfrozen phase's after it), not the pooled samples/s times one cost
    phases = [
        r
        | {"trial_id": "t-torch-s0", "epoch": e, "phase": p, "warmup": e in (1, 3), "samples_per_s": s, "step_macs": m}
        for r in rows[:1]
        for e, p, s, m in ((1, "frozen", 900.0, 1e6), (2, "frozen", 1000.0, 1e6), (3, "unfrozen", 300.0, 5e6))
        + ((4, "unfrozen", 400.0, 5e6), (5, "unfrozen", 500.0, 5e6))
    ]
    summary = summarize(pd.DataFrame(phases))
    phased = summary.per_backend.set_index("backend")
    # the case's figure is its timed phase's (the one with the most steady epochs, unfrozen: epochs 4 and 5, 2 x 5e6 x
    # 400 and 2 x 5e6 x 500 FLOP/s); pooled with the frozen epoch 2 (2 x 1e6 x 1000) it was a median of both phases
    assert phased.loc["torch", "timed_phase"] == "unfrozen" and phased.loc["torch", "train_gflops"] == pytest.approx(
        4.5
    )
    per_phase = summary.phases.set_index("phase")["train_gflops"]
    assert per_phase["frozen"] == pytest.approx(2.0) and per_phase["unfrozen"] == pytest.approx(4.5)


@pytest.mark.parametrize(
    "change, message",
    [
        # each backend tested the name against a different one of its two values: a typo trained differently
        (("layers", 3, "running_variance", "Biased"), r"running_variance in \['unbiased', 'biased'\].*'Biased'"),
        (("layers", 3, "decay", 2.0), r"Expected 0 <= decay <= 1.*decay=2.0"),
        (("layers", 3, "epsilon", 0), r"epsilon > 0.*epsilon=0"),
        # read as they came: 10 classes from 10.7, fractional MACs from 8.5, five inputs from "conv1"'s letters
        (("num_classes", 10.7), r"num_classes a whole number >= 1.*num_classes=10.7"),
        (("num_classes", "ten"), r"num_classes='ten'"),
        (("input_shape", [8.5, 8, 1]), r"input_shape=\[8.5, 8, 1\]"),
        (("layers", 2, "inputs", "fc1"), r"inputs as a list of layer names.*inputs=.fc1. \(layer 2\)"),
        (("layers", 2, "name", 5), r"name=5"),
        (("layers", {"a": 1}), r"Expected layers as a list of objects"),
    ],
)
def test_a_spec_file_with_fields_of_the_wrong_kind_exits_2_naming_them(capsys, tmp_path, change, message):
    """Spec files are written by hand too: a BatchNorm's fields were never checked, and a non-number class count,
    a layer list that is an object or a name that is a number ended in a traceback."""
    path = tmp_path / "net.json"
    assert main(["model", "mlp", "--batchnorm", "after", "--classes", "10", "--export-spec", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["layers"][3]["type"] == "BatchNorm"
    *where, key, value = change
    target = data
    for step in where:
        target = target[step]
    target[key] = value
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["model", str(path)]) == 2
    assert re.search(message, capsys.readouterr().err.replace("\n", " ")), message


def test_model_command_shows_a_users_factory_without_num_classes_at_its_own_class_count(capsys, tmp_path, monkeypatch):
    """A factory without a num_classes parameter builds its own count: shown with ImageNet's 1000 asked for, it
    failed with advice to pick a task (--binary-positive, which `xfbench model` does not take)."""
    (tmp_path / "fixed_net.py").write_text(
        "from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(16, 5))\n"
    )
    monkeypatch.chdir(tmp_path)
    shape = ["--input-size", "4", "--input-channels", "1", "--results-dir", str(tmp_path)]
    assert main(["model", "python:fixed_net:make", *shape, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["params"] == 16 * 5 + 5 and shown["layers"][-1]["output_shape"] == [5]
    assert main(["model", "python:fixed_net:make", *shape, "--classes", "10"]) == 2  # asked for: still checked
    assert "Received: the factory built (4, 4, 1) and 5 classes" in capsys.readouterr().err


def test_model_command_refuses_a_layer_setting_the_network_has_no_layer_for_as_run_does(capsys):
    """`xfbench model cnn_small --bn-variance biased` showed cnn_small unchanged, exit 0, where run exits 2."""
    assert main(["model", "cnn_small", "--bn-variance", "biased"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Received: --bn-variance (bn_running_variance='biased'), but cnn_small has no BatchNorm layer (" in err
    assert "--batchnorm before|after adds them" in err
    assert main(["model", "mlp", "--hidden", "30", "--alpha-dropout"]) == 2
    assert "mlp has no dropout layer (--dropout RATE adds them to mlp)" in capsys.readouterr().err
    assert main(["model", "cnn_small", "--batchnorm", "after", "--bn-variance", "biased"]) == 0
