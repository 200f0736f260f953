"""Every form ``--model`` takes, resolved to a neutral spec: zoo names, framework models, a user's, a spec file.

- ``resnet18`` (a zoo name, harness.models)
- ``PREFIX:NAME`` such as ``torchvision:NAME`` / ``keras:NAME`` (a framework's own architecture, random weights
  from a seed; the prefixes are the backends' ``model_prefixes`` in harness.backend's registry)
- ``python:package.module:function`` (a user's factory returning an ``nn.Module`` or a Keras model; called with
  ``num_classes=K`` when its signature takes that argument)
- ``path/to/spec.json`` (a neutral spec, as ``xfbench model NAME --export-spec`` writes it)

Framework models are converted in a fresh process that imports only the source framework (``python -m
harness.import_worker``), checked there, and cached as a neutral checkpoint keyed by a content hash of the
request, the xfbench and framework versions, and for ``python:`` references the source of the user's module and
of the user's modules it imports (harness.user_imports, found by reading its imports). A
``python:`` checkpoint also records every file of the user's own code its conversion imported (helpers, their
packages) with their digests, and is converted again when any of them has changed or gone. Trials
then read the checkpoint in any backend. Training from scratch starts every backend from the harness's shared
initial weights; the converted weights only check the conversion (a pretrained strategy starts from --weights or
--pretrained, harness.pretrained), so a factory that loads trained weights gives its architecture alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from harness import cachekeys
from harness.backend import REGISTRY, importer_backends
from harness.checkpoints import load_checkpoint
from harness.config import TrialConfig
from harness.errors import InputError, closest_text
from harness.fresh_process import run_worker_module
from harness.importers import UnsupportedModelError
from harness.model_cost import model_cost
from harness.models import MODELS, ModelOptions, build_spec, changed_options
from harness.shapes import output_shape
from harness.spec import ModelSpec, spec_from_dict
from harness.user_code import changed_sources, file_digest
from harness.user_imports import module_file, user_source_digest, user_units
from harness.weights import NeutralWeights

# prefix -> the backend whose importer converts it (backends/<name>/importer.py)
FRAMEWORK_PREFIXES = importer_backends()
FORMS = (
    f"a zoo name (xfbench list), {', '.join(f'{prefix}:NAME' for prefix in FRAMEWORK_PREFIXES)}, "
    "python:package.module:function, or a .json spec"
)


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "zoo" | a key of FRAMEWORK_PREFIXES ("torchvision", ...) | "python" | "spec"
    name: str  # zoo or framework model name, "package.module:function", or the spec file's absolute path

    @property
    def label(self) -> str:
        return self.name if self.kind in ("zoo", "spec") else f"{self.kind}:{self.name}"


def parse_model_ref(text: str) -> ModelRef:
    if text in MODELS:
        return ModelRef("zoo", text)
    prefix, _, rest = text.partition(":")
    if prefix in FRAMEWORK_PREFIXES and rest:
        return ModelRef(prefix, rest)
    module, _, function = rest.partition(":")
    if prefix == "python" and rest.count(":") == 1 and module and function and not re.search(r"[/\\]", module):
        return ModelRef("python", rest)
    if prefix == "python":
        raise InputError(
            f"Expected python:MODULE:FUNCTION, a module and the function in it that returns the model. Received: "
            f"model={text!r}. {_python_ref_fix(module, function)} (docs/zoo.md, your own models)."
        )
    if text.endswith(".json"):
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise InputError(
                f"Expected a spec file. Received: model={text!r}, which does not exist. To fix, give the path of an "
                "existing one, or write one with `xfbench model NAME --export-spec FILE`."
            )
        return ModelRef("spec", str(path))
    saved = next((s for s in _SAVED_MODEL_SUFFIXES if text.lower().endswith(s)), None)
    if saved is not None:  # a saved model, not a form of --model: how to give it
        raise InputError(
            f"Expected a model as {FORMS}. Received: model={text!r}, a saved {saved} model file. To fix, give a "
            f"python:MODULE:FUNCTION factory that loads it ({_SAVED_MODEL_SUFFIXES[saved]}); the model it returns "
            "gives the architecture, its weights only check the conversion: a strategy that starts from weights "
            "reads them from --weights FILE (a Keras model's saved by model.save_weights('w.weights.h5')), a run "
            "from scratch initialises its own."
        )
    raise InputError(f"Expected a model as {FORMS}. Received: model={text!r}. {_model_form_fix(text, prefix, rest)}")


def _model_form_fix(text: str, prefix: str, rest: str) -> str:
    """What the user most likely meant by a --model of no known form: a misspelt framework prefix
    (torchvison:resnet18, Keras:ResNet50), a zoo name given a suffix, or their own module without python:."""
    known = [*FRAMEWORK_PREFIXES, "python"]
    close = difflib.get_close_matches(prefix.lower(), known, n=1, cutoff=0.6) if rest else []
    if close:
        return f"To fix, spell its prefix {close[0]}: --model {close[0]}:{rest}."
    if rest and prefix in MODELS:
        return f"To fix, give --model {prefix} (zoo names take no ':{rest}'), or another form."
    path = Path(prefix if rest else text)
    if path.suffix == ".py" or (rest and ":" not in rest and re.fullmatch(r"[\w.]+", prefix)):
        module, function = path.stem if path.suffix == ".py" else prefix, rest or "FUNCTION"
        where = f", run from {path.parent} (or with it on PYTHONPATH)" if str(path.parent) != "." else ""
        return (
            f"To fix, name your own model's factory with the python: prefix, its module as Python imports it: "
            f"python:{module}:{function}{where} (docs/zoo.md, your own models). Zoo names: {sorted(MODELS)}"
        )
    return f"To fix, {closest_text(text, list(MODELS), '--model')}give one of the zoo names: {sorted(MODELS)}"


_SAVED_MODEL_SUFFIXES = {  # a saved model's suffix -> the factory body that loads it
    ".keras": "def build(): return keras.models.load_model(PATH)",
    ".h5": "def build(): return keras.models.load_model(PATH)",
    ".pt": "def build(num_classes): return YourNet(num_classes), with the state dict passed as --weights PATH",
    ".pth": "def build(num_classes): return YourNet(num_classes), with the state dict passed as --weights PATH",
    ".safetensors": "def build(num_classes): return YourNet(num_classes), with the file passed as --weights PATH",
}


def _python_ref_fix(module: str, given: str) -> str:
    function = given.partition(":")[0] or "build"
    if re.search(r"[/\\]", module):
        path = Path(module)
        return (
            f"To fix, name the module as Python imports it, without its folder: python:{path.stem}:{function}, run "
            f"from {path.parent} (or with it on PYTHONPATH)"
        )
    if not module:
        return f"To fix, name the module before the function, e.g. python:my_nets:{function}"
    if given:  # python:nets:make:x, one colon too many
        return f"To fix, give one module and one function, e.g. python:{module}:{function}"
    if module.endswith(".py"):  # python:nets.py, a file's name
        return (
            f"To fix, name the module as Python imports it, without .py, and its function: python:{module[:-3]}:build"
        )
    if "." in module:  # python:nets.make, the function after a dot
        head, _, tail = module.rpartition(".")
        return f"To fix, separate the function with a colon, e.g. python:{head}:{tail} (or python:{module}:build)"
    return f"To fix, name the function too, e.g. python:{module}:build"


def trial_model(model: str) -> str:
    """``--model`` as a trial carries it: a spec file by its absolute path (trials run in directories of their own,
    where a relative path names nothing), every other form as given."""
    ref = parse_model_ref(model)
    return ref.name if ref.kind == "spec" else model


def python_model_sources(models: Iterable[str]) -> tuple[Path, ...]:
    """What Ray ships to every node for the ``python:`` references among ``models``: each module's file, or the
    directory of its top-level package (a submodule imports its package first), and the user's modules and
    packages those import in turn (harness.user_imports), found as the driver finds them. Trial workers start in
    directories of their own, on nodes that may not hold the files: the shipped copies are what they hash into the
    cache keys and what a node without the run's cache converts. Modules installed in the interpreter's
    environment are not shipped: a node's environment holds them as it holds xfbench."""
    sources: list[Path] = []
    for model in models:
        ref = parse_model_ref(model)
        if ref.kind == "python":  # a module that cannot be found ships nothing: preflight's conversion names it
            sources += [unit for unit in user_units(ref.name.split(":")[0]) if unit not in sources]
    return tuple(sources)


