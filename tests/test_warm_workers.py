"""Warm workers: each backend's worker processes run many trials, one framework per process, and nothing of one
trial reaches the next (real Ray Tune, tiny data)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from golden_metrics import metric_table

from harness.config import FaultInjection, OptimizerConfig, RegularizationConfig, RuntimeOptions, TrialConfig
from harness.models import ModelOptions
from harness.plan import RunPlan
from harness.planner import Selection, plan_run
from harness.preflight import datasets_to_ship
from harness.runner import execute
from harness.scheduler import SchedulerSettings, warm_workers, worker_groups
from harness.summary import final_rows

BASE = TrialConfig(strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=2,
                   suite="warm", model_options=ModelOptions())  # fmt: skip


def _trials() -> list[TrialConfig]:
    """cnn_small has dropout: its masks, the batch order and the initial weights all come from the trial's seed.
    Each backend's second trial runs in the worker of a first whose per-trial options leave process-wide state
    behind unless the backend resets it: torch's framework dropout draws from the global generator (reseeded at
    each build; with the reseed dropped, the seed-1 trial's numbers followed seed 0's draws and the test, comparing
    two default trials, still passed), then a default trial (shared masks, the path most runs take). TensorFlow's
    bf16 sets Keras' dtype policy, which its backend restores and which lives per thread besides (Tune runs each
    trial on its own): here in case that ever changes; the restore itself is pinned by the next test. A float64
    trial (torch's default dtype, Keras' floatx) and a Keras-fit one (its compiled train function, its optimizer)
    come before a default trial too: a review found neither leaking (2026-12-07), and this keeps it so."""
    framework = RuntimeOptions(dropout_rng="framework")
    return [
        replace(BASE, seed=0, runtime=framework),
        replace(BASE, seed=1, runtime=framework),
        replace(BASE, seed=3),
        replace(BASE, seed=4, runtime=RuntimeOptions(precision="float64")),
        replace(BASE, seed=5),
        replace(BASE, backend="tensorflow", seed=0, runtime=RuntimeOptions(precision="mixed_bfloat16")),
        replace(BASE, backend="tensorflow", seed=1),
        replace(BASE, backend="tensorflow", seed=2, runtime=RuntimeOptions(tf_mode="fit", precision="float64")),
        replace(BASE, backend="tensorflow", seed=3),
    ]


def _run(tmp_path, name: str, trials: list[TrialConfig], fresh: bool) -> pd.DataFrame:
    # Warm: one trial at a time, so which trial follows which in a process is the plan's order. Fresh: every trial
    # has a process of its own anyway, so two at a time (one thread each, the numbers do not change).
    concurrent = None if fresh else 1
    settings = SchedulerSettings(
        storage_dir=tmp_path / "_ray", cpus_per_trial=1, max_concurrent=concurrent, fresh_workers=fresh
    )
    ship = datasets_to_ship(trials, "auto", None)  # as the CLI ships a local run's data: the object store's arrays
    plan = RunPlan.of_trials(trials)
    return execute(plan, results_dir=tmp_path, run_id=name, settings=settings, ship=ship).frame


def _not_handed_on(warm: pd.DataFrame, spoiled: TrialConfig) -> None:
    """The process that ran ``spoiled`` ran no later trial of its backend."""
    pids = set(warm.loc[warm["trial_id"] == spoiled.trial_id, "worker_pid"].dropna())
    later = warm[(warm["backend"] == spoiled.backend) & (warm["trial_id"] != spoiled.trial_id)]
    assert pids, f"{spoiled.trial_id} reported no row"
    assert not pids & set(later["worker_pid"]), f"the worker of {spoiled.trial_id} ran another trial"


def _ran_after_another(frame: pd.DataFrame) -> set[str]:
    """Trials that started in a process where another trial had started before."""
    starts = frame.groupby("trial_id").agg(pid=("worker_pid", "first"), start=("timestamp", "min")).dropna()
    firsts = set(starts.sort_values("start").groupby("pid").head(1).index)
    return set(starts.index) - firsts


@pytest.mark.ray
def test_warm_workers_keep_one_framework_each_and_change_no_number(tmp_path, shared_ray):
    # Spoiled trials come first: a torch trial that raises, one that diverges, a TensorFlow trial whose worker is
    # killed. None of their processes may run the next trial. (Retiring and not caching a process is Tune's and
    # xfbench's scheduler's doing, the same for every backend: one framework per kind of spoiling keeps the test short.)
    raised = replace(BASE, seed=7, runtime=RuntimeOptions(inject_fault=FaultInjection("raise", 1)))
    killed = replace(BASE, backend="tensorflow", seed=8, runtime=RuntimeOptions(inject_fault=FaultInjection("kill", 1)))
    # An mlp at this rate reaches a non-finite loss in its first epoch (in both frameworks).
    exploding = OptimizerConfig("sgd", lr=1e30)
    diverged = replace(BASE, model="mlp", model_options=ModelOptions(hidden=(16,)), optimizer=exploding, seed=9)
    spoiled = [raised, diverged, killed]
    # A process-wide setting (torch's deterministic algorithms): its trial gets a worker group of its own.
    deterministic = replace(BASE, seed=2, runtime=RuntimeOptions(deterministic=True))
    trials = _trials()
    warm = _run(tmp_path, "warm", [raised, diverged, *trials[:2], deterministic, killed, *trials[2:]], fresh=False)
    # The trials that ran in a process another trial had used must not change with a fresh process each; both torch
    # trials run again too, to show that --fresh-workers gives every trial its own process.
    reused_ids = _ran_after_another(warm)
    fresh = _run(tmp_path, "fresh", [t for t in trials if t.backend == "torch" or t.trial_id in reused_ids], fresh=True)
    reused_backends = set(warm.loc[warm["trial_id"].isin(reused_ids), "backend"])
    assert reused_backends == {"torch", "tensorflow"}, "a backend's worker was never reused"

    trials_per_pid = warm.groupby("worker_pid")["trial_id"].nunique()
    assert trials_per_pid.max() >= 2, "no worker was reused"
    for pid, rows in warm.groupby("worker_pid"):
        assert rows["backend"].nunique() == 1, f"process {pid} ran trials of {sorted(rows['backend'].unique())}"
        assert set(rows["worker_frameworks"]) == {rows["backend"].iloc[0]}, f"process {pid} imported two frameworks"
    for trial in spoiled:
        _not_handed_on(warm, trial)
    apart = set(warm.loc[warm["trial_id"] == deterministic.trial_id, "worker_pid"])
    assert apart and not apart & set(warm.loc[warm["trial_id"] != deterministic.trial_id, "worker_pid"])
    finals = final_rows(warm).set_index("trial_id")["status"]
    assert [finals[t.trial_id] for t in spoiled] == ["failed", "diverged", "failed"]
    assert fresh.groupby("worker_pid")["trial_id"].nunique().max() == 1, "--fresh-workers reused a process"

    # each row says whether its process had run a trial before (its warm-up then lacks a new process's one-off costs)
    before = warm.dropna(subset=["worker_pid"]).groupby("trial_id")["worker_trials_before"].agg(set)
    assert {t for t, n in before.items() if n != {0}} == reused_ids and all(len(n) == 1 for n in before)
    assert set(fresh["worker_trials_before"]) == {0}
    reused = warm[warm["trial_id"].isin(fresh["trial_id"])]
    pd.testing.assert_frame_equal(metric_table(reused), metric_table(fresh), check_exact=True)


def test_trials_share_a_worker_only_with_the_same_backend_and_process_wide_settings():
    trials = list(plan_run(Selection(suite="speed_matrix"), {}).trials)
    groups = worker_groups(trials)
    assert sorted(t.trial_id for g in groups.values() for t in g) == sorted(t.trial_id for t in trials)
    for suffix, group in groups.items():
        assert {(t.backend, t.runtime.process_settings()) for t in group} == {
            (group[0].backend, group[0].runtime.process_settings())
        }
        assert suffix == "-".join((group[0].backend, *group[0].runtime.process_settings()))
    # The default mode, bf16, fit and the epoch loop share TensorFlow's warm workers; XLA's trials have their own.
    tensorflow = {t.runtime.tf_mode for t in groups["tensorflow"]}
    assert tensorflow >= {"custom", "fit", "eager"} and not any(t.runtime.jit_compile for t in groups["tensorflow"])
    assert {t.runtime.tf_mode for t in groups["tensorflow-jit_compile"]} == {"custom", "fit"}
    assert all(t.runtime.torch_compile for t in groups["torch-torch_compile"])
    first_seen = [next(i for i, t in enumerate(trials) if t in group) for group in groups.values()]
    assert first_seen == sorted(first_seen)  # the groups run in the order their trials first appear
    on_gpu = replace(BASE, runtime=RuntimeOptions(device="gpu", deterministic=True))
    assert list(worker_groups([BASE, on_gpu])) == ["torch", "torch-gpu-deterministic"]


def test_a_shipped_read_only_dataset_is_copied_into_the_torch_backends_tensors(workers, digits):
    """torch.from_numpy shares memory and ignores numpy's read-only flag: a dataset shipped through the object store
    (read-only shared memory every later trial on the node maps) became the torch backend's writable data tensors,
    one in-place op away from changing the next trial's data (a review's probe wrote a label through to the store).
    The trial's own writeable labels are still shared, not copied (images are always a transposed copy)."""
    import backend_probes as probes

    from harness.models import build_spec
    from harness.weights import initial_weights

    spec = build_spec("mlp", (8, 8, 1), 10, ModelOptions(hidden=(4,)))
    seen = workers["torch"](probes.torch_data_written_through, spec, initial_weights(spec, "he_normal", 0),
                            digits.x_test, digits.y_test)  # fmt: skip
    assert seen == {"writeable": {"shared": True, "kept": False}, "read-only": {"shared": False, "kept": True}}


