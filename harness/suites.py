"""Named suites: which (strategy, model, dataset) cases run, with which hyperparameters.

The same catalogue feeds ``xfbench run --suite`` and the pytest modules in
``suites/``. Bars (``min_test_acc``) are the acceptance lines the pytest suites
assert; each comes from the notebooks or from measurements in docs/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config import OptimizerConfig, TrialConfig
from harness.models import ModelOptions


@dataclass(frozen=True)
class SuiteCase:
    strategy: str
    model: str
    dataset: str
    epochs: int
    batch_size: int = 64
    init: str = "he_normal"
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig("momentum", lr=0.01))
    model_options: ModelOptions = field(default_factory=ModelOptions)
    min_test_acc: float | None = None  # acceptance bar for the pytest suites
    bar_source: str = ""

    @property
    def case_id(self) -> str:
        return f"{self.strategy}-{self.model}-{self.dataset}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    cases: tuple[SuiteCase, ...]
    seeds: int = 1


_DIGITS_MLP = ModelOptions(hidden=(256,))

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "smoke", "every scratch model on digits, 2 epochs, 1 seed (seconds per case; CI)",
            cases=tuple(
                SuiteCase("scratch", m, "digits", epochs=2, model_options=_DIGITS_MLP if m == "mlp" else ModelOptions(),
                          min_test_acc=0.5, bar_source="smoke floor: far above chance (0.1), far below the quick suite's results")
                for m in ("mlp", "convnet3", "cnn_small")
            ),
            seeds=1,
        ),
        Suite(
            "quick", "the main job: every scratch model on the embedded digits data, 5 epochs, 2 seeds",
            cases=(
                SuiteCase("scratch", "mlp", "digits", epochs=5, model_options=_DIGITS_MLP, min_test_acc=0.88,
                          bar_source="measured 0.926 on digits (docs/measurements.md); bar leaves seed noise room"),
                SuiteCase("scratch", "convnet3", "digits", epochs=5, min_test_acc=0.92,
                          bar_source="measured 0.950 on digits (docs/measurements.md)"),
                SuiteCase("scratch", "cnn_small", "digits", epochs=5, min_test_acc=0.85,
                          bar_source="measured 0.907-0.915 on digits (docs/measurements.md); dropout makes it noisier"),
            ),
            seeds=2,
        ),
        Suite(
            "paired_accuracy", "convnet3 on digits, 10 epochs, 3 seeds, SGD momentum: the backends' accuracy must agree",
            cases=(SuiteCase("scratch", "convnet3", "digits", epochs=10, min_test_acc=0.93,
                             bar_source="measured 0.957 ± 0.010 over 3 seeds (docs/measurements.md)"),),
            seeds=3,
        ),
        Suite(
            "fashion_quick", "convnet3 and the two-layer FC on real Fashion-MNIST, 2 epochs",
            cases=(
                SuiteCase("scratch", "convnet3", "fashion_mnist", epochs=2, min_test_acc=0.85, bar_source="measured 0.883 / 0.882 (docs/measurements.md)"),
                SuiteCase("scratch", "mlp", "fashion_mnist", epochs=2, optimizer=OptimizerConfig("sgd", lr=0.01),
                          min_test_acc=0.75, bar_source="not measured yet: a floor well below what a 4000-unit MLP reaches on Fashion-MNIST"),
            ),
            seeds=1,
        ),
        Suite(
            "s1_cifar10", "SUITES.md S1 on CIFAR-10 with the notebooks' hyperparameters and bars (1 epoch)",
            cases=(
                SuiteCase("scratch", "mlp", "cifar10", epochs=1, init="he_normal", optimizer=OptimizerConfig("sgd", lr=1e-2),
                          model_options=ModelOptions(hidden=(4000,), use_bias=False), min_test_acc=0.40,
                          bar_source="notebook: TwoLayerFC val > 40 %"),
                SuiteCase("scratch", "convnet3", "cifar10", epochs=1, init="he_normal", optimizer=OptimizerConfig("sgd", lr=3e-3),
                          min_test_acc=0.43, bar_source="notebook: ThreeLayerConvNet, plain SGD, val > 43 %"),
                SuiteCase("scratch", "convnet3", "cifar10", epochs=1, init="he_normal", optimizer=OptimizerConfig("nesterov", lr=3e-3),
                          min_test_acc=0.50, bar_source="notebook: ThreeLayerConvNet, Nesterov, val > 50 %"),
            ),
            seeds=1,
        ),
    )
}


def suite(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"Expected a suite name. Received: suite={name!r}. Valid choices: {sorted(SUITES)}")
    return SUITES[name]


def case_trials(case: SuiteCase, suite_name: str, backends: tuple[str, ...], seeds: int) -> list[TrialConfig]:
    """One TrialConfig per (backend, seed) of a case; seeds are 0..seeds-1 so both backends pair up."""
    return [
        TrialConfig(
            strategy=case.strategy, model=case.model, dataset=case.dataset, backend=backend, seed=seed,
            epochs=case.epochs, batch_size=case.batch_size, init=case.init, optimizer=case.optimizer,
            model_options=case.model_options, suite=suite_name,
        )
        for backend in backends
        for seed in range(seeds)
    ]
