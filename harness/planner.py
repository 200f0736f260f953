"""From what the user asked for to a :class:`~harness.plan.RunPlan`: the one planner behind ``xfbench run``,
``xfbench tune`` and the pytest plugin.

A selection (a suite, or one strategy/model/dataset case) gives trial configs per (case, backend, seed); one set
of option overrides (:mod:`harness.overrides`) is applied to every one (refused for a suite where it would erase
what tells its variants apart: :mod:`harness.variant_overrides`); each backend's speed options are fitted to
what it can do. Every check raises InputError with what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.backbone import PRETRAIN
from harness.backend import BACKENDS, fit_to_capabilities
from harness.config import DEFAULT_CASE_EPOCHS, OPTIMIZERS, OptimizerConfig, TrialConfig, case_label
from harness.data.registry import DATASETS
from harness.errors import InputError, closest_text, unknown_name
from harness.model_import import parse_model_ref, trial_model, with_wanted_channels
from harness.overrides import KEPT_ON_OPTIMIZER_CHANGE, SET_BY_SCHEDULE, apply_overrides
from harness.plan import RUN_TITLE, TUNE_TITLE, RunPlan
from harness.pretrained import with_weight_preprocessing
from harness.scheduler import AshaSettings
from harness.schedules import SCHEDULES, ScheduleConfig, settings_read_by
from harness.search import Choice, SearchSpace, canonical_path, probe_values
from harness.strategies import describe_strategies
from harness.strategy_options import reads_path, unread_option_paths
from harness.suites import SUITES, Suite, SuiteCase, case_trials, suite
from harness.tuning import SEARCH_SEED, TunePlan, check_plan, pins_source_optimizer, search_base
from harness.variant_overrides import check_variant_overrides
from harness.weights import INITIALIZERS

DEFAULT_SUITE = "quick"  # what `xfbench run` runs when nothing is selected: the main job
DEFAULT_SEARCH_SAMPLES = 8
# Tune keeps every trial in the driver's memory and its experiment state, and planning alone takes about 0.2 ms
# per trial here; Ray's own scalability tests stop at 10,000 trials. Ten times that is a typo, not a run.
MAX_TRIALS = 100_000


def _case_epochs(strategy: str) -> int:
    """A case's epochs unless --epochs says; 1 for a strategy that reads no epochs (deep_features fits its head
    once; its backbone's are --source-epochs), as harness.strategy_options decides."""
    return 1 if "epochs" in unread_option_paths(strategy, pretrained=False) else DEFAULT_CASE_EPOCHS


@dataclass(frozen=True)
class Selection:
    """What to run: a suite, or one case; on which backends; with how many seeds (None: the suite's, else 1)."""

    suite: str | None = None
    strategy: str | None = None
    model: str | None = None
    dataset: str | None = None
    backends: tuple[str, ...] = BACKENDS
    seeds: int | None = None

    @property
    def names_a_case(self) -> bool:
        return any((self.strategy, self.model, self.dataset))


@dataclass(frozen=True)
class SearchRequest:
    """What a search varies and how: the command line's search options."""

    space: SearchSpace = SearchSpace()
    algorithm: str = "random"
    sampling_seed: int = 0
    num_samples: int | None = None  # None: 1 per grid point, else the suite's number, else 8
    metric: str = "val_acc"
    final_seeds: int = 3
    asha: AshaSettings | None = None


def _check_choice(kind: str, value: str | None, valid: Sequence[str]) -> None:
    if value is not None and value not in valid:
        raise InputError(
            f"Expected --{kind} to be one of {sorted(valid)}. Received: {value!r}. To fix, "
            f"{closest_text(value, valid, f'--{kind}')}pick one of those."
        )


def check_trial_count(count: int, how: str) -> None:
    """Refuse a run of more than MAX_TRIALS trials, counted before any trial is built."""
    if count > MAX_TRIALS:
        raise InputError(
            f"Expected at most {MAX_TRIALS:,} trials in a run. Received: {how} = {count:,} trials. "
            "To fix, ask for fewer seeds, samples or backends."
        )


def check_suite_size(chosen: Suite, backends: Sequence[str], seeds: int) -> None:
    """A suite's trials counted before any is built: each case on the backends it runs on, times the seeds."""
    runs = sum(len([b for b in backends if not c.only_backends or b in c.only_backends]) for c in chosen.cases)
    check_trial_count(
        runs * seeds, f"{len(chosen.cases)} case(s) of {chosen.name} on their backends ({runs:,}) × {seeds} seed(s)"
    )


