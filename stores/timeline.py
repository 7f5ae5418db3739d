"""The report's time axis: per UTC day, offers issued and accepted, money given, approvals.

A pure function of ledger rows (``Offer``), so it reads the same on every backend. "Issued"
follows the report: every row but ``approval_pending`` and ``rejected`` (those never reached
the customer).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from stores.models import Offer

NOT_ISSUED = frozenset({"approval_pending", "rejected"})


def daily_timeline(offers: Iterable[Offer], since: datetime | None = None) -> list[dict[str, Any]]:
    """One row per day with offers (oldest first): ``day``, ``issued``, ``accepted``,
    ``discount_given`` (amount of accepted codes), ``approved``, ``rejected``, ``pending``."""
    days: dict[str, dict[str, Any]] = {}
    for o in offers:
        if since is not None and o.created_at < since:
            continue
        day = o.created_at.date().isoformat()
        row = days.setdefault(
            day,
            {
                "day": day,
                "issued": 0,
                "accepted": 0,
                "discount_given": 0.0,
                "approved": 0,
                "rejected": 0,
                "pending": 0,
            },
        )
        if o.status not in NOT_ISSUED:
            row["issued"] += 1
        if o.status == "accepted":
            row["accepted"] += 1
            row["discount_given"] = round(row["discount_given"] + o.amount, 2)
        if o.status == "rejected":
            row["rejected"] += 1
        elif o.status == "approval_pending":
            row["pending"] += 1
        elif o.decided_by:
            row["approved"] += 1
    return [days[d] for d in sorted(days)]
