"""PyTorch weight files in a weights worker (harness.weights_worker): torchvision's zoo weights found and fetched
through torch hub, a user's state dict (.pth/.pt with ``weights_only=True``, or .safetensors) loaded into the
architecture tensor by tensor, then converted to neutral weights (backends/torch/importer.py); a zoo name's twin
takes the zoo's layer names and groups (harness.models.as_zoo_twin).

torchvision keeps downloads in ``torch.hub.get_dir()/checkpoints/<basename of the enum's url>``
(``torch.hub.load_state_dict_from_url``); xfbench points the hub directory at ``<weights home>/torch/hub``.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from backends.torch import importer
from harness.errors import InputError
from harness.importers import UnsupportedModelError, closest_names
from harness.models import as_zoo_twin
from harness.pretrained import (
    TORCHVISION_SIZES,
    WeightsRef,
    channels_error,
    check_finite,
    hub_file_mismatch,
    hub_name_digest,
    nonfinite_fix,
    refetch_hint,
    torchvision_resize_side,
)
from harness.shapes import infer_shapes
from harness.spec import renamed_layers
from harness.truncated_weights import check_complete
from harness.weight_files import BadWeightsError, Fit, check_tensor_shapes, read_safetensors
from harness.weights_fit import (
    TORCHVISION_TWINS,
    WIDTH_IN_TORCHVISION,
    check_torchvision_width,
    no_torch_architecture,
    torchvision_name,
)

SOURCE = "torchvision"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SAVE_STATE_DICT = "save it with torch.save(model.state_dict(), path)"  # what to do about a user's unreadable .pth
# torch's legacy (pre-zip) files start with this number pickled (torch.serialization.MAGIC_NUMBER, a LONG1 of 10
# bytes): a file cut short keeps it, and was called no torch file at all
_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _weight_enum(name: str, weight_set: str) -> Any:
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        names = sorted(torchvision.models.list_models(module=torchvision.models))
        raise InputError(
            f"Expected a torchvision model with pretrained weights. Received: {name!r}, not one that publishes "
            f"weights. {closest_names(name, names)}"
        ) from None
    if not weight_set or weight_set == "DEFAULT":
        return enum.DEFAULT
    if weight_set not in enum.__members__:
        raise InputError(
            f"Expected a weight set of torchvision's {name}. Received: {weight_set!r}. To fix, give one of "
            f"{list(enum.__members__)}, or none for DEFAULT."
        )
    return enum[weight_set]


def _hub_dir(home: Path) -> Path:
    return home / "torch" / "hub"


def resolve(ref: dict[str, str], home: Path) -> dict[str, Any]:
    """Where torch hub keeps the weights (it names the file after the url's basename), and what they expect."""
    weights = _weight_enum(ref["name"], ref["weight_set"])
    _check_fed_as_trained(ref, weights)
    filename = Path(urlparse(weights.url).path).name
    return {
        "file": str(_hub_dir(home) / "checkpoints" / filename),
        "url": weights.url,
        "weight_set": f"{type(weights).__name__}.{weights.name}",
        "size": int(weights.transforms().crop_size[0]),
        "classes": len(weights.meta["categories"]),
        "expected_digest": hub_name_digest(filename),  # the run checks it with the sha256 it computes anyway
    }


def _trained_with(weights: Any) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
    """(crop, resize side), mean and std of a weight set's own evaluation transforms (its meta: nothing downloads)."""
    transforms = weights.transforms()
    sizes = (int(transforms.crop_size[0]), int(transforms.resize_size[0]))
    return sizes, tuple(transforms.mean), tuple(transforms.std)


def _fed_sizes(name: str, weight_set: str) -> tuple[int, int]:
    """The crop and resize side xfbench feeds a set of ``name`` (harness.pretrained's tables, which the run reads)."""
    return TORCHVISION_SIZES.get(name, 224), torchvision_resize_side(name, weight_set)


def _fed_as_trained(name: str, weight_set: str, weights: Any) -> bool:
    sizes, mean, std = _trained_with(weights)
    imagenet = mean == IMAGENET_MEAN and std == IMAGENET_STD
    return imagenet and sizes == _fed_sizes(name, weight_set) and bool(weights.meta.get("categories"))


def _check_fed_as_trained(ref: dict[str, str], weights: Any) -> None:
    """Refuse a weight set xfbench would feed otherwise than it was trained (each cause in its own words): an
    architecture that does not convert first, named by its layer (its sets' sizes are beside the point then), then
    a normalisation other than ImageNet's, then other sizes, then a set without a trained classifier."""
    name = ref["name"]
    if _fed_as_trained(name, ref["weight_set"], weights):
        return
    check_convertible(ref)
    label = f"torchvision:{name}:{weights.name}"
    (size, side), mean, std = _trained_with(weights)
    fix = _sets_fed_as_trained(name)
    if (mean, std) != (IMAGENET_MEAN, IMAGENET_STD):
        untrained = "" if weights.meta.get("categories") else "; and it names no classes: only its features are trained"
        raise InputError(
            f"Expected torchvision weights trained on inputs normalised with ImageNet's mean {_numbers(IMAGENET_MEAN)} "
            f"and std {_numbers(IMAGENET_STD)}, the one normalisation xfbench feeds torchvision's sets. Received: "
            f"{label}, trained with mean {_numbers(mean)} and std {_numbers(std)}{untrained}. To fix, {fix}."
        )
    wanted = _fed_sizes(name, ref["weight_set"])
    if (size, side) != wanted:
        raise InputError(
            f"Expected torchvision weights evaluated as xfbench feeds {name}'s sets: {wanted[0]} px crops of images "
            f"resized to {wanted[1]} px. Received: {label}, evaluated at {size} px crops of images resized to "
            f"{side} px. To fix, {fix}."
        )
    raise InputError(
        f"Expected torchvision weights with a trained classifier (the classes their meta names). Received: {label}, "
        f"which names no classes: only its features are trained. To fix, {fix}."
    )


def _numbers(values: tuple[float, ...]) -> str:
    return f"({', '.join(f'{v:.4g}' for v in values)})"


def _sets_fed_as_trained(name: str) -> str:
    """The fix for a set xfbench cannot feed as trained: the sets of the same architecture it can."""
    import torchvision

    fitting = [w.name for w in torchvision.models.get_model_weights(name) if _fed_as_trained(name, w.name, w)]
    if not fitting:
        return f"pick another model's weights (torchvision publishes none of {name}'s that xfbench feeds as trained)"
    sets = " or ".join(f"--pretrained torchvision:{name}:{member}" for member in fitting)
    return f"pick a set of {name} that xfbench feeds as trained: {sets}"


def drop_damaged_download(path: Path) -> bool:
    """Remove a hub file whose content does not have the sha256 prefix its name carries (a download cut short, a
    file replaced by hand): torch hub checks the hash only while downloading, and would load such a file as it
    is. True if it was removed."""
    if not hub_file_mismatch(path):
        return False
    path.unlink()
    return True


def fetch(ref: dict[str, str], home: Path) -> dict[str, Any]:
    """Download through torchvision's own mechanism (hash checked: the file name carries its sha256 prefix); a file
    already there is checked the same way, and downloaded again if it fails."""
    weights = _weight_enum(ref["name"], ref["weight_set"])
    torch.hub.set_dir(str(_hub_dir(home)))
    drop_damaged_download(Path(resolve(ref, home)["file"]))
    weights.get_state_dict(progress=True, check_hash=True)
    return resolve(ref, home)


def check_convertible(ref: dict[str, str]) -> None:
    """The zoo architecture converts to the neutral spec at its weights' size (checked before a download: a network
    of layers xfbench cannot express, a vision transformer, is an UnsupportedModelError, whose fix is another model:
    no one can change a published architecture's layers)."""
    size = TORCHVISION_SIZES.get(ref["name"], 224)
    try:
        importer.convert(_torchvision_model(ref["name"], 1.0, 1000), (size, size, 3), ref["name"])
    except UnsupportedModelError as refused:
        raise refused.for_published(f"torchvision:{ref['name']}", importer.CONVERTING_MODELS) from None


def read_state_dict(path: Path, fmt: str, fix: str = SAVE_STATE_DICT) -> dict[str, torch.Tensor]:
    """A state dict from a file, never unpickling beyond ``weights_only``; a damaged file is a BadWeightsError
    (a file cut short names the first tensor whose bytes are missing) ending in ``fix``, the caller's advice."""
    if fmt == "safetensors":
        check_complete(path, fmt, fix)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in read_safetensors(path).items()}
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, a pickle weights_only refuses
        check_complete(path, fmt, fix)
        raise BadWeightsError(
            f"Expected a torch state dict (torch.save's zip archive or legacy pickle of tensors, read with "
            f"torch.load(weights_only=True)) in {path.name}. Received: {_unreadable(path, exc)}. "
            f"To fix, {fix}."
        ) from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise BadWeightsError(
            f"Expected a state dict (tensor names -> tensors) in {path.name}. Received: {_not_a_state_dict(loaded)}. "
            f"{_state_dict_fix(loaded, fix)}"
        )
    return dict(loaded)


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _not_a_state_dict(loaded: Any) -> str:
    """What a loaded object that is no state dict holds: a training checkpoint's first entry that is no tensor, and
    its type, is what tells the user which part to save."""
    if not isinstance(loaded, Mapping):
        return type(loaded).__name__
    key, value = next((k, v) for k, v in loaded.items() if not isinstance(v, torch.Tensor))
    inner = " (itself a state dict)" if _is_state_dict(value) else ""
    return f"a {type(loaded).__name__} whose entry {key!r} is of type {type(value).__name__}{inner}, not a tensor"


