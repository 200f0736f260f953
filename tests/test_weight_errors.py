"""Weight files cut short (harness.truncated_weights): each format names the first tensor whose bytes are missing,
with the bytes expected and received and where the file ends, before any framework reads the file; the run exits 2.
torch's files are written by torch (in its probe worker), Keras' by Keras; nothing in a damaged file is executed."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import weight_file_probes as probes

from harness import cli, fresh_process, weights_worker
from harness.backend import BACKENDS
from harness.checkpoints import save_checkpoint
from harness.config import TransferOptions, TrialConfig
from harness.errors import InputError
from harness.models import ModelOptions, build_spec
from harness.pretrained import prepare_weights, run_worker, worker_reply
from harness.truncated_weights import check_complete, check_hdf5, hdf5_end_of_file
from harness.weight_files import BadWeightsError, write_safetensors
from harness.weights import initial_weights

# A state dict with torchvision's names, small enough to write in milliseconds; each tensor's byte count is unique,
# so its zip record is found by size.
TENSORS = {
    "conv1.weight": (16, 3, 3, 3),
    "bn1.running_mean": (16,),
    "layer3.0.conv1.weight": (64, 32, 3, 3),
    "layer3.0.bn1.weight": (64,),
    "fc.weight": (10, 640),
}
FIX = "download it again"


@pytest.fixture(scope="module")
def state_file(workers, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pth") / "small.pth"
    rng = np.random.default_rng(0)
    tensors = {name: rng.normal(size=shape).astype(np.float32) for name, shape in TENSORS.items()}
    workers["torch"](probes.write_torch_state, str(path), tensors)
    return path


def _record(path: Path, nbytes: int) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo]:
    """The zip record of ``nbytes`` bytes and the record after it."""
    with zipfile.ZipFile(path) as archive:
        records = sorted(archive.infolist(), key=lambda info: info.header_offset)
    index = next(i for i, info in enumerate(records) if info.file_size == nbytes)
    return records[index], records[index + 1]


def _cut(path: Path, at: int, folder: Path, name: str = "cut.pth") -> Path:
    cut = folder / name
    cut.write_bytes(path.read_bytes()[:at])
    return cut


def test_a_pth_cut_short_names_the_tensor_with_the_bytes_expected_and_received(state_file, tmp_path):
    nbytes = 64 * 32 * 9 * 4
    record, following = _record(state_file, nbytes)
    key = record.filename.rsplit("/", 1)[1]
    at = following.header_offset - 100  # 16 of them are the record's data descriptor
    with pytest.raises(BadWeightsError) as error:
        check_complete(_cut(state_file, at, tmp_path), "state_dict", FIX)
    message = str(error.value)
    assert f"tensor 'layer3.0.conv1.weight' (storage data/{key}): expected {nbytes} bytes, received {nbytes - 84}" in (
        message
    )
    estimate = int(message.split(" of ~")[1].split(" ")[0])
    assert f"the file is cut short at byte {at} of ~" in message and message.endswith(f". To fix, {FIX}.")
    assert abs(estimate - state_file.stat().st_size) < 0.01 * state_file.stat().st_size, message  # ~Y: close


def test_a_pth_cut_between_records_names_the_first_missing_tensor(state_file, tmp_path):
    _, following = _record(state_file, 64 * 32 * 9 * 4)  # the cut falls right before the next tensor's header
    with pytest.raises(BadWeightsError, match=r"tensor 'layer3.0.bn1.weight' \(storage data/\d+\): expected 256 bytes"):
        check_complete(_cut(state_file, following.header_offset, tmp_path), "state_dict", FIX)


def test_a_pth_cut_in_its_index_or_its_directory_says_so(state_file, tmp_path):
    with pytest.raises(BadWeightsError, match=r"index \(data.pkl\) cut short .* no tensor can be named"):
        check_complete(_cut(state_file, 200, tmp_path, "index.pth"), "state_dict", FIX)
    size = state_file.stat().st_size
    with pytest.raises(BadWeightsError, match=r"every tensor's bytes, but the file's end .* cut at byte"):
        check_complete(_cut(state_file, size - 30, tmp_path, "directory.pth"), "state_dict", FIX)
    check_complete(state_file, "state_dict", FIX)  # a whole file passes


class _Payload:
    """A pickle that would create a file when unpickled by a reader that resolves any global."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_cut_pth_whose_pickle_calls_anything_else_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:  # stored, like torch's: the local headers walk as torch's do
        archive.writestr("evil/data.pkl", pickle.dumps({"conv1.weight": _Payload(marker)}, protocol=2))
        archive.writestr("evil/data/0", b"\0" * 4096)
    with pytest.raises(BadWeightsError, match=r"no tensor can be named"):
        check_complete(_cut(path, path.stat().st_size - 2000, tmp_path, "evil-cut.pth"), "state_dict", FIX)
    assert not marker.exists()


