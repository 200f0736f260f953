import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.errors import InputError
from harness.preflight import check_cluster_address
from harness.reachable import connection_problem, grpc_problem

# What a gRPC server sends first (checked against a real Ray head's GCS, docs/scheduling.md):
# an HTTP/2 SETTINGS frame, here of 24 payload bytes, as the GCS sent.
SETTINGS_FRAME = bytes([0, 0, 24, 4, 0, 0, 0, 0, 0]) + bytes(24)


@contextmanager
def _server(reply: bytes | None, host: str = "0.0.0.0", family: int = socket.AF_INET) -> Iterator[int]:
    """A server on a free port that answers every connection with ``reply`` (None: accepts, says nothing). On
    every interface, as a Ray head listens: --address 127.0.0.1:PORT is checked (and dialled by Ray) at this node's
    own address."""
    stop = threading.Event()
    with socket.create_server((host, 0), family=family, dualstack_ipv6=host == "::") as server:
        server.settimeout(0.1)

        def serve() -> None:
            held = []
            while not stop.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                held.append(connection)
                if reply is not None:
                    connection.sendall(reply)
            for connection in held:
                connection.close()

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            thread.join()


def test_a_listening_port_answers_and_a_closed_or_unknown_one_is_named():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert connection_problem("127.0.0.1", port) == ""
    assert connection_problem("127.0.0.1", port) == "Connection refused"  # nothing listens there any more
    assert connection_problem("no-such-host.invalid", 80) == "the host name 'no-such-host.invalid' does not resolve"


@pytest.mark.parametrize(
    "address, message",
    [
        ("auto", None),  # Ray finds the cluster; "local" never reaches this check (a local run: test_plan.py)
        ("http://10.0.0.5:8265", "a http:// URL (the dashboard's http:// address is not the cluster's)"),
        ("head-node", "Expected --address HOST:PORT of the cluster's head node"),
        ("head-node:６３７９", "Expected --address HOST:PORT"),  # digits, but not ASCII ones
        ("head-node:70000", "Expected --address HOST:PORT"),
        ("127.0.0.1:1", "Expected a Ray cluster answering at --address 127.0.0.1:1. Received: no connection"),
        # through Ray Client, Tune's controller runs on the cluster: the rows never reached the driver's writer
        ("ray://127.0.0.1:1", "Received: 'ray://127.0.0.1:1', a Ray Client address: through Ray Client, Tune runs"),
    ],
)
def test_a_cluster_address_is_checked_before_ray_is_handed_it(address, message):
    if message is None:
        check_cluster_address(address)
        return
    with pytest.raises(InputError, match=re.escape(message)):
        check_cluster_address(address)


def test_an_ipv6_address_is_parsed_and_tried():
    with _server(SETTINGS_FRAME, "::", socket.AF_INET6) as port:  # IPv6 and IPv4: Ray dials ::1 at the node's IPv4
        check_cluster_address(f"[::1]:{port}")


def test_a_port_that_another_server_holds_is_refused_before_ray_retries_against_it_for_minutes():
    """A web server on the port passed the connection check, and Ray then retried for minutes, deaf to Ctrl-C."""
    with _server(b"HTTP/1.0 400 Bad request\r\nServer: x\r\n\r\n") as port:
        with pytest.raises(
            InputError, match=re.escape("Received: a server that is not Ray's (it answered 'HTTP/1.0 400")
        ):
            check_cluster_address(f"127.0.0.1:{port}")
    with _server(b"<!DOCTYPE HTML>\n<html>\n") as port:  # python -m http.server's first bytes
        assert grpc_problem("127.0.0.1", port) == "it answered '<!DOCTYPE HTML>', not as a gRPC server"
    with _server(SETTINGS_FRAME) as port:
        check_cluster_address(f"127.0.0.1:{port}")
        assert grpc_problem("127.0.0.1", port) == ""
    with _server(None) as port:
        assert (
            grpc_problem("127.0.0.1", port, timeout_s=0.3) == "it accepted the connection but sent nothing within 0.3 s"
        )


