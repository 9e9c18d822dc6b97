"""The pieces of ``bench/hosts.py`` that can be checked without root or a
broker: the ledger's format and the checker's verdicts, so that a million-job
run is not the first to find a broken checker."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import hosts_check as check
from hosts_app import LEDGER_ENV, LINE_BYTES, Ledger, Run, read_runs, runs_recorded
from netns import Net, used_networks

from offload import Job, State


def test_ledger_lines_are_fixed_width_so_size_counts_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEDGER_ENV, str(tmp_path))
    ledger = Ledger()
    ledger.record("0192f1c4-0000-7000-8000-000000000001", 1, 1_764_650_000.25, 1_764_650_000.5)
    ledger.record("0192f1c4-0000-7000-8000-000000000002", 12, 1_764_650_001.0, 1_764_650_001.5)
    [file] = tmp_path.glob("runs-*.txt")
    assert file.stat().st_size == 2 * LINE_BYTES
    assert runs_recorded(tmp_path) == 2
    runs = list(read_runs(tmp_path))
    assert [(r.attempt, r.start, r.end) for r in runs] == [
        (1, 1_764_650_000.25, 1_764_650_000.5), (12, 1_764_650_001.0, 1_764_650_001.5)
    ]  # fmt: skip


def run(job: str, start: float, end: float, attempt: int = 1, pid: int = 10) -> Run:
    return Run(job, attempt, pid, start, end)


def test_missing_unknown_and_overlapping_runs_are_violations() -> None:
    runs = check.by_job([
        run("a", 0.0, 1.0), run("a", 0.5, 2.0, attempt=2, pid=11),  # overlap
        run("b", 0.0, 1.0), run("b", 1.0, 2.0, attempt=2),          # back to back: fine
        run("stray", 0.0, 1.0),
    ])  # fmt: skip
    v = check.Violations()
    check.check_ledger({"a", "b", "never"}, runs, v)
    assert v.counts == {"I1": 2, "I2": 1}
    assert any("never: enqueued, never ran" in e for e in v.examples)
    assert any("stray: ran, never enqueued" in e for e in v.examples)
    assert check.reruns(runs) == 2


def test_backend_counts_and_attempts_must_match_the_ledger() -> None:
    v = check.Violations()
    check.check_counts({("q", State.SUCCEEDED): 2, ("other", State.QUEUED): 5}, "q", 2, v)
    assert v.total == 0
    check.check_counts({("q", State.SUCCEEDED): 1, ("q", State.RUNNING): 1}, "q", 2, v)
    assert v.counts == {"I1": 1}
    runs = check.by_job([run("a", 0.0, 1.0), run("b", 0.0, 1.0), run("b", 2.0, 3.0, attempt=2)])
    jobs = [job("a", State.SUCCEEDED, 1), job("b", State.SUCCEEDED, 1)]  # b's ledger says 2
    assert check.check_jobs(jobs, runs, v) == 2
    assert v.counts == {"I1": 2}


def job(job_id: str, state: State, attempts: int) -> Job:
    now = datetime.now(UTC)
    return Job(id=job_id, task="t", queue="q", tenant="", state=state, payload=b"[]", priority=0,
               attempts=attempts, max_attempts=3, created_at=now, run_at=now)  # fmt: skip


def test_addresses_avoid_the_machines_networks_and_stay_in_the_range() -> None:
    net = Net(hosts=2)
    assert not any(net.base.overlaps(u) for u in used_networks())
    broker_side, host_side = net.link_ips(2)
    assert all(ip_address(a) in net.base for a in (net.service_ip, broker_side, host_side))
    assert (broker_side, host_side) == (f"{net.base[2 * 256 + 1]}", f"{net.base[2 * 256 + 2]}")
    assert net.host(1).startswith("offload-bench-")
    assert len(f"ob{net.tag}b1") <= 15  # an interface name's limit
