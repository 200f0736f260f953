"""Pretrained backbones from a framework's model zoo or a user's file, in place of a self-trained backbone.

``--pretrained torchvision:resnet18[:IMAGENET1K_V1]`` (torchvision's weights enum; its DEFAULT when no set is
named), ``--pretrained keras:MobileNetV2[:imagenet]``, or ``--weights FILE`` (a torch state dict, .safetensors, a
Keras .weights.h5 or xfbench's neutral .npz). The architecture is ``--model``'s: a zoo name whose layer names are
torchvision's, ``torchvision:NAME`` / ``keras:NAME``, or a user's ``python:`` factory.

What happens before Ray starts (:func:`prepare_weights`, called by the preflight):

1. the weights file is found: the user's, or the one the framework's own download mechanism keeps in xfbench's
   weights home (:func:`weights_home`; ``xfbench weights fetch`` fills it). Missing: exit 2 naming the file,
   where to put it and the fetch command; a zoo's file whose content fails the digest its zoo publishes (torch
   hub's name, Keras' get_file hash): exit 2 naming both digests and the fetch that replaces it;
2. the file is converted in a process of its source framework (``python -m harness.weights_worker``) to a neutral
   checkpoint cached by the file's content hash (sha256), with a probe batch and the source framework's own
   logits and per-layer outputs on it;
3. every backend of the run rebuilds the network from the neutral weights and must reproduce those logits within
   2e-5 x max |logit| (:data:`TOLERANCE_RULE`), or the run stops with the gap and the first layer where the
   outputs part. The backends verify at once, one process each (:func:`verify_all`): each mostly imports its framework.

Each framework's step goes through a :data:`WorkerRunner` (default :func:`run_worker`, a fresh process per step);
the tests pass one that runs the same worker code in their long-lived one-framework processes.

Trials find the checkpoint through a small index keyed by what its conversion follows (:func:`lookup_key`,
:func:`checkpoint_for`); the row's ``weights`` and ``weights_sha256`` columns say which weights they started from.
Preprocessing follows the weights (:func:`with_weight_preprocessing`): input size and normalisation come from the
weight set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness import cachekeys
from harness.backend import REFERENCE_BACKEND, backend_entry, importer_backends
from harness.checkpoints import checkpoint_header, save_checkpoint, save_npz_atomically
from harness.config import TrialConfig
from harness.errors import InputError, MissingInputFile
from harness.fresh_process import run_worker_module
from harness.input_pipeline import InputConfig, pipeline_of
from harness.model_import import model_content_key, parse_model_ref
from harness.spec import Conv2D, ModelSpec, ZeroPad2D
from harness.truncated_weights import check_complete
from harness.user_files import nearest_existing, read_json_object
from harness.weight_files import BadWeightsError, file_digests, file_sha256, weights_format
from harness.weights_fit import check_options_honoured

# torch.hub.HASH_REGEX: a hub file's name carries a prefix of its content's sha256, which torch hub checks only
# while downloading. Copied because harness imports no framework; tests/test_pretrained.py checks it is torch's.
HUB_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
HUBS = importer_backends()  # --pretrained prefix (torchvision, keras) -> the backend whose framework reads it
WEIGHTS_ENV = "XFBENCH_WEIGHTS"  # where downloaded weight files live (default: the user cache)

# keras.applications' preprocess_input convention per model (keras/src/applications/*.py, Keras 3.15): "tf" scales
# to [-1, 1], "torch" is ImageNet mean/std, "caffe" is BGR with ImageNet's means subtracted on 0..255.
KERAS_PREPROCESS = {
    **dict.fromkeys(("MobileNet", "MobileNetV2", "Xception", "InceptionV3", "InceptionResNetV2"), "tf"),
    **dict.fromkeys(("NASNetMobile", "NASNetLarge", "ResNet50V2", "ResNet101V2", "ResNet152V2"), "tf"),
    **dict.fromkeys(("ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19"), "caffe"),
    **dict.fromkeys(("DenseNet121", "DenseNet169", "DenseNet201"), "imagenet"),  # Keras' "torch" mode
}
KERAS_SIZES = {"Xception": 299, "InceptionV3": 299, "InceptionResNetV2": 299, "NASNetLarge": 331}
# torchvision's ImageNet weights: crop size from each enum's transforms (the worker checks it), mean/std ImageNet's
TORCHVISION_SIZES = {"inception_v3": 299}
# ... and they are evaluated at Resize(side) + CenterCrop(size): side 256 unless listed here, by "name" (its DEFAULT
# set, also a user's file of that architecture) or "name:SET" (the worker checks each enum's transforms against it)
_V2_232 = (  # their IMAGENET1K_V2 sets (each their DEFAULT) evaluate at 232
    "mobilenet_v2", "mobilenet_v3_large", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf",
    "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf",
    "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
)  # fmt: skip
_V1_SIDES = {  # their only ImageNet sets
    **dict.fromkeys(("mnasnet0_75", "mnasnet1_3", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"), 232),
    **dict.fromkeys(("resnext101_64x4d", "convnext_base", "convnext_large"), 232),
    "convnext_small": 230, "convnext_tiny": 236, "vit_l_16": 242, "inception_v3": 342,
}  # fmt: skip
TORCHVISION_RESIZE = {
    **_V1_SIDES,
    **{f"{name}:IMAGENET1K_V1": side for name, side in _V1_SIDES.items()},
    **dict.fromkeys(_V2_232, 232),
    **dict.fromkeys((f"{name}:IMAGENET1K_V2" for name in _V2_232), 232),
}


def torchvision_resize_side(name: str, weight_set: str) -> int:
    key = f"{name}:{weight_set}" if weight_set and weight_set != "DEFAULT" else name
    return TORCHVISION_RESIZE.get(key, 256)


@dataclass(frozen=True)
class WeightsRef:
    kind: str  # "torchvision" | "keras" (a framework's zoo) | "file"
    name: str  # the zoo's model name, or the file's absolute path
    weight_set: str = ""  # torchvision: an enum member ("" = DEFAULT); keras: "imagenet"

    @property
    def label(self) -> str:
        if self.kind == "file":
            return Path(self.name).name
        return f"{self.kind}:{self.name}:{self.weight_set}" if self.weight_set else f"{self.kind}:{self.name}"

    @property
    def source_backend(self) -> str:
        if self.kind == "file":
            return weights_format(self.name)[1]
        return HUBS[self.kind]

    @property
    def fetch_command(self) -> str:
        return f"xfbench weights fetch {self.label}"


@dataclass(frozen=True)
class Preprocessing:
    size: int | None  # the square input side the weights were trained at (None: the data's)
    normalize: str  # a key of harness.input_pipeline.NORMALIZATIONS
    resize_mode: str = "stretch"  # how images reach ``size`` (harness.input_pipeline.RESIZE_MODES)
    resize_side: int | None = None  # resize-crop: the shorter side before the centred crop of ``size``
    channels: int | None = 3  # the channels the weights take (None: the data's)


def parse_pretrained(text: str, given_as: str = "--pretrained") -> WeightsRef:
    """``text`` as a zoo weight set; ``given_as`` names where it came from in an error."""
    kind, _, rest = text.partition(":")
    name, _, weight_set = rest.partition(":")
    if kind not in HUBS or not name:
        own_file = "; for a file of your own, pass --weights FILE" if given_as == "--pretrained" else ""
        raise InputError(
            f"Expected {given_as} torchvision:NAME[:WEIGHTS] or keras:NAME[:imagenet]. Received: {text!r}. To fix, "
            f"name the hub, then the network, such as torchvision:resnet18 or keras:MobileNetV2{own_file}."
        )
    if kind == "keras" and weight_set not in ("", "imagenet"):
        raise InputError(
            f"Expected keras:{name} or keras:{name}:imagenet. Received: {text!r}. To fix, give keras:{name} (Keras "
            "publishes its ImageNet weights only)."
        )
    return WeightsRef(kind, name, weight_set or ("imagenet" if kind == "keras" else ""))


def weights_ref(trial: TrialConfig) -> WeightsRef | None:
    """The trial's pretrained weights, or None for a backbone xfbench trains itself."""
    t = trial.transfer
    if t.pretrained and t.weights_file:
        raise InputError(
            f"Expected --pretrained or --weights, not both. Received: pretrained={t.pretrained!r}, "
            f"weights={t.weights_file!r}. To fix, pass one: --pretrained for a zoo's weight set, --weights for a "
            "file of your own."
        )
    if t.pretrained:
        return parse_pretrained(t.pretrained)
    if t.weights_file:
        path = Path(t.weights_file)
        weights_format(path)
        if not path.is_file():
            raise MissingInputFile(
                f"Expected a weights file. Received: --weights {path}, which does not exist. To fix, check the "
                "path (a relative one is read from the working directory)."
            )
        return WeightsRef("file", str(path.resolve()))
    return None


