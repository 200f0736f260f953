"""The pytest plugin, exercised with pytester: options, ids, bars, skips, stash state."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(autouse=True, scope="module")
def _digits_loaded_here(digits):
    """In-process inner sessions (``pytester.runpytest``) load digits through scikit-learn, and pytester forgets the
    modules an inner session imported; numpy's FFT extension then fails to load a second time in this process. Loaded
    here first, those modules outlive every inner session (the test module alone, or first in a worker, failed).
    Likewise pandas' parquet engine: imported again after an inner session, it registers its pyarrow extension types
    a second time and fails, so a later test in this process that writes results failed when this module ran first.
    Likewise compare's scipy, whose FFT extension a test after one that compared runs in its pytester session failed
    to load again."""
    pd.DataFrame({"x": [0]}).to_parquet(io.BytesIO())
    import harness.compare  # noqa: F401


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
    result.stdout.fnmatch_lines(
        [
            "xfbench suites:",
            "*--backend*",
            "*--scale*",
            "*--seeds*",
            "*--ray-address*",
            "*--cpus-per-trial*",
            "*CPUs (and threads) per trial*",  # each with its help (these four had none)
            "*--gpus-per-trial*",
            "*GPUs per trial*",
            "*--results-dir*",
            "*where the session's run directory goes*",
            "*--data-dir*",
            "*directory with dataset files*",
            "*--baseline*",
        ]
    )


def test_bad_option_values_are_usage_errors(pytester):
    # In this process (pytester.runpytest): option parsing and collection start no run, so no new interpreter needed.
    pytester.makepyfile(test_suite=SUITE_BY_NAME)
    # in the CLI's words, Expected / Received / To fix (pytest printed argparse's "invalid choice: ... (choose
    # from ...)" and a type's bare "expected a number >= 1, received 0")
    result = pytester.runpytest("--scale", "quik")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = "Expected --scale to be one of ['smoke', 'quick', 'full']. Received: 'quik'. To fix, did you mean --scale"
    assert f"argument --scale: {said} quick? Otherwise pick one of those." in result.stderr.str()
    result = pytester.runpytest("--backend", "pytorch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Received: 'pytorch'. To fix, did you mean --backend torch? Otherwise pick one*"])
    result = pytester.runpytest("--seeds", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --seeds: Expected --seeds: a number >= 1. Received: 0. To fix, give --seeds such a value."]
    )
    # a suite counted at collection, before any trial is built: pytest's collection error names the test
    result = pytester.runpytest("--seeds", "100000000000")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_suite.py::test_case: Expected at most 100,000 trials in a run. Received: 3 case(s) of smoke*"]
    )
    result = pytester.runpytest("--cpus-per-trial", "two")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --cpus-per-trial: Expected --cpus-per-trial: a whole number. Received: 'two'*"]
    )


def test_the_baseline_gate_decides_with_the_thresholds_it_is_given(pytester, tmp_path):
    """--baseline always used compare's default thresholds: a quiet runner's --time-threshold 1.05 could not be
    given to the gate, nor a looser one to a noisy runner's."""
    from types import SimpleNamespace

    import pandas as pd
    from test_report import _write_run

    from harness.pytest_plugin import _against_baseline

    results = tmp_path / "results"
    _write_run(results, "base", "2026-01-01")
    new = _write_run(results, "new", "2026-01-02", torch_slowdown=1.3, noise=1)
    outcome = SimpleNamespace(frame=pd.read_parquet(new / "results.parquet"), run_id="new", run_dir=str(new))
    for options, regressed in (([], True), (["--baseline-time-threshold", "1.5"], False)):
        config = pytester.parseconfig("--results-dir", str(results), *options)
        gate = _against_baseline(config, outcome, "base", False)
        markdown, usable, cases = gate.report, gate.usable, gate.failing
        assert usable and bool(cases) is regressed and f"**{len(cases)} regression(s)**" in markdown, options
    # a session without a backend the baseline ran (--backend torch) fails the gate, as compare's does: it checked
    # one framework and passed, "0 regression(s)"
    frame = pd.read_parquet(new / "results.parquet")
    torch_only = SimpleNamespace(frame=frame[frame["backend"] == "torch"], run_id="new", run_dir=str(new))
    config = pytester.parseconfig("--results-dir", str(results), "--baseline-time-threshold", "1.5")
    gate = _against_baseline(config, torch_only, "base", False)
    markdown, usable, cases = gate.report, gate.usable, gate.failing
    assert usable and cases == ("[tensorflow] not run",), cases
    said = " ".join(markdown.split())
    assert "has no case of tensorflow, which the base ran" in said
    assert "the session's --baseline check fails on it. Run those backends too" in said  # it said only "not compared"
    assert _against_baseline(config, torch_only, "base", True).failing == ()  # interrupted: what it got to
    # a session interrupted before any case the base has ended compared nothing yet: said so, not "not usable"
    other = _run_of_another_suite(results)
    gate = _against_baseline(config, outcome, str(other), True)
    said, usable = gate.report, gate.usable
    assert not usable and said.startswith("baseline not compared: the session was interrupted before any case")
    pytester.makepyfile(test_suite=SUITE_BY_NAME)
    refused = pytester.runpytest("--baseline-alpha", "1.5")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*argument --baseline-alpha*"])
    # without --baseline the thresholds change nothing: a CI command that lost its --baseline ran on and never failed
    unused = pytester.runpytest_subprocess("--baseline-time-threshold", "1.5", "--baseline-alpha", "0.05")
    assert unused.ret == pytest.ExitCode.USAGE_ERROR
    unused.stderr.fnmatch_lines(
        ["*Expected --baseline with --baseline-time-threshold, --baseline-alpha (they set what the baseline gate*"]
    )
    from harness.pytest_plugin import _check_thresholds_have_a_baseline

    with pytest.raises(pytest.UsageError, match="Expected --baseline with --baseline-times-across-machines "):
        _check_thresholds_have_a_baseline(pytester.parseconfig("--baseline-times-across-machines"))


def test_the_sessions_progress_lines_say_each_retried_attempt_under_max_failures(pytester, monkeypatch):
    """The plugin built its progress without the session's --max-failures, so a retried attempt printed nothing."""
    from harness.pytest_progress import terminal_progress

    config = pytester.parseconfigure("--max-failures", "1")
    lines: list[str] = []
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    monkeypatch.setattr(reporter, "write_line", lambda line, **kwargs: lines.append(line))
    progress = terminal_progress(config)
    progress.row({"trial_id": "t-s0", "status": "failed", "error": "RuntimeError: worker died", "attempt": 0})
    assert lines == ["xfbench t-s0 failed (attempt 1 of 2, retried): RuntimeError: worker died"]


def test_the_terminal_says_what_fails_the_session_against_its_baseline(pytester):
    """A session run with one --backend against a two-backend baseline failed (exit 1) beside "2 passed" and
    "**0 regression(s)**": the "[tensorflow] not run" that failed it was printed nowhere."""
    from types import SimpleNamespace

    from harness.pytest_plugin import STATE_KEY, SessionReport, pytest_terminal_summary

    config = pytester.parseconfig()
    report = SessionReport("p &lt; 0.01", "/r", "**0 regression(s)**, p &lt; 0.05", True, ("[tensorflow] not run",))
    state = SimpleNamespace(baseline_unused="", baseline_left_out=None, reports=[report])
    config.stash[STATE_KEY] = state  # type: ignore[assignment]
    lines: list[str] = []
    terminal = SimpleNamespace(section=lambda *a, **k: None, write_line=lambda line, **k: lines.append(line))
    pytest_terminal_summary(terminal, 1, config)
    assert lines[-1] == "xfbench: the --baseline check fails this session: [tensorflow] not run", lines
    assert "p < 0.01" in lines and "**0 regression(s)**, p < 0.05" in lines  # the markdown's escapes undone


def test_a_baseline_gate_that_compared_nothing_fails_unless_the_session_was_interrupted(pytester, tmp_path):
    """With no case collected (paths that hold no suite module: a CI command that lost its suites) the baseline was
    never looked at and the session passed (exit 0), though a gate that compared nothing must not pass (every case left
    out by pytest's selection warns instead: the next test); an interrupted session's gate, comparing nothing
    yet, turned pytest's exit 2 into 4 with "ran none of this session's cases" (the plugin now leaves pytest's
    status to an interrupted session, and says the gate compared nothing yet:
    test_the_baseline_gate_decides_with_the_thresholds_it_is_given)."""
    results = tmp_path / "results"
    baseline = _run_of_another_suite(results)
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    nothing = pytester.runpytest_subprocess(
        "--results-dir", str(results), "--baseline", str(baseline), "-p", "no:cacheprovider"
    )
    assert nothing.ret == pytest.ExitCode.USAGE_ERROR
    nothing.stdout.fnmatch_lines(["*baseline not usable: no xfbench case ran in this session*"])
    # a listing runs nothing by design: IDEs and CI discover tests with the project's addopts, --baseline among them
    listed = pytester.runpytest_subprocess(
        "--results-dir", str(results), "--baseline", str(baseline), "-p", "no:cacheprovider", "--collect-only", "-q"
    )
    assert listed.ret == pytest.ExitCode.OK, listed.stdout.str()
    assert "baseline not usable" not in listed.stdout.str()


def test_a_baseline_gate_whose_cases_pytests_selection_left_out_warns_and_keeps_pytests_status(pytester):
    """A backend whose every test pytest's own selection left out is no failure of the --baseline gate, yet a session
    whose selection left out every xfbench case failed with exit 4 ("no xfbench case ran"): `pytest -k plain` with
    --baseline in addopts, or `pytest --lf` after a failure outside the suites (--lf then collects no suite module).
    It warns now and keeps pytest's status. Cases selected and all skipped still fail it (exit 4), and so does a
    session of paths holding no suite module (the test before)."""
    results = pytester.path / "results"  # pytest's rootdir, and so its cache, the same in every session below
    baseline = _run_of_another_suite(results)
    pytester.makepyfile(test_plain=PLAIN_TESTS, test_suite=TINY_SUITE.format(bar=0.0).split("def test_zz_state")[0])
    common = ("--results-dir", str(results), "--baseline", str(baseline), "--backend", "torch", "-p", "no:benchmark")
    warned = (
        f"xfbench: warning: baseline not compared with {baseline}: this session's pytest selection (-k plain) left "
        "out every xfbench case, so the --baseline check compared nothing and does not fail on it."
    )
    chosen = pytester.runpytest_subprocess(*common, "-p", "no:cacheprovider", "-k", "plain")
    chosen.assert_outcomes(passed=1, deselected=1)
    assert chosen.ret == pytest.ExitCode.OK, chosen.stdout.str()
    assert warned in " ".join(chosen.stdout.str().split())
    # cases selected, then every one skipped: the gate compared nothing it was asked to
    skipped = pytester.runpytest_subprocess(*common, "-p", "no:cacheprovider", "--scale", "quick")
    skipped.assert_outcomes(passed=1, skipped=1)
    assert skipped.ret == pytest.ExitCode.USAGE_ERROR
    skipped.stdout.fnmatch_lines(["*baseline not usable: no xfbench case ran in this session*"])
    # --lf after a failure outside the suites collects no suite module: the user's selection too
    pytester.makepyfile(test_broken="def test_broken():\n    assert False\n")
    pytester.runpytest_subprocess("test_broken.py")  # pytest's cache records the failure
    last_failed = pytester.runpytest_subprocess(*common, "--lf")
    last_failed.assert_outcomes(failed=1)
    assert last_failed.ret == pytest.ExitCode.TESTS_FAILED, last_failed.stdout.str()
    assert "this session's pytest selection (--lf) left out every xfbench case" in last_failed.stdout.str()
    # pytest-xdist: the worker that collected the cases tells the controller
    pytest.importorskip("xdist")
    spread = pytester.runpytest_subprocess(*common, "-p", "no:cacheprovider", "-k", "plain", "-n", "1")
    spread.assert_outcomes(passed=1)
    assert spread.ret == pytest.ExitCode.OK, spread.stdout.str()
    assert warned in " ".join(spread.stdout.str().split())


