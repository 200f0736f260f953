"""S2/S3 as the lessons' ImageNet transfer: a backbone as a frozen feature extractor, fine-tuned, and its deep features
fed to scikit-learn; narrow zoo backbones xfbench pretrains itself on the CPU tiers, the lessons' backbones on
CIFAR-10 at 224x224 in the full tier (GPU)."""

import pytest

pytestmark = pytest.mark.xfbench(
    suites={"smoke": "imagenet_transfer_smoke", "quick": "imagenet_transfer_quick", "full": "imagenet_transfer"}
)


def test_imagenet_transfer_case_reaches_its_bar(xfbench_case):
    xfbench_case.check_bar()
