"""S2-S4 strategies on digits: freezing, per-group learning rates, shared backbones across frameworks, deep features."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import backend_probes as probes
import numpy as np
import pytest
from conftest import max_abs_diff

from harness.backbone import checkpoint_path, pretrain_trials, recipe_for
from harness.backend import StepStats
from harness.checkpoints import load_checkpoint, save_checkpoint
from harness.config import OptimizerConfig, RuntimeOptions, TransferOptions, TrialConfig
from harness.data.registry import load_dataset
from harness.data.tasks import TaskSpec, derive
from harness.errors import InputError
from harness.model_cost import forward_macs_to, model_cost, step_macs
from harness.models import ModelOptions, build_spec
from harness.seeds import FRESH_HEAD_SEED_OFFSET
from harness.training import PhasePlan, train_phase
from harness.weights import count_parameters, initial_weights

BACKENDS = ("torch", "tensorflow")
LOW, HIGH = TaskSpec(classes=(0, 1, 2, 3, 4)), TaskSpec(classes=(5, 6, 7, 8, 9))


def _target(cache: Path, strategy: str, **changes) -> TrialConfig:
    base = TrialConfig(
        strategy=strategy,
        model="cnn_small",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=2,
        cache_dir=str(cache),
        task=LOW,
        model_options=ModelOptions(batchnorm="before"),
        transfer=TransferOptions(source_task=HIGH, source_epochs=3),
    )
    return dataclasses.replace(base, **changes)


def _pretrain(workers, trial: TrialConfig) -> None:
    for job in pretrain_trials([trial]):
        rows = workers[job.backend](probes.trial_rows, job.to_dict(), "pretrain")
        assert rows[-1]["status"] == "ok" and rows[-1]["phase"] == "source"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_checkpoints_round_trip_spec_and_weights_without_pickle(tmp_path):
    spec = build_spec("cnn_small", (8, 8, 1), 5, ModelOptions(batchnorm="after", activation="prelu"))
    weights = initial_weights(spec, "glorot_uniform", 3)
    save_checkpoint(tmp_path / "b.npz", spec, weights, {"note": "x"})
    loaded_spec, loaded, meta = load_checkpoint(tmp_path / "b.npz")
    assert loaded_spec == spec and meta == {"note": "x"}
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)
    with np.load(tmp_path / "b.npz", allow_pickle=False) as raw:  # readable with pickling disabled
        assert "__spec__" in raw.files


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_extraction_freezes_the_backbone_bit_for_bit(workers, cache, backend):
    trial = _target(cache, "feature_extraction", backend=backend)
    _pretrain(workers, trial)
    _, backbone, meta = load_checkpoint(checkpoint_path(trial))
    assert meta["trained_by"] == "torch"
    rows, trained = workers[backend](probes.run_strategy, trial.to_dict())
    for key, value in backbone.items():
        if key.startswith("logits/"):
            continue
        # Frozen means frozen: kernels, biases, BN gamma/beta and BN running statistics all untouched.
        assert np.array_equal(trained[key], value), f"{backend} changed frozen {key}"
    fresh_head = initial_weights(
        build_spec("cnn_small", (8, 8, 1), 5, ModelOptions(batchnorm="before")),
        "he_normal",
        trial.seed + FRESH_HEAD_SEED_OFFSET,
    )
    assert not np.array_equal(trained["logits/kernel"], fresh_head["logits/kernel"]), "the head did not train"
    assert rows[-1]["trainable_params"] == 128 * 5 + 5
    details = json.loads(rows[-1]["details_json"])
    assert details["backbone"] == recipe_for(trial).key and details["backbone_trained_by"] == "torch"


def test_a_new_head_draws_its_own_layer_alone_and_gets_what_the_whole_networks_draw_gives_it(monkeypatch):
    """with_target_head drew every layer of the network to keep the head's (4.7 s and about 0.8 GB on VGG16); now
    it draws the head alone, bit for bit the values the whole network's draw gives it, the backbone's kept."""
    from types import SimpleNamespace

    from harness.strategies import reuse

    drawn: list[set[str]] = []

    def noting(*args, **kwargs):
        weights = initial_weights(*args, **kwargs)
        drawn.append({k.split("/")[0] for k in weights})
        return weights

    monkeypatch.setattr(reuse, "initial_weights", noting)
    backbone = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions(batchnorm="after", activation="prelu"))
    weights = initial_weights(backbone, "he_normal", 0)
    ctx = SimpleNamespace(config=SimpleNamespace(init="glorot_uniform", seed=3))
    target, merged, new = reuse.with_target_head(ctx, backbone, weights, 5, always_new=True)  # type: ignore[arg-type]
    assert new and drawn == [{"logits"}]
    whole = initial_weights(target, "glorot_uniform", 3 + FRESH_HEAD_SEED_OFFSET)
    assert sorted(merged) == sorted(weights)
    for key, value in merged.items():
        expected = whole[key] if key.startswith("logits/") else weights[key]
        assert np.array_equal(value, expected) and value.shape == expected.shape, key


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_extraction_freezes_a_residual_graph(workers, cache, backend):
    # A graph's Add layers have no module in torch: freezing them once raised KeyError (imagenet_transfer, resnet18).
    trial = _target(
        cache,
        "feature_extraction",
        backend=backend,
        epochs=1,
        model="resnet20",
        model_options=ModelOptions(width_multiplier=0.5),
    )
    _pretrain(workers, trial)
    spec, backbone, _ = load_checkpoint(checkpoint_path(trial))
    rows, trained = workers[backend](probes.run_strategy, trial.to_dict())
    assert rows[-1]["status"] == "ok" and rows[-1]["trainable_params"] == 32 * 5 + 5
    # Frozen means frozen in a graph too: every array but the new head's, the BatchNorm layers' moving_mean and
    # moving_variance among them (a BatchNorm left in training mode moves them, its gamma and beta fixed or not).
    head = spec.layers[-1].name
    kept = {key: value for key, value in backbone.items() if not key.startswith(f"{head}/")}
    assert any(key.endswith("/moving_variance") for key in kept), sorted(kept)
    for key, value in kept.items():
        assert np.array_equal(trained[key], value), f"{backend} changed frozen {key}"


def test_trainable_and_frozen_counts_match_across_backends_and_the_spec(workers, cache):
    counts, step = {}, {}
    for strategy in ("feature_extraction", "freeze_early", "fine_tune"):
        for backend in BACKENDS:
            trial = _target(cache, strategy, backend=backend, epochs=1)
            _pretrain(workers, trial)
            rows, _ = workers[backend](probes.run_strategy, trial.to_dict())
            counts[(strategy, backend)] = (rows[-1]["trainable_params"], rows[-1]["frozen_params"])
            step[(strategy, backend)] = {r["step_macs"] for r in rows if r.get("epoch") is not None}
        assert counts[(strategy, "torch")] == counts[(strategy, "tensorflow")], strategy
    spec = build_spec("cnn_small", (8, 8, 1), 5, ModelOptions(batchnorm="before"))
    # each row's step MACs follow what its strategy froze (harness.model_cost.step_macs, pinned against PyTorch's
    # own FLOP counter in test_model_cost)
    groups = spec.groups()
    for strategy, frozen in (
        ("feature_extraction", [layer.name for layer in spec.layers if layer.name != "logits"]),
        ("freeze_early", list(groups["features"])),
        ("fine_tune", []),
    ):
        assert step[(strategy, "torch")] == step[(strategy, "tensorflow")] == {step_macs(spec, frozen)}, strategy
    assert counts[("freeze_early", "torch")] == (
        count_parameters(spec, ("classifier",)),
        count_parameters(spec, ("features",)),
    )
    assert counts[("fine_tune", "torch")] == (count_parameters(spec), 0)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_per_group_learning_rates_move_parameters_alike(workers, digits, optimizer):
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes, ModelOptions()).with_dropout_rate(0.0)
    weights = initial_weights(spec, "he_normal", 0)
    config = OptimizerConfig(optimizer, lr=0.01)
    batch = np.arange(64)
    backbone = {l.name: 0.1 for l in spec.layers if l.name != "logits"}
    moves = {}
    for backend in BACKENDS:
        scaled = workers[backend](
            probes.one_step_with_multipliers, spec, weights, config, digits.x_train, digits.y_train, batch, backbone
        )
        plain = workers[backend](
            probes.one_step_with_multipliers, spec, weights, config, digits.x_train, digits.y_train, batch, {}
        )
        moves[backend] = ({k: scaled[k] - weights[k] for k in weights}, {k: plain[k] - weights[k] for k in weights})
    # The backends' moves differ by float32 rounding alone. Each backend rounds w + move to float32, so a move read
    # back as new - w carries up to one unit in the last place of the largest weight (exact, by that reasoning); the
    # gradient's own rounding (sums in another order) is relative to the move. Measured (review 166, one Xeon): 0.5 to
    # 1 ulp of the largest weight on the kernels; 2.5e-7 x max |move| on the biases, which start at zero and so
    # carry no rounding of w. 8 float32 epsilons (9.5e-7) x max |move| leaves ~4x over that; the bound before, 1e-5
    # absolute, let a 5 % backend-specific difference in the backbone's step (max |move| 2e-4) pass.
    for key in weights:
        gap = float(np.abs(moves["torch"][0][key] - moves["tensorflow"][0][key]).max())
        largest = max(float(np.abs(weights[key] + moves[b][0][key]).max()) for b in BACKENDS)
        largest = max(largest, float(np.abs(weights[key]).max()))
        step = float(np.abs(moves["torch"][0][key]).max())
        bound = float(np.spacing(np.float32(largest))) + 8 * float(np.finfo(np.float32).eps) * step
        assert gap <= bound, (key, gap, bound)
    # The first step moves the backbone by a tenth of its unscaled move, and the head by the full move (the same
    # gradient, the same rate). A move is a difference of float32 weights, so it carries up to one unit in the last
    # place of the largest weight (measured: 6e-8 on the backbone, 0 on the head).
    for backend in BACKENDS:
        conv_scaled, conv_plain = moves[backend][0]["conv1/kernel"], moves[backend][1]["conv1/kernel"]
        ulp = {k: float(np.spacing(np.abs(weights[k]).max())) for k in ("conv1/kernel", "logits/kernel")}
        assert np.allclose(conv_scaled, 0.1 * conv_plain, rtol=1e-6, atol=ulp["conv1/kernel"])
        head_scaled, head_plain = moves[backend][0]["logits/kernel"], moves[backend][1]["logits/kernel"]
        assert np.abs(head_scaled - head_plain).max() <= ulp["logits/kernel"]


@pytest.mark.parametrize("trainer,tuner", [("torch", "tensorflow"), ("tensorflow", "torch")])
def test_a_backbone_trained_in_one_framework_fine_tunes_in_the_other(workers, cache, trainer, tuner):
    trial = _target(
        cache,
        "fine_tune",
        backend=tuner,
        transfer=TransferOptions(source_task=HIGH, source_epochs=2, source_backend=trainer),
    )
    _pretrain(workers, trial)
    rows, _ = workers[tuner](probes.run_strategy, trial.to_dict())
    details = json.loads(rows[-1]["details_json"])
    assert details["backbone_trained_by"] == trainer and rows[-1]["status"] == "ok"
    assert rows[-1]["test_acc"] > 0.5  # five classes: chance is 0.2


def test_a_search_sample_scores_no_test_split_and_makes_no_mc_dropout_passes(workers):
    """A search picks by validation: a sample's test accuracy (and its MC-dropout passes over the test split) sat in
    its rows, its progress line and MLflow beside the pick, and its passes cost time the search never used."""
    trial = TrialConfig(
        strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=1, mc_dropout_passes=3,
        model_options=ModelOptions(hidden=(16,), dropout=0.2),
    )  # fmt: skip
    measured = {}
    for sample in (None, 0):
        rows, _ = workers["torch"](probes.run_strategy, dataclasses.replace(trial, sample=sample).to_dict())
        last = rows[-1]
        measured[sample] = [last["val_acc"], *(last.get(k, math.nan) for k in ("test_acc", "mc_test_acc"))]
    assert all(0 < value <= 1 for value in measured[None]), measured
    assert measured[0][0] == measured[None][0] and all(math.isnan(v) for v in measured[0][1:]), measured


@pytest.mark.parametrize("backend", BACKENDS)
def test_deep_features_with_scikit_learn_heads_reach_their_floor(workers, cache, backend):
    """This backbone (cnn_small, 8 epochs of momentum SGD on all of digits, seed 0) measured 0.9556 (rbf_svc),
    0.9667 (random_forest) and 0.9806 (linear_svc), identical in both backends (2026-12-02): the floor sits 5 pp
    below the lowest, rounded down to the percent, as the suites' floors do."""
    import sklearn

    sklearn_version = sklearn.__version__
    accs, speeds, times = {}, {}, {}
    for head in ("linear_svc", "random_forest", "rbf_svc"):
        trial = TrialConfig(
            strategy="deep_features",
            model="cnn_small",
            dataset="digits",
            backend=backend,
            seed=0,
            epochs=1,
            cache_dir=str(cache),
            transfer=TransferOptions(source_epochs=8, sklearn_head=head),
        )
        _pretrain(workers, trial)
        if head == "rbf_svc":  # a file of an older xfbench, without validation features, is extracted anew
            (features_file,) = (cache / "features").glob(f"*{backend}*.npz")
            with np.load(features_file) as stored:
                older = {k: stored[k] for k in stored.files if k != "val"}
            np.savez(features_file.with_suffix(""), **older)
        rows, _ = workers[backend](probes.run_strategy, trial.to_dict())
        details = json.loads(rows[-1]["details_json"])
        assert details["head"] == head and details["feature_dim"] == 128
        # the head is scored on the validation split too (what a tune picks a head by): 180 images
        assert 0.9 <= rows[-1]["val_acc"] and (rows[-1]["val_acc"] * 180) == pytest.approx(
            round(rows[-1]["val_acc"] * 180)
        )
        # its samples/s time the forward pass to the feature layer: that is the work its GFLOP/s counts
        spec = build_spec("cnn_small", (8, 8, 1), 10)
        assert rows[-1]["step_macs"] == forward_macs_to(spec, details["layer"]) < model_cost(spec).forward_macs
        accs[head] = rows[-1]["test_acc"]
        speeds[head] = rows[-1]["samples_per_s"]
        times[head] = rows[-1]["epoch_time_s"]
        assert details["fit_time_s"] > 0  # scikit-learn's fit, the same code in both backends: not the row's time
        # what ran after the extraction, the head's fit among it: the row's time span ends where the extraction
        # did (it was 0, so the span covered the head's fit instead)
        assert rows[-1]["eval_time_s"] >= details["fit_time_s"]
        assert details["scikit_learn_version"] == sklearn_version
        # the extractor's one-off tracing is recorded apart, where it ran (a cached file had no extraction)
        assert (details.get("extraction_warmup_s", 0) > 0) == (not details["features_cached"])
        # other processes' CPUs during the timed extraction, as a training epoch's row has; none for a cached file
        assert math.isfinite(rows[-1]["other_cpus"]) != details["features_cached"], rows[-1]["other_cpus"]
    assert min(accs.values()) >= 0.90, accs
    # only an extracting trial reports an extraction speed; the second head's came from the cache, measured elsewhere
    assert speeds["linear_svc"] > 0 and math.isnan(speeds["random_forest"]) and speeds["rbf_svc"] > 0
    assert not details["features_cached"]
    # the row's time is the backend's extraction, the work the backends are compared on: digits' training,
    # validation and test splits (1,257 + 180 + 360 images) at that speed
    for head in ("linear_svc", "rbf_svc"):
        assert times[head] * speeds[head] == pytest.approx(1257 + 180 + 360, rel=1e-6)
    assert math.isnan(times["random_forest"])
    # a search sample's head is scored on the validation split alone (what the search picks it by), the same head
    sampled, _ = workers[backend](probes.run_strategy, dataclasses.replace(trial, sample=0).to_dict())
    assert math.isnan(sampled[-1]["test_acc"]) and sampled[-1]["val_acc"] == rows[-1]["val_acc"]


