"""Trial configuration: frozen dataclasses whose ``asdict()`` travels to Ray workers.

Every hyperparameter whose default differs between PyTorch and Keras is a
field here and is resolved to a concrete value before a trial starts, so no
backend ever falls back to its framework's default.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.augment import AugmentConfig
from harness.backend import REFERENCE_BACKEND, framework_default
from harness.data.tasks import TaskSpec
from harness.errors import InputError, closest_text, unknown_name
from harness.input_pipeline import InputConfig
from harness.models import ModelOptions
from harness.schedules import ScheduleConfig

# How datasets reach Ray workers (harness.option_types.SHIP_POLICIES): "auto" ships them through the object store up
# to a size, on a cluster a size the network carries in seconds. Locally the store is this machine's shared memory,
# which a worker maps without a copy: read from the files instead, every trial re-read, checked and standardised its
# data (CIFAR-10 about 2.4 s a trial and 1.8 GB at its peak; docs/measurements.md, "Data through the object store").
# Local limit: every registry dataset.
SHIP_LIMIT_MB = 256.0
LOCAL_SHIP_LIMIT_MB = 1024.0

# The epochs of a case that no suite and no --epochs sets (`xfbench run --strategy ... --model ...`), which the
# summaries' Settings table counts as the default
DEFAULT_CASE_EPOCHS = 5

DROPOUT_RNGS = ("shared", "framework")

# How a TensorFlow trial runs its steps: "custom" a compiled tf.function step (the default), "fit" Keras Model.fit
# over a tf.data pipeline of the harness's batches, "eager" GradientTape without tf.function. Every mode runs the
# same harness.update_pipeline step, so all of them compute the same updates.
TF_MODES = ("custom", "fit", "eager")
# Who loops over an epoch's steps: "python" calls the compiled step once per batch; "compiled" runs the whole epoch
# in one compiled loop (TensorFlow: a tf.while_loop inside one tf.function), the same step inside.
EPOCH_LOOPS = ("python", "compiled")
# float32 everywhere, or bfloat16 compute with float32 variables, optimizer state and loss ("mixed_bfloat16"), or
# float16 compute the same way with dynamic loss scaling (harness.update_pipeline.LossScaleRule): GPU-targeted, it
# runs (slowly) on a CPU too. Or "float64" everywhere (parameters, activations, optimizer state, loss): the reference
# arithmetic, in which the two frameworks' different summation orders round about 5*10^8 times less than in float32,
# so networks whose float32 training is chaotic (BatchNorm over a few values, ReLUs at zero) stay together across
# backends (docs/fairness.md); slower, and not what a float32 benchmark measures.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "float64")
# What training-mode BatchNorm (its batch statistics, the normalisation, and their backward pass) computes in:
# "float32", each framework's own kernel (PyTorch's accumulates the statistics in double on a CPU, TensorFlow's
# reduces in float32, as Keras does), or "float64" in every backend, the output cast back: the two frameworks then
# round BatchNorm alike, the backends part far later, at a speed cost (docs/fairness.md). Inference uses the running
# statistics either way.
BN_STATISTICS = ("float32", "float64")

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")

# The resolved defaults follow PyTorch's, the documented semantics both backends implement.
_DEFAULT_MOMENTUM = {"momentum": 0.9, "nesterov": 0.9}
_WITHOUT_MOMENTUM = ("adam", "adamw", "adagrad", "adadelta")  # their updates read no momentum
_DEFAULT_EPS = {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-10, "adadelta": 1e-6}
_DEFAULT_RHO = {"rmsprop": 0.99, "adadelta": 0.9}
_DEFAULT_WEIGHT_DECAY = {"adamw": 0.01}
# What `xfbench list` says of each optimizer, its defaults from the tables above (PyTorch's semantics, both backends).
OPTIMIZER_DESCRIPTIONS = {
    "sgd": "plain SGD (--momentum adds heavy-ball momentum; --schedule onecycle cycles it in, as PyTorch does)",
    "momentum": f"SGD with heavy-ball momentum (--momentum, default {_DEFAULT_MOMENTUM['momentum']})",
    "nesterov": f"SGD with Nesterov momentum (--momentum, default {_DEFAULT_MOMENTUM['nesterov']})",
    "adagrad": f"Adagrad (eps {_DEFAULT_EPS['adagrad']:g})",
    "adadelta": f"Adadelta (rho {_DEFAULT_RHO['adadelta']}, eps {_DEFAULT_EPS['adadelta']:g})",
    "rmsprop": f"RMSprop (rho {_DEFAULT_RHO['rmsprop']}, eps {_DEFAULT_EPS['rmsprop']:g}; --momentum adds momentum, "
    "as --schedule onecycle's cycle does)",
    "adam": f"Adam (--beta1, --beta2: 0.9, 0.999; eps {_DEFAULT_EPS['adam']:g})",
    "adamw": f"Adam with decoupled weight decay (--weight-decay, default {_DEFAULT_WEIGHT_DECAY['adamw']})",
}


def model_label(model: str) -> str:
    """How ids, tables and comparisons name a trial's model: a spec file by its file name (trials carry its absolute
    path, Tune refuses a '/' in a trial's directory name, and runs made in different directories stay comparable),
    every other form as given."""
    return Path(model).name


TUNED = "tuned"  # how a tune run's re-runs of a backend's best config read in ids and tables


def sample_label(index: int) -> str:
    """How a search sample reads in its trial's ids and rows: ``search003``."""
    return f"search{index:03d}"