def wanted_channels(ref: ModelRef) -> int | None:
    """Input channels a reference fixes before conversion (the frameworks' ImageNet models want RGB)."""
    return 3 if ref.kind in FRAMEWORK_PREFIXES else None


def with_wanted_channels(trial: TrialConfig) -> TrialConfig:
    """The trial fed the channels its model wants when the user did not say (--input-channels): a torchvision or
    keras.applications model is the published RGB architecture, so grayscale data is replicated to three
    channels (identically in both backends: the input pipeline's RepeatChannels)."""
    wanted = wanted_channels(parse_model_ref(trial.model))
    if wanted is None or trial.input.channels is not None:
        return trial
    return dataclasses.replace(trial, input=dataclasses.replace(trial.input, channels=wanted))


def check_python_module(ref: ModelRef) -> None:
    """InputError when a python: model's module cannot be found from here (found without importing it)."""
    python_source_digest(ref.name)


def python_source_digest(name: str) -> str:
    """The digest of a ``python:`` model's code: its module and the user's modules it imports (user_units), so an
    edited helper is another model, as an edited module is."""
    module = name.split(":")[0]
    path = module_file(module)
    if path is None or not path.is_file():
        raise InputError(
            f"Expected an importable module for model python:{name}. Received: no module {module!r} "
            "in the current directory or on the Python path. "
            + (
                f"To fix, name it as Python imports it, without .py: "
                f"python:{module.removesuffix('.py')}:{name.split(':')[1]}."
                if module.endswith(".py")
                else "To fix, run from the directory holding it (or put that directory on PYTHONPATH)."
            )
        )
    # the module's own files and its helpers', as a run ships them; an installed module: its file alone
    return user_source_digest(module) or file_digest(path)


