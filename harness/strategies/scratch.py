"""S1: train a model from the harness's initial weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.models import build_model
from harness.training import prepare_data, train_phase
from harness.weights import initial_weights

if TYPE_CHECKING:
    from harness.strategies import StrategyContext

DESCRIPTION = "train from random init (shared initial weights); test accuracy at the end"


def run(ctx: "StrategyContext") -> str:
    cfg = ctx.config
    spec = build_model(cfg.model, ctx.dataset.input_shape, ctx.dataset.num_classes, cfg.model_options)
    ctx.backend.build(spec, initial_weights(spec, cfg.init, cfg.seed), seed=cfg.seed)
    ctx.backend.set_optimizer(cfg.optimizer.resolved())
    prepare_data(ctx.backend, ctx.dataset)
    return train_phase(
        ctx.backend, len(ctx.dataset.y_train), phase="train", epochs=cfg.epochs, batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size, seed=cfg.seed, sink=ctx.sink, evaluate_test_at_end=True,
        inject_step_delay_s=cfg.runtime.inject_step_delay_s,
    )