def test_a_shipped_read_only_dataset_trains_the_numbers_the_files_arrays_train(workers, digits):
    """The torch backend copies a read-only (shipped) array and shared a writeable one; numpy's view of a 1-channel
    transposition kept stride 1 on the channel axis, the copy the standard strides, so a shipped run ran other
    convolutions (channels_last and not) and the quick suite's cnn_small ended one test image apart. Both now get the
    standard strides: the same weights to the last bit, after a 1-channel convnet's 10 steps."""
    import backend_probes as probes

    from harness.data.batching import epoch_batches
    from harness.models import build_spec
    from harness.weights import initial_weights

    spec = build_spec("convnet3", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 0)
    args = (spec, weights, OptimizerConfig("momentum", lr=0.05), digits.x_train, digits.y_train)
    batches = epoch_batches(len(digits.y_train), 64, 0, 1)[:10]
    rest = (
        None,
        None,
        RegularizationConfig(),
        None,
        RuntimeOptions(),
    )  # the probe's defaults: the worker takes no keywords
    files, shipped = (
        workers["torch"](probes.train, *args, batches, *rest, read_only)[0] for read_only in (False, True)
    )
    assert files.keys() == shipped.keys()
    assert all(np.array_equal(files[k], shipped[k]) for k in files)


def test_a_bf16_build_leaves_keras_dtype_policy_as_it_found_it(workers, digits):
    """Keras reads its global dtype policy as each layer is created: a bf16 trial sets it while its model is built.
    Left set, every later model built in that thread (a probe worker's, a benchmark's, any caller not on Tune's
    per-trial threads) would compute in bfloat16 unasked."""
    import backend_probes as probes

    from harness.models import build_spec
    from harness.weights import initial_weights

    spec = build_spec("mlp", (8, 8, 1), 10, ModelOptions(hidden=(4,)))
    weights = initial_weights(spec, "he_normal", 0)
    after, built = workers["tensorflow"](probes.dtype_policy_after_a_bf16_build, spec, weights)
    assert (after, built) == ("float32", "mixed_bfloat16"), (after, built)


