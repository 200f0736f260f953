"""How a TensorFlow trial runs its steps (RuntimeOptions.tf_mode), in which precision it computes, and the runtime's
threads, devices and TF32 policy.

Every mode runs the one train step the adapter traces from harness.update_pipeline, so they compute the same
updates: ``custom`` calls it as a tf.function (XLA with --jit-compile), ``eager`` calls the Python function itself
(GradientTape op by op, the TensorFlow lesson's low level), and ``fit`` hands it to Keras as a model's
``train_step`` and runs ``Model.fit`` over a tf.data pipeline of the harness's batches, in the harness's order.
The mode is the training step's only: evaluation, prediction and feature extraction run as tf.functions (XLA with
--jit-compile) in every mode (adapter._compile_steps, extract_features), so an eager trial's ``eval_time_s`` times
traced evaluation (the first epoch's, its tracing too); samples/s leaves evaluation out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from backends.tensorflow.augment import crop_flip
from backends.tensorflow.dropout import DropoutKeys
from backends.tensorflow.framework import keras, tf
from backends.tensorflow.model import build_keras_model
from backends.tensorflow.tracing import traced
from harness.augment import CropFlip
from harness.config import RuntimeOptions
from harness.spec import ModelSpec

# The adapter's step on one batch: (x batch, y batch, lr, momentum, dropout keys).
BatchStep = Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], None]
# The step the custom and eager loops call, on one split (x, y): its batch, lr, momentum and keys come from
# EpochInputs.
TrainStep = Callable[[tf.Tensor, tf.Tensor], None]
Step = TypeVar("Step", bound=Callable[..., None])  # a train step: on one split, or with crop/flip


def configure_runtime(runtime: RuntimeOptions) -> None:
    """Threads and devices must be set before TensorFlow's runtime starts (a second call keeps the first's); the TF32
    policy is set on every call, explicitly."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(runtime.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # runtime already initialised in this process: the first trial's settings hold
    # An earlier trial's count (0: TensorFlow's own choice, where a tool's process started the runtime first, never a
    # trial worker's): the row would record threads TensorFlow does not use, and the sums would round otherwise.
    running = tf.config.threading.get_intra_op_parallelism_threads()
    if running not in (0, runtime.threads):
        raise RuntimeError(
            f"Expected this process's TensorFlow to run the trial's {runtime.threads} thread(s). Received: it runs "
            f"{running}, set by an earlier trial (TensorFlow fixes its threads when its runtime starts). Trials "
            "with another CPU allocation need their own worker process. To fix, run with --fresh-workers, and report "
            "this."
        )
    gpus = tf.config.list_physical_devices("GPU")
    if runtime.device == "gpu":
        if not gpus:
            raise RuntimeError(
                "Expected a GPU for device='gpu'. Received: TensorFlow sees none. To fix, give TensorFlow the CUDA 12 "
                "libraries its wheel needs to find a GPU (`pip install 'tensorflow[and-cuda]==2.21.*'` into xfbench's "
                "environment adds them; torch brings its own); on a machine without a GPU, run with --gpus-per-trial 0."
            )
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
    # TensorFlow enables TF32 on Ampere+ GPUs by default, torch does not for matmuls: set, never inherited.
    tf.config.experimental.enable_tensor_float_32_execution(runtime.tf32)
    # TensorFlow times cuDNN's convolution algorithms by default, torch does not: set, never inherited. Each
    # convolution kernel reads the variable when it is built (tensorflow/core/util/use_cudnn.cc); eager mode keeps
    # its kernels for later trials in the process, so trials with autotuning on get worker processes of their own
    # (RuntimeOptions.process_settings). XLA's own autotuning (--jit-compile on a GPU) follows XLA's flags instead.
    os.environ["TF_CUDNN_USE_AUTOTUNE"] = "1" if runtime.cudnn_autotune else "0"