def variant_label(variant: str, sample: int | None = None, tuned: bool = False) -> str:
    """A trial's variant as ids, rows and tables spell it: the case's variant, then the search sample
    (``act_elu.search003``) or ``tuned`` for a re-run of a backend's best config (``act_elu.tuned``)."""
    parts = [variant] if variant else []
    if sample is not None:
        parts.append(sample_label(sample))
    if tuned:
        parts.append(TUNED)
    return ".".join(parts)


def case_label(strategy: str, model: str, variant: str, dataset: str) -> str:
    """strategy-model[+variant]-dataset: the one spelling of a case used in ids, tables and comparisons."""
    return f"{strategy}-{model_label(model)}{'+' + variant if variant else ''}-{dataset}"


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "momentum"
    lr: float = 0.01
    momentum: float | None = None
    weight_decay: float | None = None  # coupled L2 (added to the gradient) unless decoupled
    decoupled: bool | None = None  # decoupled decay w <- w(1 - lr*wd) before the update; default: True for adamw only
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float | None = None
    rho: float | None = None
    clip_value: float | None = None  # clip each gradient element to [-v, v] (applied first)
    clip_norm: float | None = None  # then scale all gradients so their global L2 norm is at most this

    def __post_init__(self) -> None:
        for name in ("clip_value", "clip_norm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(
                    f"Expected {name} > 0 (or unset). Received: {name}={value}. To fix, give a positive value, or "
                    "leave it out."
                )
        if self.name not in OPTIMIZERS:
            raise unknown_name("optimizer", self.name, list(OPTIMIZERS))
        if not 0 < self.lr < math.inf:  # NaN fails too
            raise InputError(
                f"Expected a finite learning rate > 0. Received: lr={self.lr}. To fix, give a positive rate such as "
                "0.01."
            )
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise InputError(
                f"Expected 0 <= momentum < 1 (--momentum). Received: momentum={self.momentum}. To fix, give a "
                "momentum in [0, 1), such as 0.9."
            )
        if self.momentum and self.name in _WITHOUT_MOMENTUM:
            hint = " Adam's first-moment decay is --beta1." if self.name in ("adam", "adamw") else ""
            raise InputError(
                f"Expected no momentum with optimizer {self.name}: it has none, so the value would be recorded but "
                f"never applied. Received: momentum={self.momentum}. To fix, drop --momentum, or choose one of "
                f"{[n for n in OPTIMIZERS if n not in _WITHOUT_MOMENTUM]}.{hint}"
            )
        for name, example in (("beta1", "0.9"), ("beta2", "0.999")):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(
                    f"Expected 0 <= {name} < 1 (--{name}, Adam's decay of its "
                    f"{'first' if name == 'beta1' else 'second'} moment). Received: {name}={getattr(self, name)}. "
                    f"To fix, give a decay in [0, 1), such as {example}."
                )
        # the defaults stand for "not given": only the values set are named (beta2=0.999 read as given too)
        betas = [
            f"{n}={v}" for n, v, default in (("beta1", self.beta1, 0.9), ("beta2", self.beta2, 0.999)) if v != default
        ]
        if self.name not in ("adam", "adamw") and betas:
            them = "it" if len(betas) == 1 else "them"
            raise InputError(
                f"Expected no --beta1 / --beta2 with optimizer {self.name}: only adam and adamw read them, so the "
                f"values would be recorded but never applied. Received: {', '.join(betas)}. To fix, drop {them}, or "
                "choose --optimizer adam or adamw."
            )
        self._check_rho_and_eps()
        if self.weight_decay is not None and self.weight_decay < 0:
            raise InputError(
                f"Expected weight_decay >= 0. Received: weight_decay={self.weight_decay}. To fix, give 0 or more."
            )
        if self.name == "adamw" and self.decoupled is False:
            raise InputError(
                "Expected decoupled weight decay for adamw. "
                "Received: decoupled=False. To fix, use --optimizer adam for coupled L2."
            )
        if self.name == "nesterov" and self.momentum == 0:
            raise InputError(
                "Expected momentum > 0 for nesterov. Received: momentum=0. To fix, give a momentum, or use "
                "--optimizer sgd."
            )

    def _check_rho_and_eps(self) -> None:
        """rho (RMSprop's and Adadelta's squared-gradient decay) and eps (the adaptive optimizers' denominator
        term) in range. Whether the optimizer reads a given one is checked where it is given
        (:func:`check_read_by`): resolved, every optimizer holds both."""
        if self.rho is not None and not 0 <= self.rho < 1:
            raise InputError(f"Expected 0 <= rho < 1 (--rho). Received: rho={self.rho}. To fix, give e.g. 0.9.")
        if self.eps is not None and not 0 < self.eps < math.inf:
            raise InputError(f"Expected a finite eps > 0 (--eps). Received: eps={self.eps}. To fix, give e.g. 1e-7.")

    def resolved(self) -> OptimizerConfig:
        """A copy with every optional field filled with its documented default."""
        return dataclasses.replace(
            self,
            momentum=self.momentum if self.momentum is not None else _DEFAULT_MOMENTUM.get(self.name, 0.0),
            weight_decay=self.weight_decay
            if self.weight_decay is not None
            else _DEFAULT_WEIGHT_DECAY.get(self.name, 0.0),
            eps=self.eps if self.eps is not None else _DEFAULT_EPS.get(self.name, 1e-8),
            rho=self.rho if self.rho is not None else _DEFAULT_RHO.get(self.name, 0.9),
            decoupled=self.decoupled if self.decoupled is not None else self.name == "adamw",
        )

    @property
    def scheduled_momentum(self) -> str | None:
        """The hyperparameter a momentum schedule (1cycle's) drives, in both backends: Adam's first-moment decay
        ``beta1``, the ``momentum`` of SGD and RMSprop; None for Adagrad and Adadelta, which have neither."""
        if self.name in ("adam", "adamw"):
            return "beta1"
        return None if self.name in _WITHOUT_MOMENTUM else "momentum"

    @property
    def held_momentum(self) -> float:
        """The value of :attr:`scheduled_momentum` when no schedule drives it (0 where there is none)."""
        if self.scheduled_momentum == "beta1":
            return self.beta1
        return float(self.momentum or 0.0) if self.scheduled_momentum else 0.0


