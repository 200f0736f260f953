"""Whether a server answers at HOST:PORT, asked before a client that retries for minutes is handed the address
(a Ray cluster's head for ``--address``, an MLflow tracking server for ``export --mlflow``)."""

from __future__ import annotations

import contextlib
import socket

# How long a check waits for the server to accept a connection.
CONNECT_TIMEOUT_S = 5.0
# HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): a gRPC server (Ray's GCS,
# Ray Client's server) answers with a SETTINGS frame of its own, type 0x4 in the fourth byte of its 9-byte header.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4


def connection_problem(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """Why no TCP connection to ``host``:``port`` opened within ``timeout_s``, in words; '' when one did."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except OSError as exc:
        return _unconnected(exc, host, timeout_s)


def _unconnected(exc: OSError, host: str, timeout_s: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"the host name {host!r} does not resolve"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return exc.strerror or str(exc) or type(exc).__name__


def grpc_problem(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """Why the server at ``host``:``port`` does not answer as a gRPC (HTTP/2) server within ``timeout_s``, in words;
    '' when it sends an HTTP/2 SETTINGS frame. Another server on the port (a web server, a database) accepts the TCP
    connection, and Ray's client then retried against it for minutes, deaf to Ctrl-C."""
    try:
        connection = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:  # no connection at all: worded as connection_problem words it
        return _unconnected(exc, host, timeout_s)
    try:
        with connection:
            connection.sendall(HTTP2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = connection.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
            if len(head) == 9 and head[3] == HTTP2_SETTINGS:
                return ""
            if head:  # the rest of its first line, to name what answers there
                connection.settimeout(0.5)
                with contextlib.suppress(OSError):
                    head += connection.recv(64)
    except TimeoutError:
        return f"it accepted the connection but sent nothing within {timeout_s:g} s"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    shown = (head.decode("latin-1").splitlines() or [""])[0][:40]  # its first line
    return f"it answered {shown!r}, not as a gRPC server" if shown else "it closed the connection without a word"


# The names Ray does not dial as given: it joins a cluster at this node's own routable address instead
# (ray._private.services.resolve_ip_for_localhost).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def dialled_host(host: str) -> str:
    """The host Ray connects to for ``host``: a loopback name is replaced by the address this node reaches others
    from (the source address of a UDP socket connected outward: no packet is sent), as Ray does; ``host`` where
    this node has no such address."""
    if host not in LOOPBACK_NAMES:
        return host
    try:  # IPv4 for ::1 too, as Ray's node address is found (from the perspective of 8.8.8.8)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("8.8.8.8", 80))
            return str(probe.getsockname()[0])
    except OSError:
        return host
