"""Strategies that start from a shared backbone (SUITES.md S2-S4), written once for every backend.

- ``pretrain``: train the backbone on its source task and store it as a neutral checkpoint.
- ``feature_extraction``: freeze the whole backbone, new head for the target classes, train the head only.
- ``fine_tune``: new head, everything trainable, backbone learning rate = multiplier x head rate.
- ``freeze_early``: new head, the first k layer groups frozen, the rest fine-tuned.
- ``transfer``: reuse the backbone (a new head only if the class count differs), train with every group but the
  ``classifier`` frozen for ``frozen_epochs``, then unfrozen for the remaining epochs (phases ``frozen``,
  ``unfrozen``). For the small models that is their ``features`` group; for the zoo, stem and stages.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from harness.backbone import cache_root, checkpoint_path, recipe_for, uses_pretrained
from harness.checkpoints import load_checkpoint, save_checkpoint
from harness.data.registry import Dataset
from harness.data.tasks import derive
from harness.errors import InputError
from harness.input_pipeline import network_behind_pipeline, transformed_shape, with_input_pipeline
from harness.pretrained import checkpoint_for
from harness.seeds import FRESH_HEAD_SEED_OFFSET
from harness.spec import Dense, ModelSpec
from harness.strategies.scratch import final_metrics, phase_plan, start_from_scratch
from harness.strategy_options import training_phases
from harness.training import EpochRecord, EpochSink, PhasePlan, prepare_data, train_phase
from harness.weights import NeutralWeights, initial_weights

if TYPE_CHECKING:
    from harness.backend import Backend
    from harness.strategies import StrategyContext

HeadChoice = Literal["new", "fit", "as_trained"]

# The rows' phases, by strategy in the order they come (the results schema names every strategy's).
SOURCE, FROZEN, UNFROZEN, FINE_TUNE, FREEZE_EARLY = "source", "frozen", "unfrozen", "fine_tune", "freeze_early"
PHASES: dict[str, tuple[str, ...]] = {
    "pretrain": (SOURCE,),
    "feature_extraction": (FROZEN,),
    "fine_tune": (FINE_TUNE,),
    "freeze_early": (FREEZE_EARLY,),
    "transfer": (FROZEN, UNFROZEN),
}


def _plan(ctx: StrategyContext, phase: str, epochs: int, offset: int = 0) -> PhasePlan:
    return phase_plan(ctx, phase, epochs, offset)


def run_pretrain(ctx: StrategyContext) -> str:
    cfg = ctx.config
    data, spec = start_from_scratch(ctx)
    recipe = recipe_for(cfg)
    details = {"backbone": recipe.key, "backbone_recipe": recipe.describe()}
    source: dict[str, float] = {}  # the backbone's test accuracy on its source task, which its checkpoint keeps

    def measure(backend: Backend) -> dict[str, float]:
        source["test_acc"] = backend.evaluate("test", cfg.eval_batch_size).accuracy
        return dict(source)

    status = train_phase(
        ctx.backend, len(data.y_train), _plan(ctx, SOURCE, cfg.epochs), _with_details(ctx, details), measure
    )
    if status == "ok":
        save_checkpoint(
            checkpoint_path(cfg),
            spec,
            ctx.backend.export_weights(),
            {
                "recipe": recipe.describe(),
                "key": recipe.key,
                "trained_by": cfg.backend,
                "framework_version": ctx.backend.framework_version(),
                "source_task": cfg.task.label if cfg.task else "all",
                "source_test_acc": source["test_acc"],
            },
        )
    return status


def load_backbone(ctx: StrategyContext) -> tuple[ModelSpec, NeutralWeights, dict[str, Any]]:
    path = checkpoint_path(ctx.config)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected the shared backbone {path.name} ({recipe_for(ctx.config).describe()}). "
            f"Received: no such checkpoint in {path.parent}. "
            "Its pretrain trial failed or did not run (see the run's pretrain rows); on a cluster, this node does not "
            "see the folder the node that trained it wrote to (every node must share --results-dir's _cache through "
            "one filesystem, docs/scheduling.md); or xfbench's code changed while the run went on: a backbone's key "
            "holds a digest of the code that trains it (harness.cachekeys), so an edit or a `git pull` under a "
            "running run names another checkpoint. To fix, run it again on unchanged code."
        )
    return load_checkpoint(path)


def head_layer(spec: ModelSpec) -> Dense:
    head = spec.layers[-1]
    if not isinstance(head, Dense):
        raise InputError(
            f"Expected the model's last layer to be the Dense head. Received: {type(head).__name__} {head.name!r}. "
            "To fix, end the model with a Dense layer of one unit per class."
        )
    return head


def with_target_head(
    ctx: StrategyContext, spec: ModelSpec, weights: NeutralWeights, num_classes: int, always_new: bool
) -> tuple[ModelSpec, NeutralWeights, bool]:
    """The backbone with a head for ``num_classes``: a fresh one (harness-initialised) when the class count
    differs or ``always_new``; otherwise the backbone's own."""
    head = head_layer(spec)
    if not always_new and head.units == num_classes:
        return spec, weights, False
    target = replace(spec, num_classes=num_classes, layers=spec.layers[:-1] + (replace(head, units=num_classes),))
    # drawn for the network alone: a --normalize or resize in front of it would shift its layers' indices, and with
    # them the head's draw; the head's layer alone, as the rest is the backbone's
    network, seed = network_behind_pipeline(target), ctx.config.seed + FRESH_HEAD_SEED_OFFSET
    merged = {k: v for k, v in weights.items() if not k.startswith(f"{head.name}/")}
    merged.update(initial_weights(network, ctx.config.init, seed, only={head.name}))
    return target, merged, True


