"""A hyperparameter search, framework-free: its plan, the choice of each backend's best config, its report.

``xfbench tune`` searches each (case, backend) in its own Tune experiment (the
scheduler's :class:`SearchExperiment`), picks each backend's best trial by its
own validation metric, and re-runs that config with K seeds in a ``final``
stage. The head-to-head table is built from the final stage only, so no
number in it came from a trial that another framework's results could stop.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from harness.backbone import needs_trained_backbone, recipe_for
from harness.config import OptimizerConfig, TrialConfig, case_label
from harness.errors import InputError
from harness.scheduler import AshaSettings, SearchExperiment
from harness.search import (
    OPTUNA_STARTUP_DEFAULT,
    SEARCH_ALGORITHMS,
    Choice,
    SearchSpace,
    apply_point,
    canonical_path,
    distinct_points,
    grid_size,
    probe_values,
    sample_points,
    sampled_value,
    tpe_startup_samples,
    validate_space,
)
from harness.strategy_options import reads_path
from harness.summary import final_rows, last_attempts

# Every sample of a search trains from this seed (the same weights and batches: only the sampled point differs), and
# the final stage re-runs each backend's pick from the next seeds on: re-run on the search's own seed, the pick's
# result there was the very number it was chosen for being best at, so one of the K tuned results counted the
# selection's luck (a --final-seeds 1 tune reported the chosen sample itself).
SEARCH_SEED = 0

METRICS = ("val_acc", "val_loss")


@dataclass(frozen=True)
class TunePlan:
    bases: tuple[TrialConfig, ...]  # one per (case, backend); their seed is the search's trial seed
    space: SearchSpace
    algorithm: str = "random"
    sampling_seed: int = 0
    num_samples: int = 8
    metric: str = "val_acc"
    asha: AshaSettings | None = None
    final_seeds: int = 3
    # The final stage's first seed: the one after the search's (a tune recorded before 2026-12-05 ran 0..K-1 and
    # reads back 0, so its resume re-runs the seeds it planned)
    first_final_seed: int = SEARCH_SEED + 1
    # optuna: the samples TPE draws at random before it models the results (None: tpe_startup_samples of the
    # budget; a tune recorded before 2026-12-05 reads back Optuna's own 10, which it ran with)
    tpe_startup: int | None = None
    # a tie on the metric broken by the other validation metric before the sample number (a tune recorded before
    # 2026-12-06 reads back False: its resume and reports keep the pick its final stage re-ran)
    tie_break_by_other_metric: bool = True

    def __post_init__(self) -> None:
        if self.tpe_startup is None:
            object.__setattr__(self, "tpe_startup", tpe_startup_samples(self.num_samples))
        if self.algorithm not in SEARCH_ALGORITHMS:
            raise InputError(
                f"Expected --search in {list(SEARCH_ALGORITHMS)}. Received: {self.algorithm!r}. "
                "To fix, pick one of those."
            )
        if self.metric not in METRICS:
            raise InputError(
                f"Expected --metric in {list(METRICS)}. Received: {self.metric!r}. To fix, pick one of those."
            )
        if not self.space.params:
            raise InputError(
                "Expected a search space. Received: none. To fix, add --space PATH=KIND:ARGS or pick a suite that "
                "declares one."
            )

    def check_request(self) -> None:
        """The rules a new tune's options must meet (InputError otherwise). Not applied to a recorded tune read back:
        one recorded before a rule existed (a grid of choices sampled twice, before 2026-12-03) is reported and
        resumed as it ran."""
        if self.algorithm == "grid":
            self._check_grid()
        tuple_valued = [
            f"{path}=choice:{','.join('/'.join(map(str, v)) if isinstance(v, tuple) else str(v) for v in d.values)}"
            for path, d in self.space.params
            if self.algorithm == "optuna" and isinstance(d, Choice) and any(isinstance(v, tuple) for v in d.values)
        ]
        if tuple_valued:
            raise InputError(
                "Expected scalar choices with --search optuna (Optuna's categorical distributions take numbers and "
                f"strings). Received: {'; '.join(tuple_valued)}. To fix, use --search random or grid, or scalar "
                "choices."
            )
        if self.asha is not None and any(canonical_path(path) == "epochs" for path, _ in self.space.params):
            raise InputError(
                "Expected no epochs in the search space with --asha: ASHA stops every trial at the base's epoch "
                "count and ranks them there, so sampled longer runs would be cut short and compared as shorter. "
                "Received: epochs in --space. To fix, search epochs without --asha, or drop it from the space."
            )
        if self.asha is not None:
            self._check_asha_rungs(self.asha)
        if self.num_samples < 1 or self.final_seeds < 1:
            raise InputError(
                "Expected --num-samples >= 1 and --final-seeds >= 1. "
                f"Received: {self.num_samples}, {self.final_seeds}. To fix, give each as 1 or more, or leave it out."
            )

    def check_random_choices_distinct(self) -> None:
        """A search over a finite space (choices and int ranges alone) trains each point once: every sample starts
        from the same weights and batches, so a point drawn twice trains again to the same numbers (8 samples of
        optimizer=choice:momentum,adam were 8 trials of 2 configurations; epochs=int:2,3 the same). Random and grid
        points are known before the search; Optuna suggests its points as trials end, so only more samples than
        points, which must repeat, are known then."""
        points = distinct_points(self.space)
        if points is None:
            return
        choices_alone = all(isinstance(d, Choice) for _, d in self.space.params)
        finite = "choices alone" if choices_alone else "choices and int ranges alone"
        # a grid spans the choices (an int range is drawn at each point), and refuses a space of int ranges alone
        grid = "--search grid to train each combination once" if choices_alone else "an int range as choice:A,B,..."
        if self.algorithm == "optuna" and self.num_samples > points:
            raise InputError(
                f"Expected at most as many samples as points for --search optuna over {finite}: every sample starts "
                "from the same seed, so a repeated point trains again to the same numbers. Received: "
                f"--num-samples {self.num_samples} over {points} point(s). To fix, give --num-samples {points} or "
                f"fewer, {grid}{' with --search grid' if not choices_alone else ''}, or a float range in the space."
            )
        if self.algorithm == "optuna":
            return
        firsts: dict[tuple[Any, ...], int] = {}
        repeats = []
        for sample, point in enumerate(sample_points(self.space, self.algorithm, self.num_samples, self.sampling_seed)):
            first = firsts.setdefault(tuple(sorted(point.items())), sample)
            if first != sample:
                repeats.append(f"sample {sample} repeats sample {first}")
        if not repeats:
            return
        drawn = self.trials_per_experiment
        fix = (  # a grid repeats its combinations --num-samples times, drawing its int ranges anew each time
            "give the int range as choice:A,B,... (the grid then spans it), or --num-samples 1"
            if self.algorithm == "grid"
            else f"use {grid}{' with --search grid' if not choices_alone else ''}, or at most {points} samples (a "
            "random search draws them all distinct)"
        )
        raise InputError(
            f"Expected the samples of a {self.algorithm} search over {finite} to differ: they start from the same "
            f"seed, so a repeated point trains again to the same numbers. Received: {drawn} sample(s) (--num-samples "
            f"{self.num_samples}) over {points} point(s), where {len(repeats)} repeat "
            f"({'; '.join(repeats[:3])}{'; ...' if len(repeats) > 3 else ''}). To fix, {fix}, or a float range in "
            "the space."
        )

    def _check_grid(self) -> None:
        """A grid spans the choices; its ranges are drawn anew at each point and repeat (--num-samples)."""
        if not any(isinstance(d, Choice) for _, d in self.space.params):
            raise InputError(
                "Expected a choice:... domain in the space with --search grid: the grid spans the choices, and "
                "ranges are drawn at random at each point, so a space of ranges alone is one point. Received: "
                f"{', '.join(path for path, _ in self.space.params)}, all ranges. To fix, use --search random (or "
                "optuna), or give one option as choice:A,B,..."
            )
        if all(isinstance(d, Choice) for _, d in self.space.params) and self.num_samples > 1:
            raise InputError(
                f"Expected --num-samples 1 for a grid of choices only: every repeat trains the same points from the "
                f"same seed, so the {self.num_samples} repeats would give the same numbers. Received: --num-samples "
                f"{self.num_samples}. To fix, drop it (or add a range to the space, which each repeat draws anew)."
            )
        if self.num_samples < 1:
            raise InputError(
                f"Expected --num-samples >= 1 for ranges under grid search. Received: {self.num_samples}. "
                "To fix, pass --num-samples 1 or more: each repeat of the grid draws the ranges anew."
            )

    def _check_asha_rungs(self, asha: AshaSettings) -> None:
        """ASHA stops a trial only at a rung before its last epoch (Tune refuses a grace period past it)."""
        if self.bases and not any(reads_path(base, "epochs") for base in self.bases):
            strategies = ", ".join(sorted({base.strategy for base in self.bases}))
            raise InputError(
                f"Expected a searched case that trains for epochs with --asha: ASHA stops a trial between epochs. "
                f"Received: only {strategies} case(s), which fit their head once. To fix, drop --asha."
            )
        for base in self.bases:
            if asha.grace_period < base.epochs or not reads_path(base, "epochs"):
                continue  # a case without epochs (deep_features fits its head once) is searched without ASHA
            if base.epochs > 1:
                fix = f"give --grace-period {base.epochs - 1} or less, or more --epochs"
            else:
                fix = "give more --epochs, or drop --asha (a one-epoch trial cannot be stopped early)"
            raise InputError(
                f"Expected --grace-period below the epochs of each searched case with --asha: ASHA can stop a "
                f"trial only before its last epoch. Received: --grace-period {asha.grace_period}"
                f"{' (the default)' if asha.grace_period == AshaSettings().grace_period else ''} for "
                f"{case_label(base.strategy, base.model, base.variant, base.dataset)} with {base.epochs} epoch(s). "
                f"To fix, {fix}."
            )

    @property
    def trials_per_experiment(self) -> int:
        return self.num_samples * (grid_size(self.space) if self.algorithm == "grid" else 1)

    def experiments(self) -> list[SearchExperiment]:
        return [
            SearchExperiment(
                base=b,
                space=self.space,
                algorithm=self.algorithm,
                sampling_seed=self.sampling_seed,
                num_samples=self.num_samples,
                metric=self.metric,
                # ASHA stops a trial between epochs: deep_features fits its head once, with none to stop it between
                asha=self.asha if reads_path(b, "epochs") else None,
                tpe_startup=self.tpe_startup,
            )
            for b in self.bases
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bases": [b.to_dict() for b in self.bases],
            "space": self.space.to_dict(),
            "algorithm": self.algorithm,
            "sampling_seed": self.sampling_seed,
            "num_samples": self.num_samples,
            "metric": self.metric,
            "asha": asdict(self.asha) if self.asha else None,
            "final_seeds": self.final_seeds,
            "first_final_seed": self.first_final_seed,
            "tpe_startup": self.tpe_startup,
            "tie_break_by_other_metric": self.tie_break_by_other_metric,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunePlan:
        return cls(
            bases=tuple(TrialConfig.from_dict(b) for b in data["bases"]),
            space=SearchSpace.from_dict(data["space"]),
            algorithm=data["algorithm"],
            sampling_seed=data["sampling_seed"],
            num_samples=data["num_samples"],
            metric=data["metric"],
            asha=AshaSettings(**data["asha"]) if data["asha"] else None,
            final_seeds=data["final_seeds"],
            first_final_seed=data.get("first_final_seed", 0),
            tpe_startup=data.get("tpe_startup", OPTUNA_STARTUP_DEFAULT),
            tie_break_by_other_metric=data.get("tie_break_by_other_metric", False),
        )


def search_base(trial: TrialConfig) -> TrialConfig:
    """The base a search starts from: a backbone strategy's source optimizer is pinned, so sampling the
    target's optimizer never changes which shared backbone the trials start from."""
    if not pins_source_optimizer(trial):
        return trial
    pinned = replace(trial, transfer=replace(trial.transfer, source_optimizer=trial.optimizer))
    # deep_features' optimizer trains nothing but its backbone: once it is the backbone's, the trial's own is read by
    # nothing (harness.strategy_options), and left set it refused every base of a tune given --lr
    return replace(pinned, optimizer=OptimizerConfig()) if trial.strategy == "deep_features" else pinned


