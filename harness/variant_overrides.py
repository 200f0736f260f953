"""Which options a whole suite may be given: none that would erase what tells its variants apart.

A suite's variants are cases of one (strategy, model, dataset) that differ in a setting (``opt_sgd`` and
``opt_adam`` in the optimizer, the speed matrix's ``bf16`` and ``default`` in the precision). An option given for
the whole suite replaces that setting in every case, yet each row would keep its variant's label: ``--suite
techniques --optimizer adam`` would train ``opt_sgd`` with Adam and report it as SGD. So an option is refused for a
suite when the selected cases that read it set it differently within such a group, compared as the suite defines
them, before any option applies. Options all of a group's cases share (``--epochs``, ``--batch-size``,
``--cpus-per-trial`` on most suites) stay allowed, and so does one that only cases of different models or strategies
set differently (``--optimizer adam`` on ``fashion_quick``, whose two models each have their own): no label names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from harness.config import OptimizerConfig, TrialConfig
from harness.errors import InputError
from harness.overrides import KEPT_ON_OPTIMIZER_CHANGE, apply_overrides, field_hint
from harness.schedules import ScheduleConfig
from harness.strategy_options import reads_path
from harness.suites import Suite, case_trials


def replaced_settings(trial: TrialConfig, path: str) -> dict[str, Any]:
    """What an override of ``path`` replaces in ``trial``, as {path: value}: the value there; for an optimizer's
    or a schedule's name, every setting of it that the new one starts again from (harness.overrides: a swapped
    optimizer keeps only its rate and clipping), so ``--optimizer adam`` on momentum 0.5 / 0.9 variants counts."""
    *parents, leaf = path.split(".")
    node: Any = trial
    for depth, part in enumerate(parents):
        node = getattr(node, part)
        if node is None:  # an unset optional config (task, transfer.source_task): the whole of it differs
            return {".".join(parents[: depth + 1]): None}
    parent = ".".join(parents)
    if leaf == "name" and isinstance(node, (OptimizerConfig, ScheduleConfig)):
        kept = KEPT_ON_OPTIMIZER_CHANGE if isinstance(node, OptimizerConfig) else ()
        return {f"{parent}.{f.name}": getattr(node, f.name) for f in dataclasses.fields(node) if f.name not in kept}
    return {path: getattr(node, leaf)}


def _variant_groups(chosen: Suite, backends: Sequence[str]) -> list[list[TrialConfig]]:
    """Each (strategy, model, dataset) of the suite with more than one case selected: one trial per case, as the
    suite defines it (no option applied)."""
    groups: dict[tuple[str, str, str], list[TrialConfig]] = {}
    for case in chosen.cases:
        trials = case_trials(case, chosen.name, tuple(backends), 1)
        if trials:  # a case for other backends only (SuiteCase.only_backends) is not selected
            groups.setdefault((case.strategy, case.model, case.dataset), []).append(trials[0])
    return [group for group in groups.values() if len(group) > 1]


# Set for every trial of a run from its allocation (the CPUs Ray grants, whether it asked for GPUs), whether or not
# the option was given (the pytest plugin and the CLI always pass them): variants apart in one cannot run apart.
_ALLOCATION_PATHS = frozenset(("runtime.threads", "runtime.device"))


def _value_at(trial: TrialConfig, key: str) -> Any:
    node: Any = trial
    for part in key.split("."):
        node = getattr(node, part)
        if node is None:
            return None
    return node


def _differing(
    group: list[TrialConfig], path: str, value: Any, given: Mapping[str, Any]
) -> tuple[TrialConfig, TrialConfig, dict[str, Any]] | None:
    """Two cases of the group that read ``path`` and set it differently where the override would make them alike,
    and what differs; None if it erases no difference (``--optimizer sgd`` on sgd variants apart in momentum keeps
    each one's momentum, as harness.overrides keeps a same-named optimizer's settings)."""
    # Only the cases the option can join: one it cannot (a variant's own XLA beside --tf-mode eager) is told with
    # that case when its trials are built; left in, its failure had hidden the variants the option erases.
    readers = [(t, after) for t in group if reads_path(t, path) and (after := _overridden(t, path, value, given))]
    if not readers:
        return None
    first, first_after = readers[0]
    for other, other_after in readers[1:]:
        a, b = replaced_settings(first, path), replaced_settings(other, path)
        differs = {key: (a.get(key), b.get(key)) for key in a.keys() | b.keys() if repr(a.get(key)) != repr(b.get(key))}
        erased = {
            k: v for k, v in differs.items() if repr(_value_at(first_after, k)) == repr(_value_at(other_after, k))
        }
        if erased:
            return first, other, erased
    return None


def _overridden(trial: TrialConfig, path: str, value: Any, given: Mapping[str, Any]) -> TrialConfig | None:
    """``trial`` with the option, or None where it cannot join the trial's own settings. An option that sets several
    paths of one config together is applied with them where it is not valid alone: ``--piecewise`` sets the
    schedule's name, boundaries and values, and its name alone (a piecewise schedule without rates) was refused,
    so no case counted as reading it and every sched_* variant trained piecewise under its own label."""
    parent = path.rpartition(".")[0]
    together = {p: v for p, v in given.items() if parent and p.rpartition(".")[0] == parent}
    attempts = [{path: value}] + ([together] if len(together) > 1 else [])
    for changes in attempts:
        try:
            return apply_overrides(trial, changes)
        except InputError:
            continue
    return None


def check_variant_overrides(
    chosen: Suite, backends: Sequence[str], overrides: Mapping[str, Any], searched: bool = False
) -> None:
    """InputError for an option given for the whole suite that would replace a setting its variants differ in.
    ``searched``: the options are a search space's values (``xfbench tune --space``), which every sample sets."""
    for path in overrides:
        field_hint(path)  # an unknown path is refused as everywhere else, before it is read here
    _check_class_splits(chosen, backends, overrides)
    groups = _variant_groups(chosen, backends)
    for path, value in overrides.items():
        found = next((d for group in groups if (d := _differing(group, path, value, overrides))), None)
        if found and path in _ALLOCATION_PATHS:
            raise InputError(_allocation_refusal(chosen.name, path, *found))
        if found:
            raise InputError(_refusal(chosen.name, path, value, *found, searched=searched))
    _check_named_settings(chosen, backends, overrides, searched)
    _check_step_schedules(chosen, backends, overrides, searched)


