"""The analyst report: what was given away, to whom, and how decisions went over time."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from graph.api.deps import ManagerDep, NegotiatorDep
from graph.api.models import ErrorOut
from graph.validation import parse_since

router = APIRouter(prefix="/v1", tags=["report"])

SINCE = Query(default=None, description="ISO date or time (UTC without an offset)")


@router.get(
    "/report",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
    summary="The analyst report (what `discount-manager report --json` prints)",
)
async def get_report(
    neg: NegotiatorDep, who: ManagerDep, since: str | None = SINCE
) -> dict[str, Any]:
    moment = parse_since(since)
    return await asyncio.to_thread(neg.services.report, moment)


def group_discount_to_cap(group: dict[str, Any]) -> float | None:
    """A group's discount ÷ cap: its average accepted percent over its average cap (groups
    carry ``accepted`` and those averages, not the totals' ``discount_to_cap``)."""
    d, c = group.get("avg_discount_percent"), group.get("avg_cap_percent")
    return round(d / c, 4) if d is not None and c else None


def report_csv(report: dict[str, Any]) -> str:
    """The report's groups and timeline as one CSV table (``section`` says which)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "section",
            "key",
            "issued",
            "accepted",
            "acceptance_rate",
            "avg_discount_percent",
            "discount_to_cap",
            "discount_given",
        ]
    )
    for section in ("by_churn_band", "by_inventory"):
        for key, g in sorted(report.get(section, {}).items()):
            w.writerow(
                [
                    section,
                    key,
                    g.get("offers_issued"),
                    g.get("offers_accepted", g.get("accepted")),
                    g.get("acceptance_rate"),
                    g.get("avg_discount_percent"),
                    g.get("discount_to_cap", group_discount_to_cap(g)),
                    g.get("discount_given_total"),
                ]
            )
    for row in report.get("timeline", []):
        w.writerow(
            ["day", row["day"], row["issued"], row["accepted"], "", "", "", row["discount_given"]]
        )
    a = report.get("approvals", {})
    for key in ("approved", "rejected", "pending", "expired_pending"):
        w.writerow(["approvals", key, a.get(key), "", "", "", "", ""])
    return out.getvalue()


@router.get(
    "/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, 401: {"model": ErrorOut}},
    summary="The report as CSV",
)
async def get_report_csv(
    neg: NegotiatorDep, who: ManagerDep, since: str | None = SINCE
) -> Response:
    report = await asyncio.to_thread(neg.services.report, parse_since(since))
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="discount-report.csv"'},
    )
