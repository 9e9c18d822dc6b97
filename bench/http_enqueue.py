"""``POST /api/v1/jobs`` as users run it: ``offload web`` in its own process,
32 keep-alive clients.

    python bench/http_enqueue.py --backend sqlite:////tmp/offload-http.db \\
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_http_bench' \\
        --backend 'redis://127.0.0.1:6379/7?prefix=http' [--connections 32] [--seconds 10]

Method, per backend: ``offload web apps:app`` is started as a process (the
bench app, whose ``bench.int`` task takes one ``int``, validated on every
request), with an admin token from a token file and, in a second run,
``--log-level warning`` (no access log line per request). The load is ``wrk``
(Debian's package; C, so the load generator takes little of the two cores the
server shares with it): ``--connections`` keep-alive connections on 2 threads
for ``--seconds`` after a 2-second warm-up, each request a JSON enqueue.
Reported: requests/s, p50/p99 from wrk's latency distribution, non-2xx
answers and socket errors (the target: none), the server's CPU seconds per
1,000 requests (``/proc/<pid>/stat``), and the jobs the backend holds
afterwards against the 2xx answers wrk counted. Target (issue figures): at
least 3,000 requests/s with p99 under 50 ms. Saved to
``results/<date>-http-enqueue.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from procs import cpu_seconds, free_port

HERE = Path(__file__).resolve().parent
TOKEN = "bench-admin-token-0123456789abcdef"
TARGET_RPS, TARGET_P99_MS = 3000.0, 50.0
LUA = """
wrk.method = "POST"
wrk.body = '{"task": "bench.int", "args": [1], "options": {"queue": "%(queue)s"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload: HTTP enqueue throughput")
    parser.add_argument("--backend", action="append", metavar="URL", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"offload web exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("offload web did not answer /healthz in 60 s")


def wrk(port: int, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{port}/api/v1/jobs"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {"raw": out, **read_wrk(out)}


def read_wrk(out: str) -> dict[str, Any]:
    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms(pct["50"]),
        "p99_ms": ms(pct["99"]),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def queued(url: str, queue: str) -> int:
    code = (
        "import asyncio, sys\n"
        "from offload import App\n"
        "async def main():\n"
        "    app = App(sys.argv[1])\n"
        "    b = await app.backend()\n"
        "    counts = await b.job_counts()\n"
        "    print(sum(n for (q, _s), n in counts.items() if q == sys.argv[2]))\n"
        "    await app.close_async()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, url, queue], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.strip())


def measure(url: str, args: argparse.Namespace, log_level: str, folder: Path) -> dict[str, Any]:
    queue = f"http-{os.urandom(4).hex()}"
    script = folder / f"{queue}.lua"
    script.write_text(LUA % {"queue": queue, "token": TOKEN})
    tokens = folder / "tokens"
    tokens.write_text(f"{TOKEN}=*\n")
    port = free_port()
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE)}
    argv = [sys.executable, "-m", "offload", "web", "apps:app", "--port", str(port),
            "--token-file", str(tokens), "--log-level", log_level]  # fmt: skip
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, server)
        warm = wrk(port, script, args.connections, 2)  # connections, imports, caches
        before = cpu_seconds(server.pid)
        result = wrk(port, script, args.connections, args.seconds)
        cpu = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(30)
    stored = queued(url, queue)
    raw = result.pop("raw")
    return {
        "backend": url.split("://")[0], "log_level": log_level, **result,
        "server_cpu_s_per_1000": round(cpu / max(result["requests"], 1) * 1000, 3),
        "answered_with_warm_up": warm["requests"] + result["requests"],
        "jobs_stored": stored,
        "wrk": raw,
    }  # fmt: skip


def main() -> None:
    args = parse()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="offload-http-") as tmp:
        for url in args.backend:
            for log_level in ("info", "warning"):
                row = measure(url, args, log_level, Path(tmp))
                rows.append(row)
                ok = row["rps"] >= TARGET_RPS and row["p99_ms"] < TARGET_P99_MS
                shown = {k: v for k, v in row.items() if k != "wrk"}
                print(json.dumps(shown), "ok" if ok and not row["non_2xx"] else "MISSED")
    load_after = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.date.today().isoformat()}-http-enqueue.json"
    path.write_text(json.dumps({
        "target": {"rps_at_least": TARGET_RPS, "p99_ms_below": TARGET_P99_MS},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "args": {"connections": args.connections, "seconds": args.seconds},
        "results": rows,
    }, indent=2) + "\n")  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
