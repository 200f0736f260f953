"""Datasets as numpy arrays, with explicit splits and train-only normalisation.

Images are float32 NHWC; labels int64. Splits are fixed by the dataset
definition (never by the trial seed): seeds vary only what training draws
(initial weights, batch order, augmentation draws, dropout masks), never which
samples train, validate or test.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.data.cache import damaged_file_fix
from harness.data.formats import (
    CIFAR_ARCHIVE_DIR,
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES,
    DataFileError,
    check_full_cifar_batch,
    idx_type_code,
    parse_cifar_records,
    parse_idx,
    read_cifar_archive,
)
from harness.data.locate import (
    MANIFEST,
    DatasetFiles,
    PublishedFile,
    candidate_dirs,
    data_roots,
    locate,
    refuse_copies,
    search_root,
    verify_file,
)
from harness.errors import InputError, unknown_name
from harness.seeds import DIGITS_SPLIT_SEED


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    normalization: str
    provenance: dict[str, str] = field(default_factory=dict)
    # Per-channel (mean, std) of the 0..255 pixels the arrays were standardised with (CIFAR-10); None: the arrays
    # hold the pixels scaled to [0, 1] (normalization says how)
    pixel_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # The search root (harness.data.locate.data_roots: --data-dir, $XFBENCH_DATA, the user cache, the system root)
    # its files were found under, as the search named it; None for an embedded dataset or arrays of one's own
    root: str | None = None

    @property
    def nbytes(self) -> int:
        """Memory of the arrays: decides whether the dataset may travel through Ray's object store."""
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def black_pixel(self) -> tuple[float, ...]:
        """A black pixel as the arrays store it, per channel: what a random crop pads with, as torchvision pads the
        pixels before ``Normalize``. Zeros for pixels scaled to [0, 1]; -mean / std, rounded to float32 as the
        images were (:func:`_standardize`), for a dataset stored standardised."""
        channels = self.input_shape[-1] if len(self.input_shape) == 3 else 1
        if self.pixel_stats is None:
            return (0.0,) * channels
        return tuple(float(np.float32((0.0 - m) / s)) for m, s in zip(*self.pixel_stats, strict=True))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }[name]


def _idx_files(
    name: str,
    alias: str,
    published: dict[str, tuple[str | None, str | None]],
    base: str | None,
    how: str,
    pinned: dict[str, str] | None = None,
) -> DatasetFiles:
    """``pinned``: payload sha256s by file name that other projects pin where none is published
    (PublishedFile.pinned_payload_sha256)."""
    pinned = pinned or {}
    return DatasetFiles(
        name=name,
        aliases=(alias,),
        files=tuple(PublishedFile(fname, md5, sha, pinned.get(fname)) for fname, (md5, sha) in published.items()),
        download_base=base,
        how_to_get=how,
        # the dotted names of Kaggle's MNIST and some mirrors (train-images.idx3-ubyte): named, with the renames
        other_names=tuple((fname.replace("-idx", ".idx"), fname) for fname in published),
    )


FASHION_MNIST_PUBLISHED: dict[str, tuple[str | None, str | None]] = {
    "train-images-idx3-ubyte": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte": (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

MNIST_PUBLISHED: dict[str, tuple[str | None, str | None]] = {
    "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", None),
    "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", None),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", None),
}

