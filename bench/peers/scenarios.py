"""The five scenarios, driven from the harness against one adapter subprocess.

Every figure comes from the trace the jobs leave in Redis (``INCR`` of one key,
``RPUSH`` of start delays), so a job counts only once it has run. Each scenario
has a deadline; a scenario past it records ``timeout`` with the count it reached
instead of hanging, and a worker that dies records ``error`` with its log's tail.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from housekeeping import Autovacuum

HERE = Path(__file__).resolve().parent
DONE_KEY = "peers:trace:done"
LATENCY_KEY = "peers:trace:latency"
POLL = 0.01  # seconds between two reads of the counter
STARTUP = 5.0  # seconds an adapter process may take to import its library

Result = dict[str, Any]


class ScenarioError(RuntimeError):
    """An adapter command or a worker failed; the message carries its output."""


@dataclass(frozen=True)
class Target:
    """One row of the results: a library (adapter) on one broker."""

    row: str
    adapter: str
    broker: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    """How many jobs each scenario runs; ``--quick`` divides them by ten."""

    enqueue: int = 20_000
    latency: int = 200
    latency_rate: float = 100.0
    io: int = 5_000
    memory_small: int = 1_000
    memory_big: int = 100_000

    def scaled(self, divisor: int) -> Counts:
        return Counts(
            self.enqueue // divisor, max(20, self.latency // divisor), self.latency_rate,
            self.io // divisor, max(100, self.memory_small // divisor),
            self.memory_big // divisor,
        )  # fmt: skip


@dataclass(frozen=True)
class Timeouts:
    """Seconds each scenario may take before it is recorded as ``timeout``."""

    enqueue: float = 120.0
    drain: float = 120.0
    latency: float = 60.0
    io: float = 150.0
    memory: float = 240.0
    startup: float = 60.0


class Driver:
    """Runs one target's adapter commands and workers in its own venv."""

    def __init__(self, target: Target, python: Path, redis_url: str, logs: Path) -> None:
        self.target = target
        self.python = python
        self.trace = redis.Redis.from_url(redis_url)
        self.logs = logs
        self.env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        self.env.update(target.env, PEERS_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
        self._workers = 0
        self._housekeeper: Autovacuum | None = None

    def postgres_dsn(self) -> str | None:
        """The database a PostgreSQL row writes to (its own), else None."""
        if self.target.broker != "postgres":
            return None
        if self.target.adapter == "offload":
            return self.target.env["PEERS_OFFLOAD_URL"].split("?", 1)[0]
        return self.target.env.get("PEERS_PROCRASTINATE_URL")

    def _argv(self, *args: str) -> list[str]:
        return [str(self.python), str(HERE / "adapter_main.py"), self.target.adapter, *args]

    def call(self, *args: str, timeout: float) -> Result:
        """One adapter command; its last stdout line is its JSON answer."""
        try:
            proc = subprocess.run(self._argv(*args), env=self.env, capture_output=True,
                                  text=True, timeout=timeout, cwd=HERE)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"{' '.join(args)} took over {timeout:.0f}s") from exc
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise ScenarioError(_tail(proc.stderr or proc.stdout))
        answer: Result = json.loads(lines[-1])
        if "error" in answer:
            raise ScenarioError(answer["error"])
        return answer

    def start_worker(self, mode: str) -> subprocess.Popen[bytes]:
        self._workers += 1
        dsn = self.postgres_dsn()
        if dsn is not None:
            self._housekeeper = Autovacuum(dsn)
            self._housekeeper.start()
        log = self.logs / f"{self.target.row.replace('/', '-')}-worker{self._workers}.log"
        with log.open("wb") as out:
            return subprocess.Popen(self._argv("worker", "--mode", mode), env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, cwd=HERE)  # fmt: skip

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL at once: graceful shutdown is not measured, every scenario starts
        from a reset, and some workers take seconds to wind down politely."""
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if self._housekeeper is not None:
            self._housekeeper.stop()
            self._housekeeper = None

    def worker_log(self) -> str:
        log = self.logs / f"{self.target.row.replace('/', '-')}-worker{self._workers}.log"
        return _tail(log.read_text(errors="replace")) if log.exists() else ""

    def done(self) -> int:
        return int(self.trace.get(DONE_KEY) or 0)

    def latencies(self) -> list[float]:
        return [float(v) for v in self.trace.lrange(LATENCY_KEY, 0, -1)]

    def enqueue(self, kind: str, n: int, bulk: bool, seconds: float, rate: float = 0.0) -> Result:
        """Enqueue up to ``n`` jobs, stopping after ``seconds``; says how many.
        With ``rate``, one by one at that many per second."""
        mode = "bulk" if bulk else "one"
        return self.call("enqueue", "--kind", kind, "--n", str(n), "--mode", mode,
                         "--max-seconds", str(max(1.0, seconds - STARTUP)),
                         "--rate", str(rate), timeout=seconds + 60)  # fmt: skip


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def rss_kib(pid: int) -> int:
    """VmRSS of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ScenarioError(f"no VmRSS for pid {pid}")


@dataclass
class Watch:
    """When a worker's first and last jobs were seen done."""

    started: float
    first: float | None = None
    first_count: int = 0
    finished: float | None = None
    count: int = 0


