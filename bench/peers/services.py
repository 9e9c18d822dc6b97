"""The servers the peers need: a throwaway Redis on a free loopback port, always
(the harness flushes its database between scenarios, which it must never do to
a shared server); the loopback PostgreSQL when it answers, else a throwaway one;
and Azurite for the Azure Storage rows, always a throwaway one (in memory, no
telemetry) from ``scripts/install-azurite``'s copy or ``azurite`` on PATH, or
none, and then those rows are marked unavailable. Throwaway servers stop at exit.

On the shared PostgreSQL the bench touches only its own databases (``bench``,
``bench_offload``, ``bench_pr``), created here when missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

REDIS_DB = 5
DATABASES = ("bench", "bench_offload", "bench_pr")


# The emulator's well-known development account (public, documented by Azure).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Services:
    redis_url: str
    pg_base: str  # postgresql://user@host:port (no database)
    origin: dict[str, str] = field(default_factory=dict)
    azurite: dict[str, str] | None = None  # {"queue": url, "table": url}

    def pg(self, database: str) -> str:
        return f"{self.pg_base}/{database}"

    def azure_connection_string(self) -> str | None:
        if self.azurite is None:
            return None
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};QueueEndpoint={self.azurite['queue']};"
                f"TableEndpoint={self.azurite['table']};")  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _pg_answers(base: str) -> bool:
    try:
        with psycopg.connect(f"{base}/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


@contextlib.contextmanager
def _throwaway_redis() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/{REDIS_DB}"
    try:
        _wait(lambda: _redis_answers(url), "redis-server")
        yield url
    finally:
        _end(proc)


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; run them as ``postgres`` then."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def _throwaway_postgres() -> Iterator[str]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="offload-peers-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    run = _as_postgres_user
    subprocess.run(run(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust"]),
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(run(["pg_ctl", "-D", str(data), "-o", options, "-w", "start", "-l",
                        str(data / "log")]), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(run(["pg_ctl", "-D", str(data), "-m", "fast", "stop"]),
                       stdout=subprocess.DEVNULL, check=False)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a throwaway server; one that does not stop in 10 s is killed, so a
    slow exit never costs the run its results."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _azurite_binary() -> str | None:
    local = REPO / ".azurite" / "node_modules" / ".bin" / "azurite"
    return str(local) if local.exists() else shutil.which("azurite")


@contextlib.contextmanager
def _throwaway_azurite() -> Iterator[dict[str, str] | None]:
    """Azurite on free loopback ports, ALWAYS without telemetry and in memory."""
    found = _azurite_binary()
    if found is None:
        yield None
        return
    blob, queue, table = free_port(), free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="offload-peers-azurite-"))
    proc = subprocess.Popen(
        [found, "--disableTelemetry", "--inMemoryPersistence", "--skipApiVersionCheck",
         "--loose", "--silent", "--blobHost", "127.0.0.1", "--blobPort", str(blob),
         "--queueHost", "127.0.0.1", "--queuePort", str(queue),
         "--tableHost", "127.0.0.1", "--tablePort", str(table)],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(lambda: _port_open(queue) and _port_open(table), "azurite")
        yield {"queue": f"http://127.0.0.1:{queue}/{AZURITE_ACCOUNT}",
               "table": f"http://127.0.0.1:{table}/{AZURITE_ACCOUNT}"}  # fmt: skip
    finally:
        _end(proc)
        shutil.rmtree(work, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _create_databases(base: str) -> None:
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        present = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in present:
                conn.execute(f'CREATE DATABASE "{name}"')


@contextlib.contextmanager
def services(own: bool = False) -> Iterator[Services]:
    """Redis and PostgreSQL for the whole run. Redis is always a throwaway
    server: the bench empties its database between scenarios (the peers' keys
    share no prefix), which must never happen to a server others use.
    PostgreSQL is reused when it answers (the bench keeps to databases of its
    own); ``own`` starts a throwaway one anyway."""
    pg_base = "postgresql://postgres@127.0.0.1:5432"
    with contextlib.ExitStack() as stack:
        origin = {"postgres": "reused 127.0.0.1:5432"}
        redis_url = stack.enter_context(_throwaway_redis())
        origin["redis"] = "started " + redis_url
        if own or not _pg_answers(pg_base):
            pg_base = stack.enter_context(_throwaway_postgres())
            origin["postgres"] = "started " + pg_base
        _create_databases(pg_base)
        azurite = stack.enter_context(_throwaway_azurite())
        origin["azurite"] = "started " + azurite["queue"] if azurite else "not installed"
        yield Services(redis_url, pg_base, origin, azurite)
