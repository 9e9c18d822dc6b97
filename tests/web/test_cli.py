"""``offload web``: options become a served web app with the right tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from offload.cli.web import parse_tokens, web
from offload.testing import eventually
from tests.servers import free_port


def test_tokens_map_to_tenants_and_star_is_admin() -> None:
    assert parse_tokens(("s1=acme", "s2=*")) == {"s1": "acme", "s2": None}


@pytest.mark.parametrize("bad", ["nosep", "=acme", "token="])
def test_malformed_tokens_are_usage_errors(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_tokens((bad,))


def test_web_serves_the_app_with_its_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: dict[str, Any] = {}

    def fake_run(asgi: Any, host: str, port: int, **options: Any) -> None:
        served.update(app=asgi, host=host, port=port, **options)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = CliRunner().invoke(
        web, ["--backend", "memory://", "--port", "8123", "--token", "t=acme"]
    )
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.offload_auth.tokens == {"t": "acme"}
    assert served["app"].state.offload.backend_url == "memory://"
    assert served["log_config"] is None  # uvicorn logs through offload's handler


def test_workers_refuse_a_backend_that_lives_in_one_process() -> None:
    result = CliRunner().invoke(web, ["--backend", "memory://", "--workers", "2", "--open"])
    assert result.exit_code == 2
    assert "--workers needs a shared backend" in result.output


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


async def test_workers_serve_from_several_processes_and_replace_one_that_dies(
    tmp_path: Path,
) -> None:
    """Two server processes answer on one port with the same token; one killed
    is replaced by the supervisor, and SIGTERM stops them all."""
    port = free_port()
    url = f"sqlite:///{tmp_path / 'web.db'}"
    command = [sys.executable, "-m", "offload", "web", "--backend", url, "--port", str(port),
               "--workers", "2", "--token", "t=*"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as client:

            async def answers() -> bool:
                try:
                    return (await client.get(f"{base}/api/v1/jobs")).status_code == 200
                except httpx.TransportError:
                    return False

            async def two() -> set[int] | None:
                # uvicorn's supervisor runs each server as a child of its own
                # (under multiprocessing's resource tracker, which is a child too).
                found = {c for c in _children(server.pid) if _is_server(c)}
                return found if len(found) == 2 else None

            first = await eventually(two, timeout=60)
            await eventually(answers, timeout=60)
            assert (await client.get(f"{base}/api/v1/jobs", headers={"Authorization": ""})
                    ).status_code == 401  # fmt: skip
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            replaced = await eventually(lambda: _replaced(server.pid, first, victim), timeout=60)
            assert victim not in replaced
            assert len(replaced) == 2
            await eventually(answers, timeout=60)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def _is_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline


async def _replaced(parent: int, first: set[int], victim: int) -> set[int] | None:
    now = {c for c in _children(parent) if _is_server(c)}
    return now if len(now) == 2 and victim not in now and now != first else None


@pytest.mark.parametrize("command", ["web", "worker"])
def test_the_commands_freeze_what_start_up_built(command: str, tmp_path: Path) -> None:
    """What start-up built is kept out of full collections, whose walks over it
    set the server's tail latency; the commands own their process, so they do it."""
    import gc

    from offload import App
    from offload.cli.runtime import run
    from offload.cli.webprocess import ServeSettings, build_served
    from offload.cli.worker import run_worker

    gc.unfreeze()
    try:
        if command == "web":
            build_served(ServeSettings(backend_url=f"sqlite:///{tmp_path / 'f.db'}",
                                       app_spec=None, app_positional=False, tokens={}))  # fmt: skip
        else:
            app = App(f"sqlite:///{tmp_path / 'f.db'}")
            options: dict[str, Any] = {"concurrency": 1, "burst": True, "fetch_batch": None,
                                       "poll_interval": None, "grace": None}  # fmt: skip
            run(app, lambda a: run_worker(a, ["default"], **options))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_sigterm_ends_the_server_while_a_stream_is_open(tmp_path: Path) -> None:
    """A live stream never finishes on its own: without a grace period the
    server waited for it forever after SIGTERM (until a supervisor's SIGKILL)."""
    port = free_port()
    command = [sys.executable, "-m", "offload", "web", "--backend",
               f"sqlite:///{tmp_path / 'web.db'}", "--port", str(port), "--open",
               "--shutdown-grace", "1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            with client.stream("GET", f"http://127.0.0.1:{port}/api/v1/stream") as stream:
                assert stream.status_code == 200
                next(stream.iter_lines())  # the stream is live
                server.send_signal(signal.SIGTERM)
                # uvicorn raises the signal again once it has shut down.
                assert server.wait(20) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
