"""The weights process: ``python -m harness.weights_worker BACKEND MODE REQUEST_JSON OUT``.

It imports exactly one framework, ``BACKEND``'s, as the import worker does (harness.import_worker):

- ``resolve`` / ``fetch``: where the framework's own download mechanism keeps a zoo's weights (fetch downloads them);
  ``resolve_all``: the same for a list of weight sets (the preflight's check that a run's zoo weights are cached);
- ``convert``: a weight file read by its source framework into the architecture, checked tensor by tensor, then
  converted to a neutral checkpoint with a probe batch and the source's logits and per-layer outputs;
- ``probe``: this backend's network from a neutral checkpoint on the probe batch: the logit gap, and where the
  outputs first part when they do.

The answer goes to OUT.answer.json; bad input (a bad or missing file) to OUT.error.json with the message, exit 3.
"""

from __future__ import annotations

import importlib
import json
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.backend import REFERENCE_BACKEND, load_backend
from harness.checkpoints import load_checkpoint
from harness.config import RuntimeOptions
from harness.errors import InputError
from harness.importers import UnsupportedModelError
from harness.input_pipeline import without_input_pipeline
from harness.models import ModelOptions
from harness.pretrained import (
    SOURCE_RELATIVE_GAP,
    WeightsRef,
    backend_weights_module,
    check_finite,
    fold_bgr,
    nonfinite_fix,
    worker_reply,
    write_converted,
)
from harness.seeds import WEIGHT_PROBE_SEED
from harness.spec import ModelSpec, ZeroPad2D, canonical_form
from harness.weight_files import BadWeightsError

PROBE_BATCH = 2  # the probe images (harness.seeds.WEIGHT_PROBE_SEED)


