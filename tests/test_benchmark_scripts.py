"""The benchmark scripts' own checks (benchmarks/): what they refuse, the order they run things in, what they count
as a failure. Nothing here times anything or needs a GPU: the GPU script runs with stand-ins for nvidia-smi,
Python and xfbench."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU_CHECKS = ROOT / "benchmarks" / "gpu_checks.sh"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _gpu_checks(tmp_path: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """gpu_checks.sh with a stand-in xfbench that logs each call's --run-id (calls.txt) and its whole argument list
    (argv.txt, one argument a line, each call ending in a blank line) and exits $STUB_EXIT, and stand-in nvidia-smi
    and Python from tmp_path/bin where the test puts them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls, argv_log = tmp_path / "calls.txt", tmp_path / "argv.txt"
    stub = (
        "#!/bin/sh\n"
        + f'echo "$@" | sed "s/.*--run-id \\([^ ]*\\).*/\\1/" >>{calls}\n'
        + f"printf '%s\\n' \"$@\" '' >>{argv_log}\nexit ${{STUB_EXIT:-0}}\n"
    )
    xfbench = _executable(bin_dir / "xfbench-stub", stub)
    data = tmp_path / "fmnist"
    data.mkdir(exist_ok=True)
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "XFBENCH": str(xfbench), "HOME": str(tmp_path)}
    return subprocess.run(
        ["bash", str(GPU_CHECKS), str(tmp_path / "work"), str(data), str(tmp_path / "out.tar.gz"), *argv],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=120,
    )


def _calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "calls.txt"
    return calls.read_text().split() if calls.exists() else []


def test_the_gpu_checks_refuse_a_machine_whose_nvidia_smi_lists_no_gpu_before_running_any_step(tmp_path):
    """On a machine without a GPU every step started Ray, failed with NoNodeFits, and the script exited 0."""
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "nvidia-smi", "#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    done = _gpu_checks(tmp_path, {"BACKENDS": "torch", "STEPS": "resnet18-gpu1-fp32"})
    assert done.returncode == 2, done.stderr
    assert "Expected a GPU (GPU_ONE=1): nvidia-smi listing one. Received: No devices were found." in done.stderr
    assert "GPU_ONE=0 GPU_HALF=0" in done.stderr  # how to try it without one
    assert _calls(tmp_path) == [] and not (tmp_path / "work").exists()


def test_the_gpu_checks_refuse_a_gpu_that_the_chosen_framework_cannot_see(tmp_path):
    """nvidia-smi lists a GPU, but the venv's torch was built without CUDA: every trial would fail in its worker."""
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "nvidia-smi", "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-x)'\n")
    python = _executable(
        tmp_path / "bin" / "python-stub",
        "#!/bin/sh\necho 'AssertionError: torch.cuda.is_available() is False' >&2\nexit 1\n",
    )
    done = _gpu_checks(tmp_path, {"BACKENDS": "torch", "PYTHON": str(python), "STEPS": "resnet18-gpu1-fp32"})
    assert done.returncode == 2, done.stderr
    said = "Expected torch to see the GPU nvidia-smi lists (GPU_ONE=1). Received: AssertionError: torch.cuda"
    assert said in done.stderr and "install a CUDA build of torch, or leave torch out of BACKENDS" in done.stderr
    assert _calls(tmp_path) == []


def test_the_gpu_checks_exit_1_when_a_step_fails_or_the_deadline_skips_one_and_still_write_the_archive(tmp_path):
    """Every step's exit status was a line in steps.txt, and the script's own status the last tar's: 0."""
    python = _executable(tmp_path / "python-stub", "#!/bin/sh\nexit 0\n")
    env = {"GPU_ONE": "0", "GPU_HALF": "0", "PYTHON": str(python), "STEPS": "resnet18-gpu1-fp32 matrix-fp32"}
    failed = _gpu_checks(tmp_path, {**env, "STUB_EXIT": "2"})
    assert failed.returncode == 1, failed.stderr
    assert "2 of 2 steps, or the summary, did not end well: resnet18-gpu1-fp32 (exit 2) matrix-fp32 (exit 2)" in (
        failed.stderr
    )
    with tarfile.open(tmp_path / "out.tar.gz") as archive:
        assert {"./steps.txt", "./facts.txt", "./summary.txt"} <= set(archive.getnames())
    assert _gpu_checks(tmp_path, env).returncode == 0  # the same steps, ending 0
    skipped = _gpu_checks(tmp_path, env, "60")  # 60 s less the 45 kept for the end: each step needs 20 s at least
    assert skipped.returncode == 1 and "resnet18-gpu1-fp32 (skipped) matrix-fp32 (skipped)" in skipped.stderr
    # the steps end 45 s before SECONDS (a step that ignores SIGTERM is killed 15 s after its limit; then the summary
    # and the archive): with SECONDS at just under a lent machine's 600 s, its own limit cut the archive's rewrite
    # short, losing every earlier step (review 158)
    _gpu_checks(tmp_path, env, "100")
    limits = [int(line.split("(limit ")[1].split(" s")[0]) for line in (tmp_path / "work" / "steps.txt").open()]
    assert limits and max(limits) <= 100 - 45, limits
    assert not list(tmp_path.glob("out.tar.gz.*"))  # written beside the archive, then renamed over it


