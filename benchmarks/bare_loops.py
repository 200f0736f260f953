"""Hand-written training loops, one per framework, for the harness-overhead benchmark.

They are what a user would write without xfbench: the framework's own model
classes and optimizer, data held as device tensors, a fresh permutation per
epoch, the training loss and accuracy accumulated like the harness does. Each
function imports its framework itself; call one per process.
"""

from __future__ import annotations

import time

import numpy as np


def torch_convnet3(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    threads: int,
    nesterov: bool = False,
) -> list[float]:
    """Per-epoch training seconds of convnet3 with SGD momentum 0.9 in plain PyTorch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    h, w, c = x.shape[1:]
    model = nn.Sequential(
        nn.Conv2d(c, 32, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(32, 16, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * h * w, num_classes),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=nesterov)
    # a fresh copy, as a DataLoader's batches: np.ascontiguousarray keeps a 1-channel transposition's stride 1 on the
    # channel axis, which oneDNN takes for channels_last (slower here; the harness's images are standard too)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y)
    times = []
    for _ in range(epochs):
        perm = torch.randperm(len(yt))
        model.train()
        start = time.perf_counter()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for i in range(0, len(yt), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = xt[idx], yt[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        loss_sum.item(), correct.item()
        times.append(time.perf_counter() - start)
    return times


def tensorflow_convnet3(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    threads: int,
    nesterov: bool = False,
) -> list[float]:
    """Per-epoch training seconds of convnet3 with Keras' SGD momentum 0.9 in a tf.function train step."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = tf.keras
    model = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            keras.layers.Conv2D(32, 5, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )
    optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=nesterov)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    xt, yt = tf.constant(x), tf.constant(y)

    loss_sum = tf.Variable(0.0)
    correct = tf.Variable(0, dtype=tf.int64)

    # Gather and accumulate inside the compiled step: the efficient way to write it by hand.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def train_step(idx):
        xb, yb = tf.gather(xt, idx), tf.gather(yt, idx)
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            loss = loss_fn(yb, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        loss_sum.assign_add(loss * tf.cast(tf.shape(yb)[0], tf.float32))
        correct.assign_add(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), yb), tf.int64)))

    rng = np.random.default_rng(0)
    times = []
    for _ in range(epochs):
        perm = rng.permutation(len(y)).astype(np.int32)
        start = time.perf_counter()
        # the epoch's index batches as tensors first: called with a NumPy slice, each step converted it (about
        # 130 us a call here), a cost the harness does not pay (docs/measurements.md, "What the TensorFlow gap was")
        batches = [tf.constant(perm[i : i + batch_size]) for i in range(0, len(y), batch_size)]
        loss_sum.assign(0.0)
        correct.assign(0)
        for idx in batches:
            train_step(idx)
        float(loss_sum.numpy()), int(correct.numpy())
        times.append(time.perf_counter() - start)
    return times


BARE_LOOPS = {"torch": torch_convnet3, "tensorflow": tensorflow_convnet3}
