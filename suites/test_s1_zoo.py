"""The model zoo trained from scratch: narrow residual, depthwise and dense-connect networks (smoke, CI), every
family on Fashion-MNIST (quick), and the S1 CIFAR-10 networks at full size (full: GPU)."""

import pytest

pytestmark = pytest.mark.xfbench(suites={"smoke": "zoo_smoke", "quick": "zoo_quick", "full": "s1_free_convnet_gpu"})


def test_zoo_model_reaches_its_bar(xfbench_case):
    xfbench_case.check_bar()
