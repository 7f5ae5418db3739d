"""Offer node: issue the priced proposal through the ledger, pausing for approval if needed.

This node re-runs from its first line when an interrupt is resumed. Everything before
``interrupt()`` is idempotent (the ledger returns the stored row of this session and turn),
and every effect after it recognises a decision already recorded: if the process died after
the ledger stored the manager's decision but before the checkpoint, re-running delivers the
recorded outcome (the approved code, or the fallback offer) instead of deciding again.

Resume values are validated here, inside the graph: an invalid one re-asks by interrupting
again with an ``error`` in the payload, so no caller (CLI, HTTP, Studio, SDK) can wedge a
session. The ledger has the last word on money: when it refuses an offer, the reply says what
the customer actually holds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, interrupt

from graph.approval import ApprovalDecision, ApprovalDecisionError, parse_decision
from graph.policy import floor_percent, max_unapproved_percent
from graph.services import Services
from graph.state import ApprovalRequest, NegotiationState, OfferData
from nodes.messages import end_turn
from nodes.replies import Replies, percent_text
from stores.errors import OfferError, OfferRefusedError
from stores.ledger import CHURN_BANDS, INVENTORY_STATUSES, OfferLedger
from stores.models import Offer

log = logging.getLogger(__name__)

Route = Literal["__end__"]
_REFUSAL_STATUS = {"accepted_stands": "accepted", "session_conflict": "invalid"}


def priced_under(state: NegotiationState) -> dict[str, Any]:
    """The churn band and stock status the proposal was priced under (for the ledger row)."""
    cap, features = state.get("cap") or {}, state.get("features") or {}
    values = {"churn_band": cap.get("churn_band"), "inventory": features.get("inventory")}
    known = {"churn_band": CHURN_BANDS, "inventory": INVENTORY_STATUSES}
    for key, value in values.items():
        if value is not None and value not in known[key]:  # report data must not block an offer
            log.warning("not recording %s %r on the offer: not one of %s", key, value, known[key])
            values[key] = None
    return values


def _data(offer: Offer | None) -> OfferData | None:
    return None if offer is None else offer.model_dump(mode="json")  # type: ignore[return-value]


def ask_manager(request: ApprovalRequest, proposed: float) -> ApprovalDecision:
    """Interrupt until a valid decision arrives; an invalid one is answered by asking again.

    On resume LangGraph replays earlier resume values in order, so a bad value only moves
    the question on to the next interrupt; it is never raised and never wedges the session.
    """
    error: str | None = None
    while True:
        payload: dict[str, Any] = dict(request) if error is None else {**request, "error": error}
        value = interrupt(payload)
        try:
            return parse_decision(value, proposed)
        except ApprovalDecisionError as e:
            log.warning("invalid approval decision for %s: %s", request["code"], e)
            error = str(e)


def make_offer(services: Services):
    """The offer node bound to ``services``."""
    replies = Replies.of(services.settings)  # read the templates once, off the event loop
    s = services.settings

    def refused(e: OfferRefusedError, status: str | None = None) -> Command[Route]:
        log.info("ledger issued no offer: %s (%s)", e.reason, e)
        standing = _data(e.standing)
        update: dict[str, Any] = {"status": status or _REFUSAL_STATUS.get(e.reason)}
        if e.reason == "session_conflict":
            update["error"] = str(e)
        else:
            update["standing_offer"] = standing
        return end_turn(replies.refusal(e.reason, standing), **update)

    def closed(ledger: OfferLedger, record: Offer, user: str) -> Command[Route]:
        """The proposal left the ledger's open statuses: say so, and what still stands."""
        standing = _data(ledger.standing_offer(user))
        text = replies.say("proposal_closed", status=record.status)
        if standing:
            text += " " + replies.say(
                "code_stands",
                percent=percent_text(standing["discount_percent"]),
                code=standing["code"],
            )
        return end_turn(text, status=record.status, standing_offer=standing)

    async def offer(state: NegotiationState, config: RunnableConfig) -> Command[Route]:
        p = dict(state["proposal"] or {})
        ledger = services.ledger()  # opened by retrieval's lookup, cached by the services
        session = str(config["configurable"]["thread_id"])
        user, turn = state["user_id"], state.get("turn", 0)
        needs_approval = bool(p["approval_reasons"])
        write: dict[str, Any] = {
            "session_id": session,
            "turn": turn,
            "user_id": user,
            "cap_percent": p["cap_percent"],
            "cart_value": p["cart_value"],
            "ttl_hours": s.offer_ttl_hours,
            **priced_under(state),
        }
        status = "approval_pending" if needs_approval else "proposed"

        def propose() -> Offer:
            return services.ledger().propose(
                **write, discount_percent=p["discount_percent"], status=status
            )

        try:
            record = await asyncio.to_thread(propose)
        except OfferRefusedError as e:
            return refused(e)

        if record.status == "approval_pending":
            no_approval = max(
                max_unapproved_percent(p["cart_value"], p["cap_percent"], s),
                floor_percent(state.get("standing_offer")),
            )
            request: ApprovalRequest = {
                "type": "approval",
                "session": session,
                "user_id": user,
                "code": record.code,
                "cart_value": p["cart_value"],
                "cap_percent": p["cap_percent"],
                "proposed_percent": p["discount_percent"],
                "amount": p["amount"],
                "reasons": p["approval_reasons"],
                "reasoning": p["reasoning"],
                "no_approval_percent": no_approval,
            }
            choice = ask_manager(request, record.discount_percent)
            # Effects of the decision only from here on (the lines above re-run on resume).
            try:
                await asyncio.to_thread(
                    ledger.decide,
                    record.code,
                    approved=choice.approved,
                    decided_by=choice.approver,
                    discount_percent=choice.percent if choice.approved else None,
                )
            except OfferError as e:  # decided already (a re-run), or expired meanwhile
                log.info("decision on %s not recorded again: %s", record.code, e)
            record = await asyncio.to_thread(ledger.refresh, record.code) or record

        if needs_approval and record.decided_by:
            verdict = "rejected" if record.status == "rejected" else "approved"
            p["approval"] = f"{verdict} by {record.decided_by}"
        if record.status == "rejected":
            # the recorded decision wins over the resume value; the fallback is keyed too
            fallback = max_unapproved_percent(p["cart_value"], p["cap_percent"], s)
            if fallback <= 0:
                standing = _data(await asyncio.to_thread(ledger.standing_offer, user))
                return end_turn(
                    replies.hold(standing), status="rejected", standing_offer=standing, proposal=p
                )
            try:
                record = await asyncio.to_thread(
                    ledger.propose,
                    **write,
                    slot="fallback",
                    discount_percent=fallback,
                    status="proposed",
                )
            except OfferRefusedError as e:
                return refused(e, status="rejected")
        if record.status not in {"proposed", "accepted"}:
            return await asyncio.to_thread(closed, ledger, record, user)
        data = _data(record)
        assert data is not None
        # the model's words may name the percent it priced; keep them only if that still holds
        words = p["message"] if record.discount_percent == p["discount_percent"] else ""
        terms = replies.offer_terms(data)
        return end_turn(
            f"{words}\n\n{terms}" if words else terms,
            offers=[data],
            standing_offer=data,
            status=record.status,
            proposal={**p, "discount_percent": record.discount_percent, "code": record.code},
        )

    return offer
