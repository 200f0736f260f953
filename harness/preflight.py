"""Everything that can fail on bad input, checked before Ray starts: names, numbers, data, models, options that
do not fit the model, and the machine's CPUs. ``xfbench run``, ``xfbench tune``, ``--resume`` and the pytest plugin
all call :func:`preflight`; each check raises InputError (MissingInputFile for data) with what was expected and
what was received.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from harness.augment import check_augment
from harness.backbone import NEEDS_BACKBONE, uses_pretrained
from harness.backend import check_capabilities, check_programs, declarations
from harness.config import (
    LOCAL_SHIP_LIMIT_MB,
    SHIP_LIMIT_MB,
    RuntimeOptions,
    TransferOptions,
    TrialConfig,
    check_decay_to_decouple,
    check_finite_settings,
    check_momentum_to_cycle,
)
from harness.data.batching import steps_per_epoch
from harness.data.registry import (
    NUM_CLASSES,
    Dataset,
    check_content,
    check_data_dir,
    data_fingerprint,
    load_dataset,
    read_elsewhere,
)
from harness.data.tasks import TaskSpec, derive
from harness.errors import InputError
from harness.exactness import trains_batchnorm
from harness.input_pipeline import check_input, transformed_shape
from harness.model_cost import model_cost, training_memory_floor
from harness.model_import import check_model_content, model_spec, parse_model_ref
from harness.models import LAYER_HINTS, LAYER_SETTINGS, MODELS, changed_options
from harness.option_types import SHIP_POLICIES
from harness.plan import ExecutionOptions
from harness.planner import given_to_suite
from harness.pretrained import (
    check_weights_unchanged,
    check_zoo_weights_cached,
    lookup_key,
    prepare_weights,
    prepared_sha256,
    weights_ref,
)
from harness.provenance import usable_cpus
from harness.reachable import connection_problem, dialled_host, grpc_problem
from harness.results import safe_name
from harness.schedules import plateau_min_epochs
from harness.search import apply_point, canonical_path, point_text, sample_corners
from harness.shapes import check_flattened_merges, infer_shapes
from harness.spec import BatchNorm, Conv2D, Dense, Dropout, ModelSpec
from harness.strategies import get_strategy
from harness.strategy_options import check_frozen_epochs, check_strategy_options, training_phases
from harness.suites import Suite, gpu_only_suites
from harness.tuning import TunePlan
from harness.weights import initializer, is_trainable_param, parameter_shapes
from harness.weights_fit import check_searched_options, check_weights_fit

# How to mend two trials under one id (the preflight's check and the pytest plugin's at collection say it alike).
DISTINCT_IDS_FIX = "To fix, give the cases distinct variants, or spec files distinct file names."


_NO_TRIALS = "Expected at least one trial. Received: none. To fix, pick a suite, or --strategy, --model and --dataset."


def check_distinct_trial_ids(trials: list[TrialConfig], fix: str = DISTINCT_IDS_FIX) -> None:
    """Refuse two trials under one id: Tune would run them in one trial directory and the results could not tell
    them apart. ``fix``: what the user can do (a recorded run's ids cannot be given other variants)."""
    repeated = sorted(i for i, n in Counter(t.trial_id for t in trials).items() if n > 1)
    if repeated:
        models = sorted({t.model for t in trials if t.trial_id == repeated[0]})
        raise InputError(
            f"Expected every trial to have its own id. Received: {len(repeated)} repeated ids, e.g. {repeated[0]} "
            f"(model {' and '.join(models)}). {fix}"
        )
    # Each trial's results file is named by its id as a file name allows (results.safe_name): two ids that differ
    # only where a file name does not (a_b and a@b) wrote one file, and one trial's rows were lost.
    files: dict[str, list[str]] = {}
    for trial in trials:
        files.setdefault(safe_name(trial.trial_id), []).append(trial.trial_id)
    shared = sorted(ids for ids in files.values() if len(ids) > 1)
    if shared:
        raise InputError(
            f"Expected every trial's id to make its own results file name. Received: {len(shared)} pairs that make "
            f"one, e.g. {shared[0][0]} and {shared[0][1]} (both {safe_name(shared[0][0])}). {fix}"
        )


def preflight(
    trials: list[TrialConfig],
    data_dir: str | None,
    download: bool = True,
    loaded: dict[str, Dataset] | None = None,
    cache_dir: Path | None = None,
    memory_bytes: int | None = None,
    search: TunePlan | None = None,
    resumed: bool = False,
    environ: Mapping[str, str] | None = None,
    weights_keys: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Validate every trial and make sure its data is present (downloading if allowed): whatever would fail
    inside a worker fails here, before Ray starts. The CLI and the pytest plugin both call it. ``memory_bytes``:
    the memory of the machine the trials run on (a local run's; None on a cluster, whose nodes it cannot know).
    ``search``: a tune's search, whose bases are ``trials``; the points it may sample are checked against the model
    and the memory as the bases are. ``resumed``: the trials of a recorded run, whose options are not judged again
    (a version that did not refuse options a strategy never reads recorded them, and they ran as they stand).
    ``environ``: the environment of the machine the trials run on (a local run's, :func:`local_environ`; None on a
    cluster), whose PATH must hold the programs their options need (a C++ compiler for torch.compile on CPUs).
    ``weights_keys``: filled with each pretrained trial's weights sha256 by trial id (TrialConfig.weights_key).
    Returns each dataset's provenance (where its files were found, how verified) for run.json; InputError on bad input.
    """
    if not trials:
        raise InputError(_NO_TRIALS)
    check_distinct_trial_ids(trials)
    check_data_dir(data_dir)
    check_capabilities(trials)
    if environ is not None:
        _check_local_environment(trials, environ)
    if not resumed:  # a recorded run ran as it stands
        _check_run_wide_settings(trials)
    _check_names_and_options_of(trials, resumed, search is not None)  # before the weights home is searched
    _check_weights_fit(trials)
    _check_weights_cached(trials)
    datasets: dict[str, Dataset] = loaded if loaded is not None else {}
    provenance: dict[str, dict[str, str]] = {}
    option_use = _ModelOptionUse()
    for trial in trials:
        if trial.dataset not in datasets:
            datasets[trial.dataset] = _load_noting_where(trial.dataset, data_dir, download)
        provenance[trial.dataset] = provenance.get(trial.dataset) or _provenance(datasets[trial.dataset])  # hashed once
        _check_unchanged(trial, datasets[trial.dataset], provenance[trial.dataset]["content"])
        with _as_given_to_suite(trial, resumed):
            fits = _check_tasks(trial, datasets[trial.dataset], cache_dir, resumed)
            if search is None:  # a search's base never trains as it stands: its points do
                _check_fits(trial, fits[0], memory_bytes, fits[1], resumed)
                option_use.note(trial, fits[0])
    if not resumed:  # a recorded run ran as it stands
        option_use.check()
    if search is not None:
        _check_search_points(search, datasets, cache_dir, memory_bytes, resumed)
    _prepare_pretrained(trials, datasets, cache_dir, weights_keys if weights_keys is not None else {})
    return provenance


def _check_tasks(
    trial: TrialConfig, dataset: Dataset, cache_dir: Path | None, resumed: bool
) -> tuple[ModelSpec, Dataset]:
    """The trial's target task (and source task, where its backbone trains on one) checked against its data and
    model: the model spec and data of the target task."""
    source = trial.transfer.source_task  # None: a backbone trains on the target task (harness.backbone)
    fits: tuple[ModelSpec, Dataset] | None = None
    for role, task in [("target", trial.task)] + ([("source", source)] if source is not None else []):
        derived = _checked_task_data(trial, role, task, dataset, resumed)
        spec = _task_spec(trial, derived, cache_dir)
        if role == "source" and not resumed:  # the shared backbone trains on the source task
            _check_batch_fits(trial, role, task, derived)
        fits = (spec, derived) if role == "target" else fits
    assert fits is not None  # the target task comes first
    return fits


@contextmanager
def _as_given_to_suite(trial: TrialConfig, resumed: bool) -> Iterator[None]:
    """A suite case's refusal names the case and says why the option reached it: --mc-dropout 5 given for quick was
    refused for its mlp as if the user had asked it of an mlp (and --dropout, the fix it named, then for convnet3)."""
    try:
        yield
    except InputError as exc:
        # a recorded run's options were checked when it began; a refusal naming the suite told it already
        if resumed or trial.suite == "adhoc" or f"suite {trial.suite}" in str(exc):
            raise
        raise InputError(given_to_suite(str(exc), trial.case_id, trial.suite)) from None


def _check_unchanged(trial: TrialConfig, dataset: Dataset, content: str) -> None:
    """A resumed trial's data and model files hold what they held when its run began (its data_key and model_key;
    a new run's trials have none yet); ``content``: the dataset's key, hashed once for the run."""
    check_content(dataset, trial.data_key, content)
    check_model_content(trial.model, trial.model_key)


def _load_noting_where(name: str, data_dir: str | None, download: bool) -> Dataset:
    """The dataset, with a note on stderr when it came from outside the --data-dir given, or from no search at all
    (digits is scikit-learn's bundled copy: a --data-dir of one's own 8x8 files was passed over without a word)."""
    dataset = load_dataset(name, data_dir, download=download)
    note = read_elsewhere(data_dir, dataset)
    if data_dir and dataset.root is None:
        note = (
            f"note: {name} is read from {dataset.provenance.get('source') or 'arrays in memory'}, bundled, never "
            f"searched for: --data-dir {data_dir} is not read for it"
        )
    if note:
        print(note, file=sys.stderr)
    return dataset


def _checked_task_data(
    trial: TrialConfig, role: str, task: TaskSpec | None, dataset: Dataset, resumed: bool
) -> Dataset:
    """``task`` (the trial's ``role``: target or source) carved out of ``dataset`` once its samples, classes and
    train limit are checked, and the trial's input pipeline and augmentation fit it."""
    derived = derive(dataset, task)
    _check_training_samples(task, derived, dataset)
    _check_eval_samples(role, task, derived, dataset)  # would divide by zero in every trial, resumed or not
    if not resumed:  # a recorded run trained on what there was
        _check_class_samples(role, task, dataset)
        _check_train_limit(trial, role, task, derived, dataset)
    check_input(trial.input, derived.input_shape, dataset.normalization, dataset.pixel_stats is not None)
    if not resumed and trial.input.resize_mode == "resize-crop" and trial.input.size is None:
        # recorded among the case's settings, yet no image was resized or cropped
        raise InputError(
            "Expected --input-size N with --resize-mode resize-crop (images resized to about N / 0.875, then a "
            f"centred NxN crop). Received: no input size for {trial.case_id}, so its images keep their "
            f"{'x'.join(map(str, derived.input_shape[:2]))} and the option changes nothing. To fix, add --input-size, "
            "or drop --resize-mode."
        )
    check_augment(trial.augment, derived.input_shape)
    return derived


def _provenance(dataset: Dataset) -> dict[str, str]:
    """Where a dataset's files were found and how they were verified, its normalisation and split sizes."""
    sizes = f"{len(dataset.y_train)}/{len(dataset.y_val)}/{len(dataset.y_test)}"
    normalization = dataset.normalization
    if dataset.pixel_stats is not None:  # harness.input_pipeline.pipeline_data
        normalization += "; pixels / 255 in trials that --normalize for pretrained weights"
    # content: what the arrays held (data_fingerprint), which keys the run's shared backbones (TrialConfig.data_key)
    return {**dataset.provenance, "normalization": normalization, "sizes": sizes, "content": data_fingerprint(dataset)}


# Runtime settings that only act on a kind of layer: --bn-statistics float64 computes training-mode BatchNorm in
# float64, --dropout-rng framework draws dropout masks from each framework's generator.
# --cudnn-autotune picks convolutions' algorithms, --channels-last lays out convolutions' weights and inputs: a
# network without one (mlp) computes alike either way (on 1-channel images even its batches' strides are the same).
class _TrainedBatchNorm:
    """The kind --bn-statistics, --bn-variance and --bn-decay need: a BatchNorm layer in training mode (a frozen one
    normalises with its running statistics and never updates them, whatever these settings say)."""


# BatchNorm's settings that act only where it trains (its epsilon acts in inference too)
_TRAINING_BATCHNORM_SETTINGS = ("bn_statistics", "bn_running_variance", "bn_decay")
_RUNTIME_LAYER_SETTINGS: dict[str, type] = {
    "bn_statistics": _TrainedBatchNorm,
    "dropout_rng": Dropout,
    "cudnn_autotune": Conv2D,
    "channels_last": Conv2D,
}
_LAYER_OF: dict[str, type] = {
    **LAYER_SETTINGS,
    **_RUNTIME_LAYER_SETTINGS,
    **dict.fromkeys(_TRAINING_BATCHNORM_SETTINGS, _TrainedBatchNorm),
}
_HINTS = {
    **LAYER_HINTS,
    Conv2D: "convolution (pick a convolutional model: convnet3, cnn_small or a zoo model)",
    _TrainedBatchNorm: LAYER_HINTS[BatchNorm],
}


class _ModelOptionUse:
    """Whether each setting of a kind of layer that a run gives (BatchNorm's, the dropout kind, what BatchNorm
    computes in, where dropout masks come from) meets such a layer in some network it trains. A run sets them for
    all its cases (``--bn-variance biased`` for a suite of which some models have BatchNorm), so one is refused only
    where no network has the layers: set, it would be recorded with the results, yet nothing it names happened."""

    def __init__(self) -> None:
        self._set: dict[str, tuple[Any, set[str]]] = {}  # option -> (a value it was set to, the models it was set on)
        self._layers: set[type] = set()  # the kinds of layer some network of the run has
        self._idle_dropout: dict[str, str] = {}  # model -> why its dropout layers drop nothing
        self._frozen_batchnorm: set[str] = set()  # models with BatchNorm layers, none of which trains

    def note(self, trial: TrialConfig, spec: ModelSpec) -> None:
        # deep_features from pretrained weights only extracts features: no layer of it trains, so none is met;
        # a dropout layer at rate 0 (--dropout 0) drops nothing: the dropout kind and mask source meet no dropout
        trains = not (trial.strategy == "deep_features" and uses_pretrained(trial))
        for layer in spec.layers:
            if isinstance(layer, Dropout) and (layer.rate == 0 or not trains):
                self._idle_dropout.setdefault(trial.model, "at rate 0" if trains else "in a network that never trains")
            else:
                self._layers.add(type(layer))
        if _batchnorm_trains_in_run(trial, spec):
            self._layers.add(_TrainedBatchNorm)
        elif any(isinstance(layer, BatchNorm) for layer in spec.layers):
            self._frozen_batchnorm.add(trial.model)
        default = RuntimeOptions()
        changed = {
            name: value
            for name in _RUNTIME_LAYER_SETTINGS
            if (value := getattr(trial.runtime, name)) != getattr(default, name)
        }
        if parse_model_ref(trial.model).kind == "zoo":  # imported models take no options (model_spec refuses them)
            changed |= {k: v for k, v in changed_options(trial.model_options).items() if k in LAYER_SETTINGS}
        for name, value in changed.items():
            self._set.setdefault(name, (value, set()))[1].add(trial.model)

    def check(self) -> None:
        idle = [name for name in self._set if _LAYER_OF[name] not in self._layers]
        if not idle:
            return
        received = "; ".join(
            f"{name}={value!r} on {', '.join(sorted(models))}, which {'has' if len(models) == 1 else 'have'} no "
            f"{self._lacking(_LAYER_OF[name], models)}"
            for name, (value, models) in ((n, self._set[n]) for n in idle)
        )
        it, they = ("it", "it") if len(idle) == 1 else ("them", "they")
        raise InputError(
            "Expected each layer setting the run gives or searches to meet such a layer in a network it trains. "
            f"Received: {received}. Given, {they} would be recorded with the results, yet change nothing. To fix, "
            f"drop {it}, or train a network with the layers {they} {'sets' if len(idle) == 1 else 'set'}."
        )

    def _lacking(self, kind: type, models: set[str]) -> str:
        """What the networks lack, said as it is: dropout layers they have that drop nothing, and BatchNorm layers
        that never train, are named so."""
        idle = sorted({self._idle_dropout[m] for m in models if m in self._idle_dropout}) if kind is Dropout else []
        if idle:
            return f"dropout layer that drops anything (its dropout layers are {' or '.join(idle)})"
        if kind is _TrainedBatchNorm and models & self._frozen_batchnorm:
            return (
                "BatchNorm layer that trains (its BatchNorm layers are all frozen: in inference mode they normalise "
                "with their running statistics and never update them, whatever this setting says)"
            )
        return str(_HINTS[kind])


def _batchnorm_trains_in_run(trial: TrialConfig, spec: ModelSpec) -> bool:
    """Whether some BatchNorm layer of ``spec`` trains for ``trial``: in the trial itself (a frozen one runs in
    inference mode), or in the pretrain trial of a backbone this run trains (no --weights/--pretrained), which
    trains every layer."""
    if trains_batchnorm(trial, spec):
        return True
    backbone_trained_here = trial.strategy in NEEDS_BACKBONE and not uses_pretrained(trial)
    return backbone_trained_here and any(isinstance(layer, BatchNorm) for layer in spec.layers)


def _check_run_wide_settings(trials: list[TrialConfig]) -> None:
    """What a run's settings do across its trials: GPU settings on a run of CPUs, one backbone per case."""
    _check_gpu_settings(trials)
    _check_one_backbone_per_case(trials)


def _check_one_backbone_per_case(trials: list[TrialConfig]) -> None:
    """The backends' trials of one case and seed start from one shared backbone (docs/fairness.md). A setting of
    the backbone's training that only one backend's trials keep (--jit-compile is off on torch's, which records it
    off) made two: under --dropout-rng framework the compiled step draws other masks, so each backend fine-tuned its
    own backbone and the backends' difference was partly the backbones'."""
    from dataclasses import asdict

    from harness.backbone import needs_trained_backbone, recipe_for

    recipes: dict[tuple[str, str, int], tuple[str, dict[str, Any]]] = {}
    for trial in trials:
        if not needs_trained_backbone(trial):
            continue
        recipe = asdict(recipe_for(trial))
        backend, first = recipes.setdefault((trial.suite, trial.case_id, trial.seed), (trial.backend, recipe))
        differing = sorted(name for name in recipe if recipe[name] != first[name])
        if differing:
            masks = "framework_masks_from" in differing  # the one known way (planner.resolved fits the flags)
            raise InputError(
                f"Expected the backends' trials of {trial.case_id} (seed {trial.seed}) to start from one shared "
                f"backbone. Received: backbones whose training differs in {', '.join(differing)} ({backend}'s "
                f"{first[differing[0]]!r}, {trial.backend}'s {recipe[differing[0]]!r})"
                + (
                    ": --jit-compile and --torch-compile stay on one backend's trials only, and under --dropout-rng "
                    "framework the source backend's compiled step draws other masks. To fix, use --dropout-rng shared "
                    "(the default), drop the compile flag, give --source-backend the backend the flag is not for, "
                    "or run one backend."
                    if masks
                    else ". To fix, give both backends' trials the same backbone settings, or run one backend."
                )
            )


def _check_gpu_settings(trials: list[TrialConfig]) -> None:
    """--tf32 on and --cudnn-autotune on set what NVIDIA GPUs compute: on a run whose every trial is on the CPU they
    would be recorded, yet change nothing (and put their trials in worker processes of their own)."""
    given = [flag for flag, name in _GPU_SETTINGS if any(getattr(t.runtime, name) for t in trials)]
    if given and all(t.runtime.device == "cpu" for t in trials):
        it, sets = ("they", "set") if len(given) > 1 else ("it", "sets")
        raise InputError(
            f"Expected {' and '.join(given)} only on GPUs: {it} {sets} what an NVIDIA GPU computes. Received: every "
            f"trial of the run on the CPU (--gpus-per-trial 0, or left out), where {it} would be recorded, yet change "
            f"nothing. To fix, drop {'them' if len(given) > 1 else 'it'}, or give --gpus-per-trial 1 on a machine or "
            "cluster with GPUs."
        )
    tf32 = [t for t in trials if t.runtime.tf32]
    if tf32 and not any(t.runtime.computes_tf32 for t in tf32):
        raise InputError(
            "Expected --tf32 on with float32 or mixed precision: it sets how float32 matmuls and convolutions run. "
            "Received: --tf32 on with --precision float64 on every trial that has it, which computes no TF32, so it "
            "would be recorded, yet change nothing. To fix, drop --tf32 on, or choose another --precision."
        )


_GPU_SETTINGS = (("--tf32 on", "tf32"), ("--cudnn-autotune on", "cudnn_autotune"))


def _check_names_and_options_of(trials: list[TrialConfig], resumed: bool, searched: bool) -> None:
    """Every trial's names and options, which the command line alone decides: checked before the weights home is
    searched, as a run told to fetch weights it could not use would be refused once they were there; and before
    any dataset is read or downloaded."""
    for trial in trials:
        _check_names_and_options(trial, resumed, searched)
        for task in (trial.task, trial.transfer.source_task):
            _check_classes(task, trial.dataset)


def _check_names_and_options(trial: TrialConfig, resumed: bool, searched: bool) -> None:
    get_strategy(trial.strategy)
    if not resumed:  # a recorded run ran as it stands
        check_finite_settings(trial)
        check_strategy_options(trial)
    if not resumed and not searched:  # a search's base never trains: its points are checked
        _check_recorded_settings_apply(trial)
    initializer(trial.init)
    trial.optimizer.resolved()


def _check_recorded_settings_apply(trial: TrialConfig) -> None:
    """Settings a trial that trains would record but never apply (checked on a run's trials and a search's points,
    not on a search's base, which never trains as it stands)."""
    check_decay_to_decouple(trial.optimizer)
    check_momentum_to_cycle(trial.optimizer, trial.schedule)
    check_frozen_epochs(trial)


def _task_spec(trial: TrialConfig, derived: Dataset, cache_dir: Path | None) -> ModelSpec:
    """The trial's model for ``derived``, its task's data. Converts framework and user models here (cached for the
    trials): an unsupported op stops the run before Ray starts."""
    shape = transformed_shape(trial.input, derived.input_shape)
    return model_spec(trial.model, shape, derived.num_classes, trial.model_options, trial.cache_dir or cache_dir)


def _check_fits(
    trial: TrialConfig,
    spec: ModelSpec,
    memory_bytes: int | None,
    data: Dataset,
    resumed: bool = False,
    plateau: bool = True,
) -> None:
    """The checks that need the model and the machine: options that do not fit the model, and its memory floor
    (``memory_bytes`` None: a cluster's, unknown). ``resumed``: only what would fail in a worker is checked.
    ``plateau``: whether a plateau that cannot reduce is refused (a search's point is one of many: see
    _check_search_points)."""
    _check_against_model(trial, spec, resumed)
    if not resumed:  # a recorded run trained as it stood
        _check_batch_fits(trial, "target", trial.task, data)
        never = _plateau_never_reduces(trial) if plateau else ""
        if never:
            raise InputError(never)
        _check_piecewise_reached(trial, data)
        _check_onecycle_peaks(trial, data)
    _check_one_sample_batchnorm(trial, spec, len(data.y_train))
    if memory_bytes is not None:
        _check_memory(trial, spec, memory_bytes, data)


def _schedule_phases(trial: TrialConfig, data: Dataset) -> tuple[int, tuple[tuple[str, int], ...]]:
    """The steps of an epoch (a short last batch is a step too) and the phases (name, epochs), each of which runs
    the schedule from its step 0 (transfer's frozen, then unfrozen)."""
    return steps_per_epoch(len(data.y_train), trial.batch_size), training_phases(trial)


def _check_piecewise_reached(trial: TrialConfig, data: Dataset) -> None:
    """Every piecewise boundary within the trial's steps: a rate that starts past the last step is never used, yet
    the rows would record it among the schedule's values."""
    schedule = trial.schedule
    batches, phases = _schedule_phases(trial, data)
    steps = max(epochs for _, epochs in phases) * batches
    if schedule.name != "piecewise" or not schedule.boundaries or schedule.boundaries[-1] < steps:
        return
    shown = lambda n: f"{n} epoch{'s' if n != 1 else ''}"  # noqa: E731
    whose = f"the {steps} training steps of {trial.case_id} ({shown(trial.epochs)} of {batches} batches)"
    if len(phases) > 1:
        each = ", ".join(f"{name}: {shown(n)}" for name, n in phases)
        whose = (
            f"the {steps} training steps of {trial.case_id}'s longest phase: {trial.strategy} runs the schedule "
            f"anew in each phase ({each}, of {batches} batches)"
        )
    raise InputError(
        f"Expected piecewise boundaries below {whose}. Received: boundaries={schedule.boundaries}, so a rate would "
        f"never be reached. To fix, move the boundaries below {steps}, or train more epochs."
    )


ONECYCLE_MIN_STEPS = 3  # a step up to the peak rate, the peak, and the annealed last step (harness.schedules)


def _check_onecycle_peaks(trial: TrialConfig, data: Dataset) -> None:
    """Every phase's 1cycle reaches its peak rate: in 1 or 2 steps the cycle climbs no further than its start (a
    tenth of --lr) before it anneals, yet the rows record 1cycle peaking at --lr."""
    if trial.schedule.name != "onecycle":
        return
    batches, phases = _schedule_phases(trial, data)
    name, shortest = min(phases, key=lambda phase: phase[1])
    steps = shortest * batches
    if steps >= ONECYCLE_MIN_STEPS:
        return
    where = (
        f"{trial.case_id}'s {name} phase ({trial.strategy} runs a cycle in each)" if len(phases) > 1 else trial.case_id
    )
    raise InputError(
        f"Expected at least {ONECYCLE_MIN_STEPS} training steps in each 1cycle of {where}: one up to the peak rate "
        f"--lr, the peak, and the annealed last step. Received: {steps} step(s) ({shortest} epoch(s) of {batches} "
        f"batch(es) of {trial.batch_size}), so the rate would never reach --lr {trial.optimizer.lr}. To fix, train "
        "more epochs, a smaller --batch-size, or pick another --schedule."
    )


def _check_batch_fits(trial: TrialConfig, role: str, task: TaskSpec | None, data: Dataset) -> None:
    """A batch size above the training samples makes every epoch one step of all of them, while the rows record
    the batch size asked for (as a --train-limit above them would record a task larger than it trained on).
    deep_features trains no network on its target (its head is fitted to all features at once), only its
    backbone, on the target's data where no source task is given."""
    available = len(data.y_train)
    backbone_elsewhere = trial.transfer.source_task is not None or uses_pretrained(trial)
    if trial.batch_size <= available or (role == "target" and trial.strategy == "deep_features" and backbone_elsewhere):
        return
    more = _more_source_samples(trial, task) if role == "source" else " (a larger --train-limit, or more classes)"
    raise InputError(
        f"Expected --batch-size at most {available:,}, the training samples of {_task_name(role, task)} of "
        f"{trial.dataset}. Received: {trial.batch_size:,} for {trial.case_id}, so each epoch would be one step of "
        f"all {available:,} samples, not batches of {trial.batch_size:,}. To fix, give --batch-size {available:,} "
        f"or less, or train on more samples{more}."
    )


def _more_source_samples(trial: TrialConfig, task: TaskSpec | None) -> str:
    """How a backbone's source task gets more samples, after "train on more samples". A suite whose case defines
    its source split refuses --source-classes (harness.variant_overrides), and no option reaches its train_limit."""
    if trial.suite == "adhoc":  # its source task is the command line's --source-classes
        return " (more --source-classes)"
    limit = f" and its train_limit of {task.train_limit:,}" if task is not None and task.train_limit else ""
    return (
        f": more --source-classes where case {trial.case_id} of suite {trial.suite} leaves them to you; where it "
        f"defines its source classes{limit}, {_run_alone(trial, '--source-classes ...')}, or use files with more "
        "training samples of them"
    )


def _run_alone(trial: TrialConfig, source: str) -> str:
    """A suite case's experiment run on its own, where the command line chooses its source task (which has no
    train_limit there): ``source``, the --source-classes to give."""
    target = trial.task or TaskSpec()
    given = (
        ("--classes", ",".join(map(str, target.classes or ()))),
        ("--binary-positive", target.binary_positive),
        ("--train-limit", target.train_limit),
    )
    flags = "".join(f" {flag} {value}" for flag, value in given if value not in (None, ""))
    # in backticks: the pytest plugin names flags as SuiteCase fields in its messages, but not inside a command
    return (
        f"run the case alone (`xfbench run --strategy {trial.strategy} --model {trial.model} --dataset "
        f"{trial.dataset}{flags} {source}`, with the case's other settings)"
    )


def _plateau_never_reduces(trial: TrialConfig) -> str:
    """Why the trial's plateau schedule could never reduce its rate ('' when it can, or is no plateau): every
    phase ends before a reduction could apply, so it trains at a constant rate while the rows record the plateau
    schedule (as an unreachable piecewise boundary would record a rate never used)."""
    schedule = trial.schedule
    phases = training_phases(trial)  # each runs the schedule anew
    longest = max(epochs for _, epochs in phases)
    needed = plateau_min_epochs(schedule.patience)
    if schedule.name != "plateau" or longest >= needed:
        return ""
    each = f" in any phase ({', '.join(f'{name}: {n}' for name, n in phases)})" if len(phases) > 1 else ""
    return (
        f"Expected at least {needed} epochs{each} for reduce-on-plateau with patience {schedule.patience} "
        f"(--plateau-patience) in {trial.case_id}: the first epoch always counts as an improvement, a reduction "
        f"follows {schedule.patience + 1} epoch(s) without one and applies from the next epoch. Received: "
        f"{longest} epoch(s), so the rate could never be reduced. To fix, train --epochs {needed} or more, lower "
        "--plateau-patience, or pick another --schedule."
    )


def _check_search_points(
    search: TunePlan, datasets: dict[str, Dataset], cache_dir: Path | None, memory_bytes: int | None, resumed: bool
) -> None:
    """A search trains its sampled points, never its bases as they stand, so the points that stand for them
    (harness.search.sample_corners: complete points, every option set) must fit the model and the machine, or a
    freeze_groups beyond the model's groups, a dropout of 0 under MC dropout, or a batch size or width that cannot
    fit would fail its trials in the workers. A point takes the blame only where some other point, or the base,
    passes: where every point fails as the base does (--batch-size 5000 on 1,257 samples, --mc-dropout on a model
    without dropout), the space is no cause, and the refusal is the options' own."""
    specs: dict[tuple[Any, ...], ModelSpec] = {}
    option_use = _ModelOptionUse()  # a searched layer setting that meets no such layer makes every sample alike
    for base in search.bases:
        # weights are converted once, for the base's model options: a sample with others would find none
        check_searched_options(base, [canonical_path(path) for path in search.space.paths])
        derived = derive(datasets[base.dataset], base.task)
        context = (transformed_shape(base.input, derived.input_shape), derived, cache_dir, memory_bytes)
        plateaus: list[str] = []  # per plateau point: why it never reduces its rate, '' where it can
        points = list(sample_corners(search.space))
        failures = _point_failures(base, points, (specs, plateaus, option_use), context, resumed)
        if failures and len(failures) == len(points):
            why = failures[0][1]
            if {w for _, w in failures} == {why} and _point_failure(base, specs, context, resumed) == why:
                if base.suite != "adhoc" and f"suite {base.suite}" not in why:
                    raise InputError(given_to_suite(why, base.case_id, base.suite))
                raise InputError(why if base.case_id in why else f"{why} (Case {base.case_id}.)")
        if failures:
            raise InputError(
                f"Expected every point the search may sample to fit {base.case_id} on {base.backend}. Received: "
                f"{point_text(failures[0][0])}, which fails: {failures[0][1]} Or narrow the search's space so that "
                "every point fits."
            )
        # a point that trains at a constant rate is still one the search may rank: refused only when no point reduces
        if not resumed and plateaus and all(plateaus):
            raise InputError(
                f"Expected some point the search may sample for {base.case_id} to reduce its rate on plateau. "
                f"Received: none can. At the search's edges: {plateaus[0]}"
            )
    if not resumed:  # a recorded run ran as it stands
        option_use.check()
        search.check_random_choices_distinct()  # last: what a sample could not train at all is told first


def _point_failures(
    base: TrialConfig, points: list[dict[str, Any]], noted: tuple[Any, ...], context: tuple[Any, ...], resumed: bool
) -> list[tuple[dict[str, Any], str]]:
    """Each point that fails on ``base``, with why. ``noted``: the model specs built, and what the points that fit
    say of the plateau and the layer settings. Points alike in what the checks read are judged once."""
    specs, plateaus, option_use = noted
    shape, derived = context[0], context[1]
    judged: dict[tuple[Any, ...], str | None] = {}  # per what the checks read: why it fails, None where it fits
    failures: list[tuple[dict[str, Any], str]] = []
    for point in points:
        try:
            trial = apply_point(base, point)  # a resumed run.json's space was not checked by this version
        except (ValueError, TypeError) as exc:  # InputError among them
            failures.append((point, str(exc)))
            continue
        read = _read_by_point_checks(trial, shape, derived, base)
        if read not in judged:
            judged[read] = _point_failure(trial, specs, context, resumed)
            if judged[read] is None:
                if trial.schedule.name == "plateau":
                    plateaus.append(_plateau_never_reduces(trial))
                option_use.note(trial, specs[read[0]])
        why = judged[read]
        if why is not None:
            failures.append((point, why))
    return failures


def _read_by_point_checks(trial: TrialConfig, shape: Any, derived: Dataset, base: TrialConfig) -> tuple[Any, ...]:
    """What _check_fits and _check_against_model read of a sampled trial: points alike in it are judged once. Its
    first item keys the model spec."""
    key = (trial.model, shape, derived.num_classes, trial.model_options)
    t = trial.transfer
    read: tuple[Any, ...] = (key, trial.strategy, t.freeze_groups, t.feature_layer, t.feature_pool)
    read = (*read, trial.batch_size, trial.mc_dropout_passes, trial.runtime, base.dataset, str(base.task))
    return (*read, trial.epochs, t.frozen_epochs, trial.schedule)  # the frozen epochs, piecewise steps


def _point_failure(
    trial: TrialConfig, specs: dict[tuple[Any, ...], ModelSpec], context: tuple[Any, ...], resumed: bool
) -> str | None:
    """Why a sampled trial cannot train (its model spec built into ``specs``), or None where it fits."""
    shape, derived, cache_dir, memory_bytes = context
    key = (trial.model, shape, derived.num_classes, trial.model_options)
    try:
        if key not in specs:
            cache = trial.cache_dir or cache_dir
            specs[key] = model_spec(trial.model, shape, derived.num_classes, trial.model_options, cache)
        _check_fits(trial, specs[key], memory_bytes, derived, resumed, plateau=False)
        if not resumed:
            _check_recorded_settings_apply(trial)
    except (ValueError, TypeError) as exc:  # InputError among them
        return str(exc)
    return None


def _check_weights_fit(trials: list[TrialConfig]) -> None:
    """What the command line alone says about the weights (the strategy reads them, the architecture and width fit
    their framework), before the weights home is searched: a run that would be refused is never sent to fetch."""
    for trial in trials:
        ref = weights_ref(trial) if uses_pretrained(trial) else None
        if ref is not None:
            check_weights_fit(trial, ref)


def _check_weights_cached(trials: list[TrialConfig]) -> None:
    """Zoo weights the run needs and the weights home lacks stop it first (before any data is read), with one fetch
    command for all of them."""
    refs = [ref for ref in (weights_ref(t) for t in trials if uses_pretrained(t)) if ref is not None]
    if any(ref.kind != "file" for ref in refs):
        with tempfile.TemporaryDirectory(prefix="xfbench-weights-") as scratch:
            check_zoo_weights_cached(refs, Path(scratch))


def _prepare_pretrained(
    trials: list[TrialConfig], datasets: dict[str, Dataset], cache_dir: Path | None, keys: dict[str, str]
) -> None:
    """Pretrained weights found, converted and verified in every backend of the run (harness.pretrained), once
    per key the trials look their conversion up by (harness.pretrained.lookup_key: reference, architecture, model
    options, input shape, BGR fold); ``keys`` gets each trial's weights sha256. A recorded trial's weights (a
    resume's) must hold what they held when its run began."""
    backends = tuple(sorted({t.backend for t in trials}))
    done: dict[tuple[str, str], str] = {}
    for trial in trials:
        if not uses_pretrained(trial):
            continue
        shape = transformed_shape(trial.input, derive(datasets[trial.dataset], trial.task).input_shape)
        cache = trial.cache_dir or cache_dir
        if cache is None:
            raise ValueError(f"Expected a cache directory for the weights of {trial.trial_id}. Received: none.")
        key = (lookup_key(trial, shape), str(cache))  # the key checkpoint_for reads: each trial finds its own
        if key not in done:
            done[key] = prepared_sha256(prepare_weights(trial, shape, Path(cache), backends))
        keys[trial.trial_id] = done[key]
        check_weights_unchanged(trial, done[key])  # another trial of the same reference may have converted it


def _check_training_samples(task: TaskSpec | None, derived: Dataset, dataset: Dataset) -> None:
    if len(derived.y_train) > 0:
        return
    # train_limit is at least 1, so an empty task comes from its classes or from the data itself. The classes the
    # split holds are counted, not assumed 0..num_classes-1: own files may hold only some of them
    held = [int(c) for c in np.unique(dataset.y_train)]
    fix = (
        f"pick --classes / --source-classes that {dataset.name}'s training split holds "
        f"({_class_counts(dataset.y_train, held)})"
        if task is not None and task.classes is not None and held
        else f"delete {dataset.name}'s files so they download again, or point --data-dir at complete ones"
    )
    raise InputError(
        f"Expected training samples in task {task.label if task else 'all'} of {dataset.name}. "
        f"Received: none. To fix, {fix}."
    )


def _task_name(role: str, task: TaskSpec | None) -> str:
    flag = "--classes" if role == "target" else "--source-classes"
    given = f"{flag} {','.join(map(str, task.classes))}" if task is not None and task.classes is not None else "all"
    return f"the {role} task ({given})"


def _class_counts(labels: np.ndarray, classes: Iterable[int]) -> str:
    return ", ".join(f"class {c}: {int(np.sum(labels == c))}" for c in classes)


def _check_class_samples(role: str, task: TaskSpec | None, dataset: Dataset) -> None:
    """A class the training split lacks would leave a head output no sample trains (and, in every listed class but
    one, no task at all). So with no --classes too: the head has an output for each of the dataset's classes, and
    files of one's own with training labels of one class scored a test accuracy of 1.0 on one-class test files."""
    listed = task is not None and task.classes is not None
    classes = task.classes if task is not None and task.classes is not None else range(dataset.num_classes)
    limit = task.train_limit if task is not None else None
    kept = dataset.y_train[np.isin(dataset.y_train, classes)]
    y = kept[:limit]
    missing = [c for c in classes if not np.any(y == c)]
    if not missing:
        return
    within = " within --train-limit" if limit is not None else ""
    # the limit cut the class off (the first N of the filtered split hold none of it): raising it is the fix
    reach = [int(np.argmax(kept == c)) + 1 for c in missing if np.any(kept == c)]
    # --train-limit sets the target task's; a source task's limit is its suite case's field alone
    flag = "--train-limit" if role == "target" else "the source task's train_limit"
    held = [c for c in range(dataset.num_classes) if np.any(dataset.y_train == c)]
    counts = "" if not listed and limit is None else f" ({_class_counts(dataset.y_train, range(dataset.num_classes))})"
    option = "--classes" if role == "target" else "--source-classes"
    fixes = [f"raise {flag} to at least {max(reach)}"] if len(reach) == len(missing) else []
    fixes.append(f"pick classes ({option}) that the training split of {dataset.name} holds{counts}")
    if dataset.root is not None:  # digits is bundled (no --data-dir is read for it): its classes or limit can change
        fixes.append("point --data-dir at complete files")
    fix = (
        ", or ".join([", ".join(fixes[:-1]), fixes[-1]] if len(fixes) > 1 else fixes)
        if listed or len(held) > 1
        else f"point --data-dir at complete files: a task needs two classes, and the split holds {len(held)}{counts}"
    )
    raise InputError(
        f"Expected training samples of every class of {_task_name(role, task)} in the training split of "
        f"{dataset.name}{within}{'' if listed else ', one for each output of its head'}. Received: none of class "
        f"{','.join(map(str, missing))} ({_class_counts(y, classes)}). To fix, {fix}."
    )


def _check_eval_samples(role: str, task: TaskSpec | None, derived: Dataset, dataset: Dataset) -> None:
    """An empty validation or test split would divide by zero in every trial's evaluation, after Ray started."""
    for split, split_name in (("val", "validation"), ("test", "test")):
        if len(derived.split(split)[1]) > 0:
            continue
        labels = dataset.split(split)[1]
        if len(labels) == 0:  # the dataset's own split is empty (a cut-down copy): no choice of classes fills it
            raise InputError(
                f"Expected {split_name} samples in {dataset.name}. Received: its {split_name} split is empty, read "
                f"from {dataset.provenance.get('source', 'its files')} ({len(dataset.y_train)} training samples). "
                f"To fix, point --data-dir at complete files of {dataset.name}, or at a cut-down copy large enough "
                "for every split (docs/data.md gives each dataset's split)."
            )
        classes = task.classes if task is not None and task.classes is not None else range(dataset.num_classes)
        raise InputError(
            f"Expected {split_name} samples in {_task_name(role, task)} of {dataset.name}. Received: none in its "
            f"{split_name} split ({_class_counts(labels, classes)}; the split holds {len(labels)} samples in all: "
            f"{_class_counts(labels, range(dataset.num_classes))}). To fix, pick classes that the {split_name} "
            f"split of {dataset.name} holds, or point --data-dir at complete files of {dataset.name}."
        )


def _check_train_limit(
    trial: TrialConfig, role: str, task: TaskSpec | None, derived: Dataset, dataset: Dataset
) -> None:
    """A limit above the samples there are would train on fewer than the results' task label ("first N train")
    says. The case is named: a suite's own limit (fashion_ab's 200) meets data smaller than it was sized for."""
    if task is None or task.train_limit is None or len(derived.y_train) >= task.train_limit:
        return
    available = len(derived.y_train)
    within = f" of classes {','.join(map(str, task.classes))}" if task.classes is not None else ""
    if role == "source":  # --train-limit sets the target task only: lowering it, as advised, broke the target
        classes = task.classes if task.classes is not None else range(dataset.num_classes)
        raise InputError(
            f"Expected the source task's train_limit at most {available:,}, the training samples{within} in "
            f"{dataset.name}. Received: {task.train_limit:,}, the limit case {trial.case_id} of suite {trial.suite} "
            "sets on the source task its backbone trains on (--train-limit sets the target task only). To fix, "
            f"point --data-dir at files with at least {task.train_limit:,} training samples{within}, "
            f"{_run_alone(trial, '--source-classes ' + ','.join(map(str, classes)))}, whose source task trains on "
            f"all {available:,} of them, or run a suite of your own whose source TaskSpec has train_limit="
            f"{available:,} or less (docs/regressions.md)."
        )
    raise InputError(
        f"Expected --train-limit at most {available:,}, the training samples{within} in {dataset.name}. "
        f"Received: {task.train_limit:,} for {trial.case_id}. To fix, lower --train-limit to {available:,} or less, "
        "or leave it out to train on all of them."
    )


def _check_classes(task: TaskSpec | None, dataset: str) -> None:
    if task is not None and task.classes is not None and not set(task.classes) <= set(range(NUM_CLASSES)):
        raise InputError(
            f"Expected classes among 0..{NUM_CLASSES - 1} of {dataset}. Received: classes={task.classes}. To fix, "
            "pick --classes / --source-classes from that range."
        )


def _check_transfer_groups(trial: TrialConfig, spec: ModelSpec) -> None:
    """transfer's frozen epochs freeze every layer group but ``classifier``: the head must be in that group, and
    some layer outside it, or the frozen phase would freeze the head (with nothing left to train, or a new head
    that never learns) or freeze nothing while its rows say frozen."""
    head, groups = spec.layers[-1], list(spec.groups())
    if head.group == "classifier" and len(groups) > 1:
        return
    if head.group != "classifier":
        received, effect = f"its head {head.name!r} in group {head.group!r}", "freeze the head"
    else:
        received, effect = "every layer in group 'classifier'", "freeze nothing"
    raise InputError(
        f"Expected {trial.model}'s head in layer group 'classifier' and other groups before it for strategy "
        f"transfer, whose frozen epochs freeze every group but 'classifier'. Received: {received} (groups "
        f"{groups}), so its frozen epochs would {effect}. To fix, put the head (and what should train with it) in "
        f"group 'classifier' and the layers before it in other groups ({_where_groups_are_set(trial)}), or give "
        "--frozen-epochs 0 to train every layer from the start."
    )


def _where_groups_are_set(trial: TrialConfig) -> str:
    """Where a model's layer groups come from (docs/zoo.md), so that the user knows what to change."""
    kind = trial.model.partition(":")[0] if ":" in trial.model else ""
    if kind == "python":
        return (
            "a python: model's groups are a torch model's top-level modules (apply each in one place) or the "
            "leading part of a Keras model's layer names"
        )
    if kind in ("torchvision", "keras"):
        return (
            "the architecture's groups are its own modules (docs/zoo.md): its zoo twin, where it has one, has the zoo's"
        )
    return 'a spec file\'s "group" field'


def _check_groups_in_one_piece(trial: TrialConfig, spec: ModelSpec) -> None:
    """freeze_early freezes "the first k groups" in model order: a group whose layers another group's interrupt (a
    spec file naming it again further on) sits both early and late, and freezing it would freeze late layers."""
    pieces = [layer.group for i, layer in enumerate(spec.layers) if i == 0 or spec.layers[i - 1].group != layer.group]
    broken = sorted({group for group in pieces if pieces.count(group) > 1})
    if broken:
        raise InputError(
            f"Expected each layer group of {trial.model} in one piece (its layers one after another) for strategy "
            f"freeze_early, which freezes the first k groups in model order. Received: group(s) {broken} interrupted "
            f"by others (the groups in model order: {pieces}). To fix, give each group's layers one after another "
            f"({_where_groups_are_set(trial)}), or use --strategy fine_tune."
        )


def _check_freeze_groups(trial: TrialConfig, groups: list[str], resumed: bool) -> None:
    """freeze_early freezes the first k layer groups and fine-tunes the rest: k from 1 to one below the group count.
    0 would train the whole network at one rate under freeze_early's name; all of them would train nothing."""
    k, most = trial.transfer.freeze_groups, len(groups) - 1
    if most < 1:
        raise InputError(
            f"Expected a model of 2 or more layer groups for strategy freeze_early, which freezes the first ones and "
            f"fine-tunes the rest. Received: {trial.model}, whose layer groups are {groups}. To fix, use --strategy "
            "feature_extraction to train a new head on the frozen network, or fine_tune to train all of it."
        )
    allowed = "1" if most == 1 else f"1 to {most}"
    if k < 1 and not resumed:  # it trained (everything): a recorded run ran as it stands
        raise InputError(
            f"Expected --freeze-groups of at least 1 for strategy freeze_early: it freezes the first k layer groups of "
            f"{trial.model} ({groups}) and fine-tunes the rest. Received: --freeze-groups {k}, which freezes nothing. "
            f"To fix, give --freeze-groups {allowed}, or use --strategy fine_tune (the backbone at a lower rate than "
            "the head) or --strategy scratch to train every layer."
        )
    if k > most:
        raise InputError(
            f"Expected --freeze-groups < {len(groups)} for {trial.model} (its layer groups are {groups}). "
            f"Received: freeze_groups={k}, which would leave nothing to train. To fix, give --freeze-groups {allowed} "
            f"(at most {most}: the last group, with the head, trains), or use --strategy feature_extraction to train "
            "only a new head."
        )


def _check_a_pretrained_layer_trains(trial: TrialConfig, spec: ModelSpec) -> None:
    """freeze_early fine-tunes the groups after the first k: where the new head is the only layer with weights among
    them (mlp's group 'classifier' holds its head alone), it trains the head on the frozen network, which is
    feature_extraction's number under freeze_early's name."""
    head, groups = spec.layers[-1].name, list(spec.groups())
    weighted = {key.split("/")[0] for key in parameter_shapes(spec) if is_trainable_param(key)} - {head}
    trains = [weighted & {l.name for l in spec.layers if l.group in groups[k:]} for k in range(len(groups))]
    k = trial.transfer.freeze_groups
    if trains[k]:
        return
    fewer = [i for i in range(1, k) if trains[i]]
    fix = (
        f"To fix, give --freeze-groups {'1 to ' if fewer[-1] > 1 else ''}{fewer[-1]}, or use"
        if fewer
        else "To fix, use"
    )
    raise InputError(
        f"Expected --freeze-groups to leave a backbone layer with weights to fine-tune for strategy freeze_early. "
        f"Received: --freeze-groups {k} for {trial.model} (layer groups {groups}), which leaves only the new head "
        f"{head!r} training: feature_extraction under freeze_early's name. {fix} --strategy feature_extraction to "
        "train the head alone."
    )


def _check_feature_pool(trial: TrialConfig, spec: ModelSpec) -> None:
    """deep_features pools only a feature map (height, width, channels); a flat layer's features pass unpooled, yet
    the option would be recorded with the results and key the feature cache as if it had done something."""
    t, shapes = trial.transfer, infer_shapes(spec)
    layer = t.feature_layer or spec.inputs_of(len(spec.layers) - 1)[0]
    shape = shapes[layer].shape
    if len(shape) == 3:
        return
    named = (
        f"--feature-layer {layer!r}" if t.feature_layer else f"the default feature layer {layer!r} (the head's input)"
    )
    maps = [l.name for l in spec.layers if len(shapes[l.name].shape) == 3][-3:]  # the maps nearest the head
    instead = f", or a --feature-layer whose output is a map, such as {maps}" if maps else ""
    raise InputError(
        f"Expected --feature-pool {t.feature_pool!r} on a layer whose output is a feature map (height, width, "
        f"channels) for {trial.case_id}: it averages over height and width. Received: {named} of {trial.model}, "
        f"whose output has shape {shape}: there is nothing to pool. To fix, drop --feature-pool{instead}."
    )


def _check_against_model(trial: TrialConfig, spec: ModelSpec, resumed: bool = False) -> None:
    """What the strategies would only find out in a worker: options that do not fit the model of the target task;
    and, but for a recorded run (``resumed``), options that would change nothing there."""
    check_flattened_merges(spec, trial.backend)  # a model its backend cannot build: each worker would refuse it
    t = trial.transfer
    if trial.strategy in NEEDS_BACKBONE and not isinstance(spec.layers[-1], Dense):
        raise InputError(
            f"Expected {trial.model}'s last layer to be a Dense head for strategy {trial.strategy}. "
            f"Received: {type(spec.layers[-1]).__name__} {spec.layers[-1].name!r}. To fix, use a model whose "
            "output layer is Dense, or the scratch strategy."
        )
    if trial.strategy == "freeze_early":
        _check_groups_in_one_piece(trial, spec)
        _check_freeze_groups(trial, list(spec.groups()), resumed)
        if not resumed:  # it trained as feature_extraction: a recorded run ran as it stands
            _check_a_pretrained_layer_trains(trial, spec)
    if "frozen" in dict(training_phases(trial)):
        _check_transfer_groups(trial, spec)
    names = [layer.name for layer in spec.layers]
    if trial.strategy == "deep_features" and t.feature_layer is not None and t.feature_layer not in names:
        raise InputError(
            f"Expected --feature-layer to be a layer of {trial.model}. Received: feature_layer="
            f"{t.feature_layer!r}. To fix, pick one of its layers: {names} (`xfbench model {trial.model}` lists them)."
        )
    if trial.strategy == "deep_features" and t.feature_pool != TransferOptions.feature_pool and not resumed:
        _check_feature_pool(trial, spec)
    if trial.mc_dropout_passes == 1 and not resumed:  # a recorded run ran as it stands
        raise InputError(
            "Expected --mc-dropout 2 or more passes: MC dropout measures the spread of the passes' predictions. "
            "Received: --mc-dropout 1, whose spread is 0 by construction (read as 'dropout changes nothing') and "
            "whose accuracy is one stochastic pass's. To fix, give --mc-dropout 2 or more."
        )
    if trial.mc_dropout_passes:
        if not any(isinstance(layer, Dropout) and layer.rate > 0 for layer in spec.layers):
            raise InputError(
                f"Expected a model with dropout for --mc-dropout. Received: {trial.model} has no dropout "
                f"layer with a rate > 0. {_dropout_fix(trial.model, spec)}"
            )
        if spec.num_classes < 2:
            raise InputError(
                "Expected a multi-class task for --mc-dropout (its metrics average softmax "
                f"probabilities). Received: a binary task ({trial.task.label if trial.task else ''}). "
                "To fix, drop --binary-positive or --mc-dropout."
            )


def _check_one_sample_batchnorm(trial: TrialConfig, spec: ModelSpec, train_samples: int) -> None:
    """Batches of one sample leave training-mode BatchNorm one value per channel where it normalises flat features
    (after a Dense layer) or 1x1 maps (ResNet-18's last stage at 32x32): PyTorch refuses to train on it, TensorFlow's
    unbiased variance of it divides by zero. Larger maps give a value per position. A training set of one sample
    batches one sample whatever the batch size; epoch_batches never leaves a last batch of one otherwise."""
    if min(trial.batch_size, train_samples) != 1 or not _batchnorm_trains_in_run(trial, spec):
        return
    shapes = infer_shapes(spec)
    single = [
        layer.name
        for layer in spec.layers
        if isinstance(layer, BatchNorm) and math.prod(shapes[layer.name].shape[:-1]) == 1
    ]
    if single:
        received = f"batch_size={trial.batch_size}" if trial.batch_size == 1 else "a training set of one sample"
        raise InputError(
            f"Expected batches of 2 samples or more for {trial.model}, whose BatchNorm {', '.join(single)} sees one "
            "value per channel for each sample (flat features, or 1x1 maps): one sample leaves no variance to "
            f"normalise by (PyTorch refuses it; TensorFlow's moving variance turns NaN). Received: {received}. To fix, "
            "give --batch-size 2 or more and a training set of 2 or more (--train-limit), or a larger --input-size."
        )


def _dropout_fix(model: str, spec: ModelSpec) -> str:
    """--dropout adds dropout to the zoo's own models only; a spec file or a user's model defines its own layers.
    A zoo model whose dropout --dropout 0 turned off is told to give it a rate (it was told to use itself); one that
    takes no --dropout (convnet3, the residual families) is not told to add it."""
    zoo = parse_model_ref(model).kind == "zoo"
    if zoo and any(isinstance(layer, Dropout) for layer in spec.layers):
        return "To fix, give --dropout a rate above 0 (its dropout layers are at rate 0)."
    if zoo and "dropout" in MODELS[model].options:
        return "To fix, add --dropout RATE, or use a model with dropout (cnn_small)."
    if zoo:
        return f"To fix, use a model with dropout (cnn_small, or mlp with --dropout RATE): {model} takes no --dropout."
    return (
        "To fix, add a dropout layer to the model's own definition, or use a zoo model with --dropout RATE (cnn_small)."
    )


def _check_local_environment(trials: list[TrialConfig], environ: Mapping[str, str]) -> None:
    """What a local run's environment, which its workers inherit, must hold and must not."""
    check_programs(trials, environ)
    check_framework_env(trials, environ)


def check_framework_env(trials: list[TrialConfig], environ: Mapping[str, str]) -> None:
    """Refuse an environment variable that makes a trial run otherwise than its options say (TORCHDYNAMO_DISABLE=1
    under --torch-compile: eager torch recorded as compiled; XLA auto-clustering from TF_XLA_FLAGS: XLA recorded as
    jit_compile false). Declared per backend (capabilities.py FRAMEWORK_ENV_CONFLICTS); a local run's environment
    only, which its workers inherit."""
    for trial in trials:
        for conflict in declarations(trial.backend).framework_env_conflicts:
            option_value = getattr(trial.runtime, conflict.option)
            if conflict.contradicts(option_value, environ):
                raise InputError(
                    f"Expected an environment that leaves {trial.backend}'s trials running as their options say "
                    f"({conflict.option} {str(option_value).lower()} on {trial.trial_id}). Received: "
                    f"{conflict.variable}={environ[conflict.variable]!r}, which {conflict.effect}. To fix, "
                    f"{conflict.fix}."
                )


def local_environ(options: ExecutionOptions) -> Mapping[str, str] | None:
    """This process's environment, which a local run's workers inherit; None for a run on a cluster (``--address``),
    whose nodes' programs the driver cannot see."""
    return None if options.address is not None else os.environ


def local_memory_bytes(options: ExecutionOptions) -> int | None:
    """This machine's physical memory, which a local run's trials share; None for a run on a cluster (``--address``),
    whose nodes the driver cannot know."""
    if options.address is not None:
        return None
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_memory(trial: TrialConfig, spec: ModelSpec, memory_bytes: int, data: Dataset) -> None:
    """A trial whose model and one batch (and MC-dropout passes' outputs) cannot fit in memory, however a framework
    trains it, fails here rather than as an out-of-memory kill in a worker (an input size, width or pass count
    typed with a digit too many)."""
    runtime = trial.runtime
    variable_bytes = 8 if runtime.variable_dtype == "float64" else 4
    activation_bytes = 2 if runtime.precision.startswith("mixed") else variable_bytes
    # MC dropout keeps every pass's test logits, then their float64 probabilities (harness.mc_dropout).
    mc_dropout_bytes = trial.mc_dropout_passes * len(data.y_test) * data.num_classes * (variable_bytes + 8)
    floor = training_memory_floor(spec, trial.batch_size, variable_bytes, activation_bytes) + mc_dropout_bytes
    if floor > memory_bytes:
        size = "x".join(map(str, spec.input_shape))
        passes = (
            f"; and {trial.mc_dropout_passes:,} MC-dropout passes' test logits and probabilities, "
            f"{mc_dropout_bytes / 2**30:,.1f} GiB of it"
            if mc_dropout_bytes
            else ""
        )
        raise InputError(
            f"Expected a trial that fits in this machine's memory ({memory_bytes / 2**30:.1f} GiB). Received: "
            f"{trial.model} at {size} with batch size {trial.batch_size} needs at least {floor / 2**30:,.1f} GiB "
            f"in {runtime.precision} (its {model_cost(spec).params:,} parameters and one batch's input and "
            f"largest layer output, before gradients, optimizer state and saved activations{passes}). To fix, use a "
            "smaller --input-size, --batch-size, --width-multiplier or --mc-dropout, or a cluster with "
            "bigger nodes (--address)."
        )


def datasets_to_ship(
    trials: list[TrialConfig],
    policy: str,
    address: str | None,
    loaded: dict[str, Dataset] | None = None,
) -> dict[str, Dataset]:
    """Datasets that travel through Ray's object store: ``always``, ``never``, or ``auto`` (arrays of at most
    SHIP_LIMIT_MB on a cluster, larger ones read on each node from a path valid there; at most LOCAL_SHIP_LIMIT_MB
    in a local run, whose workers map them from shared memory instead of reading the files each trial).
    ``loaded``: datasets the caller already holds (preflight's), so nothing is read twice."""
    if policy not in SHIP_POLICIES:
        raise InputError(
            f"Expected --ship-data in {list(SHIP_POLICIES)}. Received: {policy!r}. To fix, give one of those."
        )
    if policy == "never":
        return {}
    limit_mb = SHIP_LIMIT_MB if address else LOCAL_SHIP_LIMIT_MB
    shipped: dict[str, Dataset] = {}
    for trial in trials:
        if trial.dataset in shipped:
            continue
        dataset = (loaded or {}).get(trial.dataset) or load_dataset(trial.dataset, trial.data_dir, download=False)
        if policy == "always" or dataset.nbytes <= limit_mb * 2**20:
            shipped[trial.dataset] = dataset
    return shipped


def check_execution(options: ExecutionOptions) -> ExecutionOptions:
    """A local run cannot give a trial more CPUs than this process may use (a cluster may have bigger nodes); a
    cluster must answer at its address."""
    if options.address is not None:
        check_cluster_address(options.address)
    cpus = usable_cpus()
    if options.address is None and options.cpus_per_trial > cpus:
        raise InputError(
            f"Expected --cpus-per-trial <= the {cpus} CPUs this process may use (its CPU affinity: taskset, a "
            "container's or job's cpuset; capped by a container's CPU quota: docker --cpus, a Kubernetes CPU limit). "
            f"Received: {options.cpus_per_trial}. To fix, pass a smaller --cpus-per-trial (a resume, `xfbench run "
            "--resume` or `xfbench tune --resume`, takes one too)."
        )
    return options


def check_gpu_suites(
    suites: Iterable[Suite], gpus_per_trial: float | None, tier_option: Callable[[str], str] = lambda tier: tier
) -> None:
    """A suite sized for GPUs runs only where its trials ask Ray for GPUs: without --gpus-per-trial every trial
    trains on the CPU, a GPU machine's too (Ray gives a trial a GPU only when it asks for one), for hours.
    ``gpus_per_trial``: as given (None: not given); an explicit 0 trains them on CPUs on purpose."""
    gpu_only = gpu_only_suites(suites)
    if not gpu_only or gpus_per_trial is not None:
        return
    tiers = sorted({s.cpu_tier for s in gpu_only if s.cpu_tier})
    raise InputError(
        f"Expected --gpus-per-trial (1, or a fraction of a GPU) for {', '.join(s.name for s in gpu_only)}, sized "
        "for GPUs: each trial takes hours on CPUs. Received: no GPU asked for, so every trial would train on the CPU. "
        "To fix, add --gpus-per-trial 1 on a machine or cluster with GPUs"
        + (f", run the tier a CPU runs in minutes: {' / '.join(map(tier_option, tiers))}" if tiers else "")
        + ", or give --gpus-per-trial 0 to train it on CPUs anyway."
    )


def check_cluster_address(address: str) -> None:
    """``--address`` as HOST:PORT (``auto`` goes to Ray as it is, ``local`` never gets here: ExecutionOptions reads
    it as a local run) whose host resolves and whose port accepts a connection: otherwise Ray would retry for
    minutes, after the run started."""
    if address == "auto":  # Ray finds the cluster this machine belongs to
        return
    usage = "HOST:PORT of the cluster's head node, as `ray start --head` prints it (e.g. 10.0.0.5:6379), or auto"
    scheme, _, rest = address.rpartition("://")
    if scheme == "ray":  # Tune's Tuner runs its controller as an actor on the cluster under Ray Client
        raise InputError(
            f"Expected --address {usage}. Received: {address!r}, a Ray Client address: through Ray Client, Tune runs "
            "its controller on the cluster, where the trials' rows cannot reach this process's results files. To fix, "
            "run xfbench on a machine that reaches the head's GCS port (a node of the cluster), with --address "
            "HOST:6379."
        )
    if scheme:
        raise InputError(
            f"Expected --address {usage}. Received: {address!r}, a {scheme}:// URL (the dashboard's http:// address "
            "is not the cluster's). To fix, pass the head's HOST:PORT."
        )
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 literal
    if not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        if ":" not in rest:  # a host alone: rpartition put it where the port goes
            host, port = rest, ""
        what = "no host" if not host else f"port {port!r}, not a number from 1 to 65535" if port else "no port"
        raise InputError(
            f"Expected --address {usage}; a port from 1 to 65535. Received: {address!r}, with {what}. To fix, pass "
            "the address `ray start --head` printed (its GCS port, 6379 by default)."
        )
    dialled = dialled_host(host)
    why = connection_problem(dialled, int(port))
    if why and dialled != host and not connection_problem(host, int(port)):
        raise InputError(
            f"Expected a Ray cluster answering at this node's address {dialled}:{port}: Ray dials it for --address "
            f"{address} (it replaces a loopback address by the node's own). Received: a server on the loopback "
            f"alone ({why} at {dialled}), as an SSH tunnel or a port published on 127.0.0.1 gives. To fix, start the "
            f"head on this machine's address (`ray start --head`), or pass --address HOST:{port} of a head that "
            "listens on its network address."
        )
    if why:
        raise InputError(
            f"Expected a Ray cluster answering at --address {address}. Received: no connection ({why}). To fix, start "
            "the head node (`ray start --head`), or pass the address it printed."
        )
    # Under TLS (RAY_USE_TLS) the server expects a TLS handshake first: plain HTTP/2 would be refused there.
    why = "" if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true") else grpc_problem(dialled, int(port))
    if why:
        raise InputError(
            f"Expected a Ray cluster answering at --address {address}. Received: a server that is not Ray's ({why}). "
            "To fix, pass the port `ray start --head` printed (the GCS port, 6379 by default), not another service's."
        )
