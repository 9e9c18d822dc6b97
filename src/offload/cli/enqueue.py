"""``offload enqueue TASK --args JSON``: store one job from the command line.

The arguments go through the task's own validation, so a wrong type is refused
here (exit 1, nothing stored) exactly as ``task.enqueue`` would refuse it. The job
id alone goes to stdout, for ``JOB=$(offload enqueue …)``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from offload.app import App
from offload.cli.output import echo_json, job_dict
from offload.cli.runtime import CliState, build_app, run, target_options
from offload.task import Options, Task

Arguments = tuple[tuple[Any, ...], dict[str, Any]]


def parse_args(text: str | None) -> Arguments:
    """A JSON object is keyword arguments, an array positional ones."""
    if text is None:
        return (), {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--args is not valid JSON: {exc}") from None
    if isinstance(value, dict):
        return (), value
    if isinstance(value, list):
        return tuple(value), {}
    raise click.ClickException("--args must be a JSON object (keyword arguments) or array")


def find_task(app: App, name: str) -> Task[Any]:
    """By its registered name, or by its last dotted part when only one task has it
    (``send`` for ``myproject.jobs.send``)."""
    if name in app.tasks:
        return app.tasks[name]
    matches = [t for t in app.tasks.values() if t.name.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(app.tasks)) or "none"
    why = "ambiguous" if matches else "unknown"
    raise click.ClickException(f"{why} task {name!r}; registered tasks: {known}")


def enqueue_options(**given: Any) -> dict[str, Any]:
    return {key: value for key, value in given.items() if value is not None}


@click.command("enqueue")
@click.argument("task_name", metavar="TASK")
@click.option("--args", "args_json", metavar="JSON", help="Object of keyword or array of "
              "positional arguments.")  # fmt: skip
@click.option("--queue", help="Queue [default: the task's].")
@click.option("--delay", type=click.FloatRange(min=0), metavar="S", help="Run after S seconds.")
@click.option("--priority", type=int, help="Higher runs first [default: the task's].")
@click.option("--tenant", help="Owner of the job [default: default].")
@click.option("--json", "as_json", is_flag=True, help="Print the stored job as JSON.")
@target_options
@click.pass_obj
def enqueue(state: CliState, /, task_name: str, args_json: str | None, as_json: bool,
            **options: Any) -> None:  # fmt: skip
    """Enqueue a job of TASK and print its id."""
    args, kwargs = parse_args(args_json)
    app = build_app(state, need_tasks=True)

    async def store(app: App) -> None:
        task = find_task(app, task_name)
        # JSON in, so JSON-mode validation: ISO strings become datetimes, UUIDs...
        new = task.new_job(args, kwargs, Options(**enqueue_options(**options)), from_json=True)
        [job] = await app.enqueue_new_async([new])  # PayloadError: exit 1 via run()
        if as_json:
            echo_json(job_dict(job))
        else:
            click.echo(job.id)

    run(app, store)
