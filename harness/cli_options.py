"""The command line's options, and what each one means in the run plan.

Every option that changes trial configs is declared once, in :data:`OVERRIDE_OPTIONS`, with the config path it
sets (:mod:`harness.overrides`); the parser stores its value under that path, and :func:`overrides_from_args`
hands the given ones to the planner. Execution options (:data:`EXECUTION_OPTIONS`) default to None, so
``--resume`` can tell an option that was given from a default.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from harness.augment import parse_augment
from harness.backend import BACKENDS, REFERENCE_BACKEND
from harness.baselines import HISTORY_METRICS
from harness.config import (
    BN_STATISTICS,
    DEFAULT_CASE_EPOCHS,
    DROPOUT_RNGS,
    EPOCH_LOOPS,
    OPTIMIZERS,
    PRECISIONS,
    TF_MODES,
    TransferOptions,
)
from harness.errors import InputError
from harness.input_pipeline import NORMALIZATIONS, RESIZE_MODES
from harness.option_types import (
    ADDRESS_HELP,
    SHIP_POLICIES,
    add_threshold_options,
    concurrency,
    expected_received,
    given,
    gpu_share,
    non_empty,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    user_path,
)
from harness.plan import ExecutionOptions
from harness.planner import DEFAULT_SUITE, SearchRequest, Selection
from harness.scheduler import AshaSettings
from harness.schedules import SCHEDULES, ScheduleConfig
from harness.search import SEARCH_ALGORITHMS, parse_space
from harness.spec import ACTIVATIONS, BN_RUNNING_VARIANCES
from harness.suites import SUITES, suites_max_concurrent
from harness.weights import INITIALIZERS

# The defaults the help names, read from the configs themselves (summary.md's settings table lists only settings
# away from them and sends the reader here)
_SCHEDULE, _TRANSFER = ScheduleConfig(), TransferOptions()
PATH_PREFIX = "set:"  # argparse dest of an override option: "set:" + its config path


def non_empty_name(text: str) -> str:
    """--suite, --strategy, --model, --dataset: an empty one (an unset shell variable in `--suite "$SUITE"`) was read as
    the option left out, and `run --suite ""` ran the quick suite."""
    return given(text, "name", "Give one (xfbench list shows them), or leave the option out")


def class_number(text: str) -> int:
    """--binary-positive: a class label, as --classes lists them."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a class label (a whole number >= 0, one of the two --classes, such as 6 with --classes 5,6), "
            f"received {text!r}. Give the label of the class that becomes 1"
        )
    return value


def user_file(text: str) -> Path:
    """:func:`user_path` as a Path, for the files a command writes (--output, --export-spec)."""
    return Path(user_path(text))


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers such as 0,1,2, received {text!r}. Give the numbers, separated by "
            "commas and nothing else"
        ) from None


def class_list(flag: str, left_out: str) -> Callable[[str], tuple[int, ...]]:
    """A task's classes, two or more, each once; refused here, where the flag given is known (TaskSpec, which
    checks them again, cannot tell --classes from --source-classes). ``left_out``: what leaving the flag out does."""

    def parse(text: str) -> tuple[int, ...]:
        classes = int_list(text)
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if len(set(classes)) < 2 or repeated:
            twice = f" ({','.join(map(str, repeated))} more than once)" if repeated else ""
            raise argparse.ArgumentTypeError(
                f"expected two or more distinct classes, each once (the head has one output per class), such as "
                f"0,1,2, received {text!r}{twice}. List two or more, each once, or leave {flag} out {left_out}"
            )
        return classes

    return parse


def absolute_path(text: str) -> str:
    return str(Path(user_path(text)).resolve())


def layer_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = int_list(text)
    except argparse.ArgumentTypeError:  # its example (0,1,2) names classes, not sizes
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes >= 1 such as 300,100, received {text!r}. Give one size per hidden "
            "layer, separated by commas and nothing else"
        )
    return sizes


