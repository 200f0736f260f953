"""The TensorFlow backend: a custom train step over a Keras model, run as RuntimeOptions.tf_mode says (modes.py):
compiled (tf.function, optional XLA), eager, or by Keras Model.fit."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from backends.tensorflow.augment import crop_flip
from backends.tensorflow.capabilities import CAPABILITIES
from backends.tensorflow.dropout import DropoutKeys
from backends.tensorflow.framework import keras, tf
from backends.tensorflow.gpu import gpu_name, peak_memory_mib, reset_peak_memory
from backends.tensorflow.losses import loss_and_hits
from backends.tensorflow.model import export_weights, load_weights
from backends.tensorflow.modes import (
    EpochInputs,
    FitRunner,
    batch_sizes,
    build_model,
    compile_epoch,
    compile_step,
    configure_runtime,
)
from backends.tensorflow.optimizers import TensorFlowUpdate, TorchSemanticsOptimizer
from backends.tensorflow.tracing import any_batch, exactly, feature_extractor, trace_for_any_batch, traced
from harness.augment import CropFlip, EpochAugment
from harness.backend import StepStats
from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.dropout_rng import STREAM_MC, TrainingKeys, dropout_layer_indices, key_rows, step_keys, training_keys
from harness.inference_batches import concat_batches, over_batches
from harness.spec import ModelSpec
from harness.update_pipeline import UpdateRule, loss_scale_rule, update_step
from harness.weights import NeutralWeights


class TensorFlowBackend:
    name = "tensorflow"

    def __init__(self, runtime: RuntimeOptions) -> None:
        configure_runtime(runtime)
        keras.backend.clear_session()  # a warm worker's earlier trials leave no Keras or graph state behind
        self.runtime = runtime
        # What this process can do: the declaration, less a GPU this machine does not have.
        self.capabilities = CAPABILITIES if tf.config.list_physical_devices("GPU") else CAPABILITIES - {"gpu"}
        self._data: dict[str, tuple[tf.Tensor, tf.Tensor]] = {}
        self._spec: ModelSpec | None = None
        self._optimizer: TorchSemanticsOptimizer | None = None
        self._fit: FitRunner | None = None  # tf_mode "fit": Model.fit runs the epochs
        self._regularization = RegularizationConfig()
        self._seed = 0
        # (layer, average_maps) -> its traced feature extractor, for the model built last
        self._extractors: dict[tuple[str, bool], Any] = {}
        self.record_lr_trace = False  # tests: keep the learning rate each step actually used
        self.lr_trace: list[float] = []

    def framework_version(self) -> str:
        return tf.__version__

    def device_name(self) -> str:
        return gpu_name(self.runtime)

    def peak_memory_mib(self) -> float:
        return peak_memory_mib(self.runtime)

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        reset_peak_memory(self.runtime)
        self._seed = seed
        self._dropout_indices = dropout_layer_indices(spec)
        shared = self.runtime.dropout_rng == "shared"
        self._dropout_keys = DropoutKeys(len(self._dropout_indices)) if shared else None
        self.model = build_model(spec, seed, self.runtime, keys=self._dropout_keys)
        load_weights(self.model, spec, weights)
        self._spec = spec
        self._extractors = {}
        self._compile_steps()

    def export_weights(self) -> NeutralWeights:
        assert self._spec is not None, "build() first"
        return export_weights(self.model, self._spec)

    def _keras_layers(self) -> dict[str, keras.layers.Layer]:
        assert self._spec is not None, "build() first"
        return {l.name: self.model.get_layer(l.name) for l in self._spec.layers}

    def freeze_layers(self, frozen_layers: Collection[str]) -> None:
        frozen = set(frozen_layers)
        for name, layer in self._keras_layers().items():
            # Keras 3 runs a non-trainable BatchNormalization in inference mode, also under training=True.
            layer.trainable = name not in frozen
        self._compile_steps()  # the compiled step must see the new set of trainable variables

    def parameter_counts(self) -> tuple[int, int]:
        trainable = frozen = 0
        for layer in self._keras_layers().values():
            size = sum(
                int(np.prod(w.shape))
                for w in layer.weights
                if not any(s in w.path for s in ("moving_mean", "moving_variance", "seed_generator"))
            )
            if layer.trainable:
                trainable += size
            else:
                frozen += size
        return trainable, frozen

    def extract_features(
        self, x: np.ndarray, layer: str, batch_size: int = 1000, average_maps: bool = False
    ) -> np.ndarray:
        # One traced extractor per layer (and averaging) for the model's life: a second call (after the harness's
        # untimed warm-up) runs the trace the first one made instead of tracing again.
        if (run := self._extractors.get((layer, average_maps))) is None:
            submodel = keras.Model(self.model.inputs, self.model.get_layer(layer).output)
            run = feature_extractor(submodel, self._variable_dtype(), average_maps, self.runtime.jit_compile)
            self._extractors[layer, average_maps] = run
        xt = tf.constant(x.astype(np.float32, copy=False))
        trace_for_any_batch(run, any_batch(xt))
        return concat_batches(len(x), batch_size, lambda s: run(xt[s]).numpy())  # NHWC already

    def set_optimizer(
        self,
        config: OptimizerConfig,
        regularization: RegularizationConfig = RegularizationConfig(),
        lr_multipliers: Mapping[str, float] | None = None,
    ) -> None:
        multipliers = dict(lr_multipliers or {})
        variables, factors = [], []
        for name, layer in self._keras_layers().items():
            for v in layer.trainable_variables:
                variables.append(v)
                factors.append(float(multipliers.get(name, 1.0)))
        scaling = loss_scale_rule(self.runtime.precision)
        self._optimizer = TorchSemanticsOptimizer(config, variables, factors, scaling, self._variable_dtype())
        self._regularization = regularization
        self.lr_trace = []
        self._compile_steps()  # the step closes over the optimizer's variables

    def _variable_dtype(self) -> tf.DType:
        """RuntimeOptions.variable_dtype: what learning rates, momenta, the step count, the epoch's sums and
        extracted features are held in (in float64 the configured momentum stays exact, as torch applies it in
        double)."""
        return tf.as_dtype(self.runtime.variable_dtype)

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        self._data[split] = (tf.constant(x.astype(np.float32, copy=False)), tf.constant(y.astype(np.int64, copy=False)))
        self._split_steps.pop(split, None)  # its step captured the old tensors

    def _split_step(self, split: str) -> Callable[..., Any]:
        """The train step on ``split``, called without arguments: the split's tensors are captured, the step's
        inputs read from the epoch's variables (modes.EpochInputs)."""
        if split not in self._split_steps:
            assert self._train_step is not None
            step, (x, y) = self._train_step, self._data[split]
            if self.runtime.epoch_loop == "compiled":
                assert self._optimizer is not None
                self._split_steps[split] = compile_epoch(lambda n: step(x, y, n), self._optimizer.lr)
            else:
                self._split_steps[split] = compile_step(lambda n=None: step(x, y, n), self.runtime)
        return self._split_steps[split]

    def _compile_steps(self) -> None:
        """Trace the train, eval and predict steps afresh: they close over the model's trainable variables and the
        optimizer's."""
        model, jit = self.model, self.runtime.jit_compile

        def eval_step(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            losses, hits = loss_and_hits(model(xb, training=False), yb)
            return tf.reduce_sum(tf.cast(losses, tf.float64)), hits

        self._train_step = self._compile_train_step(self._optimizer) if self._optimizer else None
        self._split_steps: dict[str, Callable[..., Any]] = {}  # the step compiled per split, its data captured
        self._eval_step = traced(eval_step, jit_compile=jit)
        self._predict = traced(lambda xb: model(xb, training=False), jit_compile=jit)

    def _compile_train_step(self, optimizer: TorchSemanticsOptimizer) -> Callable[..., None]:
        model, dropout_keys = self.model, self._dropout_keys
        # Conv/Dense kernels carry the penalties and the max-norm constraint; biases, BN and PReLU slopes do not.
        kernels = [
            layer.kernel
            for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.trainable
        ]
        update = TensorFlowUpdate(optimizer, kernels)
        rule = UpdateRule.of(optimizer.config, self._regularization, optimizer.loss_scale_rule)
        scheduled_momentum = optimizer.beta1 if optimizer.config.scheduled_momentum == "beta1" else optimizer.momentum
        # The epoch's sums, accumulated in variables (no per-step host round trip), in the loss's float type.
        sums = self._variable_dtype()
        self._loss_sum = loss_sum = tf.Variable(0.0, dtype=sums, trainable=False)
        self._reg_sum = reg_sum = tf.Variable(0.0, dtype=sums, trainable=False)
        self._correct = correct = tf.Variable(0, dtype=tf.int64, trainable=False)

        def batch_loss(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            losses, hits = loss_and_hits(model(xb, training=True), yb)
            return tf.reduce_mean(losses), hits

        def batch_step(xb: tf.Tensor, yb: tf.Tensor, lr: tf.Tensor, momentum: tf.Tensor, keys: tf.Tensor) -> None:
            if dropout_keys is not None:
                dropout_keys.assign(keys)
            optimizer.lr.assign(lr)
            scheduled_momentum.assign(momentum)
            out = update_step(update, rule, lambda: batch_loss(xb, yb))
            n = tf.cast(tf.shape(yb)[0], sums)
            loss_sum.assign_add(out.loss * n)
            if out.penalty is not None:
                reg_sum.assign_add(out.penalty * n)
            correct.assign_add(out.hits)

        self._epoch = epoch = EpochInputs(max(len(self._dropout_indices), 1), self._variable_dtype())

        def train_step(x_all: tf.Tensor, y_all: tf.Tensor, size: int | None = None) -> None:
            idx, lr, momentum, keys = epoch.next(size)
            batch_step(tf.gather(x_all, idx), tf.gather(y_all, idx), lr, momentum, keys)

        def augmented_step(
            x_all: tf.Tensor,
            y_all: tf.Tensor,
            rows: tf.Tensor,
            cols: tf.Tensor,
            padding: int,
            fill: tuple[float, ...],
            size: int | None = None,
        ) -> None:
            idx, lr, momentum, keys = epoch.next(size)
            xb = crop_flip(tf.gather(x_all, idx), rows, cols, padding, fill)
            batch_step(xb, tf.gather(y_all, idx), lr, momentum, keys)

        self._augmented_step = compile_step(augmented_step, self.runtime)
        # Model.fit compiles the batch step itself (the gather runs in its tf.data pipeline).
        self._fit = FitRunner(model, batch_step, self.runtime) if self.runtime.tf_mode == "fit" else None
        return train_step

    def train_epoch(
        self,
        split: str,
        batches: Sequence[np.ndarray],
        lrs: np.ndarray,
        momenta: np.ndarray | None = None,
        augment: EpochAugment | None = None,
        *,
        first_step: int,
        dropout_keys: np.ndarray | None = None,
    ) -> StepStats:
        if self._train_step is None or self._optimizer is None:
            raise RuntimeError("Expected set_optimizer() before train_epoch(). Received: no optimizer.")
        x, y = self._data[split]
        self._loss_sum.assign(0.0)
        self._reg_sum.assign(0.0)
        self._correct.assign(0)
        config = self._optimizer.config
        if momenta is None:  # hold the configured value (Adam: beta1)
            momenta = np.full(len(batches), config.held_momentum, self._variable_dtype().as_numpy_dtype)
        keys = key_rows(self.training_dropout_keys(), first_step, len(batches), dropout_keys, self._dropout_indices)
        views = augment.views(batches, int(x.shape[1]), int(x.shape[2])) if augment is not None else None
        if self._fit is not None:
            return self._fit_epoch(x, y, batches, lrs, momenta, keys, views)
        self._epoch.load(batches, lrs, momenta, keys)
        step = self._split_step(split)
        if self.runtime.epoch_loop == "compiled" and views is None:  # one call runs the epoch; returns its rates
            trace = step(len(batches))
            if self.record_lr_trace:
                self.lr_trace.extend(float(lr) for lr in trace.numpy())
        else:
            each: Sequence[CropFlip | None] = views if views is not None else [None] * len(batches)
            if views and not self.runtime.jit_compile:  # XLA compiles one step per batch length instead
                crop = (any_batch(views[0].rows), any_batch(views[0].cols), views[0].padding, views[0].fill)
                trace_for_any_batch(self._augmented_step, exactly(x), exactly(y), *crop)
            sizes = batch_sizes(batches, self.runtime)  # None but under XLA
            for view, size in zip(each, sizes, strict=True):
                if view is None:
                    step(size)
                else:  # the crop's and flip's index arrays, gathered in the same compiled step
                    self._augmented_step(x, y, view.rows, view.cols, view.padding, view.fill, size)
                if self.record_lr_trace:
                    self.lr_trace.append(float(self._optimizer.lr.numpy()))
        count = sum(len(b) for b in batches)
        return StepStats(float(self._loss_sum.numpy()), int(self._correct.numpy()), count, float(self._reg_sum.numpy()))

    def _fit_epoch(
        self,
        x: tf.Tensor,
        y: tf.Tensor,
        batches: Sequence[np.ndarray],
        lrs: np.ndarray,
        momenta: np.ndarray,
        keys: np.ndarray,
        views: list[CropFlip] | None,
    ) -> StepStats:
        """One Model.fit epoch over the batches: the same per-step learning rates, momenta and dropout keys."""
        assert self._fit is not None and self._optimizer is not None
        hyper = self._variable_dtype().as_numpy_dtype
        per_step = (np.asarray(lrs, hyper), np.asarray(momenta, hyper), keys)
        trace = (self._optimizer.lr, self.lr_trace) if self.record_lr_trace else None
        self._fit.run(x, y, batches, per_step, trace, views)
        count = sum(len(b) for b in batches)
        return StepStats(float(self._loss_sum.numpy()), int(self._correct.numpy()), count, float(self._reg_sum.numpy()))

    def training_dropout_keys(self) -> TrainingKeys | None:
        return training_keys(self._dropout_keys is not None, self._seed, self._dropout_indices)

    def _step_keys(self, stream: int, seed: int, step: int) -> tf.Tensor:
        """One key per dropout layer (a few integers per step: the masks themselves are drawn in the graph)."""
        keys = step_keys(seed, stream, step, self._dropout_indices)
        return tf.constant(np.array(keys or [0], np.int64))

    def evaluate(self, split: str, batch_size: int) -> StepStats:
        x, y = self._data[split]
        n = int(y.shape[0])
        trace_for_any_batch(self._eval_step, any_batch(x), any_batch(y))
        sums = over_batches(n, batch_size, lambda s: self._eval_step(x[s], y[s]))
        # Summed on the host in float64, in batch order.
        return StepStats(sum((float(loss) for loss, _ in sums), 0.0), sum(int(hits) for _, hits in sums), n)

    def predict_mc(self, x: np.ndarray, passes: int, seed: int, batch_size: int = 1000) -> np.ndarray:
        assert self._spec is not None, "build() first"
        # A twin model whose dropout stays on, seeded afresh per call: the same seed gives the same passes.
        keys = self._dropout_keys
        twin = build_model(self._spec, seed, self.runtime, mc=True, keys=keys)
        twin.set_weights(self.model.get_weights())
        xt = tf.constant(x.astype(np.float32, copy=False))
        if keys is not None:  # shared masks: pass p of sample i is drawn at (seed, MC stream, p, i)

            def one_batch(xb: tf.Tensor, step_keys: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
                keys.assign(step_keys, offset)
                return twin(xb, training=False)

            shared_pass = traced(one_batch, jit_compile=self.runtime.jit_compile)  # XLA as evaluation's
            probe_keys = self._step_keys(STREAM_MC, seed, 0)
            trace_for_any_batch(shared_pass, any_batch(xt), exactly(probe_keys), tf.TensorSpec([], tf.int64))

            def one_pass(p: int) -> np.ndarray:
                keys_p = self._step_keys(STREAM_MC, seed, p)
                return concat_batches(
                    len(x), batch_size, lambda s: shared_pass(xt[s], keys_p, tf.constant(s.start, tf.int64)).numpy()
                )

            return np.stack([one_pass(p) for p in range(passes)])
        predict = traced(lambda xb: twin(xb, training=False), jit_compile=self.runtime.jit_compile)
        trace_for_any_batch(predict, any_batch(xt))
        return np.stack([concat_batches(len(x), batch_size, lambda s: predict(xt[s]).numpy()) for _ in range(passes)])

    def predict_logits(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        xt = tf.constant(x.astype(np.float32, copy=False))
        trace_for_any_batch(self._predict, any_batch(xt))
        return concat_batches(len(x), batch_size, lambda s: self._predict(xt[s]).numpy())


def create_backend(runtime: RuntimeOptions) -> TensorFlowBackend:
    return TensorFlowBackend(runtime)
