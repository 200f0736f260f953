"""A weight file cut short (an interrupted download or copy) named by the first tensor whose bytes are missing.

Framework-free and read-only: nothing in a file is executed. The formats, as their writers lay them out:

- torch's ``.pth`` (``torch.save``, zip format): a stored (uncompressed) zip of ``ARCHIVE/data.pkl`` (the pickle
  that names each tensor and the storage key holding its bytes), then one record ``ARCHIVE/data/KEY`` per storage,
  each followed by a data descriptor (torch writes the sizes there, not in the local header), then the central
  directory at the very end. A cut file has lost the directory, so :func:`check_torch_zip` walks the local file
  headers from the start. ``data.pkl`` is read by :class:`_IndexUnpickler`, which resolves no name but an
  allow-list of torch's rebuild functions, each mapped to a recorder that returns a plain record: it learns tensor
  names, storage keys, dtypes and element counts, and never calls into torch or anything else. A whole file's
  records are read against their CRC-32 (torch.load does not check it), a failing one named by its tensor.
- ``.safetensors``: an 8-byte header length, a JSON header giving every tensor's byte range, the data.
- HDF5 (Keras ``.weights.h5``): the superblock states the file's end-of-file address; h5py, opening a copy padded
  to that length, gives each dataset's byte range where its metadata survived.
"""

from __future__ import annotations

import json
import mmap
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.weight_files import BadWeightsError

_LOCAL, _DESCRIPTOR = b"PK\x03\x04", b"PK\x07\x08"
_ALIGNMENT = 64  # torch aligns each record's data to 64 bytes (its ".storage_alignment" record)
# torch's legacy storage classes (what data.pkl names a storage's dtype by) -> bytes per element
_ITEMSIZE = {
    **dict.fromkeys(("DoubleStorage", "LongStorage", "ComplexFloatStorage"), 8),
    **dict.fromkeys(("FloatStorage", "IntStorage"), 4),
    **dict.fromkeys(("HalfStorage", "BFloat16Storage", "ShortStorage"), 2),
    **dict.fromkeys(("CharStorage", "ByteStorage", "BoolStorage", "UntypedStorage"), 1),
    "ComplexDoubleStorage": 16,
}


@dataclass(frozen=True)
class _StorageType:
    name: str  # e.g. "FloatStorage"


@dataclass(frozen=True)
class _Storage:
    key: str
    nbytes: int | None  # None: a storage class this module does not know the element size of


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage


def _rebuild_tensor(storage: Any, *_: Any) -> _Tensor:
    return _Tensor(storage)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


# (module, name) data.pkl may name -> the harmless stand-in the unpickler returns for it
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


# The typed storages a state dict's tensors point at (torch.FloatStorage, torch.HalfStorage, ...), by qualified name.
_STORAGE_CLASS = re.compile(r"torch\.(\w+Storage)")


class _IndexUnpickler(pickle.Unpickler):
    """Reads torch's data.pkl into names and storage records; any other global is refused, so nothing runs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        storage = _STORAGE_CLASS.fullmatch(f"{module}.{name}")
        if storage:
            return _StorageType(storage.group(1))
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        # torch: ("storage", storage class, key, location, element count)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        itemsize = _ITEMSIZE.get(storage_type.name) if isinstance(storage_type, _StorageType) else None
        return _Storage(key, numel * itemsize if itemsize else None)


def _tensor_names(obj: Any, prefix: str = "") -> Iterator[tuple[str, _Tensor]]:
    """(name, tensor) for every tensor in the unpickled object: a state dict's keys, nested dicts joined by dots
    (a {"state_dict": ...} wrapper dropped, as the reader drops it)."""
    if isinstance(obj, _Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        inner = obj["state_dict"] if isinstance(obj.get("state_dict"), dict) else obj
        for key, value in inner.items():
            yield from _tensor_names(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            yield from _tensor_names(value, f"{prefix}.{index}" if prefix else str(index))


@dataclass
class _Record:
    name: str
    header_at: int
    data_at: int
    size: int | None  # None: cut before its end


@dataclass
class _Walk:
    """What the local headers of a zip cut short say: the records found, the tensor index, where the walk ended."""

    records: list[_Record]
    index: dict[str, list[tuple[str, int | None]]] | None  # storage key -> [(tensor name, bytes)]; None: unread
    end: int
    damaged_at: int | None = None  # bytes that are not a zip record where one should start


def _read_index(mm: mmap.mmap, data_at: int) -> tuple[dict[str, list[tuple[str, int | None]]], int] | None:
    """data.pkl's storages and tensor names, and its length; None when it is cut short or not a state dict."""
    mm.seek(data_at)
    try:
        loaded = _IndexUnpickler(mm).load()  # an mmap reads like a binary file
    except _UNREADABLE_INDEX:
        return None
    return _storages(loaded), mm.tell() - data_at