# The optimizers that read each of these fields (the others hold the resolved default, unread)
_READERS = {"rho": tuple(_DEFAULT_RHO), "eps": tuple(_DEFAULT_EPS)}


def check_read_by(optimizer: str, given: Mapping[str, object]) -> None:
    """``given`` optimizer fields (``rho``, ``eps``) set for ``optimizer``: refused where it does not read them, as
    the value would be recorded but never applied."""
    for name, readers in _READERS.items():
        if name in given and given[name] is not None and optimizer not in readers:
            raise InputError(
                f"Expected no --{name} with optimizer {optimizer}: only {', '.join(readers)} read it, so the value "
                f"would be recorded but never applied. Received: {name}={given[name]}. To fix, drop --{name}, or "
                "choose one of those optimizers."
            )


def check_decay_to_decouple(optimizer: OptimizerConfig) -> None:
    """``--decoupled-weight-decay`` with a weight decay of 0 (``optimizer`` resolved: the default of every optimizer
    but adamw, whose decay is always decoupled) is refused: recorded, it would say that a decay was decoupled.
    Checked where a trial trains (the preflight, on a search's points rather than its base), not when a config is
    built: a search may sample the decay."""
    if optimizer.decoupled and not optimizer.weight_decay and optimizer.name != "adamw":
        raise InputError(
            f"Expected a weight decay to decouple with --decoupled-weight-decay. Received: {optimizer.name} with a "
            "weight decay of 0 (every optimizer's default but adamw's), so the flag would be recorded but never "
            "applied. To fix, give --weight-decay RATE (or search it), or drop --decoupled-weight-decay."
        )


