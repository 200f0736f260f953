"""The typed run plan, its run.json round trip, the planner and the one override mechanism."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re

import pandas as pd
import pytest

from harness.config import FaultInjection, OptimizerConfig, RuntimeOptions, TrialConfig
from harness.data.tasks import TaskSpec
from harness.errors import InputError
from harness.overrides import apply_overrides, field_hint
from harness.plan import (
    ExecutionOptions,
    RunFile,
    RunFileError,
    RunPlan,
    RunRecord,
    read_run_file,
    write_run_file,
)
from harness.planner import (
    MAX_TRIALS,
    SearchRequest,
    Selection,
    check_suite_size,
    check_trial_count,
    plan_run,
    plan_tune,
    selected_trials,
)
from harness.schedules import ScheduleConfig
from harness.search import SearchSpace, apply_point, parse_space
from harness.suites import Suite, SuiteCase, suite
from harness.tuning import TunePlan
from harness.variant_overrides import check_variant_overrides

BASE = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=2)


def test_paths_reach_nested_configs_and_unset_optional_ones_start_from_defaults():
    trial = apply_overrides(
        BASE, {"optimizer.lr": 0.5, "task.classes": [0, 1], "transfer.source_task.classes": (5, 6), "epochs": 3.0}
    )
    assert trial.optimizer.lr == 0.5 and trial.epochs == 3 and isinstance(trial.epochs, int)
    assert trial.task == TaskSpec(classes=(0, 1)) and trial.transfer.source_task == TaskSpec(classes=(5, 6))


def test_a_changed_optimizer_starts_from_its_defaults_keeping_rate_and_clipping():
    clipped = TrialConfig(**{**BASE.__dict__, "optimizer": OptimizerConfig("momentum", lr=0.2, weight_decay=1e-3,
                                                                           clip_norm=1.0, clip_value=0.5)})  # fmt: skip
    swapped = apply_overrides(clipped, {"optimizer.name": "adamw"})
    o = swapped.optimizer
    assert (o.name, o.lr, o.clip_norm, o.clip_value) == ("adamw", 0.2, 1.0, 0.5)
    assert (o.weight_decay, o.momentum, o.decoupled) == (0.01, 0.0, True)  # adamw's own defaults
    # Other optimizer values in the same set apply after the swap; the search applies the same rule.
    assert apply_overrides(clipped, {"optimizer.name": "adam", "optimizer.beta1": 0.8}).optimizer.beta1 == 0.8
    assert apply_point(clipped, {"optimizer": "adamw"}) == swapped
    # The same optimizer keeps every setting.
    assert apply_overrides(clipped, {"optimizer.name": "momentum"}).optimizer.weight_decay == 1e-3


def test_a_changed_schedule_starts_from_its_defaults_and_settings_it_would_ignore_are_refused():
    plateau = dataclasses.replace(BASE, schedule=ScheduleConfig("plateau", factor=0.3, patience=4))
    assert apply_overrides(plateau, {"schedule.name": "constant"}).schedule == ScheduleConfig()
    # even a setting both read: power's s and exponential's s are scales of different curves
    power = dataclasses.replace(BASE, schedule=ScheduleConfig("power", steps=50.0, power=2.0))
    assert apply_overrides(power, {"schedule.name": "exponential"}).schedule == ScheduleConfig("exponential")
    assert apply_point(power, {"schedule": "exponential", "schedule.steps": 30}).schedule.steps == 30
    piecewise = apply_overrides(
        plateau, {"schedule.name": "piecewise", "schedule.boundaries": (3,), "schedule.values": (0.1, 0.01)}
    )
    assert piecewise.schedule == ScheduleConfig("piecewise", boundaries=(3,), values=(0.1, 0.01))
    assert apply_overrides(plateau, {"schedule.patience": 5}).schedule.factor == 0.3  # the same schedule keeps all
    with pytest.raises(InputError, match="the constant schedule reads .none.. Received: --plateau-factor 0.3,"):
        ScheduleConfig("constant", factor=0.3)
    with pytest.raises(InputError, match="Received: --piecewise 1:0.1,0.0123456789, which"):  # all the digits given
        ScheduleConfig("onecycle", boundaries=(1,), values=(0.1, 0.0123456789))
    with pytest.raises(InputError, match="Received: --plateau-factor 0.1234567, which"):  # not 0.123457
        ScheduleConfig("power", factor=0.1234567)
    refused = [
        {"name": "constnt"},
        {"steps": 0.0},
        {"name": "piecewise"},
        {"name": "piecewise", "boundaries": (3,), "values": (0.1,)},
        {"name": "piecewise", "boundaries": (3,), "values": (0.1, -1.0)},
        {"name": "piecewise", "boundaries": (5, 3), "values": (0.1, 0.01, 0.001)},
        {"name": "plateau", "factor": 2.0},
        {"name": "plateau", "patience": -1},
        {"name": "plateau", "threshold": 1.0},
        {"name": "onecycle", "max_momentum": 1.5},
        {"name": "power", "power": 0.0},
    ]
    for settings in refused:  # each in the standard form, with its fix
        with pytest.raises(InputError, match=r"^Expected .+\. Received: .+\. To fix, .+\.$"):
            ScheduleConfig(**settings)
    with pytest.raises(InputError, match="increasing step indices"):
        ScheduleConfig("piecewise", boundaries=(5, 3), values=(0.1, 0.01, 0.001))
    # 1cycle's momenta stand in for the optimizer's momentum or beta1, held to [0, 1) there: a searched 1.5 was
    # accepted, and an RMSprop momentum cycling up from 0 failed in torch alone; a negative power raised the rate
    for momenta in ({"max_momentum": 1.5}, {"min_momentum": -0.1}, {"max_momentum": 0.0, "min_momentum": 0.5}):
        with pytest.raises(InputError, match=r"Expected 0 <= min_momentum <= max_momentum < 1 for 1cycle"):
            apply_overrides(BASE, {"schedule.name": "onecycle", **{f"schedule.{k}": v for k, v in momenta.items()}})
    ScheduleConfig("onecycle", max_momentum=0.0, min_momentum=0.0)
    with pytest.raises(InputError, match=r"Expected a power > 0 for the power schedule"):
        ScheduleConfig("power", power=-1.0)


def test_unknown_paths_and_bad_values_say_what_was_expected():
    with pytest.raises(InputError, match="Expected a field of optimizer. Received: 'optimizer.speed'"):
        apply_overrides(BASE, {"optimizer.speed": 1})
    with pytest.raises(InputError, match="Expected a finite learning rate > 0"):
        apply_overrides(BASE, {"optimizer.lr": -1.0})
    with pytest.raises(InputError, match="is a value"):
        field_hint("epochs.count")
    # a nested config is set through its fields: a plain value for it would reach the trial and fail there
    with pytest.raises(
        InputError, match=r"Expected transfer.source_task to be set through its fields: it holds a config \(TaskSpec\)"
    ):
        apply_overrides(BASE, {"transfer.source_task": "1"})
    assert apply_overrides(BASE, {"transfer.source_task": None}).transfer.source_task is None


def test_the_planner_gives_the_cli_and_the_plugin_the_same_resolved_trials():
    plan = plan_run(Selection(suite="smoke", backends=("torch",)), {"runtime.threads": 2, "optimizer.lr": 0.05})
    assert plan.kind == "run" and plan.label == "smoke" and len(plan.trials) == len(suite("smoke").cases)
    assert {(t.runtime.threads, t.optimizer.lr) for t in plan.trials} == {(2, 0.05)}
    assert plan_run(Selection(), {}).label == "quick"  # nothing selected: the main job


def test_an_unreadable_run_json_is_refused_with_its_problem_as_a_field(tmp_path):
    """The MLflow export cut this refusal's text on "Received: " to reword it; it reads ``problem`` instead."""
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(RunFileError) as refused:
        read_run_file(tmp_path)
    assert refused.value.problem == "a JSON list" and refused.value.path == tmp_path / "run.json"
    assert str(refused.value).endswith("Received: a JSON list. To fix, start a new run."), refused.value
    again = pickle.loads(pickle.dumps(refused.value))
    assert str(again) == str(refused.value) and again.problem == "a JSON list"
    with pytest.raises(RunFileError, match="Received: .*, which has none. To fix, check --results-dir") as none:
        read_run_file(tmp_path / "elsewhere")
    assert none.value.problem == f"{tmp_path / 'elsewhere'}, which has none"