def piecewise(text: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    try:
        bounds, values = text.split(":")
        return tuple(int(b) for b in bounds.split(",")), tuple(float(v) for v in values.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected BOUNDARIES:VALUES such as 100,200:0.1,0.01,0.001, received {text!r}. Give the steps where the "
            "learning rate changes, a colon, then the rates, one more than the steps"
        ) from None


def on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, received {text!r}. Give on or off, in lower case")
    return text == "on"


def augment_option(text: str) -> dict[str, int | bool]:
    try:
        return parse_augment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


@dataclass(frozen=True)
class Option:
    flag: str
    path: str  # the trial-config path it sets
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    const: Any = None  # a flag without a value that sets the path to this


def _options(group: str, *options: Option) -> tuple[str, tuple[Option, ...]]:
    return group, options


OVERRIDE_OPTIONS: tuple[tuple[str, tuple[Option, ...]], ...] = (
    _options(
        "hyperparameters (override the suite's)",
        Option(
            "--epochs",
            "epochs",
            f"epochs per trial (default: a suite case's own; {DEFAULT_CASE_EPOCHS} for a single case; deep_features "
            "reads none, its backbone's are --source-epochs)",
            positive_int,
        ),
        Option("--batch-size", "batch_size", "training batch size (default 64)", positive_int),
        Option(
            "--optimizer",
            "optimizer.name",
            f"one of {list(OPTIMIZERS)} (default momentum: SGD, momentum 0.9); another optimizer starts from its own "
            "defaults, keeping the learning rate and clipping",
        ),
        Option("--lr", "optimizer.lr", "learning rate (default 0.01)", positive_float),
        Option("--momentum", "optimizer.momentum", "momentum (SGD family, RMSprop)", non_negative_float),
        Option("--beta1", "optimizer.beta1", "Adam's first-moment decay (default 0.9)", non_negative_float),
        Option("--beta2", "optimizer.beta2", "Adam's second-moment decay (default 0.999)", non_negative_float),
        Option(
            "--rho",
            "optimizer.rho",
            "RMSprop's / Adadelta's squared-gradient decay (defaults 0.99 / 0.9, PyTorch's; Keras' are 0.9 / 0.95)",
            non_negative_float,
        ),
        Option(
            "--eps",
            "optimizer.eps",
            "the adaptive optimizers' denominator term (defaults: adam/adamw/rmsprop 1e-8, adagrad 1e-10, adadelta "
            "1e-6; Keras' 1e-7)",
            positive_float,
        ),
        Option(
            "--weight-decay",
            "optimizer.weight_decay",
            "coupled L2 for every optimizer but adamw (decoupled; --decoupled-weight-decay for the others); applies "
            "to every trainable parameter, biases and BatchNorm included (unlike --l2)",
            non_negative_float,
        ),
        Option(
            "--decoupled-weight-decay",
            "optimizer.decoupled",
            "decay w <- w(1 - lr*wd) instead of coupled L2",
            const=True,
        ),
        Option("--init", "init", f"initializer, one of {sorted(INITIALIZERS)} (default he_normal)"),
        Option("--hidden", "model_options.hidden", "mlp hidden sizes, e.g. 300,100", layer_sizes),
        Option("--input-size", "input.size", "resize images to N x N per batch (bilinear)", positive_int),
        Option("--input-channels", "input.channels", "3: replicate grayscale images to RGB", positive_int),
        Option(
            "--normalize",
            "input.normalize",
            "per-channel normalisation after resizing: none (the dataset's own), imagenet, tf, caffe, or weights (the "
            "pretrained weight set's, the default with --pretrained/--weights; given, any other overrides them)",
            choices=(*NORMALIZATIONS, "weights"),
        ),
        Option(
            "--resize-mode",
            "input.resize_mode",
            "how images reach --input-size: stretch, or resize-crop (shorter side to size/0.875, or the weight "
            "set's side, then the centred crop: torchvision's evaluation when enlarging; shrinking, torchvision "
            "antialiases and xfbench does not); default: the weight set's, else stretch",
            choices=RESIZE_MODES,
        ),
        Option(
            "--augment",
            "augment",
            "training batches: crop (black padding 4, random crop back), crop:N, flip, none; e.g. crop,flip",
            augment_option,
        ),
        Option(
            "--width-multiplier",
            "model_options.width_multiplier",
            "the zoo's networks but mlp, cnn_small and convnet3: scale every channel count and hidden width (e.g. 0.25 "
            "for a CPU)",
            positive_float,
        ),
    ),
    _options(
        "techniques (S5)",
        Option("--schedule", "schedule.name", f"learning-rate schedule, one of {list(SCHEDULES)} (per step)"),
        Option(
            "--schedule-steps",
            "schedule.steps",
            f"s of power/exponential schedules (default {_SCHEDULE.steps:g})",
            positive_float,
        ),
        Option(
            "--schedule-power",
            "schedule.power",
            f"c of the power schedule (default {_SCHEDULE.power:g})",
            positive_float,
        ),
        Option(
            "--piecewise",
            "schedule.piecewise",
            "piecewise schedule as BOUNDARIES:VALUES, e.g. 100,200:0.1,0.01,0.001",
            piecewise,
        ),
        Option(
            "--plateau-factor",
            "schedule.factor",
            f"reduce-on-plateau factor (0..1, default {_SCHEDULE.factor:g})",
            positive_float,
        ),
        Option(
            "--plateau-patience",
            "schedule.patience",
            "reduce-on-plateau: epochs without improvement before a reduction (0: after each; default 2)",
            non_negative_int,
        ),
        Option(
            "--plateau-threshold",
            "schedule.threshold",
            "reduce-on-plateau: relative fall of the validation loss that counts as an improvement (default 1e-4, "
            "PyTorch's)",
            non_negative_float,
        ),
        Option("--clip-value", "optimizer.clip_value", "clip gradients element-wise to [-v, v]", positive_float),
        Option("--clip-norm", "optimizer.clip_norm", "clip gradients to this global L2 norm", positive_float),
        Option("--l1", "regularization.l1", "L1 penalty on kernels", non_negative_float),
        Option("--l2", "regularization.l2", "L2 penalty on kernels (l2·Σw², Keras' convention)", non_negative_float),
        Option(
            "--max-norm",
            "regularization.max_norm",
            "max-norm constraint on each unit's incoming kernel weights",
            positive_float,
        ),
        Option(
            "--activation", "model_options.activation", "activation of the model's hidden layers", choices=ACTIVATIONS
        ),
        Option("--activation-alpha", "model_options.activation_alpha", "leaky_relu slope / elu alpha", positive_float),
        Option(
            "--batchnorm",
            "model_options.batchnorm",
            "BatchNorm before or after each activation",
            choices=("none", "before", "after"),
        ),
        Option(
            "--dropout",
            "model_options.dropout",
            "dropout rate (overrides the model's; mlp: after each hidden layer)",
            non_negative_float,
        ),
        Option(
            "--alpha-dropout",
            "model_options.dropout_kind",
            "use alpha dropout (for SELU) instead of dropout",
            const="alpha",
        ),
        Option(
            "--mc-dropout",
            "mc_dropout_passes",
            "after training, this many MC-dropout passes over the test set",
            positive_int,
        ),
        Option(
            "--dropout-rng",
            "runtime.dropout_rng",
            "dropout masks: shared (one generator, identical in every backend; default) or framework",
            choices=DROPOUT_RNGS,
        ),
        Option(
            "--bn-variance",
            "model_options.bn_running_variance",
            "what BatchNorm's running variance tracks: unbiased (PyTorch's; default) or biased (Keras')",
            choices=BN_RUNNING_VARIANCES,
        ),
        Option(
            "--bn-statistics",
            "runtime.bn_statistics",
            "training-mode BatchNorm in float32 (each framework's own kernel; default) or float64 (both backends: "
            "they round BatchNorm alike and part far later; slower)",
            choices=BN_STATISTICS,
        ),
    ),
    _options(
        "tasks and transfer (S2-S4)",
        Option(
            "--classes",
            "task.classes",
            "target task: keep these classes, relabelled 0..k-1 (e.g. 0,1,2,3,4)",
            class_list("--classes", "for all of the dataset's classes"),
        ),
        Option(
            "--binary-positive",
            "task.binary_positive",
            "with two --classes: a binary task with one sigmoid output, this class = 1",
            class_number,
        ),
        Option("--train-limit", "task.train_limit", "target task: only the first N training samples", positive_int),
        Option(
            "--source-classes",
            "transfer.source_task.classes",
            "the backbone's source task classes (default: the target task)",
            class_list("--source-classes", "to train the backbone on the target task"),
        ),
        Option(
            "--pretrained",
            "transfer.pretrained",
            "start backbone strategies from a zoo's weights: torchvision:NAME[:WEIGHTS] or keras:NAME[:imagenet]",
        ),
        Option(
            "--weights",
            "transfer.weights_file",
            "start backbone strategies from a file: .pth/.pt, .safetensors, Keras .weights.h5 or neutral .npz",
            absolute_path,
        ),
        Option(
            "--source-epochs",
            "transfer.source_epochs",
            "epochs of the shared backbone's training (default 5)",
            positive_int,
        ),
        Option(
            "--source-backend",
            "transfer.source_backend",
            f"backend that trains the shared backbone (default {_TRANSFER.source_backend})",
        ),
        Option(
            "--frozen-epochs",
            "transfer.frozen_epochs",
            "transfer: epochs with every group but the classifier frozen before all train (default: every epoch)",
            non_negative_int,
        ),
        Option(
            "--freeze-groups",
            "transfer.freeze_groups",
            "freeze_early: how many leading layer groups stay frozen (1 to one below the model's groups; default "
            f"{_TRANSFER.freeze_groups})",
            non_negative_int,
        ),
        Option(
            "--backbone-lr-multiplier",
            "transfer.backbone_lr_multiplier",
            "fine_tune, freeze_early: the backbone layers' rate = this x head rate (0.1)",
            positive_float,
        ),
        Option(
            "--sklearn-head",
            "transfer.sklearn_head",
            "deep_features: linear_svc, random_forest, rbf_svc or logistic_regression (default "
            f"{_TRANSFER.sklearn_head})",
        ),
        Option(
            "--feature-layer",
            "transfer.feature_layer",
            "deep_features: layer whose output is the feature (default: the head's input)",
        ),
        Option(
            "--feature-pool",
            "transfer.feature_pool",
            f"deep_features: flatten or average feature maps (default {_TRANSFER.feature_pool})",
            choices=("flatten", "avg"),
        ),
    ),
    _options(
        "execution modes and precision (the speed_matrix suite's modes)",
        Option(
            "--jit-compile",
            "runtime.jit_compile",
            "TensorFlow: XLA-compile the train step, evaluation and feature extraction (off, and recorded off, on "
            "other backends)",
            const=True,
        ),
        Option(
            "--torch-compile",
            "runtime.torch_compile",
            "PyTorch: torch.compile the model (off, and recorded off, on other backends)",
            const=True,
        ),
        Option(
            "--tf-mode",
            "runtime.tf_mode",
            "TensorFlow's training step: custom (compiled), fit (Keras Model.fit) or eager (no tf.function; "
            "evaluation and prediction stay compiled) (recorded custom on other backends)",
            choices=TF_MODES,
        ),
        Option(
            "--epoch-loop",
            "runtime.epoch_loop",
            "TensorFlow's custom mode (only with --tf-mode custom): python (a call per step) or compiled (each epoch "
            "in one compiled loop; not with --jit-compile or --augment) (recorded python on other backends)",
            choices=EPOCH_LOOPS,
        ),
        Option(
            "--channels-last",
            "runtime.channels_last",
            "PyTorch: channels_last memory format (off, and recorded off, on other backends)",
            const=True,
        ),
        Option(
            "--precision",
            "runtime.precision",
            "float32, mixed_bfloat16, mixed_float16 (loss-scaled; GPU-targeted) or float64 (everything in double: the "
            "reference arithmetic, slow) (both backends)",
            choices=PRECISIONS,
        ),
        Option(
            "--tf32",
            "runtime.tf32",
            "on|off: TF32 matmuls/convolutions on NVIDIA GPUs, set explicitly in both backends (default off: strict "
            "float32; on: refused without --gpus-per-trial)",
            on_off,
        ),
        Option(
            "--cudnn-autotune",
            "runtime.cudnn_autotune",
            "on|off: time cuDNN's convolution algorithms and keep the fastest, set explicitly in both backends "
            "(default off: cuDNN's heuristics; TensorFlow's own default is on, torch's off; on: refused without "
            "--gpus-per-trial)",
            on_off,
        ),
    ),
)


def _add_overrides(parser: argparse.ArgumentParser, prefix: str = "", title: str | None = None) -> None:
    """The override options whose config path starts with ``prefix`` (all of them by default), in their groups, or
    in one group ``title`` (``xfbench model``, which has no suite for them to override)."""
    single = parser.add_argument_group(title) if title else None
    for group_title, options in OVERRIDE_OPTIONS:
        chosen = [o for o in options if o.path.startswith(prefix)]
        if chosen:
            group = single or parser.add_argument_group(group_title)
            for o in chosen:
                _add_option(group, o)


def _add_option(group: argparse._ArgumentGroup, o: Option) -> None:
    dest = PATH_PREFIX + o.path
    if o.const is not None:
        group.add_argument(o.flag, dest=dest, action="store_const", const=o.const, help=o.help)
    else:
        # the flag's name as metavar: argparse would show the internal dest (SET:OPTIMIZER.LR)
        metavar = None if o.choices else o.flag.removeprefix("--").replace("-", "_").upper()
        metavar = "{on,off}" if o.type is on_off else metavar
        group.add_argument(o.flag, dest=dest, type=o.type or str, choices=o.choices, metavar=metavar, help=o.help)


MODEL_OPTIONS_PATH = "model_options."


def model_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``xfbench model``'s model options (--hidden, --batchnorm, ...), as ModelOptions fields."""
    prefix = PATH_PREFIX + MODEL_OPTIONS_PATH
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


class _Once(argparse.Action):
    """--suite given twice with different values: the first was dropped without a word (`--suite smoke --suite
    quick` ran quick alone), as if a run could take several suites. (A later --model or --strategy overrides an
    earlier one, as options do: a command line built from a base and its changes.)"""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, flag: Any = None
    ) -> None:
        earlier = getattr(namespace, self.dest, None)
        if earlier is not None and earlier != value:
            parser.error(
                f"Expected one {flag} per command. Received: {flag} {earlier}, then {flag} {value}. To fix, give "
                "one, and run each in its own command (the pytest plugin runs several suites in one session)."
            )
        setattr(namespace, self.dest, value)


