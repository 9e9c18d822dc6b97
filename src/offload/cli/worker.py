"""``offload worker MODULE:APP``: run a worker in this process until stopped.

The worker needs the app's tasks (it runs them), so the app spec is required,
either as the argument or through ``--app``/``OFFLOAD_APP``. SIGTERM or Ctrl-C
stops it gracefully; a second one cancels running jobs, which go back to their
queue with their checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from rich.logging import RichHandler

from offload.app import App
from offload.cli.output import err_console
from offload.cli.runtime import CliState, build_app, run, target_options

log = logging.getLogger("offload.cli")

LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str) -> None:
    """Rich, timestamped logs on stderr; stdout stays free for command output."""
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def parse_queues(text: str | None) -> list[str]:
    queues = [q.strip() for q in (text or "default").split(",") if q.strip()]
    if not queues:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    return queues


def warn_unserved(app: App, queues: list[str]) -> None:
    """A task on a queue nobody serves waits forever; say so at start."""
    unserved = sorted({t.queue for t in app.tasks.values()} - set(queues))
    if unserved:
        log.warning("tasks of this app also use queue(s) %s, not served here (--queues)",
                    ", ".join(unserved))  # fmt: skip


@click.command("worker")
@click.argument("spec", metavar="MODULE:APP", required=False)
@click.option("--queues", "-q", metavar="A,B", help="Queues in priority order [default: default]")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Jobs run at once.")
@click.option("--burst", is_flag=True, help="Exit once no job of its queues is queued or running.")
@click.option("--fetch-batch", type=click.IntRange(min=1), help="Jobs leased per round trip.")
@click.option("--poll-interval", type=click.FloatRange(min=0, min_open=True), metavar="S")
@click.option("--grace", type=click.FloatRange(min=0), metavar="S",
              help="Seconds running jobs may finish after a stop request.")  # fmt: skip
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="info")
@target_options
@click.pass_obj
def worker(state: CliState, /, spec: str | None, queues: str | None, log_level: str,
           **options: Any) -> None:  # fmt: skip
    """Run a worker for the tasks of MODULE:APP."""
    if spec:
        state.app_spec = spec
    app = build_app(state, need_tasks=True)
    served = parse_queues(queues)
    setup_logging(log_level)
    warn_unserved(app, served)
    run(app, lambda a: run_worker(a, served, **options))


async def run_worker(
    app: App,
    queues: list[str],
    *,
    concurrency: int | None,
    burst: bool,
    fetch_batch: int | None,
    poll_interval: float | None,
    grace: float | None,
) -> None:
    # Imported here: the read-only commands should not pay for the worker's imports.
    from offload.worker import ServiceDied, Worker

    worker = Worker(
        app, queues, concurrency=concurrency, burst=burst, fetch_batch=fetch_batch,
        poll_interval=poll_interval, grace_period=grace, handle_signals=True,
    )  # fmt: skip
    try:
        await worker.run()
    except ServiceDied as exc:
        raise click.ClickException(f"worker stopped: {exc}: {exc.__cause__!r}") from exc
    log.info("worker stopped after %d job(s)", worker.processed)