def _break_top(data):
    data["reference"] = "jax"


def _break_base_lr(data):
    data["tune"]["bases"][1]["optimizer"]["lr"] = -1


def _break_base_field(data):
    data["tune"]["bases"][0]["bogus"] = 1


def _break_kind(data):
    data["kind"] = "nope"


@pytest.mark.parametrize(
    ("breaks", "received"),
    [
        (_break_top, "whose key reference holds 'jax', a value this version of xfbench refuses (ValueError)."),
        (_break_base_lr, "whose tune.bases[1] key optimizer.lr holds -1, a value this version of xfbench refuses"),
        (_break_base_field, "whose tune.bases[0] key bogus cannot be read (TypeError: "),
        (_break_kind, "whose top level holds a value this version of xfbench refuses (ValueError)."),
    ],
)
def test_a_run_json_holding_a_refused_value_names_where_and_what_without_quoting_the_inner_refusal(
    tmp_path, breaks, received
):
    """Said only "holds a value this version of xfbench refuses (ValueError)": which of a run's trials, which key,
    which value was left to the exception's cause, which the command line does not print."""
    plan = plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest(num_samples=2, final_seeds=2))
    record = RunRecord("r", "t0", ("xfbench", "tune"), "abc", "h", "c", "3.11", status="finished")
    write_run_file(tmp_path, RunFile(plan, ExecutionOptions(), record))
    data = json.loads((tmp_path / "run.json").read_text())
    breaks(data)
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(RunFileError) as refused:
        read_run_file(tmp_path)
    said = str(refused.value)
    assert f"Received: {tmp_path / 'run.json'}, {received}" in said, said
    assert said.count("Expected ") == 1 and said.count("Received: ") == 1 and said.endswith("To fix, start a new run.")


def test_run_json_holds_the_plan_the_options_and_the_record_and_reads_back_equal(tmp_path):
    plan = plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest(num_samples=2, final_seeds=2))
    record = RunRecord(run_id="r", started="t0", command=("xfbench", "tune"), git_commit="abc", driver_host="h",
                       driver_cpu="c", python_version="3.11", status="interrupted", reference="tensorflow")  # fmt: skip
    run_file = RunFile(plan, ExecutionOptions(cpus_per_trial=1, max_failures=2), record)
    write_run_file(tmp_path, run_file)
    assert read_run_file(tmp_path) == run_file
    assert json.loads((tmp_path / "run.json").read_text())["reference"] == "tensorflow"  # what `xfbench report` reads
    older = {k: v for k, v in run_file.to_dict().items() if k != "reference"}  # before the reference was recorded
    assert RunFile.from_dict(older).record.reference == "torch"
    assert plan.search is not None and plan.search.num_samples == 2 and plan.planned_trials == plan.search.bases


