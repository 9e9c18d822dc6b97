"""Scenario 26, the soak: a seeded random schedule of faults over many jobs and
several worker processes, checked by the ledger (I1-I4).

``scripts/soak BACKEND [--jobs N] [--seed S] [--workers W] [--per-fault N]
[--broker-faults]``; a failure prints its seed, and the same seed replays the
same schedule (the fault kinds, their order and the job mix; process timing
still varies). Faults: worker kill -9 (1), crash after return (2), SIGTERM (3),
SIGSTOP past the lease (4), many racing workers (5), malformed and
unknown-task jobs (13, 14), an oversized enqueue (15), raising (16) and poison
(17) tasks, a task hanging past its timeout (18).

``--broker-faults`` (redis, postgres) gives the soak a broker of its own
(``soak_broker.py``): the schedule then also draws broker restarts (6),
crashes (7), PostgreSQL's immediate shutdown (8), network cuts (10) and a slow
proxy (11) between the workers and it, and the producer enqueues through the
outages (``producer.py``). It is a flag, not the default, so that
``scripts/soak postgres`` stays the run the older figures of
docs/reliability.md were made with (the shared server, replayable by seed),
and so that a soak of a URL or of SQLite, which it cannot own, reads the same.
Clock skew (12) is left out: it needs ``faketime`` around one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from uuid_utils import uuid7

from offload import App, JobQuery, NewJob, State
from tests.faults.checker import KILLS, check
from tests.faults.ledger import Ledger
from tests.faults.producer import OVERSIZED, Producer, retried
from tests.faults.soak_broker import SoakBroker
from tests.faults.tasks import register
from tests.faults.workers import Workers

MIX = [("f.record", 0.875), ("f.raises", 0.03), ("f.crash_after", 0.03), ("f.poison", 0.01),
       ("f.hang", 0.01), ("!malformed", 0.015), ("!unknown", 0.015),
       ("!oversized", 0.005)]  # fmt: skip
WORKER_FAULTS = ["kill", "term", "stop"]
VICTIM_WAIT = 3.0
"""Seconds a worker fault waits for a worker running a job."""
WORKER_ENV = {"FAULT_WORK": "0.005", "FAULT_HANG": "2"}
"""``f.hang`` sleeps 2 s past its 1 s timeout: long enough to be stopped by
it, short enough to give its thread back to the worker's pool."""
HANG_QUEUE = "hang"
"""``f.hang`` jobs have a queue and a worker of their own: in the shared
queue a crash-after-return job kills their worker well before their timeout
(a worker there lives well under a second), so the timeout never fired."""


def backend_url(name: str, folder: Path) -> str:
    tag = uuid.uuid4().hex[:10]
    if name == "sqlite":
        return f"sqlite:///{folder / 'soak.db'}"
    if name == "postgres":
        return f"postgresql://postgres@127.0.0.1:5432/test?schema=soak_{tag}"
    if name == "redis":
        return f"redis://127.0.0.1:6379/0?prefix=soak{tag}"
    if name.startswith("redis+cluster://") or "://" in name:
        return name
    raise SystemExit(f"unknown backend {name!r}: sqlite, postgres, redis or a URL")


def drop_store(name: str, url: str) -> None:
    """The soak's own prefix or schema on the shared servers, gone once checked:
    10,000 jobs with their events are a lot to leave behind on a shared server."""
    query = parse_qs(urlsplit(url).query)
    if name == "redis":
        from tests.servers.redis import drop_prefix

        drop_prefix([("127.0.0.1", 6379)], query["prefix"][0])
    elif name == "postgres":
        from tests.servers.postgres import drop_schema

        drop_schema("postgresql://postgres@127.0.0.1:5432/test", query["schema"][0])


def plan_jobs(rng: random.Random, count: int) -> list[NewJob]:
    names = [n for n, _ in MIX]
    weights = [w for _, w in MIX]
    jobs = []
    for name in rng.choices(names, weights, k=count):
        task, payload = name, b"{}"
        if name == "!malformed":
            task, payload = "f.record", b"\xff{not json"
        elif name == "!unknown":
            task = "os.system"
        elif name == "!oversized":
            task = OVERSIZED  # the producer enqueues it through its task, and is refused
        if name == "f.hang":
            # One attempt: a second would start while the first one's thread
            # still sleeps (a sync task cannot be stopped), a real overlap.
            jobs.append(NewJob(str(uuid7()), task, payload, queue=HANG_QUEUE, max_attempts=1,
                               timeout=1.0))  # fmt: skip
            continue
        attempts = 2 if name == "f.poison" else 3
        jobs.append(NewJob(str(uuid7()), task, payload, max_attempts=attempts))
    return jobs


