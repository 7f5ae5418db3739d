"""Liveness and readiness: the process is up; the database and the LLM endpoint answer."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from graph.api.deps import NegotiatorDep
from graph.api.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="The database and the LLM endpoint are reachable",
)
async def readyz(neg: NegotiatorDep) -> JSONResponse:
    s = neg.services.settings
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(neg.services.ledger().get, "SGR-00000-00000")
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"unavailable: {type(e).__name__}"
    try:
        async with httpx.AsyncClient(timeout=3.0) as client:
            r = await client.get(
                f"{s.llm_base_url.rstrip('/')}/models",
                headers={"Authorization": f"Bearer {s.llm_api_key}"},
            )
        checks["llm"] = "ok" if r.status_code == 200 else f"unavailable: HTTP {r.status_code}"
    except httpx.HTTPError as e:
        checks["llm"] = f"unavailable: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
