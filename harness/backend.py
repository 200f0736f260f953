"""The registry of backends, the small protocol every framework adapter implements, how one is loaded, and what
each can do.

:data:`REGISTRY` is the one place outside ``backends/`` that names a framework as a backend: every other module asks
it (or :data:`BACKENDS`, :data:`REFERENCE_BACKEND`), so adding a backend is a package under ``backends/`` plus one
entry here. Model hubs and weight-file formats are named by their own modules (``torchvision:`` / ``keras:`` refs
and preprocessing in ``pretrained.py``, file suffixes in ``weight_files.py``), which map them to backends here.
Adapters live in ``backends/<name>/adapter.py`` and are imported only inside the process that runs a trial
(``load_backend``), so the harness itself never imports a framework. What a backend can do is declared,
framework-free, in ``backends/<name>/capabilities.py``; the driver reads it before Ray starts
(:func:`fit_to_capabilities`, :func:`check_capabilities`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import re
import shutil
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import InputError, unknown_name

# Types only. harness.config reads REFERENCE_BACKEND from here: importing it at run time would be a cycle. numpy,
# the spec and the weights are the protocol's types: left out, the pytest plugin, which pytest loads in every run of
# the environment, reads BACKENDS without numpy.
if TYPE_CHECKING:
    import numpy as np

    from harness.augment import EpochAugment
    from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions, TrialConfig
    from harness.spec import ModelSpec
    from harness.weights import NeutralWeights


@dataclass(frozen=True)
class BackendEntry:
    """Where one backend's modules live and which framework models its importer converts."""

    name: str  # what --backend, TrialConfig.backend and the results' backend column say
    adapter_module: str  # imported only in a trial's worker (it imports the framework)
    capabilities_module: str  # framework-free: CAPABILITIES, DISTRIBUTION and OWN_DEFAULTS, read by the driver
    importer_module: str  # converts the framework's own models to a neutral spec (imported in a conversion process)
    model_prefixes: tuple[str, ...]  # --model PREFIX:NAME forms this backend's importer converts
    model_packages: tuple[str, ...]  # top-level packages whose model classes the importer converts (python: models)
    model_kind: str  # what a user's factory returns for this backend, for error messages
    # environment a user's module is imported under in a conversion process, so that a model of this backend's
    # framework builds on it: Keras takes its backend from $KERAS_BACKEND (over keras.json) when first imported
    user_module_env: tuple[tuple[str, str], ...] = ()


def _entry(
    name: str, prefixes: tuple[str, ...], packages: tuple[str, ...], model_kind: str, env: dict[str, str] | None = None
) -> BackendEntry:
    package = f"backends.{name}"
    return BackendEntry(
        name,
        f"{package}.adapter",
        f"{package}.capabilities",
        f"{package}.importer",
        prefixes,
        packages,
        model_kind,
        tuple((env or {}).items()),
    )


# The one registry: name -> entry, in the order tables list backends.
REGISTRY: dict[str, BackendEntry] = {
    entry.name: entry
    for entry in (
        _entry("torch", ("torchvision",), ("torch", "torchvision"), "a torch.nn.Module"),
        _entry("tensorflow", ("keras",), ("keras", "tensorflow"), "a Keras model", {"KERAS_BACKEND": "tensorflow"}),
    )
}
BACKENDS = tuple(REGISTRY)


def frameworks_imported() -> tuple[str, ...]:
    """The backends whose framework this process has imported: one in a trial's worker, none in the driver."""
    return tuple(name for name, entry in REGISTRY.items() if any(p in sys.modules for p in entry.model_packages))


# The backend every other one is compared with (summary tables: differences and ratios against it), and the
# default framework that trains a shared backbone.
REFERENCE_BACKEND = "torch"

