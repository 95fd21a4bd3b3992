"""Cron schedules of PingSources: validation and the next wall-clock tick in a time zone.

Kept apart so the one untyped dependency (croniter) is touched in one place.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter


def is_valid_schedule(schedule: str) -> bool:
    return bool(croniter.is_valid(schedule))


def zone_of(timezone: str | None) -> tzinfo:
    """The zone a schedule is read in; None is the machine's local zone (Knative's default
    is the system zone of the adapter, which on a laptop is the same thing)."""
    if timezone:
        return ZoneInfo(timezone)
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def next_tick(schedule: str, zone: tzinfo, after: datetime) -> datetime:
    """The first tick strictly after `after` (any zone; naive means UTC), in `zone`.

    croniter walks local wall-clock time, so "0 9 * * *" in Europe/Berlin fires at 09:00
    Berlin time on both sides of a DST change.
    """
    if after.tzinfo is None:
        after = after.replace(tzinfo=ZoneInfo("UTC"))
    start = after.astimezone(zone)
    tick = croniter(schedule, start).get_next(datetime)
    assert isinstance(tick, datetime)
    return tick
