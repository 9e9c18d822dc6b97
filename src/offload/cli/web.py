"""``offload web MODULE:APP``: serve the HTTP API, live streams and dashboard.

The app spec is optional: without it the server reads and steers stored jobs of
``--backend`` but cannot enqueue (no tasks are known). Tokens map to tenants
(``--token secret=acme``); ``--token secret=*`` is an admin. Without any token the
server is open, so it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib

import click

from offload.cli.runtime import CliState, build_app, target_options
from offload.cli.worker import log_options, setup_logging


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
              help="Bearer token scoped to a tenant ('*' = admin); repeatable.")  # fmt: skip
@log_options
@target_options
@click.pass_context
def web(ctx: click.Context, app_spec: str | None, host: str, port: int,
        tokens: tuple[str, ...], log_level: str, log_format: str) -> None:  # fmt: skip
    """Serve the HTTP API and dashboard of an app."""
    try:
        import uvicorn

        from offload.web import create_app
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the web server needs an extra: pip install 'offload[web]' (missing {exc.name!r})"
        ) from exc
    state = ctx.ensure_object(CliState)
    if app_spec:
        state.app_spec = app_spec
    app = build_app(state, need_tasks=app_spec is not None)
    setup_logging(log_level, log_format)
    with contextlib.suppress(ModuleNotFoundError):  # /metrics then says which extra
        from offload.integrations.prometheus import install

        install(app)
    # log_config=None: uvicorn's loggers go through the root handler set up above,
    # so --log-format json covers the access log too.
    uvicorn.run(create_app(app, tokens=parse_tokens(tokens) or None), host=host, port=port,
                log_config=None, log_level=log_level)  # fmt: skip
