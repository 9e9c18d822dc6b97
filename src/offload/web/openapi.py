"""The OpenAPI 3.1 document, written as data next to the routes it describes.

Written by hand rather than generated from docstrings because the protocol's
headers (``Location``, ``Retry-After``), empty ``204``/``303`` answers and problem
bodies are the point of the API, and a generator would leave them out. The test
suite checks every response against this document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.lifecycle import EventKind, State

Schema = dict[str, Any]

STR = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": ["string", "null"], "format": "date-time"}
NSTR = {"type": ["string", "null"]}
ANY: Schema = {}
STATES = {"type": "string", "enum": [s.value for s in State]}
COUNTS = {
    "type": "object",
    "properties": {s.value: INT for s in State},
    "required": [s.value for s in State],
}
PROBLEM_JSON = "application/problem+json"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Any], required: list[str] | None = None) -> Schema:
    return {"type": "object", "properties": props, "required": required or list(props)}


SNAPSHOT = {
    "id": STR,
    "task": STR,
    "queue": STR,
    "tenant": STR,
    "state": STATES,
    "attempts": INT,
    "progress": {"type": ["number", "null"]},
    "progress_message": NSTR,
    "cancel_requested": {"type": "boolean"},
    "created_at": TIME,
    "started_at": TIME,
    "finished_at": TIME,
}
ERROR = {"oneOf": [{"type": "null"}, obj({"type": STR, "message": STR, "traceback": NSTR})]}
LINKS = obj({k: STR for k in ("self", "status", "output", "events", "stream")})
SUMMARY = SNAPSHOT | {
    "priority": INT,
    "max_attempts": INT,
    "timeout": {"type": ["number", "null"]},
    "run_at": TIME,
    "unique_key": NSTR,
    "batch_id": NSTR,
    "worker_id": NSTR,
    "error": ERROR,
    "links": LINKS,
}
DETAIL = SUMMARY | {
    "args": ANY,
    "result": ANY,
    "checkpoint": ANY,
    "decode_errors": {"type": "object", "additionalProperties": STR},
}
EVENT = {
    "id": INT,
    "job_id": STR,
    "tenant": STR,
    "kind": {"type": "string", "enum": [k.value for k in EventKind]},
    "at": {"type": "string", "format": "date-time"},
    "data": {"type": "object"},
}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "queue": NAME,
        "tenant": NAME,
        "priority": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        "delay": {"type": "number", "minimum": 0, "maximum": 315360000},
        "unique_key": {"type": "string", "minLength": 1, "maxLength": 500},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 315360000},
    },
}
ENQUEUE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["task"],
    "properties": {
        "task": {"type": "string", "minLength": 1, "maxLength": 500},
        "args": {"oneOf": [{"type": "object"}, {"type": "array"}]},
        "options": ref("EnqueueOptions"),
    },
}
TASK = obj(
    {
        "name": STR,
        "queue": STR,
        "priority": INT,
        "max_attempts": INT,
        "timeout": {"type": ["number", "null"]},
        "args_schema": {"type": ["object", "null"]},
    }
)

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {"type": STR, "title": STR, "status": INT, "detail": STR},
    },
    "JobSnapshot": obj(SNAPSHOT),
    "JobSummary": obj(SUMMARY),
    "Job": obj(DETAIL),
    "JobWithEvents": obj(DETAIL | {"events": {"type": "array", "items": ref("Event")}}),
    "Event": obj(EVENT),
    "EnqueueOptions": OPTIONS,
    "EnqueueRequest": ENQUEUE,
    "JobPage": obj({"jobs": {"type": "array", "items": ref("JobSummary")}, "next_before": NSTR}),
    "EventList": obj({"events": {"type": "array", "items": ref("Event")}}),
    "EventFeed": obj({"events": {"type": "array", "items": ref("Event")}, "cursor": INT}),
    "Queues": obj(
        {"queues": {"type": "array", "items": obj({"name": STR, "counts": COUNTS, "total": INT})}}
    ),
    "Workers": obj(
        {
            "complete": {"type": "boolean"},
            "workers": {
                "type": "array",
                "items": obj(
                    {
                        "id": STR,
                        "running": INT,
                        "queues": {"type": "array", "items": STR},
                        "jobs": {"type": "array", "items": STR},
                    }
                ),
            },
        }
    ),
    "Tenants": obj(
        {
            "complete": {"type": "boolean"},
            "tenants": {
                "type": "array",
                "items": obj({"name": STR, "jobs": INT, "counts": COUNTS}),
            },
        }
    ),
    "Tasks": obj({"tasks": {"type": "array", "items": TASK}}),
    "PurgeRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"older_than": {"type": "number", "minimum": 0, "maximum": 315360000}},
    },
    "PurgeResult": obj({"purged": INT}),
}


# responses -------------------------------------------------------------------------


def problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ref("Problem")}}}


def body(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def header(description: str, schema: Schema = STR) -> Schema:
    return {"description": description, "required": True, "schema": schema}


BAD = {"400": problem("A query parameter or header is not valid")}
MISSING = {"404": problem("No such job, the id is malformed, or it belongs to another tenant")}
PAGE_PARAMS = ["state", "queue", "task", "tenant", "before", "limit"]


def param(name: str, schema: Schema, description: str, where: str = "query") -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


PARAMS = {
    "job_id": param("job_id", STR, "The job's id (a UUID)", "path"),
    "state": param("state", STR, "Comma-separated states: " + ", ".join(s.value for s in State)),
    "queue": param("queue", STR, "Only jobs of this queue"),
    "task": param("task", STR, "Only jobs of this task"),
    "tenant": param("tenant", STR, "Only this tenant (admins; a tenant token sees its own)"),
    "before": param("before", STR, "Page: jobs older than this id (a UUID)"),
    "limit": param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Page size"),
    "after": param("after", {"type": "integer", "minimum": 0}, "Only events after this id"),
    "token": param("token", STR, "Bearer token, for clients that cannot set headers"),
}


def op(summary: str, responses: Schema, params: Sequence[str] = (), **extra: Any) -> Schema:
    out: Schema = {
        "summary": summary,
        "parameters": [PARAMS[p] for p in params],
        "responses": responses,
        **extra,
    }
    out["responses"].setdefault("401", problem("Missing or invalid bearer token"))
    return out


def json_request(schema: str, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


SSE = {
    "description": "text/event-stream of `ready` then `job` messages ({event, job})",
    "content": {"text/event-stream": {"schema": STR}},
}
HTML = {"description": "An HTML page", "content": {"text/html": {"schema": STR}}}


def _protocol_paths() -> dict[str, Schema]:
    location = {"Location": header("Where to poll the job's status")}
    return {
        "/api/v1/jobs": {
            "post": op(
                "Enqueue a job (202, Location of its status)",
                {
                    "202": body("Accepted", ref("Job"), location),
                    "400": problem("The body is not JSON"),
                    "413": problem("The body is too large"),
                    "422": problem("Unknown task, invalid arguments or options"),
                },
                requestBody=json_request("EnqueueRequest"),
            ),
            "get": op(
                "List jobs, newest first",
                {"200": body("A page of jobs", ref("JobPage")), **BAD},
                PAGE_PARAMS,
            ),
        },
        "/api/v1/jobs/{job_id}/status": {
            "get": op(
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
        },
        "/api/v1/jobs/{job_id}/output": {
            "get": op(
                "The result of a succeeded job",
                {
                    "200": body("The task's return value, as JSON", ANY),
                    "409": problem("The job has not succeeded"),
                    **MISSING,
                },
                ["job_id"],
            )
        },
    }


def _resource_paths() -> dict[str, Schema]:
    job = {"200": body("The job", ref("Job")), **MISSING}
    return {
        "/api/v1/jobs/{job_id}": {
            "get": op(
                "A job with its events",
                {"200": body("The job and its events", ref("JobWithEvents")), **MISSING},
                ["job_id"],
            )
        },
        "/api/v1/jobs/{job_id}/events": {
            "get": op(
                "Events of a job, oldest first",
                {"200": body("Events", ref("EventList")), **BAD, **MISSING},
                ["job_id", "after", "limit"],
            )
        },
        "/api/v1/jobs/{job_id}/cancel": {
            "post": op(
                "Cancel a job",
                {
                    **job,
                    "202": body("Running: its worker was asked to stop", ref("Job")),
                    "409": problem("The job already succeeded or is dead"),
                },
                ["job_id"],
            )
        },
        "/api/v1/jobs/{job_id}/retry": {
            "post": op(
                "Run a dead or cancelled job again",
                {**job, "409": problem("The job is not dead or cancelled")},
                ["job_id"],
            )
        },
        "/api/v1/events": {
            "get": op(
                "Events of every visible job after a cursor",
                {"200": body("Events", ref("EventFeed")), **BAD},
                ["after", "limit", "tenant"],
            )
        },
        "/api/v1/queues": {
            "get": op(
                "Jobs per queue and state",
                {"200": body("Queues", ref("Queues")), **BAD},
                ["tenant"],
            )
        },
        "/api/v1/workers": {
            "get": op(
                "Workers running jobs now",
                {"200": body("Workers", ref("Workers")), **BAD},
                ["tenant"],
            )
        },
        "/api/v1/tenants": {
            "get": op("Tenants that own jobs", {"200": body("Tenants", ref("Tenants"))})
        },
        "/api/v1/tasks": {"get": op("Registered tasks", {"200": body("Tasks", ref("Tasks"))})},
        "/api/v1/dead": {
            "get": op(
                "The dead letter, newest first",
                {"200": body("Dead jobs", ref("JobPage")), **BAD},
                PAGE_PARAMS[1:],
            )
        },
        "/api/v1/dead/purge": {
            "post": op(
                "Delete dead jobs (admin)",
                {
                    "200": body("How many went", ref("PurgeResult")),
                    "400": problem("The body is not JSON"),
                    "403": problem("Not an admin token"),
                    "413": problem("The body is too large"),
                    "422": problem("Invalid body"),
                },
                requestBody=json_request("PurgeRequest", required=False),
            )
        },
        "/api/v1/stream": {
            "get": op(
                "Live events of every visible job (SSE)",
                {"200": SSE, **BAD},
                ["tenant", "after", "token"],
            )
        },
        "/api/v1/jobs/{job_id}/stream": {
            "get": op(
                "Live events of one job (SSE)",
                {"200": SSE, **BAD, **MISSING},
                ["job_id", "after", "token"],
            )
        },
    }


def _page_paths() -> dict[str, Schema]:
    pages = {
        "/": "Overview",
        "/jobs": "Jobs",
        "/dead": "Dead letter",
        "/widget-demo": "The end-user widget",
    }
    paths: dict[str, Schema] = {
        path: {
            "get": {
                "summary": f"Dashboard: {name}",
                "tags": ["dashboard"],
                "responses": {"200": HTML},
            }
        }
        for path, name in pages.items()
    }
    paths["/jobs/{job_id}"] = {
        "get": {
            "summary": "Dashboard: a job",
            "tags": ["dashboard"],
            "parameters": [PARAMS["job_id"]],
            "responses": {"200": HTML, **MISSING},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "responses": {"200": body("OpenAPI 3.1", {"type": "object"})},
        }
    }
    return paths


def document(*, secured: bool) -> Schema:
    doc: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "offload",
            "version": "1",
            "description": "Background jobs: the polling protocol, resources, live "
            "events. Errors are RFC 9457 problem documents.",
        },
        "paths": _protocol_paths() | _resource_paths() | _page_paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    doc["security"] = [{"bearer": []}] if secured else [{}, {"bearer": []}]
    for path in _page_paths():
        for operation in doc["paths"][path].values():
            operation["security"] = [{}]
    return doc