@dataclass
class Soak:
    """One soak's state: the producer, the workers, the faults owed and made."""

    args: argparse.Namespace
    rng: random.Random
    app: App
    ledger: Ledger
    producer: Producer
    workers: Workers
    broker: SoakBroker | None
    ids: list[str] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    exits: Counter[int] = field(default_factory=Counter)
    stopped: list[int] = field(default_factory=list)
    seen_dead: set[int] = field(default_factory=set)
    hangers: set[int] = field(default_factory=set)
    running: Running = field(init=False)
    outage: asyncio.Task[None] | None = None
    due: int = 0  # faults owed: the crash-after-return tasks often leave no worker alive

    def __post_init__(self) -> None:
        self.running = Running(self.ledger.path)

    async def drive(self, jobs: list[NewJob]) -> bool:
        """Jobs arrive in steps of --per-fault, one fault after each step: the
        faults grow with the jobs however fast the workers drain them (with
        every job enqueued up front, 10,000-job runs saw 1 to 35 worker
        faults). False when the soak timed out."""
        per = self.args.per_fault
        steps = [jobs[i : i + per] for i in range(0, len(jobs), per)]
        started = time.monotonic()
        while steps or not await retried(lambda: _all_ended(self.app)):
            # Broker faults come with the steps only: drawn every pause or so
            # while the jobs drain, an outage (2.5 leases and a restart) left
            # the broker down most of the time, and the drain never ended.
            enqueuing = bool(steps)
            if steps:
                self.ids += await self.producer.enqueue(steps.pop(0))
                await asyncio.sleep(self.rng.uniform(0.2, 1.0))
                self.due += 1
            else:
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                self.due += self.rng.random() < self.args.fault_rate
            self._respawn()
            await self._fault(broker=enqueuing)
            if time.monotonic() - started > self.args.timeout:
                return False
        if self.outage is not None:
            await self.outage
        return True

    def _respawn(self) -> None:
        """Workers that died (faults, poison, crash after return) are replaced;
        each death is written to the ledger, so a run it cut short ends there
        for I2 even when no fault of the soak's caused it."""
        for proc in self.workers.procs:
            if proc.poll() is not None and proc.pid not in self.seen_dead:
                self.seen_dead.add(proc.pid)
                self.exits[proc.returncode] += 1
                self.ledger.fault("exited", pid=proc.pid, code=proc.returncode)
        alive = self._alive()
        hanging = len([p for p in alive if p.pid in self.hangers])
        missing = self.args.workers - (len(alive) - hanging)
        if missing > 0:
            self.workers.run(missing, **WORKER_ENV)
        if not hanging:
            self.hangers |= {p.pid for p in self.workers.run(1, FAULT_QUEUES=HANG_QUEUE,
                                                             **WORKER_ENV)}  # fmt: skip

    def _alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.workers.procs if p.poll() is None]

    async def _victims(self) -> list[subprocess.Popen[bytes]]:
        """Live workers running a job now, waited for up to ``VICTIM_WAIT``.
        A worker fault on a worker still starting tests nothing, and most
        live workers are: crash-after-return and poison jobs kill a worker
        every few dozen jobs, so the respawned ones are many. Picked from
        whoever was alive, at most one SIGTERM of 19-31 per 10,000-job run
        reached a worker that had started a job."""
        deadline = time.monotonic() + VICTIM_WAIT
        while True:
            running = self.running.pids()
            chosen = [p for p in self._alive() if p.pid in running and p.pid not in self.stopped]
            if chosen or time.monotonic() > deadline:
                return chosen
            await asyncio.sleep(0.05)

    async def _fault(self, broker: bool) -> None:
        """An owed fault: on a live worker, or on the broker when it is not
        already in an outage (which runs beside the producer, so enqueues meet
        it)."""
        if not self.due:
            return
        live = await self._victims()
        calm = broker and (self.outage is None or self.outage.done())
        kinds = (WORKER_FAULTS if live else []) + (
            self.broker.kinds if self.broker is not None and calm else [])  # fmt: skip
        if not kinds:
            return
        self.due -= 1
        fault = self.rng.choice(kinds)
        self.injected[fault] += 1
        if fault in WORKER_FAULTS:
            victim = self.rng.choice(live)
            if not await _inject(self.workers, fault, victim, self.stopped, self.args.lease):
                self.injected["term outlived by 30 s"] += 1
            return
        assert self.broker is not None
        if self.outage is not None:
            await self.outage  # done: raises what went wrong in it, if anything
        self.outage = asyncio.create_task(self.broker.inject(fault, self.ledger, self.args.lease))


@dataclass
class Running:
    """The runs the ledger shows started and not ended, read as it grows (a
    whole read per look would cost more than the soak as the ledger grows)."""

    path: Path
    offset: int = 0
    open: set[tuple[str, int, int]] = field(default_factory=set)

    def pids(self) -> set[int]:
        if self.path.exists():
            with self.path.open("rb") as ledger:
                ledger.seek(self.offset)
                data = ledger.read()
            complete = data[: data.rfind(b"\n") + 1]
            self.offset += len(complete)
            for line in complete.splitlines():
                self._note(json.loads(line))
        return {pid for _, _, pid in self.open}

    def _note(self, row: dict[str, Any]) -> None:
        key = (row.get("job", ""), row.get("attempt", 0), row.get("pid", 0))
        if row["kind"] == "start":
            self.open.add(key)
        elif row["kind"] == "end":
            self.open.discard(key)
        elif row["kind"] == "fault" and row["what"] in KILLS:
            self.open = {k for k in self.open if k[2] != row["pid"]}