def test_a_safetensors_cut_short_names_the_first_tensor_in_file_order(tmp_path):
    path = tmp_path / "w.safetensors"
    # written in this order, so the data of "z.weight" comes first whatever order a reader lists names in
    write_safetensors(path, {"z.weight": np.ones((64, 64), np.float32), "a.weight": np.ones((64, 64), np.float32)})
    length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    at = 8 + length + 10_000
    with pytest.raises(BadWeightsError) as error:
        check_complete(_cut(path, at, tmp_path, "cut.safetensors"), "safetensors", FIX)
    assert "tensor 'z.weight' (bytes 0..16384 of the data): expected 16384 bytes, received 10000" in str(error.value)
    assert f"cut short at byte {at} of {path.stat().st_size}" in str(error.value)
    with pytest.raises(BadWeightsError, match=r"inside its header .* no tensor can be named"):
        check_complete(_cut(path, 40, tmp_path, "header.safetensors"), "safetensors", FIX)


def test_an_hdf5_file_cut_short_names_the_tensor_from_the_architectures_own_layout(tmp_path):
    import h5py  # Keras' own writer; no framework

    path = tmp_path / "w.weights.h5"
    with h5py.File(path, "w") as handle:  # the layout Keras' save_weights writes: layers/<layer>/vars/<index>
        for index, layer in enumerate(("conv2d", "dense")):
            handle.create_dataset(f"layers/{layer}/vars/0", data=np.full((32, 64), index, np.float32))
    data = path.read_bytes()
    assert hdf5_end_of_file(data[:128]) == len(data)
    with h5py.File(path, "r") as handle:
        start = handle["layers/dense/vars/0"].id.get_offset()
    cut = _cut(path, start + 1000, tmp_path, "cut.weights.h5")
    with pytest.raises(BadWeightsError) as error:
        check_hdf5(cut, FIX, reference=path, labels={"layers/dense/vars/0": "dense/kernel (layers/dense/vars/0)"})
    assert "tensor 'dense/kernel (layers/dense/vars/0)': expected 8192 bytes, received 1000" in str(error.value)
    assert f"cut short at byte {start + 1000} of {len(data)}" in str(error.value)
    with pytest.raises(BadWeightsError, match=r"no tensor can be named"):
        check_hdf5(cut, FIX)  # without the architecture's layout: where it ends, not which tensor


def test_a_keras_weights_file_cut_short_is_named_by_its_variable(workers, tmp_path):
    path = tmp_path / "MobileNetV2.weights.h5"
    workers["tensorflow"](probes.write_keras, "MobileNetV2", str(path), (32, 32, 3), 10)
    cut = _cut(path, 2_000_000, tmp_path, "cut.weights.h5")
    trial = _trial("keras:MobileNetV2", cut)
    with pytest.raises(BadWeightsError, match=r"tensor '[\w/]+/kernel \(layers/conv2d_\d+/vars/0\)': expected \d+ "):
        prepare_weights(trial, (32, 32, 3), tmp_path / "cache", ())


def _trial(model: str, weights: Path) -> TrialConfig:
    return TrialConfig("fine_tune", model, "digits", "torch", 0, 1, transfer=TransferOptions(weights_file=str(weights)))