def preprocessing(ref: WeightsRef, model: str) -> Preprocessing:
    """The input size and normalisation a weight set was trained with (a user's file: its framework's zoo's; a
    ``python:`` factory's own file: none, the data fed as it is; a neutral .npz: the input pipeline its spec holds,
    none without one; a zoo's weights in a factory's network: the zoo's)."""
    fmt = weights_format(ref.name)[0] if ref.kind == "file" else ref.kind
    if fmt == "npz":  # a backbone xfbench trained behind --normalize / --input-size saved its spec with them
        recorded = _recorded_pipeline(Path(ref.name))
        return Preprocessing(
            recorded.size, recorded.normalize, recorded.resize_mode, recorded.resize_side, recorded.channels
        )
    if _factorys_own_file(ref, model):
        # a factory's weights follow no convention xfbench knows (not torchvision's ImageNet one: the factory is the
        # user's network, trained on their data)
        return Preprocessing(None, "none", channels=None)
    keras_name = ref.name if ref.kind == "keras" else model.partition(":")[2] if model.startswith("keras:") else ""
    if fmt in ("keras",) or keras_name:
        mode = KERAS_PREPROCESS.get(keras_name, "tf")
        return Preprocessing(KERAS_SIZES.get(keras_name, 224), mode)
    name = ref.name if ref.kind == "torchvision" else model.partition(":")[2] or model
    side = torchvision_resize_side(name, ref.weight_set if ref.kind == "torchvision" else "")
    return Preprocessing(TORCHVISION_SIZES.get(name, 224), "imagenet", "resize-crop", side)


def _recorded_pipeline(path: Path) -> InputConfig:
    """The input pipeline a neutral checkpoint's spec holds (nothing where the file holds no spec xfbench reads: its
    conversion names what is wrong with it)."""
    try:
        spec = checkpoint_header(path)[0]
    except Exception:  # any unreadable file: InputConfig() feeds the data as it is, and the conversion refuses it
        return InputConfig()
    return pipeline_of(spec)


