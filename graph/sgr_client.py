"""Structured-output client: ask vLLM to enforce a JSON schema, and never trust that it did.

* The dialect is chosen deliberately (``SGR_STRUCTURED_OUTPUT``); ``auto`` reads the server's
  ``/version`` once.
* The constraint travels in ``extra_body``, merged explicitly with the model's own
  ``extra_body`` (``invoke(extra_body=...)`` would replace it).
* Every reply is validated in code. One repair attempt, then a typed error.
* Every failure is typed: transport errors, 429/5xx and timeouts are retried a bounded number
  of times with backoff (``Retry-After`` honoured, capped), then ``LLMUnavailableError``;
  undecodable bodies (truncated JSON, HTML, no ``choices``) are ``LLMUnavailableError``; an
  empty or null ``content`` is an invalid reply (repair, then ``StructuredOutputError``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

ResolvedDialect = Literal["structured_outputs", "guided_json", "response_format"]
M = TypeVar("M", bound=BaseModel)

MIN_STRUCTURED_OUTPUTS_VERSION = (0, 12)


class LLMUnavailableError(RuntimeError):
    """The endpoint could not be reached, refused the request or sent an undecodable reply."""


class StructuredOutputError(RuntimeError):
    """No schema-valid reply after the repair attempt."""

    def __init__(self, message: str, *, call: SGRCall) -> None:
        super().__init__(message)
        self.call = call


class ConstraintNotEnforcedError(StructuredOutputError):
    """The server answered with text that no schema-constrained decoder could produce."""


@dataclass
class SGRCall:
    """Audit record of one SGR call (attempts included)."""

    node: str
    schema_name: str
    dialect: str
    model: str
    parsed: dict[str, Any] | None = None
    raw: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repairs: int = 0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the state / checkpoint."""
        return {
            "node": self.node,
            "schema": self.schema_name,
            "dialect": self.dialect,
            "model": self.model,
            "parsed": self.parsed,
            "raw": self.raw,
            "errors": self.errors,
            "repairs": self.repairs,
            "latency_ms": round(self.latency_ms, 1),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reasons": self.finish_reasons,
        }


@lru_cache(maxsize=512)
def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """``model.model_json_schema()``, generated once per model class (it costs ~3 ms).

    Callers must not mutate the returned dict: it is shared.
    """
    return model.model_json_schema()


def parse_version(text: str) -> tuple[int, ...]:
    """``"0.32.0"`` or ``"0.10.1rc1+cpu"`` -> ``(0, 32, 0)`` / ``(0, 10, 1)``."""
    parts = re.findall(r"\d+", text.split("+")[0])[:3]
    return tuple(int(p) for p in parts)


def detect_dialect(server_root: str, *, timeout: float = 5.0) -> ResolvedDialect:
    """Pick the constraint dialect from ``GET <root>/version``.

    vLLM >= 0.12 -> ``structured_outputs``; older vLLM -> ``guided_json``; no usable
    ``/version`` (not vLLM) -> ``response_format``. Unreachable -> ``LLMUnavailableError``.
    """
    try:
        r = httpx.get(f"{server_root.rstrip('/')}/version", timeout=timeout)
    except httpx.HTTPError as e:
        raise LLMUnavailableError(f"LLM endpoint {server_root} is unreachable: {e}") from e
    try:
        version = parse_version(str(r.json()["version"])) if r.status_code == 200 else ()
    except (ValueError, KeyError, TypeError):
        version = ()
    if not version:
        log.info("no vLLM /version at %s: using response_format", server_root)
        return "response_format"
    dialect: ResolvedDialect = (
        "structured_outputs" if version[:2] >= MIN_STRUCTURED_OUTPUTS_VERSION else "guided_json"
    )
    log.info("vLLM %s at %s: using %s", ".".join(map(str, version)), server_root, dialect)
    return dialect


def constraint_body(
    dialect: ResolvedDialect, schema: dict[str, Any], name: str, *, send_backend: bool = True
) -> dict[str, Any]:
    """The request-body fields that ask the server to enforce ``schema``."""
    if dialect == "structured_outputs":  # no free whitespace between fields: see graph/budget
        return {"structured_outputs": {"json": schema, "disable_any_whitespace": True}}
    if dialect == "guided_json":
        body: dict[str, Any] = {"guided_json": schema}
        if send_backend:
            body["guided_decoding_backend"] = "xgrammar"
        return body
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    }


def _is_backend_rejection(err: openai.BadRequestError) -> bool:
    text = str(err).lower()
    return "backend" in text and ("guided" in text or "structured" in text or "match" in text)


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    return text


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


