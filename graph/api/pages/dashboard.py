"""The analyst dashboard's view of the report: tiles, group tables and chart geometry.

Only numbers and plain strings come out of here; ``analyst.html`` draws the SVG from them
(autoescaped: a label is text, whatever it contains). Bars are laid out in percent of the
chart's width and pixels of its height, so the charts fit any screen without scaling text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from graph.api.routes.report import group_discount_to_cap

CHURN_ORDER = ("high", "mid", "low")
INVENTORY_ORDER = ("Critical", "Low", "Normal", "High")
ROW_H = 34  # px per horizontal bar: a label line, then the bar
PLOT_H = 140  # px of a column chart's plot area
PLOT_TOP = 16
AXIS_H = 22  # px under the plot for the day labels
MAX_DAY_LABELS = 8
NONE = "\u2013"  # an en dash: no value


def money(value: float | None) -> str:
    return NONE if value is None else f"{value:,.2f}"


def pct(value: float | None, digits: int = 0) -> str:
    """A share (0..1) as a percent."""
    return NONE if value is None else f"{value * 100:.{digits}f}%"


def percent(value: float | None) -> str:
    """A percent already in percent units."""
    return NONE if value is None else f"{round(value, 1):g}%"


def seconds(value: float | None) -> str:
    if value is None:
        return NONE
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


@dataclass
class Bar:
    label: str
    value_text: str
    width: float  # percent of the chart's width
    y: int  # the label's baseline
    bar_y: int


@dataclass
class BarChart:
    id: str
    title: str
    bars: list[Bar]
    height: int
    kind: str = "given"  # the CSS class of the bars


@dataclass
class Column:
    series: str  # the CSS class
    label: str  # for the tooltip (<title>)
    x: float  # percent
    width: float  # percent
    y: float  # px
    height: float  # px


@dataclass
class DayLabel:
    text: str
    x: float  # percent, the middle of the day's slot


@dataclass
class ColumnChart:
    id: str
    title: str
    columns: list[Column]
    labels: list[DayLabel]
    top_value: str  # the value at the top grid line
    height: int = PLOT_TOP + PLOT_H + AXIS_H
    plot_top: int = PLOT_TOP
    plot_bottom: int = PLOT_TOP + PLOT_H
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, name)


@dataclass
class GroupRow:
    key: str
    issued: int
    accepted: int
    deal_rate: str
    avg_discount: str
    avg_cap: str
    discount_to_cap: str
    given: str


@dataclass
class Section:
    id: str
    title: str
    rows: list[GroupRow]
    given_chart: BarChart
    ratio_chart: BarChart


def _ordered(groups: dict[str, Any], order: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(groups.items(), key=lambda kv: (rank.get(kv[0], len(order)), str(kv[0])))


def bar_chart(
    chart_id: str, title: str, rows: list[tuple[str, float | None, str]], kind: str
) -> BarChart:
    """Horizontal bars of ``(label, value, value_text)``, scaled to the largest value."""
    top = max((v for _, v, _ in rows if v), default=0.0)
    bars = []
    for i, (label, value, text) in enumerate(rows):
        width = 0.0 if not value or not top else max(0.8, 100.0 * value / top)
        y = i * ROW_H + 13
        bars.append(Bar(label, text, round(width, 2), y, y + 6))
    return BarChart(chart_id, title, bars, max(ROW_H, len(rows) * ROW_H), kind)


def _section(section_id: str, title: str, groups: dict[str, Any], order: tuple[str, ...]):
    ordered = _ordered(groups, order)
    rows = []
    for key, g in ordered:
        ratio = group_discount_to_cap(g)
        rows.append(
            GroupRow(
                key=str(key),
                issued=int(g.get("offers_issued") or 0),
                accepted=int(g.get("accepted", g.get("offers_accepted")) or 0),
                deal_rate=pct(g.get("acceptance_rate")),
                avg_discount=percent(g.get("avg_discount_percent")),
                avg_cap=percent(g.get("avg_cap_percent")),
                discount_to_cap=pct(ratio),
                given=money(g.get("discount_given_total")),
            )
        )
    given = bar_chart(
        f"{section_id}-given",
        f"Discount given {title.lower()}",
        [
            (str(k), g.get("discount_given_total"), money(g.get("discount_given_total")))
            for k, g in ordered
        ],
        "given",
    )
    ratio_chart = bar_chart(
        f"{section_id}-ratio",
        f"Discount ÷ cap {title.lower()}",
        [(str(k), group_discount_to_cap(g), pct(group_discount_to_cap(g))) for k, g in ordered],
        "ratio",
    )
    return Section(section_id, title, rows, given, ratio_chart)


def _days(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline with the days between its first and last filled in (with zeros)."""
    if not timeline:
        return []
    by_day = {row["day"]: row for row in timeline}
    first, last = date.fromisoformat(timeline[0]["day"]), date.fromisoformat(timeline[-1]["day"])
    if (last - first).days > 366:  # a sparse, long history: the days that have offers
        return timeline
    out = []
    day = first
    while day <= last:
        key = day.isoformat()
        out.append(
            by_day.get(key)
            or {
                "day": key,
                "issued": 0,
                "accepted": 0,
                "discount_given": 0.0,
                "approved": 0,
                "rejected": 0,
                "pending": 0,
            }
        )
        day += timedelta(days=1)
    return out


