"""What several nodes share: reply templates, the customer's text, the floor, the SGR step.

Nodes never import one another; anything two of them need lives here.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage
from pydantic import BaseModel

from graph.services import Services
from graph.sgr_client import LLMUnavailableError, StructuredOutputError
from graph.state import AuditRecord, OfferData
from graph.validation import strip_controls

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

FALLBACK_REPLY = (
    "Sorry, I couldn't process that just now. Your current offer, if any, is unchanged; "
    "please try again in a moment."
)


def closed_reply(max_turns: int) -> str:
    """The reply of a session that reached ``SGR_MAX_TURNS``."""
    return (
        f"This conversation has reached its limit of {max_turns} messages. "
        "Please start a new conversation; any offer you hold is unchanged."
    )


def last_human_text(messages: Sequence[AnyMessage]) -> str:
    """The text of the newest customer message ('' if none)."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def floor_percent(standing: OfferData | None) -> float:
    """The least a new offer may give: the customer's standing offer (0 without one)."""
    return float(standing["discount_percent"]) if standing else 0.0


def hold_reply(standing: OfferData | None) -> str:
    """The reply when no better offer can be made: the standing one holds, or none at all."""
    if standing:
        pct = float(standing["discount_percent"])
        return f"I can't go beyond {pct:g}%; your code {standing['code']} still stands."
    return "I'm sorry, I can't offer a discount on this cart right now."


def accepted_reply(accepted: OfferData) -> str:
    """The reply when the customer already accepted a code that is still redeemable."""
    return (
        f"You've already accepted {float(accepted['discount_percent']):g}% off "
        f"(code {accepted['code']}); that offer stands and can't be combined with another."
    )


def pending_reply(standing: OfferData | None) -> str:
    """The reply while another proposal for the customer waits for a manager's approval."""
    text = "A proposal for you is waiting for a manager's approval."
    if standing:
        pct = float(standing["discount_percent"])
        text += f" Meanwhile your {pct:g}% code {standing['code']} stands."
    return text


SESSION_CONFLICT_REPLY = (
    "This conversation id already belongs to another account, so I can't make an offer "
    "here. Please start a new conversation."
)


def refusal_reply(reason: str, standing: OfferData | None) -> str:
    """The reply for a ledger refusal (``stores.errors.RefusalReason``): only true statements."""
    if reason == "accepted_stands" and standing:
        return accepted_reply(standing)
    if reason == "approval_pending":
        return pending_reply(standing)
    if reason == "session_conflict":
        return SESSION_CONFLICT_REPLY
    return hold_reply(standing)


# --- the guard on everything the model writes for a customer ---------------------------------

MESSAGE_TEMPLATE = "Thanks for shopping with us. Here is what I can do for you."
REPLY_TEMPLATE = (
    "Thanks for your message. I can help with questions about your order, or look at what I "
    "can do on the price of your cart if you ask."
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NUMBER_WORDS = (
    r"(?:zero|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|fou?rty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|thousand|million|half|quarter|double|twice|triple)"
)
_PERCENT = r"(?:%|\bper\s*cent\b|\bpercent(?:age)?s?\b|\bpct\b)"
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))

# Offer codes: ours (any case, any separator), hyphenated upper-case groups (SAVE-20),
# letter+digit tokens (SAVE20, x7k9q), and whatever follows "code"/"coupon"/"voucher".
_CODE = re.compile(
    r"\bSGR[\s_-]*[0-9A-Z]{5}[\s_-]*[0-9A-Z]{5}\b"
    r"|(?-i:\b[A-Z0-9]{2,}(?:-[A-Z0-9]{2,})+\b)"
    r"|\b(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{4,}\b"
    r"|\b(?:code|coupon|voucher|promo)s?\b\W{0,3}(?:is\W+)?(?-i:[A-Z0-9][A-Z0-9-]{3,})\b",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£¥₹]|\b(?:usd|eur|gbp|dollars?|euros?|pounds?|bucks)\b|(?<!per )(?<!per)\bcents?\b",
    re.IGNORECASE,
)
_INTERNAL = re.compile(
    r"\b(?:margins?|churn\w*|caps?|capped|ceiling|lifetime\s*value|ltv|clv|profit\w*|"
    r"mark-?ups?|cost\s*price|our\s*costs?|wholesale|thresholds?|probability|risk\s*score|"
    r"max(?:imum)?\s*discount|approv\w*|internal\w*)\b",
    re.IGNORECASE,
)
_PROMISE = re.compile(
    rf"\b(?:\d+(?:[.,]\d+)?|{_NUMBER_WORDS})\s*(?:{_PERCENT}|off\b)"
    r"|\bhalf\s*(?:off|price)\b|(?<!feel )\bfree\b(?!\s+to\b)|\bguarantee\w*|\brefund\w*"
    r"|\bcash\s*back\b|\brebates?\b|\bgift\s*cards?\b|\bstore\s*credit\b"
    r"|\boff\s+everything\b",
    re.IGNORECASE,
)
_ANY_PERCENT = re.compile(_PERCENT, re.IGNORECASE)
_ANY_NUMBER_WORD = re.compile(rf"\b{_NUMBER_WORDS}\b", re.IGNORECASE)


