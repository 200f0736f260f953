"""S5 techniques: every option means the same thing in both backends (parameters within 1e-5 after 20 steps)."""

from __future__ import annotations

import dataclasses
import json
import math
import tracemalloc

import backend_probes as probes
import numpy as np
import pytest
from conftest import assert_parameters_agree, max_abs_diff

from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions, TrialConfig
from harness.data.batching import epoch_batches
from harness.dropout_rng import (
    STREAM_MC,
    STREAM_TRAIN,
    drop_threshold,
    dropout_layer_indices,
    element_hashes,
    hash32,
    keep_mask,
    reference_dropout,
    step_key,
    step_keys,
)
from harness.mc_dropout import mc_metrics_from_logits
from harness.models import ModelOptions, build_spec
from harness.schedules import PlateauTracker, ScheduleConfig, lr_at, momentum_at
from harness.spec import ACTIVATIONS
from harness.weights import INITIALIZERS, initial_weights

STEPS = 20
TOLERANCE = 1e-5


def _closed_form(name: str, t: int, lr0: float, total: int) -> float:
    """The schedules' formulas, written out independently of harness.schedules."""
    if name == "constant":
        return lr0
    if name == "power":
        return lr0 / (1 + t / 5.0) ** 1.5
    if name == "exponential":
        return lr0 * 0.1 ** (t / 8.0)
    if name == "piecewise":
        return 0.05 if t < 5 else (0.02 if t < 12 else 0.005)
    # 1cycle: up to the step nearest 45 %, down until 90 %, then to max/10/1000 at the last step
    lo, up, down = lr0 / 10, max(1, round(0.45 * total + 1e-9)), 0.9 * total
    if t < up:
        return lo + (lr0 - lo) * t / up
    if t < down:
        return lr0 - (lr0 - lo) * (t - up) / (down - up)
    return lo + (lo / 1000 - lo) * (t - down) / (total - 1 - down)


SCHEDULE_CONFIGS = {
    "constant": ScheduleConfig("constant"),
    "power": ScheduleConfig("power", steps=5.0, power=1.5),
    "exponential": ScheduleConfig("exponential", steps=8.0),
    "piecewise": ScheduleConfig("piecewise", boundaries=(5, 12), values=(0.05, 0.02, 0.005)),
    "onecycle": ScheduleConfig("onecycle"),
}


def _mlp(digits, **options):
    return build_spec("mlp", digits.input_shape, digits.num_classes, ModelOptions(hidden=(32,), **options))


def _train_both(
    workers, digits, spec, optimizer, lrs=None, momenta=None, regularization=RegularizationConfig(), seed=0
):
    weights = initial_weights(spec, "he_normal", seed)
    batches = epoch_batches(len(digits.y_train), 32, seed, 1)[:STEPS]
    args = (spec, weights, optimizer, digits.x_train, digits.y_train, batches, lrs, momenta, regularization)
    results = {b: workers[b](probes.train, *args) for b in ("torch", "tensorflow")}
    return weights, results


@pytest.mark.parametrize("name", sorted(SCHEDULE_CONFIGS))
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_schedules_apply_the_closed_form_learning_rate_at_every_step_in_both_backends(workers, digits, name, optimizer):
    lr0 = 0.05 if optimizer == "momentum" else 0.01
    schedule = SCHEDULE_CONFIGS[name]
    steps = np.arange(STEPS)
    lrs = lr_at(schedule, lr0, steps, STEPS).astype(np.float32)
    momenta = momentum_at(schedule, steps, STEPS)
    expected = [_closed_form(name, t, lr0, STEPS) for t in range(STEPS)]
    assert np.allclose(lrs, expected, rtol=1e-6)
    _, results = _train_both(
        workers,
        digits,
        _mlp(digits),
        OptimizerConfig(optimizer, lr=lr0),
        lrs,
        None if momenta is None else momenta.astype(np.float32),
    )
    for backend, (_, _, trace) in results.items():
        assert np.allclose(trace, expected, rtol=1e-6), f"{backend} applied other learning rates"
    diff = max_abs_diff(results["torch"][0], results["tensorflow"][0])
    assert diff <= TOLERANCE, f"{name}/{optimizer}: parameters differ by {diff:.2e}"


def test_onecycle_cycles_momentum_095_085_095():
    m = momentum_at(ScheduleConfig("onecycle"), np.arange(100), 100)
    assert m[0] == pytest.approx(0.95) and m[45] == pytest.approx(0.85) and m[90:].tolist() == [0.95] * 10
    lr = lr_at(ScheduleConfig("onecycle"), 1.0, np.arange(100), 100)
    assert lr[0] == pytest.approx(0.1) and lr[45] == pytest.approx(1.0) and lr[99] == pytest.approx(1e-4)


@pytest.mark.parametrize("steps", [3, 5, 10, 11, 12, 19, 21, 37])
def test_onecycle_reaches_max_lr_and_min_momentum_on_a_step_whatever_the_phases_length(steps):
    """The peak sat at 0.45 * steps, between two steps unless a whole number: 10 steps peaked at 0.9 max_lr, 12 at
    0.933, 21 at 0.957, against SUITES.md's rise to max_lr."""
    t = np.arange(steps)
    lr = lr_at(ScheduleConfig("onecycle"), 1.0, t, steps)
    momentum = momentum_at(ScheduleConfig("onecycle"), t, steps)
    assert lr.max() == pytest.approx(1.0) and momentum.min() == pytest.approx(0.85)
    assert int(np.argmax(lr)) == int(np.argmin(momentum)) == round(0.45 * steps + 1e-9)


