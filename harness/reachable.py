"""Whether a server answers at HOST:PORT, asked before a client that retries for minutes is handed the address
(a Ray cluster's head for ``--address``, an MLflow tracking server for ``export --mlflow``)."""

from __future__ import annotations

import socket

# How long a check waits for the server to accept a connection.
CONNECT_TIMEOUT_S = 5.0


def connection_problem(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """Why no TCP connection to ``host``:``port`` opened within ``timeout_s``, in words; '' when one did."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except socket.gaierror:
        return f"the host name {host!r} does not resolve"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