def _converting_backends(ref: ModelRef) -> list[str]:
    """The backends whose importers may convert ``ref``: a user's factory may build any importing backend's model."""
    if ref.kind in FRAMEWORK_PREFIXES:
        return [FRAMEWORK_PREFIXES[ref.kind]]
    return sorted(name for name, entry in REGISTRY.items() if entry.model_prefixes)


def _request(ref: ModelRef, input_shape: tuple[int, ...], num_classes: int | None, seed: int) -> dict[str, object]:
    return {
        "ref": asdict(ref),
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "seed": seed,
        "code": {b: cachekeys.code_versions(b) for b in _converting_backends(ref)},
        "source": python_source_digest(ref.name) if ref.kind == "python" else "",
    }


def model_content_key(model: str) -> str:
    """What a cache keyed by a trial's ``--model`` text (a shared backbone's recipe) must hold besides that text, for
    the forms whose text does not fix the network: a spec file's sha256 (the file edited under the same path is
    another model), a ``python:`` module's source digest (as its conversion's key holds it) and, for it and a
    framework model, the versions of the frameworks that convert it (another Keras builds another keras:NAME).
    Empty for a zoo name: xfbench's own source, in every key already, defines it."""
    ref = parse_model_ref(model)
    if ref.kind in ("zoo", "spec"):
        return user_model_key(model)
    converters = " ".join(f"{b} {cachekeys.code_tag(b)}" for b in _converting_backends(ref))
    return f"{user_model_key(model)}, {converters}" if ref.kind == "python" else converters


def user_model_key(model: str) -> str:
    """What the user's own files behind ``--model`` hold: a spec file's sha256, a ``python:`` module's source digest
    (its own file and the user's modules it imports by name); empty where xfbench or a framework defines the model (a
    zoo name, keras:NAME, torchvision:NAME), whose versions the rows record."""
    ref = parse_model_ref(model)
    if ref.kind == "spec":
        return f"spec {file_digest(Path(ref.name))}"
    return f"source {python_source_digest(ref.name)}" if ref.kind == "python" else ""


def check_model_content(model: str, expected: str | None) -> None:
    """Refuse a model whose files changed since the run began: ``expected`` is their user_model_key then
    (TrialConfig.model_key; None where not recorded). A spec file or python: module edited during a run, or before a
    resume, trained another network under the case's name, paired with the other backend's trials of the first."""
    if not expected:
        return
    now = user_model_key(model)
    if now != expected:
        raise InputError(
            f"Expected model {model} as the run began ({expected}). Received: its files hold other content now "
            f"({now}): the file, or a module it imports, was edited. To fix, restore what the run began with to "
            "finish the run, or start a new run for the changed model."
        )


# Runs ``harness.import_worker.main``'s argv in a process of the source framework: (exit status, output).
ConvertCall = Callable[[list[str]], tuple[int, str]]