@pytest.mark.parametrize("steps", [2, 3, 5, 10, 11])
def test_a_short_onecycle_still_ends_annealed_with_its_momentum_back_up(steps):
    """A phase of 10 steps or fewer (a smoke epoch, a short frozen phase) has no step after 90 % of its length but its
    last: it ended at max_lr / 10 (10 steps) or midway down (5). Its last step anneals to max_lr / 10 / 1000."""
    t = np.arange(steps)
    lr = lr_at(ScheduleConfig("onecycle"), 1.0, t, steps)
    assert lr[0] == pytest.approx(0.1) and lr[-1] == pytest.approx(1e-4) and all(lr[1:-1] >= 0.1 - 1e-12)
    assert momentum_at(ScheduleConfig("onecycle"), t, steps)[-1] == pytest.approx(0.95)


@pytest.mark.parametrize("patience, threshold", [(2, 1e-4), (0, 1e-4), (0, 0.25), (1, 0.05)])
def test_plateau_tracker_matches_pytorchs_reduce_lr_on_plateau(workers, patience, threshold):
    losses = [1.0, 0.9, 0.9, 0.95, 0.91, 0.89999, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.4, 0.3, 0.28, 0.2]
    reference = workers["torch"](probes.torch_plateau_scales, losses, 0.5, patience, threshold)
    tracker = PlateauTracker(factor=0.5, patience=patience, threshold=threshold)
    assert [tracker.step(v) for v in losses] == pytest.approx(reference)


def test_plateau_schedule_in_whole_trials_gives_the_same_rows_in_both_backends(workers):
    config = TrialConfig(
        strategy="scratch",
        model="mlp",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=6,
        model_options=ModelOptions(hidden=(16,)),
        optimizer=OptimizerConfig("momentum", lr=0.5),
        schedule=ScheduleConfig("plateau", factor=0.5, patience=0),
    )
    rows = {
        b: workers[b](probes.trial_rows, dataclasses.replace(config, backend=b).to_dict(), "plateau")
        for b in ("torch", "tensorflow")
    }
    lrs = {b: [r["lr"] for r in rs] for b, rs in rows.items()}
    assert lrs["torch"] == lrs["tensorflow"] and min(lrs["torch"]) < 0.5  # the plateau did reduce the rate
    # six epochs at lr 0.5 apart by float32 rounding only: measured at most 1.0e-6 relative
    assert np.allclose(
        [r["val_loss"] for r in rows["torch"]], [r["val_loss"] for r in rows["tensorflow"]], rtol=1e-5, atol=0
    )


@pytest.mark.parametrize("suite", ["techniques", "techniques_smoke"])
def test_the_techniques_suites_plateau_case_reduces_the_rate_within_its_epochs_alike_in_both_backends(workers, suite):
    """The sweep's sched_plateau is there to show a reduction: with patience 1 and PyTorch's threshold it had trained
    5 epochs at a constant rate, indistinguishable from opt_momentum, and CI's smoke tier, in 3 epochs, had too."""
    from harness.planner import suite_case_trials
    from harness.suites import SUITES

    chosen = SUITES[suite]
    (case,) = [c for c in chosen.cases if c.variant == "sched_plateau"]
    trials = suite_case_trials(chosen, case, ("torch", "tensorflow"), 1, {})
    lrs = {t.backend: [r["lr"] for r in workers[t.backend](probes.trial_rows, t.to_dict(), "plateau")] for t in trials}
    base = np.float32(case.optimizer.lr)
    assert lrs["torch"] == lrs["tensorflow"] and lrs["torch"][0] == base and lrs["torch"][-1] == base * 0.5


def test_the_techniques_suites_adamw_case_decays_enough_to_train_apart_from_adam(workers):
    """opt_adamw at AdamW's default decay (0.01) had measured Adam again: losses within 0.1 % of opt_adam's, the same
    accuracy per seed, so a backend whose decoupled decay was wrong or missing would have passed it."""
    from harness.planner import suite_case_trials
    from harness.suites import SUITES

    chosen = SUITES["techniques"]
    losses = {}
    for variant in ("opt_adam", "opt_adamw"):
        (case,) = [c for c in chosen.cases if c.variant == variant]
        (trial,) = suite_case_trials(chosen, case, ("torch",), 1, {})
        losses[variant] = workers["torch"](probes.trial_rows, trial.to_dict(), variant)[-1]["train_loss"]
    assert losses["opt_adamw"] > 1.05 * losses["opt_adam"], losses  # measured: 1.0559 vs 0.9705 (seed 0)


@pytest.mark.parametrize("clip", [{"clip_value": 0.01}, {"clip_norm": 0.5}, {"clip_value": 0.05, "clip_norm": 0.3}])
def test_gradient_clipping_agrees_and_bites(workers, digits, clip):
    spec = _mlp(digits)
    _, clipped = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.1, **clip))
    _, free = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.1))
    assert max_abs_diff(clipped["torch"][0], clipped["tensorflow"][0]) <= TOLERANCE
    assert max_abs_diff(clipped["torch"][0], free["torch"][0]) > 1e-3, (
        "clipping changed nothing: the test would be vacuous"
    )


