"""The conversion process: ``python -m harness.import_worker REQUEST_JSON OUT.npz``.

It imports only the source framework: the backend named by the reference's prefix, or, for a user's factory, the
backend whose framework the returned model belongs to (told by the model's class, before any importer loads).
A user's module is imported under each backend's ``user_module_env`` (harness.backend: Keras on TensorFlow), whatever
the user's $KERAS_BACKEND or keras.json names for their own work.
On an unsupported layer it writes OUT.error.json with the details and exits 3; on a request the model cannot take
(ModelInputError) OUT.input-error.json with the message, and exits 4; the parent raises either. An exception raised
while importing a user's module or calling their factory is theirs to fix: a ModelInputError naming their file and
line. Any other failure writes OUT.failure.json (the exception, and the user's frame it passed through if any) and
exits 5: the parent words it as a request the model could not take.

A ``python:`` model's checkpoint records the user's source files the conversion imported, with their digests
(harness.user_code), so that the parent serves it only while none of them has changed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import reprlib
import sys
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

import numpy as np

from harness.backend import REGISTRY, backend_entry, backend_of_package, importer_backends, load_backend
from harness.checkpoints import save_checkpoint
from harness.config import RuntimeOptions
from harness.importers import FrameworkImporter, ModelInputError, UnsupportedModelError
from harness.pretrained import TOLERANCE_RULE
from harness.scoped_env import scoped_environment
from harness.shapes import LayerShapeError
from harness.spec import ModelSpec
from harness.user_code import describe_exception, describe_frame, imported_user_sources, user_frame
from harness.weights import NeutralWeights
from harness.weights_worker import PROBE_BATCH, probe_batch, tolerance

# The classes a factory that requires num_classes is built with where the request leaves them to the factory
# (`xfbench model python:...` without --classes): ImageNet's, as a torchvision: or keras: model is shown.
REQUIRED_CLASSES_DEFAULT = 1000


def _user_model(name: str, num_classes: int | None) -> object:
    module_name, function = name.split(":")
    module = importlib.import_module(module_name)
    fix = f"To fix, name the function (or class) that returns the model: python:{module_name}:FUNCTION."
    if not hasattr(module, function):
        raise ModelInputError(
            f"Expected a function {function!r} in module {module_name!r}. Received: the module has no "
            f"{function!r}. {fix}"
        )
    factory = getattr(module, function)
    if not callable(factory):
        raise ModelInputError(
            f"Expected a function {function!r} in module {module_name!r}. Received: {type(factory).__name__} "
            f"{reprlib.repr(factory)}. {fix}"
        )
    parameters = _signature_parameters(factory)
    required = [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    extra = [p for p in required if p != "num_classes"]
    if extra:
        raise ModelInputError(
            f"Expected python:{name} to be callable with no arguments or with num_classes only. Received: a "
            f"callable that also requires {', '.join(extra)}. To fix, give those parameters defaults or wrap it "
            "in a function that takes at most num_classes."
        )
    classes = next((p for p in parameters if p.name == "num_classes"), None)
    if classes is None or (num_classes is None and classes.default is not classes.empty):
        return factory()  # none asked for (None): the factory's own default
    if num_classes is None:
        num_classes = REQUIRED_CLASSES_DEFAULT
    if classes.kind is inspect.Parameter.POSITIONAL_ONLY:
        return factory(num_classes)
    return factory(num_classes=num_classes)


def built_user_model(name: str, num_classes: int | None) -> object:
    """The factory's model. Importing the module and calling the factory run only the user's code (and what it
    calls): an exception there is a fault in that code, named where it arose, not a request to change the input."""
    try:
        return _user_model(name, num_classes)
    except ModelInputError:
        raise
    except (Exception, SystemExit) as exc:  # SystemExit: a module that calls sys.exit() when imported
        module = name.split(":")[0]
        frame = user_frame(exc)
        where = (
            f"raised at {describe_frame(frame)}. To fix, correct that code in {Path(frame.filename).name}"
            if frame is not None
            else f"raised in module {module!r} or what it imports (no frame in your own files). To fix, correct "
            f"it; `python -c 'import {module}'` shows the whole traceback"
        )
        given = "its default num_classes" if num_classes is None else f"num_classes={num_classes}"
        raise ModelInputError(
            f"Expected python:{name} to import and return a model when called (with {given} where it takes that "
            f"argument). Received: {describe_exception(exc)}, {where}."
        ) from exc


def _signature_parameters(factory: Callable[..., object]) -> tuple[inspect.Parameter, ...]:
    try:
        return tuple(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: call them as they are
        return ()


def _importer(backend: str) -> FrameworkImporter:
    # A module is checked against the protocol only when mypy knows which module it is; this one is named at run time.
    return cast(FrameworkImporter, importlib.import_module(backend_entry(backend).importer_module))


def _frameworks_on_their_backends() -> AbstractContextManager[None]:
    """Every backend's ``user_module_env`` set while a user's module is imported and its factory runs. Keras picks
    its backend once, when first imported, from $KERAS_BACKEND over keras.json's "backend": a user's module that
    imports keras before backends/tensorflow does (backends/tensorflow/framework.py) got the user's own (torch,
    jax), so the conversion failed in that backend's ops, told to change the input size, and torch was imported
    beside TensorFlow. Restored afterwards, as framework.py restores it."""
    return scoped_environment(dict(pair for entry in REGISTRY.values() for pair in entry.user_module_env))


def _class_backend(cls: type) -> str | None:
    """The backend of the framework that ``cls`` (or a base class: a user's subclass of a framework model lives in
    the user's package) comes from."""
    backend = None
    for base in cls.__mro__:
        backend = backend_of_package(base.__module__.split(".")[0]) or backend
    return backend


def _backend_for(model: object) -> str:
    """The backend whose framework the model's class comes from."""
    kinds = " or ".join(entry.model_kind for entry in REGISTRY.values() if entry.model_packages)
    if isinstance(model, type):  # `return Net`: told "builtins.type", not that it is the class itself
        name = model.__qualname__
        fix = (
            f"return an instance of it: {name}(num_classes), or {name}() where it takes no arguments"
            if _class_backend(model) is not None
            else "return the model the function builds"
        )
        raise ModelInputError(
            f"Expected the factory to return {kinds}. Received: the class {model.__module__}.{name} itself, not "
            f"an instance. To fix, {fix}."
        )
    backend = _class_backend(type(model))
    if backend is None:
        raise ModelInputError(
            f"Expected the factory to return {kinds}. Received: {type(model).__module__}.{type(model).__name__}"
            f"{' (does the function end with `return model`?)' if model is None else ''}. To fix, return the model "
            "the function builds."
        )
    return backend


def _channel_fix(kind: str, wanted: int, given: int) -> str:
    fixes = []
    if given == 1:
        fixes.append(
            f"feed it {wanted} (--input-channels {wanted}, for xfbench run and xfbench model: grayscale images are "
            "replicated)"
        )
    else:  # a run's channels are its data's; xfbench model's are --input-channels'
        fixes.append(f"use data with {wanted} channels (xfbench model: --input-channels {wanted})")
    # a user's factory can be changed; a published architecture (torchvision:, keras:) cannot
    fixes.append(f"build the model for {given}" if kind == "python" else f"choose a model built for {given}")
    return ", or ".join(fixes)


def convert(request: dict, out: Path) -> None:
    ref = request["ref"]
    shape, seed = tuple(request["input_shape"]), int(request["seed"])
    # None: the factory's own default (a user's factory shown by `xfbench model` without --classes)
    classes = None if request["num_classes"] is None else int(request["num_classes"])
    if ref["kind"] == "python":
        with _frameworks_on_their_backends():  # only Keras reads it: a torch factory builds as it would anyway
            model = built_user_model(ref["name"], classes)
        backend = _backend_for(model)
        importer = _importer(backend)
    else:
        backend = importer_backends()[ref["kind"]]
        importer = _importer(backend)
        model = importer.load_reference(ref["name"], shape, classes or REQUIRED_CLASSES_DEFAULT, seed)
    label = ref["name"] if ref["kind"] == "python" else f"{ref['kind']}:{ref['name']}"
    importer.check_form(model)
    channels = importer.input_channels(model)
    if channels is not None and len(shape) == 3 and channels != shape[-1]:
        raise ModelInputError(
            f"Expected inputs with the {channels} channels that model {label} takes. Received: inputs with "
            f"{shape[-1]}. To fix, {_channel_fix(ref['kind'], channels, shape[-1])}."
        )
    try:
        spec, weights = importer.convert(model, shape, label)
    except UnsupportedModelError as refused:
        if ref["kind"] == "python":  # the user's own model, which they can change
            raise
        raise refused.for_published(label, importer.CONVERTING_MODELS) from None
    _check_against_source(importer, model, backend, spec, weights, label)
    # taken once the model is built and traced: every module of theirs the factory or the forward imported
    sources = imported_user_sources() if ref["kind"] == "python" else {}
    save_checkpoint(out, spec, weights, {"converted_from": label, "request": request, "user_sources": sources})


def _check_against_source(
    importer: FrameworkImporter, model: object, backend: str, spec: ModelSpec, weights: NeutralWeights, label: str
) -> None:
    """The converted network, built by the source framework's own backend in this process, computes the model's own
    logits on the probe batch: what the converter cannot see (code that changes weights inside forward, an op it
    maps wrongly) is refused here instead of training another network in both backends."""
    x = probe_batch(spec.input_shape)
    reference = np.asarray(importer.reference_logits(model, x), dtype=np.float64)
    network = load_backend(backend, RuntimeOptions(threads=1))
    network.build(spec, weights, seed=0)
    gap = float(np.max(np.abs(network.predict_logits(x, PROBE_BATCH) - reference)))
    bound = tolerance(reference)
    if not gap <= bound:  # a NaN gap is no pass
        raise ModelInputError(
            f"Expected xfbench's network converted from model {label} to compute the model's own logits within "
            f"{bound:.3g} ({TOLERANCE_RULE}) on a probe batch, in {backend}. Received: a gap of "
            f"{gap:.3g} (max |logit| {float(np.max(np.abs(reference))):.3g}). To fix, look in the model for what a "
            "conversion cannot see: an in-place update of a tensor that is read again afterwards (torch's `x += y` "
            "or `x.add_(y)` where the old x is used later, which torch.fx traces as a new tensor: write x = x + y), "
            "code in forward/call that changes or recomputes weights, a hook; if there is none, report it with the "
            "model: the conversion of one of its layers is wrong."
        )


def main(argv: list[str]) -> int:
    request, out = json.loads(argv[0]), Path(argv[1])
    try:
        convert(request, out)
    except UnsupportedModelError as exc:
        out.with_suffix(".error.json").write_text(
            json.dumps(
                {
                    "source": exc.source,
                    "op": exc.op,
                    "location": exc.location,
                    "supported": list(exc.supported),
                    "hint": exc.hint,
                }
            )
        )
        return 3
    except ModelInputError as exc:
        out.with_suffix(".input-error.json").write_text(json.dumps({"message": str(exc)}))
        return 4
    except Exception as exc:
        traceback.print_exc()  # the whole story on the process's error output, for a fault in xfbench itself
        frame = user_frame(exc)
        at = describe_frame(frame) if frame is not None else ""
        out.with_suffix(".failure.json").write_text(json.dumps({"error": _failure_text(exc), "at": at}))
        return 5
    return 0


def _failure_text(exc: Exception) -> str:
    """The failure as the parent words it, whose own fix is the input size: a converted graph's shape failure
    without its "edit the spec" fix (the spec is the conversion's, not the user's to edit), which came beside it."""
    if isinstance(exc, LayerShapeError):
        return " ".join(f"{type(exc).__name__}: {exc.fault}".split())
    return describe_exception(exc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
