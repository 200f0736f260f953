"""The conversion process: ``python -m harness.import_worker REQUEST_JSON OUT.npz``.

It imports only the source framework: the backend named by the reference's prefix, or, for a user's factory, the
backend whose framework the returned model belongs to (told by the model's class, before any importer loads).
On an unsupported layer it writes OUT.error.json with the details and exits 3; the parent raises them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType

from harness.backend import REGISTRY, backend_entry, backend_of_package, importer_backends
from harness.checkpoints import save_checkpoint
from harness.importers import UnsupportedModelError


def _user_model(name: str, num_classes: int) -> object:
    module_name, function = name.split(":")
    factory = getattr(importlib.import_module(module_name), function, None)
    if not callable(factory):
        raise ValueError(
            f"Expected a function {function!r} in module {module_name!r}. Received: {type(factory).__name__}."
        )
    takes_classes = "num_classes" in inspect.signature(factory).parameters
    return factory(num_classes=num_classes) if takes_classes else factory()


def _importer(backend: str) -> ModuleType:
    return importlib.import_module(backend_entry(backend).importer_module)


def _importer_for(model: object) -> ModuleType:
    """The importer of the backend whose framework the model's class (or a base class: a user's subclass of a
    framework model lives in the user's package) comes from."""
    backend = backend_of_package(type(model).__module__.split(".")[0])
    for cls in type(model).__mro__:
        backend = backend_of_package(cls.__module__.split(".")[0]) or backend
    if backend is None:
        kinds = " or ".join(entry.model_kind for entry in REGISTRY.values() if entry.model_packages)
        raise ValueError(
            f"Expected the factory to return {kinds}. Received: {type(model).__module__}.{type(model).__name__}."
        )
    return _importer(backend)


def convert(request: dict, out: Path) -> None:
    ref = request["ref"]
    shape, classes, seed = tuple(request["input_shape"]), int(request["num_classes"]), int(request["seed"])
    if ref["kind"] == "python":
        model = _user_model(ref["name"], classes)
        importer = _importer_for(model)
    else:
        importer = _importer(importer_backends()[ref["kind"]])
        model = importer.load_reference(ref["name"], shape, classes, seed)
    label = ref["name"] if ref["kind"] == "python" else f"{ref['kind']}:{ref['name']}"
    channels = importer.input_channels(model)
    if channels is not None and len(shape) == 3 and channels != shape[-1]:
        fix = f"build the model for {shape[-1]}"
        if shape[-1] == 1:
            replicate = f"xfbench run --input-channels {channels} replicates the grayscale channel"
            fix = f"feed it {channels} ({replicate}), or {fix}"
        raise ValueError(
            f"Expected inputs with the {channels} channels that model {label} takes. Received: inputs with "
            f"{shape[-1]}. To fix, {fix}."
        )
    spec, weights = importer.convert(model, shape, label)
    save_checkpoint(out, spec, weights, {"converted_from": label, "request": request})


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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
