"""Negotiation sessions: a turn (JSON or server-sent events), the history, the page state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from graph.api.auth import Manager, Shopper
from graph.api.deps import NegotiatorDep, SettingsDep, ShopperDep, manager, manager_call, shopper
from graph.api.errors import TooManyRequests
from graph.api.models import ErrorOut, HistoryTurn, SessionState, StandingOffer, TurnIn, TurnOut
from graph.api.sse import detached, frame
from graph.session import (
    Accepted,
    Negotiator,
    TurnResult,
    UnknownSessionError,
    check_owner,
)
from graph.validation import check_session_id

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what}
    for code, what in {
        400: "bad input (empty, too long, malformed id, unknown customer)",
        401: "missing, forged or expired token",
        403: "the session belongs to another customer",
        409: "another turn of this session is running, or a manager must decide first",
        429: "too many messages in this session",
    }.items()
}


async def _owned(neg: Negotiator, session_id: str, user_id: str) -> str | None:
    """The session's owner; ``SessionOwnerError`` if it is someone else."""
    check_session_id(session_id)
    owner = await neg.owner(session_id)
    check_owner(owner, session_id, user_id)
    return owner


async def reader(
    request: Request, neg: NegotiatorDep, s: SettingsDep, session_id: str
) -> Shopper | Manager:
    """The session's owner (shopper token) or a manager may read a session."""
    if manager_call(request, s):
        return await manager(request, s)
    who = await shopper(request, s)
    await _owned(neg, session_id, who.user_id)
    return who


@router.post(
    "/{session_id}/turns",
    response_model=TurnOut,
    responses={
        **ERRORS,
        503: {"model": TurnOut, "description": "the LLM failed: the fallback reply"},
        200: {"content": {"text/event-stream": {}}, "description": "the turn (JSON or SSE)"},
    },
    summary="Send the customer's message; the reply (JSON, or SSE with Accept)",
)
async def post_turn(
    session_id: str,
    body: TurnIn,
    request: Request,
    neg: NegotiatorDep,
    who: ShopperDep,
    s: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> Any:
    """One turn. With ``Accept: text/event-stream`` the same turn as server-sent events:
    ``accepted``, one ``node`` per node as it finishes, then ``turn`` (the final object).
    Another customer's session is refused by the runner's checks, under the session's lease
    (403), before anything is written.

    ``Idempotency-Key`` (optional, 1-128 of ``A-Za-z0-9_.:-``, e.g. a UUID per message): the
    same message sent again with its key is answered with its turn as recorded (JSON: with
    the header ``Idempotent-Replayed: true``) and runs nothing; the key with another
    message is 400."""
    check_session_id(session_id)
    limits = neg.services.rate_limits()
    if not await _within_limit(limits, session_id, s.rate_window_s, s.session_rate_limit):
        raise TooManyRequests(s.rate_window_s)
    events = neg.stream_turn(session_id, who.user_id, body.message, idempotency_key)
    try:
        first = await anext(events)  # the checks and the lease: errors are plain HTTP errors
    except BaseException:
        await events.aclose()
        raise
    assert isinstance(first, Accepted)
    if "text/event-stream" in (request.headers.get("accept") or ""):

        async def stream() -> Any:
            yield frame(first)
            async for chunk in detached(events):
                yield chunk

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result: TurnResult | None = None
    async for item in events:
        if isinstance(item, TurnResult):
            result = item
    assert result is not None
    return JSONResponse(
        result.as_json(),
        status_code=503 if result.status == "fallback" else 200,
        headers={"Idempotent-Replayed": "true"} if result.replayed else None,
    )


async def _within_limit(limits: Any, session_id: str, window_s: float, limit: int) -> bool:
    import asyncio

    return await asyncio.to_thread(limits.hit, f"turns:{session_id}", window_s, limit)


@router.get(
    "/{session_id}",
    response_model=list[HistoryTurn],
    responses={404: {"model": ErrorOut}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
    summary="The session's turns (what `discount-manager history --json` prints)",
)
async def get_session(
    session_id: str, neg: NegotiatorDep, who: Annotated[Shopper | Manager, Depends(reader)]
) -> list[dict[str, Any]]:
    turns = await neg.history(session_id)
    if not turns:
        raise UnknownSessionError(f"no session {session_id}")
    return turns


@router.get(
    "/{session_id}/state",
    response_model=SessionState,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
    summary="Turns, the offer card and whether a manager is deciding (the shopper's page)",
)
async def get_state(
    session_id: str, neg: NegotiatorDep, who: Annotated[Shopper | Manager, Depends(reader)]
) -> SessionState:
    values = await neg.state(session_id)
    pending = await neg.pending_approval(session_id)
    standing = values.get("standing_offer")
    return SessionState(
        session=session_id,
        user_id=values.get("user_id"),
        turns=[HistoryTurn(**t) for t in await neg.history(session_id)],
        approval_pending=pending is not None,
        offer=StandingOffer(**standing) if standing else None,
    )