def _suite_help(command: str) -> str:
    """The suites ``command`` takes: `run` refuses a search suite, which `tune` searches; another needs --space."""
    searched = sorted(name for name, suite in SUITES.items() if suite.search.params)
    if command == "tune":
        return f"one of {sorted(SUITES)}: {', '.join(searched)} hold a search space, any other needs --space"
    plain = sorted(set(SUITES) - set(searched))
    return f"one of {plain} (run with no selection: {DEFAULT_SUITE}; {', '.join(searched)}: xfbench tune)"


def _add_selection(parser: argparse.ArgumentParser, command: str) -> None:
    what = parser.add_argument_group("what to run")
    what.add_argument("--suite", action=_Once, type=non_empty_name, help=_suite_help(command))
    what.add_argument("--strategy", type=non_empty_name, help="strategy name (with --model and --dataset)")
    what.add_argument(
        "--model",
        type=non_empty_name,
        help="zoo name, torchvision:NAME, keras:NAME, python:module:function or spec.json",
    )
    what.add_argument("--dataset", type=non_empty_name, help="dataset name (xfbench list datasets)")
    what.add_argument(
        "--backend",
        action="append",
        dest="backends",
        metavar="NAME",
        help="a backend (xfbench list); repeat for several (default: all)",
    )
    what.add_argument(
        "--seeds",
        type=positive_int,
        help="number of seeds (0..K-1), paired across backends (default: the suite's, else 1; run only: tune takes "
        "--final-seeds)",
    )