def check_momentum_to_cycle(optimizer: OptimizerConfig, schedule: ScheduleConfig) -> None:
    """1cycle's momenta other than their defaults for an optimizer that has no momentum (Adagrad, Adadelta) are
    refused: recorded, they would say the momentum cycled between them. Checked where a trial trains, as
    :func:`check_decay_to_decouple`: a search may sample the optimizer."""
    defaults = ScheduleConfig("onecycle")
    given = {
        name: getattr(schedule, name)
        for name in ("max_momentum", "min_momentum")
        if getattr(schedule, name) != getattr(defaults, name)
    }
    if schedule.cycles_momentum and optimizer.scheduled_momentum is None and given:
        raise InputError(
            f"Expected 1cycle's momenta only with an optimizer that has a momentum (or Adam's beta1) to cycle. "
            f"Received: {', '.join(f'{k}={v}' for k, v in given.items())} with {optimizer.name}, which has none, so "
            "they would be recorded but never applied. To fix, drop them, or pick momentum, nesterov, rmsprop, adam or "
            "adamw."
        )


@dataclass(frozen=True)
class RegularizationConfig:
    """Penalties on every Conv/Dense kernel (not biases, not BatchNorm), and a max-norm constraint.

    The penalty l1·Σ|w| + l2·Σw² (Keras' convention: no ½) is added to the loss that is differentiated, and
    reported separately as ``train_reg_loss``; ``train_loss`` stays the data loss. ``max_norm`` rescales, after
    each step, every output unit's incoming weight vector to an L2 norm of at most max_norm (Keras' MaxNorm).
    """

    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None

    def __post_init__(self) -> None:
        if self.l1 < 0 or self.l2 < 0 or (self.max_norm is not None and not self.max_norm > 0):
            raise InputError(
                f"Expected l1 >= 0, l2 >= 0 and max_norm > 0. "
                f"Received: l1={self.l1}, l2={self.l2}, max_norm={self.max_norm}. To fix, give penalties of 0 or more "
                "and a positive max-norm (or none)."
            )

    @property
    def active(self) -> bool:
        return bool(self.l1 or self.l2)


SKLEARN_HEADS = ("linear_svc", "random_forest", "rbf_svc", "logistic_regression")


@dataclass(frozen=True)
class TransferOptions:
    """Options of the strategies that start from a backbone (S2, S3, S4)."""

    source_task: TaskSpec | None = None  # the backbone's task on the trial's dataset; None: the target task itself
    source_epochs: int = 5
    source_optimizer: OptimizerConfig | None = None  # None: the trial's optimizer
    source_backend: str = REFERENCE_BACKEND  # which framework trains the shared backbone (recorded with every trial)
    backbone_lr_multiplier: float = 0.1  # fine_tune, freeze_early: backbone rate = multiplier x head rate
    freeze_groups: int = 1  # freeze_early: the first k layer groups stay frozen
    frozen_epochs: int | None = None  # transfer: epochs with the reused layers frozen before unfreezing (None: all)
    feature_layer: str | None = None  # deep_features: layer whose output is the feature (None: the head's input)
    feature_pool: str = "flatten"  # deep_features: "flatten" or "avg" (global average over H, W) for feature maps
    sklearn_head: str = "linear_svc"
    # Pretrained weights instead of a backbone xfbench trains (harness.pretrained): a framework zoo's set
    # ("torchvision:resnet18", "keras:MobileNetV2") or a user's file (absolute path); at most one of the two.
    pretrained: str | None = None
    weights_file: str | None = None

    def __post_init__(self) -> None:
        for name, least in (("source_epochs", 1), ("freeze_groups", 0), ("frozen_epochs", 0)):
            value = getattr(self, name)
            if value is not None and value < least:
                flag = "--" + name.replace("_", "-")
                raise InputError(
                    f"Expected {flag} >= {least}. Received: {flag} {value}. To fix, give a value of {least} or more."
                )
        check_epochs("--source-epochs", self.source_epochs)
        if self.feature_pool not in ("flatten", "avg"):
            raise unknown_name("feature_pool", self.feature_pool, ["flatten", "avg"])
        if self.sklearn_head not in SKLEARN_HEADS:
            raise InputError(
                f"Expected a scikit-learn head. Received: {self.sklearn_head!r}. To fix, "
                f"{closest_text(self.sklearn_head, SKLEARN_HEADS, '--sklearn-head')}pick one of {list(SKLEARN_HEADS)} "
                "(--sklearn-head)."
            )
        if not self.backbone_lr_multiplier > 0:
            raise InputError(
                f"Expected backbone_lr_multiplier > 0. Received: {self.backbone_lr_multiplier}. To fix, give a "
                "positive multiplier (1: the backbone trains at the head's rate)."
            )


