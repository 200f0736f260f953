"""The preflight of a weights file: each backend's verification one after the other (as before) against all at once
(harness.pretrained.verify_all, one fresh process per backend started together).

torchvision's resnet18 (random weights) is written as .pth by a torch process, converted once in a fresh torch
process (timed), then the neutral checkpoint is verified in torch and TensorFlow from a copy without pass markers,
one after the other and at once, ``--repeats`` times each, in ABBA order (each repeat reverses the one before), so
drift over the run hits both alike.

Usage: ``PYTHONPATH=. python benchmarks/weights_verify.py [--repeats 3] [--input-size 32]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import TransferOptions, TrialConfig
from harness.pretrained import prepare_weights, verify, verify_all

BOTH = ("torch", "tensorflow")
WRITE = (
    "import sys, torch, torchvision; torch.manual_seed(0); "
    "torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), sys.argv[1])"
)


def _fresh_copy(checkpoint: Path, folder: Path) -> Path:
    """The checkpoint and its probe batch in a new folder: no marker, so every backend verifies again."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(checkpoint, folder / checkpoint.name)
    probe = checkpoint.with_suffix(".probe.npz")
    shutil.copy(probe, folder / probe.name)
    return folder / checkpoint.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input-size", type=int, default=32)
    args = parser.parse_args()
    shape = (args.input_size, args.input_size, 3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = root / "resnet18.pth"
        subprocess.run([sys.executable, "-c", WRITE, str(weights)], check=True)
        trial = TrialConfig(
            "fine_tune", "resnet18", "digits", "torch", 0, 1, transfer=TransferOptions(weights_file=str(weights))
        )
        start = time.perf_counter()
        checkpoint = prepare_weights(trial, shape, root / "cache", ())
        convert_s = time.perf_counter() - start
        times: dict[str, list[float]] = {"one after the other": [], "at once": []}
        for i in range(args.repeats):
            for how in list(times) if i % 2 == 0 else reversed(times):  # ABBA
                copy = _fresh_copy(checkpoint, root / f"verify-{i}-{how.replace(' ', '-')}")
                start = time.perf_counter()
                if how == "at once":
                    verify_all(copy, BOTH)
                else:
                    for backend in BOTH:
                        verify(copy, backend)
                times[how].append(time.perf_counter() - start)
    print(f"resnet18 .pth at {shape}: conversion (fresh torch process) {convert_s:.1f} s")
    for how, values in times.items():
        print(
            f"verify torch + tensorflow {how}: median {statistics.median(values):.1f} s "
            f"({', '.join(f'{v:.1f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
