"""Search spaces: parsing, validation, applying samples, the mapping onto Ray Tune's domains and seeded samplers."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.config import OptimizerConfig, TransferOptions, TrialConfig
from harness.data.tasks import TaskSpec
from harness.errors import InputError
from harness.models import ModelOptions
from harness.scheduler import AshaSettings, SearchExperiment, replayable_rows, search_algorithm, tune_domain
from harness.schedules import ScheduleConfig
from harness.search import (
    Choice,
    IntRange,
    LogUniform,
    SearchSpace,
    Uniform,
    apply_point,
    grid_size,
    parse_param,
    parse_space,
    sample_points,
    search_trial,
    space_from_mapping,
    validate_space,
)
from harness.tuning import TunePlan, best_trials, check_plan, final_trials, search_base, search_table

BASE = TrialConfig(
    strategy="scratch",
    model="mlp",
    dataset="digits",
    backend="torch",
    seed=0,
    epochs=3,
    model_options=ModelOptions(hidden=(32,)),
    suite="t",
)


@pytest.mark.parametrize(
    "text, path, domain",
    [
        ("lr=loguniform:1e-4,1e-1", "optimizer.lr", LogUniform(1e-4, 1e-1)),
        ("optimizer.lr=uniform:0.01,0.1", "optimizer.lr", Uniform(0.01, 0.1)),
        ("batch_size=choice:32,64,128", "batch_size", Choice((32, 64, 128))),
        ("epochs=int:2,6", "epochs", IntRange(2, 6)),
        ("optimizer=choice:sgd,adam", "optimizer.name", Choice(("sgd", "adam"))),
        ("hidden=choice:64,128/64", "model_options.hidden", Choice(((64,), (128, 64)))),
        ("dropout=choice:none,0.2", "model_options.dropout", Choice((None, 0.2))),
        ("transfer.freeze_groups=int:0,2", "transfer.freeze_groups", IntRange(0, 2)),
    ],
)
def test_parse_param_spells_every_domain_kind(text, path, domain):
    assert parse_param(text) == (path, domain)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("lr", "PATH=KIND:ARGS"),
        ("learning_rate=uniform:0,1", "Expected a searchable option"),
        ("backend=choice:torch", "Expected a searchable option"),
        ("optimizer.colour=choice:red", "Expected a field of optimizer"),
        ("lr=normal:0,1", "unknown kind"),
        ("lr=uniform:0.1,0.01", "LO < HI"),
        ("lr=loguniform:0,1", "loguniform bounds > 0"),
        ("lr=int:1,3", "use uniform or loguniform"),
        ("optimizer=uniform:0,1", "not a number"),
        ("batch_size=choice:many", "invalid literal"),
        # drawn twice as often in a random search, trained twice in a grid (accepted)
        ("lr=choice:0.1,0.10,0.01", "Received: 0.1 more than once in optimizer.lr [0.1, 0.1, 0.01]"),
    ],
)
def test_bad_parameters_say_what_was_expected(text, fragment):
    with pytest.raises(InputError, match="Expected") as info:
        parse_param(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("space", "optimizer", "said"),
    [
        (
            ["weight_decay=choice:none,0"],
            "momentum",
            "optimizer.weight_decay=choice:none,0.0, where none and 0.0 "
            "train one configuration: none stands for 0.0, the default weight_decay of optimizer momentum.",
        ),
        (
            ["momentum=choice:0.9,none", "optimizer=choice:sgd,momentum"],
            "sgd",
            "optimizer.momentum=choice:0.9,none "
            "(with optimizer momentum), where 0.9 and none train one configuration: none stands for 0.9, the default "
            "momentum of optimizer momentum.",
        ),
        (["eps=choice:none,1e-8"], "adam", "none stands for 1e-08, the default eps of optimizer adam."),
        (["rho=choice:none,0.99"], "rmsprop", "none stands for 0.99, the default rho of optimizer rmsprop."),
    ],
)
def test_a_choice_whose_none_stands_for_another_of_its_values_is_refused_as_a_repeated_value_is(space, optimizer, said):
    """A trial records each optimizer option resolved, so weight_decay=choice:none,0 was two points of one
    configuration: drawn twice as often by a random search, trained twice to the same numbers by a grid (review
    154), while choice:0,0.0 was refused."""
    base = replace(BASE, optimizer=OptimizerConfig(name=optimizer))
    with pytest.raises(InputError, match=re.escape("Expected each value of a choice to train its own configu")) as no:
        check_plan(TunePlan(bases=(base,), space=parse_space(space), algorithm="grid", num_samples=1))
    assert said in str(no.value) and str(no.value).endswith("To fix, drop none from the choice.")
    # none beside another value; 0.9 beside none where none stands for sgd's momentum, 0
    validate_space(base, parse_space([space[0].split("=")[0] + "=choice:none,0.5"]))
    validate_space(replace(BASE, optimizer=OptimizerConfig(name="sgd")), parse_space(["momentum=choice:0.9,none"]))


def test_invalid_values_are_found_before_any_trial_runs():
    with pytest.raises(InputError, match="optimizer.name.*'adamax'"):
        validate_space(BASE, parse_space(["optimizer=choice:adam,adamax"]))
    with pytest.raises(InputError, match="model_options.dropout"):
        validate_space(BASE, parse_space(["dropout=uniform:0,1.5"]))
    validate_space(BASE, parse_space(["lr=loguniform:1e-4,1", "batch_size=int:8,128", "activation=choice:relu,elu"]))


def test_an_option_with_one_value_holds_while_the_others_are_checked():
    """A patience is valid only under the plateau schedule: searched beside schedule=choice:plateau, which every
    sample takes, it is valid over a constant-schedule base (it was refused as failing alone)."""
    assert BASE.schedule.name == "constant"
    validate_space(BASE, parse_space(["schedule=choice:plateau", "schedule.patience=int:0,3", "lr=uniform:0.01,0.1"]))
    with pytest.raises(InputError, match="Received: -1, which fails: Expected a whole number >= 0"):
        validate_space(BASE, parse_space(["schedule=choice:plateau", "schedule.patience=int:-1,3"]))
    with pytest.raises(InputError, match="Received: optimizer.momentum=0.5, optimizer.name='adam', which"):
        validate_space(BASE, parse_space(["optimizer=choice:adam", "momentum=choice:0.5"]))  # fixed, but not together


@pytest.mark.parametrize(
    "space, beside",
    [
        (["optimizer=choice:adam,rmsprop", "eps=loguniform:1e-8,1e-6"], "optimizer=choice:adam,rmsprop,momentum"),
        (["optimizer=choice:adam,adamw", "beta1=uniform:0.8,0.95"], "optimizer=choice:adam,adamw,momentum"),
        (["optimizer=choice:rmsprop,adadelta", "rho=uniform:0.8,0.95"], "optimizer=choice:rmsprop,adadelta,momentum"),
        (["eps=choice:1e-7", "optimizer=choice:adam,rmsprop"], "optimizer=choice:adam,rmsprop,momentum"),  # fixed
        (["schedule=choice:power,exponential", "schedule.steps=uniform:2,5"], "schedule=choice:power,constant"),
    ],
)
def test_a_value_refused_only_with_the_bases_own_optimizer_or_schedule_is_searched(space, beside):
    """Each searched value was checked alone on the base, whose momentum optimizer (or constant schedule) no sample
    keeps: an eps searched over adam and rmsprop was refused as "no --eps with optimizer momentum", though every
    point the search can draw is valid. It is refused where a sample would take it with an option that ignores it."""
    assert BASE.optimizer.name == "momentum" and BASE.schedule.name == "constant"
    validate_space(BASE, parse_space(space))
    with pytest.raises(InputError, match="Expected every combination of the searched values.*'(momentum|constant)'"):
        validate_space(BASE, parse_space([beside, *(s for s in space if s.split("=")[0] != beside.split("=")[0])]))


@pytest.mark.parametrize(
    "space, named",
    [
        # Each value is valid alone; Adam with a momentum is not (it would be recorded and never applied).
        (
            ["optimizer=choice:momentum,adam", "momentum=uniform:0.5,0.95"],
            "optimizer.momentum=0.5, optimizer.name='adam'",
        ),
        # The learning rate is valid with everything: the message names the two options that fail together.
        (
            ["lr=loguniform:1e-3,1e-1", "momentum=uniform:0,0.9", "optimizer=choice:momentum,nesterov"],
            "optimizer.momentum=0.0, optimizer.name='nesterov'",
        ),
        # From a plateau base, a patience is valid and so is the constant schedule, but not the two together.
        (
            ["schedule=choice:plateau,constant", "schedule.patience=int:1,3"],
            "schedule.name='constant', schedule.patience=1",
        ),
    ],
)
def test_values_that_fail_only_together_are_found_before_any_trial_runs(space, named):
    base = replace(BASE, schedule=ScheduleConfig("plateau"))
    with pytest.raises(InputError, match="Expected every combination of the searched values") as info:
        validate_space(base, parse_space(space))
    assert named in str(info.value) and "separate runs" in str(info.value)
    with pytest.raises(InputError, match="Expected every combination"):  # a tune's preflight runs the same check
        check_plan(TunePlan(bases=(base,), space=parse_space(space)))


def test_an_int_range_needs_whole_number_bounds():
    with pytest.raises(InputError, match=r"Expected whole-number bounds for an int range of epochs\. Received: 1\.5"):
        space_from_mapping({"epochs": IntRange(1.5, 3)})  # type: ignore[arg-type]  # as a suite in Python could


def test_each_point_is_judged_once_however_many_parts_of_it_fail_on_the_base(monkeypatch):
    """An eps searched across adam and rmsprop fails alone on the momentum base, so each part holding it is judged
    again in every whole point containing it: judged afresh each time, a 12-option space took 17-31 s, not 1.5 s."""
    import harness.search as search

    judged: list[tuple] = []
    real = search.apply_point
    monkeypatch.setattr(
        search, "apply_point", lambda base, point: judged.append(tuple(sorted(point.items()))) or real(base, point)
    )
    options = ["optimizer=choice:adam,rmsprop", "eps=loguniform:1e-8,1e-6", "lr=loguniform:1e-3,1e-1"]
    options += ["batch_size=choice:32,64", "l2=uniform:0,1e-3", "dropout=uniform:0,0.5", "clip_norm=uniform:1,5"]
    validate_space(BASE, parse_space(options))
    assert len(judged) == len(set(judged)) and len(judged) <= 7 * 2 + 21 * 4 + 2**7, len(judged)


def test_every_combination_is_checked_up_to_the_cap_and_pairs_beyond_it(monkeypatch):
    import harness.search as search

    checked: list[dict] = []
    monkeypatch.setattr(search, "apply_point", lambda base, point: checked.append(point) or base)
    options = [  # two probes each (both ends of a range, or two choices): 2^12 = 4,096, at the cap
        *("lr=loguniform:1e-3,1e-1", "batch_size=choice:32,64", "momentum=uniform:0.5,0.9", "l1=uniform:0,1e-4"),
        *("weight_decay=uniform:0,1e-3", "clip_norm=uniform:1,5", "clip_value=uniform:1,5", "l2=uniform:0,1e-3"),
        *("dropout=uniform:0,0.5", "epochs=int:2,3", "init=choice:he_normal,glorot_uniform", "beta1=uniform:0.8,0.9"),
    ]
    singles, pairs = 12 * 2, 66 * 4
    validate_space(BASE, parse_space(options))
    assert len(checked) == singles + pairs + 4096
    checked.clear()
    wide = [*options, "activation=choice:relu,elu"]  # 2^13 = 8,192: singles and pairs only
    validate_space(BASE, parse_space(wide))
    assert len(checked) == 13 * 2 + 78 * 4


def test_applying_a_point_coerces_tune_values_and_restarts_a_changed_optimizer_from_its_defaults():
    trial = apply_point(
        BASE,
        {
            "optimizer.name": "sgd",
            "optimizer.lr": np.float64(0.05),
            "batch_size": np.int64(32),
            "model_options.hidden": [64, 32],
        },
    )
    assert trial.optimizer.name == "sgd" and trial.optimizer.momentum == 0.0  # not the 0.9 of the base's "momentum"
    assert trial.optimizer.lr == 0.05 and type(trial.optimizer.lr) is float
    assert trial.batch_size == 32 and type(trial.batch_size) is int and trial.model_options.hidden == (64, 32)
    assert apply_point(BASE, {"optimizer.momentum": 0.5}).optimizer.momentum == 0.5
    same = apply_point(BASE, {"optimizer.name": "momentum"})
    assert same.optimizer == BASE.optimizer


def test_search_trials_are_named_by_their_sample():
    trial = search_trial(BASE, {"optimizer.lr": 0.1}, 7)
    assert trial.variant_label == "search007" and trial.trial_id == "t-scratch-mlp+search007-digits-torch-s0"
    assert search_trial(replace(BASE, variant="act_elu"), {}, 2).variant_label == "act_elu.search002"


def test_spaces_merge_and_round_trip_through_json():
    suite_space = parse_space(["lr=loguniform:1e-3,1", "batch_size=choice:32,64"])
    merged = suite_space.merged(parse_space(["batch_size=choice:16", "hidden=choice:8/8,16"]))
    assert merged.paths == ("batch_size", "model_options.hidden", "optimizer.lr")  # in order of path
    assert dict(merged.params)["batch_size"] == Choice((16,))
    assert SearchSpace.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged
    # a recorded space reads back as it ran, a choice that --space now refuses included
    recorded = SearchSpace.from_dict({"optimizer.lr": {"kind": "choice", "values": [0.1, 0.1]}})
    assert recorded.params == (("optimizer.lr", Choice((0.1, 0.1))),)


def test_a_space_draws_the_same_points_in_any_order_given_and_after_run_json_sorted_its_keys():
    """A resume reads the space back from run.json, whose keys are sorted: in the order given, a resume of this
    space drew other points and trained them under the finished samples' ids."""
    given = ["optimizer.lr=loguniform:1e-3,1e-1", "batch_size=choice:16,64", "optimizer=choice:momentum,nesterov"]
    space = parse_space(given)
    read_back = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict(), sort_keys=True)))
    for algorithm in ("random", "grid"):
        points = sample_points(space, algorithm, 3, seed=0)
        assert sample_points(read_back, algorithm, 3, seed=0) == points
        assert sample_points(parse_space(given[::-1]), algorithm, 3, seed=0) == points