def test_the_gpu_checks_run_the_batch_512_modes_in_alternating_rounds_and_refuse_an_unknown_step_first(tmp_path):
    """Each precision mode ran once, one after the other; an unknown step name stopped the script only after the
    steps named before it had run."""
    python = _executable(tmp_path / "python-stub", "#!/bin/sh\nexit 0\n")
    env = {"GPU_ONE": "0", "GPU_HALF": "0", "PYTHON": str(python)}
    steps = "resnet18-gpu1-fp32 resnet18-b512-fp32 resnet18-b512-bf16"
    done = _gpu_checks(tmp_path, {**env, "STEPS": steps, "ROUNDS": "3"})
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path) == [
        "resnet18-gpu1-fp32",
        *("resnet18-b512-fp32-r1", "resnet18-b512-bf16-r1"),
        *("resnet18-b512-bf16-r2", "resnet18-b512-fp32-r2"),
        *("resnet18-b512-fp32-r3", "resnet18-b512-bf16-r3"),
    ]
    (tmp_path / "calls.txt").unlink()
    refused = _gpu_checks(tmp_path, {**env, "STEPS": "resnet18-gpu1-fp32 resnet18-b512-fp16"})
    assert refused.returncode == 2 and "Received: 'resnet18-b512-fp16'. To fix, name steps" in refused.stderr
    assert _calls(tmp_path) == []


def test_every_gpu_check_step_is_a_command_line_that_xfbench_parses_and_plans(tmp_path):
    """The stand-in xfbench took any arguments: a step's misspelt option would have been found on the lent GPU."""
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser

    python = _executable(tmp_path / "python-stub", "#!/bin/sh\nexit 0\n")
    done = _gpu_checks(tmp_path, {"GPU_ONE": "0", "GPU_HALF": "0", "PYTHON": str(python)})
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "argv.txt").read_text().split("\n\n")
    calls = [line.split("\n") for line in lines if line.strip()]
    assert len(calls) == len(_calls(tmp_path)) >= 10
    for argv in calls:
        plan = plan_from_args(build_parser().parse_args(argv))
        assert plan.trials, argv


def _trial_rows(trial: str, seed: int, pid: int, before: int, peak: float, start: str) -> list[dict]:
    from harness.results import COLUMNS

    rows = []
    for epoch, stamp in ((1, f"{start}:01.000"), (2, f"{start}:02.000")):
        row: dict = {column: None for column in COLUMNS}
        row |= {
            "run_id": "r", "trial_id": trial, "strategy": "scratch", "model": "resnet18", "dataset": "fashion_mnist",
            "backend": "torch", "seed": seed, "phase": "train", "epoch": epoch, "warmup": epoch == 1, "status": "ok",
            "epoch_time_s": 1.0, "samples_per_s": 1000.0 * epoch, "gpu_peak_mib": peak, "node": "n", "test_acc": 0.9,
            "worker_pid": pid, "worker_trials_before": before, "timestamp": stamp + "Z",
            "config_json": json.dumps({"model": "resnet18", "seed": seed}),
        }  # fmt: skip
        rows.append(row)
    return rows


@pytest.mark.parametrize("second_peak, verdict, status", [(1074.0, "released", 0), (1200.0, "GREW", 1)])
def test_the_gpu_summary_compares_a_warm_workers_repeated_trial_with_its_first(
    tmp_path, capsys, second_peak, verdict, status
):
    """Issue 12's GPU side had no check: a later trial of one configuration in the same worker holds what the earlier
    one left allocated in its gpu_peak_mib (torch resets the peak to what is allocated at the build)."""
    from harness.results import to_frame

    run = tmp_path / "runs" / "resnet18-gpu1-fp32"
    run.mkdir(parents=True)
    rows = _trial_rows("t0", 0, 7, 0, 1074.0, "2026-12-04T10:00") + _trial_rows(
        "t1", 1, 7, 1, second_peak, "2026-12-04T10:01"
    )
    to_frame(rows).to_parquet(run / "results.parquet")
    summary = _script("gpu_summary")
    assert summary.summarize(tmp_path) == status
    out = capsys.readouterr().out
    assert f"{verdict}: torch trial t1 (the worker's trial 1) {second_peak:,.0f} MiB against t0's 1,074 MiB" in out
    assert "| torch | default | 1 | 1 | 1.00 | 2,000 |" in out  # the steady epoch's samples/s, the warm-up's seconds


