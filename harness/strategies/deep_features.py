"""S2 with scikit-learn: features from a backbone layer, a classical classifier on top.

Features are cached per (backbone, layer, pooling, task, backend) under the cache directory, so several heads
(one trial each) reuse one extraction. The row's ``epoch_time_s`` is the backend's feature extraction (train,
validation and test splits), ``samples_per_s`` its throughput and ``other_cpus`` the CPUs other processes kept busy
meanwhile, all empty where the features came from the cache; the head's fit, scikit-learn's in every backend, is
``details_json``'s ``fit_time_s``, beside the feature size and the head.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backbone import cache_root
from harness.backbone import features_file as backbone_features_file
from harness.backend import honoured_runtime
from harness.checkpoints import save_npz_atomically
from harness.config import RuntimeOptions
from harness.data.registry import Dataset, data_fingerprint
from harness.host_load import cpu_clock, other_cpus
from harness.model_cost import forward_macs_to
from harness.strategies.reuse import backbone_columns, start_from_backbone
from harness.training import EpochRecord

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from harness.config import TrialConfig
    from harness.strategies import StrategyContext


def sklearn_version() -> str:
    """The scikit-learn that fits every deep_features head (run.json's framework_versions names it)."""
    import sklearn

    return str(sklearn.__version__)


def make_head(name: str, seed: int, threads: int) -> RandomForestClassifier | Pipeline:
    """The scikit-learn classifier; linear and kernel models get standardised features (a Pipeline)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=threads)
    model = {
        # defaults that changed between scikit-learn versions set explicitly (LinearSVC's dual was True before 1.5)
        "linear_svc": LinearSVC(C=1.0, dual="auto", max_iter=5000, random_state=seed),
        "rbf_svc": SVC(kernel="rbf", C=1.0, gamma="scale"),
        "logistic_regression": LogisticRegression(solver="lbfgs", max_iter=2000),
    }[name]
    return make_pipeline(StandardScaler(), model)


def _flat(features: np.ndarray) -> np.ndarray:
    """One row per image: feature maps flattened in H, W, C order (``--feature-pool flatten``); maps averaged by
    the backend (``avg``) and dense features are rows already."""
    return features.reshape(len(features), -1)


def features_task_key(cfg: TrialConfig, dataset: Dataset) -> str:
    """What the features depend on besides the backbone, layer, pooling and extractor: the data (``dataset``, the
    trial's, by name and content: pretrained weights' checkpoint key holds no dataset, and MNIST and Fashion-MNIST
    share every shape and split size), the task, the precision the extractor computed in (float32, mixed or float64
    features differ, so they never share a file; TF32 on a GPU too) and the input pipeline in front of the network
    (resize, channels, normalisation: ``--normalize none`` or another resize mode must not read features made
    without)."""
    what = {
        "dataset": cfg.dataset,
        # the run's key of what preflight read (checked against this node's copy), hashed once per run; a trial
        # outside a run has none: its data hashed here
        "data": cfg.data_key or data_fingerprint(dataset),
        "task": cfg.task.__dict__ if cfg.task else {},
        "precision": cfg.runtime.precision,
        "input": asdict(cfg.input),
        **({"tf32": True} if cfg.runtime.computes_tf32 else {}),  # files made without TF32 keep their key
        # how the extractor ran where it changes the features' bits (XLA's kernels, a compiled or channels_last
        # torch model, another device) and the extraction's speed; files made with the defaults keep their key
        **({"modes": modes} if (modes := extraction_modes(cfg)) else {}),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _features_cache(ctx: StrategyContext, backbone_key: str, layer: str) -> Path:
    """Keyed by the backbone checkpoint (a recipe's hash or pretrained weights' content key), the layer, pooling,
    task, precision and the extractor's code versions."""
    cfg = ctx.config
    task_key = features_task_key(cfg, ctx.dataset)
    name = backbone_features_file(backbone_key, layer, cfg.transfer.feature_pool, task_key, cfg.backend)
    return cache_root(cfg) / "features" / name


EXTRACTION_MODES = ("jit_compile", "torch_compile", "channels_last", "device", "cudnn_autotune", "deterministic")


def extraction_modes(cfg: TrialConfig) -> dict[str, Any]:
    """The runtime settings away from their defaults that the trial's backend applies to its extractor."""
    honoured, default = honoured_runtime(cfg.runtime, cfg.backend), RuntimeOptions()
    return {
        name: getattr(honoured, name) for name in EXTRACTION_MODES if getattr(honoured, name) != getattr(default, name)
    }


def _warm_extractor(ctx: StrategyContext, splits: tuple[np.ndarray, ...], layer: str, average_maps: bool) -> float:
    """One batch of each size the extraction will see, apart from the extraction's time: a framework traces or
    compiles its extractor once (TensorFlow for any batch size, a compiled torch model per shape), and that one-off
    cost is warm-up, not the extraction throughput the row reports; its seconds are returned, for the row's
    details. The backends keep the extractor for the timed call."""
    size = ctx.config.eval_batch_size
    start = time.perf_counter()
    for x in splits:
        for batch in sorted({min(len(x), size), len(x) % size} - {0}):
            ctx.backend.extract_features(x[:batch], layer, size, average_maps)
    return time.perf_counter() - start


SPLITS = ("train", "val", "test")
PHASE = "sklearn"  # the row's phase (the results schema names every strategy's)


@dataclass(frozen=True)
class _Extraction:
    """Each split's features, by name (SPLITS); the extraction's seconds, samples/s, warm-up seconds and the CPUs
    other processes kept busy meanwhile (harness.host_load; all NaN when read from the cache); the cached file's own
    samples/s (NaN when extracted now); when the features were ready (time.perf_counter)."""

    features: dict[str, Any]
    seconds: float
    samples_per_s: float
    warmup_s: float
    cached_samples_per_s: float
    ready: float
    other_cpus: float = math.nan


def _features(ctx: StrategyContext, data: Any, layer: str, cache: Path) -> _Extraction:
    cfg, t = ctx.config, ctx.config.transfer
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            # Not measured here: the file may come from another run, machine or load. The row's speed stays empty;
            # the cached figure goes to details_json for whoever wants it.
            if set(SPLITS) <= set(stored.files):  # a file of an older xfbench held no validation features
                features = {s: stored[s] for s in SPLITS}
                cached_sps = float(stored["samples_per_s"])
                return _Extraction(features, math.nan, math.nan, math.nan, cached_sps, time.perf_counter())
    inputs = {"train": data.x_train, "val": data.x_val, "test": data.x_test}
    average_maps = t.feature_pool == "avg"  # on the device, batch by batch: a split's maps are never held whole
    warmup_s = _warm_extractor(ctx, tuple(inputs.values()), layer, average_maps)
    clock = cpu_clock()  # read before the timer starts and after it stops, as a training epoch's
    start = time.perf_counter()
    features = {
        split: _flat(ctx.backend.extract_features(x, layer, cfg.eval_batch_size, average_maps))
        for split, x in inputs.items()
    }
    ready = time.perf_counter()
    others = other_cpus(clock, cpu_clock())
    extract_s = ready - start
    extract_sps = sum(len(f) for f in features.values()) / extract_s
    save_npz_atomically(cache, {**features, "samples_per_s": np.asarray(extract_sps)})
    return _Extraction(features, extract_s, extract_sps, warmup_s, math.nan, ready, others)


def run(ctx: StrategyContext) -> str:
    cfg, t = ctx.config, ctx.config.transfer
    data, spec, details = start_from_backbone(ctx, "as_trained")
    layer = t.feature_layer or spec.inputs_of(len(spec.layers) - 1)[0]
    ctx.on_model(spec, forward_macs_to(spec, layer))  # its samples/s time the forward pass to the feature layer
    extraction = _features(ctx, data, layer, _features_cache(ctx, details["backbone"], layer))
    features, extract_s, extract_sps = extraction.features, extraction.seconds, extraction.samples_per_s
    cached = math.isnan(extract_s)
    head = make_head(t.sklearn_head, cfg.seed, cfg.runtime.threads)
    fit_start = time.perf_counter()
    head.fit(features["train"], data.y_train)
    fit_s = time.perf_counter() - fit_start
    labels = {"train": data.y_train, "val": data.y_val, "test": data.y_test}
    if not cfg.scores_test_split:  # a search sample: picked by validation, its test split left unscored
        labels.pop("test")
    # The head scores validation accuracy as a trained network does, what a tune picks a head or layer by; it has no
    # validation loss (a support vector machine gives no probabilities), so a tune refuses --metric val_loss here.
    accuracy = {split: float((head.predict(features[split]) == y).mean()) for split, y in labels.items()}
    details.update(
        layer=layer,
        pool=t.feature_pool,
        feature_dim=int(features["train"].shape[1]),
        head=t.sklearn_head,
        fit_time_s=fit_s,
        features_cached=cached,
        scikit_learn_version=sklearn_version(),
        **({"cached_extraction_samples_per_s": extraction.cached_samples_per_s} if cached else {}),
        **({} if cached else {"extraction_warmup_s": extraction.warmup_s}),
        columns="epoch_time_s = the backend's feature extraction (train, validation and test splits) and "
        "samples_per_s its "
        "throughput, after a warm-up batch of each batch size (tracing, compiling: extraction_warmup_s; all three "
        "empty when cached); the scikit-learn head's fit, the same in every backend, is fit_time_s",
    )
    trainable, frozen = ctx.backend.parameter_counts()  # everything is frozen: the network only extracts
    ctx.sink(
        EpochRecord(
            phase=PHASE,
            epoch=1,
            train_loss=float("nan"),
            train_acc=accuracy["train"],
            val_loss=float("nan"),
            val_acc=accuracy["val"],
            epoch_time_s=extract_s,  # the framework's work; the head's fit is scikit-learn's in every backend
            samples_per_s=extract_sps,
            # what ran after the extraction (the cache's write, the head's fit and scoring), so that the rows' time
            # spans (timestamp - eval_time_s - epoch_time_s) place the extraction where it ran
            eval_time_s=time.perf_counter() - extraction.ready,
            warmup=False,
            lr=float("nan"),
            test_acc=accuracy.get("test", math.nan),
            other_cpus=extraction.other_cpus,  # during the timed extraction; NaN for features read from the cache
            extra={
                "trainable_params": 0,
                "frozen_params": trainable + frozen,
                "details_json": json.dumps(details, sort_keys=True),
                **backbone_columns(details),
            },
        )
    )
    return "ok"