def probe_batch(input_shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(WEIGHT_PROBE_SEED).normal(size=(PROBE_BATCH, *input_shape)).astype(np.float32)


def tolerance(reference: np.ndarray) -> float:
    """The largest gap allowed against ``reference``: harness.pretrained's TOLERANCE_RULE (0 for a reference of
    zeros, which a converted network of the same weights computes exactly; a NaN gap passes no bound), on its finite
    values: an overflowed layer output made the bound inf, which a gap of inf passed."""
    finite = np.abs(reference[np.isfinite(reference)])
    largest = float(np.max(finite)) if finite.size else 0.0
    return SOURCE_RELATIVE_GAP * largest  # within 1e-4 x max(1, largest) for every largest: that bound decides nothing


def check_source_logits(logits: np.ndarray, request: dict[str, Any]) -> None:
    """Refuse weights whose network overflows on the probe batch: the verification compared its own inf or NaN
    against a bound of inf, and blamed the conversion of the first layer (a file with some exponent bits flipped
    holds finite weights of 1e37 that check_finite lets through)."""
    values = np.asarray(logits)
    finite = np.isfinite(values)
    if finite.all():
        return
    found = " and ".join(kind for kind, test in (("NaN", np.isnan), ("inf", np.isinf)) if test(values).any())
    raise BadWeightsError(
        f"Expected finite logits from the network in {Path(request['file']).name} on the probe batch ({PROBE_BATCH} "
        f"standard-normal images). Received: {found} in {int(values.size - finite.sum())} of {values.size} logits: "
        "the weights make the network overflow, so the file is damaged, or comes from a training that diverged. "
        f"To fix, {nonfinite_fix(WeightsRef(**request['ref']))}."
    )


def probe(backend_name: str, checkpoint: Path) -> dict[str, Any]:
    """Logit gap of ``backend_name``'s network against the source's; on a miss, the first layer (in model order)
    whose output is off by more than the tolerance on that layer's own scale."""
    spec, weights, _ = load_checkpoint(checkpoint)
    with np.load(checkpoint.with_suffix(".probe.npz"), allow_pickle=False) as stored:
        x, reference = stored["x"], stored["logits"]
        layers = {k.split("::", 1)[1]: stored[k] for k in stored.files if k.startswith("layer::")}
    backend = load_backend(backend_name, RuntimeOptions(threads=1))
    backend.build(spec, weights, seed=0)
    gap = float(np.max(np.abs(backend.predict_logits(x, 256) - reference)))
    result: dict[str, Any] = {"gap": gap, "bound": tolerance(reference), "first_layer": "", "layer_gap": 0.0}
    if gap <= result["bound"]:  # a NaN gap is no pass: it goes on to the layer whose output is not finite
        return result
    for layer in spec.layers:
        if layer.name in layers:
            source = layers[layer.name]
            ours = backend.extract_features(x, layer.name, 256).reshape(source.shape)
            layer_gap = float(np.max(np.abs(ours - source)))
            if not layer_gap <= tolerance(source):
                return {**result, "first_layer": layer.name, "layer_gap": layer_gap}
    return {**result, "first_layer": spec.layers[-1].name, "layer_gap": gap}


def convert_npz(request: dict[str, Any], out: Path) -> None:
    """xfbench's own neutral checkpoint: checked against --model's spec (its tensors, then its network: the file
    holds the spec it was trained as) and for finite values; its reference is the torch backend."""
    from harness.model_import import model_spec
    from harness.weight_files import check_tensor_shapes
    from harness.weights import parameter_shapes

    shape, path = tuple(request["input_shape"]), Path(request["file"])
    spec, weights = _read_checkpoint(path)
    expected = model_spec(
        request["model"], shape, spec.num_classes, ModelOptions(**_options(request)), out.parent / "imports"
    )
    received = {k: tuple(v.shape) for k, v in weights.items()}
    check_tensor_shapes(parameter_shapes(expected), received, path.name, request["model"])
    check_same_network(spec, expected, path.name, request["model"])
    check_finite(weights.items(), path.name, nonfinite_fix(WeightsRef("file", str(path))))
    x = probe_batch(shape)
    backend = load_backend(REFERENCE_BACKEND, RuntimeOptions(threads=1))  # the process run_worker started
    backend.build(expected, weights, seed=0)
    logits = backend.predict_logits(x, 256)
    check_source_logits(logits, request)
    write_converted(out, expected, weights, _meta(request, "xfbench"), {"x": x, "logits": logits, "layers": {}})


# A layer as harness.spec.canonical_form gives it: type, sorted fields (no name, group, inputs), producer positions.
LayerForm = tuple[str, tuple[tuple[str, Any], ...], tuple[int, ...]]


# Fields that shape training, not what the weights compute: fine-tuning a file with another dropout rate or BatchNorm
# momentum is a choice of the trial, not another network.
_TRAINING_ONLY_FIELDS = {"Dropout": ("rate", "kind"), "BatchNorm": ("decay",)}


def _layer_forms(spec: ModelSpec) -> tuple[LayerForm, ...]:
    forms = cast(tuple[LayerForm, ...], canonical_form(spec)[2])
    return tuple(
        (kind, tuple((k, v) for k, v in values if k not in _TRAINING_ONLY_FIELDS.get(kind, ())), inputs)
        for kind, values, inputs in forms
    )


def check_same_network(received: ModelSpec, expected: ModelSpec, file_name: str, model: str) -> None:
    """The network a neutral checkpoint was trained as (its own spec) is --model's as this trial builds it, layer
    by layer, field by field; the input shape (the tensors fit it) and the head (the strategies replace it), layer
    names and groups aside, and what only shapes training (a dropout rate, BatchNorm's momentum). Equal tensor shapes
    alone let a ReLU network's weights run as a tanh one. An input pipeline in front (a backbone xfbench trained
    with --input-channels, --input-size or --normalize saves its spec with it) is not the network."""
    received, expected = without_input_pipeline(received), without_input_pipeline(expected)
    theirs, ours = _layer_forms(received)[:-1], _layer_forms(expected)[:-1]
    for index, (got, want) in enumerate(zip(theirs, ours, strict=False)):
        if got == want:
            continue
        layer = expected.layers[index]
        if got[0] != want[0]:
            found = f"a {got[0]} in the file, a {want[0]} in --model's spec"
        elif got[2] != want[2]:
            found = "other inputs in the file than in --model's spec"
        else:
            ours_fields, theirs_fields = dict(want[1]), dict(got[1])
            field = next(k for k in ours_fields if ours_fields[k] != theirs_fields.get(k))
            found = (
                f"{field}={theirs_fields.get(field)!r} in the file, {field}={ours_fields[field]!r} in --model's spec"
            )
        raise BadWeightsError(
            f"Expected the weights in {file_name} to be of --model {model}'s network as this trial builds it. "
            f"Received: layer {layer.name!r} ({type(layer).__name__}) has {found}. To fix, pass the model options "
            "the file was trained with (--activation, --dropout, ...), or a file of this network."
        )
    if len(theirs) != len(ours):
        raise BadWeightsError(
            f"Expected the weights in {file_name} to be of --model {model}'s network, {len(ours) + 1} layers. "
            f"Received: a network of {len(theirs) + 1} layers in the file. To fix, pass the --model (and options) "
            "the file was trained as, or a file of this network."
        )


def _read_checkpoint(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """A --weights .npz read as xfbench's neutral checkpoint; anything else (not an archive, cut short, another
    program's arrays, weights that do not fit their own spec) is a BadWeightsError saying what was found."""
    not_an_archive = "not an .npz archive (cut short, or another kind of file)"
    if path.is_file() and not zipfile.is_zipfile(path):  # an .npy, an empty or a cut file: numpy errs in its own ways
        found = not_an_archive
    else:
        try:
            spec, weights, _ = load_checkpoint(path)
            return spec, weights
        except InputError as exc:  # its stored spec or weights refused: said as this file's, which the user named
            found = f"an .npz of xfbench's form whose contents it refuses ({str(exc).rstrip('.')})"
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, KeyError):
                found = f"an .npz archive without xfbench's entries ({exc.args[0] if exc.args else exc})"
            elif isinstance(exc, zipfile.BadZipFile):
                found = not_an_archive
            else:
                found = f"{type(exc).__name__}: {str(exc)[:200]}"
    raise BadWeightsError(
        f"Expected xfbench's neutral checkpoint in {path.name} (--weights: an .npz with the model's spec and weights, "
        f"as a run's _cache/backbones and _cache/pretrained hold them). Received: {found}. To fix, use an .npz "
        "xfbench wrote, or the framework's own file (.pth, .safetensors, .weights.h5)."
    )


def _options(request: dict[str, Any]) -> dict[str, Any]:
    options = dict(request["model_options"])
    options["hidden"] = tuple(options["hidden"])
    return options


def _meta(request: dict[str, Any], source: str) -> dict[str, Any]:
    meta = dict(request["meta"])
    return {
        **meta,
        "recipe": f"{meta['weights']} (sha256 {meta['sha256'][:12]}) as {request['model']}",
        "trained_by": source,
        "source_task": "pretrained",
    }


def _unless_unconvertible(step: Callable[..., Any], ref: dict[str, str], *args: Any) -> Any:
    """``step(ref, *args)``, its refusal of an architecture that does not convert told that nothing downloaded. The
    torch worker's resolve checks the architecture itself where a set's sizes or normalisation are not xfbench's
    (efficientnet_b3's SiLU, not its crop of 300 px, is what stops it), before check_convertible would."""
    try:
        return step(ref, *args)
    except UnsupportedModelError as exc:
        raise InputError(f"{exc} Nothing was downloaded: a run could not use {ref['kind']}:{ref['name']}.") from None


def run(backend: str, mode: str, request: dict[str, Any], out: Path) -> dict[str, Any]:
    if mode == "probe":
        return probe(backend, Path(request["checkpoint"]))
    if mode == "convert" and request["format"] == "npz":
        convert_npz(request, out)
        return {"checkpoint": str(out)}
    module = importlib.import_module(backend_weights_module(backend))
    if mode == "resolve_all":
        found = [_unless_unconvertible(module.resolve, ref, Path(request["home"])) for ref in request["refs"]]
        for ref in request["refs"] if request.get("check_architectures") else ():
            _unless_unconvertible(module.check_convertible, ref)
        return {"found": found}
    if mode in ("resolve", "fetch"):
        answer: dict[str, Any] = getattr(module, mode)(request["ref"], Path(request["home"]))
        return answer
    if mode == "convert":
        spec, weights, probe_data = _converted(module, request)
        check_source_logits(probe_data["logits"], request)
        write_converted(out, spec, weights, _meta(request, module.SOURCE), probe_data)
        return {"checkpoint": str(out)}
    raise ValueError(f"Expected a mode resolve, fetch, convert or probe. Received: {mode!r}.")


def _converted(module: Any, request: dict[str, Any]) -> tuple[ModelSpec, dict[str, Any], dict[str, Any]]:
    """A framework file converted by its backend's ``module``, with the source's outputs on the probe batch. The
    channel order belongs to the weights (harness.pretrained.weights_read_bgr decides it, and keys it): weights that
    read BGR run the source on the batch in BGR and get their first convolution's input channels reversed, so the
    converted network reads it in RGB and the verification checks the fold, in either framework."""
    x = probe_batch(tuple(request["input_shape"]))
    if not request.get("bgr", False):  # a request that does not say reads RGB, as every zoo's weights but Caffe's
        return cast(tuple[ModelSpec, dict[str, Any], dict[str, Any]], module.convert(request, x))
    spec, weights, probe_data = module.convert(request, x[..., ::-1].copy())
    layers = _rgb_before_first_conv(spec, probe_data["layers"])
    return spec, fold_bgr(spec, weights), {**probe_data, "x": x, "layers": layers}


def _rgb_before_first_conv(spec: ModelSpec, layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The source's outputs of the layers ahead of the folded convolution (Keras ResNet's conv1_pad), recorded on
    the BGR batch, in RGB: the converted network reads RGB there, so a BGR reference parted from it by ~1.3 relative
    even for a perfect conversion, and a failed verification at any depth named that layer. From the convolution on,
    the fold makes both compute the same (outputs are channels-last, as the backends give them)."""
    reordered = dict(layers)
    for layer in spec.layers:
        if not isinstance(layer, ZeroPad2D):  # fold_bgr folds the first layer that is not a padding
            break
        if layer.name in reordered:
            reordered[layer.name] = np.ascontiguousarray(reordered[layer.name][..., ::-1])
    return reordered


def main(argv: list[str]) -> int:
    backend, mode, request, out = argv[0], argv[1], json.loads(argv[2]), Path(argv[3])
    try:
        answer = run(backend, mode, request, out)
    except InputError as exc:  # a bad or missing file; any other ValueError is a fault and keeps its traceback
        worker_reply(out, "error").write_text(json.dumps({"message": str(exc)}))
        return 3
    except Exception as exc:
        # A download fails in each framework's own way: torch.hub with urllib's URLError (an OSError), Keras'
        # get_file with a bare Exception("URL fetch failure ..."). Anything else is a fault and keeps its traceback.
        if mode != "fetch" or not (isinstance(exc, OSError) or type(exc) is Exception):
            raise
        ref = request["ref"]
        message = (
            f"Expected to download the weights {ref['kind']}:{ref['name']}. Received: "
            f"{type(exc).__name__}: {exc}. To fix, fetch them on a machine with network and copy the weights home "
            "(`xfbench weights list` names it) here."
        )
        worker_reply(out, "error").write_text(json.dumps({"message": message}))
        return 3
    worker_reply(out, "answer").write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