def normalise_customer_text(text: str) -> str:
    """What the guard inspects and sends: NFKC (full-width digits, ligatures), no control,
    escape, bidi or zero-width characters."""
    return unicodedata.normalize("NFKC", strip_controls(text)).translate(_INVISIBLE).strip()


def _percent_forms(percent: float) -> set[str]:
    forms = {f"{percent:g}", f"{percent:.1f}"}
    if float(percent).is_integer():
        forms.add(f"{percent:.0f}")
    return forms


# What a small model writes when it echoes the field instead of filling it.
PLACEHOLDERS = frozenset(
    {"answer", "reply", "response", "message", "text", "string", "none", "null", "n/a", "..."}
)
MAX_PHRASE_REPEATS = 2  # the same three words a third time: a decoding loop
_WORD = re.compile(r"[^\W\d_]{2,}")  # a customer message says something in words, not "2.5"
_IDENTIFIER = re.compile(r"\w+_\w*")  # "cust_m_essag_m_c": a field name echoed and mangled
_RUN = re.compile(r"(\S{1,6}?)\1{4,}")  # "m_c_m_c_m_c_m_c_m_c": a short chunk looping


def degenerate_text_problem(text: str) -> str | None:
    """Why ``text`` reads as a decoding failure (a placeholder, an identifier, a chunk or
    phrase looping, no words at all), or ``None``."""
    if text.strip().strip(".!?\"'").lower() in PLACEHOLDERS:
        return f"placeholder {text.strip()!r}"
    for name, pattern in (("identifier", _IDENTIFIER), ("looping chunk", _RUN)):
        found = pattern.search(text)
        if found:
            return f"{name} {found.group(0)[:30]!r}"
    if not _WORD.search(text):
        return f"no words: {text.strip()[:30]!r}"
    words = re.findall(r"[\w']+", text.lower())
    seen: dict[tuple[str, ...], int] = {}
    for gram in zip(words, words[1:], words[2:], strict=False):
        seen[gram] = seen.get(gram, 0) + 1
        if seen[gram] > MAX_PHRASE_REPEATS:
            return f"repeats {' '.join(gram)!r}"
    return None


def customer_text_problem(text: str, *, allowed_percent: float | None = None) -> str | None:
    """Why model-written ``text`` must not reach a customer, or ``None`` when it may.

    Refused: degenerate text (a placeholder such as "answer", a phrase looping), offer
    codes or code-like tokens, money amounts, internal figures or terms
    (margin, churn, cap, lifetime value, approval...), promises (``N% off``, ``forty percent``,
    free, refunds...). With ``allowed_percent`` (pricing's message) the text may state that
    one percent, in digits, and no other number at all; without it (the router's reply) it
    may state no percent.
    """
    clean = normalise_customer_text(text)
    if not clean:
        return "empty"
    garbled = degenerate_text_problem(clean)
    if garbled:
        return garbled
    for name, pattern in (("code", _CODE), ("money", _MONEY), ("internal figure", _INTERNAL)):
        found = pattern.search(clean)
        if found:
            return f"{name}: {found.group(0)!r}"
    if allowed_percent is not None:
        forms = _percent_forms(allowed_percent)
        bad = [n for n in _NUMBER.findall(clean) if n.replace(",", ".") not in forms]
        if bad:
            return f"number other than the offer: {bad[0]!r}"
        word = _ANY_NUMBER_WORD.search(clean)
        if word:
            return f"number in words: {word.group(0)!r}"
        allowed = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        clean = re.sub(rf"(?<![\d.,])(?:{allowed})\s*(?:{_PERCENT}|off\b)", " ", clean, flags=re.I)
        if _ANY_PERCENT.search(clean):
            return "a percent other than the offer"
    elif _ANY_PERCENT.search(clean):
        return "a percent"
    found = _PROMISE.search(clean)
    if found:
        return f"promise: {found.group(0)!r}"
    return None


