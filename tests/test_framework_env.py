"""Environment variables that change what a framework runs: declared per backend (backends/<name>/capabilities.py
FRAMEWORK_ENV, read without importing the framework), recorded with the rows (framework_env), compared between runs,
and refused before a local run starts where they contradict a recorded option (TORCHDYNAMO_DISABLE=1 under
--torch-compile ran eager torch recorded as compiled; TF_XLA_FLAGS' auto-jit ran XLA recorded as jit_compile false)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_cli import MLP_RUN
from test_cli_mends import Reached, no_ray  # noqa: F401 (no_ray: a fixture, a run stopped where Ray would start)

from harness.baselines import Environment, environment_warnings
from harness.cli import main
from harness.provenance import framework_env, framework_variables

# every variable a backend declares, so that none of the user's own leaks into a test's run
DECLARED = [name for backend in ("torch", "tensorflow") for name in framework_variables(backend)]


@pytest.fixture(autouse=True)
def no_framework_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DECLARED:
        monkeypatch.delenv(name, raising=False)


def _outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """ "reached" for a run that passed preflight, else its one-line error (it must exit 2)."""
    try:
        code = main(argv)
    except Reached:
        return "reached"
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    return " ".join(err.split())


def test_each_backend_declares_its_variables_readable_without_importing_its_framework():
    probe = (
        "import sys; from harness.provenance import framework_variables; from harness.backend import declarations; "
        "print(framework_variables('torch'), framework_variables('tensorflow'), "
        "len(declarations('torch').framework_env_conflicts), len(declarations('tensorflow').framework_env_conflicts)); "
        "assert not {'torch', 'tensorflow'} & set(sys.modules), sorted({'torch', 'tensorflow'} & set(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[0] == (
        "('TORCHDYNAMO_DISABLE', 'TORCH_COMPILE_DISABLE') ('TF_ENABLE_ONEDNN_OPTS', 'TF_XLA_FLAGS', 'XLA_FLAGS') 2 2"
    )


def test_the_recorded_text_names_the_set_variables_of_the_trials_backend_only_sorted():
    environ = {"TF_XLA_FLAGS": "--xla_x", "TF_ENABLE_ONEDNN_OPTS": "0", "TORCHDYNAMO_DISABLE": "", "PATH": "/bin"}
    assert framework_env("tensorflow", environ) == "TF_ENABLE_ONEDNN_OPTS=0; TF_XLA_FLAGS=--xla_x"
    assert framework_env("torch", environ) == ""  # set but empty changes nothing; TensorFlow's are not torch's


@pytest.mark.parametrize("variable", ["TORCHDYNAMO_DISABLE", "TORCH_COMPILE_DISABLE"])
@pytest.mark.usefixtures("no_ray")
def test_torch_compile_disabled_by_the_environment_is_refused_before_ray(variable, monkeypatch, capsys):
    argv = [*MLP_RUN, "--backend", "torch", "--epochs", "1", "--cpus-per-trial", "1"]
    monkeypatch.setenv(variable, "1")
    said = _outcome([*argv, "--torch-compile"], capsys)
    assert "Expected an environment that leaves torch's trials running as their options say (torch_compile true" in said
    assert (
        f"Received: {variable}='1', which makes torch.compile return the model uncompiled: the trial would run eager "
        f"while its rows say torch_compile true. To fix, unset it, or drop --torch-compile." in said
    )
    assert _outcome(argv, capsys) == "reached"  # eager torch, as recorded
    monkeypatch.setenv(variable, "0")  # torch disables only at "1"
    assert _outcome([*argv, "--torch-compile"], capsys) == "reached"


@pytest.mark.usefixtures("no_ray")
def test_xla_auto_clustering_from_the_environment_is_refused_with_or_without_jit_compile(monkeypatch, capsys):
    argv = [*MLP_RUN, "--backend", "tensorflow", "--epochs", "1", "--cpus-per-trial", "1"]
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_cpu_global_jit --tf_xla_auto_jit=2")
    said = _outcome(argv, capsys)
    assert "(jit_compile false on " in said and (
        "Received: TF_XLA_FLAGS='--tf_xla_cpu_global_jit --tf_xla_auto_jit=2', which has TensorFlow auto-cluster the "
        "tf.function train step into XLA: it would run XLA while its rows say jit_compile false. To fix, drop "
        "--tf_xla_auto_jit from TF_XLA_FLAGS (or set it to 0), and give --jit-compile for XLA." in said
    ), said
    said = _outcome([*argv, "--jit-compile"], capsys)
    assert "(jit_compile true on " in said and "XLA should run where --jit-compile puts it" in said, said
    assert "To fix, drop --tf_xla_auto_jit from TF_XLA_FLAGS (or set it to 0): --jit-compile alone gives XLA." in said
    for off in ("--tf_xla_auto_jit=0", "--tf_xla_auto_jit=-1 --tf_xla_cpu_global_jit"):
        monkeypatch.setenv("TF_XLA_FLAGS", off)
        assert _outcome(argv, capsys) == "reached", off
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # other kernels: recorded, not refused (no option says oneDNN)
    assert _outcome(argv, capsys) == "reached"


def test_a_comparison_warns_of_different_framework_variables_unless_a_side_predates_the_column():
    def env(framework_env: str | None) -> Environment:
        return Environment("cpu", "", "1", {"tensorflow": "2.20"}, framework_env)

    assert environment_warnings(env(""), env("TF_ENABLE_ONEDNN_OPTS=0")) == [
        "different framework environment variables: base none set, new TF_ENABLE_ONEDNN_OPTS=0; they change what "
        "the frameworks run, their kernels or compilation (results column framework_env)"
    ]
    assert environment_warnings(env("A=1"), env("A=1")) == []
    assert environment_warnings(env(None), env("A=1")) == []  # rows from before the column: not known, not warned


def test_each_row_records_its_backends_set_variables(monkeypatch):
    """A worker's rows carry the variables it ran under (the driver copies them onto the row of a worker that died)."""
    from harness.config import TrialConfig
    from harness.provenance import MachineInfo
    from harness.scheduler import WORKER_COLUMNS
    from harness.trial import RunInfo, base_row

    for name in DECLARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    rows = {
        backend: base_row(
            TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend=backend, seed=0, epochs=1),
            RunInfo("r", "c"),
            MachineInfo.current(),
        )
        for backend in ("torch", "tensorflow")
    }
    assert rows["tensorflow"]["framework_env"] == "TF_ENABLE_ONEDNN_OPTS=0" and rows["torch"]["framework_env"] == ""
    assert "framework_env" in WORKER_COLUMNS
