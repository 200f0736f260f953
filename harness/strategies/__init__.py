"""Strategies, written once against the backend protocol.

A strategy receives a :class:`StrategyContext` and drives the backend through
one or more training phases, sending every epoch record to ``ctx.sink``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.backend import Backend
from harness.config import TrialConfig
from harness.data.registry import Dataset
from harness.training import EpochSink


@dataclass(frozen=True)
class StrategyContext:
    config: TrialConfig
    backend: Backend
    dataset: Dataset
    sink: EpochSink


Strategy = Callable[[StrategyContext], str]


def _registry() -> dict[str, tuple[Strategy, str]]:
    from harness.strategies import scratch

    return {"scratch": (scratch.run, scratch.DESCRIPTION)}


STRATEGY_NAMES = ("scratch",)


def get_strategy(name: str) -> Strategy:
    strategies = _registry()
    if name not in strategies:
        raise ValueError(f"Expected a strategy name. Received: strategy={name!r}. Valid choices: {sorted(strategies)}")
    return strategies[name][0]


def describe_strategies() -> dict[str, str]:
    return {name: desc for name, (_, desc) in _registry().items()}
