"""An enqueue as ``enqueue.lua`` takes it and answers it.

Two callers send the same script call: the backend from its event loop and the
thread store (``sync_store``) from a producer's own thread. Both build the
arguments and read the reply here, so a job stored either way is the same job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from typing import Any

from offload import lifecycle as lc
from offload.backends.redis import codec
from offload.backends.redis.keys import Keys
from offload.job import Job, NewJob

CHUNK = 1000
"""Jobs per script call: bounds how long one call holds the server."""

_NOW_STATE, _LATER_STATE = lc.ENQUEUE.target, lc.ENQUEUE_LATER.target


def chunked(jobs: Sequence[NewJob]) -> list[list[NewJob]]:
    return [list(jobs[i : i + CHUNK]) for i in range(0, len(jobs), CHUNK)]


def arguments(keys: Keys, chunk: list[NewJob]) -> list[Any]:
    """The script's arguments after its key: the rules, the rows as JSON and
    the payloads back to back (enqueue.lua's header says why)."""
    rows = json.dumps([codec.new_job_row(new) for new in chunk])
    return [keys.tag, codec.RULES["enqueue"], codec.RULES["enqueue_later"], codec.ENDED, rows,
            b"".join([new.payload for new in chunk])]  # fmt: skip


def stored(chunks: list[list[NewJob]], replies: list[Any]) -> list[Job]:
    return [job for chunk, reply in zip(chunks, replies, strict=True)
            for job in _stored_chunk(chunk, reply)]  # fmt: skip


def _stored_chunk(chunk: list[NewJob], reply: list[Any]) -> list[Job]:
    """enqueue.lua's reply: the creation time, then per job its run_at when it
    was stored now (due at once unless later than its creation), or the values
    of the job that was already there."""
    created_us = int(reply[0])
    created = codec.from_us(created_us)
    out: list[Job] = []
    for new, item in zip(chunk, islice(reply, 1, None), strict=True):
        if isinstance(item, list):
            existing = codec.job_from_values(item)
            existing.duplicate = True
            out.append(existing)
        elif item <= created_us:
            run_at = created if item == created_us else codec.from_us(item)
            out.append(codec.stored_job(new, created, run_at, _NOW_STATE))
        else:
            out.append(codec.stored_job(new, created, codec.from_us(item), _LATER_STATE))
    return out
