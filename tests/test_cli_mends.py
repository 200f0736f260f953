"""Bad input that reached a traceback, a run, or a wrong file: each refused with exit 2 before Ray starts, or
said as it is. Runs never start here: ``harness.runner.execute`` and ``resume`` stand in for Ray and raise."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_cli import MLP_RUN, _write_run_file
from test_report import _write_run

from harness.cli import main
from harness.plan import ExecutionOptions, RunFile, RunRecord, write_run_file
from harness.planner import Selection, plan_run
from harness.suites import SUITES

CNN_TUNE = ["tune", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--backend", "torch"]


class Reached(Exception):
    """A run that passed every check: it would start Ray here."""


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise Reached

    monkeypatch.setattr("harness.runner.execute", refuse)
    monkeypatch.setattr("harness.runner.resume", refuse)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of ``argv``, which must exit 2 (argparse's own exit included)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    return " ".join(err.split())


# ------------------------------------------------------------------------------------ 1. the columns readers need


@pytest.mark.parametrize("dropped", [["status"], ["status", "epoch_time_s"], ["epoch"], ["test_acc"]])
def test_a_table_without_a_needed_column_is_bad_input(tmp_path, capsys, dropped):
    _write_run(tmp_path, "base", "2026-01-01T00:00:00+00:00")
    new = _write_run(tmp_path, "new", "2026-01-02T00:00:00+00:00")
    frame = pd.read_parquet(new / "results.parquet")
    frame.drop(columns=dropped).to_parquet(new / "results.parquet")
    said = f"Received: a table without the column{'s' if len(dropped) > 1 else ''} {', '.join(dropped)}"
    for argv in (
        ["compare", "base", "new", "--fail-on-regression"],  # passed the gate, comparing nothing
        ["report", "new", "-o", str(tmp_path / "r.html")],  # a traceback (no status)
    ):
        assert said in _refused([*argv, "--results-dir", str(tmp_path)], capsys)
    # history lists it unreadable, with why, and shows the other run (it stopped for the whole folder)
    assert main(["history", "--results-dir", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert said in out and "unreadable" in out and "base" in out


# ----------------------------------------------------------------------- 2. --reference on resume: a trained backend


def test_resume_refuses_a_reference_the_run_never_trained(tmp_path, capsys, no_ray):
    plan = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits", backends=("torch",)), {})
    record = RunRecord("r1", "2026-11-23T00:00:00Z", ("xfbench",), "", "", "", "", status="interrupted")
    (tmp_path / "r1").mkdir()
    write_run_file(tmp_path / "r1", RunFile(plan, ExecutionOptions(), record))
    argv = ["run", "--resume", "r1", "--results-dir", str(tmp_path), "--cpus-per-trial", "1"]
    said = _refused([*argv, "--reference", "tensorflow"], capsys)
    assert "Expected --reference to be one of the backends this run trains, ['torch']. Received: 'tensorflow'" in said
    with pytest.raises(Reached):  # the backend it trained is taken
        main([*argv, "--reference", "torch"])


# ------------------------------------------------------------------------ 3. a batch larger than the training set


def test_a_batch_larger_than_the_training_samples_is_refused(tmp_path, capsys, no_ray):
    argv = [*MLP_RUN, "--backend", "torch", "--cpus-per-trial", "1", "--results-dir", str(tmp_path)]
    said = _refused([*argv, "--train-limit", "50", "--batch-size", "64"], capsys)
    assert "Expected --batch-size at most 50, the training samples of the target task (all) of digits." in said
    assert "Received: 64 for scratch-mlp-digits, so each epoch would be one step of all 50 samples" in said
    with pytest.raises(Reached):
        main([*argv, "--train-limit", "50", "--batch-size", "50"])
    tune = [*CNN_TUNE, "--cpus-per-trial", "1", "--results-dir", str(tmp_path), "--train-limit", "100"]
    said = _refused([*tune, "--space", "batch_size=choice:16,128", "--search", "grid"], capsys)
    assert "Received: batch_size=128" in said and "Expected --batch-size at most 100" in said
    # deep_features fits its head to all features at once, but without a source task its backbone trains on the
    # target's samples in batches of --batch-size
    deep = ["run", "--strategy", "deep_features", "--model", "cnn_small", "--dataset", "digits", *argv[7:]]
    said = _refused([*deep, "--train-limit", "50", "--batch-size", "64"], capsys)
    assert "Expected --batch-size at most 50, the training samples of the target task (all) of digits." in said
    with pytest.raises(Reached):  # a backbone trained on a source task of its own: its batches fit
        main([*deep, "--train-limit", "50", "--batch-size", "64", "--source-classes", "5,6,7,8,9"])
    said = _refused([*deep, "--source-classes", "5,6", "--classes", "0,1", "--batch-size", "512"], capsys)
    assert "train on more samples (more --source-classes)" in said


# -------------------------------------------------------------------------- 4. a plateau that can never reduce


def test_a_plateau_schedule_that_cannot_reduce_is_refused(tmp_path, capsys, no_ray):
    argv = [*MLP_RUN, "--backend", "torch", "--cpus-per-trial", "1", "--results-dir", str(tmp_path)]
    plateau = ["--schedule", "plateau", "--plateau-patience", "0"]
    said = _refused([*argv, *plateau, "--epochs", "2"], capsys)
    assert "Expected at least 3 epochs for reduce-on-plateau with patience 0 (--plateau-patience)" in said
    assert "Received: 2 epoch(s), so the rate could never be reduced. To fix, train --epochs 3 or more" in said
    assert "Expected at least 5 epochs" in _refused([*argv, "--schedule", "plateau", "--epochs", "4"], capsys)
    with pytest.raises(Reached):
        main([*argv, *plateau, "--epochs", "3"])
    tune = [*CNN_TUNE, "--cpus-per-trial", "1", "--results-dir", str(tmp_path), "--schedule", "plateau"]
    # a point that cannot reduce is still one a search may rank: refused only when no point can
    with pytest.raises(Reached):
        main(
            [
                *tune,
                "--epochs",
                "4",
                "--space",
                "schedule.patience=choice:0,2",
                "--search",
                "grid",
                "--num-samples",
                "1",
            ]
        )
    said = _refused([*tune, "--epochs", "4", "--space", "schedule.patience=int:2,4"], capsys)
    assert "Expected some point the search may sample for" in said and "Received: none can." in said
    assert "Expected at least 5 epochs for reduce-on-plateau with patience 2" in said


def test_the_smoke_plateau_case_trains_enough_epochs_to_reduce_once():
    """Three epochs (plateau_min_epochs) could reduce, but on digits they never did: tests/test_techniques.py checks
    that the five reduce."""
    (case,) = [c for c in SUITES["techniques_smoke"].cases if c.variant == "sched_plateau"]
    assert (case.schedule.patience, case.epochs) == (0, 5)
    assert {c.epochs for c in SUITES["techniques_smoke"].cases if c.variant != "sched_plateau"} == {2}


def test_every_ci_technique_case_has_a_measured_floor_well_above_chance():
    """techniques_smoke had no bar: its cases passed at chance accuracy (a review's lr 1e6 case: 0.108, both
    backends alike), so CI could not see a change that wrecked training in both."""
    cases = SUITES["techniques_smoke"].cases
    assert all(c.min_test_acc is not None and c.min_test_acc >= 0.4 for c in cases), [
        (c.variant, c.min_test_acc) for c in cases
    ]
    assert all("10 pp below the lowest measured" in c.bar_source for c in cases)


# ---------------------------------------------------------------------------- 5. baseline save of a damaged run


def test_baseline_save_refuses_a_damaged_run_json(tmp_path, capsys):
    run = _write_run(tmp_path, "r1", "2026-01-01T00:00:00+00:00")
    (run / "run.json").write_text('{"status": "fin')
    said = _refused(["baseline", "save", "b1", "--run", "r1", "--results-dir", str(tmp_path)], capsys)
    assert f"Expected {run / 'run.json'} to hold a JSON object as xfbench writes it" in said
    assert not (tmp_path / "baselines").exists()
    (run / "run.json").unlink()  # a run without one is taken, as before
    assert main(["baseline", "save", "b1", "--run", "r1", "--results-dir", str(tmp_path)]) == 0


# ---------------------------------------------------------------------------------------------- 6. empty paths


@pytest.mark.parametrize(
    "argv",
    [
        [*MLP_RUN, "--results-dir", ""],
        [*MLP_RUN, "--data-dir", ""],
        ["compare", "a", "b", "--markdown", ""],
        ["report", ""],
        ["report", "r", "-o", ""],
        ["compare", "", "b"],
        ["export", "", "--mlflow", "sqlite:///x.db"],
        ["baseline", "save", "b", "--run", ""],
        ["history", "--results-dir", ""],
        ["model", "mlp", "--export-spec", ""],
        [*MLP_RUN, "--strategy", "fine_tune", "--weights", ""],
    ],
)
def test_an_empty_path_is_refused(argv, capsys, monkeypatch, tmp_path, no_ray):
    monkeypatch.chdir(tmp_path)
    said = _refused(argv, capsys)
    assert "a path. Received: '', which names none" in said
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 7. outputs onto a run's own files


def test_outputs_never_overwrite_a_run_or_an_input(tmp_path, capsys):
    _write_run(tmp_path, "base", "2026-01-01T00:00:00+00:00")
    new = _write_run(tmp_path, "new", "2026-01-02T00:00:00+00:00")
    before = {p: p.read_bytes() for p in new.iterdir()}
    (new / "parts").mkdir()
    cases = {
        "compare": ["compare", "base", "new", "--results-dir", str(tmp_path), "--markdown"],
        "model": ["model", "mlp", "--export-spec"],
    }
    for argv in cases.values():
        for target in (new / "run.json", new / "results.parquet", new / "parts" / "x.json"):
            said = _refused([*argv, str(target)], capsys)
            assert "outside the files xfbench keeps for a run" in said and "writing it would damage that run" in said
    assert {p: p.read_bytes() for p in new.iterdir() if p.is_file()} == before
    spec = tmp_path / "spec.json"
    assert main(["model", "mlp", "--export-spec", str(spec)]) == 0
    text = spec.read_text()
    said = _refused(["model", str(spec), "--export-spec", str(spec)], capsys)
    assert "which this command also reads: writing it would replace its own input" in said
    assert spec.read_text() == text
    assert main(["compare", "base", "new", "--results-dir", str(tmp_path), "--markdown", str(new / "cmp.md")]) == 0


# ------------------------------------------------------------------------------------ 8. the flag and the fix


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [*MLP_RUN, "--optimizer", "adam", "--beta1", "1.5"],
            "Expected 0 <= beta1 < 1 (--beta1, Adam's decay of its first moment). Received: beta1=1.5. To fix, "
            "give a decay in [0, 1), such as 0.9.",
        ),
        (
            [*MLP_RUN, "--piecewise", "100:0.1"],
            "(--piecewise B1,B2:V1,V2,V3: a rate before the first boundary step, then one from each). Received: 1 "
            "values, 1 boundaries. To fix, give one value more than boundaries, e.g. --piecewise "
            "100,200:0.1,0.01,0.001.",
        ),
        (
            ["run", "--suite", "nonexistent", "--strategy", "scratch"],
            "Received both: --suite nonexistent (and no suite is named 'nonexistent': one of [",
        ),
        (
            ["run", "--suite", "smoke", "--strategy", "scratch"],
            "To fix, give one or the other: --suite alone runs its cases",
        ),
        (
            [*MLP_RUN, "--address", "foo:99999"],
            "Received: 'foo:99999', with port '99999', not a number from 1 to 65535. To fix, pass the address",
        ),
        ([*MLP_RUN, "--address", "10.0.0.5"], "Received: '10.0.0.5', with no port. To fix, pass the address"),
        (
            [*CNN_TUNE, "--space", "lr=loguniform:1e-1,1e-3"],
            "Expected LO < HI for optimizer.lr. Received: 0.1, 0.001. To fix, swap them: "
            "optimizer.lr=loguniform:0.001,0.1.",
        ),
        (
            [*MLP_RUN, "--classes", "5,6", "--binary-positive", "1.0"],
            "Expected --binary-positive: a class label (a whole number >= 0, one of the two --classes, such "
            "as 6 with --classes 5,6). Received: '1.0'. To fix, give the label of the class that becomes 1",
        ),
        # 9. what was received, as it was
        (
            [*MLP_RUN, "--tf32", "on", "--gpus-per-trial", "0"],
            "every trial of the run on the CPU (--gpus-per-trial 0, or left out)",
        ),
    ],
)
def test_messages_name_the_flag_and_the_fix(argv, expected, tmp_path, capsys, no_ray):
    assert expected in _refused([*argv, "--results-dir", str(tmp_path)], capsys)


def test_weights_given_a_folder_say_it_is_one(tmp_path, capsys, no_ray):
    argv = ["run", "--strategy", "fine_tune", "--model", "cnn_small", "--dataset", "digits", "--weights", str(tmp_path)]
    said = _refused([*argv, "--results-dir", str(tmp_path / "r")], capsys)
    assert f"Received: {tmp_path}, a folder. To fix, name the file in it" in said


# ----------------------------------------------------------------- 10. results folders: none left empty, none nested


def test_a_run_refused_for_its_gpus_leaves_no_folder(tmp_path, capsys, monkeypatch):
    from harness.scheduler import NoNodeFits

    def no_node(*args: object, **kwargs: object) -> None:
        raise NoNodeFits("Expected a node that offers 1 GPU per trial. Received: none.")

    monkeypatch.setattr("harness.runner.execute", no_node)
    results = tmp_path / "new" / "results"
    argv = [*MLP_RUN, "--backend", "torch", "--cpus-per-trial", "1", "--results-dir", str(results)]
    assert "Expected a node that offers 1 GPU" in _refused(argv, capsys)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()  # a folder that was there stays
    assert "Expected a node" in _refused([*argv[:-1], str(tmp_path / "kept")], capsys)
    assert list(tmp_path.iterdir()) == [tmp_path / "kept"]


def test_a_results_dir_inside_a_run_is_refused(tmp_path, capsys, no_ray):
    _write_run_file(tmp_path / "r1", "run", "finished")
    (tmp_path / "r1" / "parts").mkdir()  # a run's rows beside its run.json
    for inside in (tmp_path / "r1", tmp_path / "r1" / "more"):
        said = _refused([*MLP_RUN, "--backend", "torch", "--cpus-per-trial", "1", "--results-dir", str(inside)], capsys)
        assert f"Expected --results-dir outside any run's folder. Received: {inside}" in said
        assert f"To fix, pick the folder that holds the runs, such as {tmp_path}." in said
    assert not (tmp_path / "r1" / "more").exists()
    assert "finished" in json.dumps(json.loads((tmp_path / "r1" / "run.json").read_text()))
    # another tool's run.json (a project's own, no rows beside it) makes no run of the folders under it
    project = tmp_path / "project"
    project.mkdir()
    (project / "run.json").write_text("{}")
    for results in (project / "results", project):
        with pytest.raises(Reached):
            main([*MLP_RUN, "--backend", "torch", "--cpus-per-trial", "1", "--results-dir", str(results)])
    capsys.readouterr()


def test_torch_compile_on_cpus_without_a_cpp_compiler_is_refused_before_ray(tmp_path, capsys, monkeypatch, no_ray):
    """Inductor builds torch.compile's CPU kernels with $CXX, else g++: without one, the trial failed in its worker
    (InvalidCxxCompiler) after Ray had started, exit 1. A cluster's nodes are not this machine: not checked there."""
    import dataclasses

    from harness.backend import check_programs

    argv = [*MLP_RUN, "--backend", "torch", "--torch-compile", "--results-dir", str(tmp_path), "--epochs", "1"]
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    said = _refused(argv, capsys)
    assert "Expected the program $CXX names, else g++, on this machine for --torch-compile on cpu" in said, said
    assert (
        "Received: no '/nonexistent/g++' on PATH. To fix, install one (Debian: apt install g++), set $CXX to one"
        in said
    )
    from harness.preflight import local_environ

    # on a cluster its nodes' compilers count, which the driver cannot see
    assert local_environ(ExecutionOptions(address="10.0.0.1:6379")) is None and local_environ(ExecutionOptions())
    trial = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits", backends=("torch",)), {}).trials[0]
    compiled = dataclasses.replace(trial, runtime=dataclasses.replace(trial.runtime, torch_compile=True))
    compiler = tmp_path / "bin" / "g++"
    compiler.parent.mkdir()
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    check_programs([compiled], {"PATH": str(compiler.parent)})  # $CXX unset: g++ on PATH
    with pytest.raises(Exception, match="Received: no 'g\\+\\+' on PATH"):
        check_programs([compiled], {"PATH": str(tmp_path)})
    check_programs([trial], {"PATH": str(tmp_path)})  # no compile: no compiler
    # on a GPU, Triton compiles its CUDA launcher with $CC, else gcc, else clang: a C compiler, not g++
    on_gpu = dataclasses.replace(compiled, runtime=dataclasses.replace(compiled.runtime, device="gpu"))
    with pytest.raises(Exception, match="names, else gcc or clang, on this machine for --torch-compile on gpu"):
        check_programs([on_gpu], {"PATH": str(compiler.parent)})
    (compiler.parent / "clang").write_text("#!/bin/sh\n")
    (compiler.parent / "clang").chmod(0o755)
    check_programs([on_gpu], {"PATH": str(compiler.parent)})  # clang alone will do


