"""Shared fixtures: data search paths isolated from the machine, and one long-lived worker process per backend
for the parity tests."""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

from harness.config import RuntimeOptions
from harness.data import load_dataset
from harness.data.registry import Dataset
from harness.pretrained import SOURCE_RELATIVE_GAP


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The checkout's pytest-xdist schedule, for ``pytest tests suites -n N --dist loadgroup``: each test module goes
    to one worker as a whole, so its module fixtures (weight files the frameworks write, checkpoints converted once)
    are built once, and every suite case goes to one worker, which runs them all in one Ray run. Decided here by
    path because, with pytest 9.2, pytest-xdist 3.8's loadgroup drops the ``xdist_group`` marks the xfbench plugin
    gives the cases before they reach its scheduler (pytest-xdist issue 1386). Here, not in a conftest.py of the
    root or of suites/: those would be imported as a second module ``conftest``, which the tests import from this
    one. ``make test`` runs without xdist: on this 2-core machine two workers gained about nothing
    (docs/measurements.md, "Test suite")."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndSuites(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return "suites" if path.startswith("suites/") else path

    return ModulesAndSuites(config, log)


@pytest.fixture(scope="session", autouse=True)
def isolated_data_paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every data search path of the session in empty temporary directories: $XFBENCH_DATA, the user cache
    ($XDG_CACHE_HOME/xfbench, so ~/.cache/xfbench is never read), the system root ($XFBENCH_SYSTEM_DATA
    instead of /usr/share/datasets), Keras' home ($KERAS_HOME, whose keras.json Keras reads) and matplotlib's
    configuration ($MPLCONFIGDIR, $MATPLOTLIBRC), so files on the
    machine cannot change what a test sees. Session-scoped and in
    os.environ, so it holds before module fixtures run and reaches subprocesses, pytester sessions and Ray workers.
    A test that needs the machine's system data asks for ``system_datasets``."""
    root = tmp_path_factory.mktemp("data-paths")
    paths = {
        "XFBENCH_DATA": root / "env",
        "XDG_CACHE_HOME": root / "cache",
        "XFBENCH_SYSTEM_DATA": root / "system",
        "KERAS_HOME": root / "keras",  # not the machine's ~/.keras/keras.json (backends/tensorflow/framework.py)
        # matplotlib's config folder and rc file: a ~/.config/matplotlib/matplotlibrc with text.usetex failed the
        # report tests on a machine without LaTeX (both point at a folder without a matplotlibrc)
        "MPLCONFIGDIR": root / "matplotlib",
        "MATPLOTLIBRC": root / "matplotlib",
    }
    for path in set(paths.values()):
        path.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name, path in paths.items():
            patch.setenv(name, str(path))
        patch.setenv("XFBENCH_TEST_DATA_ROOT", str(root))  # lets a test check that every root lies under it
        yield