def test_neutral_domains_map_onto_ray_tune_domains():
    from ray.tune.search.sample import Categorical, Float, Integer

    lr = tune_domain(LogUniform(1e-4, 1e-1), grid=False)
    assert (
        isinstance(lr, Float)
        and (lr.lower, lr.upper) == (1e-4, 1e-1)
        and type(lr.get_sampler()).__name__ == "_LogUniform"
    )
    uniform = tune_domain(Uniform(0.0, 0.5), grid=False)
    assert isinstance(uniform, Float) and type(uniform.get_sampler()).__name__ == "_Uniform"
    ints = tune_domain(IntRange(2, 4), grid=False)
    assert isinstance(ints, Integer) and (ints.lower, ints.upper) == (2, 5)  # Tune's bound is exclusive; ours is not
    drawn = ints.sample(size=400, random_state=np.random.RandomState(0))
    assert set(drawn) == {2, 3, 4}
    choice = tune_domain(Choice(("sgd", "adam")), grid=False)
    assert isinstance(choice, Categorical) and choice.categories == ["sgd", "adam"]
    assert tune_domain(Choice((32, 64)), grid=True) == {"grid_search": [32, 64]}
    samples = lr.sample(size=2000, random_state=np.random.RandomState(1))
    assert min(samples) >= 1e-4 and max(samples) <= 1e-1
    # log-uniform: each decade gets about a third of the samples
    decades = np.histogram(np.log10(samples), bins=[-4, -3, -2, -1])[0] / len(samples)
    assert np.all(np.abs(decades - 1 / 3) < 0.05)


def test_random_and_grid_searches_draw_each_domain_as_it_says():
    """Random and grid searches draw with the harness's own generator (sample_points), not Tune's sampler, which
    the test above holds: a log-uniform drawn linearly put 89 % of the learning rates in the top decade, and only
    the bounds were checked."""
    space = parse_space(["lr=loguniform:1e-4,1e-1", "dropout=uniform:0.0,0.6", "epochs=int:2,4"])
    for algorithm in ("random", "grid"):
        points = sample_points(space, algorithm, 3000, seed=0)
        lrs = np.array([p["optimizer.lr"] for p in points])
        dropouts = np.array([p["model_options.dropout"] for p in points])
        decades = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0] / len(lrs)
        assert np.all(np.abs(decades - 1 / 3) < 0.03), decades  # a third each: 0.330 / 0.338 / 0.332 measured
        halves = np.histogram(dropouts, bins=[0.0, 0.3, 0.6])[0] / len(dropouts)
        assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1 and np.all(np.abs(halves - 0.5) < 0.03), halves
        assert {p["epochs"] for p in points} == {2, 3, 4}  # both ends drawn


def _never_run(config: dict) -> None:
    raise AssertionError("sampling only")


def _sampled_points(algorithm: str, seed: int, n: int) -> list[dict]:
    """The points a search proposes for the neutral space, in sample order (no trials are run): drawn up front
    for random search, suggested by Tune's Optuna searcher (each numbered in its config) for optuna."""
    space = parse_space(["lr=loguniform:1e-4,1e-1", "optimizer=choice:sgd,adam,momentum", "batch_size=int:16,128"])
    if algorithm == "random":
        return sample_points(space, "random", n, seed)
    experiment = SearchExperiment(base=BASE, space=space, algorithm=algorithm, sampling_seed=seed, num_samples=n)
    searcher = search_algorithm(experiment)
    point = {path: tune_domain(d, grid=False) for path, d in space.params}
    searcher.set_search_properties("val_acc", "max", {"point": point})
    suggestions = [searcher.suggest(f"t{i}") for i in range(n)]
    assert [s["job"]["sample"] for s in suggestions] == list(range(n))  # the sample number is a field of the job
    return [s["point"] for s in suggestions]


@pytest.mark.parametrize("algorithm", ["random", "optuna"])
def test_a_fixed_sampling_seed_proposes_the_same_points_and_another_seed_does_not(algorithm):
    if algorithm == "optuna":
        pytest.importorskip("optuna")
    first, again, other = (_sampled_points(algorithm, s, 6) for s in (3, 3, 4))
    assert first == again
    assert first != other
    assert all(16 <= p["batch_size"] <= 128 and 1e-4 <= p["optimizer.lr"] <= 1e-1 for p in first)
    assert len({p["optimizer.lr"] for p in first}) == 6


def test_a_grid_covers_every_choice_combination_num_samples_times():
    space = parse_space(["optimizer=choice:sgd,adam", "batch_size=choice:32,64", "lr=loguniform:1e-3,1e-1"])
    points = sample_points(space, "grid", 2, seed=0)
    combos = [(p["optimizer.name"], p["batch_size"]) for p in points]
    assert len(points) == 8 == 2 * grid_size(space) and sorted(set(combos)) == sorted(set(combos[:4]))
    assert len(set(combos)) == 4 and all(1e-3 <= p["optimizer.lr"] <= 1e-1 for p in points)


def test_a_search_trial_keeps_its_cases_variant_and_carries_its_sample_number():
    trial = search_trial(replace(BASE, variant="act_elu"), {"optimizer.lr": 0.1}, 3)
    assert (trial.sample, trial.variant, trial.variant_label) == (3, "act_elu", "act_elu.search003")
    plain = search_trial(BASE, {}, 12)
    assert (plain.variant, plain.variant_label) == ("", "search012")
    tuned = replace(trial, sample=None, tuned=True)
    assert (tuned.variant, tuned.variant_label, tuned.case_id) == (
        "act_elu",
        "act_elu.tuned",
        "scratch-mlp+act_elu.tuned-digits",
    )


@pytest.mark.parametrize(
    "recorded, sample, variant, tuned",
    [("act_elu.search003", 3, "act_elu", False), ("search012", 12, "", False), ("act_elu.tuned", None, "act_elu", True),
     ("tuned", None, "", True), ("act_elu", None, "act_elu", False)],
)  # fmt: skip
def test_a_config_recorded_when_the_variant_spelled_the_sample_reads_back_as_its_case_and_sample(
    recorded, sample, variant, tuned
):
    data = json.loads(replace(BASE, sample=sample).to_json())
    del data["tuned"]
    data["variant"] = recorded
    config = TrialConfig.from_dict(data)
    assert (config.variant, config.sample, config.tuned, config.variant_label) == (variant, sample, tuned, recorded)


