"""Where and with what a measurement was taken: host, CPU, Python, git commit, the framework's environment variables."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Where Linux mounts the cgroup files; inside a Docker or Kubernetes container, the container's own cgroup is what
# is seen there (so its CPU quota is)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The process's own cgroup under that root, per hierarchy ("0::/PATH" for v2, "N:cpu,cpuacct:/PATH" for v1): a
# systemd unit's or a container's quota sits on that path, not at the root, when the root is the host's
SELF_CGROUP = Path("/proc/self/cgroup")


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


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, membership: Path = SELF_CGROUP) -> int:
    """The CPUs this process may run on: its affinity (taskset, a Slurm or container cpuset, many CI runners), not
    the machine's count, which os.cpu_count() gives, and no more than a container's CPU quota allows (docker
    --cpus, Kubernetes CPU limits), which leaves the affinity at every core of the host. Local Ray is started with
    this many, so concurrent trials never share a core. ``cgroup_root``, ``membership``: where the cgroup files
    and the process's cgroup are (tests)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, membership)
    return max(1, min(affinity, quota)) if quota is not None else max(1, affinity)


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, membership: Path = SELF_CGROUP) -> int | None:
    """The whole cores a CPU quota grants, rounded down (--cpus=1.5: one, at least one), or None
    when none is set: cgroup v2's ``cpu.max`` ("QUOTA PERIOD", "max PERIOD": none), else cgroup v1's
    ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1: none). Read in the process's own cgroup and each one above
    it up to the root, the smallest counting: a quota set on a nested cgroup (``systemd-run -p CPUQuota=200%``, a
    container run with the host's cgroup namespace) was missed when only the root was read."""
    own = _own_cgroups(membership)
    v2 = [_read_fields(d / "cpu.max") for d in _up_to_root(cgroup_root, own.get("", "/"))]
    if any(v2):
        return _smallest(_quota_cores(f[0], f[1] if len(f) > 1 else "") for f in v2 if f)
    for controller in ("cpu", "cpu,cpuacct"):  # v1 mounts it under either name (one is often a link to the other)
        limits = []
        for folder in _up_to_root(cgroup_root / controller, own.get("cpu", "/")):
            quota, period = _read_fields(folder / "cpu.cfs_quota_us"), _read_fields(folder / "cpu.cfs_period_us")
            if quota and period:
                limits.append(_quota_cores(quota[0], period[0]))
        if limits:
            return _smallest(limits)
    return None


def _own_cgroups(membership: Path) -> dict[str, str]:
    """The process's cgroup path per hierarchy: "" for v2's unified one, "cpu" for v1's holding the cpu controller;
    none when the file is absent or unreadable (the root alone is read then)."""
    paths: dict[str, str] = {}
    for line in _read_lines(membership):
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            paths[""] = path
        elif "cpu" in controllers.split(","):
            paths["cpu"] = path
    return paths


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _up_to_root(root: Path, path: str) -> list[Path]:
    """``root``/``path`` and each folder above it up to ``root`` itself (a path that climbs out is the root's)."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _smallest(quotas: Iterable[int | None]) -> int | None:
    given = [q for q in quotas if q is not None]
    return min(given) if given else None


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
    # whole cores rounded down: two trials under --cpus=1.5 ran throttled a third of the time, their epochs timed
    # that much longer, where one trial at a time runs on a core of its own
    return max(1, int(quota) // int(period))


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


def framework_variables(backend: str) -> tuple[str, ...]:
    """The environment variables that change what ``backend``'s trials run, read from its capabilities module
    (no framework import)."""
    from harness.backend import declarations  # harness.backend reads nothing of this module; kept lazy

    return tuple(sorted(declarations(backend).framework_env))


def framework_env(backend: str, environ: Mapping[str, str] = os.environ) -> str:
    """``backend``'s variables that ``environ`` sets, as the results' framework_env column holds them:
    "NAME=value; ..." by name, "" when none is set (an empty value changes nothing and is left out)."""
    return "; ".join(f"{name}={environ[name]}" for name in framework_variables(backend) if environ.get(name))
