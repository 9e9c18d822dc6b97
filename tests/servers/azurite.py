"""Azurite, the Azure Storage emulator, for the azure:// tests: a throwaway
server started once per session on free loopback ports, from the copy that
``scripts/install-azurite`` puts in ``.azurite/`` (or ``azurite`` on PATH), else
a skip with the reason (a failure under CI=true).

It always runs with ``--disableTelemetry`` (without it Azurite calls out to the
internet) and ``--inMemoryPersistence``. Every URL carries its own ``prefix``,
so tests share the account without seeing each other's queues and tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.servers import free_port, port_open, unavailable

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
# Node.js takes long to start on a loaded machine (2 cores shared by many runs).
START_TIMEOUT = 90.0
# The emulator's well-known development account (public, documented by Azure).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

ENV = "AZURE_STORAGE_CONNECTION_STRING"
_state: dict[str, str] = {}


def connection_string(queue_port: int, table_port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"QueueEndpoint=http://{HOST}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{HOST}:{table_port}/{ACCOUNT};"
    )


def azurite_connection_string(request: pytest.FixtureRequest) -> str:
    """The connection string of the session's Azurite, started on first use."""
    if "conn" not in _state:
        try:
            _state["conn"] = _start(request.config)
        except pytest.skip.Exception as exc:
            _state["conn"] = "!" + str(exc.msg)
            raise
    if _state["conn"].startswith("!"):
        unavailable(_state["conn"][1:])
    return _state["conn"]


def azure_url(request: pytest.FixtureRequest) -> str:
    """An ``azure://?prefix=…`` URL of its own; the connection string goes where
    users put it, ``AZURE_STORAGE_CONNECTION_STRING``, so worker subprocesses
    inherit it. Tables and queues live in the emulator's memory, which goes
    with the session, so there is nothing to drop."""
    os.environ[ENV] = azurite_connection_string(request)
    return f"azure://?prefix=t{uuid.uuid4().hex[:10]}"


def binary() -> str | None:
    local = ROOT / ".azurite" / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    return shutil.which("azurite")


def _start(config: pytest.Config) -> str:
    found = binary()
    if found is None:
        unavailable("azurite is not installed: run scripts/install-azurite")
        raise AssertionError("unreachable")
    blob, queue, table = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="offload-azurite-"))
    cmd = [
        found, "--disableTelemetry", "--inMemoryPersistence", "--skipApiVersionCheck",
        "--loose", "--silent",
        "--blobHost", HOST, "--blobPort", str(blob),
        "--queueHost", HOST, "--queuePort", str(queue),
        "--tableHost", HOST, "--tablePort", str(table),
    ]  # fmt: skip
    log = (workdir / "azurite.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    config.add_cleanup(lambda: _stop(proc, workdir))
    deadline = time.monotonic() + START_TIMEOUT
    while not (port_open(HOST, queue) and port_open(HOST, table)):
        if proc.poll() is not None or time.monotonic() > deadline:
            unavailable(f"azurite did not start: see {workdir / 'azurite.log'}")
        time.sleep(0.05)
    return connection_string(queue, table)


def _stop(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)
