"""What the data refusals tell a user to do: a fix that can be followed where the file or the setting lies (a
suite's own source task, a file outside the user cache), and a training split that lacks classes refused before a
head with outputs no sample trains."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data import write_manifest, write_mnist_like

from harness.config import TransferOptions, TrialConfig
from harness.data import ChecksumError, DataFileError, load_dataset
from harness.data.formats import write_idx
from harness.data.locate import DataNotFoundError, PartialDatasetFolder
from harness.data.registry import CIFAR10_FILES, FASHION_MNIST_FILES, MNIST_FILES
from harness.data.tasks import TaskSpec
from harness.errors import InputError
from harness.preflight import preflight

# ------------------------------------------------------------------ a suite's source task sized past the data (D1)

HIGH = (5, 6, 7, 8, 9)  # 623 training samples in digits


def _transfer_trial(source: TaskSpec, suite: str = "transfer_smoke", batch_size: int = 64) -> TrialConfig:
    target = TaskSpec(classes=(0, 1, 2, 3, 4), train_limit=100)
    transfer = TransferOptions(source_task=source, source_epochs=1)
    return TrialConfig("fine_tune", "cnn_small", "digits", "torch", 0, 1, batch_size, suite=suite, task=target,
                       transfer=transfer)  # fmt: skip


def _refusal(trial: TrialConfig) -> str:
    with pytest.raises(InputError) as caught:
        preflight([trial], None, download=False)
    return str(caught.value)


def test_a_source_tasks_own_train_limit_above_the_data_is_not_told_to_lower_train_limit():
    """imagenet_transfer_quick's source task A (train_limit 5,000) on a smaller Fashion-MNIST copy was told to lower
    --train-limit, which sets the target task B only: following it got a second refusal, about B."""
    said = _refusal(_transfer_trial(TaskSpec(classes=HIGH, train_limit=5000)))
    assert said == (
        "Expected the source task's train_limit at most 623, the training samples of classes 5,6,7,8,9 in digits. "
        "Received: 5,000, the limit case fine_tune-cnn_small-digits of suite transfer_smoke sets on the source task "
        "its backbone trains on (--train-limit sets the target task only). To fix, point --data-dir at files with at "
        "least 5,000 training samples of classes 5,6,7,8,9, run the case alone (`xfbench run --strategy fine_tune "
        "--model cnn_small --dataset digits --classes 0,1,2,3,4 --train-limit 100 --source-classes 5,6,7,8,9`, with "
        "the case's other settings), whose source task trains on all 623 of them, or run a suite of your own whose "
        "source TaskSpec has train_limit=623 or less (docs/regressions.md)."
    )
    # the target task's own limit keeps the advice that sets it
    target = replace(_transfer_trial(TaskSpec(classes=HIGH)), task=TaskSpec(classes=(0, 1, 2, 3, 4), train_limit=900))
    assert "To fix, lower --train-limit to 634 or less" in _refusal(target)


def test_a_source_task_batch_refusal_in_a_suite_does_not_only_advise_source_classes_the_suite_refuses():
    """--source-classes is refused on the suites that define their source split (transfer*, fashion_ab,
    imagenet_transfer_*), yet was the one way the refusal gave to more source samples."""
    said = _refusal(_transfer_trial(TaskSpec(classes=(5, 6), train_limit=200), batch_size=512))
    assert "Expected --batch-size at most 200, the training samples of the source task (--source-classes 5,6)" in said
    assert said.endswith(
        "To fix, give --batch-size 200 or less, or train on more samples: more --source-classes where case "
        "fine_tune-cnn_small-digits of suite transfer_smoke leaves them to you; where it defines its source classes "
        "and its train_limit of 200, run the case alone (`xfbench run --strategy fine_tune --model cnn_small --dataset "
        "digits --classes 0,1,2,3,4 --train-limit 100 --source-classes ...`, with the case's other settings), or use "
        "files with more training samples of them."
    ), said
    adhoc = _refusal(_transfer_trial(TaskSpec(classes=(5, 6)), suite="adhoc", batch_size=512))
    assert adhoc.endswith("or train on more samples (more --source-classes)."), adhoc


# ------------------------------------------------- a damaged file's fix, by where it lies (D2): formats and locate


@pytest.fixture
def own_roots(tmp_path, monkeypatch):
    """The user cache and the system root in this test's folder, so that files written there touch no other test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    monkeypatch.setenv("XFBENCH_SYSTEM_DATA", str(tmp_path / "system"))
    return tmp_path / "home-cache" / "xfbench", tmp_path / "system"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _elsewhere(cache: Path, folder: Path) -> str:
    return (
        f"To fix, replace it with an intact copy (xfbench downloads only into the user cache, {cache}: deleting it "
        f"leaves {folder} a partial folder), point --data-dir at an intact copy, or move {folder} away to read the "
        "next copy the search finds or download one into the user cache."
    )


