"""Small process and port helpers every bench script needs alike."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on now (for a server this script starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, this one included."""
    if pid == os.getpid():
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (``VmRSS``, ``VmHWM``); 0 once the
    process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith(f"{field}:")), f"{field}: 0 kB")
    return int(line.split()[1])


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds of ``roots``, their live descendants and the children they
    reaped (PostgreSQL's postmaster forks a process per connection; uvicorn's
    supervisor runs a process per server worker)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    tree, ticks = set(roots), 0
    for pid in roots:
        if pid in stats:
            ticks += int(stats[pid][13]) + int(stats[pid][14])  # cutime, cstime
    grew = True
    while grew:
        more = {pid for pid, f in stats.items() if int(f[1]) in tree and pid not in tree}
        tree |= more
        grew = bool(more)
    ticks += sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")
