"""Real Ray Tune trials on tiny data: the whole path from trial configs to the results directory."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from golden_metrics import GOLDEN_ARGS, assert_matches_golden

from harness.config import TrialConfig
from harness.errors import InputError
from harness.models import ModelOptions
from harness.plan import RunPlan
from harness.results import COLUMNS, read_results
from harness.runner import execute
from harness.scheduler import SchedulerSettings

pytestmark = pytest.mark.ray


def test_the_main_job_runs_the_quick_suite_and_matches_the_golden_metrics(tmp_path):
    """`xfbench run` with no selection, as `make quick` runs it, in float64: every metric column equals the golden
    file, so a change that was not meant to alter a computed number did not. Float64, because in float32 the CPU's
    kernels move the numbers (tests/golden_metrics.py says how much); recorded in float64 on 2026-12-01. The float32
    files before it were recorded before the orchestration refactor (02a3d3c), which changed none of their numbers."""
    xfbench = str(Path(sys.executable).with_name("xfbench"))
    cmd = [xfbench, "run", *GOLDEN_ARGS, "--results-dir", str(tmp_path), "--run-id", "main-job"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "COLUMNS": "80"}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "torch vs tensorflow" in proc.stdout and "cnn_small" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80  # the tables fit an 80-column terminal
    run_dir = tmp_path / "main-job"
    frame = read_results(run_dir)
    assert list(frame.columns) == list(COLUMNS)
    assert_matches_golden(frame, "quick_suite")
    assert frame.groupby("trial_id")["warmup"].apply(lambda w: list(w)).tolist() == [[True] + [False] * 4] * 12
    assert frame["threads"].unique().tolist() == [1]
    assert frame["gpu_peak_mib"].isna().all() and set(frame["gpu"]) == {""}  # a CPU run holds no GPU memory
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and set(info["framework_versions"]) == {"torch", "tensorflow"}
    assert "torch / tensorflow" in (run_dir / "summary.md").read_text()
    # the report beside summary.md. Without matplotlib (the report extra) a warning only; with it, a report that
    # failed to draw is a warning to the user but a failure here
    report = run_dir / "report.html"
    if importlib.util.find_spec("matplotlib") is None:
        assert not report.is_file() and "no report.html" in proc.stderr
    else:
        assert report.is_file() and (run_dir / "report_plots" / "epoch-times.png").is_file(), proc.stderr
    config = json.loads(frame["config_json"].iloc[0])
    assert config["optimizer"]["momentum"] == 0.9 and config["runtime"]["jit_compile"] is False
    assert {json.loads(c)["runtime"]["precision"] for c in frame["config_json"]} == {"float64"}


def test_a_trial_that_raises_is_recorded_as_failed_and_the_others_finish(tmp_path, shared_ray, monkeypatch):
    """Also: a report.html that cannot be drawn (matplotlib missing here) leaves the results and says why in the
    outcome, which the pytest plugin repeats (a passing case's stderr, where the warning went, is never shown)."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed, in this driver process only
    good = TrialConfig(
        strategy="scratch",
        model="mlp",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=2,
        model_options=ModelOptions(hidden=(16,)),
        suite="it",
    )
    broken = replace(good, dataset="mnist", backend="tensorflow", data_dir=str(tmp_path / "no-such-data"))
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1)
    outcome = execute(RunPlan.of_trials([good, broken]), results_dir=tmp_path, run_id="with-failure", settings=settings)
    frame = outcome.frame
    failed = frame[frame["status"] == "failed"]
    assert failed["trial_id"].tolist() == [broken.trial_id]
    assert "mnist" in failed["error"].iloc[0] and "DataNotFoundError" in failed["error"].iloc[0]
    ok = frame[frame["trial_id"] == good.trial_id]
    assert ok["status"].tolist() == ["ok", "ok"] and ok["test_acc"].notna().sum() == 1
    assert not outcome.all_ok
    assert "1 failed" in outcome.summary_markdown
    assert outcome.report_problem is not None and "Expected matplotlib" in outcome.report_problem
    assert not (outcome.run_dir / "report.html").exists() and (outcome.run_dir / "summary.md").is_file()


