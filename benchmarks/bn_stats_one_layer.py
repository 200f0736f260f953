"""One training-mode BatchNorm in isolation, both frameworks, identical float32 input, against float64: does the
error come from the batch statistics or from the normalisation formula? (docs/pretrained.md, "Which backend is off")

    PYTHONPATH=. .venv/bin/python benchmarks/bn_stats_one_layer.py torch
    PYTHONPATH=. .venv/bin/python benchmarks/bn_stats_one_layer.py tensorflow

Input: 64 x 16 x 16 x 16 (the first BatchNorm's shape in mobilenet_v2 x0.25 at 32 px), channel means 0.3 x scale,
scales 0.5-3; eps 1e-5. Errors: max |err| / max |float64 output|.
"""

from __future__ import annotations

import argparse

import numpy as np

rng = np.random.default_rng(0)
x64 = (rng.normal(0.3, 1.0, size=(64, 16, 16, 16)) * rng.uniform(0.5, 3, 16)).astype(np.float32).astype(np.float64)
gamma, beta = rng.uniform(0.5, 1.5, 16), rng.normal(0, 0.1, 16)
m, v = x64.mean((0, 1, 2)), x64.var((0, 1, 2))
ref = (x64 - m) / np.sqrt(v + 1e-5) * gamma + beta
scale = float(np.abs(ref).max())


def _torch() -> None:
    import torch

    torch.set_num_threads(1)
    bn = torch.nn.BatchNorm2d(16, eps=1e-5).train()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.bias.copy_(torch.tensor(beta, dtype=torch.float32))
        out = bn(torch.from_numpy(x64.astype(np.float32).transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    print(f"torch BatchNorm2d, training mode: {np.abs(out - ref).max() / scale:.3g}")
    from backends.torch.model import Float64BatchNorm2d

    bn64 = Float64BatchNorm2d(16, eps=1e-5).train()
    with torch.no_grad():
        bn64.weight.copy_(bn.weight), bn64.bias.copy_(bn.bias)
        out = bn64(torch.from_numpy(x64.astype(np.float32).transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    print(f"the backend's BatchNorm, --bn-statistics float64: {np.abs(out - ref).max() / scale:.3g}")


def _tensorflow() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    x = tf.constant(x64.astype(np.float32))
    g, b = tf.constant(gamma, tf.float32), tf.constant(beta, tf.float32)
    mean, var = tf.nn.moments(x, (0, 1, 2))  # what Keras' ops.moments calls, so the backend's BatchNorm
    print(f"tf.nn.moments: mean max abs err {np.abs(mean.numpy() - m).max():.3g}, var max rel err "
          f"{np.abs(var.numpy() / v - 1).max():.3g}")  # fmt: skip
    out = tf.nn.batch_normalization(x, mean, var, b, g, 1e-5)
    print(f"tf.nn.moments + tf.nn.batch_normalization: {np.abs(out.numpy() - ref).max() / scale:.3g}")
    exact = tf.nn.batch_normalization(x, tf.constant(m, tf.float32), tf.constant(v, tf.float32), b, g, 1e-5)
    print(f"tf.nn.batch_normalization with float64 statistics: {np.abs(exact.numpy() - ref).max() / scale:.3g}")
    from backends.tensorflow.model import TorchBatchNorm

    for dtype in ("float32", "float64"):  # --bn-statistics
        bn = TorchBatchNorm(True, dtype, momentum=0.9, epsilon=1e-5)
        bn.build(x.shape)
        bn.gamma.assign(g), bn.beta.assign(b)
        out = bn(x, training=True)
        print(f"the backend's BatchNorm, --bn-statistics {dtype}: {np.abs(out.numpy() - ref).max() / scale:.3g}")


if __name__ == "__main__":
    # a choice, not a bare argument: anything else once ran TensorFlow's half, a typo included, and --help exited 1
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "tensorflow"))
    _torch() if parser.parse_args().framework == "torch" else _tensorflow()