def with_weight_preprocessing(trial: TrialConfig, given: Collection[str] = ()) -> TrialConfig:
    """The trial fed as its weights expect: their input size, normalisation and resize mode unless the trial sets
    its own (--input-size; --normalize and --resize-mode when ``given``, the option paths set on the command line,
    holds them, so ``--normalize none`` overrides the weights'), three channels; a resize-crop keeps the weight
    set's ratio of resize side to crop at any input size. A trial without pretrained weights is unchanged, as is
    one whose weights follow no convention (a ``python:`` factory's file, a neutral .npz): fed its data as it is."""
    ref = weights_ref(trial)
    if ref is None:
        return trial
    wanted = preprocessing(ref, trial.model)
    current = trial.input
    if wanted.normalize == "none" and wanted.size is None and wanted.channels is None:
        return trial
    size = current.size or wanted.size
    own_normalize = "input.normalize" in given or current.normalize != "none"
    own_mode = "input.resize_mode" in given or current.resize_mode != "stretch"
    mode = current.resize_mode if own_mode else wanted.resize_mode
    side = current.resize_side
    if side is None and mode == "resize-crop" and wanted.resize_side and wanted.size and size:
        side = max(size, int(round(size * wanted.resize_side / wanted.size)))
    chosen = replace(
        current,
        size=size,
        channels=current.channels or wanted.channels,
        normalize=current.normalize if own_normalize else wanted.normalize,
        resize_mode=mode,
        resize_side=side,
    )
    return replace(trial, input=chosen)


def weights_home() -> Path:
    """Where downloaded weight files live: $XFBENCH_WEIGHTS, else the user cache (torch hub's and Keras' own
    layouts below it: torch/hub/checkpoints/, keras/models/)."""
    if os.environ.get(WEIGHTS_ENV):
        home = Path(os.environ[WEIGHTS_ENV]).expanduser().resolve()
        existing = nearest_existing(home)
        if not existing.is_dir():  # checked here, not when a worker's download or lookup trips over it
            raise InputError(
                f"Expected ${WEIGHTS_ENV} to name a folder (created on the first fetch). Received: {home}, and "
                f"{existing} is not a folder. To fix, point ${WEIGHTS_ENV} at a folder, or unset it for "
                f"{_default_weights_home()}."
            )
        return home
    return _default_weights_home()


def _default_weights_home() -> Path:
    """The user cache's weights folder, by the data's rule (a relative $XDG_CACHE_HOME ignored, as XDG says)."""
    from harness.data.locate import user_cache_dir

    return user_cache_dir() / "weights"


# How a weights request reaches a process of one framework: (backend, mode, request, OUT) -> the answer.
WorkerRunner = Callable[[str, str, dict[str, Any], Path], dict[str, Any]]
# Runs ``harness.weights_worker.main``'s argv in some process of argv[0]'s framework: (exit status, output).
WorkerCall = Callable[[list[str]], tuple[int, str]]


def _fresh_process(argv: list[str]) -> tuple[int, str]:
    return run_worker_module("harness.weights_worker", argv)


