"""One name per way an attempt ended, shared by traces, metrics and logs so a
dashboard and a trace never disagree about what happened."""

from __future__ import annotations

from offload.job import Cancelled, Failed, Interrupted, Outcome, Rejected, Snoozed, Succeeded

SUCCEEDED = "succeeded"
FAILED = "failed"  # an attempt that failed and will be retried
DEAD = "dead"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"  # shutdown handed the job back; the attempt does not count
SNOOZED = "snoozed"


def outcome_name(outcome: Outcome) -> str:
    """``Rejected`` (unknown task, bad payload) is dead-lettered at once, so it
    counts as dead; a failure with no retry left too."""
    if isinstance(outcome, Succeeded):
        return SUCCEEDED
    if isinstance(outcome, Failed):
        return FAILED if outcome.retry_in is not None else DEAD
    if isinstance(outcome, Rejected):
        return DEAD
    if isinstance(outcome, Cancelled):
        return CANCELLED
    if isinstance(outcome, Interrupted):
        return INTERRUPTED
    if isinstance(outcome, Snoozed):
        return SNOOZED
    raise TypeError(f"not an outcome: {outcome!r}")