def test_deep_features_read_the_source_logits_as_trained_when_the_target_has_another_class_count(workers, tmp_path):
    """Features at the head (here its logits) come from the backbone as trained: five source logits for a
    three-class target, not the outputs of a fresh, random three-unit head (it swapped one in before)."""
    trial = _target(
        tmp_path,
        "deep_features",
        epochs=1,
        task=TaskSpec(classes=(0, 1, 2)),
        transfer=TransferOptions(source_task=HIGH, source_epochs=3, feature_layer="logits"),
    )
    _pretrain(workers, trial)
    rows, _ = workers["torch"](probes.run_strategy, trial.to_dict())
    details = json.loads(rows[-1]["details_json"])
    assert not details["new_head"] and details["feature_dim"] == 5
    spec, backbone, _ = load_checkpoint(checkpoint_path(trial))
    (cached,) = (tmp_path / "features").glob("*.npz")
    with np.load(cached) as stored:
        extracted = stored["train"]
    x_train = derive(load_dataset("digits"), trial.task).x_train
    expected = workers["torch"](probes.logits, spec, backbone, x_train)
    assert np.allclose(extracted, expected, rtol=1e-5, atol=1e-5)
    assert rows[-1]["test_acc"] > 0.6  # three classes: chance is 1/3


def test_transfer_has_frozen_then_unfrozen_phases(workers, cache):
    trial = _target(
        cache, "transfer", epochs=3, transfer=TransferOptions(source_task=HIGH, source_epochs=3, frozen_epochs=1)
    )
    _pretrain(workers, trial)
    rows, _ = workers["torch"](probes.run_strategy, trial.to_dict())
    assert [r["phase"] for r in rows] == ["frozen", "unfrozen", "unfrozen"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[0]["warmup"] and rows[1]["warmup"] and not rows[2]["warmup"]
    assert rows[0]["frozen_params"] > 0 and rows[1]["frozen_params"] == 0
    assert not json.loads(rows[0]["details_json"])["new_head"]  # 5 classes to 5 classes: the head is reused
    # each phase's rows cost its own step: the reused layers frozen, then none
    spec = build_spec("cnn_small", (8, 8, 1), 5, ModelOptions(batchnorm="before"))
    reused = [layer.name for layer in spec.layers if layer.group != "classifier"]
    assert [r["step_macs"] for r in rows] == [step_macs(spec, reused), step_macs(spec), step_macs(spec)]


def test_fine_tune_trains_the_backbone_at_its_rate_and_transfer_trains_it_once_unfrozen_with_its_schedule_anew(
    workers, cache
):
    """What the strategies promise (docs/strategies.md, SUITES S3/S4b), which the backends' agreement cannot show: a
    slip in harness/strategies does the same wrong thing in both. Mutated, fine_tune without its multipliers and
    transfer without a new optimizer once unfrozen passed every test, the unfrozen phase leaving the backbone as
    it was while its rows said frozen_params 0. One full-batch step of plain SGD per epoch, in float64: fine_tune
    moves each backbone parameter by exactly 0.1 of what multiplier 1.0 moves it by, and the new head alike; transfer
    leaves the backbone bit for bit through its frozen epoch and moves it in the unfrozen one, whose schedule
    starts again at its first step."""
    from harness.schedules import ScheduleConfig

    step = dict(epochs=1, batch_size=4096, optimizer=OptimizerConfig(name="sgd", lr=0.05))
    float64 = RuntimeOptions(precision="float64")
    slow = _target(cache, "fine_tune", runtime=float64, **step)  # backbone_lr_multiplier 0.1, the default
    full = dataclasses.replace(slow, transfer=dataclasses.replace(slow.transfer, backbone_lr_multiplier=1.0))
    _pretrain(workers, slow)
    _, backbone, _ = load_checkpoint(checkpoint_path(slow))
    (_, w_slow), (_, w_full) = (workers["torch"](probes.run_strategy, t.to_dict()) for t in (slow, full))
    trained = [n for n in backbone if not n.endswith(("moving_mean", "moving_variance")) and "logits" not in n]
    assert trained and all(n in w_slow for n in trained), sorted(backbone)
    for name in trained:
        moved_slow, moved_full = w_slow[name] - backbone[name], w_full[name] - backbone[name]
        assert np.abs(moved_full).max() > 1e-6, name  # it moved at all
        np.testing.assert_allclose(moved_slow, 0.1 * moved_full, rtol=1e-9, atol=1e-15, err_msg=name)
    head = [n for n in w_slow if n.startswith("logits/")]  # new, at the full rate in both
    assert head and all(np.array_equal(w_slow[n], w_full[n]) for n in head), head
    schedule = ScheduleConfig(name="exponential", steps=1.0)  # each step's rate a tenth of the one before
    frozen_then_not = _target(cache, "transfer", runtime=float64, schedule=schedule, **{**step, "epochs": 2})
    frozen_then_not = dataclasses.replace(frozen_then_not, transfer=dataclasses.replace(slow.transfer, frozen_epochs=1))
    frozen_only = dataclasses.replace(frozen_then_not, epochs=1)
    _pretrain(workers, frozen_then_not)
    _, backbone, _ = load_checkpoint(checkpoint_path(frozen_then_not))
    (_, w_frozen), (rows, w_both) = (
        workers["torch"](probes.run_strategy, t.to_dict()) for t in (frozen_only, frozen_then_not)
    )
    reused = [
        n for n in backbone if n.split("/")[0] in ("conv1", "conv1_bn", "conv2", "conv2_bn")
    ]  # features (no conv bias before BN)
    assert len(reused) == 10 and all(np.array_equal(w_frozen[n], backbone[n]) for n in reused)  # not one bit
    learnt = [n for n in reused if not n.endswith(("moving_mean", "moving_variance"))]
    assert all(np.abs(w_both[n] - backbone[n]).max() > 1e-6 for n in learnt)  # the unfrozen epoch trains them all
    assert [r["phase"] for r in rows] == ["frozen", "unfrozen"] and rows[0]["lr"] == rows[1]["lr"] == 0.05


def _both(workers, trial: TrialConfig) -> dict[str, tuple[list[dict], dict[str, np.ndarray]]]:
    _pretrain(workers, trial)
    return {b: workers[b](probes.run_strategy, dataclasses.replace(trial, backend=b).to_dict()) for b in BACKENDS}


def _assert_same_training(results, label: str) -> None:
    (rows_t, w_t), (rows_f, w_f) = results["torch"], results["tensorflow"]
    diff = max_abs_diff(w_t, w_f)
    assert diff <= 1e-5, f"{label}: weights differ by {diff:.2e} across backends"
    assert [r["phase"] for r in rows_t] == [r["phase"] for r in rows_f]
    assert np.allclose([r["train_loss"] for r in rows_t], [r["train_loss"] for r in rows_f], rtol=1e-5, atol=1e-6)
    assert [r["test_acc"] for r in rows_t][-1] == [r["test_acc"] for r in rows_f][-1]


def test_freeze_early_trains_the_backbone_layers_it_leaves_at_fine_tunes_rate(workers, cache):
    """S3's variant is S3 with the early layers frozen: the backbone layers it left training (cnn_small's fc1) took
    the head's rate, so a suite's freeze_early against fine_tune changed the backbone's rate with the freezing, and
    --backbone-lr-multiplier was recorded but never applied. One plain-SGD step: fc1 moves by the multiplier times
    the head-rate move, the new head by the full move, the frozen layers not at all."""
    moves: dict[tuple[str, float], dict[str, np.ndarray]] = {}
    for multiplier in (1.0, 0.1):
        trial = _target(
            cache,
            "freeze_early",
            epochs=1,
            batch_size=64,
            task=dataclasses.replace(LOW, train_limit=64),  # one batch: one step
            optimizer=OptimizerConfig("sgd", lr=0.05),
            transfer=TransferOptions(source_task=HIGH, source_epochs=3, backbone_lr_multiplier=multiplier),
        )
        _pretrain(workers, trial)
        _, backbone, _ = load_checkpoint(checkpoint_path(trial))
        for backend in BACKENDS:
            rows, trained = workers[backend](probes.run_strategy, dataclasses.replace(trial, backend=backend).to_dict())
            assert rows[-1]["details_json"] and json.loads(rows[-1]["details_json"])["backbone_lr_multiplier"] == (
                multiplier
            )
            moves[(backend, multiplier)] = {k: trained[k] - backbone[k] for k in ("conv1/kernel", "fc1/kernel")}
            moves[(backend, multiplier)]["new head"] = trained["logits/kernel"]  # drawn anew, not the backbone's
    # a move is a difference of float32 weights: it carries up to one unit in the last place of the weights
    ulp = float(np.spacing(np.abs(backbone["fc1/kernel"]).max()))
    for backend in BACKENDS:
        full, tenth = moves[(backend, 1.0)], moves[(backend, 0.1)]
        assert np.abs(full["fc1/kernel"]).max() > 1e-4  # it trains
        assert np.allclose(tenth["fc1/kernel"], 0.1 * full["fc1/kernel"], rtol=1e-5, atol=ulp), backend
        assert np.array_equal(tenth["new head"], full["new head"]), backend  # the head at its own rate
        assert not np.abs(full["conv1/kernel"]).max() and not np.abs(tenth["conv1/kernel"]).max()  # frozen


@pytest.mark.parametrize("strategy", ["feature_extraction", "fine_tune", "freeze_early"])
def test_each_strategy_leaves_the_same_weights_in_both_backends(workers, cache, strategy):
    # cnn_small with BatchNorm and both dropout layers: frozen BN, per-group rates and shared masks all at once
    _assert_same_training(_both(workers, _target(cache, strategy)), strategy)


@pytest.mark.parametrize("epochs", [1, 3], ids=["frozen_phase", "both_phases"])
def test_each_transfer_phase_leaves_the_same_weights_in_both_backends(workers, cache, epochs):
    transfer = TransferOptions(source_task=HIGH, source_epochs=3, frozen_epochs=1)
    trial = _target(cache, "transfer", epochs=epochs, transfer=transfer)
    _assert_same_training(_both(workers, trial), f"transfer, {epochs} epoch(s)")


@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-5), ("float64", 1e-12)])
def test_deep_features_and_a_random_forest_on_them_agree_across_backends(workers, cache, precision, tolerance):
    """The features of a backbone xfbench pretrained (in both backends from the same recipe) agree to the precision's
    rounding and come in the run's variable type (float64 features for a float64 run); a random forest on them
    reaches the same accuracy."""
    trial = TrialConfig(
        strategy="deep_features",
        model="convnet3",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=1,
        cache_dir=str(cache),
        transfer=TransferOptions(source_epochs=2, feature_layer="flatten", sklearn_head="random_forest"),
        runtime=RuntimeOptions(precision=precision),
    )
    _pretrain(workers, trial)
    features = {
        b: workers[b](probes.backbone_features, dataclasses.replace(trial, backend=b).to_dict()) for b in BACKENDS
    }
    assert features["torch"].shape == features["tensorflow"].shape == (len(features["torch"]), 8 * 8 * 16)
    assert features["torch"].dtype == features["tensorflow"].dtype == np.dtype(precision)
    scale = max(1.0, float(np.abs(features["torch"]).max()))
    assert np.abs(features["torch"] - features["tensorflow"]).max() <= tolerance * scale
    rows = {
        b: workers[b](probes.run_strategy, dataclasses.replace(trial, backend=b).to_dict())[0][-1] for b in BACKENDS
    }
    for split in ("test_acc", "val_acc"):
        assert rows["torch"][split] == rows["tensorflow"][split] > 0.8, (split, rows)