def test_a_finished_trials_torch_backend_is_freed_before_the_next_trial_starts():
    import backend_probes as probes
    from conftest import BackendWorker

    # A process of its own: the cycle that kept the backend forms at torch's first use_deterministic_algorithms
    # (its torch._inductor.config import), which the session's shared worker may have made long before.
    worker = BackendWorker("torch")
    try:
        tiny = replace(BASE, model="mlp", epochs=1, model_options=ModelOptions(hidden=(16,)))
        status, alive = worker(probes.trial_backend_alive_after_run_trial, tiny)
    finally:
        worker.close()
    assert status == "ok"
    assert not alive, "the finished trial's backend (its model, optimizer and data) outlived run_trial"


@pytest.mark.parametrize(
    ("backend", "gpus", "fresh", "reused"),
    [
        ("tensorflow", 0.5, False, False),  # its allocator keeps what it grew: the trial beside it could not use it
        ("tensorflow", 1, False, True),  # a whole GPU: no other trial shares it
        ("tensorflow", 0, False, True),
        ("torch", 0.5, False, True),  # empties its caching allocator's reserve as each backend is created
        ("torch", 2, False, True),
        ("torch", 0, True, False),  # --fresh-workers
    ],
)
def test_workers_are_reused_unless_a_shared_gpu_would_keep_a_finished_trials_memory(
    tmp_path, backend, gpus, fresh, reused
):
    settings = SchedulerSettings(storage_dir=tmp_path, gpus_per_trial=gpus, fresh_workers=fresh)
    assert warm_workers(backend, settings) is reused