def _search_frame() -> pd.DataFrame:
    """Rows as the search stage writes them: three torch samples, one stopped early, one failed."""
    rows = []
    for index, (lr, accs, status) in enumerate(
        [(0.01, [0.5, 0.7, 0.8], "ok"), (0.1, [0.6, 0.9, 0.95], "ok"), (0.001, [0.2], "ok"), (1.0, [], "failed")]
    ):
        trial = search_trial(BASE, {"optimizer.lr": lr}, index)
        for epoch, acc in enumerate(accs, start=1):
            rows.append(
                {
                    "trial_id": trial.trial_id,
                    "stage": "search",
                    "attempt": 0,
                    "epoch": epoch,
                    "val_acc": acc,
                    "status": status,
                    "config_json": trial.to_json(),
                    "backend": "torch",
                }
            )
        if not accs:
            rows.append(
                {
                    "trial_id": trial.trial_id,
                    "stage": "search",
                    "attempt": 0,
                    "epoch": None,
                    "val_acc": None,
                    "status": "failed",
                    "config_json": trial.to_json(),
                    "backend": "torch",
                }
            )
    return pd.DataFrame(rows)


def test_each_backend_picks_its_best_ok_trial_and_reruns_it_with_k_seeds():
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), final_seeds=3)
    frame = _search_frame()
    table = search_table(frame, plan)
    assert table.set_index("sample")["stopped_early"].to_dict() == {0: False, 1: False, 2: True, 3: False}
    assert best_trials(table, plan) == {("scratch-mlp-digits", "torch"): "t-scratch-mlp+search001-digits-torch-s0"}
    finals = final_trials(frame, plan)
    assert [(t.seed, t.variant_label, t.optimizer.lr) for t in finals] == [
        (1, "tuned", 0.1),
        (2, "tuned", 0.1),
        (3, "tuned", 0.1),
    ]  # not the search's seed 0: the pick's result there is what it was picked for
    # the table's title says whether the picks were re-run: a tune stopped during its search re-ran none
    from harness.reporting import search_results_table

    stopped = search_results_table(frame, plan)
    assert stopped is not None and stopped.title.endswith(
        "not re-run: no final stage in this run (stopped, or no sample ok)"
    )
    finished = search_results_table(pd.concat([frame, frame.iloc[:1].assign(stage="final")]), plan)
    assert finished is not None and finished.title.endswith("each backend's best, re-run over seeds below")
    loss_plan = TunePlan(bases=(BASE,), space=plan.space, metric="val_loss")
    losses = frame.assign(val_loss=1 - frame["val_acc"].astype(float))
    assert best_trials(search_table(losses, loss_plan), loss_plan)[("scratch-mlp-digits", "torch")].endswith(
        "search001-digits-torch-s0"
    )


def test_a_tie_on_the_metric_is_broken_by_the_other_validation_metric_before_the_sample_number():
    """Digits' 180 validation images make equal accuracies common: samples 0 and 5 of a review's search both ended
    at 0.9444 (losses 0.208 and 0.283) and the earlier won by its number alone; a lower loss wins now, and under
    --metric val_loss a higher accuracy breaks a tie of losses."""
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), final_seeds=3)
    frame = _search_frame()
    finished = ~frame["trial_id"].str.contains("search002")  # the trial ASHA stopped is not compared
    frame.loc[finished, "val_acc"] = 0.9444
    frame["val_loss"] = np.where(frame["trial_id"].str.contains("search001"), 0.208, 0.283)
    assert best_trials(search_table(frame, plan), plan)[("scratch-mlp-digits", "torch")].endswith(
        "search001-digits-torch-s0"
    )
    loss_plan = TunePlan(bases=(BASE,), space=plan.space, metric="val_loss")
    tied = frame.assign(val_loss=0.25, val_acc=np.where(frame["trial_id"].str.contains("search001"), 0.95, 0.9))
    picked = best_trials(search_table(tied, loss_plan), loss_plan)[("scratch-mlp-digits", "torch")]
    assert picked.endswith("search001-digits-torch-s0")
    # a tune recorded before the rule reads it back off: its resume re-runs, and its reports mark, the pick it made
    recorded = TunePlan.from_dict({k: v for k, v in plan.to_dict().items() if k != "tie_break_by_other_metric"})
    assert best_trials(search_table(frame, recorded), recorded)[("scratch-mlp-digits", "torch")].endswith(
        "search000-digits-torch-s0"
    )
    assert TunePlan.from_dict(plan.to_dict()).tie_break_by_other_metric
    # a tune recorded before the rule reads it back off: its resume re-runs, and its reports mark, the pick it made
    recorded = TunePlan.from_dict({k: v for k, v in plan.to_dict().items() if k != "tie_break_by_other_metric"})
    assert best_trials(search_table(frame, recorded), recorded)[("scratch-mlp-digits", "torch")].endswith(
        "search000-digits-torch-s0"
    )
    assert TunePlan.from_dict(plan.to_dict()).tie_break_by_other_metric
    even = frame.assign(val_loss=0.25)  # a tie on both: the earlier sample
    assert best_trials(search_table(even, plan), plan)[("scratch-mlp-digits", "torch")].endswith(
        "search000-digits-torch-s0"
    )


def test_a_trial_asha_stopped_early_is_not_picked_over_the_trials_that_ran_all_their_epochs():
    """Its metric is an early epoch's: sample 2's one epoch (0.99) beat the finished trials' last (it was picked)."""
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), final_seeds=3)
    frame = _search_frame()
    early = frame["trial_id"].str.contains("search002")
    frame.loc[early, "val_acc"] = 0.99
    picked = best_trials(search_table(frame, plan), plan)
    assert picked == {("scratch-mlp-digits", "torch"): "t-scratch-mlp+search001-digits-torch-s0"}
    # every ok trial stopped early: those that went furthest are compared (sample 0's two epochs, not 2's one)
    cut = frame[early | (frame["trial_id"].str.contains("search000") & (frame["epoch"] <= 2))]
    picked = best_trials(search_table(cut, plan), plan)
    assert picked == {("scratch-mlp-digits", "torch"): "t-scratch-mlp+search000-digits-torch-s0"}


def test_a_recorded_search_reads_back_with_an_initializer_this_version_lacks():
    """Recorded rows read back as they ran: a tune recorded with an init since refused or renamed (a failed sample
    of init=bogus) still gives its search table, for report and resume, instead of an initializer error."""
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]))
    frame = _search_frame()
    frame["config_json"] = [json.dumps(json.loads(c) | {"init": "renamed_init"}) for c in frame["config_json"]]
    assert len(search_table(frame, plan)) == 4


def test_plans_check_their_inputs_and_round_trip():
    with pytest.raises(InputError, match="search space"):
        TunePlan(bases=(BASE,), space=SearchSpace())
    with pytest.raises(InputError, match="--metric"):
        TunePlan(bases=(BASE,), space=parse_space(["lr=uniform:0.01,0.1"]), metric="test_acc")
    plan = TunePlan(
        bases=(BASE,),
        space=parse_space(["lr=uniform:0.01,0.1", "batch_size=choice:8,16"]),
        algorithm="grid",
        num_samples=2,
        asha=AshaSettings(1, 2),
    )
    assert plan.trials_per_experiment == 4
    assert TunePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_search_may_not_change_the_shared_backbone():
    target = TrialConfig(
        strategy="fine_tune",
        model="cnn_small",
        dataset="digits",
        backend="torch",
        seed=0,
        epochs=2,
        task=TaskSpec(classes=(0, 1, 2, 3, 4)),
        transfer=TransferOptions(source_task=TaskSpec(classes=(5, 6, 7, 8, 9))),
        optimizer=OptimizerConfig("momentum", lr=0.01),
    )
    base = search_base(target)
    check_plan(
        TunePlan(bases=(base,), space=parse_space(["lr=loguniform:1e-3,1e-1", "backbone_lr_multiplier=uniform:0.01,1"]))
    )
    with pytest.raises(InputError, match="batch_size=16 changes the backbone"):
        check_plan(TunePlan(bases=(base,), space=parse_space(["batch_size=choice:16,64"])))


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_a_resumed_search_replays_a_sample_recorded_under_an_older_config_layout(backend):
    """A finished sample is replayed when its recorded configuration reads back as the trial's, whatever the JSON
    spelling: rows and run.json written before 2026-12-01 name torch's cuDNN switch ``cudnn_benchmark``. As in a
    resume, the search's base is read from the old run.json too (TensorFlow's then as autotuned, its own default
    of the time), so the samples match; a sample that ran another configuration runs again."""

    def old_layout(trial: TrialConfig) -> dict:
        data = json.loads(trial.to_json())
        data["runtime"]["cudnn_benchmark"] = data["runtime"].pop("cudnn_autotune")
        return data

    # what the worker recorded then: the same switch, off, in every trial's runtime
    sample = search_trial(replace(BASE, backend=backend), {"optimizer.lr": 0.05}, 3)
    rows = [{"trial_id": sample.trial_id, "config_json": json.dumps(old_layout(sample)), "epoch": 1}]
    recorded_base = old_layout(replace(BASE, backend=backend))
    resumed = search_trial(TrialConfig.from_dict(recorded_base), {"optimizer.lr": 0.05}, 3)
    assert resumed.runtime.cudnn_autotune is (backend == "tensorflow")
    assert json.loads(rows[0]["config_json"]) != json.loads(resumed.to_json())  # the raw comparison would re-run
    assert replayable_rows(resumed, {resumed.trial_id: rows}) == rows
    other = search_trial(TrialConfig.from_dict(recorded_base), {"optimizer.lr": 0.1}, 3)
    assert other.trial_id == resumed.trial_id  # named by the sample alone: the configuration tells them apart
    assert replayable_rows(other, {other.trial_id: rows}) == []
    assert replayable_rows(resumed, {}) == []


def test_a_resumed_search_replays_its_finished_samples_under_another_cpus_per_trial():
    """Threads follow the CPUs Ray grants, which a resume's --cpus-per-trial may change: the finished samples were
    trained again (their rows twice in results.csv) while the resume said it had kept them."""
    sample = search_trial(BASE, {"optimizer.lr": 0.05}, 1)
    rows = [{"trial_id": sample.trial_id, "config_json": sample.to_json(), "epoch": 1}]
    granted_two = replace(sample, runtime=replace(sample.runtime, threads=2))
    assert replayable_rows(granted_two, {sample.trial_id: rows}) == rows
    other = replace(granted_two, optimizer=replace(granted_two.optimizer, lr=0.1))
    assert replayable_rows(other, {sample.trial_id: rows}) == []


