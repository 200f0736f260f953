"""The CPUs other processes kept busy while a trial timed its epoch (harness.host_load): read from Linux's
/proc/stat, less the trial process's own CPU time."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from harness.host_load import CpuClock, cpu_clock, other_cpus

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(path: Path, user: int, system: int, idle: int, iowait: int = 0, steal: int = 0) -> Path:
    """A /proc/stat as Linux writes it: the machine's line, then a line per CPU and the rest."""
    path.write_text(
        f"cpu  {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\n"
        f"cpu0 {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\nintr 1 2 3\nctxt 42\n"
    )
    return path


def test_other_processes_busy_time_is_the_machines_less_the_trials_own_over_the_wall_time(tmp_path):
    start = cpu_clock(_stat(tmp_path / "a", user=100 * TICKS, system=20 * TICKS, idle=500 * TICKS))
    # 3 s of wall time: the machine busy 4.5 CPU-seconds more (iowait and idle are not busy; steal is), 1.5 of them
    # the trial's own: 3 CPU-seconds of other work, one CPU's worth all along
    end = cpu_clock(_stat(tmp_path / "b", user=103 * TICKS, system=21 * TICKS, idle=510 * TICKS, iowait=9 * TICKS,
                          steal=TICKS // 2))  # fmt: skip
    assert end.busy_s - start.busy_s == pytest.approx(4.5)
    moved = CpuClock(end.busy_s, start.own_s + 1.5, start.wall_s + 3.0)
    assert other_cpus(start, moved) == pytest.approx(1.0)
    assert other_cpus(start, CpuClock(end.busy_s, start.own_s + 9.0, start.wall_s + 3.0)) == 0.0  # never below 0


def test_an_unreadable_or_foreign_stat_file_measures_nothing_rather_than_idle(tmp_path):
    (tmp_path / "odd").write_text("not a stat file\n")
    for stat in (tmp_path / "missing", tmp_path / "odd"):
        clock = cpu_clock(stat)
        assert math.isnan(clock.busy_s) and math.isnan(other_cpus(clock, cpu_clock(stat)))
    same = cpu_clock()
    assert math.isnan(other_cpus(same, same))  # no time passed


def test_only_the_cpus_this_process_may_run_on_count_so_a_pinned_jobs_other_cpus_are_not_other_work(tmp_path):
    """In a cpuset container or under taskset, the host's other CPUs are someone else's: their work is not what slows
    the trial. Each CPU's own line counts; the machine's line only where a CPU has none."""

    def stat(path: Path, cpu0_user: int, cpu1_user: int) -> Path:
        path.write_text(
            f"cpu  {cpu0_user + cpu1_user} 0 0 1000 0 0 0 0 0 0\n"
            f"cpu0 {cpu0_user} 0 0 500 0 0 0 0 0 0\ncpu1 {cpu1_user} 0 0 500 0 0 0 0 0 0\nctxt 42\n"
        )
        return path

    # CPU 1 busy 2 s (another job pinned there), CPU 0 idle but for nothing
    before, after = stat(tmp_path / "a", 0, 0), stat(tmp_path / "b", 0, 2 * TICKS)
    on_cpu0 = [cpu_clock(s, cpus=frozenset({0})) for s in (before, after)]
    assert on_cpu0[1].busy_s - on_cpu0[0].busy_s == 0.0
    on_both = [cpu_clock(s, cpus=frozenset({0, 1})) for s in (before, after)]
    assert on_both[1].busy_s - on_both[0].busy_s == pytest.approx(2.0)
    unlisted = [cpu_clock(s, cpus=frozenset({0, 7})) for s in (before, after)]  # a CPU without its line: the machine's
    assert unlisted[1].busy_s - unlisted[0].busy_s == pytest.approx(2.0)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="Linux's /proc/stat is not here")
def test_this_machines_own_clock_reads_other_work_as_a_finite_number_of_cpus():
    start = cpu_clock()
    time.sleep(0.05)
    others = other_cpus(start, cpu_clock())
    assert math.isfinite(others) and 0.0 <= others <= os.cpu_count()