FAULT_ACTIONS = ("raise", "kill", "raise-once")

# Each epoch is a results row that the driver holds until its trial ends (about 2.4 KB with the trial's config):
# 100,000 epochs hold about 240 MB per running trial. A count above it is a typo, not a benchmark.
MAX_EPOCHS = 100_000


def check_epochs(name: str, value: int) -> None:
    if value > MAX_EPOCHS:
        raise InputError(
            f"Expected {name} <= {MAX_EPOCHS:,} (each epoch is a row the driver keeps until its trial ends, about "
            f"2.4 KB). Received: {name}={value}. To fix, give a smaller count."
        )


@dataclass(frozen=True)
class FaultInjection:
    """Test-only: what a trial's worker does to itself, and when. ``raise`` raises an exception, ``kill`` sends
    itself SIGKILL, ``raise-once`` raises only while ``marker`` (an absolute path: trials change directory) does not
    exist, creating it, so the retry succeeds. ``epoch`` 0 is the trial's start, before training; N > 0 is after
    epoch N's row. ``seed``: only in the trials of that seed (a tune's samples run the base's seed, its final
    stage seeds 0..K-1), None: in every trial."""

    action: str
    epoch: int = 0
    marker: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            raise unknown_name("action", self.action, list(FAULT_ACTIONS))
        if self.epoch < 0:
            raise InputError(
                f"Expected a fault's epoch >= 0 (0: at the start). Received: {self.epoch}. To fix, give 0 or a later "
                "epoch."
            )
        if (self.action == "raise-once") != bool(self.marker) or (self.marker and not self.marker.startswith("/")):
            raise InputError(
                "Expected an absolute marker path with action 'raise-once' and none otherwise. "
                f"Received: action={self.action!r}, marker={self.marker!r}. To fix, give raise-once an absolute "
                "marker path, and the other actions none."
            )

    @classmethod
    def recorded(cls, value: dict[str, Any] | str | None) -> FaultInjection | None:
        """From a recorded runtime: None, or the fields. Rows written before 2026-12-02 hold text: "" (no fault),
        or "ACTION@start", "ACTION@epochN", with ":MARKER" after raise-once's."""
        if not value:
            return None
        if isinstance(value, dict):
            return cls(**value)
        action, _, moment = value.partition("@")
        when, _, marker = moment.partition(":")
        if when != "start" and not (when.startswith("epoch") and when.removeprefix("epoch").isdigit()):
            raise InputError(
                f"Expected a recorded inject_fault ACTION@start or ACTION@epochN[:MARKER]. Received: {value!r}. "
                "To fix, rerun the trial: the recording is damaged."
            )
        return cls(action, 0 if when == "start" else int(when.removeprefix("epoch")), marker)


