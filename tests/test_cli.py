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
    "unknown strategy": (["run", "--strategy", "magic", "--model", "mlp", "--dataset", "digits"], "Expected --strategy to be one of ['scratch']"),
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
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(cases)], capture_output=True, text=True, cwd=tmp_path_factory.mktemp("cwd"), timeout=300)
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
