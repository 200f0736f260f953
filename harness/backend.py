"""The small protocol every framework adapter implements, how one is loaded, and what each can do.

Adapters live in ``backends/<name>/adapter.py`` and are imported only inside the
process that runs a trial (``load_backend``), so the harness itself never
imports a framework. What a backend can do is declared, framework-free, in
``backends/<name>/capabilities.py``; the driver reads it before Ray starts
(:func:`fit_to_capabilities`, :func:`check_capabilities`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights

if TYPE_CHECKING:
    from harness.config import TrialConfig

BACKENDS = ("torch", "tensorflow")

# Speed options a backend honours only with a capability: (RuntimeOptions field, capability, command-line option).
# On a backend without the capability the option is turned off for that backend's trials, so each row's
# config_json records what its process applied; an option that applies to no selected backend is an error.
OPTIONAL_RUNTIME = (
    ("jit_compile", "jit_compile", "--jit-compile"),
    ("torch_compile", "torch_compile", "--torch-compile"),
)
# What a strategy cannot run without: a trial whose backend lacks one is an error, never a silent difference.
STRATEGY_NEEDS: dict[str, tuple[str, ...]] = {
    "feature_extraction": ("freeze",),
    "freeze_early": ("freeze",),
    "transfer": ("freeze",),
    "fine_tune": ("per_group_lr",),
}


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

    def set_optimizer(
        self,
        config: OptimizerConfig,
        regularization: RegularizationConfig = RegularizationConfig(),
        lr_multipliers: Mapping[str, float] | None = None,
    ) -> None:
        """Create a fresh optimizer (state zeroed) from a resolved config, with gradient clipping from the config
        and the kernel penalties / max-norm constraint of ``regularization``. ``lr_multipliers`` maps layer names
        to a factor on the learning rate (per-group learning rates; layers not named use 1)."""

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        """Hold a split on the device so batches are gathered without copies from numpy."""

    def train_epoch(
        self, split: str, batches: Sequence[np.ndarray], lrs: np.ndarray, momenta: np.ndarray | None = None
    ) -> StepStats:
        """One optimizer step per index array, in the given order, step i with learning rate ``lrs[i]`` (and
        momentum — Adam's beta1 — ``momenta[i]`` when given); returns after the device is idle."""

    def evaluate(self, split: str, batch_size: int) -> StepStats:
        """Loss and accuracy of a split in inference mode."""

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits for ``x`` in inference mode."""

    def predict_mc(self, x: np.ndarray, passes: int, seed: int, batch_size: int) -> np.ndarray:
        """(passes, n, classes) logits with dropout active and everything else (BatchNorm) in inference mode;
        the same seed gives the same passes."""


def _check_name(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"Expected a backend name. Received: backend={name!r}. Valid choices: {list(BACKENDS)}")


def load_backend(name: str, runtime: RuntimeOptions) -> Backend:
    """Import ``backends.<name>.adapter`` (and so its framework) and create its adapter."""
    _check_name(name)
    module = importlib.import_module(f"backends.{name}.adapter")
    return module.create_backend(runtime)


@functools.cache
def backend_capabilities(name: str) -> frozenset[str]:
    """What backend ``name`` declares it can do, read from ``backends/<name>/capabilities.py`` (no framework import)."""
    _check_name(name)
    return frozenset(importlib.import_module(f"backends.{name}.capabilities").CAPABILITIES)


@functools.cache
def installed_framework_version(name: str) -> str:
    """The installed version of backend ``name``'s framework, from package metadata: the driver never imports it."""
    _check_name(name)
    distribution = importlib.import_module(f"backends.{name}.capabilities").DISTRIBUTION
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} not installed"


def honoured_runtime(runtime: RuntimeOptions, backend: str) -> RuntimeOptions:
    """``runtime`` with the speed options ``backend`` cannot honour turned off."""
    able = backend_capabilities(backend)
    off = {f: False for f, capability, _ in OPTIONAL_RUNTIME if getattr(runtime, f) and capability not in able}
    return replace(runtime, **off)


def _needs(trial: TrialConfig) -> dict[str, str]:
    """Capability -> the setting of this trial that needs it."""
    needs = {capability: f"strategy {trial.strategy}" for capability in STRATEGY_NEEDS.get(trial.strategy, ())}
    if trial.runtime.device == "gpu":
        needs["gpu"] = "device gpu (--gpus-per-trial > 0)"
    if trial.runtime.dropout_rng == "shared":
        needs["shared_dropout"] = "--dropout-rng shared"
    for f, capability, flag in OPTIONAL_RUNTIME:
        if getattr(trial.runtime, f):
            needs[capability] = flag
    return needs


def check_capabilities(trials: Sequence[TrialConfig]) -> None:
    """Raise ValueError for the first trial that asks its backend for something it does not declare it can do."""
    for trial in trials:
        able = backend_capabilities(trial.backend)
        missing = {capability: why for capability, why in _needs(trial).items() if capability not in able}
        if missing:
            raise ValueError(
                f"Expected every trial to need only what its backend can do. Received: trial {trial.trial_id} needs "
                f"{sorted(missing)} (for {', '.join(missing.values())}); {trial.backend} declares {sorted(able)} "
                f"(backends/{trial.backend}/capabilities.py). Run it on another backend or drop the option; "
                "harness.backend.fit_to_capabilities turns off speed options a backend cannot honour."
            )


def fit_to_capabilities(trials: Sequence[TrialConfig]) -> list[TrialConfig]:
    """The trials with each speed option their backend cannot honour turned off (``--jit-compile`` on a torch trial,
    ``--torch-compile`` on a TensorFlow one), so config_json records what each process applies. Raises ValueError
    when an option applies to no selected backend, or a trial needs a capability its backend lacks."""
    fitted = [replace(t, runtime=honoured_runtime(t.runtime, t.backend)) for t in trials]
    selected = sorted({t.backend for t in trials})
    for f, capability, flag in OPTIONAL_RUNTIME:
        if any(getattr(t.runtime, f) for t in trials) and not any(getattr(t.runtime, f) for t in fitted):
            able = [b for b in BACKENDS if capability in backend_capabilities(b)]
            raise ValueError(
                f"Expected {flag} to apply to a selected backend (only {able} can honour it). Received: backends="
                f"{selected}. Add --backend {able[0] if able else '...'} or drop {flag}."
            )
    check_capabilities(fitted)
    return fitted
