"""Functions the mode tests run inside a per-backend worker process (tests/conftest.py's BackendWorker): they use
only the backend protocol, with the RuntimeOptions under test."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from harness import update_pipeline
from harness.backend import StepStats, load_backend
from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def _backend(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    seed: int = 0,
):
    """A backend for ``runtime`` built from ``weights`` with ``optimizer``."""
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=seed)
    backend.set_optimizer(optimizer.resolved())
    return backend


def train(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    seed: int = 0,
) -> tuple[NeutralWeights, StepStats, list[float]]:
    """``batches`` as one epoch at the optimizer's learning rate; the weights, the epoch's stats, the lr trace."""
    backend = _backend(name, runtime, spec, weights, optimizer, seed)
    backend.set_data("train", x, y)
    backend.record_lr_trace = True
    lrs = np.linspace(optimizer.lr, optimizer.lr / 2, len(batches)).astype(np.float32)  # a schedule, per step
    stats = backend.train_epoch("train", batches, lrs, first_step=0)
    return backend.export_weights(), stats, list(backend.lr_trace)


def train_with_techniques(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    frozen: tuple[str, ...],
    multipliers: dict[str, float],
    regularization: RegularizationConfig,
) -> tuple[NeutralWeights, StepStats]:
    """``batches`` as one epoch with ``frozen`` layers frozen, then the optimizer set with ``regularization`` and
    per-layer lr ``multipliers`` (as a strategy does: freezing first), per-step learning rates and momenta; the
    weights and the epoch's stats (data loss and penalty sums)."""
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=0)
    backend.freeze_layers(frozen)
    backend.set_optimizer(optimizer.resolved(), regularization, multipliers)
    backend.set_data("train", x, y)
    lrs = np.linspace(optimizer.lr, optimizer.lr / 2, len(batches)).astype(np.float32)
    momenta = np.linspace(0.9, 0.8, len(batches)).astype(np.float32)
    stats = backend.train_epoch("train", batches, lrs, momenta, first_step=0)
    return backend.export_weights(), stats


def test_accuracy(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: list[list[np.ndarray]],
) -> tuple[float, float]:
    """Train epoch by epoch, then the test accuracy; and the training seconds."""
    x_train, y_train, x_test, y_test = data
    backend = _backend(name, runtime, spec, weights, optimizer)
    backend.set_data("train", x_train, y_train)
    backend.set_data("test", x_test, y_test)
    start = time.perf_counter()
    step = 0
    for batches in epochs:
        backend.train_epoch("train", batches, np.full(len(batches), optimizer.lr, np.float32), first_step=step)
        step += len(batches)
    seconds = time.perf_counter() - start
    return backend.evaluate("test", batch_size=500).accuracy, seconds


def loss_scale_after(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    initial_scale: float,
) -> tuple[float, int]:
    """``batches`` as one epoch under mixed_float16, the loss scale starting at ``initial_scale``; the (scale, finite
    steps in a row) after it. The rule is swapped for this probe only (the worker process serves later tests)."""
    saved = update_pipeline.FLOAT16_LOSS_SCALE
    update_pipeline.FLOAT16_LOSS_SCALE = dataclasses.replace(saved, initial_scale=initial_scale)
    try:
        backend = _backend(name, dataclasses.replace(runtime, precision="mixed_float16"), spec, weights, optimizer)
    finally:
        update_pipeline.FLOAT16_LOSS_SCALE = saved
    backend.set_data("train", x, y)
    backend.train_epoch("train", batches, np.full(len(batches), optimizer.lr, np.float32), first_step=0)
    if name == "torch":  # the state lives in the adapter's update primitives (torch) or optimizer (TensorFlow)
        scale, good = backend.update.loss_scale()
        return float(scale.item()), int(good.item())
    return float(backend._optimizer.loss_scale.numpy()), int(backend._optimizer.good_steps.numpy())


def tf32_policy(name: str, runtime: RuntimeOptions) -> tuple[bool, ...]:
    """The framework's TF32 switches after a backend for ``runtime`` was created."""
    load_backend(name, runtime)
    if name == "torch":
        import torch

        return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    import tensorflow as tf

    return (tf.config.experimental.tensor_float_32_execution_enabled(),)


def cudnn_autotune_policy(name: str, runtime: RuntimeOptions) -> bool:
    """Whether the framework will time cuDNN's convolution algorithms, after a backend for ``runtime`` was created:
    torch's cudnn.benchmark, TensorFlow's TF_CUDNN_USE_AUTOTUNE as its convolution kernels read it (unset: on)."""
    load_backend(name, runtime)
    if name == "torch":
        import torch

        return bool(torch.backends.cudnn.benchmark)
    import os

    return os.environ.get("TF_CUDNN_USE_AUTOTUNE", "1") != "0"


