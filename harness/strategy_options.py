"""Options that a trial's strategy never reads, refused before any work: the row's config_json would record them
(``--sklearn-head rbf_svc`` on a scratch run) while nothing they name happened, and a reader of the results would
take the run for what its config says. An option is "set" when it differs from its default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from harness.backbone import NEEDS_BACKBONE, PRETRAIN, uses_pretrained
from harness.config import (
    AugmentConfig,
    OptimizerConfig,
    RegularizationConfig,
    ScheduleConfig,
    TransferOptions,
    TrialConfig,
)
from harness.data.tasks import TaskSpec
from harness.errors import InputError

_TRAINS_A_NETWORK = ("scratch", "feature_extraction", "fine_tune", "freeze_early", "transfer")
_DEFAULT_TRANSFER = TransferOptions()
_TRIAL_DEFAULTS = {f.name: f.default for f in fields(TrialConfig)}


@dataclass(frozen=True)
class _StrategyOption:
    path: str  # the config path it sets (an override path at or under it belongs to it)
    flag: str  # how a user sets it
    value: Callable[[TrialConfig], object]
    default: object
    read_by: tuple[str, ...]  # the strategies that read it
    trained_backbone_only: bool = False  # read only where xfbench trains the backbone (no --pretrained / --weights)
    # the strategies of read_by that read it only where xfbench trains the backbone (the others always read it)
    trained_backbone_only_in: tuple[str, ...] = ()


def _transfer(name: str, flag: str, read_by: tuple[str, ...], trained_backbone_only: bool = False) -> _StrategyOption:
    return _StrategyOption(
        f"transfer.{name}",
        flag,
        lambda t: getattr(t.transfer, name),
        getattr(_DEFAULT_TRANSFER, name),
        read_by,
        trained_backbone_only,
    )


def _trains_its_backbone(
    path: str, flag: str, value: Callable[[TrialConfig], object], default: object
) -> _StrategyOption:
    """An option of training: read by every strategy that trains a network, and by deep_features through its
    backbone's training alone (from --pretrained / --weights nothing of it trains: a scikit-learn head is fitted)."""
    read_by = (*_TRAINS_A_NETWORK, "deep_features")
    return _StrategyOption(path, flag, value, default, read_by, trained_backbone_only_in=("deep_features",))


_OPTIONS = (
    _transfer("source_task", "--source-classes", NEEDS_BACKBONE, trained_backbone_only=True),
    _transfer("source_epochs", "--source-epochs", NEEDS_BACKBONE, trained_backbone_only=True),
    _transfer("source_optimizer", "a source optimizer", NEEDS_BACKBONE, trained_backbone_only=True),
    _transfer("source_backend", "--source-backend", NEEDS_BACKBONE, trained_backbone_only=True),
    _transfer("backbone_lr_multiplier", "--backbone-lr-multiplier", ("fine_tune", "freeze_early")),
    _transfer("freeze_groups", "--freeze-groups", ("freeze_early",)),
    _transfer("frozen_epochs", "--frozen-epochs", ("transfer",)),
    _transfer("sklearn_head", "--sklearn-head", ("deep_features",)),
    _transfer("feature_layer", "--feature-layer", ("deep_features",)),
    _transfer("feature_pool", "--feature-pool", ("deep_features",)),
    # deep_features trains no network: a scikit-learn head on the backbone's features
    _StrategyOption("mc_dropout_passes", "--mc-dropout", lambda t: t.mc_dropout_passes, 0, _TRAINS_A_NETWORK),
    _StrategyOption("augment", "--augment", lambda t: t.augment, AugmentConfig(), _TRAINS_A_NETWORK),
    _StrategyOption(
        "schedule", "--schedule (and its options)", lambda t: t.schedule, ScheduleConfig(), _TRAINS_A_NETWORK
    ),
    _StrategyOption(
        "regularization",
        "--l1 / --l2 / --max-norm",
        lambda t: t.regularization,
        RegularizationConfig(),
        _TRAINS_A_NETWORK,
    ),
    # deep_features fits its head once (its one row is epoch 1; the backbone's epochs are --source-epochs) and runs
    # no training loop: Keras fit, eager steps and a compiled epoch loop are ways to train
    _StrategyOption("epochs", "--epochs", lambda t: t.epochs, 1, _TRAINS_A_NETWORK),
    _StrategyOption("runtime.tf_mode", "--tf-mode", lambda t: t.runtime.tf_mode, "custom", _TRAINS_A_NETWORK),
    _StrategyOption("runtime.epoch_loop", "--epoch-loop", lambda t: t.runtime.epoch_loop, "python", _TRAINS_A_NETWORK),
    _trains_its_backbone(
        "optimizer", "--optimizer (and its options)", lambda t: t.optimizer.resolved(), OptimizerConfig().resolved()
    ),
    _trains_its_backbone("batch_size", "--batch-size", lambda t: t.batch_size, _TRIAL_DEFAULTS["batch_size"]),
    _trains_its_backbone("init", "--init", lambda t: t.init, _TRIAL_DEFAULTS["init"]),
)


def _read_by(option: _StrategyOption, strategy: str, pretrained: bool) -> bool:
    trained_only = option.trained_backbone_only or strategy in option.trained_backbone_only_in
    return strategy in option.read_by and not (trained_only and pretrained)


def _reads(trial: TrialConfig, option: _StrategyOption) -> bool:
    if option.path == "optimizer" and _backbone_has_its_own_optimizer(trial):
        return False
    return _read_by(option, trial.strategy, uses_pretrained(trial))


