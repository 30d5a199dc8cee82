"""Trend charts as inline SVG, drawn on the server: no script, printable, readable by screen
readers (a title and a description, with the numbers in a table beside each chart).

States are told apart by shape as well as colour: circle grounded, triangle activated,
square shut down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from bot.services.questionnaires import Trend
from bot.services.records import CheckInPoint, WeekRate

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 40
STATE_CLASSES = {"grounded": "grounded", "activated": "activated", "shut_down": "shut-down"}
STATE_NAMES = {"grounded": "grounded", "activated": "activated", "shut_down": "shut down"}


def _x(moment: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1
    return LEFT + (WIDTH - LEFT - RIGHT) * (moment - start).total_seconds() / span


def _y(value: float, top: float = 10) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _marker(state: str | None, x: float, y: float) -> str:
    css = STATE_CLASSES.get(state or "", "unknown")
    if state == "activated":
        return (f'<polygon class="point {css}" points="{x:.1f},{y - 6:.1f} {x + 6:.1f},{y + 5:.1f} '
                f'{x - 6:.1f},{y + 5:.1f}"/>')
    if state == "shut_down":
        return f'<rect class="point {css}" x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10"/>'
    return f'<circle class="point {css}" cx="{x:.1f}" cy="{y:.1f}" r="5.5"/>'


def _date_axis(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    parts = []
    days = max((end - start).days, 1)
    step = max(days // 6, 1)
    day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day >= start:
            x = _x(day, start, end)
            parts.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{HEIGHT - BOTTOM}" '
                         f'y2="{HEIGHT - BOTTOM + 5}"/>'
                         f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 20}" '
                         f'text-anchor="middle">{day.day} {day:%b}</text>')
        day = (day + timedelta(days=step) + timedelta(hours=12)).replace(hour=0)
    return parts


def _sessions(sessions: list[datetime], start: datetime, end: datetime) -> list[str]:
    parts = []
    for moment in sessions:
        if start <= moment <= end:
            x = _x(moment, start, end)
            parts.append(f'<g class="session"><line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                         f'y2="{HEIGHT - BOTTOM}"/><text x="{x + 4:.1f}" y="{TOP + 10}">'
                         'medicine session</text></g>')
    return parts


def _intensity_frame(chart_id: str, title: str, summary: str, sessions: list[datetime],
                     start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    """The opening of an intensity chart: titled and described for screen readers, the 0-10
    grid, the date axis and the medicine sessions."""
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" data-chart="{chart_id}">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(summary)}</desc>']
    for level in (0, 5, 10):
        y = _y(level)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{level}</text>')
    return [*parts, *_date_axis(start, end, zone), *_sessions(sessions, start, end)]


def checkin_chart(points: list[CheckInPoint], sessions: list[datetime], start: datetime,
                  end: datetime, zone: ZoneInfo, chart_id: str = "checkins") -> Markup:
    """Intensity (0-10) over time, each point shaped by state; medicine sessions as lines."""
    described = [p for p in points if p.intensity is not None or p.state]
    states = {s: sum(p.state == s for p in described) for s in STATE_NAMES}
    summary = (f"{len(described)} check-ins from {start:%d %b} to {end:%d %b}: "
               + ", ".join(f"{n} {STATE_NAMES[s]}" for s, n in states.items()))
    parts = _intensity_frame(chart_id, "Check-ins: state and intensity", summary, sessions,
                             start, end, zone)
    line = [p for p in described if p.intensity is not None]
    if len(line) > 1:
        path = " ".join(f"{_x(p.at, start, end):.1f},{_y(p.intensity or 0):.1f}" for p in line)
        parts.append(f'<polyline class="trend" points="{path}"/>')
    for point in described:
        y = _y(point.intensity) if point.intensity is not None else _y(0) - 2
        state = STATE_NAMES.get(point.state or "", "no state")
        label = f"{point.at.astimezone(zone):%d %b %H:%M}: {state}"
        if point.intensity is not None:
            label += f", {point.intensity} of 10"
        marker = _marker(point.state, _x(point.at, start, end), y)
        parts.append(f"<g><title>{escape(label)}</title>{marker}</g>")
    if not described:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                     'No check-ins in this period</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped


def answer_rate_chart(weeks: list[WeekRate], sessions: list[datetime], start: datetime,
                      end: datetime, chart_id: str = "answers") -> Markup:
    """Share of prompts answered, week by week, with the counts on each bar."""
    answered = sum(w.answered for w in weeks)
    sent = sum(w.sent for w in weeks)
    summary = f"{answered} of {sent} prompts answered over {len(weeks)} weeks"
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" data-chart="{chart_id}">',
             f'<title id="{chart_id}-title">Answer rate by week</title>',
             f'<desc id="{chart_id}-desc">{escape(summary)}</desc>']
    for level in (0, 50, 100):
        y = _y(level, 100)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{level}%</text>')
    slot = (WIDTH - LEFT - RIGHT) / max(len(weeks), 1)
    for index, week in enumerate(weeks):
        x = LEFT + index * slot + slot * 0.15
        rate = week.rate
        label = f"week of {week.week_start:%d %b}"
        if rate is None:
            parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{_y(0, 100) - 6:.1f}" '
                         f'text-anchor="middle">–</text>')
        else:
            y = _y(rate * 100, 100)
            parts.append(f'<g><title>{label}: {week.answered} of {week.sent} answered</title>'
                         f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{_y(0, 100) - y:.1f}"/></g>'
                         f'<text class="count" x="{x + slot * 0.35:.1f}" y="{max(y - 6, TOP + 10):.1f}" '
                         f'text-anchor="middle">{week.answered}/{week.sent}</text>')
        parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 20}" '
                     f'text-anchor="middle">{week.week_start.day} {week.week_start:%b}</text>')
    parts += _sessions(sessions, start, start + timedelta(days=7 * max(len(weeks), 1)))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped


# A couple's chart: both partners' check-in intensities on one time axis. Partners are told
# apart by shape, line and colour together: the first a circle on a solid line, the second a
# diamond on a dashed line (a state is named in each point's title and in the table).
PARTNER_STYLES = ("partner-a", "partner-b")


def _partner_marker(position: int, x: float, y: float, css: str) -> str:
    if position == 0:
        return f'<circle class="point {css}" cx="{x:.1f}" cy="{y:.1f}" r="5.5"/>'
    return (f'<polygon class="point {css}" points="{x:.1f},{y - 7:.1f} {x + 7:.1f},{y:.1f} '
            f'{x:.1f},{y + 7:.1f} {x - 7:.1f},{y:.1f}"/>')


def couple_chart(series: list[tuple[str, list[CheckInPoint]]], sessions: list[datetime],
                 start: datetime, end: datetime, zone: ZoneInfo,
                 chart_id: str = "couple-checkins") -> Markup:
    """Both partners' intensity (0-10) over time, one series each; medicine sessions as lines."""
    counts = [(name, [p for p in points if p.intensity is not None and start <= p.at <= end])
              for name, points in series]
    summary = (f"Check-in intensity from {start:%d %b} to {end:%d %b}: "
               + "; ".join(f"{name}, {len(points)} check-ins"
                           + (f", average {sum(p.intensity or 0 for p in points) / len(points):.1f}"
                              if points else "")
                           for name, points in counts))
    parts = _intensity_frame(chart_id, "Both partners' check-ins: intensity", summary, sessions,
                             start, end, zone)
    for position, (name, points) in enumerate(counts[:2]):
        css = PARTNER_STYLES[position]
        parts.append(f'<g class="series {css}" data-partner="{position}">')
        if len(points) > 1:
            path = " ".join(f"{_x(p.at, start, end):.1f},{_y(p.intensity or 0):.1f}"
                            for p in points)
            parts.append(f'<polyline class="line {css}" points="{path}"/>')
        for point in points:
            state = STATE_NAMES.get(point.state or "", "no state")
            label = (f"{name}, {point.at.astimezone(zone):%d %b %H:%M}: {point.intensity} of 10, "
                     f"{state}")
            marker = _partner_marker(position, _x(point.at, start, end), _y(point.intensity or 0),
                                     css)
            parts.append(f"<g><title>{escape(label)}</title>{marker}</g>")
        parts.append("</g>")
    if not any(points for _name, points in counts):
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                     'No check-ins in this period</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped


