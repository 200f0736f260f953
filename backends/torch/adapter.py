"""The PyTorch backend: eager training with torch.optim, data held on the device."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from backends.torch.layout import images_to_torch
from backends.torch.model import build_module, export_weights, load_weights
from harness.backend import StepStats
from harness.config import OptimizerConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def make_optimizer(params, config: OptimizerConfig) -> torch.optim.Optimizer:
    """torch.optim with every hyperparameter passed explicitly (config must be resolved)."""
    c = config
    wd = float(c.weight_decay or 0.0)
    if c.name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum or 0.0, nesterov=c.name == "nesterov",
                               weight_decay=wd, dampening=0.0)
    if c.name == "adam":
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, weight_decay=wd)
    if c.name == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, weight_decay=wd)
    if c.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rho, eps=c.eps, momentum=c.momentum or 0.0, weight_decay=wd)
    if c.name == "adagrad":
        return torch.optim.Adagrad(params, lr=c.lr, eps=c.eps, weight_decay=wd, initial_accumulator_value=0.0, lr_decay=0.0)
    if c.name == "adadelta":
        return torch.optim.Adadelta(params, lr=c.lr, rho=c.rho, eps=c.eps, weight_decay=wd)
    raise ValueError(f"Expected a known optimizer. Received: {c.name!r}.")


class TorchBackend:
    name = "torch"

    def __init__(self, runtime: RuntimeOptions) -> None:
        self.runtime = runtime
        torch.set_num_threads(runtime.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already fixed by earlier parallel work in this process; intra-op threads still apply
        if runtime.device == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("Expected a CUDA GPU for device='gpu'. Received: torch sees none. Run with --gpus-per-trial 0.")
            self.device = torch.device("cuda")
            torch.backends.cudnn.benchmark = runtime.cudnn_benchmark
        else:
            self.device = torch.device("cpu")
        if runtime.deterministic:
            torch.use_deterministic_algorithms(True)
        self.capabilities = frozenset({"torch_compile", "per_group_lr", "freeze"} | ({"gpu"} if torch.cuda.is_available() else set()))
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._spec: ModelSpec | None = None

    def framework_version(self) -> str:
        return torch.__version__

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        # Dropout draws from the global generator in torch; seeding it here keeps trials reproducible.
        torch.manual_seed(seed)
        model = build_module(spec)
        load_weights(model, spec, weights)
        self.module = model.to(self.device)
        self.model = torch.compile(self.module) if self.runtime.torch_compile else self.module
        self._spec = spec

    def export_weights(self) -> NeutralWeights:
        assert self._spec is not None, "build() first"
        return export_weights(self.module, self._spec)

    def set_optimizer(self, config: OptimizerConfig) -> None:
        self.optimizer = make_optimizer([p for p in self.module.parameters() if p.requires_grad], config)

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        self._data[split] = (
            torch.from_numpy(images_to_torch(x.astype(np.float32, copy=False))).to(self.device),
            torch.from_numpy(y.astype(np.int64, copy=False)).to(self.device),
        )

    def train_epoch(self, split: str, batches: Sequence[np.ndarray]) -> StepStats:
        x, y = self._data[split]
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        for batch in batches:
            idx = torch.from_numpy(batch).to(self.device, non_blocking=True)
            xb, yb = x[idx], y[idx]  # advanced indexing: measured ~20 % faster per step than index_select on CPU
            logits = self.model(xb)
            loss = F.cross_entropy(logits, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            # Accumulate on the device: no per-step host sync.
            loss_sum += loss.detach() * len(batch)
            correct += (logits.detach().argmax(1) == yb).sum()
            count += len(batch)
        return StepStats(float(loss_sum.item()), int(correct.item()), count)

    @torch.no_grad()
    def evaluate(self, split: str, batch_size: int) -> StepStats:
        x, y = self._data[split]
        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, len(y), batch_size):
            logits = self.model(x[start:start + batch_size])
            yb = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(1) == yb).sum()
        return StepStats(float(loss_sum.item()), int(correct.item()), len(y))

    @torch.no_grad()
    def predict_logits(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        self.model.eval()
        xt = torch.from_numpy(images_to_torch(x.astype(np.float32, copy=False))).to(self.device)
        return torch.cat([self.model(xt[s:s + batch_size]) for s in range(0, len(xt), batch_size)]).cpu().numpy()


def create_backend(runtime: RuntimeOptions) -> TorchBackend:
    return TorchBackend(runtime)
