"""Cached backbones and features are keyed by the code and framework that made them, not only by their recipe."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

import harness
import harness.cachekeys as cachekeys
from harness.backbone import recipe_for
from harness.checkpoints import save_npz_atomically
from harness.config import PRECISIONS, RegularizationConfig, RuntimeOptions, TransferOptions, TrialConfig
from harness.input_pipeline import InputConfig
from harness.schedules import ScheduleConfig

ROOT = Path(__file__).resolve().parents[1]


def _target(source_backend: str = "torch") -> TrialConfig:
    return TrialConfig(
        "fine_tune",
        "cnn_small",
        "digits",
        "tensorflow",
        seed=0,
        epochs=1,
        transfer=TransferOptions(source_backend=source_backend),
        cache_dir="/tmp/cache",
    )


def test_backbone_key_changes_with_xfbench_version_source_and_framework_version(monkeypatch):
    recipe = recipe_for(_target())
    key = recipe.key
    assert recipe_for(_target()).key == key  # stable within a process
    monkeypatch.setattr(harness, "__version__", "999.0")
    assert recipe.key != key
    monkeypatch.undo()
    monkeypatch.setattr(cachekeys, "source_digest", lambda: "edited")
    assert recipe.key != key
    monkeypatch.undo()
    monkeypatch.setattr(cachekeys, "installed_framework_version", lambda backend: f"{backend} 0.0")
    assert recipe.key != key
    monkeypatch.undo()
    assert recipe.key == key


def test_backbone_key_changes_with_what_the_source_backend_computes_in():
    """Another precision, dropout generator or BatchNorm arithmetic trains other weights: another backbone. The
    pretrain trial, run with the target's runtime on the source backend, keys the checkpoint it writes alike."""
    from harness.backbone import pretrain_trial

    base = _target()
    keys = {recipe_for(base).key}
    gpu = {"device": "gpu"}
    for setting in (
        {"precision": "mixed_bfloat16"},
        {"dropout_rng": "framework"},
        {"bn_statistics": "float64"},
        gpu,
        {**gpu, "tf32": True},  # TF32 matmuls on a GPU (the cache held a TF32 backbone for a strict float32 run)
    ):
        target = replace(base, runtime=RuntimeOptions(**setting))
        keys.add(recipe_for(target).key)
        assert recipe_for(pretrain_trial(target)).key == recipe_for(target).key, setting
    assert len(keys) == 5  # the device alone computes the same float32
    on_a_cpu = replace(base, runtime=RuntimeOptions(tf32=True))  # a CPU computes no TF32: the same backbone
    assert recipe_for(on_a_cpu).key == recipe_for(base).key


def test_a_backbone_is_trained_without_the_targets_schedule_and_regularisation_which_its_key_does_not_hold():
    """Two targets that differ only in what the recipe leaves out share one checkpoint, so its pretrain trial must
    train the same weights for both: with neither target's schedule, penalties or max-norm."""
    from harness.backbone import pretrain_trial

    plain = _target()
    tuned = replace(
        plain, schedule=ScheduleConfig("onecycle"), regularization=RegularizationConfig(l2=0.01, max_norm=1)
    )
    assert recipe_for(tuned).key == recipe_for(plain).key
    assert pretrain_trial(tuned) == pretrain_trial(plain)
    assert pretrain_trial(tuned).schedule == ScheduleConfig()
    assert pretrain_trial(tuned).regularization == RegularizationConfig()


def test_feature_file_name_is_keyed_by_the_extracting_backend_code_and_framework(monkeypatch):
    recipe = recipe_for(_target())
    by_torch = recipe.features_file("flatten", "flatten", "task", "torch")
    by_tf = recipe.features_file("flatten", "flatten", "task", "tensorflow")
    assert by_torch.startswith(recipe.key) and by_torch.endswith(".npz") and "-torch-" in by_torch and by_tf != by_torch
    monkeypatch.setattr(cachekeys, "installed_framework_version", lambda backend: f"{backend} 0.0")
    assert recipe.features_file("flatten", "flatten", "task", "torch") != by_torch


def test_features_are_keyed_by_the_precision_they_were_extracted_in():
    from harness.data import load_dataset
    from harness.strategies.deep_features import features_task_key

    digits = load_dataset("digits")
    keys = {features_task_key(replace(_target(), runtime=RuntimeOptions(precision=p)), digits) for p in PRECISIONS}
    assert len(keys) == len(PRECISIONS)
    assert features_task_key(_target(), digits) == features_task_key(replace(_target(), seed=1), digits)  # not seed
    # TF32 on a GPU extracts other features (and a GPU other bits than the CPU: keyed below)
    on_gpu = {
        features_task_key(replace(_target(), runtime=RuntimeOptions(device="gpu", tf32=t)), digits) for t in (0, 1)
    }
    assert len(on_gpu) == 2 and features_task_key(_target(), digits) not in on_gpu


def test_features_are_keyed_by_how_the_extractor_ran_where_its_backend_applies_it():
    """A --jit-compile deep_features trial read features extracted without XLA (other bits) from the cache, and
    recorded XLA as applied, with no extraction timed. A setting the backend does not apply (XLA on torch) leaves
    the key as it was, as do the defaults (files made before keep their key)."""
    from harness.data import load_dataset
    from harness.strategies.deep_features import features_task_key

    digits = load_dataset("digits")
    plain = features_task_key(_target(), digits)
    tf_modes = [RuntimeOptions(jit_compile=True), RuntimeOptions(device="gpu")]
    keys = {features_task_key(replace(_target(), runtime=r), digits) for r in tf_modes}
    assert len(keys) == 2 and plain not in keys
    on_torch = replace(_target(), backend="torch")
    assert features_task_key(replace(on_torch, runtime=RuntimeOptions(jit_compile=True)), digits) == plain
    compiled = replace(on_torch, runtime=RuntimeOptions(torch_compile=True))
    assert features_task_key(compiled, digits) != plain


