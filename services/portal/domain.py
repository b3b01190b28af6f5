"""What the pages show, computed from read-model rows: plain functions, no I/O.

The cycle's moments follow the clinical defaults (DESIGN.md): check-ins on day 2, 7, 14
(side effects) and 28, 56, 77 (headache days), booking reminders on day 70 and 81, the
earliest next treatment on day 84, overdue from day 98.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from typing import Any

MOMENTS = ((2, "side-effect check-in"), (7, "side-effect check-in"), (14, "side-effect check-in"),
           (28, "headache check-in"), (56, "headache check-in"), (70, "booking reminder"),
           (77, "headache check-in"), (81, "booking reminder"), (84, "next treatment possible"),
           (98, "cycle overdue"))
BOOKING_WINDOW = (70, 84)
OVERDUE_DAY = 98
RESPONSE_TARGET = 0.7  # NICE TA260: at least a 30% reduction in headache days


def cycle_day(last_treatment: date, today: date) -> int:
    return (today - last_treatment).days


def next_moments(last_treatment: date | None, today: date, count: int = 4) -> list[tuple[date, str]]:
    if last_treatment is None:
        return []
    upcoming = [(last_treatment + timedelta(days=d), label) for d, label in MOMENTS]
    return [(when, label) for when, label in upcoming if when >= today][:count]


@dataclass(frozen=True)
class ChartPoint:
    cycle: int
    label: str
    headache_days: int


def chart_points(checkins: Sequence[Any]) -> list[ChartPoint]:
    """Headache days per 4 weeks, cycle by cycle, in the order the patient reported them."""
    points, seen_per_cycle = [], {}
    for c in sorted(checkins, key=lambda c: (c.cycle or 1, c.completed_at)):
        if c.kind != "headache_frequency" or c.headache_days is None:
            continue
        cycle = c.cycle or 1
        seen_per_cycle[cycle] = seen_per_cycle.get(cycle, 0) + 1
        points.append(ChartPoint(cycle, f"C{cycle}.{seen_per_cycle[cycle]}", c.headache_days))
    return points


def headache_chart(points: Sequence[ChartPoint], baseline: int | None, width: int = 560, height: int = 220) -> str:
    """An inline SVG line chart of headache days against the baseline and the 30%-reduction line."""
    left, right, top, bottom = 40, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([28, baseline or 0, *(p.headache_days for p in points)])

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / max(len(points), 1))

    title = "Headache days per 4 weeks" + (f", baseline {baseline}" if baseline is not None else "")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-title"><title id="chart-title">{escape(title)}</title>',
             f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" class="axis"/>']
    for tick in range(0, top_value + 1, 7):
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">{tick}</text>')
    if baseline is not None:
        target = baseline * RESPONSE_TARGET
        parts.append(f'<line x1="{left}" y1="{y(baseline):.1f}" x2="{width - right}" y2="{y(baseline):.1f}" class="baseline"/>'
                     f'<text x="{width - right}" y="{y(baseline) - 4:.1f}" text-anchor="end" class="legend">baseline {baseline}</text>')
        parts.append(f'<line x1="{left}" y1="{y(target):.1f}" x2="{width - right}" y2="{y(target):.1f}" class="target"/>'
                     f'<text x="{width - right}" y="{y(target) + 14:.1f}" text-anchor="end" class="legend">30% reduction ({target:.0f})</text>')
    if points:
        path = " ".join(f"{x(i):.1f},{y(p.headache_days):.1f}" for i, p in enumerate(points))
        parts.append(f'<polyline points="{path}" class="series"/>')
        for i, p in enumerate(points):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p.headache_days):.1f}" r="4" class="point">'
                         f'<title>{escape(p.label)}: {p.headache_days} headache days</title></circle>'
                         f'<text x="{x(i):.1f}" y="{height - 14}" text-anchor="middle" class="tick">{escape(p.label)}</text>')
    else:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="legend">no headache check-in answered yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def side_effects_by_cycle(checkins: Sequence[Any], describe: Any) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for c in checkins:
        if c.kind == "side_effects":
            found.setdefault(c.cycle or 1, []).append(describe(c))
    return found


@dataclass
class ClinicSummary:
    due_to_book: list[Any] = field(default_factory=list)
    overdue: list[Any] = field(default_factory=list)
    unreachable: list[Any] = field(default_factory=list)
    non_responders: list[Any] = field(default_factory=list)
    asked: int = 0
    answered: int = 0
    median_ack_minutes: float | None = None

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.asked if self.asked else None


def clinic_summary(patients: Sequence[Any], today: date, ack_minutes: Sequence[float]) -> ClinicSummary:
    summary = ClinicSummary(median_ack_minutes=statistics.median(ack_minutes) if ack_minutes else None)
    for p in patients:
        summary.asked += p.asked or 0
        summary.answered += p.answered or 0
        if p.last_treatment is not None:
            day = cycle_day(p.last_treatment, today)
            if BOOKING_WINDOW[0] <= day <= BOOKING_WINDOW[1]:
                summary.due_to_book.append(p)
            elif day > OVERDUE_DAY:
                summary.overdue.append(p)
        if p.last_delivery_status == "failed" or not (p.sms_consent or (p.email_consent and p.has_email)):
            summary.unreachable.append(p)
        if (p.expired or 0) > 0 and (p.answered or 0) < (p.asked or 0):
            summary.non_responders.append(p)
    return summary