# What reading a damaged or cut data.pkl with _IndexUnpickler raises
_UNREADABLE_INDEX = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError)


def _storages(loaded: Any) -> dict[str, list[tuple[str, int | None]]]:
    """Storage key -> [(tensor name, bytes)] of an unpickled tensor index."""
    index: dict[str, list[tuple[str, int | None]]] = {}
    for name, tensor in _tensor_names(loaded):
        index.setdefault(tensor.storage.key, []).append((name, tensor.storage.nbytes))
    return index


def _descriptor_length(mm: mmap.mmap, at: int, size: int) -> int:
    """Bytes of the data descriptor at ``at`` for a record of ``size`` bytes (zip64's or the plain one); 0: none."""
    if mm[at : at + 4] != _DESCRIPTOR:
        return 0
    if len(mm) >= at + 16 and struct.unpack("<I", mm[at + 8 : at + 12])[0] == size:
        return 16
    if len(mm) >= at + 24 and struct.unpack("<Q", mm[at + 8 : at + 16])[0] == size:
        return 24
    return 0


def _find_end(mm: mmap.mmap, data_at: int) -> int | None:
    """The size of a record whose length the walk does not know: its data descriptor states it."""
    at = mm.find(_DESCRIPTOR, data_at)
    while at != -1:
        if _descriptor_length(mm, at, at - data_at):
            return at - data_at
        at = mm.find(_DESCRIPTOR, at + 1)
    return None


def _storage_key(name: str) -> str | None:
    parts = name.split("/")
    return parts[-1] if len(parts) >= 3 and parts[-2] == "data" else None


