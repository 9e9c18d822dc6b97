"""The threads synchronous tasks run on (``offload.worker.threads``)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from offload.worker.threads import JobThreads


class Held:
    """A call that holds its thread until released, and says when it started."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self) -> bool:
        self.started.set()
        return self.release.wait(5)

    async def running(self) -> None:
        await asyncio.to_thread(self.started.wait, 5)


def held_and_queued(
    threads: JobThreads, held: Held, ran: list[str]
) -> tuple[asyncio.Future[bool], asyncio.Future[None]]:
    """A call holding the one thread, and one queued behind it that notes if it ran."""
    busy = asyncio.ensure_future(threads.run(held))
    queued = asyncio.ensure_future(threads.run(lambda: ran.append("queued")))
    return busy, queued


async def test_a_call_returns_its_value_or_raises_its_error_off_the_loop() -> None:
    threads = JobThreads(2)
    loop_thread = threading.current_thread()
    assert await threads.run(lambda: threading.current_thread() is not loop_thread)

    def boom() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await threads.run(boom)
    threads.shutdown()


async def test_calls_run_side_by_side_up_to_the_size_and_no_further() -> None:
    threads = JobThreads(3)
    inside, most, lock = [0], [0], threading.Lock()

    def busy() -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1

    await asyncio.gather(*(threads.run(busy) for _ in range(12)))
    assert most[0] == 3
    assert len({t.name for t in threading.enumerate() if t.name.startswith("offload-job")}) <= 3
    threads.shutdown()


async def test_a_call_cancelled_before_a_thread_takes_it_never_runs() -> None:
    threads, held = JobThreads(1), Held()
    ran: list[str] = []
    first, second = held_and_queued(threads, held, ran)
    await held.running()
    second.cancel()
    held.release.set()
    assert await first is True
    assert await threads.run(lambda: "after") == "after"  # the one thread took the rest
    assert ran == []


async def test_a_call_cancelled_while_it_runs_finishes_and_its_result_is_dropped() -> None:
    threads = JobThreads(1)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        finished.set()
        return "late"

    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    call = asyncio.ensure_future(threads.run(slow))
    await asyncio.to_thread(started.wait, 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    release.set()
    # The one thread posts the late result before this call's: once this one
    # is back, the late one has been delivered, to nobody, without an error.
    assert await threads.run(lambda: "next") == "next"
    assert finished.is_set()
    assert errors == []


async def test_shutdown_skips_waiting_calls_and_a_later_call_starts_new_threads() -> None:
    threads, held = JobThreads(1), Held()
    ran: list[str] = []
    busy, waiting = held_and_queued(threads, held, ran)
    await held.running()
    threads.shutdown()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # A new call does not wait behind the thread still busy with the old one.
    assert await asyncio.wait_for(threads.run(lambda: "fresh"), 2) == "fresh"
    held.release.set()
    assert await busy is True
    assert ran == []


async def test_its_threads_do_not_hold_the_process_at_exit() -> None:
    threads = JobThreads(1)
    await threads.run(lambda: None)
    workers = [t for t in threading.enumerate() if t.name.startswith("offload-job")]
    assert workers
    assert all(t.daemon for t in workers)
    threads.shutdown()
