"""The small protocol every framework adapter implements, and how one is loaded.

Adapters live in ``backends/<name>/`` and are imported only inside the
process that runs a trial (``load_backend``), so the harness itself never
imports a framework.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Collection, Mapping, Protocol, Sequence

import numpy as np

from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights

BACKENDS = ("torch", "tensorflow")


@dataclass(frozen=True)
class StepStats:
    """Sums over a pass; means are derived so partial batches weigh by their size."""

    loss_sum: float
    correct: int
    count: int
    reg_loss_sum: float = 0.0  # regularisation penalty summed over steps (weighted like loss_sum)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count

    @property
    def accuracy(self) -> float:
        return self.correct / self.count

    @property
    def reg_loss(self) -> float:
        return self.reg_loss_sum / self.count


class Backend(Protocol):
    name: str
    capabilities: frozenset[str]

    def framework_version(self) -> str: ...

    def device_name(self) -> str: ...

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        """Create the model for ``spec`` holding exactly ``weights``; ``seed`` drives framework-side randomness (dropout)."""

    def export_weights(self) -> NeutralWeights:
        """The current weights in the neutral layout (round trip of ``build``)."""

    def set_trainable(self, frozen_layers: Collection[str]) -> None:
        """Freeze exactly these layers (all others trainable): no gradient, and BatchNorm among them in inference
        mode even while training. Call set_optimizer afterwards."""

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts as the framework sees them (BN running statistics excluded)."""

    def extract_features(self, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        """Output of ``layer`` in inference mode, in the neutral layout (feature maps NHWC)."""

    def set_optimizer(self, config: OptimizerConfig, regularization: RegularizationConfig = RegularizationConfig(),
                      lr_multipliers: Mapping[str, float] | None = None) -> None:
        """Create a fresh optimizer (state zeroed) from a resolved config, with gradient clipping from the config
        and the kernel penalties / max-norm constraint of ``regularization``. ``lr_multipliers`` maps layer names
        to a factor on the learning rate (per-group learning rates; layers not named use 1)."""

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        """Hold a split on the device so batches are gathered without copies from numpy."""

    def train_epoch(self, split: str, batches: Sequence[np.ndarray], lrs: np.ndarray, momenta: np.ndarray | None = None) -> StepStats:
        """One optimizer step per index array, in the given order, step i with learning rate ``lrs[i]`` (and
        momentum — Adam's beta1 — ``momenta[i]`` when given); returns after the device is idle."""

    def evaluate(self, split: str, batch_size: int) -> StepStats:
        """Loss and accuracy of a split in inference mode."""

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits for ``x`` in inference mode."""

    def predict_mc(self, x: np.ndarray, passes: int, seed: int, batch_size: int) -> np.ndarray:
        """(passes, n, classes) logits with dropout active and everything else (BatchNorm) in inference mode;
        the same seed gives the same passes."""


def load_backend(name: str, runtime: RuntimeOptions) -> Backend:
    """Import ``backends.<name>`` (and so its framework) and create its adapter."""
    if name not in BACKENDS:
        raise ValueError(f"Expected a backend name. Received: backend={name!r}. Valid choices: {list(BACKENDS)}")
    module = importlib.import_module(f"backends.{name}")
    return module.create_backend(runtime)
