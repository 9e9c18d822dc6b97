"""Redis servers for the tests: the shared one on 127.0.0.1:6379 when it answers,
else a throwaway ``redis-server``; and a session-wide 3-node cluster on loopback.

Each URL carries a fresh random prefix; its finalizer deletes that prefix's keys
and nothing else, so the shared server's other data is never touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.servers import free_port, port_open, unavailable

SHARED = ("127.0.0.1", 6379)
START_TIMEOUT = 10.0
_state: dict[str, str] = {}


def redis_url(request: pytest.FixtureRequest) -> str:
    """A single-server URL with its own prefix."""
    _provide("single", lambda: _single_server(request.config))
    prefix = f"t{uuid.uuid4().hex[:12]}"
    host, port = _state["single"].rsplit(":", 1)
    request.addfinalizer(lambda: drop_prefix([(host, int(port))], prefix))
    return f"redis://{host}:{port}/0?prefix={prefix}"


def redis_cluster_url(request: pytest.FixtureRequest) -> str:
    """A cluster URL (first node as the startup node) with its own prefix."""
    _provide("cluster", lambda: _cluster(request.config))
    prefix = f"t{uuid.uuid4().hex[:12]}"
    ports = [int(p) for p in _state["cluster"].split(",")]
    request.addfinalizer(lambda: drop_prefix([("127.0.0.1", p) for p in ports], prefix))
    return f"redis+cluster://127.0.0.1:{ports[0]}?prefix={prefix}"


def node_ports(url: str) -> list[int]:
    """The ports of every server behind a URL this module returned."""
    if url.startswith("redis+cluster://"):
        return [int(p) for p in _state["cluster"].split(",")]
    return [int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])]


def _provide(name: str, start: Callable[[], str]) -> None:
    """Start a server once per session; a failure is remembered, so every later
    test skips at once with the same reason instead of trying again."""
    if name not in _state:
        try:
            _state[name] = start()
        except pytest.skip.Exception as exc:
            _state[name] = "!" + str(exc.msg)
            raise
    if _state[name].startswith("!"):
        unavailable(_state[name][1:])


def start_server(*extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway redis-server on a free loopback port; the caller stops it."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed and no Redis answers on 6379")
    port = port or free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: port_open("127.0.0.1", port), f"redis-server on {port}")
    except BaseException:
        _stop(proc)
        raise
    return proc, port


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535 and _bindable(port + 10000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _single_server(config: pytest.Config) -> str:
    if port_open(*SHARED):
        return f"{SHARED[0]}:{SHARED[1]}"
    proc, port = start_server()
    config.add_cleanup(lambda: _stop(proc))
    return f"127.0.0.1:{port}"


def _cluster(config: pytest.Config) -> str:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable("redis-server/redis-cli are not installed: no cluster to test against")
    workdir = Path(tempfile.mkdtemp(prefix="offload-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    config.add_cleanup(lambda: _teardown(procs, workdir))
    for n in range(3):
        proc, port = start_server(
            "--cluster-enabled", "yes", "--cluster-config-file", str(workdir / f"n{n}.conf"),
            "--dir", str(workdir), port=cluster_port(),
        )  # fmt: skip
        procs.append(proc)
        ports.append(port)
    nodes = [f"127.0.0.1:{p}" for p in ports]
    subprocess.run(
        ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
    )  # fmt: skip
    _wait_until(lambda: all(cluster_ready(p) for p in ports), "cluster_state:ok")
    return ",".join(str(p) for p in ports)


def cluster_ready(port: int) -> bool:
    """Whether the cluster node on ``port`` says the cluster is ``ok``."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        info = client.execute_command("CLUSTER INFO")
        return bool(info.get("cluster_state") == "ok")
    except redis.RedisError:
        return False
    finally:
        client.close()


def _wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            unavailable(f"{what}: not ready within {START_TIMEOUT}s")
        time.sleep(0.05)


def drop_prefix(nodes: list[tuple[str, int]], prefix: str) -> None:
    """Delete the keys of one prefix only; on a cluster they all sit on one node."""
    for host, port in nodes:
        client = redis.Redis(host=host, port=port)
        try:
            # A large step: the shared server may hold many other keys, and a
            # SCAN of 1,000 at a time made each test's teardown a third of a
            # second with 150,000 of them.
            keys = list(client.scan_iter(match="{" + prefix + "}*", count=20000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        except redis.RedisError:
            pass
        finally:
            client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _teardown(procs: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    for proc in procs:
        _stop(proc)
    shutil.rmtree(workdir, ignore_errors=True)
