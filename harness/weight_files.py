"""Weight files a user brings (``--weights FILE``): their formats, content hashes, and the checks that name a bad
tensor. Framework-free: the source framework's worker (backends/<name>/weight_files.py) reads torch and Keras
files; ``.safetensors`` is read here with numpy, so no file is ever unpickled.

Formats: a torch state dict (``.pth`` / ``.pt``, read with ``torch.load(weights_only=True)``), ``.safetensors``
(torch names and layouts), a Keras ``.weights.h5`` (or a legacy Keras ``.h5``), xfbench's neutral ``.npz``
(a checkpoint as :mod:`harness.checkpoints` writes it).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.backend import importer_backends
from harness.errors import InputError

# suffix -> (format, the backend whose framework reads it; "" for the harness itself)
# suffix -> (format, the --model prefix whose importer's backend reads it; "" for xfbench's own checkpoints)
FORMATS: dict[str, tuple[str, str]] = {
    ".pth": ("state_dict", "torchvision"),
    ".pt": ("state_dict", "torchvision"),
    ".safetensors": ("safetensors", "torchvision"),
    ".weights.h5": ("keras", "keras"),
    ".h5": ("keras", "keras"),
    ".npz": ("npz", ""),
}

# safetensors dtype names -> numpy dtypes (bfloat16 is widened by the reader)
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_HEADER_LIMIT = 100 * 2**20  # the format's own limit on the JSON header


class BadWeightsError(InputError):
    """A weight file that does not fit the architecture or is damaged: names the tensor when there is one."""


def weights_format(path: str | Path) -> tuple[str, str]:
    """(format, reading backend) of a weight file by its name; raises InputError listing the known suffixes."""
    if Path(path).is_dir():  # its name alone ('tmp') would not say why it was refused
        raise InputError(
            f"Expected a weight file ending in one of {list(FORMATS)}. Received: {path}, a folder. To fix, name "
            "the file in it: a torch state dict (.pth), .safetensors, Keras .weights.h5 or xfbench's neutral .npz."
        )
    name = Path(path).name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            fmt, prefix = FORMATS[suffix]
            return fmt, importer_backends().get(prefix, "")
    raise InputError(
        f"Expected a weight file ending in one of {list(FORMATS)}. Received: {Path(path).name!r}. "
        "To fix, save a torch state dict (.pth), .safetensors, Keras .weights.h5 (a .keras model: "
        "model.save_weights('name.weights.h5')) or xfbench's neutral .npz."
    )


def file_sha256(path: str | Path) -> str:
    return file_digests(path)["sha256"]


def file_digests(path: str | Path, algorithms: Collection[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file's content, all from one read: a zoo's file is keyed by its sha256 and checked against
    the md5 its zoo publishes (keras.applications), and weight files run to hundreds of MB."""
    # md5 only compares content with a published digest here; usedforsecurity=False keeps it on FIPS builds
    hashers = {name: hashlib.new(name, usedforsecurity=False) for name in {"sha256", *algorithms}}
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as numpy (the format: u64 header length, JSON header, raw data).

    A file cut short names the first tensor whose bytes are missing, with the bytes expected and present."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise BadWeightsError(
            f"Expected a .safetensors file (8 bytes of header length, the header, the data). Received: {path} has "
            f"{len(data)} bytes (truncated or empty). To fix, write the file again."
        )
    (length,) = struct.unpack("<Q", data[:8])
    if length > _HEADER_LIMIT or 8 + length > len(data):
        raise BadWeightsError(
            f"Expected a .safetensors header of {length} bytes. Received: {path} has {len(data) - 8} bytes after "
            "the length (truncated or not a .safetensors file). To fix, write the file again."
        )
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError as exc:
        raise BadWeightsError(
            f"Expected a JSON .safetensors header. Received: {exc} in {path} (a damaged file, or not a .safetensors "
            "one). To fix, write the file again (safetensors' save_file, or harness.weight_files.write_safetensors)."
        ) from None
    body = memoryview(data)[8 + length :]
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _safetensors_tensor(name, entry, body, path)
    return tensors


