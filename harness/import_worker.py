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

from harness.checkpoints import save_checkpoint
from harness.importers import UnsupportedModelError

# the top-level package of a model's class -> the backend that converts it
FRAMEWORK_PACKAGES = {"torch": "torch", "torchvision": "torch", "keras": "tensorflow", "tensorflow": "tensorflow"}


def _user_model(name: str, num_classes: int) -> object:
    module_name, function = name.split(":")
    factory = getattr(importlib.import_module(module_name), function, None)
    if not callable(factory):
        raise ValueError(
            f"Expected a function {function!r} in module {module_name!r}. Received: {type(factory).__name__}."
        )
    takes_classes = "num_classes" in inspect.signature(factory).parameters
    return factory(num_classes=num_classes) if takes_classes else factory()


def _importer_for(model: object) -> object:
    package = type(model).__module__.split(".")[0]
    for cls in type(model).__mro__:
        package = FRAMEWORK_PACKAGES.get(cls.__module__.split(".")[0], package)
    backend = FRAMEWORK_PACKAGES.get(package)
    if backend is None:
        raise ValueError(
            f"Expected the factory to return a torch.nn.Module or a Keras model. Received: "
            f"{type(model).__module__}.{type(model).__name__}."
        )
    return importlib.import_module(f"backends.{backend}.importer")


def convert(request: dict, out: Path) -> None:
    ref = request["ref"]
    shape, classes, seed = tuple(request["input_shape"]), int(request["num_classes"]), int(request["seed"])
    if ref["kind"] == "python":
        model = _user_model(ref["name"], classes)
        importer = _importer_for(model)
    else:
        backend = {"torchvision": "torch", "keras": "tensorflow"}[ref["kind"]]
        importer = importlib.import_module(f"backends.{backend}.importer")
        model = importer.load_reference(ref["name"], shape, classes, seed)
    label = ref["name"] if ref["kind"] == "python" else f"{ref['kind']}:{ref['name']}"
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
