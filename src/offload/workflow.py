"""Workflows: graphs of prepared jobs stored in one call, and read back as graphs.

The shapes users of other job systems know are built from prepared jobs
(``task.prepare(...)``): ``chain`` (each step after the previous), ``group``
(independent steps), ``chord`` (a group, then a step after all of it) and a DAG
given as a mapping of step names to jobs, with ``step(job, after=[names])``.
They compose: a chain of groups, a group of chains. ``App.workflow_async`` turns
the graph into jobs with ``depends_on`` set and stores them with one
``job_enqueue_many`` in a batch marked as a workflow, which is what lets workers
release each level as soon as the previous one ends (``offload.dependencies``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from offload.errors import DependencyError
from offload.job import Batch, Job, NewJob
from offload.lifecycle import State

MARK = "workflow"
"""The key of ``Batch.meta`` that makes a batch a workflow."""


@dataclass(frozen=True, slots=True)
class Step:
    """A job of a DAG and the names of the steps it runs after."""

    job: NewJob
    after: tuple[str, ...] = ()


def step(job: NewJob, after: Sequence[str] = ()) -> Step:
    """A DAG step: ``{"b": step(b.prepare(), after=["a"])}``."""
    if isinstance(after, str):
        after = (after,)
    return Step(job, tuple(after))


@dataclass(frozen=True, slots=True)
class Graph:
    """Steps by name and, for each, the names it runs after (inside the graph)."""

    jobs: Mapping[str, NewJob]
    after: Mapping[str, tuple[str, ...]]

    @property
    def heads(self) -> list[str]:
        """Steps that wait for no other step of the graph."""
        return [n for n in self.jobs if not self.after.get(n)]

    @property
    def tails(self) -> list[str]:
        """Steps no other step of the graph waits for."""
        waited = {p for parents in self.after.values() for p in parents}
        return [n for n in self.jobs if n not in waited]


Part = NewJob | Graph


def chain(*parts: Part) -> Graph:
    """Each part runs after the whole of the previous one ended."""
    if not parts:
        raise DependencyError("chain() needs at least one step")
    return _merged(parts, link=True)


def group(*parts: Part) -> Graph:
    """Parts that run independently (a fan-out)."""
    if not parts:
        raise DependencyError("group() needs at least one step")
    return _merged(parts, link=False)


def chord(header: Sequence[Part] | Graph, body: Part) -> Graph:
    """A fan-in: ``body`` runs once every part of ``header`` has ended."""
    head = header if isinstance(header, Graph) else group(*header)
    return chain(head, body)


def dag(steps: Mapping[str, NewJob | Step]) -> Graph:
    """A graph from step names; ``after`` names must be steps of the mapping."""
    jobs: dict[str, NewJob] = {}
    after: dict[str, tuple[str, ...]] = {}
    for name, value in steps.items():
        if not isinstance(value, NewJob | Step):
            raise DependencyError(f"step {name!r} is {value!r}, not a prepared job or step()")
        found = value if isinstance(value, Step) else Step(value)
        jobs[name] = found.job
        after[name] = found.after
    for name, parents in after.items():
        for parent in parents:
            if parent not in jobs:
                raise DependencyError(f"step {name!r} runs after {parent!r}, which is no step")
    return Graph(jobs, after)


def as_graph(spec: Graph | Mapping[str, NewJob | Step] | NewJob) -> Graph:
    if isinstance(spec, Graph):
        return spec
    if isinstance(spec, NewJob):
        return _graph(spec, "1")
    return dag(spec)


def _graph(part: Part, name: str) -> Graph:
    if isinstance(part, Graph):
        return part
    # Named by the task's own last word and its place: "square-3".
    return Graph({f"{part.task.rsplit('.', 1)[-1]}-{name}": part}, {})


def _merged(parts: Sequence[Part], *, link: bool) -> Graph:
    """The parts in one graph, in one pass (a group of 10,000 stays linear); with
    ``link`` the heads of each part run after the tails of the one before. A name
    already taken is suffixed (".2", ".3", ...)."""
    jobs: dict[str, NewJob] = {}
    after: dict[str, tuple[str, ...]] = {}
    tails: tuple[str, ...] = ()
    for index, part in enumerate(parts, 1):
        graph = _graph(part, str(index))
        rename: dict[str, str] = {}
        for name, job in graph.jobs.items():
            rename[name] = _free(name, jobs)
            jobs[rename[name]] = job
        for name in graph.jobs:
            parents = tuple(rename[p] for p in graph.after.get(name, ()))
            after[rename[name]] = parents if parents or not link else tails
        tails = tuple(rename[t] for t in graph.tails)
    return Graph(jobs, after)


def _free(name: str, taken: Mapping[str, Any]) -> str:
    if name not in taken:
        return name
    index = 2
    while f"{name}.{index}" in taken:
        index += 1
    return f"{name}.{index}"


def workflow_jobs(graph: Graph, workflow_id: str, tenant: str) -> list[NewJob]:
    """The graph's jobs as stored: in the workflow's batch and tenant, each
    waiting for its steps' jobs (and any parents it named itself), in an order
    where a parent comes before its dependents."""
    check_names(graph)
    ids = {name: job.id for name, job in graph.jobs.items()}
    if len(set(ids.values())) != len(ids):
        raise DependencyError("a prepared job appears twice in the workflow")
    out = []
    for name, job in graph.jobs.items():
        parents = tuple(ids[p] for p in graph.after.get(name, ()))
        out.append(dataclasses.replace(
            job, batch_id=workflow_id, tenant=tenant,
            depends_on=tuple(dict.fromkeys((*job.depends_on, *parents))),
            meta={**job.meta, "step": name},
        ))  # fmt: skip
    return out


def check_names(graph: Graph) -> None:
    for name, parents in graph.after.items():
        if name in parents:
            raise DependencyError(f"step {name!r} runs after itself")


@dataclass(slots=True)
class Workflow:
    """A stored graph: its jobs by step name and the edges between steps."""

    id: str
    tenant: str
    created_at: datetime
    name: str | None = None
    finished_at: datetime | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (parent step, child step)

    @property
    def state(self) -> str:
        """ "running" while a job has not ended; then "succeeded" when all did,
        "dead" when one died, else "cancelled"."""
        states = {j.state for j in self.jobs.values()}
        if not states or any(not s.ended for s in states):
            return "running"
        if states == {State.SUCCEEDED}:
            return "succeeded"
        return "dead" if State.DEAD in states else "cancelled"

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs.values():
            out[job.state.value] = out.get(job.state.value, 0) + 1
        return out

    def job(self, step_name: str) -> Job:
        return self.jobs[step_name]


def is_workflow(batch: Batch) -> bool:
    return bool(batch.meta.get(MARK))


def assemble(batch: Batch, jobs: Sequence[Job]) -> Workflow:
    """The workflow from its batch and its jobs; steps named by ``meta["step"]``
    (a job appended without one is named by its id)."""
    by_id = {j.id: j for j in jobs}
    names = {j.id: str(j.meta.get("step", j.id)) for j in jobs}
    ordered = sorted(jobs, key=lambda j: j.id)
    edges = [
        (names[p], names[j.id]) for j in ordered for p in j.depends_on if p in by_id
    ]  # fmt: skip
    return Workflow(
        id=batch.id, tenant=batch.tenant, created_at=batch.created_at, name=batch.name,
        finished_at=batch.finished_at, jobs={names[j.id]: j for j in ordered}, edges=edges,
    )  # fmt: skip