def column_chart(
    chart_id: str,
    title: str,
    days: list[dict[str, Any]],
    series: list[tuple[str, str]],
    *,
    stacked: bool,
) -> ColumnChart:
    """Per-day columns of ``series`` (``(key, name)``): side by side, or stacked."""
    n = max(1, len(days))
    slot = 100.0 / n
    totals = [
        sum(d[k] for k, _ in series) if stacked else max(d[k] for k, _ in series) for d in days
    ]
    top = max(totals, default=0) or 1
    columns: list[Column] = []
    for i, d in enumerate(days):
        left = i * slot
        base = float(PLOT_TOP + PLOT_H)
        inner = slot * (0.5 if stacked else 0.7)
        for j, (key, name) in enumerate(series):
            h = PLOT_H * d[key] / top
            if stacked:
                x, w, y = left + (slot - inner) / 2, inner, base - h
                base -= h
            else:
                w = inner / len(series)
                x, y = left + (slot - inner) / 2 + j * w, PLOT_TOP + PLOT_H - h
            if d[key]:
                columns.append(
                    Column(
                        key,
                        f"{d['day']}: {d[key]} {name}",
                        round(x, 3),
                        round(w * 0.92, 3),
                        round(y, 1),
                        round(h, 1),
                    )
                )
    step = math.ceil(n / MAX_DAY_LABELS)
    labels = [
        DayLabel(d["day"][5:] if n > 1 else d["day"], round((i + 0.5) * slot, 3))
        for i, d in enumerate(days)
        if i % step == 0
    ]
    return ColumnChart(chart_id, title, columns, labels, str(top), legend=list(series))


def dashboard(report: dict[str, Any], since: str) -> dict[str, Any]:
    """Everything ``analyst.html`` shows of ``report`` (the ``GET /v1/report`` object)."""
    a = report.get("approvals") or {}
    tiles = [
        ("Offers issued", str(report.get("offers_issued", 0)), ""),
        ("Offers accepted", str(report.get("offers_accepted", 0)), ""),
        ("Deal rate", pct(report.get("acceptance_rate")), "accepted ÷ final offers"),
        ("Discount given", money(report.get("discount_given_total")), "accepted codes"),
        ("Average discount", percent(report.get("avg_discount_percent")), "accepted codes"),
        ("Discount ÷ cap", pct(report.get("discount_to_cap")), "given ÷ what policy allowed"),
        ("Approvals pending", str(a.get("pending", 0)), ""),
        ("Median wait", seconds(a.get("median_wait_s")), "for a manager's decision"),
    ]
    approvals = [
        ("approved", "Approved", a.get("approved", 0)),
        ("rejected", "Rejected", a.get("rejected", 0)),
        ("pending", "Pending", a.get("pending", 0)),
        ("expired", "Expired while pending", a.get("expired_pending", 0)),
    ]
    days = _days(report.get("timeline") or [])
    offers_chart = column_chart(
        "per-day-offers",
        "Offers issued and accepted per day",
        days,
        [("issued", "issued"), ("accepted", "accepted")],
        stacked=False,
    )
    approvals_chart = column_chart(
        "per-day-approvals",
        "Manager decisions per day",
        days,
        [("approved", "approved"), ("rejected", "rejected"), ("pending", "pending")],
        stacked=True,
    )
    return {
        "since": since,
        "csv_url": "/v1/report.csv" + (f"?{urlencode({'since': since})}" if since else ""),
        "generated_at": str(report.get("generated_at") or "")[:16].replace("T", " "),
        "empty": not report.get("offers_issued") and not days,
        "tiles": tiles,
        "approvals": approvals,
        "sections": [
            _section("churn", "By churn band", report.get("by_churn_band") or {}, CHURN_ORDER),
            _section(
                "inventory", "By inventory", report.get("by_inventory") or {}, INVENTORY_ORDER
            ),
        ],
        "days": days,
        "offers_chart": offers_chart,
        "approvals_chart": approvals_chart,
        "fallbacks": report.get("fallbacks") or {},
    }