def test_run_json_is_flushed_before_it_replaces_the_last_one_and_a_stopped_write_keeps_the_last(tmp_path, monkeypatch):
    """run.json is what a resume reads first: written whole (harness.whole_files), its content on disk before the
    rename, and a write stopped before the rename leaves the previous file and nothing beside it."""
    import harness.whole_files as whole_files

    record = RunRecord(run_id="r", started="t0", command=("xfbench", "run"), git_commit="abc", driver_host="h",
                       driver_cpu="c", python_version="3.11", status="running")  # fmt: skip
    first = RunFile(RunPlan.of_trials([BASE]), ExecutionOptions(), record)
    write_run_file(tmp_path, first)
    flushed: list[int] = []
    monkeypatch.setattr(whole_files.os, "fsync", flushed.append)

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(whole_files.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_run_file(tmp_path, dataclasses.replace(first, record=dataclasses.replace(record, status="finished")))
    monkeypatch.undo()
    assert (
        len(flushed) == 1 and read_run_file(tmp_path) == first and [p.name for p in tmp_path.iterdir()] == ["run.json"]
    )


def test_run_json_records_when_the_final_stage_began_and_the_driver_and_older_files_read_without_them(tmp_path):
    """A resume reads both (runner.search_ended, runner.driver_alive); a run.json written before they were recorded
    reads as None for each, which resume takes as before (the final stage's rows; no driver known)."""
    from harness.plan import DriverProcess

    plan = plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest(num_samples=2, final_seeds=2))
    record = RunRecord(run_id="r", started="t0", command=("xfbench", "tune"), git_commit="abc", driver_host="h",
                       driver_cpu="c", python_version="3.11", final_began="t1",
                       driver_process=DriverProcess("h", 4242, "123"))  # fmt: skip
    run_file = RunFile(plan, ExecutionOptions(), record)
    write_run_file(tmp_path, run_file)
    assert read_run_file(tmp_path) == run_file
    assert json.loads((tmp_path / "run.json").read_text())["driver_process"] == {
        "host": "h",
        "pid": 4242,
        "start": "123",
    }
    older = {k: v for k, v in run_file.to_dict().items() if k not in ("final_began", "driver_process")}
    assert RunFile.from_dict(older).record == dataclasses.replace(record, final_began=None, driver_process=None)


def test_a_fault_to_inject_is_typed_checked_and_reads_back_from_a_recorded_config(tmp_path):
    marker = str(tmp_path / "marker")
    for fault in (FaultInjection("kill"), FaultInjection("raise", 2), FaultInjection("raise-once", 1, marker)):
        trial = dataclasses.replace(BASE, runtime=RuntimeOptions(inject_fault=fault))
        assert TrialConfig.from_dict(json.loads(trial.to_json())) == trial
    for bad, says in (
        (("explode", 1), r"an action name, one of \['kill', 'raise', 'raise-once'\]"),
        (("raise", -1), "epoch >= 0"),
        (("raise-once", 1), "absolute marker path"),
        (("raise-once", 1, "relative/marker"), "absolute marker path"),
        (("kill", 1, marker), "absolute marker path with action 'raise-once' and none otherwise"),
    ):
        with pytest.raises(InputError, match=says):
            FaultInjection(*bad)  # type: ignore[arg-type]
    recorded = json.loads(BASE.to_json())
    for text, fault in (
        ("", None),  # rows written before the fault was typed
        ("kill@start", FaultInjection("kill")),
        ("raise@epoch2", FaultInjection("raise", 2)),
        (f"raise-once@epoch1:{marker}", FaultInjection("raise-once", 1, marker)),
    ):
        recorded["runtime"]["inject_fault"] = text
        assert TrialConfig.from_dict(recorded).runtime.inject_fault == fault, text
    recorded["runtime"]["inject_fault"] = "raise@epochX"
    with pytest.raises(InputError, match="Expected a recorded inject_fault ACTION@start or ACTION@epochN"):
        TrialConfig.from_dict(recorded)


def test_an_injected_fault_fires_at_its_epoch_only_and_raise_once_only_once(tmp_path):
    from harness.scheduler import _apply_fault

    def faulty(fault: FaultInjection) -> TrialConfig:
        return dataclasses.replace(BASE, runtime=RuntimeOptions(inject_fault=fault))

    at_start = faulty(FaultInjection("raise"))
    with pytest.raises(RuntimeError, match="injected fault 'raise' at epoch 0"):
        _apply_fault(at_start, 0)
    _apply_fault(at_start, 1)  # later epochs pass
    once = faulty(FaultInjection("raise-once", 2, str(tmp_path / "marker")))
    _apply_fault(once, 1)
    with pytest.raises(RuntimeError, match="at epoch 2"):
        _apply_fault(once, 2)
    _apply_fault(once, 2)  # the retry: the marker exists
    assert (tmp_path / "marker").exists()
    _apply_fault(BASE, 0)  # no fault
    of_seed_1 = faulty(FaultInjection("raise", seed=1))
    _apply_fault(of_seed_1, 0)  # BASE is seed 0
    with pytest.raises(RuntimeError, match="at epoch 0"):
        _apply_fault(dataclasses.replace(of_seed_1, seed=1), 0)


def test_trial_ids_are_distinct_in_every_suite_and_a_repeated_one_is_refused_before_anything_runs():
    from harness.preflight import check_distinct_trial_ids, preflight
    from harness.suites import SUITES

    for name in SUITES:  # s1_cifar10 had two convnet3 cases under one id until they got variants
        check_distinct_trial_ids(selected_trials(Selection(suite=name), {})[0])  # tune's too
    with pytest.raises(
        ValueError, match=r"its own id. Received: 1 repeated ids, e.g. adhoc-scratch-mlp-digits-torch-s0 \(model mlp\)"
    ):
        preflight([BASE, dataclasses.replace(BASE, epochs=3)], None)
    # a suite written with two cases under one id: the plugin kept one trial and both tests checked its rows
    from harness.suites import Suite, SuiteCase

    with pytest.raises(InputError, match="1 shared, e.g. scratch-mlp-digits. To fix, give the cases distinct"):
        Suite(
            "mine",
            "two alike",
            cases=(SuiteCase("scratch", "mlp", "digits", 1), SuiteCase("scratch", "mlp", "digits", 2)),
        )
    # one id on two backends apart (only_backends) is two trials apart: taken
    torch_only = SuiteCase("scratch", "mlp", "digits", 1, only_backends=("torch",))
    Suite("mine", "apart", cases=(torch_only, SuiteCase("scratch", "mlp", "digits", 2, only_backends=("tensorflow",))))


def test_ids_that_make_one_results_file_name_are_refused_before_anything_runs():
    """Each trial's results file is named by its id as a file name allows: variants wide@32 and wide_32 wrote one
    file, both trials printed ok, and the first one's rows were gone from results.parquet."""
    from harness.preflight import preflight

    one, other = (dataclasses.replace(BASE, variant=v) for v in ("wide@32", "wide_32"))
    with pytest.raises(
        InputError,
        match=r"own results file name. Received: 1 pairs that make one, e.g. "
        r"adhoc-scratch-mlp\+wide@32-digits-torch-s0 "
        r"and adhoc-scratch-mlp\+wide_32-digits-torch-s0 \(both adhoc-scratch-mlp_wide_32-digits-torch-s0\)",
    ):
        preflight([one, other], None)