class _Transient(Exception):
    """A failure worth retrying (internal to ``StructuredLLM``)."""

    def __init__(self, message: str, cause: BaseException, retry_after: float | None = None):
        super().__init__(message)
        self.cause = cause
        self.retry_after = retry_after


PROBE_TOKEN = "xq-zebra-7"
PROBE_PROMPT = "Say hello to the customer in one short sentence."
PROBE_MAX_TOKENS = 64  # the probe's own budget: a small SGR max_tokens must not fail it


class ConstraintProbe(BaseModel):
    """The probe schema: an enum value a model would never write unprompted."""

    answer: Literal["xq-zebra-7"]


@dataclass(frozen=True)
class ProbeResult:
    """Whether the server enforced the probe schema."""

    enforced: bool
    dialect: str
    raw: str
    latency_ms: float


class StructuredLLM:
    """A chat model plus the constraint dialect: one validated object per call."""

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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
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
        self._send_backend = True
        self._probe_lock = threading.Lock()

    def probe(self) -> ProbeResult:
        """One constrained call whose only valid answer no free model would write."""
        start = time.perf_counter()
        messages = [HumanMessage(content=PROBE_PROMPT)]
        reply = self._invoke(
            messages, json_schema_of(ConstraintProbe), "ConstraintProbe", PROBE_MAX_TOKENS
        )
        raw = reply.content if isinstance(reply.content, str) else str(reply.content)
        if not raw.strip():
            rec = SGRCall("probe", "ConstraintProbe", self.dialect, self.model_name, raw=[raw])
            raise StructuredOutputError("the probe got an empty reply (content null)", call=rec)
        try:
            ConstraintProbe.model_validate_json(_strip_fences(raw))
            enforced = True
        except ValidationError:
            enforced = False
        return ProbeResult(enforced, self.dialect, raw[:300], (time.perf_counter() - start) * 1e3)

    def _probe_due(self) -> bool:
        if self._verified is None:
            return True
        # A pass holds for the client's life; a failure is asked again after probe_retry_s,
        # so one bad reply cannot disable a long-running process (the Studio server).
        return not self._verified.enforced and (
            self._clock() - self._verified_at >= self.probe_retry_s
        )

    def ensure_enforced(self) -> None:
        """Probe once per client (a failed probe again after ``probe_retry_s``);
        ``ConstraintNotEnforcedError`` while the server ignores the constraint."""
        with self._probe_lock:
            if self._probe_due():
                self._verified = self.probe()  # errors propagate and are not cached
                self._verified_at = self._clock()
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

    def _extra_body(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        base = dict(getattr(self.chat, "extra_body", None) or {})
        base.update(constraint_body(self.dialect, schema, name, send_backend=self._send_backend))
        return base

    def _invoke(
        self,
        messages: Sequence[BaseMessage],
        schema: dict,
        name: str,
        max_tokens: int | None = None,
    ) -> AIMessage:
        kwargs = {
            "extra_body": self._extra_body(schema, name),
            "max_tokens": max_tokens or self.max_tokens,
        }
        retry = 0
        while True:
            try:
                return self._invoke_once(messages, kwargs, schema, name)
            except _Transient as e:
                if retry >= self.retry.max_retries:
                    raise LLMUnavailableError(
                        f"{e} (gave up after {retry + 1} attempts)"
                    ) from e.cause
                wait = self.retry.delay(retry, e.retry_after)
                log.warning("%s; retry %d in %.2fs", e, retry + 1, wait)
                self._sleep(wait)
                retry += 1

    def _invoke_once(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], schema: dict, name: str
    ) -> AIMessage:
        """One chat call; every failure typed (``_Transient`` is retried by ``_invoke``)."""
        try:
            if _quiet(self.chat):
                reply = _generate_directly(self.chat, list(messages), kwargs)
            else:
                reply = self.chat.invoke(list(messages), **kwargs)
        except openai.BadRequestError as e:
            if self.dialect == "guided_json" and self._send_backend and _is_backend_rejection(e):
                log.warning("server rejects guided_decoding_backend; retrying without it")
                self._send_backend = False
                kwargs = {**kwargs, "extra_body": self._extra_body(schema, name)}
                return self._invoke_once(messages, kwargs, schema, name)
            raise LLMUnavailableError(f"LLM refused the request: {e}") from e
        except openai.APIStatusError as e:
            if e.status_code in RETRY_STATUS:
                after = retry_after_seconds(e.response.headers)
                raise _Transient(f"LLM endpoint error {e.status_code}", e, after) from e
            raise LLMUnavailableError(f"LLM endpoint error {e.status_code}: {e}") from e
        except openai.APITimeoutError as e:
            raise _Transient("LLM endpoint timed out", e) from e
        except (openai.APIConnectionError, httpx.TransportError) as e:
            raise _Transient(f"LLM endpoint is unreachable: {e}", e) from e
        except (openai.OpenAIError, httpx.HTTPError) as e:
            raise LLMUnavailableError(f"LLM endpoint error: {e}") from e
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            # A 200 whose body is not a chat completion: truncated JSON, an HTML page, no
            # ``choices``. Raised while decoding the reply, so typed here, never a traceback.
            raise LLMUnavailableError(
                f"undecodable reply from the LLM endpoint ({type(e).__name__}: {str(e)[:160]})"
            ) from e
        if not isinstance(reply, AIMessage):
            raise LLMUnavailableError(f"unexpected reply type {type(reply).__name__}")
        return reply

    def call(
        self,
        model: type[M],
        messages: Sequence[BaseMessage],
        *,
        node: str,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> tuple[M, SGRCall]:
        """Ask for ``model`` (its JSON schema, or ``schema``), validate, repair once."""
        if self.verify:
            self.ensure_enforced()
        schema = schema or json_schema_of(model)
        name = model.__name__
        rec = SGRCall(node=node, schema_name=name, dialect=self.dialect, model=self.model_name)
        convo = list(messages)
        start = time.perf_counter()
        try:
            for attempt in range(2):
                reply = self._invoke(convo, schema, name, max_tokens)
                raw = reply.content if isinstance(reply.content, str) else str(reply.content)
                finish = str(reply.response_metadata.get("finish_reason") or "")
                rec.raw.append(raw)
                rec.finish_reasons.append(finish)
                usage = reply.usage_metadata or {}
                rec.prompt_tokens += int(usage.get("input_tokens", 0))
                rec.completion_tokens += int(usage.get("output_tokens", 0))
                error, parsed = self._validate(model, raw, finish)
                if parsed is not None:
                    rec.parsed = parsed.model_dump(mode="json")
                    return parsed, rec
                rec.errors.append(error)
                if raw.strip() and _looks_unconstrained(raw, finish):
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

    @staticmethod
    def _validate(model: type[M], raw: str, finish: str) -> tuple[str, M | None]:
        if not raw.strip():
            return "empty reply (content null or blank)", None
        if finish == "length":
            return "reply truncated at max_tokens (finish_reason=length)", None
        try:
            return "", model.model_validate_json(_strip_fences(raw))
        except ValidationError as e:
            return _short_errors(e), None


def _quiet(chat: BaseChatModel) -> bool:
    """Whether nothing observes ``chat.invoke`` beyond its reply: no callback handler in the
    calling run (LangSmith tracer, Studio's message stream), no tracing, cache, rate limiter,
    streaming or v1 output. Then :func:`_generate_directly` gives the same reply without
    LangChain's per-call callback set-up (measured: ~1 ms of CPU per call)."""
    from langchain_core.globals import get_llm_cache
    from langchain_core.runnables.config import var_child_runnable_config
    from langchain_core.tracers.context import _tracing_v2_is_enabled

    if chat.callbacks or chat.verbose or chat.rate_limiter is not None:
        return False
    if chat.cache is True or (chat.cache is None and get_llm_cache() is not None):
        return False
    if chat.cache not in (None, False):  # a BaseCache instance
        return False
    if getattr(chat, "streaming", False) or getattr(chat, "output_version", None) == "v1":
        return False
    if _tracing_v2_is_enabled():
        return False
    parent = (var_child_runnable_config.get() or {}).get("callbacks")
    if parent is None:
        return True
    handlers = parent if isinstance(parent, list) else getattr(parent, "handlers", [None])
    return not handlers


def _generate_directly(
    chat: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]
) -> AIMessage | BaseMessage:
    """``chat._generate`` and the metadata merge ``BaseChatModel.invoke`` does after it."""
    result = chat._generate(messages, stop=None, **kwargs)
    gen = result.generations[0]
    msg = gen.message
    msg.response_metadata = {**(gen.generation_info or {}), **msg.response_metadata}
    if len(result.generations) == 1 and result.llm_output is not None:
        msg.response_metadata = {**result.llm_output, **msg.response_metadata}
    return msg


def _looks_unconstrained(raw: str, finish: str) -> bool:
    """A JSON-schema decoder always starts an object: prose means nothing was enforced."""
    return finish != "length" and not raw.lstrip().startswith(("{", "```"))


def _short_errors(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}" for err in e.errors()
    )


def schema_tokens_estimate(schema: dict[str, Any]) -> int:
    """Rough token count of a schema pasted into a prompt (≈ 4 characters a token)."""
    return len(json.dumps(schema)) // 4