def test_the_comparison_is_written_before_pytest_benchmark_can_end_the_summary(pytester):
    """pytest-benchmark raises from its terminal summary on --benchmark-compare-fail; xfbench's ran after it, so
    the comparison table, the results line and the --baseline verdict were never printed."""
    pytest.importorskip("pytest_benchmark")
    config = pytester.parseconfigure()
    order = [impl.plugin_name for impl in reversed(config.hook.pytest_terminal_summary.get_hookimpls())]
    xfbench = next(i for i, name in enumerate(order) if "xfbench" in name)
    benchmark = next(i for i, name in enumerate(order) if "benchmark" in name)
    assert xfbench < benchmark, order


def test_a_suite_module_without_its_marker_or_with_a_bad_one_is_refused_in_the_standard_form(pytester):
    """The missing marker was told in a sentence of its own ("... uses xfbench_case but has no ... marker."), the
    bad one's fix without the marker ("Write the marker so."): both read Expected / Received / To fix now."""
    form = re.compile(r"test_suite\.py::test_case: Expected .+\. Received: .+\. To fix, [a-z].+\.")
    for marker in ("", 'pytestmark = pytest.mark.xfbench(suites={"smok": "smoke"})'):
        pytester.makepyfile(test_suite=SUITE_BY_NAME.replace(SUITE_BY_NAME.splitlines()[2], marker))
        result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
        [said] = [line for line in result.stdout.lines if line.startswith("test_suite.py::test_case: Expected")]
        assert form.fullmatch(said), said
    assert "whose scales ['smok'] are none of those. To fix, write it so: each key one of those scales" in said


def test_cases_are_parametrized_over_backends_with_readable_ids(pytester):
    pytester.makepyfile(test_suite=SUITE_BY_NAME)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_suite.py::test_case[[]torch-scratch-mlp-digits[]]",
            "test_suite.py::test_case[[]torch-scratch-convnet3-digits[]]",
            "test_suite.py::test_case[[]torch-scratch-cnn_small-digits[]]",
            "test_suite.py::test_case[[]tensorflow-scratch-mlp-digits[]]",
            "*6 tests collected*",
        ]
    )
    only_torch = pytester.runpytest("--collect-only", "-q", "--backend", "torch", "--scale", "quick")
    only_torch.stdout.fnmatch_lines(["*3 tests collected*"])
    assert "tensorflow" not in only_torch.stdout.str()


def test_a_case_whose_data_is_missing_is_skipped_with_the_reason(pytester, tmp_path, monkeypatch):
    """The reason is the plugin's own: it never downloads and has no --no-download, yet the skip told the user to run
    without it (the CLI's advice); it names the command that downloads the files and the cache folder they go to."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytester.makepyfile(
        test_suite="""
import pytest
from harness.suites import Suite, SuiteCase
pytestmark = pytest.mark.xfbench(
    suites={"smoke": Suite("m", "mnist", cases=(SuiteCase("scratch", "mlp", "mnist", epochs=1),))}
)

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""
    )
    # without --data-dir: one given that holds nothing is bad input (the test after the no-folder one)
    result = pytester.runpytest_subprocess("-rs", "--backend", "torch")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*data for mnist not found*train-images-idx3-ubyte*"])
    said = " ".join(result.stdout.str().split())
    assert "--no-download" not in said, said
    command = "`xfbench run --strategy scratch --model mlp --dataset mnist --epochs 1 --backend torch`"
    assert f"Or, online, {command} (xfbench run downloads missing files; this pytest plugin never does) downloads " \
        f"them into {tmp_path / 'cache' / 'xfbench' / 'mnist'}." in said, said  # fmt: skip


def test_a_data_folder_that_lost_a_file_fails_collection_as_the_cli_refuses_it(pytester, tmp_path):
    """A --data-dir holding three of mnist's four files: its cases were skipped as "not found" and the session
    passed (exit 0), so a CI job whose data lost a file went green measuring nothing; `xfbench run` exits 2."""
    from test_data import write_mnist_like

    folder = tmp_path / "data"
    write_mnist_like(folder / "mnist", n_train=10, n_test=10, gz=False, manifest=False)
    (folder / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    pytester.makepyfile(test_suite=MNIST_SUITE)
    result = pytester.runpytest_subprocess("-rs", "--backend", "torch", "--data-dir", str(folder))
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout.str()
    assert "skipped" not in result.stdout.str().splitlines()[-1]
    result.stdout.fnmatch_lines(["*t10k-labels-idx1-ubyte*"])


def test_a_data_dir_holding_none_of_the_files_warns_which_copy_was_read_as_the_cli_notes_it(
    pytester, tmp_path, monkeypatch
):
    """The CLI notes a dataset read from outside the --data-dir given (it held none of the files); the plugin read
    the other copy in silence."""
    from test_data import write_mnist_like

    write_mnist_like(tmp_path / "env" / "mnist", n_train=5010, n_test=10, gz=False, manifest=False)
    monkeypatch.setenv("XFBENCH_DATA", str(tmp_path / "env"))
    (tmp_path / "given").mkdir()
    pytester.makepyfile(test_suite=MNIST_SUITE)
    result = pytester.runpytest_subprocess(
        "--collect-only", "--backend", "torch", "--data-dir", str(tmp_path / "given")
    )
    result.stdout.fnmatch_lines(["*note: mnist was read from*--data-dir*given holds none of its files*"])


def test_a_partly_downloaded_user_cache_is_skipped_naming_what_completes_it_under_pytest(
    pytester, tmp_path, monkeypatch
):
    """A download cut short left one file in the user cache: the skip reason said "drop --no-download", a CLI flag
    pytest does not have (the plugin never downloads); it names the command that completes the folder instead."""
    from test_data import write_mnist_like

    write_mnist_like(tmp_path / "full", n_train=10, n_test=10, gz=False, manifest=False)
    cache = tmp_path / "cache"
    (cache / "xfbench" / "mnist").mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "t10k-labels-idx1-ubyte", cache / "xfbench" / "mnist")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    pytester.makepyfile(test_suite=MNIST_SUITE)
    result = pytester.runpytest("-rs", "--backend", "torch", "-p", "no:cacheprovider")  # nothing trains
    result.assert_outcomes(skipped=1)
    said = " ".join(result.stdout.str().split())
    assert "data for mnist not found: Expected every mnist file in the user cache's" in said, said
    assert (
        f"To fix, complete {cache / 'xfbench' / 'mnist'} once online with `xfbench run --strategy scratch --model mlp "
        "--dataset mnist --epochs 1 --backend torch` (xfbench run downloads missing files; this pytest plugin never "
        "does), or delete that folder" in said
    ), said
    assert said.count("To fix,") == 1, said
    assert "--no-download" not in said


