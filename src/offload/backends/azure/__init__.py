"""Azure Storage: job state in Tables, delivery signals on Storage Queues.

See docs/backends/azure.md for URLs, guarantees, limits and costs. The design:

* **One partition per offload queue** in the ``<prefix>jobs`` table holds the
  queue's job entities (``j_<id>``), their ready rows (``r_<order>``), cancel
  markers (``c_<id>``) and events (``e_<id>_<event id>``), so every transition
  is ONE entity-group transaction: the job entity replaced only if its ETag is
  unchanged since it was read (compare-and-set), its ready row swapped, its
  events inserted. A lost race changes nothing (412) and is re-read, never
  half applied. The transitions of one call share transactions (``store``).
* **A ready row is a full copy of a waiting job** keyed by the contract's order
  (higher priority, earlier ``run_at``, older id). Leasing (``lease``) reads the
  due ones in one range query and STARTs them with no read per job, guarded by
  the ready row's ETag: every write of a waiting job rewrites its ready row in
  the same transaction, so that guard is as strong as the job's own. The lease
  is offload's token plus an expiry in the job entity; heartbeats extend the
  expiry, and a completion from a worker whose token is gone is refused.
* **Storage Queue messages are signals**, one per job landing waiting, naming
  the job and visible when it comes due (up to the 7-day maximum; an early
  receiver signals again). Idle workers receive once per queue per poll
  interval and lease from the table; the Azure Functions trigger
  (``offload.integrations.azure_functions``) runs the job each message names.
* **Event ids** come from one counter entity advanced by compare-and-set, one
  block per call (``eventids``), so they increase across every process (the
  feed cursor) without a counter write per transition.
* Ids map to queues in ``<prefix>ids``; unique keys in ``<prefix>unique``;
  pauses, limits, workers, schedules and batches in ``<prefix>control``, each
  changed by compare-and-set on its ETag.
"""

from offload.backends.azure.backend import AzureBackend

__all__ = ["AzureBackend"]
