"""A real two-node Ray cluster on this machine: `ray start --head` plus a second `ray start --address` node."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.results import read_results

pytestmark = pytest.mark.ray

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    probe = (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def _stop(proc: subprocess.Popen) -> None:
    """`ray start --block` and every process it started share one session: end them together, and wait until the
    whole group is gone (not only its leader), so no raylet or GCS still winding down competes with later tests."""
    # SIGKILL at once: Ray's graceful exit on SIGTERM took ~6 s per node here, and nothing of the cluster is kept.
    for sig, wait in ((signal.SIGKILL, 10),):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader; the others are reparented and reaped by init
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    import ray._private.services as services

    ip = services.get_node_ip_address()  # Ray advertises this address even when told 127.0.0.1 (loopback is resolved)
    port = _free_port()
    address = f"{ip}:{port}"
    # The cluster's own token, given to every process that joins it: nothing depends on ~/.ray/auth_token.
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    logs = [open(tmp_path / name, "w") for name in ("head.log", "worker.log")]
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while _alive_nodes(address, env) < 1:
            assert head.poll() is None and time.monotonic() < deadline, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(1)
        worker = subprocess.Popen(
            [str(BIN / "ray"), "start", f"--address={address}", "--num-cpus=1", "--disable-usage-stats", "--block"],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        while _alive_nodes(address, env) < 2:
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(1)
        yield address, env
    finally:
        for proc in (worker, head):
            if proc is not None:
                _stop(proc)
        for log in logs:
            log.close()
        # `ray start` leaves its address for later ray.init() calls to find; xfbench never follows it
        # (address="local"), but nothing else should either once the cluster is gone.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip() == address:
            current.unlink()


# A user's model: the nodes were started without its folder on their path, as a cluster's nodes are, so its trials
# find the module only because the run ships it to them (Ray's runtime environment, harness.scheduler.ray_session).
USER_NET = """
from torch import nn


def make(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))
"""


def test_a_users_model_runs_across_two_nodes_and_every_row_comes_back_to_the_driver(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    results = tmp_path / "results"
    code = tmp_path / "user_code"
    code.mkdir()
    (code / "cluster_net.py").write_text(USER_NET)
    assert str(code) not in env.get("PYTHONPATH", "")
    cmd = [
        str(BIN / "xfbench"),
        "run",
        "--strategy",
        "scratch",
        "--model",
        "python:cluster_net:make",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--address",
        address,
        "--results-dir",
        str(results),
        "--run-id",
        "cluster",
    ]
    driver_env = {**env, "COLUMNS": "200", "PYTHONPATH": str(code)}  # the driver finds the module on its path
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=driver_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    frame = read_results(results / "cluster")
    assert frame["trial_id"].nunique() == 4 and len(frame) == 8 and set(frame["status"]) == {"ok"}, set(frame["error"])
    assert set(frame["params"]) == {64 * 16 + 16 + 16 * 10 + 10}
    info = json.loads((results / "cluster" / "run.json").read_text())
    cluster_nodes = {n["node"] for n in info["ray_nodes"]}
    assert len(cluster_nodes) == 2 and all(n["cpus"] == 1 for n in info["ray_nodes"])
    # one CPU per node and one per trial: trials ran on both nodes, and every node id is one of the cluster's
    assert set(frame["node"]) == cluster_nodes
    assert info["scheduler"]["address"] == address
    assert info["data_delivery"] == {
        "digits": "object store"
    }  # small data travels through the object store on a cluster
