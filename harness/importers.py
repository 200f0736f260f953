"""What every framework importer provides, and the one error an import raises.

A framework model (a torchvision or user ``nn.Module``, a ``keras.applications`` or user Keras model) enters
xfbench as a neutral :class:`~harness.spec.ModelSpec` plus neutral weights, converted inside a process of the
source framework only (one framework per process). Each backend that can import ships
``backends/<name>/importer.py`` implementing :class:`FrameworkImporter` as module-level functions; the harness
finds it by backend name and never imports the framework itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from harness.errors import InputError
from harness.shapes import infer_shapes
from harness.spec import Activation, BatchNorm, Dense, ModelSpec
from harness.weights import NeutralWeights, check_weights, parameter_shapes


class UnsupportedModelError(InputError):
    """A framework model uses a layer or op the neutral spec cannot express (or an option of one it cannot)."""

    def __init__(self, source: str, op: str, location: str, supported: Sequence[str], hint: str = "") -> None:
        self.source = source
        self.op = op
        self.location = location
        self.supported = tuple(supported)
        self.hint = hint
        super().__init__(
            f"Expected a {source} model built from layers xfbench's neutral spec supports. "
            f"Received: {op} at {location!r}. Supported: {', '.join(self.supported)}."
            + (f" {hint}" if hint else " Replace that layer, or express it with the supported ones.")
        )


class ModelInputError(InputError):
    """The conversion process's own account of a request the model cannot take (its channels, a factory that is
    not one): passed to the user as it is, where any other failure in that process is wrapped with the model, the
    input and the classes it was built for."""


def closest_names(name: str, names: list[str]) -> str:
    """The names nearest ``name`` (its case-insensitive twin first), for an error naming a model that is not there."""
    twin = [n for n in names if n.lower() == name.lower()]
    near = twin + [n for n in difflib.get_close_matches(name, names, n=4, cutoff=0.5) if n not in twin]
    if near:
        return f"Did you mean {', '.join(near[:4])}?"
    return f"Valid choices include: {', '.join(names[:8])} ({len(names)} in all)."


def check_converted_weights(spec: ModelSpec, weights: NeutralWeights) -> None:
    """A converted model's weights against the spec inferred for the requested input. A Dense layer whose kernel
    takes another number of inputs was written for another input size (a Linear(64, ...) after Flatten meets 9x9
    images), as is a BatchNorm or PReLU on a flattened map that holds another number of features: that is the
    user's request, said in their terms, with the square input size that gives the weights held where one does.
    Any other mismatch would be a converter fault (check_weights)."""
    expected = parameter_shapes(spec)
    wrong = {k: tuple(v.shape) for k, v in weights.items() if k in expected and v.shape != expected[k]}
    input_sized = {k: has for k, has in wrong.items() if _follows_input_size(spec, k, has, expected[k])}
    if input_sized:  # the features a layer meets are what the input size gives it: the user's request
        name, has = next(iter(input_sized.items()))
        size = "x".join(str(n) for n in spec.input_shape)
        built_for = _square_size_holding(spec, input_sized)
        fix = (
            f"give the input size the model was built for: --input-size {built_for} ({built_for}x{built_for}x"
            f"{spec.input_shape[-1]} gives the weights it holds)."
            if built_for is not None
            else "give the input size and channels the model was written for (--input-size, --input-channels)."
        )
        raise ModelInputError(
            f"Expected model {spec.name} to take inputs of {size}. Received: its layer {name.split('/')[0]!r} holds "
            f"weights of shape {has} ({name}), where an input of {size} needs {expected[name]}. To fix, {fix}"
        )
    check_weights(spec, weights)


def _follows_input_size(spec: ModelSpec, key: str, has: tuple[int, ...], needs: tuple[int, ...]) -> bool:
    """Whether a weight of the wrong shape is one whose shape the input size decides: a Dense kernel's rows (its
    outputs agree), or the per-feature vector of a BatchNorm or PReLU on a flattened feature map."""
    layer = spec.layer(key.split("/")[0])
    if isinstance(layer, Dense):
        return key.endswith("/kernel") and len(has) == len(needs) == 2 and has[1] == needs[1]
    if isinstance(layer, (BatchNorm, Activation)) and len(has) == 1:
        return infer_shapes(spec)[layer.name].flattened_from is not None  # shape-preserving: its input's origin
    return False


# The largest square input the search for the size a model was built for tries (EfficientNet-B7's 600 fits).
_LARGEST_SEARCHED_SIZE = 1024


def _square_size_holding(spec: ModelSpec, held: dict[str, tuple[int, ...]]) -> int | None:
    """The smallest square input size (the spec's channels) for which every weight in ``held`` has the shape it
    holds; None where none up to _LARGEST_SEARCHED_SIZE does. A flattened map's features never shrink as the input
    grows (floor((s + 2p - k) / stride) + 1 per conv or pool), so the search stops once they exceed the held."""
    if len(spec.input_shape) != 3:
        return None
    first, first_held = next(iter(held.items()))
    for size in range(1, _LARGEST_SEARCHED_SIZE + 1):
        try:
            shapes = parameter_shapes(replace(spec, input_shape=(size, size, spec.input_shape[-1])))
        except InputError:  # too small for a kernel or a pool: a larger one may fit
            continue
        if all(shapes.get(k) == v for k, v in held.items()):
            return size
        if shapes[first][0] > first_held[0]:
            return None
    return None


class FrameworkImporter(Protocol):
    """Module-level functions of ``backends/<name>/importer.py``."""

    def load_reference(self, name: str, input_shape: tuple[int, int, int], num_classes: int, seed: int) -> object:
        """The framework's own model NAME with random weights drawn from ``seed``, for (H, W, C) inputs and
        ``num_classes`` outputs (logits: no final softmax)."""
        ...

    def check_form(self, model: object) -> None:
        """Refuses, as ModelInputError, what the conversion cannot take about the model as a whole (its layout, the
        dtype and device of its parameters), before its layers are read: else its channels or its shapes were
        blamed."""
        ...

    def input_channels(self, model: object) -> int | None:
        """The image channels ``model`` takes, or None where its input is not an image (checked before converting,
        so a mismatch is named as such rather than as a weight of the wrong shape)."""
        ...

    def convert(self, model: object, input_shape: tuple[int, int, int], name: str) -> tuple[ModelSpec, NeutralWeights]:
        """The neutral spec and weights of ``model`` for (H, W, C) inputs; raises UnsupportedModelError."""
        ...

    def reference_logits(self, model: object, x: np.ndarray) -> np.ndarray:
        """The framework's own inference forward (eval mode) on NHWC float32 ``x``: logits, float32."""
        ...
