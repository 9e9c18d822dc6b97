"""wait_for_jobs: woken promptly by an enqueue elsewhere, else back by its timeout."""

from __future__ import annotations

import asyncio
import threading
import time

from offload.backends import Backend

from .helpers import enqueue, opened_clone

LONG = 30.0
PROMPT = 5.0
"""Well under ``LONG``: a waiter that only returned on its timeout would fail."""


async def _wake_by_enqueue(waiter: asyncio.Task[None], writer: Backend) -> float:
    """Enqueue through ``writer`` until ``waiter`` returns; the seconds it took.

    The waiter may need a moment to subscribe (a LISTEN, a pub/sub channel); an
    enqueue before that is a missed wake-up the contract allows, so the writer
    enqueues again every short while rather than guessing when the waiter is ready.
    """
    start = time.monotonic()
    while not waiter.done() and time.monotonic() - start < PROMPT:
        await enqueue(writer, queue="mail")
        await asyncio.wait({waiter}, timeout=0.25)
    assert waiter.done(), f"wait_for_jobs did not wake within {PROMPT}s of an enqueue"
    await waiter
    return time.monotonic() - start


async def test_an_enqueue_from_a_clone_wakes_the_waiter(backend: Backend) -> None:
    async with opened_clone(backend) as writer:
        waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], LONG))
        assert await _wake_by_enqueue(waiter, writer) < PROMPT


async def test_an_enqueue_from_another_thread_wakes_the_waiter(backend: Backend) -> None:
    waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], LONG))
    stop = threading.Event()
    writer = backend.clone()

    async def write_until_stopped() -> None:
        await writer.open()
        try:
            while not stop.is_set():
                await enqueue(writer, queue="mail")
                await asyncio.sleep(0.25)
        finally:
            await writer.close()

    thread = threading.Thread(target=lambda: asyncio.run(write_until_stopped()))
    start = time.monotonic()
    thread.start()
    try:
        await asyncio.wait({waiter}, timeout=PROMPT)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
    assert waiter.done(), f"wait_for_jobs did not wake within {PROMPT}s of an enqueue"
    assert time.monotonic() - start < PROMPT


async def test_without_jobs_it_returns_by_its_timeout(backend: Backend) -> None:
    start = time.monotonic()
    await asyncio.wait_for(backend.wait_for_jobs(["mail"], 0.3), timeout=PROMPT)
    assert time.monotonic() - start < PROMPT


async def test_a_waiter_can_wait_again_after_waking(backend: Backend) -> None:
    async with opened_clone(backend) as writer:
        first = asyncio.create_task(backend.wait_for_jobs(["mail"], LONG))
        await _wake_by_enqueue(first, writer)
        second = asyncio.create_task(backend.wait_for_jobs(["mail"], LONG))
        assert await _wake_by_enqueue(second, writer) < PROMPT