# The sha256s of MNIST's decompressed files, as projects that pin them agree. They recognise MNIST read as
# Fashion-MNIST, and verify MNIST's own files that the published md5s cannot (gzipped again, or plain: a .gz's md5
# changes with every compression). They are its pinned_payload_sha256, not its payload_sha256: MNIST still accepts
# other plain files on format checks (a copy of one's own, made in MNIST's format, must keep loading).
MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def _foreign(
    published: dict[str, tuple[str | None, str | None]], what: str, name: str
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(archive md5s, payload sha256s) of another IDX dataset's files, each with what it is: MNIST's and
    Fashion-MNIST's files share names and format, so either read as the other trained without a word."""
    label = {fname: f"{what}'s {fname}, which --dataset {name} reads" for fname in published}
    md5s = tuple((md5, label[fname]) for fname, (md5, _) in published.items() if md5)
    shas = tuple((sha, label[fname]) for fname, (_, sha) in published.items() if sha)
    return md5s, shas


_FASHION_MD5S, _FASHION_SHAS = _foreign(FASHION_MNIST_PUBLISHED, "Fashion-MNIST", "fashion_mnist")
_MNIST_MD5S, _ = _foreign(MNIST_PUBLISHED, "MNIST", "mnist")

FASHION_MNIST_FILES = replace(
    _idx_files(
        "fashion_mnist",
        "fashion-mnist",
        FASHION_MNIST_PUBLISHED,
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "On Debian: apt-get install dataset-fashion-mnist (installs /usr/share/datasets/fashion-mnist/).",
    ),
    foreign_archive_md5s=_MNIST_MD5S,
    foreign_payloads=tuple(
        (sha, f"MNIST's {fname}, which --dataset mnist reads") for fname, sha in MNIST_PAYLOAD_SHA256.items()
    ),
    foreign_name="mnist",
    layouts=("FashionMNIST/raw",),  # torchvision.datasets.FashionMNIST(root)
)

MNIST_FILES = replace(
    _idx_files(
        "mnist",
        "MNIST",
        MNIST_PUBLISHED,
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "Copy the four MNIST IDX files (train/t10k images/labels, .gz or plain) into a directory.",
        pinned=MNIST_PAYLOAD_SHA256,
    ),
    foreign_archive_md5s=_FASHION_MD5S,
    foreign_payloads=_FASHION_SHAS,
    foreign_name="fashion_mnist",
    layouts=("MNIST/raw",),  # torchvision.datasets.MNIST(root)
    unread_forms=(
        (
            "mnist.npz",
            "Keras' download of MNIST (keras.datasets.mnist, a NumPy archive), which xfbench does not read: give the "
            "four IDX files instead.",
        ),
    ),
)

CIFAR10_FILES = DatasetFiles(
    name="cifar10",
    aliases=("cifar-10", "CIFAR-10"),
    files=(PublishedFile("cifar-10-binary.tar", "c32a1d4ab5d03f1284b67883e8d87530"),),
    download_base="https://www.cs.toronto.edu/~kriz/",
    how_to_get="Get the binary version, cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/ folder).",
    unread_forms=tuple(
        (name, "the python (pickle) version of CIFAR-10 (torchvision's download), which xfbench never unpickles "
         "(unpickling a downloaded file can run any code it holds); get the binary version beside it.")
        for name in ("cifar-10-batches-py", "cifar-10-python.tar.gz")
    ),
)  # fmt: skip


def _standardize(
    train: np.ndarray, *others: np.ndarray, source: str
) -> tuple[tuple[np.ndarray, ...], tuple[tuple[float, ...], tuple[float, ...]]]:
    """The splits standardised per channel, and the (mean, std) per channel they were standardised with. ``source``:
    where the images were read, named if a channel cannot be standardised."""
    # Per-channel statistics from the training split only, so val/test never leak into them.
    mean = train.mean(axis=(0, 1, 2), keepdims=True, dtype=np.float64)
    std = channel_std(train, mean)
    stats = (tuple(float(m) for m in mean.ravel()), tuple(float(s) for s in std.ravel()))
    _check_channel_spread(stats, source)
    return tuple(_standardized(a, mean, std) for a in (train, *others)), stats


# Images standardised, and their spread summed, per float64 temporary: the whole training split at once took two
# float64 copies of it (2.4 GB for CIFAR-10's 49,000 images), where chunks of 1,000 take 25 MB each
STANDARDIZE_CHUNK = 1000


def channel_std(images: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The per-channel standard deviation of ``images`` around their ``mean`` (float64, shape 1x1x1xC), summed a
    chunk of images at a time: numpy's std took a float64 copy of the whole split first (1.1 GB for CIFAR-10)."""
    squares = np.zeros(mean.shape, dtype=np.float64)
    buffer = np.empty((min(STANDARDIZE_CHUNK, len(images)), *images.shape[1:]), dtype=np.float64)  # one, reused
    for start in range(0, len(images), STANDARDIZE_CHUNK):
        chunk = images[start : start + STANDARDIZE_CHUNK]
        deviations = np.subtract(chunk, mean, out=buffer[: len(chunk)])
        squares += np.square(deviations, out=deviations).sum(axis=(0, 1, 2), keepdims=True)
    return np.sqrt(squares / (images.size // images.shape[-1]))


def _standardized(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(images - mean) / std`` in float64, rounded to float32, a chunk of images at a time into one float32 array:
    the same arithmetic per element as on the whole array, so the same bits."""
    out = np.empty(images.shape, dtype=np.float32)
    for start in range(0, len(images), STANDARDIZE_CHUNK):
        chunk = slice(start, start + STANDARDIZE_CHUNK)
        out[chunk] = _standardized_chunk(images[chunk], mean, std)
    return out


def _standardized_chunk(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (images - mean) / std  # float64 (mean and std are): the caller's assignment rounds to float32


def _check_channel_spread(stats: tuple[tuple[float, ...], tuple[float, ...]], source: str) -> None:
    """A channel of one value in every training image (blank or zeroed files) has std 0: standardising divides by
    it, and every input of that channel is NaN, with only numpy's warning."""
    flat = [(channel, mean) for channel, mean, std in zip("RGB", *stats, strict=True) if std == 0]
    if flat:
        said = ", ".join(f"{channel} is {mean:g} in every image" for channel, mean in flat)
        raise DataFileError(
            f"Expected CIFAR-10 training images whose every colour channel varies. Received: {said} in {source} "
            "(standard deviation 0: standardising would divide by zero, NaN inputs): the files are blank or damaged. "
            "To fix, replace them with the release's (cifar-10-binary.tar.gz, or the batch files it holds), or point "
            "--data-dir at a complete copy."
        )


# What a data key of every pixel begins with (data_fingerprint); a key without it is one of sampled_fingerprint's
FULL_CONTENT = "sha256:"


def data_fingerprint(dataset: Dataset) -> str:
    """A hash of everything the arrays hold: shapes and dtypes, every label and every pixel of each split (0.15 s for
    MNIST's 220 MB of float32 here, 0.4 s for CIFAR-10's 740 MB). Keys before 2026-12-05 sampled every 4,099th
    pixel (sampled_fingerprint): at MNIST's size four images in five held no sampled pixel, so replacing them
    changed no key, and a resume or a comparison took other images for the run's."""
    digest = hashlib.sha256(dataset.name.encode())
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val), (dataset.x_test, dataset.y_test)):
        digest.update(repr((x.shape, str(x.dtype), y.shape)).encode())
        for array in (y, x):
            digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)  # in place: tobytes copied
    return FULL_CONTENT + digest.hexdigest()[:16]


def sampled_fingerprint(dataset: Dataset) -> str:
    """The data key as runs before 2026-12-05 recorded it: shapes, every label and every 4,099th pixel (blind to
    images without a sampled pixel). Read to resume such a run: its trials' keys are of this kind."""
    digest = hashlib.sha256(dataset.name.encode())
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val), (dataset.x_test, dataset.y_test)):
        digest.update(repr((x.shape, str(x.dtype), y.shape)).encode())
        digest.update(np.ascontiguousarray(y).tobytes())
        digest.update(np.ascontiguousarray(x.reshape(-1)[::4099]).tobytes())
    return digest.hexdigest()[:12]


