"""``offload workers``: the workers alive now, with what they are running."""

from __future__ import annotations

import click
from rich.table import Table

from offload.cli.output import console, echo_json, when
from offload.cli.runtime import CliState, build_app, run, target_options


@click.command("workers")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def workers(state: CliState, as_json: bool) -> None:
    """Live workers: host, pid, queues, concurrency and current jobs."""
    found = run(build_app(state, read_only=True), lambda a: a.workers_async())
    if as_json:
        echo_json([
            {"id": w.id, "hostname": w.hostname, "pid": w.pid, "queues": w.queues,
             "concurrency": w.concurrency, "started_at": w.started_at,
             "last_seen_at": w.last_seen_at, "job_ids": w.job_ids, "meta": w.meta}
            for w in found
        ])  # fmt: skip
        return
    table = Table("id", "host", "pid", "queues", "running", "since", "seen",
                  title=f"{len(found)} worker(s)")  # fmt: skip
    for w in found:
        table.add_row(w.id, w.hostname, str(w.pid), ",".join(w.queues),
                      f"{len(w.job_ids)}/{w.concurrency}", when(w.started_at),
                      when(w.last_seen_at))  # fmt: skip
    console.print(table)