def test_a_suite_case_with_a_variant_no_trial_folder_can_hold_or_an_unknown_backend_is_refused():
    """A variant holding `/` passed every check and reached Ray, which refused the trial folder for every case of the
    session; only_backends=("pytorch",) skipped the case on every backend, saying it ran on pytorch only."""
    from harness.suites import SuiteCase

    with pytest.raises(InputError, match=r"letters, digits and . _ \+ @ - only. Received: variant='a/b'.*'a_b'"):
        SuiteCase("scratch", "mlp", "digits", 1, variant="a/b")
    with pytest.raises(InputError, match=r"only_backends among \['torch', 'tensorflow'\]. Received: \['pytorch'\]"):
        SuiteCase("scratch", "mlp", "digits", 1, only_backends=("pytorch",))
    SuiteCase("scratch", "mlp", "digits", 1, variant="random_forest@flatten+x.1-y", only_backends=("torch",))


def test_an_interrupted_run_recorded_with_repeated_trial_ids_is_not_resumed(tmp_path):
    from harness.runner import resumable

    record = RunRecord(run_id="old", started="t0", command=("xfbench", "run"), git_commit="abc", driver_host="h",
                       driver_cpu="c", python_version="3.11", status="interrupted")  # fmt: skip
    plan = RunPlan.of_trials([BASE, dataclasses.replace(BASE, epochs=3)])  # as s1_cifar10 recorded two cases
    (tmp_path / "old").mkdir()
    write_run_file(tmp_path / "old", RunFile(plan, ExecutionOptions(), record))
    with pytest.raises(InputError, match="repeated ids.*cannot be resumed. To fix, start a new run instead"):
        resumable(tmp_path, "old", "run", {})


def test_a_spec_file_is_carried_by_its_absolute_path_and_named_by_its_file_name(tmp_path, monkeypatch):
    """Tune runs trials in directories of their own and refuses a '/' in their names; runs of one file made from
    two directories compare as one case."""
    from harness.compare import comparable
    from harness.models import build_spec
    from harness.spec import spec_to_dict

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "net.json").write_text(json.dumps(spec_to_dict(build_spec("convnet3", (8, 8, 1), 10))))
    monkeypatch.chdir(tmp_path)
    plan = plan_run(Selection(strategy="scratch", model="specs/net.json", dataset="digits"), {})
    assert plan.label == "scratch-net.json-digits"  # the run id's tail: no nested folder
    assert {t.model for t in plan.trials} == {str(tmp_path / "specs" / "net.json")}
    assert {t.trial_id for t in plan.trials} == {
        "adhoc-scratch-net.json-digits-torch-s0",
        "adhoc-scratch-net.json-digits-tensorflow-s0",
    }
    frame = pd.DataFrame({"model": ["/a/net.json", "/b/net.json", "mlp", "python:nets:make"]})
    assert list(comparable(frame)["model"]) == ["net.json", "net.json", "mlp", "python:nets:make"]


def test_a_plan_is_either_trials_or_a_search():
    with pytest.raises(InputError, match="at least one trial"):
        RunPlan.of_trials([])
    with pytest.raises(InputError, match="a tune plan with a search only"):
        RunPlan("tune", "x", "t", trials=(BASE,))


def test_execution_options_take_what_is_given_zero_included():
    recorded = ExecutionOptions(cpus_per_trial=2, max_failures=3)
    assert recorded.updated({"cpus_per_trial": None, "max_failures": 0}) == ExecutionOptions(2, max_failures=0)


def test_rays_local_address_is_a_local_run_new_or_resumed():
    """``--address local`` starts an instance of the run's own, as no address does: read as no address, so the
    local checks (memory, CPUs), data in place and the workers' inherited environment apply; a resume given it
    leaves the cluster it was recorded on."""
    assert ExecutionOptions(address="local") == ExecutionOptions()
    on_a_cluster = ExecutionOptions(address="10.0.0.5:6379")
    assert on_a_cluster.updated({"address": "local"}).address is None
    assert ExecutionOptions.from_dict({"address": "local"}).address is None