def run_worker(
    backend: str, mode: str, request: dict[str, Any], out: Path, call: WorkerCall | None = None
) -> dict[str, Any]:
    """``python -m harness.weights_worker`` in a fresh process that imports only ``backend``'s framework; its
    answer (OUT.json), or its error raised here as BadWeightsError (bad input: exit 2). ``call`` runs the worker's
    ``main`` elsewhere instead (the tests' long-lived one-framework processes); the files carry the answer alike.

    The worker is told OUT's name in a folder of this call's own beside OUT, removed after: runs sharing a
    --results-dir ask for the same OUT (``work/resolve``, a checkpoint's name), and with the replies at OUT itself
    one run read the other's answer (another weight set's file, then recorded as its own, the digest check passing
    on the same wrong answer) or deleted it (read as a worker killed). What the worker made there besides its
    replies (a conversion's checkpoint and probe batch) moves beside OUT when it answers."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{out.name}.worker-", dir=out.parent) as private:
        told = Path(private) / out.name
        returncode, output = (call or _fresh_process)([backend, mode, json.dumps(request), str(told)])
        answer, error = worker_reply(told, "answer"), worker_reply(told, "error")
        if error.is_file():
            raise BadWeightsError(json.loads(error.read_text())["message"])
        if returncode != 0 or not answer.is_file():
            raise RuntimeError(
                f"Expected the {backend} weights worker ({mode}) to finish with an answer. Received: "
                f"{_how_it_ended(returncode)}; its last output: "
                f"{' | '.join(output.strip().splitlines()[-3:]) or '(none)'}. To fix, free memory where it was killed "
                "by SIGKILL (the kernel's out-of-memory killer); otherwise its last output names the fault."
            )
        result: dict[str, Any] = json.loads(answer.read_text())
        _move_made_files(told, out, {answer, error})
    return result


def _move_made_files(told: Path, out: Path, replies: Collection[Path]) -> None:
    """The files a worker told ``told`` made beside it, but its replies, renamed beside ``out``; ``told`` itself
    last: a checkpoint's presence says its conversion is done, so its probe batch is in place first. Folders stay
    (a conversion's scratch imports, removed with the private folder)."""
    made = [path for path in sorted(told.parent.iterdir()) if path.is_file() and path not in replies]
    for path in sorted(made, key=lambda path: path == told):
        os.replace(path, out.with_name(path.name))


def worker_reply(out: Path, kind: str) -> Path:
    """Where a weights worker told OUT leaves its ``answer`` or ``error``: OUT's name with ``.<kind>.json``
    appended. Appended, not a replaced suffix: the verification runs each backend's worker at once on
    ``<checkpoint>.torch`` and ``<checkpoint>.tensorflow``, which a replaced suffix made one file, so one backend
    could read or delete the other's answer (a fresh-clone test failed so, now and then)."""
    return out.with_name(f"{out.name}.{kind}.json")


def _how_it_ended(returncode: int) -> str:
    """A worker's exit status in words: a process killed by a signal (the kernel's OOM killer, a crash) leaves no
    traceback, so its signal is the only clue."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}" if returncode else "exit status 0 without an answer file"


def _resolved_file(ref: WeightsRef, scratch: Path, runner: WorkerRunner = run_worker) -> tuple[Path, dict[str, Any]]:
    """The file holding ``ref``'s weights and, for a zoo's, the worker's answer about it (its url, weight set and
    expected digest): where the framework's download keeps it (asked of a worker of that framework); missing:
    MissingInputFile naming it, where to put it and the fetch command."""
    if ref.kind == "file":
        return Path(ref.name), {}
    home = weights_home()
    found = runner(ref.source_backend, "resolve", {"ref": asdict(ref), "home": str(home)}, scratch)
    path = Path(found["file"])
    if not path.is_file():
        raise MissingInputFile(
            f"Expected the weights {ref.label} ({found['weight_set']}) in {path.parent}. Received: no file "
            f"{path.name} there, and runs never download. To fix, run `{ref.fetch_command}` on a machine with network "
            f"(set ${WEIGHTS_ENV} to choose the folder), or copy {path.name} from {found['url']} into {path.parent}."
        )
    return path, found


def hub_name_digest(filename: str) -> dict[str, str] | None:
    """The digest a torch hub file's name promises (:data:`HUB_HASH_REGEX`) as a zoo's expected digest: algorithm,
    value (a prefix here) and where it comes from; None when the name carries none."""
    named = HUB_HASH_REGEX.search(filename)
    if not named or not named.group(1):
        return None
    source = "the prefix in its name, which torch hub checks only while downloading"
    return {"algorithm": "sha256", "value": named.group(1), "source": source}


def digest_mismatch(expected: Mapping[str, str] | None, digests: Mapping[str, str]) -> str:
    """Empty when ``digests`` (algorithm -> hex, :func:`harness.weight_files.file_digests`) hold the digest a zoo
    expects, or it expects none; else the digest received, as long as the expected one ("sha256 1a2b3c4d")."""
    if not expected:
        return ""
    value = expected["value"].lower()
    received = digests[expected["algorithm"]]
    # a prefix, as torch hub compares it; Keras' get_file compares whole digests, which startswith also does
    return "" if received.startswith(value) else f"{expected['algorithm']} {received[: len(value)]}"


def _check_zoo_content(ref: WeightsRef, path: Path, found: Mapping[str, Any], digests: Mapping[str, str]) -> None:
    """A zoo's file whose content is not the digest its zoo publishes (cut short, replaced by hand, another set's)
    is a BadWeightsError: torch hub and Keras check it only while downloading and would load it as it is."""
    expected = found.get("expected_digest")
    received = digest_mismatch(expected, digests)
    if not expected or not received:
        return
    check_complete(path, weights_format(path)[0], refetch_hint(ref))  # a file cut short: named by the tensor it lost
    value = expected["value"].lower()
    whole = len(value) == 2 * hashlib.new(expected["algorithm"], usedforsecurity=False).digest_size
    wanted = f"{expected['algorithm']} {value}" if whole else f"{expected['algorithm']} starting {value}"
    raise BadWeightsError(
        f"Expected {path} to hold the weights {ref.label} ({found['weight_set']}): content with {wanted} "
        f"({expected['source']}). Received: {received} (a file cut short, replaced by hand or of another weight "
        f"set). To fix, run `{ref.fetch_command}` (it replaces the file; without network, run it on a machine with "
        f"network and copy the file here, or copy {path.name} again from {found['url']})."
    )


def refetch_hint(ref: WeightsRef, users_fix: str = "copy or save it again") -> str:
    """What to do about a damaged weight file: a zoo's is fetched again, a user's ``users_fix``."""
    if ref.kind == "file":
        return users_fix
    return f"download it again: delete it and run `{ref.fetch_command}`"


def check_finite(tensors: Iterable[tuple[str, Any]], file_name: str, fix: str) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor (``tensors``: name, array pairs, read
    one at a time). The verification cannot catch them (NaN logits compare false against any bound), and a trial
    from them diverged at its first epoch, blaming the training."""
    import numpy as np

    for name, tensor in tensors:
        values = np.asarray(tensor)
        if values.dtype.kind not in "fc":  # an integer count (num_batches_tracked) is always finite
            continue
        finite = np.isfinite(values)
        if not finite.all():
            found = [kind for kind, test in (("NaN", np.isnan), ("inf", np.isinf)) if test(values).any()]
            raise BadWeightsError(
                f"Expected finite values in every tensor of {file_name}. Received: {' and '.join(found)} in tensor "
                f"{name!r} ({int(values.size - finite.sum())} of {values.size} values): the file is damaged or "
                f"comes from a training that diverged. To fix, {fix}."
            )