# Schedules that count in steps: a suite sets them in epochs of its cases' batches (the technique sweeps' power,
# exponential and piecewise cases), so another batch size moves them in epochs under the same label.
_STEP_SCHEDULES = ("power", "exponential", "piecewise")


def _check_step_schedules(
    chosen: Suite, backends: Sequence[str], overrides: Mapping[str, Any], searched: bool = False
) -> None:
    """InputError for a suite-wide batch size under a case whose schedule the suite counted in steps of its own
    batch size (--suite techniques --batch-size 32 ran sched_piecewise's rate changes at epochs 1 and 2, not 2 and 4,
    with nothing recorded to say so). Steps given beside it (--piecewise, --schedule-steps) are the user's own."""
    size = overrides.get("batch_size")
    schedule_options = {path: value for path, value in overrides.items() if path.startswith("schedule.")}
    for case in chosen.cases if size is not None else ():
        trials = case_trials(case, chosen.name, tuple(backends), 1)
        if not trials or trials[0].schedule.name not in _STEP_SCHEDULES or trials[0].batch_size == size:
            continue
        trial = trials[0]
        try:  # the case's schedule after the schedule options given: still the suite's steps?
            after = apply_overrides(trial, schedule_options).schedule if schedule_options else trial.schedule
        except InputError:  # options its schedule cannot take: refused as such elsewhere
            continue
        if _steps_of(after) != _steps_of(trial.schedule):
            continue
        given, drop, _ = _given("batch_size", size, searched)
        raise InputError(
            f"Expected the batch size to leave suite {chosen.name}'s step schedules where it set them. Received: "
            f"{given}, but {trial.case_id} counts its {trial.schedule.name} schedule in steps of batch "
            f"{trial.batch_size}: at another batch size its rate would change at other epochs under the same label. "
            f"To fix, {drop}, or run the case alone with the steps wanted: --strategy {trial.strategy} --model "
            f"{trial.model} --dataset {trial.dataset} --batch-size {size} --schedule {trial.schedule.name} ..."
        )


def _steps_of(schedule: ScheduleConfig) -> tuple[Any, ...]:
    """Where a schedule's rate changes, in steps: its name, steps and boundaries."""
    return schedule.name, schedule.steps, schedule.boundaries


def _check_named_settings(chosen: Suite, backends: Sequence[str], overrides: Mapping[str, Any], searched: bool) -> None:
    """InputError for a suite-wide option that replaces a setting a case's variant label names
    (SuiteCase.named_settings), the case alone in its group included (``deep_features-cnn_small+linear_svc-digits``
    with --sklearn-head rbf_svc trained rbf_svc and reported it as the linear_svc case: a group of one has no sibling
    to differ from)."""
    labelled = [c for c in chosen.cases if c.variant and any(p in overrides for p in c.named_settings)]
    for case in labelled:  # most options: no case's trials to build (a tune checks each searched value here)
        trials = case_trials(case, chosen.name, tuple(backends), 1)
        if not trials:
            continue
        for path in (p for p in case.named_settings if p in overrides):
            own = _value_at(trials[0], path)
            if reads_path(trials[0], path):
                after = _overridden(trials[0], path, overrides[path], overrides)
                if after is not None and _value_at(after, path) != own:
                    raise InputError(_named_refusal(chosen.name, path, overrides[path], trials[0], own, searched))


