"""What happens in one optimizer step, in which order: written once, run by every backend.

Each step differentiates the data loss plus the kernel penalty, clips the gradients element-wise and then by
their global norm, shrinks the weights by decoupled weight decay (each parameter group at its own learning
rate), applies the optimizer's update with the per-group learning rates, and finally rescales kernels to the
max-norm constraint. With float16 compute (``mixed_float16``) the objective is multiplied by a dynamic loss scale
before differentiation and the gradients divided by it after; a step whose gradients are not all finite applies
nothing and lowers the scale (:class:`LossScaleRule`, written once here so both backends skip the same steps). An
adapter supplies these operations as :class:`UpdatePrimitives` over its own tensors;
:func:`update_step` only calls them, so it runs eagerly (PyTorch) and traces inside a compiled function
(TensorFlow's tf.function) alike. Framework-free: nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from harness.config import OptimizerConfig, RegularizationConfig


class Summable(Protocol):
    """A framework's scalar tensor: the penalty is added to the loss with ``+``."""

    def __add__(self, other: Any, /) -> Any: ...

    def __mul__(self, other: Any, /) -> Any: ...


T = TypeVar("T", bound=Summable)  # a scalar tensor of the adapter's framework (loss, penalty)
H = TypeVar("H")  # the batch's hit count, passed through untouched
G = TypeVar("G")  # the adapter's gradients, one per trainable parameter (None where a parameter got none)
A = TypeVar("A")  # what the objective returns beside its value


def pipeline_decay(config: OptimizerConfig) -> float:
    """The decoupled decay rate the pipeline applies before the update (0: none).

    AdamW decays inside its own update, as torch.optim.AdamW does; coupled weight decay (decoupled=False) is
    the optimizer's L2 term on the gradient. So an adapter's optimizer gets weight decay 0 exactly when this
    is non-zero. ``config`` must be resolved."""
    if config.decoupled and config.name != "adamw" and config.weight_decay:
        return float(config.weight_decay)
    return 0.0


def optimizer_weight_decay(config: OptimizerConfig) -> float:
    """The weight decay the optimizer's own rule applies: AdamW's decoupled decay inside its update, any other
    optimizer's coupled L2 term on the gradient (torch.optim's ``weight_decay``); 0 when the pipeline decays
    (:func:`pipeline_decay`). Every backend's optimizer takes this figure."""
    return 0.0 if pipeline_decay(config) else float(config.weight_decay or 0.0)


@dataclass(frozen=True)
class LossScaleRule:
    """Dynamic loss scaling for float16 compute: torch.amp.GradScaler's rule with its defaults. Keras'
    LossScaleOptimizer follows the same rule (its defaults: initial scale 2**15, 2000 steps); xfbench does not use
    either framework's own, both backends call :meth:`next` from the update pipeline, so they skip the same steps.

    The scaled objective's gradients are multiplied by 1 / scale (a power of two: exact). A step whose gradients are
    not all finite applies nothing (no clipping, decay, update or max-norm) and multiplies the scale by
    ``backoff_factor``; ``growth_interval`` finite steps in a row multiply it by ``growth_factor``."""

    initial_scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000

    def next(self, scale: Any, good_steps: Any, finite: Any, select: Callable[[Any, Any, Any], Any]) -> tuple[Any, Any]:
        """The (scale, finite steps in a row) after a step, as framework tensors: ``select(c, a, b)`` is the
        framework's element-wise ``where``, so the rule traces inside a compiled step (GradScaler's
        _amp_update_scale_ in operators)."""
        good = select(finite, good_steps + 1, good_steps * 0)
        grow = good >= self.growth_interval
        grown = select(grow, scale * self.growth_factor, scale)
        return select(finite, grown, scale * self.backoff_factor), select(grow, good * 0, good)


# The rule of --precision mixed_float16. Module-level so a test can start from a scale that overflows.
FLOAT16_LOSS_SCALE = LossScaleRule()


def loss_scale_rule(precision: str) -> LossScaleRule | None:
    """The dynamic loss scaling a precision needs: float16 compute only (bfloat16 has float32's exponent range)."""
    return FLOAT16_LOSS_SCALE if precision == "mixed_float16" else None


@dataclass(frozen=True)
class UpdateRule:
    """The settings around each update, fixed from one set_optimizer() call until the next."""

    l1: float = 0.0
    l2: float = 0.0
    clip_value: float | None = None
    clip_norm: float | None = None
    decoupled_decay: float = 0.0  # w <- w (1 - lr_group * rate) before the update; 0: none (see pipeline_decay)
    max_norm: float | None = None
    loss_scale: LossScaleRule | None = None  # float16 compute: dynamic loss scaling (None: none)

    @classmethod
    def of(
        cls, optimizer: OptimizerConfig, regularization: RegularizationConfig, loss_scale: LossScaleRule | None = None
    ) -> UpdateRule:
        """The rule of a resolved optimizer config, the regularisation of a trial and its precision's loss scaling
        (:func:`loss_scale_rule`)."""
        return cls(
            l1=regularization.l1,
            l2=regularization.l2,
            clip_value=optimizer.clip_value,
            clip_norm=optimizer.clip_norm,
            decoupled_decay=pipeline_decay(optimizer),
            max_norm=regularization.max_norm,
            loss_scale=loss_scale,
        )

    @property
    def penalised(self) -> bool:
        return bool(self.l1 or self.l2)