def test_a_data_dir_that_is_no_folder_is_a_usage_error_before_any_test_runs_as_the_cli_refuses_it(pytester, tmp_path):
    """`pytest tests suites --data-dir /typo` ran the other tests, loaded digits (built in) from elsewhere and failed
    every suite case at its preflight; a dataset found nowhere else was skipped as not found, exit 0. Refused now,
    with the CLI's message, before any test runs (in this process: nothing trains)."""
    from harness.data.registry import check_data_dir
    from harness.errors import InputError

    pytester.makepyfile(test_plain=PLAIN_TESTS, test_suite=SUITE_BY_NAME)
    a_file = tmp_path / "train-images-idx3-ubyte"
    a_file.write_bytes(b"")
    for given, suites in (
        (tmp_path / "typo", SUITE_BY_NAME),
        (a_file, SUITE_BY_NAME),
        (tmp_path / "typo", MNIST_SUITE),
    ):
        pytester.makepyfile(test_suite=suites)
        with pytest.raises(InputError) as cli:
            check_data_dir(str(given))  # what `xfbench run --data-dir` says, exit 2
        result = pytester.runpytest("--backend", "torch", "--data-dir", str(given), "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
        assert f"ERROR: bad input, nothing was run: {cli.value}" in result.stderr.str()
        assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


def test_a_data_dir_that_holds_no_file_of_the_selected_cases_is_a_usage_error_not_a_pass(pytester, tmp_path):
    """An existing folder holding none of the files (an empty mount, a CI cache not restored): every case was
    skipped for its data and the session passed (exit 0), where `xfbench run --data-dir` exits 2. Without
    --data-dir the case is skipped for its data, as before."""
    pytester.makepyfile(test_plain=PLAIN_TESTS, test_suite=MNIST_SUITE)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = pytester.runpytest("--backend", "torch", "--data-dir", str(empty), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    said = " ".join(result.stderr.str().split())
    expected = f"ERROR: bad input, nothing was run: Expected the data of the selected cases in --data-dir {empty}"
    assert expected in said and "Received: no file of mnist there or elsewhere. To fix, point --data-dir at the " \
        "folder that holds them, or leave --data-dir out to skip the cases whose data this machine lacks (data for " \
        "mnist not found: Expected the mnist files" in said, said  # fmt: skip
    assert "passed" not in result.stdout.str()
    pytester.runpytest("--backend", "torch", "-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=1)


def test_under_xdist_a_data_dir_that_is_no_folder_is_a_usage_error_with_every_case_skipped_for_its_data(
    pytester, tmp_path
):
    """pytest-xdist's controller collects nothing and each worker checked the session's options only when it ran a
    case: with the one case skipped for its data, none ran, and `-n 1 --dist loadgroup --data-dir /typo` passed
    (exit 0). The controller refuses it before any worker starts, as the session without xdist does."""
    pytest.importorskip("xdist")
    from harness.data.registry import check_data_dir
    from harness.errors import InputError

    pytester.makepyfile(test_plain=PLAIN_TESTS, test_suite=MNIST_SUITE)
    typo = tmp_path / "typo"
    with pytest.raises(InputError) as cli:
        check_data_dir(str(typo))
    xdist = ("-n", "1", "--dist", "loadgroup", "--backend", "torch", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*xdist, "--data-dir", str(typo))
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert f"ERROR: bad input, nothing was run: {cli.value}" in result.stderr.str()
    assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


@pytest.mark.ray
def test_a_case_trains_on_the_files_found_at_collection_when_the_data_paths_move_before_the_run(
    pytester, tmp_path, monkeypatch
):
    """As this checkout's tests/conftest.py does: a session fixture points $XFBENCH_DATA at an empty folder after
    collection found the files there (a fresh clone of `make test` failed its Fashion-MNIST cases that way)."""
    from test_data import write_mnist_like

    write_mnist_like(tmp_path / "data" / "mnist", n_train=5200, n_test=200)
    monkeypatch.setenv("XFBENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "moved").mkdir()
    pytester.makeconftest(
        f"""
import pytest

@pytest.fixture(scope="session", autouse=True)
def moved_data_paths():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XFBENCH_DATA", {str(tmp_path / "moved")!r})
        yield
"""
    )
    pytester.makepyfile(test_suite=MNIST_SUITE)
    # --ship-data never: the trial's worker reads the files itself, from the folder its trial records
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(tmp_path / "results"), "--ship-data", "never", "-p",
        "no:cacheprovider", timeout=600,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    # run.json says where the data came from: the files found at collection (it recorded no dataset before)
    (run_json,) = (tmp_path / "results").glob("*/run.json")
    recorded = json.loads(run_json.read_text())["datasets"]
    assert list(recorded) == ["mnist"] and str(tmp_path / "data" / "mnist") in json.dumps(recorded["mnist"]), recorded


def test_bad_input_only_ray_can_judge_fails_every_case_and_ends_the_session_as_a_usage_error(pytester, tmp_path):
    """`--gpus-per-trial 1` on a machine without a GPU: Ray finds no node for a trial, the CLI exits 2, and the
    session failed every case and ended with exit 1, as if a test had failed. (The run's refusal stood in for: a
    real one waits for Ray's start.)"""
    pytester.makeconftest(
        """
import harness.runner
from harness.scheduler import NoNodeFits


def _execute(plan, results_dir, run_id, settings, **kwargs):
    raise NoNodeFits("Expected this machine to offer 1 CPU(s) and 1 GPU(s) per trial. Received: 0 GPUs.")


harness.runner.execute = _execute
"""
    )
    pytester.makepyfile(TINY_SUITE.format(bar=0.0))
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stdout.fnmatch_lines(["*bad input, nothing was run: Expected this machine to offer 1 CPU(s) and 1 GPU(s)*"])


def test_a_dataset_found_outside_the_given_data_dir_is_the_copy_its_trials_read(pytester, tmp_path, monkeypatch):
    """--data-dir holding none of the files: collection read another root's copy (and noted it), but the trials kept
    --data-dir as theirs and searched again in the worker, where a conftest had moved the roots: DataNotFoundError,
    and run.json named a source no trial read. They now record the folder collection read, as without --data-dir."""
    from test_data import write_mnist_like

    write_mnist_like(tmp_path / "data" / "mnist", n_train=5200, n_test=200)
    monkeypatch.setenv("XFBENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "given").mkdir()
    pytester.makeconftest(
        """
import harness.runner


def _execute(plan, results_dir, run_id, settings, **kwargs):  # the trials' data folders, shown instead of a run
    raise RuntimeError(f"data_dirs={sorted({str(t.data_dir) for t in plan.planned_trials})}")


harness.runner.execute = _execute
"""
    )
    pytester.makepyfile(test_suite=MNIST_SUITE)
    common = ("--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*common, "--data-dir", str(tmp_path / "given"), "-p", "no:benchmark")
    result.stdout.fnmatch_lines([f"*data_dirs=[[]'{tmp_path / 'data' / 'mnist'}'[]]*"])
    # the files in --data-dir: the trials keep it, as given
    write_mnist_like(tmp_path / "given" / "mnist", n_train=5200, n_test=200)
    kept = pytester.runpytest_subprocess(*common, "--data-dir", str(tmp_path / "given"), "-p", "no:benchmark")
    kept.stdout.fnmatch_lines([f"*data_dirs=[[]'{tmp_path / 'given'}'[]]*"])


@pytest.mark.ray
def test_a_failing_bar_reports_measured_value_bar_and_backend_and_state_lives_in_the_stash(pytester, tmp_path):
    pytester.makepyfile(test_suite=TINY_SUITE.format(bar=1.0))
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider", timeout=600
    )
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            # the run, inside the first case's setup, says how far it got (it was silent for the whole run)
            "xfbench [[]1/1, * s[]] tiny-scratch-mlp-digits-torch-s0: ok, test accuracy 0.*",
            "*[[]torch[]] scratch-mlp-digits: test accuracy 0.* is below the bar 1.0000 (test bar); "
            "mean over 1 seed(s)*",
            "*xfbench comparison*",
        ]
    )


# A stand-in for the Ray run, for checks that are about what the plugin does with an outcome: after collection it
# stores an outcome built from the collected trials, with the accuracy given per (backend, seed); a trial with no
# entry recorded no row. The plugin then never starts a run of its own.
RECORDED_RUN_CONFTEST = """
import pytest
from harness.provenance import MachineInfo
from harness.pytest_plugin import STATE_KEY
from harness.results import to_frame
from harness.runner import RunOutcome
from harness.summary import summarize
from harness.trial import RunInfo, base_row

ACCURACY = {accuracy!r}
STATUS = {status!r}
INEXACT = {inexact!r}
NO_LOSS = {no_loss!r}  # as deep_features' row: a scikit-learn head's fit records no training loss


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    state = session.config.stash[STATE_KEY]
    rows = []
    for trial in state.wanted.values():
        if (trial.backend, trial.seed) in ACCURACY:
            row = base_row(trial, RunInfo("recorded", "c"), MachineInfo.current())
            acc = ACCURACY[(trial.backend, trial.seed)]
            # validation accuracy 0.1 below test accuracy: a bar on one is not a bar on the other
            row.update(stage="trials", phase="train", epoch=1, test_acc=acc, val_acc=acc - 0.1,
                       train_loss=float("nan") if NO_LOSS else 1.0 - acc,
                       status="ok", warmup=True, epoch_time_s=1.0, samples_per_s=1.0, timestamp="t", inexact=INEXACT)
            rows.append(row)
    frame = to_frame(rows)
    state.outcome = RunOutcome("recorded", session.config.rootpath, frame, summarize(frame), "", 0.0, STATUS)
"""

TWO_SEED_SUITE = """
import pytest
from harness.models import ModelOptions
from harness.suites import Suite, SuiteCase

SUITE = Suite("pair", "one case, two seeds", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=ModelOptions(hidden=(16,)){gap}),
), seeds=2)
pytestmark = pytest.mark.xfbench(suites={{"smoke": SUITE}})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""


def _recorded_conftest(accuracy, status="finished", inexact="", no_loss=False):
    return RECORDED_RUN_CONFTEST.format(accuracy=accuracy, status=status, inexact=inexact, no_loss=no_loss)


def _recorded_run(pytester, accuracy, status="finished", gap="", inexact="", no_loss=False):
    pytester.makeconftest(_recorded_conftest(accuracy, status, inexact, no_loss))
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=gap))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark")


def test_a_backbone_bar_holds_the_source_accuracy_the_rows_record_and_fails_where_none_is(pytester):
    """A LinearSVC on an untrained cnn_small's digits features scores 0.96, over the transfer suite's deep-feature
    floors: a regression that left the backbones untrained passed them. min_backbone_acc holds the backbone itself,
    by the mean over trials of the source test accuracy its rows record (seeds 0 and 1: 0.5 and 0.625 here)."""
    both = {(b, s): 0.9 for b in ("torch", "tensorflow") for s in (0, 1)}
    recorded = _recorded_conftest(both).replace(
        "inexact=INEXACT)", "inexact=INEXACT, backbone_test_acc=0.5 + trial.seed / 8)"
    )
    pytester.makeconftest(recorded)
    args = ("-p", "no:cacheprovider", "-p", "no:benchmark")
    fine_tune = TWO_SEED_SUITE.replace('SuiteCase("scratch"', 'SuiteCase("fine_tune"')
    pytester.makepyfile(test_suite=fine_tune.format(gap=", min_backbone_acc=0.5625"))
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)
    pytester.makepyfile(test_suite=fine_tune.format(gap=", min_backbone_acc=0.5626"))
    below = pytester.runpytest_subprocess(*args)
    below.assert_outcomes(failed=2)
    below.stdout.fnmatch_lines(
        [
            "*[[]torch[]] fine_tune-mlp-digits: its backbone's test accuracy on the source task 0.5625 is below the "
            "bar 0.5626; mean over 2 seed(s)*"
        ]
    )
    pytester.makeconftest(_recorded_conftest(both))  # rows without a backbone's accuracy: said, not passed
    unmeasured = pytester.runpytest_subprocess(*args)
    unmeasured.assert_outcomes(failed=2)
    unmeasured.stdout.fnmatch_lines(
        ["*fine_tune-mlp-digits: no row holds its backbone's test accuracy on the source task for the bar 0.5626*"]
    )
    # a case that trains no backbone is refused with the bar, before any run
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=", min_backbone_acc=0.5"))
    refused = pytester.runpytest_subprocess(*args)
    assert refused.ret != pytest.ExitCode.OK
    refused.stdout.fnmatch_lines(["*Expected min_backbone_acc only on a case that starts from a backbone xfbench*"])


def test_the_clis_scheduling_options_reach_the_sessions_run(pytester):
    """The session's cases share one run, two trials at a time here: a case's timings moved with the modules beside
    it, and the comparison's advice, --max-concurrent 1, was refused by pytest ("unrecognized arguments")."""
    both = {(b, s): 0.9 for b in ("torch", "tensorflow") for s in (0, 1)}
    seen = "(pytest.__file__ and open('execution.txt', 'w').write(repr(state.execution)))"
    pytester.makeconftest(_recorded_conftest(both).replace("    rows = []\n", f"    {seen}\n    rows = []\n", 1))
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))
    args = ("-p", "no:cacheprovider", "-p", "no:benchmark")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)
    default = (pytester.path / "execution.txt").read_text()
    assert "max_concurrent=None" in default and "max_failures=0" in default and "fresh_workers=False" in default
    given = ("--max-concurrent", "1", "--max-failures", "2", "--fresh-workers")
    pytester.runpytest_subprocess(*args, *given).assert_outcomes(passed=2)
    chosen = (pytester.path / "execution.txt").read_text()
    assert "max_concurrent=1" in chosen and "max_failures=2" in chosen and "fresh_workers=True" in chosen, chosen
    refused = pytester.runpytest_subprocess(*args, "--max-concurrent", "0")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["*--max-concurrent: Expected --max-concurrent: a whole number >= 1 or auto. Received: '0'*"]
    )


def test_a_case_rerun_alone_in_one_backend_warns_that_its_agreement_went_unchecked(pytester):
    """A case fails for a disagreement; re-running its node id (or -k torch) trained torch alone, nothing was
    compared, and the test passed in silence while the disagreement stood."""
    pytester.makeconftest(_recorded_conftest({("torch", 0): 0.9, ("tensorflow", 0): 0.9, ("torch", 1): 0.8,
                                              ("tensorflow", 1): 0.75}))  # fmt: skip
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))
    both = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark")
    both.assert_outcomes(failed=2)
    alone = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark", "-k", "torch")
    alone.assert_outcomes(passed=1, warnings=1)
    alone.stdout.fnmatch_lines(
        ["*[[]torch[]] scratch-mlp-digits: agreement with tensorflow not checked: its test of this case was deselect*"]
    )
    assert "not checked" not in both.stdout.str()