def pins_source_optimizer(trial: TrialConfig) -> bool:
    """A search of ``trial`` trains its backbone with the trial's own optimizer, as given (:func:`search_base`)."""
    return needs_trained_backbone(trial) and trial.transfer.source_optimizer is None


def check_plan(plan: TunePlan) -> None:
    """Every sampled value yields a valid trial, none changes a shared backbone, and every case has the metric;
    InputError otherwise."""
    headed = sorted({base.case_id for base in plan.bases if base.strategy == "deep_features"})
    if plan.metric == "val_loss" and headed:  # its samples would all be NaN: none picked, nothing re-run
        raise InputError(
            "Expected --metric val_acc for deep_features: its scikit-learn head is scored by validation accuracy "
            "alone (a support vector machine gives no probabilities, so no loss). Received: --metric val_loss with "
            f"{', '.join(headed)}. To fix, give --metric val_acc, or leave it out."
        )
    for base in plan.bases:
        validate_space(base, plan.space)
        if not needs_trained_backbone(base):
            continue
        key = recipe_for(base).key
        for path, domain in plan.space.params:
            for value in probe_values(domain):
                if recipe_for(apply_point(base, {path: value})).key != key:
                    raise InputError(
                        "Expected a search space that leaves the shared backbone unchanged. Received: "
                        f"{path}={value!r} changes the backbone recipe of {base.case_id}. To fix, search it with the "
                        "scratch strategy, or hold it at one value (drop it from the space)."
                    )


