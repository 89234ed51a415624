"""Throwaway database servers for the tests: a PostgreSQL cluster and the in-process ClickHouse.

PostgreSQL: `postgres_url()` is ``UPDATER_STATS_TEST_POSTGRES_URL`` when set;
otherwise a cluster made with initdb in a temporary directory, listening on
127.0.0.1 on a free port, started once per test run and stopped at exit.
Without PostgreSQL binaries the tests skip, except in CI (``CI`` set), where a
missing server is a failure: CI must never pass by skipping them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from updater_stats.backends import Batching
from updater_stats.backends.clickhouse import ClickHouseBackend
from updater_stats.backends.postgres import PostgresBackend

POSTGRES_URL_VAR = "UPDATER_STATS_TEST_POSTGRES_URL"


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run every backend test", pytrace=False)
    pytest.skip(reason)


def _postgres_bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    # Debian keeps the server binaries off PATH, one folder per major version.
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="updater-stats-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        # initdb and postgres refuse to run as root: run them as an ordinary account.
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _has_user("postgres") else "nobody"
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / program), *args],
            check=True,
            capture_output=True,
            timeout=120,
            user=self.user,
        )

    def start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                "-c unix_socket_directories=''",
                # A test server: speed over durability.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def new_postgres_server() -> PostgresServer:
    """A started server of its own (stopped at exit), or a skip (a failure in CI)."""
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not found")
        raise AssertionError  # unreachable: skip_or_fail raised
    server = PostgresServer(bin_dir)
    atexit.register(server.destroy)
    server.start()
    return server


_shared_lock = threading.Lock()
_shared_url: str | None = None


def postgres_url() -> str:
    """The server shared by every PostgreSQL test of this run."""
    global _shared_url  # noqa: PLW0603 - one server per test run, started on first use
    with _shared_lock:
        if _shared_url is None:
            _shared_url = os.environ.get(POSTGRES_URL_VAR) or new_postgres_server().url
        return _shared_url


def unique_name(prefix: str) -> str:
    """A fresh schema or database name, so tests sharing a server never see each other."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


_schemas: list[str] = []


def postgres_backend(*, application_name: str | None = None, **options: object) -> PostgresBackend:
    """A `PostgresBackend` in a schema of its own on the shared server; with
    *application_name*, its sessions go by that name (others are ``updater-stats``)."""
    url = postgres_url()
    if application_name is not None:
        url += f"{'&' if '?' in url else '?'}application_name={application_name}"
    schema = unique_name("test")
    if os.environ.get(POSTGRES_URL_VAR):
        # A throwaway cluster goes away whole; a server of the environment is cleaned up.
        if not _schemas:
            atexit.register(_drop_schemas, url)
        _schemas.append(schema)
    return PostgresBackend(url, schema=schema, **options)


def _drop_schemas(url: str) -> None:
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(url, autocommit=True, connect_timeout=5) as conn,
    ):
        for schema in _schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


#: Batching for ClickHouse in the endpoint tests: a lone request is written at once, as the
#: other backends do, so that hundreds of sequential test requests do not each wait 200 ms.
TEST_CLICKHOUSE_BATCHING = Batching(max_delay=0.002)


def clickhouse_backend(**options: object) -> ClickHouseBackend:
    """A `ClickHouseBackend` on the in-process engine (chdb), in a database of its own.

    chdb hosts one engine per process; every test shares it, each in a fresh database.
    """
    try:
        import chdb  # noqa: F401, PLC0415 - only to tell a missing engine from other errors
    except ImportError:
        skip_or_fail("chdb (the in-process ClickHouse engine) is not installed")
    options.setdefault("batching", TEST_CLICKHOUSE_BATCHING)
    return ClickHouseBackend(
        "chdb://memory",
        database=unique_name("test"),
        **options,
    )
