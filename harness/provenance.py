"""Where and with what a measurement was taken: host, CPU, Python, git commit."""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Where Linux mounts the cgroup files; inside a Docker or Kubernetes container, the container's own cgroup is what
# is seen there (so its CPU quota is)
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MachineInfo:
    host: str
    cpu: str
    python_version: str

    @classmethod
    def current(cls) -> MachineInfo:
        return cls(host=host_name(), cpu=cpu_model(), python_version=platform.python_version())

    @classmethod
    def unknown(cls) -> MachineInfo:
        """For a row the driver writes about a worker that died: which machine ran it is not known there."""
        return cls(host="", cpu="", python_version="")


def host_name() -> str:
    """This machine's name, as run.json records the driver's (MachineInfo.host, DriverProcess.host)."""
    return socket.gethostname()


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on: its affinity (taskset, a Slurm or container cpuset, many CI runners), not
    the machine's count, which os.cpu_count() gives, and no more than a container's CPU quota allows (docker
    --cpus, Kubernetes CPU limits), which leaves the affinity at every core of the host. Local Ray is started with
    this many, so concurrent trials never share a core. ``cgroup_root``: where the cgroup files are (tests)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    return max(1, min(affinity, quota)) if quota is not None else max(1, affinity)


def cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """The cores a CPU quota grants, rounded up (--cpus=1.5 lets two threads run, each part of the time), or None
    when none is set: cgroup v2's ``cpu.max`` ("QUOTA PERIOD", "max PERIOD": none), else cgroup v1's
    ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1: none)."""
    v2 = _read_fields(cgroup_root / "cpu.max")
    if v2:
        return _quota_cores(v2[0], v2[1] if len(v2) > 1 else "")
    for controller in ("cpu", "cpu,cpuacct"):  # v1 mounts it under either name (one is often a link to the other)
        quota = _read_fields(cgroup_root / controller / "cpu.cfs_quota_us")
        period = _read_fields(cgroup_root / controller / "cpu.cfs_period_us")
        if quota and period:
            return _quota_cores(quota[0], period[0])
    return None


def _read_fields(path: Path) -> list[str]:
    """The whitespace-separated fields of a cgroup file; none when it is absent or unreadable (no cgroup there,
    another platform): then no quota is known, and the affinity alone counts."""
    try:
        return path.read_text().split()
    except OSError:
        return []


def _quota_cores(quota: str, period: str) -> int | None:
    # A value the kernel does not write ("max", -1, anything not a positive integer) is no quota: a miscount here
    # must not stop a run, and the affinity is still a limit
    if not (quota.isdigit() and period.isdigit()) or int(quota) <= 0 or int(period) <= 0:
        return None
    return max(1, math.ceil(int(quota) / int(period)))


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