def build_model(
    spec: ModelSpec, seed: int, runtime: RuntimeOptions, mc: bool = False, keys: DropoutKeys | None = None
) -> keras.Model:
    """The Keras model of ``spec`` under the runtime's precision (its dtype policy) and BatchNorm statistics. Mixed
    bfloat16 computes in bf16 with float32 variables; its logits are cast back to float32 (a float32 linear layer,
    as Keras' guide advises) so the loss, the metrics and every prediction stay float32; the input pipeline's layers
    stay float32 too (model._pipeline_dtype), as under torch's autocast. float64 builds every layer in float64
    (variables and compute); each layer casts its float32 input up, exactly."""
    precision, bn_statistics = runtime.precision, runtime.bn_statistics
    if precision == "float32":
        return build_keras_model(spec, seed, mc=mc, keys=keys, bn_statistics=bn_statistics)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)  # read by every layer as it is created; restored at once
    try:
        model = build_keras_model(spec, seed, mc=mc, keys=keys, bn_statistics=bn_statistics)
    finally:
        keras.config.set_dtype_policy(previous)
    if precision == "float64":
        return model
    logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.outputs[0])
    return keras.Model(model.inputs, logits, name=model.name)


class EpochInputs:
    """One epoch's per-step inputs, uploaded once per epoch into variables; each step reads its own by a counter.

    Why: a tf.function call costs about 0.2 ms on this CPU with no arguments and 0.5 ms with the six tensors the
    step used to take (index batch, lr, momentum, dropout keys, and the split), converted from NumPy on every
    step; on convnet3 that was 3-4 % of a Fashion-MNIST step (docs/measurements.md, "Harness overhead"). The
    values are the same: only where the step finds them changed."""

    def __init__(self, key_count: int, hyper_dtype: tf.DType = tf.float32) -> None:
        def var(value: np.ndarray, shape: list[int | None]) -> tf.Variable:
            return tf.Variable(value, shape=tf.TensorShape(shape), trainable=False)

        self.indices = var(np.zeros(0, np.int32), [None])  # the epoch's batches, concatenated
        self.offsets = var(np.zeros(1, np.int32), [None])  # batch s is indices[offsets[s]:offsets[s + 1]]
        self.hyper = hyper_dtype.as_numpy_dtype  # the optimizer's (float64 under --precision float64)
        self.lrs = var(np.zeros(0, self.hyper), [None])
        self.momenta = var(np.zeros(0, self.hyper), [None])
        self.keys = var(np.zeros((0, key_count), np.int64), [None, key_count])
        self.step = tf.Variable(0, dtype=tf.int32, trainable=False)  # the next step of the epoch
        self._held: dict[str, np.ndarray] = {}  # what each of those variables holds, as uploaded

    def load(self, batches: Sequence[np.ndarray], lrs: np.ndarray, momenta: np.ndarray, keys: np.ndarray) -> None:
        lengths = np.array([len(b) for b in batches], np.int32)
        self.indices.assign(np.concatenate(batches).astype(np.int32, copy=False))
        self._upload("offsets", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        self._upload("lrs", np.asarray(lrs, self.hyper))
        self._upload("momenta", np.asarray(momenta, self.hyper))
        self._upload("keys", np.asarray(keys, np.int64))
        self.step.assign(0)

    def _upload(self, name: str, value: np.ndarray) -> None:
        """Assign ``value`` to the variable ``name`` unless it already holds it: offsets, a constant schedule's rates
        and momenta, and a model without shared dropout's (empty) keys repeat from epoch to epoch, and each
        assign costs about 26 us, a per-epoch cost the hand-written loop does not pay (on digits' 21 ms epochs,
        0.5 % of the step time; benchmarks/harness_overhead.py)."""
        held = self._held.get(name)
        if held is None or held.shape != value.shape or not np.array_equal(held, value):
            getattr(self, name).assign(value)
            self._held[name] = value.copy()

    def next(self, size: int | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """The current step's (index batch, lr, momentum, keys); advances the counter.

        ``size`` (XLA): the batch's length as a constant. Without it the slice's length comes from the offsets, so
        one trace serves any batch; but XLA must know every shape when it compiles, and TensorFlow's bridge then
        made the step counter a compile-time constant: one XLA compilation per step of the epoch (20 on digits,
        the 26 s warm-up), a cache lookup on the counter's value every later step, and inside --epoch-loop
        compiled's while loop, where the counter cannot be constant, 11-23 samples/s. With ``size`` the slice has
        a static shape at a position read at run time: one compilation per batch length."""
        s = self.step.read_value()
        self.step.assign_add(1)
        if size is None:
            idx = self.indices[self.offsets[s] : self.offsets[s + 1]]
            return idx, self.lrs[s], self.momenta[s], self.keys[s]
        # A gather, not a slice: XLA's Slice and StridedSlice want their start as a compile-time constant too.
        idx = tf.gather(self.indices, tf.gather(self.offsets, s) + tf.range(size))
        return idx, tf.gather(self.lrs, s), tf.gather(self.momenta, s), tf.gather(self.keys, s)


def batch_sizes(batches: Sequence[np.ndarray], runtime: RuntimeOptions) -> list[int | None]:
    """What each step passes to EpochInputs.next: its batch's length under XLA, else None (one trace for all)."""
    return [len(b) if runtime.jit_compile else None for b in batches]


def compile_step(step: Step, runtime: RuntimeOptions) -> Step:
    """The step as the mode calls it: traced once (custom), or run op by op (eager)."""
    if runtime.tf_mode == "custom":
        return traced(step, jit_compile=runtime.jit_compile)
    return step


def compile_epoch(step: Callable[[int | None], None], lr: tf.Variable) -> Callable[[int], tf.Tensor]:
    """An epoch's calls of the step inside one tf.function (--epoch-loop compiled), called with the number of
    steps: a tf.while_loop, one iteration after the other (parallel_iterations=1: each step reads the variables the
    previous one wrote), each step reading its batch, of any length, from the epoch's inputs (EpochInputs.next).
    Never under XLA: RuntimeOptions refuses --epoch-loop compiled with --jit-compile (XLA:CPU ran this loop at a
    seventh of its per-step speed). Returns the learning rate each step used (read after it, as the per-step
    loop's trace reads it)."""

    def epoch(steps: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, trace: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            step(None)
            return i + 1, trace.write(i, lr.read_value())

        start = (tf.constant(0), tf.TensorArray(lr.dtype, size=steps))
        _, trace = tf.while_loop(lambda i, _: i < steps, body, start, parallel_iterations=1)
        return trace.stack()

    compiled = traced(epoch, reduce_retracing=False)
    return lambda steps: compiled(tf.constant(steps, tf.int32))  # a tensor: one trace for every epoch length


class _StepModel(keras.Model):
    """A Keras model whose train_step is the harness's step: Model.fit drives it, Keras compiles it (jit_compile
    from the trial's runtime), and the wrapped model's layers are its layers."""

    def __init__(self, inner: keras.Model, step: BatchStep) -> None:
        super().__init__(name=f"{inner.name}_fit")
        self.inner = inner
        self._step = step
        self.built = True  # the inner model is built: nothing for fit's symbolic build to trace

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.inner(inputs, training=training)

    def train_step(self, data: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        xb, yb, lr, momentum, keys = data
        self._step(xb, yb, lr, momentum, keys)
        # The epoch's sums live in the adapter's variables; Keras needs one output per step (the learning rate).
        return {"lr": lr}


class _LrTrace(keras.callbacks.Callback):
    """Tests: the learning rate each step used, read after the step as the custom loop reads it."""

    def __init__(self, lr: tf.Variable, trace: list[float]) -> None:
        super().__init__()
        self.lr, self.trace = lr, trace

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.trace.append(float(self.lr.numpy()))


class _FitFeed:
    """One epoch's inputs for Model.fit, held in host variables that a tf.data pipeline, built and traced once per
    split, reads step by step: element i is batch i's gathered (and augmented) samples and labels, its learning
    rate, momentum and dropout keys. People build their pipeline once and run every epoch over it; rebuilding it per
    epoch (a new dataset, its map function traced again) cost ~10 ms an epoch inside the timed region."""

    def __init__(
        self, x: tf.Tensor, y: tf.Tensor, crop: tuple[int, tuple[float, ...]] | None, options: tf.data.Options
    ):
        self.x, self.y, self.crop = x, y, crop

        def held(dtype: tf.DType, *shape: int) -> tf.Variable:
            return tf.Variable(tf.zeros([0, *shape], dtype), shape=[None, *shape], trainable=False)

        with tf.device("/CPU:0"):  # tf.data's functions run on the host and may read host variables only
            self.steps = tf.Variable(tf.constant(0, tf.int64), trainable=False)
            self.indices, self.starts = held(tf.int32), held(tf.int64)
            self.rows, self.cols = held(tf.int64, int(x.shape[1])), held(tf.int64, int(x.shape[2]))
            self.per_step: list[tf.Variable] = []
        self.options = options
        self.dataset: tf.data.Dataset | None = None

    def load(self, batches: Sequence[np.ndarray], per_step: Sequence[np.ndarray], views: Sequence[CropFlip] | None):
        if self.dataset is None:
            with tf.device("/CPU:0"):
                self.per_step = [held_like(values) for values in per_step]
            self.dataset = self._pipeline()
        self.steps.assign(len(batches))
        self.indices.assign(np.concatenate(batches).astype(np.int32))
        self.starts.assign(np.cumsum([0, *(len(b) for b in batches)], dtype=np.int64))
        if views is not None:
            self.rows.assign(np.concatenate([v.rows for v in views]))
            self.cols.assign(np.concatenate([v.cols for v in views]))
        for variable, values in zip(self.per_step, per_step, strict=True):
            variable.assign(values)

    def _pipeline(self) -> tf.data.Dataset:
        def element(i: tf.Tensor) -> tuple[tf.Tensor, ...]:
            start, end = self.starts[i], self.starts[i + 1]
            idx = self.indices[start:end]
            xb = tf.gather(self.x, idx)
            if self.crop is not None:
                xb = crop_flip(xb, self.rows[start:end], self.cols[start:end], *self.crop)
            return (xb, tf.gather(self.y, idx), *(variable[i] for variable in self.per_step))

        # each iterator (one per fit call) ends after the epoch's steps: nothing is gathered past them
        steps = tf.data.Dataset.counter().take_while(lambda i: i < self.steps)
        return steps.map(element).prefetch(2).with_options(self.options)


def held_like(values: np.ndarray) -> tf.Variable:
    """A host variable of ``values``' dtype whose first dimension (the epoch's steps) varies."""
    return tf.Variable(values, shape=[None, *values.shape[1:]], trainable=False)


class FitRunner:
    """Model.fit over one epoch of the harness's batches, in the harness's order: each split's tf.data pipeline
    (a _FitFeed) gathers each index batch from the split and zips in the step's learning rate, momentum and dropout
    keys."""

    def __init__(self, model: keras.Model, step: BatchStep, runtime: RuntimeOptions) -> None:
        self.model = _StepModel(model, step)
        jit_compile = runtime.jit_compile
        # The pipeline gathers (and augments) the next batches on tf.data's own threads beside the step, a pool as
        # large as the machine's cores unless bounded: at most the trial's threads, as its step has.
        self.options = tf.data.Options()
        self.options.threading.private_threadpool_size = runtime.threads
        self.feeds: list[_FitFeed] = []
        # Keras builds the compiled optimizer's variables: plain SGD has no slots. The harness's own optimizer,
        # called inside the step, does the update.
        self.model.compile(optimizer=keras.optimizers.SGD(), jit_compile=jit_compile)
        # Keras drops XLA, with only a warning, under op determinism (refused before the run: RuntimeOptions) or for
        # a layer declaring supports_jit=False (its lookups, RNNs, random image layers). No model reaches this: every
        # one, a user's imported keras:/python: model included, is rebuilt from its neutral spec out of the layers
        # model.py makes, none of which declares that (all 15 zoo models checked). A net for a layer added later.
        if self.model.jit_compile != jit_compile:
            no_xla = sorted({type(layer).__name__ for layer in model.layers if not layer.supports_jit})
            raise RuntimeError(
                "Expected Keras' fit to compile the step with XLA (--jit-compile). Received: Keras turned XLA off "
                f"for this model (its layers without XLA support: {no_xla}), so the trial would record XLA it never "
                "used. To fix, drop --jit-compile or use --tf-mode custom, and report this: xfbench's models should "
                "all compile with XLA."
            )

    def run(
        self,
        x: tf.Tensor,
        y: tf.Tensor,
        batches: Sequence[np.ndarray],
        per_step: tuple[np.ndarray, np.ndarray, np.ndarray],
        lr_trace: tuple[tf.Variable, list[float]] | None = None,
        views: Sequence[CropFlip] | None = None,
    ) -> None:
        feed = self._feed(x, y, None if views is None else (views[0].padding, views[0].fill))
        feed.load(batches, per_step, views)
        assert feed.dataset is not None
        callbacks = [_LrTrace(*lr_trace)] if lr_trace is not None else []
        self.model.fit(
            feed.dataset, epochs=1, steps_per_epoch=len(batches), shuffle=False, verbose=0, callbacks=callbacks
        )

    def _feed(self, x: tf.Tensor, y: tf.Tensor, crop: tuple[int, tuple[float, ...]] | None) -> _FitFeed:
        """The pipeline over this split (the very tensors: a split set again gets a new one) with this crop."""
        for feed in self.feeds:
            if feed.x is x and feed.y is y and feed.crop == crop:
                return feed
        self.feeds.append(_FitFeed(x, y, crop, self.options))
        return self.feeds[-1]