def test_a_report_html_that_was_not_drawn_is_said_in_the_sessions_summary(pytester):
    """The runner's warning about a missing report.html (matplotlib not installed) went to the first case's stderr,
    which pytest shows only for a failing case: a passing session ended with no page and no word of why."""
    both = {(b, s): 0.9 for b in ("torch", "tensorflow") for s in (0, 1)}
    conftest = _recorded_conftest(both).replace(
        '"", 0.0, STATUS)', '"", 0.0, STATUS, report_problem="no report.html (InputError: Expected matplotlib)")'
    )
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["results: *", "xfbench: warning: no report.html (InputError: Expected matplotlib)"])
    pytester.makeconftest(_recorded_conftest(both))  # a page drawn (or not asked for): no such line
    assert (
        "no report.html"
        not in pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark").stdout.str()
    )


def test_a_one_epoch_case_records_no_benchmark_round_and_says_why(pytester, tmp_path):
    """docs/regressions.md: tests record steady-state epoch times, and a one-epoch case has none; its warm-up epoch
    (recorded rows: one warm-up epoch per trial) went into pytest-benchmark as if it were one."""
    both = {(b, s): 0.9 for b in ("torch", "tensorflow") for s in (0, 1)}
    pytester.makeconftest(_recorded_conftest(both))
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))
    saved = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--benchmark-json={saved}")
    result.assert_outcomes(passed=2)
    assert not saved.exists()  # pytest-benchmark saves no file when no benchmark recorded a round
    result.stdout.fnmatch_lines(
        ["*[[]torch[]] scratch-mlp-digits: no benchmark recorded: its trials ran no steady-state epoch (one epoch*"]
    )


# Recorded rows for the benchmark's checks: each torch trial retried once after its worker died (the driver's row,
# with no framework version; seed 1's first attempt had timed a 9 s warm-up epoch first), then two epochs ok; the
# tensorflow trials ran two epochs, seed 1 diverging in its second.
RETRIED_RUN_CONFTEST = """
import pytest
from harness.provenance import MachineInfo
from harness.pytest_plugin import STATE_KEY
from harness.results import to_frame
from harness.runner import RunOutcome
from harness.summary import summarize
from harness.trial import RunInfo, base_row, failure_row

RUN = RunInfo("recorded", "c")


def epoch(trial, attempt, n, seconds, status="ok"):
    row = base_row(trial, RUN, MachineInfo.current())
    row.update(stage="trials", phase="train", epoch=n, attempt=attempt, status=status, warmup=n == 1,
               epoch_time_s=seconds, samples_per_s=1.0, train_loss=0.1, val_acc=0.8, timestamp="t",
               framework_version="9.9", test_acc=0.9 if n == 2 and status == "ok" else float("nan"), threads=1,
               device="cpu")
    return row


def dead_worker(trial, attempt):
    return {**failure_row(trial, RUN, "worker died", machine=MachineInfo.unknown()), "attempt": attempt}


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    state = session.config.stash[STATE_KEY]
    rows = []
    for trial in state.wanted.values():
        if trial.backend == "torch":
            rows += [dead_worker(trial, 0)] if trial.seed == 0 else [epoch(trial, 0, 1, 9.0), dead_worker(trial, 0)]
            rows += [epoch(trial, 1, 1, 1.0), epoch(trial, 1, 2, 0.5)]
        else:
            rows += [epoch(trial, 0, 1, 1.0), epoch(trial, 0, 2, 0.5, "ok" if trial.seed == 0 else "diverged")]
    frame = to_frame(rows)
    state.outcome = RunOutcome("recorded", session.config.rootpath, frame, summarize(frame), "", 0.0, "finished")
"""


def test_a_benchmark_saves_a_short_param_and_only_cases_whose_trials_all_ended_ok_timed_by_their_last_attempts(
    pytester, tmp_path
):
    """What pytest-benchmark saves per test: its parameter was the CaseHandle's dataclass repr, the whole session
    state with it (27 KB for one trial, growing with the session); a case with a diverged trial recorded the other
    trials' epochs as the case's time, beside its failure; warm-up times came from every row (an earlier attempt's
    too) and the framework version from the first row, here the driver's, which has none. The saved statistics are
    the recorded epochs' exactly (the check behind them: rounds pytest-benchmark did not time with xfbench's clock
    are refused, tests/test_benchrecord.py); the replay clock's running sum made seed 1's 0.6 s 0.6000000000000001."""
    steady = {0: 0.5, 1: 0.6}  # torch's steady epoch time per seed; each trial's warm-up epoch 1.0 s
    pytester.makeconftest(
        RETRIED_RUN_CONFTEST.replace("epoch(trial, 1, 2, 0.5)", "epoch(trial, 1, 2, 0.5 + trial.seed / 10)")
    )
    pytester.makepyfile(
        test_suite=TWO_SEED_SUITE.format(gap="").replace("xfbench_case.check_bar()", "pass")  # the benchmark alone
    )
    saved = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--benchmark-json={saved}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]tensorflow[]] scratch-mlp-digits: no benchmark recorded: 1 of its 2 trials did not end ok "
            "(pair-scratch-mlp-digits-tensorflow-s1), so its epoch times would stand for a part of the case*"
        ]
    )
    (torch,) = json.loads(saved.read_text())["benchmarks"]
    (param,) = torch["params"].values()  # pytest-benchmark saves it as UNSERIALIZABLE[<its repr>]
    assert "CaseHandle(pair:scratch-mlp-digits [torch])" in param and len(param) < 80, param[:200]
    assert torch["stats"]["rounds"] == 2
    stats = torch["stats"]
    assert (stats["median"], stats["min"], stats["max"]) == (statistics.median(steady.values()), 0.5, 0.6), stats
    assert torch["extra_info"]["steady_epoch_time_s_median_per_phase"] == {"train": stats["median"]}  # summary's
    assert torch["extra_info"]["warmup_epoch_time_s"] == [1.0, 1.0]  # not the first attempt's 9 s
    assert torch["extra_info"]["framework_version"] == "9.9"
    # what the times depend on beyond the code, for pytest-benchmark's compare to show (it saw none of it)
    info = torch["extra_info"]
    assert (info["threads"], info["device"], info["max_concurrent"]) == ("1", "cpu", "auto"), info


def test_a_trial_retried_and_then_ok_passes_its_check_and_one_that_ended_diverged_fails_it(pytester):
    """Under --max-failures a trial's earlier attempt leaves a failed row: the case failed its test for it ("trials
    not ok: ... worker died") while summary.md, compare and its benchmark read the last attempt, ok."""
    pytester.makeconftest(RETRIED_RUN_CONFTEST)
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark", "--max-failures", "1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*[[]tensorflow[]] scratch-mlp-digits: trials not ok: *-s1: diverged at epoch 2*"])
    assert "worker died" not in result.stdout.str() and "re-run those alone" not in result.stdout.str()
    # a trial that failed (not diverged) runs again alone with the CLI's resume: said, as the CLI says it
    pytester.makeconftest(
        RETRIED_RUN_CONFTEST.replace('"ok" if trial.seed == 0 else "diverged"', '"ok" if trial.seed == 0 else "failed"')
    )
    failed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark", "--max-failures", "1")
    failed.assert_outcomes(passed=1, failed=1)
    failed.stdout.fnmatch_lines(["*trials not ok: *-s1: failed* (re-run those alone: `xfbench run --resume *`)*"])


def test_the_documented_suite_of_your_own_collects_and_checks_its_bars(pytester):
    """docs/regressions.md's module, as a user copies it: one test per (backend, case), each against its own bar
    (recorded results: 0.6 on every seed, above the momentum case's 0.45, below the Adam case's 0.85)."""
    text = (Path(__file__).parents[1] / "docs" / "regressions.md").read_text()
    module = text.split("### A suite of your own")[1].split("```python\n")[1].split("```")[0]
    pytester.makeconftest(_recorded_conftest({(b, s): 0.6 for b in ("torch", "tensorflow") for s in (0, 1)}))
    pytester.makepyfile(test_my_suite=module)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_reaches_its_bar*scratch-mlp+momentum-500-digits* PASSED*",
            "*[[]torch[]] scratch-mlp+adam-digits: test accuracy 0.6000 is below the bar 0.8500 (measured 0.9208*",
        ]
    )


def test_a_case_that_measured_nothing_fails_with_the_reason(pytester):
    result = _recorded_run(pytester, {("torch", 0): 0.9, ("torch", 1): 0.9})
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]tensorflow[]] scratch-mlp-digits: measured nothing: no ok row with a test "
            "accuracy for pair-scratch-mlp-digits-tensorflow-s0, "
            "pair-scratch-mlp-digits-tensorflow-s1*"
        ]
    )


def test_an_interrupted_run_stops_the_session_naming_the_resume_command_with_its_results_dir(pytester):
    """Ctrl-C, caught by the run to record what it had, stops pytest as pytest's own KeyboardInterrupt does (the
    session went on to the next module) and names summary.md's resume command, with --results-dir (it had none)."""
    both = {(b, s): 0.9 for b in ("torch", "tensorflow") for s in (0, 1)}
    pytester.makepyfile(test_zz_next_module=PLAIN_TESTS)
    result = _recorded_run(pytester, both, status="interrupted")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes()  # nothing checked, nothing of the next module run
    run_dir = pytester.path  # the recorded outcome's run directory
    result.stdout.fnmatch_lines(
        [
            "*xfbench comparison*",  # what the run measured before the stop is still shown
            "*Exit: the xfbench run was interrupted, so no case was checked; finish it with "
            f"`xfbench run --resume {run_dir.name} --results-dir {run_dir.parent}`*",
        ]
    )


def test_backends_that_disagree_beyond_the_case_gap_fail_naming_seeds_and_values(pytester):
    accuracy = {("torch", 0): 0.9, ("tensorflow", 0): 0.9, ("torch", 1): 0.8, ("tensorflow", 1): 0.75}
    result = _recorded_run(pytester, accuracy)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]torch[]] scratch-mlp-digits*: backends disagree by more than max_backend_gap 0.0000 "
            "on seed(s) [[]1[]]: "
            "seed 1: torch 0.8000, tensorflow 0.7500 (training losses part at epoch 1: 0.2 vs tensorflow 0.25)*",
        ]
    )
    assert "seed 0:" not in result.stdout.str() and "by design" not in result.stdout.str()
    # rows that say why their backends cannot agree exactly: the failure says it too
    pytester.path.joinpath("conftest.py").unlink()
    reason = "mixed_bfloat16: each framework chooses which ops run in reduced precision"
    result = _recorded_run(pytester, accuracy, inexact=reason)
    result.stdout.fnmatch_lines(
        [f"*tensorflow 0.7500 (training losses part at epoch 1*Not computed exactly alike by design: {reason}*"]
    )
    # no loss to compare: said so (it said the losses agreed at every epoch)
    pytester.path.joinpath("conftest.py").unlink()
    result = _recorded_run(pytester, accuracy, no_loss=True)
    result.stdout.fnmatch_lines(["*tensorflow 0.7500 (no epoch's training loss recorded by both*"])
    assert "agree at every epoch" not in result.stdout.str()


