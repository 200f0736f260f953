"""Shared fixtures: one long-lived worker process per backend for the parity tests."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from harness.data import load_dataset
from harness.data.registry import Dataset


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
