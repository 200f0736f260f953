"""Files written whole: flushed to disk before the rename, the old file kept when a write stops mid-way."""

from __future__ import annotations

import os

import pytest

import harness.whole_files as whole_files
from harness.whole_files import PARTIAL, write_text_whole


def test_the_new_content_is_on_disk_before_its_name_replaces_the_old_file(tmp_path, monkeypatch):
    """Without the fsync a power loss could leave the new name on an empty file (the rename committed before the
    data), which for a part or run.json is a run that no resume can read (review 157)."""
    target = tmp_path / "run.json"
    target.write_text("old")
    calls: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd: int) -> None:
        calls.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        fsync(fd)

    def recorded_replace(source: os.PathLike[str], destination: os.PathLike[str]) -> None:
        calls.append(("replace", os.path.basename(source)))
        replace(source, destination)

    monkeypatch.setattr(whole_files.os, "fsync", recorded_fsync)
    monkeypatch.setattr(whole_files.os, "replace", recorded_replace)
    write_text_whole(target, "new")
    assert calls == [("fsync", "run.json" + PARTIAL), ("replace", "run.json" + PARTIAL)]
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_write_stopped_mid_way_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("the earlier page")
    with pytest.raises(KeyboardInterrupt), whole_files.written_whole(target) as partial:
        partial.write_text("half a pa")
        raise KeyboardInterrupt
    assert target.read_text() == "the earlier page" and sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_link_is_written_through_and_a_replaced_file_keeps_its_permissions(tmp_path):
    """`report --output` at a symbolic link (into a served folder) replaced the link with a file, and the rename gave
    a group-readable page the new file's permissions (review 164)."""
    served = tmp_path / "served"
    served.mkdir()
    page = served / "report.html"
    page.write_text("the earlier page")
    page.chmod(0o640)
    link = tmp_path / "report.html"
    link.symlink_to(page)
    write_text_whole(link, "the new page")
    assert link.is_symlink() and link.resolve() == page and page.read_text() == "the new page"
    assert oct(page.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in served.iterdir()) == ["report.html"]
    dangling = tmp_path / "new.html"
    dangling.symlink_to(served / "new.html")  # a link made before the first report: the page appears at its target
    write_text_whole(dangling, "first")
    assert dangling.is_symlink() and (served / "new.html").read_text() == "first"
