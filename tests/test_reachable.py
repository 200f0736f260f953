import socket

from harness.reachable import connection_problem


def test_a_listening_port_answers_and_a_closed_or_unknown_one_is_named():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert connection_problem("127.0.0.1", port) == ""
    assert connection_problem("127.0.0.1", port) == "Connection refused"  # nothing listens there any more
    assert connection_problem("no-such-host.invalid", 80) == "the host name 'no-such-host.invalid' does not resolve"
