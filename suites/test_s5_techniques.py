"""S5, training techniques: every option setting trains to completion in both backends, which agree (exactly, or
within the case's measured gap), and at the quick scale above its measured floor (numbers in the table)."""

import pytest

pytestmark = pytest.mark.xfbench(suites={"smoke": "techniques_smoke", "quick": "techniques", "full": "techniques_full"})


def test_technique_runs_in_both_backends(xfbench_case):
    xfbench_case.check_bar()