def test_the_penalty_is_l1_l2_over_the_kernels_only_and_stays_out_of_the_training_loss(workers, digits):
    """One step from the initial weights (lr 1e-12, so the weights barely move): each backend reports as the
    penalty l1·Σ|W| + l2·ΣW² over the Conv/Dense kernels (not the biases), computed here in numpy, and as the
    training loss the data loss of the same step without the penalty."""
    spec = build_spec("convnet3", digits.input_shape, digits.num_classes)
    # biases of 0.5 (not the initializer's zeros), so a penalty that took them in would be off by about 1 %
    weights = {
        n: np.full_like(w, 0.5) if n.endswith("/bias") else w for n, w in initial_weights(spec, "he_normal", 0).items()
    }
    reg = RegularizationConfig(l1=5e-4, l2=5e-3)

    def penalty(names):
        return sum(
            reg.l1 * np.abs(weights[n].astype(np.float64)).sum()
            + reg.l2 * np.square(weights[n].astype(np.float64)).sum()
            for n in names
        )

    expected = penalty([n for n in weights if n.endswith("/kernel")])
    assert penalty(weights) > expected * (1 + 1e-3)
    sgd = OptimizerConfig("sgd", lr=1e-12)
    for backend, worker in workers.items():
        args = (spec, weights, sgd, digits.x_train, digits.y_train, [np.arange(32)], None, None)
        penalised, plain = worker(probes.train, *args, reg)[1], worker(probes.train, *args)[1]
        assert penalised.reg_loss == pytest.approx(expected, rel=1e-5), backend
        assert penalised.loss == pytest.approx(plain.loss, rel=1e-6), backend


@pytest.mark.parametrize("model", ["mlp", "convnet3"])
@pytest.mark.parametrize(
    "reg",
    [
        RegularizationConfig(l1=1e-3),
        RegularizationConfig(l2=1e-2),
        RegularizationConfig(l1=5e-4, l2=5e-3),
        RegularizationConfig(max_norm=0.5),
    ],
    ids=["l1", "l2", "l1_l2", "max_norm"],
)
def test_regularisers_agree_and_report_the_penalty_separately(workers, digits, reg, model):
    spec = _mlp(digits) if model == "mlp" else build_spec("convnet3", digits.input_shape, digits.num_classes)
    _, results = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.05), regularization=reg)
    _, plain = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.05))
    (w_t, s_t, _), (w_f, s_f, _) = results["torch"], results["tensorflow"]
    assert max_abs_diff(w_t, w_f) <= TOLERANCE
    assert max_abs_diff(w_t, plain["torch"][0]) > 1e-4, "the regulariser changed nothing"
    if reg.active:
        assert s_t.reg_loss > 0 and s_t.reg_loss == pytest.approx(s_f.reg_loss, rel=1e-5)
        # train_loss stays the data loss in both: the backends agree far closer (measured 1e-7 relative) than the
        # penalty (0.35-1.1 here) that either would add
        assert s_t.loss == pytest.approx(s_f.loss, rel=1e-5, abs=0)
    else:  # each output unit's incoming weights (all axes but the last, conv kernels included) within the norm
        for key, kernel in w_t.items():
            if key.endswith("kernel"):
                norms = np.sqrt((kernel**2).reshape(-1, kernel.shape[-1]).sum(axis=0))
                assert norms.max() <= 0.5 + 1e-5, key


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_trains_alike(workers, digits, activation):
    alpha = {"leaky_relu": 0.2, "elu": 0.7}.get(activation)
    spec = build_spec(
        "convnet3", digits.input_shape, digits.num_classes, ModelOptions(activation=activation, activation_alpha=alpha)
    )
    weights, results = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.01))
    diff = max_abs_diff(results["torch"][0], results["tensorflow"][0])
    assert diff <= TOLERANCE, f"{activation}: parameters differ by {diff:.2e}"
    if activation == "prelu":
        assert (
            max_abs_diff(
                {k: v for k, v in results["torch"][0].items() if k.endswith("alpha")},
                {k: v for k, v in weights.items() if k.endswith("alpha")},
            )
            > 0
        ), "PReLU slopes did not learn"


@pytest.mark.parametrize("variance", ["unbiased", "biased"])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_batchnorm_placement_trains_and_evaluates_alike_running_statistics_included(
    request, workers, digits, placement, variance
):
    options = ModelOptions(batchnorm=placement, bn_decay=0.9, bn_epsilon=1e-3, bn_running_variance=variance)
    spec = build_spec("convnet3", digits.input_shape, digits.num_classes, options)
    if placement == "before":
        assert "conv1/bias" not in initial_weights(spec, "he_normal", 0)  # BN's beta replaces the bias
    weights, results = _train_both(workers, digits, spec, OptimizerConfig("momentum", lr=0.01))
    w_t, w_f = results["torch"][0], results["tensorflow"][0]
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)[:STEPS]
    args = (spec, weights, OptimizerConfig("momentum", lr=0.01), digits.x_train, digits.y_train, batches, None, None)
    args += (RegularizationConfig(), None)
    # kernels, gamma, beta and both running statistics
    assert_parameters_agree(request, args, {"torch": w_t, "tensorflow": w_f}, TOLERANCE)
    # In eval mode, from the same trained weights (running statistics included), the logits agree.
    x = digits.x_test[:64]
    a, b = workers["torch"](probes.logits, spec, w_t, x), workers["tensorflow"](probes.logits, spec, w_t, x)
    assert np.abs(a - b).max() <= TOLERANCE * max(1.0, float(np.abs(a).max()))


