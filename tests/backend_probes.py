"""Functions the parity tests run inside a per-backend worker process.

They use only the backend protocol, so the same probe runs unchanged on
every backend; the pytest process itself never imports a framework.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.backend import StepStats, load_backend
from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions, TrialConfig
from harness.data.registry import Dataset
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def _backend(
    name: str, spec: ModelSpec, weights: NeutralWeights, seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()
):
    backend = load_backend(name, runtime)
    backend.build(spec, weights, seed=seed)
    return backend


def logits(name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray) -> np.ndarray:
    return _backend(name, spec, weights).predict_logits(x, batch_size=256)


def roundtrip(
    name: str, spec: ModelSpec, weights: NeutralWeights, runtime: RuntimeOptions = RuntimeOptions()
) -> NeutralWeights:
    return _backend(name, spec, weights, runtime=runtime).export_weights()


def train(
    name: str,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    lrs: np.ndarray | None = None,
    momenta: np.ndarray | None = None,
    regularization: RegularizationConfig = RegularizationConfig(),
    multipliers: dict[str, float] | None = None,
    runtime: RuntimeOptions = RuntimeOptions(),
    read_only: bool = False,
) -> tuple[NeutralWeights, StepStats, list[float]]:
    """Train on ``batches``; returns the weights, the epoch's stats and the learning rate each step used.
    ``read_only``: the data as a dataset shipped through Ray's object store reaches a trial."""
    backend = _backend(name, spec, weights, runtime=runtime)
    backend.set_optimizer(optimizer.resolved(), regularization, multipliers)
    if read_only:
        x, y = x.copy(), y.copy()
        x.flags.writeable = y.flags.writeable = False
    backend.set_data("train", x, y)
    backend.record_lr_trace = True
    if lrs is None:
        lrs = np.full(len(batches), optimizer.lr, np.float32)
    stats = backend.train_epoch("train", batches, lrs, momenta, first_step=0)
    return backend.export_weights(), stats, list(backend.lr_trace)


def mc_logits(name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, passes: int, seed: int) -> np.ndarray:
    return _backend(name, spec, weights).predict_mc(x, passes, seed, batch_size=256)


def evaluate(name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, y: np.ndarray) -> StepStats:
    backend = _backend(name, spec, weights)
    backend.set_data("test", x, y)
    return backend.evaluate("test", batch_size=100)


def torch_evaluation_and_sample_losses(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[StepStats, np.ndarray]:
    """torch's evaluate over (x, y), and each sample's float32 loss as its loss function gives it on the logits of
    the same batches."""
    import torch

    from backends.torch.adapter import loss_and_hits

    assert name == "torch", name
    backend = _backend(name, spec, weights)
    backend.set_data("test", x, y)
    stats = backend.evaluate("test", batch_size=batch_size)
    logits = torch.from_numpy(backend.predict_logits(x, batch_size=batch_size))
    return stats, loss_and_hits(logits, torch.from_numpy(y.astype(np.int64)), reduction="none")[0].numpy()


def trial_rows(name: str, config_dict: dict, run_id: str, dataset: Dataset | None = None) -> list[dict]:
    """Run a whole trial (no Ray) in this worker and return its rows (``dataset``: as Ray ships it; None reads the
    files, as a trial on a node that has them)."""
    from harness.config import TrialConfig
    from harness.trial import RunInfo, run_trial

    rows: list[dict] = []
    run_trial(TrialConfig.from_dict(config_dict), RunInfo(run_id, "test"), rows.append, dataset)
    return rows


def torch_plateau_scales(
    name: str, val_losses: list[float], factor: float, patience: int, threshold: float
) -> list[float]:
    """PyTorch's own ReduceLROnPlateau on a sequence of validation losses (the reference for PlateauTracker)."""
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=factor, patience=patience, threshold=threshold
    )
    scales = []
    for loss in val_losses:
        scheduler.step(loss)
        scales.append(optimizer.param_groups[0]["lr"])
    return scales