def _tune_preflight(tmp_path, *argv: str) -> None:
    from harness.cli import plan_from_args
    from harness.cli_options import build_parser
    from harness.preflight import preflight

    plan = plan_from_args(build_parser().parse_args(["tune", "--strategy", "scratch", "--dataset", "digits", *argv]))
    trials = list(plan.planned_trials)
    preflight(trials, None, download=False, cache_dir=tmp_path, memory_bytes=24 * 2**30, search=plan.search)


def test_a_searchs_model_checks_hold_on_the_points_it_samples_not_on_its_base(tmp_path):
    """Every sampled point sets every option of the space: MC-dropout passes over a base without dropout (mlp) with
    a dropout rate searched never meet a point without dropout, so the search is valid; a rate of 0 among the
    choices is not, and the point that fails is named."""
    grid = ("--search", "grid")  # choices alone: a random search's 8 samples would repeat points
    _tune_preflight(tmp_path, "--model", "mlp", *grid, "--mc-dropout", "5", "--space", "dropout=choice:0.2,0.5")
    with pytest.raises(InputError, match=r"Received: model_options.dropout=0.0, which fails: "):
        _tune_preflight(tmp_path, "--model", "mlp", *grid, "--mc-dropout", "5", "--space", "dropout=choice:0.0,0.5")


def test_a_model_option_is_judged_on_the_networks_a_search_samples(tmp_path):
    """The base of a search never trains: a BatchNorm setting over a base without BatchNorm is valid when the
    search adds BatchNorm to every point, and refused when no point has any, as is a searched one that changes none
    (every sample would train the same network)."""
    _tune_preflight(
        tmp_path, "--model", "convnet3", "--search", "grid", "--bn-variance", "biased", "--space",
        "batchnorm=choice:before,after",
    )  # fmt: skip
    for argv in (
        ("--bn-variance", "biased", "--space", "lr=loguniform:0.01,0.1"),
        ("--space", "model_options.bn_decay=uniform:0.8,0.99"),
    ):
        with pytest.raises(InputError, match=r"on convnet3, which has no BatchNorm layer"):
            _tune_preflight(tmp_path, "--model", "convnet3", *argv)
    # a decay to decouple may be searched: the base has none, every point has one
    _tune_preflight(
        tmp_path, "--model", "mlp", "--decoupled-weight-decay", "--space", "weight_decay=loguniform:1e-5,1e-3"
    )
    # no point has one: the flag is at fault, not the searched rate (it was "Received: optimizer.lr=0.01, which
    # fails: ... Or narrow the search's space")
    with pytest.raises(InputError, match=r"^Expected a weight decay to decouple .*\(Case scratch-mlp-digits\.\)$"):
        _tune_preflight(tmp_path, "--model", "mlp", "--decoupled-weight-decay", "--space", "lr=loguniform:0.01,0.1")


def test_an_option_the_strategy_does_not_read_is_refused_as_itself_not_as_a_searched_value(tmp_path):
    """--freeze-groups 2 on a scratch tune fails in every point alike: it read "Expected every value of
    optimizer.lr to be valid. Received: 0.0001, which fails: ...", blaming the space, with two fixes."""
    with pytest.raises(InputError) as refused:
        _tune_preflight(tmp_path, "--model", "mlp", "--freeze-groups", "2", "--space", "lr=loguniform:1e-4,0.3")
    said = str(refused.value)
    assert said.startswith("Expected only options that strategy scratch reads (scratch-mlp-digits). Received: "), said
    assert "optimizer.lr" not in said and "narrow" not in said and said.count("To fix") == 1, said


def test_beyond_the_cap_each_probed_value_is_checked_in_a_complete_point(monkeypatch):
    from harness import search

    space = space_from_mapping({"lr": Choice((0.1, 0.2)), "batch_size": Choice((16, 32, 64))})
    assert len(list(search.sample_corners(space))) == 6  # every combination, each complete
    monkeypatch.setattr(search, "MAX_CHECKED_COMBINATIONS", 4)
    corners = list(search.sample_corners(space))
    batch, lr = space.paths  # in order of path
    assert all(set(c) == {lr, batch} for c in corners) and len(corners) == 5  # each value once, the firsts shared
    assert {c[lr] for c in corners} == {0.1, 0.2} and {c[batch] for c in corners} == {16, 32, 64}


def test_a_search_whose_every_point_unfreezes_passes_though_its_base_would_not(tmp_path):
    """The base of a search never trains: --frozen-epochs 7 with --space epochs=choice:8,9 was refused against the
    base's default 5 epochs, and a searched lr beside it took the blame ("every value of optimizer.lr")."""
    from harness.planner import SearchRequest, Selection, plan_tune
    from harness.preflight import preflight
    from harness.search import Choice, SearchSpace

    selection = Selection(strategy="transfer", model="mlp", dataset="digits", backends=("torch",))
    overrides = {"transfer.frozen_epochs": 7}
    space = SearchSpace((("epochs", Choice((8, 9))), ("optimizer.lr", Choice((0.01, 0.001)))))
    plan = plan_tune(selection, overrides, SearchRequest(space=space, num_samples=2))
    assert plan.search is not None
    preflight(list(plan.search.bases), None, download=False, cache_dir=tmp_path, search=plan.search)
    short = SearchSpace((("epochs", Choice((6, 9))),))
    plan = plan_tune(selection, overrides, SearchRequest(space=short, num_samples=2))
    assert plan.search is not None
    with pytest.raises(InputError, match="Received: epochs=6, which fails: Expected --frozen-epochs at most --epochs"):
        preflight(list(plan.search.bases), None, download=False, cache_dir=tmp_path, search=plan.search)


def test_a_searched_epoch_count_whose_steps_end_before_a_piecewise_boundary_is_refused(tmp_path):
    """A search's points are trained, so each must reach every piecewise boundary: 1 epoch of digits is 20 steps,
    and a rate starting at step 100 would never be used, yet recorded."""
    from harness.planner import SearchRequest, Selection, plan_tune
    from harness.preflight import preflight
    from harness.search import Choice, SearchSpace

    selection = Selection(strategy="scratch", model="mlp", dataset="digits", backends=("torch",))
    overrides = {"schedule.name": "piecewise", "schedule.boundaries": (100,), "schedule.values": (0.1, 0.01)}
    for epochs, refused in (((6, 10), False), ((1, 10), True)):  # 6 epochs: 120 steps
        space = SearchSpace((("epochs", Choice(epochs)),))
        plan = plan_tune(selection, overrides, SearchRequest(space=space, algorithm="grid"))
        assert plan.search is not None
        if not refused:
            preflight(list(plan.search.bases), None, download=False, cache_dir=tmp_path, search=plan.search)
            continue
        with pytest.raises(InputError, match=r"Received: epochs=1, which fails: Expected piecewise boundaries below"):
            preflight(list(plan.search.bases), None, download=False, cache_dir=tmp_path, search=plan.search)


def test_schedule_settings_given_beside_a_searched_schedule_reach_the_samples_of_the_schedules_that_read_them(
    tmp_path,
):
    """--plateau-patience 0 with --space schedule=choice:constant,plateau was refused (a constant base would ignore
    it; --schedule plateau beside it was "given and searched"): plateau against a constant rate could not be searched
    with any but the default plateau settings."""
    from harness.planner import SearchRequest, Selection, plan_tune
    from harness.preflight import preflight
    from harness.schedules import ScheduleConfig
    from harness.search import Choice, SearchSpace, search_trial

    selection = Selection(strategy="scratch", model="mlp", dataset="digits", backends=("torch",))
    space = SearchSpace((("schedule", Choice(("constant", "plateau", "power"))),))
    request = SearchRequest(space=space, algorithm="grid")
    given = {"schedule.patience": 0, "schedule.threshold": 0.25}
    plateau = ScheduleConfig("plateau", patience=0, threshold=0.25)
    for overrides in (given, {**given, "schedule.name": "plateau"}):  # --schedule naming the carrier is accepted
        plan = plan_tune(selection, overrides, request)
        assert plan.search is not None
        preflight(list(plan.search.bases), None, download=False, cache_dir=tmp_path, search=plan.search)
        [base] = plan.search.bases
        sampled = {name: search_trial(base, {"schedule": name}, 0).schedule for name in space.params[0][1].values}
        assert sampled == {"constant": ScheduleConfig(), "plateau": plateau, "power": ScheduleConfig("power")}
    # Settings that no one searched schedule reads all, or several read, or a --schedule that does not read them:
    # refused before any work (which samples they would reach would be a guess).
    two = SearchRequest(space=SearchSpace((("schedule", Choice(("power", "exponential"))),)), algorithm="grid")
    for overrides, received, search in (
        (
            {"schedule.patience": 0, "schedule.power": 2.0},
            r"\(patience=0, power=2.0\), read by plateau, power",
            request,
        ),
        ({"schedule.patience": 0, "schedule.name": "power"}, r"read by plateau, with --schedule power", request),
        ({"schedule.steps": 30.0}, r"--schedule-steps \(steps=30.0\), read by power, exponential\.", two),
    ):
        with pytest.raises(
            InputError, match=rf"exactly one of the searched schedules \(.*\) reads\. Received: .*{received}"
        ):
            plan_tune(selection, overrides, search)
    # A case with a schedule of its own would lose it to the base that carries the settings.
    with pytest.raises(InputError, match=r"Received: scratch-mlp\+sched_\w+-digits.* with a schedule of its own"):
        plan_tune(Selection(suite="techniques_smoke", backends=("torch",)), given, request)
    # Not searched, the schedule keeps refusing what it would ignore.
    with pytest.raises(InputError, match="the constant schedule reads .none.. Received: --plateau-patience 0,"):
        plan_tune(selection, given, SearchRequest())


