"""Server-rendered shells of the dashboard pages; the data comes from the JSON API.

Pages carry no job data and need no token: the browser script asks the API (with
the token the user typed, kept in ``sessionStorage``) and follows the live stream,
so the dashboard sees exactly what the API lets that token see.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from offload.lifecycle import State
from offload.web.auth import auth_of
from offload.web.context import root
from offload.web.openapi import BATCH_MISSING, HTML, MISSING, Operation, Schema, route
from offload.web.problems import Problem
from offload.web.workflows import ID as WORKFLOW_ID
from offload.web.workflows import MISSING as FLOW_MISSING

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _render(request: Request, page: str, title: str, **extra: Any) -> Response:
    context = {"page": page, "title": title, "root": root(request),
               "auth_required": auth_of(request).enabled, **extra}  # fmt: skip
    return templates.TemplateResponse(request, f"{page}.html", context)


async def overview(request: Request) -> Response:
    return _render(request, "overview", "Overview")


async def jobs(request: Request) -> Response:
    return _render(request, "jobs", "Jobs")


async def job(request: Request) -> Response:
    raw = str(request.path_params["job_id"])
    try:
        job_id = str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, f"no job {raw!r}", kind="job-not-found") from None
    return _render(request, "job", "Job", job_id=job_id)


async def dead(request: Request) -> Response:
    return _render(request, "dead", "Dead letter")


async def batches(request: Request) -> Response:
    return _render(request, "batches", "Batches")


async def batch(request: Request) -> Response:
    raw = str(request.path_params["batch_id"])
    try:
        batch_id = str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, f"no batch {raw!r}", kind="batch-not-found") from None
    return _render(request, "batch", "Batch", batch_id=batch_id, states=[s.value for s in State])


async def workflows(request: Request) -> Response:
    return _render(request, "workflows", "Workflows")


async def workflow(request: Request) -> Response:
    raw = str(request.path_params["workflow_id"])
    try:
        workflow_id = str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, f"no workflow {raw!r}", kind="workflow-not-found") from None
    return _render(request, "workflow", "Workflow", workflow_id=workflow_id,
                   states=[s.value for s in State])  # fmt: skip


async def schedules(request: Request) -> Response:
    return _render(request, "schedules", "Schedules")


async def queues(request: Request) -> Response:
    return _render(request, "queues", "Queues")


async def widget_demo(request: Request) -> Response:
    return _render(request, "widget_demo", "Widget demo")


def _page(name: str, one: str | Schema | None = None, missing: Mapping[str, Any] = {}) -> Operation:
    """Pages need no token: each calls the API, which checks the caller's.
    ``one`` is the path parameter of a page about one record (a shared name, or
    its schema)."""
    return Operation(f"Dashboard: {name}", {"200": HTML, **missing}, [one] if one else [],
                     public=True, tags=["dashboard"])  # fmt: skip


def routes() -> list[BaseRoute]:
    return [
        route("/", overview, "GET", _page("Overview")),
        route("/jobs", jobs, "GET", _page("Jobs")),
        route("/jobs/{job_id}", job, "GET", _page("a job", "job_id", MISSING)),
        route("/dead", dead, "GET", _page("Dead letter")),
        route("/batches", batches, "GET", _page("Batches")),
        route("/batches/{batch_id}", batch, "GET", _page("a batch", "batch_id", BATCH_MISSING)),
        route("/workflows", workflows, "GET", _page("Workflows")),
        route(
            "/workflows/{workflow_id}",
            workflow,
            "GET",
            _page("a workflow", WORKFLOW_ID, FLOW_MISSING),
        ),
        route("/schedules", schedules, "GET", _page("Schedules")),
        route("/queues", queues, "GET", _page("Queues, pause and resume")),
        route("/widget-demo", widget_demo, "GET", _page("The end-user widget")),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