def test_backbones_are_trained_once_in_a_pretrain_stage_and_shared_by_both_backends(tmp_path, shared_ray):
    from harness.config import TransferOptions
    from harness.data.tasks import TaskSpec

    target = TrialConfig(
        strategy="feature_extraction",
        model="cnn_small",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=1,
        suite="it",
        task=TaskSpec(classes=(0, 1, 2, 3, 4)),
        transfer=TransferOptions(source_task=TaskSpec(classes=(5, 6, 7, 8, 9)), source_epochs=1),
    )
    trials = [target, replace(target, backend="tensorflow")]
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1)
    outcome = execute(RunPlan.of_trials(trials), results_dir=tmp_path, run_id="shared", settings=settings)
    frame = outcome.frame
    pretrain = frame[frame["strategy"] == "pretrain"]
    assert (
        pretrain["trial_id"].nunique() == 1
        and set(pretrain["phase"]) == {"source"}
        and set(pretrain["backend"]) == {"torch"}
    )
    targets = frame[frame["strategy"] == "feature_extraction"]
    hashes = {json.loads(d)["backbone"] for d in targets["details_json"]}
    assert len(hashes) == 1 and set(targets["backend"]) == {"torch", "tensorflow"}
    assert (tmp_path / "_cache" / "backbones" / f"{hashes.pop()}.npz").is_file()
    assert set(frame["status"]) == {"ok"}
    # every target row records the source accuracy its backbone reached (the pretrain trial's, from the checkpoint)
    (source_accuracy,) = pretrain["test_acc"].dropna()
    assert 0.5 < source_accuracy <= 1 and (targets["backbone_test_acc"] == source_accuracy).all()
    assert pretrain["backbone_test_acc"].isna().all()
    recorded = json.loads((outcome.run_dir / "run.json").read_text())
    assert recorded["pretrain_trials"][0]["strategy"] == "pretrain"
    # called without preflight's provenance, execute reads the data itself: its trials are keyed all the same
    from harness.data.registry import data_fingerprint, load_dataset

    digits = data_fingerprint(load_dataset("digits", None, download=False))
    assert {t["data_key"] for t in recorded["trials"] + recorded["pretrain_trials"]} == {digits}
    assert sorted(p.name for p in (tmp_path / "_ray").iterdir()) == [
        "shared-pretrain-torch",
        "shared-trials-tensorflow",
        "shared-trials-torch",
    ]


