"""Bounded retries of one chat call, and the typing of every way a call can fail.

Transport errors, 408/409/429/5xx and timeouts are retried with backoff (``Retry-After``
honoured, capped), then ``LLMUnavailableError``; undecodable bodies (truncated JSON, HTML, no
``choices``) are ``LLMUnavailableError`` at once: a server that sends them will again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import openai

from graph.sgr.errors import LLMUnavailableError

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of one chat call on transient failures (429, 5xx, timeouts, resets).

    The wait before retry ``n`` (0-based) is the server's ``Retry-After`` if it sent one,
    else ``backoff_s * 2**n``; never more than ``max_wait_s``.
    """

    max_retries: int = 2
    backoff_s: float = 0.5
    max_wait_s: float = 10.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry``."""
        wait = retry_after if retry_after is not None else self.backoff_s * (2**retry)
        return max(0.0, min(wait, self.max_wait_s))


def retry_after_seconds(headers: httpx.Headers | None) -> float | None:
    """``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``, in seconds; else ``None``."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint, if it sent one."""

    def __init__(self, message: str, cause: BaseException, retry_after: float | None = None):
        super().__init__(message)
        self.cause = cause
        self.retry_after = retry_after


def classify(e: BaseException) -> BaseException:
    """The typed form of an exception raised by one chat call.

    ``TransientError`` (retry it), ``LLMUnavailableError`` (give up), or ``e`` itself when it
    is none of the chat client's failures (a bug: let it propagate).
    """
    if isinstance(e, openai.BadRequestError):
        return LLMUnavailableError(f"LLM refused the request: {e}")
    if isinstance(e, openai.APIStatusError):
        if e.status_code in RETRY_STATUS:
            after = retry_after_seconds(e.response.headers)
            return TransientError(f"LLM endpoint error {e.status_code}", e, after)
        return LLMUnavailableError(f"LLM endpoint error {e.status_code}: {e}")
    if isinstance(e, openai.APITimeoutError):
        return TransientError("LLM endpoint timed out", e)
    if isinstance(e, openai.APIConnectionError | httpx.TransportError):
        return TransientError(f"LLM endpoint is unreachable: {e}", e)
    if isinstance(e, openai.OpenAIError | httpx.HTTPError):
        return LLMUnavailableError(f"LLM endpoint error: {e}")
    if isinstance(e, ValueError | TypeError | KeyError | IndexError | AttributeError):
        # A 200 whose body is not a chat completion: truncated JSON, an HTML page, no
        # ``choices``. Raised while decoding the reply, so typed here, never a traceback.
        return LLMUnavailableError(
            f"undecodable reply from the LLM endpoint ({type(e).__name__}: {str(e)[:160]})"
        )
    return e