# Speed options a backend honours only with a capability: (RuntimeOptions field, capability, command-line option).
# An option is on when its field differs from RuntimeOptions' default; a flag needs the capability itself, a
# choice needs "CAPABILITY:VALUE" (--tf-mode fit: "tf_mode:fit"). On a backend without it the option is turned
# off (back to the default) for that backend's trials, so each row's config_json records what its process applied;
# an option that applies to no selected backend is an error.
OPTIONAL_RUNTIME = (
    ("jit_compile", "jit_compile", "--jit-compile"),
    ("torch_compile", "torch_compile", "--torch-compile"),
    ("channels_last", "channels_last", "--channels-last"),
    ("tf_mode", "tf_mode", "--tf-mode"),  # any mode but the default needs "tf_mode:MODE" (e.g. "tf_mode:fit")
    ("precision", "precision", "--precision"),  # any precision but float32 needs "precision:NAME"
    ("epoch_loop", "epoch_loop", "--epoch-loop"),  # "compiled" needs "epoch_loop:compiled"
)
# What a strategy cannot run without: a trial whose backend lacks one is an error, never a silent difference.
# Each names every capability its code exercises (tests/test_strategies.py runs each against a recording backend):
# freeze_early both freezes and gives the layers it leaves training fine_tune's rate, so a backend that froze but
# ignored the multipliers would have trained them at the head's rate.
STRATEGY_NEEDS: dict[str, tuple[str, ...]] = {
    "feature_extraction": ("freeze",),
    "freeze_early": ("freeze", "per_group_lr"),
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

    def peak_memory_mib(self) -> float:
        """The most GPU memory this framework held in tensors since the latest ``build`` (MiB); NaN on the CPU."""

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        """Create the model for ``spec`` holding exactly ``weights``; ``seed`` drives framework-side randomness
        (dropout)."""

    def export_weights(self) -> NeutralWeights:
        """The current weights in the neutral layout (round trip of ``build``)."""

    def freeze_layers(self, frozen_layers: Collection[str]) -> None:
        """Freeze exactly these layers (all others trainable): no gradient, and BatchNorm among them in inference
        mode even while training. Call set_optimizer afterwards."""

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts as the framework sees them (BN running statistics excluded)."""

    def extract_features(self, x: np.ndarray, layer: str, batch_size: int, average_maps: bool = False) -> np.ndarray:
        """Output of ``layer`` in inference mode, in the neutral layout (feature maps NHWC), in the runtime's variable
        type (float64 under ``--precision float64``, float32 otherwise). ``average_maps``: feature maps as each
        channel's mean over H, W (N, C), averaged on the device batch by batch (``--feature-pool avg``), so a split's
        maps are never held whole (20 GB for vgg11_bn's fourth pool over CIFAR-10's training images at 224x224)."""

    def set_optimizer(
        self,
        config: OptimizerConfig,
        regularization: RegularizationConfig = ...,  # the adapters default to RegularizationConfig()
        lr_multipliers: Mapping[str, float] | None = None,
    ) -> None:
        """Create a fresh optimizer (state zeroed) from a resolved config, with gradient clipping from the config
        and the kernel penalties / max-norm constraint of ``regularization``. ``lr_multipliers`` maps layer names
        to a factor on the learning rate (per-group learning rates; layers not named use 1)."""

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        """Hold a split on the device so batches are gathered without copies from numpy."""

    def train_epoch(
        self,
        split: str,
        batches: Sequence[np.ndarray],
        lrs: np.ndarray,
        momenta: np.ndarray | None = None,
        augment: EpochAugment | None = None,
        *,
        first_step: int,
        dropout_keys: np.ndarray | None = None,
    ) -> StepStats:
        """One optimizer step per index array, in the given order, step i with learning rate ``lrs[i]`` (and
        momentum — Adam's beta1 — ``momenta[i]`` when given); each batch cropped and flipped as ``augment``'s
        view of it says (harness.augment), when given; returns after the device is idle. Step i is the model's
        training step ``first_step + i`` (counted by the harness since the model was built): with the trial's seed
        it keys the step's dropout masks (harness.dropout_rng), so no backend keeps a count of its own.
        ``dropout_keys``: those keys, row i step i's (harness.dropout_rng.TrainingKeys.epoch), hashed by the
        harness before the epoch's timer starts for a backend that keys shared masks (KeyedDropout); None: the
        backend hashes them itself."""

    def evaluate(self, split: str, batch_size: int) -> StepStats:
        """Loss and accuracy of a split in inference mode."""

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits for ``x`` in inference mode."""

    def predict_mc(self, x: np.ndarray, passes: int, seed: int, batch_size: int) -> np.ndarray:
        """(passes, n, classes) logits with dropout active and everything else (BatchNorm) in inference mode;
        the same seed gives the same passes."""


def backend_entry(name: str) -> BackendEntry:
    """The registry entry of backend ``name``; InputError naming the valid choices for any other name."""
    if name not in REGISTRY:
        raise unknown_name("backend", name, list(BACKENDS))
    return REGISTRY[name]


def importer_backends() -> dict[str, str]:
    """--model prefix -> the backend whose importer converts it (``torchvision`` -> its backend, ...)."""
    return {prefix: entry.name for entry in REGISTRY.values() for prefix in entry.model_prefixes}


def backend_of_package(package: str) -> str | None:
    """The backend whose importer converts models whose classes come from top-level ``package``, if any."""
    return next((entry.name for entry in REGISTRY.values() if package in entry.model_packages), None)


def load_backend(name: str, runtime: RuntimeOptions) -> Backend:
    """Import the backend's adapter module (and so its framework) and create its adapter."""
    module = importlib.import_module(backend_entry(name).adapter_module)
    return module.create_backend(runtime)


@dataclass(frozen=True)
class ProgramNeed:
    """A program a runtime option needs on the machine its trials run on (capabilities.py ``PROGRAMS``)."""

    variable: str  # the environment variable naming the program
    programs: tuple[str, ...]  # those looked for in turn where it is unset
    devices: tuple[str, ...]  # the devices the option needs it on
    why: str


@dataclass(frozen=True)
class EnvConflict:
    """An environment variable whose value contradicts a runtime option of its backend's trials (capabilities.py
    ``FRAMEWORK_ENV_CONFLICTS``): where ``pattern`` finds a match in its value and the trial's ``option`` is one of
    ``values``, the trial would run otherwise than its rows say (``effect``)."""

    variable: str
    pattern: str
    option: str
    values: tuple[object, ...]
    effect: str
    fix: str

    def contradicts(self, option_value: object, environ: Mapping[str, str]) -> bool:
        value = environ.get(self.variable)
        return value is not None and option_value in self.values and re.search(self.pattern, value) is not None


@dataclass(frozen=True)
class BackendDeclarations:
    """What ``backends/<name>/capabilities.py`` declares, as the driver reads it: the one typed view of the module
    (:func:`declarations`), so no reader spells a name or its default again."""

    distribution: str  # whose version keys caches of what the backend produced
    capabilities: frozenset[str]  # what it can do (fit_to_capabilities, check_capabilities)
    own_defaults: Mapping[str, Any]  # what the framework does where xfbench sets nothing (framework_default)
    companion_distributions: tuple[str, ...] = ()  # beside the framework, whose versions caches record too
    programs: Mapping[str, tuple[ProgramNeed, ...]] = dataclasses.field(default_factory=dict)  # option -> needs
    releases_gpu_memory: bool = False  # a warm worker gives a finished trial's GPU memory back
    framework_env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # variable -> what it changes
    framework_env_conflicts: tuple[EnvConflict, ...] = ()


@functools.cache
def declarations(name: str) -> BackendDeclarations:
    """Backend ``name``'s ``backends/<name>/capabilities.py``, read without importing its framework. DISTRIBUTION,
    CAPABILITIES and OWN_DEFAULTS are required of every backend; a name it leaves out of the others declares none."""
    module = importlib.import_module(backend_entry(name).capabilities_module)

    def optional(attribute: str, default: Any) -> Any:
        return getattr(module, attribute, default)

    return BackendDeclarations(
        distribution=module.DISTRIBUTION,
        capabilities=frozenset(module.CAPABILITIES),
        own_defaults=dict(module.OWN_DEFAULTS),
        companion_distributions=tuple(optional("COMPANION_DISTRIBUTIONS", ())),
        programs={
            option: tuple(
                ProgramNeed(variable, tuple(programs), tuple(devices), why)
                for variable, programs, devices, why in needs
            )
            for option, needs in optional("PROGRAMS", {}).items()
        },
        releases_gpu_memory=bool(optional("RELEASES_GPU_MEMORY", False)),
        framework_env=dict(optional("FRAMEWORK_ENV", {})),
        framework_env_conflicts=tuple(EnvConflict(*entry) for entry in optional("FRAMEWORK_ENV_CONFLICTS", ())),
    )


def backend_capabilities(name: str) -> frozenset[str]:
    """What backend ``name`` declares it can do (no framework import)."""
    return declarations(name).capabilities


def check_programs(trials: Sequence[TrialConfig], environ: Mapping[str, str]) -> None:
    """Raise InputError for the first trial whose runtime option needs a program (a C++ compiler for torch.compile
    on CPUs, a C compiler on GPUs) that ``environ``'s PATH does not have: declared in
    ``backends/<name>/capabilities.py`` ``PROGRAMS``. For a run on this machine: a cluster's nodes are not this
    machine."""
    for trial in trials:
        needed = [(option, need) for option, needs in declarations(trial.backend).programs.items() for need in needs]
        for option, need in needed:
            if not getattr(trial.runtime, option) or trial.runtime.device not in need.devices:
                continue
            variable, defaults = need.variable, need.programs
            programs_tried = [environ[variable]] if environ.get(variable) else list(defaults)
            if all(shutil.which(program, path=environ.get("PATH")) is None for program in programs_tried):
                flag = "--" + option.replace("_", "-")
                raise InputError(
                    f"Expected the program ${variable} names, else {' or '.join(defaults)}, on this machine for {flag} "
                    f"on {trial.runtime.device}: {need.why}. Received: no {' or '.join(map(repr, programs_tried))} on "
                    f"PATH. To fix, install one (Debian: apt install {defaults[0]}), set ${variable} to one, or drop "
                    f"{flag}."
                )


def framework_default(name: str, setting: str) -> Any:
    """What backend ``name``'s framework does for a RuntimeOptions ``setting`` when nothing sets it, from
    ``backends/<name>/capabilities.py`` ``OWN_DEFAULTS`` (no framework import)."""
    return declarations(name).own_defaults[setting]


@functools.cache
def installed_framework_version(name: str) -> str:
    """The installed version of backend ``name``'s framework, from package metadata: the driver never imports it."""
    distribution = declarations(name).distribution
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} not installed"


def _runtime_defaults(runtime: RuntimeOptions) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(runtime)}