def nonfinite_fix(ref: WeightsRef) -> str:
    """What to do about weights holding NaN or infinity: a zoo's file is fetched again, a user's exported again."""
    return refetch_hint(
        ref, "export the weights again from a network that trained without diverging, or copy the file again"
    )


def channels_error(file_name: str, takes: int, given: int) -> BadWeightsError:
    """Weights whose first convolution takes other channels than the trial's inputs have (as
    harness.import_worker says it for an imported model): the fix, not the conversion's tensor mismatch."""
    if given == 1:
        fix = (
            f"feed them {takes}: drop --input-channels 1, or pass --input-channels {takes} (a grayscale image is fed "
            f"as {takes} channels)"
        )
    else:
        fix = f"feed them {takes} (--input-channels {takes}), or use weights trained on {given} channels"
    return BadWeightsError(
        f"Expected inputs with the {takes} channels the weights in {file_name} take (their first convolution's "
        f"input channels). Received: inputs with {given}. To fix, {fix}."
    )


def fold_bgr(spec: ModelSpec, weights: dict[str, Any]) -> dict[str, Any]:
    """Weights that read BGR (Caffe's convention, or a python: factory's with --normalize caffe): the first
    convolution's input channels reversed, so the network reads RGB (both converters fold alike)."""
    import numpy as np

    for layer in spec.layers:
        if isinstance(layer, Conv2D):
            kernel = weights[f"{layer.name}/kernel"]
            return {**weights, f"{layer.name}/kernel": np.ascontiguousarray(kernel[:, :, ::-1, :])}
        if not isinstance(layer, ZeroPad2D):
            break
    raise InputError(
        f"Expected {spec.name} to start with a convolution (to fold BGR into). Received: {spec.layers[0]}. To fix, "
        "run without --normalize caffe: only a network whose first layer is a convolution can read BGR weights."
    )


def check_zoo_weights_cached(refs: list[WeightsRef], scratch: Path) -> None:
    """Every zoo weight set in the weights home, or MissingInputFile listing each missing file and where it goes,
    with one fetch command for all of them (one worker per framework resolves the file names; nothing downloads)."""
    zoo = sorted({ref for ref in refs if ref.kind != "file"}, key=lambda ref: ref.label)
    home = weights_home()
    missing = [  # (label, where the file goes and where it comes from)
        (ref.label, f"{Path(f['file']).relative_to(home)} ({f['url']})")
        for ref, f in zip(zoo, _resolved(zoo, home, scratch), strict=True)
        if not Path(f["file"]).is_file()
    ]
    if missing:
        listed = "; ".join(f"{label} -> {where}" for label, where in missing)
        labels = " ".join(label for label, _ in missing)
        raise MissingInputFile(
            f"Expected the zoo weights of this run in the weights home {home}. Received: {len(missing)} of "
            f"{len(zoo)} sets missing: {listed}. Runs never download. To fix, run `xfbench weights fetch "
            f"{labels}` on a machine with network (set ${WEIGHTS_ENV} to choose the folder) and copy the folder here."
        )


