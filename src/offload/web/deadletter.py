"""Retry every dead job a filter picks, in one request.

The dead letter page offers "Retry all" for what it shows; doing it job by job
from the browser would take a round trip per job and stop half-way when the tab
closes. Each job is re-driven through the App as ``POST /jobs/{id}/retry`` does,
so the same tenant scoping and lifecycle apply; at most ``limit`` (10,000) jobs go per
request and the answer says whether more are left (``more`` is false when the
limit happened to match what was there).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.job import JobQuery
from offload.lifecycle import State
from offload.web import params as p
from offload.web.api import JSON, PREFIX
from offload.web.context import offload_app, principal
from offload.web.openapi import (
    BODY_PROBLEMS,
    BOOL,
    INT,
    Component,
    Operation,
    body,
    obj,
    problem,
    route,
)

PAGE = 500


async def retry_all(request: Request) -> Response:
    who = principal(request)
    wanted: p.RetryAllBody = p.validated(p.RetryAllBody, await p.json_body(request, empty={}))
    app = offload_app(request)
    query = JobQuery(tenant=who.scope(wanted.tenant), states=frozenset({State.DEAD}),
                     queue=wanted.queue, task=wanted.task, limit=PAGE)  # fmt: skip
    retried = 0
    # Pages go by id, so jobs re-driven on one page (now queued) do not shift the
    # next; a job retried meanwhile by someone else is skipped, not counted.
    before: str | None = None
    while retried < wanted.limit:
        jobs = await app.list_jobs_async(_page(query, before))
        for job in jobs:
            if retried >= wanted.limit:
                break
            if who.sees(job.id) and await app.retry_async(job.id, query.tenant) is not None:
                retried += 1
        if len(jobs) < PAGE:
            break
        before = jobs[-1].id
    more = retried >= wanted.limit and await _any_left(request, query)
    return JSON({"retried": retried, "more": more})


async def _any_left(request: Request, query: JobQuery) -> bool:
    """Whether a dead job the caller may retry is still there once the limit
    was reached: a limit that matched the dead letter exactly leaves none."""
    who = principal(request)
    before: str | None = None
    while True:
        jobs = await offload_app(request).list_jobs_async(_page(query, before))
        if any(who.sees(job.id) for job in jobs):
            return True
        if len(jobs) < PAGE:
            return False
        before = jobs[-1].id


def _page(query: JobQuery, before: str | None) -> JobQuery:
    return JobQuery(tenant=query.tenant, states=query.states, queue=query.queue,
                    task=query.task, before_id=before, limit=query.limit)  # fmt: skip


RETRIED = Component("RetriedJobs", obj({"retried": INT, "more": BOOL}))
RETRY_ALL = Operation(
    "Queue again every dead job matching the filter (a tenant token: its own)",
    {"200": body("How many were queued again", RETRIED), **BODY_PROBLEMS,
     "422": problem("Invalid filter")},
    request=p.RetryAllBody,
)  # fmt: skip


def routes() -> list[BaseRoute]:
    return [route(f"{PREFIX}/dead/retry", retry_all, "POST", RETRY_ALL)]
