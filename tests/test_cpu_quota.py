"""The CPUs a local run uses: the process's affinity, capped by a container's CPU quota (docker --cpus on a
32-core host must not start Ray with 32 CPUs). Cgroup files are written under tmp_path, for v2, v1, none and
an unlimited quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness.preflight as preflight
from harness.errors import InputError
from harness.plan import ExecutionOptions
from harness.provenance import cpu_quota, usable_cpus


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text + "\n")
    return root


def _v1(root: Path, quota: str, period: str = "100000", controller: str = "cpu") -> Path:
    (root / controller).mkdir(parents=True)
    (root / controller / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / controller / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.fixture
def affinity(monkeypatch) -> int:
    """Pretend the process may run on 32 cores, the host of the docker --cpus=2 case."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    return 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [("200000 100000", 2), ("150000 100000", 1), ("50000 100000", 1), ("max 100000", None), ("", None)],
)
def test_cgroup_v2_quota_is_read_as_whole_cores_rounded_down_to_at_least_one(tmp_path, text, expected):
    assert cpu_quota(_v2(tmp_path, text)) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"), [("200000", "100000", 2), ("250000", "100000", 2), ("-1", "100000", None)]
)
def test_cgroup_v1_quota_is_read_and_minus_one_is_none(tmp_path, quota, period, expected):
    assert cpu_quota(_v1(tmp_path, quota, period)) == expected
    assert cpu_quota(_v1(tmp_path / "merged", quota, period, controller="cpu,cpuacct")) == expected


def test_a_quota_caps_the_affinity(tmp_path, affinity):
    assert usable_cpus(_v2(tmp_path / "v2", "200000 100000")) == 2
    assert usable_cpus(_v1(tmp_path / "v1", "200000")) == 2
    assert usable_cpus(_v2(tmp_path / "fraction", "10000 100000")) == 1  # a tenth of a core is still one thread


def test_no_quota_leaves_the_affinity(tmp_path, affinity):
    assert usable_cpus(_v2(tmp_path / "v2", "max 100000")) == affinity
    assert usable_cpus(_v1(tmp_path / "v1", "-1")) == affinity
    assert usable_cpus(tmp_path / "absent") == affinity  # no cgroup files: another platform, or none mounted
    assert usable_cpus(_v2(tmp_path / "big", "6400000 100000")) == affinity  # a quota above the cpuset


def test_an_unreadable_or_odd_cgroup_file_is_no_quota(tmp_path, affinity):
    (tmp_path / "dir" / "cpu.max").mkdir(parents=True)  # read_text raises IsADirectoryError, an OSError
    assert usable_cpus(tmp_path / "dir") == affinity
    assert usable_cpus(_v2(tmp_path / "zero", "0 100000")) == affinity
    assert usable_cpus(_v1(tmp_path / "nan", "abc", "100000")) == affinity


def test_this_machine_gets_a_positive_int():
    cpus = usable_cpus()
    assert isinstance(cpus, int) and cpus >= 1


def test_cpus_per_trial_over_the_quota_is_refused_naming_the_quota(tmp_path, affinity, monkeypatch):
    root = _v2(tmp_path, "200000 100000")
    monkeypatch.setattr(preflight, "usable_cpus", lambda: usable_cpus(root))
    assert preflight.check_execution(ExecutionOptions(cpus_per_trial=2)).cpus_per_trial == 2
    with pytest.raises(InputError, match=r"<= the 2 CPUs.*CPU quota.*Received: 3"):
        preflight.check_execution(ExecutionOptions(cpus_per_trial=3))


def test_a_quota_on_the_processs_own_cgroup_or_one_above_it_is_found(tmp_path, affinity):
    """Only the root's cpu.max was read: a quota on a nested cgroup (a systemd unit with CPUQuota, a container run
    with the host's cgroup namespace) left Ray every core, and concurrent trials oversubscribed the quota."""
    v2 = tmp_path / "v2"
    _v2(v2, "max 100000")
    _v2(v2 / "system.slice", "300000 100000")
    _v2(v2 / "system.slice" / "job.service", "200000 100000")
    membership = tmp_path / "cgroup-v2"
    membership.write_text("0::/system.slice/job.service\n")
    assert usable_cpus(v2, membership) == 2
    _v2(v2 / "system.slice", "100000 100000")  # a tighter one above it: the smallest counts
    assert cpu_quota(v2, membership) == 1
    membership.write_text("0::/user.slice/other.scope\n")  # a path without files of its own: the root's
    assert cpu_quota(v2, membership) is None
    v1 = tmp_path / "v1"
    _v1(v1, "-1", controller="cpu,cpuacct")
    nested = v1 / "cpu,cpuacct" / "docker" / "abc"
    nested.mkdir(parents=True)
    (nested / "cpu.cfs_quota_us").write_text("150000\n")
    (nested / "cpu.cfs_period_us").write_text("100000\n")
    membership.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert usable_cpus(v1, membership) == 1  # 1.5 cores: one trial at a time, not two throttled
    assert usable_cpus(v1, tmp_path / "no-such-file") == affinity  # membership unknown: the root's (none)
