"""The guard on everything the model writes for a customer.

Model text reaches a customer only if it states no offer code, money amount, internal figure
(margin, churn, cap, lifetime value, approval...), promise (``N% off``, free, refunds...) or
percent other than the offer's, and does not read as a decoding failure. Otherwise the caller
sends a template (``nodes.replies``); the original stays in the audit trail.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from graph.validation import strip_controls
from nodes.sentences import sentence_problem

log = logging.getLogger(__name__)

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


_DEAD_END = re.compile(
    r"\b(?:unable|not able|can(?:not|['\u2019]t)|won['\u2019]t)\b[^.!?]{0,30}"
    r"\b(?:help|assist|provide|answer|do that|support)\b",
    re.IGNORECASE,
)


def dead_end_problem(text: str) -> str | None:
    """A refusal that leaves the customer nowhere ("I'm unable to assist you with your
    order."): the shop's hand-off says where to go instead."""
    found = _DEAD_END.search(text)
    return f"a refusal without a way forward: {found.group(0)!r}" if found else None


def reply_problem(
    text: str,
    customer_message: str = "",
    *,
    allowed_percent: float | None = None,
    shop_language: str = "en",
) -> str | None:
    """Why model-written ``text`` must not reach the customer who wrote
    ``customer_message``, or ``None``: first the money guard (:func:`customer_text_problem`),
    then the sentence judge (``nodes.sentences``: a complete sentence, no fragment, echo,
    meta talk or format artefact, in the customer's language or the shop's)."""
    problem = customer_text_problem(text, allowed_percent=allowed_percent)
    if problem:
        return problem
    return sentence_problem(
        normalise_customer_text(text), customer_message, shop_language=shop_language
    )


def guarded_message(
    message: str, percent: float, customer_message: str = "", *, shop_language: str = "en"
) -> str | None:
    """Pricing's message, normalised, if it passes :func:`reply_problem` stating only
    ``percent``; ``None`` when it must be replaced."""
    problem = reply_problem(
        message, customer_message, allowed_percent=percent, shop_language=shop_language
    ) or dead_end_problem(message)  # "I'm unable to help with the price" above an offer
    if problem:
        log.info("pricing message refused by the guard (%s)", problem)
        return None
    return normalise_customer_text(message)


def guarded_reply(
    reply: str, customer_message: str = "", *, shop_language: str = "en"
) -> str | None:
    """The router's free-text reply, normalised, if it passes :func:`reply_problem` with no
    percent at all (the router makes no offers); ``None`` when it must be replaced."""
    problem = reply_problem(
        reply, customer_message, shop_language=shop_language
    ) or dead_end_problem(reply)
    if problem:
        log.info("router reply refused by the guard (%s)", problem)
        return None
    return normalise_customer_text(reply)