def _check_names(selection: Selection, overrides: Mapping[str, Any]) -> None:
    for backend in selection.backends:
        _check_choice("backend", backend, BACKENDS)
    _check_choice("source-backend", overrides.get("transfer.source_backend"), BACKENDS)
    if selection.suite and selection.names_a_case:
        unknown = (
            f" (and no suite is named {selection.suite!r}: one of {sorted(SUITES)})"
            if (selection.suite not in SUITES)
            else ""
        )
        raise InputError(
            f"Expected either --suite or --strategy/--model/--dataset. Received both: --suite {selection.suite}"
            f"{unknown} and a case. To fix, give one or the other: --suite alone runs its cases, "
            "--strategy/--model/--dataset one case of your own."
        )
    _check_choice("suite", selection.suite, list(SUITES))
    _check_choice("optimizer", overrides.get("optimizer.name"), OPTIMIZERS)
    _check_choice("init", overrides.get("init"), list(INITIALIZERS))
    _check_choice("schedule", overrides.get("schedule.name"), list(SCHEDULES))


def _case_trials(selection: Selection) -> tuple[list[TrialConfig], str]:
    s = selection
    if not (s.strategy and s.model and s.dataset):
        raise InputError(
            "Expected --strategy, --model and --dataset together (or --suite). "
            f"Received: strategy={s.strategy!r}, model={s.model!r}, dataset={s.dataset!r}. To fix, give the missing "
            "ones (`xfbench list` names the strategies, models and datasets), or --suite NAME instead."
        )
    if s.strategy != PRETRAIN:  # scheduled by xfbench, never run on its own: refused later, saying so; not listed
        _check_choice("strategy", s.strategy, [n for n in describe_strategies() if n != PRETRAIN])
    parse_model_ref(s.model)
    _check_choice("dataset", s.dataset, list(DATASETS))
    seeds = s.seeds or 1
    check_trial_count(len(s.backends) * seeds, f"{len(s.backends)} backend(s) × {seeds} seed(s)")
    trials = [
        TrialConfig(
            strategy=s.strategy, model=s.model, dataset=s.dataset, backend=b, seed=seed, epochs=_case_epochs(s.strategy)
        )
        for b in s.backends
        for seed in range(s.seeds or 1)
    ]
    return trials, case_label(s.strategy, s.model, "", s.dataset)


def resolved(
    trials: list[TrialConfig], overrides: Mapping[str, Any], selected: Sequence[str] | None = None
) -> list[TrialConfig]:
    """The overrides applied to every trial, then each trial fitted to its backend: one backend's speed option
    (--jit-compile, --torch-compile) is off, and recorded off, on the other's trials; refused when none of the
    ``selected`` backends (default: the trials') honours it."""
    given = [apply_overrides(t, overrides) for t in trials]
    fitted = fit_to_capabilities([replace(t, model=trial_model(t.model)) for t in given], selected)
    return [with_wanted_channels(with_weight_preprocessing(t, overrides.keys())) for t in fitted]


def suite_case_trials(
    chosen: Suite,
    case: SuiteCase,
    backends: tuple[str, ...],
    seeds: int | None,
    overrides: Mapping[str, Any],
    selected: tuple[str, ...] | None = None,
) -> list[TrialConfig]:
    """A suite case's trials per (backend, seed) of ``backends``, resolved: what the pytest plugin runs for one test.
    A speed option is judged against ``selected`` (default ``backends``), the session's or run's whole selection,
    not the case's own backends (a case for torch only takes --jit-compile off, as a torch trial does) nor the one
    test's (a case's TensorFlow-only mode on its torch test is recorded off, as the CLI's torch trials record it)."""
    strategies = [name for name in describe_strategies() if name != PRETRAIN]
    if case.strategy not in strategies:  # else the plugin collected the case and its test failed only at set-up
        raise unknown_name("strategy", case.strategy, strategies)
    trials = case_trials(case, chosen.name, backends, seeds or chosen.seeds)
    return resolved(trials, overrides, selected or backends)


def selected_trials(selection: Selection, overrides: Mapping[str, Any]) -> tuple[list[TrialConfig], str]:
    """Every trial of the selection with the overrides applied and fitted to each backend; and a run label."""
    _check_names(selection, overrides)
    trials, label = _selected_trials(selection, overrides)
    _check_float64_batchnorm_statistics(trials, overrides)
    return trials, label


