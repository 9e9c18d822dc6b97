"""Many live streams and many API requests at once, per backend (issue 13).

    python bench/concurrency.py --backend sqlite:////tmp/offload-conc.db \
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_conc_bench' \
        --backend 'redis://127.0.0.1:6379/7?prefix=conc' [--streams 200] [--requests 200]

Method, per backend: ``create_app`` is served by uvicorn in a child process (so
the load generator does not share the server's interpreter), after the child
seeded ``--seed`` jobs (their events make a feed a new stream must find the
tail of). This process opens ``--streams`` ``/api/v1/stream`` connections without
a cursor and waits for every ``ready`` message (the time to open them all is
reported), then, with all of them open, fires ``--requests`` concurrent API
requests ``--rounds`` times: a mix of job listings, one job, queue counts, the
event feed and enqueues. One round before those (``--warmup``) opens the 200
keep-alive connections and fills the server's backend pool; it is reported on
its own (``warmup_max_ms``), not in the percentiles. Reported: the status codes
(any 5xx fails the run), p50/p99/max of the API requests (and the p99 of each
kind), the server's CPU time per request, and how many streams were still open
at the end. The target (no 5xx, p99 under 100 ms) is measured here, never
asserted by a timed test. Results are printed and saved to
``results/<date>-concurrency.json``.

By default a round repeats the same five requests, as a crowd of dashboards
polling the same views does; identical reads in flight at once share one
backend read (``offload.web.shared``). ``--distinct`` makes every read its own
(another page, job, tenant or cursor), which no sharing helps: the figure of
the server's own cost per request (``results/<date>-concurrency-distinct.json``).

Each run adds ``--seed`` jobs to the store it is given, so a store that holds
jobs already is refused: give it an empty one (a new file, prefix or schema).

``--server-processes N`` (N > 1) serves with ``offload web apps:app --workers N``
instead, as users scale one server out; the bench process seeds the jobs
first (not on ``memory://``, whose jobs live in one process).

The load generator shares the machine's cores with the server, so it is kept
as light as a C one: each stream and each concurrent request is one keep-alive
HTTP/1.1 connection on plain asyncio streams (under uvloop when installed),
its request bytes built once, its answer read by ``Content-Length``. Client
libraries measured the client: httpx spent ~2 ms of CPU per request and
stalled whole rounds replacing pooled connections; aiohttp 0.2 to 0.4 ms, which on
two cores put a floor of about 100 ms under the p99 of 200 requests sent at
once, whatever the server did. The client's CPU per request is reported next
to the server's, so a reader can see what the machine spent on each side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from procs import cpu_seconds, free_port, tree_cpu_seconds

HERE = Path(__file__).resolve().parent
TARGET_P99_MS = 100.0
TASK = "bench.int"  # one int argument, in both servers below (apps.py)

SERVER = """
import asyncio, sys
import uvicorn
from offload import App
from offload.web import create_app

url, port, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = App(url)

@app.task(name="bench.int")
def noop(n: int) -> int:
    return n

async def fill() -> None:
    for start in range(0, seed, 1000):
        await noop.enqueue_many_async([(n,) for n in range(start, min(seed, start + 1000))])
    await app.close_async()

asyncio.run(fill())
print("seeded", flush=True)
# Keep-alive longer than a run's quiet spells: a connection the server drops
# while the client reuses it is a client-side reset, not the server's answer.
served = create_app(app)
import gc
gc.collect(); gc.freeze()  # as `offload web` does once it has started
uvicorn.run(served, host="127.0.0.1", port=port, log_level="warning",
            timeout_keep_alive=120, backlog=4096)
