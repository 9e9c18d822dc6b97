"""The OpenAPI document against the running ASGI app: generated requests on every
operation must never get a 5xx, an undocumented status, or a body that does not
match its schema. Streams are left out: they never end by design."""

from __future__ import annotations

import asyncio
import re

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from offload import App
from offload.testing import drain
from offload.web import create_app
from tests.web.conftest import make_app


def seeded() -> App:
    """An app with a job in every ended state, so list bodies are not all empty."""
    app = make_app("memory://")

    async def seed() -> None:
        try:
            await app.get_task("add").enqueue_async(1, 2)
            await app.get_task("boom").enqueue_async()
            await app.get_task("report").enqueue_async(2)
            await drain(app)
            cancelled = await app.get_task("add").options(delay=600).enqueue_async(3, 4)
            await app.cancel_async(cancelled.id)
            await app.get_task("add").options(tenant="acme", queue="slow").enqueue_async(5, 6)
        finally:
            await app.close_async()

    asyncio.run(seed())
    return app


WEB = create_app(seeded())
schema = schemathesis.openapi.from_asgi("/openapi.json", WEB).exclude(path_regex=r".*/stream$")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_every_route_is_documented() -> None:
    with TestClient(WEB) as client:
        paths = client.get("/openapi.json").json()["paths"]
    served = {
        (route.path, method.lower())
        for route in WEB.routes
        if isinstance(route, Route) and not isinstance(route, Mount)
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {(path, method) for path, ops in paths.items() for method in ops}
    assert served == documented
    assert all(re.fullmatch(r"/[\w\-/{}.]*", path) for path in paths)