def test_a_trial_asking_for_gpus_this_machine_lacks_exits_2_and_leaves_no_run(tmp_path, shared_ray, capsys):
    """Tune would wait forever, silently, for a node with the GPUs: the run stops before any trial instead."""
    from harness.cli import main

    args = ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--epochs", "1"]
    code = main([*args, "--gpus-per-trial", "1", "--results-dir", str(tmp_path), "--run-id", "gpus"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Expected this machine to offer 1 CPU(s) and 1 GPU(s) for each trial" in err and "Received: Ray finds" in err
    assert not (tmp_path / "gpus").exists()
    # with a default run id, whose directory is claimed before the run starts: removed again
    assert main([*args, "--gpus-per-trial", "1", "--results-dir", str(tmp_path)]) == 2
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("_")] == []


def test_a_resume_refused_for_want_of_gpus_leaves_the_run_as_it_was(tmp_path, shared_ray, capsys):
    """The check comes before the resume touches anything: run.json keeps its status, options and resumes."""
    from test_cli import _write_run_file

    from harness.cli import main
    from harness.plan import ExecutionOptions

    run_dir = tmp_path / "gpu-run"
    _write_run_file(run_dir, "run", "interrupted", ExecutionOptions(gpus_per_trial=64))
    before = (run_dir / "run.json").read_text()
    code = main(["run", "--resume", "gpu-run", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "1 CPU(s) and 64 GPU(s)" in err, err
    assert (run_dir / "run.json").read_text() == before and [p.name for p in run_dir.iterdir()] == ["run.json"]


def test_on_a_cluster_without_a_fitting_node_the_trials_wait_with_a_warning(monkeypatch, capsys, tmp_path):
    """An autoscaler may still add the node a trial wants, so a cluster run is warned, not refused; locally the same
    shortage is refused. Fractional GPUs fit a node with one."""
    import harness.scheduler as scheduler

    nodes = [{"node": "n1", "address": "10.0.0.1", "cpus": 4.0, "gpus": 0.0}]
    monkeypatch.setattr(scheduler, "cluster_nodes", lambda: nodes)
    cluster = SchedulerSettings(storage_dir=tmp_path, gpus_per_trial=1, address="10.0.0.1:6379")
    scheduler.check_a_node_fits(cluster)
    assert "no node of the cluster at 10.0.0.1:6379 offers 1 CPU(s) and 1 GPU(s)" in capsys.readouterr().err
    with pytest.raises(scheduler.NoNodeFits, match="Received: Ray finds 10.0.0.1: 4 CPUs, 0 GPUs. To fix, lower "):
        scheduler.check_a_node_fits(SchedulerSettings(storage_dir=tmp_path, gpus_per_trial=1))
    nodes.append({"node": "n2", "address": "10.0.0.2", "cpus": 2.0, "gpus": 1.0})
    scheduler.check_a_node_fits(SchedulerSettings(storage_dir=tmp_path, gpus_per_trial=0.5))
    assert capsys.readouterr().err == ""


def test_a_fault_of_the_driver_leaves_the_run_interrupted_saying_what_stopped_it(tmp_path, shared_ray):
    """Not left 'running' for ever: the run reads as interrupted (history, report and --resume say so) and run.json
    holds the exception."""
    from harness.user_files import read_run_json

    def broken_scheduler(*_args, **_kwargs) -> None:
        raise RuntimeError("the scheduler broke")

    trial = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=1)
    settings = SchedulerSettings(storage_dir=tmp_path / "_ray", cpus_per_trial=1)
    with pytest.raises(RuntimeError, match="the scheduler broke"):
        execute(
            RunPlan.of_trials([trial]), results_dir=tmp_path, run_id="r", settings=settings, schedule=broken_scheduler
        )
    info = read_run_json(tmp_path / "r")
    assert info["status"] == "interrupted" and info["error"] == "RuntimeError: the scheduler broke"


_INTERRUPTED_WHILE_RAY_STARTS = """
import os, sys
from pathlib import Path
import ray
from harness import scheduler

started = ray.init


def init_then_ctrl_c(*args, **kwargs):  # Ctrl-C arriving as ray.init returns: its processes are up, the session not
    started(*args, **kwargs)
    raise KeyboardInterrupt


ray.init = init_then_ctrl_c
try:
    with scheduler.ray_session(scheduler.SchedulerSettings(storage_dir=Path(sys.argv[1]))):
        pass
except KeyboardInterrupt:
    children = [
        p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split()[3] == str(os.getpid())
    ]
    print("initialized", ray.is_initialized(), "children", len(children))
"""


def _in_a_process_group_of_its_own(script: str, tmp_path: Path, timeout: int) -> tuple[int, str, str]:
    """``script`` run by a new Python in its own process group, which is killed after it (any Ray process left
    behind goes with it): its exit status, stdout and stderr."""
    import signal

    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out, err
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ctrl_c_while_ray_starts_ends_the_ray_it_started(tmp_path):
    """Ctrl-C during ray.init left the Ray processes it had started running (the session's shutdown came only
    after ray.init returned), and reached the user as a traceback; the CLI now says so in one line, exit 130."""
    _, out, err = _in_a_process_group_of_its_own(_INTERRUPTED_WHILE_RAY_STARTS, tmp_path, 120)
    assert out.strip() == "initialized False children 0", (out, err[-2000:])


_SIGNALS_AS_RAY_STARTS_AND_STOPS = """
import os, signal, sys
from pathlib import Path
import ray
from harness import scheduler

settings = scheduler.SchedulerSettings(storage_dir=Path(sys.argv[1]))
started, stopped = ray.init, ray.shutdown
os.environ.pop("RAY_AUTH_MODE", None)  # as a shell without Ray's token mode has it


def mine(signum, frame):
    print("the program's own SIGTERM handler")


signal.signal(signal.SIGTERM, mine)


def sigterm_then_init(*args, **kwargs):  # `kill` as Ray starts: before ray.init puts in its handler, a bare exit
    signal.raise_signal(signal.SIGTERM)
    started(*args, **kwargs)


ray.init = sigterm_then_init
try:
    with scheduler.ray_session(settings):
        print("session entered")
except KeyboardInterrupt:
    print("start: KeyboardInterrupt, initialized", ray.is_initialized())
ray.init = started


def ctrl_c_then_shutdown():  # Ctrl-C as a finished run's Ray shuts down
    signal.raise_signal(signal.SIGINT)
    stopped()


ray.shutdown = ctrl_c_then_shutdown
with scheduler.ray_session(settings):
    print("RAY_AUTH_MODE in the session", os.environ.get("RAY_AUTH_MODE"))  # what Ray's local start sets
print("stop: ended whole, initialized", ray.is_initialized())
print("RAY_AUTH_MODE after it", os.environ.get("RAY_AUTH_MODE"))
from ray._raylet import AuthenticationMode, get_authentication_mode  # what a later join reads, not the variable

print("Ray's own token mode after it", get_authentication_mode() == AuthenticationMode.TOKEN)
print("SIGTERM handler", "mine" if signal.getsignal(signal.SIGTERM) is mine else signal.getsignal(signal.SIGTERM))
"""


def test_signals_as_ray_starts_or_shuts_down_end_it_whole_and_leave_the_programs_sigterm_handler(tmp_path):
    """SIGTERM as Ray started ended the driver with exit 15 and no word once ray.init had put in its handler (a
    bare exit), the Ray agents started by then left running; Ctrl-C while a finished run's Ray shut down ended it
    as interrupted (exit 130, no table); and Ray's SIGTERM handler stayed after ray.shutdown, so a later `kill`
    exited silently. A signal as Ray starts now ends it and then the run, as Ctrl-C does; one as it shuts down is
    said and the run goes on; the program's own SIGTERM handler is back after the session. And so is its
    environment: Ray's local start left RAY_AUTH_MODE=token, and a later --address join from the process used the
    local run's token (review 154); and Ray's own token mode, kept inside the process, which a join reads (review
    158: the variable alone put back left it on)."""
    code, out, err = _in_a_process_group_of_its_own(_SIGNALS_AS_RAY_STARTS_AND_STOPS, tmp_path, 180)
    assert code == 0, (out, err[-2000:])
    assert out.splitlines() == [
        "start: KeyboardInterrupt, initialized False",
        "RAY_AUTH_MODE in the session token",
        "stop: ended whole, initialized False",
        "RAY_AUTH_MODE after it None",
        "Ray's own token mode after it False",
        "SIGTERM handler mine",
    ], (out, err[-2000:])
    assert "xfbench: Ray is starting; stopping once it has started; Ctrl-C again stops now" in err
    assert "xfbench: Ray is shutting down; Ctrl-C again stops now" in err


def test_ctrl_c_outside_a_runs_trials_is_one_line_and_exit_130(monkeypatch, capsys):
    from harness import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    assert cli.main(["list"]) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "xfbench: interrupted (Ctrl-C or SIGTERM)\n"


def _fine_tune_on(data_dir: Path, results: Path, run_id: str) -> pd.DataFrame:
    from harness.cli import main

    args = ["run", "--strategy", "fine_tune", "--model", "mlp", "--hidden", "16", "--dataset", "mnist", "--backend",
            "torch", "--epochs", "1", "--source-epochs", "1", "--seeds", "1", "--cpus-per-trial", "1", "--no-download",
            "--no-report", "--data-dir", str(data_dir), "--results-dir", str(results), "--run-id", run_id]  # fmt: skip
    assert main(args) == 0
    return read_results(results / run_id)


def test_a_backbone_is_shared_by_runs_on_the_same_data_not_by_other_files_under_the_datasets_name(
    tmp_path, shared_ray, capsys
):
    """A backbone's recipe named its dataset only: a fine-tune on a user's MNIST-format files, then one on other
    files under the name mnist, reused the first one's backbone (trained on other images) and said nothing."""
    from test_data import write_manifest, write_mnist_like

    from harness.data.formats import write_idx
    from harness.data.registry import check_content, data_fingerprint, load_dataset

    mine, other = tmp_path / "mine", tmp_path / "other"
    write_mnist_like(mine / "mnist", n_train=5100, n_test=100)
    labels = write_mnist_like(other / "mnist", n_train=5100, n_test=100)["train-labels-idx1-ubyte"]
    write_idx(other / "mnist" / "train-labels-idx1-ubyte.gz", (labels + 1) % 10)  # other labels, the same name
    write_manifest(other / "mnist")
    results = tmp_path / "results"
    runs = {run_id: _fine_tune_on(data, results, run_id) for run_id, data in (("a", mine), ("b", other), ("a2", mine))}
    trained = {
        run_id: sorted(set(frame.loc[frame["strategy"] == "pretrain", "trial_id"])) for run_id, frame in runs.items()
    }
    assert len(trained["a"]) == 1 and len(trained["b"]) == 1 and trained["a2"] == []  # a2 reuses a's backbone
    backbones = {
        run_id: {json.loads(d)["backbone"] for d in f.loc[f["strategy"] == "fine_tune", "details_json"]}
        for run_id, f in runs.items()
    }
    assert backbones["a"] == backbones["a2"] != backbones["b"]
    recorded = json.loads((results / "b" / "run.json").read_text())
    content = data_fingerprint(load_dataset("mnist", other, download=False))
    assert recorded["datasets"]["mnist"]["content"] == content
    assert {t["data_key"] for t in recorded["trials"] + recorded["pretrain_trials"]} == {content}
    assert {t["model_key"] for t in recorded["trials"]} == {""}  # a zoo model: xfbench's code defines it
    # a worker that reads other data under the name (a cluster node's own files) refuses the trial
    with pytest.raises(InputError, match=r"Expected the mnist data the run began with \(content "):
        check_content(load_dataset("mnist", mine, download=False), content)
