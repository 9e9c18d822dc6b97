"""How the CLI shows things: rich tables for people, ``--json`` for scripts.

JSON goes out through plain ``click.echo`` so that no terminal width, colour or
markup can change what a script parses. Jobs are shown without their lease token
(a capability to complete the job) and, in lists, without their payload.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from offload.backends.base import QueueCounts
from offload.job import Event, Job
from offload.lifecycle import State

# Piped output is read by people in logs and CI, not by programs (they use
# --json): a wide width keeps job ids and error messages whole there.
PIPE_WIDTH = 200
console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
err_console = Console(
    stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH
)

STATE_STYLES = {
    State.SCHEDULED: "cyan",
    State.QUEUED: "blue",
    State.RUNNING: "yellow",
    State.SUCCEEDED: "green",
    State.CANCELLED: "magenta",
    State.DEAD: "red",
}
JOB_FIELDS = (
    "id", "task", "queue", "tenant", "state", "priority", "attempts", "max_attempts",
    "created_at", "run_at", "started_at", "finished_at", "timeout", "progress",
    "progress_message", "unique_key", "batch_id", "worker_id", "cancel_requested", "meta",
)  # fmt: skip


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def when_in(value: datetime | None, zone: str) -> str:
    """A firing as the schedule's own zone reads it, the zone named, so it is
    never mistaken for UTC or for the reader's local time."""
    if value is None:
        return ""
    try:
        local = value.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return f"{when(value)} UTC"
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.tzname() or zone}"


def styled_state(state: State) -> str:
    return f"[{STATE_STYLES.get(state, 'white')}]{state.value}[/]"


# jobs ------------------------------------------------------------------------------


def job_dict(job: Job, *, details: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(job, name) for name in JOB_FIELDS}
    data["error"] = None if job.error is None else job.error.to_dict()
    if details:
        data["arguments"] = decoded(lambda: job.arguments)
        data["result"] = decoded(lambda: job.result)
        data["checkpoint"] = decoded(lambda: job.checkpoint)
    return data


def decoded(read: Any) -> Any:
    """A stored value decoded, or a note saying why it could not be: one bad
    payload must not make ``jobs show`` unusable for the job that has it."""
    try:
        return read()
    except Exception as exc:
        return f"<undecodable: {type(exc).__name__}: {exc}>"


def jobs_table(jobs: Iterable[Job], *, title: str | None = None, errors: bool = False) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True, min_width=36)
    for name in ("task", "queue", "tenant", "state"):
        table.add_column(name, overflow="fold")
    table.add_column("tries", justify="right")
    table.add_column("created", no_wrap=True)
    table.add_column("error" if errors else "finished", overflow="fold")
    for job in jobs:
        last = _error_line(job) if errors else when(job.finished_at)
        table.add_row(
            job.id, job.task, job.queue, job.tenant, styled_state(job.state),
            f"{job.attempts}/{job.max_attempts}", when(job.created_at), last,
        )  # fmt: skip
    return table


def _error_line(job: Job) -> str:
    return "" if job.error is None else f"{job.error.type}: {job.error.message}"


def job_fields_table(job: Job) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in job_dict(job, details=True).items():
        if name == "error" or value is None or value == {}:
            continue
        shown = styled_state(job.state) if name == "state" else _cell(value)
        grid.add_row(name, shown)
    return grid


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return when(value) + " UTC"
    if isinstance(value, dict | list):
        return json.dumps(value, default=_plain)
    return str(value)


def events_table(events: Iterable[Event]) -> Table:
    table = Table(title="events", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("at", no_wrap=True)
    table.add_column("kind")
    table.add_column("data", overflow="fold")
    for event in events:
        table.add_row(str(event.id), when(event.at), event.kind.value, event_summary(event.data))
    return table


def event_summary(data: dict[str, Any]) -> str:
    """One line per event: an error as ``type: message`` (its traceback is shown
    once, below the table), other values as ``key=value``."""
    parts = []
    for key, value in data.items():
        if key == "error" and isinstance(value, dict):
            parts.append(f"{value.get('type')}: {value.get('message')}")
        elif isinstance(value, dict | list):
            parts.append(f"{key}={json.dumps(value, default=_plain)}")
        else:
            parts.append(f"{key}={_cell(value) if isinstance(value, datetime) else value}")
    return escape("  ".join(parts))


def event_dict(event: Event) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind.value, "at": event.at, "data": event.data}


# queues ----------------------------------------------------------------------------


def counts_by_queue(counts: QueueCounts) -> dict[str, dict[str, int]]:
    """``{queue: {state: n}}`` with every state present, queues sorted by name."""
    queues = sorted({queue for queue, _ in counts})
    return {q: {s.value: counts.get((q, s), 0) for s in State} for q in queues}


def queues_table(counts: QueueCounts, *, title: str | None = "queues") -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("queue")
    for state in State:
        table.add_column(styled_state(state), justify="right")
    table.add_column("total", justify="right")
    for queue, row in counts_by_queue(counts).items():
        cells = [str(n) if n else "[dim]0[/]" for n in row.values()]
        table.add_row(queue, *cells, str(sum(row.values())))
    if not counts:
        table.caption = "no jobs"
    return table
