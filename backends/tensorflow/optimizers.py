"""Optimizers with xfbench's documented update rules (PyTorch's), as TensorFlow ops.

Why not Keras' own: Keras adds epsilon inside the square root (RMSprop,
Adagrad) or to the uncorrected sqrt(v) (Adam), and its SGD momentum buffer
folds in the learning rate. These differ from PyTorch whenever epsilon matters
or the learning rate changes. Writing the rules once here, in the same form as
torch.optim, makes both backends compute the same update. See docs/fairness.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from backends.tensorflow.framework import tf
from harness.config import OptimizerConfig
from harness.update_pipeline import LossScaleRule, optimizer_weight_decay

A = TypeVar("A")
Grads = list[tf.Tensor | None]
Update = tuple[tf.Tensor, dict[str, tf.Tensor]]


class TorchSemanticsOptimizer:
    """Apply one update per call of :meth:`apply`; call it inside the compiled train step."""

    def __init__(
        self,
        config: OptimizerConfig,
        variables: list[tf.Variable],
        lr_multipliers: list[float] | None = None,
        loss_scale: LossScaleRule | None = None,
        hyper_dtype: tf.DType = tf.float32,
    ) -> None:
        self.config = config
        self.variables = list(variables)
        # Per-variable learning-rate factors (per-group learning rates): the rate is scaled, never the gradient,
        # which is what makes groups correct under Adam, where scaling the gradient would cancel out.
        self.multipliers = list(lr_multipliers) if lr_multipliers is not None else [1.0] * len(self.variables)
        # float32, or float64 under --precision float64: torch then applies the configured values in double too.
        self.lr = tf.Variable(config.lr, dtype=hyper_dtype, trainable=False, name="lr")
        # Momentum (SGD family, RMSprop) and Adam's beta1 are variables so schedules (1cycle) can move them per step.
        self.momentum = tf.Variable(config.momentum or 0.0, dtype=hyper_dtype, trainable=False, name="momentum")
        self.beta1 = tf.Variable(config.beta1, dtype=hyper_dtype, trainable=False, name="beta1")
        self.step = tf.Variable(0.0, dtype=hyper_dtype, trainable=False, name="step")
        self.rho = config.rho if config.rho is not None else 0.0  # resolved configs set it for RMSprop, Adadelta
        self.weight_decay = optimizer_weight_decay(config)  # the rule's own: coupled L2, or AdamW's decoupled decay
        # Dynamic loss scaling (mixed_float16): its state lives as long as the optimizer, as a GradScaler's would.
        self.loss_scale_rule = loss_scale
        initial = loss_scale.initial_scale if loss_scale is not None else 1.0
        self.loss_scale = tf.Variable(initial, dtype=tf.float32, trainable=False, name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")
        slot_names = {
            "sgd": ("buf",),
            "momentum": ("buf",),
            "nesterov": ("buf",),
            "adam": ("m", "v"),
            "adamw": ("m", "v"),
            "rmsprop": ("sq", "buf"),
            "adagrad": ("sum",),
            "adadelta": ("sq", "acc_delta"),
        }[config.name]
        self._update = {
            "sgd": self._sgd,
            "momentum": self._sgd,
            "nesterov": self._sgd,
            "adam": self._adam,
            "adamw": self._adamw,
            "rmsprop": self._rmsprop,
            "adagrad": self._adagrad,
            "adadelta": self._adadelta,
        }[config.name]
        self.groups = _flat_groups(self.variables)
        self.slots = [
            {s: tf.Variable(tf.zeros([sum(g.sizes)], dtype=g.dtype), trainable=False) for s in slot_names}
            for g in self.groups
        ]

    def _rate(self, multiplier: float, dtype: tf.DType) -> tf.Tensor:
        """The group's rate in ``dtype``, its variable's (float64 under --precision float64, where the rate is
        multiplied in float64 as torch multiplies it in Python; a float32 variable's cast is the variable itself)."""
        lr = _in(self.lr, dtype)
        return lr * multiplier if multiplier != 1.0 else lr

    def _flat_rate(self, group: FlatGroup, of_rate: Callable[[tf.Tensor], tf.Tensor] | None = None) -> tf.Tensor:
        """Each element's rate: one scalar when the group's variables share a multiplier, else a vector of each
        variable's scalar rate (:meth:`_rate`), filled over its elements, one fill per run of equal multipliers.
        ``of_rate``: a scalar of each rate instead (Adam's step size), computed once per run, not per element."""
        sized = zip((self.multipliers[i] for i in group.indices), group.sizes, strict=True)
        runs = [(m, sum(size for _, size in run)) for m, run in itertools.groupby(sized, key=lambda ms: ms[0])]
        scalar = (lambda m: of_rate(self._rate(m, group.dtype))) if of_rate else (lambda m: self._rate(m, group.dtype))
        if len(runs) == 1:
            return scalar(runs[0][0])
        return tf.concat([tf.fill([size], scalar(m)) for m, size in runs], axis=0)

    def decay(self, grads: Grads, rate: float) -> None:
        """Decoupled decay w <- w (1 - lr_group * rate) of every variable with a gradient (the update pipeline's)."""
        for grad, var, multiplier in zip(grads, self.variables, self.multipliers, strict=True):
            if grad is not None:
                var.assign(var * (1.0 - self._rate(multiplier, var.dtype) * rate))

    def apply(self, grads: Grads) -> None:
        """The update; decoupled decay (other than AdamW's own) is the update pipeline's step before this one.

        Each float type's variables are updated as one flat vector: the rules are elementwise, so every element
        gets the float operations it would get alone, while the traced graph holds a few ops per variable (read,
        split, assign) instead of the rule's twenty-odd; for densenet121's 364 variables that was most of the
        train step's tracing (docs/measurements.md, "Warm-up"). A variable without a gradient keeps its value and
        its slots, as torch.optim skips a parameter whose grad is None."""
        c = self.config
        self.step.assign_add(1.0)
        for group, slots in zip(self.groups, self.slots, strict=True):
            variables = [self.variables[i] for i in group.indices]
            present = [grads[i] is not None for i in group.indices]
            if not any(present):
                continue
            grad = _flat([g if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables, strict=True)])
            var = _flat(variables)
            if self.weight_decay and c.name != "adamw":
                grad = grad + self.weight_decay * var  # coupled L2, as torch.optim's weight_decay
            new_var, new_slots = self._update(grad, var, slots, group)
            keep = None if all(present) else tf.constant(np.repeat(present, group.sizes))
            for name, value in new_slots.items():
                slots[name].assign(value if keep is None else tf.where(keep, value, slots[name]))
            for variable, piece, has_grad in zip(variables, tf.split(new_var, group.sizes), present, strict=True):
                if has_grad:
                    variable.assign(tf.reshape(piece, variable.shape))

    # The rules: (gradient, variable, slots, flat group: its rates) -> (new variable, new slots), elementwise, in
    # torch.optim's form.

    def _sgd(self, grad, var, slots, group) -> Update:
        lr = self._flat_rate(group)
        m = _in(self.momentum, var.dtype)
        buf = m * slots["buf"] + grad  # with momentum 0 the gradient itself, the step torch.optim takes then
        step = grad + m * buf if self.config.name == "nesterov" else buf
        return var - lr * step, {"buf": _kept_without_momentum(m, buf, slots["buf"])}

    def _adam(self, grad, var, slots, group) -> Update:
        c = self.config
        beta1 = _in(self.beta1, var.dtype)
        m = beta1 * slots["m"] + (1.0 - beta1) * grad
        v = c.beta2 * slots["v"] + (1.0 - c.beta2) * tf.square(grad)
        f64, step = tf.float64, tf.cast(self.step, tf.float64)
        bias1 = 1.0 - tf.pow(self._beta1_f64(), step)
        bias2 = 1.0 - tf.pow(tf.constant(c.beta2, f64), step)
        # Each rate's step size per multiplier, not per element: a per-group rate vector made three float64 passes
        # over every parameter per step, in TensorFlow alone
        step_size = self._flat_rate(group, lambda rate: tf.cast(tf.cast(rate, f64) / bias1, rate.dtype))
        denom = tf.sqrt(v) / tf.cast(tf.sqrt(bias2), var.dtype) + c.eps  # epsilon outside the corrected root
        return var - step_size * m / denom, {"m": m, "v": v}

    def _beta1_f64(self) -> tf.Tensor:
        """Adam's bias corrections are computed as torch.optim computes them: in Python's double from the configured
        betas, lr / (1 - beta1^t) and sqrt(1 - beta2^t) each rounded to the variable's type once. In float32 from
        beta2 rounded to float32 (0.999 -> 0.99900001), 1 - beta2^t came out 1.3e-5 smaller: every step 6.4e-6
        shorter than torch's for the first thousand-odd steps, a bias, not rounding noise. beta1 is read from its
        variable, scheduled (1cycle's) or held alike, as the moment update reads it: the configured value rounded to
        the variable's type (0.9 -> 0.89999998 in float32). Where torch holds the double 0.9 its moment update
        rounds 1 - beta1 to float32 (0.1), so our float32 1 - beta1 (0.10000002) in the moment and in the correction
        cancel to within torch's own rounding: the first step's length then agrees to 7.5e-8 on average, where the
        double 0.9 in the correction alone made every step 2.3e-7 longer (tests/test_parity.py)."""
        return tf.cast(self.beta1, tf.float64)

    def _adamw(self, grad, var, slots, group) -> Update:
        if self.weight_decay:
            var = var * (1.0 - self._flat_rate(group) * self.weight_decay)  # decoupled decay first, as AdamW
        return self._adam(grad, var, slots, group)

    def _rmsprop(self, grad, var, slots, group) -> Update:
        lr = self._flat_rate(group)
        c = self.config
        sq = self.rho * slots["sq"] + (1.0 - self.rho) * tf.square(grad)
        avg = tf.sqrt(sq) + c.eps
        m = _in(self.momentum, var.dtype)
        buf = m * slots["buf"] + grad / avg  # momentum 0: this step's scaled gradient, the step torch.optim takes
        return var - lr * buf, {"sq": sq, "buf": _kept_without_momentum(m, buf, slots["buf"])}

    def _adagrad(self, grad, var, slots, group) -> Update:
        lr = self._flat_rate(group)
        total = slots["sum"] + tf.square(grad)
        return var - lr * grad / (tf.sqrt(total) + self.config.eps), {"sum": total}

    def _adadelta(self, grad, var, slots, group) -> Update:
        lr = self._flat_rate(group)
        c = self.config
        sq = self.rho * slots["sq"] + (1.0 - self.rho) * tf.square(grad)
        delta = tf.sqrt(slots["acc_delta"] + c.eps) / tf.sqrt(sq + c.eps) * grad
        acc = self.rho * slots["acc_delta"] + (1.0 - self.rho) * tf.square(delta)
        return var - lr * delta, {"sq": sq, "acc_delta": acc}