def test_tensorflows_feature_extractor_is_traced_once_so_the_timed_extraction_runs_an_existing_trace(workers, digits):
    """deep_features times its extraction after an untimed warm-up batch: that only helps if the timed call reuses
    the warm-up's trace (TensorFlow traced a new extractor on every call before)."""
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 0)
    layer = spec.inputs_of(len(spec.layers) - 1)[0]
    traces, warm, full = workers["tensorflow"](probes.extraction_traces, spec, weights, digits.x_test, layer)
    assert traces == 1
    # The same trace on a batch of 3 and of 100: bit-identical on an AVX-512 Xeon; on an AMD EPYC (AVX2) oneDNN
    # blocks the convolutions by batch size and sums in another order, 7.4e-7 apart at a scale of 3.35 (2 ulps).
    ulps = 8 * float(np.finfo(np.float32).eps) * max(1.0, float(np.abs(full).max()))
    assert np.abs(warm - full).max() <= ulps


def _torch_features_both_ways(_backend: str, runtime: RuntimeOptions, channels: int) -> list[tuple]:
    """In the torch worker: each layer's features from extract_features, beside those of the path it took before
    (the whole split transposed to NCHW on the host, each batch's output to the host, the maps back to NHWC there),
    on a read-only split of 20 images in batches of 7; and the 4-D arrays the host transposition met."""
    import torch

    import backends.torch.adapter as adapter
    from harness.backend import load_backend
    from harness.inference_batches import batch_slices
    from harness.shapes import infer_shapes

    spec = build_spec("cnn_small", (8, 8, channels), 5, ModelOptions(batchnorm="after"))
    backend = load_backend("torch", runtime)
    backend.build(spec, initial_weights(spec, "he_normal", 0), seed=0)
    x = np.random.default_rng(0).normal(size=(20, 8, 8, channels)).astype(np.float32)
    x.setflags(write=False)  # as a split shipped through Ray's object store is
    host_transposed: list[tuple[int, ...]] = []
    to_torch = adapter.images_to_torch
    adapter.images_to_torch = lambda a: host_transposed.append(a.shape) or to_torch(a)  # type: ignore[assignment]
    try:
        new = {layer: backend.extract_features(x, layer, 7) for layer in ("act2", "pool", "flatten", "fc1")}
    finally:
        adapter.images_to_torch = to_torch
    old = {}
    with torch.no_grad():
        xt = backend._images(x)
        for layer in new:
            run, dtype = backend._extractors[layer].eval(), backend._variable_dtype()
            out = np.concatenate([run(xt[s]).to(dtype).cpu().numpy() for s in batch_slices(len(xt), 7)])
            if out.ndim == 4:
                out = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
            elif (origin := infer_shapes(spec)[layer].flattened_from) is not None:
                h, w, c = origin
                out = np.ascontiguousarray(out.reshape(len(out), c, h, w).transpose(0, 2, 3, 1).reshape(len(out), -1))
            old[layer] = out
    return [
        (layer, new[layer].shape, new[layer].dtype, new[layer].flags.c_contiguous, old[layer], new[layer])
        for layer in new
    ] + [("host transposed", host_transposed)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "runtime",
    [
        RuntimeOptions(threads=1),
        RuntimeOptions(threads=1, channels_last=True),
        RuntimeOptions(threads=1, precision="float64"),
    ],
    ids=["float32", "channels_last", "float64"],
)
def test_torch_extracts_features_in_the_neutral_layout_per_batch_bit_for_bit_as_before(workers, runtime, channels):
    """torch's extraction transposed every split NHWC -> NCHW on the host and the maps it returned NCHW -> NHWC on
    the host, inside deep_features' timer (TensorFlow, NHWC throughout, pays neither); now each batch's layout
    changes on the device. The same bits as before, in the neutral layout, contiguous; a 1-channel batch keeps the
    standard strides (permuted, torch read it as channels_last and ran other convolutions)."""
    *layers, (_, host_transposed) = workers["torch"](_torch_features_both_ways, runtime, channels)
    assert host_transposed == [], "the split was transposed on the host"
    shapes = {layer: shape for layer, shape, *_ in layers}
    assert shapes == {"act2": (20, 4, 4, 32), "pool": (20, 2, 2, 32), "flatten": (20, 128), "fc1": (20, 128)}
    for layer, _, dtype, contiguous, old, new in layers:
        assert dtype == np.dtype(runtime.variable_dtype) and contiguous, layer
        assert new.dtype == old.dtype and np.array_equal(new, old), f"{layer}: {np.abs(new - old).max()}"