def test_preflight_refuses_a_cut_file_before_any_framework_reads_it(state_file, tmp_path):
    _, following = _record(state_file, 64 * 32 * 9 * 4)
    cut = _cut(state_file, following.header_offset - 100, tmp_path)
    with pytest.raises(BadWeightsError, match=r"tensor 'layer3.0.conv1.weight'"):
        prepare_weights(_trial("resnet18", cut), (32, 32, 3), tmp_path / "cache", ("torch", "tensorflow"))
    assert not list((tmp_path / "cache").rglob("*.npz"))  # no conversion started


def test_a_cut_file_exits_2_naming_the_tensor(state_file, tmp_path, capsys):
    _, following = _record(state_file, 64 * 32 * 9 * 4)
    cut = _cut(state_file, following.header_offset - 100, tmp_path)
    args = ["run", "--strategy", "fine_tune", "--model", "resnet18", "--dataset", "digits", "--weights", str(cut)]
    assert cli.main([*args, "--input-size", "32", "--results-dir", str(tmp_path / "r")]) == 2
    assert "tensor 'layer3.0.conv1.weight' (storage data/" in capsys.readouterr().err
    assert not any((tmp_path / "r").glob("2*"))  # no run directory: nothing started


def _flipped(path: Path, record: zipfile.ZipInfo, folder: Path, at: int = 400) -> Path:
    """A copy of ``path`` with the lowest bit of byte ``at`` of ``record``'s data flipped (its zip directory whole)."""
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[record.header_offset + 26 : record.header_offset + 30])
    data[record.header_offset + 30 + name_len + extra_len + at] ^= 1
    damaged = folder / f"flipped-{record.filename.replace('/', '-')}.pth"
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_pth_with_a_flipped_bit_fails_its_crc_naming_the_tensor(workers, state_file, tmp_path, capsys):
    """The review's case: a file damaged in place (its zip directory whole) loaded, as torch.load does not check the
    CRC-32 every record carries, and trained from other numbers; with an exponent bit flipped, the verification
    blamed the conversion. Refused before any framework reads it, exit 2."""
    record = _record(state_file, 64 * 32 * 9 * 4)[0]
    damaged = _flipped(state_file, record, tmp_path)
    loaded, original = (workers["torch"](probes.read_torch_state, str(p)) for p in (damaged, state_file))
    name = "layer3.0.conv1.weight"
    assert not np.array_equal(loaded[name], original[name])  # torch reads the damage as other numbers
    with pytest.raises(BadWeightsError) as error:
        check_complete(damaged, "state_dict", FIX)
    key = record.filename.rsplit("/", 1)[1]
    message = str(error.value)
    assert f"Received: tensor '{name}' (storage data/{key}): its bytes fail the CRC-32, so the file is damaged" in (
        message
    ) and message.endswith(f"To fix, {FIX}."), message
    with zipfile.ZipFile(state_file) as archive:
        index = next(info for info in archive.infolist() if info.filename.endswith("/data.pkl"))
    with pytest.raises(BadWeightsError, match=r"Received: the tensor index \(\w+/data.pkl\): its bytes fail"):
        check_complete(_flipped(state_file, index, tmp_path, at=60), "state_dict", FIX)
    args = ["run", "--strategy", "fine_tune", "--model", "resnet18", "--dataset", "digits", "--weights", str(damaged)]
    assert cli.main([*args, "--input-size", "32", "--results-dir", str(tmp_path / "r")]) == 2
    assert f"tensor '{name}' (storage data/{key}): its bytes fail the CRC-32" in capsys.readouterr().err
    assert not any((tmp_path / "r").glob("2*"))  # no run directory: nothing started