def test_onecycles_momenta_for_an_optimizer_without_momentum_are_refused(capsys, tmp_path, no_ray):
    """Adagrad and Adadelta have no momentum for 1cycle to cycle: its momenta were recorded, never applied."""
    argv = [*CNN_TUNE, "--optimizer", "adagrad", "--schedule", "onecycle", "--search", "grid", "--epochs", "2"]
    said = _refused([*argv, "--space", "schedule.max_momentum=choice:0.9,0.99", "--results-dir", str(tmp_path)], capsys)
    assert (
        "Received: max_momentum=0.9 with adagrad, which has none, so they would be recorded but never applied" in said
    )
    from harness.config import OptimizerConfig, check_momentum_to_cycle
    from harness.schedules import ScheduleConfig

    check_momentum_to_cycle(OptimizerConfig("adagrad"), ScheduleConfig("onecycle"))  # the defaults: nothing given
    check_momentum_to_cycle(OptimizerConfig("momentum"), ScheduleConfig("onecycle", min_momentum=0.5))


def test_an_address_on_the_loopback_alone_is_refused_where_ray_would_dial_the_nodes_own(tmp_path, capsys, no_ray):
    """Ray joins --address 127.0.0.1:PORT at this node's routable address instead: a head answering on the loopback
    alone (an SSH tunnel, a port published on 127.0.0.1) passed the preflight, then Ray retried for minutes."""
    import socket

    from harness.reachable import dialled_host

    dialled = dialled_host("127.0.0.1")
    assert dialled_host("10.1.2.3") == "10.1.2.3" and dialled_host("head.example") == "head.example"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        argv = [*MLP_RUN, "--backend", "torch", "--results-dir", str(tmp_path), "--address", f"127.0.0.1:{port}"]
        said = _refused(argv, capsys)
    if dialled == "127.0.0.1":  # a machine without a routable address: Ray dials the loopback too
        assert "Received: a server that is not Ray's" in said, said
        return
    assert f"Expected a Ray cluster answering at this node's address {dialled}:{port}: Ray dials it" in said, said
    assert "Received: a server on the loopback alone" in said