def check_content(dataset: Dataset, expected: str | None, content: str | None = None) -> None:
    """Refuse data other than the run's: ``expected`` is the content preflight read when the run began
    (TrialConfig.data_key; None where not recorded). Another copy under the dataset's name (a cluster node's own
    files, files replaced before a resume) would train, and be compared, as if it were the same data."""
    if expected is None:
        return
    if not expected.startswith(FULL_CONTENT):
        found = sampled_fingerprint(dataset)
    else:
        found = content or data_fingerprint(dataset)  # ``content``: its data_fingerprint, where the caller has it
    if found == expected:
        return
    source = dataset.provenance.get("source", "somewhere unknown")
    raise InputError(
        f"Expected the {dataset.name} data the run began with (content {expected}). Received: other data under that "
        f"name (content {found}), read from {source}. To fix, restore the files the run began with, or start a new "
        "run; on a cluster, give every node the same files or ship them from the driver (--ship-data always)."
    )


def unit_range_pixels(dataset: Dataset) -> Dataset:
    """A standardised dataset (``pixel_stats``) back to its pixels / 255, as a normalisation for pretrained weights
    takes them. Exactly: its pixels were whole numbers 0..255, and undoing the float32 standardisation lands within
    about 1e-4 of each, so rounding restores it."""
    if dataset.pixel_stats is None:
        return dataset
    mean, std = (np.asarray(s, dtype=np.float32) for s in dataset.pixel_stats)

    def pixels(x: np.ndarray) -> np.ndarray:
        # float32 keeps the error far below half a pixel; in place on the one new copy (CIFAR-10's training split
        # is 600 MB, and each temporary of x * std + mean would be another)
        out = np.multiply(x, std, dtype=np.float32)
        out += mean
        np.rint(out, out=out)
        out /= np.float32(255.0)
        return out

    return replace(
        dataset,
        x_train=pixels(dataset.x_train),
        x_val=pixels(dataset.x_val),
        x_test=pixels(dataset.x_test),
        normalization="pixels / 255",
        pixel_stats=None,
    )