def watch(d: Driver, proc: subprocess.Popen[bytes], n: int, deadline: float) -> Watch:
    """Poll the counter until ``n`` jobs are done, the worker dies or time is up."""
    w = Watch(time.perf_counter())
    while True:
        w.count = d.done()
        now = time.perf_counter()
        if w.count and w.first is None:
            w.first, w.first_count = now, w.count
        if w.count >= n:
            w.finished = now
            return w
        if proc.poll() is not None:
            raise ScenarioError(f"worker exited ({proc.returncode}):\n{d.worker_log()}")
        if time.monotonic() > deadline:
            return w
        time.sleep(POLL)


def ok(value: float, **extra: Any) -> Result:
    return {"status": "ok", "value": value, **extra}


def timed_out(value: float | None = None, **extra: Any) -> Result:
    """Past the deadline; ``value`` is the figure so far, if there is one."""
    return {"status": "timeout", "value": value, **extra}


# -- scenario 1: enqueue ---------------------------------------------------------------


def enqueue(d: Driver, n: int, bulk: bool, timeout: float) -> Result:
    """Jobs/s of up to ``n`` no-op jobs from one producer; leaves them queued. A
    producer still going at the deadline stops there: the rate is of the jobs it
    enqueued, and the result says how many (``n``) of the ``requested``."""
    d.call("reset", timeout=60)
    answer = d.enqueue("noop", n, bulk, timeout)
    done: int = answer["n"]
    return ok(done / answer["seconds"], seconds=answer["seconds"], n=done, requested=n)


# -- scenario 2 and 4: drain a full queue ------------------------------------------------


def drain(d: Driver, n: int, mode: str, timeout: float) -> Result:
    """Jobs/s of one worker process over jobs already queued, from its first
    completed job to its last; its start-up (spawn to first job) is kept apart."""
    proc = d.start_worker(mode)
    try:
        w = watch(d, proc, n, time.monotonic() + timeout)
    finally:
        d.stop(proc)
    if w.first is None:
        return timed_out(done=w.count, n=n)
    end = w.finished or time.perf_counter()
    span = max(end - w.first, 1e-6)
    rate = (w.count - w.first_count) / span
    extra = {"seconds": span, "startup_s": w.first - w.started, "done": w.count, "n": n}
    return ok(rate, **extra) if w.finished else timed_out(rate, **extra)


def io_mix(d: Driver, n: int, bulk: bool, timeout: float) -> Result:
    """``n`` jobs that each wait 10 ms, queued first, then drained by one worker
    using the library's own concurrency (async or threads)."""
    d.call("reset", timeout=60)
    began = time.monotonic()
    queued: int = d.enqueue("io", n, bulk, timeout / 3)["n"]
    return drain(d, queued, "io", timeout - (time.monotonic() - began))


# -- scenario 3: latency ---------------------------------------------------------------


def latency(d: Driver, n: int, rate: float, timeout: float) -> Result:
    """Enqueue-to-start delay of ``n`` probes sent at ``rate``/s into an idle,
    warmed-up worker (one job run first proves the worker is listening)."""
    d.call("reset", timeout=60)
    proc = d.start_worker("fast")
    deadline = time.monotonic() + timeout
    try:
        d.enqueue("noop", 1, False, timeout)
        if watch(d, proc, 1, deadline).finished is None:
            return timed_out(stage="warm-up")
        # Paced: sent all at once, the probes would measure how fast a burst
        # drains, not how soon an idle worker starts a job.
        d.enqueue("probe", n, False, timeout, rate=rate)
        w = watch(d, proc, n + 1, deadline)
    finally:
        d.stop(proc)
    if w.finished is None:
        return timed_out(done=w.count - 1, n=n)
    ms = sorted(v * 1000 for v in d.latencies())
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return ok(statistics.median(ms), p50_ms=statistics.median(ms), p99_ms=cuts[98],
              max_ms=ms[-1], n=len(ms))  # fmt: skip


# -- scenario 5: memory ----------------------------------------------------------------


def memory(d: Driver, small: int, big: int, bulk: bool, timeout: float) -> Result:
    """Worker RSS after ``small`` jobs and after ``big`` jobs (same process). At
    the deadline the second reading is taken where the worker got to (``jobs``)."""
    d.call("reset", timeout=60)
    proc = d.start_worker("fast")
    deadline = time.monotonic() + timeout
    try:
        d.enqueue("noop", small, bulk, timeout / 2)
        if watch(d, proc, small, deadline).finished is None:
            return timed_out(stage=f"first {small}", done=d.done())
        rss_small = rss_kib(proc.pid)
        d.enqueue("noop", big - small, bulk, deadline - time.monotonic())
        finished = watch(d, proc, big, deadline).finished
        rss_big, jobs = rss_kib(proc.pid), d.done()
    finally:
        d.stop(proc)
    extra = {
        "rss_small_mib": rss_small / 1024,
        "rss_big_mib": rss_big / 1024,
        "growth_mib": (rss_big - rss_small) / 1024,
        "small": small,
        "jobs": jobs,
        "big": big,
    }
    return ok(rss_big / 1024, **extra) if finished else timed_out(rss_big / 1024, **extra)
