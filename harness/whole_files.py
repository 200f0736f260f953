"""Files a reader finds whole or not at all: written beside their target, flushed to disk, then renamed over it.

A driver killed mid-write (Ctrl-C, a full disk) leaves the old file or none, never a truncated one, and the fsync
before the rename keeps a power loss from leaving the new name on an empty file (filesystems may commit the rename
before the data): parts/*.parquet are what a resume keeps, run.json what it reads first.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PARTIAL = ".partial"  # a file being written, renamed over its target once whole


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """The file to write ``path``'s new content to: flushed and renamed over ``path`` once the block ends, removed if
    it raises. A ``path`` that is a symbolic link is written through, as open() would (``report --output`` at a link
    into a served folder), and a file it replaces keeps its permissions (the rename would give it the new file's)."""
    path = path.resolve()  # renaming over the link itself would replace the link with a file
    partial = path.with_name(path.name + PARTIAL)
    try:
        yield partial
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        if path.exists():
            os.chmod(partial, stat.S_IMODE(path.stat().st_mode))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text_whole(path: Path, text: str) -> None:
    """``text`` as ``path`` in UTF-8, written whole (:func:`written_whole`). UTF-8 whatever the locale: report.html
    declares it and holds non-ASCII signs (plus-minus, arrows), which a C locale's ASCII could not write at all."""
    with written_whole(path) as partial:
        partial.write_text(text, encoding="utf-8")
