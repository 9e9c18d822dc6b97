"""Workers on two "hosts" draining one backlog through one broker, each in a
network namespace of its own: a million jobs, no loss, no overlap, the curve
of jobs/s over time and each worker's RSS along it.

    .venv/bin/python bench/hosts.py [--backend redis-cluster --backend postgres]
        [--jobs 1000000] [--hosts 2] [--workers-per-host 2] [--concurrency 50]

Runs as root (it makes network namespaces), ``ip``, ``redis-server`` and
PostgreSQL's ``initdb``/``pg_ctl``. For each backend:

1. namespaces ``offload-bench-<tag>-broker`` and ``-h1``, ``-h2``, … (see
   ``netns.py``); a throwaway 3-master Redis Cluster or PostgreSQL started
   inside the broker's, listening only on its service address;
2. ``--jobs`` jobs of ``bench.hosts`` (one ``int``) bulk-enqueued from the
   broker's namespace, 1,000 a call, their ids kept;
3. ``--workers-per-host`` ``offload worker hosts_app:app --burst`` processes
   started in each host namespace at once; every second until the last one
   exits: the runs in the ledgers (their size), each worker's ``VmRSS`` and
   the broker's CPU seconds (its processes and their children, from
   ``/proc``), and every ``--count-every`` seconds the queue's succeeded jobs
   (one ``job_counts`` call);
4. the ledgers and the backend checked against I1-I3 (``hosts_check.py``):
   every job ran, none overlapped, the backend lists each as succeeded with
   the attempts its ledger shows;
5. ``results/<date>-hosts-<backend>.json``: the summary and the curve.

Everything it made is removed at the end, on an exception and on SIGTERM,
SIGINT or SIGHUP alike. The hosts share the machine's cores with the broker
and with each other: the namespaces separate the network stacks (every call
crosses a veth pair), not the CPUs, so the curve shows how the broker and the
protocol behave under workers that are remote in the network's sense.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.servers
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hosts_check as check
from hosts_app import HOST_ENV, LEDGER_ENV, TASK_NAME, make_app, read_runs, runs_recorded
from netns import Net, in_ns
from procs import status_kib, tree_cpu_seconds
from tests.servers.postgres import Cluster, bin_dir

from offload import App
from offload.backends.base import Backend
from offload.job import JobQuery
from offload.lifecycle import State

HERE = Path(__file__).resolve().parent
CHUNK = 1000
PAGE = 1000
REDIS_PORTS = (7001, 7002, 7003)
PG_PORT = 5432
# PostgreSQL counts by reading every row: at a million jobs one count ran for
# about a second on the server (with two parallel workers), so a count every
# second would take a core from the drain it measures. The ledgers give the
# per-second curve; the backend's count checks it.
COUNT_EVERY = {"redis-cluster": 1.0, "postgres": 10.0}
CLEANUP = contextlib.ExitStack()


# brokers ---------------------------------------------------------------------------


@dataclass
class Broker:
    url: str
    roots: Callable[[], list[int]]
    """The broker's processes; their children count as the broker too."""


