"""What the command line's options take, in a module that imports nothing heavy: the value types, the threshold
options of compare and the --baseline gate, --ship-data's choices, and argparse's refusals reworded.

The pytest plugin registers its options from here: pytest loads it in every run of the environment, a project's
that never uses xfbench too. Imported from :mod:`harness.cli_options`, which builds the CLI's parser from the
planner, the suites, the configs and the baselines, they and pandas made a one-test run 1.06 s long instead of 0.40 s
(docs/measurements.md, "The pytest plugin's import", 2026-12-07).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import closest_text

# --ship-data: how a run's datasets reach its trials (harness.preflight.datasets_to_ship; auto's limits in
# harness.config)
SHIP_POLICIES = ("auto", "always", "never")


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, received {value}")
        return value

    return parse


def float_above(minimum: float, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
        if not math.isfinite(value):  # float() takes "inf": a rate or threshold of infinity is a typo
            raise argparse.ArgumentTypeError(f"expected a finite number, received {text!r}")
        if not (value >= minimum if inclusive else value > minimum):
            sign = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"expected a number {sign} {minimum:g}, received {value}")
        return value

    return parse


positive_int, non_negative_int = int_at_least(1), int_at_least(0)
positive_float, non_negative_float = float_above(0.0, inclusive=False), float_above(0.0, inclusive=True)

RAY_GPU_UNIT = 1e-4  # the smallest share of a resource Ray schedules


def gpu_share(text: str) -> float:
    """GPUs per trial as Ray takes them: 0, or a share of one GPU (at least 0.0001) up to a whole one. Ray refused
    1.5 only once Tune had started, with a traceback, and the run was recorded as interrupted; 2 reserved two GPUs
    for a trial that trains on one (neither backend spreads a trial over several), the other left idle."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(
            f"expected 0 or a share of one GPU up to 1 (a trial trains on one GPU: neither backend spreads it over "
            f"several, so more would sit idle, reserved), received {value:g}. Give 1, or a share such as 0.5 to fit "
            f"several trials on one GPU"
        )
    if 0 < value < RAY_GPU_UNIT:
        raise argparse.ArgumentTypeError(
            f"expected 0 or a share of at least {RAY_GPU_UNIT:g} GPU (Ray's smallest unit), received {value:g}. "
            f"Give 0 to train on the CPU, or at least {RAY_GPU_UNIT:g}"
        )
    return value


