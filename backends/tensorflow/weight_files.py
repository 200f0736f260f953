"""Keras weight files in a weights worker (harness.weights_worker): keras.applications' ImageNet weights found and
fetched through ``keras.utils.get_file`` (as the applications call it), a user's ``.weights.h5`` checked tensor by
tensor against the architecture, then converted to neutral weights (backends/tensorflow/importer.py).

The applications download ``<cache_dir>/models/<fname>``; xfbench passes ``cache_dir=<weights home>/keras``.
Weights whose application's ``preprocess_input`` is Caffe's (BGR: ResNet50/101/152, VGG16/19) take RGB after
conversion: the channel order is folded into the first convolution's kernel, so the input pipeline's per-channel
normalisation is all that runs in front. The fold follows the weights (harness.pretrained.weights_read_bgr: a named
weight set's convention; a python: factory's, the trial's --normalize caffe), never otherwise the trial's
``--normalize``, which only chooses what the pipeline subtracts and divides by.
"""

from __future__ import annotations

import functools
import importlib
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from backends.tensorflow import importer
from backends.tensorflow.framework import keras
from harness.errors import InputError
from harness.importers import closest_names
from harness.pretrained import (
    KERAS_SIZES,
    WeightsRef,
    channels_error,
    check_finite,
    nonfinite_fix,
    refetch_hint,
)
from harness.spec import ModelSpec
from harness.truncated_weights import check_hdf5, hdf5_end_of_file
from harness.weight_files import BadWeightsError, Fit, check_tensor_shapes, input_size_hint
from harness.weights_fit import keras_name

SOURCE = "keras.applications"
# Keras' downloader; imported after framework.py has imported Keras (its first import in a worker).
file_utils: Any = importlib.import_module("keras.src.utils.file_utils")
_GET_FILE = file_utils.get_file  # the real one, kept before resolve() looks at the applications' calls


class _Asked(Exception):
    """Raised by the stand-in get_file once an application has said which file it wants."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("asked")
        self.kwargs = kwargs


def _factory(name: str) -> Any:
    factory = getattr(keras.applications, name, None)
    if not callable(factory):
        names = importer.application_names()
        raise InputError(
            f"Expected a keras.applications model name. Received: {name!r}, not one of them. "
            f"{closest_names(name, names)}"
        )
    return factory


def _asked(name: str) -> dict[str, Any]:
    """The get_file arguments keras.applications.NAME(weights='imagenet') uses, without downloading."""

    def stand_in(fname: str | None = None, origin: str | None = None, **kwargs: Any) -> str:
        raise _Asked({"fname": fname, "origin": origin, **kwargs})

    size = KERAS_SIZES.get(name, 224)
    file_utils.get_file = stand_in
    try:
        _factory(name)(weights="imagenet", input_shape=(size, size, 3))
    except _Asked as asked:
        return asked.kwargs
    finally:
        file_utils.get_file = _GET_FILE
    raise InputError(
        f"Expected keras.applications.{name} to download its weights. Received: it asked for none. To fix, pick an "
        "application that publishes ImageNet weights, or pass a file of your own with --weights."
    )


def resolve(ref: dict[str, str], home: Path) -> dict[str, Any]:
    asked = _asked(ref["name"])
    folder = home / "keras" / asked.get("cache_subdir", "datasets")
    return {
        "file": str(folder / asked["fname"]),
        "url": asked["origin"],
        "weight_set": "imagenet",
        "classes": 1000,
        "expected_digest": _expected_digest(ref["name"], asked),  # the run checks it in its pass over the file
    }


def _expected_digest(name: str, asked: dict[str, Any]) -> dict[str, str] | None:
    """The digest keras.applications.NAME passes get_file (an md5 for most; MobileNet and MobileNetV2 pass none),
    with the algorithm get_file's ``resolve_hasher`` picks for it: get_file checks it only when it downloads, or
    when a fetch finds the file already there (and downloads it again)."""
    value = asked.get("file_hash") or asked.get("md5_hash")
    if not value:
        return None
    algorithm = str(asked.get("hash_algorithm", "auto")) if asked.get("file_hash") else "md5"
    if algorithm == "auto":
        algorithm = "sha256" if len(value) == 64 else "md5"
    source = f"the {algorithm} keras.applications.{name} passes get_file"
    return {"algorithm": algorithm, "value": str(value).lower(), "source": source}


def fetch(ref: dict[str, str], home: Path) -> dict[str, Any]:
    """Download through Keras' own get_file, with the arguments (and hash, when given) the application uses."""
    asked = _asked(ref["name"])
    _GET_FILE(**{**asked, "cache_dir": str(home / "keras")})
    return resolve(ref, home)