@dataclass(frozen=True)
class FlatGroup:
    """The optimizer's variables of one float type, as one flat vector: their positions in its list and sizes."""

    dtype: tf.DType
    indices: tuple[int, ...]
    sizes: tuple[int, ...]


def _flat_groups(variables: list[tf.Variable]) -> list[FlatGroup]:
    members: dict[tf.DType, list[int]] = {}
    for i, v in enumerate(variables):
        members.setdefault(v.dtype, []).append(i)
    return [
        FlatGroup(dtype, tuple(ix), tuple(int(np.prod(variables[i].shape)) for i in ix))
        for dtype, ix in members.items()
    ]


def _flat(tensors: list) -> tf.Tensor:
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


class TensorFlowUpdate:
    """The update pipeline's primitives over one optimizer, called while the compiled train step is traced."""

    def __init__(self, optimizer: TorchSemanticsOptimizer, kernels: list[tf.Variable]) -> None:
        self.optimizer = optimizer
        self.kernels = kernels  # Conv/Dense kernels: they carry the penalties and the max-norm constraint

    def penalty(self, l1: float, l2: float) -> tf.Tensor:
        total = tf.constant(0.0, self.optimizer.lr.dtype)  # the variables' float type (float64 models: float64)
        for w in self.kernels:
            if l1:
                total += l1 * tf.reduce_sum(tf.abs(w))
            if l2:
                total += l2 * tf.reduce_sum(tf.square(w))
        return total

    def gradients(self, objective: Callable[[], tuple[tf.Tensor, A]]) -> tuple[Grads, A]:
        with tf.GradientTape() as tape:
            value, aux = objective()
        return tape.gradient(value, self.optimizer.variables), aux  # same order as the optimizer's slots

    def clip_by_value(self, grads: Grads, limit: float) -> Grads:
        return [None if g is None else tf.clip_by_value(g, -limit, limit) for g in grads]

    def clip_by_global_norm(self, grads: Grads, max_norm: float) -> Grads:
        # PyTorch's clip_grad_norm_: scale = min(1, c / (global norm + 1e-6)).
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads if g is not None]))
        scale = tf.minimum(tf.constant(1.0, norm.dtype), max_norm / (norm + 1e-6))  # float64 too: a bare 1.0 is float32
        return [None if g is None else g * scale for g in grads]

    def decay(self, grads: Grads, rate: float) -> None:
        self.optimizer.decay(grads, rate)

    def apply_update(self, grads: Grads) -> None:
        self.optimizer.apply(grads)

    def apply_max_norm(self, limit: float) -> None:
        for w in self.kernels:  # Keras' MaxNorm over every axis but the output one
            norms = tf.sqrt(tf.reduce_sum(tf.square(w), axis=list(range(len(w.shape) - 1)), keepdims=True))
            w.assign(w * (tf.clip_by_value(norms, 0.0, limit) / (1e-7 + norms)))

    def loss_scale(self) -> tuple[tf.Tensor, tf.Tensor]:
        return self.optimizer.loss_scale.read_value(), self.optimizer.good_steps.read_value()

    def unscale(self, grads: Grads, scale: tf.Tensor) -> tuple[Grads, tf.Tensor]:
        inverse = 1.0 / scale  # as GradScaler and Keras' LossScaleOptimizer: multiply by the reciprocal
        grads = [None if g is None else g * inverse for g in grads]
        finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]))
        return grads, finite

    def when_finite(self, finite: tf.Tensor, apply: Callable[[], None]) -> None:
        def run() -> tf.Tensor:
            apply()
            return tf.constant(True)

        tf.cond(finite, run, lambda: tf.constant(False))

    def select(self, condition: tf.Tensor, if_true: tf.Tensor, if_false: tf.Tensor) -> tf.Tensor:
        return tf.where(condition, if_true, if_false)

    def set_loss_scale(self, scale: tf.Tensor, good_steps: tf.Tensor) -> None:
        self.optimizer.loss_scale.assign(scale)
        self.optimizer.good_steps.assign(good_steps)


def _kept_without_momentum(momentum: tf.Tensor, moved: tf.Tensor, buffer: tf.Variable) -> tf.Tensor:
    """The momentum buffer after a step: torch.optim's SGD and RMSprop leave it as it was on a step whose momentum is
    0 (1cycle with min_momentum 0 has one at its peak), where storing that step's gradient made every later step
    differ from torch's (4.6e-4 in the weights of 20 steps of SGD, 1.9e-2 of RMSprop). A scalar branch, no
    elementwise pass."""
    return tf.cond(momentum != 0, lambda: moved, lambda: tf.convert_to_tensor(buffer))


def _in(value: tf.Variable, dtype: tf.DType) -> tf.Tensor:
    """A hyperparameter in a variable's float type: itself when the types agree (float32 for float32 models, float64
    for float64 ones), so each precision's step is the graph it would be without the cast."""
    return value if value.dtype == dtype else tf.cast(value, dtype)
