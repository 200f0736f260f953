"""Shared source models: one backbone per recipe, trained once, cached by content hash.

A recipe is everything that determines a backbone's weights (model, source task, initializer, optimizer,
epochs, batch size, seed, and the framework that trains it); a model named by a spec file or a ``python:`` factory
by its content too, not only its name. Its key also holds the xfbench version, a digest of
the harness and backend source and the training framework's version (``harness.cachekeys``), so a cache written
by other code is never reused. Every target trial whose recipe hashes the same starts from the same checkpoint
file, whichever backend it runs on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness import cachekeys
from harness.augment import AugmentConfig
from harness.backend import honoured_runtime
from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions, TrialConfig
from harness.data.tasks import TaskSpec
from harness.input_pipeline import InputConfig
from harness.model_import import model_content_key
from harness.models import ModelOptions
from harness.schedules import ScheduleConfig

PRETRAIN = "pretrain"
NEEDS_BACKBONE = ("feature_extraction", "fine_tune", "freeze_early", "deep_features", "transfer")


@dataclass(frozen=True)
class BackboneRecipe:
    model: str
    # What the name leaves out: a spec file's or python: module's digest, the converting frameworks' versions
    # (harness.model_import.model_content_key): a file edited in place is another backbone, not the cached one.
    model_content: str
    model_options: ModelOptions
    dataset: str
    source_task: TaskSpec | None
    init: str
    optimizer: OptimizerConfig
    epochs: int
    batch_size: int
    seed: int
    backend: str
    input: InputConfig = InputConfig()  # the pipeline in front of the model is part of the backbone
    # What the source backend computes in and draws from: another precision, dropout generator or BatchNorm
    # arithmetic trains other weights (as the source backend applies them: its honoured runtime options).
    precision: str = "float32"
    dropout_rng: str = "shared"
    bn_statistics: str = "float32"
    tf32: bool = False  # TF32 matmuls and convolutions, where a GPU computes them (harness.exactness)
    # Under --dropout-rng framework, the compiled step that draws the masks: XLA's and torch.compile's draw other
    # masks than the eager or traced step (docs/fairness.md), so other weights ("": the shared masks, alike in every
    # mode, or no compiled step)
    framework_masks_from: str = ""
    data: str | None = None  # the dataset's content (TrialConfig.data_key): the name alone matched other images

    @property
    def key(self) -> str:
        """Recipe plus the code and framework version that train it: a change to either is another backbone."""
        content = {"recipe": asdict(self), "code": cachekeys.code_versions(self.backend)}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def features_file(self, layer: str, pool: str, task_key: str, extractor: str) -> str:
        return features_file(self.key, layer, pool, task_key, extractor)

    def describe(self) -> str:
        task = self.source_task.label if self.source_task else "all classes"
        return (
            f"{self.model} on {self.dataset} ({task}), {self.epochs} epochs {self.optimizer.name}, "
            f"seed {self.seed}, trained by {self.backend}"
        )


def features_file(backbone_key: str, layer: str, pool: str, task_key: str, extractor: str) -> str:
    """Name of the cached features of a backbone (a recipe's key, or pretrained weights' content key) at ``layer``
    as backend ``extractor`` computes them: keyed by the code and framework version of the extractor too."""
    return f"{backbone_key}-{layer}-{pool}-{task_key}-{extractor}-{cachekeys.code_tag(extractor)}.npz"


def uses_pretrained(trial: TrialConfig) -> bool:
    """The trial starts from --pretrained / --weights (harness.pretrained), not from a backbone trained here."""
    return bool(trial.transfer.pretrained or trial.transfer.weights_file)


def recipe_for(trial: TrialConfig) -> BackboneRecipe:
    """The backbone a target trial needs (or, for a pretrain trial, the one it produces)."""
    if trial.strategy == PRETRAIN:
        return BackboneRecipe(
            trial.model,
            model_content_key(trial.model),
            trial.model_options,
            trial.dataset,
            trial.task,
            trial.init,
            trial.optimizer,
            trial.epochs,
            trial.batch_size,
            trial.seed,
            trial.backend,
            trial.input,
            data=trial.data_key,
            **_numerics(trial.runtime, trial.backend),
        )
    t = trial.transfer
    source_task = t.source_task if t.source_task is not None else trial.task
    return BackboneRecipe(
        trial.model,
        model_content_key(trial.model),
        trial.model_options,
        trial.dataset,
        source_task,
        trial.init,
        (t.source_optimizer or trial.optimizer).resolved(),
        t.source_epochs,
        trial.batch_size,
        trial.seed,
        t.source_backend,
        trial.input,
        data=trial.data_key,
        **_numerics(trial.runtime, t.source_backend),
    )


def _numerics(runtime: RuntimeOptions, backend: str) -> dict[str, Any]:
    applied = honoured_runtime(runtime, backend)
    return {
        "precision": applied.precision,
        "dropout_rng": applied.dropout_rng,
        "bn_statistics": applied.bn_statistics,
        "tf32": applied.computes_tf32,
        "framework_masks_from": _compiled_masks(applied),
    }


def _compiled_masks(applied: RuntimeOptions) -> str:
    if applied.dropout_rng != "framework":
        return ""
    return ",".join(name for name in ("jit_compile", "torch_compile") if getattr(applied, name))


def cache_root(trial: TrialConfig) -> Path:
    """The trial's shared cache directory (backbones, features); the runner always sets one."""
    if not trial.cache_dir:
        raise ValueError(f"Expected a cache_dir for trial {trial.trial_id} (the runner sets one). Received: none.")
    return Path(trial.cache_dir)