def _state_dict_fix(loaded: Any, fix: str) -> str:
    """A training checkpoint that wraps its state dict under a key of its own ({'model': ..., 'epoch': 3}): save
    that entry alone; anything else: the caller's advice."""
    wrapped = [k for k, v in loaded.items() if _is_state_dict(v)] if isinstance(loaded, Mapping) else []
    if wrapped:
        return f"To fix, save the state dict alone: torch.save(checkpoint[{wrapped[0]!r}], path)."
    return f"To fix, {fix}."


def _unreadable(path: Path, exc: Exception) -> str:
    """What a file torch.load(weights_only=True) refused is, in words. torch's own message is not quoted: it
    advises loading again with weights_only=False, which xfbench never does (nothing else is unpickled)."""
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if refused:
        return (
            f"a pickle holding {refused.group(1)}, which weights_only=True does not unpickle (a whole model saved "
            "with torch.save, or a checkpoint that keeps other objects beside its state dict: save the state dict "
            "alone, e.g. torch.save(checkpoint['state_dict'], path))"
        )
    if zipfile.is_zipfile(path):
        return "a zip archive that is not torch.save's state dict (another program's, or one holding other objects)"
    with path.open("rb") as handle:
        head = handle.read(32)
    size = path.stat().st_size
    if head.startswith(b"\x80") and _LEGACY_MAGIC in head:
        legacy = "a legacy torch pickle (torch.save with _use_new_zipfile_serialization=False, or torch before 1.6)"
        if isinstance(exc, EOFError) or "EOF" in str(exc):
            return f"{legacy} that ends early, at byte {size} (cut short?)"
        return f"{legacy} that torch.load cannot read ({type(exc).__name__}: damaged?)"
    return f"not a torch zip or pickle state dict ({size} bytes, starting {head[:8].hex(' ') or '-'})"


