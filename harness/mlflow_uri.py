"""The --mlflow tracking URI: checked before MLflow is asked to use it, since MLflow retries a store it cannot reach
for minutes and reports some mistakes as tracebacks; and the client made from it."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.reachable import connection_problem
from harness.user_files import unwritable_reason

# How long a tracking server may take to answer its health check
ANSWER_TIMEOUT_S = 5.0
SQLITE_FIX = (
    "To fix, give a database file in a folder you can write, e.g. sqlite:///mlflow.db (sqlite:////abs/path.db)."
)


def normalised_uri(uri: str) -> str:
    """``uri`` with its scheme in lower case, as URIs allow and SQLAlchemy needs (SQLITE:/// found no dialect)."""
    scheme, sep, rest = uri.partition(":")
    plain = sep and scheme and all(c.isalnum() or c in "+-." for c in scheme) and not os.path.exists(uri)
    return f"{scheme.lower()}:{rest}" if plain else uri


def _sqlite_part(uri: str) -> str | None:
    """What follows ``sqlite:`` (or a driver's ``sqlite+NAME:``), its query cut off; None for another store."""
    scheme, sep, rest = uri.partition(":")
    if not sep or not (scheme == "sqlite" or scheme.startswith("sqlite+")):
        return None
    return rest.split("?", 1)[0]


def sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite tracking URI (``sqlite:///x.db`` is relative to the working directory,
    ``sqlite:////abs/x.db`` absolute; a driver and a query allowed); None for any other store."""
    part = _sqlite_part(uri)
    if part is None or not part.startswith("///") or part[3:].startswith(":memory:") or not part[3:]:
        return None
    # percent-decoded as SQLAlchemy decodes it: sqlite:////my%20dir/m.db is a file in "my dir"
    return Path(urllib.parse.unquote(part[3:])).resolve()


def check_tracking_uri(uri: str) -> None:
    """What can be known of ``uri`` before MLflow is asked to use it."""
    _check_splittable(uri)
    _check_server(uri)
    _check_database_server(uri)
    _check_sqlite_store(uri)


def _check_splittable(uri: str) -> None:
    """A URI urllib cannot split (an unclosed IPv6 bracket, a port that is no number) ended the export in a
    ValueError traceback. Its password, if any, is masked by hand: without_password needs the split."""
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 - read for its check: a port that is no number raises here
    except ValueError:  # urllib's text quotes what it took for the port: a password's start, where one held a /
        raise InputError(
            f"Expected --mlflow as a URI (http://HOST:PORT, sqlite:///FILE.db, postgresql://USER@HOST/DB, a "
            f"folder). Received: {_masked_by_hand(uri)!r}, which urllib cannot read as one. To fix, correct it: a "
            "password holding / # ? @ or : goes percent-encoded (urllib.parse.quote(password, safe='')), an IPv6 host "
            "in brackets before the port (http://[::1]:5000), and a port is a number."
        ) from None


def _masked_by_hand(uri: str) -> str:
    """``uri`` with everything between its scheme's // and its last @ hidden (a user and password, a token as the
    user name; a password may hold / and @ where it is not percent-encoded) and secret query values hidden."""
    shown = re.sub(r"//.*@", "//***@", uri, count=1)
    secrets = "|".join(sorted(_SECRET_QUERY_KEYS))
    return re.sub(rf"(?i)\b({secrets})=[^&#]*", r"\1=***", shown)


# The database servers MLflow's SQL store speaks to (SQLAlchemy's dialects, a driver after '+'), by default port
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def database_server(uri: str) -> bool:
    """Whether ``uri`` is a database server's store (PostgreSQL, MySQL, SQL Server), whose experiments MLflow gives
    ./mlruns under the working directory as their artefact root where none is given."""
    return urllib.parse.urlsplit(uri).scheme.partition("+")[0] in _DATABASE_PORTS


def _check_database_server(uri: str) -> None:
    """A database server's URI must take a connection: MLflow retried one that refused for about 100 s, printing a
    retry warning each time, and one that never answers for longer."""
    parts = urllib.parse.urlsplit(uri)
    dialect = parts.scheme.partition("+")[0]
    default = _DATABASE_PORTS.get(dialect)
    if default is None or not parts.hostname or not _certainly_tcp(parts, dialect):
        return  # a socket, a DSN or a named instance, which the driver finds its own way: MLflow's to judge
    if _driver_missing(uri):  # said first, by the client: a server found would still need it
        return
    try:
        port = parts.port or default
    except ValueError:
        raise InputError(
            f"Expected --mlflow {parts.scheme}://USER:PASSWORD@HOST[:PORT]/DATABASE with a port 1..65535. Received: "
            f"{_without_password(parts)}. To fix, give the database server's port (default {default})."
        ) from None
    refused = connection_problem(parts.hostname, port)
    if refused:
        raise InputError(
            f"Expected a database server taking connections at {parts.hostname}:{port} for --mlflow "
            f"{_without_password(parts)}. Received: no connection ({refused}). To fix, start it, or give its "
            "address, or a file store such as sqlite:///mlflow.db."
        )


def _certainly_tcp(parts: urllib.parse.SplitResult, dialect: str) -> bool:
    """Whether the driver reaches the database over TCP at the URI's host and port: not through a Unix socket
    (unix_socket=, PostgreSQL's host=/path, MySQL's localhost), an ODBC DSN or connection string, or an SQL Server
    named instance (HOST\\NAME, or no port: its browser service says which)."""
    query = urllib.parse.parse_qs(parts.query)
    if {"unix_socket", "odbc_connect"} & set(query) or any(h.startswith("/") for h in query.get("host", [])):
        return False
    if dialect == "mysql" and parts.hostname == "localhost":
        return False
    if dialect == "mssql" and ("\\" in parts.netloc or "%5c" in parts.netloc.lower() or not _explicit_port(parts)):
        return False
    return True


def _explicit_port(parts: urllib.parse.SplitResult) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return True  # a bad one: refused by the caller, saying so


def _driver_missing(uri: str) -> bool:
    """Whether the Python driver of a database URI's dialect cannot be imported (SQLAlchemy's own lookup)."""
    try:
        from sqlalchemy.engine import make_url

        make_url(uri).get_dialect().import_dbapi()
    except ImportError:
        return True
    except Exception:  # a URI SQLAlchemy cannot read: MLflow's client says what is wrong with it
        return False
    return False


def _without_password(parts: urllib.parse.SplitResult) -> str:
    """The URI as a message may show it: a password in it replaced by ***."""
    return without_password(parts.geturl(), parts.geturl())


def without_password(text: str, uri: str) -> str:
    """``text`` with the credentials in ``uri`` replaced by *** wherever the URI's form of them appears (its
    password: scheme://user:PASSWORD@host; an http(s) user name alone, a token's place; a password or token in
    its query): xfbench's messages and the store's own, which quote the URI, end up in CI logs."""
    try:
        parts = urllib.parse.urlsplit(uri)
        password, user = parts.password, parts.username
    except ValueError:  # a URI urllib cannot split (a bad port) has no password it can find either
        return text
    if password:
        text = text.replace(f":{password}@", ":***@")
    elif user and parts.scheme in ("http", "https"):  # https://TOKEN@host: a token as the user name
        text = text.replace(f"//{user}@", "//***@")
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=False):
        if key.lower() in _SECRET_QUERY_KEYS:  # postgresql://u@host/db?password=...: libpq's and SQLAlchemy's
            text = text.replace(f"{key}={urllib.parse.quote(value, safe='')}", f"{key}=***")
            text = text.replace(f"{key}={value}", f"{key}=***")
    return text


_SECRET_QUERY_KEYS = frozenset({"password", "pwd", "passwd", "token", "access_token", "secret", "api_key"})


def _check_server(uri: str) -> None:
    """A tracking server's URI must answer before the client is made: MLflow retries a request for minutes."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    example = f"e.g. {parts.scheme}://localhost:5000 for `mlflow server` on this machine"
    if not parts.hostname:
        raise InputError(
            f"Expected --mlflow {parts.scheme}://HOST[:PORT]. Received: {uri!r}, no host. To fix, give one, {example}."
        )
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
        return  # MLflow's requests go through the proxy, which may reach what this machine cannot
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number, or out of range
        raise InputError(
            f"Expected --mlflow {parts.scheme}://HOST[:PORT] with a port 1..65535. Received: {uri!r}. To fix, give "
            f"one, {example}."
        ) from None
    refused = connection_problem(parts.hostname, port)
    why = f"no connection ({refused})" if refused else _answer_problem(uri)
    if why:
        raise InputError(
            f"Expected an MLflow tracking server answering at --mlflow {uri}. Received: {why}. To fix, start it "
            "(`mlflow server`), or give its address, or a file store such as sqlite:///mlflow.db."
        )


def _answer_problem(uri: str) -> str | None:
    """Why the server that accepted a connection does not answer an HTTP request in time (a process that accepts and
    never replies held the export for minutes); None when it answers, whatever it says."""
    silent = f"a connection, but no answer to GET /health within {ANSWER_TIMEOUT_S:g} s"
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=ANSWER_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # it answered: what it makes of MLflow's requests, MLflow's own errors say
    except urllib.error.URLError as exc:  # a timeout means silence; a certificate this check does not trust (MLflow
        # may: MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH) or a reset is MLflow's to judge
        return silent if isinstance(exc.reason, TimeoutError) else None
    except TimeoutError:  # while reading the answer
        return silent
    except OSError:
        return None
    return None


def _check_sqlite_store(uri: str) -> None:
    """A SQLite store's file must be one SQLite can open or create: MLflow retries a folder or an unwritable place
    for about 100 s, and a file that is not a database fails with a traceback."""
    part = _sqlite_part(uri)
    if part is None:
        return
    if not part.strip("/") or part[3:].startswith(":memory:"):
        raise InputError(
            f"Expected --mlflow sqlite:///FILE, a database file that outlives the export. Received: {uri!r}, an "
            "in-memory database gone when xfbench exits. To fix, give e.g. sqlite:///mlflow.db."
        )
    path = sqlite_file(uri)
    if path is None:
        raise InputError(f"Expected --mlflow sqlite:///FILE. Received: {uri!r}. {SQLITE_FIX}")
    if path.is_dir():
        raise InputError(f"Expected --mlflow {uri} to name a SQLite file. Received: {path} is a folder. {SQLITE_FIX}")
    if path.is_file():
        with path.open("rb") as handle:
            head = handle.read(16)
        if head and head != b"SQLite format 3\x00":
            raise InputError(
                f"Expected --mlflow {uri} to name a SQLite database. Received: {path}, a file that is not one. "
                f"{SQLITE_FIX}"
            )
        if not os.access(path, os.W_OK):
            raise InputError(
                f"Expected --mlflow {uri} to be a database xfbench can write. Received: {path} is read-only. "
                f"{SQLITE_FIX}"
            )
    why = unwritable_reason(path.parent) if path.parent.is_dir() else f"{path.parent} is not a folder that exists"
    if why:  # SQLite creates the file, not the folders above it, and writes its journal beside the file
        raise InputError(f"Expected --mlflow {uri} in a folder SQLite can write. Received: {why}. {SQLITE_FIX}")


def tracking_client(uri: str) -> Any:
    """MLflow's client for ``uri`` (checked by :func:`check_tracking_uri`)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise InputError(
            "Expected MLflow for `xfbench export --mlflow`. Received: it is not installed. "
            "To fix, run: pip install 'xfbench[mlflow]'."
        ) from None
    unusable: tuple[type[Exception], ...] = (*store_errors(), ImportError)  # a database store's driver (psycopg)
    try:
        return MlflowClient(tracking_uri=uri)
    except unusable as exc:
        raise unusable_uri(uri, exc) from None