def _add_execution(parser: argparse.ArgumentParser) -> None:
    rt = parser.add_argument_group("execution")
    defaults = ExecutionOptions()
    rt.add_argument(
        "--cpus-per-trial",
        type=positive_int,
        help=f"CPUs (and threads) per trial (default {defaults.cpus_per_trial}; resume: as recorded)",
    )
    rt.add_argument(
        "--gpus-per-trial",
        type=gpu_share,
        help="GPUs per trial: a share of one GPU (0.5) up to one (default 0; resume: as recorded)",
    )
    rt.add_argument(
        "--max-concurrent",
        type=concurrency,
        help="at most this many trials at once, or auto: as many as the cores allow (default auto; speed_matrix, "
        "tune --asha and tune --search optuna: 1; resume: as recorded)",
    )
    rt.add_argument("--address", help=ADDRESS_HELP)
    rt.add_argument(
        "--max-failures",
        type=non_negative_int,
        help="retry a trial that raised or whose worker died up to N times (default 0; resume: as recorded)",
    )
    rt.add_argument(
        "--fresh-workers",
        action=argparse.BooleanOptionalAction,
        help="start a new worker process for every trial, or (--no-fresh-workers) reuse each backend's warm workers "
        "(default: reuse; resume: as recorded)",
    )
    rt.add_argument(
        "--results-dir", default="results", type=user_path, help="where run directories go (default ./results)"
    )
    rt.add_argument(
        "--data-dir",
        type=user_path,
        help="directory with dataset files (also $XFBENCH_DATA, user cache, /usr/share/datasets)",
    )
    rt.add_argument("--no-download", action="store_true", help="never download missing data")
    rt.add_argument("--run-id", help="name of the run directory (default: timestamp + label)")
    rt.add_argument("-v", "--verbose", action="store_true", help="show Ray and worker logs")
    rt.add_argument(
        "--ship-data",
        choices=SHIP_POLICIES,
        help="send datasets to workers through Ray's object store: auto (<= 256 MB on a cluster, <= 1 GB locally; "
        "default), always, never (resume: as recorded)",
    )
    rt.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="finish an interrupted run under --results-dir, or rerun a finished run's failed trials: "
        "finished trials are not re-run",
    )