def test_under_tls_the_second_check_is_skipped(monkeypatch):
    """A TLS cluster expects a handshake before HTTP/2: the plain preface would fail there, so it is not sent."""
    monkeypatch.setenv("RAY_USE_TLS", "1")
    with _server(None) as port:  # silent: the gRPC check would have waited and refused
        check_cluster_address(f"127.0.0.1:{port}")


def test_a_cluster_that_wants_a_token_this_process_lacks_exits_2_and_leaves_no_run_folder(tmp_path):
    """Ray 2.60's token authentication with no token here: a traceback and an empty run folder before."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(HOME=str(tmp_path), RAY_AUTH_MODE="token")  # no ~/.ray/auth_token in this home
    results = tmp_path / "results"
    with _server(SETTINGS_FRAME) as port:  # what the address check expects of Ray's GCS
        run = [sys.executable, "-m", "harness.cli", "run", "--strategy", "scratch", "--model", "mlp"]
        run += ["--dataset", "digits", "--backend", "torch", "--results-dir", str(results)]
        done = subprocess.run(
            [*run, "--address", f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("xfbench: error: Expected this process to hold the token of the Ray cluster at ")
    assert "Received: Ray refused it: Token authentication is enabled but no authentication token was found. " in (
        done.stderr
    )
    assert "To fix, copy the head node's ~/.ray/auth_token to this machine" in done.stderr  # the standard form
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert not results.exists() or not list(results.iterdir())


def test_a_join_refused_without_token_mode_is_told_of_token_authentication():
    """A cluster that wants a token refuses a driver without RAY_AUTH_MODE=token: Ray joins an explicit address
    without one, its calls come back "Unauthenticated", and ray.init raises a plain ConnectionError after about 20 s
    (measured against a real `ray start --head` with token authentication). The message said only "Start it"."""
    from harness.scheduler import unjoinable

    failed = ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379")
    plain = unjoinable("10.0.0.5:6379", failed, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x"})
    assert plain.startswith(
        "Expected a Ray cluster at --address 10.0.0.5:6379. Received: Ray could not join it: Failed to connect to Ray "
        "cluster at 10.0.0.5:6379. To fix, start it (`ray start --head` on the head node)"
    )
    # a port that answers gRPC but is not Ray's GCS (Ray Client's 10001 without ray://) fails as a plain connection
    # too, after about 20 s of Ray's "Method not found" log lines (measured by a review against an empty gRPC server)
    assert "Ray's log says \"Method not found\" where the port is another service's" in plain
    # with token mode on, Ray 2.60 refuses a wrong token as a failed connection too (ConnectionError, checked against
    # a real head with token authentication by a review, 2026-12-06): told to start a running cluster, the user
    # could not see that the token was wrong
    assert plain.endswith(
        "If it is running, it may have refused this process's token (Ray's log then says \"InvalidAuthToken\"): use "
        "the head node's token (copy its ~/.ray/auth_token to this machine, or set RAY_AUTH_TOKEN or "
        "RAY_AUTH_TOKEN_PATH to it)."
    ), plain
    hinted = unjoinable("10.0.0.5:6379", failed, {})
    assert hinted.split(" If it is running")[0] == plain.split(" If it is running")[0]
    assert "may use token authentication" in hinted
    # `auto`: Ray joins with the token where one exists, by itself; no advice on a mode it sets
    assert "token" not in unjoinable("auto", ConnectionError("Could not find any running Ray instance."), {})
    assert hinted.endswith(
        "join with RAY_AUTH_MODE=token and the head node's token (its ~/.ray/auth_token, or RAY_AUTH_TOKEN / "
        "RAY_AUTH_TOKEN_PATH), as docs/scheduling.md says."
    )


def test_a_local_run_under_ray_address_says_that_it_runs_on_this_machine():
    """`ray job submit` sets RAY_ADDRESS for its driver, and Ray's scripts join that cluster: xfbench, which joins
    only --address, started its own Ray on the head node, on that node's CPUs alone, without a word."""
    from harness.scheduler import ignored_ray_address

    for unset in ({}, {"RAY_ADDRESS": " "}, {"RAY_ADDRESS": "local"}):  # Ray's "local": what the run does anyway
        assert ignored_ray_address(unset) is None
    said = ignored_ray_address({"RAY_ADDRESS": "10.0.0.5:6379"})
    assert said == (
        "xfbench: warning: RAY_ADDRESS=10.0.0.5:6379 is set, but xfbench joins a Ray cluster only when given its "
        "address (xfbench's --address, the pytest plugin's --ray-address): this run starts its own Ray on this "
        "machine. To run on that cluster, give 10.0.0.5:6379."
    )
    # Ray Jobs' docs export the dashboard's http:// address, which --address refuses: not advised as the option's value
    jobs = ignored_ray_address({"RAY_ADDRESS": "http://127.0.0.1:8265"})
    assert jobs is not None and jobs.endswith("give the head node's HOST:PORT (its GCS, port 6379 by default).")


