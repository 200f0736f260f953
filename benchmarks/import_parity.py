"""Issue 11 acceptance: imported torchvision and Keras models against their source framework's own forward.

For each model (random weights, seed 0, 2 images at 224x224): convert it in a process of the source framework,
run the neutral spec and weights in every backend (each in its own process), and report the largest logit
difference from the source framework's forward relative to max(1, max |logit|) (criterion 1e-4), the parameter
counts, and for torchvision models whether the zoo builder of the same name gives the same spec structure.

    .venv/bin/python benchmarks/import_parity.py [--size 224] [refs...]

No --threads: the backends run on the probes' one thread (tests/backend_probes.py, RuntimeOptions()), and a parity
gap does not depend on it (this docstring offered --threads 2, which the parser never had).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import backend_probes  # noqa: E402
import import_probes  # noqa: E402

from harness.model_import import imported_model, parse_model_ref  # noqa: E402
from harness.models import MODELS, build_spec  # noqa: E402
from harness.spec import canonical_form  # noqa: E402
from harness.weights import count_parameters  # noqa: E402

DEFAULT = [
    "torchvision:alexnet",
    "torchvision:vgg11_bn",
    "torchvision:resnet18",
    "torchvision:resnet50",
    "torchvision:mobilenet_v2",
    "torchvision:densenet121",
    "keras:ResNet50",
    "keras:MobileNetV2",
    "keras:DenseNet121",
    "keras:VGG16",
]
ZOO_NAMES = {"alexnet": "alexnet_tv"}
SOURCE_BACKEND = {"torchvision": "torch", "keras": "tensorflow"}


def _in(backend: str, probe, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(probe, backend, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs", nargs="*", default=DEFAULT)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    print("| model | trainable params | + BN statistics | zoo spec | max logit | torch gap | tensorflow gap | s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for text in args.refs:
            start = time.perf_counter()
            ref = parse_model_ref(text)
            spec, weights = imported_model(ref, shape, 1000, Path(cache))
            reference = _in(SOURCE_BACKEND[ref.kind], import_probes.reference_logits, ref.name, shape, 1000, 0, x)
            scale = max(1.0, float(np.max(np.abs(reference))))
            gaps = [
                float(np.max(np.abs(_in(b, backend_probes.logits, spec, weights, x) - reference))) / scale
                for b in ("torch", "tensorflow")
            ]
            zoo = ZOO_NAMES.get(ref.name, ref.name)
            same = ""
            if ref.kind == "torchvision" and zoo in MODELS:
                same = "same" if canonical_form(spec) == canonical_form(build_spec(zoo, shape, 1000)) else "DIFFERS"
            total = sum(int(np.prod(w.shape)) for w in weights.values())
            print(
                f"| {text} | {count_parameters(spec):,} | {total:,} | {same} | {scale:.2f} | {gaps[0]:.1e} | "
                f"{gaps[1]:.1e} | {time.perf_counter() - start:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