@dataclass
class Result:
    problems: list[str]
    injected: Counter[str]
    timed_out: bool


async def run(args: argparse.Namespace) -> int:
    result = await soak(args)
    if result.timed_out:
        print(f"soak: timed out after {args.timeout}s (seed {args.seed})")
        return 2
    return 1 if result.problems else 0


async def soak(args: argparse.Namespace) -> Result:
    folder = Path(tempfile.mkdtemp(prefix="offload-soak-"))
    broker = SoakBroker.start(args.backend) if args.broker_faults else None
    url = broker.url if broker is not None else backend_url(args.backend, folder)
    ledger = Ledger(folder / "ledger.jsonl")
    app = App(url)
    register(app, ledger)  # the producer enqueues the oversized job through its task
    workers = Workers(broker.worker_url if broker is not None else url, ledger, folder,
                      lease=args.lease, grace=1.0, quiet=True)  # fmt: skip
    try:
        backend = await retried(app.backend)
        state = Soak(args, random.Random(args.seed), app, ledger, Producer(app, backend, ledger),
                     workers, broker)  # fmt: skip
        jobs = plan_jobs(state.rng, args.jobs)
        state._respawn()  # the first workers
        started = time.monotonic()
        if not await state.drive(jobs):
            return Result([], state.injected, timed_out=True)
        problems = await check(app, ledger, state.ids, fenced=state.stopped, timeout=60)
        problems += await state.producer.nothing_oversized_stored()
    finally:
        workers.close()
        await app.close_async()
        if broker is not None:
            broker.close()
        else:
            drop_store(args.backend, url)
    report(args, state, problems, time.monotonic() - started)
    return Result(problems, state.injected, timed_out=False)


async def _inject(workers: Workers, fault: str, victim: object, stopped: list[int],
                  lease: float) -> bool:  # fmt: skip
    """False when a SIGTERM'd worker was still running 30 s later: its stacks
    go to workers.log (SIGUSR1, worker_main), then it is killed."""
    proc = victim  # a Popen
    if fault == "kill":
        workers.kill(proc)  # type: ignore[arg-type]
    elif fault == "term":
        try:
            await asyncio.to_thread(workers.terminate, proc, 30.0)  # type: ignore[arg-type]
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # type: ignore[attr-defined]
            await asyncio.sleep(1.0)  # the dump is written by the worker, not awaited
            workers.kill(proc)  # type: ignore[arg-type]
            return False
    else:
        workers.stop(proc)  # type: ignore[arg-type]
        stopped.append(proc.pid)  # type: ignore[attr-defined]
        await asyncio.sleep(lease * 2.5)  # past its lease
        workers.resume(proc)  # type: ignore[arg-type]
    return True


async def _all_ended(app: App) -> bool:
    for state in (State.QUEUED, State.RUNNING, State.SCHEDULED):
        if await app.list_jobs_async(JobQuery(states=frozenset({state}), limit=1)):
            return False
    return True


def report(args: argparse.Namespace, state: Soak, problems: list[str], took: float) -> None:
    runs = state.ledger.executions()
    crashes = Counter(f["what"] for f in state.ledger.faults())
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    made = state.producer
    print(f"soak {args.backend}: seed {args.seed}, {len(state.ids)} jobs, {args.workers} workers, "
          f"{took:.0f}s, load average {load}")  # fmt: skip
    print(f"  faults injected: {dict(state.injected)}; ledger faults: {dict(crashes)}")
    print(f"  enqueue calls that raised {made.failed_calls} (jobs they had stored "
          f"{made.stored_by_failed}); oversized refused {made.refused}")  # fmt: skip
    print(f"  worker exits by code: {dict(state.exits)}; runs past their timeout "
          f"{sum(r.outcome == 'hung' for r in runs)}")  # fmt: skip
    print(f"  executions {len(runs)}, re-runs {len(runs) - len({r.job_id for r in runs})}")
    print(f"  violations: {len(problems)}")
    for line in problems[:50]:
        print("   ", line)
    if problems:
        flags = " --broker-faults" if args.broker_faults else ""
        print(f"replay: scripts/soak {args.backend} --jobs {args.jobs} --seed {args.seed} "
              f"--workers {args.workers} --per-fault {args.per_fault}{flags}")  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    p.add_argument("backend", help="sqlite, postgres, redis, or a backend URL")
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--lease", type=float, default=1.0)
    p.add_argument(
        "--per-fault",
        type=int,
        default=200,
        help="jobs enqueued per step; one worker fault follows each step",
    )
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.5,
        help="chance of a worker fault per pause once every job is enqueued",
    )
    p.add_argument(
        "--broker-faults",
        action="store_true",
        help="start a broker of the soak's own (redis, postgres) and fault it too",
    )
    p.add_argument("--timeout", type=float, default=3600.0)
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    print(f"soak {args.backend}: seed {args.seed}", flush=True)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
