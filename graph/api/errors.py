"""Errors as JSON ``{"error": "..."}`` with the CLI's meanings: 400 bad input, 401/403 auth,
404 unknown, 409 session busy (or state that forbids the call), 413 too large, 429 too many,
503 LLM or database unavailable."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from graph.api.auth import AuthError
from graph.approval import ApprovalDecisionError
from graph.session import ConflictError, SessionBusyError, SessionOwnerError, UnknownSessionError
from graph.sgr import LLMUnavailableError, StructuredOutputError
from graph.validation import InputError
from stores.errors import OfferError, StoreNotFoundError

log = logging.getLogger(__name__)


class TooManyRequests(Exception):
    """The session's rate limit is spent for this window."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many messages in this conversation; wait a moment and try again")
        self.retry_after_s = retry_after_s


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error response."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


STATUS: list[tuple[type[BaseException], int]] = [
    (SessionBusyError, 409),
    (ConflictError, 409),
    (SessionOwnerError, 403),
    (UnknownSessionError, 404),
    (InputError, 400),
    (ApprovalDecisionError, 400),
    (OfferError, 400),
    (LLMUnavailableError, 503),
    (StructuredOutputError, 503),
    (StoreNotFoundError, 503),
]


def status_of(e: BaseException) -> int | None:
    """The HTTP status of a known error, ``None`` for a bug."""
    for kind, status in STATUS:
        if isinstance(e, kind):
            return status
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into ``{"error": ...}``."""

    @app.exception_handler(AuthError)
    async def _auth(request: Request, e: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return error(e.status, str(e), headers)

    @app.exception_handler(TooManyRequests)
    async def _limited(request: Request, e: TooManyRequests) -> JSONResponse:
        return error(429, str(e), {"Retry-After": str(max(1, round(e.retry_after_s)))})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        message = str(e.detail) if e.detail else "request failed"
        if e.status_code == 413:
            message = "request body too large"
        return error(e.status_code, message, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = []
        for err in e.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error(400, "; ".join(parts) or "invalid request")

    for kind, status in STATUS:

        async def _known(request: Request, e: Exception, status: int = status) -> JSONResponse:
            return error(status, str(e))

        app.add_exception_handler(kind, _known)