class _NaNValidation:
    """A backend whose training loss stays finite while its validation loss is NaN: what TensorFlow did when
    BatchNorm's moving variance broke (one-sample batches), which was recorded as ok."""

    def train_epoch(self, split, batches, lrs, momenta=None, augment=None, *, first_step):
        return StepStats(loss_sum=float(len(batches)), correct=1, count=sum(len(b) for b in batches))

    def evaluate(self, split, batch_size):
        return StepStats(loss_sum=math.nan, correct=0, count=10)


def test_a_nan_validation_loss_after_a_finite_training_loss_is_diverged():
    records = []
    plan = PhasePlan("train", epochs=3, batch_size=4, eval_batch_size=10, seed=0, base_lr=0.1)
    status = train_phase(_NaNValidation(), 20, plan, records.append)  # type: ignore[arg-type]
    assert status == "diverged"
    assert [(r.epoch, r.status) for r in records] == [(1, "diverged")]  # stopped at the first such epoch


class _FiniteTraining(_NaNValidation):
    def evaluate(self, split, batch_size):
        return StepStats(loss_sum=1.0, correct=5, count=10)


def test_the_recorded_rate_is_the_configured_one_not_its_float32_widened_to_float64():
    """The steps take a float32 rate; recorded as float(np.float32(1e-06)), the results' lr column read
    9.999999974752427e-07 for a configured 1e-06."""
    records = []
    for lr in (1e-6, 0.1, 3e-4):
        plan = PhasePlan("train", epochs=1, batch_size=4, eval_batch_size=10, seed=0, base_lr=lr)
        train_phase(_FiniteTraining(), 20, plan, records.append)  # type: ignore[arg-type]
    assert [r.lr for r in records] == [1e-6, 0.1, 3e-4]