def _set_options(runtime: RuntimeOptions) -> list[tuple[str, str, str]]:
    """(field, capability it needs, how the command line says it) for each optional speed option ``runtime`` sets."""
    defaults, out = _runtime_defaults(runtime), []
    for f, capability, flag in OPTIONAL_RUNTIME:
        value = getattr(runtime, f)
        if value != defaults[f]:
            out.append(
                (f, capability, flag) if isinstance(value, bool) else (f, f"{capability}:{value}", f"{flag} {value}")
            )
    return out


def runtime_option_needs(runtime: RuntimeOptions) -> dict[str, str]:
    """Capability -> the command-line option of ``runtime`` that needs it, for each optional speed option set."""
    return {capability: flag for _, capability, flag in _set_options(runtime)}


def honoured_runtime(runtime: RuntimeOptions, backend: str) -> RuntimeOptions:
    """``runtime`` with the speed options ``backend`` cannot honour turned off (back to their defaults)."""
    able, defaults = backend_capabilities(backend), _runtime_defaults(runtime)
    return replace(runtime, **{f: defaults[f] for f, capability, _ in _set_options(runtime) if capability not in able})


def _needs(trial: TrialConfig) -> dict[str, str]:
    """Capability -> the setting of this trial that needs it."""
    needs = {capability: f"strategy {trial.strategy}" for capability in STRATEGY_NEEDS.get(trial.strategy, ())}
    if trial.runtime.device == "gpu":
        needs["gpu"] = "device gpu (--gpus-per-trial > 0)"
    if trial.runtime.dropout_rng == "shared":
        needs["shared_dropout"] = "--dropout-rng shared"
    needs.update(runtime_option_needs(trial.runtime))
    return needs