def test_a_truncated_file_is_told_to_be_deleted_and_downloaded_only_in_the_user_caches_download_folder(own_roots):
    """ "Delete the file and download it again" was said for files in --data-dir, where xfbench never downloads:
    deleted, the folder was refused as partial and nothing downloaded."""
    cache, _ = own_roots
    own = cache.parent.parent / "own"
    write_mnist_like(own / "mnist", n_train=5010, n_test=10, gz=False, manifest=False)
    _truncate(own / "mnist" / "train-images-idx3-ubyte")
    with pytest.raises(DataFileError) as caught:
        load_dataset("mnist", own, download=False)
    assert str(caught.value).endswith(f"(truncated or corrupted). {_elsewhere(cache, own / 'mnist')}"), caught.value
    (own / "mnist" / "train-images-idx3-ubyte").unlink()  # what "delete it and download again" did
    with pytest.raises(PartialDatasetFolder):
        load_dataset("mnist", own, download=True)  # refused before any download
    write_mnist_like(cache / "mnist", n_train=5010, n_test=10, gz=False, manifest=False)
    _truncate(cache / "mnist" / "train-images-idx3-ubyte")
    with pytest.raises(DataFileError) as caught:
        load_dataset("mnist", None, download=False)
    assert str(caught.value).endswith(
        "(truncated or corrupted). To fix, delete it and run xfbench again online (without --no-download): it "
        f"downloads the missing file into {cache / 'mnist'}."
    ), caught.value
    (cache / "mnist" / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataNotFoundError) as missing:  # a folder a download completes, not a partial one refused
        load_dataset("mnist", None, download=False)
    assert not isinstance(
        missing.value, PartialDatasetFolder
    ) and "go online to complete it (drop --no-download)" in str(missing.value)


def test_a_missing_dataset_carries_what_a_caller_that_cannot_download_needs_and_pickles_with_it(own_roots):
    """The pytest plugin swapped a sentence of this text for its own advice; it reads these fields instead. A trial's
    error crosses from a Ray worker to the driver pickled: the fields come back with it."""
    cache, _ = own_roots
    with pytest.raises(DataNotFoundError) as missing:
        load_dataset("mnist", None, download=False)
    said = missing.value
    assert (said.dataset, said.cache_folder, said.downloadable, said.cut_short) == (
        "mnist",
        cache / "mnist",
        True,
        False,
    )
    assert said.found.startswith("Expected the mnist files") and said.fix.startswith("To fix, ")
    assert "--no-download" in said.online and "--no-download" not in said.found + said.fix + said.note
    again = pickle.loads(pickle.dumps(said))
    assert type(again) is DataNotFoundError and str(again) == str(said) and vars(again) == vars(said)
    write_mnist_like(cache / "mnist", n_train=10, n_test=10, gz=False, manifest=False)
    (cache / "mnist" / "t10k-labels-idx1-ubyte").unlink()  # a download cut short
    with pytest.raises(DataNotFoundError) as cut:
        load_dataset("mnist", None, download=False)
    assert cut.value.cut_short and not cut.value.fix and str(cut.value).count("To fix,") == 1, cut.value


def test_a_file_in_an_alias_folder_of_the_cache_is_not_told_to_download_again(own_roots):
    """Downloads fill <cache>/<name> alone: a copy in <cache>/MNIST without a file is partial, never completed."""
    cache, _ = own_roots
    write_mnist_like(cache / "MNIST", n_train=5010, n_test=10, gz=False, manifest=False)
    _truncate(cache / "MNIST" / "t10k-images-idx3-ubyte")
    with pytest.raises(DataFileError) as caught:
        load_dataset("mnist", None, download=False)
    assert str(caught.value).endswith(_elsewhere(cache, cache / "MNIST")), caught.value


