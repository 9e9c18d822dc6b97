"""Job, batch and schedule ids: UUIDv7 strings, time-ordered.

``derived_id`` makes the id of a job that several processes may try to create
at once (a schedule's firing, a batch's continuation) from what they all know,
so the backend's "enqueueing an existing id returns that job" turns the race into
exactly one job. It keeps the v7 layout, with the given moment as the timestamp,
so listings stay in time order.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from uuid_utils import uuid7


def new_id() -> str:
    return str(uuid7())


def derived_id(moment: datetime, *parts: str) -> str:
    """A UUIDv7 string whose 48-bit timestamp is ``moment`` and whose other bits
    come from a hash of ``parts``: the same inputs always give the same id."""
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    rand = int.from_bytes(digest[:10], "big")  # 80 bits; 74 survive version/variant
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def id_time_millis(id_: str) -> int:
    """The timestamp of a UUIDv7 id, in milliseconds since the epoch."""
    return uuid.UUID(id_).int >> 80