def imported_model(
    ref: ModelRef,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    cache_dir: Path,
    seed: int = 0,
    call: ConvertCall | None = None,
) -> tuple[ModelSpec, NeutralWeights]:
    """The converted spec and weights of a framework or user model, from the cache or a conversion process
    (a fresh one; ``call`` runs the worker's ``main`` elsewhere, as the tests' long-lived framework processes do).
    ``num_classes`` None: a user's factory called with its own default (harness.import_worker)."""
    request = _request(ref, input_shape, num_classes, seed)
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "imports" / f"{key}.npz"
    if path.is_file():
        spec, weights, meta = load_checkpoint(path)
        if ref.kind != "python" or not _stale_user_sources(meta):
            return spec, weights
    _convert_in_worker(request, path, call)
    spec, weights, _ = load_checkpoint(path)
    return spec, weights


def _stale_user_sources(meta: dict[str, object]) -> bool:
    """Whether a python: model's cached conversion was built from user files that have changed or gone since (the
    key holds only the named module's source: a helper it imports changes the model as much). An entry written
    before the files were recorded is stale too: it may hold any earlier version of the helpers."""
    recorded = meta.get("user_sources")
    return not isinstance(recorded, dict) or bool(changed_sources(recorded))


def _fresh_process(argv: list[str]) -> tuple[int, str]:
    return run_worker_module("harness.import_worker", argv)


