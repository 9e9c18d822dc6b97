"""Throwaway brokers a scenario or the soak may kill and restart on the same
port and data: redis-server with or without ``appendfsync always``, a
PostgreSQL cluster of its own (``tests.servers.postgres.Cluster``), Azurite with
``--disableTelemetry``. The shared servers on 5432 and 6379 are never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port, port_open, unavailable
from tests.servers.azurite import binary as azurite_binary
from tests.servers.azurite import connection_string
from tests.servers.postgres import Cluster, bin_dir


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{what} on port {port} did not start")
        time.sleep(0.05)


@dataclass
class RedisBroker:
    """``aof`` True: every write fsynced before the reply (``appendfsync always``),
    the setting docs/backends/redis.md names for durability."""

    aof: bool
    port: int = field(default_factory=free_port)
    data: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="offload-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisBroker:
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else [
            "--appendonly", "no"]  # fmt: skip
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--dir", str(self.data), *durability]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "redis-server")
        return self

    def url(self, port: int | None = None) -> str:
        return f"redis://127.0.0.1:{port or self.port}/0?prefix=f{uuid.uuid4().hex[:8]}"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """A shutdown Redis is told of (SIGTERM): it flushes its AOF, then exits;
        the soak's broker restart, where ``kill`` is its broker crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.data, ignore_errors=True)


class PgBroker:
    """A PostgreSQL cluster of the caller's own, stopped and started at will."""

    def __init__(self) -> None:
        folder = bin_dir()
        if folder is None:
            unavailable("initdb/pg_ctl are not installed")
            raise AssertionError("unreachable")
        self.cluster = Cluster(folder).init()
        self.cluster.start()

    def url(self) -> str:
        return self.cluster.url()

    def restart(self) -> None:
        self.cluster.stop("fast")
        self.cluster.start()

    def crash(self) -> None:
        self.kill()
        self.start()

    def kill(self) -> None:
        self.cluster.stop("immediate")  # no checkpoint, no goodbye: a crash

    def start(self) -> None:
        self.cluster.start()

    def destroy(self) -> None:
        self.cluster.destroy()


@dataclass
class AzuriteBroker:
    """Azurite keeping its data on disk (``--location``) unless ``in_memory``."""

    in_memory: bool = False
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    data: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="offload-azurite-")))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AzuriteBroker:
        found = azurite_binary()
        if found is None:
            unavailable("azurite is not installed: run scripts/install-azurite")
            raise AssertionError("unreachable")
        keep = ["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.data)]
        cmd = [found, "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent", *keep,
               "--blobPort", str(free_port()), "--queueHost", "127.0.0.1",
               "--queuePort", str(self.queue_port), "--tableHost", "127.0.0.1",
               "--tablePort", str(self.table_port), "--blobHost", "127.0.0.1"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.data, start_new_session=True)  # fmt: skip
        _wait_port(self.queue_port, self.proc, "azurite queue")
        _wait_port(self.table_port, self.proc, "azurite table")
        return self

    @property
    def connection_string(self) -> str:
        return connection_string(self.queue_port, self.table_port)

    def url(self) -> str:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = self.connection_string
        return f"azure://?prefix=f{uuid.uuid4().hex[:8]}"

    def kill(self) -> None:
        """A crash: what Azurite had not yet saved to ``--location`` is lost."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """A stop Azurite is told of (SIGTERM): it saves its state, then exits."""
        self._signal(signal.SIGTERM)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.data, ignore_errors=True)