# The search table's column of the other validation metric at a trial's end, which breaks a tie on the plan's: digits'
# 180 validation images make equal accuracies common (samples 0 and 5 of one search both 0.9444, their losses 0.208
# and 0.283), and the earlier sample had won by its number alone.
TIE_BREAK = "tie_break"


def _other_metric(metric: str) -> str:
    return next(m for m in METRICS if m != metric)


def _metric_at_end(trial_rows: pd.DataFrame, metric: str) -> float:
    values = trial_rows[metric].astype(float).dropna()
    values = values[values.map(math.isfinite)]
    return float(values.iloc[-1]) if len(values) else math.nan


def search_table(frame: pd.DataFrame, plan: TunePlan) -> pd.DataFrame:
    """One row per search trial: case, backend, sample, the sampled values, epochs run, final metric, status.
    ``epochs_run``, not ``epochs``: a searched epoch count is one of the sampled values, and the count a trial ran
    (fewer where ASHA stopped it or it diverged) had overwritten it."""
    search = last_attempts(frame[frame["stage"] == "search"])
    statuses = {str(k): str(v) for k, v in final_rows(search).set_index("trial_id")["status"].items()}
    rows = []
    for trial_id, group in search.groupby("trial_id", sort=True):
        config = TrialConfig.from_dict(json.loads(group["config_json"].iloc[0]))
        epochs_run = int(group["epoch"].dropna().nunique()) if group["epoch"].notna().any() else 0
        rows.append(
            {
                "case": _base_case(config),
                "backend": config.backend,
                "sample": config.sample,
                "trial_id": trial_id,
                **{p: sampled_value(config, p) for p in plan.space.paths},
                "epochs_run": epochs_run,
                "stopped_early": statuses[str(trial_id)] == "ok" and epochs_run < config.epochs,
                # a sample that diverged or failed has none: its last finite value was from before it diverged
                plan.metric: _metric_at_end(group, plan.metric) if statuses[str(trial_id)] == "ok" else math.nan,
                TIE_BREAK: _metric_at_end(group, _other_metric(plan.metric))
                if _other_metric(plan.metric) in group
                else math.nan,
                "status": statuses[str(trial_id)],
            }
        )
    table = pd.DataFrame(rows)
    if len(table):  # a skipped experiment's base has no sample: whole numbers stay whole beside it
        table["sample"] = table["sample"].astype("Int64")
    return table


