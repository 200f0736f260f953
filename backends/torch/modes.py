"""How a PyTorch trial's model runs: memory format (RuntimeOptions.channels_last), mixed precision (bfloat16 or
float16 through torch.autocast; a float64 module is cast by the adapter before its weights go in) and torch.compile,
wrapped around the module that holds the parameters."""

from __future__ import annotations

import os
import shutil
import tempfile
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
    earlier = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    if earlier.name.startswith(INDUCTOR_FOLDER_PREFIX):  # this process's last compiled trial's, done: its backend may
        shutil.rmtree(earlier, ignore_errors=True)  # live on in a reference cycle until a worker's exit skips it
    own = Path(tempfile.mkdtemp(prefix=INDUCTOR_FOLDER_PREFIX))
    # read by inductor (and, under it, Triton) each time it looks for a cache: the process's, set per trial
    os.environ["TORCHINDUCTOR_CACHE_DIR"], os.environ["TRITON_CACHE_DIR"] = str(own), str(own / "triton")
    probe = torch.nn.Linear(2, 2).to(device)
    torch.compile(probe)(torch.ones(1, 2, device=device)).sum().backward()
    torch._dynamo.reset()
    torch._inductor.utils.clear_inductor_caches()
    return own


def model_input(x: torch.Tensor, runtime: RuntimeOptions) -> torch.Tensor:
    """Images (N, C, H, W) in the runtime's precision (float64 or float32: autocast casts on its own) and memory
    format: with channels_last, stored N, H, W, C."""
    x = x.to(torch.float64) if runtime.variable_dtype == "float64" else x
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last and x.ndim == 4 else x