class UpdatePrimitives(Protocol[T, G]):
    """The operations of one step that differ between frameworks; :func:`update_step` decides when each runs."""

    def penalty(self, l1: float, l2: float) -> T:
        """l1·Σ|w| + l2·Σw² over the trainable Conv/Dense kernels (no biases, BatchNorm or PReLU slopes)."""
        ...

    def gradients(self, objective: Callable[[], tuple[T, A]]) -> tuple[G, A]:
        """Call ``objective`` while recording, and return the gradients of its first result with respect to the
        trainable parameters, with its second result."""
        ...

    def clip_by_value(self, grads: G, limit: float) -> G:
        """Each gradient element clipped to [-limit, limit]."""
        ...

    def clip_by_global_norm(self, grads: G, max_norm: float) -> G:
        """All gradients scaled by min(1, max_norm / (global L2 norm + 1e-6)), PyTorch's clip_grad_norm_."""
        ...

    def decay(self, grads: G, rate: float) -> None:
        """w <- w (1 - lr_group * rate) for every parameter that has a gradient, at its group's learning rate."""
        ...

    def apply_update(self, grads: G) -> None:
        """The optimizer's update from ``grads``, each parameter group at its own learning rate."""
        ...

    def apply_max_norm(self, limit: float) -> None:
        """Every output unit's incoming kernel weights rescaled to an L2 norm of at most ``limit`` (Keras' MaxNorm)."""
        ...

    # Loss scaling (UpdateRule.loss_scale set): called only then.
    def loss_scale(self) -> tuple[Any, Any]:
        """The current (scale, finite steps in a row), as the framework's scalar tensors."""
        ...

    def unscale(self, grads: G, scale: Any) -> tuple[G, Any]:
        """``grads`` multiplied by 1 / ``scale``, and whether every element of them is finite (a boolean tensor)."""
        ...

    def when_finite(self, finite: Any, apply: Callable[[], None]) -> None:
        """Run ``apply`` only where ``finite`` holds (PyTorch: a host check, as GradScaler.step; TF: tf.cond)."""
        ...

    def select(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        """The framework's element-wise where."""
        ...

    def set_loss_scale(self, scale: Any, good_steps: Any) -> None:
        """Store the state the next step reads."""
        ...


@dataclass(frozen=True)
class StepOutputs(Generic[T, H]):
    """What one step reports: the data loss (not the objective), the penalty (None: not penalised), the hits."""

    loss: T
    penalty: T | None
    hits: H


def update_step(ops: UpdatePrimitives[T, G], rule: UpdateRule, batch_loss: Callable[[], tuple[T, H]]) -> StepOutputs:
    """One optimizer step on the batch whose (mean loss, hit count) ``batch_loss`` computes with the model in
    training mode: penalty -> clip by value -> clip by global norm -> decoupled decay -> update -> max-norm; with loss
    scaling, the objective is scaled, the gradients unscaled, and the rest runs only if they are all finite."""
    scaling = rule.loss_scale
    scale, good_steps = ops.loss_scale() if scaling is not None else (None, None)

    def objective() -> tuple[T, StepOutputs[T, H]]:
        loss, hits = batch_loss()
        penalty = ops.penalty(rule.l1, rule.l2) if rule.penalised else None
        value = loss if penalty is None else loss + penalty
        return (value if scaling is None else value * scale), StepOutputs(loss, penalty, hits)

    grads, outputs = ops.gradients(objective)
    if scaling is None:
        _apply(ops, rule, grads)
        return outputs
    grads, finite = ops.unscale(grads, scale)
    ops.when_finite(finite, lambda: _apply(ops, rule, grads))
    ops.set_loss_scale(*scaling.next(scale, good_steps, finite, ops.select))
    return outputs


def _apply(ops: UpdatePrimitives[T, G], rule: UpdateRule, grads: G) -> None:
    """Everything after differentiation: clip by value -> clip by global norm -> decay -> update -> max-norm."""
    if rule.clip_value is not None:
        grads = ops.clip_by_value(grads, rule.clip_value)
    if rule.clip_norm is not None:
        grads = ops.clip_by_global_norm(grads, rule.clip_norm)
    if rule.decoupled_decay:
        ops.decay(grads, rule.decoupled_decay)
    ops.apply_update(grads)
    if rule.max_norm is not None:
        ops.apply_max_norm(rule.max_norm)