def _safetensors_tensor(name: str, entry: dict, body: memoryview, path: str | Path) -> np.ndarray:
    try:
        start, end = (int(v) for v in entry["data_offsets"])
        shape = tuple(int(v) for v in entry["shape"])
    except (KeyError, TypeError, ValueError):
        raise BadWeightsError(
            f"Expected whole-number data_offsets (two) and shape for tensor {name!r} in {path}'s header. Received: "
            f"{str(entry)[:200]}. To fix, write the file again."
        ) from None
    if end > len(body):
        raise BadWeightsError(
            f"Expected tensor {name!r} {shape} in bytes {start}..{end} of {path}'s data. Received: only "
            f"{len(body)} bytes (the file is truncated). To fix, write the file again."
        )
    raw = bytes(body[start:end])
    if entry.get("dtype") != "BF16" and entry.get("dtype") not in _SAFETENSORS_DTYPES:
        raise BadWeightsError(
            f"Expected a numeric dtype for tensor {name!r} in {path}'s header. Received: {entry.get('dtype')!r}. "
            "To fix, write the file again."
        )
    itemsize = 2 if entry["dtype"] == "BF16" else np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]]).itemsize
    if any(n < 0 for n in shape) or len(raw) != math.prod(shape) * itemsize:
        raise BadWeightsError(
            f"Expected tensor {name!r} of shape {shape} ({entry['dtype']}) to fill its {len(raw)} bytes "
            f"{start}..{end} of {path}. Received: a header whose shape and byte range disagree (a damaged file). "
            "To fix, write the file again."
        )
    if entry["dtype"] == "BF16":  # numpy has no bfloat16: its 16 bits are the top half of a float32
        return np.ndarray(shape, np.float32, buffer=(np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).tobytes())
    return np.ndarray(shape, _SAFETENSORS_DTYPES[entry["dtype"]], buffer=raw).copy()  # shape () stays a scalar


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Write float32/int64 numpy arrays as .safetensors (what the tests write, and what a user can convert to)."""
    names = {np.dtype(v): k for k, v in _SAFETENSORS_DTYPES.items()}
    header: dict[str, object] = {}
    chunks, offset = [], 0
    for name, array in tensors.items():
        array = np.asarray(array, order="C")  # not ascontiguousarray: it makes a scalar 1-d
        raw = array.tobytes()
        header[name] = {
            "dtype": names[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    Path(path).write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


def input_size_hint(expected: tuple[int, ...], received: tuple[int, ...], inputs_axis: int = 0) -> str:
    """A dense kernel whose inputs alone differ (axis ``inputs_axis``: 0 in Keras' and the neutral layout, 1 in a
    torch Linear's weight) may follow a Flatten, whose output grows with the input size: Keras' VGG16 file (fc1 of
    25088 = 7 x 7 x 512 inputs at 224 x 224) read at --input-size 64 was told to pass another model or file."""
    if len(expected) != 2 or len(received) != 2:
        return ""
    outputs_axis = 1 - inputs_axis
    if expected[outputs_axis] != received[outputs_axis] or expected[inputs_axis] == received[inputs_axis]:
        return ""
    return (
        " If it is a dense layer after a Flatten (VGG's first fully connected layer), its inputs follow the input "
        "size: give the --input-size the file was saved at (224 for keras.applications' VGG16 and VGG19 files)."
    )


def _wrapper_prefix(expected: Mapping[str, object], received: Mapping[str, object]) -> str:
    """The one prefix every name in the file carries before an expected name ("module.", "_orig_mod.", nested ones
    too), where the file holds every expected tensor so; '' otherwise."""
    first = next(iter(expected), None)
    if first is None or first in received:
        return ""
    prefix = next((name[: -len(first)] for name in received if name.endswith(f".{first}")), "")
    # every expected tensor under it and nothing else: a model holding the architecture beside other parts (a head
    # of its own) is not a wrapper's, and its names are not the architecture's
    if (
        prefix
        and all(f"{prefix}{name}" in received for name in expected)
        and all(r.startswith(prefix) for r in received)
    ):
        return prefix
    return ""


@dataclass(frozen=True)
class Fit:
    """What a weight file that does not fit --model's architecture does fit, found by the source framework's worker:
    ``what`` it is in words ("torchvision's resnet34", "mobilenet_v2 at width 0.5"), ``fix`` what to do, after
    "To fix, " ("pass --model resnet34")."""

    what: str
    fix: str


def check_tensor_shapes(
    expected: Mapping[str, tuple[int, ...]],
    received: Mapping[str, tuple[int, ...]],
    source: str,
    architecture: str,
    fits: Callable[[], Fit | None] | None = None,
) -> None:
    """Raise BadWeightsError naming the first tensor that is missing, unexpected or of another shape.

    ``expected``: the architecture's tensors and shapes; ``received``: the file's; ``fits``: what the file's tensors
    fit instead, asked only once they do not fit (building candidates costs a second): the fix then names it, as
    "pass the matching --model" alone did not (a resnet34 file for --model resnet18 was told to drop its extra
    blocks, a width-0.5 file for mobilenet_v2 not told the width)."""
    prefix = _wrapper_prefix(expected, received)
    if prefix:
        raise BadWeightsError(
            f"Expected {architecture}'s tensor names in {source} ({next(iter(expected))!r}, ...). Received: every one "
            f"under the prefix {prefix!r} ('{prefix}{next(iter(expected))}'): the state of a model saved inside a "
            "wrapper (DataParallel and DistributedDataParallel add 'module.', torch.compile '_orig_mod.'). To fix, "
            "save the inner model's state (model.module.state_dict(), model._orig_mod.state_dict()), or strip the "
            "prefix from the names."
        )
    found = _misfit(expected, received, source, architecture)
    if found is None:
        return
    fit = fits() if fits is not None else None
    if fit is None:
        raise BadWeightsError(f"{found.expected} Received: {found.received}. {found.advice}")
    raise BadWeightsError(
        f"{found.expected} Received: {found.received}: every tensor of the file fits {fit.what}. To fix, {fit.fix}."
    )


@dataclass(frozen=True)
class _Misfit:
    """The first tensor that does not fit, in words: the message's Expected and Received parts, and what to do
    when no other architecture is found to fit the file."""

    expected: str
    received: str
    advice: str


def _misfit(
    expected: Mapping[str, tuple[int, ...]], received: Mapping[str, tuple[int, ...]], source: str, architecture: str
) -> _Misfit | None:
    for name, shape in expected.items():
        if name not in received:
            return _Misfit(
                f"Expected tensor {name!r} of shape {tuple(shape)} in {source} for {architecture}.",
                f"no such tensor ({len(set(expected) - set(received))} missing)",
                "Is the file for another architecture? To fix, pass the matching --model, or save the model's full "
                "state.",
            )
        if tuple(received[name]) != tuple(shape):
            hint = input_size_hint(tuple(shape), tuple(received[name]), 1 if name.endswith(".weight") else 0)
            return _Misfit(
                f"Expected tensor {name!r} of shape {tuple(shape)} in {source} for {architecture}.",
                f"shape {tuple(received[name])}",
                f"To fix, pass the matching --model (and its options), or the matching file.{hint}",
            )
    extra = [name for name in received if name not in expected]
    if not extra:
        return None
    # not "drop those tensors": the extra tensors of a deeper network of the family (resnet34's third block for
    # resnet18) are layers, and dropping them built a network that computes nothing the file was trained for
    return _Misfit(
        f"Expected only {architecture}'s tensors in {source}.",
        f"unexpected tensor {extra[0]!r} of shape {tuple(received[extra[0]])} ({len(extra)} unexpected)",
        "To fix, pass the --model the file was saved from (without its extra tensors, the network would not be the "
        "one the file was trained as).",
    )