def test_backends_that_agree_within_the_case_gap_pass(pytester):
    same = {(b, s): acc for b in ("torch", "tensorflow") for s, acc in ((0, 0.9), (1, 0.8))}
    _recorded_run(pytester, same).assert_outcomes(passed=2)
    pytester.path.joinpath("conftest.py").unlink()
    within = {("torch", 0): 0.9, ("tensorflow", 0): 0.9, ("torch", 1): 0.8, ("tensorflow", 1): 0.75}
    _recorded_run(pytester, within, gap=", max_backend_gap=0.05").assert_outcomes(passed=2)


def test_a_first_epoch_loss_gap_fails_backends_whose_accuracy_agrees_but_whose_first_loss_does_not(pytester):
    """s1_alexnet_smoke stays at chance, where two networks predicting one class each agree on the test accuracy
    whatever they computed: its agreement check passed backends that drew their own dropout masks. A case's
    max_first_epoch_loss_gap holds the first epoch's training losses together, relative to the larger."""
    same = {(b, s): acc for b in ("torch", "tensorflow") for s, acc in ((0, 0.5), (1, 0.4))}
    recorded = _recorded_conftest(same).replace(
        "else 1.0 - acc", "else (1.0 - acc) * (LOSS_SCALE if (trial.backend, trial.seed) == ('tensorflow', 1) else 1)"
    )
    args = ("-p", "no:cacheprovider", "-p", "no:benchmark")
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=", max_first_epoch_loss_gap=1e-3"))
    pytester.makeconftest("LOSS_SCALE = 1.002\n" + recorded)  # seed 1: 0.6 and 0.6012, 2.0e-3 apart
    apart = pytester.runpytest_subprocess(*args)
    apart.assert_outcomes(failed=2)
    apart.stdout.fnmatch_lines(
        [
            "*[[]torch[]] scratch-mlp-digits: the backends' training losses of the first epoch differ by more than "
            "max_first_epoch_loss_gap 0.001 (relative) on seed(s) [[]1[]]: seed 1: torch 0.6, tensorflow 0.6012*"
        ]
    )
    pytester.makeconftest("LOSS_SCALE = 1.0009\n" + recorded)  # 9.0e-4 apart: within
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)
    pytester.makeconftest("LOSS_SCALE = 1.002\n" + recorded)
    pytester.makepyfile(test_suite=TWO_SEED_SUITE.format(gap=""))  # not checked unless the case sets it
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)
    from harness.suites import suite

    [alexnet] = suite("s1_alexnet_smoke").cases
    assert alexnet.max_first_epoch_loss_gap == 1e-3  # the CI tier's only check of what AlexNet computes
    from harness.errors import InputError
    from harness.suites import SuiteCase

    with pytest.raises(InputError, match=r"max_first_epoch_loss_gap=2\. To fix, give a fraction, such as 0\.001"):
        SuiteCase("scratch", "mlp", "digits", 1, max_first_epoch_loss_gap=2)
    with pytest.raises(InputError, match=r"\(a relative difference, such as 0\.001\)\. Received: .*'1e-3', a str"):
        SuiteCase("scratch", "mlp", "digits", 1, max_first_epoch_loss_gap="1e-3")  # type: ignore[arg-type]


def test_a_validation_bar_is_held_to_the_final_validation_accuracy_not_the_test_accuracy(pytester):
    both = {(b, s): acc for b in ("torch", "tensorflow") for s, acc in ((0, 0.9), (1, 0.8))}  # val 0.8 / 0.7
    bars = ', min_test_acc=0.84, min_val_acc={}, bar_source="the notebook\'s val bar"'
    _recorded_run(pytester, both, gap=bars.format(0.74)).assert_outcomes(passed=2)  # test 0.85, val 0.75: both held
    pytester.path.joinpath("conftest.py").unlink()
    result = _recorded_run(pytester, both, gap=bars.format(0.76))
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]torch[]] scratch-mlp-digits: validation accuracy 0.7500 is below the bar 0.7600 "
            "(the notebook's val bar); mean over 2 seed(s)*"
        ]
    )


KEPT_AND_WORSE_SUITE = """
import pytest
from harness.models import ModelOptions
from harness.suites import Suite, SuiteCase

TINY = ModelOptions(hidden=(16,))
SUITE = Suite("pair", "two cases, three seeds", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=TINY, variant="kept"),
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=TINY, variant="worse"),
), seeds=3)
pytestmark = pytest.mark.xfbench(suites={"smoke": SUITE})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""


def _recorded_baseline(run_dir: Path, accuracy: dict[tuple[str, str, int], float]) -> Path:
    """A finished run of suite ``pair``'s trials, one row each: accuracy by (backend, variant, seed)."""
    from harness.config import TrialConfig
    from harness.models import ModelOptions
    from harness.provenance import MachineInfo
    from harness.results import ResultsWriter
    from harness.trial import RunInfo, base_row

    writer = ResultsWriter(run_dir)
    for (backend, variant, seed), acc in accuracy.items():
        trial = TrialConfig("scratch", "mlp", "digits", backend, seed, 1, suite="pair", variant=variant,
                            model_options=ModelOptions(hidden=(16,)))  # fmt: skip
        row = base_row(trial, RunInfo(run_dir.name, "c"), MachineInfo.current())
        row.update(stage="trials", phase="train", epoch=1, test_acc=acc, val_acc=acc - 0.1, train_loss=1.0 - acc,
                   status="ok", warmup=True, epoch_time_s=1.0, samples_per_s=1.0, timestamp="t")  # fmt: skip
        writer.add_row(row)
        writer.finish_trial(trial.trial_id)
    writer.finalize()
    run = {"run_id": run_dir.name, "started": "0", "status": "finished"}
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def test_a_case_that_regressed_against_the_baseline_fails_its_own_test_naming_the_figures(pytester, tmp_path):
    """--baseline failed the session alone: a regressed case's test passed ("4 passed", exit 1), so JUnit XML showed
    every test green and --lf had nothing to re-run. Now that case's test fails with its figures and the baseline, the
    unchanged one passes; under pytest-xdist alike. What no test owns (a backend the baseline ran and the session did
    not) still fails the session, every test passed."""
    import xml.etree.ElementTree as ET

    seeds = (0, 1, 2)
    base = _recorded_baseline(tmp_path / "base", {("torch", v, s): 0.9 for v in ("kept", "worse") for s in seeds})
    # the session: "kept" as in the baseline, "worse" 0.50, 0.52, 0.54 (Δ -38 pp, paired over seeds)
    recorded = _recorded_conftest({(v, s): 0.9 if v == "kept" else 0.5 + 0.02 * s for v in ("kept", "worse")
                                   for s in seeds})  # fmt: skip
    pytester.makeconftest(recorded.replace("(trial.backend, trial.seed)", "(trial.variant, trial.seed)"))
    pytester.makepyfile(test_suite=KEPT_AND_WORSE_SUITE)
    common = ("-p", "no:cacheprovider", "-p", "no:benchmark", "--backend", "torch", "--baseline", str(base))
    result = pytester.runpytest_subprocess(*common, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    regressed = (
        f"[torch] scratch-mlp+worse-digits: regressed against --baseline {base}: test accuracy 0.9000 → 0.5200, "
        "Δ -38.00 pp [95 % CI -42.97, -33.03]: regression; epoch time: n/a; trials: unchanged"
    )
    said = result.stdout.str()
    assert regressed in said and "FAILED test_suite.py::test_case[torch-scratch-mlp+worse-digits]" in said, said
    assert "**1 regression(s)**: pair:scratch-mlp+worse-digits [torch]" in said  # the terminal's report, as before
    [suite] = ET.parse(pytester.path / "junit.xml").getroot().iter("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    [failure] = suite.iter("failure")
    assert regressed in (failure.get("message") or "")
    # pytest-xdist: the worker that runs the suites fails its own test; the controller prints the report once
    pytest.importorskip("xdist")
    spread = pytester.runpytest_subprocess(*common, "-n", "1", "--dist", "loadgroup")
    spread.assert_outcomes(passed=1, failed=1)
    assert spread.ret == pytest.ExitCode.TESTS_FAILED and regressed in spread.stdout.str()
    assert spread.stdout.str().count("xfbench regressions against the baseline") == 1
    # a backend the baseline ran that the session did not: no test's to fail, so the session fails, as before
    both = _recorded_baseline(tmp_path / "both", {(b, "kept", s): 0.9 for b in ("torch", "tensorflow") for s in seeds})
    alone = pytester.runpytest_subprocess(*common[:-1], str(both), "-k", "kept")
    alone.assert_outcomes(passed=1, deselected=1)
    assert alone.ret == pytest.ExitCode.TESTS_FAILED
    alone.stdout.fnmatch_lines(["xfbench: the --baseline check fails this session: [[]tensorflow[]] not run"])


def test_a_backend_pytests_selection_left_out_is_said_not_compared_and_passes_the_gate(pytester, tmp_path):
    """`pytest --lf` once a torch regression was fixed (or -k torch, -m, --deselect, a node id) left every tensorflow
    test out, and the --baseline gate failed the session with "[tensorflow] not run" though nothing regressed. The
    user chose not to run that backend: the comparison says so, naming the selection, and the gate passes; one that
    --backend dropped still fails it (test_a_case_that_regressed_against_the_baseline_fails_its_own_test_…)."""
    seeds, variants = (0, 1, 2), ("kept", "worse")
    both = {(b, v, s): 0.9 for b in ("torch", "tensorflow") for v in variants for s in seeds}
    base = _recorded_baseline(tmp_path / "both", both)

    def session_scoring(worse: float) -> str:  # the session's accuracy: "kept" as in the baseline, "worse" as given
        accuracy = {(v, s): 0.9 if v == "kept" else worse + 0.02 * s for v in variants for s in seeds}
        return _recorded_conftest(accuracy).replace("(trial.backend, trial.seed)", "(trial.variant, trial.seed)")

    pytester.makeconftest(session_scoring(0.5))
    pytester.makepyfile(test_suite=KEPT_AND_WORSE_SUITE)
    common = ("-p", "no:benchmark", "--baseline", str(base))
    regressed = pytester.runpytest_subprocess(*common, "-k", "torch")
    regressed.assert_outcomes(passed=1, failed=1, deselected=2)
    # the regressed case alone fails the session: no "; [tensorflow] not run" after it
    regressed.stdout.fnmatch_lines(
        ["xfbench: the --baseline check fails this session: pair:scratch-mlp+worse-digits [[]torch[]]"]
    )
    pytester.makeconftest(session_scoring(0.88))  # the regression fixed: 0.88, 0.90, 0.92
    rerun = pytester.runpytest_subprocess(*common, "--lf")
    rerun.assert_outcomes(passed=1)  # --lf narrows the collection itself: the other three are not even deselected
    said = " ".join(rerun.stdout.str().split())
    assert rerun.ret == pytest.ExitCode.OK and "fails this session" not in said, said
    assert (
        "has no case of tensorflow, which the base ran (2 case(s)): left out by this session's pytest selection "
        "(--lf), so not compared and the session's --baseline check does not fail on it. To compare it, run the "
        "session without that selection (where -k or -m narrowed it, -k tensorflow selects its tests too; --lf and "
        "node ids cannot)"  # a --lf session with -k tensorflow added still runs only the last failures (review 158)
    ) in said, said
    # a node id narrows the collection without deselecting: the same
    alone = pytester.runpytest_subprocess(*common, "test_suite.py::test_case[torch-scratch-mlp+kept-digits]")
    alone.assert_outcomes(passed=1)
    assert alone.ret == pytest.ExitCode.OK
    assert "left out by this session's pytest selection (node ids)" in " ".join(alone.stdout.str().split())
    from harness.pytest_plugin import _pytest_selection

    assert (
        _pytest_selection(pytester.parseconfig("-m", "not slow", "--deselect", "t.py::x"))
        == "-m 'not slow', --deselect"
    )


def test_a_regressed_cases_figures_give_the_time_ratio_with_its_interval_and_p_regressions_first():
    from harness.compare import CaseComparison
    from harness.reporting import regression_figures

    slower = CaseComparison("s:c", "torch", 1.0, 1.3, 1.3, 0.001, "regression", 0.9, 0.9, 0.0, (0.0, 0.0),
                            "unchanged", "threads differ", time_ci=(1.2, 1.4))  # fmt: skip
    assert regression_figures(slower) == (
        "epoch time 1.0000 s → 1.3000 s, ratio 1.300 [95 % CI 1.200, 1.400], p 0.001: regression; "
        "test accuracy 0.9000 → 0.9000, Δ +0.00 pp [95 % CI +0.00, +0.00]: unchanged; trials: unchanged "
        "(threads differ)"
    )


def test_bad_input_fails_its_own_case_before_ray_or_a_framework_starts_and_the_other_cases_run(pytester, tmp_path):
    """Each case is preflighted on its own: a bad one fails with its reason, in the suite's terms (a SuiteCase field,
    not a CLI flag pytest does not have), and the others run (every case failed with the one bad case's message)."""
    pytester.makeconftest(SEEN_TRIALS_CONFTEST)
    pytester.makepyfile(
        test_suite="""
import sys
import pytest
from harness.config import TransferOptions
from harness.data.tasks import TaskSpec
from harness.suites import Suite, SuiteCase

SUITE = Suite("bad", "cases no worker could run, and a good one", cases=(
    SuiteCase("freeze_early", "cnn_small", "digits", epochs=1,
              transfer=TransferOptions(freeze_groups=2, source_epochs=1)),
    SuiteCase("scratch", "mlp", "digits", epochs=1, task=TaskSpec(classes=(0, 11)), variant="cls"),
    SuiteCase("scratch", "mlp", "digits", epochs=1),
))
pytestmark = pytest.mark.xfbench(suites={"smoke": SUITE})

def test_case(xfbench_case):
    xfbench_case.check_bar()

def test_zz_nothing_started():
    assert sorted(m for m in ("ray", "torch", "tensorflow") if m in sys.modules) == []
"""
    )
    results = tmp_path / "results"
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(results), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=3, passed=1)  # each case's fixture fails with its own reason
    result.stdout.fnmatch_lines_random(
        [
            "*[[]torch[]] freeze_early-cnn_small-digits: bad input, this case was not run: "
            "Expected transfer.freeze_groups < 2*",
            "*[[]torch[]] scratch-mlp+cls-digits: bad input, this case was not run: *task.classes*",
            "*[[]torch[]] scratch-mlp-digits: the xfbench run failed before this case could be measured: "
            "RuntimeError: would run [[]'bad-scratch-mlp-digits-torch-s0'[]]*",
        ]
    )
    assert "--classes" not in result.stdout.str() and "--freeze-groups" not in result.stdout.str()
    shutil.rmtree(results)  # the good case's run reserved its directory
    # the CLI's execution checks too: a cluster address nothing answers at (Ray would retry for minutes)
    good_only = pytester.path.joinpath("test_suite.py")
    good_only.write_text(good_only.read_text().replace("freeze_groups=2", "freeze_groups=1"))
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(results), "-p", "no:cacheprovider", "--ray-address", "127.0.0.1:1"
    )
    # a usage error once the cases are selected, before any test runs (every case errored with it, exit 1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: bad input, nothing was run: Expected a Ray cluster answering at --ray-address 127.0.0.1:1*"]
    )  # the plugin's name for the option: the CLI's --address is no option of pytest's
    assert "--address" not in result.stderr.str() and "passed" not in result.stdout.str()
    assert not results.exists() or not [p for p in results.iterdir() if p.name != "_cache"]
    listing = pytester.runpytest_subprocess("--backend", "torch", "--ray-address", "127.0.0.1:1", "--collect-only")
    assert listing.ret == pytest.ExitCode.OK  # a listing contacts no cluster
    # the fix in the standard form, and a resume named by its command: it told pytest's user "a --resume takes one
    # too", a flag pytest does not have
    many = pytester.runpytest_subprocess("--backend", "torch", "--results-dir", str(results), "--cpus-per-trial", "512")
    assert many.ret == pytest.ExitCode.USAGE_ERROR
    said = " ".join(many.stderr.str().split())
    assert "Received: 512. To fix, pass a smaller --cpus-per-trial (a resume, `xfbench run --resume` or" in said, said
    assert " a --resume" not in said