def test_the_gpu_summary_reads_nvidia_smis_samples_over_each_trials_span_and_the_rounds_median(tmp_path, capsys):
    """docs/gpu.md's process MiB and GPU busy columns were read by hand from nvidia-smi.csv; the batch-512 modes ran
    once each, their differences under the noise the doc names."""
    from datetime import UTC, datetime

    from harness.results import to_frame

    summary = _script("gpu_summary")
    for number, sps in ((1, 30000.0), (2, 10000.0), (3, 20000.0)):
        run = tmp_path / "runs" / f"resnet18-b512-fp32-r{number}"
        run.mkdir(parents=True)
        rows = _trial_rows("t0", 0, 7, 0, 1074.0, f"2026-12-04T10:0{number}")
        rows[1]["samples_per_s"] = sps
        to_frame(rows).to_parquet(run / "results.parquet")

    def local(minute: int, second: int) -> str:  # nvidia-smi's timestamps are the machine's local time
        utc = datetime(2026, 12, 4, 10, minute, second, tzinfo=UTC)
        return utc.astimezone().strftime("%Y/%m/%d %H:%M:%S.000")

    lines = ["timestamp, utilization.gpu [%], memory.used [MiB], memory.total [MiB]"]
    lines += [f"{local(1, s)}, {u} %, {m} MiB, 143771 MiB" for s, u, m in ((0, 1, 500), (1, 40, 1887), (2, 60, 1800))]
    lines += [f"{local(1, 30)}, 99 %, 9999 MiB, 143771 MiB"]  # after the trial: not its
    (tmp_path / "nvidia-smi.csv").write_text("\n".join(lines) + "\n")
    assert summary.summarize(tmp_path) == 0
    out = capsys.readouterr().out
    assert "| 1,074 | 1,887 | 1-60 % | 0.9000 | ok |" in out  # round 1's trial: 10:01:00 to 10:01:02
    assert "| resnet18-b512-fp32 | torch | 30,000, 10,000, 20,000 | 20,000 |" in out


def test_float16_drift_starts_the_backend_before_its_sum_starts_tensorflow(tmp_path, monkeypatch):
    """The float16 sum ran first and started TensorFlow's runtime on its default pools; the backend could then not
    set --threads, and every TensorFlow variant ran on all cores."""
    import harness.backend

    script = _script("float16_drift")
    said: list[str] = []

    class Backend:
        def build(self, *args, **kwargs):
            pass

        set_optimizer = set_data = train_epoch = build

        def export_weights(self):
            return {"w": np.zeros(1)}

    monkeypatch.setattr(harness.backend, "load_backend", lambda name, runtime: said.append("backend") or Backend())
    monkeypatch.setattr(script, "_sum_error", lambda backend, xla: said.append("sum") or 0.0)
    script._worker("tf-custom fp16", [1, 2], 1, tmp_path / "out.npz")
    assert said == ["backend", "backend", "sum"]


def test_float16_drift_prints_a_failed_workers_error_and_exits_1(monkeypatch, capsys):
    """check=True with the output captured: the worker's own error was lost behind CalledProcessError's traceback."""
    script = _script("float16_drift")
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="worker: out of memory")
    monkeypatch.setattr(script.subprocess, "run", lambda *args, **kwargs: failed)
    monkeypatch.setattr(sys, "argv", ["float16_drift.py"])
    with pytest.raises(SystemExit) as ended:
        script.main()
    assert ended.value.code == 1 and "worker: out of memory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, said",
    [
        ([], "the following arguments are required: RESULTS_DIR, BASE NEW"),
        (["RESULTS", "x"], "Expected BASE NEW pairs of run ids. Received: 1 run id(s) (x). To fix, give an even"),
        (["RESULTS", "a", "b"], "Expected run folders under RESULTS_DIR. Received: b, not folders in"),
    ],
)
def test_compare_rules_refuses_wrong_arguments_before_reading_a_run(tmp_path, argv, said):
    """--help was taken for RESULTS_DIR (exit 0, no output), no arguments ended in an IndexError, an odd count in
    zip's ValueError."""
    (tmp_path / "a").mkdir()
    argv = [str(tmp_path) if a == "RESULTS" else a for a in argv]
    script = ROOT / "benchmarks" / "compare_rules.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
    helped = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert helped.returncode == 0 and "RESULTS_DIR" in helped.stdout


