"""Cache files (backbones, converted imports, features) get the mode any new file gets under the umask, so a results
folder shared between users or cluster nodes running as other users can read what another wrote."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from harness.checkpoints import save_npz_atomically
from harness.file_modes import current_umask, shared_file_mode


def _with_umask(mask: int, write: Path) -> int:
    """The mode of ``write`` saved under ``mask``; the test's own umask is put back whatever happens."""
    previous = os.umask(mask)
    try:
        save_npz_atomically(write, {"x": np.arange(3)})
    finally:
        os.umask(previous)
    return stat.S_IMODE(write.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_cache_file_gets_the_mode_the_umask_gives_a_new_file(tmp_path, mask, expected):
    # mkstemp alone makes 0600: another user would see the cached entry (work skipped) and fail to read it
    assert _with_umask(mask, tmp_path / "backbone.npz") == expected
    with np.load(tmp_path / "backbone.npz", allow_pickle=False) as data:
        assert data["x"].tolist() == [0, 1, 2]


def test_a_replaced_cache_file_takes_the_new_mode_and_leaves_no_partial_file(tmp_path):
    target = tmp_path / "features.npz"
    _with_umask(0o077, target)
    assert _with_umask(0o022, target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["features.npz"]


def test_the_umask_is_read_without_changing_it(tmp_path):
    previous = os.umask(0o027)
    try:
        from_status = current_umask()
        from_round_trip = current_umask(tmp_path / "no-such-status")  # not Linux, or a kernel before 4.7
        after = os.umask(0o027)
    finally:
        os.umask(previous)
    assert (from_status, from_round_trip, after) == (0o027, 0o027, 0o027)


def test_a_status_file_without_a_umask_line_falls_back_to_the_round_trip(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nPid:\t1\n")
    previous = os.umask(0o007)
    try:
        assert current_umask(status) == 0o007
        assert shared_file_mode() == 0o660
    finally:
        os.umask(previous)


def test_a_checkpoint_write_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    """np.savez failing (a full disk) left its tmpXXXX.part.npz, a backbone's size, new on every try: each retry
    or resume filled the disk further (review 157, finding 7)."""

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_npz_atomically(tmp_path / "cache" / "w.npz", {"w": np.zeros(3)})
    assert list((tmp_path / "cache").iterdir()) == []
