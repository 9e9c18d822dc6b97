"""``GET /api/v1/stats``: all-time totals per queue and a per-day history.

Scoped like every read: a tenant token sees its own tenant's counts whatever it
asks; an admin may name a tenant or see them all summed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.stats import MAX_DAYS
from offload.web import params as p
from offload.web.api import JSON, PREFIX
from offload.web.context import offload_app, principal
from offload.web.openapi import BAD, INT, STR, Component, Operation, array, body, obj, param, route
from offload.web.problems import Problem

DEFAULT_DAYS = 30


async def stats(request: Request) -> Response:
    tenant = principal(request).scope(p.text(request, "tenant"))
    queue = p.text(request, "queue")
    days = _days(request)
    found = await offload_app(request).stats_async(tenant, queue, days)
    return JSON(found.as_dict())


def _days(request: Request) -> int:
    raw = request.query_params.get("days") or str(DEFAULT_DAYS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise Problem(400, f"query parameter 'days' must be an integer between 1 and {MAX_DAYS}",
                      kind="bad-parameter", parameter="days")  # fmt: skip
    return int(raw)


TALLY = {"processed": INT, "failed": INT, "succeeded": INT, "dead": INT, "cancelled": INT}
STATS = Component("Stats", obj({
    "total": obj(TALLY),
    "queues": {"type": "object", "additionalProperties": obj(TALLY)},
    "days": array(obj({"day": {"type": "string", "format": "date"}, **TALLY})),
}))  # fmt: skip
READ = Operation(
    "All-time job statistics: totals per queue and the last days, kept past the purge",
    {"200": body("Totals and history", STATS), **BAD},
    params=(
        "tenant",
        param("queue", STR, "Only this queue"),
        param(
            "days",
            {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
            f"Days of history, today included (default {DEFAULT_DAYS})",
        ),
    ),
    tags=("jobs",),
)


def routes() -> list[BaseRoute]:
    return [route(f"{PREFIX}/stats", stats, "GET", READ)]