def _biased_running_statistics_under_autocast(_backend: str, dtype: str, steps: int) -> dict[str, float]:
    """In the torch worker: a conv and a BiasedBatchNorm2d (--bn-variance biased) under Autocast in ``dtype`` for
    ``steps`` training steps, beside a float64 reference of the running statistics fed the same low-precision conv
    outputs; the largest relative gap of each."""
    import torch

    from backends.torch.model import BiasedBatchNorm2d
    from backends.torch.modes import Autocast

    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(3, 4, 3, padding=1), BiasedBatchNorm2d(4, momentum=0.1)
    model, low = Autocast(torch.nn.Sequential(conv, bn), "cpu", getattr(torch, dtype)).train(), getattr(torch, dtype)
    mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(steps):
            x = torch.randn(32, 3, 8, 8, generator=generator) * 0.3 + 1.0
            with torch.autocast("cpu", dtype=low):
                h = conv(x).double()
            mean = 0.9 * mean + 0.1 * h.mean((0, 2, 3))
            var = 0.9 * var + 0.1 * h.var((0, 2, 3), unbiased=False)
            model(x)
    assert bn.running_mean is not None and bn.running_var is not None
    return {
        "mean": float(((bn.running_mean.double() - mean).abs() / mean.abs()).max()),
        "var": float(((bn.running_var.double() - var).abs() / var).max()),
        "dtype": str(bn.running_mean.dtype),
    }


def test_biased_batchnorm_keeps_float32_running_statistics_under_autocast(workers):
    """--bn-variance biased under --precision mixed_bfloat16: BatchNorm's input is bfloat16, and the running
    statistics used to be updated in it, rounding the float32 buffers to 8 bits every step (1.9e-2 off a float64
    reference after 200 steps); updated in float32 they stay as close as torch's own BatchNorm (3e-7)."""
    gaps = workers["torch"](_biased_running_statistics_under_autocast, "bfloat16", 100)
    assert gaps["dtype"] == "torch.float32"
    assert max(gaps["mean"], gaps["var"]) <= 1e-6, gaps


def _batchnorm_reference(x, gamma, beta, r, unbiased: bool, eps: float) -> dict[str, np.ndarray]:
    """One training-mode BatchNorm step in numpy float64 (decay 0.9 from running mean 0 and variance 1): the
    output, the running statistics, and the gradients of sum(output * r)."""
    x, gamma, beta, r = (a.astype(np.float64) for a in (x, gamma, beta, r))
    n = x.size // x.shape[-1]
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv
    dxhat = r * gamma
    return {
        "out": xhat * gamma + beta,
        "running_mean": 0.1 * mean,
        "running_var": 0.9 + 0.1 * (var * n / (n - 1) if unbiased else var),
        "dx": inv / n * (n * dxhat - dxhat.sum((0, 1, 2)) - xhat * (dxhat * xhat).sum((0, 1, 2))),
        "dgamma": (r * xhat).sum((0, 1, 2)),
        "dbeta": r.sum((0, 1, 2)),
    }


@pytest.mark.parametrize("variance", ["unbiased", "biased"])
def test_batchnorm_in_float64_is_exact_arithmetic_rounded_once_in_both_backends(workers, variance):
    """--bn-statistics float64 on channels whose mean is 100-300 standard deviations from zero (where float32
    cancels): each backend's output, running statistics and gradients are the float64 reference rounded to
    float32 (measured 1.1e-8 to 3.9e-8 of each quantity's scale); the float32 paths, the control, are 10x and more
    further off (measured 1.4e-6 to 1.5e-5 for the output and dx / dgamma)."""
    import bn_probes

    rng = np.random.default_rng(0)
    channels = 8
    x = rng.normal(size=(16, 4, 4, channels)) * rng.uniform(0.01, 0.05, channels) + rng.uniform(2, 5, channels)
    x = x.astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, channels).astype(np.float32), rng.normal(0, 0.1, channels).astype(np.float32)
    r = rng.normal(size=x.shape).astype(np.float32)
    unbiased, eps = variance == "unbiased", 1e-5
    reference = _batchnorm_reference(x, gamma, beta, r, unbiased, eps)

    def errors(backend: str, statistics: str) -> dict[str, float]:
        got = workers[backend](bn_probes.batchnorm_step, x, gamma, beta, r, unbiased, statistics, eps)
        return {k: float(np.abs(got[k] - v).max() / np.abs(v).max()) for k, v in reference.items()}

    for backend in ("torch", "tensorflow"):
        exact, control = errors(backend, "float64"), errors(backend, "float32")
        assert max(exact.values()) <= 1e-7, (backend, exact)
        for key in ("out", "dx", "dgamma"):
            assert control[key] >= 10 * exact[key], (backend, key, control, exact)