@pytest.mark.parametrize(
    ("argv", "received"),
    [
        # a backbone strategy: the given decay trains the pinned backbone alike, but the head's momentum samples with
        # it and its adam samples without (it was skipped for any backbone strategy)
        (
            "--strategy feature_extraction --model cnn_small --dataset digits --classes 0,1,2,3,4 --source-classes "
            "5,6,7,8,9 --weight-decay 0.001 --space optimizer=choice:momentum,adam",
            "Received: optimizer.weight_decay=0.001, which some samples would train with and others not",
        ),
        # a case's own setting splits the samples alike
        (
            "--suite imagenet_transfer_smoke --space optimizer=choice:momentum,adam",
            "Received: feature_extraction-resnet18-digits sets weight_decay=0.0001 on momentum",
        ),
        # the deep_features head reads no rate: every sample was the same trial
        (
            "--strategy deep_features --model cnn_small --dataset digits --space lr=choice:0.01,0.1",
            "Expected only searched options that strategy deep_features reads",
        ),
        # the given rate reached no backbone (the case has a source optimizer of its own) and every sample replaced it
        (
            "--suite imagenet_transfer_smoke --lr 0.05 --space lr=choice:0.001,0.1",
            "Received: optimizer.lr in the search space and given as 0.05",
        ),
        # every sample sets the optimizer: opt_adam's samples trained momentum under the Adam label
        (
            "--suite techniques_smoke --space optimizer=choice:momentum,adam",
            "Received: optimizer.name='momentum' in the search space, but its cases set optimizer.name differently",
        ),
    ],
)
def test_a_tune_refuses_what_its_samples_would_record_and_not_train(argv, received):
    from harness.cli_options import build_parser, overrides_from_args, search_request_from_args, selection_from_args
    from harness.planner import plan_tune

    args = build_parser().parse_args(["tune", *argv.split(), "--search", "grid"])
    with pytest.raises(InputError, match=re.escape(received)):
        plan_tune(selection_from_args(args), overrides_from_args(args), search_request_from_args(args))


def test_a_deep_features_tune_trains_its_backbone_with_the_given_optimizer():
    """A search pins deep_features' optimizer as its backbone's: its own optimizer then trains nothing, and a given
    --lr made every base "set an option deep_features does not read" (exit 2, blaming a searched value)."""
    from harness.cli_options import build_parser, overrides_from_args, search_request_from_args, selection_from_args
    from harness.config import OptimizerConfig
    from harness.planner import plan_tune

    argv = "--strategy deep_features --model cnn_small --dataset digits --lr 0.05"
    argv += " --search grid --space sklearn_head=choice:linear_svc,rbf_svc"
    args = build_parser().parse_args(["tune", *argv.split()])
    plan = plan_tune(selection_from_args(args), overrides_from_args(args), search_request_from_args(args))
    assert plan.search is not None and plan.search.bases
    for base in plan.search.bases:
        source = base.transfer.source_optimizer
        assert source is not None and source.lr == 0.05 and base.optimizer.resolved() == OptimizerConfig().resolved()
    # its head is scored by validation accuracy alone: every sample's val_loss would be NaN, none picked
    args = build_parser().parse_args(["tune", *argv.split(), "--metric", "val_loss"])
    with pytest.raises(InputError, match="Expected --metric val_acc for deep_features"):
        plan_tune(selection_from_args(args), overrides_from_args(args), search_request_from_args(args))


def test_a_deep_features_case_with_its_own_source_optimizer_reads_no_optimizer():
    """--lr 0.05 for imagenet_transfer_smoke reached its deep_features rows, whose backbone trained with the case's
    own Adam 1e-3 and whose head reads no rate: recorded, never used. The cases that train with it take it."""
    from harness.planner import Selection, plan_run

    trials = plan_run(Selection(suite="imagenet_transfer_smoke"), {"optimizer.lr": 0.05}).trials
    assert {(t.strategy, t.optimizer.lr) for t in trials} == {
        ("deep_features", 0.01),
        ("feature_extraction", 0.05),
        ("fine_tune", 0.05),
    }
    # transfer_smoke's deep features have had one too since 2026-12-07 (the new-head cases' backbone recipe)
    smoke = plan_run(Selection(suite="transfer_smoke"), {"optimizer.lr": 0.05}).trials
    assert {(t.optimizer.lr, t.transfer.source_optimizer.lr) for t in smoke if t.strategy == "deep_features"} == {
        (0.01, 1.0)
    }
    # without a source optimizer of its own, deep_features trains its backbone with it
    adhoc = plan_run(Selection(strategy="deep_features", model="cnn_small", dataset="digits"), {"optimizer.lr": 0.05})
    assert {(t.optimizer.lr, t.transfer.source_optimizer) for t in adhoc.trials} == {(0.05, None)}


def test_a_tune_with_a_diverged_sample_ends_ok_when_every_backend_had_an_ok_sample_re_run(tmp_path, capsys):
    """An lr search's diverged sample is one of its findings: the tune exited 1 for it, saying nothing. A failed
    sample (an error), or a backend with no ok sample to re-run, still fails it, and the last line says which."""
    from harness.cli import _say_how_to_rerun_failures
    from harness.runner import RunOutcome

    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), final_seeds=1)
    failed = _search_frame()  # one of its samples failed
    search = failed.assign(status=failed["status"].replace("failed", "diverged"))
    final = search[search["trial_id"].str.contains("search001")].assign(stage="final", trial_id="tuned-s0")

    def outcome(frame):
        return RunOutcome("t", tmp_path, frame, None, "", 0.0, search=plan)

    assert outcome(pd.concat([search, final])).all_ok
    _say_how_to_rerun_failures(outcome(pd.concat([search, final])), "tune")
    assert capsys.readouterr().err == (
        "search: 1 diverged of 4 sample(s) (the Search table above); the best ok sample of each backend was re-run\n"
    )
    assert not outcome(search).all_ok  # no final stage: nothing was re-run
    assert not outcome(pd.concat([search, final.assign(status="failed")])).all_ok
    assert not outcome(pd.concat([failed, final])).all_ok  # a sample that raised is not a finding
    assert not RunOutcome("t", tmp_path, failed, None, "", 0.0).all_ok  # a run's failed trial still fails it
    # a backend none of whose samples ended ok: not re-run, so not compared (the tune passed, saying it was re-run)
    other = search.assign(
        backend="tensorflow",
        status="diverged",
        trial_id=search["trial_id"].str.replace("torch", "tensorflow"),
        config_json=search["config_json"].str.replace('"torch"', '"tensorflow"'),
    )
    both = outcome(pd.concat([search, other, final]))
    assert both.searches_not_rerun() == [("scratch-mlp-digits", "tensorflow")] and not both.all_ok
    _say_how_to_rerun_failures(both, "tune")
    assert capsys.readouterr().err.endswith("; no ok sample to re-run for scratch-mlp-digits [tensorflow]\n")


def test_after_a_search_that_ended_a_resume_reruns_only_the_final_stages_failed_trials():
    """The search's failed sample stands (its searcher and ASHA decided on it), and so does a failed pretrain that
    no final-stage trial needs (nothing would use its backbone: the search is not run again); the final stage's
    failed trial is rerun. A run (no search) reruns every failed trial."""
    from harness.runner import rerun_after_search, resumable_failures, search_ended

    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), final_seeds=3)
    search = _search_frame()
    finals = final_trials(search, plan)
    rows = [
        {"trial_id": t.trial_id, "stage": "final", "attempt": 0, "epoch": 1, "val_acc": 0.9, "backend": "torch"}
        | {"status": "failed" if t.seed == 1 else "ok", "config_json": t.to_json()}
        for t in finals
    ]
    pretrain = {"trial_id": "pretrain-x", "stage": "pretrain", "attempt": 0, "epoch": None, "status": "failed"}
    pretrain["config_json"] = BASE.to_json()  # as every row records its trial's config
    frame = pd.concat([search, pd.DataFrame([*rows, pretrain])], ignore_index=True)
    failed_final = next(t.trial_id for t in finals if t.seed == 1)
    assert search_ended(frame) and not search_ended(search)
    assert rerun_after_search(frame, plan) == resumable_failures(frame, plan) == [failed_final]
    failed_sample = search_trial(BASE, {"optimizer.lr": 1.0}, 3).trial_id
    assert resumable_failures(frame, None) == sorted([failed_final, failed_sample, "pretrain-x"])
    assert resumable_failures(frame[frame["trial_id"] != failed_final], plan) == []  # nothing to resume


@pytest.mark.parametrize("metric, diverged_value", [("val_loss", float("nan")), ("val_acc", 0.1)])
def test_under_asha_a_sample_that_diverged_ranks_below_one_that_merely_got_worse(metric, diverged_value):
    """A diverged epoch told ASHA its trial's latest finite loss, an earlier epoch's: sample a, diverged at epoch 2,
    held 0.50 at that rung, and stopped sample b (0.45, then 0.52), which a sample that got worse (0.60) did not."""
    from types import SimpleNamespace

    from harness.scheduler import EPOCH_INDEX, ROW_KEY, _asha_letting_diverged_trials_end, advance, fresh_progress

    sign = 1 if metric == "val_loss" else -1  # the same ranks in accuracy: 1 - loss

    def results(scheduler, trial, rows):
        progress, decisions = fresh_progress(), []
        for epoch, (status, value) in enumerate(rows, start=1):
            row = {
                "epoch": epoch,
                "status": status,
                metric: value if status == "diverged" else 0.5 + sign * (value - 0.5),
            }
            advance(progress, row)
            decisions.append(scheduler.on_trial_result(None, trial, {ROW_KEY: json.dumps(row), **progress}))
        return decisions

    for second in (("diverged", diverged_value), ("ok", 0.60)):
        asha = _asha_letting_diverged_trials_end()(
            time_attr=EPOCH_INDEX,
            max_t=3,
            grace_period=1,
            reduction_factor=2,
            metric=metric,
            mode="min" if metric == "val_loss" else "max",
        )
        a, b = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
        asha.on_trial_add(None, a)
        asha.on_trial_add(None, b)
        assert results(asha, a, [("ok", 0.50), second]) == ["CONTINUE", "CONTINUE"]  # a diverged trial goes on to end
        assert results(asha, b, [("ok", 0.45), ("ok", 0.52)]) == ["CONTINUE", "CONTINUE"], second


