"""Probes for the BatchNorm arithmetic tests: one training-mode BatchNorm layer of a backend, run in its worker."""

from __future__ import annotations

import numpy as np


def batchnorm_step(name: str, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, r: np.ndarray, unbiased: bool,
                   statistics: str, eps: float) -> dict[str, np.ndarray]:  # fmt: skip
    """One training-mode step of the backend's BatchNorm (NHWC in and out, decay 0.9, running mean 0 and variance 1
    to start): its output, the running statistics after it, and the gradients of sum(output * r)."""
    if name == "torch":
        import torch

        from backends.torch.model import BiasedBatchNorm2d, Float64BatchNorm2d

        channels = x.shape[-1]
        if statistics == "float64":
            bn = Float64BatchNorm2d(channels, eps=eps, momentum=0.1, unbiased_running_variance=unbiased)
        else:
            bn = (torch.nn.BatchNorm2d if unbiased else BiasedBatchNorm2d)(channels, eps=eps, momentum=0.1)
        bn.train()
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(gamma)), bn.bias.copy_(torch.from_numpy(beta))
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        out = bn(xt)
        (out * torch.from_numpy(r.transpose(0, 3, 1, 2).copy())).sum().backward()
        return {
            "out": out.detach().numpy().transpose(0, 2, 3, 1),
            "running_mean": bn.running_mean.numpy(),
            "running_var": bn.running_var.numpy(),
            "dx": xt.grad.numpy().transpose(0, 2, 3, 1),
            "dgamma": bn.weight.grad.numpy(),
            "dbeta": bn.bias.grad.numpy(),
        }
    from backends.tensorflow.framework import tf
    from backends.tensorflow.model import TorchBatchNorm

    bn = TorchBatchNorm(unbiased, statistics, momentum=0.9, epsilon=eps)
    bn.build(x.shape)
    bn.gamma.assign(gamma), bn.beta.assign(beta)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = bn(xt, training=True)
        loss = tf.reduce_sum(out * r)
    dx, dgamma, dbeta = tape.gradient(loss, [xt, bn.gamma, bn.beta])
    return {
        "out": out.numpy(),
        "running_mean": bn.moving_mean.numpy(),
        "running_var": bn.moving_variance.numpy(),
        "dx": dx.numpy(),
        "dgamma": dgamma.numpy(),
        "dbeta": dbeta.numpy(),
    }