class _Recording(_FiniteTraining):
    """A backend that trains at once, evaluates slowly and notes each train_epoch's first step and rates."""

    def __init__(self, eval_s: float = 0.0) -> None:
        self.eval_s, self.first_steps, self.rates = eval_s, [], []

    def train_epoch(self, split, batches, lrs, momenta=None, augment=None, *, first_step):
        self.first_steps.append(first_step)
        self.rates.append([float(r) for r in lrs])
        return super().train_epoch(split, batches, lrs, momenta, augment, first_step=first_step)

    def evaluate(self, split, batch_size):
        import time

        time.sleep(self.eval_s)
        return super().evaluate(split, batch_size)


def test_an_epochs_time_is_its_training_steps_and_evaluation_is_timed_apart():
    """DESIGN: throughput excludes evaluation. The timer stopping after validation passed every timing test."""
    import time

    def slow_final(backend):
        time.sleep(0.2)
        return {"test_acc": 0.5}

    records = []
    plan = PhasePlan("train", epochs=2, batch_size=4, eval_batch_size=10, seed=0, base_lr=0.1)
    train_phase(_Recording(eval_s=0.2), 20, plan, records.append, final_metrics=slow_final)  # type: ignore[arg-type]
    assert all(r.epoch_time_s < 0.05 <= 0.2 <= r.eval_time_s for r in records), records
    assert records[-1].eval_time_s >= 0.4 and records[-1].test_acc == 0.5  # the final metrics count as evaluation