def checkpoint_path(trial: TrialConfig) -> Path:
    return cache_root(trial) / "backbones" / f"{recipe_for(trial).key}.npz"


def backbone_variant(key: str) -> str:
    """The variant of the pretrain trial that trains the backbone ``key`` (a recipe's key, or a prefix of it that a
    target's details record): unique per recipe, so ids never collide, and short enough for a trial name."""
    return f"backbone-{key[:10]}"


def pretrain_trial(target: TrialConfig) -> TrialConfig:
    """The trial that trains ``target``'s backbone; its variant names the recipe so ids never collide. It runs on
    the source backend, with the speed options that backend honours (recorded as applied), and without the
    target's augmentation, learning-rate schedule and regularisation (penalties, max-norm): the recipe, which keys
    the shared checkpoint, holds none of them, so a backbone is trained as its key says whichever target asked."""
    recipe = recipe_for(target)
    return replace(
        target,
        strategy=PRETRAIN,
        backend=recipe.backend,
        task=recipe.source_task,
        epochs=recipe.epochs,
        optimizer=recipe.optimizer,
        variant=backbone_variant(recipe.key),
        sample=None,  # one backbone for every search sample and tuned re-run that shares its recipe
        tuned=False,
        mc_dropout_passes=0,
        augment=AugmentConfig(),
        schedule=ScheduleConfig(),
        regularization=RegularizationConfig(),
        runtime=honoured_runtime(target.runtime, recipe.backend),
    )


def needs_trained_backbone(trial: TrialConfig) -> bool:
    """The trial starts from a backbone a pretrain trial of the run trains (not from pretrained weights)."""
    return trial.strategy in NEEDS_BACKBONE and not uses_pretrained(trial)


def pretrain_trials(trials: list[TrialConfig]) -> list[TrialConfig]:
    """One pretrain trial per distinct backbone the targets need and the cache does not hold yet; its runtime
    options are those of a target on the source backend when there is one (as that backend's trials run)."""
    templates: dict[str, TrialConfig] = {}
    for trial in trials:
        if needs_trained_backbone(trial) and not checkpoint_path(trial).is_file():
            key = recipe_for(trial).key
            chosen = templates.setdefault(key, trial)
            source = trial.transfer.source_backend
            if chosen.backend != source and trial.backend == source:
                templates[key] = trial
    return [pretrain_trial(trial) for trial in templates.values()]
