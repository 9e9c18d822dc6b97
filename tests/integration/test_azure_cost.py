"""Storage transactions one job costs on azure://, counted by the backend
itself (the docs quote these numbers; the bounds keep them from creeping up)."""

from __future__ import annotations

import pytest

from offload.backends.azure.backend import AzureBackend
from offload.job import ErrorInfo
from tests.contract.helpers import new_job
from tests.servers.azurite import azure_url


@pytest.fixture
async def backend(request: pytest.FixtureRequest) -> AzureBackend:
    b = AzureBackend(azure_url(request))
    await b.open()
    return b


def _spent(b: AzureBackend, before: dict[str, int]) -> dict[str, int]:
    return {k: b.ops[k] - before.get(k, 0) for k in ("table", "queue")}


async def test_transactions_per_job(backend: AzureBackend) -> None:
    await backend.job_enqueue_many([new_job()])  # warm: queue created, counter read
    leased = await backend.job_lease("w", ["default"], 1, 30)
    await backend.job_complete_many([(leased[0].lease, None)])
    before = dict(backend.ops)
    await backend.job_enqueue_many([new_job()])
    [job] = await backend.job_lease("w", ["default"], 1, 30)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    happy = _spent(backend, before)
    before = dict(backend.ops)
    await backend.job_enqueue_many([new_job()])
    [job] = await backend.job_lease("w", ["default"], 1, 30)
    await backend.job_fail(job.lease, ErrorInfo("E", "x"), 0.0)
    [job] = await backend.job_lease("w", ["default"], 1, 30)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    retried = _spent(backend, before)
    print(f"azure transactions per job: happy {happy}, one retry {retried}")
    await backend.close()
    assert happy["table"] <= 9
    assert happy["queue"] <= 1
    assert retried["table"] <= 15
    assert retried["queue"] <= 2


async def test_transactions_per_job_in_bulk(backend: AzureBackend) -> None:
    """A hundred jobs enqueued in one call, leased in one and completed in one
    share their transactions: a fraction of one Table operation per job."""
    await backend.job_enqueue_many([new_job()])  # warm: queue created, counter read
    [warm] = await backend.job_lease("w", ["default"], 1, 30)
    await backend.job_complete_many([(warm.lease, None)])
    before = dict(backend.ops)
    await backend.job_enqueue_many([new_job() for _ in range(100)])
    jobs = await backend.job_lease("w", ["default"], 100, 30)
    assert len(jobs) == 100
    assert await backend.job_complete_many([(j.lease, None) for j in jobs]) == [True] * 100
    spent = _spent(backend, before)
    print(f"azure transactions for 100 jobs in bulk: {spent}")
    await backend.close()
    assert spent["table"] <= 20
    assert spent["queue"] <= 100
