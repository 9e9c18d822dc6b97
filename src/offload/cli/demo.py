"""``offload demo``: the one-command tour. It loads the demo app
(``examples/demo.py``), enqueues a mix of jobs (and a few more every few seconds),
runs a worker until Ctrl-C, serves the web dashboard next to it when ``offload.web``
can run, and redraws the queue depths every second, so every state of the
lifecycle shows up within seconds: retries, a dead job, progress, a command handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.text import Text

from offload.app import App
from offload.backends.base import QueueCounts
from offload.cli.loading import AppSpecError, load_module_file
from offload.cli.output import console, queues_table
from offload.cli.queues import queue_counts
from offload.cli.runtime import CliState, run, target_options
from offload.cli.worker import setup_logging
from offload.observability.logs import redact

log = logging.getLogger("offload.cli")

DEMO_MODULE = "examples.demo"
# src/offload/cli/demo.py -> the checkout's examples/demo.py
TRICKLE_EVERY = 5.0
DASHBOARD_HOST = "127.0.0.1"
CHECKOUT_DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo.py"


def load_demo() -> ModuleType:
    """``examples/demo.py`` of the current directory, else of the source checkout
    this package was installed from (``pip install -e .``)."""
    local = Path("examples/demo.py")
    path = local if local.is_file() else CHECKOUT_DEMO
    if not path.is_file():
        raise AppSpecError("examples/demo.py not found; run this from the offload checkout")
    return load_module_file(path.resolve(), DEMO_MODULE)


Dashboard = tuple[Callable[[], Awaitable[None]], str]


async def start_dashboard(app: App, port: int) -> Dashboard | None:
    """Serve ``offload.web`` (API and dashboard) in this process next to the worker;
    returns how to stop it and the link to open, or ``None`` when it cannot run
    (no web extra, port in use): the demo is still useful without it.

    The server gets an admin token made for this run, and the link carries it
    (as Jupyter's does): other users of the machine reach 127.0.0.1 too."""
    try:
        import uvicorn

        from offload.web import create_app
        from offload.web.secrets import generate
    except ImportError as exc:
        log.warning("no dashboard (%s): pip install 'offload[web]'", exc)
        return None
    if not port_free(DASHBOARD_HOST, port):
        log.warning("no dashboard: port %d is in use (choose another with --port)", port)
        return None
    config = uvicorn.Config(
        create_app(app, tokens={(token := generate()): None}), host=DASHBOARD_HOST, port=port,
        log_config=None, access_log=False,
        log_level="warning",
    )  # fmt: skip
    server = _signals_server()(config)
    serving = asyncio.create_task(server.serve())
    url = f"http://{DASHBOARD_HOST}:{port}/?token={token}"
    # Printed, not logged: log lines redact tokens, and this link is how the
    # person at this terminal opens the dashboard (shown once, as Jupyter does).
    click.echo(f"dashboard: {url}", err=True)

    async def stop() -> None:
        server.should_exit = True
        await serving

    return stop, url


def port_free(host: str, port: int) -> bool:
    """Checked first because uvicorn exits the whole process when it cannot bind."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _signals_server() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """Leaves SIGINT/SIGTERM to the worker, which stops the demo gracefully;
        the server is stopped after it."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server


def hint(backend_url: str, dashboard: str | None) -> Text:
    if backend_url.startswith("memory:"):
        where = "memory backend: the jobs live in this process only"
    else:
        shown_url = redact(backend_url)  # the footer is on screen and in recordings
        where = f"from another shell: offload --backend {shown_url} jobs list"
    shown = f"dashboard {dashboard} · " if dashboard else ""
    return Text(f"{shown}{where} · Ctrl-C stops", style="dim")


def render(counts: QueueCounts, footer: Text) -> Group:
    return Group(queues_table(counts, title="offload demo: jobs per queue and state"), footer)


async def show_queues(app: App, live: Live, footer: Text) -> None:
    while True:
        live.update(render(await queue_counts(app), footer), refresh=True)
        await asyncio.sleep(1.0)


async def keep_seeding(demo: ModuleType, start: int, jobs: int) -> None:
    """A few new jobs now and then keep every state in view while the demo runs."""
    while jobs:
        await asyncio.sleep(TRICKLE_EVERY)
        await demo.seed_async(jobs, start)
        start += jobs


async def run_demo(app: App, demo: ModuleType, jobs: int, more: int, port: int | None) -> None:
    from offload.worker import Worker

    seeded = await demo.seed_async(jobs)
    log.info("enqueued %d demo jobs, then %d every %ss", len(seeded), more, TRICKLE_EVERY)
    worker = Worker(app, demo.QUEUES, handle_signals=True, grace_period=5.0)
    dashboard = await start_dashboard(app, port) if port else None
    footer = hint(app.backend_url, dashboard[1] if dashboard else None)
    with Live(console=console, auto_refresh=False, transient=False) as live:
        helpers = [asyncio.create_task(show_queues(app, live, footer)),
                   asyncio.create_task(keep_seeding(demo, jobs, more))]  # fmt: skip
        try:
            await worker.run()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        live.update(render(await queue_counts(app), footer), refresh=True)
    if dashboard is not None:
        await dashboard[0]()


@click.command("demo")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file [default: the demo app's, offload-demo.db].")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=0), default=40, show_default=True,
              help="Demo jobs to enqueue at start.")  # fmt: skip
@click.option("--more", type=click.IntRange(min=0), default=5, show_default=True,
              help=f"Demo jobs to add every {TRICKLE_EVERY:g} seconds (0: none).")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port of the web dashboard (on 127.0.0.1).")  # fmt: skip
@click.option("--no-web", is_flag=True, help="Do not start the web dashboard.")
@target_options
@click.pass_obj
def demo(state: CliState, db: Path | None, jobs: int, more: int, port: int, no_web: bool) -> None:
    """Run the demo: demo jobs, a worker, the dashboard and a live table, until Ctrl-C."""
    try:
        module = load_demo()
    except AppSpecError as exc:
        raise click.UsageError(f"cannot load the demo app: {exc}") from exc
    app: App = module.app
    url = f"sqlite:///{db}" if db is not None else state.backend_url
    if url and url != app.backend_url:
        app.use_backend(url)
    setup_logging("info")
    run(app, lambda a: run_demo(a, module, jobs, more, None if no_web else port))