def _torchvision_model(name: str, width: float, classes: int) -> nn.Module:
    import torchvision

    kwargs: dict[str, Any] = {"weights": None, "num_classes": classes}
    if width != 1.0:
        check_torchvision_width(name, width)
        kwargs["width_mult"] = width
    return torchvision.models.get_model(name, **kwargs).eval()


def architecture(model: str, options: dict[str, Any], classes: int) -> nn.Module:
    """The nn.Module --model names, for ``classes`` outputs: torchvision's, a zoo name's torchvision twin, or a
    user's factory."""
    import torchvision

    name = torchvision_name(model)
    if name is None:
        return _users_module(model, classes).eval()
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise no_torch_architecture(model)
    return _torchvision_model(name, float(options.get("width_multiplier", 1.0)), classes)


def _users_module(model: str, classes: int) -> nn.Module:
    """A user's factory called as the model's conversion called it (num_classes positionally where it is
    positional-only, a fault in their code named at its file and line), and refused unless it is an nn.Module: a
    Keras factory reached the torch reader of a .pth or .safetensors file and failed on ``.eval()`` (exit 1)."""
    from harness.import_worker import built_user_model

    built = built_user_model(model.split(":", 1)[1], classes)
    if not isinstance(built, nn.Module):
        kind = f"{type(built).__module__}.{type(built).__qualname__}"
        raise InputError(
            f"Expected {model} to return a torch nn.Module, to read a PyTorch weight file (.pth, .pt, .safetensors) "
            f"into. Received: {kind}. Only a factory returning an nn.Module can start from a weight file of your "
            "own (docs/pretrained.md). To fix, give one, or train the model from scratch (--strategy scratch)."
        )
    return built