def _check_float64_batchnorm_statistics(trials: list[TrialConfig], overrides: Mapping[str, Any]) -> None:
    """--bn-statistics float64 given where a trial computes in float64, whose BatchNorm is float64 in every framework
    already: recorded, it would change nothing. A suite case's own (the techniques suite's BatchNorm variants under
    --precision float64) is left as it is: the case defines it, and the inexact column says nothing of it."""
    if overrides.get("runtime.bn_statistics") != "float64":
        return
    in_float64 = [t.case_id for t in trials if t.runtime.precision == "float64"]
    if in_float64:
        # float64 given, or a suite case's own (zoo_smoke's, the CI tiers' exact cases): the fix differs
        given = overrides.get("runtime.precision") == "float64"
        fix = (
            "drop --bn-statistics float64."
            if given
            else "drop --bn-statistics float64, or add --precision float32 to train the suite's float64 cases in "
            "float32 with float64 BatchNorm statistics."
        )
        raise InputError(
            "Expected --bn-statistics float64 with float32 or mixed precision: in float64 (--precision float64, or "
            "a suite case's own) training-mode BatchNorm already computes in float64 in every framework, so it would "
            f"be recorded, yet change nothing. Received: --bn-statistics float64 for {in_float64[0]}, in float64. "
            f"To fix, {fix}"
        )


def _selected_trials(selection: Selection, overrides: Mapping[str, Any]) -> tuple[list[TrialConfig], str]:
    if not selection.suite:
        trials, label = _case_trials(selection)
        return resolved(trials, overrides), label
    chosen = suite(selection.suite)
    check_suite_size(chosen, selection.backends, selection.seeds or chosen.seeds)
    check_variant_overrides(chosen, selection.backends, overrides)  # before a case's own checks meet the option
    per_case = [_given_to_case(chosen, c, selection, overrides) for c in chosen.cases]
    # An option given for a whole suite goes to the cases whose strategy reads it (--source-backend to a transfer
    # suite's backbone cases, not its scratch baseline); one that no case reads stays, for the preflight to refuse.
    read = {path for path in overrides if any(reads_path(t, path) for trials in per_case for t in trials)}
    trials = []
    for case, group in zip(chosen.cases, per_case, strict=True):
        unread = {path for path in read if not all(reads_path(t, path) for t in group)}
        if unread:
            kept = {path: value for path, value in overrides.items() if path not in unread}
            group = _given_to_case(chosen, case, selection, kept)
        trials += group
    return trials, chosen.name


def _check_settings_beside_a_searched_optimizer(
    overrides: Mapping[str, Any], space: SearchSpace, bases: Sequence[TrialConfig]
) -> None:
    """A sampled optimizer starts from its own defaults (but for the rate and clipping), so a setting given for
    the base would reach some samples and not others: --weight-decay 1e-3 with optimizer=choice:momentum,adam
    trained the adam samples without decay, as their rows recorded, and the comparison mixed the two. A case's own
    setting (imagenet_transfer_smoke's weight decay 1e-4) splits them alike."""
    searched = {canonical_path(path) for path in space.paths}
    if "optimizer.name" not in searched:
        return
    dropped = sorted(
        path
        for path in overrides
        if path.startswith("optimizer.") and path.removeprefix("optimizer.") not in ("name", *KEPT_ON_OPTIMIZER_CHANGE)
    )
    if dropped:
        them = "it" if len(dropped) == 1 else "them"
        given = ", ".join(f"{path}={overrides[path]!r}" for path in dropped)
        spaces = " ".join(f"--space {path.removeprefix('optimizer.')}=choice:{overrides[path]}" for path in dropped)
        raise InputError(
            f"Expected no optimizer settings beside a searched optimizer but the rate and clipping: each sampled "
            f"optimizer starts from its own defaults. Received: {given}, which some samples would train with and "
            f"others not. To fix, search {them} too ({spaces}: every sample then sets {them}, where its optimizer "
            f"reads {them}), or run one tune per optimizer."
        )
    for base in (b for b in bases if reads_path(b, "optimizer.name")):
        own = _own_optimizer_settings(base, searched)
        if own:
            said = ", ".join(f"{name}={value!r}" for name, value in own.items())
            raise InputError(
                f"Expected cases whose optimizer has no settings of its own but the rate and clipping beside a "
                f"searched optimizer: each sampled optimizer starts from its own defaults. Received: {base.case_id} "
                f"sets {said} on {base.optimizer.name}, which its {base.optimizer.name} samples would train with and "
                f"the others not. To fix, search {'it' if len(own) == 1 else 'them'} too (--space "
                "NAME=choice:VALUE), leave out the case, or run one tune per optimizer."
            )