def _with_details(ctx: StrategyContext, details: dict[str, Any]) -> EpochSink:
    """A sink that adds the parameter counts and the strategy's facts to every record."""

    def sink(record: EpochRecord) -> None:
        trainable, frozen = ctx.backend.parameter_counts()
        ctx.sink(
            replace(
                record,
                extra={
                    **record.extra,
                    "trainable_params": trainable,
                    "frozen_params": frozen,
                    "details_json": json.dumps(details, sort_keys=True),
                    **backbone_columns(details),
                },
            )
        )

    return sink


def backbone_columns(details: dict[str, Any]) -> dict[str, str | float]:
    """The rows' ``weights`` / ``weights_sha256``: which pretrained weights the backbone came from ("" if none);
    ``backbone_test_acc``: the test accuracy on its source task of a backbone xfbench trained (NaN otherwise)."""
    return {
        "weights": details.get("weights", ""),
        "weights_sha256": details.get("weights_sha256", ""),
        "backbone_test_acc": details.get("backbone_test_acc", math.nan),
    }


def _pretrained_backbone(
    ctx: StrategyContext, data_shape: tuple[int, ...]
) -> tuple[ModelSpec, NeutralWeights, dict[str, Any]]:
    """The converted --pretrained / --weights checkpoint this run's preflight prepared, fed by the input pipeline
    the weights expect (the converted network starts at the model input)."""
    cfg = ctx.config
    path = checkpoint_for(cfg, transformed_shape(cfg.input, data_shape), cache_root(cfg))
    spec, weights, meta = load_checkpoint(path)
    return with_input_pipeline(spec, cfg.input, data_shape), weights, meta


def start_from_backbone(ctx: StrategyContext, head: HeadChoice) -> tuple[Dataset, ModelSpec, dict[str, Any]]:
    """Load the shared backbone, give it the ``head`` asked for, build it in the backend and hand over the data.

    ``head``: "new" always a fresh head for the target classes, "fit" a fresh one only when the class count differs,
    "as_trained" the backbone exactly as trained (a network that only extracts features: its layers, the source
    logits included, are the features; a random head would hand out random numbers)."""
    cfg = ctx.config
    data = derive(ctx.dataset, cfg.task)
    if uses_pretrained(cfg):
        spec, weights, meta = _pretrained_backbone(ctx, data.input_shape)
    else:
        spec, weights, meta = load_backbone(ctx)
    new_head = False
    if head != "as_trained":
        spec, weights, new_head = with_target_head(ctx, spec, weights, data.num_classes, head == "new")
    ctx.build(spec, weights)
    prepare_data(ctx.backend, data)
    details = {
        "backbone": meta["key"],
        "backbone_recipe": meta["recipe"],
        "backbone_trained_by": meta["trained_by"],
        "source_task": meta["source_task"],
        "target_task": cfg.task.label if cfg.task else "all",
        "new_head": new_head,
    }
    if uses_pretrained(cfg):
        details.update(weights=meta["weights"], weights_sha256=meta["sha256"])
    else:
        details.update(backbone_test_acc=meta.get("source_test_acc", math.nan))  # a hand-made checkpoint: unknown
    return data, spec, details


