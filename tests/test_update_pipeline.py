"""The update order and the inference batch loop, stated once in harness/, checked without a framework."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from harness.config import OptimizerConfig, RegularizationConfig
from harness.errors import InputError
from harness.inference_batches import batch_slices, concat_batches, over_batches
from harness.update_pipeline import LossScaleRule, UpdateRule, loss_scale_rule, pipeline_decay, update_step


class RecordingPrimitives:
    """Floats for tensors, a list of floats for gradients; every call is logged."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.objective: float | None = None

    def penalty(self, l1: float, l2: float) -> float:
        self.calls.append("penalty")
        return 10 * l1 + 100 * l2

    def gradients(self, objective: Callable[[], tuple[float, object]]) -> tuple[list[float], object]:
        self.calls.append("record")
        value, aux = objective()
        self.objective = value
        self.calls.append("gradients")
        return [value, -value], aux

    def clip_by_value(self, grads: list[float], limit: float) -> list[float]:
        self.calls.append("clip_value")
        return [max(-limit, min(limit, g)) for g in grads]

    def clip_by_global_norm(self, grads: list[float], max_norm: float) -> list[float]:
        self.calls.append("clip_norm")
        return [g / 2 for g in grads]  # a mark of its own, so the update shows it received this stage's output

    def decay(self, grads: list[float], rate: float) -> None:
        self.calls.append(f"decay {rate}")

    def apply_update(self, grads: list[float]) -> None:
        self.calls.append(f"update {grads}")

    def apply_max_norm(self, limit: float) -> None:
        self.calls.append(f"max_norm {limit}")

    # Loss scaling: the state is two floats; ``overflow`` makes the next unscale report a non-finite gradient.
    scale, good_steps, overflow = 8.0, 0, False

    def loss_scale(self) -> tuple[float, int]:
        return self.scale, self.good_steps

    def unscale(self, grads: list[float], scale: float) -> tuple[list[float], bool]:
        self.calls.append(f"unscale {scale}")
        return [g / scale for g in grads], not self.overflow

    def when_finite(self, finite: bool, apply: Callable[[], None]) -> None:
        if finite:
            apply()

    def select(self, condition: bool, if_true: float, if_false: float) -> float:
        return if_true if condition else if_false

    def set_loss_scale(self, scale: float, good_steps: int) -> None:
        self.calls.append(f"scale {scale} {good_steps}")
        self.scale, self.good_steps = scale, good_steps


def batch_loss(ops: RecordingPrimitives) -> Callable[[], tuple[float, int]]:
    def loss() -> tuple[float, int]:
        ops.calls.append("forward")
        return 2.0, 7

    return loss


def test_every_stage_runs_once_in_the_stated_order():
    ops = RecordingPrimitives()
    rule = UpdateRule(l1=0.1, l2=0.01, clip_value=2.5, clip_norm=1.0, decoupled_decay=0.5, max_norm=3.0)
    out = update_step(ops, rule, batch_loss(ops))
    assert ops.calls == [
        "record",
        "forward",
        "penalty",  # inside the recording: the penalty is differentiated with the loss
        "gradients",
        "clip_value",
        "clip_norm",
        "decay 0.5",
        "update [1.25, -1.25]",  # the value-clipped, then norm-clipped gradients reach the update
        "max_norm 3.0",
    ]
    assert ops.objective == pytest.approx(4.0)  # loss + penalty is what is differentiated
    assert (out.loss, out.penalty, out.hits) == (2.0, pytest.approx(2.0), 7)  # the data loss is reported apart


def test_a_plain_rule_only_differentiates_and_updates():
    ops = RecordingPrimitives()
    out = update_step(ops, UpdateRule(), batch_loss(ops))
    assert ops.calls == ["record", "forward", "gradients", "update [2.0, -2.0]"]
    assert ops.objective == 2.0 and out.penalty is None


def test_the_rule_of_a_config_and_who_applies_decoupled_decay():
    sgd = OptimizerConfig("sgd", lr=0.1, weight_decay=0.3, decoupled=True, clip_value=1.0, clip_norm=2.0).resolved()
    rule = UpdateRule.of(sgd, RegularizationConfig(l1=0.1, max_norm=4.0))
    assert rule == UpdateRule(l1=0.1, l2=0.0, clip_value=1.0, clip_norm=2.0, decoupled_decay=0.3, max_norm=4.0)
    assert rule.penalised and not UpdateRule.of(sgd, RegularizationConfig(max_norm=4.0)).penalised
    # AdamW decays inside its own update (as torch.optim.AdamW); coupled decay is the optimizer's L2 term.
    assert pipeline_decay(OptimizerConfig("adamw", lr=0.1, weight_decay=0.3).resolved()) == 0.0
    assert pipeline_decay(OptimizerConfig("adam", lr=0.1, weight_decay=0.3).resolved()) == 0.0
    assert pipeline_decay(OptimizerConfig("adam", lr=0.1, weight_decay=0.3, decoupled=True).resolved()) == 0.3
    assert pipeline_decay(OptimizerConfig("momentum", lr=0.1, decoupled=True).resolved()) == 0.0


def test_a_loss_scaled_step_scales_the_objective_unscales_the_gradients_and_skips_a_step_that_overflows():
    ops = RecordingPrimitives()
    rule = UpdateRule(clip_value=0.5, max_norm=3.0, loss_scale=LossScaleRule(initial_scale=8.0, growth_interval=2))
    out = update_step(ops, rule, batch_loss(ops))
    assert ops.objective == 16.0 and out.loss == 2.0  # the scaled objective is differentiated; the loss reported
    assert ops.calls[3:] == ["unscale 8.0", "clip_value", "update [0.5, -0.5]", "max_norm 3.0", "scale 8.0 1"]
    ops.calls, ops.overflow = [], True
    update_step(ops, rule, batch_loss(ops))
    assert ops.calls[3:] == ["unscale 8.0", "scale 4.0 0"]  # nothing applied, the scale halved


def test_the_loss_scale_halves_on_overflow_and_doubles_after_growth_interval_finite_steps_as_grad_scaler():
    rule = LossScaleRule(initial_scale=2.0**16, growth_interval=3)
    scale, good, trace = rule.initial_scale, 0, []
    for finite in (True, True, False, True, True, True, True, False, False):
        scale, good = rule.next(scale, good, finite, lambda c, a, b: a if c else b)
        trace.append((scale, good))
    k = 2.0**16
    assert trace == [(k, 1), (k, 2), (k / 2, 0), (k / 2, 1), (k / 2, 2), (k, 0), (k, 1), (k / 2, 0), (k / 4, 0)]
    assert loss_scale_rule("mixed_float16") == LossScaleRule() and loss_scale_rule("mixed_bfloat16") is None
    assert UpdateRule.of(OptimizerConfig().resolved(), RegularizationConfig()).loss_scale is None


def test_inference_batches_cover_every_sample_in_order_the_last_keeping_the_remainder():
    assert batch_slices(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert batch_slices(6, 3) == [slice(0, 3), slice(3, 6)]
    assert batch_slices(0, 3) == []
    x = np.arange(10)
    assert over_batches(len(x), 4, lambda s: int(x[s].sum())) == [6, 22, 17]
    assert np.array_equal(concat_batches(len(x), 3, lambda s: x[s] * 2), x * 2)
    with pytest.raises(InputError, match="batch_size >= 1"):
        batch_slices(5, 0)
