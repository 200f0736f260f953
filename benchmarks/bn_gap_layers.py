"""Where torchvision's narrow mobilenet_v2 parts across backends in training mode (docs/pretrained.md, "the loss
gap"): every layer's training-mode output in both backends (float32) against a float64 reference (torch's module
in double), on one batch, from the same converted weights.

    PYTHONPATH=. .venv/bin/python benchmarks/bn_gap_layers.py [--width 0.25] [--batch 64] [--size 32]

The weights: torchvision's mobilenet_v2 at ``--width`` with random weights and BatchNorm statistics (as
tests/weight_file_probes.py writes them), converted by xfbench (harness.pretrained). Dropout is left out (the gap
is the same without it). Each framework runs in its own process, one thread. For every BatchNorm the script also
evaluates both normalisation formulas in numpy float32 on that layer's float64 input:
torch's (x - mean) * (gamma / sqrt(var + eps)) + beta and tf.nn.batch_normalization's
x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def _write_weights(path: str, width: float) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=1000, width_mult=width)
    rng = np.random.default_rng(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            mean, var = module.running_mean, module.running_var
            assert mean is not None and var is not None  # track_running_stats, torchvision's default
            mean.copy_(torch.from_numpy(rng.normal(0, 0.1, module.num_features).astype(np.float32)))
            var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, module.num_features).astype(np.float32)))
    torch.save(model.state_dict(), path)


def _without_dropout(spec):
    from harness.spec import Dropout

    dropped = {layer.name: spec.inputs_of(i)[0] for i, layer in enumerate(spec.layers) if isinstance(layer, Dropout)}
    layers = tuple(
        dataclasses.replace(layer, inputs=tuple(dropped.get(s, s) for s in layer.inputs)) if layer.inputs else layer
        for layer in spec.layers
        if layer.name not in dropped
    )
    return dataclasses.replace(spec, layers=layers)


def _torch_outputs(spec, weights, x: np.ndarray, float64: bool) -> dict[str, np.ndarray]:
    import torch

    from backends.torch.model import layer_module
    from harness.backend import load_backend
    from harness.config import RuntimeOptions

    torch.set_num_threads(1)
    backend: Any = load_backend("torch", RuntimeOptions(threads=1))  # the adapter's own .module
    backend.build(spec, weights, seed=0)
    module = backend.module.double() if float64 else backend.module
    module.train()
    outputs: dict[str, np.ndarray] = {}
    for layer in spec.layers:
        try:
            target = layer_module(module, layer.name)
        except (AttributeError, KeyError):
            continue  # a layer without a module (the graph's adds)

        def hook(_m, _i, out, name=layer.name):
            value = out.detach().cpu().numpy().astype(np.float64)
            outputs[name] = value.transpose(0, 2, 3, 1) if value.ndim == 4 else value

        target.register_forward_hook(hook)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        module(xt.double() if float64 else xt.float())
    return outputs


def _tensorflow_outputs(spec, weights, x: np.ndarray) -> dict[str, np.ndarray]:
    import keras
    import tensorflow as tf

    from harness.backend import load_backend
    from harness.config import RuntimeOptions

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    backend: Any = load_backend("tensorflow", RuntimeOptions(threads=1))  # the adapter's own .model
    backend.build(spec, weights, seed=0)
    names = [layer.name for layer in spec.layers if layer.name in {l.name for l in backend.model.layers}]
    tap = keras.Model(backend.model.inputs, [backend.model.get_layer(n).output for n in names])
    values = tap(tf.constant(x.astype(np.float32)), training=True)
    return {n: np.asarray(v, np.float64) for n, v in zip(names, values, strict=True)}


def _run(function, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _bn_formulas(spec, weights, reference: dict[str, np.ndarray], name: str) -> tuple[float, float, float]:
    """Both normalisation formulas in numpy float32 on the layer's float64 input (its batch statistics): torch's
    error, TF's error (each relative to the float64 output's largest magnitude), and the largest |mean| / std."""
    index = [layer.name for layer in spec.layers].index(name)
    x, out = reference[spec.inputs_of(index)[0]], reference[name]
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    eps = np.float32(spec.layers[index].epsilon)
    gamma, beta = weights[f"{name}/gamma"].astype(np.float32), weights[f"{name}/beta"].astype(np.float32)
    x32, m32, v32 = x.astype(np.float32), mean.astype(np.float32), var.astype(np.float32)
    inv = (np.float32(1) / np.sqrt(v32 + eps)) * gamma
    torch_form = (x32 - m32) * inv + beta  # ATen's CPU kernel: (x - mean) * invstd * w + b
    tf_form = x32 * inv + (beta - m32 * inv)  # tf.nn.batch_normalization
    scale = float(np.max(np.abs(out)))
    ratio = float(np.max(np.abs(mean) / np.sqrt(var + float(eps))))
    return float(np.max(np.abs(torch_form - out))) / scale, float(np.max(np.abs(tf_form - out))) / scale, ratio


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)

    # the weight file and its conversion's cache, removed at the end however it ends (they were left on every run)
    with tempfile.TemporaryDirectory(prefix="bn-gap-") as scratch:
        return _measure(args, Path(scratch))


def _measure(args: argparse.Namespace, folder: Path) -> int:
    from harness.checkpoints import load_checkpoint
    from harness.config import TransferOptions, TrialConfig
    from harness.models import ModelOptions
    from harness.pretrained import prepare_weights

    path = folder / "mobilenet_v2.pth"
    _run(_write_weights, str(path), args.width)
    trial = TrialConfig(
        "fine_tune",
        "mobilenet_v2",
        "digits",
        "torch",
        0,
        1,
        model_options=ModelOptions(width_multiplier=args.width),
        transfer=TransferOptions(weights_file=str(path)),
    )
    shape = (args.size, args.size, 3)
    spec, weights, _ = load_checkpoint(prepare_weights(trial, shape, folder / "cache", ()))
    spec = _without_dropout(spec)
    x = np.random.default_rng(0).normal(size=(args.batch, *shape)).astype(np.float32)
    reference = _run(_torch_outputs, spec, weights, x, True)
    ours = {
        "torch": _run(_torch_outputs, spec, weights, x, False),
        "tensorflow": _run(_tensorflow_outputs, spec, weights, x),
    }
    kinds = {layer.name: type(layer).__name__ for layer in spec.layers}
    print(
        f"{'layer':<24} {'type':<10} {'map':>4} {'torch f32':>10} {'tf f32':>10} {'tf/torch':>8}"
        f" | BatchNorm alone, numpy f32 on the f64 input: {'torch form':>10} {'tf form':>10} {'|mean|/std':>10}"
    )
    ratios, formula_ratios = [], []
    for name, ref in reference.items():
        if name not in ours["tensorflow"] or name not in ours["torch"]:
            continue
        scale = max(float(np.max(np.abs(ref))), 1e-30)
        errs = [float(np.max(np.abs(ours[b][name].reshape(ref.shape) - ref))) / scale for b in ("torch", "tensorflow")]
        ratios.append(errs[1] / max(errs[0], 1e-12))
        side = ref.shape[1] if ref.ndim == 4 else 0
        line = f"{name:<24} {kinds[name]:<10} {side:>4} {errs[0]:>10.2e} {errs[1]:>10.2e} {ratios[-1]:>8.2f}"
        if kinds[name] == "BatchNorm":
            torch_err, tf_err, ratio = _bn_formulas(spec, weights, reference, name)
            formula_ratios.append(tf_err / max(torch_err, 1e-12))
            line += f" | {'':>44} {torch_err:>10.2e} {tf_err:>10.2e} {ratio:>10.1f}"
        print(line)
    print(
        f"\nmedian tf/torch error ratio over {len(ratios)} layers: {np.median(ratios):.2f} (first 10: "
        f"{np.median(ratios[:10]):.2f}, last 10: {np.median(ratios[-10:]):.2f}); BatchNorm formulas alone, median "
        f"TF-form / torch-form error over {len(formula_ratios)} layers: {np.median(formula_ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
