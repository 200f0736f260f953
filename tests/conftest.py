"""Shared fixtures: data search paths isolated from the machine, and one long-lived worker process per backend
for the parity tests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

from harness.data import load_dataset
from harness.data.registry import Dataset


@pytest.fixture(scope="session", autouse=True)
def isolated_data_paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every data search path of the session in empty temporary directories: $XFBENCH_DATA, the user cache
    ($XDG_CACHE_HOME/xfbench, so ~/.cache/xfbench is never read) and the system root ($XFBENCH_SYSTEM_DATA
    instead of /usr/share/datasets), so data on the machine cannot change what a test sees. Session-scoped and in
    os.environ, so it holds before module fixtures run and reaches subprocesses, pytester sessions and Ray workers.
    A test that needs the machine's system data asks for ``system_datasets``."""
    root = tmp_path_factory.mktemp("data-paths")
    paths = {"XFBENCH_DATA": root / "env", "XDG_CACHE_HOME": root / "cache", "XFBENCH_SYSTEM_DATA": root / "system"}
    for path in paths.values():
        path.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name, path in paths.items():
            patch.setenv(name, str(path))
        patch.setenv("XFBENCH_TEST_DATA_ROOT", str(root))  # lets a test check that every root lies under it
        yield


@pytest.fixture
def system_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's system data root (/usr/share/datasets) for this test: Debian's Fashion-MNIST."""
    monkeypatch.delenv("XFBENCH_SYSTEM_DATA")


class BackendWorker:
    """Runs probe functions in a spawned process that imports one framework only."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def __call__(self, probe: Callable[..., Any], *args: Any) -> Any:
        return self._pool.submit(probe, self.name, *args).result(timeout=600)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="session")
def workers() -> Iterator[dict[str, BackendWorker]]:
    pool = {name: BackendWorker(name) for name in ("torch", "tensorflow")}
    yield pool
    for worker in pool.values():
        worker.close()


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