def test_a_suite_of_more_trials_than_a_driver_can_keep_is_refused_before_any_is_built():
    """Counted as the trials would be built: each case on the backends it runs on (the speed matrix's variants run on
    some backends only), times the seeds. The CLI and the pytest plugin (per suite at collection) both call it."""
    from harness.suites import case_trials

    matrix, backends = suite("speed_matrix"), ("torch", "tensorflow")
    per_seed = len([t for c in matrix.cases for t in case_trials(c, matrix.name, backends, 1)])
    check_suite_size(matrix, backends, MAX_TRIALS // per_seed)
    with pytest.raises(
        InputError,
        match=rf"Expected at most {MAX_TRIALS:,} trials in a run. Received: "
        rf"{len(matrix.cases)} case\(s\) of speed_matrix on their backends \({per_seed}\)",
    ):
        check_suite_size(matrix, backends, MAX_TRIALS // per_seed + 1)


def test_epoch_counts_beyond_what_the_driver_can_hold_are_refused():
    base = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=1)
    assert dataclasses.replace(base, epochs=100_000).epochs == 100_000
    with pytest.raises(InputError, match="Expected epochs <= 100,000"):
        dataclasses.replace(base, epochs=100_001)
    with pytest.raises(InputError, match="Expected --source-epochs <= 100,000"):
        apply_overrides(base, {"transfer.source_epochs": 100_001})


@pytest.mark.parametrize(
    ("name", "given", "received"),
    [
        ("techniques", {"optimizer.name": "adam"}, "Received: --optimizer adam, but its cases set optimizer.name"),
        ("techniques", {"optimizer.lr": 0.1}, "Received: --lr 0.1, but its cases set optimizer.lr differently"),
        ("techniques", {"init": "he_normal"}, "Received: --init he_normal, but its cases set init differently"),
        ("speed_matrix", {"runtime.precision": "float32"}, "Received: --precision float32, but"),
        ("speed_matrix", {"runtime.tf_mode": "custom"}, "Received: --tf-mode custom, but"),
        ("speed_matrix", {"runtime.jit_compile": True}, "Received: --jit-compile, but"),
        ("s1_alexnet", {"init": "he_normal"}, "scratch-alexnet-cifar10 has init='he_normal', scratch-alexnet+mxnet"),
        # --piecewise sets a schedule's name, boundaries and values together; its name alone is no valid schedule,
        # so no case counted as reading it, and every sched_* variant trained piecewise under its own label
        (
            "techniques_smoke",
            {"schedule.name": "piecewise", "schedule.boundaries": (10, 20), "schedule.values": (0.1, 0.01, 0.001)},
            "Received: --schedule piecewise, but its cases set schedule.name differently",
        ),
    ],
)
def test_an_option_that_would_erase_what_tells_a_suites_variants_apart_is_refused(name, given, received):
    """Given for the whole suite, the option replaced each variant's own setting while the rows kept the variants'
    labels (opt_sgd trained with Adam, bf16 in float32): refused before any case is resolved, in the CLI's planner
    and in the pytest plugin's collection alike."""
    with pytest.raises(InputError, match=re.escape(received)) as refused:
        plan_run(Selection(suite=name), given)
    assert f"Expected options given for suite {name} to leave the settings that make its variants alone" in str(
        refused.value
    )
    assert "To fix, drop --" in str(refused.value) and "or run one case with its own options: --strategy" in str(
        refused.value
    )
    with pytest.raises(InputError, match=re.escape(received)):
        check_variant_overrides(suite(name), ("torch", "tensorflow"), given)  # the plugin's check


@pytest.mark.parametrize(
    ("name", "given", "received"),
    [
        ("transfer_smoke", {"transfer.source_task.classes": (0, 1)}, "Received: --source-classes 0,1, but case"),
        ("fashion_ab", {"task.classes": (5, 7)}, "Received: --classes 5,7, but case"),
        ("fashion_ab", {"task.binary_positive": 5}, "defines task.binary_positive=6"),
    ],
)
def test_an_option_that_replaces_a_class_split_a_suites_case_defines_is_refused(name, given, received):
    """`--suite transfer_smoke --source-classes 0,1` trained every case on another split under labels naming the
    suite's (`+5-9to0-4`) and drew the A -> B table from it: refused, in the planner and the plugin's check alike.
    A case on every class takes the option (its classes are the user's to pick), and so does --train-limit."""
    with pytest.raises(InputError, match=re.escape(received)) as refused:
        plan_run(Selection(suite=name), given)
    assert f"Expected options given for suite {name} to leave the class splits its cases define" in str(refused.value)
    with pytest.raises(InputError, match=re.escape(received)):
        check_variant_overrides(suite(name), ("torch", "tensorflow"), given)
    assert {t.task.classes for t in plan_run(Selection(suite="fashion_smoke"), {"task.classes": (0, 1)}).trials} == {
        (0, 1)
    }
    plan_run(Selection(suite="fashion_ab"), {"task.classes": (6, 5)})  # the suite's own split, listed otherwise
    limited = plan_run(Selection(suite="transfer_smoke"), {"task.train_limit": 100}).trials
    assert {t.task.train_limit for t in limited} == {100}


def test_the_full_imagenet_transfer_tier_takes_deep_features_from_a_convolutional_stage_of_each_backbone_too():
    """SUITES.md's S2 asks for features "also taken from other (convolutional) layers": at --scale full every
    deep_features case read the head's input alone."""
    from harness.models import ModelOptions, build_spec
    from harness.shapes import infer_shapes

    full = suite("imagenet_transfer")
    layered = [c for c in full.cases if c.strategy == "deep_features" and c.transfer.feature_layer]
    assert sorted(c.model for c in layered) == sorted({c.model for c in full.cases})  # one per backbone
    for case in layered:
        assert case.variant == f"linear_svc@{case.transfer.feature_layer}" and case.transfer.feature_pool == "avg"
        spec = build_spec(case.model, (224, 224, 3), 10, ModelOptions(width_multiplier=1.0))
        shape = infer_shapes(spec)[case.transfer.feature_layer].shape
        assert len(shape) == 3 and min(shape[:2]) >= 7, (case.model, shape)  # a feature map (H, W, C), not a vector


def test_every_backbone_a_cpu_tier_pretrains_has_a_bar_of_its_own():
    """A head's floor cannot tell trained features from untrained ones where random features already score well;
    imagenet_transfer_quick's five backbones and fashion_ab's model A had no bar of their own. MNIST's are unmeasured:
    it cannot be downloaded where they would be (docs/measurements.md, "The backbones' own bars")."""
    from harness.backbone import NEEDS_BACKBONE
    from harness.suites import SUITES

    trained_here = [
        (name, case)
        for name, chosen in SUITES.items()
        if not chosen.gpu_only
        for case in chosen.cases
        if case.strategy in NEEDS_BACKBONE and not (case.transfer.pretrained or case.transfer.weights_file)
        if case.dataset != "mnist"
    ]
    tiers = {"transfer_smoke", "transfer", "imagenet_transfer_smoke", "imagenet_transfer_quick", "fashion_ab"}
    assert {name for name, _ in trained_here} >= tiers
    unbarred = [
        (name, case.strategy, case.model, case.variant) for name, case in trained_here if not case.min_backbone_acc
    ]
    assert not unbarred


def test_the_ci_tiers_deep_batchnorm_networks_train_in_float64_where_the_backends_must_agree_per_seed():
    """In float32 their backends parted by an amount that moved with the CPU (imagenet_transfer_smoke's fine-tuned
    resnet18: 2.9, 6.4, then 11.6 pp on seed 0, over the 8.5 pp gap CI allowed)."""
    exact = [c for c in suite("zoo_smoke").cases] + [
        c for c in suite("imagenet_transfer_smoke").cases if c.model == "resnet18"
    ]
    assert len(exact) == 6
    assert all(c.runtime.precision == "float64" and c.max_backend_gap == 0 for c in exact), exact


def test_a_batch_size_that_would_move_a_suites_step_schedules_in_epochs_is_refused():
    """The technique sweeps set power, exponential and piecewise schedules in steps of batch 64 (so many epochs of
    the dataset): --suite techniques --batch-size 32 changed sched_piecewise's rates at epochs 1 and 2, not 2 and 4,
    under the same label and settings."""
    refused = "Expected the batch size to leave suite techniques's step schedules where it set them. Received: "
    with pytest.raises(InputError, match=re.escape(refused + "--batch-size 32, but scratch-mlp+sched_power-digits")):
        plan_run(Selection(suite="techniques"), {"batch_size": 32})
    # a schedule option that leaves the steps where the suite set them does not make them the user's
    with pytest.raises(InputError, match=re.escape(refused + "--batch-size 32, but scratch-mlp+sched_power-digits")):
        plan_run(Selection(suite="techniques"), {"batch_size": 32, "schedule.power": 1.0})
    searched = refused + "batch_size=32 in the search space, but scratch-mlp+sched_power-digits"
    with pytest.raises(InputError, match=re.escape(searched)) as caught:  # a tune's searched value, said as one
        check_variant_overrides(suite("techniques"), ("torch", "tensorflow"), {"batch_size": 32}, searched=True)
    assert "To fix, take batch_size out of --space" in str(caught.value)
    assert {t.batch_size for t in plan_run(Selection(suite="techniques"), {"batch_size": 64}).trials} == {64}
    # a suite without step schedules takes it
    assert {t.batch_size for t in plan_run(Selection(suite="fashion_smoke"), {"batch_size": 32}).trials} == {32}


@pytest.mark.parametrize(
    ("name", "case"),
    [
        ("transfer_smoke", "deep_features-cnn_small+linear_svc-digits"),
        ("imagenet_transfer_smoke", "resnet18+linear_svc"),
    ],
)
def test_an_option_that_replaces_the_setting_a_lone_cases_label_names_is_refused(name, case):
    """The deep_features case alone in its group (no sibling to differ from) trained rbf_svc under its linear_svc
    label with --sklearn-head rbf_svc. The head it already has, and options its label does not name, are kept."""
    with pytest.raises(InputError, match=re.escape("is labelled by its transfer.sklearn_head='linear_svc'")) as refused:
        plan_run(Selection(suite=name), {"transfer.sklearn_head": "rbf_svc"})
    assert "leave the settings its case labels name. Received: --sklearn-head rbf_svc, but case" in str(refused.value)
    assert case in str(refused.value)
    with pytest.raises(InputError, match="labelled by its"):
        check_variant_overrides(suite(name), ("torch", "tensorflow"), {"transfer.sklearn_head": "rbf_svc"})
    same = plan_run(Selection(suite=name), {"transfer.sklearn_head": "linear_svc", "epochs": 1}).trials
    assert {t.epochs for t in same} == {1}
    # a label names a head and a feature layer, not another setting that happens to hold the same word
    # (random_forest@flatten's feature_pool is 'flatten' by default)
    pooled = plan_run(Selection(suite="transfer"), {"transfer.feature_pool": "avg"}).trials
    features = [t for t in pooled if t.strategy == "deep_features"]
    assert len(features) == 6 * 2 and {t.transfer.feature_pool for t in features} == {"avg"}


def _user_feature_suite(variant: str, head: str, named: tuple[str, ...]) -> Suite:
    """transfer_smoke's deep_features case as a user's suite words it: its own label, and what the label names."""
    (case,) = [c for c in suite("transfer_smoke").cases if c.strategy == "deep_features"]
    transfer = dataclasses.replace(case.transfer, sklearn_head=head)
    return Suite("mine", "", (dataclasses.replace(case, variant=variant, transfer=transfer, named_settings=named),))


def test_a_label_that_names_its_head_without_spelling_it_keeps_it():
    """Whether a case's label names its head was read off the label's spelling: a user's `+rf` for random_forest
    was not protected, and --sklearn-head rbf_svc trained rbf_svc under it. The case declares what its label names."""
    backends = ("torch", "tensorflow")
    rf = _user_feature_suite("rf", "random_forest", ("transfer.sklearn_head",))
    with pytest.raises(InputError, match=re.escape("is labelled by its transfer.sklearn_head='random_forest'")) as no:
        check_variant_overrides(rf, backends, {"transfer.sklearn_head": "rbf_svc"})
    assert "deep_features-cnn_small+rf-digits" in str(no.value)
    check_variant_overrides(rf, backends, {"transfer.sklearn_head": "random_forest"})  # the head it has: kept
    # a label that spells a head by chance names nothing it does not declare
    spelt = _user_feature_suite("linear_svc", "rbf_svc", ())
    check_variant_overrides(spelt, backends, {"transfer.sklearn_head": "linear_svc"})
    with pytest.raises(InputError, match=r"Expected named_settings to be config paths.*\['transfer\.head'\]"):
        _user_feature_suite("rf", "random_forest", ("transfer.head",))
    with pytest.raises(InputError, match="Expected named_settings only on a case with a variant label"):
        _user_feature_suite("", "random_forest", ("transfer.sklearn_head",))


def test_an_option_a_default_case_of_a_suite_cannot_take_does_not_blame_the_cases_own_settings():
    """--plateau-patience for techniques_smoke: opt_adam, on the default constant schedule, cannot take it, and the
    refusal said the case "sets the other itself". It names the case and says it is on the defaults there."""
    with pytest.raises(InputError, match="the constant schedule reads") as refused:
        plan_run(Selection(suite="techniques_smoke"), {"schedule.patience": 1})
    assert "of suite techniques_smoke, on the defaults there" in str(refused.value)
    assert "sets the other itself" not in str(refused.value)


def test_options_every_variant_shares_or_that_only_different_models_set_differently_are_kept():
    """--epochs on the techniques suite (its cases share it), --optimizer on fashion_quick (two models, each its own
    optimizer, no variant label names it), --torch-compile on the TensorFlow half of the speed matrix (none of its
    cases sets it: the capability fit refuses it instead)."""
    assert {t.epochs for t in plan_run(Selection(suite="techniques"), {"epochs": 1}).trials} == {1}
    fashion = plan_run(Selection(suite="fashion_quick"), {"optimizer.name": "adam"}).trials
    assert {t.optimizer.name for t in fashion} == {"adam"}
    matrix = plan_run(Selection(suite="speed_matrix"), {"epochs": 2, "runtime.threads": 2}).trials
    assert {(t.epochs, t.runtime.threads) for t in matrix} == {(2, 2)}
    with pytest.raises(InputError, match="Expected --torch-compile to apply to"):
        plan_run(Selection(suite="speed_matrix", backends=("tensorflow",)), {"runtime.torch_compile": True})


def test_an_option_that_leaves_each_variants_own_setting_in_place_is_kept():
    """--optimizer sgd on sgd variants apart only in momentum: a same-named optimizer keeps its settings
    (harness.overrides), so each variant keeps its momentum; it was refused as if it replaced them. --optimizer adam
    there replaces both momenta with Adam's: refused."""
    cases = tuple(
        SuiteCase("scratch", "mlp", "digits", 1, optimizer=OptimizerConfig("momentum", lr=0.01, momentum=m), variant=v)
        for v, m in (("m5", 0.5), ("m9", 0.9))
    )
    momenta = Suite("momenta", "two momenta", cases)
    check_variant_overrides(momenta, ("torch",), {"optimizer.name": "momentum", "runtime.threads": 1})
    with pytest.raises(InputError, match="but its cases set optimizer.name differently"):
        check_variant_overrides(momenta, ("torch",), {"optimizer.name": "adam"})


def test_a_search_suite_is_refused_for_a_run_and_kept_for_tune():
    """`xfbench run --suite tune_smoke` trained the search's base configuration alone (momentum at lr 0.01) and
    reported it under the suite's name: only `xfbench tune` reads Suite.search."""
    with pytest.raises(InputError) as refused:
        plan_run(Selection(suite="tune_smoke"), {})
    message = str(refused.value)
    assert message.startswith(
        "Expected a suite of cases to run. Received: suite tune_smoke, a search over optimizer.lr, optimizer.name"
    )
    assert (
        "To fix, search it with `xfbench tune --suite tune_smoke`, or run that configuration as a case: "
        "--strategy scratch" in (message)
    )
    assert plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest()).search is not None


