"""The append-only ledger the tasks write: one line per start, end or fault.

Faults cannot touch it: it is a plain file opened with ``O_APPEND`` for each
write, so a line is written whole or not at all even when several processes
append at once and one of them is killed. Each line is a small JSON object.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Execution:
    """One run of one attempt of one job in one process; ``end`` is None when the
    process died under it (then the fault row of that pid says when)."""

    job_id: str
    attempt: int
    pid: int
    start: float
    end: float | None = None
    outcome: str | None = None


@dataclass(slots=True)
class Ledger:
    path: Path
    _fd: int | None = field(default=None, repr=False)

    def write(self, **row: Any) -> None:
        line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def start(self, job_id: str, attempt: int) -> None:
        self.write(kind="start", job=job_id, attempt=attempt, pid=os.getpid(), at=time.time())

    def end(self, job_id: str, attempt: int, outcome: str) -> None:
        self.write(kind="end", job=job_id, attempt=attempt, pid=os.getpid(), at=time.time(),
                   outcome=outcome)  # fmt: skip

    def fault(self, what: str, pid: int | None = None, **data: Any) -> None:
        """The test records what it did and when, so the checker can end the
        executions a killed process left open at the moment it was killed."""
        self.write(kind="fault", what=what, pid=pid, at=time.time(), **data)

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def executions(self) -> list[Execution]:
        return pair(self.rows())

    def faults(self) -> list[dict[str, Any]]:
        return [r for r in self.rows() if r["kind"] == "fault"]


def pair(rows: Iterable[dict[str, Any]]) -> list[Execution]:
    """Starts matched with the end of the same job, attempt and process."""
    open_runs: dict[tuple[str, int, int], Execution] = {}
    out: list[Execution] = []
    for row in rows:
        key = (row.get("job", ""), row.get("attempt", 0), row.get("pid", 0))
        if row["kind"] == "start":
            run = Execution(key[0], key[1], key[2], row["at"])
            open_runs[key] = run
            out.append(run)
        elif row["kind"] == "end" and key in open_runs:
            run = open_runs.pop(key)
            run.end, run.outcome = row["at"], row["outcome"]
    return out