def test_steps_count_on_across_phases_and_the_recorded_rate_is_the_epochs_last_step():
    """first_step keys the shared dropout masks: an unfrozen phase that started again at 0 replayed the frozen
    phase's masks in both backends alike, which every agreement test passed. The lr column is the epoch's last
    step's rate: a first step's passed, every test's rate being constant within an epoch."""
    from harness.schedules import ScheduleConfig

    backend, records = _Recording(), []
    decay = ScheduleConfig(name="exponential", steps=4.0)
    frozen = PhasePlan("frozen", epochs=2, batch_size=4, eval_batch_size=10, seed=0, base_lr=0.1, schedule=decay)
    train_phase(backend, 20, frozen, records.append)  # type: ignore[arg-type]
    unfrozen = dataclasses.replace(frozen, phase="unfrozen", epochs=2, epoch_offset=2)
    train_phase(backend, 20, unfrozen, records.append)  # type: ignore[arg-type]
    assert backend.first_steps == [0, 5, 10, 15]  # 5 steps an epoch, counted since the model was built
    assert all(rates[0] > rates[-1] for rates in backend.rates)  # the rate moves within each epoch
    assert [r.lr for r in records] == [float(str(np.float32(rates[-1]))) for rates in backend.rates]
    assert records[2].lr == records[0].lr  # each phase's schedule starts again


@dataclasses.dataclass(frozen=True)
class _SlowKeys:
    """TrainingKeys whose hashing takes ``delay_s``: an epoch's timer that covered it would read that long."""

    inner: object
    delay_s: float

    def epoch(self, first_step: int, steps: int) -> np.ndarray:
        import time

        time.sleep(self.delay_s)
        return self.inner.epoch(first_step, steps)  # type: ignore[attr-defined]


class _KeyedRecording(_Recording):
    """A backend whose steps key shared dropout masks (``keys``; None: framework masks): notes the keys received."""

    def __init__(self, keys) -> None:
        super().__init__()
        self.keys, self.received = keys, []

    def training_dropout_keys(self):
        return self.keys

    def train_epoch(self, split, batches, lrs, momenta=None, augment=None, *, first_step, dropout_keys=None):
        self.received.append(dropout_keys)
        return super().train_epoch(split, batches, lrs, momenta, augment, first_step=first_step)


def test_the_harness_hashes_each_epochs_dropout_keys_before_its_timer_and_only_for_shared_masks():
    """Each adapter hashed its epoch's keys inside train_epoch, so inside the epoch's timer (9 ms of an 860-step
    epoch), and TensorFlow's hashed and uploaded them under --dropout-rng framework too, where no step reads them.
    The harness now hashes them (vectorised) before the timer and hands them over; a backend keying no masks gets
    none."""
    from harness.dropout_rng import STREAM_TRAIN, TrainingKeys, step_keys

    plan = PhasePlan("train", epochs=2, batch_size=4, eval_batch_size=10, seed=0, base_lr=0.1)
    source = TrainingKeys(seed=5, layers=(2, 6))
    backend, records = _KeyedRecording(_SlowKeys(source, 0.1)), []
    train_phase(backend, 20, plan, records.append)  # type: ignore[arg-type]
    assert backend.first_steps == [0, 5]
    for first, keys in zip(backend.first_steps, backend.received, strict=True):
        assert keys.tolist() == [step_keys(5, STREAM_TRAIN, s, [2, 6]) for s in range(first, first + 5)]
    assert all(r.epoch_time_s < 0.05 for r in records), records  # the 0.1 s of hashing fell outside the timer
    unkeyed = _KeyedRecording(None)  # framework masks, or no dropout layer
    train_phase(unkeyed, 20, plan, records.append)  # type: ignore[arg-type]
    assert unkeyed.received == [None, None]


