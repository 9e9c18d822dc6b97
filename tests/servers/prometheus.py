"""A throwaway Prometheus server (Debian's ``prometheus`` package, installed by
``scripts/install-prometheus``) that scrapes the targets a test names, on a free
loopback port with its own data directory; the test queries its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port, unavailable

START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    job: str
    address: str  # host:port
    token: str | None = None


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql``: ``[{"metric": {...}, "value": [t, "v"]}]``."""
        body = self._get("/api/v1/query", query=promql)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        body = self._get("/api/v1/targets")
        return {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}


def _config(targets: Sequence[Target]) -> str:
    jobs = []
    for t in targets:
        auth = f"    authorization:\n      credentials: {t.token}\n" if t.token else ""
        jobs.append(f"  - job_name: {t.job}\n{auth}"
                    f"    static_configs:\n      - targets: ['{t.address}']\n")  # fmt: skip
    return "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + "".join(jobs)


@contextmanager
def prometheus(targets: Sequence[Target], workdir: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (scripts/install-prometheus)")
        raise AssertionError("unreachable")
    config = workdir / "prometheus.yml"
    config.write_text(_config(targets))
    port = free_port()
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        yield Prometheus(port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"prometheus not ready at {url} after {START_TIMEOUT}s")
