"""Cron schedules over HTTP, named ``(tenant, id)`` as the App names them.

The tenant is part of a schedule's name, so reading, writing and deleting one
takes it as ``?tenant=`` (admins; ``default`` when left out). A tenant token
always works in its own tenant and its ``?tenant=`` is ignored, so two tenants
may each keep a ``nightly`` without ever seeing the other's.

A rule is checked here before the App sees it, field by field, so a bad one is a
422 naming ``cron`` or ``timezone``: the App reports both as one ``ValueError``,
lets an IANA directory name such as ``America`` escape as an ``OSError``, and
only finds out that a rule never fires (``0 0 30 2 *``) once it computes the
next firing.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.errors import NotFoundError
from offload.job import DEFAULT_TENANT, Schedule
from offload.schedule import InvalidCronError, InvalidTimezoneError, upcoming_firings
from offload.task import Options
from offload.web import params as p
from offload.web.api import JSON, PREFIX, build_job
from offload.web.context import backend, offload_app, principal, root
from offload.web.openapi import (
    BAD,
    NSTR,
    STR,
    Component,
    Operation,
    array,
    body,
    header,
    obj,
    param,
    problem,
    route,
)
from offload.web.problems import Problem
from offload.web.resources import SCHEDULE, schedule_json


def _tenant(request: Request) -> str:
    """The tenant whose schedule the path names."""
    who = principal(request)
    requested = p.text(request, "tenant")
    return who.tenant if who.tenant is not None else (requested or DEFAULT_TENANT)


def _missing(schedule_id: str, tenant: str) -> Problem:
    return Problem(404, f"no schedule {schedule_id!r} in tenant {tenant!r}",
                   kind="schedule-not-found")  # fmt: skip


def _json(request: Request, schedule: Schedule, count: int) -> dict[str, Any]:
    try:
        args = offload_app(request).serializer.loads(schedule.payload)
    except Exception:  # any serializer may raise anything on bad bytes
        args = None
    return schedule_json(schedule, upcoming_firings(schedule, count), args, root(request))


def _bad_rule(field: str, kind: str, detail: str) -> Problem:
    return Problem(422, detail, kind=kind, errors=[{"field": field, "message": detail}])


async def list_schedules(request: Request) -> Response:
    tenant = principal(request).scope(p.text(request, "tenant"))
    count = p.upcoming(request)
    size, after = p.limit(request, default=100), _after(request)
    found = sorted(await offload_app(request).schedules_async(tenant),
                   key=lambda s: (s.tenant, s.id))  # fmt: skip
    page = [s for s in found if after is None or (s.tenant, s.id) > after][:size]
    # Next firings are pure CPU (2,000 schedules x 50 firings took seconds):
    # computed in a thread, and for one page only, so every other request keeps
    # being served.
    shown = await asyncio.to_thread(lambda: [_json(request, s, count) for s in page])
    following = f"{page[-1].tenant}/{page[-1].id}" if len(page) == size else None
    return JSON({"schedules": shown, "next_after": following})


def _after(request: Request) -> tuple[str, str] | None:
    """The page cursor ``tenant/id`` of the last schedule seen; schedule ids
    hold no ``/``, so the id is what follows the last one."""
    raw = p.text(request, "after")
    if raw is None:
        return None
    tenant, slash, schedule_id = raw.rpartition("/")
    if not slash or not schedule_id:
        raise Problem(400, "query parameter 'after' must be a cursor 'tenant/id' from next_after",
                      kind="bad-parameter", parameter="after")  # fmt: skip
    return tenant, schedule_id


async def get_schedule(request: Request) -> Response:
    schedule_id = p.schedule_id(request)
    tenant = _tenant(request)
    count = p.upcoming(request)
    try:
        found = await offload_app(request).get_schedule_async(schedule_id, tenant)
    except NotFoundError:
        raise _missing(schedule_id, tenant) from None
    return JSON(_json(request, found, count))


async def put_schedule(request: Request) -> Response:
    schedule_id = p.schedule_id(request, creating=True)
    tenant = _tenant(request)
    body: p.ScheduleBody = p.validated(p.ScheduleBody, await p.json_body(request))
    app = offload_app(request)
    build_job(app, body.task, body.args, Options(tenant=tenant))
    store = await backend(request)
    args, kwargs = (body.args, {}) if isinstance(body.args, list) else ([], body.args)
    existed = await store.schedule_get(schedule_id, tenant) is not None
    o = body.options
    try:
        stored = await app.schedule_async(
            schedule_id, body.task, body.cron, args=args, kwargs=kwargs, timezone=body.timezone,
            unique=body.unique, tenant=tenant, queue=o.queue, priority=o.priority,
            max_attempts=o.max_attempts, timeout=o.timeout, from_json=True,
            description=body.description,
        )  # fmt: skip
    except InvalidTimezoneError as exc:
        raise _bad_rule("timezone", "invalid-timezone", str(exc)) from None
    except InvalidCronError as exc:
        raise _bad_rule("cron", "invalid-cron", str(exc)) from None
    shape = _json(request, stored, p.upcoming(request))
    if existed:
        return JSON(shape)
    location = f"{root(request)}{PREFIX}/schedules/{quote(schedule_id, safe='')}"
    return JSON(shape, 201, headers={"Location": f"{location}?tenant={quote(tenant, safe='')}"})


async def delete_schedule(request: Request) -> Response:
    schedule_id = p.schedule_id(request)
    tenant = _tenant(request)
    if not await offload_app(request).unschedule_async(schedule_id, tenant):
        raise _missing(schedule_id, tenant)
    return Response(status_code=204)


# the document ----------------------------------------------------------------------

SCHEDULES = Component("Schedules", obj({"schedules": array(SCHEDULE), "next_after": NSTR}))
AFTER = param("after", STR, "Page: schedules after this cursor (``next_after`` of the last page)")
MISSING = {"404": problem("No such schedule in that tenant, or the id is malformed")}
NEXT = param("next", {"type": "integer", "minimum": 1, "maximum": 50},
             "How many next firings to list (default 5)")  # fmt: skip
ONE_PARAMS = [
    param("schedule_id", STR, "The schedule's id, unique within its tenant", "path"),
    param(
        "tenant",
        STR,
        "The schedule's tenant (admins; default `default`; a tenant token always uses its own)",
    ),
]

PUT = Operation(
    "Create or replace a schedule",
    {
        "200": body("Replaced", SCHEDULE),
        "201": body("Created", SCHEDULE, {"Location": header("It")}),
        "400": problem("The body is not JSON, or the id or a parameter is not valid"),
        "404": problem("The path does not name a schedule"),
        "413": problem("The body is too large"),
        "422": problem("Bad cron rule, time zone, task or arguments (named)"),
    },
    [*ONE_PARAMS, NEXT],
    request=p.ScheduleBody,
)


def routes() -> list[BaseRoute]:
    schedules, one = f"{PREFIX}/schedules", f"{PREFIX}/schedules/{{schedule_id}}"
    return [
        route(schedules, list_schedules, "GET", Operation("Schedules with their next firings",
              {"200": body("Schedules", SCHEDULES), **BAD}, ["tenant", NEXT, "limit", AFTER])),
        route(one, get_schedule, "GET", Operation("A schedule",
              {"200": body("The schedule", SCHEDULE), **BAD, **MISSING}, [*ONE_PARAMS, NEXT])),
        route(one, put_schedule, "PUT", PUT),
        route(one, delete_schedule, "DELETE", Operation(
              "Delete a schedule (the jobs it enqueued stay)",
              {"204": {"description": "Deleted"}, **BAD, **MISSING}, ONE_PARAMS)),
    ]  # fmt: skip
