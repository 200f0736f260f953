"""S1 on real Fashion-MNIST files (skipped with the reason when the files are absent)."""

import pytest

pytestmark = pytest.mark.xfbench(suites={"smoke": "fashion_smoke", "quick": "fashion_quick", "full": "fashion_quick"})


def test_fashion_mnist_reaches_its_bar(xfbench_case):
    xfbench_case.check_bar()