def test_checksum_mismatches_in_the_system_root_and_the_cache_word_the_fix_by_where_the_file_lies(own_roots):
    """Debian's /usr/share/datasets/fashion-mnist is root-owned: "delete the file" could not even be done there."""
    cache, system = own_roots
    write_mnist_like(system / "fashion-mnist", n_train=5010, n_test=10, manifest=False)  # not the published payload
    with pytest.raises(ChecksumError) as caught:
        load_dataset("fashion_mnist", None, download=False)
    folder = system / "fashion-mnist"
    assert f"{_elsewhere(cache, folder)} For a copy of your own, list its sha256 in {folder / 'SHA256SUMS'}." in str(
        caught.value
    )
    write_mnist_like(cache / "mnist", n_train=5010, n_test=10, manifest=False)  # .gz files of another md5
    with pytest.raises(ChecksumError) as caught:
        load_dataset("mnist", None, download=False)
    assert (
        "has another md5 even when it holds the same data. To fix, delete it and run xfbench again online (without "
        f"--no-download): it downloads the missing file into {cache / 'mnist'}. Or keep your own copy by listing"
    ) in str(caught.value)


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _bad_crc(data: bytes) -> bytes:
    packed = bytearray(gzip.compress(data))
    packed[-8] ^= 0xFF  # gzip's CRC32 of the contents, in its trailer
    return bytes(packed)


CIFAR_DAMAGE = {  # file name, bytes, what the refusal says first
    "not a tar": ("cifar-10-binary.tar", b"not a tar archive" * 100, "Expected a readable tar archive"),
    "no batch files": ("cifar-10-binary.tar", _tar({"README": b"hi"}), "Expected the CIFAR-10 batch files in"),
    "gzip's CRC": ("cifar-10-binary.tar.gz", _bad_crc(_tar({"README": b"hi"})), "Expected a valid gzip file."),
    "another md5": ("cifar-10-binary.tar.gz", gzip.compress(_tar({"README": b"hi"})), "Expected "),
}


@pytest.mark.parametrize("damage", list(CIFAR_DAMAGE))
def test_a_damaged_cifar_archive_is_told_the_fix_of_a_one_file_dataset_by_where_it_lies(own_roots, damage):
    """CIFAR-10's archive is its only file: "delete it and run again to download it" was said of a root-owned copy
    in the system root and of one in --data-dir (where the next run read or downloaded another copy, never this
    one), and "deleting it leaves <folder> a partial folder" of a folder that, without it, holds none of CIFAR-10."""
    cache, system = own_roots
    name, data, said = CIFAR_DAMAGE[damage]
    (system / "cifar10").mkdir(parents=True)
    (system / "cifar10" / name).write_bytes(data)
    with pytest.raises(DataFileError) as caught:
        load_dataset("cifar10", None, download=False)
    fix = (  # the whole of the fix, or (another md5) followed by how to keep a copy of one's own
        f"To fix, replace it with an intact copy, point --data-dir at an intact copy, or delete {name} (or move it "
        f"away) to read the next copy the search finds or, online, download one into the user cache, {cache}."
    )
    message = str(caught.value)
    assert message.startswith(said) and (message.endswith(fix) or f"{fix[:-1]}. Or keep your own copy" in message)
    assert "partial folder" not in message and message.count("To fix") == 1, message
    (system / "cifar10" / name).unlink()  # deleted, the folder is no partial one: the search goes on
    with pytest.raises(DataNotFoundError) as missing:
        load_dataset("cifar10", None, download=False)
    assert not isinstance(missing.value, PartialDatasetFolder)
    (cache / "cifar10").mkdir(parents=True)
    (cache / "cifar10" / name).write_bytes(data)  # in the cache's download folder: deleted, a run downloads it
    with pytest.raises(DataFileError) as caught:
        load_dataset("cifar10", None, download=False)
    assert (
        "To fix, delete it and run xfbench again online (without --no-download): it downloads the missing file into "
        f"{cache / 'cifar10'}."
    ) in str(caught.value), caught.value