@dataclass(frozen=True)
class RuntimeOptions:
    """Settings that decide speed; every one is recorded with the results."""

    threads: int = 1
    device: str = "cpu"  # "cpu" | "gpu"
    jit_compile: bool = False  # TensorFlow: XLA for the compiled train step
    torch_compile: bool = False
    deterministic: bool = False
    # cuDNN's autotuning of convolution algorithms on NVIDIA GPUs (--cudnn-autotune on): set explicitly in both
    # backends at trial start, because their defaults differ (TensorFlow times the candidates, torch picks by
    # heuristics unless cudnn.benchmark). No effect on a CPU.
    cudnn_autotune: bool = False
    precision: str = "float32"  # one of PRECISIONS
    tf_mode: str = "custom"  # one of TF_MODES (TensorFlow only; recorded "custom" on other backends)
    epoch_loop: str = "python"  # one of EPOCH_LOOPS (TensorFlow's custom mode; recorded "python" elsewhere)
    channels_last: bool = False  # PyTorch: channels_last memory format for the model and the images
    # TF32 matmuls and convolutions on NVIDIA GPUs (--tf32 on): set explicitly in both backends at trial start,
    # because their defaults differ (TensorFlow on; torch off for matmuls, on for cuDNN). No effect on a CPU.
    tf32: bool = False
    # Dropout masks: "shared" draws them from harness.dropout_rng's counter-based generator, identically in every
    # backend; "framework" uses each framework's own generator (masks then differ between backends).
    dropout_rng: str = "shared"
    bn_statistics: str = "float32"  # one of BN_STATISTICS: what training-mode BatchNorm computes in, every backend
    # Test-only: seconds added to every training step inside the timed region, to simulate a regression.
    inject_step_delay_s: float = 0.0
    # Test-only: a fault raised or a SIGKILL at a moment of the trial (harness.scheduler._apply_fault).
    inject_fault: FaultInjection | None = None

    @property
    def variable_dtype(self) -> str:
        """What parameters, optimizer state, hyperparameters and the loss's sums are held in: float64 under
        --precision float64, float32 otherwise (the mixed precisions keep float32 variables and loss)."""
        return "float64" if self.precision == "float64" else "float32"

    def __post_init__(self) -> None:
        if self.inject_step_delay_s < 0:
            raise InputError(
                f"Expected inject_step_delay_s >= 0. Received: {self.inject_step_delay_s}. To fix, give 0 or more."
            )
        if self.threads < 1:
            raise InputError(f"Expected threads >= 1. Received: threads={self.threads}. To fix, give 1 or more.")
        if self.device not in ("cpu", "gpu"):
            raise unknown_name("device", self.device, ["cpu", "gpu"])
        if self.dropout_rng not in DROPOUT_RNGS:
            raise unknown_name("dropout_rng", self.dropout_rng, list(DROPOUT_RNGS))
        if self.precision not in PRECISIONS:
            raise unknown_name("precision", self.precision, list(PRECISIONS))
        if self.bn_statistics not in BN_STATISTICS:
            raise unknown_name("bn_statistics", self.bn_statistics, list(BN_STATISTICS))
        if self.cudnn_autotune and self.deterministic:
            raise InputError(
                "Expected cudnn_autotune off in a deterministic trial: autotuning picks convolution algorithms by "
                "timing them, so two runs may compute with different ones. Received: cudnn_autotune=True with "
                "deterministic=True. To fix, drop --cudnn-autotune on for deterministic trials."
            )
        # The CLI's choices refuse a bad flag first; a suite's case or a Python caller reaches these two.
        if self.tf_mode not in TF_MODES:
            raise unknown_name("tf_mode", self.tf_mode, TF_MODES)
        if self.epoch_loop not in EPOCH_LOOPS:
            raise unknown_name("epoch_loop", self.epoch_loop, EPOCH_LOOPS)
        if self.epoch_loop == "compiled" and self.tf_mode != "custom":
            raise InputError(
                "Expected --epoch-loop compiled only with --tf-mode custom: the compiled loop runs the custom step. "
                f"Received: epoch_loop='compiled' with tf_mode={self.tf_mode!r}. To fix, drop --epoch-loop compiled "
                f"or --tf-mode {self.tf_mode}, whichever you gave (a suite's case may set the other)."
            )
        if self.epoch_loop == "compiled" and self.jit_compile:
            raise InputError(
                "Expected --epoch-loop compiled without --jit-compile: XLA's CPU code for the compiled epoch loop ran "
                "1,321 samples/s on convnet3 against 9,286 for XLA's per-step loop (docs/measurements.md). Received: "
                "epoch_loop='compiled' with jit_compile=True. To fix, drop --epoch-loop compiled or --jit-compile."
            )
        if self.tf_mode == "fit" and self.jit_compile and self.deterministic:
            raise InputError(
                "Expected --jit-compile with --tf-mode fit outside deterministic trials: Keras' fit turns XLA off "
                "under TensorFlow's op determinism (with only a warning), so the trial would record XLA it never "
                "used. Received: tf_mode='fit', jit_compile=True, deterministic=True. To fix, drop "
                "deterministic=True, or use --tf-mode custom, whose step XLA compiles in deterministic trials too."
            )
        if self.tf_mode == "eager" and self.jit_compile:
            raise InputError(
                "Expected --jit-compile only with a compiled TensorFlow mode (custom, fit). Received: tf_mode='eager' "
                "with jit_compile=True. To fix, drop --jit-compile or pick --tf-mode custom|fit."
            )

    @property
    def computes_tf32(self) -> bool:
        """Whether float32 matmuls and convolutions run in TF32: --tf32 on, on a GPU (a CPU computes none), outside
        float64 (which TF32 leaves alone). What it trains differs: backbone and feature cache keys hold it."""
        return self.tf32 and self.device == "gpu" and self.precision != "float64"

    def process_settings(self) -> tuple[str, ...]:
        """The settings, among those not at their default, whose effect outlives a trial in its worker process:
        a warm worker hands its process on only to trials with the same ones (harness.scheduler). Each as a label
        for the worker group's name: a switch by its name (``jit_compile``), the device by its value (``gpu``).

        Why each: a default-mode resnet20 trial ran 11-35 % slower after an XLA trial in the same TensorFlow
        process, which kept XLA's thread pools (the cause is not pinned down, docs/measurements.md); TensorFlow's op
        determinism cannot be switched off once on; torch.compile keeps dynamo's caches and inductor's compile
        workers; TensorFlow fixes its visible devices when its runtime starts; TensorFlow's eager mode caches each
        op's kernel, built under the cuDNN autotuning setting of its time, for later trials in the process."""
        values = {name: getattr(self, name) for name in PROCESS_WIDE_SETTINGS}
        return tuple(
            name if isinstance(value, bool) else str(value)
            for name, value in values.items()
            if value != _RUNTIME_DEFAULTS[name]
        )