def test_the_ray_address_warning_is_printed_where_a_run_starts_its_own_ray(monkeypatch, capsys, tmp_path):
    """The warning reaches the user from where a local run starts Ray (ray.init stood in for: no Ray starts)."""
    import ray

    from harness.scheduler import SchedulerSettings, _init, warn_on_stderr

    started = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.append(kwargs["address"]))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    _init(SchedulerSettings(storage_dir=tmp_path), {}, {}, warn_on_stderr)
    assert started == ["local"] and "RAY_ADDRESS=10.0.0.5:6379 is set" in capsys.readouterr().err


def test_a_runs_warnings_go_where_its_progress_goes(monkeypatch, capsys, tmp_path):
    """Under pytest, the run's stderr is captured in the first case's set-up and shown only if that case fails: the
    RAY_ADDRESS warning never showed in a passing session, and a cluster session waiting for a node that never
    comes hung with nothing on the terminal. The run's warnings now go to its progress (the plugin's lines, written
    past the capture); stood in for: ray.init and the cluster's nodes."""
    import ray

    from harness.config import TrialConfig
    from harness.plan import RunPlan
    from harness.runner import _ray_for
    from harness.scheduler import SchedulerSettings
    from harness.trial_lines import TrialLines

    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr("harness.scheduler.cluster_nodes", lambda: [{"address": "n", "cpus": 2.0, "gpus": 0.0}])
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    lines: list[str] = []
    plan = RunPlan.of_trials([TrialConfig("scratch", "mlp", "digits", "torch", seed=0, epochs=1)])
    with _ray_for(plan, SchedulerSettings(storage_dir=tmp_path), warn=TrialLines(lines.append).warn):
        pass
    assert len(lines) == 1 and lines[0].startswith("xfbench: warning: RAY_ADDRESS=10.0.0.5:6379 is set"), lines
    assert capsys.readouterr().err == ""


def test_a_cluster_without_a_node_for_a_trial_is_told_that_without_an_autoscaler_the_trials_never_start(
    monkeypatch, capsys, tmp_path
):
    """A GPU request on a cluster of CPU nodes waited forever, the warning saying only that an autoscaler may add a
    node, and the progress line saying "starting Ray…" long after Ray had started."""
    from harness.scheduler import SchedulerSettings, check_a_node_fits

    node = {"address": "10.0.0.5", "cpus": 1.0, "gpus": 0.0}
    monkeypatch.setattr("harness.scheduler.cluster_nodes", lambda: [node])
    settings = SchedulerSettings(storage_dir=tmp_path, address="10.0.0.5:6379", cpus_per_trial=1, gpus_per_trial=1.0)
    check_a_node_fits(settings)
    said = capsys.readouterr().err
    assert (
        "no node of the cluster at 10.0.0.5:6379 offers 1 CPU(s) and 1 GPU(s) for a trial yet (10.0.0.5: 1 CPUs" in said
    )
    # the command of a resume, not a bare --resume: the pytest plugin prints this warning too, and pytest has none
    assert (
        "without one they never start (Ctrl-C stops the run; a resume with a --cpus-per-trial and --gpus-per-trial "
        "that a node offers finishes it: `xfbench run --resume RUN_ID`, or `xfbench tune --resume RUN_ID` for a tune"
    ) in said, said
