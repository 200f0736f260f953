"""Probes for tests/test_zoo.py that need PyTorch itself (run in the torch worker process only)."""

from __future__ import annotations

import copy

import numpy as np

from harness.backend import load_backend
from harness.config import RuntimeOptions
from harness.spec import ModelSpec
from harness.weights import NeutralWeights


def torch_kernel_gradients(
    name: str, spec: ModelSpec, weights: NeutralWeights, x: np.ndarray, y: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Gradients of the mean cross-entropy on one training-mode batch with respect to every kernel, in the
    neutral layout, computed by the torch backend's module in float32 and in float64 (the near-exact reference
    the float32 results of both backends are measured against). The model must hold no dropout."""
    import torch

    from backends.torch.model import export_weights

    assert name == "torch"
    backend = load_backend("torch", RuntimeOptions(threads=1))
    backend.build(spec, weights, seed=0)
    out = {}
    for dtype in (torch.float32, torch.float64):
        module = copy.deepcopy(backend.module).to(dtype).train()
        logits = module(torch.tensor(x.transpose(0, 3, 1, 2), dtype=dtype))
        torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
        with torch.no_grad():
            for param in module.parameters():
                param.copy_(param.grad)  # exporting the gradients puts them in the neutral layout
        exported = export_weights(module, spec)  # (as float32: 6e-8 relative, far below what is compared)
        out[str(dtype).split(".")[1]] = {k: v.astype(np.float64) for k, v in exported.items() if k.endswith("/kernel")}
    return out


def adaptive_pool_module(name: str, spec: ModelSpec, layer: str) -> str:
    """The class of the torch module the backend builds for ``spec``'s adaptive pool ``layer``."""
    from backends.torch.model import layer_module
    from harness.weights import initial_weights

    backend = load_backend(name, RuntimeOptions(threads=1))
    backend.build(spec, initial_weights(spec, "he_normal", 0), seed=0)
    return type(layer_module(backend.module, layer)).__name__


def torchvision_spec(_backend: str, architecture: str, shape: tuple[int, int, int], classes: int) -> tuple:
    """torchvision's ``architecture`` (random weights) as the torch importer converts it for ``shape``: its spec
    (the weights stay here: VGG's classifier alone is 400 MB) and torchvision's own parameter count."""
    import torchvision

    from backends.torch.importer import convert

    model = torchvision.models.get_model(architecture, weights=None, num_classes=classes).eval()
    spec, _ = convert(model, shape, architecture)
    return spec, sum(parameter.numel() for parameter in model.parameters())