def test_a_pth_that_is_no_torch_file_says_so_with_the_fix_for_whose_file_it_is(workers, tmp_path):
    """1000 random bytes named as torchvision's download: torch's own UnpicklingError advises re-running the load
    with weights_only=False, which xfbench never does, so it is not quoted. A user's file gets the advice to save a
    state dict; a zoo's (reaching the conversion only if its name carried no hash) the fetch command."""
    path = tmp_path / "resnet18-f37072fd.pth"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    runner = probes.probe_runner(workers)
    with pytest.raises(BadWeightsError) as error:
        prepare_weights(_trial("resnet18", path), (32, 32, 3), tmp_path / "cache", ("torch",), runner)
    users = str(error.value)
    request = {
        "ref": {"kind": "torchvision", "name": "resnet18", "weight_set": ""},
        "file": str(path),
        "format": "state_dict",
        "model": "resnet18",
        "model_options": asdict(ModelOptions()),
        "input_shape": [32, 32, 3],
        "normalize": "imagenet",
        "meta": {"weights": "torchvision:resnet18", "sha256": "", "key": "zoo"},
    }
    with pytest.raises(BadWeightsError) as error:
        runner("torch", "convert", request, tmp_path / "zoo")
    zoos = str(error.value)
    for message in (users, zoos):
        assert "Received: not a torch zip or pickle state dict (1000 bytes, starting " in message, message
        assert not any(torch_prose in message for torch_prose in ("PyTorch 2.6", "UnpicklingError", "Re-running"))
    assert "torch.save(model.state_dict(), path)" in users and "weights fetch" not in users, users
    assert "`xfbench weights fetch torchvision:resnet18`" in zoos and "state_dict(), path" not in zoos, zoos


def test_a_legacy_torch_pickle_cut_short_says_so(workers, tmp_path):
    """The review's case: a legacy-format .pth (_use_new_zipfile_serialization=False) cut short was "not a torch zip
    or pickle state dict", though its first bytes are torch's legacy magic number."""
    rng = np.random.default_rng(0)
    tensors = {name: rng.normal(size=shape).astype(np.float32) for name, shape in TENSORS.items()}
    whole = tmp_path / "legacy.pth"
    workers["torch"](probes.write_torch_state, str(whole), tensors, True)
    assert not zipfile.is_zipfile(whole)
    runner = probes.probe_runner(workers)
    for at in (740, whole.stat().st_size - 100):  # in the pickle of the tensor index; in the tensors' bytes
        cut = _cut(whole, at, tmp_path, f"legacy-{at}.pth")
        with pytest.raises(BadWeightsError) as error:
            prepare_weights(_trial("resnet18", cut), (32, 32, 3), tmp_path / "cache", ("torch",), runner)
        message = str(error.value)
        assert (
            "Received: a legacy torch pickle (torch.save with _use_new_zipfile_serialization=False, or torch before "
            f"1.6) that ends early, at byte {at} (cut short?). To fix, save it with "
            "torch.save(model.state_dict(), path)."
        ) in message, message


FULL_TIER_WEIGHTS = {
    "torchvision:alexnet": "alexnet-owt-7be5be79.pth",
    "torchvision:densenet121": "densenet121-a639ec97.pth",
    "torchvision:mobilenet_v2": "mobilenet_v2-7ebf99e0.pth",
    "torchvision:resnet18": "resnet18-f37072fd.pth",
    "torchvision:vgg11_bn": "vgg11_bn-6002323d.pth",
}


def test_the_gpu_tier_of_imagenet_transfer_starts_from_torchvisions_weights_and_the_cpu_tiers_do_not():
    from harness.suites import case_trials, suite

    def weights(name: str) -> set:
        chosen = suite(name)
        return {t.transfer.pretrained for c in chosen.cases for t in case_trials(c, name, ("torch", "tensorflow"), 1)}

    assert weights("imagenet_transfer") == set(FULL_TIER_WEIGHTS)
    assert weights("imagenet_transfer_quick") == weights("imagenet_transfer_smoke") == {None}


def test_a_run_whose_zoo_weights_are_not_cached_exits_2_with_one_fetch_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XFBENCH_WEIGHTS", str(tmp_path / "empty-home"))
    args = ["run", "--suite", "imagenet_transfer", "--gpus-per-trial", "1", "--results-dir", str(tmp_path / "r")]
    assert cli.main(args) == 2  # before the data (CIFAR-10 is not on this machine) and before Ray
    err = capsys.readouterr().err
    assert f"`xfbench weights fetch {' '.join(sorted(FULL_TIER_WEIGHTS))}`" in err, err
    assert all(f"torch/hub/checkpoints/{name}" in err for name in FULL_TIER_WEIGHTS.values()), err
    assert "5 of 5 sets missing" in err and str(tmp_path / "empty-home") in err
    assert not any((tmp_path / "r").glob("2*"))


