"""The settings of ``offload web`` as one value, and the app built from them, in
the first process or in each of ``--workers``' processes.

uvicorn's supervisor starts every server process afresh (spawn, not fork: a
forked event loop, pool or SQLite connection is not safe to reuse), so a process
cannot be handed the app object; it gets these settings through its environment
and builds the same app. The environment is the process's own, readable only by
its user, as ``OFFLOAD_WEB_TOKENS`` already is.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from offload.cli.runtime import CliState, build_app, freeze_startup
from offload.cli.worker import setup_logging

if TYPE_CHECKING:
    from starlette.applications import Starlette

ENV = "OFFLOAD_WEB_PROCESS"


@dataclass(frozen=True)
class ServeSettings:
    backend_url: str | None
    app_spec: str | None
    app_positional: bool
    tokens: dict[str, str | None]
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    log_level: str = "info"
    log_format: str = "text"


def build_served(settings: ServeSettings) -> Starlette:
    """The web app ``offload web`` serves, with its logging and metrics."""
    from offload.web import create_app

    state = CliState(backend_url=settings.backend_url, app_spec=settings.app_spec,
                     app_positional=settings.app_positional)  # fmt: skip
    app = build_app(state, need_tasks=settings.app_spec is not None)
    setup_logging(settings.log_level, settings.log_format)
    with contextlib.suppress(ModuleNotFoundError):  # /metrics then says which extra
        from offload.integrations.prometheus import install

        install(app)
    served = create_app(app, tokens=settings.tokens or None,
                        allowed_hosts=settings.allowed_hosts or None,
                        allowed_origins=settings.allowed_origins)  # fmt: skip
    freeze_startup()
    return served


def export(settings: ServeSettings) -> None:
    """Hand ``settings`` to the server processes about to be started."""
    os.environ[ENV] = json.dumps(asdict(settings))


def from_environment() -> Starlette:
    """uvicorn's app factory in each server process."""
    raw = os.environ.get(ENV)
    if raw is None:
        raise RuntimeError(f"{ENV} is not set: this factory serves `offload web --workers`")
    return build_served(ServeSettings(**json.loads(raw)))