def _base_case(config: TrialConfig) -> str:
    return replace(config, sample=None, tuned=False).case_id


def samples_to_rerun(frame: pd.DataFrame, plan: TunePlan, bases: frozenset[str]) -> list[str]:
    """The samples of the experiments of ``bases`` (unsearched_bases) that ended failed or skipped: their search runs
    again, and so do they, as in any interrupted search (kept, a failed sample was replayed to Optuna as a finished
    one scoring 0)."""
    table = search_table(frame, plan) if len(frame) else pd.DataFrame()
    keys = {(_base_case(e.base), e.base.backend) for e in plan.experiments() if e.base.trial_id in bases}
    if table.empty or not keys:
        return []
    again = table[table["status"].isin(["failed", "skipped"]) & table["sample"].notna()]
    return sorted(str(r.trial_id) for r in again.itertuples() if (r.case, r.backend) in keys)


def unsearched_bases(frame: pd.DataFrame, plan: TunePlan) -> frozenset[str]:
    """The bases (by trial id) of a tune whose search ended that no final trial ran from and whose experiment
    recorded fewer samples than planned: skipped (one ``skipped`` row) for a backbone that did not train, or a
    resume of that experiment stopped before its samples ended (the skipped row is gone by then). A resume runs
    their search; the other experiments stand as they ended."""
    if not len(frame):
        return frozenset()
    table = search_table(frame, plan)
    sampled = table[table["sample"].notna()] if len(table) else table
    counts = sampled.groupby(["case", "backend"])["trial_id"].nunique().to_dict() if len(sampled) else {}
    finals = frame[frame["stage"] == "final"].drop_duplicates("trial_id")
    tuned = {
        (_base_case(TrialConfig.from_dict(json.loads(c))), b)
        for c, b in zip(finals["config_json"], finals["backend"], strict=True)
    }
    return frozenset(
        e.base.trial_id
        for e in plan.experiments()
        if (key := (_base_case(e.base), e.base.backend)) not in tuned
        and counts.get(key, 0) < plan.trials_per_experiment
    )


