"""Job rows are read positionally, in the order of the ``Job`` dataclass: each
backend's column list must follow it, and each positional read must build the
job its keyword twin would, field for field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from offload.backends.postgres import _rows as pg_rows
from offload.backends.postgres import _sql as pg_sql
from offload.backends.redis import codec as redis_codec
from offload.backends.sqlite import _rows, _sql
from offload.job import ErrorInfo, Job, Salvage
from offload.lifecycle import State

# Every column set, each to a value of its own, so a shifted position shows.
ROW = (
    "job-1", "send", "mail", "acme", State.RUNNING.value, b'{"to": "a"}', 7, 2, 5,
    1_764_000_000_000_001, 1_764_000_000_000_002, 30.5, 1_764_000_000_000_003,
    1_764_000_000_000_004, b'"ok"', json.dumps({"type": "E", "message": "m"}), b"[1]", 0.25,
    "halfway", "u-1", "batch-1", "worker-1", "token-1", 1_764_000_000_000_005, 1,
    json.dumps({"k": "v"}),
)  # fmt: skip


@pytest.mark.parametrize(
    "columns",
    [
        [c.strip() for c in _sql.JOB_COLUMNS.split(",")],
        list(pg_sql.COLUMNS),
        list(redis_codec.FIELDS),
    ],
    ids=["sqlite", "postgres", "redis"],
)
def test_the_column_list_names_every_stored_field_of_a_job_in_order(columns: list[str]) -> None:
    names = [f.name for f in dataclasses.fields(Job)][: len(columns)]
    renamed = {"result_data": "result", "checkpoint_data": "checkpoint"}
    assert columns == [renamed.get(n, n) for n in names]
    assert len(ROW) == len(columns)


def test_sqlite_reads_a_row_as_its_keyword_twin_would() -> None:
    direct = _rows.job(ROW)
    names = [f.name for f in dataclasses.fields(Job)][:26]
    twin = dict(zip(names, ROW, strict=True)) | {
        "state": State.RUNNING, "created_at": _rows.dt(ROW[9]), "run_at": _rows.dt(ROW[10]),
        "started_at": _rows.dt(ROW[12]), "finished_at": _rows.dt(ROW[13]),
        "error": ErrorInfo(type="E", message="m"), "lease_expires_at": _rows.dt(ROW[23]),
        "cancel_requested": True, "meta": {"k": "v"},
    }  # fmt: skip
    assert direct == Job(**twin)
    assert direct.decode_error is None
    assert direct.lease_expires_at is not None
    assert direct.lease_expires_at.microsecond == 5


def test_a_row_the_direct_read_refuses_is_salvaged_with_its_reason() -> None:
    bad = (*ROW[:4], "no-such-state", *ROW[5:25], "{not json")
    job = _rows.job(bad)
    assert job.state is State.DEAD
    assert job.meta == {}
    assert job.decode_error is not None
    assert "state" in job.decode_error
    assert "meta" in job.decode_error


def test_postgres_reads_a_row_as_its_keyword_twin_would() -> None:
    row = (*ROW[:4], "running", *ROW[5:9], _rows.dt(ROW[9]), _rows.dt(ROW[10]), 30.5,
           _rows.dt(ROW[12]), _rows.dt(ROW[13]), b'"ok"', {"type": "E", "message": "m"}, b"[1]",
           0.25, "halfway", "u-1", "batch-1", "worker-1", "token-1", _rows.dt(ROW[23]), True,
           {"k": "v"})  # fmt: skip
    job = pg_rows.job(row)
    names = [f.name for f in dataclasses.fields(Job)][:26]
    assert job == Job(**dict(zip(names, row, strict=True)) | {  # type: ignore[arg-type]
        "state": State.RUNNING, "error": ErrorInfo.from_dict(row[15])})  # fmt: skip
    broken = pg_rows.job((*row[:4], "no-such-state", *row[5:25], "not an object"))
    assert broken.state is State.DEAD
    assert broken.decode_error is not None
    assert "meta" in broken.decode_error


def test_a_direct_read_that_fails_is_salvaged_field_by_field() -> None:
    seen: list[type] = []

    def build(f: Salvage) -> Job:
        seen.append(type(f))
        return _rows._job((*ROW[:25], "{not json"), f)

    from offload.job import decode_job

    job = decode_job(build)
    assert seen[-1] is Salvage
    assert len(seen) == 2  # once directly, once salvaged
    assert job.meta == {}
    assert job.decode_error is not None