def test_the_cache_folders_said_to_be_downloaded_again_are_the_ones_downloads_fill():
    from harness.data.cache import DOWNLOADED_DATASETS

    downloaded = {f.name for f in (MNIST_FILES, FASHION_MNIST_FILES, CIFAR10_FILES) if f.download_base}
    assert downloaded == set(DOWNLOADED_DATASETS)


# ---------------------------------------------- a training split that lacks classes, with no --classes given (D3)


def _own_mnist(root: Path, train_labels: np.ndarray, test_labels: np.ndarray) -> None:
    """MNIST-format files of one's own, listed in a SHA256SUMS: 5,010 training images (the first 5,000 validate)."""
    write_mnist_like(root / "mnist", n_train=5010, n_test=10, gz=False, manifest=False)
    write_idx(root / "mnist" / "train-labels-idx1-ubyte", train_labels.astype(np.uint8))
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte", test_labels.astype(np.uint8))
    write_manifest(root / "mnist")


SCRATCH = TrialConfig("scratch", "mlp", "mnist", "torch", 0, 1, batch_size=8)  # 10 training samples


def test_files_of_one_class_are_refused_before_a_ten_way_head_trains_on_them(tmp_path):
    """Every label 0: preflight passed, and the run trained a 10-way head of which 9 outputs saw no sample, to a
    test accuracy of 1.0 for any network."""
    _own_mnist(tmp_path, np.zeros(5010), np.zeros(10))
    with pytest.raises(InputError) as caught:
        preflight([SCRATCH], str(tmp_path), download=False)
    counts = ", ".join(f"class {c}: {10 if c == 0 else 0}" for c in range(10))
    assert str(caught.value) == (
        "Expected training samples of every class of the target task (all) in the training split of mnist, one for "
        f"each output of its head. Received: none of class 1,2,3,4,5,6,7,8,9 ({counts}). To fix, point --data-dir at "
        "complete files: a task needs two classes, and the split holds 1."
    )


def test_a_training_split_missing_classes_is_refused_naming_the_counts_and_the_classes_it_can_train(tmp_path):
    """Training labels 0..2 while validation holds all ten: it passed, heads of ten outputs trained on three."""
    labels = np.concatenate([np.arange(5000) % 10, np.arange(10) % 3])
    _own_mnist(tmp_path, labels, np.arange(10))
    with pytest.raises(InputError) as caught:
        preflight([SCRATCH], str(tmp_path), download=False)
    assert str(caught.value) == (
        "Expected training samples of every class of the target task (all) in the training split of mnist, one for "
        "each output of its head. Received: none of class 3,4,5,6,7,8,9 (class 0: 4, class 1: 3, class 2: 3, class "
        "3: 0, class 4: 0, class 5: 0, class 6: 0, class 7: 0, class 8: 0, class 9: 0). To fix, pick classes "
        "(--classes) that the training split of mnist holds, or point --data-dir at complete files."
    )
    preflight([replace(SCRATCH, task=TaskSpec(classes=(0, 1, 2)))], str(tmp_path), download=False)  # the fix


def test_a_train_limit_that_cuts_classes_off_the_whole_dataset_is_told_to_raise_it():
    """--train-limit 10 on digits: the first ten training samples hold no 3 or 4."""
    digits = load_dataset("digits")
    reach = max(int(np.argmax(digits.y_train == c)) + 1 for c in range(10))
    missing = [c for c in range(10) if c not in digits.y_train[:10]]
    trial = TrialConfig("scratch", "mlp", "digits", "torch", 0, 1, batch_size=10, task=TaskSpec(train_limit=10))
    with pytest.raises(InputError) as caught:
        preflight([trial], None, download=False, loaded={"digits": digits})
    said = str(caught.value)
    assert "in the training split of digits within --train-limit, one for each output of its head. " in said
    assert f"Received: none of class {','.join(map(str, missing))} (" in said
    assert (
        f"To fix, raise --train-limit to at least {reach}, or pick classes (--classes) that the training split of "
        "digits holds (" in (said)
    )
    preflight([replace(trial, task=TaskSpec(train_limit=reach))], None, download=False, loaded={"digits": digits})


def test_a_resumed_run_is_not_judged_on_its_classes_again(tmp_path):
    """A recorded run trained on what there was (as the listed-class check leaves it)."""
    _own_mnist(tmp_path, np.zeros(5010), np.zeros(10))
    preflight([SCRATCH], str(tmp_path), download=False, resumed=True)