"""


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload: streams and API requests at once")
    parser.add_argument("--backend", action="append", metavar="URL", required=True)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="every read its own (else the same five requests over and over)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="rounds before the measured ones")
    parser.add_argument("--seed", type=int, default=3000, help="jobs enqueued before the run")
    parser.add_argument(
        "--server-processes",
        type=int,
        default=1,
        help="offload web --workers N (not with memory://)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


class Connection:
    """One keep-alive HTTP/1.1 connection: a request is its prepared bytes, an
    answer is read by its ``Content-Length`` (every API answer carries one)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"content-length:")
        if at < 0:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        length = int(lowered[at + 15 : lowered.index(b"\r\n", at)])
        body = await self.reader.readexactly(length)
        if b"connection: close" in lowered:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def post_json(host: str, path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
    return head.encode() + data


async def wait_up(host: str, port: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            why = child.stderr.read() if child.stderr else ""
            raise RuntimeError(f"the server exited: {why}")
        probe = Connection(host, port)
        try:
            status, _ = await probe.request(get(f"{host}:{port}", "/healthz"))
            if status < 500:
                return
        except OSError:
            pass
        finally:
            probe.close()
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not start in 120 s")


async def open_stream(host: str, port: int, ready: asyncio.Event,
                      alive: list[int], statuses: list[int]) -> None:  # fmt: skip
    """A live ``/api/v1/stream`` without a cursor: ready once the server says so,
    then read and dropped, as a browser tab that is not looked at."""
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(get(f"{host}:{port}", "/api/v1/stream"))
        head = await reader.readuntil(b"\r\n\r\n")
        statuses.append(int(head[9:12]))
        if statuses[-1] != 200:
            return
        alive[0] += 1
        try:
            seen = b""
            while not ready.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    return
                seen = seen[-32:] + chunk
                if b"event: ready" in seen:
                    ready.set()
            while await reader.read(65536):
                pass
        finally:
            alive[0] -= 1
    except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        ready.set()
        if writer is not None:
            writer.close()


def mix(host: str, n: int, job_ids: list[str], distinct: bool) -> bytes:
    """Request ``n`` of a round: job listings, one job, queue counts, the event
    feed and enqueues, in turn. The same five requests over and over, as many
    dashboards polling the same views send them, or (``distinct``) every read
    its own: a page further back, another job, another cursor."""
    kind = n % 5
    if kind == 4:
        return post_json(host, "/api/v1/jobs", {"task": TASK, "args": [n]})
    if not distinct:
        path = ("jobs?limit=50", f"jobs/{job_ids[0]}", "queues", "events?limit=50")[kind]
    else:
        other = job_ids[n % len(job_ids)]
        path = (f"jobs?limit=50&before={other}", f"jobs/{other}", f"queues?tenant=t{n}",
                f"events?limit=50&after={n}")[kind]  # fmt: skip
    return get(host, f"/api/v1/{path}")


async def one_request(conn: Connection, data: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status, _ = await conn.request(data)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        conn.close()
        return 0, (time.perf_counter() - started) * 1000  # 0: no answer (reset)
    return status, (time.perf_counter() - started) * 1000


async def start_server(url: str, port: int, args: argparse.Namespace) -> subprocess.Popen[str]:
    """Started once before the measurement; blocking for its fork is harmless here."""
    if args.server_processes == 1:
        argv = [sys.executable, "-c", SERVER, url, str(port), str(args.seed)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: ASYNC220
    sys.path.insert(0, str(HERE))
    from apps import bench_app

    app, _ = bench_app(url)
    take_int = app.tasks[TASK]
    for start in range(0, args.seed, 1000):
        await take_int.enqueue_many_async(
            [(n,) for n in range(start, min(args.seed, start + 1000))]
        )
    await app.close_async()
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE)}
    argv = [sys.executable, "-m", "offload", "web", "apps:app", "--port", str(port), "--open",
            "--workers", str(args.server_processes), "--log-level", "warning"]  # fmt: skip
    # A session of its own: the supervisor's server processes are stopped with it.
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: ASYNC220
                            text=True, start_new_session=True)  # fmt: skip


def stop(child: subprocess.Popen[str], group: bool) -> None:
    """SIGTERM, then SIGKILL; to the whole process group when the server is a
    supervisor, whose processes would otherwise outlive it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
        else:
            child.send_signal(sig)
        try:
            child.wait(15)
            return
        except subprocess.TimeoutExpired:
            continue


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def refuse_used(url: str) -> None:
    """Each run adds ``--seed`` jobs and a queue count reads them all, so a store
    left over from an earlier run measures slower (40-100 ms of p99 with 3,000
    more): refused, rather than measured quietly."""
    if url.startswith("memory:"):
        return
    from offload import App
    from offload.observability.logs import redact

    app = App(url)
    try:
        held = sum((await (await app.backend()).job_counts()).values())
    finally:
        await app.close_async()
    if held:
        raise SystemExit(f"{redact(url)} holds {held} jobs already: give the bench an empty "
                         "store (a new file, prefix or schema)")  # fmt: skip


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    await refuse_used(url)
    host, port = "127.0.0.1", free_port()
    authority = f"{host}:{port}"
    child = await start_server(url, port, args)
    conns = [Connection(host, port) for _ in range(args.requests)]
    try:
        await wait_up(host, port, child)
        status, body = await conns[0].request(get(authority, "/api/v1/jobs?limit=200"))
        job_ids = [job["id"] for job in json.loads(body)["jobs"]]
        alive, stream_statuses = [0], []
        readies = [asyncio.Event() for _ in range(args.streams)]
        opened = time.perf_counter()
        tasks = [asyncio.create_task(open_stream(host, port, r, alive, stream_statuses))
                 for r in readies]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
        open_s = time.perf_counter() - opened
        requests = [mix(authority, n, job_ids, args.distinct) for n in range(args.requests)]
        warmup: list[tuple[int, float]] = []
        for _ in range(args.warmup):
            warmup += await asyncio.gather(
                *(one_request(c, r) for c, r in zip(conns, requests, strict=True))
            )
        results: list[tuple[int, float]] = []
        cpu_before = tree_cpu_seconds([child.pid])
        client_before = cpu_seconds(os.getpid())
        for _ in range(args.rounds):
            results += await asyncio.gather(
                *(one_request(c, r) for c, r in zip(conns, requests, strict=True))
            )
        server_cpu = tree_cpu_seconds([child.pid]) - cpu_before
        client_cpu = cpu_seconds(os.getpid()) - client_before
        still_open = alive[0]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for conn in conns:
            conn.close()
        stop(child, args.server_processes > 1)
    latencies = [ms for _, ms in results]
    codes: dict[str, int] = {}
    for status, _ in [*warmup, *results, *((s, 0.0) for s in stream_statuses)]:
        codes[str(status)] = codes.get(str(status), 0) + 1
    return {
        "backend": url.split("://")[0], "server_processes": args.server_processes,
        "distinct": args.distinct,
        "streams": args.streams, "streams_open_s": round(open_s, 2),
        "streams_still_open": still_open,
        "requests": len(results),
        "status_codes": codes,
        "server_errors": sum(n for code, n in codes.items() if code.startswith("5")),
        "no_answer": codes.get("0", 0),
        # What the p99 is made of on a quiet machine: the server's CPU for one
        # request (its share of the streams' work included), which a machine
        # shared with other work does not change much, unlike the p99 itself.
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(results), 1), 3),
        # The load generator's own, on the same cores.
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(len(results), 1), 3),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        # Which kind of request the tail is made of (the order of ``mix``).
        "warmup_max_ms": round(max((ms for _, ms in warmup), default=0.0), 1),
        "max_ms_by_round": [round(max(latencies[r : r + args.requests]), 1)
                            for r in range(0, len(latencies), args.requests)],
        "p99_ms_by_kind": {kind: round(pct(latencies[n::5], 0.99), 1) for n, kind in
                           enumerate(("list", "job", "queues", "events", "enqueue"))},
    }  # fmt: skip


def run(coro: Any) -> Any:
    """Under uvloop when installed (offload's web extra brings it), as the
    server runs: the client's own loop is part of the client's cost."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    args = parse()
    load_before = os.getloadavg()
    rows = [run(measure(url, args)) for url in args.backend]
    load_after = os.getloadavg()
    for row in rows:
        verdict = "ok" if row["server_errors"] == 0 and row["p99_ms"] < TARGET_P99_MS else "MISSED"
        print(json.dumps(row), verdict)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "concurrency-distinct" if args.distinct else "concurrency"
    path = args.out / f"{dt.date.today().isoformat()}-{name}.json"
    path.write_text(json.dumps({
        "target": {"server_errors": 0, "p99_ms_below": TARGET_P99_MS},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "backend")},
        "results": rows,
    }, indent=2) + "\n")  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
