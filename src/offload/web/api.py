"""The JSON API under ``/api/v1``: the polling protocol of a long-running
operation, and resources to read and steer jobs.

Protocol: ``POST /jobs`` answers ``202`` with ``Location`` of the status; the
status answers ``204`` + ``Retry-After`` while the job has not ended, ``303`` to
the output once it succeeded, and a ``409`` problem once it is dead or cancelled
(a 4xx, so a client that raises on errors stops polling and sees why).

Every read and action passes the caller's tenant to the backend, so a tenant
token can neither see nor touch another tenant's job: to it, such a job is a 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from offload.app import App
from offload.errors import (
    InvalidOptionError,
    JobEndedError,
    JobNotFoundError,
    PayloadError,
    UnknownTaskError,
)
from offload.job import DEFAULT_TENANT, Job, JobQuery, NewJob
from offload.lifecycle import State
from offload.task import Options
from offload.web import inventory
from offload.web import params as p
from offload.web.context import backend, offload_app, principal, root, shared_answer, shared_reads
from offload.web.encoding import dumps
from offload.web.inventory import QUEUES, TASKS, TENANTS, WORKERS
from offload.web.openapi import (
    ANY,
    BAD,
    BODY_PROBLEMS,
    INT,
    MISSING,
    NSTR,
    PAGE_PARAMS,
    Component,
    Operation,
    array,
    body,
    header,
    obj,
    problem,
    route,
)
from offload.web.problems import Problem
from offload.web.resources import (
    EVENT,
    JOB,
    JOB_PAGE,
    JOB_WITH_EVENTS,
    event_json,
    job_detail,
    job_summary,
)

PREFIX = "/api/v1"


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


async def _job(request: Request, job_id: str) -> Job:
    job = await (await backend(request)).job_get(job_id, principal(request).tenant)
    if job is None:
        raise Problem(404, f"no job {job_id!r}", kind="job-not-found")
    job.serializer = offload_app(request).serializer
    return job


def _status_url(request: Request, job_id: str) -> str:
    return f"{root(request)}{PREFIX}/jobs/{job_id}/status"


# the polling protocol ---------------------------------------------------------------


async def enqueue(request: Request) -> Response:
    who = principal(request)
    body: p.EnqueueBody = p.validated(p.EnqueueBody, await p.json_body(request))
    app = offload_app(request)
    new = build_job(app, body.task, body.args, _options(body.options, who.tenant))
    job = (await app.enqueue_new_async([new]))[0]
    job.serializer = app.serializer
    headers = {"Location": _status_url(request, job.id)}
    return JSON(job_detail(job, root(request)), 202, headers=headers)


def build_job(
    app: App, name: str, args: dict[str, Any] | list[Any], options: Options, where: str = ""
) -> NewJob:
    """A validated job, or a 422 naming what is wrong; ``where`` is the body path
    of the job (``jobs.3``) when the body carries several."""
    try:
        task = app.get_task(name)
        positional, kwargs = (tuple(args), {}) if isinstance(args, list) else ((), args)
        return task.new_job(positional, kwargs, options, from_json=True)
    except UnknownTaskError as exc:
        raise _unfit(exc, "unknown-task", where, "task") from None
    except InvalidOptionError as exc:
        raise _unfit(exc, "invalid-options", where, "options") from None
    except PayloadError as exc:
        raise _unfit(exc, "invalid-arguments", where, "args") from None


def _unfit(exc: Exception, kind: str, where: str, field: str) -> Problem:
    detail = f"{where}: {exc}" if where else str(exc)
    path = f"{where}.{field}" if where else field
    return Problem(422, detail, kind=kind, errors=[{"field": path, "message": str(exc)}])


def _options(o: p.EnqueueOptions, forced_tenant: str | None) -> Options:
    tenant = forced_tenant if forced_tenant is not None else (o.tenant or DEFAULT_TENANT)
    return Options(
        queue=o.queue, priority=o.priority, max_attempts=o.max_attempts, timeout=o.timeout,
        delay=o.delay, tenant=tenant, unique_key=o.unique_key,
    )  # fmt: skip


async def status(request: Request) -> Response:
    job = await _job(request, p.job_id(request))
    if not job.ended:
        wait = await _retry_after(request, job)
        return Response(status_code=204, headers={"Retry-After": str(wait)})
    if job.state is State.SUCCEEDED:
        location = f"{root(request)}{PREFIX}/jobs/{job.id}/output"
        return Response(status_code=303, headers={"Location": location})
    raise _ended_problem(request, job)


async def _retry_after(request: Request, job: Job) -> int:
    """Seconds to wait before polling again: until a scheduled job is due (capped
    at ``retry_after_max``), else ``retry_after`` (``OFFLOAD_RETRY_AFTER``)."""
    settings = offload_app(request).settings
    if job.state is not State.SCHEDULED:
        return settings.retry_after
    wait = (job.run_at - await (await backend(request)).now()).total_seconds()
    return int(min(max(wait, settings.retry_after), settings.retry_after_max))


def _ended_problem(request: Request, job: Job) -> Problem:
    error = None if job.error is None else job.error.to_dict()
    why = f": {job.error.type}: {job.error.message}" if job.error else ""
    return Problem(409, f"job {job.id} is {job.state.value}{why}", kind=f"job-{job.state.value}",
                   job_id=job.id, state=job.state.value, error=error,
                   job=f"{root(request)}{PREFIX}/jobs/{job.id}")  # fmt: skip


async def output(request: Request) -> Response:
    job = await _job(request, p.job_id(request))
    if job.state is not State.SUCCEEDED:
        if job.ended:
            raise _ended_problem(request, job)
        raise Problem(409, f"job {job.id} is {job.state.value}, it has no output yet",
                      kind="job-not-finished", job_id=job.id, state=job.state.value,
                      job=f"{root(request)}{PREFIX}/jobs/{job.id}")  # fmt: skip
    return JSON(job_detail(job, root(request))["result"])


# job resources ---------------------------------------------------------------------


@shared_answer
async def list_jobs(request: Request) -> Response:
    return await _listing(request, p.states(request))


@shared_answer
async def list_dead(request: Request) -> Response:
    return await _listing(request, frozenset({State.DEAD}))


async def _listing(request: Request, states: frozenset[State] | None) -> Response:
    who = principal(request)
    query = JobQuery(tenant=who.scope(p.text(request, "tenant")), states=states,
                     queue=p.text(request, "queue"), task=p.text(request, "task"),
                     before_id=p.before(request), limit=p.limit(request))  # fmt: skip
    jobs = await offload_app(request).list_jobs_async(query)
    page = [job_summary(j, root(request)) for j in jobs if who.sees(j.id)]
    following = jobs[-1].id if len(jobs) == query.limit else None
    return JSON({"jobs": page, "next_before": following})


@shared_answer
async def get_job(request: Request) -> Response:
    job = await _job(request, p.job_id(request))
    events = await (await backend(request)).event_list(job.id)
    return JSON(job_detail(job, root(request)) | {"events": [event_json(e) for e in events]})


@shared_answer
async def job_events(request: Request) -> Response:
    job = await _job(request, p.job_id(request))
    events = await (await backend(request)).event_list(job.id, p.after(request), p.limit(request))
    return JSON({"events": [event_json(e) for e in events]})


@shared_answer
async def event_feed(request: Request) -> Response:
    """Events of every visible job after a cursor: what charts are drawn from."""
    tenant = principal(request).scope(p.text(request, "tenant"))
    events = await (await backend(request)).event_feed(p.after(request), tenant, p.limit(request))
    cursor = events[-1].id if events else p.after(request)
    return JSON({"events": [event_json(e) for e in events], "cursor": cursor})


# actions -----------------------------------------------------------------------------


async def cancel(request: Request) -> Response:
    job_id = p.job_id(request)
    tenant = principal(request).tenant
    try:
        job = await offload_app(request).cancel_async(job_id, tenant)
    except JobNotFoundError:
        raise Problem(404, f"no job {job_id!r}", kind="job-not-found") from None
    except JobEndedError as ended:
        state = ended.job.state.value
        raise Problem(409, f"job {job_id} already ended as {state}",
                      kind="already-ended", job_id=job_id, state=state) from None  # fmt: skip
    # A running job stops when its worker sees the request: accepted, not done.
    code = 202 if job.state is State.RUNNING else 200
    return JSON(job_detail(job, root(request)), code)


async def retry(request: Request) -> Response:
    job = await _job(request, p.job_id(request))
    again = await (await backend(request)).job_redrive(job.id, principal(request).tenant)
    if again is None:
        raise Problem(409, f"job {job.id} is {job.state.value}; only dead or cancelled jobs "
                      "can be retried", kind="not-retryable", job_id=job.id,
                      state=job.state.value)  # fmt: skip
    again.serializer = offload_app(request).serializer
    return JSON(job_detail(again, root(request)))


async def purge_dead(request: Request) -> Response:
    if not principal(request).admin:
        # The contract's purge is not scoped by tenant, so only an admin may use it.
        raise Problem(403, "purging the dead letter needs an admin token", kind="forbidden")
    body: p.PurgeBody = p.validated(p.PurgeBody, await p.json_body(request, empty={}))
    store = await backend(request)
    cutoff = await store.now() - timedelta(seconds=body.older_than)
    purged = await store.job_purge(cutoff, [State.DEAD])
    return JSON({"purged": purged})


# derived views -----------------------------------------------------------------------


async def queues(request: Request) -> Response:
    tenant = principal(request).scope(p.text(request, "tenant"))
    store = await backend(request)
    counts = await shared_reads(request).read(("job_counts", tenant),
                                              lambda: store.job_counts(tenant))  # fmt: skip
    return JSON({"queues": inventory.queue_rows(counts)})


async def workers(request: Request) -> Response:
    tenant = principal(request).scope(p.text(request, "tenant"))
    app = offload_app(request)
    running = await inventory.scan(app, tenant, frozenset({State.RUNNING}))
    rows = inventory.worker_rows(running.jobs, await app.workers_async(),
                                 show_idle=principal(request).admin and tenant is None,
                                 admin=principal(request).admin)  # fmt: skip
    return JSON({"workers": rows, "complete": running.complete})


async def tenants(request: Request) -> Response:
    tenant = principal(request).scope(None)
    seen = await inventory.scan(offload_app(request), tenant, None)
    return JSON({"tenants": inventory.tenant_rows(seen.jobs), "complete": seen.complete})


async def tasks(request: Request) -> Response:
    principal(request)
    app = offload_app(request)
    return JSON({"tasks": [inventory.task_row(t) for t in app.tasks.values()]})


async def me(request: Request) -> Response:
    """Who the token is, so a page can offer only the actions it may take."""
    who = principal(request)
    return JSON({"tenant": who.tenant, "admin": who.admin})


# the document ----------------------------------------------------------------------

EVENT_LIST = Component("EventList", obj({"events": array(EVENT)}))
EVENT_FEED = Component("EventFeed", obj({"events": array(EVENT), "cursor": INT}))
PURGE_RESULT = Component("PurgeResult", obj({"purged": INT}))
ME = Component("Me", obj({"tenant": NSTR, "admin": {"type": "boolean"}}))
ONE_JOB = {"200": body("The job", JOB), **MISSING}

ENQUEUE = Operation(
    "Enqueue a job (202, Location of its status)",
    {
        "202": body("Accepted", JOB, {"Location": header("Where to poll the job's status")}),
        **BODY_PROBLEMS,
        "422": problem("Unknown task, invalid arguments or options"),
    },
    request=p.EnqueueBody,
)
STATUS = Operation(
    "Poll a job",
    {
        "204": {
            "description": "Not ended yet; poll again after Retry-After seconds",
            "headers": {"Retry-After": header("Seconds", INT)},
        },
        "303": {
            "description": "Succeeded; see its output",
            "headers": {"Location": header("The output")},
        },
        "409": problem("The job is dead or cancelled (state and error in the body)"),
        **MISSING,
    },
    ["job_id"],
)
OUTPUT = Operation(
    "The result of a succeeded job",
    {
        "200": body("The task's return value, as JSON", ANY),
        "409": problem("The job has not succeeded"),
        **MISSING,
    },
    ["job_id"],
)
CANCEL = Operation(
    "Cancel a job",
    {
        **ONE_JOB,
        "202": body("Running: its worker was asked to stop", JOB),
        "409": problem("The job already succeeded or is dead"),
    },
    ["job_id"],
)
PURGE = Operation(
    "Delete dead jobs (admin)",
    {
        "200": body("How many went", PURGE_RESULT),
        **BODY_PROBLEMS,
        "403": problem("Not an admin token"),
        "422": problem("Invalid body"),
    },
    request=p.PurgeBody,
    request_required=False,
)
WORKERS_OP = Operation(
    "Workers: live ones from the registry (an admin sees idle ones too), and any "
    "whose running jobs the caller may see",
    {"200": body("Workers", WORKERS), **BAD},
    ["tenant"],
)


def routes() -> list[BaseRoute]:
    jobs, one = f"{PREFIX}/jobs", f"{PREFIX}/jobs/{{job_id}}"
    return [
        route(jobs, enqueue, "POST", ENQUEUE),
        route(jobs, list_jobs, "GET", Operation("List jobs, newest first",
              {"200": body("A page of jobs", JOB_PAGE), **BAD}, PAGE_PARAMS)),
        route(one, get_job, "GET", Operation("A job with its events",
              {"200": body("The job and its events", JOB_WITH_EVENTS), **MISSING}, ["job_id"])),
        route(f"{one}/status", status, "GET", STATUS),
        route(f"{one}/output", output, "GET", OUTPUT),
        route(f"{one}/events", job_events, "GET", Operation("Events of a job, oldest first",
              {"200": body("Events", EVENT_LIST), **BAD, **MISSING},
              ["job_id", "after", "limit"])),
        route(f"{one}/cancel", cancel, "POST", CANCEL),
        route(f"{one}/retry", retry, "POST", Operation("Run a dead or cancelled job again",
              {**ONE_JOB, "409": problem("The job is not dead or cancelled")}, ["job_id"])),
        route(f"{PREFIX}/events", event_feed, "GET", Operation(
              "Events of every visible job after a cursor",
              {"200": body("Events", EVENT_FEED), **BAD}, ["after", "limit", "tenant"])),
        route(f"{PREFIX}/queues", queues, "GET", Operation("Jobs per queue and state",
              {"200": body("Queues", QUEUES), **BAD}, ["tenant"])),
        route(f"{PREFIX}/workers", workers, "GET", WORKERS_OP),
        route(f"{PREFIX}/tenants", tenants, "GET",
              Operation("Tenants that own jobs", {"200": body("Tenants", TENANTS)})),
        route(f"{PREFIX}/tasks", tasks, "GET",
              Operation("Registered tasks", {"200": body("Tasks", TASKS)})),
        route(f"{PREFIX}/dead", list_dead, "GET", Operation("The dead letter, newest first",
              {"200": body("Dead jobs", JOB_PAGE), **BAD}, PAGE_PARAMS[1:])),
        route(f"{PREFIX}/dead/purge", purge_dead, "POST", PURGE),
        route(f"{PREFIX}/me", me, "GET", Operation(
              "Who the token is: its tenant, or an admin", {"200": body("", ME)})),
    ]  # fmt: skip