def _check_settings_beside_a_searched_schedule(
    overrides: Mapping[str, Any], space: SearchSpace, bases: Sequence[TrialConfig]
) -> None:
    """A searched schedule that cycles the momentum itself (onecycle: the momentum, or Adam's beta1) would record the
    value given for the base, or the case's own, on its samples and train them without it: --momentum 0.5 with
    schedule=choice:constant,onecycle. (piecewise, whose values are the rates, cannot be searched beside a rate
    without its values, which make the base piecewise: run's own check refuses the rate there.)"""
    domain = {canonical_path(path): d for path, d in space.params}.get("schedule.name")
    names = [str(v) for v in domain.values] if isinstance(domain, Choice) else list(SET_BY_SCHEDULE)
    if domain is None or "onecycle" not in names:
        return
    for base in (b for b in bases if reads_path(b, "schedule.name")):  # the others are refused for the space
        read = [path for path in SET_BY_SCHEDULE["onecycle"] if reads_path(base, path)]
        given = {path: overrides[path] for path in read if path in overrides}
        own = _own_optimizer_settings(base, set())
        set_by_case = {path: own[field] for path in read if (field := path.removeprefix("optimizer.")) in own}
        unread = given or set_by_case
        if unread:
            from harness.cli_options import override_flags  # it imports this module

            said = ", ".join(f"{path}={value!r}" for path, value in unread.items())
            source = f"given as {', '.join(override_flags(list(given)))}" if given else base.case_id
            raise InputError(
                f"Expected no {' / '.join(unread)} beside a searched schedule that includes onecycle: its samples "
                f"cycle the momentum themselves, so they would record the value and train without it. Received: "
                f"{said} ({source}). To fix, drop it, or search the schedules in separate runs (--schedule onecycle "
                "in one, the value in the other)."
            )


def _own_optimizer_settings(base: TrialConfig, searched: set[str]) -> dict[str, Any]:
    """The settings ``base``'s optimizer holds beyond its defaults that a change of optimizer drops (rate and
    clipping stay), but for those ``searched`` (every sample sets them)."""
    # compared resolved: a trial's optimizer holds its defaults filled in (momentum's 0.9)
    own, defaults = base.optimizer.resolved(), OptimizerConfig(name=base.optimizer.name).resolved()
    return {
        f.name: getattr(own, f.name)
        for f in dataclasses.fields(OptimizerConfig)
        if f.name not in ("name", *KEPT_ON_OPTIMIZER_CHANGE)
        and f"optimizer.{f.name}" not in searched
        and getattr(own, f.name) != getattr(defaults, f.name)
    }


def _given_to_case(
    chosen: Suite, case: SuiteCase, selection: Selection, overrides: Mapping[str, Any]
) -> list[TrialConfig]:
    """A case's trials with the options given for its suite. One that cannot join a setting the case makes itself
    (--augment on the speed matrix's compiled epoch loop) is told so: the setting's own message names a flag as if
    the user had given both."""
    try:
        return suite_case_trials(chosen, case, selection.backends, selection.seeds, overrides)
    except InputError as exc:
        # the case's own settings at fault: valid alone, the options valid on another case of the suite, and on this
        # one without its settings (a case on the default schedule refuses --plateau-patience as any run does)
        label = case_label(case.strategy, case.model, case.variant, case.dataset)
        if not _builds(chosen, case, selection, {}) or not any(
            _builds(chosen, other, selection, overrides) for other in chosen.cases if other is not case
        ):
            raise
        if not _builds(chosen, SuiteCase(case.strategy, case.model, case.dataset, case.epochs), selection, overrides):
            # its settings are the defaults' here: the option is what it cannot take
            raise InputError(given_to_suite(str(exc), label, chosen.name, ", on the defaults there")) from None
        raise InputError(
            f"{exc} (Case {label} of suite {chosen.name} sets the other itself, and an option given for a suite "
            "reaches all its cases: leave this one out for this suite.)"
        ) from None


