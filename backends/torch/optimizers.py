"""torch.optim set up explicitly, and PyTorch's primitives of the harness' update pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch

from harness.config import OPTIMIZERS, OptimizerConfig
from harness.errors import unknown_name
from harness.update_pipeline import LossScaleRule, optimizer_weight_decay

A = TypeVar("A")
Grads = list[torch.Tensor | None]


def make_optimizer(params: Iterable[dict[str, Any]], config: OptimizerConfig) -> torch.optim.Optimizer:
    """torch.optim with every hyperparameter passed explicitly (config must be resolved)."""
    c = config
    wd = optimizer_weight_decay(c)  # 0 when the update pipeline decays (decoupled, other than AdamW's own)
    eps, rho = float(c.eps or 0.0), float(c.rho or 0.0)  # resolved: set for the optimizers that read them
    if c.name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=c.lr, momentum=c.momentum or 0.0, nesterov=c.name == "nesterov", weight_decay=wd, dampening=0.0
        )
    if c.name == "adam":
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=eps, weight_decay=wd)
    if c.name == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=eps, weight_decay=wd)
    if c.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.lr, alpha=rho, eps=eps, momentum=c.momentum or 0.0, weight_decay=wd)
    if c.name == "adagrad":
        return torch.optim.Adagrad(
            params, lr=c.lr, eps=eps, weight_decay=wd, initial_accumulator_value=0.0, lr_decay=0.0
        )
    if c.name == "adadelta":
        return torch.optim.Adadelta(params, lr=c.lr, rho=rho, eps=eps, weight_decay=wd)
    raise unknown_name("optimizer", c.name, list(OPTIMIZERS))


class TorchUpdate:
    """The pipeline's primitives over one optimizer; gradients live in ``p.grad`` and are clipped in place."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: list[torch.nn.Parameter],
        kernels: list[torch.Tensor],
        device: torch.device,
        loss_scale: LossScaleRule | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.params = params
        self.kernels = kernels  # Conv/Dense weights: they carry the penalties and the max-norm constraint
        self.device = device
        # Dynamic loss scaling (mixed_float16): the state a GradScaler keeps, on the device, for this optimizer.
        initial = loss_scale.initial_scale if loss_scale is not None else 1.0
        self.scale = torch.tensor(initial, dtype=torch.float32, device=device)
        self.good_steps = torch.zeros((), dtype=torch.int64, device=device)

    def penalty(self, l1: float, l2: float) -> torch.Tensor:
        dtype = self.kernels[0].dtype if self.kernels else torch.float32  # float64 models: float64
        total = torch.zeros((), dtype=dtype, device=self.device)
        for w in self.kernels:
            if l1:
                total = total + l1 * w.abs().sum()
            if l2:
                total = total + l2 * w.square().sum()
        return total

    def gradients(self, objective: Callable[[], tuple[torch.Tensor, A]]) -> tuple[Grads, A]:
        value, aux = objective()
        self.optimizer.zero_grad(set_to_none=True)
        value.backward()
        return [p.grad for p in self.params], aux

    def clip_by_value(self, grads: Grads, limit: float) -> Grads:
        torch.nn.utils.clip_grad_value_(self.params, limit)
        return grads

    def clip_by_global_norm(self, grads: Grads, max_norm: float) -> Grads:
        torch.nn.utils.clip_grad_norm_(self.params, max_norm)  # scale = min(1, c / (norm + 1e-6))
        return grads

    @torch.no_grad()
    def decay(self, grads: Grads, rate: float) -> None:
        # As torch.optim.AdamW does: w <- w (1 - lr wd) with each group's own rate.
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1.0 - group["lr"] * rate)

    def apply_update(self, grads: Grads) -> None:
        self.optimizer.step()  # reads p.grad, which holds ``grads``

    @torch.no_grad()
    def apply_max_norm(self, limit: float) -> None:
        # Norm of each output unit's incoming weights: Linear (out, in) over dim 1, Conv (out, in, kh, kw) over 1..3.
        for w in self.kernels:
            norms = w.square().sum(dim=tuple(range(1, w.dim())), keepdim=True).sqrt()
            w.mul_(norms.clamp(0, limit) / (1e-7 + norms))  # Keras' MaxNorm formula, epsilon 1e-7

    def loss_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scale, self.good_steps

    @torch.no_grad()
    def unscale(self, grads: Grads, scale: torch.Tensor) -> tuple[Grads, torch.Tensor]:
        present = [g for g in grads if g is not None]
        torch._foreach_mul_(present, 1.0 / scale)  # in place: p.grad is what optimizer.step() reads
        return grads, torch.stack([g.isfinite().all() for g in present]).all()

    def when_finite(self, finite: torch.Tensor, apply: Callable[[], None]) -> None:
        if bool(finite):  # a host sync per step, as GradScaler.step's check of found_inf
            apply()

    def select(self, condition: torch.Tensor, if_true: torch.Tensor, if_false: torch.Tensor) -> torch.Tensor:
        return torch.where(condition, if_true, if_false)

    def set_loss_scale(self, scale: torch.Tensor, good_steps: torch.Tensor) -> None:
        self.scale, self.good_steps = scale, good_steps
