"""Search spaces, framework- and Ray-free: which trial options vary, over which values.

A space maps option paths into :class:`TrialConfig` (``optimizer.lr``,
``batch_size``, ``model_options.activation``, ``transfer.backbone_lr_multiplier``
...) to a domain. The scheduler maps domains onto Ray Tune's; a sampled point
(path -> value) is applied to a base trial with :func:`apply_point`, in the
worker and in the driver alike, so both agree on every trial's configuration.

Command-line spelling (``--space PATH=DOMAIN``)::

    optimizer.lr=loguniform:1e-4,1e-1     uniform:LO,HI     int:LO,HI (both ends included)
    batch_size=choice:32,64,128           hidden=choice:64,128/64   (a tuple's elements joined by '/')
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness.config import TrialConfig, check_finite_settings
from harness.errors import InputError
from harness.overrides import apply_overrides, config_class, field_hint
from harness.strategy_options import check_strategy_options, reads_path
from harness.weights import initializer

DOMAIN_KINDS = ("choice", "uniform", "loguniform", "int")
SEARCH_ALGORITHMS = ("random", "grid", "optuna")

# Short names for the options people search most; the full dotted path always works too.
ALIASES = {
    "lr": "optimizer.lr",
    "optimizer": "optimizer.name",
    "momentum": "optimizer.momentum",
    "weight_decay": "optimizer.weight_decay",
    "clip_norm": "optimizer.clip_norm",
    "clip_value": "optimizer.clip_value",
    "beta1": "optimizer.beta1",
    "beta2": "optimizer.beta2",
    "rho": "optimizer.rho",
    "eps": "optimizer.eps",
    "activation": "model_options.activation",
    "dropout": "model_options.dropout",
    "batchnorm": "model_options.batchnorm",
    "hidden": "model_options.hidden",
    "l1": "regularization.l1",
    "l2": "regularization.l2",
    "max_norm": "regularization.max_norm",
    "schedule": "schedule.name",
    "backbone_lr_multiplier": "transfer.backbone_lr_multiplier",
    "freeze_groups": "transfer.freeze_groups",
    "frozen_epochs": "transfer.frozen_epochs",
    "sklearn_head": "transfer.sklearn_head",
}
# Options a search may vary: top-level scalars and the fields of these nested configs.
SEARCHABLE_SCALARS = ("epochs", "batch_size", "init", "mc_dropout_passes")
SEARCHABLE_GROUPS = ("optimizer", "schedule", "regularization", "model_options", "transfer")


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int  # included


Domain = Choice | Uniform | LogUniform | IntRange


@dataclass(frozen=True)
class SearchSpace:
    """The options a search samples, held in the order of their paths whatever order they were given in: the
    points drawn for a seed follow that order, and run.json (written with sorted keys) gives it back, so a resumed
    search draws the very points it drew before (in the order given, a resume of ``--space lr=… --space
    batch_size=…`` drew other points and trained them under the finished samples' ids)."""

    params: tuple[tuple[str, Domain], ...] = ()

    def __post_init__(self) -> None:
        paths = [p for p, _ in self.params]
        if len(set(paths)) != len(paths):
            twice = sorted({p for p in paths if paths.count(p) > 1})
            raise InputError(
                f"Expected each option once in a search space. Received: {paths}, with {', '.join(twice)} more than "
                "once. To fix, give each --space PATH=... once (a choice lists several values)."
            )
        object.__setattr__(self, "params", tuple(sorted(self.params, key=lambda param: param[0])))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    def merged(self, other: SearchSpace) -> SearchSpace:
        """This space with ``other``'s domains added, replacing any for the same option."""
        mine = dict(self.params)
        mine.update(dict(other.params))
        return SearchSpace(tuple(mine.items()))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {path: {"kind": _kind(d), **dataclasses.asdict(d)} for path, d in self.params}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> SearchSpace:
        kinds = {"choice": Choice, "uniform": Uniform, "loguniform": LogUniform, "int": IntRange}
        params = []
        for path, spec in data.items():
            spec = dict(spec)
            domain_cls = kinds[spec.pop("kind")]
            if domain_cls is Choice:
                spec["values"] = tuple(tuple(v) if isinstance(v, list) else v for v in spec["values"])
            params.append((path, domain_cls(**spec)))
        return cls(tuple(params))


def _kind(domain: Domain) -> str:
    return {Choice: "choice", Uniform: "uniform", LogUniform: "loguniform", IntRange: "int"}[type(domain)]


def canonical_path(path: str) -> str:
    return ALIASES.get(path, path)


def _field_annotation(path: str) -> str:
    """The type annotation (as written) of the option at ``path``; InputError if it may not be searched."""
    parts = path.split(".")
    top = {f.name: f for f in dataclasses.fields(TrialConfig)}
    # mc_dropout_passes reads back from a recorded tune, but a new one refuses it (validate_space): not offered
    offered = [name for name in SEARCHABLE_SCALARS if name != "mc_dropout_passes"]
    valid = sorted(offered) + [f"{g}.<field>" for g in SEARCHABLE_GROUPS] + sorted(ALIASES)
    if len(parts) == 1 and parts[0] in SEARCHABLE_SCALARS:
        return str(top[parts[0]].type)
    if len(parts) == 2 and parts[0] in SEARCHABLE_GROUPS:
        # a field that holds a config of its own (transfer.source_task) is not a value a search can sample
        fields = {
            f.name: f
            for f in dataclasses.fields(field_hint(parts[0]))
            if config_class(field_hint(f"{parts[0]}.{f.name}")) is None
        }
        if parts[1] in fields:
            return str(fields[parts[1]].type)
        raise InputError(
            f"Expected a field of {parts[0]} that holds a value. Received: {path!r}. To fix, give one of "
            f"its fields: {sorted(fields)}."
        )
    raise InputError(f"Expected a searchable option. Received: {path!r}. To fix, give one of these: {valid}.")


def _is_int_field(annotation: str) -> bool:
    return annotation.replace(" ", "") in ("int", "int|None")


def _is_numeric_field(annotation: str) -> bool:
    return any(annotation.replace(" ", "").startswith(t) for t in ("int", "float"))


def _parse_value(text: str, annotation: str) -> Any:
    compact = annotation.replace(" ", "")
    if text.lower() == "none" and "None" in compact:
        return None
    if compact.startswith("tuple[int"):
        return tuple(int(part) for part in text.split("/"))
    if compact.startswith("tuple[float"):
        return tuple(float(part) for part in text.split("/"))
    if compact.startswith("bool"):
        if text.lower() not in ("true", "false"):
            raise InputError(f"expected true or false, received {text!r}")
        return text.lower() == "true"
    if compact.startswith("int"):
        return int(text)
    if compact.startswith("float"):
        return float(text)
    return text


def parse_param(text: str) -> tuple[str, Domain]:
    """``PATH=KIND:ARGS`` -> (canonical path, domain); InputError with the expected spelling otherwise."""
    usage = "PATH=KIND:ARGS such as lr=loguniform:1e-4,1e-1, batch_size=choice:32,64 or hidden=choice:64,128/64"
    if "=" not in text or ":" not in text.split("=", 1)[1]:
        raise InputError(f"Expected --space {usage}. Received: {text!r}. To fix, write it in that form.")
    raw_path, spec = text.split("=", 1)
    path = canonical_path(raw_path.strip())
    annotation = _field_annotation(path)
    kind, args = spec.split(":", 1)
    kind = kind.strip().lower()
    parts = [a.strip() for a in args.split(",") if a.strip()]
    try:
        if kind == "choice":
            if not parts:
                raise InputError("no values")
            domain: Domain = Choice(tuple(_parse_value(p, annotation) for p in parts))
        elif kind not in DOMAIN_KINDS:
            raise InputError(f"unknown kind {kind!r}; valid kinds: {list(DOMAIN_KINDS)}")
        elif len(parts) != 2:
            raise InputError(f"{kind} takes two bounds LO,HI")
        elif not _is_numeric_field(annotation):
            raise InputError(f"{path} is {annotation}, not a number: use choice")
        elif kind == "int":
            if not _is_int_field(annotation):
                raise InputError(f"{path} is {annotation}: use uniform or loguniform")
            domain = IntRange(int(parts[0]), int(parts[1]))
        else:
            if _is_int_field(annotation):  # a float sampled into a whole-number field would reach the trial as one
                raise InputError(f"{path} is {annotation}: use int:LO,HI")
            domain = (Uniform if kind == "uniform" else LogUniform)(float(parts[0]), float(parts[1]))
    except ValueError as exc:
        raise InputError(
            f"Expected --space {usage}. Received: {text!r} ({exc}). To fix, write it in that form, as the part in "
            "brackets says."
        ) from None
    _check_bounds(path, domain)
    return path, domain


def _check_bounds(path: str, domain: Domain) -> None:
    """What a space may be given (--space, a suite's mapping); a recorded run's space reads back as it ran."""
    values = domain.values if isinstance(domain, Choice) else ()
    repeated = list(dict.fromkeys(repr(v) for v in values if values.count(v) > 1))
    if repeated:
        raise InputError(
            f"Expected each value of a choice once. Received: {', '.join(repeated)} more than once in {path} "
            f"{list(values)}: a random search would draw it more often than the others, and a grid train it "
            "twice to the same numbers. To fix, give each value once."
        )
    parts = [p for v in values for p in (v if isinstance(v, tuple) else (v,))]
    non_finite = [v for v in parts if isinstance(v, float) and not math.isfinite(v)]
    if non_finite:
        raise InputError(
            f"Expected finite values in the choice of {path}. Received: {non_finite[0]} in {list(values)}: a trial "
            f"would take it and diverge or train unregularised. To fix, give numbers, such as {path}=choice:0,0.001."
        )
    if isinstance(domain, IntRange) and not all(float(end).is_integer() for end in (domain.low, domain.high)):
        raise InputError(
            f"Expected whole-number bounds for an int range of {path}. Received: {domain.low}, {domain.high}. "
            "To fix, round them, or use uniform."
        )
    if isinstance(domain, (Uniform, LogUniform)) and not all(math.isfinite(end) for end in (domain.low, domain.high)):
        raise InputError(
            f"Expected finite bounds for {path}. Received: {domain.low}, {domain.high}. To fix, give numbers, such as "
            f"{path}={_kind_name(domain)}:1e-4,1e-1."
        )
    if isinstance(domain, (Uniform, LogUniform, IntRange)) and not domain.low < domain.high:
        fix = (
            f"To fix, swap them: {path}={_kind_name(domain)}:{domain.high},{domain.low}"
            if domain.low > domain.high
            else f"To fix, give two different bounds, or {path}=choice:{domain.low} for one value"
        )
        raise InputError(f"Expected LO < HI for {path}. Received: {domain.low}, {domain.high}. {fix}.")
    if isinstance(domain, LogUniform) and not domain.low > 0:
        raise InputError(
            f"Expected loguniform bounds > 0 for {path}. Received: {domain.low}, {domain.high}. To fix, give a "
            f"positive LO, or {path}=uniform:{domain.low},{domain.high}."
        )


def _kind_name(domain: Domain) -> str:
    """The --space KIND that gives ``domain``."""
    return {Uniform: "uniform", LogUniform: "loguniform", IntRange: "int"}.get(type(domain), "choice")


def parse_space(texts: list[str]) -> SearchSpace:
    return SearchSpace(tuple(parse_param(t) for t in texts))


def space_from_mapping(mapping: dict[str, Domain]) -> SearchSpace:
    """For suites written in Python: paths may be aliases; every path is checked."""
    params = []
    for raw, domain in mapping.items():
        path = canonical_path(raw)
        _field_annotation(path)
        _check_bounds(path, domain)
        params.append((path, domain))
    return SearchSpace(tuple(params))


def apply_point(base: TrialConfig, point: dict[str, Any]) -> TrialConfig:
    """``base`` with each sampled value set, by the one override rule (:mod:`harness.overrides`: another
    optimizer starts from its own defaults with the base's learning rate and clipping); InputError on bad values."""
    changes = {}
    for raw, value in point.items():
        path = canonical_path(raw)
        _field_annotation(path)  # searchable only
        changes[path] = value
    return apply_overrides(base, changes)


# Beyond this many combinations of the probed values, only single values and pairs are checked up front.
MAX_CHECKED_COMBINATIONS = 4096


def probe_values(domain: Domain) -> tuple[Any, ...]:
    """The values that stand for a domain when checking a space: every choice, both ends of a range."""
    if isinstance(domain, Choice):
        return domain.values
    return (domain.low, domain.high)


def _probe_axes(space: SearchSpace) -> list[tuple[str, tuple[Any, ...]]]:
    return [(path, probe_values(domain)) for path, domain in space.params]


def _every_combination(axes: list[tuple[str, tuple[Any, ...]]]) -> Iterator[dict[str, Any]]:
    """Each combination of the axes' values as a complete point, or nothing beyond :data:`MAX_CHECKED_COMBINATIONS`."""
    if math.prod(len(values) for _, values in axes) <= MAX_CHECKED_COMBINATIONS:
        for combination in itertools.product(*(values for _, values in axes)):
            yield dict(zip((path for path, _ in axes), combination, strict=True))


def probe_points(space: SearchSpace) -> Iterator[dict[str, Any]]:
    """The points that stand for everything a search may sample: each probed value alone, every pair of two
    options' probed values, then every combination while there are at most :data:`MAX_CHECKED_COMBINATIONS`."""
    axes = _probe_axes(space)
    for path, values in axes:
        for value in values:
            yield {path: value}
    for (path_a, values_a), (path_b, values_b) in itertools.combinations(axes, 2):
        for a, b in itertools.product(values_a, values_b):
            yield {path_a: a, path_b: b}
    if len(axes) > 2:
        yield from _every_combination(axes)


def sample_corners(space: SearchSpace) -> Iterator[dict[str, Any]]:
    """Complete points, every option of the space set, that stand for what a search may sample: every combination
    of the probed values while there are at most :data:`MAX_CHECKED_COMBINATIONS`, else each probed value with the
    other options at their first. What depends on the model and the machine is checked on these (harness.preflight):
    a value can fail with the base's other options yet never with the values the search gives them (--mc-dropout
    with a dropout rate searched, over a base without dropout)."""
    axes = _probe_axes(space)
    if math.prod(len(values) for _, values in axes) <= MAX_CHECKED_COMBINATIONS:
        yield from _every_combination(axes)
        return
    first = {path: values[0] for path, values in axes}
    for path, values in axes:
        for value in values:
            yield {**first, path: value}


def validate_space(base: TrialConfig, space: SearchSpace) -> None:
    """Every point of :func:`probe_points` gives a valid trial config: InputError naming the value that fails
    alone, or else the pair that fails together, or else every option. A sample that only some trials could take
    (Adam with a momentum, nesterov with momentum 0) is found here, before any trial runs, instead of failing those
    trials. What depends on the model and the machine (a freeze_groups beyond the model's groups, a batch that
    cannot fit) the preflight checks on complete points (:func:`sample_corners`)."""
    weights = [path for path in space.paths if path in ("transfer.pretrained", "transfer.weights_file")]
    if weights:  # each sample's would need its own conversion and check, which preflight makes for the base's alone
        raise InputError(
            f"Expected a search space without {' or '.join(weights)} for {base.case_id}: the weights are found, "
            f"converted and checked once, before Ray starts, for the run's own reference. Received: "
            f"{', '.join(weights)} in --space. To fix, drop it from the space, and run each weights reference as a "
            "case of its own (--pretrained / --weights)."
        )
    if "mc_dropout_passes" in space.paths:  # run on the test split after training, which no sample scores
        raise InputError(
            f"Expected searched options that change what the search picks by, the validation metric "
            f"({base.case_id}). Received: mc_dropout_passes in the search space: MC-dropout passes run over the test "
            "split after training, which a search sample does not score, so every sample would train and validate "
            "alike and the pick fall to the sample number. To fix, give the passes with --mc-dropout N (the final "
            "stage's re-runs make them) and search the dropout rate (dropout=uniform:LO,HI) instead."
        )
    unread = [path for path in space.paths if not reads_path(base, path)]
    if unread:  # a sampled value equal to the default would pass the check of each point below
        raise InputError(
            f"Expected only searched options that strategy {base.strategy} reads ({base.case_id}). Received: "
            f"{', '.join(unread)} in the search space: every sample would train alike, told apart by a setting that "
            "changes nothing. To fix, drop it from --space, or search a strategy that reads it (docs/strategies.md)."
        )
    # An option with one value is set in every sample, so the others are checked with it set: a plateau's patience
    # searched beside schedule=choice:plateau is valid, though it would fail alone on a constant-schedule base.
    axes, failures = _probe_axes(space), _Failures(base)
    fixed = {path: values[0] for path, values in axes if len(values) == 1}
    try:
        for point in [*({path: value} for path, value in fixed.items()), *([fixed] if len(fixed) > 1 else [])]:
            _check_point(failures, point, axes)
        varied = SearchSpace(tuple((path, domain) for path, domain in space.params if path not in fixed))
        for point in probe_points(varied):
            _check_point(failures, point, axes, fixed)
    except InputError:
        _refuse_alike(failures, space)
        raise
    _check_choices_train_apart(base, space)


def _refuse_alike(failure: _Failures, space: SearchSpace) -> None:
    """InputError with the base's own refusal where every complete point the search may sample fails with it: the
    options given beside the space are at fault (--freeze-groups 2 on a scratch tune), and no searched value is. A
    refusal the base does not meet is the searched values' (optimizer=choice:adam with momentum=choice:0.5)."""
    whys = {failure(point) for point in sample_corners(space)}
    if len(whys) == 1 and (why := whys.pop()) is not None and failure({}) == why:
        case = failure.base.case_id
        raise InputError(why if case in why else f"{why} (Case {case}.)") from None


def _check_choices_train_apart(base: TrialConfig, space: SearchSpace) -> None:
    """InputError where two values of a choice give one configuration: a trial records each optimizer option
    resolved, so ``weight_decay=choice:none,0`` is 0 twice, as a repeated value would be (_check_bounds): only a
    choice holding none can name one configuration twice. Which default none stands for follows the optimizer, so
    each searched optimizer is tried."""
    names = dict(space.params).get("optimizer.name")
    for path, domain in space.params:
        if not isinstance(domain, Choice) or None not in domain.values or path == "optimizer.name":
            continue
        contexts = [{"optimizer.name": n} for n in names.values] if isinstance(names, Choice) else [{}]
        for context in contexts:
            seen: dict[TrialConfig, Any] = {}
            for value in domain.values:
                try:
                    trial = apply_point(base, {**context, path: value})
                except (ValueError, TypeError):  # a value this optimizer refuses: told by the checks above
                    continue
                if trial in seen:
                    _refuse_one_configuration(path, domain, seen[trial], value, trial, context)
                seen[trial] = value


def _refuse_one_configuration(
    path: str, domain: Choice, first: Any, second: Any, trial: TrialConfig, context: dict[str, Any]
) -> None:
    spell = lambda value: "none" if value is None else str(value)  # noqa: E731 - as --space writes it
    written = f"{path}=choice:{','.join(spell(v) for v in domain.values)}"
    given = f" (with optimizer {context['optimizer.name']})" if context else ""
    stands = ""
    if first is None or second is None:
        owner = f" of optimizer {trial.optimizer.name}" if path.startswith("optimizer.") else ""
        stands = f": none stands for {sampled_value(trial, path)!r}, the default {path.split('.')[-1]}{owner}"
    drop = "none" if first is None or second is None else spell(second)
    raise InputError(
        f"Expected each value of a choice to train its own configuration. Received: {written}{given}, where "
        f"{spell(first)} and {spell(second)} train one configuration{stands}. A random search would draw it more "
        f"often than the others, and a grid train it twice to the same numbers. To fix, drop {drop} from the choice."
    )


class _Failures:
    """Why a point applied to ``base`` is no valid trial config (None where it is one), each point judged once: a
    part of a point that fails on the base is judged again in every whole point that contains it, and those are the
    same few thousand for every part (checking them afresh made a 12-option space take 17-31 s instead of 1.5)."""

    def __init__(self, base: TrialConfig) -> None:
        self.base = base
        self._seen: dict[tuple[tuple[str, str], ...], str | None] = {}

    def __call__(self, point: dict[str, Any]) -> str | None:
        key = tuple(sorted((path, repr(value)) for path, value in point.items()))
        if key not in self._seen:
            self._seen[key] = self._judge(point)
        return self._seen[key]

    def _judge(self, point: dict[str, Any]) -> str | None:
        try:
            trial = apply_point(self.base, point)
            check_finite_settings(trial)
            check_strategy_options(trial)
            initializer(trial.init)  # checked here, not in TrialConfig: a recorded run's rows read back as they ran
        except (ValueError, TypeError) as exc:
            return str(exc)
        return None


def _completions(point: dict[str, Any], axes: list[tuple[str, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    """``point`` with the searched options it leaves out set as samples set them: each combination of their probed
    values (at most :data:`MAX_CHECKED_COMBINATIONS`), else each at its first."""
    others = [(path, values) for path, values in axes if path not in point]
    combinations = list(_every_combination(others)) or [{path: values[0] for path, values in others}]
    return [{**combination, **point} for combination in combinations]


def _check_point(
    failure: _Failures,
    point: dict[str, Any],
    axes: list[tuple[str, tuple[Any, ...]]],
    fixed: dict[str, Any] | None = None,
) -> None:
    """InputError where ``point`` (with ``fixed``, the options every sample sets alike) fails in a sample the search
    can draw. A part of a point fails on the base also where the base's own value of a searched option is the cause
    (an eps searched with optimizer=choice:adam,rmsprop fails on a momentum base), which no sample has: such a failure
    counts only where the searched options' values make it too, and the message names what fails in every such
    sample, or else a whole point that fails."""
    given = {**(fixed or {}), **point}
    if failure(given) is None:
        return
    wholes = _completions(given, axes)
    failures = [(whole, why) for whole in wholes if (why := failure(whole)) is not None]
    if not failures:
        return
    whole, why = failures[0]
    named = point if len(failures) == len(wholes) else whole
    if len(named) == 1:
        [(path, value)] = named.items()
        raise InputError(
            f"Expected every value of {path} to be valid. Received: {value!r}, which fails: {why} To fix, narrow "
            f"--space {path} to values that are valid, or drop it from the space."
        )
    raise InputError(
        f"Expected every combination of the searched values to be valid: a search may sample any of them "
        f"together. Received: {point_text(named)}, which fails: {why} To fix, search these options in separate runs "
        "(say one tune per optimizer), or narrow their values so that every combination is valid."
    )


def point_text(point: dict[str, Any]) -> str:
    """A point as the command line writes it: ``lr=0.1, optimizer='adam'``."""
    return ", ".join(f"{path}={value!r}" for path, value in point.items())


def sampled_value(config: TrialConfig, path: str) -> Any:
    """The value at a search path (``optimizer.lr``) of a trial's configuration: what its sample drew there."""
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def drawn_point(space: SearchSpace, ran: TrialConfig) -> dict[str, Any]:
    """The point a recorded sample ``ran`` was given, by path, as the search's domains spell it: its recorded value
    of each option, but for a choice the value that gives the recorded one. A config records each optimizer option
    resolved (``weight_decay=choice:none,0.01`` records none as the optimizer's default, 0.0), and a resumed Optuna
    search told its sampler 0.0, which is none of its choices: Optuna raised, and the finished sample was recorded
    failed, its kept rows replaced."""
    point = {path: sampled_value(ran, path) for path, _ in space.params}
    for path, domain in space.params:
        if not isinstance(domain, Choice):
            continue
        recorded = point[path]
        same = [value for value in domain.values if value == recorded]
        if same:
            point[path] = same[0]
            continue
        for value in domain.values:
            try:  # the sample's other options are ran's own: a default follows the optimizer the sample had
                gives = sampled_value(apply_point(ran, {path: value}), path)
            except (ValueError, TypeError):
                continue
            if gives == recorded:
                point[path] = value
                break
    return point


def search_trial(base: TrialConfig, point: dict[str, Any], index: int) -> TrialConfig:
    """The trial for the ``index``-th sample: the point applied and the sample number kept, which its ids and
    rows spell after the case's variant so they never collide (``act_elu.search003``; harness.config.variant_label)."""
    return replace(apply_point(base, point), sample=index)


def _draw(domain: Domain, rng: np.random.Generator) -> Any:
    if isinstance(domain, Choice):
        return domain.values[int(rng.integers(len(domain.values)))]
    if isinstance(domain, Uniform):
        return float(rng.uniform(domain.low, domain.high))
    if isinstance(domain, LogUniform):
        return float(math.exp(rng.uniform(math.log(domain.low), math.log(domain.high))))
    return int(rng.integers(domain.low, domain.high + 1))  # IntRange: both ends included


def sample_points(space: SearchSpace, algorithm: str, num_samples: int, seed: int) -> list[dict[str, Any]]:
    """The points of a random or grid search, in sample order, from one seeded generator: the same seed gives
    the same points. Grid: every combination of the choices, ``num_samples`` times, ranges drawn per point. A random
    search over a finite space (choices and int ranges) that has room for its samples draws a point again where it
    repeats an earlier one: drawn with replacement, 8 samples of epochs=int:2,20 repeated one (and were refused) for
    82 % of seeds. A draw that repeats nothing is the one drawn before, so the points of seeds without a repeat
    stand."""
    rng = np.random.default_rng(seed)
    axes = [(p, d.values) for p, d in space.params if isinstance(d, Choice)] if algorithm == "grid" else []
    combinations = list(itertools.product(*(values for _, values in axes)))
    room = distinct_points(space)
    distinct = algorithm == "random" and room is not None and num_samples <= room
    points: list[dict[str, Any]] = []
    for _ in range(num_samples):
        for combination in combinations:
            fixed = dict(zip((p for p, _ in axes), combination, strict=True))
            point = {p: fixed[p] if p in fixed else _draw(d, rng) for p, d in space.params}
            while distinct and point in points:
                point = {p: _draw(d, rng) for p, d in space.params}
            points.append(point)
    return points


def optuna_missing() -> InputError:
    """The refusal of --search optuna without the optional extra: the CLI checks before it plans, the scheduler
    where a search is built (the pytest plugin's and a resumed search's too), and both say the same."""
    return InputError(
        "Expected Optuna for --search optuna. Received: it is not installed. To fix, pip install 'xfbench[optuna]', "
        "or use --search random or --search grid."
    )


OPTUNA_STARTUP_DEFAULT = 10  # optuna.samplers.TPESampler's n_startup_trials


def tpe_startup_samples(num_samples: int) -> int:
    """How many of an optuna search's samples its TPE sampler draws at random before it models the results: half
    the budget, at most Optuna's default of 10. With that default whatever the budget, the default 8 samples and
    tune_smoke's 4 were all drawn at random, and tune_quick's 12 all but 2, under the name TPE."""
    return max(1, min(OPTUNA_STARTUP_DEFAULT, num_samples // 2))


def distinct_points(space: SearchSpace) -> int | None:
    """How many points a space of choices and int ranges alone holds (an int range: each whole number from LO to
    HI); None for a space with a float range, whose draws differ."""
    if not all(isinstance(d, (Choice, IntRange)) for _, d in space.params):
        return None
    return math.prod(len(d.values) if isinstance(d, Choice) else int(d.high - d.low) + 1 for _, d in space.params)


def grid_size(space: SearchSpace) -> int:
    """How many grid points the choices span (ranges are sampled, not gridded)."""
    return math.prod(len(d.values) for _, d in space.params if isinstance(d, Choice)) if space.params else 1
