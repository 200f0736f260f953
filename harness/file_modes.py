"""The mode of the files xfbench writes under a temporary name and moves into place (caches, downloads).

``tempfile`` makes such files 0600 whatever the umask: in a results folder or data cache shared between users (or
cluster nodes running as other users) the entry would exist, so the work is skipped as done, yet could not be read.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the umask, as the user set it for what this run writes."""
    return 0o666 & ~current_umask()


def current_umask(status: Path = Path("/proc/self/status")) -> int:
    """The process's umask, read from Linux's ``status`` (4.7 and later) where it is there. Python can only read
    it by setting another one (os.umask) and back, which for that moment holds for every thread of the process:
    a file another thread creates then would get the wrong mode."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split(":", 1)[1].strip(), 8)
    except (OSError, ValueError):
        pass  # not Linux, or an older kernel: the os.umask round trip below
    mask = os.umask(0o077)  # the mask set for that moment errs on the private side
    os.umask(mask)
    return mask
