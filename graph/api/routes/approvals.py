"""Manager approvals: the pending proposals with what a manager decides on, and decisions."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from graph.api.deps import ManagerDep, NegotiatorDep
from graph.api.models import ApprovalOut, Customer, DecisionIn, ErrorOut, StandingOffer, TurnOut
from graph.policy import approval_reasons
from graph.services import Services
from graph.validation import check_session_id
from stores.models import CustomerFeatures

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

REASONING_FIELDS = (
    "churn_analysis",
    "financial_analysis",
    "margin_math",
    "negotiation_position",
)


def pending_approvals(services: Services) -> list[dict[str, Any]]:
    """Every unexpired proposal waiting for a manager, newest first, with the customer's
    features, the standing offer and the pricing node's reasoning from the audit trail."""
    ledger, s = services.ledger(), services.settings
    out = []
    for o in ledger.pending_offers():
        features = services.features().lookup(o.user_id)
        customer = (
            features.model_dump(mode="json", exclude={"updated_at"})
            if isinstance(features, CustomerFeatures)
            else {"user_id": o.user_id}
        )
        standing = ledger.standing_offer(o.user_id)
        records = services.audit_log().session(o.session_id)
        pricing = next(
            (
                r
                for r in reversed(records)
                if r.get("node") == "pricing" and r.get("turn") == o.turn
            ),
            {},
        )
        parsed = pricing.get("parsed") or {}
        out.append(
            {
                "session": o.session_id,
                "code": o.code,
                "user_id": o.user_id,
                "proposed_percent": o.discount_percent,
                "amount": o.amount,
                "cap_percent": o.cap_percent,
                "cart_value": o.cart_value,
                "created_at": o.created_at.isoformat(),
                "expires_at": o.expires_at.isoformat(),
                "churn_band": o.churn_band,
                "standing_offer": standing.model_dump(mode="json") if standing else None,
                "customer": customer,
                "reasons": approval_reasons(o.discount_percent, o.amount, s),
                "reasoning": {k: parsed[k] for k in REASONING_FIELDS if k in parsed},
            }
        )
    return out


@router.get(
    "",
    response_model=list[ApprovalOut],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
    summary="Pending approvals, newest first, with the customer context",
)
async def list_approvals(neg: NegotiatorDep, who: ManagerDep) -> list[ApprovalOut]:
    rows = await asyncio.to_thread(pending_approvals, neg.services)
    return [
        ApprovalOut(**{**r, "customer": Customer(**r["customer"]), "standing_offer": _standing(r)})
        for r in rows
    ]


def _standing(row: dict[str, Any]) -> StandingOffer | None:
    return StandingOffer(**row["standing_offer"]) if row["standing_offer"] else None


@router.post(
    "/{session_id}",
    response_model=TurnOut,
    responses={
        400: {"model": ErrorOut, "description": "a percent above the proposal"},
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        409: {"model": ErrorOut, "description": "decided already (or being decided) by another"},
    },
    summary="Approve (optionally a lower percent) or reject a pending proposal",
)
async def decide(
    session_id: str, body: DecisionIn, neg: NegotiatorDep, who: ManagerDep
) -> JSONResponse:
    """The session's turn resumes with the decision; the reply goes to the customer."""
    check_session_id(session_id)
    decision: dict[str, Any] = {"decision": body.decision, "approver": who.name}
    if body.percent is not None:
        decision["percent"] = body.percent
    result = await neg.resume(session_id, decision)
    return JSONResponse(result.as_json(), status_code=503 if result.status == "fallback" else 200)
