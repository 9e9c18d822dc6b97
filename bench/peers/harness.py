"""The run itself, inside the harness's own venv: servers, venvs, the raw limit,
every target's scenarios within the time budget, then the report files.

Targets run one after another so that no two libraries share the two cores; a
target's failure is recorded in its row and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import raw
import redis
import report
import venvs
from rich.console import Console
from scenarios import (
    Counts,
    Driver,
    Result,
    ScenarioError,
    Target,
    Timeouts,
    io_mix,
    latency,
    memory,
)
from scenarios import drain as drain_scenario
from scenarios import enqueue as enqueue_scenario
from services import Services, services

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
console = Console(width=None if sys.stdout.isatty() else 160)

# (row, adapter, broker); offload runs once per backend.
ROWS = [
    ("celery", "celery", "redis"),
    ("dramatiq", "dramatiq", "redis"),
    ("rq", "rq", "redis"),
    ("arq", "arq", "redis"),
    ("saq", "saq", "redis"),
    ("huey", "huey", "redis"),
    ("taskiq", "taskiq", "redis"),
    ("procrastinate", "procrastinate", "postgres"),
    ("offload/sqlite", "offload", "sqlite"),
    ("offload/postgres", "offload", "postgres"),
    ("offload/redis", "offload", "redis"),
    ("celery/azure", "celery", "azure"),
    ("offload/azure", "offload", "azure"),
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload and its peers, side by side")
    parser.add_argument("--quick", action="store_true", help="divide every count by 10")
    parser.add_argument("--only", default="", metavar="NAME,...",
                        help="rows or libraries to run (e.g. celery,offload,raw)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=19 * 60,
                        help="seconds for the whole run; later scenarios are skipped")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--own-servers", action="store_true",
                        help="a throwaway PostgreSQL even if a shared one answers")  # fmt: skip
    return parser.parse_args(argv)


def targets(svc: Services, tmp: Path) -> list[Target]:
    urls = {
        "sqlite": f"sqlite:///{tmp}/offload.db",
        "postgres": svc.pg("bench_offload") + "?schema=offload_peers",
        "redis": svc.redis_url,
    }
    env = {"PEERS_PG_URL": svc.pg("bench"), "PEERS_PROCRASTINATE_URL": svc.pg("bench_pr")}
    azure = svc.azure_connection_string()
    if azure is not None:
        # Both Azure rows on the same Azurite; without one their adapters fail
        # on the missing connection string and the rows read "unavailable".
        urls["azure"] = "azure://?prefix=peers"
        env["AZURE_STORAGE_CONNECTION_STRING"] = azure
    out = []
    for row, adapter, broker in ROWS:
        extra = {"PEERS_OFFLOAD_URL": urls.get(broker, "azure://")} if adapter == "offload" else {}
        if adapter == "celery" and broker == "azure":
            extra = {"PEERS_CELERY_BROKER": "azure"}
        out.append(Target(row, adapter, broker, {**env, **extra}))
    return out


def selected(names: str, row: str, adapter: str) -> bool:
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    return not wanted or row in wanted or adapter in wanted


# -- machine ------------------------------------------------------------------------------


def machine(svc: Services) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    info = redis.Redis.from_url(svc.redis_url).info("server")
    with psycopg.connect(svc.pg("bench")) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(int(mem) / 2**20, 1),
        "platform": platform.platform(), "python": platform.python_version(),
        "redis": info.get("redis_version"), "postgres": pg_version[0] if pg_version else None,
        "servers": svc.origin, "loadavg_start": _loadavg(),
    }  # fmt: skip


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the raw limit --------------------------------------------------------------------------


def reference(svc: Services, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    probes: dict[str, Callable[[], raw.Rates]] = {
        "redis-py": lambda: raw.redis_limits(svc.redis_url, n),
        "psycopg": lambda: raw.postgres_limits(svc.pg("bench"), n),
        "sqlite3": lambda: raw.sqlite_limits(n),
    }
    for name, probe in probes.items():
        console.print(f"[dim]raw {name}…[/]")
        try:
            out[name] = probe()
        except Exception as exc:  # the limit is context, not a reason to stop the run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# -- one target ---------------------------------------------------------------------------


# A scenario's claim on what is left of its row's share of the budget, so a slow
# drain cannot starve the scenarios after it; time a fast one leaves goes on.
WEIGHTS = {"enqueue_bulk": 1, "enqueue_one": 2, "drain": 3, "latency": 2, "io": 2, "memory": 5}
MIN_SLICE = 5.0  # seconds below which a scenario is skipped rather than started


class Run:
    """Scenarios of one target, each guarded by its timeout and the run's budget."""

    def __init__(self, driver: Driver, counts: Counts, timeouts: Timeouts, end: float) -> None:
        self.d, self.counts, self.t, self.end = driver, counts, timeouts, end
        self.scenarios: dict[str, Result] = {}

    def guarded(self, name: str, timeout: float, fn: Callable[[float], Result]) -> Result:
        pending = sum(w for n, w in WEIGHTS.items() if n not in self.scenarios)
        slice_ = (self.end - time.monotonic()) * WEIGHTS[name] / pending
        if slice_ < MIN_SLICE:
            result: Result = {"status": "skipped", "value": None, "error": "run's time budget"}
        else:
            result = self._attempt(name, fn, min(timeout, slice_))
        self.scenarios[name] = result
        console.print(f"  {name:<13} {_summary(result)}")
        return result

    def _attempt(self, name: str, fn: Callable[[float], Result], timeout: float) -> Result:
        try:
            return fn(timeout)
        except TimeoutError as exc:
            return {"status": "timeout", "value": None, "error": str(exc)}
        except ScenarioError as exc:
            return {"status": "error", "value": None, "error": str(exc)}
        except Exception as exc:  # a harness bug in one scenario must not end the run
            return {"status": "error", "value": None, "error": traceback.format_exc(limit=3)
                    or repr(exc)}  # fmt: skip

    def all(self, bulk: bool) -> dict[str, Result]:
        c, t, d = self.counts, self.t, self.d
        if bulk:
            self.guarded("enqueue_bulk", t.enqueue,
                         lambda s: enqueue_scenario(d, c.enqueue, True, s))  # fmt: skip
        else:
            self.scenarios["enqueue_bulk"] = {"status": "n/a", "value": None}
        one = self.guarded("enqueue_one", t.enqueue,
                           lambda s: enqueue_scenario(d, c.enqueue, False, s))  # fmt: skip
        if one["status"] == "ok":
            queued: int = one["n"]
            self.guarded("drain", t.drain, lambda s: drain_scenario(d, queued, "fast", s))
        else:
            self.scenarios["drain"] = {"status": "n/a", "value": None, "error": "no jobs queued"}
        self.guarded("latency", t.latency,
                     lambda s: latency(d, c.latency, c.latency_rate, s))  # fmt: skip
        self.guarded("io", t.io, lambda s: io_mix(d, c.io, bulk, s))
        self.guarded("memory", t.memory,
                     lambda s: memory(d, c.memory_small, c.memory_big, bulk, s))  # fmt: skip
        return self.scenarios


