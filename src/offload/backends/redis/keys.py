"""Key names of one deployment, all under one hash tag.

Every key starts with ``{prefix}``, so Redis Cluster hashes all of them to one
slot: a Lua script may then touch any key of the deployment atomically, and a
blocking pop may wait on several queues at once. The scripts build the same
names from the same prefix (``scripts/_prelude.lua``); this module is the
Python side of that one scheme::

    {p}:seq                  event id counter (also the key every script routes by)
    {p}:job:<id>             hash: the job's fields (see codec.py)
    {p}:events:<id>          list: the job's events, oldest first, as JSON
    {p}:feed                 stream: every event, entry id "<event id>-0"
    {p}:control              zset: feed entry ids of events of no job, scored by time
    {p}:ready:<queue>        zset: due waiting jobs, ordered by member text
    {p}:delayed:<queue>      zset: waiting jobs not yet due, scored by run_at
    {p}:parked:<queue>       zset: due jobs of a paused scope a lease moved out of
                             the way; a resume puts them back in the ready set
    {p}:running              zset: leased job ids, scored by lease expiry
    {p}:finished             zset: ended job ids, scored by finished_at
    {p}:lanes                set: every lane (tenant and queue) that has had a job
    {p}:idx:<state>:<lane>   zset: job ids per state and lane, for listing and counts
    {p}:stats                hash: "<UTC day since 1970> <state> <lane>" -> jobs purged
    {p}:unique               hash: "<lane-encoded tenant and key>" -> job id
    {p}:signal:<queue>       list: wake-up tokens for waiting workers
    {p}:pauses               hash: pause scope (JSON ``[tenant, queue]``) -> since, us
    {p}:schedule:<lane>      hash: one schedule; the lane is (tenant, schedule id)
    {p}:schedules            set: the lane of every schedule
    {p}:schedules:due        zset: schedule lanes with a next firing, scored by it
    {p}:batch:<id>           hash: one batch's record (counts are read from bidx)
    {p}:bidx:<state>:<id>    zset: the batch's job ids in that state (listing, counts)
    {p}:batches:<set>        zset: batch ids by text; <set> is ``all`` or ``open``
    {p}:batches:<set>:<tenant>  zset: the same for one tenant
    {p}:limit:<key>          zset: holders of the key's concurrency slots, scored
                             by when each hold runs out (expires with its last hold)
    {p}:rate:<key>           zset: the key's admitted starts (unique members),
                             scored by start time, pruned to the window (expires too)
    {p}:workers              hash: worker id -> its last report (JSON, see codec.py)
    {p}:workers:alive        zset: worker ids, scored by when their last beat runs out

A *lane* names a (tenant, queue) pair without ambiguity whatever characters
they hold: ``<byte length of tenant>:<tenant><queue>``; a schedule's lane pairs
its tenant with its id the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload.errors import ConfigurationError
from offload.lifecycle import State

DEFAULT_PREFIX = "offload"


@dataclass(frozen=True, slots=True)
class Keys:
    """Names for one prefix; ``tag`` is the prefix inside its hash-tag braces."""

    tag: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Keys:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"redis prefix {prefix!r} must be non-empty and free of braces: "
                "offload wraps it in braces itself to pin every key to one slot"
            )
        return cls("{" + prefix + "}")

    def _k(self, *parts: str) -> str:
        return ":".join((self.tag, *parts))

    @property
    def seq(self) -> str:
        return self._k("seq")

    @property
    def feed(self) -> str:
        return self._k("feed")

    @property
    def stats(self) -> str:
        return self._k("stats")

    @property
    def lanes(self) -> str:
        return self._k("lanes")

    def job(self, job_id: str) -> str:
        return self._k("job", job_id)

    def events(self, job_id: str) -> str:
        return self._k("events", job_id)

    def index(self, state: State, lane: str) -> str:
        return self._k("idx", state.value, lane)

    def signal(self, queue: str) -> str:
        return self._k("signal", queue)

    @property
    def pauses(self) -> str:
        return self._k("pauses")

    @property
    def schedules(self) -> str:
        return self._k("schedules")

    @property
    def schedules_due(self) -> str:
        return self._k("schedules", "due")

    def schedule(self, tenant: str, schedule_id: str) -> str:
        return self._k("schedule", lane(tenant, schedule_id))

    def batch(self, batch_id: str) -> str:
        return self._k("batch", batch_id)

    def batch_index(self, state: State, batch_id: str) -> str:
        return self._k("bidx", state.value, batch_id)

    def batches(self, tenant: str | None, *, unfinished: bool) -> str:
        """Every batch (or only the unfinished ones), of one tenant or of all."""
        which = "open" if unfinished else "all"
        return self._k("batches", which) if tenant is None else self._k("batches", which, tenant)

    def limit(self, key: str) -> str:
        return self._k("limit", key)

    def rate(self, key: str) -> str:
        return self._k("rate", key)

    @property
    def workers(self) -> str:
        return self._k("workers")

    @property
    def workers_alive(self) -> str:
        return self._k("workers", "alive")

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of the deployment (and only those)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.tag)
        return escaped + "*"


def lane(tenant: str, rest: str) -> str:
    """``tenant`` and a second name (a queue, a unique key) as one unambiguous text."""
    return f"{len(tenant.encode())}:{tenant}{rest}"


def split_lane(lane: bytes) -> tuple[str, str]:
    size, _, rest = lane.partition(b":")
    n = int(size)
    return rest[:n].decode(), rest[n:].decode()
