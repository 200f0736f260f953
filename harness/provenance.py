"""Where and with what a measurement was taken: host, CPU, Python, git commit."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class MachineInfo:
    host: str
    cpu: str
    python_version: str

    @classmethod
    def current(cls) -> MachineInfo:
        return cls(host=socket.gethostname(), cpu=cpu_model(), python_version=platform.python_version())

    @classmethod
    def unknown(cls) -> MachineInfo:
        """For a row the driver writes about a worker that died: which machine ran it is not known there."""
        return cls(host="", cpu="", python_version="")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (taskset, a Slurm or container cpuset, many CI runners), not
    the machine's count, which os.cpu_count() gives. Local Ray is started with this many, so concurrent trials never
    share a core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def git_commit(cwd: Path | None = None) -> str:
    """The checked-out commit (with '+dirty' for uncommitted changes), or 'unknown' outside a repository."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def short_commit(recorded: object) -> str:
    """A recorded ``git_commit`` as tables show it: 12 hex digits, and '+dirty' kept (the run's code was not the
    commit's; cut at 12 characters, the mark was lost)."""
    text = str(recorded or "")
    commit, dirty, _ = text.partition("+dirty")
    return commit[:12] + dirty


def utc_now(timespec: str = "seconds") -> str:
    """The UTC time in ISO 8601, to ``timespec`` (rows take milliseconds: epochs of a small model end within one
    second, and MLflow orders a metric's points by their timestamps)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
