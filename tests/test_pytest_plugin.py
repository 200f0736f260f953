"""The pytest plugin, exercised with pytester: options, ids, bars, skips, stash state."""

from __future__ import annotations

import pytest

SUITE_BY_NAME = """
import pytest
pytestmark = pytest.mark.xfbench(suites={"smoke": "smoke", "quick": "quick"})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""

TINY_SUITE = """
import pytest
from harness.models import ModelOptions
from harness.suites import Suite, SuiteCase
from harness.pytest_plugin import STATE_KEY

TINY = Suite("tiny", "one fast case", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=2, model_options=ModelOptions(hidden=(16,)), min_test_acc={bar},
              bar_source="test bar"),
), seeds=1)
pytestmark = pytest.mark.xfbench(suites={{"smoke": TINY}})

def test_case(xfbench_case):
    xfbench_case.check_bar()

def test_zz_state(request):
    state = request.config.stash[STATE_KEY]
    assert state.outcome is not None and state.error is None
    assert sorted(state.wanted) == ["tiny-scratch-mlp-digits-torch-s0"]
    assert set(state.outcome.frame["trial_id"]) == set(state.wanted)
"""


def test_options_are_registered_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["xfbench suites:", "*--backend*", "*--scale*", "*--seeds*", "*--ray-address*",
                                 "*--cpus-per-trial*", "*--gpus-per-trial*", "*--results-dir*", "*--data-dir*", "*--baseline*"])


def test_bad_option_values_are_usage_errors(pytester):
    pytester.makepyfile(test_suite=SUITE_BY_NAME)
    assert pytester.runpytest_subprocess("--scale", "huge").ret == pytest.ExitCode.USAGE_ERROR
    assert pytester.runpytest_subprocess("--backend", "mxnet").ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_subprocess("--seeds", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Expected --seeds >= 1. Received: 0*"])


def test_cases_are_parametrized_over_backends_with_readable_ids(pytester):
    pytester.makepyfile(test_suite=SUITE_BY_NAME)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "test_suite.py::test_case[[]torch-scratch-mlp-digits[]]",
        "test_suite.py::test_case[[]torch-scratch-convnet3-digits[]]",
        "test_suite.py::test_case[[]torch-scratch-cnn_small-digits[]]",
        "test_suite.py::test_case[[]tensorflow-scratch-mlp-digits[]]",
        "*6 tests collected*",
    ])
    only_torch = pytester.runpytest_subprocess("--collect-only", "-q", "--backend", "torch", "--scale", "quick")
    only_torch.stdout.fnmatch_lines(["*3 tests collected*"])
    assert "tensorflow" not in only_torch.stdout.str()


def test_a_case_whose_data_is_missing_is_skipped_with_the_reason(pytester, tmp_path):
    pytester.makepyfile(test_suite="""
import pytest
from harness.suites import Suite, SuiteCase
pytestmark = pytest.mark.xfbench(suites={"smoke": Suite("m", "mnist", cases=(SuiteCase("scratch", "mlp", "mnist", epochs=1),))})

def test_case(xfbench_case):
    xfbench_case.check_bar()
""")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = pytester.runpytest_subprocess("-rs", "--data-dir", str(empty), "--backend", "torch")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*data for mnist not found*train-images-idx3-ubyte*"])


@pytest.mark.ray
def test_a_failing_bar_reports_measured_value_bar_and_backend_and_state_lives_in_the_stash(pytester, tmp_path):
    pytester.makepyfile(test_suite=TINY_SUITE.format(bar=1.01))
    result = pytester.runpytest_subprocess("--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*[[]torch[]] scratch-mlp-digits: test accuracy 0.* is below the bar 1.0100 (test bar); mean over 1 seed(s)*",
        "*xfbench comparison*",
    ])
