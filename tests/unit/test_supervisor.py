"""The supervisor runs every worker service in one loop shape: rounds at start and
each interval, sooner when woken, transient failures retried with backoff, and a
service that cannot recover reported dead so the worker stops loudly."""

from __future__ import annotations

import asyncio
import functools
import math

import pytest

from offload import App
from offload.errors import BackendError
from offload.worker import Worker
from offload.worker import worker as worker_module
from offload.worker.supervisor import ServiceDied, Supervisor

# A generous bound for things that happen within milliseconds: a timeout, not a target.
DEADLINE = 5.0


class Counting:
    """Counts rounds and lets a test wait for the n-th one."""

    name = "counting"

    def __init__(
        self,
        interval: float = math.inf,
        failures: int = 0,
        error: type[Exception] = ConnectionError,
    ) -> None:
        self.interval = interval
        self.failures = failures
        self.error = error
        self.rounds = 0
        self.closed = False
        self.woken = asyncio.Event()
        self._round = asyncio.Condition()

    async def once(self) -> None:
        async with self._round:
            self.rounds += 1
            self._round.notify_all()
        if self.rounds <= self.failures:
            raise self.error(f"round {self.rounds}: server restarting")

    async def close(self) -> None:
        self.closed = True

    async def reached(self, rounds: int) -> None:
        async with self._round:
            await asyncio.wait_for(self._round.wait_for(lambda: self.rounds >= rounds), DEADLINE)


def never_dies(name: str, error: BaseException) -> None:
    raise AssertionError(f"{name} reported dead: {error!r}")


async def test_a_round_runs_at_start_and_again_when_woken() -> None:
    service = Counting(interval=math.inf)
    supervisor = Supervisor([service], never_dies)
    supervisor.start()
    await service.reached(1)
    service.woken.set()
    await service.reached(2)
    await supervisor.stop()
    assert service.rounds == 2, "an infinite interval runs only when woken"


async def test_rounds_repeat_every_interval() -> None:
    service = Counting(interval=0.01)
    supervisor = Supervisor([service], never_dies)
    supervisor.start()
    await service.reached(3)
    await supervisor.stop()
    assert not supervisor.broken


async def test_transient_failures_are_retried_and_the_service_lives_on() -> None:
    service = Counting(interval=math.inf, failures=3)
    supervisor = Supervisor([service], never_dies, backoff_first=0.001)
    supervisor.start()
    await service.reached(4)  # three failures, then a good round
    await supervisor.stop()
    assert not supervisor.broken
    supervisor.raise_if_died()


async def test_a_service_failing_past_its_budget_is_reported_dead() -> None:
    died: asyncio.Future[tuple[str, BaseException]] = asyncio.Future()
    service = Counting(interval=math.inf, failures=10**9)
    supervisor = Supervisor(
        [service],
        lambda name, error: died.set_result((name, error)),
        give_up_after=0.05,
        backoff_first=0.001,
        backoff_cap=0.01,
    )
    supervisor.start()
    name, error = await asyncio.wait_for(died, DEADLINE)
    await supervisor.stop()
    assert name == "offload-counting"
    assert isinstance(error, ServiceDied)
    assert isinstance(error.__cause__, ConnectionError)
    assert supervisor.broken
    with pytest.raises(ServiceDied, match="counting failed for"):
        supervisor.raise_if_died()


async def test_a_storage_outage_is_waited_out_however_long_it_lasts() -> None:
    # Far more failing rounds than the give-up budget allows for other errors:
    # the backend coming back is what the worker waits for.
    service = Counting(interval=math.inf, failures=40, error=BackendError)
    supervisor = Supervisor(
        [service], never_dies, give_up_after=0.0, backoff_first=0.001, backoff_cap=0.001
    )
    supervisor.start()
    await service.reached(41)
    await supervisor.stop()
    assert not supervisor.broken
    supervisor.raise_if_died()


async def test_stop_closes_each_service_and_ends_its_loop() -> None:
    service = Counting(interval=3600)
    supervisor = Supervisor([service], never_dies)
    supervisor.start()
    await service.reached(1)
    await supervisor.stop()
    assert service.closed
    assert service.rounds == 1
    assert not supervisor.broken


async def test_a_worker_whose_service_dies_stops_loudly(
    mem_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = await mem_app.backend()

    async def broken_recovery() -> list[object]:
        raise RuntimeError("lease table unreadable")

    # A fault injected into the real memory backend: lease recovery always fails.
    monkeypatch.setattr(backend, "job_recover_expired", broken_recovery)
    quick = functools.partial(Supervisor, give_up_after=0.05, backoff_first=0.001)
    monkeypatch.setattr(worker_module, "Supervisor", quick)
    worker = Worker(mem_app, handle_signals=False, poll_interval=0.05)
    with pytest.raises(ServiceDied, match="recover failed for") as died:
        await asyncio.wait_for(worker.run(), DEADLINE)
    assert isinstance(died.value.__cause__, RuntimeError)
