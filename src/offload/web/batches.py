"""Batches over HTTP: create one with its continuations, read its counts, add
jobs while it runs, cancel what has not ended.

A tenant token reaches only its own tenant's batches: another tenant's batch is a
404, as another tenant's job is, and a batch it creates lands in its own tenant
whatever the body says. Every job of a batch is validated before the batch is
stored, so a bad member leaves nothing half-created behind.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.app import App
from offload.errors import BatchFinishedError, NotFoundError
from offload.job import DEFAULT_TENANT, Batch, JobQuery, NewJob
from offload.lifecycle import State
from offload.task import Options
from offload.web import params as p
from offload.web.api import JSON, PREFIX, build_job
from offload.web.context import offload_app, principal, root
from offload.web.openapi import (
    BAD,
    BATCH_MISSING,
    BODY_PROBLEMS,
    NSTR,
    Component,
    Operation,
    Schema,
    array,
    body,
    header,
    obj,
    param,
    problem,
    route,
)
from offload.web.problems import Problem
from offload.web.resources import BATCH, JOB_PAGE, JOB_SUMMARY, batch_json, job_summary


def _missing(batch_id: str) -> Problem:
    return Problem(404, f"no batch {batch_id!r}", kind="batch-not-found")


async def _batch(request: Request, batch_id: str) -> Batch:
    try:
        return await offload_app(request).get_batch_async(batch_id, principal(request).tenant)
    except NotFoundError:
        raise _missing(batch_id) from None


def _members(app: App, jobs: list[p.MemberJob]) -> list[NewJob]:
    return [
        build_job(app, j.task, j.args, Options(
            queue=j.options.queue, priority=j.options.priority, delay=j.options.delay,
            unique_key=j.options.unique_key, max_attempts=j.options.max_attempts,
            timeout=j.options.timeout,
        ), f"jobs.{i}")
        for i, j in enumerate(jobs)
    ]  # fmt: skip


def _continuations(app: App, jobs: list[p.ThenJob]) -> list[NewJob]:
    return [
        build_job(app, j.task, j.args, Options(
            queue=j.options.queue, priority=j.options.priority,
            max_attempts=j.options.max_attempts, timeout=j.options.timeout,
        ), f"then.{i}")
        for i, j in enumerate(jobs)
    ]  # fmt: skip


def _location(request: Request, batch_id: str) -> str:
    return f"{root(request)}{PREFIX}/batches/{batch_id}"


async def create(request: Request) -> Response:
    who = principal(request)
    body: p.BatchBody = p.validated(p.BatchBody, await p.json_body(request))
    app = offload_app(request)
    members = _members(app, body.jobs)
    then = _continuations(app, body.then)
    tenant = who.tenant if who.tenant is not None else (body.tenant or DEFAULT_TENANT)
    batch = await app.batch_async(members, then=then, tenant=tenant, name=body.name)
    headers = {"Location": _location(request, batch.id)}
    return JSON(batch_json(batch, root(request)), 201, headers=headers)


async def list_batches(request: Request) -> Response:
    who = principal(request)
    limit = p.limit(request)
    found = await offload_app(request).batches_async(
        who.scope(p.text(request, "tenant")), unfinished=p.flag(request, "unfinished"),
        before_id=p.before(request, "batch"), limit=limit,
    )  # fmt: skip
    following = found[-1].id if len(found) == limit else None
    return JSON({"batches": [batch_json(b, root(request)) for b in found],
                 "next_before": following})  # fmt: skip


async def get_batch(request: Request) -> Response:
    return JSON(batch_json(await _batch(request, p.batch_id(request)), root(request)))


async def batch_jobs(request: Request) -> Response:
    batch = await _batch(request, p.batch_id(request))
    query = JobQuery(tenant=principal(request).tenant, batch_id=batch.id,
                     states=p.states(request), before_id=p.before(request),
                     limit=p.limit(request))  # fmt: skip
    jobs = await offload_app(request).list_jobs_async(query)
    following = jobs[-1].id if len(jobs) == query.limit else None
    return JSON({"jobs": [job_summary(j, root(request)) for j in jobs], "next_before": following})


async def append(request: Request) -> Response:
    batch_id = p.batch_id(request)
    tenant = principal(request).tenant
    body: p.AppendBody = p.validated(p.AppendBody, await p.json_body(request))
    app = offload_app(request)
    members = _members(app, body.jobs)
    try:
        jobs = await app.batch_append_async(batch_id, members, tenant)
    except NotFoundError:
        raise _missing(batch_id) from None
    except BatchFinishedError as exc:
        raise Problem(409, str(exc), kind="batch-finished", batch_id=batch_id) from None
    batch = await _batch(request, batch_id)
    return JSON({"batch": batch_json(batch, root(request)),
                 "jobs": [job_summary(j, root(request)) for j in jobs]}, 201)  # fmt: skip


async def cancel(request: Request) -> Response:
    batch_id = p.batch_id(request)
    try:
        batch = await offload_app(request).cancel_batch_async(batch_id, principal(request).tenant)
    except NotFoundError:
        raise _missing(batch_id) from None
    # Running jobs stop when their workers see the request: accepted, not done.
    code = 202 if batch.counts.get(State.RUNNING, 0) else 200
    return JSON(batch_json(batch, root(request)), code)


# the document ----------------------------------------------------------------------

BATCH_PAGE = Component("BatchPage", obj({"batches": array(BATCH), "next_before": NSTR}))
APPENDED = Component("BatchAppended", obj({"batch": BATCH, "jobs": array(JOB_SUMMARY)}))
INVALID_JOBS = {"422": problem("Unknown task, invalid arguments or options (named)")}
ONE_BATCH = {"200": body("The batch", BATCH), **BATCH_MISSING}
LIST_PARAMS: list[str | Schema] = [
    "tenant",
    param(
        "unfinished",
        {"type": "string", "enum": ["true", "false", "1", "0"]},
        "Only batches whose continuations have not fired yet",
    ),
    param("before", {"type": "string"}, "Page: batches older than this id (a UUID)"),
    "limit",
]

CREATE = Operation(
    "Create a batch of jobs, with jobs to run once they have all ended",
    {
        "201": body("Created", BATCH, {"Location": header("The batch")}),
        **BODY_PROBLEMS,
        **INVALID_JOBS,
    },
    request=p.BatchBody,
)
APPEND = Operation(
    "Add jobs to a batch that has not finished",
    {
        "201": body("The jobs added and the batch", APPENDED),
        **BODY_PROBLEMS,
        **BATCH_MISSING,
        "409": problem("The batch has finished"),
        **INVALID_JOBS,
    },
    ["batch_id"],
    request=p.AppendBody,
)
CANCEL = Operation(
    "Cancel every job of the batch that has not ended",
    {**ONE_BATCH, "202": body("Some were running; their workers were asked to stop", BATCH)},
    ["batch_id"],
)


def routes() -> list[BaseRoute]:
    batches, one = f"{PREFIX}/batches", f"{PREFIX}/batches/{{batch_id}}"
    return [
        route(batches, create, "POST", CREATE),
        route(batches, list_batches, "GET", Operation("List batches, newest first",
              {"200": body("A page of batches", BATCH_PAGE), **BAD}, LIST_PARAMS)),
        route(one, get_batch, "GET",
              Operation("A batch with its counts and progress", ONE_BATCH, ["batch_id"])),
        route(f"{one}/jobs", batch_jobs, "GET", Operation("The batch's jobs, newest first",
              {"200": body("A page of jobs", JOB_PAGE), **BAD, **BATCH_MISSING},
              ["batch_id", "state", "before", "limit"])),
        route(f"{one}/jobs", append, "POST", APPEND),
        route(f"{one}/cancel", cancel, "POST", CANCEL),
    ]  # fmt: skip