def safe_customer_message(message: str, percent: float) -> str:
    """Pricing's message if it passes the guard stating only the final percent, else a
    template. Keeps internal figures (margin, churn, cap), codes and wrong percents out."""
    problem = customer_text_problem(message, allowed_percent=percent)
    if problem:
        log.warning("pricing message replaced by the template (%s)", problem)
        return MESSAGE_TEMPLATE
    return normalise_customer_text(message)


def safe_reply(reply: str) -> str:
    """The router's free-text reply if it passes the guard (no percent at all), else a
    template: the router makes no offers, so it may state no code, percent or promise."""
    problem = customer_text_problem(reply)
    if problem:
        log.warning("router reply replaced by the template (%s)", problem)
        return REPLY_TEMPLATE
    return normalise_customer_text(reply)


@dataclass
class SGRStep(Generic[M]):
    """The outcome of one SGR call inside a node: a decision, or what to fall back to."""

    decision: M | None
    record: AuditRecord | None
    error: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)
    key: tuple[str, int, int] | None = None  # (node, turn, seq) of a record not yet stored

    def commit(self, services: Services, **extra: Any) -> AuditRecord:
        """The decision's record with ``extra`` (e.g. the final policy), stored in the audit
        table; for a step made with ``defer_record=True``."""
        rec: AuditRecord = {**(self.record or {}), **extra}  # type: ignore[typeddict-item]
        if self.key is not None:
            node, turn, seq = self.key
            record_audit(services, rec, node=node, turn=turn, seq=seq)
            self.key = None
        return rec

    def fallback(self) -> dict[str, Any]:
        """The state update of a turn that could not get a valid decision."""
        return {
            "reply": FALLBACK_REPLY,
            "error": self.error,
            "status": "fallback",
            "audit": self.audit,
        }


def _run_identity() -> tuple[str, str] | None:
    """``(session, customer)`` of the graph run calling this, ``None`` outside a run."""
    from langgraph.config import get_config
    from langgraph.runtime import get_runtime

    try:
        config = get_config()
    except RuntimeError:
        return None
    configurable = config.get("configurable") or {}
    session = str(configurable.get("thread_id") or "")
    if not session:
        return None
    user = str(configurable.get("user_id") or "")
    try:
        ctx = get_runtime().context
    except (RuntimeError, LookupError):
        ctx = None
    if isinstance(ctx, dict):
        user = str(ctx.get("user_id") or user)
    elif getattr(ctx, "user_id", ""):
        user = str(ctx.user_id)
    return session, user


def record_audit(services: Services, rec: AuditRecord, *, node: str, turn: int, seq: int) -> None:
    """Append ``rec`` to the append-only audit table, keyed (session, turn, node, seq).

    A node that re-runs (resume, crash recovery) writes the same key: the first row stays.
    """
    who = _run_identity()
    if who is None:  # a node called outside a graph run (unit tests)
        return
    session, user = who
    services.audit_log().append(
        session_id=session, user_id=user, turn=turn, node=node, seq=seq, record=dict(rec)
    )


def sgr_step(
    services: Services,
    model: type[M],
    prompt: list[BaseMessage],
    *,
    node: str,
    turn: int,
    schema: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    seq: int = 0,
    defer_record: bool = False,
    max_tokens: int | None = None,
) -> SGRStep[M]:
    """Call the structured LLM; a typed failure becomes a fallback, never an exception.

    Every call, failed ones included, leaves one audit record: in the turn's state and in
    the append-only audit table (``seq`` tells apart two calls of one node in one turn).
    With ``defer_record`` a successful call's record is stored by ``SGRStep.commit`` (the
    caller adds what it decided from it, e.g. pricing's clamped percent).
    """
    extra: dict[str, Any] = {"turn": turn}
    if policy is not None:
        extra["policy"] = policy
    try:
        decision, call = services.llm().call(
            model, prompt, node=node, schema=schema, max_tokens=max_tokens
        )
    except StructuredOutputError as e:
        log.warning("%s fell back: %s", node, e)
        rec: AuditRecord = {**e.call.as_dict(), **extra}  # type: ignore[typeddict-item]
        record_audit(services, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e), [rec])
    except LLMUnavailableError as e:
        log.error("%s: %s", node, e)
        rec = {  # type: ignore[typeddict-item]
            "node": node,
            "schema": model.__name__,
            "parsed": None,
            "raw": [],
            "errors": [f"LLM unavailable: {e}"],
            "repairs": 0,
            **extra,
        }
        record_audit(services, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e), [rec])
    rec = {**call.as_dict(), **extra}  # type: ignore[typeddict-item]
    if defer_record:
        return SGRStep(decision, rec, None, [rec], key=(node, turn, seq))
    record_audit(services, rec, node=node, turn=turn, seq=seq)
    return SGRStep(decision, rec, None, [rec])