def given(text: str, what: str, fix: str) -> str:
    """``text`` where it is not blank, else argparse's refusal: blank, an option's value (an unset shell variable)
    was read as the option left out, or as the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"expected a {what}, received {text!r}, which names {'none' if what == 'path' else 'nothing'} (an unset "
            f"shell variable?). {fix}"
        )
    return text


def non_empty(text: str) -> str:
    """Every path option and run reference, given: an empty string (``--results-dir ""``, an unset shell variable)
    would be read as the current folder, or as the option left out, instead of the path the user meant."""
    return given(text, "path", "Give the path, or leave the option out for its default")


def user_path(text: str) -> str:
    """A path option with ``~`` expanded: the shell leaves it in ``--data-dir=~/data`` (it expands a ~ only at a
    word's start), and a path read as given would name a folder called ``~`` in the working directory."""
    return str(Path(non_empty(text)).expanduser())


def significance_level(text: str) -> float:
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1 such as 0.01, received {value}")
    return value


# The CLI's --address and the pytest plugin's --ray-address take the same values.
ADDRESS_HELP = (
    "join an existing Ray cluster: HOST:PORT of its head (e.g. 127.0.0.1:6379; not Ray Client's ray://), or auto "
    "(Ray finds it); local, or none given: a Ray instance of the run's own"
)


def concurrency(text: str) -> int:
    """--max-concurrent: a whole number >= 1, or auto (:data:`~harness.plan.AS_THE_CORES_ALLOW`)."""
    if text.strip().lower() == "auto":
        from harness.plan import AS_THE_CORES_ALLOW  # the plan brings the configs: only where auto is given

        return AS_THE_CORES_ALLOW
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or auto, received {text!r}") from None


_INVALID_CHOICE = re.compile(r"argument (?P<flag>[^:]+): invalid choice: (?P<value>.+) \(choose from (?P<choices>.+)\)")
_BAD_VALUE = re.compile(r"argument (?P<flag>[^:]+): expected (?P<expected>.+), received (?P<value>.+)")
# a type that refuses in the standard form itself (--augment, through harness.augment): said once, without the prefix
_OWN_FORM = re.compile(r"argument [^:]+: (?P<said>Expected .+ Received: .+)", re.S)
_REQUIRED = re.compile(r"the following arguments are required: (?P<names>.+)")
_NO_VALUE = re.compile(r"argument (?P<flag>[^:]+): expected one argument")
_SWITCH_VALUE = re.compile(r"argument (?P<flags>[^:]+): ignored explicit argument (?P<value>.+)")


def expected_received(message: str) -> str:
    """argparse's wording of a bad value ("argument --format: invalid choice: 'yaml' (choose from ...)", or a type's
    "expected ..., received ...") as every other refusal reads: Expected, Received, and how to fix it."""
    if choice := _INVALID_CHOICE.fullmatch(message):
        flag, value = choice["flag"].partition("/")[0], choice["value"]
        choices = [c.strip().strip("'") for c in choice["choices"].split(",")]
        option = flag.startswith("-")  # else a positional: its metavar (COMMAND), or argparse's {save,list}
        shown = flag if option or not flag.startswith("{") else "the command"
        close = closest_text(value.strip("'"), choices, flag if option else "")
        return f"Expected {shown} to be one of {choices}. Received: {value}. To fix, {close}pick one of those"
    if bad := _BAD_VALUE.fullmatch(message):
        flag = bad["flag"].partition("/")[0]
        received, advice = _received_and_advice(bad["value"])
        fix = advice[:1].lower() + advice[1:] if advice else f"give {flag} such a value"
        return f"Expected {flag}: {bad['expected']}. Received: {received}. To fix, {fix}"
    if own := _OWN_FORM.fullmatch(message):
        return own["said"]
    return _argparse_usage_error(message)


def _argparse_usage_error(message: str) -> str:
    """argparse's own usage errors (a required argument or an option's value left out) in the standard form."""
    if required := _REQUIRED.fullmatch(message):
        # {save,list} is how argparse names a sub-command without a metavar
        names = [
            f"one of {n[1:-1].replace(',', ', ')}" if n.startswith("{") else n for n in required["names"].split(", ")
        ]
        shown = " and ".join(names)
        return f"Expected {shown} (required). Received: none. To fix, give {shown}"
    if no_value := _NO_VALUE.fullmatch(message):
        # argparse reads a value such as -1,2 or -1e-3 as the next flag, so the option looks empty
        flag = no_value["flag"].partition("/")[0]
        return (
            f"Expected {flag} with a value. Received: {flag} with none (a value starting with '-' reads as an "
            f"option). To fix, give {flag} a value; if the value starts with '-', write {flag}=VALUE"
        )
    if switch := _SWITCH_VALUE.fullmatch(message):  # --no-download=yes: a switch takes no value
        flags = [f for f in switch["flags"].split("/") if f.startswith("--")]
        fix = (
            f"write {flags[0]} alone"
            if len(flags) == 1
            else f"write {flags[0]} to turn it on, {flags[1]} to turn it off"
        )
        return (
            f"Expected {' or '.join(flags)} without a value (a switch). Received: the value {switch['value']}. To "
            f"fix, {fix}"
        )
    return message


def _received_and_advice(text: str) -> tuple[str, str]:
    """A type's "received X. Give ..." split into X and its advice: at the first sentence's end outside the quoted
    value (--hidden '300. 100' holds a full stop of its own)."""
    for end in re.finditer(r"\. (?=[A-Z])", text):
        if text[: end.start()].count("'") % 2 == 0:
            return text[: end.start()], text[end.end() :]
    return text, ""


# as compare.Thresholds
THRESHOLD_DEFAULTS = {"time_threshold": 1.10, "accuracy_threshold": 1.0, "alpha": 0.01, "times_across_machines": False}


def changed_threshold_options(value: Callable[[str], Any], flag: str = "--") -> list[str]:
    """The threshold options (add_threshold_options) set to other than their defaults, spelled as on the command
    line (``--time-threshold 1.05``, ``--times-across-machines``); ``value`` reads an option by its name."""
    changed = []
    for name, default in THRESHOLD_DEFAULTS.items():
        given = value(name)
        if given != default:
            option = f"{flag}{name.replace('_', '-')}"
            changed.append(option if isinstance(default, bool) else f"{option} {given:g}")
    return changed


def add_threshold_options(add: Callable[..., Any], flag: str = "--", dest: str = "") -> None:
    """What makes a change a regression, as ``xfbench compare`` decides it: ``add`` is a parser's add_argument or a
    pytest option group's addoption; ``flag`` and ``dest`` start the options' names (the plugin's
    ``--baseline-time-threshold``), so compare, the report's history and the plugin's gate decide alike."""
    add(
        f"{flag}time-threshold",
        dest=f"{dest}time_threshold",
        type=float_above(1.0, inclusive=False),
        default=THRESHOLD_DEFAULTS["time_threshold"],
        help="epoch-time ratio new/base above which a significant slowdown is a regression (default 1.10)",
    )
    add(
        f"{flag}accuracy-threshold",
        dest=f"{dest}accuracy_threshold",
        type=positive_float,
        default=THRESHOLD_DEFAULTS["accuracy_threshold"],
        help="accuracy drop in percentage points beyond which a significant drop is a regression (default 1)",
    )
    add(
        f"{flag}alpha",
        dest=f"{dest}alpha",
        type=significance_level,
        default=THRESHOLD_DEFAULTS["alpha"],
        help="significance level of the epoch-time tests (default 0.01): the epochs' Mann-Whitney U test at it, the "
        "trials' test at 5 x it and the ratio's interval at 1 - 5 x it (0.05 and 95 %% at the default)",
    )
    add(
        f"{flag}times-across-machines",
        dest=f"{dest}times_across_machines",
        action="store_true",
        help="decide epoch-time changes between runs on different machines (CPU model or GPU) or thread counts too; "
        "by default such a change is n/a, the machines' as much as the code's",
    )
