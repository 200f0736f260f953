"""Readers for the on-disk dataset formats: IDX (MNIST family) and CIFAR-10 binary.

Both readers parse raw bytes with numpy (no pickle anywhere) and check that
the header agrees with the payload size, so a truncated file is an error that
names the file rather than a silent short dataset.
"""

from __future__ import annotations

import gzip
import io
import math
import tarfile
import zlib
from pathlib import Path

import numpy as np

from harness.data.cache import damaged_file_fix
from harness.errors import InputError

# IDX type byte -> element dtype; multi-byte types are big-endian on disk
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

CIFAR_RECORD_BYTES = 1 + 32 * 32 * 3
CIFAR_BATCH_RECORDS = 10_000  # every batch file of the published release, training and test alike
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"
CIFAR_ARCHIVE_DIR = "cifar-10-batches-bin"


class DataFileError(InputError):
    """A dataset file exists but cannot be used (corrupt, truncated, wrong checksum)."""


class ChecksumError(DataFileError):
    pass


def read_bytes(path: Path, one_file: bool = False) -> bytes:
    """File contents, transparently gunzipped when the name ends in .gz. ``one_file``: the file is its dataset's only
    one (CIFAR-10's archive), which words the fix for a damaged one (damaged_file_fix)."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    if len(raw) >= 2 and raw[:2] != b"\x1f\x8b":
        raise _not_gzip(path, raw, one_file)
    return _gunzipped(raw, path, one_file)


def _not_gzip(path: Path, raw: bytes, one_file: bool = False) -> DataFileError:
    """A .gz without gzip's magic: unpacked (a browser does it) but not renamed, when it holds an IDX array or a
    tar; anything else (an error page that `curl -O` saved under the file's name) is no data to rename."""
    expected = f"Expected gzip data in a file named .gz. Received: {path}, which does not start with gzip's magic 1f8b"
    if _has_idx_magic(raw) or raw[257:262] == b"ustar":
        return DataFileError(
            f"{expected} (its header: {raw[:4].hex()}): it holds the uncompressed content. To fix, drop .gz from "
            f"its name (mv {path} {path.with_suffix('')}); xfbench reads IDX files and CIFAR-10's .tar uncompressed "
            "as well."
        )
    return DataFileError(
        f"{expected}, nor an uncompressed IDX file or tar: it starts with {describe_head(raw)} (a web server's "
        f"error page, saved under the file's name?). {damaged_file_fix(path, one_file)}"
    )


def _has_idx_magic(data: bytes) -> bool:
    """Whether ``data`` starts as an IDX file does: two zero bytes, then a known type code."""
    return len(data) >= 4 and data[0] == 0 and data[1] == 0 and data[2] in IDX_DTYPES


def describe_head(raw: bytes) -> str:
    """A file's first bytes for an error message: hex, and the text they spell when they are printable."""
    if not raw:
        return "nothing (0 bytes, an empty file)"
    first_line = (raw[:64].decode("ascii", errors="replace").splitlines() or [""])[0][:24]
    if first_line.strip() and first_line.isprintable():
        return f"{raw[:4].hex()} ({first_line!r})"
    return raw[:4].hex()


def _gunzipped(raw: bytes, path: Path, one_file: bool = False) -> bytes:
    """``raw`` decompressed, gzip's CRC and length checked."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # gzip reports CRC and length mismatches as OSError
        raise ChecksumError(
            f"Expected a valid gzip file. Received: {path} fails its gzip integrity check ({exc}). "
            f"{damaged_file_fix(path, one_file)}"
        ) from None


def parse_idx(payload: bytes, source: Path) -> np.ndarray:
    if payload[:2] == b"\x1f\x8b" and source.name.endswith(".gz"):  # read through one gunzip already
        raise DataFileError(
            f"Expected an IDX file inside {source}. Received: gzip data again (header {payload[:4].hex()}) once it "
            f"was decompressed: the file is compressed twice. To fix, decompress it once in place (gunzip -c "
            f"{source} > {source}.once && mv {source}.once {source})."
        )
    if payload[:2] == b"\x1f\x8b":  # gzip's magic: a .gz file renamed (or saved) without its suffix
        raise DataFileError(
            f"Expected an IDX file (magic 0x0000TTNN). Received: {source} holds gzip data (header "
            f"{payload[:4].hex()}) under a name without .gz. To fix, add .gz to its name (mv {source} {source}.gz), "
            f"and gunzip {source}.gz after that if you want it uncompressed."
        )
    if not _has_idx_magic(payload):
        raise DataFileError(
            f"Expected an IDX file (magic 0x0000TTNN). Received: {source}, starting with {describe_head(payload)}. "
            f"{damaged_file_fix(source)}"
        )
    dtype = IDX_DTYPES[payload[2]]
    ndim = payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:  # cut inside its dimensions: frombuffer would raise a bare ValueError
        raise DataFileError(
            f"Expected a {header}-byte IDX header ({ndim} dimensions). Received: {len(payload)} bytes in {source} "
            f"(truncated or corrupted). {damaged_file_fix(source)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(payload, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: np.prod wrapped at 2**64 to 0
    if len(payload) != expected:
        raise DataFileError(
            f"Expected {expected} bytes for an IDX array of shape {dims}. Received: {len(payload)} bytes in {source} "
            f"(truncated or corrupted). {damaged_file_fix(source)}"
        )
    return np.frombuffer(payload, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def idx_type_code(dtype: np.dtype) -> int:
    """The IDX type byte of arrays of ``dtype`` (in either byte order)."""
    return next(code for code, on_disk in IDX_DTYPES.items() if on_disk.newbyteorder("=") == dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX (gzip when the name ends in .gz); used by tests and tools."""
    code = idx_type_code(np.dtype(array.dtype))
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def parse_cifar_records(payload: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images NHWC uint8, labels int64) from CIFAR-10 binary records: 1 label byte + 3072 CHW pixel bytes."""
    if len(payload) == 0 or len(payload) % CIFAR_RECORD_BYTES:
        raise DataFileError(
            f"Expected a whole number of {CIFAR_RECORD_BYTES}-byte CIFAR-10 records. Received: {len(payload)} bytes "
            f"in {source} (truncated or not the binary version). To fix, use the binary version of CIFAR-10, "
            "cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/), intact."
        )
    records = np.frombuffer(payload, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataFileError(
            f"Expected CIFAR-10 labels 0..9. Received: {int(labels.max())} in {source}, which is damaged or not a "
            "CIFAR-10 batch (CIFAR-100's binary version, say). To fix, use the binary version of CIFAR-10 "
            "(cifar-10-binary.tar.gz), intact, or point --data-dir at a complete copy."
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def check_full_cifar_batch(payload: bytes, name: str, source: str, manifest: Path) -> None:
    """A batch file of whole records but fewer (or more) than the release's 10,000: cut short at a record boundary,
    it loaded silently as a smaller dataset. A cut-down copy of one's own is listed in ``manifest`` instead."""
    if len(payload) % CIFAR_RECORD_BYTES or len(payload) == CIFAR_BATCH_RECORDS * CIFAR_RECORD_BYTES:
        return  # a partial record is parse_cifar_records' to report
    raise DataFileError(
        f"Expected {CIFAR_BATCH_RECORDS:,} records ({CIFAR_BATCH_RECORDS * CIFAR_RECORD_BYTES:,} bytes) in "
        f"CIFAR-10's {name}. Received: {len(payload) // CIFAR_RECORD_BYTES:,} records in {source} (cut short?). "
        "To fix, restore it from the binary archive (cifar-10-binary.tar.gz); for a cut-down copy of your own, list "
        f"its sha256 in {manifest} (sha256sum FILE... >> {manifest.name})."
    )


def read_cifar_archive(archive: bytes, source: Path, verified: bool = False) -> dict[str, bytes]:
    """Member name -> bytes for the batch files inside cifar-10-binary.tar.gz (read, never extracted); ``verified``:
    a checksum vouched for the file's bytes (the published md5, a SHA256SUMS line)."""
    wanted = {f"{CIFAR_ARCHIVE_DIR}/{n}" for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)}
    if archive[:2] == b"\x1f\x8b" and verified:  # gzip data under a plain name that a checksum vouched for
        archive = _gunzipped(archive, source, one_file=True)
    elif archive[:2] == b"\x1f\x8b":  # read_bytes gunzips a .gz: this is gzip data under a plain name
        # tarfile would decompress it and stop before gzip's CRC, and format checks alone accept a plain .tar: one
        # damaged byte loaded as a changed pixel
        raise DataFileError(
            f"Expected an uncompressed tar archive under a name without .gz. Received: {source} holds gzip data "
            f"(header {archive[:4].hex()}). To fix, add .gz to its name (mv {source} {source}.gz), so that its "
            "checksum and gzip's integrity check are applied."
        )
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for member in tar.getmembers():
                # `tar -czf x.tar.gz ./cifar-10-batches-bin` names every member ./cifar-10-batches-bin/...
                if member.name.removeprefix("./") in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    out[member.name.rsplit("/", 1)[1]] = handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        # tarfile's is a line, then "- method gz: ..." for each compression it tried: one line for the CLI
        lines = [line.strip().removeprefix("- ") for line in str(exc).splitlines() if line.strip()] or [repr(exc)]
        why = " ".join([lines[0], "; ".join(lines[1:])]).strip()
        # the fix by where it lies: "delete it and run again to download it" fetched nothing outside the user cache
        raise ChecksumError(
            f"Expected a readable tar archive (cifar-10-binary.tar.gz). Received: {source}, which is not one ({why})."
            f" {damaged_file_fix(source, one_file=True)}"
        ) from None
    missing = sorted({w.rsplit("/", 1)[1] for w in wanted} - set(out))
    if missing:
        raise DataFileError(
            f"Expected the CIFAR-10 batch files in {source}. Received: an archive without {missing}. "
            f"{damaged_file_fix(source, one_file=True)}"
        )
    return out