def start_redis_cluster(net: Net, home: Path, stack: contextlib.ExitStack) -> Broker:
    host = net.service_ip
    procs: list[subprocess.Popen[bytes]] = []
    stack.callback(stop_all, procs)
    for port in REDIS_PORTS:
        folder = home / f"redis-{port}"
        folder.mkdir()
        # Protected mode refuses every client not on loopback; the only
        # address bound is the namespace's, which no other machine can reach.
        argv = ["redis-server", "--port", str(port), "--bind", host, "--protected-mode", "no",
                "--cluster-enabled", "yes", "--cluster-announce-ip", host, "--save", "",
                "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
        quiet = subprocess.DEVNULL
        procs.append(subprocess.Popen(in_ns(net.broker, argv), start_new_session=True,
                                      stdout=quiet, stderr=quiet))  # fmt: skip
    for port in REDIS_PORTS:
        wait_ping(host, port)
    nodes = [f"{host}:{p}" for p in REDIS_PORTS]
    subprocess.run(in_ns(net.broker, ["redis-cli", "--cluster", "create", *nodes, "--cluster-yes"]),
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    wait_cluster_ok(host)
    return Broker(f"redis+cluster://{host}:{REDIS_PORTS[0]}", lambda: [p.pid for p in procs])


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_ping(host: str, port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(host=host, port=port).ping()
            return
        time.sleep(0.1)
    raise RuntimeError(f"redis-server on {host}:{port} did not start")


def wait_cluster_ok(host: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        infos = [redis.Redis(host=host, port=p).cluster("info") for p in REDIS_PORTS]
        if all(i.get("cluster_state") == "ok" for i in infos):
            return
        time.sleep(0.2)
    raise RuntimeError("the cluster did not become ok")


@dataclass
class NsCluster(Cluster):
    """The tests' throwaway PostgreSQL, run inside a namespace and listening on
    its address only (``Cluster`` already runs it as ``postgres`` under root)."""

    ns: str = ""
    host: str = ""
    clients: str = ""

    def init(self) -> NsCluster:
        """initdb trusts loopback only; the hosts connect from their links."""
        super().init()
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.clients} trust\n")
        return self

    def start(self, timeout: float = 30.0) -> None:
        options = (f"-c listen_addresses={self.host} -p {self.port} -k {self.root} "
                   "-c fsync=off -c max_connections=200")  # fmt: skip
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w",
                  "-t", str(int(timeout)), "start")  # fmt: skip

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(in_ns(self.ns, command), check=check, capture_output=True, cwd=self.root)

    def postmaster(self) -> list[int]:
        return [int((self.data / "postmaster.pid").read_text().split()[0])]


def start_postgres(net: Net, home: Path, stack: contextlib.ExitStack) -> Broker:
    folder = bin_dir()
    if folder is None:
        raise SystemExit("no initdb/pg_ctl found (PG_BIN, PATH, /usr/lib/postgresql)")
    cluster = NsCluster(folder, port=PG_PORT, ns=net.broker, host=net.service_ip,
                        clients=str(net.base))  # fmt: skip
    stack.callback(cluster.destroy)
    cluster.init().start()
    url = f"postgresql://{cluster.user}@{net.service_ip}:{PG_PORT}/postgres?schema=offload_hosts"
    return Broker(url, cluster.postmaster)


BROKERS = {"redis-cluster": start_redis_cluster, "postgres": start_postgres}


# workers and sampling ----------------------------------------------------------------


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    exited_at: float | None = None


def start_workers(net: Net, url: str, queue: str, args: argparse.Namespace,
                  run_dir: Path) -> list[Worker]:  # fmt: skip
    workers: list[Worker] = []
    for i, ns in enumerate(net.host_names, 1):
        for k in range(1, args.workers_per_host + 1):
            name = f"h{i}-{k}"
            env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE),
                   LEDGER_ENV: str(run_dir / "ledger"), HOST_ENV: name}  # fmt: skip
            argv = [sys.executable, "-m", "offload", "worker", "hosts_app:app",
                    "--queues", queue, "--burst", "--concurrency", str(args.concurrency),
                    "--log-level", "warning"]  # fmt: skip
            log = run_dir / f"{name}.log"
            with log.open("wb") as err:
                proc = subprocess.Popen(in_ns(ns, argv), env=env, stdout=subprocess.DEVNULL,
                                        stderr=err, start_new_session=True)  # fmt: skip
            workers.append(Worker(name, proc, log))
    return workers


@dataclass
class Sample:
    t: float
    ledger_runs: int
    succeeded: int | None
    count_ms: float | None
    broker_cpu_s: float
    rss_kib: dict[str, int] = field(default_factory=dict)
    load1: float = 0.0


async def sample(backend: Backend, queue: str, began: float, workers: list[Worker],
                 broker: Broker, ledger: Path, count: bool) -> Sample:  # fmt: skip
    at = time.monotonic()
    runs = runs_recorded(ledger)
    succeeded = count_ms = None
    if count:
        succeeded = (await backend.job_counts()).get((queue, State.SUCCEEDED), 0)
        count_ms = round((time.monotonic() - at) * 1000, 1)
    return Sample(
        t=round(at - began, 3), ledger_runs=runs, succeeded=succeeded, count_ms=count_ms,
        broker_cpu_s=round(tree_cpu_seconds(broker.roots()), 2),
        rss_kib={w.name: kib for w in workers if w.exited_at is None
                 if (kib := status_kib(w.proc.pid, "VmRSS"))},
        load1=os.getloadavg()[0],
    )  # fmt: skip


async def watch(backend: Backend, queue: str, workers: list[Worker], broker: Broker,
                ledger: Path, began: float, count_every: float) -> list[Sample]:  # fmt: skip
    """A sample a second until every worker has exited, the backend's count
    every ``count_every`` seconds; exits are noted to the tenth of a second,
    so the drain's length does not round to the sampling."""
    samples = [await sample(backend, queue, began, workers, broker, ledger, True)]
    tick, next_count = began + 1.0, began + count_every
    while any(w.exited_at is None for w in workers):
        await asyncio.sleep(0.1)
        for w in workers:
            if w.exited_at is None and w.proc.poll() is not None:
                w.exited_at = time.monotonic() - began
        if (now := time.monotonic()) >= tick:
            count = now >= next_count - 0.05
            samples.append(await sample(backend, queue, began, workers, broker, ledger, count))
            tick += 1.0
            next_count += count_every if count else 0.0
    samples.append(await sample(backend, queue, began, workers, broker, ledger, True))
    return samples