def store_errors() -> tuple[type[Exception], ...]:
    """What MLflow and the database layer under it raise for a store they cannot use."""
    from mlflow.exceptions import MlflowException

    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # no database store without it
        return (MlflowException,)
    return (MlflowException, SQLAlchemyError)


def one_line(exc: BaseException) -> str:
    """An error's message in one line: its first, cut short (a web server that is not MLflow's answered with its whole
    HTML page; MLflow's own messages run over several lines of advice)."""
    lines = str(exc).strip().splitlines()
    return (lines[0][:300] + (" ..." if len(lines) > 1 or len(lines[0]) > 300 else "")) if lines else type(exc).__name__


def artifact_problem(location: str, uri: str) -> str | None:
    """Why artefacts cannot be written to an experiment's artifact ``location`` through tracking ``uri``, else None.
    MLflow finds out only when it logs the first artefact, after the parent run was created: an ``mlflow-artifacts:``
    location (what `mlflow server` gives its experiments) is served by that server, so only its http(s) address
    reaches it, and a local folder must be writable."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    unusable: tuple[type[Exception], ...] = (*store_errors(), ImportError)  # a store's missing client library
    try:  # resolves the location as logging would, writing nothing
        get_artifact_repository(location, tracking_uri=uri)
    except unusable as exc:
        return one_line(exc).split(". ", 1)[0]  # what is wrong; MLflow's advice after it is for its Python API
    parts = urllib.parse.urlsplit(location)
    if parts.scheme == "file" or not parts.scheme or len(parts.scheme) == 1:  # a path (a Windows drive's letter)
        folder = Path(urllib.request.url2pathname(parts.path)) if parts.scheme == "file" else Path(location)
        return unwritable_reason(folder) or None
    return None


SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _sqlite_file(uri: str) -> str:
    """The path of ``uri`` where it names a SQLite database without the ``sqlite:`` scheme (a plain or ``file:``
    path with a database's suffix, or an existing SQLite file), else ""."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("", "file") and len(parts.scheme) != 1:  # one letter: a Windows drive
        return ""
    path = urllib.request.url2pathname(parts.path) if parts.scheme == "file" else uri
    try:
        with open(path, "rb") as file:
            is_database = file.read(16) == b"SQLite format 3\0"
    except OSError:
        is_database = False
    return path if is_database or path.lower().endswith(SQLITE_SUFFIXES) else ""


def unusable_uri(uri: str, exc: Exception) -> InputError:
    """The store's complaint in one line (:func:`one_line`) and how to fix the URI."""
    said = one_line(exc)
    if isinstance(exc, ImportError):
        fix = "install that database's Python driver into xfbench's environment, or give e.g. sqlite:///mlflow.db"
    elif "MLFLOW_ALLOW_FILE_STORE" in str(exc) and _sqlite_file(uri):
        # a database file given as a path: the file store MLflow offers would make a folder of that name
        fix = f"name it as a SQLite database: --mlflow sqlite:///{_sqlite_file(uri)}"
    elif "MLFLOW_ALLOW_FILE_STORE" in str(exc):
        fix = "set MLFLOW_ALLOW_FILE_STORE=true to use a file store anyway, or give e.g. sqlite:///mlflow.db"
    elif re.search(r"error code (401|403)\b", said):  # a server that wants credentials answered; its URI is right
        fix = (
            "give the server's credentials in the environment: MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
        )
    else:
        fix = "give e.g. sqlite:///mlflow.db or the http:// address of a tracking server"
    return InputError(
        f"Expected an MLflow tracking URI it can use. Received: --mlflow {uri!r} ({said}). To fix, {fix}."
    )