def best_trials(table: pd.DataFrame, plan: TunePlan) -> dict[tuple[str, str], str]:
    """(case, backend) -> trial id of the best ok search trial by the plan's metric (ties: the other validation
    metric, then the earlier sample), among
    the trials that ran all their epochs: ASHA stops a trial after an early epoch, whose metric is not comparable
    with another trial's at its end (an early validation loss, before overfitting, beat the finished trials'). Only
    where every ok trial was stopped early are those that went furthest compared."""
    best: dict[tuple[str, str], str] = {}
    if table.empty:
        return best
    ok = table[(table["status"] == "ok") & table[plan.metric].notna()]
    ascending = plan.metric.endswith("loss")
    for (case, backend), group in ok.groupby(["case", "backend"], sort=True):
        ran_to_the_end = group[~group["stopped_early"].astype(bool)]
        group = ran_to_the_end if len(ran_to_the_end) else group[group["epochs_run"] == group["epochs_run"].max()]
        # the other metric breaks a tie the opposite way round: a lower loss beside equal accuracies, and back
        by_other = plan.tie_break_by_other_metric and TIE_BREAK in group
        keys = [plan.metric, TIE_BREAK, "sample"] if by_other else [plan.metric, "sample"]
        order = [ascending, not ascending, True] if by_other else [ascending, True]
        ranked = group.sort_values(keys, ascending=order, kind="stable", na_position="last")
        best[(str(case), str(backend))] = str(ranked["trial_id"].iloc[0])
    return best


def final_seeds(plan: TunePlan) -> range:
    """The final stage's seeds: K seeds after the search's (0..K-1 in a tune recorded before that)."""
    return range(plan.first_final_seed, plan.first_final_seed + plan.final_seeds)


def final_trials(frame: pd.DataFrame, plan: TunePlan) -> list[TrialConfig]:
    """Each backend's best config, re-run with seeds 1..K (not the search's, SEARCH_SEED) under the variant ``tuned``,
    with the cache directory the plan's bases have now: the search rows record the one their samples had, which names
    the old folder once a results folder is moved or copied (a resume points the bases at its own, RunFile.in_cache)."""
    table = search_table(frame, plan)
    configs = {
        tid: TrialConfig.from_dict(json.loads(c)) for tid, c in frame.groupby("trial_id")["config_json"].first().items()
    }
    cache_dirs = {base.cache_dir for base in plan.bases}  # one per run (runner.execute sets it)
    out = []
    for (_, _), trial_id in sorted(best_trials(table, plan).items()):
        config = configs[trial_id]
        cache_dir = next(iter(cache_dirs)) if len(cache_dirs) == 1 else config.cache_dir
        out += [replace(config, seed=s, sample=None, tuned=True, cache_dir=cache_dir) for s in final_seeds(plan)]
    return out