# one run -------------------------------------------------------------------------------


async def seed(app: App, queue: str, n: int) -> tuple[list[str], float]:
    task = app.tasks[TASK_NAME].options(queue=queue)
    ids: list[str] = []
    began = time.perf_counter()
    for start in range(0, n, CHUNK):
        jobs = await task.enqueue_many_async([(i,) for i in range(start, min(start + CHUNK, n))])
        ids.extend(j.id for j in jobs)
    return ids, n / (time.perf_counter() - began)


async def verify(backend: Backend, queue: str, ids: list[str], ledger: Path,
                 walk: bool) -> tuple[check.Violations, int]:  # fmt: skip
    """I1-I3 (hosts_check.py); returns the violations and the jobs run twice."""
    v = check.Violations()
    runs = check.by_job(read_runs(ledger))
    check.check_ledger(set(ids), runs, v)
    check.check_counts(await backend.job_counts(), queue, len(ids), v)
    if walk:
        seen, before = 0, None
        while page := await backend.job_list(JobQuery(queue=queue, before_id=before, limit=PAGE)):
            seen += check.check_jobs(page, runs, v)
            before = page[-1].id
        if seen != len(ids):
            v.add("I1", f"the backend lists {seen} jobs of the queue, {len(ids)} were enqueued")
    return v, check.reruns(runs)


async def drain(name: str, broker: Broker, net: Net, args: argparse.Namespace,
                run_dir: Path, stack: contextlib.ExitStack) -> dict[str, Any]:  # fmt: skip
    queue = f"hosts-{uuid.uuid4().hex[:8]}"
    ledger = run_dir / "ledger"
    ledger.mkdir()
    app = make_app(broker.url)
    try:
        backend = await app.backend()
        ids, enqueue_rate = await seed(app, queue, args.jobs)
        print(f"{name}: {len(ids):,} jobs enqueued at {enqueue_rate:,.0f}/s", flush=True)
        load_before = os.getloadavg()
        began = time.monotonic()
        workers = start_workers(net, broker.url, queue, args, run_dir)
        stack.callback(stop_all, [w.proc for w in workers])
        every = args.count_every or COUNT_EVERY[name]
        samples = await watch(backend, queue, workers, broker, ledger, began, every)
        load_after = os.getloadavg()
        violations, twice = await verify(backend, queue, ids, ledger, not args.no_walk)
    finally:
        await app.close_async()
    for w in workers:
        if w.proc.returncode:
            tail = w.log.read_text(errors="replace")[-2000:]
            violations.add("exit", f"worker {w.name} exited with {w.proc.returncode}: {tail}")
    return report(name, args, samples, workers, violations, twice, enqueue_rate,
                  [load_before, load_after], net)  # fmt: skip


# the summary -------------------------------------------------------------------------


def rates(samples: list[Sample], n: int) -> list[float]:
    """Runs/s of each second between the first run and the last: the workers'
    start-up before and the last stragglers after are the drain's ends, not
    its pace. From the ledgers, which every second can afford to read."""
    return [(b.ledger_runs - a.ledger_runs) / (b.t - a.t)
            for a, b in itertools.pairwise(samples)
            if a.ledger_runs > 0 and b.ledger_runs < n and b.t > a.t]  # fmt: skip


def curve(samples: list[Sample]) -> list[dict[str, Any]]:
    """Each sample with the runs/s since the one before it."""
    out = [{**asdict(samples[0]), "jobs_per_s": 0}]
    for a, b in itertools.pairwise(samples):
        rate = (b.ledger_runs - a.ledger_runs) / (b.t - a.t) if b.t > a.t else 0.0
        out.append({**asdict(b), "jobs_per_s": round(rate)})
    return out


def rss_summary(samples: list[Sample], name: str) -> dict[str, float]:
    """MiB at the first sample once jobs were being done (start-up's imports
    are behind it), at the last sample the worker was alive, and the maximum."""
    seen = [s.rss_kib[name] for s in samples if name in s.rss_kib and s.ledger_runs > 0]
    if not seen:
        return {}
    mib = [kib / 1024 for kib in seen]
    return {"first": round(mib[0], 1), "last": round(mib[-1], 1), "max": round(max(mib), 1)}