@pytest.mark.parametrize(
    ("ended", "expected"),
    [(-9, "killed by SIGKILL"), (1, "exit status 1"), (0, "exit status 0 without an answer file")],
)
def test_a_weights_worker_that_dies_without_an_answer_is_reported_with_how_it_ended(tmp_path, ended, expected):
    def died(argv: list[str]) -> tuple[int, str]:
        return ended, "I0000 cudart_stub.cc:31] Could not find cuda drivers\nloading\nconverting layer 3"

    with pytest.raises(RuntimeError, match="Expected the tensorflow weights worker") as error:
        run_worker("tensorflow", "probe", {}, tmp_path / "out", call=died)
    assert expected in str(error.value) and "loading | converting layer 3" in str(error.value)


def test_the_backends_verified_at_once_answer_in_files_of_their_own(tmp_path):
    checkpoint = tmp_path / "resnet18.npz"
    outs = [checkpoint.with_suffix(f".{backend}") for backend in BACKENDS]  # as verify() names them
    assert len({worker_reply(out, kind) for out in outs for kind in ("answer", "error")}) == 4

    def answers(argv: list[str]) -> tuple[int, str]:
        worker_reply(Path(argv[3]), "answer").write_text(json.dumps({"backend": argv[0]}))
        return 0, ""

    replies = [run_worker(backend, "probe", {}, out, call=answers) for backend, out in zip(BACKENDS, outs, strict=True)]
    assert [reply["backend"] for reply in replies] == list(BACKENDS)