PROCESS_WIDE_SETTINGS = ("cudnn_autotune", "device", "deterministic", "jit_compile", "torch_compile")
_RUNTIME_DEFAULTS = {name: getattr(RuntimeOptions(), name) for name in PROCESS_WIDE_SETTINGS}


def recorded_runtime(runtime: dict[str, Any], backend: str) -> dict[str, Any]:
    """A trial's recorded runtime options in today's names. Rows written before 2026-12-01 hold ``cudnn_benchmark``
    (off unless set from Python), a switch only the PyTorch backend applied: each backend's trials then ran with
    the switch if it was on, or else with their framework's own default (TensorFlow autotuned)."""
    runtime = dict(runtime)
    runtime["inject_fault"] = FaultInjection.recorded(runtime.get("inject_fault"))
    if "cudnn_benchmark" in runtime:
        switched_on = bool(runtime.pop("cudnn_benchmark"))
        runtime["cudnn_autotune"] = switched_on or bool(framework_default(backend, "cudnn_autotune"))
    return runtime


def check_finite_settings(trial: TrialConfig) -> None:
    """A new trial's numbers are finite: a NaN passes each range check and trains a diverging or unregularised
    network under its name. Checked where trials are made (preflight, a search's points), not where recorded ones
    are read back: a run recorded with one ran so, and its rows must still read."""
    for path, value in _non_finite_numbers(trial):
        raise InputError(
            f"Expected finite numbers in every setting of a trial. Received: {path}={value}. To fix, give a finite "
            "value."
        )


def _non_finite_numbers(config: Any, prefix: str = "") -> list[tuple[str, float]]:
    """Every float of a config (nested configs and tuples of floats too) that is NaN or infinite: path -> value."""
    found: list[tuple[str, float]] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found.extend(_non_finite_numbers(value, f"{prefix}{f.name}."))
        values = value if isinstance(value, tuple) else (value,)
        found.extend((f"{prefix}{f.name}", v) for v in values if isinstance(v, float) and not math.isfinite(v))
    return found


