"""Optimizers with xfbench's documented update rules (PyTorch's), as TensorFlow ops.

Why not Keras' own: Keras adds epsilon inside the square root (RMSprop,
Adagrad) or to the uncorrected sqrt(v) (Adam), and its SGD momentum buffer
folds in the learning rate. These differ from PyTorch whenever epsilon matters
or the learning rate changes. Writing the rules once here, in the same form as
torch.optim, makes both backends compute the same update. See docs/fairness.md.
"""

from __future__ import annotations

import tensorflow as tf

from harness.config import OptimizerConfig


class TorchSemanticsOptimizer:
    """Apply one update per call of :meth:`apply`; call it inside the compiled train step."""

    def __init__(
        self, config: OptimizerConfig, variables: list[tf.Variable], lr_multipliers: list[float] | None = None
    ) -> None:
        self.config = config
        self.variables = list(variables)
        # Per-variable learning-rate factors (per-group learning rates): the rate is scaled, never the gradient,
        # which is what makes groups correct under Adam, where scaling the gradient would cancel out.
        self.multipliers = list(lr_multipliers) if lr_multipliers is not None else [1.0] * len(self.variables)
        self.lr = tf.Variable(config.lr, dtype=tf.float32, trainable=False, name="lr")
        # Momentum (SGD family, RMSprop) and Adam's beta1 are variables so schedules (1cycle) can move them per step.
        self.momentum = tf.Variable(config.momentum or 0.0, dtype=tf.float32, trainable=False, name="momentum")
        self.beta1 = tf.Variable(config.beta1, dtype=tf.float32, trainable=False, name="beta1")
        self.step = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="step")
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
        self.slots = [
            {s: tf.Variable(tf.zeros(v.shape, dtype=tf.float32), trainable=False) for s in slot_names}
            for v in self.variables
        ]

    def apply(self, grads: list[tf.Tensor]) -> None:
        c = self.config
        self.step.assign_add(1.0)
        for grad, var, slots, multiplier in zip(grads, self.variables, self.slots, self.multipliers):
            if grad is None:
                continue
            lr = self.lr * multiplier if multiplier != 1.0 else self.lr
            if c.weight_decay and c.decoupled and c.name != "adamw":
                var.assign(var * (1.0 - lr * c.weight_decay))  # decoupled: shrink first, then the plain update
            elif c.weight_decay and not c.decoupled:
                grad = grad + c.weight_decay * var  # coupled L2, as torch.optim's weight_decay
            self._update(grad, var, slots, lr)

    def _sgd(self, grad, var, slots, lr) -> None:
        # With momentum 0 the buffer equals the gradient, so plain SGD needs no branch (and 1cycle may raise it).
        m = self.momentum
        buf = slots["buf"]
        buf.assign(m * buf + grad)
        grad = grad + m * buf if self.config.name == "nesterov" else tf.identity(buf)
        var.assign_sub(lr * grad)

    def _adam(self, grad, var, slots, lr) -> None:
        c = self.config
        m, v = slots["m"], slots["v"]
        beta1 = self.beta1
        m.assign(beta1 * m + (1.0 - beta1) * grad)
        v.assign(c.beta2 * v + (1.0 - c.beta2) * tf.square(grad))
        bias1 = 1.0 - tf.pow(beta1, self.step)
        bias2 = 1.0 - tf.pow(c.beta2, self.step)
        denom = tf.sqrt(v) / tf.sqrt(bias2) + c.eps  # epsilon outside the corrected root, as torch
        var.assign_sub((lr / bias1) * m / denom)

    def _adamw(self, grad, var, slots, lr) -> None:
        if self.config.decoupled:
            var.assign(var * (1.0 - lr * self.config.weight_decay))  # decoupled decay first, as torch.optim.AdamW
        self._adam(grad, var, slots, lr)

    def _rmsprop(self, grad, var, slots, lr) -> None:
        c = self.config
        sq = slots["sq"]
        sq.assign(c.rho * sq + (1.0 - c.rho) * tf.square(grad))
        avg = tf.sqrt(sq) + c.eps
        buf = slots["buf"]  # momentum 0: the buffer is just this step's scaled gradient
        buf.assign(self.momentum * buf + grad / avg)
        var.assign_sub(lr * buf)

    def _adagrad(self, grad, var, slots, lr) -> None:
        total = slots["sum"]
        total.assign_add(tf.square(grad))
        var.assign_sub(lr * grad / (tf.sqrt(total) + self.config.eps))

    def _adadelta(self, grad, var, slots, lr) -> None:
        c = self.config
        sq, acc = slots["sq"], slots["acc_delta"]
        sq.assign(c.rho * sq + (1.0 - c.rho) * tf.square(grad))
        delta = tf.sqrt(acc + c.eps) / tf.sqrt(sq + c.eps) * grad
        acc.assign(c.rho * acc + (1.0 - c.rho) * tf.square(delta))
        var.assign_sub(lr * delta)
