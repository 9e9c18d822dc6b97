"""``/metrics`` (Prometheus text, admin only once tokens are configured) and
``/healthz`` (no auth and no data: a probe must work without a secret and must
not tell strangers anything).

Metrics name every task and queue of every tenant, so a tenant token may not read
them. Without the ``prometheus`` extra ``/metrics`` answers 501 naming it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.observability.health import health_body
from offload.web.context import offload_app, principal
from offload.web.openapi import Operation, route
from offload.web.problems import Problem


async def metrics(request: Request) -> Response:
    if not principal(request).admin:
        raise Problem(403, "metrics cover every tenant; they need an admin token",
                      kind="forbidden")  # fmt: skip
    try:
        from offload.integrations.prometheus import CONTENT_TYPE, install
    except ModuleNotFoundError as exc:
        raise Problem(501, f"metrics need an extra: pip install 'offload[prometheus]' "
                      f"(missing {exc.name!r})", kind="not-implemented") from exc  # fmt: skip
    app = offload_app(request)
    return Response(await install(app).exposition(app), media_type=CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    status, body = await health_body(offload_app(request))
    return Response(body, status_code=status, media_type="application/json")


def routes() -> list[BaseRoute]:
    return [
        route("/metrics", metrics, "GET", Operation(
            "Prometheus metrics of jobs and queues (admin token when tokens are set)",
            {
                "200": _text("Prometheus text exposition format"),
                "403": _problem("Not an admin token"),
                "501": _problem("The prometheus extra is not installed"),
            },
            tags=("observability",),
        )),
        route("/healthz", healthz, "GET", Operation(
            "Whether the backend answers, for liveness and readiness probes",
            {
                "200": _health("The backend answers", "ok"),
                "503": _health("The backend does not answer", "unavailable"),
            },
            public=True, tags=("observability",),
        )),
    ]  # fmt: skip


def _text(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _health(description: str, status: str) -> dict[str, object]:
    properties = {"status": {"const": status}, "backend": {"type": "string"}}
    schema = {"type": "object", "required": ["status"], "properties": properties}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, object]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"type": "object"}}}}  # fmt: skip