COLLIDING_SUITE = """
import pytest
from harness.data.tasks import TaskSpec
from harness.models import ModelOptions
from harness.suites import Suite, SuiteCase

SMALL = ModelOptions(hidden=(8,))
SUITE = Suite("collide", "two variants that make one results file name{bad_said}", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=SMALL, variant="a+b"),
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=SMALL, variant="a_b"),{bad_case}
), seeds=1)
pytestmark = pytest.mark.xfbench(suites={{"smoke": SUITE}})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""
BAD_CASE = """
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=SMALL, variant="bad",
              task=TaskSpec(classes=(0, 42))),"""


def test_cases_that_pass_preflight_alone_beside_a_bad_case_are_checked_together_before_they_run(pytester, tmp_path):
    """A bad case made preflight check each case alone, and the checks across trials saw one case at a time: the
    variants a+b and a_b (one results file name) both trained beside it, and a_b's rows were lost (its test said
    "measured nothing"). They are checked together again, and fail with that check's reason: nothing trains."""
    pytester.makeconftest(SEEN_TRIALS_CONFTEST)
    pytester.makepyfile(test_collide=COLLIDING_SUITE.format(bad_said=", and a bad case", bad_case=BAD_CASE))
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    result.assert_outcomes(errors=3)
    said = result.stdout.str()
    assert "would run" not in said, said  # the stubbed run never started
    together = (
        "bad input, nothing was run: Expected every trial's id to make its own results file name. Received: 1 pairs "
        "that make one, e.g. collide-scratch-mlp+a+b-digits-torch-s0 and collide-scratch-mlp+a_b-digits-torch-s0"
    )
    result.stdout.fnmatch_lines_random(
        [
            f"*[[]torch[]] scratch-mlp+a+b-digits: {together}*",
            f"*[[]torch[]] scratch-mlp+a_b-digits: {together}*",
            "*[[]torch[]] scratch-mlp+bad-digits: bad input, this case was not run: *task.classes*",
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # bad input in every case (the next test)


def test_a_session_whose_every_case_preflight_refuses_exits_as_a_usage_error_under_xdist_too(pytester, tmp_path):
    """Preflight refusing every case (here the whole run: two variants that make one file name) trained nothing, and
    the session ended with exit 1, as if tests had failed; every other bad-input path ends with 4, as the CLI's
    exit 2. Under pytest-xdist the worker that runs the suites tells the controller, as for a refusal by Ray; so does
    a worker refusing -n without --dist loadgroup."""
    pytester.makeconftest(SEEN_TRIALS_CONFTEST)
    pytester.makepyfile(test_collide=COLLIDING_SUITE.format(bad_said="", bad_case=""))
    common = ("--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*common, "-p", "no:benchmark")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*bad input, nothing was run: Expected every trial's id to make its own results*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytest.importorskip("xdist")
    spread = pytester.runpytest_subprocess(*common, "-n", "1", "--dist", "loadgroup")
    spread.assert_outcomes(errors=2)
    assert spread.ret == pytest.ExitCode.USAGE_ERROR, spread.stdout.str()
    ungrouped = pytester.runpytest_subprocess(*common, "-n", "1")
    ungrouped.stdout.fnmatch_lines(["*Expected --dist loadgroup with pytest-xdist*To fix, add --dist loadgroup*"])
    assert ungrouped.ret == pytest.ExitCode.USAGE_ERROR, ungrouped.stdout.str()


SEEN_TRIALS_CONFTEST = """
import harness.runner


def _execute(plan, results_dir, run_id, settings, **kwargs):  # the trials that would run, shown instead of a Ray run
    raise RuntimeError(f"would run {sorted(t.trial_id for t in plan.trials)}")


harness.runner.execute = _execute
"""


def test_a_case_whose_test_is_xfail_run_false_does_not_train_unless_runxfail(pytester):
    """pytest's own "known broken, do not run it" (xfail with run=False): such a case's test is reported xfailed
    without running, yet its trials trained, and entered summary.md and the --baseline gate. Now it is left out of
    the run as a skip mark's case is; with --runxfail, which runs it, it trains."""
    pytester.makeconftest(SEEN_TRIALS_CONFTEST)
    plain = TINY_SUITE.format(bar=0.0).split("def test_zz_state")[0]
    pytester.makepyfile(
        test_on=plain,
        test_off=plain.replace('"tiny"', '"off"').replace(
            'pytestmark = pytest.mark.xfbench(suites={"smoke": TINY})',
            'pytestmark = [pytest.mark.xfbench(suites={"smoke": TINY}), pytest.mark.xfail(run=False, reason="off")]',
        ),
    )
    common = ("--backend", "torch", "-p", "no:cacheprovider", "-p", "no:benchmark")
    result = pytester.runpytest_subprocess(*common)
    result.assert_outcomes(errors=1, xfailed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: would run [[]'tiny-scratch-mlp-digits-torch-s0'[]]*"])
    run_all = pytester.runpytest_subprocess(*common, "--runxfail")
    run_all.assert_outcomes(errors=2)
    run_all.stdout.fnmatch_lines(
        ["*RuntimeError: would run [[]'off-scratch-mlp-digits-torch-s0', 'tiny-scratch-mlp-digits-torch-s0'[]]*"]
    )


SEEN_DELIVERY_CONFTEST = """
import harness.runner


def _execute(plan, results_dir, run_id, settings, ship=None, **kwargs):  # what the run would get, instead of Ray
    data_dirs = sorted({t.data_dir for t in plan.trials})
    raise RuntimeError(f"results_dir={results_dir} data_dir={data_dirs} shipped={sorted(ship or {})}")


harness.runner.execute = _execute
"""

MNIST_SUITE = """
import pytest
from harness.data.tasks import TaskSpec
from harness.suites import Suite, SuiteCase
pytestmark = pytest.mark.xfbench(
    suites={"smoke": Suite("m", "mnist", cases=(
        SuiteCase("scratch", "mlp", "mnist", epochs=1, task=TaskSpec(train_limit=100)),
    ))}
)

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""


def test_paths_with_a_tilde_are_the_home_folders_and_data_is_shipped_to_the_trials_as_the_cli_ships_it(
    pytester, tmp_path, monkeypatch
):
    """bash leaves the ~ of `--data-dir=~/data` alone: the trials read a folder `~` in the working directory (the
    preflight had checked the home's) and the results went to one too; `--ship-data` sends the arrays through Ray's
    object store as the CLI does (the plugin shipped nothing, so a cluster's nodes without the files failed)."""
    from test_data import write_mnist_like

    home = tmp_path / "home"
    write_mnist_like(home / "data" / "mnist", n_train=5200, n_test=200)
    monkeypatch.setenv("HOME", str(home))
    pytester.makeconftest(SEEN_DELIVERY_CONFTEST)
    pytester.makepyfile(test_suite=MNIST_SUITE)
    common = ("--backend", "torch", "--data-dir=~/data", "--results-dir=~/results", "-p", "no:cacheprovider")
    for ship, shipped in (("auto", "'mnist'"), ("never", "")):  # auto: a local run's too (up to 1 GB)
        result = pytester.runpytest_subprocess(*common, "--ship-data", ship)
        result.assert_outcomes(errors=1)
        said = f"results_dir={home / 'results'} data_dir=[[]'{home / 'data'}'[]] shipped=[[]{shipped}[]]"
        result.stdout.fnmatch_lines([f"*{said}*"])
    assert not (pytester.path / "~").exists()


SEEN_SETTINGS_CONFTEST = """
import harness.runner


def _execute(plan, results_dir, run_id, settings, **kwargs):  # the run's settings, shown instead of a Ray run
    raise RuntimeError(f"max_concurrent={settings.max_concurrent}")


harness.runner.execute = _execute
"""


def test_a_suite_of_your_own_limits_the_sessions_concurrent_trials_by_its_max_concurrent(pytester, tmp_path):
    """docs/scheduling.md: the session's run takes the strictest limit of the suites it holds, a user's Suite's too
    (its name is in no catalogue; only catalogue names were looked up, so the run was unlimited)."""
    pytester.makeconftest(SEEN_SETTINGS_CONFTEST)
    pytester.makepyfile(TINY_SUITE.format(bar=0.0).replace("seeds=1)", "seeds=1, max_concurrent=1)"))
    result = pytester.runpytest_subprocess(
        "--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    result.stdout.fnmatch_lines(["*the xfbench run failed before this case could be measured: *max_concurrent=1*"])
    # with --baseline, the gate says why it compared nothing: the run's failure, not "no xfbench case ran" (exit 4)
    baseline = _run_of_another_suite(tmp_path / "results")
    gated = pytester.runpytest_subprocess(
        *("--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider"),
        *("-p", "no:benchmark", "--baseline", str(baseline)),
    )
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(["*baseline not compared with *: the xfbench run failed before this case could be*"])


def test_a_suite_sized_for_gpus_is_skipped_without_gpus_per_trial_saying_why_as_the_cli_refuses_it(pytester, tmp_path):
    """The CLI's refusal (harness.preflight.check_gpu_suites) under pytest: the suite's module is skipped with it as
    the reason while other modules run (`--scale full` on a CPU still runs the suites a CPU can); with
    --gpus-per-trial, 1 or an explicit 0 (CPUs on purpose), the session goes on to its run (stubbed, as above)."""
    pytester.makeconftest(SEEN_SETTINGS_CONFTEST)
    suite = TINY_SUITE.format(bar=0.0).replace("seeds=1)", 'seeds=1, gpu_only=True, cpu_tier="tiny_cpu")')
    # the CPU tier as the module's own scale: under pytest the CLI's suite name selects nothing
    suite = suite.replace(
        'suites={"smoke": TINY}',
        'suites={"smoke": TINY, "quick": replace(TINY, name="tiny_cpu", gpu_only=False, cpu_tier=None)}',
    )
    suite = "from dataclasses import replace\n" + suite
    pytester.makepyfile(test_gpu_suite=suite.split("def test_zz_state")[0], test_other=PLAIN_TESTS)
    args = ("--backend", "torch", "--results-dir", str(tmp_path / "results"), "-p", "no:cacheprovider")
    refused = pytester.runpytest_subprocess(*args, "-p", "no:benchmark", "-rs")
    refused.stdout.fnmatch_lines(["SKIPPED*Expected --gpus-per-trial*CPU runs in minutes: --scale quick, *0*"])
    refused.assert_outcomes(passed=1, skipped=1)
    for gpus in ("1", "0"):
        given = pytester.runpytest_subprocess(*args, "--gpus-per-trial", gpus, "-p", "no:benchmark")
        given.stdout.fnmatch_lines(["*the xfbench run failed before this case could be measured: RuntimeError: *"])


PLAIN_TESTS = """
def test_plain():
    assert True
"""


def test_a_trial_that_failed_before_its_first_epoch_is_named_with_its_error():
    """Its row has no epoch (<NA> in the Int64 column): naming it raised TypeError, and the reason was lost."""
    from harness.config import TrialConfig
    from harness.provenance import MachineInfo
    from harness.pytest_plugin import _not_ok
    from harness.results import to_frame
    from harness.trial import RunInfo, base_row, failure_row

    trial = TrialConfig("scratch", "mlp", "digits", "torch", 0, 1, suite="s")
    diverged = base_row(trial, RunInfo("r", "c"), MachineInfo.current())
    diverged.update(status="diverged", epoch=2, train_loss=float("nan"), error="")
    frame = to_frame([failure_row(trial, RunInfo("r", "c"), "RuntimeError: boom"), diverged])
    failed, stopped = frame.itertuples()
    assert _not_ok(failed) == f"{trial.trial_id}: failed: RuntimeError: boom"
    assert _not_ok(stopped) == f"{trial.trial_id}: diverged at epoch 2 (training loss nan)"


def _run_of_another_suite(results: Path) -> Path:
    """A finished run with one trial of a suite no session here runs: a baseline that is there but not usable."""
    from harness.config import TrialConfig
    from harness.provenance import MachineInfo
    from harness.results import ResultsWriter
    from harness.trial import RunInfo, base_row

    trial = TrialConfig("scratch", "mlp", "digits", "torch", 0, 1, suite="elsewhere")
    row = base_row(trial, RunInfo("other-suite", "c"), MachineInfo.current())
    row.update(stage="trials", phase="train", epoch=1, test_acc=0.5, val_acc=0.5, train_loss=0.5, status="ok",
               warmup=True, epoch_time_s=1.0, samples_per_s=1.0, timestamp="t")  # fmt: skip
    writer = ResultsWriter(results / "other-suite")
    writer.add_row(row)
    writer.finish_trial(trial.trial_id)
    writer.finalize()
    run = {"run_id": "other-suite", "started": "0", "status": "finished"}
    (results / "other-suite" / "run.json").write_text(json.dumps(run))
    return results / "other-suite"


@pytest.mark.ray
def test_under_xdist_one_worker_runs_every_case_in_one_run_and_the_controller_reports_it(pytester, tmp_path):
    """Two suite modules and a plain one over two pytest-xdist workers with --dist loadgroup: one Ray run (one run
    directory, both suites' trials), whose comparison the controller prints once and whose finding (here a baseline
    that ran none of the session's cases) becomes the session's exit status. pytest-xdist 3.8 loses the groups
    under pytest 9.2 (its issue 1386), so the cases may land on both workers: a case that reached the other one
    fails saying why, and nothing runs twice. Without --dist loadgroup every case fails with the fix, before any run."""
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_suite_a=TINY_SUITE.format(bar=0.3).split("def test_zz_state")[0],
        test_suite_b=TINY_SUITE.format(bar=0.3).split("def test_zz_state")[0].replace('"tiny"', '"tiny_b"'),
        test_plain=PLAIN_TESTS,
    )
    results = tmp_path / "results"
    baseline = _run_of_another_suite(results)
    common = ("--backend", "torch", "--results-dir", str(results), "-p", "no:cacheprovider", "-n", "2")
    result = pytester.runpytest_subprocess(*common, "--dist", "loadgroup", "--baseline", str(baseline), timeout=600)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 2 and outcomes.get("passed", 0) + outcomes.get("errors", 0) == 3, outcomes
    output = result.stdout.str()
    # An error's message shows in its ERRORS section and, terminal width allowing, again in the short summary.
    misplaced = re.findall(r"_ ERROR at \w+ of \S+ _", output)  # one section per error
    assert len(misplaced) == outcomes.get("errors", 0)
    assert ("pytest-xdist issue 1386" in output) == bool(misplaced), output
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert output.count("xfbench comparison") == 1 and "baseline not usable" in output
    [run_dir] = [p for p in results.iterdir() if p.name.endswith("pytest-smoke")]
    from harness.results import read_results

    assert set(read_results(run_dir)["trial_id"]) == {
        "tiny-scratch-mlp-digits-torch-s0",
        "tiny_b-scratch-mlp-digits-torch-s0",
    }
    spread = pytester.runpytest_subprocess(*common, timeout=600)
    spread.assert_outcomes(passed=1, errors=2)
    spread.stdout.fnmatch_lines(["*Expected --dist loadgroup with pytest-xdist*Received: -n with --dist load.*"])
    assert [p for p in results.iterdir() if p.name.endswith("pytest-smoke")] == [run_dir]


SELECTED_SUITE = """
import pytest
from harness.models import ModelOptions
from harness.suites import Suite, SuiteCase

TINY = ModelOptions(hidden=(16,))
PICK = Suite("pick", "two cases, one for torch only", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=TINY),
    SuiteCase("scratch", "mlp", "digits", epochs=1, model_options=TINY, variant="torchonly", only_backends=("torch",)),
))
pytestmark = pytest.mark.xfbench(suites={"smoke": PICK})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""


@pytest.mark.ray
def test_only_the_selected_cases_train_and_a_case_for_other_backends_is_skipped_saying_so(pytester, tmp_path):
    """A node id or -k that selects one case trains that case alone (every collected case trained before); a case
    for torch only is skipped on tensorflow with the reason (it passed, having measured nothing); --benchmark-skip
    still runs the cases and checks them (they were all skipped, after training); a --baseline that is not there
    fails every case before any run (it was found after the run); a marker with an unknown scale is a usage
    error naming the scales (it was collected as `none` and skipped)."""
    from harness.results import read_results

    pytester.makepyfile(test_pick=SELECTED_SUITE)
    results = tmp_path / "results"
    common = ("--results-dir", str(results), "-p", "no:cacheprovider", "-rs")
    # --benchmark-only keeps the cases: each is a benchmark (pytest-benchmark skipped them as non-benchmarks)
    picked = pytester.runpytest_subprocess(*common, "--benchmark-only", "-k", "tensorflow-scratch-mlp-digits")
    picked.assert_outcomes(passed=1, deselected=3)
    # a one-epoch case records no benchmark and says why; pytest-benchmark's "not used" beside it said it again
    said = picked.stdout.str()
    assert "no benchmark recorded" in said and "Benchmark fixture was not used at all" not in said, said
    (run_dir,) = [p for p in results.iterdir() if p.name.endswith("pytest-smoke")]
    assert set(read_results(run_dir)["trial_id"]) == {"pick-scratch-mlp-digits-tensorflow-s0"}
    assert (run_dir / "report.html").is_file()  # as a CLI run's (it was off unless asked for)
    shutil.rmtree(results)
    skipped_module = SELECTED_SUITE.replace('"pick"', '"skipped"').replace(
        'pytestmark = pytest.mark.xfbench(suites={"smoke": PICK})',
        'pytestmark = [pytest.mark.xfbench(suites={"smoke": PICK}), pytest.mark.skipif("True", reason="off")]',
    )
    pytester.makepyfile(test_skipped=skipped_module)
    common = (*common, "--benchmark-skip")
    other = pytester.runpytest_subprocess(*common, "--backend", "tensorflow", timeout=600)
    other.assert_outcomes(passed=1, skipped=3)
    other.stdout.fnmatch_lines(["*scratch-mlp+torchonly-digits runs on torch only*"])
    (run_dir,) = [p for p in results.iterdir() if p.name.endswith("pytest-smoke")]
    assert set(read_results(run_dir)["trial_id"]) == {"pick-scratch-mlp-digits-tensorflow-s0"}  # not the skipped
    Path(pytester.path / "test_skipped.py").unlink()
    ran = set(results.iterdir())
    missing = pytester.runpytest_subprocess(*common, "--backend", "torch", "--baseline", "no-such-run")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR  # before any test: every case errored with it, exit 1
    missing.stderr.fnmatch_lines(["ERROR: bad input, nothing was run: *'no-such-run'*"])
    assert "no xfbench case ran" not in missing.stdout.str()  # a red section first said every case was deselected
    assert set(results.iterdir()) == ran  # nothing ran this time
    damaged = _run_of_another_suite(tmp_path / "damaged")  # its table was read only after the session had trained
    (damaged / "results.parquet").write_bytes(b"not parquet")
    unreadable = pytester.runpytest_subprocess(*common, "--backend", "torch", "--baseline", str(damaged))
    assert unreadable.ret == pytest.ExitCode.USAGE_ERROR
    unreadable.stderr.fnmatch_lines(["ERROR: bad input, nothing was run: Expected the results table of the run in*"])
    assert set(results.iterdir()) == ran
    pytester.makepyfile(test_pick=SELECTED_SUITE.replace('{"smoke": PICK}', '{"smok": PICK}'))
    typo = pytester.runpytest_subprocess(*common)
    assert typo.ret == pytest.ExitCode.INTERRUPTED  # a collection error, as every usage error found while collecting
    said = " ".join(typo.stdout.str().split())
    assert "Received: pytest.mark.xfbench(suites={'smok': Suite 'pick'}), whose scales ['smok'] are none" in said
    assert "_hookexec" not in said and "pluggy/_caller.py" not in said  # the message alone, no frames before it


THREADS_SUITE = """
import pytest
from harness.config import RuntimeOptions
from harness.suites import Suite, SuiteCase

THREADS = Suite("threads", "a case per thread count", cases=tuple(
    SuiteCase("scratch", "mlp", "digits", epochs=1, runtime=RuntimeOptions(threads=n), variant=f"t{n}") for n in (1, 2)
))
pytestmark = pytest.mark.xfbench(suites={"smoke": THREADS})

def test_case(xfbench_case):
    pass
"""


def test_a_suite_whose_variants_differ_in_threads_is_refused_at_collection_given_the_option_or_not(pytester):
    """The plugin shares the CLI's check: a trial's threads always come from --cpus-per-trial (given or not: the
    plugin passes its default 1 as well), so a suite whose variants differ in threads would run them alike."""
    pytester.makepyfile(test_suite=THREADS_SUITE)
    for given in ((), ("--cpus-per-trial", "4")):
        result = pytester.runpytest("--collect-only", "-q", *given)
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(
            [
                "*test_suite.py::test_case: Expected the cases of suite threads to leave runtime.threads to the run: "
                "every trial takes it from what Ray grants it (--cpus-per-trial), so variants apart in it would run "
                "alike under their own labels. Received: scratch-mlp+t1-digits has runtime.threads=1, "
                "scratch-mlp+t2-digits has runtime.threads=2. To fix, drop the setting from the cases*"
            ]
        )


def test_a_search_suite_is_refused_at_collection_pointing_at_xfbench_tune(pytester):
    """The plugin, as `xfbench run`, would have trained the search's base configuration alone."""
    pytester.makepyfile(
        test_suite="""
import pytest
pytestmark = pytest.mark.xfbench(suites={"smoke": "tune_smoke"})

def test_case(xfbench_case):
    pass
"""
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*test_suite.py::test_case: Expected a suite of cases to run. Received: suite tune_smoke, a search over*"
            "To fix, search it with `xfbench tune --suite tune_smoke`*"
        ]  # fmt: skip
    )


def test_a_trial_that_diverged_on_its_validation_loss_says_so():
    """Its training loss is finite: '(training loss 0.3)' told nothing of why the trial diverged."""
    from types import SimpleNamespace

    from harness.pytest_plugin import _not_ok

    row = SimpleNamespace(trial_id="t", status="diverged", epoch=2, train_loss=0.3, val_loss=math.nan, error="")
    assert _not_ok(row) == "t: diverged at epoch 2 (validation loss nan, training 0.3)"
    assert (
        _not_ok(SimpleNamespace(**{**vars(row), "train_loss": math.inf}))
        == "t: diverged at epoch 2 (training loss inf)"
    )


def test_a_cases_tensorflow_only_mode_is_judged_against_the_sessions_backends_as_the_cli_judges_it(pytester):
    """SuiteCase's own example, a case in Keras' fit: its torch test records the mode off, as the CLI's torch trial
    does (judged against the torch test alone, it was a collection error telling the user to drop --tf-mode)."""
    pytester.makepyfile(
        test_suite="""
import pytest
from harness.config import RuntimeOptions
from harness.suites import Suite, SuiteCase
pytestmark = pytest.mark.xfbench(suites={"smoke": Suite("fit", "in Keras' fit", cases=(
    SuiteCase("scratch", "mlp", "digits", epochs=1, runtime=RuntimeOptions(tf_mode="fit"), variant="fit"),
))})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random(
        ["*[[]torch-scratch-mlp+fit-digits[]]", "*[[]tensorflow-scratch-mlp+fit-digits[]]"]
    )
    # torch alone: nothing could honour it, as `xfbench run --backend torch` refuses it; named as the case's field
    alone = " ".join(pytester.runpytest_subprocess("--collect-only", "--backend", "torch").stdout.str().split())
    assert "runtime.tf_mode" in alone and "--tf-mode" not in alone, alone


def test_the_session_run_prints_a_line_per_ended_trial_saying_why_one_did_not_end_ok():
    from harness.trial_lines import TrialLines

    lines: list[str] = []
    progress = TrialLines(lines.append)
    progress.start(0)
    progress.extend(3)
    progress.row({"trial_id": "a", "status": "ok", "epoch": 1, "test_acc": float("nan")})  # an epoch: no accuracy yet
    progress.row({"trial_id": "a", "status": "ok", "epoch": 2, "test_acc": 0.91234})
    progress.row({"trial_id": "b", "status": "failed", "epoch": None, "error": "ValueError: bad\nTraceback ..."})
    # a search sample scores no test split: its line gives the validation accuracy the search picks by
    progress.row({"trial_id": "c", "status": "ok", "epoch": 3, "stage": "search", "val_acc": 0.8, "test_acc": 0.9})
    progress.trial_done("a")
    progress.trial_done("b")
    progress.trial_done("c")
    assert [re.sub(r", \d+ s\]", ", T s]", line) for line in lines] == [
        "xfbench [1/3, T s] a: ok, test accuracy 0.9123",
        "xfbench [2/3, T s] b: failed: ValueError: bad",
        "xfbench [3/3, T s] c: ok, validation accuracy 0.8000",
    ]


TYPO_SUITE = """
import pytest
from harness.suites import Suite, SuiteCase

pytestmark = pytest.mark.xfbench(suites={{"smoke": {suite}}})

def test_case(xfbench_case):
    xfbench_case.check_bar()
"""


@pytest.mark.parametrize(
    "suite, said",
    [
        ('"smok"', "Received: suite='smok'. To fix, did you mean 'smoke' or 'zoo_smoke'?"),
        (
            'Suite("t", "t", cases=(SuiteCase("scratchh", "mlp", "digits", epochs=1),))',
            "strategy='scratchh'. To fix, did you ",
        ),
        (
            'Suite("t", "t", cases=(SuiteCase("scratch", "mlp", "digitz", epochs=1),))',
            "dataset='digitz'. To fix, did you mean ",
        ),
        (
            'Suite("t", "t", cases=(SuiteCase("scratch", "mlpp", "digits", epochs=1),))',
            "To fix, did you mean model='mlp'?",
        ),
    ],
)
def test_a_misspelt_name_in_a_suite_module_is_a_collection_error_with_the_closest_name(pytester, suite, said):
    """A suite module's typos lost the CLI's "did you mean" and fix; a misspelt strategy was collected and failed
    only at set-up (exit 1); and a misspelt model was told "did you mean --model mlp?", a flag pytest does not have."""
    pytester.makepyfile(test_typo=TYPO_SUITE.format(suite=suite))
    result = pytester.runpytest("--scale", "smoke", "--backend", "torch", "--results-dir", str(pytester.path / "r"))
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing ran
    out = " ".join(result.stdout.str().split())
    assert said in out and "--model" not in out and "Valid choices" not in out, out


def test_the_gates_report_and_failures_name_the_plugins_own_threshold_options(pytester, tmp_path):
    """compare's notes and rules name --times-across-machines and --alpha, options pytest does not have: the
    plugin's report and a regressed test's message told pytest users to pass them."""
    from types import SimpleNamespace

    import pandas as pd
    from test_report import _write_run

    from harness.pytest_plugin import _against_baseline, _as_gate_options

    results = tmp_path / "results"
    _write_run(results, "base", "2026-01-01")
    new = _write_run(results, "new", "2026-01-02", torch_slowdown=1.3, noise=1)
    elsewhere = pd.read_parquet(new / "results.parquet").assign(cpu="Another CPU")
    outcome = SimpleNamespace(frame=elsewhere, run_id="new", run_dir=str(new))
    gate = _against_baseline(pytester.parseconfig("--results-dir", str(results)), outcome, "base", False)
    said = " ".join(gate.report.split())
    assert "--baseline-times-across-machines decides them" in said and "not decided (--baseline-times-across" in said
    assert not re.search(r"(?<![\w-])--(times-across-machines|alpha|time-threshold)(?![\w-])", said), said
    assert _as_gate_options("--alpha-dropout 0.1, `--alpha` 0.01") == "--alpha-dropout 0.1, `--baseline-alpha` 0.01"


def test_a_command_to_paste_in_a_refusal_keeps_the_clis_flags_under_pytest():
    """Preflight's "run the case alone (`xfbench run --strategy ... --classes ...`)" reached pytest users as
    "xfbench run strategy fine_tune model cnn_small ... task.classes 0,1", which no shell runs; outside the
    command the flags are still named as the SuiteCase fields they set."""
    from harness.pytest_plugin import _as_suite_fields

    said = _as_suite_fields(
        "Expected ... To fix, raise --train-limit, or run the case alone (`xfbench run --strategy fine_tune --model "
        "cnn_small --dataset digits --classes 0,1 --source-classes 5,6`, with the case's other settings)."
    )
    assert said == (
        "Expected ... To fix, raise task.train_limit, or run the case alone (`xfbench run --strategy fine_tune --model "
        "cnn_small --dataset digits --classes 0,1 --source-classes 5,6`, with the case's other settings)."
    )