def dropout_outputs(
    name: str,
    rate: float,
    kind: str,
    x: np.ndarray,
    passes: int,
    before_flatten: bool = False,
    dropout_rng: str = "shared",
    batch_size: int = 4096,
) -> np.ndarray:
    """Outputs of a bare dropout layer in training mode, via MC passes (seed 3): Flatten -> Dropout -> identity
    Dense, or with ``before_flatten`` Dropout on the feature map -> Flatten -> identity Dense."""
    from harness.spec import Dense, Dropout, Flatten

    width = int(np.prod(x.shape[1:]))
    flat, drop = Flatten(name="flat", group="f"), Dropout(name="drop", group="f", rate=rate, kind=kind)
    spec = ModelSpec(
        "dropout_probe",
        tuple(x.shape[1:]),
        width,
        (
            *((drop, flat) if before_flatten else (flat, drop)),
            Dense(name="logits", group="c", units=width),
        ),
    )
    weights = {"logits/kernel": np.eye(width, dtype=np.float32), "logits/bias": np.zeros(width, np.float32)}
    backend = load_backend(name, RuntimeOptions(threads=1, dropout_rng=dropout_rng))
    backend.build(spec, weights, seed=0)
    return backend.predict_mc(x, passes, seed=3, batch_size=batch_size)


def tensorflow_dropout_layer(
    name: str, x: np.ndarray, rate: float, kind: str, key: int, offset: int
) -> tuple[np.ndarray, list[str]]:
    """TensorFlow: a bare SharedDropout in training mode, traced, on ``x`` (a flat batch) with its step key set to
    ``key`` and its first sample index to ``offset``; its output, and the dtypes of the multiplies in its graph."""
    from backends.tensorflow.dropout import DropoutKeys, SharedDropout
    from backends.tensorflow.framework import tf
    from harness.dropout_rng import element_hashes

    keys = DropoutKeys(1)
    layer = SharedDropout(rate, kind, 0, element_hashes(x.shape[1:]), keys)
    step = tf.function(lambda xb: layer(xb, training=True), autograph=False)
    keys.assign(tf.constant([key], tf.int64), offset)
    graph = step.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)).graph
    multiplies = [op.get_attr("T").name for op in graph.get_operations() if op.type == "Mul"]
    return step(tf.constant(x)).numpy(), multiplies


def features(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, layer: str, average_maps: bool = False
) -> np.ndarray:
    return _backend(name, spec, weights).extract_features(x, layer, batch_size=100, average_maps=average_maps)