def test_optuna_models_its_results_after_half_its_samples_and_refuses_more_samples_than_choices_combine():
    """Optuna's TPE drew its first 10 points at random whatever the budget: the default 8 samples were a random
    search reported as TPE. And over choices alone, 4 samples of 2 combinations trained adam three times."""
    pytest.importorskip("optuna")
    from harness.reporting import search_markdown
    from harness.search import tpe_startup_samples

    assert [tpe_startup_samples(n) for n in (1, 3, 4, 8, 12, 20, 40)] == [1, 1, 2, 4, 6, 10, 10]
    space = parse_space(["lr=loguniform:1e-3,1e-1"])
    searcher = search_algorithm(SearchExperiment(base=BASE, space=space, algorithm="optuna", num_samples=8))
    assert searcher.search.startup == 4
    summary = search_markdown(_search_frame(), TunePlan(bases=(BASE,), space=space, algorithm="optuna"))
    assert summary.splitlines()[2].startswith("optuna (TPE after 4 random samples) search, sampling seed 0")
    choices = parse_space(["optimizer=choice:momentum,adam", "batch_size=choice:32,64"])
    TunePlan(bases=(BASE,), space=choices, algorithm="optuna", num_samples=4).check_random_choices_distinct()
    with pytest.raises(
        InputError,
        match=re.escape(
            "Received: --num-samples 5 over 4 point(s). To fix, give --num-samples 4 or fewer, --search grid"
        ),
    ):
        TunePlan(bases=(BASE,), space=choices, algorithm="optuna", num_samples=5).check_random_choices_distinct()


def test_a_tune_recorded_before_the_final_seeds_moved_resumes_with_the_seeds_and_startup_it_ran_with():
    """run.json recorded final_seeds: K alone: read back after the final stage moved to seeds 1..K, a resume of a
    tune that ran 0..K-1 kept its seed-0 rows and added seed K (or dropped a failed seed 0 for seed K); an optuna
    tune switched from Optuna's 10 random samples to half its budget partway, drawing other points."""
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,1"]), algorithm="optuna", final_seeds=3)
    assert (plan.first_final_seed, plan.tpe_startup) == (1, 4)
    again = TunePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert (again.first_final_seed, again.tpe_startup) == (1, 4) and again == plan
    recorded = {k: v for k, v in plan.to_dict().items() if k not in ("first_final_seed", "tpe_startup")}
    old = TunePlan.from_dict(recorded)
    assert (old.first_final_seed, old.tpe_startup) == (0, 10)
    assert [t.seed for t in final_trials(_search_frame(), old)] == [0, 1, 2]
    assert [t.seed for t in final_trials(_search_frame(), again)] == [1, 2, 3]
    assert old.experiments()[0].tpe_startup == 10
    assert search_algorithm(old.experiments()[0]).search.startup == 10


def test_a_choice_of_nan_or_inf_is_refused_as_a_range_bound_is_and_a_trial_never_takes_one():
    """weight_decay=choice:nan,0.001 and l1=choice:inf were searched: the NaN sample trained, diverged and showed
    "n/a", while `xfbench run --weight-decay nan` exits 2 (NaN passed every `< 0` check of the configs)."""
    for text, value in (
        ("weight_decay=choice:nan,0.001", "nan"),
        ("l1=choice:inf", "inf"),
    ):
        with pytest.raises(InputError, match=re.escape("Expected finite values in the choice of")) as refused:
            parse_param(text)
        assert f"Received: {value} in" in str(refused.value)
    from harness.config import check_finite_settings
    from harness.preflight import preflight

    settings = (("optimizer.weight_decay", "nan"), ("regularization.l2", "nan"), ("model_options.bn_epsilon", "nan"))
    for path, bad in (*settings, ("optimizer.clip_norm", "inf")):
        section, name = path.split(".")
        trial = replace(BASE, **{section: replace(getattr(BASE, section), **{name: float(bad)})})
        with pytest.raises(InputError, match=re.escape(f"Received: {path}={bad}. To fix, give a finite value.")):
            check_finite_settings(trial)
        with pytest.raises(InputError, match=re.escape(f"Received: {path}={bad}. To fix, give a finite value.")):
            preflight([trial], None, download=False)
        # a run recorded with one ran so: its rows read back, and its resume runs it as it stands
        assert TrialConfig.from_dict(json.loads(trial.to_json())).trial_id == trial.trial_id


@pytest.mark.parametrize(
    ("space", "algorithm", "samples", "points"),
    [
        (["epochs=int:2,3"], "random", 8, 2),
        (["batch_size=int:32,33"], "random", 8, 2),
        (["epochs=int:2,3", "optimizer=choice:momentum,adam"], "grid", 4, 4),
        (["epochs=int:2,3", "optimizer=choice:momentum,adam"], "optuna", 5, 4),
    ],
)
def test_a_search_over_int_ranges_and_choices_that_must_repeat_a_point_is_refused(space, algorithm, samples, points):
    """An int range is a finite set: epochs=int:2,3 with 8 samples trained 8 trials of 2 points, each repeat to the
    same numbers from the same seed, while choice:2,3 was refused."""
    plan = TunePlan(bases=(BASE,), space=parse_space(space), algorithm=algorithm, num_samples=samples)
    with pytest.raises(
        InputError,
        match=re.escape(f"--num-samples {samples}{')' if algorithm != 'optuna' else ''} over {points} point(s)"),
    ) as refused:
        plan.check_random_choices_distinct()
    if algorithm != "optuna":  # a grid of int ranges alone is refused: the fix names what the grid spans
        assert "choice:A,B,..." in str(refused.value) and "Use --search grid to train" not in str(refused.value)
    wide = TunePlan(bases=(BASE,), space=parse_space(["epochs=int:2,40"]), algorithm="random", num_samples=3)
    wide.check_random_choices_distinct()  # three distinct draws of 39 values: no repeat, nothing refused
    floats = parse_space(["epochs=int:2,3", "lr=uniform:0.01,0.1"])
    TunePlan(bases=(BASE,), space=floats, algorithm="random", num_samples=8).check_random_choices_distinct()


def test_a_sample_that_diverged_shows_no_metric_in_the_search_table():
    """With --metric val_loss, a diverged sample showed its loss from before it diverged beside the pick's, and the
    search plot drew it as a finished result."""
    frame = _search_frame()
    trial = search_trial(BASE, {"optimizer.lr": 5.0}, 4)
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                [
                    {
                        "trial_id": trial.trial_id,
                        "stage": "search",
                        "attempt": 0,
                        "epoch": 1,
                        "val_acc": 0.9,
                        "status": "ok",
                        "config_json": trial.to_json(),
                        "backend": "torch",
                    },
                    {
                        "trial_id": trial.trial_id,
                        "stage": "search",
                        "attempt": 0,
                        "epoch": 2,
                        "val_acc": None,
                        "status": "diverged",
                        "config_json": trial.to_json(),
                        "backend": "torch",
                    },
                ]  # fmt: skip
            ),
        ],
        ignore_index=True,
    )
    plan = TunePlan(bases=(BASE,), space=parse_space(["lr=loguniform:1e-3,10"]), algorithm="random")
    table = search_table(frame, plan).set_index("sample")
    assert table.loc[4, "status"] == "diverged" and pd.isna(table.loc[4, "val_acc"])
    assert table.loc[1, "val_acc"] == 0.95


def test_a_searched_epoch_count_stays_beside_the_epochs_a_sample_ran():
    """The table's count of epochs run was named ``epochs`` too and overwrote a searched ``epochs``: a sample that
    drew 4 and diverged at epoch 2 showed 2 twice, under two ``epochs`` headers, and its draw nowhere."""
    from harness.reporting import search_markdown

    trial = search_trial(BASE, {"epochs": 4, "optimizer.lr": 5.0}, 0)
    rows = [
        {"epoch": 1, "val_acc": 0.3, "status": "ok"},
        {"epoch": 2, "val_acc": None, "status": "diverged"},
    ]
    common = {"trial_id": trial.trial_id, "stage": "search", "attempt": 0, "config_json": trial.to_json()}
    frame = pd.DataFrame([{**common, **row, "backend": "torch"} for row in rows])
    plan = TunePlan(bases=(BASE,), space=parse_space(["epochs=int:2,9", "lr=loguniform:1e-3,10"]), algorithm="random")
    row = search_table(frame, plan).iloc[0]
    assert (row["epochs"], row["epochs_run"], row["status"]) == (4, 2, "diverged")
    text = search_markdown(frame, plan)
    assert "| case | backend | sample | epochs | optimizer.lr | epochs run | val_acc | status | pick |" in text
    assert "| scratch-mlp-digits | torch | 0 | 4 | 5 | 2 | n/a | diverged |  |" in text


def test_asha_leaves_out_a_deep_features_case_it_cannot_stop_and_refuses_a_search_of_them_alone():
    """--asha on a deep_features case said "give more --epochs", which deep_features refuses in turn: a suite with
    such a case could never be tuned with ASHA."""
    features = TrialConfig(
        strategy="deep_features", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=1,
        transfer=TransferOptions(source_epochs=1),
    )  # fmt: skip
    space = parse_space(["batch_size=choice:32,64"])
    mixed = TunePlan(bases=(BASE, features), space=space, algorithm="grid", num_samples=1, asha=AshaSettings(1))
    assert [e.asha for e in mixed.experiments()] == [AshaSettings(1), None]
    with pytest.raises(InputError, match=re.escape("only deep_features case(s), which fit their head once")):
        TunePlan(bases=(features,), space=space, algorithm="grid", num_samples=1, asha=AshaSettings(1)).check_request()


def test_asha_lets_a_trial_whose_row_failed_end_so_that_tune_sees_its_error():
    """A failure row at the trial's last epoch was answered with STOP (ASHA stops every trial at max_t): the error
    the worker raises next never reached Tune, which would neither retry the trial nor retire its process."""
    from types import SimpleNamespace

    from harness.scheduler import EPOCH_INDEX, ROW_KEY, _asha_letting_diverged_trials_end, advance, fresh_progress

    asha = _asha_letting_diverged_trials_end()(
        time_attr=EPOCH_INDEX, max_t=1, grace_period=1, reduction_factor=2, metric="val_acc", mode="max"
    )
    trial = SimpleNamespace(trial_id="a")
    asha.on_trial_add(None, trial)
    progress = fresh_progress()
    decisions = []
    for row in ({"epoch": 1, "status": "ok", "val_acc": 0.5}, {"epoch": None, "status": "failed", "val_acc": None}):
        advance(progress, row)
        decisions.append(asha.on_trial_result(None, trial, {ROW_KEY: json.dumps(row), **progress}))
    assert decisions == ["STOP", "CONTINUE"]


def _optuna_searcher(experiment: SearchExperiment, replay: dict | None = None) -> Any:
    searcher = search_algorithm(experiment, replay)
    point = {p: tune_domain(d, grid=False) for p, d in experiment.space.params}
    searcher.set_search_properties(experiment.metric, experiment.mode, {"point": point})
    return searcher