def test_runs_asking_for_one_output_at_once_each_read_their_own_workers_answer(tmp_path):
    """Runs sharing a --results-dir ask their workers for the same OUT (``work/resolve``, a checkpoint's name): each
    call's replies are its own (shared, one run took the other's weight file as its own, or lost its answer and was
    told its worker was killed), and nothing of either stays beside OUT."""
    out = tmp_path / "pretrained" / "work" / "resolve"
    both_started, both_answered = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)

    def worker(file: str) -> Callable[[list[str]], tuple[int, str]]:
        def answers(argv: list[str]) -> tuple[int, str]:
            both_started.wait()  # each run has cleared what it took for stale replies
            worker_reply(Path(argv[3]), "answer").write_text(json.dumps({"file": file}))
            both_answered.wait()
            return 0, ""

        return answers

    files = ["resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(run_worker, "torch", "resolve", {}, out, call=worker(file)) for file in files]
    assert [run.result()["file"] for run in runs] == files
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("module", ["harness.weights_worker", "harness.import_worker"])
def test_the_converting_workers_start_with_the_gpus_hidden_and_the_driver_keeps_its_own(monkeypatch, module):
    """A source framework on a GPU computes its reference logits there (TensorFlow with TF32 by default), which the
    CPU backends' rebuilds would not reproduce: the worker's environment hides the GPUs, the driver's does not."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    started = []

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        started.append(kwargs["env"])
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(fresh_process.subprocess, "run", run)
    assert fresh_process.run_worker_module(module, ["{}", "out"]) == (0, "")
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == [""]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"


def test_what_a_worker_makes_besides_its_replies_lands_beside_its_output(tmp_path):
    """A conversion's checkpoint and probe batch, made in the call's own folder, are renamed beside OUT."""
    checkpoint = tmp_path / "pretrained" / "0123456789abcdef.npz"

    def converts(argv: list[str]) -> tuple[int, str]:
        told = Path(argv[3])
        for made in (told.with_suffix(".probe.npz"), told):
            made.write_text(made.name)
        worker_reply(told, "answer").write_text(json.dumps({"checkpoint": str(told)}))
        return 0, ""

    run_worker("torch", "convert", {}, checkpoint, call=converts)
    assert sorted(path.name for path in checkpoint.parent.iterdir()) == [checkpoint.name, "0123456789abcdef.probe.npz"]
    assert checkpoint.read_text() == checkpoint.name


def _npz_request(path: Path) -> dict[str, object]:
    return {"format": "npz", "file": str(path), "model": "cnn_small", "input_shape": [8, 8, 1], "model_options": {}}


def _in_this_process(argv: list[str]) -> tuple[int, str]:
    return weights_worker.main(argv), ""  # a failed npz read stops before any framework is imported


def _checkpoint_bytes(folder: Path) -> bytes:
    spec = build_spec("cnn_small", (8, 8, 1), 10)
    save_checkpoint(folder / "whole.npz", spec, initial_weights(spec, "he_normal", 0), {})
    return (folder / "whole.npz").read_bytes()


def _one_array(folder: Path) -> bytes:
    np.save(folder / "one.npy", np.zeros(3))
    return (folder / "one.npy").read_bytes()


def _other_programs_arrays(folder: Path) -> bytes:
    np.savez(folder / "arrays.npz", a=np.zeros(3))
    return (folder / "arrays.npz").read_bytes()


def _checkpoint_without(folder: Path, weight: str = "", spec_field: str = "") -> bytes:
    """xfbench's checkpoint with one weight array or one field of its stored spec left out."""
    with np.load(io.BytesIO(_checkpoint_bytes(folder)), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != f"w::{weight}"}
    spec = json.loads(str(arrays["__spec__"]))
    spec.pop(spec_field, None)
    arrays["__spec__"] = np.array(json.dumps(spec))
    np.savez(folder / "without.npz", **arrays)
    return (folder / "without.npz").read_bytes()


@pytest.mark.parametrize(
    ("write", "found"),
    [
        (lambda folder: b"not weights at all", "Received: not an .npz archive (cut short, or another kind of file)"),
        (lambda folder: _checkpoint_bytes(folder)[:300], "Received: not an .npz archive"),
        (
            lambda folder: _other_programs_arrays(folder),
            "Received: an .npz archive without xfbench's entries (__spec__ is not a file in the archive)",
        ),
        (lambda folder: b"", "Received: not an .npz archive"),
        (lambda folder: _one_array(folder), "Received: not an .npz archive"),
        (
            lambda folder: _checkpoint_without(folder, spec_field="layers"),
            "Received: an .npz of xfbench's form whose contents it refuses (Expected a stored spec with the fields",
        ),
        (
            lambda folder: _checkpoint_without(folder, weight="logits::bias"),
            "Received: an .npz of xfbench's form whose contents it refuses (Expected neutral weights matching model "
            "'cnn_small'. Received: missing=['logits/bias']",
        ),
    ],
    ids=[
        "another kind of file",
        "a checkpoint cut short",
        "another program's arrays",
        "empty",
        "an .npy",
        "a stored spec cut short",
        "an array missing",
    ],
)
def test_an_npz_that_is_not_xfbenchs_checkpoint_is_bad_weights_saying_what_it_is(tmp_path, write, found):
    """numpy's own errors differ by damage (a pickle refused, a KeyError, a BadZipFile): each is bad input (exit 2)
    saying what the file is, never numpy's advice to unpickle it, nor a traceback."""
    path = tmp_path / "weights.npz"
    path.write_bytes(write(tmp_path))
    with pytest.raises(BadWeightsError) as error:
        run_worker("torch", "convert", _npz_request(path), tmp_path / "out", call=_in_this_process)
    message = str(error.value)
    assert message.startswith("Expected xfbench's neutral checkpoint in weights.npz (--weights") and found in message
    assert "allow_pickle" not in message
    assert message.endswith("To fix, use an .npz xfbench wrote, or the framework's own file (.pth, .safetensors, "
                            ".weights.h5).")  # fmt: skip


def test_a_fault_in_a_weights_worker_keeps_its_traceback_instead_of_reading_as_bad_weights(tmp_path, monkeypatch):
    """Only InputError is the user's: a ValueError from the conversion's own code (a reshape gone wrong) propagates,
    so the worker exits with its traceback and the driver reports a fault, not a bad file."""

    def faulty(*args: object) -> None:
        raise ValueError("cannot reshape array of size 6 into shape (4,)")

    monkeypatch.setattr(weights_worker, "run", faulty)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="cannot reshape"):
        weights_worker.main(["torch", "convert", json.dumps(_npz_request(tmp_path / "w.npz")), str(out)])
    assert not worker_reply(out, "error").exists()


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 16]}, "shape and byte range disagree"),
        ({"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}, "shape and byte range disagree"),
        ({"dtype": "F32", "shape": ["two"], "data_offsets": [0, 16]}, "Expected whole-number data_offsets"),
        ({"shape": [2, 2], "data_offsets": [0, 16]}, "Expected a numeric dtype for tensor 'w'"),  # a KeyError before
    ],
)
def test_a_safetensors_header_whose_shape_and_bytes_disagree_is_bad_weights(tmp_path, entry, found):
    """A damaged header is the file's fault (exit 2), not a numpy ValueError from the conversion's code."""
    from harness.weight_files import read_safetensors

    header = json.dumps({"w": entry}).encode()
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    with pytest.raises(BadWeightsError, match=found):
        read_safetensors(path)