# The class splits a case may define (S4's A and B, transfer between digit halves): its label and the A -> B table
# name them, so replacing one runs another experiment under the case's name. The other task fields (train_limit)
# size the same experiment to the data at hand and stay allowed.
_CLASS_SPLIT_PATHS = ("task.classes", "task.binary_positive", "transfer.source_task.classes")


def _check_class_splits(chosen: Suite, backends: Sequence[str], overrides: Mapping[str, Any]) -> None:
    """InputError for a suite-wide option that replaces a class split a selected case defines itself."""
    for path in (p for p in _CLASS_SPLIT_PATHS if p in overrides):
        for case in chosen.cases:
            trials = case_trials(case, chosen.name, tuple(backends), 1)
            classes = _value_at(trials[0], f"{path.rsplit('.', 1)[0]}.classes") if trials else None
            if classes is None or _split_value(path, _value_at(trials[0], path)) == _split_value(path, overrides[path]):
                continue  # the case takes every class (the option picks them) or already has these
            raise InputError(_class_split_refusal(chosen.name, path, overrides[path], trials[0]))


def _as_typed(value: Any) -> str:
    """An option's value as it is typed on the command line: 0,1 for a list, float32 for a name."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def _split_value(path: str, value: Any) -> Any:
    """A class split's value as the task holds it: classes in ascending order (harness.data.tasks.TaskSpec)."""
    return tuple(sorted(value)) if path.endswith(".classes") and value is not None else value


def _class_split_refusal(suite_name: str, path: str, value: Any, trial: TrialConfig) -> str:
    from harness.cli_options import override_flags  # it imports the planner, which imports this module

    flag = override_flags([path])[0]
    return (
        f"Expected options given for suite {suite_name} to leave the class splits its cases define. Received: "
        f"{flag} {_as_typed(value)}, but case {trial.case_id} defines {path}={_value_at(trial, path)!r}: its label "
        f"(and the A -> B table) name that split, so the rows would report another experiment under it. To fix, drop "
        f"{flag}, or run the experiment with your split as one case: --strategy {trial.strategy} --model "
        f"{trial.model} --dataset {trial.dataset} {flag} ..."
    )


def _named_refusal(suite_name: str, path: str, value: Any, trial: TrialConfig, own: Any, searched: bool) -> str:
    given, drop, flag = _given(path, value, searched)
    return (
        f"Expected options given for suite {suite_name} to leave the settings its case labels name. Received: "
        f"{given}, but case {trial.case_id} is labelled by its {path}={own!r}: the rows would report the other "
        f"setting under that label. To fix, {drop}, or run the case with your setting as a case of its own: --strategy "
        f"{trial.strategy} --model {trial.model} --dataset {trial.dataset} {flag} ..."
    )


def _given(path: str, value: Any, searched: bool) -> tuple[str, str, str]:
    """How the option was given, how to drop it, and its flag: ``--optimizer adam``, or a searched value."""
    from harness.cli_options import override_flags  # it imports the planner, which imports this module

    flag = override_flags([path])[0]
    if searched:
        return f"{path}={value!r} in the search space", f"take {path} out of --space", flag
    return (flag if isinstance(value, bool) else f"{flag} {_as_typed(value)}"), f"drop {flag}", flag


def _allocation_refusal(suite_name: str, path: str, a: TrialConfig, b: TrialConfig, differs: dict[str, Any]) -> str:
    from harness.cli_options import override_flags  # it imports the planner, which imports this module

    flag = override_flags([path])[0]
    return (
        f"Expected the cases of suite {suite_name} to leave {path} to the run: every trial takes it from what Ray "
        f"grants it ({flag}), so variants apart in it would run alike under their own labels. Received: "
        f"{a.case_id} has {path}={differs[path][0]!r}, {b.case_id} has {path}={differs[path][1]!r}. To fix, drop "
        f"the setting from the cases, and time other thread counts or devices as separate runs with {flag}."
    )


def _refusal(
    suite_name: str,
    path: str,
    value: Any,
    a: TrialConfig,
    b: TrialConfig,
    differs: dict[str, Any],
    searched: bool = False,
) -> str:
    given, drop, flag = _given(path, value, searched)
    shown = lambda i: ", ".join(f"{k}={v[i]!r}" for k, v in sorted(differs.items()))  # noqa: E731
    return (
        f"Expected options given for suite {suite_name} to leave the settings that make its variants alone. "
        f"Received: {given}, but its cases set {path} differently: {a.case_id} has {shown(0)}, "
        f"{b.case_id} has {shown(1)}. Given for the whole suite it would replace each case's setting while the rows "
        f"keep their variant labels. To fix, {drop} to run the variants as the suite defines them, or run one case "
        f"with its own options: --strategy {a.strategy} --model {a.model} --dataset {a.dataset} {flag} ..."
    )