# torchvision's DenseNet files (its hub's downloads among them) keep the names of modules that once had dots in
# them ('features.denseblock1.denselayer1.norm.1.weight'); torchvision renames them to the current ones ('norm1')
# when it loads its own weights (torchvision.models.densenet._load_state_dict), and so does xfbench.
_DENSENET_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _current_densenet_names(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with a torchvision DenseNet's legacy tensor names renamed as torchvision renames them."""
    import torchvision

    if not isinstance(model, torchvision.models.DenseNet):
        return state
    renamed = {}
    for key, value in state.items():
        legacy = _DENSENET_LEGACY_KEY.match(key)
        renamed[legacy.group(1) + legacy.group(2) if legacy else key] = value
    return renamed


def _head_classes(model: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """The file's class count: rows of the architecture's head weight in the file. The head is the last Linear the
    forward applies, as the importer takes it: the last one registered, which this took before, is a hidden layer
    where a module registers its head first (its rows were read as the class count)."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        applied = [str(n.target) for n in fx.symbolic_trace(model).graph.nodes if n.op == "call_module"]
    except Exception:  # a forward fx cannot trace: the conversion says why, once the file is read
        applied = []
    heads = [name for name in applied if name in linears]
    head = heads[-1] if heads else linears[-1] if linears else None
    tensor = state.get(f"{head}.weight") if head is not None else None
    return int(tensor.shape[0]) if tensor is not None and tensor.ndim == 2 else None


def load_into_architecture(request: dict[str, Any], path: Path) -> nn.Module:
    ref = WeightsRef(**request["ref"])
    state = read_state_dict(path, request["format"], SAVE_STATE_DICT if ref.kind == "file" else refetch_hint(ref))
    model = architecture(request["model"], request["model_options"], 1000)
    state = _current_densenet_names(model, state)
    classes = _head_classes(model, state)
    if classes is not None and classes != 1000:
        model = architecture(request["model"], request["model_options"], classes)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    received = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    check_tensor_shapes(expected, received, path.name, request["model"], lambda: _what_fits(request, received))
    model.load_state_dict(state, strict=False)  # every tensor checked above; num_batches_tracked does not matter
    return model.eval()


# The widths tried for a file of torchvision's one architecture with a width (mobilenet_v2's width_mult, any float,
# its channels rounded to multiples of 8): every twentieth up to 2, with Keras' 1.3 and 1.4, the shortest first (a
# file that fits two widths, which round to the same channels everywhere, is named by the plainer one).
_WIDTHS = sorted({k / 20 for k in range(1, 41)} | {1.3, 1.4}, key=lambda w: (len(f"{w:g}"), w))


def _what_fits(request: dict[str, Any], received: Mapping[str, tuple[int, ...]]) -> Fit | None:
    """The torchvision architecture, and width, whose tensors are the file's, names and shapes (its head's rows
    aside: the class count is the file's), among --model's own, its family's (resnet18's: resnet34, resnet50, ...)
    and the zoo's twins; None where none is. Each is built on the meta device: no memory, no initialisation, about
    0.05 s each."""
    import torchvision

    current = torchvision_name(request["model"])
    names = torchvision.models.list_models(module=torchvision.models)
    family = re.match(r"[a-z]+", current or "")
    kin = [name for name in names if family and name.startswith(family.group(0))]
    given = float(request["model_options"].get("width_multiplier", 1.0))
    renamed = {_DENSENET_LEGACY_KEY.sub(r"\1\2", key): shape for key, shape in received.items()}
    for name in dict.fromkeys([*([current] if current in names else []), *kin, *TORCHVISION_TWINS.values()]):
        if not _same_tensors(name, 1.0, renamed, names_only=True):
            continue  # a width changes channels, never names: the other widths need not be built
        for width in _WIDTHS if name == WIDTH_IN_TORCHVISION else (1.0,):
            if _same_tensors(name, width, renamed):
                return _fit(request["model"], current, name, width, given)
    return None


def _same_tensors(name: str, width: float, received: Mapping[str, tuple[int, ...]], names_only: bool = False) -> bool:
    """Whether torchvision's ``name`` at ``width`` has the tensors ``received`` holds (names, and shapes but for the
    rows of its head, the last Linear)."""
    import torchvision

    kwargs = {"width_mult": width} if width != 1.0 else {}
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if state.keys() != received.keys():
        return False
    head = [f"{n}." for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    return names_only or all(
        state[k] == received[k] or (k.startswith(tuple(head)) and state[k][1:] == received[k][1:]) for k in state
    )


def _fit(model: str, current: str | None, name: str, width: float, given: float) -> Fit:
    """What fits, as the user would name it: the width alone for --model's own architecture, else the --model (a
    zoo twin's name unless --model named torchvision's), with the width its architecture takes."""
    at = f" at width {width:g}" if width != 1.0 else ""
    if name == current:
        fix = (
            f"pass --width-multiplier {width:g}" if width != 1.0 else "drop --width-multiplier (the file is at width 1)"
        )
        return Fit(f"{name}{at}", fix)
    twins = [zoo for zoo, twin in TORCHVISION_TWINS.items() if twin == name]
    flag = twins[0] if twins and not model.startswith("torchvision:") else f"torchvision:{name}"
    width_flag = (
        f" --width-multiplier {width:g}" if width != 1.0 else " without --width-multiplier" if given != 1 else ""
    )
    return Fit(f"torchvision's {name}{at}", f"pass --model {flag}{width_flag}")


def layer_outputs(model: nn.Module, x: np.ndarray, names: set[str]) -> dict[str, np.ndarray]:
    """Every module call's output whose fx node is a spec layer (the importer names layers after the nodes)."""
    graph = fx.symbolic_trace(model)
    outputs: dict[str, np.ndarray] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            if n.name in names and isinstance(result, torch.Tensor):
                value = result.detach().numpy()
                outputs[n.name] = value.transpose(0, 2, 3, 1).copy() if value.ndim == 4 else value.copy()
            return result

    with torch.no_grad():
        Recorder(graph).run(importer.nchw_batch(x))
    return outputs


