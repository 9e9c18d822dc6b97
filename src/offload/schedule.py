"""Cron rule -> next firing, in the rule's own IANA time zone.

Parsing and matching are croniter's (extra ``cron``). What this module adds is
the policy at daylight-saving changes, where cron implementations differ:

* a wall time skipped by a spring-forward fires once, at the first valid
  instant after the gap (croniter's behaviour);
* a wall time repeated by a fall-back fires once, on its first pass, for rules
  with a fixed hour; rules whose hour field is ``*`` follow real time, so a
  "every 30 seconds" rule keeps firing every 30 seconds through the repeated hour.

Five fields are minute-resolution cron; six put seconds first
(``*/10 * * * * *``). Firings are whole seconds in UTC, which lets every backend
compare them exactly when several schedulers race for one firing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from offload.errors import ConfigurationError

# Defined with the rest of the tree; still importable from here, where they began.
from offload.errors import InvalidCronError as InvalidCronError
from offload.errors import InvalidTimezoneError as InvalidTimezoneError
from offload.job import Schedule


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "schedules need the cron extra: pip install 'offload[cron]'"
        ) from exc
    return croniter


@dataclass(frozen=True)
class CronRule:
    expression: str
    timezone: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise InvalidCronError(
                f"cron rule {self.expression!r} has {len(fields)} fields; "
                "expected 5 (minute hour day month weekday) or 6 (seconds first)"
            )
        if not _croniter().is_valid(self.expression, second_at_beginning=True):
            raise InvalidCronError(f"cron rule {self.expression!r} is not valid")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a name that is a folder of the zone database ("America").
            raise InvalidTimezoneError(
                f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Berlin)"
            ) from None
        object.__setattr__(self, "_zone", zone)
        # A valid rule may match no date at all ("0 0 30 2 *"): refuse it now
        # rather than let the scheduler find out at its first firing.
        self.next_after(datetime.now(UTC))

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == 6

    @property
    def _fixed_hour(self) -> bool:
        fields = self.expression.split()
        hour = fields[2] if self.has_seconds else fields[1]
        return hour != "*"

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment`` (aware), in UTC."""
        start = moment.astimezone(self._zone)
        it = _croniter()(self.expression, start, second_at_beginning=True)
        for _ in range(10_000):
            try:
                candidate: datetime = it.get_next(datetime)
            except Exception as exc:  # croniter's "failed to find next date"
                raise InvalidCronError(
                    f"cron rule {self.expression!r} never fires: {exc}"
                ) from None
            if not (self._fixed_hour and self._second_pass(candidate)):
                return candidate.astimezone(UTC).replace(microsecond=0)
        raise InvalidCronError(f"cron rule {self.expression!r} found no firing")  # pragma: no cover

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        for _ in range(count):
            moment = self.next_after(moment)
            out.append(moment)
        return out

    def _second_pass(self, local: datetime) -> bool:
        """True when ``local`` is the repeat of a wall time a fall-back replayed."""
        wall = local.replace(tzinfo=None)
        first = wall.replace(fold=0, tzinfo=self._zone).astimezone(UTC)
        second = wall.replace(fold=1, tzinfo=self._zone).astimezone(UTC)
        return first != second and local.astimezone(UTC) == second


def upcoming_firings(schedule: Schedule, count: int) -> list[datetime]:
    """The schedule's next ``count`` firings from its stored next one, for
    listings; a rule the installed zone data no longer knows lists that one."""
    if schedule.next_run_at is None:
        return []
    try:
        rule = CronRule(schedule.cron, schedule.timezone)
    except ValueError:
        return [schedule.next_run_at]
    return [schedule.next_run_at, *rule.upcoming(schedule.next_run_at, count - 1)]