def test_features_are_keyed_by_the_data_they_were_extracted_from():
    """Pretrained weights' key holds no dataset: features of MNIST were read for Fashion-MNIST (same shapes, same
    split sizes), and those of one folder of files for another under the same name."""
    from dataclasses import replace as changed

    from harness.data import load_dataset
    from harness.strategies.deep_features import features_task_key

    digits = load_dataset("digits")
    other = changed(digits, x_test=digits.x_test[::-1].copy())  # the same shapes and labels' count, other pixels
    relabelled = changed(digits, y_train=(digits.y_train + 1) % 10)
    keys = {features_task_key(_target(), d) for d in (digits, other, relabelled)}
    keys.add(features_task_key(replace(_target(), dataset="fashion_mnist"), digits))
    assert len(keys) == 4


def test_features_are_keyed_by_the_input_pipeline_in_front_of_the_network():
    """Pretrained weights' checkpoint key holds the input shape only: features made with ImageNet normalisation or
    another resize mode are other features."""
    from harness.data import load_dataset
    from harness.strategies.deep_features import features_task_key

    base = replace(_target(), input=InputConfig(size=32, channels=3))
    others = [
        replace(base.input, normalize="imagenet"),
        replace(base.input, resize_mode="resize-crop"),
        replace(base.input, resize_mode="resize-crop", resize_side=40),
    ]
    digits = load_dataset("digits")
    keys = {features_task_key(base, digits), *(features_task_key(replace(base, input=i), digits) for i in others)}
    assert len(keys) == 1 + len(others)


def _copy_sources(target: Path) -> None:
    for folder in cachekeys.SOURCE_DIRS:
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))


def test_source_digest_covers_every_harness_and_backend_source_file(tmp_path):
    _copy_sources(tmp_path / "copy")
    assert cachekeys.source_digest(tmp_path / "copy") == cachekeys.source_digest(ROOT)
    _copy_sources(tmp_path / "edited")
    adapter = tmp_path / "edited" / "backends" / "torch" / "adapter.py"
    adapter.write_text(adapter.read_text() + "\n# a change\n")
    assert cachekeys.source_digest(tmp_path / "edited") != cachekeys.source_digest(ROOT)


def test_keys_read_framework_versions_from_package_metadata_without_importing_a_framework():
    code = (
        "import json, sys\n"
        "from harness.cachekeys import code_versions\n"
        "print(json.dumps({'versions': {b: code_versions(b) for b in ('torch', 'tensorflow')},\n"
        "                  'imported': sorted(m for m in ('torch', 'tensorflow', 'ray') if m in sys.modules)}))\n"
    )
    out = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    )
    assert out["imported"] == []
    for backend in ("torch", "tensorflow"):
        versions = out["versions"][backend]
        assert versions["framework"] == f"{backend} {importlib.metadata.version(backend)}"
        assert versions["xfbench"] == harness.__version__ and re.fullmatch(r"[0-9a-f]{16}", versions["source"])


def test_make_test_starts_from_an_empty_cache():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:")[1].split("\n\n")[0]
    lines = [line.strip() for line in recipe.splitlines()[1:]]
    pytest_line = next(i for i, line in enumerate(lines) if "pytest" in line)
    assert any(line.startswith("rm -rf results/ci") for line in lines[:pytest_line]), recipe


def _write_many(path: str, value: int) -> None:
    for _ in range(30):
        save_npz_atomically(Path(path), {"train": np.full((200, 64), value, np.float32)})


def test_trials_that_write_one_cache_entry_at_once_leave_a_whole_file_and_no_parts(tmp_path):
    """Head trials of one backbone share its features and may extract them at the same time: each writer's own
    temporary name, then a rename, so the entry is always one writer's whole file."""
    import multiprocessing

    path = tmp_path / "features" / "entry.npz"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(str(path), value)) for value in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    with np.load(path, allow_pickle=False) as stored:
        train = stored["train"]
    assert train.shape == (200, 64) and len(np.unique(train)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["entry.npz"]


def test_a_search_sample_and_a_tuned_rerun_pretrain_the_same_backbone_trial_as_their_case():
    """Search samples and a tune run's tuned re-runs share their case's backbone: one pretrain trial, one id."""
    from harness.backbone import pretrain_trial

    plain = _target()
    for variant_of_the_case in (replace(plain, sample=3), replace(plain, tuned=True)):
        assert pretrain_trial(variant_of_the_case) == pretrain_trial(plain)
        assert ".search" not in pretrain_trial(variant_of_the_case).trial_id


def test_a_backbone_trained_with_framework_masks_is_keyed_by_the_compiled_step_that_drew_them():
    """Under --dropout-rng framework, XLA's and torch.compile's steps draw other masks than the eager one: whichever
    run filled the cache first gave every later run its backbone, recorded with that run's own compile option."""
    for source, compiled in (("torch", {"torch_compile": True}), ("tensorflow", {"jit_compile": True})):
        base = replace(_target(), transfer=replace(_target().transfer, source_backend=source))
        keys = {}
        for rng in ("shared", "framework"):
            for options in ({}, compiled):
                keys[(rng, bool(options))] = recipe_for(
                    replace(base, runtime=RuntimeOptions(dropout_rng=rng, **options))
                ).key
        assert keys[("shared", False)] == keys[("shared", True)], source  # the shared masks: alike in every mode
        assert keys[("framework", False)] != keys[("framework", True)], source