@dataclass(frozen=True)
class TrialConfig:
    strategy: str
    model: str
    dataset: str
    backend: str
    seed: int
    epochs: int
    batch_size: int = 64
    eval_batch_size: int = 1000
    init: str = "he_normal"
    suite: str = "adhoc"
    variant: str = ""  # label of a technique/option variant of a suite case ("" for the plain case)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    model_options: ModelOptions = field(default_factory=ModelOptions)
    input: InputConfig = field(default_factory=InputConfig)  # resize / channels / normalisation before the model
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # random crop / flip of training batches (off)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    mc_dropout_passes: int = 0  # > 0: after training, N stochastic passes over the test set (MC dropout)
    task: TaskSpec | None = None  # the target task carved out of the dataset (None: the whole dataset)
    transfer: TransferOptions = field(default_factory=TransferOptions)
    sample: int | None = None  # a search trial's sample number in its experiment (None outside searches)
    tuned: bool = False  # a tune run's re-run of a backend's best config (its final stage)
    cache_dir: str | None = None  # absolute: shared backbones and features (set by the runner)
    data_dir: str | None = None
    # What the dataset held when preflight read it (harness.data.registry.data_fingerprint; set by the runner): part of
    # a shared backbone's recipe, so another copy of a dataset under its name (a user's MNIST-format files, then the
    # real ones) trains its own backbone instead of reusing one trained on other images; a worker that reads other
    # data under the name refuses the trial. None: a run recorded before 2026-12-05, or trials run without preflight.
    data_key: str | None = None
    # What its --model's own files held when the run began (harness.model_import.user_model_key: a spec file's or
    # python: module's digest; "" where xfbench or a framework defines the model; set by the runner): a trial, or a
    # resume, that finds them edited since refuses to train another network under the case's name. None: not recorded.
    model_key: str | None = None
    # The sha256 of its --pretrained / --weights file when the run's preflight converted it (set by the runner): the
    # trial loads the conversion of that content (a run beside it, or a resume, converting an edited file under the
    # same path no longer hands it other weights), and a resume that finds the file edited refuses. None: no
    # pretrained weights, or not recorded (runs before 2026-12-05, trials run without preflight).
    weights_key: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"Expected epochs >= 1. Received: epochs={self.epochs}. To fix, give 1 or more.")
        check_epochs("epochs", self.epochs)
        if self.mc_dropout_passes < 0:
            raise InputError(
                f"Expected mc_dropout_passes >= 0. Received: {self.mc_dropout_passes}. To fix, give 0 (none) or more."
            )
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise InputError(
                f"Expected batch sizes >= 1. "
                f"Received: batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size}. To fix, give 1 or "
                "more."
            )
        if self.augment.active and self.runtime.epoch_loop == "compiled":
            raise InputError(
                "Expected --epoch-loop python with --augment: the compiled epoch loop runs the steps without each "
                f"step's crop and flip. Received: --epoch-loop compiled and --augment {self.augment.describe()}. "
                "To fix, drop --epoch-loop compiled to train with augmentation, or drop the augmentation to time the "
                "compiled loop."
            )
        # Resolve optimizer defaults here so every recorded config states each value actually used.
        object.__setattr__(self, "optimizer", self.optimizer.resolved())

    @property
    def trial_id(self) -> str:
        return f"{self.suite}-{self.case_id}-{self.backend}-s{self.seed}"

    @property
    def scores_test_split(self) -> bool:
        """False for a search sample: a search picks by validation, and a sample's test accuracy beside it (in its
        progress line, its row, MLflow) invited picking by the test split; the re-runs of the pick score it."""
        return self.sample is None

    @property
    def variant_label(self) -> str:
        """The variant as rows and ids spell it: the case's, with the search sample or ``tuned`` after it."""
        return variant_label(self.variant, self.sample, self.tuned)

    @property
    def case_id(self) -> str:
        """The comparison key shared by both backends' trials."""
        return case_label(self.strategy, self.model, self.variant_label, self.dataset)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialConfig:
        data = dict(data)
        data["optimizer"] = OptimizerConfig(**data["optimizer"])
        schedule = dict(data["schedule"])
        schedule["boundaries"], schedule["values"] = tuple(schedule["boundaries"]), tuple(schedule["values"])
        data["schedule"] = ScheduleConfig(**schedule)
        data["regularization"] = RegularizationConfig(**data["regularization"])
        data["task"] = _task_from_dict(data.get("task"))
        transfer = dict(data.get("transfer") or {})
        if transfer:
            transfer["source_task"] = _task_from_dict(transfer.get("source_task"))
            if transfer.get("source_optimizer"):
                transfer["source_optimizer"] = OptimizerConfig(**transfer["source_optimizer"])
        data["transfer"] = TransferOptions(**transfer)
        options = dict(data["model_options"])
        options["hidden"] = tuple(options["hidden"])
        data["model_options"] = ModelOptions(**options)
        data["runtime"] = RuntimeOptions(**recorded_runtime(data["runtime"], data["backend"]))
        data["input"] = InputConfig(**(data.get("input") or {}))
        data["augment"] = AugmentConfig(**(data.get("augment") or {}))  # absent in rows written before augmentation
        if "tuned" not in data:  # written when the variant spelled the sample and `tuned` itself (before 2026-12-02)
            data["variant"], data["tuned"] = _legacy_variant(data["variant"], data.get("sample"))
        return cls(**data)


def _legacy_variant(variant: str, sample: int | None) -> tuple[str, bool]:
    """The case's variant and the tuned flag of a record whose variant holds the label as well."""
    parts = variant.split(".") if variant else []
    tuned = parts[-1:] == [TUNED]
    if tuned:
        parts.pop()
    if sample is not None and parts[-1:] == [sample_label(sample)]:
        parts.pop()
    return ".".join(parts), tuned


def _task_from_dict(data: dict | None) -> TaskSpec | None:
    if not data:
        return None
    data = dict(data)
    if data.get("classes") is not None:
        data["classes"] = tuple(data["classes"])
    return TaskSpec(**data)