def layers_run_by_extraction(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, layer: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """torch: the layers whose modules ran (once per call) while ``layer``'s features were extracted (batch 100);
    those features; and the layer's output captured in a forward pass of the whole model, in the neutral layout."""
    import torch

    from backends.torch.model import layer_module

    backend = _backend(name, spec, weights)
    ran: list[str] = []
    hooks = [
        layer_module(backend.module, l.name).register_forward_hook(lambda m, i, o, n=l.name: ran.append(n))
        for l in spec.layers
    ]
    features = backend.extract_features(x, layer, batch_size=100)
    for hook in hooks:
        hook.remove()
    captured: list[torch.Tensor] = []
    hook = layer_module(backend.module, layer).register_forward_hook(lambda m, i, o: captured.append(o))
    backend.predict_logits(x, batch_size=100)
    hook.remove()
    full = torch.cat(captured).numpy()
    return ran, features, full.transpose(0, 2, 3, 1) if full.ndim == 4 else full


def training_dropout_keys(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, y: np.ndarray, epochs: list[list[np.ndarray]]
) -> tuple[np.ndarray, list[int]]:
    """torch, shared dropout masks (seed 5): the keys the first dropout layer read at each training step of
    ``epochs`` (steps counted on from one epoch to the next), and per epoch how many tensors held them."""
    from backends.torch.dropout import SharedDropout

    backend = _backend(name, spec, weights, seed=5)
    backend.set_optimizer(OptimizerConfig("sgd", lr=0.01).resolved())
    backend.set_data("train", x, y)
    first = next(m for m in backend.module.modules() if isinstance(m, SharedDropout))
    seen: list = []  # kept alive, so no step's tensor can reuse an earlier one's memory
    first.register_forward_pre_hook(lambda m, args: seen.append(m.keys.keys))
    storages, step = [], 0
    for batches in epochs:
        start = len(seen)
        backend.train_epoch("train", batches, np.full(len(batches), 0.01, np.float32), first_step=step)
        storages.append(len({t.untyped_storage().data_ptr() for t in seen[start:]}))
        step += len(batches)
    return np.stack([t.cpu().numpy() for t in seen]), storages


def extraction_traces(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, layer: str
) -> tuple[int, np.ndarray, np.ndarray]:
    """TensorFlow: how often the layer's extractor was traced over a warm-up call on a few images and a call on all
    of them (batch 100); and the features the two calls gave for the images they share."""
    backend = _backend(name, spec, weights)
    warm = backend.extract_features(x[:3], layer, batch_size=100)
    full = backend.extract_features(x, layer, batch_size=100)
    return backend._extractors[layer, False].experimental_get_tracing_count(), warm, full[:3]


def backbone_features(name: str, config_dict: dict) -> np.ndarray:
    """The deep features a deep_features trial extracts (training images), before any pooling."""
    from harness.config import TrialConfig
    from harness.data.registry import load_dataset
    from harness.strategies import StrategyContext
    from harness.strategies.reuse import start_from_backbone

    config = TrialConfig.from_dict(config_dict)
    backend = load_backend(name, config.runtime)
    dataset = load_dataset(config.dataset)
    ctx = StrategyContext(config=config, backend=backend, dataset=dataset, sink=lambda record: None)
    data, spec, _ = start_from_backbone(ctx, "as_trained")
    return ctx.backend.extract_features(data.x_train, config.transfer.feature_layer or spec.layers[-2].name, 500)


def run_strategy(name: str, config_dict: dict) -> tuple[list[dict], NeutralWeights]:
    """Run one strategy exactly as a trial does, then return its rows and the trained weights."""
    from harness.config import TrialConfig
    from harness.data.registry import load_dataset
    from harness.provenance import MachineInfo
    from harness.strategies import StrategyContext, get_strategy
    from harness.trial import RunInfo, base_row

    config = TrialConfig.from_dict(config_dict)
    backend = load_backend(name, config.runtime)
    rows: list[dict] = []
    common = base_row(config, RunInfo("probe", "test"), MachineInfo.current())

    def sink(record) -> None:
        fields = dict(record.__dict__)
        rows.append({**common, **fields, **fields.pop("extra")})

    def on_model(spec: ModelSpec, timed_macs: int) -> None:
        common["step_macs"] = timed_macs  # as harness.trial's rows carry it

    ctx = StrategyContext(config, backend, load_dataset(config.dataset), sink, on_model)
    get_strategy(config.strategy)(ctx)
    return rows, backend.export_weights()


def one_step_with_multipliers(
    name: str,
    spec: ModelSpec,
    weights: NeutralWeights,
    optimizer: OptimizerConfig,
    x: np.ndarray,
    y: np.ndarray,
    batch: np.ndarray,
    multipliers: dict[str, float],
) -> NeutralWeights:
    backend = _backend(name, spec, weights)
    backend.set_optimizer(optimizer.resolved(), RegularizationConfig(), multipliers)
    backend.set_data("train", x, y)
    backend.train_epoch("train", [batch], np.array([optimizer.lr], np.float32), first_step=0)
    return backend.export_weights()


def step_flops(
    name: str, spec: ModelSpec, weights: NeutralWeights, frozen: list[str], x: np.ndarray, y: np.ndarray
) -> float:
    """FLOPs per sample that PyTorch's own counter (torch.utils.flop_counter: convolutions and matrix products,
    forward and backward, as autograd runs them) counts in one training step with the layers ``frozen``."""
    from torch.utils.flop_counter import FlopCounterMode  # a torch probe only

    backend = _backend(name, spec, weights)
    backend.freeze_layers(frozen)
    backend.set_optimizer(OptimizerConfig("sgd", lr=0.01).resolved())
    backend.set_data("train", x, y)
    with FlopCounterMode(display=False) as counter:
        backend.train_epoch("train", [np.arange(len(x))], np.full(1, 0.01, np.float32), None, first_step=0)
    return counter.get_total_flops() / len(x)


def torch_data_written_through(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, y: np.ndarray
) -> dict:
    """For writeable arrays (the trial's own) and read-only ones (a dataset shipped through Ray's object store):
    whether the torch backend's data tensors share their memory, and whether the arrays still hold what they held
    after an in-place write into those tensors."""
    backend = _backend(name, spec, weights)
    seen = {}
    for writeable in (True, False):
        xs, ys = x.copy(), y.astype(np.int64)
        before = (xs.copy(), ys.copy())
        xs.flags.writeable = ys.flags.writeable = writeable
        backend.set_data("train", xs, ys)
        images, labels = backend._data["train"]
        shared = bool(np.shares_memory(images.numpy(), xs) or np.shares_memory(labels.numpy(), ys))
        images.add_(1.0), labels.add_(1)
        kept = bool(np.array_equal(xs, before[0]) and np.array_equal(ys, before[1]))
        seen["writeable" if writeable else "read-only"] = {"shared": shared, "kept": kept}
    return seen


def dtype_policy_after_a_bf16_build(name: str, spec: ModelSpec, weights: NeutralWeights) -> tuple[str, str]:
    """Keras' global dtype policy in this thread after a bf16 model was built here, and the policy the model's
    layers took: the backend sets it while it builds and restores it after."""
    import keras

    backend = _backend(name, spec, weights, runtime=RuntimeOptions(precision="mixed_bfloat16"))
    layer_policies = {layer.dtype_policy.name for layer in backend.model.layers if layer.weights}
    return keras.config.dtype_policy().name, ",".join(sorted(layer_policies))


def shipped_trial_hashes(name: str, config: TrialConfig, dataset: Dataset) -> tuple[str, int]:
    """A ``name`` trial run with the driver's own ``dataset`` shipped to it (harness.trial.run_trial): its status,
    and how many times it hashed a dataset's content (the driver checked the shipped copy; only a node's own files
    can differ)."""
    from harness.data import registry
    from harness.trial import RunInfo, run_trial

    hashed = []
    fingerprint = registry.data_fingerprint
    registry.data_fingerprint = lambda data: hashed.append(data) or ""
    try:
        status = run_trial(dataclasses.replace(config, backend=name), RunInfo("r", "c"), lambda row: None, dataset)
    finally:
        registry.data_fingerprint = fingerprint
    return status, len(hashed)


def trial_backend_alive_after_run_trial(name: str, config: TrialConfig) -> tuple[str, bool]:
    """A ``name`` trial run by harness.trial.run_trial with the collector switched off (as between its automatic
    passes): its status, and whether the backend it created is still alive when run_trial has returned. A warm
    worker's next trial would otherwise share the process with this one's model, optimizer and data."""
    import gc
    import weakref

    from harness import trial

    created: list[weakref.ref] = []
    load = trial.load_backend
    trial.load_backend = lambda *args: created.append(weakref.ref(backend := load(*args))) or backend
    gc.disable()
    try:
        status = trial.run_trial(dataclasses.replace(config, backend=name), trial.RunInfo("r", "c"), lambda row: None)
        return status, created[0]() is not None
    finally:
        gc.enable()
        trial.load_backend = load
