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
from starlette.routing import BaseRoute, Route

from offload.app import App
from offload.errors import BatchFinishedError, NotFoundError
from offload.job import DEFAULT_TENANT, Batch, JobQuery, NewJob
from offload.lifecycle import State
from offload.task import Options
from offload.web import params as p
from offload.web.api import JSON, PREFIX, build_job
from offload.web.context import offload_app, principal, root
from offload.web.problems import Problem
from offload.web.resources import batch_json, job_summary


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
    tenant = who.tenant or body.tenant or DEFAULT_TENANT
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


def routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/batches", create, methods=["POST"]),
        Route(f"{PREFIX}/batches", list_batches, methods=["GET"]),
        Route(f"{PREFIX}/batches/{{batch_id}}", get_batch, methods=["GET"]),
        Route(f"{PREFIX}/batches/{{batch_id}}/jobs", batch_jobs, methods=["GET"]),
        Route(f"{PREFIX}/batches/{{batch_id}}/jobs", append, methods=["POST"]),
        Route(f"{PREFIX}/batches/{{batch_id}}/cancel", cancel, methods=["POST"]),
    ]
