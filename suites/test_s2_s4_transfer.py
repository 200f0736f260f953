"""S2-S4: feature extraction, deep features + scikit-learn, fine-tuning, freezing, transfer between class splits."""

import pytest

pytestmark = pytest.mark.xfbench(suites={"smoke": "transfer_smoke", "quick": "transfer", "full": "transfer_full"})


def test_strategy_reaches_its_bar(xfbench_case):
    xfbench_case.check_bar()