def report(name: str, args: argparse.Namespace, samples: list[Sample], workers: list[Worker],
           violations: check.Violations, twice: int, enqueue_rate: float,
           loads: list[tuple[float, float, float]], net: Net) -> dict[str, Any]:  # fmt: skip
    seconds = max(w.exited_at or 0.0 for w in workers)
    steady = rates(samples, args.jobs)
    deciles = statistics.quantiles(steady, n=10) if len(steady) >= 2 else [0.0] * 9
    cpu = samples[-1].broker_cpu_s - samples[0].broker_cpu_s
    timed = [s.count_ms for s in samples if s.count_ms is not None]
    return {
        "backend": name, "jobs": args.jobs, "hosts": args.hosts,
        "workers_per_host": args.workers_per_host, "concurrency": args.concurrency,
        "network": {"broker": net.service_ip, "range": str(net.base)},
        "bulk_enqueue_per_s": round(enqueue_rate), "seconds": round(seconds, 1),
        "jobs_per_s": round(args.jobs / seconds),
        "steady_jobs_per_s": {"p10": round(deciles[0]), "median": round(deciles[4]),
                              "p90": round(deciles[8]), "seconds": len(steady)},
        "broker_cpu_us_per_job": round(cpu / args.jobs * 1e6, 1),
        "broker_cpu_share": round(cpu / seconds, 2),
        "count_query_ms": {"median": statistics.median(timed), "max": max(timed),
                           "every_s": args.count_every or COUNT_EVERY[name]},
        "rss_mib": {w.name: rss_summary(samples, w.name) for w in workers},
        "exit_codes": {w.name: w.proc.returncode for w in workers},
        "jobs_run_twice": twice,
        "violations": {"total": violations.total, "by_kind": dict(violations.counts),
                       "examples": violations.examples},
        "load_average": {"before": [round(x, 2) for x in loads[0]],
                         "after": [round(x, 2) for x in loads[1]]},
        "curve": curve(samples),
    }  # fmt: skip


def print_summary(r: dict[str, Any]) -> None:
    s = r["steady_jobs_per_s"]
    print(f"{r['backend']}: {r['jobs']:,} jobs by {r['hosts']}x{r['workers_per_host']} workers "
          f"in {r['seconds']} s = {r['jobs_per_s']:,}/s; steady p10 {s['p10']:,} "
          f"median {s['median']:,} p90 {s['p90']:,} /s over {s['seconds']} s")  # fmt: skip
    print(f"  broker CPU {r['broker_cpu_us_per_job']} µs/job ({r['broker_cpu_share']} of a core); "
          f"count query median {r['count_query_ms']['median']} ms")  # fmt: skip
    for worker, rss in r["rss_mib"].items():
        print(f"  {worker} RSS MiB first {rss.get('first')} last {rss.get('last')} "
              f"max {rss.get('max')} (exit {r['exit_codes'][worker]})")  # fmt: skip
    v = r["violations"]
    print(f"  violations: {v['total']} {v['by_kind']}; jobs run twice: {r['jobs_run_twice']}; "
          f"load {r['load_average']['before']} -> {r['load_average']['after']}")  # fmt: skip
    for line in v["examples"]:
        print(f"    {line}")


# cleanup and main ---------------------------------------------------------------------


def on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """The finally of ``main`` runs ``CLEANUP`` on an exception or a signal
    turned into ``SystemExit``; atexit catches an exit that skipped it. A
    SIGHUP that ``nohup`` ignores stays ignored."""
    atexit.register(CLEANUP.close)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, on_signal)


def run_one(name: str, net: Net, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """A broker of its own for each backend, stopped before the next starts."""
    with contextlib.ExitStack() as stack:
        CLEANUP.push(stack)
        run_dir = home / name
        run_dir.mkdir()
        broker = BROKERS[name](net, run_dir, stack)
        print(f"{name}: broker at {broker.url}", flush=True)
        return asyncio.run(drain(name, broker, net, args, run_dir, stack))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="workers in network namespaces")
    parser.add_argument("--backend", action="append", choices=sorted(BROKERS))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--workers-per-host", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--count-every",
        type=float,
        metavar="S",
        help="seconds between job_counts calls [redis-cluster 1, postgres 10]",
    )
    parser.add_argument("--no-walk", action="store_true",
                        help="skip listing every job from the backend in the check")  # fmt: skip
    parser.add_argument("--no-save", action="store_true")
    return parser.parse_args()


def main() -> int:
    args = parse()
    if os.geteuid() != 0:
        raise SystemExit("bench/hosts.py makes network namespaces: run it as root")
    install_cleanup()
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform()}  # fmt: skip
    failed = False
    try:
        home = Path(tempfile.mkdtemp(prefix="offload-hosts-"))
        CLEANUP.callback(shutil.rmtree, home, ignore_errors=True)
        net = Net(hosts=args.hosts)
        CLEANUP.callback(net.destroy)
        net.create()
        net.enter_broker()
        for name in args.backend or sorted(BROKERS, reverse=True):
            result = run_one(name, net, args, home)
            print_summary(result)
            failed |= result["violations"]["total"] > 0
            if not args.no_save:
                out = HERE / "results" / f"{dt.date.today().isoformat()}-hosts-{name}.json"
                out.write_text(json.dumps({"machine": machine, **result}, indent=1) + "\n")
                print(f"saved {out}", flush=True)
    finally:
        CLEANUP.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
