"""Command-line behaviour: bad input exits 2 with a one-line message before Ray (or a framework) is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BAD_INPUTS = {
    "unknown backend": (["run", "--suite", "smoke", "--backend", "mxnet"], "Expected --backend to be one of ['tensorflow', 'torch']. Received: 'mxnet'"),
    "unknown model": (["run", "--strategy", "scratch", "--model", "resnet0", "--dataset", "digits"], "Expected --model to be one of"),
    "unknown dataset": (["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "imagenet"], "Received: 'imagenet'"),
    "unknown strategy": (["run", "--strategy", "magic", "--model", "mlp", "--dataset", "digits"], "Expected --strategy to be one of ['deep_features', 'feature_extraction', 'fine_tune', 'freeze_early', 'pretrain', 'scratch', 'transfer']"),
    "unknown suite": (["run", "--suite", "nightly"], "Expected --suite to be one of"),
    "unknown optimizer": (["run", "--suite", "smoke", "--optimizer", "lion"], "Expected --optimizer to be one of"),
    "epochs < 1": (["run", "--suite", "smoke", "--epochs", "0"], "expected a number >= 1, received 0"),
    "seeds < 1": (["run", "--suite", "smoke", "--seeds", "-2"], "expected a number >= 1, received -2"),
    "epochs not a number": (["run", "--suite", "smoke", "--epochs", "ten"], "expected a whole number, received 'ten'"),
    "negative lr": (["run", "--suite", "smoke", "--lr", "-0.1"], "expected a number > 0"),
    "unreadable data dir": (["run", "--suite", "smoke", "--data-dir", "/nonexistent/xfbench"], "Expected --data-dir to be a readable directory"),
    "suite and case": (["run", "--suite", "smoke", "--model", "mlp"], "Expected either --suite or --strategy/--model/--dataset"),
    "incomplete case": (["run", "--strategy", "scratch", "--model", "mlp"], "Expected --strategy, --model and --dataset together"),
    "too many cpus": (["run", "--suite", "smoke", "--cpus-per-trial", "512"], "Expected --cpus-per-trial <="),
    "unknown schedule": (["run", "--suite", "smoke", "--schedule", "cosine"], "Expected --schedule to be one of"),
    "bad piecewise": (["run", "--suite", "smoke", "--piecewise", "10,20:0.1"], "Expected len(values) == len(boundaries) + 1"),
    "bad activation": (["run", "--suite", "smoke", "--activation", "swish"], "Expected an activation name"),
    "bad sklearn head": (["run", "--strategy", "deep_features", "--model", "cnn_small", "--dataset", "digits", "--sklearn-head", "knn"], "Expected a scikit-learn head"),
    "bad binary task": (["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--classes", "1,2,3", "--binary-positive", "2"], "Expected binary_positive to be one of exactly two classes"),
    "empty task": (["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--classes", "20,21"], "Expected training samples in task"),
    "bad plateau factor": (["run", "--suite", "smoke", "--schedule", "plateau", "--plateau-factor", "2"], "Expected 0 < factor < 1"),
    "tune without a space": (["tune", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits"], "Expected a search space"),
    "space bounds reversed": (["tune", "--suite", "tune_smoke", "--space", "lr=uniform:1,0.1"], "Expected LO < HI for optimizer.lr"),
    "unknown search option": (["tune", "--suite", "tune_smoke", "--space", "learning_rate=uniform:0.1,1"], "Expected a searchable option"),
    "invalid choice": (["tune", "--suite", "tune_smoke", "--space", "optimizer=choice:adam,lion"], "Expected every value of optimizer.name"),
    "unknown search algorithm": (["tune", "--suite", "tune_smoke", "--search", "bayes"], "Expected --search in ['random', 'grid', 'optuna']"),
    "unknown metric": (["tune", "--suite", "tune_smoke", "--metric", "test_acc"], "Expected --metric in ['val_acc', 'val_loss']"),
    "seeds in a tune": (["tune", "--suite", "tune_smoke", "--seeds", "3"], "Expected --final-seeds K with tune"),
    "negative max failures": (["run", "--suite", "smoke", "--max-failures", "-1"], "expected a number >= 0, received -1"),
    "resume an unknown run": (["run", "--resume", "no-such-run"], "which has no run.json there"),
    "resume with a suite": (["run", "--resume", "finished-run", "--suite", "smoke"], "Expected --resume with execution options only"),
    "resume a finished run": (["run", "--resume", "finished-run"], "Expected an interrupted run. Received: 'finished-run' finished"),
    "resume a tune as a run": (["run", "--resume", "a-tune"], "is a tune run; use `xfbench tune --resume`"),
}

_SCRIPT = """
import contextlib, io, json, sys
from harness.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out[name] = [code, err.getvalue()]
out["_imported"] = sorted(m for m in ("ray", "torch", "tensorflow") if m in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bad_input_results(tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    cases = {name: argv for name, (argv, _) in BAD_INPUTS.items()}
    cases["missing data"] = ["run", "--strategy", "scratch", "--model", "convnet3", "--dataset", "mnist", "--data-dir", str(empty), "--no-download"]
    cwd = tmp_path_factory.mktemp("cwd")
    for run_id, info in (("finished-run", {"kind": "run", "status": "finished", "finished": "2026-11-23T00:00:00Z"}),
                         ("a-tune", {"kind": "tune", "status": "interrupted"})):
        (cwd / "results" / run_id).mkdir(parents=True)
        (cwd / "results" / run_id / "run.json").write_text(json.dumps(info))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(cases)], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_expected_and_received(bad_input_results, case):
    code, stderr = bad_input_results[case]
    assert code == 2
    assert BAD_INPUTS[case][1] in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("xfbench")]) == 1


