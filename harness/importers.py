"""What every framework importer provides, and the one error an import raises.

A framework model (a torchvision or user ``nn.Module``, a ``keras.applications`` or user Keras model) enters
xfbench as a neutral :class:`~harness.spec.ModelSpec` plus neutral weights, converted inside a process of the
source framework only (one framework per process). Each backend that can import ships
``backends/<name>/importer.py`` implementing :class:`FrameworkImporter` as module-level functions; the harness
finds it by backend name and never imports the framework itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Protocol

import numpy as np

from harness.errors import InputError
from harness.shapes import infer_shapes
from harness.spec import Activation, BatchNorm, Dense, ModelSpec
from harness.weights import NeutralWeights, check_weights, parameter_shapes

# The fix a refusal without a hint of its own gives: the user's own model (python:) can be changed
DEFAULT_FIX = "To fix, replace that layer with a supported one, or express it with the supported ones."


class UnsupportedModelError(InputError):
    """A framework model uses a layer or op the neutral spec cannot express (or an option of one it cannot).
    ``hint`` is the refusal's "To fix, ..." (DEFAULT_FIX where empty)."""

    def __init__(self, source: str, op: str, location: str, supported: Sequence[str], hint: str = "") -> None:
        self.source = source
        self.op = op
        self.location = location
        self.supported = tuple(supported)
        self.hint = hint
        super().__init__(
            f"Expected a {source} model built from layers xfbench's neutral spec supports. "
            f"Received: {op} at {location!r}. Supported: {', '.join(self.supported)}. {hint or DEFAULT_FIX}"
        )

    def __reduce__(self) -> tuple[type[UnsupportedModelError], tuple[str, str, str, tuple[str, ...], str]]:
        # an exception pickles as its class called with self.args (the message alone), which this __init__ does
        # not take: unpickled (from a Ray worker, a process pool) it raised TypeError in place of the refusal
        return type(self), (self.source, self.op, self.location, self.supported, self.hint)

    def for_published(self, reference: str, converting: Sequence[str]) -> UnsupportedModelError:
        """The same refusal for a published architecture (``torchvision:NAME``, ``keras:NAME``), whose layers no one
        can change: told to replace a layer of it, or given an edit's hint, the user could do neither. Its fix names
        the models that convert instead."""
        examples = f" or a published one that converts ({', '.join(converting)})" if converting else ""
        return UnsupportedModelError(
            self.source,
            self.op,
            self.location,
            self.supported,
            f"To fix, choose another model: {reference} cannot be imported, and as a published architecture it "
            f"cannot be changed; use a zoo model (xfbench list models){examples}.",
        )


class ModelInputError(InputError):
    """The conversion process's own account of a request the model cannot take (its channels, a factory that is
    not one): passed to the user as it is, where any other failure in that process is wrapped with the model, the
    input and the classes it was built for."""


@contextmanager
def layer_settings_checked() -> Iterator[None]:
    """A layer the conversion builds with a setting the spec refuses (nn.Dropout(p=1.0), a BatchNorm momentum above
    1): the spec's own refusal, which names the layer and the fix, passed to the user as the model's to change. As
    any other exception of the conversion it was worded as a request the input size, channels or classes could fix."""
    try:
        yield
    except (UnsupportedModelError, ModelInputError):
        raise
    except InputError as refused:
        raise ModelInputError(str(refused)) from None


def closest_names(name: str, names: list[str]) -> str:
    """The fix for an error naming a model that is not there: the names nearest ``name`` (its case-insensitive twin
    first), else the first few names."""
    twin = [n for n in names if n.lower() == name.lower()]
    near = twin + [n for n in difflib.get_close_matches(name, names, n=4, cutoff=0.5) if n not in twin]
    if near:
        return f"To fix, give a name it knows, such as the closest: {', '.join(near[:4])}."
    return f"To fix, give a name it knows, such as {', '.join(names[:8])} ({len(names)} in all)."


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
    """Module-level functions of ``backends/<name>/importer.py``, and the published models (``PREFIX:NAME``) its
    conversion is measured on (benchmarks/import_parity.py), which a refusal of another published one names."""

    CONVERTING_MODELS: tuple[str, ...]

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
