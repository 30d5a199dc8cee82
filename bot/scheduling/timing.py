"""Schedule maths: when each program step fires, in the client's own time zone.

APScheduler's triggers find the fire times; the decisions about daylight-saving time and quiet
hours are ours and are written down here:

- A wall time that does not exist (the hour skipped in spring) fires once, at the same distance
  past the change: 02:30 becomes 03:30.
- A wall time that happens twice (the hour repeated in autumn) fires once, at its first
  occurrence. APScheduler fires both; we drop the second.
- A time inside the client's quiet hours moves to the end of the quiet hours.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.library.schema import Step, parse_hhmm


@dataclass(frozen=True)
class Occurrence:
    """One firing of a step: when (UTC) and which local day it belongs to."""

    at: datetime
    local_date: date


def local_moment(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens on a day, by the rules above, in UTC."""
    # fold=0 gives the first of a repeated time; for a skipped time, zoneinfo applies the
    # offset from before the change, which lands the same distance past it.
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _is_repeat(moment: datetime, zone: ZoneInfo) -> bool:
    """True when `moment` is the second time its wall-clock time happens that day."""
    wall = moment.astimezone(zone).replace(tzinfo=None)
    return local_moment(wall.date(), wall.time(), zone) != moment.astimezone(UTC)


def _cron(step: Step, zone: ZoneInfo) -> CronTrigger:
    if step.daily is not None:
        wall, days = parse_hhmm(step.daily), "*"
    elif step.weekly:
        assert step.at is not None
        wall, days = parse_hhmm(step.at), ",".join(step.weekly)
    else:
        assert step.window is not None
        wall, days = parse_hhmm(step.window[0]), ",".join(step.days) if step.days else "*"
    return _trigger(days, wall.hour, wall.minute, zone)


@functools.lru_cache(maxsize=4096)
def _trigger(days: str, hour: int, minute: int, zone: ZoneInfo) -> CronTrigger:
    # Built once per schedule and zone: building one costs more than asking it for a time,
    # and asking does not change it.
    return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=zone)


def _cron_times(trigger: CronTrigger, zone: ZoneInfo, after: datetime,
                until: datetime) -> Iterator[datetime]:
    previous: datetime | None = None
    # APScheduler returns the first time >= now; we want strictly after `after`. `now` is passed
    # in UTC: a local time in the repeated hour (fold=1) would be read back as the first one,
    # and the trigger would answer the same two instants forever.
    now = after.astimezone(UTC) + timedelta(microseconds=1)
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire > until:
            return
        fire_utc = fire.astimezone(UTC)
        if fire_utc < now:  # never step backwards, whatever the trigger answers
            now += timedelta(minutes=1)
            continue
        previous, now = fire, fire_utc + timedelta(microseconds=1)
        if not _is_repeat(fire, zone):
            yield fire_utc


def window_offset(seed: str, length: timedelta) -> timedelta:
    """A random-looking but repeatable minute inside a window: planning twice agrees."""
    minutes = max(int(length.total_seconds() // 60), 1)
    digest = hashlib.sha256(seed.encode()).digest()
    return timedelta(minutes=int.from_bytes(digest[:8], "big") % minutes)


def occurrences(step: Step, zone: ZoneInfo, *, after: datetime, until: datetime,
                anchor: datetime | None = None, start: datetime | None = None,
                seed: str = "") -> Iterator[Occurrence]:
    """Every firing of `step` in (after, until], in order. `seed` makes windows repeatable.

    A step timed from the program's start fires at `start` plus its hours, and `start` itself
    counts (a baseline at enrolment is due the moment planning begins); None (a continued run)
    means it does not fire at all.
    """
    if step.start_hours is not None:
        if start is None:
            return
        moment = start.astimezone(UTC) + timedelta(hours=step.start_hours)
        if after <= moment <= until:
            yield Occurrence(moment, moment.astimezone(zone).date())
        return
    if step.anchored:
        if anchor is None:
            return
        if step.anchor_hours is not None:
            moment = anchor.astimezone(UTC) + timedelta(hours=step.anchor_hours)
        else:
            assert step.anchor_day is not None
            assert step.at is not None
            day = anchor.astimezone(zone).date() + timedelta(days=step.anchor_day)
            moment = local_moment(day, parse_hhmm(step.at), zone)
        if after < moment <= until:
            yield Occurrence(moment, moment.astimezone(zone).date())
        return

    if step.window is None:
        for fire in _cron_times(_cron(step, zone), zone, after, until):
            yield Occurrence(fire, fire.astimezone(zone).date())
        return

    # A window step fires once a day between its start and end. Walk the window starts (a day
    # early, since the random minute may fall after `after` even when the start does not).
    start, end = (parse_hhmm(value) for value in step.window)
    for opening in _cron_times(_cron(step, zone), zone, after - timedelta(days=1), until):
        day = opening.astimezone(zone).date()
        length = datetime.combine(day, end) - datetime.combine(day, start)
        wall = datetime.combine(day, start) + window_offset(f"{seed}:{day}", length)
        moment = local_moment(day, wall.time(), zone)
        if after < moment <= until:
            yield Occurrence(moment, day)


@dataclass(frozen=True)
class QuietHours:
    """A nightly span with no prompts; it may cross midnight (21:30-08:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        return _quiet_hours(start, end)

    def contains(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def release(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """`moment` if it is outside quiet hours, else the end of those quiet hours (UTC)."""
        local = moment.astimezone(zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return moment
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # late evening: quiet ends tomorrow morning
        return local_moment(day, self.end, zone)


@functools.lru_cache(maxsize=1024)
def _quiet_hours(start: str, end: str) -> QuietHours:
    """Parsed once per pair of times: the planner asks for every prompt it writes."""
    return QuietHours(parse_hhmm(start), parse_hhmm(end))
