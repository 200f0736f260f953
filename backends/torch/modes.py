"""How a PyTorch trial's model runs: memory format (RuntimeOptions.channels_last), mixed precision (bfloat16 or
float16 through torch.autocast; a float64 module is cast by the adapter before its weights go in) and torch.compile,
wrapped around the module that holds the parameters."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import torch

from harness.config import RuntimeOptions

# The compute dtype of each mixed precision; float16's loss scaling is the update pipeline's (LossScaleRule).
AUTOCAST = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}


class Autocast(torch.nn.Module):
    """The wrapped module's forward under torch.autocast: matmuls and convolutions in the autocast dtype, parameters
    and optimizer state float32; the logits come back float32, so the loss and the metrics are float32."""

    def __init__(self, inner: torch.nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner, self.device_type, self.dtype = inner, device_type, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.inner(x)
        return out.float()


def prepare_model(module: torch.nn.Module, runtime: RuntimeOptions, device: torch.device) -> torch.nn.Module:
    """What a step calls: ``module`` (which keeps the parameters, in place, already in the runtime's variable type:
    the adapter's build) in the runtime's memory format, under autocast for a mixed precision, compiled with
    --torch-compile. train()/eval() reach ``module`` through the wrappers."""
    if runtime.channels_last:
        module.to(memory_format=torch.channels_last)  # 4-d parameters (conv kernels) only; in place
    model = module
    if runtime.precision in AUTOCAST:
        model = Autocast(model, device.type, AUTOCAST[runtime.precision])
    # torch.compile wraps the module in an OptimizedModule: still a Module (train/eval reach the original).
    return cast(torch.nn.Module, torch.compile(model)) if runtime.torch_compile else model


INDUCTOR_FOLDER_PREFIX = "xfbench-inductor-"


def compile_afresh(device: torch.device) -> Path:
    """Before a --torch-compile trial: pay what torch.compile pays once per process (inductor's lazy imports, the
    first backward graph's set-up) on a tiny throwaway module, then drop every in-process cache of compiled code.
    A warm worker's later trials had reused the graphs of its earlier ones, a fresh worker's first trial had paid the
    one-off costs, so the same trial's warm-up epoch moved with the scheduling (0.15 s to 0.9 s on digits' mlp);
    now it holds the model's own tracing and compilation (0.16-0.26 s there, measured in warm and fresh workers:
    some process state still helps a later trial). Inductor's on-disk caches (its graphs, its C++ and Triton
    kernels) go to a folder of the trial's own, returned for the caller to remove: in the shared one under the
    system's temp folder, every seed after a run's first loaded the first's kernels (cnn_small on digits: a warm-up
    of 18 s, then 0.5 s and 1.0 s), where XLA compiles in every trial (docs/scheduling.md)."""
    bind_compile_threads(torch.get_num_threads())  # the adapter has just set it to the trial's threads
    earlier = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    if earlier.name.startswith(INDUCTOR_FOLDER_PREFIX):  # this process's last compiled trial's, done: its backend may
        shutil.rmtree(earlier, ignore_errors=True)  # live on in a reference cycle until a worker's exit skips it
    own = Path(tempfile.mkdtemp(prefix=INDUCTOR_FOLDER_PREFIX))
    # read by inductor (and, under it, Triton) each time it looks for a cache: the process's, set per trial
    os.environ["TORCHINDUCTOR_CACHE_DIR"], os.environ["TRITON_CACHE_DIR"] = str(own), str(own / "triton")
    probe = torch.nn.Linear(2, 2).to(device)
    with compile_threads_variable(torch.get_num_threads()):  # the compile workers this first compile starts see it
        torch.compile(probe)(torch.ones(1, 2, device=device)).sum().backward()
        _worker_count_of_autotuning()
    torch._dynamo.reset()
    torch._inductor.utils.clear_inductor_caches()
    return own


COMPILE_THREADS_VARIABLE = "TORCHINDUCTOR_COMPILE_THREADS"


def bind_compile_threads(threads: int) -> None:
    """Inductor compiles on min(32, the machine's CPUs) threads and worker processes unless told otherwise: a trial
    given one CPU (--cpus-per-trial 1) compiled on every core, beside the trials running on them, and its warm-up
    measured a machine's worth of compiling. Bound to the trial's threads; pools a warm worker's earlier trial made
    for another count are shut down, so the next compile makes them afresh at this one."""
    from torch._inductor import async_compile, config

    if config.compile_threads != threads:
        if async_compile.AsyncCompile.pool.cache_info().currsize:  # the in-process thread pool (C++ kernels)
            async_compile.AsyncCompile.pool().shutdown(wait=False)
            async_compile.AsyncCompile.pool.cache_clear()
        async_compile.shutdown_compile_workers()  # the worker processes (Triton kernels); clears their cache
    config.compile_threads = threads


@contextlib.contextmanager
def compile_threads_variable(threads: int) -> Iterator[None]:
    """TORCHINDUCTOR_COMPILE_THREADS set to ``threads`` while the block runs, then as it was: inductor's worker
    processes, started there, and its autotuning's worker count read it, and it does not outlive the trial's set-up
    into a later trial of a warm worker, nor a user's own value into this one."""
    before = os.environ.get(COMPILE_THREADS_VARIABLE)
    os.environ[COMPILE_THREADS_VARIABLE] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ[COMPILE_THREADS_VARIABLE]
        else:
            os.environ[COMPILE_THREADS_VARIABLE] = before


def _worker_count_of_autotuning() -> None:
    """Max-autotune's benchmarking workers, counted once per process (functools.cache) from the variable: counted
    afresh while it holds this trial's threads."""
    from torch._inductor import select_algorithm

    select_algorithm.get_num_workers.cache_clear()
    select_algorithm.get_num_workers()


def model_input(x: torch.Tensor, runtime: RuntimeOptions) -> torch.Tensor:
    """Images (N, C, H, W) in the runtime's precision (float64 or float32: autocast casts on its own) and memory
    format: with channels_last, stored N, H, W, C."""
    x = x.to(torch.float64) if runtime.variable_dtype == "float64" else x
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last and x.ndim == 4 else x