def given_to_suite(message: str, label: str, suite_name: str, where: str = "") -> str:
    """A refusal of a suite's case told as one: the option at fault was given for the whole suite (--mc-dropout 5 on
    quick, whose mlp has no dropout), and nothing else names the case it failed on."""
    return f"{message} (Case {label} of suite {suite_name}{where}: an option given for a suite reaches all its cases.)"


def _builds(chosen: Suite, case: SuiteCase, selection: Selection, overrides: Mapping[str, Any]) -> bool:
    try:
        suite_case_trials(chosen, case, selection.backends, selection.seeds, overrides)
    except InputError:
        return False
    return True


def check_runnable_suite(chosen: Suite) -> None:
    """Refuse a search suite (Suite.search set) where its cases would run as they stand: only ``xfbench tune``
    reads its space, so a run would train its base configuration alone and report it under the search's name."""
    if chosen.search.params:
        case = chosen.cases[0]
        raise InputError(
            f"Expected a suite of cases to run. Received: suite {chosen.name}, a search over "
            f"{', '.join(chosen.search.paths)}: run as it stands, it would train only its base configuration "
            f"({', '.join(c.case_id for c in chosen.cases)}), never a searched value. To fix, search it with "
            f"`xfbench tune --suite {chosen.name}`, or run that configuration as a case: --strategy {case.strategy} "
            f"--model {case.model} --dataset {case.dataset}."
        )


def plan_run(selection: Selection, overrides: Mapping[str, Any]) -> RunPlan:
    """A run of the selection; with nothing selected, the quick suite (the main job)."""
    if not selection.suite and not selection.names_a_case:
        selection = replace(selection, suite=DEFAULT_SUITE)
    chosen = SUITES.get(selection.suite or "")
    if chosen is not None and not selection.names_a_case:  # else selected_trials names what is wrong
        check_runnable_suite(chosen)
    trials, label = selected_trials(selection, overrides)
    return RunPlan("run", label, RUN_TITLE, trials=tuple(trials))


def schedule_carrying_settings(overrides: Mapping[str, Any], space: SearchSpace) -> str | None:
    """The base schedule of a search that samples the schedule, when schedule settings are given beside it
    (``--plateau-patience 3 --space schedule=choice:plateau,constant``): they are meant for the one searched
    schedule that reads them, which the base takes (a sample of another schedule starts from its own defaults,
    harness.overrides). Settings that no searched schedule reads all, or that several read (--schedule-steps, read
    by power and exponential alike), are refused: which samples they would reach would be a guess. None when the
    schedule is not searched or no setting is given."""
    domain = {canonical_path(path): d for path, d in space.params}.get("schedule.name")
    given = sorted(path for path in overrides if path.startswith("schedule.") and path != "schedule.name")
    if not isinstance(domain, Choice) or not given:
        return None
    settings = {path.removeprefix("schedule.") for path in given}
    readers = [str(name) for name in domain.values if settings & settings_read_by(str(name))]
    carrier = readers[0] if len(readers) == 1 and settings <= settings_read_by(readers[0]) else None
    if carrier is None or overrides.get("schedule.name", carrier) != carrier:
        from harness.cli_options import override_flags  # it imports this module

        flags = ", ".join(override_flags(given))
        settings_text = ", ".join(f"{path.removeprefix('schedule.')}={overrides[path]!r}" for path in given)
        read_by = f"read by {', '.join(readers)}" if readers else "read by none of them"
        searched = ", ".join(map(str, domain.values))
        raise InputError(
            f"Expected schedule settings that exactly one of the searched schedules ({searched}) reads. Received: "
            f"{flags} ({settings_text}), {read_by}"
            + (f", with --schedule {overrides['schedule.name']}" if "schedule.name" in overrides else "")
            + ". To fix, give only the settings of one searched schedule (and no --schedule, or that one), or search "
            "the schedules in separate runs."
        )
    return carrier


def check_cases_take_the_carrier(trials: Sequence[TrialConfig], carrier: str) -> None:
    """A case with a schedule of its own (the techniques suite's sched_* cases) would lose it to the base schedule
    that carries the given settings, and its samples of its own schedule would start from the defaults."""
    own = sorted({t.case_id for t in trials if t.schedule != ScheduleConfig()})
    if own:
        raise InputError(
            f"Expected cases on the default constant schedule when schedule settings are given beside a searched "
            f"schedule (they go to a base {carrier} schedule). Received: {', '.join(own[:4])}"
            f"{', ...' if len(own) > 4 else ''} with a schedule of its own, which that base would replace. To fix, "
            "select cases without one, or search without the settings."
        )


