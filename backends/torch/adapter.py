"""The PyTorch backend: eager training with torch.optim, data held on the device."""

from __future__ import annotations

import functools
import gc
import math
import shutil
import warnings
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from backends.torch.augment import crop_flip
from backends.torch.capabilities import CAPABILITIES
from backends.torch.dropout import DropoutKeys, SharedDropout
from backends.torch.layout import features_to_neutral, images_to_torch
from backends.torch.model import build_module, export_weights, forward_to, layer_module, load_weights
from backends.torch.modes import compile_afresh, model_input, prepare_model
from backends.torch.optimizers import TorchUpdate, make_optimizer
from harness.augment import EpochAugment
from harness.backend import StepStats
from harness.config import OptimizerConfig, RegularizationConfig, RuntimeOptions
from harness.dropout_rng import STREAM_MC, TrainingKeys, dropout_layer_indices, step_keys, training_keys
from harness.inference_batches import over_batches
from harness.shapes import infer_shapes
from harness.spec import ModelSpec
from harness.update_pipeline import StepOutputs, UpdateRule, loss_scale_rule, update_step
from harness.weights import NeutralWeights


def loss_and_hits(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax cross-entropy, or binary cross-entropy on one sigmoid output (binary tasks); and the hit count."""
    if logits.shape[1] == 1:
        z = logits[:, 0]
        return F.binary_cross_entropy_with_logits(z, y.to(z.dtype), reduction=reduction), ((z > 0).long() == y).sum()
    return F.cross_entropy(logits, y, reduction=reduction), (logits.argmax(1) == y).sum()


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a CPU tensor that owns its memory where the array may not be written: torch.from_numpy shares
    it and ignores numpy's read-only flag, and a dataset shipped through Ray's object store is read-only shared
    memory that every later trial on the node maps, one in-place op away from changing theirs. The trial's own
    arrays (read from its files, or made by its input pipeline) are shared as before; images reach here as a copy
    anyway (images_to_torch transposes them into a fresh array), labels as they are."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class TorchBackend:
    name = "torch"

    def __init__(self, runtime: RuntimeOptions) -> None:
        self.runtime = runtime
        torch.set_num_threads(runtime.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already fixed by earlier parallel work in this process; intra-op threads still apply
        if runtime.device == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError(
                    "Expected a CUDA GPU for device='gpu'. Received: torch sees none. To fix, run with "
                    "--gpus-per-trial 0."
                )
            self.device = torch.device("cuda")
            # A warm worker's earlier trial left its tensors to the collector and its blocks in the caching
            # allocator's reserve, which another trial sharing the GPU (--gpus-per-trial 0.5) could not use.
            gc.collect()
            torch.cuda.empty_cache()
        else:
            self.device = torch.device("cpu")
        # torch picks cuDNN's convolution algorithms by heuristics unless told to time them; TensorFlow times them
        # unless told not to: set in both, never inherited from an earlier trial.
        torch.backends.cudnn.benchmark = runtime.cudnn_autotune
        # Set either way: a warm worker's earlier trial may have switched it on.
        torch.use_deterministic_algorithms(runtime.deterministic)
        # torch allows TF32 in cuDNN convolutions by default but not in matmuls, TensorFlow in both: set, not inherited.
        torch.backends.cuda.matmul.allow_tf32 = runtime.tf32
        torch.backends.cudnn.allow_tf32 = runtime.tf32
        if runtime.torch_compile:  # a warm worker's earlier trial left its graphs in Dynamo's caches: compile afresh
            weakref.finalize(self, shutil.rmtree, compile_afresh(self.device), True)  # its kernels, gone with it
        # What this process can do: the declaration, less a GPU this machine does not have.
        self.capabilities = CAPABILITIES if torch.cuda.is_available() else CAPABILITIES - {"gpu"}
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._spec: ModelSpec | None = None
        self.record_lr_trace = False  # tests: keep the learning rate each step actually used
        self.lr_trace: list[float] = []
        self.frozen_bn: list[torch.nn.Module] = []

    def framework_version(self) -> str:
        # a plain str: torch's TorchVersion, pickled into a row, made whatever process unpickled it import torch
        return str(torch.__version__)

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def peak_memory_mib(self) -> float:
        if self.device.type != "cuda":
            return math.nan
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    def build(self, spec: ModelSpec, weights: NeutralWeights, seed: int = 0) -> None:
        # Native dropout (--dropout-rng framework) draws from torch's global generator: seeded for reproducibility.
        torch.manual_seed(seed)
        if self.device.type == "cuda":  # the peak of this model's training, not of the trial a warm worker ran before
            torch.cuda.reset_peak_memory_stats(self.device)
        self._seed = seed
        self._dropout_indices = dropout_layer_indices(spec)
        shared = self.runtime.dropout_rng == "shared"
        self.dropout_keys = DropoutKeys(self.device, len(self._dropout_indices)) if shared else None
        model = build_module(spec, self.dropout_keys, self.runtime.bn_statistics)
        # In the variables' type before the weights go in: float64 weights (a float64 run's checkpoint, backbone or
        # weight file) into a float32 module would be rounded to float32 on the way.
        model.to(self._variable_dtype())
        load_weights(model, spec, weights)
        self.frozen_bn = []
        self.module = model.to(self.device)
        self.model = prepare_model(self.module, self.runtime, self.device)  # memory format, precision, compile
        self._extractors: dict[str, torch.nn.Module] = {}  # extract_features' truncated models, of this module
        self._spec = spec

    def _variable_dtype(self) -> torch.dtype:
        """RuntimeOptions.variable_dtype: what the parameters, the epoch's sums and extracted features are held in."""
        return getattr(torch, self.runtime.variable_dtype)

    def export_weights(self) -> NeutralWeights:
        assert self._spec is not None, "build() first"
        return export_weights(self.module, self._spec)

    def _layer_params(self) -> dict[str, list[torch.nn.Parameter]]:
        assert self._spec is not None, "build() first"
        return {layer.name: list(layer_module(self.module, layer.name).parameters()) for layer in self._spec.layers}

    def freeze_layers(self, frozen_layers: Collection[str]) -> None:
        frozen = set(frozen_layers)
        layers = self._layer_params()
        for name, params in layers.items():
            for p in params:
                p.requires_grad_(name not in frozen)
        # torch's train() switches every BatchNorm to batch statistics; frozen ones are put back after each train().
        modules = [layer_module(self.module, n) for n in frozen if n in layers]
        self.frozen_bn = [m for m in modules if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def parameter_counts(self) -> tuple[int, int]:
        params = list(self.module.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        return trainable, sum(p.numel() for p in params) - trainable

    def _images(self, x: np.ndarray) -> torch.Tensor:
        images = host_tensor(images_to_torch(x.astype(np.float32, copy=False))).to(self.device)
        return model_input(images, self.runtime)

    @torch.no_grad()
    def extract_features(
        self, x: np.ndarray, layer: str, batch_size: int = 1000, average_maps: bool = False
    ) -> np.ndarray:
        self.model.eval()
        # Only the layers the feature layer depends on run, as in TensorFlow's submodel to the layer: deep_features
        # times this call against the work up to the layer (forward_macs_to). One prepared (autocast, compiled)
        # extractor per layer for the model's life: the timed call reuses what the harness's untimed warm-up built.
        if layer not in self._extractors:
            self._extractors[layer] = prepare_model(forward_to(self.module, layer), self.runtime, self.device)
        run = self._extractors[layer].eval()
        dtype = self._variable_dtype()  # float32 for float32 and mixed runs, float64 for float64
        origin = functools.cache(lambda: infer_shapes(self._spec)[layer].flattened_from if self._spec else None)

        # Layouts change per batch on the device (TensorFlow, NHWC throughout, changes none): the host transposed
        # whole splits both ways inside deep_features' timer. The same bits: a layout change computes nothing.
        def images(s: slice) -> torch.Tensor:
            if x.ndim != 4:
                return self._images(x[s])
            with warnings.catch_warnings():  # read alone: copied to the device, or by the clone below on the CPU
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                batch = torch.from_numpy(x[s].astype(np.float32, copy=False)).to(self.device)
            # the standard strides images_to_torch gives: a permuted 1-channel batch reads as channels_last to torch
            return model_input(batch.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format), self.runtime)

        # each batch's features to the host as it comes, as TensorFlow's: joined on the device, a split's feature maps
        # were held there twice (the batches, then their concatenation; 37 GiB for vgg11_bn's on CIFAR-10)
        neutral = lambda s: features_to_neutral(run(images(s)).to(dtype), origin, average_maps)  # noqa: E731
        return np.concatenate(over_batches(len(x), batch_size, lambda s: neutral(s).cpu().numpy()))

    def set_optimizer(
        self,
        config: OptimizerConfig,
        regularization: RegularizationConfig = RegularizationConfig(),
        lr_multipliers: Mapping[str, float] | None = None,
    ) -> None:
        multipliers = dict(lr_multipliers or {})
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for name, params in self._layer_params().items():
            for p in params:
                if p.requires_grad:
                    groups.setdefault(float(multipliers.get(name, 1.0)), []).append(p)
        # One param group per multiplier: the step's learning rate times the group's factor.
        self.optimizer = make_optimizer([{"params": ps, "lr_multiplier": m} for m, ps in groups.items()], config)
        self._scheduled_momentum = config.scheduled_momentum
        # Kernels (Conv/Dense weights) carry the penalties and the max-norm constraint; biases, BN, PReLU do not.
        kernels = [
            m.weight
            for m in self.module.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.requires_grad
        ]
        params = [p for p in self.module.parameters() if p.requires_grad]
        scaling = loss_scale_rule(self.runtime.precision)
        self.update = TorchUpdate(self.optimizer, params, kernels, self.device, scaling)
        self.update_rule = UpdateRule.of(config, regularization, scaling)
        self.lr_trace = []

    def _set_step_hyperparameters(self, lr: float, momentum: float | None) -> None:
        driven = self._scheduled_momentum if momentum is not None else None
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_multiplier"]
            if driven == "beta1":
                group["betas"] = (momentum, group["betas"][1])
            elif driven == "momentum":
                group["momentum"] = momentum

    def _set_dropout_keys(self, stream: int, seed: int, step: int, offset: int = 0) -> None:
        if self.dropout_keys is not None:
            self.dropout_keys.set(step_keys(seed, stream, step, self._dropout_indices), offset)

    def training_dropout_keys(self) -> TrainingKeys | None:
        return training_keys(self.dropout_keys is not None, self._seed, self._dropout_indices)

    def _epoch_dropout_keys(self, first_step: int, steps: int, given: np.ndarray | None) -> Sequence[torch.Tensor]:
        """Each training step's shared-dropout keys (``given``: the harness's, else hashed here): the rows of one
        (steps, layers) tensor, copied to the device once per epoch, as TensorFlow's EpochInputs does; a copy per
        step would synchronise a GPU's stream each step."""
        source = self.training_dropout_keys()
        if source is None:
            return [torch.zeros(0, dtype=torch.int64)] * steps  # no shared dropout layer: no key is read
        return torch.from_numpy(source.rows(first_step, steps, given)).to(self.device).unbind()

    def set_data(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        self._data[split] = (self._images(x), host_tensor(y.astype(np.int64, copy=False)).to(self.device))

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> StepOutputs:
        return update_step(self.update, self.update_rule, lambda: loss_and_hits(self.model(xb), yb))

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
        x, y = self._data[split]
        self.model.train()
        for bn in self.frozen_bn:
            bn.eval()
        dtype = self._variable_dtype()  # the epoch's sums in the loss's float type
        loss_sum = torch.zeros((), dtype=dtype, device=self.device)
        reg_sum = torch.zeros((), dtype=dtype, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        # The epoch's index batches moved to the device in one copy, and its rates as Python floats: the per-step
        # work outside the step itself is what the harness adds to a hand-written loop (benchmarks/harness_overhead).
        sizes = [len(b) for b in batches]
        indices = torch.from_numpy(np.concatenate(batches)).to(self.device).split(sizes)
        rates = np.asarray(lrs, np.float64).tolist()
        moments = [None] * len(sizes) if momenta is None else np.asarray(momenta, np.float64).tolist()
        keys = self._epoch_dropout_keys(first_step, len(sizes), dropout_keys)
        for batch, idx, size, lr, momentum, step_key in zip(batches, indices, sizes, rates, moments, keys, strict=True):
            self._set_step_hyperparameters(lr, momentum)
            if self.dropout_keys is not None:
                self.dropout_keys.set(step_key)
            # Advanced indexing: measured ~20 % faster per step than index_select on CPU.
            xb = x[idx]
            if augment is not None:
                xb = model_input(crop_flip(xb, augment.view(batch, *x.shape[2:])), self.runtime)
            out = self._train_step(xb, y[idx])
            if out.penalty is not None:
                reg_sum += out.penalty.detach() * size
            if self.record_lr_trace:
                group = self.optimizer.param_groups[0]
                self.lr_trace.append(group["lr"] / group["lr_multiplier"])
            # Accumulate on the device: no per-step host sync.
            loss_sum += out.loss.detach() * size
            correct += out.hits
        return StepStats(float(loss_sum.item()), int(correct.item()), sum(sizes), float(reg_sum.item()))

    @torch.no_grad()
    def evaluate(self, split: str, batch_size: int) -> StepStats:
        x, y = self._data[split]
        self.model.eval()
        sums = over_batches(len(y), batch_size, lambda s: self._eval_batch(x[s], y[s]))
        # Summed on the device, in batch order: one host sync.
        loss_sum = sum((loss for loss, _ in sums), torch.zeros((), dtype=torch.float64, device=self.device))
        correct = sum((hits for _, hits in sums), torch.zeros((), dtype=torch.int64, device=self.device))
        return StepStats(float(loss_sum.item()), int(correct.item()), len(y))

    def _eval_batch(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss sum and hit count. Each sample's loss is widened to float64 before it is summed, as the
        TensorFlow backend's eval_step does: a float32 sum over a batch of up to eval_batch_size samples rounded the
        two backends' val_loss apart, which the plateau schedule reads."""
        losses, hits = loss_and_hits(self.model(xb), yb, reduction="none")
        return losses.double().sum(), hits

    def _logits(self, xt: torch.Tensor, batch_size: int, per_batch: Callable[[slice], torch.Tensor]) -> np.ndarray:
        """``per_batch`` over ``xt``'s batches, joined on the device: one copy to the host."""
        return torch.cat(over_batches(len(xt), batch_size, per_batch)).cpu().numpy()

    @torch.no_grad()
    def predict_mc(self, x: np.ndarray, passes: int, seed: int, batch_size: int = 1000) -> np.ndarray:
        self.model.eval()
        kinds = (torch.nn.Dropout, torch.nn.AlphaDropout, SharedDropout)
        dropouts = [m for m in self.module.modules() if isinstance(m, kinds)]
        for m in dropouts:
            m.train()  # dropout on, BatchNorm still in inference mode
        xt = self._images(x)
        try:
            if self.dropout_keys is not None:  # shared masks: pass p of sample i is drawn at (seed, MC stream, p, i)
                return np.stack([self._mc_pass(xt, seed, p, batch_size) for p in range(passes)])
            # A forked generator state: the passes are reproducible and the trial's own stream is untouched.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed)
                return np.stack([self._logits(xt, batch_size, lambda s: self.model(xt[s])) for _ in range(passes)])
        finally:
            for m in dropouts:
                m.eval()

    def _mc_pass(self, xt: torch.Tensor, seed: int, index: int, batch_size: int) -> np.ndarray:
        def one_batch(s: slice) -> torch.Tensor:
            self._set_dropout_keys(STREAM_MC, seed, index, offset=s.start)
            return self.model(xt[s])

        return self._logits(xt, batch_size, one_batch)

    @torch.no_grad()
    def predict_logits(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        self.model.eval()
        xt = self._images(x)
        return self._logits(xt, batch_size, lambda s: self.model(xt[s]))


def create_backend(runtime: RuntimeOptions) -> TorchBackend:
    return TorchBackend(runtime)