def _score(point: dict) -> float:
    """A made-up val_acc that TPE can model: best near lr 1e-2, adam a little better."""
    return 0.9 - abs(math.log10(point["optimizer.lr"]) + 2) / 5 + (0.05 if point["optimizer.name"] == "adam" else 0)


def _replay_of(points: dict[int, dict], base: TrialConfig = BASE) -> dict[str, list[dict]]:
    ran = [search_trial(base, point, number) for number, point in points.items()]
    return {t.trial_id: [{"config_json": json.dumps(t.to_dict())}] for t in ran}


def test_a_resumed_optuna_search_run_one_sample_at_a_time_draws_the_uninterrupted_searchs_points():
    """A resumed Optuna search told its finished samples and restarted its sampler's generator: the first sample it
    asked for got sample 0's point again, the next sample 1's (9 distinct points of 12 after a resume at 3, both
    backends no longer searching alike). Sample n's sampler is seeded from (seed, n): one sample at a time, as
    --asha runs them, the resumed search draws the live one's points, in the random start-up and in TPE after it."""
    pytest.importorskip("optuna")
    space = parse_space(["lr=loguniform:1e-4,1e-1", "optimizer=choice:sgd,adam,momentum"])
    experiment = SearchExperiment(base=BASE, space=space, algorithm="optuna", sampling_seed=3, num_samples=8)
    assert experiment.num_samples // 2 == 4  # the resume at 3 crosses from the start-up (4 samples) into TPE

    def one_at_a_time(searcher: Any) -> list[dict]:
        points = []
        for number in range(8):
            suggestion = searcher.suggest(f"t{number}")
            assert suggestion["job"]["sample"] == number
            points.append(suggestion["point"])
            searcher.on_trial_complete(f"t{number}", {"val_acc": _score(suggestion["point"])})
        return points

    live = one_at_a_time(_optuna_searcher(experiment))
    assert len({tuple(p.items()) for p in live}) == 8
    # the start-up's points need no result; TPE's after it come from the results told (told none, it draws others)
    untold = _optuna_searcher(experiment)
    blind = [untold.suggest(f"t{n}")["point"] for n in range(8)]
    assert blind[:4] == live[:4] and all(blind[n] != live[n] for n in range(4, 8))
    resumed = one_at_a_time(_optuna_searcher(experiment, _replay_of({n: live[n] for n in range(3)})))
    assert resumed == live
    other_seeds = [one_at_a_time(_optuna_searcher(replace(experiment, sampling_seed=s))) for s in (4, 2**32 + 3)]
    assert all(points != live for points in other_seeds)  # a seed past Optuna's 2**32 - 1 too


def test_a_resumed_optuna_search_suggests_its_finished_samples_at_their_numbers_and_tells_optuna_their_results():
    """With trials running concurrently, which point Optuna suggests under a sample number depends on the order
    trials ended in: a resume asked Optuna again, so a finished sample whose number now got another point was
    trained again under its id, its own result lost from the search and its old rows left in results.csv. Its
    recorded point is suggested again at its number (its rows replay), and Optuna learns its result when it ends."""
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    space = parse_space(["lr=loguniform:1e-4,1e-1", "optimizer=choice:sgd,adam,momentum"])
    experiment = SearchExperiment(base=BASE, space=space, algorithm="optuna", sampling_seed=3, num_samples=6)
    unresumed = _optuna_searcher(experiment)
    fresh = [unresumed.suggest(f"t{i}")["point"] for i in range(6)]  # no result told yet
    finished = {
        0: {"optimizer.lr": 0.05, "optimizer.name": "adam"},
        1: {"optimizer.lr": 0.0003, "optimizer.name": "sgd"},
        3: {"optimizer.lr": 0.002, "optimizer.name": "momentum"},
    }
    replay = _replay_of(finished)
    replay.update(_replay_of({2: finished[1]}, replace(BASE, backend="tensorflow")))  # the other backend's search
    searcher = _optuna_searcher(experiment, replay)
    suggestions = [searcher.suggest(f"t{i}") for i in range(6)]
    assert [s["job"]["sample"] for s in suggestions] == list(range(6))
    assert {n: suggestions[n]["point"] for n in finished} == finished
    # Optuna's own, before any result is told: the random start-up's points for those numbers, none a repeat
    assert [suggestions[n]["point"] for n in (2, 4, 5)] == [fresh[n] for n in (2, 4, 5)]
    assert len({tuple(p.items()) for p in fresh}) == 6
    for number in (0, 1, 3, 2):  # replayed samples and a new one end; a replayed one reports its rows first
        searcher.on_trial_result(f"t{number}", {"val_acc": 0.1, "training_iteration": 1})
        searcher.on_trial_complete(f"t{number}", {"val_acc": 0.5 + number / 10})
    searcher.on_trial_complete("t4", None, error=True)
    searcher.on_trial_complete("t5", {"val_acc": float("nan")})  # TPE cannot model it: failed, as Optuna tells it
    trials = searcher.search.study.trials
    told = {round(t.value, 2): t.params for t in trials if t.state == TrialState.COMPLETE}
    assert {v: told[v] for v in (0.5, 0.6, 0.8)} == {0.5 + n / 10: point for n, point in finished.items()}
    assert set(told) == {0.5, 0.6, 0.7, 0.8}
    assert [t.state for t in trials].count(TrialState.FAIL) == 2 and len(trials) == 6


@pytest.mark.parametrize(
    ("option", "optimizer", "drawn", "recorded"),
    [
        ("weight_decay=choice:0.01,none", "momentum", None, 0.0),
        ("momentum=choice:none,0.5", "momentum", None, 0.9),
        ("momentum=choice:none,0.5", "nesterov", 0.5, 0.5),
        ("eps=choice:none,1e-7", "adam", None, 1e-8),
        ("rho=choice:none,0.5", "rmsprop", None, 0.99),
        ("optimizer.decoupled=choice:none,true", "adam", None, False),
    ],
)
def test_a_resumed_optuna_search_tells_its_sampler_the_choice_a_sample_drew_not_the_default_it_recorded(
    option, optimizer, drawn, recorded
):
    """A config records each optimizer option resolved: a sample that drew weight_decay=none recorded 0.0, and a
    resume told Optuna 0.0, none of its choices. Optuna raised, Tune failed the replayed sample, and its kept rows
    were replaced by a failure row (review 154: the search's best sample lost)."""
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    from harness.scheduler import recorded_samples
    from harness.search import drawn_point

    base = replace(BASE, optimizer=OptimizerConfig(name=optimizer))
    space = parse_space([option, "lr=loguniform:1e-3,1e-1"])
    [path] = [p for p in space.paths if p != "optimizer.lr"]
    point = {"optimizer.lr": 0.02, path: drawn}
    ran = search_trial(base, point, 0)
    assert getattr(ran.optimizer, path.split(".")[1]) == recorded  # what the row's config_json holds
    assert drawn_point(space, ran) == point
    experiment = SearchExperiment(base=base, space=space, algorithm="optuna", num_samples=4)
    told = recorded_samples(experiment, _replay_of({0: point}, base))
    assert told == {0: point}
    searcher = _optuna_searcher(experiment, _replay_of({0: point}, base))
    assert searcher.suggest("t0")["point"] == point
    searcher.on_trial_complete("t0", {"val_acc": 0.9})  # raised ValueError: '0.0' not in (0.01, None)
    [trial] = searcher.search.study.trials
    assert (trial.state, trial.params) == (TrialState.COMPLETE, point)


def test_a_value_outside_its_domain_is_left_out_of_what_optuna_learns_rather_than_raised():
    """The sampler's tell is the last step of a replayed sample: raised there, Tune failed the sample."""
    pytest.importorskip("optuna")
    from harness.tpe_search import TpeSearch

    search = TpeSearch(parse_space(["weight_decay=choice:0.01,0.1", "lr=loguniform:1e-3,1e-1"]), 0, 2, True)
    search.tell(0, {"optimizer.lr": 0.02, "optimizer.weight_decay": 0.0}, 0.9, failed=False)
    assert search.study.trials[0].params == {"optimizer.lr": 0.02}


def test_a_replayed_sample_that_errors_or_loses_its_worker_gets_no_failure_row_over_its_kept_rows():
    """A resumed search replays its kept samples' rows through Tune: an error there (the sampler raising on the
    recorded point, a worker lost mid-replay, retried under --max-failures) was recorded as the sample's death, a
    driver failure row that replaced its kept part (review 154). A sample that runs anew still gets one."""
    from types import SimpleNamespace

    from harness.scheduler import REPLAYED_KEY, ROW_KEY, _make_callback
    from harness.trial import RunInfo

    class Events:
        def __init__(self) -> None:
            self.rows: list[dict] = []
            self.ended: list[str] = []
            self.replayed: list[dict] = []

        def on_row(self, row: dict) -> None:
            self.rows.append(row)

        def on_trial_end(self, trial_id: str) -> None:
            self.ended.append(trial_id)

        def on_replayed_row(self, row: dict) -> None:
            self.replayed.append(row)

    kept, reported, fresh = (search_trial(BASE, {"optimizer.lr": lr}, n) for n, lr in enumerate((0.1, 0.2, 0.3)))
    # Tune's trial as the callbacks read it: its config, and no error text (the row then says the process died)
    tune_trial = lambda t: SimpleNamespace(config={"job": {"trial": t.to_dict()}}, error_file=None)  # noqa: E731
    events = Events()
    forwarder = _make_callback(events, RunInfo("r", "c"), "search", replayed=frozenset({kept.trial_id}))
    row = {"trial_id": reported.trial_id, "status": "ok", "epoch": 1}
    forwarder.on_trial_result(0, [], tune_trial(reported), {ROW_KEY: json.dumps(row), REPLAYED_KEY: True})
    for trial in (kept, reported):
        forwarder.on_trial_recover(0, [], tune_trial(trial))  # a worker lost, retried
        forwarder.on_trial_error(0, [], tune_trial(trial))  # the searcher raised, or the retries ran out
    assert events.rows == [] and len(events.replayed) == 1
    assert events.ended == [kept.trial_id, reported.trial_id]
    forwarder.on_trial_error(0, [], tune_trial(fresh))
    assert [(r["trial_id"], r["status"]) for r in events.rows] == [(fresh.trial_id, "failed")]


