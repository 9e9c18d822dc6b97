"""``offload worker MODULE:APP``: run a worker in this process until stopped.

The worker needs the app's tasks (it runs them), so the app spec is required,
either as the argument or through ``--app``/``OFFLOAD_APP``. SIGTERM or Ctrl-C
stops it gracefully; a second one cancels running jobs, which go back to their
queue with their checkpoint.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from offload.app import App
from offload.cli.runtime import (
    CliState,
    build_app,
    freeze_startup,
    missing_extra,
    run,
    target_options,
)

log = logging.getLogger("offload.cli")

LOG_LEVELS = ("debug", "info", "warning", "error")


LOG_FORMATS = ("text", "json")


def setup_logging(level: str, log_format: str = "text") -> None:
    """Rich, timestamped logs on stderr, or one JSON object per line
    (``--log-format json``, for log shippers); stdout stays free for command
    output. Either way each line of a job names it, and credentials are masked."""
    from offload.observability.logs import configure

    if log_format == "json":
        configure(level, "json", logging.StreamHandler())
    elif sys.stderr.isatty():
        configure(level, "text", rich_handler())
    else:
        plain_text_logs(level)


def rich_handler() -> logging.Handler:
    """Colours and wrapping for a person at a terminal; imported only then, so a
    worker under a supervisor (systemd, Kubernetes) never loads rich."""
    from rich.logging import RichHandler

    from offload.cli.output import err_console

    return RichHandler(console=err_console, show_path=False, rich_tracebacks=True)


def plain_text_logs(level: str) -> None:
    """One line per record with its time and level, unwrapped: what a log file or
    a log collector reads best, and what costs nothing to import."""
    from offload.observability.logs import TextFormatter, configure

    handler = logging.StreamHandler()
    configure(level, "text", handler)
    handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-8s %(message)s"))


def log_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--log-level`` and ``--log-format``, shared by ``worker`` and ``web``."""
    fn = click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text",
                      show_default=True, help="json: one JSON object per line.")(fn)  # fmt: skip
    return click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
                        default="info")(fn)  # fmt: skip


def parse_listen(text: str | None, port: int | None) -> tuple[str, int] | None:
    """``--metrics-port 9100`` (loopback), or with ``--metrics-host 0.0.0.0``."""
    if port is None:
        return None
    return (text or "127.0.0.1", port)


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
@click.option("--poll-interval", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Seconds between looks for due jobs when no wake-up arrives "
              "(the backend's notifications usually come first).")  # fmt: skip
@click.option("--grace", type=click.FloatRange(min=0), metavar="S",
              help="Seconds running jobs may finish after a stop request.")  # fmt: skip
@click.option("--broker-wait", type=click.FloatRange(min=0), metavar="S",
              help="Seconds to keep trying a backend that cannot be reached at start "
              "[default: 300; 0 fails at once; a --burst run always fails at once].")  # fmt: skip
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="N",
    help="Serve /metrics (Prometheus) and /healthz on this port.",
)
@click.option("--metrics-host", metavar="HOST", help="Interface for --metrics-port "
              "[default: 127.0.0.1].")  # fmt: skip
@log_options
@target_options
@click.pass_obj
def worker(state: CliState, /, spec: str | None, queues: str | None, log_level: str,
           log_format: str, metrics_port: int | None, metrics_host: str | None,
           **options: Any) -> None:  # fmt: skip
    """Run a worker for the tasks of MODULE:APP."""
    if spec:
        state.app_spec, state.app_positional = spec, True
    app = build_app(state, need_tasks=True)
    served = parse_queues(queues)
    setup_logging(log_level, log_format)
    warn_unserved(app, served)
    listen = parse_listen(metrics_host, metrics_port)
    if listen is not None:
        require_prometheus(app)
    run(app, lambda a: run_worker(a, served, metrics=listen, **options))


def require_prometheus(app: App) -> None:
    """Install the metrics middleware before the worker starts, or say which extra
    is missing; a worker that silently served no metrics would page nobody."""
    try:
        from offload.integrations.prometheus import install
    except ModuleNotFoundError as exc:
        raise missing_extra("--metrics-port", "prometheus", exc.name) from exc
    install(app)


async def run_worker(
    app: App,
    queues: list[str],
    *,
    concurrency: int | None,
    burst: bool,
    fetch_batch: int | None,
    poll_interval: float | None,
    grace: float | None,
    broker_wait: float | None = None,
    metrics: tuple[str, int] | None = None,
) -> None:
    # Imported here: the read-only commands should not pay for the worker's imports.
    from offload.observability.server import MetricsServer
    from offload.worker import ServiceDied, Worker

    worker = Worker(
        app, queues, concurrency=concurrency, burst=burst, fetch_batch=fetch_batch,
        poll_interval=poll_interval, grace_period=grace, handle_signals=True,
        broker_wait=broker_wait,
    )  # fmt: skip
    server = MetricsServer(app, *metrics) if metrics is not None else None
    if server is not None:
        try:
            await server.start()
        except OSError as exc:
            raise click.ClickException(f"cannot serve metrics on {server.host}:{server.port}: "
                                       f"{exc.strerror or exc}") from exc  # fmt: skip
    freeze_startup()
    try:
        await worker.run()
    except ServiceDied as exc:
        raise click.ClickException(f"worker stopped: {exc}: {exc.__cause__!r}") from exc
    finally:
        if server is not None:
            await server.close()
    log.info("worker stopped after %d job(s)", worker.processed)
