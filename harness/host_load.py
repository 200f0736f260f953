"""How busy the machine's other processes kept its CPUs while a trial timed its epoch: an epoch time moved by other
work (another job on a shared machine, the run's own trials beside it) looks the same as one moved by slower code,
and only a figure recorded beside it tells them apart (harness.compare notes a case whose two runs differ in it).

Read from Linux's /proc/stat (the CPUs' busy time since boot) less the trial process's own CPU time; NaN where
/proc/stat cannot be read (another system), so a row says "not measured" rather than "idle".
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice. Busy: all but idle
# and iowait (guest time is counted in user already).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


@dataclass(frozen=True)
class CpuClock:
    """The CPU clocks at one moment: the machine's busy seconds (all CPUs, NaN where unreadable), this process's own
    CPU seconds (every thread) and the wall clock."""

    busy_s: float
    own_s: float
    wall_s: float


def cpu_clock(stat: Path = PROC_STAT) -> CpuClock:
    return CpuClock(_busy_seconds(stat), time.process_time(), time.perf_counter())


def other_cpus(start: CpuClock, end: CpuClock) -> float:
    """The CPUs other processes kept busy between ``start`` and ``end``, on average: 1.0 is one CPU's worth of other
    work all along. Never below 0 (the kernel counts in ticks of 10 ms, the process's own time finer). NaN where the
    machine's busy time could not be read, or no time passed."""
    wall = end.wall_s - start.wall_s
    if not wall > 0 or math.isnan(start.busy_s) or math.isnan(end.busy_s):
        return math.nan
    return max(0.0, ((end.busy_s - start.busy_s) - (end.own_s - start.own_s)) / wall)


def _busy_seconds(stat: Path) -> float:
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return math.nan
    if len(fields) < 9 or fields[0] != "cpu" or not all(f.isdigit() for f in fields[1:9]):
        return math.nan
    values = [int(f) for f in fields[1:9]]
    return sum(values[i] for i in _BUSY_FIELDS) / ticks