def test_an_option_for_a_suite_is_judged_whatever_the_order_of_its_cases_and_blames_a_case_only_when_it_is_one():
    """A variant the option cannot join (the speed matrix's XLA beside --tf-mode eager) hid the variants it erases
    when it came first; a note blamed a case's own settings for a conflict the user's two options made alone."""
    from harness.planner import Selection, selected_trials

    matrix = suite("speed_matrix")
    for cases in (matrix.cases, tuple(sorted(matrix.cases, key=lambda c: c.variant != "xla"))):
        with pytest.raises(InputError, match="Received: --tf-mode eager, but its cases set runtime.tf_mode"):
            check_variant_overrides(
                dataclasses.replace(matrix, cases=cases), ("torch", "tensorflow"), {"runtime.tf_mode": "eager"}
            )
    with pytest.raises(InputError) as given_both:
        selected_trials(Selection(suite="smoke"), {"runtime.tf_mode": "eager", "runtime.jit_compile": True})
    assert "sets the other itself" not in str(given_both.value)
    with pytest.raises(InputError, match=r"Case scratch-mlp\+epoch-loop-digits of suite speed_matrix sets the other"):
        selected_trials(Selection(suite="speed_matrix"), {"augment.crop_padding": 2})


def test_float64_for_a_suite_whose_cases_set_float64_batchnorm_themselves_is_taken():
    """The techniques suite's BatchNorm variants set --bn-statistics float64 themselves: --precision float64 for the
    suite was refused, telling the user to drop a flag never given. Given on the command line, it is refused."""
    from harness.planner import Selection, selected_trials

    trials, _ = selected_trials(Selection(suite="techniques", seeds=1), {"runtime.precision": "float64"})
    assert {t.runtime.precision for t in trials} == {"float64"}
    assert any(t.runtime.bn_statistics == "float64" for t in trials)
    given = {"runtime.precision": "float64", "runtime.bn_statistics": "float64"}
    with pytest.raises(InputError, match="Received: --bn-statistics float64 for scratch-convnet3-digits, in float64"):
        selected_trials(Selection(strategy="scratch", model="convnet3", dataset="digits"), given)