def test_batchnorm_in_float64_keeps_both_backends_on_one_trajectory_for_whole_epochs(workers):
    """--bn-statistics float64: training-mode BatchNorm computes in float64 in both backends, so the rounding that
    BatchNorm after ReLU amplifies (dividing by near-dead channels' small deviations) is the same in both; the
    techniques suite's bn_after then kept its epoch losses within 2.7e-7 over 5 epochs, where each framework's own
    float32 kernel parted by 6e-4 (docs/fairness.md). Each row records the setting."""
    runtime = RuntimeOptions(bn_statistics="float64")
    base = dict(strategy="scratch", model="convnet3", dataset="digits", seed=0, epochs=3, runtime=runtime)
    base["model_options"] = ModelOptions(batchnorm="after")
    futures = {
        b: workers[b].submit(probes.trial_rows, TrialConfig(backend=b, **base).to_dict(), "bn64")
        for b in ("torch", "tensorflow")
    }
    rows = {b: [r for r in f.result(timeout=600) if r.get("epoch")] for b, f in futures.items()}
    assert len(rows["torch"]) == len(rows["tensorflow"]) == 3
    gaps = [abs(t["train_loss"] - f["train_loss"]) / t["train_loss"] for t, f in zip(*rows.values(), strict=True)]
    assert max(gaps) <= 1e-6, gaps
    assert [r["val_acc"] for r in rows["torch"]] == [r["val_acc"] for r in rows["tensorflow"]]
    assert rows["torch"][-1]["test_acc"] == rows["tensorflow"][-1]["test_acc"]
    assert {json.loads(r["config_json"])["runtime"]["bn_statistics"] for r in rows["torch"] + rows["tensorflow"]} == {
        "float64"
    }


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_every_initializer_loads_identically(workers, digits, init):
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, init, 4)
    x = digits.x_test[:32]
    logits = workers["torch"](probes.logits, spec, weights, x)
    scale = float(np.abs(logits).max())  # normal_0.01 gives logits of about 5e-5: relative below 1
    assert scale > 0 and np.abs(
        logits - workers["tensorflow"](probes.logits, spec, weights, x)
    ).max() <= TOLERANCE * min(1.0, scale)


@pytest.mark.parametrize("kind", ["standard", "alpha"])
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_mc_dropout_is_deterministic_under_a_seed_and_uncertain_with_dropout(workers, digits, backend, kind):
    activation = "selu" if kind == "alpha" else "relu"
    spec = _mlp(digits, dropout=0.3, dropout_kind=kind, activation=activation)
    weights = initial_weights(spec, "lecun_normal", 0)
    x, y = digits.x_test[:100], digits.y_test[:100]
    a = workers[backend](probes.mc_logits, spec, weights, x, 8, 11)
    b = workers[backend](probes.mc_logits, spec, weights, x, 8, 11)
    c = workers[backend](probes.mc_logits, spec, weights, x, 8, 12)
    assert a.shape == (8, 100, 10)
    assert np.array_equal(a, b), "same seed, different passes"
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1]), "dropout inactive during MC passes"
    metrics = mc_metrics_from_logits(a, y)
    mean_probability = np.exp(a.astype(np.float64) - a.max(axis=2, keepdims=True))
    mean_probability = (mean_probability / mean_probability.sum(axis=2, keepdims=True)).mean(axis=0)
    assert metrics["mc_pred_std"] > 0
    assert metrics["mc_test_acc"] == float((mean_probability.argmax(axis=1) == y).mean())  # of the mean probability
    predicted_probability = mean_probability[np.arange(len(y)), mean_probability.argmax(axis=1)]
    assert metrics["mc_mean_prob"] == pytest.approx(predicted_probability.mean(), rel=1e-12)
    still = workers[backend](probes.mc_logits, _mlp(digits), initial_weights(_mlp(digits), "he_normal", 0), x, 3, 11)
    assert mc_metrics_from_logits(still, y)["mc_pred_std"] < 1e-12  # no dropout: no spread (float64 rounding aside)