def check_convertible(ref: dict[str, str]) -> None:
    """The application converts to the neutral spec at its weights' size (checked before a download)."""
    shape = (KERAS_SIZES.get(ref["name"], 224),) * 2 + (3,)
    importer.convert(_build(ref["name"], shape, 1000), shape, ref["name"])


def _snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how .weights.h5 names a layer of a model's layer list."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _tensor_names(model: keras.Model) -> dict[str, str]:
    """.weights.h5 path ("layers/conv2d_3/vars/0") -> the variable's own path ("Conv1/kernel")."""
    used: dict[str, int] = {}
    names: dict[str, str] = {}
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        key = base if used[base] == 0 else f"{base}_{used[base]}"
        for index, variable in enumerate(layer.weights):
            names[f"layers/{key}/vars/{index}"] = variable.path
    return names


def _datasets(path: Path) -> dict[str, tuple[int, ...]]:
    found: dict[str, tuple[int, ...]] = {}
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(
                lambda n, o: found.__setitem__(n, tuple(o.shape)) if isinstance(o, h5py.Dataset) else None
            )
    except OSError as exc:
        raise BadWeightsError(
            f"Expected a Keras .weights.h5 (HDF5) file in {path.name}. Received: {str(exc)[:200]} (truncated or "
            "not HDF5). To fix, save it with model.save_weights('name.weights.h5')."
        ) from None
    return found


