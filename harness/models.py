"""The model zoo: builders that turn (input shape, class count, options) into a ModelSpec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from harness.errors import InputError, closest_text
from harness.shapes import LayerShapeError, infer_shapes
from harness.spec import (
    ACTIVATIONS,
    BN_RUNNING_VARIANCES,
    DROPOUT_KINDS,
    Activation,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ModelSpec,
    same_padding,
    with_names_of,
)
from harness.zoo import ZOO, ZooModel
from harness.zoo.graph import GraphBuilder


@dataclass(frozen=True)
class ModelOptions:
    """Options a builder may use; builders ignore what does not apply to them."""

    hidden: tuple[int, ...] = (4000,)  # mlp hidden sizes (the notebooks' two-layer FC)
    activation: str = "relu"
    activation_alpha: float | None = None  # leaky_relu slope / elu alpha (explicit; the defaults differ)
    # False: no weight layer has a bias, the output layer's included (the notebooks' low-level TwoLayerFC: x.mm(w1),
    # relu, .mm(w2)); "before" BatchNorm drops only the biases it would cancel
    use_bias: bool = True
    dropout: float | None = None  # overrides every dropout rate when set; for mlp, adds dropout after each hidden layer
    dropout_kind: str = "standard"  # "standard" | "alpha"
    batchnorm: str = "none"  # "none" | "before" (conv/dense, BN, activation; no bias) | "after" (activation, then BN)
    bn_decay: float = 0.9
    bn_epsilon: float = 1e-5
    # Which variance BatchNorm's running estimate tracks: "unbiased" (PyTorch's, the default in both backends)
    # or "biased" (Keras'); the batch itself is always normalised with the biased variance.
    bn_running_variance: str = "unbiased"
    # The zoo's families scale their channel counts and hidden dense widths by this (harness.zoo.graph.scaled).
    width_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not self.width_multiplier > 0:
            raise InputError(
                f"Expected width_multiplier > 0. Received: {self.width_multiplier!r}. To fix, give a positive "
                "multiplier of the channel counts (--width-multiplier 0.5 halves them)."
            )
        if self.batchnorm not in ("none", "before", "after"):
            raise InputError(
                f"Expected batchnorm 'none', 'before' or 'after'. Received: {self.batchnorm!r}. To fix, give one of "
                "those (--batchnorm)."
            )
        if self.bn_running_variance not in BN_RUNNING_VARIANCES:
            raise InputError(
                f"Expected bn_running_variance in {list(BN_RUNNING_VARIANCES)}. Received: "
                f"{self.bn_running_variance!r}. To fix, give one of those (--bn-variance)."
            )
        if self.dropout_kind not in DROPOUT_KINDS:
            raise InputError(
                f"Expected dropout_kind 'standard' or 'alpha'. Received: {self.dropout_kind!r}. To fix, give one of "
                "those (--alpha-dropout gives 'alpha')."
            )
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise InputError(
                f"Expected 0 <= dropout < 1 (--dropout, a rate of units dropped). Received: {self.dropout}. To fix, "
                "give a rate in [0, 1), such as 0.5."
            )
        if self.activation not in ACTIVATIONS:
            raise InputError(
                f"Expected --activation to be one of {list(ACTIVATIONS)}. Received: {self.activation!r}. To fix, "
                f"{closest_text(self.activation, list(ACTIVATIONS), '--activation')}pick one of those."
            )
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise InputError(
                f"Expected positive hidden sizes. Received: hidden={self.hidden}. To fix, give one or more widths of "
                "1 or more (--hidden 128,64)."
            )


def _unit(o: ModelOptions, weight_layer: Conv2D | Dense, act_name: str, group: str) -> list[Layer]:
    """A conv/dense layer with its activation, and BatchNorm before or after the activation when asked.

    With BatchNorm before the activation the layer drops its bias: BN's beta makes it redundant.
    """
    act = Activation(name=act_name, group=group, kind=o.activation, alpha=o.activation_alpha)
    if o.batchnorm == "none":
        return [weight_layer, act]
    bn = BatchNorm(
        name=f"{weight_layer.name}_bn",
        group=group,
        decay=o.bn_decay,
        epsilon=o.bn_epsilon,
        running_variance=o.bn_running_variance,
    )
    if o.batchnorm == "before":
        return [replace(weight_layer, use_bias=False), bn, act]
    return [weight_layer, act, bn]


def _mlp(input_shape: tuple[int, ...], num_classes: int, o: ModelOptions) -> list[Layer]:
    layers: list[Layer] = []
    if len(input_shape) > 1:
        layers.append(Flatten(name="flatten", group="features"))
    for i, units in enumerate(o.hidden, start=1):
        layers += _unit(
            o, Dense(name=f"fc{i}", group="features", units=units, use_bias=o.use_bias), f"act{i}", "features"
        )
        if o.dropout:
            layers.append(Dropout(name=f"drop{i}", group="features", rate=o.dropout, kind=o.dropout_kind))
    layers.append(Dense(name="logits", group="classifier", units=num_classes, use_bias=o.use_bias))
    return layers


def _convnet3(input_shape: tuple[int, ...], num_classes: int, o: ModelOptions) -> list[Layer]:
    # The notebooks' ThreeLayerConvNet: conv 32 5x5 pad 2, ReLU, conv 16 3x3 pad 1, ReLU, dense.
    return [
        *_unit(
            o,
            Conv2D(
                name="conv1",
                group="features",
                filters=32,
                kernel_size=(5, 5),
                padding=same_padding((5, 5)),
                use_bias=o.use_bias,
            ),
            "act1",
            "features",
        ),
        *_unit(
            o,
            Conv2D(
                name="conv2",
                group="features",
                filters=16,
                kernel_size=(3, 3),
                padding=same_padding((3, 3)),
                use_bias=o.use_bias,
            ),
            "act2",
            "features",
        ),
        Flatten(name="flatten", group="features"),
        Dense(name="logits", group="classifier", units=num_classes, use_bias=o.use_bias),
    ]


def _cnn_small(input_shape: tuple[int, ...], num_classes: int, o: ModelOptions) -> list[Layer]:
    # The Keras transfer example: "feature" layers | "classification" layers.
    return [
        *_unit(
            o,
            Conv2D(name="conv1", group="features", filters=32, kernel_size=(3, 3), use_bias=o.use_bias),
            "act1",
            "features",
        ),
        *_unit(
            o,
            Conv2D(name="conv2", group="features", filters=32, kernel_size=(3, 3), use_bias=o.use_bias),
            "act2",
            "features",
        ),
        MaxPool2D(name="pool", group="features", pool_size=(2, 2)),
        Dropout(name="drop1", group="features", rate=0.25, kind=o.dropout_kind),
        Flatten(name="flatten", group="features"),
        *_unit(o, Dense(name="fc1", group="classifier", units=128, use_bias=o.use_bias), "act3", "classifier"),
        Dropout(name="drop2", group="classifier", rate=0.5, kind=o.dropout_kind),
        Dense(name="logits", group="classifier", units=num_classes, use_bias=o.use_bias),
    ]


Builder = Callable[[tuple[int, ...], int, ModelOptions], list[Layer]]


@dataclass(frozen=True)
class ModelEntry:
    build: Builder
    description: str
    natural_input: tuple[int, ...]  # the input shape ``xfbench model`` shows it at by default
    options: frozenset[str]  # the ModelOptions fields it honours; build_spec rejects others set to non-defaults
    natural_classes: int = 10  # the classes ``xfbench model`` shows it with by default (digits' for the small three)


_ALL_OPTIONS = frozenset(f.name for f in fields(ModelOptions))
_MLP = _ALL_OPTIONS - {"width_multiplier"}
_CNN_SMALL = _MLP - {"hidden"}  # its dense layer is 128 wide (--dropout sets both rates: build_spec)
_CONVNET3 = _CNN_SMALL - {"dropout", "dropout_kind"}  # no dense hidden layer, no dropout
_ALPHA_ACTIVATIONS = ("leaky_relu", "elu")  # the activations activation_alpha parameterises
# Options that define a kind of layer a model may or may not have (what check_options_apply accepts for a whole
# suite): the kind each acts on. The preflight refuses one that meets no such layer in any network of a run.
LAYER_SETTINGS: dict[str, type[Layer]] = {
    "bn_decay": BatchNorm,
    "bn_epsilon": BatchNorm,
    "bn_running_variance": BatchNorm,
    "dropout_kind": Dropout,
}
# What an error says a network lacks where such a setting meets none of those layers, and how to add them.
LAYER_HINTS: dict[type[Layer], str] = {
    BatchNorm: "BatchNorm layer (--batchnorm before|after adds them to mlp, convnet3 and cnn_small)",
    Dropout: "dropout layer (--dropout RATE adds them to mlp)",
}
DIGITS_SHAPE = (8, 8, 1)


def _zoo_builder(model: ZooModel) -> Builder:
    def build(input_shape: tuple[int, ...], num_classes: int, o: ModelOptions) -> list[Layer]:
        graph = GraphBuilder(bn_decay=o.bn_decay, bn_epsilon=o.bn_epsilon, bn_running_variance=o.bn_running_variance)
        return model.build(graph, num_classes, o.width_multiplier, o.dropout_kind)

    return build


# The three small models of the notebooks, sized for the embedded digits; they honour the options their layers have.
CORE_MODELS = ("mlp", "convnet3", "cnn_small")

MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(
        _mlp, "flatten -> dense(hidden...) + activation -> dense(classes); default hidden (4000,)", DIGITS_SHAPE, _MLP
    ),
    "convnet3": ModelEntry(
        _convnet3, "ThreeLayerConvNet: conv32 5x5 p2, ReLU, conv16 3x3 p1, ReLU, dense", DIGITS_SHAPE, _CONVNET3
    ),
    "cnn_small": ModelEntry(
        _cnn_small,
        "conv32 3x3, ReLU, conv32 3x3, ReLU, maxpool2, dropout .25 | dense128, ReLU, dropout .5, dense",
        DIGITS_SHAPE,
        _CNN_SMALL,
    ),
    **{
        name: ModelEntry(_zoo_builder(z), z.description, z.natural_input, z.options, z.natural_classes)
        for name, z in ZOO.items()
    },
}


def changed_options(options: ModelOptions) -> dict[str, Any]:
    """The options set away from their defaults, by field name."""
    defaults = ModelOptions()
    return {
        f.name: getattr(options, f.name)
        for f in fields(options)
        if getattr(options, f.name) != getattr(defaults, f.name)
    }


# The command-line flag of each option a user can set (harness.cli_options; tests/test_cli.py keeps the two in step),
# so an error names options as they were typed. The others (bn_decay, bn_epsilon, use_bias) only a suite or a search
# sets, and an error names them by field.
OPTION_FLAGS: dict[str, str] = {
    "hidden": "--hidden",
    "activation": "--activation",
    "activation_alpha": "--activation-alpha",
    "dropout": "--dropout",
    "dropout_kind": "--alpha-dropout",
    "batchnorm": "--batchnorm",
    "bn_running_variance": "--bn-variance",
    "width_multiplier": "--width-multiplier",
}


def option_as_given(option: str, value: Any) -> str:
    """An option as the user set it: its flag and value (--alpha-dropout takes none), else field=value."""
    if option not in OPTION_FLAGS:
        return f"{option}={value!r}"
    if option == "dropout_kind":
        return OPTION_FLAGS[option]
    shown = (
        ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else value
    )
    return f"{OPTION_FLAGS[option]} {shown}"


def check_options_apply(name: str, options: ModelOptions) -> None:
    """Raise when an option is set that model ``name`` would ignore: a result must not claim what did not happen.
    The activation's alpha applies to leaky_relu and elu only. BatchNorm's settings and the dropout kind are
    definitions for whatever BatchNorm or dropout a model has (a run sets them for a whole suite), so a model
    that has such layers accepts them whether or not these settings add any."""
    takes = MODELS[name].options
    honoured = set(takes)
    if options.activation not in _ALPHA_ACTIVATIONS:
        honoured.discard("activation_alpha")
    ignored = {k: v for k, v in changed_options(options).items() if k not in honoured}
    if ignored:
        flags = sorted(OPTION_FLAGS[option] for option in takes if option in OPTION_FLAGS)
        alpha = "; --activation-alpha with leaky_relu or elu only" if "activation_alpha" in takes else ""
        raise InputError(
            f"Expected only options that model {name!r} uses ({', '.join(flags) or 'none'}{alpha}). "
            f"Received: {', '.join(option_as_given(k, v) for k, v in ignored.items())}. "
            "To fix, drop them, or pick a model or setting they apply to."
        )


def build_spec(
    name: str, input_shape: tuple[int, ...], num_classes: int, options: ModelOptions | None = None
) -> ModelSpec:
    if name not in MODELS:
        raise InputError(
            f"Expected a model name. Received: model={name!r}. To fix, give one of the zoo's: {sorted(MODELS)}."
        )
    opts = options or ModelOptions()
    check_options_apply(name, opts)
    spec = ModelSpec(
        name=name,
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        layers=tuple(MODELS[name].build(tuple(input_shape), num_classes, opts)),
    )
    if opts.dropout is not None:
        spec = spec.with_dropout_rate(opts.dropout)
    try:
        infer_shapes(spec)  # fail here, with the layer named, if the input is too small for the model
    except InputError as exc:
        natural = MODELS[name].natural_input
        smallest = _smallest_square_input(name, tuple(input_shape), num_classes, opts)
        resize = f"--input-size {smallest} or more" if smallest else "--input-size"
        fault = exc.fault if isinstance(exc, LayerShapeError) else exc  # the spec's own fix is no user's to follow
        raise InputError(
            f"{fault} To fix, resize the images ({resize}): model {name!r} is designed for {natural[0]}x{natural[1]} "
            "inputs; or pick a model for small inputs."
        ) from None
    return spec


def _fits(name: str, input_shape: tuple[int, ...], num_classes: int, opts: ModelOptions) -> bool:
    layers = tuple(MODELS[name].build(input_shape, num_classes, opts))
    try:
        infer_shapes(ModelSpec(name=name, input_shape=input_shape, num_classes=num_classes, layers=layers))
    except InputError:
        return False
    return True


def _smallest_square_input(name: str, too_small: tuple[int, ...], num_classes: int, opts: ModelOptions) -> int | None:
    """The smallest square size (``too_small``'s channels) up to the model's design size that ``name`` takes, or
    None where that size does not fit either. Bisection: a conv's or pool's output, floor((s + 2p - k) / stride) + 1,
    never shrinks as its input grows, so the sizes that fit are all those from some size on."""
    if len(too_small) != 3:
        return None
    channels = too_small[-1]
    low, high = max(too_small[:2]) + 1, max(MODELS[name].natural_input[:2])
    if low > high or not _fits(name, (high, high, channels), num_classes, opts):
        return None
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if _fits(name, (middle, middle, channels), num_classes, opts) else (middle + 1, high)
    return low


def as_zoo_twin(model: str, options: Mapping[str, Any], spec: ModelSpec) -> tuple[ModelSpec, dict[str, str]]:
    """``spec``, a network converted from a framework's weights for --model ``model``; for a zoo name (a torchvision
    twin, harness.weights_fit) with the zoo spec's layer names and groups, matched layer by layer
    (harness.spec.with_names_of), so that the trial runs the network the preflight checked --freeze-groups and
    --feature-layer against; with the layer names that changed (converted -> zoo). ``options``: the trial's model
    options as a dict (JSON's lists allowed). Another --model (torchvision:NAME, python:...) keeps its converted
    names and groups. InputError where the structure is not the zoo's."""
    if model not in ZOO:
        return spec, {}
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    opts = ModelOptions(**given)
    zoo = build_spec(model, spec.input_shape, spec.num_classes, opts)
    try:
        return with_names_of(spec, zoo)
    except ValueError as exc:
        raise InputError(
            f"Expected the network converted from the weights for --model {model} to be xfbench's {model} layer by "
            f'layer, so that it takes the zoo\'s layer names and groups (docs/zoo.md, "Groups"). Received: another '
            f"structure, parting at {exc} (the weights' framework builds another {model}, e.g. a torchvision version "
            f"whose architecture changed). To fix, pass --model torchvision:NAME instead (its groups are "
            "torchvision's top-level modules), or install the torchvision version pyproject.toml pins."
        ) from None