def test_mc_metrics_hold_the_passes_logits_and_one_float64_copy_at_most():
    """The preflight's memory floor for MC dropout counts 12 bytes a float32 logit (harness.preflight): the passes'
    logits and one float64 copy, in which the softmax is computed in place (a temporary per step would hold four
    copies). numpy reports its buffers to tracemalloc."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 500, 100)).astype(np.float32)  # 100 classes: the (passes, n) arrays are 1 %
    y = rng.integers(0, 100, 500)
    kept = logits.copy()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        metrics = mc_metrics_from_logits(logits, y)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak <= 1.1 * 8 * logits.size, f"{peak / logits.size:.1f} bytes a logit beyond the logits themselves"
    assert np.array_equal(logits, kept)  # the caller's logits untouched
    probs = np.exp(logits.astype(np.float64))
    probs /= probs.sum(axis=2, keepdims=True)
    assert metrics["mc_test_acc"] == float((probs.mean(axis=0).argmax(axis=1) == y).mean())


def test_mc_dropout_metrics_in_a_trial_row(workers):
    config = TrialConfig(
        strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=2, mc_dropout_passes=5
    )
    rows = workers["torch"](probes.trial_rows, config.to_dict(), "mc")
    assert "mc_test_acc" not in rows[0]  # final metrics sit on the last row only
    assert rows[-1]["mc_pred_std"] > 0 and 0.1 < rows[-1]["mc_test_acc"] <= 1
    assert 0.1 < rows[-1]["mc_mean_prob"] <= 1  # the mean predicts its class with at least 1/10 of the mass
    assert {r["inexact"] for r in rows} == {""}  # shared masks, no BatchNorm: the backends compute alike
    assert not math.isnan(rows[-1]["test_acc"])


def test_coupled_weight_decay_moves_every_trainable_parameter_alike_in_both_backends(workers, digits):
    """--weight-decay (coupled) reaches every trainable parameter, conv and dense biases, BatchNorm's gamma and beta
    and PReLU slopes as well as the kernels (unlike --l2, kernels only): on the first SGD step from the same weights
    the decayed run ends -lr * wd * w from the plain one, in both backends. The parity tests start biases and beta at
    zero, where decay does nothing, so they could not tell."""
    options = ModelOptions(batchnorm="after", activation="prelu")
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes, options)
    weights = initial_weights(spec, "he_normal", 0)
    weights = {k: v + 0.5 if k.endswith(("/bias", "/beta")) else v for k, v in weights.items()}
    trainable = [k for k in weights if not k.endswith(("/moving_mean", "/moving_variance"))]
    batches = epoch_batches(len(digits.y_train), 32, 0, 1)[:1]
    lr, wd = 0.1, 0.5
    for backend, worker in workers.items():
        moved = {}
        for decay in (0.0, wd):
            config = OptimizerConfig("sgd", lr=lr, weight_decay=decay)
            args = (spec, weights, config, digits.x_train, digits.y_train, batches, None, None)
            moved[decay] = worker(probes.train, *args, RegularizationConfig(), None)[0]
        for name in trainable:
            expected = -lr * wd * np.asarray(weights[name], np.float64)
            gap = np.abs(moved[wd][name] - moved[0.0][name] - expected).max()
            assert gap <= 1e-6 * max(1.0, float(np.abs(weights[name]).max())), (backend, name, gap)


@pytest.mark.parametrize("optimizer", ["momentum", "adam", "rmsprop"])
def test_decoupled_weight_decay_agrees_and_differs_from_coupled(workers, digits, optimizer):
    spec = _mlp(digits)
    lr = 0.05 if optimizer == "momentum" else 0.01
    _, decoupled = _train_both(
        workers, digits, spec, OptimizerConfig(optimizer, lr=lr, weight_decay=0.05, decoupled=True)
    )
    _, coupled = _train_both(workers, digits, spec, OptimizerConfig(optimizer, lr=lr, weight_decay=0.05))
    assert max_abs_diff(decoupled["torch"][0], decoupled["tensorflow"][0]) <= TOLERANCE
    assert max_abs_diff(decoupled["torch"][0], coupled["torch"][0]) > 1e-4


@pytest.mark.parametrize("kind", ["standard", "alpha"])
@pytest.mark.parametrize("before_flatten", [True, False], ids=["feature_map", "flattened"])
def test_shared_dropout_masks_are_the_reference_generators_in_both_backends(workers, kind, before_flatten):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4, 5, 3)).astype(np.float32)
    # batch_size 128: three batches per pass, so the sample offset of the later batches is exercised too
    got = {
        b: workers[b](probes.dropout_outputs, 0.3, kind, x, 2, before_flatten, "shared", 128)
        for b in ("torch", "tensorflow")
    }
    # The probe's dropout layer sits at spec index 0 (on the map) or 1 (after the flatten); MC passes use seed 3.
    layer = 0 if before_flatten else 1
    for p in range(2):
        expected = reference_dropout(x, step_key(3, STREAM_MC, p, layer), 0.3, kind).reshape(len(x), -1)
        for backend, out in got.items():
            assert np.array_equal(out[p], expected), f"{backend}: pass {p} is not the reference mask"
    assert not np.array_equal(got["torch"][0], got["torch"][1])


@pytest.mark.parametrize("kind", ["standard", "alpha"])
def test_tensorflow_hashes_in_uint32_and_keeps_the_reference_masks_at_the_edges_of_32_bits(workers, kind):
    """TensorFlow hashes in uint32, whose multiply wraps mod 2**32 by itself: in int64 (the reference's type, with a
    masking & after each multiply) the masks cost 23-29 % of the epoch on a 4000-unit dense layer, against 2-9 % in
    torch (docs/measurements.md). The bits stay the reference's, also for the largest key and sample indices."""
    x = np.random.default_rng(2).normal(size=(64, 4000)).astype(np.float32)
    for key, offset in ((2**32 - 1, 2**32 - 64), (step_key(3, STREAM_TRAIN, 5, 1), 0), (0, 2**31 - 10)):
        out, multiplies = workers["tensorflow"](probes.tensorflow_dropout_layer, x, 0.5, kind, key, offset)
        assert np.array_equal(out, reference_dropout(x, key, 0.5, kind, offset)), (key, offset)
    assert "int64" not in multiplies and "uint32" in multiplies, multiplies


def test_torch_uploads_each_epochs_training_dropout_keys_once(workers, digits):
    """A host-to-device copy of a step's keys would synchronise a GPU's stream every step: torch copies the epoch's
    (steps, layers) keys once and each step reads its row, as TensorFlow's EpochInputs does; the keys, and so the
    masks, stay the reference generator's."""
    spec = build_spec("cnn_small", digits.input_shape, digits.num_classes)
    weights = initial_weights(spec, "he_normal", 0)
    epochs = [[np.arange(32 * i, 32 * i + 32) for i in range(4)], [np.arange(20), np.arange(20, 50)]]
    keys, tensors_per_epoch = workers["torch"](
        probes.training_dropout_keys, spec, weights, digits.x_train, digits.y_train, epochs
    )
    indices = dropout_layer_indices(spec)
    assert keys.tolist() == [step_keys(5, STREAM_TRAIN, step, indices) for step in range(6)]
    assert tensors_per_epoch == [1, 1]