def _summary(result: Result) -> str:
    if result["status"] not in ("ok", "timeout"):
        return f"[yellow]{result['status']}[/] {str(result.get('error', ''))[:200]}"
    keys = ("value", "p99_ms", "growth_mib", "startup_s", "n", "jobs")
    shown = " ".join(f"{k}={result[k]:,.1f}" for k in keys if result.get(k) is not None)
    return shown if result["status"] == "ok" else f"[yellow]timeout[/] {shown}"


def run_target(target: Target, svc: Services, counts: Counts, end: float, logs: Path) -> Any:
    console.rule(f"{target.row}")
    row: dict[str, Any] = {"row": target.row, "library": target.adapter, "broker": target.broker}
    driver = Driver(target, venvs.python(target.adapter), svc.redis_url, logs)
    try:
        info = driver.call("info", timeout=120)
        driver.call("reset", timeout=60)
        driver.enqueue("noop", 1, False, 60)  # the backend works at all
    except (ScenarioError, TimeoutError) as exc:
        console.print(f"  [red]unavailable[/]: {str(exc)[-400:]}")
        return {**row, "status": "unavailable", "reason": str(exc)[-2000:]}, None
    row.update(status="ok", version=info["version"])
    row["scenarios"] = Run(driver, counts, Timeouts(), end).all(bool(info["bulk"]))
    try:
        driver.call("reset", timeout=60)
    except (ScenarioError, TimeoutError) as exc:
        # Its figures stand; a library that cannot clear its queue afterwards
        # must not cost the rest of the run (2026-12-02: Celery on Azurite).
        row["cleanup_error"] = str(exc)[-400:]
    return row, info


