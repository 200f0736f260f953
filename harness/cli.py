"""The ``xfbench`` command line: ``list`` and ``run``.

Bad input exits with status 2 and a one-line message before Ray starts; a run
whose trials failed exits 1 after printing the table; a clean run exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backend import BACKENDS, fit_to_capabilities
from harness.config import DROPOUT_RNGS, OPTIMIZERS, SHIP_POLICIES, OptimizerConfig, TrialConfig
from harness.data.registry import DATASETS
from harness.data.tasks import TaskSpec
from harness.input_pipeline import NORMALIZATIONS
from harness.model_import import parse_model_ref
from harness.model_table import ModelRequest, describe_model
from harness.models import MODELS, ModelOptions
from harness.schedules import SCHEDULES, ScheduleConfig
from harness.search import SEARCH_ALGORITHMS
from harness.spec import BN_RUNNING_VARIANCES
from harness.strategies import describe_strategies
from harness.suites import SUITES, case_trials, suite
from harness.weights import INITIALIZERS

EXIT_BAD_INPUT = 2
DEFAULT_SUITE = "quick"  # what `xfbench run` runs when nothing is selected: the main job
# Execution defaults; the parser's defaults are None so `--resume` can tell a given option from a default one.
DEFAULT_CPUS_PER_TRIAL, DEFAULT_GPUS_PER_TRIAL, DEFAULT_MAX_FAILURES = 1, 0.0, 0


class InputError(ValueError):
    """Bad command-line input: reported on one line, exit status 2."""


def _int_at_least(minimum: int):
    """An argparse type for whole numbers >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, received {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _float_above(minimum: float, inclusive: bool):
    """An argparse type for numbers > minimum (or >= minimum when inclusive)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
        if not (value >= minimum if inclusive else value > minimum):
            raise argparse.ArgumentTypeError(
                f"expected a number {'>=' if inclusive else '>'} {minimum:g}, received {value}"
            )
        return value

    return parse


_positive_float = _float_above(0.0, inclusive=False)
_non_negative_float = _float_above(0.0, inclusive=True)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers such as 0,1,2, received {text!r}"
        ) from None


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 300,100, received {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes >= 1, received {text!r}")
    return sizes


def _add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """What to run and how: shared by run and tune."""
    what = parser.add_argument_group("what to run")
    what.add_argument("--suite", help=f"one of {sorted(SUITES)} (run with no selection: {DEFAULT_SUITE})")
    what.add_argument("--strategy", help="strategy name (with --model and --dataset)")
    what.add_argument("--model")
    what.add_argument("--dataset")
    what.add_argument(
        "--backend",
        action="append",
        dest="backends",
        metavar="NAME",
        help="torch or tensorflow; repeat for both (default: both)",
    )
    hp = parser.add_argument_group("hyperparameters (override the suite's)")
    hp.add_argument("--epochs", type=_positive_int)
    hp.add_argument("--seeds", type=_positive_int, help="number of seeds (0..K-1), paired across backends")
    hp.add_argument("--batch-size", type=_positive_int)
    hp.add_argument("--optimizer", help=f"one of {list(OPTIMIZERS)}")
    hp.add_argument("--lr", type=_positive_float)
    hp.add_argument("--momentum", type=_non_negative_float)
    hp.add_argument(
        "--weight-decay", type=_non_negative_float, help="coupled L2 for SGD-family/Adam; decoupled for adamw"
    )
    hp.add_argument(
        "--decoupled-weight-decay", action="store_true", help="decay weights w <- w(1 - lr*wd) instead of coupled L2"
    )
    hp.add_argument("--init", help=f"initializer, one of {sorted(INITIALIZERS)}")
    hp.add_argument("--hidden", type=_hidden, help="mlp hidden sizes, e.g. 300,100")
    hp.add_argument("--input-size", type=_positive_int, help="resize images to N x N per batch (bilinear)")
    hp.add_argument("--input-channels", type=_positive_int, help="3: replicate grayscale images to RGB")
    hp.add_argument(
        "--normalize",
        choices=tuple(NORMALIZATIONS),
        help="per-channel normalisation after resizing: none (the dataset's own) or imagenet",
    )
    hp.add_argument(
        "--width-multiplier",
        type=_positive_float,
        help="zoo models: scale every channel count and hidden width (e.g. 0.25 for a CPU)",
    )
    tech = parser.add_argument_group("techniques (S5)")
    tech.add_argument("--schedule", help=f"learning-rate schedule, one of {list(SCHEDULES)} (per step)")
    tech.add_argument("--schedule-steps", type=_positive_float, help="s of power/exponential schedules")
    tech.add_argument("--schedule-power", type=_positive_float, help="c of the power schedule")
    tech.add_argument("--piecewise", help="piecewise schedule as BOUNDARIES:VALUES, e.g. 100,200:0.1,0.01,0.001")
    tech.add_argument("--plateau-factor", type=_positive_float, help="reduce-on-plateau factor (0..1)")
    tech.add_argument("--plateau-patience", type=_positive_int, help="reduce-on-plateau patience in epochs")
    tech.add_argument("--clip-value", type=_positive_float, help="clip gradients element-wise to [-v, v]")
    tech.add_argument("--clip-norm", type=_positive_float, help="clip gradients to this global L2 norm")
    tech.add_argument("--l1", type=_non_negative_float, help="L1 penalty on kernels")
    tech.add_argument("--l2", type=_non_negative_float, help="L2 penalty on kernels (l2·Σw², Keras' convention)")
    tech.add_argument(
        "--max-norm", type=_positive_float, help="max-norm constraint on each unit's incoming kernel weights"
    )
    tech.add_argument("--activation", help="activation of the model's hidden layers")
    tech.add_argument("--activation-alpha", type=_positive_float, help="leaky_relu slope / elu alpha")
    tech.add_argument(
        "--batchnorm", choices=("none", "before", "after"), help="BatchNorm before or after each activation"
    )
    tech.add_argument(
        "--dropout", type=_non_negative_float, help="dropout rate (overrides the model's; mlp: after each hidden layer)"
    )
    tech.add_argument("--alpha-dropout", action="store_true", help="use alpha dropout (for SELU) instead of dropout")
    tech.add_argument(
        "--mc-dropout", type=_positive_int, help="after training, this many MC-dropout passes over the test set"
    )
    tech.add_argument(
        "--dropout-rng",
        choices=DROPOUT_RNGS,
        help="dropout masks: shared (one generator, identical in every backend; default) or framework",
    )
    tech.add_argument(
        "--bn-variance",
        choices=BN_RUNNING_VARIANCES,
        help="what BatchNorm's running variance tracks: unbiased (PyTorch's; default) or biased (Keras')",
    )
    tr = parser.add_argument_group("tasks and transfer (S2-S4)")
    tr.add_argument(
        "--classes", type=_int_list, help="target task: keep these classes, relabelled 0..k-1 (e.g. 0,1,2,3,4)"
    )
    tr.add_argument(
        "--binary-positive", type=int, help="with two --classes: a binary task with one sigmoid output, this class = 1"
    )
    tr.add_argument("--train-limit", type=_positive_int, help="target task: only the first N training samples")
    tr.add_argument(
        "--source-classes", type=_int_list, help="the backbone's source task classes (default: the target task)"
    )
    tr.add_argument("--source-epochs", type=_positive_int, help="epochs of the shared backbone's training")
    tr.add_argument("--source-backend", help="framework that trains the shared backbone (default torch)")
    tr.add_argument("--frozen-epochs", type=int, help="transfer: epochs with the features frozen before unfreezing")
    tr.add_argument("--freeze-groups", type=int, help="freeze_early: how many leading layer groups stay frozen")
    tr.add_argument(
        "--backbone-lr-multiplier", type=_positive_float, help="fine_tune: backbone rate = this x head rate (0.1)"
    )
    tr.add_argument("--sklearn-head", help="deep_features: linear_svc, random_forest, rbf_svc or logistic_regression")
    tr.add_argument(
        "--feature-layer", help="deep_features: layer whose output is the feature (default: the head's input)"
    )
    tr.add_argument("--feature-pool", choices=("flatten", "avg"), help="deep_features: flatten or average feature maps")
    rt = parser.add_argument_group("execution")
    rt.add_argument(
        "--cpus-per-trial",
        type=_positive_int,
        help=f"CPUs (and threads) per trial (default {DEFAULT_CPUS_PER_TRIAL}; resume: as recorded)",
    )
    rt.add_argument(
        "--gpus-per-trial",
        type=_non_negative_float,
        help="GPUs per trial, fractional allowed (default 0; resume: as recorded)",
    )
    rt.add_argument("--max-concurrent", type=_positive_int, help="at most this many trials at once")
    rt.add_argument("--address", help="join an existing Ray cluster (e.g. 127.0.0.1:6379)")
    rt.add_argument(
        "--jit-compile",
        action="store_true",
        help="TensorFlow: XLA-compile the train step (off, and recorded off, on other backends)",
    )
    rt.add_argument(
        "--torch-compile",
        action="store_true",
        help="PyTorch: torch.compile the model (off, and recorded off, on other backends)",
    )
    rt.add_argument("--results-dir", default="results", help="where run directories go (default ./results)")
    rt.add_argument(
        "--data-dir", help="directory with dataset files (also $XFBENCH_DATA, user cache, /usr/share/datasets)"
    )
    rt.add_argument("--no-download", action="store_true", help="never download missing data")
    rt.add_argument("--run-id", help="name of the run directory (default: timestamp + label)")
    rt.add_argument("-v", "--verbose", action="store_true", help="show Ray and worker logs")
    rt.add_argument(
        "--max-failures",
        type=_non_negative_int,
        help="retry a trial that raised or whose worker died up to N times (default 0; resume: as recorded)",
    )
    rt.add_argument(
        "--ship-data",
        choices=SHIP_POLICIES,
        default="auto",
        help="send datasets to workers through Ray's object store: auto (on a cluster, when <= 256 MB), always, never",
    )
    rt.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="finish an interrupted run under --results-dir: finished trials are not re-run",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfbench", description="Compare PyTorch and TensorFlow on identical training strategies."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="suites, strategies, models, datasets, backends, optimizers, initializers")

    run = commands.add_parser("run", help="run a suite or one strategy/model/dataset case on one or both backends")
    _add_case_arguments(run)
    tune = commands.add_parser(
        "tune", help="search hyperparameters per backend with Ray Tune, then re-run each backend's best with K seeds"
    )
    _add_case_arguments(tune)
    search = tune.add_argument_group("search")
    search.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="PATH=KIND:ARGS",
        help="an option and its domain: lr=loguniform:1e-4,1e-1, batch_size=choice:32,64, epochs=int:2,6, "
        "dropout=uniform:0,0.5, hidden=choice:64,128/64 (repeat; adds to or replaces the suite's)",
    )
    search.add_argument(
        "--search",
        default="random",
        help=f"search algorithm: {list(SEARCH_ALGORITHMS)} (optuna needs the optuna extra)",
    )
    search.add_argument(
        "--search-seed",
        type=_non_negative_int,
        default=0,
        help="seed of the sampler: the same seed samples the same configs",
    )
    search.add_argument(
        "--num-samples",
        type=_positive_int,
        help="random/optuna: trials per backend (default: the suite's, else 8); grid: samples per grid point (default 1)",
    )
    search.add_argument(
        "--metric", default="val_acc", help="val_acc (maximised) or val_loss (minimised), read at each epoch"
    )
    search.add_argument("--asha", action="store_true", help="stop poor trials early with ASHA, separately per backend")
    search.add_argument(
        "--grace-period", type=_positive_int, default=1, help="ASHA: epochs before a trial can be stopped (default 1)"
    )
    search.add_argument(
        "--reduction-factor", type=_positive_int, default=3, help="ASHA: keep the best 1/N at each rung (default 3)"
    )
    search.add_argument(
        "--final-seeds",
        type=_positive_int,
        default=3,
        help="seeds for re-running each backend's best config (default 3)",
    )

    cmp = commands.add_parser("compare", help="regressions and improvements between two runs or baselines")
    cmp.add_argument("base", help="run directory, run id under --results-dir, or baseline name")
    cmp.add_argument("new", help="run directory, run id under --results-dir, or baseline name")
    cmp.add_argument("--results-dir", default="results")
    cmp.add_argument(
        "--time-threshold",
        type=_float_above(1.0, inclusive=False),
        default=1.10,
        help="epoch-time ratio new/base above which a significant slowdown is a regression (default 1.10)",
    )
    cmp.add_argument(
        "--accuracy-threshold",
        type=_positive_float,
        default=1.0,
        help="accuracy drop in percentage points beyond which a significant drop is a regression (default 1)",
    )
    cmp.add_argument(
        "--alpha",
        type=_positive_float,
        default=0.01,
        help="significance level of the Mann-Whitney U test (default 0.01)",
    )
    cmp.add_argument("--markdown", help="also write the comparison as markdown to this file")
    cmp.add_argument("--fail-on-regression", action="store_true", help="exit 1 if any case regressed")

    base = commands.add_parser("baseline", help="save or list baselines (results/baselines/<machine>/<name>)")
    base_cmds = base.add_subparsers(dest="baseline_command", required=True)
    save = base_cmds.add_parser("save", help="store a run as a named baseline")
    save.add_argument("name")
    save.add_argument("--run", help="run directory or run id (default: the newest run)")
    save.add_argument("--results-dir", default="results")
    lst = base_cmds.add_parser("list", help="list saved baselines")
    lst.add_argument("--results-dir", default="results")

    mdl = commands.add_parser("model", help="a model's per-layer table: output shapes, parameters, MACs, totals")
    mdl.add_argument("name", help="a model name (xfbench list)")
    mdl.add_argument("--input-size", type=_positive_int, help="square input side (default: the model's natural size)")
    mdl.add_argument("--channels", type=_positive_int, help="input channels (default: the natural input's)")
    mdl.add_argument("--classes", type=_positive_int, default=1000, help="output classes (default 1000)")
    mdl.add_argument("--width-multiplier", type=_positive_float, default=1.0, help="zoo models: channel scale")
    mdl.add_argument("--json", action="store_true", help="totals as top-level params / forward_macs, rows as layers")
    mdl.add_argument("--export-spec", type=Path, metavar="FILE", help="also write the neutral spec as JSON")

    hist = commands.add_parser("history", help="runs so far and a metric's trend per case")
    hist.add_argument("--results-dir", default="results")
    hist.add_argument("--metric", default="epoch_time_s", help="epoch_time_s (default), samples_per_s or test_acc")
    hist.add_argument("--case", help="only cases whose name contains this text")
    hist.add_argument("--last", type=_positive_int, default=10, help="how many recent runs (default 10)")
    return parser


def _choice(kind: str, value: str | None, valid: Sequence[str]) -> None:
    if value is not None and value not in valid:
        raise InputError(f"Expected --{kind} to be one of {sorted(valid)}. Received: {value!r}.")


def trials_from_args(args: argparse.Namespace) -> tuple[list[TrialConfig], str]:
    """The trial list and a run label; raises InputError on bad input."""
    backends = tuple(dict.fromkeys(args.backends or BACKENDS))
    for b in backends:
        _choice("backend", b, BACKENDS)
    _choice("optimizer", args.optimizer, OPTIMIZERS)
    _choice("init", args.init, list(INITIALIZERS))
    single = (args.strategy, args.model, args.dataset)
    if args.suite and any(single):
        raise InputError("Expected either --suite or --strategy/--model/--dataset. Received both.")
    chosen_suite = args.suite or (DEFAULT_SUITE if args.command == "run" and not any(single) else None)
    if chosen_suite:
        _choice("suite", chosen_suite, list(SUITES))
        chosen = suite(chosen_suite)
        seeds = args.seeds or chosen.seeds
        trials = [t for case in chosen.cases for t in case_trials(case, chosen.name, backends, seeds)]
        label = chosen.name
    else:
        if not all(single):
            raise InputError(
                f"Expected --strategy, --model and --dataset together (or --suite). Received: strategy={args.strategy!r}, model={args.model!r}, dataset={args.dataset!r}."
            )
        _choice("strategy", args.strategy, list(describe_strategies()))
        try:
            parse_model_ref(args.model)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        _choice("dataset", args.dataset, list(DATASETS))
        seeds = args.seeds or 1
        trials = [
            TrialConfig(
                strategy=args.strategy,
                model=args.model,
                dataset=args.dataset,
                backend=b,
                seed=s,
                epochs=args.epochs or 5,
            )
            for b in backends
            for s in range(seeds)
        ]
        label = f"{args.strategy}-{args.model}-{args.dataset}"
    try:
        # one backend's speed option (--jit-compile, --torch-compile) is off, and recorded off, on the other's trials
        return fit_to_capabilities([_apply_overrides(t, args) for t in trials]), label
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _apply_overrides(trial: TrialConfig, args: argparse.Namespace) -> TrialConfig:
    changes: dict[str, Any] = {}
    if args.epochs:
        changes["epochs"] = args.epochs
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if args.init:
        changes["init"] = args.init
    opt = trial.optimizer
    if args.optimizer and args.optimizer != opt.name:
        opt = OptimizerConfig(name=args.optimizer, lr=opt.lr)
    opt_changes = {
        k: v
        for k, v in (
            ("lr", args.lr),
            ("momentum", args.momentum),
            ("weight_decay", args.weight_decay),
            ("clip_value", args.clip_value),
            ("clip_norm", args.clip_norm),
        )
        if v is not None
    }
    if args.decoupled_weight_decay:
        opt_changes["decoupled"] = True
    model_changes = {
        k: v
        for k, v in (
            ("hidden", args.hidden),
            ("activation", args.activation),
            ("activation_alpha", args.activation_alpha),
            ("batchnorm", args.batchnorm),
            ("dropout", args.dropout),
            ("bn_running_variance", args.bn_variance),
            ("width_multiplier", args.width_multiplier),
        )
        if v is not None
    }
    if args.alpha_dropout:
        model_changes["dropout_kind"] = "alpha"
    reg_changes = {k: v for k, v in (("l1", args.l1), ("l2", args.l2), ("max_norm", args.max_norm)) if v is not None}
    try:
        changes["optimizer"] = dataclasses.replace(opt, **opt_changes)
        if model_changes:
            changes["model_options"] = dataclasses.replace(trial.model_options, **model_changes)
        input_changes = {
            k: v
            for k, v in (("size", args.input_size), ("channels", args.input_channels), ("normalize", args.normalize))
            if v is not None
        }
        if input_changes:
            changes["input"] = dataclasses.replace(trial.input, **input_changes)
        if reg_changes:
            changes["regularization"] = dataclasses.replace(trial.regularization, **reg_changes)
        if args.schedule or args.piecewise:
            changes["schedule"] = _schedule_from_args(args, trial.schedule)
        if args.mc_dropout:
            changes["mc_dropout_passes"] = args.mc_dropout
        if args.classes or args.binary_positive is not None or args.train_limit:
            changes["task"] = TaskSpec(
                classes=args.classes, binary_positive=args.binary_positive, train_limit=args.train_limit
            )
        transfer_changes = {
            k: v
            for k, v in (
                ("source_epochs", args.source_epochs),
                ("source_backend", args.source_backend),
                ("frozen_epochs", args.frozen_epochs),
                ("freeze_groups", args.freeze_groups),
                ("backbone_lr_multiplier", args.backbone_lr_multiplier),
                ("sklearn_head", args.sklearn_head),
                ("feature_layer", args.feature_layer),
                ("feature_pool", args.feature_pool),
            )
            if v is not None
        }
        if args.source_classes:
            transfer_changes["source_task"] = TaskSpec(classes=args.source_classes)
        if args.source_backend is not None and args.source_backend not in BACKENDS:
            raise InputError(
                f"Expected --source-backend to be one of {list(BACKENDS)}. Received: {args.source_backend!r}."
            )
        if transfer_changes:
            changes["transfer"] = dataclasses.replace(trial.transfer, **transfer_changes)
        gpus = DEFAULT_GPUS_PER_TRIAL if args.gpus_per_trial is None else args.gpus_per_trial
        changes["runtime"] = dataclasses.replace(
            trial.runtime,
            threads=args.cpus_per_trial or DEFAULT_CPUS_PER_TRIAL,
            device="gpu" if gpus > 0 else "cpu",
            jit_compile=args.jit_compile,
            torch_compile=args.torch_compile,
            **({"dropout_rng": args.dropout_rng} if args.dropout_rng else {}),
        )
        changes["data_dir"] = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
        return dataclasses.replace(trial, **changes)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _schedule_from_args(args: argparse.Namespace, current: ScheduleConfig) -> ScheduleConfig:
    name = args.schedule or ("piecewise" if args.piecewise else current.name)
    if name not in SCHEDULES:
        raise InputError(f"Expected --schedule to be one of {list(SCHEDULES)}. Received: {name!r}.")
    fields: dict[str, Any] = {"name": name}
    for key, value in (
        ("steps", args.schedule_steps),
        ("power", args.schedule_power),
        ("factor", args.plateau_factor),
        ("patience", args.plateau_patience),
    ):
        if value is not None:
            fields[key] = value
    if args.piecewise:
        try:
            bounds, values = args.piecewise.split(":")
            fields["boundaries"] = tuple(int(b) for b in bounds.split(","))
            fields["values"] = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise InputError(
                f"Expected --piecewise BOUNDARIES:VALUES such as 100,200:0.1,0.01,0.001. Received: {args.piecewise!r}."
            ) from None
    return dataclasses.replace(current, **fields)


def cmd_list() -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="xfbench catalogue", show_lines=False)
    table.add_column("kind")
    table.add_column("name")
    table.add_column("description")
    for name, s in SUITES.items():
        table.add_row("suite", name, f"{s.description} [{len(s.cases)} cases × {s.seeds} seeds]")
    for name, desc in describe_strategies().items():
        table.add_row("strategy", name, desc)
    for name, entry in MODELS.items():
        table.add_row("model", name, entry.description)
    for name, (_, desc) in DATASETS.items():
        table.add_row("dataset", name, desc)
    for name in BACKENDS:
        table.add_row("backend", name, "adapter in backends/" + name)
    for name in OPTIMIZERS:
        table.add_row("optimizer", name, "")
    for name, init in INITIALIZERS.items():
        table.add_row("initializer", name, init.description)
    console.print(table)
    return 0


class RichProgress:
    """Live display: trials done / total, elapsed time, the latest epoch seen."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._task = None

    def start(self, total_trials: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("starting Ray…", total=total_trials)

    def extend(self, more_trials: int) -> None:
        self._progress.update(self._task, total=(self._progress.tasks[0].total or 0) + more_trials)

    def row(self, row: dict[str, Any]) -> None:
        if row["status"] == "failed":
            self.console.print(f"[red]trial {row['trial_id']} failed:[/red] {row['error']}")
            return
        if row.get("val_acc") is None or row.get("epoch_time_s") is None:
            return
        desc = f"{row['trial_id']} epoch {row['epoch']}: val_acc {row['val_acc']:.3f}, {row['epoch_time_s']:.2f}s"
        self._progress.update(self._task, description=desc)

    def trial_done(self, trial_id: str) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def print_summary(outcome: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.summary import COMPARISON_HEADER, PER_BACKEND_HEADER, comparison_cells, per_backend_cells

    console = Console()
    table = Table(title=f"xfbench — run {outcome.run_id}")
    for h in PER_BACKEND_HEADER:
        table.add_column(h)
    for _, r in outcome.summary.per_backend.iterrows():
        table.add_row(*per_backend_cells(r))
    console.print(table)
    if not outcome.summary.comparison.empty:
        cmp_table = Table(title="torch vs tensorflow")
        for h in COMPARISON_HEADER:
            cmp_table.add_column(h)
        for _, r in outcome.summary.comparison.iterrows():
            cmp_table.add_row(*comparison_cells(r))
        console.print(cmp_table)
    console.print(
        f"results: {outcome.run_dir}  (results.parquet, results.csv, run.json, summary.md); wall time {outcome.wall_time_s:.1f}s"
    )


def _given_execution(args: argparse.Namespace) -> dict[str, Any]:
    """The execution options given on the command line (None: not given)."""
    return {
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "address": args.address,
        "max_concurrent": args.max_concurrent,
        "max_failures": args.max_failures,
    }


def _checked(settings: Any) -> Any:
    if settings.address is None and settings.cpus_per_trial > (os.cpu_count() or 1):
        raise InputError(
            f"Expected --cpus-per-trial <= this machine's {os.cpu_count()} CPUs. "
            f"Received: {settings.cpus_per_trial}. Pass a smaller --cpus-per-trial."
        )
    return settings


def _settings(args: argparse.Namespace, results_dir: Path) -> Any:
    from harness.runner import execution_settings

    defaults = {
        "cpus_per_trial": DEFAULT_CPUS_PER_TRIAL,
        "gpus_per_trial": DEFAULT_GPUS_PER_TRIAL,
        "address": None,
        "max_concurrent": None,
        "max_failures": DEFAULT_MAX_FAILURES,
    }
    return _checked(execution_settings(results_dir, defaults, _given_execution(args), verbose=args.verbose))


def _resume(args: argparse.Namespace, kind: str) -> int:
    """``--resume RUN_ID``: the run's own recorded trials and settings; only execution options may change."""
    from harness.runner import execution_settings, resume

    given = [
        f"--{name.replace('_', '-')}"
        for name in ("suite", "strategy", "model", "dataset", "run_id")
        if getattr(args, name, None)
    ]
    if given or getattr(args, "space", None):
        raise InputError(
            f"Expected --resume with execution options only (the run keeps its recorded trials). Received: {given or ['--space']}."
        )
    results_dir = Path(args.results_dir).expanduser().resolve()
    info_path = results_dir / args.resume / "run.json"
    if not info_path.is_file():
        raise InputError(
            f"Expected a run to resume in {results_dir}. Received: {args.resume!r}, which has no run.json there. Check --results-dir."
        )
    recorded = json.loads(info_path.read_text())
    if recorded.get("kind", "run") != kind:
        raise InputError(
            f"Expected a {kind} run for `xfbench {kind} --resume`. Received: {args.resume!r} is a {recorded.get('kind')} run; use `xfbench {recorded.get('kind')} --resume`."
        )
    if recorded.get("status") == "finished":
        raise InputError(
            f"Expected an interrupted run. Received: {args.resume!r} finished at {recorded.get('finished')}; nothing to resume."
        )
    recorded_gpus = recorded["scheduler"].get("gpus_per_trial") or 0
    if args.gpus_per_trial is not None and (args.gpus_per_trial > 0) != (recorded_gpus > 0):
        raise InputError(
            f"Expected --gpus-per-trial to keep the recorded device ({'gpu' if recorded_gpus else 'cpu'}: "
            f"the run's trials are configured for it). Received: {args.gpus_per_trial}. "
            f"Leave --gpus-per-trial out, or start a new run."
        )
    # What is given now wins (--max-failures 0 included); the rest is as the run recorded it.
    execution = _given_execution(args)
    settings = _checked(execution_settings(results_dir, recorded["scheduler"], execution, verbose=args.verbose))
    outcome = resume(results_dir, args.resume, settings=settings, progress=RichProgress(), ship_policy=args.ship_data)
    return _finish(outcome, kind)


def _finish(outcome: Any, kind: str) -> int:
    print_summary(outcome)
    if outcome.status == "interrupted":
        print(
            f"interrupted: finish it with `xfbench {kind} --resume {outcome.run_id} --results-dir {outcome.run_dir.parent}`",
            file=sys.stderr,
        )
        return 130
    return 0 if outcome.all_ok else 1


def _prepare(args: argparse.Namespace, trials: list[TrialConfig], label: str) -> tuple[Path, str, dict, dict]:
    """Everything that can fail on bad input, before Ray: run id, data present, what ships to the workers."""
    from harness.runner import datasets_to_ship, new_run_id, preflight

    results_dir = Path(args.results_dir).expanduser().resolve()
    run_id = args.run_id or new_run_id(label)
    if (results_dir / run_id).exists():
        raise InputError(
            f"Expected a new --run-id. Received: {run_id!r}, which already exists in {results_dir}. Pick another name."
        )
    try:
        loaded: dict = {}
        provenance = preflight(
            trials, args.data_dir, download=not args.no_download, loaded=loaded, cache_dir=results_dir / "_cache"
        )
        ship = datasets_to_ship(trials, args.ship_data, args.address, loaded=loaded)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from None
    return results_dir, run_id, provenance, ship


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import execute

    if args.resume:
        return _resume(args, "run")
    trials, label = trials_from_args(args)
    results_dir, run_id, provenance, ship = _prepare(args, trials, label)
    settings = _settings(args, results_dir)
    outcome = execute(
        trials,
        results_dir=results_dir,
        run_id=run_id,
        settings=settings,
        progress=RichProgress(),
        command=["xfbench", *sys.argv[1:]],
        data_provenance=provenance,
        ship=ship,
    )
    return _finish(outcome, "run")


def tune_plan_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """The search plan and a run label; raises InputError on bad input."""
    from harness.scheduler import AshaSettings
    from harness.search import SearchSpace, parse_space
    from harness.tuning import TunePlan, check_plan, search_base

    if args.seeds:
        raise InputError(
            f"Expected --final-seeds K with tune (search trials all start from seed 0). Received: --seeds {args.seeds}."
        )
    trials, label = trials_from_args(args)
    bases = tuple(dict.fromkeys(search_base(dataclasses.replace(t, seed=0)) for t in trials))
    try:
        space = suite(args.suite).search if args.suite else SearchSpace()
        space = space.merged(parse_space(args.space))
        # a grid is exhaustive: one sample per point unless asked; a random search samples the suite's number (or 8)
        num_samples = args.num_samples or (
            1 if args.search == "grid" else suite(args.suite).search_samples if args.suite else 8
        )
        plan = TunePlan(
            bases=bases,
            space=space,
            algorithm=args.search,
            sampling_seed=args.search_seed,
            num_samples=num_samples,
            metric=args.metric,
            final_seeds=args.final_seeds,
            asha=AshaSettings(args.grace_period, args.reduction_factor) if args.asha else None,
        )
        check_plan(plan)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if plan.algorithm == "optuna" and importlib.util.find_spec("optuna") is None:
        raise InputError(
            "Expected Optuna for --search optuna. Received: it is not installed. Run: pip install 'xfbench[optuna]'."
        )
    return plan, f"tune-{label}"


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.runner import execute

    if args.resume:
        return _resume(args, "tune")
    plan, label = tune_plan_from_args(args)
    results_dir, run_id, provenance, ship = _prepare(args, list(plan.bases), label)
    outcome = execute(
        [],
        results_dir=results_dir,
        run_id=run_id,
        settings=_settings(args, results_dir),
        progress=RichProgress(),
        command=["xfbench", *sys.argv[1:]],
        data_provenance=provenance,
        ship=ship,
        plan=plan,
        title="xfbench tune: each backend at its best config",
    )
    return _finish(outcome, "tune")


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.baselines import environment_warnings, load_run
    from harness.compare import HEADER, Thresholds, cells, compare_frames, to_markdown

    results_dir = Path(args.results_dir).expanduser()
    try:
        thresholds = Thresholds(time_ratio=args.time_threshold, accuracy_pp=args.accuracy_threshold, alpha=args.alpha)
        base, new = load_run(args.base, results_dir), load_run(args.new, results_dir)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    warnings = environment_warnings(base.environment, new.environment)
    rows = compare_frames(base.frame, new.frame, thresholds)
    console = Console()
    for warning in warnings:
        console.print(f"[bold red]WARNING:[/bold red] {warning}", soft_wrap=True)
    table = Table(title=f"{base.label} → {new.label}")
    for h in HEADER:
        table.add_column(h)
    for row in rows:
        style = "red" if row.regressed else ("green" if "improvement" in (row.time_verdict, row.acc_verdict) else None)
        table.add_row(*cells(row), style=style)
    console.print(table)
    regressions = [r for r in rows if r.regressed]
    for r in regressions:
        console.print(
            f"[red]regression:[/red] {r.case} \\[{r.backend}] time {r.time_verdict} (x{r.time_ratio:.3f}, p={r.time_p:.2g}), "
            f"accuracy {r.acc_verdict} ({r.acc_diff_pp:+.2f} pp)",
            soft_wrap=True,
        )
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(rows, base.label, new.label, warnings, thresholds))
    console.print(f"{len(regressions)} regression(s) in {len(rows)} case(s)", soft_wrap=True)
    return 1 if regressions and args.fail_on_regression else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.baselines import list_baselines, resolve, run_directories, save_baseline

    results_dir = Path(args.results_dir).expanduser()
    if args.baseline_command == "list":
        for meta in list_baselines(results_dir):
            versions = ", ".join(f"{k} {v}" for k, v in sorted(meta["framework_versions"].items()))
            print(f"{meta['name']:<24} {meta['machine_key']:<50} {versions}  saved {meta['saved']}")
        return 0
    try:
        if args.run:
            run_dir = resolve(args.run, results_dir)
        else:
            runs = run_directories(results_dir)
            if not runs:
                raise ValueError(
                    f"Expected a run to save. Received: no runs in {results_dir}. Run `xfbench run` first or pass --run."
                )
            run_dir = runs[-1]
        target = save_baseline(run_dir, args.name, results_dir)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    print(f"saved baseline {args.name!r} from {run_dir} to {target}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.baselines import history

    try:
        runs, table = history(Path(args.results_dir).expanduser(), args.metric, args.case, args.last)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    console = Console()
    listing = Table(title=f"runs in {args.results_dir}")
    for h in ("run_id", "started", "git_commit", "status", "trials"):
        listing.add_column(h)
    for run in runs:
        listing.add_row(run["run_id"], run["started"], run["git_commit"], run["status"], str(run["trials"]))
    console.print(listing)
    if not table.empty:
        trend = Table(title=f"{args.metric} per case (oldest → newest)")
        trend.add_column("case")
        trend.add_column("backend")
        for column in table.columns:
            trend.add_column(str(column))
        for (case, backend), values in table.iterrows():
            trend.add_row(case, backend, *["" if v != v else f"{v:.4g}" for v in values])
        console.print(trend)
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    request = ModelRequest(
        args.name, args.input_size, args.channels, args.classes, ModelOptions(width_multiplier=args.width_multiplier)
    )
    try:
        print(describe_model(request, args.json, args.export_spec))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "baseline":
            return cmd_baseline(args)
        if args.command == "history":
            return cmd_history(args)
        if args.command == "model":
            return cmd_model(args)
        if args.command == "tune":
            return cmd_tune(args)
        return cmd_run(args)
    except InputError as exc:
        print(f"xfbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