def recorded_outputs(model: nn.Module, x: np.ndarray, spec: Any) -> dict[str, np.ndarray]:
    """The source's output at each of ``spec``'s layers (by fx node: the converted names), as the backends give
    them: maps in H,W,C, flattened maps in H,W,C order."""
    infos = infer_shapes(spec)
    layers = layer_outputs(model, x, {layer.name for layer in spec.layers})
    return {name: flat_outputs_as_hwc(value, infos[name].flattened_from) for name, value in layers.items()}


def flat_outputs_as_hwc(values: np.ndarray, flattened_from: tuple[int, int, int] | None) -> np.ndarray:
    """A flattened map's outputs (N, H*W*C) in the spec's H,W,C order, as the backends give them: kept in torch's
    C,H,W, a failed verification blamed the Flatten of every network whose map had several channels and pixels."""
    if flattened_from is None or values.ndim != 2:
        return values
    h, w, c = flattened_from
    return np.ascontiguousarray(values.reshape(len(values), c, h, w).transpose(0, 2, 3, 1).reshape(len(values), -1))


def convert(request: dict[str, Any], x: np.ndarray) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """The file in the architecture, as a neutral spec and weights, with the source's outputs on ``x`` (weights
    that read BGR are folded by the harness, harness.weights_worker)."""
    path = Path(request["file"])
    model = load_into_architecture(request, path)
    state = model.state_dict().items()
    check_finite(((k, v.detach().numpy()) for k, v in state), path.name, nonfinite_fix(WeightsRef(**request["ref"])))
    shape = tuple(request["input_shape"])
    takes = importer.input_channels(model)
    if takes is not None and len(shape) == 3 and takes != shape[-1]:
        raise channels_error(path.name, takes, shape[-1])
    spec, weights = importer.convert(model, shape, request["meta"]["weights"])
    layers = recorded_outputs(model, x, spec)
    spec, renames = as_zoo_twin(request["model"], request["model_options"], spec)  # a zoo twin: the zoo's names
    probe = {"x": x, "logits": importer.reference_logits(model, x), "layers": renamed_layers(layers, renames)}
    return spec, renamed_layers(weights, renames), probe