class _Transferring:
    """What transfer asks of a backend around its phases, on top of training and evaluating."""

    def freeze_layers(self, frozen_layers):
        pass

    def set_optimizer(self, config, regularization=None, lr_multipliers=None):
        pass

    def parameter_counts(self):
        return 1, 2


class _TransferDiverging(_Transferring, _NaNValidation):
    pass


class _TransferTraining(_Transferring, _FiniteTraining):
    pass


def _run_transfer(monkeypatch, backend, epochs: int, frozen_epochs: int) -> tuple[str, list]:
    """run_transfer on ``backend`` from a stand-in backbone, its final metrics a fixed test and MC accuracy."""
    from harness.strategies import StrategyContext, reuse

    digits = load_dataset("digits")
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    monkeypatch.setattr(reuse, "start_from_backbone", lambda ctx, head: (digits, spec, {}))
    monkeypatch.setattr(reuse, "final_metrics", lambda ctx, b: {"test_acc": 0.25, "mc_test_acc": 0.2})
    trial = TrialConfig(
        strategy="transfer",
        model="cnn_small",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=epochs,
        transfer=TransferOptions(frozen_epochs=frozen_epochs),
    )
    records: list = []
    status = reuse.run_transfer(StrategyContext(trial, backend, digits, records.append))
    return status, records


@pytest.mark.parametrize("case", ["one phase", "transfer frozen 1 of 3 epochs"])
def test_final_metrics_are_taken_on_the_epoch_that_diverged(case, monkeypatch):
    """eval_time_s and the final metrics cover "the last epoch, or the one that diverged" (results schema).
    transfer's frozen phase with unfrozen epochs to come took none: its diverged trial had no test_acc and no mc_
    columns, where the same divergence frozen throughout had both."""
    if case == "one phase":
        records: list = []
        plan = PhasePlan("train", epochs=3, batch_size=4, eval_batch_size=10, seed=0, base_lr=0.1)
        final = lambda backend: {"test_acc": 0.25, "mc_test_acc": 0.2}  # noqa: E731
        status = train_phase(_NaNValidation(), 20, plan, records.append, final_metrics=final)  # type: ignore[arg-type]
    else:
        status, records = _run_transfer(monkeypatch, _TransferDiverging(), epochs=3, frozen_epochs=1)
    assert status == "diverged"
    assert [(r.epoch, r.status, r.test_acc, r.extra.get("mc_test_acc")) for r in records] == [
        (1, "diverged", 0.25, 0.2)
    ]


def test_transfer_takes_its_final_metrics_once_after_its_unfrozen_phase(monkeypatch):
    """A frozen phase that an unfrozen one follows ends without the final metrics: they describe the trained
    model, on the trial's last row alone."""
    status, records = _run_transfer(monkeypatch, _TransferTraining(), epochs=3, frozen_epochs=1)
    assert status == "ok"
    finals = [
        (r.phase, r.epoch, None if math.isnan(r.test_acc) else r.test_acc, r.extra.get("mc_test_acc")) for r in records
    ]
    assert finals == [("frozen", 1, None, None), ("unfrozen", 2, None, None), ("unfrozen", 3, 0.25, 0.2)]


class _CapabilityRecording(_Transferring, _FiniteTraining):
    """Notes the backend capabilities a strategy exercises: a freeze of some layer ("freeze"), a learning-rate
    multiplier other than 1 ("per_group_lr")."""

    def __init__(self) -> None:
        self.exercised: set[str] = set()

    def freeze_layers(self, frozen_layers):
        if frozen_layers:
            self.exercised.add("freeze")

    def set_optimizer(self, config, regularization=None, lr_multipliers=None):
        if any(m != 1.0 for m in (lr_multipliers or {}).values()):
            self.exercised.add("per_group_lr")


@pytest.mark.parametrize("strategy", ["feature_extraction", "fine_tune", "freeze_early", "transfer"])
def test_each_reuse_strategy_declares_every_capability_it_exercises(strategy, monkeypatch):
    """freeze_early froze layers and passed fine_tune's multipliers, but declared "freeze" alone: a backend that
    froze without per-group rates passed the capability check and trained its backbone at the head's rate."""
    from harness.backend import STRATEGY_NEEDS
    from harness.strategies import StrategyContext, get_strategy, reuse, strategy_phases

    digits = load_dataset("digits")
    spec = build_spec("cnn_small", (8, 8, 1), 10, ModelOptions())
    monkeypatch.setattr(reuse, "start_from_backbone", lambda ctx, head: (digits, spec, {}))
    monkeypatch.setattr(reuse, "final_metrics", lambda ctx, b: {"test_acc": 0.25})
    trial = TrialConfig(
        strategy=strategy,
        model="cnn_small",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=2,
        transfer=TransferOptions(frozen_epochs=1 if strategy == "transfer" else None),
    )
    backend, records = _CapabilityRecording(), []
    assert get_strategy(strategy)(StrategyContext(trial, backend, digits, records.append)) == "ok"
    assert backend.exercised, f"{strategy} exercised no capability: the recording backend missed a call"
    assert backend.exercised <= set(STRATEGY_NEEDS[strategy]), (strategy, backend.exercised)
    # the phases its rows name are those the results schema is checked against (tests/test_results.py)
    assert tuple(dict.fromkeys(r.phase for r in records)) == strategy_phases()[strategy]


def _spec_file(path: Path, hidden: int) -> None:
    layers = [
        {"type": "Flatten", "name": "flat", "group": "features", "inputs": []},
        {"type": "Dense", "name": "hidden", "group": "features", "inputs": [], "units": hidden, "use_bias": True},
        {"type": "Activation", "name": "act", "group": "features", "inputs": [], "kind": "relu"},
        {"type": "Dense", "name": "out", "group": "classifier", "inputs": [], "units": 10, "use_bias": True},
    ]
    path.write_text(json.dumps({"name": "net", "input_shape": [8, 8, 1], "num_classes": 10, "layers": layers}))