def add_case_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """What to run and how: shared by run and tune (``command``)."""
    _add_selection(parser, command)
    _add_overrides(parser)
    _add_execution(parser)
    _add_output(parser)


OUTPUT_FORMATS = ("table", "md", "csv", "json")


def _add_reference(parser: Any, default: str) -> None:
    parser.add_argument(
        "--reference", choices=BACKENDS, help=f"the backend every other one is compared with (default: {default})"
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="table",
        help="end-of-run tables: table (fits the terminal's width), md (the tables as markdown), or for machines, "
        "numbers as numbers: csv (one row per case and backend, its statistics against the reference beside it) or "
        "json (the run and every summary table's rows)",
    )
    out.add_argument(
        "--no-report",
        dest="html_report",
        action="store_false",
        help="no report.html beside summary.md (its plots take a fraction of a second per case; "
        "xfbench report RUN draws it later)",
    )
    _add_reference(out, f"{REFERENCE_BACKEND}; with --resume, the run's own")


def _add_report_parsers(commands: Any) -> None:
    rep = commands.add_parser("report", help="one self-contained HTML page (plots also as PNG and SVG) of runs")
    rep.add_argument(
        "runs", nargs="+", type=non_empty, metavar="RUN_OR_DIR", help="run directories or ids, or a results directory"
    )
    rep.add_argument(
        "-o",
        "--output",
        type=user_file,
        help="the HTML file (default: report.html in the run; for several runs or a baseline, ./report.html)",
    )
    rep.add_argument(
        "--results-dir",
        default="results",
        type=user_path,
        help="where run ids and baseline names are looked up (default ./results)",
    )
    rep.add_argument(
        "--metric",
        choices=HISTORY_METRICS,
        help="the history plot's metric, for several runs or a folder of runs (default epoch_time_s)",
    )
    _add_reference(rep, f"the one the newest run compared with, {REFERENCE_BACKEND} for runs before it was recorded")
    add_threshold_options(rep.add_argument)  # the history's verdicts, as compare's
    exp = commands.add_parser("export", help="log a run's trials to MLflow (needs the mlflow extra)")
    exp.add_argument("run", type=non_empty, help="run directory, run id under --results-dir, or baseline name")
    exp.add_argument(
        "--mlflow", required=True, metavar="URI", help="tracking URI, e.g. sqlite:///mlflow.db or http://host:5000"
    )
    exp.add_argument("--experiment", default="xfbench", help="MLflow experiment name (default xfbench)")
    exp.add_argument(
        "--artifact-location",
        metavar="URI",
        help="where a new experiment keeps the run's files (s3://BUCKET/PATH, file:///shared/folder); needed for a "
        "database server's store (PostgreSQL, MySQL, SQL Server), where MLflow would use ./mlruns under the working "
        "directory; default beside a SQLite file, or the store's own",
    )
    exp.add_argument(
        "--replace",
        action="store_true",
        help="delete any earlier export of this run and export it again (needed where one differs from it: "
        "stopped, or the run resumed since; without it an unchanged one is left as it is, its parent run updated "
        "where the run has finished since)",
    )
    exp.add_argument(
        "--results-dir",
        default="results",
        type=user_path,
        help="where run ids and baseline names are looked up (default ./results)",
    )


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The search options. Each defaults to None (or nothing), so ``--resume`` can tell a given option, even at its
    default value, from one left out; SearchRequest and AshaSettings hold the defaults the help names."""
    search = parser.add_argument_group("search")
    search.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="PATH=KIND:ARGS",
        help="an option and its domain: lr=loguniform:1e-4,1e-1, batch_size=choice:32,64, epochs=int:2,20, "
        "dropout=uniform:0,0.5, hidden=choice:64,128/64 (repeat; adds to or replaces the suite's)",
    )
    search.add_argument(
        "--search",
        help=f"search algorithm: {list(SEARCH_ALGORITHMS)} (default random; optuna needs the optuna extra)",
    )
    search.add_argument(
        "--search-seed",
        type=non_negative_int,
        help="seed of the sampler: the same seed samples the same configs (default 0)",
    )
    search.add_argument(
        "--num-samples",
        type=positive_int,
        help="random/optuna: trials per backend (default: the suite's, else 8); "
        "grid: samples per grid point (default 1)",
    )
    search.add_argument("--metric", help="val_acc (maximised, the default) or val_loss (minimised), read at each epoch")
    search.add_argument("--asha", action="store_true", help="stop poor trials early with ASHA, separately per backend")
    search.add_argument(
        "--grace-period", type=positive_int, help="ASHA: epochs before a trial can be stopped (default 1)"
    )
    search.add_argument(
        "--reduction-factor", type=positive_int, help="ASHA: keep the best 1/N at each rung (default 3)"
    )
    search.add_argument(
        "--final-seeds",
        type=positive_int,
        help="seeds for re-running each backend's best config: 1..K, after the search's seed 0 (default 3)",
    )


# The destinations of add_search_arguments' options (each flag is its destination spelt --like-this).
SEARCH_OPTIONS = (
    "space",
    "search",
    "search_seed",
    "num_samples",
    "metric",
    "asha",
    "grace_period",
    "reduction_factor",
    "final_seeds",
)


def given_search_options(args: argparse.Namespace) -> list[str]:
    """The search options given on the command line (a value, even the default one; ``--space`` at least once)."""
    values = {f"--{name.replace('_', '-')}": getattr(args, name, None) for name in SEARCH_OPTIONS}
    # left out: None, no --space, no --asha (False); a seed of 0 is given
    return [flag for flag, value in values.items() if value is not None and value is not False and value != []]


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The given override options as config paths; the execution options that trials also record (threads,
    device) and the data directory join them."""
    given = {k[len(PATH_PREFIX) :]: v for k, v in vars(args).items() if k.startswith(PATH_PREFIX) and v is not None}
    if "schedule.piecewise" in given:
        given["schedule.boundaries"], given["schedule.values"] = given.pop("schedule.piecewise")
        given.setdefault("schedule.name", "piecewise")
    if args.cpus_per_trial is not None:
        given["runtime.threads"] = args.cpus_per_trial
    if args.gpus_per_trial is not None:
        given["runtime.device"] = "gpu" if args.gpus_per_trial > 0 else "cpu"
    if given.get("input.normalize") == "weights" and not getattr(args, "resume", None):  # a resume refuses it
        weighted = "transfer.pretrained" in given or "transfer.weights_file" in given or getattr(args, "suite", None)
        if not weighted:
            raise InputError(
                "Expected --pretrained or --weights with --normalize weights (the weight set's own normalisation, "
                "the default with them). Received: neither, so it would change nothing. To fix, drop --normalize "
                "weights, or give the weights."
            )
        del given["input.normalize"]  # the weight set decides (harness.pretrained), as by default
    if args.data_dir:
        given["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    return given


def override_flags(paths: Iterable[str]) -> list[str]:
    """The command-line flags that set these config paths (what :func:`overrides_from_args` returned), each once,
    in order: an error about given options names them as the user typed them."""
    flags = {option.path: option.flag for _, options in OVERRIDE_OPTIONS for option in options}
    flags |= {"schedule.boundaries": "--piecewise", "schedule.values": "--piecewise"}
    flags |= {"data_dir": "--data-dir", "runtime.threads": "--cpus-per-trial", "runtime.device": "--gpus-per-trial"}
    return list(dict.fromkeys(flags.get(path, path) for path in paths))


def selection_from_args(args: argparse.Namespace) -> Selection:
    backends = tuple(dict.fromkeys(args.backends)) if args.backends else Selection().backends
    return Selection(args.suite, args.strategy, args.model, args.dataset, backends, args.seeds)


def search_request_from_args(args: argparse.Namespace) -> SearchRequest:
    """The search the options ask for: each one left out takes SearchRequest's (or AshaSettings') default."""
    rungs = {"grace_period": args.grace_period, "reduction_factor": args.reduction_factor}
    given = {
        field: value
        for field, value in (
            ("algorithm", args.search),
            ("sampling_seed", args.search_seed),
            ("num_samples", args.num_samples),
            ("metric", args.metric),
            ("final_seeds", args.final_seeds),
        )
        if value is not None
    }
    unread = [f"--{k.replace('_', '-')} {v}" for k, v in rungs.items() if v is not None]
    if unread and not args.asha:
        raise InputError(
            f"Expected --asha with {' and '.join(unread)}: the rungs are ASHA's, and without it every trial runs "
            "all its epochs. Received: no --asha. To fix, add --asha, or drop them."
        )
    asha = AshaSettings(**{k: v for k, v in rungs.items() if v is not None}) if args.asha else None
    return SearchRequest(parse_space(args.space), asha=asha, **given)


def new_run_execution(args: argparse.Namespace) -> ExecutionOptions:
    """How a new run is scheduled: the options given, over its suite's own defaults (a speed suite runs one trial at
    a time: Suite.max_concurrent), over ExecutionOptions' defaults. A tune with --asha runs one trial at a time too:
    ASHA judges a trial at a rung against those that reached it first, and side by side which got there first was
    timing's, so the two backends (whose metrics agree epoch for epoch) stopped different samples. So does one with
    --search optuna: TPE suggests each sample from the results told by then, and side by side which samples had
    ended was timing's, so the two backends searched different points."""
    alone = 1 if getattr(args, "asha", False) or getattr(args, "search", None) == "optuna" else None
    defaults = ExecutionOptions(max_concurrent=suites_max_concurrent({args.suite} if args.suite else set()) or alone)
    return defaults.updated(given_execution(args))


def given_execution(args: argparse.Namespace) -> dict[str, Any]:
    """The execution options given on the command line (None: not given)."""
    names = ("cpus_per_trial", "gpus_per_trial", "address", "max_concurrent", "max_failures", "ship_data")
    given = {name: getattr(args, name) for name in names}
    return {**given, "fresh_workers": args.fresh_workers}


# What `xfbench list KIND` takes (plural, as the help names them; the singular too) -> the kind column of
# harness.reporting.catalogue_rows (a test keeps the two in step).
CATALOGUE_KINDS = {
    "suites": "suite",
    "strategies": "strategy",
    "models": "model",
    "datasets": "dataset",
    "backends": "backend",
    "optimizers": "optimizer",
    "initializers": "initializer",
}


def catalogue_kind(text: str) -> str:
    word = text.lower()
    if word in CATALOGUE_KINDS.values():
        return word
    if word in CATALOGUE_KINDS:
        return CATALOGUE_KINDS[word]
    raise argparse.ArgumentTypeError(
        f"expected a kind of the catalogue, one of {', '.join(CATALOGUE_KINDS)} (none: all of them), received "
        f"{text!r}. Give one of those, or leave KIND out to list them all"
    )


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument error is one line, as every other bad input's: what was expected and received, and where the
    options are listed (argparse alone prints the whole usage block before it). Sub-commands inherit the class. An
    option is spelled out whole: argparse's abbreviations read `--seed 42` as `--seeds 42` (84 trials, exit 0)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        message = expected_received(message)
        self.exit(2, f"{self.prog}: error: {message.rstrip('.')}. See `{self.prog} --help` for the options.\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but words left over are named against the sub-command that was given (argparse names
        them against the top level, so `xfbench list suites` pointed at `xfbench --help`)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            words = [w for d in ("command", "baseline_command", "weights_command") if (w := getattr(parsed, d, None))]
            prog = " ".join([self.prog, *words])
            hint = _closest_options(_parser_of(self, words), extras)
            them = "it" if len(extras) == 1 else "them"
            self.exit(2, f"{prog}: error: Expected only the options and arguments of `{prog}`. Received: "
                         f"{' '.join(extras)}, which it does not take. To fix, drop or correct {them}.{hint} See "
                         f"`{prog} --help` for the options.\n")  # fmt: skip
        return parsed


def _parser_of(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """The sub-command's parser the ``words`` (``run``; ``baseline save``) lead to from ``parser``."""
    for word in words:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands or word not in commands[0].choices:
            break
        parser = commands[0].choices[word]
    return parser


def _closest_options(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """ " Did you mean --seeds?" for a misspelt or shortened option (abbreviations are not taken: --seed 42 ran 42
    seeds), with what --seed most likely meant."""
    known = [s for s in parser._option_string_actions if s.startswith("--")]
    said = []
    for word in (e.partition("=")[0] for e in extras if e.startswith("--")):
        # the options it shortens first (what argparse's abbreviations took it for), then the closest spellings
        longer = sorted(k for k in known if k.startswith(word) and k != word)
        close = (longer + [m for m in difflib.get_close_matches(word, known, n=2, cutoff=0.75) if m not in longer])[:3]
        if close:
            said.append(f"{word}: did you mean {' or '.join(close)}?")
    # a suite named as `xfbench run quick` names it: the commands take one by --suite alone
    said += [f"{word}: did you mean --suite {word}?" for word in extras if word in SUITES and "--suite" in known]
    if any(e.partition("=")[0] == "--seed" for e in extras):
        said.append("(--seeds K runs K seeds; a search's sampling seed is --search-seed)")
    return (" " + " ".join(said)) if said else ""


def _add_model_parser(commands: Any) -> None:
    mdl = commands.add_parser("model", help="a model's per-layer table: output shapes, parameters, MACs, totals")
    mdl.add_argument(
        "name", help="a zoo model (xfbench list), torchvision:NAME, keras:NAME, python:module:function or a spec .json"
    )
    mdl.add_argument("--input-size", type=positive_int, help="square input side (default: the model's natural size)")
    mdl.add_argument(
        "--input-channels",
        "--channels",  # its first name, kept
        dest="channels",
        type=positive_int,
        help="input channels, as xfbench run takes them (default: the natural input's)",
    )
    mdl.add_argument(
        "--classes",
        type=positive_int,
        help="output classes (default: the model's own task's: 10 for mlp, convnet3, cnn_small and resnet20, "
        "1000 for the ImageNet networks and imports; a spec file: its own)",
    )
    # the network `xfbench run` would train with the same options: --hidden, --batchnorm, --dropout, ...
    _add_overrides(mdl, MODEL_OPTIONS_PATH, "model options (as xfbench run takes them)")
    mdl.add_argument(
        "--results-dir",
        default="results",
        type=user_path,
        help="an imported model's conversion is cached in its _cache (as a run's)",
    )
    mdl.add_argument("--json", action="store_true", help="totals as top-level params / forward_macs, rows as layers")
    mdl.add_argument("--export-spec", type=user_file, metavar="FILE", help="also write the neutral spec as JSON")


def _add_baseline_parser(commands: Any) -> None:
    base = commands.add_parser("baseline", help="save or list baselines (results/baselines/<machine>/<name>)")
    base_cmds = base.add_subparsers(dest="baseline_command", required=True, metavar="{save,list}")
    save = base_cmds.add_parser("save", help="store a run as a named baseline")
    save.add_argument(
        "name",
        help="letters, digits, '.', '_' and '-', starting with a letter or digit; a name saved before is replaced",
    )
    save.add_argument("--run", type=non_empty, help="run directory or run id (default: the newest run)")
    save.add_argument(
        "--results-dir", default="results", type=user_path, help="where runs are and baselines go (default ./results)"
    )
    lst = base_cmds.add_parser("list", help="list saved baselines")
    lst.add_argument(
        "--results-dir", default="results", type=user_path, help="where baselines were saved (default ./results)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="xfbench", description="Compare PyTorch and TensorFlow on identical training strategies."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lst = commands.add_parser("list", help="suites, strategies, models, datasets, backends, optimizers, initializers")
    lst.add_argument(
        "kinds", nargs="*", type=catalogue_kind, metavar="KIND", help=f"show these only: {', '.join(CATALOGUE_KINDS)}"
    )

    run = commands.add_parser("run", help="run a suite or one strategy/model/dataset case on one or both backends")
    add_case_arguments(run, "run")
    tune = commands.add_parser(
        "tune", help="search hyperparameters per backend with Ray Tune, then re-run each backend's best with K seeds"
    )
    add_case_arguments(tune, "tune")
    add_search_arguments(tune)

    _add_compare_parser(commands)
    _add_report_parsers(commands)

    _add_baseline_parser(commands)
    _add_model_parser(commands)

    wts = commands.add_parser("weights", help="pretrained weights: fetch a zoo's sets into the cache, list the cache")
    wts_cmds = wts.add_subparsers(dest="weights_command", required=True, metavar="{fetch,list}")
    fetch = wts_cmds.add_parser("fetch", help="download through the framework's own mechanism ($XFBENCH_WEIGHTS)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="torchvision:NAME[:WEIGHTS] or keras:NAME[:imagenet]")
    wts_list = wts_cmds.add_parser("list", help="weight files in the cache, with the set each was fetched as")
    wts_list.add_argument(
        "--verify",
        action="store_true",
        help="also read each torch hub file whole and check it against the sha256 prefix in its name (runs check "
        "the files they use); exits 1 when a file is flagged",
    )

    hist = commands.add_parser("history", help="runs so far and a metric's trend per case")
    hist.add_argument("--results-dir", default="results", type=user_path, help="the runs to list (default ./results)")
    hist.add_argument(
        "--metric",
        default="epoch_time_s",
        choices=HISTORY_METRICS,
        help="epoch_time_s (default), samples_per_s or test_acc",
    )
    hist.add_argument("--case", help="only cases whose name contains this text")
    hist.add_argument("--last", type=positive_int, default=10, help="how many recent runs (default 10)")
    _describe_commands(parser)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """Each command's own --help opens with the line ``xfbench --help`` lists it by (argparse shows a command's
    ``help`` only in its parent's list), down through nested commands (baseline save)."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                command = action.choices[listed.dest]
                command.description = command.description or listed.help
                _describe_commands(command)


def _add_compare_parser(commands: Any) -> None:
    cmp = commands.add_parser("compare", help="regressions and improvements between two runs or baselines")
    cmp.add_argument("base", type=non_empty, help="run directory, run id under --results-dir, or baseline name")
    cmp.add_argument("new", type=non_empty, help="run directory, run id under --results-dir, or baseline name")
    cmp.add_argument(
        "--results-dir",
        default="results",
        type=user_path,
        help="where run ids and baseline names are looked up (default ./results)",
    )
    add_threshold_options(cmp.add_argument)
    cmp.add_argument("--markdown", type=user_path, help="also write the comparison as markdown to this file")
    cmp.add_argument("--fail-on-regression", action="store_true", help="exit 1 if any case regressed")
