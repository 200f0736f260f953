"""The user cache, the one folder xfbench downloads dataset files into, and how a damaged file is fixed by where it
lies: only a file in the cache's download folder comes back by deleting it and running again. Elsewhere (--data-dir,
$XFBENCH_DATA, the system root) a folder that lost a file is refused as partial, never completed by a download."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# The folders of the user cache that downloads fill, <cache>/<name>: registry's datasets that have a download address
# (harness.data.locate.locate's target; a test checks they agree). An alias folder there (<cache>/fashion-mnist) is
# searched but never completed.
DOWNLOADED_DATASETS = ("fashion_mnist", "mnist", "cifar10")


def user_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/xfbench, or ~/.cache/xfbench where it is unset or relative (the XDG spec has a relative one
    ignored: a trial's folder would read it otherwise)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "")
    return (Path(base) if Path(base).is_absolute() else Path.home() / ".cache") / "xfbench"


def damaged_file_fix(path: Path, one_file: bool = False) -> str:
    """The fix for a dataset file at ``path`` that cannot be used as it is (truncated, corrupted, of another form),
    a sentence starting "To fix, ". "Delete it and download it again" held only in the cache's download folder:
    elsewhere no download comes, and the folder without the file was refused as partial (a root-owned file of the
    system root cannot even be deleted). ``one_file``: the file is the whole dataset (CIFAR-10's archive), so a folder
    without it holds none of the dataset, and the search goes on past it instead of refusing it as partial."""
    cache = user_cache_dir()
    folder = path.parent
    if folder.parent == cache and folder.name in DOWNLOADED_DATASETS:
        return (
            f"To fix, delete it and run xfbench again online (without --no-download): it downloads the missing file "
            f"into {folder}."
        )
    if one_file:
        return (
            f"To fix, replace it with an intact copy, point --data-dir at an intact copy, or delete {path.name} (or "
            f"move it away) to read the next copy the search finds or, online, download one into the user cache, "
            f"{cache}."
        )
    return (
        f"To fix, replace it with an intact copy (xfbench downloads only into the user cache, {cache}: deleting it "
        f"leaves {folder} a partial folder), point --data-dir at an intact copy, or move {folder} away to read the "
        "next copy the search finds or download one into the user cache."
    )