def test_a_backbone_of_a_spec_file_or_a_python_model_is_keyed_by_its_content(tmp_path, monkeypatch):
    """A recipe named a spec file or a python: module by its name alone: net.json edited from 32 to 512 hidden
    units between two fine-tunes reused the 32-unit backbone. Its content is in the key: an edit is another
    backbone (a pretrain trial is scheduled), the same content the same one."""
    net = tmp_path / "net.json"
    _spec_file(net, 32)
    target = _target(tmp_path / "cache", "fine_tune", model=str(net), model_options=ModelOptions())
    key = recipe_for(target).key
    path = checkpoint_path(target)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the 32-unit backbone")
    assert pretrain_trials([target]) == []  # cached
    _spec_file(net, 32)  # written again, the same content: the same backbone
    assert recipe_for(target).key == key
    _spec_file(net, 512)
    assert recipe_for(target).key != key
    assert [recipe_for(job).key for job in pretrain_trials([target])] == [recipe_for(target).key]
    _spec_file(net, 32)
    assert recipe_for(target).key == key

    monkeypatch.chdir(tmp_path)
    module = tmp_path / "my_nets.py"
    module.write_text("WIDTH = 32\n\n\ndef make(num_classes):\n    ...\n")
    target = dataclasses.replace(target, model="python:my_nets:make")
    key = recipe_for(target).key
    assert recipe_for(target).key == key
    module.write_text("WIDTH = 512\n\n\ndef make(num_classes):\n    ...\n")
    assert recipe_for(target).key != key
    module.write_text("WIDTH = 32\n\n\ndef make(num_classes):\n    ...\n")
    assert recipe_for(target).key == key


def test_cache_keys_record_keras_and_torchvision_versions_without_importing_a_framework(monkeypatch):
    """Keras (a package beside TensorFlow: the importer, keras.applications, the .weights.h5 layout) and
    torchvision (the architectures) change what a backbone or a conversion holds, as the frameworks do: their
    versions are in the keys, read from package metadata as the frameworks' are (the driver imports neither)."""
    import importlib.metadata
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from harness.cachekeys import code_versions\n"
        "print(json.dumps({'versions': {b: code_versions(b) for b in ('torch', 'tensorflow')},\n"
        "                  'imported': sorted(m for m in ('torch', 'tensorflow', 'keras', 'torchvision')\n"
        "                                     if m in sys.modules)}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    out = json.loads(run.stdout)
    assert out["imported"] == []
    for backend, library in (("torch", "torchvision"), ("tensorflow", "keras")):
        assert f"{library} {importlib.metadata.version(library)}" in out["versions"][backend]["libraries"]
    zoo_by_torch = _target(Path("/tmp/cache"), "fine_tune")
    zoo_by_tf = dataclasses.replace(zoo_by_torch, transfer=TransferOptions(source_backend="tensorflow"))
    keras_by_torch = dataclasses.replace(zoo_by_torch, model="keras:MobileNetV2", model_options=ModelOptions())
    keys = [recipe_for(t).key for t in (zoo_by_torch, zoo_by_tf, keras_by_torch)]
    real = importlib.metadata.version
    from harness.cachekeys import companion_versions

    for library, changed in (("torchvision", [True, False, True]), ("keras", [False, True, True])):
        # another version of one library: the keys of what it trains or converts change (keras_by_torch: both);
        # the versions are read once per process, so the test forgets them around each make-believe install
        monkeypatch.setattr(
            importlib.metadata, "version", lambda name, lib=library: "0.0" if name == lib else real(name)
        )
        companion_versions.cache_clear()
        try:
            now = [recipe_for(t).key for t in (zoo_by_torch, zoo_by_tf, keras_by_torch)]
        finally:
            monkeypatch.undo()
            companion_versions.cache_clear()
        assert [a != b for a, b in zip(now, keys, strict=True)] == changed, library


def test_a_trial_checks_the_data_it_reads_from_its_nodes_files_not_the_driver_s_copy_shipped_to_it(workers):
    """Each worker trial hashed every pixel of its dataset (0.13 s on MNIST, 0.4 s on CIFAR-10), also the copy the
    driver shipped, which preflight had hashed: only data a node reads from its own files can differ. The trial
    trains in the torch worker: the pytest process imports no framework."""
    from harness.data import registry
    from harness.trial import RunInfo, run_trial

    digits = load_dataset("digits")
    stale = TrialConfig("scratch", "mlp", "digits", "torch", seed=0, epochs=1, data_key="sha256:0000000000000000")
    with pytest.raises(InputError, match=r"Expected the digits data the run began with \(content sha256:0000"):
        run_trial(stale, RunInfo("r", "c"), lambda row: None)  # read from this node's files: checked
    keyed = dataclasses.replace(stale, data_key=registry.FULL_CONTENT + "0" * 16)
    assert workers["torch"](probes.shipped_trial_hashes, keyed, digits) == ("ok", 0)
    # so a resume checks what it ships: it reads the files again after its preflight, Ray starting in between
    from harness.runner import _shipped_as_recorded
    from harness.scheduler import SchedulerSettings

    settings = SchedulerSettings(Path("/").resolve(), ship_data="always")
    current = dataclasses.replace(stale, data_key=registry.data_fingerprint(digits))
    for trials in ([stale], [stale, current], [current, stale], [dataclasses.replace(stale, data_key=None), stale]):
        with pytest.raises(InputError, match=r"Expected the digits data the run began with \(content sha256:0000"):
            _shipped_as_recorded(trials, settings)
    assert set(_shipped_as_recorded([current, dataclasses.replace(current, seed=1)], settings)) == {"digits"}


def test_a_model_file_edited_since_the_run_began_is_refused_by_its_trials_and_a_resume(tmp_path):
    """A spec file (or python: module) edited during a run, or before a resume, trained another network under the
    case's name, beside the other backend's trials of the first: each trial now carries what the model's files held
    when the run began (model_key), and a trial or a resume that finds other content refuses."""
    from harness.model_import import check_model_content
    from harness.plan import RunPlan
    from harness.preflight import preflight
    from harness.trial import RunInfo, run_trial

    net = tmp_path / "net.json"
    _spec_file(net, 32)
    trial = TrialConfig("scratch", str(net), "digits", "torch", seed=0, epochs=1)
    (keyed,) = RunPlan.of_trials([trial]).with_model_keys().trials
    assert keyed.model_key and keyed.model_key.startswith("spec ")
    check_model_content(keyed.model, keyed.model_key)  # unchanged: taken
    _spec_file(net, 64)
    refused = r"Expected model .*net.json as the run began \(spec .*\). Received: its files hold other content now"
    with pytest.raises(InputError, match=refused):
        run_trial(keyed, RunInfo("r", "c"), lambda row: None)
    with pytest.raises(InputError, match=refused):
        preflight([keyed], None, download=False, resumed=True)
    (zoo,) = RunPlan.of_trials([dataclasses.replace(trial, model="mlp")]).with_model_keys().trials
    assert zoo.model_key == ""  # xfbench's own model: its code, in every cache key, defines it