def _expected(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """The architecture's tensors as Keras itself writes them (saved to a scratch file, then read back)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "expected.weights.h5"
        model.save_weights(path)
        return _datasets(path)


def _check_cut(path: Path, model: keras.Model, fix: str) -> None:
    """A file shorter than its HDF5 superblock says: named by the tensor whose bytes are missing, found in the
    architecture's own .weights.h5 (Keras lays out the same architecture the same way; legacy .h5: unnamed)."""
    with open(path, "rb") as handle:
        end = hdf5_end_of_file(handle.read(128))
    if end is None or path.stat().st_size >= end:
        return
    labels = {key: f"{variable} ({key})" for key, variable in _tensor_names(model).items()}
    with tempfile.TemporaryDirectory() as scratch:
        reference = Path(scratch) / "expected.weights.h5"
        model.save_weights(reference)
        check_hdf5(path, fix, reference if path.name.endswith(".weights.h5") else None, labels)


def _build(name: str, shape: tuple[int, ...], classes: int) -> keras.Model:
    return importer.build_application(_factory(name), name, shape, classes)


def load_into_architecture(request: dict[str, Any], path: Path) -> keras.Model:
    name = keras_name(request["model"])
    shape = tuple(request["input_shape"])
    model = _build(name, shape, 1000)
    _check_cut(path, model, refetch_hint(WeightsRef(**request["ref"])))
    if not path.name.endswith(".weights.h5"):  # a legacy full .h5 (the applications' downloads): Keras checks it
        ref = WeightsRef(**request["ref"])
        return _load_legacy(model, path, lambda: _build(name, (*shape[:-1], 3), 1000), request["model"], ref)
    received = _datasets(path)
    names = _tensor_names(model)
    head = [key for key, var in names.items() if var.endswith("/kernel")][-1]
    if head in received and len(received[head]) == 2 and received[head][1] != 1000:
        model = _build(name, shape, received[head][1])
    expected = _expected(model)
    names = _tensor_names(model)
    _check_channels(expected, received, names, path.name, shape)
    label = {key: f"{names[key]} ({key})" if key in names else key for key in set(expected) | set(received)}
    check_tensor_shapes(
        {label[k]: v for k, v in expected.items()},
        {label[k]: v for k, v in received.items()},
        path.name,
        name,
        lambda: _alpha_fit(name, shape, int(model.outputs[0].shape[-1]), received),
    )
    model.load_weights(path)
    return model


# keras.applications' networks with a width (alpha), at the alphas Keras publishes their ImageNet weights for (the
# alphas a file of one is likely saved at); xfbench builds every application at alpha 1 (harness.weights_fit: no
# model option reaches a Keras file's network)
_ALPHAS = {"MobileNet": (0.25, 0.5, 0.75), "MobileNetV2": (0.35, 0.5, 0.75, 1.3, 1.4)}


def _alpha_fit(name: str, shape: tuple[int, ...], classes: int, received: dict[str, tuple[int, ...]]) -> Fit | None:
    """The alpha a file of MobileNet or MobileNetV2 was saved at, where the file fits the application at that alpha
    tensor for tensor: without it, the user was told to pass the matching --model and options, none of which sets
    alpha. Each alpha tried builds the application (about a second), on the way to a refusal only."""
    for alpha in _ALPHAS.get(name, ()):
        built = importer.build_application(functools.partial(_factory(name), alpha=alpha), name, shape, classes)
        if _expected(built) == received:
            return Fit(
                f"keras.applications.{name} saved with alpha={alpha:g}, and xfbench builds the applications at alpha "
                "1 only (no option reaches Keras' alpha)",
                f"start from a {name} file saved at alpha=1, or drop --weights and train the zoo's mobilenet_v2 at "
                f"that width in xfbench (--model mobilenet_v2 --width-multiplier {alpha:g})",
            )
    return None


def _check_channels(
    expected: dict[str, tuple[int, ...]],
    received: dict[str, tuple[int, ...]],
    names: dict[str, str],
    file_name: str,
    shape: tuple[int, ...],
) -> None:
    """The file's first convolution takes the inputs' channels (its kernel's third axis): otherwise the trial's
    --input-channels is what to change, which the tensor check would not say."""
    first = next((k for k in names if names[k].endswith("/kernel") and len(expected.get(k, ())) == 4), None)
    if first is None or len(received.get(first, ())) != 4 or len(shape) != 3:
        return
    takes = received[first][2]
    if expected[first][2] == shape[-1] and takes != shape[-1]:
        raise channels_error(file_name, takes, shape[-1])


def _load_legacy(model: keras.Model, path: Path, rgb: Any, given_as: str, ref: WeightsRef) -> keras.Model:
    """A legacy .h5 loaded by Keras itself; when it does not fit, whether it would fit the architecture built for
    three channels (``rgb``: that model), so that the trial's channels are named rather than a layer. ``given_as``:
    the --model the user gave; ``ref``: whose file it is (a zoo's is fetched again)."""
    try:
        model.load_weights(path)
    except Exception as exc:  # Keras names the layer whose weights do not fit
        channels = model.inputs[0].shape[-1]
        if channels != 3 and _loads(rgb(), path):
            raise channels_error(path.name, 3, channels) from None
        raise _legacy_refusal(model, path, given_as, ref, exc) from None
    return model


def _legacy_refusal(model: keras.Model, path: Path, given_as: str, ref: WeightsRef, exc: Exception) -> BadWeightsError:
    """Keras' refusal of a legacy .h5 in xfbench's words: a legacy file holds the 1000-class head keras.applications
    saves (its layout has no room to say another), so a file of another class count is told the format that loads
    with any (.weights.h5); any other misfit, the --model the file was saved from, or a zoo's file fetched again."""
    classes = _legacy_head_classes(str(exc), model)
    stem = path.name.removesuffix(".h5")
    resave = f"model.save_weights('{stem}.weights.h5') (a .weights.h5 loads with any number of classes)"
    if classes is not None:
        found = f"a head of {classes} classes (Keras: {exc})"
        fix = f"load the file into its network in Keras and save it with {resave}"
    else:
        found = f"Keras refused it: {exc}"
        fix = f"pass the --model keras:NAME the file was saved from, or save it from its network in Keras with {resave}"
    hint = _legacy_input_size_hint(exc)
    if ref.kind != "file":  # --model is the weight set's own (harness.weights_fit): the input size, or a damaged file
        fix = "give the --input-size the weights were saved at (their default: 224 for VGG16 and VGG19)"
        fix, hint = (fix if hint else refetch_hint(ref)), ""
    return BadWeightsError(
        f"Expected a legacy Keras .h5 (weights only, with the 1000-class head keras.applications saves) that fits "
        f"--model {given_as} in {path.name}. Received: {found}. To fix, {fix}.{hint}"
    )


def _legacy_head_classes(message: str, model: keras.Model) -> int | None:
    """The class count of the file's head where Keras' refusal is of the model's last layer ("Shape mismatch in
    layer #104 (named predictions) ... Weight expects shape (1280, 1000). Received saved weight with shape
    (1280, 10)"); None for any other refusal."""
    named = re.search(r"\(named ([^)]+)\)", message)
    shapes = re.search(r"expects shape \(([\d, ]+)\)\. Received saved weight with shape \(([\d, ]+)\)", message)
    if named is None or shapes is None or named.group(1) != model.layers[-1].name:
        return None
    expected, received = (tuple(int(n) for n in group.split(",") if n.strip()) for group in shapes.groups())
    if expected[-1:] != (1000,) or received[:-1] != expected[:-1]:
        return None
    return received[-1]


def _legacy_input_size_hint(exc: Exception) -> str:
    """weight_files.input_size_hint for Keras' own words: "Weight expects shape (144, 5). Received saved weight
    with shape (784, 5)" (a legacy .h5, VGG16's as keras.applications downloads it, loaded by Keras itself)."""
    found = re.search(r"expects shape \(([\d, ]+)\)\. Received saved weight with shape \(([\d, ]+)\)", str(exc))
    if found is None:
        return ""
    expected, received = (tuple(int(n) for n in group.split(",") if n.strip()) for group in found.groups())
    return input_size_hint(expected, received)


def _loads(model: keras.Model, path: Path) -> bool:
    try:
        model.load_weights(path)
    except Exception:  # any refusal: the file does not fit this one either
        return False
    return True


def layer_outputs(model: keras.Model, x: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Each Keras layer's output under the spec layer holding it (a layer's activation is its own spec layer)."""
    names = {layer.name for layer in spec.layers}
    chosen = [(f"{l.name}_activation" if f"{l.name}_activation" in names else l.name, l) for l in model.layers[1:]]
    chosen = [(spec_name, l) for spec_name, l in chosen if spec_name in names]
    tap = keras.Model(model.inputs, [l.output for _, l in chosen])
    values = tap(x, training=False)
    return {name: np.asarray(v, np.float32) for (name, _), v in zip(chosen, values, strict=True)}


def convert(request: dict[str, Any], x: np.ndarray) -> tuple[ModelSpec, dict[str, np.ndarray], dict[str, Any]]:
    path = Path(request["file"])
    model = load_into_architecture(request, path)
    check_finite(((v.path, v.numpy()) for v in model.weights), path.name, nonfinite_fix(WeightsRef(**request["ref"])))
    spec, weights = importer.convert(model, tuple(request["input_shape"]), request["meta"]["weights"])
    probe = {"x": x, "logits": importer.reference_logits(model, x), "layers": layer_outputs(model, x, spec)}
    return replace(spec), weights, probe
