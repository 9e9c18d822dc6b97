"""The SQLite backend renders each transition's stamps in SQL; this pins that
twin to ``event_data.stamped``, value for value and character for character."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.sqlite import _rows, _sql
from offload.lifecycle import Transition

MOMENTS = [
    datetime(2026, 12, 1, 22, 5, 19, tzinfo=UTC),  # no fraction: isoformat omits it
    datetime(2026, 12, 1, 22, 5, 19, 7, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
@pytest.mark.parametrize("t", lc.ALL, ids=lambda t: t.name)
def test_sql_stamps_equal_event_data_stamped(t: Transition, moment: datetime) -> None:
    sql = f"SELECT {_sql.stamps(t)} FROM (SELECT :attempts AS attempts, :run_at AS run_at)"
    params = {"attempts": 2, "run_at": _rows.us(moment), "worker": "worker-7"}
    with sqlite3.connect(":memory:") as conn:
        [text] = conn.execute(sql, params).fetchone()
    expected = ed.stamped(t, {}, attempts=2, worker_id="worker-7", run_at=moment)
    assert json.loads(text) == expected
