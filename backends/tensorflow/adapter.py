"""The TensorFlow backend: a compiled custom train step (tf.function, optional XLA) over a Keras model."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from backends.tensorflow.model import build_model, export_weights, load_weights
from backends.tensorflow.optimizers import TorchSemanticsOptimizer
from harness.backend import StepStats
from harness.config import OptimizerConfig, RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights

_INDEX_SPEC = tf.TensorSpec([None], tf.int32)


def configure_runtime(runtime: RuntimeOptions) -> None:
    """Threads and devices must be set before TensorFlow's runtime starts; a second call is a no-op."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(runtime.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # runtime already initialised in this process: the first trial's settings hold
    gpus = tf.config.list_physical_devices("GPU")
    if runtime.device == "gpu":
        if not gpus:
            raise RuntimeError("Expected a GPU for device='gpu'. Received: TensorFlow sees none. Run with --gpus-per-trial 0.")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass
    elif gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()


class TensorFlowBackend:
    name = "tensorflow"

    def __init__(self, runtime: RuntimeOptions) -> None:
        configure_runtime(runtime)
        self.runtime = runtime
        self.capabilities = frozenset({"jit_compile", "per_group_lr", "freeze"} | ({"gpu"} if tf.config.list_physical_devices("GPU") else set()))
        self._data: dict[str, tuple[tf.Tensor, tf.Tensor]] = {}
        self._spec: ModelSpec | None = None
        self._optimizer: TorchSemanticsOptimizer | None = None

    def framework_version(self) -> str:
        return tf.__version__

    def device_name(self) -> str:
        if self.runtime.device == "gpu":
            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            return str(details.get("device_name", "gpu"))
        return "cpu"

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        self.model = build_model(spec, seed)
        load_weights(self.model, spec, weights)
        self._spec = spec
        self._compile_steps()

    def export_weights(self) -> NeutralWeights:
        assert self._spec is not None, "build() first"
        return export_weights(self.model, self._spec)

    def set_optimizer(self, config: OptimizerConfig) -> None:
        self._optimizer = TorchSemanticsOptimizer(config, self.model.trainable_variables)
        self._compile_steps()  # the step closes over the optimizer's variables

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        self._data[split] = (tf.constant(x.astype(np.float32, copy=False)), tf.constant(y.astype(np.int64, copy=False)))

    def _compile_steps(self) -> None:
        model, optimizer = self.model, self._optimizer
        self._loss_sum = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        self._correct = tf.Variable(0, dtype=tf.int64, trainable=False)
        loss_sum, correct = self._loss_sum, self._correct
        jit = self.runtime.jit_compile

        def train_step(x_all: tf.Tensor, y_all: tf.Tensor, idx: tf.Tensor) -> None:
            xb, yb = tf.gather(x_all, idx), tf.gather(y_all, idx)
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                logits = model(xb, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits))
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads)
            # Accumulate in variables: no per-step host round trip.
            loss_sum.assign_add(loss * tf.cast(tf.shape(yb)[0], tf.float32))
            correct.assign_add(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), yb), tf.int64)))

        def eval_step(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            logits = model(xb, training=False)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), yb), tf.int64))
            return tf.reduce_sum(tf.cast(losses, tf.float64)), hits

        self._train_step = tf.function(train_step, jit_compile=jit, reduce_retracing=True) if optimizer else None
        self._eval_step = tf.function(eval_step, jit_compile=jit, reduce_retracing=True)
        self._predict = tf.function(lambda xb: model(xb, training=False), jit_compile=jit, reduce_retracing=True)

    def train_epoch(self, split: str, batches: Sequence[np.ndarray]) -> StepStats:
        if self._train_step is None:
            raise RuntimeError("Expected set_optimizer() before train_epoch(). Received: no optimizer.")
        x, y = self._data[split]
        self._loss_sum.assign(0.0)
        self._correct.assign(0)
        count = 0
        for batch in batches:
            self._train_step(x, y, tf.constant(batch, dtype=tf.int32))
            count += len(batch)
        return StepStats(float(self._loss_sum.numpy()), int(self._correct.numpy()), count)

    def evaluate(self, split: str, batch_size: int) -> StepStats:
        x, y = self._data[split]
        n = int(y.shape[0])
        loss_sum, correct = 0.0, 0
        for start in range(0, n, batch_size):
            l, c = self._eval_step(x[start:start + batch_size], y[start:start + batch_size])
            loss_sum += float(l)
            correct += int(c)
        return StepStats(loss_sum, correct, n)

    def predict_logits(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        xt = tf.constant(x.astype(np.float32, copy=False))
        return np.concatenate([self._predict(xt[s:s + batch_size]).numpy() for s in range(0, len(x), batch_size)])


def create_backend(runtime: RuntimeOptions) -> TensorFlowBackend:
    return TensorFlowBackend(runtime)
