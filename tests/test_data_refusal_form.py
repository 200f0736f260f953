"""The refusals of the data layer and the input pipeline read "Expected ... Received: ... To fix, ...", as every other
refusal does: these gave their advice in other words ("pick a smaller crop:N", "add --input-channels 3", "Give two
classes", "Restore them from the binary archive", "replace both with one release's") or none at all, and the CIFAR
folder missing a batch file sent the user to an archive there may not be. The scan of their source is the whole
tree's (tests/test_refusal_form.py); these read the messages as the user meets them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest
from refusal_scan import FORM
from test_data import write_cifar_folder, write_manifest, write_mnist_like

from harness.augment import AugmentConfig, check_augment
from harness.data import DataFileError, load_dataset
from harness.data.formats import CIFAR_RECORD_BYTES, write_idx
from harness.data.locate import DataNotFoundError, DatasetFiles, PublishedFile, data_roots, locate
from harness.data.registry import check_content
from harness.data.tasks import TaskSpec
from harness.errors import InputError
from harness.inference_batches import batch_slices
from harness.input_pipeline import InputConfig, check_input, transformed_shape

MLP_DIGITS = ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--backend", "torch"]


# ------------------------------------------------------------------ from the command line (each exits 2)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ["--augment", "crop:8"],
            "Expected a crop padding below the image side 8. Received: crop_padding=8, whose crops would hold no "
            "pixel of the image for 22% of the samples. To fix, give --augment crop:N with N below 8 (the lessons pad "
            "32x32 images by 4, an eighth of the side), or drop crop from --augment.",
        ),
        (
            ["--normalize", "imagenet"],
            "Expected 3-channel inputs for --normalize imagenet. Received: 1 channels. To fix, give --input-channels 3 "
            "(the grayscale channel repeated, as RGB models take it), or use --normalize none.",
        ),
        (
            ["--classes", "5,6", "--binary-positive", "3"],
            "Expected --binary-positive to be one of exactly two --classes. Received: classes=(5, 6), "
            "binary_positive=3. To fix, give one of --classes 5,6 as the positive class (e.g. --binary-positive 6), "
            "or drop --binary-positive.",
        ),
    ],
    ids=["crop padding of the image side", "imagenet statistics on grayscale", "positive class not listed"],
)
def test_refusals_a_run_reaches_exit_2_in_the_standard_form(tmp_path, capsys, options, said):
    from harness.cli import main

    results = tmp_path / "results"
    assert main([*MLP_DIGITS, *options, "--no-download", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    message = err.split(": error: ", 1)[1]
    assert message == said and FORM.fullmatch(message), err
    assert not results.exists()


# ------------------------------------------------------------------ from damaged files (load_dataset)


def _refusal_of(load: Callable[[], object]) -> str:
    with pytest.raises(DataFileError) as caught:
        load()
    message = str(caught.value)
    assert FORM.fullmatch(message), message
    return message


def test_labels_of_another_release_are_refused_with_the_fix(tmp_path):
    write_mnist_like(tmp_path / "mnist", manifest=False)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(5100, dtype=np.uint8))
    write_manifest(tmp_path / "mnist")
    message = _refusal_of(lambda: load_dataset("mnist", tmp_path, download=False))
    assert message.endswith(
        "labels in " + str(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz") + ": files of two releases. To fix, "
        "replace both with one release's four files, side by side."
    )


def test_a_cifar_folder_missing_a_batch_file_names_fixes_that_need_no_archive(tmp_path):
    """The advice was to restore the files "from the binary archive", which often is nowhere: the fixes now are the
    files themselves, a complete copy, or the rest of the search."""
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_folder(tmp_path)
    (folder / "data_batch_2.bin").unlink()
    message = _refusal_of(lambda: load_dataset("cifar10", tmp_path, download=False))
    assert message.endswith(
        "Received: data_batch_2.bin missing. To fix, restore the missing files, point --data-dir at a complete copy, "
        "or move the folder away: the search then reads the next copy it finds or, online and where there is none, "
        "downloads the archive into the user cache."
    )
    assert "archive (" not in message


def test_a_blank_cifar_channel_is_refused_with_the_fix(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, name in enumerate((*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")):
        records = rng.integers(0, 256, (20, CIFAR_RECORD_BYTES), dtype=np.uint8)
        records[:, 0] = index
        records[:, 1 + 2048 :] = 0  # blue zeroed in every image
        (folder / name).write_bytes(records.tobytes())
    write_manifest(folder)
    message = _refusal_of(lambda: load_dataset("cifar10", folder, download=False))
    assert message.endswith(
        "NaN inputs): the files are blank or damaged. To fix, replace them with the release's "
        "(cifar-10-binary.tar.gz, or the batch files it holds), or point --data-dir at a complete copy."
    )


def test_a_download_of_another_md5_names_the_fix_once(tmp_path, monkeypatch):
    """The md5 mismatch said "To fix, run again ..." inside the refusal of the missing files, whose own "To fix, ..."
    followed it: two fixes in one message."""
    server = tmp_path / "server"
    server.mkdir()
    write_idx(server / "x-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    assert hashlib.md5((server / "x-idx1-ubyte.gz").read_bytes()).hexdigest() != "0" * 32
    files = DatasetFiles("testset", (), (PublishedFile("x-idx1-ubyte", "0" * 32),), server.as_uri() + "/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("XFBENCH_DATA", raising=False)
    with pytest.raises(DataNotFoundError) as caught:
        locate(files, None, download=True)
    message = str(caught.value)
    assert "to match its published md5 " + "0" * 32 in message and "Running again downloads it afresh" in message
    assert message.count("To fix") == 1, message


# ------------------------------------------------------------------ from the Python API and suite definitions


def _digits_changed() -> str:
    dataset = load_dataset("digits")
    with pytest.raises(InputError) as caught:
        check_content(dataset, "sha256:" + "0" * 16)
    return str(caught.value)


API_REFUSALS: dict[str, Callable[[], object]] = {
    "resize mode": lambda: InputConfig(resize_mode="squash"),
    "resize side below the size": lambda: InputConfig(size=224, resize_side=200, resize_mode="resize-crop"),
    "input size 0": lambda: InputConfig(size=0),
    "input channels 0": lambda: InputConfig(channels=0),
    "normalisation": lambda: InputConfig(normalize="bogus"),
    "pipeline on flat data": lambda: transformed_shape(InputConfig(size=8), (64,)),
    "imagenet on RGB of another count": lambda: check_input(InputConfig(normalize="imagenet"), (8, 8, 2), "x"),
    "imagenet on standardised data": lambda: check_input(InputConfig(normalize="imagenet"), (8, 8, 3), "standard"),
    "negative crop padding": lambda: AugmentConfig(crop_padding=-1),
    "augmenting flat data": lambda: check_augment(AugmentConfig(flip=True), (64,)),
    "crop on images of side 1": lambda: check_augment(AugmentConfig(crop_padding=1), (1, 1, 3)),
    "inference batch size 0": lambda: batch_slices(5, 0),
    "one class": lambda: TaskSpec(classes=(3,)),
    "a class twice": lambda: TaskSpec(classes=(1, 2, 2)),
    "positive without classes": lambda: TaskSpec(binary_positive=3),
    "positive of three classes": lambda: TaskSpec(classes=(1, 2, 3), binary_positive=7),
    "relative data folder": lambda: data_roots(None, {"XFBENCH_DATA": "data"}),
}


@pytest.mark.parametrize("case", sorted(API_REFUSALS))
def test_refusals_of_the_python_api_read_in_the_standard_form(case):
    with pytest.raises(InputError) as caught:
        API_REFUSALS[case]()
    assert FORM.fullmatch(str(caught.value)), str(caught.value)


def test_fixes_that_depend_on_the_input_say_the_users_own_numbers():
    said = {}
    for case in ("positive without classes", "positive of three classes", "crop on images of side 1"):
        with pytest.raises(InputError) as caught:
            API_REFUSALS[case]()
        said[case] = str(caught.value).split(" To fix, ", 1)[1]
    assert said == {
        "positive without classes": "give exactly two --classes, one of them the positive class (e.g. --classes 5,6 "
        "--binary-positive 6), or drop --binary-positive.",
        "positive of three classes": "give exactly two --classes, one of them the positive class (e.g. --classes 1,7 "
        "--binary-positive 7), or drop --binary-positive.",
        "crop on images of side 1": "drop crop from --augment: images of side 1 allow no padding.",
    }
    changed = _digits_changed()
    assert FORM.fullmatch(changed) and " To fix, restore the files the run began with, or start a new run;" in changed