def _digits_table() -> np.ndarray:
    """scikit-learn's bundled digits, one image a row (64 pixels 0..16, then the label), parsed as ``load_digits``
    parses ``sklearn/datasets/data/digits.csv.gz``. The file is found without importing scikit-learn when it lies on
    disk (that import took 2.4 s of every process that loads digits, each trial worker of a local run among them);
    an install that keeps it elsewhere (an editable build's loader) is read through scikit-learn itself."""
    spec = importlib.util.find_spec("sklearn")  # a top-level package's spec: nothing of it is executed
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    path = Path(folders[0]) / "datasets" / "data" / "digits.csv.gz" if folders else None
    if path is not None and path.is_file():
        with gzip.open(path, mode="rt", encoding="utf-8") as rows:
            return np.loadtxt(rows, delimiter=",")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError(
            "Expected scikit-learn, whose bundled digits are xfbench's embedded dataset. Received: it is not "
            "installed. To fix, install it (pip install scikit-learn), or reinstall xfbench with its dependencies "
            "(pip install -e . in its checkout)."
        ) from None
    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


def _load_digits(data_dir: str | None, download: bool) -> Dataset:
    table = _digits_table()
    x = (table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0)[..., None]
    y = table[:, -1].astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    test, val, train = order[:360], order[360:540], order[540:]
    return Dataset(
        name="digits",
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=x[test],
        y_test=y[test],
        num_classes=NUM_CLASSES,
        normalization="pixels / 16",
        provenance={"source": "scikit-learn's digits.csv.gz (sklearn.datasets.load_digits)", "verified": "bundled"},
    )


def _load_idx_dataset(files: DatasetFiles, data_dir: str | None, download: bool) -> Dataset:
    found = locate(files, data_dir, download=download)
    arrays = {name: parse_idx(f.payload, f.path) for name, f in found.items()}
    paths = {name: f.path for name, f in found.items()}
    _check_idx_content(files.name, arrays, paths)
    _check_pairs(files.name, arrays, paths)
    x_all = arrays["train-images-idx3-ubyte"].astype(np.float32)[..., None] / 255.0
    y_all = arrays["train-labels-idx1-ubyte"].astype(np.int64)
    x_test = arrays["t10k-images-idx3-ubyte"].astype(np.float32)[..., None] / 255.0
    y_test = arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    return Dataset(
        name=files.name,
        x_train=x_all[IDX_VALIDATION:],
        y_train=y_all[IDX_VALIDATION:],
        x_val=x_all[:IDX_VALIDATION],
        y_val=y_all[:IDX_VALIDATION],
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        normalization="pixels / 255",
        provenance=_provenance(found),
        root=_root(next(iter(found.values())).root),
    )


