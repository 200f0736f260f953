"""Strategies, written once against the backend protocol.

A strategy receives a :class:`StrategyContext` and drives the backend through
one or more training phases, sending every epoch record to ``ctx.sink``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from harness.backend import Backend
from harness.config import TrialConfig
from harness.data.registry import Dataset
from harness.errors import unknown_name
from harness.model_cost import step_macs
from harness.spec import ModelSpec
from harness.training import EpochSink
from harness.weights import NeutralWeights


def _ignore(spec: ModelSpec, timed_macs: int) -> None:
    pass


@dataclass(frozen=True)
class StrategyContext:
    config: TrialConfig
    backend: Backend
    dataset: Dataset
    sink: EpochSink
    # told the model a strategy trains and the multiply-accumulates per sample of the work its next rows time (the
    # rows' cost columns)
    on_model: Callable[[ModelSpec, int], None] = _ignore

    def build(self, spec: ModelSpec, weights: NeutralWeights) -> None:
        """Build ``spec`` with ``weights`` in the backend, seeded by the trial; nothing frozen."""
        self.backend.build(spec, weights, seed=self.config.seed)
        self.on_model(spec, step_macs(spec))

    def freeze(self, spec: ModelSpec, frozen: Collection[str]) -> None:
        """Freeze exactly the layers ``frozen`` of the built ``spec``: the next rows' steps cost less."""
        self.backend.freeze_layers(frozen)
        self.on_model(spec, step_macs(spec, frozen))


Strategy = Callable[[StrategyContext], str]


def _registry() -> dict[str, tuple[Strategy, str]]:
    from harness.strategies import deep_features, reuse, scratch

    return {
        "scratch": (scratch.run, scratch.DESCRIPTION),
        "pretrain": (
            reuse.run_pretrain,
            "train a backbone on its source task and cache it as a neutral checkpoint (scheduled automatically for "
            "the strategies below, never selected)",
        ),
        "feature_extraction": (reuse.run_feature_extraction, "S2: frozen backbone, new head trained alone"),
        "deep_features": (
            deep_features.run,
            "S2: backbone features + a scikit-learn classifier "
            "(linear_svc, random_forest, rbf_svc, logistic_regression)",
        ),
        "fine_tune": (
            reuse.run_fine_tune,
            "S3: new head, whole network trained, backbone lr = --backbone-lr-multiplier (0.1) x head lr",
        ),
        "freeze_early": (
            reuse.run_freeze_early,
            "S3: new head, first k layer groups frozen, the rest fine-tuned (backbone lr = --backbone-lr-multiplier x "
            "head lr)",
        ),
        "transfer": (
            reuse.run_transfer,
            "S4: reuse the backbone (a new head only if the class count differs), every group but classifier frozen "
            "(--frozen-epochs N: unfrozen after N epochs)",
        ),
    }


def get_strategy(name: str) -> Strategy:
    strategies = _registry()
    if name not in strategies:
        raise unknown_name("strategy", name, list(strategies))
    return strategies[name][0]


def describe_strategies() -> dict[str, str]:
    return {name: desc for name, (_, desc) in _registry().items()}


def strategy_phases() -> dict[str, tuple[str, ...]]:
    """The phases each strategy's rows name, in the order they come, from the constants its code writes them with."""
    from harness.strategies import deep_features, reuse, scratch

    return {"scratch": (scratch.PHASE,), **reuse.PHASES, "deep_features": (deep_features.PHASE,)}