def test_a_model_name_refused_by_its_conversion_leaves_no_results_folder(tmp_path, capsys):
    """`xfbench model torchvision:nosuch` made ./results/_cache/imports for its conversion worker and left it, empty,
    when the name was refused; a refused run leaves nothing."""
    results = tmp_path / "results"
    assert main(["model", "torchvision:resnet1", "--results-dir", str(results)]) == 2
    assert "Expected a torchvision classification model name" in capsys.readouterr().err
    assert not results.exists()
    (results / "r1").mkdir(parents=True)  # a results folder in use: its cache folder is not left behind either
    assert main(["model", "torchvision:resnet1", "--results-dir", str(results)]) == 2
    assert [p.name for p in results.iterdir()] == ["r1"]
    # nor is a run's: a refused model, or a weight file that is not one, left _cache/imports and _cache/pretrained
    (tmp_path / "weights.pth").write_text("not a checkpoint")
    for refused in (["--model", "torchvision:resnet1"], ["--model", "mlp", "--weights", str(tmp_path / "weights.pth")]):
        run = ["run", "--strategy", "fine_tune", "--dataset", "digits", *refused, "--results-dir", str(results)]
        assert main(run) == 2, capsys.readouterr().err
        assert [p.name for p in results.iterdir()] == ["r1"]