def test_a_conversion_cut_short_leaves_no_checkpoint_without_its_probe(tmp_path, monkeypatch):
    """The checkpoint was written before its probe batch: cut in between, its presence said "converted", and every
    later verification failed on the missing probe until _cache was deleted by hand."""
    import harness.pretrained
    from harness.pretrained import write_converted

    spec = build_spec("mlp", (8, 8, 1), 10, ModelOptions(hidden=(4,)))
    weights = initial_weights(spec, "glorot_uniform", 0)
    probe = {"x": np.zeros((2, 8, 8, 1), np.float32), "logits": np.zeros((2, 10), np.float32), "layers": {}}

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.pretrained, "save_checkpoint", cut)
    with pytest.raises(KeyboardInterrupt):
        write_converted(tmp_path / "c.npz", spec, weights, {}, probe)
    assert not (tmp_path / "c.npz").exists() and (tmp_path / "c.probe.npz").is_file()
    monkeypatch.undo()
    write_converted(tmp_path / "c.npz", spec, weights, {}, probe)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "c.probe.npz"]


def test_a_dense_kernel_of_another_width_is_told_the_input_size_may_be_why():
    """Keras' VGG16 ends in Flatten -> Dense: its file's fc1 (25088 = 7 x 7 x 512 inputs, at 224 x 224) read at
    --input-size 64 was told only to pass another model or file. A tensor of another shape altogether is not."""
    from harness.weight_files import check_tensor_shapes

    with pytest.raises(BadWeightsError, match=r"shape \(25088, 4096\).*give the --input-size the file was saved at"):
        check_tensor_shapes({"fc1/kernel": (2048, 4096)}, {"fc1/kernel": (25088, 4096)}, "vgg16.weights.h5", "VGG16")
    # a torch Linear's weight is (outputs, inputs)
    with pytest.raises(BadWeightsError, match="give the --input-size"):
        check_tensor_shapes({"fc.weight": (10, 2048)}, {"fc.weight": (10, 25088)}, "net.pth", "Net")
    # another convolution, or a dense layer of other outputs (--hidden 256 against 128): not the input size
    for expected, received in (((3, 3, 3, 64), (3, 3, 3, 32)), ((64, 128), (64, 256))):
        with pytest.raises(BadWeightsError) as other:
            check_tensor_shapes({"layer/kernel": expected}, {"layer/kernel": received}, "f.weights.h5", "Net")
        assert "--input-size" not in str(other.value)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_a_file_saved_inside_a_wrapper_is_told_its_prefix(prefix):
    """A model saved inside DataParallel, DistributedDataParallel or torch.compile: every tensor was there under a
    prefix, and the user read "no such tensor. Is the file for another architecture?"."""
    from harness.weight_files import check_tensor_shapes

    expected = {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "fc.weight": (10, 8), "fc.bias": (10,)}
    with pytest.raises(BadWeightsError) as wrapped:
        check_tensor_shapes(expected, {f"{prefix}{k}": v for k, v in expected.items()}, "net.pth", "Net")
    message = str(wrapped.value)
    assert f"Received: every one under the prefix {prefix!r} ('{prefix}conv1.weight')" in message, message
    assert "model.module.state_dict()" in message and "another architecture" not in message, message
    partial = {f"{prefix}{k}": v for k, v in expected.items() if not k.startswith("fc")}
    with pytest.raises(BadWeightsError, match="Received: no such tensor"):  # not the whole model: not a wrapper's
        check_tensor_shapes(expected, partial, "net.pth", "Net")
    bigger = {**{f"{prefix}{k}": v for k, v in expected.items()}, "head.weight": (5, 10)}  # the net inside another
    with pytest.raises(BadWeightsError, match="Received: no such tensor"):
        check_tensor_shapes(expected, bigger, "net.pth", "Net")