# -- the whole run ------------------------------------------------------------------------


def install(rows: list[tuple[str, str, str]], logs: Path) -> None:
    """Build missing venvs before the clock starts: installing is not benchmarking."""
    for name in sorted({adapter for _, adapter, _ in rows}):
        if not venvs.is_current(name):
            console.print(f"[dim]installing {name} into bench/.venvs/{name} …[/]")
        venvs.ensure(name, logs / "pip.log")


def main(argv: list[str]) -> None:
    args = parse(argv)
    counts = Counts().scaled(10) if args.quick else Counts()
    rows = [r for r in ROWS if selected(args.only, r[0], r[1])]
    logs = Path(tempfile.mkdtemp(prefix="offload-peers-"))
    install(rows, logs)
    began = time.monotonic()
    end = began + args.budget
    with services(args.own_servers) as svc:
        results: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full", "counts": counts.__dict__,
            "machine": machine(svc), "rows": [], "reference": {},
        }  # fmt: skip
        console.print(f"servers: {svc.origin}; logs in {logs}")
        if not args.only or selected(args.only, "raw", "raw"):
            results["reference"] = reference(svc, counts.enqueue)
        settings: dict[str, Any] = {}
        chosen = [t for t in targets(svc, logs) if selected(args.only, t.row, t.adapter)]
        for i, target in enumerate(chosen):
            # An equal share of what is left, so a slow library cannot starve the
            # rows after it; time one leaves unused goes to the next.
            share = (end - time.monotonic()) / (len(chosen) - i)
            row, info = run_target(target, svc, counts, time.monotonic() + share, logs)
            results["rows"].append(row)
            settings[target.row] = _settings_entry(target, info)
    results["machine"]["loadavg_end"] = _loadavg()
    results["seconds"] = round(time.monotonic() - began, 1)
    results["ratios"] = report.ratios(results["rows"])
    write(args.out, results, settings)


def _settings_entry(target: Target, info: dict[str, Any] | None) -> dict[str, Any]:
    if info is None:
        return {"broker": target.broker, "unavailable": True}
    keep = ("version", "bulk", "settings", "notes")
    return {"broker": target.broker, **{k: info[k] for k in keep}}


def write(out: Path, results: dict[str, Any], settings: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    day = results["date"][:10]
    png, settings_name = f"{day}-peers.png", f"{day}-peers-settings.json"
    settings_doc = {"date": results["date"], "mode": results["mode"],
                    "counts": results["counts"], "timeouts": Timeouts().__dict__,
                    "rows": settings}  # fmt: skip
    report.write_json(out / f"{day}-peers.json", results)
    report.write_json(out / settings_name, settings_doc)
    report.chart(out / png, results)
    (out / "latest.md").write_text(report.markdown(results, png, settings_name))
    report.print_tables(console, results)
    console.print(f"{results['seconds']:.0f}s; wrote {out}/{day}-peers.json, {png}, "
                  f"{settings_name}, latest.md")  # fmt: skip
