import re
import socket

import pytest

from harness.errors import InputError
from harness.preflight import check_cluster_address
from harness.reachable import connection_problem


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
        ("ray://127.0.0.1:1", "Expected a Ray cluster answering at --address ray://127.0.0.1:1"),
    ],
)
def test_a_cluster_address_is_checked_before_ray_is_handed_it(address, message):
    if message is None:
        check_cluster_address(address)
        return
    with pytest.raises(InputError, match=re.escape(message)):
        check_cluster_address(address)


def test_an_ipv6_address_is_parsed_and_tried():
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
        check_cluster_address(f"[::1]:{server.getsockname()[1]}")