def test_the_printed_resume_command_quotes_a_results_dir_with_a_space_and_leaves_a_plain_one_as_it_was(tmp_path):
    """A --results-dir with a space printed a command that, pasted, gave xfbench two arguments for one path."""
    import shlex
    from pathlib import Path

    from harness.plan import resume_command

    spaced = tmp_path / "my results" / "run-1"
    command = resume_command("tune", spaced)
    assert shlex.split(command) == ["xfbench", "tune", "--resume", "run-1", "--results-dir", str(spaced.parent)]
    plain = Path("/data/results/run-1")
    assert resume_command("run", plain) == "xfbench run --resume run-1 --results-dir /data/results"


def test_refusals_of_search_tuning_plan_and_planner_name_the_fix_in_the_standard_form(tmp_path):
    """Refusals read "Expected ... Received: ... To fix, ...": these four gave their remedy without the marker
    ("... Pick one of those.", "Received none: pick a suite ...")."""
    refusals = {
        "search": lambda: parse_space(["lr=loguniform:1e-1,1e-3"]),
        "tuning": lambda: TunePlan(bases=(BASE,), space=SearchSpace(), algorithm="bogus"),
        "plan": lambda: read_run_file(tmp_path),
        "planner": lambda: check_trial_count(MAX_TRIALS + 1, "--seeds"),
    }
    unmarked = {}
    for module, refuse in refusals.items():
        with pytest.raises(InputError) as caught:
            refuse()
        if not re.fullmatch(r"Expected .+\. Received: .+\. To fix, [a-z].+\.", str(caught.value), re.S):
            unmarked[module] = str(caught.value)
    assert not unmarked, unmarked


