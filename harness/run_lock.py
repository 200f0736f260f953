"""One driver per run directory: an exclusive lock on the directory itself, held for as long as a process drives
the run (a new run from before its emptiness check, a resume from before it reads run.json). run.json records its
driver only once Ray is up, seconds later; two processes started in that window (the same ``--run-id`` in two CI
jobs, two ``--resume`` of one run) each passed every check and mixed their trials' rows in one results table.

An ``flock`` on the directory's descriptor: the kernel drops it when the process ends, however it ends (SIGKILL
too), so no stale lock is ever left behind, and the directory holds no lock file a run would have to skip. The
descriptor is not inherited by the processes the driver starts (Python opens it non-inheritable), so Ray's
processes cannot keep a run locked after its driver ended. Local to one machine: two drivers on two hosts sharing
a results folder over NFS are not kept apart. Whether the driver run.json records still runs is told here too,
without Ray or a framework: a resume refuses such a run, and a report of it says it is still running."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from harness.errors import InputError
from harness.plan import DriverProcess
from harness.provenance import host_name


class RunBeingDriven(InputError):
    """Another process drives this run directory now."""


@contextlib.contextmanager
def driving(run_dir: Path, doing: str, fix: str | None = None) -> Iterator[None]:
    """Hold ``run_dir`` (which must exist) for this process while the block runs; RunBeingDriven at once if another
    process holds it. ``doing``: what this process came to do, for the refusal ("start a new run", "resume");
    ``fix``: the refusal's advice, where a run's or resume's does not fit."""
    descriptor = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fix = fix or (
                "To fix, wait for it to end, then resume again if the run still has trials to finish."
                if doing == "resume"
                else "To fix, wait for it to end, or pick another --run-id; to finish the run it starts, --resume it "
                "once it has stopped."
            )
            raise RunBeingDriven(
                f"Expected no other xfbench process to drive {run_dir.name!r} while this one would {doing} in it. "
                f"Received: another process on this machine holds {run_dir} now (a run or resume of the same id, "
                f"started moments before this one). {fix}"
            ) from None
        yield
    finally:
        os.close(descriptor)  # releases the lock


def process_start(pid: int) -> str | None:
    """Process ``pid``'s start time in clock ticks since boot (field 22 of Linux's /proc/PID/stat, counted after
    the command name, which may hold spaces), or None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_after_name = stat.rpartition(")")[2].split()
    return fields_after_name[19] if len(fields_after_name) > 19 else None


def driver_alive(driver: DriverProcess | None) -> bool:
    """The recorded driver still runs: on this host, its pid alive and, where /proc tells, started when it was
    (not a later process given the pid). Unknown (an older run.json, another host) or this very process: no."""
    if driver is None or driver.pid == os.getpid() or driver.host != host_name():
        return False
    try:
        os.kill(driver.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = process_start(driver.pid)
    return driver.start is None or now is None or now == driver.start