def lookup_key(trial: TrialConfig, input_shape: tuple[int, ...]) -> str:
    """The key a trial finds its conversion by (:func:`checkpoint_for`), and the preflight converts once per:
    everything the conversion follows that a trial knows without reading its weights. Reference, architecture,
    model options (an .npz is checked against --model's spec built with them), input shape, and the BGR fold (a
    python: factory's own file folds by the trial's --normalize caffe). Without the fold here, and with the
    preflight converting once per weights, model and shape, two cases of one file found the other's conversion, or
    none inside Ray."""
    t = trial.transfer
    content = {
        "pretrained": t.pretrained,
        "weights_file": t.weights_file,
        "model": trial.model,
        "model_options": asdict(trial.model_options),
        "input_shape": list(input_shape),
        "bgr": _folds_bgr(trial),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _folds_bgr(trial: TrialConfig) -> bool:
    """:func:`weights_read_bgr` from the command line alone: a trial in a Ray worker may not see the weights file
    (only _cache is shared, docs/scheduling.md), and a neutral .npz, which no conversion folds, is not read."""
    t = trial.transfer
    if t.pretrained:
        return weights_read_bgr(parse_pretrained(t.pretrained), trial)
    if t.weights_file and weights_format(t.weights_file)[0] != "npz":
        return weights_read_bgr(WeightsRef("file", t.weights_file), trial)
    return False


def _index_path(cache_dir: Path, trial: TrialConfig, input_shape: tuple[int, ...]) -> Path:
    return Path(cache_dir) / "pretrained" / f"index-{lookup_key(trial, input_shape)}.json"


def checkpoint_for(trial: TrialConfig, input_shape: tuple[int, ...], cache_dir: Path) -> Path:
    """The neutral checkpoint of the trial's pretrained weights, as the preflight of this run prepared it: the
    conversion of the content its run recorded (``weights_key``), or, for a trial without one, the latest."""
    index = _index_path(cache_dir, trial, input_shape)
    weights = trial.transfer.pretrained or trial.transfer.weights_file
    if not index.is_file():
        raise FileNotFoundError(
            f"Expected the converted weights of {weights} (index {index.name} in {index.parent}). Received: none; the "
            "run's preflight prepares them there, on the driver's machine, and outside a run of xfbench nothing "
            "prepares them. To fix, on a cluster let every node see --results-dir's _cache through one shared "
            "filesystem (docs/scheduling.md); elsewhere, start the trial through `xfbench run`."
        )
    latest = json.loads(index.read_text())
    if trial.weights_key is None:
        return index.parent / latest["checkpoint"]
    own = _content_index(index, trial.weights_key)
    if not own.is_file():
        raise FileNotFoundError(
            f"Expected the conversion of {weights} with sha256 {trial.weights_key[:12]}, which this run's preflight "
            f"prepared ({own.name} in {own.parent}). Received: none (the latest conversion is of sha256 "
            f"{str(latest.get('sha256'))[:12]}). To fix, restore the file the run began with, or start a new run."
        )
    return index.parent / json.loads(own.read_text())["checkpoint"]


def _content_index(index: Path, sha: str) -> Path:
    """The index entry of one content's conversion: a file of its own, so runs that convert other contents of the
    reference never rewrite it (a shared index read, changed and written back lost one run's entry to another's)."""
    return index.with_name(f"{index.stem}-{sha[:16]}.json")


def prepared_sha256(checkpoint: Path) -> str:
    """The sha256 of the weight file ``checkpoint`` was converted from (its metadata's)."""
    return str(checkpoint_header(checkpoint)[1]["sha256"])


def check_weights_unchanged(trial: TrialConfig, sha: str) -> None:
    """InputError where a recorded trial's weight file holds other content than when its run began (a resume would
    start its trials from other weights than the run's earlier ones under the same name)."""
    if trial.weights_key is not None and trial.weights_key != sha:
        weights = trial.transfer.pretrained or trial.transfer.weights_file
        raise InputError(
            f"Expected {weights} to hold what it held when the run began (sha256 {trial.weights_key[:12]}), for "
            f"{trial.trial_id}. Received: sha256 {sha[:12]}: the file was replaced or edited since. To fix, restore "
            "it, or start a new run with these weights."
        )


def prepare_weights(
    trial: TrialConfig,
    input_shape: tuple[int, ...],
    cache_dir: Path,
    backends: tuple[str, ...],
    runner: WorkerRunner = run_worker,
) -> Path:
    """Find, convert (cached by content hash) and verify in every backend the trial's weights; returns the
    neutral checkpoint. Raises InputError (exit 2) on missing or bad weights. ``runner``: where
    each framework's step runs (default: a fresh process per step)."""
    ref = weights_ref(trial)
    if ref is None:
        raise ValueError(f"Expected --pretrained or --weights for trial {trial.trial_id}. Received: neither.")
    check_options_honoured(trial, ref.source_backend)  # the preflight's check, for every caller of this one
    folder = Path(cache_dir) / "pretrained"
    path, found = _resolved_file(ref, folder / "work" / "resolve", runner)
    expected = found.get("expected_digest")
    # the cache key's sha256 and the zoo's own digest (Keras' md5) from one read: these files run to hundreds of MB
    digests = file_digests(path, [expected["algorithm"]] if expected else [])
    _check_zoo_content(ref, path, found, digests)
    sha = digests["sha256"]
    check_weights_unchanged(trial, sha)  # a resume's, before an edited file is converted and verified for nothing
    checkpoint = folder / f"{_conversion_key(ref, trial, sha, input_shape)}.npz"
    if not checkpoint.is_file():
        check_complete(path, weights_format(path)[0], refetch_hint(ref))  # names the tensor a cut file lost
        _convert(ref, trial, path, sha, input_shape, checkpoint, runner)
    verify_all(checkpoint, backends, runner)
    _record_in_index(_index_path(cache_dir, trial, input_shape), checkpoint, ref.label, sha)
    return checkpoint


def _record_in_index(index: Path, checkpoint: Path, label: str, sha: str) -> None:
    """The reference's conversion of content ``sha`` in an entry of its own (which runs in progress load by their
    trials' weights_key), and as the latest (for trials recorded without a key); each file written whole."""
    entry = json.dumps({"checkpoint": checkpoint.name, "weights": label, "sha256": sha})
    for path in (_content_index(index, sha), index):
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(entry)
        partial.replace(path)


def _factorys_own_file(ref: WeightsRef, model: str) -> bool:
    """A ``python:`` factory's own weight file: weights of the user's network, which follow no convention xfbench
    knows (a zoo's weights in a factory's network keep the zoo's)."""
    return ref.kind == "file" and parse_model_ref(model).kind == "python"


def weights_read_bgr(ref: WeightsRef, trial: TrialConfig) -> bool:
    """Whether the weights read BGR (Caffe's convention), so their first convolution's input channels are reversed
    on conversion: the convention of weights xfbench knows by name (Keras' ResNet50 and VGG), whatever --normalize
    the trial runs; for a python: factory's own file, whose weights follow no convention xfbench knows, the trial's
    --normalize caffe (a factory given a zoo's weights, --pretrained torchvision:NAME, takes their convention)."""
    if _factorys_own_file(ref, trial.model):
        return trial.input.normalize == "caffe"
    return preprocessing(ref, trial.model).normalize == "caffe"


def _conversion_key(ref: WeightsRef, trial: TrialConfig, sha: str, input_shape: tuple[int, ...]) -> str:
    """The name of a conversion: everything that decides the neutral checkpoint. The file's content, the
    architecture (a ``python:`` factory's by its module's source digest, as harness.model_import keys its own
    conversions, and a spec file's by its content: the same name after an edit is another network), the options,
    the input shape and the code. The trial's --normalize is not in it: nothing of the conversion follows it (a
    Caffe-convention file's BGR fold follows the weights; a ``python:`` factory's, its --normalize caffe, which
    ``bgr`` holds)."""
    form = parse_model_ref(trial.model).kind
    content = {
        "sha256": sha,
        "ref": asdict(replace(ref, name=Path(ref.name).name)) if ref.kind == "file" else asdict(ref),
        "model": trial.model,
        "model_source": model_content_key(trial.model) if form in ("python", "spec") else "",
        "model_options": asdict(trial.model_options),
        "input_shape": list(input_shape),
        "bgr": weights_read_bgr(ref, trial),
        # the backend that converts it (_convert: a neutral .npz in the reference backend, whichever trial came first)
        "code": cachekeys.code_versions(ref.source_backend or REFERENCE_BACKEND),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _convert(
    ref: WeightsRef,
    trial: TrialConfig,
    path: Path,
    sha: str,
    input_shape: tuple[int, ...],
    checkpoint: Path,
    runner: WorkerRunner,
) -> None:
    fmt, reader = weights_format(path)
    request = {
        "ref": asdict(ref),
        "file": str(path),
        "format": fmt,
        "model": trial.model,
        "model_options": asdict(trial.model_options),
        "input_shape": list(input_shape),
        "bgr": weights_read_bgr(ref, trial),
        "meta": {"weights": ref.label, "sha256": sha, "key": checkpoint.stem},
    }
    runner(reader or REFERENCE_BACKEND, "convert", request, checkpoint)  # .npz: any backend reads numpy


def verify_all(checkpoint: Path, backends: tuple[str, ...], runner: WorkerRunner = run_worker) -> None:
    """:func:`verify` in every backend at once, one process each started together (each mostly imports its
    framework, so they overlap); the first failure in ``backends``' order is raised after all have finished."""
    if len(backends) <= 1:
        for backend in backends:
            verify(checkpoint, backend, runner)
        return
    with ThreadPoolExecutor(max_workers=len(backends)) as pool:
        futures = [pool.submit(verify, checkpoint, backend, runner) for backend in backends]
    for future in futures:
        future.result()


# Issue 11's bound, capped relative to the largest output (harness.weights_worker.tolerance): alone, the bound was an
# absolute 1e-4 wherever a randomly initialised deep network's logits are far smaller (3e-10, torchvision's
# mobilenet_v2 at 32x32), and a conversion whose every kernel was zero passed.
# float32 rounding through a converted network, relative to its largest logit, measured on one Xeon (docs/zoo.md,
# "Models from elsewhere"): imports 4.4e-7 (alexnet) to 3.4e-6 (Keras' MobileNetV2); weight files 5.9e-7
# (mobilenet_v2) to 2.7e-6 (Keras' MobileNetV2). Six times the largest leaves room for other CPUs' kernels; 1e-3,
# the bound before, let a mis-converted epsilon or bias through on a network whose logits are below 1.
SOURCE_RELATIVE_GAP = 2e-5
# 2e-5 x L never exceeds 1e-4 x max(1, L), the bound issue 11 set, so that one decides nothing and is not named
TOLERANCE_RULE = "2e-5 x max |logit|"


def verify(checkpoint: Path, backend: str, runner: WorkerRunner = run_worker) -> None:
    """``backend``'s network from the neutral checkpoint reproduces the source framework's logits on the probe
    batch (once per checkpoint, backend and code version: a marker file remembers a pass)."""
    marker = checkpoint.with_name(f"{checkpoint.stem}.verified-{backend}-{cachekeys.code_tag(backend)}.json")
    if marker.is_file():
        return
    result = runner(backend, "probe", {"checkpoint": str(checkpoint)}, checkpoint.with_suffix(f".{backend}"))
    if not result["gap"] <= result["bound"]:  # a NaN gap compares false either way: it is no pass
        raise BadWeightsError(
            f"Expected {backend}'s network from the converted weights to reproduce the source framework's logits "
            f"within {result['bound']:.3g} ({TOLERANCE_RULE}). Received: a gap of {result['gap']:.3g}; "
            f"the outputs first part at layer {result['first_layer']!r} (gap {result['layer_gap']:.3g}), so the "
            "conversion of that layer differs between the frameworks. To fix, report it with the file and the "
            f"command; meanwhile, leave {backend} out of --backend."
        )
    marker.write_text(json.dumps(result))


def write_converted(
    path: Path, spec: Any, weights: dict[str, Any], meta: dict[str, Any], probe: dict[str, Any]
) -> None:
    """The worker's output: the neutral checkpoint and, beside it, the probe batch with the source's outputs."""
    arrays = {"x": probe["x"], "logits": probe["logits"]}
    arrays.update({f"layer::{name}": value for name, value in probe["layers"].items()})
    # the probe first, renamed into place whole: the checkpoint's presence says the conversion is done (a probe cut
    # short beside a whole checkpoint failed every later verification until _cache was deleted by hand)
    save_npz_atomically(path.with_suffix(".probe.npz"), arrays)
    save_checkpoint(path, spec, weights, meta)


def backend_weights_module(backend: str) -> str:
    """``backends/<name>/weight_files.py``: reads the framework's weight files (imported in a worker only)."""
    return backend_entry(backend).importer_module.rsplit(".", 1)[0] + ".weight_files"


def _sets_file(home: Path) -> Path:
    return home / "sets.json"


# What to do about a damaged index of the weights home (the file names of each fetched set).
_SETS_FIX = "To fix, delete it: `xfbench weights fetch` writes it again."


def _resolved(
    refs: list[WeightsRef], home: Path, scratch: Path, check_architectures: bool = False
) -> list[dict[str, Any]]:
    """Where each zoo set's file goes and comes from, in ``refs``' order: one worker per framework checks every
    name and weight set against its zoo (and, before a fetch, that each architecture converts), downloading
    nothing."""
    found: dict[WeightsRef, dict[str, Any]] = {}
    for backend in sorted({ref.source_backend for ref in refs}):
        group = [ref for ref in refs if ref.source_backend == backend]
        request = {
            "refs": [asdict(ref) for ref in group],
            "home": str(home),
            "check_architectures": check_architectures,
        }
        answer = run_worker(backend, "resolve_all", request, scratch / f"resolve-{backend}")["found"]
        found.update(zip(group, answer, strict=True))
    return [found[ref] for ref in refs]


def fetch_weights(names: list[str], home: Path | None = None) -> list[tuple[str, Path]]:
    """Download each zoo weight set through its framework's own mechanism into the weights home (the step that
    prepares a machine without network); returns (label, file) pairs and records them for ``weights list``.
    Every name is checked against its zoo before the first download, and each set is recorded once it is in."""
    home = home or weights_home()
    refs = [parse_pretrained(name, "each name of `xfbench weights fetch` as") for name in names]
    _read_sets(home)  # a damaged index is named before anything downloads
    before = _folders(home)
    fetched = []
    try:
        with tempfile.TemporaryDirectory(prefix="xfbench-fetch-") as scratch:  # the workers' replies
            _resolved(refs, home, Path(scratch), check_architectures=True)
            for ref in refs:
                request = {"ref": asdict(ref), "home": str(home)}
                found = run_worker(ref.source_backend, "fetch", request, Path(scratch) / ref.label.replace(":", "-"))
                fetched.append((ref.label, Path(found["file"])))
                sets = _read_sets(home) | {ref.label: _in_home(Path(found["file"]), home)}
                _sets_file(home).write_text(json.dumps(sets, indent=1, sort_keys=True))
    finally:
        _remove_new_empty_folders(home, before)
    return fetched


def _folders(root: Path) -> set[Path]:
    return {root, *(p for p in root.rglob("*") if p.is_dir())} if root.is_dir() else set()


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """The folders a fetch made and left empty (a framework makes its download folder first, then fails offline),
    deepest first, so the weights home does not look as if it held something."""
    for folder in sorted(_folders(root) - before, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _in_home(path: Path, home: Path) -> str:
    """A fetched file's path as the index records it: relative to the weights home, which the docs' workflow copies
    from a machine with network to one without (an absolute path named the first machine's folder, and every set
    read as "copied in" on the second)."""
    try:
        return str(path.resolve().relative_to(home.resolve()))
    except ValueError:  # outside the home (a framework's own cache): as it is
        return str(path)


def _read_sets(home: Path) -> dict[str, str]:
    """The weights home's index: each fetched set's label -> its file (relative to ``home``; absolute in an index
    written before 2026-12-05, or for a file outside it)."""
    sets = read_json_object(_sets_file(home), _SETS_FIX)
    wrong = {label: path for label, path in sets.items() if not isinstance(path, str)}
    if wrong:
        raise InputError(
            f"Expected {_sets_file(home)} to map each fetched weight set to its file's path. Received: "
            f"{json.dumps(wrong)[:200]}. {_SETS_FIX}"
        )
    return sets


@dataclass(frozen=True)
class CachedWeights:
    label: str  # the set it was fetched as ("" for a file put there by hand)
    framework: str  # "torchvision" (torch hub's folder) | "keras"
    path: Path
    size_bytes: int
    problem: str = ""  # why the content is not what its name promises ("": it is, or nothing says what it should be)


def cached_weights(home: Path | None = None, verify: bool = False) -> list[CachedWeights]:
    """Weight files in the weights home, in torch hub's and Keras' folders, with the set each was fetched as, and
    with ``verify``, each torch hub file checked against the sha256 prefix in its name (a read of every byte: the
    home can hold gigabytes, and a run checks the files it uses anyway). Keras' file names carry no digest (its
    applications pass get_file theirs, which would take a TensorFlow process to ask), so a run checks those."""
    home = home or weights_home()
    labels = {(home / path).resolve(): label for label, path in _read_sets(home).items()}
    found = []
    for framework, folder in (("torchvision", home / "torch/hub/checkpoints"), ("keras", home / "keras/models")):
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if path.is_file():
                problem = _hub_file_problem(path) if verify and framework == "torchvision" else ""
                label = labels.get(path.resolve(), "")
                found.append(CachedWeights(label, framework, path, path.stat().st_size, problem))
    return found


def hub_file_mismatch(path: Path) -> str:
    """The digest a torch hub file holds where its name promises another ("sha256 67afde24, not f37072fd"); ""
    when it holds the promised one, its name promises none, or it is not there. Reads the file only where a digest
    is named. The one check of a hub file's name against its content: weights list's, and fetch's before it
    downloads again (backends/torch/weight_files.drop_damaged_download)."""
    expected = hub_name_digest(path.name)
    received = digest_mismatch(expected, {"sha256": file_sha256(path)}) if expected and path.is_file() else ""
    return f"{received}, not {expected['value']}" if expected and received else ""


def _hub_file_problem(path: Path) -> str:
    """Why a torch hub file's content is not what its name promises, or "" (it is, or its name promises nothing)."""
    mismatch = hub_file_mismatch(path)
    return f"content does not match the hash in its name: {mismatch} (cut short or replaced)" if mismatch else ""
