"""Probes for tests/test_pretrained.py that write a framework's model as a weight file (in that framework's worker;
the first argument is the worker's backend name)."""

from __future__ import annotations

import numpy as np


def write_torchvision(
    _backend: str, name: str, path: str, num_classes: int, seed: int = 0, width: float = 1.0
) -> dict[str, tuple]:
    """torchvision's NAME with random weights saved as .pth/.pt or .safetensors; BatchNorm's four tensors too, each
    drawn (left at torch's 1 and 0, gamma and beta hid a conversion that swapped them with the statistics or dropped
    them)."""
    import torch
    import torchvision

    from harness.weight_files import write_safetensors

    torch.manual_seed(seed)
    kwargs = {"width_mult": width} if width != 1.0 else {}
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # what a trained network would have, not 0 and 1
            n = module.num_features
            draws = (rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n))
            tensors = (module.running_mean, module.running_var, module.weight, module.bias)
            for tensor, draw in zip(tensors, draws, strict=True):
                tensor.data.copy_(torch.from_numpy(draw.astype(np.float32)))
    state = model.state_dict()
    if path.endswith(".safetensors"):
        write_safetensors(path, {k: v.numpy() for k, v in state.items()})
    else:
        torch.save(state, path)
    return {k: tuple(v.shape) for k, v in state.items()}


def drop_damaged_download(_backend: str, path: str) -> bool:
    from pathlib import Path

    from backends.torch.weight_files import drop_damaged_download

    return drop_damaged_download(Path(path))


def hub_hash_pattern(_backend: str) -> str:
    """torch hub's pattern for the sha256 prefix in a file's name (harness.pretrained keeps a copy)."""
    import torch

    return torch.hub.HASH_REGEX.pattern


def torchvision_models(_backend: str) -> list[str]:
    """torchvision's classification models (harness.weights_fit names the zoo's twins among them)."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def write_torch_state(_backend: str, path: str, tensors: dict[str, np.ndarray], legacy: bool = False) -> None:
    """``tensors`` as a torch state dict; ``legacy``: in torch's pickle format from before its zip one."""
    import torch

    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)


def read_torch_state(_backend: str, path: str) -> dict[str, np.ndarray]:
    import torch

    return {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}


def write_keras(
    _backend: str, name: str, path: str, shape: tuple[int, int, int], num_classes: int, seed: int = 0
) -> None:
    """keras.applications' NAME with random weights (BatchNorm's four tensors too, each from its own range, so a
    conversion that swapped γ with the variance or β with the mean shows) saved as .weights.h5, or as a path
    ending in plain .h5 in the legacy weights-only HDF5 format the applications download."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(seed)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=shape, classes=num_classes, classifier_activation=None
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            draws = (rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.3, n), rng.uniform(2.0, 4.0, n))
            layer.set_weights([d.astype(np.float32) for d in draws])  # gamma, beta, moving mean, moving variance
    if path.endswith(".weights.h5"):
        model.save_weights(path)
    else:
        with h5py.File(path, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, model)


def keras_preprocessed(_backend: str, application: str, pixels: np.ndarray) -> np.ndarray:
    """``keras.applications.<application>.preprocess_input`` on RGB pixels in 0..255: what Keras feeds its own
    weights (its ImageNet files were trained on inputs so prepared)."""
    from backends.tensorflow.framework import keras

    return np.asarray(getattr(keras.applications, application).preprocess_input(pixels.copy()))


def write_torch_module(_backend: str, path: str) -> None:
    """A whole pickled module, not a state dict: what torch.load(weights_only=True) must refuse to unpickle."""
    import torch

    torch.save(torch.nn.Linear(2, 2), path)


def weights_main(backend: str, argv: list[str]) -> tuple[int, str]:
    """``python -m harness.weights_worker ARGV`` in this worker (``import_probes.worker_main``)."""
    import import_probes

    return import_probes.worker_main(backend, "harness.weights_worker", argv)


def probe_runner(workers: dict) -> object:
    """A ``harness.pretrained.WorkerRunner`` that runs each request in the session's probe worker of its backend
    (tests/conftest.py ``workers``): the same worker code and answer files as a fresh process, without ~4 s
    (torch) / ~9 s (TensorFlow) of imports per step."""
    import functools

    from harness.pretrained import run_worker

    def call(argv: list[str]) -> tuple[int, str]:
        return workers[argv[0]](weights_main, argv)

    return functools.partial(run_worker, call=call)


def import_call(workers: dict) -> object:
    """A ``harness.model_import`` conversion call that runs ``harness.import_worker`` in the session's probe worker
    of the reference's framework instead of a fresh process."""
    import json

    import import_probes

    from harness.model_import import FRAMEWORK_PREFIXES

    def call(argv: list[str]) -> tuple[int, str]:
        return workers[FRAMEWORK_PREFIXES[json.loads(argv[0])["ref"]["kind"]]](import_probes.import_main, argv)

    return call


