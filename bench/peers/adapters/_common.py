"""What every adapter shares: the trace a job leaves, and the command line through
which ``run.py`` drives an adapter.

An adapter runs inside its own library's virtualenv, so this module uses the
standard library and ``redis`` only (every adapter's venv has ``redis``). Each
job proves it ran by an ``INCR`` of one Redis key (and, for latency probes, an
``RPUSH`` of its start delay), the same single round trip for every library, so
completion is counted and never assumed.

Commands (one JSON line on stdout each, except ``worker`` which runs until
stopped)::

    info                                  version, bulk API or not, worker settings
    reset                                 empty the broker and the trace
    enqueue --kind K --n N --mode one|bulk [--rate R] [--max-seconds S]
    worker --mode fast|io                 run one worker in this process
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/5")
PG_URL = os.environ.get("PEERS_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench")
DONE_KEY = "peers:trace:done"
LATENCY_KEY = "peers:trace:latency"
CHUNK = 1000
# Concurrency inside the one worker process for the 10 ms I/O mix; the same
# number for every library that has in-process concurrency.
IO_CONCURRENCY = 50
# Concurrency for no-op jobs where a library takes a number (async libraries).
FAST_CONCURRENCY = 50

Kind = str  # "noop" | "probe" | "io"


# -- the trace every job leaves -------------------------------------------------------

_sync_client: redis.Redis | None = None
_async_clients: dict[int, aredis.Redis] = {}


def _client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(REDIS_URL)
    return _sync_client


def _aclient() -> aredis.Redis:
    """One client per event loop: a connection belongs to the loop that opened it."""
    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        client = _async_clients[loop_id] = aredis.Redis.from_url(REDIS_URL)
    return client


def job_done(kind: Kind, sent: float) -> None:
    """Body of every sync job; ``io`` sleeps 10 ms the blocking way first."""
    if kind == "io":
        time.sleep(0.01)
    if kind == "probe":
        started = time.time()
        pipe = _client().pipeline(transaction=False)
        pipe.rpush(LATENCY_KEY, started - sent).incr(DONE_KEY).execute()
    else:
        _client().incr(DONE_KEY)


async def ajob_done(kind: Kind, sent: float) -> None:
    """Body of every async job; ``io`` awaits 10 ms first."""
    if kind == "io":
        await asyncio.sleep(0.01)
    if kind == "probe":
        started = time.time()
        pipe = _aclient().pipeline(transaction=False)
        await pipe.rpush(LATENCY_KEY, started - sent).incr(DONE_KEY).execute()
    else:
        await _aclient().incr(DONE_KEY)


def flush_redis() -> None:
    """Empty the bench's own Redis database (never another one)."""
    _client().flushdb()


# -- the adapter contract ------------------------------------------------------------

MaybeAsync = Awaitable[None] | None


@dataclass
class Peer:
    """One library as the harness sees it. Functions may be sync or async."""

    name: str
    version: str
    enqueue_one: Callable[[Kind, float], MaybeAsync]
    enqueue_bulk: Callable[[Kind, list[float]], MaybeAsync] | None
    run_worker: Callable[[str], MaybeAsync]
    reset: Callable[[], MaybeAsync] = flush_redis
    setup: Callable[[], MaybeAsync] | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: str = ""


async def _call(fn: Callable[..., MaybeAsync], *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def _enqueue(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    """Time the enqueue of up to ``n`` jobs, stopping early after ``--max-seconds``
    (the answer says how many went in); with ``--rate``, pace them."""
    if peer.setup is not None:
        await _call(peer.setup)
    if args.mode == "bulk" and peer.enqueue_bulk is None:
        return {"error": "no bulk API"}
    began = time.perf_counter()
    stop_at = began + args.max_seconds if args.max_seconds else float("inf")
    if args.mode == "bulk":
        done = await _bulk(peer, args.kind, args.n, stop_at)
    else:
        done = await _one_by_one(peer, args.kind, args.n, args.rate, stop_at)
    return {"seconds": time.perf_counter() - began, "n": done}


async def _bulk(peer: Peer, kind: Kind, n: int, stop_at: float) -> int:
    assert peer.enqueue_bulk is not None
    done = 0
    while done < n and time.perf_counter() < stop_at:
        size = min(CHUNK, n - done)
        await _call(peer.enqueue_bulk, kind, [time.time()] * size)
        done += size
    return done


async def _one_by_one(peer: Peer, kind: Kind, n: int, rate: float, stop_at: float) -> int:
    interval = 1 / rate if rate else 0.0
    is_async = inspect.iscoroutinefunction(peer.enqueue_one)
    began = time.perf_counter()
    for i in range(n):
        if time.perf_counter() > stop_at:
            return i
        if interval:
            await asyncio.sleep(max(0.0, began + i * interval - time.perf_counter()))
        if is_async:
            await peer.enqueue_one(kind, time.time())  # type: ignore[misc]
        else:
            peer.enqueue_one(kind, time.time())
    return n


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="adapter")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info")
    sub.add_parser("reset")
    enqueue = sub.add_parser("enqueue")
    enqueue.add_argument("--kind", default="noop", choices=["noop", "probe", "io"])
    enqueue.add_argument("--n", type=int, required=True)
    enqueue.add_argument("--mode", default="one", choices=["one", "bulk"])
    enqueue.add_argument("--rate", type=float, default=0.0)
    enqueue.add_argument("--max-seconds", type=float, default=0.0)
    worker = sub.add_parser("worker")
    worker.add_argument("--mode", default="fast", choices=["fast", "io"])
    return parser.parse_args(argv)


def _info(peer: Peer) -> dict[str, Any]:
    return {
        "name": peer.name,
        "version": peer.version,
        "bulk": peer.enqueue_bulk is not None,
        "settings": peer.settings,
        "notes": peer.notes,
        "python": sys.version.split()[0],
    }


def main(peer: Peer, argv: list[str]) -> None:
    """Run one command for ``peer`` and print its JSON answer."""
    args = _parse(argv)
    if args.command == "worker":
        result = peer.run_worker(args.mode)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
        return
    if args.command == "info":
        answer: dict[str, Any] = _info(peer)
    elif args.command == "reset":
        asyncio.run(_call(peer.reset))
        answer = {"ok": True}
    else:
        answer = asyncio.run(_enqueue(peer, args))
    print(json.dumps(answer), flush=True)


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable
