"""Framework-neutral checkpoints: the spec as JSON and the neutral weights, in one .npz (never pickle).

A checkpoint written from one backend loads into any other: pretrain in PyTorch, fine-tune in TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.file_modes import shared_file_mode
from harness.spec import ModelSpec, spec_from_dict, spec_to_dict
from harness.weights import NeutralWeights, check_weights, host_array

_WEIGHT_PREFIX = "w::"


def save_checkpoint(path: Path, spec: ModelSpec, weights: NeutralWeights, metadata: dict[str, Any]) -> None:
    """Write atomically (temporary file, then rename), so a concurrent reader never sees half a file."""
    check_weights(spec, weights)
    arrays = {_WEIGHT_PREFIX + k.replace("/", "::"): host_array(v) for k, v in weights.items()}
    arrays["__spec__"] = np.array(json.dumps(spec_to_dict(spec)))
    arrays["__meta__"] = np.array(json.dumps(metadata, sort_keys=True, default=str))
    save_npz_atomically(path, arrays)


def save_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as ``path`` (.npz), written under a name of its own and renamed: concurrent writers of one cache
    entry (trials that share it) never interleave, and a reader sees a whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part.npz")  # ends in .npz: savez keeps the name as is
    os.close(fd)
    try:
        np.savez(tmp, allow_pickle=False, **arrays)  # load_checkpoint reads with allow_pickle=False too
        # mkstemp makes the file 0600 whatever the umask (harness.file_modes says why that is wrong here)
        os.chmod(tmp, shared_file_mode())
        os.replace(tmp, path)
    except BaseException:  # a full disk: each try's backbone-sized temporary file was left, filling it further
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_header(path: Path) -> tuple[ModelSpec, dict[str, Any]]:
    """A checkpoint's spec and metadata without its weights (an .npz reads each member on its own)."""
    with np.load(path, allow_pickle=False) as data:
        return spec_from_dict(json.loads(str(data["__spec__"]))), json.loads(str(data["__meta__"]))


def load_checkpoint(path: Path) -> tuple[ModelSpec, NeutralWeights, dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected a checkpoint file. Received: {path} does not exist. To fix, check the path; a checkpoint in "
            "a run's _cache is written by the run that needs it, so start that run again."
        )
    with np.load(path, allow_pickle=False) as data:
        spec = spec_from_dict(json.loads(str(data["__spec__"])))
        meta = json.loads(str(data["__meta__"]))
        weights = {
            k[len(_WEIGHT_PREFIX) :].replace("::", "/"): data[k].copy()
            for k in data.files
            if k.startswith(_WEIGHT_PREFIX)
        }
    check_weights(spec, weights)
    return spec, weights, meta
