"""Whether --pretrained / --weights can serve a trial at all, judged from the command line alone: the strategy
reads them, the source framework can build --model's architecture, the width is one that architecture has.

The preflight asks before it looks for the weights in the weights home, so an offline user is never told to fetch
weights for a run that would then be refused; the weights workers raise the same errors (these functions), so the
wording is one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.backbone import NEEDS_BACKBONE
from harness.backend import importer_backends
from harness.config import TrialConfig
from harness.errors import InputError
from harness.models import OPTION_FLAGS, changed_options, option_as_given
from harness.zoo import ZOO

if TYPE_CHECKING:  # harness.pretrained imports this module
    from harness.pretrained import WeightsRef

# Zoo names whose architecture at width 1 is torchvision's, layer names and all (harness.zoo), so torchvision
# builds them for its weights. Not 'alexnet' (the lessons' AlexNet, another network than torchvision's) nor
# 'resnet20' (torchvision has no CIFAR ResNet).
TORCHVISION_TWINS: dict[str, str] = {
    "alexnet_tv": "alexnet",
    **{name: name for name in ZOO if name.startswith(("vgg", "resnet")) and name != "resnet20"},
    "mobilenet_v2": "mobilenet_v2",
    "densenet121": "densenet121",
}
WIDTH_IN_TORCHVISION = "mobilenet_v2"  # the one torchvision architecture with a width (width_mult)


def check_strategy_reads_weights(strategy: str) -> None:
    if strategy not in NEEDS_BACKBONE:
        raise InputError(
            f"Expected a strategy that starts from a backbone ({', '.join(NEEDS_BACKBONE)}) with --pretrained or "
            f"--weights. Received: strategy={strategy!r}, which trains from the initial weights. To fix, drop "
            "--pretrained/--weights, or pick one of those strategies."
        )


def torchvision_name(model: str) -> str | None:
    """The torchvision architecture --model names for torch weights (None: a user's python: factory); whether a
    torchvision:NAME exists is the torch worker's to say."""
    kind, _, rest = model.partition(":")
    if kind == "python":
        return None
    if kind == "torchvision" and rest:
        return rest
    if model in TORCHVISION_TWINS:
        return TORCHVISION_TWINS[model]
    raise no_torch_architecture(model)


def no_torch_architecture(model: str) -> InputError:
    return InputError(
        f"Expected --model torchvision:NAME, a zoo name with a torchvision twin ({', '.join(TORCHVISION_TWINS)}) "
        f"or python:module:function for torch weights. Received: --model {model}. To fix, pick the model the "
        "file was saved from: one of those names (the lessons' alexnet is not torchvision's: alexnet_tv is), or "
        "torchvision:NAME."
    )


def check_torchvision_width(name: str, width: float) -> None:
    if width != 1.0 and name != WIDTH_IN_TORCHVISION:
        raise InputError(
            f"Expected --width-multiplier 1 with torch weights for torchvision's {name} (only "
            f"{WIDTH_IN_TORCHVISION} has a width). Received: --width-multiplier {width:g}. To fix, drop "
            f"--width-multiplier, or pick --model {WIDTH_IN_TORCHVISION}."
        )


def keras_name(model: str) -> str:
    kind, _, name = model.partition(":")
    if kind != "keras" or not name:
        own = (
            " A Keras weight file is read into a keras.applications architecture only: your own Keras model "
            "(python:) cannot start from one (a torch nn.Module factory can, from a .pth or .safetensors)"
            if kind == "python"
            else ""
        )
        raise InputError(
            f"Expected --model keras:NAME for Keras weights. Received: --model {model}.{own} To fix, pass the "
            "Keras application the file was saved from, e.g. --model keras:MobileNetV2."
        )
    return name


def check_weights_fit(trial: TrialConfig, ref: WeightsRef) -> None:
    """Refuse a trial its weights cannot serve; ``ref``: the weights (their ``source_backend`` is the backend whose
    framework reads them; a neutral .npz: none, any spec takes it). A zoo's weight set must be of --model's
    architecture, at the width the zoo publishes (checked here, before the weights home is searched: refused after a
    fetch, by the tensors or by Keras' load, they sent an offline user to download them for nothing)."""
    check_strategy_reads_weights(trial.strategy)
    reader = ref.source_backend
    importers = importer_backends()  # the backend names live in the registry alone
    if reader == importers["torchvision"]:
        name = torchvision_name(trial.model)
        if name is not None:
            check_torchvision_width(name, trial.model_options.width_multiplier)
            if ref.kind != "file":
                _check_torchvision_set_fits(trial, name, ref)
    elif reader == importers["keras"]:
        name = keras_name(trial.model)
        if ref.kind != "file" and name != ref.name:
            raise InputError(
                f"Expected --model keras:{ref.name}, the architecture of the weights {ref.label}. Received: --model "
                f"{trial.model}. To fix, pass --model keras:{ref.name}, or --pretrained keras:{name}."
            )
    check_options_honoured(trial, reader)


def _check_torchvision_set_fits(trial: TrialConfig, name: str, ref: WeightsRef) -> None:
    """A torchvision weight set is of --model's torchvision architecture (``name``), at width 1: the only width
    torchvision publishes weights for."""
    if name != ref.name:
        twins = [zoo for zoo, twin in TORCHVISION_TWINS.items() if twin == ref.name]
        models = " or ".join([*twins, f"torchvision:{ref.name}"])
        raise InputError(
            f"Expected --model to be the architecture of the weights {ref.label} (torchvision's {ref.name}). "
            f"Received: --model {trial.model} (torchvision's {name}). To fix, pass --model {models}, or "
            f"--pretrained torchvision:{name}."
        )
    width = trial.model_options.width_multiplier
    if width != 1.0:
        raise InputError(
            f"Expected --width-multiplier 1 with the weights {ref.label}: torchvision publishes {ref.name}'s "
            f"weights at width 1 only. Received: --width-multiplier {width:g}. To fix, drop --width-multiplier, or "
            "start from a file of your own at that width (--weights FILE)."
        )


def honoured_options(reader: str) -> frozenset[str] | None:
    """The model options a network converted from weights ``reader`` reads is built with (None: every one). A
    framework's file is rebuilt as its own architecture: torchvision's module takes a width (mobilenet_v2's
    width_mult) and nothing else, a Keras application nothing; xfbench's neutral .npz is checked against --model's
    spec, built with every option."""
    importers = importer_backends()
    if reader == importers["torchvision"]:
        return frozenset({"width_multiplier"})
    if reader == importers["keras"]:
        return frozenset()
    return None


def check_options_honoured(trial: TrialConfig, reader: str) -> None:
    """Refuse a model option the network converted from the weights would not have: the converted spec keeps the
    file's own dropout and BatchNorm, so the option would be recorded in config_json, yet change nothing."""
    honoured = honoured_options(reader)
    changed = changed_options(trial.model_options)
    ignored = {k: v for k, v in changed.items() if honoured is not None and k not in honoured}
    if not ignored:
        return
    allowed = f"but {', '.join(OPTION_FLAGS[k] for k in sorted(honoured))} " if honoured else ""
    framework = "torchvision" if reader == importer_backends()["torchvision"] else "Keras"
    it = "them" if len(ignored) > 1 else "it"
    raise InputError(
        f"Expected no model options {allowed}with {framework} weights: the network is built as the file's "
        f"architecture ({trial.model}) defines it, dropout and BatchNorm included. Received: "
        f"{', '.join(option_as_given(k, v) for k, v in ignored.items())}, which it would not apply. To fix, drop "
        f"{it}, or train the backbone in xfbench (no --pretrained/--weights) to set {it}."
    )


def check_searched_options(trial: TrialConfig, searched: Iterable[str]) -> None:
    """Refuse a search that varies model options of a trial that starts from --pretrained / --weights: its weights
    are converted once, before Ray starts, for the base's options (the conversion is keyed by them), so a sample
    with others would find no converted weights, and a framework's file would not apply them anyway."""
    if not (trial.transfer.pretrained or trial.transfer.weights_file):
        return
    varied = [path for path in searched if path.startswith("model_options.")]
    if varied:
        raise InputError(
            f"Expected a search space without model options for {trial.case_id}, which starts from the weights "
            f"{trial.transfer.weights_file or trial.transfer.pretrained} (converted once, for its own options). "
            f"Received: {', '.join(varied)} in --space. To fix, drop {'them' if len(varied) > 1 else 'it'} from the "
            "space, or set the option once for the run (where the weights' network applies it)."
        )