def _layers_of_groups(spec: ModelSpec, groups: list[str]) -> list[str]:
    wanted = set(groups)
    return [l.name for l in spec.layers if l.group in wanted]


def _train_to_the_end(ctx: StrategyContext, num_train: int, phase: str, details: dict[str, Any]) -> str:
    """One phase of all the trial's epochs, ending with the final metrics: how every new-head strategy trains."""
    return train_phase(
        ctx.backend,
        num_train,
        _plan(ctx, phase, ctx.config.epochs),
        _with_details(ctx, details),
        final_metrics=lambda b: final_metrics(ctx, b),
    )


def run_feature_extraction(ctx: StrategyContext) -> str:
    cfg = ctx.config
    data, spec, details = start_from_backbone(ctx, "new")
    head = head_layer(spec).name
    ctx.freeze(spec, [l.name for l in spec.layers if l.name != head])
    ctx.backend.set_optimizer(cfg.optimizer, cfg.regularization)
    return _train_to_the_end(ctx, len(data.y_train), FROZEN, details)


def run_fine_tune(ctx: StrategyContext) -> str:
    cfg = ctx.config
    data, spec, details = start_from_backbone(ctx, "new")
    head = head_layer(spec).name
    multiplier = cfg.transfer.backbone_lr_multiplier
    # nothing to freeze: build() leaves every layer trainable (so fine_tune needs no "freeze" capability)
    ctx.backend.set_optimizer(
        cfg.optimizer, cfg.regularization, {l.name: multiplier for l in spec.layers if l.name != head}
    )
    details["backbone_lr_multiplier"] = multiplier
    return _train_to_the_end(ctx, len(data.y_train), FINE_TUNE, details)


def run_freeze_early(ctx: StrategyContext) -> str:
    cfg = ctx.config
    data, spec, details = start_from_backbone(ctx, "new")
    groups = list(spec.groups())
    k = cfg.transfer.freeze_groups
    if not 1 <= k < len(groups):  # preflight says how to fix it; this guards a trial that bypassed it
        raise InputError(
            f"Expected freeze_groups from 1 to {len(groups) - 1} (the groups are {groups}). Received: {k}: "
            "freeze_early would freeze nothing or train nothing. To fix, give --freeze-groups in that range."
        )
    frozen = _layers_of_groups(spec, groups[:k])
    ctx.freeze(spec, frozen)
    # S3's variant is S3 with the early layers frozen: the backbone layers left training take fine_tune's rate (0.1 x
    # the head's); at the head's rate the suites' freeze_early against fine_tune changed two things at once
    head, multiplier = head_layer(spec).name, cfg.transfer.backbone_lr_multiplier
    training = {l.name: multiplier for l in spec.layers if l.name != head and l.name not in set(frozen)}
    ctx.backend.set_optimizer(cfg.optimizer, cfg.regularization, training)
    details["frozen_groups"] = groups[:k]
    details["backbone_lr_multiplier"] = multiplier
    return _train_to_the_end(ctx, len(data.y_train), FREEZE_EARLY, details)


def run_transfer(ctx: StrategyContext) -> str:
    cfg = ctx.config
    data, spec, details = start_from_backbone(ctx, "fit")
    epochs = dict(training_phases(cfg))
    frozen_epochs = epochs.get(FROZEN, 0)
    sink = _with_details(ctx, details)
    finals = lambda b: final_metrics(ctx, b)  # noqa: E731
    status = "ok"
    if frozen_epochs:
        ctx.freeze(spec, _layers_of_groups(spec, [g for g in spec.groups() if g != "classifier"]))
        ctx.backend.set_optimizer(cfg.optimizer, cfg.regularization)
        # the final metrics come after the frozen phase's last epoch only when no unfrozen one follows, but after a
        # diverged epoch always: the trial ends there, and its test metrics with it
        frozen_plan = replace(_plan(ctx, FROZEN, frozen_epochs), last_phase=frozen_epochs == cfg.epochs)
        status = train_phase(ctx.backend, len(data.y_train), frozen_plan, sink, final_metrics=finals)
    if status == "ok" and cfg.epochs > frozen_epochs:
        # Unfreezing starts a fresh optimizer, as recompiling does in Keras.
        ctx.freeze(spec, [])
        ctx.backend.set_optimizer(cfg.optimizer, cfg.regularization)
        status = train_phase(
            ctx.backend,
            len(data.y_train),
            _plan(ctx, UNFROZEN, cfg.epochs - frozen_epochs, offset=frozen_epochs),
            sink,
            final_metrics=finals,
        )
    return status