def _backbone_has_its_own_optimizer(trial: TrialConfig) -> bool:
    """deep_features' optimizer trains nothing but its backbone, which a source optimizer of its own trains instead
    (a suite case's, or a search's pinned one: harness.tuning.search_base): its optimizer is then read by nothing
    (``--lr 0.05`` on imagenet_transfer_smoke was recorded on the deep_features rows, trained with Adam 1e-3)."""
    return trial.strategy == "deep_features" and trial.transfer.source_optimizer is not None


def unread_option_paths(strategy: str, pretrained: bool) -> tuple[str, ...]:
    """The config paths of the options ``strategy`` does not read (``pretrained``: it starts from --pretrained /
    --weights), for readers of recorded configs (harness.compare) that hold no TrialConfig."""
    if strategy == PRETRAIN:
        # a backbone's trial carries its target's options (harness.backbone.pretrain_trial): those of the target's
        # own strategy (frozen epochs, the head) changed nothing in it; the recipe's (source_*) describe it
        return tuple(o.path for o in _OPTIONS if o.path.startswith("transfer.") and not o.trained_backbone_only)
    return tuple(o.path for o in _OPTIONS if not _read_by(o, strategy, pretrained))


def reads_path(trial: TrialConfig, path: str) -> bool:
    """``trial``'s strategy reads the option at config ``path`` (an override's), or no strategy-specific option
    governs that path (the model, the optimizer, the data: every strategy reads those)."""
    option = next((o for o in _OPTIONS if path == o.path or path.startswith(o.path + ".")), None)
    return option is None or trial.strategy == PRETRAIN or _reads(trial, option)


def check_strategy_options(trial: TrialConfig) -> None:
    """InputError naming every option ``trial`` sets that its strategy would not read, and who reads each."""
    if trial.strategy == PRETRAIN:  # what the planner derives from a target, never a trial of its own
        raise InputError(
            f"Expected a strategy to run ({trial.case_id}). Received: strategy {PRETRAIN}, which xfbench schedules "
            "itself: the strategies that reuse a backbone (feature_extraction, deep_features, fine_tune, "
            "freeze_early, transfer) have it pretrained once per recipe and shared, and a pretrain trial of its own "
            "would save its options (augmentation, schedule, penalties) under a recipe that leaves them out. To fix, "
            "pick one of those strategies; --source-epochs and --source-classes set how the backbone trains."
        )
    unread = [o for o in _OPTIONS if o.value(trial) != o.default and not _reads(trial, o)]
    if not unread:
        return
    received = "; ".join(f"{o.flag} {_shown(o.value(trial))}, read by {_readers(o)}" for o in unread)
    it, would = ("it", "it would") if len(unread) == 1 else ("them", "they would")
    raise InputError(
        f"Expected only options that strategy {trial.strategy} reads ({trial.case_id}). Received: {received}. "
        f"Given, {would} be recorded with the results, yet change nothing. To fix, drop {it}, or pick a strategy "
        f"that reads {it}."
    )


def training_phases(trial: TrialConfig) -> tuple[tuple[str, int], ...]:
    """The phases a trial trains its target in, each (name, epochs), each with its own run of the learning-rate
    schedule: transfer's frozen epochs (all of them by default) then its unfrozen ones; one phase otherwise."""
    if trial.strategy != "transfer":
        return ((trial.strategy, trial.epochs),)
    frozen_given = trial.transfer.frozen_epochs
    frozen = trial.epochs if frozen_given is None else min(frozen_given, trial.epochs)
    return tuple((name, n) for name, n in (("frozen", frozen), ("unfrozen", trial.epochs - frozen)) if n > 0)


def check_frozen_epochs(trial: TrialConfig) -> None:
    """transfer's frozen epochs within its epochs: beyond them the reused layers never unfreeze, yet the rows would
    record the frozen count asked for (the S4b table read such a run as B-on-A's frozen-then-unfrozen recipe)."""
    frozen = trial.transfer.frozen_epochs
    if trial.strategy != "transfer" or frozen is None or frozen <= trial.epochs:
        return
    epochs = trial.epochs
    # frozen epochs from 0 (unfrozen from the start) to --epochs (frozen throughout); below --epochs some train unfrozen
    unfrozen_too = {1: "0 (unfrozen from the start)", 2: "0 or 1"}.get(epochs, f"0 to {epochs - 1}")
    raise InputError(
        f"Expected --frozen-epochs at most --epochs for {trial.case_id}: the reused layers are frozen for that many "
        f"epochs, then trained for the rest. Received: --frozen-epochs {frozen} (given, or the suite case's own) with "
        f"--epochs {epochs}, so they would never unfreeze. To fix, give --frozen-epochs {unfrozen_too} to train them "
        f"unfrozen too, {epochs} to keep them frozen throughout, or --epochs {frozen + 1} or more to keep {frozen} "
        "frozen epochs and train unfrozen after them."
    )


def _readers(option: _StrategyOption) -> str:
    if option.trained_backbone_only:
        return f"{', '.join(option.read_by)} without --pretrained / --weights"
    only = [s for s in option.read_by if s in option.trained_backbone_only_in]
    names = ", ".join(s for s in option.read_by if s not in only)
    return names + "".join(f", {s} without --pretrained / --weights" for s in only)


def _shown(value: object) -> str:
    if isinstance(value, (str, int, float)):
        return repr(value)
    if isinstance(value, TaskSpec) and value.classes and value == TaskSpec(classes=value.classes):
        return ",".join(map(str, value.classes))  # as --source-classes takes it (its label says "classes 0,1")
    for name in ("describe", "label", "name"):  # AugmentConfig.describe(), TaskSpec.label, an optimizer's name
        shown = getattr(value, name, None)
        if shown is not None:
            return str(shown() if callable(shown) else shown)
    return "set"