def test_a_legacy_keras_file_saved_at_another_input_size_is_told_so(workers, tmp_path):
    """A legacy .h5 (keras.applications' VGG16 download) is loaded by Keras itself, whose message names the dense
    layer's shapes only: the hint follows it there too."""
    message = workers["tensorflow"](probes.legacy_input_size_error, str(tmp_path / "net.h5"))
    assert "named fc1" in message and "give the --input-size the file was saved at" in message, message


def _bad_header_file(folder: Path) -> Path:
    """A .safetensors file whose header is no JSON (review 166's bad_header.safetensors)."""
    path = folder / "bad_header.safetensors"
    header = b"{not json" + b" " * 7
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(64))
    return path


def _refusals(folder: Path) -> dict[str, Callable[[], object]]:
    """Each refusal of the weight-file modules that reads without a framework: case -> the call that raises it."""
    from harness.checkpoints import load_checkpoint
    from harness.pretrained import check_finite, fold_bgr, weights_ref
    from harness.weight_files import read_safetensors, weights_format
    from harness.weights import initializer
    from harness.weights_fit import check_strategy_reads_weights, check_torchvision_width, keras_name

    def short() -> Path:
        path = folder / "short.safetensors"
        path.write_bytes(b"\x01\x02")
        return path

    mlp = build_spec("mlp", (8, 8, 1), 10)
    both = TransferOptions(weights_file="net.pth", pretrained="torchvision:resnet18")
    return {
        "non-JSON header, before any framework": lambda: check_complete(_bad_header_file(folder), "safetensors", FIX),
        "non-JSON header, read": lambda: read_safetensors(_bad_header_file(folder)),
        "a safetensors file of 2 bytes": lambda: read_safetensors(short()),
        "--pretrained and --weights": lambda: weights_ref(
            TrialConfig("fine_tune", "resnet18", "digits", "torch", 0, 1, transfer=both)
        ),
        "a missing --weights file": lambda: weights_ref(_trial("resnet18", folder / "none.pth")),
        "a folder as --weights": lambda: weights_format(folder),
        "a .keras archive": lambda: weights_format("net.keras"),
        "NaN in a tensor": lambda: check_finite([("w", np.array([np.nan]))], "net.pth", FIX),
        "BGR into a network without a convolution": lambda: fold_bgr(mlp, {}),
        "a missing checkpoint": lambda: load_checkpoint(folder / "none.npz"),
        "an unknown initializer": lambda: initializer("glorot"),
        "a strategy that reads no weights": lambda: check_strategy_reads_weights("scratch"),
        "a width torchvision's architecture lacks": lambda: check_torchvision_width("resnet18", 0.5),
        "Keras weights for another --model": lambda: keras_name("resnet18"),
    }


@pytest.mark.parametrize("case", list(_refusals(Path("."))))
def test_every_weight_file_refusal_says_expected_received_and_the_fix(tmp_path, case):
    """Review 166: refusals ended on what was received ("Received: Expecting property name ... in
    bad_header.safetensors.") or on a fix not marked as one; each reads Expected ... Received: ... To fix, ..."""
    with pytest.raises((InputError, FileNotFoundError)) as refused:
        _refusals(tmp_path)[case]()
    message = str(refused.value)
    assert re.fullmatch(r"Expected .+\. Received: .+\. To fix, .+\.", message, re.S), message
