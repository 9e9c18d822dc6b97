"""Pause and resume over HTTP: stop and restart leasing in a scope.

A scope is ``{tenant?, queue?}`` as in ``offload.job.Pause``: neither is
everything, a queue alone is that queue of every tenant. Those two reach every
tenant's jobs, so only an admin may pause or resume them; a tenant token may name
its own tenant, with or without a queue, and nothing else (403). The body must say
the scope even when it is everything, so a stray empty POST stops nothing.

Resuming a scope that is not paused is a ``409``: the scope is there, it is just
not in the state the action starts from, as with cancelling an ended job.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.web import params as p
from offload.web.api import JSON, PREFIX
from offload.web.auth import Principal
from offload.web.context import offload_app, principal
from offload.web.openapi import (
    BAD,
    BODY_PROBLEMS,
    Component,
    Operation,
    array,
    body,
    obj,
    problem,
    route,
)
from offload.web.problems import Problem
from offload.web.resources import PAUSE, pause_json


async def _scope(request: Request) -> tuple[str | None, str | None]:
    who = principal(request)
    body: p.PauseBody = p.validated(p.PauseBody, await p.json_body(request))
    _allowed(who, body.tenant)
    return body.tenant, body.queue


def _allowed(who: Principal, tenant: str | None) -> None:
    if who.admin:
        return
    if tenant is None:
        raise Problem(403, "pausing or resuming every tenant (everything, or a queue of all "
                      "tenants) needs an admin token", kind="forbidden")  # fmt: skip
    if tenant != who.tenant:
        raise Problem(403, "a tenant token may pause and resume only its own tenant",
                      kind="forbidden")  # fmt: skip


def _describe(tenant: str | None, queue: str | None) -> str:
    if tenant is None:
        return "everything" if queue is None else f"queue {queue!r} of every tenant"
    return f"tenant {tenant!r}" if queue is None else f"queue {queue!r} of tenant {tenant!r}"


async def pauses(request: Request) -> Response:
    """The pauses in force that hold back the caller's jobs: those of its tenant
    and those of every tenant, which a tenant sees but may not lift."""
    tenant = principal(request).scope(p.text(request, "tenant"))
    found = await offload_app(request).pauses_async(None)
    shown = [x for x in found if tenant is None or x.tenant in (None, tenant)]
    return JSON({"pauses": [pause_json(x) for x in shown]})


async def pause(request: Request) -> Response:
    tenant, queue = await _scope(request)
    made = await offload_app(request).pause_async(tenant=tenant, queue=queue)
    return JSON(pause_json(made))


async def resume(request: Request) -> Response:
    tenant, queue = await _scope(request)
    if not await offload_app(request).resume_async(tenant=tenant, queue=queue):
        raise Problem(409, f"{_describe(tenant, queue)} is not paused", kind="not-paused",
                      tenant=tenant, queue=queue)  # fmt: skip
    return Response(status_code=204)


# the document ----------------------------------------------------------------------

PAUSES = Component("Pauses", obj({"pauses": array(PAUSE)}))
NOT_YOURS = {"403": problem("Not a scope of the token's own tenant")}
INVALID = {"422": problem("Invalid scope")}
PAUSE_OP = Operation(
    "Stop leasing in a scope ({} is everything); idempotent",
    {"200": body("The pause", PAUSE), **BODY_PROBLEMS, **NOT_YOURS, **INVALID},
    request=p.PauseBody,
)
RESUME = Operation(
    "Lift the pause of exactly this scope",
    {
        "204": {"description": "Resumed"},
        **BODY_PROBLEMS,
        **NOT_YOURS,
        "409": problem("The scope is not paused"),
        **INVALID,
    },
    request=p.PauseBody,
)


def routes() -> list[BaseRoute]:
    return [
        route(f"{PREFIX}/pauses", pauses, "GET", Operation("Pauses holding back the caller's "
              "jobs", {"200": body("Pauses", PAUSES), **BAD}, ["tenant"])),
        route(f"{PREFIX}/pause", pause, "POST", PAUSE_OP),
        route(f"{PREFIX}/resume", resume, "POST", RESUME),
    ]  # fmt: skip
