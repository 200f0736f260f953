"""Initial weights, generated once by the harness and loaded into any backend.

Neutral weights are an ordered ``dict`` mapping ``"<layer>/<param>"`` to a
float32 numpy array in the neutral layouts of :mod:`harness.spec` (float64 for a
model trained with ``--precision float64``: see :func:`host_array`).  Parameter
names: ``kernel``, ``bias`` (Conv2D, Dense), ``gamma``, ``beta``,
``moving_mean``, ``moving_variance`` (BatchNorm).

Every array is drawn from a generator derived from ``(seed, layer index)`` so
adding a layer never changes the weights of the layers before it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError, closest_text
from harness.seeds import INIT_STREAM
from harness.shapes import infer_shapes
from harness.spec import PRELU_INIT, Activation, BatchNorm, Conv2D, Dense, ModelSpec

NeutralWeights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Initializer:
    """Variance scaling: Var[w] = scale / fan, drawn from ``distribution``."""

    name: str
    scale: float
    mode: str  # "fan_in" | "fan_out" | "fan_avg"
    distribution: str  # "normal" | "truncated_normal" | "uniform"
    bias: str = "zeros"  # "zeros" | "fan_in_uniform" (PyTorch's rule)
    description: str = ""


INITIALIZERS: dict[str, Initializer] = {
    i.name: i
    for i in (
        Initializer(
            "he_normal", 2.0, "fan_in", "normal", description="N(0, 2/fan_in), as torch.nn.init.kaiming_normal_"
        ),
        Initializer("he_uniform", 2.0, "fan_in", "uniform", description="U(±sqrt(6/fan_in))"),
        Initializer("he_avg_normal", 2.0, "fan_avg", "normal", description="N(0, 2/fan_avg)"),
        Initializer("he_avg_uniform", 2.0, "fan_avg", "uniform", description="U(±sqrt(6/fan_avg))"),
        Initializer(
            "he_truncated_normal",
            2.0,
            "fan_in",
            "truncated_normal",
            description="Keras' HeNormal: truncated at 2 sd, variance 2/fan_in",
        ),
        Initializer("glorot_uniform", 1.0, "fan_avg", "uniform", description="U(±sqrt(6/(fan_in+fan_out)))"),
        Initializer(
            "glorot_normal",
            1.0,
            "fan_avg",
            "truncated_normal",
            description="Keras' GlorotNormal: truncated, variance 2/(fan_in+fan_out)",
        ),
        Initializer(
            "lecun_normal",
            1.0,
            "fan_in",
            "truncated_normal",
            description="Keras' LecunNormal: truncated, variance 1/fan_in",
        ),
        Initializer(
            "torch_default",
            1.0 / 3.0,
            "fan_in",
            "uniform",
            bias="fan_in_uniform",
            description="PyTorch's Linear/Conv default: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)); "
            "bias U(±1/sqrt(fan_in))",
        ),
        Initializer(
            "keras_default",
            1.0,
            "fan_avg",
            "uniform",
            description="Keras' Dense/Conv default: glorot_uniform kernel, zero bias",
        ),
        Initializer(
            "normal_0.01", 0.0, "fan_in", "normal", description="N(0, 0.01^2), the MXNet AlexNet lesson's init"
        ),
    )
}

# Keras' truncated normal keeps |z| <= 2 and rescales so the variance is exact.
_TRUNCATED_STD_CORRECTION = 0.87962566103423978


def host_array(value: object) -> np.ndarray:
    """A parameter as a neutral array: float64 stays float64 (a ``--precision float64`` model's, so its checkpoints
    and exported weights keep every bit), anything else becomes float32."""
    array = np.asarray(value)
    return array.astype(np.float64 if array.dtype == np.float64 else np.float32, copy=True)


def initializer(name: str) -> Initializer:
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise InputError(
            f"Expected an initializer name, one of {sorted(INITIALIZERS)}. Received: init={name!r}. To fix, "
            f"{closest_text(name, sorted(INITIALIZERS), '')}give one of those."
        ) from None


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) the way both frameworks compute them for (kh, kw, in, out) or (in, out).

    For a grouped conv's (kh, kw, in / groups, out) this is PyTorch's rule: fan_in = (in / groups)·kh·kw."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def sample_kernel(init: Initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    if init.name == "normal_0.01":
        return (rng.standard_normal(shape) * 0.01).astype(np.float32)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[init.mode]
    variance = init.scale / max(1.0, fan)
    if init.distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)
    if init.distribution == "normal":
        return (rng.standard_normal(shape) * math.sqrt(variance)).astype(np.float32)
    std = math.sqrt(variance) / _TRUNCATED_STD_CORRECTION
    return (_truncated_standard_normal(shape, rng) * std).astype(np.float32)


def _truncated_standard_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():  # resampling keeps the distribution exact, unlike clipping
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out


def sample_bias(init: Initializer, kernel_shape: tuple[int, ...], units: int, rng: np.random.Generator) -> np.ndarray:
    if init.bias == "fan_in_uniform":
        bound = 1.0 / math.sqrt(fans(kernel_shape)[0])
        return rng.uniform(-bound, bound, size=(units,)).astype(np.float32)
    return np.zeros((units,), dtype=np.float32)


def parameter_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every neutral parameter name with its shape, in model order."""
    infos = infer_shapes(spec)
    shapes: dict[str, tuple[int, ...]] = {}
    for index, layer in enumerate(spec.layers):
        in_shape = infos[spec.inputs_of(index)[0]].shape
        if isinstance(layer, Conv2D):
            # Grouped convs: each filter sees its group's in/groups channels (the neutral layout, spec.Conv2D).
            shapes[f"{layer.name}/kernel"] = (*layer.kernel_size, in_shape[-1] // layer.groups, layer.filters)
            if layer.use_bias:
                shapes[f"{layer.name}/bias"] = (layer.filters,)
        elif isinstance(layer, Dense):
            shapes[f"{layer.name}/kernel"] = (in_shape[-1], layer.units)
            if layer.use_bias:
                shapes[f"{layer.name}/bias"] = (layer.units,)
        elif isinstance(layer, BatchNorm):
            for param in ("gamma", "beta", "moving_mean", "moving_variance"):
                shapes[f"{layer.name}/{param}"] = (in_shape[-1],)
        elif isinstance(layer, Activation) and layer.kind == "prelu":
            shapes[f"{layer.name}/alpha"] = (in_shape[-1],)  # one learned slope per channel / unit
    return shapes


TRAINABLE_PARAMS = ("kernel", "bias", "gamma", "beta", "alpha")


def is_trainable_param(key: str) -> bool:
    return key.rsplit("/", 1)[1] in TRAINABLE_PARAMS


def initial_weights(spec: ModelSpec, init_name: str, seed: int, only: Collection[str] | None = None) -> NeutralWeights:
    """Deterministic initial weights for ``spec`` from the initializer name and the seed.

    ``only``: the names of the layers to draw (default all). Each layer draws from its own generator, keyed by its
    index in ``spec``, so a layer drawn alone gets exactly the values it gets among all the others; a new head on
    VGG16 need not draw the 134 million values of the layers it keeps (seconds and about 0.8 GB of float64)."""
    init = initializer(init_name)
    shapes = parameter_shapes(spec)
    weights: NeutralWeights = {}
    for index, layer in enumerate(spec.layers):
        if only is not None and layer.name not in only:
            continue
        rng = np.random.default_rng([seed, index, INIT_STREAM])
        if isinstance(layer, (Conv2D, Dense)):
            kshape = shapes[f"{layer.name}/kernel"]
            weights[f"{layer.name}/kernel"] = sample_kernel(init, kshape, rng)
            if layer.use_bias:
                weights[f"{layer.name}/bias"] = sample_bias(init, kshape, kshape[-1], rng)
        elif isinstance(layer, BatchNorm):
            n = shapes[f"{layer.name}/gamma"][0]
            weights[f"{layer.name}/gamma"] = np.ones(n, np.float32)
            weights[f"{layer.name}/beta"] = np.zeros(n, np.float32)
            weights[f"{layer.name}/moving_mean"] = np.zeros(n, np.float32)
            weights[f"{layer.name}/moving_variance"] = np.ones(n, np.float32)
        elif isinstance(layer, Activation) and layer.kind == "prelu":
            weights[f"{layer.name}/alpha"] = np.full(shapes[f"{layer.name}/alpha"], PRELU_INIT, np.float32)
    return weights


def check_weights(spec: ModelSpec, weights: NeutralWeights) -> None:
    """Raise if ``weights`` do not fit ``spec`` exactly (names and shapes)."""
    expected = parameter_shapes(spec)
    received = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != received:
        missing = sorted(set(expected) - set(received))
        extra = sorted(set(received) - set(expected))
        wrong = sorted(k for k in set(expected) & set(received) if expected[k] != received[k])
        raise InputError(
            f"Expected neutral weights matching model {spec.name!r}. Received: missing={missing}, "
            f"unexpected={extra}, wrong shapes={[(k, received[k], expected[k]) for k in wrong]}. "
            "To fix, use weights saved for this very network (a checkpoint xfbench wrote for it), or draw new ones "
            "with harness.weights.initial_weights(spec, ...)."
        )


def count_parameters(spec: ModelSpec, groups: tuple[str, ...] | None = None) -> int:
    """Trainable-parameter count, optionally restricted to some layer groups."""
    layer_group = {l.name: l.group for l in spec.layers}
    total = 0
    for key, shape in parameter_shapes(spec).items():
        if not is_trainable_param(key):
            continue
        if groups is not None and layer_group[key.split("/")[0]] not in groups:
            continue
        total += int(np.prod(shape))
    return total
