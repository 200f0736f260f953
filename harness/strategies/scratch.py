"""S1: train a model from the harness's initial weights (on the trial's task, e.g. a class subset)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.data.registry import Dataset
from harness.data.tasks import derive
from harness.input_pipeline import transformed_shape, with_input_pipeline
from harness.mc_dropout import mc_dropout_metrics
from harness.model_import import model_spec
from harness.spec import ModelSpec
from harness.training import PhasePlan, accuracy_on_test_split, prepare_data, train_phase
from harness.weights import initial_weights

if TYPE_CHECKING:
    from harness.backend import Backend
    from harness.strategies import StrategyContext

DESCRIPTION = "train from random init (shared initial weights); test accuracy at the end"
PHASE = "train"  # the rows' phase (the results schema names every strategy's)


def start_from_scratch(ctx: StrategyContext) -> tuple[Dataset, ModelSpec]:
    """Build the trial's model on its task from the harness's initial weights, with a fresh optimizer and the data."""
    cfg = ctx.config
    data = derive(ctx.dataset, cfg.task)
    spec = model_spec(
        cfg.model, transformed_shape(cfg.input, data.input_shape), data.num_classes, cfg.model_options, cfg.cache_dir
    )
    weights = initial_weights(spec, cfg.init, cfg.seed)  # the model's own, whatever pipeline feeds it
    spec = with_input_pipeline(spec, cfg.input, data.input_shape)
    ctx.build(spec, weights)
    ctx.backend.set_optimizer(cfg.optimizer, cfg.regularization)
    prepare_data(ctx.backend, data)
    return data, spec


def phase_plan(ctx: StrategyContext, phase: str, epochs: int, offset: int = 0) -> PhasePlan:
    cfg = ctx.config
    return PhasePlan(
        phase=phase,
        epochs=epochs,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        seed=cfg.seed,
        base_lr=cfg.optimizer.lr,
        schedule=cfg.schedule,
        epoch_offset=offset,
        inject_step_delay_s=cfg.runtime.inject_step_delay_s,
        augment=cfg.augment,
        pad_fill=ctx.dataset.black_pixel,  # a task's classes keep their dataset's pixels
    )


def run(ctx: StrategyContext) -> str:
    data, _ = start_from_scratch(ctx)
    return train_phase(
        ctx.backend,
        len(data.y_train),
        phase_plan(ctx, PHASE, ctx.config.epochs),
        ctx.sink,
        final_metrics=lambda b: final_metrics(ctx, b, data),
    )


def final_metrics(ctx: StrategyContext, backend: Backend, data: Dataset | None = None) -> dict[str, float]:
    """Test accuracy, and MC-dropout metrics when the trial asks for passes; nothing for a search sample (its
    config's ``scores_test_split``), which the search picks by validation."""
    cfg = ctx.config
    if not cfg.scores_test_split:
        return {}
    data = data if data is not None else derive(ctx.dataset, cfg.task)
    out = accuracy_on_test_split(backend, cfg.eval_batch_size)
    if cfg.mc_dropout_passes:
        out.update(
            mc_dropout_metrics(backend, data.x_test, data.y_test, cfg.mc_dropout_passes, cfg.seed, cfg.eval_batch_size)
        )
    return out