def test_slowed_run_refuses_bad_run_arguments_as_xfbench_run_does(tmp_path):
    """It called cli's planning outside cli.main: a misspelt suite ended in InputError's traceback, exit 1."""
    script = ROOT / "benchmarks" / "slowed_run.py"
    results = tmp_path / "results"
    argv = ["--slow", "torch=0.01", "--", "--suite", "quik", "--results-dir", str(results)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("xfbench: error: Expected --suite") and done.stderr.count("\n") == 1
    assert not results.exists()


def test_the_speed_modes_benchmark_alternates_three_rounds_by_default_and_one_in_a_trials_own_process():
    """One round was the default: single trials of a machine whose noise moves them 10-20 % became doc tables."""
    script = _speed_modes()
    assert script.parse_args(["--backend", "torch"]).repeats == 3
    child = script.child_command(script.parse_args(["--backend", "torch", "--process-per-variant"]), "mlp", "default")
    assert script.parse_args(child[2:]).repeats == 1


def test_the_speed_modes_benchmark_refuses_a_trial_that_did_not_end_ok(monkeypatch):
    """A diverged trial's epochs were reported as the mode's speed."""
    script = _speed_modes()

    def diverged(config, run, sink, dataset=None):
        sink({"warmup": False, "samples_per_s": 1e9, "epoch_time_s": 0.0, "error": ""})
        return "diverged"

    monkeypatch.setattr(script, "run_trial", diverged)
    args = script.parse_args(["--backend", "torch", "--model", "mlp", "--variant", "default"])
    with pytest.raises(SystemExit, match="the default trial on mlp ended diverged"):
        script.measure(args, "mlp", "default", None)


def test_the_warmup_benchmark_refuses_a_trial_that_did_not_end_ok(monkeypatch):
    """run_trial's status was discarded: a diverged trial's epochs were printed as the model's warm-up."""
    script = _script("warmup")

    def diverged(config, run, sink, dataset=None):
        sink({"warmup": False, "epoch_time_s": 0.0, "train_loss": float("nan"), "error": ""})
        return "diverged"

    monkeypatch.setattr(script, "run_trial", diverged)
    config = script.TrialConfig(
        strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=2
    )
    with pytest.raises(SystemExit, match="the trial on cnn_small ended diverged"):
        script.trial_rows(config, None)


def _speed_modes() -> ModuleType:
    return _script("speed_modes")


def test_bn_gap_layers_removes_its_scratch_folder_however_it_ends(tmp_path, monkeypatch):
    """Its tempfile.mkdtemp folder (a mobilenet_v2 weight file and its conversion) was left behind on every run."""
    import tempfile

    script = _script("bn_gap_layers")

    def fails(*args):
        raise RuntimeError("stopped")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(script, "_run", fails)
    with pytest.raises(RuntimeError, match="stopped"):
        script.main([])
    assert list(tmp_path.iterdir()) == []


def test_import_parity_reports_each_gap_relative_to_the_logits_own_size():
    """The table divided each gap by max(1, max |logit|): MobileNetV2's logits of about 1e-9 showed a gap of 1e-15
    whatever the backend computed, zeros included. Relative to max |logit|, a zero output is a gap of 1."""
    parity = _script("import_parity")
    tiny = np.array([[1e-9, -2e-9]])
    assert parity.parity_cells(tiny, {"torch": np.zeros_like(tiny), "tensorflow": tiny}) == [
        "2.00e-09",
        "1.0e+00",
        "0.0e+00",
        "NO",
    ]
    assert parity.parity_cells(tiny * 1e9, {"torch": tiny * 1e9 + 1e-6, "tensorflow": tiny * 1e9})[-1] == "yes"


def test_import_parity_measures_the_models_the_importers_name_as_converting():
    """A refusal of a published architecture names these as the ones to use instead (harness.importers)."""
    import ast

    named: list[str] = []
    for backend in ("torch", "tensorflow"):
        tree = ast.parse((ROOT / "backends" / backend / "importer.py").read_text())
        value = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["CONVERTING_MODELS"]
        )
        named += ast.literal_eval(value)
    assert sorted(named) == sorted(_script("import_parity").DEFAULT)