def test_a_suite_cases_bar_out_of_range_is_refused_with_the_fraction_it_stands_for():
    """A user's suite module giving a bar as a percentage (90) was told the range and nothing more."""
    with pytest.raises(InputError, match=r"Received: min_test_acc=90\. To fix, give it as a fraction: 0\.9 for 90 %"):
        SuiteCase("scratch", "mlp", "digits", 1, min_test_acc=90)
    with pytest.raises(InputError, match=r"Received: min_val_acc=-1\. To fix, give 0 to 1\.$"):
        SuiteCase("scratch", "mlp", "digits", 1, min_val_acc=-1)
    with pytest.raises(InputError, match=r"max_backend_gap=2\. To fix, give a fraction of the test set, such as 0\.01"):
        SuiteCase("scratch", "mlp", "digits", 1, max_backend_gap=2)


def test_the_refusals_of_a_suite_of_ones_own_name_the_fix_in_the_standard_form():
    """A user's suite module is refused in the house form, "Expected ... Received: ... To fix, ...": these gave
    their remedy without the marker ("Rename it", "Correct the name", "Give seeds=1 or more", "Give the cases
    distinct variants", "Write it without quotes"; review 169)."""
    case = SuiteCase("scratch", "mlp", "digits", 1)
    refusals = {
        "variant": lambda: SuiteCase("scratch", "mlp", "digits", 1, variant="a/b"),
        "only_backends": lambda: SuiteCase("scratch", "mlp", "digits", 1, only_backends=("pytorch",)),
        "a bar as text": lambda: SuiteCase("scratch", "mlp", "digits", 1, min_test_acc="0.9"),  # type: ignore[arg-type]
        "seeds": lambda: Suite("mine", "no seeds", (case,), seeds=0),
        "two cases of one id": lambda: Suite("mine", "two alike", (case, case)),
    }
    unmarked = {}
    for what, refuse in refusals.items():
        with pytest.raises(InputError) as caught:
            refuse()
        if not re.fullmatch(r"Expected .+\. Received: .+\. To fix, [a-z].+\.", str(caught.value), re.S):
            unmarked[what] = str(caught.value)
    assert not unmarked, unmarked


def test_s1_cifar10s_sequential_variant_trains_by_keras_fit_in_tensorflow_and_its_own_step_in_torch():
    """The lesson trains its Sequential network with Keras' fit; the case ran the custom step, so no suite held fit
    to a bar (review 161). Torch, without a fit, keeps its step and records the default."""
    plan = plan_run(Selection(suite="s1_cifar10"), {})
    modes = {(t.variant, t.backend): t.runtime.tf_mode for t in plan.trials}
    assert modes[("sequential_nesterov", "tensorflow")] == "fit" and modes[("sequential_nesterov", "torch")] == "custom"
    assert {mode for (variant, _), mode in modes.items() if variant != "sequential_nesterov"} == {"custom"}


def _standard_form_refusals():
    """Each of harness.config's refusals, by the input that meets it (review 163: about 35 read without a fix)."""
    from harness.config import RegularizationConfig, TransferOptions, check_decay_to_decouple, check_epochs

    def trial(**changes):
        return lambda: dataclasses.replace(BASE, **changes)

    return {
        "clip_norm 0": lambda: OptimizerConfig(clip_norm=0.0),
        "optimizer name": lambda: OptimizerConfig(name="sgdd"),
        "lr 0": lambda: OptimizerConfig(lr=0.0),
        "momentum 1": lambda: OptimizerConfig(name="momentum", momentum=1.0),
        "momentum on adam": lambda: OptimizerConfig(name="adam", momentum=0.9),
        "beta1 1": lambda: OptimizerConfig(name="adam", beta1=1.0),
        "betas on sgd": lambda: OptimizerConfig(beta1=0.8),
        "weight decay < 0": lambda: OptimizerConfig(weight_decay=-1.0),
        "adamw coupled": lambda: OptimizerConfig(name="adamw", decoupled=False),
        "nesterov without momentum": lambda: OptimizerConfig(name="nesterov", momentum=0.0),
        "rho 1": lambda: OptimizerConfig(name="rmsprop", rho=1.0),
        "eps 0": lambda: OptimizerConfig(name="adam", eps=0.0),
        "decay to decouple": lambda: check_decay_to_decouple(OptimizerConfig(decoupled=True).resolved()),
        "l1 < 0": lambda: RegularizationConfig(l1=-1.0),
        "source epochs 0": lambda: TransferOptions(source_epochs=0),
        "feature pool": lambda: TransferOptions(feature_pool="max"),
        "sklearn head": lambda: TransferOptions(sklearn_head="knn"),
        "backbone lr multiplier": lambda: TransferOptions(backbone_lr_multiplier=0.0),
        "epochs beyond the driver": lambda: check_epochs("epochs", 10**6),
        "fault action": lambda: FaultInjection("explode"),
        "fault epoch": lambda: FaultInjection("raise", -1),
        "fault marker": lambda: FaultInjection("raise-once", 1),
        "recorded fault": lambda: FaultInjection.recorded("raise@later"),
        "threads 0": lambda: RuntimeOptions(threads=0),
        "device": lambda: RuntimeOptions(device="tpu"),
        "precision": lambda: RuntimeOptions(precision="float8"),
        "epochs 0": trial(epochs=0),
        "mc passes < 0": trial(mc_dropout_passes=-1),
        "batch size 0": trial(batch_size=0),
    }


@pytest.mark.parametrize("case", sorted(_standard_form_refusals()))
def test_the_configs_refusals_say_what_was_expected_received_and_how_to_fix_it(case):
    with pytest.raises(InputError) as refused:
        _standard_form_refusals()[case]()
    said = str(refused.value)
    assert re.fullmatch(r"Expected .+\. Received: .+\. To fix, .+\.", said, re.S), said
