"""``offload web MODULE:APP``: serve the HTTP API, live streams and dashboard.

The app spec is optional: without it the server reads and steers stored jobs of
``--backend`` but cannot enqueue (no tasks are known). Tokens map to tenants
(``--token secret=acme``); ``--token secret=*`` is an admin. They also come from
``OFFLOAD_WEB_TOKENS`` and ``--token-file``, which ``ps`` does not show. Without
any, the server makes an admin token and prints a link with it once, as Jupyter
does; ``--open`` serves without tokens, loudly, and only to loopback host names
unless ``--allowed-host`` names more.

``--workers N`` serves from N processes sharing the port (uvicorn's supervisor,
which restarts one that dies): one process answers requests one after another,
so 200 arriving at once wait for each other. Every process builds the same app
from the settings the first one was given (``webprocess``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from offload.cli.runtime import CliState, missing_extra, target_options
from offload.cli.webprocess import ServeSettings, build_served, export
from offload.cli.worker import log_options


def gather_tokens(values: tuple[str, ...], token_file: Path | None) -> dict[str, str | None]:
    """Every configured token: environment, then file, then command line."""
    from offload.web import secrets

    try:
        tokens = secrets.from_env(os.environ.get(secrets.ENV))
        if token_file is not None:
            tokens |= secrets.from_file(token_file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return tokens | parse_tokens(values)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def announce(host: str, port: int, tokens: dict[str, str | None], made: str | None,
             open_: bool) -> None:  # fmt: skip
    """What the person starting the server must know, on stderr, once."""
    shown = f"[{host}]" if ":" in host else host
    if made is not None:
        click.echo(f"offload web: open http://{shown}:{port}/?token={made}", err=True)
        click.echo("  (an admin token made for this run; configure your own with --token, "
                   "--token-file or OFFLOAD_WEB_TOKENS)", err=True)  # fmt: skip
    if open_:
        click.echo("offload web: WARNING: --open: no token is required; anyone who can reach "
                   f"{shown}:{port} can read and steer every job", err=True)  # fmt: skip
    if not loopback(host) and open_:
        click.echo(f"offload web: WARNING: listening on {host} without tokens; only "
                   "loopback host names are answered unless --allowed-host adds others",
                   err=True)  # fmt: skip


def parse_tokens(values: tuple[str, ...]) -> dict[str, str | None]:
    tokens: dict[str, str | None] = {}
    for value in values:
        token, sep, tenant = value.partition("=")
        if not sep or not token or not tenant:
            raise click.BadParameter(f"{value!r} is not TOKEN=TENANT (TENANT '*' for admin)",
                                     param_hint="--token")  # fmt: skip
        tokens[token] = None if tenant == "*" else tenant
    return tokens


@click.command("web")
@click.argument("app_spec", metavar="MODULE:APP", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", "tokens", multiple=True, metavar="TOKEN=TENANT",
              help="Bearer token scoped to a tenant ('*' = admin); repeatable. Visible in "
                   "ps: prefer --token-file or OFFLOAD_WEB_TOKENS.")  # fmt: skip
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File of TOKEN=TENANT lines.")  # fmt: skip
@click.option("--open", "open_", is_flag=True,
              help="Serve without any token (local use only).")  # fmt: skip
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Host name the server answers to besides loopback ('*': any); repeatable.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Another origin allowed to steer (https://ops.example); repeatable.",
)
@click.option("--workers", "processes", default=1, show_default=True,
              type=click.IntRange(1, 64),
              help="Server processes sharing the port; not with memory://, whose jobs live "
                   "in one process.")  # fmt: skip
@click.option("--shutdown-grace", default=5, show_default=True,
              type=click.IntRange(0, 3600), metavar="SECONDS",
              help="On SIGTERM, how long requests in flight may finish before live streams "
                   "and the rest are cut (streams never finish on their own).")  # fmt: skip
@log_options
@target_options
@click.pass_context
def web(ctx: click.Context, app_spec: str | None, host: str, port: int,
        tokens: tuple[str, ...], token_file: Path | None, open_: bool,
        allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...],
        processes: int, shutdown_grace: int, log_level: str,
        log_format: str) -> None:  # fmt: skip
    """Serve the HTTP API and dashboard of an app."""
    try:
        import uvicorn

        import offload.web  # noqa: F401  (the extra's presence, checked here)
    except ModuleNotFoundError as exc:
        raise missing_extra("the web server", "web", exc.name) from exc
    state = ctx.ensure_object(CliState)
    if app_spec:
        state.app_spec, state.app_positional = app_spec, True
    configured = gather_tokens(tokens, token_file)
    made = None if configured or open_ else generate_token()
    if made is not None:
        configured = {made: None}
    settings = ServeSettings(
        backend_url=state.backend_url, app_spec=state.app_spec,
        app_positional=state.app_positional, tokens=configured,
        allowed_hosts=list(allowed_hosts), allowed_origins=list(allowed_origins),
        log_level=log_level, log_format=log_format,
    )  # fmt: skip
    # Built here first in every case: a bad app spec or backend fails once, with
    # its message, instead of in every process the supervisor keeps restarting.
    served = build_served(settings)
    if processes > 1 and served.state.offload.describe().get("backend") == "MemoryBackend":
        raise click.UsageError("--workers needs a shared backend: memory:// jobs live in one "
                               "process, so each server process would show its own")  # fmt: skip
    announce(host, port, configured, made, open_ and not configured)
    # log_config=None: uvicorn's loggers go through the root handler set up by
    # build_served, so --log-format json covers the access log too.
    if processes == 1:
        uvicorn.run(served, host=host, port=port, log_config=None, log_level=log_level,
                    timeout_graceful_shutdown=shutdown_grace)  # fmt: skip
        return
    export(settings)
    uvicorn.run("offload.cli.webprocess:from_environment", factory=True, workers=processes,
                host=host, port=port, log_config=None, log_level=log_level,
                timeout_graceful_shutdown=shutdown_grace)  # fmt: skip


def generate_token() -> str:
    from offload.web.secrets import generate

    return generate()