def test_the_clean_up_after_a_refusal_removes_empty_folders_only_and_never_raises(tmp_path):
    """It removed the whole tree once it found no file in it: a file another run in the same results folder wrote
    meanwhile made the removal raise in place of the refusal it was cleaning up after."""
    from harness.user_files import remove_if_left_empty

    created = tmp_path / "_cache"
    (created / "imports").mkdir(parents=True)
    (created / "pretrained" / "work").mkdir(parents=True)
    (created / "pretrained" / "other-run.npz").write_bytes(b"")  # another run's file
    remove_if_left_empty(created)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "_cache",
        "_cache/pretrained",
        "_cache/pretrained/other-run.npz",
    ]
    (created / "pretrained" / "other-run.npz").unlink()
    remove_if_left_empty(created)
    assert not created.exists()
    remove_if_left_empty(created)  # gone already: nothing to do


def test_a_run_folder_given_to_resume_as_a_path_is_told_the_id_and_results_dir_to_give(capsys):
    """report, compare and export take a run's folder; --resume results/r1 was told to "pick a name such as
    'baseline-2026-12'", the advice for a new --run-id."""
    assert main(["run", "--resume", "results/r1"]) == 2
    err = capsys.readouterr().err
    assert "To fix, give its id with the folder holding it: `--resume r1 --results-dir results`." in err, err
    assert "baseline-2026-12" not in err


def test_an_existing_run_id_is_refused_with_how_to_finish_that_run(tmp_path, capsys):
    """Retyping an interrupted run's command (its --run-id included) was told only "Pick another name": the way to
    finish that run, --resume with its id, was left unsaid."""
    results = tmp_path / "my results"  # a space: the command pastes as one argument
    _write_run_file(results / "cut", "tune", "interrupted")
    _write_run_file(results / "done", "run", "finished")
    (results / "empty").mkdir()
    told = _refused([*MLP_RUN, "--results-dir", str(results), "--run-id", "cut"], capsys)
    assert "Received: 'cut', which already exists in" in told, told
    # the run's own kind (a tune resumes as a tune, whatever command was retyped), its folder quoted
    assert f"to finish that run, `xfbench tune --resume cut --results-dir '{results.resolve()}'`" in told, told
    for ended in ("done", "empty"):  # nothing to finish
        told = _refused([*MLP_RUN, "--results-dir", str(results), "--run-id", ended], capsys)
        assert (
            "To fix, pick another name (or leave --run-id out for a time-stamped one)." in told
            and "--resume" not in told
        )