@pytest.fixture(scope="session")
def shared_ray(isolated_data_paths: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray instance for the session's in-process runs. xfbench's runner joins an instance that is already
    up (``harness.scheduler.ray_session``) instead of starting and stopping its own, which costs about 4.5 s a run
    here. Started after the data paths are isolated, so its workers inherit them; stopped at the session's end."""
    from harness.scheduler import SchedulerSettings, ray_session

    with ray_session(SchedulerSettings(storage_dir=tmp_path_factory.mktemp("shared-ray"))):
        yield


@pytest.fixture
def system_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's system data root (/usr/share/datasets) for this test: Debian's Fashion-MNIST."""
    monkeypatch.delenv("XFBENCH_SYSTEM_DATA")


class BackendWorker:
    """Runs probe functions in a spawned process that imports one framework only (``setup``: run first in that
    process, e.g. to choose the framework's kernels)."""

    def __init__(self, name: str, setup: Callable[[], None] | None = None) -> None:
        self.name = name
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=setup
        )

    def __call__(self, probe: Callable[..., Any], *args: Any) -> Any:
        return self.submit(probe, *args).result(timeout=600)

    def submit(self, probe: Callable[..., Any], *args: Any) -> Future:
        """Start ``probe`` without waiting: workers of different backends then run at the same time."""
        return self._pool.submit(probe, self.name, *args)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _one_thread(name: str) -> None:
    """Pin the probe process to one thread before anything else runs in it. TensorFlow fixes its thread pools at
    its first op, so without this the first probe of the session (say a bare crop in test_augment) decided the
    thread count, and with it the summation order, of every later test in that process: resnet18's five BatchNorm
    steps then parted by 5.7e-3 after test_augment and test_modes had run, and by under 1e-5 alone."""
    if name == "torch":
        import torch

        torch.set_num_threads(1)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


FRAMEWORKS = ("torch", "tensorflow", "keras")


def pytest_collection_finish(session: pytest.Session) -> None:
    """The check below sees what a test imports while it runs, not what a module imported as it was collected: a
    test module that imports torch at its top makes the pytest process a torch process before the first test."""
    imported = sorted(name for name in FRAMEWORKS if name in sys.modules)
    if imported:
        raise pytest.UsageError(
            f"Expected no framework in the pytest process after collection. Received: {imported} imported while "
            "collecting. To fix, import it inside the probe a worker runs (tests/backend_probes.py), not at a test "
            "module's top."
        )


@pytest.fixture(autouse=True)
def no_framework_in_the_test_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """One framework per process holds in the tests too: a test imports torch or TensorFlow only in a worker
    (BackendWorker, a Ray trial, a fresh process). One test once trained a torch trial in the pytest process, which
    from then on was a torch process for every later test, with torch's threads and RNG, in an order -k decides."""
    before = {name for name in FRAMEWORKS if name in sys.modules}
    yield
    imported = sorted(name for name in FRAMEWORKS if name in sys.modules and name not in before)
    assert not imported, f"{request.node.nodeid} imported {imported} into the pytest process: run it in a worker"


@pytest.fixture(scope="session")
def workers() -> Iterator[dict[str, BackendWorker]]:
    pool = {name: BackendWorker(name, setup=functools.partial(_one_thread, name)) for name in ("torch", "tensorflow")}
    yield pool
    for worker in pool.values():
        worker.close()


def on_each(pool: dict[str, BackendWorker], probe: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """``probe(*args)`` in every worker of ``pool`` at once (one process per backend): name -> its result."""
    futures = {name: worker.submit(probe, *args) for name, worker in pool.items()}
    return {name: future.result(timeout=600) for name, future in futures.items()}


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


# The same steps in float64 (--precision float64) where float32 rounding has grown past a test's tolerance: each
# framework rounds about 5*10^8 times less, so what float32 grows to 1e-3-1e-2 in 20 steps (BatchNorm dividing by a
# near-zero variance, a ReLU input within rounding of zero) stays near 1e-10 (measured 2026-12-06 on an AMD EPYC:
# at most 5.7e-11, the branching spec; 1.8e-15 between modes), while a difference in what is computed keeps its size
# at any precision (TensorFlow's momentum 0.8999 for 0.9: 4e-5 to 1.3e-2 apart after 20 steps, on every spec/mode).
FLOAT64_TRAJECTORY_TOLERANCE = 1e-9
# The float32 gap itself is bounded too: what only float32 computes (a float32 cast of a hyperparameter, each
# framework's float32 BatchNorm kernel) is checked at the first step only, where a momentum buffer is still empty.
# The largest rounding growth measured: 5.3e-3 after 26 steps (cnn_small with BatchNorm, dropout and augmentation,
# two epochs ending in a short batch, XLA against the custom step, on a Xeon, 2026-12-07; the same steps in float64
# 1.8e-15 apart); 2.6e-3 after 20 steps for convnet3 with BatchNorm. The cap holds about twice the largest: longer
# runs rely on the float64 check, which tells rounding from a different computation at any length.
FLOAT32_ROUNDING_CAP = 1e-2


def assert_float32_apart_only_by_rounding(
    gap: float, first_gap: float, exact_gap: float, exact_moved: float, tolerance: float, steps: int
) -> None:
    """Two runs whose float32 parameters are ``gap`` apart after ``steps`` steps (more than ``tolerance``) compute
    the same thing: their first step agrees to ``tolerance``, the gap stays under FLOAT32_ROUNDING_CAP, and the same
    steps in float64, which moved the parameters by ``exact_moved``, agree to FLOAT64_TRAJECTORY_TOLERANCE
    (``exact_gap``). A test that accepted any gap within how far a framework moves from itself when its oneDNN
    kernels switch passed a 0.01 % wrong momentum: that envelope reached 2e-2 on cnn_small."""
    assert first_gap <= tolerance, f"the first step already differs by {first_gap:.2e} (> {tolerance:.0e})"
    assert gap <= FLOAT32_ROUNDING_CAP, f"parameters differ by {gap:.2e} after {steps} steps: beyond float32 rounding"
    assert exact_moved > 1e-3, "the float64 run did not move the parameters; its agreement would be vacuous"
    assert exact_gap <= FLOAT64_TRAJECTORY_TOLERANCE, (
        f"parameters differ by {gap:.2e} after {steps} steps in float32 and by {exact_gap:.2e} in float64 "
        f"(> {FLOAT64_TRAJECTORY_TOLERANCE:.0e}): not float32 rounding but a difference in what is computed"
    )


def assert_parameters_agree(
    request: pytest.FixtureRequest, train_args: tuple, trained: dict[str, dict[str, np.ndarray]], tolerance: float
) -> None:
    """The backends' parameters after training (backend_probes.train's ``train_args``) agree to ``tolerance``, or,
    where float32 rounding grew past it (measured on an AMD EPYC: 8.4e-4 after 20 steps of the depthwise block), only
    that rounding parts them (assert_float32_apart_only_by_rounding)."""
    import backend_probes as probes

    gap = max_abs_diff(trained["torch"], trained["tensorflow"])
    if gap <= tolerance:
        return
    workers = request.getfixturevalue("workers")
    spec, weights, optimizer, x, y, batches, lrs, momenta, regularization, multipliers = train_args
    one = (spec, weights, optimizer, x, y, batches[:1], None if lrs is None else lrs[:1])
    one += (None if momenta is None else momenta[:1], regularization, multipliers)
    first = {b: workers[b](probes.train, *one)[0] for b in workers}
    exact = {
        b: workers[b](probes.train, *train_args, RuntimeOptions(threads=1, precision="float64"))[0] for b in workers
    }
    first_gap, exact_gap = (
        max_abs_diff(first["torch"], first["tensorflow"]),
        max_abs_diff(exact["torch"], exact["tensorflow"]),
    )
    moved = max_abs_diff(exact["torch"], weights)
    assert_float32_apart_only_by_rounding(gap, first_gap, exact_gap, moved, tolerance, len(batches))


# float32 rounding through a converted network, relative to its largest logit, measured on one Xeon (docs/zoo.md,
# "Models from elsewhere"): imports 1.0e-6 (resnet18), 1.6e-6 (torchvision's mobilenet_v2), 4.4e-7 (alexnet), 3.4e-6
# (Keras' MobileNetV2); weight files 9.0e-7 (resnet18), 5.9e-7 (mobilenet_v2), 2.7e-6 (Keras' MobileNetV2), 1.7e-6
# (Keras' ResNet50, Caffe convention). The product's own check holds conversions to the same bound.


def assert_logits_match_source(
    ours: dict[str, np.ndarray], reference: np.ndarray, relative: float = SOURCE_RELATIVE_GAP
) -> None:
    """Each backend's logits reproduce the source framework's: within issue 11's bound, 1e-4 x max(1, max |logit|),
    and within ``relative`` x max |logit|. The second keeps the check alive where a randomly initialised network's
    logits are far below 1 (torchvision's MobileNetV2 gives about 1e-9, Keras' 1e-12), which the first, absolute
    there, would pass for any output, zeros included."""
    scale = float(np.max(np.abs(reference)))
    assert scale > 0, "the source's logits are all zero: nothing to compare"
    for backend, logits in ours.items():
        gap = float(np.max(np.abs(logits - reference)))
        assert gap <= 1e-4 * max(1.0, scale), f"{backend}: gap {gap:.3g}, bound {1e-4 * max(1.0, scale):.3g}"
        assert gap <= relative * scale, f"{backend}: gap {gap:.3g} is {gap / scale:.3g} of max |logit| {scale:.3g}"