def _convert_in_worker(request: dict[str, object], path: Path, call: ConvertCall | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    returncode, output = (call or _fresh_process)([json.dumps(request), str(path)])
    unsupported = _take_report(path, ".error.json")
    if unsupported is not None:
        raise UnsupportedModelError(**unsupported)  # its fields, as the worker wrote them
    refused = _take_report(path, ".input-error.json")
    if refused is not None:  # the worker's own account (a request the model cannot take, a fault in the user's code)
        raise InputError(refused["message"])
    failure = _take_report(path, ".failure.json")
    if failure is not None or returncode != 0 or not path.is_file():
        raise _conversion_failed(request, output, failure, returncode)


def _take_report(path: Path, suffix: str) -> dict[str, Any] | None:
    """The worker's report of one kind beside ``path`` (removed once read: the next conversion writes its own)."""
    report = path.with_suffix(suffix)
    if not report.is_file():
        return None
    details = cast(dict[str, Any], json.loads(report.read_text()))
    report.unlink()
    return details


def _conversion_failed(
    request: dict[str, object], output: str, failure: dict[str, Any] | None, returncode: int
) -> InputError:
    """A conversion that failed past the user's factory: in tracing or shaping the model for the requested input,
    which is what another input size, channel count or class count can fix (or the user's code it names). A
    process that ended without a report was ended from outside or by the user's code (its module's import, or its
    factory): no input size fixes that."""
    ref = ModelRef(**request["ref"])  # type: ignore[arg-type]  # request["ref"] is asdict(ModelRef)
    shape = "x".join(str(n) for n in cast(list[int], request["input_shape"]))
    fix = (
        "To fix, choose an input size, channel count and class count the model accepts "
        "(--input-size, --input-channels; xfbench model also --classes)"
    )
    if failure is None:  # died without a report (killed, out of memory, an exit in the user's code): its last words
        tail = (output.strip().splitlines()[-1:] or ["no output"])[0]
        ended = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        received = f"the conversion process ended without a report ({ended}; its last output: {tail.rstrip('.')})"
        module = ref.name.split(":")[0]
        fix = (  # killed from outside (the kernel's out-of-memory killer sends signal 9), or ended by the user's code
            f"To fix, check that `python -c 'import {module}'` runs to its end and that the factory returns its "
            "model (a module that exits or ends its process when imported or when its factory runs cannot be "
            "converted)"
            if ref.kind == "python" and returncode >= 0
            else "To fix, free memory for the conversion (it builds the model in a process of its own), or pick a "
            "smaller --input-size"
        )
    else:
        received = f"the conversion failed with {str(failure['error']).rstrip('.')}"
        if failure.get("at"):
            received += f", raised at {failure['at']}"
            fix += ", or correct the code there"
    classes = "its default classes" if request["num_classes"] is None else f"{request['num_classes']} classes"
    return InputError(
        f"Expected the model {ref.label} to build and convert for input {shape} and {classes}. "
        f"Received: {received}. {fix}."
    )


def read_spec_file(ref: ModelRef) -> ModelSpec:
    """The spec a ``.json`` reference names (parse_model_ref has checked the file exists), its shapes and costs
    computed once so that a spec no layer could run (a kernel larger than its input, a stride of 0, units that are
    not a whole number) fails here, before Ray; a file that is not such a spec is bad input naming what is wrong."""
    path = Path(ref.name)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise InputError(
                "Expected a model spec: a JSON object with the fields name, input_shape, num_classes and layers. "
                f"Received: {type(data).__name__ if data is not None else 'null'} at the top level. To fix, export it "
                "again (`xfbench model NAME --export-spec FILE`) or fix the file"
            )
        spec = spec_from_dict(data)
        unused = spec.unused_layers()
        if unused:  # they would be built, counted in params and MACs, and trained without reaching the output
            raise InputError(
                f"Expected every layer of the spec to reach its output layer {spec.output_name!r}. Received: "
                f"{', '.join(map(repr, unused))}, whose output no later layer reads. To fix, remove them, or name "
                "them in a later layer's inputs"
            )
        model_cost(spec)  # the layers' own checks passed: their shapes must chain
        produced = output_shape(spec)
        if produced != (spec.num_classes,):  # the tables, the loss and the task read num_classes
            raise InputError(
                f"Expected the spec's output layer {spec.output_name!r} to give one logit per class, "
                f"({spec.num_classes},) for its num_classes {spec.num_classes}. Received: an output of shape "
                f"{produced}. To fix, make num_classes and the output layer's size agree."
            )
    except InputError as exc:
        raise InputError(f"{exc} (in the spec file {path})") from None
    except OSError as exc:  # a file that cannot be read at all (permissions, a folder named .json)
        raise InputError(
            f"Expected a model spec file xfbench can read. Received: {path}, which cannot be read "
            f"({type(exc).__name__}: {exc.strerror or exc}). To fix, make it a readable file, or give another."
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:  # JSON's and Unicode's too
        raise InputError(  # not JSON, or JSON without a spec's fields: what the parser met, named
            f"Expected a model spec file as `xfbench model NAME --export-spec FILE` writes it. Received: {path}, "
            f"which cannot be read as one ({type(exc).__name__}: {exc}). To fix, export it again or fix the file."
        ) from None
    return spec


def _resize_to(shape: tuple[int, ...]) -> str:
    """The inputs resized to what a model was made for: the values to give, not only the flags (the spec's own
    input size is the one that fits, whatever --input-size was given)."""
    if len(shape) == 3 and shape[0] == shape[1]:
        side, channels = shape[0], shape[2]
        rgb = " --input-channels 3" if channels == 3 else ""  # grayscale replicated; no flag takes channels away
        return f"resize the inputs to the {side}x{side}x{channels} it takes (--input-size {side}{rgb})"
    return f"give inputs of shape {shape} (--input-size, --input-channels)"


def model_spec(
    model: str, input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, cache_dir: str | Path | None
) -> ModelSpec:
    """The spec a trial trains for ``--model``, whatever its form."""
    ref = parse_model_ref(model)
    if ref.kind == "zoo":
        return build_spec(model, input_shape, num_classes, options)
    if options != ModelOptions():
        raise InputError(
            f"Expected no model options (--width-multiplier and the like) with model {model}: they apply to zoo "
            f"models. Received: {', '.join(f'{k}={v!r}' for k, v in changed_options(options).items())}. To fix, "
            "drop them and change the model's own definition instead."
        )
    if ref.kind == "spec":
        spec = read_spec_file(ref)
    else:
        if cache_dir is None:
            raise ValueError(
                f"Expected a cache directory to convert model {model} into. Received: none. To fix, pass cache_dir "
                "(a run's <results-dir>/_cache)."
            )
        spec, _ = imported_model(ref, input_shape, num_classes, Path(cache_dir))
    if tuple(spec.input_shape) != tuple(input_shape) or spec.num_classes != num_classes:
        fixes = []
        if tuple(spec.input_shape) != tuple(input_shape):
            fixes.append(_resize_to(tuple(spec.input_shape)))
        if spec.num_classes != num_classes:  # a binary task has one output unit (--binary-positive)
            fixes.append(f"pick a task with {spec.num_classes} classes (--classes, --binary-positive)")
        # a factory's classes are its own to follow (a spec file's are what it was exported for)
        remedy = (
            f"give the factory a parameter named num_classes and build its last layer with it (xfbench calls it with "
            f"num_classes={num_classes}; keras.applications' 'classes' is not read)"
            if ref.kind == "python" and spec.num_classes != num_classes
            else "export the spec for this task"
        )
        made = "the factory built" if ref.kind == "python" else "a spec for"
        raise InputError(
            f"Expected model {model} for inputs {tuple(input_shape)} and {num_classes} classes. "
            f"Received: {made} {tuple(spec.input_shape)} and {spec.num_classes} classes. To fix, "
            f"{' and '.join(fixes)}, or {remedy}."
        )
    return spec
