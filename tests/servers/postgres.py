"""PostgreSQL for the tests: the server on 127.0.0.1:5432 when it answers, else a
throwaway cluster (initdb into a temporary directory, loopback only, trust auth)
when the binaries are installed, else a skip with the reason.

Every URL names its own schema (``?schema=t_<random>``), so tests never see each
other's jobs. ``postgres_url`` gives a schema nobody has used, dropped when the
test ends: what the migration tests need. ``postgres_clean_url`` (the contract
suite's) gives a schema that may have served an earlier test, its rows deleted
and its identities restarted: as empty as a new one, without paying again for
the five migrations and the drop (about half a second a test, hundreds of
tests). ``Cluster`` is also what the restart tests use for a server of their
own that they may stop and start.
"""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import free_port, port_open, require, unavailable

HOST = "127.0.0.1"
SHARED_PORT = 5432
DATABASE = "test"
USERS = ("root", "postgres")


def bin_dir() -> Path | None:
    """Where initdb/pg_ctl live: $PG_BIN, PATH, or Debian's versioned folders."""
    candidates = [os.environ.get("PG_BIN", "")]
    if found := shutil.which("pg_ctl"):
        candidates.append(str(Path(found).parent))
    candidates += sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


@dataclass
class Cluster:
    """A private PostgreSQL server: its own data directory, port and lifetime.

    initdb refuses to run as root, so under root the server runs as the
    ``postgres`` system user."""

    bin: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="offload-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def user(self) -> str:
        return "postgres" if os.geteuid() == 0 else getpass.getuser()

    def url(self, schema: str | None = None) -> str:
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{self.user}@{HOST}:{self.port}/postgres{query}"

    def init(self) -> Cluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8")
        return self

    def start(self, timeout: float = 30.0) -> None:
        options = f"-c listen_addresses={HOST} -p {self.port} -k {self.root} -c fsync=off"
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        deadline = time.monotonic() + timeout
        while not port_open(HOST, self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, capture_output=True, cwd=self.root)


_shared: str | None = None


def _server(request: pytest.FixtureRequest) -> str:
    """The base URL of a server for the whole session, started at most once."""
    global _shared
    if _shared is None:
        _shared = _find_server()
    return _shared


def _find_server() -> str:
    if port_open(HOST, SHARED_PORT):
        for user in USERS:
            url = f"postgresql://{user}@{HOST}:{SHARED_PORT}/{DATABASE}"
            if _answers(url):
                return url
    folder = bin_dir()
    if folder is None:
        unavailable("no PostgreSQL on 127.0.0.1:5432 and no initdb/pg_ctl to start one")
        raise AssertionError("unreachable")
    cluster = Cluster(folder).init()
    cluster.start()
    atexit.register(cluster.destroy)
    return cluster.url()


def _answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def drop_schema(base_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_url(request: pytest.FixtureRequest) -> str:
    """A URL on a fresh schema of its own; the schema is dropped after the test."""
    require("psycopg", "the postgres extra is not installed")
    base = _server(request)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: drop_schema(base, schema))
    return f"{base}?schema={schema}"


_clean: list[str] = []
"""Schemas emptied after their test, waiting for the next one."""
_made: set[str] = set()
"""Every schema of the pool not yet dropped."""


def postgres_clean_url(request: pytest.FixtureRequest) -> str:
    """A URL on an empty schema no other live test holds: a reused one when
    an earlier test gave one back, else a new one. After the test its rows
    are deleted and it goes back to the pool; one that cannot be emptied (a
    lock held past the timeout, a table the test broke) is dropped instead.
    Every schema of the pool is dropped when the session ends."""
    require("psycopg", "the postgres extra is not installed")
    base = _server(request)
    if not _clean:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _made.add(schema)
        request.config.add_cleanup(lambda: _drop(base, schema))
    else:
        schema = _clean.pop()
    request.addfinalizer(lambda: _give_back(base, schema))
    return f"{base}?schema={schema}"


def _give_back(base_url: str, schema: str) -> None:
    import psycopg

    try:
        empty_schema(base_url, schema)
    except psycopg.Error:
        _drop(base_url, schema)  # not worth reusing; the next test makes a new one
    else:
        _clean.append(schema)


def empty_schema(base_url: str, schema: str) -> None:
    """Every row of every table but ``migrations`` deleted, every identity
    restarted, in one transaction. DELETE, not TRUNCATE: on the few rows a
    test leaves it is ten times cheaper (TRUNCATE makes new files)."""
    import psycopg

    with psycopg.connect(base_url) as conn:
        conn.execute("SET LOCAL lock_timeout = '5s'")
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'migrations'",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            conn.execute(f'DELETE FROM "{schema}"."{table}"')
        sequences = conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (sequence,) in sequences:
            conn.execute(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART')


def _drop(base_url: str, schema: str) -> None:
    if schema in _made:
        _made.discard(schema)
        drop_schema(base_url, schema)