def step_traces(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    epochs: list[list[np.ndarray]],
) -> int:
    """How often the per-step train step was traced over ``epochs`` (TensorFlow: tf.function's own count)."""
    backend = _backend(name, runtime, spec, weights, optimizer)
    backend.set_data("train", x, y)
    step = 0
    for batches in epochs:
        backend.train_epoch("train", batches, np.full(len(batches), optimizer.lr, np.float32), first_step=step)
        step += len(batches)
    return backend._split_steps["train"].experimental_get_tracing_count()


def compile_caches_around_a_compiled_backend(name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(code objects Dynamo has seen, modules of compiled code inductor holds in this process) after an earlier
    trial's compiled function ran, then after a new backend with --torch-compile was made in the same process, as in
    a warm worker. Torch only."""
    import torch
    from torch._dynamo import convert_frame
    from torch._inductor.codecache import PyCodeCache

    def held() -> tuple[int, int]:
        return len(convert_frame.input_codes.seen), len(PyCodeCache.modules)

    torch.compile(lambda x: x * 2 + 1)(torch.ones(3))
    before = held()
    load_backend(name, RuntimeOptions(torch_compile=True))
    return before, held()


def inductor_cache_folders(name: str) -> tuple[bool, bool, bool, bool]:
    """Two compiled backends made one after the other in this process, as in a warm worker: whether each had an
    inductor cache folder of its own, whether the second's differs from the first's, and whether the first's is gone
    once its backend is. Torch only."""
    import gc
    import os
    from pathlib import Path

    earlier = load_backend(name, RuntimeOptions(torch_compile=True))
    first = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    had_first = first.is_dir() and any(first.iterdir())  # the throwaway module's compile wrote there
    del earlier  # a warm worker's earlier trial, done
    second = load_backend(name, RuntimeOptions(torch_compile=True))
    gc.collect()
    own = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    alive = own.is_dir()
    del second
    gc.collect()
    return had_first, own != first and alive, not first.exists(), not own.exists()


def mc_predictions(name: str, runtime: RuntimeOptions, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray):
    """Three MC-dropout passes over ``x`` from a backend for ``runtime`` built from ``weights`` (untrained)."""
    return _backend(name, runtime, spec, weights, OptimizerConfig()).predict_mc(x, 3, seed=11, batch_size=64)


def inductor_compile_threads(name: str) -> list[tuple[int, int | None, str | None]]:
    """A compiled backend of one thread, then one of two, in this process (as in a warm worker): after each, the
    threads inductor compiles on, the workers of its in-process compile pool (None: it compiles without one) and
    TORCHINDUCTOR_COMPILE_THREADS as this process now has it. Torch only."""
    import os

    from torch._inductor import async_compile, config

    seen = []
    for threads in (1, 2):
        load_backend(name, RuntimeOptions(threads=threads, torch_compile=True))
        pool = async_compile.AsyncCompile.pool()._max_workers if config.compile_threads > 1 else None
        seen.append((config.compile_threads, pool, os.environ.get("TORCHINDUCTOR_COMPILE_THREADS")))
    return seen


def fit_pipeline_threads(name: str, runtime: RuntimeOptions, spec: ModelSpec, weights: NeutralWeights) -> int:
    """The threads TensorFlow's fit mode lets its tf.data pipeline use beside the step."""
    backend = _backend(name, runtime, spec, weights, OptimizerConfig())
    return int(backend._fit.options.threading.private_threadpool_size)


def train_epochs(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    epochs: list[tuple[str, list[np.ndarray], bool]],
) -> tuple[NeutralWeights, list[StepStats], int]:
    """Epoch after epoch of (split, batches, augmented?): a second split ("head", the first 300 samples) and
    augmentation (crop 1 + flip) switched on and off between epochs, each epoch with its own per-step learning rates
    and momenta. The weights, each epoch's stats, and (TensorFlow's fit) how many input pipelines were built."""
    from harness.augment import AugmentConfig, epoch_draws

    backend = _backend(name, runtime, spec, weights, optimizer)
    backend.set_data("train", x, y)
    backend.set_data("head", x[:300], y[:300])
    stats, step = [], 0
    for number, (split, batches, augmented) in enumerate(epochs, start=1):
        draws = epoch_draws(AugmentConfig(crop_padding=1, flip=True), 0, number, len(y)) if augmented else None
        lrs = np.linspace(optimizer.lr, optimizer.lr / number, len(batches)).astype(np.float32)
        momenta = np.linspace(0.9, 0.8, len(batches)).astype(np.float32)
        stats.append(backend.train_epoch(split, batches, lrs, momenta, draws, first_step=step))
        step += len(batches)
    fit = getattr(backend, "_fit", None)
    return backend.export_weights(), stats, len(fit.feeds) if fit is not None else 0


def refusal_of_another_thread_count(name: str, threads: int) -> str:
    """What creating a backend with ``threads`` says in this worker, whose TensorFlow already runs one thread ("" if
    nothing)."""
    import tensorflow as tf

    load_backend(name, RuntimeOptions(threads=1))
    tf.constant(1.0) + 1.0  # the runtime starts (an earlier trial's first step did)
    try:
        load_backend(name, RuntimeOptions(threads=threads))
    except RuntimeError as exc:
        return str(exc)
    return ""


def mode_in_effect(
    name: str,
    runtime: RuntimeOptions,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
) -> dict[str, object]:
    """What ran, read from the backend after one epoch: the parity tests compare a mode's numbers with the default
    mode's, which a mode silently not applied passes too (XLA, eager, torch.compile, channels_last, bf16 dropped in a
    copy of the code: every mode test passed). Reaches into the adapters on purpose: that is where a mode lives."""
    backend = _backend(name, runtime, spec, weights, optimizer)
    backend.set_data("train", x, y)
    lrs = np.full(len(batches), optimizer.lr, np.float32)
    if name == "torch":
        import torch

        # the last conv: the first one's single input channel makes its kernel, and its input, read as both layouts
        convs = [m for m in backend.module.modules() if isinstance(m, torch.nn.Conv2d)]
        first = convs[-1]
        seen: list[str] = []
        layouts: set[bool] = set()

        def note(module, inputs, output) -> None:
            seen.append(str(output.dtype).removeprefix("torch."))

        def note_layout(module, inputs, output) -> None:
            # oneDNN gives channels_last outputs when its input or kernel reads as channels_last: with numpy's
            # strides for 1-channel images it did so for every convolution of a default run (layout.images_to_torch);
            # every conv's, the 1-channel first one's too (its outputs have many channels: unambiguous)
            layouts.add(output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous())

        from torch._dynamo.utils import counters

        hooks = [] if runtime.torch_compile else [first.register_forward_hook(note)]
        hooks += [] if runtime.torch_compile else [conv.register_forward_hook(note_layout) for conv in convs]
        graphs = counters["stats"]["unique_graphs"]
        backend.train_epoch("train", batches, lrs, first_step=0)
        for hook in hooks:
            hook.remove()
        return {  # compiled: the model wrapped, and Dynamo compiling graphs as the epoch ran (the step calls it)
            "compiled": type(backend.model).__name__ == "OptimizedModule"
            and counters["stats"]["unique_graphs"] > graphs,
            "conv_output_dtype": seen[0] if seen else None,
            "conv_output_channels_last": sorted(layouts) if layouts else None,  # [False], [True]; both: mixed
            "kernel_channels_last": bool(
                first.weight.dim() == 4 and first.weight.is_contiguous(memory_format=torch.channels_last)
            ),
        }
    from backends.tensorflow.tracing import traced

    calls = []  # the epoch's calls of the split's step: one per batch, or one in all for the compiled epoch loop
    if runtime.tf_mode != "fit":
        split_step = backend._split_step("train")
        backend._split_steps["train"] = lambda *args: calls.append(args) or split_step(*args)
    backend.train_epoch("train", batches, lrs, first_step=0)
    step = split_step if calls else None
    from backends.tensorflow import adapter

    made: list = []  # the functions MC-dropout prediction compiles (one: the shared-mask or the framework-mask pass)
    adapter.traced = lambda function, **how: made.append(traced(function, **how)) or made[-1]
    try:
        backend.predict_mc(x[:8], 2, seed=1, batch_size=4)
    finally:
        adapter.traced = traced
    layer = next(layer for layer in backend.model.layers if layer.__class__.__name__ in ("Dense", "Conv2D"))
    return {
        "calls_per_epoch": len(calls) if calls else None,
        "traced": hasattr(step, "get_concrete_function") if step is not None else None,
        "xla": getattr(step, "_jit_compile", None) if step is not None else None,
        "fit_xla": backend._fit.model.jit_compile if backend._fit is not None else None,
        "compute_dtype": layer.compute_dtype,
        "mc_xla": [function._jit_compile for function in made],
    }
