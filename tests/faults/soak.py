"""Scenario 26, the soak: a seeded random schedule of faults over many jobs and
several worker processes, checked by the ledger (I1-I4).

``scripts/soak BACKEND [--jobs N] [--seed S] [--workers W]``; a failure prints
its seed, and the same seed replays the same schedule (the fault kinds, their
order and the job mix; process timing still varies). Faults: worker kill -9 (1),
crash after return (2), SIGTERM (3), SIGSTOP past the lease (4), many racing
workers (5), malformed and unknown-task jobs (13, 14), raising (16) and poison
(17) tasks. Broker faults (6-12) need servers of the soak's own and run as
their scenario tests instead.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from uuid_utils import uuid7

from offload import App, NewJob, State
from tests.faults.checker import check
from tests.faults.ledger import Ledger
from tests.faults.workers import Workers

MIX = [("f.record", 0.90), ("f.raises", 0.03), ("f.crash_after", 0.03), ("f.poison", 0.01),
       ("!malformed", 0.015), ("!unknown", 0.015)]  # fmt: skip
WORKER_FAULTS = ["kill", "term", "stop"]


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
        attempts = 2 if name == "f.poison" else 3
        jobs.append(NewJob(str(uuid7()), task, payload, max_attempts=attempts))
    return jobs


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="offload-soak-"))
    url = backend_url(args.backend, folder)
    ledger = Ledger(folder / "ledger.jsonl")
    app = App(url)
    backend = await app.backend()
    jobs = plan_jobs(rng, args.jobs)
    # Jobs arrive in steps of --per-fault, one worker fault after each step:
    # the faults grow with the jobs however fast the workers drain them (with
    # every job enqueued up front, 10,000-job runs saw 1 to 35 worker faults).
    steps = [jobs[i : i + args.per_fault] for i in range(0, len(jobs), args.per_fault)]
    ids: list[str] = []
    workers = Workers(url, ledger, folder, lease=args.lease, grace=1.0, quiet=True)
    workers.run(args.workers, FAULT_WORK="0.005")
    injected: Counter[str] = Counter()
    stopped: list[int] = []
    started = time.monotonic()
    due = 0  # worker faults owed: the crash-after-return tasks often leave none alive
    try:
        while steps or not await _all_ended(app, ids):
            if steps:
                step = steps.pop(0)
                for i in range(0, len(step), 500):
                    ids += [j.id for j in await backend.job_enqueue_many(step[i : i + 500])]
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                due += 1
            else:
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                due += rng.random() < args.fault_rate
            missing = args.workers - len([p for p in workers.procs if p.poll() is None])
            if missing > 0:
                workers.run(missing, FAULT_WORK="0.005")
            live = [p for p in workers.procs if p.poll() is None and p.pid not in stopped]
            if live and due:
                due -= 1
                fault = rng.choice(WORKER_FAULTS)
                victim = rng.choice(live)
                injected[fault] += 1
                await _inject(workers, fault, victim, stopped, args.lease)
            if time.monotonic() - started > args.timeout:
                print(f"soak: timed out after {args.timeout}s (seed {args.seed})")
                return 2
        problems = await check(app, ledger, ids, fenced=stopped, timeout=60)
    finally:
        workers.close()
        await app.close_async()
    report(args, ids, ledger, injected, problems, time.monotonic() - started)
    return 1 if problems else 0


async def _inject(workers: Workers, fault: str, victim: object, stopped: list[int],
                  lease: float) -> None:  # fmt: skip
    proc = victim  # a Popen
    if fault == "kill":
        workers.kill(proc)  # type: ignore[arg-type]
    elif fault == "term":
        await asyncio.to_thread(workers.terminate, proc, 30.0)  # type: ignore[arg-type]
    else:
        workers.stop(proc)  # type: ignore[arg-type]
        stopped.append(proc.pid)  # type: ignore[attr-defined]
        await asyncio.sleep(lease * 2.5)  # past its lease
        workers.resume(proc)  # type: ignore[arg-type]


async def _all_ended(app: App, ids: list[str]) -> bool:
    from offload import JobQuery

    for state in (State.QUEUED, State.RUNNING, State.SCHEDULED):
        if await app.list_jobs_async(JobQuery(states=frozenset({state}), limit=1)):
            return False
    return True


def report(args: argparse.Namespace, ids: list[str], ledger: Ledger, injected: Counter[str],
           problems: list[str], took: float) -> None:  # fmt: skip
    runs = ledger.executions()
    crashes = Counter(f["what"] for f in ledger.faults())
    print(f"soak {args.backend}: seed {args.seed}, {len(ids)} jobs, {args.workers} workers, "
          f"{took:.0f}s")  # fmt: skip
    print(f"  worker faults injected: {dict(injected)}; ledger faults: {dict(crashes)}")
    print(f"  executions {len(runs)}, re-runs {len(runs) - len({r.job_id for r in runs})}")
    print(f"  violations: {len(problems)}")
    for line in problems[:50]:
        print("   ", line)
    if problems:
        print(f"replay: scripts/soak {args.backend} --jobs {args.jobs} --seed {args.seed}")


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
