"""Errors as RFC 9457 problem documents, so every client can read a failure.

Endpoints raise ``Problem``; the handlers below turn it, Starlette's own
``HTTPException`` (unknown route, wrong method) and any unexpected exception into
``application/problem+json``. The catch-all says nothing about the cause: a
traceback would leak code and data, and the log has it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offload.errors import BackendError, InvalidOptionError, LimitError
from offload.web.encoding import dumps

log = logging.getLogger("offload.web")

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# Seconds a client should wait when storage is overloaded or down.
RETRY_AFTER = 1


class Problem(Exception):
    """A failure the client can act on; ``kind`` becomes the problem ``type``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"urn:offload:problem:{self.kind}" if self.kind else "about:blank",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return dumps(content)


def problem_response(problem: Problem) -> Response:
    return ProblemResponse(problem.body(), problem.status, headers=problem.headers)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    problem = Problem(exc.status_code, str(exc.detail), headers=exc.headers)
    return problem_response(problem)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem(500, "the server could not handle this request"))


async def on_backend_error(request: Request, exc: Exception) -> Response:
    """Storage overloaded or down is the server's temporary state, not a bug:
    503 with ``Retry-After``, so clients back off and retry instead of failing."""
    log.warning("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(Problem(503, "the job store is unavailable; try again shortly",
                                    kind="backend-unavailable",
                                    headers={"Retry-After": str(RETRY_AFTER)}))  # fmt: skip


async def on_invalid_option(request: Request, exc: Exception) -> Response:
    """The one validation of options and names (``offload.validation``) can be
    reached by a route whose body model let a value through: still the caller's
    mistake, a 422 naming it."""
    return problem_response(Problem(422, str(exc), kind="invalid-options"))


async def on_limit(request: Request, exc: Exception) -> Response:
    """A full quota is the state of the tenant's records: 409, fixed by deleting."""
    return problem_response(Problem(409, str(exc), kind="limit-reached"))


EXCEPTION_HANDLERS = {
    Problem: on_problem,
    InvalidOptionError: on_invalid_option,
    LimitError: on_limit,
    BackendError: on_backend_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
