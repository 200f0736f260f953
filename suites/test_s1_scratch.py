"""S1, training from scratch: each case must reach its bar on every backend.

pytest suites/ --scale smoke      # digits, seconds per case (CI)
pytest suites/ --scale quick      # digits, the main job's cases
pytest suites/ --scale full       # CIFAR-10 with the notebooks' hyperparameters and bars
"""

import pytest

pytestmark = pytest.mark.xfbench(suites={"smoke": "smoke", "quick": "quick", "full": "s1_cifar10"})


def test_scratch_reaches_its_bar(xfbench_case):
    xfbench_case.check_bar()
