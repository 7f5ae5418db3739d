"""``StructuredLLM``: a chat model plus the constraint dialect, one validated object per call.

* The constraint travels in ``extra_body``, merged explicitly with the model's own
  ``extra_body`` (``ainvoke(extra_body=...)`` would replace it).
* Every reply is validated in code against the very model whose schema was sent. One repair
  attempt, then ``StructuredOutputError``; prose where JSON was enforced is
  ``ConstraintNotEnforcedError`` at once.
* Calls go through the public ``ainvoke``: callbacks, tracing and Studio's message stream see
  every call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from graph.sgr.dialects import (
    PROBE_MAX_TOKENS,
    PROBE_PROMPT,
    ConstraintProbe,
    ProbeResult,
    ResolvedDialect,
    constraint_body,
    is_backend_rejection,
    json_schema_of,
    looks_unconstrained,
    strip_fences,
)
from graph.sgr.errors import (
    ConstraintNotEnforcedError,
    LLMUnavailableError,
    SGRCall,
    StructuredOutputError,
)
from graph.sgr.probe_cache import ProbeCache
from graph.sgr.retries import RetryPolicy, TransientError, classify

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]


class StructuredLLM:
    """A chat model plus the constraint dialect: ``await call(Model, messages)``."""

    def __init__(
        self,
        chat: BaseChatModel,
        dialect: ResolvedDialect,
        *,
        model_name: str = "",
        max_tokens: int = 400,
        verify: bool = False,
        retry: RetryPolicy | None = None,
        probe_retry_s: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        probe_cache: ProbeCache | None = None,
        probe_key: str = "",
        http_client: Any = None,
    ) -> None:
        self.chat = chat
        self.dialect = dialect
        self.model_name = model_name or getattr(chat, "model_name", "") or type(chat).__name__
        self.max_tokens = max_tokens
        self.verify = verify
        self.retry = retry or RetryPolicy()
        self.probe_retry_s = probe_retry_s
        self._sleep = sleep
        self._clock = clock
        self._verified: ProbeResult | None = None
        self._verified_at = 0.0
        self._probe_cache = probe_cache
        self._http_client = http_client  # closed by ``aclose`` (the caller made it)
        self._probe_key = probe_key or self.model_name
        self._send_backend = True
        # one probe at a time per event loop (the CLI and tests run several loops in turn)
        self._probe_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def aclose(self) -> None:
        """Close the HTTP client this LLM was built with (its connections), if any."""
        client, self._http_client = self._http_client, None
        if client is not None:
            await client.aclose()

    # -- the probe ---------------------------------------------------------------------

    async def probe(self) -> ProbeResult:
        """One constrained call whose only valid answer no free model would write."""
        start = time.perf_counter()
        messages = [HumanMessage(content=PROBE_PROMPT)]
        reply = await self._invoke(
            messages, json_schema_of(ConstraintProbe), "ConstraintProbe", PROBE_MAX_TOKENS
        )
        raw = _text(reply)
        if not raw.strip():
            rec = SGRCall("probe", "ConstraintProbe", self.dialect, self.model_name, raw=[raw])
            raise StructuredOutputError("the probe got an empty reply (content null)", call=rec)
        try:
            ConstraintProbe.model_validate_json(strip_fences(raw))
            enforced = True
        except ValidationError:
            enforced = False
        return ProbeResult(enforced, self.dialect, raw[:300], (time.perf_counter() - start) * 1e3)

    def _probe_due(self) -> bool:
        if self._verified is None:
            return True
        # A pass holds for the client's life; a failure is asked again after probe_retry_s,
        # so one bad reply cannot disable a long-running process (the HTTP service).
        return not self._verified.enforced and (
            self._clock() - self._verified_at >= self.probe_retry_s
        )

    def _remembered(self) -> ProbeResult | None:
        """A pass another process of this deployment probed recently (``ProbeCache``)."""
        if self._probe_cache is None:
            return None
        return self._probe_cache.get(self._probe_key)

    def _probe_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._probe_locks.get(loop)
        if lock is None:
            lock = self._probe_locks[loop] = asyncio.Lock()
        return lock

    async def ensure_enforced(self) -> None:
        """Probe once per client (a failed probe again after ``probe_retry_s``);
        ``ConstraintNotEnforcedError`` while the server ignores the constraint."""
        if self._probe_due():
            async with self._probe_lock():
                remembered = self._remembered() if self._verified is None else None
                if remembered is not None:
                    self._verified, self._verified_at = remembered, self._clock()
                elif self._probe_due():
                    self._verified = await self.probe()  # errors propagate, not cached
                    self._verified_at = self._clock()
                    if self._probe_cache is not None:
                        cache = self._probe_cache
                        await asyncio.to_thread(cache.put, self._probe_key, self._verified)
                    log.info(
                        "constraint probe (%s): enforced=%s", self.dialect, self._verified.enforced
                    )
        verified = self._verified
        assert verified is not None
        if not verified.enforced:
            rec = SGRCall(
                node="probe",
                schema_name="ConstraintProbe",
                dialect=self.dialect,
                model=self.model_name,
                raw=[verified.raw],
            )
            raise ConstraintNotEnforcedError(
                f"constraint not enforced: the server ignored the {self.dialect} field "
                f"(probe reply {verified.raw[:80]!r})",
                call=rec,
            )

    # -- one chat call -----------------------------------------------------------------

    def _extra_body(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        base = dict(getattr(self.chat, "extra_body", None) or {})
        base.update(constraint_body(self.dialect, schema, name, send_backend=self._send_backend))
        return base

    async def _invoke(
        self,
        messages: Sequence[BaseMessage],
        schema: dict[str, Any],
        name: str,
        max_tokens: int | None = None,
    ) -> AIMessage:
        """One chat call with bounded retries; every failure typed."""
        retry = 0
        while True:
            try:
                return await self._invoke_once(messages, schema, name, max_tokens)
            except TransientError as e:
                if retry >= self.retry.max_retries:
                    raise LLMUnavailableError(
                        f"{e} (gave up after {retry + 1} attempts)"
                    ) from e.cause
                wait = self.retry.delay(retry, e.retry_after)
                log.warning("%s; retry %d in %.2fs", e, retry + 1, wait)
                await self._sleep(wait)
                retry += 1

    async def _invoke_once(
        self,
        messages: Sequence[BaseMessage],
        schema: dict[str, Any],
        name: str,
        max_tokens: int | None,
    ) -> AIMessage:
        kwargs = {
            "extra_body": self._extra_body(schema, name),
            "max_tokens": max_tokens or self.max_tokens,
        }
        try:
            reply = await self.chat.ainvoke(list(messages), **kwargs)
        except openai.BadRequestError as e:
            if (
                self.dialect == "guided_json"
                and self._send_backend
                and is_backend_rejection(str(e))
            ):
                log.warning("server rejects guided_decoding_backend; retrying without it")
                self._send_backend = False
                return await self._invoke_once(messages, schema, name, max_tokens)
            raise classify(e) from e
        except Exception as e:
            typed = classify(e)
            if typed is e:
                raise
            raise typed from e
        if not isinstance(reply, AIMessage):
            raise LLMUnavailableError(f"unexpected reply type {type(reply).__name__}")
        return reply

    # -- one validated object ----------------------------------------------------------

    async def call(
        self,
        model: type[M],
        messages: Sequence[BaseMessage],
        *,
        node: str,
        max_tokens: int | None = None,
    ) -> tuple[M, SGRCall]:
        """Ask for ``model`` (its JSON schema is what the server enforces), validate against
        the same model, repair once."""
        if self.verify:
            await self.ensure_enforced()
        schema = json_schema_of(model)
        name = model.__name__
        rec = SGRCall(node=node, schema_name=name, dialect=self.dialect, model=self.model_name)
        convo = list(messages)
        start = time.perf_counter()
        try:
            for attempt in range(2):
                reply = await self._invoke(convo, schema, name, max_tokens)
                raw = _text(reply)
                finish = str(reply.response_metadata.get("finish_reason") or "")
                rec.raw.append(raw)
                rec.finish_reasons.append(finish)
                usage = reply.usage_metadata or {}
                rec.prompt_tokens += int(usage.get("input_tokens", 0))
                rec.completion_tokens += int(usage.get("output_tokens", 0))
                error, parsed = _validate(model, raw, finish)
                if parsed is not None:
                    rec.parsed = parsed.model_dump(mode="json")
                    return parsed, rec
                rec.errors.append(error)
                if raw.strip() and looks_unconstrained(raw, finish):
                    raise ConstraintNotEnforcedError(
                        f"constraint not enforced: {self.dialect} reply to {name} is not JSON "
                        f"(is the server ignoring the {self.dialect} field?)",
                        call=rec,
                    )
                if attempt == 0:
                    rec.repairs += 1
                    convo = [
                        *messages,
                        AIMessage(content=raw[:2000]),
                        HumanMessage(
                            content=f"That reply was invalid: {error[:500]}. "
                            f"Answer again with one complete, valid JSON object."
                        ),
                    ]
            raise StructuredOutputError(
                f"no valid {name} after one repair: {rec.errors[-1][:300]}", call=rec
            )
        finally:
            rec.latency_ms = (time.perf_counter() - start) * 1000


def _text(reply: AIMessage) -> str:
    return reply.content if isinstance(reply.content, str) else str(reply.content)


def _validate(model: type[M], raw: str, finish: str) -> tuple[str, M | None]:
    if not raw.strip():
        return "empty reply (content null or blank)", None
    if finish == "length":
        return "reply truncated at max_tokens (finish_reason=length)", None
    try:
        return "", model.model_validate_json(strip_fences(raw))
    except ValidationError as e:
        return _short_errors(e), None


def _short_errors(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}" for err in e.errors()
    )