def test_missing_data_exits_2_naming_where_it_looked(bad_input_results):
    code, stderr = bad_input_results["missing data"]
    assert code == 2
    assert "train-images-idx3-ubyte" in stderr and "/usr/share/datasets" in stderr and "--data-dir" in stderr


def test_no_bad_input_reached_ray_or_a_framework(bad_input_results):
    assert bad_input_results["_imported"] == []


def test_list_names_every_choice():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    for name in ("quick", "smoke", "scratch", "convnet3", "cnn_small", "mlp", "digits", "fashion_mnist", "cifar10", "torch",
                 "tensorflow", "nesterov", "adamw", "he_normal", "torch_default", "keras_default"):
        assert name in proc.stdout


def test_technique_options_reach_every_trial_config():
    from harness.cli import build_parser, trials_from_args

    args = build_parser().parse_args([
        "run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--seeds", "2", "--optimizer", "adam",
        "--lr", "0.002", "--schedule", "onecycle", "--clip-norm", "1.5", "--l1", "1e-5", "--l2", "1e-4", "--max-norm", "3",
        "--activation", "selu", "--dropout", "0.1", "--alpha-dropout", "--batchnorm", "after", "--mc-dropout", "7",
    ])
    trials, _ = trials_from_args(args)
    assert len(trials) == 4  # two backends x two seeds
    t = trials[0]
    assert (t.optimizer.name, t.optimizer.lr, t.optimizer.clip_norm, t.optimizer.eps) == ("adam", 0.002, 1.5, 1e-8)
    assert t.schedule.name == "onecycle" and (t.regularization.l1, t.regularization.l2, t.regularization.max_norm) == (1e-5, 1e-4, 3)
    assert (t.model_options.activation, t.model_options.dropout, t.model_options.dropout_kind, t.model_options.batchnorm) == ("selu", 0.1, "alpha", "after")
    assert t.mc_dropout_passes == 7
    piecewise, _ = trials_from_args(build_parser().parse_args(
        ["run", "--suite", "smoke", "--piecewise", "10,20:0.1,0.01,0.001"]))
    assert piecewise[0].schedule.boundaries == (10, 20) and piecewise[0].schedule.values == (0.1, 0.01, 0.001)


def test_transfer_options_reach_the_trial_config():
    from harness.cli import build_parser, trials_from_args

    trials, _ = trials_from_args(build_parser().parse_args([
        "run", "--strategy", "fine_tune", "--model", "cnn_small", "--dataset", "digits", "--classes", "0,1,2,3,4",
        "--source-classes", "5,6,7,8,9", "--source-epochs", "3", "--source-backend", "tensorflow", "--backbone-lr-multiplier", "0.2",
    ]))
    t = trials[0]
    assert t.task.classes == (0, 1, 2, 3, 4) and t.transfer.source_task.classes == (5, 6, 7, 8, 9)
    assert (t.transfer.source_epochs, t.transfer.source_backend, t.transfer.backbone_lr_multiplier) == (3, "tensorflow", 0.2)