def score_chart(trend: Trend, sessions: list[datetime], start: datetime, end: datetime,
                zone: ZoneInfo, chart_id: str) -> Markup:
    """A questionnaire's totals over time on its own range (PHQ-9 0-27), the band edges as a
    grid, the baseline as a dashed line, medicine sessions marked."""
    questionnaire = trend.questionnaire
    top = questionnaire.highest or 1
    points = [r for r in trend.results if r.total is not None and start <= r.at <= end]
    summary = f"{questionnaire.title}: {len(points)} totals from {start:%d %b} to {end:%d %b}"
    if trend.baseline is not None and trend.latest is not None:
        summary += (f"; baseline {trend.baseline.total}, latest {trend.latest.total} "
                    f"({trend.latest.band})")
    parts = [f'<svg class="chart scores" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" data-chart="{chart_id}">',
             f'<title id="{chart_id}-title">{escape(questionnaire.title)} total over time</title>',
             f'<desc id="{chart_id}-desc">{escape(summary)}</desc>']
    for band in questionnaire.scoring.bands:
        y = _y(band.min, top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{band.min}</text><text class="band" '
                     f'x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">'
                     f'{escape(band.label)}</text>')
    parts += [*_date_axis(start, end, zone), *_sessions(sessions, start, end)]
    if trend.baseline is not None and trend.baseline.total is not None:
        y = _y(trend.baseline.total, top)
        parts.append(f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
    if len(points) > 1:
        path = " ".join(f"{_x(r.at, start, end):.1f},{_y(r.total or 0, top):.1f}" for r in points)
        parts.append(f'<polyline class="trend score-line" points="{path}"/>')
    for result in points:
        x, y = _x(result.at, start, end), _y(result.total or 0, top)
        label = f"{result.at.astimezone(zone):%d %b %H:%M}: {result.total}, {result.band}"
        parts.append(f'<g><title>{escape(label)}</title><circle class="point score" '
                     f'cx="{x:.1f}" cy="{y:.1f}" r="5.5"/></g>')
    if not points:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                     'No completed questionnaires in this period</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped
