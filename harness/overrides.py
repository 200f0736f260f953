"""The one way to change a trial's configuration: option paths (``optimizer.lr``, ``task.classes``, ...) and values.

The command line, the suites' sweeps, the search spaces and the pytest plugin all change trial configs through
:func:`apply_overrides`, so one rule decides what a change means everywhere:

- A path names a field of :class:`~harness.config.TrialConfig`, or of a config nested in it, at any depth
  (``transfer.source_task.classes``). An unset optional config (``task``, ``transfer.source_task``) starts from
  its defaults.
- Changing ``optimizer.name`` to another optimizer starts that optimizer from its own defaults (momentum, epsilon,
  weight decay, ...) and keeps the learning rate and the gradient clipping, which are not the optimizer's
  hyperparameters; other ``optimizer.*`` values given in the same set then apply. Changing ``schedule.name``
  likewise starts that schedule from its defaults (a plateau's factor means nothing to a constant rate).
- Values arrive as Python or numpy values, lists or tuples (Ray Tune hands back numpy scalars and lists): they
  are turned into the plain ints, floats and tuples the configs hold, and the configs' own checks reject bad
  values with an InputError.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any

from harness.config import OptimizerConfig, TrialConfig, check_read_by
from harness.errors import InputError, closest_text
from harness.schedules import ScheduleConfig

# Fields the optimizer keeps when it is swapped for another: not the optimizer's own hyperparameters.
KEPT_ON_OPTIMIZER_CHANGE = ("lr", "clip_value", "clip_norm")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Cached: resolving a dataclass's annotations took most of an override's 2 ms, and a search's preflight applies
    # thousands of points (harness.search.validate_space).
    return typing.get_type_hints(cls)


def config_class(hint: Any) -> type | None:
    """The dataclass a field holds (``TaskSpec | None`` -> TaskSpec), or None for a plain value."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def field_hint(path: str, root: type = TrialConfig) -> Any:
    """The type of the option at ``path``; InputError naming the valid fields where a part is unknown."""
    cls: type | None = root
    hint: Any = root
    for depth, part in enumerate(path.split(".")):
        if cls is None:
            prefix = ".".join(path.split(".")[:depth])
            raise InputError(
                f"Expected {prefix} to be a config with fields. Received: {path!r}, but {prefix} is a value. To fix, "
                f"set {prefix} itself."
            )
        hints = _hints(cls)
        if part not in hints:
            where = ".".join(path.split(".")[:depth]) or cls.__name__
            raise InputError(
                f"Expected a field of {where}. Received: {path!r}. To fix, {closest_text(part, sorted(hints), '')}use "
                f"one of its fields: {sorted(hints)}."
            )
        hint = hints[part]
        cls = config_class(hint)
    return hint


def _nest(changes: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(
                    f"Expected {path!r} and its parent not both set. Received both. To fix, set the parent's fields "
                    "one by one, or the parent alone."
                )
        node[leaf] = value
    return tree


def coerce(value: Any, hint: Any) -> Any:
    """numpy scalars to Python ones, lists to tuples, whole floats to ints for int fields."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(value)
    if hasattr(value, "item") and not isinstance(value, tuple):
        value = value.item()
    accepts_int = hint is int or int in typing.get_args(hint)
    if accepts_int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _apply(config: Any, tree: dict[str, Any], prefix: str = "") -> Any:
    hints = _hints(typing.cast(type, type(config)))
    updates: dict[str, Any] = {}
    for name, value in tree.items():
        nested = config_class(hints[name])
        if isinstance(value, dict) and nested is not None:
            current = getattr(config, name)
            updates[name] = _apply(current if current is not None else nested(), value, f"{prefix}{name}.")
        elif nested is not None and value is not None and not isinstance(value, nested):
            raise InputError(
                f"Expected {prefix}{name} to be set through its fields: it holds a config ({nested.__name__}), not "
                f"a value. Received: {value!r}. To fix, set {prefix}{name}.FIELD instead; its fields: "
                f"{sorted(_hints(nested))}."
            )
        else:
            updates[name] = coerce(value, hints[name])
    if isinstance(config, OptimizerConfig):
        check_read_by(updates.get("name", config.name), updates)
    if isinstance(config, OptimizerConfig) and updates.get("name", config.name) != config.name:
        kept = {f: getattr(config, f) for f in KEPT_ON_OPTIMIZER_CHANGE}
        config = OptimizerConfig(name=updates["name"], **kept)
    if isinstance(config, ScheduleConfig) and updates.get("name", config.name) != config.name:
        return ScheduleConfig(**updates)  # the new schedule's defaults, then what was given with it
    return dataclasses.replace(config, **updates)


def apply_overrides(base: TrialConfig, changes: Mapping[str, Any]) -> TrialConfig:
    """``base`` with each path set to its value (the rules in the module docstring); InputError on bad input."""
    for path in changes:
        field_hint(path)
    trial = _apply(base, _nest(changes))
    _check_schedule_reads(trial, changes)
    return trial


# Optimizer options a schedule replaces: piecewise's values are the rates themselves, 1cycle cycles the momentum
# (Adam's beta1) itself, as PyTorch's OneCycleLR does
SET_BY_SCHEDULE = {"piecewise": ("optimizer.lr",), "onecycle": ("optimizer.momentum", "optimizer.beta1")}


def _check_schedule_reads(trial: TrialConfig, changes: Mapping[str, Any]) -> None:
    """An optimizer option given (or searched) where the trial's schedule sets that value itself is refused: it
    would be recorded, and shown in Settings, but never applied."""
    unread = [path for path in SET_BY_SCHEDULE.get(trial.schedule.name, ()) if path in changes]
    if unread:
        given = ", ".join(f"{path}={changes[path]!r}" for path in unread)
        what = "its values are the rates" if trial.schedule.name == "piecewise" else "it cycles the momentum itself"
        raise InputError(
            f"Expected no {' / '.join(unread)} with the {trial.schedule.name} schedule ({trial.case_id}): {what}, so "
            f"the value would be recorded but never applied. Received: {given}. To fix, drop it, or pick another "
            "schedule."
        )
