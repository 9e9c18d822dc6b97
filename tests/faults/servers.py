"""Throwaway brokers a scenario or the soak may kill and restart on the same
port and data: redis-server with or without ``appendfsync always``, a 3-master
Redis Cluster behind fault proxies, a PostgreSQL cluster of its own
(``tests.servers.postgres.Cluster``), Azurite with ``--disableTelemetry``.
The shared servers on 5432 and 6379 are never touched."""

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

from tests.faults.proxy import FaultProxy
from tests.servers import free_port, port_open, unavailable
from tests.servers.azurite import binary as azurite_binary
from tests.servers.azurite import connection_string
from tests.servers.postgres import Cluster, bin_dir
from tests.servers.redis import cluster_port, cluster_ready


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


@dataclass
class ProxiedCluster:
    """Three Redis Cluster masters, each announcing the port of a ``FaultProxy``
    in front of it (``cluster-announce-port``). A cluster client follows the
    addresses the cluster announces, so with these it talks through the proxies
    only, and cutting or slowing them all reaches every client. The cluster bus
    (``cluster-announce-bus-port``, the node's own) goes direct: a cut never
    splits the nodes from each other. Every write is fsynced (``appendfsync
    always``) and each node keeps its data and cluster config in its own folder,
    so a node restarted on them is the same master with the same keys."""

    data: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="offload-rc-")))
    ports: list[int] = field(default_factory=list)
    proxies: list[FaultProxy] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)

    def start(self) -> ProxiedCluster:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            unavailable("redis-server/redis-cli are not installed: no cluster to test against")
        for n in range(3):
            port = cluster_port()
            self.ports.append(port)
            self.proxies.append(FaultProxy(port).__enter__())
            self.procs.append(None)
            self._start_node(n)
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        self.wait_ready()
        return self

    def _start_node(self, n: int) -> None:
        port, folder = self.ports[n], self.data / f"n{n}"
        folder.mkdir(exist_ok=True)
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "always",
               "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-announce-ip", "127.0.0.1",
               "--cluster-announce-port", str(self.proxies[n].port),
               "--cluster-announce-bus-port", str(port + 10000)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[n] = proc
        _wait_port(port, proc, "redis cluster node")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while not all(cluster_ready(p) for p in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the proxied cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def url(self) -> str:
        """Through the first node's proxy; the client learns the others' proxies."""
        prefix = f"f{uuid.uuid4().hex[:8]}"
        return f"redis+cluster://127.0.0.1:{self.proxies[0].port}?prefix={prefix}"

    def restart(self) -> None:
        """Every node stopped (told to: it fsyncs and saves its config) and
        started again on its port and data."""
        for n, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            self.procs[n] = None
        for n in range(len(self.ports)):
            self._start_node(n)
        self.wait_ready()

    def cut(self) -> None:
        for proxy in self.proxies:
            proxy.blackhole()

    def destroy(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for proxy in self.proxies:
            proxy.__exit__(None, None, None)
        shutil.rmtree(self.data, ignore_errors=True)
