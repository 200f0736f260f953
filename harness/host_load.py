"""How busy the machine's other processes kept its CPUs while a trial timed its epoch: an epoch time moved by other
work (another job on a shared machine, the run's own trials beside it) looks the same as one moved by slower code,
and only a figure recorded beside it tells them apart (harness.compare notes a case whose two runs differ in it).

Read from Linux's /proc/stat (the busy time since boot of the CPUs this process may run on, its affinity: in a
cpuset container or under taskset the host's other CPUs are someone else's, and their work does not slow the trial)
less the trial process's own CPU time; NaN where /proc/stat cannot be read (another system), so a row says "not
measured" rather than "idle".
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# /proc/stat's lines "cpu" (the machine) and "cpuN" (each CPU): user nice system idle iowait irq softirq steal guest
# guest_nice. Busy: all but idle and iowait (guest time is counted in user already).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


@dataclass(frozen=True)
class CpuClock:
    """The CPU clocks at one moment: the busy seconds of the CPUs this process may run on (NaN where unreadable),
    this process's own CPU seconds (every thread) and the wall clock."""

    busy_s: float
    own_s: float
    wall_s: float


def cpu_clock(stat: Path = PROC_STAT, cpus: frozenset[int] | None = None) -> CpuClock:
    """``cpus``: the CPUs whose busy time counts; by default this process's affinity."""
    mine = _affinity() if cpus is None else cpus
    return CpuClock(_busy_seconds(stat, mine), time.process_time(), time.perf_counter())


def other_cpus(start: CpuClock, end: CpuClock) -> float:
    """The CPUs other processes kept busy between ``start`` and ``end``, on average: 1.0 is one CPU's worth of other
    work all along. Never below 0 (the kernel counts in ticks of 10 ms, the process's own time finer). NaN where the
    machine's busy time could not be read, or no time passed."""
    wall = end.wall_s - start.wall_s
    if not wall > 0 or math.isnan(start.busy_s) or math.isnan(end.busy_s):
        return math.nan
    return max(0.0, ((end.busy_s - start.busy_s) - (end.own_s - start.own_s)) / wall)


def _busy_seconds(stat: Path, cpus: frozenset[int]) -> float:
    """The busy seconds of ``cpus`` (their "cpuN" lines); the machine's "cpu" line where no such line is listed."""
    try:
        lines = stat.read_text().splitlines()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return math.nan
    busy = {
        name: _busy_ticks(rest) for name, _, rest in (line.partition(" ") for line in lines if line.startswith("cpu"))
    }
    own = [busy.get(f"cpu{n}") for n in sorted(cpus)]
    if own and all(b is not None for b in own):
        return sum(b for b in own if b is not None) / ticks
    machine = busy.get("cpu")
    return math.nan if machine is None else machine / ticks


def _affinity() -> frozenset[int]:
    """This process's CPUs; none named (the machine's line counts) where the system cannot say."""
    getaffinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return frozenset(getaffinity(0)) if getaffinity else frozenset()


def _busy_ticks(fields_text: str) -> int | None:
    fields = fields_text.split()
    if len(fields) < 8 or not all(f.isdigit() for f in fields[:8]):
        return None
    return sum(int(fields[i]) for i in _BUSY_FIELDS)
