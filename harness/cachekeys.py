"""What a cache key holds besides a recipe: the code and the framework that produced the cached artefact.

A shared backbone or a feature file made by another xfbench version, by other harness/ or backends/ source, or
by another framework version is not reused: all three are part of its key. The framework's version includes
those of the distributions beside it that its models come from (keras next to tensorflow, torchvision next to
torch: a backend's ``COMPANION_DISTRIBUTIONS``). They are computed on first use and once per process (no import
side effects), and the versions come from package metadata, so the driver never imports a framework to compute
a key.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
from pathlib import Path

import harness
from harness.backend import declarations, installed_framework_version

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("harness", "backends")  # the code that decides what a backbone or a feature file holds


@functools.cache
def source_digest(root: Path = PROJECT_ROOT) -> str:
    """sha256 (16 hex digits) over the paths and bytes of every .py file under ``root``'s harness/ and backends/."""
    digest = hashlib.sha256()
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache  # once per process, as the framework's version: keys stay the same through a run
def companion_versions(backend: str) -> str:
    """The installed versions of the distributions beside ``backend``'s framework that its models come from
    (keras: the importer, keras.applications, the .weights.h5 layout; torchvision: the architectures), from
    package metadata as the framework's: another Keras under the same TensorFlow builds other models."""
    return ", ".join(_distribution_version(d) for d in declarations(backend).companion_distributions)


def _distribution_version(distribution: str) -> str:
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} not installed"


def code_versions(backend: str) -> dict[str, str]:
    """The versions a cached artefact made by ``backend`` depends on: xfbench's, its source's, the framework's and
    those of the libraries beside it (:func:`companion_versions`)."""
    framework = installed_framework_version(backend)
    return {
        "xfbench": harness.__version__,
        "source": source_digest(),
        "framework": framework,
        "libraries": companion_versions(backend),
    }


def code_tag(backend: str) -> str:
    """A short hash of :func:`code_versions`, for file names."""
    return hashlib.sha256(repr(sorted(code_versions(backend).items())).encode()).hexdigest()[:10]