def python_call(workers: dict, framework: str) -> object:
    """``import_call`` that also converts a user's ``python:`` model, in the session's probe worker of ``framework``
    (the one its module builds: a worker cannot tell before importing it, and the wrong one would import torch
    beside TensorFlow), its module imported from the current directory as a fresh conversion process imports it
    (``import_probes.user_import_main``). For ``monkeypatch.setattr(harness.model_import, "_fresh_process", ...)``
    in tests of what a conversion refuses, not of the process it runs in."""
    import json
    import os

    import import_probes

    references = import_call(workers)

    def call(argv: list[str]) -> tuple[int, str]:
        if json.loads(argv[0])["ref"]["kind"] != "python":
            return references(argv)
        return workers[framework](import_probes.user_import_main, os.getcwd(), argv)

    return call


def small_net(num_classes: int = 10) -> object:
    """A user's ``python:weight_file_probes:small_net`` factory: one convolution on RGB, pooled, then a head (its
    state dict: '0.weight' (4, 3, 3, 3), '0.bias', '4.weight' (classes, 4), '4.bias')."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes)
    )


def head_first_wide_net(num_classes: int = 10) -> object:
    """head_first_net with a hidden Linear of 1000 outputs, as many as the head of an ImageNet architecture."""
    return head_first_net(num_classes, hidden=1000)


def head_first_net(num_classes: int = 10, hidden: int = 8) -> object:
    """A factory whose module registers its head before its stem and a hidden Linear (state dict: 'fc.weight'
    (classes, 8), 'conv.weight' (4, 3, 3, 3), 'hidden.weight' (8, 4) and their biases)."""
    import torch
    from torch import nn

    class HeadFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(hidden, num_classes)
            self.conv, self.hidden = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1), 1)
            return self.fc(torch.relu(self.hidden(pooled)))

    return HeadFirst()


def small_net_positional_only(num_classes: int, /) -> object:
    """small_net, its class count positional-only (docs/zoo.md: a factory called so is supported)."""
    return small_net(num_classes)


class NotAModule:
    """What a Keras factory returns, as far as torch can tell (a real one would import TensorFlow into the test's
    long-lived torch worker)."""


def not_a_torch_module(num_classes: int = 10) -> object:
    return NotAModule()


def legacy_input_size_error(_backend: str, path: str) -> str:
    """A legacy .h5 of a small Flatten -> Dense network saved at 16 x 16, loaded at 8 x 8 through the adapter's
    legacy path (Keras loads it and names the layer): the error the user reads."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from backends.tensorflow.weight_files import _load_legacy
    from harness.pretrained import WeightsRef
    from harness.weight_files import BadWeightsError

    def net(side: int) -> keras.Model:
        inputs = keras.Input((side, side, 3))
        x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, name="conv")(inputs))
        return keras.Model(inputs, keras.layers.Dense(2, name="fc1")(x))

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, net(16))
    try:
        ref = WeightsRef("file", path)
        _load_legacy(net(8), __import__("pathlib").Path(path), lambda: net(8), "keras:Net", ref)
    except BadWeightsError as error:
        return str(error)
    return ""


def flatten_output_gap(_backend: str) -> float:
    """The largest gap between a torch network's recorded Flatten output (what a failed verification compares) and
    xfbench's torch backend's output at that layer, on the same weights: 0 once both are in H,W,C order."""
    import numpy as np
    from torch import nn

    from backends.torch import importer
    from backends.torch.weight_files import recorded_outputs
    from harness.backend import load_backend
    from harness.config import RuntimeOptions

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    spec, weights = importer.convert(model, (6, 6, 3), "flat")
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    flatten = next(layer.name for layer in spec.layers if type(layer).__name__ == "Flatten")
    recorded = recorded_outputs(model, x, spec)[flatten]  # what weight_files.convert records for the probe
    backend = load_backend("torch", RuntimeOptions(threads=1))
    backend.build(spec, weights, seed=0)
    return float(np.max(np.abs(backend.extract_features(x, flatten, 256).reshape(recorded.shape) - recorded)))