def _walk(mm: mmap.mmap) -> _Walk:
    walk = _Walk([], None, 0)
    at, total = 0, len(mm)
    while at + 30 <= total and mm[at : at + 4] == _LOCAL:
        flags, method, _, _, _, csize, _, name_len, extra_len = struct.unpack("<HHHHIIIHH", mm[at + 6 : at + 30])
        name = mm[at + 30 : at + 30 + name_len].decode("utf-8", "replace")
        record = _Record(name, at, at + 30 + name_len + extra_len, None)
        walk.records.append(record)
        if record.data_at > total or method != 0:  # its header cut; or compressed, which torch never writes
            walk.end = at
            return walk
        key = _storage_key(name)
        if name.endswith("data.pkl") and walk.index is None:
            read = _read_index(mm, record.data_at)
            if read is not None:
                walk.index, record.size = read
        elif key is not None and walk.index is not None and key in walk.index:
            record.size = walk.index[key][0][1]
        elif not flags & 8:  # sizes in the local header (a writer other than torch's)
            record.size = csize
        if record.size is None:
            record.size = _find_end(mm, record.data_at)
        if record.size is None or record.data_at + record.size > total:
            record.size = None
            walk.end = total
            return walk
        at = record.data_at + record.size
        at += _descriptor_length(mm, at, record.size) if flags & 8 else 0
    walk.end = at
    if at < total and mm[at : at + 4] not in (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06"):
        walk.damaged_at = at
    return walk


def _estimated_size(walk: _Walk, cut: _Record | None, missing: list[tuple[str, int]]) -> int:
    """Roughly how long the whole file is: the missing storage records laid out as torch writes them (header,
    padding to the alignment, data, 16-byte descriptor), then its last two small records and the directory."""
    prefix = walk.records[0].name.rsplit("/", 1)[0] if walk.records else "archive"
    at = walk.end
    for key, nbytes in missing:
        if cut is not None and _storage_key(cut.name) == key:
            at = cut.data_at + nbytes + 16
        else:
            at = -(-(at + 34 + len(f"{prefix}/data/{key}")) // _ALIGNMENT) * _ALIGNMENT + nbytes + 16
    count = len(walk.records) + len(missing) + 2  # + "version" and ".data/serialization_id"
    return at + 2 * (30 + 64 + 16) + count * (46 + len(prefix) + 24) + 22


def check_torch_zip(path: Path, fix: str) -> None:
    """Raise BadWeightsError naming the first tensor a torch .pth cut short lost, or whose bytes fail their CRC-32
    (a file damaged in place: torch.load never checks it); a whole, undamaged file passes, as does a file that is
    no zip at all (torch.load's own error says what it is)."""
    with open(path, "rb") as handle:
        if handle.read(4) != _LOCAL:
            return
        try:
            with zipfile.ZipFile(handle) as archive:
                _check_records(archive, path, fix)
            return
        except zipfile.BadZipFile:
            pass
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            walk, total = _walk(mm), len(mm)
    raise BadWeightsError(_torch_message(path, walk, total, fix))


def _check_records(archive: zipfile.ZipFile, path: Path, fix: str) -> None:
    """Every record of a whole torch zip read against the CRC-32 its directory holds (zipfile checks it as a
    record is read to its end): one bit flipped in a tensor's bytes loads silently, as another number."""
    for info in archive.infolist():
        try:
            with archive.open(info) as record:
                while record.read(2**20):
                    pass
        except zipfile.BadZipFile as exc:
            found = "its bytes fail the CRC-32" if "CRC" in str(exc) else f"its zip record is damaged ({exc})"
            raise BadWeightsError(
                f"Expected every record of {path.name} to hold the bytes its zip directory's CRC-32 says. Received: "
                f"{_record_label(archive, info.filename)}: {found}, so the file is damaged (torch.load does not check "
                f"it, and would read other numbers). To fix, {fix}."
            ) from None


def _record_label(archive: zipfile.ZipFile, name: str) -> str:
    """A torch zip's record in words: the tensors whose storage it holds (read from data.pkl, as the walk of a file
    cut short reads it), the tensor index itself, or its name."""
    if name.endswith("/data.pkl"):
        return f"the tensor index ({name})"
    key = _storage_key(name)
    index = _zip_index(archive) if key is not None else None
    names = [tensor for tensor, _ in index.get(key, [])] if index is not None and key is not None else []
    if not names:
        return f"record {name}"
    label = f"tensor {names[0]!r}" if len(names) == 1 else f"tensors {', '.join(map(repr, names))}"
    return f"{label} (storage data/{key})"


def _zip_index(archive: zipfile.ZipFile) -> dict[str, list[tuple[str, int | None]]] | None:
    """data.pkl's storage key -> [(tensor name, bytes)] of a whole torch zip; None where it does not read."""
    pickles = [info for info in archive.infolist() if info.filename.endswith("/data.pkl")]
    if not pickles:
        return None
    try:
        with archive.open(pickles[0]) as handle:
            return _storages(_IndexUnpickler(handle).load())
    except (*_UNREADABLE_INDEX, zipfile.BadZipFile):
        return None


def _torch_message(path: Path, walk: _Walk, total: int, fix: str) -> str:
    head = f"Expected every tensor of {path.name} complete (its zip directory is missing). Received: "
    if walk.index is None:
        return (
            f"{head}its tensor index (data.pkl) cut short or unreadable, so no tensor can be named (the file "
            f"ends at byte {total}). To fix, {fix}."
        )
    if walk.damaged_at is not None:
        return f"{head}no zip record at byte {walk.damaged_at} of {total} (the file is damaged). To fix, {fix}."
    seen = {_storage_key(r.name) for r in walk.records if r.size is not None}
    cut = walk.records[-1] if walk.records and walk.records[-1].size is None else None
    missing = [(key, entries[0][1] or 0) for key, entries in walk.index.items() if key not in seen]
    first = _storage_key(cut.name) if cut and _storage_key(cut.name) in walk.index else None
    first = first or (missing[0][0] if missing else None)
    if first is None:
        return f"{head}every tensor's bytes, but the file's end (its zip directory) cut at byte {total}. To fix, {fix}."
    names = [name for name, _ in walk.index[first]]
    nbytes = walk.index[first][0][1]
    record = cut if cut is not None and _storage_key(cut.name) == first else None
    received = max(0, total - record.data_at) if record is not None else 0
    label = f"tensor {names[0]!r}" if len(names) == 1 else f"tensors {', '.join(map(repr, names))}"
    estimate = _estimated_size(walk, record, missing)
    return (
        f"{head}{label} (storage data/{first}): expected {nbytes if nbytes is not None else '?'} bytes, received "
        f"{received} — the file is cut short at byte {total} of ~{estimate} ({len(missing)} of {len(walk.index)} "
        f"storages incomplete). To fix, {fix}."
    )


def check_safetensors(path: Path, fix: str) -> None:
    """Raise BadWeightsError naming the first tensor (in file order) whose bytes a .safetensors file lacks."""
    total = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if length < 0 or length > 100 * 2**20 or 8 + length > total:
            raise BadWeightsError(
                f"Expected a .safetensors header in {path.name}. Received: the file ends at byte {total}, inside "
                f"its header (which names the tensors), so no tensor can be named. To fix, {fix}."
            )
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise BadWeightsError(
                f"Expected a JSON .safetensors header in {path.name}. Received: {exc} (a damaged file, or not a "
                f".safetensors one). To fix, {fix}."
            ) from None
    ranges = sorted(_byte_range(name, entry, path, fix) for name, entry in _header_entries(header, path, fix))
    body = total - 8 - length
    for start, end, name in ranges:
        if end > body:
            full = 8 + length + max(e for _, e, _ in ranges)
            raise BadWeightsError(
                f"Expected every tensor of {path.name} complete. Received: tensor {name!r} (bytes {start}..{end} of "
                f"the data): expected {end - start} bytes, received {max(0, body - start)} — the file is cut short "
                f"at byte {total} of {full}. To fix, {fix}."
            )


def _header_entries(header: Any, path: Path, fix: str) -> list[tuple[str, Any]]:
    """The tensors' entries of a .safetensors header (a JSON object of them, beside its ``__metadata__``)."""
    if not isinstance(header, dict):
        raise BadWeightsError(
            f"Expected a JSON object of tensors as the .safetensors header of {path.name}. Received: "
            f"{str(header)[:200]}. To fix, {fix}."
        )
    return [(name, entry) for name, entry in header.items() if name != "__metadata__"]


def _byte_range(name: str, entry: Any, path: Path, fix: str) -> tuple[int, int, str]:
    """A tensor's (start, end, name) in the data, as its header entry gives them; an entry without them (a damaged
    or hand-written header) is a BadWeightsError worded as harness.weight_files.read_safetensors words it."""
    try:
        start, end = (int(v) for v in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise BadWeightsError(
            f"Expected whole-number data_offsets (two) for tensor {name!r} in {path.name}'s header. Received: "
            f"{str(entry)[:200]}. To fix, {fix}."
        ) from None
    return start, end, name


def hdf5_end_of_file(head: bytes) -> int | None:
    """The end-of-file address an HDF5 superblock (at byte 0) states; None when there is none to read."""
    if head[:8] != b"\x89HDF\r\n\x1a\n" or len(head) < 64:
        return None
    version = head[8]
    if version in (0, 1):
        offsets = head[13]
        at = 24 + (4 if version == 1 else 0) + 2 * offsets  # after base and free-space addresses
    elif version in (2, 3):
        offsets = head[9]
        at = 12 + 2 * offsets  # after base and superblock-extension addresses
    else:
        return None
    if offsets not in (4, 8) or len(head) < at + offsets:
        return None
    return int.from_bytes(head[at : at + offsets], "little")


def check_hdf5(path: Path, fix: str, reference: Path | None = None, labels: Mapping[str, str] | None = None) -> None:
    """Raise BadWeightsError for an HDF5 file shorter than its superblock says. The file's own metadata cannot
    name the tensor (h5py keeps group names in heaps it moves to the file's end as they grow); ``reference``, the
    same architecture's weights as the same framework writes them, can: when its layout matches the file's up to
    the cut, its first dataset that runs past the cut is the one that lost bytes."""
    total = path.stat().st_size
    with open(path, "rb") as handle:
        end = hdf5_end_of_file(handle.read(128))
    if end is None or total >= end:
        return
    where = _first_cut_dataset(path, reference, total) if reference is not None else None
    label = "no tensor can be named (the names are kept after the cut); "
    if where is not None:
        name = (labels or {}).get(where[0], where[0])
        label = f"tensor {name!r}: expected {where[1]} bytes, received {max(0, total - where[2])} — "
    raise BadWeightsError(
        f"Expected every tensor of {path.name} complete. Received: {label}the file is cut short at byte "
        f"{total} of {end}. To fix, {fix}."
    )


_HDF5_SIGNATURES = (b"TREE", b"HEAP", b"SNOD")  # v1 B-tree nodes, local heaps, symbol table nodes


def _metadata_at(data: bytes) -> set[tuple[bytes, int]]:
    return {(sig, at) for sig in _HDF5_SIGNATURES for at in _all(data, sig)}


def _all(data: bytes, sig: bytes) -> Iterator[int]:
    at = data.find(sig)
    while at != -1:
        yield at
        at = data.find(sig, at + 1)


def _first_cut_dataset(path: Path, reference: Path, total: int) -> tuple[str, int, int] | None:
    """(name, bytes, offset) of the reference's first contiguous dataset running past byte ``total``, when the
    reference's metadata sits where the file's does up to there; else None."""
    import h5py  # beside every framework that writes HDF5 weights (Keras); the harness itself does not need it

    ours = _metadata_at(path.read_bytes())
    theirs = _metadata_at(reference.read_bytes()[:total])
    if not ours or ours != theirs:
        return None
    found: list[tuple[int, str, int]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
            found.append((obj.id.get_offset(), name, obj.id.get_storage_size()))

    with h5py.File(reference, "r") as handle:
        handle.visititems(visit)
    cut = [entry for entry in found if entry[0] + entry[2] > total]
    if not cut:
        return None
    offset, name, nbytes = min(cut)
    return name, nbytes, offset


def check_complete(path: Path, fmt: str, fix: str) -> None:
    """Raise BadWeightsError when a weight file is cut short, naming the first tensor whose bytes are missing;
    ``fmt``: harness.weight_files.weights_format's; ``fix``: what to do about it ("download it again: ...")."""
    if fmt == "state_dict":
        check_torch_zip(path, fix)
    elif fmt == "safetensors":
        check_safetensors(path, fix)
    # Keras files: its worker checks them, with the architecture's own file as the reference that names the tensor
