"""Transition-to-client latency of the live stream (Server-Sent Events), per backend.

    python bench/stream_latency.py --backend memory:// \
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_stream_bench' \
        --backend redis://127.0.0.1:6379/7 [--transitions 50]

Method, per backend: ``offload web``'s app (``create_app``) is served by uvicorn
in a thread on a free loopback port; this process opens ``/api/v1/stream`` with
httpx and reads it in the background. Each probe enqueues a job, waits for its
``enqueued`` message, then leases it through the backend contract and stamps the
time just before the lease call; the delay is from that stamp until the
``started`` message's last line is read. Both clocks are this process's
monotonic clock, so the figure covers the write, the backend's wake-up (or the
stream's poll), the encoding, the socket and the client's parser.

The target (p50 under 100 ms) used to be asserted by two tests; on a shared
machine such a bound is either loose or flaky, so it is measured here instead.
Results are printed and saved to ``results/<date>-stream-latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from procs import free_port

from offload import App
from offload.web import create_app

HERE = Path(__file__).resolve().parent
TARGET_P50_MS = 100.0
DEADLINE = 10.0  # seconds one message may take before the run is called broken


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload SSE transition-to-client latency")
    parser.add_argument("--backend", action="append", metavar="URL",
                        help="backend URL; repeat to compare backends")  # fmt: skip
    parser.add_argument("--transitions", type=int, default=50, help="probes per backend")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if not args.backend:
        parser.error("--backend is required")
    return args


@contextlib.contextmanager
def serving(app: App) -> Iterator[str]:
    """The web app on a loopback port, in a thread with its own event loop."""
    port = free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port,
                            log_level="warning", timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


class Messages:
    """Job messages of an SSE response, each stamped with when it was read."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def read(self, response: httpx.Response) -> None:
        data: str | None = None
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data = line.removeprefix("data:").strip()
            elif not line and data is not None:
                await self.queue.put((time.monotonic(), json.loads(data)))
                data = None

    async def next_kind(self, kind: str) -> float:
        while True:
            at, message = await asyncio.wait_for(self.queue.get(), DEADLINE)
            if message.get("event", {}).get("kind") == kind:
                return at


@contextlib.asynccontextmanager
async def streaming(url: str) -> AsyncIterator[Messages]:
    messages = Messages()
    async with httpx.AsyncClient(timeout=None) as client, \
            client.stream("GET", f"{url}/api/v1/stream") as response:  # fmt: skip
        reader = asyncio.create_task(messages.read(response))
        try:
            yield messages
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def measure(url: str, transitions: int) -> list[float]:
    app = App(url)

    @app.task(name="bench.stream.noop")
    async def noop() -> None:
        return None

    queue = f"stream-bench-{os.getpid()}"
    backend = await app.backend()
    delays: list[float] = []
    try:
        with serving(app) as web:
            async with streaming(web) as messages:
                for _ in range(transitions):
                    await noop.options(queue=queue).enqueue_async()
                    await messages.next_kind("enqueued")
                    stamped = time.monotonic()
                    await backend.job_lease("bench", [queue], 1, 30)
                    delays.append(await messages.next_kind("started") - stamped)
    finally:
        await app.close_async()
    return delays


def summary(url: str, delays: list[float]) -> dict[str, Any]:
    ms = sorted(d * 1000 for d in delays)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {"backend": url.split("?")[0], "transitions": len(ms),
            "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(p99, 2),
            "max_ms": round(ms[-1], 2)}  # fmt: skip


def main() -> None:
    args = parse()
    rows = [summary(url, asyncio.run(measure(url, args.transitions))) for url in args.backend]
    for row in rows:
        mark = "met" if row["p50_ms"] < TARGET_P50_MS else "MISSED"
        print(f"{row['backend']:<40} p50 {row['p50_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms"
              f"  max {row['max_ms']:8.2f} ms  (p50 < {TARGET_P50_MS:.0f} ms: {mark})")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.date.today().isoformat()}-stream-latency.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(), "load": os.getloadavg()}  # fmt: skip
    path.write_text(json.dumps({"machine": machine, "runs": rows}, indent=2) + "\n")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