def _check_the_seed_draws(request: SearchRequest, space: SearchSpace) -> None:
    """A grid of choices only (the suite's space with --space's) draws nothing: a sampling seed other than the
    default changes no point, yet the summary would name it."""
    choices_only = bool(space.params) and all(isinstance(d, Choice) for _, d in space.params)
    if request.algorithm == "grid" and choices_only and request.sampling_seed != SearchRequest.sampling_seed:
        raise InputError(
            f"Expected --search-seed with a space that draws values (random, optuna, or a range in a grid). Received: "
            f"--search-seed {request.sampling_seed} for a grid of choices only, whose points no seed changes (the "
            "summary would name a seed that chose nothing). To fix, drop --search-seed, or add a range to the space."
        )


def plan_tune(selection: Selection, overrides: Mapping[str, Any], request: SearchRequest) -> RunPlan:
    """A search per (case, backend) from seed 0, then each backend's best config with ``final_seeds`` seeds after it."""
    if selection.seeds:
        raise InputError(
            "Expected --final-seeds K with tune (search trials all start from seed 0). "
            f"Received: --seeds {selection.seeds}. To fix, give --final-seeds {selection.seeds} instead."
        )
    chosen = SUITES.get(selection.suite) if selection.suite else None  # an unknown name: selected_trials says so
    space = (chosen.search if chosen else SearchSpace()).merged(request.space)
    _check_the_seed_draws(request, space)
    carrier = schedule_carrying_settings(overrides, space)
    if carrier:
        unset = {path: value for path, value in overrides.items() if not path.startswith("schedule.")}
        check_cases_take_the_carrier(selected_trials(selection, unset)[0], carrier)
    trials, label = selected_trials(selection, {**overrides, "schedule.name": carrier} if carrier else overrides)
    if chosen:  # every sample sets each searched path: as an option given for the suite, it must not erase variants
        for path, domain in space.params:
            for value in probe_values(domain):
                check_variant_overrides(chosen, selection.backends, {canonical_path(path): value}, searched=True)
    bases = tuple(dict.fromkeys(search_base(replace(t, seed=SEARCH_SEED)) for t in trials))
    # A backbone strategy's base optimizer is also its backbone's (search_base pins it): given, it is read there.
    # Only where every base pins it: a scratch case beside (transfer_smoke's), or a case with a source optimizer of
    # its own (imagenet_transfer_smoke's), would record the given value and train with the searched ones alone.
    pinned = all(pins_source_optimizer(t) for t in trials)
    both = [
        path
        for path, _ in space.params
        if canonical_path(path) in overrides
        and not (pinned and canonical_path(path).startswith("optimizer."))
        and not (carrier and canonical_path(path) == "schedule.name")
    ]
    if both:  # every trial takes the searched value: the given one would be recorded, never trained
        raise InputError(
            "Expected each option either given or searched. Received: "
            + ", ".join(f"{p} in the search space and given as {overrides[canonical_path(p)]!r}" for p in both)
            + ". To fix, drop the option, or take it out of --space."
        )
    # A pinned backbone trains with the given settings alike in every sample, but the head's samples split as well.
    _check_settings_beside_a_searched_optimizer(overrides, space, bases)
    _check_settings_beside_a_searched_schedule(overrides, space, bases)
    # a grid is exhaustive: one sample per point unless asked; a random search samples the suite's number (or 8)
    default_samples = 1 if request.algorithm == "grid" else chosen.search_samples if chosen else DEFAULT_SEARCH_SAMPLES
    search = TunePlan(
        bases=bases,
        space=space,
        algorithm=request.algorithm,
        sampling_seed=request.sampling_seed,
        num_samples=request.num_samples or default_samples,
        metric=request.metric,
        final_seeds=request.final_seeds,
        asha=request.asha,
    )
    search.check_request()
    samples, finals = search.trials_per_experiment, search.final_seeds
    how = f"{len(bases)} search(es) × ({samples:,} sample(s) + {finals:,} final seed(s))"
    check_trial_count(len(bases) * (samples + finals), how)
    check_plan(search)
    return RunPlan("tune", f"tune-{label}", TUNE_TITLE, search=search)