def test_the_shared_generator_drops_at_the_rate_independently_of_position_and_step():
    hashed = element_hashes((6, 6, 8))
    samples = np.arange(500, dtype=np.int64).reshape(-1, 1, 1, 1)
    masks = np.stack(
        [keep_mask(step_key(7, STREAM_TRAIN, step, 2), samples, hashed, drop_threshold(0.3)) for step in range(8)]
    )
    dropped = ~masks
    n = dropped.size
    assert dropped.mean() == pytest.approx(0.3, abs=4 * np.sqrt(0.21 / n))
    for axis in range(1, 5):  # no position, sample or step is favoured
        rates = dropped.mean(axis=tuple(a for a in range(5) if a != axis))
        assert rates.std() < 4 * np.sqrt(0.21 / (n / len(rates))), axis
    # neighbouring units and consecutive steps are uncorrelated
    assert abs(np.corrcoef(dropped[..., :-1].ravel(), dropped[..., 1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(dropped[:-1].ravel(), dropped[1:].ravel())[0, 1]) < 0.01
    assert hash32(np.array([0, 1, 2**32 - 1], np.int64)).max() < 2**32  # stays within 32 bits, no overflow


# With --dropout-rng framework each framework draws its own masks: bit-for-bit parity is impossible by design.
# What must still agree is the distribution: drop rate, the 1/(1-p) scaling, and alpha dropout's preserved moments.
@pytest.mark.parametrize("rng_kind", ["shared", "framework"])
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_dropout_statistics_match_their_definition(workers, backend, rng_kind):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, size=(2000, 4, 4, 1)).astype(np.float32)
    out = workers[backend](probes.dropout_outputs, 0.3, "standard", x, 2, False, rng_kind)
    flat = x.reshape(len(x), -1)
    dropped = out[0] == 0
    assert dropped.mean() == pytest.approx(0.3, abs=0.01)
    assert np.allclose(out[0][~dropped], (flat / 0.7)[~dropped], rtol=1e-5)
    z = rng.standard_normal(size=(4000, 4, 4, 1)).astype(np.float32)  # SELU's fixed point: mean 0, variance 1
    alpha = workers[backend](probes.dropout_outputs, 0.2, "alpha", z, 1, False, rng_kind)[0]
    assert abs(alpha.mean()) < 0.02 and alpha.var() == pytest.approx(1.0, abs=0.03)
    _, counts = np.unique(alpha, return_counts=True)
    assert counts.max() / alpha.size == pytest.approx(0.2, abs=0.01)  # dropped units all take one affine value


@pytest.mark.parametrize("kind", ["standard", "alpha"])
def test_mc_dropout_passes_agree_across_backends(workers, digits, kind):
    spec = _mlp(digits, dropout=0.3, dropout_kind=kind, activation="selu" if kind == "alpha" else "relu")
    weights = initial_weights(spec, "lecun_normal", 0)
    x = digits.x_test[:100]
    a, b = (workers[backend](probes.mc_logits, spec, weights, x, 4, 11) for backend in ("torch", "tensorflow"))
    assert np.abs(a - b).max() <= TOLERANCE * max(1.0, float(np.abs(a).max()))


def test_a_whole_trial_with_dropout_gives_the_same_rows_in_both_backends(workers):
    config = TrialConfig(
        strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=1, epochs=2, mc_dropout_passes=3
    )
    rows = {
        b: workers[b](probes.trial_rows, dataclasses.replace(config, backend=b).to_dict(), "drop")
        for b in ("torch", "tensorflow")
    }
    for column in ("train_loss", "val_loss", "mc_mean_prob", "mc_pred_std"):
        t = [r[column] for r in rows["torch"] if column in r]
        f = [r[column] for r in rows["tensorflow"] if column in r]
        assert np.allclose(t, f, rtol=1e-5, atol=1e-6), column
    for column in ("train_acc", "val_acc", "test_acc", "mc_test_acc"):
        torch_values = [r.get(column) for r in rows["torch"]]
        assert torch_values == pytest.approx([r.get(column) for r in rows["tensorflow"]], nan_ok=True)


def test_the_full_sweeps_fashion_mnist_half_asks_the_agreement_its_networks_can_keep():
    """Fashion-MNIST's networks part by float32 rounding over thousands of steps (FASHION_CONVNET3_GAP and
    FASHION_MLP_GAP, measured): the full sweep asserted exact agreement there, which a full run fails (its mlp, said
    to agree exactly from 2 epochs of plain SGD, failed 19 of 30 settings on seed 0). The digits sweep keeps its own."""
    from harness.suites import FASHION_CONVNET3_GAP, FASHION_MLP_GAP, SUITES

    gaps = {(c.dataset, c.model, c.variant): c.max_backend_gap for c in SUITES["techniques_full"].cases}
    fashion = {key: gap for key, gap in gaps.items() if key[0] == "fashion_mnist"}
    assert {gap for (_, model, _), gap in fashion.items() if model == "convnet3"} == {FASHION_CONVNET3_GAP}
    assert {gap for (_, model, _), gap in fashion.items() if model == "mlp"} == {FASHION_MLP_GAP}
    assert fashion[("fashion_mnist", "cnn_small", "mc_dropout")] >= FASHION_CONVNET3_GAP
    digits = {key: gap for key, gap in gaps.items() if key[0] == "digits"}
    assert digits == {(c.dataset, c.model, c.variant): c.max_backend_gap for c in SUITES["techniques"].cases}


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "rmsprop"])
def test_a_step_without_momentum_keeps_the_buffer_in_both_backends(workers, digits, optimizer):
    """1cycle with min_momentum 0 reaches momentum 0 at its peak: torch.optim then steps by the gradient and keeps
    its buffer for the next step; TensorFlow stored that gradient as the buffer, and every later step differed."""
    schedule = ScheduleConfig("onecycle", max_momentum=0.9, min_momentum=0.0)
    steps = np.arange(STEPS)
    momenta = momentum_at(schedule, steps, STEPS)
    assert (momenta == 0).sum() == 1 and momenta[-1] == pytest.approx(0.9)
    lr0 = 0.05 if optimizer != "rmsprop" else 0.001
    lrs = lr_at(schedule, lr0, steps, STEPS).astype(np.float32)
    weights, results = _train_both(
        workers, digits, _mlp(digits), OptimizerConfig(optimizer, lr=lr0), lrs, momenta.astype(np.float32)
    )
    assert max_abs_diff(results["torch"][0], weights) > 1e-3  # it trained
    diff = max_abs_diff(results["torch"][0], results["tensorflow"][0])
    assert diff <= TOLERANCE, f"{optimizer}: parameters differ by {diff:.2e}"


