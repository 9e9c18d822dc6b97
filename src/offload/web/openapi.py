"""The OpenAPI 3.1 document, assembled from the routes that serve it.

Each route module declares its routes with ``route(path, endpoint, method,
Operation(...))``: the summary, parameters, request body model and responses
sit beside the endpoint they describe, so a new route cannot ship undocumented
and a changed body model changes the document with it. Request bodies are the
pydantic models in ``params`` (``model_json_schema``); response shapes without
a model are ``Component`` dicts kept beside the code that builds those bodies
(``resources``, ``inventory``, the route modules). The protocol's headers
(``Location``, ``Retry-After``), empty ``204``/``303`` answers and problem
bodies are written out by hand in each ``Operation``, since they are the point
of the API and no generator would guess them. The test suite checks every
response against the document.

This module holds the shared vocabulary (scalar schemas, parameters, problem
responses) and ``document``, the builder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from offload.lifecycle import State

Schema = dict[str, Any]
REF = "#/components/schemas/"


@dataclass(frozen=True, eq=False)
class Component:
    """A named schema: written where it is used, hoisted to ``components``."""

    name: str
    schema: Schema


# scalars -------------------------------------------------------------------------

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
NUM_OR_NULL = {"type": ["number", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
NSTR = {"type": ["string", "null"]}
ANY: Schema = {}
STATES = {"type": "string", "enum": [s.value for s in State]}
COUNTS = {
    "type": "object",
    "properties": {s.value: INT for s in State},
    "required": [s.value for s in State],
}


def obj(props: dict[str, Any], required: list[str] | None = None) -> Schema:
    return {"type": "object", "properties": props, "required": required or list(props)}


def array(items: Any) -> Schema:
    return {"type": "array", "items": items}


# responses -------------------------------------------------------------------------

PROBLEM_JSON = "application/problem+json"
PROBLEM = Component(
    "Problem",
    {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {"type": STR, "title": STR, "status": INT, "detail": STR},
    },
)


def problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM}}}


def body(description: str, schema: Any, headers: Schema | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def header(description: str, schema: Schema = STR) -> Schema:
    return {"description": description, "required": True, "schema": schema}


BAD = {"400": problem("A query parameter or header is not valid")}
MISSING = {"404": problem("No such job, the id is malformed, or it belongs to another tenant")}
BATCH_MISSING = {
    "404": problem("No such batch, the id is malformed, or it belongs to another tenant")
}
BODY_PROBLEMS = {
    "400": problem("The body is not JSON"),
    "413": problem("The body is too large"),
}
UNAUTHORIZED = problem("Missing or invalid bearer token")
SSE = {
    "description": "text/event-stream of `ready` then `job` messages ({event, job})",
    "content": {"text/event-stream": {"schema": STR}},
}
HTML = {"description": "An HTML page", "content": {"text/html": {"schema": STR}}}


# parameters ------------------------------------------------------------------------


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
    "batch_id": param("batch_id", STR, "The batch's id (a UUID)", "path"),
}
PAGE_PARAMS = ("state", "queue", "task", "tenant", "before", "limit")


# operations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What one method on one path does, as the document shows it. ``public``
    operations (pages, this document) need no token and answer no 401."""

    summary: str
    responses: Mapping[str, Any]
    params: Sequence[str | Schema] = ()
    request: type[BaseModel] | None = None
    request_required: bool = True
    public: bool = False
    tags: Sequence[str] = field(default_factory=tuple)

    def render(self) -> Schema:
        out: Schema = {"summary": self.summary}
        if self.tags:
            out["tags"] = list(self.tags)
        out["parameters"] = [PARAMS[p] if isinstance(p, str) else p for p in self.params]
        if self.request is not None:
            schema = {"schema": self.request}
            out["requestBody"] = {"required": self.request_required,
                                  "content": {"application/json": schema}}  # fmt: skip
        out["responses"] = dict(self.responses)
        if self.public:
            out["security"] = [{}]
        else:
            out["responses"].setdefault("401", UNAUTHORIZED)
        return out


class DocumentedRoute(Route):
    """A Starlette route that carries its OpenAPI operation."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], method: str, operation: Operation
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.lower()
        self.operation = operation


def route(path: str, endpoint: Callable[..., Any], method: str, operation: Operation) -> Route:
    return DocumentedRoute(path, endpoint, method, operation)


# the builder -----------------------------------------------------------------------

INFO = {
    "title": "offload",
    "version": "1",
    "description": "Background jobs: the polling protocol, resources, live "
    "events. Errors are RFC 9457 problem documents.",
}


def document(routes: Iterable[BaseRoute], *, secured: bool) -> Schema:
    """The document of every ``DocumentedRoute`` in ``routes``, in their order."""
    schemas: dict[str, Schema] = {}
    paths: dict[str, Schema] = {}
    for r in routes:
        if isinstance(r, DocumentedRoute):
            rendered = _hoist(r.operation.render(), schemas)
            paths.setdefault(r.path, {})[r.method] = rendered
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}] if secured else [{}, {"bearer": []}],
    }


def _hoist(value: Any, schemas: dict[str, Schema]) -> Any:
    """``value`` with every ``Component`` and model replaced by a ``$ref`` to it,
    each added to ``schemas`` once."""
    if isinstance(value, Component):
        if value.name not in schemas:
            schemas[value.name] = {}  # claimed first: a schema may refer to itself
            schemas[value.name] = _hoist(value.schema, schemas)
        return {"$ref": REF + value.name}
    if isinstance(value, type) and issubclass(value, BaseModel):
        return _model(value, schemas)
    if isinstance(value, dict):
        return {k: _hoist(v, schemas) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hoist(v, schemas) for v in value]
    return value


def _model(model: type[BaseModel], schemas: dict[str, Schema]) -> Schema:
    generated = model.model_json_schema(ref_template=REF + "{model}")
    for name, schema in generated.pop("$defs", {}).items():
        _claim(schemas, name, schema)
    _claim(schemas, model.__name__, generated)
    return {"$ref": REF + model.__name__}


def _claim(schemas: dict[str, Schema], name: str, schema: Schema) -> None:
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name!r} in the OpenAPI document")
