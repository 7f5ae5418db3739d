"""Structured-output client: ask vLLM to enforce a JSON schema, and never trust that it did.

* The dialect is chosen deliberately (``SGR_STRUCTURED_OUTPUT``); ``auto`` reads the server's
  ``/version`` once.
* The constraint travels in ``extra_body``, merged explicitly with the model's own
  ``extra_body`` (``invoke(extra_body=...)`` would replace it).
* Every reply is validated in code. One repair attempt, then a typed error.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    """The endpoint could not be reached or refused the request."""


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
    ) -> None:
        self.chat = chat
        self.dialect = dialect
        self.model_name = model_name or getattr(chat, "model_name", "") or type(chat).__name__
        self.max_tokens = max_tokens
        self.verify = verify
        self._verified: ProbeResult | None = None
        self._send_backend = True
        self._probe_lock = threading.Lock()

    def probe(self) -> ProbeResult:
        """One constrained call whose only valid answer no free model would write."""
        start = time.perf_counter()
        messages = [HumanMessage(content=PROBE_PROMPT)]
        reply = self._invoke(
            messages, ConstraintProbe.model_json_schema(), "ConstraintProbe", PROBE_MAX_TOKENS
        )
        raw = reply.content if isinstance(reply.content, str) else str(reply.content)
        try:
            ConstraintProbe.model_validate_json(_strip_fences(raw))
            enforced = True
        except ValidationError:
            enforced = False
        return ProbeResult(enforced, self.dialect, raw[:300], (time.perf_counter() - start) * 1e3)

    def ensure_enforced(self) -> None:
        """Probe once per client; ``ConstraintNotEnforcedError`` if the server ignores it."""
        with self._probe_lock:
            if self._verified is None:
                self._verified = self.probe()
                log.info(
                    "constraint probe (%s): enforced=%s", self.dialect, self._verified.enforced
                )
        if not self._verified.enforced:
            rec = SGRCall(
                node="probe",
                schema_name="ConstraintProbe",
                dialect=self.dialect,
                model=self.model_name,
                raw=[self._verified.raw],
            )
            raise ConstraintNotEnforcedError(
                f"constraint not enforced: the server ignored the {self.dialect} field "
                f"(probe reply {self._verified.raw[:80]!r})",
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
        try:
            return self.chat.invoke(list(messages), **kwargs)  # type: ignore[return-value]
        except openai.BadRequestError as e:
            if self.dialect == "guided_json" and self._send_backend and _is_backend_rejection(e):
                log.warning("server rejects guided_decoding_backend; retrying without it")
                self._send_backend = False
                kwargs["extra_body"] = self._extra_body(schema, name)
                return self.chat.invoke(list(messages), **kwargs)  # type: ignore[return-value]
            raise LLMUnavailableError(f"LLM refused the request: {e}") from e
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise LLMUnavailableError(f"LLM endpoint is unreachable: {e}") from e
        except openai.APIStatusError as e:
            raise LLMUnavailableError(f"LLM endpoint error {e.status_code}: {e}") from e

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
        schema = schema or model.model_json_schema()
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
                if _looks_unconstrained(raw, finish):
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
        if finish == "length":
            return "reply truncated at max_tokens (finish_reason=length)", None
        try:
            return "", model.model_validate_json(_strip_fences(raw))
        except ValidationError as e:
            return _short_errors(e), None


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
