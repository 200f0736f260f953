"""``xfbench model``: a model's per-layer table (output shape, parameters, MACs) with totals, from its spec alone,
like torchinfo.summary in the PyTorch lesson but framework-free; as text or JSON, and the spec exported."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.model_cost import ModelCost, model_cost
from harness.model_import import check_python_module, imported_model, parse_model_ref, read_spec_file
from harness.model_import import model_spec as imported_spec
from harness.models import LAYER_HINTS, LAYER_SETTINGS, MODELS, ModelOptions, changed_options
from harness.spec import Dropout, ModelSpec, spec_to_dict

IMAGENET_INPUT = (224, 224, 3)  # what a torchvision: or keras: model is shown at by default
IMAGENET_CLASSES = 1000  # and with how many classes


@dataclass(frozen=True)
class ModelRequest:
    name: str  # any --model form: a zoo name, torchvision:NAME, keras:NAME, python:module:function, a spec .json
    input_size: int | None = None  # square side; None: the model's natural input
    channels: int | None = None  # None: the natural input's channels
    classes: int | None = None  # None: the model's own (natural_classes)
    options: ModelOptions = ModelOptions()
    cache_dir: Path | None = None  # where an imported model's conversion is cached (a run's <results-dir>/_cache)

    def input_shape(self) -> tuple[int, ...]:
        """The input the model is shown at: the size and channels asked for, else its natural input (ImageNet's
        for a framework's model); a user's factory has none, so it needs both."""
        ref = parse_model_ref(self.name)
        if ref.kind == "python":
            check_python_module(ref)  # a module that is not there is said first: no input size would fix it
        if ref.kind == "python" and (self.input_size is None or self.channels is None):
            raise InputError(
                f"Expected --input-size and --input-channels for {self.name}: xfbench cannot tell which input a user's "
                f"model takes. Received: input_size={self.input_size}, channels={self.channels}. To fix, add "
                "--input-size N --input-channels C for the input the model is built for."
            )
        natural = MODELS[self.name].natural_input if ref.kind == "zoo" else IMAGENET_INPUT
        if len(natural) == 1:
            return natural
        side = self.input_size or natural[0]
        return (side, side, self.channels or natural[-1])

    def natural_classes(self) -> int | None:
        """The classes the model is shown with unless --classes says: a zoo model's own task's (10 for the digits
        models and resnet20), ImageNet's 1000 for a framework's model; None for a user's factory, called with its
        own default num_classes (harness.import_worker: 1000 where num_classes has no default). A user's model was
        shown with 1000 classes whatever its factory's default."""
        kind = parse_model_ref(self.name).kind
        if kind == "zoo":
            return MODELS[self.name].natural_classes
        return None if kind == "python" else IMAGENET_CLASSES


def model_spec(request: ModelRequest) -> ModelSpec:
    """The spec of any --model form, at the requested input and classes; an imported model is converted in a
    process of its framework (cached under ``request.cache_dir``), as a run's preflight converts it."""
    ref = parse_model_ref(request.name)
    if ref.kind == "spec":
        asked = {"--input-size": request.input_size, "--input-channels": request.channels, "--classes": request.classes}
        given = {flag: value for flag, value in asked.items() if value is not None}
        if given:
            raise InputError(
                f"Expected no {', '.join(given)} with a spec file: it fixes its own input shape and classes. "
                f"Received: {given}. To fix, drop them, or export a spec for the shape you want."
            )
        spec = read_spec_file(ref)
        return imported_spec(request.name, spec.input_shape, spec.num_classes, request.options, request.cache_dir)
    shape = request.input_shape()
    classes = request.classes if request.classes is not None else request.natural_classes()
    if classes is None and request.options == ModelOptions() and request.cache_dir:
        # A user's factory builds its own class count (its num_classes default, or none it takes): shown as it is,
        # since no --classes asked for another (a run still needs the task's count: its preflight says so).
        spec, _ = imported_model(ref, shape, None, Path(request.cache_dir))
        if tuple(spec.input_shape) == shape:
            return spec
        classes = spec.num_classes
    # what remains of None (model options, no cache) is refused by imported_spec before any conversion
    spec = imported_spec(request.name, shape, classes or IMAGENET_CLASSES, request.options, request.cache_dir)
    _check_layer_settings(request.name, request.options, spec)
    return spec


def _check_layer_settings(name: str, options: ModelOptions, spec: ModelSpec) -> None:
    """A zoo model's option that sets a kind of layer it does not have (--bn-variance on a network without
    BatchNorm) is refused, as a run refuses it: the table would show the network unchanged as if it applied."""
    from harness.cli_options import override_flags  # it imports the planner, which imports the models

    kinds = {type(l) for l in spec.layers if not (isinstance(l, Dropout) and l.rate == 0)}  # rate 0: drops nothing
    idle = {k: v for k, v in changed_options(options).items() if k in LAYER_SETTINGS and LAYER_SETTINGS[k] not in kinds}
    if idle:
        given = ", ".join(f"{override_flags([f'model_options.{k}'])[0]} ({k}={v!r})" for k, v in idle.items())
        lacking = " or ".join(sorted({LAYER_HINTS[LAYER_SETTINGS[k]] for k in idle}))
        raise InputError(
            f"Expected each layer setting given to meet such a layer in {name}. Received: {given}, but {name} has no "
            f"{lacking}. To fix, drop it, or add the layers."
        )


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def as_text(spec: ModelSpec, cost: ModelCost, label: str | None = None) -> str:
    header = ("layer", "type", "group", "output", "params", "MACs")
    rows = [
        (
            c.name,
            c.kind,
            c.group,
            _shape(c.output_shape),
            f"{c.params:,}" if c.params else "",
            f"{c.macs:,}" if c.macs else "",
        )
        for c in cost.layers
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = {4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [
        f"{label or spec.name}: input {_shape(spec.input_shape)}, {spec.num_classes} classes",
        line(header),
        "  ".join("-" * w for w in widths),
        *(line(r) for r in rows),
        "  ".join("-" * w for w in widths),
        f"total parameters: {cost.params:,}{_statistics_note(cost)}",
        f"forward MACs per sample: {cost.forward_macs:,} ({_scaled(cost.forward_macs)}; convolutions and dense "
        "layers, torchvision's convention)",
    ]
    return "\n".join(out)


def _statistics_note(cost: ModelCost) -> str:
    """Why Keras' count_params() of the same network reads higher: it counts BatchNorm's moving statistics."""
    if not cost.statistics:
        return ""
    return (
        f" (torchvision's count; with BatchNorm's {cost.statistics:,} moving means and variances, Keras' "
        f"count_params(): {cost.params + cost.statistics:,})"
    )


def _scaled(count: int) -> str:
    """A count in G, or in M below 0.1 G (convnet3's 356,352 read 0.000 G)."""
    return f"{count / 1e9:.3f} G" if count >= 1e8 else f"{count / 1e6:.3f} M"


def as_json(spec: ModelSpec, cost: ModelCost, label: str | None = None) -> str:
    return json.dumps(
        {
            "model": label or spec.name,
            "input_shape": list(spec.input_shape),
            "num_classes": spec.num_classes,
            "params": cost.params,
            "forward_macs": cost.forward_macs,
            "layers": [
                {
                    "name": c.name,
                    "type": c.kind,
                    "group": c.group,
                    "output_shape": list(c.output_shape),
                    "params": c.params,
                    "macs": c.macs,
                }
                for c in cost.layers
            ],
        },
        indent=2,
    )


def describe_model(request: ModelRequest, as_json_output: bool, export_spec: Path | None) -> str:
    spec = model_spec(request)
    if export_spec is not None:
        export_spec.write_text(json.dumps(spec_to_dict(spec), indent=2) + "\n")
    cost = model_cost(spec)
    ref = parse_model_ref(request.name)
    # a spec file by its file name, as tables name it: the name inside is what it was exported from (resnet20), not
    # that model at its own shape and width; an imported model by its --model form (a python: one's spec is named
    # without the prefix)
    label = {"spec": Path(ref.name).name, "zoo": None}.get(ref.kind, ref.label)
    return as_json(spec, cost, label) if as_json_output else as_text(spec, cost, label)
