"""Schedule maths in the client's time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.library.schema import Step
from bot.scheduling.timing import QuietHours, local_moment, occurrences

BERLIN, NEW_YORK, SYDNEY = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo(
    "Australia/Sydney")
# (zone, the day clocks jump forward, the day they fall back)
DST_DAYS = [
    (BERLIN, date(2026, 3, 29), date(2026, 10, 25)),
    (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1)),
    (SYDNEY, date(2026, 10, 4), date(2026, 4, 5)),
]


def fire_times(step: Step, zone: ZoneInfo, around: date, days: int = 3, **kw: object) -> list[datetime]:
    start = datetime.combine(around - timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return [o.at for o in occurrences(step, zone, after=start - timedelta(seconds=1),
                                      until=start + timedelta(days=days), **kw)]  # type: ignore[arg-type]


def local(moments: list[datetime], zone: ZoneInfo) -> list[str]:
    return [m.astimezone(zone).strftime("%m-%d %H:%M") for m in moments]


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_DAYS)
def test_daily_evening_prompt_stays_at_local_time_across_dst(zone: ZoneInfo, spring: date,
                                                              autumn: date) -> None:
    """A daily 20:00 prompt arrives at 20:00 local on the day before, of, and after each change."""
    for day in (spring, autumn):
        times = fire_times(Step(prompt="checkin.evening", daily="20:00"), zone, day)
        assert local(times, zone) == [
            f"{d:%m-%d} 20:00" for d in (day - timedelta(days=1), day, day + timedelta(days=1))]
        # ...which is a different UTC hour on either side of the change
        assert len({t.astimezone(UTC).hour for t in times}) == 2


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_DAYS)
def test_time_skipped_in_spring_fires_once_just_after_the_jump(zone: ZoneInfo, spring: date,
                                                               autumn: date) -> None:
    """A prompt set in the hour that does not exist is sent once, an hour later on the wall clock."""
    wall = "02:30"
    times = fire_times(Step(prompt="x.y", daily=wall), zone, spring)
    on_the_day = [t for t in times if t.astimezone(zone).date() == spring]
    assert len(on_the_day) == 1
    assert on_the_day[0].astimezone(zone).strftime("%H:%M") == "03:30"


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_DAYS)
def test_time_repeated_in_autumn_fires_once_at_the_first_occurrence(zone: ZoneInfo, spring: date,
                                                                    autumn: date) -> None:
    """A prompt in the hour that happens twice is sent once, not twice (APScheduler fires both)."""
    wall = "02:30" if zone is not NEW_YORK else "01:30"
    times = fire_times(Step(prompt="x.y", daily=wall), zone, autumn)
    on_the_day = [t for t in times if t.astimezone(zone).date() == autumn]
    assert len(on_the_day) == 1
    first = local_moment(autumn, time.fromisoformat(wall), zone)
    assert on_the_day[0] == first
    assert on_the_day[0].astimezone(zone).fold == 0


def test_weekday_steps_fire_only_on_their_days_in_new_york_over_the_spring_change() -> None:
    """'Mon,Thu 19:00' fires on Mondays and Thursdays at 19:00 New York time, DST or not."""
    step = Step(prompt="attachment.x", weekly=("mon", "thu"), at="19:00")
    times = fire_times(step, NEW_YORK, date(2026, 3, 5), days=14)
    assert [t.astimezone(NEW_YORK).strftime("%a %H:%M") for t in times] == [
        "Thu 19:00", "Mon 19:00", "Thu 19:00", "Mon 19:00"]
    assert {t.astimezone(UTC).hour for t in times} == {0, 23}  # UTC shifts by an hour


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_DAYS)
def test_anchored_steps_count_local_days_from_the_medicine_session(zone: ZoneInfo, spring: date,
                                                                    autumn: date) -> None:
    """'Day 1 after the session at 10:00' is 10:00 local on the next calendar day, across a change."""
    session = datetime.combine(spring - timedelta(days=1), time(14, 0), tzinfo=zone)
    day_one = Step(prompt="integration.x", anchor_day=1, at="10:00")
    day_two = Step(prompt="integration.x", anchor_day=2, at="10:00")
    for step, expected in ((day_one, spring), (day_two, spring + timedelta(days=1))):
        times = fire_times(step, zone, spring, days=5, anchor=session)
        assert local(times, zone) == [f"{expected:%m-%d} 10:00"]


def test_anchor_hours_is_an_exact_span_even_across_a_change() -> None:
    """'2 hours before the session' is exactly two hours before, whatever the wall clock does."""
    session = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)  # 1h after the jump
    times = fire_times(Step(prompt="prep.x", anchor_hours=-2), BERLIN, date(2026, 3, 29),
                       anchor=session)
    assert times == [session.astimezone(UTC) - timedelta(hours=2)]


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_DAYS)
def test_random_window_fires_once_a_day_inside_the_window(zone: ZoneInfo, spring: date,
                                                          autumn: date) -> None:
    """A window step fires exactly once each local day between 10:00 and 20:00, at varying times."""
    step = Step(pool=("checkin.a", "checkin.b"), window=("10:00", "20:00"))
    for day in (spring, autumn):
        times = fire_times(step, zone, day, days=3, seed="enrolment-1")
        walls = [t.astimezone(zone) for t in times]
        assert [w.date() for w in walls] == [day - timedelta(days=1), day, day + timedelta(days=1)]
        assert all(time(10) <= w.time() < time(20) for w in walls)
    many = fire_times(step, zone, spring, days=20, seed="enrolment-1")
    assert len({t.astimezone(zone).time() for t in many}) > 10  # not the same minute every day


def test_random_window_is_the_same_when_planned_twice() -> None:
    """Planning the same window again (after a restart) gives the same times, so nothing doubles."""
    step = Step(pool=("checkin.a",), window=("09:00", "21:00"), days=("mon", "wed", "fri"))
    first = fire_times(step, SYDNEY, date(2026, 10, 5), days=7, seed="e7:0")
    again = fire_times(step, SYDNEY, date(2026, 10, 5), days=7, seed="e7:0")
    other = fire_times(step, SYDNEY, date(2026, 10, 5), days=7, seed="e8:0")
    assert first == again
    assert first != other
    assert {t.astimezone(SYDNEY).strftime("%a") for t in first} == {"Mon", "Wed", "Fri"}


def test_occurrences_are_strictly_after_the_start_and_up_to_the_end() -> None:
    """Planning resumes from the last planned moment without repeating it."""
    step = Step(prompt="x.y", daily="20:00")
    boundary = datetime(2026, 6, 1, 20, 0, tzinfo=BERLIN).astimezone(UTC)
    times = [o.at for o in occurrences(step, BERLIN, after=boundary,
                                       until=boundary + timedelta(days=1))]
    assert times == [boundary + timedelta(days=1)]


QUIET = QuietHours(time(21, 30), time(8, 0))


@pytest.mark.parametrize(("wall", "quiet"), [
    ("21:29", False), ("21:30", True), ("23:59", True), ("00:00", True), ("07:59", True),
    ("08:00", False), ("12:00", False),
])
def test_quiet_hours_spanning_midnight(wall: str, quiet: bool) -> None:
    """Quiet hours from 21:30 to 08:00 include late evening and early morning, not the day."""
    assert QUIET.contains(time.fromisoformat(wall)) is quiet


def test_prompt_in_quiet_hours_moves_to_the_morning() -> None:
    """A prompt at 23:00 waits until 08:00 next morning; one at 06:00 until 08:00 the same day."""
    late = datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN)
    early = datetime(2026, 3, 29, 6, 0, tzinfo=BERLIN)  # DST change day: still 08:00 local
    assert QUIET.release(late, BERLIN).astimezone(BERLIN) == datetime(2026, 3, 29, 8, 0, tzinfo=BERLIN)
    assert QUIET.release(early, BERLIN).astimezone(BERLIN) == datetime(2026, 3, 29, 8, 0, tzinfo=BERLIN)
    noon = datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN)
    assert QUIET.release(noon, BERLIN) == noon


def test_daytime_quiet_hours_do_not_wrap() -> None:
    """Quiet hours inside one day (13:00-15:00, a nap) release at 15:00 that day."""
    nap = QuietHours(time(13), time(15))
    at = datetime(2026, 7, 1, 14, 0, tzinfo=NEW_YORK)
    assert not nap.contains(time(16))
    assert nap.release(at, NEW_YORK).astimezone(NEW_YORK).time() == time(15)