def test_the_step_schedules_of_the_full_sweep_take_each_datasets_steps_per_epoch():
    """techniques_full set its step schedules in digits' steps (20 an epoch) for Fashion-MNIST too (860): its
    exponential case's rate was 2.5e-6 at the end of the first epoch, its piecewise case at its last value from step
    80. Per epoch, every dataset's case now follows the same curve."""
    from harness.data.batching import steps_per_epoch
    from harness.suites import SUITES

    cases = {(c.dataset, c.variant): c for c in SUITES["techniques_full"].cases if c.variant.startswith("sched_")}
    per_epoch = {"digits": steps_per_epoch(1257, 64), "fashion_mnist": steps_per_epoch(55_000, 64)}
    assert per_epoch == {"digits": 20, "fashion_mnist": 860}
    for variant in ("sched_power", "sched_exponential", "sched_piecewise", "sched_onecycle"):
        curves = {}
        for dataset, steps in per_epoch.items():
            case = cases[(dataset, variant)]
            epoch_ends = np.arange(1, case.epochs + 1) * steps - 1
            curves[dataset] = lr_at(case.schedule, case.optimizer.lr, epoch_ends, case.epochs * steps)
        assert np.allclose(curves["digits"], curves["fashion_mnist"], rtol=0.1), (variant, curves)  # step rounding
    assert cases[("digits", "sched_piecewise")].schedule.boundaries == (40, 80)  # digits' cases as measured


@pytest.mark.parametrize("seed", [0, 7, -1, 2**40 + 3])
@pytest.mark.parametrize("first", [0, 860, 2**32 - 3])
def test_an_epochs_vectorised_keys_are_step_keys_bit_for_bit(seed, first):
    """The harness hashes an epoch's training keys over numpy arrays before the epoch's timer (the adapters had
    hashed them step by step inside it): the same integers as step_keys, past 2**32 steps and for any seed."""
    from harness.dropout_rng import STREAM_TRAIN, TrainingKeys, epoch_step_keys, key_rows, step_keys, training_keys

    layers = [3, 7, 12]
    got = epoch_step_keys(seed, STREAM_TRAIN, first, 6, layers)
    assert got.dtype == np.int64 and got.shape == (6, 3)
    assert got.tolist() == [step_keys(seed, STREAM_TRAIN, s, layers) for s in range(first, first + 6)]
    assert np.array_equal(TrainingKeys(seed, tuple(layers)).rows(first, 6, None), got)
    with pytest.raises(ValueError, match=r"Expected one dropout key per dropout layer and step, shape \(6, 3\)"):
        TrainingKeys(seed, tuple(layers)).rows(first, 6, got[:, :2])
    # no key is hashed where no step reads one: framework masks, or a model without dropout
    assert training_keys(False, seed, layers) is None and training_keys(True, seed, []) is None
    assert np.array_equal(key_rows(None, first, 6, None, layers), np.zeros((6, 3), np.int64))
    assert np.array_equal(key_rows(training_keys(True, seed, layers), first, 6, None, layers), got)


def test_dropout_keys_keep_mc_passes_apart_from_training_steps_and_are_pinned():
    """The stream is part of a mask's key, so MC-dropout pass p never reuses training step p's masks; leaving it out
    passed every dropout test, whose references call the same step_key. Known answers pin the hash itself: the
    parity tests cannot see a silent change of it, which both backends would follow alike."""
    from harness.dropout_rng import STREAM_MC, STREAM_TRAIN, step_key

    assert step_key(0, STREAM_MC, 0, 0) != step_key(0, STREAM_TRAIN, 0, 0)
    assert step_key(3, STREAM_TRAIN, 5, 1) != step_key(3, STREAM_MC, 5, 1)
    assert (step_key(0, STREAM_MC, 0, 0), step_key(7, STREAM_TRAIN, 123, 2)) == (1302927599, 752614674)
