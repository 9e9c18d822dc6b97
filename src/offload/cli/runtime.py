"""What every command shares: which backend and app it talks to, and how one
command's async work runs and is cleaned up.

Each command runs its coroutine with ``asyncio.run`` and closes the app's backend
before returning, so a CLI process never leaves a connection or a SQLite write
lock behind. Expected failures become ``click`` exceptions, which fixes the exit
codes in one place: ``ClickException`` exits 1, ``UsageError`` exits 2.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from offload.app import App
from offload.cli.loading import AppSpecError, load_app
from offload.errors import ConfigurationError, OffloadError
from offload.observability.logs import redact

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """The global ``--backend`` and ``--app``, possibly overridden per command."""

    backend_url: str | None = None
    app_spec: str | None = None
    # Given as the command's argument (``offload worker mod:app``), not as
    # --app, so its errors do not name an option the user never typed.
    app_positional: bool = False


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(CliState), field, value)

    return callback


def target_options(fn: F) -> F:
    """``--backend``/``--app`` after the command name too (``offload jobs list
    --backend …``), as people type them; the group's options read the environment."""
    fn = click.option(
        "--app", "app_override", metavar="MODULE:ATTR", expose_value=False, is_eager=True,
        callback=_store("app_spec"), help="The App whose tasks and backend to use.",
    )(fn)  # fmt: skip
    return click.option(
        "--backend", "backend_override", metavar="URL", expose_value=False, is_eager=True,
        callback=_store("backend_url"), help="Backend URL (overrides the app's).",
    )(fn)  # fmt: skip


def build_app(state: CliState, *, need_tasks: bool = False, read_only: bool = False) -> App:
    """The app the command works on; ``read_only`` commands refuse a store that
    does not exist rather than create an empty one and report it empty."""
    app = _build_app(state, need_tasks=need_tasks)
    if read_only:
        _require_store(app)
    return app


def _require_store(app: App) -> None:
    """A SQLite file is made on first open; a read must not make one (a typo in
    the path would then show "0 jobs" and leave a stray file behind)."""
    path = app.describe().get("path")
    if not isinstance(path, str) or path == ":memory:" or path.startswith("file:"):
        return
    where = Path(path)
    if not where.parent.is_dir():
        raise click.ClickException(
            f"no SQLite database at {path}: the directory {where.parent} does not exist"
        )
    if not where.exists():
        # Nothing stored yet is a true answer ("0 jobs"), read from an empty
        # store in memory so that no file appears.
        click.echo(f"note: no SQLite database at {path} yet; nothing is stored there", err=True)
        app.use_backend("memory://")


def _build_app(state: CliState, *, need_tasks: bool = False) -> App:
    """The app named by ``--app`` (pointed at ``--backend`` when given), or a bare
    ``App(url)`` for commands that only read and steer stored jobs."""
    try:
        if state.app_spec:
            return _with_backend(load_app(state.app_spec), state.backend_url)
        if need_tasks:
            raise click.UsageError(
                "this command needs the app's tasks: pass --app MODULE:ATTR or set OFFLOAD_APP"
            )
        return App(state.backend_url)
    except AppSpecError as exc:
        raise click.UsageError(str(exc) if state.app_positional else f"--app: {exc}") from exc
    except ConfigurationError as exc:
        raise click.UsageError(redact(str(exc))) from exc


def _with_backend(app: App, url: str | None) -> App:
    if url and url != app.backend_url:
        app.use_backend(url)
    return app


def run(app: App, work: Callable[[App], Awaitable[T]]) -> T:
    """Run one command's async work, close the backend, map offload's errors."""

    async def main() -> T:
        try:
            return await work(app)
        finally:
            await app.close_async()

    try:
        return asyncio.run(main())
    except OffloadError as exc:  # a driver's message may quote the URL it was given
        raise click.ClickException(redact(str(exc))) from exc


def freeze_startup() -> None:
    """Puts what start-up built (modules, the app, its tasks, the web routes) out
    of the garbage collector's reach, as CPython's docs advise for a long-running
    server: a full collection otherwise walks all of it again every few seconds
    under load. Behind ``offload web`` that was a 40 ms pause every so often,
    which set the p99 (51 ms against a p90 of 12 ms; 12 ms with it frozen) and
    cost a tenth of its throughput. Called once start-up is done, by the
    ``web`` and ``worker`` commands, which own their process."""
    gc.collect()
    gc.freeze()


def missing_extra(what: str, extra: str, module: str | None) -> click.UsageError:
    """A missing extra is a set-up problem like a bad backend URL (whose missing
    driver ``ConfigurationError`` reports): exit 2 for every one of them."""
    return click.UsageError(
        f"{what} needs an extra: pip install 'offload[{extra}]' (missing {module!r})"
    )


def check_job_id(job_id: str) -> str:
    """Refuse what cannot be a job id before asking the backend, whose column
    type may reject it with a less helpful error; it is a 'not found' (exit 1)."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise click.ClickException(f"no job {job_id!r}: not a job id (a UUID)") from None
    return job_id
