"""Probes for tests/test_model_import.py that run a framework's own model (in that framework's worker only)."""

from __future__ import annotations

import importlib

import numpy as np

IMPORTERS = {"torch": "torchvision", "tensorflow": "keras"}


def reference_logits(
    name: str, model: str, input_shape: tuple[int, int, int], num_classes: int, seed: int, x: np.ndarray
) -> np.ndarray:
    """The source framework's own eval forward of model NAME built with random weights from ``seed``."""
    importer = importlib.import_module(f"backends.{name}.importer")
    return importer.reference_logits(importer.load_reference(model, input_shape, num_classes, seed), x)


def worker_main(name: str, module: str, argv: list[str]) -> tuple[int, str]:
    """``python -m MODULE ARGV`` (a worker entry point of harness/) inside this long-lived worker instead of a fresh
    process: its exit status and, on a crash, the traceback. Keras' global state (layer auto-names, the graph) is
    cleared first, as a fresh process would start."""
    import traceback

    if name == "tensorflow":
        import keras

        keras.backend.clear_session()
    try:
        return importlib.import_module(module).main(argv), ""
    except Exception:  # a fresh process would die with this traceback; the parent reports its last line
        return 1, traceback.format_exc()


def import_main(name: str, argv: list[str]) -> tuple[int, str]:
    """``python -m harness.import_worker ARGV`` in this worker (``worker_main``)."""
    return worker_main(name, "harness.import_worker", argv)


def user_import_main(name: str, folder: str, argv: list[str]) -> tuple[int, str]:
    """``import_main`` for a user's ``python:`` model, its module imported as a fresh conversion process started in
    ``folder`` imports it (harness.fresh_process puts the current directory first on its path): ``folder`` first on
    sys.path, and the user's modules forgotten before and after, so that each test's ``mend_nets`` is read from its
    own folder, not served from an earlier test's import in this long-lived worker."""
    import json
    import sys

    module = json.loads(argv[0])["ref"]["name"].split(":")[0]
    _forget_user_modules(folder, module)
    sys.path.insert(0, folder)
    try:
        return import_main(name, argv)
    finally:
        sys.path.remove(folder)
        _forget_user_modules(folder, module)


def _forget_user_modules(folder: str, module: str) -> None:
    """Drop ``module`` and every module imported from ``folder`` (helpers the factory imports) from sys.modules."""
    import sys
    from pathlib import Path

    root = Path(folder).resolve()
    # a folder holding xfbench itself would unload harness, backends and the frameworks from this shared worker
    assert not Path(__file__).resolve().is_relative_to(root), f"user modules in {root}, which holds the tests"
    for key, loaded in list(sys.modules.items()):
        filename = getattr(loaded, "__file__", None)
        if key == module or (isinstance(filename, str) and Path(filename).resolve().is_relative_to(root)):
            del sys.modules[key]
    importlib.invalidate_caches()  # a file written since this worker last listed the folder is found


def torch_flat_batchnorm_module(_backend: str, x: np.ndarray) -> tuple:
    """A torch module with BatchNorm1d and a per-feature PReLU right after a Flatten of a 3x3x2 map (statistics and
    slopes all different), converted by the torch importer: the spec, the weights and torch's own eval logits."""
    import torch
    from torch import nn

    from backends.torch.importer import convert, reference_logits

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Flatten(), nn.BatchNorm1d(18), nn.PReLU(18), nn.Linear(18, 3))
    with torch.no_grad():
        bn = model[2]
        for tensor, low, high in ((bn.weight, 0.5, 2), (bn.bias, -1, 1), (bn.running_mean, -1, 1)):
            tensor.uniform_(low, high)
        bn.running_var.uniform_(0.5, 2)
        model[3].weight.uniform_(0, 0.5)
    spec, weights = convert(model, (3, 3, 2), "flat_bn")
    return spec, weights, reference_logits(model, x)


def torch_softmax_heads(_backend: str) -> dict[str, object]:
    """Torch models ending in each form of (log-)softmax, and a plain one, converted by the torch importer: each
    one's (spec, weights); for a softmax inside the network, the importer's refusal."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from backends.torch.importer import convert, reference_logits
    from harness.importers import UnsupportedModelError

    class Functional(nn.Module):
        def __init__(self, fc: nn.Linear) -> None:
            super().__init__()
            self.fc = fc

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)

    class Method(Functional):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(x, 1)).softmax(-1)

    class Inside(Functional):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.softmax(torch.flatten(x, 1), dim=1))

    torch.manual_seed(0)
    linear = nn.Linear(64, 10)
    models = {
        "plain": nn.Sequential(nn.Flatten(), linear),
        "module": nn.Sequential(nn.Flatten(), linear, nn.Softmax(dim=1)),
        "functional": Functional(linear),
        "method": Method(linear),
    }
    out: dict[str, object] = {name: convert(model, (8, 8, 1), name) for name, model in models.items()}
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype(np.float32)
    # the source's forward a weight file's probe compares the converted network with
    out["logits"] = {name: reference_logits(model, x) for name, model in models.items()}
    try:
        convert(Inside(linear), (8, 8, 1), "inside")
        out["inside"] = None
    except UnsupportedModelError as exc:
        out["inside"] = str(exc)
    return out


def keras_softmax_heads(_backend: str) -> dict[str, object]:
    """Keras models ending in each form of (log-)softmax, and a plain one, converted by the Keras importer, as
    ``torch_softmax_heads``."""
    import keras

    from backends.tensorflow.importer import convert, reference_logits
    from harness.importers import UnsupportedModelError

    def model(*head: keras.layers.Layer, activation: str | None = None) -> keras.Model:
        keras.utils.set_random_seed(0)
        dense = keras.layers.Dense(10, activation=activation)
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), dense, *head])

    models = {
        "plain": model(),
        "activation": model(activation="softmax"),
        "layer": model(keras.layers.Softmax()),
        "layer_axis_1": model(keras.layers.Softmax(axis=1)),  # the classes' axis of the (N, classes) output
        "log": model(keras.layers.Activation("log_softmax")),
    }
    out: dict[str, object] = {name: convert(m, (8, 8, 1), name) for name, m in models.items()}
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype(np.float32)
    out["logits"] = {name: reference_logits(m, x) for name, m in models.items()}  # a Sequential's Softmax too
    inside = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Softmax(), keras.layers.Dense(10)]
    )
    try:
        convert(inside, (8, 8, 1), "inside")
        out["inside"] = None
    except UnsupportedModelError as exc:
        out["inside"] = str(exc)
    return out


def torch_check_of_a_tiny_network(_backend: str, zeroed: bool) -> str:
    """A torch network whose logits are about 1e-9 (tiny initial weights, as deep random networks have), converted,
    then checked against torch's own forward with its converted weights as they are or every one zeroed: the
    check's refusal, or '' where it passed."""
    import torch
    from torch import nn

    from backends.torch import importer
    from harness.import_worker import _check_against_source
    from harness.importers import ModelInputError

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1e-4)
    spec, weights = importer.convert(model, (8, 8, 1), "tiny")
    if zeroed:
        weights = {name: np.zeros_like(value) for name, value in weights.items()}
    try:
        _check_against_source(importer, model, "torch", spec, weights, "tiny")
    except ModelInputError as refused:
        return str(refused)
    return ""