def test_an_ended_tunes_experiments_without_their_samples_or_finals_are_the_ones_a_resume_searches():
    """A search experiment skipped for a backbone that did not train leaves one skipped row; a resume removes it
    and, stopped before the experiment's samples ended, left nothing to tell that the experiment was never searched:
    the tune then finished without it (or picked from a search cut short). Any experiment that no final trial ran
    from and that recorded fewer samples than planned is searched by the next resume; the others stand."""
    from harness.tuning import samples_to_rerun, unsearched_bases

    other = replace(BASE, backend="tensorflow")
    plan = TunePlan(bases=(BASE, other), space=parse_space(["lr=loguniform:1e-3,1"]), num_samples=4, final_seeds=1)
    searched = _search_frame()  # torch's four samples
    final = final_trials(searched, plan)[0]
    final_row = {"trial_id": final.trial_id, "stage": "final", "attempt": 0, "epoch": 1, "val_acc": 0.9,
                 "status": "ok", "config_json": final.to_json(), "backend": "torch"}  # fmt: skip
    ended = pd.concat([searched, pd.DataFrame([final_row])], ignore_index=True)
    assert unsearched_bases(ended, plan) == {other.trial_id}  # tensorflow's: no row at all
    skipped = {**final_row, "trial_id": other.trial_id, "stage": "search", "status": "skipped", "epoch": None,
               "config_json": other.to_json(), "backend": "tensorflow"}  # fmt: skip
    assert unsearched_bases(pd.concat([ended, pd.DataFrame([skipped])]), plan) == {other.trial_id}
    one_sample = search_trial(other, {"optimizer.lr": 0.1}, 0)
    partial = {**skipped, "trial_id": one_sample.trial_id, "status": "ok", "epoch": 1,
               "config_json": one_sample.to_json()}  # fmt: skip
    assert unsearched_bases(pd.concat([ended, pd.DataFrame([partial])]), plan) == {other.trial_id}
    failed = {**partial, "trial_id": "failed-sample", "status": "failed",
              "config_json": search_trial(other, {"optimizer.lr": 0.2}, 1).to_json()}  # fmt: skip
    cut_short = pd.concat([ended, pd.DataFrame([partial, failed])])
    assert samples_to_rerun(cut_short, plan, unsearched_bases(cut_short, plan)) == ["failed-sample"]
    assert samples_to_rerun(ended, plan, frozenset()) == []  # torch's failed sample stands: its search ended
    assert unsearched_bases(searched, plan) == {other.trial_id}  # torch's samples all ended, no final yet: searched
    three = searched[searched["trial_id"] != searched["trial_id"].iloc[-1]]  # a sample short, but torch's final ran
    assert unsearched_bases(pd.concat([three, pd.DataFrame([final_row])]), plan) == {other.trial_id}


def test_a_tune_under_asha_or_optuna_runs_one_trial_at_a_time_unless_told_otherwise():
    """ASHA judges a trial at a rung against those that reached it first: two side by side (the default on two
    cores) raced, and the two backends, whose metrics agree epoch for epoch, stopped different samples. TPE suggests
    each sample from the results told by then: side by side, which samples had ended was timing's (review 154)."""
    from harness.cli import build_parser
    from harness.cli_options import new_run_execution

    tune = ["tune", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--space", "lr=loguniform:1e-3,1"]
    parse = build_parser().parse_args
    for alone in (["--asha"], ["--search", "optuna"], ["--search", "optuna", "--asha"]):
        assert new_run_execution(parse([*tune, *alone])).max_concurrent == 1, alone
        assert new_run_execution(parse([*tune, *alone, "--max-concurrent", "2"])).max_concurrent == 2
        assert new_run_execution(parse([*tune, *alone, "--max-concurrent", "auto"])).max_concurrent is None
    for random_or_grid in ([], ["--search", "random"], ["--search", "grid"]):  # their points are drawn up front
        assert new_run_execution(parse([*tune, *random_or_grid])).max_concurrent is None


def test_a_random_search_with_room_for_its_samples_draws_them_distinct_and_keeps_the_draws_that_did_not_repeat():
    """Drawn with replacement, 8 samples of epochs=int:2,20 repeated a point (and the search was refused, told to
    try another --search-seed) for 82 % of seeds. A repeat is drawn again now; a draw that repeated nothing stands,
    so a seed's points are what they were wherever none repeated."""
    from harness.search import _draw

    space = parse_space(["epochs=int:2,20", "optimizer=choice:momentum,adam"])
    for seed in range(50):
        points = sample_points(space, "random", 8, seed)
        assert len({tuple(sorted(p.items())) for p in points}) == 8, (seed, points)
        TunePlan(
            bases=(BASE,), space=space, algorithm="random", num_samples=8, sampling_seed=seed
        ).check_random_choices_distinct()
    for seed, repeated in ((3, False), (6, True)):  # drawn with replacement: seed 3's 8 differ, seed 6's do not
        rng = np.random.default_rng(seed)
        plain = [{p: _draw(d, rng) for p, d in space.params} for _ in range(8)]
        assert (len({tuple(sorted(p.items())) for p in plain}) < 8) == repeated
        assert (sample_points(space, "random", 8, seed) == plain) == (not repeated)
    assert len(sample_points(parse_space(["epochs=int:2,3"]), "random", 2, 0)) == 2  # all the room there is


def test_the_optuna_and_asha_refusals_name_what_the_user_gave():
    """Optuna's refusal of a tuple-valued choice said "e.g. hidden" whatever the path; ASHA's one-epoch refusal
    quoted a --grace-period the user never gave."""
    hidden = parse_space(["hidden=choice:16,32/16", "lr=loguniform:1e-3,1e-1"])
    with pytest.raises(InputError) as refused:
        TunePlan(bases=(BASE,), space=hidden, algorithm="optuna").check_request()
    assert "Received: model_options.hidden=choice:16,32/16." in str(refused.value)
    lr = parse_space(["lr=loguniform:1e-3,1e-1"])
    with pytest.raises(InputError) as refused:
        TunePlan(bases=(replace(BASE, epochs=1),), space=lr, algorithm="random", asha=AshaSettings()).check_request()
    assert "Received: --grace-period 1 (the default) for scratch-mlp-digits with 1 epoch(s)" in str(refused.value)


def test_without_optuna_the_command_line_and_the_scheduler_refuse_in_one_message_in_the_standard_form(
    monkeypatch, capsys
):
    """The refusal of --search optuna without the extra was written twice (cli.py and scheduler.py), each ending
    "Run: pip install ...", without "To fix," and without the searches that need no extra."""
    import sys

    from harness.cli import main

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError, find_spec finds none
    space = parse_space(["lr=loguniform:1e-4,1e-1"])
    experiment = SearchExperiment(base=BASE, space=space, algorithm="optuna", sampling_seed=3, num_samples=4)
    with pytest.raises(InputError) as scheduler_said:
        search_algorithm(experiment)
    said = str(scheduler_said.value)
    assert re.fullmatch(r"Expected .+\. Received: .+\. To fix, [a-z].+\.", said), said
    assert "pip install 'xfbench[optuna]', or use --search random or --search grid" in said
    assert main(["tune", "--suite", "tune_smoke", "--search", "optuna", "--no-download"]) == 2
    assert capsys.readouterr().err == f"xfbench: error: {said}\n"


def test_a_recorded_tune_reads_back_as_it_ran_under_rules_added_since():
    """Reading run.json back applied today's rules for new tunes: a grid of choices sampled twice, recorded before
    grids refused --num-samples above 1, made `report`, `export` and `tune --resume` exit 2 on a tune that ran."""
    grid = TunePlan(bases=(BASE,), space=parse_space(["lr=choice:0.01,0.1"]), algorithm="grid", num_samples=2)
    with pytest.raises(InputError, match="Expected --num-samples 1 for a grid of choices only"):
        grid.check_request()
    assert TunePlan.from_dict(json.loads(json.dumps(grid.to_dict()))) == grid


@pytest.mark.parametrize("algorithm", ["random", "optuna"])
def test_both_backends_experiments_draw_the_same_points(algorithm):
    """docs/scheduling.md says both backends' searches sample the same points in the same order; the end-to-end
    test searched a grid of choices, which never calls the generator, so a per-backend sampling seed passed it."""
    space = parse_space(["lr=loguniform:1e-4,1e-1", "dropout=uniform:0,0.5"])
    bases = (replace(BASE, model_options=ModelOptions(dropout=0.1)),)
    bases += (replace(bases[0], backend="tensorflow"),)
    torch_search, tf_search = TunePlan(bases=bases, space=space, algorithm=algorithm, num_samples=6).experiments()
    assert (torch_search.base.backend, tf_search.base.backend) == ("torch", "tensorflow")
    assert replace(torch_search, base=tf_search.base) == tf_search  # seed, space, budget, metric, ASHA, TPE start
    if algorithm == "optuna":
        pytest.importorskip("optuna")
        searchers = [_optuna_searcher(e) for e in (torch_search, tf_search)]
        points = [[s.suggest(f"t{n}")["point"] for n in range(6)] for s in searchers]
    else:
        points = [sample_points(e.space, "random", e.num_samples, e.sampling_seed) for e in (torch_search, tf_search)]
    assert points[0] == points[1] and len({p["optimizer.lr"] for p in points[0]}) == 6


def test_tunes_checkpoint_of_the_optuna_searcher_saves_nothing_and_warns_of_nothing(tmp_path):
    """Tune saves a searcher at each experiment checkpoint; the numbered searcher had get_state and set_state that
    nothing called, and no save, so Tune logged "save not implemented for Searcher". A resume replays the finished
    samples into a new searcher instead (test_an_optuna_tune_stopped_by_ctrl_c_resumes_...)."""
    pytest.importorskip("optuna")
    import logging

    from ray.util.debug import reset_log_once

    space = parse_space(["lr=loguniform:1e-3,1e-1"])
    searcher = search_algorithm(SearchExperiment(base=BASE, space=space, algorithm="optuna", num_samples=2))
    reset_log_once("suggest:save_to_dir")  # Ray logs it once a process: another test's search may have
    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("ray.tune.search.searcher")  # Ray's loggers do not reach pytest's caplog
    logger.addHandler(handler)
    try:
        searcher.save_to_dir(str(tmp_path))
    finally:
        logger.removeHandler(handler)
    assert not list(tmp_path.iterdir()) and not said, said
