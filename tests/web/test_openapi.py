"""The OpenAPI document against the running ASGI app: generated requests on every
operation must never get a 5xx, an undocumented status, or a body that does not
match its schema. Streams are left out: they never end by design."""

from __future__ import annotations

import asyncio
import re

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
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
from offload.web.params import EnqueueBody
from tests.web.conftest import make_app


def seeded() -> App:
    """An app with a job in every ended state, a finished batch, a schedule and a
    pause, so list bodies are not all empty."""
    app = make_app("memory://")

    async def seed() -> None:
        add, boom, report = (app.get_task(n) for n in ("add", "boom", "report"))
        try:
            await app.batch_async([add.prepare(1, 2), boom.prepare()], then=[report.prepare(1)],
                                  name="seed")  # fmt: skip
            await app.schedule_async("nightly", add, "0 3 * * *", args=(1, 2), tenant="acme")
            await app.pause_async(tenant="acme", queue="slow")
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


# The orchestration operations again, as a tenant: its 403s, 404s for the other
# tenant's records and the scoping of what it creates must stay in the contract.
ORCHESTRATION = r"^/api/v1/(batches|schedules|pauses?|resume|me)(/|$)"
SCOPED = create_app(seeded(), tokens={"t-acme": "acme", "t-root": None})
scoped = (
    schemathesis.openapi.from_asgi("/openapi.json", SCOPED)
    .include(path_regex=ORCHESTRATION)
    .exclude(path_regex=r".*/stream$")
)


@scoped.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_orchestration_operations_keep_their_contract_for_a_tenant(
    case: schemathesis.Case,
) -> None:
    response = case.call_and_validate(headers={"Authorization": "Bearer t-acme"}, checks=CHECKS)
    # Negative cases drop the header on purpose to see the documented 401.
    if response.request.headers.get("Authorization") == "Bearer t-acme":
        assert response.status_code != 401


def test_the_orchestration_operations_are_covered() -> None:
    found = [r.ok() for r in scoped.get_all_operations() if isinstance(r, Ok)]
    operations = {(op.path, op.method) for op in found}
    assert operations == {
        ("/api/v1/batches", "post"), ("/api/v1/batches", "get"),
        ("/api/v1/batches/{batch_id}", "get"), ("/api/v1/batches/{batch_id}/jobs", "get"),
        ("/api/v1/batches/{batch_id}/jobs", "post"), ("/api/v1/batches/{batch_id}/cancel", "post"),
        ("/api/v1/schedules", "get"), ("/api/v1/schedules/{schedule_id}", "get"),
        ("/api/v1/schedules/{schedule_id}", "put"), ("/api/v1/schedules/{schedule_id}", "delete"),
        ("/api/v1/pauses", "get"), ("/api/v1/pause", "post"), ("/api/v1/resume", "post"),
        ("/api/v1/me", "get"),
    }  # fmt: skip


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


def test_request_bodies_are_the_models_that_validate_them() -> None:
    """The document's body schemas come from the pydantic models the endpoints
    validate with, so the two cannot disagree."""
    with TestClient(WEB) as client:
        doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/jobs"]["post"]["requestBody"]
    assert post["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EnqueueBody"
    }
    generated = EnqueueBody.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = generated.pop("$defs")
    schemas = doc["components"]["schemas"]
    assert schemas["EnqueueBody"] == generated
    assert schemas["EnqueueOptions"] == defs["EnqueueOptions"]
    assert schemas["EnqueueOptions"]["additionalProperties"] is False