def check_capabilities(trials: Sequence[TrialConfig]) -> None:
    """Raise InputError for the first trial that asks its backend for something it does not declare it can do."""
    for trial in trials:
        able = backend_capabilities(trial.backend)
        missing = {capability: why for capability, why in _needs(trial).items() if capability not in able}
        if missing:
            raise InputError(
                f"Expected every trial to need only what its backend can do. Received: trial {trial.trial_id} needs "
                f"{sorted(missing)} (for {', '.join(missing.values())}); {trial.backend} declares {sorted(able)} "
                f"(backends/{trial.backend}/capabilities.py). To fix, run it on another backend or drop the option; "
                "harness.backend.fit_to_capabilities turns off speed options a backend cannot honour."
            )


def fit_to_capabilities(trials: Sequence[TrialConfig], selected: Sequence[str] | None = None) -> list[TrialConfig]:
    """The trials with each speed option their backend cannot honour turned off (``--jit-compile`` on a torch trial,
    ``--torch-compile`` on a TensorFlow one), so config_json records what each process applies. Raises InputError
    when an option applies to none of the ``selected`` backends (default: the trials' own), or a trial needs a
    capability its backend lacks. A suite passes the run's selection: its case that runs on torch only takes a
    suite-wide --jit-compile as any torch trial does (off), while the cases on TensorFlow apply it."""
    fitted = [replace(t, runtime=honoured_runtime(t.runtime, t.backend)) for t in trials]
    backends = sorted(set(selected) if selected is not None else {t.backend for t in trials})
    asked = {c: flag for t in trials for c, flag in runtime_option_needs(t.runtime).items()}
    for capability, flag in asked.items():
        able = [b for b in BACKENDS if capability in backend_capabilities(b)]
        if not set(able) & set(backends):
            raise InputError(
                f"Expected {flag} to apply to a selected backend (only {able} can honour it). Received: backends="
                f"{backends}. To fix, add --backend {able[0] if able else '...'} or drop {flag.split()[0]}."
            )
    check_capabilities(fitted)
    return fitted
