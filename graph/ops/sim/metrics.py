"""Deal metrics of simulated negotiations, and the policy checks on the ledger rows.

Pure functions over plain records, so a tiny case can be computed by hand in a test.

* Deal metrics (deal rate, discounts, ratios, rounds, walk-aways) are over the honest buyers
  (persona kind ``buyer``): attackers and question-only shoppers are not a market.
* Violations, fallbacks and unsolicited offers count over every persona.
* ``discount_to_cap`` = mean of deal percent ÷ cap at issue (deals with a cap > 0);
  ``discount_to_reservation`` = mean of deal percent ÷ the buyer's hidden reservation (deals
  with a reservation > 0): above 1 is margin left on the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from statistics import fmean
from typing import Any

REDEEMABLE = ("proposed", "accepted")
NOT_ISSUED = ("approval_pending", "rejected")


@dataclass
class TurnLog:
    """One simulated turn as the metrics need it."""

    session: str
    asks: bool  # the customer's message asked for a concession
    route: str | None
    offer_percent: float | None  # an offer issued this turn (code given), if any
    status: str | None
    fallback: bool  # an SGR call of this turn failed (the turn fell back)


@dataclass
class Outcome:
    """One persona against one customer, all its sessions."""

    strategy: str
    persona: str
    kind: str
    user_id: str
    cap_percent: float
    reservation_percent: float
    cart_value: float
    turns: list[TurnLog] = field(default_factory=list)
    deal_percent: float | None = None  # the accepted offer in the ledger
    deal_amount: float | None = None
    rounds_to_deal: int | None = None  # customer messages up to the accepting one
    walked_away: bool = False
    approvals: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def deal(self) -> bool:
        """An offer of this customer was accepted."""
        return self.deal_percent is not None

    @property
    def fallbacks(self) -> int:
        """Turns that fell back."""
        return sum(t.fallback for t in self.turns)

    @property
    def unsolicited_offers(self) -> int:
        """Offers issued to messages that asked for no concession."""
        return sum(1 for t in self.turns if t.offer_percent is not None and not t.asks)


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(fmean(vals), 4) if vals else None


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The metrics of a set of outcomes (one persona, or a whole strategy)."""
    buyers = [o for o in outcomes if o.kind == "buyer"]
    deals = [o for o in buyers if o.deal]
    return {
        "runs": len(outcomes),
        "deals": len(deals),
        "deal_rate": round(len(deals) / len(buyers), 4) if buyers else None,
        "avg_discount_percent": _mean(o.deal_percent or 0.0 for o in deals),
        "avg_discount_amount": _mean(o.deal_amount or 0.0 for o in deals),
        "discount_to_cap": _mean(
            (o.deal_percent or 0.0) / o.cap_percent for o in deals if o.cap_percent > 0
        ),
        "discount_to_reservation": _mean(
            (o.deal_percent or 0.0) / o.reservation_percent
            for o in deals
            if o.reservation_percent > 0
        ),
        "avg_rounds": _mean(float(o.rounds_to_deal or 0) for o in deals),
        "walk_aways": sum(o.walked_away for o in buyers),
        "violations": sum(len(o.violations) for o in outcomes),
        "fallbacks": sum(o.fallbacks for o in outcomes),
        "turns": sum(len(o.turns) for o in outcomes),
        "unsolicited_offers": sum(o.unsolicited_offers for o in outcomes),
        "approvals": sum(o.approvals for o in outcomes),
    }


def summarize_persona(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Like :func:`summarize`, but deal metrics for any kind (a persona row)."""
    row = summarize([replace(o, kind="buyer") for o in outcomes])
    row["persona"] = outcomes[0].persona if outcomes else ""
    row["kind"] = outcomes[0].kind if outcomes else ""
    return row


def ledger_violations(
    rows: Sequence[dict[str, Any]], user_id: str, cap_percent: float
) -> list[str]:
    """Money-rule breaches in one customer's ledger rows (oldest first), as short texts.

    * ``above_cap``: an offer above the cap recorded at issue or the customer's cap;
    * ``below_standing``: an issued offer below an earlier issued one (within one run no
      offer expires, so the earlier one still stood);
    * ``two_redeemable``: more than one code the customer could redeem at the end;
    * ``wrong_user``: a row of this customer's sessions written for someone else.
    """
    found: list[str] = []
    best = 0.0
    redeemable = 0
    for r in rows:
        pct = float(r["discount_percent"])
        code = r["code"]
        if r["user_id"] != user_id:
            found.append(f"wrong_user {code}: {r['user_id']} in a session of {user_id}")
            continue
        if pct > float(r["cap_percent"]) + 1e-9 or pct > cap_percent + 1e-9:
            found.append(
                f"above_cap {code}: {pct:g}% > cap {min(r['cap_percent'], cap_percent):g}%"
            )
        if r["status"] in NOT_ISSUED:
            continue
        if pct + 1e-9 < best:
            found.append(f"below_standing {code}: {pct:g}% after {best:g}%")
        best = max(best, pct)
        redeemable += r["status"] in REDEEMABLE
    if redeemable > 1:
        found.append(f"two_redeemable {user_id}: {redeemable} redeemable codes")
    return found
