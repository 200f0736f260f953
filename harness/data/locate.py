"""Finding dataset files, verifying them, and downloading them when absent.

Search order: ``--data-dir``, ``$XFBENCH_DATA``, the user cache
(``$XDG_CACHE_HOME/xfbench`` or ``~/.cache/xfbench``), the system root
``/usr/share/datasets`` (``$XFBENCH_SYSTEM_DATA`` replaces it: tests point
every root at temporary directories).
In each root the files may sit in ``<root>/<name>/``, ``<root>/<alias>/`` (e.g.
Debian's ``fashion-mnist``) or directly in ``<root>``.

Verification, per file:
1. a ``SHA256SUMS`` manifest beside the file that lists it wins (private
   copies, mirrors, generated test data);
2. otherwise the published checksums: the archive's md5 as distributed, or
   the sha256 of the decompressed payload (Debian recompresses the .gz files,
   so only the payload is stable), or a payload sha256 that projects pin where
   none is published (MNIST's: a .gz gzipped again has another md5);
3. files with none (e.g. plain files of one's own in MNIST's format, or
   extracted CIFAR-10 batches, whose hashes are not published) are accepted
   on the strength of the format's own size checks, and reported as
   ``verified=False``. A compressed file under a name with a published md5
   never is: one of one's own (a self-made .gz or .tar.gz) needs a
   ``SHA256SUMS`` line, unless its payload has a published or pinned sha256.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shlex
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from harness.data.cache import damaged_file_fix, user_cache_dir
from harness.data.formats import ChecksumError, DataFileError, read_bytes
from harness.errors import InputError, MissingInputFile
from harness.file_modes import shared_file_mode

SYSTEM_DATA_ROOT = Path("/usr/share/datasets")  # where Debian's dataset packages install
SYSTEM_DATA_ENV = "XFBENCH_SYSTEM_DATA"  # replaces SYSTEM_DATA_ROOT when set
MANIFEST = "SHA256SUMS"


class DataNotFoundError(MissingInputFile):
    """A dataset's files are neither where we looked nor downloadable: data this machine lacks, not a bug (the
    pytest plugin skips such a suite's cases; any other error fails them).

    Its parts are fields, so a caller that can never download (the pytest plugin) words its own way to get the files
    from ``dataset``, ``downloadable`` and ``cache_folder`` instead of swapping a sentence of this text: ``found``
    (what was expected and received), ``fix`` (the advice that needs no download; empty where the user cache's folder
    holds a download cut short, ``cut_short``, which a download completes), ``online`` (how a download gets them, as
    the command line words it) and ``note``."""

    # Set by :meth:`of` (a bare DataNotFoundError(message) has none): plain attributes beside the message its args
    # hold, so it pickles as any exception does when a trial's error crosses from a Ray worker to the driver.
    found = fix = online = note = dataset = ""
    cache_folder: Path | None = None
    downloadable = cut_short = False

    @classmethod
    def of(
        cls,
        found: str,
        fix: str = "",
        online: str = "",
        *,
        dataset: str,
        cache_folder: Path,
        downloadable: bool,
        cut_short: bool = False,
        note: str = "",
    ) -> Self:
        error = cls(" ".join(part for part in (found, fix, online, note) if part))
        error.found, error.fix, error.online, error.note = found, fix, online, note
        error.dataset, error.cache_folder = dataset, cache_folder
        error.downloadable, error.cut_short = downloadable, cut_short
        return error


class PartialDatasetFolder(DataNotFoundError):
    """A folder outside the user cache holds some of a dataset's files, not all: a folder that lost a file, which
    the pytest plugin fails on (a skip let a CI job whose data lost a file go green measuring nothing); a partial
    user cache (an interrupted download) stays data this machine lacks. Its whole refusal is ``found``: its fix
    (complete or move a folder of one's own) needs no download."""


@dataclass(frozen=True)
class PublishedFile:
    name: str  # canonical name, without .gz
    archive_md5: str | None = None  # md5 of the file as published (usually .gz)
    payload_sha256: str | None = None  # sha256 of the decompressed bytes
    # The decompressed bytes' sha256 as other projects pin it, where none is published (MNIST's): a file whose payload
    # has it is the release however it was compressed, but unlike payload_sha256 a file without it is not refused (a
    # copy of one's own in the format must keep loading on format checks)
    pinned_payload_sha256: str | None = None


@dataclass(frozen=True)
class DatasetFiles:
    name: str
    aliases: tuple[str, ...]
    files: tuple[PublishedFile, ...]
    download_base: str | None
    compressed_suffix: str = ".gz"
    how_to_get: str = ""
    # Other forms of the dataset that xfbench will not read (file or folder name, why and what to get instead): a
    # not-found message names the ones it saw, which would otherwise read as if nothing were there
    unread_forms: tuple[tuple[str, str], ...] = ()
    # Payload sha256s of another dataset's files of the same names and format (what each is): a file of this
    # dataset that no checksum of its own verifies is refused when it is one of them (Fashion-MNIST read as MNIST)
    foreign_payloads: tuple[tuple[str, str], ...] = ()
    # The same, for the other dataset's archive md5s as published (the .gz files as downloaded)
    foreign_archive_md5s: tuple[tuple[str, str], ...] = ()
    # The name of that other dataset (its folder under a root), for the refusal's fix
    foreign_name: str | None = None
    # Folders under a root where another tool's download keeps the files (torchvision's MNIST/raw), searched after
    # the dataset's own names: a --data-dir of torchvision's root was searched at MNIST/ and found nothing
    layouts: tuple[str, ...] = ()
    # Other names that copies of the dataset give its files (a name, the file it is): never read (which name holds
    # which file is the whole of a split), but a not-found message names them with the renames, where "not found"
    # alone read as if nothing were there (Kaggle's MNIST: train-images.idx3-ubyte)
    other_names: tuple[tuple[str, str], ...] = ()

    @property
    def one_file(self) -> bool:
        """Whether the dataset is one file (CIFAR-10's archive): a folder without it holds none of the dataset."""
        return len(self.files) == 1


@dataclass(frozen=True)
class LocatedFile:
    path: Path
    payload: bytes
    verified: bool
    how: str
    listed: bool = False  # verified by a SHA256SUMS beside it: the user's own copy, of any size
    # The search root (data_roots) whose folder it was found in, or downloaded to: whether it came from --data-dir is
    # decided by the search, not by comparing paths (a dataset folder in --data-dir may be a link to elsewhere)
    root: Path | None = None


def data_roots(data_dir: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    if env.get("XFBENCH_DATA"):
        roots.append(_absolute_env_path(env, "XFBENCH_DATA"))
    roots.append(user_cache_dir(env))
    roots.append(system_data_root(env))
    return roots


def _absolute_env_path(env: Mapping[str, str], name: str) -> Path:
    """A folder named by an environment variable, which must be absolute: trials run in folders of their own (Ray
    Tune's), where a relative path names other files than the ones preflight checked, or none."""
    path = Path(env[name]).expanduser()
    if not path.is_absolute():
        raise InputError(
            f"Expected ${name} to be an absolute path (each trial runs in its own folder, where a relative one "
            f"names other files). Received: {name}={env[name]!r}. To fix, set it to {path.absolute()}."
        )
    return path


def system_data_root(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return _absolute_env_path(env, SYSTEM_DATA_ENV) if env.get(SYSTEM_DATA_ENV) else SYSTEM_DATA_ROOT


def candidate_dirs(files: DatasetFiles, roots: list[Path]) -> list[Path]:
    dirs: list[Path] = []
    for root in roots:
        for sub in (files.name, *files.aliases, *files.layouts):
            dirs.append(root / sub)
        dirs.append(root)
    return dirs


def search_root(files: DatasetFiles, directory: Path, roots: list[Path]) -> Path | None:
    """The first root of ``roots`` that ``directory`` is a candidate folder of: the one the search met it under."""
    return next((root for root in roots if directory in candidate_dirs(files, [root])), None)


# `sha256sum --tag` and `shasum -a 256 --tag` (BSD's and macOS's own format): SHA256 (NAME) = HASH. Other tools'
# tagged lines (`md5sum --tag`: MD5 (NAME) = HASH) are read too, to be refused naming the tool
_TAGGED_LINE = re.compile(r"(?P<tool>[A-Z][A-Z0-9-]*) \((?P<name>.+)\) = (?P<hash>\S+)")
_SHA256_DIGEST = re.compile(r"[0-9A-Fa-f]{64}")
# The digest lengths (hex digits) of the other *sum tools, whose output saved as SHA256SUMS is the likely cause
_OTHER_DIGESTS = {32: "an md5 (md5sum's output", 40: "a sha1 (sha1sum's output", 128: "a sha512 (sha512sum's output"}


@dataclass(frozen=True)
class _ManifestLine:
    name: str
    digest: str
    tool: str | None = None  # the algorithm a tagged line names (SHA256, MD5, ...)


def _manifest_entry(directory: Path, filename: str) -> str | None:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return None
    try:
        text = manifest.read_text(encoding="utf-8-sig")  # PowerShell 5's Out-File -Encoding utf8 writes a BOM
    except UnicodeDecodeError:  # PowerShell writes UTF-16: a traceback said nothing of which file
        raise DataFileError(
            f"Expected {manifest} in sha256sum's format, as ASCII or UTF-8 text. Received: a file that is not UTF-8 "
            f"(UTF-16, as PowerShell writes?). To fix, write it again with `sha256sum FILE... > {MANIFEST}`, or "
            "delete it."
        ) from None
    for line in text.splitlines():
        entry = _manifest_line(line)
        if entry is None or entry.name != filename:
            continue
        if entry.tool in (None, "SHA256") and _SHA256_DIGEST.fullmatch(entry.digest):
            return entry.digest.lower()
        raise _not_sha256(manifest, entry)
    return None


def _manifest_line(line: str) -> _ManifestLine | None:
    """The file name and digest of one line in either format sha256sum writes: HASH  NAME, or with --tag (as shasum
    -a 256 --tag writes too) SHA256 (NAME) = HASH. None for any other line."""
    tagged = _TAGGED_LINE.fullmatch(line.strip())
    if tagged:
        name, digest, tool = tagged["name"], tagged["hash"], tagged["tool"]
    elif len(parts := line.split()) == 2:
        (digest, name), tool = parts, None
    else:
        return None
    # `sha256sum ./*` writes ./NAME, and its binary mode (-b, the default on Windows) *NAME: the same file
    return _ManifestLine(name.lstrip("*").removeprefix("./"), digest, tool)


def _not_sha256(manifest: Path, entry: _ManifestLine) -> DataFileError:
    """A SHA256SUMS line of another digest (md5sum's output saved under the name): compared as a sha256, every file
    it lists was called corrupted or replaced."""
    if entry.tool not in (None, "SHA256"):
        what = f"a {entry.tool} digest ({entry.tool.lower()}sum --tag's output?)"
    elif re.fullmatch(r"[0-9A-Fa-f]+", entry.digest) and len(entry.digest) in _OTHER_DIGESTS:
        what = f"{len(entry.digest)} hex digits, {_OTHER_DIGESTS[len(entry.digest)]}?)"
    else:
        what = f"{entry.digest[:70]!r}, no sha256"
    return DataFileError(
        f"Expected {manifest} to list {entry.name}'s sha256, 64 hex digits as sha256sum writes them. Received: "
        f"{what}. To fix, write it again with sha256sum: cd {shlex.quote(str(manifest.parent))} && sha256sum "
        f"FILE... > {MANIFEST} (FILE...: the files it lists)."
    )


def verify_file(path: Path, published: PublishedFile, files: DatasetFiles | None = None) -> LocatedFile:
    """Read, decompress and verify one file; raise ChecksumError naming it on mismatch. ``files``: the dataset it
    belongs to, whose foreign hashes name another dataset's file before a mismatch calls it corrupt."""
    raw = path.read_bytes()
    listed = _manifest_entry(path.parent, path.name)
    if listed is not None:
        return _verify_listed(path, raw, listed, published, files)
    one_file = files is not None and files.one_file
    raw_md5 = hashlib.md5(raw).hexdigest()
    if published.archive_md5 and raw_md5 == published.archive_md5:
        return LocatedFile(path, read_bytes(path, one_file), True, "published archive md5")
    payload = read_bytes(path, one_file)
    payload_sha256 = hashlib.sha256(payload).hexdigest()
    if published.payload_sha256 and payload_sha256 == published.payload_sha256:
        return LocatedFile(path, payload, True, "published payload sha256")
    if published.pinned_payload_sha256 and payload_sha256 == published.pinned_payload_sha256:
        return LocatedFile(path, payload, True, "pinned payload sha256")  # the release, gzipped again or plain
    if files is not None:  # before the mismatch: a valid file of the other dataset is no corrupt download
        _refuse_swapped(files, published, path, raw_md5, payload_sha256)
        _refuse_foreign(files, path, raw_md5, payload_sha256)
    if published.payload_sha256:
        raise ChecksumError(
            f"Expected {path} to hold the published {published.name}, payload sha256 {published.payload_sha256}. "
            f"Received: payload sha256 {payload_sha256}. {damaged_file_fix(path, one_file)} For a copy of your own, "
            f"list its sha256 in {path.parent / MANIFEST}."
        )
    if published.archive_md5 and path.name.endswith(".gz"):
        raise _archive_mismatch(path, published, raw_md5, payload_sha256, one_file)
    return LocatedFile(path, payload, False, "format checks only (no published checksum for this form)")


def _verify_listed(
    path: Path, raw: bytes, listed: str, published: PublishedFile, files: DatasetFiles | None
) -> LocatedFile:
    """A file that the SHA256SUMS beside it lists (its sha256 ``listed``): its bytes must match, and must not be
    another file of the release or another dataset's (a manifest vouches for the bytes, not for which file they are:
    train and t10k swapped, then listed, trained on the test images)."""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != listed:
        raise ChecksumError(
            f"Expected {path} to match its sha256 in {path.parent / MANIFEST}, {listed}. Received: sha256 "
            f"{actual} (the file is corrupted or was replaced). To fix, restore the file, or list its new sha256 "
            f"in the manifest: cd {shlex.quote(str(path.parent))} && sha256sum {shlex.quote(path.name)} (that "
            "line in place of the old one)."
        )
    payload = read_bytes(path, files is not None and files.one_file)
    if files is not None and not files.one_file:  # two hashes more: only where another file can stand in (MNIST's
        # and Fashion-MNIST's four, each the other's too), not for CIFAR-10's archive of 170 MB, its only file
        raw_md5, payload_sha256 = hashlib.md5(raw).hexdigest(), hashlib.sha256(payload).hexdigest()
        _refuse_swapped(files, published, path, raw_md5, payload_sha256, listed=True)
        _refuse_foreign(files, path, raw_md5, payload_sha256)
    return LocatedFile(path, payload, True, f"sha256 listed in {MANIFEST}", listed=True)


def _archive_mismatch(
    path: Path, published: PublishedFile, raw_md5: str, payload_sha256: str, one_file: bool = False
) -> ChecksumError:
    """A compressed file that neither the published md5 nor a pinned payload sha256 verifies. Compressing again
    changes the md5 of the same contents: the fix for a copy of one's own is a SHA256SUMS line, said as a command."""
    expected = f"md5 {published.archive_md5} (the published archive)"
    received = f"md5 {raw_md5}"
    if published.pinned_payload_sha256:  # a recompressed release would have passed: its contents differ too
        expected += f", or payload sha256 {published.pinned_payload_sha256} (its contents, however compressed)"
        received += f", payload sha256 {payload_sha256}"
    return ChecksumError(
        f"Expected {path} to match {expected}. Received: {received}. A file compressed again (by you, a mirror or a "
        f"packager) has another md5 even when it holds the same data. {damaged_file_fix(path, one_file)} Or keep "
        f"your own copy by listing its sha256 in {path.parent / MANIFEST}: "
        f"cd {shlex.quote(str(path.parent))} && sha256sum {shlex.quote(path.name)} >> {MANIFEST}"
    )


def _refuse_swapped(
    files: DatasetFiles, published: PublishedFile, path: Path, raw_md5: str, payload_sha256: str, listed: bool = False
) -> None:
    """A file that no checksum of its own verifies, yet is byte for byte another file of the same release: train and
    test swapped (renamed the wrong way), which would train on the test images and test on the training images, or
    be called a corrupt download where plain files have no published hash of their own. ``listed``: a SHA256SUMS
    beside it lists it (its lines name the swapped files' bytes, which the renames back would contradict)."""
    for other in files.files:
        if other.name == published.name:
            continue
        if raw_md5 == other.archive_md5 or payload_sha256 in (other.payload_sha256, other.pinned_payload_sha256):
            manifest = (
                f", then write {MANIFEST} again (cd {shlex.quote(str(path.parent))} && sha256sum FILE... > "
                f"{MANIFEST}) or delete it (the release's own files need no listing);"
                if listed
                else ","
            )
            raise ChecksumError(
                f"Expected {files.name}'s {published.name} in {path.parent}. Received: {path.name}, byte for byte "
                f"the release's {other.name} (files renamed the wrong way: train and test swapped?). To fix, give "
                f"each file its own name ({other.name} holds these bytes){manifest} or get the files again."
            )


def _refuse_foreign(files: DatasetFiles, path: Path, raw_md5: str, payload_sha256: str) -> None:
    """A file of ``files`` that no checksum of its own verifies, yet is byte for byte another dataset's (MNIST and
    Fashion-MNIST share names and format: found directly in a root, either is read as whichever dataset runs)."""
    what = dict(files.foreign_archive_md5s).get(raw_md5)
    how = "published md5, as downloaded"
    if what is None:
        what, how = dict(files.foreign_payloads).get(payload_sha256), "published sha256, decompressed"
    if what is None:
        return
    other = files.foreign_name
    fix = (
        f"run --dataset {other} on these files, or keep each dataset's files in a folder of its own: "
        f"<root>/{files.name}/ and <root>/{other}/ (root: --data-dir, $XFBENCH_DATA or the user cache)"
        if other
        else f"put {files.name}'s own files there, or run the dataset these are"
    )
    raise ChecksumError(
        f"Expected {files.name}'s {path.name} in {path.parent}. Received: byte for byte {what} (its {how}). "
        f"To fix, {fix}."
    )


def _file_in(files: DatasetFiles, published: PublishedFile, directory: Path) -> Path | None:
    """The file of ``published`` in ``directory``, compressed or not. Both there: the compressed one, where they hold
    the same; else refused (it was read in silence, and provenance names only the canonical name)."""
    held = [p for name in dict.fromkeys((published.name + files.compressed_suffix, published.name))
            if (p := directory / name).is_file()]  # fmt: skip
    if len(held) == 2 and read_bytes(held[0], files.one_file) != read_bytes(held[1], files.one_file):
        raise DataFileError(
            f"Expected one copy of {files.name}'s {published.name} in {directory}. Received: {held[0].name} and "
            f"{held[1].name}, which hold different data. To fix, delete the one that is not the dataset's (or move "
            "it to a folder of its own)."
        )
    if len(held) == 2 and _manifest_entry(directory, held[0].name) is None:
        # the same data: the form SHA256SUMS lists (a `gzip -k` copy beside listed plain files was refused as corrupt)
        return held[1] if _manifest_entry(directory, held[1].name) is not None else held[0]
    return held[0] if held else None


def dataset_folder(files: DatasetFiles, dirs: list[Path]) -> tuple[Path | None, dict[str, Path]]:
    """The first folder (in search order) that holds any of the dataset's files, and the files it holds. A
    dataset's files all come from that one folder: looked up one by one, a folder of one's own images could meet
    another copy's labels further down the search path, and train and test on a mix without a word."""
    for directory in dict.fromkeys(dirs):
        held = {p.name: path for p in files.files if (path := _file_in(files, p, directory)) is not None}
        if held:
            return directory, held
    return None, {}


def locate(
    files: DatasetFiles, data_dir: str | os.PathLike[str] | None, download: bool = True
) -> dict[str, LocatedFile]:
    """Find (or download) and verify every file of a dataset; raise DataNotFoundError saying where we looked."""
    roots = data_roots(data_dir)
    dirs = candidate_dirs(files, roots)
    folder, held = dataset_folder(files, dirs)
    target = user_cache_dir() / files.name  # where downloads go: a partial folder there is completed
    missing = [p for p in files.files if p.name not in held]
    if missing and folder is not None and folder != target:
        raise PartialDatasetFolder.of(
            _partial_folder_message(files, folder, held, missing, dirs),
            dataset=files.name,
            cache_folder=target,
            downloadable=files.download_base is not None,
        )
    root = search_root(files, folder if folder is not None else target, roots)  # downloads: the cache's root
    found = {p.name: replace(verify_file(held[p.name], p, files), root=root) for p in files.files if p.name in held}
    if missing and download and files.download_base:
        errors = []
        for published in missing:
            try:
                path = download_file(files, published, target)
                found[published.name] = replace(verify_file(path, published, files), root=root)
            except (OSError, http.client.HTTPException, ChecksumError) as exc:  # HTTPException: a cut response
                cut = isinstance(exc, http.client.HTTPException)  # its text alone can be a bare status line
                errors.append(f"{published.name}: {type(exc).__name__ + ': ' if cut else ''}{exc}")
        missing = [p for p in missing if p.name not in found]
        if missing:
            raise _not_found(files, missing, dirs, errors, folder)
    elif missing:
        raise _not_found(files, missing, dirs, [], folder, download)
    refuse_copies(files.name, {name: (f.payload, str(f.path)) for name, f in found.items()})
    return found


def refuse_copies(dataset: str, payloads: Mapping[str, tuple[bytes, str]]) -> None:
    """Two files of one dataset (file name -> its bytes and where they came from) that hold the same bytes: a lost
    file filled with a copy of another (test_batch.bin of data_batch_5.bin, t10k of train) passes every format
    check, and would test on training images. Only files of one length are compared, and unequal ones differ at
    once."""
    items = list(payloads.items())
    for index, (first, (data, where)) in enumerate(items):
        for second, (other, other_where) in items[index + 1 :]:
            if len(data) == len(other) and data == other:
                raise DataFileError(
                    f"Expected {dataset}'s {first} and {second} to hold different data. Received: byte for byte "
                    f"the same ({where} and {other_where}). To fix, restore the one that was copied from the "
                    "dataset's release, or point --data-dir at a complete copy."
                )


def download_file(files: DatasetFiles, published: PublishedFile, target_dir: Path, timeout_s: float = 30.0) -> Path:
    """Download to a temporary name, check the published md5, then move into place. The partial file goes on any
    failure (no connection, a checksum mismatch, Ctrl-C): each offline try left one more in the cache folder."""
    assert files.download_base is not None
    filename = published.name + files.compressed_suffix
    url = files.download_base.rstrip("/") + "/" + filename
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / filename
    tmp_path: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(dir=target_dir, delete=False, suffix=".part") as tmp:
            tmp_path = Path(tmp.name)
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                size = response.headers.get("Content-Length")
                # minutes for CIFAR-10's 170 MB, before any progress bar: said, or the run looks hung
                sized = f" ({int(size) / 1e6:.1f} MB)" if size and size.isdigit() else ""
                print(f"xfbench: downloading {url}{sized} into {target_dir}", file=sys.stderr, flush=True)
                shutil.copyfileobj(response, tmp)
        actual = hashlib.md5(tmp_path.read_bytes()).hexdigest()
        if published.archive_md5 and actual != published.archive_md5:
            raise ChecksumError(
                f"Expected the download of {url} to match its published md5 {published.archive_md5}. Received: md5 "
                f"{actual} (a proxy's page, or a damaged transfer). Running again downloads it afresh; behind a "
                f"proxy that rewrites downloads, fetch {filename} another way and point --data-dir at its folder"
            )
        tmp_path.chmod(shared_file_mode())  # NamedTemporaryFile's 0600 (harness.file_modes says why not)
        tmp_path.replace(final)
    except BaseException:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        raise
    return final


def _partial_folder_message(
    files: DatasetFiles, folder: Path, held: dict[str, Path], missing: list[PublishedFile], dirs: list[Path]
) -> str:
    elsewhere = {p.name: d for p in missing for d in dict.fromkeys(dirs) if d != folder and _file_in(files, p, d)}
    also = "".join(f"; {name} is in {where}" for name, where in elsewhere.items())
    also += "".join(f"; {line}" for line in _other_names_seen(files, [folder]))
    return (
        f"Expected every {files.name} file in one folder, the first that holds any of them. Received: {folder} "
        f"holds {sorted(held)} but not {[p.name for p in missing]}{also}. To fix, put the missing files beside the "
        "others (or point --data-dir at a folder holding them all), or move the partial folder away: files of two "
        "copies would train on one's images and test on the other's labels."
    )


def _other_names_seen(files: DatasetFiles, dirs: list[Path]) -> list[str]:
    """For each of ``dirs`` that holds files of the dataset under other names (DatasetFiles.other_names), a clause
    naming them with the renames that make them readable."""
    said = []
    for directory in dict.fromkeys(dirs):
        renames = [
            (other + suffix, name + suffix)
            for other, name in files.other_names
            for suffix in ("", files.compressed_suffix)
            if (directory / (other + suffix)).is_file()
        ]
        if renames:
            moves = " && ".join(f"mv {shlex.quote(old)} {shlex.quote(new)}" for old, new in renames)
            said.append(
                f"{', '.join(old for old, _ in renames)} in {directory}: {files.name}'s file names as some copies "
                f"write them, which xfbench does not read; rename them (cd {shlex.quote(str(directory))} && {moves})"
            )
    return said


def _not_found(
    files: DatasetFiles,
    missing: list[PublishedFile],
    dirs: list[Path],
    errors: list[str],
    partial: Path | None,
    download: bool = True,
) -> DataNotFoundError:
    """``partial``: the user cache's folder, holding some of the files (downloads are per file): the search stopped
    there, so the files may well lie further on, and saying "not found" there (with how to install them) misled.
    ``download``: whether a download was allowed (``errors``: why it failed)."""
    cache = user_cache_dir() / files.name
    downloadable = files.download_base is not None
    failed = f" Download failed: {'; '.join(errors)}." if errors else ""
    if partial is not None:
        held = sorted(p.name for p in files.files if p not in missing)
        elsewhere = [d for d in dict.fromkeys(dirs) if d != partial and _file_in(files, missing[0], d)]
        rest = f"; {missing[0].name} is in {elsewhere[0]}" if elsewhere else ""
        found = (
            f"Expected every {files.name} file in the user cache's {partial}, the first folder holding any of them. "
            f"Received: it holds {held} but not {[p.name for p in missing]} (a download cut short?){rest}.{failed}"
        )
        complete = "complete it once online" if download else "go online to complete it (drop --no-download)"
        online = f"To fix, {complete}, or delete that folder to read a complete copy further on."
        return DataNotFoundError.of(
            found, "", online, dataset=files.name, cache_folder=cache, downloadable=downloadable, cut_short=True
        )
    looked = ", ".join(str(d) for d in dict.fromkeys(dirs))
    lines = [
        f"Expected the {files.name} files {[p.name for p in missing]} (plain or {files.compressed_suffix}). "
        f"Received: not found in {looked}.{failed}"
    ]
    for name, why in files.unread_forms:
        for seen in (d / name for d in dict.fromkeys(dirs) if (d / name).exists()):
            lines.append(f"Found {seen}: {why}")
    lines.extend(f"Found {line}." for line in _other_names_seen(files, dirs))
    how = files.how_to_get[:1].lower() + files.how_to_get[1:]  # "On Debian: ...", "Get the binary version, ..."
    fix = f"To fix, {how} Or point --data-dir / $XFBENCH_DATA at a directory holding them."
    online = ""
    if not download and files.download_base:  # --no-download, a resume, a trial or the pytest plugin
        online = (
            f"Or, online, any run on them without --no-download downloads them into {cache} "
            f"(`xfbench run --strategy scratch --model mlp --dataset {files.name} --epochs 1`)."
        )
    note = ""
    if system_data_root() != SYSTEM_DATA_ROOT:  # a package's files in /usr/share/datasets would not be seen
        note = (
            f"(${SYSTEM_DATA_ENV}={system_data_root()} replaces {SYSTEM_DATA_ROOT} in the search: unset it to read "
            "what a package installs there.)"
        )
    return DataNotFoundError.of(
        " ".join(lines), fix, online, dataset=files.name, cache_folder=cache, downloadable=downloadable, note=note
    )