def _load_cifar10(data_dir: str | None, download: bool) -> Dataset:
    files = _cifar_batch_files(data_dir, download)
    train = [parse_cifar_records(*files.members[n]) for n in CIFAR_TRAIN_FILES]
    x_all = np.concatenate([t[0] for t in train]).astype(np.float32)
    y_all = np.concatenate([t[1] for t in train])
    x_test_u8, y_test = parse_cifar_records(*files.members[CIFAR_TEST_FILE])  # each record its label and image
    # The notebooks' split: the first 49,000 for training, the last 1,000 for validation.
    n_train = len(y_all) - min(1000, len(y_all) // 50)
    (x_train, x_val, x_test), stats = _standardize(
        x_all[:n_train], x_all[n_train:], x_test_u8.astype(np.float32), source=files.source
    )
    return Dataset(
        name="cifar10",
        x_train=x_train,
        y_train=y_all[:n_train],
        x_val=x_val,
        y_val=y_all[n_train:],
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        normalization="per-channel standardisation (train mean/std)",
        provenance={"source": files.source, "verified": files.verified},
        pixel_stats=stats,
        root=_root(files.root),
    )


@dataclass(frozen=True)
class _CifarBatchFiles:
    members: dict[str, tuple[bytes, str]]  # batch file name -> (bytes, where it came from)
    source: str
    verified: str
    root: Path | None  # the search root it was found under (LocatedFile.root)


def _root(root: Path | None) -> str | None:
    return None if root is None else str(root)


def _cifar_batch_files(data_dir: str | None, download: bool) -> _CifarBatchFiles:
    """Batch-file bytes from the first folder, in the search order, that holds CIFAR-10 in either form: the
    archive, or its extracted batch files (in the folder itself, as when --data-dir names cifar-10-batches-bin/, or
    in its cifar-10-batches-bin/). A folder holding both (`tar xzf` where the archive was saved) is read from the
    archive, which its published md5 verifies (extracted batches have format checks only): the batches beside it
    are neither read nor checked."""
    roots = data_roots(data_dir)
    for directory in candidate_dirs(CIFAR10_FILES, roots):
        if any((directory / f"{p.name}{gz}").is_file() for p in CIFAR10_FILES.files for gz in ("", ".gz")):
            break  # the archive here comes before an extracted copy further on; locate finds it first
        for folder in (directory, directory / CIFAR_ARCHIVE_DIR):
            extracted = _extracted_cifar(folder, search_root(CIFAR10_FILES, directory, roots))
            if extracted is not None:
                return extracted
    archive = locate(CIFAR10_FILES, data_dir, download=download)["cifar-10-binary.tar"]
    members = read_cifar_archive(archive.payload, archive.path, archive.verified)
    for name, member in members.items():
        if not archive.listed:  # a cut-down archive of one's own is listed beside it; the published one is whole
            check_full_cifar_batch(member, name, f"{archive.path}:{name}", archive.path.parent / MANIFEST)
    named = {n: (b, f"{archive.path}:{n}") for n, b in members.items()}
    refuse_copies("cifar10", named)
    return _CifarBatchFiles(
        members=named,
        source=str(archive.path),
        verified=archive.how,
        root=archive.root,
    )


def _extracted_cifar(folder: Path, root: Path | None) -> _CifarBatchFiles | None:
    """The batch files in ``folder``, verified; None when it holds none of them. ``root``: the search root it lies
    under."""
    names = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
    present = [n for n in names if (folder / n).is_file()]
    if not present:
        return None
    if len(present) < len(names):  # a folder found, not whole: said, not "no archive found"
        raise DataFileError(
            f"Expected every CIFAR-10 batch file in {folder}: {', '.join(names)}. Received: "
            f"{', '.join(n for n in names if n not in present)} missing. To fix, restore the missing files, point "
            "--data-dir at a complete copy, or move the folder away: the search then reads the next copy it finds or, "
            "online and where there is none, downloads the archive into the user cache."
        )
    located = [verify_file(folder / n, PublishedFile(n)) for n in names]
    for f in located:
        if not f.listed:  # a cut-down copy of one's own is listed in SHA256SUMS; the release's batches are whole
            check_full_cifar_batch(f.payload, f.path.name, str(f.path), folder / MANIFEST)
    members = {n: (f.payload, str(f.path)) for n, f in zip(names, located, strict=True)}
    refuse_copies("cifar10", members)
    return _CifarBatchFiles(
        members=members,
        source=str(folder),
        verified="; ".join(f"{n}: {f.how}" for n, f in zip(names, located, strict=True)),
        root=root,
    )


# The notebooks' validation split: the first 5,000 training images.
IDX_VALIDATION = 5000
# Every dataset xfbench reads has ten classes (a label above 9 is refused as another dataset's): known before any
# file is read, so that classes out of range are refused before a download (CIFAR-10's 170 MB) and not after it
NUM_CLASSES = 10


def _check_idx_content(name: str, arrays: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
    """What the IDX headers do not say: images of at least one pixel, labels of ten classes, one image size in both
    splits, and more training images than the validation split takes (each was found in the workers, as an
    IndexError, a shape mismatch or a task with nothing to train on; images of 0x0 trained a model on no pixel)."""
    _check_idx_types(name, arrays, paths)
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if min(images.shape[1:]) < 1:  # a header of 0 rows or columns matches a payload of no pixels
            raise DataFileError(
                f"Expected {name} images of at least 1x1 pixels. Received: {'x'.join(map(str, images.shape[1:]))} in "
                f"{paths[f'{split}-images-idx3-ubyte']} (shape {images.shape}), so a model would read no pixel and "
                "predict from its biases alone. To fix, write the images as (count, height, width) with both sizes at "
                f"least 1 (the published {name} files hold 28x28), or use the published files."
            )
        if len(labels) and int(labels.max()) > 9:
            raise DataFileError(
                f"Expected {name} labels 0..9. Received: {int(labels.max())} in {paths[f'{split}-labels-idx1-ubyte']},"
                f" not a label file of this dataset. {damaged_file_fix(paths[f'{split}-labels-idx1-ubyte'])}"
            )
    train, test = arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]
    if train.shape[1:] != test.shape[1:]:
        raise DataFileError(
            f"Expected {name}'s training and test images of one size. Received: {train.shape[1:]} in "
            f"{paths['train-images-idx3-ubyte']}, {test.shape[1:]} in {paths['t10k-images-idx3-ubyte']}: files of "
            "two datasets. To fix, use the four files of one release of the dataset, side by side."
        )
    if len(train) <= IDX_VALIDATION:
        raise DataFileError(
            f"Expected more than {IDX_VALIDATION:,} training images in {name}: the first {IDX_VALIDATION:,} are its "
            f"validation split, as in the notebooks, and the rest train. Received: {len(train):,} in "
            f"{paths['train-images-idx3-ubyte']}. To fix, use files with more than {IDX_VALIDATION:,} training images "
            "(the published ones hold 60,000)."
        )


def _check_idx_types(name: str, arrays: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
    """Pixels are scaled by 1/255 as the published unsigned bytes 0..255 need: another element type (a float copy
    already scaled, say) would be scaled again and train on near-black images without a word."""
    for file, array in arrays.items():
        labels = "labels" in file
        if array.dtype == np.uint8 and array.ndim == (1 if labels else 3):
            continue
        what = "1-D labels" if labels else "3-D images (count, height, width; pixels 0..255)"
        received = f"{array.dtype.name} (type 0x{idx_type_code(array.dtype):02X})"
        raise DataFileError(
            f"Expected ubyte IDX (type 0x08) {what} in {name}'s {file}. Received: {received} of shape "
            f"{array.shape} in {paths[file]}, not the published {name} files' form. {damaged_file_fix(paths[file])}"
        )


def _check_pairs(name: str, arrays: Mapping[str, np.ndarray], paths: Mapping[str, Path]) -> None:
    """As many labels as images in each split's pair of IDX files, naming the pair that differs."""
    pairs = (
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    )
    for images, labels in pairs:
        if len(arrays[images]) != len(arrays[labels]):
            raise DataFileError(
                f"Expected as many labels as images in {name}. Received: {len(arrays[images])} images in "
                f"{paths[images]}, {len(arrays[labels])} labels in {paths[labels]}: files of two releases. To fix, "
                "replace both with one release's four files, side by side."
            )


def found_in(dataset: Dataset) -> str | None:
    """The folder a file dataset was read from (its files, or its archive), to point a trial's data_dir at;
    None for an embedded dataset."""
    source = Path(dataset.provenance.get("source", ""))
    if not source.is_absolute() or not source.exists():
        return None
    return str(source if source.is_dir() else source.parent)


def _provenance(found: dict) -> dict[str, str]:
    return {
        "source": str(next(iter(found.values())).path.parent),
        "verified": "; ".join(f"{name}: {f.how}" for name, f in found.items()),
    }


Loader = Callable[[str | None, bool], Dataset]

DATASETS: dict[str, tuple[Loader, str]] = {
    "digits": (_load_digits, "scikit-learn's bundled 8x8 digits (embedded, no download); 1257/180/360 split"),
    "mnist": (lambda d, dl: _load_idx_dataset(MNIST_FILES, d, dl), "MNIST, IDX files; 55000/5000/10000"),
    "fashion_mnist": (
        lambda d, dl: _load_idx_dataset(FASHION_MNIST_FILES, d, dl),
        "Fashion-MNIST, IDX files; 55000/5000/10000",
    ),
    "cifar10": (_load_cifar10, "CIFAR-10, binary version; 49000/1000/10000, standardised per channel"),
}


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Dataset:
    if name not in DATASETS:
        raise unknown_name("dataset", name, list(DATASETS))
    loader, _ = DATASETS[name]
    try:
        return loader(str(data_dir) if data_dir else None, download)
    except PermissionError as exc:  # a file or folder of the search this user may not read: one line, not a traceback
        raise DataFileError(_unreadable(exc)) from None


def _unreadable(exc: PermissionError) -> str:
    """Which file or folder could not be read, whose it is and its mode, and what to do."""
    path = Path(exc.filename) if exc.filename else None
    try:
        held = os.stat(path) if path is not None else None
        whose = f"owner uid {held.st_uid}, mode {stat.filemode(held.st_mode)}" if held else "unknown"
    except OSError:
        whose = "its folder cannot be searched"
    return (
        f"Expected the dataset's files and folders to be readable by this user (uid {os.getuid()}). Received: "
        f"{exc.strerror or 'permission denied'} on {exc.filename} ({whose}). To fix, make it readable (chmod a+r on "
        "a file, a+rx on a folder), or point --data-dir at a copy this user can read."
    )


def read_elsewhere(data_dir: str | None, dataset: Dataset) -> str | None:
    """A note when ``dataset`` was read from outside the --data-dir given: that folder held none of its files, and
    the search went on to another root's copy (the user's folder holds the files under other names, say). Decided by
    the root the search found it under, never by where paths resolve: a dataset folder in --data-dir that links to
    elsewhere was read from --data-dir, and another root inside --data-dir ($XFBENCH_DATA=<data-dir>/env, say) was
    not."""
    if not data_dir or dataset.root is None:  # None: an embedded dataset (digits) or arrays, read from no search
        return None
    if os.path.abspath(dataset.root) == os.path.abspath(Path(data_dir).expanduser()):
        return None
    return (
        f"note: {dataset.name} was read from {dataset.provenance['source']}: --data-dir {data_dir} holds none of its "
        "files under the names xfbench looks for (docs/data.md lists them)"
    )


def check_data_dir(data_dir: str | None) -> None:
    """--data-dir, and $XFBENCH_DATA when set, are folders: a typo in either would fall through to the next root of
    the search path and train on whatever copy lies there without a word."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        path = Path(data_dir).expanduser()
        # a file given (one of the dataset's own, say): the folder holding it is most likely what was meant
        what, such_as = ("a file", f" such as {str(path.parent)!r}") if path.exists() else ("no such directory", "")
        raise InputError(
            f"Expected --data-dir to be a readable directory. Received: {data_dir!r} ({what}). To fix, point it at "
            f"the folder holding the dataset's files (or their <dataset>/ folder),{such_as} or drop --data-dir to "
            "search $XFBENCH_DATA, the user cache and /usr/share/datasets."
        )
    from_env = os.environ.get("XFBENCH_DATA")
    if data_dir is None and from_env and not Path(from_env).expanduser().is_dir():
        raise InputError(
            f"Expected $XFBENCH_DATA to be a readable directory. Received: {from_env!r} (not a directory). To fix, "
            "point it at the folder holding the dataset files, or unset it to search the user cache and "
            "/usr/share/datasets."
        )
